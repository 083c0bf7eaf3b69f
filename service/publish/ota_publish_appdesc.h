/*
 * otter (CLI and web console): the version a firmware file states about
 * itself, where it carries an application descriptor.
 *
 * Known descriptor: ESP-IDF's esp_app_desc_t. An ESP-IDF application image
 * starts with byte 0xE9 (24-byte image header, 8-byte first segment header);
 * the descriptor opens the first segment, at offset 32, with the magic word
 * 0xABCD5432 (little endian), and holds the application's version as a
 * NUL-padded string of 32 bytes at offset 48 (PROJECT_VER).
 */
#ifndef OTA_PUBLISH_APPDESC_H
#define OTA_PUBLISH_APPDESC_H

#include <stddef.h>
#include <stdint.h>

/** Longest descriptor version text, with its NUL. */
#define OTA_PUBLISH_APPDESC_VERSION_MAX 33u

/**
 * Read the version string of the application descriptor, if there is one.
 * @param out receives the text (NUL-terminated, non-printable bytes as '?').
 * @return 1 when data carries a descriptor, 0 when it does not.
 */
int ota_publish_appdesc_version(const uint8_t *data, size_t len,
                                char out[OTA_PUBLISH_APPDESC_VERSION_MAX]);

/**
 * Check that firmware carrying a descriptor states this version ("X.Y.Z",
 * or "vX.Y.Z"). Firmware without a descriptor passes.
 * @param name how to call the file in the error ("'fw.bin'").
 * @param version_flag how the caller names the version in advice ("--version").
 * @param err  receives "<what is wrong>; <what to do>" on a mismatch.
 * @return 0, or -1 with the text in err.
 */
int ota_publish_appdesc_check(const uint8_t *data, size_t len, uint32_t version, const char *name,
                              const char *version_flag, char *err, size_t cap);

#endif /* OTA_PUBLISH_APPDESC_H */
