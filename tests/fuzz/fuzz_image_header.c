/*
 * libFuzzer harness: the image header decoder. Any bytes either decode to a
 * header that encodes back to the same 32 bytes, or are refused as a bad
 * image; with the first byte odd the magic, size, format and CRC are fixed up
 * so that the checks behind them are reached too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otter/ota_bytes.h"
#include "otter/ota_crc32.h"
#include "otter/ota_image_header.h"

static void check(const uint8_t *raw, size_t len)
{
    ota_image_header_t hdr;
    uint8_t enc[OTA_IMAGE_HEADER_SIZE];
    ota_err_t err = ota_image_header_decode(raw, len, &hdr);
    if (err != OTA_OK) {
        if (err != OTA_ERR_BAD_IMAGE) {
            abort();
        }
        return;
    }
    if (len < OTA_IMAGE_HEADER_SIZE || hdr.image_size < OTA_IMAGE_HEADER_SIZE ||
        ota_image_header_encode(&hdr, enc) != OTA_OK) {
        abort();
    }
    /* Reserved bytes are covered by the CRC but not kept: compare the rest. */
    if (memcmp(enc, raw, 20) != 0) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t raw[OTA_IMAGE_HEADER_SIZE];
    check(data, size);
    if (size >= sizeof raw && (data[0] & 1u)) {
        memcpy(raw, data, sizeof raw);
        ota_put_le32(raw, OTA_IMAGE_MAGIC);
        ota_put_le16(raw + 4, OTA_IMAGE_HEADER_SIZE);
        ota_put_le16(raw + 6, OTA_IMAGE_HEADER_FORMAT);
        ota_put_le32(raw + 28, ota_crc32(0, raw, 28));
        check(raw, sizeof raw);
    }
    return 0;
}
