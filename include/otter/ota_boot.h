/*
 * otter: bootloader logic for two image slots.
 *
 * The bootloader keeps its state in the power-safe record of
 * ota_boot_record.h and decides at every boot which slot runs:
 *
 *   NONE / CONFIRMED / REVERTED  -> the active slot boots.
 *   TRIAL, attempts left > 0     -> the trial image's header and signature are
 *                                   checked; if good, the attempt counter is
 *                                   decremented (persisted first) and the trial
 *                                   slot boots, pending commit; if bad, the
 *                                   state becomes REVERTED.
 *   TRIAL, no attempts left      -> REVERTED; the active slot boots.
 *
 * The running application (through its port) requests a trial after a verified
 * download, and confirms or rejects it. Confirming makes the trial slot the
 * active one and raises the minimum version (anti-rollback) to its version
 * and the minimum security counter to its counter; the minimums never rise
 * otherwise. An image whose security counter is below the minimum counter
 * never boots; one without a counter (0) also never boots below the minimum
 * version, while one with a counter may carry a lower version (a deliberate
 * downgrade the signer allowed by keeping the counter).
 *
 * Nothing here keeps state between calls: every boot starts from the flash.
 */
#ifndef OTTER_OTA_BOOT_H
#define OTTER_OTA_BOOT_H

#include "otter/ota_config_defaults.h"

#include <stddef.h>
#include <stdint.h>

#include "otter/ota_boot_record.h"
#include "otter/ota_err.h"
#include "otter/ota_flash.h"
#include "otter/ota_verify.h"

/** Slot value of a decision that names no slot: nothing may be booted. */
#define OTA_BOOT_NO_SLOT 0xffu

/** Boot attempts a new image gets when the configuration says 0. */
#define OTA_BOOT_DEFAULT_ATTEMPTS 3u

/** Where things live on the flash. All addresses are sector starts. */
typedef struct ota_boot_layout {
    /** First byte of each image slot. */
    uint32_t slot_addr[2];
    /** Size of each slot in bytes (a whole number of sectors in both slots). */
    uint32_t slot_size;
    /** The two copies of the state record, each in a sector of its own. */
    uint32_t record_addr[2];
    /** The two banks of the download-progress log (used by flash ports). */
    uint32_t progress_addr[2];
    /** Size of each progress bank in bytes (whole sectors). */
    uint32_t progress_size;
} ota_boot_layout_t;

/** What the bootloader needs. */
typedef struct ota_boot_config {
    /** The flash holding slots and records. */
    const ota_flash_t *flash;
    /** Where things are. */
    const ota_boot_layout_t *layout;
    /** Signers new images may be signed by; a trial names its signer by key id
     * (ota_verify_key_id), so tables may differ in order between builds. */
    const ota_verify_signer_t *signers;
    /** Entries in signers (at least 1). */
    size_t signer_count;
    /** Boot attempts for a new image (1 .. OTA_BOOT_MAX_ATTEMPTS; 0 = default 3). */
    uint8_t max_attempts;
    /** Scratch buffer for reading images during verification. */
    uint8_t *scratch;
    /** Size of scratch (>= OTA_IMAGE_HEADER_SIZE). */
    uint32_t scratch_len;
    /** This device's type tag (ota_device_type_tag), or 0 to accept
     * images of any type; an image tagged for another type never boots. */
    uint32_t device_type_tag;
} ota_boot_config_t;

/** The outcome of one boot decision. */
typedef struct ota_boot_result {
    /** Slot to run (0 or 1), or OTA_BOOT_NO_SLOT when none may run. */
    uint8_t slot;
    /** 1 when the slot holds a new image on trial (pending commit). */
    uint8_t pending;
    /** Version of the image in that slot (from its header; 0 if none). */
    uint32_t version;
    /** The state record after the decision (as stored, or the factory state). */
    ota_boot_record_t record;
} ota_boot_result_t;

/**
 * Lay out a uniform-sector flash: two progress sectors and two record
 * sectors at the end, the rest split into two equal slots of whole sectors.
 * @return OTA_OK; OTA_ERR_INVALID_ARG (non-uniform flash or too small).
 */
ota_err_t ota_boot_layout_uniform(const ota_flash_t *flash, ota_boot_layout_t *layout);

/**
 * Check a layout against a flash: everything sector aligned, inside the
 * device and not overlapping.
 * @return OTA_OK or OTA_ERR_INVALID_ARG.
 */
ota_err_t ota_boot_layout_check(const ota_flash_t *flash, const ota_boot_layout_t *layout);

/**
 * The current state: the newest legal record, or the factory state (slot 0
 * active, version from its header, state NONE) on a new device.
 * @return OTA_OK; OTA_ERR_INVALID_ARG; OTA_ERR_CORRUPT (no legal record on a
 *         device that is not new); OTA_ERR_BAD_IMAGE (a new device whose slot 0
 *         holds no image); a flash error.
 */
ota_err_t ota_boot_state(const ota_boot_config_t *cfg, ota_boot_record_t *rec);

/**
 * Decide which slot boots, persisting any state change first.
 * @return OTA_OK with *out filled. Otherwise an error, and either
 *         - out->slot names the active (committed, not pending) slot: the state
 *           is known but a change could not be stored or the trial image could
 *           not be read; booting the old image is safe; or
 *         - out->slot is OTA_BOOT_NO_SLOT: the state cannot be read or trusted
 *           (read errors, corruption, no factory image). Boot nothing: retry,
 *           or stop. Running an image nobody vouches for is never the answer.
 */
ota_err_t ota_boot_decide(const ota_boot_config_t *cfg, ota_boot_result_t *out);

/**
 * Put a new image on trial for the next boot.
 * @param slot    the slot holding it; must not be the active slot.
 * @param sig     its signature (sig_len <= OTA_BOOT_SIG_MAX): ECDSA DER, or
 *                RSA (OTA_SIG_RSA builds); the method is the signer key's.
 * @param signer  key id (ota_verify_key_id) of the signer that verified it;
 *                the bootloader checks the image with its own signer of that
 *                id, and reverts if it has none.
 * @return OTA_OK; OTA_ERR_INVALID_ARG; OTA_ERR_WRONG_STATE (a trial is already
 *         pending); OTA_ERR_BAD_IMAGE (header missing or size mismatch);
 *         OTA_ERR_BAD_IMAGE also for an image tagged for another device type;
 *         OTA_ERR_ROLLBACK (security counter below the minimum, or no counter
 *         and version below the minimum); a flash error.
 */
ota_err_t ota_boot_request_trial(const ota_boot_config_t *cfg, uint8_t slot, uint32_t size,
                                 const uint8_t *sig, size_t sig_len, uint32_t signer);

/**
 * Commit the image on trial: it becomes the active image and the minimum
 * version and security counter rise to its own. Only an image the bootloader has started
 * (checked and booted) can be committed.
 * @return OTA_OK; OTA_ERR_WRONG_STATE (no trial, or not booted yet);
 *         OTA_ERR_BAD_IMAGE (its header no longer decodes); a flash error.
 */
ota_err_t ota_boot_confirm(const ota_boot_config_t *cfg);

/**
 * Refuse the image on trial: the active image boots from the next reset on.
 * @return OTA_OK; OTA_ERR_WRONG_STATE (no trial); a flash error.
 */
ota_err_t ota_boot_reject(const ota_boot_config_t *cfg);

#endif /* OTTER_OTA_BOOT_H */
