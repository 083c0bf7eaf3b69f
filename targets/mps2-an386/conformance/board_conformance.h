/*
 * otter on mps2-an386: the board's test device for the conformance suite
 * (conformance/ota_conformance.h): the board's flash driver (board_flash.c)
 * with the board's layout, the flash port and the bootloader's decision.
 *
 * Where the flash's bytes are kept is a backing store: on the board the
 * emulated flash region written through to a host file over semihosting
 * (board_conformance_main.c), on the host a buffer for each. A reboot wipes
 * the flash region and fills it again from the backing store alone, then
 * runs the boot decision, so a program or erase the driver failed to write
 * through is lost and the suite sees it. (The core itself is not reset: on
 * the board a reset ends the emulation.)
 */
#ifndef BOARD_CONFORMANCE_H
#define BOARD_CONFORMANCE_H

#include <stdint.h>

#include "board_flash.h"
#include "ota_conformance.h"

/** A backing store for the flash's bytes. */
typedef struct board_conf_backing {
    void *ctx;
    /** The flash region (BOARD_FLASH_SIZE bytes) the driver works on. */
    uint8_t *(*memory)(void *ctx);
    /** Start a new store holding mem's bytes; 0 or -1. */
    int (*create)(void *ctx, const uint8_t *mem, uint32_t size);
    /** The driver's write-through. */
    board_flash_persist_fn persist;
    /** Fill mem from the store; 0 or -1. */
    int (*load)(void *ctx, uint8_t *mem, uint32_t size);
} board_conf_backing_t;

/* The test device's functions (param: a board_conf_backing_t). */
int board_conformance_setup(const void *param, const uint8_t *factory, uint32_t len, void **dev,
                            ota_pal_t *pal);
int board_conformance_reboot(void *dev, ota_pal_t *pal);
int board_conformance_running_is(void *dev, const uint8_t *img, uint32_t len);
void board_conformance_teardown(void *dev);
/** Makes the next flash read of the device fail once with OTA_ERR_IO. */
int board_conformance_fail_next_read(void *dev);

/** The board's port, named name, on the backing store *backing. */
#define BOARD_CONFORMANCE_PORT(name, backing)                                                      \
    {                                                                                              \
        name, backing, board_conformance_setup, board_conformance_reboot,                          \
            board_conformance_running_is, board_conformance_teardown,                              \
            board_conformance_fail_next_read                                                       \
    }

/** The host's backing store: two buffers (the region and the "file"). */
extern const board_conf_backing_t board_conf_host_backing;

#endif /* BOARD_CONFORMANCE_H */
