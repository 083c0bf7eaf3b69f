/*
 * otter simulated device, job scenarios end to end: a real Mosquitto broker
 * with otter's passwords and ACL, the real otter-service, the otter CLI and
 * otter-device running real firmware executables from its flash file.
 *
 * The scenarios that act during a download put a loopback MQTT relay between
 * the device and the broker. The relay passes bytes unchanged, except that it
 * can hold a stream: the first block request of the first stream it sees
 * goes through (one window of blocks), later requests for that stream are
 * dropped, so the device stays in the middle of that download for as long as
 * the test needs. It can also cut the link and refuse connections for a
 * while. Requests for other streams always pass.
 *
 * Each test checks the job's final status and reason in the service
 * (`otter job show`) and the version that runs (status file and console).
 *
 * test_device_jobs NAME runs one test (two_updates_back_to_back,
 * previous_version_rejected, unsigned_image_rejected,
 * untrusted_signer_rejected, wrong_algorithm_rejected,
 * disconnect_during_download_resumes, disconnect_then_cancel,
 * two_jobs_first_canceled, cancel_then_new_update).
 * OTA_TEST_KEEP=1 keeps the temporary folder (logs, flash file).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "device_fixture.h"
#include "otter/ota_err.h"
#include "ota_store.h"
#include "ota_test_util.h"

/* ---- the loopback MQTT relay ---- */

typedef struct relay {
    int lfd;
    int port;
    int broker_port;
    int started;
    pthread_t thread;
    pthread_mutex_t mu;
    /* under mu */
    int stop;
    int down;       /* cut the link and refuse new connections */
    int hold;       /* hold the first stream after its first request */
    char held[256]; /* the held stream's request topic */
    unsigned passed, dropped, refused, connections, cuts;
} relay_t;

static relay_t g_relay;

/* Bytes of device packets the relay keeps while it waits for their end. */
#define RELAY_BUF 65536u

static void relay_lock(relay_t *r)
{
    pthread_mutex_lock(&r->mu);
}

static void relay_unlock(relay_t *r)
{
    pthread_mutex_unlock(&r->mu);
}

static int send_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0u) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* A connection to 127.0.0.1:port whose writes give up after 1 s. */
static int connect_loopback(int port)
{
    struct timeval tv = {1, 0};
    int fd = ota_test_connect_loopback(port);
    if (fd >= 0) {
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    return fd;
}

/* Length of the MQTT packet at the start of b: 1 complete (header and total
 * size out), 0 incomplete, -1 malformed. */
static int mqtt_packet(const unsigned char *b, size_t len, size_t *hdr, size_t *total)
{
    size_t rem = 0, mult = 1, i = 1;
    for (;;) {
        if (i > 4u) {
            return -1;
        }
        if (i >= len) {
            return 0;
        }
        rem += (size_t)(b[i] & 0x7fu) * mult;
        mult *= 128u;
        if ((b[i++] & 0x80u) == 0u) {
            break;
        }
    }
    *hdr = i;
    *total = i + rem;
    return *total <= len ? 1 : 0;
}

/* Whether a device packet may go on to the broker (stream hold). */
static int relay_pass(relay_t *r, const unsigned char *b, size_t hdr, size_t total)
{
    char topic[256];
    size_t tl;
    int pass = 1;
    if ((b[0] >> 4) != 3u || hdr + 2u > total) {
        return 1; /* not a PUBLISH */
    }
    tl = ((size_t)b[hdr] << 8) | b[hdr + 1u];
    if (hdr + 2u + tl > total || tl >= sizeof topic) {
        return 1;
    }
    memcpy(topic, b + hdr + 2u, tl);
    topic[tl] = '\0';
    if (strstr(topic, "/streams/") == NULL || strstr(topic, "/get/") == NULL) {
        return 1;
    }
    relay_lock(r);
    if (r->hold && r->held[0] == '\0') {
        memcpy(r->held, topic, tl + 1u);
    } else if (r->hold && strcmp(r->held, topic) == 0) {
        pass = 0;
    }
    if (pass) {
        r->passed++;
    } else {
        r->dropped++;
    }
    relay_unlock(r);
    return pass;
}

/* Sends every complete device packet on (or drops it); keeps the rest. */
static int relay_upstream(relay_t *r, int bfd, unsigned char *buf, size_t *len)
{
    size_t hdr, total;
    int rc;
    while ((rc = mqtt_packet(buf, *len, &hdr, &total)) == 1) {
        if (relay_pass(r, buf, hdr, total) && send_all(bfd, buf, total) != 0) {
            return -1;
        }
        memmove(buf, buf + total, *len - total);
        *len -= total;
    }
    return rc < 0 || *len == RELAY_BUF ? -1 : 0;
}

static void close_pair(int *cfd, int *bfd)
{
    if (*cfd >= 0) {
        close(*cfd);
    }
    if (*bfd >= 0) {
        close(*bfd);
    }
    *cfd = -1;
    *bfd = -1;
}

static void *relay_main(void *arg)
{
    relay_t *r = arg;
    static unsigned char up[RELAY_BUF], down[16384];
    size_t up_len = 0;
    int cfd = -1, bfd = -1;
    for (;;) {
        struct pollfd p[3];
        nfds_t n = 1;
        int stop, down_now;
        relay_lock(r);
        stop = r->stop;
        down_now = r->down;
        if (down_now && cfd >= 0) {
            r->cuts++;
        }
        relay_unlock(r);
        if (stop) {
            break;
        }
        if (down_now && cfd >= 0) {
            close_pair(&cfd, &bfd);
        }
        p[0].fd = r->lfd;
        p[0].events = POLLIN;
        p[0].revents = 0;
        if (cfd >= 0) {
            p[1].fd = cfd;
            p[1].events = POLLIN;
            p[1].revents = 0;
            p[2].fd = bfd;
            p[2].events = POLLIN;
            p[2].revents = 0;
            n = 3;
        }
        if (poll(p, n, 20) <= 0) {
            continue;
        }
        if (p[0].revents & POLLIN) {
            int nfd = accept(r->lfd, NULL, NULL);
            if (nfd < 0) {
                continue;
            }
            if (down_now) {
                close(nfd);
                relay_lock(r);
                r->refused++;
                relay_unlock(r);
                continue;
            }
            close_pair(&cfd, &bfd);
            bfd = connect_loopback(r->broker_port);
            if (bfd < 0) {
                close(nfd);
                continue;
            }
            struct timeval tv = {1, 0};
            (void)setsockopt(nfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
            cfd = nfd;
            up_len = 0;
            relay_lock(r);
            r->connections++;
            relay_unlock(r);
            continue;
        }
        if (cfd < 0) {
            continue;
        }
        if (p[2].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t got = recv(bfd, down, sizeof down, 0);
            if (got <= 0 || send_all(cfd, down, (size_t)got) != 0) {
                close_pair(&cfd, &bfd);
                continue;
            }
        }
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t got = recv(cfd, up + up_len, sizeof up - up_len, 0);
            if (got <= 0) {
                close_pair(&cfd, &bfd);
                continue;
            }
            up_len += (size_t)got;
            if (relay_upstream(r, bfd, up, &up_len) != 0) {
                close_pair(&cfd, &bfd);
            }
        }
    }
    close_pair(&cfd, &bfd);
    return NULL;
}

static int relay_start(relay_t *r, int broker_port)
{
    memset(r, 0, sizeof *r);
    r->broker_port = broker_port;
    pthread_mutex_init(&r->mu, NULL);
    r->lfd = ota_test_listen_loopback(&r->port);
    if (r->lfd < 0) {
        return -1;
    }
    if (pthread_create(&r->thread, NULL, relay_main, r) != 0) {
        close(r->lfd);
        r->lfd = -1;
        return -1;
    }
    r->started = 1;
    return 0;
}

static void relay_stop(relay_t *r)
{
    if (!r->started) {
        return;
    }
    relay_lock(r);
    r->stop = 1;
    relay_unlock(r);
    pthread_join(r->thread, NULL);
    close(r->lfd);
    r->lfd = -1;
    r->started = 0;
    pthread_mutex_destroy(&r->mu);
}

static void relay_set(relay_t *r, int *field, int value)
{
    relay_lock(r);
    *field = value;
    relay_unlock(r);
}

static unsigned relay_get(relay_t *r, const unsigned *field)
{
    unsigned v;
    relay_lock(r);
    v = *field;
    relay_unlock(r);
    return v;
}

/* Wait until a relay counter reaches at least min. */
static void relay_wait(fixture_t *f, relay_t *r, const unsigned *field, unsigned min,
                       int timeout_ms, const char *what)
{
    for (int t = 0; t < timeout_ms; t += 10) {
        if (relay_get(r, field) >= min) {
            return;
        }
        dfx_sleep_ms(10);
    }
    dfx_dump_log(f->dev_log);
    fail_msg("the relay did not see %s within %d ms", what, timeout_ms);
}

/* cmocka setup for the relay scenarios: the device's broker is the relay. */
static int relay_setup(void **state)
{
    fixture_t *f;
    FILE *fp;
    if (dfx_setup(state) != 0) {
        return -1;
    }
    f = *state;
    if (relay_start(&g_relay, f->broker.port) != 0) {
        return -1;
    }
    fp = fopen(f->config, "a");
    if (fp == NULL) {
        return -1;
    }
    fprintf(fp, "broker_port = %d\n", g_relay.port);
    fclose(fp);
    return 0;
}

static int relay_teardown(void **state)
{
    fixture_t *f = *state;
    if (f != NULL && f->dev.pid != 0) {
        int rc = ota_test_proc_stop(&f->dev);
        if (rc != 0) {
            fprintf(stderr, "otter-device ended with %d\n", rc);
        }
    }
    relay_stop(&g_relay);
    return dfx_teardown(state);
}

/* ---- helpers ---- */

/* Wait for a console line at or after byte offset from. */
static void wait_console(fixture_t *f, long from, const char *needle, int timeout_ms)
{
    if (ota_test_log_wait(f->dev_log, from, needle, timeout_ms) != 0) {
        dfx_dump_log(f->dev_log);
        fail_msg("the device console did not show \"%s\" within %d ms", needle, timeout_ms);
    }
}

/* Wait for the device's outcome line of a job ("job ID STATUS: reason ...")
 * at or after byte offset from; the text after the job id out. */
static void wait_outcome(fixture_t *f, long from, const char *job_id, char *out, size_t cap,
                         int timeout_ms)
{
    static char buf[1 << 20];
    static const char *const names[] = {"SUCCEEDED: ", "FAILED: ", "CANCELED: "};
    char needle[96];
    for (int t = 0; t < timeout_ms; t += 50) {
        if (dfx_read_text(f->dev_log, buf, sizeof buf) == 0 && (size_t)from <= strlen(buf)) {
            for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
                const char *p;
                size_t m;
                int n = snprintf(needle, sizeof needle, "job %s %s", job_id, names[i]);
                assert_true(n > 0 && (size_t)n < sizeof needle);
                if ((p = strstr(buf + from, needle)) != NULL) {
                    p += strlen("job ") + strlen(job_id) + 1u;
                    /* A long line is cut to what fits; the start says it all. */
                    m = strcspn(p, "\n");
                    if (m >= cap) {
                        m = cap - 1u;
                    }
                    memcpy(out, p, m);
                    out[m] = '\0';
                    return;
                }
            }
        }
        dfx_sleep_ms(50);
    }
    dfx_dump_log(f->dev_log);
    fail_msg("the device reported no outcome for job %s within %d ms", job_id, timeout_ms);
}

static void run_cli_ok(fixture_t *f, const char *const *args, const char *what)
{
    if (dfx_run_cli(f->cli_log, args) != 0) {
        dfx_dump_log(f->cli_log);
        fail_msg("%s failed", what);
    }
}

static void cancel_job(fixture_t *f, const char *job_id)
{
    const char *args[] = {"job", "cancel", job_id, NULL};
    run_cli_ok(f, args, "otter job cancel");
}

/* A job made with the CLI from extra options (a signature or another key, and
 * a flag or NULL). */
static void create_job_with(fixture_t *f, const char *job_id, const char *fw_name,
                            const char *version, const char *opt, const char *value,
                            const char *flag)
{
    char fw[256];
    dfx_fw_path(fw, sizeof fw, fw_name);
    const char *args[] = {"job", "create", "--file", fw,         "--version", version, "--targets",
                          THING, opt,      value,    "--job-id", job_id,      flag,    NULL};
    clock_gettime(CLOCK_MONOTONIC, &f->t_job);
    run_cli_ok(f, args, "otter job create");
}

/* A path inside the test folder. */
static void dir_path(fixture_t *f, char *out, size_t cap, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", f->dir, name);
    assert_true(n > 0 && (size_t)n < cap);
}

/* The download statistics the device printed for the verified file. */
static void download_stats(fixture_t *f, unsigned *received, unsigned *duplicates,
                           unsigned *requests)
{
    static char buf[1 << 20];
    const char *p;
    unsigned resumed = 0, timeouts = 0;
    assert_int_equal(dfx_read_text(f->dev_log, buf, sizeof buf), 0);
    p = strstr(buf, "download stats: ");
    assert_non_null(p);
    assert_int_equal(sscanf(p,
                            "download stats: %u blocks received, %u resumed, %u duplicates, "
                            "%u requests, %u timeouts",
                            received, &resumed, duplicates, requests, &timeouts),
                     5);
}

/* Blocks of the job the device accepted ("job accepted: ID, N bytes in M blocks"). */
static unsigned accepted_blocks(fixture_t *f, const char *job_id)
{
    static char buf[1 << 20];
    char needle[96];
    const char *p;
    unsigned bytes = 0, blocks = 0;
    assert_true(snprintf(needle, sizeof needle, "job accepted: %s, ", job_id) < (int)sizeof needle);
    assert_int_equal(dfx_read_text(f->dev_log, buf, sizeof buf), 0);
    p = strstr(buf, needle);
    assert_non_null(p);
    assert_int_equal(sscanf(p + strlen(needle), "%u bytes in %u blocks", &bytes, &blocks), 2);
    return blocks;
}

/* The only verified file is job_id's: its statistics count its own blocks,
 * not those of a job abandoned before it. */
static void expect_own_stats(fixture_t *f, const char *job_id)
{
    char needle[96];
    int n = snprintf(needle, sizeof needle, "download stats: %u blocks received, 0 resumed",
                     accepted_blocks(f, job_id));
    assert_true(n > 0 && (size_t)n < sizeof needle);
    if (dfx_log_count(f, needle) != 1) {
        dfx_dump_log(f->dev_log);
        fail_msg("expected one \"%s\" line", needle);
    }
}

static void expect_job(fixture_t *f, const char *job_id, const char *want_status,
                       const char *want_reason, char *details, size_t cap, int timeout_ms)
{
    char status[32];
    dfx_wait_job(f, job_id, status, sizeof status, details, cap, timeout_ms);
    if (strcmp(status, want_status) != 0 ||
        (want_reason != NULL && strstr(details, want_reason) == NULL)) {
        dfx_dump_log(f->dev_log);
        fail_msg("job %s ended %s %s; expected %s with %s", job_id, status, details, want_status,
                 want_reason != NULL ? want_reason : "any reason");
    }
}

/* ---- 1. two updates back to back ---- */

static void test_two_updates_back_to_back(void **state)
{
    fixture_t *f = *state;
    char details[512];
    double first, second;
    dfx_start_device(f, "otter-fw-1.0.0", "1.0.0");
    dfx_expect_running(f, "1.0.0", "A", "committed", 5000);
    dfx_create_job(f, "e2e-first", "otter-fw-1.1.0", "1.1.0");
    expect_job(f, "e2e-first", "SUCCEEDED", "accepted  v1.1.0", details, sizeof details, 30000);
    first = dfx_since_s(&f->t_job);
    /* 1.1.0 booted pending and reported so; once committed it reports again. */
    dfx_wait_thing_shows(f, "imageState", "committed", 5000);
    /* The second job right after the first one ended. */
    dfx_create_job(f, "e2e-second", "otter-fw-2.0.0", "2.0.0");
    expect_job(f, "e2e-second", "SUCCEEDED", "accepted  v2.0.0", details, sizeof details, 30000);
    second = dfx_since_s(&f->t_job);
    dfx_expect_running(f, "2.0.0", "A", "committed", 5000);
    assert_int_equal(dfx_log_count(f, "otter-fw 1.1.0 booted from slot B (pending commit)"), 1);
    assert_int_equal(dfx_log_count(f, "otter-fw 2.0.0 booted from slot A (pending commit)"), 1);
    assert_int_equal(dfx_log_count(f, "self-test: passed"), 2);
    assert_int_equal(dfx_log_count(f, "firmware crashed"), 0);
    fprintf(stderr,
            "e2e_two_updates_back_to_back: 1.0.0 -> 1.1.0 SUCCEEDED in %.2f s, then 1.1.0 -> "
            "2.0.0 SUCCEEDED in %.2f s; %d boots, 2.0.0 runs in slot A committed; %s\n",
            first, second, dfx_log_count(f, "device boot:"), details);
}

/* ---- 2. an older version is refused ---- */

static void test_previous_version_rejected(void **state)
{
    fixture_t *f = *state;
    char details[512];
    double secs;
    dfx_start_device(f, "otter-fw-1.1.0", "1.1.0");
    dfx_expect_running(f, "1.1.0", "A", "committed", 5000);
    /* The device reported 1.1.0: the service does not send it an older version. */
    dfx_wait_thing_shows(f, "firmwareVersion", "1.1.0", 10000);
    dfx_create_job(f, "e2e-downgrade-skipped", "otter-fw-1.0.0", "1.0.0");
    expect_job(f, "e2e-downgrade-skipped", "SKIPPED", "runs 1.1.0, newer than 1.0.0", details,
               sizeof details, 10000);
    assert_int_equal(dfx_log_count(f, "job accepted"), 0);
    /* With its version forgotten the job is sent, and the device refuses it itself. */
    {
        const char *args[] = {"thing", "unset", THING, "firmwareVersion", NULL};
        run_cli_ok(f, args, "otter thing unset");
    }
    dfx_create_job(f, "e2e-downgrade", "otter-fw-1.0.0", "1.0.0");
    expect_job(f, "e2e-downgrade", "FAILED", "\"reason\":\"rejected", details, sizeof details,
               30000);
    secs = dfx_since_s(&f->t_job);
    assert_non_null(strstr(details, "downgrade"));
    wait_console(f, 0, "boot: slot A, version 1.1.0, committed (new image reverted)", 10000);
    dfx_expect_running(f, "1.1.0", "A", "committed", 10000);
    dfx_report(f, "e2e_previous_version_rejected", "otter-fw-1.0.0", secs, "FAILED", details);
    assert_int_equal(dfx_log_count(f, "otter-fw 1.0.0 booted from slot B (pending commit)"), 1);
    assert_int_equal(dfx_log_count(f, "self-test: "), 0);
    assert_int_equal(dfx_log_count(f, "firmware crashed"), 0);
}

/* ---- 3. a signature that is not the image's ---- */

static void test_unsigned_image_rejected(void **state)
{
    fixture_t *f = *state;
    char details[512], sigdir[160], sig[192], other[256];
    dir_path(f, sigdir, sizeof sigdir, "other-signature");
    assert_int_equal(mkdir(sigdir, 0700), 0);
    dir_path(f, sig, sizeof sig, "other-signature/other.der");
    /* A valid signature by the trusted key, but over other bytes (the 1.0.0
     * executable), kept where no certificate lets the CLI check it. */
    dfx_fw_path(other, sizeof other, "otter-fw-1.0.0");
    {
        const char *args[] = {"sign", "--key", f->key, other, "--out", sig, NULL};
        run_cli_ok(f, args, "otter sign");
    }
    dfx_start_device(f, "otter-fw-1.0.0", "1.0.0");
    dfx_expect_running(f, "1.0.0", "A", "committed", 5000);
    create_job_with(f, "e2e-unsigned", "otter-fw-1.1.0", "1.1.0", "--signature", sig,
                    "--unchecked-signature");
    expect_job(f, "e2e-unsigned", "FAILED", "0x000000e3", details, sizeof details, 30000);
    dfx_report(f, "e2e_unsigned_image_rejected", "otter-fw-1.1.0", dfx_since_s(&f->t_job), "FAILED",
               details);
    dfx_expect_running(f, "1.0.0", "A", "committed", 5000);
    assert_int_equal(dfx_log_count(f, "device boot:"), 1);
    assert_int_equal(dfx_log_count(f, "activating the new image"), 0);
}

/* ---- 4. a signer the device does not trust ---- */

static void test_untrusted_signer_rejected(void **state)
{
    fixture_t *f = *state;
    char details[512], keys2[160], key2[192];
    dir_path(f, keys2, sizeof keys2, "other-keys");
    dir_path(f, key2, sizeof key2, "other-keys/codesign.key");
    {
        const char *args[] = {"keygen", "--out", keys2, "--cn", "someone else", NULL};
        run_cli_ok(f, args, "otter keygen");
    }
    dfx_start_device(f, "otter-fw-1.0.0", "1.0.0");
    dfx_expect_running(f, "1.0.0", "A", "committed", 5000);
    create_job_with(f, "e2e-untrusted", "otter-fw-1.1.0", "1.1.0", "--key", key2, NULL);
    expect_job(f, "e2e-untrusted", "FAILED", "0x000000e3", details, sizeof details, 30000);
    dfx_report(f, "e2e_untrusted_signer_rejected", "otter-fw-1.1.0", dfx_since_s(&f->t_job),
               "FAILED", details);
    dfx_expect_running(f, "1.0.0", "A", "committed", 5000);
    assert_int_equal(dfx_log_count(f, "device boot:"), 1);
    assert_int_equal(dfx_log_count(f, "activating the new image"), 0);
}

/* ---- 4b. inventory at boot; a job for another device type ---- */

static void test_other_device_type_refused(void **state)
{
    fixture_t *f = *state;
    char details[512], reason[40];
    FILE *fp = fopen(f->config, "a");
    assert_non_null(fp);
    fprintf(fp, "device_type = sim-a\n");
    assert_int_equal(fclose(fp), 0);
    dfx_start_device(f, "otter-fw-1.0.0", "1.0.0");
    dfx_expect_running(f, "1.0.0", "A", "committed", 5000);
    wait_console(f, 0, "inventory reported", 5000);
    /* The service keeps what the device reported at boot. */
    dfx_wait_thing_shows(f, "reportedDeviceType", "sim-a", 10000);
    dfx_wait_thing_shows(f, "firmwareVersion", "1.0.0", 10000);
    dfx_wait_thing_shows(f, "imageState", "committed", 10000);
    /* The operator's record says sim-b, so the service sends it a sim-b job:
     * the agent refuses it before downloading anything. */
    {
        const char *args[] = {"thing", "set", THING, "deviceType=sim-b", NULL};
        run_cli_ok(f, args, "otter thing set");
    }
    {
        char fw[256];
        dfx_fw_path(fw, sizeof fw, "otter-fw-1.1.0");
        const char *args[] = {
            "job", "create", "--file", fw,         "--version",      "1.1.0",          "--targets",
            THING, "--key",  f->key,   "--job-id", "e2e-other-type", "--device-types", "sim-b",
            NULL};
        clock_gettime(CLOCK_MONOTONIC, &f->t_job);
        run_cli_ok(f, args, "otter job create");
    }
    snprintf(reason, sizeof reason, "rejected: 0x%08x",
             (unsigned)ota_err_pal_code(OTA_ERR_WRONG_DEVICE_TYPE));
    expect_job(f, "e2e-other-type", "FAILED", reason, details, sizeof details, 30000);
    assert_non_null(strstr(details, "the job is for other device types"));
    dfx_report(f, "e2e_other_device_type_refused", "otter-fw-1.1.0", dfx_since_s(&f->t_job),
               "FAILED", details);
    dfx_expect_running(f, "1.0.0", "A", "committed", 5000);
    assert_int_equal(dfx_log_count(f, "download stats:"), 0);
    assert_int_equal(dfx_log_count(f, "activating the new image"), 0);
}

/* ---- 5. a signature method the device does not implement ---- */

static void base64(const unsigned char *in, size_t n, char *out, size_t cap)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    assert_true(cap > (n + 2u) / 3u * 4u);
    for (size_t i = 0; i < n; i += 3u) {
        uint32_t v = (uint32_t)in[i] << 16;
        v |= i + 1u < n ? (uint32_t)in[i + 1u] << 8 : 0u;
        v |= i + 2u < n ? in[i + 2u] : 0u;
        out[o++] = tab[(v >> 18) & 63u];
        out[o++] = tab[(v >> 12) & 63u];
        out[o++] = i + 1u < n ? tab[(v >> 6) & 63u] : '=';
        out[o++] = i + 2u < n ? tab[v & 63u] : '=';
    }
    out[o] = '\0';
}

/* A job whose document signs the file under sig-sha256-rsa (2048-bit size),
 * made through the store as an operator's own tooling would. */
static void create_rsa_job(fixture_t *f, const char *job_id, const char *fw_name)
{
    static const char stream[] = "AFR_OTA-e2e-rsa";
    char fw[256], sig64[400], doc[1024];
    unsigned char sig[256];
    const char *things[] = {THING};
    ota_store_t *store = NULL;
    ota_store_file_t file;
    ota_store_stream_file_t sf;
    ota_store_job_spec_t spec;
    int n;
    dfx_fw_path(fw, sizeof fw, fw_name);
    for (size_t i = 0; i < sizeof sig; i++) {
        sig[i] = (unsigned char)(i * 37u + 11u);
    }
    base64(sig, sizeof sig, sig64, sizeof sig64);
    assert_int_equal(ota_store_open(f->dir, &store), OTA_STORE_OK);
    assert_int_equal(ota_store_file_import(store, fw, &file), OTA_STORE_OK);
    sf.file_id = 0;
    sf.path = file.path;
    sf.size = file.size;
    assert_int_equal(ota_store_stream_create(store, stream, "e2e rsa", &sf, 1, ota_store_now_ms()),
                     OTA_STORE_OK);
    n = snprintf(doc, sizeof doc,
                 "{\"afr_ota\":{\"protocols\":[\"MQTT\"],\"streamname\":\"%s\",\"files\":[{"
                 "\"filepath\":\"firmware.bin\",\"filesize\":%llu,\"fileid\":0,"
                 "\"certfile\":\"codesign.crt\",\"fileType\":0,\"update_data_url\":null,"
                 "\"auth_scheme\":null,\"sig-sha256-rsa\":\"%s\"}]}}",
                 stream, (unsigned long long)file.size, sig64);
    assert_true(n > 0 && (size_t)n < sizeof doc);
    memset(&spec, 0, sizeof spec);
    spec.job_id = job_id;
    spec.document = doc;
    spec.stream_id = stream;
    spec.things = things;
    spec.n_things = 1;
    clock_gettime(CLOCK_MONOTONIC, &f->t_job);
    assert_int_equal(ota_store_job_create(store, &spec, ota_store_now_ms()), OTA_STORE_OK);
    ota_store_close(store);
}

static void test_wrong_algorithm_rejected(void **state)
{
    fixture_t *f = *state;
    char details[512];
    dfx_start_device(f, "otter-fw-1.0.0", "1.0.0");
    dfx_expect_running(f, "1.0.0", "A", "committed", 5000);
    create_rsa_job(f, "e2e-rsa", "otter-fw-1.1.0");
    expect_job(f, "e2e-rsa", "FAILED", "\"reason\":\"rejected: 0x000000fa\"", details,
               sizeof details, 30000);
    fprintf(stderr,
            "e2e_wrong_algorithm_rejected: sig-sha256-rsa document -> FAILED in %.2f s, "
            "%d jobs accepted, %d download lines, %d boots; %s\n",
            dfx_since_s(&f->t_job), dfx_log_count(f, "job accepted: "),
            dfx_log_count(f, "downloading: "), dfx_log_count(f, "device boot:"), details);
    assert_int_equal(dfx_log_count(f, "job accepted: "), 0);
    assert_int_equal(dfx_log_count(f, "downloading: "), 0);
    dfx_expect_running(f, "1.0.0", "A", "committed", 5000);
    assert_int_equal(dfx_log_count(f, "device boot:"), 1);
}

/* ---- 6. the link drops during a download ---- */

/* The image of the jobs held during their download: 56 blocks of 4 KiB, of
 * which the first window (16) arrives before the hold. */
#define HELD_FW "otter-fw-1.1.0-large"

/* Start 1.0.0 behind the relay holding the first stream, create job_id and
 * wait until the device is in the middle of its download. */
static void start_held_download(fixture_t *f, const char *job_id)
{
    relay_set(&g_relay, &g_relay.hold, 1);
    dfx_start_device(f, "otter-fw-1.0.0", "1.0.0");
    dfx_expect_running(f, "1.0.0", "A", "committed", 5000);
    dfx_create_job(f, job_id, HELD_FW, "1.1.0");
    /* The first window passed; the next request for it was dropped. */
    relay_wait(f, &g_relay, &g_relay.dropped, 1, 15000, "a held block request");
    wait_console(f, 0, "downloading: ", 5000);
}

static void test_disconnect_during_download_resumes(void **state)
{
    fixture_t *f = *state;
    char details[512], accepted[96];
    unsigned blocks, received = 0, duplicates = 0, requests = 0, refused;
    struct timespec t_cut;
    long from;
    start_held_download(f, "e2e-resume");
    blocks = accepted_blocks(f, "e2e-resume");

    /* Cut the link; keep it down until the device has tried to come back. */
    from = ota_test_log_size(f->dev_log);
    clock_gettime(CLOCK_MONOTONIC, &t_cut);
    relay_set(&g_relay, &g_relay.down, 1);
    wait_console(f, from, "MQTT connection lost", 5000);
    relay_wait(f, &g_relay, &g_relay.refused, 1, 10000, "the device trying to reconnect");
    refused = relay_get(&g_relay, &g_relay.refused);
    relay_set(&g_relay, &g_relay.hold, 0);
    relay_set(&g_relay, &g_relay.down, 0);
    double down_s = dfx_since_s(&t_cut);
    wait_console(f, from, "MQTT reconnected", 10000);

    expect_job(f, "e2e-resume", "SUCCEEDED", "accepted  v1.1.0", details, sizeof details, 30000);
    dfx_expect_running(f, "1.1.0", "B", "committed", 5000);
    download_stats(f, &received, &duplicates, &requests);
    assert_true(snprintf(accepted, sizeof accepted, "job accepted: e2e-resume") <
                (int)sizeof accepted);
    fprintf(stderr,
            "e2e_disconnect_during_download_resumes: link down %.2f s (%u refused connects, "
            "%u block requests held back) during a %u-block download; %u blocks received, "
            "%u duplicates, %u requests, %d job accepted line(s) -> SUCCEEDED in %.2f s; %s\n",
            down_s, refused, relay_get(&g_relay, &g_relay.dropped), blocks, received, duplicates,
            requests, dfx_log_count(f, accepted), dfx_since_s(&f->t_job), details);
    /* One job start, and every block fetched once: the download went on. */
    assert_int_equal(dfx_log_count(f, accepted), 1);
    assert_int_equal(dfx_log_count(f, "download resumed"), 0);
    assert_int_equal(received, blocks);
    assert_int_equal(dfx_log_count(f, "otter-fw 1.1.0 booted from slot B (pending commit)"), 1);
}

/* ---- 7. the link drops, the job is canceled meanwhile ---- */

static void test_disconnect_then_cancel(void **state)
{
    fixture_t *f = *state;
    char details[512], outcome[160];
    long from;
    double said_s;
    struct timespec t_cut;
    start_held_download(f, "e2e-cut-cancel");

    from = ota_test_log_size(f->dev_log);
    clock_gettime(CLOCK_MONOTONIC, &t_cut);
    relay_set(&g_relay, &g_relay.down, 1);
    wait_console(f, from, "MQTT connection lost", 5000);
    cancel_job(f, "e2e-cut-cancel");
    expect_job(f, "e2e-cut-cancel", "CANCELED", NULL, details, sizeof details, 5000);
    relay_wait(f, &g_relay, &g_relay.refused, 1, 10000, "the device trying to reconnect");
    /* The link comes back with nothing held: the device must notice by itself. */
    relay_set(&g_relay, &g_relay.hold, 0);
    relay_set(&g_relay, &g_relay.down, 0);
    wait_console(f, from, "MQTT reconnected", 10000);
    wait_outcome(f, from, "e2e-cut-cancel", outcome, sizeof outcome, 10000);
    said_s = dfx_since_s(&t_cut);
    /* The service keeps the cancel as the final word; nothing was activated. */
    expect_job(f, "e2e-cut-cancel", "CANCELED", NULL, details, sizeof details, 5000);
    dfx_expect_running(f, "1.0.0", "A", "committed", 5000);
    assert_int_equal(dfx_log_count(f, "activating the new image"), 0);
    assert_int_equal(dfx_log_count(f, "device boot:"), 1);

    /* No stale state: a new job downloads from scratch and succeeds. */
    dfx_create_job(f, "e2e-after-cut", "otter-fw-1.1.0", "1.1.0");
    expect_job(f, "e2e-after-cut", "SUCCEEDED", "accepted  v1.1.0", details, sizeof details, 30000);
    dfx_expect_running(f, "1.1.0", "B", "committed", 5000);
    assert_int_equal(dfx_log_count(f, "download resumed"), 0);
    fprintf(stderr,
            "e2e_disconnect_then_cancel: canceled while the link was down; %.2f s after the cut "
            "the device said \"%s\", 1.0.0 kept running, the service says CANCELED; the next "
            "job SUCCEEDED in %.2f s; %s\n",
            said_s, outcome, dfx_since_s(&f->t_job), details);
    /* The device abandons the job as canceled (docs/AGENT.md, Cancellation). */
    if (strncmp(outcome, "CANCELED", 8) != 0) {
        dfx_dump_log(f->dev_log);
        fail_msg("the device ended the canceled job with \"%s\" instead of CANCELED", outcome);
    }
}

/* ---- 8. two jobs queued, the first canceled while it downloads ---- */

static void test_two_jobs_first_canceled(void **state)
{
    fixture_t *f = *state;
    char details[512];
    struct timespec t_cancel;
    double canceled_s;
    relay_set(&g_relay, &g_relay.hold, 1);
    dfx_start_device(f, "otter-fw-1.0.0", "1.0.0");
    dfx_expect_running(f, "1.0.0", "A", "committed", 5000);
    dfx_create_job(f, "e2e-queued-1", HELD_FW, "1.1.0");
    dfx_create_job(f, "e2e-queued-2", "otter-fw-1.1.0", "1.1.0");
    relay_wait(f, &g_relay, &g_relay.dropped, 1, 15000, "a held block request");
    wait_console(f, 0, "job accepted: e2e-queued-1", 5000);
    assert_int_equal(dfx_log_count(f, "job accepted: e2e-queued-2"), 0);

    clock_gettime(CLOCK_MONOTONIC, &t_cancel);
    cancel_job(f, "e2e-queued-1");
    wait_console(f, 0, "job e2e-queued-1 CANCELED", 10000);
    canceled_s = dfx_since_s(&t_cancel);
    expect_job(f, "e2e-queued-2", "SUCCEEDED", "accepted  v1.1.0", details, sizeof details, 30000);
    dfx_expect_running(f, "1.1.0", "B", "committed", 5000);
    {
        char first[512];
        expect_job(f, "e2e-queued-1", "CANCELED", NULL, first, sizeof first, 5000);
    }
    assert_int_equal(dfx_log_count(f, "job accepted: e2e-queued-2"), 1);
    /* The second file's own counts, not added to the first one's. */
    expect_own_stats(f, "e2e-queued-2");
    assert_int_equal(dfx_log_count(f, "download resumed"), 0);
    assert_int_equal(dfx_log_count(f, "otter-fw 1.1.0 booted from slot B (pending commit)"), 1);
    fprintf(stderr,
            "e2e_two_jobs_first_canceled: first job CANCELED on the device %.2f s after the "
            "cancel; the second -> SUCCEEDED, %.2f s after both were created; %s\n",
            canceled_s, dfx_since_s(&f->t_job), details);
}

/* ---- 9. a job canceled during its download, then a new one ---- */

static void test_cancel_then_new_update(void **state)
{
    fixture_t *f = *state;
    char details[512];
    struct timespec t_cancel;
    double canceled_s;
    start_held_download(f, "e2e-canceled");
    clock_gettime(CLOCK_MONOTONIC, &t_cancel);
    cancel_job(f, "e2e-canceled");
    wait_console(f, 0, "job e2e-canceled CANCELED", 10000);
    canceled_s = dfx_since_s(&t_cancel);
    expect_job(f, "e2e-canceled", "CANCELED", NULL, details, sizeof details, 5000);
    dfx_expect_running(f, "1.0.0", "A", "committed", 5000);

    dfx_create_job(f, "e2e-new", "otter-fw-1.1.0", "1.1.0");
    expect_job(f, "e2e-new", "SUCCEEDED", "accepted  v1.1.0", details, sizeof details, 30000);
    dfx_expect_running(f, "1.1.0", "B", "committed", 5000);
    assert_int_equal(dfx_log_count(f, "job accepted: e2e-new"), 1);
    expect_own_stats(f, "e2e-new");
    assert_int_equal(dfx_log_count(f, "download resumed"), 0);
    assert_int_equal(dfx_log_count(f, "activating the new image of job e2e-canceled"), 0);
    fprintf(stderr,
            "e2e_cancel_then_new_update: CANCELED on the device %.2f s after the cancel "
            "(1.0.0 kept running); the new job -> SUCCEEDED in %.2f s; %s\n",
            canceled_s, dfx_since_s(&f->t_job), details);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_updates_back_to_back, dfx_setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_previous_version_rejected, dfx_setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_unsigned_image_rejected, dfx_setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_untrusted_signer_rejected, dfx_setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_algorithm_rejected, dfx_setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_other_device_type_refused, dfx_setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_disconnect_during_download_resumes, relay_setup,
                                        relay_teardown),
        cmocka_unit_test_setup_teardown(test_disconnect_then_cancel, relay_setup, relay_teardown),
        cmocka_unit_test_setup_teardown(test_two_jobs_first_canceled, relay_setup, relay_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_then_new_update, relay_setup, relay_teardown),
    };
    if (access(OTTER_TEST_CLI_BIN, X_OK) != 0 || access(OTTER_TEST_DEVICE_BIN, X_OK) != 0) {
        fprintf(stderr, "build the otter, otter-service, otter-device and otter-fw-* targets\n");
        return 1;
    }
    return ota_test_main(tests, argc, argv);
}
