/* Unit tests: the simulated NOR flash (geometry, rules, counters, faults, file backing). */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "ota_flashsim.h"

#define KB 1024u

/* The STM32F4 layout of one bank: 4 x 16K, 1 x 64K, 3 x 128K = 512K. */
static const uint32_t stm32f4_sectors[8] = {16 * KB, 16 * KB,  16 * KB,  16 * KB,
                                            64 * KB, 128 * KB, 128 * KB, 128 * KB};
#define STM32F4_SIZE (512u * KB)

static uint8_t big_mem[STM32F4_SIZE];
static uint8_t big_mem2[STM32F4_SIZE];
static ota_flashsim_t big_sim; /* too large for a comfortable stack frame */
static ota_flashsim_t big_sim2;

/* Torn cases checked, printed at the end (reliability.md: every count is printed). */
static uint32_t torn_programs_checked;
static uint32_t torn_erases_checked;

/* ---- helpers ------------------------------------------------------------------ */

static ota_flashsim_geometry_t uniform(uint32_t size, uint32_t sector, uint32_t wu, uint8_t erased)
{
    ota_flashsim_geometry_t g = {size, sector, NULL, 0, wu, erased};
    return g;
}

static ota_flashsim_geometry_t stm32f4(uint32_t wu, uint8_t erased)
{
    ota_flashsim_geometry_t g = {STM32F4_SIZE, 0, stm32f4_sectors, 8, wu, erased};
    return g;
}

static void fill_pattern(uint8_t *buf, uint32_t len, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1u;
    for (uint32_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 16);
    }
}

/* Data that differs from the erased value in every byte. */
static void fill_programmed(uint8_t *buf, uint32_t len, uint8_t erased, uint32_t seed)
{
    fill_pattern(buf, len, seed);
    for (uint32_t i = 0; i < len; i++) {
        if (buf[i] == erased) {
            buf[i] = (uint8_t)(erased ^ 0x5au);
        }
    }
}

static int all_equal(const uint8_t *p, uint32_t len, uint8_t v)
{
    for (uint32_t i = 0; i < len; i++) {
        if (p[i] != v) {
            return 0;
        }
    }
    return 1;
}

static void arm(ota_flashsim_t *sim, ota_flashsim_fault_kind_t kind, uint32_t op,
                ota_flashsim_tear_t tear, uint32_t seed)
{
    ota_flashsim_fault_t f = {kind, op, tear, seed};
    ota_flashsim_set_fault(sim, &f);
}

/* ---- geometry ----------------------------------------------------------------- */

static void expect_bad(const ota_flashsim_geometry_t *g, uint32_t mem_len)
{
    ota_flashsim_t sim;
    assert_int_equal(ota_flashsim_init(&sim, g, big_mem, mem_len), OTA_ERR_INVALID_ARG);
}

static void expect_good(const ota_flashsim_geometry_t *g)
{
    ota_flashsim_t sim;
    assert_int_equal(ota_flashsim_init(&sim, g, big_mem, sizeof big_mem), OTA_OK);
}

static void test_geometry_validation(void **state)
{
    (void)state;
    ota_flashsim_t sim;
    ota_flashsim_geometry_t g = uniform(64 * KB, 4 * KB, 8, 0xff);

    expect_good(&g);
    g = uniform(64 * KB, 4 * KB, 1, 0x00);
    expect_good(&g);
    g = uniform(1024 * 256, 256, 256, 0xff); /* exactly the maximum sector count, unit 256 */
    expect_good(&g);
    g = stm32f4(16, 0xff);
    expect_good(&g);

    /* NULL pointers and memory too small. */
    g = uniform(64 * KB, 4 * KB, 8, 0xff);
    assert_int_equal(ota_flashsim_init(NULL, &g, big_mem, sizeof big_mem), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_flashsim_init(&sim, NULL, big_mem, sizeof big_mem), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_flashsim_init(&sim, &g, NULL, sizeof big_mem), OTA_ERR_INVALID_ARG);
    expect_bad(&g, 64 * KB - 1);

    /* Write unit: 0, not a power of two, larger than 256. */
    g = uniform(64 * KB, 4 * KB, 0, 0xff);
    expect_bad(&g, sizeof big_mem);
    g = uniform(64 * KB, 4 * KB, 3, 0xff);
    expect_bad(&g, sizeof big_mem);
    g = uniform(64 * KB, 4 * KB, 12, 0xff);
    expect_bad(&g, sizeof big_mem);
    g = uniform(64 * KB, 4 * KB, 512, 0xff);
    expect_bad(&g, sizeof big_mem);

    /* Erased value other than 0xFF / 0x00. */
    g = uniform(64 * KB, 4 * KB, 8, 0x7f);
    expect_bad(&g, sizeof big_mem);
    g = uniform(64 * KB, 4 * KB, 8, 0xfe);
    expect_bad(&g, sizeof big_mem);

    /* Sizes: zero, not summing, sector not a multiple of the write unit. */
    g = uniform(0, 4 * KB, 8, 0xff);
    expect_bad(&g, sizeof big_mem);
    g = uniform(64 * KB, 0, 8, 0xff);
    expect_bad(&g, sizeof big_mem);
    g = uniform(64 * KB + 8, 4 * KB, 8, 0xff);
    expect_bad(&g, sizeof big_mem);
    g = uniform(48, 24, 16, 0xff);
    expect_bad(&g, sizeof big_mem);
    g = stm32f4(8, 0xff);
    g.size = STM32F4_SIZE - 16 * KB;
    expect_bad(&g, sizeof big_mem);
    g = stm32f4(8, 0xff);
    g.sector_count = 7; /* list no longer sums to size */
    expect_bad(&g, sizeof big_mem);
    g = stm32f4(8, 0xff);
    g.sector_count = 0;
    expect_bad(&g, sizeof big_mem);
    {
        const uint32_t odd[3] = {4096, 100, 3996};
        ota_flashsim_geometry_t go = {8192, 0, odd, 3, 8, 0xff};
        expect_bad(&go, sizeof big_mem);
        go.write_unit = 4; /* 100 and 3996 are multiples of 4 */
        expect_good(&go);
        const uint32_t zero[3] = {4096, 0, 4096};
        ota_flashsim_geometry_t gz = {8192, 0, zero, 3, 1, 0xff};
        expect_bad(&gz, sizeof big_mem);
    }

    /* Too many sectors, uniform and listed. */
    g = uniform(1025 * 256, 256, 1, 0xff);
    expect_bad(&g, sizeof big_mem);
    {
        static uint32_t many[OTA_FLASHSIM_MAX_SECTORS + 1u];
        for (uint32_t i = 0; i <= OTA_FLASHSIM_MAX_SECTORS; i++) {
            many[i] = 256;
        }
        ota_flashsim_geometry_t gm = {(OTA_FLASHSIM_MAX_SECTORS + 1u) * 256u, 0, many,
                                      OTA_FLASHSIM_MAX_SECTORS + 1u,          1, 0xff};
        expect_bad(&gm, sizeof big_mem);
        gm.size -= 256u;
        gm.sector_count -= 1u;
        expect_good(&gm);
    }
}

/* ---- basics ------------------------------------------------------------------- */

static void basics_for(uint32_t wu, uint8_t erased)
{
    static uint8_t mem[16 * KB];
    ota_flashsim_t sim;
    ota_flashsim_geometry_t g = uniform(sizeof mem, 4 * KB, wu, erased);
    uint8_t data[512];
    uint8_t back[512];

    memset(mem, 0x33, sizeof mem);
    assert_int_equal(ota_flashsim_init(&sim, &g, mem, sizeof mem), OTA_OK);
    ota_flash_t f = ota_flashsim_driver(&sim);
    assert_ptr_equal(f.ctx, &sim);
    assert_int_equal(f.size, sizeof mem);
    assert_int_equal(f.write_unit, wu);
    assert_int_equal(f.erased_value, erased);
    assert_true(all_equal(mem, sizeof mem, erased)); /* init erases */
    assert_int_equal(ota_flashsim_is_powered(&sim), 1);

    /* Program two places, read back (also unaligned reads). */
    fill_programmed(data, sizeof data, erased, wu);
    assert_int_equal(f.program(f.ctx, 4 * KB + 2 * wu, data, 64 * wu > 512 ? 512 : 64 * wu),
                     OTA_OK);
    uint32_t n = 64 * wu > 512 ? 512 : 64 * wu;
    assert_int_equal(f.read(f.ctx, 4 * KB + 2 * wu, back, n), OTA_OK);
    assert_memory_equal(back, data, n);
    assert_int_equal(f.read(f.ctx, 4 * KB + 2 * wu + 1, back, 3), OTA_OK);
    assert_memory_equal(back, data + 1, 3);
    assert_int_equal(f.read(f.ctx, 4 * KB, back, 2 * wu), OTA_OK);
    assert_true(all_equal(back, 2 * wu, erased));
    assert_int_equal(f.program(f.ctx, sizeof mem - wu, data, wu), OTA_OK);
    assert_memory_equal(mem + sizeof mem - wu, data, wu);
    assert_int_equal(f.read(f.ctx, 0, back, 0), OTA_OK);
    assert_int_equal(f.read(f.ctx, sizeof mem, back, 0), OTA_OK);

    /* Erase one sector: only it goes back to erased. */
    assert_int_equal(f.erase(f.ctx, 4 * KB, 4 * KB), OTA_OK);
    assert_true(all_equal(mem + 4 * KB, 4 * KB, erased));
    assert_memory_equal(mem + sizeof mem - wu, data, wu);
    /* Programming again after the erase is allowed. */
    assert_int_equal(f.program(f.ctx, 4 * KB, data, wu), OTA_OK);
    assert_memory_equal(mem + 4 * KB, data, wu);
    /* Erase several sectors in one call. */
    assert_int_equal(f.erase(f.ctx, 0, sizeof mem), OTA_OK);
    assert_true(all_equal(mem, sizeof mem, erased));

    /* Out of range: invalid, not a rule violation. */
    assert_int_equal(f.read(f.ctx, sizeof mem - 1, back, 2), OTA_ERR_INVALID_ARG);
    assert_int_equal(f.read(f.ctx, sizeof mem + 1, back, 0), OTA_ERR_INVALID_ARG);
    assert_int_equal(f.read(f.ctx, 0, NULL, 1), OTA_ERR_INVALID_ARG);
    assert_int_equal(f.read(f.ctx, UINT32_MAX, back, 2), OTA_ERR_INVALID_ARG);
    assert_int_equal(f.program(f.ctx, sizeof mem, data, wu), OTA_ERR_INVALID_ARG);
    assert_int_equal(f.program(f.ctx, 0, NULL, wu), OTA_ERR_INVALID_ARG);
    assert_int_equal(f.erase(f.ctx, sizeof mem, 4 * KB), OTA_ERR_INVALID_ARG);
    assert_int_equal(f.erase(f.ctx, 4 * KB, UINT32_MAX), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_flashsim_violations(&sim), 0);
    assert_true(all_equal(mem, sizeof mem, erased));
}

static void test_basics_erased_ff(void **state)
{
    (void)state;
    basics_for(1, 0xff);
    basics_for(8, 0xff);
    basics_for(256, 0xff);
}

static void test_basics_erased_00(void **state)
{
    (void)state;
    basics_for(1, 0x00);
    basics_for(4, 0x00);
    basics_for(32, 0x00);
}

/* ---- rule violations ---------------------------------------------------------- */

static void expect_rule(ota_flashsim_t *sim, ota_err_t got, const uint8_t *before, uint32_t *viol)
{
    assert_int_equal(got, OTA_ERR_FLASH_RULE);
    assert_memory_equal(sim->mem, before, sim->geo.size);
    *viol += 1u;
    assert_int_equal(ota_flashsim_violations(sim), *viol);
}

static void rules_for(uint8_t erased)
{
    static uint8_t mem[8 * KB];
    static uint8_t before[8 * KB];
    ota_flashsim_t sim;
    ota_flashsim_geometry_t g = uniform(sizeof mem, 2 * KB, 8, erased);
    uint8_t data[64];
    uint8_t one_off[8];
    uint32_t viol = 0;

    assert_int_equal(ota_flashsim_init(&sim, &g, mem, sizeof mem), OTA_OK);
    ota_flash_t f = ota_flashsim_driver(&sim);
    fill_programmed(data, sizeof data, erased, 7);
    assert_int_equal(f.program(f.ctx, 0, data, 32), OTA_OK);
    /* A unit with a single programmed byte, the rest erased. */
    memset(one_off, erased, sizeof one_off);
    one_off[5] = (uint8_t)(erased ^ 0x10u);
    assert_int_equal(f.program(f.ctx, 2 * KB, one_off, 8), OTA_OK);
    memcpy(before, mem, sizeof mem);
    uint32_t ops = ota_flashsim_op_count(&sim);
    uint32_t prog = ota_flashsim_program_ops(&sim);
    uint32_t ers = ota_flashsim_erase_ops(&sim);
    assert_int_equal(ops, 2);

    /* Program: misaligned address, misaligned length, both. */
    expect_rule(&sim, f.program(f.ctx, 64 + 4, data, 8), before, &viol);
    expect_rule(&sim, f.program(f.ctx, 64, data, 12), before, &viol);
    expect_rule(&sim, f.program(f.ctx, 65, data, 3), before, &viol);
    expect_rule(&sim, f.program(f.ctx, 64, data, 4), before, &viol);
    /* Program over programmed units, partly and fully. */
    expect_rule(&sim, f.program(f.ctx, 0, data, 8), before, &viol);
    expect_rule(&sim, f.program(f.ctx, 24, data, 16), before, &viol); /* 24..31 programmed */
    /* Only one byte of the unit is not erased: still a violation, even with data that would
     * keep that byte as it is. */
    expect_rule(&sim, f.program(f.ctx, 2 * KB, one_off, 8), before, &viol);
    memset(data + 32, erased, 8);
    expect_rule(&sim, f.program(f.ctx, 2 * KB, data + 32, 8), before, &viol);
    /* Erase: not on a sector start, not ending on a sector end, length 0. */
    expect_rule(&sim, f.erase(f.ctx, 8, 2 * KB), before, &viol);
    expect_rule(&sim, f.erase(f.ctx, 0, 2 * KB - 8), before, &viol);
    expect_rule(&sim, f.erase(f.ctx, 0, 2 * KB + 1), before, &viol);
    expect_rule(&sim, f.erase(f.ctx, 2 * KB, 0), before, &viol);
    expect_rule(&sim, f.erase(f.ctx, 1, 1), before, &viol);

    /* None of these was an operation. */
    assert_int_equal(ota_flashsim_op_count(&sim), ops);
    assert_int_equal(ota_flashsim_program_ops(&sim), prog);
    assert_int_equal(ota_flashsim_erase_ops(&sim), ers);
    for (uint32_t i = 0; i < 4u; i++) {
        assert_int_equal(ota_flashsim_sector_erases(&sim, i), 0);
    }

    /* A unit programmed with the erased value is still erased: programming it is allowed. */
    assert_int_equal(f.program(f.ctx, 4 * KB, data + 32, 8), OTA_OK);
    assert_int_equal(f.program(f.ctx, 4 * KB, data, 8), OTA_OK);
    assert_memory_equal(mem + 4 * KB, data, 8);
    /* A zero-length, aligned program is a no-op and not an operation. */
    assert_int_equal(f.program(f.ctx, 64, data, 0), OTA_OK);
    assert_int_equal(ota_flashsim_op_count(&sim), ops + 2u);
    assert_int_equal(ota_flashsim_violations(&sim), viol);
}

static void test_rule_violations(void **state)
{
    (void)state;
    rules_for(0xff);
    rules_for(0x00);
}

/* ---- non-uniform sectors ------------------------------------------------------ */

static void test_nonuniform_sectors(void **state)
{
    (void)state;
    ota_flashsim_t *sim = &big_sim;
    ota_flashsim_geometry_t g = stm32f4(4, 0xff);
    uint32_t start = 0;
    uint32_t size = 0;
    uint8_t data[16];

    assert_int_equal(ota_flashsim_init(sim, &g, big_mem, sizeof big_mem), OTA_OK);
    ota_flash_t f = ota_flashsim_driver(sim);
    assert_int_equal(f.size, STM32F4_SIZE);

    /* sector_info at the first, last and a middle byte of every sector. */
    uint32_t base = 0;
    for (uint32_t i = 0; i < 8u; i++) {
        uint32_t sz = stm32f4_sectors[i];
        uint32_t probes[3] = {base, base + sz / 2u, base + sz - 1u};
        for (uint32_t p = 0; p < 3u; p++) {
            assert_int_equal(f.sector_info(f.ctx, probes[p], &start, &size), OTA_OK);
            assert_int_equal(start, base);
            assert_int_equal(size, sz);
        }
        base += sz;
    }
    assert_int_equal(f.sector_info(f.ctx, STM32F4_SIZE, &start, &size), OTA_ERR_INVALID_ARG);
    assert_int_equal(f.sector_info(f.ctx, 0, NULL, &size), OTA_ERR_INVALID_ARG);
    assert_int_equal(f.sector_info(f.ctx, 0, &start, NULL), OTA_ERR_INVALID_ARG);

    /* Erase must follow the real boundaries. */
    fill_programmed(data, sizeof data, 0xff, 3);
    assert_int_equal(f.program(f.ctx, 64 * KB, data, sizeof data), OTA_OK);
    assert_int_equal(f.erase(f.ctx, 64 * KB, 16 * KB), OTA_ERR_FLASH_RULE); /* sector 4 is 64K */
    assert_int_equal(f.erase(f.ctx, 48 * KB, 32 * KB), OTA_ERR_FLASH_RULE);
    assert_int_equal(f.erase(f.ctx, 128 * KB, 64 * KB), OTA_ERR_FLASH_RULE); /* 128K sector */
    assert_memory_equal(big_mem + 64 * KB, data, sizeof data);
    assert_int_equal(f.erase(f.ctx, 48 * KB, 80 * KB), OTA_OK); /* sectors 3 and 4 */
    assert_true(all_equal(big_mem + 64 * KB, sizeof data, 0xff));
    assert_int_equal(f.erase(f.ctx, 128 * KB, 256 * KB), OTA_OK); /* sectors 5 and 6 */
    assert_int_equal(f.erase(f.ctx, 384 * KB, 128 * KB), OTA_OK); /* sector 7, to the end */
    assert_int_equal(f.erase(f.ctx, 0, STM32F4_SIZE), OTA_OK);    /* everything */
    const uint32_t want[8] = {1, 1, 1, 2, 2, 2, 2, 2};
    for (uint32_t i = 0; i < 8u; i++) {
        assert_int_equal(ota_flashsim_sector_erases(sim, i), want[i]);
    }
    assert_int_equal(ota_flashsim_sector_erases(sim, 8), 0);
    assert_int_equal(ota_flashsim_erase_ops(sim), 4);
    assert_int_equal(ota_flashsim_violations(sim), 3);
}

/* ---- counters ----------------------------------------------------------------- */

static void test_counters(void **state)
{
    (void)state;
    static uint8_t mem[4 * KB];
    ota_flashsim_t sim;
    ota_flashsim_geometry_t g = uniform(sizeof mem, 1 * KB, 4, 0xff);
    uint8_t data[64];
    uint8_t back[64];

    assert_int_equal(ota_flashsim_init(&sim, &g, mem, sizeof mem), OTA_OK);
    ota_flash_t f = ota_flashsim_driver(&sim);
    fill_programmed(data, sizeof data, 0xff, 1);
    assert_int_equal(ota_flashsim_op_count(&sim), 0);

    assert_int_equal(f.program(f.ctx, 0, data, 64), OTA_OK);
    assert_int_equal(f.program(f.ctx, 1 * KB, data, 64), OTA_OK);
    assert_int_equal(f.erase(f.ctx, 0, 2 * KB), OTA_OK);
    assert_int_equal(f.erase(f.ctx, 1 * KB, 1 * KB), OTA_OK);
    assert_int_equal(f.read(f.ctx, 0, back, sizeof back), OTA_OK); /* reads do not count */
    uint32_t start = 1;
    uint32_t size = 0;
    assert_int_equal(f.sector_info(f.ctx, 0, &start, &size), OTA_OK);
    assert_int_equal(start, 0);
    assert_int_equal(size, 1 * KB);
    assert_int_equal(ota_flashsim_op_count(&sim), 4);
    assert_int_equal(ota_flashsim_program_ops(&sim), 2);
    assert_int_equal(ota_flashsim_erase_ops(&sim), 2);
    assert_int_equal(ota_flashsim_sector_erases(&sim, 0), 1);
    assert_int_equal(ota_flashsim_sector_erases(&sim, 1), 2);
    assert_int_equal(ota_flashsim_sector_erases(&sim, 2), 0);
    assert_int_equal(ota_flashsim_sector_erases(&sim, 99), 0);

    /* Power on restarts op numbering only. */
    ota_flashsim_power_on(&sim);
    assert_int_equal(ota_flashsim_op_count(&sim), 0);
    assert_int_equal(ota_flashsim_program_ops(&sim), 2);
    assert_int_equal(ota_flashsim_erase_ops(&sim), 2);
    assert_int_equal(ota_flashsim_sector_erases(&sim, 1), 2);
    assert_int_equal(f.erase(f.ctx, 3 * KB, 1 * KB), OTA_OK);
    assert_int_equal(ota_flashsim_op_count(&sim), 1);
    assert_int_equal(ota_flashsim_sector_erases(&sim, 3), 1);

    /* NULL-safe accessors. */
    assert_int_equal(ota_flashsim_op_count(NULL), 0);
    assert_int_equal(ota_flashsim_is_powered(NULL), 0);
    assert_int_equal(ota_flashsim_sector_erases(NULL, 0), 0);
}

/* ---- faults: cuts and errors --------------------------------------------------- */

#define FS_SIZE (4u * KB)
#define FS_SECTOR (1u * KB)
#define FS_WU 4u

typedef struct small {
    ota_flashsim_t sim;
    uint8_t mem[FS_SIZE];
    ota_flash_t f;
    uint8_t data[512];
} small_t;

static void small_init(small_t *s, uint32_t wu, uint8_t erased)
{
    ota_flashsim_geometry_t g = uniform(FS_SIZE, FS_SECTOR, wu, erased);
    assert_int_equal(ota_flashsim_init(&s->sim, &g, s->mem, sizeof s->mem), OTA_OK);
    s->f = ota_flashsim_driver(&s->sim);
    fill_programmed(s->data, sizeof s->data, erased, 99);
}

/* While the power is off everything returns OTA_ERR_IO and nothing changes. */
static void expect_dead(small_t *s)
{
    uint8_t snap[FS_SIZE];
    uint8_t back[8];
    uint32_t ops = ota_flashsim_op_count(&s->sim);
    memcpy(snap, s->mem, sizeof snap);
    assert_int_equal(ota_flashsim_is_powered(&s->sim), 0);
    assert_int_equal(s->f.read(s->f.ctx, 0, back, 4), OTA_ERR_IO);
    assert_int_equal(s->f.program(s->f.ctx, 3 * KB, s->data, 4), OTA_ERR_IO);
    assert_int_equal(s->f.erase(s->f.ctx, 0, FS_SECTOR), OTA_ERR_IO);
    assert_int_equal(s->f.program(s->f.ctx, 1, s->data, 3), OTA_ERR_IO);
    assert_memory_equal(s->mem, snap, sizeof snap);
    assert_int_equal(ota_flashsim_op_count(&s->sim), ops);
    /* Geometry stays known without power. */
    uint32_t start = 1;
    uint32_t size = 1;
    assert_int_equal(s->f.sector_info(s->f.ctx, FS_SECTOR + 5, &start, &size), OTA_OK);
    assert_int_equal(start, FS_SECTOR);
}

static void test_fault_cut_before(void **state)
{
    (void)state;
    small_t s;
    small_init(&s, FS_WU, 0xff);
    arm(&s.sim, OTA_FLASHSIM_FAULT_CUT_BEFORE, 2, OTA_FLASHSIM_TEAR_OLD, 0);
    assert_int_equal(s.f.program(s.f.ctx, 0, s.data, 8), OTA_OK);             /* op 0 */
    assert_int_equal(s.f.program(s.f.ctx, 1, s.data, 8), OTA_ERR_FLASH_RULE); /* not an op */
    assert_int_equal(s.f.program(s.f.ctx, 8, s.data, 8), OTA_OK);             /* op 1 */
    assert_int_equal(s.f.program(s.f.ctx, 16, s.data, 8), OTA_ERR_IO);        /* op 2 */
    assert_int_equal(ota_flashsim_op_count(&s.sim), 3);
    assert_true(all_equal(s.mem + 16, FS_SIZE - 16, 0xff));
    assert_memory_equal(s.mem, s.data, 8);
    assert_int_equal(ota_flashsim_program_ops(&s.sim), 2);
    expect_dead(&s);

    ota_flashsim_power_on(&s.sim);
    assert_int_equal(ota_flashsim_is_powered(&s.sim), 1);
    assert_int_equal(ota_flashsim_op_count(&s.sim), 0);
    assert_memory_equal(s.mem + 8, s.data, 8); /* content survived */
    /* The fault is disarmed: op 2 of the new power cycle runs. */
    assert_int_equal(s.f.program(s.f.ctx, 16, s.data, 4), OTA_OK);
    assert_int_equal(s.f.program(s.f.ctx, 20, s.data, 4), OTA_OK);
    assert_int_equal(s.f.program(s.f.ctx, 24, s.data, 4), OTA_OK);

    /* A cut before an erase changes nothing either. */
    arm(&s.sim, OTA_FLASHSIM_FAULT_CUT_BEFORE, 3, OTA_FLASHSIM_TEAR_OLD, 0);
    assert_int_equal(s.f.erase(s.f.ctx, 0, FS_SECTOR), OTA_ERR_IO);
    assert_memory_equal(s.mem, s.data, 8);
    assert_int_equal(ota_flashsim_sector_erases(&s.sim, 0), 0);
    assert_int_equal(ota_flashsim_erase_ops(&s.sim), 0);
    expect_dead(&s);
}

static void test_fault_cut_after(void **state)
{
    (void)state;
    small_t s;
    uint8_t back[8];
    small_init(&s, FS_WU, 0x00);
    arm(&s.sim, OTA_FLASHSIM_FAULT_CUT_AFTER, 1, OTA_FLASHSIM_TEAR_OLD, 0);
    assert_int_equal(s.f.program(s.f.ctx, 0, s.data, 8), OTA_OK);
    assert_int_equal(ota_flashsim_is_powered(&s.sim), 1);
    assert_int_equal(s.f.program(s.f.ctx, 8, s.data + 8, 8), OTA_OK); /* op 1 completes */
    assert_int_equal(ota_flashsim_op_count(&s.sim), 2);
    assert_memory_equal(s.mem, s.data, 16);
    expect_dead(&s);
    ota_flashsim_power_on(&s.sim);
    assert_int_equal(s.f.read(s.f.ctx, 8, back, 8), OTA_OK);
    assert_memory_equal(back, s.data + 8, 8);

    /* Cut after an erase: the sector is erased and counted. */
    arm(&s.sim, OTA_FLASHSIM_FAULT_CUT_AFTER, 0, OTA_FLASHSIM_TEAR_OLD, 0);
    assert_int_equal(s.f.erase(s.f.ctx, 0, FS_SECTOR), OTA_OK);
    assert_true(all_equal(s.mem, FS_SECTOR, 0x00));
    assert_int_equal(ota_flashsim_sector_erases(&s.sim, 0), 1);
    expect_dead(&s);
    ota_flashsim_power_on(&s.sim);
    assert_int_equal(s.f.program(s.f.ctx, 0, s.data, 8), OTA_OK);
}

static void test_fault_error(void **state)
{
    (void)state;
    small_t s;
    small_init(&s, FS_WU, 0xff);
    assert_int_equal(s.f.program(s.f.ctx, 0, s.data, 8), OTA_OK);
    arm(&s.sim, OTA_FLASHSIM_FAULT_ERROR, 1, OTA_FLASHSIM_TEAR_OLD, 0);
    assert_int_equal(s.f.program(s.f.ctx, 8, s.data, 8), OTA_ERR_IO);
    assert_int_equal(ota_flashsim_is_powered(&s.sim), 1);
    assert_int_equal(ota_flashsim_op_count(&s.sim), 2); /* still an operation */
    assert_int_equal(ota_flashsim_program_ops(&s.sim), 1);
    assert_true(all_equal(s.mem + 8, FS_SIZE - 8, 0xff));
    /* Fires once; the retry works. */
    assert_int_equal(s.f.program(s.f.ctx, 8, s.data, 8), OTA_OK);
    assert_memory_equal(s.mem + 8, s.data, 8);

    arm(&s.sim, OTA_FLASHSIM_FAULT_ERROR, 3, OTA_FLASHSIM_TEAR_OLD, 0);
    assert_int_equal(s.f.erase(s.f.ctx, 0, FS_SECTOR), OTA_ERR_IO);
    assert_memory_equal(s.mem, s.data, 8);
    assert_memory_equal(s.mem + 8, s.data, 8);
    assert_int_equal(ota_flashsim_sector_erases(&s.sim, 0), 0);
    assert_int_equal(ota_flashsim_erase_ops(&s.sim), 0);
    assert_int_equal(s.f.erase(s.f.ctx, 0, FS_SECTOR), OTA_OK);
    assert_int_equal(ota_flashsim_op_count(&s.sim), 5);

    /* A fault armed at an op that already passed never fires; disarming works. */
    arm(&s.sim, OTA_FLASHSIM_FAULT_CUT_BEFORE, 2, OTA_FLASHSIM_TEAR_OLD, 0);
    assert_int_equal(s.f.program(s.f.ctx, 0, s.data, 8), OTA_OK);
    arm(&s.sim, OTA_FLASHSIM_FAULT_CUT_BEFORE, 6, OTA_FLASHSIM_TEAR_OLD, 0);
    ota_flashsim_set_fault(&s.sim, NULL);
    assert_int_equal(s.f.program(s.f.ctx, 8, s.data, 8), OTA_OK);
    assert_int_equal(ota_flashsim_is_powered(&s.sim), 1);
}

/* ---- faults: read errors -------------------------------------------------------- */

static void test_fault_read_error(void **state)
{
    (void)state;
    small_t s;
    uint8_t back[8];
    small_init(&s, FS_WU, 0xff);
    assert_int_equal(s.f.program(s.f.ctx, 0, s.data, 8), OTA_OK);
    assert_int_equal(s.f.read(s.f.ctx, 0, back, 8), OTA_OK);
    assert_int_equal(ota_flashsim_read_count(&s.sim), 1);
    /* Read 2 fails, once; programs and erases do not count as reads. */
    arm(&s.sim, OTA_FLASHSIM_FAULT_READ_ERROR, 2, OTA_FLASHSIM_TEAR_OLD, 0);
    assert_int_equal(s.f.program(s.f.ctx, 8, s.data, 8), OTA_OK);
    assert_int_equal(s.f.read(s.f.ctx, 0, back, 8), OTA_OK);
    memset(back, 0, sizeof back);
    assert_int_equal(s.f.read(s.f.ctx, 0, back, 8), OTA_ERR_IO);
    assert_true(all_equal(back, sizeof back, 0)); /* nothing copied */
    assert_int_equal(ota_flashsim_is_powered(&s.sim), 1);
    assert_int_equal(s.f.read(s.f.ctx, 0, back, 8), OTA_OK);
    assert_memory_equal(back, s.data, 8);
    assert_int_equal(ota_flashsim_read_count(&s.sim), 4);
    /* Power on restarts the numbering. */
    ota_flashsim_power_on(&s.sim);
    assert_int_equal(ota_flashsim_read_count(&s.sim), 0);
}

/* ---- faults: torn programs ----------------------------------------------------- */

/* 1 if the torn unit u may result from programming old (erased) toward new. */
static int reachable(const uint8_t *u, const uint8_t *old, const uint8_t *nw, uint32_t wu)
{
    for (uint32_t i = 0; i < wu; i++) {
        if (((u[i] ^ old[i]) & ~(old[i] ^ nw[i]) & 0xffu) != 0u) {
            return 0;
        }
    }
    return 1;
}

typedef struct torn_stats {
    uint32_t positions[16]; /* how often the first unit not holding new data was unit i */
    uint32_t partial_units; /* MIX/RANDOM: torn unit neither old nor new */
    uint32_t unreachable;   /* torn unit holds bits programming could not give */
} torn_stats_t;

/* One torn program of 8 units at op 1; checks the shape; returns via st. */
static void torn_program_once(uint32_t wu, uint8_t erased, ota_flashsim_tear_t tear, uint32_t seed,
                              torn_stats_t *st, uint8_t *out)
{
    small_t s;
    uint8_t old[256];
    const uint32_t units = 8;
    const uint32_t addr = FS_SECTOR;
    small_init(&s, wu, erased);
    memset(old, erased, sizeof old);
    assert_int_equal(s.f.program(s.f.ctx, 0, s.data, wu), OTA_OK); /* op 0 */
    arm(&s.sim, OTA_FLASHSIM_FAULT_TORN, 1, tear, seed);
    assert_int_equal(s.f.program(s.f.ctx, addr, s.data, units * wu), OTA_ERR_IO);
    assert_int_equal(ota_flashsim_program_ops(&s.sim), 2);
    expect_dead(&s);

    /* Shape: new units, then at most one torn unit, then old (erased) units. */
    uint32_t k = 0;
    while (k < units && memcmp(s.mem + addr + k * wu, s.data + k * wu, wu) == 0) {
        k++;
    }
    for (uint32_t j = k + 1u; j < units; j++) {
        assert_true(all_equal(s.mem + addr + j * wu, wu, erased));
    }
    /* Nothing outside the programmed range changed. */
    assert_memory_equal(s.mem, s.data, wu);
    assert_true(all_equal(s.mem + wu, addr - wu, erased));
    assert_true(all_equal(s.mem + addr + units * wu, FS_SIZE - addr - units * wu, erased));
    st->positions[k]++;
    torn_programs_checked++;
    if (k < units) {
        const uint8_t *u = s.mem + addr + k * wu;
        switch (tear) {
        case OTA_FLASHSIM_TEAR_OLD:
        case OTA_FLASHSIM_TEAR_NEW:
            /* The tear unit is old, or new and followed by an old unit. */
            assert_true(all_equal(u, wu, erased));
            break;
        case OTA_FLASHSIM_TEAR_MIX:
            assert_true(reachable(u, old, s.data + k * wu, wu));
            break;
        default:
            break;
        }
        if (!all_equal(u, wu, erased)) {
            st->partial_units++;
        }
        if (!reachable(u, old, s.data + k * wu, wu)) {
            st->unreachable++;
        }
    }
    if (tear == OTA_FLASHSIM_TEAR_OLD) {
        assert_true(k < units); /* the tear unit keeps its old value */
    }
    if (tear == OTA_FLASHSIM_TEAR_NEW) {
        assert_true(k >= 1u); /* the tear unit holds the new value */
    }
    if (out != NULL) {
        memcpy(out, s.mem, FS_SIZE);
    }

    /* Power on restores operation. A torn unit that is not fully erased cannot be
     * programmed again (realistic); erasing the sector makes it usable. */
    ota_flashsim_power_on(&s.sim);
    assert_int_equal(ota_flashsim_is_powered(&s.sim), 1);
    if (k < units && !all_equal(s.mem + addr + k * wu, wu, erased)) {
        assert_int_equal(s.f.program(s.f.ctx, addr + k * wu, s.data, wu), OTA_ERR_FLASH_RULE);
    }
    assert_int_equal(s.f.erase(s.f.ctx, addr, FS_SECTOR), OTA_OK);
    assert_int_equal(s.f.program(s.f.ctx, addr, s.data, units * wu), OTA_OK);
    assert_memory_equal(s.mem + addr, s.data, units * wu);
}

static void torn_program_mode(ota_flashsim_tear_t tear, uint32_t wu, uint8_t erased,
                              torn_stats_t *st)
{
    memset(st, 0, sizeof *st);
    for (uint32_t seed = 0; seed < 64u; seed++) {
        torn_program_once(wu, erased, tear, seed, st, NULL);
    }
    /* The tear point moves with the seed. */
    uint32_t distinct = 0;
    for (uint32_t i = 0; i < 16u; i++) {
        distinct += st->positions[i] != 0u ? 1u : 0u;
    }
    assert_true(distinct >= 4u);
}

static void test_torn_program_old_new(void **state)
{
    (void)state;
    torn_stats_t st;
    torn_program_mode(OTA_FLASHSIM_TEAR_OLD, 4, 0xff, &st);
    assert_int_equal(st.positions[8], 0); /* never fully programmed */
    assert_int_equal(st.partial_units, 0);
    torn_program_mode(OTA_FLASHSIM_TEAR_NEW, 16, 0x00, &st);
    assert_int_equal(st.positions[0], 0); /* at least the tear unit is new */
    assert_true(st.positions[8] > 0u);    /* tear at the last unit: all programmed */
    assert_int_equal(st.partial_units, 0);
}

static void test_torn_program_mix(void **state)
{
    (void)state;
    torn_stats_t st;
    const uint8_t erased_values[2] = {0xff, 0x00};
    const uint32_t units[3] = {1, 4, 64};
    for (uint32_t e = 0; e < 2u; e++) {
        for (uint32_t w = 0; w < 3u; w++) {
            torn_program_mode(OTA_FLASHSIM_TEAR_MIX, units[w], erased_values[e], &st);
            assert_int_equal(st.unreachable, 0);
            assert_true(st.partial_units > 0u); /* really a mix, not just old */
        }
    }
}

static void test_torn_program_random(void **state)
{
    (void)state;
    torn_stats_t st;
    torn_program_mode(OTA_FLASHSIM_TEAR_RANDOM, 8, 0xff, &st);
    assert_true(st.unreachable > 0u); /* random bits go where programming cannot */
    torn_program_mode(OTA_FLASHSIM_TEAR_RANDOM, 8, 0x00, &st);
    assert_true(st.unreachable > 0u);

    /* Seed 0 works: one unit of 256 random bytes is not constant. */
    small_t s;
    small_init(&s, 256, 0xff);
    arm(&s.sim, OTA_FLASHSIM_FAULT_TORN, 0, OTA_FLASHSIM_TEAR_RANDOM, 0);
    assert_int_equal(s.f.program(s.f.ctx, 0, s.data, 256), OTA_ERR_IO);
    assert_false(all_equal(s.mem, 256, s.mem[0]));
    assert_true(all_equal(s.mem + 256, FS_SIZE - 256, 0xff));
}

static void test_torn_deterministic(void **state)
{
    (void)state;
    static uint8_t a[FS_SIZE];
    static uint8_t b[FS_SIZE];
    torn_stats_t st;
    uint32_t differ = 0;
    for (uint32_t seed = 0; seed < 16u; seed++) {
        torn_program_once(4, 0xff, OTA_FLASHSIM_TEAR_MIX, seed, &st, a);
        torn_program_once(4, 0xff, OTA_FLASHSIM_TEAR_MIX, seed, &st, b);
        assert_memory_equal(a, b, FS_SIZE);
        torn_program_once(4, 0xff, OTA_FLASHSIM_TEAR_MIX, seed + 1000u, &st, b);
        differ += memcmp(a, b, FS_SIZE) != 0 ? 1u : 0u;
        torn_program_once(4, 0x00, OTA_FLASHSIM_TEAR_RANDOM, seed, &st, a);
        torn_program_once(4, 0x00, OTA_FLASHSIM_TEAR_RANDOM, seed, &st, b);
        assert_memory_equal(a, b, FS_SIZE);
    }
    assert_true(differ > 0u);
}

/* ---- faults: torn erase -------------------------------------------------------- */

/* Torn erase of sectors 1..3 (op 1) over programmed content; checks the shape. */
static void torn_erase_once(uint8_t erased, uint32_t seed, uint32_t *partial, uint32_t *tears,
                            uint8_t *out)
{
    small_t s;
    static uint8_t old[FS_SIZE];
    small_init(&s, 1, erased);
    fill_programmed(old, FS_SIZE, erased, seed + 5u);
    assert_int_equal(s.f.program(s.f.ctx, 0, old, FS_SIZE), OTA_OK); /* op 0 */
    arm(&s.sim, OTA_FLASHSIM_FAULT_TORN, 1, OTA_FLASHSIM_TEAR_OLD, seed);
    assert_int_equal(s.f.erase(s.f.ctx, FS_SECTOR, 3 * FS_SECTOR), OTA_ERR_IO);
    expect_dead(&s);
    assert_int_equal(ota_flashsim_erase_ops(&s.sim), 1);
    assert_memory_equal(s.mem, old, FS_SECTOR); /* sector 0 untouched */

    /* Sectors before the tear sector erased, after it untouched, in it each byte either. */
    uint32_t t = 1;
    while (t < 4u && all_equal(s.mem + t * FS_SECTOR, FS_SECTOR, erased)) {
        t++;
    }
    assert_true(t < 4u); /* the tear sector is never fully erased (old bytes differ) */
    uint32_t n_erased = 0;
    for (uint32_t i = 0; i < FS_SECTOR; i++) {
        uint8_t v = s.mem[t * FS_SECTOR + i];
        assert_true(v == erased || v == old[t * FS_SECTOR + i]);
        n_erased += v == erased ? 1u : 0u;
    }
    for (uint32_t j = t + 1u; j < 4u; j++) {
        assert_memory_equal(s.mem + j * FS_SECTOR, old + j * FS_SECTOR, FS_SECTOR);
    }
    /* Sectors up to the tear sector were (partly) erased: counted; later ones not. */
    for (uint32_t j = 1; j < 4u; j++) {
        assert_int_equal(ota_flashsim_sector_erases(&s.sim, j), j <= t ? 1u : 0u);
    }
    tears[t]++;
    torn_erases_checked++;
    if (n_erased > 0u) {
        (*partial)++;
    }
    assert_int_equal(ota_flashsim_sector_erases(&s.sim, 0), 0);
    if (out != NULL) {
        memcpy(out, s.mem, FS_SIZE);
    }

    ota_flashsim_power_on(&s.sim);
    assert_int_equal(s.f.erase(s.f.ctx, FS_SECTOR, 3 * FS_SECTOR), OTA_OK);
    assert_true(all_equal(s.mem + FS_SECTOR, 3 * FS_SECTOR, erased));
}

static void test_torn_erase(void **state)
{
    (void)state;
    static uint8_t a[FS_SIZE];
    static uint8_t b[FS_SIZE];
    const uint8_t erased_values[2] = {0xff, 0x00};
    for (uint32_t e = 0; e < 2u; e++) {
        uint32_t partial = 0;
        uint32_t tears[4] = {0, 0, 0, 0};
        for (uint32_t seed = 0; seed < 64u; seed++) {
            torn_erase_once(erased_values[e], seed, &partial, tears, NULL);
        }
        assert_true(partial > 32u); /* most torn erases leave a partly erased sector */
        assert_true(tears[1] > 0u && tears[2] > 0u && tears[3] > 0u);
    }
    /* Deterministic. */
    uint32_t partial = 0;
    uint32_t tears[4] = {0, 0, 0, 0};
    torn_erase_once(0xff, 7, &partial, tears, a);
    torn_erase_once(0xff, 7, &partial, tears, b);
    assert_memory_equal(a, b, FS_SIZE);
}

/* ---- file backing -------------------------------------------------------------- */

typedef struct tmpdir {
    char dir[64];
    char path[128];
} tmpdir_t;

static tmpdir_t the_tmp;

/* Each file test gets a fresh mkdtemp directory holding one file path. */
static int tmp_setup(void **state)
{
    tmpdir_t *t = &the_tmp;
    strcpy(t->dir, "/tmp/otter-flashsim-XXXXXX");
    if (mkdtemp(t->dir) == NULL) {
        return -1;
    }
    if (snprintf(t->path, sizeof t->path, "%s/flash.bin", t->dir) >= (int)sizeof t->path) {
        return -1;
    }
    *state = t;
    return 0;
}

/* Runs even when the test failed, so nothing is left behind in /tmp. */
static int tmp_teardown(void **state)
{
    tmpdir_t *t = *state;
    (void)unlink(t->path);
    return rmdir(t->dir) == 0 ? 0 : -1;
}

static long file_size(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    fclose(f);
    return n;
}

static void file_bytes(const char *path, long off, uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, off, SEEK_SET), 0);
    assert_int_equal(fread(buf, 1, len, f), len);
    fclose(f);
}

static void test_file_roundtrip(void **state)
{
    tmpdir_t *t = *state;
    ota_flashsim_t *sim = &big_sim;
    ota_flashsim_t *sim2 = &big_sim2;
    ota_flashsim_geometry_t g = stm32f4(8, 0xff);
    uint8_t data[256];
    uint8_t raw[256];

    assert_int_equal(ota_flashsim_open_file(sim, &g, big_mem, sizeof big_mem, t->path), OTA_OK);
    assert_int_equal(file_size(t->path), (long)(OTA_FLASHSIM_FILE_HEADER_LEN + STM32F4_SIZE + 32u));
    file_bytes(t->path, 0, raw, 8);
    assert_memory_equal(raw, "OTFS\1\0\0\0", 8);
    ota_flash_t f = ota_flashsim_driver(sim);
    fill_programmed(data, sizeof data, 0xff, 11);
    assert_int_equal(f.program(f.ctx, 100 * KB, data, sizeof data), OTA_OK);
    /* Written through before the call returned. */
    file_bytes(t->path, (long)(OTA_FLASHSIM_FILE_HEADER_LEN + 100u * KB), raw, sizeof raw);
    assert_memory_equal(raw, data, sizeof data);
    assert_int_equal(f.erase(f.ctx, 0, 32 * KB), OTA_OK);
    assert_int_equal(f.erase(f.ctx, 16 * KB, 16 * KB), OTA_OK);
    assert_int_equal(f.erase(f.ctx, 384 * KB, 128 * KB), OTA_OK);
    assert_int_equal(f.program(f.ctx, 16 * KB, data, 64), OTA_OK);
    assert_int_equal(f.program(f.ctx, STM32F4_SIZE - 64, data, 64), OTA_OK);
    file_bytes(t->path, (long)(OTA_FLASHSIM_FILE_HEADER_LEN + STM32F4_SIZE), raw, 8);
    assert_memory_equal(raw, "\1\0\0\0\2\0\0\0", 8); /* counters of sectors 0 and 1 */

    /* A torn program reaches the file too. */
    arm(sim, OTA_FLASHSIM_FAULT_TORN, ota_flashsim_op_count(sim), OTA_FLASHSIM_TEAR_RANDOM, 3);
    assert_int_equal(f.program(f.ctx, 200 * KB, data, sizeof data), OTA_ERR_IO);
    ota_flashsim_close(sim);
    ota_flashsim_close(sim); /* twice is fine */

    /* Reopen: same content and erase counters; the in-memory sim still works unbacked. */
    memset(big_mem2, 0x5a, sizeof big_mem2);
    assert_int_equal(ota_flashsim_open_file(sim2, &g, big_mem2, sizeof big_mem2, t->path), OTA_OK);
    assert_memory_equal(big_mem2, big_mem, STM32F4_SIZE);
    for (uint32_t i = 0; i < 8u; i++) {
        assert_int_equal(ota_flashsim_sector_erases(sim2, i), ota_flashsim_sector_erases(sim, i));
    }
    assert_int_equal(ota_flashsim_sector_erases(sim2, 1), 2);
    assert_int_equal(ota_flashsim_sector_erases(sim2, 7), 1);
    assert_int_equal(ota_flashsim_op_count(sim2), 0);
    assert_int_equal(ota_flashsim_is_powered(sim2), 1);
    ota_flashsim_close(sim2);
}

static void test_file_mismatch(void **state)
{
    tmpdir_t *t = *state;
    static uint8_t mem[16 * KB];
    static uint8_t before[OTA_FLASHSIM_FILE_HEADER_LEN + 16 * KB + 64];
    static uint8_t after[sizeof before];
    ota_flashsim_t sim;
    ota_flashsim_geometry_t g = uniform(16 * KB, 4 * KB, 4, 0xff);
    uint8_t data[16];

    assert_int_equal(ota_flashsim_open_file(&sim, &g, mem, sizeof mem, t->path), OTA_OK);
    ota_flash_t f = ota_flashsim_driver(&sim);
    fill_programmed(data, sizeof data, 0xff, 4);
    assert_int_equal(f.program(f.ctx, 0, data, sizeof data), OTA_OK);
    ota_flashsim_close(&sim);
    long len = file_size(t->path);
    assert_int_equal(len, (long)(OTA_FLASHSIM_FILE_HEADER_LEN + 16u * KB + 16u));
    file_bytes(t->path, 0, before, (size_t)len);

    /* Every geometry difference is refused and the file is left alone. */
    const uint32_t list_a[4] = {4 * KB, 4 * KB, 4 * KB, 4 * KB};
    const uint32_t list_b[4] = {2 * KB, 6 * KB, 4 * KB, 4 * KB};
    ota_flashsim_geometry_t bad[6];
    bad[0] = uniform(16 * KB, 4 * KB, 8, 0xff); /* write unit */
    bad[1] = uniform(16 * KB, 4 * KB, 4, 0x00); /* erased value */
    bad[2] = uniform(8 * KB, 4 * KB, 4, 0xff);  /* size */
    bad[3] = uniform(16 * KB, 2 * KB, 4, 0xff); /* sector count */
    bad[4] = uniform(16 * KB, 4 * KB, 4, 0xff); /* same sector count, other sizes */
    bad[4].sector_sizes = list_b;
    bad[4].sector_count = 4;
    bad[5] = uniform(16 * KB, 16 * KB, 4, 0xff); /* one sector */
    for (uint32_t i = 0; i < 6u; i++) {
        assert_int_equal(ota_flashsim_open_file(&sim, &bad[i], mem, sizeof mem, t->path),
                         OTA_ERR_INVALID_ARG);
        assert_null(sim.file);
        file_bytes(t->path, 0, after, (size_t)len);
        assert_memory_equal(after, before, (size_t)len);
        assert_int_equal(file_size(t->path), len);
    }
    /* The same geometry written as a list is the same flash. */
    ota_flashsim_geometry_t same = uniform(16 * KB, 0, 4, 0xff);
    same.sector_sizes = list_a;
    same.sector_count = 4;
    assert_int_equal(ota_flashsim_open_file(&sim, &same, mem, sizeof mem, t->path), OTA_OK);
    assert_memory_equal(mem, data, sizeof data);
    ota_flashsim_close(&sim);

    /* A file that is not ours. */
    FILE *fp = fopen(t->path, "r+b");
    assert_non_null(fp);
    assert_int_equal(fputc('X', fp), 'X');
    fclose(fp);
    assert_int_equal(ota_flashsim_open_file(&sim, &g, mem, sizeof mem, t->path),
                     OTA_ERR_INVALID_ARG);
    /* A truncated file of the right geometry: unreadable. */
    fp = fopen(t->path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(before, 1, (size_t)len - 1u, fp), (size_t)len - 1u);
    fclose(fp);
    assert_int_equal(ota_flashsim_open_file(&sim, &g, mem, sizeof mem, t->path), OTA_ERR_IO);
    assert_null(sim.file);
    /* An empty file is created fresh. */
    fp = fopen(t->path, "wb");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(ota_flashsim_open_file(&sim, &g, mem, sizeof mem, t->path), OTA_OK);
    assert_true(all_equal(mem, sizeof mem, 0xff));
    ota_flashsim_close(&sim);
    assert_int_equal(file_size(t->path), len);

    /* Bad arguments and unopenable paths. */
    assert_int_equal(ota_flashsim_open_file(&sim, &g, mem, sizeof mem, NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_flashsim_open_file(&sim, &bad[0], mem, 100, t->path), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_flashsim_open_file(&sim, &g, mem, sizeof mem, "/nonexistent-dir/x/y"),
                     OTA_ERR_IO);
    assert_int_equal(ota_flashsim_open_file(&sim, &g, mem, sizeof mem, t->dir), OTA_ERR_IO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_geometry_validation),
        cmocka_unit_test(test_basics_erased_ff),
        cmocka_unit_test(test_basics_erased_00),
        cmocka_unit_test(test_rule_violations),
        cmocka_unit_test(test_nonuniform_sectors),
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_fault_cut_before),
        cmocka_unit_test(test_fault_cut_after),
        cmocka_unit_test(test_fault_error),
        cmocka_unit_test(test_fault_read_error),
        cmocka_unit_test(test_torn_program_old_new),
        cmocka_unit_test(test_torn_program_mix),
        cmocka_unit_test(test_torn_program_random),
        cmocka_unit_test(test_torn_deterministic),
        cmocka_unit_test(test_torn_erase),
        cmocka_unit_test_setup_teardown(test_file_roundtrip, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_file_mismatch, tmp_setup, tmp_teardown),
    };
    int failed = cmocka_run_group_tests_name("flashsim", tests, NULL, NULL);
    printf("flashsim: %u torn programs and %u torn erases checked\n",
           (unsigned)torn_programs_checked, (unsigned)torn_erases_checked);
    return failed;
}
