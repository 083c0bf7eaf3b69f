/*
 * otter TEST SUPPORT ONLY: sign data at run time with a test key, read files.
 *
 * Never link this into device code. It signs with the public test keys in
 * test-keys/ (see test-keys/README.md) so that tests can make valid
 * sig-sha256-ecdsa signatures over data they build themselves.
 *
 * OTA_TEST_KEYS_DIR (a string literal, set by CMake) is the test-keys folder.
 */
#ifndef OTA_TEST_SIGN_H
#define OTA_TEST_SIGN_H

#include <stddef.h>
#include <stdint.h>

/** Largest DER ECDSA P-256 signature (SEQUENCE of two 33-byte INTEGERs). */
#define OTA_TEST_SIG_MAX 72u

/**
 * Sign data with ECDSA over its SHA-256, like `openssl dgst -sha256 -sign`.
 *
 * @param key_pem_path path of a PEM private key (e.g. OTA_TEST_KEYS_DIR
 *                     "/codesign-test.key"); an EC key gives a DER
 *                     SEQUENCE{r,s} signature (sig-sha256-ecdsa).
 * @param data         bytes to sign; may be NULL only when len is 0.
 * @param len          length of data.
 * @param sig          receives the DER signature.
 * @param sig_cap      size of sig (OTA_TEST_SIG_MAX is enough for P-256).
 * @param sig_len      receives the signature's length.
 * @return 0 on success; -1 on any failure (bad arguments, unreadable key,
 *         signing error, signature larger than sig_cap).
 */
int ota_test_sign_sha256_ecdsa(const char *key_pem_path, const uint8_t *data, size_t len,
                               uint8_t *sig, size_t sig_cap, size_t *sig_len);

/**
 * Read a whole file into buf.
 * @param path path of the file.
 * @param buf  receives the contents.
 * @param cap  size of buf.
 * @param len  receives the file's length.
 * @return 0 on success; -1 when the file cannot be read or is larger than cap.
 */
int ota_test_read_file(const char *path, uint8_t *buf, size_t cap, size_t *len);

#endif /* OTA_TEST_SIGN_H */
