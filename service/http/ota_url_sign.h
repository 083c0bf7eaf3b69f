/*
 * otter service: signed, expiring file URLs for the HTTP data plane.
 *
 * A URL names one stored file for one thing and one job until a time:
 *
 *   <base>/files/<file id>?thing=<thing>&job=<job>&expires=<unix s>&sig=<hex>
 *
 * sig is HMAC-SHA256 under the service's URL key of the canonical string
 *
 *   "otter-url-v1\n" <path> "\n" <thing> "\n" <job> "\n" <expires>
 *
 * (path "/files/<id>", thing and job percent-decoded, expires in decimal),
 * 64 lowercase hex digits. thing and job may not hold control characters, so
 * the string has one reading. The check compares in constant time.
 */
#ifndef OTA_URL_SIGN_H
#define OTA_URL_SIGN_H

#include <stddef.h>
#include <stdint.h>

/** Longest thing name and job id in a URL (AWS: 128 and 64). */
#define OTA_URL_THING_MAX 128u
#define OTA_URL_JOB_MAX 64u
/** Bytes of the key at least (HMAC-SHA256 wants 32). */
#define OTA_URL_KEY_MIN 32u

/** What a URL check found. */
typedef enum ota_url_result {
    OTA_URL_OK = 0,
    OTA_URL_MALFORMED = 1,     /**< missing, repeated or unknown parameters, bad encoding */
    OTA_URL_BAD_SIGNATURE = 2, /**< the signature does not match (tampered, other key) */
    OTA_URL_EXPIRED = 3,       /**< signed correctly, but its time has passed */
} ota_url_result_t;

/** The parameters of a checked URL. */
typedef struct ota_url_params {
    char thing[OTA_URL_THING_MAX + 1];
    char job[OTA_URL_JOB_MAX + 1];
    int64_t expires;
} ota_url_params_t;

/**
 * The signature of (path, thing, job, expires) as 64 hex digits and a NUL.
 * @return 0; -1 (NULL, short key, control characters, over-long names).
 */
int ota_url_sign(const uint8_t *key, size_t key_len, const char *path, const char *thing,
                 const char *job, int64_t expires, char sig[65]);

/**
 * Make the URL base + "/files/<file_id>?thing=..&job=..&expires=..&sig=..".
 * @return its length; -1 (bad arguments, out too small).
 */
int ota_url_make(const uint8_t *key, size_t key_len, const char *base, int64_t file_id,
                 const char *thing, const char *job, int64_t expires, char *out, size_t cap);

/**
 * Check the query of a request for path at time now (unix seconds).
 * @param query the text after '?', not decoded (NULL: none).
 * @param out   receives the parameters when the result is OTA_URL_OK (may be NULL).
 */
ota_url_result_t ota_url_check(const uint8_t *key, size_t key_len, const char *path,
                               const char *query, int64_t now, ota_url_params_t *out);

#endif /* OTA_URL_SIGN_H */
