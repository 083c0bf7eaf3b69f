/* Unit tests: error names and codes, CRC-32 against zlib as the oracle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <zlib.h>

#include "otter/ota_crc32.h"
#include "otter/ota_err.h"

static void test_err_names_are_distinct(void **state)
{
    (void)state;
    for (int a = 0; a >= OTA_ERR_MIN_CODE; a--) {
        const char *na = ota_err_str((ota_err_t)a);
        assert_true(strncmp(na, "OTA_", 4) == 0);
        assert_string_not_equal(na, "OTA_ERR_UNKNOWN");
        for (int b = a - 1; b >= OTA_ERR_MIN_CODE; b--) {
            assert_string_not_equal(na, ota_err_str((ota_err_t)b));
            assert_int_not_equal(ota_err_pal_code((ota_err_t)a), ota_err_pal_code((ota_err_t)b));
        }
    }
    assert_string_equal(ota_err_str((ota_err_t)1), "OTA_ERR_UNKNOWN");
    assert_string_equal(ota_err_str((ota_err_t)(OTA_ERR_MIN_CODE - 1)), "OTA_ERR_UNKNOWN");
}

static void test_err_freertos_codes(void **state)
{
    (void)state;
    assert_int_equal(ota_err_pal_code(OTA_OK), 0);
    assert_int_equal(ota_err_pal_code(OTA_ERR_UNINITIALIZED), 0xe0);
    assert_int_equal(ota_err_pal_code(OTA_ERR_SIGNATURE_CHECK_FAILED), 0xe3);
    assert_int_equal(ota_err_pal_code(OTA_ERR_BAD_SIGNER_CERT), 0xe7);
    assert_int_equal(ota_err_pal_code(OTA_ERR_BAD_IMAGE_STATE), 0xe8);
    assert_int_equal(ota_err_pal_code(OTA_ERR_COMMIT_FAILED), 0xeb);
    assert_int_equal(ota_err_pal_code(OTA_ERR_FILE_CLOSE), 0xee);
    assert_int_equal(ota_err_pal_code(OTA_ERR_INVALID_ARG), 0xf0);
}

static void test_crc32_matches_zlib(void **state)
{
    (void)state;
    uint8_t buf[1024];
    uint32_t x = 12345u;
    for (size_t i = 0; i < sizeof buf; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 16);
    }
    assert_int_equal(ota_crc32(0, "123456789", 9), 0xcbf43926u);
    for (size_t len = 0; len <= sizeof buf; len += 37) {
        uint32_t ours = ota_crc32(0, buf, len);
        uLong theirs = crc32(0L, buf, (uInt)len);
        assert_int_equal(ours, (uint32_t)theirs);
        /* Chained calls give the same value as one call. */
        uint32_t half = ota_crc32(0, buf, len / 2);
        assert_int_equal(ota_crc32(half, buf + len / 2, len - len / 2), ours);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_names_are_distinct),
        cmocka_unit_test(test_err_freertos_codes),
        cmocka_unit_test(test_crc32_matches_zlib),
    };
    return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
