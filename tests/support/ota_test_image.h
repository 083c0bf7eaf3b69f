/*
 * otter TEST SUPPORT ONLY: deterministic test images and their signatures.
 */
#ifndef OTA_TEST_IMAGE_H
#define OTA_TEST_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "otter/ota_pal.h"

/**
 * Fill buf[0..len) with a test image: when len >= 32 an image header with
 * the given version and size followed by bytes from a PRNG seeded with seed;
 * shorter files are PRNG bytes only.
 */
void ota_test_image_make(uint8_t *buf, uint32_t len, uint32_t version, uint32_t seed);

/**
 * Sign buf[0..len) with the trusted test key (test-keys/codesign-test.key).
 * @return 0 on success, -1 on failure.
 */
int ota_test_image_sign(const uint8_t *buf, uint32_t len, uint8_t sig[OTA_PAL_SIGNATURE_MAX],
                        size_t *sig_len);

/** A file description for buf's size, a signature and a signer name. */
ota_pal_file_t ota_test_image_file(uint32_t len, const uint8_t *sig, size_t sig_len,
                                   const char *cert_name);

#endif /* OTA_TEST_IMAGE_H */
