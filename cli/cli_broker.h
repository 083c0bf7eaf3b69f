/*
 * otter CLI: the Mosquitto broker's configuration and the logins on it.
 *
 * Layout under <data_dir>/broker/:
 *   mosquitto.conf       listener on --bind (127.0.0.1), no anonymous clients,
 *                        the dynamic-security plugin, persistence here,
 *                        TCP_NODELAY, a packet limit, no retained messages,
 *                        otter's plugin limiting each thing's publishes
 *   dynsec.json          logins and roles (cli_dynsec.h), mode 0600
 *   service.credentials  the service's MQTT login (JSON, mode 0600)
 *   admin.credentials    the CLI's own login, to change a running broker
 *   mosquitto.pid        written by Mosquitto while it runs
 *   mosquitto.db         Mosquitto's persistence file
 *   with --tls: ca.crt, ca.key (the fleet CA), server.crt/.key,
 *   service.crt/.key, admin.crt/.key (client certificates), crl.pem
 */
#ifndef CLI_BROKER_H
#define CLI_BROKER_H

#include <stddef.h>

#include "cli_common.h"
#include "ota_store.h"

/** MQTT username of the service (reserved: no thing may take it). */
#define CLI_SERVICE_USER "otter-service"

/** Largest MQTT packet the broker takes: AWS IoT's 128 KiB payload + 4 KiB (the limit the
 *  service keeps to when it publishes). */
#define CLI_BROKER_MAX_PACKET OTA_STORE_MQTT_PACKET_MAX

/** File name of otter's broker plugin (broker/otter_device_limits.c): built, and installed,
 *  next to the otter binary, where broker init finds it. */
#define CLI_LIMITS_PLUGIN "otter_device_limits.so"

/** Largest payload of a thing's publish, in bytes: a status update's statusDetails are at most
 *  OTA_STORE_DETAILS_MAX (16 KiB) compact; every other device message is far smaller. */
#define CLI_DEVICE_MAX_PAYLOAD 32768u
/** A thing's publish budget: messages per second and burst (a download asks for about 8 to
 *  10 requests per MiB once its window has grown: 1000 a second is 100 MiB/s). */
#define CLI_DEVICE_MSG_RATE 1000u
#define CLI_DEVICE_MSG_BURST 4000u
/** A thing's publish budget: payload bytes per second and burst. */
#define CLI_DEVICE_BYTE_RATE 1048576u
#define CLI_DEVICE_BYTE_BURST 4194304u

/** What `broker init` was asked for. */
typedef struct cli_broker_setup {
    /** Address the listener binds ("127.0.0.1", "0.0.0.0" ...). */
    const char *bind;
    /** Name or address clients connect to (written to their credentials). */
    const char *host;
    /** Listener port. */
    unsigned port;
    /** 1: the listener is mutual TLS only (--tls). */
    int tls;
    /** 1: a bridge from the broker to itself makes stream requests shareable (--shared-streams). */
    int shared_streams;
    /** The other brokers of a federation, "HOST:PORT,..." (--federate), or NULL. */
    const char *federate;
    /** In a federation: this broker's number (1 .. 8; 1 and 2 are the hubs), else 0. */
    unsigned fed_index;
    /** In a federation with TLS: this broker has a bridge of its own and gets its
     * certificate (federation.crt, CN otter-service-federation-K). */
    int fed_bridge;
    /** In a federation with TLS: the folder of the CA every broker shares (its
     * ca.crt and ca.key); NULL makes a new CA (a single broker, or hub 1). */
    const char *ca_dir;
    /** In a federation: "HOST:PORT,HOST:PORT" of the hubs, written to
     * service.credentials as the service's broker list; NULL for none. */
    const char *service_brokers;
    /** In a federation: how many brokers it has (written to service.credentials as
     * "federation_brokers", for presence), else 0. */
    unsigned fed_count;
} cli_broker_setup_t;

/** The passwords broker init writes (every broker of a federation has the same). */
typedef struct cli_broker_secrets {
    /** The service's login (otter-service). */
    char service[33];
    /** The CLI's login (otter-admin). */
    char admin[33];
    /** The bridge from a broker to itself (--shared-streams). */
    char bridge[33];
    /** The bridges between the brokers of a federation, by the number of the broker
     * that owns the bridge (1 .. 8); "" for none, "-" for a certificate login. */
    char federation[9][33];
} cli_broker_secrets_t;

/**
 * Make random passwords for broker init.
 * @param federation 1: also a password for every bridge of a federation.
 * @return 0, or -1 when no randomness is available.
 */
int cli_broker_secrets_make(cli_broker_secrets_t *pw, int federation);

/**
 * Write one broker's folder, data_dir/broker/ (created atomically; it must not
 * exist): mosquitto.conf for setup s (with extra configuration text appended,
 * or NULL), dynsec.json, service.credentials and admin.credentials with the
 * passwords pw. Prints the error line on failure.
 * @return CLI_EXIT_OK, CLI_EXIT_USAGE or CLI_EXIT_FAIL.
 */
int cli_broker_make(const char *data_dir, const cli_broker_setup_t *s,
                    const cli_broker_secrets_t *pw, const char *extra);

/** A login on the broker, as a credentials file holds it. */
typedef struct cli_login {
    /** Host to connect to. */
    char host[256];
    /** Port of the listener. */
    unsigned port;
    /** MQTT username. */
    char username[160];
    /** MQTT password ("" when there is none). */
    char password[64];
    /** MQTT client id. */
    char client_id[160];
    /** Absolute path of the CA certificate, "" without TLS. */
    char cafile[CLI_PATH_MAX];
    /** Absolute path of the client certificate, "" without TLS. */
    char certfile[CLI_PATH_MAX];
    /** Absolute path of the client key, "" without TLS. */
    char keyfile[CLI_PATH_MAX];
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
 * A credentials file's JSON text (see docs/SERVICE.md): host, port, username,
 * password (when not NULL), client_id (= username), client_id_prefix (when not
 * NULL), and with TLS (cafile not NULL) cafile, certfile, keyfile.
 * @return a heap string (caller frees), or NULL when out of memory.
 */
char *cli_broker_login_json(const char *host, unsigned port, const char *user, const char *password,
                            const char *prefix, const char *cafile, const char *certfile,
                            const char *keyfile);

/**
 * Issue a client certificate with common name `name` from the fleet CA in
 * ca_dir (ca.crt, ca.key): a new P-256 key (key_path, mode 0600) and the
 * certificate (cert_path), valid 10 years, extended key usage clientAuth.
 * Neither file may exist.
 * @return 0, or -1 (nothing left behind).
 */
int cli_broker_issue_cert(const char *ca_dir, const char *name, const char *cert_path,
                          const char *key_path);

/**
 * Add a certificate to the broker's revocation list (broker/crl.pem, signed
 * by the CA again). A running broker rereads it on SIGHUP.
 * @return 0 (also when it was listed already), or -1.
 */
int cli_broker_revoke_cert(const cli_ctx_t *ctx, const char *cert_path);

/**
 * Whether the broker of this data folder runs: the pid in
 * <data_dir>/broker/mosquitto.pid names a live Mosquitto process.
 * @return its pid, or 0.
 */
long cli_broker_running(const cli_ctx_t *ctx);

/**
 * Whether a --bind or --host value is acceptable: 1 to 253 letters, digits,
 * '.', '-' and ':'.
 * @return 1 or 0.
 */
int cli_broker_valid_address(const char *a);

#endif /* CLI_BROKER_H */
