/*
 * The example port's test device: how the conformance suite and the
 * power-loss sweep make, boot and inspect a board with this port, on a flash
 * driver they give it. This file and its entry below are all a port adds.
 */
#include <stdlib.h>
#include <string.h>

#include "otter/ota_boot_record.h"
#include "ota_flash_device.h"
#include "ota_test_sign.h"
#include "ramflash_port.h"

#define KIB 1024u

/* The board's flash: 128 KiB of 4 KiB sectors, programmed a byte at a time. */
static const ota_flashsim_geometry_t ramflash_geometry = {128u * KIB, 4u * KIB, NULL, 0, 1, 0xff};

/* The board's layout: state records, progress sectors, then the two slots. */
static const ota_boot_layout_t ramflash_layout = {
    {16u * KIB, 72u * KIB}, 56u * KIB, {0u, 4u * KIB}, {8u * KIB, 12u * KIB}, 4u * KIB};

typedef struct ramflash_device {
    ramflash_config_t cfg;
    ota_verify_signer_t signer;
    uint8_t pem[4096];
    /* RAM of the running boot. */
    ramflash_port_t port;
    ota_boot_result_t boot;
    uint8_t boot_scratch[256];
} ramflash_device_t;

static int ramflash_create(const void *param, const ota_flash_t *flash, const uint8_t *factory,
                           uint32_t len, void **dev)
{
    size_t pem_len = 0;
    ramflash_device_t *d = calloc(1, sizeof *d);
    (void)param;
    if (d == NULL || ota_test_read_file(OTA_TEST_KEYS_DIR "/codesign-test.crt", d->pem,
                                        sizeof d->pem, &pem_len) != 0) {
        free(d);
        return -1;
    }
    d->signer.name = OTA_CONFORMANCE_CERT;
    d->signer.pem = d->pem;
    d->signer.pem_len = pem_len;
    d->cfg.flash = *flash;
    d->cfg.layout = ramflash_layout;
    d->cfg.signers = &d->signer;
    d->cfg.signer_count = 1;
    /* The production line programs the factory image into slot 0. */
    if (len > ramflash_layout.slot_size ||
        flash->program(flash->ctx, ramflash_layout.slot_addr[0], factory, len) != OTA_OK) {
        free(d);
        return -1;
    }
    *dev = d;
    return 0;
}

static ota_err_t ramflash_boot(void *dev, ota_pal_t *pal)
{
    ramflash_device_t *d = dev;
    ota_boot_config_t boot_cfg;
    /* Nothing of the previous boot survives but the flash. */
    memset(&d->port, 0xa5, sizeof d->port);
    memset(&d->boot, 0, sizeof d->boot);
    d->boot.slot = OTA_BOOT_NO_SLOT;
    memset(pal, 0, sizeof *pal);
    ota_err_t err =
        ramflash_boot_config(&d->cfg, d->boot_scratch, sizeof d->boot_scratch, &boot_cfg);
    if (err == OTA_OK) {
        err = ota_boot_decide(&boot_cfg, &d->boot);
    }
    if (d->boot.slot == OTA_BOOT_NO_SLOT) {
        return err != OTA_OK ? err : OTA_ERR_CORRUPT;
    }
    /* A decision that failed but names the committed slot still boots it. */
    ota_err_t port_err = ramflash_port_init(&d->port, &d->cfg, &d->boot, pal);
    return err != OTA_OK ? err : port_err;
}

static int ramflash_running_is(void *dev, const uint8_t *img, uint32_t len)
{
    ramflash_device_t *d = dev;
    uint8_t buf[256];
    const ota_flash_t *f = &d->cfg.flash;
    if (d->boot.slot > 1u || len > d->cfg.layout.slot_size) {
        return 0;
    }
    for (uint32_t off = 0; off < len; off += sizeof buf) {
        uint32_t n = len - off < sizeof buf ? len - off : (uint32_t)sizeof buf;
        if (f->read(f->ctx, d->cfg.layout.slot_addr[d->boot.slot] + off, buf, n) != OTA_OK ||
            memcmp(buf, img + off, n) != 0) {
            return 0;
        }
    }
    return 1;
}

/* The state the boot step reads: the newest legal state record, encoded. */
static uint32_t ramflash_state(void *dev, uint8_t *buf, uint32_t cap)
{
    ramflash_device_t *d = dev;
    ota_boot_record_t rec;
    if (cap < OTA_BOOT_RECORD_SIZE ||
        ota_boot_record_load(&d->cfg.flash, d->cfg.layout.record_addr, &rec, NULL) != OTA_OK ||
        ota_boot_record_encode(&rec, buf) != OTA_OK) {
        return 0;
    }
    return OTA_BOOT_RECORD_SIZE;
}

static void ramflash_destroy(void *dev)
{
    free(dev);
}

static const ota_flash_device_t ramflash_device = {
    &ramflash_geometry,  NULL,           ramflash_create,  ramflash_boot,
    ramflash_running_is, ramflash_state, ramflash_destroy,
};

/* The ports this program tests: the conformance suite runs every case on each,
 * and the power-loss sweep cuts each at every flash operation. */
const ota_conformance_port_t ota_conformance_ports[] = {
    OTA_FLASH_DEVICE_CONFORMANCE_PORT("ramflash", &ramflash_device),
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
