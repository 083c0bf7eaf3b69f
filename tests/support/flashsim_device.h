/*
 * otter TEST SUPPORT: a simulated microcontroller — the flash port with the
 * bootloader on a simulated NOR flash. Used by the conformance suite and by
 * the power-loss sweep.
 */
#ifndef FLASHSIM_DEVICE_H
#define FLASHSIM_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "otter/ota_boot.h"
#include "ota_flashsim.h"
#include "otter/ota_pal.h"
#include "otter/ota_port_flash.h"

/** A flash geometry, and optionally an explicit layout for non-uniform flash. */
typedef struct flashsim_variant {
    ota_flashsim_geometry_t geo;
    /** Used when layout.slot_size != 0; otherwise ota_boot_layout_uniform. */
    ota_boot_layout_t layout;
} flashsim_variant_t;

/** A device: flash, port configuration, and the RAM of the current boot. */
typedef struct flashsim_device {
    ota_flashsim_t sim;
    uint8_t *mem;
    ota_port_flash_config_t cfg;
    ota_verify_signer_t signer;
    uint8_t pem[4096];
    /* RAM of the running boot: rebuilt from scratch by flashsim_device_boot. */
    ota_port_flash_t port;
    ota_boot_result_t boot;
    uint8_t boot_scratch[256];
} flashsim_device_t;

/**
 * Make a device on a fresh, erased flash with factory[0..len) programmed in
 * slot 0 (no boot record: a new device). Does not boot it.
 * @return 0 on success.
 */
int flashsim_device_create(flashsim_device_t *dev, const flashsim_variant_t *variant,
                           const uint8_t *factory, uint32_t len);

/**
 * Make a device in dev (zeroed by the caller) on flash, a driver the caller
 * owns (erased), with
 * factory[0..len) programmed in slot 0. Does not boot it; flashsim_device_destroy
 * frees nothing of it.
 * @return 0 on success.
 */
int flashsim_device_attach(flashsim_device_t *dev, const flashsim_variant_t *variant,
                           const ota_flash_t *flash, const uint8_t *factory, uint32_t len);

/**
 * The boot record the flash holds now, encoded (OTA_BOOT_RECORD_SIZE bytes), or
 * 0 bytes when there is no legal one.
 */
uint32_t flashsim_device_state(flashsim_device_t *dev, uint8_t *buf, uint32_t cap);

/**
 * Boot: wipe the boot's RAM, run the bootloader, start the port, fill *pal.
 * A decision that fails but names a slot (the old image) still starts it, as
 * a bootloader would; dev->boot holds the decision.
 * @return the bootloader's result (OTA_OK, or a flash error such as power loss).
 */
ota_err_t flashsim_device_boot(flashsim_device_t *dev, ota_pal_t *pal);

/** 1 if the slot that booted holds exactly img[0..len). */
int flashsim_device_running_is(flashsim_device_t *dev, const uint8_t *img, uint32_t len);

/** Free the flash memory. */
void flashsim_device_destroy(flashsim_device_t *dev);

#endif /* FLASHSIM_DEVICE_H */
