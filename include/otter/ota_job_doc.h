/*
 * otter: parsing AWS IoT Jobs messages that carry an OTA job.
 *
 * Two messages name the next pending job (OTA wire protocol, section 2):
 *
 *   $aws/things/<thing>/jobs/notify-next    {"timestamp":..,"execution":{..}}
 *   $aws/things/<thing>/jobs/$next/get/accepted
 *                                 {"clientToken":..,"timestamp":..,"execution":{..}}
 *
 * Either may lack "execution" (nothing pending). ota_job_parse() reads the
 * execution (job id, status, version, the statusDetails this device wrote)
 * and the first file of its "afr_ota" job document into a caller-owned
 * ota_job_t. Nothing is allocated, nothing is kept between calls, and no
 * token array is needed: values are found by their place in the text.
 *
 * OTA_HTTP_PLANE builds also read "protocols" in order (the first listed is
 * preferred) and the file's "update_data_url" (at most OTA_HTTP_URL_MAX
 * bytes, no control characters) and check "auth_scheme" (a string of at
 * most 32 bytes, or null); other builds ignore both keys.
 *
 * Tolerance (at least that of the FreeRTOS agent): numbers as JSON numbers or
 * quoted strings, decimal or "0x" hex; null for filepath, certfile,
 * update_data_url and auth_scheme; unknown keys anywhere; keys in any order;
 * CR/LF (raw or as the JSON escapes \n, \r) inside the base64 signature.
 *
 * JSON: the whole message must be one well-formed JSON object (objects,
 * arrays, strings with valid escapes), nested at most OTA_JOB_MAX_DEPTH deep.
 * Like the FreeRTOS agent's tokenizer, a bare word stands for a number
 * (0x1f is taken as hex; true, false, null as themselves), and raw control
 * characters inside strings are kept (CR/LF in base64).
 *
 * Strictness: numbers out of uint32 range or with anything but digits are
 * refused; strings that do not fit their buffer are refused, never
 * truncated; escapes other than \" \\ \/ in ids, names and paths are refused
 * (so are control characters, and "/", "+", "#" in the job id and stream
 * name, which become MQTT topic levels); a known key that appears twice in
 * one object is refused.
 */
#ifndef OTTER_OTA_JOB_DOC_H
#define OTTER_OTA_JOB_DOC_H

#include "otter/ota_config_defaults.h"

#include <stddef.h>
#include <stdint.h>

#include "otter/ota_err.h"
#include "otter/ota_pal.h"

/**
 * Longest base64 signature text accepted, in characters, after CR/LF are
 * removed: exactly what OTA_PAL_SIGNATURE_MAX bytes encode to (96 for 72).
 */
#define OTA_JOB_SIG_B64_MAX (((OTA_PAL_SIGNATURE_MAX + 2u) / 3u) * 4u)

/**
 * Deepest nesting of objects and arrays a message may have (a full execution
 * nests 7 deep: the message, execution, jobDocument, afr_ota, files, a file,
 * attr). Deeper messages are refused (OTA_JOB_PROBLEM_TOO_DEEP).
 */
#define OTA_JOB_MAX_DEPTH 16u

/** Data planes named in "protocols" (bit mask in ota_job_t.protocols). */
typedef enum ota_job_protocol {
    OTA_PROTO_MQTT = 1, /**< "MQTT": file blocks over MQTT streams */
    OTA_PROTO_HTTP = 2, /**< "HTTP": range requests to update_data_url (OTA_HTTP_PLANE builds) */
} ota_job_protocol_t;

/** Most device types a job document may name ("otterDeviceTypes"). */
#define OTA_JOB_DEVICE_TYPES_MAX 16u

/** Job execution status ("execution.status"). */
typedef enum ota_job_status {
    OTA_JOB_STATUS_NONE = 0, /**< no "status" in the message */
    OTA_JOB_STATUS_QUEUED,
    OTA_JOB_STATUS_IN_PROGRESS,
    OTA_JOB_STATUS_SUCCEEDED,
    OTA_JOB_STATUS_FAILED,
    OTA_JOB_STATUS_TIMED_OUT,
    OTA_JOB_STATUS_REJECTED,
    OTA_JOB_STATUS_REMOVED,
    OTA_JOB_STATUS_CANCELED,
} ota_job_status_t;

/** Self-test stage this device last reported ("statusDetails.self_test"). */
typedef enum ota_self_test {
    OTA_SELF_TEST_NONE = 0,   /**< absent or another value */
    OTA_SELF_TEST_READY = 1,  /**< "ready": verified, about to activate */
    OTA_SELF_TEST_ACTIVE = 2, /**< "active": the new image is under test */
} ota_self_test_t;

/** A parsed execution and the first file of its job document. */
typedef struct ota_job {
    /** "execution.jobId", NUL-terminated. */
    char job_id[OTA_JOB_ID_MAX + 1];
    /** "execution.status". */
    ota_job_status_t status;
    /** "execution.versionNumber" (0 if absent). */
    uint32_t version_number;

    /* "execution.statusDetails", as this device last wrote them. Values that
     * are missing or do not parse leave the field at its "absent" value. */
    /** An ota_self_test_t. */
    uint8_t self_test;
    /** 1 if "updatedBy" held a number ("0x00090002"). */
    uint8_t has_updated_by;
    /** 1 if "receive" held "n/N". */
    uint8_t has_receive;
    /** Version that performed the download: major << 24 | minor << 16 | build. */
    uint32_t updated_by;
    /** "receive": blocks received so far and in total (information only). */
    uint32_t received_blocks;
    uint32_t total_blocks;

    /* "execution.jobDocument.afr_ota". */
    /** OTA_PROTO_* bits from "protocols". */
    uint8_t protocols;
#if OTA_HTTP_PLANE
    /** The OTA_PROTO_* listed first in "protocols" (the preferred plane). */
    uint8_t first_protocol;
    /** "files[0].update_data_url", NUL-terminated ("" when absent or null). */
    char url[OTA_HTTP_URL_MAX + 1];
#endif
    /** 1 if "filepath" was a string, 0 if absent or null. */
    uint8_t has_file_path;
    /** 1 if "certfile" was a string, 0 if absent or null. */
    uint8_t has_cert_name;
    /** "streamname", NUL-terminated. */
    char stream[OTA_STREAM_NAME_MAX + 1];
    /** "files[0].filepath", NUL-terminated ("" when has_file_path is 0). */
    char file_path[OTA_FILE_PATH_MAX + 1];
    /** "files[0].certfile", NUL-terminated ("" when has_cert_name is 0). */
    char cert_name[OTA_CERT_NAME_MAX + 1];
    /** "files[0].filesize", > 0. */
    uint32_t file_size;
    /** "files[0].fileid", 0..255. */
    uint32_t file_id;
    /** "files[0].fileType", 0..255 (0 if absent). */
    uint32_t file_type;
    /** Entries in device_type_tags; 0 when "otterDeviceTypes" is absent or
     *  null (the job names no types: any device may take it). */
    uint8_t n_device_types;
    /** Tags (ota_device_type_tag) of the names in "files[0].otterDeviceTypes". */
    uint32_t device_type_tags[OTA_JOB_DEVICE_TYPES_MAX];
    /** Signature method, from the key name: "sig-sha256-ecdsa", or "sig-sha256-rsa"
     *  (OTA_SIG_RSA builds only; ECDSA is preferred when a document has both). */
    ota_sig_method_t sig_method;
    /** The decoded signature (ECDSA: DER; RSA: the 256 or 384 signature bytes). */
    uint8_t signature[OTA_PAL_SIGNATURE_MAX];
    /** Bytes in signature, 1..OTA_PAL_SIGNATURE_MAX. */
    size_t signature_len;
} ota_job_t;

/** Why a message or job document cannot be used; each has a short text. */
typedef enum ota_job_problem {
    OTA_JOB_PROBLEM_NONE = 0,
    OTA_JOB_PROBLEM_BAD_JSON,       /**< not well-formed JSON */
    OTA_JOB_PROBLEM_TOO_DEEP,       /**< objects and arrays nested deeper than OTA_JOB_MAX_DEPTH */
    OTA_JOB_PROBLEM_NO_AFR_OTA,     /**< the job document has no "afr_ota": not an OTA job */
    OTA_JOB_PROBLEM_MISSING_FIELD,  /**< a required key is absent */
    OTA_JOB_PROBLEM_BAD_VALUE,      /**< wrong type, out of range, bad escape, duplicate key */
    OTA_JOB_PROBLEM_ZERO_SIZE,      /**< "filesize" is 0 */
    OTA_JOB_PROBLEM_FIELD_TOO_LONG, /**< a string does not fit its buffer */
    OTA_JOB_PROBLEM_BAD_SIGNATURE_ENCODING, /**< the signature is not base64, or empty */
    OTA_JOB_PROBLEM_UNKNOWN_SIG_METHOD,     /**< only signature methods the device lacks */
    OTA_JOB_PROBLEM_NO_PROTOCOL,            /**< "protocols" has no data plane the device uses */
    OTA_JOB_PROBLEM_SIG_METHOD_DISABLED,    /**< "sig-sha256-rsa" in a build without OTA_SIG_RSA */
} ota_job_problem_t;

/** Number of ota_job_problem_t values. */
#define OTA_JOB_PROBLEM_COUNT 12

/** What ota_job_parse() found wrong, for the FAILED status report. */
typedef struct ota_job_issue {
    /** The problem; OTA_JOB_PROBLEM_NONE on OTA_OK and OTA_ERR_NOT_FOUND. */
    ota_job_problem_t problem;
    /** Static string naming the JSON key concerned ("filesize"), or NULL. */
    const char *field;
} ota_job_issue_t;

/**
 * Parse a notify-next or $next/get/accepted message.
 *
 * Checks happen in a fixed order, independent of key order, and the first
 * failing check is reported: the message's JSON; "execution"; "jobId";
 * "status"; then "jobDocument"; "afr_ota"; "protocols"; "streamname"; "files"; and of the
 * first file "filepath", "filesize", "fileid", "certfile", "fileType",
 * "otterDeviceTypes" (an array of 1-16 names of 1-64 [A-Za-z0-9_.-], or null)
 * and the signature. "versionNumber" and "statusDetails" never fail a message.
 *
 * @param json        the message payload; need not be NUL-terminated (a NUL
 *                    byte inside len is refused); borrowed for the call.
 * @param len         payload length in bytes.
 * @param out         caller-owned result; zeroed, then filled as described
 *                    per return code. Its strings are NUL-terminated after
 *                    every return but OTA_ERR_INVALID_ARG.
 * @param issue       optional (may be NULL): receives the problem and the
 *                    field it concerns.
 * @return OTA_OK: every field of out is filled.
 *         OTA_ERR_NOT_FOUND: well-formed message without an execution, or
 *         with "execution":null (no job pending); out stays zeroed.
 *         OTA_ERR_BAD_MESSAGE: not JSON, or no usable execution or jobId
 *         (missing, empty, too long, bad characters): there is no job to
 *         report to. issue says why (BAD_JSON, MISSING_FIELD, BAD_VALUE,
 *         FIELD_TOO_LONG).
 *         OTA_ERR_BAD_JOB_DOC: job_id is filled, and so are status,
 *         version_number and the statusDetails fields unless "status" is
 *         the problem (then status is NONE); issue says why the job cannot
 *         be used (BAD_JSON, NO_AFR_OTA, MISSING_FIELD, BAD_VALUE, ZERO_SIZE,
 *         FIELD_TOO_LONG, BAD_SIGNATURE_ENCODING). The agent reports FAILED
 *         for the job.
 *         OTA_ERR_UNSUPPORTED: like OTA_ERR_BAD_JOB_DOC, for
 *         UNKNOWN_SIG_METHOD (no "sig-sha256-ecdsa", nor "sig-sha256-rsa"
 *         with OTA_SIG_RSA, but another "sig-" key), SIG_METHOD_DISABLED
 *         (only "sig-sha256-rsa", in a build without OTA_SIG_RSA; field
 *         "sig-sha256-rsa")
 *         and NO_PROTOCOL ("protocols" without "MQTT", or, in
 *         OTA_HTTP_PLANE builds, without "MQTT" and without "HTTP" with an
 *         "update_data_url"; field "protocols" or "update_data_url").
 *         OTA_ERR_OUT_OF_MEMORY: objects and arrays nested deeper than
 *         OTA_JOB_MAX_DEPTH (issue: TOO_DEEP).
 *         OTA_ERR_INVALID_ARG: json or out NULL, or len above INT_MAX.
 */
ota_err_t ota_job_parse(const char *json, size_t len, ota_job_t *out, ota_job_issue_t *issue);

/**
 * Short text of a problem, e.g. "missing field", for status reports.
 * @return a static string, never NULL ("unknown problem" for other values).
 */
const char *ota_job_problem_str(ota_job_problem_t problem);

#endif /* OTTER_OTA_JOB_DOC_H */
