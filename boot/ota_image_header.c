/* otter: image header encode/decode. */
#include "otter/ota_image_header.h"

#include <string.h>

#include "otter/ota_bytes.h"
#include "otter/ota_crc32.h"

ota_err_t ota_image_header_decode(const uint8_t *buf, size_t len, ota_image_header_t *out)
{
    if (buf == NULL || out == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    if (len < OTA_IMAGE_HEADER_SIZE || ota_get_le32(buf) != OTA_IMAGE_MAGIC ||
        ota_get_le16(buf + 4) != OTA_IMAGE_HEADER_SIZE ||
        ota_get_le16(buf + 6) != OTA_IMAGE_HEADER_FORMAT ||
        ota_get_le32(buf + 28) != ota_crc32(0, buf, 28)) {
        return OTA_ERR_BAD_IMAGE;
    }
    out->version = ota_get_le32(buf + 8);
    out->image_size = ota_get_le32(buf + 12);
    out->flags = ota_get_le32(buf + 16);
    if (out->image_size < OTA_IMAGE_HEADER_SIZE) {
        return OTA_ERR_BAD_IMAGE;
    }
    return OTA_OK;
}

ota_err_t ota_image_header_encode(const ota_image_header_t *hdr, uint8_t *out)
{
    if (hdr == NULL || out == NULL || hdr->image_size < OTA_IMAGE_HEADER_SIZE) {
        return OTA_ERR_INVALID_ARG;
    }
    memset(out, 0, OTA_IMAGE_HEADER_SIZE);
    ota_put_le32(out, OTA_IMAGE_MAGIC);
    ota_put_le16(out + 4, (uint16_t)OTA_IMAGE_HEADER_SIZE);
    ota_put_le16(out + 6, (uint16_t)OTA_IMAGE_HEADER_FORMAT);
    ota_put_le32(out + 8, hdr->version);
    ota_put_le32(out + 12, hdr->image_size);
    ota_put_le32(out + 16, hdr->flags);
    ota_put_le32(out + 28, ota_crc32(0, out, 28));
    return OTA_OK;
}
