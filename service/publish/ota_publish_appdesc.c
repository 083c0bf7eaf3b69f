/* otter: application descriptors (see ota_publish_appdesc.h). */
#include "ota_publish_appdesc.h"

#include <stdio.h>
#include <string.h>

#include "otter/ota_version.h"

#define ESP_IMAGE_MAGIC 0xe9u
#define ESP_APP_DESC_OFFSET 32u
#define ESP_APP_DESC_MAGIC 0xabcd5432u
#define ESP_APP_DESC_VERSION 16u /* offset of version[32] inside the descriptor */

int ota_publish_appdesc_version(const uint8_t *data, size_t len,
                                char out[OTA_PUBLISH_APPDESC_VERSION_MAX])
{
    const size_t end = ESP_APP_DESC_OFFSET + ESP_APP_DESC_VERSION + 32u;
    if (data == NULL || len < end || data[0] != ESP_IMAGE_MAGIC) {
        return 0;
    }
    const uint8_t *d = data + ESP_APP_DESC_OFFSET;
    uint32_t magic =
        (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
    if (magic != ESP_APP_DESC_MAGIC) {
        return 0;
    }
    size_t n = 0;
    for (; n < 32u && d[ESP_APP_DESC_VERSION + n] != 0u; n++) {
        uint8_t c = d[ESP_APP_DESC_VERSION + n];
        out[n] = (c >= 0x20u && c < 0x7fu) ? (char)c : '?';
    }
    out[n] = '\0';
    return 1;
}

int ota_publish_appdesc_check(const uint8_t *data, size_t len, uint32_t version, const char *name,
                              const char *version_flag, char *err, size_t cap)
{
    char text[OTA_PUBLISH_APPDESC_VERSION_MAX];
    if (!ota_publish_appdesc_version(data, len, text)) {
        return 0;
    }
    char want[OTA_VERSION_TEXT_MAX];
    ota_version_format(version, want);
    uint32_t found = 0;
    const char *v = text[0] == 'v' ? text + 1 : text;
    if (ota_version_parse(v, &found) != 0) {
        snprintf(err, cap,
                 "%s carries application version '%s' (ESP-IDF descriptor), not X.Y.Z; build it "
                 "with PROJECT_VER %s",
                 name, text, want);
        return -1;
    }
    if (found != version) {
        snprintf(err, cap,
                 "%s carries application version '%s' (ESP-IDF descriptor), not %s; give "
                 "%s %s or rebuild it",
                 name, text, want, version_flag, v);
        return -1;
    }
    return 0;
}
