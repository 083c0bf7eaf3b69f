/*
 * otter: the download of one file (private to the agent): which blocks are
 * written (the bitmap), which are asked for (the window), and when to ask
 * again (the adaptive retry timer). It moves no bytes and calls nothing: the
 * agent asks it what to request, tells it what was sent and written, and acts
 * on what it returns, whatever the data plane (MQTT streams, HTTP ranges).
 *
 * Windowed and pipelined: up to the window's blocks are in flight, and the
 * next request leaves when half of them (or 128 KiB of them, if less) have
 * arrived. The window is fixed, or
 * adapts to the link by the round trip (delay-based, as TCP Vegas): it grows
 * while the round trip holds and shrinks when it grows. The retry timer
 * follows the measured round trip (RFC 6298 with Karn's rule), doubles on
 * each timeout, and does not run out while blocks still arrive. A timeout
 * asks again for what is missing below a block that arrived (lost), else for
 * one block alone (the answers may only be late).
 */
#ifndef OTA_DOWNLOAD_H
#define OTA_DOWNLOAD_H

#include "ota_module.h"

#include "otter/ota_config_defaults.h"

#include <stddef.h>
#include <stdint.h>

#include "otter/ota_agent.h"

/** Largest payload one request may ask for (AWS's bound), bytes. */
#define OTA_REQUEST_BYTES_MAX 131072u

/** Largest bitmap one request carries: a request spans at most this many bytes of blocks. */
#define OTA_REQUEST_BITMAP_MAX 64u

/** One request for blocks: block k of the file is wanted if bit k - offset is set. */
typedef struct ota_block_request {
    uint32_t offset;     /**< first block the bitmap refers to */
    uint32_t count;      /**< blocks wanted (bits set) */
    uint32_t bitmap_len; /**< bytes of bitmap used */
    uint32_t next;       /**< first block after those considered */
    uint8_t bitmap[OTA_REQUEST_BITMAP_MAX];
} ota_block_request_t;

/** What a block that arrived is. */
typedef enum ota_block_check {
    OTA_BLOCK_NEW = 0,   /**< write it, then call ota_download_written() */
    OTA_BLOCK_DUPLICATE, /**< already written: drop it */
    OTA_BLOCK_BAD,       /**< beyond the file or of the wrong length */
} ota_block_check_t;

/** What the retry timer says. */
typedef enum ota_download_timer {
    OTA_DOWNLOAD_WAIT = 0, /**< nothing to do */
    OTA_DOWNLOAD_RETRY,    /**< a timeout, blocks lost: a new round from the first missing block */
    OTA_DOWNLOAD_PROBE,    /**< a timeout, answers maybe late: plan asks for one block alone */
    OTA_DOWNLOAD_RESUME,   /**< a throttling wait is over: ask again likewise */
    OTA_DOWNLOAD_GIVE_UP,  /**< too many timeouts in a row without a new block */
} ota_download_timer_t;

/**
 * Prepare (at agent init): counters go to stats, bounds come from cfg (both
 * borrowed). The window starts at cfg->window_blocks; with adaptive nonzero
 * it then follows the round trip, up to OTA_WINDOW_MAX_BYTES of blocks.
 */
OTA_MODULE void ota_download_init(ota_download_t *d, const ota_agent_config_t *cfg,
                                  ota_agent_stats_t *stats, int adaptive);

/**
 * A new file of file_size bytes in blocks of block_size; done is its bitmap
 * (storage of at least ceil(blocks / 8) bytes) as it stands: all clear for a
 * new file, the blocks kept for a resumed one.
 */
OTA_MODULE void ota_download_begin(ota_download_t *d, uint8_t *done, uint32_t file_size,
                                   uint32_t block_size);

/** Bytes of block index (the last one may be short). */
OTA_MODULE uint32_t ota_download_block_len(const ota_download_t *d, uint32_t index);

/** 1 when every block is written. */
OTA_MODULE int ota_download_complete(const ota_download_t *d);

/** Start a round of requests from the first missing block (what was asked before: not timed). */
OTA_MODULE void ota_download_round(ota_download_t *d);

/**
 * The next request to send now, if any: 1 and *req filled (at most the
 * window, at most 128 KiB, one bitmap's span), 0 when none should leave yet.
 * Call with first 1, then (after ota_download_sent) with first 0 until it
 * returns 0: a burst starts only once half of the window, or 128 KiB, has
 * arrived.
 */
OTA_MODULE int ota_download_plan(ota_download_t *d, ota_block_request_t *req, int first);

/** req was sent (sent 1) or could not be (sent 0: the timer retries) at now. */
OTA_MODULE void ota_download_sent(ota_download_t *d, const ota_block_request_t *req, int sent,
                                  uint32_t now);

/** What block index of len bytes is. */
OTA_MODULE ota_block_check_t ota_download_check(ota_download_t *d, uint32_t index, size_t len);

/** Block index (checked NEW) was written at now (a round trip may change the window). */
OTA_MODULE void ota_download_written(ota_download_t *d, uint32_t index, uint32_t now);

/** The service throttled a request at now: wait a doubled timer, then ask again. */
OTA_MODULE void ota_download_throttled(ota_download_t *d, uint32_t now);

/** Timer work at now (call from the agent's poll); a timeout halves an adaptive window. */
OTA_MODULE ota_download_timer_t ota_download_timer(ota_download_t *d, uint32_t now);

/** Double the retry timer, up to its bound; returns it. */
OTA_MODULE uint32_t ota_download_back_off(ota_download_t *d);

#endif /* OTA_DOWNLOAD_H */
