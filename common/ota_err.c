/* otter: names and FreeRTOS codes of the error type. */
#include "otter/ota_err.h"

#include <stddef.h>

static const char *const ota_err_names[] = {
    "OTA_OK",
    "OTA_ERR_UNINITIALIZED",
    "OTA_ERR_OUT_OF_MEMORY",
    "OTA_ERR_NULL_FILE_CONTEXT",
    "OTA_ERR_SIGNATURE_CHECK_FAILED",
    "OTA_ERR_RX_FILE_CREATE_FAILED",
    "OTA_ERR_RX_FILE_TOO_LARGE",
    "OTA_ERR_BOOT_INFO_CREATE_FAILED",
    "OTA_ERR_BAD_SIGNER_CERT",
    "OTA_ERR_BAD_IMAGE_STATE",
    "OTA_ERR_ABORT_FAILED",
    "OTA_ERR_REJECT_FAILED",
    "OTA_ERR_COMMIT_FAILED",
    "OTA_ERR_ACTIVATE_FAILED",
    "OTA_ERR_FILE_ABORT",
    "OTA_ERR_FILE_CLOSE",
    "OTA_ERR_INVALID_ARG",
    "OTA_ERR_IO",
    "OTA_ERR_FLASH_RULE",
    "OTA_ERR_NOT_FOUND",
    "OTA_ERR_CORRUPT",
    "OTA_ERR_WRONG_STATE",
    "OTA_ERR_RESERVED",
    "OTA_ERR_ROLLBACK",
    "OTA_ERR_BAD_IMAGE",
    "OTA_ERR_BAD_JOB_DOC",
    "OTA_ERR_UNSUPPORTED",
    "OTA_ERR_BAD_MESSAGE",
    "OTA_ERR_TIMEOUT",
    "OTA_ERR_SERVICE_REJECTED",
    "OTA_ERR_MQTT",
    "OTA_ERR_CANCELED",
    "OTA_ERR_SELF_TEST_FAILED",
    "OTA_ERR_VERSION",
};

/* The build fails when a code is added without its name. */
typedef char ota_err_names_complete
    [(sizeof ota_err_names / sizeof ota_err_names[0] == (size_t)(1 - OTA_ERR_MIN_CODE)) ? 1 : -1];

const char *ota_err_str(ota_err_t err)
{
    int32_t n = -(int32_t)err;
    if (n < 0 || n > -OTA_ERR_MIN_CODE) {
        return "OTA_ERR_UNKNOWN";
    }
    return ota_err_names[n];
}

uint32_t ota_err_pal_code(ota_err_t err)
{
    int32_t n = -(int32_t)err;
    if (n <= 0) {
        return 0u;
    }
    if (n <= -OTA_ERR_FILE_CLOSE) {
        return 0xe0u + (uint32_t)(n - 1);
    }
    return 0xf0u + (uint32_t)(n + OTA_ERR_FILE_CLOSE - 1);
}
