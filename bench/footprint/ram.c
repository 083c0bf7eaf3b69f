/*
 * otter: the caller-allocated structs of the device code, for the RAM rows of
 * the footprint benchmark (table 3, bench/footprint.sh). Compiled for
 * Cortex-M4 with the default configuration, never linked; the benchmark reads
 * each object's size with arm-none-eabi-nm -S.
 */
#include "otter/ota_agent.h"
#include "otter/ota_boot.h"
#include "otter/ota_port_flash.h"

/** The agent: all of its RAM (docs/AGENT.md). */
ota_agent_t ota_bench_agent;

/** The flash port instance an application keeps beside the agent. */
ota_port_flash_t ota_bench_port;

/** The bootloader's configuration, flash layout and decision. */
ota_boot_config_t ota_bench_boot_config;
ota_boot_layout_t ota_bench_boot_layout;
ota_boot_result_t ota_bench_boot_result;
