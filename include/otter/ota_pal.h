/*
 * otter: the port layer (PAL).
 *
 * A port is what a board owner writes to run the otter agent on their
 * hardware. It has the eight operations of the FreeRTOS OTA PAL (create file
 * for receive, write block, close file, abort, activate, reset, set image
 * state, get image state) plus two of otter's own: reading back what was
 * written, and a small power-safe store for one download-progress record.
 *
 * A port is a struct of function pointers plus a context pointer; the agent
 * never includes a port's own header. See docs/PORTING.md for how to write,
 * test and integrate one, and conformance/ for the tests every port passes.
 *
 * Call sequence the agent follows (anything else is answered with an error,
 * never a crash):
 *
 *   (create_file | resume_file after a reset) -> write_block* (with
 *     progress_save checkpoints) -> close_file -> [set_image_state(TESTING)]
 *     -> activate -> (reset) ... next boot: get_image_state == PENDING_COMMIT
 *     -> set_image_state(ACCEPTED | REJECTED)
 *   abort may be called at any time, any number of times.
 */
#ifndef OTTER_OTA_PAL_H
#define OTTER_OTA_PAL_H

#include "otter/ota_config_defaults.h"

#include <stddef.h>
#include <stdint.h>

#include "otter/ota_err.h"

/** Image states the agent asks a port to enter (FreeRTOS OtaImageState_t). */
typedef enum ota_image_state {
    OTA_IMAGE_STATE_UNKNOWN = 0,  /**< never valid as a request */
    OTA_IMAGE_STATE_TESTING = 1,  /**< the new image is under test */
    OTA_IMAGE_STATE_ACCEPTED = 2, /**< commit the running new image */
    OTA_IMAGE_STATE_REJECTED = 3, /**< the new image failed: revert */
    OTA_IMAGE_STATE_ABORTED = 4,  /**< the update was given up */
} ota_image_state_t;

/** Number of values of ota_image_state_t; requests >= this are out of range. */
#define OTA_IMAGE_STATE_COUNT 5

/** Image states a port reports (FreeRTOS OtaPalImageState_t); never Unknown. */
typedef enum ota_pal_image_state {
    OTA_PAL_IMAGE_STATE_PENDING_COMMIT = 1, /**< a new image runs, under test */
    OTA_PAL_IMAGE_STATE_VALID = 2,          /**< the running image is committed */
    OTA_PAL_IMAGE_STATE_INVALID = 3,        /**< the last received/new image was refused */
} ota_pal_image_state_t;

/* OTA_PAL_SIGNATURE_MAX, the longest signature the port layer carries (72 for
 * ECDSA P-256, 384 with OTA_SIG_RSA), comes from ota_config_defaults.h. */

/** Code-signing methods (job document key "sig-<hash>-<alg>"). */
typedef enum ota_sig_method {
    OTA_SIG_SHA256_ECDSA = 0, /**< "sig-sha256-ecdsa": ECDSA P-256, SHA-256, DER */
    OTA_SIG_SHA256_RSA = 1,   /**< "sig-sha256-rsa": RSA-2048/3072 PKCS#1 v1.5, SHA-256
                                   (only with OTA_SIG_RSA) */
} ota_sig_method_t;

/**
 * Description of one file transfer, owned by the caller. The same values are
 * passed to create_file and close_file of one transfer.
 */
typedef struct ota_pal_file {
    /** Destination named by the job document ("filepath"); may be NULL. */
    const char *path;
    /** Size of the whole file in bytes; > 0. */
    uint32_t size;
    /** User-defined file type from the job ("fileType"); 0 = firmware. */
    uint32_t file_type;
    /** Signer certificate/key name from the job ("certfile"); may be NULL (port default). */
    const char *cert_name;
    /** Signature method. */
    ota_sig_method_t sig_method;
    /** DER signature over the whole file. */
    const uint8_t *signature;
    /** Length of signature in bytes (0 .. OTA_PAL_SIGNATURE_MAX). */
    size_t signature_len;
} ota_pal_file_t;

/**
 * The port: operations plus the context they receive. Every operation checks
 * its arguments and its call order and answers violations with an error.
 */
typedef struct ota_pal {
    /** Port state, passed back as the first argument of every operation. */
    void *ctx;

    /** Largest file create_file accepts (the image slot size), in bytes. */
    uint32_t max_file_size;

    /**
     * The storage's write granule (a power of two, at most 256 for every
     * otter port). write_block takes any offset and size; blocks whose offset
     * and size are multiples of this (or that end the file) are written
     * straight to storage, others may be held in part in the port's RAM (see
     * write_block), so a caller picks a block size that is a multiple of it.
     */
    uint32_t block_align;

    /**
     * Largest record progress_save accepts, in bytes (0 = no progress store).
     * The agent's record of an N-block file is 28 + ceil(N / 8) bytes
     * (OTA_PROGRESS_RECORD_MAX in otter/ota_agent.h for the largest file); a
     * file whose record does not fit is downloaded without checkpoints. The
     * progress store (progress_save, progress_load, progress_clear,
     * resume_file and this) is optional: all of it or none of it.
     */
    uint32_t progress_capacity;

    /**
     * Open the destination for a new file of file->size bytes, discarding
     * whatever an earlier transfer left (an open transfer is aborted first).
     * While a new image is activated or runs pending commit, nothing is
     * received: its fallback (the image it replaces) must survive until it
     * is accepted, rejected or reverted, so create_file and resume_file
     * refuse with OTA_ERR_RX_FILE_CREATE_FAILED and change nothing.
     * @return OTA_OK; OTA_ERR_INVALID_ARG (file NULL or size 0);
     *         OTA_ERR_RX_FILE_TOO_LARGE (size > max_file_size);
     *         OTA_ERR_RX_FILE_CREATE_FAILED (a new image is pending, or a
     *         storage error).
     */
    ota_err_t (*create_file)(void *ctx, const ota_pal_file_t *file);

    /**
     * Reopen the file of a transfer that a reset interrupted, keeping what was
     * written, so that the download continues instead of restarting.
     *
     * The caller (which keeps its own record of progress, see progress_save)
     * passes the same file description as at create, its block size, and a
     * bitmap of the blocks it knows were written completely: block k is bit
     * k % 8 of done[k / 8]. The port makes every other block writable again;
     * where that costs written blocks (a flash port erases a sector that holds
     * bytes of an interrupted write), it clears their bits. On return the
     * blocks whose bits are set hold their data and the file is open; the
     * others must be written again. The caller saves the returned bitmap as
     * its new checkpoint before writing. If the finished file then fails
     * verification, the caller starts over with create_file rather than
     * resuming again (a cut during a resume's own erase can leave a checkpoint
     * that trusts blocks the erase half took; the signature catches it).
     * A port that cannot tell which file its storage holds (a flash slot)
     * trusts the caller: resume only a transfer the checkpoint identifies as
     * the same file (job, stream, size, signature). Every port answers
     * OTA_ERR_NOT_FOUND when nothing of a file is stored where it would be
     * (a new device; a flash slot erased over the file's range), and file
     * ports also when the interrupted file has another size or was closed,
     * aborted or activated. On any error nothing is open.
     * @return OTA_OK; OTA_ERR_INVALID_ARG (NULL, size 0, block_size 0,
     *         block_count not ceil(size / block_size));
     *         OTA_ERR_RX_FILE_TOO_LARGE; OTA_ERR_NOT_FOUND (no interrupted file of
     *         that size here: create instead); OTA_ERR_RX_FILE_CREATE_FAILED
     *         (a new image is pending, as for create_file); OTA_ERR_IO.
     */
    ota_err_t (*resume_file)(void *ctx, const ota_pal_file_t *file, uint32_t block_size,
                             uint8_t *done, uint32_t block_count);

    /**
     * Write size bytes at byte offset of the open file: any offset, any size
     * (a single byte, an odd size at an odd offset). Blocks arrive in any
     * order, each at most once per transfer. Writing the same bytes to a place
     * again is harmless; different bytes to a written place are refused by
     * flash ports (OTA_ERR_FLASH_RULE) and overwrite on file ports. A refused
     * or invalid write changes nothing; after OTA_ERR_IO the block's range is
     * unspecified (part may be written): treat the transfer as interrupted,
     * i.e. abort and create again, or resume_file after a reset.
     * Storage that programs whole units (flash) holds a unit a block covers
     * only in part in RAM until it is complete; progress_save stores such
     * bytes with the record, so they count as written. A port holds a few
     * such units: blocks in order or in reverse order need at most two, and a
     * write needing more (unaligned blocks in random order) is refused with
     * OTA_ERR_OUT_OF_MEMORY.
     * @return size (every byte written) on success; OTA_ERR_NULL_FILE_CONTEXT
     *         (no open file); OTA_ERR_INVALID_ARG (data NULL, size 0, range
     *         beyond the file); OTA_ERR_FLASH_RULE (different bytes already
     *         written there); OTA_ERR_OUT_OF_MEMORY (too many partly written
     *         units); OTA_ERR_IO.
     */
    int32_t (*write_block)(void *ctx, uint32_t offset, const uint8_t *data, uint32_t size);

    /**
     * Finish the open file: verify file->signature over the whole file with the
     * signer named by file->cert_name, then close the file (also when
     * verification fails). On success the image is ready for activate.
     * Every port does it with ota_verify_close (verify/), so every port
     * gives the same code for the same failure.
     * @return OTA_OK; OTA_ERR_NULL_FILE_CONTEXT (nothing open);
     *         OTA_ERR_SIGNATURE_CHECK_FAILED (wrong, empty or too long
     *         signature, unknown method); OTA_ERR_BAD_SIGNER_CERT (signer
     *         unknown or unusable); OTA_ERR_FILE_CLOSE (storage error, also
     *         any read error while verifying).
     */
    ota_err_t (*close_file)(void *ctx, const ota_pal_file_t *file);

    /**
     * Give up the open transfer and release it. Safe with nothing open, with a
     * file never created, and when called twice.
     * @return OTA_OK; OTA_ERR_FILE_ABORT (storage error while discarding).
     */
    ota_err_t (*abort)(void *ctx);

    /**
     * Make the closed, verified image the one that boots next. On a device
     * this resets and does not return; a host port returns OTA_OK and the
     * caller must then call reset.
     * @return OTA_OK; OTA_ERR_ACTIVATE_FAILED (no verified image, storage
     *         error); OTA_ERR_ROLLBACK (image older than the allowed minimum).
     */
    ota_err_t (*activate)(void *ctx);

    /**
     * Reset the device. On a pending-commit image this makes the bootloader
     * count a failed boot attempt and, when the budget is spent, revert.
     * A host port returns OTA_OK and the caller restarts the program.
     */
    ota_err_t (*reset)(void *ctx);

    /**
     * Move the image to state:
     *   TESTING  - always accepted while an update is in progress (no effect
     *              on storage);
     *   ACCEPTED - commit the running new image; refused with
     *              OTA_ERR_COMMIT_FAILED unless a closed, verified and booted
     *              image is pending commit;
     *   REJECTED - refuse the new image: a running pending image is reverted
     *              on the next reset, an open or closed one is discarded;
     *              OTA_ERR_REJECT_FAILED on storage error;
     *   ABORTED  - as REJECTED, for an update that was given up;
     *              OTA_ERR_ABORT_FAILED on storage error.
     * UNKNOWN and values >= OTA_IMAGE_STATE_COUNT give OTA_ERR_BAD_IMAGE_STATE.
     */
    ota_err_t (*set_image_state)(void *ctx, ota_image_state_t state);

    /**
     * The state of the image: PENDING_COMMIT while a new image runs under
     * test; INVALID after a failed close or a rejection in this boot; VALID
     * otherwise.
     */
    ota_pal_image_state_t (*get_image_state)(void *ctx);

    /**
     * Copy len bytes at offset of the file being received (open or closed)
     * into buf. Close-time verification (ota_verify_close) reads the file
     * through it, so it must work on the open file when close_file runs.
     * @return len on success; OTA_ERR_NULL_FILE_CONTEXT (no file);
     *         OTA_ERR_INVALID_ARG (range beyond the file); OTA_ERR_IO.
     */
    int32_t (*read_back)(void *ctx, uint32_t offset, uint8_t *buf, uint32_t len);

    /**
     * Store one progress record of len bytes (1 .. progress_capacity),
     * replacing the previous one, power-safely: after a power cut at any
     * moment, progress_load returns either the previous or the new record
     * whole, never a mix. Every block write_block accepted before the call is
     * durable when the new record is, so a record never claims a block that a
     * power cut could still lose.
     * @return OTA_OK; OTA_ERR_INVALID_ARG; OTA_ERR_IO.
     */
    ota_err_t (*progress_save)(void *ctx, const uint8_t *record, uint32_t len);

    /**
     * Read the stored progress record into buf (capacity cap).
     * @return the record's length; OTA_ERR_NOT_FOUND (none stored);
     *         OTA_ERR_OUT_OF_MEMORY (cap too small); OTA_ERR_IO.
     */
    int32_t (*progress_load)(void *ctx, uint8_t *buf, uint32_t cap);

    /**
     * Forget the stored progress record (power-safe: afterwards or after a
     * cut, progress_load finds either nothing or the old record).
     * @return OTA_OK; OTA_ERR_IO.
     */
    ota_err_t (*progress_clear)(void *ctx);
} ota_pal_t;

#endif /* OTTER_OTA_PAL_H */
