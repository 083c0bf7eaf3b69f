/*
 * otter simulated device, end to end: a real Mosquitto broker with otter's
 * passwords and ACL, the real otter-service, the otter CLI making keys, the
 * thing and the jobs, and otter-device running real firmware executables
 * from its flash file. Each test checks the job's final status and reason in
 * the service (`otter job show`) and the version that runs (the firmware's
 * status file and console).
 *
 * test_device NAME runs one test (update_succeeds, watch_shows_progress,
 * device_type_checked_at_boot, self_test_fails_reverts,
 * crash_at_start_reverts, cannot_connect_reverts, same_version_rejected).
 * OTA_TEST_KEEP=1 keeps the temporary folder (logs, flash file).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "device_fixture.h"
#include "ota_test_util.h"
#include "otter/ota_image_header.h"

static void test_update_succeeds(void **state)
{
    fixture_t *f = *state;
    char status[32], details[512];
    double secs;
    dfx_start_device(f, "otter-fw-1.0.0", "1.0.0");
    dfx_expect_running(f, "1.0.0", "A", "committed", 5000);
    dfx_create_job(f, "e2e-update", "otter-fw-1.1.0", "1.1.0");
    dfx_wait_job(f, "e2e-update", status, sizeof status, details, sizeof details, 30000);
    secs = dfx_since_s(&f->t_job);
    dfx_report(f, "e2e_update_succeeds", "otter-fw-1.1.0", secs, status, details);
    assert_string_equal(status, "SUCCEEDED");
    assert_non_null(strstr(details, "accepted  v1.1.0"));
    dfx_expect_running(f, "1.1.0", "B", "committed", 5000);
    assert_int_equal(dfx_log_count(f, "otter-fw 1.1.0 booted from slot B (pending commit)"), 1);
    assert_true(dfx_log_count(f, "downloading: ") >= 1);

    /* Power off and on: the committed 1.1.0 still runs. */
    assert_int_equal(ota_test_proc_stop(&f->dev), 0);
    unlink(f->status);
    dfx_start_device(f, "otter-fw-1.0.0", "1.0.0");
    dfx_expect_running(f, "1.1.0", "B", "committed", 5000);
    assert_int_equal(dfx_log_count(f, "otter-fw 1.1.0 booted from slot B (committed)"), 1);
}

/* The same update with mutual TLS: the device presents the certificate `otter
 * thing create` issued, the broker takes its identity from it. */
static void test_update_over_tls(void **state)
{
    fixture_t *f = *state;
    char status[32], details[512];
    dfx_start_device(f, "otter-fw-1.0.0", "1.0.0");
    dfx_expect_running(f, "1.0.0", "A", "committed", 5000);
    dfx_create_job(f, "e2e-tls", "otter-fw-1.1.0", "1.1.0");
    dfx_wait_job(f, "e2e-tls", status, sizeof status, details, sizeof details, 30000);
    dfx_report(f, "e2e_update_over_tls", "otter-fw-1.1.0", dfx_since_s(&f->t_job), status, details);
    assert_string_equal(status, "SUCCEEDED");
    dfx_expect_running(f, "1.1.0", "B", "committed", 5000);
}

/* At the device's default progress interval, `otter watch` shows the download
 * between its first and last block (17 blocks; the link slowed to 100 ms a
 * block, as the demo slows it, so that the download lasts long enough to
 * watch). The job is made while the device is off and the device powered on
 * once watch runs, so a slow start of watch misses nothing. */
static void test_watch_shows_progress(void **state)
{
    fixture_t *f = *state;
    char log[160], text[16384];
    FILE *fp = fopen(f->config, "a");
    assert_non_null(fp);
    fputs("block_delay_ms = 100\n", fp);
    assert_int_equal(fclose(fp), 0);
    snprintf(log, sizeof log, "%s/watch.log", f->dir);
    dfx_start_device(f, "otter-fw-1.0.0", "1.0.0");
    assert_int_equal(ota_test_proc_stop(&f->dev), 0);
    dfx_create_job(f, "e2e-watch", "otter-fw-1.1.0", "1.1.0");
    char *argv[] = {(char *)OTTER_TEST_CLI_BIN,
                    (char *)"watch",
                    (char *)"e2e-watch",
                    (char *)"--json",
                    (char *)"--timeout",
                    (char *)"60",
                    NULL};
    ota_test_proc_t watch;
    assert_int_equal(ota_test_proc_start(&watch, "otter watch", argv, log), 0);
    if (ota_test_log_wait(log, 0, "\"status\":\"QUEUED\"", 20000) != 0) {
        (void)ota_test_proc_kill(&watch);
        fail_msg("otter watch did not show the queued job");
    }
    dfx_start_device(f, "otter-fw-1.0.0", "1.0.0");
    int status = -1;
    for (int i = 0; i < 1200 && ota_test_proc_running(&watch, &status); i++) {
        dfx_sleep_ms(50);
    }
    if (watch.pid != 0) {
        (void)ota_test_proc_kill(&watch);
    }
    assert_int_equal(status, 0);
    assert_int_equal(dfx_read_text(log, text, sizeof text), 0);
    long last = 0, total = 0;
    int between = 0;
    for (const char *p = strstr(text, "\"received\":"); p != NULL;
         p = strstr(p + 1, "\"received\":")) {
        long n = 0, t = 0;
        assert_int_equal(sscanf(p, "\"received\":%ld,\"total\":%ld", &n, &t), 2);
        assert_true(n >= last); /* never backwards */
        between += n > 1 && n < t;
        last = n;
        total = t;
    }
    if (between < 2) {
        fail_msg("watch showed %d progress lines between the first and the last block of %ld:\n%s",
                 between, total, text);
    }
    assert_non_null(strstr(text, "\"status\":\"SUCCEEDED\""));
    dfx_expect_running(f, "1.1.0", "B", "committed", 5000);
}

/* Makes an image of otter-fw-1.1.0 for a device type; its path in out. */
static void typed_image(fixture_t *f, const char *type, char *out, size_t cap)
{
    char fw[256];
    dfx_fw_path(fw, sizeof fw, "otter-fw-1.1.0");
    snprintf(out, cap, "%s/fw-1.1.0-%s.img", f->dir, type);
    const char *mk[] = {"image",         "create", fw,      "--version", "1.1.0",
                        "--device-type", type,     "--out", out,         NULL};
    assert_int_equal(dfx_run_cli(f->cli_log, mk), 0);
}

/* The device's type is real in its bootloader: the factory image carries the
 * tag of device_type; an image of another type, delivered byte for byte
 * (--raw passes the CLI, the service and the agent), is refused at boot and
 * the device reverts; an image of its own type installs. */
static void test_device_type_checked_at_boot(void **state)
{
    fixture_t *f = *state;
    char status[32], details[512], img[200];
    uint32_t tag_a = 0;
    assert_int_equal(ota_device_type_tag("sim-a", 5, &tag_a), OTA_OK);
    FILE *fp = fopen(f->config, "a");
    assert_non_null(fp);
    fputs("device_type = sim-a\n", fp);
    assert_int_equal(fclose(fp), 0);
    dfx_start_device(f, "otter-fw-1.0.0", "1.0.0");
    dfx_expect_running(f, "1.0.0", "A", "committed", 5000);
    /* Slot A (the first image in the flash file) holds the factory image,
     * made for sim-a. */
    static uint8_t head[4096];
    ota_image_header_t hdr;
    fp = fopen(f->flash, "rb");
    assert_non_null(fp);
    size_t got = fread(head, 1, sizeof head, fp);
    fclose(fp);
    const uint8_t *at = NULL;
    for (size_t i = 0; at == NULL && i + OTA_IMAGE_HEADER_SIZE <= got; i++) {
        at = memcmp(head + i, "OTIM", 4) == 0 ? head + i : NULL;
    }
    assert_non_null(at);
    assert_int_equal(ota_image_header_decode(at, OTA_IMAGE_HEADER_SIZE, &hdr), OTA_OK);
    assert_int_equal(hdr.version, ota_version_make(1, 0, 0));
    assert_int_equal(hdr.device_type_tag, tag_a);

    /* An image for sim-b, sent as a raw file: the bootloader refuses its trial. */
    typed_image(f, "sim-b", img, sizeof img);
    long from = ota_test_log_size(f->dev_log);
    const char *raw[] = {"job",       "create", "--file", img,    "--raw",    "--version", "1.1.0",
                         "--targets", THING,    "--key",  f->key, "--job-id", "e2e-other", NULL};
    assert_int_equal(dfx_run_cli(f->cli_log, raw), 0);
    dfx_wait_job(f, "e2e-other", status, sizeof status, details, sizeof details, 30000);
    assert_string_equal(status, "FAILED");
    assert_int_equal(dfx_count_from(f->dev_log, from, "otter-fw 1.1.0 booted"), 0);
    assert_int_equal(dfx_count_from(f->dev_log, from, "committed (new image reverted)"), 1);
    dfx_expect_running(f, "1.0.0", "A", "committed", 10000);

    /* An image for sim-a, to a thing the operator knows as sim-a: installed. */
    typed_image(f, "sim-a", img, sizeof img);
    const char *set[] = {"thing", "set", THING, "deviceType=sim-a", NULL};
    assert_int_equal(dfx_run_cli(f->cli_log, set), 0);
    const char *job[] = {"job",      "create",         "--file", img,     "--targets",
                         THING,      "--device-types", "sim-a",  "--key", f->key,
                         "--job-id", "e2e-typed",      NULL};
    assert_int_equal(dfx_run_cli(f->cli_log, job), 0);
    dfx_wait_job(f, "e2e-typed", status, sizeof status, details, sizeof details, 30000);
    assert_string_equal(status, "SUCCEEDED");
    dfx_expect_running(f, "1.1.0", "B", "committed", 5000);
}

static void test_self_test_fails_reverts(void **state)
{
    fixture_t *f = *state;
    char status[32], details[512];
    dfx_start_device(f, "otter-fw-1.1.0", "1.1.0");
    dfx_expect_running(f, "1.1.0", "A", "committed", 5000);
    dfx_create_job(f, "e2e-selftest", "otter-fw-1.2.0", "1.2.0");
    dfx_wait_job(f, "e2e-selftest", status, sizeof status, details, sizeof details, 30000);
    dfx_report(f, "e2e_self_test_fails_reverts", "otter-fw-1.2.0", dfx_since_s(&f->t_job), status,
               details);
    assert_string_equal(status, "FAILED");
    assert_non_null(strstr(details, "\"reason\":\"rejected"));
    assert_int_equal(dfx_log_count(f, "otter-fw 1.2.0 booted from slot B (pending commit)"), 1);
    assert_int_equal(dfx_log_count(f, "self-test: failed"), 1);
    dfx_expect_running(f, "1.1.0", "A", "committed", 10000);
    assert_int_equal(
        dfx_log_count(f, "boot: slot A, version 1.1.0, committed (new image reverted)"), 1);
}

static void test_crash_at_start_reverts(void **state)
{
    fixture_t *f = *state;
    char status[32], details[512];
    dfx_start_device(f, "otter-fw-1.0.0", "1.0.0");
    dfx_create_job(f, "e2e-crash", "otter-fw-1.3.0-crash", "1.3.0");
    dfx_wait_job(f, "e2e-crash", status, sizeof status, details, sizeof details, 30000);
    dfx_report(f, "e2e_crash_at_start_reverts", "otter-fw-1.3.0-crash", dfx_since_s(&f->t_job),
               status, details);
    assert_string_equal(status, "FAILED");
    assert_non_null(strstr(details, "\"reason\":\""));
    dfx_expect_running(f, "1.0.0", "A", "committed", 10000);
    /* The bootloader gave the new image its whole budget, then reverted. */
    assert_int_equal(dfx_log_count(f, "version 1.3.0, trial (attempt 1 of 3)"), 1);
    assert_int_equal(dfx_log_count(f, "version 1.3.0, trial (attempt 3 of 3)"), 1);
    assert_int_equal(dfx_log_count(f, "firmware crashed"), 3);
    assert_int_equal(
        dfx_log_count(f, "boot: slot A, version 1.0.0, committed (new image reverted)"), 1);
}

static void test_cannot_connect_reverts(void **state)
{
    fixture_t *f = *state;
    char status[32], details[512];
    dfx_start_device(f, "otter-fw-1.0.0", "1.0.0");
    dfx_create_job(f, "e2e-offline", "otter-fw-1.4.0-offline", "1.4.0");
    dfx_wait_job(f, "e2e-offline", status, sizeof status, details, sizeof details, 30000);
    dfx_report(f, "e2e_cannot_connect_reverts", "otter-fw-1.4.0-offline", dfx_since_s(&f->t_job),
               status, details);
    assert_string_equal(status, "FAILED");
    assert_non_null(strstr(details, "\"reason\":\""));
    assert_int_equal(dfx_log_count(f, "otter-fw 1.4.0 booted from slot B (pending commit)"), 1);
    assert_true(dfx_log_count(f, "new image found no broker within the self-test time") == 1);
    dfx_expect_running(f, "1.0.0", "A", "committed", 10000);
    assert_int_equal(
        dfx_log_count(f, "boot: slot A, version 1.0.0, committed (new image reverted)"), 1);
}

static void test_same_version_rejected(void **state)
{
    fixture_t *f = *state;
    char status[32], details[512];
    dfx_start_device(f, "otter-fw-1.0.0", "1.0.0");
    /* The device reported 1.0.0 at boot: the service skips a 1.0.0 job for it. */
    dfx_wait_thing_shows(f, "firmwareVersion", "1.0.0", 10000);
    dfx_create_job(f, "e2e-skip", "otter-fw-1.0.0", "1.0.0");
    dfx_wait_job(f, "e2e-skip", status, sizeof status, details, sizeof details, 30000);
    assert_string_equal(status, "SKIPPED");
    /* Without that record the job reaches the device, whose agent refuses it. */
    {
        const char *args[] = {"thing", "unset", THING, "firmwareVersion", NULL};
        assert_int_equal(dfx_run_cli(f->cli_log, args), 0);
    }
    dfx_create_job(f, "e2e-same", "otter-fw-1.0.0", "1.0.0");
    dfx_wait_job(f, "e2e-same", status, sizeof status, details, sizeof details, 30000);
    dfx_report(f, "e2e_same_version_rejected", "otter-fw-1.0.0", dfx_since_s(&f->t_job), status,
               details);
    assert_string_equal(status, "FAILED");
    assert_non_null(strstr(details, "\"reason\":\""));
    dfx_expect_running(f, "1.0.0", "A", "committed", 10000);
    assert_int_equal(dfx_log_count(f, "self-test: "), 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_update_succeeds, dfx_setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_update_over_tls, dfx_setup_tls, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_watch_shows_progress, dfx_setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_device_type_checked_at_boot, dfx_setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_self_test_fails_reverts, dfx_setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_crash_at_start_reverts, dfx_setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_cannot_connect_reverts, dfx_setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_same_version_rejected, dfx_setup, dfx_teardown),
    };
    if (access(OTTER_TEST_CLI_BIN, X_OK) != 0 || access(OTTER_TEST_DEVICE_BIN, X_OK) != 0) {
        fprintf(stderr, "build the otter, otter-service, otter-device and otter-fw-* targets\n");
        return 1;
    }
    return ota_test_main(tests, argc, argv);
}
