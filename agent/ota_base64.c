/* otter: base64 decoding (standard alphabet, padded, CR/LF skipped). */
#include "ota_base64.h"

/* Value of one alphabet character, or -1. */
static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}

ota_err_t ota_base64_decode(const char *in, size_t in_len, uint8_t *out, size_t cap,
                            size_t *out_len)
{
    uint32_t acc = 0;   /* bits of the current group, 6 per character */
    unsigned chars = 0; /* characters of the current group so far */
    unsigned pad = 0;   /* "=" seen in the current group */
    unsigned done = 0;  /* a padded group ended the data */
    size_t len = 0;
    size_t i;

    if (out_len == NULL || (in == NULL && in_len > 0) || (out == NULL && cap > 0)) {
        return OTA_ERR_INVALID_ARG;
    }
    for (i = 0; i < in_len; i++) {
        char c = in[i];
        int v = 0;

        if (c == '\r' || c == '\n') {
            continue;
        }
        if (done) {
            return OTA_ERR_BAD_MESSAGE;
        }
        if (c == '=') {
            if (chars < 2) {
                return OTA_ERR_BAD_MESSAGE;
            }
            pad++;
        } else {
            v = b64_value(c);
            if (v < 0 || pad > 0) {
                return OTA_ERR_BAD_MESSAGE;
            }
        }
        acc = (acc << 6) | (uint32_t)v;
        if (++chars == 4) {
            unsigned n = 3u - pad;
            unsigned k;

            /* The bits under the padding must be zero. */
            if ((acc & ((1u << (8u * pad)) - 1u)) != 0) {
                return OTA_ERR_BAD_MESSAGE;
            }
            if (cap - len < n) {
                return OTA_ERR_OUT_OF_MEMORY;
            }
            for (k = 0; k < n; k++) {
                out[len++] = (uint8_t)(acc >> (16u - 8u * k));
            }
            done = pad;
            chars = 0;
            acc = 0;
        }
    }
    if (chars != 0) {
        return OTA_ERR_BAD_MESSAGE;
    }
    *out_len = len;
    return OTA_OK;
}
