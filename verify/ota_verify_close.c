/* otter: close-time verification shared by every port (see ota_verify_close.h). */
#include "otter/ota_verify_close.h"

#include "ota_verify_key.h"

/* The methods this build accepts: ECDSA, and RSA with OTA_SIG_RSA. */
static int method_enabled(ota_sig_method_t method)
{
    return method == OTA_SIG_SHA256_ECDSA || (OTA_SIG_RSA && method == OTA_SIG_SHA256_RSA);
}

ota_err_t ota_verify_close(const ota_pal_file_t *file, uint32_t size,
                           const ota_verify_signer_t *signer, uint32_t *key_id,
                           ota_verify_hash_t *hash, const ota_verify_reader_t *reader)
{
    ota_err_t err;
    ota_verify_key_t k;
    int hashed = hash != NULL && hash->length == size && !hash->failed;

    if (hash != NULL && !hashed) {
        ota_verify_hash_discard(hash);
        hash = NULL;
    }
    if (file == NULL || (!hashed && (reader == NULL || reader->read_back == NULL ||
                                     reader->chunk == NULL || reader->chunk_len == 0u))) {
        if (hash != NULL) {
            ota_verify_hash_discard(hash);
        }
        return OTA_ERR_INVALID_ARG;
    }
    /* The signer is parsed once, for its method, its key id and the check. */
    ota_verify_key_init(&k);
    if (signer == NULL || signer->pem == NULL) {
        err = OTA_ERR_BAD_SIGNER_CERT;
    } else if (ota_verify_key_parse(&k, signer->pem, signer->pem_len) != OTA_OK ||
               (k.method == OTA_SIG_SHA256_RSA && !OTA_SIG_RSA)) {
        err = OTA_ERR_BAD_SIGNER_CERT; /* unusable, or an RSA key in an ECDSA-only build */
    } else if (key_id != NULL && ota_verify_key_id_of(&k, key_id) != OTA_OK) {
        err = OTA_ERR_BAD_SIGNER_CERT;
    } else if (!method_enabled(file->sig_method) || file->signature_len > OTA_PAL_SIGNATURE_MAX ||
               (file->signature == NULL && file->signature_len != 0u)) {
        err = OTA_ERR_SIGNATURE_CHECK_FAILED;
    } else if (file->sig_method != k.method) {
        err = OTA_ERR_BAD_SIGNER_CERT; /* the job's method is not the signer's */
    } else if (hashed) {
        err = ota_verify_key_check_hash(&k, file->signature, file->signature_len, hash);
        hash = NULL; /* finished */
    } else {
        err = ota_verify_key_check_file(&k, file->signature, file->signature_len, reader->read_back,
                                        reader->ctx, size, reader->chunk, reader->chunk_len);
    }
    ota_verify_key_free(&k);
    if (hash != NULL) {
        ota_verify_hash_discard(hash);
    }
    if (err == OTA_OK || err == OTA_ERR_BAD_SIGNER_CERT || err == OTA_ERR_SIGNATURE_CHECK_FAILED) {
        return err;
    }
    return OTA_ERR_FILE_CLOSE; /* the file could not be read, whatever the reader said */
}
