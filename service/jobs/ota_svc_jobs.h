/*
 * otter service: the AWS IoT Jobs device API over MQTT, on top of the store.
 *
 * Topics handled, for every thing (see the wire protocol spec, sections 1, 2,
 * 5 and 8, and the AWS IoT Jobs device MQTT API):
 *
 *   $aws/things/<thing>/jobs/get            -> get/accepted | get/rejected
 *   $aws/things/<thing>/jobs/start-next     -> start-next/accepted | /rejected
 *                                              (a QUEUED next execution becomes
 *                                              IN_PROGRESS with the request's
 *                                              statusDetails; an IN_PROGRESS one
 *                                              is returned unchanged)
 *   $aws/things/<thing>/jobs/$next/get      -> $next/get/accepted | /rejected,
 *                                              and the same execution on notify-next
 *   $aws/things/<thing>/jobs/<job>/get      -> <job>/get/accepted | /rejected
 *   $aws/things/<thing>/jobs/<job>/update   -> <job>/update/accepted | /rejected
 *   any other request under $aws/things/<thing>/jobs/ -> <topic>/rejected with
 *                                              InvalidTopic (the service's own
 *                                              answers and notices are skipped)
 *
 * and publishes $aws/things/<thing>/jobs/notify (the pending executions,
 * {"timestamp", "jobs": {"IN_PROGRESS": [...], "QUEUED": [...]}}, a status
 * without executions left out) whenever that list changes, and
 * $aws/things/<thing>/jobs/notify-next whenever a thing's next
 * pending job changes: a job created or released by its rollout, an execution
 * finished, a job canceled or aborted, an execution timed out. The state that
 * decides what to announce lives in the store, so a restarted service
 * continues where the previous one stopped and the CLI's writes (new job,
 * cancel) are picked up by ota_svc_jobs_tick().
 *
 * Rejections carry {"code","message","clientToken"?,"timestamp"} (plus
 * "executionState" for VersionMismatch and InvalidStateTransition) with the
 * AWS codes InvalidTopic, InvalidJson, InvalidRequest,
 * InvalidStateTransition, ResourceNotFound, VersionMismatch, InternalError,
 * TerminalStateReached, RequestThrottled.
 *
 * Sizes: statusDetails are stored as the service re-serializes them (compact
 * JSON, whatever whitespace or escapes the device wrote), at most
 * OTA_STORE_DETAILS_MAX bytes (more: InvalidRequest), so that every answer
 * carrying them and the largest job document stays well below the broker's
 * OTA_STORE_MQTT_PACKET_MAX. No message larger than the broker takes is ever
 * published (see ota_svc_jobs_packet_fits()).
 *
 * Input hygiene: a payload that is not strict JSON (invalid UTF-8, "\u0000",
 * lone surrogate escapes, a key twice in one object) is refused with
 * InvalidJson before anything is read from it; an update whose
 * executionNumber is not the execution's is ResourceNotFound. A refused
 * request changes nothing.
 *
 * Redeliveries: with ota_svc_jobs_set_session(), every update and start-next
 * records its MQTT delivery (session, packet id, digest of topic and payload)
 * with the change it made, so the same delivery coming again after a restart
 * of the service or the broker is answered as accepted and applied once.
 *
 * Threading: the module is used from one thread at a time. Time comes in only
 * through the now_ms parameters: milliseconds since the Unix epoch (answers'
 * "timestamp" and the execution times are derived from it).
 */
#ifndef OTA_SVC_JOBS_H
#define OTA_SVC_JOBS_H

#include <stddef.h>
#include <stdint.h>

#include "ota_store.h"
#include "ota_svc_budget.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Publishes one MQTT message.
 * @param ctx     the publish_ctx given to ota_svc_jobs_create().
 * @param topic   full topic, NUL-terminated; valid during the call only.
 * @param payload payload bytes (JSON, not NUL-terminated); valid during the
 *                call only.
 * @param len     payload length.
 * @param qos     0 or 1.
 * @return 0 on success, nonzero on failure (logged; the module carries on).
 */
typedef int (*ota_svc_publish_fn)(void *ctx, const char *topic, const void *payload, size_t len,
                                  int qos);

/** The Jobs API module. Opaque. */
typedef struct ota_svc_jobs ota_svc_jobs_t;

/**
 * Creates the module.
 * @param store       open store; borrowed, must outlive the module.
 * @param publish     how to publish; must not be NULL.
 * @param publish_ctx passed to publish.
 * @return the module, or NULL (NULL argument or out of memory).
 */
ota_svc_jobs_t *ota_svc_jobs_create(ota_store_t *store, ota_svc_publish_fn publish,
                                    void *publish_ctx);

/**
 * Destroys the module. The store is not closed.
 * @param jobs module, or NULL (no-op).
 */
void ota_svc_jobs_destroy(ota_svc_jobs_t *jobs);

/**
 * NULL-terminated topic filters the Jobs API needs subscribed: everything
 * under a thing's jobs/, so that requests on unknown topics can be answered
 * with InvalidTopic (the service's own answers come back through it and are
 * skipped by ota_svc_jobs_handle()). Subscribe at QoS 1.
 * @return a static array.
 */
const char *const *ota_svc_jobs_topics(void);

/**
 * Handles one message; returns 1 if the topic belongs to the Jobs API
 * (answered or refused), 0 if not.
 * @param jobs    module.
 * @param topic   the message's topic, NUL-terminated.
 * @param payload the message's payload; need not be NUL-terminated.
 * @param len     payload length.
 * @param now_ms  current wall-clock time, ms since the Unix epoch.
 * @return 1 or 0 as above. A store failure is answered with InternalError
 *         and logged; it still returns 1.
 */
int ota_svc_jobs_handle(ota_svc_jobs_t *jobs, const char *topic, const void *payload, size_t len,
                        int64_t now_ms);

/**
 * Handles one message as ota_svc_jobs_handle(), knowing its MQTT delivery.
 * @param jobs        module.
 * @param topic       the message's topic, NUL-terminated.
 * @param payload     the message's payload; need not be NUL-terminated.
 * @param len         payload length.
 * @param delivery_id the MQTT packet id (1..65535) of a QoS 1 message, 0 for QoS 0.
 * @param now_ms      current wall-clock time, ms since the Unix epoch.
 * @param mono_ms     monotonic time in ms, for the budgets.
 * @return 1 if the topic is under a thing's jobs/ (answered, refused or an
 *         answer of ours skipped), 0 if not.
 */
int ota_svc_jobs_handle_delivery(ota_svc_jobs_t *jobs, const char *topic, const void *payload,
                                 size_t len, int delivery_id, int64_t now_ms, int64_t mono_ms);

/**
 * Charges each request to its thing's Jobs API budget
 * (ota_svc_budget_jobs_request()); over it, the request is refused with
 * RequestThrottled (and changes nothing).
 * @param jobs   module.
 * @param budget budgets, borrowed (must outlive the module), or NULL for none.
 */
void ota_svc_jobs_set_budget(ota_svc_jobs_t *jobs, ota_svc_budget_t *budget);

/**
 * Sets the MQTT session whose deliveries are tracked (see above). Call it at
 * every connection: resumed = 0 (the broker started a new session) forgets the
 * session's recorded deliveries, since their packet ids will be reused.
 * @param jobs     module.
 * @param session  the service's client id (copied), or NULL to stop tracking.
 * @param resumed  1 if the broker kept the session (CONNACK session present).
 * @return 0, or -1 (out of memory, store failure; logged).
 */
int ota_svc_jobs_set_session(ota_svc_jobs_t *jobs, const char *session, int resumed);

/**
 * Publishes an answer kept in the store's outbox (QoS 1); the caller tells
 * the module when the broker acknowledged it (ota_svc_jobs_answer_delivered()).
 * @param ctx       the ctx given to ota_svc_jobs_set_durable().
 * @param topic     topic; valid during the call only.
 * @param payload   JSON; valid during the call only.
 * @param len       payload length.
 * @param outbox_id the answer's outbox id.
 * @return 0 on success, nonzero on failure (the answer stays in the outbox).
 */
typedef int (*ota_svc_jobs_durable_fn)(void *ctx, const char *topic, const void *payload,
                                       size_t len, int64_t outbox_id);

/**
 * Durable answers: every answer to a QoS 1 request (delivery id > 0) is
 * added to the store's outbox before it is published with fn, and removed
 * when the broker acknowledged it, so that an answer whose request was
 * acknowledged to the broker (the PUBACK leaves first) is not lost if the
 * service dies before writing it: ota_svc_jobs_resend_answers() at the next
 * start sends it again (devices may see an answer twice).
 * @param jobs module.
 * @param fn   how to publish them, or NULL to publish every answer plainly.
 * @param ctx  passed to fn.
 */
void ota_svc_jobs_set_durable(ota_svc_jobs_t *jobs, ota_svc_jobs_durable_fn fn, void *ctx);

/**
 * The broker acknowledged an outbox answer: it leaves the outbox.
 * @param jobs      module.
 * @param outbox_id the id given to the durable publish function.
 */
void ota_svc_jobs_answer_delivered(ota_svc_jobs_t *jobs, int64_t outbox_id);

/** Age after which an answer left in the outbox is dropped instead of sent again: a day. */
#define OTA_SVC_JOBS_OUTBOX_TTL_MS (24LL * 3600 * 1000)

/**
 * Publishes again every answer still in the outbox (call once at start, when
 * connected). Answers older than OTA_SVC_JOBS_OUTBOX_TTL_MS, and answers larger
 * than the broker takes (ota_svc_jobs_packet_fits()), can never be delivered
 * usefully: they are dropped, with a log line, never sent.
 * @param jobs module.
 * @return how many were sent.
 */
int ota_svc_jobs_resend_answers(ota_svc_jobs_t *jobs);

/**
 * Sends the answers that instances which stopped beating (no heartbeat in the
 * store since now_ms - live_ms) left in the outbox, after making them this
 * instance's (ota_store_outbox_adopt()): another instance killed between a
 * request's commit and its answer loses no answer. Those older than
 * OTA_SVC_JOBS_OUTBOX_TTL_MS are dropped instead (and logged), as at a start.
 * Needs the store handle's instance name (ota_store_set_instance()).
 * @return the number of answers sent.
 */
int ota_svc_jobs_adopt_answers(ota_svc_jobs_t *jobs, int64_t now_ms, int64_t live_ms);

/** Counters since creation. */
typedef struct ota_svc_jobs_stats {
    uint64_t requests;     /**< requests handled (answers of ours not counted) */
    uint64_t redelivered;  /**< updates delivered again and answered without a change */
    uint64_t throttled;    /**< requests refused with RequestThrottled */
    uint64_t skipped;      /**< our own answers and notices that came back */
    uint64_t resent;       /**< outbox answers sent again after a restart */
    uint64_t seen_written; /**< lastSeen refreshes written from requests (one a minute a thing) */
    /** messages not sent (answers replaced by an InternalError rejection, notices skipped,
     *  outbox entries dropped) because the broker would refuse them (OTA_STORE_MQTT_PACKET_MAX) */
    uint64_t too_large;
} ota_svc_jobs_stats_t;

/**
 * Size of the MQTT PUBLISH packet that carries a message, as the broker counts it against its
 * max_packet_size: fixed header, topic, packet id (QoS 1), a byte of MQTT 5 properties, payload.
 * @param topic NUL-terminated topic.
 * @param len   payload length.
 * @param qos   0 or 1.
 * @return the packet's size in bytes.
 */
size_t ota_svc_jobs_packet_size(const char *topic, size_t len, int qos);

/**
 * Whether the broker takes the message: its packet is at most OTA_STORE_MQTT_PACKET_MAX bytes.
 * A larger one makes Mosquitto end the publisher's connection; this module never sends one
 * (an answer becomes an InternalError rejection, a notice is skipped, an outbox entry is
 * dropped; each logged).
 * @return 1 if it fits, 0 if not.
 */
int ota_svc_jobs_packet_fits(const char *topic, size_t len, int qos);

/**
 * Reads the counters.
 * @param jobs module.
 * @param out  receives them.
 */
void ota_svc_jobs_get_stats(const ota_svc_jobs_t *jobs, ota_svc_jobs_stats_t *out);

/**
 * Rewrites a job document for the thing it is sent to (the HTTP data plane's
 * presigned URLs, renewed on every answer that carries the document).
 * @param ctx      the ctx given to ota_svc_jobs_set_document_hook().
 * @param thing    the thing the document goes to.
 * @param job_id   its job.
 * @param document the stored document.
 * @param now_ms   current wall-clock time, ms since the Unix epoch.
 * @return heap text the module frees with free(), or NULL to send the stored document.
 */
typedef char *(*ota_svc_jobs_doc_fn)(void *ctx, const char *thing, const char *job_id,
                                     const char *document, int64_t now_ms);

/**
 * Sets the document hook (none: documents are sent as stored).
 * @param jobs module.
 * @param hook hook, or NULL.
 * @param ctx  passed to the hook.
 */
void ota_svc_jobs_set_document_hook(ota_svc_jobs_t *jobs, ota_svc_jobs_doc_fn hook, void *ctx);

/**
 * Periodic work, called every ~200 ms: picks up CLI changes (new jobs,
 * cancels → notify-next), in-progress timeouts, rollout releases, abort
 * criteria.
 * @param jobs   module.
 * @param now_ms current wall-clock time, ms since the Unix epoch.
 */
void ota_svc_jobs_tick(ota_svc_jobs_t *jobs, int64_t now_ms);

/* ------------------------------------------------------------------------ */
/* Logging (optional)                                                       */
/* ------------------------------------------------------------------------ */

/** Log levels passed to the log hook. */
typedef enum ota_svc_log_level {
    OTA_SVC_LOG_ERROR = 0,
    OTA_SVC_LOG_WARN = 1,
    OTA_SVC_LOG_INFO = 2,
    OTA_SVC_LOG_DEBUG = 3,
} ota_svc_log_level_t;

/**
 * Receives one log line (no trailing newline), e.g.
 * "jobs: thing dev-1 job fw-2: IN_PROGRESS -> SUCCEEDED (version 5)".
 * @param ctx   the log_ctx given to ota_svc_jobs_set_log().
 * @param level an ota_svc_log_level_t.
 * @param line  valid during the call only.
 */
typedef void (*ota_svc_log_fn)(void *ctx, int level, const char *line);

/**
 * Sets the log hook. Without one, the module logs nothing.
 * @param jobs    module.
 * @param log     hook, or NULL to stop logging.
 * @param log_ctx passed to the hook.
 */
void ota_svc_jobs_set_log(ota_svc_jobs_t *jobs, ota_svc_log_fn log, void *log_ctx);

/** Ready-made hook writing "otter-service <LEVEL> <line>\n" to stderr; ctx unused. */
void ota_svc_jobs_log_stderr(void *ctx, int level, const char *line);

#ifdef __cplusplus
}
#endif

#endif /* OTA_SVC_JOBS_H */
