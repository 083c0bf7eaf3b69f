/*
 * otter service: the stored files over HTTP/1.1 for the HTTP data plane, on
 * civetweb (keep-alive, pipelined requests answered in order). HTTPS is
 * terminated in front of it (docs/HTTP.md says why and how).
 *
 * GET and HEAD of /files/<id>?thing=..&job=..&expires=..&sig=.. (a URL made by
 * ota_url_make()) serve <files_dir>/<id>.bin, the store's copy of file <id>:
 *   - the signature is checked (constant time) before anything is opened:
 *     403 when it does not match or has expired, 400 when the query is not
 *     one; the file is opened below the files folder by name ("<digits>.bin",
 *     no other path is ever formed, symbolic links refused): 404 otherwise;
 *   - "Range: bytes=a-b", "bytes=a-" and "bytes=-n" give 206 with
 *     Content-Range; a range starting beyond the file gives 416 with
 *     "Content-Range: bytes * /size"; several ranges or an unparsable Range
 *     give the whole file (200), as RFC 9110 allows;
 *   - a strong ETag (size, modification time, inode) on every answer;
 *     If-Range with another ETag gives the whole file (200);
 *   - other methods 405, other paths 404.
 * Connections are bounded in number (one thread each, more wait in the
 * listen queue), in request size (headers over 16 KiB are refused) and in
 * idle time. Every thing (the one its URL names) has the service's budgets
 * of requests and answer bytes (service/budget): a request over either is
 * answered 503 with Retry-After: 1 before the file is read, as S3's "Slow
 * Down".
 */
#ifndef OTA_FILES_HTTP_H
#define OTA_FILES_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "ota_svc_budget.h"

/** Server configuration; strings are copied where the server keeps them. */
typedef struct ota_files_http_config {
    const char *bind_addr; /**< IPv4 address to listen on (NULL: 127.0.0.1) */
    uint16_t port;         /**< TCP port (0: any free one, see ota_files_http_port()) */
    const char *files_dir; /**< folder of <id>.bin files (the store's data_dir/files) */
    const uint8_t *key;    /**< URL key (OTA_URL_KEY_MIN bytes or more) */
    size_t key_len;
    unsigned max_connections; /**< served at once (0: 64) */
    unsigned idle_timeout_s;  /**< keep-alive and request time bound (0: 30) */
    /** Per-thing budgets (NULL: ota_svc_budget_defaults(); a rate of 0 turns one off); copied. */
    const ota_svc_budget_config_t *budget;
    /** Clock in unix seconds (NULL: time()); tests move it to expire URLs. */
    int64_t (*now)(void *ctx);
    void *now_ctx;
} ota_files_http_config_t;

/** A running server (opaque). */
typedef struct ota_files_http ota_files_http_t;

/**
 * Start serving (its own thread).
 * @return the server; NULL (bad configuration, folder missing, port taken),
 *         with the reason on stderr.
 */
ota_files_http_t *ota_files_http_start(const ota_files_http_config_t *cfg);

/** The TCP port it listens on. */
uint16_t ota_files_http_port(const ota_files_http_t *s);

/** Stop serving and free everything (NULL: nothing). */
void ota_files_http_stop(ota_files_http_t *s);

#endif /* OTA_FILES_HTTP_H */
