/*
 * otter: the flash driver interface used by the bootloader logic and by ports
 * that live on NOR flash.
 *
 * A driver is a struct of function pointers plus a context pointer, so that a
 * real driver, the simulated flash and a fault-injecting wrapper are
 * interchangeable and several can live in one program.
 *
 * Addresses are byte offsets from the start of the device. The contract every
 * driver keeps (and the simulated flash enforces):
 *   - erase works on whole sectors: addr and len must cover complete sectors;
 *   - program writes whole write units: addr and len are multiples of
 *     write_unit, and every byte of every unit written must be erased;
 *   - read has no alignment rule;
 *   - each call either does all of its work and returns OTA_OK, or returns a
 *     negative ota_err_t (the device content is then unspecified for the range
 *     touched, as after a power cut).
 */
#ifndef OTTER_OTA_FLASH_H
#define OTTER_OTA_FLASH_H

#include "otter/ota_config_defaults.h"

#include <stdint.h>

#include "otter/ota_err.h"

/** A flash device as seen by otter. All fields are set by the driver. */
typedef struct ota_flash {
    /** Driver state, passed back as the first argument of every call. */
    void *ctx;
    /** Total size in bytes. */
    uint32_t size;
    /** Programming granule in bytes (1 .. 256, a power of two). */
    uint32_t write_unit;
    /** Value every byte holds after an erase (0xFF or 0x00). */
    uint8_t erased_value;

    /**
     * Copy len bytes at addr into buf.
     * @return OTA_OK, OTA_ERR_INVALID_ARG (range outside the device), OTA_ERR_IO.
     */
    ota_err_t (*read)(void *ctx, uint32_t addr, void *buf, uint32_t len);

    /**
     * Program len bytes from buf at addr (both multiples of write_unit; the
     * target must be erased).
     * @return OTA_OK, OTA_ERR_INVALID_ARG, OTA_ERR_FLASH_RULE, OTA_ERR_IO.
     */
    ota_err_t (*program)(void *ctx, uint32_t addr, const void *buf, uint32_t len);

    /**
     * Erase the whole sectors covering [addr, addr + len); both ends must be
     * sector boundaries.
     * @return OTA_OK, OTA_ERR_INVALID_ARG, OTA_ERR_FLASH_RULE, OTA_ERR_IO.
     */
    ota_err_t (*erase)(void *ctx, uint32_t addr, uint32_t len);

    /**
     * The sector that holds addr: its first byte and its size.
     * @return OTA_OK or OTA_ERR_INVALID_ARG (addr outside the device).
     */
    ota_err_t (*sector_info)(void *ctx, uint32_t addr, uint32_t *start, uint32_t *size);
} ota_flash_t;

#endif /* OTTER_OTA_FLASH_H */
