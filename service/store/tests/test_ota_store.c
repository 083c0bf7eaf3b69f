/*
 * Unit tests of the store: every public function, constraints, rollout
 * visibility, cancel, timeouts, abort criteria, notify bookkeeping, reopen and
 * several handles / processes on one data directory.
 *
 * Run without arguments on SQLite; with --postgresql the same tests run on a
 * throwaway PostgreSQL server started once for the binary (its database is
 * emptied before every test).
 */
#define _XOPEN_SOURCE 700

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ota_store.h"
#include "ota_test_pg.h"

#define T0 1700000000000LL /* a fixed "now" in ms */
#define MIN 60000LL

/* The PostgreSQL server with --postgresql; NULL location means SQLite. */
static ota_test_pg_t g_pg;
static const char *g_location;

/* Opens the store of a data folder on the back-end under test. */
static int open_store(const char *dir, ota_store_t **out)
{
    return ota_store_open_at(dir, g_location, out);
}

typedef struct {
    char dir[256];
    ota_store_t *s;
} fx_t;

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/otter-store-test-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    strcat(fx->dir, "/data"); /* not yet existing: open must create it */
    if (g_location) /* the first test makes the schema, the others start from empty tables */
        assert_int_equal(ota_test_pg_empty(&g_pg), 0);
    assert_int_equal(open_store(fx->dir, &fx->s), OTA_STORE_OK);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    ota_store_close(fx->s);
    char *slash = strrchr(fx->dir, '/');
    *slash = '\0';
    nftw(fx->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

static void reopen(fx_t *fx)
{
    ota_store_close(fx->s);
    fx->s = NULL;
    assert_int_equal(open_store(fx->dir, &fx->s), OTA_STORE_OK);
}

static void mk_things(ota_store_t *s, const char *prefix, int n)
{
    for (int i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s%d", prefix, i);
        assert_int_equal(ota_store_thing_create(s, name, T0), OTA_STORE_OK);
    }
}

static const char *DOC = "{ \"afr_ota\" : {\"protocols\":[\"MQTT\"], \"streamname\":\"s1\"} }";

static void mk_stream(ota_store_t *s, const char *id)
{
    ota_store_stream_file_t f = {0, "/tmp/x.bin", 1000};
    assert_int_equal(ota_store_stream_create(s, id, "fw", &f, 1, T0), OTA_STORE_OK);
}

static int mk_job(ota_store_t *s, const char *id, const char *const *things, size_t n,
                  uint32_t rate, int64_t now)
{
    ota_store_job_spec_t spec = {0};
    spec.job_id = id;
    spec.document = DOC;
    spec.things = things;
    spec.n_things = n;
    spec.rollout_per_minute = rate;
    return ota_store_job_create(s, &spec, now);
}

/* A continuous job on groups. */
static int mk_continuous(ota_store_t *s, const char *id, const char **groups, size_t n)
{
    ota_store_job_spec_t spec = {0};
    spec.job_id = id;
    spec.document = DOC;
    spec.groups = groups;
    spec.n_groups = n;
    spec.continuous = 1;
    return ota_store_job_create(s, &spec, T0);
}

static int upd(ota_store_t *s, const char *job, const char *thing, ota_store_exec_status_t st,
               const char *details, int64_t now)
{
    ota_store_exec_update_t u = {
        .status = st, .status_details = details, .expected_version = 0, .step_timeout_min = 0};
    return ota_store_execution_update(s, job, thing, &u, now, NULL);
}

static int exec_status(ota_store_t *s, const char *job, const char *thing)
{
    ota_store_execution_t e;
    int rc = ota_store_execution_get(s, job, thing, &e);
    int st = rc == OTA_STORE_OK ? (int)e.status : rc;
    ota_store_execution_free(&e);
    return st;
}

static void next_is(ota_store_t *s, const char *thing, const char *job)
{
    ota_store_execution_t e;
    int rc = ota_store_execution_next(s, thing, &e);
    if (job == NULL) {
        assert_int_equal(rc, OTA_STORE_NOT_FOUND);
    } else {
        assert_int_equal(rc, OTA_STORE_OK);
        assert_string_equal(e.job_id, job);
    }
    ota_store_execution_free(&e);
}

/* ---- opening ---- */

static void test_open_layout_and_schema(void **state)
{
    fx_t *fx = *state;
    char p[400];
    struct stat sb;
    snprintf(p, sizeof p, "%s/otter.db", fx->dir);
    assert_int_equal(stat(p, &sb), g_location ? -1 : 0); /* PostgreSQL: no SQLite file */
    assert_int_equal(ota_store_is_postgresql(fx->s), g_location != NULL);
    snprintf(p, sizeof p, "%s/files", fx->dir);
    assert_int_equal(stat(p, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    int v = 0;
    assert_int_equal(ota_store_schema_version(fx->s, &v), OTA_STORE_OK);
    assert_int_equal(v, 8);
    assert_string_equal(ota_store_data_dir(fx->s), fx->dir);
    ota_store_t *none;
    assert_int_equal(ota_store_open(NULL, &none), OTA_STORE_INVALID);
    assert_null(none);
    /* a location that is not PostgreSQL, and a server that does not answer */
    assert_int_equal(ota_store_open_at(fx->dir, "mysql://u:p@h/db", &none), OTA_STORE_INVALID);
    assert_null(none);
    assert_int_equal(ota_store_open_at(fx->dir, "postgresql://nobody@127.0.0.1:1/none", &none),
                     OTA_STORE_ERROR);
    assert_null(none);
    assert_true(ota_store_location_is_postgresql("postgres://h/db"));
    assert_false(ota_store_location_is_postgresql("postgresql:/h"));
    assert_string_equal(ota_store_rc_name(OTA_STORE_CONFLICT), "OTA_STORE_CONFLICT");
    assert_string_equal(ota_store_rc_name(42), "OTA_STORE_UNKNOWN");
    assert_true(ota_store_now_ms() > T0);
}

/* Runs SQL on the test's database directly (what an earlier version may have left there). */
static void raw_sql(fx_t *fx, const char *sql)
{
    if (g_location) {
        assert_int_equal(ota_test_pg_exec(&g_pg, sql), 0);
    } else {
        char p[400];
        sqlite3 *db;
        snprintf(p, sizeof p, "%s/otter.db", fx->dir);
        assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
        sqlite3_busy_timeout(db, 5000);
        assert_int_equal(sqlite3_exec(db, sql, 0, 0, 0), SQLITE_OK);
        sqlite3_close(db);
    }
}

static void test_open_refuses_newer_schema(void **state)
{
    fx_t *fx = *state;
    raw_sql(fx, "UPDATE schema_version SET version = 99");
    ota_store_t *s2 = (ota_store_t *)1;
    assert_int_equal(open_store(fx->dir, &s2), OTA_STORE_INVALID);
    assert_null(s2);
    if (g_location) /* the next tests use this database */
        assert_int_equal(ota_test_pg_exec(&g_pg, "UPDATE schema_version SET version = 8"), 0);
}

/* A handle opened before a newer otter migrated the database sees it at its next check. */
static void test_schema_check_sees_newer_schema(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(ota_store_schema_check(fx->s), OTA_STORE_OK);
    raw_sql(fx, "UPDATE schema_version SET version = 9");
    assert_int_equal(ota_store_schema_check(fx->s), OTA_STORE_CONFLICT);
    assert_non_null(strstr(ota_store_errmsg(fx->s), "version 9, newer than this program's 8"));
    raw_sql(fx, "UPDATE schema_version SET version = 8");
    assert_int_equal(ota_store_schema_check(fx->s), OTA_STORE_OK);
    assert_int_equal(ota_store_schema_check(NULL), OTA_STORE_INVALID);
}

/* ---- things and groups ---- */

static int count_cb(void *ctx, const ota_store_thing_t *t)
{
    (void)t;
    (*(int *)ctx)++;
    return 0;
}

static int stop_cb(void *ctx, const ota_store_thing_t *t)
{
    (void)t;
    (*(int *)ctx)++;
    return 1;
}

static void test_things(void **state)
{
    ota_store_t *s = ((fx_t *)*state)->s;
    char longest[OTA_STORE_THING_NAME_MAX + 2];
    memset(longest, 'a', sizeof longest);
    longest[OTA_STORE_THING_NAME_MAX] = '\0';
    assert_int_equal(ota_store_thing_create(s, longest, T0), OTA_STORE_OK);
    longest[OTA_STORE_THING_NAME_MAX] = 'a';
    longest[OTA_STORE_THING_NAME_MAX + 1] = '\0';
    assert_int_equal(ota_store_thing_create(s, longest, T0), OTA_STORE_INVALID);
    assert_int_equal(ota_store_thing_create(s, "", T0), OTA_STORE_INVALID);
    assert_int_equal(ota_store_thing_create(s, NULL, T0), OTA_STORE_INVALID);
    assert_int_equal(ota_store_thing_create(s, "a/b", T0), OTA_STORE_INVALID);
    assert_int_equal(ota_store_thing_create(s, "a b", T0), OTA_STORE_INVALID);
    assert_int_equal(ota_store_thing_create(s, "a+", T0), OTA_STORE_INVALID);
    /* a new name starting with '-' would need `--` in every command */
    assert_int_equal(ota_store_thing_create(s, "-x", T0), OTA_STORE_INVALID);
    assert_non_null(strstr(ota_store_errmsg(s), "may not start with '-'"));
    assert_int_equal(ota_store_group_create(s, "-g", NULL, T0), OTA_STORE_INVALID);
    assert_int_equal(ota_store_group_add(s, "-g", longest), OTA_STORE_INVALID);
    const char *one[] = {"dev:1_x-Y"};
    assert_int_equal(mk_job(s, "-j", one, 1, 0, T0), OTA_STORE_INVALID);
    assert_true(ota_store_new_name_ok("x-"));
    assert_false(ota_store_new_name_ok("-"));
    assert_int_equal(ota_store_thing_create(s, "dev:1_x-Y", T0 + 5), OTA_STORE_OK);
    assert_int_equal(ota_store_thing_create(s, "dev:1_x-Y", T0), OTA_STORE_EXISTS);
    assert_non_null(strstr(ota_store_errmsg(s), "already exists"));
    ota_store_thing_t t;
    assert_int_equal(ota_store_thing_get(s, "dev:1_x-Y", &t), OTA_STORE_OK);
    assert_string_equal(t.name, "dev:1_x-Y");
    assert_int_equal(t.created_ms, T0 + 5);
    assert_string_equal(ota_store_errmsg(s), "");
    assert_int_equal(ota_store_thing_get(s, "nope", &t), OTA_STORE_NOT_FOUND);
    int n = 0;
    assert_int_equal(ota_store_thing_list(s, count_cb, &n), OTA_STORE_OK);
    assert_int_equal(n, 2);
    n = 0;
    assert_int_equal(ota_store_thing_list(s, stop_cb, &n), OTA_STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ota_store_thing_list(s, NULL, NULL), OTA_STORE_INVALID);
    assert_int_equal(ota_store_thing_delete(s, "dev:1_x-Y"), OTA_STORE_OK);
    assert_int_equal(ota_store_thing_delete(s, "dev:1_x-Y"), OTA_STORE_NOT_FOUND);
    assert_int_equal(ota_store_thing_get(s, "dev:1_x-Y", &t), OTA_STORE_NOT_FOUND);
}

static int group_cb(void *ctx, const ota_store_group_t *g)
{
    char *out = ctx;
    char one[160];
    snprintf(one, sizeof one, "%s=%zu;", g->name, g->n_members);
    strcat(out, one);
    return 0;
}

static int names_cb(void *ctx, const ota_store_thing_t *t)
{
    strcat(ctx, t->name);
    strcat(ctx, ";");
    return 0;
}

static void test_groups(void **state)
{
    ota_store_t *s = ((fx_t *)*state)->s;
    mk_things(s, "d", 3);
    assert_int_equal(ota_store_group_add(s, "lab", "d0"), OTA_STORE_OK);
    assert_int_equal(ota_store_group_add(s, "lab", "d2"), OTA_STORE_OK);
    assert_int_equal(ota_store_group_add(s, "field", "d1"), OTA_STORE_OK);
    assert_int_equal(ota_store_group_add(s, "lab", "d0"), OTA_STORE_EXISTS);
    assert_int_equal(ota_store_group_add(s, "lab", "ghost"), OTA_STORE_NOT_FOUND);
    assert_int_equal(ota_store_group_add(s, "bad group", "d0"), OTA_STORE_INVALID);
    char out[256] = "";
    assert_int_equal(ota_store_group_members(s, "lab", names_cb, out), OTA_STORE_OK);
    assert_string_equal(out, "d0;d2;");
    out[0] = '\0';
    assert_int_equal(ota_store_group_list(s, group_cb, out), OTA_STORE_OK);
    assert_string_equal(out, "field=1;lab=2;");
    assert_int_equal(ota_store_group_members(s, "nogroup", names_cb, out), OTA_STORE_NOT_FOUND);
    assert_int_equal(ota_store_group_remove(s, "lab", "d1"), OTA_STORE_NOT_FOUND);
    assert_int_equal(ota_store_group_remove(s, "lab", "d2"), OTA_STORE_OK);
    /* deleting a thing removes its memberships; the group stays, empty */
    assert_int_equal(ota_store_thing_delete(s, "d1"), OTA_STORE_OK);
    out[0] = '\0';
    assert_int_equal(ota_store_group_members(s, "field", names_cb, out), OTA_STORE_OK);
    assert_string_equal(out, "");
    /* several groups per thing */
    assert_int_equal(ota_store_group_add(s, "field", "d0"), OTA_STORE_OK);
    out[0] = '\0';
    assert_int_equal(ota_store_thing_groups(s, "d0", group_cb, out), OTA_STORE_OK);
    assert_string_equal(out, "field=1;lab=1;");
    assert_int_equal(ota_store_group_delete(s, "field"), OTA_STORE_OK);
    assert_int_equal(ota_store_group_delete(s, "field"), OTA_STORE_NOT_FOUND);
}

/* ---- files and streams ---- */

/* Writes len patterned bytes (seed: the pattern's factor) to path; returns them. */
static unsigned char *make_file(const char *path, size_t len, unsigned seed)
{
    unsigned char *data = malloc(len);
    assert_non_null(data);
    for (size_t i = 0; i < len; i++)
        data[i] = (unsigned char)(i * seed + (i >> 9));
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
    return data;
}

static void test_file_import(void **state)
{
    fx_t *fx = *state;
    char src[300];
    snprintf(src, sizeof src, "%s/../src.bin", fx->dir);
    size_t len = 300000; /* several copy chunks */
    unsigned char *data = make_file(src, len, 7);
    FILE *f;
    ota_store_file_t a, b;
    assert_int_equal(ota_store_file_import(fx->s, src, &a), OTA_STORE_OK);
    assert_int_equal(ota_store_file_import(fx->s, src, &b), OTA_STORE_OK);
    assert_true(a.id != b.id);
    assert_int_equal(a.size, len);
    assert_non_null(strstr(a.path, "/files/"));
    f = fopen(a.path, "rb");
    assert_non_null(f);
    unsigned char *back = malloc(len + 1);
    assert_int_equal(fread(back, 1, len + 1, f), len);
    fclose(f);
    assert_memory_equal(back, data, len);
    ota_store_file_t g;
    assert_int_equal(ota_store_file_get(fx->s, b.id, &g), OTA_STORE_OK);
    assert_string_equal(g.path, b.path);
    assert_int_equal(g.size, len);
    assert_int_equal(ota_store_file_get(fx->s, 999, &g), OTA_STORE_NOT_FOUND);
    assert_int_equal(ota_store_file_import(fx->s, "/nonexistent/x", &g), OTA_STORE_NOT_FOUND);
    assert_int_equal(ota_store_file_import(fx->s, fx->dir, &g), OTA_STORE_INVALID);
    f = fopen(src, "wb");
    fclose(f);
    assert_int_equal(ota_store_file_import(fx->s, src, &g), OTA_STORE_INVALID);
    free(data);
    free(back);
    /* no temporary file left behind */
    char cmd[400];
    snprintf(cmd, sizeof cmd, "ls -A %s/files | grep -q import", fx->dir);
    assert_int_not_equal(system(cmd), 0);
}

static int stream_cb(void *ctx, const ota_store_stream_t *st)
{
    strcat(ctx, st->stream_id);
    strcat(ctx, ";");
    return 0;
}

/* Reads a whole file into a new buffer; its size in *len. */
static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

/*
 * An instance on another machine (another data folder, the same database)
 * serves a file it did not import: with PostgreSQL the bytes are in the
 * database and its own copy is written on first use, and written again when
 * missing or damaged. With SQLite each data folder is a store of its own.
 */
static void test_file_from_another_instance(void **state)
{
    fx_t *fx = *state;
    char src[300], other[300];
    snprintf(src, sizeof src, "%s/../fw.bin", fx->dir);
    snprintf(other, sizeof other, "%s/../other", fx->dir);
    size_t len = 600001; /* three database chunks, the last one short */
    unsigned char *data = make_file(src, len, 13);
    ota_store_file_t a;
    assert_int_equal(ota_store_file_import(fx->s, src, &a), OTA_STORE_OK);
    ota_store_stream_file_t sf = {0, a.path, a.size};
    assert_int_equal(ota_store_stream_create(fx->s, "s1", "fw", &sf, 1, T0), OTA_STORE_OK);
    ota_store_t *b;
    assert_int_equal(open_store(other, &b), OTA_STORE_OK);
    ota_store_file_t g;
    if (!g_location) {
        assert_int_equal(ota_store_file_get(b, a.id, &g), OTA_STORE_NOT_FOUND);
        ota_store_close(b);
        free(data);
        return;
    }
    char want[400];
    snprintf(want, sizeof want, "%s/files/%lld.bin", other, (long long)a.id);
    for (int round = 0; round < 3; round++) {
        if (round == 1)
            assert_int_equal(unlink(want), 0); /* lost: written again */
        if (round == 2)
            assert_int_equal(truncate(want, 1000), 0); /* cut short: written again */
        assert_int_equal(ota_store_file_get(b, a.id, &g), OTA_STORE_OK);
        assert_string_equal(g.path, want);
        assert_int_equal(g.size, len);
        size_t got = 0;
        unsigned char *back = slurp(g.path, &got);
        assert_non_null(back);
        assert_int_equal(got, len);
        assert_memory_equal(back, data, len);
        free(back);
    }
    /* the stream's file, as the streams module sees it there */
    assert_int_equal(unlink(want), 0);
    ota_store_stream_t st;
    assert_int_equal(ota_store_stream_get(b, "s1", &st), OTA_STORE_OK);
    assert_int_equal(st.n_files, 1);
    assert_string_equal(st.files[0].path, want);
    size_t got = 0;
    unsigned char *back = slurp(want, &got);
    assert_int_equal(got, len);
    assert_memory_equal(back, data, len);
    free(back);
    ota_store_stream_free(&st);
    /* the importing instance keeps using its own copy */
    assert_int_equal(ota_store_stream_get(fx->s, "s1", &st), OTA_STORE_OK);
    assert_string_equal(st.files[0].path, a.path);
    ota_store_stream_free(&st);
    ota_store_close(b);
    free(data);
}

static void test_streams(void **state)
{
    ota_store_t *s = ((fx_t *)*state)->s;
    ota_store_stream_file_t files[2] = {{3, "/d/b.bin", 20}, {0, "/d/a.bin", 10}};
    assert_int_equal(ota_store_stream_create(s, "AFR_OTA-1", "two files", files, 2, T0),
                     OTA_STORE_OK);
    assert_int_equal(ota_store_stream_create(s, "AFR_OTA-1", NULL, files, 1, T0), OTA_STORE_EXISTS);
    assert_int_equal(ota_store_stream_create(s, "bad:id", NULL, files, 1, T0), OTA_STORE_INVALID);
    assert_int_equal(ota_store_stream_create(s, "s2", NULL, files, 0, T0), OTA_STORE_INVALID);
    ota_store_stream_file_t dup[2] = {{1, "/a", 1}, {1, "/b", 1}};
    assert_int_equal(ota_store_stream_create(s, "s2", NULL, dup, 2, T0), OTA_STORE_INVALID);
    ota_store_stream_file_t big = {256, "/a", 1}, empty = {0, "/a", 0}, nopath = {0, NULL, 1};
    assert_int_equal(ota_store_stream_create(s, "s2", NULL, &big, 1, T0), OTA_STORE_INVALID);
    assert_int_equal(ota_store_stream_create(s, "s2", NULL, &empty, 1, T0), OTA_STORE_INVALID);
    assert_int_equal(ota_store_stream_create(s, "s2", NULL, &nopath, 1, T0), OTA_STORE_INVALID);
    assert_int_equal(ota_store_stream_create(s, "s2", NULL, &dup[0], 1, T0), OTA_STORE_OK);
    ota_store_stream_t st;
    assert_int_equal(ota_store_stream_get(s, "AFR_OTA-1", &st), OTA_STORE_OK);
    assert_int_equal(st.version, 1);
    assert_string_equal(st.description, "two files");
    assert_int_equal(st.n_files, 2);
    assert_int_equal(st.files[0].file_id, 0);
    assert_string_equal(st.files[0].path, "/d/a.bin");
    assert_int_equal(st.files[0].size, 10);
    assert_int_equal(st.files[1].file_id, 3);
    assert_string_equal(st.files[1].path, "/d/b.bin");
    ota_store_stream_free(&st);
    ota_store_stream_free(&st); /* twice is safe */
    assert_int_equal(ota_store_stream_get(s, "s2", &st), OTA_STORE_OK);
    assert_string_equal(st.description, "");
    ota_store_stream_free(&st);
    assert_int_equal(ota_store_stream_get(s, "nope", &st), OTA_STORE_NOT_FOUND);
    char out[128] = "";
    assert_int_equal(ota_store_stream_list(s, stream_cb, out), OTA_STORE_OK);
    assert_string_equal(out, "AFR_OTA-1;s2;");
}

/* ---- jobs ---- */

static void test_job_create_constraints(void **state)
{
    ota_store_t *s = ((fx_t *)*state)->s;
    mk_things(s, "d", 3);
    mk_stream(s, "s1");
    assert_int_equal(ota_store_group_add(s, "g", "d1"), OTA_STORE_OK);
    assert_int_equal(ota_store_group_add(s, "g", "d2"), OTA_STORE_OK);
    const char *both[] = {"d0", "d1"};
    const char *ghost[] = {"d0", "ghost"};
    const char *groups[] = {"g"};
    const char *nogroup[] = {"nogroup"};
    ota_store_job_spec_t spec = {0};
    spec.job_id = "job-1";
    spec.document = DOC;
    spec.stream_id = "s1";
    spec.things = ghost;
    spec.n_things = 2;
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_NOT_FOUND);
    assert_non_null(strstr(ota_store_errmsg(s), "ghost"));
    ota_store_job_t j;
    assert_int_equal(ota_store_job_get(s, "job-1", &j), OTA_STORE_NOT_FOUND); /* nothing left */
    spec.things = both;
    spec.groups = nogroup;
    spec.n_groups = 1;
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_NOT_FOUND);
    spec.groups = groups;
    spec.stream_id = "nostream";
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_NOT_FOUND);
    spec.stream_id = "s1";
    spec.document = "[1,2]";
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_INVALID);
    spec.document = "{bad";
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_INVALID);
    spec.document = DOC;
    spec.job_id = "bad:id";
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_INVALID);
    char long_id[OTA_STORE_JOB_ID_MAX + 2];
    memset(long_id, 'j', sizeof long_id);
    long_id[OTA_STORE_JOB_ID_MAX + 1] = '\0';
    spec.job_id = long_id;
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_INVALID);
    long_id[OTA_STORE_JOB_ID_MAX] = '\0';
    spec.job_id = "job-1";
    spec.abort_failure_percent = 101;
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_INVALID);
    spec.abort_failure_percent = 0;
    spec.n_things = 0;
    spec.n_groups = 0;
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_INVALID);
    /* d0, d1 directly and d1, d2 through the group: three executions */
    spec.n_things = 2;
    spec.n_groups = 1;
    spec.in_progress_timeout_min = 7;
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_OK);
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_EXISTS);
    spec.job_id = long_id; /* 64 characters is fine */
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_OK);
    assert_int_equal(ota_store_job_get(s, "job-1", &j), OTA_STORE_OK);
    assert_string_equal(j.document, DOC); /* verbatim, spaces included */
    char *doc;
    assert_int_equal(ota_store_job_document(s, "job-1", &doc), OTA_STORE_OK);
    assert_string_equal(doc, DOC);
    free(doc);
    assert_int_equal(ota_store_job_document(s, "nojob", &doc), OTA_STORE_NOT_FOUND);
    assert_null(doc);
    assert_string_equal(j.stream_id, "s1");
    assert_int_equal(j.status, OTA_STORE_JOB_IN_PROGRESS);
    assert_int_equal(j.n_executions, 3);
    assert_int_equal(j.n_queued, 3);
    assert_int_equal(j.in_progress_timeout_min, 7);
    assert_int_equal(j.created_ms, T0);
    ota_store_job_free(&j);
    /* groups are expanded at creation: a later member is not a target */
    mk_things(s, "late", 1);
    assert_int_equal(ota_store_group_add(s, "g", "late0"), OTA_STORE_OK);
    assert_int_equal(exec_status(s, "job-1", "late0"), OTA_STORE_NOT_FOUND);
    /* a job without a stream */
    spec.job_id = "plain";
    spec.stream_id = NULL;
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_OK);
    assert_int_equal(ota_store_job_get(s, "plain", &j), OTA_STORE_OK);
    assert_string_equal(j.stream_id, "");
    ota_store_job_free(&j);
    assert_string_equal(ota_store_job_status_name(OTA_STORE_JOB_ABORTED), "ABORTED");
}

static int job_list_cb(void *ctx, const ota_store_job_t *j)
{
    strcat(ctx, j->job_id);
    strcat(ctx, ";");
    return 0;
}

static int exec_list_cb(void *ctx, const ota_store_execution_t *e)
{
    char one[200];
    snprintf(one, sizeof one, "%s:%s:%d;", e->job_id, e->thing, e->released);
    strcat(ctx, one);
    return 0;
}

static void test_executions_and_next_order(void **state)
{
    ota_store_t *s = ((fx_t *)*state)->s;
    mk_things(s, "d", 2);
    const char *d0[] = {"d0"}, *both[] = {"d0", "d1"};
    assert_int_equal(mk_job(s, "a", d0, 1, 0, T0), OTA_STORE_OK);
    assert_int_equal(mk_job(s, "b", both, 2, 0, T0 + 1000), OTA_STORE_OK);
    assert_int_equal(mk_job(s, "c", d0, 1, 0, T0 + 2000), OTA_STORE_OK);
    char out[512] = "";
    assert_int_equal(ota_store_job_list(s, job_list_cb, out), OTA_STORE_OK);
    assert_string_equal(out, "a;b;c;");
    out[0] = '\0';
    assert_int_equal(ota_store_execution_list(s, "b", exec_list_cb, out), OTA_STORE_OK);
    assert_string_equal(out, "b:d0:1;b:d1:1;");
    assert_int_equal(ota_store_execution_list(s, "zz", exec_list_cb, out), OTA_STORE_NOT_FOUND);
    /* oldest queued first */
    next_is(s, "d0", "a");
    next_is(s, "d1", "b");
    /* IN_PROGRESS before QUEUED, even if newer */
    assert_int_equal(upd(s, "c", "d0", OTA_STORE_EXEC_IN_PROGRESS, NULL, T0 + 3000), OTA_STORE_OK);
    next_is(s, "d0", "c");
    out[0] = '\0';
    assert_int_equal(ota_store_execution_list_pending(s, "d0", exec_list_cb, out), OTA_STORE_OK);
    assert_string_equal(out, "c:d0:1;a:d0:1;b:d0:1;");
    out[0] = '\0';
    assert_int_equal(ota_store_execution_list_pending(s, "ghost", exec_list_cb, out), OTA_STORE_OK);
    assert_string_equal(out, "");
    next_is(s, "ghost", NULL);
    ota_store_execution_t e;
    assert_int_equal(ota_store_execution_get(s, "c", "d0", &e), OTA_STORE_OK);
    assert_int_equal(e.status, OTA_STORE_EXEC_IN_PROGRESS);
    assert_int_equal(e.version_number, 2);
    assert_int_equal(e.execution_number, 1);
    assert_int_equal(e.queued_at_ms, T0 + 2000);
    assert_int_equal(e.started_at_ms, T0 + 3000);
    assert_int_equal(e.last_updated_at_ms, T0 + 3000);
    assert_null(e.status_details);
    ota_store_execution_free(&e);
    assert_int_equal(ota_store_execution_get(s, "c", "d1", &e), OTA_STORE_NOT_FOUND);
    assert_int_equal(ota_store_execution_get(s, "c", "bad thing", &e), OTA_STORE_INVALID);
}

static void test_update_rules(void **state)
{
    ota_store_t *s = ((fx_t *)*state)->s;
    mk_things(s, "d", 2);
    const char *both[] = {"d0", "d1"};
    assert_int_equal(mk_job(s, "j", both, 2, 0, T0), OTA_STORE_OK);
    const char *det1 = "{ \"receive\" : \"1/3\" }";
    const char *det2 = "{\"self_test\":\"ready\",\"updatedBy\":\"0x00090002\"}";
    ota_store_execution_t after;
    ota_store_exec_update_t u = {.status = OTA_STORE_EXEC_IN_PROGRESS,
                                 .status_details = det1,
                                 .expected_version = 1,
                                 .step_timeout_min = 0};
    assert_int_equal(ota_store_execution_update(s, "j", "d0", &u, T0 + 10, &after), OTA_STORE_OK);
    assert_int_equal(after.version_number, 2);
    assert_string_equal(after.status_details, det1);
    ota_store_execution_free(&after);
    /* wrong expected version: refused, state given back unchanged */
    u.expected_version = 1;
    u.status_details = det2;
    assert_int_equal(ota_store_execution_update(s, "j", "d0", &u, T0 + 20, &after),
                     OTA_STORE_VERSION_MISMATCH);
    assert_int_equal(after.version_number, 2);
    assert_string_equal(after.status_details, det1);
    ota_store_execution_free(&after);
    u.expected_version = 2;
    assert_int_equal(ota_store_execution_update(s, "j", "d0", &u, T0 + 30, &after), OTA_STORE_OK);
    assert_int_equal(after.version_number, 3);
    assert_string_equal(after.status_details, det2);
    assert_int_equal(after.started_at_ms, T0 + 10); /* startedAt is the first IN_PROGRESS */
    ota_store_execution_free(&after);
    /* no statusDetails: kept */
    assert_int_equal(upd(s, "j", "d0", OTA_STORE_EXEC_IN_PROGRESS, NULL, T0 + 40), OTA_STORE_OK);
    assert_int_equal(ota_store_execution_get(s, "j", "d0", &after), OTA_STORE_OK);
    assert_string_equal(after.status_details, det2);
    assert_int_equal(after.version_number, 4);
    ota_store_execution_free(&after);
    /* a started execution cannot become REJECTED */
    u = (ota_store_exec_update_t){.status = OTA_STORE_EXEC_REJECTED,
                                  .status_details = NULL,
                                  .expected_version = 0,
                                  .step_timeout_min = 0};
    assert_int_equal(ota_store_execution_update(s, "j", "d0", &u, T0 + 50, &after),
                     OTA_STORE_BAD_TRANSITION);
    assert_int_equal(after.status, OTA_STORE_EXEC_IN_PROGRESS);
    ota_store_execution_free(&after);
    u = (ota_store_exec_update_t){.status = OTA_STORE_EXEC_IN_PROGRESS,
                                  .status_details = NULL,
                                  .expected_version = 0,
                                  .step_timeout_min = 10081};
    assert_int_equal(ota_store_execution_update(s, "j", "d0", &u, T0, NULL), OTA_STORE_INVALID);
    u = (ota_store_exec_update_t){.status = OTA_STORE_EXEC_IN_PROGRESS,
                                  .status_details = NULL,
                                  .expected_version = 0,
                                  .step_timeout_min = -2};
    assert_int_equal(ota_store_execution_update(s, "j", "d0", &u, T0, NULL), OTA_STORE_INVALID);
    u = (ota_store_exec_update_t){.status = OTA_STORE_EXEC_REJECTED,
                                  .status_details = NULL,
                                  .expected_version = 0,
                                  .step_timeout_min = 0};
    /* statuses a device cannot set */
    assert_int_equal(upd(s, "j", "d0", OTA_STORE_EXEC_QUEUED, NULL, T0), OTA_STORE_INVALID);
    assert_int_equal(upd(s, "j", "d0", OTA_STORE_EXEC_TIMED_OUT, NULL, T0), OTA_STORE_INVALID);
    assert_int_equal(upd(s, "j", "d0", OTA_STORE_EXEC_CANCELED, NULL, T0), OTA_STORE_INVALID);
    assert_int_equal(upd(s, "j", "d0", OTA_STORE_EXEC_SUCCEEDED, "{\"reason\":\"ok\"}", T0 + 60),
                     OTA_STORE_OK);
    /* terminal: every further update is refused */
    assert_int_equal(ota_store_execution_update(s, "j", "d0", &u, T0 + 70, &after),
                     OTA_STORE_TERMINAL);
    assert_int_equal(after.status, OTA_STORE_EXEC_SUCCEEDED);
    assert_int_equal(after.version_number, 5);
    ota_store_execution_free(&after);
    assert_int_equal(upd(s, "j", "d0", OTA_STORE_EXEC_IN_PROGRESS, NULL, T0), OTA_STORE_TERMINAL);
    /* QUEUED may go straight to REJECTED; the job then has no open execution */
    ota_store_job_t job;
    assert_int_equal(ota_store_job_get(s, "j", &job), OTA_STORE_OK);
    assert_int_equal(job.status, OTA_STORE_JOB_IN_PROGRESS);
    ota_store_job_free(&job);
    assert_int_equal(upd(s, "j", "d1", OTA_STORE_EXEC_REJECTED, NULL, T0 + 80), OTA_STORE_OK);
    assert_int_equal(ota_store_job_get(s, "j", &job), OTA_STORE_OK);
    assert_int_equal(job.status, OTA_STORE_JOB_COMPLETED);
    assert_int_equal(job.completed_ms, T0 + 80);
    assert_int_equal(job.n_succeeded, 1);
    assert_int_equal(job.n_rejected, 1);
    ota_store_job_free(&job);
    assert_int_equal(upd(s, "nojob", "d1", OTA_STORE_EXEC_FAILED, NULL, T0), OTA_STORE_NOT_FOUND);
    ota_store_exec_status_t st;
    assert_int_equal(ota_store_exec_status_parse("TIMED_OUT", &st), OTA_STORE_OK);
    assert_int_equal(st, OTA_STORE_EXEC_TIMED_OUT);
    assert_int_equal(ota_store_exec_status_parse("timed_out", &st), OTA_STORE_INVALID);
    assert_true(ota_store_exec_status_is_terminal(OTA_STORE_EXEC_REMOVED));
    assert_false(ota_store_exec_status_is_terminal(OTA_STORE_EXEC_IN_PROGRESS));
}

static void test_cancel(void **state)
{
    ota_store_t *s = ((fx_t *)*state)->s;
    mk_things(s, "d", 3);
    mk_stream(s, "s1");
    const char *all[] = {"d0", "d1", "d2"};
    ota_store_job_spec_t spec = {0};
    spec.job_id = "j1";
    spec.document = DOC;
    spec.stream_id = "s1";
    spec.things = all;
    spec.n_things = 3;
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_OK);
    assert_int_equal(mk_job(s, "j2", all, 1, 0, T0 + 1), OTA_STORE_OK); /* d0 only */
    assert_int_equal(upd(s, "j1", "d0", OTA_STORE_EXEC_IN_PROGRESS, NULL, T0 + 2), OTA_STORE_OK);
    assert_int_equal(upd(s, "j1", "d1", OTA_STORE_EXEC_SUCCEEDED, NULL, T0 + 3), OTA_STORE_OK);
    assert_int_equal(ota_store_thing_may_read_stream(s, "d0", "s1"), 1);
    /* a pending execution blocks deleting its thing */
    assert_int_equal(ota_store_thing_delete(s, "d2"), OTA_STORE_CONFLICT);
    assert_int_equal(ota_store_job_cancel(s, "j1", T0 + 10), OTA_STORE_OK);
    ota_store_job_t j;
    assert_int_equal(ota_store_job_get(s, "j1", &j), OTA_STORE_OK);
    assert_int_equal(j.status, OTA_STORE_JOB_CANCELED);
    assert_int_equal(j.completed_ms, T0 + 10);
    assert_int_equal(j.n_canceled, 2);
    assert_int_equal(j.n_succeeded, 1);
    ota_store_job_free(&j);
    assert_int_equal(exec_status(s, "j1", "d0"), OTA_STORE_EXEC_CANCELED);
    assert_int_equal(exec_status(s, "j1", "d1"), OTA_STORE_EXEC_SUCCEEDED);
    assert_int_equal(exec_status(s, "j1", "d2"), OTA_STORE_EXEC_CANCELED);
    ota_store_execution_t e;
    assert_int_equal(ota_store_execution_get(s, "j1", "d0", &e), OTA_STORE_OK);
    assert_int_equal(e.version_number, 3);
    assert_int_equal(e.last_updated_at_ms, T0 + 10);
    ota_store_execution_free(&e);
    /* the next job changes: d0 moves on to j2, d2 has nothing */
    next_is(s, "d0", "j2");
    next_is(s, "d2", NULL);
    assert_int_equal(ota_store_thing_may_read_stream(s, "d1", "s1"), 1); /* SUCCEEDED still may */
    assert_int_equal(upd(s, "j1", "d0", OTA_STORE_EXEC_FAILED, NULL, T0 + 11), OTA_STORE_TERMINAL);
    assert_int_equal(ota_store_job_cancel(s, "j1", T0 + 12), OTA_STORE_CONFLICT);
    assert_int_equal(ota_store_job_cancel(s, "nojob", T0 + 12), OTA_STORE_NOT_FOUND);
    assert_int_equal(ota_store_thing_delete(s, "d2"), OTA_STORE_OK);
    assert_int_equal(exec_status(s, "j1", "d2"), OTA_STORE_NOT_FOUND);
}

static void test_may_read_stream(void **state)
{
    ota_store_t *s = ((fx_t *)*state)->s;
    mk_things(s, "d", 3);
    mk_stream(s, "s1");
    mk_stream(s, "s2");
    const char *d0[] = {"d0", "d1"};
    ota_store_job_spec_t spec = {0};
    spec.job_id = "j";
    spec.document = DOC;
    spec.stream_id = "s1";
    spec.things = d0;
    spec.n_things = 2;
    spec.rollout_per_minute = 1; /* d1 is held back */
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_OK);
    assert_int_equal(ota_store_thing_may_read_stream(s, "d0", "s1"), 1);
    assert_int_equal(ota_store_thing_may_read_stream(s, "d1", "s1"), 0); /* not released */
    assert_int_equal(ota_store_thing_may_read_stream(s, "d2", "s1"), 0); /* no execution */
    assert_int_equal(ota_store_thing_may_read_stream(s, "d0", "s2"), 0); /* other stream */
    assert_int_equal(ota_store_thing_may_read_stream(s, "ghost", "s1"), 0);
    assert_int_equal(ota_store_thing_may_read_stream(s, "d0", "nostream"), 0);
    assert_int_equal(ota_store_thing_may_read_stream(s, "bad thing", "s1"), 0);
    /* A disabled or revoked thing reads nothing; enabled again, it may. */
    assert_int_equal(ota_store_thing_service_attr_set(s, "d0", "disabled", "true", T0),
                     OTA_STORE_OK);
    assert_int_equal(ota_store_thing_may_read_stream(s, "d0", "s1"), 0);
    assert_int_equal(ota_store_thing_service_attr_set(s, "d0", "disabled", NULL, T0), OTA_STORE_OK);
    assert_int_equal(ota_store_thing_may_read_stream(s, "d0", "s1"), 1);
    assert_int_equal(ota_store_thing_service_attr_set(s, "d0", "revoked", "true", T0),
                     OTA_STORE_OK);
    assert_int_equal(ota_store_thing_may_read_stream(s, "d0", "s1"), 0);
}

static void test_timeouts(void **state)
{
    ota_store_t *s = ((fx_t *)*state)->s;
    mk_things(s, "d", 3);
    const char *all[] = {"d0", "d1", "d2"};
    ota_store_job_spec_t spec = {0};
    spec.job_id = "j";
    spec.document = DOC;
    spec.things = all;
    spec.n_things = 3;
    spec.in_progress_timeout_min = 10;
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_OK);
    int64_t next;
    assert_int_equal(ota_store_next_timed_work(s, &next), OTA_STORE_OK);
    assert_int_equal(next, INT64_MAX);
    assert_int_equal(upd(s, "j", "d0", OTA_STORE_EXEC_IN_PROGRESS, NULL, T0), OTA_STORE_OK);
    ota_store_execution_t e;
    assert_int_equal(ota_store_execution_get(s, "j", "d0", &e), OTA_STORE_OK);
    assert_int_equal(e.deadline_ms, T0 + 10 * MIN);
    ota_store_execution_free(&e);
    /* a step timeout shortens the deadline but never extends past the job's */
    ota_store_exec_update_t u = {.status = OTA_STORE_EXEC_IN_PROGRESS,
                                 .status_details = NULL,
                                 .expected_version = 0,
                                 .step_timeout_min = 2};
    assert_int_equal(ota_store_execution_update(s, "j", "d1", &u, T0 + MIN, &e), OTA_STORE_OK);
    assert_int_equal(e.deadline_ms, T0 + 3 * MIN);
    ota_store_execution_free(&e);
    u.step_timeout_min = 60;
    assert_int_equal(ota_store_execution_update(s, "j", "d1", &u, T0 + 2 * MIN, &e), OTA_STORE_OK);
    assert_int_equal(e.deadline_ms, T0 + 11 * MIN);
    ota_store_execution_free(&e);
    u.step_timeout_min = 1;
    assert_int_equal(ota_store_execution_update(s, "j", "d1", &u, T0 + 2 * MIN, &e), OTA_STORE_OK);
    assert_int_equal(e.deadline_ms, T0 + 3 * MIN);
    ota_store_execution_free(&e);
    assert_int_equal(ota_store_next_timed_work(s, &next), OTA_STORE_OK);
    assert_int_equal(next, T0 + 3 * MIN);
    size_t n = 99;
    assert_int_equal(ota_store_expire_timeouts(s, T0 + 3 * MIN - 1, &n), OTA_STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(ota_store_expire_timeouts(s, T0 + 3 * MIN, &n), OTA_STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ota_store_execution_get(s, "j", "d1", &e), OTA_STORE_OK);
    assert_int_equal(e.status, OTA_STORE_EXEC_TIMED_OUT);
    assert_int_equal(e.version_number, 5); /* 1 + three updates + the timeout */
    assert_int_equal(e.last_updated_at_ms, T0 + 3 * MIN);
    assert_int_equal(e.deadline_ms, 0);
    ota_store_execution_free(&e);
    assert_int_equal(ota_store_expire_timeouts(s, T0 + 3 * MIN, &n), OTA_STORE_OK);
    assert_int_equal(n, 0); /* idempotent */
    assert_int_equal(upd(s, "j", "d1", OTA_STORE_EXEC_SUCCEEDED, NULL, T0), OTA_STORE_TERMINAL);
    assert_int_equal(ota_store_expire_timeouts(s, T0 + 10 * MIN, &n), OTA_STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(exec_status(s, "j", "d0"), OTA_STORE_EXEC_TIMED_OUT);
    /* QUEUED executions never time out */
    assert_int_equal(exec_status(s, "j", "d2"), OTA_STORE_EXEC_QUEUED);
    /* -1 drops a step deadline back to the job's */
    u.step_timeout_min = 1;
    assert_int_equal(ota_store_execution_update(s, "j", "d2", &u, T0 + 10 * MIN, &e), OTA_STORE_OK);
    assert_int_equal(e.deadline_ms, T0 + 11 * MIN);
    ota_store_execution_free(&e);
    u.step_timeout_min = -1;
    assert_int_equal(ota_store_execution_update(s, "j", "d2", &u, T0 + 10 * MIN, &e), OTA_STORE_OK);
    assert_int_equal(e.deadline_ms, T0 + 20 * MIN);
    ota_store_execution_free(&e);
    u.step_timeout_min = 0; /* 0 keeps it */
    assert_int_equal(ota_store_execution_update(s, "j", "d2", &u, T0 + 10 * MIN, &e), OTA_STORE_OK);
    assert_int_equal(e.deadline_ms, T0 + 20 * MIN);
    ota_store_execution_free(&e);
    ota_store_job_t j;
    assert_int_equal(ota_store_job_get(s, "j", &j), OTA_STORE_OK);
    assert_int_equal(j.n_timed_out, 2);
    assert_int_equal(j.status, OTA_STORE_JOB_IN_PROGRESS);
    ota_store_job_free(&j);
    assert_int_equal(upd(s, "j", "d2", OTA_STORE_EXEC_SUCCEEDED, NULL, T0 + 11 * MIN),
                     OTA_STORE_OK);
    assert_int_equal(ota_store_job_get(s, "j", &j), OTA_STORE_OK);
    assert_int_equal(j.status, OTA_STORE_JOB_COMPLETED);
    ota_store_job_free(&j);
}

static int visible(ota_store_t *s, const char *prefix, int n)
{
    int count = 0;
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "%s%d", prefix, i);
        ota_store_execution_t e;
        if (ota_store_execution_next(s, name, &e) == OTA_STORE_OK)
            count++;
        ota_store_execution_free(&e);
    }
    return count;
}

static void test_rollout(void **state)
{
    fx_t *fx = *state;
    mk_things(fx->s, "d", 5);
    const char *all[] = {"d0", "d1", "d2", "d3", "d4"};
    assert_int_equal(mk_job(fx->s, "r", all, 5, 2, T0), OTA_STORE_OK);
    assert_int_equal(visible(fx->s, "d", 5), 2);
    next_is(fx->s, "d0", "r");
    next_is(fx->s, "d2", NULL);
    /* held back: invisible to updates too */
    assert_int_equal(upd(fx->s, "r", "d4", OTA_STORE_EXEC_IN_PROGRESS, NULL, T0),
                     OTA_STORE_NOT_FOUND);
    ota_store_job_t j;
    assert_int_equal(ota_store_job_get(fx->s, "r", &j), OTA_STORE_OK);
    assert_int_equal(j.n_unreleased, 3);
    assert_int_equal(j.n_queued, 2);
    assert_int_equal(j.rollout_per_minute, 2);
    ota_store_job_free(&j);
    int64_t next;
    assert_int_equal(ota_store_next_timed_work(fx->s, &next), OTA_STORE_OK);
    assert_int_equal(next, T0 + MIN);
    size_t n = 99;
    assert_int_equal(ota_store_rollout_release(fx->s, T0 + MIN - 1, &n), OTA_STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(ota_store_rollout_release(fx->s, T0 + MIN, &n), OTA_STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(visible(fx->s, "d", 5), 4);
    ota_store_execution_t e;
    assert_int_equal(ota_store_execution_get(fx->s, "r", "d2", &e), OTA_STORE_OK);
    assert_int_equal(e.queued_at_ms, T0 + MIN); /* queuedAt = release time */
    ota_store_execution_free(&e);
    /* the released count is in the database: a new handle continues */
    reopen(fx);
    assert_int_equal(ota_store_rollout_release(fx->s, T0 + MIN + 30000, &n), OTA_STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(ota_store_next_timed_work(fx->s, &next), OTA_STORE_OK);
    assert_int_equal(next, T0 + 2 * MIN);
    assert_int_equal(ota_store_rollout_release(fx->s, T0 + 2 * MIN, &n), OTA_STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(visible(fx->s, "d", 5), 5);
    assert_int_equal(ota_store_next_timed_work(fx->s, &next), OTA_STORE_OK);
    assert_int_equal(next, INT64_MAX);
    /* cancel also ends executions still held back */
    const char *two[] = {"d0", "d1"};
    assert_int_equal(mk_job(fx->s, "r2", two, 2, 1, T0), OTA_STORE_OK);
    assert_int_equal(ota_store_job_cancel(fx->s, "r2", T0 + 1), OTA_STORE_OK);
    assert_int_equal(exec_status(fx->s, "r2", "d1"), OTA_STORE_EXEC_CANCELED);
    assert_int_equal(ota_store_rollout_release(fx->s, T0 + 5 * MIN, &n), OTA_STORE_OK);
    assert_int_equal(n, 0);
}

static void test_abort_criteria(void **state)
{
    ota_store_t *s = ((fx_t *)*state)->s;
    mk_things(s, "d", 5);
    const char *all[] = {"d0", "d1", "d2", "d3", "d4"};
    ota_store_job_spec_t spec = {0};
    spec.job_id = "j";
    spec.document = DOC;
    spec.things = all;
    spec.n_things = 5;
    spec.abort_failure_percent = 50;
    spec.abort_min_finished = 3;
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_OK);
    assert_int_equal(upd(s, "j", "d0", OTA_STORE_EXEC_FAILED, NULL, T0 + 1), OTA_STORE_OK);
    assert_int_equal(upd(s, "j", "d1", OTA_STORE_EXEC_IN_PROGRESS, NULL, T0 + 1), OTA_STORE_OK);
    assert_int_equal(upd(s, "j", "d2", OTA_STORE_EXEC_SUCCEEDED, NULL, T0 + 2), OTA_STORE_OK);
    ota_store_job_t j;
    assert_int_equal(ota_store_job_get(s, "j", &j), OTA_STORE_OK);
    assert_int_equal(j.status, OTA_STORE_JOB_IN_PROGRESS); /* 1 of 2 failed but only 2 finished */
    ota_store_job_free(&j);
    assert_int_equal(upd(s, "j", "d3", OTA_STORE_EXEC_FAILED, NULL, T0 + 3), OTA_STORE_OK);
    assert_int_equal(ota_store_job_get(s, "j", &j), OTA_STORE_OK);
    assert_int_equal(j.status, OTA_STORE_JOB_ABORTED); /* 2 of 3 >= 50 % */
    assert_int_equal(j.n_canceled, 2);
    ota_store_job_free(&j);
    assert_int_equal(exec_status(s, "j", "d1"), OTA_STORE_EXEC_CANCELED);
    assert_int_equal(exec_status(s, "j", "d4"), OTA_STORE_EXEC_CANCELED);
    assert_int_equal(ota_store_job_cancel(s, "j", T0 + 4), OTA_STORE_CONFLICT);
    /* below the threshold the job completes normally */
    spec.job_id = "k";
    spec.abort_failure_percent = 60;
    spec.abort_min_finished = 0;
    spec.n_things = 2;
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_OK);
    assert_int_equal(upd(s, "k", "d0", OTA_STORE_EXEC_SUCCEEDED, NULL, T0 + 1), OTA_STORE_OK);
    assert_int_equal(upd(s, "k", "d1", OTA_STORE_EXEC_FAILED, NULL, T0 + 1), OTA_STORE_OK);
    assert_int_equal(ota_store_job_get(s, "k", &j), OTA_STORE_OK);
    assert_int_equal(j.status, OTA_STORE_JOB_COMPLETED);
    ota_store_job_free(&j);
}

/* ---- notify bookkeeping ---- */

typedef struct {
    char things[512];
    int64_t seq[8];
    char last[8][70];
    int n;
} pend_t;

static int pend_cb(void *ctx, const char *thing, int64_t seq, const char *last)
{
    pend_t *p = ctx;
    strcat(p->things, thing);
    strcat(p->things, ";");
    if (p->n < 8) {
        p->seq[p->n] = seq;
        snprintf(p->last[p->n], sizeof p->last[0], "%s", last);
    }
    p->n++;
    return 0;
}

static void test_notify_bookkeeping(void **state)
{
    ota_store_t *s = ((fx_t *)*state)->s;
    mk_things(s, "d", 3);
    pend_t p = {0};
    assert_int_equal(ota_store_notify_pending(s, pend_cb, &p), OTA_STORE_OK);
    assert_int_equal(p.n, 0);
    const char *two[] = {"d0", "d1"};
    assert_int_equal(mk_job(s, "j", two, 2, 0, T0), OTA_STORE_OK);
    memset(&p, 0, sizeof p);
    assert_int_equal(ota_store_notify_pending(s, pend_cb, &p), OTA_STORE_OK);
    assert_string_equal(p.things, "d0;d1;");
    assert_string_equal(p.last[0], "");
    assert_int_equal(ota_store_notify_done(s, "d0", p.seq[0], "j"), OTA_STORE_OK);
    int64_t stale = p.seq[1];
    /* d1 changes again after it was listed: recording the old counter keeps it pending */
    assert_int_equal(upd(s, "j", "d1", OTA_STORE_EXEC_FAILED, NULL, T0 + 1), OTA_STORE_OK);
    assert_int_equal(ota_store_notify_done(s, "d1", stale, "j"), OTA_STORE_OK);
    memset(&p, 0, sizeof p);
    assert_int_equal(ota_store_notify_pending(s, pend_cb, &p), OTA_STORE_OK);
    assert_string_equal(p.things, "d1;");
    assert_string_equal(p.last[0], "j");
    assert_int_equal(ota_store_notify_done(s, "d1", p.seq[0], ""), OTA_STORE_OK);
    memset(&p, 0, sizeof p);
    assert_int_equal(ota_store_notify_pending(s, pend_cb, &p), OTA_STORE_OK);
    assert_int_equal(p.n, 0);
    /* recording an announcement only (after $next/get) */
    assert_int_equal(ota_store_notify_done(s, "d2", -1, "x"), OTA_STORE_OK);
    assert_int_equal(ota_store_notify_done(s, "ghost", -1, "x"), OTA_STORE_NOT_FOUND);
    /* cancel marks the things whose next job changes */
    assert_int_equal(ota_store_job_cancel(s, "j", T0 + 2), OTA_STORE_OK);
    memset(&p, 0, sizeof p);
    assert_int_equal(ota_store_notify_pending(s, pend_cb, &p), OTA_STORE_OK);
    assert_string_equal(p.things, "d0;");
}

/* ---- persistence and concurrency ---- */

static void test_reopen_keeps_everything(void **state)
{
    fx_t *fx = *state;
    mk_things(fx->s, "d", 2);
    mk_stream(fx->s, "s1");
    assert_int_equal(ota_store_group_add(fx->s, "g", "d1"), OTA_STORE_OK);
    const char *two[] = {"d0", "d1"};
    ota_store_job_spec_t spec = {0};
    spec.job_id = "j";
    spec.document = DOC;
    spec.stream_id = "s1";
    spec.things = two;
    spec.n_things = 2;
    spec.in_progress_timeout_min = 5;
    spec.rollout_per_minute = 10;
    spec.abort_failure_percent = 30;
    spec.abort_min_finished = 4;
    assert_int_equal(ota_store_job_create(fx->s, &spec, T0), OTA_STORE_OK);
    assert_int_equal(
        upd(fx->s, "j", "d0", OTA_STORE_EXEC_IN_PROGRESS, "{\"receive\":\"5/9\"}", T0 + 5),
        OTA_STORE_OK);
    reopen(fx);
    ota_store_thing_t t;
    assert_int_equal(ota_store_thing_get(fx->s, "d1", &t), OTA_STORE_OK);
    char out[64] = "";
    assert_int_equal(ota_store_group_members(fx->s, "g", names_cb, out), OTA_STORE_OK);
    assert_string_equal(out, "d1;");
    ota_store_stream_t st;
    assert_int_equal(ota_store_stream_get(fx->s, "s1", &st), OTA_STORE_OK);
    ota_store_stream_free(&st);
    ota_store_job_t j;
    assert_int_equal(ota_store_job_get(fx->s, "j", &j), OTA_STORE_OK);
    assert_int_equal(j.in_progress_timeout_min, 5);
    assert_int_equal(j.rollout_per_minute, 10);
    assert_int_equal(j.abort_failure_percent, 30);
    assert_int_equal(j.abort_min_finished, 4);
    assert_string_equal(j.document, DOC);
    ota_store_job_free(&j);
    ota_store_execution_t e;
    assert_int_equal(ota_store_execution_next(fx->s, "d0", &e), OTA_STORE_OK);
    assert_int_equal(e.status, OTA_STORE_EXEC_IN_PROGRESS);
    assert_string_equal(e.status_details, "{\"receive\":\"5/9\"}");
    assert_int_equal(e.version_number, 2);
    assert_int_equal(e.deadline_ms, T0 + 5 + 5 * MIN);
    ota_store_execution_free(&e);
}

static void test_two_handles(void **state)
{
    fx_t *fx = *state;
    ota_store_t *b;
    assert_int_equal(open_store(fx->dir, &b), OTA_STORE_OK);
    int changed;
    assert_int_equal(ota_store_poll_changes(fx->s, &changed), OTA_STORE_OK);
    assert_int_equal(changed, 1); /* first call */
    assert_int_equal(ota_store_poll_changes(fx->s, &changed), OTA_STORE_OK);
    assert_int_equal(changed, 0);
    assert_int_equal(ota_store_thing_create(fx->s, "own", T0), OTA_STORE_OK);
    assert_int_equal(ota_store_poll_changes(fx->s, &changed), OTA_STORE_OK);
    assert_int_equal(changed, 0); /* own writes are not reported */
    assert_int_equal(ota_store_thing_create(b, "other", T0), OTA_STORE_OK);
    assert_int_equal(ota_store_poll_changes(fx->s, &changed), OTA_STORE_OK);
    assert_int_equal(changed, 1);
    ota_store_thing_t t;
    assert_int_equal(ota_store_thing_get(fx->s, "other", &t), OTA_STORE_OK);
    assert_int_equal(ota_store_thing_get(b, "own", &t), OTA_STORE_OK);
    assert_int_equal(ota_store_thing_create(b, "own", T0), OTA_STORE_EXISTS);
    /* a job created through one handle, canceled through the other */
    const char *own[] = {"own"};
    assert_int_equal(mk_job(b, "j", own, 1, 0, T0), OTA_STORE_OK);
    next_is(fx->s, "own", "j");
    assert_int_equal(ota_store_job_cancel(fx->s, "j", T0 + 1), OTA_STORE_OK);
    next_is(b, "own", NULL);
    ota_store_close(b);
}

/* Several processes writing at once: every write lands, none fails with "busy". */
static void test_concurrent_processes(void **state)
{
    fx_t *fx = *state;
    enum { PROCS = 3, PER = 60 };
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            ota_store_t *c;
            if (open_store(fx->dir, &c) != OTA_STORE_OK)
                _exit(2);
            for (int i = 0; i < PER; i++) {
                char name[32];
                snprintf(name, sizeof name, "p%d-%d", p, i);
                const char *one[] = {name};
                char job[32];
                snprintf(job, sizeof job, "job-%d-%d", p, i);
                if (ota_store_thing_create(c, name, T0) != OTA_STORE_OK ||
                    mk_job(c, job, one, 1, 0, T0) != OTA_STORE_OK ||
                    upd(c, job, name, OTA_STORE_EXEC_SUCCEEDED, NULL, T0) != OTA_STORE_OK) {
                    fprintf(stderr, "child %d: %s\n", p, ota_store_errmsg(c));
                    _exit(1);
                }
            }
            ota_store_close(c);
            _exit(0);
        }
    }
    /* the parent writes too meanwhile */
    for (int i = 0; i < PER; i++) {
        char name[32];
        snprintf(name, sizeof name, "parent-%d", i);
        assert_int_equal(ota_store_thing_create(fx->s, name, T0), OTA_STORE_OK);
    }
    for (int p = 0; p < PROCS; p++) {
        int status;
        assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    int n = 0;
    assert_int_equal(ota_store_thing_list(fx->s, count_cb, &n), OTA_STORE_OK);
    assert_int_equal(n, PER * (PROCS + 1));
    ota_store_job_t j;
    assert_int_equal(ota_store_job_get(fx->s, "job-2-59", &j), OTA_STORE_OK);
    assert_int_equal(j.status, OTA_STORE_JOB_COMPLETED);
    ota_store_job_free(&j);
}

/* Several processes creating the same fresh data directory at the same moment. */
static void test_concurrent_first_open(void **state)
{
    fx_t *fx = *state;
    enum { PROCS = 6 };
    for (int round = 0; round < 5; round++) {
        char dir[400];
        snprintf(dir, sizeof dir, "%s/fresh%d", fx->dir, round);
        if (g_location) { /* a fresh, empty database too */
            ota_store_close(fx->s);
            fx->s = NULL;
            assert_int_equal(ota_test_pg_reset(&g_pg), 0);
        }
        pid_t pids[PROCS];
        for (int p = 0; p < PROCS; p++) {
            pids[p] = fork();
            assert_true(pids[p] >= 0);
            if (pids[p] == 0) {
                ota_store_t *c;
                if (open_store(dir, &c) != OTA_STORE_OK)
                    _exit(2);
                char name[16];
                snprintf(name, sizeof name, "t%d", p);
                int rc = ota_store_thing_create(c, name, T0);
                if (rc != OTA_STORE_OK)
                    fprintf(stderr, "process %d: %s\n", p, ota_store_errmsg(c));
                ota_store_close(c);
                _exit(rc == OTA_STORE_OK ? 0 : 1);
            }
        }
        for (int p = 0; p < PROCS; p++) {
            int status;
            assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
            assert_true(WIFEXITED(status));
            assert_int_equal(WEXITSTATUS(status), 0);
        }
        ota_store_t *c;
        assert_int_equal(open_store(dir, &c), OTA_STORE_OK);
        int n = 0;
        assert_int_equal(ota_store_thing_list(c, count_cb, &n), OTA_STORE_OK);
        assert_int_equal(n, PROCS);
        ota_store_close(c);
    }
}

/* ---- several service instances on one store ---- */

static int claim_cb(void *ctx, const char *thing, int64_t seq, const char *last)
{
    (void)seq;
    (void)last;
    FILE *out = ctx;
    fprintf(out, "n %s\n", thing);
    return 0;
}

static int count_claims_cb(void *ctx, const char *thing, int64_t seq, const char *last)
{
    (void)thing;
    (void)seq;
    (void)last;
    (*(int *)ctx)++;
    return 0;
}

static int done_cb(void *ctx, const char *thing, int64_t seq, const char *last)
{
    return ota_store_notify_done(ctx, thing, seq, last) != OTA_STORE_OK;
}

/*
 * Three processes, each with its own handle, run the periodic sweeps
 * (timeouts, rollout releases) for the same minutes at once, then list the
 * things to notify: every execution times out once, every held-back
 * execution is released once, and every thing is claimed by one process.
 */
static void test_sweeps_once_across_processes(void **state)
{
    fx_t *fx = *state;
    enum { PROCS = 3, N = 40, RATE = 4, MINUTES = 12 };
    const char *names[N];
    char buf[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(buf[i], sizeof buf[i], "w%02d", i);
        names[i] = buf[i];
        assert_int_equal(ota_store_thing_create(fx->s, names[i], T0), OTA_STORE_OK);
    }
    ota_store_job_spec_t spec = {0};
    spec.job_id = "t";
    spec.document = DOC;
    spec.things = names;
    spec.n_things = N;
    spec.in_progress_timeout_min = 1;
    assert_int_equal(ota_store_job_create(fx->s, &spec, T0), OTA_STORE_OK);
    for (int i = 0; i < N; i++)
        assert_int_equal(upd(fx->s, "t", names[i], OTA_STORE_EXEC_IN_PROGRESS, NULL, T0),
                         OTA_STORE_OK);
    assert_int_equal(mk_job(fx->s, "r", names, N, RATE, T0), OTA_STORE_OK);
    assert_int_equal(ota_store_notify_pending(fx->s, done_cb, fx->s), OTA_STORE_OK);
    int fds[PROCS][2];
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        assert_int_equal(pipe(fds[p]), 0);
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            close(fds[p][0]);
            FILE *out = fdopen(fds[p][1], "w");
            ota_store_t *c;
            if (!out || open_store(fx->dir, &c) != OTA_STORE_OK)
                _exit(2);
            size_t timed = 0, released = 0;
            for (int m = 1; m <= MINUTES; m++) {
                size_t a = 0, b = 0;
                if (ota_store_expire_timeouts(c, T0 + m * MIN, &a) != OTA_STORE_OK ||
                    ota_store_rollout_release(c, T0 + m * MIN, &b) != OTA_STORE_OK) {
                    fprintf(stderr, "process %d: %s\n", p, ota_store_errmsg(c));
                    _exit(1);
                }
                timed += a;
                released += b;
            }
            fprintf(out, "t %zu\nr %zu\n", timed, released);
            if (ota_store_notify_pending(c, claim_cb, out) != OTA_STORE_OK)
                _exit(1);
            ota_store_close(c);
            fclose(out);
            _exit(0);
        }
        close(fds[p][1]);
    }
    size_t timed = 0, released = 0;
    int claimed[N] = {0};
    for (int p = 0; p < PROCS; p++) {
        FILE *in = fdopen(fds[p][0], "r");
        assert_non_null(in);
        char line[64];
        while (fgets(line, sizeof line, in)) {
            size_t v;
            int w;
            if (sscanf(line, "t %zu", &v) == 1)
                timed += v;
            else if (sscanf(line, "r %zu", &v) == 1)
                released += v;
            else if (sscanf(line, "n w%d", &w) == 1 && w >= 0 && w < N)
                claimed[w]++;
        }
        fclose(in);
        int status;
        assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_int_equal(timed, N);
    assert_int_equal(released, N - RATE);
    for (int i = 0; i < N; i++) {
        assert_int_equal(claimed[i], 1); /* each thing timed out: notified by one process */
        ota_store_execution_t e;
        assert_int_equal(ota_store_execution_get(fx->s, "t", names[i], &e), OTA_STORE_OK);
        assert_int_equal(e.status, OTA_STORE_EXEC_TIMED_OUT);
        assert_int_equal(e.version_number, 3); /* queued, IN_PROGRESS, one timeout */
        ota_store_execution_free(&e);
    }
    ota_store_job_t j;
    assert_int_equal(ota_store_job_get(fx->s, "r", &j), OTA_STORE_OK);
    assert_int_equal(j.n_unreleased, 0);
    ota_store_job_free(&j);
    /* the processes ended without marking them done (as if killed): their claims hold for the
     * lease, so no other instance sends these notifications meanwhile */
    int n = 0;
    assert_int_equal(ota_store_notify_pending(fx->s, count_claims_cb, &n), OTA_STORE_OK);
    assert_int_equal(n, 0);
}

static void test_null_arguments(void **state)
{
    ota_store_t *s = ((fx_t *)*state)->s;
    assert_int_equal(ota_store_thing_get(s, "x", NULL), OTA_STORE_INVALID);
    assert_int_equal(ota_store_job_create(s, NULL, T0), OTA_STORE_INVALID);
    assert_int_equal(ota_store_execution_update(s, "j", "t", NULL, T0, NULL), OTA_STORE_INVALID);
    assert_int_equal(ota_store_poll_changes(NULL, NULL), OTA_STORE_INVALID);
    assert_int_equal(ota_store_notify_pending(s, NULL, NULL), OTA_STORE_INVALID);
    assert_string_equal(ota_store_errmsg(NULL), "no store handle");
    ota_store_close(NULL);
    ota_store_job_free(NULL);
    ota_store_execution_free(NULL);
    ota_store_stream_free(NULL);
    assert_true(ota_store_valid_job_id("a-b_C9"));
    assert_false(ota_store_valid_job_id("a:b"));
    assert_true(ota_store_valid_thing_name("a:b"));
    assert_false(ota_store_valid_stream_id(""));
}

/* ---- targeting: thing attributes, device types, target version ---- */

static void test_validators(void **state)
{
    (void)state;
    assert_true(ota_store_valid_version("0.0.0"));
    assert_true(ota_store_valid_version("255.255.65535"));
    const char *bad_versions[] = {"",        " 1.2.3",    "1.2.3 ", "01.2.3", "1.2",   "1.2.3.4",
                                  "256.0.0", "1.2.65536", "1..3",   "v1.2.3", "1.2.-3"};
    for (size_t i = 0; i < sizeof bad_versions / sizeof bad_versions[0]; i++)
        assert_false(ota_store_valid_version(bad_versions[i]));
    assert_false(ota_store_valid_version(NULL));
    assert_true(ota_store_valid_device_types("sim"));
    assert_true(ota_store_valid_device_types("sim,nrf52840-dk,stm32_f4.v2"));
    const char *bad_types[] = {"", ",", "a,", ",a", "a,,b", "a,a", "a b", "a/b", "\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad_types / sizeof bad_types[0]; i++)
        assert_false(ota_store_valid_device_types(bad_types[i]));
    assert_true(ota_store_valid_attr_key("site_2"));
    assert_false(ota_store_valid_attr_key("a-b"));
    assert_true(ota_store_valid_attr_value("Building 7, floor 2"));
    assert_false(ota_store_valid_attr_value("a\"b"));
    assert_false(ota_store_valid_attr_value("a\nb"));
}

typedef struct {
    char text[512];
} attrs_t;

static int attr_cb(void *ctx, const char *key, const char *value, int64_t updated_ms)
{
    attrs_t *a = ctx;
    (void)updated_ms;
    size_t n = strlen(a->text);
    snprintf(a->text + n, sizeof a->text - n, "%s=%s;", key, value);
    return 0;
}

static void test_thing_attrs(void **state)
{
    ota_store_t *s = ((fx_t *)*state)->s;
    mk_things(s, "d", 1);
    assert_int_equal(ota_store_thing_attr_set(s, "d0", "site", "lab", T0), OTA_STORE_OK);
    assert_int_equal(ota_store_thing_attr_set(s, "d0", "deviceType", "sim", T0), OTA_STORE_OK);
    assert_int_equal(ota_store_thing_attr_set(s, "d0", "site", "roof", T0), OTA_STORE_OK);
    char v[OTA_STORE_ATTR_VALUE_MAX + 1];
    assert_int_equal(ota_store_thing_attr_get(s, "d0", "site", v, sizeof v), OTA_STORE_OK);
    assert_string_equal(v, "roof");
    attrs_t a = {""};
    assert_int_equal(ota_store_thing_attr_list(s, "d0", attr_cb, &a), OTA_STORE_OK);
    assert_string_equal(a.text, "deviceType=sim;site=roof;");
    /* bad input changes nothing */
    assert_int_equal(ota_store_thing_attr_set(s, "d0", "deviceType", "a b", T0), OTA_STORE_INVALID);
    assert_int_equal(ota_store_thing_attr_set(s, "d0", "firmwareVersion", " 1.2.3", T0),
                     OTA_STORE_INVALID);
    assert_int_equal(ota_store_thing_attr_set(s, "d0", "bad-key", "x", T0), OTA_STORE_INVALID);
    assert_int_equal(ota_store_thing_attr_set(s, "nope", "site", "x", T0), OTA_STORE_NOT_FOUND);
    assert_int_equal(ota_store_thing_attr_get(s, "d0", "deviceType", v, sizeof v), OTA_STORE_OK);
    assert_string_equal(v, "sim");
    /* removal; removing twice is NOT_FOUND */
    assert_int_equal(ota_store_thing_attr_set(s, "d0", "site", NULL, T0), OTA_STORE_OK);
    assert_int_equal(ota_store_thing_attr_set(s, "d0", "site", NULL, T0), OTA_STORE_NOT_FOUND);
    assert_int_equal(ota_store_thing_attr_get(s, "d0", "site", v, sizeof v), OTA_STORE_NOT_FOUND);
    /* bounded count */
    char key[16];
    for (int i = 1; i < OTA_STORE_ATTRS_MAX; i++) {
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(ota_store_thing_attr_set(s, "d0", key, "x", T0), OTA_STORE_OK);
    }
    assert_int_equal(ota_store_thing_attr_set(s, "d0", "one_more", "x", T0), OTA_STORE_INVALID);
    assert_int_equal(ota_store_thing_attr_set(s, "d0", "k1", "y", T0), OTA_STORE_OK);
}

/* A job "j" of DOC for things, installing version. */
static ota_store_job_spec_t version_job(const char *const *things, size_t n, const char *version)
{
    ota_store_job_spec_t spec = {0};
    spec.job_id = "j";
    spec.document = DOC;
    spec.things = things;
    spec.n_things = n;
    spec.target_version = version;
    return spec;
}

/* Checks that thing's execution of job is SKIPPED with these statusDetails. */
static void expect_skipped(ota_store_t *s, const char *job, const char *thing, const char *details)
{
    ota_store_execution_t e;
    assert_int_equal(ota_store_execution_get(s, job, thing, &e), OTA_STORE_OK);
    assert_int_equal(e.status, OTA_STORE_EXEC_SKIPPED);
    assert_string_equal(e.status_details, details);
    ota_store_execution_free(&e);
}

static void test_targeting(void **state)
{
    ota_store_t *s = ((fx_t *)*state)->s;
    mk_things(s, "d", 4);
    assert_int_equal(ota_store_thing_attr_set(s, "d0", "deviceType", "sim", T0), OTA_STORE_OK);
    assert_int_equal(ota_store_thing_attr_set(s, "d0", "firmwareVersion", "1.1.0", T0),
                     OTA_STORE_OK);
    assert_int_equal(ota_store_thing_attr_set(s, "d1", "deviceType", "sim", T0), OTA_STORE_OK);
    assert_int_equal(ota_store_thing_attr_set(s, "d2", "deviceType", "board-x", T0), OTA_STORE_OK);
    const char *all[] = {"d0", "d1", "d2", "d3"};
    ota_store_job_spec_t spec = version_job(all, 4, "1.1.0");
    spec.device_types = "sim,board-y";
    spec.abort_failure_percent = 1; /* skips are never failures */
    spec.abort_min_finished = 1;
    spec.rollout_per_minute = 1; /* skips take no rollout slot */
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_OK);
    ota_store_job_t j;
    assert_int_equal(ota_store_job_get(s, "j", &j), OTA_STORE_OK);
    assert_int_equal(j.n_skipped, 3);
    assert_int_equal(j.n_queued, 1);
    assert_int_equal(j.n_unreleased, 0);
    assert_string_equal(j.target_version, "1.1.0");
    assert_string_equal(j.device_types, "sim,board-y");
    assert_int_equal(j.status, OTA_STORE_JOB_IN_PROGRESS);
    ota_store_job_free(&j);
    expect_skipped(s, "j", "d0", "{\"skipped\":\"already on 1.1.0\"}");
    expect_skipped(s, "j", "d2", "{\"skipped\":\"device type board-x is not one of sim,board-y\"}");
    expect_skipped(s, "j", "d3", "{\"skipped\":\"device type unknown is not one of sim,board-y\"}");
    next_is(s, "d0", NULL);
    next_is(s, "d1", "j");
    assert_string_equal(ota_store_exec_status_name(OTA_STORE_EXEC_SKIPPED), "SKIPPED");

    /* a second job for the same version, queued while the first runs */
    const char *d1[] = {"d1"};
    spec.job_id = "k";
    spec.things = d1;
    spec.n_things = 1;
    spec.rollout_per_minute = 0;
    assert_int_equal(ota_store_job_create(s, &spec, T0 + 1), OTA_STORE_OK);
    assert_int_equal(exec_status(s, "k", "d1"), OTA_STORE_EXEC_QUEUED);
    /* d1 succeeds on j: it runs 1.1.0 now, so k is skipped, and both jobs complete */
    assert_int_equal(upd(s, "j", "d1", OTA_STORE_EXEC_SUCCEEDED, NULL, T0 + 2), OTA_STORE_OK);
    char v[OTA_STORE_ATTR_VALUE_MAX + 1];
    assert_int_equal(ota_store_thing_attr_get(s, "d1", "firmwareVersion", v, sizeof v),
                     OTA_STORE_OK);
    assert_string_equal(v, "1.1.0");
    assert_int_equal(exec_status(s, "k", "d1"), OTA_STORE_EXEC_SKIPPED);
    assert_int_equal(ota_store_job_get(s, "j", &j), OTA_STORE_OK);
    assert_int_equal(j.status, OTA_STORE_JOB_COMPLETED);
    ota_store_job_free(&j);
    assert_int_equal(ota_store_job_get(s, "k", &j), OTA_STORE_OK);
    assert_int_equal(j.status, OTA_STORE_JOB_COMPLETED);
    assert_int_equal(j.n_skipped, 1);
    ota_store_job_free(&j);
    next_is(s, "d1", NULL);

    /* an operator's change of device type skips what no longer fits */
    spec.job_id = "m";
    spec.target_version = "1.2.0";
    spec.device_types = "sim";
    assert_int_equal(ota_store_job_create(s, &spec, T0 + 3), OTA_STORE_OK);
    assert_int_equal(exec_status(s, "m", "d1"), OTA_STORE_EXEC_QUEUED);
    assert_int_equal(ota_store_thing_attr_set(s, "d1", "deviceType", "board-x", T0 + 4),
                     OTA_STORE_OK);
    assert_int_equal(exec_status(s, "m", "d1"), OTA_STORE_EXEC_SKIPPED);

    /* bad targeting values are refused */
    spec.job_id = "bad";
    spec.target_version = "1.2";
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_INVALID);
    spec.target_version = "1.2.0";
    spec.device_types = "sim,,x";
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_INVALID);
    assert_int_equal(ota_store_job_get(s, "bad", &j), OTA_STORE_NOT_FOUND);
}

/* A thing that reports a newer version than a job's is skipped, before the download its
 * agent would refuse as a downgrade; only versions that both parse are compared. */
static void test_downgrade_skipped(void **state)
{
    ota_store_t *s = ((fx_t *)*state)->s;
    mk_things(s, "d", 4);
    assert_int_equal(ota_store_thing_attr_set(s, "d0", "firmwareVersion", "2.0.0", T0),
                     OTA_STORE_OK);
    assert_int_equal(ota_store_thing_attr_set(s, "d1", "firmwareVersion", "1.0.9", T0),
                     OTA_STORE_OK);
    /* 1.10.0 is newer than 1.9.0 as versions, older as text */
    assert_int_equal(ota_store_thing_attr_set(s, "d2", "firmwareVersion", "1.10.0", T0),
                     OTA_STORE_OK);
    const char *all[] = {"d0", "d1", "d2", "d3"};
    ota_store_job_spec_t spec = version_job(all, 4, "1.9.0");
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_OK);
    ota_store_job_t j;
    assert_int_equal(ota_store_job_get(s, "j", &j), OTA_STORE_OK);
    assert_int_equal(j.n_skipped, 2);
    assert_int_equal(j.n_queued, 2);
    ota_store_job_free(&j);
    expect_skipped(s, "j", "d0", "{\"skipped\":\"runs 2.0.0, newer than 1.9.0\"}");
    expect_skipped(s, "j", "d2", "{\"skipped\":\"runs 1.10.0, newer than 1.9.0\"}");
    /* older (d1) and unknown (d3) versions get the job */
    assert_int_equal(exec_status(s, "j", "d1"), OTA_STORE_EXEC_QUEUED);
    assert_int_equal(exec_status(s, "j", "d3"), OTA_STORE_EXEC_QUEUED);
    next_is(s, "d0", NULL);
    next_is(s, "d2", NULL);
    next_is(s, "d1", "j");
    /* a report of a newer version while queued skips it too */
    assert_int_equal(ota_store_thing_attr_set(s, "d3", "firmwareVersion", "3.0.0", T0 + 1),
                     OTA_STORE_OK);
    assert_int_equal(exec_status(s, "j", "d3"), OTA_STORE_EXEC_SKIPPED);
    /* a job without a version skips nobody for theirs */
    spec.job_id = "k";
    spec.target_version = NULL;
    assert_int_equal(ota_store_job_create(s, &spec, T0 + 2), OTA_STORE_OK);
    assert_int_equal(ota_store_job_get(s, "k", &j), OTA_STORE_OK);
    assert_int_equal(j.n_skipped, 0);
    ota_store_job_free(&j);
}

/* ---- operator actions and rollouts ---- */

static void test_execution_cancel_and_delete(void **state)
{
    fx_t *fx = *state;
    ota_store_t *s = fx->s;
    mk_things(s, "d", 3);
    char src[600];
    snprintf(src, sizeof src, "%s/fw.bin", fx->dir);
    FILE *fw = fopen(src, "wb");
    assert_non_null(fw);
    fputs("firmware", fw);
    fclose(fw);
    ota_store_file_t file;
    assert_int_equal(ota_store_file_import(s, src, &file), OTA_STORE_OK);
    ota_store_stream_file_t sf = {0, file.path, file.size};
    assert_int_equal(ota_store_stream_create(s, "s1", "fw", &sf, 1, T0), OTA_STORE_OK);
    const char *all[] = {"d0", "d1", "d2"};
    ota_store_job_spec_t spec = {0};
    spec.job_id = "j";
    spec.document = DOC;
    spec.stream_id = "s1";
    spec.things = all;
    spec.n_things = 3;
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_OK);
    assert_int_equal(upd(s, "j", "d1", OTA_STORE_EXEC_IN_PROGRESS, NULL, T0 + 1), OTA_STORE_OK);
    assert_int_equal(ota_store_execution_cancel(s, "j", "d0", 0, T0 + 2), OTA_STORE_OK);
    assert_int_equal(exec_status(s, "j", "d0"), OTA_STORE_EXEC_CANCELED);
    next_is(s, "d0", NULL);
    assert_int_equal(ota_store_execution_cancel(s, "j", "d0", 0, T0 + 2), OTA_STORE_TERMINAL);
    /* in progress: only with force */
    assert_int_equal(ota_store_execution_cancel(s, "j", "d1", 0, T0 + 2), OTA_STORE_CONFLICT);
    assert_int_equal(exec_status(s, "j", "d1"), OTA_STORE_EXEC_IN_PROGRESS);
    assert_int_equal(ota_store_execution_cancel(s, "j", "d1", 1, T0 + 3), OTA_STORE_OK);
    assert_int_equal(upd(s, "j", "d1", OTA_STORE_EXEC_SUCCEEDED, NULL, T0 + 4), OTA_STORE_TERMINAL);
    assert_int_equal(ota_store_execution_cancel(s, "j", "nobody", 1, T0), OTA_STORE_NOT_FOUND);
    /* delete: a running job only with force; the stream and its file go too */
    assert_int_equal(ota_store_job_delete(s, "j", 0, T0 + 5), OTA_STORE_CONFLICT);
    assert_int_equal(exec_status(s, "j", "d2"), OTA_STORE_EXEC_QUEUED);
    ota_store_stream_t st;
    assert_int_equal(ota_store_stream_get(s, "s1", &st), OTA_STORE_OK);
    char path[4096];
    snprintf(path, sizeof path, "%s", st.files[0].path);
    ota_store_stream_free(&st);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(ota_store_job_delete(s, "j", 1, T0 + 5), OTA_STORE_OK);
    ota_store_job_t j;
    assert_int_equal(ota_store_job_get(s, "j", &j), OTA_STORE_NOT_FOUND);
    assert_int_equal(ota_store_stream_get(s, "s1", &st), OTA_STORE_NOT_FOUND);
    assert_int_equal(access(path, F_OK), -1);
    next_is(s, "d2", NULL);
    assert_int_equal(ota_store_job_delete(s, "j", 1, T0 + 5), OTA_STORE_NOT_FOUND);
    /* a finished job is deleted without force; a canceled one records why */
    spec.stream_id = NULL;
    spec.job_id = "k";
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_OK);
    assert_int_equal(ota_store_job_cancel_why(s, "k", "LOST_BOARD", "bad batch", T0 + 1),
                     OTA_STORE_OK);
    assert_int_equal(ota_store_job_get(s, "k", &j), OTA_STORE_OK);
    assert_string_equal(j.reason_code, "LOST_BOARD");
    assert_string_equal(j.reason, "bad batch");
    ota_store_job_free(&j);
    assert_int_equal(ota_store_job_delete(s, "k", 0, T0 + 2), OTA_STORE_OK);
    assert_int_equal(ota_store_job_cancel_why(s, "k", "bad code!", NULL, T0), OTA_STORE_INVALID);
}

static void test_abort_rules(void **state)
{
    ota_store_t *s = ((fx_t *)*state)->s;
    mk_things(s, "d", 6);
    const char *all[] = {"d0", "d1", "d2", "d3", "d4", "d5"};
    ota_store_job_spec_t spec = {0};
    spec.job_id = "j";
    spec.document = DOC;
    spec.things = all;
    spec.n_things = 6;
    spec.n_abort_rules = 2;
    spec.abort_rules[0] = (ota_store_abort_rule_t){OTA_STORE_FAILURE_TIMED_OUT, 50, 2};
    spec.abort_rules[1] = (ota_store_abort_rule_t){OTA_STORE_FAILURE_REJECTED, 60, 3};
    spec.rollout.n_phases = 2; /* d0-d2, then d3-d5 held */
    spec.rollout.phase_percent[0] = 50;
    spec.rollout.phase_percent[1] = 100;
    spec.rollout.phase_success_percent = 100;
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_OK);
    /* FAILED is not what the rules count */
    assert_int_equal(upd(s, "j", "d0", OTA_STORE_EXEC_FAILED, NULL, T0 + 1), OTA_STORE_OK);
    assert_int_equal(upd(s, "j", "d1", OTA_STORE_EXEC_REJECTED, NULL, T0 + 1), OTA_STORE_OK);
    ota_store_job_t j;
    assert_int_equal(ota_store_job_get(s, "j", &j), OTA_STORE_OK);
    assert_int_equal(j.status, OTA_STORE_JOB_IN_PROGRESS);
    assert_int_equal(j.n_unreleased, 3);
    assert_int_equal(j.n_abort_rules, 2);
    ota_store_job_free(&j);
    /* 2 of 3 executed REJECTED = 66% >= 60% once 3 executed */
    assert_int_equal(upd(s, "j", "d2", OTA_STORE_EXEC_REJECTED, NULL, T0 + 2), OTA_STORE_OK);
    assert_int_equal(ota_store_job_get(s, "j", &j), OTA_STORE_OK);
    assert_int_equal(j.status, OTA_STORE_JOB_ABORTED);
    assert_string_equal(j.reason_code, "ABORT_REJECTED");
    assert_string_equal(
        j.reason, "2 of 3 executed things REJECTED (66%), rule REJECTED >= 60% once 3 executed");
    /* the held executions are canceled, not left waiting */
    assert_int_equal(j.n_unreleased, 0);
    assert_int_equal(j.n_canceled, 3);
    ota_store_job_free(&j);
    assert_int_equal(exec_status(s, "j", "d5"), OTA_STORE_EXEC_CANCELED);
    /* bad rules are refused */
    spec.job_id = "bad";
    spec.abort_rules[0].percent = 0;
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_INVALID);
}

static int released_count(ota_store_t *s, const char *job)
{
    ota_store_job_t j;
    assert_int_equal(ota_store_job_get(s, job, &j), OTA_STORE_OK);
    int n = (int)(j.n_executions - j.n_unreleased);
    ota_store_job_free(&j);
    return n;
}

static void test_phases_and_rates(void **state)
{
    ota_store_t *s = ((fx_t *)*state)->s;
    mk_things(s, "d", 10);
    const char *all[] = {"d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "d9"};
    ota_store_job_spec_t spec = {0};
    spec.job_id = "p";
    spec.document = DOC;
    spec.things = all;
    spec.n_things = 10;
    spec.rollout.n_phases = 3; /* 1 thing, then up to 5, then all */
    spec.rollout.phase_percent[0] = 10;
    spec.rollout.phase_percent[1] = 50;
    spec.rollout.phase_percent[2] = 100;
    spec.rollout.phase_success_percent = 75;
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_OK);
    assert_int_equal(released_count(s, "p"), 1);
    size_t n = 0;
    assert_int_equal(ota_store_rollout_release(s, T0 + 10 * MIN, &n), OTA_STORE_OK);
    assert_int_equal(n, 0); /* time alone opens no phase */
    assert_int_equal(upd(s, "p", "d0", OTA_STORE_EXEC_SUCCEEDED, NULL, T0 + 1), OTA_STORE_OK);
    assert_int_equal(released_count(s, "p"), 5);
    ota_store_job_t j;
    assert_int_equal(ota_store_job_get(s, "p", &j), OTA_STORE_OK);
    assert_int_equal(j.current_phase, 1);
    ota_store_job_free(&j);
    /* phase 2 (d1-d4): 3 of 4 = 75% opens phase 3 */
    assert_int_equal(upd(s, "p", "d1", OTA_STORE_EXEC_SUCCEEDED, NULL, T0 + 2), OTA_STORE_OK);
    assert_int_equal(upd(s, "p", "d2", OTA_STORE_EXEC_SUCCEEDED, NULL, T0 + 2), OTA_STORE_OK);
    assert_int_equal(released_count(s, "p"), 5);
    assert_int_equal(upd(s, "p", "d3", OTA_STORE_EXEC_SUCCEEDED, NULL, T0 + 3), OTA_STORE_OK);
    assert_int_equal(released_count(s, "p"), 10);

    /* a phase that ends below its threshold stops the job, with the reason */
    spec.job_id = "q";
    spec.n_things = 2;
    spec.rollout.n_phases = 2;
    spec.rollout.phase_percent[0] = 50;
    spec.rollout.phase_percent[1] = 100;
    spec.rollout.phase_success_percent = 100;
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_OK);
    assert_int_equal(upd(s, "q", "d0", OTA_STORE_EXEC_FAILED, NULL, T0 + 1), OTA_STORE_OK);
    assert_int_equal(ota_store_job_get(s, "q", &j), OTA_STORE_OK);
    assert_int_equal(j.status, OTA_STORE_JOB_ABORTED);
    assert_string_equal(j.reason_code, "ABORT_PHASE");
    assert_string_equal(j.reason, "phase 1: 0 of 1 succeeded (0%), below 100%");
    ota_store_job_free(&j);
    assert_int_equal(exec_status(s, "q", "d1"), OTA_STORE_EXEC_CANCELED);

    /* exponential rate: 1 per minute, doubled after every 2 notified, at most 3 */
    memset(&spec.rollout, 0, sizeof spec.rollout);
    spec.job_id = "e";
    spec.n_things = 10;
    spec.rollout_per_minute = 3;
    spec.rollout.base_per_minute = 1;
    spec.rollout.factor_x10 = 20;
    spec.rollout.increase_every = 2;
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_OK);
    assert_int_equal(released_count(s, "e"), 1);
    assert_int_equal(ota_store_rollout_release(s, T0 + 30000, &n), OTA_STORE_OK);
    assert_int_equal(released_count(s, "e"), 1); /* same minute */
    assert_int_equal(ota_store_rollout_release(s, T0 + MIN, &n), OTA_STORE_OK);
    assert_int_equal(released_count(s, "e"), 2); /* rate 1 (1 notified) */
    assert_int_equal(ota_store_rollout_release(s, T0 + 2 * MIN, &n), OTA_STORE_OK);
    assert_int_equal(released_count(s, "e"), 4); /* rate 2 (2 notified) */
    assert_int_equal(ota_store_rollout_release(s, T0 + 3 * MIN, &n), OTA_STORE_OK);
    assert_int_equal(released_count(s, "e"), 7); /* rate 4, capped at 3 */
    int64_t next = 0;
    assert_int_equal(ota_store_next_timed_work(s, &next), OTA_STORE_OK);

    /* scheduled start and maintenance window */
    memset(&spec.rollout, 0, sizeof spec.rollout);
    spec.rollout_per_minute = 0;
    spec.job_id = "w";
    spec.n_things = 2;
    spec.rollout.start_at_ms = T0 + 5 * MIN;
    int64_t day_ms = 1440 * MIN, midnight = (T0 + 5 * MIN) / day_ms * day_ms;
    uint32_t start_min = (uint32_t)((T0 + 5 * MIN - midnight) / MIN);
    spec.rollout.window_start_min = (start_min + 60) % 1440; /* opens an hour after the start */
    spec.rollout.window_end_min = (start_min + 120) % 1440;
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_OK);
    assert_int_equal(released_count(s, "w"), 0);
    assert_int_equal(ota_store_rollout_release(s, T0 + 6 * MIN, &n), OTA_STORE_OK);
    assert_int_equal(released_count(s, "w"), 0); /* started, but outside the window */
    assert_int_equal(ota_store_rollout_release(s, T0 + 66 * MIN, &n), OTA_STORE_OK);
    assert_int_equal(released_count(s, "w"), 2);

    /* bad rollouts are refused */
    spec.job_id = "bad";
    spec.rollout.window_end_min = 1440;
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_INVALID);
    spec.rollout.window_end_min = 0;
    spec.rollout.n_phases = 2;
    spec.rollout.phase_percent[0] = 60;
    spec.rollout.phase_percent[1] = 50;
    spec.rollout.phase_success_percent = 50;
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_INVALID);
    spec.rollout.n_phases = 0;
    spec.rollout.base_per_minute = 1;
    spec.rollout.factor_x10 = 60;
    spec.rollout.increase_every = 1;
    assert_int_equal(ota_store_job_create(s, &spec, T0), OTA_STORE_INVALID);
}

/* A group saved before presence could be unknown, with a query on it, keeps its members and
 * its continuous job's executions (a new group may not use presence). */
static void test_stored_presence_query_keeps_working(void **state)
{
    fx_t *fx = *state;
    ota_store_t *s = fx->s;
    mk_things(s, "d", 2);
    assert_int_equal(ota_store_group_create(s, "lab-online", "site=lab", T0), OTA_STORE_OK);
    assert_int_equal(ota_store_group_create(s, "x", "site=lab,connected=true", T0),
                     OTA_STORE_INVALID);
    raw_sql(fx, "UPDATE groups SET query = 'site=lab,connected=true' WHERE name = 'lab-online'");
    /* both online on broker 1, a gap there, d0 seen again: d0 true, d1 unknown */
    assert_int_equal(ota_store_presence_notice(s, "d0", 1, 1, 0, T0), OTA_STORE_OK);
    assert_int_equal(ota_store_presence_notice(s, "d1", 1, 1, 0, T0), OTA_STORE_OK);
    assert_int_equal(ota_store_presence_gap(s, 1u << 1, T0 + 1, NULL), OTA_STORE_OK);
    assert_int_equal(ota_store_presence_notice(s, "d0", 1, 1, 0, T0 + 2), OTA_STORE_OK);
    for (int i = 0; i < 2; i++)
        assert_int_equal(ota_store_thing_attr_set(s, i ? "d1" : "d0", "site", "lab", T0),
                         OTA_STORE_OK);
    char out[256] = "";
    assert_int_equal(ota_store_group_members(s, "lab-online", names_cb, out), OTA_STORE_OK);
    assert_string_equal(out, "d0;");
    const char *groups[] = {"lab-online"};
    assert_int_equal(mk_continuous(s, "c", groups, 1), OTA_STORE_OK);
    next_is(s, "d0", "c");
    /* another attribute's change re-checks the group: d0 still matches, its job stays */
    assert_int_equal(ota_store_thing_attr_set(s, "d0", "firmwareVersion", "1.0.0", T0 + 1),
                     OTA_STORE_OK);
    next_is(s, "d0", "c");
}

/* The presence attributes do not count against a thing's attribute limit. */
static void test_presence_beyond_attribute_limit(void **state)
{
    ota_store_t *s = ((fx_t *)*state)->s;
    mk_things(s, "d", 1);
    char key[16];
    for (int i = 0; i < OTA_STORE_ATTRS_MAX; i++) {
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(ota_store_thing_attr_set(s, "d0", key, "v", T0), OTA_STORE_OK);
    }
    assert_int_equal(ota_store_thing_attr_set(s, "d0", "one_more", "v", T0), OTA_STORE_INVALID);
    /* a notice is recorded, lastSeen included; the service's own attributes (lastSeen,
     * disabled, revoked: not counted against the limit) are written by the service alone */
    assert_int_equal(ota_store_presence_notice(s, "d0", 2, 1, 1u << 1, T0 + 5), OTA_STORE_OK);
    assert_int_equal(ota_store_thing_service_attr_set(s, "d0", "lastSeen", "1", T0), OTA_STORE_OK);
    assert_int_equal(ota_store_thing_service_attr_set(s, "d0", "disabled", "true", T0),
                     OTA_STORE_OK);
    assert_int_equal(ota_store_thing_service_attr_set(s, "d0", "revoked", "true", T0),
                     OTA_STORE_OK);
    const char *owned[] = {"connected", "connectedTo", "presenceUnknownOn",
                           "lastSeen",  "disabled",    "credentialsRotated",
                           "revoked"};
    for (int i = 0; i < 7; i++) {
        assert_non_null(ota_store_attr_owner(owned[i]));
        assert_int_equal(ota_store_thing_attr_set(s, "d0", owned[i], "1", T0), OTA_STORE_INVALID);
        assert_int_equal(ota_store_thing_attr_set(s, "d0", owned[i], NULL, T0), OTA_STORE_INVALID);
        /* the computed ones are never stored, not even by the service */
        if (i < 3)
            assert_int_equal(ota_store_thing_service_attr_set(s, "d0", owned[i], "1", T0),
                             OTA_STORE_INVALID);
    }
    assert_non_null(strstr(ota_store_errmsg(s), "otter thing revoke"));
    assert_int_equal(ota_store_thing_attr_set(s, "d0", "disabled", NULL, T0), OTA_STORE_INVALID);
    assert_non_null(strstr(ota_store_errmsg(s), "otter thing enable"));
    assert_null(ota_store_attr_owner("site"));
    assert_int_equal(ota_store_thing_service_attr_set(s, "d0", "disabled", NULL, T0), OTA_STORE_OK);
    char v[OTA_STORE_ATTR_VALUE_MAX + 1];
    assert_int_equal(ota_store_thing_attr_get(s, "d0", "connectedTo", v, sizeof v), OTA_STORE_OK);
    assert_string_equal(v, "2");
    assert_int_equal(ota_store_thing_attr_set(s, "d0", "one_more", "v", T0), OTA_STORE_INVALID);
    assert_int_equal(ota_store_thing_attr_set(s, "d0", "k0", "w", T0), OTA_STORE_OK);
}

/* ---- dynamic groups and continuous jobs ---- */

static void test_dynamic_groups_and_continuous_jobs(void **state)
{
    ota_store_t *s = ((fx_t *)*state)->s;
    mk_things(s, "d", 4);
    assert_true(ota_store_valid_query("deviceType=sim,firmwareVersion<1.2.0"));
    assert_true(ota_store_valid_query("site!=roof"));
    const char *bad[] = {"", "deviceType", "=sim", "a=b,", "v<1.2", "a==b", "a=\"b\"",
                         "a=1,b=2,c=3,d=4,e=5,f=6,g=7,h=8,i=9",
                         /* presence is not always known: no group follows it */
                         "connected=true", "site=lab,connectedTo!=3", "presenceUnknownOn=2",
                         "lastSeen!=0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(ota_store_valid_query(bad[i]));
    assert_int_equal(
        ota_store_group_create(s, "old-sims", "deviceType=sim,firmwareVersion<1.2.0", T0),
        OTA_STORE_OK);
    assert_int_equal(ota_store_group_create(s, "old-sims", NULL, T0), OTA_STORE_EXISTS);
    assert_int_equal(ota_store_group_create(s, "x", "v<1.2", T0), OTA_STORE_INVALID);
    assert_int_equal(ota_store_group_add(s, "old-sims", "d0"), OTA_STORE_INVALID); /* dynamic */
    assert_int_equal(ota_store_thing_attr_set(s, "d0", "deviceType", "sim", T0), OTA_STORE_OK);
    assert_int_equal(ota_store_thing_attr_set(s, "d0", "firmwareVersion", "1.1.9", T0),
                     OTA_STORE_OK);
    assert_int_equal(ota_store_thing_attr_set(s, "d1", "deviceType", "sim", T0), OTA_STORE_OK);
    assert_int_equal(ota_store_thing_attr_set(s, "d1", "firmwareVersion", "1.10.0", T0),
                     OTA_STORE_OK); /* versions compare as numbers: 1.10.0 > 1.2.0 */
    assert_int_equal(ota_store_thing_attr_set(s, "d2", "deviceType", "sim", T0), OTA_STORE_OK);
    char out[256] = "";
    assert_int_equal(ota_store_group_members(s, "old-sims", names_cb, out), OTA_STORE_OK);
    assert_string_equal(out, "d0;"); /* d2 has no version: it matches no version term */

    /* continuous job on the dynamic group and a static one */
    assert_int_equal(ota_store_group_add(s, "lab", "d3"), OTA_STORE_OK);
    const char *groups[] = {"old-sims", "lab"};
    assert_int_equal(mk_continuous(s, "c", groups, 2), OTA_STORE_OK);
    next_is(s, "d0", "c");
    next_is(s, "d3", "c");
    /* a thing that comes to match the query gets the job; one that joins the
     * static group too */
    assert_int_equal(ota_store_thing_attr_set(s, "d2", "firmwareVersion", "1.0.0", T0 + 1),
                     OTA_STORE_OK);
    next_is(s, "d2", "c");
    assert_int_equal(ota_store_group_add(s, "lab", "d1"), OTA_STORE_OK);
    next_is(s, "d1", "c");
    /* leaving every target group removes a QUEUED execution */
    assert_int_equal(ota_store_group_remove(s, "lab", "d1"), OTA_STORE_OK);
    assert_int_equal(exec_status(s, "c", "d1"), OTA_STORE_EXEC_REMOVED);
    next_is(s, "d1", NULL);
    /* a continuous job stays IN_PROGRESS when every execution finished */
    assert_int_equal(upd(s, "c", "d0", OTA_STORE_EXEC_SUCCEEDED, NULL, T0 + 2), OTA_STORE_OK);
    assert_int_equal(upd(s, "c", "d2", OTA_STORE_EXEC_SUCCEEDED, NULL, T0 + 2), OTA_STORE_OK);
    assert_int_equal(upd(s, "c", "d3", OTA_STORE_EXEC_SUCCEEDED, NULL, T0 + 2), OTA_STORE_OK);
    ota_store_job_t j;
    assert_int_equal(ota_store_job_get(s, "c", &j), OTA_STORE_OK);
    assert_int_equal(j.status, OTA_STORE_JOB_IN_PROGRESS);
    assert_true(j.continuous);
    ota_store_job_free(&j);
    /* a targeted group cannot be deleted while the job runs */
    assert_int_equal(ota_store_group_delete(s, "lab"), OTA_STORE_CONFLICT);
    assert_int_equal(ota_store_job_cancel(s, "c", T0 + 3), OTA_STORE_OK);
    assert_int_equal(ota_store_group_delete(s, "lab"), OTA_STORE_OK);
    ota_store_group_t g;
    assert_int_equal(ota_store_group_get(s, "old-sims", &g), OTA_STORE_OK);
    assert_string_equal(g.query, "deviceType=sim,firmwareVersion<1.2.0");
    assert_int_equal(g.n_members, 2);
}

/* A delivery applied once is not applied again; another digest or a forgotten session is. */
static void test_deliveries_applied_once(void **state)
{
    fx_t *fx = *state;
    ota_store_t *s = fx->s;
    mk_things(s, "d", 1);
    const char *one[] = {"d0"};
    assert_int_equal(mk_job(s, "j", one, 1, 0, T0), OTA_STORE_OK);
    ota_store_execution_t after;
    ota_store_exec_update_t u = {.status = OTA_STORE_EXEC_IN_PROGRESS,
                                 .status_details = "{\"step\":\"1\"}",
                                 .delivery_session = "svc",
                                 .delivery_id = 7,
                                 .delivery_digest = 1234};
    assert_int_equal(ota_store_execution_update(s, "j", "d0", &u, T0 + 1, &after), OTA_STORE_OK);
    assert_int_equal(after.version_number, 2);
    ota_store_execution_free(&after);
    /* the broker delivers it again (same session, packet id, digest): nothing changes */
    assert_int_equal(ota_store_execution_update(s, "j", "d0", &u, T0 + 2, &after),
                     OTA_STORE_DUPLICATE);
    assert_int_equal(after.version_number, 2);
    assert_string_equal(after.status_details, "{\"step\":\"1\"}");
    ota_store_execution_free(&after);
    /* kept across a restart of the service */
    reopen(fx);
    s = fx->s;
    assert_int_equal(ota_store_execution_update(s, "j", "d0", &u, T0 + 3, &after),
                     OTA_STORE_DUPLICATE);
    ota_store_execution_free(&after);
    /* a new message reusing the packet id has another digest: applied */
    u.delivery_digest = 99;
    u.status_details = "{\"step\":\"2\"}";
    assert_int_equal(ota_store_execution_update(s, "j", "d0", &u, T0 + 4, &after), OTA_STORE_OK);
    assert_int_equal(after.version_number, 3);
    ota_store_execution_free(&after);
    /* a terminal update delivered twice is answered as applied, not as a bad transition */
    u.status = OTA_STORE_EXEC_SUCCEEDED;
    u.delivery_id = 8;
    assert_int_equal(ota_store_execution_update(s, "j", "d0", &u, T0 + 5, &after), OTA_STORE_OK);
    ota_store_execution_free(&after);
    assert_int_equal(ota_store_execution_update(s, "j", "d0", &u, T0 + 6, &after),
                     OTA_STORE_DUPLICATE);
    assert_int_equal(after.status, OTA_STORE_EXEC_SUCCEEDED);
    assert_int_equal(after.version_number, 4);
    ota_store_execution_free(&after);
    /* a new broker session: the old packet ids mean nothing any more */
    assert_int_equal(ota_store_deliveries_forget(s, "svc"), OTA_STORE_OK);
    assert_int_equal(ota_store_execution_update(s, "j", "d0", &u, T0 + 7, &after),
                     OTA_STORE_TERMINAL);
    ota_store_execution_free(&after);
    u.delivery_id = 70000;
    assert_int_equal(ota_store_execution_update(s, "j", "d0", &u, T0 + 8, NULL), OTA_STORE_INVALID);
    /* the jobs/notify signature */
    int64_t sig;
    int known;
    assert_int_equal(ota_store_notify_list_get(s, "d0", &sig, &known), OTA_STORE_OK);
    assert_int_equal(known, 0);
    assert_int_equal(ota_store_notify_list_done(s, "d0", -5), OTA_STORE_OK);
    assert_int_equal(ota_store_notify_list_get(s, "d0", &sig, &known), OTA_STORE_OK);
    assert_int_equal(known, 1);
    assert_int_equal(sig, -5);
    assert_int_equal(ota_store_notify_list_get(s, "nobody", &sig, &known), OTA_STORE_NOT_FOUND);
}

static int count_outbox(void *ctx, int64_t id, const char *topic, const char *payload)
{
    (void)id;
    (void)payload;
    assert_string_equal(topic, "t/a");
    (*(int *)ctx)++;
    return 0;
}

/* Live instances (heartbeats), the outbox of one that stopped, and claiming a stopped one:
 * through two handles as two instances. */
static void test_instances_and_outbox(void **state)
{
    fx_t *fx = *state;
    ota_store_t *b;
    int jobs = -1, streams = -1, n = 0;
    char name[OTA_STORE_INSTANCE_MAX + 1];
    size_t adopted = 9;
    assert_int_equal(open_store(fx->dir, &b), OTA_STORE_OK);
    /* without a name: no heartbeat, and the outbox is the unnamed one */
    assert_int_equal(ota_store_instance_beat(b, 1, 1, T0, 6000, &jobs, &streams),
                     OTA_STORE_INVALID);
    char long_name[OTA_STORE_INSTANCE_MAX + 2];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    assert_int_equal(ota_store_set_instance(b, long_name), OTA_STORE_INVALID);
    assert_int_equal(ota_store_set_instance(fx->s, "inst-a"), OTA_STORE_OK);
    assert_int_equal(ota_store_set_instance(b, "inst-b"), OTA_STORE_OK);
    assert_int_equal(ota_store_instance_beat(fx->s, 1, 1, T0, 6000, &jobs, &streams), OTA_STORE_OK);
    assert_int_equal(jobs, 1);
    assert_int_equal(ota_store_instance_beat(b, 1, 0, T0 + 100, 6000, &jobs, &streams),
                     OTA_STORE_OK);
    assert_int_equal(jobs, 2);
    assert_int_equal(streams, 1);
    /* an answer in a's outbox is a's alone */
    int64_t id;
    assert_int_equal(ota_store_outbox_add(fx->s, "t/a", "{}", T0, &id), OTA_STORE_OK);
    assert_int_equal(ota_store_outbox_list(b, count_outbox, &n), OTA_STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(ota_store_outbox_list(fx->s, count_outbox, &n), OTA_STORE_OK);
    assert_int_equal(n, 1);
    /* while a beats, nobody takes its outbox nor claims it, nor drops it when old */
    size_t dropped = 9;
    assert_int_equal(ota_store_outbox_expire_orphans(b, T0 + 1, T0 + 1000, 6000, &dropped),
                     OTA_STORE_OK);
    assert_int_equal(dropped, 0);
    n = 0;
    assert_int_equal(ota_store_outbox_adopt(b, T0 + 1000, 6000, count_outbox, &n, &adopted),
                     OTA_STORE_OK);
    assert_int_equal(adopted, 0);
    assert_int_equal(n, 0);
    assert_int_equal(ota_store_instance_claim_stopped(b, T0 + 1000, 6000, name, sizeof name), 0);
    /* a stops beating: b beats on, takes a's outbox once, and claims a once */
    assert_int_equal(ota_store_instance_beat(b, 1, 0, T0 + 10000, 6000, &jobs, &streams),
                     OTA_STORE_OK);
    assert_int_equal(jobs, 1);
    assert_int_equal(streams, 0);
    /* a stopped instance's entries younger than the cut are kept for adoption; an older one
     * (another stopped instance's, from before the cut) is dropped instead */
    int64_t old_id;
    ota_store_t *c;
    assert_int_equal(open_store(fx->dir, &c), OTA_STORE_OK);
    assert_int_equal(ota_store_set_instance(c, "inst-c"), OTA_STORE_OK);
    assert_int_equal(ota_store_outbox_add(c, "t/c", "{}", T0 - 5000, &old_id), OTA_STORE_OK);
    ota_store_close(c);
    assert_int_equal(ota_store_outbox_expire_orphans(b, T0 - 1, T0 + 10000, 6000, &dropped),
                     OTA_STORE_OK);
    assert_int_equal(dropped, 1);
    assert_int_equal(ota_store_outbox_adopt(b, T0 + 10000, 6000, count_outbox, &n, &adopted),
                     OTA_STORE_OK);
    assert_int_equal(adopted, 1);
    assert_int_equal(n, 1);
    assert_int_equal(ota_store_outbox_adopt(b, T0 + 10000, 6000, count_outbox, &n, &adopted),
                     OTA_STORE_OK);
    assert_int_equal(adopted, 0);
    n = 0;
    assert_int_equal(ota_store_outbox_list(b, count_outbox, &n), OTA_STORE_OK);
    assert_int_equal(n, 1); /* now b's */
    assert_int_equal(ota_store_instance_claim_stopped(b, T0 + 10000, 6000, name, sizeof name), 1);
    assert_string_equal(name, "inst-a");
    assert_int_equal(ota_store_instance_claim_stopped(fx->s, T0 + 10000, 6000, name, sizeof name),
                     0);
    assert_int_equal(ota_store_instance_claim_stopped(b, T0 + 10000, 6000, name, sizeof name), 0);
    /* a clean stop leaves the live ones at once */
    assert_int_equal(ota_store_instance_leave(b), OTA_STORE_OK);
    assert_int_equal(ota_store_instance_beat(fx->s, 1, 1, T0 + 10000, 6000, &jobs, &streams),
                     OTA_STORE_OK);
    assert_int_equal(jobs, 1);
    assert_int_equal(streams, 1);
    /* entries expire by age, each instance its own (and those without an owner) */
    assert_int_equal(ota_store_outbox_add(fx->s, "t/a", "{}", T0 + 20000, &id), OTA_STORE_OK);
    size_t gone = 9;
    assert_int_equal(ota_store_outbox_expire(fx->s, T0 + 20000, &gone), OTA_STORE_OK);
    assert_int_equal(gone, 0); /* a's new one is not older; b's old one is b's */
    n = 0;
    assert_int_equal(ota_store_outbox_list(b, count_outbox, &n), OTA_STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ota_store_outbox_expire(b, T0 + 20001, &gone), OTA_STORE_OK);
    assert_int_equal(gone, 1);
    n = 0;
    assert_int_equal(ota_store_outbox_list(b, count_outbox, &n), OTA_STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(ota_store_outbox_expire(fx->s, T0 + 20001, &gone), OTA_STORE_OK);
    assert_int_equal(gone, 1);
    assert_int_equal(ota_store_outbox_list(fx->s, count_outbox, &n), OTA_STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(ota_store_outbox_expire(NULL, 0, &gone), OTA_STORE_INVALID);
    ota_store_close(b);
}

/* ---- execution history ---- */

typedef struct {
    char text[1024];
    int n;
} hist_t;

static int hist_cb(void *ctx, const ota_store_exec_event_t *ev)
{
    hist_t *h = ctx;
    size_t len = strlen(h->text);
    snprintf(h->text + len, sizeof h->text - len, "%s%s v%lld @%lld by %s%s%s", h->n ? "; " : "",
             ota_store_exec_status_name((int)ev->status), (long long)ev->version_number,
             (long long)(ev->at_ms - T0), ev->recorder, ev->status_details ? " " : "",
             ev->status_details ? ev->status_details : "");
    h->n++;
    return 0;
}

static int hist_stop_cb(void *ctx, const ota_store_exec_event_t *ev)
{
    (void)ev;
    (*(int *)ctx)++;
    return 1;
}

static const char *history(ota_store_t *s, const char *job, const char *thing, hist_t *h)
{
    memset(h, 0, sizeof *h);
    assert_int_equal(ota_store_execution_history(s, job, thing, hist_cb, h), OTA_STORE_OK);
    return h->text;
}

static void test_execution_history(void **state)
{
    fx_t *fx = *state;
    ota_store_t *s = fx->s, *cli = NULL;
    hist_t h;
    assert_int_equal(open_store(fx->dir, &cli), OTA_STORE_OK);
    assert_int_equal(ota_store_set_instance(s, "otter-service-a"), OTA_STORE_OK);
    assert_int_equal(ota_store_set_recorder(cli, "otter-cli"), OTA_STORE_OK);
    /* names the history cannot hold are refused and change nothing */
    assert_int_equal(ota_store_set_recorder(cli, "a b"), OTA_STORE_INVALID);
    assert_int_equal(ota_store_set_recorder(cli, "x'); DROP TABLE jobs; --"), OTA_STORE_INVALID);
    assert_int_equal(ota_store_set_recorder(cli, NULL), OTA_STORE_INVALID);
    mk_things(cli, "d", 3);
    const char *all[] = {"d0", "d1", "d2"};
    assert_int_equal(mk_job(cli, "j", all, 3, 0, T0), OTA_STORE_OK);
    assert_string_equal(history(s, "j", "d0", &h), "QUEUED v1 @0 by otter-cli");
    /* accepted updates, a progress report among them, each recorded once */
    ota_store_exec_update_t u = {.status = OTA_STORE_EXEC_IN_PROGRESS,
                                 .status_details = "{\"step\":\"1\"}",
                                 .expected_version = 1,
                                 .delivery_session = "svc",
                                 .delivery_id = 7,
                                 .delivery_digest = 1};
    assert_int_equal(ota_store_execution_update(s, "j", "d0", &u, T0 + 10, NULL), OTA_STORE_OK);
    /* delivered again: no second record; an update expecting an old version: none either */
    assert_int_equal(ota_store_execution_update(s, "j", "d0", &u, T0 + 11, NULL),
                     OTA_STORE_DUPLICATE);
    u.delivery_id = 8;
    assert_int_equal(ota_store_execution_update(s, "j", "d0", &u, T0 + 12, NULL),
                     OTA_STORE_VERSION_MISMATCH);
    u.expected_version = 2;
    u.status_details = "{\"step\":\"2\"}";
    assert_int_equal(ota_store_execution_update(s, "j", "d0", &u, T0 + 20, NULL), OTA_STORE_OK);
    u.status = OTA_STORE_EXEC_SUCCEEDED;
    u.expected_version = 0;
    u.status_details = NULL; /* kept from the last update */
    u.delivery_id = 9;
    assert_int_equal(ota_store_execution_update(s, "j", "d0", &u, T0 + 30, NULL), OTA_STORE_OK);
    assert_int_equal(ota_store_execution_update(s, "j", "d0", &u, T0 + 31, NULL),
                     OTA_STORE_DUPLICATE);
    u.delivery_id = 10;
    assert_int_equal(ota_store_execution_update(s, "j", "d0", &u, T0 + 32, NULL),
                     OTA_STORE_TERMINAL);
    assert_string_equal(history(cli, "j", "d0", &h),
                        "QUEUED v1 @0 by otter-cli; "
                        "IN_PROGRESS v2 @10 by otter-service-a {\"step\":\"1\"}; "
                        "IN_PROGRESS v3 @20 by otter-service-a {\"step\":\"2\"}; "
                        "SUCCEEDED v4 @30 by otter-service-a {\"step\":\"2\"}");
    /* a timeout (a sweep) and a cancel by the operator are recorded too */
    u = (ota_store_exec_update_t){.status = OTA_STORE_EXEC_IN_PROGRESS, .step_timeout_min = 1};
    assert_int_equal(ota_store_execution_update(s, "j", "d1", &u, T0 + 40, NULL), OTA_STORE_OK);
    size_t n = 0;
    assert_int_equal(ota_store_expire_timeouts(s, T0 + 40 + 60001, &n), OTA_STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ota_store_job_cancel(cli, "j", T0 + 70000), OTA_STORE_OK);
    assert_string_equal(history(s, "j", "d1", &h), "QUEUED v1 @0 by otter-cli; "
                                                   "IN_PROGRESS v2 @40 by otter-service-a; "
                                                   "TIMED_OUT v3 @60041 by otter-service-a");
    assert_string_equal(history(s, "j", "d2", &h),
                        "QUEUED v1 @0 by otter-cli; CANCELED v2 @70000 by otter-cli");
    /* a callback that stops early, unknown executions, bad names */
    int calls = 0;
    assert_int_equal(ota_store_execution_history(s, "j", "d0", hist_stop_cb, &calls), OTA_STORE_OK);
    assert_int_equal(calls, 1);
    assert_int_equal(ota_store_execution_history(s, "j", "nobody", hist_cb, &h),
                     OTA_STORE_NOT_FOUND);
    assert_int_equal(ota_store_execution_history(s, "nojob", "d0", hist_cb, &h),
                     OTA_STORE_NOT_FOUND);
    assert_int_equal(ota_store_execution_history(s, "j", "bad name", hist_cb, &h),
                     OTA_STORE_INVALID);
    assert_int_equal(ota_store_execution_history(s, "j", "d0", NULL, &h), OTA_STORE_INVALID);
    ota_store_close(cli);
    /* a database of schema 5 (no history) gets one: each execution's current state */
    const char *drop =
        g_location ? "DROP TABLE exec_history; DROP FUNCTION otter_exec_history() CASCADE; "
                     "DROP FUNCTION otter_exec_history_bound() CASCADE; "
                     "ALTER TABLE executions DROP COLUMN history_dropped; "
                     "DROP TABLE presence; DROP TABLE presence_gaps; "
                     "UPDATE schema_version SET version = 5"
                   : "DROP TRIGGER exec_history_created; DROP TRIGGER exec_history_changed; "
                     "DROP TABLE exec_history; DROP TABLE presence; DROP TABLE presence_gaps; "
                     "ALTER TABLE executions DROP COLUMN history_dropped; "
                     "UPDATE schema_version SET version = 5";
    ota_store_close(fx->s);
    fx->s = NULL;
    raw_sql(fx, drop);
    reopen(fx);
    s = fx->s;
    int v = 0;
    assert_int_equal(ota_store_schema_version(s, &v), OTA_STORE_OK);
    assert_int_equal(v, 8);
    assert_string_equal(history(s, "j", "d0", &h), "SUCCEEDED v4 @30 by schema-6 {\"step\":\"2\"}");
    assert_string_equal(history(s, "j", "d2", &h), "CANCELED v2 @70000 by schema-6");
    /* and records from then on */
    assert_int_equal(ota_store_thing_delete(s, "d2"), OTA_STORE_OK);
    assert_int_equal(ota_store_execution_history(s, "j", "d2", hist_cb, &h), OTA_STORE_NOT_FOUND);
    assert_int_equal(mk_job(s, "k", all, 1, 0, T0 + 80000), OTA_STORE_OK);
    assert_string_equal(history(s, "k", "d0", &h), "QUEUED v1 @80000 by ");
}

/* What a bounded history holds: its rows, their versions in order, the drops it reports. */
typedef struct {
    int n;
    int64_t first_version, second_version, last_version, dropped, dropped_elsewhere;
} hist_shape_t;

static int shape_cb(void *ctx, const ota_store_exec_event_t *ev)
{
    hist_shape_t *h = ctx;
    if (h->n == 0)
        h->first_version = ev->version_number;
    if (h->n == 1) {
        h->second_version = ev->version_number;
        h->dropped = ev->dropped_before;
    } else if (ev->dropped_before != 0) {
        h->dropped_elsewhere++;
    }
    h->last_version = ev->version_number;
    h->n++;
    return 0;
}

static hist_shape_t shape(ota_store_t *s, const char *job, const char *thing)
{
    hist_shape_t h;
    memset(&h, 0, sizeof h);
    assert_int_equal(ota_store_execution_history(s, job, thing, shape_cb, &h), OTA_STORE_OK);
    return h;
}

/* A device updating without end keeps its creation and its most recent OTA_STORE_HISTORY_KEPT
 * changes, and the history says how many went in between; a longer history written before the
 * bound is cut to the same shape when the store is opened. */
static void test_execution_history_bounded(void **state)
{
    fx_t *fx = *state;
    ota_store_t *s = fx->s;
    mk_things(s, "d", 2);
    const char *both[] = {"d0", "d1"};
    assert_int_equal(mk_job(s, "j", both, 2, 0, T0), OTA_STORE_OK);
    const int updates = 3 * OTA_STORE_HISTORY_KEPT / 2;
    for (int i = 0; i < updates; i++) {
        char details[64];
        snprintf(details, sizeof details, "{\"n\":\"%d\"}", i);
        ota_store_exec_update_t u = {.status = OTA_STORE_EXEC_IN_PROGRESS,
                                     .status_details = details};
        assert_int_equal(ota_store_execution_update(s, "j", "d0", &u, T0 + i, NULL), OTA_STORE_OK);
    }
    hist_shape_t h = shape(s, "j", "d0");
    assert_int_equal(h.n, OTA_STORE_HISTORY_KEPT + 1);
    assert_int_equal(h.first_version, 1); /* the creation */
    assert_int_equal(h.last_version, updates + 1);
    assert_int_equal(h.second_version, updates + 1 - OTA_STORE_HISTORY_KEPT + 1);
    assert_int_equal(h.dropped, updates - OTA_STORE_HISTORY_KEPT);
    assert_int_equal(h.dropped_elsewhere, 0);
    /* the other execution of the job is untouched */
    h = shape(s, "j", "d1");
    assert_int_equal(h.n, 1);
    assert_int_equal(h.dropped, 0);
    /* statusDetails longer than the limit are refused and change nothing */
    char *big = malloc(OTA_STORE_DETAILS_MAX + 16);
    assert_non_null(big);
    memset(big, 'x', OTA_STORE_DETAILS_MAX + 15);
    memcpy(big, "{\"k\":\"", 6);
    memcpy(big + OTA_STORE_DETAILS_MAX + 13, "\"}", 3);
    ota_store_exec_update_t u = {.status = OTA_STORE_EXEC_IN_PROGRESS, .status_details = big};
    assert_int_equal(ota_store_execution_update(s, "j", "d1", &u, T0, NULL), OTA_STORE_INVALID);
    big[OTA_STORE_DETAILS_MAX - 2] = '"';
    big[OTA_STORE_DETAILS_MAX - 1] = '}';
    big[OTA_STORE_DETAILS_MAX] = '\0';
    assert_int_equal(ota_store_execution_update(s, "j", "d1", &u, T0, NULL), OTA_STORE_OK);
    free(big);
    /* a store of schema 7 whose history grew without bound is cut when opened */
    ota_store_close(fx->s);
    fx->s = NULL;
    raw_sql(fx, g_location ? "DROP FUNCTION otter_exec_history_bound() CASCADE; "
                             "ALTER TABLE executions DROP COLUMN history_dropped; "
                             "UPDATE schema_version SET version = 7"
                           : "DROP TRIGGER exec_history_bound; "
                             "ALTER TABLE executions DROP COLUMN history_dropped; "
                             "UPDATE schema_version SET version = 7");
    raw_sql(fx, "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 300)"
                " INSERT INTO exec_history(job, thing, status, details, version, at_ms, recorder)"
                " SELECT 'j', 'd1', 1, NULL, n + 2, n, 'old' FROM c");
    reopen(fx);
    s = fx->s;
    h = shape(s, "j", "d1");
    assert_int_equal(h.n, OTA_STORE_HISTORY_KEPT + 1);
    assert_int_equal(h.first_version, 1);
    assert_int_equal(h.last_version, 302);
    assert_int_equal(h.dropped, 302 - OTA_STORE_HISTORY_KEPT - 1);
    /* and the bound holds from then on */
    ota_store_exec_update_t more = {.status = OTA_STORE_EXEC_SUCCEEDED};
    assert_int_equal(ota_store_execution_update(s, "j", "d1", &more, T0 + 1, NULL), OTA_STORE_OK);
    h = shape(s, "j", "d1");
    assert_int_equal(h.n, OTA_STORE_HISTORY_KEPT + 1);
    assert_int_equal(h.dropped, 302 - OTA_STORE_HISTORY_KEPT);
    assert_int_equal(h.dropped_elsewhere, 0);
}

/* ---- presence ---- */

/* connected / connectedTo / presenceUnknownOn of a thing, "-" when unset. */
static void presence_is(ota_store_t *s, const char *thing, const char *want)
{
    static const char *const keys[] = {"connected", "connectedTo", "presenceUnknownOn"};
    char got[3 * (OTA_STORE_ATTR_VALUE_MAX + 2)] = "", v[OTA_STORE_ATTR_VALUE_MAX + 1];
    for (int i = 0; i < 3; i++) {
        int rc = ota_store_thing_attr_get(s, thing, keys[i], v, sizeof v);
        assert_true(rc == OTA_STORE_OK || rc == OTA_STORE_NOT_FOUND);
        strcat(got, i ? " " : "");
        strcat(got, rc == OTA_STORE_OK ? v : "-");
    }
    assert_string_equal(got, want);
}

/* A gap is one row per broker whatever the fleet: after it, a thing with no new notice reads
 * unknown on that broker only, its next notice there makes it known again, and a gap recorded
 * through one handle (one service instance) is seen through another on the same database. */
static void test_presence_gaps_across_handles(void **state)
{
    fx_t *fx = *state;
    ota_store_t *a = fx->s, *b;
    assert_int_equal(open_store(fx->dir, &b), OTA_STORE_OK);
    mk_things(a, "t", 3);
    const unsigned b1 = 1u << 1, b2 = 1u << 2;
    int any = 1; /* a gap before anything is seen: nothing to make unknown */
    assert_int_equal(ota_store_presence_gap(a, b1, T0 - 1, &any), OTA_STORE_OK);
    assert_int_equal(any, 0);
    /* t0 online on broker 1, t1 off on 1 and on 2, t2 never seen */
    assert_int_equal(ota_store_presence_notice(a, "t0", 1, 1, b2, T0), OTA_STORE_OK);
    presence_is(a, "t0", "true 1 2"); /* first seen: its notices on 2 were never seen */
    assert_int_equal(ota_store_presence_notice(a, "t0", 2, 0, b1, T0 + 1), OTA_STORE_OK);
    assert_int_equal(ota_store_presence_notice(b, "t1", 1, 0, b2, T0 + 2), OTA_STORE_OK);
    assert_int_equal(ota_store_presence_notice(b, "t1", 2, 1, b1, T0 + 3), OTA_STORE_OK);
    presence_is(b, "t0", "true 1 -");
    presence_is(a, "t1", "true 2 -");
    presence_is(a, "t2", "- - -");
    /* a gap on broker 1 recorded by one instance: the other reads it */
    assert_int_equal(ota_store_presence_gap(b, b1, T0 + 10, &any), OTA_STORE_OK);
    assert_int_equal(any, 1);
    presence_is(a, "t0", "unknown - 1");
    presence_is(a, "t1", "true 2 1");
    presence_is(a, "t2", "- - -");
    ota_store_presence_t p;
    assert_int_equal(ota_store_presence_get(a, "t0", &p), OTA_STORE_OK);
    assert_true(p.seen);
    assert_int_equal(p.unknown_since_ms, T0 + 10);
    assert_int_equal(p.on, 0);
    assert_int_equal(p.unknown, b1);
    assert_string_equal(ota_store_presence_connected(&p), "unknown");
    /* a second gap later keeps the time it became unknown */
    assert_int_equal(ota_store_presence_gap(a, b1 | b2, T0 + 20, NULL), OTA_STORE_OK);
    assert_int_equal(ota_store_presence_get(b, "t0", &p), OTA_STORE_OK);
    assert_int_equal(p.unknown_since_ms, T0 + 20); /* broker 2's gap is the later one */
    presence_is(b, "t0", "unknown - 1,2");
    /* the next notice on a broker makes it known there again, through either handle */
    assert_int_equal(ota_store_presence_notice(a, "t0", 1, 0, b2, T0 + 30), OTA_STORE_OK);
    presence_is(b, "t0", "unknown - 2");
    assert_int_equal(ota_store_presence_notice(b, "t0", 2, 0, b1, T0 + 31), OTA_STORE_OK);
    presence_is(a, "t0", "false - -");
    char v[OTA_STORE_ATTR_VALUE_MAX + 1];
    assert_int_equal(ota_store_thing_attr_get(a, "t0", "lastSeen", v, sizeof v), OTA_STORE_OK);
    assert_string_equal(v, "1700000000031");
    /* the list shows the computed attributes in key order */
    attrs_t l = {""};
    assert_int_equal(ota_store_thing_attr_set(a, "t1", "site", "lab", T0), OTA_STORE_OK);
    assert_int_equal(ota_store_thing_attr_list(a, "t1", attr_cb, &l), OTA_STORE_OK);
    assert_string_equal(l.text,
                        "connected=unknown;lastSeen=1700000000003;presenceUnknownOn=1,2;site=lab;");
    /* a broker keeps its last gaps only: t1 (last seen on 3 at T0 + 50, before them all)
     * stays unknown there, since its notice once the gap that made it so is forgotten */
    const unsigned b3 = 1u << 3;
    assert_int_equal(ota_store_presence_notice(a, "t1", 3, 1, 0, T0 + 50), OTA_STORE_OK);
    for (int i = 0; i <= OTA_STORE_PRESENCE_GAPS_KEPT; i++) {
        assert_int_equal(ota_store_presence_gap(i % 2 ? a : b, b3, T0 + 100 + i, NULL),
                         OTA_STORE_OK);
        if (i == 0) {
            assert_int_equal(ota_store_presence_get(a, "t1", &p), OTA_STORE_OK);
            assert_int_equal(p.unknown_since_ms, T0 + 100);
        }
    }
    assert_int_equal(ota_store_presence_get(b, "t1", &p), OTA_STORE_OK);
    assert_int_equal(p.unknown, b1 | b2 | b3); /* 1 and 2 since the gaps at T0 + 10, 20 */
    assert_int_equal(p.unknown_since_ms, T0 + 50);
    assert_int_equal(ota_store_presence_notice(b, "t1", 3, 1, 0, T0 + 2000), OTA_STORE_OK);
    presence_is(a, "t1", "true 3 1,2");
    /* bad input: nothing recorded */
    assert_int_equal(ota_store_presence_notice(a, "nobody", 1, 1, 0, T0), OTA_STORE_NOT_FOUND);
    assert_int_equal(ota_store_presence_notice(a, "t2", 9, 1, 0, T0), OTA_STORE_INVALID);
    assert_int_equal(ota_store_presence_notice(a, "t 2", 1, 1, 0, T0), OTA_STORE_INVALID);
    assert_int_equal(ota_store_presence_gap(a, 1u << 9, T0, NULL), OTA_STORE_INVALID);
    presence_is(a, "t2", "- - -");
    /* a deleted thing takes its presence along */
    assert_int_equal(ota_store_thing_delete(a, "t1"), OTA_STORE_OK);
    assert_int_equal(ota_store_thing_create(a, "t1", T0 + 40), OTA_STORE_OK);
    presence_is(b, "t1", "- - -");
    ota_store_close(b);
}

/* Notices held back and written together: one transaction sets each broker's row with its own
 * state and time, lastSeen the latest, and unknown rows since the earliest on the federation's
 * brokers without a row or a notice; bad input records nothing. */
static void test_presence_notices_at_once(void **state)
{
    fx_t *fx = *state;
    ota_store_t *s = fx->s;
    mk_things(s, "t", 2);
    const unsigned all3 = (1u << 1) | (1u << 2) | (1u << 3);
    const ota_store_presence_note_t moved[] = {{.broker = 1, .online = 0, .at_ms = T0 + 7},
                                               {.broker = 3, .online = 1, .at_ms = T0 + 5}};
    assert_int_equal(ota_store_presence_notices(s, "t0", moved, 2, all3), OTA_STORE_OK);
    presence_is(s, "t0", "true 3 2");
    ota_store_presence_t p;
    assert_int_equal(ota_store_presence_get(s, "t0", &p), OTA_STORE_OK);
    assert_int_equal(p.unknown_since_ms, T0 + 5); /* since the earliest notice */
    char v[OTA_STORE_ATTR_VALUE_MAX + 1];
    assert_int_equal(ota_store_thing_attr_get(s, "t0", "lastSeen", v, sizeof v), OTA_STORE_OK);
    assert_string_equal(v, "1700000000007");
    /* the rows keep their own epochs: a gap on 3 makes only 3 unknown */
    assert_int_equal(ota_store_presence_gap(s, 1u << 3, T0 + 10, NULL), OTA_STORE_OK);
    presence_is(s, "t0", "unknown - 2,3");
    const ota_store_presence_note_t bad[] = {{.broker = 1, .online = 1, .at_ms = T0 + 20},
                                             {.broker = 9, .online = 1, .at_ms = T0 + 20}};
    assert_int_equal(ota_store_presence_notices(s, "t0", bad, 2, all3), OTA_STORE_INVALID);
    assert_int_equal(ota_store_presence_notices(s, "t0", bad, 0, all3), OTA_STORE_INVALID);
    assert_int_equal(ota_store_presence_notices(s, "t0", NULL, 1, all3), OTA_STORE_INVALID);
    assert_int_equal(ota_store_presence_notices(s, "nobody", bad, 1, all3), OTA_STORE_NOT_FOUND);
    presence_is(s, "t0", "unknown - 2,3");
    presence_is(s, "t1", "- - -");
}

/* lastSeen of a thing, as stored. */
static void last_seen_is(ota_store_t *s, const char *thing, int64_t want)
{
    char v[OTA_STORE_ATTR_VALUE_MAX + 1], w[24];
    assert_int_equal(ota_store_thing_attr_get(s, thing, "lastSeen", v, sizeof v), OTA_STORE_OK);
    snprintf(w, sizeof w, "%lld", (long long)want);
    assert_string_equal(v, w);
}

/* Instances sharing a store each write their own notices, up to a second late (the write
 * budget) or after a wait for the store: a notice older than a thing's row on its broker leaves
 * the row as it is, and lastSeen never goes back; one of the same time replaces it. */
static void test_presence_older_notice_keeps_newer_row(void **state)
{
    fx_t *fx = *state;
    ota_store_t *a = fx->s, *b;
    assert_int_equal(open_store(fx->dir, &b), OTA_STORE_OK);
    mk_things(a, "t", 2);
    const unsigned b1 = 1u << 1, b2 = 1u << 2;
    /* b wrote "disconnected at T0 + 15"; a writes "connected at T0 + 10" after it */
    assert_int_equal(ota_store_presence_notice(b, "t0", 1, 0, b1, T0 + 15), OTA_STORE_OK);
    assert_int_equal(ota_store_presence_notice(a, "t0", 1, 1, b1, T0 + 10), OTA_STORE_OK);
    presence_is(b, "t0", "false - -");
    last_seen_is(b, "t0", T0 + 15);
    ota_store_presence_t p;
    assert_int_equal(ota_store_presence_get(a, "t0", &p), OTA_STORE_OK);
    assert_int_equal(p.updated_ms, T0 + 15);
    /* held notices on two brokers: each row keeps the newer, lastSeen the latest */
    const ota_store_presence_note_t late[] = {{.broker = 1, .online = 1, .at_ms = T0 + 12},
                                              {.broker = 2, .online = 1, .at_ms = T0 + 14}};
    assert_int_equal(ota_store_presence_notices(a, "t0", late, 2, b1 | b2), OTA_STORE_OK);
    presence_is(b, "t0", "true 2 -");
    last_seen_is(a, "t0", T0 + 15);
    /* the same time: the later write is taken (two instances, one notice) */
    assert_int_equal(ota_store_presence_notice(b, "t0", 2, 0, b1 | b2, T0 + 14), OTA_STORE_OK);
    presence_is(a, "t0", "false - -");
    assert_int_equal(ota_store_presence_notice(a, "t0", 2, 1, b1 | b2, T0 + 14), OTA_STORE_OK);
    presence_is(b, "t0", "true 2 -");
    last_seen_is(b, "t0", T0 + 15);
    /* lastSeen written since by a report or a request (now) stays when a held notice
     * written later is older, and the notice's row is still taken */
    assert_int_equal(
        ota_store_thing_service_attr_set(a, "t1", "lastSeen", "1700000000050", T0 + 50),
        OTA_STORE_OK);
    assert_int_equal(ota_store_presence_notice(a, "t1", 1, 1, b1, T0 + 40), OTA_STORE_OK);
    presence_is(b, "t1", "true 1 -");
    last_seen_is(b, "t1", T0 + 50);
    assert_int_equal(ota_store_presence_notice(b, "t1", 1, 0, b1, T0 + 60), OTA_STORE_OK);
    presence_is(a, "t1", "false - -");
    last_seen_is(a, "t1", T0 + 60);
    ota_store_close(b);
}

/* A notice written after a gap on its broker that another instance recorded later than the
 * notice came from before the gap: the thing is unknown there since the first gap after the
 * notice, never known from it; a notice of the gap's time or later is known. */
static void test_presence_notice_before_gap_stays_unknown(void **state)
{
    fx_t *fx = *state;
    ota_store_t *a = fx->s, *b;
    assert_int_equal(open_store(fx->dir, &b), OTA_STORE_OK);
    mk_things(a, "t", 3);
    const unsigned b1 = 1u << 1, b2 = 1u << 2;
    assert_int_equal(ota_store_presence_notice(a, "t0", 1, 0, b1, T0), OTA_STORE_OK);
    presence_is(a, "t0", "false - -");
    /* b records a gap on broker 1 at T0 + 20; a then writes what it had at T0 + 10 */
    assert_int_equal(ota_store_presence_gap(b, b1, T0 + 20, NULL), OTA_STORE_OK);
    assert_int_equal(ota_store_presence_notice(a, "t0", 1, 1, b1, T0 + 10), OTA_STORE_OK);
    presence_is(b, "t0", "unknown - 1");
    ota_store_presence_t p;
    assert_int_equal(ota_store_presence_get(b, "t0", &p), OTA_STORE_OK);
    assert_int_equal(p.unknown_since_ms, T0 + 20);
    /* a thing without a row: the same; its notice on another broker is known */
    const ota_store_presence_note_t two[] = {{.broker = 1, .online = 1, .at_ms = T0 + 11},
                                             {.broker = 2, .online = 0, .at_ms = T0 + 12}};
    assert_int_equal(ota_store_presence_notices(a, "t1", two, 2, b1 | b2), OTA_STORE_OK);
    presence_is(b, "t1", "unknown - 1");
    last_seen_is(b, "t1", T0 + 12);
    /* several gaps after the notice: unknown since the first of them */
    assert_int_equal(ota_store_presence_gap(b, b2, T0 + 30, NULL), OTA_STORE_OK);
    assert_int_equal(ota_store_presence_gap(a, b2, T0 + 40, NULL), OTA_STORE_OK);
    assert_int_equal(ota_store_presence_notice(b, "t2", 2, 1, b2, T0 + 35), OTA_STORE_OK);
    assert_int_equal(ota_store_presence_get(a, "t2", &p), OTA_STORE_OK);
    assert_int_equal(p.unknown, b2);
    assert_int_equal(p.on, 0);
    assert_int_equal(p.unknown_since_ms, T0 + 40);
    /* a notice of the gap's time, or later, is known in the new epoch */
    assert_int_equal(ota_store_presence_notice(b, "t2", 2, 1, b2, T0 + 40), OTA_STORE_OK);
    presence_is(a, "t2", "true 2 -");
    assert_int_equal(ota_store_presence_notice(b, "t0", 1, 1, b1, T0 + 21), OTA_STORE_OK);
    presence_is(a, "t0", "true 1 -");
    /* and an older one after it changes nothing */
    assert_int_equal(ota_store_presence_notice(a, "t0", 1, 0, b1, T0 + 19), OTA_STORE_OK);
    presence_is(b, "t0", "true 1 -");
    last_seen_is(b, "t0", T0 + 21);
    ota_store_close(b);
}

/* A database of schema 6 kept presence as attributes the service rewrote: they become rows. */
static void test_presence_legacy_attributes_migrate(void **state)
{
    fx_t *fx = *state;
    mk_things(fx->s, "t", 4);
    ota_store_close(fx->s);
    fx->s = NULL;
    raw_sql(fx, g_location ? "DROP FUNCTION otter_exec_history_bound() CASCADE;"
                           : "DROP TRIGGER exec_history_bound;");
    raw_sql(fx, "DROP TABLE presence; DROP TABLE presence_gaps;"
                "ALTER TABLE executions DROP COLUMN history_dropped;"
                "UPDATE schema_version SET version = 6;"
                "INSERT INTO thing_attrs(thing, key, value, updated_ms) VALUES"
                " ('t0', 'connected', 'true', 5), ('t0', 'connectedTo', '1,3', 5),"
                " ('t0', 'presenceUnknownOn', '2', 7), ('t0', 'lastSeen', '4', 4),"
                " ('t1', 'connected', 'false', 6),"
                " ('t2', 'connected', 'unknown', 8), ('t2', 'presenceUnknownOn', '1,2', 8),"
                " ('t3', 'site', 'lab', 9)");
    reopen(fx);
    ota_store_t *s = fx->s;
    int v = 0;
    assert_int_equal(ota_store_schema_version(s, &v), OTA_STORE_OK);
    assert_int_equal(v, 8);
    presence_is(s, "t0", "true 1,3 2");
    presence_is(s, "t1", "false - -");
    presence_is(s, "t2", "unknown - 1,2");
    presence_is(s, "t3", "- - -");
    ota_store_presence_t p;
    assert_int_equal(ota_store_presence_get(s, "t0", &p), OTA_STORE_OK);
    assert_int_equal(p.unknown_since_ms, 7);
    attrs_t l = {""};
    assert_int_equal(ota_store_thing_attr_list(s, "t0", attr_cb, &l), OTA_STORE_OK);
    assert_string_equal(l.text, "connected=true;connectedTo=1,3;lastSeen=4;presenceUnknownOn=2;");
    /* the old attributes are gone (each listed once above) and gaps apply to what came over */
    assert_int_equal(ota_store_presence_gap(s, 0x1feu, T0, NULL), OTA_STORE_OK);
    presence_is(s, "t0", "unknown - 1,2,3");
    presence_is(s, "t1", "unknown - 1");
    assert_int_equal(ota_store_presence_notice(s, "t1", 1, 0, 0, T0 + 1), OTA_STORE_OK);
    presence_is(s, "t1", "false - -");
    /* t1 came over with a row on broker 1 only ("connected" alone said nothing of the
     * others): in a federation of two its notices on broker 2 were lost in the gap above, so
     * its next notice leaves it unknown there, not known off */
    assert_int_equal(ota_store_presence_notice(s, "t1", 1, 0, 1u << 2, T0 + 2), OTA_STORE_OK);
    presence_is(s, "t1", "unknown - 2");
}

/* A thing's attributes list in byte order of their keys, the computed presence ones among them,
 * whatever the database's collation (PostgreSQL's is often a language's: "Dz" after "connected").
 */
static void test_presence_attrs_in_byte_order(void **state)
{
    fx_t *fx = *state;
    if (g_location) /* the column as a database of a language's collation has it */
        raw_sql(fx, "ALTER TABLE thing_attrs ALTER COLUMN key TYPE TEXT COLLATE \"und-x-icu\"");
    ota_store_t *s = fx->s;
    mk_things(s, "t", 1);
    assert_int_equal(ota_store_presence_notice(s, "t0", 1, 1, 1u << 2, T0), OTA_STORE_OK);
    static const char *const keys[] = {"qa", "Dz", "Q", "b", "site", "Zone"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        assert_int_equal(ota_store_thing_attr_set(s, "t0", keys[i], "1", T0), OTA_STORE_OK);
    attrs_t l = {""};
    assert_int_equal(ota_store_thing_attr_list(s, "t0", attr_cb, &l), OTA_STORE_OK);
    if (g_location)
        raw_sql(fx, "ALTER TABLE thing_attrs ALTER COLUMN key TYPE TEXT COLLATE \"default\"");
    assert_string_equal(l.text, "Dz=1;Q=1;Zone=1;b=1;connected=true;connectedTo=1;"
                                "lastSeen=1700000000000;presenceUnknownOn=2;qa=1;site=1;");
}

/* Counts the things of a listing with attributes. */
static int count_attrs_cb(void *ctx, const ota_store_thing_t *t, const ota_store_attr_t *attrs,
                          size_t n)
{
    (void)t;
    (void)attrs;
    (void)n;
    (*(size_t *)ctx)++;
    return 0;
}

/* A listing with attributes, checked thing by thing against the per-thing read. */
typedef struct {
    ota_store_t *s;
    char names[512]; /* "name;" of each thing listed */
    int stop_after;  /* stop after this many things (0: never) */
} listed_t;

static int attr_time_cb(void *ctx, const char *key, const char *value, int64_t updated_ms)
{
    attrs_t *a = ctx;
    size_t n = strlen(a->text);
    snprintf(a->text + n, sizeof a->text - n, "%s=%s@%lld;", key, value, (long long)updated_ms);
    return 0;
}

static int listed_cb(void *ctx, const ota_store_thing_t *t, const ota_store_attr_t *attrs, size_t n)
{
    listed_t *l = ctx;
    attrs_t want = {""}, got = {""};
    assert_int_equal(ota_store_thing_attr_list(l->s, t->name, attr_time_cb, &want), OTA_STORE_OK);
    for (size_t i = 0; i < n; i++)
        attr_time_cb(&got, attrs[i].key, attrs[i].value, attrs[i].updated_ms);
    assert_string_equal(got.text, want.text);
    ota_store_thing_t one;
    assert_int_equal(ota_store_thing_get(l->s, t->name, &one), OTA_STORE_OK);
    assert_int_equal(t->created_ms, one.created_ms);
    size_t k = strlen(l->names);
    snprintf(l->names + k, sizeof l->names - k, "%s;", t->name);
    return l->stop_after > 0 && --l->stop_after == 0;
}

static int name_cb(void *ctx, const ota_store_thing_t *t)
{
    size_t k = strlen(ctx);
    snprintf((char *)ctx + k, 512 - k, "%s;", t->name);
    return 0;
}

/* Things i0..i(n-1) of a fleet: some attributes, presence known, left or unknown since a gap,
 * some disabled, some never seen. */
static void mk_fleet(ota_store_t *s, int from, int to, int64_t now)
{
    for (int i = from; i < to; i++) {
        char name[32];
        snprintf(name, sizeof name, "i%d", i);
        assert_int_equal(ota_store_thing_create(s, name, T0 + i), OTA_STORE_OK);
        if (i % 5 == 4)
            continue; /* never seen, no attribute */
        assert_int_equal(ota_store_thing_attr_set(s, name, "zone", i % 2 ? "a" : "b", now + i),
                         OTA_STORE_OK);
        assert_int_equal(ota_store_thing_attr_set(s, name, "Site", "x", now + i), OTA_STORE_OK);
        assert_int_equal(ota_store_presence_notice(s, name, 1, i % 3 != 0, 1u << 2, now + i),
                         OTA_STORE_OK);
        if (i % 7 == 3)
            assert_int_equal(ota_store_thing_service_attr_set(s, name, "disabled", "true", now),
                             OTA_STORE_OK);
    }
    assert_int_equal(ota_store_presence_gap(s, 1u << 1, now + 100, NULL), OTA_STORE_OK);
    for (int i = from; i < to; i += 4)
        if (i % 5 != 4) {
            char name[32];
            snprintf(name, sizeof name, "i%d", i);
            assert_int_equal(ota_store_presence_notice(s, name, 1, 1, 0, now + 200 + i),
                             OTA_STORE_OK);
        }
}

/* Statements and things of four listings: every thing, static group st's, dynamic dyn's with
 * attributes, and dyn's without. */
static void count_listings(ota_store_t *s, int64_t statements[4], size_t things[4])
{
    for (int i = 0; i < 4; i++) {
        if (i == 3) {
            int n = 0;
            int64_t before = ota_store_statements(s);
            assert_int_equal(ota_store_group_members(s, "dyn", count_cb, &n), OTA_STORE_OK);
            statements[i] = ota_store_statements(s) - before;
            things[i] = (size_t)n;
            break;
        }
        things[i] = 0;
        int64_t before = ota_store_statements(s);
        assert_int_equal(i == 0 ? ota_store_thing_list_attrs(s, NULL, count_attrs_cb, &things[i])
                         : i == 1
                             ? ota_store_group_members_attrs(s, "st", count_attrs_cb, &things[i])
                             : ota_store_group_members_attrs(s, "dyn", count_attrs_cb, &things[i]),
                         OTA_STORE_OK);
        statements[i] = ota_store_statements(s) - before;
    }
}

/* ota_store_thing_list_attrs(): every thing, in ota_store_thing_list()'s order, with what
 * ota_store_thing_attr_list() gives for it; one statement for 3 things as for 30, and two
 * for a group's members (ota_store_group_members_attrs()), static or dynamic. */
static void test_thing_list_attrs(void **state)
{
    ota_store_t *s = ((fx_t *)*state)->s;
    listed_t l = {.s = s};
    int64_t before = ota_store_statements(s);
    assert_int_equal(ota_store_thing_list_attrs(s, NULL, listed_cb, &l), OTA_STORE_OK);
    assert_string_equal(l.names, "");
    assert_int_equal(ota_store_statements(s) - before, 1);
    mk_fleet(s, 0, 3, T0);
    assert_int_equal(ota_store_group_create(s, "st", NULL, T0), OTA_STORE_OK);
    assert_int_equal(ota_store_group_create(s, "dyn", "zone=a", T0), OTA_STORE_OK);
    assert_int_equal(ota_store_group_add(s, "st", "i1"), OTA_STORE_OK);
    /* counted on listings that check nothing in between */
    int64_t small[4], large[4];
    size_t counts[4];
    count_listings(s, small, counts);
    assert_int_equal(counts[0], 3);
    assert_int_equal(counts[1], 1); /* st: i1 */
    assert_int_equal(counts[2], 1); /* dyn: i1 */
    mk_fleet(s, 3, 30, T0 + 1000);
    assert_int_equal(ota_store_group_add(s, "st", "i12"), OTA_STORE_OK);
    assert_int_equal(ota_store_group_add(s, "st", "i29"), OTA_STORE_OK);
    count_listings(s, large, counts);
    assert_int_equal(counts[0], 30);
    assert_int_equal(counts[1], 3);
    assert_int_equal(counts[2], 12); /* odd numbers but those of 5k + 4 */
    assert_int_equal(counts[3], 12);
    for (int i = 0; i < 4; i++)
        assert_int_equal(large[i], small[i]);
    assert_int_equal(small[0], 1); /* the things */
    assert_int_equal(small[1], 2); /* the group, its members */
    assert_int_equal(small[2], 2);
    assert_int_equal(small[3], 2);
    /* a group's members with attributes: those ota_store_group_members() lists, as read */
    for (int g = 0; g < 2; g++) {
        const char *name = g ? "dyn" : "st";
        char members[512] = "";
        assert_int_equal(ota_store_group_members(s, name, name_cb, members), OTA_STORE_OK);
        listed_t m = {.s = s};
        assert_int_equal(ota_store_group_members_attrs(s, name, listed_cb, &m), OTA_STORE_OK);
        assert_string_equal(m.names, members);
    }
    assert_int_equal(ota_store_group_members_attrs(s, "nope", listed_cb, &l), OTA_STORE_NOT_FOUND);
    /* what each thing has, in the order of ota_store_thing_list() */
    char names[512] = "";
    assert_int_equal(ota_store_thing_list(s, name_cb, names), OTA_STORE_OK);
    assert_int_equal(ota_store_thing_list_attrs(s, NULL, listed_cb, &l), OTA_STORE_OK);
    assert_string_equal(l.names, names);
    /* one thing; an unknown one lists nothing; a bad name and no callback are refused */
    listed_t one = {.s = s};
    assert_int_equal(ota_store_thing_list_attrs(s, "i12", listed_cb, &one), OTA_STORE_OK);
    assert_string_equal(one.names, "i12;");
    listed_t none = {.s = s};
    assert_int_equal(ota_store_thing_list_attrs(s, "nope", listed_cb, &none), OTA_STORE_OK);
    assert_string_equal(none.names, "");
    assert_int_equal(ota_store_thing_list_attrs(s, "bad name", listed_cb, &none),
                     OTA_STORE_INVALID);
    assert_int_equal(ota_store_thing_list_attrs(s, NULL, NULL, NULL), OTA_STORE_INVALID);
    /* the callback stops it */
    listed_t two = {.s = s, .stop_after = 2};
    assert_int_equal(ota_store_thing_list_attrs(s, NULL, listed_cb, &two), OTA_STORE_OK);
    assert_int_equal(strncmp(two.names, names, strlen(two.names)), 0);
    assert_int_equal(strchr(strchr(two.names, ';') + 1, ';')[1], '\0');
    /* the lookup */
    ota_store_attr_t a[] = {{"Site", "x", 1}, {"zone", "a", 2}};
    assert_string_equal(ota_store_attr_find(a, 2, "zone"), "a");
    assert_null(ota_store_attr_find(a, 2, "connected"));
    assert_null(ota_store_attr_find(a, 2, NULL));
}

/* ota_store_thing_executions() checked against the per-thing reads. */
typedef struct {
    ota_store_t *s;
    size_t things, execs;
} execs_seen_t;

static int execs_cb(void *ctx, const char *thing, const ota_store_execution_t *execs, size_t n,
                    long next)
{
    execs_seen_t *v = ctx;
    v->things++;
    v->execs += n;
    assert_true(n > 0);
    /* by job, as ota_store_execution_get() reads them one job at a time */
    for (size_t i = 0; i < n; i++) {
        ota_store_execution_t e;
        assert_string_equal(execs[i].thing, thing);
        assert_int_equal(ota_store_execution_get(v->s, execs[i].job_id, thing, &e), OTA_STORE_OK);
        assert_int_equal(e.status, execs[i].status);
        assert_int_equal(e.version_number, execs[i].version_number);
        assert_int_equal(e.queued_at_ms, execs[i].queued_at_ms);
        assert_int_equal(e.last_updated_at_ms, execs[i].last_updated_at_ms);
        assert_int_equal(e.released, execs[i].released);
        assert_true((e.status_details == NULL) == (execs[i].status_details == NULL));
        if (e.status_details)
            assert_string_equal(e.status_details, execs[i].status_details);
        ota_store_execution_free(&e);
        if (i > 0) /* jobs j0, j1, ... were made in that order */
            assert_true(strcmp(execs[i - 1].job_id, execs[i].job_id) < 0);
    }
    ota_store_execution_t want;
    int rc = ota_store_execution_next(v->s, thing, &want);
    if (rc == OTA_STORE_NOT_FOUND) {
        assert_int_equal(next, -1);
    } else {
        assert_int_equal(rc, OTA_STORE_OK);
        assert_true(next >= 0 && (size_t)next < n);
        assert_string_equal(execs[next].job_id, want.job_id);
        ota_store_execution_free(&want);
    }
    return 0;
}

static int count_execs_cb(void *ctx, const char *thing, const ota_store_execution_t *execs,
                          size_t n, long next)
{
    (void)thing;
    (void)execs;
    (void)n;
    (void)next;
    (*(size_t *)ctx)++;
    return 0;
}

/* Jobs j<k> on things x0..x(n-1): some queued, some in progress, some done. */
static void mk_exec_fleet(ota_store_t *s, int from, int to)
{
    for (int i = from; i < to; i++) {
        char name[32];
        snprintf(name, sizeof name, "x%d", i);
        assert_int_equal(ota_store_thing_create(s, name, T0), OTA_STORE_OK);
    }
    for (int k = 0; k < 3; k++) {
        char job[16];
        snprintf(job, sizeof job, "j%d-%d", from, k);
        const char *names[40];
        char buf[40][32];
        int n = 0;
        for (int i = from; i < to; i++)
            if ((i + k) % 4 != 3) {
                snprintf(buf[n], sizeof buf[n], "x%d", i);
                names[n] = buf[n];
                n++;
            }
        assert_int_equal(mk_job(s, job, names, (size_t)n, 0, T0 + from * 10 + k), OTA_STORE_OK);
        for (int i = 0; i < n; i++) {
            int what = (i + k) % 5;
            if (what == 1)
                assert_int_equal(upd(s, job, names[i], OTA_STORE_EXEC_IN_PROGRESS,
                                     "{\"step\":\"a\"}", T0 + 100 + i),
                                 OTA_STORE_OK);
            else if (what == 2)
                assert_int_equal(upd(s, job, names[i], OTA_STORE_EXEC_SUCCEEDED, NULL, T0 + 200),
                                 OTA_STORE_OK);
            else if (what == 3)
                assert_int_equal(upd(s, job, names[i], OTA_STORE_EXEC_FAILED, NULL, T0 + 300),
                                 OTA_STORE_OK);
        }
    }
}

/* ota_store_thing_executions(): each thing's executions by job and its next one, as the
 * per-thing reads give them; one statement for 4 things as for 36. */
static void test_thing_executions(void **state)
{
    ota_store_t *s = ((fx_t *)*state)->s;
    mk_exec_fleet(s, 0, 4);
    size_t n = 0;
    int64_t before = ota_store_statements(s);
    assert_int_equal(ota_store_thing_executions(s, count_execs_cb, &n), OTA_STORE_OK);
    int64_t small = ota_store_statements(s) - before;
    assert_int_equal(n, 4);
    mk_exec_fleet(s, 4, 36);
    n = 0;
    before = ota_store_statements(s);
    assert_int_equal(ota_store_thing_executions(s, count_execs_cb, &n), OTA_STORE_OK);
    assert_int_equal(ota_store_statements(s) - before, small);
    assert_int_equal(small, 1);
    assert_int_equal(n, 36);
    execs_seen_t v = {.s = s};
    assert_int_equal(ota_store_thing_executions(s, execs_cb, &v), OTA_STORE_OK);
    assert_int_equal(v.things, 36);
    assert_int_equal(v.execs, 4 * 3 - 3 + 32 * 3 - 24);
    assert_int_equal(ota_store_thing_executions(s, NULL, NULL), OTA_STORE_INVALID);
}

/* A broker the federation gains: a thing seen before has no notice there, so it is unknown
 * there from its next notice on (not known off), like at its first notice. */
static void test_presence_federation_grows(void **state)
{
    fx_t *fx = *state;
    ota_store_t *s = fx->s;
    mk_things(s, "t", 1);
    assert_int_equal(ota_store_presence_gap(s, 0x1feu, T0, NULL), OTA_STORE_OK);
    assert_int_equal(ota_store_presence_notice(s, "t0", 1, 1, 0, T0 + 1), OTA_STORE_OK);
    presence_is(s, "t0", "true 1 -");
    /* the service restarts with two brokers: a gap on both, then t0's next notice on 1 */
    assert_int_equal(ota_store_presence_gap(s, 0x1feu, T0 + 10, NULL), OTA_STORE_OK);
    presence_is(s, "t0", "unknown - 1");
    assert_int_equal(ota_store_presence_notice(s, "t0", 1, 0, 1u << 2, T0 + 11), OTA_STORE_OK);
    presence_is(s, "t0", "unknown - 2");
    ota_store_presence_t p;
    assert_int_equal(ota_store_presence_get(s, "t0", &p), OTA_STORE_OK);
    assert_int_equal(p.unknown_since_ms, T0 + 11);
    /* a notice on broker 2 makes it known there; later notices add nothing unknown */
    assert_int_equal(ota_store_presence_notice(s, "t0", 2, 1, 1u << 1, T0 + 12), OTA_STORE_OK);
    presence_is(s, "t0", "true 2 -");
    assert_int_equal(ota_store_presence_notice(s, "t0", 1, 1, 1u << 2, T0 + 13), OTA_STORE_OK);
    presence_is(s, "t0", "true 1,2 -");
}

/* A federation that shrinks: the things' notices on the brokers gone are forgotten, so no
 * thing stays unknown on one of them. */
static void test_presence_federation_shrinks(void **state)
{
    fx_t *fx = *state;
    ota_store_t *s = fx->s;
    mk_things(s, "t", 2);
    assert_int_equal(ota_store_presence_notice(s, "t0", 1, 1, 1u << 3, T0), OTA_STORE_OK);
    assert_int_equal(ota_store_presence_notice(s, "t1", 3, 0, 1u << 1, T0), OTA_STORE_OK);
    assert_int_equal(ota_store_presence_gap(s, 1u << 3, T0 + 1, NULL), OTA_STORE_OK);
    presence_is(s, "t0", "true 1 3");
    presence_is(s, "t1", "unknown - 1,3");
    int forgot = -1;
    /* the same federation again: nothing to forget */
    assert_int_equal(ota_store_presence_keep_brokers(s, 3, &forgot), OTA_STORE_OK);
    assert_int_equal(forgot, 0);
    presence_is(s, "t0", "true 1 3");
    /* broker 3 is gone: t0 is known on broker 1 alone; t1 was only ever seen there */
    assert_int_equal(ota_store_presence_keep_brokers(s, 2, &forgot), OTA_STORE_OK);
    assert_int_equal(forgot, 1);
    presence_is(s, "t0", "true 1 -");
    presence_is(s, "t1", "unknown - 1");
    assert_int_equal(ota_store_presence_keep_brokers(s, 2, &forgot), OTA_STORE_OK);
    assert_int_equal(forgot, 0);
    /* a broker 3 added again later: each thing unknown there until its notice there */
    assert_int_equal(ota_store_presence_notice(s, "t1", 1, 1, 1u << 3, T0 + 2), OTA_STORE_OK);
    presence_is(s, "t1", "true 1 3");
    assert_int_equal(ota_store_presence_notice(s, "t1", 3, 1, 1u << 1, T0 + 3), OTA_STORE_OK);
    presence_is(s, "t1", "true 1,3 -");
    assert_int_equal(ota_store_presence_keep_brokers(s, 0, NULL), OTA_STORE_INVALID);
    assert_int_equal(ota_store_presence_keep_brokers(NULL, 1, NULL), OTA_STORE_INVALID);
}

/* A notice about a client that is no thing (the service, the CLI, a bridge) is refused
 * after a read: it does not wait for the write lock another writer holds. */
static void test_presence_notice_of_no_thing_reads_only(void **state)
{
    fx_t *fx = *state;
    mk_things(fx->s, "t", 1);
    if (g_location) {
        /* PostgreSQL: the same refusal; the lock is an advisory one the test cannot hold */
        assert_int_equal(ota_store_presence_notice(fx->s, "otter-service", 1, 1, 0, T0),
                         OTA_STORE_NOT_FOUND);
        return;
    }
    char p[400];
    sqlite3 *db;
    snprintf(p, sizeof p, "%s/otter.db", fx->dir);
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", 0, 0, 0), SQLITE_OK);
    int rc = ota_store_presence_notice(fx->s, "otter-service", 1, 1, 0, T0);
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", 0, 0, 0), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(rc, OTA_STORE_NOT_FOUND);
    assert_int_equal(ota_store_presence_notice(fx->s, "t0", 1, 1, 0, T0), OTA_STORE_OK);
}

int main(int argc, char **argv)
{
    int arg = 1;
    if (argc > arg && strcmp(argv[arg], "--postgresql") == 0) {
        if (ota_test_pg_start(&g_pg) != 0)
            return 1;
        g_location = g_pg.url;
        arg++;
    }
    if (argc > arg) /* a test name pattern: run only those */
        cmocka_set_test_filter(argv[arg]);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_open_layout_and_schema),
        T(test_open_refuses_newer_schema),
        T(test_schema_check_sees_newer_schema),
        T(test_things),
        T(test_groups),
        T(test_file_import),
        T(test_file_from_another_instance),
        T(test_streams),
        T(test_job_create_constraints),
        T(test_executions_and_next_order),
        T(test_update_rules),
        T(test_cancel),
        T(test_may_read_stream),
        T(test_timeouts),
        T(test_rollout),
        T(test_abort_criteria),
        T(test_notify_bookkeeping),
        T(test_reopen_keeps_everything),
        T(test_two_handles),
        T(test_concurrent_processes),
        T(test_concurrent_first_open),
        T(test_sweeps_once_across_processes),
        T(test_null_arguments),
        T(test_validators),
        T(test_thing_attrs),
        T(test_targeting),
        T(test_downgrade_skipped),
        T(test_execution_cancel_and_delete),
        T(test_abort_rules),
        T(test_phases_and_rates),
        T(test_dynamic_groups_and_continuous_jobs),
        T(test_stored_presence_query_keeps_working),
        T(test_presence_beyond_attribute_limit),
        T(test_deliveries_applied_once),
        T(test_instances_and_outbox),
        T(test_execution_history),
        T(test_execution_history_bounded),
        T(test_presence_gaps_across_handles),
        T(test_presence_notices_at_once),
        T(test_presence_older_notice_keeps_newer_row),
        T(test_presence_notice_before_gap_stays_unknown),
        T(test_presence_legacy_attributes_migrate),
        T(test_presence_federation_grows),
        T(test_presence_federation_shrinks),
        T(test_presence_notice_of_no_thing_reads_only),
        T(test_presence_attrs_in_byte_order),
        T(test_thing_list_attrs),
        T(test_thing_executions),
    };
    int failed = g_location ? cmocka_run_group_tests_name("store_postgresql", tests, NULL, NULL)
                            : cmocka_run_group_tests_name("store_sqlite", tests, NULL, NULL);
    if (g_location)
        ota_test_pg_stop(&g_pg);
    return failed;
}
