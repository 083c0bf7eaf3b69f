/*
 * libFuzzer harness: the file server's check of a signed URL's query, the
 * text a device controls. Input: the query (after '?'). A query is accepted
 * only if it names exactly thing, job, expires and sig, and then the
 * parameters it returns must sign to the same signature.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ota_url_sign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t key[32] = "fuzz-key-0123456789abcdef0123456";
    char query[2048], sig[65];
    ota_url_params_t p;
    if (size >= sizeof(query)) {
        return 0;
    }
    memcpy(query, data, size);
    query[size] = 0;
    if (ota_url_check(key, sizeof(key), "/files/1", query, 1000, &p) != OTA_URL_OK) {
        return 0;
    }
    if (p.expires <= 1000 ||
        ota_url_sign(key, sizeof(key), "/files/1", p.thing, p.job, p.expires, sig) != 0 ||
        strstr(query, sig) == NULL) {
        abort();
    }
    return 0;
}
