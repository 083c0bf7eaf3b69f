/* otter: OTA job documents with cJSON (the CLI's job create and the web console). */
#include "ota_publish_doc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include <mbedtls/base64.h>
#include "ota_publish_sign.h"
#include "ota_svc_presign.h"

/* Base64 text of data (heap), or NULL. */
static char *base64(const uint8_t *data, size_t len)
{
    size_t cap = 4 * ((len + 2) / 3) + 1, olen = 0;
    char *out = malloc(cap);
    if (out != NULL && mbedtls_base64_encode((unsigned char *)out, cap, &olen, data, len) != 0) {
        free(out);
        out = NULL;
    }
    return out;
}

char *ota_publish_doc(const ota_publish_doc_t *d)
{
    char *sig64 = base64(d->sig, d->sig_len);
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
    cJSON *sig = cJSON_AddStringToObject(f, ota_publish_sig_key(d->sig_method), sig64 ? sig64 : "");
    if (d->version != NULL) {
        cJSON_AddStringToObject(f, "otterVersion", d->version);
    }
    if (d->device_types != NULL) {
        cJSON *types = cJSON_AddArrayToObject(f, "otterDeviceTypes");
        for (const char *t = d->device_types; types != NULL && *t;) {
            size_t n = strcspn(t, ",");
            char one[72];
            snprintf(one, sizeof one, "%.*s", (int)(n < 71 ? n : 71), t);
            cJSON_AddItemToArray(types, cJSON_CreateString(one));
            t += n + (t[n] == ',');
        }
    }
    char *text = (sig64 && sig && protocols && files) ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    free(sig64);
    if (text == NULL) {
        return NULL;
    }
    /* Hand back memory the caller frees with free(). */
    char *out = strdup(text);
    cJSON_free(text);
    return out;
}
