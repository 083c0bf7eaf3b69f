/*
 * otter: the download module's window on a scripted clock. A model link
 * (a round trip and a bottleneck that sends one block at a time, in order)
 * carries the requests the module plans; the clock jumps from one block's
 * arrival to the next, so no test waits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ota_download.h"

#define BLOCK 4096u
#define MAX_BLOCKS 4096u
#define RING 8192u
/* The largest window: OTA_WINDOW_MAX_BYTES of blocks, at most 255. */
#define WINDOW_MAX(block)                                                                          \
    (OTA_WINDOW_MAX_BYTES / (block) > 255u ? 255u : OTA_WINDOW_MAX_BYTES / (block))

typedef struct link {
    uint64_t rtt_us;   /* round trip without a queue */
    uint64_t block_us; /* the bottleneck's time per block (0: no limit) */
    uint64_t free_us;  /* when the bottleneck is next free */
    uint64_t now_us;
    uint32_t head, tail; /* arrivals in flight, in order */
    uint32_t index[RING];
    uint64_t at[RING];
    /* What the module did. */
    uint32_t requests;
    uint32_t largest_request; /* bytes */
    uint32_t window_peak;
    uint32_t window_drops; /* times the window got smaller */
    uint64_t busy_us;      /* the bottleneck's time spent sending */
} link_t;

typedef struct fixture {
    ota_agent_config_t cfg;
    ota_agent_stats_t stats;
    ota_download_t d;
    uint8_t done[MAX_BLOCKS / 8u];
    link_t l;
} fixture_t;

static uint32_t now_ms(const link_t *l)
{
    return (uint32_t)(l->now_us / 1000u);
}

/* A download of blocks x block bytes, its first window, over a link of rtt_us and block_us. */
static void setup(fixture_t *fx, uint32_t window, int adaptive, uint32_t blocks, uint32_t block,
                  uint64_t rtt_us, uint64_t block_us)
{
    memset(fx, 0, sizeof *fx);
    fx->cfg.block_size = block;
    fx->cfg.window_blocks = window;
    fx->cfg.rto_initial_ms = 2000u;
    fx->cfg.rto_min_ms = 200u;
    fx->cfg.rto_max_ms = 30000u;
    fx->cfg.max_timeouts = 12u;
    ota_download_init(&fx->d, &fx->cfg, &fx->stats, adaptive);
    ota_download_begin(&fx->d, fx->done, blocks * block, block);
    fx->l.window_peak = fx->d.window;
    fx->l.rtt_us = rtt_us;
    fx->l.block_us = block_us;
}

/* Sends what the module plans now: each block leaves the bottleneck in turn. */
static void send(fixture_t *fx)
{
    link_t *l = &fx->l;
    ota_block_request_t req;
    for (int first = 1; ota_download_plan(&fx->d, &req, first); first = 0) {
        uint32_t bytes = req.count * fx->d.block_size;
        l->requests++;
        l->largest_request = bytes > l->largest_request ? bytes : l->largest_request;
        for (uint32_t b = 0; b < req.bitmap_len * 8u; b++) {
            if ((req.bitmap[b / 8u] >> (b % 8u)) & 1u) {
                uint64_t start = l->now_us + l->rtt_us / 2u;
                l->free_us = (l->free_us > start ? l->free_us : start) + l->block_us;
                l->busy_us += l->block_us;
                assert_true(l->tail - l->head < RING);
                l->index[l->tail % RING] = req.offset + b;
                l->at[l->tail % RING] = l->free_us + l->rtt_us / 2u;
                l->tail++;
            }
        }
        ota_download_sent(&fx->d, &req, 1, now_ms(l));
    }
}

/* Runs the download until complete or until the clock reaches until_us; 1 when complete. */
static int run(fixture_t *fx, uint64_t until_us)
{
    link_t *l = &fx->l;
    if (l->now_us == 0u) {
        ota_download_round(&fx->d);
        send(fx);
    }
    while (!ota_download_complete(&fx->d) && l->head != l->tail &&
           l->at[l->head % RING] <= until_us) {
        uint32_t k = l->index[l->head % RING];
        uint32_t before = fx->d.window;
        l->now_us = l->at[l->head % RING];
        l->head++;
        if (ota_download_check(&fx->d, k, ota_download_block_len(&fx->d, k)) == OTA_BLOCK_NEW) {
            ota_download_written(&fx->d, k, now_ms(l));
        }
        assert_int_equal(ota_download_timer(&fx->d, now_ms(l)), OTA_DOWNLOAD_WAIT);
        l->window_drops += fx->d.window < before ? 1u : 0u;
        l->window_peak = fx->d.window > l->window_peak ? fx->d.window : l->window_peak;
        assert_int_equal(fx->stats.window_blocks, fx->d.window);
        send(fx);
    }
    return ota_download_complete(&fx->d);
}

/* Without a bottleneck the round trip holds: the window doubles per round trip up to its bound. */
static void test_window_grows_while_round_trip_holds(void **state)
{
    static fixture_t fx;
    (void)state;
    setup(&fx, 16, 1, MAX_BLOCKS, BLOCK, 100000u, 0);
    /* Three round trips: 16 -> 32 -> 64 -> 128 (at most one change per round trip). */
    assert_false(run(&fx, 3u * 100000u + 50000u));
    assert_int_equal(fx.d.window, 128);
    assert_int_equal(fx.l.window_drops, 0);
    assert_true(run(&fx, UINT64_MAX));
    /* The bound: OTA_WINDOW_MAX_BYTES of blocks, at most 255; 128 KiB per request. */
    assert_int_equal(fx.l.window_peak, WINDOW_MAX(BLOCK));
    assert_int_equal(fx.l.largest_request, OTA_REQUEST_BYTES_MAX);
    assert_int_equal(fx.l.window_drops, 0);
}

/* At 16 KiB blocks the bound in bytes is 64 blocks; requests stay at 8 blocks (128 KiB). */
static void test_window_bounded_by_bytes_and_request_cap(void **state)
{
    static fixture_t fx;
    (void)state;
    setup(&fx, 8, 1, 512, 16384u, 50000u, 0);
    assert_true(run(&fx, UINT64_MAX));
    assert_int_equal(fx.l.window_peak, WINDOW_MAX(16384u));
    assert_int_equal(fx.l.largest_request, OTA_REQUEST_BYTES_MAX);
}

/*
 * A bottleneck of 10 Mbit/s at a 100 ms round trip (a bandwidth-delay product
 * of 30 blocks): the window grows until a queue builds, then shrinks; it
 * settles where the link stays busy without growing to its bound.
 */
static void test_window_settles_at_the_link(void **state)
{
    static fixture_t fx;
    uint64_t busy_before, at;
    (void)state;
    setup(&fx, 16, 1, MAX_BLOCKS, BLOCK, 100000u, 3277u); /* 4 KiB at 10 Mbit/s */
    assert_false(run(&fx, 3000000u));
    assert_true(fx.l.window_drops >= 1u);
    assert_true(fx.l.window_peak < 255u);
    /* Over the next 3 s the link is busy at least 90 % of the time. */
    busy_before = fx.l.busy_us;
    at = fx.l.now_us;
    assert_false(run(&fx, 6000000u));
    assert_true((fx.l.busy_us - busy_before) * 10u >= (fx.l.now_us - at) * 9u);
    /* ... and the window is at most twice what the link holds, plus slack. */
    assert_true(fx.d.window >= 30u && fx.d.window <= 96u);
}

/* The round trip inflates (the link slows down): the window shrinks to what the link now holds. */
static void test_window_shrinks_when_round_trip_inflates(void **state)
{
    static fixture_t fx;
    uint32_t grown, drops;
    (void)state;
    setup(&fx, 16, 1, MAX_BLOCKS, BLOCK, 40000u, 0);
    assert_false(run(&fx, 400000u));
    grown = fx.d.window;
    assert_true(grown >= 128u);
    drops = fx.l.window_drops;
    /* Now 1 Mbit/s: 33 ms per block, a bandwidth-delay product of about 1 block. */
    fx.l.block_us = 32768u;
    assert_false(run(&fx, 400000u + 20000000u));
    assert_true(fx.l.window_drops > drops);
    assert_true(fx.d.window <= 8u); /* down from 128 and more */
    assert_true(fx.d.window >= 4u); /* the floor: requests keep several blocks */
}

/* A fixed window (configured, not 0) never changes, whatever the round trip. */
static void test_fixed_window_stays(void **state)
{
    static fixture_t fx;
    (void)state;
    setup(&fx, 1, 0, 256, BLOCK, 20000u, 30000u);
    assert_true(run(&fx, UINT64_MAX));
    assert_int_equal(fx.l.window_peak, 1);
    assert_int_equal(fx.d.window, 1);
    assert_int_equal(fx.l.requests, 256);
}

/* The agent polled every 10 ms with nothing arriving: the first timer result other than WAIT. */
static ota_download_timer_t silence(fixture_t *fx)
{
    for (int i = 0; i < 100000; i++) {
        ota_download_timer_t t;
        fx->l.now_us += 10000u;
        t = ota_download_timer(&fx->d, now_ms(&fx->l));
        if (t != OTA_DOWNLOAD_WAIT) {
            return t;
        }
    }
    return OTA_DOWNLOAD_WAIT;
}

/* A timeout halves an adaptive window (not below its floor); a fixed one keeps it. */
static void test_timeout_halves_adaptive_window(void **state)
{
    static fixture_t fx;
    (void)state;
    setup(&fx, 16, 1, MAX_BLOCKS, BLOCK, 100000u, 0);
    assert_false(run(&fx, 250000u));
    assert_int_equal(fx.d.window, 64);
    /* The link goes silent: the timer expires. */
    assert_int_equal(silence(&fx), OTA_DOWNLOAD_PROBE);
    assert_int_equal(fx.d.window, 32);
    assert_int_equal(fx.stats.window_blocks, 32);
    for (int i = 0; i < 8; i++) { /* repeated timeouts end at the floor */
        assert_int_equal(silence(&fx), OTA_DOWNLOAD_PROBE);
        fx.d.deadline = now_ms(&fx.l) + fx.d.rto; /* as the retry's request arms it */
    }
    assert_int_equal(fx.d.window, 4);

    setup(&fx, 16, 0, MAX_BLOCKS, BLOCK, 100000u, 0);
    assert_false(run(&fx, 250000u));
    assert_int_equal(silence(&fx), OTA_DOWNLOAD_PROBE);
    assert_int_equal(fx.d.window, 16);
}

/*
 * The agent was not called for longer than the timeout (the device was busy):
 * the expiry is put off once, so blocks waiting unread are no timeout; if
 * none come, the next expiry counts.
 */
static void test_busy_device_is_no_timeout(void **state)
{
    static fixture_t fx;
    uint32_t k;
    (void)state;
    setup(&fx, 16, 1, MAX_BLOCKS, BLOCK, 100000u, 0);
    assert_false(run(&fx, 250000u));
    /* Busy for 3 s: the deadline passed unseen. */
    fx.l.now_us += 3000000u;
    assert_int_equal(ota_download_timer(&fx.d, now_ms(&fx.l)), OTA_DOWNLOAD_WAIT);
    /* What waited arrives: no timeout. */
    k = fx.l.index[fx.l.head % RING];
    fx.l.head++;
    ota_download_written(&fx.d, k, now_ms(&fx.l));
    assert_int_equal(ota_download_timer(&fx.d, now_ms(&fx.l)), OTA_DOWNLOAD_WAIT);
    assert_int_equal(fx.stats.timeouts, 0);
    /* Busy again, and nothing waited: put off once, then a timeout. */
    fx.l.now_us += 3000000u;
    assert_int_equal(ota_download_timer(&fx.d, now_ms(&fx.l)), OTA_DOWNLOAD_WAIT);
    fx.l.now_us += 3000000u;
    assert_int_equal(ota_download_timer(&fx.d, now_ms(&fx.l)), OTA_DOWNLOAD_PROBE);
    assert_int_equal(fx.stats.timeouts, 1);
}

/* The answers queued on the link come late: from now on, 1 ms apart, in order. */
static void late_answers(fixture_t *fx)
{
    link_t *l = &fx->l;
    for (uint32_t i = l->head; i != l->tail; i++) {
        l->at[i % RING] = l->now_us + 1000u * (i - l->head + 1u);
    }
}

/* Sends what the module plans now and returns the number of requests. */
static uint32_t send_count(fixture_t *fx)
{
    uint32_t before = fx->l.requests;
    send(fx);
    return fx->l.requests - before;
}

/*
 * A timeout with no block missing below one that arrived: the answers may only
 * be late (a busy service). The agent asks for one block alone (the last one
 * asked for), not the window again; the late answers are new blocks, not
 * duplicates, and the download goes on without another timeout.
 */
static void test_timeout_asks_one_block_and_late_answers_count(void **state)
{
    static fixture_t fx;
    uint32_t in_flight, asked;
    (void)state;
    setup(&fx, 16, 1, 512, BLOCK, 100000u, 0);
    assert_false(run(&fx, 250000u));
    in_flight = fx.l.tail - fx.l.head;
    asked = fx.d.cursor;
    assert_true(in_flight >= 16u);
    assert_int_equal(silence(&fx), OTA_DOWNLOAD_PROBE);
    assert_int_equal(send_count(&fx), 1);
    assert_int_equal(fx.l.index[(fx.l.tail - 1u) % RING], asked - 1u);
    assert_int_equal(fx.l.tail - fx.l.head, in_flight + 1u);
    late_answers(&fx);
    assert_true(run(&fx, UINT64_MAX));
    assert_int_equal(fx.stats.timeouts, 1);
    assert_true(fx.stats.blocks_duplicate <= 1u); /* the probe's answer, if it came in time */
}

/*
 * The requests in flight were lost (a service instance killed): the probe's
 * answer arrives alone and leaves the blocks below it missing, so the next
 * expiry asks for them all again, and nothing arrives twice.
 */
static void test_lost_requests_are_asked_again_after_the_probe(void **state)
{
    static fixture_t fx;
    (void)state;
    setup(&fx, 16, 1, 512, BLOCK, 100000u, 0);
    assert_false(run(&fx, 250000u));
    fx.l.head = fx.l.tail; /* all lost */
    assert_int_equal(silence(&fx), OTA_DOWNLOAD_PROBE);
    assert_int_equal(send_count(&fx), 1);
    assert_false(run(&fx, fx.l.now_us + 200000u)); /* the probe's answer */
    assert_int_equal(fx.l.head, fx.l.tail);
    assert_int_equal(silence(&fx), OTA_DOWNLOAD_RETRY);
    ota_download_round(&fx.d);
    assert_true(send_count(&fx) >= 1u);
    assert_true(run(&fx, UINT64_MAX));
    assert_int_equal(fx.stats.timeouts, 2);
    assert_int_equal(fx.stats.blocks_duplicate, 0);
}

/*
 * Karn's rule: a block asked for again may be the answer to the first
 * request, so no request for blocks asked before is timed; the retry timer
 * stays backed off while the late answers arrive at once.
 */
static void test_requests_asked_before_are_not_timed(void **state)
{
    static fixture_t fx;
    uint32_t rto;
    (void)state;
    setup(&fx, 16, 1, 512, BLOCK, 100000u, 0);
    assert_false(run(&fx, 250000u));
    fx.l.head++; /* one block lost: a hole once the next arrives */
    late_answers(&fx);
    assert_false(run(&fx, fx.l.now_us + 1000u));
    assert_int_equal(silence(&fx), OTA_DOWNLOAD_RETRY);
    rto = fx.stats.rto_ms;
    ota_download_round(&fx.d);
    assert_true(send_count(&fx) >= 1u);
    assert_false(fx.d.rtt_pending);
    late_answers(&fx); /* the first answers of the requests asked again, at once */
    assert_false(run(&fx, fx.l.now_us + 5000u));
    assert_int_equal(fx.stats.rto_ms, rto);
    assert_true(run(&fx, UINT64_MAX));
}

/* A new file starts from the first window again. */
static void test_new_file_restarts_window(void **state)
{
    static fixture_t fx;
    (void)state;
    setup(&fx, 16, 1, MAX_BLOCKS, BLOCK, 100000u, 0);
    assert_false(run(&fx, 350000u));
    assert_true(fx.d.window > 16u);
    memset(fx.done, 0, sizeof fx.done);
    ota_download_begin(&fx.d, fx.done, 64u * BLOCK, BLOCK);
    assert_int_equal(fx.d.window, 16);
    assert_int_equal(fx.stats.window_blocks, 16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_grows_while_round_trip_holds),
        cmocka_unit_test(test_window_bounded_by_bytes_and_request_cap),
        cmocka_unit_test(test_window_settles_at_the_link),
        cmocka_unit_test(test_window_shrinks_when_round_trip_inflates),
        cmocka_unit_test(test_fixed_window_stays),
        cmocka_unit_test(test_timeout_halves_adaptive_window),
        cmocka_unit_test(test_busy_device_is_no_timeout),
        cmocka_unit_test(test_new_file_restarts_window),
        cmocka_unit_test(test_timeout_asks_one_block_and_late_answers_count),
        cmocka_unit_test(test_lost_requests_are_asked_again_after_the_probe),
        cmocka_unit_test(test_requests_asked_before_are_not_timed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
