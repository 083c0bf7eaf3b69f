/*
 * otter service: when each thing last had its lastSeen refreshed from a Jobs
 * request, so that the store is written at most once per thing per
 * OTA_SVC_SEEN_PERIOD_MS however often the thing asks (private to the Jobs
 * module).
 *
 * Entries are a 64-bit hash of the thing name and a time: 16 bytes each, kept
 * while younger than the period, so memory follows the things heard from in
 * the last minute. Two names with the same hash share an entry (one of them
 * may then be refreshed up to a period late). One thread at a time.
 */
#ifndef OTA_SVC_JOBS_SEEN_H
#define OTA_SVC_JOBS_SEEN_H

#include <stddef.h>
#include <stdint.h>

/** A thing's lastSeen is written at most once per this many ms from its requests. */
#define OTA_SVC_SEEN_PERIOD_MS 60000

/** The table; all zero is an empty one. */
typedef struct ota_svc_seen {
    uint64_t *key; /**< hash of the name, 0 for a free slot */
    int64_t *at;   /**< when its lastSeen was last written (wall clock, ms) */
    size_t cap;    /**< slots, a power of two (or 0) */
    size_t n;      /**< slots in use */
} ota_svc_seen_t;

/**
 * Whether a thing's lastSeen is due for a write now; when it is, the write is
 * taken as done at now_ms (the next one is due a period later). Due as well
 * when the clock went back, and when the table cannot grow (out of memory).
 * @param s      the table.
 * @param thing  the thing's name, NUL-terminated.
 * @param now_ms wall-clock time, ms since the Unix epoch.
 * @return 1 write it; 0 written less than a period ago.
 */
int ota_svc_seen_due(ota_svc_seen_t *s, const char *thing, int64_t now_ms);

/**
 * Frees the table's memory (it is empty afterwards).
 * @param s the table.
 */
void ota_svc_seen_free(ota_svc_seen_t *s);

#endif
