/* otter simulated device: the end-to-end test fixture (see device_fixture.h). */
#include "device_fixture.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

void dfx_sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L};
    nanosleep(&ts, NULL);
}

double dfx_since_s(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Run the otter CLI to the end, output appended to log; its exit status. */
int dfx_run_cli(const char *log, const char *const *args)
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
        dfx_sleep_ms(5);
    }
    if (p.pid != 0) {
        ota_test_proc_kill(&p);
        return -1;
    }
    return status;
}

int dfx_read_text(const char *path, char *buf, size_t cap)
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
int dfx_json_string(const char *path, const char *key, char *out, size_t cap)
{
    char buf[4096], pat[64];
    const char *v, *end;
    if (dfx_read_text(path, buf, sizeof buf) != 0) {
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

long dfx_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

void dfx_fw_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", OTTER_TEST_FW_DIR, name);
}

/* The service's arguments: no shared subscriptions, and --http-url with otter-http. */
static void service_args(fixture_t *f, const char **args, char *url, size_t cap)
{
    snprintf(url, cap, f->http_tls ? "https://localhost:%d" : "http://127.0.0.1:%d", f->http_port);
    args[0] = "--share-group";
    args[1] = "none";
    args[2] = f->http_port != 0 ? "--http-url" : NULL;
    args[3] = url;
    args[4] = NULL;
}

int dfx_http_start(fixture_t *f)
{
    char port[16];
    char *argv[] = {(char *)OTTER_TEST_HTTP_BIN,
                    (char *)"--data-dir",
                    f->dir,
                    (char *)"--port",
                    port,
                    f->http_tls ? (char *)"--tls" : NULL,
                    NULL};
    long from = ota_test_log_size(f->http_log);
    snprintf(port, sizeof port, "%d", f->http_port);
    if (ota_test_proc_start(&f->http, "otter-http", argv, f->http_log) != 0) {
        return -1;
    }
    return ota_test_log_wait(f->http_log, from, "INFO ready:", 10000);
}

void dfx_http_kill(fixture_t *f)
{
    if (f->http.pid != 0) {
        (void)ota_test_proc_kill(&f->http);
    }
}

int dfx_setup_broker(fixture_t *f, const char *dir_template, const char *const *init_args)
{
    char keys[128];
    snprintf(f->dir, sizeof f->dir, "%s", dir_template);
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
    /* The broker `otter broker init` sets up in the data folder, then the signing key. */
    if (ota_test_broker_start_with(&f->broker, f->dir, init_args) != 0) {
        return -1;
    }
    f->broker_up = 1;
#ifdef OTTER_TEST_KEY_TYPE
    /* A device built with another signature method: a key of its type. */
    const char *keygen[] = {"keygen", "--out", keys, "--type", OTTER_TEST_KEY_TYPE, NULL};
#else
    const char *keygen[] = {"keygen", "--out", keys, NULL};
#endif
    if (dfx_run_cli(f->cli_log, keygen) != 0) {
        fprintf(stderr, "otter keygen failed; see %s\n", f->cli_log);
        return -1;
    }
    return 0;
}

/* dfx_setup() with extra `otter broker init` arguments, and otter-http when http. */
static int setup_with(void **state, const char *const *init_args, int http)
{
    fixture_t *f = calloc(1, sizeof *f);
    char url[64];
    const char *svc_args[5];
    FILE *fp;
    if (f == NULL) {
        return -1;
    }
    f->http_tls = http > 1;
    *state = f;
    if (dfx_setup_broker(f, "/tmp/otter-device-XXXXXX", init_args) != 0) {
        return -1;
    }
    {
        const char *a3[] = {"thing", "create", THING, NULL};
        if (dfx_run_cli(f->cli_log, a3) != 0) {
            fprintf(stderr, "otter CLI setup failed; see %s\n", f->cli_log);
            return -1;
        }
    }
    if (http) {
        f->http_port = ota_test_free_port();
        snprintf(f->http_log, sizeof f->http_log, "%s/http.log", f->dir);
    }
    service_args(f, svc_args, url, sizeof url);
    if (ota_test_service_start(&f->svc, f->dir, &f->broker, svc_args, f->svc_log) != 0) {
        fprintf(stderr, "otter-service did not get ready; see %s\n", f->svc_log);
        return -1;
    }
    if (http && dfx_http_start(f) != 0) {
        fprintf(stderr, "otter-http did not get ready; see %s\n", f->http_log);
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

int dfx_setup(void **state)
{
    return setup_with(state, NULL, 0);
}

int dfx_setup_http(void **state)
{
    return setup_with(state, NULL, 1);
}

int dfx_setup_https(void **state)
{
    static const char *const tls[] = {"--tls", NULL};
    return setup_with(state, tls, 2);
}

int dfx_setup_tls(void **state)
{
    static const char *const tls[] = {"--tls", NULL};
    return setup_with(state, tls, 0);
}

int dfx_teardown(void **state)
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
    if (f->http.pid != 0) {
        ota_test_proc_stop(&f->http);
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
void dfx_dump_log(const char *path)
{
    char buf[65536];
    if (dfx_read_text(path, buf, sizeof buf) == 0) {
        fprintf(stderr, "---- %s ----\n%s---- end ----\n", path, buf);
    }
}

/* Start the device (a new flash the first time) and wait for its agent. */
void dfx_start_device(fixture_t *f, const char *factory, const char *factory_version)
{
    char fw[256];
    long from = ota_test_log_size(f->dev_log);
    dfx_fw_path(fw, sizeof fw, factory);
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
        dfx_dump_log(f->dev_log);
        fail_msg("the device did not start its agent");
    }
}

/* The value of key=... in the firmware's status file, "" if none. */
void dfx_status_value(fixture_t *f, const char *key, char *out, size_t cap)
{
    char buf[512], pat[32];
    const char *v;
    size_t n;
    out[0] = '\0';
    snprintf(pat, sizeof pat, "%s=", key);
    if (dfx_read_text(f->status, buf, sizeof buf) != 0 || (v = strstr(buf, pat)) == NULL) {
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
void dfx_expect_running(fixture_t *f, const char *version, const char *slot, const char *image,
                        int timeout_ms)
{
    char v[32], s[8], i[32];
    for (int t = 0; t < timeout_ms; t += 50) {
        dfx_status_value(f, "version", v, sizeof v);
        dfx_status_value(f, "slot", s, sizeof s);
        dfx_status_value(f, "image", i, sizeof i);
        if (strcmp(v, version) == 0 && strcmp(s, slot) == 0 && strcmp(i, image) == 0) {
            return;
        }
        dfx_sleep_ms(50);
    }
    dfx_dump_log(f->dev_log);
    fail_msg("expected %s in slot %s (%s); the status file says %s in slot %s (%s)", version, slot,
             image, v, s, i);
}

void dfx_create_job(fixture_t *f, const char *job_id, const char *fw_name, const char *version)
{
    dfx_create_job_protocols(f, job_id, fw_name, version, NULL);
}

void dfx_create_job_protocols(fixture_t *f, const char *job_id, const char *fw_name,
                              const char *version, const char *protocols)
{
    char fw[256];
    dfx_fw_path(fw, sizeof fw, fw_name);
    const char *args[] = {"job",
                          "create",
                          "--file",
                          fw,
                          "--version",
                          version,
                          "--targets",
                          THING,
                          "--key",
                          f->key,
                          "--job-id",
                          job_id,
                          protocols != NULL ? "--protocols" : NULL,
                          protocols,
                          NULL};
    clock_gettime(CLOCK_MONOTONIC, &f->t_job);
    if (dfx_run_cli(f->cli_log, args) != 0) {
        dfx_dump_log(f->cli_log);
        fail_msg("otter job create failed");
    }
}

/* Poll `otter job show` until the thing's execution is terminal; status and
 * statusDetails out. */
/* Waits until `otter thing show THING` prints a line with both texts. */
void dfx_wait_thing_shows(fixture_t *f, const char *a, const char *b, int timeout_ms)
{
    static char buf[1 << 16];
    char log[200];
    snprintf(log, sizeof log, "%s/thing-show.log", f->dir);
    const char *args[] = {"thing", "show", THING, NULL};
    for (int t = 0; t < timeout_ms; t += 200) {
        (void)unlink(log);
        if (dfx_run_cli(log, args) == 0 && dfx_read_text(log, buf, sizeof buf) == 0) {
            for (char *line = buf; line != NULL && *line != '\0';) {
                char *end = strchr(line, '\n');
                if (end != NULL) {
                    *end = '\0';
                }
                if (strstr(line, a) != NULL && strstr(line, b) != NULL) {
                    return;
                }
                line = end != NULL ? end + 1 : NULL;
            }
        }
        dfx_sleep_ms(200);
    }
    dfx_dump_log(log);
    fail_msg("'otter thing show %s' did not show %s %s within %d ms", THING, a, b, timeout_ms);
}

void dfx_wait_job(fixture_t *f, const char *job_id, char *status, size_t status_cap, char *details,
                  size_t details_cap, int timeout_ms)
{
    char out[160], buf[16384];
    const char *args[] = {"job", "show", job_id, NULL};
    snprintf(out, sizeof out, "%s/job-show.txt", f->dir);
    for (int t = 0; t < timeout_ms; t += 200) {
        unlink(out);
        if (dfx_run_cli(out, args) == 0 && dfx_read_text(out, buf, sizeof buf) == 0) {
            const char *line = strstr(buf, "\n  " THING " ");
            if (line != NULL) {
                char st[32] = "";
                const char *brace;
                size_t n;
                if (sscanf(line + 3 + strlen(THING), "%31s", st) == 1 &&
                    (strcmp(st, "SUCCEEDED") == 0 || strcmp(st, "FAILED") == 0 ||
                     strcmp(st, "SKIPPED") == 0 || strcmp(st, "REJECTED") == 0 ||
                     strcmp(st, "TIMED_OUT") == 0 || strcmp(st, "CANCELED") == 0)) {
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
        dfx_sleep_ms(200);
    }
    dfx_dump_log(f->dev_log);
    dfx_dump_log(out);
    fail_msg("job %s did not finish within %d ms", job_id, timeout_ms);
}

/* Occurrences of needle in the device console. */
int dfx_log_count(fixture_t *f, const char *needle)
{
    static char buf[1 << 20];
    int n = 0;
    const char *p = buf;
    if (dfx_read_text(f->dev_log, buf, sizeof buf) != 0) {
        return 0;
    }
    while ((p = strstr(p, needle)) != NULL) {
        n++;
        p += strlen(needle);
    }
    return n;
}

void dfx_report(fixture_t *f, const char *test, const char *fw_name, double seconds,
                const char *status, const char *details)
{
    char fw[256];
    dfx_fw_path(fw, sizeof fw, fw_name);
    fprintf(stderr,
            "%s: %s (%ld bytes + 32-byte header) -> %s in %.2f s, %d boots, %d crashes; %s\n", test,
            fw_name, dfx_file_size(fw), status, seconds, dfx_log_count(f, "device boot:"),
            dfx_log_count(f, "firmware crashed"), details);
}

/* ---- fault scenarios ---- */

int dfx_start_device_group(ota_test_proc_t *p, const char *flash, const char *config,
                           const char *log, const char *factory, const char *factory_version,
                           int wait_ms)
{
    char fw[256];
    long from = ota_test_log_size(log);
    dfx_fw_path(fw, sizeof fw, factory);
    /* nice(1) and setsid(1) run in the same process (it is no group leader
     * here), so the pid is the new group's id; every thread of the device
     * inherits the niceness. */
    char *argv[] = {(char *)"/usr/bin/nice",
                    (char *)"-n",
                    (char *)"10",
                    (char *)"/usr/bin/setsid",
                    (char *)OTTER_TEST_DEVICE_BIN,
                    (char *)"--flash",
                    (char *)flash,
                    (char *)"--factory",
                    fw,
                    (char *)"--config",
                    (char *)config,
                    (char *)"--factory-version",
                    (char *)factory_version,
                    NULL};
    if (ota_test_proc_start(p, "otter-device", argv, log) != 0) {
        return -1;
    }
    for (int i = 0; i < 400 && getpgid(p->pid) != p->pid; i++) {
        dfx_sleep_ms(5);
    }
    if (getpgid(p->pid) != p->pid) {
        fprintf(stderr, "otter-device did not get its own process group\n");
        return -1;
    }
    if (wait_ms > 0 && ota_test_log_wait(log, from, "INFO agent started", wait_ms) != 0) {
        return -1;
    }
    return 0;
}

/* Whether a process of group pg is alive (zombies do not count). */
static int group_alive(pid_t pg)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int alive = 0;
    if (d == NULL) {
        return kill(-pg, 0) == 0;
    }
    while (!alive && (e = readdir(d)) != NULL) {
        char path[300], buf[512], state = '?';
        const char *rp;
        long pgrp = -1;
        if (e->d_name[0] < '0' || e->d_name[0] > '9') {
            continue;
        }
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        if (dfx_read_text(path, buf, sizeof buf) != 0 || (rp = strrchr(buf, ')')) == NULL) {
            continue;
        }
        if (sscanf(rp + 1, " %c %*d %ld", &state, &pgrp) == 2 && pgrp == (long)pg && state != 'Z' &&
            state != 'X') {
            alive = 1;
        }
    }
    closedir(d);
    return alive;
}

void dfx_power_cut(ota_test_proc_t *p)
{
    pid_t pg = p->pid;
    if (pg <= 0) {
        return;
    }
    kill(-pg, SIGKILL);
    (void)ota_test_proc_kill(p);
    for (int i = 0; i < 1000 && group_alive(pg); i++) {
        dfx_sleep_ms(2);
    }
}

void dfx_stop_all(ota_test_proc_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i].pid > 0) {
            kill(p[i].pid, SIGTERM);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i].pid > 0) {
            (void)ota_test_proc_stop(&p[i]);
        }
    }
}

int dfx_write_config(const char *path, const char *thing_file, int broker_port,
                     int self_test_timeout_ms)
{
    FILE *fp = fopen(path, "w");
    if (fp == NULL) {
        return -1;
    }
    fprintf(fp,
            "thing_file = %s\n"
            "codesign_cert = keys/codesign.crt\n"
            "broker_port = %d\n"
            "self_test_timeout_ms = %d\n"
            "reset_delay_ms = 200\n",
            thing_file, broker_port, self_test_timeout_ms);
    return fclose(fp) == 0 ? 0 : -1;
}

int dfx_restart_service(fixture_t *f, int hard)
{
    const char *svc_args[5];
    char url[64];
    service_args(f, svc_args, url, sizeof url);
    if (f->svc.pid != 0) {
        if (hard) {
            (void)ota_test_proc_kill(&f->svc);
        } else {
            (void)ota_test_proc_stop(&f->svc);
        }
    }
    return ota_test_service_start(&f->svc, f->dir, &f->broker, svc_args, f->svc_log);
}

int dfx_count_from(const char *path, long from, const char *needle)
{
    static char buf[1 << 20];
    FILE *fp = fopen(path, "r");
    size_t n;
    int count = 0;
    const char *p = buf;
    if (fp == NULL) {
        return 0;
    }
    if (fseek(fp, from, SEEK_SET) != 0) {
        fclose(fp);
        return 0;
    }
    n = fread(buf, 1, sizeof buf - 1u, fp);
    fclose(fp);
    buf[n] = '\0';
    while ((p = strstr(p, needle)) != NULL) {
        count++;
        p += strlen(needle);
    }
    return count;
}

int dfx_last_after(const char *path, long from, const char *prefix, char *out, size_t cap)
{
    static char buf[1 << 20];
    FILE *fp = fopen(path, "r");
    const char *p, *last = NULL;
    size_t n;
    if (fp == NULL) {
        return -1;
    }
    if (fseek(fp, from, SEEK_SET) != 0) {
        fclose(fp);
        return -1;
    }
    n = fread(buf, 1, sizeof buf - 1u, fp);
    fclose(fp);
    buf[n] = '\0';
    for (p = buf; (p = strstr(p, prefix)) != NULL; p += strlen(prefix)) {
        last = p;
    }
    if (last == NULL) {
        return -1;
    }
    last += strlen(prefix);
    n = strcspn(last, "\n");
    if (n >= cap) {
        n = cap - 1u;
    }
    memcpy(out, last, n);
    out[n] = '\0';
    return 0;
}

void dfx_expect_committed(const fixture_t *f, const char *thing, const char *version)
{
    char path[160], want[64], st[512] = "", log[160];
    snprintf(path, sizeof path, "%s/%s.flash.status", f->dir, thing);
    snprintf(want, sizeof want, "version=%s\n", version);
    for (int t = 0; t < 10000; t += 50) {
        if (dfx_read_text(path, st, sizeof st) == 0 && strstr(st, want) != NULL &&
            strstr(st, "image=committed\n") != NULL) {
            return;
        }
        dfx_sleep_ms(50);
    }
    snprintf(log, sizeof log, "%s/%s.log", f->dir, thing);
    dfx_dump_log(log);
    fail_msg("%s: the status file says %s", thing, st);
}

int dfx_stored_file(const fixture_t *f, char *out, size_t cap)
{
    char dir[128];
    DIR *d;
    struct dirent *e;
    int rc = -1;
    snprintf(dir, sizeof dir, "%s/files", f->dir);
    if ((d = opendir(dir)) == NULL) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            int n = snprintf(out, cap, "%s/%s", dir, e->d_name);
            rc = n > 0 && (size_t)n < cap && rc == -1 ? 0 : -1;
            if (rc != 0) {
                break;
            }
        }
    }
    closedir(d);
    return rc;
}

int dfx_flash_blocks_present(const char *flash, long addr, const char *reference,
                             unsigned block_size)
{
    FILE *ff = fopen(flash, "rb"), *fr = fopen(reference, "rb");
    unsigned char *a = malloc(block_size), *b = malloc(block_size);
    int present = -1;
    if (ff != NULL && fr != NULL && a != NULL && b != NULL &&
        fseek(ff, DFX_FLASH_FILE_HEADER + addr, SEEK_SET) == 0) {
        size_t n;
        present = 0;
        while ((n = fread(b, 1, block_size, fr)) > 0) {
            if (fread(a, 1, n, ff) != n) {
                present = -1;
                break;
            }
            present += memcmp(a, b, n) == 0;
        }
    }
    if (ff != NULL) {
        fclose(ff);
    }
    if (fr != NULL) {
        fclose(fr);
    }
    free(a);
    free(b);
    return present;
}

/* ---- the slow link ---- */

#define LINK_PAIRS 8

static int link_send_all(int fd, const unsigned char *buf, size_t len)
{
    while (len > 0u) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n <= 0) {
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static void *link_main(void *arg)
{
    dfx_link_t *l = arg;
    int dev[LINK_PAIRS], up[LINK_PAIRS];
    static unsigned char buf[16384];
    double tokens = 0.0, cap;
    struct timespec last;
    cap = l->bytes_per_s / 50.0 > 2048.0 ? l->bytes_per_s / 50.0 : 2048.0;
    for (int i = 0; i < LINK_PAIRS; i++) {
        dev[i] = up[i] = -1;
    }
    clock_gettime(CLOCK_MONOTONIC, &last);
    for (;;) {
        struct pollfd pfd[2 + 2 * LINK_PAIRS];
        int idx[2 + 2 * LINK_PAIRS];
        nfds_t n = 0;
        double dt = dfx_since_s(&last);
        clock_gettime(CLOCK_MONOTONIC, &last);
        tokens += dt * (double)l->bytes_per_s;
        if (tokens > cap) {
            tokens = cap;
        }
        pfd[n].fd = l->wake[0];
        pfd[n++].events = POLLIN;
        pfd[n].fd = l->listen_fd;
        pfd[n++].events = POLLIN;
        for (int i = 0; i < LINK_PAIRS; i++) {
            if (dev[i] < 0) {
                continue;
            }
            idx[n] = i;
            pfd[n].fd = dev[i];
            pfd[n++].events = POLLIN;
            if (l->bytes_per_s == 0u || tokens >= 1.0) {
                idx[n] = i;
                pfd[n].fd = up[i];
                pfd[n++].events = POLLIN;
            }
        }
        if (poll(pfd, n, 2) < 0) {
            continue;
        }
        if (pfd[0].revents != 0) {
            break;
        }
        if (pfd[1].revents & POLLIN) {
            int c = accept(l->listen_fd, NULL, NULL);
            if (c >= 0 && fcntl(c, F_SETFD, FD_CLOEXEC) != 0) {
                close(c);
                c = -1;
            }
            if (c >= 0) {
                int u = ota_test_connect_loopback(l->upstream_port), slot = -1;
                for (int i = 0; i < LINK_PAIRS && slot < 0; i++) {
                    slot = dev[i] < 0 ? i : -1;
                }
                if (u < 0 || slot < 0) {
                    close(c);
                    if (u >= 0) {
                        close(u);
                    }
                } else {
                    dev[slot] = c;
                    up[slot] = u;
                    __atomic_add_fetch(&l->accepted, 1, __ATOMIC_SEQ_CST);
                }
            }
        }
        for (nfds_t k = 2; k < n; k++) {
            int i = idx[k], closed = 0;
            ssize_t got;
            if (pfd[k].revents == 0 || dev[i] < 0) {
                continue;
            }
            if (pfd[k].fd == dev[i]) {
                got = recv(dev[i], buf, sizeof buf, 0);
                closed = got <= 0 || link_send_all(up[i], buf, (size_t)got) != 0;
            } else if (pfd[k].fd == up[i]) {
                size_t want = sizeof buf;
                if (l->bytes_per_s != 0u && tokens < (double)want) {
                    want = tokens >= 1.0 ? (size_t)tokens : 1u;
                }
                got = recv(up[i], buf, want, 0);
                closed = got <= 0 || link_send_all(dev[i], buf, (size_t)got) != 0;
                if (got > 0) {
                    tokens -= (double)got;
                    __atomic_add_fetch(&l->down_bytes, (long long)got, __ATOMIC_SEQ_CST);
                }
            }
            if (closed) {
                close(dev[i]);
                close(up[i]);
                dev[i] = up[i] = -1;
            }
        }
    }
    for (int i = 0; i < LINK_PAIRS; i++) {
        if (dev[i] >= 0) {
            close(dev[i]);
            close(up[i]);
        }
    }
    return NULL;
}

int dfx_link_start(dfx_link_t *l, int upstream_port, unsigned bytes_per_s)
{
    memset(l, 0, sizeof *l);
    l->upstream_port = upstream_port;
    l->bytes_per_s = bytes_per_s;
    l->wake[0] = l->wake[1] = -1;
    l->listen_fd = ota_test_listen_loopback(&l->port);
    if (l->listen_fd < 0) {
        return -1;
    }
    if (pipe(l->wake) != 0 || fcntl(l->wake[0], F_SETFD, FD_CLOEXEC) != 0 ||
        fcntl(l->wake[1], F_SETFD, FD_CLOEXEC) != 0) {
        close(l->listen_fd);
        l->listen_fd = -1;
        l->port = 0; /* not started: dfx_link_stop has nothing to do */
        return -1;
    }
    if (pthread_create(&l->thread, NULL, link_main, l) != 0) {
        dfx_link_stop(l);
        return -1;
    }
    l->started = 1;
    return 0;
}

long long dfx_link_down(dfx_link_t *l)
{
    return __atomic_load_n(&l->down_bytes, __ATOMIC_SEQ_CST);
}

void dfx_link_stop(dfx_link_t *l)
{
    if (l->port == 0) {
        return; /* never started */
    }
    if (l->started) {
        if (write(l->wake[1], "x", 1) != 1) {
            fprintf(stderr, "cannot wake the link thread\n");
        }
        pthread_join(l->thread, NULL);
        l->started = 0;
    }
    if (l->listen_fd >= 0) {
        close(l->listen_fd);
        l->listen_fd = -1;
    }
    for (int i = 0; i < 2; i++) {
        if (l->wake[i] >= 0) {
            close(l->wake[i]);
            l->wake[i] = -1;
        }
    }
}
