/*
 * otter: the ports the conformance suite runs against. A new port joins by
 * adding its entry to ota_conformance_ports[] below (see docs/PORTING.md);
 * CMake reads the names from this file, one CTest test per entry, so each
 * entry's name must be a string literal, the first argument of its macro.
 */
#include "ota_conformance_ports.h"

#include "board_conformance.h"
#include "board_layout.h"

#define KIB 1024u

/* STM32F4-like non-uniform sectors: 4 x 16 KiB, 1 x 64 KiB, 3 x 128 KiB. */
static const uint32_t stm32f4_like[] = {16 * KIB, 16 * KIB,  16 * KIB,  16 * KIB,
                                        64 * KIB, 128 * KIB, 128 * KIB, 128 * KIB};

/* Sectors of 4 KiB, 128 KiB and a 16/64/128 KiB mix; write units of 1, 4, 8 and 256 bytes;
 * erased 0xFF and 0x00. */
const flashsim_variant_t flashsim_variants[FLASH_PORT_GEOMETRIES] = {
    {{256 * KIB, 4 * KIB, NULL, 0, 1, 0xff}, {{0, 0}, 0, {0, 0}, {0, 0}, 0}},
    {{256 * KIB, 4 * KIB, NULL, 0, 8, 0x00}, {{0, 0}, 0, {0, 0}, {0, 0}, 0}},
    {{256 * KIB, 4 * KIB, NULL, 0, 256, 0xff}, {{0, 0}, 0, {0, 0}, {0, 0}, 0}},
    {{1024 * KIB, 128 * KIB, NULL, 0, 8, 0xff}, {{0, 0}, 0, {0, 0}, {0, 0}, 0}},
    {{1024 * KIB, 128 * KIB, NULL, 0, 256, 0x00}, {{0, 0}, 0, {0, 0}, {0, 0}, 0}},
    {{512 * KIB, 0, stm32f4_like, sizeof stm32f4_like / sizeof stm32f4_like[0], 4, 0xff},
     /* records in two 16 KiB sectors, progress in the other two, slots in 128 KiB sectors */
     {{128 * KIB, 256 * KIB}, 128 * KIB, {0, 16 * KIB}, {32 * KIB, 48 * KIB}, 16 * KIB}},
    /* The mps2-an386 board's flash and layout (targets/mps2-an386/board_layout.h). */
    {{BOARD_FLASH_SIZE, BOARD_SECTOR_SIZE, NULL, 0, BOARD_WRITE_UNIT, BOARD_ERASED},
     BOARD_BOOT_LAYOUT},
};

const ota_conformance_port_t ota_conformance_ports[] = {
    FLASHSIM_CONFORMANCE_PORT("flashsim-4k-wu1-ff", 0),
    FLASHSIM_CONFORMANCE_PORT("flashsim-4k-wu8-00", 1),
    FLASHSIM_CONFORMANCE_PORT("flashsim-4k-wu256-ff", 2),
    FLASHSIM_CONFORMANCE_PORT("flashsim-128k-wu8-ff", 3),
    FLASHSIM_CONFORMANCE_PORT("flashsim-128k-wu256-00", 4),
    FLASHSIM_CONFORMANCE_PORT("flashsim-mixed-wu4-ff", 5),
    FLASHSIM_CONFORMANCE_PORT("flashsim-mps2-an386", 6),
    POSIX_CONFORMANCE_PORT("posix"),
    BOARD_CONFORMANCE_PORT("mps2-an386-flash", &board_conf_host_backing),
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
