/*
 * otter TEST SUPPORT ONLY: network tests on 127.0.0.1.
 *
 * - free ports and listeners on 127.0.0.1 (ota_test_loopback.h), waiting for a
 *   listener;
 * - child processes that never outlive the test (PR_SET_PDEATHSIG, plus an
 *   exit/abort/SIGINT/SIGTERM handler that kills every started process);
 * - a Mosquitto broker with exactly the configuration `otter broker init`
 *   writes (the test chooses only a free port and the data folder), and the
 *   logins `otter thing create` makes;
 * - the otter service (otter-service) for a test, logged in with the
 *   service login `otter broker init` wrote;
 * - a scripted MQTT client (libmosquitto, its own network thread) whose calls
 *   are synchronous: connect waits for CONNACK, subscribe for SUBACK, QoS > 0
 *   publish for PUBACK/PUBCOMP, and received messages are queued until the
 *   test takes them with ota_test_client_expect().
 *
 * Compile definitions (set by CMake):
 *   OTA_TEST_MOSQUITTO_PATH  the broker binary (default "/usr/sbin/mosquitto");
 *   OTA_TEST_SERVICE_PATH    the otter-service binary of this build;
 *   OTA_TEST_OTTER_PATH      the otter CLI of this build.
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

#include "ota_test_loopback.h" /* ota_test_free_port, ota_test_listen_loopback */

/** Line the service writes to its log once it has subscribed to every filter. */
#define OTA_TEST_SERVICE_READY "INFO ready:"

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

/**
 * Waits up to ms for a started process to exit by itself; kills it if it has not.
 * @param status receives its exit status as for ota_test_proc_stop() (-1 when it was killed).
 * @return 0 when it exited by itself, -1 when it had to be killed.
 */
int ota_test_proc_wait_exit(ota_test_proc_t *p, int ms, int *status);

/** A Mosquitto broker for a test. */
typedef struct ota_test_broker {
    int port;             /**< listening port on 127.0.0.1 */
    ota_test_proc_t proc; /**< the broker process */
    char dir[512];        /**< its otter data folder (broker/, things/, mosquitto.log) */
    int own_dir;          /**< dir is a temporary folder made (and removed) here */
} ota_test_broker_t;

/** A login on the broker, from a credentials file `otter` wrote. */
typedef struct ota_test_login {
    char username[160];  /**< MQTT username */
    char password[64];   /**< MQTT password */
    char client_id[160]; /**< the client id the broker lets this login use */
    int port;            /**< the broker's port */
    char cafile[600];    /**< with mutual TLS: the CA certificate, else "" */
    char certfile[600];  /**< with mutual TLS: the client certificate, else "" */
    char keyfile[600];   /**< with mutual TLS: the client key, else "" */
} ota_test_login_t;

/**
 * Run the otter CLI of this build: `otter --data-dir DATA_DIR args...`, and
 * wait for it (at most 120 s).
 * @param data_dir the data folder.
 * @param args     NULL-terminated arguments (the command first).
 * @param log_path where its output goes (appended), or NULL.
 * @return its exit status; -1 when it could not run or took too long.
 */
int ota_test_otter(const char *data_dir, const char *const *args, const char *log_path);

/**
 * Start Mosquitto with the configuration `otter broker init` wrote in a data
 * folder. When DATA_DIR/broker/ does not exist yet, `otter broker init
 * --port P` (P free now) writes it first, with init_args added; otherwise the
 * broker set up there starts on its own port. Its log is DATA_DIR/mosquitto.log,
 * the CLI's output DATA_DIR/otter-cli.log.
 *
 * @param b         receives the broker.
 * @param data_dir  the otter data folder, or NULL for a new temporary one
 *                  (removed by ota_test_broker_stop()).
 * @param init_args NULL-terminated extra `broker init` arguments, or NULL.
 * @return 0 once the port accepts connections; -1 on failure (nothing left running).
 */
int ota_test_broker_start_with(ota_test_broker_t *b, const char *data_dir,
                               const char *const *init_args);

/** ota_test_broker_start_with() without extra `broker init` arguments. */
int ota_test_broker_start(ota_test_broker_t *b, const char *data_dir);

/**
 * Stop the broker and start it again with the same configuration and port.
 * @param b a started broker.
 * @return 0 once the port accepts connections again; -1 on failure.
 */
int ota_test_broker_restart(ota_test_broker_t *b);

/**
 * Stop the broker and remove its folder if it made it. Safe to call twice.
 * @param b the broker.
 */
void ota_test_broker_stop(ota_test_broker_t *b);

/**
 * `otter thing create NAME...` in the broker's data folder (works whether the
 * broker runs or not).
 * @param names NULL-terminated thing names.
 * @return 0; -1 when the CLI failed (see DATA_DIR/otter-cli.log).
 */
int ota_test_things_create(const ota_test_broker_t *b, const char *const *names);

/**
 * Read a credentials file (a thing's JSON file or service.credentials).
 * @return 0; -1 when unreadable or incomplete.
 */
int ota_test_login_read(const char *path, ota_test_login_t *out);

/**
 * The login of a thing: DATA_DIR/things/THING.json, made with
 * `otter thing create THING` first when it does not exist.
 * @return 0; -1 on failure.
 */
int ota_test_thing_login(const ota_test_broker_t *b, const char *thing, ota_test_login_t *out);

/**
 * The service's login (DATA_DIR/broker/service.credentials).
 * @return 0; -1 on failure.
 */
int ota_test_service_login(const ota_test_broker_t *b, ota_test_login_t *out);

/**
 * Start otter-service for a test:
 * `otter-service --data-dir DATA_DIR --host 127.0.0.1 --port PORT
 *  --username U --password P [extra_args...]` with the broker's port and
 * service login (with mutual TLS `--cafile --certfile --keyfile` instead of
 * the password), and wait at most 10 s for its OTA_TEST_SERVICE_READY line.
 *
 * @param p           receives the process.
 * @param data_dir    the service's data folder.
 * @param b           the broker.
 * @param extra_args  NULL-terminated extra arguments, or NULL.
 * @param log_path    log file for its output (appended), or NULL.
 * @return 0 when ready; 1 when running but not ready within 10 s (or log_path
 *         is NULL so readiness cannot be seen); -1 when it could not start or exited.
 */
int ota_test_service_start(ota_test_proc_t *p, const char *data_dir, const ota_test_broker_t *b,
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
 * Connect as a thing with its own login (made first when missing, see
 * ota_test_thing_login()), like ota_test_client_connect().
 * @return the client, or NULL.
 */
ota_test_client_t *ota_test_thing_connect(const ota_test_broker_t *b, const char *thing);

/**
 * ota_test_client_connect() over TLS: trust cafile, present certfile/keyfile
 * (both NULL: no client certificate). host is "127.0.0.1" or a name.
 * @return the client, or NULL when refused, unreachable or timed out.
 */
ota_test_client_t *ota_test_client_connect_tls(const char *host, int port, const char *client_id,
                                               const char *cafile, const char *certfile,
                                               const char *keyfile);

/**
 * Connect with a login (its certificate when it has one), with client id
 * client_id (NULL: the login's own).
 * @return the client, or NULL.
 */
ota_test_client_t *ota_test_login_connect(int port, const ota_test_login_t *l,
                                          const char *client_id);

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
 * ota_test_client_publish() with the retain flag set when retain is nonzero.
 * @return 0 on success; -1 on error or timeout.
 */
int ota_test_client_publish_retained(ota_test_client_t *c, const char *topic, const void *payload,
                                     size_t len, int qos, int retain);

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
