/*
 * otter simulated device, end to end, under faults: power cuts during a
 * download, a broker restart and an otter-service crash in the middle of one,
 * and a rollout to 50 devices. Real Mosquitto (otter's passwords and ACL),
 * the real otter-service, the otter CLI, and otter-device running real
 * firmware executables from flash files. Each test checks the job's final
 * status and reason in the service (`otter job show`) and the version that
 * runs (the firmware's status file), and prints one line on what it measured.
 *
 * The single-device tests connect the device through a slow link (a relay on
 * 127.0.0.1 with a bandwidth limit towards the device) so that the download
 * of otter-fw-1.1.0-large (56 blocks of 4 KiB) lasts long enough to be hit
 * at chosen points.
 *
 * test_device_faults NAME runs one test (power_loss_resumes,
 * broker_restart_during_download, service_restart_during_download,
 * rollout_50_devices). OTA_TEST_KEEP=1 keeps the temporary folder;
 * OTTER_E2E_SEED=N replays the power cuts of an earlier run.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "device_fixture.h"
#include "ota_test_util.h"

#define FW_LARGE "otter-fw-1.1.0-large"
#define LINK_BYTES_PER_S (128u * 1024u)
#define CUTS 6
#define FLEET 50
#define ROLLOUT_PER_MINUTE 25

static dfx_link_t g_link;
static ota_test_proc_t g_fleet[FLEET];

/* ---- helpers ---- */

static int faults_setup(void **state)
{
    fixture_t *f;
    char thing_file[64];
    if (dfx_setup(state) != 0) {
        return -1;
    }
    f = *state;
    if (dfx_link_start(&g_link, f->broker.port, LINK_BYTES_PER_S) != 0) {
        fprintf(stderr, "cannot start the slow link\n");
        return -1;
    }
    snprintf(thing_file, sizeof thing_file, "things/%s.json", THING);
    return dfx_write_config(f->config, thing_file, g_link.port, SELF_TEST_TIMEOUT_MS);
}

static int faults_teardown(void **state)
{
    dfx_stop_all(g_fleet, FLEET);
    dfx_teardown(state);
    dfx_link_stop(&g_link);
    return 0;
}

static uint32_t rng_next(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}

static uint32_t seed_from_env(void)
{
    const char *e = getenv("OTTER_E2E_SEED");
    struct timespec t;
    if (e != NULL && *e != '\0') {
        return (uint32_t)strtoul(e, NULL, 0);
    }
    clock_gettime(CLOCK_REALTIME, &t);
    return (uint32_t)t.tv_nsec ^ (uint32_t)t.tv_sec ^ ((uint32_t)getpid() << 16);
}

static unsigned image_blocks(const char *fw_name)
{
    char fw[256];
    long size;
    dfx_fw_path(fw, sizeof fw, fw_name);
    size = dfx_file_size(fw);
    assert_true(size > 0);
    return (unsigned)((size + 32 + (long)DFX_BLOCK_SIZE - 1) / (long)DFX_BLOCK_SIZE);
}

/* Wait for a device log line from offset from; on timeout show the log and fail. */
static void wait_line(fixture_t *f, long from, const char *needle, int timeout_ms)
{
    if (ota_test_log_wait(f->dev_log, from, needle, timeout_ms) != 0) {
        dfx_dump_log(f->dev_log);
        fail_msg("no \"%s\" in the device console within %d ms", needle, timeout_ms);
    }
}

/* Wait until the slow link has delivered `goal` bytes in total. */
static void wait_link(fixture_t *f, long long goal, int timeout_ms)
{
    for (int t = 0; dfx_link_down(&g_link) < goal; t++) {
        if (t >= timeout_ms) {
            dfx_dump_log(f->dev_log);
            fail_msg("the link delivered %lld of %lld bytes within %d ms", dfx_link_down(&g_link),
                     goal, timeout_ms);
        }
        dfx_sleep_ms(1);
    }
}

/* "download resumed: K of N blocks kept" from offset from; 0 when the agent
 * did not resume (no usable progress record). */
static unsigned resumed_blocks(fixture_t *f, long from)
{
    char text[128];
    unsigned k = 0;
    if (dfx_last_after(f->dev_log, from, "download resumed: ", text, sizeof text) == 0) {
        assert_int_equal(sscanf(text, "%u", &k), 1);
    }
    return k;
}

typedef struct dl_stats {
    unsigned received, resumed, duplicates, requests, timeouts;
} dl_stats_t;

/* The firmware's "download stats:" line after offset from. */
static void download_stats(fixture_t *f, long from, dl_stats_t *s)
{
    char text[256];
    memset(s, 0, sizeof *s);
    if (dfx_last_after(f->dev_log, from, "download stats: ", text, sizeof text) != 0 ||
        sscanf(text, "%u blocks received, %u resumed, %u duplicates, %u requests, %u timeouts",
               &s->received, &s->resumed, &s->duplicates, &s->requests, &s->timeouts) != 5) {
        dfx_dump_log(f->dev_log);
        fail_msg("no download stats in the device console");
    }
}

static void start_device(fixture_t *f)
{
    if (dfx_start_device_group(&f->dev, f->flash, f->config, f->dev_log, "otter-fw-1.0.0", "1.0.0",
                               15000) != 0) {
        dfx_dump_log(f->dev_log);
        fail_msg("the device did not start its agent");
    }
}

/* ---- 1. power cuts during the download ---- */

static void test_power_loss_resumes(void **state)
{
    fixture_t *f = *state;
    uint32_t seed = seed_from_env(), rng;
    unsigned nblocks = image_blocks(FW_LARGE);
    unsigned sector_blocks =
        DFX_SECTOR_SIZE / DFX_BLOCK_SIZE > 0 ? DFX_SECTOR_SIZE / DFX_BLOCK_SIZE : 1u;
    unsigned targets[CUTS], kept[CUTS + 1], refetched_total = 0, refetched_max = 0;
    int present[CUTS];
    char ref[192], status[32], details[512];
    long boot_from;
    dl_stats_t st;
    double secs;

    fprintf(stderr, "e2e_power_loss_resumes: seed %u (OTTER_E2E_SEED=%u replays the cuts)\n",
            (unsigned)seed, (unsigned)seed);
    rng = seed != 0u ? seed : 1u;
    /* CUTS distinct cut points, in blocks, spread over [2, nblocks - 4]. */
    assert_true(nblocks >= CUTS + 8u);
    for (int c = 0; c < CUTS; c++) {
        int again;
        do {
            targets[c] = 2u + rng_next(&rng) % (nblocks - 5u);
            again = 0;
            for (int k = 0; k < c; k++) {
                again |= targets[k] == targets[c];
            }
        } while (again);
    }
    for (int i = 1; i < CUTS; i++) {
        for (int k = i; k > 0 && targets[k - 1] > targets[k]; k--) {
            unsigned t = targets[k];
            targets[k] = targets[k - 1];
            targets[k - 1] = t;
        }
    }

    start_device(f);
    dfx_expect_running(f, "1.0.0", "A", "committed", 5000);
    boot_from = ota_test_log_size(f->dev_log);
    dfx_create_job(f, "e2e-power", FW_LARGE, "1.1.0");
    assert_int_equal(dfx_stored_file(f, ref, sizeof ref), 0);
    {
        char fw[256];
        dfx_fw_path(fw, sizeof fw, FW_LARGE);
        assert_int_equal(dfx_file_size(ref), dfx_file_size(fw) + 32);
    }

    for (int c = 0; c <= CUTS; c++) {
        wait_line(f, boot_from, "INFO state: downloading", 20000);
        kept[c] = resumed_blocks(f, boot_from);
        if (c == 0) {
            assert_int_equal(kept[c], 0);
        } else {
            /* The port keeps only blocks it can vouch for: never more than the
             * flash held at the cut, and it drops at most one sector's worth. */
            unsigned lost;
            assert_true(kept[c] <= (unsigned)present[c - 1]);
            lost = (unsigned)present[c - 1] - kept[c];
            if (lost > sector_blocks) {
                dfx_dump_log(f->dev_log);
                fail_msg("cut %d: %d blocks in flash, %u kept: %u fetched again (one sector is %u)",
                         c, present[c - 1], kept[c], lost, sector_blocks);
            }
            refetched_total += lost;
            refetched_max = lost > refetched_max ? lost : refetched_max;
        }
        if (c == CUTS) {
            break;
        }
        {
            unsigned todo = targets[c] > kept[c] ? targets[c] - kept[c] : 1u;
            long long extra = (long long)(rng_next(&rng) % DFX_BLOCK_SIZE);
            long long goal = dfx_link_down(&g_link) + (long long)todo * DFX_BLOCK_SIZE + extra;
            wait_link(f, goal, 30000);
            dfx_power_cut(&f->dev);
            if (dfx_count_from(f->dev_log, boot_from, "file verified") != 0) {
                dfx_dump_log(f->dev_log);
                fail_msg("cut %d (seed %u) came after the download had ended", c + 1,
                         (unsigned)seed);
            }
            present[c] = dfx_flash_blocks_present(f->flash, DFX_SLOT_B_ADDR, ref, DFX_BLOCK_SIZE);
            assert_true(present[c] >= 0);
            fprintf(stderr,
                    "  cut %d: %u blocks kept at boot, cut %lld bytes into block ~%u: %d of %u "
                    "blocks in flash\n",
                    c + 1, kept[c], extra, targets[c] + 1u, present[c], nblocks);
        }
        boot_from = ota_test_log_size(f->dev_log);
        start_device(f);
    }

    dfx_wait_job(f, "e2e-power", status, sizeof status, details, sizeof details, 60000);
    secs = dfx_since_s(&f->t_job);
    assert_string_equal(status, "SUCCEEDED");
    assert_non_null(strstr(details, "accepted  v1.1.0"));
    dfx_expect_running(f, "1.1.0", "B", "committed", 10000);
    download_stats(f, boot_from, &st);
    fprintf(stderr,
            "e2e_power_loss_resumes: %s (%u blocks) -> %s in %.2f s; %d power cuts (seed %u), "
            "%u blocks fetched again in all (at most %u per cut, one sector = %u), last boot "
            "resumed %u and received %u\n",
            FW_LARGE, nblocks, status, secs, CUTS, (unsigned)seed, refetched_total, refetched_max,
            sector_blocks, st.resumed, st.received);
    assert_int_equal(st.resumed, kept[CUTS]);
    assert_int_equal(st.received + st.resumed, nblocks);
    assert_int_equal(dfx_count_from(f->dev_log, 0, "otter-fw 1.1.0 booted from slot B"), 1);
}

/* ---- 2. and 3. a broker restart or a service crash mid-download ---- */

typedef enum { FAULT_BROKER, FAULT_SERVICE } fault_t;

static void run_restart_during_download(fixture_t *f, fault_t fault, const char *test)
{
    unsigned nblocks = image_blocks(FW_LARGE);
    char status[32], details[512];
    long from;
    long long at;
    int accepted;
    struct timespec t0;
    double outage, secs;
    dl_stats_t st;

    start_device(f);
    dfx_expect_running(f, "1.0.0", "A", "committed", 5000);
    from = ota_test_log_size(f->dev_log);
    dfx_create_job(f, "e2e-restart", FW_LARGE, "1.1.0");
    wait_line(f, from, "INFO state: downloading", 20000);
    /* A third of the file. */
    at = dfx_link_down(&g_link) + (long long)(nblocks / 3u) * DFX_BLOCK_SIZE;
    wait_link(f, at, 30000);
    accepted = __atomic_load_n(&g_link.accepted, __ATOMIC_SEQ_CST);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (fault == FAULT_BROKER) {
        assert_int_equal(ota_test_broker_restart(&f->broker), 0);
    } else {
        /* Down until the device has noticed: a request went unanswered. */
        long kill_from = ota_test_log_size(f->dev_log);
        assert_true(ota_test_proc_kill(&f->svc) >= 0);
        wait_line(f, kill_from, "request timed out; asking again", 40000);
        assert_int_equal(dfx_restart_service(f, 1), 0);
    }
    outage = dfx_since_s(&t0);
    assert_int_equal(dfx_count_from(f->dev_log, from, "file verified"), 0);

    dfx_wait_job(f, "e2e-restart", status, sizeof status, details, sizeof details, 60000);
    secs = dfx_since_s(&f->t_job);
    download_stats(f, from, &st);
    fprintf(stderr,
            "e2e_%s: %s (%u blocks) -> %s in %.2f s; %s %s in %.2f s at ~%lld KiB delivered; "
            "%u blocks received, %u resumed, %u duplicates, %u requests, %u timeouts; "
            "device connections %d\n",
            test, FW_LARGE, nblocks, status, secs, fault == FAULT_BROKER ? "broker" : "service",
            fault == FAULT_BROKER ? "restarted" : "killed and started again", outage, at / 1024,
            st.received, st.resumed, st.duplicates, st.requests, st.timeouts,
            __atomic_load_n(&g_link.accepted, __ATOMIC_SEQ_CST));
    assert_string_equal(status, "SUCCEEDED");
    assert_non_null(strstr(details, "accepted  v1.1.0"));
    dfx_expect_running(f, "1.1.0", "B", "committed", 10000);
    /* Not started over: one download, every block written once, no reset. */
    assert_int_equal(st.received, nblocks);
    assert_int_equal(st.resumed, 0);
    assert_int_equal(dfx_count_from(f->dev_log, from, "INFO job accepted"), 1);
    assert_int_equal(dfx_count_from(f->dev_log, from, "device boot:"), 1);
    if (fault == FAULT_BROKER) {
        /* The broker cut the device's connection; it came back. */
        assert_true(__atomic_load_n(&g_link.accepted, __ATOMIC_SEQ_CST) > accepted);
    } else {
        assert_int_equal(dfx_count_from(f->svc_log, 0, OTA_TEST_SERVICE_READY), 2);
        assert_true(st.timeouts >= 1);
    }
}

static void test_broker_restart_during_download(void **state)
{
    run_restart_during_download(*state, FAULT_BROKER, "broker_restart_during_download");
}

static void test_service_restart_during_download(void **state)
{
    run_restart_during_download(*state, FAULT_SERVICE, "service_restart_during_download");
}

/* ---- 4. a rollout to 50 devices ---- */

typedef struct fleet_view {
    int held, queued, in_progress, succeeded, failed, other, seen;
} fleet_view_t;

/* One `otter job show` of the fleet's job. 0 or -1. */
static int fleet_show(fixture_t *f, const char *job_id, fleet_view_t *v)
{
    static char buf[1 << 16];
    char out[160];
    const char *args[] = {"job", "show", job_id, NULL};
    const char *line;
    memset(v, 0, sizeof *v);
    snprintf(out, sizeof out, "%s/fleet-show.txt", f->dir);
    unlink(out);
    if (dfx_run_cli(out, args) != 0 || dfx_read_text(out, buf, sizeof buf) != 0) {
        return -1;
    }
    for (line = strstr(buf, "\n  unit"); line != NULL; line = strstr(line + 1, "\n  unit")) {
        char thing[64], st[64];
        if (sscanf(line, " %63s %63s", thing, st) != 2) {
            continue;
        }
        v->seen++;
        if (strcmp(st, "QUEUED") == 0) {
            const char *eol = strchr(line + 1, '\n');
            const char *held = strstr(line, "(held by rollout)");
            if (held != NULL && (eol == NULL || held < eol)) {
                v->held++;
            } else {
                v->queued++;
            }
        } else if (strcmp(st, "IN_PROGRESS") == 0) {
            v->in_progress++;
        } else if (strcmp(st, "SUCCEEDED") == 0) {
            v->succeeded++;
        } else if (strcmp(st, "FAILED") == 0) {
            v->failed++;
        } else {
            v->other++;
        }
    }
    return 0;
}

static void test_rollout_50_devices(void **state)
{
    fixture_t *f = *state;
    static char targets[FLEET * 8];
    char fw[256], name[16], path[160], conf[160], log[160], thing_file[64], rate[16];
    fleet_view_t v, first = {0};
    double t_first = -1.0, t_batch1 = -1.0, t_release = -1.0, secs = 0.0;
    int held_at_batch1 = -1, max_active_before_release = 0;
    struct timespec t_start;

    clock_gettime(CLOCK_MONOTONIC, &t_start);
    targets[0] = '\0';
    for (int i = 0; i < FLEET; i++) {
        const char *args[] = {"thing", "create", name, NULL};
        snprintf(name, sizeof name, "unit%02d", i);
        assert_int_equal(dfx_run_cli(f->cli_log, args), 0);
        snprintf(targets + strlen(targets), sizeof targets - strlen(targets), "%s%s",
                 i > 0 ? "," : "", name);
    }
    /* Mosquitto reads its password file again on SIGHUP; devices that log
     * in before that retry every second. */
    assert_int_equal(kill(f->broker.proc.pid, SIGHUP), 0);
    for (int i = 0; i < FLEET; i++) {
        snprintf(name, sizeof name, "unit%02d", i);
        snprintf(conf, sizeof conf, "%s/%s.conf", f->dir, name);
        snprintf(path, sizeof path, "%s/%s.flash", f->dir, name);
        snprintf(log, sizeof log, "%s/%s.log", f->dir, name);
        snprintf(thing_file, sizeof thing_file, "things/%s.json", name);
        assert_int_equal(dfx_write_config(conf, thing_file, f->broker.port, 16000), 0);
        assert_int_equal(
            dfx_start_device_group(&g_fleet[i], path, conf, log, "otter-fw-1.0.0", "1.0.0", 0), 0);
    }
    for (int i = 0; i < FLEET; i++) {
        snprintf(log, sizeof log, "%s/unit%02d.log", f->dir, i);
        if (ota_test_log_wait(log, 0, "INFO agent started", 30000) != 0) {
            dfx_dump_log(log);
            fail_msg("unit%02d did not start its agent", i);
        }
    }
    fprintf(stderr, "e2e_rollout_50_devices: %d devices up in %.2f s\n", FLEET,
            dfx_since_s(&t_start));

    dfx_fw_path(fw, sizeof fw, "otter-fw-1.1.0");
    snprintf(rate, sizeof rate, "%d", ROLLOUT_PER_MINUTE);
    {
        const char *args[] = {"job",      "create",      "--file",         fw,      "--version",
                              "1.1.0",    "--targets",   targets,          "--key", f->key,
                              "--job-id", "e2e-rollout", "--rollout-rate", rate,    NULL};
        clock_gettime(CLOCK_MONOTONIC, &f->t_job);
        if (dfx_run_cli(f->cli_log, args) != 0) {
            dfx_dump_log(f->cli_log);
            fail_msg("otter job create failed");
        }
    }
    for (;;) {
        double t = dfx_since_s(&f->t_job);
        int active;
        if (t > 150.0) {
            fail_msg("the rollout did not finish: %d SUCCEEDED, %d FAILED, %d held, %d queued, "
                     "%d in progress",
                     v.succeeded, v.failed, v.held, v.queued, v.in_progress);
        }
        if (fleet_show(f, "e2e-rollout", &v) != 0 || v.seen != FLEET) {
            dfx_sleep_ms(250);
            continue;
        }
        if (first.seen == 0) {
            first = v;
        }
        active = FLEET - v.held;
        if (t < 55.0 && active > max_active_before_release) {
            max_active_before_release = active;
        }
        if (t_first < 0.0 && v.succeeded > 0) {
            t_first = t;
        }
        if (t_batch1 < 0.0 && v.succeeded >= ROLLOUT_PER_MINUTE) {
            t_batch1 = t;
            held_at_batch1 = v.held;
        }
        if (t_release < 0.0 && v.held < FLEET - ROLLOUT_PER_MINUTE) {
            t_release = t;
        }
        if (v.succeeded + v.failed + v.other == FLEET) {
            secs = t;
            break;
        }
        dfx_sleep_ms(250);
    }
    fprintf(stderr,
            "e2e_rollout_50_devices: rate %d/min: %d held at first look, at most %d released "
            "before minute 1; first SUCCEEDED at %.2f s, %d SUCCEEDED by %.2f s with %d still "
            "held; the rest released at %.2f s; %d SUCCEEDED, %d FAILED in %.2f s\n",
            ROLLOUT_PER_MINUTE, first.held, max_active_before_release, t_first, ROLLOUT_PER_MINUTE,
            t_batch1, held_at_batch1, t_release, v.succeeded, v.failed, secs);
    assert_int_equal(v.succeeded, FLEET);
    /* The rate held half of the fleet back for the first minute. */
    assert_true(first.held >= FLEET - ROLLOUT_PER_MINUTE);
    assert_int_equal(max_active_before_release, ROLLOUT_PER_MINUTE);
    assert_int_equal(held_at_batch1, FLEET - ROLLOUT_PER_MINUTE);
    assert_true(t_batch1 < 55.0);
    assert_true(t_release >= 55.0);
    for (int i = 0; i < FLEET; i++) {
        snprintf(name, sizeof name, "unit%02d", i);
        dfx_expect_committed(f, name, "1.1.0");
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_power_loss_resumes, faults_setup, faults_teardown),
        cmocka_unit_test_setup_teardown(test_broker_restart_during_download, faults_setup,
                                        faults_teardown),
        cmocka_unit_test_setup_teardown(test_service_restart_during_download, faults_setup,
                                        faults_teardown),
        cmocka_unit_test_setup_teardown(test_rollout_50_devices, faults_setup, faults_teardown),
    };
    if (access(OTTER_TEST_CLI_BIN, X_OK) != 0 || access(OTTER_TEST_DEVICE_BIN, X_OK) != 0) {
        fprintf(stderr, "build the otter, otter-service, otter-device and otter-fw-* targets\n");
        return 1;
    }
    return ota_test_main(tests, argc, argv);
}
