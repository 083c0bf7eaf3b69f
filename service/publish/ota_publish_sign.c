/* otter: sig-sha256-ecdsa signing and verification (see ota_publish_sign.h). */
#include "ota_publish_sign.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>

#include "otter/ota_verify.h"

int ota_publish_sign(const char *key_path, const char *key_flag, const uint8_t *data, size_t len,
                     uint8_t *sig, size_t *sig_len, char **pub_pem, char *err, size_t cap)
{
    if (access(key_path, R_OK) != 0) {
        snprintf(err, cap, "cannot read key '%s' (%s); check %s", key_path, strerror(errno),
                 key_flag);
        return -1;
    }
    mbedtls_pk_context key;
    mbedtls_pk_init(&key);
    int rc = mbedtls_pk_parse_keyfile(&key, key_path, NULL);
    if (rc != 0 || mbedtls_pk_get_type(&key) != MBEDTLS_PK_ECKEY ||
        mbedtls_pk_ec(key)->grp.id != MBEDTLS_ECP_DP_SECP256R1) {
        mbedtls_pk_free(&key);
        snprintf(err, cap, "'%s' is not a P-256 private key in PEM; make one with 'otter keygen'",
                 key_path);
        return -1;
    }
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    static const unsigned char pers[] = "otter sign";
    uint8_t hash[32];
    unsigned char der[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
    size_t der_len = 0;
    rc = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, pers, sizeof pers - 1);
    if (rc == 0) {
        rc = mbedtls_sha256_ret(data, len, hash, 0);
    }
    if (rc == 0) {
        rc = mbedtls_pk_sign(&key, MBEDTLS_MD_SHA256, hash, sizeof hash, der, &der_len,
                             mbedtls_ctr_drbg_random, &drbg);
    }
    if (rc == 0 && der_len > OTA_PUBLISH_SIG_MAX) {
        rc = -1;
    }
    if (rc == 0 && pub_pem != NULL) {
        char buf[512];
        rc = mbedtls_pk_write_pubkey_pem(&key, (unsigned char *)buf, sizeof buf);
        if (rc == 0) {
            *pub_pem = strdup(buf);
            rc = *pub_pem == NULL ? -1 : 0;
        }
    }
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    mbedtls_pk_free(&key);
    if (rc != 0) {
        snprintf(err, cap, "signing with '%s' failed (mbed TLS -0x%04x); check the key", key_path,
                 (unsigned)-rc);
        return -1;
    }
    memcpy(sig, der, der_len);
    *sig_len = der_len;
    return 0;
}

/* Reader over a memory buffer for ota_verify. */
struct mem_reader {
    const uint8_t *data;
    size_t len;
};

/* Copies len bytes at offset from the buffer. */
static int32_t mem_read(void *ctx, uint32_t offset, uint8_t *buf, uint32_t len)
{
    const struct mem_reader *r = ctx;
    if ((size_t)offset + len > r->len) {
        return OTA_ERR_IO;
    }
    memcpy(buf, r->data + offset, len);
    return (int32_t)len;
}

int ota_publish_verify(const char *signer_pem, const uint8_t *data, size_t len, const uint8_t *sig,
                       size_t sig_len)
{
    if (len > UINT32_MAX) {
        return OTA_ERR_RX_FILE_TOO_LARGE;
    }
    struct mem_reader r = {data, len};
    uint8_t chunk[4096];
    return ota_verify_sha256_ecdsa((const uint8_t *)signer_pem, strlen(signer_pem), sig, sig_len,
                                   mem_read, &r, (uint32_t)len, chunk, sizeof chunk);
}
