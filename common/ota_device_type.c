/* otter: device type tags (see ota_device_type.h). */
#include "otter/ota_device_type.h"

#include "otter/ota_crc32.h"

ota_err_t ota_device_type_tag(const char *name, size_t len, uint32_t *tag)
{
    if (name == NULL || tag == NULL || len == 0u || len > OTA_DEVICE_TYPE_MAX) {
        return OTA_ERR_INVALID_ARG;
    }
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-')) {
            return OTA_ERR_INVALID_ARG;
        }
    }
    uint32_t crc = ota_crc32(0, (const uint8_t *)name, len);
    *tag = crc != 0u ? crc : 0xffffffffu;
    return OTA_OK;
}
