/*
 * otter simulated device: the firmware.
 *
 * One source, several builds (see device/CMakeLists.txt): the version comes
 * from OTTER_FW_MAJOR / OTTER_FW_MINOR / OTTER_FW_BUILD, and OTTER_FW_FLAVOR
 * picks a behaviour:
 *   0 normal            self-test: the broker is reachable -> passed
 *   1 broken self-test  self-test always fails
 *   2 crash             aborts at start, before the agent runs
 *   3 offline           logs in with a wrong password, so it never connects
 * OTTER_FW_PAD_BYTES (optional) adds that much read-only padding to the image.
 *
 * otter-fw-X --config CFG --flash FLASH [--boot FLASH.boot] [--status FLASH.status]
 *
 * The launcher (otter-device) has run the bootloader and left its decision
 * in FLASH.boot. The firmware opens the flash, starts the flash port on that
 * decision, connects with libmosquitto and runs the agent, logging like a
 * serial console. The port's reset flushes MQTT and exits with
 * OTTER_FW_EXIT_RESET; SIGTERM/SIGINT stop it cleanly (OTTER_FW_EXIT_POWER_OFF).
 */
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "otter/ota_agent.h"
#include "ota_http_tls.h"
#include "otter/ota_image_header.h"
#include "ota_mqtt_mosquitto.h"
#include "otter_device_common.h"

#ifndef OTTER_FW_MAJOR
#define OTTER_FW_MAJOR 1
#endif
#ifndef OTTER_FW_MINOR
#define OTTER_FW_MINOR 0
#endif
#ifndef OTTER_FW_BUILD
#define OTTER_FW_BUILD 0
#endif
#ifndef OTTER_FW_FLAVOR
#define OTTER_FW_FLAVOR 0
#endif

#define FLAVOR_NORMAL 0
#define FLAVOR_BROKEN_SELF_TEST 1
#define FLAVOR_CRASH 2
#define FLAVOR_OFFLINE 3

#define FW_VERSION ota_version_make(OTTER_FW_MAJOR, OTTER_FW_MINOR, OTTER_FW_BUILD)

#if defined(OTTER_FW_PAD_BYTES) && OTTER_FW_PAD_BYTES > 0
/* A larger image (OTTER_FW_PAD_BYTES of read-only padding) for long downloads. */
static const volatile unsigned char g_pad[OTTER_FW_PAD_BYTES] = {1};
#define FW_KEEP_PADDING() ((void)g_pad[0])
#else
#define FW_KEEP_PADDING() ((void)0)
#endif
#define FW_BLOCK_SIZE 4096u

typedef struct device {
    otter_dev_config_t cfg;
    char version[24];
    char thing[OTA_THING_NAME_MAX + 1];
    char host[256];
    int port;
    /* Further brokers of a federation (thing file "brokers": "HOST:PORT" after the first). */
    char alt_host[OTA_MQTT_MOSQUITTO_MAX_BROKERS - 1][256];
    int alt_port[OTA_MQTT_MOSQUITTO_MAX_BROKERS - 1];
    size_t alt_count;
    char username[OTA_THING_NAME_MAX + 1];
    char password[256];
    char client_id[OTA_THING_NAME_MAX + 1];
    char cafile[OTTER_DEV_PATH_MAX]; /* mutual TLS: the broker's CA, "" for passwords */
    char certfile[OTTER_DEV_PATH_MAX];
    char keyfile[OTTER_DEV_PATH_MAX];
    char flash_path[OTTER_DEV_PATH_MAX];
    char boot_path[OTTER_DEV_PATH_MAX];
    char status_path[OTTER_DEV_PATH_MAX];
    uint8_t pem[8192];
    ota_verify_signer_t signer;

    ota_flashsim_t sim;
    uint8_t mem[OTTER_DEV_FLASH_SIZE];
    ota_boot_result_t boot;
    ota_port_flash_config_t port_cfg;
    ota_port_flash_t port_state;
    ota_pal_t pal;

    ota_mqtt_mosquitto_t b;
    int mqtt_up;
    /* The HTTP data plane's stream: TCP, or TLS (mbed TLS, the fleet's CA) for https URLs. */
    ota_http_tcp_t http_tcp;
    ota_http_tls_t http_tls;
    int http_tls_ready;
    ota_httpc_transport_t http_io;
    ota_agent_t agent;
    ota_agent_config_t agent_cfg;
    int started;
    int self_test_requested;
    int report_requested; /* what runs changed (committed): report the inventory again */
    uint32_t total_blocks;
    uint32_t shown_blocks;
    ota_agent_stats_t job_base; /* the agent's counters (kept since boot) when this file began */
    uint32_t job_resumed;       /* blocks of this file kept from before a reset */
    uint64_t shown_at;
    ota_agent_state_t last_state;
    /* The retry watch (watch_retries()): the agent's counters last seen, when the last new
     * block arrived, whether the broker was lost since the last retry, what this file saw. */
    uint32_t seen_blocks, seen_timeouts;
    uint64_t block_at; /* or the reconnect, whichever came last */
    int lost_broker, was_down;
    int retry_open; /* a retry was sent and no new block has arrived since */
    uint32_t retries, retries_unanswered;
    uint64_t longest_silence;
} device_t;

static device_t g_dev;

/* The port's own write_block, when slow_write_block stands in front of it. */
static int32_t (*g_port_write_block)(void *ctx, uint32_t offset, const uint8_t *data,
                                     uint32_t size);

/* write_block after the configured block delay (config key block_delay_ms). */
static int32_t slow_write_block(void *ctx, uint32_t offset, const uint8_t *data, uint32_t size)
{
    uint32_t ms = g_dev.cfg.block_delay_ms;
    struct timespec ts = {(time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L};
    nanosleep(&ts, NULL);
    return g_port_write_block(ctx, offset, data, size);
}
static atomic_int g_stop;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&g_stop, 1);
}

/* One console line: "[  12.345] dev1 v1.0.0 INFO text". */
static void console(const device_t *d, const char *level, const char *fmt, ...)
{
    char text[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    printf("[%9.3f] %s v%s %s %s\n", otter_dev_uptime_s(), d->thing[0] ? d->thing : "-", d->version,
           level, text);
    fflush(stdout);
}

/* ---- the HTTP data plane's byte stream ---- */

/* Points the stream at a job URL's host: TCP, or TLS trusting the broker's CA. */
static ota_err_t http_target(void *ctx, const ota_http_url_t *url)
{
    device_t *d = ctx;
    ota_httpc_result_t r;
    if (d->http_tls_ready) {
        ota_http_tls_free(&d->http_tls);
        d->http_tls_ready = 0;
    }
    if (url->tls && d->cafile[0] == '\0') {
        console(d, "WARN", "https URL but no CA to check the server with: not using HTTP");
        return OTA_ERR_UNSUPPORTED;
    }
    r = url->tls
            ? ota_http_tls_init(&d->http_tls, url->host, url->host_len, url->port, d->cafile,
                                &d->http_io)
            : ota_http_tcp_init(&d->http_tcp, url->host, url->host_len, url->port, &d->http_io);
    d->http_tls_ready = url->tls && r == OTA_HTTPC_OK;
    console(d, "INFO", "HTTP data plane: %s://%.*s:%u", url->tls ? "https" : "http",
            (int)url->host_len, url->host, (unsigned)url->port);
    return r == OTA_HTTPC_OK ? OTA_OK : OTA_ERR_INVALID_ARG;
}

static ota_err_t http_open(void *ctx)
{
    device_t *d = ctx;
    return d->http_io.open != NULL ? d->http_io.open(d->http_io.ctx) : OTA_ERR_UNINITIALIZED;
}

static void http_close(void *ctx)
{
    device_t *d = ctx;
    if (d->http_io.close != NULL) {
        d->http_io.close(d->http_io.ctx);
    }
}

static ota_err_t http_send(void *ctx, const uint8_t *data, size_t len)
{
    device_t *d = ctx;
    return d->http_io.send != NULL ? d->http_io.send(d->http_io.ctx, data, len) : OTA_ERR_IO;
}

static int32_t http_recv(void *ctx, uint8_t *buf, size_t cap)
{
    device_t *d = ctx;
    return d->http_io.recv != NULL ? d->http_io.recv(d->http_io.ctx, buf, cap) : -1;
}

static const char *level_name(ota_log_level_t level)
{
    switch (level) {
    case OTA_LOG_ERROR:
        return "ERROR";
    case OTA_LOG_WARN:
        return "WARN";
    case OTA_LOG_INFO:
        return "INFO";
    default:
        return "DEBUG";
    }
}

/* The status file the tests and people read: what runs and whether it is committed. */
static void write_status(const device_t *d, const char *image_state)
{
    char text[256];
    int n = snprintf(text, sizeof text, "version=%s\nslot=%s\nimage=%s\npid=%ld\n", d->version,
                     otter_dev_slot_name(d->boot.slot), image_state, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof text ||
        otter_dev_write_file(d->status_path, text, (size_t)n, 0644u) != 0) {
        console(d, "WARN", "cannot write the status file %s", d->status_path);
    }
}

/* ---- agent callbacks ---- */

/* The agent's event when a resumed file failed verification and is fetched again. */
#define STARTING_AGAIN "resumed file failed verification"

static void cb_log(void *ctx, const ota_agent_event_t *ev)
{
    device_t *d = ctx;
    char extra[160] = "";
    if (ev->level == OTA_LOG_DEBUG && getenv("OTTER_FW_DEBUG") == NULL) {
        return;
    }
    if (strcmp(ev->what, "state") == 0) {
        console(d, "INFO", "state: %s", ev->detail);
        return;
    }
    if (strcmp(ev->what, "job accepted") == 0) {
        d->job_resumed = 0;
        console(d, "INFO", "job accepted: %s, %u bytes in %u blocks (stream %s)", ev->job_id,
                (unsigned)ev->a, (unsigned)ev->b, ev->detail);
        return;
    }
    if (strcmp(ev->what, "download resumed") == 0) {
        d->job_resumed = ev->a;
        console(d, "INFO", "download resumed: %u of %u blocks kept job %s", (unsigned)ev->a,
                (unsigned)ev->b, ev->job_id);
        return;
    }
    if (ev->err != OTA_OK) {
        snprintf(extra, sizeof extra, " [%s]", ota_err_str(ev->err));
    }
    console(d, level_name(ev->level), "%s%s%s%s%s%s", ev->what, ev->detail[0] ? ": " : "",
            ev->detail, extra, ev->job_id[0] ? " job " : "", ev->job_id);
    if (strncmp(ev->what, STARTING_AGAIN, sizeof STARTING_AGAIN - 1u) == 0) {
        /* The file is fetched again from its first block. */
        const ota_agent_stats_t *st = ota_agent_get_stats(&d->agent);
        if (st != NULL) {
            d->job_base = *st;
        }
        d->job_resumed = 0;
        d->shown_blocks = 0;
    }
    if (strcmp(ev->what, "file verified") == 0) {
        /* This file's share of the agent's counters. */
        const ota_agent_stats_t *st = ota_agent_get_stats(&d->agent);
        const ota_agent_stats_t *b = &d->job_base;
        if (st != NULL) {
            console(d, "INFO",
                    "download stats: %u blocks received, %u resumed, %u duplicates, %u requests, "
                    "%u timeouts",
                    (unsigned)(st->blocks_received - b->blocks_received), (unsigned)d->job_resumed,
                    (unsigned)(st->blocks_duplicate - b->blocks_duplicate),
                    (unsigned)(st->requests - b->requests), (unsigned)(st->timeouts - b->timeouts));
            console(d, "INFO",
                    "retry watch: %u retries, %u unanswered within one retry interval; longest "
                    "silence with the broker up %llu ms",
                    (unsigned)d->retries, (unsigned)d->retries_unanswered,
                    (unsigned long long)d->longest_silence);
        }
    }
}

static void cb_job_received(void *ctx, const ota_job_t *job)
{
    device_t *d = ctx;
    const ota_agent_stats_t *st = ota_agent_get_stats(&d->agent);
    /* The agent counts since boot; progress is shown per file. */
    if (st != NULL) {
        d->job_base = *st;
    }
    d->total_blocks = (job->file_size + FW_BLOCK_SIZE - 1u) / FW_BLOCK_SIZE;
    d->shown_blocks = 0;
    d->shown_at = 0;
    if (st != NULL) {
        d->seen_blocks = st->blocks_received;
        d->seen_timeouts = st->timeouts;
    }
    d->block_at = otter_dev_mono_ms();
    d->lost_broker = d->was_down = 0;
    d->retry_open = 0;
    d->retries = d->retries_unanswered = 0;
    d->longest_silence = 0;
}

static void cb_self_test(void *ctx, const ota_job_t *job)
{
    device_t *d = ctx;
    console(d, "INFO", "self-test requested by job %s", job->job_id);
    d->self_test_requested = 1;
}

static void cb_activate(void *ctx, const ota_job_t *job)
{
    device_t *d = ctx;
    console(d, "INFO", "activating the new image of job %s", job->job_id);
}

static void cb_outcome(void *ctx, const ota_agent_outcome_t *o)
{
    device_t *d = ctx;
    static const char *const names[] = {"SUCCEEDED", "FAILED", "CANCELED"};
    const char *status = (unsigned)o->status < 3u ? names[o->status] : "?";
    console(d, o->status == OTA_OUTCOME_SUCCEEDED ? "INFO" : "ERROR",
            "job %s %s: reason \"%s\"%s%s", o->job_id, status, o->reason, o->detail[0] ? ", " : "",
            o->detail);
    if (o->status == OTA_OUTCOME_SUCCEEDED && d->boot.pending &&
        d->pal.get_image_state(d->pal.ctx) == OTA_PAL_IMAGE_STATE_VALID) {
        console(d, "INFO", "image %s committed in slot %s", d->version,
                otter_dev_slot_name(d->boot.slot));
        write_status(d, "committed");
        /* The service last heard "pending" at boot: tell it what runs now. */
        d->boot.pending = 0;
        d->report_requested = 1;
    }
}

/* The file is verified: which data plane delivered how much. */
static void cb_verified(void *ctx, const ota_job_t *job)
{
    device_t *d = ctx;
    const ota_agent_stats_t *st = ota_agent_get_stats(&d->agent);
    (void)job;
    if (d->shown_blocks != d->total_blocks) {
        /* Downloaded between two turns of the main loop: the last count still shows. */
        console(d, "INFO", "downloading: %u/%u blocks", (unsigned)d->total_blocks,
                (unsigned)d->total_blocks);
        d->shown_blocks = d->total_blocks;
    }
    console(d, "INFO",
            "delivered: mqtt=%u http=%u bytes of blocks; http answers %u bytes; duplicate blocks "
            "%u; failovers %u; fresh URLs %u",
            (unsigned)st->bytes_mqtt, (unsigned)st->bytes_http, (unsigned)st->http_bytes,
            (unsigned)(st->blocks_duplicate - d->job_base.blocks_duplicate),
            (unsigned)st->failovers, (unsigned)st->url_renewals);
}

static void binding_log(void *ctx, ota_log_level_t level, const char *text)
{
    device_t *d = ctx;
    console(d, level_name(level), "mqtt: %s", text);
}

/* The port's reset: what the MCU's reset would be. */
static void on_reset(void *ctx)
{
    device_t *d = ctx;
    ota_err_t err = OTA_OK;
    if (d->mqtt_up) {
        err = ota_mqtt_mosquitto_flush(&d->b, 3000);
    }
    console(d, err == OTA_OK ? "INFO" : "WARN", "reset%s",
            err == OTA_OK ? "" : " (some MQTT messages were not confirmed)");
    ota_flashsim_close(&d->sim);
    fflush(NULL);
    _exit(OTTER_FW_EXIT_RESET);
}

/* ---- setup ---- */

static int json_str(const cJSON *o, const char *key, char *out, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v) || v->valuestring == NULL) {
        return -1;
    }
    int n = snprintf(out, cap, "%s", v->valuestring);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* The thing file's "brokers" (["HOST:PORT", ...], the first being host and
 * port): the others become the failover list. Bad entries are refused. */
static int load_brokers(device_t *d, const cJSON *o)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(o, "brokers");
    const cJSON *e;
    d->alt_count = 0;
    if (list == NULL) {
        return 0;
    }
    if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) > (int)OTA_MQTT_MOSQUITTO_MAX_BROKERS) {
        return -1;
    }
    cJSON_ArrayForEach(e, list)
    {
        char item[256], *colon;
        long port;
        if (!cJSON_IsString(e) || strlen(e->valuestring) >= sizeof item ||
            snprintf(item, sizeof item, "%s", e->valuestring) < 0 ||
            (colon = strrchr(item, ':')) == NULL || colon == item) {
            return -1;
        }
        *colon = '\0';
        port = strtol(colon + 1, NULL, 10);
        if (port < 1 || port > 65535) {
            return -1;
        }
        if (strcmp(item, d->host) == 0 && port == d->port) {
            continue; /* the first one */
        }
        if (d->alt_count == OTA_MQTT_MOSQUITTO_MAX_BROKERS - 1u) {
            return -1;
        }
        snprintf(d->alt_host[d->alt_count], sizeof d->alt_host[0], "%s", item);
        d->alt_port[d->alt_count++] = (int)port;
    }
    return 0;
}

static int load_thing(device_t *d)
{
    char text[4096];
    cJSON *o;
    const cJSON *port;
    int ok;
    if (otter_dev_read_file(d->cfg.thing_file, text, sizeof text) < 0) {
        console(d, "ERROR", "cannot read the thing file %s", d->cfg.thing_file);
        return -1;
    }
    o = cJSON_Parse(text);
    port = cJSON_GetObjectItemCaseSensitive(o, "port");
    /* A password, or (mutual TLS) the CA, the thing's certificate and its key. */
    int tls = o != NULL && json_str(o, "cafile", d->cafile, sizeof d->cafile) == 0;
    ok = o != NULL && json_str(o, "thing", d->thing, sizeof d->thing) == 0 &&
         json_str(o, "host", d->host, sizeof d->host) == 0 &&
         json_str(o, "username", d->username, sizeof d->username) == 0 &&
         (tls ? json_str(o, "certfile", d->certfile, sizeof d->certfile) == 0 &&
                    json_str(o, "keyfile", d->keyfile, sizeof d->keyfile) == 0
              : json_str(o, "password", d->password, sizeof d->password) == 0) &&
         cJSON_IsNumber(port);
    if (!tls) {
        d->cafile[0] = '\0';
    }
    if (ok) {
        d->port = port->valueint;
        if (json_str(o, "client_id", d->client_id, sizeof d->client_id) != 0) {
            snprintf(d->client_id, sizeof d->client_id, "%s", d->thing);
        }
    }
    if (ok && load_brokers(d, o) != 0) {
        console(d, "ERROR", "thing file %s: bad \"brokers\" (give up to %u \"HOST:PORT\" strings)",
                d->cfg.thing_file, (unsigned)OTA_MQTT_MOSQUITTO_MAX_BROKERS);
        cJSON_Delete(o);
        return -1;
    }
    cJSON_Delete(o);
    if (!ok) {
        console(d, "ERROR",
                "thing file %s lacks thing, host, port, username, or password (or certfile and "
                "keyfile beside cafile)",
                d->cfg.thing_file);
        return -1;
    }
    if (d->cfg.broker_host[0] != '\0') {
        snprintf(d->host, sizeof d->host, "%s", d->cfg.broker_host);
    }
    if (d->cfg.broker_port != 0) {
        d->port = d->cfg.broker_port;
    }
#if OTTER_FW_FLAVOR == FLAVOR_OFFLINE
    /* This build carries a wrong credential: the broker refuses it. */
    size_t len = strlen(d->password);
    if (len + 7u < sizeof d->password) {
        memcpy(d->password + len, "-wrong", 7u);
    }
#endif
    return 0;
}

static int open_flash_and_port(device_t *d)
{
    ota_flashsim_geometry_t geo = otter_dev_geometry();
    long pem_len = otter_dev_read_file(d->cfg.codesign_cert, (char *)d->pem, sizeof d->pem);
    ota_err_t err;
    if (pem_len <= 0) {
        console(d, "ERROR", "cannot read the code-signing certificate %s", d->cfg.codesign_cert);
        return -1;
    }
    d->signer.name = d->cfg.cert_name;
    d->signer.pem = d->pem;
    d->signer.pem_len = (size_t)pem_len;
    err = ota_flashsim_open_file(&d->sim, &geo, d->mem, sizeof d->mem, d->flash_path);
    if (err != OTA_OK) {
        console(d, "ERROR", "cannot open the flash %s: %s", d->flash_path, ota_err_str(err));
        return -1;
    }
    memset(&d->port_cfg, 0, sizeof d->port_cfg);
    d->port_cfg.flash = ota_flashsim_driver(&d->sim);
    if ((err = ota_boot_layout_uniform(&d->port_cfg.flash, &d->port_cfg.layout)) != OTA_OK) {
        console(d, "ERROR", "flash layout: %s", ota_err_str(err));
        return -1;
    }
    d->port_cfg.signers = &d->signer;
    d->port_cfg.signer_count = 1;
    d->port_cfg.max_attempts = OTTER_DEV_MAX_ATTEMPTS;
    d->port_cfg.reset_fn = on_reset;
    d->port_cfg.reset_ctx = d;
    err = ota_port_flash_init(&d->port_state, &d->port_cfg, &d->boot, &d->pal);
    if (err == OTA_OK && d->cfg.block_delay_ms != 0u) {
        /* A slow link: every block waits before it is written. */
        g_port_write_block = d->pal.write_block;
        d->pal.write_block = slow_write_block;
    }
    if (err != OTA_OK) {
        console(d, "ERROR", "cannot start the flash port: %s", ota_err_str(err));
        return -1;
    }
    return 0;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint32_t self_test_timeout(const device_t *d)
{
    return d->cfg.self_test_timeout_ms != 0u ? d->cfg.self_test_timeout_ms
                                             : OTA_DEFAULT_SELF_TEST_TIMEOUT_MS;
}

/* Connect; a new image that cannot reach the broker within the self-test
 * time refuses itself, as the agent would had it been able to start. */
static int connect_broker(device_t *d)
{
    ota_mqtt_mosquitto_config_t mc;
    ota_mqtt_mosquitto_broker_t alt[OTA_MQTT_MOSQUITTO_MAX_BROKERS - 1];
    uint64_t t0 = otter_dev_mono_ms();
    unsigned tries = 0;
    memset(&mc, 0, sizeof mc);
    mc.host = d->host;
    mc.port = d->port;
    for (size_t i = 0; i < d->alt_count; i++) {
        alt[i].host = d->alt_host[i];
        alt[i].port = d->alt_port[i];
    }
    mc.failover = alt;
    mc.failover_count = d->alt_count;
    mc.client_id = d->client_id;
    if (d->cafile[0] != '\0') {
        /* Mutual TLS: the broker takes the identity from the certificate. */
        mc.ca_file = d->cafile;
        mc.cert_file = d->certfile;
        mc.key_file = d->keyfile;
    } else {
        mc.username = d->username;
        mc.password = d->password;
    }
    mc.keepalive_s = 30;
    mc.connect_timeout_ms = 3000;
    mc.log = binding_log;
    mc.ctx = d;
    while (!atomic_load(&g_stop)) {
        ota_err_t err = ota_mqtt_mosquitto_init(&d->b, &mc);
        tries++;
        if (err == OTA_OK) {
            d->mqtt_up = 1;
            console(d, "INFO", "connected to %s:%d as %s", mc.host, mc.port, d->username);
            return 0;
        }
        console(d, "ERROR", "cannot connect to %s:%d as %s (attempt %u): %s", mc.host, mc.port,
                d->username, tries, ota_err_str(err));
        if (d->alt_count != 0u) {
            /* The next broker of the list first next time, the one tried last. */
            size_t k = (tries - 1u) % d->alt_count;
            ota_mqtt_mosquitto_broker_t first = {mc.host, mc.port};
            mc.host = alt[k].host;
            mc.port = alt[k].port;
            alt[k] = first;
        }
        if (d->boot.pending && otter_dev_mono_ms() - t0 >= self_test_timeout(d)) {
            console(d, "ERROR",
                    "new image found no broker within the self-test time (%u ms): rejecting it",
                    (unsigned)self_test_timeout(d));
            err = d->pal.set_image_state(d->pal.ctx, OTA_IMAGE_STATE_REJECTED);
            if (err != OTA_OK) {
                console(d, "ERROR", "cannot reject the image: %s", ota_err_str(err));
            }
            (void)d->pal.reset(d->pal.ctx); /* does not return */
            return -1;
        }
        for (int i = 0; i < 10 && !atomic_load(&g_stop); i++) {
            sleep_ms(100);
        }
    }
    return -1;
}

/*
 * The retry watch. A retry is a block request the agent sends because its
 * retry timer expired with no new block (its stats count each as a timeout).
 * A retry is unanswered when the timer expires again before any new block
 * arrived while the device stayed connected: a request then went without an
 * answer for more than one retry interval after the retry asked again. Each
 * retry is logged with the silence before it and the retry interval now; the
 * file's totals go with its download stats. Expiries with the broker lost
 * meanwhile are the broker's failover, not the service's: not counted; the
 * round the agent sends on reconnecting counts as a retry (silence from then).
 */
static void watch_retries(device_t *d, const ota_agent_stats_t *st, uint64_t now)
{
    if (!ota_mqtt_mosquitto_connected(&d->b)) {
        d->lost_broker = d->was_down = 1;
    } else if (d->was_down) {
        /* Back on a broker: the agent asked again at once; that round is a retry too. */
        d->was_down = d->lost_broker = 0;
        d->retry_open = 1;
        d->block_at = now;
    }
    if (st->blocks_received != d->seen_blocks) {
        d->seen_blocks = st->blocks_received;
        d->block_at = now;
        d->retry_open = 0;
    }
    if (st->timeouts == d->seen_timeouts) {
        return;
    }
    d->seen_timeouts = st->timeouts;
    uint64_t silence = d->block_at != 0u ? now - d->block_at : 0u;
    int unanswered = d->retry_open && !d->lost_broker;
    d->retries++;
    d->retries_unanswered += (uint32_t)unanswered;
    if (!d->lost_broker && silence > d->longest_silence) {
        d->longest_silence = silence;
    }
    console(d, unanswered ? "WARN" : "INFO",
            "retry %u: no new block for %llu ms%s; retry interval now %u ms%s",
            (unsigned)d->retries, (unsigned long long)silence,
            d->lost_broker ? " (broker lost meanwhile)" : "", (unsigned)st->rto_ms,
            unanswered ? "; the retry before went unanswered" : "");
    d->retry_open = 1;
    d->lost_broker = d->was_down;
}

static void show_progress(device_t *d)
{
    const ota_agent_stats_t *st = ota_agent_get_stats(&d->agent);
    ota_agent_state_t state = ota_agent_get_state(&d->agent);
    uint32_t done;
    uint64_t now;
    if (state != OTA_AGENT_DOWNLOADING || st == NULL) {
        return;
    }
    done = st->blocks_received - d->job_base.blocks_received + d->job_resumed;
    now = otter_dev_mono_ms();
    watch_retries(d, st, now);
    if (done != d->shown_blocks && (done == d->total_blocks || now - d->shown_at >= 500u)) {
        console(d, "INFO", "downloading: %u/%u blocks", (unsigned)done, (unsigned)d->total_blocks);
        d->shown_blocks = done;
        d->shown_at = now;
    }
}

static void run_self_test(device_t *d)
{
    int passed;
    d->self_test_requested = 0;
#if OTTER_FW_FLAVOR == FLAVOR_BROKEN_SELF_TEST
    passed = 0;
    console(d, "ERROR", "self-test: failed (this build's self-test is broken)");
#else
    passed = ota_mqtt_mosquitto_connected(&d->b) && ota_mqtt_mosquitto_flush(&d->b, 2000) == OTA_OK;
    console(d, passed ? "INFO" : "ERROR", "self-test: %s (broker %s)", passed ? "passed" : "failed",
            passed ? "reachable" : "unreachable");
#endif
    ota_err_t err = ota_agent_self_test_result(&d->agent, passed, ota_mqtt_mosquitto_now_ms());
    if (err != OTA_OK) {
        console(d, "ERROR", "self-test verdict not taken: %s", ota_err_str(err));
    }
}

/* Tells the service what runs here, the way an AWS IoT device does: its
 * Device Shadow's reported document (see docs/FLEET.md, inventory). Sent when
 * the agent starts (a revert shows then: the device boots the old image) and
 * again once a new image is committed; token says which. */
static void report_inventory(device_t *d, const char *token)
{
    char topic[160], payload[400], type[96] = "";
    if (d->cfg.device_type[0] != '\0') {
        snprintf(type, sizeof type, "\"deviceType\":\"%s\",", d->cfg.device_type);
    }
    snprintf(topic, sizeof topic, "$aws/things/%s/shadow/update", d->thing);
    int n = snprintf(payload, sizeof payload,
                     "{\"state\":{\"reported\":{\"firmwareVersion\":\"%s\",%s\"slot\":\"%s\","
                     "\"imageState\":\"%s\",\"connected\":true}},\"clientToken\":\"%s\"}",
                     d->version, type, otter_dev_slot_name(d->boot.slot),
                     d->boot.pending ? "pending" : "committed", token);
    ota_err_t e = n > 0 && (size_t)n < sizeof payload
                      ? d->agent_cfg.mqtt.publish(d->agent_cfg.mqtt.ctx, topic,
                                                  (const uint8_t *)payload, (size_t)n, 1)
                      : OTA_ERR_INVALID_ARG;
    if (e == OTA_OK) {
        console(d, "INFO", "inventory reported: %s", payload);
    } else {
        console(d, "WARN", "cannot report the inventory: %s", ota_err_str(e));
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: otter-fw --config FILE --flash FILE [--boot FILE] [--status FILE]\n"
                    "(started by otter-device; see docs/DEVICE.md)\n");
}

static int set_arg(char *out, size_t cap, const char *v)
{
    int n = snprintf(out, cap, "%s", v);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int main(int argc, char **argv)
{
    device_t *d = &g_dev;
    const char *config = NULL;
    char err[512];
    struct sigaction sa;

    setvbuf(stdout, NULL, _IOLBF, 0);
    FW_KEEP_PADDING();
    ota_version_format(FW_VERSION, d->version);
    for (int i = 1; i < argc; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = v == NULL;
        if (!bad && strcmp(argv[i], "--config") == 0) {
            config = v;
        } else if (!bad && strcmp(argv[i], "--flash") == 0) {
            bad = set_arg(d->flash_path, sizeof d->flash_path, v);
        } else if (!bad && strcmp(argv[i], "--boot") == 0) {
            bad = set_arg(d->boot_path, sizeof d->boot_path, v);
        } else if (!bad && strcmp(argv[i], "--status") == 0) {
            bad = set_arg(d->status_path, sizeof d->status_path, v);
        } else {
            bad = 1;
        }
        if (bad) {
            usage();
            return OTTER_FW_EXIT_HALT;
        }
    }
    if (config == NULL || d->flash_path[0] == '\0') {
        usage();
        return OTTER_FW_EXIT_HALT;
    }
    if ((d->boot_path[0] == '\0' &&
         set_arg(d->boot_path, sizeof d->boot_path, d->flash_path) != 0) ||
        (d->status_path[0] == '\0' &&
         set_arg(d->status_path, sizeof d->status_path, d->flash_path) != 0)) {
        return OTTER_FW_EXIT_HALT;
    }
    if (strcmp(d->boot_path, d->flash_path) == 0) {
        strncat(d->boot_path, ".boot", sizeof d->boot_path - strlen(d->boot_path) - 1u);
    }
    if (strcmp(d->status_path, d->flash_path) == 0) {
        strncat(d->status_path, ".status", sizeof d->status_path - strlen(d->status_path) - 1u);
    }

    if (otter_dev_handover_read(d->boot_path, &d->boot) != 0) {
        console(d, "ERROR", "no boot decision in %s: start me with otter-device", d->boot_path);
        return OTTER_FW_EXIT_HALT;
    }
    printf("otter-fw %s booted from slot %s (%s)\n", d->version, otter_dev_slot_name(d->boot.slot),
           d->boot.pending ? "pending commit" : "committed");
    if (otter_dev_config_load(config, &d->cfg, err, sizeof err) != 0) {
        console(d, "ERROR", "%s", err);
        return OTTER_FW_EXIT_HALT;
    }
    if (load_thing(d) != 0) {
        return OTTER_FW_EXIT_HALT;
    }
#if OTTER_FW_FLAVOR == FLAVOR_CRASH
    console(d, "ERROR", "crashing at start (this build is broken)");
    abort();
#endif
    if (d->boot.version != FW_VERSION) {
        char hv[24];
        ota_version_format(d->boot.version, hv);
        console(d, "WARN", "the image header says version %s", hv);
    }

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    if (open_flash_and_port(d) != 0) {
        return OTTER_FW_EXIT_HALT;
    }
    write_status(d, d->boot.pending ? "pending" : "committed");
    if (connect_broker(d) != 0) {
        ota_flashsim_close(&d->sim);
        console(d, "INFO", "powered off");
        return OTTER_FW_EXIT_POWER_OFF;
    }

    memset(&d->agent_cfg, 0, sizeof d->agent_cfg);
    d->agent_cfg.thing_name = d->thing;
    d->agent_cfg.app_version = FW_VERSION;
    d->agent_cfg.device_type = d->cfg.device_type[0] != '\0' ? d->cfg.device_type : NULL;
    d->agent_cfg.pal = &d->pal;
    d->agent_cfg.mqtt = ota_mqtt_mosquitto_interface(&d->b);
    d->agent_cfg.block_size = FW_BLOCK_SIZE;
    d->agent_cfg.self_test_timeout_ms = d->cfg.self_test_timeout_ms;
    d->agent_cfg.reset_delay_ms = d->cfg.reset_delay_ms;
    d->agent_cfg.status_every_blocks = d->cfg.status_every_blocks;
    d->agent_cfg.callbacks.ctx = d;
    d->agent_cfg.callbacks.log = cb_log;
    d->agent_cfg.callbacks.job_received = cb_job_received;
    d->agent_cfg.callbacks.self_test = cb_self_test;
    d->agent_cfg.callbacks.activate = cb_activate;
    d->agent_cfg.callbacks.outcome = cb_outcome;
    d->agent_cfg.callbacks.verified = cb_verified;
    d->agent_cfg.http.ctx = d;
    d->agent_cfg.http.target = http_target;
    d->agent_cfg.http.transport.ctx = d;
    d->agent_cfg.http.transport.open = http_open;
    d->agent_cfg.http.transport.close = http_close;
    d->agent_cfg.http.transport.send = http_send;
    d->agent_cfg.http.transport.recv = http_recv;
    ota_err_t e = ota_agent_init(&d->agent, &d->agent_cfg);
    if (e == OTA_OK) {
        e = ota_mqtt_mosquitto_attach(&d->b, &d->agent);
    }
    if (e != OTA_OK) {
        console(d, "ERROR", "cannot set up the agent: %s", ota_err_str(e));
        ota_mqtt_mosquitto_cleanup(&d->b);
        ota_flashsim_close(&d->sim);
        return OTTER_FW_EXIT_HALT;
    }

    uint64_t last_try = 0;
    while (!atomic_load(&g_stop)) {
        if (!d->started && otter_dev_mono_ms() - last_try >= 1000u) {
            last_try = otter_dev_mono_ms();
            e = ota_agent_start(&d->agent, ota_mqtt_mosquitto_now_ms());
            if (e == OTA_OK) {
                d->started = 1;
                console(d, "INFO", "agent started");
                report_inventory(d, "boot");
            } else {
                console(d, "ERROR", "cannot start the agent: %s", ota_err_str(e));
            }
        }
        /* While downloading, the agent reads the HTTP plane's stream in its
         * poll: poll often then (the MQTT messages still come in run_once). */
        int fast = ota_agent_get_state(&d->agent) == OTA_AGENT_DOWNLOADING;
        (void)ota_mqtt_mosquitto_run_once(&d->b, fast ? 5u : OTA_MQTT_MOSQUITTO_POLL_MS);
        if (fast) {
            (void)ota_agent_poll(&d->agent, ota_mqtt_mosquitto_now_ms());
        }
        if (d->self_test_requested) {
            run_self_test(d);
        }
        if (d->report_requested && d->started) {
            d->report_requested = 0;
            report_inventory(d, "commit");
        }
        show_progress(d);
    }

    console(d, "INFO", "powering off");
    if (d->started) {
        (void)ota_agent_stop(&d->agent);
    }
    (void)ota_mqtt_mosquitto_flush(&d->b, 1000);
    ota_mqtt_mosquitto_cleanup(&d->b);
    if (d->http_tls_ready) {
        ota_http_tls_free(&d->http_tls);
    }
    ota_flashsim_close(&d->sim);
    console(d, "INFO", "powered off");
    return OTTER_FW_EXIT_POWER_OFF;
}
