/*
 * otter: signing a firmware image as the devices verify it, and checking a
 * signature with otter's device verifier. The key decides the method:
 * sig-sha256-ecdsa (ECDSA P-256 over the SHA-256 of the whole image, DER
 * SEQUENCE{r,s}) or sig-sha256-rsa (RSA-2048/3072 PKCS#1 v1.5 over the same
 * digest, as long as the modulus), as AWS code signing makes them. Shared by the CLI
 * (`otter sign`, `otter job create --key`) and the web console's server-held key.
 *
 * Host code: uses the heap. Error texts read "<what went wrong>; <what to do>".
 */
#ifndef OTA_PUBLISH_SIGN_H
#define OTA_PUBLISH_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "otter/ota_pal.h"

/** Largest signature: RSA-3072 (DER ECDSA P-256 takes at most 72). */
#define OTA_PUBLISH_SIG_MAX 384u

/**
 * Signs data with a P-256 or RSA-2048/3072 private key file.
 * @param key_path PEM private key (SEC1, PKCS#1 or PKCS#8).
 * @param key_flag how the caller names the key in advice ("--key", "--signing-key").
 * @param sig      receives the signature (OTA_PUBLISH_SIG_MAX bytes).
 * @param sig_len  receives its length.
 * @param pub_pem  when not NULL, receives the key's public key as PEM (heap, caller frees).
 * @param err      receives the error text on failure.
 * @return 0, or -1 with the text in err.
 */
int ota_publish_sign(const char *key_path, const char *key_flag, const uint8_t *data, size_t len,
                     uint8_t *sig, size_t *sig_len, char **pub_pem, char *err, size_t cap);

/**
 * Verifies a signature over data with otter's device verifier, by the method of
 * the signer's key (ota_verify_signer_method).
 * @param signer_pem certificate or public key PEM (NUL-terminated).
 * @return 0 when it verifies; otherwise the negative ota_err_t
 *         (OTA_ERR_BAD_SIGNER_CERT: not a P-256 or RSA-2048/3072 key).
 */
int ota_publish_verify(const char *signer_pem, const uint8_t *data, size_t len, const uint8_t *sig,
                       size_t sig_len);

/**
 * The signature method a signer (certificate or public key PEM, NUL-terminated)
 * verifies: OTA_SIG_SHA256_ECDSA for P-256, OTA_SIG_SHA256_RSA for RSA-2048/3072.
 * @return 0, or the negative ota_err_t (OTA_ERR_BAD_SIGNER_CERT).
 */
int ota_publish_signer_method(const char *signer_pem, ota_sig_method_t *method);

/**
 * The job document key of a method: "sig-sha256-ecdsa" or "sig-sha256-rsa".
 */
const char *ota_publish_sig_key(ota_sig_method_t method);

#endif /* OTA_PUBLISH_SIGN_H */
