/*
 * otter service: signed, expiring file URLs (see ota_url_sign.h).
 */
#include "ota_url_sign.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <mbedtls/md.h>

#define CANON_MAX (16u + 64u + OTA_URL_THING_MAX + OTA_URL_JOB_MAX + 32u)

static int clean_text(const char *s, size_t max)
{
    size_t n = strlen(s);
    size_t i;
    if (n == 0 || n > max) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f) {
            return 0;
        }
    }
    return 1;
}

int ota_url_sign(const uint8_t *key, size_t key_len, const char *path, const char *thing,
                 const char *job, int64_t expires, char sig[65])
{
    char canon[CANON_MAX];
    uint8_t mac[32];
    int n, i;
    if (key == NULL || key_len < OTA_URL_KEY_MIN || path == NULL || thing == NULL || job == NULL ||
        sig == NULL || !clean_text(path, 64) || !clean_text(thing, OTA_URL_THING_MAX) ||
        !clean_text(job, OTA_URL_JOB_MAX)) {
        return -1;
    }
    n = snprintf(canon, sizeof(canon), "otter-url-v1\n%s\n%s\n%s\n%" PRId64, path, thing, job,
                 expires);
    if (n < 0 || (size_t)n >= sizeof(canon) ||
        mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), key, key_len,
                        (const unsigned char *)canon, (size_t)n, mac) != 0) {
        return -1;
    }
    for (i = 0; i < 32; i++) {
        static const char hex[] = "0123456789abcdef";
        sig[2 * i] = hex[mac[i] >> 4];
        sig[2 * i + 1] = hex[mac[i] & 15];
    }
    sig[64] = 0;
    return 0;
}

/* Percent-encodes s (all but unreserved characters) at out[at..cap); new length or -1. */
static int put_encoded(char *out, size_t at, size_t cap, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s != 0; s++) {
        unsigned char ch = (unsigned char)*s;
        int plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~';
        if (at + (plain ? 1u : 3u) >= cap) {
            return -1;
        }
        if (plain) {
            out[at++] = (char)ch;
        } else {
            out[at++] = '%';
            out[at++] = hex[ch >> 4];
            out[at++] = hex[ch & 15];
        }
    }
    out[at] = 0;
    return (int)at;
}

int ota_url_make(const uint8_t *key, size_t key_len, const char *base, int64_t file_id,
                 const char *thing, const char *job, int64_t expires, char *out, size_t cap)
{
    char path[32], sig[65];
    int n;
    if (base == NULL || out == NULL || file_id < 0) {
        return -1;
    }
    snprintf(path, sizeof(path), "/files/%" PRId64, file_id);
    if (ota_url_sign(key, key_len, path, thing, job, expires, sig) != 0) {
        return -1;
    }
    n = snprintf(out, cap, "%s%s?thing=", base, path);
    if (n < 0 || (size_t)n >= cap || (n = put_encoded(out, (size_t)n, cap, thing)) < 0) {
        return -1;
    }
    if ((size_t)n + 5u >= cap) {
        return -1;
    }
    memcpy(out + n, "&job=", 6);
    if ((n = put_encoded(out, (size_t)n + 5u, cap, job)) < 0) {
        return -1;
    }
    {
        int m = snprintf(out + n, cap - (size_t)n, "&expires=%" PRId64 "&sig=%s", expires, sig);
        if (m < 0 || (size_t)m >= cap - (size_t)n) {
            return -1;
        }
        return n + m;
    }
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Percent-decodes s[0..len) into out (cap bytes with the NUL); 0 on bad or over-long text. */
static int decode(const char *s, size_t len, char *out, size_t cap)
{
    size_t i, n = 0;
    for (i = 0; i < len; i++) {
        int ch = (unsigned char)s[i];
        if (ch == '%') {
            int hi, lo;
            if (i + 2 >= len) {
                return 0;
            }
            hi = hex_value(s[i + 1]);
            lo = hex_value(s[i + 2]);
            if (hi < 0 || lo < 0) {
                return 0;
            }
            ch = hi * 16 + lo;
            i += 2;
        }
        if (ch < 0x20 || ch == 0x7f || n + 1 >= cap) {
            return 0;
        }
        out[n++] = (char)ch;
    }
    out[n] = 0;
    return n > 0;
}

/* Constant-time equality of two 64-byte strings. */
static int same_sig(const char *a, const char *b)
{
    unsigned diff = 0;
    size_t i;
    for (i = 0; i < 64; i++) {
        diff |= (unsigned)(a[i] ^ b[i]);
    }
    return diff == 0;
}

ota_url_result_t ota_url_check(const uint8_t *key, size_t key_len, const char *path,
                               const char *query, int64_t now, ota_url_params_t *out)
{
    ota_url_params_t p;
    char sig[65], want[65], num[24];
    unsigned seen = 0;
    const char *q = query;
    memset(&p, 0, sizeof(p));
    if (query == NULL || path == NULL) {
        return OTA_URL_MALFORMED;
    }
    while (*q != 0) {
        const char *amp = strchr(q, '&');
        size_t len = amp != NULL ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', len);
        size_t klen, vlen;
        unsigned bit;
        char *dst;
        size_t cap;
        if (eq == NULL) {
            return OTA_URL_MALFORMED;
        }
        klen = (size_t)(eq - q);
        vlen = len - klen - 1u;
        if (klen == 5 && memcmp(q, "thing", 5) == 0) {
            bit = 1, dst = p.thing, cap = sizeof(p.thing);
        } else if (klen == 3 && memcmp(q, "job", 3) == 0) {
            bit = 2, dst = p.job, cap = sizeof(p.job);
        } else if (klen == 7 && memcmp(q, "expires", 7) == 0) {
            bit = 4, dst = num, cap = sizeof(num);
        } else if (klen == 3 && memcmp(q, "sig", 3) == 0) {
            bit = 8, dst = sig, cap = sizeof(sig);
        } else {
            return OTA_URL_MALFORMED;
        }
        if ((seen & bit) != 0 || !decode(eq + 1, vlen, dst, cap)) {
            return OTA_URL_MALFORMED;
        }
        seen |= bit;
        q += len;
        if (*q == '&') {
            q++;
            if (*q == 0) {
                return OTA_URL_MALFORMED;
            }
        }
    }
    if (seen != 15u || strlen(sig) != 64 || strspn(num, "0123456789") != strlen(num) ||
        strlen(num) > 18) {
        return OTA_URL_MALFORMED;
    }
    {
        size_t i;
        for (i = 0; i < 64; i++) {
            if (hex_value(sig[i]) < 0 || (sig[i] >= 'A' && sig[i] <= 'F')) {
                return OTA_URL_MALFORMED;
            }
        }
    }
    p.expires = 0;
    {
        size_t i;
        for (i = 0; num[i] != 0; i++) {
            p.expires = p.expires * 10 + (num[i] - '0');
        }
    }
    if (ota_url_sign(key, key_len, path, p.thing, p.job, p.expires, want) != 0) {
        return OTA_URL_MALFORMED;
    }
    if (!same_sig(sig, want)) {
        return OTA_URL_BAD_SIGNATURE;
    }
    if (p.expires <= now) {
        return OTA_URL_EXPIRED;
    }
    if (out != NULL) {
        *out = p;
    }
    return OTA_URL_OK;
}
