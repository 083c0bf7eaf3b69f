/*
 * otter: the one error type shared by every device-side module.
 *
 * 0 is success; every failure is a distinct negative code. The first fifteen
 * failures correspond one to one to the FreeRTOS OTA PAL main codes
 * (0xe0 .. 0xee) so that status reports stay readable by AWS tooling;
 * ota_err_pal_code() gives that number.
 */
#ifndef OTTER_OTA_ERR_H
#define OTTER_OTA_ERR_H

#include "otter/ota_config_defaults.h"

#include <stdint.h>

/** Every result of a device-side otter call. 0 = success, < 0 = failure. */
typedef enum ota_err {
    OTA_OK = 0,
    /* Port-layer failures with a FreeRTOS counterpart (main code in brackets). */
    OTA_ERR_UNINITIALIZED = -1,           /**< (0xe0) called before init */
    OTA_ERR_OUT_OF_MEMORY = -2,           /**< (0xe1) a caller-owned buffer is too small */
    OTA_ERR_NULL_FILE_CONTEXT = -3,       /**< (0xe2) no file is open for this call */
    OTA_ERR_SIGNATURE_CHECK_FAILED = -4,  /**< (0xe3) the code signature does not verify */
    OTA_ERR_RX_FILE_CREATE_FAILED = -5,   /**< (0xe4) cannot create the receive file */
    OTA_ERR_RX_FILE_TOO_LARGE = -6,       /**< (0xe5) the file does not fit the slot */
    OTA_ERR_BOOT_INFO_CREATE_FAILED = -7, /**< (0xe6) cannot write boot metadata */
    OTA_ERR_BAD_SIGNER_CERT = -8,         /**< (0xe7) signer certificate missing or unusable */
    OTA_ERR_BAD_IMAGE_STATE = -9,         /**< (0xe8) image state value not allowed */
    OTA_ERR_ABORT_FAILED = -10,           /**< (0xe9) could not abort the transfer */
    OTA_ERR_REJECT_FAILED = -11,          /**< (0xea) could not reject the image */
    OTA_ERR_COMMIT_FAILED = -12,          /**< (0xeb) could not commit (accept) the image */
    OTA_ERR_ACTIVATE_FAILED = -13,        /**< (0xec) could not activate the new image */
    OTA_ERR_FILE_ABORT = -14,             /**< (0xed) error while aborting the file */
    OTA_ERR_FILE_CLOSE = -15,             /**< (0xee) error while closing the file */
    /* Failures beyond the FreeRTOS PAL. */
    OTA_ERR_INVALID_ARG = -16, /**< a NULL pointer or out-of-range argument */
    OTA_ERR_IO = -17,          /**< the storage device reported an error */
    OTA_ERR_FLASH_RULE = -18,  /**< a flash rule was broken (alignment, erase first) */
    OTA_ERR_NOT_FOUND = -19,   /**< nothing stored (e.g. no progress record) */
    OTA_ERR_CORRUPT = -20,     /**< stored data failed its integrity check */
    OTA_ERR_WRONG_STATE = -21, /**< the call is not allowed in the current state */
    OTA_ERR_RESERVED = -22,    /**< reserved: no function returns it (keeps later codes stable) */
    OTA_ERR_ROLLBACK = -23,    /**< image version below the anti-rollback minimum */
    OTA_ERR_BAD_IMAGE = -24,   /**< image header missing or malformed */
    /* Agent and protocol failures. */
    OTA_ERR_BAD_JOB_DOC = -25,       /**< a job document the agent cannot use */
    OTA_ERR_UNSUPPORTED = -26,       /**< unknown signature method or no usable data plane */
    OTA_ERR_BAD_MESSAGE = -27,       /**< a malformed MQTT message (JSON or CBOR) */
    OTA_ERR_TIMEOUT = -28,           /**< requests went unanswered too often */
    OTA_ERR_SERVICE_REJECTED = -29,  /**< the service refused a request */
    OTA_ERR_MQTT = -30,              /**< the MQTT interface failed to publish or subscribe */
    OTA_ERR_CANCELED = -31,          /**< the job was canceled or removed by the service */
    OTA_ERR_SELF_TEST_FAILED = -32,  /**< the new image failed its self-test */
    OTA_ERR_VERSION = -33,           /**< the new image is not newer than the old one */
    OTA_ERR_WRONG_DEVICE_TYPE = -34, /**< the job or image is for other device types */
} ota_err_t;

/** Lowest (most negative) code defined above; for range checks in tests. */
#define OTA_ERR_MIN_CODE (-34)

/**
 * Name of an error code, e.g. "OTA_ERR_SIGNATURE_CHECK_FAILED".
 * @param err any value; unknown values give "OTA_ERR_UNKNOWN".
 * @return a static string, never NULL.
 */
const char *ota_err_str(ota_err_t err);

/**
 * FreeRTOS OTA PAL main code for an error: 0 for OTA_OK, 0xe0 .. 0xee for the
 * codes that have a FreeRTOS counterpart, and 0xf0 + n for the others (n = the
 * code's position after OTA_ERR_FILE_CLOSE), so every failure stays distinct in
 * a status report's "0x000000e3"-style reason.
 */
uint32_t ota_err_pal_code(ota_err_t err);

#endif /* OTTER_OTA_ERR_H */
