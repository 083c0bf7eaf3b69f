/* otter: the version grammar (see ota_version.h). */
#include "otter/ota_version.h"

/* Parses the part text[*pos..] up to end or stop; advances *pos past it. */
static int parse_part(const char *text, size_t len, size_t *pos, uint32_t max, uint32_t *out)
{
    uint32_t v = 0;
    size_t digits = 0;
    size_t i = *pos;
    while (i < len && text[i] >= '0' && text[i] <= '9') {
        if (++digits > 5u || (digits == 2u && v == 0u)) {
            return -1;
        }
        v = v * 10u + (uint32_t)(text[i] - '0');
        i++;
    }
    if (digits == 0u || v > max) {
        return -1;
    }
    *out = v;
    *pos = i;
    return 0;
}

int ota_version_parse_n(const char *text, size_t len, uint32_t *version)
{
    uint32_t major, minor, build;
    size_t pos = 0;
    if (text == NULL || version == NULL || parse_part(text, len, &pos, 255u, &major) != 0 ||
        pos >= len || text[pos++] != '.' || parse_part(text, len, &pos, 255u, &minor) != 0 ||
        pos >= len || text[pos++] != '.' || parse_part(text, len, &pos, 65535u, &build) != 0 ||
        pos != len) {
        return -1;
    }
    *version = ota_version_make((uint8_t)major, (uint8_t)minor, (uint16_t)build);
    return 0;
}

int ota_version_parse(const char *text, uint32_t *version)
{
    size_t len = 0;
    if (text == NULL) {
        return -1;
    }
    /* Longer than any version: refuse without scanning the rest. */
    while (text[len] != '\0' && len < OTA_VERSION_TEXT_MAX + 4u) {
        len++;
    }
    return ota_version_parse_n(text, len, version);
}

/* Writes v in decimal at out; returns the number of characters. */
static size_t put_dec(char *out, uint32_t v)
{
    char tmp[5];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + (v % 10u));
        v /= 10u;
    } while (v != 0u && n < sizeof tmp);
    for (size_t i = 0; i < n; i++) {
        out[i] = tmp[n - 1u - i];
    }
    return n;
}

size_t ota_version_format(uint32_t version, char out[OTA_VERSION_TEXT_MAX])
{
    size_t n = put_dec(out, version >> 24);
    out[n++] = '.';
    n += put_dec(out + n, (version >> 16) & 0xffu);
    out[n++] = '.';
    n += put_dec(out + n, version & 0xffffu);
    out[n] = '\0';
    return n;
}
