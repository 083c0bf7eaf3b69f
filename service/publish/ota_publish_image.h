/*
 * otter (CLI job create and web console): firmware versions and otter's 32-byte image header.
 */
#ifndef OTA_PUBLISH_IMAGE_H
#define OTA_PUBLISH_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "otter/ota_image_header.h"
#include "otter/ota_version.h"

/** Outcome of ota_publish_image_prepare(). */
typedef enum ota_publish_image_result {
    /** The file had no header: a header was prepended. */
    OTA_PUBLISH_IMAGE_WRAPPED = 0,
    /** The file already starts with a valid header of the requested version. */
    OTA_PUBLISH_IMAGE_AS_IS = 1,
    /** The file has a valid header with another version (*found_version). */
    OTA_PUBLISH_IMAGE_VERSION_MISMATCH = -1,
    /** The file starts with the magic but its header is damaged. */
    OTA_PUBLISH_IMAGE_BAD_HEADER = -2,
    /** Empty file, too large, or out of memory. */
    OTA_PUBLISH_IMAGE_BAD_SIZE = -3,
} ota_publish_image_result_t;

/**
 * Make the firmware image to publish from a file's bytes.
 *
 * A file that does not start with the image magic gets a header prepended
 * (ota_publish_image_wrap() with fields). A file that does must carry a
 * header that decodes and has exactly fields' version; it is then used as is
 * (the caller checks its other fields).
 *
 * @param data, len        the file's bytes.
 * @param fields           the version the job announces, and the security
 *                         counter and device type tag a new header gets.
 * @param out, out_len     receive the image (heap, caller frees) on success.
 * @param found_version    receives the header's version on a mismatch.
 * @return a ota_publish_image_result_t.
 */
ota_publish_image_result_t ota_publish_image_prepare(const uint8_t *data, size_t len,
                                                     const ota_image_header_t *fields,
                                                     uint8_t **out, size_t *out_len,
                                                     uint32_t *found_version);

/**
 * Prepend a header to firmware: version, security counter and device type tag
 * from fields, image size = header + len (fields' size and flags are ignored).
 * @param out, out_len receive the image (heap, caller frees).
 * @return 0, or -1 (empty, too large, out of memory).
 */
int ota_publish_image_wrap(const uint8_t *data, size_t len, const ota_image_header_t *fields,
                           uint8_t **out, size_t *out_len);

#endif /* OTA_PUBLISH_IMAGE_H */
