/*
 * otter benchmark: the store's throughput on SQLite and on PostgreSQL, with
 * the same operations through the same API, and the ratio between them.
 *
 *   bench_store [--things N] [--quick]
 *
 * SQLite runs in a fresh data folder (WAL, synchronous=NORMAL, as the
 * service uses it); PostgreSQL on a throwaway local server started for the
 * run over TCP on 127.0.0.1, twice: with its default durability (fsync on,
 * synchronous_commit on) and with fsync off (what is left is the cost of
 * the round trips). Each operation is one call of the store API (one
 * transaction for writes). Prints one line per operation: calls per second
 * on each and PostgreSQL (durable) / SQLite.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "ota_store.h"
#include "ota_test_pg.h"

#define OPS 5

static const char *const op_names[OPS] = {"thing create", "job create (per target)",
                                          "execution update", "next execution (read)",
                                          "timeout sweep (per execution)"};

/* Runs the workload on one store; rates[i] = calls per second of op i. */
static void run(ota_store_t *s, int n, double *rates)
{
    const int64_t t0 = 1700000000000LL;
    char(*names)[32] = calloc((size_t)n, sizeof *names);
    const char **ptrs = calloc((size_t)n, sizeof *ptrs);
    double t = bench_now_s();
    for (int i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "bench-%05d", i);
        ptrs[i] = names[i];
        if (ota_store_thing_create(s, names[i], t0) != OTA_STORE_OK)
            bench_store_die("bench_store", s, "thing create");
    }
    rates[0] = n / (bench_now_s() - t);
    ota_store_job_spec_t spec = {0};
    spec.job_id = "bench";
    spec.document = "{\"afr_ota\":{\"protocols\":[\"MQTT\"],\"streamname\":\"s\",\"files\":[]}}";
    spec.things = ptrs;
    spec.n_things = (size_t)n;
    spec.in_progress_timeout_min = 1;
    t = bench_now_s();
    if (ota_store_job_create(s, &spec, t0) != OTA_STORE_OK)
        bench_store_die("bench_store", s, "job create");
    rates[1] = n / (bench_now_s() - t);
    t = bench_now_s();
    for (int i = 0; i < n; i++) {
        ota_store_exec_update_t u = {.status = OTA_STORE_EXEC_IN_PROGRESS,
                                     .status_details = "{\"receive\":\"1/9\"}"};
        if (ota_store_execution_update(s, "bench", names[i], &u, t0 + 1, NULL) != OTA_STORE_OK)
            bench_store_die("bench_store", s, "execution update");
    }
    rates[2] = n / (bench_now_s() - t);
    t = bench_now_s();
    for (int i = 0; i < n; i++) {
        ota_store_execution_t e;
        if (ota_store_execution_next(s, names[i], &e) != OTA_STORE_OK)
            bench_store_die("bench_store", s, "next execution");
        ota_store_execution_free(&e);
    }
    rates[3] = n / (bench_now_s() - t);
    t = bench_now_s();
    size_t timed = 0;
    if (ota_store_expire_timeouts(s, t0 + 2 * 60000, &timed) != OTA_STORE_OK || timed != (size_t)n)
        bench_store_die("bench_store", s, "timeout sweep");
    rates[4] = n / (bench_now_s() - t);
    free(names);
    free(ptrs);
}

int main(int argc, char **argv)
{
    int n = 1000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            n = 100;
        else if (strcmp(argv[i], "--things") == 0 && i + 1 < argc)
            n = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_store [--things N] [--quick]\n");
            return 2;
        }
    }
    if (n < 1 || n > 100000) {
        fprintf(stderr, "bench_store: --things takes 1..100000\n");
        return 2;
    }
    char dir[] = "/tmp/otter-bench-store-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char sqlite_dir[64], pg_dir[64];
    snprintf(sqlite_dir, sizeof sqlite_dir, "%s/sqlite", dir);
    snprintf(pg_dir, sizeof pg_dir, "%s/pg", dir);
    double lite[OPS], pg[OPS], nosync[OPS];
    ota_store_t *s;
    if (ota_store_open_at(sqlite_dir, NULL, &s) != OTA_STORE_OK)
        return 1;
    run(s, n, lite);
    ota_store_close(s);
    for (int durable = 1; durable >= 0; durable--) {
        ota_test_pg_t server;
        if (ota_test_pg_start_with(&server, durable) != 0)
            return 1;
        if (ota_store_open_at(pg_dir, server.url, &s) != OTA_STORE_OK)
            return 1;
        run(s, n, durable ? pg : nosync);
        ota_store_close(s);
        ota_test_pg_stop(&server);
    }
    char *rm[] = {"rm", "-rf", dir, NULL};
    pid_t pid = fork();
    if (pid == 0) {
        execvp("rm", rm);
        _exit(127);
    }
    waitpid(pid, NULL, 0);
    printf("store throughput, %d things, calls per second\n", n);
    printf("%-30s %10s %11s %11s %10s\n", "operation", "SQLite", "PostgreSQL", "PG no fsync",
           "PG/SQLite");
    for (int i = 0; i < OPS; i++)
        printf("%-30s %10.0f %11.0f %11.0f %10.2f\n", op_names[i], lite[i], pg[i], nosync[i],
               pg[i] / lite[i]);
    return 0;
}
