/*
 * otter benchmark 6: the HTTP data plane beside MQTT.
 *
 *   bench_http [--image-kib N] [--reps R] [--quick]
 *
 * One simulated device (bench_device.h, built with ota_agent_http and the
 * agent's default settings) downloads and verifies an N KiB image (default
 * 1024) twice per repetition in the same run: once from a job created with
 * `otter job create --protocols HTTP,MQTT` (the file from otter-http, by the
 * presigned URL otter-service puts in the job document) and once from a job
 * created without --protocols (MQTT streams, the CLI's default). The broker is
 * the one `otter broker init` configures; otter-service runs with --http-url.
 * Rows: loopback, and through the link emulator (link_emu.h) at RTT 20 and
 * 100 ms x 10 Mbit/s, as table 5 (one emulator in front of the broker, one in
 * front of otter-http, each with the row's settings). The time runs from the
 * agent accepting the job document to the port having verified the
 * signature; goodput is the file's bytes over that time. Each run checks its
 * bytes came over the plane asked for (no failover). Cells are medians of R
 * runs (default 3), the two planes alternating which goes first.
 *
 * --quick runs both planes once on loopback and once over one small row
 * (20 ms, 10 Mbit/s) with a 64 KiB image, and checks both updates complete
 * over their plane: a smoke test, it times nothing.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_device.h"
#include "bench_env.h"
#include "link_emu.h"

#define KIB 1024u
#define MIB (1024.0 * 1024.0)
#define MAX_REPS 9

/* A row: rtt_ms 0 is loopback (no emulator). */
typedef struct row {
    double rtt_ms;
    double mbit;
} row_t;

static const row_t rows[] = {{0.0, 0.0}, {20.0, 10.0}, {100.0, 10.0}};
#define N_ROWS (sizeof rows / sizeof rows[0])

#define HTTP 0
#define MQTT 1
static const char *const plane_name[2] = {"HTTP", "MQTT"};
/* otter job create --protocols for each plane (NULL: the CLI's default, MQTT). */
static const char *const plane_protocols[2] = {"HTTP,MQTT", NULL};

/* One plane's runs in one row. */
typedef struct cell {
    double time_s[MAX_REPS];
    uint32_t requests; /* the last run's block requests */
    uint32_t timeouts; /* all runs' request timeouts */
} cell_t;

/* A generous deadline: one 4 KiB block per round trip three times over, plus a minute. */
static double run_timeout(const row_t *row, size_t bytes)
{
    double blocks = (double)bytes / 4096.0 + 1.0;
    double per_block =
        row->rtt_ms > 0.0 ? row->rtt_ms / 1e3 + 4096.0 * 8.0 / (row->mbit * 1e6) : 0.001;
    return 60.0 + 3.0 * blocks * per_block;
}

/* An emulator with the row's settings in front of 127.0.0.1:port. */
static link_emu_t *emulate(const row_t *row, int port, unsigned seed)
{
    link_emu_config_t lc;
    link_emu_t *emu = NULL;
    memset(&lc, 0, sizeof lc);
    lc.target_host = "127.0.0.1";
    lc.target_port = port;
    lc.up.delay_ms = lc.down.delay_ms = row->rtt_ms / 2.0;
    lc.up.rate_bps = lc.down.rate_bps = row->mbit * 1e6;
    lc.seed = seed;
    return link_emu_start(&lc, &emu) == 0 ? emu : NULL;
}

/* One download of the job offered to thing, over the row's links. */
static int run_one(bench_env_t *env, const row_t *row, unsigned seed, const char *thing,
                   size_t bytes, bench_device_run_t *r)
{
    ota_mqtt_mosquitto_config_t mc;
    ota_test_login_t login;
    link_emu_t *broker_emu = NULL, *http_emu = NULL;
    int rc = -1;
    if (bench_env_login(env, thing, &login) != 0) {
        return -1;
    }
    memset(&mc, 0, sizeof mc);
    mc.host = "127.0.0.1";
    mc.port = env->broker.port;
    mc.client_id = login.client_id;
    mc.username = login.username;
    mc.password = login.password;
    bench_device_http_via(0);
    if (row->rtt_ms > 0.0) {
        broker_emu = emulate(row, env->broker.port, seed);
        http_emu = emulate(row, env->http_port, seed + 100u);
        if (broker_emu == NULL || http_emu == NULL) {
            goto out;
        }
        mc.port = link_emu_port(broker_emu);
        bench_device_http_via(link_emu_port(http_emu));
    }
    rc = bench_device_download(&mc, thing, 0u, 0u, run_timeout(row, bytes), r);
out:
    if (broker_emu != NULL) {
        link_emu_stop(broker_emu);
    }
    if (http_emu != NULL) {
        link_emu_stop(http_emu);
    }
    return rc;
}

/* The run delivered every block over the plane asked for, none over the other. */
static int on_plane(const bench_device_run_t *r, int plane)
{
    uint32_t want = plane == HTTP ? r->stats.bytes_http : r->stats.bytes_mqtt;
    uint32_t other = plane == HTTP ? r->stats.bytes_mqtt : r->stats.bytes_http;
    if (want == 0u || other != 0u || r->stats.failovers != 0u) {
        fprintf(stderr, "bench: %s run: mqtt=%u http=%u bytes of blocks, %u failovers\n",
                plane_name[plane], (unsigned)r->stats.bytes_mqtt, (unsigned)r->stats.bytes_http,
                (unsigned)r->stats.failovers);
        return 0;
    }
    return 1;
}

static void row_name(const row_t *row, char *out, size_t cap)
{
    if (row->rtt_ms > 0.0) {
        snprintf(out, cap, "RTT %.0f ms, %.0f Mbit/s", row->rtt_ms, row->mbit);
    } else {
        snprintf(out, cap, "loopback");
    }
}

static void print_table(cell_t cells[N_ROWS][2], int reps, size_t file_bytes)
{
    double ratio_100 = 0.0, ratio_loopback = 0.0;
    printf("| link | HTTP time (s) | HTTP MiB/s | MQTT time (s) | MQTT MiB/s | goodput HTTP/MQTT "
           "| HTTP of link rate | MQTT of link rate | requests HTTP / MQTT | timeouts |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (size_t i = 0; i < N_ROWS; i++) {
        double t[2], g[2];
        char name[64], share[2][16];
        for (int p = 0; p < 2; p++) {
            t[p] = bench_quantile(cells[i][p].time_s, (size_t)reps, 0.5);
            g[p] = (double)file_bytes / MIB / t[p];
            if (rows[i].rtt_ms > 0.0) {
                snprintf(share[p], sizeof share[p], "%.0f %%",
                         100.0 * (double)file_bytes * 8.0 / t[p] / (rows[i].mbit * 1e6));
            } else {
                snprintf(share[p], sizeof share[p], "-");
            }
        }
        if (rows[i].rtt_ms == 100.0) {
            ratio_100 = g[HTTP] / g[MQTT];
        } else if (rows[i].rtt_ms == 0.0) {
            ratio_loopback = g[HTTP] / g[MQTT];
        }
        row_name(&rows[i], name, sizeof name);
        printf("| %s | %.3f | %.2f | %.3f | %.2f | %.2f | %s | %s | %u / %u | %u |\n", name,
               t[HTTP], g[HTTP], t[MQTT], g[MQTT], g[HTTP] / g[MQTT], share[HTTP], share[MQTT],
               (unsigned)cells[i][HTTP].requests, (unsigned)cells[i][MQTT].requests,
               (unsigned)(cells[i][HTTP].timeouts + cells[i][MQTT].timeouts));
    }
    printf("\n");
    printf("- Medians of %d runs per cell, the two planes alternating which goes first. One "
           "device, built with the HTTP data plane (`ota_agent_http`), default settings (4 KiB "
           "blocks, default window); HTTP: a job created with `--protocols HTTP,MQTT`, served by "
           "otter-http from the presigned URL in the job document; MQTT: a job created without "
           "`--protocols`, MQTT streams. Every HTTP run took all its blocks over HTTP and every "
           "MQTT run over MQTT (no failover).\n",
           reps);
    printf("- Time runs from the agent accepting the job document to the port having verified "
           "the signature; image as served: %zu bytes. The link emulator stands in front of the "
           "broker and of otter-http, each direction with the row's one-way delay and rate; link "
           "rate is TCP payload. The device reads the HTTP stream in `ota_agent_poll()` whenever "
           "its socket is readable.\n",
           file_bytes);
    printf("- Requests: the agent's block requests (HTTP: ranged GETs) in the last run.\n");
    printf("\nheadline: HTTP data plane beside MQTT streams (one device, same run): %.2fx the "
           "goodput on loopback, %.2fx at RTT 100 ms, 10 Mbit/s\n",
           ratio_loopback, ratio_100);
}

int main(int argc, char **argv)
{
    static cell_t cells[N_ROWS][2];
    static const row_t quick_rows[] = {{0.0, 0.0}, {20.0, 10.0}};
    unsigned image_kib = 1024u;
    int reps = 3, quick = 0, rc = 1;
    size_t n_rows = N_ROWS, file_bytes = 0;
    bench_env_t env;
    uint8_t *firmware;
    unsigned runs = 0;
    char thing[64], job[64], name[64];

    if (bench_parse_args(argc, argv, "bench_http", &image_kib, &reps, MAX_REPS, &quick) != 0) {
        return 2;
    }
    if (quick) {
        image_kib = 64u;
        reps = 1;
        n_rows = 2;
    }
    firmware = bench_firmware(image_kib * KIB);
    if (firmware == NULL) {
        return 1;
    }
    if (bench_env_start(&env) != 0) {
        free(firmware);
        return 1;
    }
    if (bench_env_add_things(&env, "http-", (unsigned)(n_rows * 2u) * (unsigned)reps, NULL) != 0 ||
        bench_env_start_http(&env) != 0 || bench_env_start_services(&env, 1) != 0) {
        goto out;
    }
    for (size_t i = 0; i < n_rows; i++) {
        const row_t *row = quick ? &quick_rows[i] : &rows[i];
        row_name(row, name, sizeof name);
        for (int k = 0; k < reps; k++) {
            for (int j = 0; j < 2; j++) {
                int p = (k % 2 == 0) ? j : 1 - j;
                bench_device_run_t r;
                snprintf(thing, sizeof thing, "http-%u", runs);
                snprintf(job, sizeof job, "http-job-%u", runs);
                runs++;
                env.protocols = plane_protocols[p];
                if (bench_env_create_job(&env, job, thing, firmware, image_kib * KIB, "1.1.0") !=
                        0 ||
                    run_one(&env, row, (unsigned)(i + 1u), thing, image_kib * KIB, &r) != 0 ||
                    !on_plane(&r, p)) {
                    fprintf(stderr, "bench: download over %s failed (%s)\n", plane_name[p], name);
                    goto out;
                }
                file_bytes = r.file_size;
                cells[i][p].time_s[k] = r.verified - r.start;
                cells[i][p].requests = r.stats.requests;
                cells[i][p].timeouts += r.stats.timeouts;
                if (quick) {
                    printf("%s, %s: verified, %u bytes of blocks over HTTP, %u over MQTT\n", name,
                           plane_name[p], (unsigned)r.stats.bytes_http,
                           (unsigned)r.stats.bytes_mqtt);
                }
            }
        }
    }
    if (!quick) {
        printf("## 6. The HTTP data plane beside MQTT: %.2f MiB image, one device\n\n",
               (double)file_bytes / MIB);
        print_table(cells, reps, file_bytes);
    }
    rc = 0;
out:
    bench_env_stop(&env);
    free(firmware);
    return rc;
}
