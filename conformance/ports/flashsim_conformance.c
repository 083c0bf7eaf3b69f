/* otter: the flash port's entry in the conformance suite (one per geometry). */
#include <stdlib.h>

#include "flashsim_device.h"
#include "ota_conformance_ports.h"

int flashsim_conformance_setup(const void *param, const uint8_t *factory, uint32_t len, void **dev,
                               ota_pal_t *pal)
{
    flashsim_device_t *d = malloc(sizeof *d);
    if (d == NULL) {
        return -1;
    }
    if (flashsim_device_create(d, param, factory, len) != 0) {
        free(d);
        return -1;
    }
    if (flashsim_device_boot(d, pal) != OTA_OK) {
        flashsim_device_destroy(d);
        free(d);
        return -1;
    }
    *dev = d;
    return 0;
}

int flashsim_conformance_reboot(void *dev, ota_pal_t *pal)
{
    return flashsim_device_boot(dev, pal) == OTA_OK ? 0 : -1;
}

int flashsim_conformance_running_is(void *dev, const uint8_t *img, uint32_t len)
{
    return flashsim_device_running_is(dev, img, len);
}

void flashsim_conformance_teardown(void *dev)
{
    flashsim_device_destroy(dev);
    free(dev);
}

int flashsim_conformance_fail_next_read(void *dev)
{
    flashsim_device_t *d = dev;
    ota_flashsim_fault_t fault = {OTA_FLASHSIM_FAULT_READ_ERROR, ota_flashsim_read_count(&d->sim),
                                  OTA_FLASHSIM_TEAR_OLD, 0};
    ota_flashsim_set_fault(&d->sim, &fault);
    return 0;
}
