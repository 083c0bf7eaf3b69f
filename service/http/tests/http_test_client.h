/*
 * otter TEST SUPPORT ONLY: a small HTTP/1.1 client over a TCP socket, enough
 * to send several requests at once (pipelining) and read the answers one by
 * one, seeing exactly what the server sent (a body cut short included).
 */
#ifndef HTTP_TEST_CLIENT_H
#define HTTP_TEST_CLIENT_H

#include <stddef.h>
#include <stdint.h>

/** A connection with its read buffer. */
typedef struct http_conn {
    int fd;
    uint8_t buf[65536];
    size_t len; /**< bytes buffered, not yet taken */
} http_conn_t;

/** One answer. */
typedef struct http_resp {
    int status;               /**< 0 when no status line arrived */
    char headers[8192];       /**< header lines as received, NUL-terminated */
    long long content_length; /**< -1 when absent */
    uint8_t *body;            /**< heap (caller frees with http_resp_free) */
    size_t body_len;          /**< bytes received */
    int truncated;            /**< the connection ended before Content-Length bytes */
} http_resp_t;

/**
 * Connects to 127.0.0.1:port.
 * @param rcvbuf receive buffer size to set before connecting (0: the default).
 * @return 0 or -1.
 */
int http_connect(http_conn_t *c, int port, int rcvbuf);

/** Closes the connection. */
void http_close(http_conn_t *c);

/** Sends all of text. @return 0 or -1. */
int http_send(http_conn_t *c, const char *text);

/**
 * Formats one request: "<method> <target> HTTP/1.1", Host, then extra header
 * lines (each ending in \r\n, or NULL).
 * @return heap text.
 */
char *http_request(const char *method, const char *target, const char *extra);

/**
 * Reads one answer (a HEAD answer has no body).
 * @param head      the request was HEAD.
 * @param max_body  read at most this many body bytes (then stop, leaving the rest).
 * @param timeout_ms how long to wait for data at most.
 * @return 0, or -1 (no complete header block).
 */
int http_read(http_conn_t *c, http_resp_t *r, int head, size_t max_body, int timeout_ms);

/**
 * Reads the rest of a body after http_read() stopped at max_body, until
 * Content-Length bytes or the end of the connection.
 */
void http_read_rest(http_conn_t *c, http_resp_t *r, int timeout_ms);

/** The value of a header (case-insensitive name) into out; 0 found, -1 not. */
int http_header(const http_resp_t *r, const char *name, char *out, size_t cap);

/** Frees the body. */
void http_resp_free(http_resp_t *r);

/** "/files/..." part of an "http://host:port/files/..." URL (points into url). */
const char *http_target(const char *url);

#endif /* HTTP_TEST_CLIENT_H */
