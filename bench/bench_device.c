/* otter benchmarks: one simulated device downloading one update. */
#define _GNU_SOURCE
#include "bench_device.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_env.h"
#include "flashsim_device.h"
#include "ota_test_image.h"

#define V1_0_0 0x01000000u

/* Without the HTTP plane, downloads may run side by side in threads (benchmark 5's
 * one-block cells): each has its own device, client and agent, but libmosquitto's
 * library start and cleanup count their users without a lock, so they take turns. */
static pthread_mutex_t lib_mu = PTHREAD_MUTEX_INITIALIZER;

#if OTA_HTTP_PLANE
#include <poll.h>

#include "ota_http_tcp.h"

/* The HTTP data plane's byte stream: TCP to the URL's host, or to the port given. */
static ota_http_tcp_t http_tcp;
static ota_httpc_transport_t http_io; /* the stream http_target made */
static int http_via_port;
static int http_targeted; /* http_tcp holds a stream of this download */

void bench_device_http_via(int port)
{
    http_via_port = port;
}

static ota_err_t http_target(void *ctx, const ota_http_url_t *url)
{
    ota_httpc_result_t r =
        http_via_port != 0
            ? ota_http_tcp_init(&http_tcp, "127.0.0.1", 9, (uint16_t)http_via_port, &http_io)
            : ota_http_tcp_init(&http_tcp, url->host, url->host_len, url->port, &http_io);
    (void)ctx;
    http_targeted = r == OTA_HTTPC_OK;
    return r == OTA_HTTPC_OK ? OTA_OK : OTA_ERR_INVALID_ARG;
}

/* The agent's stream, forwarding to the one http_target made. */
static ota_err_t http_open(void *ctx)
{
    (void)ctx;
    return http_io.open != NULL ? http_io.open(http_io.ctx) : OTA_ERR_UNINITIALIZED;
}

static void http_close(void *ctx)
{
    (void)ctx;
    if (http_io.close != NULL) {
        http_io.close(http_io.ctx);
    }
}

static ota_err_t http_send(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    return http_io.send != NULL ? http_io.send(http_io.ctx, data, len) : OTA_ERR_IO;
}

static int32_t http_recv(void *ctx, uint8_t *buf, size_t cap)
{
    (void)ctx;
    return http_io.recv != NULL ? http_io.recv(http_io.ctx, buf, cap) : -1;
}
#endif

static void on_job(void *ctx, const ota_job_t *job)
{
    bench_device_run_t *r = ctx;
    r->start = bench_now();
    r->file_size = job->file_size;
}

static void on_verified(void *ctx, const ota_job_t *job)
{
    bench_device_run_t *r = ctx;
    (void)job;
    r->verified = bench_now();
}

static void on_outcome(void *ctx, const ota_agent_outcome_t *o)
{
    bench_device_run_t *r = ctx;
    fprintf(stderr, "bench: the job ended %d: %s %s\n", (int)o->status, o->reason, o->detail);
    r->failed = 1;
}

static void on_message(void *ctx, const char *topic, const uint8_t *payload, size_t len)
{
    bench_device_run_t *r = ctx;
    (void)payload;
    if (strstr(topic, "/data/cbor") != NULL) {
        r->last_data = bench_now();
        r->data_bytes += len;
        r->data_msg_len = len > r->data_msg_len ? len : r->data_msg_len;
    }
}

/* 4 MiB of NOR flash in 4 KiB sectors, write unit 8, erased to 0xff. */
static const flashsim_variant_t nor_4mib = {{4u * 1024u * 1024u, 4096u, NULL, 0, 8, 0xff},
                                            {{0, 0}, 0, {0, 0}, {0, 0}, 0}};

/* One turn of the device's loop: MQTT messages, and the HTTP plane's stream
 * read in ota_agent_poll() as soon as its socket is readable (docs/AGENT.md). */
static void turn(ota_mqtt_mosquitto_t *b, ota_agent_t *agent)
{
#if OTA_HTTP_PLANE
    if (http_targeted && http_tcp.fd >= 0 && ota_agent_get_state(agent) == OTA_AGENT_DOWNLOADING) {
        struct pollfd p = {http_tcp.fd, POLLIN, 0};
        (void)poll(&p, 1, 5);
        (void)ota_agent_poll(agent, ota_mqtt_mosquitto_now_ms());
        ota_mqtt_mosquitto_run_once(b, 0);
        return;
    }
#else
    (void)agent;
#endif
    ota_mqtt_mosquitto_run_once(b, 10);
}

/* Drive the agent until the file is verified, the job fails, or the deadline. */
static void run_agent(ota_mqtt_mosquitto_t *b, ota_agent_t *agent, double timeout_s,
                      bench_device_run_t *r)
{
    double deadline = bench_now() + timeout_s;
    while (r->verified == 0.0 && !r->failed && bench_now() < deadline) {
        uint32_t w;
        turn(b, agent);
        w = ota_agent_get_stats(agent)->window_blocks;
        r->window_peak = w > r->window_peak ? w : r->window_peak;
    }
    r->stats = *ota_agent_get_stats(agent);
}

int bench_device_download(const ota_mqtt_mosquitto_config_t *conn, const char *thing,
                          uint32_t block_size, uint32_t window, double timeout_s,
                          bench_device_run_t *r)
{
    uint8_t factory[4096];
    flashsim_device_t *dev = calloc(1, sizeof *dev);
    ota_mqtt_mosquitto_t *b = calloc(1, sizeof *b);
    ota_agent_t *agent = calloc(1, sizeof *agent);
    ota_mqtt_mosquitto_config_t mc = *conn;
    ota_agent_config_t ac;
    ota_pal_t pal;
    int rc = -1;

    memset(r, 0, sizeof *r);
#if OTA_HTTP_PLANE
    http_targeted = 0;
#endif
    ota_test_image_make(factory, sizeof factory, V1_0_0, 1u);
    if (dev == NULL || b == NULL || agent == NULL ||
        flashsim_device_create(dev, &nor_4mib, factory, sizeof factory) != 0 ||
        flashsim_device_boot(dev, &pal) != OTA_OK) {
        fprintf(stderr, "bench: cannot make the simulated device\n");
        goto out;
    }
    mc.client_id = mc.client_id != NULL ? mc.client_id : thing;
    mc.on_message = on_message;
    mc.ctx = r;
    pthread_mutex_lock(&lib_mu);
    if (ota_mqtt_mosquitto_init(b, &mc) != OTA_OK) {
        pthread_mutex_unlock(&lib_mu);
        fprintf(stderr, "bench: %s cannot connect to %s:%d\n", thing, mc.host, mc.port);
        goto out;
    }
    pthread_mutex_unlock(&lib_mu);
    memset(&ac, 0, sizeof ac);
    ac.thing_name = thing;
    ac.app_version = V1_0_0;
    ac.pal = &pal;
    ac.mqtt = ota_mqtt_mosquitto_interface(b);
    ac.callbacks.ctx = r;
    ac.callbacks.job_received = on_job;
    ac.callbacks.verified = on_verified;
    ac.callbacks.outcome = on_outcome;
#if OTA_HTTP_PLANE
    ac.http.target = http_target;
    ac.http.transport.open = http_open;
    ac.http.transport.close = http_close;
    ac.http.transport.send = http_send;
    ac.http.transport.recv = http_recv;
#endif
    ac.block_size = block_size;
    ac.window_blocks = window;
    if (ota_agent_init(agent, &ac) != OTA_OK || ota_mqtt_mosquitto_attach(b, agent) != OTA_OK ||
        ota_agent_start(agent, ota_mqtt_mosquitto_now_ms()) != OTA_OK) {
        fprintf(stderr, "bench: the agent does not start\n");
    } else {
        r->block_size = block_size != 0u ? block_size : OTA_DEFAULT_BLOCK_SIZE;
        r->window = ota_agent_get_stats(agent)->window_blocks;
        run_agent(b, agent, timeout_s, r);
        if (r->verified != 0.0) {
            rc = 0;
        } else if (!r->failed) {
            fprintf(stderr, "bench: %s: no verified download within %.0f s\n", thing, timeout_s);
        }
        (void)ota_agent_stop(agent);
    }
    pthread_mutex_lock(&lib_mu);
    ota_mqtt_mosquitto_cleanup(b);
    pthread_mutex_unlock(&lib_mu);
out:
    if (dev != NULL) {
        flashsim_device_destroy(dev);
    }
    free(dev);
    free(b);
    free(agent);
    return rc;
}
