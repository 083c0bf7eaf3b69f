/* otter: little-endian field access for on-flash formats (no alignment needed). */
#ifndef OTTER_OTA_BYTES_H
#define OTTER_OTA_BYTES_H

#include "otter/ota_config_defaults.h"

#include <stdint.h>

/** Store v at p as 2 little-endian bytes. */
static inline void ota_put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/** Store v at p as 4 little-endian bytes. */
static inline void ota_put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/** Load 2 little-endian bytes at p. */
static inline uint16_t ota_get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

/** Load 4 little-endian bytes at p. */
static inline uint32_t ota_get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

#endif /* OTTER_OTA_BYTES_H */
