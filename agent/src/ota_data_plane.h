/*
 * otter: data planes, which move a job's file blocks (private to the agent).
 *
 * A plane only moves bytes: it gets ready for a job, sends the requests the
 * download module plans, and says what an incoming message is (a block, a
 * refusal, something unreadable, or not its own); a plane with its own
 * stream (HTTP) reads it in poll and hands body bytes to ota_agent_bytes().
 * The agent passes blocks on to the download module and the port, picks the
 * plane per job from the job document's "protocols" (in their order), and
 * switches to the other plane listed when one stalls or is refused, from the
 * same bitmap.
 */
#ifndef OTA_DATA_PLANE_H
#define OTA_DATA_PLANE_H

#include "ota_module.h"

#include "otter/ota_config_defaults.h"

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

/** What a plane's poll found (planes with their own stream: HTTP). */
typedef enum ota_plane_poll {
    OTA_PLANE_POLL_OK = 0,   /**< nothing wrong (bytes may have been delivered) */
    OTA_PLANE_POLL_RETRY,    /**< the connection failed or an answer was malformed: ask again */
    OTA_PLANE_POLL_BACK_OFF, /**< the server is busy (5xx, 429): wait, then ask again */
    OTA_PLANE_POLL_EXPIRED,  /**< the URL is refused (403): a fresh job document is needed */
    OTA_PLANE_POLL_REFUSED,  /**< this plane cannot deliver the file (404, 416, changed file) */
} ota_plane_poll_t;

/** A data plane. */
typedef struct ota_data_plane {
#if OTA_HTTP_PLANE
    /** Name for logs and status reports ("mqtt", "http"). */
    const char *name;
#endif
    /** Get ready for the agent's job (subscribe, take the URL). */
    ota_err_t (*open)(ota_agent_t *a);
    /**
     * Ask for the blocks of req. OTA_ERR_WRONG_STATE: not now (the plane's
     * pipeline is full): nothing was sent; plan it again later.
     */
    ota_err_t (*request)(ota_agent_t *a, const ota_block_request_t *req);
    /** Read one message (topic of topic_len bytes) into *ev. */
    void (*handle)(const ota_agent_t *a, const char *topic, size_t topic_len,
                   const uint8_t *payload, size_t len, ota_plane_event_t *ev);
    /** Unsubscribe, close. */
    void (*close)(ota_agent_t *a);
#if OTA_HTTP_PLANE
    /**
     * Read the plane's own stream (NULL for planes fed by MQTT messages):
     * body bytes go to ota_agent_bytes() as they arrive.
     */
    ota_plane_poll_t (*poll)(ota_agent_t *a);
    /** Drop every request in flight (a new round asks again), or NULL. */
    void (*drop)(ota_agent_t *a);
#endif
} ota_data_plane_t;

/** The plane of the agent's job for a call through it: without the HTTP plane, the MQTT plane
 * (a constant, so the calls are direct). */
#if OTA_HTTP_PLANE
#define OTA_JOB_PLANE(a) ((a)->plane)
#else
#define OTA_JOB_PLANE(a) (&ota_data_plane_mqtt)
#endif

/** A plane's name for logs ("mqtt", "http"). */
#if OTA_HTTP_PLANE
#define OTA_PLANE_NAME(p) ((p)->name)
#else
#define OTA_PLANE_NAME(p) "mqtt"
#endif

/** The MQTT streams plane (AWS IoT MQTT-based file delivery, CBOR). */
extern const ota_data_plane_t ota_data_plane_mqtt;

#if OTA_HTTP_PLANE
/** The HTTP plane: range requests to the job's update_data_url. */
extern const ota_data_plane_t ota_data_plane_http;

/**
 * Bytes offset .. offset + len - 1 of the file arrived (HTTP plane): the
 * agent writes what it has not written yet, marks the blocks they complete
 * and may finish the download.
 * @return OTA_OK; an error stops the plane's delivery (the job failed or ended).
 */
OTA_MODULE ota_err_t ota_agent_bytes(ota_agent_t *a, uint32_t offset, const uint8_t *data,
                                     size_t len);

/** The last failure of the HTTP plane, for logs and reports ("OTA_HTTPC_EXPIRED"). */
OTA_MODULE const char *ota_data_http_error(const ota_agent_t *a);
#endif

/**
 * The plane to use for the agent's job: the first listed in its
 * "protocols" that the device can use (HTTP needs OTA_HTTP_PLANE, a URL and
 * a stream), skipping `not` (NULL: none); NULL when there is none.
 */
OTA_MODULE const ota_data_plane_t *ota_data_plane_for(const ota_agent_t *a,
                                                      const ota_data_plane_t * not );

#endif /* OTA_DATA_PLANE_H */
