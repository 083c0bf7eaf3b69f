/* otter: CRC-32 (IEEE 802.3, reflected, as zlib's crc32) for on-flash records. */
#ifndef OTTER_OTA_CRC32_H
#define OTTER_OTA_CRC32_H

#include "otter/ota_config_defaults.h"

#include <stddef.h>
#include <stdint.h>

/**
 * Continue a CRC-32 over len bytes. Start with crc = 0; the result of one call
 * is the crc argument of the next. Same values as zlib's crc32().
 */
uint32_t ota_crc32(uint32_t crc, const void *data, size_t len);

#endif /* OTTER_OTA_CRC32_H */
