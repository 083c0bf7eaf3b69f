/* otter benchmarks: one simulated device downloading one update. */
#define _GNU_SOURCE
#include "bench_device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_env.h"
#include "flashsim_device.h"
#include "ota_test_image.h"

#define V1_0_0 0x01000000u

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

/* Drive the agent until the file is verified, the job fails, or the deadline. */
static void run_agent(ota_mqtt_mosquitto_t *b, ota_agent_t *agent, double timeout_s,
                      bench_device_run_t *r)
{
    double deadline = bench_now() + timeout_s;
    while (r->verified == 0.0 && !r->failed && bench_now() < deadline) {
        ota_mqtt_mosquitto_run_once(b, 10);
    }
    r->stats = *ota_agent_get_stats(agent);
}

int bench_device_download(const ota_mqtt_mosquitto_config_t *conn, const char *thing,
                          uint32_t block_size, uint32_t window, double timeout_s,
                          bench_device_run_t *r)
{
    static uint8_t factory[4096];
    flashsim_device_t *dev = calloc(1, sizeof *dev);
    ota_mqtt_mosquitto_t *b = calloc(1, sizeof *b);
    ota_agent_t *agent = calloc(1, sizeof *agent);
    ota_mqtt_mosquitto_config_t mc = *conn;
    ota_agent_config_t ac;
    ota_pal_t pal;
    int rc = -1;

    memset(r, 0, sizeof *r);
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
    if (ota_mqtt_mosquitto_init(b, &mc) != OTA_OK) {
        fprintf(stderr, "bench: %s cannot connect to %s:%d\n", thing, mc.host, mc.port);
        goto out;
    }
    memset(&ac, 0, sizeof ac);
    ac.thing_name = thing;
    ac.app_version = V1_0_0;
    ac.pal = &pal;
    ac.mqtt = ota_mqtt_mosquitto_interface(b);
    ac.callbacks.ctx = r;
    ac.callbacks.job_received = on_job;
    ac.callbacks.verified = on_verified;
    ac.callbacks.outcome = on_outcome;
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
    ota_mqtt_mosquitto_cleanup(b);
out:
    if (dev != NULL) {
        flashsim_device_destroy(dev);
    }
    free(dev);
    free(b);
    free(agent);
    return rc;
}
