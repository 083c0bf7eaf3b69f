/* Unit tests: image header, boot record, and the bootloader's decisions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "otter/ota_boot.h"
#include "otter/ota_boot_record.h"
#include "otter/ota_bytes.h"
#include "otter/ota_crc32.h"
#include "ota_flashsim.h"
#include "otter/ota_image_header.h"
#include "ota_test_sign.h"

#define SECTOR 4096u
#define FLASH_SIZE (32u * SECTOR)
#define V(maj, min) ota_version_make(maj, min, 0)

typedef struct bench {
    ota_flashsim_t sim;
    uint8_t mem[FLASH_SIZE];
    ota_flash_t flash;
    ota_boot_layout_t layout;
    ota_boot_config_t cfg;
    uint8_t scratch[256];
    uint8_t pem[4096];
    uint8_t other_pem[4096];
    ota_verify_signer_t signers[2];
    uint32_t id_other;
    uint32_t id_good;
    uint8_t img[3][5000];
    uint8_t sig[3][80];
    size_t sig_len[3];
} bench_t;

static void make_image(uint8_t *buf, uint32_t len, uint32_t version, uint8_t fill)
{
    memset(buf, fill, len);
    ota_image_header_t hdr = {.version = version, .image_size = len};
    assert_int_equal(ota_image_header_encode(&hdr, buf), OTA_OK);
}

static void program_slot(bench_t *b, uint8_t slot, const uint8_t *img, uint32_t len)
{
    uint32_t base = b->layout.slot_addr[slot];
    assert_int_equal(b->flash.erase(b->flash.ctx, base, b->layout.slot_size), OTA_OK);
    assert_int_equal(b->flash.program(b->flash.ctx, base, img, len), OTA_OK);
}

static int setup(void **state)
{
    bench_t *b = calloc(1, sizeof *b);
    ota_flashsim_geometry_t geo = {FLASH_SIZE, SECTOR, NULL, 0, 1, 0xff};
    size_t pem_len = 0;
    size_t other_len = 0;
    if (b == NULL || ota_flashsim_init(&b->sim, &geo, b->mem, sizeof b->mem) != OTA_OK) {
        return -1;
    }
    b->flash = ota_flashsim_driver(&b->sim);
    if (ota_boot_layout_uniform(&b->flash, &b->layout) != OTA_OK ||
        ota_test_read_file(OTA_TEST_KEYS_DIR "/codesign-test.crt", b->pem, sizeof b->pem,
                           &pem_len) != 0 ||
        ota_test_read_file(OTA_TEST_KEYS_DIR "/untrusted-test.crt", b->other_pem,
                           sizeof b->other_pem, &other_len) != 0) {
        return -1;
    }
    /* Signer 0: another key; signer 1: the key the images are signed with. */
    b->signers[0] = (ota_verify_signer_t){"other.crt", b->other_pem, other_len};
    b->signers[1] = (ota_verify_signer_t){"codesign.crt", b->pem, pem_len};
    b->cfg.flash = &b->flash;
    b->cfg.layout = &b->layout;
    b->cfg.signers = b->signers;
    b->cfg.signer_count = 2;
    if (ota_verify_key_id(b->other_pem, other_len, &b->id_other) != OTA_OK ||
        ota_verify_key_id(b->pem, pem_len, &b->id_good) != OTA_OK || b->id_other == b->id_good) {
        return -1;
    }
    b->cfg.scratch = b->scratch;
    b->cfg.scratch_len = sizeof b->scratch;
    for (uint32_t i = 0; i < 3u; i++) {
        make_image(b->img[i], sizeof b->img[i], V(1, i), (uint8_t)(0x10 + i));
        if (ota_test_sign_sha256_ecdsa(OTA_TEST_KEYS_DIR "/codesign-test.key", b->img[i],
                                       sizeof b->img[i], b->sig[i], sizeof b->sig[i],
                                       &b->sig_len[i]) != 0) {
            return -1;
        }
    }
    program_slot(b, 0, b->img[0], sizeof b->img[0]);
    *state = b;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static ota_boot_result_t boot(bench_t *b)
{
    ota_boot_result_t r;
    assert_int_equal(ota_boot_decide(&b->cfg, &r), OTA_OK);
    return r;
}

/* ---- image header ---------------------------------------------------------------- */

static void image_header_round_trip_and_corruption(void **state)
{
    (void)state;
    uint8_t raw[OTA_IMAGE_HEADER_SIZE];
    ota_image_header_t in = {.version = V(2, 7) | 513u, .image_size = 123456u};
    ota_image_header_t out;
    assert_int_equal(ota_image_header_encode(&in, raw), OTA_OK);
    assert_int_equal(ota_image_header_decode(raw, sizeof raw, &out), OTA_OK);
    assert_int_equal(out.version, in.version);
    assert_int_equal(out.image_size, in.image_size);
    assert_int_equal(ota_image_header_decode(raw, sizeof raw - 1u, &out), OTA_ERR_BAD_IMAGE);
    for (uint32_t bit = 0; bit < 8u * sizeof raw; bit++) {
        raw[bit / 8u] ^= (uint8_t)(1u << (bit % 8u));
        assert_int_equal(ota_image_header_decode(raw, sizeof raw, &out), OTA_ERR_BAD_IMAGE);
        raw[bit / 8u] ^= (uint8_t)(1u << (bit % 8u));
    }
    ota_image_header_t tiny = {.version = 1, .image_size = 10};
    assert_int_equal(ota_image_header_encode(&tiny, raw), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_image_header_decode(NULL, 32, &out), OTA_ERR_INVALID_ARG);
}

/* ---- boot record ----------------------------------------------------------------- */

static ota_boot_record_t sample_record(void)
{
    ota_boot_record_t r;
    memset(&r, 0, sizeof r);
    r.seq = 77;
    r.state = OTA_BOOT_STATE_TRIAL;
    r.active_slot = 0;
    r.trial_slot = 1;
    r.attempts_left = 3;
    r.min_version = V(1, 0);
    r.active_version = V(1, 0);
    r.trial_version = V(1, 1);
    r.trial_size = 5000;
    r.sig_len = 71;
    for (uint32_t i = 0; i < r.sig_len; i++) {
        r.sig[i] = (uint8_t)(i * 3u + 1u);
    }
    return r;
}

static void record_round_trip_and_every_bit_flip(void **state)
{
    (void)state;
    uint8_t raw[OTA_BOOT_RECORD_SIZE];
    ota_boot_record_t in = sample_record();
    ota_boot_record_t out;
    assert_int_equal(ota_boot_record_encode(&in, raw), OTA_OK);
    assert_int_equal(ota_boot_record_decode(raw, &out), OTA_OK);
    assert_memory_equal(&in, &out, sizeof in);
    for (uint32_t bit = 0; bit < 8u * sizeof raw; bit++) {
        raw[bit / 8u] ^= (uint8_t)(1u << (bit % 8u));
        assert_int_equal(ota_boot_record_decode(raw, &out), OTA_ERR_CORRUPT);
        raw[bit / 8u] ^= (uint8_t)(1u << (bit % 8u));
    }
}

static void record_fields_out_of_range_refused(void **state)
{
    (void)state;
    uint8_t raw[OTA_BOOT_RECORD_SIZE];
    ota_boot_record_t r = sample_record();
    r.state = 4;
    assert_int_equal(ota_boot_record_encode(&r, raw), OTA_ERR_INVALID_ARG);
    r = sample_record();
    r.trial_slot = 2;
    assert_int_equal(ota_boot_record_encode(&r, raw), OTA_ERR_INVALID_ARG);
    r = sample_record();
    r.sig_len = OTA_BOOT_SIG_MAX + 1u;
    assert_int_equal(ota_boot_record_encode(&r, raw), OTA_ERR_INVALID_ARG);
}

static void record_store_alternates_copies(void **state)
{
    bench_t *b = *state;
    ota_boot_record_t r = sample_record();
    ota_boot_record_t got;
    uint8_t which = 9;
    assert_int_equal(ota_boot_record_load(&b->flash, b->layout.record_addr, &got, &which),
                     OTA_ERR_NOT_FOUND);
    for (uint32_t i = 0; i < 6u; i++) {
        r.attempts_left = (uint8_t)i;
        assert_int_equal(ota_boot_record_store(&b->flash, b->layout.record_addr, &r), OTA_OK);
        assert_int_equal(r.seq, i + 1u);
        assert_int_equal(ota_boot_record_load(&b->flash, b->layout.record_addr, &got, &which),
                         OTA_OK);
        assert_int_equal(which, i % 2u);
        assert_int_equal(got.attempts_left, i);
        /* The other copy still holds the previous state. */
        if (i > 0u) {
            uint8_t raw[OTA_BOOT_RECORD_SIZE];
            ota_boot_record_t prev;
            assert_int_equal(
                b->flash.read(b->flash.ctx, b->layout.record_addr[which ^ 1u], raw, sizeof raw),
                OTA_OK);
            assert_int_equal(ota_boot_record_decode(raw, &prev), OTA_OK);
            assert_int_equal(prev.attempts_left, i - 1u);
        }
    }
    /* Each store erased exactly one record sector. */
    uint32_t s0 = b->layout.record_addr[0] / SECTOR;
    uint32_t s1 = b->layout.record_addr[1] / SECTOR;
    assert_int_equal(ota_flashsim_sector_erases(&b->sim, s0), 3);
    assert_int_equal(ota_flashsim_sector_erases(&b->sim, s1), 3);
}

static void record_sequence_wraps(void **state)
{
    bench_t *b = *state;
    ota_boot_record_t r = sample_record();
    ota_boot_record_t got;
    uint8_t raw[OTA_BOOT_RECORD_SIZE];
    /* Copy 0 holds seq 0xffffffff, copy 1 seq 0 (newer by serial arithmetic). */
    r.seq = 0xffffffffu;
    r.attempts_left = 1;
    assert_int_equal(ota_boot_record_encode(&r, raw), OTA_OK);
    assert_int_equal(b->flash.program(b->flash.ctx, b->layout.record_addr[0], raw, sizeof raw),
                     OTA_OK);
    r.seq = 0;
    r.attempts_left = 2;
    assert_int_equal(ota_boot_record_encode(&r, raw), OTA_OK);
    assert_int_equal(b->flash.program(b->flash.ctx, b->layout.record_addr[1], raw, sizeof raw),
                     OTA_OK);
    assert_int_equal(ota_boot_record_load(&b->flash, b->layout.record_addr, &got, NULL), OTA_OK);
    assert_int_equal(got.attempts_left, 2);
}

/* ---- decisions ------------------------------------------------------------------- */

static void new_device_boots_slot0_without_writing(void **state)
{
    bench_t *b = *state;
    uint32_t ops = ota_flashsim_op_count(&b->sim);
    ota_boot_result_t r = boot(b);
    assert_int_equal(r.slot, 0);
    assert_int_equal(r.pending, 0);
    assert_int_equal(r.version, V(1, 0));
    assert_int_equal(ota_flashsim_op_count(&b->sim), ops);
}

static void trial_budget_then_revert(void **state)
{
    bench_t *b = *state;
    b->cfg.max_attempts = 0; /* default: 3 */
    program_slot(b, 1, b->img[1], sizeof b->img[1]);
    assert_int_equal(
        ota_boot_request_trial(&b->cfg, 1, sizeof b->img[1], b->sig[1], b->sig_len[1], b->id_good),
        OTA_OK);
    for (uint32_t i = 0; i < OTA_BOOT_DEFAULT_ATTEMPTS; i++) {
        ota_boot_result_t r = boot(b);
        assert_int_equal(r.slot, 1);
        assert_int_equal(r.pending, 1);
        assert_int_equal(r.record.attempts_left, OTA_BOOT_DEFAULT_ATTEMPTS - 1u - i);
    }
    ota_boot_result_t r = boot(b);
    assert_int_equal(r.slot, 0);
    assert_int_equal(r.pending, 0);
    assert_int_equal(r.record.state, OTA_BOOT_STATE_REVERTED);
    assert_int_equal(r.record.min_version, 0);
    /* Stays reverted. */
    r = boot(b);
    assert_int_equal(r.slot, 0);
}

static void confirm_raises_minimum_version_and_swaps_active(void **state)
{
    bench_t *b = *state;
    program_slot(b, 1, b->img[2], sizeof b->img[2]);
    assert_int_equal(
        ota_boot_request_trial(&b->cfg, 1, sizeof b->img[2], b->sig[2], b->sig_len[2], b->id_good),
        OTA_OK);
    assert_int_equal(boot(b).pending, 1);
    assert_int_equal(ota_boot_confirm(&b->cfg), OTA_OK);
    ota_boot_result_t r = boot(b);
    assert_int_equal(r.slot, 1);
    assert_int_equal(r.pending, 0);
    assert_int_equal(r.record.min_version, V(1, 2));
    assert_int_equal(r.record.active_version, V(1, 2));
    /* A lower version is refused at the request (anti-rollback) ... */
    program_slot(b, 0, b->img[1], sizeof b->img[1]);
    assert_int_equal(
        ota_boot_request_trial(&b->cfg, 0, sizeof b->img[1], b->sig[1], b->sig_len[1], b->id_good),
        OTA_ERR_ROLLBACK);
    /* ... and at boot, even if a record asks for it. */
    ota_boot_record_t forged = r.record;
    forged.state = OTA_BOOT_STATE_TRIAL;
    forged.trial_slot = 0;
    forged.attempts_left = 3;
    forged.trial_version = V(1, 1);
    forged.trial_size = sizeof b->img[1];
    forged.sig_len = (uint8_t)b->sig_len[1];
    memcpy(forged.sig, b->sig[1], b->sig_len[1]);
    assert_int_equal(ota_boot_record_store(&b->flash, b->layout.record_addr, &forged), OTA_OK);
    r = boot(b);
    assert_int_equal(r.slot, 1);
    assert_int_equal(r.record.state, OTA_BOOT_STATE_REVERTED);
    assert_int_equal(r.record.min_version, V(1, 2));
}

/* Writes a signed image with a counter and a type tag into slot; returns its signature. */
static void put_counted(bench_t *b, uint8_t slot, uint32_t version, uint16_t counter, uint32_t tag,
                        uint8_t sig[80], size_t *sig_len)
{
    static uint8_t img[3000];
    memset(img, 0x5a, sizeof img);
    ota_image_header_t hdr = {.version = version,
                              .image_size = sizeof img,
                              .security_counter = counter,
                              .device_type_tag = tag};
    assert_int_equal(ota_image_header_encode(&hdr, img), OTA_OK);
    assert_int_equal(ota_test_sign_sha256_ecdsa(OTA_TEST_KEYS_DIR "/codesign-test.key", img,
                                                sizeof img, sig, 80, sig_len),
                     0);
    program_slot(b, slot, img, sizeof img);
}

static void security_counter_is_the_floor_once_confirmed(void **state)
{
    bench_t *b = *state;
    uint8_t sig[80];
    size_t sig_len = 0;
    /* Version 1.5 with counter 2 replaces the factory 1.0 and is confirmed. */
    put_counted(b, 1, V(1, 5), 2, 0, sig, &sig_len);
    assert_int_equal(ota_boot_request_trial(&b->cfg, 1, 3000, sig, sig_len, b->id_good), OTA_OK);
    assert_int_equal(boot(b).pending, 1);
    assert_int_equal(ota_boot_confirm(&b->cfg), OTA_OK);
    ota_boot_result_t r = boot(b);
    assert_int_equal(r.record.min_counter, 2);
    assert_int_equal(r.record.min_version, V(1, 5));
    uint8_t raw[OTA_BOOT_RECORD_SIZE];
    assert_int_equal(ota_boot_record_encode(&r.record, raw), OTA_OK);
    assert_int_equal(raw[4], OTA_BOOT_RECORD_FORMAT_2);
    /* A higher version with a lower counter is a rollback ... */
    put_counted(b, 0, V(9, 0), 1, 0, sig, &sig_len);
    assert_int_equal(ota_boot_request_trial(&b->cfg, 0, 3000, sig, sig_len, b->id_good),
                     OTA_ERR_ROLLBACK);
    /* ... so is an image without a counter, whatever its version ... */
    assert_int_equal(
        ota_boot_request_trial(&b->cfg, 0, sizeof b->img[2], b->sig[2], b->sig_len[2], b->id_good),
        OTA_ERR_BAD_IMAGE); /* slot 0 holds the 3000-byte image */
    program_slot(b, 0, b->img[2], sizeof b->img[2]);
    assert_int_equal(
        ota_boot_request_trial(&b->cfg, 0, sizeof b->img[2], b->sig[2], b->sig_len[2], b->id_good),
        OTA_ERR_ROLLBACK);
    /* ... and a forged record asking for it boots the active image. */
    ota_boot_record_t forged = r.record;
    forged.state = OTA_BOOT_STATE_TRIAL;
    forged.trial_slot = 0;
    forged.attempts_left = 3;
    forged.trial_version = V(1, 2);
    forged.trial_size = sizeof b->img[2];
    forged.sig_len = (uint8_t)b->sig_len[2];
    memcpy(forged.sig, b->sig[2], b->sig_len[2]);
    assert_int_equal(ota_boot_record_store(&b->flash, b->layout.record_addr, &forged), OTA_OK);
    r = boot(b);
    assert_int_equal(r.slot, 1);
    assert_int_equal(r.record.state, OTA_BOOT_STATE_REVERTED);
    assert_int_equal(r.record.min_counter, 2);
    /* The same counter allows a lower version: the signer kept the floor. */
    put_counted(b, 0, V(1, 1), 2, 0, sig, &sig_len);
    assert_int_equal(ota_boot_request_trial(&b->cfg, 0, 3000, sig, sig_len, b->id_good), OTA_OK);
    r = boot(b);
    assert_int_equal(r.slot, 0);
    assert_int_equal(r.pending, 1);
}

static void image_for_another_device_type_never_boots(void **state)
{
    bench_t *b = *state;
    uint32_t mine = 0, other = 0;
    assert_int_equal(ota_device_type_tag("board-a", 7, &mine), OTA_OK);
    assert_int_equal(ota_device_type_tag("board-b", 7, &other), OTA_OK);
    b->cfg.device_type_tag = mine;
    uint8_t sig[80];
    size_t sig_len = 0;
    put_counted(b, 1, V(2, 0), 0, other, sig, &sig_len);
    assert_int_equal(ota_boot_request_trial(&b->cfg, 1, 3000, sig, sig_len, b->id_good),
                     OTA_ERR_BAD_IMAGE);
    put_counted(b, 1, V(2, 0), 0, mine, sig, &sig_len);
    assert_int_equal(ota_boot_request_trial(&b->cfg, 1, 3000, sig, sig_len, b->id_good), OTA_OK);
    /* Swapped for another type's image after the request: the boot check refuses it. */
    put_counted(b, 1, V(2, 0), 0, other, sig, &sig_len);
    ota_boot_record_t rec;
    assert_int_equal(ota_boot_state(&b->cfg, &rec), OTA_OK);
    memcpy(rec.sig, sig, sig_len);
    rec.sig_len = (uint8_t)sig_len;
    assert_int_equal(ota_boot_record_store(&b->flash, b->layout.record_addr, &rec), OTA_OK);
    ota_boot_result_t r = boot(b);
    assert_int_equal(r.slot, 0);
    assert_int_equal(r.record.state, OTA_BOOT_STATE_REVERTED);
}

static void record_format_follows_the_counter(void **state)
{
    (void)state;
    ota_boot_record_t rec, back;
    memset(&rec, 0, sizeof rec);
    uint8_t raw[OTA_BOOT_RECORD_SIZE];
    assert_int_equal(ota_boot_record_encode(&rec, raw), OTA_OK);
    assert_int_equal(raw[4], OTA_BOOT_RECORD_FORMAT); /* what earlier code reads */
    rec.min_counter = 300;
    assert_int_equal(ota_boot_record_encode(&rec, raw), OTA_OK);
    assert_int_equal(raw[4], OTA_BOOT_RECORD_FORMAT_2);
    assert_int_equal(ota_boot_record_decode(raw, &back), OTA_OK);
    assert_int_equal(back.min_counter, 300);
    /* Format 2 without a counter, or format 1 with one, is not a record this code writes. */
    raw[4] = OTA_BOOT_RECORD_FORMAT;
    ota_put_le32(raw + 112, ota_crc32(0, raw, 112));
    assert_int_equal(ota_boot_record_decode(raw, &back), OTA_OK);
    assert_int_equal(back.min_counter, 0); /* format 1: reserved bytes, no counter */
    rec.min_counter = 0;
    assert_int_equal(ota_boot_record_encode(&rec, raw), OTA_OK);
    raw[4] = OTA_BOOT_RECORD_FORMAT_2;
    ota_put_le32(raw + 112, ota_crc32(0, raw, 112));
    assert_int_equal(ota_boot_record_decode(raw, &back), OTA_ERR_CORRUPT);
}

static void reject_keeps_minimum_version(void **state)
{
    bench_t *b = *state;
    program_slot(b, 1, b->img[2], sizeof b->img[2]);
    assert_int_equal(
        ota_boot_request_trial(&b->cfg, 1, sizeof b->img[2], b->sig[2], b->sig_len[2], b->id_good),
        OTA_OK);
    assert_int_equal(
        ota_boot_request_trial(&b->cfg, 1, sizeof b->img[2], b->sig[2], b->sig_len[2], b->id_good),
        OTA_ERR_WRONG_STATE);
    assert_int_equal(boot(b).slot, 1);
    assert_int_equal(ota_boot_reject(&b->cfg), OTA_OK);
    assert_int_equal(ota_boot_reject(&b->cfg), OTA_ERR_WRONG_STATE);
    assert_int_equal(ota_boot_confirm(&b->cfg), OTA_ERR_WRONG_STATE);
    ota_boot_result_t r = boot(b);
    assert_int_equal(r.slot, 0);
    assert_int_equal(r.record.min_version, 0);
}

static void trial_with_bad_signature_never_boots(void **state)
{
    bench_t *b = *state;
    program_slot(b, 1, b->img[1], sizeof b->img[1]);
    /* The signature of another image. */
    assert_int_equal(
        ota_boot_request_trial(&b->cfg, 1, sizeof b->img[1], b->sig[2], b->sig_len[2], b->id_good),
        OTA_OK);
    ota_boot_result_t r = boot(b);
    assert_int_equal(r.slot, 0);
    assert_int_equal(r.pending, 0);
    assert_int_equal(r.record.state, OTA_BOOT_STATE_REVERTED);
}

static void trial_corrupted_after_request_never_boots(void **state)
{
    bench_t *b = *state;
    uint8_t img[5000];
    memcpy(img, b->img[1], sizeof img);
    img[4000] = 0x00; /* one byte differs from what was signed (0x11 -> 0x00) */
    program_slot(b, 1, img, sizeof img);
    assert_int_equal(
        ota_boot_request_trial(&b->cfg, 1, sizeof img, b->sig[1], b->sig_len[1], b->id_good),
        OTA_OK);
    assert_int_equal(boot(b).slot, 0);
}

static void request_checks_arguments_and_header(void **state)
{
    bench_t *b = *state;
    program_slot(b, 1, b->img[1], sizeof b->img[1]);
    assert_int_equal(
        ota_boot_request_trial(&b->cfg, 0, sizeof b->img[1], b->sig[1], b->sig_len[1], b->id_good),
        OTA_ERR_INVALID_ARG); /* the active slot */
    assert_int_equal(
        ota_boot_request_trial(&b->cfg, 2, sizeof b->img[1], b->sig[1], b->sig_len[1], b->id_good),
        OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_boot_request_trial(&b->cfg, 1, sizeof b->img[1], NULL, 0, b->id_good),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_boot_request_trial(&b->cfg, 1, 4999, b->sig[1], b->sig_len[1], b->id_good),
                     OTA_ERR_BAD_IMAGE);
    assert_int_equal(ota_boot_request_trial(NULL, 1, 5000, b->sig[1], b->sig_len[1], b->id_good),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_boot_decide(&b->cfg, NULL), OTA_ERR_INVALID_ARG);
}

static void confirm_refused_before_trial_boots(void **state)
{
    bench_t *b = *state;
    program_slot(b, 1, b->img[1], sizeof b->img[1]);
    assert_int_equal(
        ota_boot_request_trial(&b->cfg, 1, sizeof b->img[1], b->sig[1], b->sig_len[1], b->id_good),
        OTA_OK);
    /* Activated but never checked and started by the bootloader. */
    assert_int_equal(ota_boot_confirm(&b->cfg), OTA_ERR_WRONG_STATE);
    ota_boot_result_t r = boot(b);
    assert_int_equal(r.pending, 1);
    assert_int_equal(r.record.trial_booted, 1);
    assert_int_equal(ota_boot_confirm(&b->cfg), OTA_OK);
}

static void trial_checked_with_its_own_signer(void **state)
{
    bench_t *b = *state;
    program_slot(b, 1, b->img[1], sizeof b->img[1]);
    /* Recorded as signed by a key the bootloader does not have: never boots. */
    assert_int_equal(ota_boot_request_trial(&b->cfg, 1, sizeof b->img[1], b->sig[1], b->sig_len[1],
                                            b->id_good ^ 1u),
                     OTA_OK);
    ota_boot_result_t r = boot(b);
    assert_int_equal(r.slot, 0);
    assert_int_equal(r.record.state, OTA_BOOT_STATE_REVERTED);
    /* Recorded as signed by the other key, which did not sign it: never boots. */
    assert_int_equal(
        ota_boot_request_trial(&b->cfg, 1, sizeof b->img[1], b->sig[1], b->sig_len[1], b->id_other),
        OTA_OK);
    r = boot(b);
    assert_int_equal(r.slot, 0);
    /* The right key boots it, even from a table in another order. */
    assert_int_equal(
        ota_boot_request_trial(&b->cfg, 1, sizeof b->img[1], b->sig[1], b->sig_len[1], b->id_good),
        OTA_OK);
    ota_verify_signer_t swapped[2] = {b->signers[1], b->signers[0]};
    b->cfg.signers = swapped;
    r = boot(b);
    b->cfg.signers = b->signers;
    assert_int_equal(r.slot, 1);
    assert_int_equal(r.pending, 1);
}

/* A flash whose reads fail in one range, as ECC flash does after a torn program. */
typedef struct flaky {
    ota_flash_t inner;
    uint32_t bad_start;
    uint32_t bad_len;
} flaky_t;

static flaky_t g_flaky;

static ota_err_t flaky_read(void *ctx, uint32_t addr, void *buf, uint32_t len)
{
    (void)ctx;
    if (addr < g_flaky.bad_start + g_flaky.bad_len && g_flaky.bad_start < addr + len) {
        return OTA_ERR_IO;
    }
    return g_flaky.inner.read(g_flaky.inner.ctx, addr, buf, len);
}

static void use_flaky(bench_t *b, uint32_t bad_start, uint32_t bad_len)
{
    g_flaky.inner = b->flash;
    g_flaky.bad_start = bad_start;
    g_flaky.bad_len = bad_len;
    b->flash.read = flaky_read;
}

static void unreadable_copy_falls_back_and_is_repaired(void **state)
{
    bench_t *b = *state;
    ota_boot_record_t r = sample_record();
    ota_boot_record_t got;
    uint8_t which = 9;
    r.state = OTA_BOOT_STATE_CONFIRMED;
    assert_int_equal(ota_boot_record_store(&b->flash, b->layout.record_addr, &r),
                     OTA_OK); /* copy 0 */
    r.min_version = V(1, 1);
    assert_int_equal(ota_boot_record_store(&b->flash, b->layout.record_addr, &r),
                     OTA_OK); /* copy 1 */
    /* Copy 0 (the older one) cannot be read: copy 1 is the state. */
    use_flaky(b, b->layout.record_addr[0], OTA_BOOT_RECORD_SIZE);
    assert_int_equal(ota_boot_record_load(&b->flash, b->layout.record_addr, &got, &which), OTA_OK);
    assert_int_equal(which, 1);
    assert_int_equal(got.min_version, V(1, 1));
    /* The next store goes to the unreadable copy and repairs it. */
    b->flash.read = g_flaky.inner.read;
    r.min_version = V(1, 2);
    assert_int_equal(ota_boot_record_store(&b->flash, b->layout.record_addr, &r), OTA_OK);
    assert_int_equal(ota_boot_record_load(&b->flash, b->layout.record_addr, &got, &which), OTA_OK);
    assert_int_equal(which, 0);
    assert_int_equal(got.min_version, V(1, 2));
    /* The newer copy unreadable: the older state, still legal, is used. */
    use_flaky(b, b->layout.record_addr[0], OTA_BOOT_RECORD_SIZE);
    assert_int_equal(ota_boot_record_load(&b->flash, b->layout.record_addr, &got, &which), OTA_OK);
    assert_int_equal(got.min_version, V(1, 1));
    /* Both unreadable: no state, and the bootloader names no slot. */
    g_flaky.bad_len = b->layout.record_addr[1] + SECTOR - b->layout.record_addr[0];
    ota_boot_result_t res;
    assert_int_equal(ota_boot_decide(&b->cfg, &res), OTA_ERR_IO);
    assert_int_equal(res.slot, OTA_BOOT_NO_SLOT);
}

static void unreadable_trial_is_not_a_verdict(void **state)
{
    bench_t *b = *state;
    program_slot(b, 1, b->img[1], sizeof b->img[1]);
    assert_int_equal(
        ota_boot_request_trial(&b->cfg, 1, sizeof b->img[1], b->sig[1], b->sig_len[1], b->id_good),
        OTA_OK);
    use_flaky(b, b->layout.slot_addr[1] + 1000u, 1);
    ota_boot_result_t r;
    assert_int_equal(ota_boot_decide(&b->cfg, &r), OTA_ERR_IO);
    assert_int_equal(r.slot, 0); /* the old image, safe */
    assert_int_equal(r.pending, 0);
    b->flash.read = g_flaky.inner.read;
    r = boot(b); /* the trial was not thrown away */
    assert_int_equal(r.slot, 1);
    assert_int_equal(r.pending, 1);
    assert_int_equal(r.record.attempts_left, OTA_BOOT_DEFAULT_ATTEMPTS - 1u);
}

static void transient_read_error_changes_nothing(void **state)
{
    bench_t *b = *state;
    ota_boot_record_t r = sample_record();
    ota_boot_record_t got;
    uint8_t which = 9;
    r.state = OTA_BOOT_STATE_CONFIRMED;
    assert_int_equal(ota_boot_record_store(&b->flash, b->layout.record_addr, &r), OTA_OK);
    r.min_version = V(1, 1);
    assert_int_equal(ota_boot_record_store(&b->flash, b->layout.record_addr, &r), OTA_OK);
    /* One read of the newest copy (copy 1, the second read) fails once. */
    ota_flashsim_fault_t f = {OTA_FLASHSIM_FAULT_READ_ERROR, 1, OTA_FLASHSIM_TEAR_OLD, 0};
    ota_flashsim_power_on(&b->sim);
    ota_flashsim_set_fault(&b->sim, &f);
    assert_int_equal(ota_boot_record_load(&b->flash, b->layout.record_addr, &got, &which), OTA_OK);
    assert_int_equal(which, 1);
    assert_int_equal(got.min_version, V(1, 1));
}

static void unreadable_torn_first_record_is_a_new_device(void **state)
{
    bench_t *b = *state;
    uint8_t garbage[OTA_BOOT_RECORD_SIZE];
    memset(garbage, 0x5a, sizeof garbage);
    assert_int_equal(b->flash.program(b->flash.ctx, b->layout.record_addr[0], garbage, 40), OTA_OK);
    /* The torn copy reads back with an ECC error every time; copy 1 is erased. */
    use_flaky(b, b->layout.record_addr[0], OTA_BOOT_RECORD_SIZE);
    ota_boot_result_t r = boot(b);
    assert_int_equal(r.slot, 0);
    assert_int_equal(r.record.state, OTA_BOOT_STATE_NONE);
    /* The first store, made while the torn copy is unreadable, goes to that
     * copy and repairs it (its erase clears the ECC error). */
    b->flash.read = g_flaky.inner.read;
    program_slot(b, 1, b->img[1], sizeof b->img[1]);
    use_flaky(b, b->layout.record_addr[0], OTA_BOOT_RECORD_SIZE);
    assert_int_equal(
        ota_boot_request_trial(&b->cfg, 1, sizeof b->img[1], b->sig[1], b->sig_len[1], b->id_good),
        OTA_OK);
    b->flash.read = g_flaky.inner.read;
    uint8_t which = 9;
    ota_boot_record_t got;
    assert_int_equal(ota_boot_record_load(&b->flash, b->layout.record_addr, &got, &which), OTA_OK);
    assert_int_equal(which, 0);
    assert_int_equal(got.state, OTA_BOOT_STATE_TRIAL);
}

static void torn_first_write_is_still_a_new_device(void **state)
{
    bench_t *b = *state;
    uint8_t garbage[OTA_BOOT_RECORD_SIZE];
    memset(garbage, 0x5a, sizeof garbage);
    assert_int_equal(b->flash.program(b->flash.ctx, b->layout.record_addr[0], garbage, 40), OTA_OK);
    ota_boot_result_t r = boot(b);
    assert_int_equal(r.slot, 0);
    assert_int_equal(r.record.state, OTA_BOOT_STATE_NONE);
    assert_int_equal(r.version, V(1, 0));
}

static void corrupt_copies_boot_nothing(void **state)
{
    bench_t *b = *state;
    uint8_t garbage[OTA_BOOT_RECORD_SIZE];
    ota_boot_result_t r;
    memset(garbage, 0x5a, sizeof garbage);
    for (uint32_t i = 0; i < 2u; i++) {
        assert_int_equal(
            b->flash.program(b->flash.ctx, b->layout.record_addr[i], garbage, sizeof garbage),
            OTA_OK);
    }
    assert_int_equal(ota_boot_decide(&b->cfg, &r), OTA_ERR_CORRUPT);
    assert_int_equal(r.slot, OTA_BOOT_NO_SLOT);
}

static void new_device_without_image_boots_nothing(void **state)
{
    bench_t *b = *state;
    ota_boot_result_t r;
    assert_int_equal(b->flash.erase(b->flash.ctx, b->layout.slot_addr[0], b->layout.slot_size),
                     OTA_OK);
    assert_int_equal(ota_boot_decide(&b->cfg, &r), OTA_ERR_BAD_IMAGE);
    assert_int_equal(r.slot, OTA_BOOT_NO_SLOT);
}

static void layout_checks(void **state)
{
    bench_t *b = *state;
    ota_boot_layout_t l = b->layout;
    assert_int_equal(ota_boot_layout_check(&b->flash, &l), OTA_OK);
    assert_int_equal(l.slot_size, 14u * SECTOR);
    l.slot_addr[1] = l.slot_addr[0] + SECTOR; /* overlapping slots */
    assert_int_equal(ota_boot_layout_check(&b->flash, &l), OTA_ERR_INVALID_ARG);
    l = b->layout;
    l.record_addr[1] = l.record_addr[0] + 16u; /* not a sector start */
    assert_int_equal(ota_boot_layout_check(&b->flash, &l), OTA_ERR_INVALID_ARG);
    l = b->layout;
    l.slot_size = FLASH_SIZE; /* beyond the device */
    assert_int_equal(ota_boot_layout_check(&b->flash, &l), OTA_ERR_INVALID_ARG);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(image_header_round_trip_and_corruption),
        cmocka_unit_test(record_round_trip_and_every_bit_flip),
        cmocka_unit_test(record_fields_out_of_range_refused),
        T(record_store_alternates_copies),
        T(record_sequence_wraps),
        T(new_device_boots_slot0_without_writing),
        T(trial_budget_then_revert),
        T(confirm_raises_minimum_version_and_swaps_active),
        T(reject_keeps_minimum_version),
        T(security_counter_is_the_floor_once_confirmed),
        T(image_for_another_device_type_never_boots),
        cmocka_unit_test(record_format_follows_the_counter),
        T(trial_with_bad_signature_never_boots),
        T(trial_corrupted_after_request_never_boots),
        T(request_checks_arguments_and_header),
        T(confirm_refused_before_trial_boots),
        T(trial_checked_with_its_own_signer),
        T(unreadable_copy_falls_back_and_is_repaired),
        T(unreadable_trial_is_not_a_verdict),
        T(torn_first_write_is_still_a_new_device),
        T(transient_read_error_changes_nothing),
        T(unreadable_torn_first_record_is_a_new_device),
        T(corrupt_copies_boot_nothing),
        T(new_device_without_image_boots_nothing),
        T(layout_checks),
    };
    return cmocka_run_group_tests_name("boot", tests, NULL, NULL);
}
