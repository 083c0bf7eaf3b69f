/* Unit tests: a device's failure reason decoded and put in words, for every
 * form the agent writes and for text it never writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ota_svc_reason.h"

/* The reason the agent writes for err (ota_report_failed's three forms). */
static void agent_reason(char *out, size_t cap, const char *prefix, ota_err_t err, int transfer,
                         unsigned sub)
{
    if (transfer) {
        snprintf(out, cap, "0x%08x: 0x%08x", (unsigned)ota_err_pal_code(err), sub);
    } else {
        snprintf(out, cap, "%s0x%08x", prefix, (unsigned)ota_err_pal_code(err));
    }
}

static void test_every_code_every_form(void **state)
{
    (void)state;
    for (int e = -1; e >= OTA_ERR_MIN_CODE; e--) {
        for (int form = 0; form < 3; form++) {
            char reason[40];
            agent_reason(reason, sizeof reason,
                         form == 0 ? "rejected: " : "aborted: ", (ota_err_t)e, form == 2, 17u);
            ota_err_t got = OTA_OK;
            assert_int_equal(ota_svc_reason_decode(reason, &got), 1);
            assert_int_equal(got, e);
        }
        const char *m = ota_svc_reason_meaning((ota_err_t)e);
        assert_true(strlen(m) > 5);
        for (int f = e - 1; f >= OTA_ERR_MIN_CODE; f--) {
            assert_string_not_equal(m, ota_svc_reason_meaning((ota_err_t)f));
        }
    }
    assert_string_equal(ota_svc_reason_meaning((ota_err_t)(OTA_ERR_MIN_CODE - 1)), "unknown error");
    assert_string_equal(ota_svc_reason_meaning((ota_err_t)1), "unknown error");
}

/* The report the field saw: activation refused by anti-rollback. The first
 * number is the code, the second the detail (never taken for the code). */
static void test_rollback_text(void **state)
{
    (void)state;
    char out[256];
    ota_svc_reason_text("0x000000f7: 0x00000000", out, sizeof out);
    assert_string_equal(out, "0x000000f7: 0x00000000 (OTA_ERR_ROLLBACK: anti-rollback: the "
                             "image's security counter is below the device's minimum; once a "
                             "device confirmed an image with a counter it refuses images "
                             "without one)");
    ota_svc_reason_text("rejected:   0x000000E3  ", out, sizeof out);
    assert_string_equal(out, "rejected: 0x000000E3 (OTA_ERR_SIGNATURE_CHECK_FAILED: the code "
                             "signature does not verify with the device's certificate)");
    /* The detail number equal to a code changes nothing: the first one counts. */
    ota_svc_reason_text("0x000000f8: 0x000000f7", out, sizeof out);
    assert_non_null(strstr(out, "(OTA_ERR_BAD_IMAGE: "));
}

/* Anything else stays as the device wrote it (spaces collapsed). */
static void test_other_text_kept(void **state)
{
    (void)state;
    static const char *const kept[] = {
        "accepted v1.2.3",
        "rejected: 0x00000010",       /* not a code of ours */
        "rejected: 0x000000e",        /* 7 digits */
        "rejected: 0x000000e30",      /* 9 digits */
        "rejected: 0x000000e3 extra", /* trailing text */
        "rejected: aborted: 0x000000e3",
        "0x000000f7", /* a transfer reason needs its detail */
        "0x000000f7: 0x0000000",
        "0x000000f7: 0x00000000x",
        "0x000000f7:0x00000000",
        "aborted: 0x00000000", /* OTA_OK is no failure */
        "",
    };
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        char out[128];
        ota_err_t e = OTA_ERR_IO;
        assert_int_equal(ota_svc_reason_decode(kept[i], &e), 0);
        assert_int_equal(e, OTA_ERR_IO);
        ota_svc_reason_text(kept[i], out, sizeof out);
        assert_string_equal(out, kept[i]);
    }
}

/* What could act on a terminal or forge a line is shown as escapes; spaces still collapse. */
static void test_controls_escaped(void **state)
{
    (void)state;
    char out[128];
    ota_svc_reason_text("ok\x1b]52;c;eA==\x07  \r\nFORGED   \xe2\x80\xae ", out, sizeof out);
    assert_string_equal(out, "ok\\x1b]52;c;eA==\\x07 \\x0d\\x0aFORGED \\u202e");
}

/* A small buffer cuts the text and still terminates it. */
static void test_small_buffer(void **state)
{
    (void)state;
    char out[30];
    memset(out, 'x', sizeof out);
    ota_svc_reason_text("0x000000f7: 0x00000000", out, sizeof out);
    assert_int_equal(strlen(out), sizeof out - 1);
    assert_int_equal(strncmp(out, "0x000000f7: 0x00000000 (OTA_E", sizeof out - 1), 0);
    char one[1] = {'x'};
    ota_svc_reason_text("rejected: 0x000000e3", one, sizeof one);
    assert_int_equal(one[0], '\0');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_code_every_form), cmocka_unit_test(test_rollback_text),
        cmocka_unit_test(test_other_text_kept),       cmocka_unit_test(test_controls_escaped),
        cmocka_unit_test(test_small_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
