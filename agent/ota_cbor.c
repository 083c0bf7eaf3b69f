/* otter: CBOR stream messages (GetStream encode, data block and refusal decode). */
#include "ota_cbor.h"

#include <string.h>

#include "ota_out_of_line.h"

/* CBOR major types used here. */
#define MT_UINT 0u
#define MT_BYTES 2u
#define MT_TEXT 3u
#define MT_ARRAY 4u
#define MT_MAP 5u
#define MT_TAG 6u

/* ---- Encoding ---------------------------------------------------------- */

/* Output cursor; pos keeps counting past cap so that the needed size is known. */
typedef struct writer {
    uint8_t *buf;
    size_t cap;
    size_t pos;
} writer_t;

static void put_byte(writer_t *w, unsigned b)
{
    if (w->pos < w->cap) {
        w->buf[w->pos] = (uint8_t)b;
    }
    w->pos++;
}

/* A one-letter text key (none if key is 0) and an item head with the argument
 * in its shortest form. */
static void put_key(writer_t *w, char key, unsigned mt, uint32_t arg)
{
    unsigned shift;
    if (key != 0) {
        put_byte(w, 0x61u);
        put_byte(w, (unsigned char)key);
    }
    /* Argument bytes after the initial byte: 0, 1, 2 or 4 (additional information 24 + n / 2). */
    shift = arg > 0xffffu ? 32u : arg > 0xffu ? 16u : arg > 23u ? 8u : 0u;
    put_byte(w, mt << 5 | (shift != 0 ? 24u + (shift >> 4) : arg));
    while (shift != 0) {
        shift -= 8u;
        put_byte(w, (unsigned)(arg >> shift));
    }
}

/* A one-letter text key followed by a byte or text string of n bytes. */
static void put_string(writer_t *w, char key, unsigned mt, const void *src, size_t n)
{
    const uint8_t *p = src;
    put_key(w, key, mt, (uint32_t)n);
    while (n-- != 0) {
        put_byte(w, *p++);
    }
}

ota_err_t ota_cbor_encode_get_stream(const ota_cbor_get_stream_t *req, uint8_t *buf, size_t cap,
                                     size_t *out_len)
{
    writer_t w;
    size_t tlen = 0;
    if (req == NULL || buf == NULL || out_len == NULL || req->bitmap == NULL ||
        req->bitmap_len == 0 || req->bitmap_len > OTA_CBOR_BITMAP_MAX ||
        req->block_size < OTA_CBOR_BLOCK_SIZE_MIN || req->block_size > OTA_CBOR_BLOCK_SIZE_MAX ||
        req->num_blocks == 0) {
        return OTA_ERR_INVALID_ARG;
    }
    if (req->client_token != NULL) {
        while (tlen <= OTA_CBOR_TOKEN_MAX && req->client_token[tlen] != '\0') {
            tlen++;
        }
        if (tlen > OTA_CBOR_TOKEN_MAX) {
            return OTA_ERR_INVALID_ARG;
        }
    }
    w.buf = buf;
    w.cap = cap;
    w.pos = 0;
    put_key(&w, 0, MT_MAP, 5u + (req->client_token != NULL) + (req->has_stream_version != 0));
    if (req->client_token != NULL) {
        put_string(&w, 'c', MT_TEXT, req->client_token, tlen);
    }
    if (req->has_stream_version != 0) {
        put_key(&w, 's', MT_UINT, req->stream_version);
    }
    put_key(&w, 'f', MT_UINT, req->file_id);
    put_key(&w, 'l', MT_UINT, req->block_size);
    put_key(&w, 'o', MT_UINT, req->block_offset);
    put_string(&w, 'b', MT_BYTES, req->bitmap, req->bitmap_len);
    put_key(&w, 'n', MT_UINT, req->num_blocks);
    *out_len = w.pos;
    return w.pos <= cap ? OTA_OK : OTA_ERR_OUT_OF_MEMORY;
}

/* ---- Decoding ---------------------------------------------------------- */

/* Input cursor: p never passes end. */
typedef struct reader {
    const uint8_t *p;
    const uint8_t *end;
} reader_t;

/* Added to the major type by get_head() when an 8-byte argument does not fit uint32_t. */
#define HEAD_BIG 8

/*
 * Reads one item head and sets *arg to its argument. For a byte or text
 * string it also steps over the content, which then ends at r->p.
 * Returns the major type, plus HEAD_BIG for an integer, tag or simple value
 * whose argument exceeds 32 bits (*arg then holds its low bits); or -1 for a
 * truncated item, a reserved or indefinite argument (28 .. 31), a two-byte
 * simple value below 32, or a string, array or map longer than the bytes left.
 */
static int get_head(reader_t *r, uint32_t *arg)
{
    const uint8_t *p = r->p;
    size_t left = (size_t)(r->end - p);
    unsigned ib;
    unsigned ai;
    unsigned mt;
    unsigned big = 0;
    uint32_t v;
    if (left == 0) {
        return -1;
    }
    ib = *p++;
    left--;
    mt = ib >> 5;
    ai = ib & 31u;
    v = ai;
    if (ai >= 24u) {
        size_t n;
        if (ai > 27u) {
            return -1;
        }
        n = (size_t)1 << (ai - 24u);
        if (left < n) {
            return -1;
        }
        left -= n;
        v = 0;
        while (n-- != 0) {
            if ((v >> 24) != 0) {
                big = HEAD_BIG; /* a nonzero byte is shifted out */
            }
            v = v << 8 | *p++;
        }
        if (ib == 0xf8u && v < 32u) {
            return -1;
        }
    }
    if (mt >= MT_BYTES && mt <= MT_MAP) {
        /* Each element takes at least one byte, so a count above what is left cannot be right. */
        if (big != 0 || v > left) {
            return -1;
        }
        if (mt <= MT_TEXT) {
            p += v;
        }
    }
    r->p = p;
    *arg = v;
    return (int)(mt | big);
}

/*
 * Skips one well-formed item, keeping for each open array, map or tag the
 * number of items it still holds. Returns 0, or -1 if the item is malformed,
 * truncated or nested deeper than OTA_CBOR_MAX_DEPTH.
 */
static int skip_item(reader_t *r)
{
    size_t left[OTA_CBOR_MAX_DEPTH + 1u];
    unsigned depth = 0;
    left[0] = 1;
    for (;;) {
        uint32_t arg;
        size_t n;
        int mt;
        while (left[depth] == 0) {
            if (depth == 0) {
                return 0;
            }
            depth--;
        }
        left[depth]--;
        mt = get_head(r, &arg);
        if (mt < 0) {
            return -1;
        }
        n = arg; /* <= bytes left for arrays and maps, so 2 * n cannot overflow */
        if ((mt & 7) == (int)MT_TAG) {
            n = 1;
        } else if (mt == (int)MT_MAP) {
            n *= 2u;
        } else if (mt != (int)MT_ARRAY) {
            continue; /* integer, string or simple value: already stepped over */
        }
        if (depth == OTA_CBOR_MAX_DEPTH) {
            return -1; /* one container more than allowed, even an empty one */
        }
        if (n != 0) {
            left[++depth] = n;
        }
    }
}

/* Most known keys of a map: the slots decode_map() is given. */
#define MAP_KEYS_MAX 5u

/* One decoded value of a known key: an integer in val, or a string at ptr of length val. */
typedef struct slot {
    const uint8_t *ptr;
    uint32_t val;
} slot_t;

/*
 * Decodes a top-level map whose known keys are the letters of keys (at most
 * MAP_KEYS_MAX); the value of keys[i] must have the major type in bits
 * 2i .. 2i + 1 of types (MT_UINT, MT_BYTES or MT_TEXT) and goes to slots[i];
 * the MAP_KEYS_MAX slots are zeroed first. Fails unless every key i whose bit 16 + i is set in
 * types is present (MAP_SPEC()). out is the caller's output, only checked for NULL here.
 */
static ota_err_t decode_map(const uint8_t *msg, size_t len, const void *out, const char *keys,
                            uint32_t types, slot_t *slots)
{
    uint32_t required = types >> 16;
    reader_t r;
    uint32_t pairs;
    uint32_t n;
    unsigned mt;
    unsigned seen = 0;
    if (msg == NULL || out == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    memset(slots, 0, MAP_KEYS_MAX * sizeof *slots);
    r.p = msg;
    r.end = msg + len;
    if (get_head(&r, &pairs) != (int)MT_MAP) {
        return OTA_ERR_BAD_MESSAGE;
    }
    while (pairs-- != 0) {
        const char *key;
        unsigned i;
        if (get_head(&r, &n) != (int)MT_TEXT) {
            return OTA_ERR_BAD_MESSAGE;
        }
        /* a known key: one letter of keys (the NUL byte is none) */
        key = n == 1 && r.p[-1] != 0 ? strchr(keys, r.p[-1]) : NULL;
        if (key == NULL) {
            if (skip_item(&r) != 0) {
                return OTA_ERR_BAD_MESSAGE;
            }
            continue;
        }
        i = (unsigned)(key - keys);
        mt = types >> (2u * i) & 3u;
        if ((seen >> i & 1u) != 0 || get_head(&r, &n) != (int)mt) {
            return OTA_ERR_BAD_MESSAGE;
        }
        seen |= 1u << i;
        slots[i].ptr = mt == MT_UINT ? NULL : r.p - n;
        slots[i].val = n;
    }
    if (r.p != r.end || (seen & required) != required) {
        return OTA_ERR_BAD_MESSAGE;
    }
    return OTA_OK;
}

/* Packs the major types of up to five keys and the mask of the required ones for decode_map(). */
#define MAP_SPEC(a, b, c, d, e, required)                                                          \
    ((a) | (b) << 2 | (c) << 4 | (d) << 6 | (e) << 8 | (uint32_t)(required) << 16)

ota_err_t ota_cbor_decode_data_block(const uint8_t *msg, size_t len, ota_cbor_data_block_t *out)
{
    slot_t s[MAP_KEYS_MAX];
    ota_err_t err;
    err = decode_map(msg, len, out, "filpc",
                     MAP_SPEC(MT_UINT, MT_UINT, MT_UINT, MT_BYTES, MT_TEXT, 0x0fu), s);
    if (err != OTA_OK) {
        return err;
    }
    if (s[2].val != s[3].val) {
        return OTA_ERR_BAD_MESSAGE;
    }
    out->file_id = s[0].val;
    out->block_index = s[1].val;
    out->block_len = s[2].val;
    out->payload = s[3].ptr;
    out->payload_len = s[3].val;
    out->client_token = (const char *)s[4].ptr;
    out->client_token_len = s[4].val;
    return OTA_OK;
}

ota_err_t ota_cbor_decode_rejected(const uint8_t *msg, size_t len, ota_cbor_rejected_t *out)
{
    slot_t s[MAP_KEYS_MAX];
    ota_err_t err;
    err = decode_map(msg, len, out, "omc", MAP_SPEC(MT_TEXT, MT_TEXT, MT_TEXT, 0u, 0u, 0x01u), s);
    if (err != OTA_OK) {
        return err;
    }
    out->code = (const char *)s[0].ptr;
    out->code_len = s[0].val;
    out->message = (const char *)s[1].ptr;
    out->message_len = s[1].val;
    out->client_token = (const char *)s[2].ptr;
    out->client_token_len = s[2].val;
    return OTA_OK;
}
