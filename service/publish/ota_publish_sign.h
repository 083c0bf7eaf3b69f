/*
 * otter: signing a firmware image as the devices verify it (sig-sha256-ecdsa:
 * ECDSA P-256 over the SHA-256 of the whole image, DER SEQUENCE{r,s}), and
 * checking a signature with otter's device verifier. Shared by the CLI
 * (`otter sign`, `otter job create --key`) and the web console's server-held key.
 *
 * Host code: uses the heap. Error texts read "<what went wrong>; <what to do>".
 */
#ifndef OTA_PUBLISH_SIGN_H
#define OTA_PUBLISH_SIGN_H

#include <stddef.h>
#include <stdint.h>

/** Largest DER ECDSA P-256 signature. */
#define OTA_PUBLISH_SIG_MAX 72u

/**
 * Signs data with a P-256 private key file.
 * @param key_path PEM private key (SEC1 or PKCS#8).
 * @param key_flag how the caller names the key in advice ("--key", "--signing-key").
 * @param sig      receives the DER signature (OTA_PUBLISH_SIG_MAX bytes).
 * @param sig_len  receives its length.
 * @param pub_pem  when not NULL, receives the key's public key as PEM (heap, caller frees).
 * @param err      receives the error text on failure.
 * @return 0, or -1 with the text in err.
 */
int ota_publish_sign(const char *key_path, const char *key_flag, const uint8_t *data, size_t len,
                     uint8_t *sig, size_t *sig_len, char **pub_pem, char *err, size_t cap);

/**
 * Verifies a sig-sha256-ecdsa signature over data with otter's device verifier.
 * @param signer_pem certificate or public key PEM (NUL-terminated).
 * @return 0 when it verifies; otherwise the negative ota_err_t.
 */
int ota_publish_verify(const char *signer_pem, const uint8_t *data, size_t len, const uint8_t *sig,
                       size_t sig_len);

#endif /* OTA_PUBLISH_SIGN_H */
