/*
 * otter: the bootloader's power-safe state record.
 *
 * Two copies, each at the start of its own flash sector. A change never
 * touches the copy that holds the current state: it erases the other copy's
 * sector and programs the new record there with the next sequence number.
 * A reader takes the valid copy with the higher sequence number, so a power
 * cut at any point of a change leaves either the old or the new state.
 *
 * Encoding, little endian. Formats 1 and 2 (OTA_BOOT_RECORD_SIZE = 116 bytes),
 * in builds without OTA_SIG_RSA:
 *
 *   offset size field
 *   0      4    magic "OTBR" (0x5242544f)
 *   4      2    format version (1 or 2)
 *   6      2    encoded size (116)
 *   8      4    sequence number (serial arithmetic: newer = (int32_t)(a - b) > 0)
 *   12     1    state (ota_boot_state_t)
 *   13     1    active slot (0 or 1): the committed image
 *   14     1    trial slot (0 or 1): the image on trial (state TRIAL)
 *   15     1    boot attempts left for the trial
 *   16     4    minimum version (anti-rollback)
 *   20     4    version of the active image
 *   24     4    version of the trial image
 *   28     4    size of the trial image in bytes
 *   32     1    length of the trial image's signature (0 .. 72)
 *   33     1    trial booted: 1 once the bootloader has started the trial image
 *   34     2    format 2: minimum security counter (anti-rollback);
 *               format 1: reserved (0), the minimum is 0
 *   36     4    signer: key id (ota_verify_key_id) of the trial image's signer
 *   40     72   trial image signature (DER), zero padded
 *   112    4    CRC-32 of bytes 0 .. 111
 *
 * Format 3 (OTA_BOOT_RECORD_SIZE = 432 bytes), in builds with OTA_SIG_RSA,
 * whose signatures take up to 384 bytes (RSA-3072): the same fields at the
 * same offsets, except
 *   32     1    reserved (0)
 *   34     2    length of the trial image's signature (0 .. 384)
 *   40     384  trial image signature (ECDSA DER or RSA), zero padded
 *   424    2    minimum security counter (always present in format 3)
 *   426    2    reserved (0)
 *   428    4    CRC-32 of bytes 0 .. 427
 * The method is not stored: it is the one of the signer's key (key id). The
 * bootloader and the application are built with the same OTA_SIG_RSA; a
 * record of the other format is not legal.
 *
 * A record is legal only if every field is in range and the CRC matches.
 *
 * Compatibility: a record whose minimum security counter is 0 is written as
 * format 1, byte for byte what earlier code writes and reads. Once an image
 * with a security counter is confirmed the record is format 2, which code that
 * knows only format 1 refuses as corrupt: it can then neither boot nor
 * request a trial, rather than write a record that forgets the minimum.
 *
 * A new device has both record sectors erased; production must erase them.
 * Reading tells three situations apart: a legal copy (the newest wins), no
 * legal copy but an erased one (a new device, or its first write was cut),
 * and neither (outside corruption: nothing is trusted).
 */
#ifndef OTTER_OTA_BOOT_RECORD_H
#define OTTER_OTA_BOOT_RECORD_H

#include "otter/ota_config_defaults.h"

#include <stdint.h>

#include "otter/ota_err.h"
#include "otter/ota_flash.h"

/** Longest signature a record holds: 72 (DER ECDSA P-256), 384 with OTA_SIG_RSA. */
#define OTA_BOOT_SIG_MAX (OTA_SIG_RSA ? 384u : 72u)
/** Encoded size of a record in bytes: 116, or 432 with OTA_SIG_RSA. */
#define OTA_BOOT_RECORD_SIZE (OTA_SIG_RSA ? 432u : 116u)
/** Magic number: the bytes "OTBR". */
#define OTA_BOOT_RECORD_MAGIC 0x5242544fu
/** Record format of a state without a minimum security counter: 1, or 3 with
 * OTA_SIG_RSA (whose records always carry the counter). */
#define OTA_BOOT_RECORD_FORMAT (OTA_SIG_RSA ? 3u : 1u)
/** Record format of a state with a minimum security counter (without OTA_SIG_RSA). */
#define OTA_BOOT_RECORD_FORMAT_2 2u
/* OTA_BOOT_READ_ATTEMPTS, reads of a record copy before it counts as unreadable,
 * comes from ota_config_defaults.h. */

/** Largest boot-attempt budget. */
#define OTA_BOOT_MAX_ATTEMPTS 15u

/** Update state kept by the bootloader. */
typedef enum ota_boot_state {
    OTA_BOOT_STATE_NONE = 0,      /**< no update yet: the active slot boots */
    OTA_BOOT_STATE_TRIAL = 1,     /**< a new image is on trial with a boot budget */
    OTA_BOOT_STATE_CONFIRMED = 2, /**< the last new image was confirmed */
    OTA_BOOT_STATE_REVERTED = 3,  /**< the last new image was refused or ran out of attempts */
} ota_boot_state_t;

/** The decoded record. */
typedef struct ota_boot_record {
    uint32_t seq;
    uint8_t state;
    uint8_t active_slot;
    uint8_t trial_slot;
    uint8_t attempts_left;
    uint32_t min_version;
    /** Lowest security counter an image may carry (anti-rollback). */
    uint16_t min_counter;
    uint32_t active_version;
    uint32_t trial_version;
    uint32_t trial_size;
    uint16_t sig_len;
    uint8_t trial_booted;
    uint32_t signer;
    uint8_t sig[OTA_BOOT_SIG_MAX];
} ota_boot_record_t;

/**
 * Encode rec into out[OTA_BOOT_RECORD_SIZE].
 * @return OTA_OK or OTA_ERR_INVALID_ARG (NULL, or a field out of range).
 */
ota_err_t ota_boot_record_encode(const ota_boot_record_t *rec, uint8_t *out);

/**
 * Decode and check a record.
 * @return OTA_OK; OTA_ERR_CORRUPT (wrong magic, format, size or CRC, or a
 *         field out of range); OTA_ERR_INVALID_ARG (NULL).
 */
ota_err_t ota_boot_record_decode(const uint8_t *in, ota_boot_record_t *rec);

/**
 * Read both copies and return the newest legal one. Each copy is read up to
 * OTA_BOOT_READ_ATTEMPTS times; one that still cannot be read (the ECC error
 * a torn program leaves) counts as not legal, so the other one is used, and
 * the next store rewrites the unreadable one.
 * @param copy_addr flash addresses of the two copies (each a sector start).
 * @param rec       the newest legal record.
 * @param which     set to the copy (0 or 1) rec came from; may be NULL.
 * @return OTA_OK; OTA_ERR_NOT_FOUND (no legal copy and at least one erased:
 *         a new device, or its first write was cut); OTA_ERR_CORRUPT (no legal
 *         copy, none erased); a read error when no copy is legal, none is
 *         erased and one could not be read.
 */
ota_err_t ota_boot_record_load(const ota_flash_t *flash, const uint32_t copy_addr[2],
                               ota_boot_record_t *rec, uint8_t *which);

/**
 * Store rec as the new state: rec->seq is set to one more than the newest
 * legal copy's, then the other copy's sector is erased and programmed.
 * @return OTA_OK; OTA_ERR_INVALID_ARG; a flash error (the old state stays).
 */
ota_err_t ota_boot_record_store(const ota_flash_t *flash, const uint32_t copy_addr[2],
                                ota_boot_record_t *rec);

#endif /* OTTER_OTA_BOOT_RECORD_H */
