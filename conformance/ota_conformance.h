/*
 * otter: the port conformance suite.
 *
 * Every case of the FreeRTOS porting guide's PAL tests, plus otter's own
 * (whole lifecycle, block order, boundary sizes, bad signatures, bad
 * arguments, the progress store), runs against every registered port.
 *
 * A port joins by describing a test device (ota_conformance_port_t) and
 * adding one line to conformance/ota_conformance_ports.c.
 */
#ifndef OTA_CONFORMANCE_H
#define OTA_CONFORMANCE_H

#include <stdint.h>

#include "otter/ota_pal.h"

/** Name under which every port must know the trusted test signer. */
#define OTA_CONFORMANCE_CERT "codesign-test.crt"

/**
 * A test device for one port. The suite calls setup before every case and
 * teardown after it; between them it may call reboot any number of times.
 * Every function returns 0 on success.
 */
typedef struct ota_conformance_port {
    /** Group name printed by the test runner, e.g. "flashsim-4k-wu8-ff". */
    const char *name;
    /** Port-specific parameters (geometry, ...), passed to setup. */
    const void *param;
    /**
     * Make a new device whose committed, running image is factory[0..len),
     * trusting the test signer under OTA_CONFORMANCE_CERT, and fill *pal.
     * *dev receives the device's state.
     */
    int (*setup)(const void *param, const uint8_t *factory, uint32_t len, void **dev,
                 ota_pal_t *pal);
    /**
     * Simulated reset: forget every byte of RAM state, run the boot step
     * (bootloader) from storage alone, start the port again and refill *pal.
     */
    int (*reboot)(void *dev, ota_pal_t *pal);
    /** 1 if the image that runs now is exactly img[0..len), else 0. */
    int (*running_is)(void *dev, const uint8_t *img, uint32_t len);
    /** Release everything setup made. */
    void (*teardown)(void *dev);
    /**
     * Make the storage's next read of the file being received fail with an
     * I/O error (an uncorrectable ECC error, a failing disk); 0 on success.
     * The suite checks that verification at close then fails with
     * OTA_ERR_FILE_CLOSE on every port.
     */
    int (*fail_next_read)(void *dev);
} ota_conformance_port_t;

/** The registered ports; the list ends with an entry whose name is NULL. */
extern const ota_conformance_port_t ota_conformance_ports[];

#endif /* OTA_CONFORMANCE_H */
