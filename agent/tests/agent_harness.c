/* otter: the scripted broker and stream service for agent tests. */
#include "agent_harness.h"
#include "ota_test_util.h"

#include <cbor.h>
#include <mbedtls/base64.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX "$aws/things/" H_THING "/"

static void fatal(const char *what)
{
    fprintf(stderr, "harness: %s\n", what);
    abort();
}

/* snprintf that must not truncate. */
#define H_FMT(buf, cap, ...)                                                                       \
    do {                                                                                           \
        int n_ = snprintf((buf), (cap), __VA_ARGS__);                                              \
        if (n_ < 0 || (size_t)n_ >= (size_t)(cap)) {                                               \
            fatal("string too long for its buffer");                                               \
        }                                                                                          \
    } while (0)

static void push(h_msg_t *queue, size_t *n, const char *topic, const void *payload, size_t len,
                 uint8_t qos, uint32_t due)
{
    h_msg_t *m;
    if (*n >= H_MAX_MSGS) {
        fatal("message queue full");
    }
    m = &queue[(*n)++];
    H_FMT(m->topic, sizeof m->topic, "%s", topic);
    m->payload = malloc(len + 1u);
    if (m->payload == NULL) {
        fatal("out of memory");
    }
    if (len != 0u) {
        memcpy(m->payload, payload, len);
    }
    m->payload[len] = 0;
    m->len = len;
    m->qos = qos;
    m->due = due;
}

/* ---- the agent's MQTT interface ---- */

static ota_err_t h_subscribe(void *ctx, const char *topic, uint8_t qos)
{
    harness_t *h = ctx;
    (void)qos;
    if (h->subscribe_fail) {
        return OTA_ERR_MQTT;
    }
    for (size_t i = 0; i < h->nsubs; i++) {
        if (strcmp(h->subs[i], topic) == 0) {
            return OTA_OK;
        }
    }
    if (h->nsubs >= H_MAX_SUBS) {
        fatal("too many subscriptions");
    }
    H_FMT(h->subs[h->nsubs++], H_TOPIC_MAX, "%s", topic);
    return OTA_OK;
}

static ota_err_t h_unsubscribe(void *ctx, const char *topic)
{
    harness_t *h = ctx;
    for (size_t i = 0; i < h->nsubs; i++) {
        if (strcmp(h->subs[i], topic) == 0) {
            memmove(h->subs[i], h->subs[h->nsubs - 1u], H_TOPIC_MAX);
            h->nsubs--;
            return OTA_OK;
        }
    }
    return OTA_OK;
}

static ota_err_t h_publish(void *ctx, const char *topic, const uint8_t *payload, size_t len,
                           uint8_t qos)
{
    harness_t *h = ctx;
    size_t tl = strlen(topic);
    if (h->publish_fail) {
        return OTA_ERR_MQTT;
    }
    if (h->cancel_on_confirm && tl > 14u && strcmp(topic + tl - 14u, "jobs/$next/get") == 0 &&
        ota_agent_get_state(&h->agent) == OTA_AGENT_ACTIVATING) {
        h->cancel_on_confirm = 0;
        h_cancel(h, h->cancel_notify);
    }
    if (tl > 9u && strcmp(topic + tl - 9u, "/get/cbor") == 0 &&
        h->published_requests < sizeof h->done_at_request / sizeof h->done_at_request[0]) {
        h->done_at_request[h->published_requests++] = h->agent.dl.blocks_done;
    }
    push(h->to_service, &h->n_to_service, topic, payload, len, qos, h->now);
    return OTA_OK;
}

/* ---- callbacks ---- */

/* The call a test asked for from inside callback `in`, once. */
static void h_misuse(harness_t *h, int in)
{
    if (h->misuse_in != in || h->misuse_calls > 0) {
        return;
    }
    h->misuse_calls++;
    ota_agent_t *a = &h->agent;
    switch (h->misuse_call) {
    case H_CALL_STOP:
        h->misuse_rc = ota_agent_stop(a);
        break;
    case H_CALL_SUSPEND:
        h->misuse_rc = ota_agent_suspend(a);
        break;
    case H_CALL_START:
        h->misuse_rc = ota_agent_start(a, h->now);
        break;
    case H_CALL_RECONNECTED:
        h->misuse_rc = ota_agent_reconnected(a, h->now);
        break;
    case H_CALL_POLL:
        h->misuse_rc = ota_agent_poll(a, h->now);
        break;
    case H_CALL_HANDLE:
        h->misuse_rc = ota_agent_handle_message(a, "x", 1, (const uint8_t *)"{}", 2, h->now);
        break;
    case H_CALL_CHECK:
        h->misuse_rc = ota_agent_check_for_update(a, h->now);
        break;
    default:
        h->misuse_calls = 0;
        break;
    }
}

static void h_cb_job(void *ctx, const ota_job_t *job)
{
    harness_t *h = ctx;
    (void)job;
    h_misuse(h, H_IN_JOB);
    h->job_received_calls++;
}

static void h_cb_self_test(void *ctx, const ota_job_t *job)
{
    harness_t *h = ctx;
    (void)job;
    h_misuse(h, H_IN_SELF_TEST);
    h->self_test_calls++;
}

static void h_cb_activate(void *ctx, const ota_job_t *job)
{
    harness_t *h = ctx;
    (void)job;
    h_misuse(h, H_IN_ACTIVATE);
    h->activate_calls++;
}

static void h_cb_verified(void *ctx, const ota_job_t *job)
{
    harness_t *h = ctx;
    (void)job;
    h_misuse(h, H_IN_VERIFIED);
    h->verified_calls++;
}

static void h_cb_outcome(void *ctx, const ota_agent_outcome_t *o)
{
    harness_t *h = ctx;
    h_misuse(h, H_IN_OUTCOME);
    h->outcomes++;
    h->outcome = *o;
    H_FMT(h->outcome_job, sizeof h->outcome_job, "%s", o->job_id);
    H_FMT(h->outcome_reason, sizeof h->outcome_reason, "%s", o->reason);
    H_FMT(h->outcome_detail, sizeof h->outcome_detail, "%s", o->detail);
    h->outcome.job_id = h->outcome_job;
    h->outcome.reason = h->outcome_reason;
    h->outcome.detail = h->outcome_detail;
}

static void h_cb_log(void *ctx, const ota_agent_event_t *ev)
{
    harness_t *h = ctx;
    h_misuse(h, H_IN_LOG);
    if (ev->level == OTA_LOG_ERROR) {
        h->log_errors++;
    }
    if (ev->level == OTA_LOG_WARN) {
        H_FMT(h->last_warn, sizeof h->last_warn, "%s", ev->what);
        h->last_warn_a = ev->a;
        h->last_warn_b = ev->b;
    }
    if (strcmp(ev->what, "found an interrupted download") == 0) {
        h->interrupted_logs++;
    }
    if (h->verbose || getenv("OTA_TEST_VERBOSE") != NULL) {
        fprintf(stderr, "[%6u ms] %d %s %s (%s) %u %u %s\n", (unsigned)h->now, (int)ev->level,
                ev->what, ev->job_id, ota_err_str(ev->err), (unsigned)ev->a, (unsigned)ev->b,
                ev->detail);
    }
}

static void h_init_agent(harness_t *h, const ota_pal_t *pal, uint32_t app_version)
{
    h->cfg.thing_name = H_THING;
    h->cfg.app_version = app_version;
    h->cfg.pal = pal;
    h->cfg.mqtt.ctx = h;
    h->cfg.mqtt.subscribe = h_subscribe;
    h->cfg.mqtt.unsubscribe = h_unsubscribe;
    h->cfg.mqtt.publish = h_publish;
    h->cfg.callbacks.ctx = h;
    h->cfg.callbacks.job_received = h_cb_job;
    h->cfg.callbacks.self_test = h_cb_self_test;
    h->cfg.callbacks.activate = h_cb_activate;
    h->cfg.callbacks.verified = h_cb_verified;
    h->cfg.callbacks.outcome = h_cb_outcome;
    h->cfg.callbacks.log = h_cb_log;
    if (ota_agent_init(&h->agent, &h->cfg) != OTA_OK) {
        fatal("ota_agent_init failed");
    }
}

harness_t *h_new(const ota_pal_t *pal, uint32_t app_version, const ota_agent_config_t *overrides)
{
    harness_t *h = calloc(1, sizeof *h);
    if (h == NULL) {
        fatal("out of memory");
    }
    h->to_service = calloc(H_MAX_MSGS, sizeof(h_msg_t));
    h->to_agent = calloc(H_MAX_MSGS, sizeof(h_msg_t));
    if (h->to_service == NULL || h->to_agent == NULL) {
        fatal("out of memory");
    }
    h->now = 1000;
    if (overrides != NULL) {
        h->cfg = *overrides;
    }
    h_init_agent(h, pal, app_version);
    return h;
}

static void clear_queue(h_msg_t *q, size_t *n)
{
    for (size_t i = 0; i < *n; i++) {
        free(q[i].payload);
    }
    *n = 0;
}

void h_free(harness_t *h)
{
    clear_queue(h->to_service, &h->n_to_service);
    clear_queue(h->to_agent, &h->n_to_agent);
    free(h->to_service);
    free(h->to_agent);
    free(h);
}

void h_reboot(harness_t *h, const ota_pal_t *pal, uint32_t app_version)
{
    clear_queue(h->to_service, &h->n_to_service);
    clear_queue(h->to_agent, &h->n_to_agent);
    h->nsubs = 0;
    memset(&h->agent, 0x5a, sizeof h->agent); /* fresh RAM is not zero */
    h_init_agent(h, pal, app_version);
}

int h_subscribed(const harness_t *h, const char *rest)
{
    char topic[H_TOPIC_MAX];
    H_FMT(topic, sizeof topic, PREFIX "%s", rest);
    for (size_t i = 0; i < h->nsubs; i++) {
        if (strcmp(h->subs[i], topic) == 0) {
            return 1;
        }
    }
    return 0;
}

void h_base64(const uint8_t *in, size_t n, char *out, size_t cap)
{
    size_t olen = 0;
    if (mbedtls_base64_encode((unsigned char *)out, cap, &olen, in, n) != 0) {
        fatal("base64");
    }
}

void h_set_job(harness_t *h, const char *job_id, const char *stream, const uint8_t *file,
               uint32_t size, const uint8_t *sig, size_t sig_len, const char *status,
               const char *status_details)
{
    char b64[256];
    h_base64(sig, sig_len, b64, sizeof b64);
    h->file = file;
    h->file_size = size;
    H_FMT(h->execution, sizeof h->execution,
          "{\"jobId\":\"%s\",\"thingName\":\"" H_THING "\",\"status\":\"%s\","
          "%s%s%s"
          "\"queuedAt\":1700000000,\"lastUpdatedAt\":1700000001,\"versionNumber\":1,"
          "\"executionNumber\":1,\"jobDocument\":{\"afr_ota\":{\"protocols\":[\"MQTT\"],"
          "\"streamname\":\"%s\",\"files\":[{\"filepath\":\"firmware.bin\",\"filesize\":%u,"
          "\"fileid\":0,\"certfile\":\"%s\",\"fileType\":0,"
          "\"update_data_url\":null,\"auth_scheme\":null,\"sig-sha256-ecdsa\":\"%s\"}]}}}",
          job_id, status, status_details != NULL ? "\"statusDetails\":" : "",
          status_details != NULL ? status_details : "", status_details != NULL ? "," : "", stream,
          (unsigned)size, h->cert_name != NULL ? h->cert_name : "codesign.crt", b64);
}

void h_set_execution(harness_t *h, const char *execution_json)
{
    H_FMT(h->execution, sizeof h->execution, "%s", execution_json);
}

static void to_agent(harness_t *h, const char *rest, const void *payload, size_t len,
                     uint32_t delay)
{
    char topic[H_TOPIC_MAX];
    H_FMT(topic, sizeof topic, PREFIX "%s", rest);
    push(h->to_agent, &h->n_to_agent, topic, payload, len, 0, h->now + delay);
}

static void jobs_message(harness_t *h, char *out, size_t cap, int with_token);

void h_cancel(harness_t *h, int notify)
{
    char msg[64];
    h->execution[0] = '\0';
    h->job_over = 1;
    if (notify) {
        jobs_message(h, msg, sizeof msg, 0);
        to_agent(h, "jobs/notify-next", msg, strlen(msg), h->policy.delay_ms);
    }
}

static void jobs_message(harness_t *h, char *out, size_t cap, int with_token)
{
    if (h->execution[0] == '\0') {
        H_FMT(out, cap, "{%s\"timestamp\":1700000002}",
              with_token ? "\"clientToken\":\"otter\"," : "");
    } else {
        H_FMT(out, cap, "{%s\"timestamp\":1700000002,\"execution\":%s}",
              with_token ? "\"clientToken\":\"otter\"," : "", h->execution);
    }
}

void h_deliver(harness_t *h, const char *rest, const void *payload, size_t len)
{
    char topic[H_TOPIC_MAX];
    H_FMT(topic, sizeof topic, PREFIX "%s", rest);
    if (ota_agent_handle_message(&h->agent, topic, strlen(topic), payload, len, h->now) != OTA_OK) {
        fatal("handle_message failed");
    }
}

void h_notify_next(harness_t *h)
{
    char msg[4300];
    jobs_message(h, msg, sizeof msg, 0);
    h_deliver(h, "jobs/notify-next", msg, strlen(msg));
}

/* ---- the stream service ---- */

static uint64_t map_uint(cbor_item_t *map, const char *key, int *found)
{
    struct cbor_pair *p = cbor_map_handle(map);
    for (size_t i = 0; i < cbor_map_size(map); i++) {
        if (cbor_isa_string(p[i].key) && cbor_string_length(p[i].key) == strlen(key) &&
            memcmp(cbor_string_handle(p[i].key), key, strlen(key)) == 0) {
            if (!cbor_isa_uint(p[i].value)) {
                fatal("request field is not an unsigned integer");
            }
            *found = 1;
            return cbor_get_int(p[i].value);
        }
    }
    *found = 0;
    return 0;
}

static void add_pair(cbor_item_t *map, const char *key, cbor_item_t *value)
{
    struct cbor_pair pair;
    pair.key = cbor_move(cbor_build_string(key));
    pair.value = cbor_move(value);
    if (!cbor_map_add(map, pair)) {
        fatal("cbor_map_add");
    }
}

static void send_block(harness_t *h, const char *stream, uint32_t file_id, uint32_t index,
                       uint32_t block_size, uint32_t delay)
{
    char rest[H_TOPIC_MAX];
    uint32_t off = index * block_size;
    uint32_t len = h->file_size - off < block_size ? h->file_size - off : block_size;
    cbor_item_t *map = cbor_new_definite_map(5);
    unsigned char *buf = NULL;
    size_t buf_size = 0;
    size_t n;

    add_pair(map, "c", cbor_build_string("otter"));
    add_pair(map, "f", cbor_build_uint32(file_id));
    add_pair(map, "i", cbor_build_uint32(index));
    add_pair(map, "l", cbor_build_uint32(len));
    add_pair(map, "p", cbor_build_bytestring(h->file + off, len));
    n = cbor_serialize_alloc(map, &buf, &buf_size);
    cbor_decref(&map);
    if (n == 0) {
        fatal("cbor_serialize_alloc");
    }
    h->block_msgs++;
    if ((h->policy.drop_first != 0u && h->block_msgs <= h->policy.drop_first) ||
        (h->policy.drop_every != 0u && h->block_msgs % h->policy.drop_every == 0u)) {
        free(buf);
        return;
    }
    H_FMT(rest, sizeof rest, "streams/%s/data/cbor", stream);
    to_agent(h, rest, buf, n, delay);
    if (h->policy.duplicate) {
        to_agent(h, rest, buf, n, delay);
    }
    free(buf);
}

static void serve_stream_request(harness_t *h, const char *stream, const h_msg_t *m)
{
    struct cbor_load_result res;
    cbor_item_t *req = cbor_load(m->payload, m->len, &res);
    cbor_item_t *bitmap;
    int found = 0;
    uint32_t f, l, o, n, sent = 0;
    uint32_t idx[4096];
    size_t count = 0;

    if (req == NULL || res.error.code != CBOR_ERR_NONE || !cbor_isa_map(req)) {
        fatal("the agent sent a GetStream request libcbor cannot decode");
    }
    memcpy(h->last_request, m->payload,
           m->len < sizeof h->last_request ? m->len : sizeof h->last_request);
    h->last_request_len = m->len;
    h->requests++;
    f = (uint32_t)map_uint(req, "f", &found);
    if (!found) {
        fatal("request without f");
    }
    l = (uint32_t)map_uint(req, "l", &found);
    if (!found || l < 256u || l > 131072u) {
        fatal("request without a valid l");
    }
    o = (uint32_t)map_uint(req, "o", &found);
    if (!found) {
        fatal("request without o");
    }
    n = (uint32_t)map_uint(req, "n", &found);
    if (!found || n == 0u) {
        fatal("request without n");
    }
    bitmap = ota_test_map_get(req, "b");
    if (bitmap == NULL || !cbor_isa_bytestring(bitmap) || cbor_bytestring_length(bitmap) == 0u ||
        cbor_bytestring_length(bitmap) >= 12288u) {
        fatal("request without a valid bitmap");
    }
    if (ota_test_map_get(req, "c") == NULL) {
        fatal("request without a client token");
    }
    if (h->requests - 1u < sizeof h->request_at / sizeof h->request_at[0]) {
        h->request_at[h->requests - 1u] = h->now;
    }
    if (h->policy.reject_code != NULL || h->requests <= h->policy.throttle_first) {
        char rest[H_TOPIC_MAX];
        cbor_item_t *rej = cbor_new_definite_map(3);
        unsigned char *buf = NULL;
        size_t buf_size = 0;
        size_t len;
        add_pair(rej, "o",
                 cbor_build_string(h->requests <= h->policy.throttle_first
                                       ? "RequestThrottled"
                                       : h->policy.reject_code));
        add_pair(rej, "m", cbor_build_string("refused by the test"));
        add_pair(rej, "c", cbor_build_string("otter"));
        len = cbor_serialize_alloc(rej, &buf, &buf_size);
        cbor_decref(&rej);
        H_FMT(rest, sizeof rest, "streams/%s/rejected/cbor", stream);
        to_agent(h, rest, buf, len, h->policy.delay_ms);
        free(buf);
        cbor_decref(&req);
        return;
    }
    {
        const uint8_t *b = cbor_bytestring_handle(bitmap);
        size_t bits = cbor_bytestring_length(bitmap) * 8u;
        for (size_t k = 0; k < bits && sent < n; k++) {
            uint32_t i = o + (uint32_t)k;
            if (((b[k / 8u] >> (k % 8u)) & 1u) == 0u || (uint64_t)i * l >= h->file_size) {
                continue;
            }
            if (count < sizeof idx / sizeof idx[0]) {
                idx[count++] = i;
            }
            if (i < sizeof h->requested_count / sizeof h->requested_count[0]) {
                h->requested_count[i]++;
            }
            sent++;
        }
    }
    h->blocks_requested += sent;
    if ((uint64_t)sent * l > h->max_request_bytes) {
        h->max_request_bytes = (uint32_t)((uint64_t)sent * l);
    }
    if (!h->policy.silent) {
        for (size_t k = 0; k < count; k++) {
            uint32_t i = h->policy.reverse ? idx[count - 1u - k] : idx[k];
            send_block(h, stream, f, i, l, h->policy.delay_ms);
        }
    }
    cbor_decref(&req);
}

void h_apply_status_details(char *execution, size_t cap, const char *update)
{
    static const char key[] = "\"statusDetails\":";
    const char *from = strstr(update, key), *end;
    char *at, rest[4096];
    if (from == NULL || execution[0] == '\0' || (end = strchr(from, '}')) == NULL) {
        return;
    }
    at = strstr(execution, key);
    if (at != NULL) {
        const char *old_end = strchr(at, '}');
        H_FMT(rest, sizeof rest, "%s", old_end + 1);
    } else {
        /* after "status":"...", */
        at = strstr(execution, "\"status\":\"");
        at = at != NULL ? strchr(at + 10, '"') : NULL;
        if (at == NULL) {
            return;
        }
        at += 2; /* past the quote and the comma */
        H_FMT(rest, sizeof rest, ",%s", at);
    }
    H_FMT(at, cap - (size_t)(at - execution), "%.*s%s", (int)(end + 1 - from), from, rest);
}

void h_serve(harness_t *h)
{
    size_t prefix = strlen(PREFIX);
    for (size_t q = 0; q < h->n_to_service; q++) {
        h_msg_t *m = &h->to_service[q];
        const char *rest = m->topic + prefix;
        char stream[128];
        if (strncmp(m->topic, PREFIX, prefix) != 0) {
            fatal("the agent published outside its own topics");
        }
        if (strcmp(rest, "jobs/$next/get") == 0) {
            char msg[4300];
            if (h->next_gets < sizeof h->next_get_at / sizeof h->next_get_at[0]) {
                h->next_get_at[h->next_gets] = h->now;
            }
            h->next_gets++;
            if (h->next_gets <= h->policy.throttle_jobs_first) {
                static const char refusal[] = "{\"code\":\"RequestThrottled\",\"message\":\"over "
                                              "budget\",\"clientToken\":\"otter\"}";
                to_agent(h, "jobs/$next/get/rejected", refusal, sizeof refusal - 1u,
                         h->policy.delay_ms);
            } else if (!h->policy.jobs_silent) {
                jobs_message(h, msg, sizeof msg, 1);
                to_agent(h, "jobs/$next/get/accepted", msg, strlen(msg), h->policy.delay_ms);
            }
        } else if (strncmp(rest, "jobs/", 5) == 0 && strlen(rest) > 12 &&
                   strcmp(rest + strlen(rest) - 7, "/update") == 0) {
            if (h->nstatus >= H_MAX_STATUS) {
                fatal("too many status updates");
            }
            H_FMT(h->status[h->nstatus], sizeof h->status[0], "%s", (const char *)m->payload);
            h->status_qos[h->nstatus] = m->qos;
            h->status_at[h->nstatus] = h->now;
            h->nstatus++;
            if (strstr((const char *)m->payload, "\"status\":\"IN_PROGRESS\"") == NULL &&
                h->finals_refused < h->policy.throttle_final_first) {
                /* Over budget: refused, and the refusal reaches the agent only if
                 * it still listens (as a broker delivers). */
                static const char refusal[] = "{\"code\":\"RequestThrottled\",\"message\":"
                                              "\"over budget\"}";
                char reply[H_TOPIC_MAX];
                H_FMT(reply, sizeof reply, "%s/rejected", rest);
                h->finals_refused++;
                if (h_subscribed(h, reply)) {
                    to_agent(h, reply, refusal, sizeof refusal - 1u, h->policy.delay_ms);
                }
            } else if (h->job_over) {
                static const char refusal[] = "{\"code\":\"TerminalStateReached\",\"message\":"
                                              "\"the job is canceled\"}";
                char reply[H_TOPIC_MAX];
                H_FMT(reply, sizeof reply, "%s/rejected", rest);
                to_agent(h, reply, refusal, sizeof refusal - 1u, h->policy.delay_ms);
            } else if (!h->policy.drop_updates) {
                h_apply_status_details(h->execution, sizeof h->execution, (const char *)m->payload);
            }
        } else if (sscanf(rest, "streams/%127[^/]/get/cbor", stream) == 1 &&
                   strcmp(rest + strlen(rest) - 9, "/get/cbor") == 0) {
            serve_stream_request(h, stream, m);
        } else {
            fprintf(stderr, "harness: unexpected publish on %s\n", m->topic);
            fatal("unexpected publish");
        }
    }
    clear_queue(h->to_service, &h->n_to_service);
}

void h_drop_in_flight(harness_t *h)
{
    clear_queue(h->to_agent, &h->n_to_agent);
}

static void deliver_due(harness_t *h)
{
    size_t keep = 0;
    /* Deliver in order; messages may add more (handled next round). */
    size_t n = h->n_to_agent;
    h_msg_t *due = calloc(n + 1u, sizeof *due);
    size_t ndue = 0;
    for (size_t i = 0; i < n; i++) {
        if ((int32_t)(h->now - h->to_agent[i].due) >= 0) {
            due[ndue++] = h->to_agent[i];
        } else {
            h->to_agent[keep++] = h->to_agent[i];
        }
    }
    h->n_to_agent = keep;
    for (size_t i = 0; i < ndue; i++) {
        if (ota_agent_handle_message(&h->agent, due[i].topic, strlen(due[i].topic), due[i].payload,
                                     due[i].len, h->now) != OTA_OK) {
            fatal("handle_message failed");
        }
        free(due[i].payload);
    }
    free(due);
}

int h_run(harness_t *h, uint32_t max_ms, uint32_t step_ms, int (*stop)(const harness_t *h))
{
    uint32_t end = h->now + max_ms;
    for (;;) {
        for (int spin = 0; spin < 64 && (h->n_to_service != 0u || h->n_to_agent != 0u); spin++) {
            size_t before = h->n_to_agent;
            h_serve(h);
            deliver_due(h);
            if (stop != NULL && stop(h)) {
                h_serve(h); /* record what the agent published last */
                return 1;
            }
            if (h->n_to_service == 0u && h->n_to_agent == before) {
                break;
            }
        }
        if (stop != NULL && stop(h)) {
            h_serve(h);
            return 1;
        }
        if ((int32_t)(h->now - end) >= 0) {
            h_serve(h);
            return 0;
        }
        h->now += step_ms;
        (void)ota_agent_poll(&h->agent, h->now);
    }
}

const char *h_last_status(harness_t *h)
{
    h_serve(h);
    return h->nstatus == 0u ? "" : h->status[h->nstatus - 1u];
}

int h_has_status(harness_t *h, const char *s)
{
    h_serve(h);
    for (size_t i = 0; i < h->nstatus; i++) {
        if (strcmp(h->status[i], s) == 0) {
            return 1;
        }
    }
    return 0;
}

int h_stop_outcome(const harness_t *h)
{
    return h->outcomes > 0;
}

int h_stop_activating(const harness_t *h)
{
    return ota_agent_get_state(&h->agent) == OTA_AGENT_ACTIVATING || h->outcomes > 0;
}

int h_stop_self_test(const harness_t *h)
{
    return ota_agent_get_state(&h->agent) == OTA_AGENT_SELF_TEST || h->outcomes > 0;
}
