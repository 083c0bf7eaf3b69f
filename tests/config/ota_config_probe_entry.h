/* otter: one entry of a configuration probe table (see ota_config_probe.h). */
#ifndef OTA_CONFIG_PROBE_ENTRY_H
#define OTA_CONFIG_PROBE_ENTRY_H

#include <stdint.h>

/** A public struct's name and its size in one translation unit. */
typedef struct ota_probe_entry {
    const char *type;
    uint32_t size;
} ota_probe_entry_t;

/** The table of one translation unit. */
typedef struct ota_probe_unit {
    const char *name;
    const ota_probe_entry_t *table;
} ota_probe_unit_t;

#endif /* OTA_CONFIG_PROBE_ENTRY_H */
