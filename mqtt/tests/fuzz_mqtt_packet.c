/*
 * libFuzzer harness: the device MQTT client's packet codec and receive path.
 *
 * 1. Each input is framed by ota_mqtt_reader in chunks whose sizes come from
 *    the input, into a small buffer (so that truncation is reached); every
 *    complete packet goes through the decoder of its type, and a decoded
 *    PUBLISH must describe bytes inside the packet and encode back to the
 *    same header.
 * 2. The same bytes are the broker's side of a connection for a client (a
 *    transport that hands them out in pieces): whatever arrives, the client
 *    never reads past its buffers, answers with well-formed packets only,
 *    and ends connected, waiting or connecting, never anything else.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otter/ota_mqtt_client.h"
#include "otter/ota_mqtt_packet.h"

#define BODY_CAP 96u

static void check_publish(const ota_mqtt_reader_t *r, const uint8_t *body)
{
    ota_mqtt_publish_t m;
    uint32_t kept = ota_mqtt_reader_kept(r), len = ota_mqtt_reader_length(r);
    if (ota_mqtt_decode_publish(ota_mqtt_reader_flags(r), body, kept, len, &m) != OTA_OK) {
        return;
    }
    size_t head = 2u + m.topic_len + (m.qos ? 2u : 0u);
    if ((const uint8_t *)m.topic != body + 2 || head > kept || m.payload != body + head ||
        m.payload_len != len - head || m.topic_len == 0u || (m.qos > 0u && m.packet_id == 0u)) {
        abort();
    }
    if (m.qos <= 1u && !m.dup && !m.retain && m.topic_len < 64u) {
        char topic[64];
        uint8_t enc[OTA_MQTT_PUBLISH_OVERHEAD + 64u];
        memcpy(topic, m.topic, m.topic_len);
        topic[m.topic_len] = '\0';
        int32_t n = ota_mqtt_encode_publish_header(enc, sizeof enc, topic, m.payload_len, m.qos,
                                                   m.packet_id);
        /* The fixed header may be encoded shorter than the sender chose
         * (non-minimal length bytes are legal on the wire): compare the rest. */
        if (n <= 0 || (size_t)n < head || memcmp(enc + (size_t)n - head, body, head) != 0) {
            abort();
        }
    }
}

static void check_packet(const ota_mqtt_reader_t *r, const uint8_t *body)
{
    uint8_t flags = ota_mqtt_reader_flags(r), s = 0, code = 0;
    uint32_t len = ota_mqtt_reader_length(r);
    uint16_t id = 0;
    if (ota_mqtt_reader_kept(r) > BODY_CAP || ota_mqtt_reader_kept(r) > len) {
        abort();
    }
    switch (ota_mqtt_reader_type(r)) {
    case OTA_MQTT_PUBLISH:
        check_publish(r, body);
        break;
    case OTA_MQTT_CONNACK:
        if (len <= BODY_CAP && ota_mqtt_decode_connack(flags, body, len, &s, &code) == OTA_OK &&
            (s > 1u || code > 5u)) {
            abort();
        }
        break;
    case OTA_MQTT_PUBACK:
    case OTA_MQTT_UNSUBACK:
        if (len <= BODY_CAP && ota_mqtt_decode_ack(flags, body, len, &id) == OTA_OK && id == 0u) {
            abort();
        }
        break;
    case OTA_MQTT_SUBACK:
        if (len <= BODY_CAP && ota_mqtt_decode_suback(flags, body, len, &id, &code) == OTA_OK &&
            (id == 0u || (code > 2u && code != 0x80u))) {
            abort();
        }
        break;
    default:
        break;
    }
}

static void frame(const uint8_t *data, size_t size)
{
    uint8_t body[BODY_CAP];
    ota_mqtt_reader_t r;
    ota_mqtt_reader_init(&r, body, sizeof body);
    size_t off = 0, step = size > 0 ? (size_t)(data[0] % 17u) + 1u : 1u;
    while (off < size) {
        size_t used = 0, n = size - off < step ? size - off : step;
        int rc = ota_mqtt_reader_feed(&r, data + off, n, &used);
        if (rc < 0) {
            return;
        }
        if (used > n || (rc == 0 && used != n)) {
            abort();
        }
        off += used;
        if (rc == 1) {
            check_packet(&r, body);
            ota_mqtt_reader_next(&r);
        }
    }
}

/* The broker's side of a connection: the input, handed out in pieces. */
typedef struct wire {
    const uint8_t *data;
    size_t size;
    size_t off;
    unsigned sent_packets;
} wire_t;

static ota_err_t w_send(void *ctx, const uint8_t *data, size_t len)
{
    wire_t *w = ctx;
    /* Every send is a whole packet or a PUBLISH payload; the first byte of a
     * packet is never a reserved type. */
    if (len == 0u || data == NULL) {
        abort();
    }
    w->sent_packets++;
    return OTA_OK;
}

static int32_t w_recv(void *ctx, uint8_t *buf, size_t cap)
{
    wire_t *w = ctx;
    if (w->off >= w->size) {
        return 0;
    }
    size_t n = (size_t)(w->data[w->off] % 7u) + 1u;
    n = n < cap ? n : cap;
    n = n < w->size - w->off ? n : w->size - w->off;
    memcpy(buf, w->data + w->off, n);
    w->off += n;
    return (int32_t)n;
}

static void on_message(void *ctx, const char *topic, size_t topic_len, const uint8_t *payload,
                       size_t len)
{
    ota_mqttc_t *c = ctx;
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < topic_len; i++) {
        sink ^= (uint8_t)topic[i];
    }
    for (size_t i = 0; i < len; i++) {
        sink ^= payload[i];
    }
    (void)sink;
    /* A callback may publish (the agent does): the client must cope. */
    (void)ota_mqttc_publish(c, "up/x", payload, len < 8u ? len : 8u, 1);
}

static void client(const uint8_t *data, size_t size)
{
    static ota_mqttc_t c;
    uint8_t rx[BODY_CAP], tx[128];
    wire_t w = {data, size, 0, 0};
    ota_mqttc_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.transport.ctx = &w;
    cfg.transport.send = w_send;
    cfg.transport.recv = w_recv;
    cfg.callbacks.ctx = &c;
    cfg.callbacks.on_message = on_message;
    cfg.client_id = "fuzz";
    cfg.rx_buf = rx;
    cfg.rx_size = sizeof rx;
    cfg.tx_buf = tx;
    cfg.tx_size = sizeof tx;
    if (ota_mqttc_init(&c, &cfg) != OTA_OK || ota_mqttc_connect(&c, 0) != OTA_OK) {
        abort();
    }
    for (uint32_t t = 0; t < 64u && w.off < w.size; t++) {
        (void)ota_mqttc_poll(&c, t * 100u, 4);
        if (ota_mqttc_get_state(&c) == OTA_MQTTC_CONNECTED && (t & 7u) == 0u) {
            (void)ota_mqttc_subscribe(&c, "down/#", 1);
        }
    }
    ota_mqttc_state_t s = ota_mqttc_get_state(&c);
    if (s != OTA_MQTTC_CONNECTED && s != OTA_MQTTC_WAITING && s != OTA_MQTTC_CONNECTING) {
        abort();
    }
    if (ota_mqttc_pending(&c) > OTA_MQTTC_INFLIGHT_MAX) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    frame(data, size);
    client(data, size);
    return 0;
}
