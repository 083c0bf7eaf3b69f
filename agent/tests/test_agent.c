/*
 * otter: agent state machine tests against the scripted broker and service
 * (agent_harness) and an in-memory port (fake_pal).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent_harness.h"
#include "fake_pal.h"
#include "otter/ota_agent.h"

#define V1_0_0 0x01000000u
#define V1_1_0 0x01010000u
#define V0_9_0 0x00090000u
#define STREAM "AFR_OTA-5f0c2a44-1d2e-4c4b-9e1a-000000000001"

typedef struct fixture {
    fake_pal_t pal;
    uint8_t file[300000];
    uint32_t size;
    uint8_t sig[8];
    harness_t *h;
} fixture_t;

static void make_file(fixture_t *fx, uint32_t size)
{
    fx->size = size;
    for (uint32_t i = 0; i < size; i++) {
        fx->file[i] = (uint8_t)(i * 7u + (i >> 9));
    }
    fake_pal_sign(fx->file, size, fx->sig);
}

static fixture_t *fixture_new(uint32_t size, const ota_agent_config_t *cfg)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fake_pal_init(&fx->pal, 1u << 20);
    make_file(fx, size);
    fx->h = h_new(&fx->pal.pal, V1_0_0, cfg);
    return fx;
}

static void fixture_free(fixture_t *fx)
{
    h_free(fx->h);
    free(fx);
}

static void set_job(fixture_t *fx, const char *job_id)
{
    h_set_job(fx->h, job_id, STREAM, fx->file, fx->size, fx->sig, sizeof fx->sig, "QUEUED", NULL);
}

static void start(fixture_t *fx)
{
    assert_int_equal(ota_agent_start(&fx->h->agent, fx->h->now), OTA_OK);
}

static int file_matches(const fixture_t *fx)
{
    return fx->pal.size == fx->size && memcmp(fx->pal.data, fx->file, fx->size) == 0;
}

/* Downloads job-1 to the point where the agent activates. */
static void download_to_activation(fixture_t *fx)
{
    set_job(fx, "job-1");
    start(fx);
    assert_true(h_run(fx->h, 60000, 10, h_stop_activating));
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_ACTIVATING);
    assert_true(file_matches(fx));
}

/* Downloads job-1 (blocks x 1 KiB, 30 ms round trips) until `until` blocks arrived. */
static fixture_t *download_partly(uint32_t blocks, uint32_t until)
{
    ota_agent_config_t cfg;
    fixture_t *fx;
    memset(&cfg, 0, sizeof cfg);
    cfg.block_size = 1024;
    fx = fixture_new(blocks * 1024u, &cfg);
    fx->h->policy.delay_ms = 30;
    set_job(fx, "job-1");
    start(fx);
    while (fx->h->agent.dl.blocks_done < until) {
        h_run(fx->h, 10, 10, NULL);
    }
    return fx;
}

/* Reboots into a new image of version, pending commit, whose job says "self_test: ready". */
/* Boots a new image pending commit; the service names job-1 in progress with details. */
static void boot_pending(fixture_t *fx, uint32_t version, const char *details)
{
    fx->pal.image_state = OTA_PAL_IMAGE_STATE_PENDING_COMMIT;
    h_reboot(fx->h, &fx->pal.pal, version);
    h_set_job(fx->h, "job-1", STREAM, fx->file, fx->size, fx->sig, sizeof fx->sig, "IN_PROGRESS",
              details);
    start(fx);
}

static void boot_new_image(fixture_t *fx, uint32_t version)
{
    boot_pending(fx, version, "{\"self_test\":\"ready\",\"updatedBy\":\"0x01000000\"}");
}

/* ---- init and arguments ---- */

static void test_init_validates_arguments(void **state)
{
    fake_pal_t *pal = malloc(sizeof *pal);
    ota_agent_t *agent = malloc(sizeof *agent);
    harness_t *h;
    ota_agent_config_t c;
    (void)state;
    fake_pal_init(pal, 1u << 20);
    h = h_new(&pal->pal, V1_0_0, NULL);
    c = h->cfg;

    assert_int_equal(ota_agent_init(NULL, &c), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_agent_init(agent, NULL), OTA_ERR_INVALID_ARG);
    c.thing_name = "";
    assert_int_equal(ota_agent_init(agent, &c), OTA_ERR_INVALID_ARG);
    c.thing_name = "a/b";
    assert_int_equal(ota_agent_init(agent, &c), OTA_ERR_INVALID_ARG);
    c.thing_name = "a+b";
    assert_int_equal(ota_agent_init(agent, &c), OTA_ERR_INVALID_ARG);
    c.thing_name = "a#";
    assert_int_equal(ota_agent_init(agent, &c), OTA_ERR_INVALID_ARG);
    {
        char long_name[OTA_THING_NAME_MAX + 2u];
        memset(long_name, 'x', sizeof long_name - 1u);
        long_name[sizeof long_name - 1u] = '\0';
        c.thing_name = long_name;
        assert_int_equal(ota_agent_init(agent, &c), OTA_ERR_INVALID_ARG);
        long_name[OTA_THING_NAME_MAX] = '\0';
        assert_int_equal(ota_agent_init(agent, &c), OTA_OK);
    }
    c = h->cfg;
    c.pal = NULL;
    assert_int_equal(ota_agent_init(agent, &c), OTA_ERR_INVALID_ARG);
    c = h->cfg;
    c.mqtt.publish = NULL;
    assert_int_equal(ota_agent_init(agent, &c), OTA_ERR_INVALID_ARG);
    c = h->cfg;
    c.block_size = 255;
    assert_int_equal(ota_agent_init(agent, &c), OTA_ERR_INVALID_ARG);
    c.block_size = 131073;
    assert_int_equal(ota_agent_init(agent, &c), OTA_ERR_INVALID_ARG);
    c.block_size = 131072;
    assert_int_equal(ota_agent_init(agent, &c), OTA_OK); /* window clamps to 1 */
    assert_int_equal(agent->stats.window_blocks, 1);
    c.window_blocks = 2;
    assert_int_equal(ota_agent_init(agent, &c), OTA_OK); /* two requests of 128 KiB */
    assert_int_equal(agent->stats.window_blocks, 2);
    c = h->cfg;
    c.window_blocks = 256;
    assert_int_equal(ota_agent_init(agent, &c), OTA_ERR_INVALID_ARG);
    c = h->cfg;
    c.rto_min_ms = 5000;
    c.rto_initial_ms = 1000;
    assert_int_equal(ota_agent_init(agent, &c), OTA_ERR_INVALID_ARG);
    c = h->cfg;
    pal->pal.block_align = 256;
    c.block_size = 1000;
    assert_int_equal(ota_agent_init(agent, &c), OTA_ERR_INVALID_ARG);
    pal->pal.block_align = 1;
    /* The progress store: all of it or none of it. */
    c = h->cfg;
    {
        const ota_pal_t whole = pal->pal;
        pal->pal.progress_load = NULL;
        assert_int_equal(ota_agent_init(agent, &c), OTA_ERR_INVALID_ARG);
        pal->pal = whole;
        pal->pal.resume_file = NULL;
        assert_int_equal(ota_agent_init(agent, &c), OTA_ERR_INVALID_ARG);
        pal->pal = whole;
        pal->pal.progress_capacity = 0;
        assert_int_equal(ota_agent_init(agent, &c), OTA_ERR_INVALID_ARG);
        pal->pal.progress_save = NULL;
        pal->pal.progress_load = NULL;
        pal->pal.progress_clear = NULL;
        pal->pal.resume_file = NULL;
        assert_int_equal(ota_agent_init(agent, &c), OTA_OK);
        pal->pal = whole;
    }
    /* A caller built with another configuration (other struct sizes): refused before
     * anything is written. */
    memset(agent, 0xa5, sizeof *agent);
    assert_int_equal(ota_agent_init_sized(agent, &c, sizeof *agent - 8u, sizeof c),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_agent_init_sized(agent, &c, sizeof *agent, sizeof c + 4u),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(((const uint8_t *)agent)[0], 0xa5);
    assert_int_equal(((const uint8_t *)agent)[sizeof *agent - 1u], 0xa5);
    assert_int_equal(ota_agent_init_sized(agent, &c, sizeof *agent, sizeof c), OTA_OK);

    /* Calls on a NULL agent and in the wrong state. */
    assert_int_equal(ota_agent_start(NULL, 0), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_agent_poll(NULL, 0), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_agent_handle_message(NULL, "t", 1, NULL, 0, 0), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_agent_handle_message(&h->agent, NULL, 1, NULL, 0, 0), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_agent_self_test_result(&h->agent, 1, 0), OTA_ERR_WRONG_STATE);
    assert_int_equal(ota_agent_suspend(&h->agent), OTA_ERR_WRONG_STATE);
    assert_int_equal(ota_agent_resume(&h->agent, 0), OTA_ERR_WRONG_STATE);
    assert_int_equal(ota_agent_check_for_update(&h->agent, 0), OTA_ERR_WRONG_STATE);
    assert_int_equal(ota_agent_reconnected(&h->agent, 0), OTA_ERR_WRONG_STATE);
    assert_int_equal(ota_agent_get_state(NULL), OTA_AGENT_STOPPED);
    assert_string_equal(ota_agent_state_str(OTA_AGENT_DOWNLOADING), "downloading");
    assert_string_equal(ota_agent_state_str((ota_agent_state_t)99), "unknown");
    h_free(h);
    free(agent);
    free(pal);
}

/* ---- start, subscriptions, $next/get ---- */

static void test_start_subscribes_and_asks(void **state)
{
    fixture_t *fx = fixture_new(1000, NULL);
    (void)state;
    start(fx);
    assert_int_equal(fx->h->nsubs, 3);
    assert_true(h_subscribed(fx->h, "jobs/notify-next"));
    assert_true(h_subscribed(fx->h, "jobs/$next/get/accepted"));
    assert_true(h_subscribed(fx->h, "jobs/$next/get/rejected"));
    assert_int_equal(fx->h->n_to_service, 1);
    assert_string_equal(fx->h->to_service[0].topic, "$aws/things/dev-1/jobs/$next/get");
    assert_string_equal((char *)fx->h->to_service[0].payload, "{\"clientToken\":\"otter\"}");
    assert_int_equal(fx->h->to_service[0].qos, 1);
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_WAITING_JOB);
    assert_int_equal(ota_agent_start(&fx->h->agent, 0), OTA_ERR_WRONG_STATE);
    /* Nothing pending: the agent waits quietly. */
    assert_false(h_run(fx->h, 2000, 100, h_stop_outcome));
    assert_int_equal(fx->h->nstatus, 0);
    assert_int_equal(ota_agent_stop(&fx->h->agent), OTA_OK);
    assert_int_equal(fx->h->nsubs, 0);
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_STOPPED);
    fixture_free(fx);
}

static void test_start_fails_cleanly_when_mqtt_fails(void **state)
{
    fixture_t *fx = fixture_new(1000, NULL);
    (void)state;
    fx->h->subscribe_fail = 1;
    assert_int_equal(ota_agent_start(&fx->h->agent, 0), OTA_ERR_MQTT);
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_STOPPED);
    fx->h->subscribe_fail = 0;
    fx->h->publish_fail = 1;
    assert_int_equal(ota_agent_start(&fx->h->agent, 0), OTA_ERR_MQTT);
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_STOPPED);
    assert_int_equal(fx->h->nsubs, 0);
    fixture_free(fx);
}

/* ---- the whole update: download, ready, activate, self-test, SUCCEEDED ---- */

static void test_full_update_exact_payloads(void **state)
{
    fixture_t *fx = fixture_new(10000, NULL);
    (void)state;
    set_job(fx, "job-1");
    start(fx);
    h_serve(fx->h); /* $next/get -> accepted (queued for delivery) */
    /* Deliver the document and look at the first block request. */
    assert_false(h_run(fx->h, 0, 10, NULL) && 0);
    assert_true(h_subscribed(fx->h, "jobs/job-1/update/rejected"));
    assert_int_equal(fx->pal.creates, 1);
    assert_int_equal(fx->h->job_received_calls, 1);
    assert_true(file_matches(fx) || fx->h->requests >= 1);
    assert_true(h_run(fx->h, 10000, 10, h_stop_activating));
    assert_true(file_matches(fx));
    /* 10 000 bytes at 4 KiB: 3 blocks, one request with bitmap 07 and n = 3. */
    {
        static const uint8_t expect[] = {0xa6, 0x61, 0x63, 0x65, 'o',  't',  't',  'e',  'r',
                                         0x61, 0x66, 0x00, 0x61, 0x6c, 0x19, 0x10, 0x00, 0x61,
                                         0x6f, 0x00, 0x61, 0x62, 0x41, 0x07, 0x61, 0x6e, 0x03};
        assert_int_equal(fx->h->requests, 1);
        assert_int_equal(fx->h->last_request_len, sizeof expect);
        assert_memory_equal(fx->h->last_request, expect, sizeof expect);
    }
    assert_false(h_subscribed(fx->h, "streams/" STREAM "/data/cbor"));
    assert_string_equal(fx->h->status[0],
                        "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"receive\":\"1/3\"}}");
    assert_int_equal(fx->h->status_qos[0], 0);
    assert_string_equal(h_last_status(fx->h),
                        "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"self_test\":\"ready\","
                        "\"updatedBy\":\"0x01000000\"}}");
    assert_int_equal(fx->h->status_qos[fx->h->nstatus - 1u], 1);
    assert_int_equal(fx->h->activate_calls, 0);
    assert_int_equal(fx->h->verified_calls, 1);
    /* The complete checkpoint stays until the new image is committed or rejected. */
    assert_int_not_equal(fx->pal.progress_len, -1);
    assert_int_equal(fx->pal.activates, 0);
    /* The reset delay lets the status go out first, and the service names the job again. */
    h_run(fx->h, 0, 10, NULL);
    fx->h->now += 600;
    assert_int_equal(ota_agent_poll(&fx->h->agent, fx->h->now), OTA_OK);
    assert_int_equal(fx->h->activate_calls, 1);
    assert_int_equal(fx->pal.activates, 1);
    assert_int_equal(fx->pal.resets, 1);
    assert_int_equal(fx->pal.last_state, OTA_IMAGE_STATE_TESTING);
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_RESETTING);

    /* The new image boots pending commit; the service holds the ready status. */
    boot_new_image(fx, V1_1_0);
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_WAITING_SELF_TEST);
    assert_true(h_run(fx->h, 5000, 10, h_stop_self_test));
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_SELF_TEST);
    assert_int_equal(fx->h->self_test_calls, 1);
    assert_string_equal(h_last_status(fx->h),
                        "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"self_test\":\"active\","
                        "\"updatedBy\":\"0x01010000\"}}");
    /* The same job again (a duplicate notify-next) does not restart the test. */
    h_set_job(fx->h, "job-1", STREAM, fx->file, fx->size, fx->sig, sizeof fx->sig, "IN_PROGRESS",
              "{\"self_test\":\"active\",\"updatedBy\":\"0x01010000\"}");
    h_notify_next(fx->h);
    assert_int_equal(fx->h->self_test_calls, 1);
    assert_int_equal(ota_agent_self_test_result(&fx->h->agent, 1, fx->h->now), OTA_OK);
    assert_string_equal(h_last_status(fx->h),
                        "{\"status\":\"SUCCEEDED\",\"statusDetails\":{\"reason\":\"accepted  "
                        "v1.1.0\",\"updatedBy\":\"  v1.0.0\"}}");
    assert_int_equal(fx->pal.last_state, OTA_IMAGE_STATE_ACCEPTED);
    assert_int_equal(fx->pal.image_state, OTA_PAL_IMAGE_STATE_VALID);
    assert_int_equal(fx->pal.progress_len, -1);
    assert_int_equal(fx->h->outcomes, 1);
    assert_int_equal(fx->h->outcome.status, OTA_OUTCOME_SUCCEEDED);
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_WAITING_JOB);
    /* The job's update/rejected stays for one retry timer (a throttled final
     * update would be sent again), then goes. */
    assert_true(h_subscribed(fx->h, "jobs/job-1/update/rejected"));
    h_run(fx->h, 2100, 10, NULL);
    assert_false(h_subscribed(fx->h, "jobs/job-1/update/rejected"));
    fixture_free(fx);
}

static void test_late_copy_after_success_is_ignored(void **state)
{
    fixture_t *fx = fixture_new(5000, NULL);
    size_t statuses;
    (void)state;
    boot_new_image(fx, V1_1_0);
    assert_true(h_run(fx->h, 5000, 10, h_stop_self_test));
    assert_int_equal(ota_agent_self_test_result(&fx->h->agent, 1, fx->h->now), OTA_OK);
    assert_non_null(strstr(h_last_status(fx->h), "SUCCEEDED"));
    statuses = fx->h->nstatus;
    /* The service repeats the execution (still marked self_test) on notify-next. */
    h_set_job(fx->h, "job-1", STREAM, fx->file, fx->size, fx->sig, sizeof fx->sig, "IN_PROGRESS",
              "{\"self_test\":\"active\",\"updatedBy\":\"0x01010000\"}");
    h_notify_next(fx->h);
    h_run(fx->h, 100, 10, NULL);
    assert_int_equal(fx->h->nstatus, statuses);
    assert_int_equal(fx->h->outcomes, 1);
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_WAITING_JOB);
    fixture_free(fx);
}

static void test_self_test_failure_reverts(void **state)
{
    fixture_t *fx = fixture_new(5000, NULL);
    (void)state;
    boot_new_image(fx, V1_1_0);
    assert_true(h_run(fx->h, 5000, 10, h_stop_self_test));
    assert_int_equal(ota_agent_self_test_result(&fx->h->agent, 0, fx->h->now), OTA_OK);
    assert_string_equal(h_last_status(fx->h),
                        "{\"status\":\"FAILED\",\"statusDetails\":{\"reason\":\"rejected: "
                        "0x00000100\",\"detail\":\"the new image failed its self-test\"}}");
    assert_int_equal(fx->pal.last_state, OTA_IMAGE_STATE_REJECTED);
    assert_int_equal(fx->h->outcome.status, OTA_OUTCOME_FAILED);
    assert_int_equal(fx->h->outcome.err, OTA_ERR_SELF_TEST_FAILED);
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_RESETTING);
    assert_int_equal(fx->pal.resets, 0);
    assert_int_equal(ota_agent_self_test_result(&fx->h->agent, 1, fx->h->now), OTA_ERR_WRONG_STATE);
    fx->h->now += 600;
    ota_agent_poll(&fx->h->agent, fx->h->now);
    assert_int_equal(fx->pal.resets, 1);
    fixture_free(fx);
}

static void test_commit_failure_reverts(void **state)
{
    fixture_t *fx = fixture_new(5000, NULL);
    (void)state;
    fx->pal.image_state = OTA_PAL_IMAGE_STATE_PENDING_COMMIT;
    fx->pal.fail_accept = OTA_ERR_COMMIT_FAILED;
    h_reboot(fx->h, &fx->pal.pal, V1_1_0);
    h_set_job(fx->h, "job-1", STREAM, fx->file, fx->size, fx->sig, sizeof fx->sig, "IN_PROGRESS",
              "{\"self_test\":\"ready\",\"updatedBy\":\"0x01000000\"}");
    start(fx);
    assert_true(h_run(fx->h, 5000, 10, h_stop_self_test));
    assert_int_equal(ota_agent_self_test_result(&fx->h->agent, 1, fx->h->now),
                     OTA_ERR_COMMIT_FAILED);
    assert_non_null(strstr(h_last_status(fx->h), "\"status\":\"FAILED\""));
    assert_non_null(strstr(h_last_status(fx->h), "rejected: 0x000000eb"));
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_RESETTING);
    fixture_free(fx);
}

static void test_self_test_timeout_reverts(void **state)
{
    fixture_t *fx = fixture_new(5000, NULL);
    (void)state;
    boot_new_image(fx, V1_1_0);
    assert_true(h_run(fx->h, 5000, 10, h_stop_self_test));
    /* The application never answers. */
    assert_true(h_run(fx->h, 20000, 100, h_stop_outcome));
    assert_non_null(strstr(h_last_status(fx->h), "self-test gave no verdict in time"));
    assert_int_equal(fx->pal.last_state, OTA_IMAGE_STATE_REJECTED);
    h_run(fx->h, 1000, 100, NULL);
    assert_int_equal(fx->pal.resets, 1);
    fixture_free(fx);
}

static void test_no_self_test_job_resets(void **state)
{
    fixture_t *fx = fixture_new(5000, NULL);
    (void)state;
    fx->pal.image_state = OTA_PAL_IMAGE_STATE_PENDING_COMMIT;
    h_reboot(fx->h, &fx->pal.pal, V1_1_0);
    fx->h->policy.jobs_silent = 1; /* the service does not answer */
    start(fx);
    h_run(fx->h, 15000, 100, NULL);
    assert_int_equal(fx->pal.resets, 0);
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_WAITING_SELF_TEST);
    h_run(fx->h, 2000, 100, NULL);
    assert_int_equal(fx->pal.last_state, OTA_IMAGE_STATE_REJECTED);
    assert_int_equal(fx->pal.resets, 1);
    assert_int_equal(fx->h->nstatus, 0); /* no job to report to */
    fixture_free(fx);
}

static void check_version_rejected(uint32_t running, const char *detail)
{
    fixture_t *fx = fixture_new(5000, NULL);
    boot_new_image(fx, running);
    assert_true(h_run(fx->h, 5000, 10, h_stop_outcome));
    assert_non_null(strstr(h_last_status(fx->h), "\"status\":\"FAILED\""));
    assert_non_null(strstr(h_last_status(fx->h), "\"reason\":\"rejected: 0x00000101\""));
    assert_non_null(strstr(h_last_status(fx->h), detail));
    assert_int_equal(fx->h->self_test_calls, 0);
    assert_int_equal(fx->pal.last_state, OTA_IMAGE_STATE_REJECTED);
    h_run(fx->h, 1000, 100, NULL);
    assert_int_equal(fx->pal.resets, 1);
    fixture_free(fx);
}

static void test_same_version_rejected(void **state)
{
    (void)state;
    check_version_rejected(V1_0_0, "same version");
}

static void test_downgrade_rejected(void **state)
{
    (void)state;
    check_version_rejected(V0_9_0, "downgrade");
}

static void test_reverted_image_reports_failure(void **state)
{
    fixture_t *fx = fixture_new(5000, NULL);
    (void)state;
    /* The bootloader reverted (or the new image never started): the old image runs, VALID. */
    h_reboot(fx->h, &fx->pal.pal, V1_0_0);
    h_set_job(fx->h, "job-1", STREAM, fx->file, fx->size, fx->sig, sizeof fx->sig, "IN_PROGRESS",
              "{\"self_test\":\"ready\",\"updatedBy\":\"0x01000000\"}");
    start(fx);
    assert_true(h_run(fx->h, 5000, 10, h_stop_outcome));
    assert_non_null(strstr(h_last_status(fx->h), "\"status\":\"FAILED\""));
    assert_non_null(strstr(h_last_status(fx->h), "new image did not run; old one runs"));
    assert_int_equal(fx->pal.resets, 0);
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_WAITING_JOB);
    fixture_free(fx);
}

static void test_cut_before_activation_finishes_it(void **state)
{
    fixture_t *fx = fixture_new(10000, NULL);
    (void)state;
    download_to_activation(fx);
    /* Power fails after "ready" went out, before activation: the old image
     * boots, the service holds "ready", the checkpoint is complete. */
    fx->pal.open = 0;
    h_reboot(fx->h, &fx->pal.pal, V1_0_0);
    h_set_job(fx->h, "job-1", STREAM, fx->file, fx->size, fx->sig, sizeof fx->sig, "IN_PROGRESS",
              "{\"self_test\":\"ready\",\"updatedBy\":\"0x01000000\"}");
    fx->h->blocks_requested = 0;
    start(fx);
    assert_true(h_run(fx->h, 5000, 10, h_stop_activating));
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_ACTIVATING);
    assert_int_equal(fx->h->blocks_requested, 0);
    assert_int_equal(fx->pal.resumes, 1);
    assert_int_equal(fx->pal.closes, 2);
    h_run(fx->h, 1000, 100, NULL);
    assert_int_equal(fx->pal.activates, 1);
    fixture_free(fx);
}

static void test_reboot_after_activation_into_old_image_fails(void **state)
{
    fixture_t *fx = fixture_new(10000, NULL);
    (void)state;
    download_to_activation(fx);
    h_run(fx->h, 1000, 100, NULL);
    assert_int_equal(fx->pal.activates, 1);
    /* The new image crashed and the bootloader reverted: the old image runs. */
    h_reboot(fx->h, &fx->pal.pal, V1_0_0);
    h_set_job(fx->h, "job-1", STREAM, fx->file, fx->size, fx->sig, sizeof fx->sig, "IN_PROGRESS",
              "{\"self_test\":\"ready\",\"updatedBy\":\"0x01000000\"}");
    start(fx);
    assert_true(h_run(fx->h, 5000, 10, h_stop_outcome));
    assert_non_null(strstr(h_last_status(fx->h), "new image did not run; old one runs"));
    assert_int_equal(fx->pal.activates, 1);
    assert_int_equal(fx->pal.progress_len, -1);
    fixture_free(fx);
}

/* ---- documents the agent cannot use ---- */

static void check_bad_document(const char *execution, const char *detail, const char *reason)
{
    fixture_t *fx = fixture_new(5000, NULL);
    h_set_execution(fx->h, execution);
    start(fx);
    assert_true(h_run(fx->h, 5000, 10, h_stop_outcome));
    assert_int_equal(fx->h->nstatus, 1);
    assert_non_null(strstr(fx->h->status[0], "{\"status\":\"FAILED\",\"statusDetails\":{"));
    assert_non_null(strstr(fx->h->status[0], reason));
    assert_non_null(strstr(fx->h->status[0], detail));
    assert_int_equal(fx->h->outcome.status, OTA_OUTCOME_FAILED);
    assert_int_equal(fx->pal.creates, 0);
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_WAITING_JOB);
    h_run(fx->h, 2100, 10, NULL); /* the retry timer a throttled FAILED would need */
    assert_int_equal(fx->h->nstatus, 1);
    assert_false(h_subscribed(fx->h, "jobs/job-9/update/rejected"));
    fixture_free(fx);
}

#define EXEC_HEAD "{\"jobId\":\"job-9\",\"status\":\"QUEUED\",\"jobDocument\":"
#define FILE_OK                                                                                    \
    "\"filepath\":\"f\",\"fileid\":0,\"certfile\":\"c\",\"sig-sha256-ecdsa\":\"AAECAwQFBgc=\""

static void test_bad_documents_are_reported(void **state)
{
    (void)state;
    check_bad_document(EXEC_HEAD "{\"afr_ota\":{\"protocols\":[\"MQTT\"],\"streamname\":\"s\","
                                 "\"files\":[{" FILE_OK "}]}}}",
                       "missing field (filesize)", "rejected: 0x000000f9");
    check_bad_document(EXEC_HEAD "{\"afr_ota\":{\"protocols\":[\"MQTT\"],\"streamname\":\"s\","
                                 "\"files\":[{\"filesize\":0," FILE_OK "}]}}}",
                       "filesize", "rejected: 0x000000f9");
    check_bad_document(EXEC_HEAD "{\"afr_ota\":{\"protocols\":[\"MQTT\"],\"streamname\":\"s\","
                                 "\"files\":[{\"filesize\":10,\"filepath\":\"f\",\"fileid\":0,"
                                 "\"sig-sha1-rsa\":\"AAECAwQFBgc=\"}]}}}",
                       "job document: unknown signature method", "rejected: 0x000000fa");
    if (!OTA_SIG_RSA) {
        check_bad_document(EXEC_HEAD "{\"afr_ota\":{\"protocols\":[\"MQTT\"],\"streamname\":\"s\","
                                     "\"files\":[{\"filesize\":10,\"filepath\":\"f\",\"fileid\":0,"
                                     "\"sig-sha256-rsa\":\"AAECAwQFBgc=\"}]}}}",
                           "job document: signature method not enabled (sig-sha256-rsa)",
                           "rejected: 0x000000fa");
    }
    check_bad_document(EXEC_HEAD "{\"afr_ota\":{\"protocols\":[\"HTTP\"],\"streamname\":\"s\","
                                 "\"files\":[{\"filesize\":10," FILE_OK "}]}}}",
                       "job document:", "rejected: 0x000000fa");
    check_bad_document(EXEC_HEAD "{\"not_ota\":1}}", "job document:", "rejected: 0x000000f9");
    check_bad_document(EXEC_HEAD "{\"afr_ota\":{\"protocols\":[\"MQTT\"],\"streamname\":\"s\","
                                 "\"files\":[{\"filesize\":\"zz\"," FILE_OK "}]}}}",
                       "filesize", "rejected: 0x000000f9");
}

static void test_file_too_large_is_reported(void **state)
{
    fixture_t *fx = fixture_new(5000, NULL);
    (void)state;
    fx->pal.pal.max_file_size = 4096;
    set_job(fx, "job-1");
    start(fx);
    assert_true(h_run(fx->h, 5000, 10, h_stop_outcome));
    assert_non_null(strstr(h_last_status(fx->h), "rejected: 0x000000e5"));
    assert_non_null(strstr(h_last_status(fx->h), "file too large for the slot"));
    assert_int_equal(fx->pal.creates, 0);
    fixture_free(fx);
}

/* Puts "otterDeviceTypes": types into the current job's file entry. */
static void add_device_types(fixture_t *fx, const char *types)
{
    char *sig = strstr(fx->h->execution, "\"sig-sha256-ecdsa\"");
    char tail[sizeof fx->h->execution];
    assert_non_null(sig);
    snprintf(tail, sizeof tail, "%s", sig);
    snprintf(sig, sizeof fx->h->execution - (size_t)(sig - fx->h->execution),
             "\"otterDeviceTypes\":%s,%s", types, tail);
}

static void test_other_device_type_refused_before_download(void **state)
{
    ota_agent_config_t cfg;
    char reason[40];
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.device_type = "sim-a";
    fixture_t *fx = fixture_new(5000, &cfg);
    set_job(fx, "job-1");
    add_device_types(fx, "[\"sim-b\",\"esp32\"]");
    start(fx);
    assert_true(h_run(fx->h, 5000, 10, h_stop_outcome));
    snprintf(reason, sizeof reason, "rejected: 0x%08x",
             (unsigned)ota_err_pal_code(OTA_ERR_WRONG_DEVICE_TYPE));
    assert_non_null(strstr(h_last_status(fx->h), "\"FAILED\""));
    assert_non_null(strstr(h_last_status(fx->h), reason));
    assert_non_null(strstr(h_last_status(fx->h), "the job is for other device types"));
    assert_int_equal(fx->h->outcome.status, OTA_OUTCOME_FAILED);
    assert_int_equal(fx->pal.creates, 0);             /* no file */
    assert_int_equal(fx->h->agent.stats.requests, 0); /* no block asked for */
    fixture_free(fx);

    /* Its own type among them: the update runs. */
    fx = fixture_new(5000, &cfg);
    set_job(fx, "job-1");
    add_device_types(fx, "[\"sim-b\",\"sim-a\"]");
    start(fx);
    assert_true(h_run(fx->h, 60000, 10, h_stop_activating));
    assert_true(file_matches(fx));
    fixture_free(fx);

    /* A device without a configured type takes any job. */
    fx = fixture_new(5000, NULL);
    set_job(fx, "job-1");
    add_device_types(fx, "[\"sim-b\"]");
    start(fx);
    assert_true(h_run(fx->h, 60000, 10, h_stop_activating));

    /* A type that is no device type name is a configuration error. */
    static ota_agent_t agent;
    ota_agent_config_t other = fx->h->agent.cfg;
    other.device_type = "sim-a";
    assert_int_equal(ota_agent_init(&agent, &other), OTA_OK);
    assert_int_not_equal(agent.device_type_tag, 0);
    other.device_type = "sim a";
    assert_int_equal(ota_agent_init(&agent, &other), OTA_ERR_INVALID_ARG);
    other.device_type = "";
    assert_int_equal(ota_agent_init(&agent, &other), OTA_ERR_INVALID_ARG);
    fixture_free(fx);
}

static void test_unreadable_message_is_ignored(void **state)
{
    fixture_t *fx = fixture_new(5000, NULL);
    (void)state;
    start(fx);
    h_deliver(fx->h, "jobs/notify-next", "{not json", 9);
    h_deliver(fx->h, "jobs/notify-next", "", 0);
    h_deliver(fx->h, "jobs/notify-next", "{\"execution\":{\"status\":\"QUEUED\"}}", 34);
    assert_int_equal(fx->h->nstatus, 0);
    assert_int_equal(ota_agent_get_stats(&fx->h->agent)->bad_messages, 3);
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_WAITING_JOB);
    /* Topics of other things and unknown topics of ours are ignored. */
    assert_int_equal(ota_agent_handle_message(&fx->h->agent, "$aws/things/dev-2/jobs/notify-next",
                                              34, (const uint8_t *)"{}", 2, fx->h->now),
                     OTA_OK);
    h_deliver(fx->h, "jobs/unknown", "{}", 2);
    assert_int_equal(fx->h->nstatus, 0);
    fixture_free(fx);
}

/* ---- downloads ---- */

static void test_pipelined_window(void **state)
{
    ota_agent_config_t cfg;
    fixture_t *fx;
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.window_blocks = 8;
    cfg.block_size = 1024;
    fx = fixture_new(40 * 1024, &cfg);
    fx->h->policy.delay_ms = 50;
    set_job(fx, "job-1");
    start(fx);
    /* Run until the first request is out. */
    while (fx->h->requests == 0u) {
        h_run(fx->h, 10, 10, NULL);
    }
    assert_int_equal(fx->h->blocks_requested, 8);
    assert_true(h_run(fx->h, 60000, 1, h_stop_activating));
    /* The second request left when half of the first window had arrived,
     * before the rest of it: the link never idles for a round trip. */
    assert_int_equal(fx->h->done_at_request[0], 0);
    assert_int_equal(fx->h->done_at_request[1], 4);
    assert_true(fx->h->done_at_request[2] < 12u);
    assert_true(file_matches(fx));
    assert_int_equal(fx->h->blocks_requested, 40);
    assert_int_equal(fx->pal.rewrites, 0);
    assert_true(fx->h->requests >= 6u && fx->h->requests <= 12u);
    fixture_free(fx);
}

/* A window larger than one request's 128 KiB is asked for in several requests. */
static void test_window_above_request_limit_is_split(void **state)
{
    ota_agent_config_t cfg;
    fixture_t *fx;
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.window_blocks = 16;
    cfg.block_size = 16384;
    fx = fixture_new(17 * 16384 + 100, &cfg);
    fx->h->policy.delay_ms = 50;
    set_job(fx, "job-1");
    start(fx);
    for (int i = 0; i < 100 && fx->h->requests == 0u; i++) {
        h_run(fx->h, 10, 10, NULL);
    }
    /* Both requests of the first window leave together, 8 blocks (128 KiB) each. */
    assert_int_equal(fx->h->requests, 2);
    assert_int_equal(fx->h->blocks_requested, 16);
    assert_int_equal(fx->h->max_request_bytes, 131072);
    assert_true(h_run(fx->h, 60000, 1, h_stop_activating));
    assert_true(file_matches(fx));
    assert_int_equal(fx->h->blocks_requested, 18);
    assert_true(fx->h->max_request_bytes <= 131072u);
    assert_int_equal(fx->pal.rewrites, 0);
    fixture_free(fx);
}

static void test_out_of_order_and_duplicates(void **state)
{
    ota_agent_config_t cfg;
    fixture_t *fx;
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.block_size = 1024;
    fx = fixture_new(50 * 1024 + 17, &cfg);
    fx->h->policy.reverse = 1;
    fx->h->policy.duplicate = 1;
    set_job(fx, "job-1");
    start(fx);
    assert_true(h_run(fx->h, 60000, 10, h_stop_activating));
    assert_true(file_matches(fx));
    assert_int_equal(fx->pal.rewrites, 0);
    /* The last block's twin arrives after the download ended and is not counted. */
    assert_int_equal(ota_agent_get_stats(&fx->h->agent)->blocks_duplicate, 50);
    assert_int_equal(ota_agent_get_stats(&fx->h->agent)->blocks_received, 51);
    fixture_free(fx);
}

static void test_bad_blocks_are_dropped(void **state)
{
    fixture_t *fx = fixture_new(10000, NULL);
    uint8_t msg[64];
    size_t n;
    (void)state;
    fx->h->policy.silent = 1;
    set_job(fx, "job-1");
    start(fx);
    h_run(fx->h, 10, 10, NULL);
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_DOWNLOADING);
    /* {"f":0,"i":2,"l":4,"p":h'01020304'}: block 2 must be 1808 bytes long. */
    {
        static const uint8_t wrong_len[] = {0xa4, 0x61, 'f', 0x00, 0x61, 'i', 0x02, 0x61, 'l',
                                            0x04, 0x61, 'p', 0x44, 1,    2,   3,    4};
        static const uint8_t wrong_file[] = {0xa4, 0x61, 'f', 0x01, 0x61, 'i', 0x02, 0x61, 'l',
                                             0x04, 0x61, 'p', 0x44, 1,    2,   3,    4};
        static const uint8_t beyond[] = {0xa4, 0x61, 'f', 0x00, 0x61, 'i', 0x03, 0x61, 'l',
                                         0x04, 0x61, 'p', 0x44, 1,    2,   3,    4};
        h_deliver(fx->h, "streams/" STREAM "/data/cbor", wrong_len, sizeof wrong_len);
        h_deliver(fx->h, "streams/" STREAM "/data/cbor", wrong_file, sizeof wrong_file);
        h_deliver(fx->h, "streams/" STREAM "/data/cbor", beyond, sizeof beyond);
        h_deliver(fx->h, "streams/" STREAM "/data/cbor", "\xff\xff", 2);
        /* A block for another stream is not ours. */
        h_deliver(fx->h, "streams/other/data/cbor", wrong_len, sizeof wrong_len);
    }
    n = 0;
    (void)msg;
    (void)n;
    assert_int_equal(ota_agent_get_stats(&fx->h->agent)->bad_messages, 4);
    assert_int_equal(fx->pal.writes, 0);
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_DOWNLOADING);
    fixture_free(fx);
}

static void test_retry_backoff_and_give_up(void **state)
{
    fixture_t *fx = fixture_new(10000, NULL);
    uint32_t t0;
    (void)state;
    fx->h->policy.silent = 1;
    set_job(fx, "job-1");
    start(fx);
    h_run(fx->h, 10, 10, NULL);
    assert_int_equal(fx->h->requests, 1);
    t0 = fx->h->now;
    /* Initial timeout 2 s, then 4, 8, 16, 30, 30 ... (bounded by rto_max). */
    h_run(fx->h, 2100, 10, NULL);
    assert_int_equal(fx->h->requests, 2);
    h_run(fx->h, 4000, 10, NULL);
    assert_int_equal(fx->h->requests, 3);
    assert_true(h_run(fx->h, 600000, 100, h_stop_outcome));
    assert_int_equal(fx->h->requests, 13); /* the first + 12 retries */
    assert_true(fx->h->now - t0 > 200000u);
    assert_string_equal(h_last_status(fx->h),
                        "{\"status\":\"FAILED\",\"statusDetails\":{\"reason\":\"aborted: "
                        "0x000000fc\",\"detail\":\"stream service stopped answering\"}}");
    assert_int_equal(fx->pal.aborts, 1);
    assert_int_equal(fx->pal.progress_len, -1);
    assert_false(h_subscribed(fx->h, "streams/" STREAM "/data/cbor"));
    fixture_free(fx);
}

static void test_link_down_does_not_give_up(void **state)
{
    fixture_t *fx = fixture_new(10000, NULL);
    (void)state;
    set_job(fx, "job-1");
    fx->h->policy.silent = 1;
    start(fx);
    h_run(fx->h, 10, 10, NULL);
    /* The connection is down for ten minutes: requests cannot even be sent. */
    fx->h->publish_fail = 1;
    h_run(fx->h, 600000, 100, NULL);
    assert_int_equal(fx->h->outcomes, 0);
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_DOWNLOADING);
    /* It returns; the download completes. */
    fx->h->publish_fail = 0;
    fx->h->policy.silent = 0;
    assert_int_equal(ota_agent_reconnected(&fx->h->agent, fx->h->now), OTA_OK);
    assert_true(h_run(fx->h, 60000, 10, h_stop_activating));
    assert_true(file_matches(fx));
    fixture_free(fx);
}

static void test_lost_blocks_are_fetched_again(void **state)
{
    ota_agent_config_t cfg;
    fixture_t *fx;
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.block_size = 512;
    fx = fixture_new(100 * 512, &cfg);
    fx->h->policy.drop_every = 7;
    fx->h->policy.delay_ms = 20;
    set_job(fx, "job-1");
    start(fx);
    assert_true(h_run(fx->h, 120000, 10, h_stop_activating));
    assert_true(file_matches(fx));
    assert_true(ota_agent_get_stats(&fx->h->agent)->timeouts >= 1u);
    assert_int_equal(fx->pal.rewrites, 0);
    fixture_free(fx);
}

static void test_timer_follows_round_trip(void **state)
{
    ota_agent_config_t cfg;
    fixture_t *fx;
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.block_size = 256;
    cfg.window_blocks = 4;
    cfg.rto_min_ms = 200; /* below the default floor (2 s), so the estimate shows */
    fx = fixture_new(200 * 256, &cfg);
    fx->h->policy.delay_ms = 300;
    set_job(fx, "job-1");
    start(fx);
    assert_true(h_run(fx->h, 120000, 10, h_stop_activating));
    assert_true(file_matches(fx));
    /* Round trips are about 300 ms: the timer settles near it, not at 2 s. */
    assert_true(fx->h->agent.stats.rtt_ms >= 250u && fx->h->agent.stats.rtt_ms <= 400u);
    assert_true(fx->h->agent.dl.rto >= 300u && fx->h->agent.dl.rto < 1500u);
    assert_int_equal(ota_agent_get_stats(&fx->h->agent)->timeouts, 0);
    fixture_free(fx);
}

static void test_stream_rejection_fails_at_once(void **state)
{
    fixture_t *fx = fixture_new(10000, NULL);
    (void)state;
    fx->h->policy.reject_code = "ResourceNotFound";
    set_job(fx, "job-1");
    start(fx);
    assert_true(h_run(fx->h, 1000, 10, h_stop_outcome));
    assert_string_equal(h_last_status(fx->h),
                        "{\"status\":\"FAILED\",\"statusDetails\":{\"reason\":\"0x000000fd: "
                        "0x00000000\",\"detail\":\"stream request refused: ResourceNotFound\"}}");
    assert_int_equal(fx->h->outcome.err, OTA_ERR_SERVICE_REJECTED);
    assert_int_equal(fx->pal.aborts, 1);
    assert_int_equal(fx->h->requests, 1);
    fixture_free(fx);
}

static void test_refusal_of_a_canceled_job_is_a_cancel(void **state)
{
    fixture_t *fx = fixture_new(10000, NULL);
    (void)state;
    fx->h->policy.reject_code = "Unauthorized";
    set_job(fx, "job-1");
    start(fx);
    h_serve(fx->h);
    /* The job is canceled just as the first request reaches the service. */
    h_set_execution(fx->h, "");
    assert_true(h_run(fx->h, 1000, 10, h_stop_outcome));
    assert_int_equal(fx->h->outcome.status, OTA_OUTCOME_CANCELED);
    assert_int_equal(fx->h->nstatus, 0); /* no FAILED for a canceled job */
    assert_int_equal(fx->pal.aborts, 1);
    fixture_free(fx);
}

static void test_refusal_without_answer_fails(void **state)
{
    fixture_t *fx = fixture_new(10000, NULL);
    (void)state;
    fx->h->policy.reject_code = "Unauthorized";
    set_job(fx, "job-1");
    start(fx);
    h_serve(fx->h);
    /* The Jobs API stops answering: after the wait, the refusal stands. */
    fx->h->policy.jobs_silent = 1;
    assert_true(h_run(fx->h, 10000, 10, h_stop_outcome));
    assert_int_equal(fx->h->outcome.status, OTA_OUTCOME_FAILED);
    assert_non_null(strstr(h_last_status(fx->h), "stream request refused: Unauthorized"));
    assert_true(fx->h->now >= 1000u + 2000u); /* it waited one request timeout */
    fixture_free(fx);
}

static void test_large_blocks_and_many_blocks(void **state)
{
    ota_agent_config_t cfg;
    fixture_t *fx;
    (void)state;
    /* 128 KiB blocks. */
    memset(&cfg, 0, sizeof cfg);
    cfg.block_size = 131072;
    fx = fixture_new(290000, &cfg);
    set_job(fx, "job-1");
    start(fx);
    assert_true(h_run(fx->h, 60000, 10, h_stop_activating));
    assert_true(file_matches(fx));
    assert_int_equal(fx->h->requests, 3);
    fixture_free(fx);
    /* More than 1024 blocks (AWS's cap): 1133 blocks of 256 bytes. */
    memset(&cfg, 0, sizeof cfg);
    cfg.block_size = 256;
    fx = fixture_new(290000, &cfg);
    set_job(fx, "job-1");
    start(fx);
    assert_true(h_run(fx->h, 600000, 10, h_stop_activating));
    assert_true(file_matches(fx));
    assert_int_equal(ota_agent_get_stats(&fx->h->agent)->blocks_received, 1133);
    /* Progress went out for the first block and every 64 after (not every
     * 1133/8 + 1: the configured interval is the longest). */
    assert_string_equal(fx->h->status[0],
                        "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"receive\":\"1/1133\"}}");
    assert_true(h_has_status(
        fx->h, "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"receive\":\"65/1133\"}}"));
    assert_false(h_has_status(
        fx->h, "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"receive\":\"64/1133\"}}"));
    fixture_free(fx);
}

/* At the default interval a small file still shows its progress: the first
 * block, then every 17/8 + 1 = 3 blocks, then the last. */
static void test_progress_small_file_default_interval(void **state)
{
    ota_agent_config_t cfg;
    fixture_t *fx;
    char want[96];
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.block_size = 256;
    fx = fixture_new(16 * 256 + 100, &cfg);
    set_job(fx, "job-1");
    start(fx);
    assert_true(h_run(fx->h, 600000, 10, h_stop_activating));
    assert_true(file_matches(fx));
    for (unsigned n = 1; n <= 17; n++) {
        snprintf(want, sizeof want,
                 "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"receive\":\"%u/17\"}}", n);
        assert_int_equal(h_has_status(fx->h, want), n % 3 == 1 || n == 17);
    }
    fixture_free(fx);
}

static void test_data_file_skips_activation(void **state)
{
    fixture_t *fx = fixture_new(3000, NULL);
    char exec[2048];
    char b64[64];
    (void)state;
    h_base64(fx->sig, sizeof fx->sig, b64, sizeof b64);
    snprintf(exec, sizeof exec,
             "{\"jobId\":\"data-1\",\"status\":\"QUEUED\",\"jobDocument\":{\"afr_ota\":{"
             "\"protocols\":[\"MQTT\"],\"streamname\":\"s1\",\"files\":[{\"filepath\":\"cfg.bin\","
             "\"filesize\":3000,\"fileid\":0,\"fileType\":7,\"certfile\":null,"
             "\"sig-sha256-ecdsa\":\"%s\"}]}}}",
             b64);
    h_set_execution(fx->h, exec);
    fx->h->file = fx->file;
    fx->h->file_size = fx->size;
    start(fx);
    assert_true(h_run(fx->h, 5000, 10, h_stop_outcome));
    assert_string_equal(h_last_status(fx->h),
                        "{\"status\":\"SUCCEEDED\",\"statusDetails\":{\"reason\":\"accepted\"}}");
    assert_int_equal(fx->pal.activates, 0);
    assert_int_equal(fx->h->activate_calls, 0);
    assert_true(file_matches(fx));
    fixture_free(fx);
}

/* ---- port failures ---- */

static void test_port_failures_are_reported(void **state)
{
    fixture_t *fx;
    (void)state;
    /* create_file fails */
    fx = fixture_new(10000, NULL);
    fx->pal.fail_create = OTA_ERR_RX_FILE_CREATE_FAILED;
    set_job(fx, "job-1");
    start(fx);
    assert_true(h_run(fx->h, 1000, 10, h_stop_outcome));
    assert_non_null(strstr(h_last_status(fx->h), "\"reason\":\"aborted: 0x000000e4\""));
    fixture_free(fx);
    /* write_block fails on block 1 */
    fx = fixture_new(10000, NULL);
    fx->pal.fail_write_at = 4096;
    set_job(fx, "job-1");
    start(fx);
    assert_true(h_run(fx->h, 1000, 10, h_stop_outcome));
    assert_non_null(strstr(h_last_status(fx->h), "\"reason\":\"0x000000f1: 0x00000001\""));
    assert_int_equal(fx->pal.aborts, 1);
    fixture_free(fx);
    /* the signature does not verify */
    fx = fixture_new(10000, NULL);
    fx->sig[0] ^= 1u;
    set_job(fx, "job-1");
    start(fx);
    assert_true(h_run(fx->h, 1000, 10, h_stop_outcome));
    assert_string_equal(h_last_status(fx->h),
                        "{\"status\":\"FAILED\",\"statusDetails\":{\"reason\":\"0x000000e3: "
                        "0x00000000\",\"detail\":\"signature check failed\"}}");
    assert_int_equal(fx->pal.last_state, OTA_IMAGE_STATE_REJECTED);
    assert_int_equal(fx->pal.activates, 0);
    fixture_free(fx);
    /* activation fails */
    fx = fixture_new(10000, NULL);
    fx->pal.fail_activate = OTA_ERR_ACTIVATE_FAILED;
    download_to_activation(fx);
    assert_true(h_run(fx->h, 1000, 10, h_stop_outcome));
    assert_non_null(strstr(h_last_status(fx->h), "\"reason\":\"0x000000ec: 0x00000000\""));
    assert_int_equal(fx->pal.resets, 0);
    fixture_free(fx);
}

/* ---- the same job again, cancel, another job ---- */

static void test_same_job_continues(void **state)
{
    fixture_t *fx = download_partly(60, 20);
    (void)state;
    /* The document again (as AWS sends on every $next/get or notify-next). */
    h_set_job(fx->h, "job-1", STREAM, fx->file, fx->size, fx->sig, sizeof fx->sig, "IN_PROGRESS",
              "{\"receive\":\"1/60\"}");
    h_notify_next(fx->h);
    assert_int_equal(ota_agent_check_for_update(&fx->h->agent, fx->h->now), OTA_OK);
    assert_true(h_run(fx->h, 60000, 10, h_stop_activating));
    assert_int_equal(fx->pal.creates, 1);
    assert_int_equal(fx->h->blocks_requested, 60);
    assert_int_equal(fx->pal.rewrites, 0);
    assert_true(file_matches(fx));
    fixture_free(fx);
}

static void test_cancel_then_new_job(void **state)
{
    fixture_t *fx = download_partly(60, 10);
    (void)state;
    assert_int_not_equal(fx->pal.progress_len, -1);
    /* Canceled in the service: notify-next names no job. */
    h_set_execution(fx->h, "");
    h_notify_next(fx->h);
    assert_int_equal(fx->h->outcome.status, OTA_OUTCOME_CANCELED);
    assert_string_equal(fx->h->outcome_job, "job-1");
    assert_int_equal(fx->pal.aborts, 1);
    assert_int_equal(fx->pal.progress_len, -1);
    assert_false(h_subscribed(fx->h, "streams/" STREAM "/data/cbor"));
    assert_false(h_subscribed(fx->h, "jobs/job-1/update/rejected"));
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_WAITING_JOB);
    {
        size_t statuses = fx->h->nstatus;
        /* Late blocks of the canceled job change nothing. */
        h_run(fx->h, 500, 10, NULL);
        assert_int_equal(fx->h->nstatus, statuses);
    }
    /* The next job starts normally. */
    h_set_job(fx->h, "job-2", "AFR_OTA-2", fx->file, fx->size, fx->sig, sizeof fx->sig, "QUEUED",
              NULL);
    fx->h->outcomes = 0;
    h_notify_next(fx->h);
    assert_true(h_run(fx->h, 60000, 10, h_stop_activating));
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_ACTIVATING);
    assert_int_equal(fx->pal.creates, 2);
    assert_true(file_matches(fx));
    assert_non_null(strstr(h_last_status(fx->h), "self_test"));
    fixture_free(fx);
}

static void test_another_job_replaces_current(void **state)
{
    fixture_t *fx = download_partly(60, 10);
    (void)state;
    h_set_job(fx->h, "job-2", "AFR_OTA-2", fx->file, fx->size, fx->sig, sizeof fx->sig, "QUEUED",
              NULL);
    h_notify_next(fx->h);
    assert_int_equal(fx->h->outcomes, 1);
    assert_int_equal(fx->h->outcome.status, OTA_OUTCOME_CANCELED);
    assert_true(h_subscribed(fx->h, "streams/AFR_OTA-2/data/cbor"));
    assert_false(h_subscribed(fx->h, "streams/" STREAM "/data/cbor"));
    fx->h->outcomes = 0;
    assert_true(h_run(fx->h, 60000, 10, h_stop_activating));
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_ACTIVATING);
    assert_true(file_matches(fx));
    fixture_free(fx);
}

static void test_terminal_status_of_current_job_abandons(void **state)
{
    fixture_t *fx = fixture_new(10000, NULL);
    (void)state;
    fx->h->policy.silent = 1;
    set_job(fx, "job-1");
    start(fx);
    h_run(fx->h, 10, 10, NULL);
    h_set_job(fx->h, "job-1", STREAM, fx->file, fx->size, fx->sig, sizeof fx->sig, "CANCELED",
              NULL);
    h_notify_next(fx->h);
    assert_int_equal(fx->h->outcome.status, OTA_OUTCOME_CANCELED);
    assert_int_equal(fx->pal.aborts, 1);
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_WAITING_JOB);
    fixture_free(fx);
}

static void test_cancel_after_stop_start_abandons(void **state)
{
    fixture_t *fx = download_partly(40, 10);
    (void)state;
    assert_int_equal(ota_agent_stop(&fx->h->agent), OTA_OK);
    h_drop_in_flight(fx->h);
    /* Canceled meanwhile: the service answers with the job in a terminal status. */
    h_set_job(fx->h, "job-1", STREAM, fx->file, fx->size, fx->sig, sizeof fx->sig, "CANCELED",
              NULL);
    start(fx);
    h_run(fx->h, 100, 10, NULL);
    assert_int_equal(fx->h->outcome.status, OTA_OUTCOME_CANCELED);
    assert_int_equal(fx->pal.aborts, 1);
    assert_int_equal(fx->pal.progress_len, -1);
    fixture_free(fx);
}

static void test_other_job_during_self_test_waits(void **state)
{
    fixture_t *fx = fixture_new(5000, NULL);
    (void)state;
    boot_new_image(fx, V1_1_0);
    assert_true(h_run(fx->h, 5000, 10, h_stop_self_test));
    /* Another job (usable, then unusable) while the test runs: the test goes on. */
    h_set_job(fx->h, "job-2", "AFR_OTA-2", fx->file, fx->size, fx->sig, sizeof fx->sig, "QUEUED",
              NULL);
    h_notify_next(fx->h);
    h_set_execution(fx->h, EXEC_HEAD "{\"not_ota\":1}}");
    h_notify_next(fx->h);
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_SELF_TEST);
    assert_int_equal(fx->h->outcomes, 0);
    assert_int_equal(ota_agent_self_test_result(&fx->h->agent, 1, fx->h->now), OTA_OK);
    assert_non_null(strstr(h_last_status(fx->h), "\"status\":\"SUCCEEDED\""));
    assert_string_equal(fx->h->outcome_job, "job-1");
    fixture_free(fx);
}

static void test_update_rejected_message_text_is_not_a_code(void **state)
{
    fixture_t *fx = fixture_new(10000, NULL);
    (void)state;
    fx->h->policy.silent = 1;
    set_job(fx, "job-1");
    start(fx);
    h_run(fx->h, 10, 10, NULL);
    h_deliver(fx->h, "jobs/job-1/update/rejected",
              "{\"code\":\"InvalidRequest\",\"message\":\"not ResourceNotFound\"}", 58);
    assert_int_equal(fx->h->outcomes, 0);
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_DOWNLOADING);
    fixture_free(fx);
}

static void test_update_rejected_terminal_abandons(void **state)
{
    fixture_t *fx = fixture_new(10000, NULL);
    (void)state;
    fx->h->policy.silent = 1;
    set_job(fx, "job-1");
    start(fx);
    h_run(fx->h, 10, 10, NULL);
    h_deliver(fx->h, "jobs/job-1/update/rejected",
              "{\"code\":\"TerminalStateReached\",\"message\":\"canceled\"}", 52);
    assert_int_equal(fx->h->outcome.status, OTA_OUTCOME_CANCELED);
    assert_int_equal(fx->pal.aborts, 1);
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_WAITING_JOB);
    fixture_free(fx);
}

/* ---- suspend, resume, stop, reconnect ---- */

static void test_suspend_resume(void **state)
{
    ota_agent_config_t cfg;
    fixture_t *fx;
    uint32_t requests;
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.block_size = 1024;
    fx = fixture_new(40 * 1024, &cfg);
    fx->h->policy.delay_ms = 30;
    set_job(fx, "job-1");
    start(fx);
    while (fx->h->agent.dl.blocks_done < 10u) {
        h_run(fx->h, 10, 10, NULL);
    }
    assert_int_equal(ota_agent_suspend(&fx->h->agent), OTA_OK);
    assert_int_equal(ota_agent_suspend(&fx->h->agent), OTA_ERR_WRONG_STATE);
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_SUSPENDED);
    requests = fx->h->requests;
    h_run(fx->h, 120000, 100, NULL); /* no timeouts, no requests while suspended */
    assert_int_equal(fx->h->requests, requests);
    assert_int_equal(ota_agent_get_stats(&fx->h->agent)->timeouts, 0);
    assert_int_equal(ota_agent_check_for_update(&fx->h->agent, fx->h->now), OTA_ERR_WRONG_STATE);
    assert_int_equal(ota_agent_resume(&fx->h->agent, fx->h->now), OTA_OK);
    assert_true(h_run(fx->h, 60000, 10, h_stop_activating));
    assert_true(file_matches(fx));
    assert_int_equal(fx->pal.creates, 1);
    fixture_free(fx);
}

static void test_stop_start_continues(void **state)
{
    fixture_t *fx = download_partly(40, 10);
    (void)state;
    assert_int_equal(ota_agent_stop(&fx->h->agent), OTA_OK);
    assert_int_equal(fx->h->nsubs, 0);
    assert_int_equal(fx->pal.aborts, 0);
    h_drop_in_flight(fx->h);
    start(fx);
    assert_true(h_run(fx->h, 60000, 10, h_stop_activating));
    assert_true(file_matches(fx));
    assert_int_equal(fx->pal.creates, 1);
    assert_int_equal(fx->pal.rewrites, 0);
    fixture_free(fx);
}

static void test_reconnect_resubscribes(void **state)
{
    fixture_t *fx = download_partly(40, 10);
    (void)state;
    /* The broker restarted: sessions and messages in flight are gone. */
    fx->h->nsubs = 0;
    h_drop_in_flight(fx->h);
    assert_int_equal(ota_agent_reconnected(&fx->h->agent, fx->h->now), OTA_OK);
    assert_true(h_subscribed(fx->h, "jobs/notify-next"));
    assert_true(h_subscribed(fx->h, "jobs/job-1/update/rejected"));
    assert_true(h_subscribed(fx->h, "streams/" STREAM "/data/cbor"));
    assert_true(h_subscribed(fx->h, "streams/" STREAM "/rejected/cbor"));
    assert_true(h_run(fx->h, 60000, 10, h_stop_activating));
    assert_true(file_matches(fx));
    assert_int_equal(ota_agent_get_stats(&fx->h->agent)->timeouts, 0);
    fixture_free(fx);
}

/* ---- resume after a reboot (fake port; flashsim power cuts are in test_agent_resume) ---- */

static void test_resume_after_reboot(void **state)
{
    ota_agent_config_t cfg;
    fixture_t *fx;
    uint32_t done;
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.block_size = 1024;
    fx = fixture_new(80 * 1024, &cfg);
    fx->h->policy.delay_ms = 30;
    set_job(fx, "job-1");
    start(fx);
    while (fx->h->agent.dl.blocks_done < 30u) {
        h_run(fx->h, 10, 10, NULL);
    }
    done = fx->h->agent.dl.blocks_done;
    /* Power cut: fresh RAM; the port's storage and progress record remain. */
    fx->pal.open = 0;
    h_reboot(fx->h, &fx->pal.pal, V1_0_0);
    fx->h->blocks_requested = 0;
    h_set_job(fx->h, "job-1", STREAM, fx->file, fx->size, fx->sig, sizeof fx->sig, "IN_PROGRESS",
              "{\"receive\":\"1/80\"}");
    start(fx);
    assert_true(h_run(fx->h, 60000, 10, h_stop_activating));
    assert_true(file_matches(fx));
    assert_int_equal(fx->pal.resumes, 1);
    assert_int_equal(fx->pal.creates, 1);
    assert_int_equal(fx->h->blocks_requested, 80u - done);
    assert_int_equal(ota_agent_get_stats(&fx->h->agent)->blocks_resumed, done);
    fixture_free(fx);
}

static void test_resume_of_another_job_starts_over(void **state)
{
    fixture_t *fx = download_partly(40, 10);
    (void)state;
    fx->pal.open = 0;
    h_reboot(fx->h, &fx->pal.pal, V1_0_0);
    h_set_job(fx->h, "job-2", STREAM, fx->file, fx->size, fx->sig, sizeof fx->sig, "QUEUED", NULL);
    start(fx);
    assert_true(h_run(fx->h, 60000, 10, h_stop_activating));
    assert_int_equal(fx->pal.resumes, 0);
    assert_int_equal(fx->pal.creates, 2);
    assert_true(file_matches(fx));
    fixture_free(fx);
}

static void test_resumed_file_failing_verification_starts_over(void **state)
{
    fixture_t *fx = download_partly(40, 10);
    (void)state;
    fx->pal.open = 0;
    fx->pal.corrupt_on_resume = 1; /* a kept block is damaged */
    h_reboot(fx->h, &fx->pal.pal, V1_0_0);
    start(fx);
    assert_true(h_run(fx->h, 60000, 10, h_stop_activating));
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_ACTIVATING);
    assert_int_equal(fx->pal.resumes, 1);
    assert_int_equal(fx->pal.creates, 2);
    assert_int_equal(fx->pal.closes, 2);
    assert_true(file_matches(fx));
    fixture_free(fx);
}

static void test_corrupt_progress_record_is_ignored(void **state)
{
    fixture_t *fx = download_partly(40, 10);
    (void)state;
    fx->pal.open = 0;
    fx->pal.progress[fx->pal.progress_len / 2] ^= 0x10u;
    h_reboot(fx->h, &fx->pal.pal, V1_0_0);
    start(fx);
    assert_true(h_run(fx->h, 60000, 10, h_stop_activating));
    assert_int_equal(fx->pal.resumes, 0);
    assert_int_equal(fx->pal.creates, 2);
    assert_true(file_matches(fx));
    fixture_free(fx);
}

static void test_port_without_progress_store(void **state)
{
    ota_agent_config_t cfg;
    fixture_t *fx;
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.block_size = 1024;
    fx = fixture_new(20 * 1024, &cfg);
    fx->pal.pal.progress_save = NULL;
    fx->pal.pal.progress_load = NULL;
    fx->pal.pal.progress_clear = NULL;
    fx->pal.pal.resume_file = NULL;
    h_reboot(fx->h, &fx->pal.pal, V1_0_0);
    set_job(fx, "job-1");
    start(fx);
    assert_true(h_run(fx->h, 60000, 10, h_stop_activating));
    assert_true(file_matches(fx));
    assert_int_equal(fx->pal.saves, 0);
    fixture_free(fx);
}

/* A progress store too small for the file: the download goes on without checkpoints, and the
 * log says so with the size the record needs (28 bytes and one bit per block) and the store's. */
static void test_progress_store_too_small_is_logged(void **state)
{
    ota_agent_config_t cfg;
    fixture_t *fx;
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.block_size = 1024;
    fx = fixture_new(59 * 1024, &cfg);
    fx->pal.pal.progress_capacity = 34;
    h_reboot(fx->h, &fx->pal.pal, V1_0_0);
    set_job(fx, "job-1");
    start(fx);
    assert_true(h_run(fx->h, 60000, 10, h_stop_activating));
    assert_true(file_matches(fx));
    assert_int_equal(fx->pal.saves, 0);
    if (OTA_LOG_LEVEL >= (int)OTA_LOG_WARN) {
        assert_string_equal(fx->h->last_warn,
                            "progress store too small: no checkpoints, a reset starts over");
        assert_int_equal(fx->h->last_warn_a, 36);
        assert_int_equal(fx->h->last_warn_b, 34);
    }
    fixture_free(fx);
}

static void test_file_size_near_4_gib_is_reported(void **state)
{
    fixture_t *fx = fixture_new(5000, NULL);
    (void)state;
    /* A port whose slot takes any size: the block count must not wrap. */
    fx->pal.pal.max_file_size = UINT32_MAX;
    fx->pal.fail_create = OTA_ERR_RX_FILE_CREATE_FAILED;
    h_set_job(fx->h, "job-1", STREAM, fx->file, 0xfffff001u, fx->sig, sizeof fx->sig, "QUEUED",
              NULL);
    start(fx);
    assert_true(h_run(fx->h, 5000, 10, h_stop_outcome));
    assert_non_null(strstr(h_last_status(fx->h), "rejected: 0x000000e5"));
    assert_non_null(strstr(h_last_status(fx->h), "too many blocks (OTA_MAX_FILE_BLOCKS)"));
    assert_int_equal(fx->pal.creates, 0);
    fixture_free(fx);
}

/* 1 if the request's "b" is a byte string of exactly len bytes equal to bytes. */
static int request_bitmap_is(const harness_t *h, const uint8_t *bytes, size_t len)
{
    for (size_t i = 0; i + 3u + len <= h->last_request_len; i++) {
        if (h->last_request[i] == 0x61 && h->last_request[i + 1u] == 'b') {
            return len < 24u && h->last_request[i + 2u] == (uint8_t)(0x40u + len) &&
                   memcmp(&h->last_request[i + 3u], bytes, len) == 0;
        }
    }
    return 0;
}

static void test_retransmission_bitmap_ends_at_last_wanted_block(void **state)
{
    static const uint8_t one[] = {0x01};
    ota_agent_config_t cfg;
    fixture_t *fx;
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.block_size = 256;
    fx = fixture_new(600 * 256, &cfg);
    fx->h->policy.drop_first = 1; /* block 0 is lost; all others arrive */
    set_job(fx, "job-1");
    start(fx);
    assert_true(h_run(fx->h, 120000, 10, h_stop_activating));
    assert_true(file_matches(fx));
    assert_int_equal(fx->h->requested_count[0], 2);
    /* The request for block 0 alone: bitmap 01, not 75 bytes reaching past block 511. */
    assert_true(request_bitmap_is(fx->h, one, sizeof one));
    assert_int_equal(ota_agent_get_stats(&fx->h->agent)->blocks_duplicate, 0);
    fixture_free(fx);
}

static void test_round_trip_of_an_abandoned_job_is_not_timed(void **state)
{
    fixture_t *fx = fixture_new(10000, NULL);
    (void)state;
    fx->h->policy.silent = 1;
    set_job(fx, "job-1");
    start(fx);
    h_run(fx->h, 20, 10, NULL);
    assert_int_equal(fx->h->requests, 1);
    h_set_execution(fx->h, "");
    h_notify_next(fx->h);
    assert_int_equal(fx->h->outcome.status, OTA_OUTCOME_CANCELED);
    /* Much later, another job; its blocks take 50 ms. */
    fx->h->now += 100000;
    fx->h->policy.silent = 0;
    fx->h->policy.delay_ms = 50;
    h_set_job(fx->h, "job-2", "AFR_OTA-2", fx->file, fx->size, fx->sig, sizeof fx->sig, "QUEUED",
              NULL);
    fx->h->outcomes = 0;
    h_notify_next(fx->h);
    assert_true(h_run(fx->h, 60000, 10, h_stop_activating));
    assert_true(file_matches(fx));
    assert_true(fx->h->agent.stats.rtt_ms <= 100u);
    /* At the floor: the abandoned request's 100 s would have raised it far above. */
    assert_int_equal(fx->h->agent.dl.rto, OTA_DEFAULT_RTO_MIN_MS);
    fixture_free(fx);
}

static void test_stop_start_listens_for_refusals_again(void **state)
{
    fixture_t *fx = download_partly(40, 10);
    (void)state;
    assert_int_equal(ota_agent_stop(&fx->h->agent), OTA_OK);
    h_drop_in_flight(fx->h);
    start(fx);
    while (ota_agent_get_state(&fx->h->agent) != OTA_AGENT_DOWNLOADING) {
        h_run(fx->h, 10, 10, NULL);
    }
    assert_true(h_subscribed(fx->h, "streams/" STREAM "/data/cbor"));
    assert_true(h_subscribed(fx->h, "jobs/job-1/update/rejected"));
    assert_true(h_run(fx->h, 60000, 10, h_stop_activating));
    assert_true(file_matches(fx));
    fixture_free(fx);
}

static void test_reconnect_while_suspended_resubscribes_stream(void **state)
{
    fixture_t *fx = download_partly(40, 10);
    (void)state;
    assert_int_equal(ota_agent_suspend(&fx->h->agent), OTA_OK);
    /* The broker restarted meanwhile: sessions and messages in flight are gone. */
    fx->h->nsubs = 0;
    h_drop_in_flight(fx->h);
    assert_int_equal(ota_agent_reconnected(&fx->h->agent, fx->h->now), OTA_OK);
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_SUSPENDED);
    assert_int_equal(ota_agent_resume(&fx->h->agent, fx->h->now), OTA_OK);
    assert_true(h_subscribed(fx->h, "jobs/job-1/update/rejected"));
    assert_true(h_subscribed(fx->h, "streams/" STREAM "/data/cbor"));
    assert_true(h_subscribed(fx->h, "streams/" STREAM "/rejected/cbor"));
    assert_true(h_run(fx->h, 60000, 10, h_stop_activating));
    assert_true(file_matches(fx));
    fixture_free(fx);
}

static void test_unusable_document_keeps_the_self_test_deadline(void **state)
{
    fixture_t *fx = fixture_new(5000, NULL);
    (void)state;
    fx->pal.image_state = OTA_PAL_IMAGE_STATE_PENDING_COMMIT;
    h_reboot(fx->h, &fx->pal.pal, V1_1_0);
    h_set_execution(fx->h, EXEC_HEAD "{\"not_ota\":1}}");
    start(fx);
    assert_true(h_run(fx->h, 1000, 10, h_stop_outcome));
    assert_non_null(strstr(h_last_status(fx->h), "\"status\":\"FAILED\""));
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_WAITING_SELF_TEST);
    /* No self-test job in time: the new image is rejected and the device resets. */
    h_run(fx->h, 17000, 100, NULL);
    assert_int_equal(fx->pal.last_state, OTA_IMAGE_STATE_REJECTED);
    assert_int_equal(fx->pal.resets, 1);
    fixture_free(fx);
}

/* ---- a cancel always wins ---- */

/* Where the cancel is injected into a scripted update of CANCEL_BLOCKS blocks. */
enum {
    AT_CLOSE = 1000, /* during verification (inside the port's close) */
    AT_CONFIRM,      /* between close and activation (the confirmation round trip) */
    AT_ACTIVATING,   /* during activation, before the reset (the reset delay) */
};
#define CANCEL_BLOCKS 8u

typedef struct cancel_case {
    fixture_t *fx;
    int at;     /* 1 .. CANCEL_BLOCKS: after that block's write; or AT_* */
    int notify; /* the service's notice reaches the device */
    int done;
} cancel_case_t;

static void cancel_hook(void *ctx, const char *op, int count)
{
    cancel_case_t *c = ctx;
    if (c->done) {
        return;
    }
    if ((strcmp(op, "write") == 0 && count == c->at) ||
        (strcmp(op, "close") == 0 && c->at == AT_CLOSE)) {
        c->done = 1;
        h_cancel(c->fx->h, c->notify);
    }
}

static int stop_confirmed(const harness_t *h)
{
    return h->outcomes > 0 ||
           (ota_agent_get_state(&h->agent) == OTA_AGENT_ACTIVATING && !h->agent.confirm_pending);
}

/* Runs one scripted update with a cancel at c->at; returns the fixture. */
static void run_cancel_case(cancel_case_t *c, uint32_t write_ms)
{
    ota_agent_config_t cfg;
    fixture_t *fx;
    char where[96];

    memset(&cfg, 0, sizeof cfg);
    cfg.block_size = 1024;
    cfg.window_blocks = 4;
    fx = fixture_new(CANCEL_BLOCKS * 1024u - 100u, &cfg);
    c->fx = fx;
    c->done = 0;
    fx->h->policy.delay_ms = 30;
    fx->pal.write_ms = write_ms;
    fx->pal.clock = &fx->h->now;
    fx->pal.hook = cancel_hook;
    fx->pal.hook_ctx = c;
    fx->h->cancel_on_confirm = c->at == AT_CONFIRM;
    fx->h->cancel_notify = c->notify;
    snprintf(where, sizeof where, "cancel at %d, notice %s, %u ms per block", c->at,
             c->notify ? "delivered" : "lost", (unsigned)write_ms);
    set_job(fx, "job-1");
    start(fx);
    if (c->at == AT_ACTIVATING) {
        if (!h_run(fx->h, 60000, 10, stop_confirmed) || fx->h->outcomes != 0) {
            fail_msg("%s: not confirmed", where);
        }
        c->done = 1;
        h_cancel(fx->h, c->notify);
    }
    h_run(fx->h, 60000, 10, h_stop_outcome);
    h_run(fx->h, 2000, 10, NULL);
    if (c->at == AT_CONFIRM) {
        c->done = fx->h->job_over;
    }
    if (c->at == AT_ACTIVATING && !c->notify) {
        /* Nothing told the device in time: it activated. The new image asks for
         * its job, finds none, and reverts at once, never committing. */
        if (fx->pal.activates != 1 || fx->h->outcomes != 0) {
            fail_msg("%s: expected the activation to go ahead", where);
        }
        boot_new_image(fx, V1_1_0);
        h_cancel(fx->h, 0);
        h_run(fx->h, 1000, 10, NULL);
        assert_int_equal(fx->pal.last_state, OTA_IMAGE_STATE_REJECTED);
        assert_int_equal(fx->pal.image_state, OTA_PAL_IMAGE_STATE_INVALID);
        assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_RESETTING);
        h_run(fx->h, 1000, 10, NULL);
        assert_int_equal(fx->pal.resets, 2);
        fixture_free(fx);
        return;
    }
    if (!c->done || fx->h->outcomes != 1 || fx->h->outcome.status != OTA_OUTCOME_CANCELED ||
        fx->pal.activates != 0 || fx->pal.resets != 0 || fx->h->activate_calls != 0 ||
        fx->pal.open || fx->pal.closed_ok || fx->pal.progress_len != -1 ||
        ota_agent_get_state(&fx->h->agent) != OTA_AGENT_WAITING_JOB ||
        h_subscribed(fx->h, "jobs/job-1/update/rejected") ||
        h_subscribed(fx->h, "streams/" STREAM "/data/cbor")) {
        fail_msg("%s: injected %d, outcomes %d (status %d), activates %d, resets %d, open %d, "
                 "closed_ok %d, progress %d, state %s",
                 where, c->done, fx->h->outcomes, (int)fx->h->outcome.status, fx->pal.activates,
                 fx->pal.resets, fx->pal.open, fx->pal.closed_ok, (int)fx->pal.progress_len,
                 ota_agent_state_str(ota_agent_get_state(&fx->h->agent)));
    }
    assert_string_equal(fx->h->outcome.job_id, "job-1");
    assert_string_not_equal(fx->h->outcome.reason, "");
    for (size_t i = 0; i < fx->h->nstatus; i++) {
        assert_null(strstr(fx->h->status[i], "FAILED")); /* a cancel is no failure */
    }
    fixture_free(fx);
}

static void cancel_at_every_step(uint32_t write_ms)
{
    static const int extra[] = {AT_CLOSE, AT_CONFIRM, AT_ACTIVATING};
    int cases = 0;
    for (int notify = 1; notify >= 0; notify--) {
        for (int k = 1; k <= (int)CANCEL_BLOCKS + 3; k++) {
            cancel_case_t c;
            memset(&c, 0, sizeof c);
            c.at = k <= (int)CANCEL_BLOCKS ? k : extra[k - (int)CANCEL_BLOCKS - 1];
            c.notify = notify;
            run_cancel_case(&c, write_ms);
            cases++;
        }
    }
    printf("cancel sweep: %d injection points x notice delivered/lost, %u ms per block: the "
           "canceled image never committed\n",
           cases / 2, (unsigned)write_ms);
}

static void test_cancel_at_every_step(void **state)
{
    (void)state;
    cancel_at_every_step(0);
}

static void test_cancel_at_every_step_slow_port(void **state)
{
    (void)state;
    cancel_at_every_step(200);
}

/* A late cancel of a verified image: the confirmation says the job is gone. */
static void test_activation_waits_for_the_service(void **state)
{
    fixture_t *fx = fixture_new(5000, NULL);
    (void)state;
    fx->h->policy.jobs_silent = 1;
    h_set_job(fx->h, "job-1", STREAM, fx->file, fx->size, fx->sig, sizeof fx->sig, "QUEUED", NULL);
    start(fx);
    h_serve(fx->h);
    h_notify_next(fx->h); /* the document arrives by notify-next */
    assert_true(h_run(fx->h, 10000, 10, h_stop_activating));
    h_run(fx->h, 3000, 10, NULL); /* no confirmation: no activation */
    assert_int_equal(fx->pal.activates, 0);
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_ACTIVATING);
    assert_true(fx->h->next_gets >= 3); /* asked again, backing off */
    fx->h->policy.jobs_silent = 0;
    h_run(fx->h, 20000, 10, NULL);
    assert_int_equal(fx->pal.activates, 1);
    fixture_free(fx);
}

/* A confirmation answered later than the reset delay but within the retry timer (a busy
 * service): no timeout, asked once, activated as soon as it arrives. */
static void test_slow_confirmation_is_no_timeout(void **state)
{
    fixture_t *fx = fixture_new(8192, NULL);
    uint32_t gets;
    (void)state;
    fx->h->policy.delay_ms = 900; /* every answer: the retry timer grows past 900 ms */
    set_job(fx, "job-1");
    start(fx);
    assert_true(h_run(fx->h, 30000, 10, h_stop_activating));
    assert_true(ota_agent_get_stats(&fx->h->agent)->rto_ms > 900u + fx->h->cfg.reset_delay_ms);
    gets = fx->h->next_gets;
    /* The answer comes 900 ms after the ask: activated at once, not at the timer's end. */
    h_run(fx->h, 1200, 10, NULL);
    assert_int_equal(fx->pal.activates, 1);
    assert_int_equal(fx->h->next_gets, gets); /* not asked again */
    assert_int_equal(ota_agent_get_stats(&fx->h->agent)->timeouts, 0);
    fixture_free(fx);
}

/* A $next/get that gets no answer (a request lost before the federation's bridge is up) is
 * asked again after the retry timer, the wait doubling, far inside the Jobs budget (10 a
 * second); once answered, the job runs, and an answer stops the re-asks. */
static void test_unanswered_next_get_is_asked_again(void **state)
{
    fixture_t *fx = fixture_new(5000, NULL);
    (void)state;
    set_job(fx, "job-1");
    fx->h->policy.jobs_silent = 1;
    start(fx);
    h_run(fx->h, 1900, 10, NULL);
    assert_int_equal(fx->h->next_gets, 1);
    /* Waits of 2, 4, 8 and 16 s: asked at 0, 2, 6, 14 and 30 s. */
    h_run(fx->h, 59000 - 1900, 100, NULL);
    assert_int_equal(fx->h->next_gets, 5);
    assert_true(fx->h->next_get_at[1] - fx->h->next_get_at[0] >= 2000u);
    assert_true(fx->h->next_get_at[4] - fx->h->next_get_at[3] >= 16000u);
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_WAITING_JOB);
    fx->h->policy.jobs_silent = 0;
    assert_true(h_run(fx->h, 40000, 10, h_stop_activating));
    assert_true(file_matches(fx));
    fixture_free(fx);
}

/* Unanswered $next/get asks (a bridge outage) double their own wait up to 30 s, but the job
 * that then comes asks its first block again after the download's 2 s timer, not 30 s. */
static void test_unanswered_next_get_leaves_download_timer(void **state)
{
    fixture_t *fx = fixture_new(5000, NULL);
    (void)state;
    set_job(fx, "job-1");
    fx->h->policy.jobs_silent = 1;
    fx->h->policy.silent = 1; /* no block either */
    start(fx);
    /* Asked at 0, 2, 6, 14, 30 s; the next wait is the bound, 30 s. */
    h_run(fx->h, 31000, 100, NULL);
    assert_int_equal(fx->h->next_gets, 5);
    fx->h->policy.jobs_silent = 0;
    h_run(fx->h, 30000, 10, NULL); /* the ask at 60 s is answered: the download begins */
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_DOWNLOADING);
    assert_int_equal(fx->h->next_gets, 6);
    assert_int_equal(fx->h->requests, 1);
    assert_int_equal(fx->h->agent.dl.rto, fx->h->agent.cfg.rto_initial_ms);
    h_run(fx->h, fx->h->agent.cfg.rto_initial_ms + 100u, 10, NULL);
    assert_int_equal(fx->h->requests, 2); /* the lost request is asked again after 2 s */
    assert_true(fx->h->request_at[1] - fx->h->request_at[0] <=
                fx->h->agent.cfg.rto_initial_ms + 10u);
    fixture_free(fx);
}

/* An answer, even "no job pending", stops the re-asks: the agent waits for notify-next. */
static void test_answered_next_get_is_not_asked_again(void **state)
{
    fixture_t *fx = fixture_new(5000, NULL);
    (void)state;
    start(fx);
    h_run(fx->h, 120000, 100, NULL);
    assert_int_equal(fx->h->next_gets, 1);
    fixture_free(fx);
}

/* The service slows down to answers that take longer than the retry timer: each expiry
 * asks for one block alone, not the window again, and the late answers are new blocks. */
static void test_late_answers_are_new_blocks(void **state)
{
    ota_agent_config_t cfg;
    fixture_t *fx;
    const ota_agent_stats_t *st;
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.block_size = 256;
    cfg.window_blocks = 8;
    fx = fixture_new(64 * 256, &cfg);
    fx->h->policy.delay_ms = 20;
    set_job(fx, "job-1");
    start(fx);
    h_run(fx->h, 150, 10, NULL);
    fx->h->policy.delay_ms = 4000; /* a busy service */
    assert_true(h_run(fx->h, 120000, 10, h_stop_activating));
    assert_true(file_matches(fx));
    st = ota_agent_get_stats(&fx->h->agent);
    assert_true(st->timeouts >= 1u);
    assert_true(st->blocks_duplicate <= st->timeouts);
    assert_true(fx->h->blocks_requested <= 64u + st->timeouts);
    fixture_free(fx);
}

/* The new image's first document is one from before the device reported "ready" (an answer
 * to a request sent before the reset, delivered after it): not a reason to revert. The agent
 * asks again after the retry timer and runs the self-test on the document that follows. */
static int stop_activated(const harness_t *h)
{
    return h->activate_calls > 0 || h->outcomes > 0;
}

static size_t ready_reports(const harness_t *h)
{
    size_t n = 0;
    for (size_t i = 0; i < h->nstatus; i++) {
        n += strstr(h->status[i], "\"self_test\":\"ready\"") != NULL;
    }
    return n;
}

/*
 * The "ready" update is lost (with a broker that died after it was sent): the
 * service's answer names the job, but without "self_test":"ready". The agent
 * says "ready" again and activates only once an answer shows it, so the new
 * image finds its self-test step after the reset (before, it activated on any
 * answer naming the job, and the new image waited for a self-test job in vain).
 */
static void test_lost_ready_is_said_again_before_activation(void **state)
{
    ota_agent_config_t cfg;
    fixture_t *fx;
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.block_size = 1024;
    cfg.window_blocks = 4;
    fx = fixture_new(8 * 1024, &cfg);
    fx->h->policy.delay_ms = 30;
    fx->h->policy.drop_updates = 1;
    set_job(fx, "job-1");
    start(fx);
    h_run(fx->h, 10000, 10, NULL);
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_ACTIVATING);
    assert_int_equal(fx->pal.activates, 0);
    assert_int_equal(fx->h->outcomes, 0);
    assert_true(ready_reports(fx->h) >= 2u);
    assert_null(strstr(fx->h->execution, "\"self_test\""));
    /* The next "ready" reaches the service: the next answer shows it, and activation follows. */
    fx->h->policy.drop_updates = 0;
    assert_true(h_run(fx->h, 60000, 10, stop_activated));
    assert_int_equal(fx->pal.activates, 1);
    assert_non_null(strstr(fx->h->execution, "\"self_test\":\"ready\""));
    fixture_free(fx);
}

static void test_stale_document_after_reset_is_not_a_verdict(void **state)
{
    fixture_t *fx = fixture_new(5000, NULL);
    (void)state;
    boot_pending(fx, V1_1_0, "{\"receive\":\"20/20\"}");
    h_run(fx->h, 500, 10, NULL);
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_WAITING_SELF_TEST);
    assert_int_equal(fx->pal.resets, 0);
    assert_int_equal(fx->h->nstatus, 0);
    h_set_job(fx->h, "job-1", STREAM, fx->file, fx->size, fx->sig, sizeof fx->sig, "IN_PROGRESS",
              "{\"self_test\":\"ready\",\"updatedBy\":\"0x01000000\"}");
    assert_true(h_run(fx->h, 10000, 10, h_stop_self_test));
    assert_int_equal(fx->h->next_gets, 2);
    assert_int_equal(fx->pal.resets, 0);
    fixture_free(fx);
}

/* ---- retry timer and throttling ---- */

static void test_slow_port_is_no_lost_request(void **state)
{
    ota_agent_config_t cfg;
    fixture_t *fx;
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.block_size = 1024;
    fx = fixture_new(48u * 1024u, &cfg);
    fx->h->policy.delay_ms = 5;
    fx->pal.write_ms = 200; /* each block takes 200 ms to write */
    fx->pal.clock = &fx->h->now;
    set_job(fx, "job-1");
    start(fx);
    assert_true(h_run(fx->h, 120000, 10, h_stop_activating));
    assert_true(file_matches(fx));
    assert_int_equal(ota_agent_get_stats(&fx->h->agent)->timeouts, 0);
    assert_int_equal(ota_agent_get_stats(&fx->h->agent)->blocks_duplicate, 0);
    for (uint32_t i = 0; i < 48u; i++) {
        assert_int_equal(fx->h->requested_count[i], 1); /* each block asked for once */
    }
    fixture_free(fx);
}

static void test_stream_throttling_backs_off(void **state)
{
    ota_agent_config_t cfg;
    fixture_t *fx;
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_timeouts = 2; /* more refusals than that: still no failure */
    fx = fixture_new(10000, &cfg);
    fx->h->policy.throttle_first = 4;
    set_job(fx, "job-1");
    start(fx);
    assert_true(h_run(fx->h, 200000, 10, h_stop_activating));
    assert_true(file_matches(fx));
    assert_int_equal(fx->h->outcomes, 0);
    assert_int_equal(ota_agent_get_stats(&fx->h->agent)->throttled, 4);
    assert_int_equal(ota_agent_get_stats(&fx->h->agent)->timeouts, 0);
    /* The retry timer doubles at every refusal: 4, 8, 16 s, then its 30 s bound. */
    assert_true(fx->h->request_at[1] - fx->h->request_at[0] >= 4000u);
    assert_true(fx->h->request_at[2] - fx->h->request_at[1] >= 8000u);
    assert_true(fx->h->request_at[3] - fx->h->request_at[2] >= 16000u);
    assert_true(fx->h->request_at[4] - fx->h->request_at[3] >= 30000u);
    for (size_t i = 0; i < fx->h->nstatus; i++) {
        assert_null(strstr(fx->h->status[i], "FAILED"));
    }
    fixture_free(fx);
}

static void test_jobs_throttling_backs_off(void **state)
{
    fixture_t *fx = fixture_new(5000, NULL);
    (void)state;
    fx->h->policy.throttle_jobs_first = 2;
    set_job(fx, "job-1");
    start(fx);
    assert_true(h_run(fx->h, 60000, 10, h_stop_activating));
    assert_int_equal(ota_agent_get_stats(&fx->h->agent)->throttled, 2);
    assert_true(fx->h->next_get_at[1] - fx->h->next_get_at[0] >= 4000u);
    assert_true(fx->h->next_get_at[2] - fx->h->next_get_at[1] >= 8000u);
    /* A throttled status update is no sign that the job is over. */
    h_deliver(fx->h, "jobs/job-1/update/rejected",
              "{\"code\":\"RequestThrottled\",\"message\":\"over budget\"}", 50);
    assert_int_equal(ota_agent_get_stats(&fx->h->agent)->throttled, 3);
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_ACTIVATING);
    assert_int_equal(fx->h->outcomes, 0);
    fixture_free(fx);
}

/* Sends a final update the service throttles `refused` times; checks that the
 * agent sends it again after each back-off, unchanged, then lets go of the
 * job's update/rejected. */
static void check_final_update_sent_again(fixture_t *fx, uint32_t refused, const char *final)
{
    size_t first = 0;
    size_t n = 0;
    fx->h->policy.throttle_final_first = refused;
    assert_true(h_run(fx->h, 200000, 10, NULL) == 0);
    assert_int_equal(fx->h->finals_refused, refused);
    for (size_t i = 0; i < fx->h->nstatus; i++) {
        if (strstr(fx->h->status[i], final) != NULL) {
            if (n == 0u) {
                first = i;
            }
            /* each copy is the first one, byte for byte, after a doubled timer */
            assert_string_equal(fx->h->status[i], fx->h->status[first]);
            if (n != 0u) {
                assert_true(fx->h->status_at[i] - fx->h->status_at[i - 1u] >= 2000u << n);
            }
            n++;
        }
    }
    assert_int_equal(n, refused + 1u); /* the last copy went through */
    assert_int_equal(ota_agent_get_stats(&fx->h->agent)->throttled, refused);
    assert_int_equal(fx->h->outcomes, 1);
    assert_false(h_subscribed(fx->h, "jobs/job-1/update/rejected"));
}

static void test_throttled_failure_report_is_sent_again(void **state)
{
    fixture_t *fx = fixture_new(10000, NULL);
    (void)state;
    fx->h->policy.reject_code = "ResourceNotFound";
    set_job(fx, "job-1");
    start(fx);
    check_final_update_sent_again(fx, 3, "\"status\":\"FAILED\"");
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_WAITING_JOB);
    fixture_free(fx);
}

static void test_throttled_success_report_is_sent_again(void **state)
{
    fixture_t *fx = fixture_new(5000, NULL);
    (void)state;
    boot_new_image(fx, V1_1_0);
    assert_true(h_run(fx->h, 5000, 10, h_stop_self_test));
    assert_int_equal(ota_agent_self_test_result(&fx->h->agent, 1, fx->h->now), OTA_OK);
    check_final_update_sent_again(fx, 2, "\"status\":\"SUCCEEDED\"");
    assert_int_equal(fx->pal.image_state, OTA_PAL_IMAGE_STATE_VALID);
    fixture_free(fx);
}

static void test_suspend_pauses_the_self_test_deadline(void **state)
{
    fixture_t *fx = fixture_new(5000, NULL);
    (void)state;
    boot_new_image(fx, V1_1_0);
    assert_true(h_run(fx->h, 5000, 10, h_stop_self_test));
    assert_int_equal(ota_agent_suspend(&fx->h->agent), OTA_OK);
    h_run(fx->h, 30000, 100, NULL); /* longer than the 16 s deadline */
    assert_int_equal(ota_agent_resume(&fx->h->agent, fx->h->now), OTA_OK);
    h_run(fx->h, 1000, 100, NULL);
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_SELF_TEST);
    assert_int_equal(fx->pal.resets, 0);
    h_run(fx->h, 20000, 100, NULL); /* the rest of the deadline still runs */
    assert_int_equal(fx->pal.last_state, OTA_IMAGE_STATE_REJECTED);
    fixture_free(fx);
}

static void test_new_image_finds_no_interrupted_download(void **state)
{
    fixture_t *fx = fixture_new(5000, NULL);
    (void)state;
    download_to_activation(fx);
    h_run(fx->h, 2000, 10, NULL);
    assert_int_equal(fx->pal.activates, 1);
    assert_int_not_equal(fx->pal.progress_len, -1); /* the record stays until the commit */
    boot_new_image(fx, V1_1_0);
    assert_int_equal(fx->h->interrupted_logs, 0);
    /* An old image that finds the same record after a cut does say so
     * (where info events are compiled in). */
    fx->pal.image_state = OTA_PAL_IMAGE_STATE_VALID;
    h_reboot(fx->h, &fx->pal.pal, V1_0_0);
    start(fx);
    assert_int_equal(fx->h->interrupted_logs, OTA_LOG_LEVEL >= (int)OTA_LOG_INFO ? 1 : 0);
    fixture_free(fx);
}

static void test_stop_during_activation_then_start_activates(void **state)
{
    fixture_t *fx = fixture_new(5000, NULL);
    (void)state;
    download_to_activation(fx);
    assert_int_equal(ota_agent_stop(&fx->h->agent), OTA_OK);
    h_run(fx->h, 1000, 10, NULL);
    assert_int_equal(fx->pal.activates, 0);
    start(fx);
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_ACTIVATING);
    h_run(fx->h, 2000, 10, NULL);
    assert_int_equal(fx->pal.activates, 1);
    assert_int_equal(fx->pal.closes, 1); /* no second download or verification */
    assert_int_equal(fx->pal.creates, 1);
    fixture_free(fx);
}

static void test_reset_during_self_test_keeps_updated_by(void **state)
{
    fixture_t *fx = fixture_new(5000, NULL);
    (void)state;
    download_to_activation(fx);
    h_run(fx->h, 2000, 10, NULL);
    assert_int_equal(fx->pal.activates, 1);
    /* The new image booted, reported "active", and was reset during its test:
     * the job now says "active" with the new image's version. */
    fx->pal.image_state = OTA_PAL_IMAGE_STATE_PENDING_COMMIT;
    h_reboot(fx->h, &fx->pal.pal, V1_1_0);
    h_set_job(fx->h, "job-1", STREAM, fx->file, fx->size, fx->sig, sizeof fx->sig, "IN_PROGRESS",
              "{\"self_test\":\"active\",\"updatedBy\":\"0x01010000\"}");
    start(fx);
    assert_true(h_run(fx->h, 5000, 10, h_stop_self_test));
    assert_int_equal(ota_agent_self_test_result(&fx->h->agent, 1, fx->h->now), OTA_OK);
    assert_string_equal(h_last_status(fx->h),
                        "{\"status\":\"SUCCEEDED\",\"statusDetails\":{\"reason\":\"accepted  "
                        "v1.1.0\",\"updatedBy\":\"  v1.0.0\"}}");
    fixture_free(fx);
}

/* Runs until the port activated the image (or 60 s). */
static int activated(const harness_t *h)
{
    return h->activate_calls > 0 && ota_agent_get_state(&h->agent) == OTA_AGENT_RESETTING;
}

/* The application calls the agent from inside its callbacks, as a port's glue might: every
 * call but the self-test verdict, check_for_update and the getters is refused with
 * OTA_ERR_WRONG_STATE (the agent is in the middle of a step that would undo or trip over
 * it) and changes nothing: the update goes on to activation as without the call. */
static void test_calls_from_callbacks_are_refused(void **state)
{
    static const int ins[] = {H_IN_JOB, H_IN_VERIFIED, H_IN_ACTIVATE, H_IN_LOG};
    static const int calls[] = {H_CALL_STOP,        H_CALL_SUSPEND, H_CALL_START,
                                H_CALL_RECONNECTED, H_CALL_POLL,    H_CALL_HANDLE};
    ota_agent_config_t cfg;
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.block_size = 1024;
    for (size_t i = 0; i < sizeof ins / sizeof ins[0]; i++) {
        if (ins[i] == H_IN_LOG && OTA_LOG_LEVEL < 0) {
            continue; /* logging compiled out: the log callback is never called */
        }
        for (size_t k = 0; k < sizeof calls / sizeof calls[0]; k++) {
            fixture_t *fx = fixture_new(20 * 1024, &cfg);
            fx->h->misuse_in = ins[i];
            fx->h->misuse_call = calls[k];
            set_job(fx, "job-1");
            start(fx);
            assert_true(h_run(fx->h, 60000, 10, activated));
            if (fx->h->misuse_calls != 1 || fx->h->misuse_rc != OTA_ERR_WRONG_STATE) {
                fail_msg("call %d from callback %d: %d calls, answered %d", calls[k], ins[i],
                         fx->h->misuse_calls, (int)fx->h->misuse_rc);
            }
            assert_true(file_matches(fx));
            assert_int_equal(fx->pal.activates, 1);
            assert_int_equal(fx->h->outcomes, 0);
            fixture_free(fx);
        }
    }
}

/* From inside outcome (a failed self-test here) a stop is refused too: the reset to the old
 * image still follows. check_for_update is allowed from a callback. */
static void test_stop_from_outcome_is_refused(void **state)
{
    fixture_t *fx = fixture_new(5000, NULL);
    (void)state;
    boot_new_image(fx, V1_1_0);
    assert_true(h_run(fx->h, 5000, 10, h_stop_self_test));
    fx->h->misuse_in = H_IN_OUTCOME;
    fx->h->misuse_call = H_CALL_STOP;
    assert_int_equal(ota_agent_self_test_result(&fx->h->agent, 0, fx->h->now), OTA_OK);
    assert_int_equal(fx->h->misuse_calls, 1);
    assert_int_equal(fx->h->misuse_rc, OTA_ERR_WRONG_STATE);
    assert_int_equal(ota_agent_get_state(&fx->h->agent), OTA_AGENT_RESETTING);
    fx->h->now += 600;
    ota_agent_poll(&fx->h->agent, fx->h->now);
    assert_int_equal(fx->pal.resets, 1);
    fixture_free(fx);

    fx = fixture_new(5000, NULL);
    fx->h->misuse_in = H_IN_JOB;
    fx->h->misuse_call = H_CALL_CHECK;
    set_job(fx, "job-1");
    start(fx);
    assert_true(h_run(fx->h, 60000, 10, h_stop_activating));
    assert_int_equal(fx->h->misuse_rc, OTA_OK);
    assert_true(file_matches(fx));
    fixture_free(fx);
}

static void test_agent_version_macro(void **state)
{
    char text[16];
    (void)state;
    snprintf(text, sizeof text, "%d.%d.%d", OTA_VERSION_MAJOR, OTA_VERSION_MINOR,
             OTA_VERSION_PATCH);
    assert_string_equal(text, OTA_VERSION_STRING);
    assert_int_equal(OTA_VERSION >> 24, OTA_VERSION_MAJOR);
    assert_int_equal((OTA_VERSION >> 16) & 0xffu, OTA_VERSION_MINOR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_validates_arguments),
        cmocka_unit_test(test_start_subscribes_and_asks),
        cmocka_unit_test(test_start_fails_cleanly_when_mqtt_fails),
        cmocka_unit_test(test_full_update_exact_payloads),
        cmocka_unit_test(test_late_copy_after_success_is_ignored),
        cmocka_unit_test(test_self_test_failure_reverts),
        cmocka_unit_test(test_commit_failure_reverts),
        cmocka_unit_test(test_self_test_timeout_reverts),
        cmocka_unit_test(test_no_self_test_job_resets),
        cmocka_unit_test(test_same_version_rejected),
        cmocka_unit_test(test_downgrade_rejected),
        cmocka_unit_test(test_reverted_image_reports_failure),
        cmocka_unit_test(test_cut_before_activation_finishes_it),
        cmocka_unit_test(test_reboot_after_activation_into_old_image_fails),
        cmocka_unit_test(test_bad_documents_are_reported),
        cmocka_unit_test(test_file_too_large_is_reported),
        cmocka_unit_test(test_other_device_type_refused_before_download),
        cmocka_unit_test(test_unreadable_message_is_ignored),
        cmocka_unit_test(test_pipelined_window),
        cmocka_unit_test(test_window_above_request_limit_is_split),
        cmocka_unit_test(test_out_of_order_and_duplicates),
        cmocka_unit_test(test_bad_blocks_are_dropped),
        cmocka_unit_test(test_retry_backoff_and_give_up),
        cmocka_unit_test(test_link_down_does_not_give_up),
        cmocka_unit_test(test_lost_blocks_are_fetched_again),
        cmocka_unit_test(test_timer_follows_round_trip),
        cmocka_unit_test(test_stream_rejection_fails_at_once),
        cmocka_unit_test(test_refusal_of_a_canceled_job_is_a_cancel),
        cmocka_unit_test(test_refusal_without_answer_fails),
        cmocka_unit_test(test_progress_small_file_default_interval),
        cmocka_unit_test(test_large_blocks_and_many_blocks),
        cmocka_unit_test(test_data_file_skips_activation),
        cmocka_unit_test(test_port_failures_are_reported),
        cmocka_unit_test(test_same_job_continues),
        cmocka_unit_test(test_cancel_then_new_job),
        cmocka_unit_test(test_another_job_replaces_current),
        cmocka_unit_test(test_terminal_status_of_current_job_abandons),
        cmocka_unit_test(test_cancel_after_stop_start_abandons),
        cmocka_unit_test(test_other_job_during_self_test_waits),
        cmocka_unit_test(test_update_rejected_message_text_is_not_a_code),
        cmocka_unit_test(test_update_rejected_terminal_abandons),
        cmocka_unit_test(test_suspend_resume),
        cmocka_unit_test(test_stop_start_continues),
        cmocka_unit_test(test_reconnect_resubscribes),
        cmocka_unit_test(test_resume_after_reboot),
        cmocka_unit_test(test_resume_of_another_job_starts_over),
        cmocka_unit_test(test_resumed_file_failing_verification_starts_over),
        cmocka_unit_test(test_corrupt_progress_record_is_ignored),
        cmocka_unit_test(test_port_without_progress_store),
        cmocka_unit_test(test_file_size_near_4_gib_is_reported),
        cmocka_unit_test(test_retransmission_bitmap_ends_at_last_wanted_block),
        cmocka_unit_test(test_round_trip_of_an_abandoned_job_is_not_timed),
        cmocka_unit_test(test_stop_start_listens_for_refusals_again),
        cmocka_unit_test(test_reconnect_while_suspended_resubscribes_stream),
        cmocka_unit_test(test_unusable_document_keeps_the_self_test_deadline),
        cmocka_unit_test(test_cancel_at_every_step),
        cmocka_unit_test(test_cancel_at_every_step_slow_port),
        cmocka_unit_test(test_activation_waits_for_the_service),
        cmocka_unit_test(test_slow_confirmation_is_no_timeout),
        cmocka_unit_test(test_unanswered_next_get_is_asked_again),
        cmocka_unit_test(test_answered_next_get_is_not_asked_again),
        cmocka_unit_test(test_unanswered_next_get_leaves_download_timer),
        cmocka_unit_test(test_late_answers_are_new_blocks),
        cmocka_unit_test(test_stale_document_after_reset_is_not_a_verdict),
        cmocka_unit_test(test_lost_ready_is_said_again_before_activation),
        cmocka_unit_test(test_slow_port_is_no_lost_request),
        cmocka_unit_test(test_stream_throttling_backs_off),
        cmocka_unit_test(test_jobs_throttling_backs_off),
        cmocka_unit_test(test_throttled_failure_report_is_sent_again),
        cmocka_unit_test(test_throttled_success_report_is_sent_again),
        cmocka_unit_test(test_suspend_pauses_the_self_test_deadline),
        cmocka_unit_test(test_new_image_finds_no_interrupted_download),
        cmocka_unit_test(test_stop_during_activation_then_start_activates),
        cmocka_unit_test(test_reset_during_self_test_keeps_updated_by),
        cmocka_unit_test(test_calls_from_callbacks_are_refused),
        cmocka_unit_test(test_stop_from_outcome_is_refused),
        cmocka_unit_test(test_progress_store_too_small_is_logged),
        cmocka_unit_test(test_agent_version_macro),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
