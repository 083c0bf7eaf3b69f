/*
 * otter: the posix reference port. Files on a Linux (POSIX.1-2008) file
 * system, for Linux devices and gateways.
 *
 * Everything the port keeps lives in one directory, root_dir:
 *
 *   current.bin   the running image (what the program/launcher executes)
 *   receive.tmp   the file being received (never a name from the job: the
 *                 job's "filepath" is untrusted and only informational)
 *   pending.bin   the verified, activated image, until the next boot
 *   previous.bin  the old image, while the new one is under test
 *   state         the update phase record (see "On-disk formats" below)
 *   progress      the download-progress record
 *   *.tmp         half-written replacements of state/progress (ignored)
 *
 * Signer certificates/keys are PEM files <cert_dir>/<cert_name>.
 *
 * ota_port_posix_init() is the "boot": it reads the state record, completes
 * whatever step an activation or a revert left pending (so that a crash or a
 * power cut at any moment leaves current.bin exactly the old image or exactly
 * the new verified one), then fills in an ota_pal_t. Calling it again on a
 * fresh struct is a reboot: nothing survives but the files.
 *
 *   ACTIVATED (set by activate) --init--> new image in current.bin, TESTING
 *   TESTING --set_image_state(ACCEPTED)--> VALID (previous.bin deleted)
 *   TESTING --set_image_state(REJECTED/ABORTED) or init--> old image back, REVERTED
 *
 * A TESTING image gets exactly one boot: the init after it (without an
 * ACCEPTED in between) reverts. (The flash port's bootloader gives three.)
 *
 * Because init is the boot step, it must run before the image is chosen:
 * in the launcher (or init system unit) that then executes current.bin, not
 * inside the running application after it started. Otherwise an old binary
 * that is still running could see the new image as pending and accept it.
 *
 * On-disk formats (all integers little-endian):
 *
 *   state, 12 bytes:
 *     0  4  magic "OTPS"
 *     4  1  format version, 1
 *     5  1  phase: 0 VALID, 1 ACTIVATED, 2 TESTING, 3 REVERTED
 *     6  1  flags: bit 0 = previous.bin holds the old image (TESTING only)
 *     7  1  reserved, 0
 *     8  4  CRC-32 (ota_crc32) of bytes 0..7
 *   A missing state file means VALID. A file of another size, magic, version
 *   or CRC, or with an unknown phase, is corrupt and is also taken as VALID
 *   (see ota_port_posix_init()). The file is only ever replaced by writing
 *   state.tmp, fsync, rename over state, fsync of root_dir.
 *
 *   progress, 16 + n bytes, replaced the same way (through progress.tmp):
 *     0  4  magic "OTPR"
 *     4  1  format version, 1
 *     5  3  reserved, 0
 *     8  4  n, the record length (1 .. progress capacity)
 *    12  4  CRC-32 (ota_crc32) of bytes 0..11 followed by the n record bytes
 *    16  n  the record
 *   Any mismatch (size != 16 + n, magic, version, CRC) reads as no record.
 *
 * Not thread-safe: one thread uses one port. Two ports (in one or several
 * processes) must not share a root_dir.
 */
#ifndef OTTER_OTA_PORT_POSIX_H
#define OTTER_OTA_PORT_POSIX_H

#include "otter/ota_config_defaults.h"

#include <stdint.h>

#include "otter/ota_err.h"
#include "otter/ota_pal.h"
#include "otter/ota_verify.h"

/* Its knobs (OTA_PORT_POSIX_PATH_MAX, OTA_PORT_POSIX_PROGRESS_CAPACITY,
 * OTA_PORT_POSIX_CHUNK, OTA_PORT_POSIX_DEFAULT_MAX_FILE_SIZE) come from
 * ota_config_defaults.h. */

/** Configuration of ota_port_posix_init(); only read during the call. */
typedef struct ota_port_posix_config {
    /**
     * Directory holding the images, the state and the progress record. Created
     * (one level, mode 0700) when missing. Required.
     */
    const char *root_dir;
    /** Directory of the signer PEM files (certificates or public keys). Required. */
    const char *cert_dir;
    /** File name in cert_dir used when a job names no signer; may be NULL (none). */
    const char *default_cert;
    /** Largest file create_file accepts, in bytes; 0 = OTA_PORT_POSIX_DEFAULT_MAX_FILE_SIZE. */
    uint32_t max_file_size;
} ota_port_posix_config_t;

/**
 * One posix port. Caller-owned (statically allocated or on the heap; it is
 * about OTA_VERIFY_MAX_PEM_LEN + OTA_PORT_POSIX_CHUNK + 2 * OTA_PORT_POSIX_PATH_MAX
 * bytes, too large for a small thread stack). Fields are private: use the
 * ota_pal_t that ota_port_posix_init() fills in.
 */
typedef struct ota_port_posix {
    int root_fd;            /**< private: root_dir, opened O_DIRECTORY; -1 when none */
    int rx_fd;              /**< private: receive.tmp; -1 when none */
    uint32_t rx_size;       /**< private: size of the file being received */
    uint8_t rx_phase;       /**< private: none, open, closed and verified */
    uint8_t phase;          /**< private: the persisted phase */
    uint8_t has_prev;       /**< private: flags bit 0 of the state record */
    uint8_t invalid;        /**< private: a close failed or the image was refused this boot */
    uint8_t rx_unsynced;    /**< private: an fsync of receive.tmp failed: no progress is durable */
    uint32_t max_file_size; /**< private */
    char cert_dir[OTA_PORT_POSIX_PATH_MAX];     /**< private */
    char default_cert[OTA_PORT_POSIX_PATH_MAX]; /**< private: "" = none */
    uint8_t pem[OTA_VERIFY_MAX_PEM_LEN];        /**< private: signer PEM at close */
    uint8_t chunk[OTA_PORT_POSIX_CHUNK];        /**< private: read buffer */
} ota_port_posix_t;

/**
 * Boot the port: open (create) root_dir, read the state record, complete any
 * pending step, and fill in *pal_out.
 *
 * Boot steps, each re-runnable after a crash at any point:
 *   - ACTIVATED: previous.bin := current.bin (hard link, or rename where the
 *     file system has no links), then rename pending.bin over current.bin;
 *     state := TESTING. Which files exist tells how far an interrupted run got.
 *   - TESTING (the new image booted and was not accepted): previous.bin is
 *     renamed back over current.bin (or, when there was no old image,
 *     current.bin is deleted); state := REVERTED.
 *   - VALID, REVERTED: leftovers of interrupted steps are deleted (pending.bin
 *     of an activation whose state was never written, previous.bin of an
 *     accept that stopped before deleting it, state.tmp, progress.tmp); if
 *     current.bin is missing but previous.bin exists, previous.bin is restored.
 *   - A corrupt state record is taken as VALID and rewritten: the record is
 *     only ever replaced by an atomic rename, so corruption is damage from
 *     outside, and keeping the image that current.bin holds is the only choice
 *     that needs no record.
 * receive.tmp is left as it is (the next create_file truncates it).
 *
 * @param port    caller-owned storage; any content (it is overwritten).
 * @param cfg     configuration; strings are copied.
 * @param pal_out receives ctx = port, every operation, max_file_size,
 *                block_align = 1 and progress_capacity =
 *                OTA_PORT_POSIX_PROGRESS_CAPACITY.
 * @return OTA_OK; OTA_ERR_INVALID_ARG (a NULL pointer, root_dir or cert_dir
 *         NULL or empty, cert_dir or default_cert not fitting
 *         OTA_PORT_POSIX_PATH_MAX); OTA_ERR_IO (root_dir cannot be opened or
 *         created, or a boot step or the state record failed). On failure
 *         *pal_out is zeroed and the port holds no descriptor.
 */
ota_err_t ota_port_posix_init(ota_port_posix_t *port, const ota_port_posix_config_t *cfg,
                              ota_pal_t *pal_out);

/**
 * Close the port's descriptors (an open transfer is left on disk as it is;
 * no state changes). Afterwards every operation of its ota_pal_t fails with
 * OTA_ERR_UNINITIALIZED (get_image_state gives INVALID) until the next init.
 * Safe on a port whose init failed and when called twice.
 * @param port the port; NULL is ignored.
 */
void ota_port_posix_deinit(ota_port_posix_t *port);

#endif /* OTTER_OTA_PORT_POSIX_H */
