/*
 * otter CLI: the Mosquitto broker's configuration and the logins on it.
 *
 * Layout under <data_dir>/broker/:
 *   mosquitto.conf       listener on --bind (127.0.0.1), no anonymous clients,
 *                        the dynamic-security plugin, persistence here,
 *                        TCP_NODELAY, a packet limit, no retained messages
 *   dynsec.json          logins and roles (cli_dynsec.h), mode 0600
 *   service.credentials  the service's MQTT login (JSON, mode 0600)
 *   admin.credentials    the CLI's own login, to change a running broker
 *   mosquitto.pid        written by Mosquitto while it runs
 *   mosquitto.db         Mosquitto's persistence file
 *   ca.crt, ca.key, server.crt, server.key   with --tls
 */
#ifndef CLI_BROKER_H
#define CLI_BROKER_H

#include <stddef.h>

#include "cli_common.h"

/** MQTT username of the service (reserved: no thing may take it). */
#define CLI_SERVICE_USER "otter-service"

/** Largest MQTT packet the broker takes: AWS IoT's 128 KiB payload + 4 KiB. */
#define CLI_BROKER_MAX_PACKET (128u * 1024u + 4096u)

/** What `broker init` was asked for. */
typedef struct cli_broker_setup {
    /** Address the listener binds ("127.0.0.1", "0.0.0.0" ...). */
    const char *bind;
    /** Name or address clients connect to (written to their credentials). */
    const char *host;
    /** Plain listener port. */
    unsigned port;
    /** TLS listener port, 0 without --tls. */
    unsigned tls_port;
} cli_broker_setup_t;

/** A login on the broker, as a credentials file holds it. */
typedef struct cli_login {
    /** Host to connect to. */
    char host[256];
    /** Port of the plain listener. */
    unsigned port;
    /** Port of the TLS listener, 0 without TLS. */
    unsigned tls_port;
    /** MQTT username. */
    char username[160];
    /** MQTT password ("" when there is none). */
    char password[64];
    /** MQTT client id. */
    char client_id[160];
    /** Absolute path of the CA certificate, "" without TLS. */
    char cafile[CLI_PATH_MAX];
} cli_login_t;

/**
 * Read a credentials file under the data folder (e.g.
 * "broker/service.credentials", "things/dev1.json").
 * Prints the error line on failure.
 * @return CLI_EXIT_OK or CLI_EXIT_FAIL (broker not initialised, damaged).
 */
int cli_broker_login(const cli_ctx_t *ctx, const char *rel, cli_login_t *out);

/**
 * Make a random password: 32 characters of [A-Za-z0-9].
 * @param out receives the password and a NUL (33 bytes).
 * @return 0, or -1 when no randomness is available.
 */
int cli_broker_random_password(char out[33]);

/**
 * Whether the broker of this data folder runs: the pid in
 * <data_dir>/broker/mosquitto.pid names a live Mosquitto process.
 * @return its pid, or 0.
 */
long cli_broker_running(const cli_ctx_t *ctx);

#endif /* CLI_BROKER_H */
