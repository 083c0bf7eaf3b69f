/*
 * Unit tests of the Jobs API module, without a broker: a fake publish
 * callback records every message, requests are injected with
 * ota_svc_jobs_handle(), time is simulated. Jobs are created and canceled
 * through a second store handle, as the CLI does.
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

#include <sqlite3.h>

#include "ota_store.h"
#include "ota_svc_jobs.h"

#define T0 1700000000000LL
#define MIN 60000LL
#define MAX_MSGS 256

typedef struct {
    char *topic;
    char *payload;
    int qos;
} msg_t;

typedef struct {
    char dir[256];
    ota_store_t *store; /* the service's handle */
    ota_store_t *cli;   /* a second handle, as the CLI */
    ota_svc_jobs_t *jobs;
    msg_t msgs[MAX_MSGS];
    int n;
    msg_t lists[MAX_MSGS]; /* jobs/notify, kept apart from the answers */
    int n_lists;
    int fail_publish;
    char log[8192];
} fx_t;

static int fake_publish(void *ctx, const char *topic, const void *payload, size_t len, int qos)
{
    fx_t *fx = ctx;
    if (fx->fail_publish)
        return -1;
    size_t tl = strlen(topic);
    int list = tl > 12 && strcmp(topic + tl - 12, "/jobs/notify") == 0;
    assert_true((list ? fx->n_lists : fx->n) < MAX_MSGS);
    msg_t *m = list ? &fx->lists[fx->n_lists++] : &fx->msgs[fx->n++];
    m->topic = strdup(topic);
    m->payload = malloc(len + 1);
    memcpy(m->payload, payload, len);
    m->payload[len] = '\0';
    m->qos = qos;
    return 0;
}

static void fake_log(void *ctx, int level, const char *line)
{
    fx_t *fx = ctx;
    if (level <= OTA_SVC_LOG_INFO && strlen(fx->log) + strlen(line) + 2 < sizeof fx->log) {
        strcat(fx->log, line);
        strcat(fx->log, "\n");
    }
}

static void clear(fx_t *fx)
{
    for (int i = 0; i < fx->n; i++) {
        free(fx->msgs[i].topic);
        free(fx->msgs[i].payload);
    }
    fx->n = 0;
}

static void clear_lists(fx_t *fx)
{
    for (int i = 0; i < fx->n_lists; i++) {
        free(fx->lists[i].topic);
        free(fx->lists[i].payload);
    }
    fx->n_lists = 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void start_service(fx_t *fx)
{
    assert_int_equal(ota_store_open(fx->dir, &fx->store), OTA_STORE_OK);
    fx->jobs = ota_svc_jobs_create(fx->store, fake_publish, fx);
    assert_non_null(fx->jobs);
    ota_svc_jobs_set_log(fx->jobs, fake_log, fx);
}

static void stop_service(fx_t *fx)
{
    ota_svc_jobs_destroy(fx->jobs);
    ota_store_close(fx->store);
    fx->jobs = NULL;
    fx->store = NULL;
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/otter-jobs-test-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    start_service(fx);
    assert_int_equal(ota_store_open(fx->dir, &fx->cli), OTA_STORE_OK);
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof name, "dev%d", i);
        assert_int_equal(ota_store_thing_create(fx->cli, name, T0), OTA_STORE_OK);
    }
    ota_store_stream_file_t f = {0, "/tmp/fw.bin", 366816};
    assert_int_equal(ota_store_stream_create(fx->cli, "AFR_OTA-s1", "fw", &f, 1, T0), OTA_STORE_OK);
    ota_svc_jobs_tick(fx->jobs, T0); /* nothing to announce yet */
    assert_int_equal(fx->n, 0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    clear(fx);
    clear_lists(fx);
    stop_service(fx);
    ota_store_close(fx->cli);
    nftw(fx->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

static const char DOC[] = "{\"afr_ota\":{\"protocols\":[\"MQTT\"],\"streamname\":\"AFR_OTA-s1\","
                          "\"files\":[{\"filepath\":\"firmware.bin\",\"filesize\":366816,"
                          "\"fileid\":0,\"certfile\":\"codesign.crt\",\"fileType\":0,"
                          "\"update_data_url\":null,\"auth_scheme\":null,"
                          "\"sig-sha256-ecdsa\":\"MEUCIQ\"}]}}";

typedef struct {
    uint32_t timeout_min, rate, abort_pct, abort_min;
} opts_t;

static void create_job(fx_t *fx, const char *id, const char *const *things, size_t n, opts_t o,
                       int64_t now)
{
    ota_store_job_spec_t spec = {0};
    spec.job_id = id;
    spec.document = DOC;
    spec.stream_id = "AFR_OTA-s1";
    spec.things = things;
    spec.n_things = n;
    spec.in_progress_timeout_min = o.timeout_min;
    spec.rollout_per_minute = o.rate;
    spec.abort_failure_percent = o.abort_pct;
    spec.abort_min_finished = o.abort_min;
    assert_int_equal(ota_store_job_create(fx->cli, &spec, now), OTA_STORE_OK);
}

static int handle(fx_t *fx, const char *topic, const char *payload, int64_t now)
{
    return ota_svc_jobs_handle(fx->jobs, topic, payload, payload ? strlen(payload) : 0, now);
}

/** The only message on a topic since the last clear (fails if none or several). */
static cJSON *only(fx_t *fx, const char *topic)
{
    cJSON *found = NULL;
    int count = 0;
    for (int i = 0; i < fx->n; i++) {
        if (strcmp(fx->msgs[i].topic, topic) == 0) {
            count++;
            cJSON_Delete(found);
            found = cJSON_Parse(fx->msgs[i].payload);
            assert_non_null(found);
        }
    }
    if (count != 1) {
        fprintf(stderr, "expected one message on %s, got %d; published:\n", topic, count);
        for (int i = 0; i < fx->n; i++)
            fprintf(stderr, "  %s %s\n", fx->msgs[i].topic, fx->msgs[i].payload);
    }
    assert_int_equal(count, 1);
    return found;
}

static int count_on(fx_t *fx, const char *topic)
{
    int count = 0;
    for (int i = 0; i < fx->n; i++)
        count += strcmp(fx->msgs[i].topic, topic) == 0;
    return count;
}

static const char *raw_on(fx_t *fx, const char *topic)
{
    for (int i = fx->n - 1; i >= 0; i--)
        if (strcmp(fx->msgs[i].topic, topic) == 0)
            return fx->msgs[i].payload;
    return NULL;
}

static const char *str(cJSON *obj, const char *key)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

static double num(cJSON *obj, const char *key)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static cJSON *obj(cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

/** Checks a rejection: code, echoed token (or none), timestamp. */
static void expect_rejected(fx_t *fx, const char *topic, const char *code, const char *token,
                            int64_t now)
{
    cJSON *r = only(fx, topic);
    assert_string_equal(str(r, "code"), code);
    assert_true(strlen(str(r, "message")) > 0);
    if (token)
        assert_string_equal(str(r, "clientToken"), token);
    else
        assert_null(obj(r, "clientToken"));
    assert_int_equal((int64_t)num(r, "timestamp"), now / 1000);
    cJSON_Delete(r);
}

#define NOTIFY(t) "$aws/things/" t "/jobs/notify-next"
#define NEXTGET(t) "$aws/things/" t "/jobs/$next/get"
#define UPDATE(t, j) "$aws/things/" t "/jobs/" j "/update"

/* ---- topics and dispatch ---- */

static void test_topics_and_foreign_messages(void **state)
{
    fx_t *fx = *state;
    const char *const *t = ota_svc_jobs_topics();
    int n = 0;
    for (; t[n]; n++)
        ;
    assert_int_equal(n, 1);
    assert_string_equal(t[0], "$aws/things/+/jobs/#"); /* unknown requests get InvalidTopic */
    /* not ours: stream topics, other prefixes */
    assert_int_equal(handle(fx, "$aws/things/dev0/streams/s/get/cbor", "", T0), 0);
    assert_int_equal(handle(fx, "$aws/things/dev0/shadow/get", "{}", T0), 0);
    /* our own answers and notices coming back: skipped, never answered */
    assert_int_equal(handle(fx, NOTIFY("dev0"), "{}", T0), 1);
    assert_int_equal(handle(fx, "$aws/things/dev0/jobs/notify", "{}", T0), 1);
    assert_int_equal(handle(fx, NEXTGET("dev0") "/accepted", "{}", T0), 1);
    assert_int_equal(handle(fx, UPDATE("dev0", "j") "/rejected", "{}", T0), 1);
    assert_int_equal(handle(fx, "hello/world", "{}", T0), 0);
    assert_int_equal(fx->n, 0);
}

static void test_next_get_nothing_pending(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(handle(fx, NEXTGET("dev0"), "{\"clientToken\":\"1:dev0\"}", T0 + 1500), 1);
    cJSON *a = only(fx, NEXTGET("dev0") "/accepted");
    assert_string_equal(str(a, "clientToken"), "1:dev0");
    assert_int_equal((int64_t)num(a, "timestamp"), (T0 + 1500) / 1000);
    assert_null(obj(a, "execution"));
    cJSON_Delete(a);
    assert_int_equal(fx->n, 1); /* no notify-next when there is nothing */
    assert_int_equal(fx->msgs[0].qos, 1);
    /* unknown thing: same answer; empty payload is an empty request */
    clear(fx);
    assert_int_equal(handle(fx, NEXTGET("ghost"), NULL, T0), 1);
    a = only(fx, NEXTGET("ghost") "/accepted");
    assert_null(obj(a, "execution"));
    assert_null(obj(a, "clientToken"));
    cJSON_Delete(a);
}

static void test_notify_on_create_and_next_get(void **state)
{
    fx_t *fx = *state;
    const char *things[] = {"dev0", "dev1"};
    create_job(fx, "job-1", things, 2, (opts_t){0}, T0);
    ota_svc_jobs_tick(fx->jobs, T0 + 200);
    assert_int_equal(fx->n, 2);
    cJSON *n = only(fx, NOTIFY("dev0"));
    assert_null(obj(n, "clientToken"));
    assert_int_equal((int64_t)num(n, "timestamp"), (T0 + 200) / 1000);
    cJSON *e = obj(n, "execution");
    assert_string_equal(str(e, "jobId"), "job-1");
    assert_string_equal(str(e, "thingName"), "dev0");
    assert_string_equal(str(e, "status"), "QUEUED");
    assert_int_equal((int64_t)num(e, "versionNumber"), 1);
    assert_int_equal((int64_t)num(e, "executionNumber"), 1);
    assert_int_equal((int64_t)num(e, "queuedAt"), T0 / 1000);
    assert_int_equal((int64_t)num(e, "lastUpdatedAt"), T0 / 1000);
    assert_null(obj(e, "startedAt"));
    assert_null(obj(e, "statusDetails"));
    cJSON *doc = cJSON_Parse(DOC);
    assert_true(cJSON_Compare(obj(e, "jobDocument"), doc, 1));
    cJSON_Delete(doc);
    cJSON_Delete(n);
    cJSON_Delete(only(fx, NOTIFY("dev1")));
    /* announced once: further ticks are quiet */
    clear(fx);
    ota_svc_jobs_tick(fx->jobs, T0 + 400);
    ota_svc_jobs_tick(fx->jobs, T0 + 10000);
    assert_int_equal(fx->n, 0);
    /* $next/get: accepted, and the same execution again on notify-next */
    assert_int_equal(handle(fx, NEXTGET("dev0"), "{\"clientToken\":\":dev0\"}", T0 + 11000), 1);
    cJSON *a = only(fx, NEXTGET("dev0") "/accepted");
    assert_string_equal(str(a, "clientToken"), ":dev0");
    assert_string_equal(str(obj(a, "execution"), "jobId"), "job-1");
    assert_non_null(obj(obj(a, "execution"), "jobDocument"));
    n = only(fx, NOTIFY("dev0"));
    assert_true(cJSON_Compare(obj(a, "execution"), obj(n, "execution"), 1));
    cJSON_Delete(a);
    cJSON_Delete(n);
    /* includeJobDocument false leaves the document out of the answer */
    clear(fx);
    handle(fx, NEXTGET("dev0"), "{\"includeJobDocument\":false}", T0 + 12000);
    a = only(fx, NEXTGET("dev0") "/accepted");
    assert_null(obj(obj(a, "execution"), "jobDocument"));
    cJSON_Delete(a);
}

/*
 * Instances sharing the Jobs API may apply one device's updates out of order: a download
 * progress report that arrives after the self-test step is accepted and not applied, so the
 * rebooted device still finds "self_test" and "updatedBy". With its own expectedVersion, a
 * device orders its updates itself, and the rule does not apply.
 */
static void test_late_progress_keeps_self_test(void **state)
{
    fx_t *fx = *state;
    const char *things[] = {"dev0"};
    create_job(fx, "job-1", things, 1, (opts_t){0}, T0);
    ota_svc_jobs_tick(fx->jobs, T0);
    handle(fx, UPDATE("dev0", "job-1"),
           "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"receive\":\"2/3\"}}", T0 + 1000);
    handle(fx, UPDATE("dev0", "job-1"),
           "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"self_test\":\"ready\","
           "\"updatedBy\":\"0x00090002\"}}",
           T0 + 2000);
    clear(fx);
    handle(fx, UPDATE("dev0", "job-1"),
           "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"receive\":\"3/3\"},"
           "\"includeJobExecutionState\":true}",
           T0 + 3000);
    cJSON *a = only(fx, UPDATE("dev0", "job-1") "/accepted");
    assert_int_equal((int64_t)num(obj(a, "executionState"), "versionNumber"), 3);
    assert_string_equal(str(obj(obj(a, "executionState"), "statusDetails"), "self_test"), "ready");
    cJSON_Delete(a);
    ota_store_execution_t x;
    assert_int_equal(ota_store_execution_get(fx->cli, "job-1", "dev0", &x), OTA_STORE_OK);
    assert_string_equal(x.status_details, "{\"self_test\":\"ready\",\"updatedBy\":\"0x00090002\"}");
    assert_int_equal(x.version_number, 3);
    ota_store_execution_free(&x);
    assert_non_null(strstr(fx->log, "arrived after the self-test step was not applied"));
    /* without statusDetails nothing is erased: applied */
    clear(fx);
    handle(fx, UPDATE("dev0", "job-1"), "{\"status\":\"IN_PROGRESS\"}", T0 + 4000);
    cJSON_Delete(only(fx, UPDATE("dev0", "job-1") "/accepted"));
    assert_int_equal(ota_store_execution_get(fx->cli, "job-1", "dev0", &x), OTA_STORE_OK);
    assert_int_equal(x.version_number, 4);
    assert_non_null(strstr(x.status_details, "updatedBy"));
    ota_store_execution_free(&x);
    /* the device's own expectedVersion: applied as it says */
    clear(fx);
    handle(fx, UPDATE("dev0", "job-1"),
           "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"receive\":\"1/3\"},"
           "\"expectedVersion\":4}",
           T0 + 5000);
    cJSON_Delete(only(fx, UPDATE("dev0", "job-1") "/accepted"));
    assert_int_equal(ota_store_execution_get(fx->cli, "job-1", "dev0", &x), OTA_STORE_OK);
    assert_string_equal(x.status_details, "{\"receive\":\"1/3\"}");
    assert_int_equal(x.version_number, 5);
    ota_store_execution_free(&x);
}

/* The FreeRTOS OTA agent's whole sequence, byte for byte. */
static void test_freertos_sequence(void **state)
{
    fx_t *fx = *state;
    const char *things[] = {"dev0"};
    create_job(fx, "job-1", things, 1, (opts_t){0}, T0);
    ota_svc_jobs_tick(fx->jobs, T0);
    clear(fx);
    static const char *const steps[] = {
        "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"receive\":\"1/3\"}}",
        "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"receive\":\"3/3\"}}",
        ("{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"self_test\":\"ready\","
         "\"updatedBy\":\"0x00090002\"}}"),
    };
    int64_t now = T0 + 1000;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(handle(fx, UPDATE("dev0", "job-1"), steps[i], now), 1);
        cJSON *a = only(fx, UPDATE("dev0", "job-1") "/accepted");
        assert_int_equal((int64_t)num(a, "timestamp"), now / 1000);
        assert_null(obj(a, "executionState")); /* not asked for */
        cJSON_Delete(a);
        assert_int_equal(count_on(fx, NOTIFY("dev0")), 0); /* same job: no notify-next */
        clear(fx);
        now += 1000;
    }
    /* "reboot": the device asks again and reads its own statusDetails back verbatim */
    handle(fx, NEXTGET("dev0"), "{\"clientToken\":\"2:dev0\"}", now);
    const char *raw = raw_on(fx, NEXTGET("dev0") "/accepted");
    assert_non_null(strstr(raw, "\"statusDetails\":{\"self_test\":\"ready\","
                                "\"updatedBy\":\"0x00090002\"}"));
    cJSON *a = only(fx, NEXTGET("dev0") "/accepted");
    cJSON *e = obj(a, "execution");
    assert_string_equal(str(e, "status"), "IN_PROGRESS");
    assert_int_equal((int64_t)num(e, "versionNumber"), 4); /* 1 + three updates */
    assert_int_equal((int64_t)num(e, "startedAt"), (T0 + 1000) / 1000);
    assert_int_equal((int64_t)num(e, "lastUpdatedAt"), (T0 + 3000) / 1000);
    cJSON_Delete(a);
    clear(fx);
    handle(fx, UPDATE("dev0", "job-1"),
           "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"self_test\":\"active\","
           "\"updatedBy\":\"0x00090003\"},\"includeJobExecutionState\":true,\"clientToken\":"
           "\"t5\"}",
           now);
    a = only(fx, UPDATE("dev0", "job-1") "/accepted");
    assert_string_equal(str(a, "clientToken"), "t5");
    assert_string_equal(str(obj(a, "executionState"), "status"), "IN_PROGRESS");
    assert_int_equal((int64_t)num(obj(a, "executionState"), "versionNumber"), 5);
    assert_string_equal(str(obj(obj(a, "executionState"), "statusDetails"), "self_test"), "active");
    cJSON_Delete(a);
    clear(fx);
    handle(fx, UPDATE("dev0", "job-1"),
           "{\"status\":\"SUCCEEDED\",\"statusDetails\":{\"reason\":\"accepted  v0.9.3\","
           "\"updatedBy\":\"  v0.9.2\"}}",
           now + 1000);
    cJSON_Delete(only(fx, UPDATE("dev0", "job-1") "/accepted"));
    /* the queue is empty now: notify-next without execution, after the answer */
    cJSON *n = only(fx, NOTIFY("dev0"));
    assert_null(obj(n, "execution"));
    cJSON_Delete(n);
    assert_string_equal(fx->msgs[0].topic, UPDATE("dev0", "job-1") "/accepted");
    ota_store_execution_t x;
    assert_int_equal(ota_store_execution_get(fx->cli, "job-1", "dev0", &x), OTA_STORE_OK);
    assert_int_equal(x.status, OTA_STORE_EXEC_SUCCEEDED);
    assert_string_equal(x.status_details,
                        "{\"reason\":\"accepted  v0.9.3\",\"updatedBy\":\"  v0.9.2\"}");
    assert_int_equal(x.version_number, 6);
    ota_store_execution_free(&x);
    ota_store_job_t j;
    assert_int_equal(ota_store_job_get(fx->cli, "job-1", &j), OTA_STORE_OK);
    assert_int_equal(j.status, OTA_STORE_JOB_COMPLETED);
    ota_store_job_free(&j);
    assert_non_null(strstr(fx->log, "job-1: IN_PROGRESS -> SUCCEEDED"));
    assert_non_null(strstr(fx->log, "job job-1 is COMPLETED"));
    /* an update after the terminal status is refused with the current state */
    clear(fx);
    handle(fx, UPDATE("dev0", "job-1"), "{\"status\":\"IN_PROGRESS\",\"clientToken\":\"late\"}",
           now + 2000);
    cJSON *r = only(fx, UPDATE("dev0", "job-1") "/rejected");
    assert_string_equal(str(r, "code"), "InvalidStateTransition");
    assert_string_equal(str(r, "clientToken"), "late");
    assert_string_equal(str(obj(r, "executionState"), "status"), "SUCCEEDED");
    assert_int_equal((int64_t)num(obj(r, "executionState"), "versionNumber"), 6);
    cJSON_Delete(r);
}

/* statusDetails are stored and given back as the service serializes them, compact, whatever
 * spacing and escapes the device wrote: the device's padding is neither stored nor sent. */
static void test_status_details_compact(void **state)
{
    fx_t *fx = *state;
    const char *things[] = {"dev0"};
    create_job(fx, "job-v", things, 1, (opts_t){0}, T0);
    ota_svc_jobs_tick(fx->jobs, T0);
    clear(fx);
    handle(fx, UPDATE("dev0", "job-v"),
           "{ \"statusDetails\" :  { \"a\" : \"x\\u00e9\\\"q\",\n\"b\":\"}\" } , "
           "\"status\":\"IN_PROGRESS\" }",
           T0 + 1000);
    cJSON_Delete(only(fx, UPDATE("dev0", "job-v") "/accepted"));
    ota_store_execution_t x;
    assert_int_equal(ota_store_execution_get(fx->cli, "job-v", "dev0", &x), OTA_STORE_OK);
    assert_string_equal(x.status_details, "{\"a\":\"x\xc3\xa9\\\"q\",\"b\":\"}\"}");
    ota_store_execution_free(&x);
    clear(fx);
    handle(fx, NEXTGET("dev0"), "{}", T0 + 2000);
    assert_non_null(strstr(raw_on(fx, NEXTGET("dev0") "/accepted"),
                           "\"statusDetails\":{\"a\":\"x\xc3\xa9\\\"q\",\"b\":\"}\"}"));
    cJSON *a = only(fx, NEXTGET("dev0") "/accepted");
    assert_string_equal(str(obj(obj(a, "execution"), "statusDetails"), "b"), "}");
    cJSON_Delete(a);
}

/* A device that asked before the announcement went out is not told twice. */
static void test_next_get_counts_as_announcement(void **state)
{
    fx_t *fx = *state;
    const char *things[] = {"dev0"};
    create_job(fx, "job-1", things, 1, (opts_t){0}, T0);
    handle(fx, NEXTGET("dev0"), "{}", T0 + 100); /* before any tick */
    assert_int_equal(count_on(fx, NOTIFY("dev0")), 1);
    clear(fx);
    ota_svc_jobs_tick(fx->jobs, T0 + 200);
    ota_svc_jobs_tick(fx->jobs, T0 + 6000);
    assert_int_equal(fx->n, 0);
}

/* A change that leaves the next job as it was announces nothing. */
static void test_no_notify_when_next_job_unchanged(void **state)
{
    fx_t *fx = *state;
    const char *things[] = {"dev0", "dev1"};
    create_job(fx, "job-a", things, 1, (opts_t){0}, T0);
    create_job(fx, "job-b", things, 2, (opts_t){0}, T0 + 1000);
    ota_svc_jobs_tick(fx->jobs, T0 + 1000);
    assert_int_equal(fx->n, 2); /* dev0: job-a, dev1: job-b */
    clear(fx);
    assert_int_equal(ota_store_job_cancel(fx->cli, "job-b", T0 + 2000), OTA_STORE_OK);
    ota_svc_jobs_tick(fx->jobs, T0 + 2200);
    cJSON *n = only(fx, NOTIFY("dev1"));
    assert_null(obj(n, "execution"));
    cJSON_Delete(n);
    assert_int_equal(fx->n, 1); /* dev0's next is still job-a */
    clear(fx);
    handle(fx, UPDATE("dev0", "job-a"), "{\"status\":\"IN_PROGRESS\"}", T0 + 3000);
    ota_svc_jobs_tick(fx->jobs, T0 + 3200);
    assert_int_equal(fx->n, 1); /* the answer only */
}

static void test_failed_with_reason_moves_to_next_job(void **state)
{
    fx_t *fx = *state;
    const char *things[] = {"dev0"};
    create_job(fx, "job-a", things, 1, (opts_t){0}, T0);
    create_job(fx, "job-b", things, 1, (opts_t){0}, T0 + 1000);
    ota_svc_jobs_tick(fx->jobs, T0 + 1000);
    cJSON *n = only(fx, NOTIFY("dev0"));
    assert_string_equal(str(obj(n, "execution"), "jobId"), "job-a");
    cJSON_Delete(n);
    clear(fx);
    handle(fx, UPDATE("dev0", "job-a"),
           "{\"status\":\"FAILED\",\"statusDetails\":{\"reason\":\"rejected: 0x00000010\"}}",
           T0 + 2000);
    cJSON_Delete(only(fx, UPDATE("dev0", "job-a") "/accepted"));
    n = only(fx, NOTIFY("dev0"));
    assert_string_equal(str(obj(n, "execution"), "jobId"), "job-b");
    cJSON_Delete(n);
    ota_store_execution_t x;
    assert_int_equal(ota_store_execution_get(fx->cli, "job-a", "dev0", &x), OTA_STORE_OK);
    assert_int_equal(x.status, OTA_STORE_EXEC_FAILED);
    assert_string_equal(x.status_details, "{\"reason\":\"rejected: 0x00000010\"}");
    ota_store_execution_free(&x);
}

static void test_update_rejections(void **state)
{
    fx_t *fx = *state;
    const char *things[] = {"dev0"};
    create_job(fx, "job-1", things, 1, (opts_t){0}, T0);
    ota_svc_jobs_tick(fx->jobs, T0);
    clear(fx);
    const char *U = UPDATE("dev0", "job-1");
    const char *R = UPDATE("dev0", "job-1") "/rejected";
    struct {
        const char *payload;
        const char *code;
        const char *token;
    } cases[] = {
        {"{\"status\":\"IN_PROGRESS\",\"clientToken\":\"abc\"", "InvalidJson", "abc"},
        {"not json at all", "InvalidJson", NULL},
        {"[1,2]", "InvalidRequest", NULL},
        {"{\"clientToken\":\"k\"}", "InvalidRequest", "k"},
        {"{\"status\":\"DONE\",\"clientToken\":\"k\"}", "InvalidRequest", "k"},
        {"{\"status\":\"TIMED_OUT\"}", "InvalidRequest", NULL},
        {"{\"status\":\"QUEUED\"}", "InvalidRequest", NULL},
        {"{\"status\":\"CANCELED\"}", "InvalidRequest", NULL},
        {"{\"status\":7}", "InvalidRequest", NULL},
        {"{\"status\":\"IN_PROGRESS\",\"statusDetails\":\"x\"}", "InvalidRequest", NULL},
        {"{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"a\":1}}", "InvalidRequest", NULL},
        {"{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"a\":{\"b\":\"c\"}}}", "InvalidRequest",
         NULL},
        {"{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"1\":\"a\",\"2\":\"a\",\"3\":\"a\","
         "\"4\":\"a\",\"5\":\"a\",\"6\":\"a\",\"7\":\"a\",\"8\":\"a\",\"9\":\"a\",\"10\":\"a\","
         "\"11\":\"a\"}}",
         "InvalidRequest", NULL},
        {"{\"status\":\"IN_PROGRESS\",\"expectedVersion\":\"x\"}", "InvalidRequest", NULL},
        {"{\"status\":\"IN_PROGRESS\",\"expectedVersion\":1.5}", "InvalidRequest", NULL},
        {"{\"status\":\"IN_PROGRESS\",\"stepTimeoutInMinutes\":0}", "InvalidRequest", NULL},
        {"{\"status\":\"IN_PROGRESS\",\"stepTimeoutInMinutes\":10081}", "InvalidRequest", NULL},
        {"{\"status\":\"IN_PROGRESS\",\"includeJobExecutionState\":\"yes\"}", "InvalidRequest",
         NULL},
        {"{\"status\":\"IN_PROGRESS\",\"clientToken\":5}", "InvalidRequest", NULL},
        {"{\"status\":\"IN_PROGRESS\",\"clientToken\":"
         "\"12345678901234567890123456789012345678901234567890123456789012345\"}",
         "InvalidRequest", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(handle(fx, U, cases[i].payload, T0 + 5000), 1);
        expect_rejected(fx, R, cases[i].code, cases[i].token, T0 + 5000);
        assert_int_equal(fx->n, 1);
        clear(fx);
    }
    /* nothing was changed by any of them */
    ota_store_execution_t x;
    assert_int_equal(ota_store_execution_get(fx->cli, "job-1", "dev0", &x), OTA_STORE_OK);
    assert_int_equal(x.version_number, 1);
    assert_int_equal(x.status, OTA_STORE_EXEC_QUEUED);
    ota_store_execution_free(&x);

    /* 10 keys and 1024-character values are the limits, not errors */
    char value[1026];
    memset(value, 'x', 1024);
    value[1024] = '\0';
    char payload[1600];
    snprintf(payload, sizeof payload,
             "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"1\":\"a\",\"2\":\"a\",\"3\":\"a\","
             "\"4\":\"a\",\"5\":\"a\",\"6\":\"a\",\"7\":\"a\",\"8\":\"a\",\"9\":\"a\",\"v\":\"%s\"}"
             ",\"expectedVersion\":1}",
             value);
    handle(fx, U, payload, T0 + 6000);
    cJSON_Delete(only(fx, UPDATE("dev0", "job-1") "/accepted"));
    clear(fx);
    memset(value, 'x', 1025);
    value[1025] = '\0';
    snprintf(payload, sizeof payload,
             "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"v\":\"%s\"}}", value);
    handle(fx, U, payload, T0 + 6000);
    expect_rejected(fx, R, "InvalidRequest", NULL, T0 + 6000);
    clear(fx);

    /* expectedVersion mismatch carries the current state */
    handle(fx, U, "{\"status\":\"IN_PROGRESS\",\"expectedVersion\":1,\"clientToken\":\"v\"}",
           T0 + 7000);
    cJSON *r = only(fx, R);
    assert_string_equal(str(r, "code"), "VersionMismatch");
    assert_string_equal(str(r, "clientToken"), "v");
    assert_int_equal((int64_t)num(obj(r, "executionState"), "versionNumber"), 2);
    assert_string_equal(str(obj(r, "executionState"), "status"), "IN_PROGRESS");
    cJSON_Delete(r);
    clear(fx);
    /* expectedVersion as a string is accepted (some agents quote numbers); the
     * document comes back when asked for */
    handle(fx, U,
           "{\"status\":\"IN_PROGRESS\",\"expectedVersion\":\"2\",\"includeJobDocument\":true}",
           T0 + 7000);
    cJSON *acc = only(fx, UPDATE("dev0", "job-1") "/accepted");
    cJSON *doc = cJSON_Parse(DOC);
    assert_true(cJSON_Compare(obj(acc, "jobDocument"), doc, 1));
    assert_null(obj(acc, "executionState"));
    cJSON_Delete(doc);
    cJSON_Delete(acc);
    clear(fx);
    /* started executions cannot be REJECTED */
    handle(fx, U, "{\"status\":\"REJECTED\"}", T0 + 8000);
    r = only(fx, R);
    assert_string_equal(str(r, "code"), "InvalidStateTransition");
    assert_string_equal(str(obj(r, "executionState"), "status"), "IN_PROGRESS");
    cJSON_Delete(r);
    clear(fx);
    /* unknown job, job of another thing, invalid ids */
    handle(fx, UPDATE("dev0", "nojob"), "{\"status\":\"FAILED\",\"clientToken\":\"n\"}", T0);
    expect_rejected(fx, UPDATE("dev0", "nojob") "/rejected", "ResourceNotFound", "n", T0);
    clear(fx);
    handle(fx, UPDATE("dev1", "job-1"), "{\"status\":\"FAILED\"}", T0);
    expect_rejected(fx, UPDATE("dev1", "job-1") "/rejected", "ResourceNotFound", NULL, T0);
    clear(fx);
    handle(fx, UPDATE("dev0", "bad:job"), "{\"status\":\"FAILED\",\"clientToken\":\"q\"}", T0);
    expect_rejected(fx, UPDATE("dev0", "bad:job") "/rejected", "InvalidTopic", "q", T0);
    clear(fx);
    handle(fx, UPDATE("dev0", "$next"), "{\"status\":\"FAILED\"}", T0);
    expect_rejected(fx, UPDATE("dev0", "$next") "/rejected", "InvalidTopic", NULL, T0);
    clear(fx);
    char topic[400];
    char longname[140];
    memset(longname, 'n', 129);
    longname[129] = '\0';
    snprintf(topic, sizeof topic, "$aws/things/%s/jobs/$next/get", longname);
    assert_int_equal(handle(fx, topic, "{}", T0), 1);
    strcat(topic, "/rejected");
    expect_rejected(fx, topic, "InvalidTopic", NULL, T0);
    clear(fx);
    /* a rejection never changed anything */
    assert_int_equal(ota_store_execution_get(fx->cli, "job-1", "dev0", &x), OTA_STORE_OK);
    assert_int_equal(x.version_number, 3);
    assert_string_equal(x.status_details ? "set" : "none", "set");
    ota_store_execution_free(&x);
}

static void test_get_pending_start_next_describe(void **state)
{
    fx_t *fx = *state;
    const char *things[] = {"dev0"};
    create_job(fx, "job-a", things, 1, (opts_t){0}, T0);
    create_job(fx, "job-b", things, 1, (opts_t){0}, T0 + 2000);
    create_job(fx, "job-c", things, 1, (opts_t){0}, T0 + 4000);
    ota_svc_jobs_tick(fx->jobs, T0 + 4000);
    clear(fx);
    handle(fx, "$aws/things/dev0/jobs/get", "{\"clientToken\":\"g\"}", T0 + 5000);
    cJSON *a = only(fx, "$aws/things/dev0/jobs/get/accepted");
    assert_string_equal(str(a, "clientToken"), "g");
    assert_int_equal(cJSON_GetArraySize(obj(a, "inProgressJobs")), 0);
    cJSON *q = obj(a, "queuedJobs");
    assert_int_equal(cJSON_GetArraySize(q), 3);
    assert_string_equal(str(cJSON_GetArrayItem(q, 0), "jobId"), "job-a");
    assert_string_equal(str(cJSON_GetArrayItem(q, 2), "jobId"), "job-c");
    assert_int_equal((int64_t)num(cJSON_GetArrayItem(q, 1), "queuedAt"), (T0 + 2000) / 1000);
    assert_int_equal((int64_t)num(cJSON_GetArrayItem(q, 1), "versionNumber"), 1);
    assert_int_equal((int64_t)num(cJSON_GetArrayItem(q, 1), "executionNumber"), 1);
    cJSON_Delete(a);
    clear(fx);
    /* start-next: the oldest QUEUED becomes IN_PROGRESS with the given details */
    handle(fx, "$aws/things/dev0/jobs/start-next",
           "{\"clientToken\":\"s\",\"statusDetails\":{\"k\":\"v\"},\"stepTimeoutInMinutes\":5}",
           T0 + 6000);
    a = only(fx, "$aws/things/dev0/jobs/start-next/accepted");
    cJSON *e = obj(a, "execution");
    assert_string_equal(str(e, "jobId"), "job-a");
    assert_string_equal(str(e, "status"), "IN_PROGRESS");
    assert_string_equal(str(obj(e, "statusDetails"), "k"), "v");
    assert_int_equal((int64_t)num(e, "versionNumber"), 2);
    assert_non_null(obj(e, "jobDocument"));
    cJSON_Delete(a);
    assert_int_equal(count_on(fx, NOTIFY("dev0")), 0); /* the next job is still job-a */
    clear(fx);
    ota_store_execution_t x;
    assert_int_equal(ota_store_execution_get(fx->cli, "job-a", "dev0", &x), OTA_STORE_OK);
    assert_int_equal(x.deadline_ms, T0 + 6000 + 5 * MIN);
    ota_store_execution_free(&x);
    /* start-next again: the IN_PROGRESS one is returned unchanged */
    handle(fx, "$aws/things/dev0/jobs/start-next", "{}", T0 + 7000);
    a = only(fx, "$aws/things/dev0/jobs/start-next/accepted");
    assert_string_equal(str(obj(a, "execution"), "jobId"), "job-a");
    assert_int_equal((int64_t)num(obj(a, "execution"), "versionNumber"), 2);
    cJSON_Delete(a);
    clear(fx);
    handle(fx, "$aws/things/dev0/jobs/get", "{}", T0 + 8000);
    a = only(fx, "$aws/things/dev0/jobs/get/accepted");
    assert_int_equal(cJSON_GetArraySize(obj(a, "inProgressJobs")), 1);
    assert_int_equal(cJSON_GetArraySize(obj(a, "queuedJobs")), 2);
    assert_int_equal((int64_t)num(cJSON_GetArrayItem(obj(a, "inProgressJobs"), 0), "startedAt"),
                     (T0 + 6000) / 1000);
    cJSON_Delete(a);
    clear(fx);
    /* start-next with invalid details is refused */
    handle(fx, "$aws/things/dev0/jobs/start-next", "{\"statusDetails\":[1]}", T0);
    expect_rejected(fx, "$aws/things/dev0/jobs/start-next/rejected", "InvalidRequest", NULL, T0);
    clear(fx);
    /* start-next with nothing pending: accepted without execution */
    handle(fx, "$aws/things/dev1/jobs/start-next", "{}", T0);
    a = only(fx, "$aws/things/dev1/jobs/start-next/accepted");
    assert_null(obj(a, "execution"));
    cJSON_Delete(a);
    clear(fx);
    /* <job>/get */
    handle(fx, "$aws/things/dev0/jobs/job-b/get", "{\"clientToken\":\"d\"}", T0);
    a = only(fx, "$aws/things/dev0/jobs/job-b/get/accepted");
    assert_string_equal(str(a, "clientToken"), "d");
    assert_string_equal(str(obj(a, "execution"), "jobId"), "job-b");
    assert_string_equal(str(obj(a, "execution"), "status"), "QUEUED");
    assert_non_null(obj(obj(a, "execution"), "jobDocument"));
    cJSON_Delete(a);
    assert_int_equal(count_on(fx, NOTIFY("dev0")), 0); /* only $next/get repeats on notify */
    clear(fx);
    handle(fx, "$aws/things/dev0/jobs/job-b/get", "{\"includeJobDocument\":false}", T0);
    a = only(fx, "$aws/things/dev0/jobs/job-b/get/accepted");
    assert_null(obj(obj(a, "execution"), "jobDocument"));
    cJSON_Delete(a);
    clear(fx);
    handle(fx, "$aws/things/dev0/jobs/job-b/get", "{\"executionNumber\":2}", T0);
    expect_rejected(fx, "$aws/things/dev0/jobs/job-b/get/rejected", "ResourceNotFound", NULL, T0);
    clear(fx);
    handle(fx, "$aws/things/dev0/jobs/nojob/get", "{\"clientToken\":\"z\"}", T0);
    expect_rejected(fx, "$aws/things/dev0/jobs/nojob/get/rejected", "ResourceNotFound", "z", T0);
    clear(fx);
    handle(fx, "$aws/things/dev0/jobs/get", "{bad", T0);
    expect_rejected(fx, "$aws/things/dev0/jobs/get/rejected", "InvalidJson", NULL, T0);
    clear(fx);
    handle(fx, NEXTGET("dev0"), "{\"clientToken\":\"tok\",", T0);
    expect_rejected(fx, NEXTGET("dev0") "/rejected", "InvalidJson", "tok", T0);
}

static void test_cancel_from_another_handle(void **state)
{
    fx_t *fx = *state;
    const char *things[] = {"dev0", "dev1"};
    const char *dev0[] = {"dev0"};
    create_job(fx, "job-a", things, 2, (opts_t){0}, T0);
    create_job(fx, "job-b", dev0, 1, (opts_t){0}, T0 + 1000);
    ota_svc_jobs_tick(fx->jobs, T0 + 1000);
    clear(fx);
    handle(fx, UPDATE("dev0", "job-a"), "{\"status\":\"IN_PROGRESS\"}", T0 + 2000);
    clear(fx);
    assert_int_equal(ota_store_job_cancel(fx->cli, "job-a", T0 + 3000), OTA_STORE_OK);
    ota_svc_jobs_tick(fx->jobs, T0 + 3200);
    cJSON *n = only(fx, NOTIFY("dev0"));
    assert_string_equal(str(obj(n, "execution"), "jobId"), "job-b");
    cJSON_Delete(n);
    n = only(fx, NOTIFY("dev1"));
    assert_null(obj(n, "execution"));
    cJSON_Delete(n);
    assert_int_equal(fx->n, 2);
    clear(fx);
    /* the device, unaware, reports on the canceled job */
    handle(fx, UPDATE("dev0", "job-a"),
           "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"receive\":\"9/9\"}}", T0 + 4000);
    cJSON *r = only(fx, UPDATE("dev0", "job-a") "/rejected");
    assert_string_equal(str(r, "code"), "TerminalStateReached");
    assert_string_equal(str(obj(r, "executionState"), "status"), "CANCELED");
    cJSON_Delete(r);
    clear(fx);
    ota_svc_jobs_tick(fx->jobs, T0 + 4200);
    assert_int_equal(fx->n, 0);
}

static void test_in_progress_timeout(void **state)
{
    fx_t *fx = *state;
    const char *things[] = {"dev0"};
    create_job(fx, "job-t", things, 1, (opts_t){.timeout_min = 2}, T0);
    ota_svc_jobs_tick(fx->jobs, T0);
    clear(fx);
    handle(fx, UPDATE("dev0", "job-t"), "{\"status\":\"IN_PROGRESS\"}", T0 + 1000);
    clear(fx);
    for (int64_t t = T0 + 1200; t < T0 + 1000 + 2 * MIN; t += 200)
        ota_svc_jobs_tick(fx->jobs, t);
    assert_int_equal(fx->n, 0);
    ota_svc_jobs_tick(fx->jobs, T0 + 1000 + 2 * MIN);
    cJSON *n = only(fx, NOTIFY("dev0"));
    assert_null(obj(n, "execution"));
    cJSON_Delete(n);
    assert_non_null(strstr(fx->log, "TIMED_OUT"));
    clear(fx);
    handle(fx, "$aws/things/dev0/jobs/job-t/get", "{}", T0 + 3 * MIN);
    cJSON *d = only(fx, "$aws/things/dev0/jobs/job-t/get/accepted");
    assert_string_equal(str(obj(d, "execution"), "status"), "TIMED_OUT");
    assert_int_equal((int64_t)num(obj(d, "execution"), "versionNumber"), 3);
    cJSON_Delete(d);
    clear(fx);
    handle(fx, UPDATE("dev0", "job-t"), "{\"status\":\"SUCCEEDED\"}", T0 + 3 * MIN);
    cJSON *r = only(fx, UPDATE("dev0", "job-t") "/rejected");
    assert_string_equal(str(r, "code"), "TerminalStateReached");
    assert_string_equal(str(obj(r, "executionState"), "status"), "TIMED_OUT");
    cJSON_Delete(r);
    ota_store_job_t j;
    assert_int_equal(ota_store_job_get(fx->cli, "job-t", &j), OTA_STORE_OK);
    assert_int_equal(j.status, OTA_STORE_JOB_COMPLETED);
    assert_int_equal(j.n_timed_out, 1);
    ota_store_job_free(&j);
}

static void test_step_timeout(void **state)
{
    fx_t *fx = *state;
    const char *things[] = {"dev0"};
    create_job(fx, "job-s", things, 1, (opts_t){0}, T0);
    ota_svc_jobs_tick(fx->jobs, T0);
    clear(fx);
    handle(fx, UPDATE("dev0", "job-s"), "{\"status\":\"IN_PROGRESS\",\"stepTimeoutInMinutes\":1}",
           T0);
    clear(fx);
    ota_svc_jobs_tick(fx->jobs, T0 + MIN - 1);
    assert_int_equal(fx->n, 0);
    /* a new update with a step timeout moves the deadline */
    handle(fx, UPDATE("dev0", "job-s"), "{\"status\":\"IN_PROGRESS\",\"stepTimeoutInMinutes\":1}",
           T0 + 50000);
    clear(fx);
    ota_svc_jobs_tick(fx->jobs, T0 + MIN + 1000);
    assert_int_equal(fx->n, 0);
    ota_svc_jobs_tick(fx->jobs, T0 + 50000 + MIN);
    cJSON_Delete(only(fx, NOTIFY("dev0")));
}

static void test_rollout_over_minutes(void **state)
{
    fx_t *fx = *state;
    const char *things[] = {"dev0", "dev1", "dev2", "dev3"};
    create_job(fx, "job-r", things, 4, (opts_t){.rate = 1}, T0);
    int announced[4] = {0};
    int64_t when[4] = {0};
    for (int64_t t = T0; t <= T0 + 5 * MIN; t += 200) {
        ota_svc_jobs_tick(fx->jobs, t);
        for (int i = 0; i < fx->n; i++) {
            int d = fx->msgs[i].topic[strlen("$aws/things/dev")] - '0';
            assert_true(strstr(fx->msgs[i].topic, "notify-next") != NULL);
            announced[d]++;
            when[d] = t;
        }
        clear(fx);
        /* a thing not yet released sees nothing */
        if (t == T0 + 30000) {
            handle(fx, NEXTGET("dev1"), "{}", t);
            cJSON *a = only(fx, NEXTGET("dev1") "/accepted");
            assert_null(obj(a, "execution"));
            cJSON_Delete(a);
            clear(fx);
        }
    }
    for (int d = 0; d < 4; d++) {
        assert_int_equal(announced[d], 1);
        assert_int_equal(when[d], T0 + d * MIN);
    }
}

static void test_rollout_survives_restart(void **state)
{
    fx_t *fx = *state;
    const char *things[] = {"dev0", "dev1", "dev2"};
    create_job(fx, "job-r", things, 3, (opts_t){.rate = 1}, T0);
    ota_svc_jobs_tick(fx->jobs, T0);
    cJSON_Delete(only(fx, NOTIFY("dev0")));
    clear(fx);
    stop_service(fx); /* down for two and a half minutes */
    start_service(fx);
    ota_svc_jobs_tick(fx->jobs, T0 + 150000);
    assert_int_equal(fx->n, 2); /* the backlog: dev1 and dev2, dev0 not again */
    cJSON_Delete(only(fx, NOTIFY("dev1")));
    cJSON_Delete(only(fx, NOTIFY("dev2")));
}

static void test_abort_criteria(void **state)
{
    fx_t *fx = *state;
    const char *things[] = {"dev0", "dev1", "dev2", "dev3"};
    create_job(fx, "job-x", things, 4, (opts_t){.abort_pct = 50, .abort_min = 2}, T0);
    ota_svc_jobs_tick(fx->jobs, T0);
    clear(fx);
    handle(fx, UPDATE("dev0", "job-x"),
           "{\"status\":\"FAILED\",\"statusDetails\":{\"reason\":\"0x000000e3: 0x00001234\"}}",
           T0 + 1000);
    assert_int_equal(count_on(fx, NOTIFY("dev0")), 1);
    assert_int_equal(fx->n, 2); /* the answer and dev0's notify-next only */
    clear(fx);
    handle(fx, UPDATE("dev1", "job-x"), "{\"status\":\"IN_PROGRESS\"}", T0 + 1500);
    clear(fx);
    handle(fx, UPDATE("dev2", "job-x"), "{\"status\":\"FAILED\"}", T0 + 2000);
    /* 2 of 2 finished failed: aborted, every other thing told at once */
    cJSON_Delete(only(fx, UPDATE("dev2", "job-x") "/accepted"));
    for (int d = 1; d < 4; d++) {
        char topic[64];
        snprintf(topic, sizeof topic, "$aws/things/dev%d/jobs/notify-next", d);
        cJSON *n = only(fx, topic);
        assert_null(obj(n, "execution"));
        cJSON_Delete(n);
    }
    assert_non_null(strstr(fx->log, "job job-x is ABORTED"));
    ota_store_job_t j;
    assert_int_equal(ota_store_job_get(fx->cli, "job-x", &j), OTA_STORE_OK);
    assert_int_equal(j.status, OTA_STORE_JOB_ABORTED);
    assert_int_equal(j.n_canceled, 2);
    ota_store_job_free(&j);
}

/* The service restarted in the middle of a job: nothing lost, the device finishes. */
static void test_restart_mid_job(void **state)
{
    fx_t *fx = *state;
    const char *things[] = {"dev0", "dev1"};
    create_job(fx, "job-1", things, 2, (opts_t){.timeout_min = 30}, T0);
    ota_svc_jobs_tick(fx->jobs, T0);
    clear(fx);
    handle(fx, UPDATE("dev0", "job-1"),
           "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"self_test\":\"ready\","
           "\"updatedBy\":\"0x00090002\"}}",
           T0 + 1000);
    clear(fx);
    stop_service(fx);
    /* while the service is down the CLI cancels nothing but adds a job for dev2 */
    const char *dev2[] = {"dev2"};
    create_job(fx, "job-2", dev2, 1, (opts_t){0}, T0 + 2000);
    start_service(fx);
    ota_svc_jobs_tick(fx->jobs, T0 + 3000);
    cJSON *n = only(fx, NOTIFY("dev2")); /* announced after the restart */
    assert_string_equal(str(obj(n, "execution"), "jobId"), "job-2");
    cJSON_Delete(n);
    assert_int_equal(fx->n, 1); /* dev0 and dev1 were already told */
    clear(fx);
    handle(fx, NEXTGET("dev0"), "{\"clientToken\":\"3:dev0\"}", T0 + 4000);
    cJSON *a = only(fx, NEXTGET("dev0") "/accepted");
    cJSON *e = obj(a, "execution");
    assert_string_equal(str(e, "status"), "IN_PROGRESS");
    assert_string_equal(str(obj(e, "statusDetails"), "self_test"), "ready");
    assert_int_equal((int64_t)num(e, "versionNumber"), 2);
    cJSON_Delete(a);
    clear(fx);
    handle(fx, UPDATE("dev0", "job-1"),
           "{\"status\":\"SUCCEEDED\",\"statusDetails\":{\"reason\":\"accepted  v0.9.3\"},"
           "\"expectedVersion\":2}",
           T0 + 5000);
    cJSON_Delete(only(fx, UPDATE("dev0", "job-1") "/accepted"));
    clear(fx);
    /* a restart with an announcement still pending: it is sent after the restart */
    stop_service(fx);
    assert_int_equal(ota_store_job_cancel(fx->cli, "job-1", T0 + 6000), OTA_STORE_OK);
    start_service(fx);
    ota_svc_jobs_tick(fx->jobs, T0 + 7000);
    n = only(fx, NOTIFY("dev1"));
    assert_null(obj(n, "execution"));
    cJSON_Delete(n);
    assert_int_equal(fx->n, 1);
}

static void test_failed_publish_is_retried(void **state)
{
    fx_t *fx = *state;
    const char *things[] = {"dev0"};
    create_job(fx, "job-1", things, 1, (opts_t){0}, T0);
    fx->fail_publish = 1;
    ota_svc_jobs_tick(fx->jobs, T0);
    fx->fail_publish = 0;
    ota_svc_jobs_tick(fx->jobs, T0 + 200);
    assert_int_equal(fx->n, 0);             /* nothing changed, no retry yet */
    ota_svc_jobs_tick(fx->jobs, T0 + 6000); /* the periodic full pass */
    cJSON_Delete(only(fx, NOTIFY("dev0")));
}

static void test_null_and_log_hook(void **state)
{
    fx_t *fx = *state;
    assert_null(ota_svc_jobs_create(NULL, fake_publish, NULL));
    assert_null(ota_svc_jobs_create(fx->store, NULL, NULL));
    assert_int_equal(ota_svc_jobs_handle(NULL, "x", "", 0, T0), 0);
    ota_svc_jobs_tick(NULL, T0);
    ota_svc_jobs_destroy(NULL);
    ota_svc_jobs_set_log(fx->jobs, NULL, NULL);
    handle(fx, NEXTGET("dev0"), "{", T0); /* no crash without a hook */
    ota_svc_jobs_log_stderr(NULL, OTA_SVC_LOG_INFO, "log hook check");
}

/* ---- input hygiene, unknown topics, jobs/notify, redeliveries, budgets ---- */

/** The execution as stored: version and details (to show a refusal changed nothing). */
static void stored(fx_t *fx, const char *job, const char *thing, int64_t *version, char *details,
                   size_t cap)
{
    ota_store_execution_t e;
    assert_int_equal(ota_store_execution_get(fx->cli, job, thing, &e), OTA_STORE_OK);
    *version = e.version_number;
    snprintf(details, cap, "%s", e.status_details ? e.status_details : "(none)");
    ota_store_execution_free(&e);
}

static void test_bad_input_refused_and_changes_nothing(void **state)
{
    fx_t *fx = *state;
    const char *things[] = {"dev0"};
    create_job(fx, "job-1", things, 1, (opts_t){0}, T0);
    ota_svc_jobs_tick(fx->jobs, T0);
    assert_int_equal(handle(fx, UPDATE("dev0", "job-1"),
                            "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"receive\":\"1/3\"}}",
                            T0),
                     1);
    clear(fx);
    int64_t v0, v;
    char d0[256], d[256];
    stored(fx, "job-1", "dev0", &v0, d0, sizeof d0);
    const char *R = UPDATE("dev0", "job-1") "/rejected";
    struct {
        const char *payload;
        const char *token; /* echoed token, or NULL */
    } cases[] = {
        /* invalid UTF-8 in statusDetails (a value, a key), and in a clientToken */
        {"{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"receive\":\"\xc3\x28\"},"
         "\"clientToken\":\"t1\"}",
         "t1"},
        {"{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"\xed\xa0\x80\":\"x\"}}", NULL},
        {"{\"status\":\"IN_PROGRESS\",\"clientToken\":\"bad\xff\"}", NULL},
        /* NUL: escaped, and raw */
        {"{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"receive\":\"1\\u0000/3\"}}", NULL},
        {"{\"status\":\"IN_PROGRESS\",\"clientToken\":\"a\\u0000b\"}", NULL},
        /* a lone surrogate escape would become invalid UTF-8 */
        {"{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"r\":\"\\udc00\"}}", NULL},
        /* duplicate keys: status twice, a statusDetails key twice, clientToken twice */
        {"{\"status\":\"SUCCEEDED\",\"status\":\"IN_PROGRESS\"}", NULL},
        {"{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"r\":\"1\",\"r\":\"2\"}}", NULL},
        {"{\"status\":\"IN_PROGRESS\",\"clientToken\":\"a\",\"clientToken\":\"b\"}", NULL},
        /* something after the object: garbage, a second object (cJSON stops at the first) */
        {"{\"status\":\"SUCCEEDED\",\"clientToken\":\"g\"} x", "g"},
        {"{\"status\":\"FAILED\",\"clientToken\":\"o\"}{\"status\":\"IN_PROGRESS\"}", "o"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        assert_int_equal(handle(fx, UPDATE("dev0", "job-1"), cases[k].payload, T0 + 1000), 1);
        expect_rejected(fx, R, "InvalidJson", cases[k].token, T0 + 1000);
        /* the answer itself is valid UTF-8 JSON */
        cJSON *answer = cJSON_Parse(fx->msgs[0].payload);
        assert_non_null(answer);
        cJSON_Delete(answer);
        clear(fx);
        stored(fx, "job-1", "dev0", &v, d, sizeof d);
        assert_int_equal(v, v0);
        assert_string_equal(d, d0);
    }
    /* a raw NUL byte inside the payload */
    static const char raw_nul[] = "{\"status\":\"IN_PROGRESS\",\"clientToken\":\"a\0b\"}";
    assert_int_equal(
        ota_svc_jobs_handle(fx->jobs, UPDATE("dev0", "job-1"), raw_nul, sizeof raw_nul - 1, T0), 1);
    expect_rejected(fx, R, "InvalidJson", NULL, T0);
    clear(fx);
    /* the wrong executionNumber names no execution (AWS: ResourceNotFound) */
    assert_int_equal(
        handle(fx, UPDATE("dev0", "job-1"),
               "{\"status\":\"SUCCEEDED\",\"executionNumber\":2,\"clientToken\":\"e\"}", T0),
        1);
    expect_rejected(fx, R, "ResourceNotFound", "e", T0);
    clear(fx);
    stored(fx, "job-1", "dev0", &v, d, sizeof d);
    assert_int_equal(v, v0);
    /* the right one is accepted */
    assert_int_equal(handle(fx, UPDATE("dev0", "job-1"),
                            "{\"status\":\"IN_PROGRESS\",\"executionNumber\":1,"
                            "\"statusDetails\":{\"receive\":\"2/3\"}}",
                            T0),
                     1);
    cJSON_Delete(only(fx, UPDATE("dev0", "job-1") "/accepted"));
    stored(fx, "job-1", "dev0", &v, d, sizeof d);
    assert_int_equal(v, v0 + 1);
    int attacks = (int)(sizeof cases / sizeof cases[0]) + 2;
    printf("security: jobs_bad_input: attacks=%d refused=%d honest_answered=1 updates_lost=0\n",
           attacks, attacks);
}

static void test_unknown_topics_answered(void **state)
{
    fx_t *fx = *state;
    const char *topics[] = {"$aws/things/dev0/jobs/job-1/delete", "$aws/things/dev0/jobs/foo",
                            "$aws/things/dev0/jobs/job-1/update/now",
                            "$aws/things/dev0/jobs/start-next/x"};
    for (size_t k = 0; k < sizeof topics / sizeof topics[0]; k++) {
        char rej[256];
        snprintf(rej, sizeof rej, "%s/rejected", topics[k]);
        assert_int_equal(handle(fx, topics[k], "{\"clientToken\":\"u\"}", T0), 1);
        expect_rejected(fx, rej, "InvalidTopic", "u", T0);
        clear(fx);
    }
}

/** The pending list in the last jobs/notify: "IN_PROGRESS:a,QUEUED:b,c" style. */
static void last_list(fx_t *fx, char *out, size_t cap)
{
    assert_true(fx->n_lists > 0);
    cJSON *o = cJSON_Parse(fx->lists[fx->n_lists - 1].payload);
    assert_non_null(o);
    assert_string_equal(fx->lists[fx->n_lists - 1].topic, "$aws/things/dev0/jobs/notify");
    assert_true(cJSON_IsNumber(obj(o, "timestamp")));
    cJSON *jobs = obj(o, "jobs");
    assert_true(cJSON_IsObject(jobs));
    out[0] = '\0';
    for (cJSON *st = jobs->child; st; st = st->next) {
        size_t n = strlen(out);
        snprintf(out + n, cap - n, "%s%s:", n ? "," : "", st->string);
        for (cJSON *e = st->child; e; e = e->next) {
            n = strlen(out);
            snprintf(out + n, cap - n, "%s%s", e == st->child ? "" : "+", str(e, "jobId"));
            assert_true(cJSON_IsNumber(obj(e, "versionNumber")));
            assert_true(cJSON_IsNumber(obj(e, "executionNumber")));
            assert_true(cJSON_IsNumber(obj(e, "queuedAt")));
            assert_true(cJSON_IsNumber(obj(e, "lastUpdatedAt")));
        }
    }
    cJSON_Delete(o);
}

static void test_jobs_notify_lists_pending(void **state)
{
    fx_t *fx = *state;
    char list[256];
    const char *things[] = {"dev0"};
    create_job(fx, "job-1", things, 1, (opts_t){0}, T0);
    ota_svc_jobs_tick(fx->jobs, T0);
    assert_int_equal(fx->n_lists, 1);
    last_list(fx, list, sizeof list);
    assert_string_equal(list, "QUEUED:job-1");
    create_job(fx, "job-2", things, 1, (opts_t){0}, T0 + 10);
    ota_svc_jobs_tick(fx->jobs, T0 + 1000);
    assert_int_equal(fx->n_lists, 2);
    last_list(fx, list, sizeof list);
    assert_string_equal(list, "QUEUED:job-1+job-2");
    /* started: the list changes */
    handle(fx, UPDATE("dev0", "job-1"), "{\"status\":\"IN_PROGRESS\"}", T0 + 2000);
    assert_int_equal(fx->n_lists, 3);
    last_list(fx, list, sizeof list);
    assert_string_equal(list, "IN_PROGRESS:job-1,QUEUED:job-2");
    /* progress: same list, nothing published */
    handle(fx, UPDATE("dev0", "job-1"),
           "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"receive\":\"2/3\"}}", T0 + 3000);
    ota_svc_jobs_tick(fx->jobs, T0 + 9000);
    assert_int_equal(fx->n_lists, 3);
    handle(fx, UPDATE("dev0", "job-1"), "{\"status\":\"SUCCEEDED\"}", T0 + 10000);
    assert_int_equal(fx->n_lists, 4);
    last_list(fx, list, sizeof list);
    assert_string_equal(list, "QUEUED:job-2");
    assert_int_equal(ota_store_job_cancel(fx->cli, "job-2", T0 + 11000), OTA_STORE_OK);
    ota_svc_jobs_tick(fx->jobs, T0 + 11000);
    assert_int_equal(fx->n_lists, 5);
    last_list(fx, list, sizeof list);
    assert_string_equal(list, ""); /* "jobs":{} */
    /* a restarted service does not repeat what was published */
    stop_service(fx);
    start_service(fx);
    ota_svc_jobs_tick(fx->jobs, T0 + 20000);
    assert_int_equal(fx->n_lists, 5);
}

static int handle_id(fx_t *fx, const char *topic, const char *payload, int id, int64_t now)
{
    return ota_svc_jobs_handle_delivery(fx->jobs, topic, payload, strlen(payload), id, now, now);
}

static void test_redelivered_update_applied_once(void **state)
{
    fx_t *fx = *state;
    const char *things[] = {"dev0"};
    create_job(fx, "job-1", things, 1, (opts_t){0}, T0);
    ota_svc_jobs_tick(fx->jobs, T0);
    assert_int_equal(ota_svc_jobs_set_session(fx->jobs, "otter-service", 0), 0);
    clear(fx);
    const char *up1 = "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"step\":\"1\"},"
                      "\"clientToken\":\"u1\",\"includeJobExecutionState\":true}";
    const char *up2 = "{\"status\":\"SUCCEEDED\",\"clientToken\":\"u2\"}";
    assert_int_equal(handle_id(fx, UPDATE("dev0", "job-1"), up1, 11, T0 + 1), 1);
    assert_int_equal(handle_id(fx, UPDATE("dev0", "job-1"), up2, 12, T0 + 2), 1);
    assert_int_equal(count_on(fx, UPDATE("dev0", "job-1") "/accepted"), 2);
    clear(fx);
    /* the service restarts before the broker saw its acknowledgements: both come again */
    stop_service(fx);
    start_service(fx);
    assert_int_equal(ota_svc_jobs_set_session(fx->jobs, "otter-service", 1), 0);
    assert_int_equal(handle_id(fx, UPDATE("dev0", "job-1"), up1, 11, T0 + 3), 1);
    assert_int_equal(handle_id(fx, UPDATE("dev0", "job-1"), up2, 12, T0 + 4), 1);
    /* answered as accepted again (no InvalidStateTransition), applied once */
    assert_int_equal(count_on(fx, UPDATE("dev0", "job-1") "/accepted"), 2);
    assert_int_equal(count_on(fx, UPDATE("dev0", "job-1") "/rejected"), 0);
    int64_t v;
    char d[256];
    stored(fx, "job-1", "dev0", &v, d, sizeof d);
    assert_int_equal(v, 3);
    ota_svc_jobs_stats_t st;
    ota_svc_jobs_get_stats(fx->jobs, &st);
    assert_int_equal(st.redelivered, 2);
    ota_store_job_t job;
    assert_int_equal(ota_store_job_get(fx->cli, "job-1", &job), OTA_STORE_OK);
    assert_int_equal(job.n_succeeded, 1);
    ota_store_job_free(&job);
    clear(fx);
    /* the same bytes with another packet id are a new request: refused as usual */
    assert_int_equal(handle_id(fx, UPDATE("dev0", "job-1"), up2, 13, T0 + 5), 1);
    expect_rejected(fx, UPDATE("dev0", "job-1") "/rejected", "InvalidStateTransition", "u2",
                    T0 + 5);
}

/* Durable answers: kept in the outbox until the broker acknowledged them, sent again after
 * a restart. */
static int64_t g_durable_ids[16];
static int g_durable_n;

static int fake_durable(void *ctx, const char *topic, const void *payload, size_t len,
                        int64_t outbox_id)
{
    assert_true(g_durable_n < 16);
    g_durable_ids[g_durable_n++] = outbox_id;
    return fake_publish(ctx, topic, payload, len, 1);
}

static int outbox_count_cb(void *ctx, int64_t id, const char *topic, const char *payload)
{
    (void)id;
    (void)payload;
    assert_non_null(strstr(topic, "/update/accepted"));
    (*(int *)ctx)++;
    return 0;
}

static int outbox_count(fx_t *fx)
{
    int n = 0;
    assert_int_equal(ota_store_outbox_list(fx->cli, outbox_count_cb, &n), OTA_STORE_OK);
    return n;
}

static void test_answers_survive_a_crash(void **state)
{
    fx_t *fx = *state;
    const char *things[] = {"dev0"};
    create_job(fx, "job-1", things, 1, (opts_t){0}, T0);
    ota_svc_jobs_tick(fx->jobs, T0);
    g_durable_n = 0;
    ota_svc_jobs_set_durable(fx->jobs, fake_durable, fx);
    clear(fx);
    /* a QoS 0 request is answered plainly */
    assert_int_equal(handle_id(fx, UPDATE("dev0", "job-1"), "{\"status\":\"IN_PROGRESS\"}", 0, T0),
                     1);
    assert_int_equal(g_durable_n, 0);
    /* a QoS 1 one through the outbox */
    assert_int_equal(handle_id(fx, UPDATE("dev0", "job-1"),
                               "{\"status\":\"SUCCEEDED\",\"clientToken\":\"s\"}", 5, T0),
                     1);
    assert_int_equal(g_durable_n, 1);
    assert_true(g_durable_ids[0] > 0);
    assert_int_equal(outbox_count(fx), 1);
    clear(fx);
    /* the service dies before the broker acknowledged the answer: sent again at start */
    stop_service(fx);
    start_service(fx);
    ota_svc_jobs_set_durable(fx->jobs, fake_durable, fx);
    assert_int_equal(ota_svc_jobs_resend_answers(fx->jobs), 1);
    assert_int_equal(g_durable_ids[1], g_durable_ids[0]);
    cJSON *a = only(fx, UPDATE("dev0", "job-1") "/accepted");
    assert_string_equal(str(a, "clientToken"), "s");
    cJSON_Delete(a);
    /* acknowledged: gone */
    ota_svc_jobs_answer_delivered(fx->jobs, g_durable_ids[1]);
    assert_int_equal(outbox_count(fx), 0);
    assert_int_equal(ota_svc_jobs_resend_answers(fx->jobs), 0);
}

/* Every message published since the last clear fits in the broker's packet limit. */
static void all_fit(fx_t *fx)
{
    for (int i = 0; i < fx->n; i++)
        assert_true(ota_svc_jobs_packet_fits(fx->msgs[i].topic, strlen(fx->msgs[i].payload), 1));
}

/* The attack that once put the service in a disconnect loop, and its whitespace variant:
 * statusDetails of 10 keys x 1024 characters written as escaped surrogate pairs (12 bytes a
 * character, 4 as UTF-8) are refused for their size as compact JSON; 135,000 spaces of padding
 * are not stored, and the answers to a QoS 1 get stay small. */
static void test_status_details_bounded_in_bytes(void **state)
{
    fx_t *fx = *state;
    const char *things[] = {"dev0"};
    create_job(fx, "job-b", things, 1, (opts_t){0}, T0);
    ota_svc_jobs_tick(fx->jobs, T0);
    g_durable_n = 0;
    ota_svc_jobs_set_durable(fx->jobs, fake_durable, fx);
    clear(fx);
    size_t cap = 200000, len = 0;
    char *p = malloc(cap);
    assert_non_null(p);
    len += (size_t)snprintf(p + len, cap - len, "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{");
    for (int k = 0; k < 10; k++) {
        len += (size_t)snprintf(p + len, cap - len, "%s\"k%d\":\"", k ? "," : "", k);
        for (int c = 0; c < 1024; c++) {
            memcpy(p + len, "\\ud83d\\ude00", 12);
            len += 12;
        }
        p[len++] = '"';
    }
    len += (size_t)snprintf(p + len, cap - len, "},\"clientToken\":\"big\"}");
    assert_true(len > 122000);
    assert_int_equal(
        ota_svc_jobs_handle_delivery(fx->jobs, UPDATE("dev0", "job-b"), p, len, 7, T0 + 1, 0), 1);
    cJSON *r = only(fx, UPDATE("dev0", "job-b") "/rejected");
    assert_string_equal(str(r, "code"), "InvalidRequest");
    assert_string_equal(str(r, "clientToken"), "big");
    assert_non_null(strstr(str(r, "message"), "bytes"));
    cJSON_Delete(r);
    ota_store_execution_t x;
    assert_int_equal(ota_store_execution_get(fx->cli, "job-b", "dev0", &x), OTA_STORE_OK);
    assert_int_equal(x.version_number, 1); /* nothing changed */
    assert_null(x.status_details);
    ota_store_execution_free(&x);
    /* padding with whitespace: accepted, stored without it */
    len = (size_t)snprintf(p, cap,
                           "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{"
                           "\"self_test\":\"ready\"");
    memset(p + len, ' ', 135000);
    len += 135000;
    len += (size_t)snprintf(p + len, cap - len, ",\"n\":\"1\"}}");
    clear(fx);
    assert_int_equal(
        ota_svc_jobs_handle_delivery(fx->jobs, UPDATE("dev0", "job-b"), p, len, 8, T0 + 2, 0), 1);
    cJSON_Delete(only(fx, UPDATE("dev0", "job-b") "/accepted"));
    assert_int_equal(ota_store_execution_get(fx->cli, "job-b", "dev0", &x), OTA_STORE_OK);
    assert_string_equal(x.status_details, "{\"self_test\":\"ready\",\"n\":\"1\"}");
    ota_store_execution_free(&x);
    /* the QoS 1 get that followed: a small answer, through the outbox */
    clear(fx);
    assert_int_equal(ota_svc_jobs_handle_delivery(fx->jobs, "$aws/things/dev0/jobs/job-b/get", "{}",
                                                  2, 9, T0 + 3, 0),
                     1);
    assert_true(strlen(raw_on(fx, "$aws/things/dev0/jobs/job-b/get/accepted")) < 2048);
    all_fit(fx);
    /* a key or a value that is over its own limit is still refused as before */
    len = (size_t)snprintf(p, cap, "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"v\":\"");
    memset(p + len, 'a', 1025);
    len += 1025;
    len += (size_t)snprintf(p + len, cap - len, "\"}}");
    clear(fx);
    assert_int_equal(ota_svc_jobs_handle(fx->jobs, UPDATE("dev0", "job-b"), p, len, T0 + 4), 1);
    r = only(fx, UPDATE("dev0", "job-b") "/rejected");
    assert_string_equal(str(r, "code"), "InvalidRequest");
    cJSON_Delete(r);
    free(p);
}

/* Sets an execution's stored statusDetails directly, as a version without the bound left them. */
static void store_details_before(fx_t *fx, const char *job, const char *thing, const char *details)
{
    char path[300];
    snprintf(path, sizeof path, "%s/otter.db", fx->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "UPDATE executions SET details = ? "
                                        "WHERE job = ? AND thing = ?",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, details, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, job, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, thing, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* statusDetails a version without the bound stored as the device wrote them (135 KB): the
 * answers carry them compact when that fits, else leave them out, and the device is answered. */
static void test_details_stored_before_the_bound(void **state)
{
    fx_t *fx = *state;
    const char *two[] = {"dev0", "dev1"};
    create_job(fx, "job-o", two, 2, (opts_t){0}, T0);
    ota_svc_jobs_tick(fx->jobs, T0);
    size_t pad = 134000;
    char *d = malloc(pad + 64);
    assert_non_null(d);
    size_t len = (size_t)sprintf(d, "{\"self_test\":\"ready\"");
    memset(d + len, ' ', pad);
    strcpy(d + len + pad, ",\"n\":\"1\"}");
    store_details_before(fx, "job-o", "dev0", d);
    len = (size_t)sprintf(d, "{\"k\":\"");
    for (int c = 0; c < 10000; c++, len += 12)
        memcpy(d + len, "\\ud83d\\ude00", 12);
    strcpy(d + len, "\"}");
    store_details_before(fx, "job-o", "dev1", d);
    free(d);
    clear(fx);
    handle(fx, NEXTGET("dev0"), "{}", T0 + 1000);
    cJSON *a = only(fx, NEXTGET("dev0") "/accepted");
    assert_string_equal(str(obj(obj(a, "execution"), "statusDetails"), "self_test"), "ready");
    cJSON_Delete(a);
    assert_true(strlen(raw_on(fx, NEXTGET("dev0") "/accepted")) < 2048);
    all_fit(fx);
    clear(fx);
    handle(fx, NEXTGET("dev1"), "{}", T0 + 1000);
    a = only(fx, NEXTGET("dev1") "/accepted");
    assert_string_equal(str(obj(a, "execution"), "jobId"), "job-o");
    assert_null(obj(obj(a, "execution"), "statusDetails")); /* 40 KB compact: left out */
    cJSON_Delete(a);
    all_fit(fx);
    assert_non_null(strstr(fx->log, "left out of the answer"));
    /* the device's next update replaces them */
    clear(fx);
    handle(fx, UPDATE("dev1", "job-o"),
           "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"receive\":\"1/2\"},"
           "\"includeJobExecutionState\":true}",
           T0 + 2000);
    a = only(fx, UPDATE("dev1", "job-o") "/accepted");
    assert_string_equal(str(obj(obj(a, "executionState"), "statusDetails"), "receive"), "1/2");
    cJSON_Delete(a);
}

/* A document hook that makes the document larger than the broker takes. */
static char *huge_document(void *ctx, const char *thing, const char *job_id, const char *document,
                           int64_t now_ms)
{
    (void)ctx;
    (void)thing;
    (void)job_id;
    (void)document;
    (void)now_ms;
    size_t n = OTA_STORE_MQTT_PACKET_MAX + 10;
    char *d = malloc(n + 16);
    assert_non_null(d);
    memcpy(d, "{\"pad\":\"", 8);
    memset(d + 8, 'x', n);
    memcpy(d + 8 + n, "\"}", 3);
    return d;
}

/* Defense in depth: an answer larger than the broker takes (here a document made so) is never
 * published; the device gets a short InternalError rejection instead, a notice is skipped and
 * not tried again, and nothing published is over the limit. */
static void test_answer_over_the_broker_limit_replaced(void **state)
{
    fx_t *fx = *state;
    const char *things[] = {"dev0"};
    create_job(fx, "job-h", things, 1, (opts_t){0}, T0);
    ota_svc_jobs_set_document_hook(fx->jobs, huge_document, NULL);
    ota_svc_jobs_tick(fx->jobs, T0);
    assert_int_equal(count_on(fx, NOTIFY("dev0")), 0); /* too large: not sent */
    all_fit(fx);
    ota_svc_jobs_tick(fx->jobs, T0 + 10000);
    assert_int_equal(count_on(fx, NOTIFY("dev0")), 0); /* and not tried again */
    clear(fx);
    handle(fx, NEXTGET("dev0"), "{\"clientToken\":\"t\"}", T0 + 20000);
    assert_int_equal(count_on(fx, NEXTGET("dev0") "/accepted"), 0);
    cJSON *r = only(fx, NEXTGET("dev0") "/rejected");
    assert_string_equal(str(r, "code"), "InternalError");
    assert_string_equal(str(r, "clientToken"), "t");
    cJSON_Delete(r);
    all_fit(fx);
    ota_svc_jobs_stats_t st;
    ota_svc_jobs_get_stats(fx->jobs, &st);
    assert_true(st.too_large >= 2);
    assert_non_null(strstr(fx->log, "more than the broker takes"));
    /* without the hook, the same request is answered */
    ota_svc_jobs_set_document_hook(fx->jobs, NULL, NULL);
    clear(fx);
    handle(fx, NEXTGET("dev0"), "{}", T0 + 30000);
    cJSON_Delete(only(fx, NEXTGET("dev0") "/accepted"));
}

static int outbox_all_cb(void *ctx, int64_t id, const char *topic, const char *payload)
{
    (void)id;
    (void)topic;
    (void)payload;
    (*(int *)ctx)++;
    return 0;
}

/* An outbox entry the broker would refuse (left by a version without the size check), or one
 * older than a day, is dropped at start with a log line, never sent; the others are sent as
 * before. */
static void test_outbox_entry_over_the_limit_dropped(void **state)
{
    fx_t *fx = *state;
    size_t n = OTA_STORE_MQTT_PACKET_MAX;
    char *big = malloc(n + 16);
    assert_non_null(big);
    memcpy(big, "{\"pad\":\"", 8);
    memset(big + 8, ' ', n);
    memcpy(big + 8 + n, "\"}", 3);
    int64_t id_big = 0, id_small = 0;
    assert_int_equal(ota_store_outbox_add(fx->store, "$aws/things/dev0/jobs/j/get/accepted", big,
                                          ota_store_now_ms(), &id_big),
                     OTA_STORE_OK);
    assert_int_equal(ota_store_outbox_add(fx->store, "$aws/things/dev1/jobs/j/get/accepted",
                                          "{\"ok\":1}", ota_store_now_ms(), &id_small),
                     OTA_STORE_OK);
    free(big);
    /* and one so old that no device waits for it any more */
    int64_t id_old = 0;
    assert_int_equal(
        ota_store_outbox_add(fx->store, "$aws/things/dev2/jobs/j/get/accepted", "{\"old\":1}",
                             ota_store_now_ms() - OTA_SVC_JOBS_OUTBOX_TTL_MS - 1000, &id_old),
        OTA_STORE_OK);
    stop_service(fx);
    start_service(fx);
    g_durable_n = 0;
    ota_svc_jobs_set_durable(fx->jobs, fake_durable, fx);
    clear(fx);
    assert_int_equal(ota_svc_jobs_resend_answers(fx->jobs), 1);
    assert_int_equal(g_durable_n, 1);
    assert_int_equal(g_durable_ids[0], id_small);
    all_fit(fx);
    assert_non_null(strstr(fx->log, "can never be delivered; dropped"));
    assert_non_null(strstr(fx->log, "1 outbox answer(s) older than 24 h dropped"));
    int left = 0;
    assert_int_equal(ota_store_outbox_list(fx->cli, outbox_all_cb, &left), OTA_STORE_OK);
    assert_int_equal(left, 1); /* the small one, until the broker acknowledges it */
    /* the next start sends the small one again, and nothing of the big one */
    g_durable_n = 0;
    assert_int_equal(ota_svc_jobs_resend_answers(fx->jobs), 1);
    assert_int_equal(g_durable_ids[0], id_small);
}

static void test_requests_throttled_per_thing(void **state)
{
    fx_t *fx = *state;
    ota_svc_budget_config_t cfg = {.jobs_per_s = 1, .jobs_burst = 3};
    ota_svc_budget_t *b = ota_svc_budget_create(&cfg);
    ota_svc_jobs_set_budget(fx->jobs, b);
    const char *things[] = {"dev0"};
    create_job(fx, "job-1", things, 1, (opts_t){0}, T0);
    ota_svc_jobs_tick(fx->jobs, T0);
    clear(fx);
    for (int k = 0; k < 3; k++)
        assert_int_equal(handle_id(fx, NEXTGET("dev0"), "{\"clientToken\":\"n\"}", 0, T0), 1);
    assert_int_equal(count_on(fx, NEXTGET("dev0") "/accepted"), 3);
    clear(fx);
    assert_int_equal(handle_id(fx, UPDATE("dev0", "job-1"),
                               "{\"status\":\"SUCCEEDED\",\"clientToken\":\"x\"}", 0, T0),
                     1);
    expect_rejected(fx, UPDATE("dev0", "job-1") "/rejected", "RequestThrottled", "x", T0);
    clear(fx);
    int64_t v;
    char d[256];
    stored(fx, "job-1", "dev0", &v, d, sizeof d);
    assert_int_equal(v, 1); /* a throttled update changes nothing */
    /* another thing is served */
    assert_int_equal(handle_id(fx, NEXTGET("dev1"), "{}", 0, T0), 1);
    assert_int_equal(count_on(fx, NEXTGET("dev1") "/accepted"), 1);
    clear(fx);
    /* a second later the thing may ask again */
    assert_int_equal(
        handle_id(fx, UPDATE("dev0", "job-1"), "{\"status\":\"SUCCEEDED\"}", 0, T0 + 1000), 1);
    assert_int_equal(count_on(fx, UPDATE("dev0", "job-1") "/accepted"), 1);
    ota_svc_jobs_set_budget(fx->jobs, NULL);
    ota_svc_budget_destroy(b);
}

/* lastSeen as the service's ms clock, or -1 when unset. */
static long long last_seen(fx_t *fx, const char *thing)
{
    char v[OTA_STORE_ATTR_VALUE_MAX + 1];
    if (ota_store_thing_attr_get(fx->cli, thing, "lastSeen", v, sizeof v) != OTA_STORE_OK)
        return -1;
    return atoll(v);
}

/* A Jobs request is word from the thing: its lastSeen is refreshed, at most once a minute per
 * thing (the others are not written), and its presence is not made known. */
static void test_requests_refresh_last_seen(void **state)
{
    fx_t *fx = *state;
    ota_svc_jobs_stats_t st;
    assert_int_equal(last_seen(fx, "dev0"), -1);
    assert_int_equal(handle(fx, NEXTGET("dev0"), "{}", T0), 1);
    assert_int_equal(last_seen(fx, "dev0"), T0);
    ota_svc_jobs_get_stats(fx->jobs, &st);
    assert_int_equal(st.seen_written, 1);
    /* within the minute: answered, not written */
    assert_int_equal(handle(fx, NEXTGET("dev0"), "{}", T0 + 30000), 1);
    assert_int_equal(handle(fx, "$aws/things/dev0/jobs/get", "{}", T0 + MIN - 1), 1);
    assert_int_equal(count_on(fx, "$aws/things/dev0/jobs/get/accepted"), 1);
    assert_int_equal(last_seen(fx, "dev0"), T0);
    ota_svc_jobs_get_stats(fx->jobs, &st);
    assert_int_equal(st.seen_written, 1);
    /* another thing has its own minute */
    assert_int_equal(handle(fx, NEXTGET("dev1"), "{}", T0 + 30000), 1);
    assert_int_equal(last_seen(fx, "dev1"), T0 + 30000);
    /* a minute on: written again */
    assert_int_equal(handle(fx, NEXTGET("dev0"), "{}", T0 + MIN), 1);
    assert_int_equal(last_seen(fx, "dev0"), T0 + MIN);
    ota_svc_jobs_get_stats(fx->jobs, &st);
    assert_int_equal(st.seen_written, 3);
    /* presence stays the brokers' word */
    ota_store_presence_t p;
    assert_int_equal(ota_store_presence_get(fx->cli, "dev0", &p), OTA_STORE_OK);
    assert_int_equal(p.seen, 0);
    /* refused requests and unknown things write nothing */
    assert_int_equal(handle(fx, NEXTGET("dev2"), "not json", T0), 1);
    assert_int_equal(last_seen(fx, "dev2"), -1);
    assert_int_equal(handle(fx, NEXTGET("ghost"), "{}", T0), 1);
    /* many things (the table grows past its first size): each written once in its minute */
    char name[16], topic[64];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "y%d", i);
        assert_int_equal(ota_store_thing_create(fx->cli, name, T0), OTA_STORE_OK);
    }
    static const int64_t at[] = {2 * MIN, 2 * MIN + 20000, 2 * MIN + 40000, 3 * MIN + 1000};
    static const uint64_t written[] = {100, 0, 0, 100};
    for (int round = 0; round < 4; round++) {
        ota_svc_jobs_get_stats(fx->jobs, &st);
        uint64_t before = st.seen_written;
        for (int i = 0; i < 100; i++) {
            snprintf(topic, sizeof topic, "$aws/things/y%d/jobs/$next/get", i);
            assert_int_equal(handle(fx, topic, "{}", T0 + at[round]), 1);
            clear(fx);
        }
        ota_svc_jobs_get_stats(fx->jobs, &st);
        assert_int_equal(st.seen_written - before, written[round]);
    }
    assert_int_equal(last_seen(fx, "y99"), T0 + 3 * MIN + 1000);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_topics_and_foreign_messages),
        T(test_next_get_nothing_pending),
        T(test_notify_on_create_and_next_get),
        T(test_freertos_sequence),
        T(test_late_progress_keeps_self_test),
        T(test_status_details_compact),
        T(test_status_details_bounded_in_bytes),
        T(test_answer_over_the_broker_limit_replaced),
        T(test_details_stored_before_the_bound),
        T(test_outbox_entry_over_the_limit_dropped),
        T(test_no_notify_when_next_job_unchanged),
        T(test_next_get_counts_as_announcement),
        T(test_failed_with_reason_moves_to_next_job),
        T(test_update_rejections),
        T(test_get_pending_start_next_describe),
        T(test_cancel_from_another_handle),
        T(test_in_progress_timeout),
        T(test_step_timeout),
        T(test_rollout_over_minutes),
        T(test_rollout_survives_restart),
        T(test_abort_criteria),
        T(test_restart_mid_job),
        T(test_failed_publish_is_retried),
        T(test_null_and_log_hook),
        T(test_bad_input_refused_and_changes_nothing),
        T(test_unknown_topics_answered),
        T(test_jobs_notify_lists_pending),
        T(test_redelivered_update_applied_once),
        T(test_requests_throttled_per_thing),
        T(test_requests_refresh_last_seen),
        T(test_answers_survive_a_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
