/* otter: an in-memory port for agent tests. */
#include "fake_pal.h"

#include <string.h>

#include "otter/ota_bytes.h"
#include "otter/ota_crc32.h"

void fake_pal_sign(const uint8_t *data, uint32_t len, uint8_t sig[8])
{
    ota_put_le32(sig, ota_crc32(0, data, len));
    ota_put_le32(sig + 4, len);
}

static ota_err_t f_create(void *ctx, const ota_pal_file_t *file)
{
    fake_pal_t *f = ctx;
    if (file == NULL || file->size == 0u) {
        return OTA_ERR_INVALID_ARG;
    }
    if (file->size > f->pal.max_file_size) {
        return OTA_ERR_RX_FILE_TOO_LARGE;
    }
    f->creates++;
    if (f->fail_create != OTA_OK) {
        return f->fail_create;
    }
    memset(f->data, 0xff, file->size);
    memset(f->written, 0, file->size);
    f->size = file->size;
    f->open = 1;
    f->closed_ok = 0;
    return OTA_OK;
}

static ota_err_t f_resume(void *ctx, const ota_pal_file_t *file, uint32_t block_size, uint8_t *done,
                          uint32_t block_count)
{
    fake_pal_t *f = ctx;
    f->resumes++;
    if (file == NULL || done == NULL || block_size == 0u ||
        block_count != (file->size + block_size - 1u) / block_size) {
        return OTA_ERR_INVALID_ARG;
    }
    if (f->size != file->size) {
        return OTA_ERR_NOT_FOUND;
    }
    /* Keep only blocks whose every byte was written. */
    for (uint32_t k = 0; k < block_count; k++) {
        uint32_t off = k * block_size;
        uint32_t len = file->size - off < block_size ? file->size - off : block_size;
        int whole = 1;
        for (uint32_t i = 0; i < len; i++) {
            whole &= f->written[off + i];
        }
        if (!whole) {
            done[k / 8u] = (uint8_t)(done[k / 8u] & ~(1u << (k % 8u)));
        }
        if (!((done[k / 8u] >> (k % 8u)) & 1u)) {
            memset(f->written + off, 0, len);
            memset(f->data + off, 0xff, len);
        }
    }
    if (f->corrupt_on_resume) {
        f->data[0] ^= 0x55u;
    }
    f->open = 1;
    f->closed_ok = 0;
    return OTA_OK;
}

static int32_t f_write(void *ctx, uint32_t offset, const uint8_t *data, uint32_t size)
{
    fake_pal_t *f = ctx;
    if (!f->open) {
        return OTA_ERR_NULL_FILE_CONTEXT;
    }
    if (data == NULL || size == 0u || offset + size > f->size) {
        return OTA_ERR_INVALID_ARG;
    }
    if (f->fail_write_at >= 0 && (uint32_t)f->fail_write_at == offset) {
        return OTA_ERR_IO;
    }
    f->writes++;
    for (uint32_t i = 0; i < size; i++) {
        f->rewrites += f->written[offset + i];
        f->written[offset + i] = 1;
    }
    memcpy(f->data + offset, data, size);
    if (f->clock != NULL) {
        *f->clock += f->write_ms;
    }
    if (f->hook != NULL) {
        f->hook(f->hook_ctx, "write", f->writes);
    }
    return (int32_t)size;
}

static ota_err_t f_close(void *ctx, const ota_pal_file_t *file)
{
    fake_pal_t *f = ctx;
    uint8_t sig[8];
    if (!f->open) {
        return OTA_ERR_NULL_FILE_CONTEXT;
    }
    f->closes++;
    f->open = 0;
    if (f->hook != NULL) {
        f->hook(f->hook_ctx, "close", f->closes);
    }
    if (f->fail_close != OTA_OK) {
        return f->fail_close;
    }
    fake_pal_sign(f->data, f->size, sig);
    if (file->signature_len != 8u || memcmp(file->signature, sig, 8) != 0) {
        f->image_state = OTA_PAL_IMAGE_STATE_INVALID;
        return OTA_ERR_SIGNATURE_CHECK_FAILED;
    }
    f->closed_ok = 1;
    return OTA_OK;
}

static ota_err_t f_abort(void *ctx)
{
    fake_pal_t *f = ctx;
    f->aborts++;
    f->open = 0;
    f->closed_ok = 0;
    return OTA_OK;
}

static ota_err_t f_activate(void *ctx)
{
    fake_pal_t *f = ctx;
    f->activates++;
    if (f->hook != NULL) {
        f->hook(f->hook_ctx, "activate", f->activates);
    }
    if (f->fail_activate != OTA_OK) {
        return f->fail_activate;
    }
    return f->closed_ok ? OTA_OK : OTA_ERR_ACTIVATE_FAILED;
}

static ota_err_t f_reset(void *ctx)
{
    fake_pal_t *f = ctx;
    f->resets++;
    return OTA_OK;
}

static ota_err_t f_set_state(void *ctx, ota_image_state_t state)
{
    fake_pal_t *f = ctx;
    f->states_set++;
    f->last_state = state;
    if (state == OTA_IMAGE_STATE_ACCEPTED) {
        if (f->fail_accept != OTA_OK) {
            return f->fail_accept;
        }
        if (f->image_state != OTA_PAL_IMAGE_STATE_PENDING_COMMIT) {
            return OTA_ERR_COMMIT_FAILED;
        }
        f->image_state = OTA_PAL_IMAGE_STATE_VALID;
    } else if (state == OTA_IMAGE_STATE_REJECTED || state == OTA_IMAGE_STATE_ABORTED) {
        f->image_state = OTA_PAL_IMAGE_STATE_INVALID;
    }
    return OTA_OK;
}

static ota_pal_image_state_t f_get_state(void *ctx)
{
    fake_pal_t *f = ctx;
    return f->image_state;
}

static int32_t f_read_back(void *ctx, uint32_t offset, uint8_t *buf, uint32_t len)
{
    fake_pal_t *f = ctx;
    if (offset + len > f->size) {
        return OTA_ERR_INVALID_ARG;
    }
    memcpy(buf, f->data + offset, len);
    return (int32_t)len;
}

static ota_err_t f_save(void *ctx, const uint8_t *record, uint32_t len)
{
    fake_pal_t *f = ctx;
    if (record == NULL || len == 0u || len > f->pal.progress_capacity) {
        return OTA_ERR_INVALID_ARG;
    }
    f->saves++;
    memcpy(f->progress, record, len);
    f->progress_len = (int32_t)len;
    return OTA_OK;
}

static int32_t f_load(void *ctx, uint8_t *buf, uint32_t cap)
{
    fake_pal_t *f = ctx;
    f->loads++;
    if (f->progress_len < 0) {
        return OTA_ERR_NOT_FOUND;
    }
    if ((uint32_t)f->progress_len > cap) {
        return OTA_ERR_OUT_OF_MEMORY;
    }
    memcpy(buf, f->progress, (size_t)f->progress_len);
    return f->progress_len;
}

static ota_err_t f_clear(void *ctx)
{
    fake_pal_t *f = ctx;
    f->clears++;
    f->progress_len = -1;
    return OTA_OK;
}

void fake_pal_init(fake_pal_t *f, uint32_t max_file_size)
{
    memset(f, 0, sizeof *f);
    f->image_state = OTA_PAL_IMAGE_STATE_VALID;
    f->progress_len = -1;
    f->fail_write_at = -1;
    f->pal.ctx = f;
    f->pal.max_file_size = max_file_size;
    f->pal.block_align = 1;
    f->pal.progress_capacity = sizeof f->progress;
    f->pal.create_file = f_create;
    f->pal.resume_file = f_resume;
    f->pal.write_block = f_write;
    f->pal.close_file = f_close;
    f->pal.abort = f_abort;
    f->pal.activate = f_activate;
    f->pal.reset = f_reset;
    f->pal.set_image_state = f_set_state;
    f->pal.get_image_state = f_get_state;
    f->pal.read_back = f_read_back;
    f->pal.progress_save = f_save;
    f->pal.progress_load = f_load;
    f->pal.progress_clear = f_clear;
}
