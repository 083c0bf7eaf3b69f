/*
 * otter simulated device, end to end: a real Mosquitto broker with otter's
 * passwords and ACL, the real otter-service, the otter CLI making keys, the
 * thing and the jobs, and otter-device running real firmware executables
 * from its flash file. Each test checks the job's final status and reason in
 * the service (`otter job show`) and the version that runs (the firmware's
 * status file and console).
 *
 * test_device NAME runs one test (update_succeeds, self_test_fails_reverts,
 * crash_at_start_reverts, cannot_connect_reverts, same_version_rejected).
 * OTA_TEST_KEEP=1 keeps the temporary folder (logs, flash file).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ota_test_net.h"

#define THING "dev1"
#define SELF_TEST_TIMEOUT_MS 4000

typedef struct fixture {
    char dir[64];
    char cli_log[128];
    char dev_log[128];
    char svc_log[128];
    char flash[128];
    char status[128];
    char config[128];
    char key[128];
    ota_test_broker_t broker;
    int broker_up;
    ota_test_proc_t svc;
    ota_test_proc_t dev;
    struct timespec t_job;
} fixture_t;

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L};
    nanosleep(&ts, NULL);
}

static double since_s(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Run the otter CLI to the end, output appended to log; its exit status. */
static int run_cli(const char *log, const char *const *args)
{
    char *argv[32];
    ota_test_proc_t p;
    int status = -1;
    size_t n = 0;
    argv[n++] = (char *)OTTER_TEST_CLI_BIN;
    while (args[n - 1u] != NULL && n < 31u) {
        argv[n] = (char *)args[n - 1u];
        n++;
    }
    argv[n] = NULL;
    if (ota_test_proc_start(&p, "otter", argv, log) != 0) {
        return -1;
    }
    for (int i = 0; i < 3000 && ota_test_proc_running(&p, &status); i++) {
        sleep_ms(5);
    }
    if (p.pid != 0) {
        ota_test_proc_kill(&p);
        return -1;
    }
    return status;
}

static int read_text(const char *path, char *buf, size_t cap)
{
    FILE *fp = fopen(path, "r");
    size_t n;
    if (fp == NULL) {
        return -1;
    }
    n = fread(buf, 1, cap - 1u, fp);
    fclose(fp);
    buf[n] = '\0';
    return 0;
}

/* The value of "key":"value" in a small JSON file. */
static int json_string(const char *path, const char *key, char *out, size_t cap)
{
    char buf[4096], pat[64];
    const char *v, *end;
    if (read_text(path, buf, sizeof buf) != 0) {
        return -1;
    }
    snprintf(pat, sizeof pat, "\"%s\":", key);
    v = strstr(buf, pat);
    if (v == NULL || (v = strchr(v + strlen(pat), '"')) == NULL ||
        (end = strchr(v + 1, '"')) == NULL || (size_t)(end - v - 1) >= cap) {
        return -1;
    }
    memcpy(out, v + 1, (size_t)(end - v - 1));
    out[end - v - 1] = '\0';
    return 0;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void fw_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", OTTER_TEST_FW_DIR, name);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    char keys[128], path[160], extra[512], svc_pw[128];
    const char *svc_args[] = {"--username", "otter-service", "--share-group", "none", NULL};
    FILE *fp;
    if (f == NULL) {
        return -1;
    }
    *state = f;
    snprintf(f->dir, sizeof f->dir, "/tmp/otter-device-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        return -1;
    }
    snprintf(f->cli_log, sizeof f->cli_log, "%s/cli.log", f->dir);
    snprintf(f->dev_log, sizeof f->dev_log, "%s/device.log", f->dir);
    snprintf(f->svc_log, sizeof f->svc_log, "%s/service.log", f->dir);
    snprintf(f->flash, sizeof f->flash, "%s/" THING ".flash", f->dir);
    snprintf(f->status, sizeof f->status, "%s/" THING ".flash.status", f->dir);
    snprintf(f->config, sizeof f->config, "%s/device.conf", f->dir);
    snprintf(keys, sizeof keys, "%s/keys", f->dir);
    snprintf(f->key, sizeof f->key, "%s/keys/codesign.key", f->dir);
    setenv("OTTER_DATA_DIR", f->dir, 1);
    {
        const char *a1[] = {"broker", "init", "--port", "1883", NULL};
        const char *a2[] = {"keygen", "--out", keys, NULL};
        const char *a3[] = {"thing", "create", THING, NULL};
        if (run_cli(f->cli_log, a1) != 0 || run_cli(f->cli_log, a2) != 0 ||
            run_cli(f->cli_log, a3) != 0) {
            fprintf(stderr, "otter CLI setup failed; see %s\n", f->cli_log);
            return -1;
        }
    }
    snprintf(extra, sizeof extra,
             "allow_anonymous false\npassword_file %s/broker/passwd\nacl_file %s/broker/acl\n",
             f->dir, f->dir);
    if (ota_test_broker_start(&f->broker, extra) != 0) {
        return -1;
    }
    f->broker_up = 1;
    snprintf(path, sizeof path, "%s/broker/service.credentials", f->dir);
    if (json_string(path, "password", svc_pw, sizeof svc_pw) != 0) {
        return -1;
    }
    setenv("OTTER_MQTT_PASSWORD", svc_pw, 1);
    if (ota_test_service_start(&f->svc, f->dir, f->broker.port, svc_args, f->svc_log) != 0) {
        fprintf(stderr, "otter-service did not get ready; see %s\n", f->svc_log);
        return -1;
    }
    fp = fopen(f->config, "w");
    if (fp == NULL) {
        return -1;
    }
    fprintf(fp,
            "# simulated device " THING "\n"
            "thing_file = things/" THING ".json\n"
            "codesign_cert = keys/codesign.crt\n"
            "broker_port = %d\n"
            "self_test_timeout_ms = %d\n"
            "reset_delay_ms = 200\n",
            f->broker.port, SELF_TEST_TIMEOUT_MS);
    fclose(fp);
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (f == NULL) {
        return 0;
    }
    if (f->dev.pid != 0) {
        int rc = ota_test_proc_stop(&f->dev);
        if (rc != 0) {
            fprintf(stderr, "otter-device ended with %d\n", rc);
        }
    }
    if (f->svc.pid != 0) {
        ota_test_proc_stop(&f->svc);
    }
    if (f->broker_up) {
        ota_test_broker_stop(&f->broker);
    }
    unsetenv("OTTER_MQTT_PASSWORD");
    unsetenv("OTTER_DATA_DIR");
    if (f->dir[0] != '\0') {
        if (getenv("OTA_TEST_KEEP") == NULL) {
            char cmd[128];
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
            if (system(cmd) != 0) {
                fprintf(stderr, "cannot remove %s\n", f->dir);
            }
        } else {
            fprintf(stderr, "kept %s\n", f->dir);
        }
    }
    free(f);
    return 0;
}

/* Print the device console (on failure it says what happened). */
static void dump_log(const char *path)
{
    char buf[65536];
    if (read_text(path, buf, sizeof buf) == 0) {
        fprintf(stderr, "---- %s ----\n%s---- end ----\n", path, buf);
    }
}

/* Start the device (a new flash the first time) and wait for its agent. */
static void start_device(fixture_t *f, const char *factory, const char *factory_version)
{
    char fw[256];
    long from = ota_test_log_size(f->dev_log);
    fw_path(fw, sizeof fw, factory);
    char *argv[] = {(char *)OTTER_TEST_DEVICE_BIN,
                    (char *)"--flash",
                    f->flash,
                    (char *)"--factory",
                    fw,
                    (char *)"--config",
                    f->config,
                    (char *)"--factory-version",
                    (char *)factory_version,
                    NULL};
    assert_int_equal(ota_test_proc_start(&f->dev, "otter-device", argv, f->dev_log), 0);
    if (ota_test_log_wait(f->dev_log, from, "INFO agent started", 10000) != 0) {
        dump_log(f->dev_log);
        fail_msg("the device did not start its agent");
    }
}

/* The value of key=... in the firmware's status file, "" if none. */
static void status_value(fixture_t *f, const char *key, char *out, size_t cap)
{
    char buf[512], pat[32];
    const char *v;
    size_t n;
    out[0] = '\0';
    snprintf(pat, sizeof pat, "%s=", key);
    if (read_text(f->status, buf, sizeof buf) != 0 || (v = strstr(buf, pat)) == NULL) {
        return;
    }
    v += strlen(pat);
    n = strcspn(v, "\n");
    if (n >= cap) {
        n = cap - 1u;
    }
    memcpy(out, v, n);
    out[n] = '\0';
}

/* Wait until the status file says version and image state. */
static void expect_running(fixture_t *f, const char *version, const char *slot, const char *image,
                           int timeout_ms)
{
    char v[32], s[8], i[32];
    for (int t = 0; t < timeout_ms; t += 50) {
        status_value(f, "version", v, sizeof v);
        status_value(f, "slot", s, sizeof s);
        status_value(f, "image", i, sizeof i);
        if (strcmp(v, version) == 0 && strcmp(s, slot) == 0 && strcmp(i, image) == 0) {
            return;
        }
        sleep_ms(50);
    }
    dump_log(f->dev_log);
    fail_msg("expected %s in slot %s (%s); the status file says %s in slot %s (%s)", version, slot,
             image, v, s, i);
}

static void create_job(fixture_t *f, const char *job_id, const char *fw_name, const char *version)
{
    char fw[256];
    fw_path(fw, sizeof fw, fw_name);
    const char *args[] = {"job", "create", "--file", fw,         "--version", version, "--targets",
                          THING, "--key",  f->key,   "--job-id", job_id,      NULL};
    clock_gettime(CLOCK_MONOTONIC, &f->t_job);
    if (run_cli(f->cli_log, args) != 0) {
        dump_log(f->cli_log);
        fail_msg("otter job create failed");
    }
}

/* Poll `otter job show` until the thing's execution is terminal; status and
 * statusDetails out. */
static void wait_job(fixture_t *f, const char *job_id, char *status, size_t status_cap,
                     char *details, size_t details_cap, int timeout_ms)
{
    char out[160], buf[16384];
    const char *args[] = {"job", "show", job_id, NULL};
    snprintf(out, sizeof out, "%s/job-show.txt", f->dir);
    for (int t = 0; t < timeout_ms; t += 200) {
        unlink(out);
        if (run_cli(out, args) == 0 && read_text(out, buf, sizeof buf) == 0) {
            const char *line = strstr(buf, "\n  " THING " ");
            if (line != NULL) {
                char st[32] = "";
                const char *brace;
                size_t n;
                if (sscanf(line + 3 + strlen(THING), "%31s", st) == 1 &&
                    (strcmp(st, "SUCCEEDED") == 0 || strcmp(st, "FAILED") == 0 ||
                     strcmp(st, "REJECTED") == 0 || strcmp(st, "TIMED_OUT") == 0 ||
                     strcmp(st, "CANCELED") == 0)) {
                    snprintf(status, status_cap, "%s", st);
                    brace = strchr(line, '{');
                    n = brace != NULL ? strcspn(brace, "\n") : 0u;
                    if (n >= details_cap) {
                        n = details_cap - 1u;
                    }
                    if (brace != NULL) {
                        memcpy(details, brace, n);
                    }
                    details[n] = '\0';
                    return;
                }
            }
        }
        sleep_ms(200);
    }
    dump_log(f->dev_log);
    dump_log(out);
    fail_msg("job %s did not finish within %d ms", job_id, timeout_ms);
}

/* Occurrences of needle in the device console. */
static int log_count(fixture_t *f, const char *needle)
{
    static char buf[1 << 20];
    int n = 0;
    const char *p = buf;
    if (read_text(f->dev_log, buf, sizeof buf) != 0) {
        return 0;
    }
    while ((p = strstr(p, needle)) != NULL) {
        n++;
        p += strlen(needle);
    }
    return n;
}

static void report(fixture_t *f, const char *test, const char *fw_name, double seconds,
                   const char *status, const char *details)
{
    char fw[256];
    fw_path(fw, sizeof fw, fw_name);
    fprintf(stderr,
            "%s: %s (%ld bytes + 32-byte header) -> %s in %.2f s, %d boots, %d crashes; %s\n", test,
            fw_name, file_size(fw), status, seconds, log_count(f, "device boot:"),
            log_count(f, "firmware crashed"), details);
}

static void test_update_succeeds(void **state)
{
    fixture_t *f = *state;
    char status[32], details[512];
    double secs;
    start_device(f, "otter-fw-1.0.0", "1.0.0");
    expect_running(f, "1.0.0", "A", "committed", 5000);
    create_job(f, "e2e-update", "otter-fw-1.1.0", "1.1.0");
    wait_job(f, "e2e-update", status, sizeof status, details, sizeof details, 30000);
    secs = since_s(&f->t_job);
    report(f, "e2e_update_succeeds", "otter-fw-1.1.0", secs, status, details);
    assert_string_equal(status, "SUCCEEDED");
    assert_non_null(strstr(details, "accepted  v1.1.0"));
    expect_running(f, "1.1.0", "B", "committed", 5000);
    assert_int_equal(log_count(f, "otter-fw 1.1.0 booted from slot B (pending commit)"), 1);
    assert_true(log_count(f, "downloading: ") >= 1);

    /* Power off and on: the committed 1.1.0 still runs. */
    assert_int_equal(ota_test_proc_stop(&f->dev), 0);
    unlink(f->status);
    start_device(f, "otter-fw-1.0.0", "1.0.0");
    expect_running(f, "1.1.0", "B", "committed", 5000);
    assert_int_equal(log_count(f, "otter-fw 1.1.0 booted from slot B (committed)"), 1);
}

static void test_self_test_fails_reverts(void **state)
{
    fixture_t *f = *state;
    char status[32], details[512];
    start_device(f, "otter-fw-1.1.0", "1.1.0");
    expect_running(f, "1.1.0", "A", "committed", 5000);
    create_job(f, "e2e-selftest", "otter-fw-1.2.0", "1.2.0");
    wait_job(f, "e2e-selftest", status, sizeof status, details, sizeof details, 30000);
    report(f, "e2e_self_test_fails_reverts", "otter-fw-1.2.0", since_s(&f->t_job), status, details);
    assert_string_equal(status, "FAILED");
    assert_non_null(strstr(details, "\"reason\":\"rejected"));
    assert_int_equal(log_count(f, "otter-fw 1.2.0 booted from slot B (pending commit)"), 1);
    assert_int_equal(log_count(f, "self-test: failed"), 1);
    expect_running(f, "1.1.0", "A", "committed", 10000);
    assert_int_equal(log_count(f, "boot: slot A, version 1.1.0, committed (new image reverted)"),
                     1);
}

static void test_crash_at_start_reverts(void **state)
{
    fixture_t *f = *state;
    char status[32], details[512];
    start_device(f, "otter-fw-1.0.0", "1.0.0");
    create_job(f, "e2e-crash", "otter-fw-1.3.0-crash", "1.3.0");
    wait_job(f, "e2e-crash", status, sizeof status, details, sizeof details, 30000);
    report(f, "e2e_crash_at_start_reverts", "otter-fw-1.3.0-crash", since_s(&f->t_job), status,
           details);
    assert_string_equal(status, "FAILED");
    assert_non_null(strstr(details, "\"reason\":\""));
    expect_running(f, "1.0.0", "A", "committed", 10000);
    /* The bootloader gave the new image its whole budget, then reverted. */
    assert_int_equal(log_count(f, "version 1.3.0, trial (attempt 1 of 3)"), 1);
    assert_int_equal(log_count(f, "version 1.3.0, trial (attempt 3 of 3)"), 1);
    assert_int_equal(log_count(f, "firmware crashed"), 3);
    assert_int_equal(log_count(f, "boot: slot A, version 1.0.0, committed (new image reverted)"),
                     1);
}

static void test_cannot_connect_reverts(void **state)
{
    fixture_t *f = *state;
    char status[32], details[512];
    start_device(f, "otter-fw-1.0.0", "1.0.0");
    create_job(f, "e2e-offline", "otter-fw-1.4.0-offline", "1.4.0");
    wait_job(f, "e2e-offline", status, sizeof status, details, sizeof details, 30000);
    report(f, "e2e_cannot_connect_reverts", "otter-fw-1.4.0-offline", since_s(&f->t_job), status,
           details);
    assert_string_equal(status, "FAILED");
    assert_non_null(strstr(details, "\"reason\":\""));
    assert_int_equal(log_count(f, "otter-fw 1.4.0 booted from slot B (pending commit)"), 1);
    assert_true(log_count(f, "new image found no broker within the self-test time") == 1);
    expect_running(f, "1.0.0", "A", "committed", 10000);
    assert_int_equal(log_count(f, "boot: slot A, version 1.0.0, committed (new image reverted)"),
                     1);
}

static void test_same_version_rejected(void **state)
{
    fixture_t *f = *state;
    char status[32], details[512];
    start_device(f, "otter-fw-1.0.0", "1.0.0");
    create_job(f, "e2e-same", "otter-fw-1.0.0", "1.0.0");
    wait_job(f, "e2e-same", status, sizeof status, details, sizeof details, 30000);
    report(f, "e2e_same_version_rejected", "otter-fw-1.0.0", since_s(&f->t_job), status, details);
    assert_string_equal(status, "FAILED");
    assert_non_null(strstr(details, "\"reason\":\""));
    expect_running(f, "1.0.0", "A", "committed", 10000);
    assert_int_equal(log_count(f, "self-test: "), 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_update_succeeds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_self_test_fails_reverts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_at_start_reverts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cannot_connect_reverts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_version_rejected, setup, teardown),
    };
    char filter[64];
    if (access(OTTER_TEST_CLI_BIN, X_OK) != 0 || access(OTTER_TEST_DEVICE_BIN, X_OK) != 0) {
        fprintf(stderr, "build the otter, otter-service, otter-device and otter-fw-* targets\n");
        return 1;
    }
    if (argc > 1) {
        snprintf(filter, sizeof filter, "test_%s", argv[1]);
        cmocka_set_test_filter(filter);
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
