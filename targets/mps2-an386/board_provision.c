/* otter on mps2-an386: the provisioning sector (see board_provision.h). */
#include "board_provision.h"

#include <string.h>

#include "otter/ota_bytes.h"
#include "otter/ota_crc32.h"

#define HEADER 8u

/* Reads one string field at *off into out (cap bytes incl. NUL), or just
 * bounds it when out is NULL; advances *off. */
static int take(const uint8_t *raw, size_t end, size_t *off, char *out, size_t cap,
                const uint8_t **ptr, size_t *plen)
{
    if (end - *off < 2u) {
        return -1;
    }
    size_t n = ota_get_le16(raw + *off);
    *off += 2u;
    if (n > end - *off || n == 0u) {
        return -1;
    }
    if (out != NULL) {
        if (n >= cap || memchr(raw + *off, 0, n) != NULL) {
            return -1;
        }
        memcpy(out, raw + *off, n);
        out[n] = '\0';
    } else {
        *ptr = raw + *off;
        *plen = n;
    }
    *off += n;
    return 0;
}

ota_err_t board_provision_decode(const uint8_t *raw, size_t len, board_provision_t *out)
{
    if (raw == NULL || out == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    memset(out, 0, sizeof *out);
    if (len < HEADER || ota_get_le32(raw) != BOARD_PROVISION_MAGIC) {
        return OTA_ERR_NOT_FOUND;
    }
    uint32_t total = ota_get_le32(raw + 4);
    if (total > len || total < HEADER + 4u ||
        ota_crc32(0, raw, total - 4u) != ota_get_le32(raw + total - 4u)) {
        return OTA_ERR_CORRUPT;
    }
    size_t off = HEADER, end = total - 4u;
    const size_t cap = BOARD_PROVISION_NAME_MAX + 1u;
    if (take(raw, end, &off, out->thing, cap, NULL, NULL) != 0 ||
        take(raw, end, &off, out->username, cap, NULL, NULL) != 0 ||
        take(raw, end, &off, out->password, cap, NULL, NULL) != 0 ||
        take(raw, end, &off, out->cert_name, cap, NULL, NULL) != 0 ||
        take(raw, end, &off, NULL, 0, &out->pem, &out->pem_len) != 0 || off != end) {
        return OTA_ERR_CORRUPT;
    }
    return OTA_OK;
}

static uint8_t *put(uint8_t *p, const void *s, size_t n)
{
    ota_put_le16(p, (uint16_t)n);
    memcpy(p + 2, s, n);
    return p + 2 + n;
}

int32_t board_provision_encode(uint8_t *buf, size_t cap, const char *thing, const char *username,
                               const char *password, const char *cert_name, const uint8_t *pem,
                               size_t pem_len)
{
    const char *names[4] = {thing, username, password, cert_name};
    size_t total = HEADER + 4u + 2u + pem_len;
    if (buf == NULL || pem == NULL || pem_len == 0u || pem_len > 65535u) {
        return OTA_ERR_INVALID_ARG;
    }
    for (int i = 0; i < 4; i++) {
        if (names[i] == NULL || names[i][0] == '\0' ||
            strlen(names[i]) > BOARD_PROVISION_NAME_MAX) {
            return OTA_ERR_INVALID_ARG;
        }
        total += 2u + strlen(names[i]);
    }
    if (total > cap) {
        return OTA_ERR_OUT_OF_MEMORY;
    }
    ota_put_le32(buf, BOARD_PROVISION_MAGIC);
    ota_put_le32(buf + 4, (uint32_t)total);
    uint8_t *p = buf + HEADER;
    for (int i = 0; i < 4; i++) {
        p = put(p, names[i], strlen(names[i]));
    }
    p = put(p, pem, pem_len);
    ota_put_le32(p, ota_crc32(0, buf, total - 4u));
    return (int32_t)total;
}
