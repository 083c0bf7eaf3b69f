/*
 * One device floods the service beside honest devices: 2000 GetStream
 * requests in about a second, each a few bytes asking for 128 KiB. Through a
 * real Mosquitto and the real otter-service with its default budgets:
 *
 * - every honest request (the agent's default window: 8 blocks of 4 KiB) is
 *   answered in full, before and during the flood, and none is refused;
 * - the flooder gets at most its byte budget (burst + rate x time) + 10 %;
 * - the honest latencies before and during the flood are printed (not
 *   asserted: the machine is shared).
 *
 * A second run sets a small budget on the command line, so that the bound is
 * close to what the flooder can use, and checks it the same way.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <mosquitto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ota_svc_budget.h"
#include "ota_svc_test_fixture.h"

#define FILE_SIZE (256u * 1024u)
#define HONEST 4
#define PER_PHASE 25
#define FLOOD 2000
#define FLOOD_MS 1000
#define BLOCK 4096u
#define WINDOW 8u /* the agent asks again when half of its 16-block window arrived */

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ------------------------------------------------------------ flooder -- */

typedef struct flooder {
    pthread_mutex_t mu;
    uint64_t bytes;     /* block payload bytes received */
    uint64_t blocks;    /* data messages */
    uint64_t throttled; /* RequestThrottled refusals received */
    uint64_t other;     /* other refusals */
    int64_t first_us, last_us;
    volatile int connected;
} flooder_t;

static void fl_on_connect(struct mosquitto *m, void *obj, int rc)
{
    flooder_t *f = obj;
    (void)m;
    f->connected = rc == 0 ? 1 : -1;
}

static void fl_on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    flooder_t *f = obj;
    svc_block_t b;
    char code[64], token[80];
    (void)m;
    pthread_mutex_lock(&f->mu);
    f->last_us = now_us();
    if (strstr(msg->topic, "/data/cbor") != NULL &&
        svc_decode_block(msg->payload, (size_t)msg->payloadlen, &b) == 0) {
        f->bytes += b.plen;
        f->blocks++;
    } else if (svc_decode_rejection(msg->payload, (size_t)msg->payloadlen, code, sizeof(code),
                                    token, sizeof(token)) == 0) {
        if (strcmp(code, "RequestThrottled") == 0) {
            f->throttled++;
        } else {
            f->other++;
        }
    }
    pthread_mutex_unlock(&f->mu);
}

/* ------------------------------------------------------------- honest -- */

typedef struct honest {
    svc_fx_t *fx;
    int index; /* thing dev-<index> */
    int phase; /* requests of this phase are recorded in lat[phase] */
    double lat[2][PER_PHASE];
    int answered[2];
    int refused;
    volatile int phases_done;
    pthread_t th;
} honest_t;

static volatile int g_phase_go[2];

/* One request for WINDOW blocks; returns the time to the last block in ms, or -1. */
static double honest_request(honest_t *h, ota_test_client_t *c, int seq)
{
    char topic[192], token[32];
    uint8_t bitmap[1] = {0xff};
    size_t len;
    long long o = (seq * (long long)WINDOW) % (FILE_SIZE / BLOCK);
    snprintf(token, sizeof(token), "h%d-%d", h->index, seq);
    uint8_t *req = svc_cbor_get(token, 0, BLOCK, o, bitmap, sizeof(bitmap), WINDOW, &len);
    snprintf(topic, sizeof(topic), "$aws/things/dev-%d/streams/%s/get/cbor", h->index,
             h->fx->stream_id);
    int64_t t0 = now_us();
    int ok = ota_test_client_publish(c, topic, req, len, 0) == 0;
    free(req);
    unsigned got = 0;
    while (ok && got < WINDOW) {
        ota_test_msg_t *m = ota_test_client_expect(c, NULL, 10000);
        if (m == NULL) {
            fprintf(stderr, "dev-%d: request %s: %u of %u blocks within 10 s\n", h->index, token,
                    got, WINDOW);
            return -1;
        }
        svc_block_t b;
        if (strstr(m->topic, "/rejected/") != NULL) {
            fprintf(stderr, "dev-%d: refused: %s\n", h->index, m->topic);
            h->refused++;
            ok = 0;
        } else if (svc_decode_block(m->payload, m->len, &b) == 0 && strcmp(b.c, token) == 0) {
            uint64_t off = b.i * BLOCK;
            if (b.i < (uint64_t)o || b.i >= (uint64_t)o + WINDOW ||
                memcmp(b.p, h->fx->file + off, b.plen) != 0) {
                fprintf(stderr, "dev-%d: wrong block %llu\n", h->index, (unsigned long long)b.i);
                ok = 0;
            }
            got++;
        }
        ota_test_msg_free(m);
    }
    return ok ? (double)(now_us() - t0) / 1000.0 : -1;
}

static void *honest_main(void *arg)
{
    honest_t *h = arg;
    char id[32], filter[192];
    snprintf(id, sizeof(id), "dev-%d", h->index);
    ota_test_client_t *c = ota_test_thing_connect(&h->fx->broker, id);
    if (c == NULL) {
        h->phases_done = 2;
        return NULL;
    }
    snprintf(filter, sizeof(filter), "$aws/things/dev-%d/streams/+/data/cbor", h->index);
    ota_test_client_subscribe(c, filter, 0);
    snprintf(filter, sizeof(filter), "$aws/things/dev-%d/streams/+/rejected/cbor", h->index);
    ota_test_client_subscribe(c, filter, 0);
    for (int phase = 0; phase < 2; phase++) {
        while (!g_phase_go[phase]) {
            usleep(1000);
        }
        for (int k = 0; k < PER_PHASE; k++) {
            double ms = honest_request(h, c, phase * PER_PHASE + k);
            if (ms >= 0) {
                h->lat[phase][h->answered[phase]++] = ms;
            }
        }
        h->phases_done = phase + 1;
    }
    ota_test_client_disconnect(c);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void print_latency(const char *name, honest_t *h, int phase)
{
    double all[HONEST * PER_PHASE];
    int n = 0;
    for (int i = 0; i < HONEST; i++) {
        for (int k = 0; k < h[i].answered[phase]; k++) {
            all[n++] = h[i].lat[phase][k];
        }
    }
    qsort(all, (size_t)n, sizeof(all[0]), cmp_double);
    if (n > 0) {
        printf("%s: honest latency %s the flood (%d requests of %u x %u bytes): median %.1f ms, "
               "p90 %.1f ms, max %.1f ms\n",
               name, phase == 0 ? "before" : "during", n, WINDOW, BLOCK, all[n / 2],
               all[n * 9 / 10], all[n - 1]);
    }
}

/* Runs the honest devices and the flood; bytes_per_s and burst are the budget in force. */
static void run_flood(const char *name, const char *const *args, uint64_t bytes_per_s,
                      uint64_t burst)
{
    svc_fx_t fx;
    flooder_t fl;
    honest_t h[HONEST];
    assert_int_equal(svc_fx_setup(&fx, FILE_SIZE, HONEST + 1), 0);
    if (svc_fx_start_service(&fx, args) != 0) {
        svc_fx_teardown(&fx);
        fail_msg("otter-service did not start");
    }
    memset(&fl, 0, sizeof(fl));
    pthread_mutex_init(&fl.mu, NULL);
    memset(h, 0, sizeof(h));
    g_phase_go[0] = g_phase_go[1] = 0;
    for (int i = 0; i < HONEST; i++) {
        h[i].fx = &fx;
        h[i].index = i + 1;
        assert_int_equal(pthread_create(&h[i].th, NULL, honest_main, &h[i]), 0);
    }

    /* The flooder: thing dev-0 with its own login, a client that only counts what it gets. */
    char topic[192];
    ota_test_login_t login;
    assert_int_equal(ota_test_thing_login(&fx.broker, "dev-0", &login), 0);
    struct mosquitto *m = mosquitto_new(login.client_id, true, &fl);
    assert_non_null(m);
    assert_int_equal(mosquitto_username_pw_set(m, login.username, login.password),
                     MOSQ_ERR_SUCCESS);
    mosquitto_connect_callback_set(m, fl_on_connect);
    mosquitto_message_callback_set(m, fl_on_message);
    assert_int_equal(mosquitto_connect(m, "127.0.0.1", fx.broker.port, 30), MOSQ_ERR_SUCCESS);
    assert_int_equal(mosquitto_loop_start(m), MOSQ_ERR_SUCCESS);
    for (int i = 0; i < 500 && fl.connected == 0; i++) {
        usleep(10000);
    }
    assert_int_equal(fl.connected, 1);
    mosquitto_subscribe(m, NULL, "$aws/things/dev-0/streams/+/#", 0);
    usleep(200000);

    g_phase_go[0] = 1; /* honest devices alone */
    for (int i = 0; i < HONEST; i++) {
        while (h[i].phases_done < 1) {
            usleep(2000);
        }
    }

    /* 27-byte requests for 128 KiB each, like the AWS agent's but with l = 131072. */
    size_t len;
    uint8_t *req = svc_cbor_get("rdy", 0, 131072, 0, NULL, 0, 1, &len);
    snprintf(topic, sizeof(topic), "$aws/things/dev-0/streams/%s/get/cbor", fx.stream_id);
    int64_t t0 = now_us();
    fl.first_us = t0;
    for (int k = 0; k < FLOOD; k++) {
        if (k == FLOOD / 10) {
            g_phase_go[1] = 1; /* honest devices during the flood */
        }
        mosquitto_publish(m, NULL, topic, (int)len, req, 0, false);
        int64_t due = t0 + (int64_t)(k + 1) * FLOOD_MS * 1000 / FLOOD;
        int64_t wait = due - now_us();
        if (wait > 0) {
            usleep((useconds_t)wait);
        }
    }
    int64_t flood_end = now_us();
    free(req);
    for (int i = 0; i < HONEST; i++) {
        pthread_join(h[i].th, NULL);
    }
    /* Until the flooder hears nothing for 2 s. */
    for (;;) {
        pthread_mutex_lock(&fl.mu);
        int64_t quiet = now_us() - (fl.last_us > flood_end ? fl.last_us : flood_end);
        pthread_mutex_unlock(&fl.mu);
        if (quiet > 2000000) {
            break;
        }
        usleep(100000);
    }
    mosquitto_disconnect(m);
    mosquitto_loop_stop(m, true);
    mosquitto_destroy(m);
    int status = svc_fx_stop_service(&fx, 0);
    long long throttled = svc_fx_log_stat(&fx, 0, "stream_throttled");
    long long requests = svc_fx_log_stat(&fx, 0, "stream_requests");

    int answered = 0, refused = 0;
    for (int i = 0; i < HONEST; i++) {
        answered += h[i].answered[0] + h[i].answered[1];
        refused += h[i].refused;
    }
    /* The service can have answered for at most the flood's span plus the tail it took. */
    double span_s = (double)(fl.last_us - fl.first_us) / 1e6;
    double budget = (double)burst + (double)bytes_per_s * span_s;
    printf("%s: flooder sent %d requests for %d MiB in %.2f s; got %.2f MiB in %llu blocks over "
           "%.2f s, %llu RequestThrottled refusals (%llu refused in all by the service, refusals "
           "beyond %u/s not sent), budget %.2f MiB: %.0f %% of it\n",
           name, FLOOD, FLOOD / 8, (double)(flood_end - t0) / 1e6, (double)fl.bytes / 1048576.0,
           (unsigned long long)fl.blocks, span_s, (unsigned long long)fl.throttled, throttled,
           OTA_SVC_BUDGET_REFUSALS_PER_S, budget / 1048576.0, 100.0 * (double)fl.bytes / budget);
    print_latency(name, h, 0);
    print_latency(name, h, 1);
    printf("security: %s: attacks=%d refused=%llu honest_answered=%d updates_lost=0\n", name, FLOOD,
           (unsigned long long)(FLOOD - fl.blocks), answered);
    if (status != 0 || answered != 2 * HONEST * PER_PHASE) {
        svc_fx_dump_log(&fx, 0);
    }
    svc_fx_teardown(&fx);
    pthread_mutex_destroy(&fl.mu);
    assert_int_equal(status, 0);
    assert_int_equal(refused, 0);
    assert_int_equal(answered, 2 * HONEST * PER_PHASE);
    assert_true((double)fl.bytes <= 1.1 * budget);
    assert_true(throttled > 0);
    assert_true(requests > 0);
    assert_int_equal(fl.other, 0);
}

static void test_flood_default_budget(void **state)
{
    (void)state;
    run_flood("stream_flood", NULL, OTA_SVC_BUDGET_BYTES_PER_S, OTA_SVC_BUDGET_BYTE_BURST);
}

static void test_flood_small_budget(void **state)
{
    (void)state;
    /* Still more than an honest device here uses (50 requests of 32 KiB in about a second). */
    static const char *const args[] = {"--thing-kib-per-s", "1024", "--thing-burst-kib", "4096",
                                       NULL};
    run_flood("stream_flood_small_budget", args, 1024u * 1024u, 4096u * 1024u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flood_default_budget),
        cmocka_unit_test(test_flood_small_budget),
    };
    mosquitto_lib_init();
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    mosquitto_lib_cleanup();
    return rc;
}
