/* otter TEST SUPPORT ONLY: a download driven like a data plane (see http_test_dl.h). */
#include "http_test_dl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

uint32_t http_dl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

static ota_err_t dl_body(void *ctx, uint32_t offset, const uint8_t *data, size_t len)
{
    http_dl_t *d = ctx;
    if (offset > d->size || len > d->size - offset) {
        return OTA_ERR_INVALID_ARG; /* the client reports OTA_HTTPC_CONSUMER */
    }
    memcpy(d->got + offset, data, len);
    d->bytes += (uint32_t)len;
    return OTA_OK;
}

static void dl_range(void *ctx, uint32_t first, uint32_t last)
{
    http_dl_t *d = ctx;
    (void)first;
    (void)last;
    d->ranges++;
}

http_dl_t *http_dl_new(const char *host, int port, const char *path, const char *ca_file,
                       uint32_t size, uint32_t range_size)
{
    http_dl_t *d = calloc(1, sizeof(*d));
    ota_httpc_config_t cfg;
    ota_http_url_t u;
    ota_httpc_result_t r;
    if (d == NULL || (d->got = calloc(1, size)) == NULL) {
        free(d);
        return NULL;
    }
    d->size = size;
    d->range_size = range_size;
    snprintf(d->url, sizeof(d->url), "%s://%s:%d%s", ca_file != NULL ? "https" : "http", host, port,
             path);
    memset(&cfg, 0, sizeof(cfg));
    if (ota_http_url_parse(d->url, strlen(d->url), &u) != OTA_HTTPC_OK) {
        http_dl_free(d);
        return NULL;
    }
    d->use_tls = u.tls;
    r = u.tls ? ota_http_tls_init(&d->tls, u.host, u.host_len, u.port, ca_file, &cfg.transport)
              : ota_http_tcp_init(&d->tcp, u.host, u.host_len, u.port, &cfg.transport);
    cfg.on_body = dl_body;
    cfg.on_range = dl_range;
    cfg.cb_ctx = d;
    cfg.rx_buf = d->rx;
    cfg.rx_size = sizeof(d->rx);
    cfg.tx_buf = d->tx;
    cfg.tx_size = sizeof(d->tx);
    if (r != OTA_HTTPC_OK || ota_httpc_init(&d->c, &cfg, d->url) != OTA_HTTPC_OK) {
        http_dl_free(d);
        return NULL;
    }
    return d;
}

void http_dl_free(http_dl_t *d)
{
    if (d == NULL) {
        return;
    }
    ota_httpc_close(&d->c);
    if (d->use_tls) {
        ota_http_tls_free(&d->tls);
    }
    free(d->got);
    free(d);
}

ota_httpc_result_t http_dl_run(http_dl_t *d, uint32_t end)
{
    uint32_t deadline = http_dl_now_ms() + 60000u;
    while ((d->next_ask < end || ota_httpc_in_flight(&d->c) > 0) &&
           (int32_t)(deadline - http_dl_now_ms()) > 0) {
        ota_httpc_result_t r;
        while (d->next_ask < end && ota_httpc_in_flight(&d->c) < OTA_HTTP_PIPELINE_MAX) {
            uint32_t last = d->next_ask + d->range_size - 1u;
            if (last >= end) {
                last = end - 1u;
            }
            r = ota_httpc_request(&d->c, d->next_ask, last, http_dl_now_ms());
            if (r != OTA_HTTPC_OK) {
                return r;
            }
            d->next_ask = last + 1u;
        }
        if (ota_httpc_in_flight(&d->c) > d->max_in_flight) {
            d->max_in_flight = ota_httpc_in_flight(&d->c);
        }
        r = ota_httpc_poll(&d->c, http_dl_now_ms(), 0);
        if (r != OTA_HTTPC_OK) {
            return r;
        }
        usleep(200);
    }
    return ota_httpc_in_flight(&d->c) == 0 ? OTA_HTTPC_OK : OTA_HTTPC_TIMEOUT;
}
