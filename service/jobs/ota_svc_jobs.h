/*
 * otter service: the AWS IoT Jobs device API over MQTT, on top of the store.
 *
 * Topics handled, for every thing (see the wire protocol spec, sections 1, 2
 * and 5, and the AWS IoT Jobs device MQTT API):
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
 *
 * and publishes $aws/things/<thing>/jobs/notify-next whenever a thing's next
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
 * TerminalStateReached.
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
 * NULL-terminated topic filters the Jobs API needs subscribed (requests only,
 * never the answers the service itself publishes).
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
