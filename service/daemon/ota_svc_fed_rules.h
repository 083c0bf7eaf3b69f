/*
 * The rules of the service's watch on the other hub of a federation: when to move back to the
 * first broker, what a flap is, when the hubs are split and when that split has healed.
 *
 * No network and no clock here: the watch (ota_svc_federation.c) reports what happened to its
 * connection, to the main connection and to the probes, each with the time (monotonic ms), and
 * asks these rules what to do. The rules log their verdicts through the callback.
 *
 * - Moving back: the main connection is on a later broker and the watch has stayed connected
 *   to broker 0 for the stable time (3 s, doubled at every flap up to 60 s, back to 3 s after
 *   5 minutes on broker 0), with probes crossing (or for SPLIT_FIRST_MS without).
 * - A flap: within 30 s of a move back, the main connection to broker 0 is lost, or its
 *   attempt fails (refused, closed before its CONNACK, unreachable), or the main connection
 *   comes up on another broker instead (the move back failed, however it failed).
 * - A split: while both connections are up, a direction of the probes silent for SPLIT_MS
 *   (SPLIT_FIRST_MS after the pair came up). It is reported once and stays open until probes
 *   cross both ways again, also across the watch's or the main connection's reconnections: a
 *   new pairing neither reports it again nor calls it healed before a probe crossed each way.
 *
 * Threading: one thread.
 */
#ifndef OTA_SVC_FED_RULES_H
#define OTA_SVC_FED_RULES_H

#include <stdint.h>

/* What the rules ask of the instance. */
enum { OTA_SVC_FED_NOTHING = 0, OTA_SVC_FED_MOVE_HOME = 1 };

/* What ota_svc_fed_rules_target() asks of the watch's connection. */
enum {
    OTA_SVC_FED_KEEP = 0,  /* same broker: keep the connection */
    OTA_SVC_FED_END = 1,   /* no watch: end the connection */
    OTA_SVC_FED_GO = 2,    /* another broker: end the connection, then try the new one */
    OTA_SVC_FED_WAS_UP = 4 /* added to END or GO: the connection ended was up (say DISCONNECT) */
};

/** Counts for the stats line. */
typedef struct ota_svc_fed_stats {
    uint64_t splits;     /* splits detected */
    uint64_t moves_home; /* moves back to broker 0 */
    uint64_t flaps;      /* main connection lost soon after a move back */
} ota_svc_fed_stats_t;

/* The rules' state. Read it through the functions below; its fields are the rules' own. */
typedef struct ota_svc_fed_rules {
    void (*log)(void *ctx, int level, const char *line); /* levels 0 error .. 3 debug */
    void *ctx;
    char host[256]; /* the watch's broker */
    int port;
    int index; /* its place in the list, -1: no watch */
    int main_index;
    int main_ready;
    int connected;      /* the watch */
    int64_t up_since;   /* the watch connected then */
    int64_t down_since; /* the watch has had no connection since then (0: connected) */
    int alone;          /* the watch's broker unreachable for ALONE_MS: reported */
    int64_t pair_since; /* both connections up since then (0: not both) */
    int64_t seen_to_watch, seen_to_main, last_probe;
    int split;   /* a split reported and not healed (kept across pairings) */
    int crossed; /* probes crossed both ways in this pairing: said once */
    int64_t split_since;
    int64_t stable_ms;
    int64_t moved_at;    /* a move back was asked then (0: none pending or recent) */
    int64_t ready_since; /* main_ready changed then */
    ota_svc_fed_stats_t stats;
} ota_svc_fed_rules_t;

/**
 * Starts the rules: no watch, the main connection down.
 * @param log  logs a line (may be NULL); ctx is passed to it.
 */
void ota_svc_fed_rules_init(ota_svc_fed_rules_t *r,
                            void (*log)(void *ctx, int level, const char *line), void *ctx);

/**
 * The main connection is up on broker main_index (0 is the first of the list), or down
 * (main_index -1); the watch's broker is then host:port, index (host NULL: none). A main
 * connection up on a later broker while a move back is pending is a flap. With END or GO the
 * rules count the watch's connection as ended (ota_svc_fed_rules_watch_down()).
 * @return OTA_SVC_FED_KEEP, or OTA_SVC_FED_END or OTA_SVC_FED_GO, with OTA_SVC_FED_WAS_UP
 *         added when the connection ended was up (see above).
 */
int ota_svc_fed_rules_target(ota_svc_fed_rules_t *r, int main_index, const char *host, int port,
                             int index, int64_t now);

/** The watch's connection was accepted (CONNACK 0). */
void ota_svc_fed_rules_watch_up(ota_svc_fed_rules_t *r, int64_t now);

/**
 * The watch's connection ended (or was ended), or the watch has no connection. Only the first
 * report after the watch was up counts (and is logged): the watch may say it as often as it
 * likes, from every place a connection can end.
 * @return 1 when this ended a connection the rules counted as up; 0 when it was not up.
 */
int ota_svc_fed_rules_watch_down(ota_svc_fed_rules_t *r, int64_t now);

/** Whether the watch's connection is up (accepted and not reported down since). */
int ota_svc_fed_rules_watch_connected(const ota_svc_fed_rules_t *r);

/** The watch's broker: its place in the list (0 the first), -1 when there is no watch. */
int ota_svc_fed_rules_watch_index(const ota_svc_fed_rules_t *r);

/** The watch's broker's host name ("" when there is no watch). */
const char *ota_svc_fed_rules_watch_host(const ota_svc_fed_rules_t *r);

/** The watch's broker's port. */
int ota_svc_fed_rules_watch_port(const ota_svc_fed_rules_t *r);

/** The counts for the stats line. */
ota_svc_fed_stats_t ota_svc_fed_rules_stats(const ota_svc_fed_rules_t *r);

/** The main connection is subscribed and serving (ready 1) or not. */
void ota_svc_fed_rules_main_ready(ota_svc_fed_rules_t *r, int ready, int64_t now);

/** A probe of the main connection reached the watch. */
void ota_svc_fed_rules_probe_at_watch(ota_svc_fed_rules_t *r, int64_t now);

/** A probe of the watch reached the main connection. */
void ota_svc_fed_rules_probe_at_main(ota_svc_fed_rules_t *r, int64_t now);

/**
 * The main connection was lost (not by a planned move), or an attempt of it failed (refused,
 * closed before its CONNACK, unreachable). Within 30 s of a move back that is a flap.
 */
void ota_svc_fed_rules_main_lost(ota_svc_fed_rules_t *r, int64_t now);

/**
 * The checks; call it every turn of the loop, after the watch's network work.
 * @param probe  set to 1 when a probe is due on each connection now, else 0.
 * @return OTA_SVC_FED_MOVE_HOME when the main connection should move to broker 0 now, else
 *         OTA_SVC_FED_NOTHING.
 */
int ota_svc_fed_rules_poll(ota_svc_fed_rules_t *r, int64_t now, int *probe);

/**
 * The state for the stats line: "waiting" (the other hub not reached or not checked yet),
 * "ok" (probes cross both ways), "split" (they do not, reported and not healed, also while
 * the pair is down for less than ALONE_MS), "alone" (the other hub unreachable for a while).
 */
const char *ota_svc_fed_rules_state(const ota_svc_fed_rules_t *r);

/**
 * Logs a line through the rules' callback (printf format; levels 0 error .. 3 debug).
 */
void ota_svc_fed_rules_logf(ota_svc_fed_rules_t *r, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** The time broker 0 must keep the watch's connection before the next move back (ms). */
int64_t ota_svc_fed_rules_stable_ms(const ota_svc_fed_rules_t *r);

#endif
