/*
 * otter service: the AWS IoT Jobs device API over MQTT. See ota_svc_jobs.h.
 */
#define _POSIX_C_SOURCE 200809L

#include "ota_svc_jobs.h"

#include <cjson/cJSON.h>
#include <stdarg.h>

#include "ota_svc_jobs_seen.h"
#include "ota_svc_json.h"
#include "ota_text_escape.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/** Longest client token echoed back (bytes). */
#define JOBS_CLIENT_TOKEN_MAX 64
/** statusDetails limits (AWS). */
#define JOBS_DETAILS_MAX_KEYS 10
#define JOBS_DETAILS_KEY_MAX 128
#define JOBS_DETAILS_VALUE_MAX 1024
/** Timed work (timeouts, rollout) and the notify scan run at least this often. */
#define JOBS_SAFETY_PERIOD_MS 5000
/** Room for any topic this module builds. */
#define JOBS_TOPIC_MAX 512
/** publish_json_as(): the message is larger than the broker takes; it was not sent. */
#define JOBS_TOO_LARGE (-2)
/** Room in an answer for everything but the statusDetails and the job document: ids, times,
 *  status, token, the topic, the document's presigned URLs. */
#define JOBS_ANSWER_FRAME_MAX 8192u

/* An answer carries at most one execution's statusDetails and one job document: with both at
 * their limits it stays below half of what the broker takes. */
_Static_assert(OTA_STORE_DETAILS_MAX + OTA_STORE_JOB_DOCUMENT_MAX + JOBS_ANSWER_FRAME_MAX <
                   OTA_STORE_MQTT_PACKET_MAX / 2,
               "statusDetails and job document limits leave no room under the broker's limit");

struct ota_svc_jobs {
    ota_store_t *store;
    ota_svc_publish_fn publish;
    void *publish_ctx;
    ota_svc_log_fn log;
    void *log_ctx;
    ota_svc_jobs_doc_fn doc_hook;
    void *doc_ctx;
    int64_t next_timed_ms;  /* when timeouts or rollout next have work */
    int64_t next_safety_ms; /* next full pass regardless of changes */
    ota_svc_budget_t *budget;
    char *session;                   /* the MQTT session whose deliveries are tracked, or NULL */
    ota_svc_jobs_durable_fn durable; /* publishes an outbox answer, or NULL */
    void *durable_ctx;
    ota_svc_jobs_stats_t stats;
    ota_svc_seen_t seen; /* when each thing's lastSeen was last written from its requests */
};

/* Everything under a thing's jobs/: requests on unknown topics are answered
 * with InvalidTopic; the service's own answers that come back are skipped. */
static const char *const jobs_topics[] = {
    "$aws/things/+/jobs/#",
    NULL,
};

const char *const *ota_svc_jobs_topics(void)
{
    return jobs_topics;
}

/* ------------------------------------------------------------------------ */
/* Logging                                                                  */
/* ------------------------------------------------------------------------ */

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
logf_(ota_svc_jobs_t *j, int level, const char *fmt, ...)
{
    if (!j->log)
        return;
    char line[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    j->log(j->log_ctx, level, line);
}

void ota_svc_jobs_set_log(ota_svc_jobs_t *jobs, ota_svc_log_fn log, void *log_ctx)
{
    if (!jobs)
        return;
    jobs->log = log;
    jobs->log_ctx = log_ctx;
}

void ota_svc_jobs_log_stderr(void *ctx, int level, const char *line)
{
    static const char *const names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    (void)ctx;
    fprintf(stderr, "otter-service %s %s\n", level >= 0 && level < 4 ? names[level] : "LOG", line);
}

/* ------------------------------------------------------------------------ */
/* Life cycle                                                               */
/* ------------------------------------------------------------------------ */

ota_svc_jobs_t *ota_svc_jobs_create(ota_store_t *store, ota_svc_publish_fn publish,
                                    void *publish_ctx)
{
    if (!store || !publish)
        return NULL;
    ota_svc_jobs_t *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->store = store;
    j->publish = publish;
    j->publish_ctx = publish_ctx;
    j->next_timed_ms = 0; /* first tick does everything */
    j->next_safety_ms = 0;
    return j;
}

void ota_svc_jobs_destroy(ota_svc_jobs_t *jobs)
{
    if (jobs) {
        free(jobs->session);
        ota_svc_seen_free(&jobs->seen);
    }
    free(jobs);
}

void ota_svc_jobs_set_budget(ota_svc_jobs_t *jobs, ota_svc_budget_t *budget)
{
    jobs->budget = budget;
}

int ota_svc_jobs_set_session(ota_svc_jobs_t *jobs, const char *session, int resumed)
{
    char *copy = session ? strdup(session) : NULL;
    if (session && !copy)
        return -1;
    free(jobs->session);
    jobs->session = copy;
    if (session && !resumed && ota_store_deliveries_forget(jobs->store, session) != OTA_STORE_OK) {
        logf_(jobs, OTA_SVC_LOG_ERROR, "jobs: forgetting the deliveries of %s: %s", session,
              ota_store_errmsg(jobs->store));
        return -1;
    }
    return 0;
}

void ota_svc_jobs_get_stats(const ota_svc_jobs_t *jobs, ota_svc_jobs_stats_t *out)
{
    *out = jobs->stats;
}

/* ------------------------------------------------------------------------ */
/* JSON helpers                                                             */
/* ------------------------------------------------------------------------ */

size_t ota_svc_jobs_packet_size(const char *topic, size_t len, int qos)
{
    /* topic length, topic, packet id at QoS 1, one byte of MQTT 5 properties, payload */
    size_t rest = 2u + strlen(topic) + (qos > 0 ? 2u : 0u) + 1u + len;
    size_t length_bytes = rest < 128u ? 1u : rest < 16384u ? 2u : rest < 2097152u ? 3u : 4u;
    return 1u + length_bytes + rest;
}

int ota_svc_jobs_packet_fits(const char *topic, size_t len, int qos)
{
    return ota_svc_jobs_packet_size(topic, len, qos) <= OTA_STORE_MQTT_PACKET_MAX;
}

/* Publishes an object; durable: through the outbox, so that it is sent again after a crash
 * until the broker has acknowledged it. A message the broker would refuse (and end the
 * service's connection for) is not sent: JOBS_TOO_LARGE. */
static int publish_json_as(ota_svc_jobs_t *j, const char *topic, cJSON *obj, int durable)
{
    char *text = cJSON_PrintUnformatted(obj);
    int64_t id = 0;
    if (!text) {
        logf_(j, OTA_SVC_LOG_ERROR, "jobs: out of memory building the answer on %s", topic);
        return -1;
    }
    if (!ota_svc_jobs_packet_fits(topic, strlen(text), 1)) {
        j->stats.too_large++;
        logf_(j, OTA_SVC_LOG_ERROR,
              "jobs: the message on %s would be %zu bytes, more than the broker takes (%u): "
              "not sent",
              topic, ota_svc_jobs_packet_size(topic, strlen(text), 1), OTA_STORE_MQTT_PACKET_MAX);
        cJSON_free(text);
        return JOBS_TOO_LARGE;
    }
    if (durable && j->durable != NULL &&
        ota_store_outbox_add(j->store, topic, text, ota_store_now_ms(), &id) != OTA_STORE_OK) {
        logf_(j, OTA_SVC_LOG_ERROR, "jobs: outbox: %s", ota_store_errmsg(j->store));
        id = 0;
    }
    int rc = id > 0 ? j->durable(j->durable_ctx, topic, text, strlen(text), id)
                    : j->publish(j->publish_ctx, topic, text, strlen(text), 1);
    if (rc != 0)
        logf_(j, OTA_SVC_LOG_WARN, "jobs: publish on %s failed (%d)", topic, rc);
    else
        logf_(j, OTA_SVC_LOG_DEBUG, "jobs: -> %s %s", topic, text);
    cJSON_free(text);
    return rc;
}

static int publish_json(ota_svc_jobs_t *j, const char *topic, cJSON *obj)
{
    return publish_json_as(j, topic, obj, 0);
}

void ota_svc_jobs_set_durable(ota_svc_jobs_t *jobs, ota_svc_jobs_durable_fn fn, void *ctx)
{
    jobs->durable = fn;
    jobs->durable_ctx = ctx;
}

void ota_svc_jobs_answer_delivered(ota_svc_jobs_t *jobs, int64_t outbox_id)
{
    if (ota_store_outbox_remove(jobs->store, outbox_id) != OTA_STORE_OK)
        logf_(jobs, OTA_SVC_LOG_ERROR, "jobs: outbox: %s", ota_store_errmsg(jobs->store));
}

/** Outbox entries found undeliverable while the outbox is read, removed after the reading. */
typedef struct {
    ota_svc_jobs_t *j;
    int64_t *ids;
    size_t n, cap;
} resend_ctx_t;

/* Sends an outbox answer again, unless the broker would refuse it: such an entry (left by a
 * version without the size check) can never be delivered, and sending it would end the
 * connection at every try; it is dropped. */
static int resend_one(void *ctx, int64_t id, const char *topic, const char *payload)
{
    resend_ctx_t *c = ctx;
    ota_svc_jobs_t *j = c->j;
    size_t len = strlen(payload);
    if (!ota_svc_jobs_packet_fits(topic, len, 1)) {
        j->stats.too_large++;
        logf_(j, OTA_SVC_LOG_ERROR,
              "jobs: outbox answer %lld on %s is %zu bytes, more than the broker takes (%u): "
              "it can never be delivered; dropped",
              (long long)id, topic, ota_svc_jobs_packet_size(topic, len, 1),
              OTA_STORE_MQTT_PACKET_MAX);
        if (c->n == c->cap) {
            size_t cap = c->cap ? 2 * c->cap : 8;
            int64_t *grown = realloc(c->ids, cap * sizeof *grown);
            if (!grown)
                return 0; /* dropped at a later start */
            c->ids = grown;
            c->cap = cap;
        }
        c->ids[c->n++] = id;
        return 0;
    }
    j->stats.resent++;
    j->durable(j->durable_ctx, topic, payload, len, id);
    return 0;
}

/* Removes the entries resend_one() found undeliverable. */
static void drop_undeliverable(resend_ctx_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        ota_svc_jobs_answer_delivered(c->j, c->ids[i]);
    free(c->ids);
    c->ids = NULL;
    c->n = c->cap = 0;
}

int ota_svc_jobs_resend_answers(ota_svc_jobs_t *jobs)
{
    uint64_t before = jobs->stats.resent;
    if (jobs->durable == NULL)
        return 0;
    size_t expired = 0;
    if (ota_store_outbox_expire(jobs->store, ota_store_now_ms() - OTA_SVC_JOBS_OUTBOX_TTL_MS,
                                &expired) != OTA_STORE_OK)
        logf_(jobs, OTA_SVC_LOG_ERROR, "jobs: outbox: %s", ota_store_errmsg(jobs->store));
    else if (expired > 0)
        logf_(jobs, OTA_SVC_LOG_WARN,
              "jobs: %zu outbox answer(s) older than %lld h dropped: no device waits for them",
              expired, (long long)(OTA_SVC_JOBS_OUTBOX_TTL_MS / 3600000));
    resend_ctx_t c = {jobs, NULL, 0, 0};
    if (ota_store_outbox_list(jobs->store, resend_one, &c) != OTA_STORE_OK)
        logf_(jobs, OTA_SVC_LOG_ERROR, "jobs: outbox: %s", ota_store_errmsg(jobs->store));
    drop_undeliverable(&c);
    if (jobs->stats.resent > before)
        logf_(jobs, OTA_SVC_LOG_INFO,
              "jobs: %llu answer(s) the broker had not acknowledged "
              "sent again",
              (unsigned long long)(jobs->stats.resent - before));
    return (int)(jobs->stats.resent - before);
}

int ota_svc_jobs_adopt_answers(ota_svc_jobs_t *jobs, int64_t now_ms, int64_t live_ms)
{
    uint64_t before = jobs->stats.resent;
    if (jobs->durable == NULL)
        return 0;
    size_t expired = 0;
    if (ota_store_outbox_expire_orphans(jobs->store, now_ms - OTA_SVC_JOBS_OUTBOX_TTL_MS, now_ms,
                                        live_ms, &expired) != OTA_STORE_OK)
        logf_(jobs, OTA_SVC_LOG_ERROR, "jobs: outbox: %s", ota_store_errmsg(jobs->store));
    else if (expired > 0)
        logf_(jobs, OTA_SVC_LOG_WARN,
              "jobs: %zu answer(s) of a stopped instance older than %lld h dropped instead of "
              "taken over: no device waits for them",
              expired, (long long)(OTA_SVC_JOBS_OUTBOX_TTL_MS / 3600000));
    resend_ctx_t c = {jobs, NULL, 0, 0};
    if (ota_store_outbox_adopt(jobs->store, now_ms, live_ms, resend_one, &c, NULL) != OTA_STORE_OK)
        logf_(jobs, OTA_SVC_LOG_ERROR, "jobs: outbox: %s", ota_store_errmsg(jobs->store));
    drop_undeliverable(&c);
    if (jobs->stats.resent > before)
        logf_(jobs, OTA_SVC_LOG_INFO,
              "jobs: %llu answer(s) of a stopped instance taken over and sent",
              (unsigned long long)(jobs->stats.resent - before));
    return (int)(jobs->stats.resent - before);
}

static void add_raw_or_null(cJSON *obj, const char *key, const char *raw)
{
    if (raw)
        cJSON_AddItemToObject(obj, key, cJSON_CreateRaw(raw));
    else
        cJSON_AddNullToObject(obj, key);
}

/** Adds "timestamp" (epoch seconds) and, if any, "clientToken". */
static void add_common(cJSON *obj, const char *token, int64_t now_ms)
{
    if (token)
        cJSON_AddStringToObject(obj, "clientToken", token);
    cJSON_AddNumberToObject(obj, "timestamp", (double)(now_ms / 1000));
}

/** The status a device is told: AWS names only (a SKIPPED execution was taken
 *  off the thing's list, which AWS calls REMOVED). */
static const char *wire_status(ota_store_exec_status_t status)
{
    return ota_store_exec_status_name(
        (int)(status == OTA_STORE_EXEC_SKIPPED ? OTA_STORE_EXEC_REMOVED : status));
}

/*
 * Adds an execution's statusDetails to an answer. Details stored before they were bounded may
 * be longer than OTA_STORE_DETAILS_MAX (written with whitespace or escapes): they are sent
 * compact when that fits, else left out (logged), so that the execution is still answered.
 */
static void add_details(ota_svc_jobs_t *j, cJSON *x, const ota_store_execution_t *e)
{
    if (!e->status_details)
        return;
    if (strlen(e->status_details) <= OTA_STORE_DETAILS_MAX) {
        cJSON_AddItemToObject(x, "statusDetails", cJSON_CreateRaw(e->status_details));
        return;
    }
    cJSON *parsed = cJSON_Parse(e->status_details);
    char *compact = parsed ? cJSON_PrintUnformatted(parsed) : NULL;
    cJSON_Delete(parsed);
    if (compact && strlen(compact) <= OTA_STORE_DETAILS_MAX) {
        cJSON_AddItemToObject(x, "statusDetails", cJSON_CreateRaw(compact));
    } else {
        logf_(j, OTA_SVC_LOG_WARN,
              "jobs: %s job %s: stored statusDetails of %zu bytes, over the limit of %u: "
              "left out of the answer",
              e->thing, e->job_id, strlen(e->status_details), OTA_STORE_DETAILS_MAX);
    }
    cJSON_free(compact);
}

/** Builds an AWS JobExecution object; document is the raw job document or NULL to omit. */
static cJSON *exec_json(ota_svc_jobs_t *j, const ota_store_execution_t *e, const char *document)
{
    cJSON *x = cJSON_CreateObject();
    cJSON_AddStringToObject(x, "jobId", e->job_id);
    cJSON_AddStringToObject(x, "thingName", e->thing);
    cJSON_AddStringToObject(x, "status", wire_status(e->status));
    add_details(j, x, e);
    cJSON_AddNumberToObject(x, "queuedAt", (double)(e->queued_at_ms / 1000));
    if (e->started_at_ms)
        cJSON_AddNumberToObject(x, "startedAt", (double)(e->started_at_ms / 1000));
    cJSON_AddNumberToObject(x, "lastUpdatedAt", (double)(e->last_updated_at_ms / 1000));
    cJSON_AddNumberToObject(x, "versionNumber", (double)e->version_number);
    cJSON_AddNumberToObject(x, "executionNumber", (double)e->execution_number);
    if (document)
        cJSON_AddItemToObject(x, "jobDocument", cJSON_CreateRaw(document));
    return x;
}

/** JobExecutionState: status, statusDetails, versionNumber. */
static cJSON *exec_state_json(ota_svc_jobs_t *j, const ota_store_execution_t *e)
{
    cJSON *x = cJSON_CreateObject();
    cJSON_AddStringToObject(x, "status", wire_status(e->status));
    add_details(j, x, e);
    cJSON_AddNumberToObject(x, "versionNumber", (double)e->version_number);
    return x;
}

/** JobExecutionSummary for the get answer. */
static cJSON *summary_json(const ota_store_execution_t *e)
{
    cJSON *x = cJSON_CreateObject();
    cJSON_AddStringToObject(x, "jobId", e->job_id);
    cJSON_AddNumberToObject(x, "queuedAt", (double)(e->queued_at_ms / 1000));
    if (e->started_at_ms)
        cJSON_AddNumberToObject(x, "startedAt", (double)(e->started_at_ms / 1000));
    cJSON_AddNumberToObject(x, "lastUpdatedAt", (double)(e->last_updated_at_ms / 1000));
    cJSON_AddNumberToObject(x, "versionNumber", (double)e->version_number);
    cJSON_AddNumberToObject(x, "executionNumber", (double)e->execution_number);
    return x;
}

void ota_svc_jobs_set_document_hook(ota_svc_jobs_t *jobs, ota_svc_jobs_doc_fn hook, void *ctx)
{
    if (!jobs)
        return;
    jobs->doc_hook = hook;
    jobs->doc_ctx = ctx;
}

/** The job document of a job as sent to a thing (heap, caller frees), or NULL. */
static char *job_document(ota_svc_jobs_t *j, const char *job_id, const char *thing, int64_t now_ms)
{
    char *doc = NULL;
    if (ota_store_job_document(j->store, job_id, &doc) != OTA_STORE_OK)
        logf_(j, OTA_SVC_LOG_ERROR, "jobs: document of job %s: %s", job_id,
              ota_store_errmsg(j->store));
    char *sent = doc && j->doc_hook ? j->doc_hook(j->doc_ctx, thing, job_id, doc, now_ms) : NULL;
    if (sent) {
        free(doc);
        doc = sent;
    }
    return doc;
}

/* Raw-span scanner: finds the text of a top-level member's value (stale_progress() reads
 * "self_test" in stored statusDetails with it). Works on input cJSON has already accepted. */

static size_t skip_ws(const char *p, size_t i, size_t n)
{
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
        i++;
    return i;
}

/** Index just after the string starting at p[i] == '"', or n on error. */
static size_t skip_string(const char *p, size_t i, size_t n)
{
    for (i++; i < n; i++) {
        if (p[i] == '\\')
            i++;
        else if (p[i] == '"')
            return i + 1;
    }
    return n;
}

/** Index just after the value starting at p[i], or n on error. */
static size_t skip_value(const char *p, size_t i, size_t n)
{
    if (i >= n)
        return n;
    if (p[i] == '"')
        return skip_string(p, i, n);
    if (p[i] == '{' || p[i] == '[') {
        int depth = 0;
        while (i < n) {
            char c = p[i];
            if (c == '"') {
                i = skip_string(p, i, n);
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if (c == '}' || c == ']')
                depth--;
            i++;
            if (depth == 0)
                return i;
        }
        return n;
    }
    while (i < n && p[i] != ',' && p[i] != '}' && p[i] != ']' && p[i] != ' ' && p[i] != '\t' &&
           p[i] != '\r' && p[i] != '\n')
        i++;
    return i;
}

/** Copies the raw value of top-level member key (first occurrence); heap, or NULL. */
static char *raw_member(const char *p, size_t n, const char *key)
{
    size_t klen = strlen(key), i = skip_ws(p, 0, n);
    if (i >= n || p[i] != '{')
        return NULL;
    i++;
    while (i < n) {
        i = skip_ws(p, i, n);
        if (i >= n || p[i] != '"')
            return NULL;
        size_t ks = i + 1, ke = skip_string(p, i, n);
        if (ke >= n)
            return NULL;
        i = skip_ws(p, ke, n);
        if (i >= n || p[i] != ':')
            return NULL;
        i = skip_ws(p, i + 1, n);
        size_t vs = i, ve = skip_value(p, i, n);
        if (ve > n || ve == vs)
            return NULL;
        if (ke - 1 - ks == klen && memcmp(p + ks, key, klen) == 0) {
            char *out = malloc(ve - vs + 1);
            if (out) {
                memcpy(out, p + vs, ve - vs);
                out[ve - vs] = '\0';
            }
            return out;
        }
        i = skip_ws(p, ve, n);
        if (i < n && p[i] == ',')
            i++;
        else
            return NULL;
    }
    return NULL;
}

/** Best effort: a client token from a payload that is not valid JSON. */
static int salvage_token(const char *p, size_t n, char *out, size_t cap)
{
    static const char key[] = "\"clientToken\"";
    size_t klen = sizeof key - 1;
    for (size_t i = 0; i + klen <= n; i++) {
        if (memcmp(p + i, key, klen) != 0)
            continue;
        size_t k = skip_ws(p, i + klen, n);
        if (k >= n || p[k] != ':')
            continue;
        k = skip_ws(p, k + 1, n);
        if (k >= n || p[k] != '"')
            continue;
        size_t s = k + 1, e = s;
        while (e < n && p[e] != '"' && p[e] != '\\' && (unsigned char)p[e] >= 0x20)
            e++;
        if (e >= n || p[e] != '"' || e - s > JOBS_CLIENT_TOKEN_MAX || e - s >= cap ||
            !ota_svc_utf8_valid(p + s, e - s, 0))
            return 0;
        memcpy(out, p + s, e - s);
        out[e - s] = '\0';
        return 1;
    }
    return 0;
}

/** Number of UTF-8 characters (code points) in s. */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                 */
/* ------------------------------------------------------------------------ */

/** One parsed request. */
typedef struct {
    ota_svc_jobs_t *j;
    char thing[OTA_STORE_THING_NAME_MAX + 1];
    char base[JOBS_TOPIC_MAX]; /* request topic; answers go to base/accepted|rejected */
    const char *payload;
    size_t len;
    cJSON *json; /* request object */
    const char *token;
    int64_t now_ms;
    int delivery_id;         /* MQTT packet id, 0 for QoS 0 */
    int64_t delivery_digest; /* of topic and payload */
} req_t;

static void answer(req_t *r, const char *suffix, cJSON *obj)
{
    char topic[JOBS_TOPIC_MAX + 16];
    snprintf(topic, sizeof topic, "%s/%s", r->base, suffix);
    add_common(obj, r->token, r->now_ms);
    /* The answer to a QoS 1 request must survive a crash after its PUBACK left. */
    int rc = publish_json_as(r->j, topic, obj, r->delivery_id > 0);
    cJSON_Delete(obj);
    if (rc == JOBS_TOO_LARGE) {
        /* Larger than the broker takes: the device hears why instead (a short answer). */
        cJSON *err = cJSON_CreateObject();
        cJSON_AddStringToObject(err, "code", "InternalError");
        cJSON_AddStringToObject(err, "message",
                                "the answer is larger than the broker's largest message");
        snprintf(topic, sizeof topic, "%s/rejected", r->base);
        add_common(err, r->token, r->now_ms);
        publish_json_as(r->j, topic, err, r->delivery_id > 0);
        cJSON_Delete(err);
    }
}

/** Publishes an ErrorResponse on base/rejected; state (may be NULL) adds executionState. */
static void reject(req_t *r, const char *code, const char *message,
                   const ota_store_execution_t *state)
{
    cJSON *obj = cJSON_CreateObject();
    cJSON_AddStringToObject(obj, "code", code);
    cJSON_AddStringToObject(obj, "message", message);
    if (state)
        cJSON_AddItemToObject(obj, "executionState", exec_state_json(r->j, state));
    logf_(r->j, OTA_SVC_LOG_INFO, "jobs: %s rejected: %s (%s)", r->base, code, message);
    answer(r, "rejected", obj);
}

static void reject_store(req_t *r, int rc)
{
    if (rc == OTA_STORE_NOT_FOUND)
        reject(r, "ResourceNotFound", ota_store_errmsg(r->j->store), NULL);
    else if (rc == OTA_STORE_INVALID)
        reject(r, "InvalidRequest", ota_store_errmsg(r->j->store), NULL);
    else {
        logf_(r->j, OTA_SVC_LOG_ERROR, "jobs: store failure on %s: %s", r->base,
              ota_store_errmsg(r->j->store));
        reject(r, "InternalError", "internal error", NULL);
    }
}

/** Reads an optional boolean member; returns -1 if present but not a boolean. */
static int opt_bool(cJSON *obj, const char *key, int dflt)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v))
        return dflt;
    if (!cJSON_IsBool(v))
        return -1;
    return cJSON_IsTrue(v);
}

/** Reads an optional integer member (number or decimal string); 0 ok, -1 bad. */
static int opt_int(cJSON *obj, const char *key, int64_t *out, int *present)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *present = 0;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d != (double)(int64_t)d || d > 9e15 || d < -9e15)
            return -1;
        *out = (int64_t)d;
    } else if (cJSON_IsString(v) && v->valuestring[0]) {
        char *end;
        long long x = strtoll(v->valuestring, &end, 10);
        if (*end)
            return -1;
        *out = x;
    } else {
        return -1;
    }
    *present = 1;
    return 0;
}

/* A device's key for a message: escaped (ota_text_escape()), at most 64 bytes. */
static const char *shown_key(const char *key, char out[65])
{
    ota_text_escape(key, strlen(key), out, 65);
    return out;
}

/**
 * Validates statusDetails (object of string -> string, <= 10 keys, keys
 * 1..128 characters, values <= 1024 characters, at most OTA_STORE_DETAILS_MAX
 * bytes as compact JSON) and returns that compact text (heap) in *raw, NULL
 * if absent: what is stored and sent is the service's own serialization,
 * never the device's spelling (whitespace, escapes). 0 ok; -1 invalid
 * (message in msg).
 */
static int take_details(req_t *r, char **raw, char *msg, size_t cap)
{
    *raw = NULL;
    cJSON *d = cJSON_GetObjectItemCaseSensitive(r->json, "statusDetails");
    if (!d || cJSON_IsNull(d))
        return 0;
    if (!cJSON_IsObject(d)) {
        snprintf(msg, cap, "statusDetails must be an object of string values");
        return -1;
    }
    int n = 0;
    char key[65];
    for (cJSON *e = d->child; e; e = e->next, n++) {
        if (!cJSON_IsString(e)) {
            snprintf(msg, cap, "statusDetails value of '%s' is not a string",
                     shown_key(e->string, key));
            return -1;
        }
        size_t klen = utf8_chars(e->string);
        if (klen == 0 || klen > JOBS_DETAILS_KEY_MAX) {
            snprintf(msg, cap, "statusDetails keys must be 1..%d characters", JOBS_DETAILS_KEY_MAX);
            return -1;
        }
        if (utf8_chars(e->valuestring) > JOBS_DETAILS_VALUE_MAX) {
            snprintf(msg, cap, "statusDetails value of '%s' is longer than %d characters",
                     shown_key(e->string, key), JOBS_DETAILS_VALUE_MAX);
            return -1;
        }
    }
    if (n > JOBS_DETAILS_MAX_KEYS) {
        snprintf(msg, cap, "statusDetails has %d keys, at most %d are allowed", n,
                 JOBS_DETAILS_MAX_KEYS);
        return -1;
    }
    *raw = cJSON_PrintUnformatted(d);
    if (!*raw) {
        snprintf(msg, cap, "out of memory");
        return -1;
    }
    size_t bytes = strlen(*raw);
    if (bytes > OTA_STORE_DETAILS_MAX) {
        snprintf(msg, cap, "statusDetails are %zu bytes as compact JSON, at most %u are allowed",
                 bytes, OTA_STORE_DETAILS_MAX);
        cJSON_free(*raw);
        *raw = NULL;
        return -1;
    }
    return 0;
}

/** Reads stepTimeoutInMinutes: 0 absent, -1 or 1..10080; returns -1 if invalid. */
static int take_step_timeout(req_t *r, int64_t *out)
{
    int present;
    *out = 0;
    if (opt_int(r->json, "stepTimeoutInMinutes", out, &present))
        return -1;
    if (present && *out != -1 && (*out < 1 || *out > OTA_STORE_STEP_TIMEOUT_MAX))
        return -1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Notify-next and jobs/notify                                              */
/* ------------------------------------------------------------------------ */

/** A thing's pending executions as JobExecutionSummary arrays, and their signature. */
typedef struct {
    cJSON *in_progress;
    cJSON *queued;
    uint64_t signature; /* FNV-1a over "jobId/status/" of each, in order */
} pending_ctx_t;

static uint64_t fnv_text(uint64_t h, const char *text)
{
    for (; *text; text++)
        h = (h ^ (uint8_t)*text) * 1099511628211u;
    return (h ^ '/') * 1099511628211u;
}

static int add_pending(void *ctx, const ota_store_execution_t *e)
{
    pending_ctx_t *c = ctx;
    cJSON_AddItemToArray(e->status == OTA_STORE_EXEC_IN_PROGRESS ? c->in_progress : c->queued,
                         summary_json(e));
    c->signature =
        fnv_text(fnv_text(c->signature, e->job_id), ota_store_exec_status_name((int)e->status));
    return 0;
}

/** Lists a thing's pending executions (the caller deletes both arrays on success). */
static int list_pending(ota_svc_jobs_t *j, const char *thing, pending_ctx_t *c)
{
    c->in_progress = cJSON_CreateArray();
    c->queued = cJSON_CreateArray();
    c->signature = 14695981039346656037u;
    int rc = ota_store_execution_list_pending(j->store, thing, add_pending, c);
    if (rc != OTA_STORE_OK) {
        cJSON_Delete(c->in_progress);
        cJSON_Delete(c->queued);
    }
    return rc;
}

/**
 * Publishes jobs/notify (the pending list, as AWS IoT does when it changes) if
 * the list differs from the one last published. 0 done or nothing to do, -1
 * to retry later.
 */
static int publish_list_if_changed(ota_svc_jobs_t *j, const char *thing, int64_t now_ms)
{
    pending_ctx_t c;
    int64_t last = 0;
    int known = 0;
    if (ota_store_notify_list_get(j->store, thing, &last, &known) != OTA_STORE_OK ||
        list_pending(j, thing, &c) != OTA_STORE_OK) {
        logf_(j, OTA_SVC_LOG_ERROR, "jobs: pending jobs of %s: %s", thing,
              ota_store_errmsg(j->store));
        return -1;
    }
    int rc = 0;
    if (!known || (uint64_t)last != c.signature) {
        char topic[JOBS_TOPIC_MAX];
        snprintf(topic, sizeof topic, "$aws/things/%s/jobs/notify", thing);
        cJSON *obj = cJSON_CreateObject();
        cJSON_AddNumberToObject(obj, "timestamp", (double)(now_ms / 1000));
        cJSON *jobs = cJSON_AddObjectToObject(obj, "jobs");
        /* As AWS IoT: a status without executions is left out. */
        if (cJSON_GetArraySize(c.in_progress) > 0) {
            cJSON_AddItemToObject(jobs, "IN_PROGRESS", c.in_progress);
            c.in_progress = NULL;
        }
        if (cJSON_GetArraySize(c.queued) > 0) {
            cJSON_AddItemToObject(jobs, "QUEUED", c.queued);
            c.queued = NULL;
        }
        rc = publish_json(j, topic, obj);
        cJSON_Delete(obj);
        if (rc == JOBS_TOO_LARGE)
            rc = 0; /* never sendable: recorded as done (logged), not retried */
        if (rc == 0 &&
            ota_store_notify_list_done(j->store, thing, (int64_t)c.signature) != OTA_STORE_OK)
            logf_(j, OTA_SVC_LOG_ERROR, "jobs: recording jobs/notify of %s: %s", thing,
                  ota_store_errmsg(j->store));
    }
    cJSON_Delete(c.in_progress);
    cJSON_Delete(c.queued);
    return rc == 0 ? 0 : -1;
}

/** Publishes notify-next for a thing: its next execution, or none. */
static int publish_notify(ota_svc_jobs_t *j, const char *thing, const ota_store_execution_t *next,
                          int64_t now_ms)
{
    char topic[JOBS_TOPIC_MAX];
    snprintf(topic, sizeof topic, "$aws/things/%s/jobs/notify-next", thing);
    cJSON *obj = cJSON_CreateObject();
    cJSON_AddNumberToObject(obj, "timestamp", (double)(now_ms / 1000));
    if (next) {
        char *doc = job_document(j, next->job_id, thing, now_ms);
        cJSON_AddItemToObject(obj, "execution", exec_json(j, next, doc));
        free(doc);
    }
    int rc = publish_json(j, topic, obj);
    cJSON_Delete(obj);
    return rc;
}

typedef struct {
    ota_svc_jobs_t *j;
    int64_t now_ms;
} notify_ctx_t;

static int notify_one(void *ctx, const char *thing, int64_t seq, const char *last)
{
    notify_ctx_t *c = ctx;
    ota_svc_jobs_t *j = c->j;
    ota_store_execution_t next;
    int rc = ota_store_execution_next(j->store, thing, &next);
    if (rc != OTA_STORE_OK && rc != OTA_STORE_NOT_FOUND) {
        logf_(j, OTA_SVC_LOG_ERROR, "jobs: next job of %s: %s", thing, ota_store_errmsg(j->store));
        return 0;
    }
    const char *job = rc == OTA_STORE_OK ? next.job_id : "";
    int sent = 0;
    if (strcmp(job, last) != 0) {
        /* A notice larger than the broker takes is never sent (logged): not retried. */
        int sent_rc = publish_notify(j, thing, rc == OTA_STORE_OK ? &next : NULL, c->now_ms);
        if (sent_rc != 0 && sent_rc != JOBS_TOO_LARGE) {
            ota_store_execution_free(&next);
            return 0; /* stays pending; retried on a later pass */
        }
        sent = 1;
    }
    if (sent)
        logf_(j, OTA_SVC_LOG_INFO, "jobs: notify-next %s: %s", thing, job[0] ? job : "(none)");
    if (publish_list_if_changed(j, thing, c->now_ms) != 0) {
        ota_store_execution_free(&next);
        return 0; /* stays pending; retried on a later pass */
    }
    if (ota_store_notify_done(j->store, thing, seq, job) != OTA_STORE_OK)
        logf_(j, OTA_SVC_LOG_ERROR, "jobs: recording notify-next of %s: %s", thing,
              ota_store_errmsg(j->store));
    ota_store_execution_free(&next);
    return 0;
}

/** Publishes notify-next for every thing whose next job changed. */
static void notify_changes(ota_svc_jobs_t *j, int64_t now_ms)
{
    notify_ctx_t c = {j, now_ms};
    if (ota_store_notify_pending(j->store, notify_one, &c) != OTA_STORE_OK)
        logf_(j, OTA_SVC_LOG_ERROR, "jobs: listing changes: %s", ota_store_errmsg(j->store));
}

/* ------------------------------------------------------------------------ */
/* Handlers                                                                 */
/* ------------------------------------------------------------------------ */

/** $next/get and <job>/get (DescribeJobExecution). */
static void on_describe(req_t *r, const char *job_id)
{
    ota_svc_jobs_t *j = r->j;
    int include_doc = opt_bool(r->json, "includeJobDocument", 1);
    int64_t exec_no = 0;
    int present;
    if (include_doc < 0 || opt_int(r->json, "executionNumber", &exec_no, &present) ||
        (present && exec_no < 0)) {
        reject(r, "InvalidRequest",
               "includeJobDocument must be a boolean, executionNumber a "
               "positive integer",
               NULL);
        return;
    }
    int next = strcmp(job_id, "$next") == 0;
    ota_store_execution_t e;
    int rc = next ? ota_store_execution_next(j->store, r->thing, &e)
                  : ota_store_execution_get(j->store, job_id, r->thing, &e);
    if (rc == OTA_STORE_OK && (!e.released || (present && exec_no != e.execution_number)))
        rc = OTA_STORE_NOT_FOUND;
    if (rc != OTA_STORE_OK && !(next && rc == OTA_STORE_NOT_FOUND)) {
        ota_store_execution_free(&e);
        if (rc == OTA_STORE_NOT_FOUND)
            reject(r, "ResourceNotFound", "no such job execution for this thing", NULL);
        else
            reject_store(r, rc);
        return;
    }
    cJSON *obj = cJSON_CreateObject();
    if (rc == OTA_STORE_OK) {
        char *doc = include_doc ? job_document(j, e.job_id, r->thing, r->now_ms) : NULL;
        cJSON_AddItemToObject(obj, "execution", exec_json(j, &e, doc));
        free(doc);
    }
    answer(r, "accepted", obj);
    if (next && rc == OTA_STORE_OK) {
        /* AWS agents on a standard broker only listen to notify-next: repeat it there
         * (always with the document, as notify-next carries it). */
        if (publish_notify(j, r->thing, &e, r->now_ms) == 0)
            ota_store_notify_done(j->store, r->thing, -1, e.job_id);
    }
    ota_store_execution_free(&e);
}

/** get (GetPendingJobExecutions). */
static void on_get_pending(req_t *r)
{
    pending_ctx_t c;
    int rc = list_pending(r->j, r->thing, &c);
    if (rc != OTA_STORE_OK) {
        reject_store(r, rc);
        return;
    }
    cJSON *obj = cJSON_CreateObject();
    cJSON_AddItemToObject(obj, "inProgressJobs", c.in_progress);
    cJSON_AddItemToObject(obj, "queuedJobs", c.queued);
    answer(r, "accepted", obj);
}

/** Rejects an update the store refused, with the AWS code for it. */
static void reject_update(req_t *r, int rc, const ota_store_execution_t *state)
{
    const char *msg = ota_store_errmsg(r->j->store);
    switch (rc) {
    case OTA_STORE_VERSION_MISMATCH:
        reject(r, "VersionMismatch", msg, state);
        break;
    case OTA_STORE_TERMINAL:
        /* Ended by the service (canceled, removed, timed out): the job is over.
         * Ended by the device: the transition is not allowed. */
        if (state->status == OTA_STORE_EXEC_CANCELED || state->status == OTA_STORE_EXEC_REMOVED ||
            state->status == OTA_STORE_EXEC_TIMED_OUT)
            reject(r, "TerminalStateReached", msg, state);
        else
            reject(r, "InvalidStateTransition", msg, state);
        break;
    case OTA_STORE_BAD_TRANSITION:
        reject(r, "InvalidStateTransition", msg, state);
        break;
    default:
        reject_store(r, rc);
    }
}

/** start-next (StartNextPendingJobExecution). */
static void on_start_next(req_t *r)
{
    ota_svc_jobs_t *j = r->j;
    char msg[160];
    char *details = NULL;
    int64_t step = 0;
    if (take_details(r, &details, msg, sizeof msg)) {
        reject(r, "InvalidRequest", msg, NULL);
        return;
    }
    if (take_step_timeout(r, &step)) {
        free(details);
        reject(r, "InvalidRequest", "stepTimeoutInMinutes must be -1 or 1..10080", NULL);
        return;
    }
    ota_store_execution_t e;
    int rc = ota_store_execution_next(j->store, r->thing, &e);
    if (rc == OTA_STORE_OK && e.status == OTA_STORE_EXEC_QUEUED) {
        ota_store_exec_update_t upd = {.status = OTA_STORE_EXEC_IN_PROGRESS,
                                       .status_details = details,
                                       .expected_version = e.version_number,
                                       .step_timeout_min = step,
                                       .delivery_session = j->session,
                                       .delivery_id = r->delivery_id,
                                       .delivery_digest = r->delivery_digest};
        char job_id[OTA_STORE_JOB_ID_MAX + 1];
        memcpy(job_id, e.job_id, sizeof job_id);
        ota_store_execution_free(&e);
        rc = ota_store_execution_update(j->store, job_id, r->thing, &upd, r->now_ms, &e);
        if (rc == OTA_STORE_OK)
            logf_(j, OTA_SVC_LOG_INFO, "jobs: %s job %s: QUEUED -> IN_PROGRESS (start-next)",
                  r->thing, job_id);
        if (rc == OTA_STORE_DUPLICATE) {
            j->stats.redelivered++;
            rc = OTA_STORE_OK;
        }
        if (rc == OTA_STORE_OK)
            notify_changes(j, r->now_ms);
    }
    free(details);
    if (rc != OTA_STORE_OK && rc != OTA_STORE_NOT_FOUND) {
        reject_update(r, rc, &e);
        ota_store_execution_free(&e);
        return;
    }
    cJSON *obj = cJSON_CreateObject();
    if (rc == OTA_STORE_OK) {
        char *doc = job_document(j, e.job_id, r->thing, r->now_ms);
        cJSON_AddItemToObject(obj, "execution", exec_json(j, &e, doc));
        free(doc);
    }
    ota_store_execution_free(&e);
    answer(r, "accepted", obj);
}

/*
 * An IN_PROGRESS update without "self_test" in its statusDetails, for an execution whose
 * recorded statusDetails have it, is a download-progress report overtaken by the device's
 * self-test step: the device reports its steps in order on one connection, but instances
 * sharing the Jobs API may apply them out of order. Applying it would erase "updatedBy" and
 * the step the rebooted device looks for. A device that names an expectedVersion orders its
 * updates itself and is not judged by this rule.
 */
static int stale_progress(const ota_store_execution_t *before, const ota_store_exec_update_t *upd)
{
    if (before->status != OTA_STORE_EXEC_IN_PROGRESS || upd->status != OTA_STORE_EXEC_IN_PROGRESS ||
        before->status_details == NULL) {
        return 0;
    }
    char *had = raw_member(before->status_details, strlen(before->status_details), "self_test");
    if (had == NULL) {
        return 0;
    }
    free(had);
    if (upd->status_details == NULL) {
        return 0; /* statusDetails unchanged: nothing is erased */
    }
    char *has = raw_member(upd->status_details, strlen(upd->status_details), "self_test");
    int erased = has == NULL;
    free(has);
    return erased;
}

/** Answers an update accepted: the execution's state and the job document if asked for. */
static void accept_update(req_t *r, const char *job_id, const ota_store_execution_t *state,
                          int include_state, int include_doc)
{
    cJSON *obj = cJSON_CreateObject();
    if (include_state)
        cJSON_AddItemToObject(obj, "executionState", exec_state_json(r->j, state));
    if (include_doc) {
        char *doc = job_document(r->j, job_id, r->thing, r->now_ms);
        add_raw_or_null(obj, "jobDocument", doc);
        free(doc);
    }
    answer(r, "accepted", obj);
}

/** <job>/update (UpdateJobExecution). */
static void on_update(req_t *r, const char *job_id)
{
    ota_svc_jobs_t *j = r->j;
    cJSON *st = cJSON_GetObjectItemCaseSensitive(r->json, "status");
    ota_store_exec_update_t upd = {0};
    if (!cJSON_IsString(st) || ota_store_exec_status_parse(st->valuestring, &upd.status) ||
        (upd.status != OTA_STORE_EXEC_IN_PROGRESS && upd.status != OTA_STORE_EXEC_SUCCEEDED &&
         upd.status != OTA_STORE_EXEC_FAILED && upd.status != OTA_STORE_EXEC_REJECTED)) {
        reject(r, "InvalidRequest", "status must be IN_PROGRESS, SUCCEEDED, FAILED or REJECTED",
               NULL);
        return;
    }
    int present;
    int include_state = opt_bool(r->json, "includeJobExecutionState", 0);
    int include_doc = opt_bool(r->json, "includeJobDocument", 0);
    if (include_state < 0 || include_doc < 0) {
        reject(r, "InvalidRequest",
               "includeJobExecutionState and includeJobDocument must be "
               "booleans",
               NULL);
        return;
    }
    if (opt_int(r->json, "expectedVersion", &upd.expected_version, &present) ||
        (present && upd.expected_version < 1)) {
        reject(r, "InvalidRequest", "expectedVersion must be a positive integer", NULL);
        return;
    }
    if (take_step_timeout(r, &upd.step_timeout_min)) {
        reject(r, "InvalidRequest", "stepTimeoutInMinutes must be -1 or 1..10080", NULL);
        return;
    }
    int64_t exec_no = 0;
    int exec_no_given = 0;
    if (opt_int(r->json, "executionNumber", &exec_no, &exec_no_given) ||
        (exec_no_given && exec_no < 1)) {
        reject(r, "InvalidRequest", "executionNumber must be a positive integer", NULL);
        return;
    }
    char msg[160];
    char *details = NULL;
    if (take_details(r, &details, msg, sizeof msg)) {
        reject(r, "InvalidRequest", msg, NULL);
        return;
    }
    upd.status_details = details;
    upd.delivery_session = j->session;
    upd.delivery_id = r->delivery_id;
    upd.delivery_digest = r->delivery_digest;
    ota_store_execution_t before, after;
    int had, rc = OTA_STORE_OK, stale = 0;
    for (int attempt = 0;; attempt++) {
        had = ota_store_execution_get(j->store, job_id, r->thing, &before) == OTA_STORE_OK;
        if (had && exec_no_given && exec_no != before.execution_number) {
            /* AWS: the execution number names an execution; another one does not exist. */
            free(details);
            ota_store_execution_free(&before);
            reject(r, "ResourceNotFound", "no execution with this executionNumber for this thing",
                   NULL);
            return;
        }
        if (had && !present && stale_progress(&before, &upd)) {
            stale = 1;
            break;
        }
        /* Without the device's expectedVersion, the state just read is the one the rule
         * above judged: another instance's update in between makes this one read again
         * (a few times; the last try applies it as AWS would, unconditionally). */
        if (!present) {
            upd.expected_version = had && attempt < 4 ? before.version_number : 0;
        }
        rc = ota_store_execution_update(j->store, job_id, r->thing, &upd, r->now_ms, &after);
        if (rc != OTA_STORE_VERSION_MISMATCH || present || !had || attempt >= 4) {
            break;
        }
        ota_store_execution_free(&before);
        ota_store_execution_free(&after);
    }
    free(details);
    if (stale) {
        /* Accepted as the device's latest word would be, and not applied: the state it would
         * overwrite came later from the same device (see stale_progress). */
        logf_(j, OTA_SVC_LOG_INFO,
              "jobs: %s job %s: a progress update that arrived after the self-test step "
              "was not applied (version %lld kept)",
              r->thing, job_id, (long long)before.version_number);
        accept_update(r, job_id, &before, include_state, include_doc);
        ota_store_execution_free(&before);
        return;
    }
    if (rc == OTA_STORE_DUPLICATE) {
        /* The broker delivered it again after a restart: applied once, answered again. */
        j->stats.redelivered++;
        logf_(j, OTA_SVC_LOG_INFO, "jobs: %s job %s: update delivered again, answered again",
              r->thing, job_id);
        rc = OTA_STORE_OK;
    }
    if (rc != OTA_STORE_OK) {
        reject_update(r, rc, rc == OTA_STORE_NOT_FOUND ? NULL : &after);
        ota_store_execution_free(&before);
        ota_store_execution_free(&after);
        return;
    }
    logf_(j,
          ota_store_exec_status_is_terminal((int)after.status) ? OTA_SVC_LOG_INFO
                                                               : OTA_SVC_LOG_DEBUG,
          "jobs: %s job %s: %s -> %s (version %lld)", r->thing, job_id,
          had ? ota_store_exec_status_name((int)before.status) : "?",
          ota_store_exec_status_name((int)after.status), (long long)after.version_number);
    accept_update(r, job_id, &after, include_state, include_doc);
    if (ota_store_exec_status_is_terminal((int)after.status)) {
        ota_store_job_t job;
        if (ota_store_job_get(j->store, job_id, &job) == OTA_STORE_OK &&
            job.status != OTA_STORE_JOB_IN_PROGRESS)
            logf_(j, OTA_SVC_LOG_INFO,
                  "jobs: job %s is %s (%u succeeded, %u failed, %u timed "
                  "out, %u canceled)",
                  job_id, ota_store_job_status_name((int)job.status), job.n_succeeded,
                  job.n_failed + job.n_rejected, job.n_timed_out, job.n_canceled);
        ota_store_job_free(&job);
    }
    if (!had || before.status != after.status)
        notify_changes(j, r->now_ms); /* notify-next, jobs/notify */
    ota_store_execution_free(&before);
    ota_store_execution_free(&after);
}

/* ------------------------------------------------------------------------ */
/* Dispatch                                                                 */
/* ------------------------------------------------------------------------ */

enum { OP_NONE, OP_ANSWER, OP_UNKNOWN, OP_GET_PENDING, OP_START_NEXT, OP_DESCRIBE, OP_UPDATE };

/** Whether the topic after "jobs/" is one the service publishes (an answer or a notice). */
static int is_answer_topic(const char *rest)
{
    const char *last = strrchr(rest, '/');
    last = last ? last + 1 : rest;
    return strcmp(last, "accepted") == 0 || strcmp(last, "rejected") == 0 ||
           strcmp(rest, "notify") == 0 || strcmp(rest, "notify-next") == 0;
}

/**
 * Splits "$aws/things/<thing>/jobs/<rest>". Returns the operation, with the
 * thing and job (for describe/update) copied out; *bad is set when the topic
 * is a request but its thing name or job id is not valid. OP_ANSWER: a topic
 * the service publishes on; OP_UNKNOWN: no Jobs API request is sent there.
 */
static int parse_topic(const char *topic, char *thing, size_t thing_cap, char *job, size_t job_cap,
                       int *bad)
{
    static const char prefix[] = "$aws/things/";
    *bad = 0;
    if (strncmp(topic, prefix, sizeof prefix - 1) != 0)
        return OP_NONE;
    const char *t = topic + sizeof prefix - 1;
    const char *slash = strchr(t, '/');
    if (!slash || strncmp(slash, "/jobs/", 6) != 0)
        return OP_NONE;
    size_t tlen = (size_t)(slash - t);
    const char *rest = slash + 6;
    int op = OP_NONE;
    const char *jend = NULL;
    if (is_answer_topic(rest)) {
        return OP_ANSWER;
    } else if (strcmp(rest, "get") == 0) {
        op = OP_GET_PENDING;
    } else if (strcmp(rest, "start-next") == 0) {
        op = OP_START_NEXT;
    } else if ((jend = strchr(rest, '/')) != NULL && jend > rest) {
        if (strcmp(jend, "/get") == 0)
            op = OP_DESCRIBE;
        else if (strcmp(jend, "/update") == 0)
            op = OP_UPDATE;
    }
    if (op == OP_NONE)
        op = OP_UNKNOWN;
    if (tlen == 0 || tlen >= thing_cap) {
        *bad = 1;
        snprintf(thing, thing_cap, "%.*s", (int)(thing_cap - 1), t);
    } else {
        memcpy(thing, t, tlen);
        thing[tlen] = '\0';
        *bad = !ota_store_valid_thing_name(thing);
    }
    job[0] = '\0';
    if (op == OP_DESCRIBE || op == OP_UPDATE) {
        size_t jlen = (size_t)(jend - rest);
        if (jlen >= job_cap) {
            *bad = 1;
        } else {
            memcpy(job, rest, jlen);
            job[jlen] = '\0';
            int is_next = strcmp(job, "$next") == 0;
            if (op == OP_UPDATE ? !ota_store_valid_job_id(job)
                                : !(is_next || ota_store_valid_job_id(job)))
                *bad = 1;
        }
    }
    return op;
}

/* A request is word from the thing (the broker lets a thing publish only on its own topics):
 * its lastSeen becomes now, written at most once per OTA_SVC_SEEN_PERIOD_MS. Presence is not
 * touched: a request queued while the thing was away may arrive after it left. */
static void refresh_last_seen(ota_svc_jobs_t *j, const char *thing, int64_t now_ms)
{
    if (!ota_svc_seen_due(&j->seen, thing, now_ms))
        return;
    char seen[24];
    snprintf(seen, sizeof seen, "%lld", (long long)now_ms);
    int rc = ota_store_thing_service_attr_set(j->store, thing, "lastSeen", seen, now_ms);
    if (rc == OTA_STORE_OK)
        j->stats.seen_written++;
    else if (rc != OTA_STORE_NOT_FOUND)
        logf_(j, OTA_SVC_LOG_WARN, "jobs: lastSeen of %s not written: %s", thing,
              ota_store_errmsg(j->store));
}

int ota_svc_jobs_handle(ota_svc_jobs_t *jobs, const char *topic, const void *payload, size_t len,
                        int64_t now_ms)
{
    return ota_svc_jobs_handle_delivery(jobs, topic, payload, len, 0, now_ms, 0);
}

/** FNV-1a 64 of topic and payload: what makes a delivery the same one again. */
static int64_t delivery_digest(const char *topic, const char *payload, size_t len)
{
    uint64_t h = 14695981039346656037u;
    for (const char *t = topic; *t; t++)
        h = (h ^ (uint8_t)*t) * 1099511628211u;
    h = h * 1099511628211u; /* the NUL between them */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)payload[i]) * 1099511628211u;
    return (int64_t)h;
}

int ota_svc_jobs_handle_delivery(ota_svc_jobs_t *jobs, const char *topic, const void *payload,
                                 size_t len, int delivery_id, int64_t now_ms, int64_t mono_ms)
{
    if (!jobs || !topic)
        return 0;
    req_t r;
    memset(&r, 0, sizeof r);
    char job[OTA_STORE_JOB_ID_MAX + 8];
    int bad;
    int op = parse_topic(topic, r.thing, sizeof r.thing, job, sizeof job, &bad);
    if (op == OP_NONE)
        return 0;
    if (op == OP_ANSWER) {
        jobs->stats.skipped++; /* our own answers come back through jobs/# */
        return 1;
    }
    if (strlen(topic) >= sizeof r.base)
        return 1; /* cannot even build the answer topic; the thing name limit keeps us below */
    r.j = jobs;
    snprintf(r.base, sizeof r.base, "%s", topic);
    r.payload = payload ? payload : "";
    r.len = payload ? len : 0;
    r.now_ms = now_ms;
    r.delivery_id = delivery_id;
    r.delivery_digest = delivery_digest(topic, r.payload, r.len);
    jobs->stats.requests++;
    char shown[300 * OTA_TEXT_ESCAPE_GROWTH + 1];
    ota_text_escape(r.payload, r.len > 300 ? 300 : r.len, shown, sizeof shown);
    logf_(jobs, OTA_SVC_LOG_DEBUG, "jobs: <- %s %s", topic, shown);

    char token[JOBS_CLIENT_TOKEN_MAX + 1];
    char why[160];
    /* The budget is charged before anything else is looked at: an invalid request costs an
     * answer (a store write at QoS 1) and a log line too, so it must not be free. */
    if (!ota_svc_budget_jobs_request(jobs->budget, r.thing, mono_ms)) {
        jobs->stats.throttled++;
        if (ota_svc_budget_may_refuse(jobs->budget, r.thing, mono_ms)) {
            if (salvage_token(r.payload, r.len, token, sizeof token))
                r.token = token;
            reject(&r, "RequestThrottled", "request budget of this thing exhausted; retry later",
                   NULL);
        }
        return 1;
    }
    if (r.len == 0) {
        r.json = cJSON_CreateObject(); /* an empty request is an empty object */
    } else {
        int text_ok = ota_svc_json_check_text(r.payload, r.len, why, sizeof why) == 0;
        r.json = text_ok ? ota_svc_json_parse(r.payload, r.len) : NULL;
        if (!r.json) {
            if (salvage_token(r.payload, r.len, token, sizeof token))
                r.token = token;
            if (text_ok)
                snprintf(why, sizeof why, "the payload is not valid JSON");
            reject(&r, "InvalidJson", why, NULL);
            return 1;
        }
        if (ota_svc_json_check_keys(r.json, why, sizeof why) != 0) {
            reject(&r, "InvalidJson", why, NULL); /* which clientToken counts is unclear */
            cJSON_Delete(r.json);
            return 1;
        }
    }
    if (!cJSON_IsObject(r.json)) {
        reject(&r, "InvalidRequest", "the payload must be a JSON object", NULL);
        cJSON_Delete(r.json);
        return 1;
    }
    cJSON *tok = cJSON_GetObjectItemCaseSensitive(r.json, "clientToken");
    if (tok && !cJSON_IsNull(tok)) {
        if (!cJSON_IsString(tok) || strlen(tok->valuestring) > JOBS_CLIENT_TOKEN_MAX) {
            reject(&r, "InvalidRequest", "clientToken must be a string of at most 64 bytes", NULL);
            cJSON_Delete(r.json);
            return 1;
        }
        r.token = tok->valuestring;
    }
    if (op == OP_UNKNOWN) {
        reject(&r, "InvalidTopic", "no Jobs API request is sent to this topic", NULL);
    } else if (bad) {
        reject(&r, "InvalidTopic", "invalid thing name or job id in the topic", NULL);
    } else {
        refresh_last_seen(jobs, r.thing, now_ms);
        switch (op) {
        case OP_GET_PENDING:
            on_get_pending(&r);
            break;
        case OP_START_NEXT:
            on_start_next(&r);
            jobs->next_timed_ms = 0; /* a deadline may have been set: recompute on next tick */
            break;
        case OP_DESCRIBE:
            on_describe(&r, job);
            break;
        case OP_UPDATE:
            on_update(&r, job);
            jobs->next_timed_ms = 0;
            break;
        }
    }
    cJSON_Delete(r.json);
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Periodic work                                                            */
/* ------------------------------------------------------------------------ */

void ota_svc_jobs_tick(ota_svc_jobs_t *jobs, int64_t now_ms)
{
    if (!jobs)
        return;
    ota_store_t *s = jobs->store;
    int changed = 0;
    if (ota_store_poll_changes(s, &changed) != OTA_STORE_OK) {
        logf_(jobs, OTA_SVC_LOG_ERROR, "jobs: checking for changes: %s", ota_store_errmsg(s));
        changed = 1;
    }
    int safety = now_ms >= jobs->next_safety_ms;
    if (!changed && !safety && now_ms < jobs->next_timed_ms)
        return;
    size_t n_timed_out = 0, n_released = 0;
    if (ota_store_expire_timeouts(s, now_ms, &n_timed_out) != OTA_STORE_OK)
        logf_(jobs, OTA_SVC_LOG_ERROR, "jobs: in-progress timeouts: %s", ota_store_errmsg(s));
    if (n_timed_out)
        logf_(jobs, OTA_SVC_LOG_INFO, "jobs: %zu execution(s) TIMED_OUT", n_timed_out);
    if (ota_store_rollout_release(s, now_ms, &n_released) != OTA_STORE_OK)
        logf_(jobs, OTA_SVC_LOG_ERROR, "jobs: rollout: %s", ota_store_errmsg(s));
    if (n_released)
        logf_(jobs, OTA_SVC_LOG_INFO, "jobs: rollout released %zu execution(s)", n_released);
    int64_t next = INT64_MAX;
    if (ota_store_next_timed_work(s, &next) != OTA_STORE_OK)
        next = now_ms + 1000;
    jobs->next_timed_ms = next;
    if (safety)
        jobs->next_safety_ms = now_ms + JOBS_SAFETY_PERIOD_MS;
    notify_changes(jobs, now_ms);
}
