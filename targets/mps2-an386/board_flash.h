/*
 * otter on mps2-an386: the flash driver (an ota_flash_t).
 *
 * The MPS2 board in QEMU has no flash controller: its code memory is RAM.
 * This driver makes a region of it behave like NOR flash and keeps the NOR
 * rules a real part enforces: erase works on whole sectors and sets every
 * byte to the erased value; program writes whole write units and only over
 * erased bytes (a unit holding anything else is refused with
 * OTA_ERR_FLASH_RULE and nothing is changed).
 *
 * Every program and erase is written through to a persist function (on the
 * board, a host file over Arm semihosting, so that the flash outlives the
 * emulator process). The logic is plain C99 with no board dependency, so the
 * host builds it too and runs the conformance suite over it.
 */
#ifndef BOARD_FLASH_H
#define BOARD_FLASH_H

#include <stdint.h>

#include "otter/ota_flash.h"

/** Writes bytes that changed at addr to the backing store. */
typedef ota_err_t (*board_flash_persist_fn)(void *ctx, uint32_t addr, const uint8_t *data,
                                            uint32_t len);

/** The driver's state; fill it with board_flash_init(). */
typedef struct board_flash {
    uint8_t *mem;                   /**< the flash's bytes */
    uint32_t size;                  /**< total size */
    uint32_t sector_size;           /**< uniform sectors of this size */
    uint32_t write_unit;            /**< programming granule */
    uint8_t erased;                 /**< value of an erased byte */
    board_flash_persist_fn persist; /**< write-through, or NULL */
    void *persist_ctx;              /**< passed to persist */
    uint32_t programs;              /**< program calls that changed the flash */
    uint32_t erases;                /**< sectors erased */
} board_flash_t;

/**
 * Set up the driver over mem[0..size) and describe it as an ota_flash_t.
 * @return OTA_OK; OTA_ERR_INVALID_ARG (NULL, size not a whole number of
 *         sectors, write unit not a power of two in 1..256 or not dividing
 *         the sector size, erased value other than 0x00 or 0xFF).
 */
ota_err_t board_flash_init(board_flash_t *f, uint8_t *mem, uint32_t size, uint32_t sector_size,
                           uint32_t write_unit, uint8_t erased, board_flash_persist_fn persist,
                           void *persist_ctx, ota_flash_t *out);

#endif /* BOARD_FLASH_H */
