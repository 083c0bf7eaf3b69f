/*
 * otter-service under load: 200 simulated devices fetch a 256 KiB file at the
 * same time, 16 blocks of 4 KiB per request, every byte verified. Prints the
 * aggregate throughput and the completion time. Then 50 devices fetch it the
 * way the AWS agent does, one block per request.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>

#include "ota_svc_test_fixture.h"

#define DEVICES 200
#define FILE_SIZE (256u * 1024u)
#define BLOCK 4096u
#define WINDOW 16u
#define THREADS 4

static void test_200_devices(void **state)
{
    (void)state;
    svc_fx_t fx;
    svc_fleet_result_t r;
    assert_int_equal(svc_fx_setup(&fx, FILE_SIZE, DEVICES), 0);
    if (svc_fx_start_service(&fx, NULL) != 0) {
        svc_fx_teardown(&fx);
        fail_msg("otter-service did not start");
    }
    int rc = svc_fleet_run(&fx, DEVICES, THREADS, BLOCK, WINDOW, 50000, &r);
    double mib = (double)DEVICES * FILE_SIZE / (1024.0 * 1024.0);
    printf("streams load: %d of %d devices completed a %u KiB file (%u-byte blocks, %u per "
           "request): %.1f MiB in total; %.2f s from the first connect (%.1f MiB/s), %.2f s "
           "from the first request to the last byte (%.1f MiB/s); %llu requests (%llu "
           "retries), %llu duplicate blocks\n",
           r.completed, DEVICES, FILE_SIZE / 1024, BLOCK, WINDOW, mib, r.seconds,
           r.seconds > 0 ? mib / r.seconds : 0.0, r.download_seconds,
           r.download_seconds > 0 ? mib / r.download_seconds : 0.0, (unsigned long long)r.requests,
           (unsigned long long)r.retries, (unsigned long long)r.duplicates);
    int status = svc_fx_stop_service(&fx, 0);
    printf("streams load: service counted %lld requests, %lld blocks\n",
           svc_fx_log_stat(&fx, 0, "stream_requests"), svc_fx_log_stat(&fx, 0, "blocks"));
    if (rc != 0 || status != 0) {
        svc_fx_dump_log(&fx, 0);
    }
    svc_fx_teardown(&fx);
    assert_int_equal(rc, 0);
    assert_int_equal(r.completed, DEVICES);
    assert_int_equal(status, 0);
}

/* The AWS agent's pattern: one block per request, one request at a time. */
static void test_one_block_per_request(void **state)
{
    (void)state;
    svc_fx_t fx;
    svc_fleet_result_t r;
    const int devices = 50;
    assert_int_equal(svc_fx_setup(&fx, FILE_SIZE, devices), 0);
    if (svc_fx_start_service(&fx, NULL) != 0) {
        svc_fx_teardown(&fx);
        fail_msg("otter-service did not start");
    }
    int rc = svc_fleet_run(&fx, devices, 2, BLOCK, 1, 50000, &r);
    double mib = (double)devices * FILE_SIZE / (1024.0 * 1024.0);
    printf("streams load, 1 block per request: %d of %d devices, %.1f MiB in %.2f s (%.1f MiB/s, "
           "%.0f requests/s); %llu requests (%llu retries)\n",
           r.completed, devices, mib, r.download_seconds,
           r.download_seconds > 0 ? mib / r.download_seconds : 0.0,
           r.download_seconds > 0 ? (double)r.requests / r.download_seconds : 0.0,
           (unsigned long long)r.requests, (unsigned long long)r.retries);
    int status = svc_fx_stop_service(&fx, 0);
    if (rc != 0 || status != 0) {
        svc_fx_dump_log(&fx, 0);
    }
    svc_fx_teardown(&fx);
    assert_int_equal(rc, 0);
    assert_int_equal(status, 0);
}

/* A small outgoing backlog limit: the service pauses reading, nothing is lost. */
static void test_backpressure(void **state)
{
    (void)state;
    svc_fx_t fx;
    svc_fleet_result_t r;
    const int devices = 50;
    static const char *const args[] = {"--max-backlog", "64", NULL};
    assert_int_equal(svc_fx_setup(&fx, FILE_SIZE, devices), 0);
    if (svc_fx_start_service(&fx, args) != 0) {
        svc_fx_teardown(&fx);
        fail_msg("otter-service did not start");
    }
    int rc = svc_fleet_run(&fx, devices, 2, BLOCK, WINDOW, 50000, &r);
    int status = svc_fx_stop_service(&fx, 0);
    long long paused = svc_fx_log_stat(&fx, 0, "paused");
    long long peak = svc_fx_log_stat(&fx, 0, "backlog_peak");
    printf("streams load, 64 KiB backlog limit: %d of %d devices in %.2f s, reading paused %lld "
           "times, peak backlog %lld bytes, %llu retries\n",
           r.completed, devices, r.download_seconds, paused, peak, (unsigned long long)r.retries);
    if (rc != 0 || status != 0 || paused <= 0) {
        svc_fx_dump_log(&fx, 0);
    }
    svc_fx_teardown(&fx);
    assert_int_equal(rc, 0);
    assert_int_equal(status, 0);
    assert_true(paused > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_200_devices),
        cmocka_unit_test(test_one_block_per_request),
        cmocka_unit_test(test_backpressure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
