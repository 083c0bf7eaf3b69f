/*
 * otter service: the MQTT streams API. See ota_svc_streams.h.
 */
#define _POSIX_C_SOURCE 200809L
#include "ota_svc_streams.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cbor.h>
#include <cjson/cJSON.h>

#include "ota_svc_budget.h"
#include "ota_svc_json.h"

/* Largest request payload decoded (a bitmap just over the limit still fits). */
#define REQUEST_MAX 65536u
#define JSON_REQUEST_MAX 131072u
/* Room for a data message's CBOR head: map, c (64-byte token), f, i, l, p head. */
#define CBOR_HEAD_MAX 256u
/* Summaries: logged after this pause, or this often during a long transfer. */
#define SUMMARY_PAUSE_MS 2000
#define SUMMARY_EVERY_MS 30000
#define SUMMARY_FORGET_MS 60000
#define ACTIVITY_BUCKETS 1024u

typedef enum op { OP_NONE, OP_GET_CBOR, OP_GET_JSON, OP_DESCRIBE_CBOR, OP_DESCRIBE_JSON } op_t;

typedef enum code {
    C_OK = 0,
    C_INVALID_CBOR,
    C_INVALID_JSON,
    C_INVALID_REQUEST,
    C_UNAUTHORIZED,
    C_BLOCK_SIZE,
    C_OFFSET,
    C_BLOCK_COUNT,
    C_BITMAP,
    C_NOT_FOUND,
    C_VERSION,
    C_INTERNAL,
    C_THROTTLED,
} code_t;

static const char *const code_names[] = {
    [C_OK] = "",
    [C_INVALID_CBOR] = "InvalidCbor",
    [C_INVALID_JSON] = "InvalidJson",
    [C_INVALID_REQUEST] = "InvalidRequest",
    [C_UNAUTHORIZED] = "Unauthorized",
    [C_BLOCK_SIZE] = "BlockSizeOutOfBounds",
    [C_OFFSET] = "OffsetOutOfBounds",
    [C_BLOCK_COUNT] = "BlockCountLimitExceeded",
    [C_BITMAP] = "BlockBitmapLimitExceeded",
    [C_NOT_FOUND] = "ResourceNotFound",
    [C_VERSION] = "VersionMismatch",
    [C_INTERNAL] = "InternalError",
    [C_THROTTLED] = "RequestThrottled",
};

/* A decoded GetStream or DescribeStream request. */
typedef struct request {
    int has_c;
    char c[OTA_SVC_STREAMS_TOKEN_MAX + 1];
    size_t c_len;
    int has_s, has_f, has_l, has_o, has_n, has_b;
    uint64_t s, f, l, o, n;
    size_t b_len;  /* bitmap length, also when too long (then not copied) */
    uint8_t *b;    /* the module's bitmap buffer */
    char msg[160]; /* refusal message */
    code_t fail;   /* first problem found while decoding */
    /* An answer sent in turns: what earlier turns sent (the bits of blocks sent are cleared,
     * and o of a request without bitmap moves on), and whether its bytes are paid for. */
    uint64_t done_msgs, done_bytes;
    int paid;
    int more; /* the turn ended before the answer did */
} request_t;

/* Per thing and stream activity, for summary log lines. */
typedef struct activity {
    struct activity *next;
    char *thing;
    char *stream;
    uint64_t requests, blocks, bytes, rejected;
    uint64_t file_id;
    uint64_t block_size; /* of the latest request; top_block counts in these blocks */
    uint64_t top_block;  /* highest block index served + 1 */
    uint64_t file_blocks;
    int64_t first_ms, last_ms, logged_ms;
    int pending;
} activity_t;

/* A GetStream request waiting for its thing's turn. */
typedef struct pending {
    struct pending *next;
    int json;
    int64_t since_ms; /* when it was queued */
    char stream[OTA_SVC_STREAMS_NAME_MAX + 1];
    request_t r; /* r.b points at bits */
    uint8_t bits[];
} pending_t;

/* A thing's queue of GetStream requests; in the turn ring while not empty. */
typedef struct thing_queue {
    struct thing_queue *hnext; /* hash chain */
    struct thing_queue *rnext; /* turn ring: things with requests waiting, served in order */
    pending_t *head, *tail;
    unsigned n;
    char thing[];
} thing_queue_t;

struct ota_svc_streams {
    ota_svc_streams_source_t source;
    ota_svc_budget_t *budget;
    int deferred; /* queued requests wait for ota_svc_streams_serve() */
    thing_queue_t *queues[ACTIVITY_BUCKETS];
    thing_queue_t *turn_head, *turn_tail;
    size_t queued;
    ota_svc_streams_publish_fn publish;
    void *publish_ctx;
    ota_svc_streams_log_fn log;
    void *log_ctx;
    ota_svc_streams_stats_t stats;
    uint8_t *out; /* CBOR head + one block; also the raw block for JSON */
    char *jout;   /* JSON data message: head + base64 of one block */
    size_t jout_cap;
    uint8_t *bitmap; /* OTA_SVC_STREAMS_BITMAP_LIMIT bytes */
    activity_t *buckets[ACTIVITY_BUCKETS];
};

static const char *const topics[] = {
    "$aws/things/+/streams/+/get/cbor",
    "$aws/things/+/streams/+/get/json",
    "$aws/things/+/streams/+/describe/cbor",
    "$aws/things/+/streams/+/describe/json",
    NULL,
};

const char *const *ota_svc_streams_topics(void)
{
    return topics;
}

/* ----------------------------------------------------------------- log -- */

static void logf_(ota_svc_streams_t *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void logf_(ota_svc_streams_t *s, int level, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    if (s->log == NULL) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    s->log(s->log_ctx, level, line);
}

void ota_svc_streams_set_log(ota_svc_streams_t *streams, ota_svc_streams_log_fn log, void *log_ctx)
{
    streams->log = log;
    streams->log_ctx = log_ctx;
}

/* ------------------------------------------------------------ activity -- */

static size_t hash2(const char *a, const char *b)
{
    uint32_t h = 2166136261u;
    for (; *a != '\0'; a++) {
        h = (h ^ (uint8_t)*a) * 16777619u;
    }
    h = (h ^ '/') * 16777619u;
    for (; *b != '\0'; b++) {
        h = (h ^ (uint8_t)*b) * 16777619u;
    }
    return h % ACTIVITY_BUCKETS;
}

static activity_t *activity_get(ota_svc_streams_t *s, const char *thing, const char *stream,
                                int64_t now_ms)
{
    size_t h = hash2(thing, stream);
    activity_t *a;

    for (a = s->buckets[h]; a != NULL; a = a->next) {
        if (strcmp(a->thing, thing) == 0 && strcmp(a->stream, stream) == 0) {
            break;
        }
    }
    if (a == NULL) {
        a = calloc(1, sizeof(*a));
        if (a == NULL) {
            return NULL;
        }
        a->thing = strdup(thing);
        a->stream = strdup(stream);
        if (a->thing == NULL || a->stream == NULL) {
            free(a->thing);
            free(a->stream);
            free(a);
            return NULL;
        }
        a->logged_ms = now_ms;
        a->next = s->buckets[h];
        s->buckets[h] = a;
    }
    if (!a->pending) {
        a->first_ms = now_ms;
        a->pending = 1;
    }
    a->last_ms = now_ms;
    return a;
}

static void activity_log(ota_svc_streams_t *s, activity_t *a, int64_t now_ms)
{
    char rej[48] = "";
    if (a->rejected > 0) {
        snprintf(rej, sizeof(rej), ", %" PRIu64 " rejected", a->rejected);
    }
    if (a->blocks > 0) {
        logf_(s, 2,
              "streams: thing %s stream %s file %" PRIu64 ": %" PRIu64 " requests, %" PRIu64
              " blocks, %" PRIu64 " bytes in %.3f s (up to block %" PRIu64 " of %" PRIu64
              ", %" PRIu64 "-byte blocks)%s",
              a->thing, a->stream, a->file_id, a->requests, a->blocks, a->bytes,
              (double)(a->last_ms - a->first_ms) / 1000.0, a->top_block, a->file_blocks,
              a->block_size, rej);
    } else {
        logf_(s, 2, "streams: thing %s stream %s: %" PRIu64 " requests, no blocks sent%s", a->thing,
              a->stream, a->requests, rej);
    }
    a->requests = a->blocks = a->bytes = a->rejected = 0;
    a->top_block = 0;
    a->pending = 0;
    a->logged_ms = now_ms;
}

void ota_svc_streams_tick(ota_svc_streams_t *streams, int64_t now_ms)
{
    for (size_t h = 0; h < ACTIVITY_BUCKETS; h++) {
        activity_t **pp = &streams->buckets[h];
        while (*pp != NULL) {
            activity_t *a = *pp;
            if (a->pending && (now_ms - a->last_ms >= SUMMARY_PAUSE_MS ||
                               now_ms - a->logged_ms >= SUMMARY_EVERY_MS)) {
                activity_log(streams, a, now_ms);
            }
            if (!a->pending && now_ms - a->last_ms >= SUMMARY_FORGET_MS) {
                *pp = a->next;
                free(a->thing);
                free(a->stream);
                free(a);
                continue;
            }
            pp = &a->next;
        }
    }
}

void ota_svc_streams_flush_log(ota_svc_streams_t *streams)
{
    for (size_t h = 0; h < ACTIVITY_BUCKETS; h++) {
        for (activity_t *a = streams->buckets[h]; a != NULL; a = a->next) {
            if (a->pending) {
                activity_log(streams, a, a->last_ms);
            }
        }
    }
}

/* ----------------------------------------------------- create, destroy -- */

ota_svc_streams_t *ota_svc_streams_create(const ota_svc_streams_source_t *source,
                                          ota_svc_streams_publish_fn publish, void *publish_ctx)
{
    ota_svc_streams_t *s;

    if (source == NULL || source->get == NULL || source->may_read == NULL || publish == NULL) {
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    s->source = *source;
    s->publish = publish;
    s->publish_ctx = publish_ctx;
    s->out = malloc(CBOR_HEAD_MAX + OTA_SVC_STREAMS_BLOCK_MAX);
    s->jout_cap = 512u + 4u * ((OTA_SVC_STREAMS_BLOCK_MAX + 2u) / 3u);
    s->jout = malloc(s->jout_cap);
    s->bitmap = malloc(OTA_SVC_STREAMS_BITMAP_LIMIT);
    if (s->out == NULL || s->jout == NULL || s->bitmap == NULL) {
        ota_svc_streams_destroy(s);
        return NULL;
    }
    return s;
}

void ota_svc_streams_destroy(ota_svc_streams_t *streams)
{
    if (streams == NULL) {
        return;
    }
    for (size_t h = 0; h < ACTIVITY_BUCKETS; h++) {
        activity_t *a = streams->buckets[h];
        while (a != NULL) {
            activity_t *next = a->next;
            free(a->thing);
            free(a->stream);
            free(a);
            a = next;
        }
    }
    for (size_t h = 0; h < ACTIVITY_BUCKETS; h++) {
        thing_queue_t *q = streams->queues[h];
        while (q != NULL) {
            thing_queue_t *qnext = q->hnext;
            while (q->head != NULL) {
                pending_t *p = q->head;
                q->head = p->next;
                free(p);
            }
            free(q);
            q = qnext;
        }
    }
    free(streams->out);
    free(streams->jout);
    free(streams->bitmap);
    free(streams);
}

void ota_svc_streams_get_stats(const ota_svc_streams_t *streams, ota_svc_streams_stats_t *out)
{
    *out = streams->stats;
}

/* --------------------------------------------------------------- topic -- */

/* Splits "$aws/things/<thing>/streams/<stream>/<op>"; copies thing and stream. */
static op_t parse_topic(const char *topic, char *thing, char *stream, int *bad_name)
{
    static const char prefix[] = "$aws/things/";
    const char *p = topic;
    const char *slash;
    size_t n;

    *bad_name = 0;
    if (strncmp(p, prefix, sizeof(prefix) - 1) != 0) {
        return OP_NONE;
    }
    p += sizeof(prefix) - 1;
    slash = strchr(p, '/');
    if (slash == NULL || strncmp(slash, "/streams/", 9) != 0) {
        return OP_NONE;
    }
    n = (size_t)(slash - p);
    if (n == 0 || n > OTA_SVC_STREAMS_NAME_MAX) {
        *bad_name = 1;
        n = 0;
    }
    memcpy(thing, p, n);
    thing[n] = '\0';
    p = slash + 9;
    slash = strchr(p, '/');
    if (slash == NULL) {
        return OP_NONE;
    }
    n = (size_t)(slash - p);
    if (n == 0 || n > OTA_SVC_STREAMS_NAME_MAX) {
        *bad_name = 1;
        n = 0;
    }
    memcpy(stream, p, n);
    stream[n] = '\0';
    p = slash + 1;
    if (strcmp(p, "get/cbor") == 0) {
        return OP_GET_CBOR;
    }
    if (strcmp(p, "get/json") == 0) {
        return OP_GET_JSON;
    }
    if (strcmp(p, "describe/cbor") == 0) {
        return OP_DESCRIBE_CBOR;
    }
    if (strcmp(p, "describe/json") == 0) {
        return OP_DESCRIBE_JSON;
    }
    return OP_NONE;
}

/* ------------------------------------------------------ request decode -- */

static void req_fail(request_t *r, code_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void req_fail(request_t *r, code_t code, const char *fmt, ...)
{
    va_list ap;
    if (r->fail != C_OK) {
        return;
    }
    r->fail = code;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
    va_end(ap);
}

static void req_set_token(request_t *r, const char *text, size_t len)
{
    if (len > OTA_SVC_STREAMS_TOKEN_MAX) {
        req_fail(r, C_INVALID_REQUEST, "client token longer than %u bytes",
                 OTA_SVC_STREAMS_TOKEN_MAX);
        return;
    }
    memcpy(r->c, text, len);
    r->c[len] = '\0';
    r->c_len = len;
    r->has_c = 1;
}

/* Records an unsigned integer key. */
static void req_set_uint(request_t *r, char key, uint64_t v)
{
    switch (key) {
    case 's':
        r->s = v;
        r->has_s = 1;
        break;
    case 'f':
        r->f = v;
        r->has_f = 1;
        break;
    case 'l':
        r->l = v;
        r->has_l = 1;
        break;
    case 'o':
        r->o = v;
        r->has_o = 1;
        break;
    case 'n':
        r->n = v;
        r->has_n = 1;
        break;
    default:
        break;
    }
}

static int is_uint_key(char key)
{
    return key == 's' || key == 'f' || key == 'l' || key == 'o' || key == 'n';
}

/* Appends bitmap bytes (several chunks for an indefinite byte string). */
static void req_add_bitmap(request_t *r, const uint8_t *data, size_t len)
{
    if (r->b_len + len < OTA_SVC_STREAMS_BITMAP_LIMIT) {
        memcpy(r->b + r->b_len, data, len);
    }
    r->b_len += len;
    r->has_b = 1;
}

/*
 * Requests are decoded by a small bounded reader rather than by building a
 * libcbor item tree: a declared length (a map of 2^32 pairs, say) never turns
 * into an allocation, and nesting is limited, so hostile input costs at most
 * a pass over its bytes.
 */
#define CBOR_DEPTH_MAX 16

typedef struct rd {
    const uint8_t *p;
    const uint8_t *end;
} rd_t;

/* Reads an item head: major type, argument, indefinite flag. 0 on success. */
static int rd_head(rd_t *d, unsigned *major, uint64_t *arg, int *indef)
{
    unsigned addl;
    size_t nbytes;

    if (d->p >= d->end) {
        return -1;
    }
    *major = *d->p >> 5;
    addl = *d->p & 31u;
    d->p++;
    *indef = 0;
    *arg = 0;
    if (addl < 24) {
        *arg = addl;
        return 0;
    }
    if (addl == 31) {
        /* Indefinite strings, arrays, maps; or "break" (major 7). */
        if (*major == 0 || *major == 1 || *major == 6) {
            return -1;
        }
        *indef = 1;
        return 0;
    }
    if (addl > 27) {
        return -1;
    }
    nbytes = (size_t)1 << (addl - 24);
    if ((size_t)(d->end - d->p) < nbytes) {
        return -1;
    }
    for (size_t i = 0; i < nbytes; i++) {
        *arg = *arg << 8 | d->p[i];
    }
    d->p += nbytes;
    return 0;
}

static int rd_is_break(const rd_t *d)
{
    return d->p < d->end && *d->p == 0xff;
}

/*
 * Reads a byte or text string (major 2 or 3), definite or indefinite, calling
 * sink(r, data, len) per chunk when sink is not NULL. 0 on success, -1 malformed.
 */
static int rd_string(rd_t *d, unsigned major, uint64_t arg, int indef, request_t *r,
                     void (*sink)(request_t *, const uint8_t *, size_t))
{
    if (!indef) {
        if (arg > (uint64_t)(d->end - d->p)) {
            return -1;
        }
        /* Text must be UTF-8 (RFC 8949 3.1), each chunk on its own. */
        if (major == 3 && !ota_svc_utf8_valid(d->p, (size_t)arg, 1)) {
            return -1;
        }
        if (sink != NULL) {
            sink(r, d->p, (size_t)arg);
        }
        d->p += arg;
        return 0;
    }
    while (!rd_is_break(d)) {
        unsigned cmajor;
        uint64_t carg;
        int cindef;
        if (rd_head(d, &cmajor, &carg, &cindef) != 0 || cmajor != major || cindef ||
            carg > (uint64_t)(d->end - d->p) ||
            (major == 3 && !ota_svc_utf8_valid(d->p, (size_t)carg, 1))) {
            return -1;
        }
        if (sink != NULL) {
            sink(r, d->p, (size_t)carg);
        }
        d->p += carg;
    }
    d->p++; /* the break */
    return 0;
}

/* Skips one whole item. 0 on success, -1 malformed or nested too deeply. */
static int rd_skip(rd_t *d, int depth)
{
    unsigned major;
    uint64_t arg;
    int indef;

    if (depth > CBOR_DEPTH_MAX || rd_head(d, &major, &arg, &indef) != 0) {
        return -1;
    }
    switch (major) {
    case 0:
    case 1:
        return 0;
    case 2:
    case 3:
        return rd_string(d, major, arg, indef, NULL, NULL);
    case 4:
    case 5:
        if (indef) {
            while (!rd_is_break(d)) {
                if (rd_skip(d, depth + 1) != 0 || (major == 5 && rd_skip(d, depth + 1) != 0)) {
                    return -1;
                }
            }
            d->p++;
            return 0;
        }
        /* Each item takes at least one byte: a count beyond the input fails fast. */
        for (uint64_t i = 0; i < arg; i++) {
            if (rd_skip(d, depth + 1) != 0 || (major == 5 && rd_skip(d, depth + 1) != 0)) {
                return -1;
            }
        }
        return 0;
    case 6:
        return rd_skip(d, depth + 1);
    default: /* 7: simple values and floats; a stray break is malformed */
        return indef ? -1 : 0;
    }
}

static void sink_token(request_t *r, const uint8_t *data, size_t len)
{
    if (r->c_len + len > OTA_SVC_STREAMS_TOKEN_MAX) {
        r->c_len = OTA_SVC_STREAMS_TOKEN_MAX + 1; /* too long: refused below */
        return;
    }
    memcpy(r->c + r->c_len, data, len);
    r->c_len += len;
}

static void sink_bitmap(request_t *r, const uint8_t *data, size_t len)
{
    req_add_bitmap(r, data, len);
}

/* Reads one map value for a one-letter key. 0 on success, -1 malformed. */
static int rd_value(rd_t *d, request_t *r, char key)
{
    const uint8_t *at = d->p;
    unsigned major;
    uint64_t arg;
    int indef;

    if (key == 'c' || key == 'b' || is_uint_key(key)) {
        if (rd_head(d, &major, &arg, &indef) != 0) {
            return -1;
        }
        if (key == 'c' && major == 3) {
            r->c_len = 0;
            if (rd_string(d, major, arg, indef, r, sink_token) != 0) {
                return -1;
            }
            if (r->c_len > OTA_SVC_STREAMS_TOKEN_MAX) {
                r->c_len = 0;
                req_fail(r, C_INVALID_REQUEST, "client token longer than %u bytes",
                         OTA_SVC_STREAMS_TOKEN_MAX);
                return 0;
            }
            r->c[r->c_len] = '\0';
            if (memchr(r->c, 0, r->c_len) != NULL) {
                r->c_len = 0;
                req_fail(r, C_INVALID_REQUEST, "c must not contain NUL");
                return 0;
            }
            r->has_c = 1;
            return 0;
        }
        if (key == 'b' && major == 2) {
            r->b_len = 0;
            r->has_b = 1;
            return rd_string(d, major, arg, indef, r, sink_bitmap);
        }
        if (is_uint_key(key) && major == 0) {
            req_set_uint(r, key, arg);
            return 0;
        }
        /* Wrong type: refused, but the rest must still be well-formed. */
        d->p = at;
        req_fail(r, C_INVALID_REQUEST, "%c must be %s", key,
                 key == 'c'   ? "a text string"
                 : key == 'b' ? "a byte string"
                              : "an unsigned integer");
    }
    return rd_skip(d, 1);
}

/* Reads one key; *key is its letter for one-letter text keys, else 0. */
static int rd_key(rd_t *d, char *key)
{
    const uint8_t *at = d->p;
    unsigned major;
    uint64_t arg;
    int indef;

    *key = 0;
    if (rd_head(d, &major, &arg, &indef) != 0) {
        return -1;
    }
    if (major == 3 && !indef && arg == 1 && d->p < d->end) {
        *key = (char)*d->p;
        d->p++;
        return 0;
    }
    d->p = at;
    return rd_skip(d, 1);
}

static void decode_cbor(request_t *r, const uint8_t *payload, size_t len)
{
    rd_t d = {payload, payload + len};
    unsigned major;
    uint64_t arg;
    int indef;
    int bad = 0;
    unsigned seen = 0; /* keys read so far, one bit per letter */
    char dup = 0;

    if (len > REQUEST_MAX) {
        req_fail(r, C_INVALID_REQUEST, "request larger than %u bytes", REQUEST_MAX);
        return;
    }
    if (rd_head(&d, &major, &arg, &indef) != 0 || major != 5) {
        req_fail(r, C_INVALID_CBOR, len == 0 ? "empty payload" : "payload is not a CBOR map");
        return;
    }
    for (uint64_t i = 0; !bad && (indef || i < arg); i++) {
        char key;
        if (indef && rd_is_break(&d)) {
            d.p++;
            break;
        }
        bad = rd_key(&d, &key) != 0;
        if (!bad && key >= 'a' && key <= 'z') {
            unsigned bit = 1u << (key - 'a');
            if ((seen & bit) != 0 && dup == 0) {
                dup = key;
            }
            seen |= bit;
        }
        bad = bad || rd_value(&d, r, key) != 0;
    }
    if (bad || d.p != d.end) {
        /* Malformed anywhere outweighs any other problem found on the way. */
        r->fail = C_OK;
        r->has_c = 0;
        req_fail(r, C_INVALID_CBOR, "payload is not one well-formed CBOR map");
    } else if (dup != 0) {
        /* Which of two values counts is ambiguous: refuse, and echo neither token. */
        r->fail = C_OK;
        r->has_c = 0;
        req_fail(r, C_INVALID_CBOR, "key '%c' appears twice in the map", dup);
    }
}

static int hex_nibble(char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

/* "0x…" (or bare hex): byte i is hex digits 2i, 2i+1 after the prefix. */
static void req_hex_bitmap(request_t *r, const char *hex)
{
    size_t len;

    if (hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X')) {
        hex += 2;
    }
    len = strlen(hex);
    if (len % 2 != 0) {
        req_fail(r, C_INVALID_REQUEST, "b must have an even number of hex digits");
        return;
    }
    r->has_b = 1;
    r->b_len = len / 2;
    for (size_t i = 0; i < len / 2; i++) {
        int hi = hex_nibble(hex[2 * i]);
        int lo = hex_nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            req_fail(r, C_INVALID_REQUEST, "b must be a hex string \"0x...\"");
            return;
        }
        if (i < OTA_SVC_STREAMS_BITMAP_LIMIT) {
            r->b[i] = (uint8_t)(hi << 4 | lo);
        }
    }
}

static void decode_json(request_t *r, const uint8_t *payload, size_t len)
{
    cJSON *root;

    if (len > JSON_REQUEST_MAX) {
        req_fail(r, C_INVALID_REQUEST, "request larger than %u bytes", JSON_REQUEST_MAX);
        return;
    }
    if (ota_svc_json_check_text((const char *)payload, len, r->msg, sizeof(r->msg)) != 0) {
        r->fail = C_INVALID_JSON;
        return;
    }
    root = ota_svc_json_parse((const char *)payload, len);
    if (root == NULL) {
        req_fail(r, C_INVALID_JSON, "payload is not valid JSON");
        return;
    }
    if (!cJSON_IsObject(root)) {
        req_fail(r, C_INVALID_JSON, "payload is not a JSON object");
        cJSON_Delete(root);
        return;
    }
    if (ota_svc_json_check_keys(root, r->msg, sizeof(r->msg)) != 0) {
        r->fail = C_INVALID_JSON;
        cJSON_Delete(root);
        return;
    }
    {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(root, "c");
        if (c != NULL) {
            if (cJSON_IsString(c)) {
                req_set_token(r, c->valuestring, strlen(c->valuestring));
            } else {
                req_fail(r, C_INVALID_REQUEST, "c must be a string");
            }
        }
    }
    for (const cJSON *it = root->child; it != NULL; it = it->next) {
        char key;
        if (it->string == NULL || strlen(it->string) != 1) {
            continue;
        }
        key = it->string[0];
        if (is_uint_key(key)) {
            double d = it->valuedouble;
            if (!cJSON_IsNumber(it) || d < 0 || d > 9007199254740992.0 ||
                d != (double)(uint64_t)d) {
                req_fail(r, C_INVALID_REQUEST, "%c must be a non-negative integer", key);
                continue;
            }
            req_set_uint(r, key, (uint64_t)d);
        } else if (key == 'b') {
            if (!cJSON_IsString(it)) {
                req_fail(r, C_INVALID_REQUEST, "b must be a hex string \"0x...\"");
                continue;
            }
            req_hex_bitmap(r, it->valuestring);
        }
    }
    cJSON_Delete(root);
}

/* Checks that need no stream: presence, types, bounds. */
static void check_get(request_t *r, int json)
{
    uint64_t block_max = json ? OTA_SVC_STREAMS_JSON_BLOCK_MAX : OTA_SVC_STREAMS_BLOCK_MAX;
    if (r->fail != C_OK) {
        return;
    }
    if (!r->has_f || !r->has_l) {
        req_fail(r, C_INVALID_REQUEST, "f (file id) and l (block size) are required");
    } else if (!r->has_b && !r->has_n) {
        req_fail(r, C_INVALID_REQUEST, "n (block count) is required without b (bitmap)");
    } else if (r->has_n && r->n == 0) {
        req_fail(r, C_INVALID_REQUEST, "n must be at least 1");
    } else if (r->l < OTA_SVC_STREAMS_BLOCK_MIN || r->l > block_max) {
        req_fail(r, C_BLOCK_SIZE, "block size %" PRIu64 " outside %u..%" PRIu64 "%s", r->l,
                 OTA_SVC_STREAMS_BLOCK_MIN, block_max,
                 json ? " (a JSON answer must fit in 128 KiB)" : "");
    } else if (r->has_b && r->b_len >= OTA_SVC_STREAMS_BITMAP_LIMIT) {
        req_fail(r, C_BITMAP, "bitmap of %zu bytes; it must be shorter than %u", r->b_len,
                 OTA_SVC_STREAMS_BITMAP_LIMIT);
    } else if (r->has_n && r->n > OTA_SVC_STREAMS_MAX_BLOCKS) {
        req_fail(r, C_BLOCK_COUNT, "%" PRIu64 " blocks requested; at most %u", r->n,
                 OTA_SVC_STREAMS_MAX_BLOCKS);
    }
}

/* ------------------------------------------------------------- answers -- */

typedef struct ctx {
    char thing[OTA_SVC_STREAMS_NAME_MAX + 1];
    char stream[OTA_SVC_STREAMS_NAME_MAX + 1];
    char topic[OTA_SVC_STREAMS_NAME_MAX * 2 + 64];
    int json;
    const char *op_name;
    int64_t now_ms;
} ctx_t;

static int publish_to(ota_svc_streams_t *s, ctx_t *x, const char *suffix, const void *payload,
                      size_t len)
{
    snprintf(x->topic, sizeof(x->topic), "$aws/things/%s/streams/%s/%s", x->thing, x->stream,
             suffix);
    return s->publish(s->publish_ctx, x->topic, payload, len, 0);
}

/* Appends a one-letter text key. */
static size_t put_key(uint8_t *buf, size_t cap, char key)
{
    size_t n = cbor_encode_string_start(1, buf, cap);
    if (n == 0 || n >= cap) {
        return 0;
    }
    buf[n] = (uint8_t)key;
    return n + 1;
}

static size_t put_text(uint8_t *buf, size_t cap, const char *text, size_t len)
{
    size_t n = cbor_encode_string_start(len, buf, cap);
    if (n == 0 || cap - n < len) {
        return 0;
    }
    memcpy(buf + n, text, len);
    return n + len;
}

/* Appends key + item; `len` grows, 0 on overflow (then *len is left at cap). */
#define PUT(expr)                                                                                  \
    do {                                                                                           \
        size_t put_n_ = (expr);                                                                    \
        if (put_n_ == 0) {                                                                         \
            return 0;                                                                              \
        }                                                                                          \
        pos += put_n_;                                                                             \
    } while (0)

static size_t encode_rejection_cbor(uint8_t *buf, size_t cap, const request_t *r, const char *code)
{
    size_t pos = 0;
    PUT(cbor_encode_map_start(r->has_c ? 3u : 2u, buf + pos, cap - pos));
    PUT(put_key(buf + pos, cap - pos, 'o'));
    PUT(put_text(buf + pos, cap - pos, code, strlen(code)));
    PUT(put_key(buf + pos, cap - pos, 'm'));
    PUT(put_text(buf + pos, cap - pos, r->msg, strlen(r->msg)));
    if (r->has_c) {
        PUT(put_key(buf + pos, cap - pos, 'c'));
        PUT(put_text(buf + pos, cap - pos, r->c, r->c_len));
    }
    return pos;
}

static void reject(ota_svc_streams_t *s, ctx_t *x, const request_t *r, code_t code, activity_t *a)
{
    if (code == C_THROTTLED) {
        s->stats.throttled++;
        if (!ota_svc_budget_may_refuse(s->budget, x->thing, x->now_ms)) {
            return; /* refusals of a flood are themselves budgeted */
        }
    }
    const char *name = code_names[code];

    s->stats.rejected++;
    if (a != NULL) {
        a->rejected++;
    }
    logf_(s, 2, "streams: thing %s stream %s: %s refused: %s (%s)", x->thing, x->stream, x->op_name,
          name, r->msg);
    if (x->json) {
        cJSON *o = cJSON_CreateObject();
        char *text = NULL;
        if (o != NULL && cJSON_AddStringToObject(o, "o", name) != NULL &&
            cJSON_AddStringToObject(o, "m", r->msg) != NULL &&
            (!r->has_c || cJSON_AddStringToObject(o, "c", r->c) != NULL)) {
            text = cJSON_PrintUnformatted(o);
        }
        if (text != NULL) {
            publish_to(s, x, "rejected/json", text, strlen(text));
        }
        cJSON_free(text);
        cJSON_Delete(o);
    } else {
        size_t n =
            encode_rejection_cbor(s->out, CBOR_HEAD_MAX + OTA_SVC_STREAMS_BLOCK_MAX, r, name);
        if (n > 0) {
            publish_to(s, x, "rejected/cbor", s->out, n);
        }
    }
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t base64_encode(const uint8_t *in, size_t len, char *out)
{
    size_t o = 0;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len) {
            v |= (uint32_t)in[i + 1] << 8;
        }
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    return o;
}

/* Reads exactly len bytes at off; 0 on success. */
static int read_at(int fd, uint8_t *buf, size_t len, uint64_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        got += (size_t)n;
    }
    return 0;
}

/* State of one GetStream answer (one turn of it). */
typedef struct serve {
    int fd;
    const ota_svc_stream_file_t *file;
    uint64_t nblocks;
    uint64_t max_msgs;
    uint64_t sent;       /* blocks of the answer sent, earlier turns included */
    uint64_t bytes;      /* ... and their payload bytes */
    uint64_t turn_bytes; /* payload bytes sent in this turn */
    uint64_t stop;       /* the block the turn ended at */
    uint64_t top;
    char token_json[2 * OTA_SVC_STREAMS_TOKEN_MAX * 6 + 8]; /* "c":"…", escaped */
    int failed;
} serve_t;

/* Sends block idx; returns 0 to go on, 1 when a cap of the request is reached, 2 when the
 * turn is over (idx is still to be sent), -1 on failure. */
static int send_block(ota_svc_streams_t *s, ctx_t *x, request_t *r, serve_t *v, uint64_t idx)
{
    uint64_t blen = idx == v->nblocks - 1 ? v->file->size - idx * r->l : r->l;
    size_t pos = 0;
    size_t cap = CBOR_HEAD_MAX;
    uint8_t *buf = s->out;

    if (v->sent >= v->max_msgs || v->bytes + blen > OTA_SVC_STREAMS_MAX_PAYLOAD) {
        return 1;
    }
    if (v->turn_bytes > 0 && v->turn_bytes + blen > OTA_SVC_STREAMS_TURN_BYTES) {
        v->stop = idx;
        return 2;
    }
    if (x->json) {
        int head;
        size_t n;
        if (read_at(v->fd, s->out, (size_t)blen, idx * r->l) != 0) {
            return -1;
        }
        head = snprintf(s->jout, s->jout_cap,
                        "{%s\"f\":%" PRIu64 ",\"i\":%" PRIu64 ",\"l\":%" PRIu64 ",\"p\":\"",
                        v->token_json, r->f, idx, blen);
        if (head < 0 || (size_t)head + 4 * ((blen + 2) / 3) + 3 > s->jout_cap) {
            return -1;
        }
        n = (size_t)head + base64_encode(s->out, (size_t)blen, s->jout + head);
        s->jout[n++] = '"';
        s->jout[n++] = '}';
        if (publish_to(s, x, "data/json", s->jout, n) != 0) {
            return -1;
        }
    } else {
        /* Head: {c?, f, i, l, p: bytes(blen)}, then the block read in place after it;
         * CBOR_HEAD_MAX holds the largest head. */
        pos += cbor_encode_map_start(r->has_c ? 5u : 4u, buf, cap);
        if (r->has_c) {
            pos += put_key(buf + pos, cap - pos, 'c');
            pos += put_text(buf + pos, cap - pos, r->c, r->c_len);
        }
        pos += put_key(buf + pos, cap - pos, 'f');
        pos += cbor_encode_uint(r->f, buf + pos, cap - pos);
        pos += put_key(buf + pos, cap - pos, 'i');
        pos += cbor_encode_uint(idx, buf + pos, cap - pos);
        pos += put_key(buf + pos, cap - pos, 'l');
        pos += cbor_encode_uint(blen, buf + pos, cap - pos);
        pos += put_key(buf + pos, cap - pos, 'p');
        pos += cbor_encode_bytestring_start((size_t)blen, buf + pos, cap - pos);
        if (read_at(v->fd, buf + pos, (size_t)blen, idx * r->l) != 0) {
            return -1;
        }
        if (publish_to(s, x, "data/cbor", buf, pos + (size_t)blen) != 0) {
            return -1;
        }
    }
    v->sent++;
    v->bytes += blen;
    v->turn_bytes += blen;
    if (r->has_b) {
        uint64_t k = idx - r->o; /* sent: no longer asked for */
        r->b[k / 8] = (uint8_t)(r->b[k / 8] & ~(1u << (k % 8)));
    }
    if (idx + 1 > v->top) {
        v->top = idx + 1;
    }
    return 0;
}

/*
 * Calls visit(ctx, idx) for every block a GetStream asks for, in answer order
 * (bitmap bits, or n blocks from o), stopping at the file's end or when visit
 * returns nonzero. Returns visit's last nonzero result, or 0.
 */
static int walk_blocks(const request_t *r, uint64_t nblocks, int (*visit)(void *, uint64_t),
                       void *ctx)
{
    int rc = 0;
    if (r->has_b) {
        for (uint64_t k = 0; rc == 0 && k < (uint64_t)r->b_len * 8u; k++) {
            if ((r->b[k / 8] >> (k % 8) & 1u) == 0) {
                continue;
            }
            if (r->o + k >= nblocks) {
                break; /* blocks beyond the file are ignored */
            }
            rc = visit(ctx, r->o + k);
        }
    } else {
        for (uint64_t idx = r->o; rc == 0 && idx < nblocks; idx++) {
            rc = visit(ctx, idx);
        }
    }
    return rc;
}

/* Payload bytes of what a request will be answered with (the caps of send_block). */
typedef struct plan {
    const request_t *r;
    uint64_t nblocks, size, msgs, bytes;
} plan_t;

static int plan_visit(void *ctx, uint64_t idx)
{
    plan_t *p = ctx;
    uint64_t blen = idx == p->nblocks - 1 ? p->size - idx * p->r->l : p->r->l;
    uint64_t max_msgs = p->r->has_n ? p->r->n : UINT64_MAX;
    if (p->msgs >= max_msgs || p->bytes + blen > OTA_SVC_STREAMS_MAX_PAYLOAD) {
        return 1;
    }
    p->msgs++;
    p->bytes += blen;
    return 0;
}

typedef struct send_ctx {
    ota_svc_streams_t *s;
    ctx_t *x;
    request_t *r;
    serve_t *v;
} send_ctx_t;

static int send_visit(void *ctx, uint64_t idx)
{
    send_ctx_t *c = ctx;
    return send_block(c->s, c->x, c->r, c->v, idx);
}

static void token_json(const request_t *r, char *out, size_t cap)
{
    out[0] = '\0';
    if (r->has_c) {
        cJSON *str = cJSON_CreateString(r->c);
        char *text = str != NULL ? cJSON_PrintUnformatted(str) : NULL;
        if (text != NULL) {
            snprintf(out, cap, "\"c\":%s,", text);
        }
        cJSON_free(text);
        cJSON_Delete(str);
    }
}

static void answer_get(ota_svc_streams_t *s, ctx_t *x, request_t *r, const ota_svc_stream_t *stream,
                       activity_t *a)
{
    serve_t v;
    int rc = 0;

    memset(&v, 0, sizeof(v));
    for (size_t i = 0; i < stream->n_files; i++) {
        if ((uint64_t)stream->files[i].file_id == r->f) {
            v.file = &stream->files[i];
            break;
        }
    }
    if (v.file == NULL) {
        req_fail(r, C_NOT_FOUND, "stream %s has no file %" PRIu64, x->stream, r->f);
        reject(s, x, r, C_NOT_FOUND, a);
        return;
    }
    v.nblocks = (v.file->size + r->l - 1) / r->l;
    if (r->o >= v.nblocks) {
        req_fail(r, C_OFFSET, "block offset %" PRIu64 " beyond the file's %" PRIu64 " blocks", r->o,
                 v.nblocks);
        reject(s, x, r, C_OFFSET, a);
        return;
    }
    if (!r->paid) {
        /* The answer's bytes are paid for before anything is read or sent. */
        plan_t plan = {r, v.nblocks, v.file->size, 0, 0};
        walk_blocks(r, v.nblocks, plan_visit, &plan);
        if (!ota_svc_budget_bytes(s->budget, x->thing, plan.bytes, x->now_ms)) {
            req_fail(r, C_THROTTLED, "answer byte budget exhausted: %" PRIu64 " bytes asked",
                     plan.bytes);
            reject(s, x, r, C_THROTTLED, a);
            return;
        }
        r->paid = 1;
    }
    v.fd = open(v.file->path, O_RDONLY | O_CLOEXEC);
    if (v.fd < 0) {
        logf_(s, 0, "streams: stream %s file %" PRIu64 ": cannot open %s: %s", x->stream, r->f,
              v.file->path, strerror(errno));
        req_fail(r, C_INTERNAL, "file unavailable");
        reject(s, x, r, C_INTERNAL, a);
        return;
    }
    v.max_msgs = r->has_n ? r->n : UINT64_MAX;
    v.sent = r->done_msgs;
    v.bytes = r->done_bytes;
    if (x->json) {
        token_json(r, v.token_json, sizeof(v.token_json));
    }
    {
        send_ctx_t sc = {s, x, r, &v};
        rc = walk_blocks(r, v.nblocks, send_visit, &sc);
        r->more = rc == 2;
        if (r->more && !r->has_b) {
            r->o = v.stop; /* the blocks before it are sent */
        }
        if (rc > 0) {
            rc = 0; /* a cap was reached, or the turn is over */
        }
    }
    close(v.fd);
    s->stats.blocks += v.sent - r->done_msgs;
    s->stats.bytes += v.bytes - r->done_bytes;
    if (v.sent > 0 && r->done_msgs == 0) {
        s->stats.served++;
    }
    /* This turn's blocks, for the log and the activity. */
    v.sent -= r->done_msgs;
    v.bytes -= r->done_bytes;
    r->done_msgs += v.sent;
    r->done_bytes += v.bytes;
    if (a != NULL) {
        if (a->block_size != r->l || a->file_id != r->f) {
            a->top_block = 0;
        }
        a->block_size = r->l;
        a->blocks += v.sent;
        a->bytes += v.bytes;
        a->file_id = r->f;
        a->file_blocks = v.nblocks;
        if (v.top > a->top_block) {
            a->top_block = v.top;
        }
    }
    if (!r->more) { /* one line per request, at its last turn */
        logf_(s, 3,
              "streams: thing %s stream %s: %s file %" PRIu64 " l=%" PRIu64 " o=%" PRIu64
              ": %" PRIu64 " blocks, %" PRIu64 " bytes",
              x->thing, x->stream, x->op_name, r->f, r->l, r->o, r->done_msgs, r->done_bytes);
    }
    if (rc < 0) {
        logf_(s, 0, "streams: thing %s stream %s file %" PRIu64 ": read or publish failed",
              x->thing, x->stream, r->f);
    }
}

static void answer_describe(ota_svc_streams_t *s, ctx_t *x, const request_t *r,
                            const ota_svc_stream_t *stream)
{
    const char *d = stream->description != NULL ? stream->description : "";
    size_t dlen = strlen(d);
    size_t cap = 128u + dlen + r->c_len + stream->n_files * 32u;
    uint8_t *buf = malloc(cap);
    size_t pos = 0;
    int ok = buf != NULL;

#define DPUT(expr)                                                                                 \
    do {                                                                                           \
        size_t dput_n_ = ok ? (expr) : 0;                                                          \
        ok = ok && dput_n_ > 0;                                                                    \
        pos += dput_n_;                                                                            \
    } while (0)

    DPUT(cbor_encode_map_start(r->has_c ? 4u : 3u, buf + pos, cap - pos));
    if (r->has_c) {
        DPUT(put_key(buf + pos, cap - pos, 'c'));
        DPUT(put_text(buf + pos, cap - pos, r->c, r->c_len));
    }
    DPUT(put_key(buf + pos, cap - pos, 's'));
    DPUT(cbor_encode_uint(stream->version > 0 ? (uint64_t)stream->version : 0u, buf + pos,
                          cap - pos));
    DPUT(put_key(buf + pos, cap - pos, 'd'));
    DPUT(put_text(buf + pos, cap - pos, d, dlen));
    DPUT(put_key(buf + pos, cap - pos, 'r'));
    DPUT(cbor_encode_array_start(stream->n_files, buf + pos, cap - pos));
    for (size_t i = 0; i < stream->n_files; i++) {
        DPUT(cbor_encode_map_start(2, buf + pos, cap - pos));
        DPUT(put_key(buf + pos, cap - pos, 'f'));
        DPUT(cbor_encode_uint(stream->files[i].file_id, buf + pos, cap - pos));
        DPUT(put_key(buf + pos, cap - pos, 'z'));
        DPUT(cbor_encode_uint(stream->files[i].size, buf + pos, cap - pos));
    }
#undef DPUT
    if (ok) {
        publish_to(s, x, "description/cbor", buf, pos);
        logf_(s, 2, "streams: thing %s stream %s: described (%zu files, version %" PRId64 ")",
              x->thing, x->stream, stream->n_files, stream->version);
    } else {
        logf_(s, 0, "streams: stream %s: cannot encode the description", x->stream);
    }
    free(buf);
}

static void answer_describe_json(ota_svc_streams_t *s, ctx_t *x, const request_t *r,
                                 const ota_svc_stream_t *stream)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *files = cJSON_CreateArray();
    char *text = NULL;
    if (o != NULL && files != NULL) {
        if (r->has_c) {
            cJSON_AddStringToObject(o, "c", r->c);
        }
        cJSON_AddNumberToObject(o, "s", stream->version > 0 ? (double)stream->version : 0.0);
        cJSON_AddStringToObject(o, "d", stream->description != NULL ? stream->description : "");
        for (size_t i = 0; i < stream->n_files; i++) {
            cJSON *f = cJSON_CreateObject();
            if (f != NULL) {
                cJSON_AddNumberToObject(f, "f", stream->files[i].file_id);
                cJSON_AddNumberToObject(f, "z", (double)stream->files[i].size);
                cJSON_AddItemToArray(files, f);
            }
        }
        cJSON_AddItemToObject(o, "r", files);
        files = NULL;
        text = cJSON_PrintUnformatted(o);
    }
    if (text != NULL) {
        publish_to(s, x, "description/json", text, strlen(text));
        logf_(s, 2, "streams: thing %s stream %s: described (%zu files, version %" PRId64 ")",
              x->thing, x->stream, stream->n_files, stream->version);
    } else {
        logf_(s, 0, "streams: stream %s: cannot encode the description", x->stream);
    }
    cJSON_free(text);
    cJSON_Delete(files);
    cJSON_Delete(o);
}

/* Looks the stream up, checks permission and version, and answers. */
static void answer(ota_svc_streams_t *s, ctx_t *x, request_t *r, op_t op, activity_t *a)
{
    ota_svc_stream_t stream;
    int rc;

    memset(&stream, 0, sizeof(stream));
    rc = s->source.get(s->source.ctx, x->stream, &stream);
    if (rc <= 0) {
        code_t code = rc == 0 ? C_NOT_FOUND : C_INTERNAL;
        req_fail(r, code, rc == 0 ? "no stream %s" : "cannot look up stream %s", x->stream);
        reject(s, x, r, code, a);
        return;
    }
    rc = s->source.may_read(s->source.ctx, x->thing, x->stream);
    if (rc <= 0) {
        code_t code = rc == 0 ? C_UNAUTHORIZED : C_INTERNAL;
        req_fail(r, code,
                 rc == 0 ? "thing %s may not read stream %s"
                         : "cannot check whether thing %s may read stream %s",
                 x->thing, x->stream);
        reject(s, x, r, code, a);
    } else if (op == OP_DESCRIBE_CBOR) {
        answer_describe(s, x, r, &stream);
    } else if (op == OP_DESCRIBE_JSON) {
        answer_describe_json(s, x, r, &stream);
    } else if (r->has_s && (stream.version < 0 || r->s != (uint64_t)stream.version)) {
        req_fail(r, C_VERSION, "stream version is %" PRId64 ", not %" PRIu64, stream.version, r->s);
        reject(s, x, r, C_VERSION, a);
    } else {
        answer_get(s, x, r, &stream, a);
    }
    if (s->source.release != NULL) {
        s->source.release(s->source.ctx, &stream);
    }
}

/* ------------------------------------------------------ turns (fairness) -- */

static thing_queue_t **queue_slot(ota_svc_streams_t *s, const char *thing)
{
    thing_queue_t **pp = &s->queues[hash2(thing, "")];
    while (*pp != NULL && strcmp((*pp)->thing, thing) != 0) {
        pp = &(*pp)->hnext;
    }
    return pp;
}

/*
 * Clears from r's bitmap the blocks that an earlier request of the thing,
 * still waiting for its turn, will send: a device whose requests waited
 * longer than its retry timer asks again for blocks already on their way.
 * Only requests for the same stream, file, block size, version and format
 * count, each for the blocks its caps (n, 128 KiB, less what its earlier
 * turns sent) let it send. 1 when nothing is left of r.
 */
static int trim_waiting(const thing_queue_t *q, const ctx_t *x, request_t *r)
{
    unsigned left = 0;
    for (const pending_t *p = q->head; p != NULL; p = p->next) {
        const request_t *e = &p->r;
        uint64_t cap = (OTA_SVC_STREAMS_MAX_PAYLOAD - e->done_bytes) / e->l, sent = 0;
        if (!e->has_b || p->json != x->json || strcmp(p->stream, x->stream) != 0 || e->f != r->f ||
            e->l != r->l || e->has_s != r->has_s || e->s != r->s) {
            continue;
        }
        cap = e->has_n && e->n - e->done_msgs < cap ? e->n - e->done_msgs : cap;
        for (uint64_t k = 0; k < (uint64_t)e->b_len * 8u && sent < cap; k++) {
            uint64_t j = e->o + k - r->o;
            if ((e->b[k / 8] >> (k % 8) & 1u) == 0) {
                continue;
            }
            sent++;
            if (e->o + k >= r->o && j < (uint64_t)r->b_len * 8u) {
                r->b[j / 8] = (uint8_t)(r->b[j / 8] & ~(1u << (j % 8)));
            }
        }
    }
    for (size_t i = 0; i < r->b_len; i++) {
        left |= r->b[i];
    }
    return left == 0u;
}

/*
 * Queues a valid GetStream for its thing's turn; 0 queued, 1 nothing left
 * to queue (every block it names is on its way), -1 the thing's queue is full.
 */
static int enqueue(ota_svc_streams_t *s, const ctx_t *x, request_t *r)
{
    thing_queue_t **slot = queue_slot(s, x->thing);
    thing_queue_t *q = *slot;
    size_t blen = r->has_b ? r->b_len : 0;
    pending_t *p;

    if (q != NULL && r->has_b && trim_waiting(q, x, r)) {
        return 1;
    }
    if ((q != NULL && q->n >= OTA_SVC_STREAMS_QUEUE_PER_THING) ||
        s->queued >= OTA_SVC_STREAMS_QUEUE_TOTAL) {
        return -1;
    }
    p = malloc(sizeof(*p) + blen);
    if (p == NULL) {
        return -1;
    }
    if (q == NULL) {
        size_t n = strlen(x->thing);
        q = calloc(1, sizeof(*q) + n + 1);
        if (q == NULL) {
            free(p);
            return -1;
        }
        memcpy(q->thing, x->thing, n + 1);
        *slot = q;
    }
    p->next = NULL;
    p->json = x->json;
    p->since_ms = x->now_ms;
    snprintf(p->stream, sizeof(p->stream), "%s", x->stream);
    p->r = *r;
    memcpy(p->bits, r->b, blen);
    p->r.b = p->bits;
    if (q->tail != NULL) {
        q->tail->next = p;
    } else {
        q->head = p;
        /* First request waiting: the thing joins the end of the turn ring. */
        q->rnext = NULL;
        if (s->turn_tail != NULL) {
            s->turn_tail->rnext = q;
        } else {
            s->turn_head = q;
        }
        s->turn_tail = q;
    }
    q->tail = p;
    q->n++;
    s->queued++;
    return 0;
}

size_t ota_svc_streams_pending(const ota_svc_streams_t *streams)
{
    return streams->queued;
}

int ota_svc_streams_serve(ota_svc_streams_t *streams, int64_t now_ms)
{
    ota_svc_streams_t *s = streams;
    thing_queue_t *q = s->turn_head;
    pending_t *p;
    ctx_t x;

    if (q == NULL) {
        return 0;
    }
    /* One turn (OTA_SVC_STREAMS_TURN_BYTES) of the oldest request of the thing whose turn it
     * is; the thing goes to the end of the ring. */
    p = q->head;
    s->turn_head = q->rnext;
    if (s->turn_head == NULL) {
        s->turn_tail = NULL;
    }
    q->rnext = NULL;
    snprintf(x.thing, sizeof(x.thing), "%s", q->thing);
    snprintf(x.stream, sizeof(x.stream), "%s", p->stream);
    x.json = p->json;
    x.op_name = x.json ? "get/json" : "get/cbor";
    x.now_ms = now_ms;
    if (p->r.done_msgs == 0u && now_ms - p->since_ms > (int64_t)s->stats.wait_max_ms) {
        s->stats.wait_max_ms = (uint64_t)(now_ms - p->since_ms);
    }
    answer(s, &x, &p->r, OP_GET_CBOR, activity_get(s, x.thing, x.stream, now_ms));
    if (!p->r.more) {
        q->head = p->next;
        q->n--;
        s->queued--;
        free(p);
    }
    if (q->head != NULL) {
        if (s->turn_tail != NULL) {
            s->turn_tail->rnext = q;
        } else {
            s->turn_head = q;
        }
        s->turn_tail = q;
    } else {
        q->tail = NULL;
        *queue_slot(s, q->thing) = q->hnext;
        free(q);
    }
    return 1;
}

void ota_svc_streams_set_budget(ota_svc_streams_t *streams, ota_svc_budget_t *budget)
{
    streams->budget = budget;
}

void ota_svc_streams_set_deferred(ota_svc_streams_t *streams, int deferred)
{
    streams->deferred = deferred;
}

int ota_svc_streams_handle(ota_svc_streams_t *streams, const char *topic, const void *payload,
                           size_t len, int64_t now_ms)
{
    ota_svc_streams_t *s = streams;
    ctx_t x;
    request_t r;
    activity_t *a = NULL;
    int bad_name, rc;
    op_t op = parse_topic(topic, x.thing, x.stream, &bad_name);
    int describe = op == OP_DESCRIBE_CBOR || op == OP_DESCRIBE_JSON;

    if (op == OP_NONE) {
        return 0;
    }
    if (bad_name) {
        logf_(s, 1, "streams: ignored a request with an empty or too long thing or stream name");
        return 1;
    }
    memset(&r, 0, sizeof(r));
    r.b = s->bitmap;
    x.json = op == OP_GET_JSON || op == OP_DESCRIBE_JSON;
    x.now_ms = now_ms;
    x.op_name = op == OP_GET_CBOR        ? "get/cbor"
                : op == OP_GET_JSON      ? "get/json"
                : op == OP_DESCRIBE_CBOR ? "describe/cbor"
                                         : "describe/json";
    if (describe) {
        s->stats.describes++;
        if (len > 0) { /* an empty describe request is taken as {} */
            if (x.json) {
                decode_json(&r, payload, len);
            } else {
                decode_cbor(&r, payload, len);
            }
        }
    } else {
        s->stats.requests++;
        a = activity_get(s, x.thing, x.stream, now_ms);
        if (a != NULL) {
            a->requests++;
        }
        if (x.json) {
            decode_json(&r, payload, len);
        } else {
            decode_cbor(&r, payload, len);
        }
        check_get(&r, x.json);
    }
    if (!ota_svc_budget_request(s->budget, x.thing, now_ms)) {
        r.fail = C_OK;
        req_fail(&r, C_THROTTLED, "request budget of thing %s exhausted", x.thing);
    }
    if (r.fail != C_OK) {
        reject(s, &x, &r, r.fail, a);
        return 1;
    }
    if (describe) {
        answer(s, &x, &r, op, a);
        return 1;
    }
    rc = enqueue(s, &x, &r);
    if (rc < 0) {
        req_fail(&r, C_THROTTLED, "%u requests of thing %s already wait",
                 OTA_SVC_STREAMS_QUEUE_PER_THING, x.thing);
        reject(s, &x, &r, C_THROTTLED, a);
        return 1;
    }
    if (rc > 0) {
        s->stats.merged++;
        return 1;
    }
    while (!s->deferred && ota_svc_streams_serve(s, now_ms)) {
    }
    return 1;
}
