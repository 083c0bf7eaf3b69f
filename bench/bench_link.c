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
 * medians of R runs, the two configurations alternating which goes first.
 *
 * The defaults run one download at a time. The one-block configuration waits
 * on its link (a round trip per 4 KiB, minutes at 300 ms) and hardly uses a
 * CPU, so its rows run side by side, a thread each with its own emulator,
 * device and connection. The output says how busy the machine's cores were
 * meanwhile and compares the cell most sensitive to an added delay with a
 * run of it alone afterwards; it warns when either shows the side-by-side
 * runs may have been slowed.
 *
 * --quick runs the two configurations once over one small row (20 ms,
 * 10 Mbit/s, 64 KiB) and checks the update completes: a smoke test, it times
 * nothing.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

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

/* What the side-by-side phases used: wall time, and CPU of the machine and of this benchmark. */
typedef struct side {
    double wall_s;    /* all phases */
    double machine_s; /* CPU seconds every process on the machine ran (/proc/stat) */
    double ours_s;    /* CPU seconds of this process (devices, emulators), broker, service */
    double alone_s;   /* the control cell, run alone */
    double beside_s;  /* the same cell side by side (median) */
    size_t control;   /* its row */
    unsigned at_once; /* cells per phase */
    int redone;       /* the check failed: the one-block cells ran again one at a time */
} side_t;

/* Whether running side by side provably left the one-block times alone: the
 * machine's cores far from saturated, and the control within 5 %. */
static int side_ok(const side_t *side)
{
    double busy = side->machine_s / (side->wall_s * (double)sysconf(_SC_NPROCESSORS_ONLN));
    double diff = side->beside_s / side->alone_s - 1.0;
    return busy < 0.5 && diff < 0.05 && diff > -0.05;
}

/* One 4 KiB block per round trip: a round trip and the block at the link rate, seconds. */
static double per_block_s(const row_t *row)
{
    return row->rtt_ms / 1e3 + 4096.0 * 8.0 / (row->mbit * 1e6);
}

/* A generous deadline: three times one block per round trip, plus a minute. */
static double run_timeout(const row_t *row, size_t bytes)
{
    double blocks = (double)bytes / 4096.0 + 1.0;
    return 60.0 + 3.0 * blocks * per_block_s(row) * (1.0 + 10.0 * row->loss);
}

/* One download through a fresh emulator: what it takes, and what it did. */
typedef struct task {
    const row_t *row;
    const setup_t *setup;
    unsigned seed;
    int broker_port;
    size_t bytes;
    char thing[64];
    ota_test_login_t login;
    bench_device_run_t r;
    link_emu_stats_t st;
    int rc;
} task_t;

/* Run one task (also as a thread: it shares nothing with another task). */
static void *run_task(void *arg)
{
    task_t *t = arg;
    link_emu_config_t lc;
    ota_mqtt_mosquitto_config_t mc;
    link_emu_t *emu;
    t->rc = -1;
    memset(&lc, 0, sizeof lc);
    lc.target_host = "127.0.0.1";
    lc.target_port = t->broker_port;
    lc.up.delay_ms = lc.down.delay_ms = t->row->rtt_ms / 2.0;
    lc.up.rate_bps = lc.down.rate_bps = t->row->mbit * 1e6;
    lc.loss = t->row->loss;
    lc.seed = t->seed;
    if (link_emu_start(&lc, &emu) != 0) {
        return NULL;
    }
    memset(&mc, 0, sizeof mc);
    mc.host = "127.0.0.1";
    mc.port = link_emu_port(emu);
    mc.client_id = t->login.client_id;
    mc.username = t->login.username;
    mc.password = t->login.password;
    t->rc = bench_device_download(&mc, t->thing, t->setup->block, t->setup->window,
                                  run_timeout(t->row, t->bytes), &t->r);
    link_emu_get_stats(emu, &t->st);
    link_emu_stop(emu);
    return NULL;
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

/* The median time of a configuration in a row. */
static double median_s(cell_t *c, int reps)
{
    double v[MAX_REPS];
    memcpy(v, c->time_s, sizeof v);
    return bench_quantile(v, (size_t)reps, 0.5);
}

/*
 * Why a row whose largest window covers the BDP stays below 90 %: its ceiling
 * (the first round trip, then the file at the link rate) and, with loss, what
 * the delayed segments cost. A segment one round trip late holds the stream
 * behind it on the device (TCP's in-order delivery), but the link keeps
 * carrying what was already asked for: window - BDP bytes beyond what the
 * link itself holds. The link idles only when that drains in less than the
 * round trip, max(0, RTT - (window - BDP) / rate) per segment: with the
 * largest window the least, so the ceiling is an upper bound (a segment
 * delayed while the window was smaller costs more). What the losses cost is measured:
 * the time against the lossless row of the same RTT and rate in this run.
 */
static void print_ceiling_note(cell_t cells[N_ROWS][2], size_t i, int reps, size_t file_bytes)
{
    const row_t *row = &rows[i];
    cell_t *c = &cells[i][DEFAULTS];
    double rtt = row->rtt_ms / 1e3;
    double rate = row->mbit * 1e6 / 8.0; /* bytes per second */
    double bdp = rate * rtt;
    double floor_s = (double)file_bytes / rate;
    double t = median_s(c, reps);
    double share = floor_s / t;
    double idle = t - (double)c->down_bytes / rate;
    double lost = (double)c->lost / reps;
    double beyond_s = ((double)c->peak_bytes - bdp) / rate;
    double per_loss = rtt - beyond_s > 0.0 ? rtt - beyond_s : 0.0;
    double ceiling = floor_s / (floor_s + rtt + lost * per_loss);
    printf("The largest window, %u KiB, covers the BDP (%.0f KiB). The ceiling is %.0f %%: the "
           "first round trip",
           c->peak_bytes / KIB, bdp / KIB, ceiling * 100.0);
    if (lost > 0.0 && per_loss > 0.0) {
        printf(" and the %.0f delayed segments (at least %.3f s of idle link each: a segment one "
               "round trip late holds the stream, and at the largest window the %.0f KiB asked "
               "for beyond the BDP keep the link busy for %.3f s of it)",
               lost, per_loss, (c->peak_bytes - bdp) / KIB, beyond_s);
    }
    printf(" %s the link idle %.2f s; the agent reached %.0f %% of it.",
           lost > 0.0 && per_loss > 0.0 ? "leave" : "leaves", rtt + lost * per_loss,
           share / ceiling * 100.0);
    if (lost > 0.0 && per_loss == 0.0) {
        printf(" The %.0f delayed segments (each one round trip late, holding the stream behind "
               "it) idle the link only once the data asked for beyond the BDP runs out: at the "
               "largest window, %.0f KiB beyond it, %.2f s at the link rate, longer than the round "
               "trip a segment is held, so not at all, and the ceiling stays; a segment delayed "
               "while the window was smaller costs up to a round trip.",
               lost, (c->peak_bytes - bdp) / KIB, beyond_s);
    }
    for (size_t j = 0; lost > 0.0 && j < N_ROWS; j++) {
        if (rows[j].loss == 0.0 && rows[j].rtt_ms == row->rtt_ms && rows[j].mbit == row->mbit) {
            double t0 = median_s(&cells[j][DEFAULTS], reps);
            double extra = t - t0;
            printf(" Measured against the lossless row of the same link in this run (%.0f %% of "
                   "the link rate, %.0f %% of its ceiling), the loss costs %.2f s, %.0f ms per "
                   "delayed segment (a round trip is %.0f ms). Last window %u KiB, %u KiB without "
                   "loss.",
                   floor_s / t0 * 100.0, floor_s / t0 / floor_share(row, file_bytes) * 100.0, extra,
                   extra / lost * 1e3, row->rtt_ms, c->end_bytes / KIB,
                   cells[j][DEFAULTS].end_bytes / KIB);
        }
    }
    printf(" The window took %u doublings from %u KiB, a round trip each, to cover the BDP; the "
           "link idled %.2f s, %.1f round trips, in all, and carried %.1f %% more bytes than the "
           "file (MQTT and stream framing).",
           doublings(c->window_bytes, (uint32_t)bdp), c->window_bytes / KIB, idle, idle / rtt,
           ((double)c->down_bytes / (double)file_bytes - 1.0) * 100.0);
}

/*
 * How the one-block cells ran: side by side, and the evidence that this left
 * their times alone (the machine's CPU far from saturated, a control cell run
 * alone afterwards).
 */
static void print_side_by_side(cell_t cells[N_ROWS][2], int reps, const side_t *side)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    double busy = side->machine_s / (side->wall_s * (double)cores);
    double ours = side->ours_s / (side->wall_s * (double)cores);
    double diff = side->beside_s / side->alone_s - 1.0;
    const row_t *c = &rows[side->control];
    (void)cells;
    printf("- The defaults ran one download at a time. The one-block configuration, which waits "
           "on its link a round trip per 4 KiB and hardly uses a CPU, ran its %u rows side by "
           "side, each with its own emulator, device and connection (%.0f s of wall time for "
           "%d repetition(s)). Meanwhile the machine's %ld cores were %.0f %% busy (every "
           "process, /proc/stat), this benchmark's processes (devices, emulators, broker, "
           "service) %.0f %% of them. Control: the cell most sensitive to a delay added per "
           "block (RTT %.0f ms, %.0f Mbit/s) took %.2f s run alone afterwards, %.2f s side by side "
           "(%+.1f %%). %s\n",
           side->at_once, side->wall_s, reps, cores, busy * 100.0, ours * 100.0, c->rtt_ms, c->mbit,
           side->alone_s, side->beside_s, diff * 100.0,
           !side->redone
               ? "Far from saturated and within 5 % of the control: running them together did not "
                 "change their times."
               : "The cores were busy (50 % or more) or the control differs by 5 % or more, so "
                 "running them together may have changed their times: they ran again, one at a "
                 "time, and the tables show those runs.");
}

static void print_tables(cell_t cells[N_ROWS][2], int reps, size_t file_bytes, const side_t *side)
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
    printf("\n- %s, the two configurations alternating which goes first, each download "
           "through a fresh emulator (bench/link_emu.h): half the round trip each way, the rate in "
           "both "
           "directions, a bottleneck buffer of one bandwidth-delay product (at least 16 KiB); "
           "a full buffer holds the sender back (TCP back-pressure), it drops nothing. The lossy "
           "row delays 1 %% of the segments in each direction by one round trip, with the "
           "segments behind them (TCP's in-order delivery).\n",
           reps_text);
    print_side_by_side(cells, reps, side);
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
        printf("- RTT %.0f ms, %.0f Mbit/s", row->rtt_ms, row->mbit);
        if (row->loss > 0.0) {
            printf(", %.0f %% loss", row->loss * 100.0);
        }
        printf(": %.0f %%. ", share * 100.0);
        if (c->peak_bytes < bdp) {
            printf("The largest window, %u KiB, is %.0f %% of the BDP (%.0f KiB): the link idles "
                   "for part of every round trip (%.2f s in all); %.1f KiB in flight on average.",
                   c->peak_bytes / KIB, c->peak_bytes / bdp * 100.0, bdp / KIB, idle,
                   share * bdp / KIB);
        } else {
            print_ceiling_note(cells, i, reps, file_bytes);
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

/* CPU seconds all cores have been busy since boot (/proc/stat); -1 when unreadable. */
static double machine_cpu_s(void)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    int n;
    if (f == NULL) {
        return -1.0;
    }
    n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
               &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 4) {
        return -1.0;
    }
    /* everything but idle (3) and iowait (4) */
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
}

/* CPU seconds of this process (all threads), the broker and the service. */
static double ours_cpu_s(const bench_env_t *env)
{
    struct rusage ru;
    double s = 0.0;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
            ru.ru_stime.tv_usec / 1e6;
    }
    s += bench_env_cpu_seconds(env->broker.proc.pid);
    for (int i = 0; i < env->services; i++) {
        s += bench_env_cpu_seconds(env->service[i].pid);
    }
    return s;
}

/* Create the next run's job and fill in its task. */
static int prepare(bench_env_t *env, task_t *t, const row_t *row, unsigned seed, int setup,
                   const uint8_t *firmware, size_t bytes, unsigned *runs)
{
    char job[64];
    memset(t, 0, sizeof *t);
    t->row = row;
    t->setup = &setups[setup];
    t->seed = seed;
    t->broker_port = env->broker.port;
    t->bytes = bytes;
    snprintf(t->thing, sizeof t->thing, "link-%u", *runs);
    snprintf(job, sizeof job, "link-job-%u", *runs);
    (*runs)++;
    if (bench_env_create_job(env, job, t->thing, firmware, bytes, "1.1.0") != 0 ||
        bench_env_login(env, t->thing, &t->login) != 0) {
        return -1;
    }
    return 0;
}

/* Check a finished task and keep what it did in its cell. */
static int record(const task_t *t, cell_t *c, int k, size_t *file_bytes, int quick)
{
    const bench_device_run_t *r = &t->r;
    int s = t->setup == &setups[DEFAULTS] ? DEFAULTS : AWS_LIKE;
    if (t->rc != 0) {
        fprintf(stderr, "bench: download failed (RTT %.0f ms, %.0f Mbit/s, %s)\n", t->row->rtt_ms,
                t->row->mbit, s == DEFAULTS ? "defaults" : "one block");
        return -1;
    }
    *file_bytes = r->file_size;
    c->time_s[k] = r->verified - r->start;
    c->window_bytes = r->window * r->block_size;
    c->peak_bytes = r->window_peak * r->block_size;
    c->end_bytes = r->stats.window_blocks * r->block_size;
    c->requests = r->stats.requests;
    c->timeouts += r->stats.timeouts;
    c->duplicates += r->stats.blocks_duplicate;
    c->srtt_ms = r->stats.rtt_ms;
    c->lost += t->st.up.lost + t->st.down.lost;
    c->down_bytes = t->st.down.bytes;
    if (quick) {
        printf("RTT %.0f ms, %.0f Mbit/s, %s: verified, %u requests\n", t->row->rtt_ms,
               t->row->mbit, s == DEFAULTS ? "defaults" : "one 4 KiB block per round trip",
               r->stats.requests);
    }
    return 0;
}

/* The defaults, one row at a time, each download alone. */
static int run_defaults(bench_env_t *env, const row_t *const *row, size_t n, int k,
                        cell_t cells[N_ROWS][2], const uint8_t *firmware, size_t bytes,
                        unsigned *runs, size_t *file_bytes, int quick)
{
    for (size_t i = 0; i < n; i++) {
        task_t t;
        if (prepare(env, &t, row[i], (unsigned)(i + 1u), DEFAULTS, firmware, bytes, runs) != 0) {
            return -1;
        }
        run_task(&t);
        if (record(&t, &cells[i][DEFAULTS], k, file_bytes, quick) != 0) {
            return -1;
        }
    }
    return 0;
}

/*
 * One block per round trip, every row side by side: a thread each, with its
 * own emulator, device and connection. Such a download waits on its link
 * (a round trip per 4 KiB) and hardly uses a CPU, so running them together
 * saves minutes; the CPU the phase used and a control cell run alone
 * (print_tables) show it leaves their times alone.
 */
static int run_one_block(bench_env_t *env, const row_t *const *row, size_t n, int k,
                         cell_t cells[N_ROWS][2], const uint8_t *firmware, size_t bytes,
                         unsigned *runs, size_t *file_bytes, int quick, side_t *side, int together)
{
    static task_t tasks[N_ROWS];
    pthread_t th[N_ROWS];
    size_t started = 0;
    double t0, m0, o0;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (prepare(env, &tasks[i], row[i], (unsigned)(i + 1u), AWS_LIKE, firmware, bytes, runs) !=
            0) {
            return -1;
        }
    }
    if (!together) {
        for (size_t i = 0; rc == 0 && i < n; i++) {
            run_task(&tasks[i]);
            rc = record(&tasks[i], &cells[i][AWS_LIKE], k, file_bytes, quick);
        }
        return rc;
    }
    t0 = bench_now();
    m0 = machine_cpu_s();
    o0 = ours_cpu_s(env);
    for (; started < n; started++) {
        if (pthread_create(&th[started], NULL, run_task, &tasks[started]) != 0) {
            fprintf(stderr, "bench: cannot start a thread\n");
            rc = -1;
            break;
        }
    }
    for (size_t i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
    }
    side->wall_s += bench_now() - t0;
    side->machine_s += machine_cpu_s() - m0;
    side->ours_s += ours_cpu_s(env) - o0;
    side->at_once = (unsigned)n;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = record(&tasks[i], &cells[i][AWS_LIKE], k, file_bytes, quick);
    }
    return rc;
}

int main(int argc, char **argv)
{
    static cell_t cells[N_ROWS][2];
    const row_t *row[N_ROWS];
    unsigned image_kib = 1024u;
    int reps = 1, quick = 0, rc = 1;
    size_t n_rows = N_ROWS, file_bytes = 0;
    bench_env_t env;
    uint8_t *firmware;
    unsigned runs = 0;
    side_t side;
    task_t control;

    if (bench_parse_args(argc, argv, "bench_link", &image_kib, &reps, MAX_REPS, &quick) != 0) {
        return 2;
    }
    if (quick) {
        image_kib = 64u;
        reps = 1;
        n_rows = 1;
    }
    for (size_t i = 0; i < n_rows; i++) {
        row[i] = quick ? &quick_row : &rows[i];
    }
    memset(&side, 0, sizeof side);
    firmware = bench_firmware(image_kib * KIB);
    if (firmware == NULL) {
        return 1;
    }
    if (bench_env_start(&env) != 0) {
        free(firmware);
        return 1;
    }
    /* Every row's two configurations per repetition, the control, and the one-block cells again
     * in case the check fails. */
    if (bench_env_add_things(&env, "link-", (unsigned)(n_rows * 3u) * (unsigned)reps + 1u, NULL) !=
            0 ||
        bench_env_start_services(&env, 1) != 0) {
        goto out;
    }
    for (int k = 0; k < reps; k++) {
        /* Alternate which configuration goes first. */
        for (int j = 0; j < 2; j++) {
            int defaults_now = (k % 2 == 0) == (j == 0);
            if (defaults_now ? run_defaults(&env, row, n_rows, k, cells, firmware, image_kib * KIB,
                                            &runs, &file_bytes, quick)
                             : run_one_block(&env, row, n_rows, k, cells, firmware, image_kib * KIB,
                                             &runs, &file_bytes, quick, &side, 1)) {
                goto out;
            }
        }
    }
    /* The control: the shortest round trip's one-block cell (most sensitive to a delay added per
     * request) once more, alone. */
    side.control = 0;
    for (size_t i = 0; i < n_rows; i++) {
        if (row[i]->loss == 0.0 && per_block_s(row[i]) < per_block_s(row[side.control])) {
            side.control = i;
        }
    }
    if (prepare(&env, &control, row[side.control], (unsigned)(side.control + 1u), AWS_LIKE,
                firmware, image_kib * KIB, &runs) != 0) {
        goto out;
    }
    run_task(&control);
    if (control.rc != 0) {
        fprintf(stderr, "bench: the control download failed\n");
        goto out;
    }
    side.alone_s = control.r.verified - control.r.start;
    side.beside_s = median_s(&cells[side.control][AWS_LIKE], reps);
    /* Side by side unproven: run the one-block cells again, one at a time (the smoke test takes
     * this path too). */
    side.redone = !side_ok(&side);
    if (side.redone || quick) {
        for (size_t i = 0; i < n_rows; i++) {
            memset(&cells[i][AWS_LIKE], 0, sizeof cells[i][AWS_LIKE]);
        }
        for (int k = 0; k < reps; k++) {
            if (run_one_block(&env, row, n_rows, k, cells, firmware, image_kib * KIB, &runs,
                              &file_bytes, quick, &side, 0) != 0) {
                goto out;
            }
        }
    }
    if (quick) {
        printf("control, alone: verified in %.2f s (side by side %.2f s)\n", side.alone_s,
               side.beside_s);
    } else {
        printf("## 5. An update over real-shaped links: %.2f MiB image through the link "
               "emulator\n\n",
               (double)file_bytes / MIB);
        print_tables(cells, reps, file_bytes, &side);
    }
    rc = 0;
out:
    bench_env_stop(&env);
    free(firmware);
    return rc;
}
