/*
 * The Jobs API end to end: a real Mosquitto broker, the real otter-service,
 * scripted device clients, and jobs created and canceled through the store
 * API as the CLI does. Includes the service killed and restarted in the
 * middle of a job. Everything runs on 127.0.0.1 on free ports; the test
 * support stops every started process, also on failure.
 */
#define _XOPEN_SOURCE 700

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ota_store.h"
#include "ota_test_net.h"

#define WAIT_MS 5000

typedef struct {
    char tmp[256];
    char data[300];
    char log[300];
    ota_test_broker_t broker;
    ota_test_proc_t service;
    ota_store_t *cli;
    ota_test_client_t *dev[2];
} fx_t;

static const char DOC[] = "{\"afr_ota\":{\"protocols\":[\"MQTT\"],\"streamname\":\"AFR_OTA-net\","
                          "\"files\":[{\"filepath\":\"fw.bin\",\"filesize\":1000,\"fileid\":0,"
                          "\"certfile\":\"c.crt\",\"sig-sha256-ecdsa\":\"MEUCIQ\"}]}}";

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void start_service(fx_t *fx)
{
    assert_int_equal(ota_test_service_start(&fx->service, fx->data, &fx->broker, NULL, fx->log), 0);
}

static ota_test_client_t *device(fx_t *fx, const char *thing)
{
    ota_test_client_t *c = ota_test_thing_connect(&fx->broker, thing);
    assert_non_null(c);
    /* what our agent subscribes to (spec section 1) */
    static const char *const suffixes[] = {"notify-next", "$next/get/accepted",
                                           "$next/get/rejected", "+/update/accepted",
                                           "+/update/rejected"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char filter[256];
        snprintf(filter, sizeof filter, "$aws/things/%s/jobs/%s", thing, suffixes[i]);
        assert_int_equal(ota_test_client_subscribe(c, filter, 1), 1);
    }
    return c;
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    snprintf(fx->tmp, sizeof fx->tmp, "/tmp/otter-jobs-net-XXXXXX");
    assert_non_null(mkdtemp(fx->tmp));
    snprintf(fx->data, sizeof fx->data, "%s/data", fx->tmp);
    snprintf(fx->log, sizeof fx->log, "%s/service.log", fx->tmp);
    assert_int_equal(ota_test_broker_start(&fx->broker, NULL), 0);
    assert_int_equal(ota_store_open(fx->data, &fx->cli), OTA_STORE_OK);
    int64_t now = ota_store_now_ms();
    assert_int_equal(ota_store_thing_create(fx->cli, "dev0", now), OTA_STORE_OK);
    assert_int_equal(ota_store_thing_create(fx->cli, "dev1", now), OTA_STORE_OK);
    ota_store_stream_file_t f = {0, "/tmp/unused.bin", 1000};
    assert_int_equal(ota_store_stream_create(fx->cli, "AFR_OTA-net", "fw", &f, 1, now),
                     OTA_STORE_OK);
    start_service(fx);
    fx->dev[0] = device(fx, "dev0");
    fx->dev[1] = device(fx, "dev1");
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    ota_test_client_disconnect(fx->dev[0]);
    ota_test_client_disconnect(fx->dev[1]);
    if (fx->service.pid)
        ota_test_proc_stop(&fx->service);
    ota_test_broker_stop(&fx->broker);
    ota_store_close(fx->cli);
    if (getenv("OTA_KEEP_LOGS") == NULL)
        nftw(fx->tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    else
        fprintf(stderr, "service log kept: %s\n", fx->log);
    free(fx);
    return 0;
}

static void create_job(fx_t *fx, const char *id, const char *const *things, size_t n)
{
    ota_store_job_spec_t spec = {0};
    spec.job_id = id;
    spec.document = DOC;
    spec.stream_id = "AFR_OTA-net";
    spec.things = things;
    spec.n_things = n;
    assert_int_equal(ota_store_job_create(fx->cli, &spec, ota_store_now_ms()), OTA_STORE_OK);
}

static void publish(ota_test_client_t *c, const char *topic, const char *payload)
{
    assert_int_equal(ota_test_client_publish(c, topic, payload, strlen(payload), 1), 0);
}

/** Waits for a message on topic and parses it (fails on timeout). */
static cJSON *expect(ota_test_client_t *c, const char *topic)
{
    ota_test_msg_t *m = ota_test_client_expect(c, topic, WAIT_MS);
    if (!m)
        fprintf(stderr, "no message on %s within %d ms\n", topic, WAIT_MS);
    assert_non_null(m);
    cJSON *j = cJSON_ParseWithLength((const char *)m->payload, m->len);
    assert_non_null(j);
    ota_test_msg_free(m);
    return j;
}

static void drain(ota_test_client_t *c)
{
    ota_test_msg_t *m;
    while ((m = ota_test_client_expect(c, NULL, 300)) != NULL)
        ota_test_msg_free(m);
}

static cJSON *item(cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

/** The execution's jobId in a notify-next / accepted answer, or "" when it has none. */
static const char *job_of(cJSON *answer)
{
    cJSON *id = item(item(answer, "execution"), "jobId");
    return cJSON_IsString(id) ? id->valuestring : "";
}

#define T_NOTIFY(t) "$aws/things/" t "/jobs/notify-next"
#define T_NEXT(t) "$aws/things/" t "/jobs/$next/get"
#define T_UPD(t, j) "$aws/things/" t "/jobs/" j "/update"

static void test_device_flow_with_restart_and_cancel(void **state)
{
    fx_t *fx = *state;
    ota_test_client_t *d0 = fx->dev[0], *d1 = fx->dev[1];

    /* nothing pending yet */
    publish(d0, T_NEXT("dev0"), "{\"clientToken\":\"1:dev0\"}");
    cJSON *a = expect(d0, T_NEXT("dev0") "/accepted");
    assert_string_equal(item(a, "clientToken")->valuestring, "1:dev0");
    assert_null(item(a, "execution"));
    cJSON_Delete(a);

    /* a job created through the store (as the CLI does) is announced */
    const char *dev0[] = {"dev0"};
    create_job(fx, "job-1", dev0, 1);
    cJSON *n = expect(d0, T_NOTIFY("dev0"));
    assert_string_equal(job_of(n), "job-1");
    assert_string_equal(item(item(n, "execution"), "status")->valuestring, "QUEUED");
    assert_non_null(item(item(n, "execution"), "jobDocument"));
    cJSON_Delete(n);

    /* $next/get: accepted, and the same execution again on notify-next */
    publish(d0, T_NEXT("dev0"), "{\"clientToken\":\"2:dev0\"}");
    a = expect(d0, T_NEXT("dev0") "/accepted");
    assert_string_equal(job_of(a), "job-1");
    cJSON_Delete(a);
    n = expect(d0, T_NOTIFY("dev0"));
    assert_string_equal(job_of(n), "job-1");
    cJSON_Delete(n);

    /* progress, then an illegal transition refused */
    publish(d0, T_UPD("dev0", "job-1"),
            "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"receive\":\"1/3\"},"
            "\"clientToken\":\"u1\"}");
    a = expect(d0, T_UPD("dev0", "job-1") "/accepted");
    assert_string_equal(item(a, "clientToken")->valuestring, "u1");
    cJSON_Delete(a);
    publish(d0, T_UPD("dev0", "job-1"),
            "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"self_test\":\"ready\","
            "\"updatedBy\":\"0x00090002\"}}");
    cJSON_Delete(expect(d0, T_UPD("dev0", "job-1") "/accepted"));
    publish(d0, T_UPD("dev0", "job-1"), "{\"status\":\"REJECTED\",\"clientToken\":\"bad\"}");
    cJSON *r = expect(d0, T_UPD("dev0", "job-1") "/rejected");
    assert_string_equal(item(r, "code")->valuestring, "InvalidStateTransition");
    assert_string_equal(item(r, "clientToken")->valuestring, "bad");
    cJSON_Delete(r);

    /* power cut of the service in the middle of the job; the CLI adds a job meanwhile */
    assert_true(ota_test_proc_kill(&fx->service) > 0);
    const char *dev1[] = {"dev1"};
    create_job(fx, "job-2", dev1, 1);
    start_service(fx);
    n = expect(d1, T_NOTIFY("dev1")); /* announced by the restarted service */
    assert_string_equal(job_of(n), "job-2");
    cJSON_Delete(n);

    /* the device "reboots" and reads its execution back, progress intact */
    drain(d0);
    publish(d0, T_NEXT("dev0"), "{\"clientToken\":\"3:dev0\"}");
    a = expect(d0, T_NEXT("dev0") "/accepted");
    cJSON *e = item(a, "execution");
    assert_string_equal(job_of(a), "job-1");
    assert_string_equal(item(e, "status")->valuestring, "IN_PROGRESS");
    assert_string_equal(item(item(e, "statusDetails"), "self_test")->valuestring, "ready");
    assert_string_equal(item(item(e, "statusDetails"), "updatedBy")->valuestring, "0x00090002");
    assert_int_equal(item(e, "versionNumber")->valueint, 3);
    cJSON_Delete(a);
    drain(d0);

    /* a graceful restart too, then the device finishes */
    assert_int_equal(ota_test_proc_stop(&fx->service), 0);
    start_service(fx);
    publish(d0, T_UPD("dev0", "job-1"),
            "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"self_test\":\"active\","
            "\"updatedBy\":\"0x00090003\"},\"expectedVersion\":3}");
    cJSON_Delete(expect(d0, T_UPD("dev0", "job-1") "/accepted"));
    publish(d0, T_UPD("dev0", "job-1"),
            "{\"status\":\"SUCCEEDED\",\"statusDetails\":{\"reason\":\"accepted  v0.9.3\","
            "\"updatedBy\":\"  v0.9.2\"}}");
    cJSON_Delete(expect(d0, T_UPD("dev0", "job-1") "/accepted"));
    n = expect(d0, T_NOTIFY("dev0"));
    assert_string_equal(job_of(n), ""); /* queue empty */
    cJSON_Delete(n);
    ota_store_job_t j;
    assert_int_equal(ota_store_job_get(fx->cli, "job-1", &j), OTA_STORE_OK);
    assert_int_equal(j.status, OTA_STORE_JOB_COMPLETED);
    assert_int_equal(j.n_succeeded, 1);
    ota_store_job_free(&j);

    /* an update after the end is refused */
    publish(d0, T_UPD("dev0", "job-1"), "{\"status\":\"IN_PROGRESS\"}");
    r = expect(d0, T_UPD("dev0", "job-1") "/rejected");
    assert_string_equal(item(r, "code")->valuestring, "InvalidStateTransition");
    cJSON_Delete(r);

    /* cancel through the store: both things hear of it */
    const char *both[] = {"dev0", "dev1"};
    create_job(fx, "job-3", both, 2);
    n = expect(d0, T_NOTIFY("dev0"));
    assert_string_equal(job_of(n), "job-3");
    cJSON_Delete(n);
    assert_int_equal(ota_store_job_cancel(fx->cli, "job-2", ota_store_now_ms()), OTA_STORE_OK);
    n = expect(d1, T_NOTIFY("dev1")); /* job-2 gone: job-3 is next */
    assert_string_equal(job_of(n), "job-3");
    cJSON_Delete(n);
    assert_int_equal(ota_store_job_cancel(fx->cli, "job-3", ota_store_now_ms()), OTA_STORE_OK);
    n = expect(d0, T_NOTIFY("dev0"));
    assert_string_equal(job_of(n), "");
    cJSON_Delete(n);
    n = expect(d1, T_NOTIFY("dev1"));
    assert_string_equal(job_of(n), "");
    cJSON_Delete(n);
    publish(d1, T_UPD("dev1", "job-3"), "{\"status\":\"IN_PROGRESS\"}");
    r = expect(d1, T_UPD("dev1", "job-3") "/rejected");
    assert_string_equal(item(r, "code")->valuestring, "TerminalStateReached");
    cJSON_Delete(r);
    /* a bad request is answered, not dropped */
    publish(d1, T_UPD("dev1", "job-3"), "{\"status\":");
    r = expect(d1, T_UPD("dev1", "job-3") "/rejected");
    assert_string_equal(item(r, "code")->valuestring, "InvalidJson");
    cJSON_Delete(r);
}

/* Through the broker: jobs/notify, InvalidTopic for an unknown request, bad input refused. */
static void test_notices_and_refusals_over_the_broker(void **state)
{
    fx_t *fx = *state;
    ota_test_client_t *d0 = fx->dev[0];
    assert_int_equal(ota_test_client_subscribe(d0, "$aws/things/dev0/jobs/notify", 1), 1);
    /* everything under jobs/, to see that no answer of the service is answered */
    assert_int_equal(ota_test_client_subscribe(d0, "$aws/things/dev0/jobs/#", 1), 1);
    const char *dev0[] = {"dev0"};
    create_job(fx, "job-9", dev0, 1);
    cJSON *n = expect(d0, "$aws/things/dev0/jobs/notify");
    cJSON *q = item(item(n, "jobs"), "QUEUED");
    assert_int_equal(cJSON_GetArraySize(q), 1);
    assert_string_equal(item(cJSON_GetArrayItem(q, 0), "jobId")->valuestring, "job-9");
    cJSON_Delete(n);

    publish(d0, "$aws/things/dev0/jobs/job-9/delete", "{\"clientToken\":\"del\"}");
    cJSON *r = expect(d0, "$aws/things/dev0/jobs/job-9/delete/rejected");
    assert_string_equal(item(r, "code")->valuestring, "InvalidTopic");
    assert_string_equal(item(r, "clientToken")->valuestring, "del");
    cJSON_Delete(r);

    publish(d0, T_UPD("dev0", "job-9"),
            "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"receive\":\"\xff\"}}");
    r = expect(d0, T_UPD("dev0", "job-9") "/rejected");
    assert_string_equal(item(r, "code")->valuestring, "InvalidJson");
    cJSON_Delete(r);
    publish(d0, T_UPD("dev0", "job-9"), "{\"status\":\"SUCCEEDED\",\"executionNumber\":7}");
    r = expect(d0, T_UPD("dev0", "job-9") "/rejected");
    assert_string_equal(item(r, "code")->valuestring, "ResourceNotFound");
    cJSON_Delete(r);
    ota_store_execution_t e;
    assert_int_equal(ota_store_execution_get(fx->cli, "job-9", "dev0", &e), OTA_STORE_OK);
    assert_int_equal(e.status, OTA_STORE_EXEC_QUEUED); /* nothing changed */
    assert_int_equal(e.version_number, 1);
    ota_store_execution_free(&e);

    publish(d0, T_UPD("dev0", "job-9"), "{\"status\":\"IN_PROGRESS\"}");
    cJSON_Delete(expect(d0, T_UPD("dev0", "job-9") "/accepted"));
    n = expect(d0, "$aws/things/dev0/jobs/notify");
    assert_int_equal(cJSON_GetArraySize(item(item(n, "jobs"), "IN_PROGRESS")), 1);
    cJSON_Delete(n);
    /* the service never answers its own answers, which come back to it through jobs/# */
    ota_test_msg_free(ota_test_client_expect(d0, "nothing/waits/here", 500)); /* 0.5 s */
    /* (the subscription works: the answers above came through it; the device's own requests
     * do not come back to it, since a thing receives only answers) */
    assert_int_equal(ota_test_client_pending(d0, "$aws/things/dev0/jobs/+/update"), 0);
    assert_int_equal(ota_test_client_pending(d0, "$aws/things/dev0/jobs/+/+/+/rejected"), 0);
    assert_int_equal(ota_test_client_pending(d0, "$aws/things/dev0/jobs/notify/rejected"), 0);
    assert_int_equal(ota_test_client_pending(d0, "$aws/things/dev0/jobs/notify-next/rejected"), 0);
}

/* A device's text quoted in a refusal (a duplicate key, a statusDetails key)
 * reaches the service log escaped: no ESC, no line break, no forged line. */
static void test_device_text_cannot_forge_log_lines(void **state)
{
    fx_t *fx = *state;
    ota_test_client_t *d1 = fx->dev[1];
    assert_int_equal(ota_test_client_subscribe(d1, "$aws/things/dev1/jobs/get/rejected", 1), 1);
    const char *forged = "\\u001b[2J\\n2026-12-07T19:59:59Z otter-service[x] ERROR forged";
    char payload[512];
    snprintf(payload, sizeof payload, "{\"%s\":1,\"%s\":2}", forged, forged);
    publish(d1, "$aws/things/dev1/jobs/get", payload);
    cJSON *r = expect(d1, "$aws/things/dev1/jobs/get/rejected");
    assert_string_equal(item(r, "code")->valuestring, "InvalidJson");
    /* the answer quotes the key escaped too */
    assert_non_null(strstr(item(r, "message")->valuestring, "\\x1b[2J\\x0a2026-12-07T19:59:59Z"));
    cJSON_Delete(r);
    const char *dev1[] = {"dev1"};
    create_job(fx, "job-log", dev1, 1);
    drain(d1);
    snprintf(payload, sizeof payload,
             "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"%s\\u202e\":7}}", forged);
    publish(d1, T_UPD("dev1", "job-log"), payload);
    r = expect(d1, T_UPD("dev1", "job-log") "/rejected");
    assert_non_null(strstr(item(r, "message")->valuestring, "\\x1b[2J\\x0a2026"));
    cJSON_Delete(r);

    FILE *f = fopen(fx->log, "rb");
    assert_non_null(f);
    char line[4096];
    int quoted = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        assert_null(strchr(line, 0x1b));
        assert_null(strstr(line, "\xe2\x80\xae"));
        assert_int_not_equal(strncmp(line, "2026-12-07T19:59:59Z otter-service[x]", 38), 0);
        quoted +=
            strstr(line, "\\x1b[2J\\x0a2026-12-07T19:59:59Z otter-service[x] ERROR forged") != NULL;
    }
    fclose(f);
    assert_int_equal(quoted, 2);
}

/* Appends n characters written as escaped surrogate pairs (12 bytes each). */
static size_t put_pairs(char *p, size_t len, int n)
{
    for (int i = 0; i < n; i++, len += 12)
        memcpy(p + len, "\\ud83d\\ude00", 12);
    return len;
}

/* Appends n characters written as raw UTF-8 of 4 bytes each (U+1F600). */
static size_t put_utf8(char *p, size_t len, int n)
{
    for (int i = 0; i < n; i++, len += 4)
        memcpy(p + len, "\xf0\x9f\x98\x80", 4);
    return len;
}

/* The attack of one device with valid credentials that once put the service in a disconnect
 * loop: a compact update whose statusDetails are 10 keys and values of 1024 characters written
 * as escaped surrogate pairs (about 135 KB, just under the broker's packet limit), then a QoS 1
 * <job>/get whose answer embedded them. The shipped broker now drops it (no thing may publish
 * more than 32 KiB: otter_device_limits), and the service's own bound still holds for what
 * passes: details of 20 KB of 4-byte characters (over 16384 bytes compact, under the broker's
 * 32 KiB) are refused with the reason, the same padded by whitespace are accepted and stored
 * without it. The service stays connected: the device's get is answered, another device is
 * still answered; the broker never had to drop an oversize packet of the service. */
static void test_large_status_details_keep_the_service_connected(void **state)
{
    fx_t *fx = *state;
    ota_test_client_t *d0 = fx->dev[0], *d1 = fx->dev[1];
    const char *both[] = {"dev0", "dev1"};
    create_job(fx, "job-a", both, 2);
    drain(d0);
    drain(d1);
    assert_int_equal(ota_test_client_subscribe(d1, "$aws/things/dev1/jobs/job-a/get/+", 1), 1);
    char log[700];
    snprintf(log, sizeof log, "%s/mosquitto.log", fx->broker.dir);
    size_t cap = 140000, len = 0;
    char *p = malloc(cap);
    assert_non_null(p);
    len += (size_t)snprintf(p, cap, "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{");
    for (int k = 0; k < 10; k++) {
        len += (size_t)snprintf(p + len, cap - len, "%s\"%d", k ? "," : "", k);
        len = put_pairs(p, len, 100);
        memcpy(p + len, "\":\"", 3);
        len = put_pairs(p, len + 3, 1024);
        p[len++] = '"';
    }
    len += (size_t)snprintf(p + len, cap - len, "}}");
    assert_true(len > 134000 && len < 135100);
    assert_int_equal(ota_test_client_publish(d1, T_UPD("dev1", "job-a"), p, len, 1), 0);
    assert_int_equal(ota_test_log_wait(log, 0, "otter_device_limits: dropped 1 publishes", WAIT_MS),
                     0);
    ota_test_msg_t *none = ota_test_client_expect(d1, T_UPD("dev1", "job-a") "/+", 500);
    assert_null(none);
    /* over the service's bound, under the broker's */
    len = (size_t)snprintf(p, cap, "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{");
    for (int k = 0; k < 5; k++) {
        len += (size_t)snprintf(p + len, cap - len, "%s\"%d\":\"", k ? "," : "", k);
        len = put_utf8(p, len, 1024);
        p[len++] = '"';
    }
    len += (size_t)snprintf(p + len, cap - len, "}}");
    assert_true(len > 20000 && len < 32768);
    assert_int_equal(ota_test_client_publish(d1, T_UPD("dev1", "job-a"), p, len, 1), 0);
    cJSON *r = expect(d1, T_UPD("dev1", "job-a") "/rejected");
    assert_string_equal(item(r, "code")->valuestring, "InvalidRequest");
    cJSON_Delete(r);
    publish(d1, "$aws/things/dev1/jobs/job-a/get", "{\"clientToken\":\"g1\"}");
    cJSON *a = expect(d1, "$aws/things/dev1/jobs/job-a/get/accepted");
    assert_string_equal(item(a, "clientToken")->valuestring, "g1");
    cJSON_Delete(a);
    /* whitespace: accepted, stored and sent without it */
    len = (size_t)snprintf(p, cap,
                           "{\"status\":\"IN_PROGRESS\",\"statusDetails\":"
                           "{\"self_test\":\"ready\"");
    memset(p + len, ' ', 30000);
    len += 30000;
    len += (size_t)snprintf(p + len, cap - len, ",\"n\":\"1\"}}");
    assert_int_equal(ota_test_client_publish(d1, T_UPD("dev1", "job-a"), p, len, 1), 0);
    cJSON_Delete(expect(d1, T_UPD("dev1", "job-a") "/accepted"));
    free(p);
    publish(d1, "$aws/things/dev1/jobs/job-a/get", "{\"clientToken\":\"g2\"}");
    ota_test_msg_t *m =
        ota_test_client_expect(d1, "$aws/things/dev1/jobs/job-a/get/accepted", WAIT_MS);
    assert_non_null(m);
    assert_true(m->len < 2048);
    ota_test_msg_free(m);
    /* another device is answered, at once */
    drain(d0);
    publish(d0, T_NEXT("dev0"), "{\"clientToken\":\"other\"}");
    a = expect(d0, T_NEXT("dev0") "/accepted");
    assert_string_equal(job_of(a), "job-a");
    cJSON_Delete(a);
    assert_int_equal(ota_test_log_wait(log, 0, "oversize", 200), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_device_flow_with_restart_and_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notices_and_refusals_over_the_broker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_text_cannot_forge_log_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_status_details_keep_the_service_connected, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
