/*
 * otter: the image header at the start of every firmware image.
 *
 * 32 bytes, little endian, at offset 0 of a firmware file (file type 0). The
 * code signature covers the whole file, header included, so the header is
 * trusted once the signature verifies. The bootloader reads the version from
 * it for anti-rollback; the agent compares versions after a reboot.
 *
 *   offset size field
 *   0      4    magic "OTIM" (0x4d49544f)
 *   4      2    header size in bytes (32)
 *   6      2    header format version (1)
 *   8      4    image version: major << 24 | minor << 16 | build
 *   12     4    image size in bytes, header included
 *   16     4    flags (0; reserved)
 *   20     8    reserved (0)
 *   28     4    CRC-32 of bytes 0 .. 27
 */
#ifndef OTA_IMAGE_HEADER_H
#define OTA_IMAGE_HEADER_H

#include "otter/ota_config_defaults.h"

#include <stddef.h>
#include <stdint.h>

#include "otter/ota_err.h"

/** Size of the encoded header in bytes. */
#define OTA_IMAGE_HEADER_SIZE 32u
/** Magic number: the bytes "OTIM". */
#define OTA_IMAGE_MAGIC 0x4d49544fu
/** Header format this code writes and reads. */
#define OTA_IMAGE_HEADER_FORMAT 1u

/** A decoded image header. */
typedef struct ota_image_header {
    /** major << 24 | minor << 16 | build, as in the agent's "updatedBy". */
    uint32_t version;
    /** Size of the whole image in bytes, header included. */
    uint32_t image_size;
    /** Flags (reserved, 0). */
    uint32_t flags;
} ota_image_header_t;

/** Compose a version number from its parts (build is 16 bits). */
static inline uint32_t ota_version_make(uint8_t major, uint8_t minor, uint16_t build)
{
    return ((uint32_t)major << 24) | ((uint32_t)minor << 16) | build;
}

/**
 * Decode and check a header.
 * @param buf at least len bytes from the start of an image.
 * @return OTA_OK; OTA_ERR_INVALID_ARG (NULL); OTA_ERR_BAD_IMAGE (too short,
 *         wrong magic, size or format, CRC mismatch, image_size < header).
 */
ota_err_t ota_image_header_decode(const uint8_t *buf, size_t len, ota_image_header_t *out);

/**
 * Encode a header into out[OTA_IMAGE_HEADER_SIZE].
 * @return OTA_OK or OTA_ERR_INVALID_ARG.
 */
ota_err_t ota_image_header_encode(const ota_image_header_t *hdr, uint8_t *out);

#endif /* OTA_IMAGE_HEADER_H */
