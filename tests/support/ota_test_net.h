/*
 * otter TEST SUPPORT ONLY: network tests on 127.0.0.1.
 *
 * - free ports and waiting for a listener;
 * - child processes that never outlive the test (PR_SET_PDEATHSIG, plus an
 *   exit/abort/SIGINT/SIGTERM handler that kills every started process);
 * - a Mosquitto broker in a fresh temporary folder, on a free port;
 * - the otter service (otter-service) for a test;
 * - a scripted MQTT client (libmosquitto, its own network thread) whose calls
 *   are synchronous: connect waits for CONNACK, subscribe for SUBACK, QoS > 0
 *   publish for PUBACK/PUBCOMP, and received messages are queued until the
 *   test takes them with ota_test_client_expect().
 *
 * Compile definitions (set by CMake):
 *   OTA_TEST_MOSQUITTO_PATH  the broker binary (default "/usr/sbin/mosquitto");
 *   OTA_TEST_SERVICE_PATH    the otter-service binary of this build.
 *
 * Thread safety: process and broker calls are meant for the test's main
 * thread (PR_SET_PDEATHSIG fires when the forking thread ends). A client may
 * be used from one thread at a time; different clients from different threads.
 */
#ifndef OTA_TEST_NET_H
#define OTA_TEST_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/** Line the service writes to its log once it has subscribed to every filter. */
#define OTA_TEST_SERVICE_READY "INFO ready:"

/**
 * Find a TCP port on 127.0.0.1 that is free now (bind to port 0, read it back).
 * @return the port (1..65535), or -1 if no socket could be bound.
 */
int ota_test_free_port(void);

/**
 * Wait until 127.0.0.1:port accepts a TCP connection.
 * @param port       the port.
 * @param timeout_ms how long to keep trying.
 * @return 0 once a connection was accepted; -1 on timeout.
 */
int ota_test_wait_port(int port, int timeout_ms);

/** A started child process. */
typedef struct ota_test_proc {
    pid_t pid;     /**< process id; 0 when not running */
    char name[64]; /**< name used in messages */
} ota_test_proc_t;

/**
 * Start argv[0] (a path) with argv as its arguments; stdin is /dev/null,
 * stdout and stderr are appended to log_path (created if missing).
 *
 * The child gets SIGKILL when the starting thread ends (PR_SET_PDEATHSIG), and
 * every process started here is killed when the test exits, aborts, or gets
 * SIGINT/SIGTERM/SIGHUP.
 *
 * @param p        receives the process; must stay valid until stopped.
 * @param name     short name for messages (truncated to 63 characters).
 * @param argv     NULL-terminated argument vector; argv[0] is the binary path.
 * @param log_path log file, or NULL to discard the output.
 * @return 0 on success; -1 if the process could not be started or argv[0] could
 *         not be executed (p->pid = 0).
 */
int ota_test_proc_start(ota_test_proc_t *p, const char *name, char *const argv[],
                        const char *log_path);

/**
 * Stop a process: SIGTERM, wait at most 5 s, then SIGKILL, and reap it.
 * @param p the process; p->pid is 0 afterwards.
 * @return its exit status (0..255) if it exited, 128 + signal number if a
 *         signal ended it, -1 if p was not running.
 */
int ota_test_proc_stop(ota_test_proc_t *p);

/**
 * Kill a process at once with SIGKILL (a power cut) and reap it.
 * @param p the process; p->pid is 0 afterwards.
 * @return 128 + signal number (or the exit status if it had already exited),
 *         -1 if p was not running.
 */
int ota_test_proc_kill(ota_test_proc_t *p);

/**
 * Whether a started process is still running (reaps it if it has exited).
 * @param p      the process.
 * @param status receives the exit status as for ota_test_proc_stop() when it
 *               has exited; may be NULL.
 * @return 1 when running, 0 when it has exited (p->pid is 0 afterwards).
 */
int ota_test_proc_running(ota_test_proc_t *p, int *status);

/** A Mosquitto broker for a test. */
typedef struct ota_test_broker {
    int port;             /**< listening port on 127.0.0.1 */
    ota_test_proc_t proc; /**< the broker process */
    char dir[512];        /**< its temporary folder (config, log) */
} ota_test_broker_t;

/**
 * Start Mosquitto on 127.0.0.1 on a free port, in a fresh temporary folder that
 * holds its config (mosquitto.conf) and log (mosquitto.log).
 *
 * The generated config has one listener, no persistence, and
 * `allow_anonymous true` unless extra_config has its own allow_anonymous line.
 *
 * @param b            receives the broker.
 * @param extra_config lines appended to the config (e.g. password_file and
 *                     acl_file lines), or NULL.
 * @return 0 once the port accepts connections; -1 on failure (nothing left running).
 */
int ota_test_broker_start(ota_test_broker_t *b, const char *extra_config);

/**
 * Stop the broker and start it again on the same port with the same config.
 * @param b a started broker.
 * @return 0 once the port accepts connections again; -1 on failure.
 */
int ota_test_broker_restart(ota_test_broker_t *b);

/**
 * Stop the broker and remove its temporary folder. Safe to call twice.
 * @param b the broker.
 */
void ota_test_broker_stop(ota_test_broker_t *b);

/**
 * Start otter-service for a test:
 * `otter-service --data-dir DATA_DIR --port BROKER_PORT [extra_args...]`
 * (host 127.0.0.1), and wait at most 10 s for its OTA_TEST_SERVICE_READY line.
 *
 * @param p           receives the process.
 * @param data_dir    the service's data folder.
 * @param broker_port the broker's port.
 * @param extra_args  NULL-terminated extra arguments, or NULL.
 * @param log_path    log file for its output (appended), or NULL.
 * @return 0 when ready; 1 when running but not ready within 10 s (or log_path
 *         is NULL so readiness cannot be seen); -1 when it could not start or exited.
 */
int ota_test_service_start(ota_test_proc_t *p, const char *data_dir, int broker_port,
                           const char *const *extra_args, const char *log_path);

/**
 * Size of a file now (to wait for lines written after this point).
 * @param path the file.
 * @return its size, or 0 if it does not exist.
 */
long ota_test_log_size(const char *path);

/**
 * Wait until a file contains needle at or after byte offset `from`.
 * @param path       the file (usually a process log).
 * @param from       byte offset where the search starts.
 * @param needle     the text to find.
 * @param timeout_ms how long to wait.
 * @return 0 when found; -1 on timeout.
 */
int ota_test_log_wait(const char *path, long from, const char *needle, int timeout_ms);

/** Scripted MQTT client (opaque). */
typedef struct ota_test_client ota_test_client_t;

/** A received message; free with ota_test_msg_free(). */
typedef struct ota_test_msg {
    char *topic;      /**< NUL-terminated topic */
    uint8_t *payload; /**< len bytes, plus a NUL after them for convenience */
    size_t len;       /**< payload length */
} ota_test_msg_t;

/**
 * Connect a client (MQTT 3.1.1, clean session) to 127.0.0.1:port and wait
 * at most 5 s for CONNACK.
 * @param port      the broker's port.
 * @param client_id client id (NULL: one is generated).
 * @param username  username, or NULL.
 * @param password  password, or NULL.
 * @return the client, or NULL when refused, unreachable or timed out.
 */
ota_test_client_t *ota_test_client_connect(int port, const char *client_id, const char *username,
                                           const char *password);

/**
 * Subscribe and wait at most 5 s for SUBACK.
 * @param c      the client.
 * @param filter topic filter.
 * @param qos    requested QoS 0..2.
 * @return the granted QoS; -1 when refused (0x80), on timeout or error.
 */
int ota_test_client_subscribe(ota_test_client_t *c, const char *filter, int qos);

/**
 * Publish a message; with qos > 0 wait at most 5 s for its completion.
 * @param c       the client.
 * @param topic   topic.
 * @param payload bytes (may be NULL when len is 0).
 * @param len     payload length.
 * @param qos     0..2.
 * @return 0 on success; -1 on error or timeout.
 */
int ota_test_client_publish(ota_test_client_t *c, const char *topic, const void *payload,
                            size_t len, int qos);

/**
 * Take the oldest queued message whose topic matches filter, waiting at most
 * timeout_ms for one to arrive.
 * @param c          the client.
 * @param filter     topic filter (`+` and `#` wildcards), or NULL for any.
 * @param timeout_ms how long to wait.
 * @return the message (caller frees), or NULL on timeout.
 */
ota_test_msg_t *ota_test_client_expect(ota_test_client_t *c, const char *filter, int timeout_ms);

/**
 * Count queued messages matching filter (nothing is removed).
 * @param c      the client.
 * @param filter topic filter, or NULL for any.
 * @return the count.
 */
size_t ota_test_client_pending(ota_test_client_t *c, const char *filter);

/**
 * Whether the client is connected right now (no reconnect is attempted).
 * @param c the client.
 * @return 1 connected, 0 not.
 */
int ota_test_client_connected(ota_test_client_t *c);

/**
 * Free a message from ota_test_client_expect(). NULL is allowed.
 * @param m the message.
 */
void ota_test_msg_free(ota_test_msg_t *m);

/**
 * Disconnect, stop the network thread, drop queued messages, free the client.
 * NULL is allowed.
 * @param c the client.
 */
void ota_test_client_disconnect(ota_test_client_t *c);

#endif /* OTA_TEST_NET_H */
