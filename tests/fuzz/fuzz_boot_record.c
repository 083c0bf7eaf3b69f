/*
 * libFuzzer harness: the bootloader's state record decoder. Any 116 bytes
 * either decode to a record whose every field is legal and which encodes and
 * decodes again to the same record, or are refused as corrupt. Inputs are
 * taken with their CRC as given and, when the first byte is odd, with the CRC
 * fixed up, so that the field checks behind the CRC are reached too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otter/ota_boot_record.h"
#include "otter/ota_bytes.h"
#include "otter/ota_crc32.h"

static void check(const uint8_t *raw)
{
    ota_boot_record_t rec;
    ota_boot_record_t again;
    uint8_t enc[OTA_BOOT_RECORD_SIZE];
    ota_err_t err = ota_boot_record_decode(raw, &rec);
    if (err != OTA_OK) {
        if (err != OTA_ERR_CORRUPT) {
            abort();
        }
        return;
    }
    if (rec.state > OTA_BOOT_STATE_REVERTED || rec.active_slot > 1u || rec.trial_slot > 1u ||
        rec.sig_len > OTA_BOOT_SIG_MAX || rec.attempts_left > OTA_BOOT_MAX_ATTEMPTS) {
        abort();
    }
    if (ota_boot_record_encode(&rec, enc) != OTA_OK ||
        ota_boot_record_decode(enc, &again) != OTA_OK || memcmp(&rec, &again, sizeof rec) != 0) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t raw[OTA_BOOT_RECORD_SIZE];
    if (size < sizeof raw) {
        return 0;
    }
    memcpy(raw, data, sizeof raw);
    check(raw);
    if (data[0] & 1u) {
        ota_put_le32(raw, OTA_BOOT_RECORD_MAGIC);
        ota_put_le16(raw + 4, OTA_BOOT_RECORD_FORMAT);
        ota_put_le16(raw + 6, OTA_BOOT_RECORD_SIZE);
        ota_put_le32(raw + 112, ota_crc32(0, raw, 112));
        check(raw);
    }
    return 0;
}
