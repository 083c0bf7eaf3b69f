/* otter: the flash reference port (see ota_port_flash.h). */
#include "otter/ota_port_flash.h"

#include <string.h>

#include "otter/ota_bytes.h"
#include "otter/ota_crc32.h"
#include "otter/ota_verify_close.h"

#define PROGRESS_MAGIC 0x4c46544fu
#define PROGRESS_HEADER 20u
/* Bytes before the CRC in a progress record's header. */
#define PROGRESS_HEADER_CRC 16u

/* A free partial-unit buffer. */
#define PARTIAL_FREE UINT32_MAX

/* ---- helpers -------------------------------------------------------------- */

static ota_port_flash_t *port_of(void *ctx)
{
    return (ota_port_flash_t *)ctx;
}

static const ota_flash_t *flash_of(const ota_port_flash_t *p)
{
    return &p->cfg.flash;
}

static uint32_t round_up(uint32_t v, uint32_t unit)
{
    return (v + unit - 1u) / unit * unit;
}

/* Is the record on flash a trial that is running now? */
static int trial_running(const ota_port_flash_t *p, ota_boot_record_t *rec)
{
    return ota_boot_state(&p->boot_cfg, rec) == OTA_OK &&
           rec->state == (uint8_t)OTA_BOOT_STATE_TRIAL && rec->trial_booted && p->running_pending &&
           p->running_slot == rec->trial_slot;
}

/* Erase every sector that holds a byte of [addr, addr + len). */
static ota_err_t erase_range(const ota_flash_t *f, uint32_t addr, uint32_t len)
{
    uint32_t end = addr + len;
    while (addr < end) {
        uint32_t start;
        uint32_t size;
        ota_err_t err = f->sector_info(f->ctx, addr, &start, &size);
        if (err != OTA_OK) {
            return err;
        }
        err = f->erase(f->ctx, start, size);
        if (err != OTA_OK) {
            return err;
        }
        addr = start + size;
    }
    return OTA_OK;
}

static int is_erased(const uint8_t *buf, uint32_t len, uint8_t erased)
{
    /* A word at a time, without early exit: erased ranges are the usual case. */
    uint32_t pattern = 0x01010101u * erased;
    uint32_t diff = 0;
    uint32_t i = 0;
    for (; i + 4u <= len; i += 4u) {
        uint32_t w;
        memcpy(&w, buf + i, 4);
        diff |= w ^ pattern;
    }
    for (; i < len; i++) {
        diff |= (uint32_t)buf[i] ^ erased;
    }
    return diff == 0u;
}

static int32_t slot_read(void *ctx, uint32_t offset, uint8_t *buf, uint32_t len)
{
    ota_port_flash_t *p = port_of(ctx);
    const ota_flash_t *f = flash_of(p);
    ota_err_t err = f->read(f->ctx, p->cfg.layout.slot_addr[p->target_slot] + offset, buf, len);
    return err == OTA_OK ? (int32_t)len : (int32_t)err;
}

/* ---- the eight operations ------------------------------------------------- */

/* Stop hashing the file as it is written: close reads the slot back instead. */
static void stop_hashing(ota_port_flash_t *p)
{
    if (p->hashing) {
        ota_verify_hash_discard(&p->hash);
        p->hashing = 0;
    }
}

/* Program len bytes at file offset off of the target slot. The slot is no
 * longer known erased from off on, also if the program fails part way. */
static ota_err_t slot_program(ota_port_flash_t *p, uint32_t off, const uint8_t *buf, uint32_t len)
{
    const ota_flash_t *f = flash_of(p);
    if (off + len > p->fresh_from) {
        p->fresh_from = off + len;
    }
    return f->program(f->ctx, p->cfg.layout.slot_addr[p->target_slot] + off, buf, len);
}

/* ---- write units held in RAM until complete ------------------------------------ */

static void partial_clear(ota_port_flash_t *p)
{
    for (uint32_t i = 0; i < OTA_PORT_FLASH_PARTIAL_UNITS; i++) {
        p->partial[i].offset = PARTIAL_FREE;
    }
}

/* The buffer holding the unit at file offset off, or NULL. */
static ota_port_flash_partial_t *partial_find(ota_port_flash_t *p, uint32_t off)
{
    for (uint32_t i = 0; i < OTA_PORT_FLASH_PARTIAL_UNITS; i++) {
        if (p->partial[i].offset == off) {
            return &p->partial[i];
        }
    }
    return NULL;
}

static uint32_t partial_free_count(const ota_port_flash_t *p)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < OTA_PORT_FLASH_PARTIAL_UNITS; i++) {
        n += p->partial[i].offset == PARTIAL_FREE ? 1u : 0u;
    }
    return n;
}

static int have_get(const ota_port_flash_partial_t *u, uint32_t i)
{
    return (int)(((uint32_t)u->have[i / 8u] >> (i % 8u)) & 1u);
}

/* Bytes of a stored partial unit: offset, presence bits, data. */
static uint32_t partial_entry_size(uint32_t unit)
{
    return 4u + (unit + 7u) / 8u + unit;
}

/* Program a held unit, bytes not present as erased, and free its buffer. */
static ota_err_t partial_program(ota_port_flash_t *p, ota_port_flash_partial_t *u)
{
    const ota_flash_t *f = flash_of(p);
    uint32_t unit = f->write_unit;
    memset(p->scratch, f->erased_value, unit);
    for (uint32_t i = 0; i < unit; i++) {
        if (have_get(u, i)) {
            p->scratch[i] = u->data[i];
        }
    }
    uint32_t off = u->offset;
    u->offset = PARTIAL_FREE;
    return slot_program(p, off, p->scratch, unit);
}

static ota_err_t op_abort(void *ctx)
{
    ota_port_flash_t *p = port_of(ctx);
    if (p == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    /* The inactive slot's bytes are left as they are: nothing boots them
     * without a trial record, and the next create erases them. */
    if (p->phase == (uint8_t)OTA_PORT_FLASH_OPEN || p->phase == (uint8_t)OTA_PORT_FLASH_CLOSED) {
        p->phase = (uint8_t)OTA_PORT_FLASH_IDLE;
    }
    stop_hashing(p);
    partial_clear(p);
    p->fresh_from = UINT32_MAX;
    return OTA_OK;
}

/* Choose the slot a new or resumed file goes to; checks shared by create and resume. */
static ota_err_t open_target(ota_port_flash_t *p, const ota_pal_file_t *file)
{
    ota_boot_record_t rec;
    if (file->size > p->cfg.layout.slot_size) {
        return OTA_ERR_RX_FILE_TOO_LARGE;
    }
    (void)op_abort(p);
    if (ota_boot_state(&p->boot_cfg, &rec) != OTA_OK ||
        rec.state == (uint8_t)OTA_BOOT_STATE_TRIAL) {
        /* A new image is on trial (running, or activated for the next boot):
         * the slot it lives in must not be touched until it is decided. */
        return OTA_ERR_RX_FILE_CREATE_FAILED;
    }
    p->target_slot = (uint8_t)(rec.active_slot ^ 1u);
    if (p->target_slot == p->running_slot) {
        /* A new image was refused while it runs: its slot is the target, and
         * it must not be erased under the running program. Reset first. */
        return OTA_ERR_RX_FILE_CREATE_FAILED;
    }
    p->invalid = 0;
    return OTA_OK;
}

static ota_err_t op_create_file(void *ctx, const ota_pal_file_t *file)
{
    ota_port_flash_t *p = port_of(ctx);
    if (p == NULL || file == NULL || file->size == 0u) {
        return OTA_ERR_INVALID_ARG;
    }
    ota_err_t err = open_target(p, file);
    if (err != OTA_OK) {
        return err;
    }
    if (erase_range(flash_of(p), p->cfg.layout.slot_addr[p->target_slot], file->size) != OTA_OK) {
        return OTA_ERR_RX_FILE_CREATE_FAILED;
    }
    p->fresh_from = 0; /* all of it erased just now */
    p->file_size = file->size;
    p->phase = (uint8_t)OTA_PORT_FLASH_OPEN;
    ota_verify_hash_start(&p->hash);
    p->hashing = 1;
    return OTA_OK;
}

static int bit_get(const uint8_t *map, uint32_t k)
{
    return (int)(((uint32_t)map[k / 8u] >> (k % 8u)) & 1u);
}

/* Is [addr, addr + len) erased? */
static ota_err_t range_erased(ota_port_flash_t *p, uint32_t addr, uint32_t len, int *erased)
{
    const ota_flash_t *f = flash_of(p);
    *erased = 1;
    for (uint32_t done = 0; done < len;) {
        uint32_t n = len - done > OTA_PORT_FLASH_SCRATCH ? OTA_PORT_FLASH_SCRATCH : len - done;
        ota_err_t err = f->read(f->ctx, addr + done, p->scratch, n);
        if (err != OTA_OK) {
            return err;
        }
        if (!is_erased(p->scratch, n, f->erased_value)) {
            *erased = 0;
            return OTA_OK;
        }
        done += n;
    }
    return OTA_OK;
}

static ota_err_t partial_restore(ota_port_flash_t *p, uint32_t block_size, const uint8_t *done);

/*
 * Resume: keep the blocks marked done; a sector where a block that is not
 * done has any programmed byte (an interrupted write) is erased, and every
 * block touching it is marked not done. Blocks that straddle into a kept
 * sector are written again later with the same bytes, which is harmless.
 */
static ota_err_t op_resume_file(void *ctx, const ota_pal_file_t *file, uint32_t block_size,
                                uint8_t *done, uint32_t block_count)
{
    ota_port_flash_t *p = port_of(ctx);
    if (p == NULL || file == NULL || done == NULL || file->size == 0u || block_size == 0u ||
        block_count != (file->size - 1u) / block_size + 1u) {
        return OTA_ERR_INVALID_ARG;
    }
    ota_err_t err = open_target(p, file);
    if (err != OTA_OK) {
        return err;
    }
    const ota_flash_t *f = flash_of(p);
    uint32_t base = p->cfg.layout.slot_addr[p->target_slot];
    /* Nothing of a file is stored where it would be: no interrupted file. */
    int blank;
    if (range_erased(p, base, file->size, &blank) != OTA_OK) {
        return OTA_ERR_IO;
    }
    if (blank) {
        return OTA_ERR_NOT_FOUND;
    }
    /* Bits are cleared as sectors are erased, but dirtiness is judged on the
     * bits as they were on entry: a done block that straddles into the next
     * sector holds its right bytes there. Only the block straddling from the
     * previous sector can have changed, so its entry bit is carried. */
    uint32_t carry_block = UINT32_MAX;
    int carry_done = 0;
    for (uint32_t at = 0; at < file->size;) {
        uint32_t start;
        uint32_t len;
        if (f->sector_info(f->ctx, base + at, &start, &len) != OTA_OK) {
            return OTA_ERR_IO;
        }
        uint32_t lo = start - base;
        uint32_t hi = lo + len < file->size ? lo + len : file->size;
        uint32_t first = lo / block_size;
        uint32_t last = (hi - 1u) / block_size;
        int dirty = 0;
        for (uint32_t b = first; b <= last && !dirty; b++) {
            if (b == carry_block ? carry_done : bit_get(done, b)) {
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
        if (last != carry_block) {
            carry_block = last;
            carry_done = bit_get(done, last);
        }
        if (dirty) {
            if (f->erase(f->ctx, start, len) != OTA_OK) {
                return OTA_ERR_IO;
            }
            for (uint32_t b = first; b <= last; b++) {
                done[b / 8u] = (uint8_t)(done[b / 8u] & ~(1u << (b % 8u)));
            }
        }
        at = hi;
    }
    p->file_size = file->size;
    if (partial_restore(p, block_size, done) != OTA_OK) {
        partial_clear(p);
        return OTA_ERR_IO;
    }
    p->phase = (uint8_t)OTA_PORT_FLASH_OPEN;
    return OTA_OK;
}

/*
 * Program len bytes at slot offset off, known to be erased, straight from
 * data; a last unit the file ends in goes through the scratch buffer, padded
 * with the erased value.
 */
static ota_err_t program_erased(ota_port_flash_t *p, uint32_t off, const uint8_t *data,
                                uint32_t len)
{
    const ota_flash_t *f = flash_of(p);
    uint32_t unit = f->write_unit;
    uint32_t whole = len / unit * unit;
    ota_err_t err = whole > 0u ? slot_program(p, off, data, whole) : OTA_OK;
    if (err != OTA_OK || whole == len) {
        return err;
    }
    memset(p->scratch, f->erased_value, unit);
    memcpy(p->scratch, data + whole, len - whole);
    return slot_program(p, off + whole, p->scratch, unit);
}

/*
 * Program one chunk (at most one scratch buffer) at slot offset off. Units that
 * already hold exactly the new bytes are skipped (a repeated block is
 * harmless); a unit holding anything else than the erased value refuses the
 * whole write before anything is programmed. *erased is cleared when the
 * chunk is not all erased.
 */
static ota_err_t write_chunk(ota_port_flash_t *p, uint32_t off, const uint8_t *data, uint32_t len,
                             uint32_t padded, int program, int *erased)
{
    const ota_flash_t *f = flash_of(p);
    uint32_t addr = p->cfg.layout.slot_addr[p->target_slot] + off;
    uint32_t unit = f->write_unit;
    ota_err_t err = f->read(f->ctx, addr, p->cmp, padded);
    if (err != OTA_OK) {
        return err;
    }
    if (is_erased(p->cmp, padded, f->erased_value)) {
        /* The usual case, a block written once: program it all at once. */
        return program ? program_erased(p, off, data, len) : OTA_OK;
    }
    *erased = 0;
    memset(p->scratch, f->erased_value, padded);
    memcpy(p->scratch, data, len);
    /* Program maximal runs of units that need it, one flash operation each. */
    uint32_t run = 0;
    uint32_t run_len = 0;
    for (uint32_t u = 0; u <= padded; u += unit) {
        int needs = 0;
        if (u < padded && memcmp(p->cmp + u, p->scratch + u, unit) != 0) {
            if (!is_erased(p->cmp + u, unit, f->erased_value)) {
                return OTA_ERR_FLASH_RULE;
            }
            needs = 1;
        }
        if (needs) {
            if (run_len == 0u) {
                run = u;
            }
            run_len += unit;
            continue;
        }
        if (run_len > 0u && program) {
            err = slot_program(p, off + run, p->scratch + run, run_len);
            if (err != OTA_OK) {
                return err;
            }
        }
        run_len = 0;
    }
    return OTA_OK;
}

/*
 * Hash a block just written, as the flash now holds it (read back), when it
 * continues the bytes hashed so far. Any other block ends hashing, and close
 * reads the whole slot back instead: one out of order, and also a block
 * written again, since it may have programmed bytes still erased in the first
 * write (padding) that the hash does not hold.
 */
static void hash_written(ota_port_flash_t *p, uint32_t offset, uint32_t size)
{
    if (offset != p->hash.length) {
        stop_hashing(p);
        return;
    }
    for (uint32_t done = 0; done < size; done += OTA_PORT_FLASH_SCRATCH) {
        uint32_t n = size - done < OTA_PORT_FLASH_SCRATCH ? size - done : OTA_PORT_FLASH_SCRATCH;
        if (slot_read(p, offset + done, p->scratch, n) != (int32_t)n) {
            stop_hashing(p);
            return;
        }
        ota_verify_hash_update(&p->hash, p->scratch, n);
    }
    if (p->hash.failed) {
        stop_hashing(p);
    }
}

/* A write unit a block covers only in part: file offset of the unit and the
 * block's bytes in it, [from, to). */
typedef struct unit_part {
    uint32_t unit_off;
    uint32_t from;
    uint32_t to;
} unit_part_t;

/*
 * Check (program = 0) or apply (program = 1) a block's bytes in a unit it
 * covers only in part. A programmed unit must already hold them (the same
 * bytes again are harmless); otherwise they join the unit's buffer, and a unit
 * whose every byte of the file is present is programmed. *fresh counts the
 * buffers the check finds it needs.
 */
static ota_err_t write_part(ota_port_flash_t *p, const unit_part_t *part, const uint8_t *bytes,
                            int program, uint32_t *fresh)
{
    const ota_flash_t *f = flash_of(p);
    uint32_t unit = f->write_unit;
    uint32_t addr = p->cfg.layout.slot_addr[p->target_slot] + part->unit_off;
    ota_port_flash_partial_t *u = partial_find(p, part->unit_off);
    ota_err_t err = f->read(f->ctx, addr, p->cmp, unit);
    if (err != OTA_OK) {
        return err;
    }
    if (u == NULL && !is_erased(p->cmp, unit, f->erased_value)) {
        return memcmp(p->cmp + (part->from - part->unit_off), bytes, part->to - part->from) == 0
                   ? OTA_OK
                   : OTA_ERR_FLASH_RULE;
    }
    if (u != NULL) {
        for (uint32_t at = part->from; at < part->to; at++) {
            uint32_t i = at - part->unit_off;
            if (have_get(u, i) && u->data[i] != bytes[at - part->from]) {
                return OTA_ERR_FLASH_RULE;
            }
        }
    }
    if (!program) {
        *fresh += u == NULL ? 1u : 0u;
        return OTA_OK;
    }
    if (u == NULL) {
        u = partial_find(p, PARTIAL_FREE); /* the check made sure there is one */
        u->offset = part->unit_off;
        memset(u->have, 0, sizeof u->have);
    }
    for (uint32_t at = part->from; at < part->to; at++) {
        uint32_t i = at - part->unit_off;
        u->data[i] = bytes[at - part->from];
        u->have[i / 8u] = (uint8_t)(u->have[i / 8u] | (1u << (i % 8u)));
    }
    uint32_t needed = p->file_size - part->unit_off < unit ? p->file_size - part->unit_off : unit;
    for (uint32_t i = 0; i < needed; i++) {
        if (!have_get(u, i)) {
            return OTA_OK; /* held until the rest arrives */
        }
    }
    return partial_program(p, u);
}

static int32_t op_write_block(void *ctx, uint32_t offset, const uint8_t *data, uint32_t size)
{
    ota_port_flash_t *p = port_of(ctx);
    if (p == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    if (p->phase != (uint8_t)OTA_PORT_FLASH_OPEN) {
        return OTA_ERR_NULL_FILE_CONTEXT;
    }
    if (data == NULL || size == 0u || offset >= p->file_size || size > p->file_size - offset) {
        return OTA_ERR_INVALID_ARG;
    }
    uint32_t unit = flash_of(p)->write_unit;
    uint32_t end = offset + size;
    /* Whole units go straight to flash: [lo, hi). The file's last unit is
     * whole when the block reaches the end of the file. */
    uint32_t lo = round_up(offset, unit) < end ? round_up(offset, unit) : end;
    uint32_t hi = end == p->file_size ? end : end / unit * unit;
    hi = hi > lo ? hi : lo;
    /* The units covered in part: at the block's start and at its end. */
    unit_part_t parts[2];
    uint32_t nparts = 0;
    if (offset < lo) {
        parts[nparts++] = (unit_part_t){offset / unit * unit, offset, lo};
    }
    if (hi < end && (nparts == 0u || parts[0].unit_off != hi / unit * unit)) {
        parts[nparts++] = (unit_part_t){hi / unit * unit, hi, end};
    }
    /* Two passes: check everything first (all or nothing), then program.
     * Whole units found erased (a block written once, the usual case) are
     * programmed in one operation. Those from fresh_from on are erased
     * without reading them: nothing was programmed there since the create
     * erased them. Anything before (a block again, one after a resume or
     * after a later block) is read and compared. */
    int erased = 1;
    int known_erased = lo >= p->fresh_from;
    for (int program = 0; program <= 1; program++) {
        uint32_t fresh = 0;
        ota_err_t err = OTA_OK;
        /* A held unit the whole units now cover: its bytes must agree, and
         * programming the whole unit frees it. */
        for (uint32_t i = 0; i < OTA_PORT_FLASH_PARTIAL_UNITS && err == OTA_OK; i++) {
            ota_port_flash_partial_t *u = &p->partial[i];
            if (u->offset == PARTIAL_FREE || u->offset < lo || u->offset >= hi) {
                continue;
            }
            for (uint32_t k = 0; k < unit && u->offset + k < hi; k++) {
                if (have_get(u, k) && u->data[k] != data[u->offset + k - offset]) {
                    err = OTA_ERR_FLASH_RULE;
                }
            }
            if (program) {
                u->offset = PARTIAL_FREE;
            }
        }
        /* The whole units chunk by chunk: read and checked (first pass), or
         * programmed where the check found them not all erased. */
        int by_chunk = program ? !erased : !known_erased;
        if (err == OTA_OK && program && erased && hi > lo) {
            err = program_erased(p, lo, data + (lo - offset), hi - lo);
        }
        for (uint32_t done = lo; done < hi && err == OTA_OK && by_chunk;
             done += OTA_PORT_FLASH_SCRATCH) {
            uint32_t len = hi - done < OTA_PORT_FLASH_SCRATCH ? hi - done : OTA_PORT_FLASH_SCRATCH;
            err = write_chunk(p, done, data + (done - offset), len, round_up(len, unit), program,
                              &erased);
        }
        for (uint32_t k = 0; k < nparts && err == OTA_OK; k++) {
            err = write_part(p, &parts[k], data + (parts[k].from - offset), program, &fresh);
        }
        if (err == OTA_OK && !program && fresh > partial_free_count(p)) {
            return OTA_ERR_OUT_OF_MEMORY; /* nothing changed */
        }
        if (err != OTA_OK) {
            stop_hashing(p); /* some units may be programmed */
            return err == OTA_ERR_FLASH_RULE ? OTA_ERR_FLASH_RULE : OTA_ERR_IO;
        }
    }
    if (nparts > 0u) {
        /* Bytes held in RAM are not on flash yet: close reads the slot back. */
        stop_hashing(p);
    } else if (p->hashing) {
        hash_written(p, offset, size);
    }
    return (int32_t)size;
}

static int32_t op_read_back(void *ctx, uint32_t offset, uint8_t *buf, uint32_t len);

static ota_err_t op_close_file(void *ctx, const ota_pal_file_t *file)
{
    ota_port_flash_t *p = port_of(ctx);
    if (p == NULL || file == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    if (p->phase != (uint8_t)OTA_PORT_FLASH_OPEN) {
        return OTA_ERR_NULL_FILE_CONTEXT;
    }
    p->invalid = 1;
    /* Units still held (a file not written whole) go to flash as they are:
     * the missing bytes read erased and the signature fails. */
    ota_err_t err = OTA_OK;
    for (uint32_t i = 0; i < OTA_PORT_FLASH_PARTIAL_UNITS && err == OTA_OK; i++) {
        if (p->partial[i].offset != PARTIAL_FREE && partial_program(p, &p->partial[i]) != OTA_OK) {
            err = OTA_ERR_FILE_CLOSE;
        }
    }
    /* Kept for the bootloader's record; used only once the file verified. */
    p->sig_len = 0;
    if (file->signature != NULL && file->signature_len <= OTA_PAL_SIGNATURE_MAX) {
        memcpy(p->sig, file->signature, file->signature_len);
        p->sig_len = (uint16_t)file->signature_len;
    }
    if (err == OTA_OK) {
        /* The shared checks; the slot is read back through read_back unless
         * every byte was hashed as it was written. The bootloader checks the
         * image again with its signer of the same key (p->signer). */
        const ota_verify_reader_t reader = {op_read_back, p, p->scratch, OTA_PORT_FLASH_SCRATCH};
        err = ota_verify_close(
            file, p->file_size,
            ota_verify_find_signer(p->cfg.signers, p->cfg.signer_count, file->cert_name),
            &p->signer, p->hashing ? &p->hash : NULL, &reader);
    }
    p->hashing = 0; /* finished or discarded */
    partial_clear(p);
    /* Closed whatever the verdict; only a verified file may be activated. */
    p->phase = (uint8_t)(err == OTA_OK ? OTA_PORT_FLASH_CLOSED : OTA_PORT_FLASH_IDLE);
    p->invalid = (uint8_t)(err != OTA_OK);
    return err;
}

static ota_err_t op_activate(void *ctx)
{
    ota_port_flash_t *p = port_of(ctx);
    if (p == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    if (p->phase != (uint8_t)OTA_PORT_FLASH_CLOSED) {
        return OTA_ERR_ACTIVATE_FAILED;
    }
    ota_err_t err = ota_boot_request_trial(&p->boot_cfg, p->target_slot, p->file_size, p->sig,
                                           p->sig_len, p->signer);
    if (err == OTA_ERR_ROLLBACK) {
        return err;
    }
    if (err != OTA_OK) {
        return OTA_ERR_ACTIVATE_FAILED;
    }
    p->phase = (uint8_t)OTA_PORT_FLASH_ACTIVATED;
    return OTA_OK;
}

static ota_err_t op_reset(void *ctx)
{
    ota_port_flash_t *p = port_of(ctx);
    if (p == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    if (p->cfg.reset_fn != NULL) {
        p->cfg.reset_fn(p->cfg.reset_ctx);
    }
    return OTA_OK;
}

/* Refuse whatever new image there is: the open/closed file, an activated but
 * not yet booted trial, or the trial that is running. */
static ota_err_t refuse_new_image(ota_port_flash_t *p)
{
    ota_boot_record_t rec;
    (void)op_abort(p);
    p->invalid = 1;
    ota_err_t err = ota_boot_state(&p->boot_cfg, &rec);
    if (err != OTA_OK) {
        return err;
    }
    if (rec.state == (uint8_t)OTA_BOOT_STATE_TRIAL) {
        err = ota_boot_reject(&p->boot_cfg);
    }
    /* A refused image that runs is no longer pending: it is reverted at the
     * next reset, and nothing may commit it. */
    p->running_pending = 0;
    if (p->phase == (uint8_t)OTA_PORT_FLASH_ACTIVATED) {
        p->phase = (uint8_t)OTA_PORT_FLASH_IDLE;
    }
    return err;
}

static ota_err_t op_set_image_state(void *ctx, ota_image_state_t state)
{
    ota_port_flash_t *p = port_of(ctx);
    ota_boot_record_t rec;
    if (p == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    switch (state) {
    case OTA_IMAGE_STATE_TESTING:
        return OTA_OK;
    case OTA_IMAGE_STATE_ACCEPTED:
        if (!trial_running(p, &rec) || ota_boot_confirm(&p->boot_cfg) != OTA_OK) {
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
    ota_port_flash_t *p = port_of(ctx);
    ota_boot_record_t rec;
    if (p == NULL || p->invalid) {
        return OTA_PAL_IMAGE_STATE_INVALID;
    }
    if (trial_running(p, &rec)) {
        return OTA_PAL_IMAGE_STATE_PENDING_COMMIT;
    }
    return OTA_PAL_IMAGE_STATE_VALID;
}

static int32_t op_read_back(void *ctx, uint32_t offset, uint8_t *buf, uint32_t len)
{
    ota_port_flash_t *p = port_of(ctx);
    if (p == NULL || buf == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    if (p->phase != (uint8_t)OTA_PORT_FLASH_OPEN && p->phase != (uint8_t)OTA_PORT_FLASH_CLOSED) {
        return OTA_ERR_NULL_FILE_CONTEXT;
    }
    if (offset > p->file_size || len > p->file_size - offset) {
        return OTA_ERR_INVALID_ARG;
    }
    int32_t got = slot_read(p, offset, buf, len);
    return got == (int32_t)len ? got : OTA_ERR_IO;
}

/* ---- progress log ----------------------------------------------------------- */

/* Scan result for one bank. */
typedef struct bank_scan {
    int has;            /* a legal record was found */
    uint32_t seq;       /* newest legal record's sequence number */
    uint32_t rec_off;   /* its offset in the bank */
    uint32_t rec_len;   /* its payload length */
    uint32_t rec_units; /* partly written units stored with it */
    uint32_t end;       /* first byte after the last legal record */
    int clean;          /* everything after end is erased (appendable) */
} bank_scan_t;

static int seq_newer(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) > 0;
}

/* The largest caller record: a bank less a header and every held unit. */
static uint32_t progress_capacity(const ota_port_flash_config_t *cfg)
{
    uint32_t extra =
        PROGRESS_HEADER + OTA_PORT_FLASH_PARTIAL_UNITS * partial_entry_size(cfg->flash.write_unit);
    return cfg->layout.progress_size > extra ? cfg->layout.progress_size - extra : 0u;
}

/* CRC of a record: header fields, then len bytes after the header, read
 * from flash in chunks. */
static ota_err_t record_crc(ota_port_flash_t *p, uint32_t addr, const uint8_t *hdr, uint32_t len,
                            uint32_t *crc)
{
    const ota_flash_t *f = flash_of(p);
    uint32_t c = ota_crc32(0, hdr, PROGRESS_HEADER_CRC);
    for (uint32_t done = 0; done < len;) {
        uint32_t n = len - done > OTA_PORT_FLASH_SCRATCH ? OTA_PORT_FLASH_SCRATCH : len - done;
        ota_err_t err = f->read(f->ctx, addr + PROGRESS_HEADER + done, p->scratch, n);
        if (err != OTA_OK) {
            return err;
        }
        c = ota_crc32(c, p->scratch, n);
        done += n;
    }
    *crc = c;
    return OTA_OK;
}

static ota_err_t scan_bank(ota_port_flash_t *p, uint32_t bank, bank_scan_t *s)
{
    const ota_flash_t *f = flash_of(p);
    uint32_t base = p->cfg.layout.progress_addr[bank];
    uint32_t size = p->cfg.layout.progress_size;
    uint32_t entry = partial_entry_size(f->write_unit);
    uint8_t hdr[PROGRESS_HEADER];
    memset(s, 0, sizeof *s);
    uint32_t off = 0;
    while (off + PROGRESS_HEADER <= size) {
        ota_err_t err = f->read(f->ctx, base + off, hdr, PROGRESS_HEADER);
        if (err != OTA_OK) {
            return err;
        }
        if (is_erased(hdr, PROGRESS_HEADER, f->erased_value)) {
            break;
        }
        uint32_t len = ota_get_le32(hdr + 8);
        uint32_t units = ota_get_le16(hdr + 12);
        uint32_t crc;
        if (ota_get_le32(hdr) != PROGRESS_MAGIC || ota_get_le16(hdr + 14) != 0u ||
            units > OTA_PORT_FLASH_PARTIAL_UNITS || len > size - PROGRESS_HEADER - off ||
            units * entry > size - PROGRESS_HEADER - off - len) {
            s->end = off;
            return OTA_OK; /* torn or foreign bytes: not appendable */
        }
        err = record_crc(p, base + off, hdr, len + units * entry, &crc);
        if (err != OTA_OK) {
            return err;
        }
        if (crc != ota_get_le32(hdr + PROGRESS_HEADER_CRC)) {
            s->end = off;
            return OTA_OK;
        }
        s->has = 1;
        s->seq = ota_get_le32(hdr + 4);
        s->rec_off = off;
        s->rec_len = len;
        s->rec_units = units;
        off += round_up(PROGRESS_HEADER + len + units * entry, f->write_unit);
    }
    s->end = off;
    /* The rest of the bank must be erased to append there. */
    return range_erased(p, base + off, size - off, &s->clean);
}

/* Find the bank with the newest legal record; *bank = 2 if there is none. */
static ota_err_t newest(ota_port_flash_t *p, bank_scan_t scan[2], uint32_t *bank)
{
    for (uint32_t b = 0; b < 2u; b++) {
        ota_err_t err = scan_bank(p, b, &scan[b]);
        if (err != OTA_OK) {
            return err;
        }
    }
    if (scan[0].has && (!scan[1].has || !seq_newer(scan[1].seq, scan[0].seq))) {
        *bank = 0;
    } else if (scan[1].has) {
        *bank = 1;
    } else {
        *bank = 2;
    }
    return OTA_OK;
}

/* The held units stored with a record, in buffer order. */
typedef struct held_units {
    const ota_port_flash_partial_t *unit[OTA_PORT_FLASH_PARTIAL_UNITS];
    uint32_t count;
} held_units_t;

/* Byte i of the units section: each unit's offset, presence bits, data. */
static uint8_t held_byte(const held_units_t *h, uint32_t unit, uint32_t i)
{
    uint32_t entry = partial_entry_size(unit);
    const ota_port_flash_partial_t *u = h->unit[i / entry];
    uint32_t at = i % entry;
    uint32_t mask = (unit + 7u) / 8u;
    if (at < 4u) {
        return (uint8_t)(u->offset >> (8u * at));
    }
    return at < 4u + mask ? u->have[at - 4u] : u->data[at - 4u - mask];
}

/* Program header, payload and held units at addr, through the scratch buffer. */
static ota_err_t program_record(ota_port_flash_t *p, uint32_t addr, const uint8_t *hdr,
                                const uint8_t *payload, uint32_t len, const held_units_t *h)
{
    const ota_flash_t *f = flash_of(p);
    uint32_t body = PROGRESS_HEADER + len + h->count * partial_entry_size(f->write_unit);
    uint32_t total = round_up(body, f->write_unit);
    for (uint32_t done = 0; done < total;) {
        uint32_t n = total - done > OTA_PORT_FLASH_SCRATCH ? OTA_PORT_FLASH_SCRATCH : total - done;
        memset(p->scratch, f->erased_value, n);
        /* Header and payload are copied whole, the held units byte by byte. */
        for (uint32_t i = 0; i < n;) {
            uint32_t at = done + i;
            uint32_t run = 1;
            if (at < PROGRESS_HEADER) {
                run = PROGRESS_HEADER - at < n - i ? PROGRESS_HEADER - at : n - i;
                memcpy(p->scratch + i, hdr + at, run);
            } else if (at < PROGRESS_HEADER + len) {
                run = PROGRESS_HEADER + len - at < n - i ? PROGRESS_HEADER + len - at : n - i;
                memcpy(p->scratch + i, payload + (at - PROGRESS_HEADER), run);
            } else if (at < body) {
                p->scratch[i] = held_byte(h, f->write_unit, at - PROGRESS_HEADER - len);
            } else {
                break; /* padding: erased */
            }
            i += run;
        }
        ota_err_t err = f->program(f->ctx, addr + done, p->scratch, n);
        if (err != OTA_OK) {
            return err;
        }
        done += n;
    }
    return OTA_OK;
}

/* Appends a record to the progress log, with the units the open file holds
 * in RAM. The log's state comes from the last append of this boot when there
 * was one (this port is the log's only writer while it runs), else from a
 * scan of both banks. */
static ota_err_t progress_append(ota_port_flash_t *p, const uint8_t *record, uint32_t len)
{
    const ota_flash_t *f = flash_of(p);
    uint32_t size = p->cfg.layout.progress_size;
    uint32_t entry = partial_entry_size(f->write_unit);
    uint32_t bank, seq, at;
    uint8_t hdr[PROGRESS_HEADER];
    held_units_t held;
    ota_err_t err;

    held.count = 0;
    for (uint32_t i = 0; i < OTA_PORT_FLASH_PARTIAL_UNITS; i++) {
        if (p->phase == (uint8_t)OTA_PORT_FLASH_OPEN && p->partial[i].offset != PARTIAL_FREE) {
            held.unit[held.count++] = &p->partial[i];
        }
    }
    uint32_t need = round_up(PROGRESS_HEADER + len + held.count * entry, f->write_unit);
    if (p->log_known) {
        bank = p->log_bank;
        seq = p->log_seq + 1u;
        at = p->log_end;
    } else {
        bank_scan_t scan[2];
        err = newest(p, scan, &bank);
        if (err != OTA_OK) {
            return err;
        }
        seq = bank < 2u ? scan[bank].seq + 1u : 1u;
        /* A bank that is not clean after its newest record is not appended to. */
        at = bank < 2u && scan[bank].clean ? scan[bank].end : size;
    }
    p->log_known = 0; /* until this append is known to have succeeded */
    ota_put_le32(hdr, PROGRESS_MAGIC);
    ota_put_le32(hdr + 4, seq);
    ota_put_le32(hdr + 8, len);
    ota_put_le16(hdr + 12, (uint16_t)held.count);
    ota_put_le16(hdr + 14, 0);
    uint32_t crc = ota_crc32(ota_crc32(0, hdr, PROGRESS_HEADER_CRC), record, len);
    for (uint32_t k = 0; k < held.count * entry; k++) {
        uint8_t b = held_byte(&held, f->write_unit, k);
        crc = ota_crc32(crc, &b, 1);
    }
    ota_put_le32(hdr + PROGRESS_HEADER_CRC, crc);

    if (bank >= 2u || at + need > size) {
        /* Start the other bank: never erase the one that holds the newest record. */
        bank = bank < 2u ? bank ^ 1u : 0u;
        at = 0;
        err = erase_range(f, p->cfg.layout.progress_addr[bank], size);
        if (err != OTA_OK) {
            return err;
        }
    }
    err = program_record(p, p->cfg.layout.progress_addr[bank] + at, hdr, record, len, &held);
    if (err == OTA_OK) {
        p->log_known = 1;
        p->log_bank = (uint8_t)bank;
        p->log_seq = seq;
        p->log_end = at + need;
    }
    return err;
}

/*
 * Take back the units the newest progress record holds for the file being
 * resumed: the bytes of blocks the caller's checkpoint counts as written that
 * were still in RAM when it was saved. A unit flash already holds (a later
 * block completed it) stays on flash; a unit with bytes of a block that is no
 * longer done (resume erased its sector) is dropped, as the block is written
 * again.
 */
static ota_err_t partial_restore(ota_port_flash_t *p, uint32_t block_size, const uint8_t *done)
{
    const ota_flash_t *f = flash_of(p);
    uint32_t unit = f->write_unit;
    uint32_t entry = partial_entry_size(unit);
    uint32_t mask = (unit + 7u) / 8u;
    bank_scan_t scan[2];
    uint32_t bank;
    partial_clear(p);
    if (p->cfg.layout.progress_size == 0u) {
        return OTA_OK;
    }
    ota_err_t err = newest(p, scan, &bank);
    if (err != OTA_OK || bank == 2u) {
        return err;
    }
    uint32_t addr = p->cfg.layout.progress_addr[bank] + scan[bank].rec_off + PROGRESS_HEADER +
                    scan[bank].rec_len;
    for (uint32_t k = 0; k < scan[bank].rec_units; k++, addr += entry) {
        ota_port_flash_partial_t *u = &p->partial[k];
        uint8_t off[4];
        int erased;
        err = f->read(f->ctx, addr, off, 4);
        if (err == OTA_OK) {
            u->offset = ota_get_le32(off);
            err = f->read(f->ctx, addr + 4u, u->have, mask);
        }
        if (err == OTA_OK) {
            err = f->read(f->ctx, addr + 4u + mask, u->data, unit);
        }
        if (err != OTA_OK) {
            return err;
        }
        if (u->offset % unit != 0u || u->offset >= p->file_size) {
            u->offset = PARTIAL_FREE; /* not this file's */
            continue;
        }
        err = range_erased(p, p->cfg.layout.slot_addr[p->target_slot] + u->offset, unit, &erased);
        if (err != OTA_OK) {
            return err;
        }
        for (uint32_t i = 0; i < unit && erased; i++) {
            erased = !have_get(u, i) || bit_get(done, (u->offset + i) / block_size);
        }
        if (!erased) {
            u->offset = PARTIAL_FREE;
        }
    }
    return OTA_OK;
}

static ota_err_t op_progress_save(void *ctx, const uint8_t *record, uint32_t len)
{
    ota_port_flash_t *p = port_of(ctx);
    if (p == NULL || record == NULL || len == 0u || len > progress_capacity(&p->cfg)) {
        return OTA_ERR_INVALID_ARG;
    }
    return progress_append(p, record, len) == OTA_OK ? OTA_OK : OTA_ERR_IO;
}

static int32_t op_progress_load(void *ctx, uint8_t *buf, uint32_t cap)
{
    ota_port_flash_t *p = port_of(ctx);
    bank_scan_t scan[2];
    uint32_t bank;
    if (p == NULL || buf == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    if (p->cfg.layout.progress_size == 0u) {
        return OTA_ERR_NOT_FOUND;
    }
    if (newest(p, scan, &bank) != OTA_OK) {
        return OTA_ERR_IO;
    }
    if (bank == 2u || scan[bank].rec_len == 0u) {
        return OTA_ERR_NOT_FOUND;
    }
    if (scan[bank].rec_len > cap) {
        return OTA_ERR_OUT_OF_MEMORY;
    }
    const ota_flash_t *f = flash_of(p);
    uint32_t addr = p->cfg.layout.progress_addr[bank] + scan[bank].rec_off + PROGRESS_HEADER;
    if (f->read(f->ctx, addr, buf, scan[bank].rec_len) != OTA_OK) {
        return OTA_ERR_IO;
    }
    return (int32_t)scan[bank].rec_len;
}

static ota_err_t op_progress_clear(void *ctx)
{
    ota_port_flash_t *p = port_of(ctx);
    static const uint8_t none = 0;
    if (p == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    if (p->cfg.layout.progress_size == 0u) {
        return OTA_OK;
    }
    /* An empty record: the newest record says "nothing stored". */
    return progress_append(p, &none, 0) == OTA_OK ? OTA_OK : OTA_ERR_IO;
}

/* ---- set-up ----------------------------------------------------------------- */

ota_err_t ota_port_flash_boot_config(const ota_port_flash_config_t *cfg, const ota_flash_t *flash,
                                     uint8_t *scratch, uint32_t scratch_len,
                                     ota_boot_config_t *boot_cfg)
{
    if (cfg == NULL || flash == NULL || scratch == NULL || boot_cfg == NULL ||
        cfg->signers == NULL || cfg->signer_count == 0u) {
        return OTA_ERR_INVALID_ARG;
    }
    memset(boot_cfg, 0, sizeof *boot_cfg);
    boot_cfg->flash = flash;
    boot_cfg->layout = &cfg->layout;
    boot_cfg->signers = cfg->signers;
    boot_cfg->signer_count = cfg->signer_count;
    boot_cfg->max_attempts = cfg->max_attempts;
    boot_cfg->scratch = scratch;
    boot_cfg->scratch_len = scratch_len;
    return OTA_OK;
}

ota_err_t ota_port_flash_init(ota_port_flash_t *port, const ota_port_flash_config_t *cfg,
                              const ota_boot_result_t *boot, ota_pal_t *pal)
{
    if (port == NULL || cfg == NULL || boot == NULL || pal == NULL || boot->slot > 1u ||
        cfg->flash.write_unit == 0u || cfg->flash.write_unit > OTA_PORT_FLASH_MAX_UNIT ||
        ota_boot_layout_check(&cfg->flash, &cfg->layout) != OTA_OK) {
        return OTA_ERR_INVALID_ARG;
    }
    memset(port, 0, sizeof *port);
    port->cfg = *cfg;
    ota_err_t err = ota_port_flash_boot_config(&port->cfg, &port->cfg.flash, port->scratch,
                                               OTA_PORT_FLASH_SCRATCH, &port->boot_cfg);
    if (err != OTA_OK) {
        return err;
    }
    port->running_slot = boot->slot;
    port->running_pending = boot->pending;
    partial_clear(port);
    port->fresh_from = UINT32_MAX;

    memset(pal, 0, sizeof *pal);
    pal->ctx = port;
    pal->max_file_size = cfg->layout.slot_size;
    /* Any block works; blocks aligned to the write unit are never held in RAM. */
    pal->block_align = cfg->flash.write_unit;
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
