/* otter: the flash port as a test device on a flash driver (one entry per geometry). */
#include <stdlib.h>

#include "flashsim_device.h"
#include "ota_conformance_ports.h"

static int flash_port_create(const void *param, const ota_flash_t *flash, const uint8_t *factory,
                             uint32_t len, void **dev)
{
    flashsim_device_t *d = calloc(1, sizeof *d);
    if (d == NULL) {
        return -1;
    }
    if (flashsim_device_attach(d, param, flash, factory, len) != 0) {
        free(d);
        return -1;
    }
    *dev = d;
    return 0;
}

static ota_err_t flash_port_boot(void *dev, ota_pal_t *pal)
{
    return flashsim_device_boot(dev, pal);
}

static int flash_port_running_is(void *dev, const uint8_t *img, uint32_t len)
{
    return flashsim_device_running_is(dev, img, len);
}

static uint32_t flash_port_state(void *dev, uint8_t *buf, uint32_t cap)
{
    return flashsim_device_state(dev, buf, cap);
}

static void flash_port_destroy(void *dev)
{
    free(dev);
}

#define FLASH_PORT_DEVICE(i)                                                                       \
    {                                                                                              \
        &flashsim_variants[i].geo, &flashsim_variants[i], flash_port_create, flash_port_boot,      \
            flash_port_running_is, flash_port_state, flash_port_destroy                            \
    }

const ota_flash_device_t flash_port_devices[FLASH_PORT_GEOMETRIES] = {
    FLASH_PORT_DEVICE(0), FLASH_PORT_DEVICE(1), FLASH_PORT_DEVICE(2), FLASH_PORT_DEVICE(3),
    FLASH_PORT_DEVICE(4), FLASH_PORT_DEVICE(5), FLASH_PORT_DEVICE(6),
};
