/*
 * otter (private to the HTTP client): the parser of one answer to a range
 * request. It is fed the bytes that arrived, takes whole lines of the status
 * line, headers, chunk sizes and trailers, and hands body bytes to the
 * consumer only once the headers proved they are the range asked.
 */
#ifndef OTA_HTTP_RESPONSE_H
#define OTA_HTTP_RESPONSE_H

#include "otter/ota_http_client.h"

/** What the answer must match. */
typedef struct ota_http_want {
    uint32_t first, last; /**< the range asked (inclusive) */
    uint32_t file_size;   /**< known size of the file, 0 if not yet known */
    const char *etag;     /**< the file's ETag, etag_len 0 if not yet known */
    uint8_t etag_len;
} ota_http_want_t;

/** Parser states (ota_http_resp_t state). */
enum {
    OTA_HTTP_S_STATUS = 0,
    OTA_HTTP_S_INFO, /* headers of a 1xx answer, skipped */
    OTA_HTTP_S_HEADERS,
    OTA_HTTP_S_BODY, /* Content-Length body */
    OTA_HTTP_S_CHUNK_SIZE,
    OTA_HTTP_S_CHUNK_DATA,
    OTA_HTTP_S_CHUNK_END, /* the CRLF after a chunk's data */
    OTA_HTTP_S_TRAILER,
    OTA_HTTP_S_DONE,
};

/** Answer flags (ota_http_resp_t flags). */
enum {
    OTA_HTTP_F_CLOSE = 1u,   /* the server closes the connection after this answer */
    OTA_HTTP_F_CHUNKED = 2u, /* Transfer-Encoding: chunked */
    OTA_HTTP_F_LENGTH = 4u,  /* Content-Length seen */
    OTA_HTTP_F_RANGE = 8u,   /* Content-Range seen */
    OTA_HTTP_F_ETAG = 16u,   /* ETag seen */
};

/** Ready r for a new answer. */
void ota_http_resp_start(ota_http_resp_t *r);

/**
 * Parse what is in buf. Whole lines are taken; a line that has not fully
 * arrived is left (used stops before it) unless len reaches cap, which makes
 * it too long. Body bytes go to on_body(ctx, offset, ...) as soon as they
 * are in buf.
 * @param used receives the bytes taken from the front of buf.
 * @return OTA_HTTPC_OK (r->state is OTA_HTTP_S_DONE once the answer is whole;
 *         bytes after it are not taken); a failure code.
 */
ota_httpc_result_t ota_http_resp_parse(ota_http_resp_t *r, const ota_http_want_t *want,
                                       const uint8_t *buf, size_t len, size_t cap, size_t *used,
                                       ota_httpc_on_body_t on_body, void *ctx,
                                       ota_err_t *consumer_err);

#endif /* OTA_HTTP_RESPONSE_H */
