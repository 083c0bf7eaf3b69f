/* otter: image header encode/decode (see ota_image_header.h). */
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
        ota_get_le32(buf + 28) != ota_crc32(0, buf, 28)) {
        return OTA_ERR_BAD_IMAGE;
    }
    uint16_t format = ota_get_le16(buf + 6);
    if (format != OTA_IMAGE_HEADER_FORMAT && format != OTA_IMAGE_HEADER_FORMAT_2) {
        return OTA_ERR_BAD_IMAGE;
    }
    memset(out, 0, sizeof *out);
    out->format = format;
    out->version = ota_get_le32(buf + 8);
    out->image_size = ota_get_le32(buf + 12);
    out->flags = ota_get_le32(buf + 16);
    if (format == OTA_IMAGE_HEADER_FORMAT_2) {
        out->security_counter = ota_get_le16(buf + 20);
        out->device_type_tag = ota_get_le32(buf + 24);
        /* A format 2 header says something in every field it has: one that
         * says nothing new would be format 1, and reserved bytes stay 0. */
        if (ota_get_le16(buf + 22) != 0u ||
            (out->security_counter == 0u && out->device_type_tag == 0u)) {
            return OTA_ERR_BAD_IMAGE;
        }
    }
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
    int v2 = hdr->security_counter != 0u || hdr->device_type_tag != 0u;
    memset(out, 0, OTA_IMAGE_HEADER_SIZE);
    ota_put_le32(out, OTA_IMAGE_MAGIC);
    ota_put_le16(out + 4, (uint16_t)OTA_IMAGE_HEADER_SIZE);
    ota_put_le16(out + 6, (uint16_t)(v2 ? OTA_IMAGE_HEADER_FORMAT_2 : OTA_IMAGE_HEADER_FORMAT));
    ota_put_le32(out + 8, hdr->version);
    ota_put_le32(out + 12, hdr->image_size);
    ota_put_le32(out + 16, hdr->flags);
    if (v2) {
        ota_put_le16(out + 20, hdr->security_counter);
        ota_put_le32(out + 24, hdr->device_type_tag);
    }
    ota_put_le32(out + 28, ota_crc32(0, out, 28));
    return OTA_OK;
}
