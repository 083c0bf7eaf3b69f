/*
 * otter CLI tests: the revocation check's probe loop against a broker that
 * accepts the TCP connection and never answers (a listener on a free port of
 * 127.0.0.1 that sends nothing). The check must end within its 5 s wait plus
 * one probe's timeouts, not after a hundred probes of 3 s each.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
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
    cli_crl_probe_t got;
    atomic_int done;
} check_t;

static void *check_run(void *arg)
{
    check_t *c = arg;
    c->got = cli_crl_probe_until_refused("127.0.0.1", c->port, CRT, CRT, KEY, c->wait_ms);
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
    print_message("check of a silent broker, wait %d ms: %lld ms\n", c->wait_ms, took);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_silent_broker_wait_is_bounded),
        cmocka_unit_test(test_silent_broker_once),
        cmocka_unit_test(test_early_close_is_no_refusal),
    };
    return cmocka_run_group_tests(tests, silent_setup, silent_teardown);
}
