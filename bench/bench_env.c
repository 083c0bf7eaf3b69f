/* otter benchmarks: broker, store, services and jobs of one measurement. */
#define _GNU_SOURCE
#include "bench_env.h"

#include <dirent.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_quantile(double *v, size_t n, double q)
{
    size_t k;
    if (n == 0u) {
        return 0.0;
    }
    qsort(v, n, sizeof *v, cmp_double);
    k = (size_t)(q * (double)n + 0.999999);
    if (k < 1u) {
        k = 1u;
    }
    return v[(k > n ? n : k) - 1u];
}

static void raise_open_files(void)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < 8192u) {
        r.rlim_cur = 8192u;
        if (r.rlim_max < r.rlim_cur) {
            r.rlim_max = r.rlim_cur; /* root may raise the hard limit */
        }
        if (setrlimit(RLIMIT_NOFILE, &r) != 0) {
            getrlimit(RLIMIT_NOFILE, &r);
            r.rlim_cur = r.rlim_max;
            (void)setrlimit(RLIMIT_NOFILE, &r);
        }
    }
}

/* A fresh env with its temporary folder; 0 or -1. */
static int env_begin(bench_env_t *env)
{
    memset(env, 0, sizeof *env);
    snprintf(env->dir, sizeof env->dir, "/tmp/otter-bench-XXXXXX");
    if (mkdtemp(env->dir) == NULL) {
        perror("bench: mkdtemp");
        return -1;
    }
    env->keep = getenv("BENCH_KEEP") != NULL;
    raise_open_files();
    return 0;
}

int bench_env_start_federated(bench_env_t *env)
{
    char member[32], dir2[300];
    const char *init_args[] = {"--shared-streams", "--federate", member, NULL};
    if (env_begin(env) != 0) {
        return -1;
    }
    env->federated = 1;
    snprintf(member, sizeof member, "127.0.0.1:%d", ota_test_free_port());
    snprintf(dir2, sizeof dir2, "%s/federation/2", env->dir);
    if (ota_test_broker_start_with(&env->broker, env->dir, init_args) != 0) {
        fprintf(stderr, "bench: the hub did not start (is Mosquitto installed? scripts/deps.sh)\n");
        bench_env_stop(env);
        return -1;
    }
    env->broker_up = 1;
    if (ota_test_broker_start_with(&env->broker2, dir2, NULL) != 0) {
        fprintf(stderr, "bench: broker 2 did not start; see %s/mosquitto.log\n", dir2);
        bench_env_stop(env);
        return -1;
    }
    /* The hub's bridge to broker 2 may have tried before broker 2 listened; it tries again
     * within seconds. Requests of broker 2's devices sent before it connects reach nobody. */
    char log2[400];
    snprintf(log2, sizeof log2, "%s/mosquitto.log", dir2);
    if (ota_test_log_wait(log2, 0, "New bridge connected", 15000) != 0) {
        fprintf(stderr, "bench: the hub's bridge did not reach broker 2; see %s\n", log2);
        bench_env_stop(env);
        return -1;
    }
    return 0;
}

int bench_env_start(bench_env_t *env)
{
    if (env_begin(env) != 0) {
        return -1;
    }
    /* The broker `otter broker init` sets up in the data folder, as users run it. */
    if (ota_test_broker_start(&env->broker, env->dir) != 0) {
        fprintf(stderr, "bench: Mosquitto did not start (is it installed? scripts/deps.sh)\n");
        bench_env_stop(env);
        return -1;
    }
    env->broker_up = 1;
    return 0;
}

/* Things per `otter thing create`: a call stays well within the test helpers' 120 s on a loaded
 * machine. */
#define THINGS_PER_CALL 200u

int bench_env_add_things(bench_env_t *env, const char *prefix, unsigned n, const char *group)
{
    const char **args = calloc((size_t)THINGS_PER_CALL + 5, sizeof *args);
    char(*names)[64] = calloc(THINGS_PER_CALL, sizeof *names);
    char log[400];
    int rc = args != NULL && names != NULL ? 0 : -1;
    snprintf(log, sizeof log, "%s/cli.log", env->dir);
    for (unsigned first = 0; rc == 0 && first < n; first += THINGS_PER_CALL) {
        size_t k = 0;
        args[k++] = "thing";
        args[k++] = "create";
        if (group != NULL) {
            args[k++] = "--group";
            args[k++] = group;
        }
        for (unsigned i = first; i < n && i - first < THINGS_PER_CALL; i++) {
            snprintf(names[i - first], sizeof names[i - first], "%s%u", prefix, i);
            args[k++] = names[i - first];
        }
        args[k] = NULL;
        rc = ota_test_otter(env->dir, args, log) == 0 ? 0 : -1;
        if (rc != 0) {
            fprintf(stderr, "bench: otter thing create failed; see %s\n", log);
        }
    }
    free(args);
    free(names);
    return rc;
}

int bench_env_login(const bench_env_t *env, const char *thing, ota_test_login_t *out)
{
    if (ota_test_thing_login(&env->broker, thing, out) != 0) {
        fprintf(stderr, "bench: no login for %s\n", thing);
        return -1;
    }
    return 0;
}

int bench_env_start_http(bench_env_t *env)
{
    char port[16], log[400];
    char *argv[] = {(char *)BENCH_OTTER_HTTP, "--data-dir", env->dir, "--port", port, NULL};
    long from;
    env->http_port = ota_test_free_port();
    snprintf(port, sizeof port, "%d", env->http_port);
    snprintf(log, sizeof log, "%s/http.log", env->dir);
    from = ota_test_log_size(log);
    if (ota_test_proc_start(&env->http, "otter-http", argv, log) != 0 ||
        ota_test_log_wait(log, from, "INFO ready:", 10000) != 0) {
        fprintf(stderr, "bench: otter-http did not get ready; see %s\n", log);
        env->keep = 1;
        return -1;
    }
    return 0;
}

int bench_env_start_services(bench_env_t *env, int n)
{
    /* With two instances, the first serves jobs and half of the streams, the
     * second the other half of the streams. */
    char url[64];
    const char *const one[] = {"--share-group", "none", env->http_port != 0 ? "--http-url" : NULL,
                               url, NULL};
    static const char *const first[] = {"--share-group", "none", "--shard", "0/2", NULL};
    static const char *const second[] = {"--role", "streams", "--share-group", "none", "--shard",
                                         "1/2",    NULL};
    /* On a federation the instances share the stream requests through the hub's bridge to
     * itself: the first in role all, the others in role streams. */
    static const char *const fed_first[] = {NULL};
    static const char *const fed_more[2][5] = {{"--role", "streams", "--instance", "s1", NULL},
                                               {"--role", "streams", "--instance", "s2", NULL}};
    char log[400];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", env->http_port);
    if (n < 1 || n > BENCH_ENV_MAX_SERVICES || (env->http_port != 0 && n != 1) ||
        (!env->federated && n > 2)) {
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const char *const *args = env->federated ? (i == 0 ? fed_first : fed_more[i - 1])
                                  : n == 1       ? one
                                  : i == 0       ? first
                                                 : second;
        snprintf(log, sizeof log, "%s/service%d.log", env->dir, i);
        if (ota_test_service_start(&env->service[i], env->dir, &env->broker, args, log) != 0) {
            fprintf(stderr, "bench: otter-service did not get ready; see %s\n", log);
            env->keep = 1;
            if (env->service[i].pid != 0) {
                ota_test_proc_stop(&env->service[i]);
            }
            return -1;
        }
        env->services = i + 1;
    }
    return 0;
}

int bench_env_create_job(bench_env_t *env, const char *job_id, const char *targets,
                         const uint8_t *firmware, size_t len, const char *version)
{
    char fw[400], log[400];
    FILE *fp;
    ota_test_proc_t p;
    int status = -1;
    snprintf(fw, sizeof fw, "%s/firmware-%u.bin", env->dir, env->job_count++);
    snprintf(log, sizeof log, "%s/cli.log", env->dir);
    fp = fopen(fw, "wb");
    if (fp == NULL || fwrite(firmware, 1, len, fp) != len || fclose(fp) != 0) {
        fprintf(stderr, "bench: cannot write %s\n", fw);
        return -1;
    }
    char *argv[] = {(char *)BENCH_OTTER_CLI,
                    "--data-dir",
                    env->dir,
                    "job",
                    "create",
                    "--file",
                    fw,
                    "--version",
                    (char *)version,
                    "--targets",
                    (char *)targets,
                    "--key",
                    (char *)BENCH_TEST_KEYS_DIR "/codesign-test.key",
                    "--cert-name",
                    (char *)BENCH_ENV_CERT_NAME,
                    "--job-id",
                    (char *)job_id,
                    env->protocols != NULL ? "--protocols" : NULL,
                    (char *)env->protocols,
                    NULL};
    if (ota_test_proc_start(&p, "otter", argv, log) != 0) {
        fprintf(stderr, "bench: cannot run %s\n", BENCH_OTTER_CLI);
        return -1;
    }
    for (int i = 0; i < 6000 && ota_test_proc_running(&p, &status); i++) {
        usleep(5000);
    }
    if (p.pid != 0) {
        ota_test_proc_kill(&p);
    }
    if (status != 0) {
        fprintf(stderr, "bench: otter job create failed; see %s\n", log);
        env->keep = 1;
        return -1;
    }
    return 0;
}

double bench_env_cpu_seconds(pid_t pid)
{
    char path[300];
    struct dirent *e;
    unsigned long long ns, total = 0;
    DIR *dir;
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    dir = opendir(path);
    if (dir == NULL) {
        return -1.0;
    }
    while ((e = readdir(dir)) != NULL) {
        FILE *fp;
        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof path, "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
        fp = fopen(path, "r");
        if (fp != NULL) {
            if (fscanf(fp, "%llu", &ns) == 1) {
                total += ns;
            }
            fclose(fp);
        }
    }
    closedir(dir);
    return (double)total / 1e9;
}

void bench_env_stop(bench_env_t *env)
{
    for (int i = env->services - 1; i >= 0; i--) {
        if (env->service[i].pid != 0) {
            ota_test_proc_stop(&env->service[i]);
        }
    }
    env->services = 0;
    if (env->http.pid != 0) {
        ota_test_proc_stop(&env->http);
    }
    env->http_port = 0;
    ota_test_broker_stop(&env->broker2);
    if (env->broker_up) {
        ota_test_broker_stop(&env->broker);
        env->broker_up = 0;
    }
    if (env->dir[0] != '\0') {
        if (env->keep) {
            fprintf(stderr, "bench: kept %s\n", env->dir);
        } else {
            char cmd[320];
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", env->dir);
            if (system(cmd) != 0) {
                fprintf(stderr, "bench: could not remove %s\n", env->dir);
            }
        }
        env->dir[0] = '\0';
    }
}

int bench_parse_args(int argc, char **argv, const char *prog, unsigned *image_kib, int *reps,
                     int max_reps, int *quick)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--image-kib") == 0 && i + 1 < argc) {
            *image_kib = (unsigned)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            *reps = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--quick") == 0) {
            *quick = 1;
        } else {
            fprintf(stderr, "usage: %s [--image-kib N] [--reps R] [--quick]\n", prog);
            return -1;
        }
    }
    if (*image_kib < 16u || *image_kib > 2048u || *reps < 1 || *reps > max_reps) {
        fprintf(stderr, "bench: --image-kib takes 16 .. 2048, --reps 1 .. %d\n", max_reps);
        return -1;
    }
    return 0;
}

uint8_t *bench_firmware(size_t len)
{
    uint8_t *firmware = malloc(len);
    for (size_t i = 0; firmware != NULL && i < len; i++) {
        firmware[i] = (uint8_t)((i * 2654435761u) >> 13);
    }
    return firmware;
}
