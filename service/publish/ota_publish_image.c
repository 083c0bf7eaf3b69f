/* otter (CLI job create and web console): versions and image wrapping with the shared header codec.
 */
#include "ota_publish_image.h"

#include <stdio.h>
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

/* Raises the floor to one stream's image counter, if higher. */
static int floor_of_stream(void *ctx, const ota_store_stream_t *stream)
{
    ota_publish_counter_floor_t *floor = ctx;
    uint8_t head[OTA_IMAGE_HEADER_SIZE];
    ota_image_header_t hdr;
    if (stream->n_files == 0 || stream->files[0].file_id != 0) {
        return 0;
    }
    FILE *f = fopen(stream->files[0].path, "rb");
    size_t n = f != NULL ? fread(head, 1, sizeof head, f) : 0;
    if (f != NULL) {
        fclose(f);
    }
    if (n == sizeof head && ota_image_header_decode(head, sizeof head, &hdr) == OTA_OK &&
        hdr.security_counter > floor->counter) {
        floor->counter = hdr.security_counter;
        snprintf(floor->stream_id, sizeof floor->stream_id, "%s", stream->stream_id);
    }
    return 0;
}

int ota_publish_image_counter_floor(ota_store_t *store, ota_publish_counter_floor_t *floor)
{
    memset(floor, 0, sizeof *floor);
    if (ota_store_stream_list(store, floor_of_stream, floor) != OTA_STORE_OK) {
        memset(floor, 0, sizeof *floor);
        return -1;
    }
    return 0;
}
