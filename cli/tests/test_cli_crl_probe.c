/*
 * otter CLI tests: the revocation check's probe loop against a broker that
 * accepts the TCP connection and never answers (a listener on a free port of
 * 127.0.0.1 that sends nothing). The check must end within its 5 s wait plus
 * one probe's timeouts, not after a hundred probes of 3 s each. Against a
 * listener that closes every connection at once, the check keeps trying with
 * the certificate, key and CA it read once at its start.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli_crl.h"
#include "ota_test_loopback.h"

/* A self-signed test certificate: the CA, and the client's certificate. */
#define CRT OTA_TEST_KEYS_DIR "/codesign-test.crt"
#define KEY OTA_TEST_KEYS_DIR "/codesign-test.key"

/* The wait `otter thing revoke` gives a broker that got SIGHUP. */
#define WAIT_MS 5000
/* What the check may take at most: the wait, one probe (3 s connect, 3 s
 * read) and slack for a loaded machine. */
#define BOUND_MS 12000

/* A listener that accepts connections and never sends a byte (or, with
 * close_at_once, closes each at once, as a port with no TLS listener or a broker
 * over its connection limit does). */
typedef struct {
    int lfd;
    unsigned port;
    atomic_int stop;
    atomic_int accepted;
    atomic_int close_at_once;
    pthread_t th;
} silent_t;

static void *silent_run(void *arg)
{
    silent_t *s = arg;
    int held[64];
    size_t n = 0;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {s->lfd, POLLIN, 0};
        if (poll(&p, 1, 50) == 1) {
            int fd = accept(s->lfd, NULL, NULL);
            if (fd >= 0) {
                atomic_fetch_add(&s->accepted, 1);
            }
            if (fd >= 0 && !atomic_load(&s->close_at_once) && n < sizeof held / sizeof held[0]) {
                held[n++] = fd; /* kept open, never written */
            } else if (fd >= 0) {
                close(fd);
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        close(held[i]);
    }
    return NULL;
}

static int silent_setup(void **state)
{
    static silent_t s;
    memset(&s, 0, sizeof s);
    int port = 0;
    s.lfd = ota_test_listen_loopback(&port);
    if (s.lfd < 0 || pthread_create(&s.th, NULL, silent_run, &s) != 0) {
        return -1;
    }
    s.port = (unsigned)port;
    *state = &s;
    return 0;
}

static int silent_teardown(void **state)
{
    silent_t *s = *state;
    atomic_store(&s->stop, 1);
    pthread_join(s->th, NULL);
    close(s->lfd);
    return 0;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One check run in its own thread, so the test can stop waiting for it. */
typedef struct {
    unsigned port;
    int wait_ms;
    const char *crt, *key; /* the certificate (also the CA) and key; NULL: CRT, KEY */
    cli_crl_probe_t got;
    double cpu_ms; /* the processor time the check's thread took */
    atomic_int done;
} check_t;

/* Processor time of the calling thread, in ms. */
static double thread_cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void *check_run(void *arg)
{
    check_t *c = arg;
    double cpu0 = thread_cpu_ms();
    const char *crt = c->crt != NULL ? c->crt : CRT, *key = c->key != NULL ? c->key : KEY;
    c->got = cli_crl_probe_until_refused("127.0.0.1", c->port, crt, crt, key, c->wait_ms);
    c->cpu_ms = thread_cpu_ms() - cpu0;
    atomic_store(&c->done, 1);
    return NULL;
}

/* Runs the check; fails the test when it has not ended within BOUND_MS.
 * @return the milliseconds it took. */
static long long check_within_bound(check_t *c)
{
    pthread_t th;
    long long t0 = now_ms();
    assert_int_equal(pthread_create(&th, NULL, check_run, c), 0);
    while (!atomic_load(&c->done) && now_ms() - t0 < BOUND_MS) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    long long took = now_ms() - t0;
    if (!atomic_load(&c->done)) {
        /* The check is still probing: the process ends with it. */
        pthread_detach(th);
        fail_msg("the check of a silent broker was still running after %lld ms (bound %d ms)", took,
                 BOUND_MS);
    }
    pthread_join(th, NULL);
    print_message("check of a silent broker, wait %d ms: %lld ms (%.1f ms of processor time)\n",
                  c->wait_ms, took, c->cpu_ms);
    return took;
}

/* A broker that runs here (the 5 s wait after SIGHUP) and never answers: not
 * refused, unreachable, after the wait but within the bound. */
static void test_silent_broker_wait_is_bounded(void **state)
{
    silent_t *s = *state;
    check_t c = {.port = s->port, .wait_ms = WAIT_MS};
    long long took = check_within_bound(&c);
    assert_int_equal(c.got, CLI_CRL_UNKNOWN);
    /* It still gives the broker its whole wait to refuse. */
    assert_true(took >= WAIT_MS);
}

/* A broker on another machine (no wait): one probe, its read timeout only. */
static void test_silent_broker_once(void **state)
{
    silent_t *s = *state;
    check_t c = {.port = s->port, .wait_ms = 0};
    int before = atomic_load(&s->accepted);
    long long took = check_within_bound(&c);
    assert_int_equal(c.got, CLI_CRL_UNKNOWN);
    /* It connected, and waited for the answer (its 3 s read timeout), once. */
    assert_int_equal(atomic_load(&s->accepted) - before, 1);
    assert_true(took >= 2500 && took < WAIT_MS);
}

/* A listener that closes every connection before the handshake has begun: no
 * word on the certificate, so not counted as refusing it. */
static void test_early_close_is_no_refusal(void **state)
{
    silent_t *s = *state;
    check_t c = {.port = s->port, .wait_ms = 0};
    int before = atomic_load(&s->accepted);
    atomic_store(&s->close_at_once, 1);
    (void)check_within_bound(&c);
    atomic_store(&s->close_at_once, 0);
    assert_true(atomic_load(&s->accepted) - before >= 1);
    assert_int_equal(c.got, CLI_CRL_UNKNOWN);
}

/* Copies the file at from to to; 0 on success. */
static int copy_file(const char *from, const char *to)
{
    char buf[8192];
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    size_t n = 0;
    int ok = in != NULL && out != NULL;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0) {
        ok = fwrite(buf, 1, n, out) == n;
    }
    ok = ok && !ferror(in);
    if (in != NULL) {
        fclose(in);
    }
    if (out != NULL && fclose(out) != 0) {
        ok = 0;
    }
    return ok ? 0 : -1;
}

/* A broker that closes every connection at once, retried for 2 s: a new attempt every 50 ms
 * or so, each with the CA, certificate and key the check read at its start. Their files are
 * removed once the first attempt has connected: the attempts go on all the same. Prints what
 * an attempt costs (the processor time of the check over its attempts). */
static void test_retries_read_the_files_once(void **state)
{
    silent_t *s = *state;
    char dir[] = "/tmp/otter-crl-probe-XXXXXX", crt[64], key[64];
    assert_non_null(mkdtemp(dir));
    snprintf(crt, sizeof crt, "%s/thing.crt", dir);
    snprintf(key, sizeof key, "%s/thing.key", dir);
    assert_int_equal(copy_file(CRT, crt), 0);
    assert_int_equal(copy_file(KEY, key), 0);
    check_t c = {.port = s->port, .wait_ms = 2000, .crt = crt, .key = key};
    int before = atomic_load(&s->accepted);
    atomic_store(&s->close_at_once, 1);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, check_run, &c), 0);
    long long t0 = now_ms();
    while (atomic_load(&s->accepted) == before && now_ms() - t0 < BOUND_MS) {
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
    }
    int removed = unlink(crt) == 0 && unlink(key) == 0 && rmdir(dir) == 0;
    pthread_join(th, NULL);
    long long took = now_ms() - t0;
    atomic_store(&s->close_at_once, 0);
    int attempts = atomic_load(&s->accepted) - before;
    print_message("%d attempts in %lld ms: %.2f ms of processor time per attempt\n", attempts, took,
                  attempts > 0 ? c.cpu_ms / attempts : 0.0);
    assert_true(removed);
    assert_int_equal(c.got, CLI_CRL_UNKNOWN);
    assert_true(took >= 2000 && took < BOUND_MS);
    /* 50 ms apart over 2 s: about 40, fewer only when an attempt itself is slow; a check that
     * read the files again for each attempt would have stopped connecting at the second. */
    assert_true(attempts >= 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_silent_broker_wait_is_bounded),
        cmocka_unit_test(test_silent_broker_once),
        cmocka_unit_test(test_early_close_is_no_refusal),
        cmocka_unit_test(test_retries_read_the_files_once),
    };
    return cmocka_run_group_tests(tests, silent_setup, silent_teardown);
}
