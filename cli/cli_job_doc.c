/* otter CLI: OTA job documents with cJSON. */
#include "cli_job_doc.h"

#include <stdlib.h>

#include <cjson/cJSON.h>

#include "cli_common.h"
#include "ota_svc_presign.h"

char *cli_job_doc(const cli_job_doc_t *d)
{
    char *sig64 = cli_base64(d->sig, d->sig_len);
    cJSON *root = cJSON_CreateObject();
    cJSON *ota = cJSON_AddObjectToObject(root, "afr_ota");
    cJSON *protocols = cJSON_AddArrayToObject(ota, "protocols");
    for (size_t i = 0; i < d->n_protocols; i++) {
        cJSON_AddItemToArray(protocols, cJSON_CreateString(d->protocols[i]));
    }
    if (d->n_protocols == 0) {
        cJSON_AddItemToArray(protocols, cJSON_CreateString("MQTT"));
    }
    cJSON_AddStringToObject(ota, "streamname", d->stream_id);
    cJSON *files = cJSON_AddArrayToObject(ota, "files");
    cJSON *f = cJSON_CreateObject();
    cJSON_AddItemToArray(files, f);
    cJSON_AddStringToObject(f, "filepath", d->file_path);
    cJSON_AddNumberToObject(f, "filesize", (double)d->file_size);
    cJSON_AddNumberToObject(f, "fileid", 0);
    cJSON_AddStringToObject(f, "certfile", d->cert_name);
    cJSON_AddNumberToObject(f, "fileType", d->file_type);
    if (d->data_url != NULL) {
        cJSON_AddStringToObject(f, "update_data_url", d->data_url);
        cJSON_AddStringToObject(f, "auth_scheme", OTA_SVC_PRESIGN_AUTH_SCHEME);
    } else {
        cJSON_AddNullToObject(f, "update_data_url");
        cJSON_AddNullToObject(f, "auth_scheme");
    }
    cJSON *sig = cJSON_AddStringToObject(f, "sig-sha256-ecdsa", sig64 ? sig64 : "");
    char *text = (sig64 && sig && protocols && files) ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    free(sig64);
    if (text == NULL) {
        return NULL;
    }
    /* Hand back memory the caller frees with free(). */
    char *out = cli_sprintf("%s", text);
    cJSON_free(text);
    return out;
}
