/*
 * Unit tests of the board's flash driver (board_flash.c) on the host: the
 * NOR rules it enforces and its write-through of every change.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "board_flash.h"

#define SIZE 8192u
#define SECTOR 4096u
#define UNIT 8u

typedef struct backing {
    uint8_t file[SIZE];
    unsigned writes;
    int fail;
} backing_t;

static ota_err_t persist(void *ctx, uint32_t addr, const uint8_t *data, uint32_t len)
{
    backing_t *b = ctx;
    if (b->fail) {
        return OTA_ERR_IO;
    }
    memcpy(b->file + addr, data, len);
    b->writes++;
    return OTA_OK;
}

static void test_nor_rules(void **state)
{
    (void)state;
    static uint8_t mem[SIZE];
    static backing_t b;
    board_flash_t drv;
    ota_flash_t f;
    uint8_t data[16], out[16];
    memset(mem, 0xff, sizeof mem);
    memset(b.file, 0xff, sizeof b.file);
    assert_int_equal(board_flash_init(&drv, mem, SIZE, SECTOR, UNIT, 0xff, persist, &b, &f),
                     OTA_OK);
    assert_int_equal(f.size, SIZE);
    assert_int_equal(f.write_unit, UNIT);
    memset(data, 0x12, sizeof data);

    /* Program: whole units over erased bytes, written through. */
    assert_int_equal(f.program(f.ctx, 8, data, 16), OTA_OK);
    assert_int_equal(b.writes, 1);
    assert_memory_equal(b.file + 8, data, 16);
    assert_int_equal(f.read(f.ctx, 8, out, 16), OTA_OK);
    assert_memory_equal(out, data, 16);
    /* Again over written bytes, even the same ones: refused, nothing changes. */
    assert_int_equal(f.program(f.ctx, 8, data, 8), OTA_ERR_FLASH_RULE);
    assert_int_equal(f.program(f.ctx, 0, data, 16), OTA_ERR_FLASH_RULE);
    assert_int_equal(mem[0], 0xff);
    assert_int_equal(b.writes, 1);
    /* Alignment and range. */
    assert_int_equal(f.program(f.ctx, 4, data, 8), OTA_ERR_FLASH_RULE);
    assert_int_equal(f.program(f.ctx, 32, data, 4), OTA_ERR_FLASH_RULE);
    assert_int_equal(f.program(f.ctx, SIZE - 8, data, 16), OTA_ERR_INVALID_ARG);
    assert_int_equal(f.read(f.ctx, SIZE - 8, out, 16), OTA_ERR_INVALID_ARG);
    /* Erase: whole sectors only; then the bytes can be programmed again. */
    assert_int_equal(f.erase(f.ctx, 0, 100), OTA_ERR_FLASH_RULE);
    assert_int_equal(f.erase(f.ctx, 100, SECTOR), OTA_ERR_FLASH_RULE);
    assert_int_equal(f.erase(f.ctx, 0, SECTOR), OTA_OK);
    assert_int_equal(b.writes, 2);
    assert_int_equal(b.file[8], 0xff);
    assert_int_equal(f.program(f.ctx, 8, data, 8), OTA_OK);
    uint32_t start = 0, size = 0;
    assert_int_equal(f.sector_info(f.ctx, SECTOR + 5, &start, &size), OTA_OK);
    assert_int_equal(start, SECTOR);
    assert_int_equal(size, SECTOR);
    assert_int_equal(f.sector_info(f.ctx, SIZE, &start, &size), OTA_ERR_INVALID_ARG);
    /* A failing write-through is reported. */
    b.fail = 1;
    assert_int_equal(f.program(f.ctx, 64, data, 8), OTA_ERR_IO);
    assert_int_equal(f.erase(f.ctx, SECTOR, SECTOR), OTA_ERR_IO);
}

static void test_init_args(void **state)
{
    (void)state;
    static uint8_t mem[SIZE];
    board_flash_t drv;
    ota_flash_t f;
    assert_int_equal(board_flash_init(&drv, mem, SIZE, SECTOR, 3, 0xff, NULL, NULL, &f),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(board_flash_init(&drv, mem, SIZE, SECTOR, 512, 0xff, NULL, NULL, &f),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(board_flash_init(&drv, mem, SIZE + 1, SECTOR, 8, 0xff, NULL, NULL, &f),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(board_flash_init(&drv, mem, SIZE, SECTOR, 8, 0x55, NULL, NULL, &f),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(board_flash_init(&drv, NULL, SIZE, SECTOR, 8, 0xff, NULL, NULL, &f),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(board_flash_init(&drv, mem, SIZE, SECTOR, 8, 0x00, NULL, NULL, &f), OTA_OK);
    /* Erased 0x00 is honoured. */
    assert_int_equal(f.erase(f.ctx, 0, SECTOR), OTA_OK);
    assert_int_equal(mem[17], 0x00);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nor_rules),
        cmocka_unit_test(test_init_args),
    };
    return cmocka_run_group_tests_name("board_flash", tests, NULL, NULL);
}
