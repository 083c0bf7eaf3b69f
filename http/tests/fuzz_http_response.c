/*
 * libFuzzer harness: the HTTP range client reading a hostile server's answers.
 *
 * Input: byte 0 sets how many bytes each transport read gives (1..64, or all
 * that fit when 0), byte 1 how many ranges are asked (1..3, pipelined:
 * 0-9, 10-40, 41-41); the rest is what the server sends, after which the
 * stream is closed. Every body byte must have the offset that comes next
 * within the range being answered, every finished range must be the one
 * asked and whole; anything else aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otter/ota_http_client.h"

static const uint32_t range_first[3] = {0, 10, 41};
static const uint32_t range_last[3] = {9, 40, 41};

typedef struct fuzz_state {
    const uint8_t *in;
    size_t len, pos, piece;
    uint32_t done;  /* ranges finished */
    uint32_t next;  /* offset the next body byte must have */
    uint32_t asked; /* ranges asked */
} fuzz_state_t;

static ota_err_t f_send(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    (void)data;
    (void)len;
    return OTA_OK;
}

static int32_t f_recv(void *ctx, uint8_t *buf, size_t cap)
{
    fuzz_state_t *f = ctx;
    size_t n = f->len - f->pos;
    if (n == 0) {
        return -1;
    }
    if (f->piece != 0 && n > f->piece) {
        n = f->piece;
    }
    if (n > cap) {
        n = cap;
    }
    memcpy(buf, f->in + f->pos, n);
    f->pos += n;
    return (int32_t)n;
}

static ota_err_t f_body(void *ctx, uint32_t offset, const uint8_t *data, size_t len)
{
    fuzz_state_t *f = ctx;
    (void)data;
    if (f->done >= f->asked || len == 0 || offset != f->next ||
        offset + len - 1u > range_last[f->done]) {
        abort();
    }
    f->next += (uint32_t)len;
    return OTA_OK;
}

static void f_range(void *ctx, uint32_t first, uint32_t last)
{
    fuzz_state_t *f = ctx;
    if (f->done >= f->asked || first != range_first[f->done] || last != range_last[f->done] ||
        f->next != last + 1u) {
        abort();
    }
    f->done++;
    if (f->done < f->asked) {
        f->next = range_first[f->done];
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t rx[OTA_HTTP_RX_BUFFER_SIZE], tx[OTA_HTTP_TX_BUFFER_SIZE];
    fuzz_state_t f;
    ota_httpc_config_t cfg;
    ota_httpc_t c;
    uint32_t i;
    int polls;
    if (size < 2) {
        return 0;
    }
    memset(&f, 0, sizeof(f));
    f.piece = data[0] % 65u;
    f.asked = 1u + data[1] % 3u;
    f.in = data + 2;
    f.len = size - 2;
    memset(&cfg, 0, sizeof(cfg));
    cfg.transport.ctx = &f;
    cfg.transport.send = f_send;
    cfg.transport.recv = f_recv;
    cfg.on_body = f_body;
    cfg.on_range = f_range;
    cfg.cb_ctx = &f;
    cfg.rx_buf = rx;
    cfg.rx_size = sizeof(rx);
    cfg.tx_buf = tx;
    cfg.tx_size = sizeof(tx);
    if (ota_httpc_init(&c, &cfg, "http://fuzz.example/f?sig=1") != OTA_HTTPC_OK) {
        abort();
    }
    for (i = 0; i < f.asked; i++) {
        if (ota_httpc_request(&c, range_first[i], range_last[i], 0) != OTA_HTTPC_OK) {
            abort();
        }
    }
    for (polls = 0; polls < 100000 && ota_httpc_in_flight(&c) > 0; polls++) {
        if (ota_httpc_poll(&c, 0, 1) != OTA_HTTPC_OK) {
            if (ota_httpc_in_flight(&c) != 0 || ota_httpc_info(&c)->last_error == OTA_HTTPC_OK) {
                abort();
            }
            break;
        }
    }
    /* Everything was read and the stream closed: no request may still wait. */
    if (ota_httpc_in_flight(&c) != 0 && f.pos == f.len) {
        abort();
    }
    return 0;
}
