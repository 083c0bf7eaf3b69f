/*
 * Tests of the link emulator: its measured one-way delay and rate are within
 * 5 % of what it was set to, in each direction; loss and reordering delay a
 * segment as set and keep the byte stream whole and in order; the bottleneck
 * buffer is bounded; connection ends pass through; bad settings are refused.
 *
 * Accuracy is checked on medians of several samples and on rates over
 * multi-second transfers. A loaded machine wakes a thread up to a scheduler
 * tick (4 ms here) late, twice per sample (the emulator's and the reader's),
 * so the delays are a few hundred ms, where 5 % is well above that; the
 * buffers are large enough that a late wake-up does not idle the link; and
 * the emulator keeps its schedule from its own clock, so a late wake-up
 * shifts one write, not the following ones. The delay is also never
 * shorter than set, whatever the load.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "link_emu.h"
#include "ota_test_loopback.h"

#define MS 1e-3
#define SAMPLES 7

/* A listening socket on 127.0.0.1, a free port. */
static int target_listen(int *port)
{
    int fd = ota_test_listen_loopback(port);
    assert_true(fd >= 0);
    return fd;
}

static int connect_to(int port)
{
    int fd = ota_test_connect_loopback(port);
    assert_true(fd >= 0);
    return fd;
}

/* An emulator between a client socket and a server socket. */
typedef struct rig {
    link_emu_t *emu;
    int client;
    int server;
} rig_t;

static void rig_open(rig_t *r, link_emu_config_t *cfg)
{
    int port, lfd = target_listen(&port);
    cfg->target_host = "127.0.0.1";
    cfg->target_port = port;
    assert_int_equal(link_emu_start(cfg, &r->emu), 0);
    r->client = connect_to(link_emu_port(r->emu));
    r->server = accept(lfd, NULL, NULL);
    assert_true(r->server >= 0);
    close(lfd);
}

static void rig_close(rig_t *r)
{
    close(r->client);
    close(r->server);
    link_emu_stop(r->emu);
}

static void read_all(int fd, uint8_t *buf, size_t n)
{
    while (n > 0u) {
        ssize_t got = read(fd, buf, n);
        assert_true(got > 0);
        buf += got;
        n -= (size_t)got;
    }
}

static void write_all(int fd, const uint8_t *buf, size_t n)
{
    while (n > 0u) {
        ssize_t put = write(fd, buf, n);
        assert_true(put > 0);
        buf += put;
        n -= (size_t)put;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One-way time of a len-byte message from fd a to fd b, s. */
static double one_way(int a, int b, size_t len)
{
    uint8_t msg[10000];
    double t0;
    memset(msg, 0x5a, len);
    t0 = link_emu_now();
    write_all(a, msg, len);
    read_all(b, msg, len);
    return link_emu_now() - t0;
}

static void assert_within(double measured, double set, double share, const char *what)
{
    printf("  %s: measured %.2f, set %.2f (%+.2f %%)\n", what, measured, set,
           (measured - set) / set * 100.0);
    assert_true(measured >= set * (1.0 - share) && measured <= set * (1.0 + share));
}

/* The median one-way time of n len-byte messages, up (client to server) or
 * down, is within 5 % of expected_ms, and none took less. */
static void assert_delay(const rig_t *r, int down, size_t len, int n, double expected_ms,
                         const char *what)
{
    double v[SAMPLES];
    assert_true(n <= SAMPLES);
    for (int i = 0; i < n; i++) {
        v[i] = down ? one_way(r->server, r->client, len) : one_way(r->client, r->server, len);
    }
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    assert_within(v[n / 2] / MS, expected_ms, 0.05, what);
    assert_true(v[0] >= expected_ms * MS);
}

static void test_delay_each_direction(void **state)
{
    link_emu_config_t cfg;
    rig_t r;
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.up.delay_ms = 300.0;
    cfg.down.delay_ms = 200.0;
    rig_open(&r, &cfg);
    assert_delay(&r, 0, 32, SAMPLES, 300.0, "up delay (ms)");
    assert_delay(&r, 1, 32, SAMPLES, 200.0, "down delay (ms)");
    /* With a rate, a message also takes its serialization: 10000 bytes at 1 Mbit/s are 80 ms. */
    rig_close(&r);
    cfg.up.delay_ms = 120.0;
    cfg.up.rate_bps = 1e6;
    rig_open(&r, &cfg);
    assert_delay(&r, 0, 10000, 5, 200.0, "up delay of 10000 bytes at 1 Mbit/s (ms)");
    rig_close(&r);
}

/* loss = 1: every segment arrives one round trip (both delays) late; reorder
 * = 1: reorder_ms late (TCP holds those behind it), and is not also lost. */
static void test_late_segments(void **state)
{
    link_emu_config_t cfg;
    link_emu_stats_t st;
    rig_t r;
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.up.delay_ms = 100.0;
    cfg.down.delay_ms = 150.0;
    cfg.loss = 1.0;
    rig_open(&r, &cfg);
    assert_delay(&r, 0, 32, 5, 350.0, "up delay of a lost segment (ms)");
    link_emu_get_stats(r.emu, &st);
    assert_int_equal(st.up.lost, 5);
    assert_int_equal(st.up.segments, 5);
    rig_close(&r);
    cfg.reorder = 1.0;
    cfg.reorder_ms = 150.0;
    rig_open(&r, &cfg);
    assert_delay(&r, 1, 32, 5, 300.0, "down delay of a reordered segment (ms)");
    link_emu_get_stats(r.emu, &st);
    assert_int_equal(st.down.reordered, 5);
    assert_int_equal(st.down.lost, 0);
    rig_close(&r);
}

/* ---- rate: a writer thread per direction, the test thread reads both ---- */

typedef struct writer {
    int fd;
    size_t total;
    int tag;
} writer_t;

static uint8_t pattern(size_t i, int tag)
{
    return (uint8_t)(i * 7u + (size_t)tag * 13u + (i >> 11));
}

static void *writer_run(void *arg)
{
    writer_t *w = arg;
    uint8_t buf[16384];
    size_t sent = 0;
    while (sent < w->total) {
        size_t n = w->total - sent < sizeof buf ? w->total - sent : sizeof buf;
        ssize_t put;
        for (size_t i = 0; i < n; i++) {
            buf[i] = pattern(sent + i, w->tag);
        }
        put = write(w->fd, buf, n);
        if (put <= 0) {
            break;
        }
        sent += (size_t)put;
    }
    return NULL;
}

/* What a reader saw of one direction. */
typedef struct seen {
    size_t bytes;
    size_t after_first; /* bytes read after the first read */
    double first;
    double last;
    int intact;
} seen_t;

static void seen_add(seen_t *s, const uint8_t *buf, size_t n, int tag, double now)
{
    for (size_t i = 0; i < n; i++) {
        if (buf[i] != pattern(s->bytes + i, tag)) {
            s->intact = 0;
        }
    }
    if (s->bytes == 0u) {
        s->first = now;
    } else {
        s->after_first += n;
    }
    s->bytes += n;
    s->last = now;
}

/* Read both directions until each delivered its total. */
static void read_both(const rig_t *r, size_t up_total, size_t down_total, seen_t seen[2])
{
    static uint8_t buf[65536];
    memset(seen, 0, 2 * sizeof *seen);
    seen[0].intact = seen[1].intact = 1;
    while (seen[0].bytes < up_total || seen[1].bytes < down_total) {
        struct pollfd p[2] = {{r->server, POLLIN, 0}, {r->client, POLLIN, 0}};
        assert_true(poll(p, 2, 30000) > 0);
        for (int k = 0; k < 2; k++) {
            if (p[k].revents != 0) {
                ssize_t n = read(p[k].fd, buf, sizeof buf);
                assert_true(n > 0);
                seen_add(&seen[k], buf, (size_t)n, k, link_emu_now());
            }
        }
    }
}

static double rate_bps(const seen_t *s)
{
    return (double)s->after_first * 8.0 / (s->last - s->first);
}

static double emu_rate_bps(const link_emu_dir_stats_t *d)
{
    return (double)(d->bytes - d->first_bytes) * 8.0 / (d->last_s - d->first_s);
}

static void test_rate_each_direction(void **state)
{
    link_emu_config_t cfg;
    link_emu_stats_t st;
    rig_t r;
    seen_t seen[2];
    pthread_t t[2];
    /* About 2.5 s in each direction. */
    writer_t w[2] = {{0, 625000u, 0}, {0, 3125000u, 1}};
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.up.delay_ms = 20.0;
    cfg.up.rate_bps = 2e6;
    cfg.up.queue_bytes = 64u * 1024u; /* 262 ms at 2 Mbit/s */
    cfg.down.delay_ms = 20.0;
    cfg.down.rate_bps = 10e6;
    cfg.down.queue_bytes = 256u * 1024u; /* 210 ms at 10 Mbit/s */
    rig_open(&r, &cfg);
    w[0].fd = r.client;
    w[1].fd = r.server;
    for (int k = 0; k < 2; k++) {
        assert_int_equal(pthread_create(&t[k], NULL, writer_run, &w[k]), 0);
    }
    read_both(&r, w[0].total, w[1].total, seen);
    for (int k = 0; k < 2; k++) {
        pthread_join(t[k], NULL);
        assert_true(seen[k].intact);
    }
    assert_within(rate_bps(&seen[0]) / 1e6, 2.0, 0.05, "up rate at the reader (Mbit/s)");
    assert_within(rate_bps(&seen[1]) / 1e6, 10.0, 0.05, "down rate at the reader (Mbit/s)");
    link_emu_get_stats(r.emu, &st);
    assert_within(emu_rate_bps(&st.up) / 1e6, 2.0, 0.05, "up rate of the emulator's writes");
    assert_within(emu_rate_bps(&st.down) / 1e6, 10.0, 0.05, "down rate of the emulator's writes");
    printf("  thread %s; late writes: up mean %.2f ms max %.2f ms; down mean %.2f ms max %.2f ms\n",
           st.realtime ? "real-time" : "ordinary", st.up.late_sum_s / (double)st.up.segments / MS,
           st.up.late_max_s / MS, st.down.late_sum_s / (double)st.down.segments / MS,
           st.down.late_max_s / MS);
    /* The bottleneck buffer is bounded: the rest waited in the sender's socket. */
    assert_int_equal(st.up.bytes, w[0].total);
    assert_int_equal(st.down.bytes, w[1].total);
    assert_true(st.up.queue_peak <= cfg.up.queue_bytes);
    assert_true(st.down.queue_peak <= cfg.down.queue_bytes);
    assert_true(st.down.queue_peak > cfg.down.queue_bytes / 2u);
    rig_close(&r);
}

/* The default buffer is one bandwidth-delay product, at least 16 KiB. */
static void test_default_queue(void **state)
{
    link_emu_config_t cfg;
    link_emu_stats_t st;
    rig_t r;
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.up.delay_ms = 50.0;
    cfg.up.rate_bps = 1e6; /* 12500 bytes per 100 ms: the minimum applies */
    cfg.down.delay_ms = 50.0;
    cfg.down.rate_bps = 10e6; /* 125000 bytes per 100 ms */
    rig_open(&r, &cfg);
    link_emu_get_stats(r.emu, &st);
    assert_int_equal(st.up.queue_bytes, LINK_EMU_QUEUE_MIN_BYTES);
    assert_int_equal(st.down.queue_bytes, 125000u);
    rig_close(&r);
}

/* Random loss and reordering hit about their share of segments and the stream stays whole. */
static void test_shares_keep_the_stream_whole(void **state)
{
    link_emu_config_t cfg;
    link_emu_stats_t st;
    rig_t r;
    seen_t seen[2];
    pthread_t t;
    writer_t w = {0, 1448u * 1000u, 1};
    double lost, reordered;
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.down.delay_ms = 5.0;
    cfg.down.rate_bps = 100e6;
    cfg.loss = 0.2;
    cfg.reorder = 0.1;
    cfg.reorder_ms = 3.0;
    cfg.seed = 42u;
    rig_open(&r, &cfg);
    w.fd = r.server;
    assert_int_equal(pthread_create(&t, NULL, writer_run, &w), 0);
    read_both(&r, 0u, w.total, seen);
    pthread_join(t, NULL);
    assert_true(seen[1].intact);
    link_emu_get_stats(r.emu, &st);
    assert_int_equal(st.down.bytes, w.total);
    reordered = (double)st.down.reordered / (double)st.down.segments;
    lost = (double)st.down.lost / (double)(st.down.segments - st.down.reordered);
    printf("  %llu segments: %.3f reordered, %.3f of the others lost\n",
           (unsigned long long)st.down.segments, reordered, lost);
    assert_true(st.down.segments >= 1000u);
    assert_true(lost > 0.15 && lost < 0.25);
    assert_true(reordered > 0.06 && reordered < 0.14);
    rig_close(&r);
}

/* A FIN passes after the delay; when both ends closed, the connection is gone. */
static void test_close_passes_through(void **state)
{
    link_emu_config_t cfg;
    link_emu_stats_t st;
    rig_t r;
    uint8_t b;
    double t0;
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.up.delay_ms = 50.0;
    cfg.down.delay_ms = 20.0;
    rig_open(&r, &cfg);
    t0 = link_emu_now();
    assert_int_equal(shutdown(r.client, SHUT_WR), 0);
    assert_int_equal(read(r.server, &b, 1), 0);
    assert_true(link_emu_now() - t0 >= 50.0 * MS);
    b = 7;
    write_all(r.server, &b, 1);
    close(r.server);
    r.server = -1;
    read_all(r.client, &b, 1);
    assert_int_equal(b, 7);
    assert_int_equal(read(r.client, &b, 1), 0);
    for (int i = 0; i < 200; i++) {
        link_emu_get_stats(r.emu, &st);
        if (st.open == 0u) {
            break;
        }
        usleep(10000);
    }
    assert_int_equal(st.open, 0);
    assert_int_equal(st.accepted, 1);
    close(r.client);
    link_emu_stop(r.emu);
}

/* Nothing listens at the target: the client's connection is closed, and counted. */
static void test_target_refused(void **state)
{
    link_emu_config_t cfg;
    link_emu_stats_t st;
    link_emu_t *emu;
    uint8_t b;
    int port, lfd = target_listen(&port), fd;
    (void)state;
    close(lfd);
    memset(&cfg, 0, sizeof cfg);
    cfg.target_host = "127.0.0.1";
    cfg.target_port = port;
    assert_int_equal(link_emu_start(&cfg, &emu), 0);
    fd = connect_to(link_emu_port(emu));
    assert_true(read(fd, &b, 1) <= 0);
    close(fd);
    link_emu_get_stats(emu, &st);
    assert_int_equal(st.refused, 1);
    assert_int_equal(st.accepted, 0);
    link_emu_stop(emu);
}

/* Beyond max_connections, a client is closed at once; the open ones carry on. */
static void test_connection_limit(void **state)
{
    link_emu_config_t cfg;
    link_emu_stats_t st;
    rig_t r;
    uint8_t b = 1;
    int extra;
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_connections = 1u;
    rig_open(&r, &cfg);
    extra = connect_to(link_emu_port(r.emu));
    assert_true(read(extra, &b, 1) <= 0);
    close(extra);
    write_all(r.client, &b, 1);
    read_all(r.server, &b, 1);
    link_emu_get_stats(r.emu, &st);
    assert_int_equal(st.accepted, 1);
    assert_int_equal(st.refused, 1);
    assert_int_equal(st.open, 1);
    rig_close(&r);
}

static void test_bad_settings_are_refused(void **state)
{
    link_emu_config_t good, cfg;
    link_emu_t *emu = (link_emu_t *)&good;
    char why[128];
    (void)state;
    memset(&good, 0, sizeof good);
    good.target_host = "127.0.0.1";
    good.target_port = 1883;
    assert_int_equal(link_emu_check(&good, why, sizeof why), 0);
#define REFUSED(field, value)                                                                      \
    do {                                                                                           \
        cfg = good;                                                                                \
        cfg.field = value;                                                                         \
        assert_int_equal(link_emu_check(&cfg, why, sizeof why), -1);                               \
        assert_true(why[0] != '\0');                                                               \
        assert_int_equal(link_emu_start(&cfg, &emu), -1);                                          \
        assert_null(emu);                                                                          \
    } while (0)
    REFUSED(up.delay_ms, -1.0);
    REFUSED(down.delay_ms, 60001.0);
    REFUSED(up.rate_bps, 10.0);
    REFUSED(down.queue_bytes, 100u);
    REFUSED(loss, 1.5);
    REFUSED(reorder, -0.1);
    REFUSED(reorder_ms, -1.0);
    REFUSED(segment_bytes, 10u);
    REFUSED(target_port, 0);
    REFUSED(target_host, NULL);
    REFUSED(listen_port, 70000);
    REFUSED(max_connections, 5000u);
#undef REFUSED
    assert_int_equal(link_emu_check(NULL, why, sizeof why), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delay_each_direction),
        cmocka_unit_test(test_rate_each_direction),
        cmocka_unit_test(test_default_queue),
        cmocka_unit_test(test_late_segments),
        cmocka_unit_test(test_shares_keep_the_stream_whole),
        cmocka_unit_test(test_close_passes_through),
        cmocka_unit_test(test_target_refused),
        cmocka_unit_test(test_connection_limit),
        cmocka_unit_test(test_bad_settings_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
