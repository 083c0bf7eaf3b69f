/*
 * otter: the parser of one answer to a range request (see ota_http_response.h).
 */
#include "ota_http_response.h"

#include <string.h>

void ota_http_resp_start(ota_http_resp_t *r)
{
    memset(r, 0, sizeof(*r));
}

static uint8_t lower(uint8_t ch)
{
    return (ch >= 'A' && ch <= 'Z') ? (uint8_t)(ch + ('a' - 'A')) : ch;
}

/* Case-insensitive comparison of s[0..len) with the lowercase word. */
static int is_word(const uint8_t *s, size_t len, const char *word)
{
    size_t i;
    if (len != strlen(word)) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        if (lower(s[i]) != (uint8_t)word[i]) {
            return 0;
        }
    }
    return 1;
}

static int is_digit(uint8_t ch)
{
    return ch >= '0' && ch <= '9';
}

/* Decimal digits at s[*i..len) into a uint32; at least one digit, no overflow. */
static int parse_u32(const uint8_t *s, size_t len, size_t *i, uint32_t *out)
{
    uint32_t v = 0;
    size_t start = *i;
    while (*i < len && is_digit(s[*i])) {
        uint32_t d = (uint32_t)(s[*i] - '0');
        if (v > (UINT32_MAX - d) / 10u) {
            return 0;
        }
        v = v * 10u + d;
        (*i)++;
    }
    *out = v;
    return *i > start;
}

/* Token characters of a header name (RFC 9110 tchar). */
static int is_tchar(uint8_t ch)
{
    if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) {
        return 1;
    }
    return ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* "HTTP/1.x NNN[ reason]". */
static ota_httpc_result_t status_line(ota_http_resp_t *r, const uint8_t *s, size_t len)
{
    size_t i = 9;
    if (len < 12 || memcmp(s, "HTTP/1.", 7) != 0 || !is_digit(s[7]) || s[8] != ' ' ||
        !is_digit(s[9]) || !is_digit(s[10]) || !is_digit(s[11]) || (len > 12 && s[12] != ' ')) {
        return OTA_HTTPC_MALFORMED;
    }
    r->status = (uint16_t)((s[i] - '0') * 100 + (s[i + 1] - '0') * 10 + (s[i + 2] - '0'));
    if (r->status < 100) {
        return OTA_HTTPC_MALFORMED;
    }
    /* HTTP/1.0 closes after the answer unless it says keep-alive (seen later). */
    if (s[7] == '0') {
        r->flags |= OTA_HTTP_F_CLOSE;
    }
    return OTA_HTTPC_OK;
}

/* "bytes a-b/t" or "bytes a-b/ *" (t 0 for '*'). */
static int content_range(const uint8_t *v, size_t len, uint32_t *a, uint32_t *b, uint32_t *t)
{
    size_t i = 6;
    if (len < 6 || !is_word(v, 5, "bytes") || v[5] != ' ') {
        return 0;
    }
    if (!parse_u32(v, len, &i, a) || i >= len || v[i++] != '-' || !parse_u32(v, len, &i, b) ||
        i >= len || v[i++] != '/') {
        return 0;
    }
    if (i + 1 == len && v[i] == '*') {
        *t = 0;
        return *a <= *b;
    }
    if (!parse_u32(v, len, &i, t) || i != len) {
        return 0;
    }
    return *a <= *b && *b < *t;
}

/* Connection: a comma-separated list of tokens. */
static void connection(ota_http_resp_t *r, const uint8_t *v, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t s, e;
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) {
            i++;
        }
        s = i;
        while (i < len && v[i] != ',' && v[i] != ' ' && v[i] != '\t') {
            i++;
        }
        e = i;
        if (is_word(v + s, e - s, "close")) {
            r->flags |= OTA_HTTP_F_CLOSE;
        } else if (is_word(v + s, e - s, "keep-alive")) {
            r->flags &= (uint8_t)~OTA_HTTP_F_CLOSE;
        }
    }
}

/* One header line "name: value" (no line ending). */
static ota_httpc_result_t header_line(ota_http_resp_t *r, const uint8_t *s, size_t len)
{
    size_t n = 0, vs, ve;
    if (r->status != 206) {
        return OTA_HTTPC_OK; /* a refusal: only its status matters */
    }
    while (n < len && is_tchar(s[n])) {
        n++;
    }
    if (n == 0 || n >= len || s[n] != ':') {
        return OTA_HTTPC_MALFORMED; /* also obs-fold (a line starting with a space) */
    }
    vs = n + 1;
    ve = len;
    while (vs < ve && (s[vs] == ' ' || s[vs] == '\t')) {
        vs++;
    }
    while (ve > vs && (s[ve - 1] == ' ' || s[ve - 1] == '\t')) {
        ve--;
    }
    if (is_word(s, n, "content-length")) {
        uint32_t v;
        size_t i = vs;
        if (!parse_u32(s, ve, &i, &v) || i != ve ||
            ((r->flags & OTA_HTTP_F_LENGTH) && v != r->content_length)) {
            return OTA_HTTPC_BAD_LENGTH;
        }
        r->content_length = v;
        r->flags |= OTA_HTTP_F_LENGTH;
    } else if (is_word(s, n, "content-range")) {
        if ((r->flags & OTA_HTTP_F_RANGE) ||
            !content_range(s + vs, ve - vs, &r->cr_first, &r->cr_last, &r->cr_total)) {
            return OTA_HTTPC_WRONG_RANGE;
        }
        r->flags |= OTA_HTTP_F_RANGE;
    } else if (is_word(s, n, "transfer-encoding")) {
        if ((r->flags & OTA_HTTP_F_CHUNKED) || !is_word(s + vs, ve - vs, "chunked")) {
            return OTA_HTTPC_BAD_LENGTH;
        }
        r->flags |= OTA_HTTP_F_CHUNKED;
    } else if (is_word(s, n, "connection")) {
        connection(r, s + vs, ve - vs);
    } else if (is_word(s, n, "etag")) {
        if (ve - vs > OTA_HTTP_ETAG_MAX) {
            return OTA_HTTPC_HEADER_TOO_LARGE;
        }
        memcpy(r->etag, s + vs, ve - vs);
        r->etag_len = (uint8_t)(ve - vs);
        r->flags |= OTA_HTTP_F_ETAG;
    }
    return OTA_HTTPC_OK;
}

static ota_httpc_result_t status_result(uint16_t status)
{
    switch (status) {
    case 206:
        return OTA_HTTPC_OK;
    case 401:
    case 403:
        return OTA_HTTPC_EXPIRED;
    case 404:
    case 410:
        return OTA_HTTPC_NOT_FOUND;
    case 416:
        return OTA_HTTPC_RANGE_REFUSED;
    default:
        return status >= 500 && status <= 599 ? OTA_HTTPC_SERVER_ERROR : OTA_HTTPC_STATUS;
    }
}

/* The empty line after the headers: is this the range asked, framed soundly? */
static ota_httpc_result_t headers_end(ota_http_resp_t *r, const ota_http_want_t *w)
{
    uint32_t size = w->last - w->first + 1u;
    ota_httpc_result_t res = status_result(r->status);
    if (res != OTA_HTTPC_OK) {
        return res;
    }
    if (!(r->flags & OTA_HTTP_F_RANGE) || r->cr_first != w->first || r->cr_last != w->last ||
        (w->file_size != 0 && r->cr_total != 0 && r->cr_total != w->file_size)) {
        return OTA_HTTPC_WRONG_RANGE;
    }
    if ((r->flags & OTA_HTTP_F_CHUNKED) != 0) {
        if ((r->flags & OTA_HTTP_F_LENGTH) != 0) {
            return OTA_HTTPC_BAD_LENGTH;
        }
        r->state = OTA_HTTP_S_CHUNK_SIZE;
    } else {
        if (!(r->flags & OTA_HTTP_F_LENGTH) || r->content_length != size) {
            return OTA_HTTPC_BAD_LENGTH;
        }
        r->state = OTA_HTTP_S_BODY;
    }
    if (w->etag_len != 0 && (r->flags & OTA_HTTP_F_ETAG) != 0 &&
        (r->etag_len != w->etag_len || memcmp(r->etag, w->etag, w->etag_len) != 0)) {
        return OTA_HTTPC_CHANGED;
    }
    r->next = w->first;
    return OTA_HTTPC_OK;
}

/* "1a2b[;ext]" (hex, at most the bytes the range still lacks). */
static ota_httpc_result_t chunk_size(ota_http_resp_t *r, const ota_http_want_t *w, const uint8_t *s,
                                     size_t len)
{
    uint32_t left = w->last + 1u - r->next; /* r->next <= last + 1 and last < UINT32_MAX */
    uint32_t v = 0;
    size_t i = 0;
    for (; i < len; i++) {
        uint8_t ch = lower(s[i]);
        uint32_t d;
        if (is_digit(ch)) {
            d = (uint32_t)(ch - '0');
        } else if (ch >= 'a' && ch <= 'f') {
            d = (uint32_t)(ch - 'a' + 10);
        } else {
            break;
        }
        if (v > (left >> 4)) {
            return OTA_HTTPC_CHUNK_TOO_LARGE;
        }
        v <<= 4; /* v <= left now */
        if (d > left - v) {
            return OTA_HTTPC_CHUNK_TOO_LARGE;
        }
        v += d;
    }
    while (i < len && (s[i] == ' ' || s[i] == '\t')) {
        i++;
    }
    if (i == 0 || (i < len && s[i] != ';')) {
        return OTA_HTTPC_MALFORMED;
    }
    if (v == 0) {
        if (left != 0) {
            return OTA_HTTPC_BAD_LENGTH; /* the chunks ended before the range did */
        }
        r->state = OTA_HTTP_S_TRAILER;
    } else {
        r->chunk_left = v;
        r->state = OTA_HTTP_S_CHUNK_DATA;
    }
    return OTA_HTTPC_OK;
}

/* One line, without its ending, in the state that takes lines. */
static ota_httpc_result_t line(ota_http_resp_t *r, const ota_http_want_t *w, const uint8_t *s,
                               size_t len)
{
    switch (r->state) {
    case OTA_HTTP_S_STATUS: {
        ota_httpc_result_t res = status_line(r, s, len);
        if (res == OTA_HTTPC_OK) {
            /* 1xx answers (100 Continue, 103 Early Hints) precede the real one; 101 never does. */
            r->state = (r->status < 200 && r->status != 101) ? OTA_HTTP_S_INFO : OTA_HTTP_S_HEADERS;
            if (r->status == 101) {
                res = OTA_HTTPC_STATUS;
            }
        }
        return res;
    }
    case OTA_HTTP_S_INFO:
        if (len == 0) {
            r->state = OTA_HTTP_S_STATUS;
            r->flags = 0;
        }
        return OTA_HTTPC_OK;
    case OTA_HTTP_S_HEADERS:
        return len == 0 ? headers_end(r, w) : header_line(r, s, len);
    case OTA_HTTP_S_CHUNK_SIZE:
        return chunk_size(r, w, s, len);
    case OTA_HTTP_S_CHUNK_END:
        r->state = OTA_HTTP_S_CHUNK_SIZE;
        return len == 0 ? OTA_HTTPC_OK : OTA_HTTPC_MALFORMED;
    default: /* OTA_HTTP_S_TRAILER */
        if (len == 0) {
            r->state = OTA_HTTP_S_DONE;
        }
        return OTA_HTTPC_OK;
    }
}

static int takes_lines(uint8_t state)
{
    return state != OTA_HTTP_S_BODY && state != OTA_HTTP_S_CHUNK_DATA;
}

/* Header-like lines count towards OTA_HTTP_HEADER_BYTES_MAX; chunk sizes do not. */
static int counts_as_header(uint8_t state)
{
    return state == OTA_HTTP_S_STATUS || state == OTA_HTTP_S_INFO || state == OTA_HTTP_S_HEADERS ||
           state == OTA_HTTP_S_TRAILER;
}

ota_httpc_result_t ota_http_resp_parse(ota_http_resp_t *r, const ota_http_want_t *w,
                                       const uint8_t *buf, size_t len, size_t cap, size_t *used,
                                       ota_httpc_on_body_t on_body, void *ctx,
                                       ota_err_t *consumer_err)
{
    size_t pos = 0;
    ota_httpc_result_t res = OTA_HTTPC_OK;
    while (pos < len && r->state != OTA_HTTP_S_DONE && res == OTA_HTTPC_OK) {
        if (takes_lines(r->state)) {
            const uint8_t *s = buf + pos;
            const uint8_t *lf = memchr(s, '\n', len - pos);
            size_t n, body;
            if (lf == NULL) {
                if (len >= cap) {
                    res = OTA_HTTPC_HEADER_TOO_LARGE;
                }
                break;
            }
            n = (size_t)(lf - s) + 1u;
            body = n - 1u;
            if (body > 0 && s[body - 1] == '\r') {
                body--;
            }
            if (memchr(s, '\r', body) != NULL || memchr(s, 0, body) != NULL) {
                res = OTA_HTTPC_MALFORMED;
                break;
            }
            if (counts_as_header(r->state)) {
                r->header_bytes += (uint32_t)n;
                if (r->header_bytes > OTA_HTTP_HEADER_BYTES_MAX) {
                    res = OTA_HTTPC_HEADER_TOO_LARGE;
                    break;
                }
            }
            res = line(r, w, s, body);
            pos += n;
        } else {
            uint32_t want = r->state == OTA_HTTP_S_BODY ? w->last - r->next + 1u : r->chunk_left;
            size_t n = len - pos < want ? len - pos : want;
            ota_err_t err = on_body(ctx, r->next, buf + pos, n);
            if (err != OTA_OK) {
                *consumer_err = err;
                res = OTA_HTTPC_CONSUMER;
                break;
            }
            r->next += (uint32_t)n;
            pos += n;
            if (r->state == OTA_HTTP_S_BODY) {
                if (r->next == w->last + 1u) {
                    r->state = OTA_HTTP_S_DONE;
                }
            } else {
                r->chunk_left -= (uint32_t)n;
                if (r->chunk_left == 0) {
                    r->state = OTA_HTTP_S_CHUNK_END;
                }
            }
        }
    }
    *used = pos;
    return res;
}
