/*
 * otter service: the store as the streams module's source of streams and
 * permissions, with a short cache so that serving blocks costs no SQLite query.
 *
 * Streams and "may thing T read stream S" answers are kept for at most ttl_ms,
 * and dropped at once when another connection (the CLI, the Jobs module's own
 * handle, another daemon) has written to the database: ota_svc_store_source_tick()
 * checks that with ota_store_poll_changes(), so give this adapter a store
 * handle of its own.
 *
 * Single-threaded: the source's functions, tick and destroy are called from
 * one thread (the daemon's loop).
 */
#ifndef OTA_SVC_STORE_SOURCE_H
#define OTA_SVC_STORE_SOURCE_H

#include <stdint.h>

#include "ota_store.h"
#include "ota_svc_streams.h"

/** The adapter. Opaque. */
typedef struct ota_svc_store_source ota_svc_store_source_t;

/** Cache counters. */
typedef struct ota_svc_store_source_stats {
    uint64_t stream_lookups; /**< get() calls */
    uint64_t stream_queries; /**< of which went to the store */
    uint64_t auth_lookups;   /**< may_read() calls */
    uint64_t auth_queries;   /**< of which went to the store */
    uint64_t invalidations;  /**< cache flushes after a database change */
} ota_svc_store_source_stats_t;

/**
 * Creates the adapter.
 * @param store  open store handle used only by this adapter; borrowed, must
 *               outlive it.
 * @param ttl_ms how long a cached answer is used (e.g. 5000); 0 disables the cache.
 * @return the adapter, or NULL (NULL store or out of memory).
 */
ota_svc_store_source_t *ota_svc_store_source_create(ota_store_t *store, int64_t ttl_ms);

/**
 * Destroys the adapter and its cache. The store is not closed.
 * @param src adapter, or NULL (no-op).
 */
void ota_svc_store_source_destroy(ota_svc_store_source_t *src);

/**
 * Fills in a streams source whose functions use this adapter.
 * @param src adapter; must outlive the streams module that uses out.
 * @param out receives get, release, may_read and ctx.
 */
void ota_svc_store_source_bind(ota_svc_store_source_t *src, ota_svc_streams_source_t *out);

/**
 * Periodic work (every few hundred ms): drops the cache when the database
 * changed, and expired entries.
 * @param src adapter.
 */
void ota_svc_store_source_tick(ota_svc_store_source_t *src);

/**
 * Reads the counters.
 * @param src adapter.
 * @param out receives the counters.
 */
void ota_svc_store_source_get_stats(const ota_svc_store_source_t *src,
                                    ota_svc_store_source_stats_t *out);

#endif /* OTA_SVC_STORE_SOURCE_H */
