/* otter (CLI job create and web console): versions and image wrapping with the shared header codec.
 */
#include "ota_publish_image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otter/ota_image_header.h"

/* Parses one decimal component up to a terminator; advances *p. */
static int parse_part(const char **p, char term, unsigned long max, unsigned long *out)
{
    const char *s = *p;
    unsigned long v = 0;
    size_t digits = 0;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (unsigned long)(*s - '0');
        if (v > max || ++digits > 5) {
            return -1;
        }
        s++;
    }
    if (digits == 0 || *s != term) {
        return -1;
    }
    *out = v;
    *p = term ? s + 1 : s;
    return 0;
}

int ota_publish_version_parse(const char *text, uint32_t *version)
{
    unsigned long major, minor, build;
    const char *p = text;
    if (text == NULL || parse_part(&p, '.', 255, &major) != 0 ||
        parse_part(&p, '.', 255, &minor) != 0 || parse_part(&p, '\0', 65535, &build) != 0) {
        return -1;
    }
    *version = ota_version_make((uint8_t)major, (uint8_t)minor, (uint16_t)build);
    return 0;
}

void ota_publish_version_format(uint32_t version, char out[16])
{
    snprintf(out, 16, "%u.%u.%u", (unsigned)(version >> 24), (unsigned)((version >> 16) & 0xffu),
             (unsigned)(version & 0xffffu));
}

ota_publish_image_result_t ota_publish_image_prepare(const uint8_t *data, size_t len,
                                                     uint32_t version, uint8_t **out,
                                                     size_t *out_len, uint32_t *found_version)
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
        if (hdr.version != version) {
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
    size_t total = len + OTA_IMAGE_HEADER_SIZE;
    uint8_t *img = malloc(total);
    if (img == NULL) {
        return OTA_PUBLISH_IMAGE_BAD_SIZE;
    }
    ota_image_header_t hdr = {.version = version, .image_size = (uint32_t)total, .flags = 0};
    if (ota_image_header_encode(&hdr, img) != OTA_OK) {
        free(img);
        return OTA_PUBLISH_IMAGE_BAD_HEADER;
    }
    memcpy(img + OTA_IMAGE_HEADER_SIZE, data, len);
    *out = img;
    *out_len = total;
    return OTA_PUBLISH_IMAGE_WRAPPED;
}
