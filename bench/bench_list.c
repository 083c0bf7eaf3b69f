/*
 * otter benchmark: what listing the fleet costs (`otter thing list`, its
 * --json form and the web API's GET /api/v1/things read every thing with its
 * attributes and presence through ota_store_thing_list_attrs()) with a small
 * and a large fleet, and the ratio of the per-thing costs, in one run.
 *
 *   bench_list [--small N] [--large N] [--quick] [--postgresql]
 *
 * For each fleet size: an empty store (SQLite in a fresh data folder, or with
 * --postgresql a throwaway PostgreSQL server on a free port of 127.0.0.1,
 * fsync off), N things loaded in a few statements with what a fleet has:
 * device type, firmware version, slot, image state and lastSeen attributes,
 * presence on broker 1 (online, offline, or unknown since a gap), some
 * disabled, some never seen. Then the listing is timed (best of 3), and so is
 * reading the same with one ota_store_thing_attr_list() per thing (the way
 * listings read before). Every thing's attributes from the listing are
 * checked against ota_store_thing_attr_list() (key, value, time), and the
 * statements each listing ran are counted; the run fails when they differ,
 * or when the listing's statements grow with the fleet. Prints a Markdown
 * table.
 */
#define _POSIX_C_SOURCE 200809L

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "ota_store.h"
#include "ota_test_pg.h"

static ota_test_pg_t g_pg;
static int g_postgresql;

/* The fleet as SQL from table n(i, name) of thing numbers 0..n-1 and names: things,
 * attributes, presence (the same text for both back-ends). */
static const char fleet_sql[] =
    "INSERT INTO things(name, created_ms) SELECT name, 1790000000000 + i FROM n;"
    "INSERT INTO thing_attrs(thing, key, value, updated_ms) SELECT n.name, k.key, "
    "CASE k.key WHEN 'firmwareVersion' THEN '1.0.' || (i % 7) "
    "WHEN 'slot' THEN CASE WHEN i % 2 = 0 THEN 'a' ELSE 'b' END "
    "WHEN 'lastSeen' THEN '' || (1790000500000 + i) ELSE k.value END, 1790000100000 + i "
    "FROM n, (SELECT 'deviceType' AS key, 'bench-board' AS value UNION ALL "
    "SELECT 'firmwareVersion', '' UNION ALL SELECT 'slot', '' UNION ALL "
    "SELECT 'imageState', 'confirmed' UNION ALL SELECT 'lastSeen', '' UNION ALL "
    "SELECT 'zone', 'hall-3') k WHERE i % 10 <> 9;"
    "INSERT INTO thing_attrs(thing, key, value, updated_ms) "
    "SELECT name, 'disabled', 'true', 1790000200000 FROM n WHERE i % 50 = 7;"
    "INSERT INTO presence_gaps(broker, epoch, at_ms) VALUES(1, 1, 1790000400000);"
    "INSERT INTO presence(thing, broker, online, epoch, at_ms) "
    "SELECT name, 1, CASE WHEN i % 3 = 0 THEN 0 ELSE 1 END, "
    "CASE WHEN i % 4 = 0 THEN 0 ELSE 1 END, 1790000300000 + i FROM n WHERE i % 10 <> 9;"
    "DROP TABLE n;";

/* Table n on each back-end, for n things (a format: %d is their number). */
static const char sqlite_numbers[] =
    "BEGIN; CREATE TEMPORARY TABLE n AS WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL "
    "SELECT i + 1 FROM c WHERE i + 1 < %d) SELECT i, printf('bench-%%06d', i) AS name FROM c;";
static const char pg_numbers[] =
    "CREATE TEMPORARY TABLE n AS SELECT i, 'bench-' || lpad(i::text, 6, '0') AS name "
    "FROM generate_series(0, %d - 1) i;";

/* A fresh store with n things. */
static ota_store_t *load(const char *dir, int n)
{
    ota_store_t *s;
    if (g_postgresql && ota_test_pg_reset(&g_pg) != 0)
        bench_store_die("bench_list", NULL, "empty the database");
    if (ota_store_open_at(dir, g_postgresql ? g_pg.url : NULL, &s) != OTA_STORE_OK)
        bench_store_die("bench_list", NULL, "open the store");
    char sql[sizeof fleet_sql + sizeof sqlite_numbers + sizeof pg_numbers + 32];
    snprintf(sql, sizeof sql, g_postgresql ? pg_numbers : sqlite_numbers, n);
    strcat(sql, fleet_sql);
    if (g_postgresql) {
        if (ota_test_pg_exec(&g_pg, sql) != 0)
            bench_store_die("bench_list", s, "load the fleet");
    } else {
        char path[256];
        snprintf(path, sizeof path, "%s/otter.db", dir);
        sqlite3 *db;
        char *err = NULL;
        if (sqlite3_open(path, &db) != SQLITE_OK)
            bench_store_die("bench_list", s, "open the database file");
        strcat(sql, "COMMIT;");
        if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
            fprintf(stderr, "bench_list: %s\n", err ? err : "?");
            exit(1);
        }
        sqlite3_close(db);
    }
    return s;
}

/** What a listing gave: things and attributes, and a check sum of every field. */
typedef struct {
    ota_store_t *s;
    size_t things, attrs;
    unsigned long sum;
    int check; /* compare each thing with ota_store_thing_attr_list() */
    const ota_store_attr_t *want;
    size_t n_want, at;
    int bad;
} seen_t;

static unsigned long sum_text(unsigned long h, const char *t)
{
    while (*t)
        h = h * 31u + (unsigned char)*t++;
    return h * 31u;
}

static int compare_attr(void *ctx, const char *key, const char *value, int64_t updated_ms)
{
    seen_t *v = ctx;
    const ota_store_attr_t *w = v->at < v->n_want ? &v->want[v->at] : NULL;
    if (!w || strcmp(w->key, key) != 0 || strcmp(w->value, value) != 0 ||
        w->updated_ms != updated_ms)
        v->bad = 1;
    v->at++;
    return 0;
}

static int listed(void *ctx, const ota_store_thing_t *t, const ota_store_attr_t *attrs, size_t n)
{
    seen_t *v = ctx;
    v->things++;
    v->attrs += n;
    v->sum = sum_text(v->sum, t->name);
    for (size_t i = 0; i < n; i++)
        v->sum = sum_text(sum_text(v->sum, attrs[i].key), attrs[i].value) +
                 (unsigned long)attrs[i].updated_ms;
    if (v->check) {
        v->want = attrs;
        v->n_want = n;
        v->at = 0;
        if (ota_store_thing_attr_list(v->s, t->name, compare_attr, v) != OTA_STORE_OK)
            bench_store_die("bench_list", v->s, "attributes of one thing");
        if (v->at != n)
            v->bad = 1;
        if (v->bad) {
            fprintf(stderr, "bench_list: the listing's attributes of %s differ from its own\n",
                    t->name);
            exit(1);
        }
    }
    return 0;
}

/* The per-thing way: every name first, then each thing's attributes. */
typedef struct {
    char (*names)[OTA_STORE_THING_NAME_MAX + 1];
    size_t n;
} names_t;

static int add_name(void *ctx, const ota_store_thing_t *t)
{
    names_t *a = ctx;
    snprintf(a->names[a->n++], sizeof a->names[0], "%s", t->name);
    return 0;
}

static int per_thing_attr(void *ctx, const char *key, const char *value, int64_t updated_ms)
{
    seen_t *v = ctx;
    v->attrs++;
    v->sum = sum_text(sum_text(v->sum, key), value) + (unsigned long)updated_ms;
    return 0;
}

/** One fleet's figures. */
typedef struct {
    int things;
    double load_s, list_ms, per_thing_ms;
    int64_t list_statements, per_thing_statements;
} result_t;

static result_t run(const char *dir, int n)
{
    result_t r = {.things = n};
    double t0 = bench_now_s();
    ota_store_t *s = load(dir, n);
    r.load_s = bench_now_s() - t0;
    /* checked once, then timed */
    seen_t check = {.s = s, .check = 1};
    if (ota_store_thing_list_attrs(s, NULL, listed, &check) != OTA_STORE_OK)
        bench_store_die("bench_list", s, "list");
    if (check.things != (size_t)n || check.attrs < (size_t)n) {
        fprintf(stderr, "bench_list: listed %zu things, %zu attributes for %d things\n",
                check.things, check.attrs, n);
        exit(1);
    }
    r.list_ms = 1e9;
    for (int k = 0; k < 3; k++) {
        seen_t v = {.s = s};
        int64_t before = ota_store_statements(s);
        double a = bench_now_s();
        if (ota_store_thing_list_attrs(s, NULL, listed, &v) != OTA_STORE_OK)
            bench_store_die("bench_list", s, "list");
        double ms = (bench_now_s() - a) * 1000.0;
        r.list_statements = ota_store_statements(s) - before;
        if (ms < r.list_ms)
            r.list_ms = ms;
        if (v.sum != check.sum || v.things != check.things)
            bench_store_die("bench_list", s, "two listings differ");
    }
    names_t a = {malloc((size_t)n * sizeof *a.names), 0};
    if (!a.names)
        bench_store_die("bench_list", s, "out of memory");
    seen_t v = {.s = s};
    int64_t before = ota_store_statements(s);
    double t1 = bench_now_s();
    if (ota_store_thing_list(s, add_name, &a) != OTA_STORE_OK)
        bench_store_die("bench_list", s, "list names");
    for (size_t i = 0; i < a.n; i++)
        if (ota_store_thing_attr_list(s, a.names[i], per_thing_attr, &v) != OTA_STORE_OK)
            bench_store_die("bench_list", s, "attributes of one thing");
    r.per_thing_ms = (bench_now_s() - t1) * 1000.0;
    r.per_thing_statements = ota_store_statements(s) - before;
    if (v.attrs != check.attrs)
        bench_store_die("bench_list", s, "the per-thing reads found other attributes");
    free(a.names);
    ota_store_close(s);
    return r;
}

int main(int argc, char **argv)
{
    int small = 1000, large = 50000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            small = 100;
            large = 1000;
        } else if (strcmp(argv[i], "--small") == 0 && i + 1 < argc) {
            small = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--large") == 0 && i + 1 < argc) {
            large = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--postgresql") == 0) {
            g_postgresql = 1;
        } else {
            fprintf(stderr, "usage: bench_list [--small N] [--large N] [--quick] [--postgresql]\n");
            return 2;
        }
    }
    if (small < 10 || large < small || large > 999999) {
        fprintf(stderr, "bench_list: give 10 <= --small <= --large <= 999999\n");
        return 2;
    }
    if (g_postgresql && ota_test_pg_start_with(&g_pg, 0) != 0)
        return 1;
    char dir[] = "/tmp/otter-bench-list-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char a[64], b[64];
    snprintf(a, sizeof a, "%s/small", dir);
    snprintf(b, sizeof b, "%s/large", dir);
    result_t r[2] = {run(a, small), run(b, large)};
    printf("%s: listing the things with their attributes and presence\n\n",
           g_postgresql ? "PostgreSQL" : "SQLite");
    printf("| things | load | one listing (best of 3) | per thing | statements | per-thing "
           "reads | per thing | statements |\n");
    printf("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < 2; i++)
        printf("| %d | %.1f s | %.1f ms | %.2f us | %lld | %.1f ms | %.2f us | %lld |\n",
               r[i].things, r[i].load_s, r[i].list_ms, r[i].list_ms * 1000.0 / r[i].things,
               (long long)r[i].list_statements, r[i].per_thing_ms,
               r[i].per_thing_ms * 1000.0 / r[i].things, (long long)r[i].per_thing_statements);
    printf("\nper-thing cost of one listing, %d things / %d things: %.2f\n", large, small,
           (r[1].list_ms / large) / (r[0].list_ms / small));
    printf("statements of one listing: %lld with %d things, %lld with %d\n",
           (long long)r[0].list_statements, small, (long long)r[1].list_statements, large);
    int rc = 0;
    if (r[0].list_statements != r[1].list_statements) {
        fprintf(stderr, "bench_list: the listing's statements grow with the fleet\n");
        rc = 1;
    }
    char *rm[] = {"rm", "-rf", dir, NULL};
    pid_t pid = fork();
    if (pid == 0) {
        execvp("rm", rm);
        _exit(127);
    }
    waitpid(pid, NULL, 0);
    if (g_postgresql)
        ota_test_pg_stop(&g_pg);
    return rc;
}
