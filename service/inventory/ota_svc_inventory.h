/*
 * otter service: what each device reports about itself (inventory).
 *
 *   $aws/things/<thing>/shadow/update      the Device Shadow's reported document,
 *                                          as AWS IoT devices send it:
 *     {"state":{"reported":{"firmwareVersion":"1.1.0","deviceType":"nrf52840-dk",
 *      "slot":"B","imageState":"accepted","connected":true}},"clientToken":"…"}
 *     -> $aws/things/<thing>/shadow/update/accepted (the stored reported state)
 *     -> $aws/things/<thing>/shadow/update/rejected {"code":400|429,"message":…}
 *   $SYS/broker/log/N                       Mosquitto's own notices: a client
 *                                          connected / disconnected (presence)
 *
 * Everything is checked and bounded before it is stored as the thing's
 * attributes: firmwareVersion (X.Y.Z), reportedDeviceType, slot, imageState
 * (1-32 of [A-Za-z0-9_.-]), lastSeen (ms since the epoch); at most OTA_SVC_INVENTORY_MAX_PER_MINUTE
 * updates per thing per minute; unknown keys, other types, longer payloads are refused and change
 * nothing. A firmwareVersion report re-targets the thing's queued jobs (one
 * already on a job's version is SKIPPED).
 *
 * Presence comes from the brokers, not from the device (a reported "connected"
 * is accepted for AWS compatibility and not stored): a thing is online on a
 * broker from Mosquitto's "New client connected ... as <thing> (...,
 * u'<thing>')" notice (the login binds the client id to the thing) until its
 * "Client <thing> ..." disconnect notice. Clients cannot publish on $SYS
 * topics. In a federation each broker's notices also reach the hubs over the
 * bridges as otter-presence/<K>/log/N (K: the broker's number), which only the
 * bridges may publish; the notices of the broker the service is connected to
 * come on $SYS/broker/log/N and count as its number (set_broker).
 *
 * Each broker's notices are a stream; a stream with a gap (notices that may
 * have been lost) makes what was learned from it before the gap UNKNOWN, until
 * the thing's next connect or disconnect notice on that broker. Gaps come from
 * the caller (ota_svc_inventory_gap(): the service started, or its connection
 * to its broker was (re)made) and from the notices themselves: broker K's
 * bridge connecting to a hub ("New bridge connected ... as
 * otter-service-federation-K (..., u'otter-service-federation-K')") or leaving
 * it ("Client otter-service-federation-K ..."), and the bridge of the hub
 * whose notices they are losing its connection ("Client
 * otter-service-federation-local ...") or reconnecting ("Connecting bridge
 * (step 1) otter-federation (...)"; its retries after a loss are the same
 * gap until a notice of the other hub shows it up again), as Mosquitto 2.0.11
 * words them. A thing's notice makes it unknown on every other broker of
 * the federation it has no notice from yet (its notices there were never
 * seen). A failed login under a bridge's or a thing's client id is no gap
 * and no presence (Mosquitto names such a client "<unknown>", and a refusal
 * says "not authorised"); no client may publish on $SYS or otter-presence. Hub 1's bridge
 * (K = 1) carries every stream but the service's own broker's between the
 * hubs, so its gaps count for all of them.
 *
 * The store keeps each thing's last notice per broker and each broker's gaps
 * (ota_store_presence_notice(), ota_store_presence_gap()): a gap is one row
 * per broker whatever the fleet's size, and a thing's presence is computed
 * when read. Per thing, as attributes: "connectedTo" lists the brokers it is
 * known to be connected to ("1,3"), "presenceUnknownOn" the brokers where it
 * is unknown ("2"); on the others it is known not connected. "connected" is
 * "true" (known on at least one broker), "unknown" (not known on any and
 * unknown on at least one), "false" (known not connected anywhere); a thing
 * never seen has none of them. "lastSeen" is the service's clock at its last
 * notice or report (the Jobs module refreshes it from requests too).
 *
 * Each thing's notices cost at most one store transaction per
 * OTA_SVC_PRESENCE_PERIOD_MS (1 s; ota_svc_presence_pace.h): the first
 * notice of a thing not written within the period is written at once; later
 * ones are held back, the latest per broker, and written together (with
 * their own times, lastSeen the latest) by ota_svc_inventory_tick() once the
 * period has passed, or at once before a gap on their broker is recorded. A
 * thing that reconnects in a loop is thus written once a second, and its
 * presence in the store lags its notices by a second at most; what it ends
 * in is recorded. A notice about a client that is no thing costs a read and
 * leaves nothing behind.
 *
 * Used from one thread; time comes in as now_ms (ms since the epoch).
 */
#ifndef OTA_SVC_INVENTORY_H
#define OTA_SVC_INVENTORY_H

#include <stddef.h>
#include <stdint.h>

#include "ota_store.h"
#include "ota_svc_jobs.h"

/** Largest reported document accepted (bytes). */
#define OTA_SVC_INVENTORY_MAX_PAYLOAD 2048
/** Reported updates a thing may send per minute; more are refused (429). */
#define OTA_SVC_INVENTORY_MAX_PER_MINUTE 10

/** Topic prefix of the other brokers' notices in a federation: PREFIX<K>/log/N. */
#define OTA_SVC_INVENTORY_PRESENCE_PREFIX "otter-presence/"
/** Most brokers whose notices are told apart (numbered 1 to this). */
#define OTA_SVC_INVENTORY_BROKERS_MAX 8

/** Attribute: the brokers a thing is known to be connected to ("1,3"). */
#define OTA_SVC_INVENTORY_ATTR_CONNECTED_TO OTA_STORE_ATTR_CONNECTED_TO
/** Attribute: the brokers where a thing's presence is unknown since a gap ("2,3"). */
#define OTA_SVC_INVENTORY_ATTR_UNKNOWN_ON OTA_STORE_ATTR_UNKNOWN_ON
/** The client id prefix of the federation's bridges: PREFIX<K> for broker K's. */
#define OTA_SVC_INVENTORY_BRIDGE_ID "otter-service-federation-"
/** The name of the federation's bridge connection in the brokers' configuration. */
#define OTA_SVC_INVENTORY_BRIDGE_NAME "otter-federation"
/** ota_svc_inventory_gap(): every broker. */
#define OTA_SVC_INVENTORY_ALL 0x1feu

/** Counters since creation, and the presence write budget's table now. */
typedef struct {
    uint64_t writes;    /**< store transactions of presence notices */
    uint64_t held;      /**< notices held back by the write budget (written later, merged) */
    uint64_t untracked; /**< things written unbudgeted: the budget's table was full */
    size_t tracked;     /**< things in the table now (a write in the last period) */
    size_t holding;     /**< of them, holding back a notice now */
} ota_svc_inventory_stats_t;

/** The module. Opaque. */
typedef struct ota_svc_inventory ota_svc_inventory_t;

/**
 * Creates the module.
 * @param store       open store; borrowed.
 * @param publish     how to publish answers (as for the Jobs API).
 * @param publish_ctx passed to publish.
 * @return the module, or NULL (NULL argument or out of memory).
 */
ota_svc_inventory_t *ota_svc_inventory_create(ota_store_t *store, ota_svc_publish_fn publish,
                                              void *publish_ctx);

/**
 * Tells which broker the service is connected to: its number in the
 * federation (1 for hub 1 or a single broker, 2 for hub 2); its notices on
 * $SYS/broker/log/N count as that broker's. Out of 1..OTA_SVC_INVENTORY_BROKERS_MAX:
 * ignored. The default is 1.
 */
void ota_svc_inventory_set_broker(ota_svc_inventory_t *inv, unsigned broker);

/**
 * Tells how many brokers the federation has (numbered 1..n; 1 without a
 * federation): a gap for every broker makes a thing known not connected
 * unknown on each of them. A notice from a broker numbered above n raises n.
 * Out of 1..OTA_SVC_INVENTORY_BROKERS_MAX: ignored. The default is 1.
 */
void ota_svc_inventory_set_brokers(ota_svc_inventory_t *inv, unsigned n);

/** Logs a line (level 0 error .. 3 debug); optional. */
typedef void (*ota_svc_inventory_log_fn)(void *ctx, int level, const char *line);

/** Sets where the module says what a gap made unknown (NULL: nowhere). */
void ota_svc_inventory_set_log(ota_svc_inventory_t *inv, ota_svc_inventory_log_fn log, void *ctx);

/**
 * The notices of the brokers in mask (bit K for broker K; OTA_SVC_INVENTORY_ALL)
 * may have been lost until now: what every thing's presence on them was is
 * unknown from now on (connectedTo loses them, presenceUnknownOn gains them,
 * for each thing presence was ever recorded for, until its next notice there),
 * and their streams count as started again at now_ms. One store transaction
 * of a row per broker, whatever the fleet's size. Call it when the service
 * starts and each time its connection to its broker is made (before any
 * notice of the new connection is handled).
 * @param why  a few words for the log line ("service started").
 * @return 0, or -1 (the store failed; ota_svc_inventory_tick() records it again).
 */
int ota_svc_inventory_gap(ota_svc_inventory_t *inv, unsigned mask, const char *why, int64_t now_ms);

/**
 * When broker's notice stream was last (re)started (ms since the epoch): the
 * last gap that covered it; 0 if none yet (or broker out of range).
 */
int64_t ota_svc_inventory_stream_since(const ota_svc_inventory_t *inv, unsigned broker);

/**
 * Writes every notice the write budget holds back now, due or not (call it
 * before ota_svc_inventory_destroy() when the service stops).
 */
void ota_svc_inventory_flush(ota_svc_inventory_t *inv, int64_t now_ms);

/**
 * Reads the counters.
 * @param inv the module (NULL: zeros).
 * @param out receives them.
 */
void ota_svc_inventory_get_stats(const ota_svc_inventory_t *inv, ota_svc_inventory_stats_t *out);

/** Destroys the module (NULL: no-op); what the write budget held back is dropped. */
void ota_svc_inventory_destroy(ota_svc_inventory_t *inv);

/** NULL-terminated topic filters the module needs subscribed. */
const char *const *ota_svc_inventory_topics(void);

/**
 * Handles one message.
 * @return 1 if the topic belongs to the module (handled or refused), else 0.
 */
int ota_svc_inventory_handle(ota_svc_inventory_t *inv, const char *topic, const void *payload,
                             size_t len, int64_t now_ms);

/**
 * Writes the notices the presence write budget held back whose period has
 * passed. Admits, as a gap, the notices the store could not take (a write
 * that failed, e.g. a database held busy beyond its wait), and the gaps it
 * could not record: records those brokers' gap, at most once a second, until
 * the store takes it. Call it a few times a second (the service does every
 * 200 ms): held notices wait for it.
 * @return 0 (nothing pending, or the walk done), or < 0 (the store failed again: retried).
 */
int ota_svc_inventory_tick(ota_svc_inventory_t *inv, int64_t now_ms);

#endif /* OTA_SVC_INVENTORY_H */
