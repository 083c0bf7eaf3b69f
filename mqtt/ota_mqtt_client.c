/* otter: a small MQTT 3.1.1 client for devices (see ota_mqtt_client.h). */
#include "otter/ota_mqtt_client.h"

#include <string.h>

#define DEFAULT_KEEP_ALIVE_S 60u
#define DEFAULT_ACK_TIMEOUT_MS 10000u
#define DEFAULT_RECONNECT_MIN_MS 1000u
#define DEFAULT_RECONNECT_MAX_MS 30000u
/* Bytes taken from the transport per read. */
#define RX_CHUNK 64u

/* 1 when the wrapping clock has reached t. */
static int reached(uint32_t now, uint32_t t)
{
    return (int32_t)(now - t) >= 0;
}

ota_err_t ota_mqttc_init(ota_mqttc_t *c, const ota_mqttc_config_t *cfg)
{
    if (c == NULL || cfg == NULL || cfg->transport.send == NULL || cfg->transport.recv == NULL ||
        cfg->client_id == NULL || cfg->rx_buf == NULL || cfg->rx_size < 16u ||
        cfg->tx_buf == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    memset(c, 0, sizeof *c);
    c->cfg = *cfg;
    if (c->cfg.keep_alive_s == 0u) {
        c->cfg.keep_alive_s = DEFAULT_KEEP_ALIVE_S;
    }
    if (c->cfg.ack_timeout_ms == 0u) {
        c->cfg.ack_timeout_ms = DEFAULT_ACK_TIMEOUT_MS;
    }
    if (c->cfg.reconnect_min_ms == 0u) {
        c->cfg.reconnect_min_ms = DEFAULT_RECONNECT_MIN_MS;
    }
    if (c->cfg.reconnect_max_ms == 0u) {
        c->cfg.reconnect_max_ms = DEFAULT_RECONNECT_MAX_MS;
    }
    if (c->cfg.reconnect_min_ms > c->cfg.reconnect_max_ms) {
        return OTA_ERR_INVALID_ARG;
    }
    /* The CONNECT must fit the transmit buffer (this also checks its strings). */
    ota_mqtt_connect_t conn = {cfg->client_id, cfg->username, cfg->password, c->cfg.keep_alive_s,
                               1};
    if (ota_mqtt_encode_connect(cfg->tx_buf, cfg->tx_size, &conn) < 0) {
        return OTA_ERR_INVALID_ARG;
    }
    ota_mqtt_reader_init(&c->reader, cfg->rx_buf, cfg->rx_size);
    c->backoff = c->cfg.reconnect_min_ms;
    c->next_id = 1;
    return OTA_OK;
}

/* Reconnect after the current back-off, and double it for the next time. */
static void schedule_retry(ota_mqttc_t *c)
{
    c->state = OTA_MQTTC_WAITING;
    c->retry_at = c->now + c->backoff;
    c->backoff =
        c->backoff > c->cfg.reconnect_max_ms / 2u ? c->cfg.reconnect_max_ms : c->backoff * 2u;
}

static void close_transport(ota_mqttc_t *c)
{
    if (c->cfg.transport.close != NULL) {
        c->cfg.transport.close(c->cfg.transport.ctx);
    }
    ota_mqtt_reader_next(&c->reader);
    memset(c->inflight_id, 0, sizeof c->inflight_id);
    c->ping_pending = 0;
    c->epoch++;
}

/* The connection is gone: close, wait for the back-off, tell the application. */
static void lose(ota_mqttc_t *c, ota_err_t why)
{
    int was_up = c->state == OTA_MQTTC_CONNECTED || c->state == OTA_MQTTC_CONNECTING;
    close_transport(c);
    schedule_retry(c);
    if (was_up) {
        c->stats.losses++;
        if (c->cfg.callbacks.on_disconnect != NULL) {
            c->cfg.callbacks.on_disconnect(c->cfg.callbacks.ctx, why);
        }
    }
}

static ota_err_t send_bytes(ota_mqttc_t *c, const uint8_t *data, size_t len)
{
    if (c->cfg.transport.send(c->cfg.transport.ctx, data, len) != OTA_OK) {
        lose(c, OTA_ERR_MQTT);
        return OTA_ERR_MQTT;
    }
    c->last_tx = c->now;
    return OTA_OK;
}

static void start_connect(ota_mqttc_t *c)
{
    if (c->cfg.transport.open != NULL && c->cfg.transport.open(c->cfg.transport.ctx) != OTA_OK) {
        schedule_retry(c);
        return;
    }
    ota_mqtt_connect_t conn = {c->cfg.client_id, c->cfg.username, c->cfg.password,
                               c->cfg.keep_alive_s, 1};
    int32_t n = ota_mqtt_encode_connect(c->cfg.tx_buf, c->cfg.tx_size, &conn);
    c->state = OTA_MQTTC_CONNECTING;
    c->wait_since = c->now;
    if (n > 0) {
        (void)send_bytes(c, c->cfg.tx_buf, (size_t)n);
    }
}

ota_err_t ota_mqttc_connect(ota_mqttc_t *c, uint32_t now_ms)
{
    if (c == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    if (c->state != OTA_MQTTC_IDLE) {
        return OTA_ERR_WRONG_STATE;
    }
    c->now = now_ms;
    c->backoff = c->cfg.reconnect_min_ms;
    start_connect(c);
    return OTA_OK;
}

/* Finds an inflight slot by id and type (or a free one for id 0); -1 if none. */
static int inflight_find(const ota_mqttc_t *c, uint16_t id, uint8_t type)
{
    for (unsigned i = 0; i < OTA_MQTTC_INFLIGHT_MAX; i++) {
        if (c->inflight_id[i] == id && (id == 0u || c->inflight_type[i] == type)) {
            return (int)i;
        }
    }
    return -1;
}

/* An acknowledgement of type arrived for id: free its slot; 0, or -1 if unexpected. */
static int acknowledge(ota_mqttc_t *c, uint16_t id, uint8_t type)
{
    int i = inflight_find(c, id, type);
    if (i < 0) {
        return -1;
    }
    c->inflight_id[i] = 0;
    return 0;
}

static void handle_publish(ota_mqttc_t *c)
{
    ota_mqtt_reader_t *r = &c->reader;
    ota_mqtt_publish_t msg;
    uint32_t kept = ota_mqtt_reader_kept(r);
    if (ota_mqtt_decode_publish(ota_mqtt_reader_flags(r), r->buf, kept, ota_mqtt_reader_length(r),
                                &msg) != OTA_OK ||
        msg.qos > 1u) {
        lose(c, OTA_ERR_BAD_MESSAGE);
        return;
    }
    if (msg.qos == 1u) {
        uint8_t ack[OTA_MQTT_SMALL_PACKET];
        int32_t n = ota_mqtt_encode_puback(ack, msg.packet_id);
        if (send_bytes(c, ack, (size_t)n) != OTA_OK) {
            return;
        }
    }
    if (kept < ota_mqtt_reader_length(r)) {
        c->stats.dropped++;
        return;
    }
    c->stats.received++;
    if (c->cfg.callbacks.on_message != NULL) {
        c->cfg.callbacks.on_message(c->cfg.callbacks.ctx, msg.topic, msg.topic_len, msg.payload,
                                    msg.payload_len);
    }
}

/* Handles the complete packet in the reader. */
static void handle_packet(ota_mqttc_t *c)
{
    ota_mqtt_reader_t *r = &c->reader;
    uint8_t type = ota_mqtt_reader_type(r);
    uint8_t flags = ota_mqtt_reader_flags(r);
    uint32_t len = ota_mqtt_reader_length(r);
    uint16_t id = 0;
    uint8_t code = 0;
    ota_err_t err = OTA_OK;
    if (type != OTA_MQTT_PUBLISH && len > ota_mqtt_reader_kept(r)) {
        lose(c, OTA_ERR_BAD_MESSAGE); /* no other packet may be that large */
        return;
    }
    if (c->state == OTA_MQTTC_CONNECTING) {
        /* The broker's first packet must be CONNACK. */
        uint8_t session = 0;
        if (type != OTA_MQTT_CONNACK ||
            ota_mqtt_decode_connack(flags, r->buf, len, &session, &code) != OTA_OK) {
            lose(c, OTA_ERR_BAD_MESSAGE);
            return;
        }
        c->stats.last_connack = code;
        if (code != 0u) {
            c->state = OTA_MQTTC_CONNECTED; /* count the refusal as a loss */
            lose(c, OTA_ERR_SERVICE_REJECTED);
            return;
        }
        c->state = OTA_MQTTC_CONNECTED;
        c->stats.connects++;
        c->backoff = c->cfg.reconnect_min_ms;
        if (c->cfg.callbacks.on_connect != NULL) {
            c->cfg.callbacks.on_connect(c->cfg.callbacks.ctx);
        }
        return;
    }
    switch (type) {
    case OTA_MQTT_PUBLISH:
        handle_publish(c);
        return;
    case OTA_MQTT_PUBACK:
    case OTA_MQTT_UNSUBACK:
        err = ota_mqtt_decode_ack(flags, r->buf, len, &id);
        break;
    case OTA_MQTT_SUBACK:
        err = ota_mqtt_decode_suback(flags, r->buf, len, &id, &code);
        if (err == OTA_OK && code == 0x80u) {
            c->stats.refused_subs++;
        }
        break;
    case OTA_MQTT_PINGRESP:
        if (flags != 0u || len != 0u) {
            lose(c, OTA_ERR_BAD_MESSAGE);
        }
        c->ping_pending = 0;
        return;
    default:
        err = OTA_ERR_BAD_MESSAGE; /* CONNACK again, or a packet only clients send */
        break;
    }
    if (err != OTA_OK || acknowledge(c, id, type) != 0) {
        lose(c, OTA_ERR_BAD_MESSAGE);
    }
}

static void read_packets(ota_mqttc_t *c, uint32_t max_packets)
{
    uint8_t chunk[RX_CHUNK];
    uint32_t done = 0;
    uint32_t epoch = c->epoch;
    while (c->epoch == epoch && (max_packets == 0u || done < max_packets)) {
        /* Read no further than the end of the packet being framed, so bytes of
         * the next packet are never taken before the callbacks have run. */
        size_t want = sizeof chunk;
        if (c->reader.phase == 2u) {
            uint32_t left = c->reader.remaining - c->reader.received;
            want = left < want ? left : want;
        } else {
            want = 1u;
        }
        int32_t n = c->cfg.transport.recv(c->cfg.transport.ctx, chunk, want);
        if (n < 0) {
            lose(c, OTA_ERR_MQTT);
            return;
        }
        if (n == 0) {
            return;
        }
        size_t used = 0;
        int rc = ota_mqtt_reader_feed(&c->reader, chunk, (size_t)n, &used);
        if (rc < 0) {
            lose(c, OTA_ERR_BAD_MESSAGE);
            return;
        }
        if (rc == 1) {
            done++;
            handle_packet(c);
            if (c->epoch == epoch) {
                ota_mqtt_reader_next(&c->reader);
            }
        }
    }
}

static void check_timers(ota_mqttc_t *c)
{
    uint32_t ack = c->cfg.ack_timeout_ms;
    if (c->state == OTA_MQTTC_WAITING) {
        if (reached(c->now, c->retry_at)) {
            start_connect(c);
        }
        return;
    }
    if (c->state == OTA_MQTTC_CONNECTING) {
        if (reached(c->now, c->wait_since + ack)) {
            lose(c, OTA_ERR_TIMEOUT);
        }
        return;
    }
    if (c->state != OTA_MQTTC_CONNECTED) {
        return;
    }
    for (unsigned i = 0; i < OTA_MQTTC_INFLIGHT_MAX; i++) {
        if (c->inflight_id[i] != 0u && reached(c->now, c->inflight_at[i] + ack)) {
            lose(c, OTA_ERR_TIMEOUT);
            return;
        }
    }
    if (c->ping_pending) {
        if (reached(c->now, c->wait_since + ack)) {
            lose(c, OTA_ERR_TIMEOUT);
        }
    } else if (reached(c->now, c->last_tx + (uint32_t)c->cfg.keep_alive_s * 1000u)) {
        uint8_t ping[OTA_MQTT_SMALL_PACKET];
        int32_t n = ota_mqtt_encode_empty(ping, OTA_MQTT_PINGREQ);
        if (send_bytes(c, ping, (size_t)n) == OTA_OK) {
            c->ping_pending = 1;
            c->wait_since = c->now;
            c->stats.pings++;
        }
    }
}

ota_err_t ota_mqttc_poll(ota_mqttc_t *c, uint32_t now_ms, uint32_t max_packets)
{
    if (c == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    c->now = now_ms;
    if (c->state == OTA_MQTTC_CONNECTING || c->state == OTA_MQTTC_CONNECTED) {
        read_packets(c, max_packets);
    }
    check_timers(c);
    return OTA_OK;
}

/* Takes a packet id and an inflight slot for an acknowledgement of type. */
static ota_err_t take_id(ota_mqttc_t *c, uint8_t type, uint16_t *id, int *slot)
{
    *slot = inflight_find(c, 0, 0);
    if (*slot < 0) {
        return OTA_ERR_MQTT;
    }
    do {
        *id = c->next_id++;
    } while (*id == 0u || inflight_find(c, *id, type) >= 0);
    return OTA_OK;
}

static void track(ota_mqttc_t *c, int slot, uint16_t id, uint8_t type)
{
    c->inflight_id[slot] = id;
    c->inflight_type[slot] = type;
    c->inflight_at[slot] = c->now;
}

ota_err_t ota_mqttc_publish(ota_mqttc_t *c, const char *topic, const uint8_t *payload, size_t len,
                            uint8_t qos)
{
    uint16_t id = 0;
    int slot = -1;
    if (c == NULL || topic == NULL || (payload == NULL && len > 0u) || qos > 1u) {
        return OTA_ERR_INVALID_ARG;
    }
    if (c->state != OTA_MQTTC_CONNECTED) {
        return OTA_ERR_MQTT;
    }
    if (qos == 1u && take_id(c, OTA_MQTT_PUBACK, &id, &slot) != OTA_OK) {
        return OTA_ERR_MQTT;
    }
    int32_t n = ota_mqtt_encode_publish_header(c->cfg.tx_buf, c->cfg.tx_size, topic, len, qos, id);
    if (n == OTA_ERR_OUT_OF_MEMORY) {
        return OTA_ERR_MQTT;
    }
    if (n < 0) {
        return OTA_ERR_INVALID_ARG;
    }
    if (send_bytes(c, c->cfg.tx_buf, (size_t)n) != OTA_OK ||
        (len > 0u && send_bytes(c, payload, len) != OTA_OK)) {
        return OTA_ERR_MQTT;
    }
    if (qos == 1u) {
        track(c, slot, id, OTA_MQTT_PUBACK);
    }
    c->stats.published++;
    return OTA_OK;
}

/* SUBSCRIBE (sub = 1) or UNSUBSCRIBE of one filter. */
static ota_err_t filter_request(ota_mqttc_t *c, const char *filter, int sub, uint8_t qos)
{
    uint16_t id = 0;
    int slot = -1;
    uint8_t ack = sub ? OTA_MQTT_SUBACK : OTA_MQTT_UNSUBACK;
    if (c == NULL || filter == NULL || qos > 1u) {
        return OTA_ERR_INVALID_ARG;
    }
    if (c->state != OTA_MQTTC_CONNECTED || take_id(c, ack, &id, &slot) != OTA_OK) {
        return OTA_ERR_MQTT;
    }
    int32_t n = sub ? ota_mqtt_encode_subscribe(c->cfg.tx_buf, c->cfg.tx_size, id, filter, qos)
                    : ota_mqtt_encode_unsubscribe(c->cfg.tx_buf, c->cfg.tx_size, id, filter);
    if (n == OTA_ERR_OUT_OF_MEMORY) {
        return OTA_ERR_MQTT;
    }
    if (n < 0) {
        return OTA_ERR_INVALID_ARG;
    }
    if (send_bytes(c, c->cfg.tx_buf, (size_t)n) != OTA_OK) {
        return OTA_ERR_MQTT;
    }
    track(c, slot, id, ack);
    return OTA_OK;
}

ota_err_t ota_mqttc_subscribe(ota_mqttc_t *c, const char *filter, uint8_t qos)
{
    return filter_request(c, filter, 1, qos);
}

ota_err_t ota_mqttc_unsubscribe(ota_mqttc_t *c, const char *filter)
{
    return filter_request(c, filter, 0, 0);
}

ota_err_t ota_mqttc_disconnect(ota_mqttc_t *c)
{
    if (c == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    if (c->state == OTA_MQTTC_CONNECTED) {
        uint8_t pkt[OTA_MQTT_SMALL_PACKET];
        int32_t n = ota_mqtt_encode_empty(pkt, OTA_MQTT_DISCONNECT);
        (void)c->cfg.transport.send(c->cfg.transport.ctx, pkt, (size_t)n);
    }
    if (c->state != OTA_MQTTC_IDLE) {
        close_transport(c);
    }
    c->state = OTA_MQTTC_IDLE;
    return OTA_OK;
}

ota_mqttc_state_t ota_mqttc_get_state(const ota_mqttc_t *c)
{
    return c != NULL ? c->state : OTA_MQTTC_IDLE;
}

uint32_t ota_mqttc_pending(const ota_mqttc_t *c)
{
    uint32_t n = 0;
    for (unsigned i = 0; c != NULL && i < OTA_MQTTC_INFLIGHT_MAX; i++) {
        n += c->inflight_id[i] != 0u ? 1u : 0u;
    }
    return n;
}

const ota_mqttc_stats_t *ota_mqttc_get_stats(const ota_mqttc_t *c)
{
    return c != NULL ? &c->stats : NULL;
}

static ota_err_t itf_subscribe(void *ctx, const char *topic, uint8_t qos)
{
    return ota_mqttc_subscribe(ctx, topic, qos) == OTA_OK ? OTA_OK : OTA_ERR_MQTT;
}

static ota_err_t itf_unsubscribe(void *ctx, const char *topic)
{
    return ota_mqttc_unsubscribe(ctx, topic) == OTA_OK ? OTA_OK : OTA_ERR_MQTT;
}

static ota_err_t itf_publish(void *ctx, const char *topic, const uint8_t *payload, size_t len,
                             uint8_t qos)
{
    return ota_mqttc_publish(ctx, topic, payload, len, qos) == OTA_OK ? OTA_OK : OTA_ERR_MQTT;
}

ota_mqtt_t ota_mqttc_interface(ota_mqttc_t *c)
{
    ota_mqtt_t m;
    m.ctx = c;
    m.subscribe = itf_subscribe;
    m.unsubscribe = itf_unsubscribe;
    m.publish = itf_publish;
    return m;
}
