/*
 * The service's watch on the other hub of a federation (`otter broker init --federate`).
 *
 * An instance with a list of brokers (the hubs, hub 1 first) holds its main connection on one
 * of them. This module holds a second connection, the watch, on another one of the list, with
 * the instance's own login and client id and a clean session, and serves two purposes:
 *
 * - Moving back. While the main connection is on a later broker, the watch tries the first one
 *   every HOME_RETRY_MS. Once it has stayed connected there for the stable time (3 s, doubled
 *   each time the main connection is lost again soon after moving back, or does not get
 *   there, up to 60 s), poll says so and the instance moves its main connection back to the
 *   first broker.
 * - Split detection. While both connections are up, each publishes a probe every second on a
 *   topic of the reserved thing otter-service-probe (a thing name `thing create` refuses; only
 *   the service's login may publish or subscribe there, so no device can fake or suppress a
 *   probe), which the bridge between the hubs carries. The main connection sees the watch's
 *   probes and the watch the main's; when either direction has been silent too long, the
 *   hubs cannot reach each other (a split): logged at ERROR once, and at WARN when probes
 *   cross both ways again (a connection of the pair made again in between does neither).
 *
 * The decisions are in ota_svc_fed_rules.h (no network there); this module is the watch's
 * connection and the probes' messages.
 *
 * The watch's clean session under the instance's client id also ends what the broker kept of
 * the instance's persistent session there (the Jobs API's queued requests, delivered through
 * the other hub meanwhile), so that a later failover to that broker does not deliver them twice.
 *
 * Threading: one thread; time comes in through the now parameters (monotonic ms).
 */
#ifndef OTA_SVC_FEDERATION_H
#define OTA_SVC_FEDERATION_H

#include <stddef.h>
#include <stdint.h>

#include "ota_svc_fed_rules.h"

/* What the watch needs to log in: the main connection's login (pointers kept). */
typedef struct ota_svc_fed_config {
    const char *client_id;
    const char *username; /* NULL: none (TLS identity) */
    const char *password;
    const char *cafile; /* NULL: plain TCP */
    const char *certfile;
    const char *keyfile;
    int keepalive_s;
    /* Publishes on the main connection (QoS 0); 0 on success. */
    int (*publish_main)(void *ctx, const char *topic, const void *payload, size_t len, int qos);
    void *ctx;
    /* Logs a line (levels 0 error .. 3 debug). */
    void (*log)(void *ctx, int level, const char *line);
} ota_svc_fed_config_t;

/* The watch. Opaque. */
typedef struct ota_svc_fed ota_svc_fed_t;

/**
 * Creates the watch (not connected).
 * @param cfg  the login and callbacks; its strings must outlive the watch.
 * @return the watch, or NULL (out of memory, or libmosquitto refused the login settings).
 */
ota_svc_fed_t *ota_svc_fed_create(const ota_svc_fed_config_t *cfg);

/** Ends the watch's connection and frees it. NULL is allowed. */
void ota_svc_fed_destroy(ota_svc_fed_t *f);

/**
 * The main connection is up on broker main_index (0 is the first of the list), or down
 * (main_index -1). The watch then goes to the other broker (host:port, other_index), or,
 * with other NULL or the main connection down, ends (before the main connection tries a
 * broker where the watch holds the instance's client id).
 * @param now  monotonic ms.
 */
void ota_svc_fed_set(ota_svc_fed_t *f, int main_index, const char *other_host, int other_port,
                     int other_index, int64_t now);

/**
 * The main connection is subscribed and serving (ready 1) or not: probes start when both
 * connections are up.
 */
void ota_svc_fed_main_ready(ota_svc_fed_t *f, int ready, int64_t now);

/** The filter the main connection subscribes to (QoS 0) for the watch's probes. */
const char *ota_svc_fed_probe_topic(const ota_svc_fed_t *f);

/**
 * A message the main connection received: 1 if it was this instance's probe topic (consumed),
 * else 0.
 */
int ota_svc_fed_main_message(ota_svc_fed_t *f, const char *topic, const void *payload, size_t len,
                             int64_t now);

/**
 * Runs the watch's network work and the checks; call it every turn of the loop.
 * @return OTA_SVC_FED_MOVE_HOME when the main connection should move to broker 0 now, else
 *         OTA_SVC_FED_NOTHING.
 */
int ota_svc_fed_poll(ota_svc_fed_t *f, int64_t now);

/**
 * The main connection was lost (not by a planned move), or an attempt of it failed (refused,
 * closed before its CONNACK, unreachable). Within 30 s of a move back that is a flap: the
 * stable time asked of broker 0 doubles.
 */
void ota_svc_fed_main_lost(ota_svc_fed_t *f, int64_t now);

/**
 * The state for the stats line (ota_svc_fed_rules_state()): "waiting" (the other hub not
 * reached or not checked yet), "ok" (probes cross both ways), "split" (they do not: reported
 * and not healed yet, also while a connection of the pair is being made again), "alone" (the
 * other hub unreachable for a while, also during a split). The caller says "off" for one broker.
 */
const char *ota_svc_fed_state(const ota_svc_fed_t *f);

/** Copies the counts (ota_svc_fed_stats_t, ota_svc_fed_rules.h). */
void ota_svc_fed_get_stats(const ota_svc_fed_t *f, ota_svc_fed_stats_t *out);

#endif
