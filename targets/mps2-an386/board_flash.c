/* otter on mps2-an386: NOR rules over memory, written through (see board_flash.h). */
#include "board_flash.h"

#include <string.h>

/* 1 when [addr, addr + len) lies inside the flash. */
static int in_range(const board_flash_t *f, uint32_t addr, uint32_t len)
{
    return addr <= f->size && len <= f->size - addr;
}

static ota_err_t fl_read(void *ctx, uint32_t addr, void *buf, uint32_t len)
{
    board_flash_t *f = ctx;
    if (f == NULL || (buf == NULL && len > 0u) || !in_range(f, addr, len)) {
        return OTA_ERR_INVALID_ARG;
    }
    memcpy(buf, f->mem + addr, len);
    return OTA_OK;
}

static ota_err_t persist(board_flash_t *f, uint32_t addr, uint32_t len)
{
    return f->persist != NULL ? f->persist(f->persist_ctx, addr, f->mem + addr, len) : OTA_OK;
}

static ota_err_t fl_program(void *ctx, uint32_t addr, const void *buf, uint32_t len)
{
    board_flash_t *f = ctx;
    if (f == NULL || buf == NULL || len == 0u || !in_range(f, addr, len)) {
        return OTA_ERR_INVALID_ARG;
    }
    if (addr % f->write_unit != 0u || len % f->write_unit != 0u) {
        return OTA_ERR_FLASH_RULE;
    }
    for (uint32_t i = 0; i < len; i++) {
        if (f->mem[addr + i] != f->erased) {
            return OTA_ERR_FLASH_RULE;
        }
    }
    memcpy(f->mem + addr, buf, len);
    f->programs++;
    return persist(f, addr, len);
}

static ota_err_t fl_erase(void *ctx, uint32_t addr, uint32_t len)
{
    board_flash_t *f = ctx;
    if (f == NULL || len == 0u || !in_range(f, addr, len)) {
        return OTA_ERR_INVALID_ARG;
    }
    if (addr % f->sector_size != 0u || len % f->sector_size != 0u) {
        return OTA_ERR_FLASH_RULE;
    }
    memset(f->mem + addr, f->erased, len);
    f->erases += len / f->sector_size;
    return persist(f, addr, len);
}

static ota_err_t fl_sector_info(void *ctx, uint32_t addr, uint32_t *start, uint32_t *size)
{
    board_flash_t *f = ctx;
    if (f == NULL || start == NULL || size == NULL || addr >= f->size) {
        return OTA_ERR_INVALID_ARG;
    }
    *start = addr - addr % f->sector_size;
    *size = f->sector_size;
    return OTA_OK;
}

ota_err_t board_flash_init(board_flash_t *f, uint8_t *mem, uint32_t size, uint32_t sector_size,
                           uint32_t write_unit, uint8_t erased, board_flash_persist_fn persist_fn,
                           void *persist_ctx, ota_flash_t *out)
{
    if (f == NULL || mem == NULL || out == NULL || sector_size == 0u || size == 0u ||
        size % sector_size != 0u || write_unit == 0u || write_unit > 256u ||
        (write_unit & (write_unit - 1u)) != 0u || sector_size % write_unit != 0u ||
        (erased != 0x00u && erased != 0xffu)) {
        return OTA_ERR_INVALID_ARG;
    }
    memset(f, 0, sizeof *f);
    f->mem = mem;
    f->size = size;
    f->sector_size = sector_size;
    f->write_unit = write_unit;
    f->erased = erased;
    f->persist = persist_fn;
    f->persist_ctx = persist_ctx;
    memset(out, 0, sizeof *out);
    out->ctx = f;
    out->size = size;
    out->write_unit = write_unit;
    out->erased_value = erased;
    out->read = fl_read;
    out->program = fl_program;
    out->erase = fl_erase;
    out->sector_info = fl_sector_info;
    return OTA_OK;
}
