/*
 * otter: a parsed signer, shared by ota_verify.c and ota_verify_close.c
 * (private to verify/), so that closing a file parses the signer once for
 * its method, its key id and the signature check.
 */
#ifndef OTA_VERIFY_KEY_H
#define OTA_VERIFY_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "mbedtls/pk.h"
#include "mbedtls/x509_crt.h"

#include "otter/ota_verify.h"

/** The parsed signer: a certificate or a bare public key, whichever parsed. */
typedef struct ota_verify_key {
    mbedtls_x509_crt crt;
    mbedtls_pk_context pk;
    /** Points at crt.pk or pk once parsing succeeded; NULL before. */
    mbedtls_pk_context *key;
    /** The method the key verifies, once parsing succeeded. */
    ota_sig_method_t method;
} ota_verify_key_t;

/** Make k empty; call ota_verify_key_free() on it afterwards, whatever happens. */
void ota_verify_key_init(ota_verify_key_t *k);

/** Free what parsing allocated in k (initialised). */
void ota_verify_key_free(ota_verify_key_t *k);

/**
 * Parse the signer PEM (a certificate, else a public key) into k (initialised)
 * and set k->method.
 * @return OTA_OK; OTA_ERR_BAD_SIGNER_CERT when it does not parse or verifies
 *         no method this build knows.
 */
ota_err_t ota_verify_key_parse(ota_verify_key_t *k, const uint8_t *pem, size_t pem_len);

/**
 * *id = the key id of parsed k (see ota_verify_key_id()).
 * @return OTA_OK; OTA_ERR_BAD_SIGNER_CERT.
 */
ota_err_t ota_verify_key_id_of(const ota_verify_key_t *k, uint32_t *id);

/**
 * Finish hash (started with ota_verify_hash_start(); consumed whatever
 * happens) and check sig (sig_len bytes, not NULL unless 0) over its digest
 * with parsed k.
 * @return OTA_OK; OTA_ERR_SIGNATURE_CHECK_FAILED (also for an empty signature
 *         or a failed hash).
 */
ota_err_t ota_verify_key_check_hash(ota_verify_key_t *k, const uint8_t *sig, size_t sig_len,
                                    ota_verify_hash_t *hash);

/**
 * Hash file_size bytes through read (chunk_len bytes at a time into chunk)
 * and check sig with parsed k.
 * @return OTA_OK; OTA_ERR_SIGNATURE_CHECK_FAILED (also for an empty
 *         signature); the reader's error; OTA_ERR_IO for a short read.
 */
ota_err_t ota_verify_key_check_file(ota_verify_key_t *k, const uint8_t *sig, size_t sig_len,
                                    ota_verify_read_fn read, void *read_ctx, uint32_t file_size,
                                    uint8_t *chunk, uint32_t chunk_len);

#endif /* OTA_VERIFY_KEY_H */
