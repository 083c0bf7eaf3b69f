/*
 * otter: the OTA agent over libmosquitto (see ota_mqtt_mosquitto.h).
 *
 * Two threads touch a binding: libmosquitto's network thread runs the
 * callbacks below (cb_*), which take the lock, queue or count, and signal;
 * the delivering thread runs run_once, which takes queue items out under the
 * lock and calls the agent with the lock released, so that the agent may
 * publish (and flush) from within its calls. While run_once waits (parked),
 * the network thread hands stream data blocks to the agent itself, with the
 * lock released and direct_busy set; run_once does not leave its wait before
 * direct_busy is clear, so the agent never runs in both threads at once.
 */
#define _POSIX_C_SOURCE 200809L

#include "ota_mqtt_mosquitto.h"

#include <errno.h>
#include <stdarg.h>
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A queued incoming message, or a connection event. */
typedef enum item_kind {
    ITEM_MESSAGE = 0,
    ITEM_CONNECTED,    /* a reconnect: the agent must subscribe again */
    ITEM_DISCONNECTED, /* the connection was lost (for the log) */
} item_kind_t;

struct ota_mqtt_mosquitto_item {
    struct ota_mqtt_mosquitto_item *next;
    item_kind_t kind;
    int rc;           /* event: libmosquitto's reason code */
    size_t topic_len; /* message: topic bytes (a NUL follows) */
    size_t len;       /* message: payload bytes */
    uint8_t *payload; /* points into data, after the topic's NUL */
    char data[];      /* topic, NUL, payload */
};

typedef struct ota_mqtt_mosquitto_item item_t;

uint32_t ota_mqtt_mosquitto_now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

/* Absolute CLOCK_MONOTONIC time ms from now, for pthread_cond_timedwait. */
static struct timespec deadline_in(uint32_t ms)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000u);
    ts.tv_nsec += (long)(ms % 1000u) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static int ready(const ota_mqtt_mosquitto_t *b)
{
    return b != NULL && b->mosq != NULL && b->sync_ready;
}

/* ---- queue (lock held) ---- */

static void queue_push(ota_mqtt_mosquitto_t *b, item_t *it)
{
    it->next = NULL;
    if (b->tail != NULL) {
        b->tail->next = it;
    } else {
        b->head = it;
    }
    b->tail = it;
    b->nitems++;
    if (it->kind == ITEM_MESSAGE) {
        b->queue_bytes += it->len;
        b->stats.queued++;
        if (b->stats.queued > b->stats.queue_peak) {
            b->stats.queue_peak = b->stats.queued;
        }
    }
    pthread_cond_broadcast(&b->queue_cond);
}

static item_t *queue_pop(ota_mqtt_mosquitto_t *b)
{
    item_t *it = b->head;
    if (it == NULL) {
        return NULL;
    }
    b->head = it->next;
    if (b->head == NULL) {
        b->tail = NULL;
    }
    b->nitems--;
    if (it->kind == ITEM_MESSAGE) {
        b->queue_bytes -= it->len;
        b->stats.queued--;
    }
    return it;
}

static void queue_event(ota_mqtt_mosquitto_t *b, item_kind_t kind, int rc)
{
    item_t *it = calloc(1, sizeof *it);
    if (it == NULL) {
        /* Without memory the event is lost; a lost reconnect would leave the
         * agent unsubscribed, so fall back to a dropped-message count, which
         * at least shows up in the log and the counters. */
        b->stats.dropped++;
        b->drops_unreported++;
        return;
    }
    it->kind = kind;
    it->rc = rc;
    queue_push(b, it);
}

/* ---- publish bookkeeping (lock held) ---- */

static int pending_add(ota_mqtt_mosquitto_t *b, uint64_t seq, int mid, int qos)
{
    if (b->npending == b->pending_cap) {
        size_t cap = b->pending_cap != 0u ? b->pending_cap * 2u : 64u;
        ota_mqtt_mosquitto_pending_t *p = realloc(b->pending, cap * sizeof *p);
        if (p == NULL) {
            return -1;
        }
        b->pending = p;
        b->pending_cap = cap;
    }
    b->pending[b->npending].seq = seq;
    b->pending[b->npending].mid = mid;
    b->pending[b->npending].qos = qos;
    b->npending++;
    return 0;
}

static void pending_remove_at(ota_mqtt_mosquitto_t *b, size_t i)
{
    b->pending[i] = b->pending[b->npending - 1u];
    b->npending--;
}

static int early_take(ota_mqtt_mosquitto_t *b, int mid)
{
    for (size_t i = 0; i < b->nearly; i++) {
        if (b->early[i] == mid) {
            b->early[i] = b->early[b->nearly - 1u];
            b->nearly--;
            return 1;
        }
    }
    return 0;
}

static void early_add(ota_mqtt_mosquitto_t *b, int mid)
{
    if (b->nearly == b->early_cap) {
        size_t cap = b->early_cap != 0u ? b->early_cap * 2u : 16u;
        int *p = realloc(b->early, cap * sizeof *p);
        if (p == NULL) {
            return; /* the publish then looks outstanding until a flush times out */
        }
        b->early = p;
        b->early_cap = cap;
    }
    b->early[b->nearly++] = mid;
}

/* ---- handing a message to the agent (either thread, never both at once) ---- */

static void deliver_message(ota_mqtt_mosquitto_t *b, const char *topic, size_t topic_len,
                            const void *payload, size_t len)
{
    if (b->cfg.on_message != NULL) {
        b->cfg.on_message(b->cfg.ctx, topic, payload, len);
    }
    (void)ota_agent_handle_message(b->agent, topic, topic_len, payload, len,
                                   ota_mqtt_mosquitto_now_ms());
}

/* ---- libmosquitto callbacks (network thread) ---- */

static void cb_connect(struct mosquitto *m, void *obj, int rc)
{
    ota_mqtt_mosquitto_t *b = obj;
    (void)m;
    pthread_mutex_lock(&b->lock);
    if (b->connack_rc != 0) {
        b->connack_rc = rc; /* the first answer, or the first success */
    }
    if (rc == 0) {
        b->stats.connected = 1;
        b->stats.connects++;
        if (b->stats.connects > 1u) {
            queue_event(b, ITEM_CONNECTED, rc);
        }
    }
    pthread_cond_broadcast(&b->conn_cond);
    pthread_mutex_unlock(&b->lock);
}

static void cb_disconnect(struct mosquitto *m, void *obj, int rc)
{
    ota_mqtt_mosquitto_t *b = obj;
    size_t i = 0;
    (void)m;
    pthread_mutex_lock(&b->lock);
    if (b->stats.connected) {
        b->stats.disconnects++;
        queue_event(b, ITEM_DISCONNECTED, rc);
    }
    b->stats.connected = 0;
    b->disconnect_gen++;
    /* QoS 0 packets still queued in libmosquitto are discarded before the
     * reconnect and never reach on_publish; QoS 1 messages are resent. */
    while (i < b->npending) {
        if (b->pending[i].qos == 0) {
            pending_remove_at(b, i);
            b->stats.publish_lost++;
        } else {
            i++;
        }
    }
    pthread_cond_broadcast(&b->pub_cond);
    pthread_mutex_unlock(&b->lock);
}

static void cb_publish(struct mosquitto *m, void *obj, int mid)
{
    ota_mqtt_mosquitto_t *b = obj;
    int found = 0;
    (void)m;
    pthread_mutex_lock(&b->lock);
    for (size_t i = 0; i < b->npending; i++) {
        if (b->pending[i].mid == mid) {
            pending_remove_at(b, i);
            found = 1;
            break;
        }
    }
    if (!found) {
        /* The publishing thread has not recorded the id yet. */
        early_add(b, mid);
    }
    b->stats.publish_done++;
    pthread_cond_broadcast(&b->pub_cond);
    pthread_mutex_unlock(&b->lock);
}

/* Whether a topic ends with suffix. */
static int ends_with(const char *topic, size_t topic_len, const char *suffix)
{
    size_t n = strlen(suffix);
    return topic_len >= n && memcmp(topic + topic_len - n, suffix, n) == 0;
}

/* A stream data block: $aws/things/<thing>/streams/<stream>/data/{cbor,json}. */
static int is_stream_data(const char *topic, size_t topic_len)
{
    return strstr(topic, "/streams/") != NULL &&
           (ends_with(topic, topic_len, "/data/cbor") || ends_with(topic, topic_len, "/data/json"));
}

static void cb_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    ota_mqtt_mosquitto_t *b = obj;
    size_t topic_len = strlen(msg->topic);
    size_t len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0u;
    item_t *it = NULL;
    int fits;
    (void)m;

    pthread_mutex_lock(&b->lock);
    b->stats.received++;
    if (b->parked && b->head == NULL && is_stream_data(msg->topic, topic_len)) {
        /* The delivering thread waits inside run_once and nothing is queued
         * before this message: hand it to the agent here, without a copy or
         * a wake-up. run_once does not go on before this call returned. */
        b->direct_busy = 1;
        b->direct_thread = pthread_self();
        pthread_mutex_unlock(&b->lock);
        deliver_message(b, msg->topic, topic_len, msg->payload, len);
        pthread_mutex_lock(&b->lock);
        b->direct_busy = 0;
        b->stats.delivered++;
        b->stats.delivered_direct++;
        pthread_cond_broadcast(&b->queue_cond);
        pthread_mutex_unlock(&b->lock);
        return;
    }
    fits = b->stats.queued < b->cfg.queue_max_msgs && len <= b->cfg.queue_max_bytes &&
           b->queue_bytes <= b->cfg.queue_max_bytes - len;
    pthread_mutex_unlock(&b->lock);

    if (fits) {
        it = malloc(sizeof *it + topic_len + 1u + len);
    }
    if (it != NULL) {
        memset(it, 0, sizeof *it);
        it->kind = ITEM_MESSAGE;
        it->topic_len = topic_len;
        it->len = len;
        memcpy(it->data, msg->topic, topic_len + 1u);
        it->payload = (uint8_t *)it->data + topic_len + 1u;
        if (len != 0u) {
            memcpy(it->payload, msg->payload, len);
        }
    }
    pthread_mutex_lock(&b->lock);
    if (it != NULL) {
        /* Only this thread adds messages, so the bound checked above holds. */
        queue_push(b, it);
    } else {
        b->stats.dropped++;
        b->drops_unreported++;
        pthread_cond_broadcast(&b->queue_cond);
    }
    pthread_mutex_unlock(&b->lock);
}

/* ---- the agent's MQTT interface (any thread) ---- */

static ota_err_t if_subscribe(void *ctx, const char *topic, uint8_t qos)
{
    ota_mqtt_mosquitto_t *b = ctx;
    int rc;
    if (!ready(b) || topic == NULL || qos > 1u) {
        return OTA_ERR_INVALID_ARG;
    }
    rc = mosquitto_subscribe(b->mosq, NULL, topic, qos);
    if (rc != MOSQ_ERR_SUCCESS) {
        pthread_mutex_lock(&b->lock);
        b->stats.request_errors++;
        pthread_mutex_unlock(&b->lock);
        return OTA_ERR_MQTT;
    }
    return OTA_OK;
}

static ota_err_t if_unsubscribe(void *ctx, const char *topic)
{
    ota_mqtt_mosquitto_t *b = ctx;
    int rc;
    if (!ready(b) || topic == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    rc = mosquitto_unsubscribe(b->mosq, NULL, topic);
    if (rc != MOSQ_ERR_SUCCESS) {
        pthread_mutex_lock(&b->lock);
        b->stats.request_errors++;
        pthread_mutex_unlock(&b->lock);
        return OTA_ERR_MQTT;
    }
    return OTA_OK;
}

static ota_err_t if_publish(void *ctx, const char *topic, const uint8_t *payload, size_t len,
                            uint8_t qos)
{
    ota_mqtt_mosquitto_t *b = ctx;
    uint64_t seq;
    uint32_t gen;
    int mid = 0;
    int rc;

    if (!ready(b) || topic == NULL || (payload == NULL && len != 0u) || qos > 1u ||
        len > (size_t)268435455) {
        return OTA_ERR_INVALID_ARG;
    }
    pthread_mutex_lock(&b->lock);
    seq = ++b->pub_seq;
    gen = b->disconnect_gen;
    pthread_mutex_unlock(&b->lock);

    /* libmosquitto copies the payload. The lock is not held across the call:
     * on_publish may run meanwhile, which early_add() covers. */
    rc = mosquitto_publish(b->mosq, &mid, topic, (int)len, payload, qos, false);

    pthread_mutex_lock(&b->lock);
    if (rc != MOSQ_ERR_SUCCESS) {
        b->stats.request_errors++;
        pthread_mutex_unlock(&b->lock);
        return OTA_ERR_MQTT;
    }
    b->stats.published++;
    if (early_take(b, mid)) {
        /* Already sent or acknowledged. */
    } else if (qos == 0u && gen != b->disconnect_gen) {
        /* The connection dropped while it was being queued: lost. */
        b->stats.publish_lost++;
    } else if (pending_add(b, seq, mid, qos) != 0) {
        /* Cannot track it; flush will not wait for it. */
    }
    pthread_mutex_unlock(&b->lock);
    return OTA_OK;
}

static ota_err_t if_bad_subscribe(void *ctx, const char *topic, uint8_t qos)
{
    (void)ctx;
    (void)topic;
    (void)qos;
    return OTA_ERR_INVALID_ARG;
}

static ota_err_t if_bad_unsubscribe(void *ctx, const char *topic)
{
    (void)ctx;
    (void)topic;
    return OTA_ERR_INVALID_ARG;
}

static ota_err_t if_bad_publish(void *ctx, const char *topic, const uint8_t *payload, size_t len,
                                uint8_t qos)
{
    (void)ctx;
    (void)topic;
    (void)payload;
    (void)len;
    (void)qos;
    return OTA_ERR_INVALID_ARG;
}

ota_mqtt_t ota_mqtt_mosquitto_interface(ota_mqtt_mosquitto_t *b)
{
    ota_mqtt_t m;
    m.ctx = b;
    if (b == NULL) {
        m.subscribe = if_bad_subscribe;
        m.unsubscribe = if_bad_unsubscribe;
        m.publish = if_bad_publish;
    } else {
        m.subscribe = if_subscribe;
        m.unsubscribe = if_unsubscribe;
        m.publish = if_publish;
    }
    return m;
}

/* ---- init and cleanup ---- */

static int config_ok(const ota_mqtt_mosquitto_config_t *c)
{
    if (c->host == NULL || c->host[0] == '\0' || c->port < 1 || c->port > 65535) {
        return 0;
    }
    if (c->keepalive_s != 0 && (c->keepalive_s < 5 || c->keepalive_s > 65535)) {
        return 0;
    }
    if (c->password != NULL && c->username == NULL) {
        return 0;
    }
    if ((c->cert_file == NULL) != (c->key_file == NULL) ||
        (c->cert_file != NULL && c->ca_file == NULL)) {
        return 0;
    }
    if (c->reconnect_min_s != 0u && c->reconnect_max_s != 0u &&
        c->reconnect_min_s > c->reconnect_max_s) {
        return 0;
    }
    return 1;
}

static void release(ota_mqtt_mosquitto_t *b)
{
    item_t *it;
    if (b->mosq != NULL) {
        if (b->loop_ready) {
            (void)mosquitto_disconnect(b->mosq);
            /* Not forced: the thread ends by itself once disconnecting, also
             * from a reconnect wait, and is joined. */
            (void)mosquitto_loop_stop(b->mosq, false);
            b->loop_ready = 0;
        }
        mosquitto_destroy(b->mosq);
        b->mosq = NULL;
    }
    if (b->sync_ready) {
        while ((it = queue_pop(b)) != NULL) {
            free(it);
        }
        pthread_cond_destroy(&b->conn_cond);
        pthread_cond_destroy(&b->pub_cond);
        pthread_cond_destroy(&b->queue_cond);
        pthread_mutex_destroy(&b->lock);
        b->sync_ready = 0;
    }
    free(b->pending);
    free(b->early);
    if (b->lib_ready) {
        (void)mosquitto_lib_cleanup();
    }
    memset(b, 0, sizeof *b);
}

static int make_sync(ota_mqtt_mosquitto_t *b)
{
    pthread_condattr_t attr;
    int ok;
    if (pthread_condattr_init(&attr) != 0) {
        return -1;
    }
    ok = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0;
    if (ok && pthread_mutex_init(&b->lock, NULL) != 0) {
        ok = 0;
    }
    if (ok && pthread_cond_init(&b->queue_cond, &attr) != 0) {
        pthread_mutex_destroy(&b->lock);
        ok = 0;
    }
    if (ok && pthread_cond_init(&b->pub_cond, &attr) != 0) {
        pthread_cond_destroy(&b->queue_cond);
        pthread_mutex_destroy(&b->lock);
        ok = 0;
    }
    if (ok && pthread_cond_init(&b->conn_cond, &attr) != 0) {
        pthread_cond_destroy(&b->pub_cond);
        pthread_cond_destroy(&b->queue_cond);
        pthread_mutex_destroy(&b->lock);
        ok = 0;
    }
    (void)pthread_condattr_destroy(&attr);
    return ok ? 0 : -1;
}

ota_err_t ota_mqtt_mosquitto_init(ota_mqtt_mosquitto_t *b, const ota_mqtt_mosquitto_config_t *cfg)
{
    struct timespec until;
    int rc;
    int connack;

    if (b == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    memset(b, 0, sizeof *b);
    if (cfg == NULL || !config_ok(cfg)) {
        return OTA_ERR_INVALID_ARG;
    }
    b->cfg = *cfg;
    /* The strings are libmosquitto's copies from here on. */
    b->cfg.host = NULL;
    b->cfg.client_id = NULL;
    b->cfg.username = NULL;
    b->cfg.password = NULL;
    b->cfg.ca_file = NULL;
    b->cfg.cert_file = NULL;
    b->cfg.key_file = NULL;
    if (b->cfg.keepalive_s == 0) {
        b->cfg.keepalive_s = 60;
    }
    if (b->cfg.reconnect_min_s == 0u) {
        b->cfg.reconnect_min_s = 1u;
    }
    if (b->cfg.reconnect_max_s == 0u) {
        b->cfg.reconnect_max_s = b->cfg.reconnect_min_s > 30u ? b->cfg.reconnect_min_s : 30u;
    }
    if (b->cfg.connect_timeout_ms == 0u) {
        b->cfg.connect_timeout_ms = 10000u;
    }
    if (b->cfg.queue_max_msgs == 0u) {
        b->cfg.queue_max_msgs = OTA_MQTT_MOSQUITTO_QUEUE_MSGS;
    }
    if (b->cfg.queue_max_bytes == 0u) {
        b->cfg.queue_max_bytes = OTA_MQTT_MOSQUITTO_QUEUE_BYTES;
    }
    b->connack_rc = -1;

    if (make_sync(b) != 0) {
        memset(b, 0, sizeof *b);
        return OTA_ERR_OUT_OF_MEMORY;
    }
    b->sync_ready = 1;
    if (mosquitto_lib_init() != MOSQ_ERR_SUCCESS) {
        release(b);
        return OTA_ERR_MQTT;
    }
    b->lib_ready = 1;
    b->mosq = mosquitto_new(cfg->client_id, true, b);
    if (b->mosq == NULL) {
        rc = errno;
        release(b);
        return rc == ENOMEM ? OTA_ERR_OUT_OF_MEMORY : OTA_ERR_INVALID_ARG;
    }
    mosquitto_connect_callback_set(b->mosq, cb_connect);
    mosquitto_disconnect_callback_set(b->mosq, cb_disconnect);
    mosquitto_publish_callback_set(b->mosq, cb_publish);
    mosquitto_message_callback_set(b->mosq, cb_message);
    if (mosquitto_int_option(b->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311) !=
            MOSQ_ERR_SUCCESS ||
        mosquitto_int_option(b->mosq, MOSQ_OPT_TCP_NODELAY, 1) != MOSQ_ERR_SUCCESS ||
        mosquitto_reconnect_delay_set(b->mosq, b->cfg.reconnect_min_s, b->cfg.reconnect_max_s,
                                      b->cfg.reconnect_max_s > b->cfg.reconnect_min_s) !=
            MOSQ_ERR_SUCCESS ||
        (cfg->username != NULL &&
         mosquitto_username_pw_set(b->mosq, cfg->username, cfg->password) != MOSQ_ERR_SUCCESS) ||
        (cfg->ca_file != NULL && mosquitto_tls_set(b->mosq, cfg->ca_file, NULL, cfg->cert_file,
                                                   cfg->key_file, NULL) != MOSQ_ERR_SUCCESS)) {
        release(b);
        return OTA_ERR_MQTT;
    }
    /* Connect from the network thread, which also retries until the broker
     * answers; init waits for the first CONNACK. */
    rc = mosquitto_connect_async(b->mosq, cfg->host, cfg->port, b->cfg.keepalive_s);
    if (rc == MOSQ_ERR_INVAL || rc == MOSQ_ERR_NOMEM || rc == MOSQ_ERR_EAI) {
        release(b);
        return rc == MOSQ_ERR_NOMEM ? OTA_ERR_OUT_OF_MEMORY : OTA_ERR_MQTT;
    }
    if (mosquitto_loop_start(b->mosq) != MOSQ_ERR_SUCCESS) {
        release(b);
        return OTA_ERR_MQTT;
    }
    b->loop_ready = 1;

    until = deadline_in(b->cfg.connect_timeout_ms);
    pthread_mutex_lock(&b->lock);
    while (b->connack_rc < 0) {
        if (pthread_cond_timedwait(&b->conn_cond, &b->lock, &until) == ETIMEDOUT) {
            break;
        }
    }
    connack = b->connack_rc;
    pthread_mutex_unlock(&b->lock);
    if (connack != 0) {
        release(b);
        return connack < 0 ? OTA_ERR_TIMEOUT : OTA_ERR_MQTT;
    }
    b->last_poll = ota_mqtt_mosquitto_now_ms();
    return OTA_OK;
}

void ota_mqtt_mosquitto_cleanup(ota_mqtt_mosquitto_t *b)
{
    if (b == NULL) {
        return;
    }
    release(b);
}

ota_err_t ota_mqtt_mosquitto_attach(ota_mqtt_mosquitto_t *b, ota_agent_t *agent)
{
    if (!ready(b) || agent == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    b->agent = agent;
    return OTA_OK;
}

/* ---- delivery (the delivering thread) ---- */

static void say(ota_mqtt_mosquitto_t *b, ota_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(ota_mqtt_mosquitto_t *b, ota_log_level_t level, const char *fmt, ...)
{
    char text[160];
    va_list ap;
    if (b->cfg.log == NULL) {
        return;
    }
    va_start(ap, fmt);
    (void)vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    b->cfg.log(b->cfg.ctx, level, text);
}

static void poll_if_due(ota_mqtt_mosquitto_t *b, int force)
{
    uint32_t now = ota_mqtt_mosquitto_now_ms();
    if (force || !b->polled || now - b->last_poll >= OTA_MQTT_MOSQUITTO_POLL_MS) {
        b->last_poll = now;
        b->polled = 1;
        (void)ota_agent_poll(b->agent, now);
        pthread_mutex_lock(&b->lock);
        b->stats.polls++;
        pthread_mutex_unlock(&b->lock);
    }
}

static void deliver(ota_mqtt_mosquitto_t *b, item_t *it)
{
    uint32_t now = ota_mqtt_mosquitto_now_ms();
    ota_err_t err;
    switch (it->kind) {
    case ITEM_MESSAGE:
        deliver_message(b, it->data, it->topic_len, it->payload, it->len);
        pthread_mutex_lock(&b->lock);
        b->stats.delivered++;
        pthread_mutex_unlock(&b->lock);
        break;
    case ITEM_CONNECTED:
        say(b, OTA_LOG_INFO, "MQTT reconnected; the agent subscribes again");
        err = ota_agent_reconnected(b->agent, now);
        if (err == OTA_OK) {
            pthread_mutex_lock(&b->lock);
            b->stats.reconnects++;
            pthread_mutex_unlock(&b->lock);
        } else if (err != OTA_ERR_WRONG_STATE) {
            /* Not stopped but could not subscribe: the connection went down
             * again, and its next reconnect event retries. */
            say(b, OTA_LOG_WARN, "the agent could not subscribe again: %s", ota_err_str(err));
        }
        break;
    case ITEM_DISCONNECTED:
        say(b, OTA_LOG_WARN, "MQTT connection lost (%s); reconnecting", mosquitto_strerror(it->rc));
        break;
    }
}

ota_err_t ota_mqtt_mosquitto_run_once(ota_mqtt_mosquitto_t *b, uint32_t timeout_ms)
{
    uint32_t now, wait, budget, drops;

    if (!ready(b)) {
        return OTA_ERR_INVALID_ARG;
    }
    if (b->agent == NULL) {
        return OTA_ERR_WRONG_STATE;
    }
    now = ota_mqtt_mosquitto_now_ms();
    wait = timeout_ms;
    if (b->polled) {
        uint32_t since = now - b->last_poll;
        uint32_t to_poll =
            since >= OTA_MQTT_MOSQUITTO_POLL_MS ? 0u : OTA_MQTT_MOSQUITTO_POLL_MS - since;
        if (to_poll < wait) {
            wait = to_poll;
        }
    } else {
        wait = 0u;
    }

    pthread_mutex_lock(&b->lock);
    if (b->head == NULL && b->drops_unreported == 0u && wait > 0u) {
        struct timespec until = deadline_in(wait);
        /* Parked: meanwhile the network thread may hand stream data to the agent itself. */
        b->parked = 1;
        while (b->head == NULL && b->drops_unreported == 0u) {
            if (pthread_cond_timedwait(&b->queue_cond, &b->lock, &until) == ETIMEDOUT) {
                break;
            }
        }
        b->parked = 0;
        /* No new hand-off starts now; wait for the one under way. */
        while (b->direct_busy) {
            pthread_cond_wait(&b->queue_cond, &b->lock);
        }
    }
    /* Deliver what is queued now, not what arrives meanwhile, so that the
     * call returns even under a flood. */
    budget = (uint32_t)b->nitems;
    drops = b->drops_unreported;
    b->drops_unreported = 0;
    pthread_mutex_unlock(&b->lock);

    if (drops != 0u) {
        say(b, OTA_LOG_WARN, "incoming queue full: %u message(s) dropped", (unsigned)drops);
    }
    while (budget-- > 0u) {
        item_t *it;
        pthread_mutex_lock(&b->lock);
        it = queue_pop(b);
        pthread_mutex_unlock(&b->lock);
        if (it == NULL) {
            break;
        }
        deliver(b, it);
        free(it);
        poll_if_due(b, 0);
    }
    poll_if_due(b, 0);
    return OTA_OK;
}

ota_err_t ota_mqtt_mosquitto_run(ota_mqtt_mosquitto_t *b, const atomic_int *stop)
{
    if (stop == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    while (atomic_load(stop) == 0) {
        ota_err_t err = ota_mqtt_mosquitto_run_once(b, OTA_MQTT_MOSQUITTO_POLL_MS);
        if (err != OTA_OK) {
            return err;
        }
    }
    return OTA_OK;
}

/* ---- flush and state ---- */

/* Whether a publish numbered upto or lower is still outstanding (lock held). */
static int outstanding(const ota_mqtt_mosquitto_t *b, uint64_t upto)
{
    for (size_t i = 0; i < b->npending; i++) {
        if (b->pending[i].seq <= upto) {
            return 1;
        }
    }
    return 0;
}

ota_err_t ota_mqtt_mosquitto_flush(ota_mqtt_mosquitto_t *b, uint32_t timeout_ms)
{
    struct timespec until;
    uint64_t upto;
    int timed_out = 0;
    ota_err_t result;

    if (!ready(b)) {
        return OTA_ERR_INVALID_ARG;
    }
    until = deadline_in(timeout_ms);
    pthread_mutex_lock(&b->lock);
    if (b->direct_busy && pthread_equal(pthread_self(), b->direct_thread)) {
        /* Called by the agent within a hand-off in the network thread, which
         * is the thread that would see the publishes leave: cannot wait. */
        result = b->npending == 0u ? OTA_OK : OTA_ERR_WRONG_STATE;
        pthread_mutex_unlock(&b->lock);
        return result;
    }
    upto = b->pub_seq;
    while (!timed_out && outstanding(b, upto)) {
        timed_out = pthread_cond_timedwait(&b->pub_cond, &b->lock, &until) == ETIMEDOUT;
    }
    result = outstanding(b, upto) ? OTA_ERR_TIMEOUT : OTA_OK;
    pthread_mutex_unlock(&b->lock);
    return result;
}

int ota_mqtt_mosquitto_connected(ota_mqtt_mosquitto_t *b)
{
    int up;
    if (!ready(b)) {
        return 0;
    }
    pthread_mutex_lock(&b->lock);
    up = b->stats.connected;
    pthread_mutex_unlock(&b->lock);
    return up;
}

ota_err_t ota_mqtt_mosquitto_get_stats(ota_mqtt_mosquitto_t *b, ota_mqtt_mosquitto_stats_t *out)
{
    if (!ready(b) || out == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    pthread_mutex_lock(&b->lock);
    *out = b->stats;
    pthread_mutex_unlock(&b->lock);
    return OTA_OK;
}
