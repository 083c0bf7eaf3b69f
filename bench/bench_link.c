/*
 * otter benchmark 5: an update over real-shaped links.
 *
 *   bench_link [--image-kib N] [--reps R] [--quick]
 *
 * A simulated device (bench_device.h) downloads and verifies an N KiB image
 * (default 1024) from otter-service through the link emulator (link_emu.h),
 * which stands between the device and the broker: round trips of 20, 100 and
 * 300 ms (half of it each way) at 1 and 10 Mbit/s in both directions, with a
 * bottleneck buffer of one bandwidth-delay product, and one lossy row
 * (100 ms, 10 Mbit/s, 1 % of the segments in each direction one round trip
 * late, as TCP repairs a loss). Each row runs, side by side in the same run,
 * otter's agent with its default settings and otter's agent configured as
 * the AWS agent behaves by default: one 4 KiB block per request, one request
 * in flight. The time runs from the agent accepting the job document to the
 * port having verified the signature; goodput is the file's bytes over that
 * time, against the link's rate (TCP payload). With --reps R the cells are
 * medians of R runs, the two configurations alternating.
 *
 * --quick runs the two configurations once over one small row (20 ms,
 * 10 Mbit/s, 64 KiB) and checks the update completes: a smoke test, it times
 * nothing.
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

typedef struct row {
    double rtt_ms;
    double mbit;
    double loss;
} row_t;

static const row_t rows[] = {{20.0, 1.0, 0.0},   {20.0, 10.0, 0.0}, {100.0, 1.0, 0.0},
                             {100.0, 10.0, 0.0}, {300.0, 1.0, 0.0}, {300.0, 10.0, 0.0},
                             {100.0, 10.0, 0.01}};
static const row_t quick_row = {20.0, 10.0, 0.0};
#define N_ROWS (sizeof rows / sizeof rows[0])

/* The two agents: otter's defaults, and one 4 KiB block per round trip (the AWS agent's). */
typedef struct setup {
    uint32_t block;
    uint32_t window;
} setup_t;
static const setup_t setups[2] = {{0u, 0u}, {4096u, 1u}};
#define DEFAULTS 0
#define AWS_LIKE 1

/* One configuration's runs in one row. */
typedef struct cell {
    double time_s[MAX_REPS];
    uint32_t window_bytes; /* the agent's first window: blocks in flight x block size */
    uint32_t peak_bytes;   /* the last run's largest window, bytes */
    uint32_t end_bytes;    /* the last run's window at the end, bytes */
    uint32_t requests;     /* the last run's block requests */
    uint32_t timeouts;     /* all runs' request timeouts */
    uint32_t duplicates;   /* all runs' blocks received twice */
    uint32_t srtt_ms;      /* the last run's smoothed round trip, as the agent measured it */
    uint64_t lost;         /* segments the emulator delayed as lost, all runs, both ways */
    uint64_t down_bytes;   /* the last run's bytes the emulator carried to the device */
} cell_t;

/* A generous deadline: three times one block per round trip, plus a minute. */
static double run_timeout(const row_t *row, size_t bytes)
{
    double blocks = (double)bytes / 4096.0 + 1.0;
    double per_block = row->rtt_ms / 1e3 + 4096.0 * 8.0 / (row->mbit * 1e6);
    return 60.0 + 3.0 * blocks * per_block * (1.0 + 10.0 * row->loss);
}

/* One download through a fresh emulator. */
static int run_one(bench_env_t *env, const row_t *row, unsigned seed, const setup_t *s,
                   const char *thing, size_t bytes, bench_device_run_t *r, link_emu_stats_t *st)
{
    link_emu_config_t lc;
    ota_mqtt_mosquitto_config_t mc;
    ota_test_login_t login;
    link_emu_t *emu;
    int rc;
    if (bench_env_login(env, thing, &login) != 0) {
        return -1;
    }
    memset(&lc, 0, sizeof lc);
    lc.target_host = "127.0.0.1";
    lc.target_port = env->broker.port;
    lc.up.delay_ms = lc.down.delay_ms = row->rtt_ms / 2.0;
    lc.up.rate_bps = lc.down.rate_bps = row->mbit * 1e6;
    lc.loss = row->loss;
    lc.seed = seed;
    if (link_emu_start(&lc, &emu) != 0) {
        return -1;
    }
    memset(&mc, 0, sizeof mc);
    mc.host = "127.0.0.1";
    mc.port = link_emu_port(emu);
    mc.client_id = login.client_id;
    mc.username = login.username;
    mc.password = login.password;
    rc = bench_device_download(&mc, thing, s->block, s->window, run_timeout(row, bytes), r);
    link_emu_get_stats(emu, st);
    link_emu_stop(emu);
    return rc;
}

/* The best share of the link rate any agent reaches: one round trip, then the file at the rate. */
static double floor_share(const row_t *row, size_t file_bytes)
{
    double floor_s = (double)file_bytes * 8.0 / (row->mbit * 1e6);
    return floor_s / (floor_s + row->rtt_ms / 1e3);
}

/* Doublings from a window to a larger one. */
static unsigned doublings(uint32_t from, uint32_t to)
{
    unsigned n = 0;
    while (from != 0u && from < to) {
        from *= 2u;
        n++;
    }
    return n;
}

static const char *met(int yes)
{
    return yes ? "met" : "missed";
}

static void print_tables(cell_t cells[N_ROWS][2], int reps, size_t file_bytes)
{
    double worst = 2.0, worst_rtt = 0.0, worst_mbit = 0.0, speedup_100_10 = 0.0;
    double worst_ceiling = 2.0;
    char reps_text[48];
    uint32_t aws_timeouts = 0;
    if (reps > 1) {
        snprintf(reps_text, sizeof reps_text, "Medians of %d runs each", reps);
    } else {
        snprintf(reps_text, sizeof reps_text, "One run each");
    }
    printf("| RTT | link | loss | BDP | ceiling | default: time (s) | of link rate | of the "
           "ceiling | one 4 KiB block per round trip: time (s) | of link rate | default / one "
           "block |\n");
    printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (size_t i = 0; i < N_ROWS; i++) {
        const row_t *row = &rows[i];
        double floor_s = (double)file_bytes * 8.0 / (row->mbit * 1e6);
        double t[2], share[2];
        for (int k = 0; k < 2; k++) {
            t[k] = bench_quantile(cells[i][k].time_s, (size_t)reps, 0.5);
            share[k] = floor_s / t[k];
        }
        if (row->loss == 0.0 && share[DEFAULTS] / floor_share(row, file_bytes) < worst_ceiling) {
            worst_ceiling = share[DEFAULTS] / floor_share(row, file_bytes);
        }
        if (row->loss == 0.0 && share[DEFAULTS] < worst) {
            worst = share[DEFAULTS];
            worst_rtt = row->rtt_ms;
            worst_mbit = row->mbit;
        }
        if (row->loss == 0.0 && row->rtt_ms == 100.0 && row->mbit == 10.0) {
            speedup_100_10 = t[AWS_LIKE] / t[DEFAULTS];
        }
        double ceiling = floor_s / (floor_s + row->rtt_ms / 1e3);
        printf(
            "| %.0f ms | %.0f Mbit/s | %.0f %% | %.1f KiB | %.0f %% | %.2f | %.0f %% | %.0f %% | "
            "%.2f | %.0f %% | %.1fx |\n",
            row->rtt_ms, row->mbit, row->loss * 100.0,
            row->mbit * 1e6 / 8.0 * row->rtt_ms / 1e3 / KIB, ceiling * 100.0, t[DEFAULTS],
            share[DEFAULTS] * 100.0, share[DEFAULTS] / ceiling * 100.0, t[AWS_LIKE],
            share[AWS_LIKE] * 100.0, t[AWS_LIKE] / t[DEFAULTS]);
    }
    printf("\n- %s, the two configurations alternating, each download through "
           "a fresh emulator (bench/link_emu.h): half the round trip each way, the rate in both "
           "directions, a bottleneck buffer of one bandwidth-delay product (at least 16 KiB); "
           "a full buffer holds the sender back (TCP back-pressure), it drops nothing. The lossy "
           "row delays 1 %% of the segments in each direction by one round trip, with the "
           "segments behind them (TCP's in-order delivery).\n",
           reps_text);
    printf("- Time: from the agent accepting the job document to the port having verified the "
           "signature (%.2f MiB: the image and otter's header). Link rate: the emulator's rate "
           "of TCP payload; of link rate = the file at that rate / time, so MQTT's and the "
           "stream's framing count against otter. BDP: bandwidth-delay product, rate x RTT.\n",
           (double)file_bytes / MIB);
    printf("- Ceiling: no agent can do better than one round trip (the first request up, the "
           "first block down) plus the file at the link rate, so of link rate is at most file / "
           "(file + BDP); of the ceiling = the time that takes / the time measured. The default "
           "agent's window adapts to the link (docs/AGENT.md): it starts at 64 KiB, doubles per "
           "round trip while the round trip holds, and shrinks when it grows.\n");
    for (size_t i = 0; i < N_ROWS; i++) {
        aws_timeouts += cells[i][AWS_LIKE].timeouts;
    }
    printf("- Request timeouts of the one-block configuration, all rows: %u (the default's are "
           "below).\n",
           aws_timeouts);
    printf("\nWhere the time goes, default agent. Window: the first, the largest (seen between "
           "turns of the device's loop) and the last, of the last run. Bound from the window: a "
           "window below the BDP lets the link idle for part of every round trip, so goodput is "
           "at most the largest window / BDP of the link rate. Bytes to the device: all the "
           "emulator carried towards it on "
           "the connection (MQTT framing, topics, the stream's CBOR, job documents and "
           "answers) against the file. Link busy: those bytes at the link rate, against the "
           "time; idle is the rest, in seconds and round trips. Mean in flight: goodput x "
           "RTT (Little's law).\n\n");
    printf("| RTT | link | loss | BDP | window: first / largest / last | bound from the window | "
           "of link rate | "
           "bytes to the device / file | link busy | idle: s | idle: RTTs | mean in flight | "
           "requests | agent's smoothed RTT (ms) | timeouts | duplicate blocks | segments lost "
           "|\n");
    printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
           "\n");
    for (size_t i = 0; i < N_ROWS; i++) {
        const row_t *row = &rows[i];
        cell_t *c = &cells[i][DEFAULTS];
        double bdp = row->mbit * 1e6 / 8.0 * row->rtt_ms / 1e3;
        double t = bench_quantile(c->time_s, (size_t)reps, 0.5);
        double share = (double)file_bytes * 8.0 / (row->mbit * 1e6) / t;
        double busy = (double)c->down_bytes * 8.0 / (row->mbit * 1e6);
        double bound = c->peak_bytes / bdp < 1.0 ? c->peak_bytes / bdp : 1.0;
        printf(
            "| %.0f ms | %.0f Mbit/s | %.0f %% | %.1f KiB | %u / %u / %u KiB | %.0f %% | %.0f %% "
            "| %.3f | %.0f %% | %.2f | %.1f | %.1f KiB | %u | %u | %u | %u | %llu |\n",
            row->rtt_ms, row->mbit, row->loss * 100.0, bdp / KIB, c->window_bytes / KIB,
            c->peak_bytes / KIB, c->end_bytes / KIB, bound * 100.0, share * 100.0,
            (double)c->down_bytes / (double)file_bytes, busy / t * 100.0, t - busy,
            (t - busy) / (row->rtt_ms / 1e3), share * bdp / KIB, c->requests, c->srtt_ms,
            c->timeouts, c->duplicates, (unsigned long long)c->lost);
    }
    printf("\nRows below 90 %% of the link rate with the defaults:\n\n");
    for (size_t i = 0, below = 0; i < N_ROWS || below == 0; i++) {
        if (i == N_ROWS) {
            printf("- none\n");
            break;
        }
        const row_t *row = &rows[i];
        cell_t *c = &cells[i][DEFAULTS];
        double bdp = row->mbit * 1e6 / 8.0 * row->rtt_ms / 1e3;
        double t = bench_quantile(c->time_s, (size_t)reps, 0.5);
        double share = (double)file_bytes * 8.0 / (row->mbit * 1e6) / t;
        double idle = t - (double)c->down_bytes * 8.0 / (row->mbit * 1e6);
        if (share >= 0.9) {
            continue;
        }
        below++;
        printf("- RTT %.0f ms, %.0f Mbit/s%s: %.0f %%. ", row->rtt_ms, row->mbit,
               row->loss > 0.0 ? ", 1 % loss" : "", share * 100.0);
        if (c->peak_bytes < bdp) {
            printf("The largest window, %u KiB, is %.0f %% of the BDP (%.0f KiB): the link idles "
                   "for part of every round trip (%.2f s in all); %.1f KiB in flight on average.",
                   c->peak_bytes / KIB, c->peak_bytes / bdp * 100.0, bdp / KIB, idle,
                   share * bdp / KIB);
        } else {
            double lost = (double)c->lost / reps;
            double floor_s = (double)file_bytes * 8.0 / (row->mbit * 1e6);
            double ceiling = floor_s / (floor_s + (1.0 + lost) * row->rtt_ms / 1e3);
            printf("The largest window, %u KiB, covers the BDP (%.0f KiB). The ceiling is %.0f %%: "
                   "the first round trip",
                   c->peak_bytes / KIB, bdp / KIB, ceiling * 100.0);
            if (lost > 0.0) {
                printf(" and the %.0f lost segments (each holds the stream one round trip)", lost);
            }
            printf(" leave the link idle %.2f s; the agent reached %.0f %% of it. The window "
                   "took %u doublings from %u KiB, a round trip each, to cover the BDP; the link "
                   "idled %.2f s, %.1f round trips, in all, and carried %.1f %% more bytes than "
                   "the file (MQTT and stream framing).",
                   (1.0 + lost) * row->rtt_ms / 1e3, share / ceiling * 100.0,
                   doublings(c->window_bytes, (uint32_t)bdp), c->window_bytes / KIB, idle,
                   idle / (row->rtt_ms / 1e3),
                   ((double)c->down_bytes / (double)file_bytes - 1.0) * 100.0);
        }
        printf("\n");
    }
    printf("\nheadline: over emulated links, the default agent reaches at worst %.0f %% of the "
           "link rate (RTT %.0f ms, %.0f Mbit/s); target 90 %% at every RTT and rate: %s; at "
           "worst %.0f %% of the ceiling (one round trip, then the file at the link rate)\n",
           worst * 100.0, worst_rtt, worst_mbit, met(worst >= 0.9), worst_ceiling * 100.0);
    printf("headline: at RTT 100 ms, 10 Mbit/s the default agent is %.1fx as fast as one 4 KiB "
           "block per round trip (the AWS agent's default); target 10x: %s\n",
           speedup_100_10, met(speedup_100_10 >= 10.0));
}

int main(int argc, char **argv)
{
    static cell_t cells[N_ROWS][2];
    unsigned image_kib = 1024u;
    int reps = 1, quick = 0, rc = 1;
    size_t n_rows = N_ROWS, file_bytes = 0;
    bench_env_t env;
    uint8_t *firmware;
    unsigned runs = 0;
    char thing[64], job[64];

    if (bench_parse_args(argc, argv, "bench_link", &image_kib, &reps, MAX_REPS, &quick) != 0) {
        return 2;
    }
    if (quick) {
        image_kib = 64u;
        reps = 1;
        n_rows = 1;
    }
    firmware = bench_firmware(image_kib * KIB);
    if (firmware == NULL) {
        return 1;
    }
    if (bench_env_start(&env) != 0) {
        free(firmware);
        return 1;
    }
    if (bench_env_add_things(&env, "link-", (unsigned)(n_rows * 2u) * (unsigned)reps, NULL) != 0 ||
        bench_env_start_services(&env, 1) != 0) {
        goto out;
    }
    for (size_t i = 0; i < n_rows; i++) {
        const row_t *row = quick ? &quick_row : &rows[i];
        for (int k = 0; k < reps; k++) {
            for (int j = 0; j < 2; j++) {
                /* Alternate which configuration goes first. */
                int s = (k % 2 == 0) ? j : 1 - j;
                cell_t *c = &cells[i][s];
                bench_device_run_t r;
                link_emu_stats_t st;
                snprintf(thing, sizeof thing, "link-%u", runs);
                snprintf(job, sizeof job, "link-job-%u", runs);
                runs++;
                if (bench_env_create_job(&env, job, thing, firmware, image_kib * KIB, "1.1.0") !=
                        0 ||
                    run_one(&env, row, (unsigned)(i + 1u), &setups[s], thing, image_kib * KIB, &r,
                            &st) != 0) {
                    fprintf(stderr, "bench: download failed (RTT %.0f ms, %.0f Mbit/s, %s)\n",
                            row->rtt_ms, row->mbit, s == DEFAULTS ? "defaults" : "one block");
                    goto out;
                }
                file_bytes = r.file_size;
                c->time_s[k] = r.verified - r.start;
                c->window_bytes = r.window * r.block_size;
                c->peak_bytes = r.window_peak * r.block_size;
                c->end_bytes = r.stats.window_blocks * r.block_size;
                c->requests = r.stats.requests;
                c->timeouts += r.stats.timeouts;
                c->duplicates += r.stats.blocks_duplicate;
                c->srtt_ms = r.stats.rtt_ms;
                c->lost += st.up.lost + st.down.lost;
                c->down_bytes = st.down.bytes;
                if (quick) {
                    printf("RTT %.0f ms, %.0f Mbit/s, %s: verified, %u requests\n", row->rtt_ms,
                           row->mbit, s == DEFAULTS ? "defaults" : "one 4 KiB block per round trip",
                           r.stats.requests);
                }
            }
        }
    }
    if (!quick) {
        printf("## 5. An update over real-shaped links: %.2f MiB image through the link "
               "emulator\n\n",
               (double)file_bytes / MIB);
        print_tables(cells, reps, file_bytes);
    }
    rc = 0;
out:
    bench_env_stop(&env);
    free(firmware);
    return rc;
}
