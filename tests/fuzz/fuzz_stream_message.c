/*
 * libFuzzer harness: the stream message decoders (data block and refusal).
 * Any bytes either decode, with every returned pointer inside the input and
 * "l" equal to the payload length, or are refused as a bad message. A decoded
 * data block is turned into a GetStream request, which must encode to exactly
 * the length its fields call for, within OTA_CBOR_GET_STREAM_MAX_SIZE, and be
 * refused cleanly one byte short.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ota_cbor.h"

static int inside(const void *p, size_t n, const uint8_t *data, size_t size)
{
    const uint8_t *b = p;
    if (p == NULL) {
        return n == 0;
    }
    return b >= data && n <= size && (size_t)(b - data) <= size - n;
}

/* Bytes of a CBOR head for argument v, shortest form. */
static size_t head_size(uint32_t v)
{
    return v < 24 ? 1 : v <= 0xff ? 2 : v <= 0xffff ? 3 : 5;
}

static void check_request(const ota_cbor_data_block_t *d)
{
    static uint8_t buf[OTA_CBOR_GET_STREAM_MAX_SIZE(OTA_CBOR_BITMAP_MAX, OTA_CBOR_TOKEN_MAX)];
    char token[OTA_CBOR_TOKEN_MAX + 1];
    const uint8_t one = 1;
    ota_cbor_get_stream_t req;
    size_t len = 0;
    size_t need = 0;
    size_t tlen = 0;
    memset(&req, 0, sizeof req);
    if (d->client_token != NULL && d->client_token_len <= OTA_CBOR_TOKEN_MAX &&
        memchr(d->client_token, 0, d->client_token_len) == NULL) {
        memcpy(token, d->client_token, d->client_token_len);
        token[d->client_token_len] = '\0';
        req.client_token = token;
        tlen = d->client_token_len;
    }
    req.file_id = d->file_id;
    req.block_size = OTA_CBOR_BLOCK_SIZE_MIN +
                     d->block_index % (OTA_CBOR_BLOCK_SIZE_MAX - OTA_CBOR_BLOCK_SIZE_MIN + 1);
    req.block_offset = d->block_index;
    req.num_blocks = d->block_len != 0 ? d->block_len : 1;
    req.has_stream_version = (uint8_t)(d->file_id & 1u);
    req.stream_version = d->block_index ^ d->file_id;
    if (d->payload_len >= 1 && d->payload_len <= OTA_CBOR_BITMAP_MAX) {
        req.bitmap = d->payload;
        req.bitmap_len = d->payload_len;
    } else {
        req.bitmap = &one;
        req.bitmap_len = 1;
    }
    need = 1 + (req.client_token != NULL ? 2 + head_size((uint32_t)tlen) + tlen : 0) +
           (req.has_stream_version ? 2 + head_size(req.stream_version) : 0) + 2 +
           head_size(req.file_id) + 2 + head_size(req.block_size) + 2 +
           head_size(req.block_offset) + 2 + head_size((uint32_t)req.bitmap_len) + req.bitmap_len +
           2 + head_size(req.num_blocks);
    if (ota_cbor_encode_get_stream(&req, buf, sizeof buf, &len) != OTA_OK || len != need ||
        len > OTA_CBOR_GET_STREAM_MAX_SIZE(req.bitmap_len, tlen) ||
        buf[0] != 0xa5 + (req.client_token != NULL) + req.has_stream_version) {
        abort();
    }
    if (ota_cbor_encode_get_stream(&req, buf, len - 1, &len) != OTA_ERR_OUT_OF_MEMORY ||
        len != need) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ota_cbor_data_block_t d;
    ota_cbor_rejected_t r;
    ota_err_t err;
    if (data == NULL) {
        data = (const uint8_t *)""; /* an empty input, never refused as an argument error */
    }
    err = ota_cbor_decode_data_block(data, size, &d);
    if (err == OTA_OK) {
        if (d.payload == NULL || d.payload_len != d.block_len ||
            !inside(d.payload, d.payload_len, data, size) ||
            !inside(d.client_token, d.client_token_len, data, size)) {
            abort();
        }
        check_request(&d);
    } else if (err != OTA_ERR_BAD_MESSAGE) {
        abort();
    }
    err = ota_cbor_decode_rejected(data, size, &r);
    if (err == OTA_OK) {
        if (r.code == NULL || !inside(r.code, r.code_len, data, size) ||
            !inside(r.message, r.message_len, data, size) ||
            !inside(r.client_token, r.client_token_len, data, size)) {
            abort();
        }
    } else if (err != OTA_ERR_BAD_MESSAGE) {
        abort();
    }
    return 0;
}
