/* otter: the bootloader's power-safe state record (see ota_boot_record.h). */
#include "otter/ota_boot_record.h"

#include <string.h>

#include "otter/ota_bytes.h"
#include "otter/ota_crc32.h"

/* Where the signature length is kept: one byte at 32 (formats 1 and 2), or two
 * at 34 (format 3, OTA_SIG_RSA). */
#define SIG_LEN_AT (OTA_SIG_RSA ? 34u : 32u)
/* Where the minimum security counter is kept: at 34 (format 2), or after the
 * signature (format 3, OTA_SIG_RSA). */
#define COUNTER_AT (OTA_SIG_RSA ? 424u : 34u)
/* Offset of the CRC, after the signature. */
#define CRC_AT (OTA_BOOT_RECORD_SIZE - 4u)

/* Largest write unit the flash interface allows; records are padded to it. */
#define OTA_BOOT_UNIT_MAX 256u
/* Largest padded record: one unit when a record fits in one (format 1), else
 * up to a unit less one byte more than the record (format 2). */
#define OTA_BOOT_PADDED_MAX                                                                        \
    (OTA_BOOT_RECORD_SIZE <= OTA_BOOT_UNIT_MAX ? OTA_BOOT_UNIT_MAX                                 \
                                               : OTA_BOOT_RECORD_SIZE + OTA_BOOT_UNIT_MAX - 1u)

static int record_fields_legal(const ota_boot_record_t *rec)
{
    return rec->state <= (uint8_t)OTA_BOOT_STATE_REVERTED && rec->active_slot <= 1u &&
           rec->trial_slot <= 1u && rec->attempts_left <= OTA_BOOT_MAX_ATTEMPTS &&
           rec->sig_len <= OTA_BOOT_SIG_MAX && rec->trial_booted <= 1u;
}

ota_err_t ota_boot_record_encode(const ota_boot_record_t *rec, uint8_t *out)
{
    if (rec == NULL || out == NULL || !record_fields_legal(rec)) {
        return OTA_ERR_INVALID_ARG;
    }
    memset(out, 0, OTA_BOOT_RECORD_SIZE);
    ota_put_le32(out, OTA_BOOT_RECORD_MAGIC);
    ota_put_le16(out + 4,
                 (uint16_t)(!OTA_SIG_RSA && rec->min_counter != 0u ? OTA_BOOT_RECORD_FORMAT_2
                                                                   : OTA_BOOT_RECORD_FORMAT));
    ota_put_le16(out + 6, (uint16_t)OTA_BOOT_RECORD_SIZE);
    ota_put_le32(out + 8, rec->seq);
    out[12] = rec->state;
    out[13] = rec->active_slot;
    out[14] = rec->trial_slot;
    out[15] = rec->attempts_left;
    ota_put_le32(out + 16, rec->min_version);
    ota_put_le32(out + 20, rec->active_version);
    ota_put_le32(out + 24, rec->trial_version);
    ota_put_le32(out + 28, rec->trial_size);
    if (OTA_SIG_RSA) {
        ota_put_le16(out + SIG_LEN_AT, rec->sig_len);
    } else {
        out[SIG_LEN_AT] = (uint8_t)rec->sig_len;
    }
    out[33] = rec->trial_booted;
    ota_put_le16(out + COUNTER_AT, rec->min_counter);
    ota_put_le32(out + 36, rec->signer);
    memcpy(out + 40, rec->sig, rec->sig_len);
    ota_put_le32(out + CRC_AT, ota_crc32(0, out, CRC_AT));
    return OTA_OK;
}

ota_err_t ota_boot_record_decode(const uint8_t *in, ota_boot_record_t *rec)
{
    if (in == NULL || rec == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    uint16_t format = ota_get_le16(in + 4);
    if (ota_get_le32(in) != OTA_BOOT_RECORD_MAGIC ||
        (format != OTA_BOOT_RECORD_FORMAT && (OTA_SIG_RSA || format != OTA_BOOT_RECORD_FORMAT_2)) ||
        ota_get_le16(in + 6) != OTA_BOOT_RECORD_SIZE ||
        ota_get_le32(in + CRC_AT) != ota_crc32(0, in, CRC_AT) ||
        (OTA_SIG_RSA && (in[32] != 0u || in[426] != 0u || in[427] != 0u))) {
        return OTA_ERR_CORRUPT;
    }
    memset(rec, 0, sizeof *rec);
    rec->seq = ota_get_le32(in + 8);
    rec->state = in[12];
    rec->active_slot = in[13];
    rec->trial_slot = in[14];
    rec->attempts_left = in[15];
    rec->min_version = ota_get_le32(in + 16);
    rec->active_version = ota_get_le32(in + 20);
    rec->trial_version = ota_get_le32(in + 24);
    rec->trial_size = ota_get_le32(in + 28);
    rec->sig_len = OTA_SIG_RSA ? ota_get_le16(in + SIG_LEN_AT) : in[SIG_LEN_AT];
    rec->trial_booted = in[33];
    rec->signer = ota_get_le32(in + 36);
    if (OTA_SIG_RSA || format == OTA_BOOT_RECORD_FORMAT_2) {
        rec->min_counter = ota_get_le16(in + COUNTER_AT);
    }
    if (!record_fields_legal(rec) ||
        (!OTA_SIG_RSA && (format == OTA_BOOT_RECORD_FORMAT_2) != (rec->min_counter != 0u))) {
        return OTA_ERR_CORRUPT;
    }
    memcpy(rec->sig, in + 40, rec->sig_len);
    return OTA_OK;
}

/* Serial-number comparison: is a newer than b? */
static int seq_newer(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) > 0;
}

/* Is every byte of buf the erased value? */
static int all_erased(const uint8_t *buf, uint32_t len, uint8_t erased)
{
    for (uint32_t i = 0; i < len; i++) {
        if (buf[i] != erased) {
            return 0;
        }
    }
    return 1;
}

ota_err_t ota_boot_record_load(const ota_flash_t *flash, const uint32_t copy_addr[2],
                               ota_boot_record_t *rec, uint8_t *which)
{
    uint8_t raw[OTA_BOOT_RECORD_SIZE];
    ota_boot_record_t copy[2];
    int legal[2] = {0, 0};
    int erased = 0;
    ota_err_t read_err = OTA_OK;

    if (flash == NULL || copy_addr == NULL || rec == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    for (uint8_t i = 0; i < 2u; i++) {
        /* A transient read error goes away when read again; the ECC error of
         * a torn program stays until the sector is erased. Only the second
         * kind makes a copy unreadable, and a torn copy is never the current
         * state (the current state is the copy a change does not touch). */
        ota_err_t err = OTA_ERR_IO;
        for (uint32_t attempt = 0; attempt < OTA_BOOT_READ_ATTEMPTS && err != OTA_OK; attempt++) {
            err = flash->read(flash->ctx, copy_addr[i], raw, OTA_BOOT_RECORD_SIZE);
        }
        if (err != OTA_OK) {
            read_err = err;
            continue;
        }
        legal[i] = ota_boot_record_decode(raw, &copy[i]) == OTA_OK;
        erased |= all_erased(raw, OTA_BOOT_RECORD_SIZE, flash->erased_value);
    }
    if (!legal[0] && !legal[1]) {
        if (erased) {
            /* A new device, or its first record write was cut (the torn copy
             * may even be unreadable): the factory state. */
            return OTA_ERR_NOT_FOUND;
        }
        return read_err != OTA_OK ? read_err : OTA_ERR_CORRUPT;
    }
    uint8_t pick = 0;
    if (!legal[0] || (legal[1] && seq_newer(copy[1].seq, copy[0].seq))) {
        pick = 1;
    }
    *rec = copy[pick];
    if (which != NULL) {
        *which = pick;
    }
    return OTA_OK;
}

ota_err_t ota_boot_record_store(const ota_flash_t *flash, const uint32_t copy_addr[2],
                                ota_boot_record_t *rec)
{
    uint8_t raw[OTA_BOOT_PADDED_MAX];
    ota_boot_record_t current;
    uint8_t which = 1;
    uint32_t start;
    uint32_t size;

    if (flash == NULL || copy_addr == NULL || rec == NULL || flash->write_unit == 0u ||
        flash->write_unit > OTA_BOOT_UNIT_MAX) {
        return OTA_ERR_INVALID_ARG;
    }
    ota_err_t err = ota_boot_record_load(flash, copy_addr, &current, &which);
    if (err == OTA_OK) {
        rec->seq = current.seq + 1u;
    } else if (err == OTA_ERR_NOT_FOUND) {
        rec->seq = 1u;
        which = 1; /* write copy 0 first */
    } else {
        return err;
    }
    /* Never touch the copy that holds the current state. */
    uint32_t target = copy_addr[which ^ 1u];

    uint32_t unit = flash->write_unit;
    uint32_t padded = (OTA_BOOT_RECORD_SIZE + unit - 1u) / unit * unit;
    memset(raw, flash->erased_value, sizeof raw);
    err = ota_boot_record_encode(rec, raw);
    if (err != OTA_OK) {
        return err;
    }
    err = flash->sector_info(flash->ctx, target, &start, &size);
    if (err != OTA_OK) {
        return err;
    }
    err = flash->erase(flash->ctx, start, size);
    if (err != OTA_OK) {
        return err;
    }
    return flash->program(flash->ctx, target, raw, padded);
}
