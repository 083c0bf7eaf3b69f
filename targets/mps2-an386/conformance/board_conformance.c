/* otter on mps2-an386: the board's conformance test device (see board_conformance.h). */
#include "board_conformance.h"

#include <stdlib.h>
#include <string.h>

#include "board_layout.h"
#include "otter/ota_boot.h"
#include "otter/ota_port_flash.h"
#include "ota_test_sign.h"

typedef struct board_conf_dev {
    const board_conf_backing_t *backing;
    uint8_t *mem;
    board_flash_t drv;
    ota_port_flash_config_t cfg;
    ota_flash_t driver; /* the driver itself; cfg.flash passes through to it */
    int fail_next_read; /* a planted read fault, for the next read only */
    ota_port_flash_t port;
    ota_boot_result_t boot;
    ota_verify_signer_t signer;
    uint8_t pem[2048];
    uint8_t scratch[256];
} board_conf_dev_t;

/* The port sees the driver through these, so that a test can plant a read
 * fault (the driver itself has no fault hooks). */
static ota_err_t pass_read(void *ctx, uint32_t addr, void *buf, uint32_t len)
{
    board_conf_dev_t *d = ctx;
    if (d->fail_next_read) {
        d->fail_next_read = 0;
        return OTA_ERR_IO;
    }
    return d->driver.read(d->driver.ctx, addr, buf, len);
}

static ota_err_t pass_program(void *ctx, uint32_t addr, const void *buf, uint32_t len)
{
    board_conf_dev_t *d = ctx;
    return d->driver.program(d->driver.ctx, addr, buf, len);
}

static ota_err_t pass_erase(void *ctx, uint32_t addr, uint32_t len)
{
    board_conf_dev_t *d = ctx;
    return d->driver.erase(d->driver.ctx, addr, len);
}

static ota_err_t pass_sector_info(void *ctx, uint32_t addr, uint32_t *start, uint32_t *size)
{
    board_conf_dev_t *d = ctx;
    return d->driver.sector_info(d->driver.ctx, addr, start, size);
}

/* Starts the driver over the region, writing through to the backing store. */
static int start_driver(board_conf_dev_t *d)
{
    const board_conf_backing_t *b = d->backing;
    if (board_flash_init(&d->drv, d->mem, BOARD_FLASH_SIZE, BOARD_SECTOR_SIZE, BOARD_WRITE_UNIT,
                         BOARD_ERASED, b->persist, b->ctx, &d->driver) != OTA_OK) {
        return -1;
    }
    d->fail_next_read = 0;
    d->cfg.flash = d->driver;
    d->cfg.flash.ctx = d;
    d->cfg.flash.read = pass_read;
    d->cfg.flash.program = pass_program;
    d->cfg.flash.erase = pass_erase;
    d->cfg.flash.sector_info = pass_sector_info;
    return 0;
}

/* The bootloader's decision from the flash, then the port. */
static int boot(board_conf_dev_t *d, ota_pal_t *pal)
{
    ota_boot_config_t boot_cfg;
    memset(&d->port, 0xa5, sizeof d->port);
    memset(&d->boot, 0, sizeof d->boot);
    d->boot.slot = OTA_BOOT_NO_SLOT;
    memset(pal, 0, sizeof *pal);
    ota_err_t err = ota_port_flash_boot_config(&d->cfg, &d->cfg.flash, d->scratch,
                                               sizeof d->scratch, &boot_cfg);
    if (err == OTA_OK) {
        err = ota_boot_decide(&boot_cfg, &d->boot);
    }
    if (err != OTA_OK && d->boot.slot == OTA_BOOT_NO_SLOT) {
        return -1;
    }
    ota_err_t port_err = ota_port_flash_init(&d->port, &d->cfg, &d->boot, pal);
    return err == OTA_OK && port_err == OTA_OK ? 0 : -1;
}

int board_conformance_setup(const void *param, const uint8_t *factory, uint32_t len, void **dev,
                            ota_pal_t *pal)
{
    const board_conf_backing_t *b = param;
    board_conf_dev_t *d = calloc(1, sizeof *d);
    size_t pem_len = 0;
    ota_boot_layout_t layout = BOARD_BOOT_LAYOUT;
    if (d == NULL) {
        return -1;
    }
    d->backing = b;
    d->mem = b->memory(b->ctx);
    memset(d->mem, BOARD_ERASED, BOARD_FLASH_SIZE);
    if (len > layout.slot_size || b->create(b->ctx, d->mem, BOARD_FLASH_SIZE) != 0 ||
        ota_test_read_file(OTA_TEST_KEYS_DIR "/codesign-test.crt", d->pem, sizeof d->pem,
                           &pem_len) != 0 ||
        start_driver(d) != 0) {
        free(d);
        return -1;
    }
    d->signer.name = OTA_CONFORMANCE_CERT;
    d->signer.pem = d->pem;
    d->signer.pem_len = pem_len;
    d->cfg.layout = layout;
    d->cfg.signers = &d->signer;
    d->cfg.signer_count = 1;
    /* The factory image, programmed as the production line does (the tail
     * padded with erased bytes to a whole write unit). */
    uint32_t whole = len / BOARD_WRITE_UNIT * BOARD_WRITE_UNIT;
    uint8_t tail[BOARD_WRITE_UNIT];
    memset(tail, BOARD_ERASED, sizeof tail);
    memcpy(tail, factory + whole, len - whole);
    const ota_flash_t *f = &d->cfg.flash;
    if ((whole > 0u && f->program(f->ctx, layout.slot_addr[0], factory, whole) != OTA_OK) ||
        (whole < len &&
         f->program(f->ctx, layout.slot_addr[0] + whole, tail, sizeof tail) != OTA_OK) ||
        boot(d, pal) != 0) {
        free(d);
        return -1;
    }
    *dev = d;
    return 0;
}

int board_conformance_reboot(void *dev, ota_pal_t *pal)
{
    board_conf_dev_t *d = dev;
    const board_conf_backing_t *b = d->backing;
    /* RAM is gone; the flash is what the backing store kept. */
    memset(d->mem, 0x5a, BOARD_FLASH_SIZE);
    if (b->load(b->ctx, d->mem, BOARD_FLASH_SIZE) != 0 || start_driver(d) != 0) {
        return -1;
    }
    return boot(d, pal);
}

int board_conformance_running_is(void *dev, const uint8_t *img, uint32_t len)
{
    board_conf_dev_t *d = dev;
    if (d->boot.slot > 1u || len > d->cfg.layout.slot_size) {
        return 0;
    }
    return memcmp(d->mem + d->cfg.layout.slot_addr[d->boot.slot], img, len) == 0;
}

void board_conformance_teardown(void *dev)
{
    free(dev);
}

int board_conformance_fail_next_read(void *dev)
{
    board_conf_dev_t *d = dev;
    d->fail_next_read = 1;
    return 0;
}

/* ---- the host's backing store ---- */

static uint8_t *g_host_mem;
static uint8_t *g_host_file;

static uint8_t *host_memory(void *ctx)
{
    (void)ctx;
    if (g_host_mem == NULL) {
        g_host_mem = malloc(BOARD_FLASH_SIZE);
        g_host_file = malloc(BOARD_FLASH_SIZE);
    }
    return g_host_mem;
}

static int host_create(void *ctx, const uint8_t *mem, uint32_t size)
{
    (void)ctx;
    if (g_host_file == NULL) {
        return -1;
    }
    memcpy(g_host_file, mem, size);
    return 0;
}

static ota_err_t host_persist(void *ctx, uint32_t addr, const uint8_t *data, uint32_t len)
{
    (void)ctx;
    memcpy(g_host_file + addr, data, len);
    return OTA_OK;
}

static int host_load(void *ctx, uint8_t *mem, uint32_t size)
{
    (void)ctx;
    memcpy(mem, g_host_file, size);
    return 0;
}

const board_conf_backing_t board_conf_host_backing = {NULL, host_memory, host_create, host_persist,
                                                      host_load};
