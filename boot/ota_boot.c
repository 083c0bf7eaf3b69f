/* otter: bootloader logic for two image slots (see ota_boot.h). */
#include "otter/ota_boot.h"

#include <string.h>

#include "otter/ota_image_header.h"
#include "otter/ota_verify.h"

/* Reader over one slot, for signature verification. */
typedef struct slot_reader {
    const ota_flash_t *flash;
    uint32_t base;
} slot_reader_t;

static int32_t slot_read(void *ctx, uint32_t offset, uint8_t *buf, uint32_t len)
{
    const slot_reader_t *r = (const slot_reader_t *)ctx;
    ota_err_t err = r->flash->read(r->flash->ctx, r->base + offset, buf, len);
    return err == OTA_OK ? (int32_t)len : (int32_t)err;
}

static int config_ok(const ota_boot_config_t *cfg)
{
    return cfg != NULL && cfg->flash != NULL && cfg->layout != NULL && cfg->scratch != NULL &&
           cfg->scratch_len >= OTA_IMAGE_HEADER_SIZE && cfg->max_attempts <= OTA_BOOT_MAX_ATTEMPTS;
}

static uint8_t budget(const ota_boot_config_t *cfg)
{
    return cfg->max_attempts == 0u ? (uint8_t)OTA_BOOT_DEFAULT_ATTEMPTS : cfg->max_attempts;
}

/* Read and decode the header of the image in a slot. */
static ota_err_t slot_header(const ota_boot_config_t *cfg, uint8_t slot, ota_image_header_t *hdr)
{
    ota_err_t err = cfg->flash->read(cfg->flash->ctx, cfg->layout->slot_addr[slot], cfg->scratch,
                                     OTA_IMAGE_HEADER_SIZE);
    if (err != OTA_OK) {
        return err;
    }
    return ota_image_header_decode(cfg->scratch, OTA_IMAGE_HEADER_SIZE, hdr);
}

/* The signer whose key has this id, or NULL. */
static const ota_verify_signer_t *find_signer(const ota_boot_config_t *cfg, uint32_t key_id)
{
    for (size_t i = 0; i < cfg->signer_count; i++) {
        uint32_t id;
        if (ota_verify_key_id(cfg->signers[i].pem, cfg->signers[i].pem_len, &id) == OTA_OK &&
            id == key_id) {
            return &cfg->signers[i];
        }
    }
    return NULL;
}

/* Check the trial image: header, size, version floor and signature. */
static ota_err_t check_trial(const ota_boot_config_t *cfg, const ota_boot_record_t *rec)
{
    ota_image_header_t hdr;
    ota_err_t err = slot_header(cfg, rec->trial_slot, &hdr);
    if (err != OTA_OK) {
        return err;
    }
    if (hdr.image_size != rec->trial_size || hdr.version != rec->trial_version ||
        rec->trial_size > cfg->layout->slot_size) {
        return OTA_ERR_BAD_IMAGE;
    }
    if (hdr.version < rec->min_version) {
        return OTA_ERR_ROLLBACK;
    }
    const ota_verify_signer_t *signer = find_signer(cfg, rec->signer);
    if (signer == NULL) {
        return OTA_ERR_BAD_SIGNER_CERT;
    }
    slot_reader_t reader = {cfg->flash, cfg->layout->slot_addr[rec->trial_slot]};
    return ota_verify_sha256_ecdsa(signer->pem, signer->pem_len, rec->sig, rec->sig_len, slot_read,
                                   &reader, rec->trial_size, cfg->scratch, cfg->scratch_len);
}

ota_err_t ota_boot_layout_check(const ota_flash_t *flash, const ota_boot_layout_t *layout)
{
    if (flash == NULL || layout == NULL || layout->slot_size == 0u) {
        return OTA_ERR_INVALID_ARG;
    }
    /* Regions: 2 slots, 2 record sectors, 2 progress banks. */
    uint32_t begin[6];
    uint32_t end[6];
    for (uint32_t i = 0; i < 2u; i++) {
        uint32_t start;
        uint32_t size;
        begin[i] = layout->slot_addr[i];
        end[i] = layout->slot_addr[i] + layout->slot_size;
        if (flash->sector_info(flash->ctx, layout->record_addr[i], &start, &size) != OTA_OK ||
            start != layout->record_addr[i]) {
            return OTA_ERR_INVALID_ARG;
        }
        begin[2 + i] = start;
        end[2 + i] = start + size;
        begin[4 + i] = layout->progress_addr[i];
        end[4 + i] = layout->progress_addr[i] + layout->progress_size;
    }
    for (uint32_t i = 0; i < 6u; i++) {
        uint32_t start;
        uint32_t size;
        if (i >= 4u && layout->progress_size == 0u) {
            continue;
        }
        if (end[i] <= begin[i] || end[i] > flash->size) {
            return OTA_ERR_INVALID_ARG;
        }
        /* Both ends on sector boundaries. */
        if (flash->sector_info(flash->ctx, begin[i], &start, &size) != OTA_OK ||
            start != begin[i]) {
            return OTA_ERR_INVALID_ARG;
        }
        if (end[i] < flash->size &&
            (flash->sector_info(flash->ctx, end[i], &start, &size) != OTA_OK || start != end[i])) {
            return OTA_ERR_INVALID_ARG;
        }
        for (uint32_t j = 0; j < i; j++) {
            if (j >= 4u && layout->progress_size == 0u) {
                continue;
            }
            if (begin[i] < end[j] && begin[j] < end[i]) {
                return OTA_ERR_INVALID_ARG;
            }
        }
    }
    return OTA_OK;
}

ota_err_t ota_boot_layout_uniform(const ota_flash_t *flash, ota_boot_layout_t *layout)
{
    uint32_t start;
    uint32_t sector;
    if (flash == NULL || layout == NULL ||
        flash->sector_info(flash->ctx, 0, &start, &sector) != OTA_OK || sector == 0u) {
        return OTA_ERR_INVALID_ARG;
    }
    uint32_t sectors = flash->size / sector;
    if (sectors < 6u || sectors * sector != flash->size) {
        return OTA_ERR_INVALID_ARG;
    }
    uint32_t per_slot = (sectors - 4u) / 2u;
    memset(layout, 0, sizeof *layout);
    layout->slot_size = per_slot * sector;
    layout->slot_addr[0] = 0;
    layout->slot_addr[1] = layout->slot_size;
    layout->progress_addr[0] = flash->size - 4u * sector;
    layout->progress_addr[1] = flash->size - 3u * sector;
    layout->progress_size = sector;
    layout->record_addr[0] = flash->size - 2u * sector;
    layout->record_addr[1] = flash->size - sector;
    return ota_boot_layout_check(flash, layout);
}

ota_err_t ota_boot_state(const ota_boot_config_t *cfg, ota_boot_record_t *rec)
{
    if (!config_ok(cfg) || rec == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    ota_err_t err = ota_boot_record_load(cfg->flash, cfg->layout->record_addr, rec, NULL);
    if (err != OTA_ERR_NOT_FOUND) {
        return err;
    }
    /* A new device: slot 0 holds the factory image. Nothing is written. */
    ota_image_header_t hdr;
    memset(rec, 0, sizeof *rec);
    rec->state = (uint8_t)OTA_BOOT_STATE_NONE;
    err = slot_header(cfg, 0, &hdr);
    if (err != OTA_OK) {
        return err;
    }
    rec->active_version = hdr.version;
    return OTA_OK;
}

/* Fill a result for booting the active slot. */
static void boot_active(const ota_boot_record_t *rec, ota_boot_result_t *out)
{
    out->slot = rec->active_slot;
    out->pending = 0;
    out->version = rec->active_version;
    out->record = *rec;
}

ota_err_t ota_boot_decide(const ota_boot_config_t *cfg, ota_boot_result_t *out)
{
    ota_boot_record_t rec;
    if (out == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    ota_err_t err = ota_boot_state(cfg, &rec);
    if (err != OTA_OK) {
        memset(out, 0, sizeof *out);
        out->slot = OTA_BOOT_NO_SLOT;
        return err;
    }
    if (rec.state != (uint8_t)OTA_BOOT_STATE_TRIAL) {
        boot_active(&rec, out);
        return OTA_OK;
    }
    ota_boot_record_t next = rec;
    ota_err_t verdict = rec.attempts_left > 0u ? check_trial(cfg, &rec) : OTA_ERR_WRONG_STATE;
    if (verdict == OTA_ERR_IO) {
        /* The flash failed, not the image: change nothing, run the old image. */
        boot_active(&rec, out);
        return verdict;
    }
    if (verdict == OTA_OK) {
        /* Spend one attempt before running the image, so that a crash or a
         * hang in it can never keep the device in a boot loop. */
        next.attempts_left = (uint8_t)(rec.attempts_left - 1u);
        next.trial_booted = 1;
        err = ota_boot_record_store(cfg->flash, cfg->layout->record_addr, &next);
        if (err != OTA_OK) {
            boot_active(&rec, out);
            return err;
        }
        out->slot = next.trial_slot;
        out->pending = 1;
        out->version = next.trial_version;
        out->record = next;
        return OTA_OK;
    }
    /* Budget spent or the image does not check: go back. */
    next.state = (uint8_t)OTA_BOOT_STATE_REVERTED;
    next.attempts_left = 0;
    err = ota_boot_record_store(cfg->flash, cfg->layout->record_addr, &next);
    boot_active(err == OTA_OK ? &next : &rec, out);
    return err;
}

ota_err_t ota_boot_request_trial(const ota_boot_config_t *cfg, uint8_t slot, uint32_t size,
                                 const uint8_t *sig, size_t sig_len, uint32_t signer)
{
    ota_boot_record_t rec;
    ota_image_header_t hdr;
    if (!config_ok(cfg) || slot > 1u || sig == NULL || sig_len == 0u ||
        sig_len > OTA_BOOT_SIG_MAX || size == 0u || size > cfg->layout->slot_size) {
        return OTA_ERR_INVALID_ARG;
    }
    ota_err_t err = ota_boot_state(cfg, &rec);
    if (err != OTA_OK) {
        return err;
    }
    if (rec.state == (uint8_t)OTA_BOOT_STATE_TRIAL) {
        return OTA_ERR_WRONG_STATE;
    }
    if (slot == rec.active_slot) {
        return OTA_ERR_INVALID_ARG;
    }
    err = slot_header(cfg, slot, &hdr);
    if (err != OTA_OK) {
        return err;
    }
    if (hdr.image_size != size) {
        return OTA_ERR_BAD_IMAGE;
    }
    if (hdr.version < rec.min_version) {
        return OTA_ERR_ROLLBACK;
    }
    rec.state = (uint8_t)OTA_BOOT_STATE_TRIAL;
    rec.trial_slot = slot;
    rec.attempts_left = budget(cfg);
    rec.trial_version = hdr.version;
    rec.trial_size = size;
    rec.trial_booted = 0;
    rec.signer = signer;
    memset(rec.sig, 0, sizeof rec.sig);
    memcpy(rec.sig, sig, sig_len);
    rec.sig_len = (uint8_t)sig_len;
    return ota_boot_record_store(cfg->flash, cfg->layout->record_addr, &rec);
}

/* The current state, which must be a trial. */
static ota_err_t load_trial(const ota_boot_config_t *cfg, ota_boot_record_t *rec)
{
    if (!config_ok(cfg)) {
        return OTA_ERR_INVALID_ARG;
    }
    ota_err_t err = ota_boot_state(cfg, rec);
    if (err != OTA_OK) {
        return err;
    }
    return rec->state == (uint8_t)OTA_BOOT_STATE_TRIAL ? OTA_OK : OTA_ERR_WRONG_STATE;
}

ota_err_t ota_boot_confirm(const ota_boot_config_t *cfg)
{
    ota_boot_record_t rec;
    ota_err_t err = load_trial(cfg, &rec);
    if (err != OTA_OK) {
        return err;
    }
    if (!rec.trial_booted) {
        return OTA_ERR_WRONG_STATE; /* never checked and started by the bootloader */
    }
    rec.state = (uint8_t)OTA_BOOT_STATE_CONFIRMED;
    rec.active_slot = rec.trial_slot;
    rec.active_version = rec.trial_version;
    if (rec.trial_version > rec.min_version) {
        rec.min_version = rec.trial_version;
    }
    rec.attempts_left = 0;
    return ota_boot_record_store(cfg->flash, cfg->layout->record_addr, &rec);
}

ota_err_t ota_boot_reject(const ota_boot_config_t *cfg)
{
    ota_boot_record_t rec;
    ota_err_t err = load_trial(cfg, &rec);
    if (err != OTA_OK) {
        return err;
    }
    rec.state = (uint8_t)OTA_BOOT_STATE_REVERTED;
    rec.attempts_left = 0;
    return ota_boot_record_store(cfg->flash, cfg->layout->record_addr, &rec);
}
