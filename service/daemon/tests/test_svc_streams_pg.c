/*
 * Two otter-service instances on one PostgreSQL store, as on two machines:
 * each has its own data folder, and only the first one's folder holds the
 * imported firmware file. They split the devices (--shard 0/2 and 1/2);
 * 20 devices fetch a 256 KiB file and every byte is verified, so the second
 * instance served its share from the copy it wrote from the database.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ota_svc_test_fixture.h"
#include "ota_test_net.h"
#include "ota_test_pg.h"

#define DEVICES 20
#define FILE_SIZE (256u * 1024u)

static ota_test_pg_t g_pg;

/* Number of <id>.bin files in a files/ folder. */
static int count_bins(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (d == NULL) {
        return -1;
    }
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t len = strlen(e->d_name);
        n += len > 4 && strcmp(e->d_name + len - 4, ".bin") == 0;
    }
    closedir(d);
    return n;
}

static void test_two_instances_two_folders(void **state)
{
    (void)state;
    svc_fx_t fx;
    assert_int_equal(svc_fx_setup_store(&fx, FILE_SIZE, DEVICES, g_pg.url), 0);
    char other[256], files[300];
    snprintf(other, sizeof other, "%s/other-machine", fx.dir);
    assert_int_equal(mkdir(other, 0700), 0);
    snprintf(files, sizeof files, "%s/files", other);
    const char *a0[] = {"--store", g_pg.url, "--shard", "0/2", NULL};
    const char *a1[] = {"--store", g_pg.url, "--shard", "1/2", "--data-dir", other, NULL};
    if (svc_fx_start_service(&fx, a0) != 0 || svc_fx_start_service(&fx, a1) != 1) {
        svc_fx_teardown(&fx);
        fail_msg("otter-service did not start");
    }
    assert_int_equal(count_bins(files), 0); /* nothing there before a device asks */
    svc_fleet_result_t r;
    int rc = svc_fleet_run(&fx, DEVICES, 2, 4096, 8, 60000, &r);
    int s0 = svc_fx_stop_service(&fx, 0);
    int s1 = svc_fx_stop_service(&fx, 1);
    long long req0 = svc_fx_log_stat(&fx, 0, "stream_requests");
    long long req1 = svc_fx_log_stat(&fx, 1, "stream_requests");
    printf("streams on PostgreSQL, two folders: %d of %d devices completed in %.2f s; "
           "instance 0 served %lld requests, instance 1 (no local file) %lld\n",
           r.completed, DEVICES, r.seconds, req0, req1);
    if (rc != 0 || req0 <= 0 || req1 <= 0) {
        svc_fx_dump_log(&fx, 0);
        svc_fx_dump_log(&fx, 1);
    }
    int bins = count_bins(files);
    svc_fx_teardown(&fx);
    assert_int_equal(rc, 0);
    assert_int_equal(r.completed, DEVICES);
    assert_int_equal(s0, 0);
    assert_int_equal(s1, 0);
    assert_true(req0 > 0);
    assert_true(req1 > 0);
    assert_int_equal(bins, 1); /* the copy instance 1 wrote from the database */
}

int main(void)
{
    if (ota_test_pg_start(&g_pg) != 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_instances_two_folders),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    ota_test_pg_stop(&g_pg);
    return failed;
}
