/* otter CLI: P-256 keys and X.509 certificates with mbed TLS's writer. */
#include "cli_x509.h"

#include <string.h>
#include <time.h>

#include <mbedtls/bignum.h>
#include <mbedtls/ecp.h>
#include <mbedtls/oid.h>
#include <mbedtls/x509_crt.h>

#include "cli_common.h"

int cli_x509_make_key(mbedtls_pk_context *key)
{
    int rc = mbedtls_pk_setup(key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
    if (rc != 0) {
        return rc;
    }
    return mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*key), cli_rng, NULL);
}

/* Formats a time as mbed TLS wants it: YYYYMMDDhhmmss (UTC). */
static void x509_time(time_t t, int add_years, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    tm.tm_year += add_years;
    if (tm.tm_mon == 1 && tm.tm_mday == 29) {
        tm.tm_mday = 28; /* no 29 February in most target years */
    }
    snprintf(out, 32, "%04d%02d%02d%02d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* DER of ExtKeyUsageSyntax with codeSigning (1.3.6.1.5.5.7.3.3). */
static const unsigned char eku_code_signing[] = {0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06,
                                                 0x01, 0x05, 0x05, 0x07, 0x03, 0x03};
/* DER of ExtKeyUsageSyntax with serverAuth (1.3.6.1.5.5.7.3.1). */
static const unsigned char eku_server[] = {0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06,
                                           0x01, 0x05, 0x05, 0x07, 0x03, 0x01};
/* DER of GeneralNames: dNSName "localhost", iPAddress 127.0.0.1. */
static const unsigned char san_local[] = {0x30, 0x11, 0x82, 0x09, 'l',  'o',  'c',  'a',  'l', 'h',
                                          'o',  's',  't',  0x87, 0x04, 0x7f, 0x00, 0x00, 0x01};

/* Sets the extensions that belong to the certificate's kind. */
static int set_kind_extensions(mbedtls_x509write_cert *w, cli_x509_kind_t kind)
{
    int rc;
    switch (kind) {
    case CLI_X509_CA:
        rc = mbedtls_x509write_crt_set_basic_constraints(w, 1, 0);
        if (rc == 0) {
            rc = mbedtls_x509write_crt_set_key_usage(w, MBEDTLS_X509_KU_KEY_CERT_SIGN |
                                                            MBEDTLS_X509_KU_CRL_SIGN |
                                                            MBEDTLS_X509_KU_DIGITAL_SIGNATURE);
        }
        return rc;
    case CLI_X509_SERVER:
        rc = mbedtls_x509write_crt_set_basic_constraints(w, 0, -1);
        if (rc == 0) {
            rc = mbedtls_x509write_crt_set_key_usage(w, MBEDTLS_X509_KU_DIGITAL_SIGNATURE |
                                                            MBEDTLS_X509_KU_KEY_AGREEMENT);
        }
        if (rc == 0) {
            rc = mbedtls_x509write_crt_set_extension(
                w, MBEDTLS_OID_EXTENDED_KEY_USAGE, MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE),
                0, eku_server, sizeof eku_server);
        }
        if (rc == 0) {
            rc = mbedtls_x509write_crt_set_extension(w, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                                     MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME),
                                                     0, san_local, sizeof san_local);
        }
        return rc;
    case CLI_X509_CODE_SIGNING:
    default:
        rc = mbedtls_x509write_crt_set_basic_constraints(w, 0, -1);
        if (rc == 0) {
            rc = mbedtls_x509write_crt_set_key_usage(w, MBEDTLS_X509_KU_DIGITAL_SIGNATURE);
        }
        if (rc == 0) {
            rc = mbedtls_x509write_crt_set_extension(
                w, MBEDTLS_OID_EXTENDED_KEY_USAGE, MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE),
                0, eku_code_signing, sizeof eku_code_signing);
        }
        return rc;
    }
}

int cli_x509_make_cert(const cli_x509_cert_t *c, char *out, size_t cap)
{
    mbedtls_x509write_cert w;
    mbedtls_mpi serial;
    mbedtls_x509write_crt_init(&w);
    mbedtls_mpi_init(&serial);
    unsigned char sn[16];
    int rc = cli_rng(NULL, sn, sizeof sn);
    sn[0] &= 0x7f;
    sn[0] |= 0x01;
    if (rc == 0) {
        rc = mbedtls_mpi_read_binary(&serial, sn, sizeof sn);
    }
    char not_before[32], not_after[32];
    time_t now = time(NULL);
    x509_time(now - 3600, 0, not_before);
    x509_time(now, c->years, not_after);
    mbedtls_x509write_crt_set_version(&w, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
    mbedtls_x509write_crt_set_subject_key(&w, c->subject_key);
    mbedtls_x509write_crt_set_issuer_key(&w, c->issuer_key);
    if (rc == 0) {
        rc = mbedtls_x509write_crt_set_serial(&w, &serial);
    }
    if (rc == 0) {
        rc = mbedtls_x509write_crt_set_validity(&w, not_before, not_after);
    }
    if (rc == 0) {
        rc = mbedtls_x509write_crt_set_subject_name(&w, c->subject);
    }
    if (rc == 0) {
        rc = mbedtls_x509write_crt_set_issuer_name(&w, c->issuer);
    }
    if (rc == 0) {
        rc = set_kind_extensions(&w, c->kind);
    }
    if (rc == 0) {
        rc = mbedtls_x509write_crt_set_subject_key_identifier(&w);
    }
    if (rc == 0) {
        rc = mbedtls_x509write_crt_set_authority_key_identifier(&w);
    }
    if (rc == 0) {
        rc = mbedtls_x509write_crt_pem(&w, (unsigned char *)out, cap, cli_rng, NULL);
    }
    mbedtls_mpi_free(&serial);
    mbedtls_x509write_crt_free(&w);
    return rc;
}
