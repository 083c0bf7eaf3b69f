/* otter TEST SUPPORT ONLY: deterministic test images and their signatures. */
#include "ota_test_image.h"

#include <string.h>

#include "otter/ota_image_header.h"
#include "ota_test_sign.h"

void ota_test_image_make(uint8_t *buf, uint32_t len, uint32_t version, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1u;
    for (uint32_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (uint8_t)x;
    }
    if (len >= OTA_IMAGE_HEADER_SIZE) {
        ota_image_header_t hdr = {.version = version, .image_size = len};
        (void)ota_image_header_encode(&hdr, buf);
    }
}

int ota_test_image_sign(const uint8_t *buf, uint32_t len, uint8_t sig[OTA_PAL_SIGNATURE_MAX],
                        size_t *sig_len)
{
    return ota_test_sign_sha256_ecdsa(OTA_TEST_KEYS_DIR "/codesign-test.key", buf, len, sig,
                                      OTA_PAL_SIGNATURE_MAX, sig_len);
}

ota_pal_file_t ota_test_image_file(uint32_t len, const uint8_t *sig, size_t sig_len,
                                   const char *cert_name)
{
    ota_pal_file_t f;
    memset(&f, 0, sizeof f);
    f.path = "firmware.bin";
    f.size = len;
    f.file_type = 0;
    f.cert_name = cert_name;
    f.sig_method = OTA_SIG_SHA256_ECDSA;
    f.signature = sig;
    f.signature_len = sig_len;
    return f;
}
