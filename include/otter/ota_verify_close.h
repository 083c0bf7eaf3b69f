/*
 * otter: the verification every port makes when a received file is closed.
 *
 * One function, called from every port's close_file, so that one contract
 * has one behaviour: the same checks in the same order, the same streaming
 * hash shortcut, and the same error for the same failure on every port.
 * A port that hashed the whole file while it was written passes that hash;
 * otherwise the file is read back through the port's own read_back (the
 * PAL operation), chunk by chunk into the port's buffer.
 */
#ifndef OTTER_OTA_VERIFY_CLOSE_H
#define OTTER_OTA_VERIFY_CLOSE_H

#include <stddef.h>
#include <stdint.h>

#include "otter/ota_err.h"
#include "otter/ota_pal.h"
#include "otter/ota_verify.h"

/** How close-time verification reads the file back: the port's read_back. */
typedef struct ota_verify_reader {
    /** The port's read_back operation (same signature as ota_pal_t.read_back). */
    ota_verify_read_fn read_back;
    /** Its context (the port). */
    void *ctx;
    /** Buffer the file is read through; chunk_len >= 1. */
    uint8_t *chunk;
    uint32_t chunk_len;
} ota_verify_reader_t;

/**
 * Verify the file a port is closing.
 *
 * Checks, in this order; the first failure is returned:
 *   1. the signer: none by file->cert_name (signer NULL), a PEM without a
 *      usable key, or an RSA key in a build without OTA_SIG_RSA ->
 *      OTA_ERR_BAD_SIGNER_CERT;
 *   2. the method and the signature: a file->sig_method this build does not
 *      accept (RSA needs OTA_SIG_RSA), a signature longer than
 *      OTA_PAL_SIGNATURE_MAX, or a NULL signature of nonzero length ->
 *      OTA_ERR_SIGNATURE_CHECK_FAILED;
 *   3. the method against the key: file->sig_method is not the method of the
 *      signer's key (an RSA signature named for a P-256 signer, or the other
 *      way round) -> OTA_ERR_BAD_SIGNER_CERT; then an empty signature ->
 *      OTA_ERR_SIGNATURE_CHECK_FAILED (nothing is read);
 *   4. the file's bytes: hash (when it covers exactly size bytes and did not
 *      fail) or, otherwise, size bytes read back through reader; any read
 *      error, whatever its code, -> OTA_ERR_FILE_CLOSE;
 *   5. the signature over the digest -> OTA_ERR_SIGNATURE_CHECK_FAILED.
 *
 * @param file    the close_file argument (method, signature); its size field
 *                is not used.
 * @param size    the size the file has in storage (the one given at create).
 * @param signer  the port's signer for file->cert_name, or NULL when it has
 *                none by that name.
 * @param key_id  receives ota_verify_key_id of the signer when not NULL (a
 *                flash port records it for the bootloader).
 * @param hash    the file hashed as it was written, or NULL. It is finished
 *                or discarded whatever the result.
 * @param reader  how to read the file back; needed when hash is NULL or does
 *                not cover the file.
 * @return OTA_OK; OTA_ERR_BAD_SIGNER_CERT; OTA_ERR_SIGNATURE_CHECK_FAILED;
 *         OTA_ERR_FILE_CLOSE; OTA_ERR_INVALID_ARG (file NULL, or no usable
 *         reader when one is needed).
 */
ota_err_t ota_verify_close(const ota_pal_file_t *file, uint32_t size,
                           const ota_verify_signer_t *signer, uint32_t *key_id,
                           ota_verify_hash_t *hash, const ota_verify_reader_t *reader);

#endif /* OTTER_OTA_VERIFY_CLOSE_H */
