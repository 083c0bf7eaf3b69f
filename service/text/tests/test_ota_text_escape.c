/* Unit tests: text from outside made safe for a terminal or a log line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ota_text_escape.h"

/* Escapes a NUL-terminated text into a buffer big enough for all of it. */
static const char *esc(const char *in)
{
    static char out[1024];
    size_t len = strlen(in);
    assert_int_equal(ota_text_escape(in, len, out, sizeof out), len);
    return out;
}

/* The terminal attack a device can send in its statusDetails: OSC 52 (writes
 * the clipboard), cursor up and erase line, then a forged row. */
static void test_terminal_controls(void **state)
{
    (void)state;
    assert_string_equal(esc("\x1b]52;c;ZWNobyBwd25lZA==\x07\x1b[1A\x1b[2Kdev1 SUCCEEDED"),
                        "\\x1b]52;c;ZWNobyBwd25lZA==\\x07\\x1b[1A\\x1b[2Kdev1 SUCCEEDED");
    assert_string_equal(esc("a\r\nb\tc\x7f"), "a\\x0d\\x0ab\\x09c\\x7f");
    assert_int_equal(ota_text_needs_escape("a\nb"), 1);
    assert_int_equal(ota_text_needs_escape("\x7f"), 1);
    for (int c = 1; c < 0x20; c++) {
        char in[2] = {(char)c, 0};
        assert_int_equal(ota_text_needs_escape(in), 1);
        assert_int_equal(strlen(esc(in)), 4);
    }
}

/* A NUL inside the text is shown, never ends it. */
static void test_nul(void **state)
{
    (void)state;
    char out[32];
    assert_int_equal(ota_text_escape("a\0b", 3, out, sizeof out), 3);
    assert_string_equal(out, "a\\x00b");
}

/* C1 controls, bidi overrides and isolates, line separators: \uHHHH. */
static void test_unicode_controls(void **state)
{
    (void)state;
    assert_string_equal(esc("\xc2\x9b"
                            "31m"),
                        "\\u009b31m");
    assert_string_equal(esc("\xc2\x85"), "\\u0085");
    assert_string_equal(esc("ok \xe2\x80\xae"
                            "gnp.exe"),
                        "ok \\u202egnp.exe");
    assert_string_equal(esc("\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad"),
                        "\\u202a\\u202b\\u202c\\u202d");
    assert_string_equal(esc("\xe2\x81\xa6\xe2\x81\xa7\xe2\x81\xa8\xe2\x81\xa9"),
                        "\\u2066\\u2067\\u2068\\u2069");
    assert_string_equal(esc("a\xe2\x80\xa8"
                            "b\xe2\x80\xa9"),
                        "a\\u2028b\\u2029");
}

/* Bytes that are not well-formed UTF-8 are shown one by one. */
static void test_bad_utf8(void **state)
{
    (void)state;
    assert_string_equal(esc("\x9b"
                            "2J"),
                        "\\x9b2J");
    assert_string_equal(esc("\xc0\xaf"), "\\xc0\\xaf");                   /* overlong '/' */
    assert_string_equal(esc("\xed\xa0\x80"), "\\xed\\xa0\\x80");          /* a surrogate */
    assert_string_equal(esc("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80"); /* above U+10FFFF */
    assert_string_equal(esc("\xe2\x80"), "\\xe2\\x80");                   /* cut short */
    assert_int_equal(ota_text_needs_escape("\xff"), 1);
}

/* Printable ASCII and well-formed UTF-8 other than the above stay as they are. */
static void test_kept(void **state)
{
    (void)state;
    const char *keep = "dev1 v1.4.0 \"quoted\" \\x1b (already text) "
                       "\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92 \xe2\x80\x8f \xc2\xa0";
    assert_string_equal(esc(keep), keep);
    assert_int_equal(ota_text_needs_escape(keep), 0);
    assert_int_equal(ota_text_needs_escape(""), 0);
}

/* A short buffer: cut before a whole escape or character, always terminated;
 * the return says how far the input got. */
static void test_cut(void **state)
{
    (void)state;
    char out[6];
    assert_int_equal(ota_text_escape("ab\x1b"
                                     "cd",
                                     5, out, sizeof out),
                     2);
    assert_string_equal(out, "ab");
    assert_int_equal(ota_text_escape("abcd\xe2\x82\xac", 7, out, sizeof out), 4);
    assert_string_equal(out, "abcd");
    assert_int_equal(ota_text_escape("abcde", 5, out, sizeof out), 5);
    assert_string_equal(out, "abcde");
    assert_int_equal(ota_text_escape("abc", 3, out, 1), 0);
    assert_string_equal(out, "");
    assert_int_equal(ota_text_escape("abc", 3, out, 0), 0);
    assert_int_equal(ota_text_escape(NULL, 0, out, sizeof out), 0);
    assert_string_equal(out, "");
    /* The documented bound holds for the worst input. */
    char worst[64], big[64 * OTA_TEXT_ESCAPE_GROWTH + 1];
    memset(worst, 0x1b, sizeof worst);
    assert_int_equal(ota_text_escape(worst, sizeof worst, big, sizeof big), sizeof worst);
    assert_int_equal(strlen(big), sizeof big - 1);
}

/* The JSON form: escapes JSON reads back as the same characters. */
static void test_json(void **state)
{
    (void)state;
    char out[128];
    const char *in = "{\"d\":\"a\xe2\x80\xae"
                     "b\x7f\xc2\x9b\xe2\x81\xa6\xe2\x80\xa8\\u001b\xc3\xa9\"}";
    assert_int_equal(ota_text_escape_json(in, strlen(in), out, sizeof out), strlen(in));
    assert_string_equal(out, "{\"d\":\"a\\u202eb\\u007f\\u009b\\u2066\\u2028\\u001b\xc3\xa9\"}");
    assert_int_equal(ota_text_escape_json("\x9b\xff", 2, out, sizeof out), 2);
    assert_string_equal(out, "\\ufffd\\ufffd");
    assert_int_equal(ota_text_escape_json("a\x1b", 2, out, 7), 1); /* "\u001b" needs 7 */
    assert_string_equal(out, "a");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_terminal_controls),
        cmocka_unit_test(test_nul),
        cmocka_unit_test(test_unicode_controls),
        cmocka_unit_test(test_bad_utf8),
        cmocka_unit_test(test_kept),
        cmocka_unit_test(test_cut),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
