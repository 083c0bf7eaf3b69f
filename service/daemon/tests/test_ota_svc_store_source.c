/*
 * Unit tests of the store adapter for the streams module: answers, cache hits
 * (no store query per block), invalidation when another connection writes.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ota_store.h"
#include "ota_svc_store_source.h"
#include "ota_test_util.h"

typedef struct fx {
    char dir[64];
    char data[96];
    ota_store_t *writer; /* the CLI's connection */
    ota_store_t *reader; /* the adapter's own */
} fx_t;

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    char path[128];
    ota_store_file_t file;
    int64_t now = ota_store_now_ms();

    snprintf(fx->dir, sizeof(fx->dir), "/tmp/otter-source-test-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->data, sizeof(fx->data), "%s/data", fx->dir);
    snprintf(path, sizeof(path), "%s/fw.bin", fx->dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (int i = 0; i < 5000; i++) {
        fputc(i & 0xff, f);
    }
    fclose(f);
    assert_int_equal(ota_store_open(fx->data, &fx->writer), OTA_STORE_OK);
    assert_int_equal(ota_store_file_import(fx->writer, path, &file), OTA_STORE_OK);
    ota_store_stream_file_t sf = {7, file.path, file.size};
    assert_int_equal(ota_store_stream_create(fx->writer, "S1", "desc", &sf, 1, now), OTA_STORE_OK);
    assert_int_equal(ota_store_thing_create(fx->writer, "t1", now), OTA_STORE_OK);
    assert_int_equal(ota_store_thing_create(fx->writer, "t2", now), OTA_STORE_OK);
    const char *things[] = {"t1"};
    ota_store_job_spec_t spec;
    memset(&spec, 0, sizeof(spec));
    spec.job_id = "J1";
    spec.document = "{\"afr_ota\":{}}";
    spec.stream_id = "S1";
    spec.things = things;
    spec.n_things = 1;
    assert_int_equal(ota_store_job_create(fx->writer, &spec, now), OTA_STORE_OK);
    assert_int_equal(ota_store_open(fx->data, &fx->reader), OTA_STORE_OK);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    ota_store_close(fx->reader);
    ota_store_close(fx->writer);
    ota_test_rm_tree(fx->dir);
    free(fx);
    return 0;
}

static void test_answers_and_cache(void **state)
{
    fx_t *fx = *state;
    ota_svc_store_source_t *src = ota_svc_store_source_create(fx->reader, 5000);
    ota_svc_streams_source_t s;
    ota_svc_stream_t st;
    ota_svc_store_source_stats_t stats;
    assert_non_null(src);
    ota_svc_store_source_bind(src, &s);
    ota_svc_store_source_tick(src); /* first poll reports a change: empty cache anyway */

    for (int i = 0; i < 100; i++) {
        memset(&st, 0, sizeof(st));
        assert_int_equal(s.get(s.ctx, "S1", &st), 1);
        assert_int_equal(st.version, 1);
        assert_string_equal(st.description, "desc");
        assert_int_equal(st.n_files, 1);
        assert_int_equal(st.files[0].file_id, 7);
        assert_int_equal(st.files[0].size, 5000);
        assert_int_equal(access(st.files[0].path, R_OK), 0);
        s.release(s.ctx, &st);
        assert_int_equal(s.may_read(s.ctx, "t1", "S1"), 1);
        assert_int_equal(s.may_read(s.ctx, "t2", "S1"), 0);
        assert_int_equal(s.get(s.ctx, "nope", &st), 0);
    }
    ota_svc_store_source_get_stats(src, &stats);
    assert_int_equal(stats.stream_lookups, 200);
    assert_int_equal(stats.stream_queries, 2); /* S1 and nope, once each */
    assert_int_equal(stats.auth_lookups, 200);
    assert_int_equal(stats.auth_queries, 2);

    /* Another connection cancels the job: the next tick drops the cache. */
    assert_int_equal(ota_store_job_cancel(fx->writer, "J1", ota_store_now_ms()), OTA_STORE_OK);
    ota_svc_store_source_tick(src);
    assert_int_equal(s.may_read(s.ctx, "t1", "S1"), 0);
    ota_svc_store_source_get_stats(src, &stats);
    assert_true(stats.invalidations >= 2);
    assert_int_equal(stats.auth_queries, 3);

    /* Nothing changed: the cache stays. */
    ota_svc_store_source_tick(src);
    assert_int_equal(s.may_read(s.ctx, "t1", "S1"), 0);
    ota_svc_store_source_get_stats(src, &stats);
    assert_int_equal(stats.auth_queries, 3);
    ota_svc_store_source_destroy(src);
}

static void test_no_cache(void **state)
{
    fx_t *fx = *state;
    ota_svc_store_source_t *src = ota_svc_store_source_create(fx->reader, 0);
    ota_svc_streams_source_t s;
    ota_svc_stream_t st;
    ota_svc_store_source_stats_t stats;
    ota_svc_store_source_bind(src, &s);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s.get(s.ctx, "S1", &st), 1);
        assert_int_equal(st.files[0].size, 5000);
        s.release(s.ctx, &st);
        assert_int_equal(s.may_read(s.ctx, "t1", "S1"), 1);
    }
    ota_svc_store_source_get_stats(src, &stats);
    assert_int_equal(stats.stream_queries, 3);
    assert_int_equal(stats.auth_queries, 3);
    ota_svc_store_source_destroy(src);
    assert_null(ota_svc_store_source_create(NULL, 10));
    ota_svc_store_source_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_answers_and_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_cache, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
