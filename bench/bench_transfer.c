/*
 * otter benchmark 1: one device, one update, against the broker's own limit.
 *
 *   bench_transfer [--image-kib N] [--reps R] [--quick]
 *
 * A simulated device (the agent over the libmosquitto binding, on the
 * simulated NOR flash port with real ECDSA P-256 verification) downloads and
 * verifies an N KiB image (default 1024) from otter-service over Mosquitto on
 * loopback, for block sizes 1, 4 and 16 KiB and windows of 1, 4 and 16 blocks
 * and the agent's default. The time runs from the agent accepting the job
 * document to the port having verified the file's signature.
 *
 * Beside each download, in the same run, the broker's own limit: the same
 * number of bytes, in messages of the size the device received, published
 * by one client to another that only counts them (both QoS 0, as the stream
 * data is). Downloads and limit runs alternate, R times each (default 3);
 * the table gives the medians and the ratio of the two.
 *
 * --quick runs one small download per block size and checks it completes
 * (a smoke test: it asserts completion, not speed).
 */
#define _GNU_SOURCE
#include <mosquitto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_env.h"
#include "flashsim_device.h"
#include "otter/ota_agent.h"
#include "ota_mqtt_mosquitto.h"
#include "ota_test_image.h"

#define KIB 1024u
#define MIB (1024.0 * 1024.0)
#define V1_0_0 0x01000000u
#define MAX_REPS 15
#define RUN_TIMEOUT_S 120.0

static const uint32_t block_sizes[] = {1024u, 4096u, 16384u};
static const uint32_t windows[] = {1u, 4u, 16u, 0u}; /* 0: the agent's default */
#define N_BLOCKS (sizeof block_sizes / sizeof block_sizes[0])
#define N_WINDOWS (sizeof windows / sizeof windows[0])

/* ---- the broker's own limit: a publisher and a subscriber that counts ---- */

typedef struct counter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t want;
    size_t got;
    size_t bytes;
    double last;
    int subscribed;
} counter_t;

static void on_count(struct mosquitto *m, void *ctx, const struct mosquitto_message *msg)
{
    counter_t *c = ctx;
    (void)m;
    pthread_mutex_lock(&c->lock);
    c->got++;
    c->bytes += (size_t)msg->payloadlen;
    c->last = bench_now();
    if (c->got >= c->want) {
        pthread_cond_signal(&c->cond);
    }
    pthread_mutex_unlock(&c->lock);
}

static void on_subscribed(struct mosquitto *m, void *ctx, int mid, int n, const int *granted)
{
    counter_t *c = ctx;
    (void)m;
    (void)mid;
    (void)n;
    (void)granted;
    pthread_mutex_lock(&c->lock);
    c->subscribed = 1;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static struct mosquitto *limit_client(int port, const ota_test_login_t *login, void *ctx)
{
    struct mosquitto *m = mosquitto_new(login->client_id, true, ctx);
    /* As the service and the device's binding: no Nagle delay. */
    if (m == NULL || mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1) != MOSQ_ERR_SUCCESS ||
        mosquitto_username_pw_set(m, login->username, login->password) != MOSQ_ERR_SUCCESS ||
        mosquitto_connect(m, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS ||
        mosquitto_loop_start(m) != MOSQ_ERR_SUCCESS) {
        if (m != NULL) {
            mosquitto_destroy(m);
        }
        return NULL;
    }
    return m;
}

/*
 * Seconds to move total bytes in messages of msg_len bytes (the last one
 * shorter) from one client to another through the broker; -1 on failure.
 * *delivered receives the share of the messages that arrived (QoS 0 may drop
 * under overload).
 */
static double broker_limit(const bench_env_t *env, size_t total, size_t msg_len, double *delivered,
                           double cpu[2])
{
    int port = env->broker.port;
    pid_t broker = env->broker.proc.pid;
    ota_test_login_t device, service;
    static const char topic[] = "$aws/things/bench-limit/streams/AFR_OTA-bench/data/cbor";
    counter_t c;
    struct mosquitto *sub, *pub;
    uint8_t *payload = malloc(msg_len);
    size_t n = (total + msg_len - 1u) / msg_len;
    double t0, result = -1.0;

    memset(&c, 0, sizeof c);
    pthread_mutex_init(&c.lock, NULL);
    pthread_cond_init(&c.cond, NULL);
    c.want = n;
    /* A thing receives what the service publishes on its topic, with their logins. */
    sub = pub = NULL;
    if (bench_env_login(env, "bench-limit", &device) == 0 &&
        ota_test_service_login(&env->broker, &service) == 0) {
        snprintf(service.client_id, sizeof service.client_id, "otter-service-bench-limit");
        sub = limit_client(port, &device, &c);
        pub = limit_client(port, &service, NULL);
    }
    if (payload == NULL || sub == NULL || pub == NULL) {
        fprintf(stderr, "bench: cannot connect the limit clients\n");
        goto out;
    }
    memset(payload, 0xa5, msg_len);
    mosquitto_message_callback_set(sub, on_count);
    mosquitto_subscribe_callback_set(sub, on_subscribed);
    if (mosquitto_subscribe(sub, NULL, topic, 0) != MOSQ_ERR_SUCCESS) {
        goto out;
    }
    pthread_mutex_lock(&c.lock);
    while (!c.subscribed) {
        pthread_cond_wait(&c.cond, &c.lock);
    }
    pthread_mutex_unlock(&c.lock);

    cpu[0] = -bench_env_cpu_seconds(broker);
    cpu[1] = -bench_env_cpu_seconds(getpid());
    t0 = bench_now();
    for (size_t i = 0; i < n; i++) {
        size_t len = i + 1u < n ? msg_len : total - (n - 1u) * msg_len;
        if (mosquitto_publish(pub, NULL, topic, (int)len, payload, 0, false) != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "bench: limit publish failed\n");
            goto out;
        }
    }
    /* Wait for every message, or for a second without any. */
    pthread_mutex_lock(&c.lock);
    for (;;) {
        struct timespec ts;
        size_t before = c.got;
        if (c.got >= c.want) {
            break;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&c.cond, &c.lock, &ts);
        if (c.got == before && c.got < c.want) {
            break;
        }
    }
    *delivered = (double)c.got / (double)n;
    result = c.got > 0u ? c.last - t0 : -1.0;
    pthread_mutex_unlock(&c.lock);
    cpu[0] += bench_env_cpu_seconds(broker);
    cpu[1] += bench_env_cpu_seconds(getpid());
out:
    if (sub != NULL) {
        mosquitto_disconnect(sub);
        mosquitto_loop_stop(sub, false);
        mosquitto_destroy(sub);
    }
    if (pub != NULL) {
        mosquitto_disconnect(pub);
        mosquitto_loop_stop(pub, false);
        mosquitto_destroy(pub);
    }
    pthread_cond_destroy(&c.cond);
    pthread_mutex_destroy(&c.lock);
    free(payload);
    return result;
}

/* ---- one download by a simulated device ---- */

typedef struct run {
    double start;     /* the job document was accepted */
    double verified;  /* the port verified the file */
    double last_data; /* the last stream data message arrived */
    int failed;
    uint32_t file_size;  /* bytes downloaded (the image with its header) */
    uint32_t window;     /* blocks in flight the agent used */
    size_t data_msg_len; /* largest stream data message received */
    size_t data_bytes;   /* all stream data messages received, bytes */
    double cpu[3];       /* CPU seconds of the broker, the service and the device */
    ota_agent_stats_t stats;
} run_t;

static void cb_job(void *ctx, const ota_job_t *job)
{
    run_t *r = ctx;
    r->start = bench_now();
    r->file_size = job->file_size;
}

static void cb_activate(void *ctx, const ota_job_t *job)
{
    run_t *r = ctx;
    (void)job;
    r->verified = bench_now();
}

static void cb_outcome(void *ctx, const ota_agent_outcome_t *o)
{
    run_t *r = ctx;
    fprintf(stderr, "bench: the job ended %d: %s %s\n", (int)o->status, o->reason, o->detail);
    r->failed = 1;
}

static void cb_message(void *ctx, const char *topic, const uint8_t *payload, size_t len)
{
    run_t *r = ctx;
    (void)payload;
    if (strstr(topic, "/data/cbor") != NULL) {
        r->last_data = bench_now();
        r->data_bytes += len;
        if (len > r->data_msg_len) {
            r->data_msg_len = len;
        }
    }
}

/* The simulated device: 4 MiB of NOR flash in 4 KiB sectors, write unit 8. */
static const flashsim_variant_t device_flash = {{4u * 1024u * KIB, 4u * KIB, NULL, 0, 8, 0xff},
                                                {{0, 0}, 0, {0, 0}, {0, 0}, 0}};

static int download(bench_env_t *env, const char *thing, uint32_t block, uint32_t window, run_t *r)
{
    static uint8_t factory[4096];
    flashsim_device_t *dev = calloc(1, sizeof *dev);
    ota_mqtt_mosquitto_t *b = calloc(1, sizeof *b);
    ota_agent_t *agent = calloc(1, sizeof *agent);
    ota_mqtt_mosquitto_config_t mc;
    ota_agent_config_t ac;
    ota_pal_t pal;
    int rc = -1;
    double deadline;

    memset(r, 0, sizeof *r);
    ota_test_image_make(factory, sizeof factory, V1_0_0, 1u);
    if (dev == NULL || b == NULL || agent == NULL ||
        flashsim_device_create(dev, &device_flash, factory, sizeof factory) != 0 ||
        flashsim_device_boot(dev, &pal) != OTA_OK) {
        fprintf(stderr, "bench: cannot make the simulated device\n");
        goto out;
    }
    memset(&mc, 0, sizeof mc);
    mc.host = "127.0.0.1";
    mc.port = env->broker.port;
    ota_test_login_t login;
    if (bench_env_login(env, thing, &login) != 0) {
        goto out;
    }
    mc.client_id = login.client_id;
    mc.username = login.username;
    mc.password = login.password;
    mc.on_message = cb_message;
    mc.ctx = r;
    if (ota_mqtt_mosquitto_init(b, &mc) != OTA_OK) {
        fprintf(stderr, "bench: the device cannot connect\n");
        goto out;
    }
    memset(&ac, 0, sizeof ac);
    ac.thing_name = thing;
    ac.app_version = V1_0_0;
    ac.pal = &pal;
    ac.mqtt = ota_mqtt_mosquitto_interface(b);
    ac.callbacks.ctx = r;
    ac.callbacks.job_received = cb_job;
    ac.callbacks.verified = cb_activate;
    ac.callbacks.outcome = cb_outcome;

    ac.block_size = block;
    ac.window_blocks = window;
    if (ota_agent_init(agent, &ac) != OTA_OK || ota_mqtt_mosquitto_attach(b, agent) != OTA_OK ||
        ota_agent_start(agent, ota_mqtt_mosquitto_now_ms()) != OTA_OK) {
        fprintf(stderr, "bench: the agent does not start\n");
        goto cleanup;
    }
    r->window = ota_agent_get_stats(agent)->window_blocks;
    r->cpu[0] = -bench_env_cpu_seconds(env->broker.proc.pid);
    r->cpu[1] = -bench_env_cpu_seconds(env->service[0].pid);
    r->cpu[2] = -bench_env_cpu_seconds(getpid());
    deadline = bench_now() + RUN_TIMEOUT_S;
    while (r->verified == 0.0 && !r->failed && bench_now() < deadline) {
        ota_mqtt_mosquitto_run_once(b, 10);
    }
    r->cpu[0] += bench_env_cpu_seconds(env->broker.proc.pid);
    r->cpu[1] += bench_env_cpu_seconds(env->service[0].pid);
    r->cpu[2] += bench_env_cpu_seconds(getpid());
    r->stats = *ota_agent_get_stats(agent);
    if (r->verified != 0.0) {
        rc = 0;
    } else if (!r->failed) {
        fprintf(stderr, "bench: %s: no verified download within %.0f s\n", thing, RUN_TIMEOUT_S);
    }
    (void)ota_agent_stop(agent);
cleanup:
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

/* ---- the table ---- */

typedef struct cell {
    double ota_s[MAX_REPS];
    double close_s[MAX_REPS]; /* from the last block to the verified file */
    double cpu[5][MAX_REPS];  /* download: broker, service, device; limit: broker, clients */
    double limit_s[MAX_REPS];
    double delivered_min;
    uint32_t requests;
    uint32_t timeouts;
    uint32_t duplicates;
    uint32_t window; /* blocks in flight the agent used */
} cell_t;

/* Where the time of a configuration that missed its target goes (the CPU table's medians). */
static void print_where(const char *what, cell_t *c, int reps, size_t image_bytes)
{
    double mib = (double)image_bytes / MIB, v[5];
    double wall = bench_quantile(c->ota_s, (size_t)reps, 0.5) * 1e3 / mib;
    double cores = (double)sysconf(_SC_NPROCESSORS_ONLN);
    for (int x = 0; x < 5; x++) {
        v[x] = bench_quantile(c->cpu[x], (size_t)reps, 0.5) * 1e3 / mib;
    }
    printf("\n- Missed: %s. Where its time goes, CPU ms per MiB (medians): broker %.1f, service "
           "%.1f, device %.1f, in %.1f ms of wall time per MiB; the broker moving the same bytes "
           "alone: broker %.1f, clients %.1f, in %.1f. The download's processes used %.0f %% of "
           "the cores' time: %s.\n",
           what, v[0], v[1], v[2], wall, v[3], v[4],
           bench_quantile(c->limit_s, (size_t)reps, 0.5) * 1e3 / mib,
           (v[0] + v[1] + v[2]) / (wall * cores) * 100.0,
           v[0] + v[1] + v[2] >= 0.9 * wall * cores
               ? "the CPU is the limit"
               : "the rest of the time they waited for each other (round trips between the "
                 "device, broker and service) or for other processes on the machine");
}

static void print_table(cell_t cells[N_BLOCKS][N_WINDOWS], int reps, size_t image_bytes)
{
    double best = 0.0, def = 0.0, best_lo = 0.0, best_hi = 0.0, def_lo = 0.0, def_hi = 0.0;
    uint32_t best_block = 0, best_window = 0, duplicates = 0;
    double delivered_min = 1.0;
    cell_t *def_cell = NULL, *best_cell = NULL;
    printf("| block | window | in flight | time (ms) | of which after the last block (ms) | MiB/s "
           "| broker limit (MiB/s) | ratio to limit | round trips per MiB | timeouts |\n");
    printf("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (size_t i = 0; i < N_BLOCKS; i++) {
        /* One limit per block size: every window's runs move the same messages. */
        double pooled[N_WINDOWS * MAX_REPS];
        size_t n = 0;
        for (size_t j = 0; j < N_WINDOWS; j++) {
            for (int k = 0; k < reps; k++) {
                pooled[n++] = cells[i][j].limit_s[k];
            }
        }
        double lim = bench_quantile(pooled, n, 0.5);
        for (size_t j = 0; j < N_WINDOWS; j++) {
            cell_t *c = &cells[i][j];
            double ota = bench_quantile(c->ota_s, (size_t)reps, 0.5);
            double close = bench_quantile(c->close_s, (size_t)reps, 0.5);
            double ratio = lim / ota;
            char win[32];
            if (windows[j] == 0u) {
                snprintf(win, sizeof win, "default (%u)", c->window);
            } else {
                snprintf(win, sizeof win, "%u", windows[j]);
            }
            duplicates += c->duplicates;
            if (c->delivered_min < delivered_min) {
                delivered_min = c->delivered_min;
            }
            printf("| %u KiB | %s | %u KiB | %.1f | %.1f | %.1f | %.1f | %.0f %% | %.0f | %u |\n",
                   block_sizes[i] / KIB, win, c->window * block_sizes[i] / KIB, ota * 1e3,
                   close * 1e3, (double)image_bytes / MIB / ota, (double)image_bytes / MIB / lim,
                   ratio * 100.0, (double)c->requests / ((double)image_bytes / MIB), c->timeouts);
            /* ota_s is sorted now: the range of the per-run ratios. */
            double lo = lim / c->ota_s[reps - 1], hi = lim / c->ota_s[0];
            if (ratio > best) {
                best = ratio;
                best_lo = lo;
                best_hi = hi;
                best_block = block_sizes[i];
                best_window = c->window;
                best_cell = c;
            }
            if (windows[j] == 0u && block_sizes[i] == 4096u) {
                def = ratio;
                def_lo = lo;
                def_hi = hi;
                def_cell = c;
            }
        }
    }
    printf("\n- Medians of %d runs each, downloads and broker-limit runs alternating. Time runs "
           "from the agent accepting the job document to the port having verified the "
           "signature; \"after the last block\" is the part of it spent once the last block "
           "arrived (the rest of the hash when blocks came out of order, the ECDSA check).\n",
           reps);
    printf("- Broker limit: the same bytes in messages of the size the device received, from "
           "one client to another that only counts them, QoS 0 (as the stream data); one run "
           "beside each download, and the median of all runs of a block size (%d) is its "
           "limit.\n",
           reps * (int)N_WINDOWS);
    printf("- Round trips are the agent's block requests (the last run's); a window larger "
           "than 128 KiB takes several requests. At 4 KiB, \"16\" and \"default\" are the same "
           "configuration measured twice: their difference is this machine's noise.\n");
    printf("- Blocks received twice in all downloads: %u. Limit runs: %s.\n", duplicates,
           delivered_min >= 1.0 ? "every message arrived"
                                : "QoS 0 dropped messages in some (their limit is too high)");
    printf("\nWhere the time goes: CPU time during the same runs, ms per MiB (medians; all "
           "threads of each process, from /proc/PID/task/*/schedstat). The device is this "
           "program during a download: the MQTT client's network thread and the thread that "
           "runs the agent, the flash port and the signature check. Wall is the elapsed time; "
           "the machine has %ld cores.\n\n",
           sysconf(_SC_NPROCESSORS_ONLN));
    printf("| block | window | download: broker | service | device | all | wall | broker limit "
           "run: broker | clients | all | wall |\n");
    printf("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (size_t i = 0; i < N_BLOCKS; i++) {
        for (size_t j = 0; j < N_WINDOWS; j++) {
            cell_t *c = &cells[i][j];
            double mib = (double)image_bytes / MIB;
            double v[5], dl_all[MAX_REPS], lim_all[MAX_REPS];
            char win[16];
            if (windows[j] == 0u) {
                snprintf(win, sizeof win, "default");
            } else {
                snprintf(win, sizeof win, "%u", windows[j]);
            }
            for (int k = 0; k < reps; k++) { /* before the quantiles sort each column */
                dl_all[k] = c->cpu[0][k] + c->cpu[1][k] + c->cpu[2][k];
                lim_all[k] = c->cpu[3][k] + c->cpu[4][k];
            }
            for (int x = 0; x < 5; x++) {
                v[x] = bench_quantile(c->cpu[x], (size_t)reps, 0.5) * 1e3 / mib;
            }
            printf("| %u KiB | %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f "
                   "|\n",
                   block_sizes[i] / KIB, win, v[0], v[1], v[2],
                   bench_quantile(dl_all, (size_t)reps, 0.5) * 1e3 / mib,
                   bench_quantile(c->ota_s, (size_t)reps, 0.5) * 1e3 / mib, v[3], v[4],
                   bench_quantile(lim_all, (size_t)reps, 0.5) * 1e3 / mib,
                   bench_quantile(c->limit_s, (size_t)reps, 0.5) * 1e3 / mib);
        }
    }
    if (def < 0.5 && def_cell != NULL) {
        print_where("default configuration, target 50 %", def_cell, reps, image_bytes);
    }
    if (best < 0.7 && best_cell != NULL) {
        print_where("best configuration, target 70 %", best_cell, reps, image_bytes);
    }
    printf("\nheadline: default configuration (4 KiB blocks, default window): %.0f %% of the "
           "broker's limit (runs %.0f-%.0f %%; target 50 %%: %s)\n",
           def * 100.0, def_lo * 100.0, def_hi * 100.0, def >= 0.5 ? "met" : "missed");
    printf("headline: best configuration (%u KiB blocks, %u in flight): %.0f %% of the broker's "
           "limit (runs %.0f-%.0f %%; target 70 %%: %s)\n",
           best_block / KIB, best_window, best * 100.0, best_lo * 100.0, best_hi * 100.0,
           best >= 0.7 ? "met" : "missed");
}

int main(int argc, char **argv)
{
    static cell_t cells[N_BLOCKS][N_WINDOWS];
    unsigned image_kib = 1024u;
    int reps = 3, quick = 0, rc = 1;
    bench_env_t env;
    uint8_t *firmware;
    size_t image_bytes = 0;
    unsigned runs = 0;
    char thing[64], job[64];

    if (bench_parse_args(argc, argv, "bench_transfer", &image_kib, &reps, MAX_REPS, &quick) != 0) {
        return 2;
    }
    if (quick) {
        image_kib = 64u;
        reps = 1;
    }
    firmware = bench_firmware(image_kib * KIB);
    if (firmware == NULL) {
        return 1;
    }
    if (bench_env_start(&env) != 0) {
        free(firmware);
        return 1;
    }
    if (bench_env_add_things(&env, "xfer-", (unsigned)(N_BLOCKS * N_WINDOWS) * (unsigned)reps,
                             NULL) != 0 ||
        bench_env_start_services(&env, 1) != 0) {
        goto out;
    }
    for (size_t i = 0; i < N_BLOCKS; i++) {
        for (size_t j = 0; j < N_WINDOWS; j++) {
            cell_t *c = &cells[i][j];
            if (quick && windows[j] != 0u) {
                continue;
            }
            c->delivered_min = 1.0;
            for (int k = 0; k < reps; k++) {
                run_t r;
                double delivered = 0.0, limit_cpu[2] = {0.0, 0.0};
                snprintf(thing, sizeof thing, "xfer-%u", runs);
                snprintf(job, sizeof job, "xfer-job-%u", runs);
                runs++;
                if (bench_env_create_job(&env, job, thing, firmware, image_kib * KIB, "1.1.0") !=
                    0) {
                    goto out;
                }
                if (download(&env, thing, block_sizes[i], windows[j], &r) != 0) {
                    fprintf(stderr, "bench: download failed (block %u, window %u)\n",
                            block_sizes[i], windows[j]);
                    goto out;
                }
                image_bytes = r.file_size;
                c->ota_s[k] = r.verified - r.start;
                c->close_s[k] = r.verified - r.last_data;
                for (int x = 0; x < 3; x++) {
                    c->cpu[x][k] = r.cpu[x];
                }
                c->requests = r.stats.requests;
                c->timeouts += r.stats.timeouts;
                c->duplicates += r.stats.blocks_duplicate;
                c->window = r.window;
                if (quick) {
                    printf("block %u KiB: %.1f ms, %u requests\n", block_sizes[i] / KIB,
                           c->ota_s[k] * 1e3, r.stats.requests);
                    continue;
                }
                c->limit_s[k] =
                    broker_limit(&env, r.data_bytes, r.data_msg_len, &delivered, limit_cpu);
                c->cpu[3][k] = limit_cpu[0];
                c->cpu[4][k] = limit_cpu[1];
                if (c->limit_s[k] <= 0.0) {
                    goto out;
                }
                if (delivered < c->delivered_min) {
                    c->delivered_min = delivered;
                }
            }
        }
    }
    if (!quick) {
        printf("## 1. One device, one update: %.2f MiB image over Mosquitto on loopback\n\n",
               (double)image_bytes / MIB);
        print_table(cells, reps, image_bytes);
    }
    rc = 0;
out:
    bench_env_stop(&env);
    free(firmware);
    return rc;
}
