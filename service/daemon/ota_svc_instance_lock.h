/*
 * otter service: one process per client id on a data folder.
 *
 * Two otter-service processes with the same MQTT client id on one broker take
 * the connection from each other for as long as both run (the broker closes
 * the older connection for every new one). The lock keeps a second process
 * with the same client id on the same data folder from starting at all; the
 * takeover watch names the likely cause when the broker keeps closing the
 * connection right after it was made (a process elsewhere with the same id).
 */
#ifndef OTA_SVC_INSTANCE_LOCK_H
#define OTA_SVC_INSTANCE_LOCK_H

#include <stddef.h>
#include <stdint.h>

/**
 * Takes the lock of client_id on data_dir: DATA/run/<client id>.lock, held
 * (fcntl write lock) until the process ends, however it ends, and holding its
 * process id. Creates DATA/run if missing.
 * @param err receives, on failure, one line that says why (another process
 *        holds it: its pid and what to do; or the file's error).
 * @return the open file descriptor to keep (>= 0); -1 when another process
 *         holds the lock; -2 on another error.
 */
int ota_svc_instance_lock(const char *data_dir, const char *client_id, char *err, size_t cap);

/** Connections the broker closed soon after they were made, to tell a takeover. */
typedef struct ota_svc_takeover {
    int64_t connected_ms; /**< when the connection under way was made; -1: none */
    unsigned short_lived; /**< connections in a row that lasted less than OTA_SVC_TAKEOVER_MS */
    int reported;         /**< the hint was logged since the last lasting connection */
} ota_svc_takeover_t;

/** A connection lost within this many milliseconds counts as short-lived. */
#define OTA_SVC_TAKEOVER_MS 10000

/** Short-lived connections in a row that make the hint. */
#define OTA_SVC_TAKEOVER_COUNT 3u

/** Starts the watch: nothing connected yet. */
void ota_svc_takeover_init(ota_svc_takeover_t *t);

/** The connection came up at now_ms. */
void ota_svc_takeover_connected(ota_svc_takeover_t *t, int64_t now_ms);

/**
 * The connection was lost (not closed by this process) at now_ms.
 * @return 1 once, when OTA_SVC_TAKEOVER_COUNT connections in a row lasted
 *         less than OTA_SVC_TAKEOVER_MS each: time to log the hint; else 0.
 *         A connection that lasted longer starts the count again.
 */
int ota_svc_takeover_lost(ota_svc_takeover_t *t, int64_t now_ms);

#endif /* OTA_SVC_INSTANCE_LOCK_H */
