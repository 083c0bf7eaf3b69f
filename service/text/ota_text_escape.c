/* Text from outside made safe for a terminal or a log line (see ota_text_escape.h). */
#include "ota_text_escape.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/*
 * Length of the well-formed UTF-8 sequence at s (at most n bytes), with its
 * code point in *cp; 0 when s does not start one (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF).
 */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t len;
    uint32_t c, min;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    } else if ((s[0] & 0xe0) == 0xc0) {
        len = 2, c = s[0] & 0x1fu, min = 0x80;
    } else if ((s[0] & 0xf0) == 0xe0) {
        len = 3, c = s[0] & 0x0fu, min = 0x800;
    } else if ((s[0] & 0xf8) == 0xf0) {
        len = 4, c = s[0] & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        c = (c << 6) | (s[i] & 0x3fu);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
        return 0;
    }
    *cp = c;
    return len;
}

/* Whether a code point is one to show as an escape. */
static int escaped_code_point(uint32_t cp)
{
    return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) ||
           (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 ||
           cp == 0x2029;
}

/* Both escapers: json = 0 for "\xHH" escapes, 1 for JSON string escapes. */
static size_t escape(const char *in, size_t len, char *out, size_t cap, int json)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0, n = 0;
    if (cap == 0) {
        return 0;
    }
    while (i < len) {
        uint32_t cp = 0;
        size_t seq = utf8_seq(s + i, len - i, &cp);
        char esc[8];
        const char *piece = (const char *)s + i;
        size_t piece_len = seq;
        if (seq == 0 && json) {
            memcpy(esc, "\\ufffd", 6);
            piece = esc, piece_len = 6, seq = 1;
        } else if (seq == 0 || (!json && seq == 1 && escaped_code_point(cp))) {
            snprintf(esc, sizeof esc, "\\x%02x", s[i]);
            piece = esc, piece_len = 4, seq = 1;
        } else if (escaped_code_point(cp)) {
            snprintf(esc, sizeof esc, "\\u%04x", (unsigned)cp);
            piece = esc, piece_len = 6;
        }
        if (piece_len >= cap - n) {
            break;
        }
        memcpy(out + n, piece, piece_len);
        n += piece_len;
        i += seq;
    }
    out[n] = '\0';
    return i;
}

size_t ota_text_escape(const char *in, size_t len, char *out, size_t cap)
{
    return escape(in, len, out, cap, 0);
}

size_t ota_text_escape_json(const char *in, size_t len, char *out, size_t cap)
{
    return escape(in, len, out, cap, 1);
}

int ota_text_needs_escape(const char *in)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t len = strlen(in);
    for (size_t i = 0; i < len;) {
        uint32_t cp = 0;
        size_t seq = utf8_seq(s + i, len - i, &cp);
        if (seq == 0 || escaped_code_point(cp)) {
            return 1;
        }
        i += seq;
    }
    return 0;
}
