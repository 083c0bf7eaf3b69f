/*
 * Tests of the device MQTT client: its packet codec byte for byte, and the
 * client against a real Mosquitto on 127.0.0.1 (publish and subscribe with
 * QoS 0 and 1, large and oversized messages, keep-alive, reconnection after a
 * broker restart, username and password).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mqtt_socket.h"
#include "otter/ota_mqtt_client.h"
#include "otter/ota_mqtt_packet.h"
#include "ota_test_net.h"

#define RX_SIZE (70u * 1024u)
#define TX_SIZE 512u

/* ---- codec ---- */

static void test_codec_connect(void **state)
{
    (void)state;
    static const uint8_t expect[] = {0x10, 24, 0,   4,   'M', 'Q', 'T', 'T', 4,
                                     0xc2, 0,  30,  0,   4,   'd', 'e', 'v', '1',
                                     0,    2,  'u', 'x', 0,   2,   'p', 'w'};
    uint8_t buf[64];
    ota_mqtt_connect_t c = {"dev1", "ux", "pw", 30, 1};
    assert_int_equal(ota_mqtt_encode_connect(buf, sizeof buf, &c), sizeof expect);
    assert_memory_equal(buf, expect, sizeof expect);
    assert_int_equal(ota_mqtt_encode_connect(buf, sizeof expect - 1, &c), OTA_ERR_OUT_OF_MEMORY);
    ota_mqtt_connect_t nouser = {"dev1", NULL, "pw", 30, 1};
    assert_int_equal(ota_mqtt_encode_connect(buf, sizeof buf, &nouser), OTA_ERR_INVALID_ARG);
    ota_mqtt_connect_t noid = {"", NULL, NULL, 30, 1};
    assert_int_equal(ota_mqtt_encode_connect(buf, sizeof buf, &noid), OTA_ERR_INVALID_ARG);
}

/* Frames bytes with a reader, fed in pieces of `step`; returns the packets' count. */
static int frame_all(ota_mqtt_reader_t *r, const uint8_t *in, size_t len, size_t step)
{
    int packets = 0;
    size_t off = 0;
    while (off < len) {
        size_t n = len - off < step ? len - off : step;
        size_t used = 0;
        int rc = ota_mqtt_reader_feed(r, in + off, n, &used);
        if (rc < 0) {
            return rc;
        }
        off += used;
        if (rc == 1) {
            packets++;
            ota_mqtt_reader_next(r);
        }
    }
    return packets;
}

static void test_codec_publish_lengths(void **state)
{
    (void)state;
    /* Payloads around every boundary of the remaining-length encoding. */
    static const size_t sizes[] = {0, 1, 115, 116, 117, 16371, 16372, 16373, 70000};
    static uint8_t wire[80000];
    static uint8_t body[80000];
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        for (uint8_t qos = 0; qos <= 1; qos++) {
            size_t plen = sizes[k];
            int32_t h = ota_mqtt_encode_publish_header(wire, sizeof wire, "a/b", plen, qos, 7);
            assert_true(h > 0);
            for (size_t i = 0; i < plen; i++) {
                wire[(size_t)h + i] = (uint8_t)(i * 31u + k);
            }
            ota_mqtt_reader_t r;
            ota_mqtt_reader_init(&r, body, sizeof body);
            size_t used = 0;
            assert_int_equal(ota_mqtt_reader_feed(&r, wire, (size_t)h + plen, &used), 1);
            assert_int_equal(used, (size_t)h + plen);
            assert_int_equal(ota_mqtt_reader_type(&r), OTA_MQTT_PUBLISH);
            ota_mqtt_publish_t m;
            assert_int_equal(ota_mqtt_decode_publish(ota_mqtt_reader_flags(&r), body,
                                                     ota_mqtt_reader_kept(&r),
                                                     ota_mqtt_reader_length(&r), &m),
                             OTA_OK);
            assert_int_equal(m.topic_len, 3);
            assert_memory_equal(m.topic, "a/b", 3);
            assert_int_equal(m.qos, qos);
            assert_int_equal(m.packet_id, qos ? 7 : 0);
            assert_int_equal(m.payload_len, plen);
            if (plen > 0) {
                assert_memory_equal(m.payload, wire + h, plen);
            }
            /* Byte by byte, the same packet frames the same way. */
            ota_mqtt_reader_init(&r, body, sizeof body);
            assert_int_equal(frame_all(&r, wire, (size_t)h + plen, 1), 1);
        }
    }
}

static void test_codec_truncated_publish(void **state)
{
    (void)state;
    uint8_t wire[300];
    uint8_t body[16];
    int32_t h = ota_mqtt_encode_publish_header(wire, sizeof wire, "t/x", 200, 1, 9);
    assert_true(h > 0);
    memset(wire + h, 0xab, 200);
    ota_mqtt_reader_t r;
    ota_mqtt_reader_init(&r, body, sizeof body);
    assert_int_equal(frame_all(&r, wire, (size_t)h + 200, 13), 1);
    /* The body did not fit: the topic and id are still there. */
    ota_mqtt_reader_init(&r, body, sizeof body);
    size_t used = 0, off = 0;
    int rc = 0;
    while (rc == 0) {
        rc = ota_mqtt_reader_feed(&r, wire + off, (size_t)h + 200 - off, &used);
        off += used;
    }
    assert_int_equal(rc, 1);
    assert_int_equal(ota_mqtt_reader_kept(&r), sizeof body);
    ota_mqtt_publish_t m;
    assert_int_equal(ota_mqtt_decode_publish(ota_mqtt_reader_flags(&r), body, sizeof body,
                                             ota_mqtt_reader_length(&r), &m),
                     OTA_OK);
    assert_int_equal(m.packet_id, 9);
    assert_int_equal(m.payload_len, 200);
}

static void test_codec_rejects(void **state)
{
    (void)state;
    uint8_t b[8] = {0};
    uint16_t id = 0;
    uint8_t s = 0, code = 0;
    ota_mqtt_publish_t m;
    /* Reserved packet types and a fifth length byte. */
    ota_mqtt_reader_t r;
    size_t used;
    static const uint8_t type0[] = {0x00, 0x00};
    static const uint8_t type15[] = {0xf0, 0x00};
    static const uint8_t longlen[] = {0x30, 0xff, 0xff, 0xff, 0xff, 0x01};
    ota_mqtt_reader_init(&r, b, sizeof b);
    assert_int_equal(ota_mqtt_reader_feed(&r, type0, 2, &used), OTA_ERR_BAD_MESSAGE);
    ota_mqtt_reader_init(&r, b, sizeof b);
    assert_int_equal(ota_mqtt_reader_feed(&r, type15, 2, &used), OTA_ERR_BAD_MESSAGE);
    ota_mqtt_reader_init(&r, b, sizeof b);
    assert_int_equal(ota_mqtt_reader_feed(&r, longlen, sizeof longlen, &used), OTA_ERR_BAD_MESSAGE);
    /* CONNACK: flags, length, reserved bits, unknown code. */
    static const uint8_t ok[] = {0x00, 0x00};
    static const uint8_t badbits[] = {0x02, 0x00};
    static const uint8_t badcode[] = {0x00, 0x06};
    assert_int_equal(ota_mqtt_decode_connack(0, ok, 2, &s, &code), OTA_OK);
    assert_int_equal(ota_mqtt_decode_connack(1, ok, 2, &s, &code), OTA_ERR_BAD_MESSAGE);
    assert_int_equal(ota_mqtt_decode_connack(0, ok, 1, &s, &code), OTA_ERR_BAD_MESSAGE);
    assert_int_equal(ota_mqtt_decode_connack(0, badbits, 2, &s, &code), OTA_ERR_BAD_MESSAGE);
    assert_int_equal(ota_mqtt_decode_connack(0, badcode, 2, &s, &code), OTA_ERR_BAD_MESSAGE);
    /* Acks: id 0, wrong length; SUBACK codes. */
    static const uint8_t id0[] = {0, 0, 0};
    static const uint8_t id5[] = {0, 5, 0x80};
    static const uint8_t id5bad[] = {0, 5, 0x03};
    assert_int_equal(ota_mqtt_decode_ack(0, id0, 2, &id), OTA_ERR_BAD_MESSAGE);
    assert_int_equal(ota_mqtt_decode_ack(0, id5, 3, &id), OTA_ERR_BAD_MESSAGE);
    assert_int_equal(ota_mqtt_decode_ack(0, id5, 2, &id), OTA_OK);
    assert_int_equal(id, 5);
    assert_int_equal(ota_mqtt_decode_suback(0, id5, 3, &id, &code), OTA_OK);
    assert_int_equal(code, 0x80);
    assert_int_equal(ota_mqtt_decode_suback(0, id5bad, 3, &id, &code), OTA_ERR_BAD_MESSAGE);
    /* PUBLISH: QoS 3, DUP on QoS 0, empty topic, wildcard, NUL, id 0, topic past the end. */
    static const uint8_t pub[] = {0, 1, 'a', 0, 1, 'x'};
    static const uint8_t empty[] = {0, 0, 'x'};
    static const uint8_t wild[] = {0, 1, '#'};
    static const uint8_t nul[] = {0, 1, 0};
    static const uint8_t id0pub[] = {0, 1, 'a', 0, 0};
    static const uint8_t past[] = {0, 9, 'a'};
    assert_int_equal(ota_mqtt_decode_publish(0, pub, 6, 6, &m), OTA_OK);
    assert_int_equal(m.payload_len, 3);
    assert_int_equal(ota_mqtt_decode_publish(2, pub, 6, 6, &m), OTA_OK);
    assert_int_equal(m.packet_id, 1);
    assert_int_equal(m.payload_len, 1);
    assert_int_equal(ota_mqtt_decode_publish(6, pub, 6, 6, &m), OTA_ERR_BAD_MESSAGE);
    assert_int_equal(ota_mqtt_decode_publish(8, pub, 6, 6, &m), OTA_ERR_BAD_MESSAGE);
    assert_int_equal(ota_mqtt_decode_publish(0, empty, 3, 3, &m), OTA_ERR_BAD_MESSAGE);
    assert_int_equal(ota_mqtt_decode_publish(0, wild, 3, 3, &m), OTA_ERR_BAD_MESSAGE);
    assert_int_equal(ota_mqtt_decode_publish(0, nul, 3, 3, &m), OTA_ERR_BAD_MESSAGE);
    assert_int_equal(ota_mqtt_decode_publish(2, id0pub, 5, 5, &m), OTA_ERR_BAD_MESSAGE);
    assert_int_equal(ota_mqtt_decode_publish(0, past, 3, 3, &m), OTA_ERR_BAD_MESSAGE);
    assert_int_equal(ota_mqtt_decode_publish(2, pub, 3, 3, &m), OTA_ERR_BAD_MESSAGE);
    /* Encoders refuse wildcards in topic names, QoS 2 and id 0. */
    uint8_t out[64];
    assert_int_equal(ota_mqtt_encode_publish_header(out, sizeof out, "a/+", 1, 0, 0),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_mqtt_encode_publish_header(out, sizeof out, "a", 1, 2, 1),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_mqtt_encode_publish_header(out, sizeof out, "a", 1, 1, 0),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_mqtt_encode_subscribe(out, sizeof out, 0, "a", 0), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_mqtt_encode_subscribe(out, 4, 1, "abc", 0), OTA_ERR_OUT_OF_MEMORY);
}

/* ---- against Mosquitto ---- */

typedef struct rx_msg {
    char topic[128];
    uint8_t *payload;
    size_t len;
} rx_msg_t;

typedef struct client_fx {
    ota_test_broker_t broker;
    ota_mqttc_t c;
    mqtt_socket_t sock;
    uint8_t *rx;
    uint8_t tx[TX_SIZE];
    rx_msg_t msgs[16];
    int nmsgs;
    int connects;
    int disconnects;
    const char *resubscribe; /* subscribed again on every connect */
    ota_test_login_t dev;    /* device-1's login from `otter thing create` */
    ota_test_login_t ka;     /* device-ka's */
    ota_test_login_t svc;    /* the service's, for the peer on the other side */
} client_fx_t;

/* Topics of device-1: the broker `otter broker init` sets up lets a thing use
 * only its own $aws/things/<name>/jobs and streams topics. */
#define T "$aws/things/device-1/jobs/"

static void on_message(void *ctx, const char *topic, size_t topic_len, const uint8_t *payload,
                       size_t len)
{
    client_fx_t *f = ctx;
    if (f->nmsgs >= 16 || topic_len >= sizeof f->msgs[0].topic) {
        fail_msg("unexpected message");
    }
    rx_msg_t *m = &f->msgs[f->nmsgs++];
    memcpy(m->topic, topic, topic_len);
    m->topic[topic_len] = '\0';
    m->payload = malloc(len + 1);
    assert_non_null(m->payload);
    memcpy(m->payload, payload, len);
    m->len = len;
}

static void on_connect(void *ctx)
{
    client_fx_t *f = ctx;
    f->connects++;
    if (f->resubscribe != NULL) {
        assert_int_equal(ota_mqttc_subscribe(&f->c, f->resubscribe, 1), OTA_OK);
    }
}

static void on_disconnect(void *ctx, ota_err_t err)
{
    client_fx_t *f = ctx;
    (void)err;
    f->disconnects++;
}

static void fx_client_init(client_fx_t *f, const char *id, const char *user, const char *pass,
                           uint16_t keep_alive)
{
    ota_mqttc_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.transport = mqtt_socket_transport(&f->sock, f->broker.port);
    cfg.callbacks.ctx = f;
    cfg.callbacks.on_connect = on_connect;
    cfg.callbacks.on_disconnect = on_disconnect;
    cfg.callbacks.on_message = on_message;
    cfg.client_id = id;
    cfg.username = user;
    cfg.password = pass;
    cfg.keep_alive_s = keep_alive;
    cfg.ack_timeout_ms = 3000;
    cfg.reconnect_min_ms = 100;
    cfg.reconnect_max_ms = 800;
    cfg.rx_buf = f->rx;
    cfg.rx_size = RX_SIZE;
    cfg.tx_buf = f->tx;
    cfg.tx_size = TX_SIZE;
    assert_int_equal(ota_mqttc_init(&f->c, &cfg), OTA_OK);
}

static int fx_setup(void **state)
{
    static const char *const things[] = {"device-1", "device-ka", "thing-7", NULL};
    client_fx_t *f = calloc(1, sizeof *f);
    if (f == NULL) {
        return -1;
    }
    f->rx = malloc(RX_SIZE);
    if (f->rx == NULL || ota_test_broker_start(&f->broker, NULL) != 0) {
        free(f->rx);
        free(f);
        return -1;
    }
    *state = f;
    if (ota_test_things_create(&f->broker, things) != 0 ||
        ota_test_thing_login(&f->broker, "device-1", &f->dev) != 0 ||
        ota_test_thing_login(&f->broker, "device-ka", &f->ka) != 0 ||
        ota_test_service_login(&f->broker, &f->svc) != 0) {
        return -1;
    }
    return 0;
}

/* The other side: a client with the service's login, which may use every thing's topics. */
static ota_test_client_t *peer_connect(client_fx_t *f)
{
    return ota_test_login_connect(f->broker.port, &f->svc, "otter-service-peer");
}

static int fx_teardown(void **state)
{
    client_fx_t *f = *state;
    ota_mqttc_disconnect(&f->c);
    ota_test_broker_stop(&f->broker);
    for (int i = 0; i < f->nmsgs; i++) {
        free(f->msgs[i].payload);
    }
    free(f->rx);
    free(f);
    return 0;
}

/* Polls the client every 5 ms until *counter reaches want or timeout_ms passes. */
static int run_until(client_fx_t *f, const int *counter, int want, int timeout_ms)
{
    uint32_t t0 = mqtt_socket_now_ms();
    while (*counter < want) {
        uint32_t now = mqtt_socket_now_ms();
        if (now - t0 > (uint32_t)timeout_ms) {
            return -1;
        }
        assert_int_equal(ota_mqttc_poll(&f->c, now, 0), OTA_OK);
        usleep(5000);
    }
    return 0;
}

/* Polls until every acknowledgement has arrived. */
static void run_until_acked(client_fx_t *f)
{
    uint32_t t0 = mqtt_socket_now_ms();
    while (ota_mqttc_pending(&f->c) > 0) {
        assert_true(mqtt_socket_now_ms() - t0 < 5000u);
        assert_int_equal(ota_mqttc_poll(&f->c, mqtt_socket_now_ms(), 0), OTA_OK);
        usleep(2000);
    }
}

static void connect_and_subscribe(client_fx_t *f, const char *filter)
{
    fx_client_init(f, "device-1", f->dev.username, f->dev.password, 30);
    f->resubscribe = filter;
    assert_int_equal(ota_mqttc_connect(&f->c, mqtt_socket_now_ms()), OTA_OK);
    assert_int_equal(run_until(f, &f->connects, 1, 5000), 0);
    assert_int_equal(ota_mqttc_get_state(&f->c), OTA_MQTTC_CONNECTED);
    run_until_acked(f);
}

static void test_publish_subscribe(void **state)
{
    client_fx_t *f = *state;
    connect_and_subscribe(f, T "down/get/accepted");
    ota_test_client_t *peer = peer_connect(f);
    assert_non_null(peer);
    assert_int_equal(ota_test_client_subscribe(peer, T "up/#", 1), 1);

    /* Down: QoS 0 and QoS 1, in order. */
    assert_int_equal(ota_test_client_publish(peer, T "down/get/accepted", "zero", 4, 0), 0);
    assert_int_equal(ota_test_client_publish(peer, T "down/get/accepted", "one", 3, 1), 0);
    assert_int_equal(run_until(f, &f->nmsgs, 2, 5000), 0);
    assert_string_equal(f->msgs[0].topic, T "down/get/accepted");
    assert_int_equal(f->msgs[0].len, 4);
    assert_memory_equal(f->msgs[0].payload, "zero", 4);
    assert_int_equal(f->msgs[1].len, 3);
    assert_memory_equal(f->msgs[1].payload, "one", 3);

    /* Up: QoS 1 is acknowledged, QoS 0 and an empty payload arrive too. */
    assert_int_equal(ota_mqttc_publish(&f->c, T "up/a", (const uint8_t *)"hello", 5, 1), OTA_OK);
    assert_int_equal(ota_mqttc_pending(&f->c), 1);
    assert_int_equal(ota_mqttc_publish(&f->c, T "up/b", NULL, 0, 0), OTA_OK);
    run_until_acked(f);
    ota_test_msg_t *m = ota_test_client_expect(peer, T "up/a", 5000);
    assert_non_null(m);
    assert_int_equal(m->len, 5);
    assert_memory_equal(m->payload, "hello", 5);
    ota_test_msg_free(m);
    m = ota_test_client_expect(peer, T "up/b", 5000);
    assert_non_null(m);
    assert_int_equal(m->len, 0);
    ota_test_msg_free(m);

    /* Unsubscribed: a message to the old topic is not delivered, the marker is. */
    assert_int_equal(ota_mqttc_subscribe(&f->c, T "marker/accepted", 0), OTA_OK);
    assert_int_equal(ota_mqttc_unsubscribe(&f->c, T "down/get/accepted"), OTA_OK);
    run_until_acked(f);
    assert_int_equal(ota_test_client_publish(peer, T "down/get/accepted", "gone", 4, 1), 0);
    assert_int_equal(ota_test_client_publish(peer, T "marker/accepted", "m", 1, 1), 0);
    assert_int_equal(run_until(f, &f->nmsgs, 3, 5000), 0);
    assert_string_equal(f->msgs[2].topic, T "marker/accepted");
    assert_int_equal(ota_mqttc_get_stats(&f->c)->received, 3);
    /* Not connected any more: publishing is refused. */
    assert_int_equal(ota_mqttc_disconnect(&f->c), OTA_OK);
    assert_int_equal(ota_mqttc_publish(&f->c, T "up/a", (const uint8_t *)"x", 1, 0), OTA_ERR_MQTT);
    ota_test_client_disconnect(peer);
}

static void test_large_and_oversized(void **state)
{
    client_fx_t *f = *state;
    connect_and_subscribe(f, T "big/accepted");
    ota_test_client_t *peer = peer_connect(f);
    assert_non_null(peer);
    size_t fits = RX_SIZE - 16u - (sizeof T "big/accepted" - 3u), over = RX_SIZE + 1000u;
    uint8_t *data = malloc(over);
    assert_non_null(data);
    for (size_t i = 0; i < over; i++) {
        data[i] = (uint8_t)(i ^ (i >> 8));
    }
    assert_int_equal(ota_test_client_publish(peer, T "big/accepted", data, fits, 1), 0);
    assert_int_equal(ota_test_client_publish(peer, T "big/accepted", data, over, 1), 0);
    assert_int_equal(ota_test_client_publish(peer, T "big/accepted", "after", 5, 1), 0);
    assert_int_equal(run_until(f, &f->nmsgs, 2, 10000), 0);
    assert_int_equal(f->msgs[0].len, fits);
    assert_memory_equal(f->msgs[0].payload, data, fits);
    assert_int_equal(f->msgs[1].len, 5);
    assert_int_equal(ota_mqttc_get_stats(&f->c)->dropped, 1);
    assert_int_equal(f->disconnects, 0);
    /* A payload far larger than the transmit buffer is sent from where it lies (30,000
     * bytes: the broker drops a thing's publishes over 32 KiB, otter_device_limits). */
    size_t up = 30000u;
    assert_int_equal(ota_test_client_subscribe(peer, T "up", 1), 1);
    assert_int_equal(ota_mqttc_publish(&f->c, T "up", data, up, 1), OTA_OK);
    run_until_acked(f);
    ota_test_msg_t *m = ota_test_client_expect(peer, T "up", 5000);
    assert_non_null(m);
    assert_int_equal(m->len, up);
    assert_memory_equal(m->payload, data, up);
    ota_test_msg_free(m);
    free(data);
    ota_test_client_disconnect(peer);
}

static void test_keep_alive(void **state)
{
    client_fx_t *f = *state;
    fx_client_init(f, "device-ka", f->ka.username, f->ka.password, 1);
    assert_int_equal(ota_mqttc_connect(&f->c, mqtt_socket_now_ms()), OTA_OK);
    assert_int_equal(run_until(f, &f->connects, 1, 5000), 0);
    /* Idle for 4 s with a 1 s keep-alive: pings keep the connection (the
     * broker would close it after 1.5 s of silence). */
    int never = 0;
    assert_int_equal(run_until(f, &never, 1, 4000), -1);
    assert_true(ota_mqttc_get_stats(&f->c)->pings >= 2);
    assert_int_equal(f->disconnects, 0);
    assert_int_equal(ota_mqttc_get_state(&f->c), OTA_MQTTC_CONNECTED);
}

static void test_reconnect(void **state)
{
    client_fx_t *f = *state;
    connect_and_subscribe(f, T "cmd/accepted");
    assert_int_equal(ota_test_broker_restart(&f->broker), 0);
    /* The loss is seen, the client connects again and subscribes again. */
    assert_int_equal(run_until(f, &f->connects, 2, 15000), 0);
    assert_true(f->disconnects >= 1);
    run_until_acked(f);
    ota_test_client_t *peer = peer_connect(f);
    assert_non_null(peer);
    assert_int_equal(ota_test_client_publish(peer, T "cmd/accepted", "again", 5, 1), 0);
    assert_int_equal(run_until(f, &f->nmsgs, 1, 5000), 0);
    assert_memory_equal(f->msgs[0].payload, "again", 5);
    assert_true(f->sock.opens >= 2);
    ota_test_client_disconnect(peer);
}

static void test_credentials(void **state)
{
    client_fx_t *f = *state;
    /* A wrong password: CONNACK 5 (not authorised), counted, never connected. */
    fx_client_init(f, "thing-7", "thing-7", "wrong", 30);
    assert_int_equal(ota_mqttc_connect(&f->c, mqtt_socket_now_ms()), OTA_OK);
    assert_int_equal(run_until(f, &f->disconnects, 1, 5000), 0);
    assert_int_equal(ota_mqttc_get_stats(&f->c)->last_connack, 5);
    assert_int_equal(f->connects, 0);
    assert_int_equal(ota_mqttc_get_state(&f->c), OTA_MQTTC_WAITING);
    ota_mqttc_disconnect(&f->c);
    /* The right one (from `otter thing create`) connects. */
    ota_test_login_t login;
    assert_int_equal(ota_test_thing_login(&f->broker, "thing-7", &login), 0);
    fx_client_init(f, "thing-7", "thing-7", login.password, 30);
    assert_int_equal(ota_mqttc_connect(&f->c, mqtt_socket_now_ms()), OTA_OK);
    assert_int_equal(run_until(f, &f->connects, 1, 5000), 0);
    assert_int_equal(ota_mqttc_get_stats(&f->c)->last_connack, 0);
}

static void test_init_args(void **state)
{
    (void)state;
    ota_mqttc_t c;
    uint8_t rx[64], tx[16];
    mqtt_socket_t s;
    ota_mqttc_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.transport = mqtt_socket_transport(&s, 1);
    cfg.client_id = "a-rather-long-client-identifier";
    cfg.rx_buf = rx;
    cfg.rx_size = sizeof rx;
    cfg.tx_buf = tx;
    cfg.tx_size = sizeof tx;
    /* The CONNECT does not fit 16 bytes. */
    assert_int_equal(ota_mqttc_init(&c, &cfg), OTA_ERR_INVALID_ARG);
    cfg.client_id = "d";
    assert_int_equal(ota_mqttc_init(&c, &cfg), OTA_OK);
    assert_int_equal(ota_mqttc_publish(&c, "t", NULL, 0, 0), OTA_ERR_MQTT);
    assert_int_equal(ota_mqttc_publish(&c, "t", NULL, 0, 2), OTA_ERR_INVALID_ARG);
    cfg.transport.send = NULL;
    assert_int_equal(ota_mqttc_init(&c, &cfg), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_mqttc_init(NULL, &cfg), OTA_ERR_INVALID_ARG);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest codec[] = {
        cmocka_unit_test(test_codec_connect),
        cmocka_unit_test(test_codec_publish_lengths),
        cmocka_unit_test(test_codec_truncated_publish),
        cmocka_unit_test(test_codec_rejects),
        cmocka_unit_test(test_init_args),
    };
    const struct CMUnitTest broker[] = {
        cmocka_unit_test_setup_teardown(test_publish_subscribe, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_large_and_oversized, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_keep_alive, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_reconnect, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_credentials, fx_setup, fx_teardown),
    };
    if (argc > 1 && strcmp(argv[1], "codec") == 0) {
        return cmocka_run_group_tests_name("mqtt_codec", codec, NULL, NULL);
    }
    if (argc > 1 && strcmp(argv[1], "broker") == 0) {
        return cmocka_run_group_tests_name("mqtt_client_mosquitto", broker, NULL, NULL);
    }
    fprintf(stderr, "usage: test_mqtt_client codec|broker\n");
    return 2;
}
