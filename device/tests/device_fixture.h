/*
 * otter simulated device: the end-to-end test fixture. A real Mosquitto
 * broker with otter's passwords and ACL, the real otter-service, the otter
 * CLI making keys, the thing and the jobs, and otter-device running real
 * firmware executables from its flash file.
 */
#ifndef DEVICE_FIXTURE_H
#define DEVICE_FIXTURE_H

#include <pthread.h>
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
    int http_port;        /* otter-http's port (0: the set-up runs none) */
    int http_tls;         /* otter-http serves HTTPS (--tls) at https://localhost */
    ota_test_proc_t http; /* otter-http */
    char http_log[128];
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

/* A new data folder from dir_template (mkdtemp), the fixture's paths in it, the broker
 * `otter broker init` (with init_args, or NULL) sets up there, started, and a signing key
 * (`otter keygen`); no thing and no service. 0 or -1. */
int dfx_setup_broker(fixture_t *f, const char *dir_template, const char *const *init_args);

/* cmocka setup: data folder, CLI set-up, broker, service, device configuration. */
int dfx_setup(void **state);

/** dfx_setup() with `otter broker init --tls`: the device logs in with its certificate. */
int dfx_setup_tls(void **state);

/**
 * dfx_setup() plus otter-http on a free port, and otter-service with
 * --http-url naming it: jobs created with --protocols carry URLs.
 */
int dfx_setup_http(void **state);

/**
 * dfx_setup_http() on the mutual-TLS fleet (`broker init --tls`): otter-http
 * serves HTTPS with the broker's certificate, the service's URLs are
 * https://localhost:PORT.
 */
int dfx_setup_https(void **state);

/** Start otter-http again (after dfx_http_stop) on the same port; 0 once it is ready. */
int dfx_http_start(fixture_t *f);

/** Kill otter-http (SIGKILL, as a crash). */
void dfx_http_kill(fixture_t *f);

/** dfx_create_job() with --protocols (e.g. "HTTP,MQTT"). */
void dfx_create_job_protocols(fixture_t *f, const char *job_id, const char *fw_name,
                              const char *version, const char *protocols);

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

/* Wait until `otter thing show THING` prints a line holding both texts; fail after timeout_ms. */
void dfx_wait_thing_shows(fixture_t *f, const char *a, const char *b, int timeout_ms);

/* Poll `otter job show` until the thing's execution is terminal (SKIPPED
 * included); status and statusDetails out. */
void dfx_wait_job(fixture_t *f, const char *job_id, char *status, size_t status_cap, char *details,
                  size_t details_cap, int timeout_ms);

/* Occurrences of needle in the device console. */
int dfx_log_count(fixture_t *f, const char *needle);

/* Print one line on what a test measured. */
void dfx_report(fixture_t *f, const char *test, const char *fw_name, double seconds,
                const char *status, const char *details);

/* ---- fault scenarios ---- */

/* Flash file layout (docs/DEVICE.md): the flash after the file's header. */
#define DFX_FLASH_FILE_HEADER 28L
#define DFX_SLOT_B_ADDR 0x3e000L
#define DFX_SECTOR_SIZE 4096u
#define DFX_BLOCK_SIZE 4096u

/* Start otter-device in its own session and process group (so that a power
 * cut kills the launcher and its firmware at once) with its output appended
 * to log; waits for "INFO agent started" after the log's current end when
 * wait_ms > 0. The device runs at nice 10: it stands for a separate machine,
 * so a fleet of them must not take the cores the brokers and the service
 * need (each runnable thread gets an equal share at equal niceness, and a
 * hundred devices would leave a broker a few per cent). 0 or -1. */
int dfx_start_device_group(ota_test_proc_t *p, const char *flash, const char *config,
                           const char *log, const char *factory, const char *factory_version,
                           int wait_ms);

/* Power cut: SIGKILL to the device's whole process group, reap the launcher
 * and wait until no process of the group runs any more. */
void dfx_power_cut(ota_test_proc_t *p);

/* Stop n processes: SIGTERM to all first, then wait for each. */
void dfx_stop_all(ota_test_proc_t *p, size_t n);

/* Write a device configuration file. 0 or -1. */
int dfx_write_config(const char *path, const char *thing_file, int broker_port,
                     int self_test_timeout_ms);

/* Kill otter-service (SIGKILL when hard, else SIGTERM) and start it again
 * with the options dfx_setup used; 0 once it is ready. */
int dfx_restart_service(fixture_t *f, int hard);

/* Occurrences of needle in a file from byte offset from. */
int dfx_count_from(const char *path, long from, const char *needle);

/* The text after the last occurrence of prefix in a file from byte offset
 * from, up to the end of its line, in out; 0 or -1 when absent. */
int dfx_last_after(const char *path, long from, const char *prefix, char *out, size_t cap);

/* Wait (at most 10 s) until DIR/<thing>.flash.status says version and a committed image;
 * else show the thing's console (DIR/<thing>.log) and fail. */
void dfx_expect_committed(const fixture_t *f, const char *thing, const char *version);

/* Path of the single file the service stores in DIR/files (the image a job
 * streams). 0 or -1. */
int dfx_stored_file(const fixture_t *f, char *out, size_t cap);

/* How many whole blocks of reference (block_size bytes, the last one short)
 * the flash file holds, byte for byte, at flash address addr. -1 on error. */
int dfx_flash_blocks_present(const char *flash, long addr, const char *reference,
                             unsigned block_size);

/* A TCP relay on 127.0.0.1 between devices and the broker with a bandwidth
 * limit towards the devices: a slow link. A side that closes closes its peer. */
typedef struct dfx_link {
    int port;             /* where devices connect */
    int upstream_port;    /* the broker */
    unsigned bytes_per_s; /* towards the devices; 0 = no limit */
    int listen_fd;
    int wake[2];
    int started;
    pthread_t thread;
    long long down_bytes; /* delivered to devices (atomic; read with dfx_link_down) */
    int accepted;         /* connections accepted (atomic) */
} dfx_link_t;

int dfx_link_start(dfx_link_t *l, int upstream_port, unsigned bytes_per_s);
long long dfx_link_down(dfx_link_t *l);
void dfx_link_stop(dfx_link_t *l);

#endif /* DEVICE_FIXTURE_H */
