/*
 * otter benchmark: a device that reconnects in a loop beside one that asks
 * the Jobs API, through a real Mosquitto and otter-service (SQLite store).
 *
 *   bench_flap [--seconds S] [--loops N] [--quick]
 *
 * Three things: flap-0 (the flapping one), flap-1 (asks $aws/things/flap-1/
 * jobs/get every 125 ms, within its Jobs budget, and times each answer) and
 * flap-2 (connects once during the flapping). Two phases of S seconds
 * (default 10): quiet (flap-1 alone), then flapping: N threads (default 2)
 * connect as flap-0 with its own login and disconnect again, as fast as the
 * broker answers, each connection a pair of broker notices the service's
 * presence reads. Midway, flap-2 connects; the time until the store says it
 * is connected is taken. After the flapping, the time until the store says
 * flap-0 is not connected, with a lastSeen from the flapping's end (its last
 * notice recorded), is taken too.
 *
 * Prints a Markdown table: connects per second, the service's CPU, the
 * Jobs answer times (median, 90th percentile, most), per phase.
 *
 * --quick: 2 s phases; it fails unless every Jobs request is answered,
 * flap-2 is stored connected and flap-0 ends stored not connected with a
 * lastSeen from the flapping's end (a smoke test: it times nothing).
 */
#define _GNU_SOURCE
#include <mosquitto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_env.h"
#include "ota_store.h"

#define LOOPS_MAX 8
#define ASK_EVERY_S 0.125
#define ANSWER_TIMEOUT_S 5.0
#define SAMPLES_MAX 4096

static double wall_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* ---- the flapping device: connect, CONNACK, disconnect, again ---- */

typedef struct flapper {
    pthread_t thread;
    const ota_test_login_t *login;
    int port;
    volatile int stop;
    volatile int acked;
    unsigned long connects;
} flapper_t;

static void flap_on_connect(struct mosquitto *m, void *obj, int rc)
{
    flapper_t *f = obj;
    (void)m;
    f->acked = rc == 0 ? 1 : -1;
}

static void *flap_loop(void *arg)
{
    flapper_t *f = arg;
    struct mosquitto *m = mosquitto_new(f->login->client_id, true, f);
    if (m == NULL ||
        mosquitto_username_pw_set(m, f->login->username, f->login->password) != MOSQ_ERR_SUCCESS) {
        return NULL;
    }
    mosquitto_connect_callback_set(m, flap_on_connect);
    int first = 1;
    while (!f->stop) {
        f->acked = 0;
        int rc = first ? mosquitto_connect(m, "127.0.0.1", f->port, 60) : mosquitto_reconnect(m);
        first = 0;
        if (rc != MOSQ_ERR_SUCCESS) {
            usleep(1000);
            continue;
        }
        double until = bench_now() + 2.0;
        while (!f->acked && !f->stop && bench_now() < until &&
               mosquitto_loop(m, 50, 1) == MOSQ_ERR_SUCCESS) {
        }
        if (f->acked == 1) {
            f->connects++;
        }
        mosquitto_disconnect(m);
        (void)mosquitto_loop(m, 0, 1);
    }
    mosquitto_destroy(m);
    return NULL;
}

/* ---- the asking device: jobs/get, one at a time, timed ---- */

typedef struct asker {
    struct mosquitto *m;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned long answered; /* answers seen */
    int subscribed;
} asker_t;

static void ask_on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    asker_t *a = obj;
    (void)m;
    (void)msg;
    pthread_mutex_lock(&a->lock);
    a->answered++;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);
}

static void ask_on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *granted)
{
    asker_t *a = obj;
    (void)m;
    (void)mid;
    (void)n;
    (void)granted;
    pthread_mutex_lock(&a->lock);
    a->subscribed = 1;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);
}

/* Waits until a->answered reaches want or until the deadline (bench_now() seconds). */
static int ask_wait(asker_t *a, unsigned long want, double deadline)
{
    pthread_mutex_lock(&a->lock);
    while (a->answered < want && bench_now() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 5000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&a->cond, &a->lock, &ts);
    }
    int ok = a->answered >= want;
    pthread_mutex_unlock(&a->lock);
    return ok;
}

static int asker_start(asker_t *a, int port, const ota_test_login_t *login)
{
    memset(a, 0, sizeof *a);
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->cond, NULL);
    a->m = mosquitto_new(login->client_id, true, a);
    if (a->m == NULL || mosquitto_int_option(a->m, MOSQ_OPT_TCP_NODELAY, 1) != MOSQ_ERR_SUCCESS ||
        mosquitto_username_pw_set(a->m, login->username, login->password) != MOSQ_ERR_SUCCESS) {
        return -1;
    }
    mosquitto_message_callback_set(a->m, ask_on_message);
    mosquitto_subscribe_callback_set(a->m, ask_on_subscribe);
    if (mosquitto_connect(a->m, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS ||
        mosquitto_loop_start(a->m) != MOSQ_ERR_SUCCESS ||
        mosquitto_subscribe(a->m, NULL, "$aws/things/flap-1/jobs/get/+", 1) != MOSQ_ERR_SUCCESS) {
        return -1;
    }
    pthread_mutex_lock(&a->lock);
    double until = bench_now() + 5.0;
    while (!a->subscribed && bench_now() < until) {
        pthread_mutex_unlock(&a->lock);
        usleep(10000);
        pthread_mutex_lock(&a->lock);
    }
    int ok = a->subscribed;
    pthread_mutex_unlock(&a->lock);
    return ok ? 0 : -1;
}

/* One phase's figures. */
typedef struct phase {
    size_t n;                 /* requests */
    unsigned long unanswered; /* requests without an answer within ANSWER_TIMEOUT_S */
    double ms[SAMPLES_MAX];   /* answer times */
    double cpu_share;         /* the service's CPU seconds per second */
    double connects_per_s;    /* the flapping device's accepted connections */
    double other_presence_ms; /* flap-2's connection until stored (-1: not measured/never) */
    double settle_ms;         /* the flapping's end until flap-0 is stored offline */
    double end_wall_ms;       /* the flapping's end, wall clock */
} phase_t;

/* The connected attribute of a thing ("-" when unset). */
static void connected_of(ota_store_t *s, const char *thing, char *out, size_t cap)
{
    if (ota_store_thing_attr_get(s, thing, "connected", out, cap) != OTA_STORE_OK) {
        snprintf(out, cap, "-");
    }
}

/* Polls the store until thing's connected attribute is want; ms it took, or -1 after 10 s. */
static double wait_connected(ota_store_t *s, const char *thing, const char *want, double from_s)
{
    char v[OTA_STORE_ATTR_VALUE_MAX + 1];
    while (bench_now() - from_s < 10.0) {
        connected_of(s, thing, v, sizeof v);
        if (strcmp(v, want) == 0) {
            return (bench_now() - from_s) * 1e3;
        }
        usleep(2000);
    }
    return -1.0;
}

/* Polls the store until thing is stored not connected with a lastSeen of at least since_wall_ms
 * (its last notice recorded); ms it took from from_s, or -1 after 10 s. */
static double wait_settled(ota_store_t *s, const char *thing, double since_wall_ms, double from_s)
{
    char v[OTA_STORE_ATTR_VALUE_MAX + 1], seen[OTA_STORE_ATTR_VALUE_MAX + 1];
    while (bench_now() - from_s < 10.0) {
        connected_of(s, thing, v, sizeof v);
        if (ota_store_thing_attr_get(s, thing, "lastSeen", seen, sizeof seen) != OTA_STORE_OK) {
            seen[0] = '\0';
        }
        if (strcmp(v, "false") == 0 && atof(seen) >= since_wall_ms) {
            return (bench_now() - from_s) * 1e3;
        }
        usleep(2000);
    }
    return -1.0;
}

/* Flap-2's connection during the flapping, timed until the store has it. */
typedef struct joiner {
    pthread_t thread;
    const bench_env_t *env;
    ota_store_t *store;
    double ms;
} joiner_t;

static void *join_once(void *arg)
{
    joiner_t *j = arg;
    ota_test_login_t login;
    j->ms = -1.0;
    if (bench_env_login(j->env, "flap-2", &login) != 0) {
        return NULL;
    }
    double t0 = bench_now();
    ota_test_client_t *c = ota_test_login_connect(j->env->broker.port, &login, NULL);
    if (c != NULL) {
        j->ms = wait_connected(j->store, "flap-2", "true", t0);
        ota_test_client_disconnect(c);
    }
    return NULL;
}

static int run_phase(bench_env_t *env, asker_t *a, const ota_test_login_t *flap_login, int loops,
                     double seconds, ota_store_t *store, phase_t *p)
{
    flapper_t fl[LOOPS_MAX];
    joiner_t join = {.env = env, .store = store, .ms = -1.0};
    int joined = 0;
    memset(fl, 0, sizeof fl);
    memset(p, 0, sizeof *p);
    p->other_presence_ms = p->settle_ms = -1.0;
    pid_t svc = env->service[0].pid;
    for (int i = 0; i < loops; i++) {
        fl[i].login = flap_login;
        fl[i].port = env->broker.port;
        if (pthread_create(&fl[i].thread, NULL, flap_loop, &fl[i]) != 0) {
            return -1;
        }
    }
    double cpu0 = bench_env_cpu_seconds(svc), t0 = bench_now();
    double next = t0;
    while (bench_now() - t0 < seconds && p->n < SAMPLES_MAX) {
        if (loops > 0 && !joined && bench_now() - t0 >= seconds / 2) {
            joined = pthread_create(&join.thread, NULL, join_once, &join) == 0;
        }
        char token[32];
        int len = snprintf(token, sizeof token, "{\"clientToken\":\"%zu\"}", p->n);
        unsigned long want;
        pthread_mutex_lock(&a->lock);
        want = a->answered + 1;
        pthread_mutex_unlock(&a->lock);
        double s = bench_now();
        if (mosquitto_publish(a->m, NULL, "$aws/things/flap-1/jobs/get", len, token, 1, false) !=
            MOSQ_ERR_SUCCESS) {
            return -1;
        }
        if (ask_wait(a, want, s + ANSWER_TIMEOUT_S)) {
            p->ms[p->n++] = (bench_now() - s) * 1e3;
        } else {
            p->unanswered++;
            pthread_mutex_lock(&a->lock);
            a->answered = want; /* a late answer is not taken for the next one */
            pthread_mutex_unlock(&a->lock);
        }
        next += ASK_EVERY_S;
        double wait = next - bench_now();
        if (wait > 0) {
            usleep((useconds_t)(wait * 1e6));
        }
    }
    double elapsed = bench_now() - t0;
    p->cpu_share = (bench_env_cpu_seconds(svc) - cpu0) / elapsed;
    unsigned long connects = 0;
    for (int i = 0; i < loops; i++) {
        fl[i].stop = 1;
    }
    for (int i = 0; i < loops; i++) {
        pthread_join(fl[i].thread, NULL);
        connects += fl[i].connects;
    }
    p->connects_per_s = (double)connects / elapsed;
    p->end_wall_ms = wall_ms();
    if (joined) {
        pthread_join(join.thread, NULL);
        p->other_presence_ms = join.ms;
    }
    if (loops > 0) {
        /* the last notice came as the loops stopped (50 ms: the clocks' and the log's slack) */
        p->settle_ms = wait_settled(store, "flap-0", p->end_wall_ms - 50.0, bench_now());
    }
    return 0;
}

int main(int argc, char **argv)
{
    double seconds = 10.0;
    int loops = 2, quick = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
            seconds = 2.0;
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = atof(argv[++i]);
        } else if (strcmp(argv[i], "--loops") == 0 && i + 1 < argc) {
            loops = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: bench_flap [--seconds S] [--loops N] [--quick]\n");
            return 2;
        }
    }
    if (seconds < 1.0 || seconds > 300.0 || loops < 1 || loops > LOOPS_MAX) {
        fprintf(stderr, "bench_flap: give --seconds 1..300 and --loops 1..%d\n", LOOPS_MAX);
        return 2;
    }
    mosquitto_lib_init();
    static bench_env_t env;
    static phase_t quiet, flapping;
    ota_test_login_t flap_login, ask_login;
    ota_store_t *store = NULL;
    asker_t a;
    int status = 1;
    memset(&a, 0, sizeof a);
    if (bench_env_start(&env) != 0) {
        return 1;
    }
    if (bench_env_add_things(&env, "flap-", 3, NULL) != 0 ||
        bench_env_start_services(&env, 1) != 0 ||
        bench_env_login(&env, "flap-0", &flap_login) != 0 ||
        bench_env_login(&env, "flap-1", &ask_login) != 0 ||
        ota_store_open(env.dir, &store) != OTA_STORE_OK ||
        asker_start(&a, env.broker.port, &ask_login) != 0) {
        fprintf(stderr, "bench_flap: set-up failed\n");
        goto out;
    }
    if (run_phase(&env, &a, &flap_login, 0, seconds, store, &quiet) != 0 ||
        run_phase(&env, &a, &flap_login, loops, seconds, store, &flapping) != 0) {
        fprintf(stderr, "bench_flap: a phase failed\n");
        goto out;
    }
    printf("| phase (%.0f s) | flap-0 connects/s | otter-service CPU | flap-1 Jobs answer p50 "
           "| p90 | max | unanswered | flap-2 connect stored after | flap-0 offline stored after "
           "the flapping |\n",
           seconds);
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    const phase_t *ph[2] = {&quiet, &flapping};
    static const char *const names[2] = {"quiet", "flapping"};
    for (int i = 0; i < 2; i++) {
        const phase_t *p = ph[i];
        double v[SAMPLES_MAX];
        memcpy(v, p->ms, p->n * sizeof v[0]);
        double p50 = bench_quantile(v, p->n, 0.5), p90 = bench_quantile(v, p->n, 0.9),
               max = bench_quantile(v, p->n, 1.0);
        char other[32] = "-", settle[32] = "-";
        if (i == 1) {
            snprintf(other, sizeof other, "%.0f ms", p->other_presence_ms);
            snprintf(settle, sizeof settle, "%.0f ms", p->settle_ms);
        }
        printf("| %s | %.0f | %.0f %% | %.1f ms | %.1f ms | %.1f ms | %lu | %s | %s |\n", names[i],
               p->connects_per_s, p->cpu_share * 100.0, p50, p90, max, p->unanswered, other,
               settle);
    }
    /* What the smoke test checks: every request answered, both presences recorded. */
    char seen[OTA_STORE_ATTR_VALUE_MAX + 1];
    if (ota_store_thing_attr_get(store, "flap-0", "lastSeen", seen, sizeof seen) != OTA_STORE_OK) {
        seen[0] = '\0';
    }
    int ok = quiet.unanswered == 0 && flapping.unanswered == 0 && quiet.n > 0 && flapping.n > 0 &&
             flapping.connects_per_s > 0 && flapping.other_presence_ms >= 0 &&
             flapping.settle_ms >= 0;
    if (!ok) {
        fprintf(stderr,
                "bench_flap: unanswered %lu + %lu, flap-2 stored after %.0f ms, flap-0 offline "
                "after %.0f ms, its lastSeen '%s' (the flapping ended at %.0f)\n",
                quiet.unanswered, flapping.unanswered, flapping.other_presence_ms,
                flapping.settle_ms, seen, flapping.end_wall_ms);
        env.keep = quick ? env.keep : 1;
    }
    status = ok ? 0 : 1;
out:
    if (a.m != NULL) {
        mosquitto_disconnect(a.m);
        mosquitto_loop_stop(a.m, true);
        mosquitto_destroy(a.m);
    }
    ota_store_close(store);
    bench_env_stop(&env);
    mosquitto_lib_cleanup();
    return status;
}
