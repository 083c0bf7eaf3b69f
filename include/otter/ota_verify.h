/*
 * otter: code-signature verification shared by every port.
 *
 * Verifies a signature over the SHA-256 of a whole file, as AWS code signing
 * makes them: "sig-sha256-ecdsa" (ECDSA P-256, DER SEQUENCE{r, s}) and
 * "sig-sha256-rsa" (RSA-2048 .. RSA-3072, PKCS#1 v1.5; the signature is as
 * long as the modulus). The signer's key comes from a PEM X.509 certificate
 * or a PEM public key, and its type decides the method it verifies: a P-256
 * key verifies ECDSA only, an RSA key RSA only. The file is read back through
 * a caller-supplied reader in chunks of a caller-owned buffer, so no file
 * needs to fit in RAM.
 *
 * RSA keys are usable where RSA is built in: in device builds with
 * OTA_SIG_RSA, and in the host tools' build (which sign and check both
 * methods whatever a device accepts). Elsewhere an RSA key is an unusable
 * signer (OTA_ERR_BAD_SIGNER_CERT), and no RSA code is compiled. Which
 * methods a device accepts is decided by ota_verify_close() and the
 * bootloader, from OTA_SIG_RSA.
 *
 * Built on mbed TLS. Our code allocates nothing; mbed TLS's certificate and
 * key parsers allocate through its platform layer (on an MCU, point that at
 * MBEDTLS_MEMORY_BUFFER_ALLOC_C's static pool).
 */
#ifndef OTTER_OTA_VERIFY_H
#define OTTER_OTA_VERIFY_H

#include "otter/ota_config_defaults.h"

#include <stddef.h>
#include <stdint.h>

#include "otter/ota_err.h"
#include "otter/ota_pal.h"

/* OTA_VERIFY_MAX_PEM_LEN, the largest signer PEM accepted (with its NUL), comes
 * from ota_config_defaults.h. */

/**
 * Reads len bytes at offset of the file being verified into buf.
 * @return len on success, a negative ota_err_t otherwise.
 */
typedef int32_t (*ota_verify_read_fn)(void *ctx, uint32_t offset, uint8_t *buf, uint32_t len);

/**
 * The signature method a signer's key verifies, from its type: a P-256 key
 * OTA_SIG_SHA256_ECDSA, an RSA key of 2048 to 3072 bits OTA_SIG_SHA256_RSA.
 * @param signer_pem PEM text of an X.509 certificate or a public key; need
 *                   not be NUL-terminated.
 * @param signer_len length of signer_pem in bytes.
 * @param method     receives the method.
 * @return OTA_OK; OTA_ERR_BAD_SIGNER_CERT (unparsable, another curve or key
 *         type, an RSA key below 2048 or above 3072 bits, or RSA where it is
 *         not built in); OTA_ERR_INVALID_ARG (NULL).
 */
ota_err_t ota_verify_signer_method(const uint8_t *signer_pem, size_t signer_len,
                                   ota_sig_method_t *method);

/**
 * Verify a signature of either method over the SHA-256 of a file.
 *
 * @param signer_pem  PEM text of an X.509 certificate or a public key; need
 *                    not be NUL-terminated.
 * @param signer_len  length of signer_pem in bytes.
 * @param method      the job document's method; the signer's key must be of
 *                    it (ota_verify_signer_method).
 * @param sig         ECDSA: DER SEQUENCE{r, s}; RSA: the signature, as long
 *                    as the modulus; may be NULL only when sig_len is 0.
 * @param sig_len     length of sig.
 * @param read        reader for the file; read_ctx is passed to it.
 * @param file_size   bytes to hash, from offset 0.
 * @param chunk       caller-owned buffer used for reading; chunk_len >= 1.
 * @return OTA_OK when the signature verifies;
 *         OTA_ERR_SIGNATURE_CHECK_FAILED (bad, empty or malformed signature);
 *         OTA_ERR_BAD_SIGNER_CERT (the signer as in ota_verify_signer_method,
 *         or a key of another method than method);
 *         OTA_ERR_INVALID_ARG (NULL pointers, chunk_len 0, an unknown method);
 *         or the reader's error (as ota_verify_sha256_ecdsa).
 * Checks run in the order ota_verify_sha256_ecdsa gives.
 */
ota_err_t ota_verify_sha256(const uint8_t *signer_pem, size_t signer_len, ota_sig_method_t method,
                            const uint8_t *sig, size_t sig_len, ota_verify_read_fn read,
                            void *read_ctx, uint32_t file_size, uint8_t *chunk, uint32_t chunk_len);

/**
 * Verify a sig-sha256-ecdsa signature: ota_verify_sha256() with
 * OTA_SIG_SHA256_ECDSA.
 *
 * @param signer_pem  PEM text of an X.509 certificate or a public key holding a
 *                    P-256 key; need not be NUL-terminated.
 * @param signer_len  length of signer_pem in bytes.
 * @param sig         DER SEQUENCE{r, s}; may be NULL only when sig_len is 0.
 * @param sig_len     length of sig.
 * @param read        reader for the file; read_ctx is passed to it.
 * @param file_size   bytes to hash, from offset 0.
 * @param chunk       caller-owned buffer used for reading; chunk_len >= 1.
 * @return OTA_OK when the signature verifies;
 *         OTA_ERR_SIGNATURE_CHECK_FAILED (bad, empty or malformed signature);
 *         OTA_ERR_BAD_SIGNER_CERT (PEM unparsable, empty, longer than
 *         OTA_VERIFY_MAX_PEM_LEN - 1 bytes of text, or not a P-256 key:
 *         an RSA key cannot verify ECDSA);
 *         OTA_ERR_INVALID_ARG (NULL pointers, chunk_len 0);
 *         or the reader's error (a negative return passed through as is; a
 *         short or over-long non-negative count gives OTA_ERR_IO).
 *
 * Checks run in this order, and the first failure is returned: arguments,
 * signer, empty signature (no read is made), reading and hashing the file,
 * the signature itself. A certificate is used only for its key: its validity
 * period, issuer and extensions are not checked (a device may have no clock;
 * trust comes from the certificate being provisioned on the device).
 */
ota_err_t ota_verify_sha256_ecdsa(const uint8_t *signer_pem, size_t signer_len, const uint8_t *sig,
                                  size_t sig_len, ota_verify_read_fn read, void *read_ctx,
                                  uint32_t file_size, uint8_t *chunk, uint32_t chunk_len);

/**
 * A SHA-256 computed piece by piece, for a port that hashes a file while it
 * is written (in order) instead of reading it all back after the last block.
 * Caller-owned; its fields are private.
 */
typedef struct ota_verify_hash {
    /** mbed TLS's SHA-256 context, kept here as bytes so that no mbed TLS type reaches this
     * header (verify/ota_verify.c checks at build time that it fits: see
     * OTA_VERIFY_HASH_CONTEXT_SIZE). */
    union {
        uint32_t align_u32;
        void *align_ptr;
        unsigned char bytes[OTA_VERIFY_HASH_CONTEXT_SIZE];
    } sha;
    /** Bytes hashed so far. */
    uint32_t length;
    /** Nonzero once mbed TLS reported an error; the signature check then fails. */
    uint8_t failed;
} ota_verify_hash_t;

/**
 * Start a hash (length 0).
 * @param hash caller-owned, overwritten; NULL is ignored.
 */
void ota_verify_hash_start(ota_verify_hash_t *hash);

/**
 * Hash len more bytes.
 * @param hash a started hash; NULL is ignored.
 * @param data len bytes (may be NULL only when len is 0).
 * @param len  bytes to add.
 */
void ota_verify_hash_update(ota_verify_hash_t *hash, const uint8_t *data, uint32_t len);

/**
 * Give up a started hash (wipes it, releases what mbed TLS holds for it).
 * @param hash a started hash, or one already finished; NULL is ignored.
 */
void ota_verify_hash_discard(ota_verify_hash_t *hash);

/**
 * Finish a hash and verify a signature over it: the same checks, in the same
 * order and with the same results, as ota_verify_sha256() over the bytes that
 * were hashed. The hash is finished (and wiped) whatever the result.
 * @param signer_pem  PEM text of an X.509 certificate or a public key.
 * @param signer_len  length of signer_pem in bytes.
 * @param method      the job document's method; the key must be of it.
 * @param sig         the signature; may be NULL only when sig_len is 0.
 * @param sig_len     length of sig.
 * @param hash        a started hash.
 * @return OTA_OK; OTA_ERR_SIGNATURE_CHECK_FAILED; OTA_ERR_BAD_SIGNER_CERT;
 *         OTA_ERR_INVALID_ARG (NULL pointers, an unknown method).
 */
ota_err_t ota_verify_hash_check(const uint8_t *signer_pem, size_t signer_len,
                                ota_sig_method_t method, const uint8_t *sig, size_t sig_len,
                                ota_verify_hash_t *hash);

/**
 * ota_verify_hash_check() with OTA_SIG_SHA256_ECDSA.
 * @param signer_pem  PEM text of an X.509 certificate or a P-256 public key.
 * @param signer_len  length of signer_pem in bytes.
 * @param sig         DER SEQUENCE{r, s}; may be NULL only when sig_len is 0.
 * @param sig_len     length of sig.
 * @param hash        a started hash.
 * @return as ota_verify_hash_check().
 */
ota_err_t ota_verify_hash_ecdsa(const uint8_t *signer_pem, size_t signer_len, const uint8_t *sig,
                                size_t sig_len, ota_verify_hash_t *hash);

/** A named signer known to a port ("certfile" in a job document). */
typedef struct ota_verify_signer {
    /** Name the job document uses, e.g. "codesign.crt". */
    const char *name;
    /** PEM text of a certificate or public key. */
    const uint8_t *pem;
    /** Length of pem in bytes. */
    size_t pem_len;
} ota_verify_signer_t;

/**
 * A short identity of a signer's key: the first four bytes (big endian) of
 * the SHA-256 of its public point (P-256: uncompressed, 65 bytes) or of its
 * modulus (RSA: big endian, as many bytes as the key). The same key gives
 * the same id whether it comes as a certificate or a public key, in any PEM
 * layout, so a bootloader and an application can name a signer to each other
 * without sharing the order of their tables.
 * @return OTA_OK; OTA_ERR_BAD_SIGNER_CERT (as ota_verify_signer_method);
 *         OTA_ERR_INVALID_ARG (NULL).
 */
ota_err_t ota_verify_key_id(const uint8_t *signer_pem, size_t signer_len, uint32_t *id);

/**
 * Find a signer by name in a table; a NULL name selects the first entry.
 * Names are compared exactly (strcmp); entries whose name is NULL match only
 * through a NULL name selecting the first entry.
 * @param signers table of count entries; may be NULL only when count is 0.
 * @param count   entries in the table.
 * @param name    the job document's "certfile", NUL-terminated, or NULL.
 * @return the entry (pointing into signers), or NULL when signers is NULL,
 *         count is 0, or no entry has that name.
 */
const ota_verify_signer_t *ota_verify_find_signer(const ota_verify_signer_t *signers, size_t count,
                                                  const char *name);

#endif /* OTTER_OTA_VERIFY_H */
