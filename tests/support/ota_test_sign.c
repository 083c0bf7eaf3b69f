/*
 * otter TEST SUPPORT ONLY: run-time signing with the public test keys.
 */
#include "ota_test_sign.h"

#include <stdio.h>
#include <string.h>

#include "mbedtls/ctr_drbg.h"
#include "mbedtls/entropy.h"
#include "mbedtls/md.h"
#include "mbedtls/pk.h"
#include "mbedtls/sha256.h"
#include "mbedtls/version.h"

#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#define OTA_TEST_SHA256 mbedtls_sha256
#else
#define OTA_TEST_SHA256 mbedtls_sha256_ret
#endif

int ota_test_sign_sha256_ecdsa(const char *key_pem_path, const uint8_t *data, size_t len,
                               uint8_t *sig, size_t sig_cap, size_t *sig_len)
{
    static const char pers[] = "otter test signing";
    mbedtls_pk_context pk;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    uint8_t hash[32];
    uint8_t out[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
    size_t out_len = 0;
    int rc = -1;

    if (key_pem_path == NULL || (data == NULL && len != 0) || sig == NULL || sig_len == NULL) {
        return -1;
    }
    mbedtls_pk_init(&pk);
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);

    if (mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, (const unsigned char *)pers,
                              sizeof(pers) - 1) != 0) {
        goto out;
    }
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    if (mbedtls_pk_parse_keyfile(&pk, key_pem_path, NULL, mbedtls_ctr_drbg_random, &drbg) != 0) {
        goto out;
    }
#else
    if (mbedtls_pk_parse_keyfile(&pk, key_pem_path, NULL) != 0) {
        goto out;
    }
#endif
    /* mbedtls_sha256 reads nothing when len is 0, but wants a pointer. */
    if (OTA_TEST_SHA256(len != 0 ? data : hash, len, hash, 0) != 0) {
        goto out;
    }
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    if (mbedtls_pk_sign(&pk, MBEDTLS_MD_SHA256, hash, sizeof(hash), out, sizeof(out), &out_len,
                        mbedtls_ctr_drbg_random, &drbg) != 0) {
        goto out;
    }
#else
    if (mbedtls_pk_sign(&pk, MBEDTLS_MD_SHA256, hash, sizeof(hash), out, &out_len,
                        mbedtls_ctr_drbg_random, &drbg) != 0) {
        goto out;
    }
#endif
    if (out_len > sig_cap) {
        goto out;
    }
    memcpy(sig, out, out_len);
    *sig_len = out_len;
    rc = 0;
out:
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    mbedtls_pk_free(&pk);
    return rc;
}

int ota_test_read_file(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
    FILE *f;
    size_t n;
    int rc = -1;

    if (path == NULL || (buf == NULL && cap != 0) || len == NULL) {
        return -1;
    }
    f = fopen(path, "rb");
    if (f == NULL) {
        return -1;
    }
    n = cap != 0 ? fread(buf, 1, cap, f) : 0;
    /* Success only if the file ended within cap bytes: one more read finds EOF. */
    if (!ferror(f) && (n < cap ? feof(f) != 0 : fgetc(f) == EOF && feof(f) != 0)) {
        *len = n;
        rc = 0;
    }
    fclose(f);
    return rc;
}
