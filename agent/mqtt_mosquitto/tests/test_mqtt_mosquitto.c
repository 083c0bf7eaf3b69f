/*
 * otter: the libmosquitto binding against a real Mosquitto broker.
 *
 * The test plays the OTA service with a scripted MQTT client: it answers
 * $next/get with a job document and GetStream requests with CBOR data blocks
 * (libcbor decodes the request bitmap and encodes the blocks). The agent runs
 * on an in-memory port; every port, MQTT and callback call is checked to run
 * in the test's main thread, the one that calls run_once, or in the network
 * thread while the main thread is inside run_once (stream data blocks handed
 * over there, which the download checks happen).
 *
 * Usage: test_mqtt_mosquitto [download|restart|flush|queue|args]
 * (no argument runs every test). OTA_TEST_VERBOSE=1 logs the agent's events.
 */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cbor.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent_harness.h"
#include "fake_pal.h"
#include "otter/ota_agent.h"
#include "ota_mqtt_mosquitto.h"
#include "ota_test_net.h"
#include "ota_test_util.h"

#define THING "dev-mosq"
#define PREFIX "$aws/things/" THING "/"
#define JOB_ID "job-mosq-1"
#define STREAM "AFR_OTA-mosq-stream"
#define FILE_SIZE (200u * 1024u + 321u)
#define BLOCK 4096u
#define BLOCKS ((FILE_SIZE + BLOCK - 1u) / BLOCK)
#define APP_VERSION 0x00010002u

typedef struct fixture {
    ota_test_broker_t broker;
    int broker_up;
    ota_test_login_t dev;     /* the thing's login from `otter thing create` */
    ota_test_login_t service; /* the service's login from `otter broker init` */
    ota_test_client_t *svc;
    fake_pal_t *fake;
    ota_pal_t pal; /* forwards to fake, checking the thread */
    ota_mqtt_mosquitto_t b;
    int b_up;
    ota_mqtt_t iface; /* the binding's interface */
    ota_agent_t agent;
    ota_agent_config_t cfg;
    uint8_t *file;
    uint8_t sig[8];
    pthread_t main_thread;
    atomic_int in_run_once;   /* the main thread is inside run_once */
    atomic_int foreign_calls; /* calls made outside the main thread, not within run_once */
    atomic_int network_calls; /* calls made in the network thread within run_once */

    /* The scripted service. */
    char execution[2048];
    int hold;                   /* drop stream requests (answer nothing) */
    uint32_t stop_after_blocks; /* hold once this many blocks were sent (0 = never) */
    uint32_t blocks_sent;
    uint32_t requests;
    uint32_t requests_dropped;
    uint32_t next_gets;
    int after_restart;
    uint32_t lowest_after_restart; /* lowest block requested after the restart */
    int ready_seen;
    int failed_seen;
    char last_status[512];

    /* Port and callback observations. */
    int flush_done;
    ota_err_t flush_result;
    uint32_t flushed_publishes; /* publish_done when activate flushed */
    int outcomes;

    /* Order check. */
    uint32_t seq_next;
    int seq_bad;
} fixture_t;

static fixture_t *g_fx; /* for the port wrappers, whose ctx is the fake port */

static int verbose(void)
{
    return getenv("OTA_TEST_VERBOSE") != NULL;
}

static uint32_t ms_now(void)
{
    return ota_mqtt_mosquitto_now_ms();
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L};
    nanosleep(&ts, NULL);
}

static int thread_count(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;
    if (d == NULL) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n;
}

static void check_thread(void)
{
    if (g_fx != NULL && !pthread_equal(pthread_self(), g_fx->main_thread)) {
        if (atomic_load(&g_fx->in_run_once)) {
            atomic_fetch_add(&g_fx->network_calls, 1);
        } else {
            atomic_fetch_add(&g_fx->foreign_calls, 1);
        }
    }
}

/* ---- the port: fake_pal, with a thread check and a flush before activation ---- */

static ota_err_t p_create(void *ctx, const ota_pal_file_t *file)
{
    check_thread();
    return g_fx->fake->pal.create_file(ctx, file);
}

static ota_err_t p_resume(void *ctx, const ota_pal_file_t *file, uint32_t block_size, uint8_t *done,
                          uint32_t count)
{
    check_thread();
    return g_fx->fake->pal.resume_file(ctx, file, block_size, done, count);
}

static int32_t p_write(void *ctx, uint32_t offset, const uint8_t *data, uint32_t size)
{
    check_thread();
    return g_fx->fake->pal.write_block(ctx, offset, data, size);
}

static ota_err_t p_close(void *ctx, const ota_pal_file_t *file)
{
    check_thread();
    return g_fx->fake->pal.close_file(ctx, file);
}

static ota_err_t p_activate(void *ctx)
{
    ota_mqtt_mosquitto_stats_t st;
    check_thread();
    /* What a device does before it resets: make sure "self_test: ready" left. */
    g_fx->flush_result = ota_mqtt_mosquitto_flush(&g_fx->b, 5000);
    g_fx->flush_done++;
    if (ota_mqtt_mosquitto_get_stats(&g_fx->b, &st) == OTA_OK) {
        g_fx->flushed_publishes = st.publish_done;
    }
    return g_fx->fake->pal.activate(ctx);
}

static ota_err_t p_reset(void *ctx)
{
    check_thread();
    return g_fx->fake->pal.reset(ctx);
}

static void make_pal(fixture_t *f)
{
    f->pal = f->fake->pal;
    f->pal.create_file = p_create;
    f->pal.resume_file = p_resume;
    f->pal.write_block = p_write;
    f->pal.close_file = p_close;
    f->pal.activate = p_activate;
    f->pal.reset = p_reset;
}

/* ---- the agent's MQTT interface, checked ---- */

static ota_err_t m_subscribe(void *ctx, const char *topic, uint8_t qos)
{
    fixture_t *f = ctx;
    check_thread();
    return f->iface.subscribe(f->iface.ctx, topic, qos);
}

static ota_err_t m_unsubscribe(void *ctx, const char *topic)
{
    fixture_t *f = ctx;
    check_thread();
    return f->iface.unsubscribe(f->iface.ctx, topic);
}

static ota_err_t m_publish(void *ctx, const char *topic, const uint8_t *payload, size_t len,
                           uint8_t qos)
{
    fixture_t *f = ctx;
    check_thread();
    return f->iface.publish(f->iface.ctx, topic, payload, len, qos);
}

/* ---- agent callbacks ---- */

static void cb_log(void *ctx, const ota_agent_event_t *ev)
{
    (void)ctx;
    check_thread();
    if (verbose()) {
        fprintf(stderr, "[%u] agent %d %s %s (%s) %u %u %s\n", (unsigned)ms_now(), (int)ev->level,
                ev->what, ev->job_id, ota_err_str(ev->err), (unsigned)ev->a, (unsigned)ev->b,
                ev->detail);
    }
}

static void cb_outcome(void *ctx, const ota_agent_outcome_t *o)
{
    fixture_t *f = ctx;
    check_thread();
    f->outcomes++;
    fprintf(stderr, "outcome: %s %d %s %s\n", o->job_id, (int)o->status, o->reason, o->detail);
}

static void binding_log(void *ctx, ota_log_level_t level, const char *text)
{
    (void)ctx;
    check_thread();
    if (verbose()) {
        fprintf(stderr, "[%u] binding %d %s\n", (unsigned)ms_now(), (int)level, text);
    }
}

static void on_message(void *ctx, const char *topic, const uint8_t *payload, size_t len)
{
    fixture_t *f = ctx;
    check_thread();
    if (strcmp(topic, PREFIX "jobs/app/seq/accepted") == 0) {
        char text[16];
        unsigned v;
        snprintf(text, sizeof text, "%.*s", (int)(len < 15u ? len : 15u), (const char *)payload);
        if (sscanf(text, "%u", &v) != 1 || v != f->seq_next) {
            f->seq_bad++;
        }
        f->seq_next++;
    }
}

/* ---- the scripted service ---- */

static int svc_connect(fixture_t *f)
{
    static const char *const filters[] = {
        PREFIX "jobs/$next/get",
        PREFIX "jobs/+/update",
        PREFIX "streams/+/get/cbor",
    };
    f->svc = ota_test_login_connect(f->broker.port, &f->service, "otter-service-svc");
    if (f->svc == NULL) {
        return -1;
    }
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++) {
        if (ota_test_client_subscribe(f->svc, filters[i], 1) < 0) {
            return -1;
        }
    }
    return 0;
}

static void svc_set_job(fixture_t *f)
{
    char b64[64];
    h_base64(f->sig, sizeof f->sig, b64, sizeof b64);
    snprintf(f->execution, sizeof f->execution,
             "{\"jobId\":\"" JOB_ID "\",\"thingName\":\"" THING "\",\"status\":\"QUEUED\","
             "\"queuedAt\":1700000000,\"lastUpdatedAt\":1700000001,\"versionNumber\":1,"
             "\"executionNumber\":1,\"jobDocument\":{\"afr_ota\":{\"protocols\":[\"MQTT\"],"
             "\"streamname\":\"" STREAM "\",\"files\":[{\"filepath\":\"firmware.bin\","
             "\"filesize\":%u,\"fileid\":0,\"certfile\":\"codesign.crt\",\"fileType\":0,"
             "\"update_data_url\":null,\"auth_scheme\":null,\"sig-sha256-ecdsa\":\"%s\"}]}}}",
             (unsigned)FILE_SIZE, b64);
}

static uint32_t map_u32(cbor_item_t *map, const char *key)
{
    cbor_item_t *v = ota_test_map_get(map, key);
    assert_non_null(v);
    assert_true(cbor_isa_uint(v));
    return (uint32_t)cbor_get_int(v);
}

static void add_pair(cbor_item_t *map, const char *key, cbor_item_t *value)
{
    struct cbor_pair pair;
    pair.key = cbor_move(cbor_build_string(key));
    pair.value = cbor_move(value);
    assert_true(cbor_map_add(map, pair));
}

static void svc_send_block(fixture_t *f, cbor_item_t *token, uint32_t file_id, uint32_t index,
                           uint32_t block_size)
{
    uint32_t off = index * block_size;
    uint32_t len = FILE_SIZE - off < block_size ? FILE_SIZE - off : block_size;
    cbor_item_t *map = cbor_new_definite_map(5);
    unsigned char *buf = NULL;
    size_t cap = 0, n;

    add_pair(map, "c", cbor_copy(token));
    add_pair(map, "f", cbor_build_uint32(file_id));
    add_pair(map, "i", cbor_build_uint32(index));
    add_pair(map, "l", cbor_build_uint32(len));
    add_pair(map, "p", cbor_build_bytestring(f->file + off, len));
    n = cbor_serialize_alloc(map, &buf, &cap);
    cbor_decref(&map);
    assert_true(n > 0u);
    assert_int_equal(
        ota_test_client_publish(f->svc, PREFIX "streams/" STREAM "/data/cbor", buf, n, 0), 0);
    free(buf);
    f->blocks_sent++;
}

static void svc_stream_request(fixture_t *f, const ota_test_msg_t *m)
{
    struct cbor_load_result res;
    cbor_item_t *req = cbor_load(m->payload, m->len, &res);
    cbor_item_t *bitmap, *token;
    uint32_t file_id, block_size, offset, count, sent = 0;
    size_t bytes;

    assert_non_null(req);
    assert_int_equal(res.error.code, CBOR_ERR_NONE);
    assert_true(cbor_isa_map(req));
    f->requests++;
    file_id = map_u32(req, "f");
    block_size = map_u32(req, "l");
    offset = map_u32(req, "o");
    count = map_u32(req, "n");
    bitmap = ota_test_map_get(req, "b");
    token = ota_test_map_get(req, "c");
    assert_non_null(bitmap);
    assert_true(cbor_isa_bytestring(bitmap));
    assert_non_null(token);
    assert_true(cbor_isa_string(token));
    assert_int_equal(file_id, 0);
    assert_int_equal(block_size, BLOCK);
    bytes = cbor_bytestring_length(bitmap);
    for (size_t k = 0; k < bytes * 8u && sent < count; k++) {
        uint32_t index = offset + (uint32_t)k;
        if (!((cbor_bytestring_handle(bitmap)[k / 8u] >> (k % 8u)) & 1u) || index >= BLOCKS) {
            continue;
        }
        if (f->after_restart && index < f->lowest_after_restart) {
            f->lowest_after_restart = index;
        }
        if (f->hold) {
            continue;
        }
        svc_send_block(f, token, file_id, index, block_size);
        sent++;
        if (f->stop_after_blocks != 0u && f->blocks_sent >= f->stop_after_blocks) {
            f->hold = 1;
        }
    }
    if (sent == 0u) {
        f->requests_dropped++;
    }
    cbor_decref(&req);
}

static int topic_matches(const char *filter, const char *topic)
{
    size_t fl = strlen(filter), tl = strlen(topic);
    const char *plus = strchr(filter, '+');
    if (plus == NULL) {
        return strcmp(filter, topic) == 0;
    }
    /* One '+' level: prefix and suffix must match around one level. */
    {
        size_t pre = (size_t)(plus - filter), post = fl - pre - 1u;
        if (tl < pre + post + 1u || strncmp(topic, filter, pre) != 0 ||
            strcmp(topic + tl - post, plus + 1) != 0) {
            return 0;
        }
        return memchr(topic + pre, '/', tl - pre - post) == NULL;
    }
}

static void svc_serve(fixture_t *f)
{
    ota_test_msg_t *m;
    if (f->svc == NULL) {
        return;
    }
    while ((m = ota_test_client_expect(f->svc, NULL, 0)) != NULL) {
        if (strcmp(m->topic, PREFIX "jobs/$next/get") == 0) {
            char answer[2300];
            f->next_gets++;
            snprintf(answer, sizeof answer,
                     "{\"clientToken\":\"otter\",\"timestamp\":1700000002,\"execution\":%s}",
                     f->execution);
            assert_int_equal(ota_test_client_publish(f->svc, PREFIX "jobs/$next/get/accepted",
                                                     answer, strlen(answer), 1),
                             0);
        } else if (topic_matches(PREFIX "jobs/+/update", m->topic)) {
            snprintf(f->last_status, sizeof f->last_status, "%s", (const char *)m->payload);
            h_apply_status_details(f->execution, sizeof f->execution, f->last_status);
            if (strstr(f->last_status, "\"self_test\":\"ready\"") != NULL) {
                f->ready_seen++;
            }
            if (strstr(f->last_status, "FAILED") != NULL) {
                f->failed_seen++;
                fprintf(stderr, "status: %s\n", f->last_status);
            }
            if (verbose()) {
                fprintf(stderr, "[%u] status %s\n", (unsigned)ms_now(), f->last_status);
            }
        } else if (topic_matches(PREFIX "streams/+/get/cbor", m->topic)) {
            svc_stream_request(f, m);
        }
        ota_test_msg_free(m);
    }
}

/* ---- fixture ---- */

static ota_mqtt_mosquitto_config_t conn_config(fixture_t *f)
{
    ota_mqtt_mosquitto_config_t c;
    memset(&c, 0, sizeof c);
    c.host = "127.0.0.1";
    c.port = f->broker.port;
    c.client_id = f->dev.client_id;
    if (f->dev.cafile[0] != '\0') {
        /* Mutual TLS: the certificate `otter thing create` issued is the login. */
        c.ca_file = f->dev.cafile;
        c.cert_file = f->dev.certfile;
        c.key_file = f->dev.keyfile;
    } else {
        c.username = f->dev.username;
        c.password = f->dev.password;
    }
    c.keepalive_s = 10;
    c.reconnect_min_s = 1;
    c.reconnect_max_s = 2;
    c.connect_timeout_ms = 5000;
    c.on_message = on_message;
    c.log = binding_log;
    c.ctx = f;
    return c;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL) {
        return -1;
    }
    f->main_thread = pthread_self();
    f->fake = calloc(1, sizeof *f->fake);
    f->file = malloc(FILE_SIZE);
    if (f->fake == NULL || f->file == NULL) {
        free(f->fake);
        free(f->file);
        free(f);
        return -1;
    }
    for (uint32_t i = 0; i < FILE_SIZE; i++) {
        f->file[i] = (uint8_t)((i * 2654435761u) >> 13);
    }
    fake_pal_sign(f->file, FILE_SIZE, f->sig);
    fake_pal_init(f->fake, FAKE_PAL_MAX);
    make_pal(f);
    svc_set_job(f);
    f->lowest_after_restart = UINT32_MAX;
    if (ota_test_broker_start(&f->broker, NULL) != 0 ||
        ota_test_thing_login(&f->broker, THING, &f->dev) != 0 ||
        ota_test_service_login(&f->broker, &f->service) != 0) {
        ota_test_broker_stop(&f->broker);
        free(f->fake);
        free(f->file);
        free(f);
        return -1;
    }
    f->broker_up = 1;
    g_fx = f;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (f == NULL) {
        return 0;
    }
    if (f->b_up) {
        (void)ota_agent_stop(&f->agent);
        ota_mqtt_mosquitto_cleanup(&f->b);
        f->b_up = 0;
    }
    ota_test_client_disconnect(f->svc);
    if (f->broker_up) {
        ota_test_broker_stop(&f->broker);
    }
    g_fx = NULL;
    free(f->fake);
    free(f->file);
    free(f);
    return 0;
}

/* Connect the binding, create the agent on it and attach; the agent is not started. */
static void start_binding_and_agent(fixture_t *f)
{
    ota_mqtt_mosquitto_config_t c = conn_config(f);
    assert_int_equal(ota_mqtt_mosquitto_init(&f->b, &c), OTA_OK);
    f->b_up = 1;
    f->iface = ota_mqtt_mosquitto_interface(&f->b);
    memset(&f->cfg, 0, sizeof f->cfg);
    f->cfg.thing_name = THING;
    f->cfg.app_version = APP_VERSION;
    f->cfg.pal = &f->pal;
    f->cfg.mqtt.ctx = f;
    f->cfg.mqtt.subscribe = m_subscribe;
    f->cfg.mqtt.unsubscribe = m_unsubscribe;
    f->cfg.mqtt.publish = m_publish;
    f->cfg.callbacks.ctx = f;
    f->cfg.callbacks.log = cb_log;
    f->cfg.callbacks.outcome = cb_outcome;
    f->cfg.block_size = BLOCK;
    assert_int_equal(ota_agent_init(&f->agent, &f->cfg), OTA_OK);
    assert_int_equal(ota_mqtt_mosquitto_attach(&f->b, &f->agent), OTA_OK);
}

/* Run the agent and the service until done(f) or max_ms; 1 when done. */
static int run_until(fixture_t *f, int (*done)(fixture_t *), uint32_t max_ms)
{
    uint32_t start = ms_now();
    while (!done(f)) {
        if (ms_now() - start > max_ms) {
            return 0;
        }
        atomic_store(&f->in_run_once, 1);
        assert_int_equal(ota_mqtt_mosquitto_run_once(&f->b, 2), OTA_OK);
        atomic_store(&f->in_run_once, 0);
        svc_serve(f);
    }
    return 1;
}

static int done_activated(fixture_t *f)
{
    return f->ready_seen > 0 && f->fake->activates > 0;
}

static int done_downloaded(fixture_t *f)
{
    return ota_agent_get_stats(&f->agent)->blocks_received >= BLOCKS;
}

static int done_seq(fixture_t *f)
{
    return f->seq_next >= 200u;
}

static int done_held(fixture_t *f)
{
    return f->hold && ota_agent_get_stats(&f->agent)->blocks_received >= f->stop_after_blocks;
}

static void check_file(fixture_t *f)
{
    assert_int_equal(f->fake->size, FILE_SIZE);
    assert_memory_equal(f->fake->data, f->file, FILE_SIZE);
    assert_int_equal(f->fake->closed_ok, 1);
}

/* ---- 1. download over the real broker, in order, from one thread ---- */

static void test_download(void **state)
{
    fixture_t *f = *state;
    ota_mqtt_mosquitto_stats_t st;
    uint32_t t0, t1, t2;
    char n[16];

    assert_int_equal(svc_connect(f), 0);
    start_binding_and_agent(f);

    /* Order: 200 QoS 1 messages on an application topic on the same connection. */
    assert_int_equal(f->iface.subscribe(f->iface.ctx, PREFIX "jobs/app/seq/accepted", 1), OTA_OK);
    sleep_ms(100); /* SUBACK (the interface does not wait for it) */
    for (unsigned i = 0; i < 200u; i++) {
        snprintf(n, sizeof n, "%u", i);
        assert_int_equal(
            ota_test_client_publish(f->svc, PREFIX "jobs/app/seq/accepted", n, strlen(n), 1), 0);
    }
    assert_true(run_until(f, done_seq, 10000));
    assert_int_equal(f->seq_bad, 0);
    assert_int_equal(f->seq_next, 200);

    /* The download. */
    t0 = ms_now();
    assert_int_equal(ota_agent_start(&f->agent, ms_now()), OTA_OK);
    assert_true(run_until(f, done_downloaded, 30000));
    t1 = ms_now();
    assert_true(run_until(f, done_activated, 30000));
    t2 = ms_now();

    check_file(f);
    assert_int_equal(f->fake->creates, 1);
    assert_int_equal(ota_agent_get_stats(&f->agent)->blocks_received, BLOCKS);
    assert_int_equal(f->failed_seen, 0);
    assert_int_equal(f->flush_done, 1);
    assert_int_equal(f->flush_result, OTA_OK);
    assert_int_equal(f->foreign_calls, 0);
    assert_int_equal(ota_mqtt_mosquitto_get_stats(&f->b, &st), OTA_OK);
    assert_int_equal(st.dropped, 0);
    assert_int_equal(st.connects, 1);
    assert_true(st.delivered >= 200u + BLOCKS);
    /* Blocks that came while run_once waited went to the agent in the network
     * thread (the application topic's messages never do). */
    assert_true(st.delivered_direct > 0u);
    assert_true(st.delivered_direct <= BLOCKS);
    assert_true(f->network_calls > 0);
    assert_true(st.polls > 0u);
    fprintf(stderr,
            "download: %u bytes in %u blocks of %u over the broker: %u ms from start to the "
            "last block (%.0f KiB/s), %u requests, rtt %u ms; self_test ready + activation "
            "%u ms later (agent reset delay included)\n",
            (unsigned)FILE_SIZE, (unsigned)BLOCKS, (unsigned)BLOCK, (unsigned)(t1 - t0),
            (double)FILE_SIZE / 1024.0 / ((double)(t1 - t0 + 1u) / 1000.0), (unsigned)f->requests,
            (unsigned)ota_agent_get_stats(&f->agent)->rtt_ms, (unsigned)(t2 - t1));
}

/* ---- 1b. the same over mutual TLS (`otter broker init --tls`) ---- */

static void test_tls(void **state)
{
    fixture_t *f = *state;
    static const char *const tls[] = {"--tls", NULL};
    ota_test_broker_t other;
    ota_test_login_t own;

    ota_test_broker_stop(&f->broker);
    f->broker_up = 0;
    assert_int_equal(ota_test_broker_start_with(&f->broker, NULL, tls), 0);
    f->broker_up = 1;
    assert_int_equal(ota_test_service_login(&f->broker, &f->service), 0);
    assert_int_equal(ota_test_thing_login(&f->broker, THING, &own), 0);
    /* A certificate for the same name from another fleet's CA is refused. */
    assert_int_equal(ota_test_broker_start_with(&other, NULL, tls), 0);
    assert_int_equal(ota_test_thing_login(&other, THING, &f->dev), 0);
    snprintf(f->dev.cafile, sizeof f->dev.cafile, "%s", own.cafile);
    ota_mqtt_mosquitto_config_t c = conn_config(f);
    c.connect_timeout_ms = 1000;
    assert_int_not_equal(ota_mqtt_mosquitto_init(&f->b, &c), OTA_OK); /* no CONNACK, ever */
    ota_test_broker_stop(&other);
    /* Its own certificate: the whole download test passes over TLS. */
    f->dev = own;
    test_download(state);
}

/* ---- 2. broker restart in the middle of the download ---- */

static int done_reconnected(fixture_t *f)
{
    ota_mqtt_mosquitto_stats_t st;
    return ota_mqtt_mosquitto_get_stats(&f->b, &st) == OTA_OK && st.reconnects >= 1u;
}

static void test_restart(void **state)
{
    fixture_t *f = *state;
    ota_mqtt_mosquitto_stats_t st;
    uint32_t t_down, t_up, t_reconnected, t_done, t_activated, received_before;

    assert_int_equal(svc_connect(f), 0);
    start_binding_and_agent(f);
    f->stop_after_blocks = BLOCKS / 2u;
    assert_int_equal(ota_agent_start(&f->agent, ms_now()), OTA_OK);
    assert_true(run_until(f, done_held, 30000));
    received_before = ota_agent_get_stats(&f->agent)->blocks_received;
    assert_true(received_before >= BLOCKS / 2u && received_before < BLOCKS);
    assert_int_equal(ota_agent_get_state(&f->agent), OTA_AGENT_DOWNLOADING);

    t_down = ms_now();
    assert_int_equal(ota_test_broker_restart(&f->broker), 0);
    t_up = ms_now();
    /* The scripted service starts over on the new broker (clean session). */
    ota_test_client_disconnect(f->svc);
    f->svc = NULL;
    assert_int_equal(svc_connect(f), 0);
    f->hold = 0;
    f->stop_after_blocks = 0;
    f->after_restart = 1;

    assert_true(run_until(f, done_reconnected, 20000));
    t_reconnected = ms_now();
    assert_true(run_until(f, done_downloaded, 60000));
    t_done = ms_now();
    assert_true(run_until(f, done_activated, 60000));
    t_activated = ms_now();

    check_file(f);
    assert_int_equal(f->fake->creates, 1); /* not started over */
    assert_int_equal(f->fake->aborts, 0);
    assert_true(f->lowest_after_restart > 0u); /* block 0 was never asked for again */
    assert_int_equal(ota_agent_get_stats(&f->agent)->blocks_received, BLOCKS);
    assert_int_equal(f->failed_seen, 0);
    assert_int_equal(f->flush_result, OTA_OK);
    assert_int_equal(f->foreign_calls, 0);
    assert_int_equal(ota_mqtt_mosquitto_get_stats(&f->b, &st), OTA_OK);
    assert_int_equal(st.connects, 2);
    assert_int_equal(st.reconnects, 1);
    assert_true(st.disconnects >= 1u);
    fprintf(stderr,
            "restart: %u of %u blocks before; broker restart took %u ms; binding reconnected and "
            "agent resubscribed %u ms after the broker was back (reconnect delay %u s); last "
            "block %u ms after that; activation %u ms later; lowest block asked after the "
            "restart %u\n",
            (unsigned)received_before, (unsigned)BLOCKS, (unsigned)(t_up - t_down),
            (unsigned)(t_reconnected - t_up), 1u, (unsigned)(t_done - t_reconnected),
            (unsigned)(t_activated - t_done), (unsigned)f->lowest_after_restart);
}

/* ---- 3. flush ---- */

static void test_flush(void **state)
{
    fixture_t *f = *state;
    ota_mqtt_mosquitto_config_t c = conn_config(f);
    ota_test_client_t *sub;
    ota_test_msg_t *m;
    ota_mqtt_t mq;
    uint32_t t0;
    static const char topic[] = PREFIX "jobs/" JOB_ID "/update";
    static const char ready[] = "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"self_test\":"
                                "\"ready\",\"updatedBy\":\"0x00010002\"}}";
    static const char failed[] = "{\"status\":\"FAILED\",\"statusDetails\":{\"reason\":"
                                 "\"rejected: 0x00000010\"}}";

    c.reconnect_min_s = 2;
    c.reconnect_max_s = 2;
    sub = ota_test_client_connect(f->broker.port, "otter-service-watcher", f->service.username,
                                  f->service.password);
    assert_non_null(sub);
    assert_int_equal(ota_test_client_subscribe(sub, topic, 1), 1);
    assert_int_equal(ota_mqtt_mosquitto_init(&f->b, &c), OTA_OK);
    f->b_up = 1;
    mq = ota_mqtt_mosquitto_interface(&f->b);

    /* Nothing published: flush returns at once. */
    assert_int_equal(ota_mqtt_mosquitto_flush(&f->b, 0), OTA_OK);

    /* A QoS 1 publish is acknowledged by the broker when flush returns: the
     * connection is torn down right after, as by a reset, and the message is
     * still delivered. */
    assert_int_equal(mq.publish(mq.ctx, topic, (const uint8_t *)ready, strlen(ready), 1), OTA_OK);
    t0 = ms_now();
    assert_int_equal(ota_mqtt_mosquitto_flush(&f->b, 5000), OTA_OK);
    fprintf(stderr, "flush: QoS 1 acknowledged after %u ms\n", (unsigned)(ms_now() - t0));
    ota_mqtt_mosquitto_cleanup(&f->b);
    f->b_up = 0;
    m = ota_test_client_expect(sub, topic, 5000);
    assert_non_null(m);
    assert_int_equal(m->len, strlen(ready));
    assert_memory_equal(m->payload, ready, m->len);
    ota_test_msg_free(m);

    /* A QoS 1 publish the broker does not acknowledge (the broker is frozen):
     * flush waits and times out. The broker then dies and comes back;
     * libmosquitto resends the message after the reconnect and flush
     * succeeds. QoS 0 only waits for the socket. */
    assert_int_equal(ota_mqtt_mosquitto_init(&f->b, &c), OTA_OK);
    f->b_up = 1;
    mq = ota_mqtt_mosquitto_interface(&f->b);
    ota_test_client_disconnect(sub);
    sub = NULL;
    assert_int_equal(kill(f->broker.proc.pid, SIGSTOP), 0);
    assert_int_equal(mq.publish(mq.ctx, topic, (const uint8_t *)"q0", 2, 0), OTA_OK);
    assert_int_equal(ota_mqtt_mosquitto_flush(&f->b, 2000), OTA_OK);
    assert_int_equal(mq.publish(mq.ctx, topic, (const uint8_t *)failed, strlen(failed), 1), OTA_OK);
    t0 = ms_now();
    assert_int_equal(ota_mqtt_mosquitto_flush(&f->b, 300), OTA_ERR_TIMEOUT);
    assert_true(ms_now() - t0 >= 290u);
    assert_true(ota_test_proc_kill(&f->broker.proc) >= 0);
    t0 = ms_now();
    while (ota_mqtt_mosquitto_connected(&f->b) && ms_now() - t0 < 5000u) {
        sleep_ms(10);
    }
    assert_int_equal(ota_mqtt_mosquitto_connected(&f->b), 0);
    /* While the connection is down libmosquitto refuses new requests. */
    assert_int_equal(mq.publish(mq.ctx, topic, (const uint8_t *)"q0", 2, 0), OTA_ERR_MQTT);
    assert_int_equal(mq.publish(mq.ctx, topic, (const uint8_t *)"q1", 2, 1), OTA_ERR_MQTT);
    assert_int_equal(mq.subscribe(mq.ctx, topic, 1), OTA_ERR_MQTT);
    assert_int_equal(ota_mqtt_mosquitto_flush(&f->b, 100), OTA_ERR_TIMEOUT);
    assert_int_equal(ota_test_broker_restart(&f->broker), 0);
    sub = ota_test_client_connect(f->broker.port, "otter-service-watcher", f->service.username,
                                  f->service.password);
    assert_non_null(sub);
    assert_int_equal(ota_test_client_subscribe(sub, topic, 1), 1);
    t0 = ms_now();
    assert_int_equal(ota_mqtt_mosquitto_flush(&f->b, 10000), OTA_OK);
    fprintf(stderr,
            "flush: QoS 1 unacknowledged before the broker died was resent and "
            "acknowledged %u ms after the broker came back\n",
            (unsigned)(ms_now() - t0));
    m = ota_test_client_expect(sub, topic, 5000);
    assert_non_null(m);
    assert_int_equal(m->len, strlen(failed));
    assert_memory_equal(m->payload, failed, m->len);
    ota_test_msg_free(m);
    ota_test_client_disconnect(sub);
}

/* ---- queue bound: drops are counted and reported ---- */

static int g_drop_logs;

static void count_drop_log(void *ctx, ota_log_level_t level, const char *text)
{
    (void)ctx;
    (void)level;
    if (strstr(text, "dropped") != NULL) {
        g_drop_logs++;
    }
}

static void test_queue(void **state)
{
    fixture_t *f = *state;
    ota_mqtt_mosquitto_config_t c = conn_config(f);
    ota_mqtt_mosquitto_stats_t st;
    uint32_t t0;
    char n[16];

    c.queue_max_msgs = 8;
    c.log = count_drop_log;
    assert_int_equal(svc_connect(f), 0);
    assert_int_equal(ota_mqtt_mosquitto_init(&f->b, &c), OTA_OK);
    f->b_up = 1;
    f->iface = ota_mqtt_mosquitto_interface(&f->b);
    assert_int_equal(ota_mqtt_mosquitto_run_once(&f->b, 0), OTA_ERR_WRONG_STATE);
    memset(&f->cfg, 0, sizeof f->cfg);
    f->cfg.thing_name = THING;
    f->cfg.app_version = APP_VERSION;
    f->cfg.pal = &f->pal;
    f->cfg.mqtt = f->iface;
    assert_int_equal(ota_agent_init(&f->agent, &f->cfg), OTA_OK);
    assert_int_equal(f->iface.subscribe(f->iface.ctx, PREFIX "jobs/app/seq/accepted", 1), OTA_OK);
    sleep_ms(100);
    for (unsigned i = 0; i < 50u; i++) {
        snprintf(n, sizeof n, "%u", i);
        assert_int_equal(
            ota_test_client_publish(f->svc, PREFIX "jobs/app/seq/accepted", n, strlen(n), 1), 0);
    }
    t0 = ms_now();
    do {
        assert_int_equal(ota_mqtt_mosquitto_get_stats(&f->b, &st), OTA_OK);
        sleep_ms(5);
    } while (st.received < 50u && ms_now() - t0 < 5000u);
    assert_int_equal(st.received, 50);
    assert_int_equal(st.queued, 8);
    assert_int_equal(st.dropped, 42);
    assert_int_equal(ota_mqtt_mosquitto_attach(&f->b, &f->agent), OTA_OK);
    assert_int_equal(ota_mqtt_mosquitto_run_once(&f->b, 0), OTA_OK);
    /* The first eight arrived, in order, and the drop was reported once. */
    assert_int_equal(f->seq_next, 8);
    assert_int_equal(f->seq_bad, 0);
    assert_int_equal(g_drop_logs, 1);
    assert_int_equal(ota_mqtt_mosquitto_get_stats(&f->b, &st), OTA_OK);
    assert_int_equal(st.delivered, 8);
    assert_int_equal(st.queued, 0);
}

/* ---- 4. argument checks and clean shutdown ---- */

static atomic_int g_stop;

static void *stopper(void *arg)
{
    (void)arg;
    sleep_ms(350);
    atomic_store(&g_stop, 1);
    return NULL;
}

static void test_args(void **state)
{
    fixture_t *f = *state;
    ota_mqtt_mosquitto_config_t c = conn_config(f), bad;
    ota_mqtt_mosquitto_t zero;
    ota_mqtt_mosquitto_stats_t st;
    ota_mqtt_t none = ota_mqtt_mosquitto_interface(NULL);
    int base = thread_count();
    int closed_port;
    pthread_t th;
    uint32_t t0;

    memset(&zero, 0, sizeof zero);
    assert_true(base > 0);

    /* NULLs and bad settings. */
    assert_int_equal(ota_mqtt_mosquitto_init(NULL, &c), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_mqtt_mosquitto_init(&f->b, NULL), OTA_ERR_INVALID_ARG);
    bad = c;
    bad.host = NULL;
    assert_int_equal(ota_mqtt_mosquitto_init(&f->b, &bad), OTA_ERR_INVALID_ARG);
    bad = c;
    bad.host = "";
    assert_int_equal(ota_mqtt_mosquitto_init(&f->b, &bad), OTA_ERR_INVALID_ARG);
    bad = c;
    bad.port = 0;
    assert_int_equal(ota_mqtt_mosquitto_init(&f->b, &bad), OTA_ERR_INVALID_ARG);
    bad.port = 65536;
    assert_int_equal(ota_mqtt_mosquitto_init(&f->b, &bad), OTA_ERR_INVALID_ARG);
    bad = c;
    bad.keepalive_s = 4;
    assert_int_equal(ota_mqtt_mosquitto_init(&f->b, &bad), OTA_ERR_INVALID_ARG);
    bad = c;
    bad.username = NULL;
    bad.password = "secret";
    assert_int_equal(ota_mqtt_mosquitto_init(&f->b, &bad), OTA_ERR_INVALID_ARG);
    bad = c;
    bad.cert_file = "client.crt";
    assert_int_equal(ota_mqtt_mosquitto_init(&f->b, &bad), OTA_ERR_INVALID_ARG);
    bad.key_file = "client.key";
    assert_int_equal(ota_mqtt_mosquitto_init(&f->b, &bad), OTA_ERR_INVALID_ARG);
    bad = c;
    bad.reconnect_min_s = 5;
    bad.reconnect_max_s = 2;
    assert_int_equal(ota_mqtt_mosquitto_init(&f->b, &bad), OTA_ERR_INVALID_ARG);
    /* Failover brokers: a count without a list, too many, an empty host, a bad port. */
    ota_mqtt_mosquitto_broker_t more[OTA_MQTT_MOSQUITTO_MAX_BROKERS];
    for (size_t i = 0; i < OTA_MQTT_MOSQUITTO_MAX_BROKERS; i++) {
        more[i].host = "127.0.0.1";
        more[i].port = c.port;
    }
    bad = c;
    bad.failover_count = 1;
    assert_int_equal(ota_mqtt_mosquitto_init(&f->b, &bad), OTA_ERR_INVALID_ARG);
    bad.failover = more;
    bad.failover_count = OTA_MQTT_MOSQUITTO_MAX_BROKERS;
    assert_int_equal(ota_mqtt_mosquitto_init(&f->b, &bad), OTA_ERR_INVALID_ARG);
    bad.failover_count = 2;
    more[1].host = "";
    assert_int_equal(ota_mqtt_mosquitto_init(&f->b, &bad), OTA_ERR_INVALID_ARG);
    more[1].host = "127.0.0.1";
    more[1].port = 70000;
    assert_int_equal(ota_mqtt_mosquitto_init(&f->b, &bad), OTA_ERR_INVALID_ARG);
    assert_int_equal(thread_count(), base);
    bad = c;
    bad.ca_file = "/nonexistent/ca.pem";
    assert_int_equal(ota_mqtt_mosquitto_init(&f->b, &bad), OTA_ERR_MQTT);
    ota_mqtt_mosquitto_cleanup(&f->b); /* harmless after a failed init */
    ota_mqtt_mosquitto_cleanup(NULL);

    /* Calls on NULL or on a binding that was never initialised. */
    assert_int_equal(ota_mqtt_mosquitto_run_once(NULL, 0), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_mqtt_mosquitto_run_once(&zero, 0), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_mqtt_mosquitto_run(&zero, &g_stop), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_mqtt_mosquitto_flush(NULL, 0), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_mqtt_mosquitto_flush(&zero, 0), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_mqtt_mosquitto_attach(NULL, &f->agent), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_mqtt_mosquitto_attach(&zero, &f->agent), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_mqtt_mosquitto_get_stats(NULL, &st), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_mqtt_mosquitto_get_stats(&zero, &st), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_mqtt_mosquitto_connected(NULL), 0);
    assert_int_equal(ota_mqtt_mosquitto_connected(&zero), 0);
    assert_int_equal(none.subscribe(none.ctx, "t", 0), OTA_ERR_INVALID_ARG);
    assert_int_equal(none.unsubscribe(none.ctx, "t"), OTA_ERR_INVALID_ARG);
    assert_int_equal(none.publish(none.ctx, "t", (const uint8_t *)"x", 1, 0), OTA_ERR_INVALID_ARG);
    assert_int_equal(thread_count(), base);

    /* Nobody listening: init gives up after connect_timeout_ms, nothing left running. */
    closed_port = ota_test_free_port();
    assert_true(closed_port > 0);
    bad = c;
    bad.port = closed_port;
    bad.connect_timeout_ms = 400;
    t0 = ms_now();
    assert_int_equal(ota_mqtt_mosquitto_init(&f->b, &bad), OTA_ERR_TIMEOUT);
    assert_true(ms_now() - t0 < 3000u);
    assert_int_equal(thread_count(), base);

    /* Connected: argument checks of the interface and the calls. */
    assert_int_equal(ota_mqtt_mosquitto_init(&f->b, &c), OTA_OK);
    f->b_up = 1;
    assert_int_equal(thread_count(), base + 1); /* libmosquitto's network thread */
    assert_int_equal(ota_mqtt_mosquitto_connected(&f->b), 1);
    f->iface = ota_mqtt_mosquitto_interface(&f->b);
    assert_int_equal(f->iface.subscribe(f->iface.ctx, NULL, 0), OTA_ERR_INVALID_ARG);
    assert_int_equal(f->iface.subscribe(f->iface.ctx, "t", 2), OTA_ERR_INVALID_ARG);
    assert_int_equal(f->iface.subscribe(f->iface.ctx, "a/#/b", 0), OTA_ERR_MQTT);
    assert_int_equal(f->iface.unsubscribe(f->iface.ctx, NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(f->iface.publish(f->iface.ctx, NULL, (const uint8_t *)"x", 1, 0),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(f->iface.publish(f->iface.ctx, "t", NULL, 1, 0), OTA_ERR_INVALID_ARG);
    assert_int_equal(f->iface.publish(f->iface.ctx, "t", (const uint8_t *)"x", 1, 2),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(f->iface.publish(f->iface.ctx, "a/+", (const uint8_t *)"x", 1, 0),
                     OTA_ERR_MQTT);
    assert_int_equal(f->iface.publish(f->iface.ctx, "t", NULL, 0, 0), OTA_OK);
    assert_int_equal(ota_mqtt_mosquitto_run_once(&f->b, 0), OTA_ERR_WRONG_STATE);
    assert_int_equal(ota_mqtt_mosquitto_attach(&f->b, NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_mqtt_mosquitto_get_stats(&f->b, NULL), OTA_ERR_INVALID_ARG);

    /* run() polls a (stopped) agent until the flag is set from another thread. */
    memset(&f->cfg, 0, sizeof f->cfg);
    f->cfg.thing_name = THING;
    f->cfg.app_version = APP_VERSION;
    f->cfg.pal = &f->pal;
    f->cfg.mqtt = f->iface;
    assert_int_equal(ota_agent_init(&f->agent, &f->cfg), OTA_OK);
    assert_int_equal(ota_mqtt_mosquitto_attach(&f->b, &f->agent), OTA_OK);
    assert_int_equal(ota_mqtt_mosquitto_run(&f->b, NULL), OTA_ERR_INVALID_ARG);
    atomic_store(&g_stop, 0);
    assert_int_equal(pthread_create(&th, NULL, stopper, NULL), 0);
    assert_int_equal(ota_mqtt_mosquitto_run(&f->b, &g_stop), OTA_OK);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(ota_mqtt_mosquitto_get_stats(&f->b, &st), OTA_OK);
    assert_true(st.polls >= 3u && st.polls <= 6u);

    /* Clean shutdown: the thread is joined; cleanup twice is harmless. */
    ota_mqtt_mosquitto_cleanup(&f->b);
    f->b_up = 0;
    ota_mqtt_mosquitto_cleanup(&f->b);
    assert_int_equal(thread_count(), base);

    /* Shutdown while libmosquitto waits to reconnect (the broker is gone). */
    c.reconnect_min_s = 20;
    c.reconnect_max_s = 20;
    assert_int_equal(ota_mqtt_mosquitto_init(&f->b, &c), OTA_OK);
    f->b_up = 1;
    assert_true(ota_test_proc_stop(&f->broker.proc) >= 0);
    t0 = ms_now();
    while (ota_mqtt_mosquitto_connected(&f->b) && ms_now() - t0 < 5000u) {
        sleep_ms(10);
    }
    assert_int_equal(ota_mqtt_mosquitto_connected(&f->b), 0);
    sleep_ms(200);
    t0 = ms_now();
    ota_mqtt_mosquitto_cleanup(&f->b);
    f->b_up = 0;
    fprintf(stderr, "shutdown while reconnecting took %u ms\n", (unsigned)(ms_now() - t0));
    assert_true(ms_now() - t0 < 2000u);
    assert_int_equal(thread_count(), base);
}

/* ---- optional: the agent against otter-service on the same broker ---- */

#ifdef OTA_TEST_CLI_BIN

/* Run the otter CLI to the end; returns its exit status. */
static int run_cli(const char *log, const char *const *args)
{
    char *argv[24];
    ota_test_proc_t p;
    int status = -1;
    size_t n = 0;
    argv[n++] = (char *)OTA_TEST_CLI_BIN;
    for (; args[n - 1u] != NULL && n < 23u; n++) {
        argv[n] = (char *)args[n - 1u];
    }
    argv[n] = NULL;
    if (ota_test_proc_start(&p, "otter", argv, log) != 0) {
        return -1;
    }
    for (int i = 0; i < 3000 && ota_test_proc_running(&p, &status); i++) {
        sleep_ms(10);
    }
    if (p.pid != 0) {
        ota_test_proc_kill(&p);
        return -1;
    }
    return status;
}

/* The service signs with ECDSA; the in-memory port only checks the bytes
 * (against the service's own copy, below), so its close accepts them. */
static ota_err_t p_close_unsigned(void *ctx, const ota_pal_file_t *file)
{
    fake_pal_t *fk = ctx;
    (void)file;
    check_thread();
    if (!fk->open) {
        return OTA_ERR_NULL_FILE_CONTEXT;
    }
    fk->closes++;
    fk->open = 0;
    fk->closed_ok = 1;
    return OTA_OK;
}

static int done_service(fixture_t *f)
{
    return f->fake->activates > 0 || f->outcomes > 0;
}

static void test_service(void **state)
{
    fixture_t *f = *state;
    char dir[] = "/tmp/otter-mosq-XXXXXX";
    char path[600], log[600], image[600];
    char keys[600], key[600];
    const char *svc_args[] = {"--share-group", "none", NULL};
    ota_mqtt_mosquitto_config_t c;
    ota_test_proc_t svc;
    uint8_t *app, *expect;
    FILE *fp;
    long size;
    uint32_t t0, t1;

    if (access(OTA_TEST_CLI_BIN, X_OK) != 0 || access(OTA_TEST_SERVICE_BIN, X_OK) != 0) {
        fail_msg("otter or otter-service not built: build the otter and otter-service targets");
    }
    assert_non_null(mkdtemp(dir));
    snprintf(log, sizeof log, "%s/cli.log", dir);
    setenv("OTTER_DATA_DIR", dir, 1);
    snprintf(keys, sizeof keys, "%s/keys", dir);
    snprintf(key, sizeof key, "%s/keys/codesign.key", dir);
    /* The broker `otter broker init` sets up in this data folder. */
    ota_test_broker_stop(&f->broker);
    f->broker_up = 0;
    assert_int_equal(ota_test_broker_start(&f->broker, dir), 0);
    f->broker_up = 1;
    {
        const char *a2[] = {"keygen", "--out", keys, NULL};
        const char *a3[] = {"thing", "create", THING, NULL};
        assert_int_equal(run_cli(log, a2), 0);
        assert_int_equal(run_cli(log, a3), 0);
    }
    app = malloc(FILE_SIZE);
    assert_non_null(app);
    memcpy(app, f->file, FILE_SIZE);
    snprintf(path, sizeof path, "%s/app.bin", dir);
    fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(app, 1, FILE_SIZE, fp), FILE_SIZE);
    fclose(fp);
    free(app);
    {
        const char *a4[] = {"job",      "create",    "--file", path,    "--version",
                            "1.1.0",    "--targets", THING,    "--key", key,
                            "--job-id", JOB_ID,      NULL};
        assert_int_equal(run_cli(log, a4), 0);
    }

    /* The service and the thing with the logins `otter` made (live, on the running broker). */
    assert_int_equal(ota_test_thing_login(&f->broker, THING, &f->dev), 0);
    c = conn_config(f);
    snprintf(path, sizeof path, "%s/service.log", dir);
    memset(&svc, 0, sizeof svc);
    if (ota_test_service_start(&svc, dir, &f->broker, svc_args, path) != 0) {
        if (svc.pid != 0) {
            ota_test_proc_stop(&svc);
        }
        fail_msg("otter-service did not get ready; see %s", path);
    }

    /* The device. */
    c.port = f->broker.port;
    c.username = THING;
    c.password = "wrong";
    assert_int_equal(ota_mqtt_mosquitto_init(&f->b, &c), OTA_ERR_MQTT); /* CONNACK refused */
    c.password = f->dev.password;
    assert_int_equal(ota_mqtt_mosquitto_init(&f->b, &c), OTA_OK);
    f->b_up = 1;
    f->iface = ota_mqtt_mosquitto_interface(&f->b);
    f->pal.close_file = p_close_unsigned;
    memset(&f->cfg, 0, sizeof f->cfg);
    f->cfg.thing_name = THING;
    f->cfg.app_version = 0x01000000u;
    f->cfg.pal = &f->pal;
    f->cfg.mqtt.ctx = f;
    f->cfg.mqtt.subscribe = m_subscribe;
    f->cfg.mqtt.unsubscribe = m_unsubscribe;
    f->cfg.mqtt.publish = m_publish;
    f->cfg.callbacks.ctx = f;
    f->cfg.callbacks.log = cb_log;
    f->cfg.callbacks.outcome = cb_outcome;
    assert_int_equal(ota_agent_init(&f->agent, &f->cfg), OTA_OK);
    assert_int_equal(ota_mqtt_mosquitto_attach(&f->b, &f->agent), OTA_OK);
    t0 = ms_now();
    assert_int_equal(ota_agent_start(&f->agent, ms_now()), OTA_OK);
    assert_true(run_until(f, done_service, 60000));
    t1 = ms_now();
    ota_test_proc_stop(&svc);

    assert_int_equal(f->outcomes, 0);
    assert_int_equal(f->fake->activates, 1);
    assert_int_equal(f->flush_result, OTA_OK);
    assert_int_equal(f->foreign_calls, 0);
    /* The bytes are the service's image (header + app). */
    snprintf(image, sizeof image, "%s/files/1.bin", dir);
    fp = fopen(image, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    assert_true(size > (long)FILE_SIZE);
    expect = malloc((size_t)size);
    assert_non_null(expect);
    assert_int_equal(fread(expect, 1, (size_t)size, fp), (size_t)size);
    fclose(fp);
    assert_int_equal(f->fake->size, (uint32_t)size);
    assert_memory_equal(f->fake->data, expect, (size_t)size);
    assert_memory_equal(expect + size - (long)FILE_SIZE, f->file, FILE_SIZE);
    free(expect);
    fprintf(stderr, "service: %ld bytes from otter-service in %u ms (to activation)\n", size,
            (unsigned)(t1 - t0));
    unsetenv("OTTER_MQTT_PASSWORD");
    unsetenv("OTTER_DATA_DIR");
    if (getenv("OTA_TEST_KEEP") == NULL) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        assert_int_equal(system(cmd), 0);
    }
}

#endif /* OTA_TEST_CLI_BIN */

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_download, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_args, setup, teardown),
#ifdef OTA_TEST_CLI_BIN
        cmocka_unit_test_setup_teardown(test_service, setup, teardown),
#endif
    };
    return ota_test_main(tests, argc, argv);
}
