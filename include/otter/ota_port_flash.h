/*
 * otter: the flash reference port — two image slots on NOR flash with the
 * otter bootloader. It runs on any ota_flash_t driver; on the host that is the
 * simulated flash, which makes it the host's stand-in for a microcontroller.
 *
 * Where things are is an ota_boot_layout_t: the new image is received into the
 * slot that is not active, the bootloader's record says which slot boots, and
 * the download-progress store is a small log in two flash banks.
 *
 * Blocks may start and end anywhere. Flash programs whole write units, once
 * each, so a write unit that a block covers only in part is held in RAM (one
 * of OTA_PORT_FLASH_PARTIAL_UNITS buffers) until the neighbouring block
 * completes it, or the file ends there, and is programmed then. A progress
 * save stores the units still held next to the caller's record, so a
 * checkpoint never trusts bytes that are only in RAM; resume_file takes them
 * back. A write checks every unit before programming any (the same bytes
 * again are harmless, others refused): by reading it, except where nothing
 * was programmed since create_file erased the slot (each block of a download
 * in order), which is programmed in one operation without reading first.
 *
 * Progress log format (per bank, records back to back from the bank start,
 * each padded to the write unit):
 *
 *   offset size field
 *   0      4    magic "OTFL" (0x4c46544f)
 *   4      4    sequence number (newest wins, serial arithmetic)
 *   8      4    payload length n (0 = the store was cleared)
 *   12     2    k, partly written units held with the record (0 .. OTA_PORT_FLASH_PARTIAL_UNITS)
 *   14     2    reserved (0)
 *   16     4    CRC-32 of bytes 0 .. 15, the payload and the units
 *   20     n    payload (the caller's record)
 *   20+n   k*e  units, each e = 4 + m + w bytes: its offset in the file (4),
 *               which of its bytes are present (m = ceil(w / 8), bit i of
 *               byte i / 8 for byte i), its bytes (w = the write unit)
 *
 * A save appends to the bank holding the newest record; when it does not fit
 * (or the bank holds a torn record) the other bank is erased and the record
 * written at its start. The bank with the newest record is never erased, so a
 * cut at any moment leaves the old or the new record.
 */
#ifndef OTTER_OTA_PORT_FLASH_H
#define OTTER_OTA_PORT_FLASH_H

#include "otter/ota_config_defaults.h"

#include <stddef.h>
#include <stdint.h>

#include "otter/ota_boot.h"
#include "otter/ota_flash.h"
#include "otter/ota_pal.h"
#include "otter/ota_verify.h"

/** Size of the port's scratch buffer (one flash page). */
#define OTA_PORT_FLASH_SCRATCH 256u

/**
 * Largest write unit the port works with, in bytes; it sizes the buffers of
 * OTA_PORT_FLASH_PARTIAL_UNITS (a board whose flash programs 8 bytes at a
 * time sets 8 and saves about 500 bytes of RAM).
 * Possible values: 1 .. 256, a power of two. Default value: 256.
 */
#ifndef OTA_PORT_FLASH_MAX_UNIT
#define OTA_PORT_FLASH_MAX_UNIT 256u
#endif
#if OTA_PORT_FLASH_MAX_UNIT < 1 || OTA_PORT_FLASH_MAX_UNIT > 256 ||                                \
    (OTA_PORT_FLASH_MAX_UNIT & (OTA_PORT_FLASH_MAX_UNIT - 1)) != 0
#error "OTA_PORT_FLASH_MAX_UNIT must be a power of two, 1 .. 256"
#endif

/**
 * Write units a file may have partly written at one time (each costs
 * 4 + OTA_PORT_FLASH_MAX_UNIT * 9 / 8 bytes of the port's RAM). Blocks written in
 * order, in reverse order, or whose edges are multiples of the write unit
 * need at most 2; blocks with unaligned edges in any other order may need
 * more, and a write that would is refused with OTA_ERR_OUT_OF_MEMORY.
 * Possible values: 2 .. 64. Default value: 2.
 */
#ifndef OTA_PORT_FLASH_PARTIAL_UNITS
#define OTA_PORT_FLASH_PARTIAL_UNITS 2u
#endif
#if OTA_PORT_FLASH_PARTIAL_UNITS < 2 || OTA_PORT_FLASH_PARTIAL_UNITS > 64
#error "OTA_PORT_FLASH_PARTIAL_UNITS must be 2 .. 64"
#endif

/** A write unit of the open file that blocks have covered only in part (private). */
typedef struct ota_port_flash_partial {
    /** Offset of the unit in the file; UINT32_MAX when the buffer is free. */
    uint32_t offset;
    /** Bit i set: data[i] holds the file's byte offset + i. */
    uint8_t have[(OTA_PORT_FLASH_MAX_UNIT + 7u) / 8u];
    uint8_t data[OTA_PORT_FLASH_MAX_UNIT];
} ota_port_flash_partial_t;

/** Configuration of a flash port instance. */
typedef struct ota_port_flash_config {
    /** Flash driver; the port keeps a copy of the struct. */
    ota_flash_t flash;
    /** Where slots, records and progress banks are. */
    ota_boot_layout_t layout;
    /** Signers new images may be signed by ("certfile" names); the bootloader
     * checks a new image again with its own signer of the same key (recorded
     * by key id, so the tables may differ in order). */
    const ota_verify_signer_t *signers;
    /** Entries in signers (at least 1). */
    size_t signer_count;
    /** Boot attempts for a new image (0 = default 3). */
    uint8_t max_attempts;
    /** Called by the reset operation; NULL makes reset return OTA_OK (host). */
    void (*reset_fn)(void *reset_ctx);
    /** Passed to reset_fn. */
    void *reset_ctx;
} ota_port_flash_config_t;

/** Transfer phases (private). */
typedef enum ota_port_flash_phase {
    OTA_PORT_FLASH_IDLE = 0,
    OTA_PORT_FLASH_OPEN,
    OTA_PORT_FLASH_CLOSED,
    OTA_PORT_FLASH_ACTIVATED,
} ota_port_flash_phase_t;

/** A flash port instance. Fields are private; allocate it statically. */
typedef struct ota_port_flash {
    ota_port_flash_config_t cfg;
    ota_boot_config_t boot_cfg;
    /** Slot the bootloader started at this boot, and whether it is on trial. */
    uint8_t running_slot;
    uint8_t running_pending;
    uint8_t invalid;
    uint8_t phase;
    uint8_t target_slot;
    uint32_t file_size;
    uint8_t sig[OTA_PAL_SIGNATURE_MAX];
    uint16_t sig_len;
    uint32_t signer;
    /** The progress log as this boot last wrote it (valid when log_known):
     *  newest record's bank and sequence number, and the offset in that bank
     *  from which it is erased. Spares a scan of both banks per checkpoint. */
    uint8_t log_known;
    /** The file is hashed as it is written (blocks so far in order); close
     *  then needs no second pass over the slot. */
    uint8_t hashing;
    ota_verify_hash_t hash;
    uint8_t log_bank;
    uint32_t log_seq;
    uint32_t log_end;
    /** File offset from which the slot is erased as the create left it:
     *  nothing was programmed there since (UINT32_MAX: not known, as after a
     *  resume). Whole units there are programmed without reading them first. */
    uint32_t fresh_from;
    uint8_t scratch[OTA_PORT_FLASH_SCRATCH];
    uint8_t cmp[OTA_PORT_FLASH_SCRATCH];
    /** Write units of the open file held until they are complete. */
    ota_port_flash_partial_t partial[OTA_PORT_FLASH_PARTIAL_UNITS];
} ota_port_flash_t;

/**
 * Start the port after a boot.
 * @param port  instance to set up (any previous content is ignored).
 * @param cfg   configuration (copied).
 * @param boot  the bootloader's decision for this boot (ota_boot_decide).
 * @param pal   filled with the port's operations.
 * @return OTA_OK; OTA_ERR_INVALID_ARG (NULL, bad layout, write unit >
 *         OTA_PORT_FLASH_MAX_UNIT).
 */
ota_err_t ota_port_flash_init(ota_port_flash_t *port, const ota_port_flash_config_t *cfg,
                              const ota_boot_result_t *boot, ota_pal_t *pal);

/**
 * The bootloader configuration matching a port configuration (same flash,
 * layout, budget and signers), for running
 * ota_boot_decide before ota_port_flash_init.
 * @param scratch buffer for the bootloader's reads (>= 32 bytes).
 * @return OTA_OK or OTA_ERR_INVALID_ARG.
 */
ota_err_t ota_port_flash_boot_config(const ota_port_flash_config_t *cfg, const ota_flash_t *flash,
                                     uint8_t *scratch, uint32_t scratch_len,
                                     ota_boot_config_t *boot_cfg);

#endif /* OTTER_OTA_PORT_FLASH_H */
