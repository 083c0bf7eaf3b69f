/*
 * libFuzzer harness: the bootloader and the flash port on arbitrary metadata.
 *
 * The input becomes the contents of the two boot-record copies and of the two
 * progress banks of a simulated flash whose slots hold a factory image and a
 * signed new image. Flag bits in the first byte fix up record CRCs and plant
 * the new image's real signature and signer key id, so that legal-looking records reach every
 * branch. Whatever the metadata:
 *   - the boot decision names slot 0 or 1, or (for metadata it cannot trust)
 *     no slot at all, or on an error only the committed slot;
 *   - a pending (trial) boot runs an image that verifies against the signature
 *     and the size in the record, and is not below the minimum version;
 *   - the progress store never returns more than its capacity, and a save
 *     followed by a load returns exactly what was saved.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otter/ota_boot.h"
#include "otter/ota_bytes.h"
#include "otter/ota_crc32.h"
#include "ota_flashsim.h"
#include "otter/ota_image_header.h"
#include "otter/ota_port_flash.h"
#include "ota_test_sign.h"
#include "otter/ota_verify.h"

#define SECTOR 4096u
#define FLASH_SIZE (16u * SECTOR)
#define IMG_LEN 3000u

static uint8_t g_factory[IMG_LEN];
static uint8_t g_update[IMG_LEN];
static uint8_t g_sig[OTA_TEST_SIG_MAX];
static size_t g_sig_len;
static uint8_t g_pem[4096];
static size_t g_pem_len;
static uint32_t g_key_id;

typedef struct slot_reader {
    const ota_flash_t *flash;
    uint32_t base;
} slot_reader_t;

static int32_t read_slot(void *ctx, uint32_t off, uint8_t *buf, uint32_t len)
{
    const slot_reader_t *r = ctx;
    return r->flash->read(r->flash->ctx, r->base + off, buf, len) == OTA_OK ? (int32_t)len : -1;
}

static void make_image(uint8_t *buf, uint32_t version, uint8_t fill)
{
    ota_image_header_t hdr = {version, IMG_LEN, 0};
    memset(buf, fill, IMG_LEN);
    if (ota_image_header_encode(&hdr, buf) != OTA_OK) {
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    make_image(g_factory, ota_version_make(1, 0, 0), 0x11);
    make_image(g_update, ota_version_make(1, 1, 0), 0x22);
    if (ota_test_sign_sha256_ecdsa(OTA_TEST_KEYS_DIR "/codesign-test.key", g_update, IMG_LEN, g_sig,
                                   sizeof g_sig, &g_sig_len) != 0 ||
        ota_test_read_file(OTA_TEST_KEYS_DIR "/codesign-test.crt", g_pem, sizeof g_pem,
                           &g_pem_len) != 0 ||
        ota_verify_key_id(g_pem, g_pem_len, &g_key_id) != OTA_OK) {
        abort();
    }
    return 0;
}

/* Copy input bytes into a record copy, optionally planting the real signature and a CRC. */
static void plant_record(uint8_t *dst, const uint8_t *src, size_t n, uint8_t flags, int copy)
{
    memcpy(dst, src, n);
    if (flags & 4u) {
        ota_put_le32(dst + 24, ota_version_make(1, 1, 0));
        ota_put_le32(dst + 28, IMG_LEN);
        dst[32] = (uint8_t)g_sig_len;
        ota_put_le32(dst + 36, g_key_id);
        memcpy(dst + 40, g_sig, g_sig_len);
    }
    if (flags & (copy == 0 ? 1u : 2u)) {
        ota_put_le32(dst, OTA_BOOT_RECORD_MAGIC);
        ota_put_le16(dst + 4, OTA_BOOT_RECORD_FORMAT);
        ota_put_le16(dst + 6, OTA_BOOT_RECORD_SIZE);
        ota_put_le32(dst + 112, ota_crc32(0, dst, 112));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t mem[FLASH_SIZE];
    static ota_port_flash_t port;
    ota_flashsim_t sim;
    ota_flashsim_geometry_t geo = {FLASH_SIZE, SECTOR, NULL, 0, 1, 0xff};
    ota_port_flash_config_t cfg;
    ota_verify_signer_t signer = {"codesign.crt", g_pem, g_pem_len};
    uint8_t scratch[256];
    ota_boot_config_t boot_cfg;
    ota_boot_result_t result;
    ota_pal_t pal;

    if (size < 1u + 2u * OTA_BOOT_RECORD_SIZE) {
        return 0;
    }
    if (ota_flashsim_init(&sim, &geo, mem, sizeof mem) != OTA_OK) {
        abort();
    }
    memset(&cfg, 0, sizeof cfg);
    cfg.flash = ota_flashsim_driver(&sim);
    cfg.signers = &signer;
    cfg.signer_count = 1;
    if (ota_boot_layout_uniform(&cfg.flash, &cfg.layout) != OTA_OK) {
        abort();
    }
    const ota_boot_layout_t *l = &cfg.layout;
    memcpy(mem + l->slot_addr[0], g_factory, IMG_LEN);
    memcpy(mem + l->slot_addr[1], g_update, IMG_LEN);
    uint8_t flags = data[0];
    plant_record(mem + l->record_addr[0], data + 1, OTA_BOOT_RECORD_SIZE, flags, 0);
    plant_record(mem + l->record_addr[1], data + 1 + OTA_BOOT_RECORD_SIZE, OTA_BOOT_RECORD_SIZE,
                 flags, 1);
    size_t rest = size - 1u - 2u * OTA_BOOT_RECORD_SIZE;
    const uint8_t *prog = data + 1 + 2u * OTA_BOOT_RECORD_SIZE;
    for (uint32_t b = 0; b < 2u && rest > 0u; b++) {
        size_t n = rest < l->progress_size ? rest : l->progress_size;
        memcpy(mem + l->progress_addr[b], prog, n);
        prog += n;
        rest -= n;
    }

    /* The boot decision. */
    if (ota_port_flash_boot_config(&cfg, &cfg.flash, scratch, sizeof scratch, &boot_cfg) !=
        OTA_OK) {
        abort();
    }
    if (ota_boot_decide(&boot_cfg, &result) != OTA_OK) {
        /* Metadata it cannot trust: boot nothing, or only the committed image. */
        if (result.slot == OTA_BOOT_NO_SLOT) {
            return 0;
        }
        if (result.pending || result.slot != result.record.active_slot) {
            abort();
        }
    }
    if (result.slot > 1u) {
        abort();
    }
    if (result.pending) {
        const ota_boot_record_t *r = &result.record;
        slot_reader_t reader = {&cfg.flash, l->slot_addr[result.slot]};
        uint8_t chunk[128];
        ota_image_header_t hdr;
        if (r->state != OTA_BOOT_STATE_TRIAL || result.slot != r->trial_slot ||
            ota_image_header_decode(mem + l->slot_addr[result.slot], IMG_LEN, &hdr) != OTA_OK ||
            hdr.version < r->min_version || hdr.image_size != r->trial_size ||
            ota_verify_sha256_ecdsa(g_pem, g_pem_len, r->sig, r->sig_len, read_slot, &reader,
                                    r->trial_size, chunk, sizeof chunk) != OTA_OK) {
            abort(); /* an unverified or rolled-back image would run */
        }
    } else if (result.slot != result.record.active_slot) {
        abort();
    }

    /* The progress store on whatever the banks hold. */
    uint8_t rec[64];
    uint8_t got[64];
    if (ota_port_flash_init(&port, &cfg, &result, &pal) != OTA_OK) {
        abort();
    }
    int32_t n = pal.progress_load(pal.ctx, got, sizeof got);
    if (n != OTA_ERR_NOT_FOUND && n != OTA_ERR_OUT_OF_MEMORY &&
        (n < 0 || n > (int32_t)sizeof got)) {
        abort();
    }
    for (uint32_t i = 0; i < 2u; i++) {
        memset(rec, (int)(0x30u + i), sizeof rec);
        uint32_t len = 5u + i * 40u;
        if (pal.progress_save(pal.ctx, rec, len) != OTA_OK ||
            pal.progress_load(pal.ctx, got, sizeof got) != (int32_t)len ||
            memcmp(got, rec, len) != 0) {
            abort();
        }
    }
    return 0;
}
