/* otter (CLI job create and web console): versions and image wrapping with the shared header codec.
 */
#include "ota_publish_image.h"

#include <stdlib.h>
#include <string.h>

#include "otter/ota_image_header.h"

ota_publish_image_result_t ota_publish_image_prepare(const uint8_t *data, size_t len,
                                                     const ota_image_header_t *fields,
                                                     uint8_t **out, size_t *out_len,
                                                     uint32_t *found_version)
{
    *out = NULL;
    *out_len = 0;
    if (len == 0 || len > UINT32_MAX - OTA_IMAGE_HEADER_SIZE) {
        return OTA_PUBLISH_IMAGE_BAD_SIZE;
    }
    static const uint8_t magic[4] = {'O', 'T', 'I', 'M'};
    if (len >= 4 && memcmp(data, magic, 4) == 0) {
        ota_image_header_t hdr;
        if (ota_image_header_decode(data, len, &hdr) != OTA_OK || hdr.image_size != len) {
            return OTA_PUBLISH_IMAGE_BAD_HEADER;
        }
        if (hdr.version != fields->version) {
            *found_version = hdr.version;
            return OTA_PUBLISH_IMAGE_VERSION_MISMATCH;
        }
        *out = malloc(len);
        if (*out == NULL) {
            return OTA_PUBLISH_IMAGE_BAD_SIZE;
        }
        memcpy(*out, data, len);
        *out_len = len;
        return OTA_PUBLISH_IMAGE_AS_IS;
    }
    return ota_publish_image_wrap(data, len, fields, out, out_len) == 0
               ? OTA_PUBLISH_IMAGE_WRAPPED
               : OTA_PUBLISH_IMAGE_BAD_SIZE;
}

int ota_publish_image_wrap(const uint8_t *data, size_t len, const ota_image_header_t *fields,
                           uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (len == 0 || len > UINT32_MAX - OTA_IMAGE_HEADER_SIZE) {
        return -1;
    }
    size_t total = len + OTA_IMAGE_HEADER_SIZE;
    uint8_t *img = malloc(total);
    if (img == NULL) {
        return -1;
    }
    ota_image_header_t hdr = *fields;
    hdr.image_size = (uint32_t)total;
    hdr.flags = 0;
    if (ota_image_header_encode(&hdr, img) != OTA_OK) {
        free(img);
        return -1;
    }
    memcpy(img + OTA_IMAGE_HEADER_SIZE, data, len);
    *out = img;
    *out_len = total;
    return 0;
}
