/*
 * otter on the emulated Cortex-M board, end to end: a real Mosquitto with
 * otter's configuration (`otter broker init`: each thing bound to its own client id
 * and topics), otter-service, a thing made with `otter thing create`, and the board's
 * firmware running under qemu-system-arm (mps2-an386), its UART0 connected
 * to the broker, its flash in a file made by otter-board-flash.
 *
 * The test is the board's power supply: when the firmware resets, QEMU
 * (-no-reboot) exits with status 0 and the test starts it again; killing QEMU
 * is a power cut. Every process is stopped by PID, also on failure.
 *
 *   board_update_then_revert   1.0.0 -> 1.1.0 made for another board type
 *                              (--raw): FAILED, the bootloader refuses its
 *                              trial; 1.1.0 made for mps2-an386 with
 *                              --device-types: SUCCEEDED (new image in slot B,
 *                              self-test, commit); then 1.2.0, whose
 *                              self-test fails -> FAILED with its reason, the
 *                              bootloader reverts to 1.1.0
 *   board_power_cut_resumes    QEMU killed in the middle of the download of
 *                              1.1.0; the next boot resumes it, SUCCEEDED
 *   board_cancel_during_download  the job is canceled while the board
 *                              downloads; it reports CANCELED, keeps running
 *                              1.0.0 and takes the next job
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "board_layout.h"
#include "device_fixture.h"
#include "otter/ota_image_header.h"

#define WAIT_MS 40000
#define BLOCK 4096u

/* Starts QEMU on the board's flash; its console is appended to the device log. */
static void board_power_on(fixture_t *f)
{
    char semi[300], chardev[160];
    snprintf(semi, sizeof semi, "enable=on,target=native,arg=otter,arg=%s", f->flash);
    snprintf(chardev, sizeof chardev, "socket,id=mq,host=127.0.0.1,port=%d,server=off,nodelay=on",
             f->broker.port);
    char *argv[] = {(char *)BOARD_QEMU,
                    "-M",
                    "mps2-an386",
                    "-nographic",
                    "-monitor",
                    "none",
                    "-no-reboot",
                    "-semihosting-config",
                    semi,
                    "-kernel",
                    (char *)BOARD_FW_DIR "/otter-boot.elf",
                    "-chardev",
                    chardev,
                    "-serial",
                    "chardev:mq",
                    NULL};
    assert_int_equal(ota_test_proc_start(&f->dev, "qemu", argv, f->dev_log), 0);
}

/* Powers the board (again after every reset) until the console shows needle
 * after byte offset from. Fails if QEMU ends with another status. */
static void board_run_until(fixture_t *f, long from, const char *needle, int timeout_ms)
{
    for (int t = 0; t < timeout_ms; t += 20) {
        if (dfx_count_from(f->dev_log, from, needle) > 0) {
            return;
        }
        int status = 0;
        if (f->dev.pid == 0 || !ota_test_proc_running(&f->dev, &status)) {
            if (status != 0) {
                dfx_dump_log(f->dev_log);
                fail_msg("the board stopped with status %d", status);
            }
            board_power_on(f); /* a reset: QEMU exited with 0 */
        }
        dfx_sleep_ms(20);
    }
    dfx_dump_log(f->dev_log);
    fail_msg("the board did not show \"%s\" within %d ms", needle, timeout_ms);
}

/* A new board: flash file with the factory 1.0.0 image and the thing's identity. */
static void board_manufacture(fixture_t *f)
{
    char thing[160], cert[160];
    snprintf(thing, sizeof thing, "%s/things/" THING ".json", f->dir);
    snprintf(cert, sizeof cert, "%s/keys/codesign.crt", f->dir);
    char *argv[] = {(char *)BOARD_FLASH_TOOL,
                    "--out",
                    f->flash,
                    "--factory",
                    (char *)BOARD_FW_DIR "/otter-app-1.0.0.bin",
                    "--version",
                    "1.0.0",
                    "--thing",
                    thing,
                    "--cert",
                    cert,
                    NULL};
    ota_test_proc_t p;
    assert_int_equal(ota_test_proc_start(&p, "otter-board-flash", argv, f->cli_log), 0);
    int status = -1;
    for (int i = 0; i < 500 && ota_test_proc_running(&p, &status); i++) {
        dfx_sleep_ms(10);
    }
    if (status != 0) {
        dfx_dump_log(f->cli_log);
        fail_msg("otter-board-flash failed (%d)", status);
    }
    /* The factory image in slot A is made for the board's type. */
    uint8_t head[OTA_IMAGE_HEADER_SIZE];
    ota_image_header_t hdr;
    uint32_t tag = 0;
    FILE *fp = fopen(f->flash, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, BOARD_SLOT_A, SEEK_SET), 0);
    assert_int_equal(fread(head, 1, sizeof head, fp), sizeof head);
    fclose(fp);
    assert_int_equal(ota_image_header_decode(head, sizeof head, &hdr), OTA_OK);
    assert_int_equal(ota_device_type_tag(BOARD_DEVICE_TYPE, strlen(BOARD_DEVICE_TYPE), &tag),
                     OTA_OK);
    assert_int_equal(hdr.device_type_tag, tag);
    board_power_on(f);
    board_run_until(f, 0, "agent started", WAIT_MS);
    assert_int_equal(dfx_count_from(f->dev_log, 0, "otter-app 1.0.0 booted from slot A"), 1);
}

/* Makes an image of a board application for a device type (otter image
 * create --device-type); its path in out. */
static void board_image(fixture_t *f, const char *app, const char *version, const char *type,
                        char *out, size_t cap)
{
    char fw[256];
    snprintf(fw, sizeof fw, "%s/%s.bin", BOARD_FW_DIR, app);
    snprintf(out, cap, "%s/%s-%s.img", f->dir, app, type);
    const char *args[] = {"image",         "create", fw,      "--version", version,
                          "--device-type", type,     "--out", out,         NULL};
    if (dfx_run_cli(f->cli_log, args) != 0) {
        dfx_dump_log(f->cli_log);
        fail_msg("otter image create failed");
    }
}

static void board_job(fixture_t *f, const char *job_id, const char *image, const char *version)
{
    char fw[256];
    snprintf(fw, sizeof fw, "%s/%s.bin", BOARD_FW_DIR, image);
    const char *args[] = {"job", "create", "--file", fw,         "--version", version, "--targets",
                          THING, "--key",  f->key,   "--job-id", job_id,      NULL};
    clock_gettime(CLOCK_MONOTONIC, &f->t_job);
    if (dfx_run_cli(f->cli_log, args) != 0) {
        dfx_dump_log(f->cli_log);
        fail_msg("otter job create failed");
    }
}

/* Powers the board until the service has a terminal status for the job. */
static void board_wait_job(fixture_t *f, const char *job_id, const char *want, char *details,
                           size_t cap)
{
    char status[32] = "";
    char line[160];
    snprintf(line, sizeof line, "job %s %s", job_id, want);
    board_run_until(f, 0, line, WAIT_MS);
    dfx_wait_job(f, job_id, status, sizeof status, details, cap, 10000);
    assert_string_equal(status, want);
}

/* 4 KiB blocks of slot B that hold anything but erased bytes. */
static int slot_b_blocks_written(const fixture_t *f)
{
    static uint8_t flash[BOARD_FLASH_SIZE];
    FILE *fp = fopen(f->flash, "rb");
    int n = 0;
    if (fp == NULL) {
        return -1;
    }
    size_t got = fread(flash, 1, sizeof flash, fp);
    fclose(fp);
    if (got != sizeof flash) {
        return -1;
    }
    for (uint32_t b = 0; b < BOARD_SLOT_SIZE / BLOCK; b++) {
        const uint8_t *p = flash + BOARD_SLOT_B + b * BLOCK;
        for (uint32_t i = 0; i < BLOCK; i++) {
            if (p[i] != BOARD_ERASED) {
                n++;
                break;
            }
        }
    }
    return n;
}

/* The deepest stack any boot reported ("<prefix>N of M bytes used"). */
static unsigned board_stack_max(const fixture_t *f, const char *prefix, unsigned *size)
{
    static char text[1 << 20];
    unsigned max = 0;
    if (dfx_read_text(f->dev_log, text, sizeof text) != 0) {
        return 0;
    }
    size_t n = strlen(prefix);
    for (const char *p = strstr(text, prefix); p != NULL; p = strstr(p + 1, prefix)) {
        unsigned used = 0;
        if (sscanf(p + n, "%u of %u", &used, size) == 2 && used > max) {
            max = used;
        }
    }
    return max;
}

/* The figures the console printed: the deepest stack seen, the last boot line. */
static void board_report(fixture_t *f, const char *test)
{
    char boot[160] = "";
    unsigned size = 0, boot_size = 0, stack = board_stack_max(f, "] stack: ", &size);
    unsigned boot_stack = board_stack_max(f, "boot: stack ", &boot_size);
    dfx_last_after(f->dev_log, 0, "boot: slot", boot, sizeof boot);
    printf("%s: %.1f s since the first job; %d boots; last boot: slot%s; stack high-water mark: "
           "application %u of %u bytes, bootloader %u of %u bytes\n",
           test, dfx_since_s(&f->t_job), dfx_count_from(f->dev_log, 0, "boot: slot"), boot, stack,
           size, boot_stack, boot_size);
}

static void test_update_then_revert(void **state)
{
    fixture_t *f = *state;
    char details[512], img[256];
    board_manufacture(f);

    /* 1.1.0 made for another board, delivered byte for byte (--raw passes
     * the CLI, the service and the agent): the bootloader refuses its trial. */
    board_image(f, "otter-app-1.1.0", "1.1.0", "other-board", img, sizeof img);
    const char *raw[] = {"job",       "create", "--file", img,    "--raw",    "--version", "1.1.0",
                         "--targets", THING,    "--key",  f->key, "--job-id", "board-0",   NULL};
    clock_gettime(CLOCK_MONOTONIC, &f->t_job);
    assert_int_equal(dfx_run_cli(f->cli_log, raw), 0);
    board_wait_job(f, "board-0", "FAILED", details, sizeof details);
    assert_int_equal(dfx_count_from(f->dev_log, 0, "otter-app 1.1.0 booted"), 0);

    /* 1.1.0 made for this board, to a thing known as of its type. */
    board_image(f, "otter-app-1.1.0", "1.1.0", BOARD_DEVICE_TYPE, img, sizeof img);
    const char *set[] = {"thing", "set", THING, "deviceType=" BOARD_DEVICE_TYPE, NULL};
    assert_int_equal(dfx_run_cli(f->cli_log, set), 0);
    const char *typed[] = {"job",       "create", "--file",         img,
                           "--targets", THING,    "--device-types", BOARD_DEVICE_TYPE,
                           "--key",     f->key,   "--job-id",       "board-1",
                           NULL};
    clock_gettime(CLOCK_MONOTONIC, &f->t_job);
    assert_int_equal(dfx_run_cli(f->cli_log, typed), 0);
    board_wait_job(f, "board-1", "SUCCEEDED", details, sizeof details);
    assert_non_null(strstr(details, "accepted"));
    assert_int_equal(dfx_count_from(f->dev_log, 0, "otter-app 1.1.0 booted from slot B (pending"),
                     1);
    assert_int_equal(dfx_count_from(f->dev_log, 0, "self-test: passed"), 1);

    long mark = ota_test_log_size(f->dev_log);
    board_job(f, "board-2", "otter-app-1.2.0-selftest-fails", "1.2.0");
    board_wait_job(f, "board-2", "FAILED", details, sizeof details);
    assert_non_null(strstr(details, "rejected"));
    assert_int_equal(dfx_count_from(f->dev_log, mark, "otter-app 1.2.0 booted from slot A"), 1);
    assert_int_equal(dfx_count_from(f->dev_log, mark, "self-test: failed"), 1);
    /* The bootloader reverts: 1.1.0 runs again from slot B, committed. */
    board_run_until(f, mark, "otter-app 1.1.0 booted from slot B (committed)", WAIT_MS);
    board_run_until(f, mark, "agent started", WAIT_MS);
    board_report(f, "board_update_then_revert");
}

static void test_power_cut_resumes(void **state)
{
    fixture_t *f = *state;
    char details[512], kept[64] = "";
    board_manufacture(f);
    board_job(f, "board-cut", "otter-app-1.1.0", "1.1.0");
    board_run_until(f, 0, "state: downloading", WAIT_MS);
    int written = 0;
    for (int t = 0; t < WAIT_MS && (written = slot_b_blocks_written(f)) < 4; t += 20) {
        dfx_sleep_ms(20);
    }
    assert_true(written >= 4);
    assert_int_equal(ota_test_proc_kill(&f->dev), 128 + 9);
    int at_cut = slot_b_blocks_written(f);
    assert_int_equal(dfx_count_from(f->dev_log, 0, "file verified"), 0);

    long mark = ota_test_log_size(f->dev_log);
    board_power_on(f);
    board_wait_job(f, "board-cut", "SUCCEEDED", details, sizeof details);
    assert_int_equal(dfx_last_after(f->dev_log, mark, "download resumed: ", kept, sizeof kept), 0);
    unsigned k = 0, total = 0;
    assert_int_equal(sscanf(kept, "%u of %u", &k, &total), 2);
    assert_true(k >= 1 && k < total);
    printf("board_power_cut_resumes: cut with %d blocks in slot B, %u of %u kept after the cut\n",
           at_cut, k, total);
    board_report(f, "board_power_cut_resumes");
}

static void test_cancel_during_download(void **state)
{
    fixture_t *f = *state;
    char details[512];
    board_manufacture(f);
    board_job(f, "board-cancel", "otter-app-1.1.0", "1.1.0");
    board_run_until(f, 0, "state: downloading", WAIT_MS);
    const char *args[] = {"job", "cancel", "board-cancel", NULL};
    assert_int_equal(dfx_run_cli(f->cli_log, args), 0);
    board_run_until(f, 0, "job board-cancel CANCELED", WAIT_MS);
    /* Nothing was activated: still 1.0.0 from slot A, in one boot. */
    assert_int_equal(dfx_count_from(f->dev_log, 0, "file verified"), 0);
    assert_int_equal(dfx_count_from(f->dev_log, 0, "boot: slot"), 1);
    /* And the next job goes through. */
    board_job(f, "board-after", "otter-app-1.1.0", "1.1.0");
    board_wait_job(f, "board-after", "SUCCEEDED", details, sizeof details);
    board_report(f, "board_cancel_during_download");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest all[] = {
        cmocka_unit_test_setup_teardown(test_update_then_revert, dfx_setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_power_cut_resumes, dfx_setup, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_during_download, dfx_setup, dfx_teardown),
    };
    static const char *const names[] = {"update_then_revert", "power_cut_resumes",
                                        "cancel_during_download"};
    for (size_t i = 0; argc > 1 && i < sizeof all / sizeof all[0]; i++) {
        if (strcmp(argv[1], names[i]) == 0) {
            return _cmocka_run_group_tests(names[i], &all[i], 1, NULL, NULL);
        }
    }
    if (argc > 1) {
        fprintf(stderr, "usage: test_board [update_then_revert|power_cut_resumes|"
                        "cancel_during_download]\n");
        return 2;
    }
    return cmocka_run_group_tests_name("board", all, NULL, NULL);
}
