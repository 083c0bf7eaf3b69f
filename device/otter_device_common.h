/*
 * otter simulated device: what the launcher (otter-device) and the firmware
 * (otter-fw-*) share.
 *
 * - The flash: one simulated NOR flash in a file (ota_flashsim), 512 KiB of
 *   4 KiB sectors, write unit 8, erased 0xFF, laid out by
 *   ota_boot_layout_uniform (two slots, two record sectors, two progress
 *   sectors).
 * - The boot hand-over: the launcher runs the bootloader and writes its
 *   decision (ota_boot_result_t) to FLASH.boot, as a bootloader leaves it in
 *   RAM for the application; the firmware reads it back.
 * - The device configuration file (key = value lines).
 * - Exit codes and the console line prefix.
 */
#ifndef OTTER_DEVICE_COMMON_H
#define OTTER_DEVICE_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "otter/ota_boot.h"
#include "ota_flashsim.h"
#include "otter/ota_port_flash.h"
#include "otter/ota_verify.h"

/** Flash geometry of the simulated device. */
#define OTTER_DEV_FLASH_SIZE (512u * 1024u)
#define OTTER_DEV_SECTOR_SIZE 4096u
#define OTTER_DEV_WRITE_UNIT 8u
#define OTTER_DEV_ERASED 0xffu

/** Boot attempts a new image gets (the bootloader's budget). */
#define OTTER_DEV_MAX_ATTEMPTS 3u

/** Firmware exit codes. */
#define OTTER_FW_EXIT_POWER_OFF 0 /**< SIGTERM/SIGINT: clean stop; the launcher stops too */
#define OTTER_FW_EXIT_HALT 1      /**< unusable configuration or flash; the launcher stops */
#define OTTER_FW_EXIT_RESET 10    /**< the port asked for a reset; the launcher boots again */

/** Launcher exit codes. */
#define OTTER_DEV_EXIT_OK 0        /**< powered off */
#define OTTER_DEV_EXIT_ERROR 1     /**< setup failed, or the firmware halted */
#define OTTER_DEV_EXIT_USAGE 2     /**< wrong command line */
#define OTTER_DEV_EXIT_NO_IMAGE 3  /**< the bootloader found nothing it may boot */
#define OTTER_DEV_EXIT_CRASHLOOP 4 /**< the committed image crashed too often in a row */

/** Magic of the boot hand-over file: "OTBH". */
#define OTTER_DEV_HANDOVER_MAGIC 0x4842544fu

/** Largest path handled. */
#define OTTER_DEV_PATH_MAX 1024u

/** The device configuration (see docs/DEVICE.md). */
typedef struct otter_dev_config {
    char thing_file[OTTER_DEV_PATH_MAX];    /**< things/NAME.json from `otter thing create` */
    char codesign_cert[OTTER_DEV_PATH_MAX]; /**< the code-signing certificate (PEM) */
    char cert_name[128];                    /**< its name in job documents ("certfile") */
    char broker_host[256];                  /**< overrides the thing file's host ("" = no) */
    int broker_port;                        /**< overrides the thing file's port (0 = no) */
    uint32_t self_test_timeout_ms;          /**< 0 = the agent's default */
    uint32_t reset_delay_ms;                /**< 0 = the agent's default */
    uint32_t status_every_blocks; /**< progress report interval; 0 = the agent's default */
    uint32_t block_delay_ms;      /**< wait before writing each block (a slow link); 0 = none */
} otter_dev_config_t;

/** The flash geometry above. */
ota_flashsim_geometry_t otter_dev_geometry(void);

/**
 * Read a configuration file; relative paths in it are taken from the
 * folder of the file.
 * @return 0; -1 with a reason in err.
 */
int otter_dev_config_load(const char *path, otter_dev_config_t *cfg, char *err, size_t err_len);

/**
 * Read a whole small file into buf (at most cap - 1 bytes, NUL-terminated).
 * @return its length; -1 when it cannot be read or does not fit.
 */
long otter_dev_read_file(const char *path, char *buf, size_t cap);

/**
 * Write a file atomically (a temporary file next to it, then rename).
 * @return 0; -1 on failure.
 */
int otter_dev_write_file(const char *path, const void *data, size_t len, unsigned mode);

/** Write the boot decision for the firmware. @return 0; -1 on failure. */
int otter_dev_handover_write(const char *path, const ota_boot_result_t *boot);

/** Read the boot decision. @return 0; -1 (missing, wrong size or magic). */
int otter_dev_handover_read(const char *path, ota_boot_result_t *boot);

/** "1.2.3" for a version number, into out. */
void otter_dev_version_str(uint32_t version, char *out, size_t cap);

/** Parse "MAJOR.MINOR.BUILD". @return 0; -1 when malformed. */
int otter_dev_version_parse(const char *s, uint32_t *version);

/** "A" or "B" for slot 0 or 1. */
const char *otter_dev_slot_name(uint8_t slot);

/**
 * Milliseconds since the device was powered on: the launcher puts its start
 * (CLOCK_MONOTONIC, ms) in OTTER_DEVICE_T0 for every boot, so the console
 * shows one time line across resets.
 */
double otter_dev_uptime_s(void);

/** CLOCK_MONOTONIC in milliseconds. */
uint64_t otter_dev_mono_ms(void);

#endif /* OTTER_DEVICE_COMMON_H */
