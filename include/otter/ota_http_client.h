/*
 * otter: an HTTP/1.1 range client for devices (the HTTP data plane's wire).
 *
 * No heap, no OS, no threads, no static RAM: the client lives in a
 * caller-allocated ota_httpc_t, works in caller-owned buffers, and runs in
 * the caller's loop over a byte-stream transport (a TCP socket, a TLS
 * session, a modem's data mode). It does what a firmware download needs:
 *   - GET <path?query> HTTP/1.1 with Host and Range: bytes=first-last
 *     (inclusive) on one keep-alive connection, several requests in flight
 *     (pipelined, at most OTA_HTTP_PIPELINE_MAX), opened on the first request;
 *   - answers checked before a byte of their body is delivered: status 206,
 *     Content-Range exactly the range asked (and the same file size every
 *     time), Content-Length equal to it or Transfer-Encoding: chunked whose
 *     chunks never exceed it, the same ETag as the first answer;
 *   - body bytes handed to the consumer with their file offset as they arrive
 *     (straight out of the receive buffer: nothing is held back beyond what
 *     one transport read brought);
 *   - Connection: close honoured (requests sent after that answer are
 *     dropped; the next request opens a new connection); a reused
 *     connection found closed before a byte of the awaited answer (the
 *     server timed it out as requests left) is opened again and the requests
 *     in flight are sent again, once;
 *   - every failure named (ota_httpc_result_t), the connection closed and
 *     every request in flight dropped: the caller asks again for what its
 *     bitmap still lacks.
 *
 * Time is a millisecond counter passed to the calls; it may wrap.
 * docs/HTTP.md describes the API and how a data plane drives it.
 */
#ifndef OTTER_OTA_HTTP_CLIENT_H
#define OTTER_OTA_HTTP_CLIENT_H

#include "otter/ota_config_defaults.h"

#include <stddef.h>
#include <stdint.h>

#include "otter/ota_err.h"
#include "otter/ota_mqtt_client.h"

/* ==== Configuration (define in OTA_CONFIG_FILE to change) ==== */

/**
 * Requests in flight on one connection at most (pipelining depth). Possible
 * values: 1 .. 32. Default: 4.
 */
#ifndef OTA_HTTP_PIPELINE_MAX
#define OTA_HTTP_PIPELINE_MAX 4u
#endif

/**
 * Bytes of the receive buffer the configuration asks for (ota_httpc_config_t
 * rx_buf): the longest header line or chunk-size line accepted, and the most
 * one transport read takes. Possible values: 128 .. 65536. Default: 1024.
 */
#ifndef OTA_HTTP_RX_BUFFER_SIZE
#define OTA_HTTP_RX_BUFFER_SIZE 1024u
#endif

/**
 * Bytes of the request buffer (ota_httpc_config_t tx_buf): one whole request,
 * i.e. the URL's path and query, its host and about 80 bytes more. Presigned
 * S3 URLs with a session token need about 1.6 KiB. Possible values:
 * 128 .. 65536. Default: 1024.
 */
#ifndef OTA_HTTP_TX_BUFFER_SIZE
#define OTA_HTTP_TX_BUFFER_SIZE 1024u
#endif

/**
 * Header bytes of one answer at most (status line and every header line);
 * more is an error. Possible values: 256 .. 1048576. Default: 8192.
 */
#ifndef OTA_HTTP_HEADER_BYTES_MAX
#define OTA_HTTP_HEADER_BYTES_MAX 8192u
#endif

/** Longest ETag kept (quotes included). Possible values: 8 .. 255. Default: 64. */
#ifndef OTA_HTTP_ETAG_MAX
#define OTA_HTTP_ETAG_MAX 64u
#endif

/** Wait for the next byte of an answer, ms, when the configuration leaves it 0. Default: 10000. */
#ifndef OTA_HTTP_DEFAULT_TIMEOUT_MS
#define OTA_HTTP_DEFAULT_TIMEOUT_MS 10000u
#endif

#if OTA_HTTP_PIPELINE_MAX < 1 || OTA_HTTP_PIPELINE_MAX > 32
#error "OTA_HTTP_PIPELINE_MAX must be 1 .. 32"
#endif
#if OTA_HTTP_RX_BUFFER_SIZE < 128 || OTA_HTTP_RX_BUFFER_SIZE > 65536
#error "OTA_HTTP_RX_BUFFER_SIZE must be 128 .. 65536"
#endif
#if OTA_HTTP_TX_BUFFER_SIZE < 128 || OTA_HTTP_TX_BUFFER_SIZE > 65536
#error "OTA_HTTP_TX_BUFFER_SIZE must be 128 .. 65536"
#endif
#if OTA_HTTP_HEADER_BYTES_MAX < 256 || OTA_HTTP_HEADER_BYTES_MAX > 1048576
#error "OTA_HTTP_HEADER_BYTES_MAX must be 256 .. 1048576"
#endif
#if OTA_HTTP_ETAG_MAX < 8 || OTA_HTTP_ETAG_MAX > 255
#error "OTA_HTTP_ETAG_MAX must be 8 .. 255"
#endif

/* ==== Interfaces ==== */

/**
 * The byte stream: the device MQTT client's transport type (ota_mqtt_client.h),
 * so one transport implementation (socket, TLS session, modem) serves both
 * planes. send and recv are required; open and close may be NULL for a
 * stream that is always there. open failing fails the request with
 * OTA_HTTPC_TRANSPORT; send must send all bytes (blocking as long as
 * needed); recv takes what has arrived without waiting and returns 0 when
 * nothing has, negative when the stream is closed.
 */
typedef ota_mqttc_transport_t ota_httpc_transport_t;

/**
 * Where body bytes go. data holds bytes offset .. offset + len - 1 of the
 * file, all inside a range that was asked and whose answer was checked; they
 * arrive in order within a range, ranges in the order they were asked.
 * Borrowed for the call.
 * @return OTA_OK; anything else stops the client (OTA_HTTPC_CONSUMER, the
 *         code kept in ota_httpc_info_t consumer_err).
 */
typedef ota_err_t (*ota_httpc_on_body_t)(void *ctx, uint32_t offset, const uint8_t *data,
                                         size_t len);

/** A range has been delivered whole (called after its last body byte). */
typedef void (*ota_httpc_on_range_t)(void *ctx, uint32_t first, uint32_t last);

/** Outcomes of the calls. */
typedef enum ota_httpc_result {
    OTA_HTTPC_OK = 0,
    OTA_HTTPC_INVALID_ARG = 1,       /**< NULL, bad URL, range inverted, buffer too small */
    OTA_HTTPC_BUSY = 2,              /**< OTA_HTTP_PIPELINE_MAX requests already in flight */
    OTA_HTTPC_TRANSPORT = 3,         /**< open or send failed */
    OTA_HTTPC_CLOSED = 4,            /**< the server closed the connection with requests open */
    OTA_HTTPC_TIMEOUT = 5,           /**< no byte of an awaited answer for timeout_ms */
    OTA_HTTPC_EXPIRED = 6,           /**< 401/403: the URL is refused (expired): get a fresh one */
    OTA_HTTPC_NOT_FOUND = 7,         /**< 404/410: no such file */
    OTA_HTTPC_RANGE_REFUSED = 8,     /**< 416: the range lies outside the file */
    OTA_HTTPC_SERVER_ERROR = 9,      /**< 5xx (retry later) */
    OTA_HTTPC_STATUS = 10,           /**< another status (200: the server ignored Range; 3xx ...) */
    OTA_HTTPC_MALFORMED = 11,        /**< not HTTP/1.x: status line, header, chunk syntax */
    OTA_HTTPC_HEADER_TOO_LARGE = 12, /**< a line over the receive buffer, or headers over
                                          OTA_HTTP_HEADER_BYTES_MAX */
    OTA_HTTPC_WRONG_RANGE = 13,     /**< Content-Range missing, other than asked, or another size */
    OTA_HTTPC_BAD_LENGTH = 14,      /**< Content-Length not the range's, both or no framing */
    OTA_HTTPC_CHUNK_TOO_LARGE = 15, /**< chunks would carry more than the range */
    OTA_HTTPC_CHANGED = 16,  /**< the ETag differs from the first answer's: the file changed */
    OTA_HTTPC_CONSUMER = 17, /**< the body consumer returned an error */
} ota_httpc_result_t;

/** A URL split into the pieces a request needs (pointers into the caller's string). */
typedef struct ota_http_url {
    uint8_t tls;      /**< 1 for https */
    uint16_t port;    /**< given, or 80/443 */
    const char *host; /**< host name or address (IPv6 literal without brackets) */
    size_t host_len;
    const char *authority; /**< host[:port] as written, for the Host header */
    size_t authority_len;
    const char *target; /**< path and query ("/" when the URL has none) */
    size_t target_len;
} ota_http_url_t;

/** Configuration; zero means default for every number. */
typedef struct ota_httpc_config {
    ota_httpc_transport_t transport;
    /** Body consumer (required) and range-done notice (may be NULL), with their context. */
    ota_httpc_on_body_t on_body;
    ota_httpc_on_range_t on_range;
    void *cb_ctx;
    /** Receive buffer (OTA_HTTP_RX_BUFFER_SIZE bytes or more). */
    uint8_t *rx_buf;
    uint32_t rx_size;
    /** Request buffer (OTA_HTTP_TX_BUFFER_SIZE bytes or more). */
    uint8_t *tx_buf;
    uint32_t tx_size;
    /** Wait for the next byte of an answer, ms (0 = OTA_HTTP_DEFAULT_TIMEOUT_MS). */
    uint32_t timeout_ms;
} ota_httpc_config_t;

/** What the last failure was, and counters since init. */
typedef struct ota_httpc_info {
    ota_httpc_result_t last_error; /**< the last failure (OTA_HTTPC_OK if none) */
    uint16_t last_status;          /**< HTTP status of the last answer seen (0: none) */
    uint32_t last_first;           /**< the range whose answer failed */
    uint32_t last_last;
    ota_err_t consumer_err; /**< what the consumer returned (OTA_HTTPC_CONSUMER) */
    uint32_t file_size;     /**< from Content-Range (0 until the first answer) */
    uint32_t connects;      /**< connections opened */
    uint32_t requests;      /**< requests sent */
    uint32_t answers;       /**< ranges delivered whole */
    uint32_t body_bytes;    /**< body bytes delivered */
    uint32_t failures;      /**< failures reported */
    uint32_t resends;       /**< reused connections found closed: requests sent again */
} ota_httpc_info_t;

/** One answer's parser state (private). */
typedef struct ota_http_resp {
    uint8_t state;
    uint8_t flags;
    uint16_t status;
    uint32_t header_bytes;
    uint32_t content_length;
    uint32_t cr_first, cr_last, cr_total;
    uint32_t next;       /* offset of the next body byte */
    uint32_t chunk_left; /* bytes left in the current chunk */
    uint8_t etag_len;
    char etag[OTA_HTTP_ETAG_MAX];
} ota_http_resp_t;

/** The client; fields are private (visible so it can be allocated statically). */
typedef struct ota_httpc {
    ota_httpc_config_t cfg;
    ota_http_url_t url;
    uint8_t connected;
    uint8_t closing;       /* the answer being read said Connection: close */
    uint8_t resent;        /* the requests in flight were sent again once already */
    uint32_t conn_answers; /* answers on this connection */
    uint8_t head, count;   /* ring of requests in flight */
    uint32_t first[OTA_HTTP_PIPELINE_MAX];
    uint32_t last[OTA_HTTP_PIPELINE_MAX];
    uint32_t rx_len;     /* bytes waiting in rx_buf */
    uint32_t last_rx_ms; /* when an awaited byte last arrived (or the request left) */
    ota_http_resp_t resp;
    uint8_t etag_len; /* the file's ETag (from the first answer) */
    char etag[OTA_HTTP_ETAG_MAX];
    ota_httpc_info_t info;
} ota_httpc_t;

/* ==== Calls ==== */

/**
 * Split an http:// or https:// URL. The pieces point into url, which must
 * outlive their use. Refused: other schemes, user info, an empty or
 * over-long host, a port outside 1..65535, a fragment, and any control
 * character, space or byte >= 0x7f anywhere (no header injection).
 * @return OTA_HTTPC_OK; OTA_HTTPC_INVALID_ARG.
 */
ota_httpc_result_t ota_http_url_parse(const char *url, size_t len, ota_http_url_t *out);

/**
 * Prepare a client for url (a NUL-terminated http:// or https:// URL that
 * must outlive the client or the next ota_httpc_set_url()). Opens nothing.
 * @return OTA_HTTPC_OK; OTA_HTTPC_INVALID_ARG (NULL, no send/recv or
 *         on_body, buffers under 128 bytes, bad URL, a request for it would
 *         not fit tx_buf).
 */
ota_httpc_result_t ota_httpc_init(ota_httpc_t *c, const ota_httpc_config_t *cfg, const char *url);

/**
 * Use another URL (a fresh presigned one) for the requests to come. Only
 * with no request in flight. The connection is kept when scheme, host and
 * port stay the same, closed otherwise. The file's ETag and size are
 * kept: a fresh URL names the same file.
 * @return OTA_HTTPC_OK; OTA_HTTPC_INVALID_ARG (as init); OTA_HTTPC_BUSY.
 */
ota_httpc_result_t ota_httpc_set_url(ota_httpc_t *c, const char *url);

/**
 * Ask for bytes first .. last (inclusive) of the file: opens the connection
 * if there is none, then sends the request at once (pipelined behind those
 * in flight). Its answer is read by ota_httpc_poll().
 * @return OTA_HTTPC_OK; OTA_HTTPC_INVALID_ARG (first > last, or last beyond
 *         a known file size); OTA_HTTPC_BUSY (OTA_HTTP_PIPELINE_MAX in
 *         flight, or the connection is closing: poll until it is done);
 *         OTA_HTTPC_TRANSPORT (open or send failed; the connection is closed
 *         and every request in flight dropped).
 */
ota_httpc_result_t ota_httpc_request(ota_httpc_t *c, uint32_t first, uint32_t last,
                                     uint32_t now_ms);

/**
 * The client's work: read what has arrived (at most max_reads transport
 * reads, 0 = until none is waiting), check answers, deliver body bytes and
 * finished ranges through the callbacks, and detect a silent server. On a
 * failure the connection is closed and every request in flight dropped
 * (ota_httpc_in_flight() is then 0); bytes already delivered stay valid.
 * @return OTA_HTTPC_OK; a failure code (also kept in ota_httpc_info()).
 */
ota_httpc_result_t ota_httpc_poll(ota_httpc_t *c, uint32_t now_ms, uint32_t max_reads);

/** Requests in flight (sent, not yet answered whole). */
uint32_t ota_httpc_in_flight(const ota_httpc_t *c);

/** Close the connection (if open) and drop every request in flight. */
void ota_httpc_close(ota_httpc_t *c);

/** The last failure and counters (NULL gives NULL). */
const ota_httpc_info_t *ota_httpc_info(const ota_httpc_t *c);

/** Name of a result, e.g. "OTA_HTTPC_EXPIRED". */
const char *ota_httpc_result_name(ota_httpc_result_t r);

#endif /* OTTER_OTA_HTTP_CLIENT_H */
