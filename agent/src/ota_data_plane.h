/*
 * otter: data planes, which move a job's file blocks (private to the agent).
 *
 * A plane only moves bytes: it subscribes to what it needs, sends the requests
 * the download module plans, and says what an incoming message is (a block, a
 * refusal, something unreadable, or not its own). It calls nothing back; the
 * agent passes blocks on to the download module and the port. The agent picks
 * the plane per job from the job document's "protocols" (MQTT streams now;
 * an HTTP ranges plane slots in here).
 */
#ifndef OTA_DATA_PLANE_H
#define OTA_DATA_PLANE_H

#include "ota_config_defaults.h"

#include <stddef.h>
#include <stdint.h>

#include "ota_download.h"
#include "ota_jobs.h"

/** What an incoming message is to a plane. */
typedef enum ota_plane_kind {
    OTA_PLANE_NOT_MINE = 0, /**< not on one of the plane's topics */
    OTA_PLANE_BLOCK,        /**< a block: file_id, index, data, len */
    OTA_PLANE_REFUSED,      /**< the service refused a request: code, code_len */
    OTA_PLANE_BAD,          /**< on the plane's topic but unreadable */
} ota_plane_kind_t;

/** The plane's reading of one message; data and code point into the payload. */
typedef struct ota_plane_event {
    ota_plane_kind_t kind;
    uint32_t file_id;
    uint32_t index;
    const uint8_t *data;
    size_t len;
    const char *code;
    size_t code_len;
} ota_plane_event_t;

/** A data plane: operations over the agent's Jobs link (topics and buffers). */
typedef struct ota_data_plane {
    /** Subscribe to what the plane needs for job. */
    ota_err_t (*open)(ota_jobs_t *j, const ota_job_t *job);
    /** Ask for the blocks of req (block_size bytes each). */
    ota_err_t (*request)(ota_jobs_t *j, const ota_job_t *job, uint32_t block_size,
                         const ota_block_request_t *req);
    /** Read one message (topic of topic_len bytes) into *ev. */
    void (*handle)(const ota_jobs_t *j, const ota_job_t *job, const char *topic, size_t topic_len,
                   const uint8_t *payload, size_t len, ota_plane_event_t *ev);
    /** Unsubscribe. */
    void (*close)(ota_jobs_t *j, const ota_job_t *job);
} ota_data_plane_t;

/** The MQTT streams plane (AWS IoT MQTT-based file delivery, CBOR). */
extern const ota_data_plane_t ota_data_plane_mqtt;

/**
 * The plane for a job's "protocols" (OTA_PROTO_* bits), or NULL when the
 * device has none of them.
 */
const ota_data_plane_t *ota_data_plane_for(uint8_t protocols);

#endif /* OTA_DATA_PLANE_H */
