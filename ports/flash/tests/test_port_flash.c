/*
 * otter: the flash port's own behaviour beyond the conformance suite.
 *
 * A file written in order is hashed as it is written (read back from flash
 * block by block), so closing it reads nothing more of the slot; any other
 * order, a block written again, a read error while hashing, or a resumed
 * file is verified by reading the slot back. Both give the same verdicts.
 * A block written once after the create is programmed without reading the
 * slot first; a block anywhere else is read and compared before programming.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "flashsim_device.h"
#include "ota_conformance.h"
#include "ota_test_image.h"

#define KIB 1024u
#define BLOCK 1024u
#define IMAGE_LEN (40u * BLOCK + 100u)
#define V1_0_0 0x01000000u
#define V1_1_0 0x01010000u

typedef struct fixture {
    flashsim_device_t dev;
    ota_pal_t pal;
    uint8_t image[IMAGE_LEN];
    uint8_t sig[OTA_PAL_SIGNATURE_MAX];
    size_t sig_len;
} fixture_t;

static const flashsim_variant_t variant = {{256u * KIB, 4u * KIB, NULL, 0, 8, 0xff},
                                           {{0, 0}, 0, {0, 0}, {0, 0}, 0}};

static int setup(void **state)
{
    static uint8_t factory[2000];
    fixture_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    ota_test_image_make(factory, sizeof factory, V1_0_0, 3);
    ota_test_image_make(fx->image, IMAGE_LEN, V1_1_0, 5);
    assert_int_equal(ota_test_image_sign(fx->image, IMAGE_LEN, fx->sig, &fx->sig_len), 0);
    assert_int_equal(flashsim_device_create(&fx->dev, &variant, factory, sizeof factory), 0);
    assert_int_equal(flashsim_device_boot(&fx->dev, &fx->pal), OTA_OK);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    flashsim_device_destroy(&fx->dev);
    free(fx);
    return 0;
}

/* Writes the image's blocks in the order given by order[k] (block numbers),
 * closes it, and returns close's result; *reads gets the flash reads close made. */
static ota_err_t write_and_close(fixture_t *fx, const uint8_t *img, const uint32_t *order,
                                 uint32_t count, uint32_t *reads)
{
    ota_pal_file_t f = ota_test_image_file(IMAGE_LEN, fx->sig, fx->sig_len, OTA_CONFORMANCE_CERT);
    assert_int_equal(fx->pal.create_file(fx->pal.ctx, &f), OTA_OK);
    for (uint32_t k = 0; k < count; k++) {
        uint32_t off = order[k] * BLOCK;
        uint32_t n = IMAGE_LEN - off < BLOCK ? IMAGE_LEN - off : BLOCK;
        assert_int_equal(fx->pal.write_block(fx->pal.ctx, off, img + off, n), (int32_t)n);
    }
    uint32_t before = ota_flashsim_read_count(&fx->dev.sim);
    ota_err_t err = fx->pal.close_file(fx->pal.ctx, &f);
    *reads = ota_flashsim_read_count(&fx->dev.sim) - before;
    return err;
}

#define BLOCKS ((IMAGE_LEN + BLOCK - 1u) / BLOCK)

static void in_order_close_reads_nothing_back(void **state)
{
    fixture_t *fx = *state;
    uint32_t order[BLOCKS], reads;
    for (uint32_t k = 0; k < BLOCKS; k++) {
        order[k] = k;
    }
    assert_int_equal(write_and_close(fx, fx->image, order, BLOCKS, &reads), OTA_OK);
    assert_int_equal(reads, 0);
}

static void other_order_reads_the_slot_back(void **state)
{
    fixture_t *fx = *state;
    uint32_t order[BLOCKS], reads;
    for (uint32_t k = 0; k < BLOCKS; k++) {
        order[k] = k;
    }
    order[5] = 6; /* blocks 5 and 6 swapped */
    order[6] = 5;
    assert_int_equal(write_and_close(fx, fx->image, order, BLOCKS, &reads), OTA_OK);
    assert_true(reads >= IMAGE_LEN / OTA_PORT_FLASH_SCRATCH);
}

static void flipped_byte_fails_both_ways(void **state)
{
    fixture_t *fx = *state;
    static uint8_t bad[IMAGE_LEN];
    uint32_t order[BLOCKS], reads;
    for (uint32_t k = 0; k < BLOCKS; k++) {
        order[k] = k;
    }
    memcpy(bad, fx->image, IMAGE_LEN);
    bad[IMAGE_LEN / 2u] ^= 0x10;
    assert_int_equal(write_and_close(fx, bad, order, BLOCKS, &reads),
                     OTA_ERR_SIGNATURE_CHECK_FAILED);
    assert_int_equal(reads, 0);
    order[0] = BLOCKS - 1u; /* the last block first: read back */
    order[BLOCKS - 1u] = 0;
    assert_int_equal(write_and_close(fx, bad, order, BLOCKS, &reads),
                     OTA_ERR_SIGNATURE_CHECK_FAILED);
    assert_true(reads > 0u);
}

static void abort_then_in_order_again(void **state)
{
    fixture_t *fx = *state;
    uint32_t order[BLOCKS], reads;
    ota_pal_file_t f = ota_test_image_file(IMAGE_LEN, fx->sig, fx->sig_len, OTA_CONFORMANCE_CERT);
    assert_int_equal(fx->pal.create_file(fx->pal.ctx, &f), OTA_OK);
    assert_int_equal(fx->pal.write_block(fx->pal.ctx, 0, fx->image, BLOCK), (int32_t)BLOCK);
    assert_int_equal(fx->pal.abort(fx->pal.ctx), OTA_OK);
    for (uint32_t k = 0; k < BLOCKS; k++) {
        order[k] = k;
    }
    assert_int_equal(write_and_close(fx, fx->image, order, BLOCKS, &reads), OTA_OK);
    assert_int_equal(reads, 0);
}

/* A block written again may program units its first write left erased: the
 * hash no longer holds what the flash holds, so close must read back. */
static void rewritten_block_is_read_back(void **state)
{
    fixture_t *fx = *state;
    static uint8_t img[IMAGE_LEN];
    static uint8_t other[BLOCK];
    uint32_t order[BLOCKS], reads;
    memcpy(img, fx->image, IMAGE_LEN);
    memset(img + BLOCK + 64u, 0xff, 64); /* erased-looking bytes in block 1 */
    assert_int_equal(ota_test_image_sign(img, IMAGE_LEN, fx->sig, &fx->sig_len), 0);
    for (uint32_t k = 0; k < BLOCKS; k++) {
        order[k] = k;
    }
    ota_pal_file_t f = ota_test_image_file(IMAGE_LEN, fx->sig, fx->sig_len, OTA_CONFORMANCE_CERT);
    assert_int_equal(fx->pal.create_file(fx->pal.ctx, &f), OTA_OK);
    for (uint32_t k = 0; k < BLOCKS; k++) {
        uint32_t off = order[k] * BLOCK;
        uint32_t n = IMAGE_LEN - off < BLOCK ? IMAGE_LEN - off : BLOCK;
        assert_int_equal(fx->pal.write_block(fx->pal.ctx, off, img + off, n), (int32_t)n);
    }
    /* Block 1 again, with new bytes where it was erased: the flash takes them. */
    memcpy(other, img + BLOCK, BLOCK);
    memset(other + 64, 0x00, 64);
    assert_int_equal(fx->pal.write_block(fx->pal.ctx, BLOCK, other, BLOCK), (int32_t)BLOCK);
    uint32_t before = ota_flashsim_read_count(&fx->dev.sim);
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_ERR_SIGNATURE_CHECK_FAILED);
    reads = ota_flashsim_read_count(&fx->dev.sim) - before;
    assert_true(reads > 0u);
}

/* The hash is of the flash's bytes, read back after each write: a read error
 * there ends hashing (the write itself succeeded) and close reads back. */
static void read_error_while_hashing_falls_back(void **state)
{
    fixture_t *fx = *state;
    ota_pal_file_t f = ota_test_image_file(IMAGE_LEN, fx->sig, fx->sig_len, OTA_CONFORMANCE_CERT);
    ota_flashsim_fault_t fault;
    uint32_t r0, per_block, reads;
    assert_int_equal(fx->pal.create_file(fx->pal.ctx, &f), OTA_OK);
    r0 = ota_flashsim_read_count(&fx->dev.sim);
    assert_int_equal(fx->pal.write_block(fx->pal.ctx, 0, fx->image, BLOCK), (int32_t)BLOCK);
    per_block = ota_flashsim_read_count(&fx->dev.sim) - r0;
    /* The last read of block 1's write is the read-back for the hash. */
    memset(&fault, 0, sizeof fault);
    fault.kind = OTA_FLASHSIM_FAULT_READ_ERROR;
    fault.op = ota_flashsim_read_count(&fx->dev.sim) + per_block - 1u;
    ota_flashsim_set_fault(&fx->dev.sim, &fault);
    for (uint32_t off = BLOCK; off < IMAGE_LEN; off += BLOCK) {
        uint32_t n = IMAGE_LEN - off < BLOCK ? IMAGE_LEN - off : BLOCK;
        assert_int_equal(fx->pal.write_block(fx->pal.ctx, off, fx->image + off, n), (int32_t)n);
    }
    uint32_t before = ota_flashsim_read_count(&fx->dev.sim);
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_OK);
    reads = ota_flashsim_read_count(&fx->dev.sim) - before;
    assert_true(reads >= IMAGE_LEN / OTA_PORT_FLASH_SCRATCH);
}

/* A resumed file was not hashed from its start: close reads it back. */
static void resumed_file_is_read_back(void **state)
{
    fixture_t *fx = *state;
    ota_pal_file_t f = ota_test_image_file(IMAGE_LEN, fx->sig, fx->sig_len, OTA_CONFORMANCE_CERT);
    uint8_t done[(BLOCKS + 7u) / 8u];
    uint32_t reads;
    memset(done, 0, sizeof done);
    assert_int_equal(fx->pal.create_file(fx->pal.ctx, &f), OTA_OK);
    for (uint32_t k = 0; k < 8u; k++) {
        assert_int_equal(fx->pal.write_block(fx->pal.ctx, k * BLOCK, fx->image + k * BLOCK, BLOCK),
                         (int32_t)BLOCK);
        done[k / 8u] = (uint8_t)(done[k / 8u] | (1u << (k % 8u)));
    }
    assert_int_equal(fx->pal.resume_file(fx->pal.ctx, &f, BLOCK, done, BLOCKS), OTA_OK);
    for (uint32_t k = 0; k < BLOCKS; k++) {
        if ((done[k / 8u] >> (k % 8u)) & 1u) {
            continue;
        }
        uint32_t off = k * BLOCK;
        uint32_t n = IMAGE_LEN - off < BLOCK ? IMAGE_LEN - off : BLOCK;
        assert_int_equal(fx->pal.write_block(fx->pal.ctx, off, fx->image + off, n), (int32_t)n);
    }
    uint32_t before = ota_flashsim_read_count(&fx->dev.sim);
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_OK);
    reads = ota_flashsim_read_count(&fx->dev.sim) - before;
    assert_true(reads >= IMAGE_LEN / OTA_PORT_FLASH_SCRATCH);
}

/* A block written once after the create goes to flash in one program
 * operation, and the only reads are the read-back for the hash: nothing was
 * programmed there since the create erased it. */
static void fresh_block_is_programmed_at_once(void **state)
{
    fixture_t *fx = *state;
    ota_pal_file_t f = ota_test_image_file(IMAGE_LEN, fx->sig, fx->sig_len, OTA_CONFORMANCE_CERT);
    assert_int_equal(fx->pal.create_file(fx->pal.ctx, &f), OTA_OK);
    for (uint32_t k = 0; k < 3u; k++) {
        uint32_t p0 = ota_flashsim_program_ops(&fx->dev.sim);
        uint32_t r0 = ota_flashsim_read_count(&fx->dev.sim);
        assert_int_equal(fx->pal.write_block(fx->pal.ctx, k * BLOCK, fx->image + k * BLOCK, BLOCK),
                         (int32_t)BLOCK);
        assert_int_equal(ota_flashsim_program_ops(&fx->dev.sim) - p0, 1);
        assert_int_equal(ota_flashsim_read_count(&fx->dev.sim) - r0,
                         BLOCK / OTA_PORT_FLASH_SCRATCH);
    }
}

/* A block behind one written later is read and compared before anything is
 * programmed: bytes another hand programmed there are refused by the port
 * itself (the flash never sees a program over them), and nothing changes. */
static void block_behind_a_later_one_is_checked(void **state)
{
    fixture_t *fx = *state;
    ota_pal_file_t f = ota_test_image_file(IMAGE_LEN, fx->sig, fx->sig_len, OTA_CONFORMANCE_CERT);
    ota_flash_t flash = ota_flashsim_driver(&fx->dev.sim);
    uint32_t slot;
    static const uint8_t stray[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_int_equal(fx->pal.create_file(fx->pal.ctx, &f), OTA_OK);
    slot = fx->dev.cfg.layout.slot_addr[fx->dev.port.target_slot];
    assert_int_equal(fx->pal.write_block(fx->pal.ctx, 5u * BLOCK, fx->image + 5u * BLOCK, BLOCK),
                     (int32_t)BLOCK);
    assert_int_equal(flash.program(flash.ctx, slot + 2u * BLOCK + 64u, stray, sizeof stray),
                     OTA_OK);
    uint32_t p0 = ota_flashsim_program_ops(&fx->dev.sim);
    assert_int_equal(fx->pal.write_block(fx->pal.ctx, 2u * BLOCK, fx->image + 2u * BLOCK, BLOCK),
                     OTA_ERR_FLASH_RULE);
    assert_int_equal(ota_flashsim_program_ops(&fx->dev.sim), p0);
    assert_int_equal(ota_flashsim_violations(&fx->dev.sim), 0);
    /* The same block again where flash is still erased is fine. */
    assert_int_equal(fx->pal.write_block(fx->pal.ctx, 3u * BLOCK, fx->image + 3u * BLOCK, BLOCK),
                     (int32_t)BLOCK);
    assert_int_equal(fx->pal.write_block(fx->pal.ctx, 3u * BLOCK, fx->image + 3u * BLOCK, BLOCK),
                     (int32_t)BLOCK);
    assert_int_equal(ota_flashsim_violations(&fx->dev.sim), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(in_order_close_reads_nothing_back, setup, teardown),
        cmocka_unit_test_setup_teardown(other_order_reads_the_slot_back, setup, teardown),
        cmocka_unit_test_setup_teardown(flipped_byte_fails_both_ways, setup, teardown),
        cmocka_unit_test_setup_teardown(abort_then_in_order_again, setup, teardown),
        cmocka_unit_test_setup_teardown(rewritten_block_is_read_back, setup, teardown),
        cmocka_unit_test_setup_teardown(read_error_while_hashing_falls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(resumed_file_is_read_back, setup, teardown),
        cmocka_unit_test_setup_teardown(fresh_block_is_programmed_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(block_behind_a_later_one_is_checked, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
