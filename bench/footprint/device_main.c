/*
 * otter: the whole-device firmware of the footprint benchmark (table 3,
 * bench/footprint.sh): all of otter's device code in one image.
 *
 * Its entry point does what a device does with otter: the bootloader's
 * decision, then the flash port and the agent with every public call an
 * application makes. Linked with --gc-sections, the firmware keeps what a
 * device links of the agent, the flash port, the bootloader, verification,
 * mbed TLS and the C library. The flash driver and the MQTT client (the
 * integrator's) are stubs here, and like this file they are not counted. It
 * is linked to be measured, never run: it has no vector table and no C
 * start-up, and its inputs are flash addresses.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "otter/ota_agent.h"
#include "otter/ota_boot.h"
#include "otter/ota_port_flash.h"

/* Where a device would keep the signer's PEM and where a message arrives. */
#define BENCH_SIGNER_ADDR 0x08004000u
#define BENCH_SIGNER_LEN 800u
#define BENCH_RX_ADDR 0x20008000u
#define BENCH_RX_TOPIC_LEN 64u
#define BENCH_RX_LEN 4096u
#define BENCH_FLASH_SIZE 0x00100000u
#define BENCH_SECTOR_SIZE 0x00001000u

/** The firmware's entry point (the linker's -e). */
void ota_bench_device_entry(void);

static ota_err_t flash_read(void *ctx, uint32_t addr, void *buf, uint32_t len)
{
    (void)ctx;
    memcpy(buf, (const uint8_t *)(uintptr_t)addr, len);
    return OTA_OK;
}

static ota_err_t flash_program(void *ctx, uint32_t addr, const void *buf, uint32_t len)
{
    (void)ctx;
    (void)addr;
    (void)buf;
    (void)len;
    return OTA_OK;
}

static ota_err_t flash_erase(void *ctx, uint32_t addr, uint32_t len)
{
    (void)ctx;
    (void)addr;
    (void)len;
    return OTA_OK;
}

static ota_err_t flash_sector_info(void *ctx, uint32_t addr, uint32_t *start, uint32_t *size)
{
    (void)ctx;
    *start = addr & ~(BENCH_SECTOR_SIZE - 1u);
    *size = BENCH_SECTOR_SIZE;
    return OTA_OK;
}

static ota_err_t mqtt_subscribe(void *ctx, const char *topic, uint8_t qos)
{
    (void)ctx;
    (void)topic;
    (void)qos;
    return OTA_OK;
}

static ota_err_t mqtt_unsubscribe(void *ctx, const char *topic)
{
    (void)ctx;
    (void)topic;
    return OTA_OK;
}

static ota_err_t mqtt_publish(void *ctx, const char *topic, const uint8_t *payload, size_t len,
                              uint8_t qos)
{
    (void)ctx;
    (void)topic;
    (void)payload;
    (void)len;
    (void)qos;
    return OTA_OK;
}

void ota_bench_device_entry(void)
{
    static ota_agent_t agent;
    static ota_port_flash_t port;
    static ota_port_flash_config_t port_cfg;
    static uint8_t boot_scratch[OTA_PORT_FLASH_SCRATCH];
    const ota_verify_signer_t signers[1] = {
        {"codesign.crt", (const uint8_t *)BENCH_SIGNER_ADDR, BENCH_SIGNER_LEN}};
    const ota_flash_t flash = {NULL,       BENCH_FLASH_SIZE, 8u,          0xffu,
                               flash_read, flash_program,    flash_erase, flash_sector_info};
    const char *rx_topic = (const char *)BENCH_RX_ADDR;
    const uint8_t *rx_payload = (const uint8_t *)(BENCH_RX_ADDR + BENCH_RX_TOPIC_LEN);
    ota_boot_config_t boot_cfg;
    ota_boot_result_t boot;
    ota_agent_config_t agent_cfg;
    ota_pal_t pal;
    volatile uint32_t now = 0u;
    volatile ota_agent_state_t state;

    /* The bootloader: lay out the flash, decide which slot runs. */
    port_cfg.flash = flash;
    port_cfg.signers = signers;
    port_cfg.signer_count = 1u;
    if (ota_boot_layout_uniform(&flash, &port_cfg.layout) != OTA_OK ||
        ota_port_flash_boot_config(&port_cfg, &flash, boot_scratch, sizeof boot_scratch,
                                   &boot_cfg) != OTA_OK ||
        ota_boot_decide(&boot_cfg, &boot) != OTA_OK) {
        for (;;) {
        }
    }

    /* The application: the flash port and the agent. */
    memset(&agent_cfg, 0, sizeof agent_cfg);
    agent_cfg.thing_name = "device-1";
    agent_cfg.app_version = boot.version;
    agent_cfg.pal = &pal;
    agent_cfg.mqtt.subscribe = mqtt_subscribe;
    agent_cfg.mqtt.unsubscribe = mqtt_unsubscribe;
    agent_cfg.mqtt.publish = mqtt_publish;
    if (ota_port_flash_init(&port, &port_cfg, &boot, &pal) != OTA_OK ||
        ota_agent_init(&agent, &agent_cfg) != OTA_OK || ota_agent_start(&agent, now) != OTA_OK) {
        for (;;) {
        }
    }
    for (;;) {
        (void)ota_agent_handle_message(&agent, rx_topic, BENCH_RX_TOPIC_LEN, rx_payload,
                                       BENCH_RX_LEN, now);
        (void)ota_agent_poll(&agent, now);
        (void)ota_agent_self_test_result(&agent, 1, now);
        (void)ota_agent_check_for_update(&agent, now);
        (void)ota_agent_reconnected(&agent, now);
        (void)ota_agent_suspend(&agent);
        (void)ota_agent_resume(&agent, now);
        state = ota_agent_get_state(&agent);
        (void)ota_agent_state_str(state);
        (void)ota_agent_get_stats(&agent);
        (void)ota_agent_stop(&agent);
    }
}
