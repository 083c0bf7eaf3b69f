/*
 * otter CLI: a changed certificate revocation list (DATA_DIR/broker/crl.pem)
 * put in force on every broker of the data folder: hub 1 and, in a
 * federation, every broker whose folder is DATA_DIR/federation/K/broker/.
 *
 * Mosquitto 2.0 rereads a listener's crlfile when it gets SIGHUP (with its
 * configuration and certificates); a running broker keeps the list it read
 * until then. Whether a broker refuses a certificate is checked the way a
 * device meets it: a TLS handshake with that certificate and key.
 */
#ifndef CLI_CRL_H
#define CLI_CRL_H

#include "cli_common.h"

/** The handshake with a certificate: what the broker did. */
typedef enum {
    CLI_CRL_ACCEPTED = 0, /**< the handshake completed */
    CLI_CRL_REFUSED = 1,  /**< the broker ended the handshake after receiving the certificate */
    CLI_CRL_UNKNOWN = -1  /**< not reached, or the handshake failed on this side */
} cli_crl_probe_t;

/**
 * Try a TLS 1.2 handshake with host:port as a client with cert_path and
 * key_path, checking the server's certificate against cafile (and its name
 * against host). Gives up after about 3 s.
 * @return what the broker did.
 */
cli_crl_probe_t cli_crl_probe(const char *host, unsigned port, const char *cafile,
                              const char *cert_path, const char *key_path);

/**
 * Probe host:port (as cli_crl_probe) again and again, 50 ms apart, until the
 * broker refuses the certificate or wait_ms have passed on the monotonic
 * clock since the first probe began (0: probe once). The probes' own time
 * counts, so a broker that accepts the connection and never answers holds
 * this for wait_ms plus at most one probe's timeouts. The CA, certificate and
 * key are read and the random generator seeded once, for every probe of the
 * check; when they cannot be, nothing is probed (CLI_CRL_UNKNOWN at once).
 * @return what the last probe found.
 */
cli_crl_probe_t cli_crl_probe_until_refused(const char *host, unsigned port, const char *cafile,
                                            const char *cert_path, const char *key_path,
                                            int wait_ms);

/**
 * Put hub 1's revocation list (just changed, with cert_path on it) in force
 * everywhere: hub 1, when it runs here, rereads it (SIGHUP); every other
 * broker of the federation gets it written into its folder here
 * (DATA_DIR/federation/K/broker/crl.pem) and, when it runs on this machine,
 * rereads it. Then each broker is checked to refuse cert_path (key_path) at
 * the TLS handshake. Prints a line per broker in a federation and, for each
 * broker not known to refuse it (another machine's, or one not reached),
 * what the operator copies where; `again` (may be NULL) is the command that
 * checks again.
 * @param pending receives how many brokers are not known to refuse it.
 * A member's folder whose crl.pem cannot be written leaves that broker
 * pending (with its line), not the others.
 * @return CLI_EXIT_OK, or CLI_EXIT_FAIL (with the error line) when hub 1's
 *         list cannot be read or hub 1 runs here and still accepts the
 *         certificate.
 */
int cli_crl_in_force(const cli_ctx_t *ctx, const char *cert_path, const char *key_path,
                     const char *again, int *pending);

#endif /* CLI_CRL_H */
