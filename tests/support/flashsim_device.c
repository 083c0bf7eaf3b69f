/* otter TEST SUPPORT: a simulated microcontroller on the simulated flash. */
#include "flashsim_device.h"

#include <stdlib.h>
#include <string.h>

#include "otter/ota_boot_record.h"
#include "ota_conformance.h"
#include "ota_test_sign.h"

int flashsim_device_create(flashsim_device_t *dev, const flashsim_variant_t *variant,
                           const uint8_t *factory, uint32_t len)
{
    memset(dev, 0, sizeof *dev);
    dev->mem = malloc(variant->geo.size);
    if (dev->mem == NULL ||
        ota_flashsim_init(&dev->sim, &variant->geo, dev->mem, variant->geo.size) != OTA_OK) {
        flashsim_device_destroy(dev);
        return -1;
    }
    ota_flash_t flash = ota_flashsim_driver(&dev->sim);
    if (flashsim_device_attach(dev, variant, &flash, factory, len) != 0) {
        flashsim_device_destroy(dev);
        return -1;
    }
    ota_flashsim_power_on(&dev->sim); /* op numbering starts after the factory */
    return 0;
}

int flashsim_device_attach(flashsim_device_t *dev, const flashsim_variant_t *variant,
                           const ota_flash_t *flash, const uint8_t *factory, uint32_t len)
{
    size_t pem_len = 0;
    if (ota_test_read_file(OTA_TEST_KEYS_DIR "/codesign-test.crt", dev->pem, sizeof dev->pem,
                           &pem_len) != 0) {
        return -1;
    }
    dev->signer.name = OTA_CONFORMANCE_CERT;
    dev->signer.pem = dev->pem;
    dev->signer.pem_len = pem_len;
    dev->cfg.flash = *flash;
    dev->cfg.signers = &dev->signer;
    dev->cfg.signer_count = 1;
    if (variant->layout.slot_size != 0u) {
        dev->cfg.layout = variant->layout;
    } else if (ota_boot_layout_uniform(&dev->cfg.flash, &dev->cfg.layout) != OTA_OK) {
        return -1;
    }
    if (ota_boot_layout_check(&dev->cfg.flash, &dev->cfg.layout) != OTA_OK ||
        len > dev->cfg.layout.slot_size) {
        return -1;
    }
    /* The factory image, programmed the way a production line would. */
    const ota_flash_t *f = &dev->cfg.flash;
    uint32_t unit = f->write_unit;
    uint32_t whole = len / unit * unit;
    if (whole > 0u && f->program(f->ctx, dev->cfg.layout.slot_addr[0], factory, whole) != OTA_OK) {
        return -1;
    }
    if (whole < len) {
        uint8_t tail[256];
        memset(tail, f->erased_value, sizeof tail);
        memcpy(tail, factory + whole, len - whole);
        if (f->program(f->ctx, dev->cfg.layout.slot_addr[0] + whole, tail, unit) != OTA_OK) {
            return -1;
        }
    }
    return 0;
}

ota_err_t flashsim_device_boot(flashsim_device_t *dev, ota_pal_t *pal)
{
    ota_boot_config_t boot_cfg;
    /* Nothing of the previous boot survives but the flash. */
    memset(&dev->port, 0xa5, sizeof dev->port);
    memset(&dev->boot, 0, sizeof dev->boot);
    dev->boot.slot = OTA_BOOT_NO_SLOT;
    memset(dev->boot_scratch, 0xa5, sizeof dev->boot_scratch);
    memset(pal, 0, sizeof *pal);
    ota_err_t err = ota_port_flash_boot_config(&dev->cfg, &dev->cfg.flash, dev->boot_scratch,
                                               sizeof dev->boot_scratch, &boot_cfg);
    if (err == OTA_OK) {
        err = ota_boot_decide(&boot_cfg, &dev->boot);
    }
    if (err != OTA_OK && dev->boot.slot == OTA_BOOT_NO_SLOT) {
        return err; /* nothing may run */
    }
    /* A decision that failed but names a slot still boots it (the old image). */
    ota_err_t port_err = ota_port_flash_init(&dev->port, &dev->cfg, &dev->boot, pal);
    return err != OTA_OK ? err : port_err;
}

int flashsim_device_running_is(flashsim_device_t *dev, const uint8_t *img, uint32_t len)
{
    uint8_t buf[256];
    const ota_flash_t *f = &dev->cfg.flash;
    if (dev->boot.slot > 1u || len > dev->cfg.layout.slot_size) {
        return 0;
    }
    uint32_t base = dev->cfg.layout.slot_addr[dev->boot.slot];
    for (uint32_t off = 0; off < len; off += sizeof buf) {
        uint32_t n = len - off < sizeof buf ? len - off : (uint32_t)sizeof buf;
        if (f->read(f->ctx, base + off, buf, n) != OTA_OK || memcmp(buf, img + off, n) != 0) {
            return 0;
        }
    }
    return 1;
}

uint32_t flashsim_device_state(flashsim_device_t *dev, uint8_t *buf, uint32_t cap)
{
    ota_boot_record_t rec;
    if (cap < OTA_BOOT_RECORD_SIZE ||
        ota_boot_record_load(&dev->cfg.flash, dev->cfg.layout.record_addr, &rec, NULL) != OTA_OK ||
        ota_boot_record_encode(&rec, buf) != OTA_OK) {
        return 0;
    }
    return OTA_BOOT_RECORD_SIZE;
}

void flashsim_device_destroy(flashsim_device_t *dev)
{
    free(dev->mem);
    dev->mem = NULL;
}
