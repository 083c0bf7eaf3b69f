/* otter: the simulated NOR flash (see ota_flashsim.h): geometry, rules, counters, faults. */
#include "ota_flashsim.h"

#include <limits.h>
#include <string.h>

#include "otter/ota_bytes.h"
#include "otter/ota_crc32.h"

static ota_err_t file_sync(const ota_flashsim_t *sim, uint32_t addr, uint32_t len, uint32_t first,
                           uint32_t count);

/* ---- deterministic PRNG (xorshift32) ------------------------------------------- */

/* Any seed, 0 included, gives a non-zero xorshift state. */
static uint32_t rng_seed(uint32_t seed)
{
    uint32_t x = seed * 0x9e3779b1u + 0x7f4a7c15u;
    x ^= x >> 16;
    x *= 0x85ebca6bu;
    x ^= x >> 13;
    return x != 0u ? x : 0x6d2b79f5u;
}

static uint32_t rng_next(ota_flashsim_t *sim)
{
    uint32_t x = sim->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    sim->rng = x;
    return x;
}

/* A number in [0, n); n > 0. */
static uint32_t rng_below(ota_flashsim_t *sim, uint32_t n)
{
    return rng_next(sim) % n;
}

static uint8_t rng_byte(ota_flashsim_t *sim)
{
    return (uint8_t)(rng_next(sim) >> 24);
}

/* ---- geometry ------------------------------------------------------------------ */

static int write_unit_ok(uint32_t wu)
{
    return wu >= 1u && wu <= 256u && (wu & (wu - 1u)) == 0u;
}

static int sector_ok(uint32_t size, uint32_t wu)
{
    return size > 0u && size % wu == 0u;
}

/* Checks a geometry without touching anything; *count gets its sector count. */
static ota_err_t check_geometry(const ota_flashsim_geometry_t *geo, uint32_t *count)
{
    if (geo->size == 0u || !write_unit_ok(geo->write_unit) ||
        (geo->erased_value != 0xffu && geo->erased_value != 0x00u)) {
        return OTA_ERR_INVALID_ARG;
    }
    if (geo->sector_sizes == NULL) {
        if (!sector_ok(geo->sector_size, geo->write_unit) || geo->size % geo->sector_size != 0u ||
            geo->size / geo->sector_size > OTA_FLASHSIM_MAX_SECTORS) {
            return OTA_ERR_INVALID_ARG;
        }
        *count = geo->size / geo->sector_size;
        return OTA_OK;
    }
    if (geo->sector_count == 0u || geo->sector_count > OTA_FLASHSIM_MAX_SECTORS) {
        return OTA_ERR_INVALID_ARG;
    }
    uint64_t sum = 0;
    for (uint32_t i = 0; i < geo->sector_count; i++) {
        if (!sector_ok(geo->sector_sizes[i], geo->write_unit)) {
            return OTA_ERR_INVALID_ARG;
        }
        sum += geo->sector_sizes[i];
    }
    if (sum != geo->size) {
        return OTA_ERR_INVALID_ARG;
    }
    *count = geo->sector_count;
    return OTA_OK;
}

/* Index of the sector holding addr (addr < size): binary search of the start table. */
static uint32_t sector_index(const ota_flashsim_t *sim, uint32_t addr)
{
    uint32_t lo = 0;
    uint32_t hi = sim->sector_count - 1u;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo + 1u) / 2u;
        if (sim->sector_start[mid] <= addr) {
            lo = mid;
        } else {
            hi = mid - 1u;
        }
    }
    return lo;
}

/* 1 if addr is the first byte of a sector or the end of the device. */
static int on_boundary(const ota_flashsim_t *sim, uint32_t addr)
{
    return addr == sim->geo.size || sim->sector_start[sector_index(sim, addr)] == addr;
}

static int in_range(const ota_flashsim_t *sim, uint32_t addr, uint32_t len)
{
    return addr <= sim->geo.size && len <= sim->geo.size - addr;
}

static int all_erased(const ota_flashsim_t *sim, uint32_t addr, uint32_t len)
{
    /* Every byte equals the erased value iff the first does and each equals
     * the next one: a single memcmp of the range against itself shifted. */
    const uint8_t *m = sim->mem + addr;
    return len == 0u || (m[0] == sim->geo.erased_value && memcmp(m, m + 1, len - 1u) == 0);
}

ota_err_t ota_flashsim_init(ota_flashsim_t *sim, const ota_flashsim_geometry_t *geo, uint8_t *mem,
                            uint32_t mem_len)
{
    uint32_t count = 0;
    if (sim == NULL || geo == NULL || mem == NULL || check_geometry(geo, &count) != OTA_OK ||
        mem_len < geo->size) {
        return OTA_ERR_INVALID_ARG;
    }
    memset(sim, 0, sizeof *sim);
    sim->geo = *geo;
    sim->geo.sector_sizes = NULL; /* the caller's list need not outlive init */
    sim->geo.sector_count = count;
    sim->sector_count = count;
    uint32_t start = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t sz = geo->sector_sizes != NULL ? geo->sector_sizes[i] : geo->sector_size;
        sim->sector_start[i] = start;
        sim->sector_size[i] = sz;
        start += sz;
    }
    sim->mem = mem;
    memset(mem, geo->erased_value, geo->size);
    sim->file = NULL;
    sim->fault.kind = OTA_FLASHSIM_FAULT_NONE;
    sim->rng = rng_seed(0);
    sim->powered = 1;
    return OTA_OK;
}

/* ---- faults -------------------------------------------------------------------- */

/* Numbers an accepted operation; returns the fault that hits it (and disarms it). */
static ota_flashsim_fault_kind_t take_op(ota_flashsim_t *sim)
{
    uint32_t idx = sim->ops++;
    if (sim->fault.kind == OTA_FLASHSIM_FAULT_NONE ||
        sim->fault.kind == OTA_FLASHSIM_FAULT_READ_ERROR || sim->fault.op != idx) {
        return OTA_FLASHSIM_FAULT_NONE;
    }
    ota_flashsim_fault_kind_t kind = sim->fault.kind;
    sim->fault.kind = OTA_FLASHSIM_FAULT_NONE;
    return kind;
}

void ota_flashsim_set_fault(ota_flashsim_t *sim, const ota_flashsim_fault_t *fault)
{
    if (sim == NULL) {
        return;
    }
    if (fault == NULL) {
        sim->fault.kind = OTA_FLASHSIM_FAULT_NONE;
        return;
    }
    sim->fault = *fault;
    sim->rng = rng_seed(fault->seed);
}

void ota_flashsim_power_on(ota_flashsim_t *sim)
{
    if (sim == NULL) {
        return;
    }
    sim->powered = 1;
    sim->ops = 0;
    sim->reads = 0;
    sim->fault.kind = OTA_FLASHSIM_FAULT_NONE;
}

/* ---- program ------------------------------------------------------------------- */

/* The torn unit u (old content erased) after programming src was cut. */
static void tear_unit(ota_flashsim_t *sim, uint8_t *u, const uint8_t *src, uint32_t wu)
{
    for (uint32_t i = 0; i < wu; i++) {
        switch (sim->fault.tear) {
        case OTA_FLASHSIM_TEAR_OLD:
            break;
        case OTA_FLASHSIM_TEAR_NEW:
            u[i] = src[i];
            break;
        case OTA_FLASHSIM_TEAR_MIX:
            /* Flip a random subset of the bits programming would flip. */
            u[i] = (uint8_t)(u[i] ^ ((u[i] ^ src[i]) & rng_byte(sim)));
            break;
        case OTA_FLASHSIM_TEAR_RANDOM:
        default:
            u[i] = rng_byte(sim);
            break;
        }
    }
}

static void torn_program(ota_flashsim_t *sim, uint32_t addr, const uint8_t *src, uint32_t len)
{
    uint32_t wu = sim->geo.write_unit;
    uint32_t done = rng_below(sim, len / wu) * wu;
    memcpy(sim->mem + addr, src, done);
    tear_unit(sim, sim->mem + addr + done, src + done, wu);
}

static ota_err_t sim_program(ota_flashsim_t *sim, uint32_t addr, const uint8_t *src, uint32_t len)
{
    if (sim == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    if (!sim->powered) {
        return OTA_ERR_IO; /* the power is off */
    }
    if ((src == NULL && len > 0u) || !in_range(sim, addr, len)) {
        return OTA_ERR_INVALID_ARG;
    }
    uint32_t wu = sim->geo.write_unit;
    if (addr % wu != 0u || len % wu != 0u || !all_erased(sim, addr, len)) {
        sim->violations++;
        return OTA_ERR_FLASH_RULE;
    }
    if (len == 0u) {
        return OTA_OK;
    }
    ota_flashsim_fault_kind_t kind = take_op(sim);
    ota_err_t err;
    switch (kind) {
    case OTA_FLASHSIM_FAULT_CUT_BEFORE:
        sim->powered = 0;
        return OTA_ERR_IO; /* the power is off */
    case OTA_FLASHSIM_FAULT_ERROR:
        return OTA_ERR_IO;
    case OTA_FLASHSIM_FAULT_TORN:
        sim->program_ops++;
        torn_program(sim, addr, src, len);
        (void)file_sync(sim, addr, len, 0, 0);
        sim->powered = 0;
        return OTA_ERR_IO; /* the power is off */
    default:
        sim->program_ops++;
        memcpy(sim->mem + addr, src, len);
        err = file_sync(sim, addr, len, 0, 0);
        if (kind == OTA_FLASHSIM_FAULT_CUT_AFTER) {
            sim->powered = 0;
        }
        return err;
    }
}

/* ---- erase --------------------------------------------------------------------- */

/* Sector idx partly erased: a random prefix shorter than the sector, or a random subset. */
static void tear_sector(ota_flashsim_t *sim, uint32_t idx)
{
    uint8_t *p = sim->mem + sim->sector_start[idx];
    uint32_t size = sim->sector_size[idx];
    if ((rng_next(sim) & 1u) == 0u) {
        memset(p, sim->geo.erased_value, rng_below(sim, size));
        return;
    }
    uint32_t bits = 0;
    for (uint32_t i = 0; i < size; i++) {
        if (i % 32u == 0u) {
            bits = rng_next(sim);
        }
        if (((bits >> (i % 32u)) & 1u) != 0u) {
            p[i] = sim->geo.erased_value;
        }
    }
}

static void torn_erase(ota_flashsim_t *sim, uint32_t first, uint32_t count)
{
    uint32_t tear = first + rng_below(sim, count);
    for (uint32_t i = first; i < tear; i++) {
        memset(sim->mem + sim->sector_start[i], sim->geo.erased_value, sim->sector_size[i]);
        sim->erase_count[i]++;
    }
    tear_sector(sim, tear);
    sim->erase_count[tear]++;
}

static ota_err_t sim_erase(ota_flashsim_t *sim, uint32_t addr, uint32_t len)
{
    if (sim == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    if (!sim->powered) {
        return OTA_ERR_IO; /* the power is off */
    }
    if (!in_range(sim, addr, len)) {
        return OTA_ERR_INVALID_ARG;
    }
    if (len == 0u || !on_boundary(sim, addr) || !on_boundary(sim, addr + len)) {
        sim->violations++;
        return OTA_ERR_FLASH_RULE;
    }
    uint32_t first = sector_index(sim, addr);
    uint32_t count = sector_index(sim, addr + len - 1u) - first + 1u;
    ota_flashsim_fault_kind_t kind = take_op(sim);
    ota_err_t err;
    switch (kind) {
    case OTA_FLASHSIM_FAULT_CUT_BEFORE:
        sim->powered = 0;
        return OTA_ERR_IO; /* the power is off */
    case OTA_FLASHSIM_FAULT_ERROR:
        return OTA_ERR_IO;
    case OTA_FLASHSIM_FAULT_TORN:
        sim->erase_ops++;
        torn_erase(sim, first, count);
        (void)file_sync(sim, addr, len, first, count);
        sim->powered = 0;
        return OTA_ERR_IO; /* the power is off */
    default:
        sim->erase_ops++;
        memset(sim->mem + addr, sim->geo.erased_value, len);
        for (uint32_t i = first; i < first + count; i++) {
            sim->erase_count[i]++;
        }
        err = file_sync(sim, addr, len, first, count);
        if (kind == OTA_FLASHSIM_FAULT_CUT_AFTER) {
            sim->powered = 0;
        }
        return err;
    }
}

/* ---- read, sector info, driver --------------------------------------------------- */

static ota_err_t sim_read(ota_flashsim_t *sim, uint32_t addr, uint8_t *dst, uint32_t len)
{
    if (sim == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    if (!sim->powered) {
        return OTA_ERR_IO; /* the power is off */
    }
    if ((dst == NULL && len > 0u) || !in_range(sim, addr, len)) {
        return OTA_ERR_INVALID_ARG;
    }
    uint32_t idx = sim->reads++;
    if (sim->fault.kind == OTA_FLASHSIM_FAULT_READ_ERROR && sim->fault.op == idx) {
        sim->fault.kind = OTA_FLASHSIM_FAULT_NONE;
        return OTA_ERR_IO;
    }
    if (len > 0u) {
        memcpy(dst, sim->mem + addr, len);
    }
    return OTA_OK;
}

uint32_t ota_flashsim_read_count(const ota_flashsim_t *sim)
{
    return sim == NULL ? 0u : sim->reads;
}

static ota_err_t sim_sector_info(const ota_flashsim_t *sim, uint32_t addr, uint32_t *start,
                                 uint32_t *size)
{
    if (sim == NULL || start == NULL || size == NULL || addr >= sim->geo.size) {
        return OTA_ERR_INVALID_ARG;
    }
    uint32_t idx = sector_index(sim, addr);
    *start = sim->sector_start[idx];
    *size = sim->sector_size[idx];
    return OTA_OK;
}

static ota_err_t drv_read(void *ctx, uint32_t addr, void *buf, uint32_t len)
{
    return sim_read((ota_flashsim_t *)ctx, addr, (uint8_t *)buf, len);
}

static ota_err_t drv_program(void *ctx, uint32_t addr, const void *buf, uint32_t len)
{
    return sim_program((ota_flashsim_t *)ctx, addr, (const uint8_t *)buf, len);
}

static ota_err_t drv_erase(void *ctx, uint32_t addr, uint32_t len)
{
    return sim_erase((ota_flashsim_t *)ctx, addr, len);
}

static ota_err_t drv_sector_info(void *ctx, uint32_t addr, uint32_t *start, uint32_t *size)
{
    return sim_sector_info((const ota_flashsim_t *)ctx, addr, start, size);
}

ota_flash_t ota_flashsim_driver(ota_flashsim_t *sim)
{
    ota_flash_t f;
    memset(&f, 0, sizeof f);
    f.ctx = sim;
    if (sim != NULL) {
        f.size = sim->geo.size;
        f.write_unit = sim->geo.write_unit;
        f.erased_value = sim->geo.erased_value;
    }
    f.read = drv_read;
    f.program = drv_program;
    f.erase = drv_erase;
    f.sector_info = drv_sector_info;
    return f;
}

/* ---- backing file ------------------------------------------------------------- */

static int file_seek(FILE *f, uint64_t off)
{
    return off <= (uint64_t)LONG_MAX && fseek(f, (long)off, SEEK_SET) == 0;
}

static uint64_t counters_offset(const ota_flashsim_t *sim)
{
    return (uint64_t)OTA_FLASHSIM_FILE_HEADER_LEN + sim->geo.size;
}

static uint64_t file_length(const ota_flashsim_t *sim)
{
    return counters_offset(sim) + 4u * (uint64_t)sim->sector_count;
}

/* Writes the erase counters of sectors [first, first + count) at the current position. */
static int write_counters(const ota_flashsim_t *sim, uint32_t first, uint32_t count)
{
    for (uint32_t i = first; i < first + count; i++) {
        uint8_t le[4];
        ota_put_le32(le, sim->erase_count[i]);
        if (fwrite(le, 1, sizeof le, sim->file) != sizeof le) {
            return 0;
        }
    }
    return 1;
}

/* Writes content [addr, addr + len) and the counters of count sectors from first through. */
static ota_err_t file_sync(const ota_flashsim_t *sim, uint32_t addr, uint32_t len, uint32_t first,
                           uint32_t count)
{
    if (sim->file == NULL) {
        return OTA_OK;
    }
    if (!file_seek(sim->file, (uint64_t)OTA_FLASHSIM_FILE_HEADER_LEN + addr) ||
        fwrite(sim->mem + addr, 1, len, sim->file) != len) {
        return OTA_ERR_IO;
    }
    if (count > 0u && (!file_seek(sim->file, counters_offset(sim) + 4u * (uint64_t)first) ||
                       !write_counters(sim, first, count))) {
        return OTA_ERR_IO;
    }
    return fflush(sim->file) == 0 ? OTA_OK : OTA_ERR_IO;
}

static void make_header(const ota_flashsim_t *sim, uint8_t hdr[OTA_FLASHSIM_FILE_HEADER_LEN])
{
    uint32_t crc = 0;
    for (uint32_t i = 0; i < sim->sector_count; i++) {
        uint8_t le[4];
        ota_put_le32(le, sim->sector_size[i]);
        crc = ota_crc32(crc, le, sizeof le);
    }
    ota_put_le32(hdr, OTA_FLASHSIM_FILE_MAGIC);
    ota_put_le32(hdr + 4, OTA_FLASHSIM_FILE_VERSION);
    ota_put_le32(hdr + 8, sim->geo.size);
    ota_put_le32(hdr + 12, sim->sector_count);
    ota_put_le32(hdr + 16, sim->geo.write_unit);
    ota_put_le32(hdr + 20, sim->geo.erased_value);
    ota_put_le32(hdr + 24, crc);
}

/* Writes a fresh (fully erased, counters zero) image of sim to its file. */
static ota_err_t file_create(const ota_flashsim_t *sim)
{
    uint8_t hdr[OTA_FLASHSIM_FILE_HEADER_LEN];
    make_header(sim, hdr);
    if (!file_seek(sim->file, 0) || fwrite(hdr, 1, sizeof hdr, sim->file) != sizeof hdr ||
        fwrite(sim->mem, 1, sim->geo.size, sim->file) != sim->geo.size ||
        !write_counters(sim, 0, sim->sector_count) || fflush(sim->file) != 0) {
        return OTA_ERR_IO;
    }
    return OTA_OK;
}

/* Loads content and erase counters from sim's file, after checking its header. */
static ota_err_t file_load(ota_flashsim_t *sim, uint64_t length)
{
    uint8_t want[OTA_FLASHSIM_FILE_HEADER_LEN];
    uint8_t have[OTA_FLASHSIM_FILE_HEADER_LEN];
    make_header(sim, want);
    if (!file_seek(sim->file, 0) || fread(have, 1, sizeof have, sim->file) != sizeof have) {
        return length < sizeof have ? OTA_ERR_INVALID_ARG : OTA_ERR_IO;
    }
    if (memcmp(have, want, sizeof have) != 0) {
        return OTA_ERR_INVALID_ARG;
    }
    if (length != file_length(sim) ||
        fread(sim->mem, 1, sim->geo.size, sim->file) != sim->geo.size) {
        return OTA_ERR_IO;
    }
    for (uint32_t i = 0; i < sim->sector_count; i++) {
        uint8_t le[4];
        if (fread(le, 1, sizeof le, sim->file) != sizeof le) {
            return OTA_ERR_IO;
        }
        sim->erase_count[i] = ota_get_le32(le);
    }
    return OTA_OK;
}

ota_err_t ota_flashsim_open_file(ota_flashsim_t *sim, const ota_flashsim_geometry_t *geo,
                                 uint8_t *mem, uint32_t mem_len, const char *path)
{
    if (path == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    ota_err_t err = ota_flashsim_init(sim, geo, mem, mem_len);
    if (err != OTA_OK) {
        return err;
    }
    sim->file = fopen(path, "r+b");
    if (sim->file == NULL) {
        sim->file = fopen(path, "w+b");
        if (sim->file == NULL) {
            return OTA_ERR_IO;
        }
        err = file_create(sim);
    } else if (fseek(sim->file, 0, SEEK_END) != 0) {
        err = OTA_ERR_IO;
    } else {
        long length = ftell(sim->file);
        if (length < 0) {
            err = OTA_ERR_IO;
        } else if (length == 0) {
            err = file_create(sim);
        } else {
            err = file_load(sim, (uint64_t)length);
        }
    }
    if (err != OTA_OK) {
        ota_flashsim_close(sim);
        memset(sim->erase_count, 0, sizeof sim->erase_count);
        memset(mem, sim->geo.erased_value, sim->geo.size);
    }
    return err;
}

void ota_flashsim_close(ota_flashsim_t *sim)
{
    if (sim != NULL && sim->file != NULL) {
        (void)fclose(sim->file);
        sim->file = NULL;
    }
}

/* ---- counters ------------------------------------------------------------------ */

int ota_flashsim_is_powered(const ota_flashsim_t *sim)
{
    return sim != NULL && sim->powered != 0;
}

uint32_t ota_flashsim_op_count(const ota_flashsim_t *sim)
{
    return sim != NULL ? sim->ops : 0u;
}

uint32_t ota_flashsim_sector_erases(const ota_flashsim_t *sim, uint32_t idx)
{
    return sim != NULL && idx < sim->sector_count ? sim->erase_count[idx] : 0u;
}

uint32_t ota_flashsim_erase_ops(const ota_flashsim_t *sim)
{
    return sim != NULL ? sim->erase_ops : 0u;
}

uint32_t ota_flashsim_program_ops(const ota_flashsim_t *sim)
{
    return sim != NULL ? sim->program_ops : 0u;
}

uint32_t ota_flashsim_violations(const ota_flashsim_t *sim)
{
    return sim != NULL ? sim->violations : 0u;
}
