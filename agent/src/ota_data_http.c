/*
 * otter: the HTTP data plane (OTA_HTTP_PLANE builds): the file from the job's
 * update_data_url by HTTP/1.1 range requests, several in flight on one
 * keep-alive connection (the device range client of http/).
 *
 * Each request of the download module becomes ranges, one per run of
 * consecutive wanted blocks; body bytes go to the agent as they arrive
 * (ota_agent_bytes), which writes them to the port and marks each block once
 * it is whole. A failure drops every range in flight; the agent asks again
 * from the same bitmap, on this plane or the other.
 */
#include "ota_data_plane.h"

#if OTA_HTTP_PLANE

#include <string.h>

/*
 * Transport reads per agent poll at most (of up to OTA_HTTP_RX_BUFFER_SIZE
 * bytes each): bytes go to the port within the poll, and a slow port would
 * otherwise keep one poll, and the time the agent was given, for long.
 */
#define OTA_HTTP_POLL_READS 8u

static ota_err_t ota_http_body(void *ctx, uint32_t offset, const uint8_t *data, size_t len)
{
    ota_agent_t *a = ctx;
    a->http.fresh = 0;
    a->stats.http_bytes += (uint32_t)len;
    return ota_agent_bytes(a, offset, data, len);
}

static ota_err_t ota_http_open(ota_agent_t *a)
{
    ota_http_plane_t *h = &a->http;
    ota_httpc_config_t cfg;

    if (h->ready) {
        return ota_httpc_set_url(&h->c, a->job.url) == OTA_HTTPC_OK ? OTA_OK : OTA_ERR_INVALID_ARG;
    }
    memset(&cfg, 0, sizeof cfg);
    cfg.transport = a->cfg.http.transport;
    cfg.on_body = ota_http_body;
    cfg.cb_ctx = a;
    cfg.rx_buf = h->rx;
    cfg.rx_size = sizeof h->rx;
    cfg.tx_buf = h->tx;
    cfg.tx_size = sizeof h->tx;
    if (ota_httpc_init(&h->c, &cfg, a->job.url) != OTA_HTTPC_OK) {
        return OTA_ERR_INVALID_ARG;
    }
    if (a->cfg.http.target != NULL) {
        /* An application callback: the agent's calls are refused inside it, as in the others. */
        a->in_callback++;
        ota_err_t err = a->cfg.http.target(a->cfg.http.ctx, &h->c.url);
        a->in_callback--;
        if (err != OTA_OK) {
            return OTA_ERR_UNSUPPORTED;
        }
    }
    h->ready = 1;
    h->fresh = 1;
    return OTA_OK;
}

static void ota_http_drop(ota_agent_t *a)
{
    if (a->http.ready) {
        ota_httpc_close(&a->http.c);
    }
}

static void ota_http_close(ota_agent_t *a)
{
    ota_http_drop(a);
    a->http.ready = 0;
}

/* Byte range of blocks first .. last (inclusive) of the file. */
static ota_httpc_result_t ota_http_ask(ota_agent_t *a, uint32_t first, uint32_t last)
{
    uint32_t end = (last + 1u) * a->dl.block_size;
    if (end > a->dl.file_size) {
        end = a->dl.file_size;
    }
    return ota_httpc_request(&a->http.c, first * a->dl.block_size, end - 1u, a->now);
}

/* 1 if block k of req is wanted. */
static int ota_http_wanted(const ota_block_request_t *req, uint32_t k)
{
    uint32_t bit = k - req->offset;
    return (int)(((unsigned)req->bitmap[bit / 8u] >> (bit % 8u)) & 1u);
}

static ota_err_t ota_http_request(ota_agent_t *a, const ota_block_request_t *req)
{
    ota_http_plane_t *h = &a->http;
    uint32_t end = req->offset + req->bitmap_len * 8u;
    uint32_t runs = 0, k, first = 0, last = 0, top = 0;
    uint32_t slots;

    if (!h->ready) {
        return OTA_ERR_WRONG_STATE;
    }
    slots = OTA_HTTP_PIPELINE_MAX - ota_httpc_in_flight(&h->c);
    for (k = req->offset; k < end; k++) {
        if (ota_http_wanted(req, k)) {
            top = k; /* the last wanted block */
            if (k == req->offset || !ota_http_wanted(req, k - 1u)) {
                runs++;
            }
        }
    }
    if (runs > slots && slots < OTA_HTTP_PIPELINE_MAX) {
        return OTA_ERR_WRONG_STATE; /* asked again when a range is done */
    }
    for (k = req->offset; k < end; k++) {
        if (!ota_http_wanted(req, k)) {
            continue;
        }
        if (runs > slots) {
            /* More holes than the pipeline holds: one range over them all
             * (blocks already written come again and are dropped). */
            return ota_http_ask(a, k, top) == OTA_HTTPC_OK ? OTA_OK : OTA_ERR_IO;
        }
        first = k;
        while (k + 1u < end && ota_http_wanted(req, k + 1u)) {
            k++;
        }
        last = k;
        if (ota_http_ask(a, first, last) != OTA_HTTPC_OK) {
            return OTA_ERR_IO;
        }
    }
    return OTA_OK;
}

static void ota_http_handle(const ota_agent_t *a, const char *topic, size_t topic_len,
                            const uint8_t *payload, size_t len, ota_plane_event_t *ev)
{
    (void)a;
    (void)topic;
    (void)topic_len;
    (void)payload;
    (void)len;
    memset(ev, 0, sizeof *ev); /* nothing of this plane comes over MQTT */
}

/* What each ota_httpc_result_t of a poll is to the agent (OTA_HTTPC_STATUS: see below). */
static const uint8_t ota_http_poll_of[] = {
    OTA_PLANE_POLL_OK,       /* OK */
    OTA_PLANE_POLL_RETRY,    /* INVALID_ARG */
    OTA_PLANE_POLL_RETRY,    /* BUSY */
    OTA_PLANE_POLL_RETRY,    /* TRANSPORT */
    OTA_PLANE_POLL_RETRY,    /* CLOSED */
    OTA_PLANE_POLL_RETRY,    /* TIMEOUT */
    OTA_PLANE_POLL_EXPIRED,  /* EXPIRED */
    OTA_PLANE_POLL_REFUSED,  /* NOT_FOUND */
    OTA_PLANE_POLL_REFUSED,  /* RANGE_REFUSED */
    OTA_PLANE_POLL_BACK_OFF, /* SERVER_ERROR */
    OTA_PLANE_POLL_REFUSED,  /* STATUS (3xx, 200) */
    OTA_PLANE_POLL_RETRY,    /* MALFORMED */
    OTA_PLANE_POLL_RETRY,    /* HEADER_TOO_LARGE */
    OTA_PLANE_POLL_RETRY,    /* WRONG_RANGE */
    OTA_PLANE_POLL_RETRY,    /* BAD_LENGTH */
    OTA_PLANE_POLL_RETRY,    /* CHUNK_TOO_LARGE */
    OTA_PLANE_POLL_REFUSED,  /* CHANGED */
    OTA_PLANE_POLL_OK,       /* CONSUMER: the agent stopped it (the job ended or failed) */
};

static ota_plane_poll_t ota_http_poll(ota_agent_t *a)
{
    ota_httpc_result_t r;
    if (!a->http.ready) {
        return OTA_PLANE_POLL_OK;
    }
    r = ota_httpc_poll(&a->http.c, a->now, OTA_HTTP_POLL_READS);
    if (r == OTA_HTTPC_STATUS && a->http.c.info.last_status == 429u) {
        return OTA_PLANE_POLL_BACK_OFF; /* 429 Too Many Requests */
    }
    /* Others: closed, timeout, transport, malformed answers: ask again. */
    return (unsigned)r < sizeof ota_http_poll_of ? (ota_plane_poll_t)ota_http_poll_of[r]
                                                 : OTA_PLANE_POLL_RETRY;
}

const char *ota_data_http_error(const ota_agent_t *a)
{
    return ota_httpc_result_name(a->http.c.info.last_error);
}

const ota_data_plane_t ota_data_plane_http = {
    "http",         ota_http_open, ota_http_request, ota_http_handle,
    ota_http_close, ota_http_poll, ota_http_drop,
};

#else
/* ISO C wants something in a translation unit. */
typedef int ota_data_http_unused_t;
#endif
