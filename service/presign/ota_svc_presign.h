/*
 * otter service: presigned URLs for the HTTP data plane.
 *
 * A presigned URL lets one thing fetch one stored file for one job until an
 * expiry time, with nothing but the URL:
 *
 *   <base>/files/<file id>?thing=<thing>&job=<job>&expires=<epoch s>&issued=<epoch s>
 *                         &signature=<64 hex>
 *
 * signature = hex(HMAC-SHA256(secret, "OTTER-HMAC-SHA256\n" path "\n" thing
 * "\n" job "\n" expires "\n" issued)), path = "/files/<file id>". `issued` is
 * when the URL was made (0 <= expires - issued <= OTA_SVC_PRESIGN_EXPIRY_MAX):
 * otter-http refuses URLs issued before a thing's credentials were rotated.
 * URLs made by earlier versions have no `issued` and are signed without it
 * (no "\n" issued); they still verify, and are taken as issued at expires -
 * OTA_SVC_PRESIGN_EXPIRY_MAX, the earliest they can have been. The secret is 32 random
 * bytes per fleet in <data_dir>/http/url-signing.key (mode 0600), created on
 * first use by whichever program needs it first (otter-service to sign,
 * otter-http to verify); creation is atomic, so both always agree.
 *
 * Stored job documents carry a placeholder instead of a URL, as AWS IoT's
 * "${aws:iot:s3-presigned-url:...}":
 *
 *   "update_data_url":"${otter:presigned-url:/files/<file id>:<expiry s>}"
 *
 * and ota_svc_presign_document() replaces it with a fresh URL every time the
 * document is sent to a thing.
 *
 * Threading: a signer is read-only after open; any thread.
 */
#ifndef OTA_SVC_PRESIGN_H
#define OTA_SVC_PRESIGN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Shortest URL lifetime, seconds (AWS's range). */
#define OTA_SVC_PRESIGN_EXPIRY_MIN 60
/** Longest URL lifetime, seconds. */
#define OTA_SVC_PRESIGN_EXPIRY_MAX 3600
/** Default URL lifetime, seconds. */
#define OTA_SVC_PRESIGN_EXPIRY_DEFAULT 1800
/** Secret file under the data directory. */
#define OTA_SVC_PRESIGN_KEY_FILE "http/url-signing.key"
/** Start of the placeholder in stored job documents. */
#define OTA_SVC_PRESIGN_PLACEHOLDER "${otter:presigned-url:"
/** auth_scheme sent beside a presigned URL (AWS's name for "the URL carries its authorization"). */
#define OTA_SVC_PRESIGN_AUTH_SCHEME "aws.s3.presigned"
/** Characters of a signature (hex of 32 bytes). */
#define OTA_SVC_PRESIGN_SIG_LEN 64

/** A fleet's signer. Opaque. */
typedef struct ota_svc_presign ota_svc_presign_t;

/** Outcome of ota_svc_presign_verify(). */
typedef enum ota_svc_presign_result {
    OTA_SVC_PRESIGN_OK = 0,       /**< signed by this fleet and not expired */
    OTA_SVC_PRESIGN_BAD = -1,     /**< malformed or wrong signature, or a field out of syntax */
    OTA_SVC_PRESIGN_EXPIRED = -2, /**< signed by this fleet, but the expiry has passed */
} ota_svc_presign_result_t;

/**
 * Opens the fleet's secret, creating <data_dir>/http/url-signing.key (0600,
 * folder 0700) when there is none.
 * @param data_dir the data directory.
 * @param err      receives a one-line reason on failure.
 * @param err_cap  size of err.
 * @return the signer, or NULL (reason in err).
 */
ota_svc_presign_t *ota_svc_presign_open(const char *data_dir, char *err, size_t err_cap);

/**
 * Frees a signer (wipes the secret).
 * @param p signer, or NULL (no-op).
 */
void ota_svc_presign_close(ota_svc_presign_t *p);

/**
 * Computes the signature of a URL's fields.
 * @param p       signer.
 * @param path    "/files/<id>".
 * @param thing   thing name.
 * @param job     job id.
 * @param issued  issue time, seconds since the Unix epoch, at most
 *                OTA_SVC_PRESIGN_EXPIRY_MAX before expires and not after it; or
 *                -1 for the form without an issue time (URLs of earlier versions).
 * @param expires expiry, seconds since the Unix epoch.
 * @param out     receives 64 lower-case hex characters and a NUL.
 * @return 0, or -1 (bad argument or HMAC failure).
 */
int ota_svc_presign_sign(const ota_svc_presign_t *p, const char *path, const char *thing,
                         const char *job, int64_t issued, int64_t expires,
                         char out[OTA_SVC_PRESIGN_SIG_LEN + 1]);

/**
 * Builds a presigned URL.
 * @param p       signer.
 * @param base    scheme, host and port, e.g. "https://ota.example.com:8443" (no trailing '/').
 * @param file_id store file id (> 0).
 * @param thing   valid thing name.
 * @param job     valid job id.
 * @param issued  issue time (now), seconds since the Unix epoch; signed into the URL.
 * @param expires expiry, seconds since the Unix epoch (issued + lifetime).
 * @return heap text (caller frees), or NULL (bad argument or out of memory).
 */
char *ota_svc_presign_url(const ota_svc_presign_t *p, const char *base, int64_t file_id,
                          const char *thing, const char *job, int64_t issued, int64_t expires);

/**
 * Checks a URL's fields as received: every text is checked for syntax
 * (thing and job names, decimal expiry and issue time, 64 hex characters),
 * then the signature is compared in constant time, then the expiry.
 * @param p         signer.
 * @param path      request path.
 * @param thing     "thing" query value, or NULL when absent.
 * @param job       "job" query value, or NULL.
 * @param expires   "expires" query value (decimal text), or NULL.
 * @param issued    "issued" query value (decimal text), or NULL when absent
 *                  (a URL of an earlier version, signed without it).
 * @param signature "signature" query value, or NULL.
 * @param now_s     current time, seconds since the Unix epoch.
 * @param issued_s  unless NULL, receives on OTA_SVC_PRESIGN_OK or
 *                  OTA_SVC_PRESIGN_EXPIRED the signed issue time, or expires -
 *                  OTA_SVC_PRESIGN_EXPIRY_MAX without one.
 * @return an ota_svc_presign_result_t.
 */
int ota_svc_presign_verify(const ota_svc_presign_t *p, const char *path, const char *thing,
                           const char *job, const char *expires, const char *issued,
                           const char *signature, int64_t now_s, int64_t *issued_s);

/**
 * Parses a placeholder "${otter:presigned-url:/files/<id>:<expiry s>}".
 * @param text      the whole string value.
 * @param file_id   receives the id.
 * @param expiry_s  receives the lifetime in seconds.
 * @return 0, or -1 when text is not a well-formed placeholder.
 */
int ota_svc_presign_parse_placeholder(const char *text, int64_t *file_id, int64_t *expiry_s);

/**
 * Formats a placeholder for a stored job document.
 * @param file_id  store file id (> 0).
 * @param expiry_s lifetime, OTA_SVC_PRESIGN_EXPIRY_MIN..MAX.
 * @param out      receives the text.
 * @param cap      size of out (64 is enough).
 * @return 0, or -1 (bad argument or too small).
 */
int ota_svc_presign_placeholder(int64_t file_id, int64_t expiry_s, char *out, size_t cap);

/**
 * Replaces every placeholder in a job document's afr_ota.files[].update_data_url
 * with a URL for this thing and job issued at now_s that expires now_s + the
 * placeholder's lifetime. Without a signer or a base URL the placeholders become null (as
 * does their auth_scheme), so the device falls back to another protocol.
 * @param p      signer, or NULL.
 * @param base   base URL, or NULL.
 * @param doc    the stored job document (JSON text).
 * @param thing  the thing it is sent to.
 * @param job    the job id.
 * @param now_s  current time, seconds since the Unix epoch.
 * @return heap text (caller frees): the document with URLs, or an unchanged
 *         copy when it holds no placeholder; NULL when out of memory.
 */
char *ota_svc_presign_document(const ota_svc_presign_t *p, const char *base, const char *doc,
                               const char *thing, const char *job, int64_t now_s);

#ifdef __cplusplus
}
#endif

#endif /* OTA_SVC_PRESIGN_H */
