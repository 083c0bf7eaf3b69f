/*
 * otter TEST SUPPORT ONLY: a download driven like a data plane over the HTTP
 * range client and a host transport (TCP, or TLS when a CA file is given):
 * ranges asked in order, the pipeline kept full, each body byte stored at
 * its offset.
 */
#ifndef HTTP_TEST_DL_H
#define HTTP_TEST_DL_H

#include "otter/ota_http_client.h"
#include "ota_http_tcp.h"
#include "ota_http_tls.h"

/** A download (fields read by the tests). */
typedef struct http_dl {
    ota_httpc_t c;
    ota_http_tcp_t tcp;
    ota_http_tls_t tls;
    int use_tls;
    uint8_t rx[OTA_HTTP_RX_BUFFER_SIZE];
    uint8_t tx[OTA_HTTP_TX_BUFFER_SIZE];
    char url[1024];
    uint8_t *got;        /**< size bytes: what arrived, at its offset */
    uint32_t size;       /**< bytes of the file */
    uint32_t range_size; /**< bytes per range asked */
    uint32_t bytes, next_ask, ranges, max_in_flight;
} http_dl_t;

/**
 * A download of path (with its query) from host:port, over TLS trusting
 * ca_file when it is not NULL; nothing is sent yet.
 * @return the download; NULL if the URL or a transport could not be set up.
 */
http_dl_t *http_dl_new(const char *host, int port, const char *path, const char *ca_file,
                       uint32_t size, uint32_t range_size);

/**
 * Ask for ranges from next_ask up to end (exclusive), at most
 * OTA_HTTP_PIPELINE_MAX in flight, and poll until nothing is in flight (also
 * requests sent by the test), a failure, or 60 s.
 * @return OTA_HTTPC_OK; the failure; OTA_HTTPC_TIMEOUT after 60 s.
 */
ota_httpc_result_t http_dl_run(http_dl_t *d, uint32_t end);

/** Close and free. */
void http_dl_free(http_dl_t *d);

/** Milliseconds of the monotonic clock, truncated to 32 bits. */
uint32_t http_dl_now_ms(void);

#endif /* HTTP_TEST_DL_H */
