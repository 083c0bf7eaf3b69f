/*
 * Several otter-service instances serving the Jobs API at once, on the
 * broker `otter broker init --shared-streams` sets up (its bridge carries the
 * Jobs API requests too) and one PostgreSQL store; see
 * test_jobs_shared_by_instances() for the phases: two instances answering
 * one device's requests (same-version pairs: one accepted, one
 * VersionMismatch), one of them killed with SIGKILL mid-update (its session
 * and outbox taken over), the store's history exact, and a device flooding
 * three instances getting about its budget.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ota_store.h"
#include "ota_svc_test_fixture.h"
#include "ota_test_net.h"
#include "ota_test_pg.h"

#define JOB "streams-test-job"
#define DEVICES 6

static ota_test_pg_t g_pg;
static const char *const g_shared[] = {"--shared-streams", NULL};

typedef struct device {
    ota_test_client_t *c;
    char name[32];
    int64_t version;    /* the execution's version as the answers told it */
    char last_step[16]; /* statusDetails.step of the last accepted update */
    int answers_seen;   /* answers received */
    int duplicates;     /* answers to a request already answered (token seen before) */
    int requests_sent;  /* requests published */
} device_t;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int connect_devices(svc_fx_t *fx, device_t *d, int n)
{
    for (int i = 0; i < n; i++) {
        memset(&d[i], 0, sizeof d[i]);
        snprintf(d[i].name, sizeof d[i].name, "dev-%d", i);
        d[i].c = ota_test_thing_connect(&fx->broker, d[i].name);
        char filter[96];
        snprintf(filter, sizeof filter, "$aws/things/%s/jobs/#", d[i].name);
        if (d[i].c == NULL || ota_test_client_subscribe(d[i].c, filter, 1) != 1) {
            return -1;
        }
    }
    return 0;
}

static void disconnect_devices(device_t *d, int n)
{
    for (int i = 0; i < n; i++) {
        ota_test_client_disconnect(d[i].c);
        d[i].c = NULL;
    }
}

/* Publishes a Jobs request: $aws/things/<dev>/jobs/<what>. */
static int send_request(device_t *d, const char *what, const char *payload)
{
    char topic[160];
    snprintf(topic, sizeof topic, "$aws/things/%s/jobs/%s", d->name, what);
    d->requests_sent++;
    return ota_test_client_publish(d->c, topic, payload, strlen(payload), 1);
}

/* The next answer on .../jobs/<what>/accepted or /rejected whose clientToken is token (NULL:
 * any; an answer with another token, to a request answered before, is counted as a duplicate):
 * 1 accepted, 0 rejected (code into code), -1 none within timeout_ms. *json receives the
 * parsed answer (caller frees). */
static int take_answer(device_t *d, const char *what, const char *token, int timeout_ms, char *code,
                       size_t cap, cJSON **json)
{
    char filter[160];
    ota_test_msg_t *m;
    cJSON *j;
    snprintf(filter, sizeof filter, "$aws/things/%s/jobs/%s/+", d->name, what);
    for (;;) {
        m = ota_test_client_expect(d->c, filter, timeout_ms);
        if (m == NULL) {
            return -1;
        }
        j = cJSON_Parse((const char *)m->payload);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "clientToken");
        if (token == NULL || (cJSON_IsString(t) && strcmp(t->valuestring, token) == 0)) {
            break;
        }
        d->duplicates++;
        cJSON_Delete(j);
        ota_test_msg_free(m);
    }
    d->answers_seen++;
    int accepted = strstr(m->topic, "/accepted") != NULL;
    if (code != NULL) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "code");
        snprintf(code, cap, "%s", cJSON_IsString(c) ? c->valuestring : "");
    }
    if (json != NULL) {
        *json = j;
    } else {
        cJSON_Delete(j);
    }
    ota_test_msg_free(m);
    return accepted;
}

/* start-next: the execution goes IN_PROGRESS; records its version. */
static int start_next(device_t *d, int timeout_ms)
{
    cJSON *j = NULL;
    if (send_request(d, "start-next", "{\"clientToken\":\"sn\"}") != 0 ||
        take_answer(d, "start-next", "sn", timeout_ms, NULL, 0, &j) != 1) {
        cJSON_Delete(j);
        return -1;
    }
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "execution");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, "versionNumber");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(e, "status");
    int ok = cJSON_IsNumber(v) && cJSON_IsString(s) && strcmp(s->valuestring, "IN_PROGRESS") == 0;
    if (ok) {
        d->version = (int64_t)v->valuedouble;
    }
    cJSON_Delete(j);
    return ok ? 0 : -1;
}

/* The update payload of a step, expecting the device's current version. */
static void update_payload(const device_t *d, const char *status, const char *step, char *out,
                           size_t cap)
{
    snprintf(out, cap,
             "{\"status\":\"%s\",\"expectedVersion\":%lld,\"statusDetails\":{\"step\":\"%s\"},"
             "\"clientToken\":\"u%s\"}",
             status, (long long)d->version, step, step);
}

/* Sends one update of a step. */
static int send_update(device_t *d, const char *status, const char *step)
{
    char p[256];
    update_payload(d, status, step, p, sizeof p);
    return send_request(d, JOB "/update", p);
}

/* The answer to the update of a step: 1 accepted (version + 1), 0 rejected, -1 none. */
static int update_answer(device_t *d, const char *step, int timeout_ms)
{
    char token[24];
    snprintf(token, sizeof token, "u%s", step);
    int rc = take_answer(d, JOB "/update", token, timeout_ms, NULL, 0, NULL);
    if (rc == 1) {
        d->version++;
        snprintf(d->last_step, sizeof d->last_step, "%s", step);
    }
    return rc;
}

/* Checks an execution in the store against what its device was told. */
static void check_store(const char *dir, const device_t *d, int n)
{
    ota_store_t *st = NULL;
    assert_int_equal(ota_store_open_at(dir, g_pg.url, &st), OTA_STORE_OK);
    for (int i = 0; i < n; i++) {
        ota_store_execution_t e;
        char want[64];
        assert_int_equal(ota_store_execution_get(st, JOB, d[i].name, &e), OTA_STORE_OK);
        snprintf(want, sizeof want, "{\"step\":\"%s\"}", d[i].last_step);
        if (e.status != OTA_STORE_EXEC_SUCCEEDED || e.version_number != d[i].version ||
            e.status_details == NULL || strcmp(e.status_details, want) != 0) {
            fprintf(stderr, "%s: store has status %d version %lld details %s; told %lld %s\n",
                    d[i].name, (int)e.status, (long long)e.version_number,
                    e.status_details ? e.status_details : "(none)", (long long)d[i].version, want);
        }
        assert_int_equal(e.status, OTA_STORE_EXEC_SUCCEEDED);
        assert_int_equal(e.version_number, d[i].version);
        assert_non_null(e.status_details);
        assert_string_equal(e.status_details, want);
        ota_store_execution_free(&e);
    }
    ota_store_close(st);
}

/* No answer beyond one per request arrives within wait_ms. */
static int extra_answers(device_t *d, int n, int wait_ms)
{
    int extra = 0;
    for (int i = 0; i < n; i++) {
        char filter[96];
        snprintf(filter, sizeof filter, "$aws/things/%s/jobs/+/+", d[i].name);
        ota_test_msg_t *m = ota_test_client_expect(d[i].c, filter, i == 0 ? wait_ms : 0);
        for (; m != NULL; m = ota_test_client_expect(d[i].c, filter, 0)) {
            if (strstr(m->topic, "/notify") == NULL) {
                fprintf(stderr, "extra answer on %s: %s\n", m->topic, (const char *)m->payload);
                extra++;
            }
            ota_test_msg_free(m);
        }
    }
    return extra;
}

/* Same-version pairs: two updates of one execution at once, expecting the same version; the
 * broker hands them to two instances in turn; one wins, the other is told VersionMismatch. */
static int race_pairs(device_t *dev, int n, int *accepted, int *mismatch)
{
    int failures = 0;
    for (int i = 0; i < n; i++) {
        char a[256], b[256], code[64];
        update_payload(&dev[i], "IN_PROGRESS", "race-a", a, sizeof a);
        update_payload(&dev[i], "IN_PROGRESS", "race-b", b, sizeof b);
        failures += send_request(&dev[i], JOB "/update", a) != 0;
        failures += send_request(&dev[i], JOB "/update", b) != 0;
        for (int r = 0; r < 2; r++) {
            cJSON *j = NULL;
            int rc = take_answer(&dev[i], JOB "/update", NULL, 5000, code, sizeof code, &j);
            if (rc == 1) {
                const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "clientToken");
                (*accepted)++;
                dev[i].version++;
                snprintf(dev[i].last_step, sizeof dev[i].last_step, "%s",
                         cJSON_IsString(t) && strcmp(t->valuestring, "urace-b") == 0 ? "race-b"
                                                                                     : "race-a");
            } else if (rc == 0 && strcmp(code, "VersionMismatch") == 0) {
                (*mismatch)++;
            } else {
                failures++;
            }
            cJSON_Delete(j);
        }
    }
    return failures;
}

/* Updates of steps first..last (the last one SUCCEEDED when final); kill_after >= first kills
 * instance 1 with SIGKILL right after that step's updates left, before their answers. */
static int run_steps(svc_fx_t *fx, device_t *dev, int n, int first, int last, int final,
                     int kill_after, int timeout_ms)
{
    int failures = 0;
    for (int k = first; k <= last; k++) {
        char step[8];
        snprintf(step, sizeof step, "%d", k);
        for (int i = 0; i < n; i++) {
            failures +=
                send_update(&dev[i], final && k == last ? "SUCCEEDED" : "IN_PROGRESS", step) != 0;
        }
        if (k == kill_after) {
            ota_test_proc_kill(&fx->svc[1]);
        }
        for (int i = 0; i < n; i++) {
            failures += update_answer(&dev[i], step, timeout_ms) != 1;
        }
    }
    return failures;
}

/* A device floods Jobs API requests (FLOOD jobs/get) against the live instances; returns how
 * many were accepted and how long the instances answered (s). */
#define FLOOD 600
static int flood(device_t *d, double *answering, int *refusals)
{
    int64_t t0 = now_ms(), last = t0;
    int accepted = 0;
    char filter[96];
    for (int k = 0; k < FLOOD; k++) {
        if (send_request(d, "get", "{\"clientToken\":\"f\"}") != 0) {
            return -1;
        }
    }
    snprintf(filter, sizeof filter, "$aws/things/%s/jobs/get/+", d->name);
    for (ota_test_msg_t *m = ota_test_client_expect(d->c, filter, 2000); m != NULL;
         m = ota_test_client_expect(d->c, filter, 500)) {
        accepted += strstr(m->topic, "/accepted") != NULL;
        *refusals += strstr((const char *)m->payload, "RequestThrottled") != NULL;
        last = now_ms();
        ota_test_msg_free(m);
    }
    *answering = (double)(last - t0) / 1000.0;
    return accepted;
}

/*
 * One setup, three phases:
 * 1. two instances in role all: start-next and two steps for every device, then a
 *    same-version pair each; every request answered once, both instances serve;
 * 2. instance 1 killed with SIGKILL right after step 3 left: the other takes over its session
 *    and its outbox; steps 3 and 4 (SUCCEEDED) are answered; the store holds exactly the
 *    history the devices were told;
 * 3. two more instances (three live): a device floods Jobs API requests and gets about its
 *    budget (defaults: 200 at once, 10 a second), not three times it.
 */
static void test_jobs_shared_by_instances(void **state)
{
    (void)state;
    svc_fx_t fx;
    device_t dev[DEVICES];
    assert_int_equal(svc_fx_setup_broker(&fx, 8192, DEVICES, g_pg.url, g_shared), 0);
    const char *args[] = {"--store", g_pg.url, "--stats-interval", "1", NULL};
    if (svc_fx_start_service(&fx, args) != 0 || svc_fx_start_service(&fx, args) != 1 ||
        connect_devices(&fx, dev, DEVICES) != 0) {
        disconnect_devices(dev, DEVICES);
        svc_fx_teardown(&fx);
        fail_msg("setup failed");
    }
    /* 1 */
    int64_t t0 = now_ms();
    int failures = 0, races_accepted = 0, races_mismatch = 0;
    for (int i = 0; i < DEVICES; i++) {
        failures += start_next(&dev[i], 5000) != 0;
    }
    failures += run_steps(&fx, dev, DEVICES, 1, 2, 0, 0, 5000);
    failures += race_pairs(dev, DEVICES, &races_accepted, &races_mismatch);
    double secs = (double)(now_ms() - t0) / 1000.0;
    int extra = extra_answers(dev, DEVICES, 300);
    int sent = 0, seen = 0;
    for (int i = 0; i < DEVICES; i++) {
        sent += dev[i].requests_sent;
        seen += dev[i].answers_seen;
    }
    /* Instance 1's share shows in its stats line, written once a second: wait for one. */
    long long j1 = svc_fx_log_stat(&fx, 1, "jobs_messages");
    for (int64_t until = now_ms() + 3000; j1 <= 0 && now_ms() < until;) {
        const struct timespec tenth = {0, 100 * 1000 * 1000};
        nanosleep(&tenth, NULL);
        j1 = svc_fx_log_stat(&fx, 1, "jobs_messages");
    }
    printf("phase 1, two instances: %d devices, %d requests, %d answers in %.2f s; instance 1 "
           "handled %lld by its last stats line; same-version pairs: %d accepted, %d "
           "VersionMismatch\n",
           DEVICES, sent, seen, secs, j1, races_accepted, races_mismatch);
    /* 2 */
    t0 = now_ms();
    int kill_failures = run_steps(&fx, dev, DEVICES, 3, 4, 1, 3, 20000);
    secs = (double)(now_ms() - t0) / 1000.0;
    int dups = 0;
    for (int i = 0; i < DEVICES; i++) {
        dups += dev[i].duplicates;
    }
    int took_over = ota_test_log_wait(fx.svc_log[0], 0, "taking over its session", 0) == 0;
    printf("phase 2, instance 1 killed (SIGKILL) after step 3 left: %d failures, steps 3-4 "
           "answered in %.2f s, answers seen twice: %d, session taken over: %s\n",
           kill_failures, secs, dups, took_over ? "yes" : "no");
    check_store(fx.data_dir, dev, DEVICES);
    /* 3 */
    int up = svc_fx_start_service(&fx, args) == 2 && svc_fx_start_service(&fx, args) == 3;
    for (int i = 0; up && i < 4; i += i == 0 ? 2 : 1) {
        up = ota_test_log_wait(fx.svc_log[i], 0, "live instances: 3 serving the Jobs API", 8000) ==
             0;
    }
    double answering = 0;
    int refusals = 0;
    int accepted = up ? flood(&dev[0], &answering, &refusals) : -1;
    /* the budget over the answering time, as each instance rounds its share up */
    double bound = 3 * 67 + 3 * 4 * answering;
    disconnect_devices(dev, DEVICES);
    long long jt[4] = {0};
    for (int i = 0; i < 4; i++) {
        if (i != 1) {
            svc_fx_stop_service(&fx, i);
            jt[i] = svc_fx_log_stat(&fx, i, "jobs_throttled");
        }
    }
    printf("phase 3, a Jobs API flood against 3 instances: %d requests, answered within %.2f s: "
           "%d accepted (bound %.0f; one instance alone allows 200 at once + 10/s), %d refusals "
           "seen; throttled per instance %lld %lld %lld\n",
           FLOOD, answering, accepted, bound, refusals, jt[0], jt[2], jt[3]);
    if (failures != 0 || kill_failures != 0 || !took_over || j1 <= 0 || !up) {
        for (int i = 0; i < fx.n_svc; i++) {
            svc_fx_dump_log(&fx, i);
        }
    }
    svc_fx_teardown(&fx);
    assert_int_equal(failures, 0);
    assert_int_equal(extra, 0);
    assert_int_equal(seen, sent);
    assert_int_equal(races_accepted, DEVICES);
    assert_int_equal(races_mismatch, DEVICES);
    assert_true(j1 > 0);
    assert_int_equal(kill_failures, 0);
    assert_true(took_over);
    assert_true(up);
    assert_true(accepted >= 150);
    assert_true(accepted <= (int)bound);
    assert_true(jt[0] > 0 && jt[2] > 0 && jt[3] > 0); /* each instance refused its share */
}

/* --tls with --shared-streams: the bridge logs in on the TLS listener with its own
 * certificate and checks the server's; the instance's Jobs probe comes back through it, and
 * Jobs API and stream requests are answered through it. (On the TLS listener a client's id is
 * its certificate's name, so instances on one certificate cannot run side by side.) */
static void test_tls_bridge(void **state)
{
    (void)state;
    svc_fx_t fx;
    device_t dev[2];
    const char *const init[] = {"--tls", "--shared-streams", NULL};
    assert_int_equal(ota_test_pg_reset(&g_pg), 0);
    assert_int_equal(svc_fx_setup_broker(&fx, 8192, 2, g_pg.url, init), 0);
    const char *args[] = {"--store", g_pg.url, NULL};
    if (svc_fx_start_service(&fx, args) != 0 || connect_devices(&fx, dev, 2) != 0) {
        disconnect_devices(dev, 2);
        svc_fx_teardown(&fx);
        fail_msg("setup failed");
    }
    /* the Jobs probe came back through the bridge */
    int shared = ota_test_log_wait(fx.svc_log[0], 0, "Jobs API shared in group otter-jobs", 0) == 0;
    int failures = 0;
    for (int i = 0; i < 2; i++) {
        failures += start_next(&dev[i], 5000) != 0;
    }
    /* a stream request through the bridge is answered too */
    char topic[160], data[160];
    size_t len = 0;
    uint8_t *req = svc_cbor_get("s", 0, 4096, 0, NULL, 0, 1, &len);
    snprintf(topic, sizeof topic, "$aws/things/%s/streams/%s/get/cbor", dev[0].name, fx.stream_id);
    snprintf(data, sizeof data, "$aws/things/%s/streams/%s/data/cbor", dev[0].name, fx.stream_id);
    ota_test_client_subscribe(dev[0].c, data, 0);
    failures += ota_test_client_publish(dev[0].c, topic, req, len, 1) != 0;
    free(req);
    ota_test_msg_t *m = ota_test_client_expect(dev[0].c, data, 5000);
    svc_block_t blk;
    int block_ok = m != NULL && svc_decode_block(m->payload, m->len, &blk) == 0 && blk.i == 0 &&
                   blk.plen == 4096 && memcmp(blk.p, fx.file, 4096) == 0;
    ota_test_msg_free(m);
    for (int i = 0; i < 2; i++) {
        failures += run_steps(&fx, &dev[i], 1, 1, 1, 1, 0, 5000);
    }
    disconnect_devices(dev, 2);
    int s0 = svc_fx_stop_service(&fx, 0);
    long long j0 = svc_fx_log_stat(&fx, 0, "jobs_messages");
    printf("TLS bridge: Jobs API shared through it: %s; Jobs requests handled %lld; a block "
           "through it: %s\n",
           shared ? "yes" : "no", j0, block_ok ? "yes" : "no");
    if (failures != 0 || !shared || !block_ok) {
        svc_fx_dump_log(&fx, 0);
    }
    svc_fx_teardown(&fx);
    assert_true(shared);
    assert_int_equal(failures, 0);
    assert_true(block_ok);
    assert_int_equal(s0, 0);
    assert_int_equal(j0, 4);
}

int main(void)
{
    if (ota_test_pg_start(&g_pg) != 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jobs_shared_by_instances),
        cmocka_unit_test(test_tls_bridge),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    ota_test_pg_stop(&g_pg);
    return failed;
}
