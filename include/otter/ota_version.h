/*
 * otter: firmware versions, one grammar for the CLI, the service, the device
 * and the bootloader.
 *
 * A version is three decimal parts "MAJOR.MINOR.BUILD" (0-255, 0-255,
 * 0-65535) packed as major << 24 | minor << 16 | build, so that versions
 * compare as numbers. The text form has exactly three parts of ASCII digits
 * without leading zeros ("0" itself is fine), nothing before or after: no
 * sign, no spaces, no 'v'. Every version thus has one text form, and texts
 * compare equal exactly when the versions do. C99, no heap, no locale, no libc formatting.
 */
#ifndef OTTER_OTA_VERSION_H
#define OTTER_OTA_VERSION_H

#include "otter/ota_config_defaults.h"

#include <stddef.h>
#include <stdint.h>

/** Longest text form ("255.255.65535") plus its NUL. */
#define OTA_VERSION_TEXT_MAX 14u

/** Compose a version number from its parts (build is 16 bits). */
static inline uint32_t ota_version_make(uint8_t major, uint8_t minor, uint16_t build)
{
    return ((uint32_t)major << 24) | ((uint32_t)minor << 16) | build;
}

/**
 * Parse exactly len bytes of text as "MAJOR.MINOR.BUILD".
 * @param text    the characters (need not be NUL-terminated).
 * @param len     how many of them form the version.
 * @param version receives the packed version on success; untouched otherwise.
 * @return 0, or -1 when the text breaks the grammar or a part is out of range.
 */
int ota_version_parse_n(const char *text, size_t len, uint32_t *version);

/**
 * Parse a NUL-terminated "MAJOR.MINOR.BUILD" (see ota_version_parse_n).
 * @return 0, or -1 (also for NULL).
 */
int ota_version_parse(const char *text, uint32_t *version);

/**
 * Format a version as "MAJOR.MINOR.BUILD" into out (NUL-terminated).
 * @return the text's length (without the NUL).
 */
size_t ota_version_format(uint32_t version, char out[OTA_VERSION_TEXT_MAX]);

#endif /* OTTER_OTA_VERSION_H */
