/*
 * otter: the port conformance suite. Every case runs against every port in
 * ota_conformance_ports[] (one cmocka group per port).
 *
 * Cases named freertos_* are the FreeRTOS porting guide's PAL tests; the
 * others are otter's own (see the spec's second table).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ota_conformance.h"
#include "otter/ota_image_header.h"
#include "ota_test_image.h"
#include "ota_test_sign.h"

#define FACTORY_LEN 3000u
#define BLOCK 1024u
#define V(maj, min) ota_version_make(maj, min, 0)

/* The port under test while one group runs. */
static const ota_conformance_port_t *g_port;

/* How this program was started, for the command that reruns a failed case. */
static const char *g_argv0;

/* One case: its name and body. cmocka hands the fixture set-up this entry as
 * the initial state, so the fixture knows which case runs. */
typedef struct conformance_case {
    const char *name;
    void (*run)(void **state);
} conformance_case_t;

typedef struct fixture {
    /* The case running, and whether its body returned (a failed assertion
     * leaves through longjmp, so the teardown sees finished == 0). */
    const conformance_case_t *c;
    int finished;
    void *dev;
    ota_pal_t pal;
    uint8_t factory[FACTORY_LEN];
    /* Committed test data signed by openssl (test-keys/). */
    uint8_t blocks[8192];
    size_t blocks_len;
    uint8_t good_sig[OTA_PAL_SIGNATURE_MAX + 8];
    size_t good_sig_len;
    uint8_t bad_sig[OTA_PAL_SIGNATURE_MAX + 8];
    size_t bad_sig_len;
} fixture_t;

static int fx_setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    if (fx == NULL) {
        return -1;
    }
    fx->c = *state;
    ota_test_image_make(fx->factory, FACTORY_LEN, V(1, 0), 1);
    if (ota_test_read_file(OTA_TEST_KEYS_DIR "/blocks.bin", fx->blocks, sizeof fx->blocks,
                           &fx->blocks_len) != 0 ||
        ota_test_read_file(OTA_TEST_KEYS_DIR "/blocks.sig.der", fx->good_sig, sizeof fx->good_sig,
                           &fx->good_sig_len) != 0 ||
        ota_test_read_file(OTA_TEST_KEYS_DIR "/blocks.bad.sig.der", fx->bad_sig, sizeof fx->bad_sig,
                           &fx->bad_sig_len) != 0 ||
        g_port->setup(g_port->param, fx->factory, FACTORY_LEN, &fx->dev, &fx->pal) != 0) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int fx_teardown(void **state)
{
    fixture_t *fx = *state;
    if (!fx->finished) {
        printf("FAIL conformance %s %s: rerun with: %s %s %s\n", g_port->name, fx->c->name, g_argv0,
               g_port->name, fx->c->name);
        fflush(stdout);
    }
    g_port->teardown(fx->dev);
    free(fx);
    return 0;
}

static void reboot(fixture_t *fx)
{
    assert_int_equal(g_port->reboot(fx->dev, &fx->pal), 0);
}

/* Write buf[0..len) in blocks of `block` bytes, in order; every write returns its size. */
static void write_all(fixture_t *fx, const uint8_t *buf, uint32_t len, uint32_t block)
{
    for (uint32_t off = 0; off < len; off += block) {
        uint32_t n = len - off < block ? len - off : block;
        assert_int_equal(fx->pal.write_block(fx->pal.ctx, off, buf + off, n), (int32_t)n);
    }
}

/* Create, write and close a runtime-signed image; returns close's result. */
static ota_err_t receive_image(fixture_t *fx, const uint8_t *img, uint32_t len)
{
    uint8_t sig[OTA_PAL_SIGNATURE_MAX];
    size_t sig_len = 0;
    assert_int_equal(ota_test_image_sign(img, len, sig, &sig_len), 0);
    ota_pal_file_t f = ota_test_image_file(len, sig, sig_len, OTA_CONFORMANCE_CERT);
    assert_int_equal(fx->pal.create_file(fx->pal.ctx, &f), OTA_OK);
    write_all(fx, img, len, BLOCK);
    return fx->pal.close_file(fx->pal.ctx, &f);
}

/* The committed blocks.bin, created and written. */
static ota_pal_file_t create_and_write_blocks(fixture_t *fx, const uint8_t *sig, size_t sig_len,
                                              const char *cert, int write)
{
    ota_pal_file_t f = ota_test_image_file((uint32_t)fx->blocks_len, sig, sig_len, cert);
    assert_int_equal(fx->pal.create_file(fx->pal.ctx, &f), OTA_OK);
    if (write) {
        write_all(fx, fx->blocks, (uint32_t)fx->blocks_len, BLOCK);
    }
    return f;
}

/* Nothing is open: writes and closes are refused as such. */
static void assert_nothing_open(fixture_t *fx)
{
    uint8_t b = 0;
    ota_pal_file_t f = ota_test_image_file(1, fx->good_sig, fx->good_sig_len, OTA_CONFORMANCE_CERT);
    assert_int_equal(fx->pal.write_block(fx->pal.ctx, 0, &b, 1), OTA_ERR_NULL_FILE_CONTEXT);
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_ERR_NULL_FILE_CONTEXT);
}

/* ---- the FreeRTOS porting guide's cases ------------------------------------- */

static void freertos_close_valid_signature(void **state)
{
    fixture_t *fx = *state;
    ota_pal_file_t f =
        create_and_write_blocks(fx, fx->good_sig, fx->good_sig_len, OTA_CONFORMANCE_CERT, 1);
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_OK);
}

static void freertos_close_invalid_signature_after_write(void **state)
{
    fixture_t *fx = *state;
    ota_pal_file_t f =
        create_and_write_blocks(fx, fx->bad_sig, fx->bad_sig_len, OTA_CONFORMANCE_CERT, 1);
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_ERR_SIGNATURE_CHECK_FAILED);
}

static void freertos_close_invalid_signature_nothing_written(void **state)
{
    fixture_t *fx = *state;
    ota_pal_file_t f =
        create_and_write_blocks(fx, fx->bad_sig, fx->bad_sig_len, OTA_CONFORMANCE_CERT, 0);
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_ERR_SIGNATURE_CHECK_FAILED);
}

static void freertos_close_nonexistent_certificate(void **state)
{
    fixture_t *fx = *state;
    ota_pal_file_t f =
        create_and_write_blocks(fx, fx->good_sig, fx->good_sig_len, "no-such-cert.crt", 1);
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_ERR_BAD_SIGNER_CERT);
}

static void freertos_create_any_file(void **state)
{
    fixture_t *fx = *state;
    ota_pal_file_t f = ota_test_image_file((uint32_t)fx->blocks_len, fx->good_sig, fx->good_sig_len,
                                           OTA_CONFORMANCE_CERT);
    assert_int_equal(fx->pal.create_file(fx->pal.ctx, &f), OTA_OK);
    /* Creating again discards the first transfer and opens a new one. */
    assert_int_equal(fx->pal.create_file(fx->pal.ctx, &f), OTA_OK);
    write_all(fx, fx->blocks, (uint32_t)fx->blocks_len, BLOCK);
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_OK);
}

static void freertos_abort_open_file(void **state)
{
    fixture_t *fx = *state;
    (void)create_and_write_blocks(fx, fx->good_sig, fx->good_sig_len, OTA_CONFORMANCE_CERT, 0);
    assert_int_equal(fx->pal.abort(fx->pal.ctx), OTA_OK);
    assert_nothing_open(fx);
}

static void freertos_abort_after_block_written(void **state)
{
    fixture_t *fx = *state;
    (void)create_and_write_blocks(fx, fx->good_sig, fx->good_sig_len, OTA_CONFORMANCE_CERT, 0);
    assert_int_equal(fx->pal.write_block(fx->pal.ctx, 0, fx->blocks, BLOCK), (int32_t)BLOCK);
    assert_int_equal(fx->pal.abort(fx->pal.ctx), OTA_OK);
    assert_nothing_open(fx);
}

static void freertos_abort_nothing_open(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(fx->pal.abort(fx->pal.ctx), OTA_OK);
    assert_int_equal(fx->pal.abort(fx->pal.ctx), OTA_OK);
    assert_nothing_open(fx);
}

static void freertos_abort_never_created(void **state)
{
    fixture_t *fx = *state;
    /* A create that failed leaves a file that was never created. */
    ota_pal_file_t f = ota_test_image_file(fx->pal.max_file_size + 1u, fx->good_sig,
                                           fx->good_sig_len, OTA_CONFORMANCE_CERT);
    assert_int_equal(fx->pal.create_file(fx->pal.ctx, &f), OTA_ERR_RX_FILE_TOO_LARGE);
    assert_int_equal(fx->pal.abort(fx->pal.ctx), OTA_OK);
    assert_int_equal(fx->pal.abort(fx->pal.ctx), OTA_OK);
    assert_nothing_open(fx);
}

static void freertos_write_single_byte(void **state)
{
    fixture_t *fx = *state;
    /* As FreeRTOS's test: one byte at the start of a file, on any write unit. */
    ota_pal_file_t f = ota_test_image_file((uint32_t)fx->blocks_len, fx->good_sig, fx->good_sig_len,
                                           OTA_CONFORMANCE_CERT);
    assert_int_equal(fx->pal.create_file(fx->pal.ctx, &f), OTA_OK);
    assert_int_equal(fx->pal.write_block(fx->pal.ctx, 0, fx->blocks, 1), 1);
    /* The rest of the file after it, from an unaligned offset: it verifies. */
    assert_int_equal(
        fx->pal.write_block(fx->pal.ctx, 1, fx->blocks + 1, (uint32_t)fx->blocks_len - 1u),
        (int32_t)fx->blocks_len - 1);
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_OK);
}

static void freertos_write_many_blocks(void **state)
{
    fixture_t *fx = *state;
    uint32_t stride = fx->pal.block_align > 256u ? fx->pal.block_align : 256u;
    uint8_t buf[10 * 256];
    ota_test_image_make(buf, sizeof buf, V(1, 1), 7);
    ota_pal_file_t f =
        ota_test_image_file(10u * stride, fx->good_sig, fx->good_sig_len, OTA_CONFORMANCE_CERT);
    assert_true(10u * stride <= sizeof buf);
    assert_int_equal(fx->pal.create_file(fx->pal.ctx, &f), OTA_OK);
    for (uint32_t i = 0; i < 10u; i++) {
        assert_int_equal(fx->pal.write_block(fx->pal.ctx, i * stride, buf + i * stride, stride),
                         (int32_t)stride);
    }
    uint8_t back[10 * 256];
    assert_int_equal(fx->pal.read_back(fx->pal.ctx, 0, back, 10u * stride),
                     (int32_t)(10u * stride));
    assert_memory_equal(back, buf, 10u * stride);
}

static void freertos_activate(void **state)
{
    fixture_t *fx = *state;
    uint8_t img[5000];
    ota_test_image_make(img, sizeof img, V(1, 1), 2);
    assert_int_equal(receive_image(fx, img, sizeof img), OTA_OK);
    /* Host ports return instead of resetting. */
    assert_int_equal(fx->pal.activate(fx->pal.ctx), OTA_OK);
}

static void freertos_set_state_testing_after_write(void **state)
{
    fixture_t *fx = *state;
    (void)create_and_write_blocks(fx, fx->good_sig, fx->good_sig_len, OTA_CONFORMANCE_CERT, 1);
    assert_int_equal(fx->pal.set_image_state(fx->pal.ctx, OTA_IMAGE_STATE_TESTING), OTA_OK);
}

static void freertos_set_state_out_of_range(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(fx->pal.set_image_state(fx->pal.ctx, (ota_image_state_t)OTA_IMAGE_STATE_COUNT),
                     OTA_ERR_BAD_IMAGE_STATE);
    assert_int_equal(fx->pal.set_image_state(fx->pal.ctx, (ota_image_state_t)-1),
                     OTA_ERR_BAD_IMAGE_STATE);
    assert_int_equal(fx->pal.set_image_state(fx->pal.ctx, (ota_image_state_t)0x7fff),
                     OTA_ERR_BAD_IMAGE_STATE);
}

static void freertos_set_state_unknown(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(fx->pal.set_image_state(fx->pal.ctx, OTA_IMAGE_STATE_UNKNOWN),
                     OTA_ERR_BAD_IMAGE_STATE);
}

static void freertos_set_state_rejected(void **state)
{
    fixture_t *fx = *state;
    (void)create_and_write_blocks(fx, fx->good_sig, fx->good_sig_len, OTA_CONFORMANCE_CERT, 1);
    assert_int_equal(fx->pal.set_image_state(fx->pal.ctx, OTA_IMAGE_STATE_REJECTED), OTA_OK);
    assert_int_equal(fx->pal.get_image_state(fx->pal.ctx), OTA_PAL_IMAGE_STATE_INVALID);
    assert_nothing_open(fx);
}

static void freertos_set_state_accepted_without_closed_image(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(fx->pal.set_image_state(fx->pal.ctx, OTA_IMAGE_STATE_ACCEPTED),
                     OTA_ERR_COMMIT_FAILED);
    (void)create_and_write_blocks(fx, fx->good_sig, fx->good_sig_len, OTA_CONFORMANCE_CERT, 1);
    assert_int_equal(fx->pal.set_image_state(fx->pal.ctx, OTA_IMAGE_STATE_ACCEPTED),
                     OTA_ERR_COMMIT_FAILED);
    /* Closed and verified, but not booted: still nothing to commit. */
    ota_pal_file_t f = ota_test_image_file((uint32_t)fx->blocks_len, fx->good_sig, fx->good_sig_len,
                                           OTA_CONFORMANCE_CERT);
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_OK);
    assert_int_equal(fx->pal.set_image_state(fx->pal.ctx, OTA_IMAGE_STATE_ACCEPTED),
                     OTA_ERR_COMMIT_FAILED);
}

static void freertos_set_state_aborted(void **state)
{
    fixture_t *fx = *state;
    (void)create_and_write_blocks(fx, fx->good_sig, fx->good_sig_len, OTA_CONFORMANCE_CERT, 1);
    assert_int_equal(fx->pal.set_image_state(fx->pal.ctx, OTA_IMAGE_STATE_ABORTED), OTA_OK);
    assert_nothing_open(fx);
}

static void freertos_get_state_after_failed_close(void **state)
{
    fixture_t *fx = *state;
    ota_pal_file_t f =
        create_and_write_blocks(fx, fx->bad_sig, fx->bad_sig_len, OTA_CONFORMANCE_CERT, 1);
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_ERR_SIGNATURE_CHECK_FAILED);
    assert_int_equal(fx->pal.get_image_state(fx->pal.ctx), OTA_PAL_IMAGE_STATE_INVALID);
}

/* ---- otter's own cases ---------------------------------------------------------- */

/* Receive, activate and boot img; the port then reports pending commit. */
static void update_to(fixture_t *fx, const uint8_t *img, uint32_t len)
{
    assert_int_equal(receive_image(fx, img, len), OTA_OK);
    assert_int_equal(fx->pal.set_image_state(fx->pal.ctx, OTA_IMAGE_STATE_TESTING), OTA_OK);
    assert_int_equal(fx->pal.activate(fx->pal.ctx), OTA_OK);
    assert_int_equal(fx->pal.reset(fx->pal.ctx), OTA_OK);
    reboot(fx);
    assert_int_equal(fx->pal.get_image_state(fx->pal.ctx), OTA_PAL_IMAGE_STATE_PENDING_COMMIT);
    assert_true(g_port->running_is(fx->dev, img, len));
}

static void lifecycle_accept(void **state)
{
    fixture_t *fx = *state;
    static uint8_t v11[9000];
    static uint8_t v12[7000];
    ota_test_image_make(v11, sizeof v11, V(1, 1), 11);
    ota_test_image_make(v12, sizeof v12, V(1, 2), 12);
    assert_true(g_port->running_is(fx->dev, fx->factory, FACTORY_LEN));
    assert_int_equal(fx->pal.get_image_state(fx->pal.ctx), OTA_PAL_IMAGE_STATE_VALID);

    update_to(fx, v11, sizeof v11);
    assert_int_equal(fx->pal.set_image_state(fx->pal.ctx, OTA_IMAGE_STATE_ACCEPTED), OTA_OK);
    assert_int_equal(fx->pal.get_image_state(fx->pal.ctx), OTA_PAL_IMAGE_STATE_VALID);
    reboot(fx);
    assert_int_equal(fx->pal.get_image_state(fx->pal.ctx), OTA_PAL_IMAGE_STATE_VALID);
    assert_true(g_port->running_is(fx->dev, v11, sizeof v11));

    /* A second update works from the new image. */
    update_to(fx, v12, sizeof v12);
    assert_int_equal(fx->pal.set_image_state(fx->pal.ctx, OTA_IMAGE_STATE_ACCEPTED), OTA_OK);
    reboot(fx);
    assert_true(g_port->running_is(fx->dev, v12, sizeof v12));
    assert_int_equal(fx->pal.get_image_state(fx->pal.ctx), OTA_PAL_IMAGE_STATE_VALID);
}

static void lifecycle_reject_reverts(void **state)
{
    fixture_t *fx = *state;
    static uint8_t v11[6000];
    ota_test_image_make(v11, sizeof v11, V(1, 1), 21);
    update_to(fx, v11, sizeof v11);
    assert_int_equal(fx->pal.set_image_state(fx->pal.ctx, OTA_IMAGE_STATE_REJECTED), OTA_OK);
    assert_int_equal(fx->pal.get_image_state(fx->pal.ctx), OTA_PAL_IMAGE_STATE_INVALID);
    assert_int_equal(fx->pal.reset(fx->pal.ctx), OTA_OK);
    reboot(fx);
    assert_true(g_port->running_is(fx->dev, fx->factory, FACTORY_LEN));
    assert_int_equal(fx->pal.get_image_state(fx->pal.ctx), OTA_PAL_IMAGE_STATE_VALID);
    /* And the device still takes an update. */
    update_to(fx, v11, sizeof v11);
    assert_int_equal(fx->pal.set_image_state(fx->pal.ctx, OTA_IMAGE_STATE_ACCEPTED), OTA_OK);
}

static void lifecycle_accept_refused_before_boot(void **state)
{
    fixture_t *fx = *state;
    static uint8_t v11[5000];
    ota_test_image_make(v11, sizeof v11, V(1, 1), 101);
    assert_int_equal(receive_image(fx, v11, sizeof v11), OTA_OK);
    assert_int_equal(fx->pal.activate(fx->pal.ctx), OTA_OK);
    /* Activated, but the bootloader has not started it: nothing to commit. */
    assert_int_equal(fx->pal.set_image_state(fx->pal.ctx, OTA_IMAGE_STATE_ACCEPTED),
                     OTA_ERR_COMMIT_FAILED);
    assert_int_equal(fx->pal.get_image_state(fx->pal.ctx), OTA_PAL_IMAGE_STATE_VALID);
    reboot(fx);
    assert_int_equal(fx->pal.get_image_state(fx->pal.ctx), OTA_PAL_IMAGE_STATE_PENDING_COMMIT);
    assert_int_equal(fx->pal.set_image_state(fx->pal.ctx, OTA_IMAGE_STATE_ACCEPTED), OTA_OK);
}

static void lifecycle_reject_then_update_again(void **state)
{
    fixture_t *fx = *state;
    static uint8_t v11[5000];
    static uint8_t v12[4000];
    ota_test_image_make(v11, sizeof v11, V(1, 1), 111);
    ota_test_image_make(v12, sizeof v12, V(1, 2), 112);
    update_to(fx, v11, sizeof v11);
    assert_int_equal(fx->pal.set_image_state(fx->pal.ctx, OTA_IMAGE_STATE_REJECTED), OTA_OK);
    /* The refused image still runs until the reset: it can never be committed,
     * and a new download must not overwrite it under the running program. */
    assert_int_equal(fx->pal.set_image_state(fx->pal.ctx, OTA_IMAGE_STATE_ACCEPTED),
                     OTA_ERR_COMMIT_FAILED);
    uint8_t sig[OTA_PAL_SIGNATURE_MAX];
    size_t sig_len = 0;
    assert_int_equal(ota_test_image_sign(v12, sizeof v12, sig, &sig_len), 0);
    ota_pal_file_t f = ota_test_image_file(sizeof v12, sig, sig_len, OTA_CONFORMANCE_CERT);
    ota_err_t created = fx->pal.create_file(fx->pal.ctx, &f);
    if (created == OTA_OK) {
        write_all(fx, v12, sizeof v12, BLOCK);
        assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_OK);
        assert_int_equal(fx->pal.abort(fx->pal.ctx), OTA_OK);
    } else {
        assert_int_equal(created, OTA_ERR_RX_FILE_CREATE_FAILED);
        /* Refused, and the running image's bytes are untouched. */
        assert_true(g_port->running_is(fx->dev, v11, sizeof v11));
    }
    /* After the reset the old image runs and the next update goes through. */
    assert_int_equal(fx->pal.reset(fx->pal.ctx), OTA_OK);
    reboot(fx);
    assert_true(g_port->running_is(fx->dev, fx->factory, FACTORY_LEN));
    update_to(fx, v12, sizeof v12);
    assert_int_equal(fx->pal.set_image_state(fx->pal.ctx, OTA_IMAGE_STATE_ACCEPTED), OTA_OK);
    reboot(fx);
    assert_true(g_port->running_is(fx->dev, v12, sizeof v12));
}

static void lifecycle_unconfirmed_reverts(void **state)
{
    fixture_t *fx = *state;
    static uint8_t v11[4000];
    ota_test_image_make(v11, sizeof v11, V(1, 1), 31);
    update_to(fx, v11, sizeof v11);
    /* The new image never confirms: resets spend the boot budget, then revert. */
    int resets = 0;
    while (fx->pal.get_image_state(fx->pal.ctx) == OTA_PAL_IMAGE_STATE_PENDING_COMMIT) {
        assert_true(g_port->running_is(fx->dev, v11, sizeof v11));
        assert_true(++resets <= 16);
        reboot(fx);
    }
    assert_true(g_port->running_is(fx->dev, fx->factory, FACTORY_LEN));
    assert_int_equal(fx->pal.get_image_state(fx->pal.ctx), OTA_PAL_IMAGE_STATE_VALID);
    assert_int_equal(fx->pal.set_image_state(fx->pal.ctx, OTA_IMAGE_STATE_ACCEPTED),
                     OTA_ERR_COMMIT_FAILED);
}

/* Write an image's blocks in the order given, then close. */
static ota_err_t receive_in_order(fixture_t *fx, const uint8_t *img, uint32_t len,
                                  const uint32_t *order, uint32_t count, uint32_t block)
{
    uint8_t sig[OTA_PAL_SIGNATURE_MAX];
    size_t sig_len = 0;
    assert_int_equal(ota_test_image_sign(img, len, sig, &sig_len), 0);
    ota_pal_file_t f = ota_test_image_file(len, sig, sig_len, OTA_CONFORMANCE_CERT);
    assert_int_equal(fx->pal.create_file(fx->pal.ctx, &f), OTA_OK);
    for (uint32_t i = 0; i < count; i++) {
        uint32_t off = order[i] * block;
        uint32_t n = len - off < block ? len - off : block;
        int32_t r = fx->pal.write_block(fx->pal.ctx, off, img + off, n);
        assert_int_equal(r, (int32_t)n); /* the same bytes again are harmless */
    }
    return fx->pal.close_file(fx->pal.ctx, &f);
}

static void blocks_reverse_order(void **state)
{
    fixture_t *fx = *state;
    static uint8_t img[8 * 512 + 77];
    uint32_t order[9];
    ota_test_image_make(img, sizeof img, V(1, 1), 41);
    for (uint32_t i = 0; i < 9u; i++) {
        order[i] = 8u - i;
    }
    assert_int_equal(receive_in_order(fx, img, sizeof img, order, 9, 512), OTA_OK);
}

static void blocks_random_order_with_duplicates(void **state)
{
    fixture_t *fx = *state;
    static uint8_t img[16 * 256 + 3];
    uint32_t order[17 + 6];
    ota_test_image_make(img, sizeof img, V(1, 1), 51);
    for (uint32_t i = 0; i < 17u; i++) {
        order[i] = i;
    }
    uint32_t x = 12345u;
    for (uint32_t i = 16u; i > 0u; i--) {
        x = x * 1103515245u + 12345u;
        uint32_t j = (x >> 8) % (i + 1u);
        uint32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (uint32_t i = 0; i < 6u; i++) {
        order[17u + i] = order[(i * 5u) % 17u]; /* duplicates, last block included */
    }
    assert_int_equal(receive_in_order(fx, img, sizeof img, order, 23, 256), OTA_OK);
}

static void blocks_conflicting_duplicate(void **state)
{
    fixture_t *fx = *state;
    static uint8_t img[4 * 512];
    uint8_t other[512];
    uint8_t sig[OTA_PAL_SIGNATURE_MAX];
    size_t sig_len = 0;
    ota_test_image_make(img, sizeof img, V(1, 1), 61);
    memset(other, 0x3c, sizeof other);
    assert_int_equal(ota_test_image_sign(img, sizeof img, sig, &sig_len), 0);
    ota_pal_file_t f = ota_test_image_file(sizeof img, sig, sig_len, OTA_CONFORMANCE_CERT);
    assert_int_equal(fx->pal.create_file(fx->pal.ctx, &f), OTA_OK);
    write_all(fx, img, sizeof img, 512);
    /* Different bytes to a written block: refused (flash) or overwritten (files). */
    int32_t r = fx->pal.write_block(fx->pal.ctx, 512, other, sizeof other);
    if (r == (int32_t)sizeof other) {
        assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_ERR_SIGNATURE_CHECK_FAILED);
    } else {
        assert_int_equal(r, OTA_ERR_FLASH_RULE); /* the contract's code for a refusal */
        assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_OK);
    }
}

static void check_size(fixture_t *fx, uint32_t len)
{
    uint8_t *img = malloc(len);
    assert_non_null(img);
    ota_test_image_make(img, len, V(1, 1), len);
    ota_err_t err = receive_image(fx, img, len);
    free(img);
    assert_int_equal(err, OTA_OK);
}

static void size_one_byte(void **state)
{
    check_size(*state, 1);
}

static void size_exactly_one_block(void **state)
{
    check_size(*state, BLOCK);
}

static void size_one_byte_over_block(void **state)
{
    check_size(*state, BLOCK + 1u);
}

static void size_exactly_slot(void **state)
{
    fixture_t *fx = *state;
    check_size(fx, fx->pal.max_file_size);
}

static void size_one_byte_over_slot_refused(void **state)
{
    fixture_t *fx = *state;
    ota_pal_file_t f = ota_test_image_file(fx->pal.max_file_size + 1u, fx->good_sig,
                                           fx->good_sig_len, OTA_CONFORMANCE_CERT);
    assert_int_equal(fx->pal.create_file(fx->pal.ctx, &f), OTA_ERR_RX_FILE_TOO_LARGE);
    assert_nothing_open(fx);
}

static void signature_over_flipped_byte(void **state)
{
    fixture_t *fx = *state;
    static uint8_t img[3 * 1024 + 10];
    uint8_t sig[OTA_PAL_SIGNATURE_MAX];
    size_t sig_len = 0;
    const uint32_t where[] = {0, 31, 32, sizeof img / 2, sizeof img - 1};
    ota_test_image_make(img, sizeof img, V(1, 1), 71);
    assert_int_equal(ota_test_image_sign(img, sizeof img, sig, &sig_len), 0);
    for (size_t w = 0; w < sizeof where / sizeof where[0]; w++) {
        img[where[w]] ^= 0x01;
        ota_pal_file_t f = ota_test_image_file(sizeof img, sig, sig_len, OTA_CONFORMANCE_CERT);
        assert_int_equal(fx->pal.create_file(fx->pal.ctx, &f), OTA_OK);
        write_all(fx, img, sizeof img, BLOCK);
        assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_ERR_SIGNATURE_CHECK_FAILED);
        img[where[w]] ^= 0x01;
    }
    /* The unflipped image still verifies: the failures were the flips'. */
    assert_int_equal(receive_image(fx, img, sizeof img), OTA_OK);
}

static void arguments_null_and_out_of_range(void **state)
{
    fixture_t *fx = *state;
    ota_pal_t *p = &fx->pal;
    uint8_t buf[256] = {0};
    ota_pal_file_t f =
        ota_test_image_file(4096, fx->good_sig, fx->good_sig_len, OTA_CONFORMANCE_CERT);
    ota_pal_file_t empty =
        ota_test_image_file(0, fx->good_sig, fx->good_sig_len, OTA_CONFORMANCE_CERT);

    /* No context: refused, not a crash. */
    assert_int_equal(p->create_file(NULL, &f), OTA_ERR_INVALID_ARG);
    assert_int_equal(p->write_block(NULL, 0, buf, 1), OTA_ERR_INVALID_ARG);
    assert_int_equal(p->close_file(NULL, &f), OTA_ERR_INVALID_ARG);
    assert_int_equal(p->abort(NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(p->activate(NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(p->reset(NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(p->set_image_state(NULL, OTA_IMAGE_STATE_TESTING), OTA_ERR_INVALID_ARG);
    assert_int_equal(p->get_image_state(NULL), OTA_PAL_IMAGE_STATE_INVALID);
    assert_int_equal(p->read_back(NULL, 0, buf, 1), OTA_ERR_INVALID_ARG);
    assert_int_equal(p->progress_save(NULL, buf, 1), OTA_ERR_INVALID_ARG);
    assert_int_equal(p->progress_load(NULL, buf, sizeof buf), OTA_ERR_INVALID_ARG);
    assert_int_equal(p->progress_clear(NULL), OTA_ERR_INVALID_ARG);
    uint8_t done[1] = {0};
    assert_int_equal(p->resume_file(NULL, &f, 1024, done, 4), OTA_ERR_INVALID_ARG);
    assert_int_equal(p->resume_file(p->ctx, NULL, 1024, done, 4), OTA_ERR_INVALID_ARG);
    assert_int_equal(p->resume_file(p->ctx, &f, 0, done, 4), OTA_ERR_INVALID_ARG);

    /* Nothing open. */
    assert_int_equal(p->create_file(p->ctx, NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(p->create_file(p->ctx, &empty), OTA_ERR_INVALID_ARG);
    assert_int_equal(p->write_block(p->ctx, 0, buf, 1), OTA_ERR_NULL_FILE_CONTEXT);
    assert_int_equal(p->read_back(p->ctx, 0, buf, 1), OTA_ERR_NULL_FILE_CONTEXT);
    assert_int_equal(p->activate(p->ctx), OTA_ERR_ACTIVATE_FAILED);

    /* With a file open. */
    assert_int_equal(p->create_file(p->ctx, &f), OTA_OK);
    assert_int_equal(p->write_block(p->ctx, 0, NULL, 16), OTA_ERR_INVALID_ARG);
    assert_int_equal(p->write_block(p->ctx, 0, buf, 0), OTA_ERR_INVALID_ARG);
    assert_int_equal(p->write_block(p->ctx, 4096, buf, 1), OTA_ERR_INVALID_ARG);
    assert_int_equal(p->write_block(p->ctx, 4096 - 32, buf, 64), OTA_ERR_INVALID_ARG);
    assert_int_equal(p->write_block(p->ctx, 0xffffffffu, buf, 2), OTA_ERR_INVALID_ARG);
    assert_int_equal(p->read_back(p->ctx, 0, NULL, 1), OTA_ERR_INVALID_ARG);
    assert_int_equal(p->read_back(p->ctx, 4090, buf, 64), OTA_ERR_INVALID_ARG);
    assert_int_equal(p->close_file(p->ctx, NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(p->progress_save(p->ctx, NULL, 1), OTA_ERR_INVALID_ARG);
    assert_int_equal(p->progress_save(p->ctx, buf, 0), OTA_ERR_INVALID_ARG);
    assert_int_equal(p->progress_save(p->ctx, buf, p->progress_capacity + 1u), OTA_ERR_INVALID_ARG);
    assert_int_equal(p->progress_load(p->ctx, NULL, 4), OTA_ERR_INVALID_ARG);
    /* The file survived all of that (256: a multiple of every block_align). */
    assert_int_equal(p->write_block(p->ctx, 0, buf, 256), 256);
    assert_int_equal(p->abort(p->ctx), OTA_OK);
}

static void read_back_returns_written_bytes(void **state)
{
    fixture_t *fx = *state;
    static uint8_t img[5 * 1024 + 9];
    static uint8_t back[sizeof img];
    ota_test_image_make(img, sizeof img, V(1, 1), 81);
    assert_int_equal(receive_image(fx, img, sizeof img), OTA_OK);
    assert_int_equal(fx->pal.read_back(fx->pal.ctx, 0, back, sizeof img), (int32_t)sizeof img);
    assert_memory_equal(back, img, sizeof img);
    assert_int_equal(fx->pal.read_back(fx->pal.ctx, 1000, back, 10), 10);
    assert_memory_equal(back, img + 1000, 10);
}

static void progress_store_round_trip(void **state)
{
    fixture_t *fx = *state;
    ota_pal_t *p = &fx->pal;
    uint8_t rec[300];
    uint8_t got[300];
    assert_true(p->progress_capacity >= sizeof rec);
    assert_int_equal(p->progress_load(p->ctx, got, sizeof got), OTA_ERR_NOT_FOUND);
    for (uint32_t i = 0; i < 60u; i++) {
        uint32_t len = 1u + (i * 37u) % (uint32_t)sizeof rec;
        ota_test_image_make(rec, len, 0, i + 1u);
        assert_int_equal(p->progress_save(p->ctx, rec, len), OTA_OK);
        memset(got, 0, sizeof got);
        assert_int_equal(p->progress_load(p->ctx, got, sizeof got), (int32_t)len);
        assert_memory_equal(got, rec, len);
        if (len > 1u) {
            assert_int_equal(p->progress_load(p->ctx, got, len - 1u), OTA_ERR_OUT_OF_MEMORY);
        }
    }
    assert_int_equal(p->progress_clear(p->ctx), OTA_OK);
    assert_int_equal(p->progress_load(p->ctx, got, sizeof got), OTA_ERR_NOT_FOUND);
    assert_int_equal(p->progress_clear(p->ctx), OTA_OK);
    assert_int_equal(p->progress_save(p->ctx, rec, 5), OTA_OK);
    assert_int_equal(p->progress_load(p->ctx, got, sizeof got), 5);
}

static void progress_store_survives_reboot(void **state)
{
    fixture_t *fx = *state;
    uint8_t rec[100];
    uint8_t got[100];
    ota_test_image_make(rec, sizeof rec, 0, 91);
    assert_int_equal(fx->pal.progress_save(fx->pal.ctx, rec, sizeof rec), OTA_OK);
    reboot(fx);
    assert_int_equal(fx->pal.progress_load(fx->pal.ctx, got, sizeof got), (int32_t)sizeof rec);
    assert_memory_equal(got, rec, sizeof rec);
    assert_int_equal(fx->pal.progress_clear(fx->pal.ctx), OTA_OK);
    reboot(fx);
    assert_int_equal(fx->pal.progress_load(fx->pal.ctx, got, sizeof got), OTA_ERR_NOT_FOUND);
}

static void resume_after_reset_keeps_written_blocks(void **state)
{
    fixture_t *fx = *state;
    static uint8_t img[8 * 1024 + 100];
    uint8_t sig[OTA_PAL_SIGNATURE_MAX];
    size_t sig_len = 0;
    const uint32_t blocks = 9;
    const uint32_t written[] = {0, 1, 2, 5, 8};
    uint8_t done[2] = {0, 0};
    uint8_t got[2];
    ota_test_image_make(img, sizeof img, V(1, 1), 121);
    assert_int_equal(ota_test_image_sign(img, sizeof img, sig, &sig_len), 0);
    ota_pal_file_t f = ota_test_image_file(sizeof img, sig, sig_len, OTA_CONFORMANCE_CERT);
    assert_int_equal(fx->pal.create_file(fx->pal.ctx, &f), OTA_OK);
    for (size_t i = 0; i < sizeof written / sizeof written[0]; i++) {
        uint32_t off = written[i] * BLOCK;
        uint32_t n = sizeof img - off < BLOCK ? (uint32_t)sizeof img - off : BLOCK;
        assert_int_equal(fx->pal.write_block(fx->pal.ctx, off, img + off, n), (int32_t)n);
        done[written[i] / 8u] = (uint8_t)(done[written[i] / 8u] | (1u << (written[i] % 8u)));
        /* The agent's checkpoint: which blocks are in. */
        assert_int_equal(fx->pal.progress_save(fx->pal.ctx, done, sizeof done), OTA_OK);
    }
    /* Power goes; the device comes back and continues. */
    reboot(fx);
    assert_int_equal(fx->pal.progress_load(fx->pal.ctx, got, sizeof got), (int32_t)sizeof got);
    assert_memory_equal(got, done, sizeof done);
    assert_int_equal(fx->pal.resume_file(fx->pal.ctx, &f, BLOCK, got, blocks - 1u),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(fx->pal.resume_file(fx->pal.ctx, &f, BLOCK, NULL, blocks),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(fx->pal.resume_file(fx->pal.ctx, &f, BLOCK, got, blocks), OTA_OK);
    uint32_t rewritten = 0;
    for (uint32_t b = 0; b < blocks; b++) {
        int kept = (got[b / 8u] >> (b % 8u)) & 1;
        assert_true(!kept || ((done[b / 8u] >> (b % 8u)) & 1)); /* bits only ever cleared */
        if (!kept) {
            uint32_t off = b * BLOCK;
            uint32_t n = sizeof img - off < BLOCK ? (uint32_t)sizeof img - off : BLOCK;
            assert_int_equal(fx->pal.write_block(fx->pal.ctx, off, img + off, n), (int32_t)n);
            rewritten++;
        }
    }
    /* Nothing was interrupted, so nothing written is lost. */
    assert_int_equal(rewritten, blocks - 5u);
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_OK);
    assert_int_equal(fx->pal.activate(fx->pal.ctx), OTA_OK);
    reboot(fx);
    assert_true(g_port->running_is(fx->dev, img, sizeof img));
}

/* ---- rules of ota_pal.h the cases above do not reach ---------------------------- */

/* Sign img and describe it as a file for the trusted test signer. */
static void sign_file(const uint8_t *img, uint32_t len, uint8_t *sig, size_t *sig_len,
                      ota_pal_file_t *f)
{
    assert_int_equal(ota_test_image_sign(img, len, sig, sig_len), 0);
    *f = ota_test_image_file(len, sig, *sig_len, OTA_CONFORMANCE_CERT);
}

static void activate_after_failed_verification_refused(void **state)
{
    fixture_t *fx = *state;
    static uint8_t img[4000];
    uint8_t sig[OTA_PAL_SIGNATURE_MAX];
    size_t sig_len = 0;
    ota_pal_file_t f;
    /* A well-formed image (header and all) whose signature is for other bytes. */
    ota_test_image_make(img, sizeof img, V(1, 1), 191);
    sign_file(img, sizeof img, sig, &sig_len, &f);
    img[sizeof img - 1u] ^= 0x80u;
    assert_int_equal(fx->pal.create_file(fx->pal.ctx, &f), OTA_OK);
    write_all(fx, img, sizeof img, BLOCK);
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_ERR_SIGNATURE_CHECK_FAILED);
    assert_int_equal(fx->pal.activate(fx->pal.ctx), OTA_ERR_ACTIVATE_FAILED);
    /* Nor with an unknown signer. */
    img[sizeof img - 1u] ^= 0x80u;
    f.cert_name = "no-such-cert.crt";
    assert_int_equal(fx->pal.create_file(fx->pal.ctx, &f), OTA_OK);
    write_all(fx, img, sizeof img, BLOCK);
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_ERR_BAD_SIGNER_CERT);
    assert_int_equal(fx->pal.activate(fx->pal.ctx), OTA_ERR_ACTIVATE_FAILED);
    /* Nothing was made to boot: the factory image runs, committed. */
    assert_int_equal(fx->pal.reset(fx->pal.ctx), OTA_OK);
    reboot(fx);
    assert_true(g_port->running_is(fx->dev, fx->factory, FACTORY_LEN));
    assert_int_equal(fx->pal.get_image_state(fx->pal.ctx), OTA_PAL_IMAGE_STATE_VALID);
}

static void activate_needs_a_closed_verified_file(void **state)
{
    fixture_t *fx = *state;
    static uint8_t img[3000];
    uint8_t sig[OTA_PAL_SIGNATURE_MAX];
    size_t sig_len = 0;
    ota_pal_file_t f;
    ota_test_image_make(img, sizeof img, V(1, 1), 131);
    sign_file(img, sizeof img, sig, &sig_len, &f);
    /* Open, every byte written, not closed. */
    assert_int_equal(fx->pal.create_file(fx->pal.ctx, &f), OTA_OK);
    write_all(fx, img, sizeof img, BLOCK);
    assert_int_equal(fx->pal.activate(fx->pal.ctx), OTA_ERR_ACTIVATE_FAILED);
    /* Closed and verified, then aborted: released, nothing to activate. */
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_OK);
    assert_int_equal(fx->pal.abort(fx->pal.ctx), OTA_OK);
    assert_int_equal(fx->pal.activate(fx->pal.ctx), OTA_ERR_ACTIVATE_FAILED);
    /* Closed and verified, then rejected: discarded. */
    assert_int_equal(receive_image(fx, img, sizeof img), OTA_OK);
    assert_int_equal(fx->pal.set_image_state(fx->pal.ctx, OTA_IMAGE_STATE_REJECTED), OTA_OK);
    assert_int_equal(fx->pal.activate(fx->pal.ctx), OTA_ERR_ACTIVATE_FAILED);
    /* Closed and verified, then aborted by state: discarded. */
    assert_int_equal(receive_image(fx, img, sizeof img), OTA_OK);
    assert_int_equal(fx->pal.set_image_state(fx->pal.ctx, OTA_IMAGE_STATE_ABORTED), OTA_OK);
    assert_int_equal(fx->pal.activate(fx->pal.ctx), OTA_ERR_ACTIVATE_FAILED);
    /* Activated once: a second activate has nothing left to activate. */
    assert_int_equal(receive_image(fx, img, sizeof img), OTA_OK);
    assert_int_equal(fx->pal.activate(fx->pal.ctx), OTA_OK);
    assert_int_equal(fx->pal.activate(fx->pal.ctx), OTA_ERR_ACTIVATE_FAILED);
    reboot(fx);
    assert_true(g_port->running_is(fx->dev, img, sizeof img));
    assert_int_equal(fx->pal.get_image_state(fx->pal.ctx), OTA_PAL_IMAGE_STATE_PENDING_COMMIT);
}

static void close_failure_closes_the_file(void **state)
{
    fixture_t *fx = *state;
    ota_pal_file_t f =
        create_and_write_blocks(fx, fx->bad_sig, fx->bad_sig_len, OTA_CONFORMANCE_CERT, 1);
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_ERR_SIGNATURE_CHECK_FAILED);
    assert_nothing_open(fx);
    assert_int_equal(fx->pal.get_image_state(fx->pal.ctx), OTA_PAL_IMAGE_STATE_INVALID);
    /* A new file can be received after the failure, and verifies. */
    f = create_and_write_blocks(fx, fx->good_sig, fx->good_sig_len, OTA_CONFORMANCE_CERT, 1);
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_OK);
    assert_int_equal(fx->pal.get_image_state(fx->pal.ctx), OTA_PAL_IMAGE_STATE_VALID);
    /* A closed file is closed: no more writes, no second close. */
    assert_int_equal(fx->pal.write_block(fx->pal.ctx, 0, fx->blocks, 1), OTA_ERR_NULL_FILE_CONTEXT);
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_ERR_NULL_FILE_CONTEXT);
}

static void close_refuses_unusable_signatures(void **state)
{
    fixture_t *fx = *state;
    uint8_t long_sig[OTA_PAL_SIGNATURE_MAX + 1];
    /* An unknown method. */
    ota_pal_file_t f =
        create_and_write_blocks(fx, fx->good_sig, fx->good_sig_len, OTA_CONFORMANCE_CERT, 1);
    f.sig_method = (ota_sig_method_t)0x7f;
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_ERR_SIGNATURE_CHECK_FAILED);
    /* A signature longer than the port layer carries. */
    memset(long_sig, 0x30, sizeof long_sig);
    memcpy(long_sig, fx->good_sig, fx->good_sig_len);
    f = create_and_write_blocks(fx, long_sig, sizeof long_sig, OTA_CONFORMANCE_CERT, 1);
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_ERR_SIGNATURE_CHECK_FAILED);
    /* An empty signature. */
    f = create_and_write_blocks(fx, NULL, 0, OTA_CONFORMANCE_CERT, 1);
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_ERR_SIGNATURE_CHECK_FAILED);
    /* The good one, truncated by a byte. */
    f = create_and_write_blocks(fx, fx->good_sig, fx->good_sig_len - 1u, OTA_CONFORMANCE_CERT, 1);
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_ERR_SIGNATURE_CHECK_FAILED);
    assert_int_equal(fx->pal.activate(fx->pal.ctx), OTA_ERR_ACTIVATE_FAILED);
}

static void create_discards_the_earlier_transfer(void **state)
{
    fixture_t *fx = *state;
    uint8_t other[BLOCK];
    memset(other, 0x5a, sizeof other);
    ota_pal_file_t f =
        create_and_write_blocks(fx, fx->good_sig, fx->good_sig_len, OTA_CONFORMANCE_CERT, 0);
    /* Other bytes where the file's first block goes, then a new file. */
    assert_int_equal(fx->pal.write_block(fx->pal.ctx, 0, other, BLOCK), (int32_t)BLOCK);
    assert_int_equal(fx->pal.create_file(fx->pal.ctx, &f), OTA_OK);
    write_all(fx, fx->blocks, (uint32_t)fx->blocks_len, BLOCK);
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_OK);
    /* The same after a failed close and after an abort. */
    f = create_and_write_blocks(fx, fx->bad_sig, fx->bad_sig_len, OTA_CONFORMANCE_CERT, 0);
    assert_int_equal(fx->pal.write_block(fx->pal.ctx, BLOCK, other, BLOCK), (int32_t)BLOCK);
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_ERR_SIGNATURE_CHECK_FAILED);
    f = create_and_write_blocks(fx, fx->good_sig, fx->good_sig_len, OTA_CONFORMANCE_CERT, 0);
    assert_int_equal(fx->pal.write_block(fx->pal.ctx, 2u * BLOCK, other, BLOCK), (int32_t)BLOCK);
    assert_int_equal(fx->pal.abort(fx->pal.ctx), OTA_OK);
    f = create_and_write_blocks(fx, fx->good_sig, fx->good_sig_len, OTA_CONFORMANCE_CERT, 1);
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_OK);
}

static void refused_write_changes_nothing(void **state)
{
    fixture_t *fx = *state;
    uint8_t other[BLOCK];
    memset(other, 0xa5, sizeof other);
    ota_pal_file_t f =
        create_and_write_blocks(fx, fx->good_sig, fx->good_sig_len, OTA_CONFORMANCE_CERT, 0);
    uint32_t len = (uint32_t)fx->blocks_len;
    /* Beyond the end, by one byte: refused whole, nothing of it written. */
    assert_int_equal(fx->pal.write_block(fx->pal.ctx, len - BLOCK + 1u, other, BLOCK),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(fx->pal.write_block(fx->pal.ctx, len, other, 1), OTA_ERR_INVALID_ARG);
    write_all(fx, fx->blocks, len, BLOCK);
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_OK);
}

/* A new image runs pending commit: nothing may be received over its fallback. */
static void create_refused_while_trial_pending(void **state)
{
    fixture_t *fx = *state;
    static uint8_t v11[6000];
    static uint8_t v12[6000];
    uint8_t sig[OTA_PAL_SIGNATURE_MAX];
    size_t sig_len = 0;
    ota_pal_file_t f;
    uint8_t done[1] = {0};
    ota_test_image_make(v11, sizeof v11, V(1, 1), 141);
    ota_test_image_make(v12, sizeof v12, V(1, 2), 142);
    sign_file(v12, sizeof v12, sig, &sig_len, &f);

    /* Activated, not yet booted. */
    assert_int_equal(receive_image(fx, v11, sizeof v11), OTA_OK);
    assert_int_equal(fx->pal.activate(fx->pal.ctx), OTA_OK);
    assert_int_equal(fx->pal.create_file(fx->pal.ctx, &f), OTA_ERR_RX_FILE_CREATE_FAILED);
    assert_int_equal(fx->pal.resume_file(fx->pal.ctx, &f, BLOCK, done, 6),
                     OTA_ERR_RX_FILE_CREATE_FAILED);
    /* Booted, pending commit. */
    reboot(fx);
    assert_int_equal(fx->pal.get_image_state(fx->pal.ctx), OTA_PAL_IMAGE_STATE_PENDING_COMMIT);
    assert_int_equal(fx->pal.create_file(fx->pal.ctx, &f), OTA_ERR_RX_FILE_CREATE_FAILED);
    assert_int_equal(fx->pal.resume_file(fx->pal.ctx, &f, BLOCK, done, 6),
                     OTA_ERR_RX_FILE_CREATE_FAILED);
    assert_nothing_open(fx);
    assert_int_equal(fx->pal.get_image_state(fx->pal.ctx), OTA_PAL_IMAGE_STATE_PENDING_COMMIT);
    /* The fallback survived: never confirmed, the factory image comes back. */
    for (int resets = 0; fx->pal.get_image_state(fx->pal.ctx) == OTA_PAL_IMAGE_STATE_PENDING_COMMIT;
         resets++) {
        assert_true(resets < 16);
        reboot(fx);
    }
    assert_true(g_port->running_is(fx->dev, fx->factory, FACTORY_LEN));
    /* Decided: a new file is received again. */
    assert_int_equal(fx->pal.create_file(fx->pal.ctx, &f), OTA_OK);
    write_all(fx, v12, sizeof v12, BLOCK);
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_OK);
}

static void create_allowed_after_commit(void **state)
{
    fixture_t *fx = *state;
    static uint8_t v11[5000];
    static uint8_t v12[5000];
    ota_test_image_make(v11, sizeof v11, V(1, 1), 151);
    ota_test_image_make(v12, sizeof v12, V(1, 2), 152);
    update_to(fx, v11, sizeof v11);
    assert_int_equal(fx->pal.set_image_state(fx->pal.ctx, OTA_IMAGE_STATE_ACCEPTED), OTA_OK);
    /* Committed in this boot: the next update needs no reset. */
    update_to(fx, v12, sizeof v12);
    assert_int_equal(fx->pal.set_image_state(fx->pal.ctx, OTA_IMAGE_STATE_ACCEPTED), OTA_OK);
    reboot(fx);
    assert_true(g_port->running_is(fx->dev, v12, sizeof v12));
}

static void aborted_reverts_a_running_trial(void **state)
{
    fixture_t *fx = *state;
    static uint8_t v11[6000];
    ota_test_image_make(v11, sizeof v11, V(1, 1), 161);
    update_to(fx, v11, sizeof v11);
    assert_int_equal(fx->pal.set_image_state(fx->pal.ctx, OTA_IMAGE_STATE_ABORTED), OTA_OK);
    assert_int_equal(fx->pal.get_image_state(fx->pal.ctx), OTA_PAL_IMAGE_STATE_INVALID);
    assert_int_equal(fx->pal.set_image_state(fx->pal.ctx, OTA_IMAGE_STATE_ACCEPTED),
                     OTA_ERR_COMMIT_FAILED);
    assert_int_equal(fx->pal.reset(fx->pal.ctx), OTA_OK);
    reboot(fx);
    assert_true(g_port->running_is(fx->dev, fx->factory, FACTORY_LEN));
    assert_int_equal(fx->pal.get_image_state(fx->pal.ctx), OTA_PAL_IMAGE_STATE_VALID);
}

/* Rejected or aborted after activation, before the boot: the old image boots. */
static void refused_before_boot_never_boots(void **state)
{
    fixture_t *fx = *state;
    static uint8_t v11[5000];
    const ota_image_state_t how[] = {OTA_IMAGE_STATE_REJECTED, OTA_IMAGE_STATE_ABORTED};
    ota_test_image_make(v11, sizeof v11, V(1, 1), 171);
    for (size_t i = 0; i < sizeof how / sizeof how[0]; i++) {
        assert_int_equal(receive_image(fx, v11, sizeof v11), OTA_OK);
        assert_int_equal(fx->pal.activate(fx->pal.ctx), OTA_OK);
        assert_int_equal(fx->pal.set_image_state(fx->pal.ctx, how[i]), OTA_OK);
        assert_int_equal(fx->pal.get_image_state(fx->pal.ctx), OTA_PAL_IMAGE_STATE_INVALID);
        assert_int_equal(fx->pal.reset(fx->pal.ctx), OTA_OK);
        reboot(fx);
        assert_true(g_port->running_is(fx->dev, fx->factory, FACTORY_LEN));
        assert_int_equal(fx->pal.get_image_state(fx->pal.ctx), OTA_PAL_IMAGE_STATE_VALID);
    }
}

static void get_state_invalid_until_next_file(void **state)
{
    fixture_t *fx = *state;
    ota_pal_file_t f =
        create_and_write_blocks(fx, fx->bad_sig, fx->bad_sig_len, OTA_CONFORMANCE_CERT, 1);
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_ERR_SIGNATURE_CHECK_FAILED);
    assert_int_equal(fx->pal.get_image_state(fx->pal.ctx), OTA_PAL_IMAGE_STATE_INVALID);
    /* TESTING changes nothing; the state is never Unknown. */
    assert_int_equal(fx->pal.set_image_state(fx->pal.ctx, OTA_IMAGE_STATE_TESTING), OTA_OK);
    assert_int_equal(fx->pal.get_image_state(fx->pal.ctx), OTA_PAL_IMAGE_STATE_INVALID);
    /* A reset forgets it: the running image is the committed one. */
    reboot(fx);
    assert_int_equal(fx->pal.get_image_state(fx->pal.ctx), OTA_PAL_IMAGE_STATE_VALID);
}

static void resume_nothing_interrupted_not_found(void **state)
{
    fixture_t *fx = *state;
    uint8_t done[2] = {0xff, 0x01};
    ota_pal_file_t f = ota_test_image_file((uint32_t)fx->blocks_len, fx->good_sig, fx->good_sig_len,
                                           OTA_CONFORMANCE_CERT);
    uint32_t blocks = ((uint32_t)fx->blocks_len - 1u) / BLOCK + 1u;
    /* A new device: nothing was ever received. */
    assert_int_equal(fx->pal.resume_file(fx->pal.ctx, &f, BLOCK, done, blocks), OTA_ERR_NOT_FOUND);
    assert_nothing_open(fx);
    reboot(fx);
    assert_int_equal(fx->pal.resume_file(fx->pal.ctx, &f, BLOCK, done, blocks), OTA_ERR_NOT_FOUND);
    assert_nothing_open(fx);
}

static void resume_checks_its_arguments(void **state)
{
    fixture_t *fx = *state;
    uint8_t done[64] = {0};
    ota_pal_file_t f =
        create_and_write_blocks(fx, fx->good_sig, fx->good_sig_len, OTA_CONFORMANCE_CERT, 1);
    uint32_t len = (uint32_t)fx->blocks_len;
    uint32_t blocks = (len - 1u) / BLOCK + 1u;
    reboot(fx);
    ota_pal_file_t big = ota_test_image_file(fx->pal.max_file_size + 1u, fx->good_sig,
                                             fx->good_sig_len, OTA_CONFORMANCE_CERT);
    ota_pal_file_t empty =
        ota_test_image_file(0, fx->good_sig, fx->good_sig_len, OTA_CONFORMANCE_CERT);
    uint32_t big_blocks = (big.size - 1u) / BLOCK + 1u;
    uint8_t *big_done = calloc(big_blocks / 8u + 1u, 1);
    assert_non_null(big_done);
    assert_int_equal(fx->pal.resume_file(fx->pal.ctx, &big, BLOCK, big_done, big_blocks),
                     OTA_ERR_RX_FILE_TOO_LARGE);
    free(big_done);
    assert_int_equal(fx->pal.resume_file(fx->pal.ctx, &empty, BLOCK, done, 1), OTA_ERR_INVALID_ARG);
    assert_int_equal(fx->pal.resume_file(fx->pal.ctx, &f, BLOCK, done, blocks + 1u),
                     OTA_ERR_INVALID_ARG);
    assert_nothing_open(fx);
    /* The file is still there to resume. */
    memset(done, 0, sizeof done);
    assert_int_equal(fx->pal.resume_file(fx->pal.ctx, &f, BLOCK, done, blocks), OTA_OK);
    write_all(fx, fx->blocks, len, BLOCK);
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_OK);
}

/* Any block size at any offset, on every write unit: one byte at a time. */
static void write_unaligned_single_bytes(void **state)
{
    fixture_t *fx = *state;
    static uint8_t img[777];
    uint8_t sig[OTA_PAL_SIGNATURE_MAX];
    size_t sig_len = 0;
    ota_pal_file_t f;
    ota_test_image_make(img, sizeof img, V(1, 1), 201);
    sign_file(img, sizeof img, sig, &sig_len, &f);
    assert_int_equal(fx->pal.create_file(fx->pal.ctx, &f), OTA_OK);
    for (uint32_t i = 0; i < sizeof img; i++) {
        assert_int_equal(fx->pal.write_block(fx->pal.ctx, i, img + i, 1), 1);
    }
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_OK);
    assert_int_equal(fx->pal.activate(fx->pal.ctx), OTA_OK);
    reboot(fx);
    assert_true(g_port->running_is(fx->dev, img, sizeof img));
}

/* Odd sizes at odd offsets, in order and in reverse; a piece written twice. */
static void write_unaligned_odd_blocks(void **state)
{
    fixture_t *fx = *state;
    static uint8_t img[6007];
    static const uint32_t sizes[] = {3, 1, 7, 13, 250, 257, 511, 2, 1021, 255, 33};
    uint8_t sig[OTA_PAL_SIGNATURE_MAX];
    size_t sig_len = 0;
    ota_pal_file_t f;
    ota_test_image_make(img, sizeof img, V(1, 1), 211);
    sign_file(img, sizeof img, sig, &sig_len, &f);
    assert_int_equal(fx->pal.create_file(fx->pal.ctx, &f), OTA_OK);
    for (uint32_t off = 0, k = 0; off < sizeof img; k++) {
        uint32_t n = sizes[k % (sizeof sizes / sizeof sizes[0])];
        n = n < sizeof img - off ? n : (uint32_t)sizeof img - off;
        assert_int_equal(fx->pal.write_block(fx->pal.ctx, off, img + off, n), (int32_t)n);
        if (k == 5u) { /* the same bytes again are harmless, unaligned too */
            assert_int_equal(fx->pal.write_block(fx->pal.ctx, off, img + off, n), (int32_t)n);
        }
        off += n;
    }
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_OK);
    /* Blocks of 333 bytes, last one first. */
    const uint32_t block = 333;
    const uint32_t blocks = ((uint32_t)sizeof img - 1u) / block + 1u;
    assert_int_equal(fx->pal.create_file(fx->pal.ctx, &f), OTA_OK);
    for (uint32_t b = blocks; b-- > 0u;) {
        uint32_t off = b * block;
        uint32_t n = sizeof img - off < block ? (uint32_t)sizeof img - off : block;
        assert_int_equal(fx->pal.write_block(fx->pal.ctx, off, img + off, n), (int32_t)n);
    }
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_OK);
    assert_int_equal(fx->pal.activate(fx->pal.ctx), OTA_OK);
    reboot(fx);
    assert_true(g_port->running_is(fx->dev, img, sizeof img));
}

/* Unaligned blocks, a checkpoint after each, a reset, a resume: the bytes a
 * port held in RAM at a checkpoint are not lost. */
static void write_unaligned_resume(void **state)
{
    fixture_t *fx = *state;
    static uint8_t img[5000];
    const uint32_t block = 333;
    const uint32_t blocks = ((uint32_t)sizeof img - 1u) / block + 1u;
    uint8_t sig[OTA_PAL_SIGNATURE_MAX];
    size_t sig_len = 0;
    uint8_t done[4] = {0};
    ota_pal_file_t f;
    ota_test_image_make(img, sizeof img, V(1, 1), 221);
    sign_file(img, sizeof img, sig, &sig_len, &f);
    assert_int_equal(fx->pal.create_file(fx->pal.ctx, &f), OTA_OK);
    for (uint32_t b = 0; b < 7u; b++) {
        assert_int_equal(fx->pal.write_block(fx->pal.ctx, b * block, img + b * block, block),
                         (int32_t)block);
        done[b / 8u] = (uint8_t)(done[b / 8u] | (1u << (b % 8u)));
        assert_int_equal(fx->pal.progress_save(fx->pal.ctx, done, sizeof done), OTA_OK);
    }
    reboot(fx);
    assert_int_equal(fx->pal.progress_load(fx->pal.ctx, done, sizeof done), (int32_t)sizeof done);
    assert_int_equal(fx->pal.resume_file(fx->pal.ctx, &f, block, done, blocks), OTA_OK);
    uint32_t kept = 0;
    for (uint32_t b = 0; b < blocks; b++) {
        uint32_t off = b * block;
        uint32_t n = sizeof img - off < block ? (uint32_t)sizeof img - off : block;
        if ((done[b / 8u] >> (b % 8u)) & 1u) {
            kept++;
            continue;
        }
        assert_int_equal(fx->pal.write_block(fx->pal.ctx, off, img + off, n), (int32_t)n);
    }
    assert_int_equal(kept, 7u); /* nothing was interrupted: nothing fetched again */
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_OK);
    assert_int_equal(fx->pal.activate(fx->pal.ctx), OTA_OK);
    reboot(fx);
    assert_true(g_port->running_is(fx->dev, img, sizeof img));
}

/* A read error while the file is verified at close: one code on every port. */
static void close_read_error_is_file_close(void **state)
{
    fixture_t *fx = *state;
    static uint8_t img[4 * 1024 + 17];
    const uint32_t order[] = {4, 3, 2, 1, 0}; /* not in order: nothing hashed while written */
    uint8_t sig[OTA_PAL_SIGNATURE_MAX];
    size_t sig_len = 0;
    ota_pal_file_t f;
    ota_test_image_make(img, sizeof img, V(1, 1), 231);
    sign_file(img, sizeof img, sig, &sig_len, &f);
    assert_int_equal(fx->pal.create_file(fx->pal.ctx, &f), OTA_OK);
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        uint32_t off = order[i] * BLOCK;
        uint32_t n = sizeof img - off < BLOCK ? (uint32_t)sizeof img - off : BLOCK;
        assert_int_equal(fx->pal.write_block(fx->pal.ctx, off, img + off, n), (int32_t)n);
    }
    assert_non_null(g_port->fail_next_read);
    assert_int_equal(g_port->fail_next_read(fx->dev), 0);
    assert_int_equal(fx->pal.close_file(fx->pal.ctx, &f), OTA_ERR_FILE_CLOSE);
    /* Closed, refused, nothing to activate; the next file goes through. */
    assert_nothing_open(fx);
    assert_int_equal(fx->pal.get_image_state(fx->pal.ctx), OTA_PAL_IMAGE_STATE_INVALID);
    assert_int_equal(fx->pal.activate(fx->pal.ctx), OTA_ERR_ACTIVATE_FAILED);
    assert_int_equal(receive_image(fx, img, sizeof img), OTA_OK);
}

static void progress_store_replaces_whole_records(void **state)
{
    fixture_t *fx = *state;
    ota_pal_t *p = &fx->pal;
    uint8_t big[200];
    uint8_t small[3] = {1, 2, 3};
    uint8_t got[200];
    ota_test_image_make(big, sizeof big, 0, 181);
    assert_int_equal(p->progress_save(p->ctx, big, sizeof big), OTA_OK);
    assert_int_equal(p->progress_save(p->ctx, small, sizeof small), OTA_OK);
    reboot(fx);
    memset(got, 0, sizeof got);
    assert_int_equal(p->progress_load(p->ctx, got, sizeof got), (int32_t)sizeof small);
    assert_memory_equal(got, small, sizeof small);
    /* A record as large as the store takes. */
    uint32_t cap = p->progress_capacity;
    uint8_t *full = malloc(cap);
    uint8_t *back = malloc(cap);
    assert_non_null(full);
    assert_non_null(back);
    ota_test_image_make(full, cap, 0, 182);
    assert_int_equal(p->progress_save(p->ctx, full, cap), OTA_OK);
    reboot(fx);
    assert_int_equal(p->progress_load(p->ctx, back, cap), (int32_t)cap);
    assert_memory_equal(back, full, cap);
    free(full);
    free(back);
}

/* Runs the case the fixture names; returns only when every assertion held. */
static void run_case(void **state)
{
    fixture_t *fx = *state;
    fx->c->run(state);
    fx->finished = 1;
}

#define CASE(fn)                                                                                   \
    {                                                                                              \
#fn, fn                                                                                    \
    }

int main(int argc, char **argv)
{
    static const conformance_case_t cases[] = {
        CASE(freertos_close_valid_signature),
        CASE(freertos_close_invalid_signature_after_write),
        CASE(freertos_close_invalid_signature_nothing_written),
        CASE(freertos_close_nonexistent_certificate),
        CASE(freertos_create_any_file),
        CASE(freertos_abort_open_file),
        CASE(freertos_abort_after_block_written),
        CASE(freertos_abort_nothing_open),
        CASE(freertos_abort_never_created),
        CASE(freertos_write_single_byte),
        CASE(freertos_write_many_blocks),
        CASE(freertos_activate),
        CASE(freertos_set_state_testing_after_write),
        CASE(freertos_set_state_out_of_range),
        CASE(freertos_set_state_unknown),
        CASE(freertos_set_state_rejected),
        CASE(freertos_set_state_accepted_without_closed_image),
        CASE(freertos_set_state_aborted),
        CASE(freertos_get_state_after_failed_close),
        CASE(lifecycle_accept),
        CASE(lifecycle_reject_reverts),
        CASE(lifecycle_unconfirmed_reverts),
        CASE(lifecycle_accept_refused_before_boot),
        CASE(lifecycle_reject_then_update_again),
        CASE(blocks_reverse_order),
        CASE(blocks_random_order_with_duplicates),
        CASE(blocks_conflicting_duplicate),
        CASE(size_one_byte),
        CASE(size_exactly_one_block),
        CASE(size_one_byte_over_block),
        CASE(size_exactly_slot),
        CASE(size_one_byte_over_slot_refused),
        CASE(signature_over_flipped_byte),
        CASE(arguments_null_and_out_of_range),
        CASE(read_back_returns_written_bytes),
        CASE(progress_store_round_trip),
        CASE(progress_store_survives_reboot),
        CASE(resume_after_reset_keeps_written_blocks),
        CASE(activate_after_failed_verification_refused),
        CASE(activate_needs_a_closed_verified_file),
        CASE(close_failure_closes_the_file),
        CASE(close_refuses_unusable_signatures),
        CASE(create_discards_the_earlier_transfer),
        CASE(refused_write_changes_nothing),
        CASE(create_refused_while_trial_pending),
        CASE(create_allowed_after_commit),
        CASE(aborted_reverts_a_running_trial),
        CASE(refused_before_boot_never_boots),
        CASE(get_state_invalid_until_next_file),
        CASE(resume_nothing_interrupted_not_found),
        CASE(resume_checks_its_arguments),
        CASE(progress_store_replaces_whole_records),
        CASE(write_unaligned_single_bytes),
        CASE(write_unaligned_odd_blocks),
        CASE(write_unaligned_resume),
        CASE(close_read_error_is_file_close),
    };
    enum { CASE_COUNT = sizeof cases / sizeof cases[0] };
    static struct CMUnitTest tests[CASE_COUNT];
    /* ota_conformance [PORT [CASE]]: every port, one port, or one case of one
     * port (OTA_CONFORMANCE_PORT also names the port). */
    const char *only = argc > 1 ? argv[1] : getenv("OTA_CONFORMANCE_PORT");
    const char *one_case = argc > 2 ? argv[2] : NULL;
    size_t count = 0;
    g_argv0 = argv[0];
    for (size_t i = 0; i < CASE_COUNT; i++) {
        if (one_case != NULL && strcmp(one_case, cases[i].name) != 0) {
            continue;
        }
        tests[count].name = cases[i].name;
        tests[count].test_func = run_case;
        tests[count].setup_func = fx_setup;
        tests[count].teardown_func = fx_teardown;
        tests[count].initial_state = (void *)&cases[i];
        count++;
    }
    if (count == 0) {
        fprintf(stderr, "no conformance case named %s\n", one_case);
        return 2;
    }
    int failed = 0;
    int ran = 0;
    for (const ota_conformance_port_t *port = ota_conformance_ports; port->name != NULL; port++) {
        if (only != NULL && strcmp(only, port->name) != 0) {
            continue;
        }
        g_port = port;
        failed += _cmocka_run_group_tests(port->name, tests, count, NULL, NULL);
        ran++;
    }
    if (ran == 0) {
        fprintf(stderr, "no conformance port named %s\n", only != NULL ? only : "(any)");
        return 2;
    }
    printf("conformance: %lu cases on %d port%s, %d failed\n", (unsigned long)count, ran,
           ran == 1 ? "" : "s", failed);
    return failed != 0;
}
