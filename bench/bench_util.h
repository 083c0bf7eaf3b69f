/*
 * otter benchmarks: what the store benchmarks (bench_store, bench_presence,
 * bench_list) share: a monotonic clock and a fatal store error.
 */
#ifndef OTTER_BENCH_UTIL_H
#define OTTER_BENCH_UTIL_H

#include "ota_store.h"

/** Seconds on the monotonic clock. */
double bench_now_s(void);

/**
 * Prints "PROG: WHAT: the store's last error" (or "failed" without a store)
 * to stderr and exits 1.
 */
void bench_store_die(const char *prog, ota_store_t *s, const char *what);

#endif /* OTTER_BENCH_UTIL_H */
