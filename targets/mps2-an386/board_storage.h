/*
 * otter on mps2-an386: the flash as the bootloader and the application open
 * it: the host file named on QEMU's semihosting command line, the emulated
 * NOR region that mirrors it, the driver writing through to it, the
 * provisioning record and the bootloader's hand-over to the application.
 */
#ifndef BOARD_STORAGE_H
#define BOARD_STORAGE_H

#include <stdint.h>

#include "board_flash.h"
#include "board_provision.h"
#include "otter/ota_boot.h"
#include "otter/ota_flash.h"

/** What the bootloader leaves for the application at BOARD_HANDOFF_ADDR. */
typedef struct board_handoff {
    uint32_t magic;           /**< BOARD_HANDOFF_MAGIC when valid */
    ota_boot_result_t result; /**< the boot decision */
    uint32_t image_size;      /**< bytes copied to the execution region */
} board_handoff_t;

#define BOARD_HANDOFF_MAGIC 0x4f464648u

/** The storage of one boot. */
typedef struct board_storage {
    int32_t fd;             /**< the host flash file, open for update */
    board_flash_t drv;      /**< the NOR driver over the flash region */
    ota_flash_t flash;      /**< its ota_flash_t */
    board_provision_t prov; /**< the device's identity and signer */
    char path[200];         /**< the flash file's host path */
} board_storage_t;

/**
 * Open the flash file named by the second word of the semihosting command
 * line; with load, read it into the flash region (the bootloader does this;
 * the application finds the region already filled). Then start the driver and
 * decode the provisioning record.
 * @return OTA_OK; OTA_ERR_NOT_FOUND (no file named or it cannot be opened);
 *         OTA_ERR_IO (wrong size, read error); OTA_ERR_CORRUPT (not
 *         provisioned or a damaged record).
 */
ota_err_t board_storage_open(board_storage_t *s, int load);

/** Close the flash file. */
void board_storage_close(board_storage_t *s);

/** The hand-over area. */
board_handoff_t *board_handoff(void);

#endif /* BOARD_STORAGE_H */
