/*
 * otter: the size of every public struct of the device libraries, as one
 * translation unit sees it.
 *
 * tests/config compiles every source file of the device libraries with this
 * header appended (the file is included first, then this header), naming the
 * table with OTA_PROBE_NAME. Headers the unit included keep the view it had of
 * them; the others are included here. test_config_sizes then compares the
 * tables of all units: two units that disagree about a struct's size would
 * corrupt memory when they pass it between them.
 */
#include "otter/ota_agent.h"
#include "otter/ota_boot.h"
#include "otter/ota_boot_record.h"
#include "ota_cbor.h"
#include "ota_config_probe_entry.h"
#include "otter/ota_crc32.h"
#include "otter/ota_err.h"
#include "otter/ota_flash.h"
#include "otter/ota_image_header.h"
#include "otter/ota_job_doc.h"
#include "otter/ota_mqtt.h"
#include "otter/ota_pal.h"
#include "otter/ota_port_flash.h"
#include "otter/ota_port_posix.h"
#include "otter/ota_verify.h"

#define OTA_PROBE_ENTRY(type)                                                                      \
    {                                                                                              \
#type, (uint32_t)sizeof(type)                                                              \
    }

extern const ota_probe_entry_t OTA_PROBE_NAME[];
const ota_probe_entry_t OTA_PROBE_NAME[] = {
    OTA_PROBE_ENTRY(ota_agent_t),
    OTA_PROBE_ENTRY(ota_agent_config_t),
    OTA_PROBE_ENTRY(ota_agent_callbacks_t),
    OTA_PROBE_ENTRY(ota_agent_event_t),
    OTA_PROBE_ENTRY(ota_agent_outcome_t),
    OTA_PROBE_ENTRY(ota_agent_stats_t),
    OTA_PROBE_ENTRY(ota_job_t),
    OTA_PROBE_ENTRY(ota_job_issue_t),
    OTA_PROBE_ENTRY(ota_mqtt_t),
    OTA_PROBE_ENTRY(ota_cbor_get_stream_t),
    OTA_PROBE_ENTRY(ota_cbor_data_block_t),
    OTA_PROBE_ENTRY(ota_cbor_rejected_t),
    OTA_PROBE_ENTRY(ota_pal_t),
    OTA_PROBE_ENTRY(ota_pal_file_t),
    OTA_PROBE_ENTRY(ota_flash_t),
    OTA_PROBE_ENTRY(ota_boot_config_t),
    OTA_PROBE_ENTRY(ota_boot_layout_t),
    OTA_PROBE_ENTRY(ota_boot_record_t),
    OTA_PROBE_ENTRY(ota_boot_result_t),
    OTA_PROBE_ENTRY(ota_image_header_t),
    OTA_PROBE_ENTRY(ota_verify_hash_t),
    OTA_PROBE_ENTRY(ota_verify_signer_t),
    OTA_PROBE_ENTRY(ota_port_flash_config_t),
    OTA_PROBE_ENTRY(ota_port_flash_t),
    OTA_PROBE_ENTRY(ota_port_posix_config_t),
    OTA_PROBE_ENTRY(ota_port_posix_t),
    {NULL, 0},
};
