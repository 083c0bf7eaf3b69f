/*
 * otter simulated device: the end-to-end test fixture. A real Mosquitto
 * broker with otter's passwords and ACL, the real otter-service, the otter
 * CLI making keys, the thing and the jobs, and otter-device running real
 * firmware executables from its flash file.
 */
#ifndef DEVICE_FIXTURE_H
#define DEVICE_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "ota_test_net.h"

#define THING "dev1"
#define SELF_TEST_TIMEOUT_MS 4000

/** One end-to-end set-up. */
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

/* Sleep for ms milliseconds. */
void dfx_sleep_ms(unsigned ms);

/* Seconds since t0 (monotonic). */
double dfx_since_s(const struct timespec *t0);

/* Run the otter CLI to the end, output appended to log; its exit status. */
int dfx_run_cli(const char *log, const char *const *args);

/* Read a small text file into buf (NUL-terminated); 0 or -1. */
int dfx_read_text(const char *path, char *buf, size_t cap);

/* The value of "key":"value" in a small JSON file. */
int dfx_json_string(const char *path, const char *key, char *out, size_t cap);

/* Size of a file in bytes, or -1. */
long dfx_file_size(const char *path);

/* Path of a built firmware executable. */
void dfx_fw_path(char *out, size_t cap, const char *name);

/* cmocka setup: data folder, CLI set-up, broker, service, device configuration. */
int dfx_setup(void **state);

/* cmocka teardown: stops everything started, removes the folder. */
int dfx_teardown(void **state);

/* Print the device console (on failure it says what happened). */
void dfx_dump_log(const char *path);

/* Start the device (a new flash the first time) and wait for its agent. */
void dfx_start_device(fixture_t *f, const char *factory, const char *factory_version);

/* The value of key=... in the firmware's status file, "" if none. */
void dfx_status_value(fixture_t *f, const char *key, char *out, size_t cap);

/* Wait until the status file says version and image state. */
void dfx_expect_running(fixture_t *f, const char *version, const char *slot, const char *image,
                        int timeout_ms);

/* Create a job for the thing with the CLI. */
void dfx_create_job(fixture_t *f, const char *job_id, const char *fw_name, const char *version);

/* Poll `otter job show` until the thing's execution is terminal; status and
 * statusDetails out. */
void dfx_wait_job(fixture_t *f, const char *job_id, char *status, size_t status_cap, char *details,
                  size_t details_cap, int timeout_ms);

/* Occurrences of needle in the device console. */
int dfx_log_count(fixture_t *f, const char *needle);

/* Print one line on what a test measured. */
void dfx_report(fixture_t *f, const char *test, const char *fw_name, double seconds,
                const char *status, const char *details);

#endif /* DEVICE_FIXTURE_H */
