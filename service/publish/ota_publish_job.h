/*
 * otter: publishing a signed image as a job — the image into the store's files, a
 * stream for it, the job document and the job — the one step of `otter job create`
 * and of the web console's upload that changes the store.
 *
 * Host code: uses the heap. Error texts read "<what went wrong>; <what to do>".
 */
#ifndef OTA_PUBLISH_JOB_H
#define OTA_PUBLISH_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "otter/ota_pal.h"
#include "ota_store.h"

/** A signed image and how devices get it. */
typedef struct ota_publish_job {
    const char *tmp_dir;   /**< folder for the temporary import file (the data folder) */
    const char *stream_id; /**< "AFR_OTA-<uuid>" */
    const char *job_id;
    const uint8_t *image; /**< the image as published (with its header for firmware) */
    size_t image_len;
    const uint8_t *sig; /**< signature over image (ECDSA: DER) */
    size_t sig_len;
    ota_sig_method_t sig_method;  /**< its method (0: sig-sha256-ecdsa) */
    uint32_t version;             /**< the version it installs (firmware, file_type 0) */
    unsigned file_type;           /**< 0 = firmware */
    const char *file_path;        /**< the device's file name; NULL: firmware.bin */
    const char *cert_name;        /**< certfile; NULL: codesign.crt */
    const char *device_types;     /**< "a,b" or NULL */
    const char *const *protocols; /**< data planes; none: MQTT */
    size_t n_protocols;
    int http; /**< HTTP among them: a presigned URL placeholder */
    uint32_t url_expiry_s;
} ota_publish_job_t;

/** Result: the job id is taken (nothing written). */
#define OTA_PUBLISH_TAKEN 1

/**
 * Imports the image, creates its stream and the job from spec (whose limits,
 * rollout and targets the caller filled; document, stream, version and device
 * types are filled here).
 * @param job_flag how the caller names the job id in advice ("--job-id", "jobId").
 * @return 0; OTA_PUBLISH_TAKEN; or -1, each with the text in err.
 */
int ota_publish_job(ota_store_t *store, const ota_publish_job_t *p, ota_store_job_spec_t *spec,
                    const char *job_flag, char *err, size_t cap);

#endif /* OTA_PUBLISH_JOB_H */
