/* otter: the conformance entries of the reference ports. */
#ifndef OTA_CONFORMANCE_PORTS_H
#define OTA_CONFORMANCE_PORTS_H

#include "flashsim_device.h"
#include "ota_conformance.h"
#include "ota_flash_device.h"

/** The flash port on the simulated flash geometry flashsim_variants[i], one device each. */
#define FLASH_PORT_GEOMETRIES 7
extern const ota_flash_device_t flash_port_devices[FLASH_PORT_GEOMETRIES];

/** The flash port, named name, on the simulated flash geometry flashsim_variants[i]. */
#define FLASHSIM_CONFORMANCE_PORT(name, i)                                                         \
    OTA_FLASH_DEVICE_CONFORMANCE_PORT(name, &flash_port_devices[i])

/* The posix port's device functions (files in a temporary directory). */
int posix_conformance_setup(const void *param, const uint8_t *factory, uint32_t len, void **dev,
                            ota_pal_t *pal);
int posix_conformance_reboot(void *dev, ota_pal_t *pal);
int posix_conformance_running_is(void *dev, const uint8_t *img, uint32_t len);
void posix_conformance_teardown(void *dev);
int posix_conformance_fail_next_read(void *dev);

/** The posix port, named name. */
#define POSIX_CONFORMANCE_PORT(name)                                                               \
    {                                                                                              \
        name, NULL, posix_conformance_setup, posix_conformance_reboot,                             \
            posix_conformance_running_is, posix_conformance_teardown,                              \
            posix_conformance_fail_next_read                                                       \
    }

/** The flash geometries every flash port is tested on. */
extern const flashsim_variant_t flashsim_variants[FLASH_PORT_GEOMETRIES];

#endif /* OTA_CONFORMANCE_PORTS_H */
