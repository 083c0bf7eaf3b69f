/*
 * An example otter port that lives outside otter's tree: a board whose
 * storage is one NOR flash reached through its driver (ota_flash_t), with a
 * layout of its own: the bootloader's two state records first, then two
 * progress sectors holding one record each (written in turn), then the two
 * image slots. It does not use otter's flash port (ports/flash); it uses the
 * bootloader logic (boot/ota_boot.h) for the state record, as a board with
 * otter's bootloader would, and the shared close-time verification.
 *
 * Blocks may come at any offset (the flash programs single bytes), and are
 * programmed as they arrive, so every block written is durable at once.
 */
#ifndef RAMFLASH_PORT_H
#define RAMFLASH_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "otter/ota_boot.h"
#include "otter/ota_flash.h"
#include "otter/ota_pal.h"
#include "otter/ota_verify.h"

/** Bytes read from flash at a time. */
#define RAMFLASH_CHUNK 256u
/** Most blocks a resumed file may have. */
#define RAMFLASH_MAX_BLOCKS 1024u

/** What the port runs on. */
typedef struct ramflash_config {
    /** The flash driver (write unit 1). */
    ota_flash_t flash;
    /** Slots, state records and the two progress sectors (progress_addr). */
    ota_boot_layout_t layout;
    /** Signers new images may be signed by. */
    const ota_verify_signer_t *signers;
    size_t signer_count;
} ramflash_config_t;

/** The port's RAM; rebuilt at every boot by ramflash_port_init. */
typedef struct ramflash_port {
    ramflash_config_t cfg;
    ota_boot_config_t boot_cfg;
    uint8_t running_slot;
    uint8_t running_pending;
    uint8_t phase;
    uint8_t invalid;
    uint8_t target_slot;
    uint32_t file_size;
    uint32_t signer;
    uint8_t sig[OTA_PAL_SIGNATURE_MAX];
    uint8_t sig_len;
    uint8_t entry_done[RAMFLASH_MAX_BLOCKS / 8u];
    uint8_t buf[RAMFLASH_CHUNK];
    uint8_t cmp[RAMFLASH_CHUNK];
} ramflash_port_t;

/**
 * The boot step's configuration for cfg (the bootloader runs ota_boot_decide
 * with it); scratch of scratch_len bytes is the bootloader's buffer.
 * @return OTA_OK or OTA_ERR_INVALID_ARG.
 */
ota_err_t ramflash_boot_config(const ramflash_config_t *cfg, uint8_t *scratch, uint32_t scratch_len,
                               ota_boot_config_t *boot_cfg);

/**
 * Start the port after the boot step decided boot, and fill *pal.
 * @return OTA_OK or OTA_ERR_INVALID_ARG (a bad configuration, a write unit
 *         other than 1, or no slot booted).
 */
ota_err_t ramflash_port_init(ramflash_port_t *port, const ramflash_config_t *cfg,
                             const ota_boot_result_t *boot, ota_pal_t *pal);

#endif /* RAMFLASH_PORT_H */
