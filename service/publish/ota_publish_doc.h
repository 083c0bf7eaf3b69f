/*
 * otter (CLI job create and web console): the OTA job document, built exactly as AWS builds it.
 *
 * {"afr_ota":{"protocols":["MQTT"],"streamname":…,"files":[{"filepath":…,
 * "filesize":…,"fileid":0,"certfile":…,"fileType":…,"update_data_url":null,
 * "auth_scheme":null,"sig-sha256-ecdsa":"<base64 DER>"}]}}
 * (or "sig-sha256-rsa":"<base64>" for an RSA signature, as AWS writes it)
 *
 * otter's extensions in the file entry (devices that do not know them skip
 * unknown keys, as the FreeRTOS parser does):
 *   "otterVersion": "X.Y.Z"         the version the file installs (firmware only)
 *   "otterDeviceTypes": ["a", ...]  the device types the job is for (only when
 *                                   the job names some); a device of another
 *                                   type refuses the job before downloading
 * With HTTP among the protocols, update_data_url holds the placeholder the
 * service replaces with a presigned URL per thing (see ota_svc_presign.h)
 * and auth_scheme is "aws.s3.presigned".
 */
#ifndef OTA_PUBLISH_DOC_H
#define OTA_PUBLISH_DOC_H

#include <stddef.h>
#include <stdint.h>

#include "otter/ota_pal.h"

/** What goes into a job document (one file, file id 0). */
typedef struct ota_publish_doc {
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
    /** The signature (ECDSA: DER; RSA: as long as the modulus). */
    const uint8_t *sig;
    /** Length of sig. */
    size_t sig_len;
    /** Its method, which names the document's key (0: ECDSA). */
    ota_sig_method_t sig_method;
    /** Data planes in order of preference ("MQTT", "HTTP"); none: MQTT alone. */
    const char *const *protocols;
    /** Entries in protocols. */
    size_t n_protocols;
    /** update_data_url placeholder, or NULL for null (MQTT only). */
    const char *data_url;
    /** "otterVersion", or NULL to leave it out. */
    const char *version;
    /** "otterDeviceTypes" as "a,b", or NULL to leave it out. */
    const char *device_types;
} ota_publish_doc_t;

/**
 * Build the job document as compact JSON text.
 * @return heap text (caller frees), or NULL when out of memory.
 */
char *ota_publish_doc(const ota_publish_doc_t *d);

#endif /* OTA_PUBLISH_DOC_H */
