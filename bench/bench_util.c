/*
 * otter benchmarks: the helpers the store benchmarks share. See bench_util.h.
 */
#define _POSIX_C_SOURCE 200809L

#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

double bench_now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

void bench_store_die(const char *prog, ota_store_t *s, const char *what)
{
    fprintf(stderr, "%s: %s: %s\n", prog, what, s ? ota_store_errmsg(s) : "failed");
    exit(1);
}
