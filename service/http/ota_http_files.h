/*
 * otter HTTP data plane: stored firmware files served to devices by
 * presigned URL, as a request handler of a libmicrohttpd daemon.
 *
 *   GET|HEAD /files/<file id>?thing=T&job=J&expires=E&issued=I&signature=S
 *
 * (I, the signed issue time, is absent from URLs of earlier versions, which are
 * taken as issued OTA_SVC_PRESIGN_EXPIRY_MAX before E.)
 *
 * Checks, in this order, and the answer when one fails:
 *   1. method GET or HEAD                       else 405 (Allow: GET, HEAD)
 *   2. signature valid for path, thing, job, expiry and issue time (constant time)
 *                                               else 403 "signature"
 *   3. not expired                              else 403 "expired"
 *   4. the thing's request budget                else 429 (Retry-After: 1)
 *   5. the job exists, the thing may read its file (it is not disabled or
 *      revoked and has an execution that is released and not CANCELED or
 *      REMOVED), the file id is a file of the job's stream
 *                                               else 404
 *   6. the URL was not issued (I) in a second before the thing's last
 *      credential rotation (otter thing rotate)  else 403 "rotated"
 *   7. Range: one range "bytes=a-b", "bytes=a-" or "bytes=-n" starting inside
 *      the file (an end past the file is cut to the file, RFC 9110); several
 *      ranges, a malformed one or one starting at or past the end
 *                                               else 416 (with the size in Content-Range)
 *   8. the thing's answer-byte budget (GET)      else 429 (Retry-After: 1)
 * then 206 with Content-Range (or 200 with the whole file without Range, or
 * when If-Range does not match the ETag), ETag and Accept-Ranges on every
 * file answer. The bytes come from the file the store names for that id;
 * nothing of the URL reaches the file system.
 *
 * Threading: the handler, tick and stats run on the daemon's one polling
 * thread (MHD_USE_INTERNAL_POLLING_THREAD without a thread pool), which is
 * what the store handle and the budgets require.
 */
#ifndef OTA_HTTP_FILES_H
#define OTA_HTTP_FILES_H

#include <stdint.h>

#include <microhttpd.h>

#include "ota_store.h"
#include "ota_svc_budget.h"
#include "ota_svc_presign.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Path prefix the handler answers. */
#define OTA_HTTP_FILES_PREFIX "/files/"

/** Counters since creation. */
typedef struct ota_http_files_stats {
    uint64_t requests;      /**< requests handled */
    uint64_t served;        /**< 200 and 206 answers */
    uint64_t bytes;         /**< body bytes answered (GET) */
    uint64_t bad_method;    /**< 405 */
    uint64_t bad_signature; /**< 403 for a signature that does not match */
    uint64_t expired;       /**< 403 for an expired URL */
    uint64_t not_found;     /**< 404 */
    uint64_t bad_range;     /**< 416 */
    uint64_t throttled;     /**< 429 */
    uint64_t failed;        /**< 500 */
} ota_http_files_stats_t;

/** Log hook: level 0 error .. 3 debug, one line without newline. */
typedef void (*ota_http_log_fn)(void *ctx, int level, const char *line);

/** The handler. Opaque. */
typedef struct ota_http_files ota_http_files_t;

/**
 * Creates the handler.
 * @param store  store handle used only by this handler; borrowed.
 * @param signer the fleet's signer; borrowed.
 * @param budget per-thing budgets, borrowed, or NULL (no budgets).
 * @return the handler, or NULL (bad argument or out of memory).
 */
ota_http_files_t *ota_http_files_create(ota_store_t *store, const ota_svc_presign_t *signer,
                                        ota_svc_budget_t *budget);

/**
 * Frees the handler.
 * @param h handler, or NULL (no-op).
 */
void ota_http_files_destroy(ota_http_files_t *h);

/**
 * Sets the log hook (refusals at debug, failures at error).
 * @param h   handler.
 * @param log hook, or NULL.
 * @param ctx passed to the hook.
 */
void ota_http_files_set_log(ota_http_files_t *h, ota_http_log_fn log, void *ctx);

/**
 * Answers one request whose path starts with OTA_HTTP_FILES_PREFIX.
 * @param h       handler.
 * @param conn    the connection.
 * @param url     the request path (no query).
 * @param method  the request method.
 * @param now_ms  monotonic time in ms (budgets).
 * @param now_s   wall-clock seconds since the Unix epoch (expiry).
 * @return MHD_YES when an answer was queued; MHD_NO to close the connection.
 */
enum MHD_Result ota_http_files_handle(ota_http_files_t *h, struct MHD_Connection *conn,
                                      const char *url, const char *method, int64_t now_ms,
                                      int64_t now_s);

/**
 * Reads the counters.
 * @param h   handler.
 * @param out receives them.
 */
void ota_http_files_get_stats(const ota_http_files_t *h, ota_http_files_stats_t *out);

#ifdef __cplusplus
}
#endif

#endif /* OTA_HTTP_FILES_H */
