/* otter: close-time verification shared by every port (see ota_verify_close.h). */
#include "otter/ota_verify_close.h"

ota_err_t ota_verify_close(const ota_pal_file_t *file, uint32_t size,
                           const ota_verify_signer_t *signer, uint32_t *key_id,
                           ota_verify_hash_t *hash, const ota_verify_reader_t *reader)
{
    ota_err_t err;
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
    if (signer == NULL || signer->pem == NULL) {
        err = OTA_ERR_BAD_SIGNER_CERT;
    } else if (key_id != NULL &&
               ota_verify_key_id(signer->pem, signer->pem_len, key_id) != OTA_OK) {
        err = OTA_ERR_BAD_SIGNER_CERT;
    } else if (file->sig_method != OTA_SIG_SHA256_ECDSA ||
               file->signature_len > OTA_PAL_SIGNATURE_MAX ||
               (file->signature == NULL && file->signature_len != 0u)) {
        err = OTA_ERR_SIGNATURE_CHECK_FAILED;
    } else if (hashed) {
        err = ota_verify_hash_ecdsa(signer->pem, signer->pem_len, file->signature,
                                    file->signature_len, hash);
        hash = NULL; /* finished */
    } else {
        err = ota_verify_sha256_ecdsa(signer->pem, signer->pem_len, file->signature,
                                      file->signature_len, reader->read_back, reader->ctx, size,
                                      reader->chunk, reader->chunk_len);
    }
    if (hash != NULL) {
        ota_verify_hash_discard(hash);
    }
    if (err == OTA_OK || err == OTA_ERR_BAD_SIGNER_CERT || err == OTA_ERR_SIGNATURE_CHECK_FAILED) {
        return err;
    }
    return OTA_ERR_FILE_CLOSE; /* the file could not be read, whatever the reader said */
}
