/*
 * otter CLI: the OTA job document, built exactly as AWS builds it.
 *
 * {"afr_ota":{"protocols":["MQTT"],"streamname":…,"files":[{"filepath":…,
 * "filesize":…,"fileid":0,"certfile":…,"fileType":…,"update_data_url":null,
 * "auth_scheme":null,"sig-sha256-ecdsa":"<base64 DER>"}]}}
 *
 * With HTTP among the protocols, update_data_url holds the placeholder the
 * service replaces with a presigned URL per thing (see ota_svc_presign.h)
 * and auth_scheme is "aws.s3.presigned".
 */
#ifndef CLI_JOB_DOC_H
#define CLI_JOB_DOC_H

#include <stddef.h>
#include <stdint.h>

/** What goes into a job document (one file, file id 0). */
typedef struct cli_job_doc {
    /** Stream id, "AFR_OTA-<uuid>". */
    const char *stream_id;
    /** filepath for the device. */
    const char *file_path;
    /** Size of the published file in bytes. */
    size_t file_size;
    /** certfile: the signer the device verifies with. */
    const char *cert_name;
    /** fileType, 0-255. */
    unsigned file_type;
    /** DER signature and its length. */
    const uint8_t *sig;
    /** Length of sig. */
    size_t sig_len;
    /** Data planes in order of preference ("MQTT", "HTTP"); none: MQTT alone. */
    const char *const *protocols;
    /** Entries in protocols. */
    size_t n_protocols;
    /** update_data_url placeholder, or NULL for null (MQTT only). */
    const char *data_url;
} cli_job_doc_t;

/**
 * Build the job document as compact JSON text.
 * @return heap text (caller frees), or NULL when out of memory.
 */
char *cli_job_doc(const cli_job_doc_t *d);

#endif /* CLI_JOB_DOC_H */
