/*
 * otter on mps2-an386: the provisioning sector, the device's identity as the
 * production line writes it into the last flash sector:
 *
 *   offset size field
 *   0      4    magic "OTPV" (0x5650544f, little endian)
 *   4      4    total length of the record (header, strings, CRC)
 *   8      ...  five strings, each a 2-byte little-endian length then its
 *               bytes (no NUL): thing name, MQTT username, MQTT password,
 *               certificate name ("certfile" in job documents), the
 *               code-signing certificate or public key (PEM)
 *   n      4    CRC-32 of every byte before it
 *
 * The bootloader takes the signer from it, the application the identity.
 */
#ifndef BOARD_PROVISION_H
#define BOARD_PROVISION_H

#include <stddef.h>
#include <stdint.h>

#include "otter/ota_err.h"

#define BOARD_PROVISION_MAGIC 0x5650544fu
/** Longest thing name, username, password or certificate name. */
#define BOARD_PROVISION_NAME_MAX 128u

/** The decoded record; strings are NUL-terminated copies. */
typedef struct board_provision {
    char thing[BOARD_PROVISION_NAME_MAX + 1u];
    char username[BOARD_PROVISION_NAME_MAX + 1u];
    char password[BOARD_PROVISION_NAME_MAX + 1u];
    char cert_name[BOARD_PROVISION_NAME_MAX + 1u];
    /** The signer's PEM, inside the record's bytes (not copied). */
    const uint8_t *pem;
    size_t pem_len;
} board_provision_t;

/**
 * Decode a provisioning record.
 * @param raw the sector's bytes (len of them); pem points into them.
 * @return OTA_OK; OTA_ERR_NOT_FOUND (no magic: not provisioned);
 *         OTA_ERR_CORRUPT (lengths or CRC wrong, a name empty or too long);
 *         OTA_ERR_INVALID_ARG (NULL).
 */
ota_err_t board_provision_decode(const uint8_t *raw, size_t len, board_provision_t *out);

/**
 * Encode a record (the production line's side).
 * @return its length; OTA_ERR_OUT_OF_MEMORY (cap too small);
 *         OTA_ERR_INVALID_ARG (NULL, a name empty or longer than
 *         BOARD_PROVISION_NAME_MAX, no PEM).
 */
int32_t board_provision_encode(uint8_t *buf, size_t cap, const char *thing, const char *username,
                               const char *password, const char *cert_name, const uint8_t *pem,
                               size_t pem_len);

#endif /* BOARD_PROVISION_H */
