/*
 * otter: the CBOR messages of an MQTT file stream (wire protocol, section 4).
 *
 * Three messages, each a CBOR map with one-letter text keys:
 *
 *   GetStream request  (device -> …/get/cbor)       encoded here
 *   data block         (service -> …/data/cbor)     decoded here
 *   refusal            (service -> …/rejected/cbor) decoded here
 *
 * No heap and no state: the encoder writes into a caller-owned buffer, the
 * decoders return pointers into the caller's message (zero copy), so decoded
 * strings live exactly as long as that message buffer.
 *
 * The decoders read network input and never read outside [msg, msg + len).
 * They accept what a conforming service may send and refuse the rest with
 * OTA_ERR_BAD_MESSAGE:
 *   - the top-level item is one definite-length map and fills the message
 *     exactly (trailing bytes are refused);
 *   - every key is a text string; keys come in any order; a known key may
 *     appear only once; unknown keys are skipped whatever their value (any
 *     well-formed item nested at most OTA_CBOR_MAX_DEPTH arrays, maps and tags
 *     deep);
 *   - integers may use any argument width (1, 2, 4 or 8 bytes, shortest or
 *     not) and must fit uint32_t; a negative integer where an unsigned one is
 *     expected is refused, as is any other type mismatch;
 *   - indefinite-length items (strings, arrays, maps) are refused anywhere,
 *     as are reserved argument encodings (additional information 28 .. 30)
 *     and two-byte simple values below 32;
 *   - text strings are returned as pointer + length, not NUL-terminated, and
 *     are not checked for valid UTF-8.
 */
#ifndef OTA_CBOR_H
#define OTA_CBOR_H

#include "ota_module.h"

#include "otter/ota_config_defaults.h"

#include <stddef.h>
#include <stdint.h>

#include "otter/ota_err.h"

/** Longest client token in bytes (spec 4.1). */
#define OTA_CBOR_TOKEN_MAX 64u
/** Longest block bitmap in bytes: the service takes fewer than 12 288. */
#define OTA_CBOR_BITMAP_MAX 12287u
/** Smallest and largest block size the service accepts (spec 4.1, 7). */
#define OTA_CBOR_BLOCK_SIZE_MIN 256u
#define OTA_CBOR_BLOCK_SIZE_MAX 131072u
/**
 * Deepest nesting of arrays, maps and tags accepted inside the value of an
 * unknown key (a plain integer or string is depth 0, [[1]] is depth 2).
 */
#define OTA_CBOR_MAX_DEPTH 8u

/**
 * Largest encoded GetStream request, in bytes, for a bitmap of bitmap_len
 * bytes (<= OTA_CBOR_BITMAP_MAX) and a client token of token_len bytes
 * (<= OTA_CBOR_TOKEN_MAX; 0 if none): map head 1, "c" 4 + token, five
 * integers ("s", "f", "l", "o", "n") of 7 bytes each, "b" 5 + bitmap.
 * A constant expression, for sizing static or stack buffers.
 */
#define OTA_CBOR_GET_STREAM_MAX_SIZE(bitmap_len, token_len) (45u + (bitmap_len) + (token_len))

/** A GetStream request (spec 4.1). */
typedef struct ota_cbor_get_stream {
    /** "c": NUL-terminated client token, at most OTA_CBOR_TOKEN_MAX bytes; NULL = omitted. */
    const char *client_token;
    /** "f": file id from the job document. */
    uint32_t file_id;
    /** "l": block size, OTA_CBOR_BLOCK_SIZE_MIN .. OTA_CBOR_BLOCK_SIZE_MAX. */
    uint32_t block_size;
    /** "o": index of the block that bit 0 of bitmap[0] stands for. */
    uint32_t block_offset;
    /** "n": most blocks the service may send for this request, >= 1. */
    uint32_t num_blocks;
    /** "b": wanted blocks relative to block_offset; block k is bitmap[k / 8] bit k % 8 (LSB first).
     */
    const uint8_t *bitmap;
    /** Bytes in bitmap, 1 .. OTA_CBOR_BITMAP_MAX. */
    size_t bitmap_len;
    /** Nonzero: send "s" = stream_version. */
    uint8_t has_stream_version;
    /** "s": stream version, sent only if has_stream_version. */
    uint32_t stream_version;
} ota_cbor_get_stream_t;

/** A decoded data block (spec 4.2); the pointers point into the message. */
typedef struct ota_cbor_data_block {
    /** "c": the request's client token (not NUL-terminated); NULL and 0 if absent. */
    const char *client_token;
    size_t client_token_len;
    /** "f": file id. */
    uint32_t file_id;
    /** "i": absolute block index. */
    uint32_t block_index;
    /** "l": payload length; always equal to payload_len. */
    uint32_t block_len;
    /** "p": the block's bytes. */
    const uint8_t *payload;
    size_t payload_len;
} ota_cbor_data_block_t;

/** A decoded refusal (spec 4.3); the pointers point into the message, none NUL-terminated. */
typedef struct ota_cbor_rejected {
    /** "o": the service's error code, e.g. "VersionMismatch" (always present). */
    const char *code;
    size_t code_len;
    /** "m": human-readable message; NULL and 0 if absent. */
    const char *message;
    size_t message_len;
    /** "c": the request's client token; NULL and 0 if absent. */
    const char *client_token;
    size_t client_token_len;
} ota_cbor_rejected_t;

/**
 * Encode a GetStream request as a definite-length map in the key order
 * c, [s,] f, l, o, b, n (the AWS agent's order, "c" left out when there is no
 * token), every integer and length in its shortest form. With token "rdy",
 * f = 0, l = 4096, o = 0, b = {0x07}, n = 1 the output is the spec's
 * a6 61 63 63 72 64 79 61 66 00 61 6c 19 10 00 61 6f 00 61 62 41 07 61 6e 01.
 *
 * @param req the request; not kept after the call.
 * @param buf where the encoding goes; cap bytes, owned by the caller.
 * @param cap size of buf; OTA_CBOR_GET_STREAM_MAX_SIZE() is always enough.
 * @param out_len set to the encoded length on OTA_OK, and to the length
 *        that would be needed on OTA_ERR_OUT_OF_MEMORY.
 * @return OTA_OK;
 *         OTA_ERR_INVALID_ARG if req, buf, out_len or req->bitmap is NULL, the
 *         token is longer than OTA_CBOR_TOKEN_MAX, bitmap_len is 0 or above
 *         OTA_CBOR_BITMAP_MAX, block_size is out of range or num_blocks is 0
 *         (nothing is written, *out_len is untouched);
 *         OTA_ERR_OUT_OF_MEMORY if cap is too small (buf holds a useless
 *         prefix of the encoding).
 */
OTA_MODULE ota_err_t ota_cbor_encode_get_stream(const ota_cbor_get_stream_t *req, uint8_t *buf,
                                                size_t cap, size_t *out_len);

/**
 * Decode a data block message: keys "f", "i", "l" (unsigned integers that
 * fit uint32_t) and "p" (byte string) are required, "c" (text) is optional,
 * others are skipped. See the top of this file for what else is refused.
 *
 * @param msg the whole message (len bytes); must outlive the pointers set in *out.
 * @param len message length in bytes.
 * @param out written only on OTA_OK.
 * @return OTA_OK;
 *         OTA_ERR_INVALID_ARG if msg or out is NULL;
 *         OTA_ERR_BAD_MESSAGE if the message is not well-formed CBOR as
 *         described above, a required key is missing, a known key repeats or
 *         has the wrong type, or "l" differs from the length of "p".
 */
OTA_MODULE ota_err_t ota_cbor_decode_data_block(const uint8_t *msg, size_t len,
                                                ota_cbor_data_block_t *out);

/**
 * Decode a refusal message: key "o" (text) is required, "m" and "c" (text)
 * are optional, others are skipped.
 *
 * @param msg the whole message (len bytes); must outlive the pointers set in *out.
 * @param len message length in bytes.
 * @param out written only on OTA_OK.
 * @return OTA_OK;
 *         OTA_ERR_INVALID_ARG if msg or out is NULL;
 *         OTA_ERR_BAD_MESSAGE if the message is not well-formed CBOR as
 *         described above, "o" is missing, or a known key repeats or is not
 *         a text string.
 */
OTA_MODULE ota_err_t ota_cbor_decode_rejected(const uint8_t *msg, size_t len,
                                              ota_cbor_rejected_t *out);

#endif /* OTA_CBOR_H */
