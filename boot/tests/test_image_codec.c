/* Unit tests: the version grammar and the image header codec (formats 1 and 2). */
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "otter/ota_bytes.h"
#include "otter/ota_crc32.h"
#include "otter/ota_image_header.h"
#include "otter/ota_version.h"

/* The oracle: the grammar written as a POSIX regular expression, ranges by strtoul. */
static int oracle_parse(const regex_t *re, const char *text, uint32_t *out)
{
    regmatch_t m[4];
    if (regexec(re, text, 4, m, 0) != 0) {
        return -1;
    }
    unsigned long part[3];
    const unsigned long max[3] = {255, 255, 65535};
    for (int i = 0; i < 3; i++) {
        if (m[i + 1].rm_eo - m[i + 1].rm_so > 5) {
            return -1;
        }
        part[i] = strtoul(text + m[i + 1].rm_so, NULL, 10);
        if (part[i] > max[i]) {
            return -1;
        }
    }
    *out = (uint32_t)(part[0] << 24 | part[1] << 16 | part[2]);
    return 0;
}

static void versions_agree_with_the_oracle(void **state)
{
    (void)state;
    regex_t re;
    assert_int_equal(
        regcomp(&re, "^(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)$", REG_EXTENDED), 0);
    /* Every string of up to 6 characters over an alphabet with the grammar's
     * characters and its usual intruders. */
    static const char alphabet[] = "0125.9 +";
    const size_t k = sizeof alphabet - 1u;
    char text[8];
    unsigned long checked = 0, accepted = 0;
    for (size_t len = 0; len <= 6u; len++) {
        size_t total = 1;
        for (size_t i = 0; i < len; i++) {
            total *= k;
        }
        for (size_t n = 0; n < total; n++) {
            size_t v = n;
            for (size_t i = 0; i < len; i++) {
                text[i] = alphabet[v % k];
                v /= k;
            }
            text[len] = '\0';
            uint32_t a = 0xdeadbeefu, b = 0xdeadbeefu;
            int ra = ota_version_parse(text, &a);
            int rb = oracle_parse(&re, text, &b);
            if (ra != rb || a != b) {
                fail_msg("'%s': codec %d/%08x, oracle %d/%08x", text, ra, a, rb, b);
            }
            checked++;
            accepted += ra == 0;
        }
    }
    assert_true(accepted > 100u && checked > 200000u);
    /* Long and out-of-range parts, and the texts other parsers used to accept. */
    static const char *const cases[] = {
        "255.255.65535", "256.0.0",        "0.256.0", "0.0.65536", "1.2.3",  " 1.2.3",
        "1.2.3 ",        "1.2.3\n",        "+1.2.3",  "-1.2.3",    "1.2",    "1.2.3.4",
        "01.2.3",        "1.02.3",         "1.2.03",  "1..3",      "v1.2.3", "1.2.99999",
        "1.2.000",       "4294967297.0.0", "1.2.3x",  "",          "0.0.0",  "00000.0.0",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t a = 0, b = 0;
        int ra = ota_version_parse(cases[i], &a);
        int rb = oracle_parse(&re, cases[i], &b);
        if (ra != rb || a != b) {
            fail_msg("'%s': codec %d/%08x, oracle %d/%08x", cases[i], ra, a, rb, b);
        }
    }
    regfree(&re);
    uint32_t v = 0;
    assert_int_equal(ota_version_parse(" 1.2.3", &v), -1); /* sscanf's "%u" took it */
    assert_int_equal(ota_version_parse(NULL, &v), -1);
    assert_int_equal(ota_version_parse_n("1.2.3junk", 5, &v), 0);
    assert_int_equal(v, ota_version_make(1, 2, 3));
}

static void versions_format_and_parse_back(void **state)
{
    (void)state;
    char text[OTA_VERSION_TEXT_MAX];
    assert_int_equal(ota_version_format(0xffffffffu, text), 13);
    assert_string_equal(text, "255.255.65535");
    assert_int_equal(ota_version_format(0, text), 5);
    assert_string_equal(text, "0.0.0");
    uint32_t x = 0x12345678u;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        char ref[32];
        snprintf(ref, sizeof ref, "%u.%u.%u", x >> 24, (x >> 16) & 0xffu, x & 0xffffu);
        ota_version_format(x, text);
        assert_string_equal(text, ref);
        uint32_t back = 0;
        assert_int_equal(ota_version_parse(text, &back), 0);
        assert_int_equal(back, x);
    }
}

static void header_format_1_unchanged(void **state)
{
    (void)state;
    /* The bytes format 1 always had: no counter, no type. */
    ota_image_header_t in = {.version = ota_version_make(1, 2, 3), .image_size = 1000};
    uint8_t raw[OTA_IMAGE_HEADER_SIZE];
    assert_int_equal(ota_image_header_encode(&in, raw), OTA_OK);
    uint8_t want[OTA_IMAGE_HEADER_SIZE] = {'O', 'T', 'I', 'M', 32, 0, 1, 0, 3, 0, 2, 1, 0xe8, 3};
    ota_put_le32(want + 28, ota_crc32(0, want, 28));
    assert_memory_equal(raw, want, sizeof raw);
    ota_image_header_t out;
    assert_int_equal(ota_image_header_decode(raw, sizeof raw, &out), OTA_OK);
    assert_int_equal(out.format, 1);
    assert_int_equal(out.security_counter, 0);
    assert_int_equal(out.device_type_tag, 0);
    /* Format 1's reserved bytes were never checked: an image with something
     * there still reads, without a counter or type. */
    raw[21] = 7;
    raw[25] = 9;
    ota_put_le32(raw + 28, ota_crc32(0, raw, 28));
    assert_int_equal(ota_image_header_decode(raw, sizeof raw, &out), OTA_OK);
    assert_int_equal(out.security_counter, 0);
    assert_int_equal(out.device_type_tag, 0);
}

static void header_format_2_round_trip_and_refusals(void **state)
{
    (void)state;
    uint32_t tag = 0;
    assert_int_equal(ota_device_type_tag("sim-a", 5, &tag), OTA_OK);
    assert_int_equal(tag, ota_crc32(0, (const uint8_t *)"sim-a", 5));
    ota_image_header_t in = {.version = ota_version_make(3, 0, 1),
                             .image_size = 4096,
                             .security_counter = 7,
                             .device_type_tag = tag};
    uint8_t raw[OTA_IMAGE_HEADER_SIZE];
    ota_image_header_t out;
    assert_int_equal(ota_image_header_encode(&in, raw), OTA_OK);
    assert_int_equal(ota_get_le16(raw + 6), 2);
    assert_int_equal(ota_image_header_decode(raw, sizeof raw, &out), OTA_OK);
    assert_int_equal(out.format, 2);
    assert_int_equal(out.version, in.version);
    assert_int_equal(out.security_counter, 7);
    assert_int_equal(out.device_type_tag, tag);
    for (uint32_t bit = 0; bit < 8u * sizeof raw; bit++) {
        raw[bit / 8u] ^= (uint8_t)(1u << (bit % 8u));
        assert_int_equal(ota_image_header_decode(raw, sizeof raw, &out), OTA_ERR_BAD_IMAGE);
        raw[bit / 8u] ^= (uint8_t)(1u << (bit % 8u));
    }
    /* Reserved bytes of format 2 must be 0; a format 2 that says nothing new is refused. */
    raw[22] = 1;
    ota_put_le32(raw + 28, ota_crc32(0, raw, 28));
    assert_int_equal(ota_image_header_decode(raw, sizeof raw, &out), OTA_ERR_BAD_IMAGE);
    memset(raw + 20, 0, 8);
    ota_put_le32(raw + 28, ota_crc32(0, raw, 28));
    assert_int_equal(ota_image_header_decode(raw, sizeof raw, &out), OTA_ERR_BAD_IMAGE);
    /* Format 3 is unknown. */
    assert_int_equal(ota_image_header_encode(&in, raw), OTA_OK);
    ota_put_le16(raw + 6, 3);
    ota_put_le32(raw + 28, ota_crc32(0, raw, 28));
    assert_int_equal(ota_image_header_decode(raw, sizeof raw, &out), OTA_ERR_BAD_IMAGE);
    /* Device type names as the service allows them, nothing else. */
    char long_name[OTA_DEVICE_TYPE_MAX + 1];
    memset(long_name, 'a', sizeof long_name);
    assert_int_equal(ota_device_type_tag(long_name, OTA_DEVICE_TYPE_MAX, &tag), OTA_OK);
    assert_int_equal(ota_device_type_tag(long_name, sizeof long_name, &tag), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_device_type_tag("", 0, &tag), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_device_type_tag("a b", 3, &tag), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_device_type_tag("a,b", 3, &tag), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_device_type_tag("A_b.9-z", 7, &tag), OTA_OK);
    assert_true(tag != 0u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(versions_agree_with_the_oracle),
        cmocka_unit_test(versions_format_and_parse_back),
        cmocka_unit_test(header_format_1_unchanged),
        cmocka_unit_test(header_format_2_round_trip_and_refusals),
    };
    return cmocka_run_group_tests_name("image_codec", tests, NULL, NULL);
}
