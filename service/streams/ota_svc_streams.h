/*
 * otter service: the MQTT streams API (AWS IoT MQTT-based file delivery).
 *
 * Topics handled, for every thing and stream (wire protocol spec, section 4):
 *
 *   $aws/things/<thing>/streams/<stream>/get/cbor       -> data/cbor     | rejected/cbor
 *   $aws/things/<thing>/streams/<stream>/get/json       -> data/json     | rejected/json
 *   $aws/things/<thing>/streams/<stream>/describe/cbor  -> description/cbor | rejected/cbor
 *   $aws/things/<thing>/streams/<stream>/describe/json  -> description/json | rejected/json
 *
 * GetStream keys: c (token, text <= 64 bytes), s (stream version), f (file id),
 * l (block size 256..131072), o (block offset, default 0), n (block count),
 * b (bitmap relative to o: block o+k is bit k%8 of byte k/8; < 12288 bytes).
 * Without b, n blocks from o are sent (n is then required); with b, n caps
 * the blocks sent. Every request yields at most n messages and at most
 * OTA_SVC_STREAMS_MAX_PAYLOAD bytes of block payload; blocks beyond the file
 * are ignored. Each block is one message {c?, f, i, l, p} with i absolute;
 * the last block of a file is short (size - last * block size).
 *
 * Refusals {o: code, m: message, c?: token}, checked in this order:
 *   InvalidCbor / InvalidJson   payload cannot be decoded, or is not a map/object,
 *                               text that is not UTF-8, a key given twice (no
 *                               token is echoed then), "\u0000" in JSON
 *   InvalidRequest              a key is missing or has the wrong type, n = 0,
 *                               token longer than 64 bytes or holding NUL, bad
 *                               hex bitmap
 *   RequestThrottled            the thing's request budget is exhausted, or
 *                               OTA_SVC_STREAMS_QUEUE_PER_THING of its
 *                               requests already wait for their turn
 *   BlockSizeOutOfBounds        l outside 256..131072
 *   BlockBitmapLimitExceeded    b has 12288 bytes or more
 *   BlockCountLimitExceeded     n above OTA_SVC_STREAMS_MAX_BLOCKS (98304)
 *   ResourceNotFound            unknown stream
 *   Unauthorized                the topic's thing may not read the stream
 *   VersionMismatch             s given and different from the stream's version
 *   ResourceNotFound            unknown file id in the stream
 *   OffsetOutOfBounds           o at or beyond the file's block count
 *   RequestThrottled            the answer's block payload bytes exceed what is
 *                               left of the thing's answer byte budget
 *   InternalError               lookup failure, unreadable file
 *
 * Fairness: valid GetStream requests wait in one queue per thing; each call
 * of ota_svc_streams_serve() sends one turn, OTA_SVC_STREAMS_TURN_BYTES of
 * blocks (at least one block), of the oldest request of the thing whose turn
 * it is and moves that thing to the end of the ring; the rest of the request
 * waits for the thing's next turn. So a thing's next block waits for at most
 * one turn per waiting thing, whatever the others asked for: with a
 * thousand devices downloading at once, each receives blocks every few
 * hundred milliseconds instead of waiting for a thousand whole requests
 * before its first block (which would outlast a device's retry timer). A
 * request loses the blocks that an earlier request of its thing, still
 * waiting or partly sent, will send (a device that timed out asks again for
 * what is on its way): each block is sent once; a request with nothing left
 * is dropped (counted as merged). Its answer bytes are charged once, at its
 * first turn. Without
 * ota_svc_streams_set_deferred(), a request is answered within
 * ota_svc_streams_handle().
 * Files are read with pread() into one buffer of the largest block, so memory
 * stays bounded whatever the file size. Stream lookup and authorization come
 * from an ota_svc_streams_source_t, called once per request (never per block).
 *
 * Threading: one thread at a time per module. Allocates on the heap.
 */
#ifndef OTA_SVC_STREAMS_H
#define OTA_SVC_STREAMS_H

#include <stddef.h>
#include <stdint.h>

#include "ota_svc_budget.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Smallest block size a request may ask for. */
#define OTA_SVC_STREAMS_BLOCK_MIN 256u
/** Largest block size a request may ask for. */
#define OTA_SVC_STREAMS_BLOCK_MAX 131072u
/**
 * Largest block size a get/json request may ask for: its answer carries the
 * block in base64 (4 characters per 3 bytes) with up to 512 bytes of keys and
 * token, and must stay within the 128 KiB message limit (AWS IoT's, and the
 * broker's max_packet_size less its headroom for the topic).
 */
#define OTA_SVC_STREAMS_JSON_BLOCK_MAX 97920u
/** Block payload bytes a thing's turn sends at most (at least one block). */
#define OTA_SVC_STREAMS_TURN_BYTES 16384u
/** Most block payload bytes sent for one request. */
#define OTA_SVC_STREAMS_MAX_PAYLOAD 131072u
/** A bitmap must be shorter than this many bytes. */
#define OTA_SVC_STREAMS_BITMAP_LIMIT 12288u
/** Largest n (blocks per request): as many blocks as the largest bitmap names. */
#define OTA_SVC_STREAMS_MAX_BLOCKS 98304u
/** Longest client token, bytes. */
#define OTA_SVC_STREAMS_TOKEN_MAX 64u
/** Longest thing name or stream id accepted in a topic. */
#define OTA_SVC_STREAMS_NAME_MAX 128u
/** GetStream requests of one thing waiting for their turn, at most (more: RequestThrottled). */
#define OTA_SVC_STREAMS_QUEUE_PER_THING 16u
/** GetStream requests waiting in all, at most. */
#define OTA_SVC_STREAMS_QUEUE_TOTAL 65536u

/**
 * Publishes one MQTT message; the same signature as the Jobs module's
 * ota_svc_publish_fn, so one function serves both.
 * @param ctx     the publish_ctx given to ota_svc_streams_create().
 * @param topic   full topic, NUL-terminated; valid during the call only.
 * @param payload payload bytes; valid during the call only.
 * @param len     payload length.
 * @param qos     always 0 for streams.
 * @return 0 on success, nonzero on failure (the request is abandoned).
 */
typedef int (*ota_svc_streams_publish_fn)(void *ctx, const char *topic, const void *payload,
                                          size_t len, int qos);

/**
 * Receives one log line (no trailing newline).
 * @param ctx   the log_ctx given to ota_svc_streams_set_log().
 * @param level 0 error, 1 warning, 2 info, 3 debug (as the Jobs module's levels).
 * @param line  valid during the call only.
 */
typedef void (*ota_svc_streams_log_fn)(void *ctx, int level, const char *line);

/** One file of a stream, as the source describes it. */
typedef struct ota_svc_stream_file {
    uint32_t file_id; /**< 0..255 */
    const char *path; /**< where the bytes are; opened read-only per request */
    uint64_t size;    /**< bytes, > 0 */
} ota_svc_stream_file_t;

/** A stream, as the source describes it; valid until the source's release call. */
typedef struct ota_svc_stream {
    int64_t version;                    /**< compared with a request's s */
    const char *description;            /**< text for DescribeStream; may be NULL ("") */
    size_t n_files;                     /**< entries in files */
    const ota_svc_stream_file_t *files; /**< any order */
} ota_svc_stream_t;

/** Where streams and permissions come from (the store, or a test fake). */
typedef struct ota_svc_streams_source {
    /**
     * Looks a stream up.
     * @param ctx       the source's ctx.
     * @param stream_id NUL-terminated id from the topic.
     * @param out       receives the stream on success.
     * @return 1 found; 0 no such stream; < 0 failure (answered InternalError).
     */
    int (*get)(void *ctx, const char *stream_id, ota_svc_stream_t *out);
    /**
     * Releases what get() filled in (called once per successful get); may be NULL.
     * @param ctx    the source's ctx.
     * @param stream what get() filled in.
     */
    void (*release)(void *ctx, ota_svc_stream_t *stream);
    /**
     * Whether a thing may read a stream.
     * @return 1 yes; 0 no (answered Unauthorized); < 0 failure (InternalError).
     */
    int (*may_read)(void *ctx, const char *thing, const char *stream_id);
    void *ctx; /**< passed to the three functions */
} ota_svc_streams_source_t;

/** Counters since creation. */
typedef struct ota_svc_streams_stats {
    uint64_t requests;    /**< GetStream requests handled (served or refused) */
    uint64_t describes;   /**< DescribeStream requests handled */
    uint64_t served;      /**< GetStream requests that sent at least one block */
    uint64_t blocks;      /**< data messages published */
    uint64_t bytes;       /**< block payload bytes published */
    uint64_t rejected;    /**< refusals published */
    uint64_t throttled;   /**< requests refused with RequestThrottled (sent or not) */
    uint64_t merged;      /**< requests not queued: every block they named was already queued */
    uint64_t wait_max_ms; /**< longest a request waited for its first turn, ms */
} ota_svc_streams_stats_t;

/** The streams module. Opaque. */
typedef struct ota_svc_streams ota_svc_streams_t;

/**
 * Creates the module.
 * @param source      stream lookup and authorization; copied. get and
 *                    may_read must not be NULL.
 * @param publish     how to publish; must not be NULL.
 * @param publish_ctx passed to publish.
 * @return the module, or NULL (bad argument or out of memory).
 */
ota_svc_streams_t *ota_svc_streams_create(const ota_svc_streams_source_t *source,
                                          ota_svc_streams_publish_fn publish, void *publish_ctx);

/**
 * Destroys the module (pending summaries are not logged: call
 * ota_svc_streams_flush_log() first to keep them).
 * @param streams module, or NULL (no-op).
 */
void ota_svc_streams_destroy(ota_svc_streams_t *streams);

/**
 * NULL-terminated topic filters of the requests this module answers.
 * @return a static array.
 */
const char *const *ota_svc_streams_topics(void);

/**
 * Charges requests and answer bytes to per-thing budgets (see
 * ota_svc_budget.h); without budgets nothing is throttled.
 * @param streams module.
 * @param budget  budgets, borrowed (must outlive the module), or NULL.
 */
void ota_svc_streams_set_budget(ota_svc_streams_t *streams, ota_svc_budget_t *budget);

/**
 * Deferred mode: valid GetStream requests wait in their thing's queue until
 * ota_svc_streams_serve() answers them, one per call, thing by thing.
 * @param streams  module.
 * @param deferred 1 to defer; 0 (the default) to answer within handle().
 */
void ota_svc_streams_set_deferred(ota_svc_streams_t *streams, int deferred);

/**
 * Sends one turn of a waiting GetStream request: of the oldest of the thing
 * whose turn it is, at most OTA_SVC_STREAMS_TURN_BYTES of blocks (at least
 * one); what is left of it waits for the thing's next turn.
 * @param streams module.
 * @param now_ms  current time in ms (the clock of handle()).
 * @return 1 if a turn was served (blocks sent, or a refusal); 0 if no request was waiting.
 */
int ota_svc_streams_serve(ota_svc_streams_t *streams, int64_t now_ms);

/**
 * GetStream requests waiting for their turn (partly sent ones included).
 * @param streams module.
 * @return the count.
 */
size_t ota_svc_streams_pending(const ota_svc_streams_t *streams);

/**
 * Handles one message.
 * @param streams module.
 * @param topic   NUL-terminated topic.
 * @param payload payload bytes; need not be NUL-terminated; may be NULL when len is 0.
 * @param len     payload length.
 * @param now_ms  current time in ms (any monotonic or wall clock; used for summaries).
 * @return 1 if the topic is a streams request (answered, refused, or ignored
 *         because its thing name or stream id is unusable); 0 otherwise.
 */
int ota_svc_streams_handle(ota_svc_streams_t *streams, const char *topic, const void *payload,
                           size_t len, int64_t now_ms);

/**
 * Sets the log hook. Refusals are logged one line each at info; served
 * blocks are summarised per thing and stream by ota_svc_streams_tick();
 * every request is logged at debug.
 * @param streams module.
 * @param log     hook, or NULL for no logging.
 * @param log_ctx passed to the hook.
 */
void ota_svc_streams_set_log(ota_svc_streams_t *streams, ota_svc_streams_log_fn log, void *log_ctx);

/**
 * Periodic work (call every few hundred ms with the same clock as handle()):
 * logs one summary line per thing and stream whose transfer has paused for
 * 2 s, or every 30 s while it goes on, and forgets idle entries.
 * @param streams module.
 * @param now_ms  current time in ms.
 */
void ota_svc_streams_tick(ota_svc_streams_t *streams, int64_t now_ms);

/**
 * Logs the summary of every thing and stream with activity not logged yet.
 * @param streams module.
 */
void ota_svc_streams_flush_log(ota_svc_streams_t *streams);

/**
 * Reads the counters.
 * @param streams module.
 * @param out     receives the counters.
 */
void ota_svc_streams_get_stats(const ota_svc_streams_t *streams, ota_svc_streams_stats_t *out);

#ifdef __cplusplus
}
#endif

#endif /* OTA_SVC_STREAMS_H */
