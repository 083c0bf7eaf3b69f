/*
 * otter: a test device for a port whose storage is reached through
 * ota_flash_t (a board's flash driver).
 *
 * A port on flash describes how its device is made, booted and inspected on
 * a flash driver it is given; the conformance suite and the power-loss sweep
 * then run it on the simulated flash (flashsim/) of the geometry it names. The
 * driver the device is given is the only storage it may use: the sweep
 * counts, cuts and tears its operations there, and saves and restores the
 * flash's content between scenarios.
 *
 * One entry in a port's ota_conformance_ports[] registers it for both:
 *
 *     OTA_FLASH_DEVICE_CONFORMANCE_PORT("my-board", &my_board_device)
 */
#ifndef OTA_FLASH_DEVICE_H
#define OTA_FLASH_DEVICE_H

#include <stdint.h>

#include "ota_conformance.h"
#include "otter/ota_flash.h"
#include "ota_flashsim.h"
#include "otter/ota_pal.h"

/** Largest description of a device's stored state (see state). */
#define OTA_FLASH_DEVICE_STATE_MAX 512u

/** How a port's device is made, booted and inspected on a flash driver. */
typedef struct ota_flash_device {
    /** The simulated flash the device is tested on (size, sectors, write unit, erased value). */
    const ota_flashsim_geometry_t *geometry;
    /** Passed to create as it is (a layout, a variant, or NULL). */
    const void *param;
    /**
     * Make a new device on *flash, which is erased: keep a copy of *flash and
     * use nothing else for storage, program factory[0..len) as the committed,
     * running image (as a production line would), and trust the test signer
     * under OTA_CONFORMANCE_CERT. Do not boot. *dev receives the device.
     * @return 0 on success.
     */
    int (*create)(const void *param, const ota_flash_t *flash, const uint8_t *factory, uint32_t len,
                  void **dev);
    /**
     * Reset: forget every byte of RAM state, run the boot step (the
     * bootloader's decision) from storage alone, start the port and fill *pal.
     * @return OTA_OK; or an error, with *pal filled when the boot step fell
     *         back to an image it may run (the committed one) and zeroed when
     *         nothing runs.
     */
    ota_err_t (*boot)(void *dev, ota_pal_t *pal);
    /** 1 if the image that runs since the last boot is exactly img[0..len), else 0. */
    int (*running_is)(void *dev, const uint8_t *img, uint32_t len);
    /**
     * Describe the state the device's metadata holds on storage now (which
     * image is committed, which on trial, attempts, versions ...), as the
     * boot step would read it, without changing anything: decoded fields, so
     * that two stored forms of one state (another copy, another sequence
     * position) give the same bytes only if the state is the same. No legal
     * state (a new device) is 0 bytes.
     * @return the description's length (<= cap).
     */
    uint32_t (*state)(void *dev, uint8_t *buf, uint32_t cap);
    /** Release everything create made (the flash is the caller's). */
    void (*destroy)(void *dev);
} ota_flash_device_t;

/* The conformance entry of a flash device (param: the ota_flash_device_t). */
int ota_flash_device_setup(const void *param, const uint8_t *factory, uint32_t len, void **dev,
                           ota_pal_t *pal);
int ota_flash_device_reboot(void *dev, ota_pal_t *pal);
int ota_flash_device_running_is(void *dev, const uint8_t *img, uint32_t len);
void ota_flash_device_teardown(void *dev);
int ota_flash_device_fail_next_read(void *dev);

/**
 * The entry of ota_conformance_ports[] for a device on flash, named name (a
 * string literal): the suite runs it on a simulated flash of its geometry, and
 * the power-loss sweep cuts it at every flash operation.
 */
#define OTA_FLASH_DEVICE_CONFORMANCE_PORT(name, device)                                            \
    {                                                                                              \
        name, (device), ota_flash_device_setup, ota_flash_device_reboot,                           \
            ota_flash_device_running_is, ota_flash_device_teardown,                                \
            ota_flash_device_fail_next_read                                                        \
    }

#endif /* OTA_FLASH_DEVICE_H */
