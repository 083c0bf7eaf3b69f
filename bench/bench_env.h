/*
 * otter benchmarks: the service side of a measurement, on this machine.
 *
 * A benchmark starts a Mosquitto broker on a free loopback port with exactly
 * the configuration `otter broker init` writes (logins, access rules,
 * TCP_NODELAY, persistence), creates things and their logins with
 * `otter thing create` in a fresh otter data folder, starts one or two otter-service
 * instances, and creates jobs with the otter CLI, signed with the test
 * signer the simulated devices trust (test-keys/codesign-test.*). Everything
 * it starts is stopped by bench_env_stop(), and also when the benchmark dies.
 */
#ifndef BENCH_ENV_H
#define BENCH_ENV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ota_test_net.h"

/** Most service instances one environment runs. */
#define BENCH_ENV_MAX_SERVICES 3

/** Certificate name the job documents give and the simulated devices trust. */
#define BENCH_ENV_CERT_NAME "codesign-test.crt"

/** A broker, a data folder and the service instances of one measurement. */
typedef struct bench_env {
    char dir[256]; /**< temporary folder: the service's data, logs, firmware */
    ota_test_broker_t broker;
    int broker_up;
    ota_test_broker_t broker2; /**< broker 2 of a federation (bench_env_start_federated) */
    int federated;             /**< 1: the hub and broker 2, the services sharing streams */
    ota_test_proc_t service[BENCH_ENV_MAX_SERVICES];
    int services;          /**< instances running */
    ota_test_proc_t http;  /**< otter-http (bench_env_start_http), pid 0 when not running */
    int http_port;         /**< its port on 127.0.0.1 (0: none) */
    const char *protocols; /**< otter job create --protocols (NULL: the CLI's default) */
    int keep;              /**< keep the folder at stop (BENCH_KEEP set) */
    unsigned job_count;    /**< jobs created so far (names the firmware files) */
} bench_env_t;

/**
 * Make the data folder, `otter broker init` in it on a free port, and start
 * the broker on 127.0.0.1 with that configuration. Raises the open-file limit
 * first (a fleet holds a socket per device, and the broker inherits the limit).
 * @param env          receives the environment.
 * @return 0; -1 with a message on stderr (nothing left running).
 */
int bench_env_start(bench_env_t *env);

/**
 * Like bench_env_start(), with a federation of two brokers as `otter broker
 * init --shared-streams --federate 127.0.0.1:P` writes them: the hub (env->broker,
 * where the services connect) and broker 2 (env->broker2). Things' files spread
 * them over both; services then share the stream requests (role all, then role
 * streams).
 * @return 0, or -1 (nothing left running).
 */
int bench_env_start_federated(bench_env_t *env);

/**
 * Create things PREFIX0 .. PREFIX(n-1), members of group, with their broker
 * logins: one `otter thing create --group G NAME...` (the running broker takes
 * the logins at once).
 * @param env    a started environment, before the services start.
 * @param prefix thing name prefix.
 * @param n      how many.
 * @param group  group to add them to, or NULL.
 * @return 0; -1 with a message on stderr.
 */
int bench_env_add_things(bench_env_t *env, const char *prefix, unsigned n, const char *group);

/**
 * The broker login of a thing (its credentials file; made with
 * `otter thing create` when missing).
 * @return 0; -1 with a message on stderr.
 */
int bench_env_login(const bench_env_t *env, const char *thing, ota_test_login_t *out);

/**
 * Start otter-http on a free loopback port, serving the data folder's files;
 * the service instances started after it give its URL (--http-url), so jobs
 * created with env->protocols listing HTTP carry presigned URLs.
 * @param env a started environment, before the services start.
 * @return 0 once it is ready; -1 with a message on stderr.
 */
int bench_env_start_http(bench_env_t *env);

/**
 * Start n service instances (1: one instance with every role; 2: both
 * serving jobs and streams, each answering the stream requests of half of
 * the things with --shard K/2, since Debian's Mosquitto does not deliver
 * shared subscriptions on $aws topics).
 * @param env a started environment.
 * @param n   1 or BENCH_ENV_MAX_SERVICES.
 * @return 0 once every instance is ready; -1 with a message on stderr.
 */
int bench_env_start_services(bench_env_t *env, int n);

/**
 * Create a firmware update job with the otter CLI: the image is firmware
 * (written to the data folder), wrapped in otter's image header, signed with
 * the test key.
 * @param env      a started environment.
 * @param job_id   the job's id.
 * @param targets  otter job create --targets (names and group:NAME).
 * @param firmware the firmware bytes; len of them.
 * @param version  "X.Y.Z".
 * @return 0; -1 with a message on stderr (the CLI's output is in DIR/cli.log).
 */
int bench_env_create_job(bench_env_t *env, const char *job_id, const char *targets,
                         const uint8_t *firmware, size_t len, const char *version);

/**
 * CPU time all threads of a process have run so far, in seconds, with
 * nanosecond resolution (the first field of /proc/PID/task/TID/schedstat).
 * @param pid the process.
 * @return seconds; -1.0 when it cannot be read.
 */
double bench_env_cpu_seconds(pid_t pid);

/**
 * Stop the services and the broker and remove the folder (kept when the
 * environment variable BENCH_KEEP is set, and named on stderr). Safe to call
 * twice and on a failed start.
 * @param env the environment.
 */
void bench_env_stop(bench_env_t *env);

/**
 * The options of the one-device benchmarks: --image-kib N (16 .. 2048),
 * --reps R (1 .. max_reps), --quick. Values not given are left as they are.
 * @param prog the program's name, for the usage message.
 * @return 0; -1 with the usage on stderr.
 */
int bench_parse_args(int argc, char **argv, const char *prog, unsigned *image_kib, int *reps,
                     int max_reps, int *quick);

/**
 * A firmware of len bytes in a fixed pattern (the same in every benchmark).
 * @return the bytes (free() them); NULL when out of memory.
 */
uint8_t *bench_firmware(size_t len);

/** Monotonic time, seconds. */
double bench_now(void);

/**
 * The q-quantile (0..1) of n values, sorted in place (nearest rank).
 * @return the value; 0 for n == 0.
 */
double bench_quantile(double *v, size_t n, double q);

#endif /* BENCH_ENV_H */
