/*
 * otter-link-emu: the link emulator (link_emu.h) as a program.
 *
 *   otter-link-emu --to HOST:PORT [--listen PORT] [--delay MS] [--delay-up MS]
 *                  [--delay-down MS] [--rate MBIT] [--rate-up MBIT] [--rate-down MBIT]
 *                  [--queue BYTES] [--loss SHARE] [--reorder SHARE] [--reorder-ms MS]
 *                  [--seed N] [--segment BYTES] [--max-connections N] [--no-realtime]
 *
 * Listens on 127.0.0.1 (a free port unless --listen), prints one line with
 * the port, relays every connection to HOST:PORT through the emulated link
 * until SIGINT or SIGTERM, then prints what each direction carried. --delay
 * and --rate set both directions; "up" is from the connecting client to
 * HOST:PORT. --queue sets both bottleneck buffers (default: one
 * bandwidth-delay product, at least 16 KiB). --no-realtime keeps the thread
 * at ordinary priority (see link_emu.h).
 *
 * Example, a 100 ms round trip at 10 Mbit/s in front of a broker:
 *   otter-link-emu --to 127.0.0.1:1883 --listen 1884 --delay 50 --rate 10
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "link_emu.h"

static void usage(void)
{
    fprintf(stderr,
            "usage: otter-link-emu --to HOST:PORT [--listen PORT] [--delay MS] [--delay-up MS]\n"
            "         [--delay-down MS] [--rate MBIT] [--rate-up MBIT] [--rate-down MBIT]\n"
            "         [--queue BYTES] [--loss SHARE] [--reorder SHARE] [--reorder-ms MS]\n"
            "         [--seed N] [--segment BYTES] [--max-connections N] [--no-realtime]\n");
}

/* A number, the whole argument; -1 with a message when it is not one. */
static int number(const char *opt, const char *arg, double *out)
{
    char *end = NULL;
    *out = strtod(arg, &end);
    if (end == arg || *end != '\0') {
        fprintf(stderr, "otter-link-emu: --%s takes a number, not \"%s\"\n", opt, arg);
        return -1;
    }
    return 0;
}

static void print_dir(const char *name, const link_emu_dir_stats_t *d)
{
    double span = d->last_s - d->first_s;
    printf("%s: %llu bytes in %llu segments (%llu lost, %llu reordered), %.3f Mbit/s, "
           "late writes mean %.2f ms max %.2f ms, buffer %zu bytes (peak %zu)\n",
           name, (unsigned long long)d->bytes, (unsigned long long)d->segments,
           (unsigned long long)d->lost, (unsigned long long)d->reordered,
           span > 0.0 ? (double)(d->bytes - d->first_bytes) * 8.0 / span / 1e6 : 0.0,
           d->segments > 0u ? d->late_sum_s / (double)d->segments * 1e3 : 0.0, d->late_max_s * 1e3,
           d->queue_bytes, d->queue_peak);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"to", required_argument, NULL, 't'},
                                         {"listen", required_argument, NULL, 'l'},
                                         {"delay", required_argument, NULL, 'd'},
                                         {"delay-up", required_argument, NULL, 'u'},
                                         {"delay-down", required_argument, NULL, 'D'},
                                         {"rate", required_argument, NULL, 'r'},
                                         {"rate-up", required_argument, NULL, 'U'},
                                         {"rate-down", required_argument, NULL, 'R'},
                                         {"queue", required_argument, NULL, 'q'},
                                         {"loss", required_argument, NULL, 'L'},
                                         {"reorder", required_argument, NULL, 'o'},
                                         {"reorder-ms", required_argument, NULL, 'O'},
                                         {"seed", required_argument, NULL, 's'},
                                         {"segment", required_argument, NULL, 'S'},
                                         {"max-connections", required_argument, NULL, 'm'},
                                         {"no-realtime", no_argument, NULL, 'n'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    link_emu_config_t cfg;
    link_emu_stats_t st;
    link_emu_t *emu;
    char host[256] = "";
    sigset_t set;
    int c, sig, idx = 0;
    double v = 0.0;

    memset(&cfg, 0, sizeof cfg);
    while ((c = getopt_long(argc, argv, "", opts, &idx)) != -1) {
        if (c == 'h') {
            usage();
            return 0;
        }
        if (c == 'n') {
            cfg.plain_priority = 1;
            continue;
        }
        if (c == '?' || (c != 't' && number(opts[idx].name, optarg, &v) != 0)) {
            usage();
            return 2;
        }
        switch (c) {
        case 't': {
            const char *colon = strrchr(optarg, ':');
            if (colon == NULL || (size_t)(colon - optarg) >= sizeof host ||
                number("to's port", colon + 1, &v) != 0) {
                fprintf(stderr, "otter-link-emu: --to takes HOST:PORT\n");
                return 2;
            }
            memcpy(host, optarg, (size_t)(colon - optarg));
            host[colon - optarg] = '\0';
            cfg.target_port = v >= 1.0 && v <= 65535.0 ? (int)v : -1;
            break;
        }
        case 'l':
            cfg.listen_port = v >= 0.0 && v <= 65535.0 ? (int)v : -1;
            break;
        case 'd':
            cfg.up.delay_ms = cfg.down.delay_ms = v;
            break;
        case 'u':
            cfg.up.delay_ms = v;
            break;
        case 'D':
            cfg.down.delay_ms = v;
            break;
        case 'r':
            cfg.up.rate_bps = cfg.down.rate_bps = v * 1e6;
            break;
        case 'U':
            cfg.up.rate_bps = v * 1e6;
            break;
        case 'R':
            cfg.down.rate_bps = v * 1e6;
            break;
        case 'q':
            cfg.up.queue_bytes = cfg.down.queue_bytes = v >= 1.0 ? (size_t)v : 1u;
            break;
        case 'L':
            cfg.loss = v;
            break;
        case 'o':
            cfg.reorder = v;
            break;
        case 'O':
            cfg.reorder_ms = v;
            break;
        case 's':
            cfg.seed = v >= 0.0 ? (uint64_t)v : 0u;
            break;
        case 'S':
            cfg.segment_bytes = v >= 1.0 ? (size_t)v : 1u;
            break;
        case 'm':
            cfg.max_connections = v >= 1.0 && v <= 1e6 ? (unsigned)v : 1000000u;
            break;
        default:
            break;
        }
    }
    if (optind != argc || host[0] == '\0') {
        usage();
        return 2;
    }
    cfg.target_host = host;
    /* Block the stop signals before the emulator's thread starts, so it inherits the mask. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (link_emu_start(&cfg, &emu) != 0) {
        return 1;
    }
    printf("otter-link-emu: 127.0.0.1:%d -> %s:%d; up %.1f ms %.3f Mbit/s, down %.1f ms %.3f "
           "Mbit/s (0: unlimited), loss %.4f, reorder %.4f (%.1f ms)\n",
           link_emu_port(emu), host, cfg.target_port, cfg.up.delay_ms, cfg.up.rate_bps / 1e6,
           cfg.down.delay_ms, cfg.down.rate_bps / 1e6, cfg.loss, cfg.reorder, cfg.reorder_ms);
    fflush(stdout);
    sigwait(&set, &sig);
    link_emu_get_stats(emu, &st);
    link_emu_stop(emu);
    printf("connections: %llu relayed, %llu refused; thread %s\n", (unsigned long long)st.accepted,
           (unsigned long long)st.refused,
           st.realtime ? "real-time (SCHED_FIFO)" : "at ordinary priority");
    print_dir("up", &st.up);
    print_dir("down", &st.down);
    return 0;
}
