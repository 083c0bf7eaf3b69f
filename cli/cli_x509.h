/*
 * otter CLI: P-256 keys and X.509 certificates (code signing, broker TLS).
 */
#ifndef CLI_X509_H
#define CLI_X509_H

#include <stddef.h>

#include <mbedtls/pk.h>

/** What a certificate is for; selects its extensions. */
typedef enum cli_x509_kind {
    /** End entity, digitalSignature, extended key usage codeSigning. */
    CLI_X509_CODE_SIGNING,
    /** Certificate authority (CA:TRUE, keyCertSign, cRLSign). */
    CLI_X509_CA,
    /** TLS server for the names in `names` (subjectAltName, serverAuth). */
    CLI_X509_SERVER,
    /** TLS client, a device or the service (extended key usage clientAuth). */
    CLI_X509_CLIENT,
} cli_x509_kind_t;

/** A certificate to issue. */
typedef struct cli_x509_cert {
    /** Subject distinguished name, e.g. "CN=x,O=otter". */
    const char *subject;
    /** The key the certificate certifies (public part used). */
    mbedtls_pk_context *subject_key;
    /** Issuer distinguished name (the subject for self-signed). */
    const char *issuer;
    /** The issuer's private key (the subject key for self-signed). */
    mbedtls_pk_context *issuer_key;
    /** Validity in years from now. */
    int years;
    /** Extensions to set. */
    cli_x509_kind_t kind;
    /** CLI_X509_SERVER: NULL-terminated host names and IP addresses it serves. */
    const char *const *names;
} cli_x509_cert_t;

/**
 * Generate a new P-256 key into an initialised, empty pk context.
 * @return 0 or an mbed TLS error (negative).
 */
int cli_x509_make_key(mbedtls_pk_context *key);

/**
 * Issue a certificate as PEM into out (NUL-terminated).
 * @return 0 or an mbed TLS error (negative).
 */
int cli_x509_make_cert(const cli_x509_cert_t *c, char *out, size_t cap);

/**
 * Write a certificate revocation list signed by a CA: every entry of the
 * current list (a PEM CRL, or NULL for none) plus the serial of `revoke`
 * (a PEM certificate, or NULL), valid for 10 years.
 * @param ca_pem  the CA certificate (PEM); its subject is the CRL's issuer.
 * @param ca_key  the CA's private key.
 * @param current the current CRL (PEM), or NULL.
 * @param revoke  the certificate to add (PEM), or NULL.
 * @param out     receives the new CRL as PEM (NUL-terminated).
 * @return 0 or an mbed TLS error (negative).
 */
int cli_x509_make_crl(const char *ca_pem, mbedtls_pk_context *ca_key, const char *current,
                      const char *revoke, char *out, size_t cap);

/**
 * Whether a certificate (PEM) is listed in a CRL (PEM).
 * @return 1 listed, 0 not, -1 when either does not parse.
 */
int cli_x509_is_revoked(const char *crl_pem, const char *cert_pem);

#endif /* CLI_X509_H */
