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
    /** TLS server for 127.0.0.1 and localhost (subjectAltName, serverAuth). */
    CLI_X509_SERVER,
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

#endif /* CLI_X509_H */
