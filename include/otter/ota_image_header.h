/*
 * otter: the image header at the start of every firmware image.
 *
 * 32 bytes, little endian, at offset 0 of a firmware file (file type 0). The
 * code signature covers the whole file, header included, so the header is
 * trusted once the signature verifies. The bootloader reads the version and
 * the security counter from it for anti-rollback; the agent compares versions
 * after a reboot.
 *
 *   offset size field
 *   0      4    magic "OTIM" (0x4d49544f)
 *   4      2    header size in bytes (32)
 *   6      2    header format (1 or 2)
 *   8      4    image version: major << 24 | minor << 16 | build (ota_version.h)
 *   12     4    image size in bytes, header included
 *   16     4    flags (0; reserved)
 *   20     2    format 2: security counter (anti-rollback); format 1: reserved
 *   22     2    reserved (0)
 *   24     4    format 2: device type tag (ota_device_type_tag; 0 = any
 *               type); format 1: reserved
 *   28     4    CRC-32 of bytes 0 .. 27
 *
 * Compatibility: an image without a security counter and a device type is
 * encoded as format 1, byte for byte what every otter bootloader reads. One
 * with either is format 2; a bootloader that knows only format 1 refuses it
 * (it fails closed, never boots an image whose rules it cannot enforce). A
 * format 1 image has security counter 0 and fits any device type.
 */
#ifndef OTTER_OTA_IMAGE_HEADER_H
#define OTTER_OTA_IMAGE_HEADER_H

#include "otter/ota_config_defaults.h"

#include <stddef.h>
#include <stdint.h>

#include "otter/ota_device_type.h"
#include "otter/ota_err.h"
#include "otter/ota_version.h"

/** Size of the encoded header in bytes. */
#define OTA_IMAGE_HEADER_SIZE 32u
/** Magic number: the bytes "OTIM". */
#define OTA_IMAGE_MAGIC 0x4d49544fu
/** Header format of images without security counter and device type. */
#define OTA_IMAGE_HEADER_FORMAT 1u
/** Header format of images with a security counter or a device type. */
#define OTA_IMAGE_HEADER_FORMAT_2 2u

/** A decoded image header. */
typedef struct ota_image_header {
    /** major << 24 | minor << 16 | build, as in the agent's "updatedBy". */
    uint32_t version;
    /** Size of the whole image in bytes, header included. */
    uint32_t image_size;
    /** Flags (reserved, 0). */
    uint32_t flags;
    /** Security counter: the bootloader refuses an image whose counter is
     * below the minimum it stores (0 in format 1). */
    uint16_t security_counter;
    /** Device type tag (ota_device_type_tag), 0 for any type (0 in format 1). */
    uint32_t device_type_tag;
    /** Header format, set by decode (1 or 2); encode picks it itself. */
    uint16_t format;
} ota_image_header_t;

/**
 * Decode and check a header (format 1 or 2).
 * @param buf at least len bytes from the start of an image.
 * @return OTA_OK; OTA_ERR_INVALID_ARG (NULL); OTA_ERR_BAD_IMAGE (too short,
 *         wrong magic, size or format, CRC mismatch, image_size < header,
 *         nonzero reserved bytes in format 2).
 */
ota_err_t ota_image_header_decode(const uint8_t *buf, size_t len, ota_image_header_t *out);

/**
 * Encode a header into out[OTA_IMAGE_HEADER_SIZE]: format 1 when the
 * security counter and the device type tag are 0, format 2 otherwise
 * (hdr->format is ignored).
 * @return OTA_OK or OTA_ERR_INVALID_ARG.
 */
ota_err_t ota_image_header_encode(const ota_image_header_t *hdr, uint8_t *out);

#endif /* OTTER_OTA_IMAGE_HEADER_H */
