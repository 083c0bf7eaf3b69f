/*
 * otter-service killed in the middle of downloads (power cut: SIGKILL) and
 * started again: the devices re-ask for what is missing and every download
 * completes with every byte right.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include "ota_svc_test_fixture.h"

#define DEVICES 20
#define FILE_SIZE (4u * 1024u * 1024u)
#define BLOCK 4096u

typedef struct fleet_job {
    svc_fx_t *fx;
    svc_fleet_result_t result;
    int rc;
} fleet_job_t;

static void *fleet_thread(void *arg)
{
    fleet_job_t *j = arg;
    /* One block per request: a long stream of small requests to cut into. */
    j->rc = svc_fleet_run(j->fx, DEVICES, 2, BLOCK, 1, 50000, &j->result);
    return NULL;
}

static void test_service_killed_mid_download(void **state)
{
    (void)state;
    svc_fx_t fx;
    fleet_job_t job = {&fx, {0}, -1};
    pthread_t t;

    assert_int_equal(svc_fx_setup(&fx, FILE_SIZE, DEVICES), 0);
    if (svc_fx_start_service(&fx, NULL) != 0) {
        svc_fx_teardown(&fx);
        fail_msg("otter-service did not start");
    }
    assert_int_equal(pthread_create(&t, NULL, fleet_thread, &job), 0);
    usleep(300 * 1000);
    int killed = ota_test_proc_kill(&fx.svc[0]);
    usleep(500 * 1000);
    int restarted = svc_fx_start_service(&fx, NULL);
    pthread_join(t, NULL);
    printf("streams faults: service killed (status %d) 0.3 s into the downloads and restarted; "
           "%d of %d devices completed %u KiB in %.2f s, %llu requests, %llu re-asked after "
           "silence\n",
           killed, job.result.completed, DEVICES, FILE_SIZE / 1024, job.result.seconds,
           (unsigned long long)job.result.requests, (unsigned long long)job.result.retries);
    if (job.rc != 0 && restarted >= 0) {
        svc_fx_dump_log(&fx, restarted);
    }
    svc_fx_teardown(&fx);
    assert_int_equal(killed, 128 + 9);
    assert_int_equal(restarted, 1);
    assert_int_equal(job.rc, 0);
    assert_int_equal(job.result.completed, DEVICES);
    assert_true(job.result.retries > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_service_killed_mid_download),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
