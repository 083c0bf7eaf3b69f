/*
 * otter service: the presence write budget (private to the inventory module).
 *
 * Each broker connection notice about a thing is a store transaction (its
 * presence row and lastSeen). A device that reconnects in a loop would make
 * thousands a second; this table lets a thing's notices reach the store at
 * most once per OTA_SVC_PRESENCE_PERIOD_MS. The first notice of a thing not
 * in the table is written at once (its entry made only once the store knew
 * the thing: a client that is no thing never gets one); a notice that comes
 * less than a period after the thing's last write is kept here instead, the
 * latest one per broker (state and time), and written, all brokers in one
 * transaction, by the inventory's tick once the period has passed, or at
 * once before a gap on one of its brokers is recorded (a notice from before
 * a gap is written as from before it).
 *
 * An entry is dropped once nothing of it is held back and its last write is
 * a period old, so the table holds the things with a notice in the last
 * period: bounded by the fleet, and by OTA_SVC_PRESENCE_TRACKED_MAX. When
 * that many are held, a thing without an entry gets none: its notices are
 * written at once, each (as without this budget), until entries expire;
 * filling the table takes that many different things' notices within one
 * period, which no single device's credentials can make.
 *
 * One thread at a time. Times are the service's clock (ms since the epoch).
 */
#ifndef OTA_SVC_PRESENCE_PACE_H
#define OTA_SVC_PRESENCE_PACE_H

#include <stddef.h>
#include <stdint.h>

#include "ota_store.h"

/** A thing's notices are written to the store at most once per this many ms. */
#define OTA_SVC_PRESENCE_PERIOD_MS 1000
/** Most things held in the table at once (the rest are written at once, unbudgeted). */
#define OTA_SVC_PRESENCE_TRACKED_MAX 65536u

/** One thing's budget: its last write and the notices held back since. */
typedef struct ota_svc_pace_thing {
    struct ota_svc_pace_thing *next; /**< the next in its hash chain */
    int64_t written_ms;              /**< its last write (or attempt) */
    unsigned held;                   /**< bit K: a notice on broker K not written yet */
    unsigned online;                 /**< bit K: that notice's state (1 connected) */
    int64_t at_ms[OTA_STORE_PRESENCE_BROKERS_MAX + 1]; /**< each held notice's time */
    char name[];                                       /**< the thing's name */
} ota_svc_pace_thing_t;

/** The table. Opaque. */
typedef struct ota_svc_pace ota_svc_pace_t;

/**
 * Creates an empty table.
 * @return the table, or NULL (out of memory).
 */
ota_svc_pace_t *ota_svc_pace_create(void);

/** Frees the table and its entries (NULL: no-op); what they held back is dropped. */
void ota_svc_pace_destroy(ota_svc_pace_t *p);

/**
 * A thing's entry.
 * @return the entry (owned by the table: valid until ota_svc_pace_sweep()), or NULL.
 */
ota_svc_pace_thing_t *ota_svc_pace_find(ota_svc_pace_t *p, const char *thing);

/**
 * Makes an entry for a thing whose notice was just written at written_ms.
 * @param thing a valid thing name (up to OTA_STORE_THING_NAME_MAX characters).
 * @return the entry; NULL when the table is full (OTA_SVC_PRESENCE_TRACKED_MAX) or out of
 *         memory: the thing's notices are then written at once.
 */
ota_svc_pace_thing_t *ota_svc_pace_add(ota_svc_pace_t *p, const char *thing, int64_t written_ms);

/** Holds back a notice: the thing's latest on broker (1..OTA_STORE_PRESENCE_BROKERS_MAX). */
void ota_svc_pace_hold(ota_svc_pace_t *p, ota_svc_pace_thing_t *e, unsigned broker, int online,
                       int64_t at_ms);

/** The entry's held notices were written (or tried) at now_ms: it holds nothing now. */
void ota_svc_pace_written(ota_svc_pace_t *p, ota_svc_pace_thing_t *e, int64_t now_ms);

/** 1 if the thing may be written at now_ms (a period since its last write, or the clock went
 *  back), else 0. */
int ota_svc_pace_due(const ota_svc_pace_thing_t *e, int64_t now_ms);

/**
 * The notices an entry holds back, one per broker, in broker order.
 * @param notes receives them (OTA_STORE_PRESENCE_BROKERS_MAX at most).
 * @return how many (0: nothing held).
 */
size_t ota_svc_pace_notes(const ota_svc_pace_thing_t *e,
                          ota_store_presence_note_t notes[OTA_STORE_PRESENCE_BROKERS_MAX]);

/** Writes an entry's held notices (ota_svc_pace_notes()); the table then takes them as
 *  written (ota_svc_pace_written()): a failed write is the callback's to admit. */
typedef void (*ota_svc_pace_write_fn)(void *ctx, ota_svc_pace_thing_t *e, int64_t now_ms);

/**
 * Walks the table: writes (through write) every entry holding back a notice
 * on a broker of now_mask (bit K), or holding one and due; then drops the
 * entries that hold nothing and were written a period ago or more.
 * @param now_mask brokers whose held notices are written whether due or not
 *                 (0: only the due ones).
 * @param write    how to write them (NULL: nothing is written, only idle entries dropped).
 * @param ctx      passed to write.
 */
void ota_svc_pace_sweep(ota_svc_pace_t *p, int64_t now_ms, unsigned now_mask,
                        ota_svc_pace_write_fn write, void *ctx);

/** Entries in the table now. */
size_t ota_svc_pace_count(const ota_svc_pace_t *p);

/** Entries holding back a notice now. */
size_t ota_svc_pace_holding(const ota_svc_pace_t *p);

#endif /* OTA_SVC_PRESENCE_PACE_H */
