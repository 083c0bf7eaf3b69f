/*
 * otter CLI: the Mosquitto broker's configuration, passwords and ACL.
 *
 * Layout under <data_dir>/broker/:
 *   mosquitto.conf       listener(s) on 127.0.0.1, no anonymous clients
 *   passwd               Mosquitto 2 password file (PBKDF2-SHA512 entries)
 *   acl                  devices: own jobs/streams topics; the service: all
 *   service.credentials  the service's MQTT login (JSON, mode 0600)
 *   mosquitto.pid        written by Mosquitto while it runs
 *   ca.crt, ca.key, server.crt, server.key   with --tls
 */
#ifndef CLI_BROKER_H
#define CLI_BROKER_H

#include <stddef.h>

#include "cli_common.h"

/** MQTT username of the service (reserved: no thing may take it). */
#define CLI_SERVICE_USER "otter-service"

/** Where and how to reach the broker, read from service.credentials. */
typedef struct cli_broker_info {
    /** Host of the plain listener ("127.0.0.1"). */
    char host[64];
    /** Port of the plain listener. */
    unsigned port;
    /** Port of the TLS listener, 0 without --tls. */
    unsigned tls_port;
    /** Absolute path of the CA certificate, "" without --tls. */
    char cafile[CLI_PATH_MAX];
} cli_broker_info_t;

/**
 * Read the broker's address from <data_dir>/broker/service.credentials.
 * Prints the error line on failure.
 * @return CLI_EXIT_OK or CLI_EXIT_FAIL (broker not initialised, unreadable).
 */
int cli_broker_info(const cli_ctx_t *ctx, cli_broker_info_t *out);

/**
 * Format a Mosquitto 2 password-file line "user:$7$101$<salt>$<hash>\n"
 * (PBKDF2-HMAC-SHA512, 101 iterations, 12-byte random salt).
 * @return a heap string (caller frees), or NULL on failure.
 */
char *cli_broker_password_entry(const char *user, const char *password);

/**
 * Make a random password: 32 characters of [A-Za-z0-9].
 * @param out receives the password and a NUL (33 bytes).
 * @return 0, or -1 when no randomness is available.
 */
int cli_broker_random_password(char out[33]);

/**
 * Add a user to the password file (atomic replace).
 * Prints the error line on failure.
 * @return CLI_EXIT_OK; CLI_EXIT_FAIL (user exists, I/O error).
 */
int cli_broker_add_user(const cli_ctx_t *ctx, const char *user, const char *password);

/**
 * Remove a user from the password file (to undo cli_broker_add_user()).
 * @return 0, or -1 on I/O error.
 */
int cli_broker_remove_user(const cli_ctx_t *ctx, const char *user);

/**
 * Ask a running broker to reload its password and ACL files: SIGHUP to the
 * pid in <data_dir>/broker/mosquitto.pid, if that process exists.
 * @return 1 when signalled, 0 when no broker runs.
 */
int cli_broker_reload(const cli_ctx_t *ctx);

#endif /* CLI_BROKER_H */
