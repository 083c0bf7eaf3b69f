/*
 * otter: a device built with RSA signatures (OTA_SIG_RSA, ota_test_config.h)
 * takes a sig-sha256-rsa image end to end on the flash port: close verifies
 * it (hashed while written, and read back), activation records its 256-byte
 * signature (boot record format 2), and the bootloader checks it again before
 * the trial boot. A tampered image or signature is refused at close, a job
 * that names the other method is refused before anything is read, and a
 * flash changed after activation makes the bootloader revert.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "flashsim_device.h"
#include "ota_test_image.h"
#include "ota_test_sign.h"

#define KIB 1024u
#define BLOCK 1024u
#define IMAGE_LEN (20u * BLOCK + 300u)
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
    /* RSA-2048 PKCS#1 v1.5 over SHA-256 with the test RSA key. */
    assert_int_equal(ota_test_sign_sha256_ecdsa(OTA_TEST_KEYS_DIR "/rsa-test.key", fx->image,
                                                IMAGE_LEN, fx->sig, sizeof fx->sig, &fx->sig_len),
                     0);
    assert_int_equal(fx->sig_len, 256);
    assert_int_equal(flashsim_device_create(&fx->dev, &variant, factory, sizeof factory), 0);
    /* The device trusts the RSA signer (its certificate) under the usual name. */
    assert_int_equal(ota_test_read_file(OTA_TEST_KEYS_DIR "/rsa-test.crt", fx->dev.pem,
                                        sizeof fx->dev.pem, &fx->dev.signer.pem_len),
                     0);
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

/* Write img (the last block first when backwards: close reads the slot back)
 * under method and sig, and close it. */
static ota_err_t write_and_close(fixture_t *fx, const uint8_t *img, ota_sig_method_t method,
                                 const uint8_t *sig, int backwards)
{
    ota_pal_file_t f = ota_test_image_file(IMAGE_LEN, sig, fx->sig_len, "codesign-test.crt");
    f.sig_method = method;
    assert_int_equal(fx->pal.create_file(fx->pal.ctx, &f), OTA_OK);
    const uint32_t blocks = (IMAGE_LEN + BLOCK - 1u) / BLOCK;
    for (uint32_t k = 0; k < blocks; k++) {
        uint32_t b = backwards ? blocks - 1u - k : k;
        uint32_t off = b * BLOCK;
        uint32_t n = IMAGE_LEN - off < BLOCK ? IMAGE_LEN - off : BLOCK;
        assert_int_equal(fx->pal.write_block(fx->pal.ctx, off, img + off, n), (int32_t)n);
    }
    return fx->pal.close_file(fx->pal.ctx, &f);
}

static void rsa_image_verified_activated_and_booted(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(write_and_close(fx, fx->image, OTA_SIG_SHA256_RSA, fx->sig, 1), OTA_OK);
    assert_int_equal(write_and_close(fx, fx->image, OTA_SIG_SHA256_RSA, fx->sig, 0), OTA_OK);
    assert_int_equal(fx->pal.activate(fx->pal.ctx), OTA_OK);
    /* The bootloader checks the RSA signature again and boots the trial. */
    assert_int_equal(flashsim_device_boot(&fx->dev, &fx->pal), OTA_OK);
    assert_int_equal(fx->dev.boot.pending, 1);
    assert_int_equal(fx->dev.boot.version, V1_1_0);
    assert_true(flashsim_device_running_is(&fx->dev, fx->image, IMAGE_LEN));
    assert_int_equal(fx->pal.set_image_state(fx->pal.ctx, OTA_IMAGE_STATE_ACCEPTED), OTA_OK);
    assert_int_equal(flashsim_device_boot(&fx->dev, &fx->pal), OTA_OK);
    assert_int_equal(fx->dev.boot.pending, 0);
    assert_int_equal(fx->dev.boot.version, V1_1_0);
}

static void tampered_image_or_signature_refused(void **state)
{
    fixture_t *fx = *state;
    static uint8_t bad[IMAGE_LEN];
    uint8_t sig[OTA_PAL_SIGNATURE_MAX];
    memcpy(bad, fx->image, IMAGE_LEN);
    bad[IMAGE_LEN - 5u] ^= 0x20u;
    assert_int_equal(write_and_close(fx, bad, OTA_SIG_SHA256_RSA, fx->sig, 0),
                     OTA_ERR_SIGNATURE_CHECK_FAILED);
    assert_int_equal(write_and_close(fx, bad, OTA_SIG_SHA256_RSA, fx->sig, 1),
                     OTA_ERR_SIGNATURE_CHECK_FAILED);
    memcpy(sig, fx->sig, fx->sig_len);
    sig[fx->sig_len - 1u] ^= 0x01u;
    assert_int_equal(write_and_close(fx, fx->image, OTA_SIG_SHA256_RSA, sig, 0),
                     OTA_ERR_SIGNATURE_CHECK_FAILED);
    /* The job names ECDSA, the signer is RSA. */
    assert_int_equal(write_and_close(fx, fx->image, OTA_SIG_SHA256_ECDSA, fx->sig, 0),
                     OTA_ERR_BAD_SIGNER_CERT);
    assert_int_equal(fx->pal.activate(fx->pal.ctx), OTA_ERR_ACTIVATE_FAILED);
    assert_int_equal(flashsim_device_boot(&fx->dev, &fx->pal), OTA_OK);
    assert_int_equal(fx->dev.boot.version, V1_0_0);
}

static void flash_changed_after_activation_reverts(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(write_and_close(fx, fx->image, OTA_SIG_SHA256_RSA, fx->sig, 0), OTA_OK);
    assert_int_equal(fx->pal.activate(fx->pal.ctx), OTA_OK);
    /* One bit of the new image cleared in flash (NOR programs 1 -> 0 only). */
    const ota_flash_t *fl = &fx->dev.cfg.flash;
    uint32_t at = fx->dev.cfg.layout.slot_addr[1] + IMAGE_LEN / 2u;
    at -= at % fl->write_unit;
    uint8_t unit[8];
    assert_int_equal(fl->read(fl->ctx, at, unit, sizeof unit), OTA_OK);
    for (size_t i = 0; i < sizeof unit; i++) {
        unit[i] = 0x00u;
    }
    ota_flashsim_t *sim = &fx->dev.sim;
    memcpy(sim->mem + at, unit, sizeof unit); /* outside the driver: corruption */
    assert_int_equal(flashsim_device_boot(&fx->dev, &fx->pal), OTA_OK);
    assert_int_equal(fx->dev.boot.pending, 0);
    assert_int_equal(fx->dev.boot.version, V1_0_0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(rsa_image_verified_activated_and_booted, setup, teardown),
        cmocka_unit_test_setup_teardown(tampered_image_or_signature_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(flash_changed_after_activation_reverts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
