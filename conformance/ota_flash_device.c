/* otter: a flash device on the simulated flash, as a conformance entry. */
#include "ota_flash_device.h"

#include <stdlib.h>

/* The simulated flash, and the device the port made on it. */
typedef struct sim_board {
    const ota_flash_device_t *device;
    ota_flashsim_t sim;
    uint8_t *mem;
    ota_flash_t flash;
    void *dev;
} sim_board_t;

int ota_flash_device_setup(const void *param, const uint8_t *factory, uint32_t len, void **dev,
                           ota_pal_t *pal)
{
    const ota_flash_device_t *d = param;
    sim_board_t *b = calloc(1, sizeof *b);
    if (b == NULL) {
        return -1;
    }
    b->device = d;
    b->mem = malloc(d->geometry->size);
    if (b->mem == NULL ||
        ota_flashsim_init(&b->sim, d->geometry, b->mem, d->geometry->size) != OTA_OK) {
        free(b->mem);
        free(b);
        return -1;
    }
    b->flash = ota_flashsim_driver(&b->sim);
    if (d->create(d->param, &b->flash, factory, len, &b->dev) != 0) {
        free(b->mem);
        free(b);
        return -1;
    }
    ota_flashsim_power_on(&b->sim);
    *dev = b;
    if (d->boot(b->dev, pal) != OTA_OK) {
        ota_flash_device_teardown(b);
        return -1;
    }
    return 0;
}

int ota_flash_device_reboot(void *dev, ota_pal_t *pal)
{
    sim_board_t *b = dev;
    return b->device->boot(b->dev, pal) == OTA_OK ? 0 : -1;
}

int ota_flash_device_running_is(void *dev, const uint8_t *img, uint32_t len)
{
    sim_board_t *b = dev;
    return b->device->running_is(b->dev, img, len);
}

void ota_flash_device_teardown(void *dev)
{
    sim_board_t *b = dev;
    b->device->destroy(b->dev);
    free(b->mem);
    free(b);
}

int ota_flash_device_fail_next_read(void *dev)
{
    sim_board_t *b = dev;
    ota_flashsim_fault_t fault = {OTA_FLASHSIM_FAULT_READ_ERROR, ota_flashsim_read_count(&b->sim),
                                  OTA_FLASHSIM_TEAR_OLD, 0};
    ota_flashsim_set_fault(&b->sim, &fault);
    return 0;
}
