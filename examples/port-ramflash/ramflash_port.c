/* An example otter port on a flash driver, with its own layout (see ramflash_port.h). */
#include "ramflash_port.h"

#include <string.h>

#include "otter/ota_bytes.h"
#include "otter/ota_crc32.h"
#include "otter/ota_verify_close.h"

enum { IDLE = 0, OPEN = 1, CLOSED = 2, ACTIVATED = 3 };

/* A progress sector: magic, sequence, length, CRC-32 of (sequence, length,
 * payload), then the payload. A length of 0 is a cleared store. */
#define PROGRESS_MAGIC 0x53504652u /* "RFPS" */
#define PROGRESS_HEADER 16u

static ramflash_port_t *port_of(void *ctx)
{
    return (ramflash_port_t *)ctx;
}

static const ota_flash_t *flash_of(const ramflash_port_t *p)
{
    return &p->cfg.flash;
}

static uint32_t slot_base(const ramflash_port_t *p)
{
    return p->cfg.layout.slot_addr[p->target_slot];
}

static int bit_get(const uint8_t *map, uint32_t k)
{
    return (int)(((uint32_t)map[k / 8u] >> (k % 8u)) & 1u);
}

/* Is [addr, addr + len) erased? */
static ota_err_t range_erased(ramflash_port_t *p, uint32_t addr, uint32_t len, int *erased)
{
    const ota_flash_t *f = flash_of(p);
    *erased = 1;
    for (uint32_t at = 0; at < len && *erased;) {
        uint32_t n = len - at < RAMFLASH_CHUNK ? len - at : RAMFLASH_CHUNK;
        ota_err_t err = f->read(f->ctx, addr + at, p->buf, n);
        if (err != OTA_OK) {
            return err;
        }
        for (uint32_t i = 0; i < n; i++) {
            *erased &= p->buf[i] == f->erased_value;
        }
        at += n;
    }
    return OTA_OK;
}

/* Erase every sector holding a byte of [addr, addr + len). */
static ota_err_t erase_range(const ota_flash_t *f, uint32_t addr, uint32_t len)
{
    for (uint32_t end = addr + len; addr < end;) {
        uint32_t start;
        uint32_t size;
        ota_err_t err = f->sector_info(f->ctx, addr, &start, &size);
        if (err == OTA_OK) {
            err = f->erase(f->ctx, start, size);
        }
        if (err != OTA_OK) {
            return err;
        }
        addr = start + size;
    }
    return OTA_OK;
}

/* ---- receiving a file ----------------------------------------------------- */

static ota_err_t op_abort(void *ctx)
{
    ramflash_port_t *p = port_of(ctx);
    if (p == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    if (p->phase == OPEN || p->phase == CLOSED) {
        p->phase = IDLE;
    }
    return OTA_OK;
}

/* The slot a new or resumed file goes to: never the one on trial or running. */
static ota_err_t open_target(ramflash_port_t *p, const ota_pal_file_t *file)
{
    ota_boot_record_t rec;
    if (file->size > p->cfg.layout.slot_size) {
        return OTA_ERR_RX_FILE_TOO_LARGE;
    }
    (void)op_abort(p);
    if (ota_boot_state(&p->boot_cfg, &rec) != OTA_OK ||
        rec.state == (uint8_t)OTA_BOOT_STATE_TRIAL) {
        return OTA_ERR_RX_FILE_CREATE_FAILED;
    }
    p->target_slot = (uint8_t)(rec.active_slot ^ 1u);
    if (p->target_slot == p->running_slot) {
        return OTA_ERR_RX_FILE_CREATE_FAILED; /* a refused image still runs there */
    }
    p->invalid = 0;
    return OTA_OK;
}

static ota_err_t op_create_file(void *ctx, const ota_pal_file_t *file)
{
    ramflash_port_t *p = port_of(ctx);
    if (p == NULL || file == NULL || file->size == 0u) {
        return OTA_ERR_INVALID_ARG;
    }
    ota_err_t err = open_target(p, file);
    if (err != OTA_OK) {
        return err;
    }
    if (erase_range(flash_of(p), slot_base(p), file->size) != OTA_OK) {
        return OTA_ERR_RX_FILE_CREATE_FAILED;
    }
    p->file_size = file->size;
    p->phase = OPEN;
    return OTA_OK;
}

/*
 * Resume: keep the blocks marked done. A sector where a block not done on
 * entry has a programmed byte (a write the cut interrupted) is erased, and
 * every block touching it is marked not done; blocks done on entry hold
 * their right bytes in the sectors they straddle into.
 */
static ota_err_t op_resume_file(void *ctx, const ota_pal_file_t *file, uint32_t block_size,
                                uint8_t *done, uint32_t block_count)
{
    ramflash_port_t *p = port_of(ctx);
    if (p == NULL || file == NULL || done == NULL || file->size == 0u || block_size == 0u ||
        block_count != (file->size - 1u) / block_size + 1u) {
        return OTA_ERR_INVALID_ARG;
    }
    if (block_count > RAMFLASH_MAX_BLOCKS) {
        return OTA_ERR_RX_FILE_TOO_LARGE;
    }
    ota_err_t err = open_target(p, file);
    if (err != OTA_OK) {
        return err;
    }
    const ota_flash_t *f = flash_of(p);
    uint32_t base = slot_base(p);
    int blank;
    if (range_erased(p, base, file->size, &blank) != OTA_OK) {
        return OTA_ERR_IO;
    }
    if (blank) {
        return OTA_ERR_NOT_FOUND;
    }
    memcpy(p->entry_done, done, (block_count + 7u) / 8u);
    for (uint32_t at = 0; at < file->size;) {
        uint32_t start;
        uint32_t len;
        if (f->sector_info(f->ctx, base + at, &start, &len) != OTA_OK) {
            return OTA_ERR_IO;
        }
        uint32_t lo = start - base;
        uint32_t hi = lo + len < file->size ? lo + len : file->size;
        int dirty = 0;
        for (uint32_t b = lo / block_size; b <= (hi - 1u) / block_size && !dirty; b++) {
            if (bit_get(p->entry_done, b)) {
                continue;
            }
            uint32_t from = b * block_size > lo ? b * block_size : lo;
            uint32_t to = (b + 1u) * block_size < hi ? (b + 1u) * block_size : hi;
            int erased;
            if (range_erased(p, base + from, to - from, &erased) != OTA_OK) {
                return OTA_ERR_IO;
            }
            dirty = !erased;
        }
        if (dirty) {
            if (f->erase(f->ctx, start, len) != OTA_OK) {
                return OTA_ERR_IO;
            }
            for (uint32_t b = lo / block_size; b <= (hi - 1u) / block_size; b++) {
                done[b / 8u] = (uint8_t)(done[b / 8u] & ~(1u << (b % 8u)));
            }
        }
        at = hi;
    }
    p->file_size = file->size;
    p->phase = OPEN;
    return OTA_OK;
}

/* Check (program == 0) or program (1) data at slot offset off: every byte
 * must be erased or already hold its new value. */
static ota_err_t write_pass(ramflash_port_t *p, uint32_t off, const uint8_t *data, uint32_t size,
                            int program)
{
    const ota_flash_t *f = flash_of(p);
    for (uint32_t at = 0; at < size;) {
        uint32_t n = size - at < RAMFLASH_CHUNK ? size - at : RAMFLASH_CHUNK;
        ota_err_t err = f->read(f->ctx, slot_base(p) + off + at, p->cmp, n);
        if (err != OTA_OK) {
            return err;
        }
        for (uint32_t i = 0; i < n;) {
            if (p->cmp[i] == data[at + i]) {
                i++;
                continue;
            }
            if (p->cmp[i] != f->erased_value) {
                return OTA_ERR_FLASH_RULE;
            }
            uint32_t run = i;
            while (run < n && p->cmp[run] == f->erased_value && data[at + run] != p->cmp[run]) {
                run++;
            }
            if (program) {
                err = f->program(f->ctx, slot_base(p) + off + at + i, data + at + i, run - i);
                if (err != OTA_OK) {
                    return err;
                }
            }
            i = run;
        }
        at += n;
    }
    return OTA_OK;
}

static int32_t op_write_block(void *ctx, uint32_t offset, const uint8_t *data, uint32_t size)
{
    ramflash_port_t *p = port_of(ctx);
    if (p == NULL || data == NULL || size == 0u) {
        return OTA_ERR_INVALID_ARG;
    }
    if (p->phase != OPEN) {
        return OTA_ERR_NULL_FILE_CONTEXT;
    }
    if (offset > p->file_size || size > p->file_size - offset) {
        return OTA_ERR_INVALID_ARG;
    }
    /* Refused whole before anything is programmed. */
    ota_err_t err = write_pass(p, offset, data, size, 0);
    if (err == OTA_OK) {
        err = write_pass(p, offset, data, size, 1);
    }
    return err == OTA_OK ? (int32_t)size : (int32_t)err;
}

static int32_t op_read_back(void *ctx, uint32_t offset, uint8_t *buf, uint32_t len)
{
    ramflash_port_t *p = port_of(ctx);
    if (p == NULL || buf == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    if (p->phase != OPEN && p->phase != CLOSED) {
        return OTA_ERR_NULL_FILE_CONTEXT;
    }
    if (offset > p->file_size || len > p->file_size - offset) {
        return OTA_ERR_INVALID_ARG;
    }
    const ota_flash_t *f = flash_of(p);
    return f->read(f->ctx, slot_base(p) + offset, buf, len) == OTA_OK ? (int32_t)len : OTA_ERR_IO;
}

static ota_err_t op_close_file(void *ctx, const ota_pal_file_t *file)
{
    ramflash_port_t *p = port_of(ctx);
    if (p == NULL || file == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    if (p->phase != OPEN) {
        return OTA_ERR_NULL_FILE_CONTEXT;
    }
    p->sig_len = 0;
    if (file->signature != NULL && file->signature_len <= OTA_PAL_SIGNATURE_MAX) {
        memcpy(p->sig, file->signature, file->signature_len);
        p->sig_len = (uint8_t)file->signature_len;
    }
    const ota_verify_reader_t reader = {op_read_back, p, p->buf, RAMFLASH_CHUNK};
    ota_err_t err = ota_verify_close(
        file, p->file_size,
        ota_verify_find_signer(p->cfg.signers, p->cfg.signer_count, file->cert_name), &p->signer,
        NULL, &reader);
    p->phase = err == OTA_OK ? CLOSED : IDLE;
    p->invalid = (uint8_t)(err != OTA_OK);
    return err;
}

/* ---- image states ------------------------------------------------------------- */

static int trial_running(const ramflash_port_t *p)
{
    ota_boot_record_t rec;
    return ota_boot_state(&p->boot_cfg, &rec) == OTA_OK &&
           rec.state == (uint8_t)OTA_BOOT_STATE_TRIAL && rec.trial_booted && p->running_pending &&
           p->running_slot == rec.trial_slot;
}

static ota_err_t op_activate(void *ctx)
{
    ramflash_port_t *p = port_of(ctx);
    if (p == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    if (p->phase != CLOSED) {
        return OTA_ERR_ACTIVATE_FAILED;
    }
    ota_err_t err = ota_boot_request_trial(&p->boot_cfg, p->target_slot, p->file_size, p->sig,
                                           p->sig_len, p->signer);
    if (err != OTA_OK) {
        return err == OTA_ERR_ROLLBACK ? err : OTA_ERR_ACTIVATE_FAILED;
    }
    p->phase = ACTIVATED;
    return OTA_OK;
}

static ota_err_t op_reset(void *ctx)
{
    /* A board resets its MCU here; the host example has nothing to reset. */
    return ctx == NULL ? OTA_ERR_INVALID_ARG : OTA_OK;
}

/* Refuse the new image: the open or closed file, an activated trial, a running trial. */
static ota_err_t refuse_new_image(ramflash_port_t *p)
{
    ota_boot_record_t rec;
    (void)op_abort(p);
    p->invalid = 1;
    ota_err_t err = ota_boot_state(&p->boot_cfg, &rec);
    if (err == OTA_OK && rec.state == (uint8_t)OTA_BOOT_STATE_TRIAL) {
        err = ota_boot_reject(&p->boot_cfg);
    }
    p->running_pending = 0;
    if (p->phase == ACTIVATED) {
        p->phase = IDLE;
    }
    return err;
}

static ota_err_t op_set_image_state(void *ctx, ota_image_state_t state)
{
    ramflash_port_t *p = port_of(ctx);
    if (p == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    switch (state) {
    case OTA_IMAGE_STATE_TESTING:
        return OTA_OK;
    case OTA_IMAGE_STATE_ACCEPTED:
        if (!trial_running(p) || ota_boot_confirm(&p->boot_cfg) != OTA_OK) {
            return OTA_ERR_COMMIT_FAILED;
        }
        p->running_pending = 0;
        return OTA_OK;
    case OTA_IMAGE_STATE_REJECTED:
        return refuse_new_image(p) == OTA_OK ? OTA_OK : OTA_ERR_REJECT_FAILED;
    case OTA_IMAGE_STATE_ABORTED:
        return refuse_new_image(p) == OTA_OK ? OTA_OK : OTA_ERR_ABORT_FAILED;
    case OTA_IMAGE_STATE_UNKNOWN:
    default:
        return OTA_ERR_BAD_IMAGE_STATE;
    }
}

static ota_pal_image_state_t op_get_image_state(void *ctx)
{
    ramflash_port_t *p = port_of(ctx);
    if (p == NULL || p->invalid) {
        return OTA_PAL_IMAGE_STATE_INVALID;
    }
    return trial_running(p) ? OTA_PAL_IMAGE_STATE_PENDING_COMMIT : OTA_PAL_IMAGE_STATE_VALID;
}

/* ---- the progress store: two sectors, one record each, written in turn -------- */

typedef struct progress_copy {
    int legal;
    uint32_t seq;
    uint32_t len;
} progress_copy_t;

static uint32_t progress_capacity(const ramflash_config_t *cfg)
{
    return cfg->layout.progress_size - PROGRESS_HEADER;
}

/* Read and check the copy in sector i. */
static ota_err_t progress_scan(ramflash_port_t *p, uint32_t i, progress_copy_t *c)
{
    const ota_flash_t *f = flash_of(p);
    uint32_t addr = p->cfg.layout.progress_addr[i];
    uint8_t hdr[PROGRESS_HEADER];
    memset(c, 0, sizeof *c);
    ota_err_t err = f->read(f->ctx, addr, hdr, sizeof hdr);
    if (err != OTA_OK) {
        return err;
    }
    c->seq = ota_get_le32(hdr + 4);
    c->len = ota_get_le32(hdr + 8);
    if (ota_get_le32(hdr) != PROGRESS_MAGIC || c->len > progress_capacity(&p->cfg)) {
        return OTA_OK;
    }
    uint32_t crc = ota_crc32(0, hdr + 4, 8);
    for (uint32_t at = 0; at < c->len;) {
        uint32_t n = c->len - at < RAMFLASH_CHUNK ? c->len - at : RAMFLASH_CHUNK;
        err = f->read(f->ctx, addr + PROGRESS_HEADER + at, p->buf, n);
        if (err != OTA_OK) {
            return err;
        }
        crc = ota_crc32(crc, p->buf, n);
        at += n;
    }
    c->legal = crc == ota_get_le32(hdr + 12);
    return OTA_OK;
}

/* The newest legal copy (-1 when none). */
static ota_err_t progress_newest(ramflash_port_t *p, progress_copy_t c[2], int *newest)
{
    for (uint32_t i = 0; i < 2u; i++) {
        ota_err_t err = progress_scan(p, i, &c[i]);
        if (err != OTA_OK) {
            return err;
        }
    }
    if (c[0].legal && c[1].legal) {
        *newest = (int32_t)(c[1].seq - c[0].seq) > 0 ? 1 : 0;
    } else {
        *newest = c[0].legal ? 0 : c[1].legal ? 1 : -1;
    }
    return OTA_OK;
}

/* Write record[0..len) into the sector that does not hold the newest copy. */
static ota_err_t progress_write(ramflash_port_t *p, const uint8_t *record, uint32_t len)
{
    progress_copy_t c[2];
    int newest;
    const ota_flash_t *f = flash_of(p);
    if (progress_newest(p, c, &newest) != OTA_OK) {
        return OTA_ERR_IO;
    }
    uint32_t to = newest == 0 ? 1u : 0u;
    uint32_t addr = p->cfg.layout.progress_addr[to];
    uint8_t hdr[PROGRESS_HEADER];
    ota_put_le32(hdr, PROGRESS_MAGIC);
    ota_put_le32(hdr + 4, newest < 0 ? 1u : c[newest].seq + 1u);
    ota_put_le32(hdr + 8, len);
    ota_put_le32(hdr + 12, ota_crc32(ota_crc32(0, hdr + 4, 8), record, len));
    /* The payload first, the header (which makes the copy legal) last. */
    if (f->erase(f->ctx, addr, p->cfg.layout.progress_size) != OTA_OK ||
        (len > 0u && f->program(f->ctx, addr + PROGRESS_HEADER, record, len) != OTA_OK) ||
        f->program(f->ctx, addr, hdr, sizeof hdr) != OTA_OK) {
        return OTA_ERR_IO;
    }
    return OTA_OK;
}

static ota_err_t op_progress_save(void *ctx, const uint8_t *record, uint32_t len)
{
    ramflash_port_t *p = port_of(ctx);
    if (p == NULL || record == NULL || len == 0u || len > progress_capacity(&p->cfg)) {
        return OTA_ERR_INVALID_ARG;
    }
    /* Blocks are programmed as they arrive: nothing is held to make durable. */
    return progress_write(p, record, len);
}

static int32_t op_progress_load(void *ctx, uint8_t *buf, uint32_t cap)
{
    ramflash_port_t *p = port_of(ctx);
    progress_copy_t c[2];
    int newest;
    if (p == NULL || buf == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    if (progress_newest(p, c, &newest) != OTA_OK) {
        return OTA_ERR_IO;
    }
    if (newest < 0 || c[newest].len == 0u) {
        return OTA_ERR_NOT_FOUND;
    }
    if (c[newest].len > cap) {
        return OTA_ERR_OUT_OF_MEMORY;
    }
    const ota_flash_t *f = flash_of(p);
    if (f->read(f->ctx, p->cfg.layout.progress_addr[newest] + PROGRESS_HEADER, buf,
                c[newest].len) != OTA_OK) {
        return OTA_ERR_IO;
    }
    return (int32_t)c[newest].len;
}

static ota_err_t op_progress_clear(void *ctx)
{
    ramflash_port_t *p = port_of(ctx);
    if (p == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    return progress_write(p, NULL, 0);
}

/* ---- set-up --------------------------------------------------------------------- */

ota_err_t ramflash_boot_config(const ramflash_config_t *cfg, uint8_t *scratch, uint32_t scratch_len,
                               ota_boot_config_t *boot_cfg)
{
    if (cfg == NULL || scratch == NULL || boot_cfg == NULL || cfg->signers == NULL ||
        cfg->signer_count == 0u) {
        return OTA_ERR_INVALID_ARG;
    }
    memset(boot_cfg, 0, sizeof *boot_cfg);
    boot_cfg->flash = &cfg->flash;
    boot_cfg->layout = &cfg->layout;
    boot_cfg->signers = cfg->signers;
    boot_cfg->signer_count = cfg->signer_count;
    boot_cfg->scratch = scratch;
    boot_cfg->scratch_len = scratch_len;
    return OTA_OK;
}

ota_err_t ramflash_port_init(ramflash_port_t *port, const ramflash_config_t *cfg,
                             const ota_boot_result_t *boot, ota_pal_t *pal)
{
    if (port == NULL || cfg == NULL || boot == NULL || pal == NULL || boot->slot > 1u ||
        cfg->flash.write_unit != 1u || cfg->layout.progress_size <= PROGRESS_HEADER ||
        ota_boot_layout_check(&cfg->flash, &cfg->layout) != OTA_OK) {
        return OTA_ERR_INVALID_ARG;
    }
    memset(port, 0, sizeof *port);
    port->cfg = *cfg;
    ota_err_t err = ramflash_boot_config(&port->cfg, port->buf, RAMFLASH_CHUNK, &port->boot_cfg);
    if (err != OTA_OK) {
        return err;
    }
    port->running_slot = boot->slot;
    port->running_pending = boot->pending;
    memset(pal, 0, sizeof *pal);
    pal->ctx = port;
    pal->max_file_size = cfg->layout.slot_size;
    pal->block_align = 1;
    pal->progress_capacity = progress_capacity(cfg);
    pal->create_file = op_create_file;
    pal->resume_file = op_resume_file;
    pal->write_block = op_write_block;
    pal->close_file = op_close_file;
    pal->abort = op_abort;
    pal->activate = op_activate;
    pal->reset = op_reset;
    pal->set_image_state = op_set_image_state;
    pal->get_image_state = op_get_image_state;
    pal->read_back = op_read_back;
    pal->progress_save = op_progress_save;
    pal->progress_load = op_progress_load;
    pal->progress_clear = op_progress_clear;
    return OTA_OK;
}
