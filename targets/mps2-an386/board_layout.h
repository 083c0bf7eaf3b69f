/*
 * otter on mps2-an386: the memory map and the flash layout, shared by the
 * bootloader, the application, the conformance firmware and the host tools.
 *
 *   0x00000000  boot ROM: the bootloader (loaded by QEMU's -kernel at every
 *               start, so it behaves like write-protected boot flash)
 *   0x00100000  flash, 512 KiB of emulated NOR (4 KiB sectors, write unit 8,
 *               erased 0xFF), filled from the host's flash file at every boot
 *   0x00200000  execution region: the bootloader copies the chosen slot's
 *               image here (without its 32-byte header) and jumps to it
 *   0x20000000  data RAM (4 MiB): .data, .bss and stacks of whoever runs;
 *               its last 256 bytes hold the bootloader's hand-over
 *
 * The flash (addresses relative to its start):
 *
 *   0x00000  slot A (240 KiB)
 *   0x3c000  slot B (240 KiB)
 *   0x78000  download-progress log, two banks of one sector
 *   0x7a000  the bootloader's state record, two copies
 *   0x7f000  provisioning: thing name, MQTT credentials, code-signing
 *            certificate (written on the production line, read-only here)
 */
#ifndef BOARD_LAYOUT_H
#define BOARD_LAYOUT_H

/* The board's device type (a thing's deviceType): the factory image's header
 * carries its tag, the bootloader boots only images of this type (or of any
 * type), and the agent refuses jobs for other types. */
#define BOARD_DEVICE_TYPE "mps2-an386"

#define BOARD_FLASH_BASE 0x00100000u
#define BOARD_FLASH_SIZE 0x00080000u
#define BOARD_SECTOR_SIZE 0x1000u
#define BOARD_WRITE_UNIT 8u
#define BOARD_ERASED 0xffu

#define BOARD_SLOT_A 0x00000u
#define BOARD_SLOT_B 0x3c000u
#define BOARD_SLOT_SIZE 0x3c000u
#define BOARD_PROGRESS_A 0x78000u
#define BOARD_PROGRESS_B 0x79000u
#define BOARD_RECORD_A 0x7a000u
#define BOARD_RECORD_B 0x7b000u
#define BOARD_PROVISION 0x7f000u
#define BOARD_PROVISION_SIZE 0x1000u

#define BOARD_EXEC_BASE 0x00200000u
#define BOARD_EXEC_SIZE BOARD_SLOT_SIZE

#define BOARD_HANDOFF_ADDR 0x203ffc00u

/** Fills an ota_boot_layout_t (from ota_boot.h) with the layout above. */
#define BOARD_BOOT_LAYOUT                                                                          \
    {                                                                                              \
        {BOARD_SLOT_A, BOARD_SLOT_B}, BOARD_SLOT_SIZE, {BOARD_RECORD_A, BOARD_RECORD_B},           \
            {BOARD_PROGRESS_A, BOARD_PROGRESS_B}, BOARD_SECTOR_SIZE                                \
    }

#endif /* BOARD_LAYOUT_H */
