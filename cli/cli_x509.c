/* otter CLI: P-256 keys and X.509 certificates with mbed TLS's writer. */
#include "cli_x509.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/asn1write.h>
#include <mbedtls/bignum.h>
#include <mbedtls/md.h>
#include <mbedtls/pem.h>
#include <mbedtls/x509_crl.h>
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
/* DER of ExtKeyUsageSyntax with clientAuth (1.3.6.1.5.5.7.3.2). */
static const unsigned char eku_client[] = {0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06,
                                           0x01, 0x05, 0x05, 0x07, 0x03, 0x02};

/* Adds l (an mbed TLS write result) to *len; keeps the first error. */
static int add(int *len, int l)
{
    if (*len >= 0) {
        *len = l < 0 ? l : *len + l;
    }
    return *len;
}

/* Writes the DER of GeneralNames for names (iPAddress when one parses, else dNSName). */
static int write_san(const char *const *names, unsigned char *buf, size_t cap, size_t *out_len)
{
    unsigned char *p = buf + cap;
    size_t count = 0;
    int len = 0;
    while (names != NULL && names[count] != NULL) {
        count++;
    }
    for (size_t i = count; i-- > 0;) {
        unsigned char ip[16];
        int v4 = inet_pton(AF_INET, names[i], ip) == 1;
        int v6 = !v4 && inet_pton(AF_INET6, names[i], ip) == 1;
        const unsigned char *v = (v4 || v6) ? ip : (const unsigned char *)names[i];
        size_t n = v4 ? 4u : v6 ? 16u : strlen(names[i]);
        add(&len, mbedtls_asn1_write_raw_buffer(&p, buf, v, n));
        add(&len, mbedtls_asn1_write_len(&p, buf, n));
        add(&len,
            mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONTEXT_SPECIFIC | (v4 || v6 ? 7 : 2)));
    }
    if (len >= 0) {
        add(&len, mbedtls_asn1_write_len(&p, buf, (size_t)len));
    }
    add(&len, mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
    if (len < 0) {
        return len;
    }
    memmove(buf, p, (size_t)len);
    *out_len = (size_t)len;
    return 0;
}

/* An end entity: not a CA, these key usages, this extended key usage. */
static int set_end_entity(mbedtls_x509write_cert *w, unsigned int key_usage,
                          const unsigned char *eku, size_t eku_len)
{
    int rc = mbedtls_x509write_crt_set_basic_constraints(w, 0, -1);
    if (rc == 0) {
        rc = mbedtls_x509write_crt_set_key_usage(w, key_usage);
    }
    if (rc == 0) {
        rc = mbedtls_x509write_crt_set_extension(w, MBEDTLS_OID_EXTENDED_KEY_USAGE,
                                                 MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE),
                                                 0, eku, eku_len);
    }
    return rc;
}

/* Sets the extensions that belong to the certificate's kind. */
static int set_kind_extensions(mbedtls_x509write_cert *w, const cli_x509_cert_t *c)
{
    const unsigned int tls_usage =
        MBEDTLS_X509_KU_DIGITAL_SIGNATURE | MBEDTLS_X509_KU_KEY_AGREEMENT;
    unsigned char san[1024];
    size_t san_len = 0;
    int rc;
    switch (c->kind) {
    case CLI_X509_CA:
        rc = mbedtls_x509write_crt_set_basic_constraints(w, 1, 0);
        if (rc == 0) {
            rc = mbedtls_x509write_crt_set_key_usage(w, MBEDTLS_X509_KU_KEY_CERT_SIGN |
                                                            MBEDTLS_X509_KU_CRL_SIGN |
                                                            MBEDTLS_X509_KU_DIGITAL_SIGNATURE);
        }
        return rc;
    case CLI_X509_SERVER:
        rc = set_end_entity(w, tls_usage, eku_server, sizeof eku_server);
        if (rc == 0) {
            rc = write_san(c->names, san, sizeof san, &san_len);
        }
        if (rc == 0) {
            rc = mbedtls_x509write_crt_set_extension(w, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                                     MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME),
                                                     0, san, san_len);
        }
        return rc;
    case CLI_X509_CLIENT:
        return set_end_entity(w, tls_usage, eku_client, sizeof eku_client);
    case CLI_X509_CODE_SIGNING:
    default:
        return set_end_entity(w, MBEDTLS_X509_KU_DIGITAL_SIGNATURE, eku_code_signing,
                              sizeof eku_code_signing);
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
        rc = set_kind_extensions(&w, c);
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

/* Writes a UTCTime (YYMMDDhhmmssZ) for t. */
static int write_utc_time(unsigned char **p, unsigned char *start, time_t t)
{
    struct tm tm;
    char text[64]; /* 13 used; room for what the format could print for any int */
    gmtime_r(&t, &tm);
    snprintf(text, sizeof text, "%02d%02d%02d%02d%02d%02dZ", tm.tm_year % 100, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    int rc = mbedtls_asn1_write_raw_buffer(p, start, (const unsigned char *)text, 13);
    int l = rc < 0 ? rc : mbedtls_asn1_write_len(p, start, 13);
    rc = l < 0 ? l : rc + l;
    l = rc < 0 ? rc : mbedtls_asn1_write_tag(p, start, MBEDTLS_ASN1_UTC_TIME);
    return l < 0 ? l : rc + l;
}

/* Writes one revokedCertificates entry: SEQUENCE { serial, revocationDate }. */
static int write_entry(unsigned char **p, unsigned char *start, const mbedtls_x509_buf *serial,
                       time_t when)
{
    int len = 0;
    add(&len, write_utc_time(p, start, when));
    add(&len, mbedtls_asn1_write_raw_buffer(p, start, serial->p, serial->len));
    add(&len, mbedtls_asn1_write_len(p, start, serial->len));
    add(&len, mbedtls_asn1_write_tag(p, start, MBEDTLS_ASN1_INTEGER));
    if (len >= 0) {
        add(&len, mbedtls_asn1_write_len(p, start, (size_t)len));
    }
    return add(&len,
               mbedtls_asn1_write_tag(p, start, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
}

/* Seconds since the epoch of an mbed TLS time (UTC). */
static time_t from_x509_time(const mbedtls_x509_time *t)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = t->year - 1900;
    tm.tm_mon = t->mon - 1;
    tm.tm_mday = t->day;
    tm.tm_hour = t->hour;
    tm.tm_min = t->min;
    tm.tm_sec = t->sec;
    return timegm(&tm);
}

/* The DER of the TBSCertList at the end of buf; *tbs and its length. */
static int write_tbs(unsigned char *buf, size_t cap, const mbedtls_x509_crt *ca,
                     const mbedtls_x509_crl *current, const mbedtls_x509_crt *revoke,
                     unsigned char **tbs)
{
    unsigned char *p = buf + cap;
    time_t now = time(NULL);
    int len = 0, entries = 0;
    if (revoke != NULL) {
        add(&entries, write_entry(&p, buf, &revoke->serial, now));
    }
    for (const mbedtls_x509_crl_entry *e = current ? &current->entry : NULL;
         e != NULL && e->serial.len > 0 && entries >= 0; e = e->next) {
        add(&entries, write_entry(&p, buf, &e->serial, from_x509_time(&e->revocation_date)));
    }
    if (entries > 0) {
        add(&entries, mbedtls_asn1_write_len(&p, buf, (size_t)entries));
        add(&entries,
            mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
    }
    add(&len, entries);
    add(&len, write_utc_time(&p, buf, now + 10L * 365 * 86400)); /* nextUpdate */
    add(&len, write_utc_time(&p, buf, now - 3600));              /* thisUpdate */
    add(&len, mbedtls_asn1_write_raw_buffer(&p, buf, ca->subject_raw.p, ca->subject_raw.len));
    add(&len,
        mbedtls_asn1_write_algorithm_identifier(&p, buf, MBEDTLS_OID_ECDSA_SHA256,
                                                MBEDTLS_OID_SIZE(MBEDTLS_OID_ECDSA_SHA256), 0));
    if (len >= 0) {
        add(&len, mbedtls_asn1_write_len(&p, buf, (size_t)len));
    }
    add(&len, mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
    *tbs = p;
    return len;
}

int cli_x509_make_crl(const char *ca_pem, mbedtls_pk_context *ca_key, const char *current,
                      const char *revoke, char *out, size_t cap)
{
    mbedtls_x509_crt ca, rev;
    mbedtls_x509_crl crl;
    mbedtls_x509_crt_init(&ca);
    mbedtls_x509_crt_init(&rev);
    mbedtls_x509_crl_init(&crl);
    const size_t big = 1u << 20;
    unsigned char *tbs_buf = malloc(big), *der = malloc(big), *tbs = NULL;
    unsigned char hash[32], sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
    size_t sig_len = 0, olen = 0;
    int rc = (tbs_buf == NULL || der == NULL) ? MBEDTLS_ERR_ASN1_ALLOC_FAILED : 0;
    if (rc == 0) {
        rc = mbedtls_x509_crt_parse(&ca, (const unsigned char *)ca_pem, strlen(ca_pem) + 1);
    }
    if (rc == 0 && current != NULL) {
        rc = mbedtls_x509_crl_parse(&crl, (const unsigned char *)current, strlen(current) + 1);
    }
    if (rc == 0 && revoke != NULL) {
        rc = mbedtls_x509_crt_parse(&rev, (const unsigned char *)revoke, strlen(revoke) + 1);
    }
    int tbs_len =
        rc == 0 ? write_tbs(tbs_buf, big, &ca, current ? &crl : NULL, revoke ? &rev : NULL, &tbs)
                : rc;
    rc = tbs_len < 0 ? tbs_len : 0;
    if (rc == 0) {
        rc = mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), tbs, (size_t)tbs_len, hash);
    }
    if (rc == 0) {
        rc = mbedtls_pk_sign(ca_key, MBEDTLS_MD_SHA256, hash, sizeof hash, sig, &sig_len, cli_rng,
                             NULL);
    }
    int len = 0;
    unsigned char *p = der + big;
    if (rc == 0) {
        add(&len, mbedtls_x509_write_sig(&p, der, MBEDTLS_OID_ECDSA_SHA256,
                                         MBEDTLS_OID_SIZE(MBEDTLS_OID_ECDSA_SHA256), sig, sig_len));
        add(&len, mbedtls_asn1_write_raw_buffer(&p, der, tbs, (size_t)tbs_len));
        if (len >= 0) {
            add(&len, mbedtls_asn1_write_len(&p, der, (size_t)len));
        }
        add(&len,
            mbedtls_asn1_write_tag(&p, der, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
        rc = len < 0 ? len : 0;
    }
    if (rc == 0) {
        rc = mbedtls_pem_write_buffer("-----BEGIN X509 CRL-----\n", "-----END X509 CRL-----\n", p,
                                      (size_t)len, (unsigned char *)out, cap, &olen);
    }
    free(tbs_buf);
    free(der);
    mbedtls_x509_crt_free(&ca);
    mbedtls_x509_crt_free(&rev);
    mbedtls_x509_crl_free(&crl);
    return rc;
}

int cli_x509_is_revoked(const char *crl_pem, const char *cert_pem)
{
    mbedtls_x509_crt crt;
    mbedtls_x509_crl crl;
    mbedtls_x509_crt_init(&crt);
    mbedtls_x509_crl_init(&crl);
    int rc = -1;
    if (mbedtls_x509_crt_parse(&crt, (const unsigned char *)cert_pem, strlen(cert_pem) + 1) == 0 &&
        mbedtls_x509_crl_parse(&crl, (const unsigned char *)crl_pem, strlen(crl_pem) + 1) == 0) {
        rc = mbedtls_x509_crt_is_revoked(&crt, &crl);
    }
    mbedtls_x509_crt_free(&crt);
    mbedtls_x509_crl_free(&crl);
    return rc;
}
