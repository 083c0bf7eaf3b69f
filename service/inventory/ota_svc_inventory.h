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
 * (1-32 of [A-Za-z0-9_.-]), connected ("true"/"false"), lastSeen (ms since
 * the epoch); at most OTA_SVC_INVENTORY_MAX_PER_MINUTE updates per thing per
 * minute; unknown keys, other types, longer payloads are refused and change
 * nothing. A firmwareVersion report re-targets the thing's queued jobs (one
 * already on a job's version is SKIPPED).
 *
 * Presence comes from the brokers, not from the device: a thing is online on a
 * broker from Mosquitto's "New client connected ... as <thing> (...,
 * u'<thing>')" notice (the login binds the client id to the thing) until its
 * "Client <thing> ..." disconnect notice. Clients cannot publish on $SYS
 * topics. In a federation each broker's notices also reach the hubs over the
 * bridges as otter-presence/<K>/log/N (K: the broker's number), which only the
 * bridges may publish; the notices of the broker the service is connected to
 * come on $SYS/broker/log/N and count as its number (set_broker). The thing's
 * "connectedTo" attribute lists the brokers it is connected to ("1,3");
 * "connected" is "true" while that list is not empty.
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

/** Destroys the module (NULL: no-op). */
void ota_svc_inventory_destroy(ota_svc_inventory_t *inv);

/** NULL-terminated topic filters the module needs subscribed. */
const char *const *ota_svc_inventory_topics(void);

/**
 * Handles one message.
 * @return 1 if the topic belongs to the module (handled or refused), else 0.
 */
int ota_svc_inventory_handle(ota_svc_inventory_t *inv, const char *topic, const void *payload,
                             size_t len, int64_t now_ms);

#endif /* OTA_SVC_INVENTORY_H */
