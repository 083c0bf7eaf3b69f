/*
 * otter: the agent's state machine and public calls.
 *
 * Flow (ota-wire-protocol.md): start -> subscribe, $next/get -> a job
 * document -> the data plane for its protocols -> create (or resume) the
 * file -> requests the download module plans -> blocks to the port ->
 * checkpoints -> close (the port verifies) -> "self_test":"ready" and the job
 * asked for once more -> the service names it: activate, reset (any sign of
 * a cancel instead: the image is discarded) -> the new image starts pending
 * commit -> its job comes back with "self_test" -> version check ->
 * "self_test":"active" -> the application's verdict -> SUCCEEDED (commit) or
 * FAILED (reject, reset, revert). Every terminal outcome is reported with a
 * reason, including documents the agent cannot use; a canceled job ends as
 * CANCELED on the device and is not reported (the service ended it).
 *
 * The modules it drives: ota_download (bitmap, window, retry timer),
 * ota_jobs (topics, status reports), ota_progress (the checkpoint record),
 * ota_data_plane (moving blocks), ota_job_doc (parsing jobs messages).
 */
#include <stddef.h>
#include <string.h>

#include "otter/ota_agent.h"
#include "otter/ota_device_type.h"
#include "otter/ota_crc32.h"
#include "ota_data_plane.h"
#include "ota_download.h"
#include "ota_jobs.h"
#include "ota_out_of_line.h"
#include "ota_progress.h"

/* The refusal code of a request over the service's budget (ota-wire-protocol.md 8). */
static const char ota_throttled_code[] = "RequestThrottled";

/* The states' names in ota_agent_state_t order, one after the other. */
static const char ota_state_names[] = "stopped\0waiting for a job\0downloading\0activating\0"
                                      "waiting for the self-test job\0self-test\0resetting\0"
                                      "suspended";

/* What waits for jobs_retry_at (bits of jobs_retry). */
#define OTA_RETRY_NEXT 1u   /* $next/get was throttled: ask again */
#define OTA_RETRY_REPORT 2u /* a status update was throttled: send it again */
#define OTA_RETRY_LINGER 4u /* a final update went out: its refusal may still come until then */

/* Kinds of FAILED reasons, in FreeRTOS's wording. */
typedef enum ota_fail_kind {
    OTA_FAIL_REJECTED, /* "rejected: 0x%08x" */
    OTA_FAIL_ABORTED,  /* "aborted: 0x%08x" */
    OTA_FAIL_TRANSFER, /* "0x%08x: 0x%08x" */
} ota_fail_kind_t;

/* ---- small helpers ---- */

static int ota_time_reached(uint32_t now, uint32_t deadline)
{
    return (uint32_t)(now - deadline) < 0x80000000u;
}

/* Events above OTA_LOG_LEVEL compile out, texts included. Their numbers and
 * detail are evaluated at every level all the same, so that the agent does
 * the same whatever its log level (what has no effect costs no code). */
#define ota_log(a, level, what, err, x, y, detail)                                                 \
    do {                                                                                           \
        if ((int)(level) <= OTA_LOG_LEVEL) {                                                       \
            ota_log_emit((a), (level), (what), (err), (x), (y), (detail));                         \
        } else {                                                                                   \
            (void)(x);                                                                             \
            (void)(y);                                                                             \
            (void)(detail);                                                                        \
        }                                                                                          \
    } while (0)

#if OTA_LOG_LEVEL >= 0
static void ota_log_emit(ota_agent_t *a, ota_log_level_t level, const char *what, ota_err_t err,
                         uint32_t x, uint32_t y, const char *detail)
{
    ota_agent_event_t ev;
    if (a->cfg.callbacks.log == NULL) {
        return;
    }
    ev.level = level;
    ev.what = what;
    ev.err = err;
    ev.job_id = a->have_job ? a->job.job_id : "";
    ev.a = x;
    ev.b = y;
    ev.detail = detail != NULL ? detail : "";
    a->in_callback++;
    a->cfg.callbacks.log(a->cfg.callbacks.ctx, &ev);
    a->in_callback--;
}
#else
/* Keeps the arguments "used" when logging is compiled out. */
static void ota_log_emit(ota_agent_t *a, ota_log_level_t level, const char *what, ota_err_t err,
                         uint32_t x, uint32_t y, const char *detail)
{
    (void)a;
    (void)level;
    (void)what;
    (void)err;
    (void)x;
    (void)y;
    (void)detail;
}
#endif

OTA_OUT_OF_LINE static void ota_set_state(ota_agent_t *a, ota_agent_state_t state)
{
    if (a->state != state) {
        a->state = state;
        ota_log(a, OTA_LOG_INFO, "state", OTA_OK, (uint32_t)state, 0, ota_agent_state_str(state));
    }
}

/* Has the deadline of the step under way passed? */
OTA_OUT_OF_LINE static int ota_deadline_due(const ota_agent_t *a)
{
    return a->deadline_set && ota_time_reached(a->now, a->deadline);
}

OTA_OUT_OF_LINE static void ota_set_deadline(ota_agent_t *a, uint32_t delay)
{
    a->deadline = a->now + delay;
    a->deadline_set = 1;
}

/* Copies up to cap-1 bytes of s (length n), keeping only [A-Za-z0-9 _.:-]. */
static void ota_copy_safe(char *out, size_t cap, const char *s, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; i < n && j + 1u < cap; i++) {
        char ch = s[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == ' ' || ch == '_' || ch == '.' || ch == ':' || ch == '-') {
            out[j++] = ch;
        }
    }
    out[j] = '\0';
}

OTA_OUT_OF_LINE static void ota_file_desc(const ota_agent_t *a, ota_pal_file_t *file)
{
    file->path = a->job.has_file_path ? a->job.file_path : NULL;
    file->size = a->job.file_size;
    file->file_type = a->job.file_type;
    file->cert_name = a->job.has_cert_name ? a->job.cert_name : NULL;
    file->sig_method = a->job.sig_method;
    file->signature = a->job.signature;
    file->signature_len = a->job.signature_len;
}

/* ceil(size / block_size) without wrapping for sizes near 4 GiB. */
OTA_OUT_OF_LINE static uint32_t ota_block_count(uint32_t size, uint32_t block_size)
{
    return size / block_size + (size % block_size != 0u ? 1u : 0u);
}

static int ota_same_file(const ota_job_t *x, const ota_job_t *y)
{
    return strcmp(x->job_id, y->job_id) == 0 && strcmp(x->stream, y->stream) == 0 &&
           x->file_id == y->file_id && x->file_size == y->file_size &&
           x->signature_len == y->signature_len &&
           memcmp(x->signature, y->signature, x->signature_len) == 0;
}

/* SUCCEEDED, FAILED, TIMED_OUT, REJECTED, REMOVED or CANCELED (one mask test). */
#define OTA_STATUS_BIT(s) (1u << (unsigned)(s))
static int ota_status_terminal(ota_job_status_t s)
{
    return ((OTA_STATUS_BIT(OTA_JOB_STATUS_SUCCEEDED) | OTA_STATUS_BIT(OTA_JOB_STATUS_FAILED) |
             OTA_STATUS_BIT(OTA_JOB_STATUS_TIMED_OUT) | OTA_STATUS_BIT(OTA_JOB_STATUS_REJECTED) |
             OTA_STATUS_BIT(OTA_JOB_STATUS_REMOVED) | OTA_STATUS_BIT(OTA_JOB_STATUS_CANCELED)) >>
            (unsigned)s) &
           1u;
}

/* ---- the Jobs API ---- */

OTA_OUT_OF_LINE static ota_err_t ota_jobs_subscription(ota_agent_t *a, int subscribe)
{
    ota_err_t err = ota_jobs_follow(&a->jobs, OTA_JOBS_NEXT_TOPICS, NULL, subscribe);
    if (err != OTA_OK) {
        ota_log(a, OTA_LOG_ERROR, "subscribe failed", OTA_ERR_MQTT, 0, 0, NULL);
    }
    return err;
}

static ota_err_t ota_job_topic_sub(ota_agent_t *a, int subscribe)
{
    ota_err_t err =
        ota_jobs_follow(&a->jobs, 1u << OTA_JOBS_UPDATE_REJECTED, a->job.job_id, subscribe);
    a->job_sub = (uint8_t)(subscribe && err == OTA_OK);
    return err;
}

/* Makes job the current one; the update/rejected subscription of another
 * job kept for its final update goes, and so does any resend for it. */
static void ota_take_job(ota_agent_t *a, const ota_job_t *job)
{
    if (strcmp(a->job.job_id, job->job_id) != 0) {
        if (a->job_sub) {
            (void)ota_job_topic_sub(a, 0);
        }
        a->jobs_retry &= (uint8_t) ~(OTA_RETRY_REPORT | OTA_RETRY_LINGER);
    }
    a->job = *job;
    a->have_job = 1;
}

/* Sets bits of jobs_retry, due after the retry timer: a throttling back-off
 * (the timer has just doubled), or the time a final update's refusal takes. */
static void ota_retry_later(ota_agent_t *a, unsigned bits)
{
    if (bits != OTA_RETRY_LINGER || a->jobs_retry == 0u) {
        a->jobs_retry_at = a->now + a->dl.rto;
    }
    a->jobs_retry |= (uint8_t)bits;
}

static ota_err_t ota_ask_next_job(ota_agent_t *a)
{
    /* No answer within the retry timer (a lost request, a bridge not up yet):
     * asked again then (ota_agent_poll). */
    a->asking = 1;
    a->ask_at = a->now + a->dl.rto;
    if (ota_jobs_ask_next(&a->jobs) != OTA_OK) {
        ota_log(a, OTA_LOG_ERROR, "cannot ask for the next job", OTA_ERR_MQTT, 0, 0, NULL);
        return OTA_ERR_MQTT;
    }
    ota_log(a, OTA_LOG_DEBUG, "asked for the next job", OTA_OK, 0, 0, NULL);
    return OTA_OK;
}

/* Reports status with up to two statusDetails entries on the current job. */
static ota_err_t ota_report(ota_agent_t *a, const char *status, const char *k0, const char *v0,
                            const char *k1, const char *v1, uint8_t qos)
{
    if (status[0] != 'I') {
        /* SUCCEEDED or FAILED: the job's update/rejected stays subscribed for a
         * while, so that a throttled final update is seen and sent again. */
        ota_retry_later(a, OTA_RETRY_LINGER);
    }
    return ota_jobs_report(&a->jobs, a->job.job_id, status, k0, v0, k1, v1, qos);
}

/* ---- ending a job ---- */

/* Clears the port's progress record, if it keeps one, and forgets the loaded checkpoint. */
static void ota_clear_progress(ota_agent_t *a)
{
    ota_err_t err = ota_progress_clear(&a->progress, a->cfg.pal);
    if (err != OTA_OK) {
        ota_log(a, OTA_LOG_WARN, "cannot clear the progress record", err, 0, 0, NULL);
    }
}

/* 1 while a download runs or is suspended: the data plane is open. */
static int ota_downloading(const ota_agent_t *a)
{
    return a->state == OTA_AGENT_DOWNLOADING ||
           (a->state == OTA_AGENT_SUSPENDED && a->suspended_state == OTA_AGENT_DOWNLOADING);
}

/* Releases everything the current job holds: file, progress, subscriptions. */
static void ota_release_job(ota_agent_t *a, int discard_progress)
{
    const ota_pal_t *pal = a->cfg.pal;
    if (ota_downloading(a)) {
        OTA_JOB_PLANE(a)->close(a);
    }
    if (a->image_ready) {
        /* Verified but not activated: the port discards it. */
        ota_err_t err = pal->set_image_state(pal->ctx, OTA_IMAGE_STATE_ABORTED);
        if (err != OTA_OK) {
            ota_log(a, OTA_LOG_ERROR, "port cannot discard the image", err, 0, 0, NULL);
        }
        a->image_ready = 0;
        a->file_open = 1; /* and releases it, as an open file */
    }
    if (a->file_open) {
        ota_err_t err = pal->abort(pal->ctx);
        if (err != OTA_OK) {
            ota_log(a, OTA_LOG_ERROR, "port abort failed", err, 0, 0, NULL);
        }
        a->file_open = 0;
    }
    a->confirm_pending = 0;
    a->dl.paused = 0;
    if (discard_progress) {
        ota_clear_progress(a);
    }
    a->progress.loaded = 0;
    if ((a->jobs_retry & OTA_RETRY_LINGER) == 0u) {
        (void)ota_job_topic_sub(a, 0);
    }
    a->deadline_set = 0;
}

/* Calls one of the application's job callbacks, if it has it, with the current job. */
static void ota_tell(ota_agent_t *a, void (*callback)(void *ctx, const ota_job_t *job))
{
    if (callback != NULL) {
        a->in_callback++;
        callback(a->cfg.callbacks.ctx, &a->job);
        a->in_callback--;
    }
}

static void ota_outcome(ota_agent_t *a, ota_outcome_status_t status, ota_err_t err,
                        const char *reason, const char *detail)
{
    ota_agent_outcome_t o;
    if (a->cfg.callbacks.outcome == NULL) {
        return;
    }
    o.job_id = a->job.job_id;
    o.status = status;
    o.err = err;
    o.reason = reason != NULL ? reason : "";
    o.detail = detail != NULL ? detail : "";
    a->in_callback++;
    a->cfg.callbacks.outcome(a->cfg.callbacks.ctx, &o);
    a->in_callback--;
}

/* A short fingerprint of a job id (never 0). */
OTA_OUT_OF_LINE static uint32_t ota_job_mark(const char *job_id)
{
    return ota_crc32(0, job_id, strlen(job_id)) | 1u;
}

static void ota_forget_job(ota_agent_t *a)
{
    if (a->have_job) {
        /* Its outcome is reported: later copies of its document are stale. */
        a->finished_job = ota_job_mark(a->job.job_id);
    }
    a->have_job = 0;
    a->refusal_pending = 0;
    a->resumed = 0;
    a->restarted = 0;
    a->old_version_ok = 0;
    ota_set_state(a, OTA_AGENT_WAITING_JOB);
}

/* Builds a FreeRTOS-style reason for err into reason[32] and reports FAILED
 * with it and a detail. */
static void ota_report_failed(ota_agent_t *a, char *reason, ota_fail_kind_t kind, ota_err_t err,
                              uint32_t sub, const char *detail)
{
    char *p;
    /* "rejected: ", "aborted: " and "", 11 bytes apart in ota_fail_kind_t order. */
    static const char prefixes[] = "rejected: \0aborted: \0\0";
    strcpy(reason, prefixes + 11u * (unsigned)kind);
    p = ota_jobs_hex32(reason + strlen(reason), ota_err_pal_code(err));
    if (kind == OTA_FAIL_TRANSFER) {
        *p++ = ':';
        *p++ = ' ';
        (void)ota_jobs_hex32(p, sub);
    }
    if (ota_report(a, "FAILED", "reason", reason, "detail", detail, 1) != OTA_OK) {
        ota_log(a, OTA_LOG_ERROR, "cannot report the failure", OTA_ERR_MQTT, 0, 0, NULL);
    }
}

/* Reports FAILED with a reason and a detail, then releases the job. */
static void ota_fail_job(ota_agent_t *a, ota_fail_kind_t kind, ota_err_t err, uint32_t sub,
                         const char *detail)
{
    char reason[32];

    ota_log(a, OTA_LOG_ERROR, "job failed", err, sub, 0, detail);
    ota_report_failed(a, reason, kind, err, sub, detail);
    ota_release_job(a, 1);
    ota_outcome(a, OTA_OUTCOME_FAILED, err, reason, detail);
    ota_forget_job(a);
}

/* The service no longer names the job: drop it without a report. */
static void ota_abandon_job(ota_agent_t *a, const char *why)
{
    ota_log(a, OTA_LOG_WARN, "job canceled by the service", OTA_ERR_CANCELED, 0, 0, why);
    ota_release_job(a, 1);
    ota_outcome(a, OTA_OUTCOME_CANCELED, OTA_ERR_CANCELED, "canceled", why);
    ota_forget_job(a);
}

/* Reports SUCCEEDED with reason (and k1: v1), releases the job if release,
 * tells the application, forgets the job and asks for the next one. */
static ota_err_t ota_succeed(ota_agent_t *a, const char *reason, const char *k1, const char *v1,
                             int release)
{
    if (ota_report(a, "SUCCEEDED", "reason", reason, k1, v1, 1) != OTA_OK) {
        ota_log(a, OTA_LOG_ERROR, "cannot report success", OTA_ERR_MQTT, 0, 0, NULL);
    }
    if (release) {
        ota_release_job(a, 1);
    }
    ota_outcome(a, OTA_OUTCOME_SUCCEEDED, OTA_OK, reason, "");
    ota_forget_job(a);
    return ota_ask_next_job(a);
}

/* ---- downloading ---- */

#if OTA_HTTP_PLANE
static void ota_http_failed(ota_agent_t *a, ota_plane_poll_t why);
static int ota_failover(ota_agent_t *a, const char *why);
#endif

/* Sends the requests the download module plans, through the job's plane. */
static void ota_request_more(ota_agent_t *a)
{
    ota_block_request_t req;
    for (int first = 1; ota_download_plan(&a->dl, &req, first); first = 0) {
        ota_err_t err = OTA_JOB_PLANE(a)->request(a, &req);
        if (err == OTA_ERR_WRONG_STATE) {
            return; /* the plane's pipeline is full: planned again when a range is done */
        }
        ota_download_sent(&a->dl, &req, err == OTA_OK, a->now);
        if (err != OTA_OK) {
            ota_log(a, OTA_LOG_WARN, "block request not sent", err, req.offset, 0,
                    OTA_PLANE_NAME(a->plane));
#if OTA_HTTP_PLANE
            if (a->plane->poll != NULL) {
                ota_http_failed(a, OTA_PLANE_POLL_RETRY);
            }
#endif
            return;
        }
        ota_log(a, OTA_LOG_DEBUG, "requested blocks (up to, count)", OTA_OK, req.next, req.count,
                NULL);
    }
}

/* Starts a new round of requests from the first missing block. */
static void ota_new_round(ota_agent_t *a)
{
#if OTA_HTTP_PLANE
    if (a->plane->drop != NULL) {
        a->plane->drop(a);
    }
#endif
    ota_download_round(&a->dl);
    ota_request_more(a);
}

/* Carries a download on after a pause: downloading, the plane subscribed, a new round. */
static void ota_download_again(ota_agent_t *a)
{
    ota_set_state(a, OTA_AGENT_DOWNLOADING);
    (void)OTA_JOB_PLANE(a)->open(a);
    ota_new_round(a);
}

static void ota_send_progress(ota_agent_t *a)
{
    char fraction[24];
    (void)ota_jobs_dec(ota_jobs_dec(fraction, a->dl.blocks_done, '/'), a->dl.block_count, '\0');
#if OTA_HTTP_PLANE
    /* Which plane delivered how much (bytes of new blocks), and the one in use:
     * "planes": "mqtt=N,http=M,now=http". */
    char planes[48], *p = planes;
    memcpy(p, "mqtt=", 5);
    p = ota_jobs_dec(p + 5, a->stats.bytes_mqtt, ',');
    memcpy(p, "http=", 5);
    p = ota_jobs_dec(p + 5, a->stats.bytes_http, ',');
    memcpy(p, "now=", 4);
    memcpy(p + 4, a->plane->name, 5); /* "mqtt" or "http" and its NUL */
    if (ota_report(a, "IN_PROGRESS", "receive", fraction, "planes", planes, 0) != OTA_OK) {
#else
    if (ota_report(a, "IN_PROGRESS", "receive", fraction, NULL, NULL, 0) != OTA_OK) {
#endif
        ota_log(a, OTA_LOG_WARN, "progress update not sent", OTA_ERR_MQTT, 0, 0, NULL);
    }
    a->since_status = 0;
}

static void ota_checkpoint(ota_agent_t *a)
{
    ota_err_t err = ota_progress_save(a);
    if (err == OTA_OK) {
        a->stats.checkpoints++;
    } else {
        ota_log(a, OTA_LOG_WARN, "checkpoint not saved", err, a->dl.blocks_done, 0, NULL);
    }
    a->since_checkpoint = 0;
}

/* Opens the file for the current job: resume from the checkpoint or create.
 * @return 1, or 0 when the port cannot create it (the job failed). */
static int ota_open_file(ota_agent_t *a, int allow_resume)
{
    const ota_pal_t *pal = a->cfg.pal;
    uint8_t *bitmap = ota_progress_bitmap(&a->progress);
    uint32_t block_size = a->cfg.block_size;
    uint32_t count = ota_block_count(a->job.file_size, block_size);
    ota_pal_file_t file;
    ota_err_t err;

    ota_file_desc(a, &file);
    a->resumed = 0;
    if (OTA_LOG_LEVEL >= (int)OTA_LOG_WARN && pal->progress_save != NULL &&
        ota_progress_record_bytes(count) > pal->progress_capacity) {
        ota_log(a, OTA_LOG_WARN, "progress store too small: no checkpoints, a reset starts over",
                OTA_OK, ota_progress_record_bytes(count), pal->progress_capacity, NULL);
    }
    if (allow_resume && pal->resume_file != NULL &&
        ota_progress_matches(&a->progress, &a->job, block_size, count)) {
        err = pal->resume_file(pal->ctx, &file, block_size, bitmap, count);
        if (err == OTA_OK) {
            a->resumed = 1;
        } else {
            ota_log(a, OTA_LOG_WARN, "cannot resume; starting over", err, 0, 0, NULL);
        }
    }
    a->progress.loaded = 0;
    if (!a->resumed) {
        memset(bitmap, 0, (count + 7u) / 8u);
        err = pal->create_file(pal->ctx, &file);
        if (err != OTA_OK) {
            ota_fail_job(a, OTA_FAIL_ABORTED, err, 0, "the port cannot create the file");
            return 0;
        }
    }
    ota_download_begin(&a->dl, bitmap, a->job.file_size, block_size);
    if (a->resumed) {
        a->stats.blocks_resumed += a->dl.blocks_done;
        ota_log(a, OTA_LOG_INFO, "download resumed", OTA_OK, a->dl.blocks_done, count, NULL);
    }
    a->file_open = 1;
    /* The record now names this transfer, replacing any stale one. */
    ota_checkpoint(a);
    return 1;
}

static void ota_finish_download(ota_agent_t *a);

/* Does the job name this device's type, or no types at all? */
static int ota_job_for_this_type(const ota_agent_t *a, const ota_job_t *job)
{
    if (a->device_type_tag == 0u || job->n_device_types == 0u) {
        return 1;
    }
    for (uint8_t i = 0; i < job->n_device_types; i++) {
        if (job->device_type_tags[i] == a->device_type_tag) {
            return 1;
        }
    }
    return 0;
}

static void ota_start_job(ota_agent_t *a, const ota_job_t *job)
{
    const ota_pal_t *pal = a->cfg.pal;
    uint32_t count;
    ota_err_t err;
    const char *why = NULL;

    ota_take_job(a, job);
    a->resumed = 0;
    a->restarted = 0;
    a->activating = 0;
#if OTA_HTTP_PLANE
    a->stats.bytes_mqtt = 0;
    a->stats.bytes_http = 0;
    a->stats.http_bytes = 0;
    a->stats.failovers = 0;
    a->stats.url_renewals = 0;
    a->switches = 0;
    a->http.url_wait = 0;
    a->http.failures = 0;
    a->http.part_len = 0;
#endif
    a->plane = ota_data_plane_for(a, NULL);
    count = ota_block_count(job->file_size, a->cfg.block_size);
    ota_log(a, OTA_LOG_INFO, "job accepted", OTA_OK, job->file_size, count, job->stream);
    /* The refusals before anything is downloaded, in this order. */
    err = OTA_ERR_RX_FILE_TOO_LARGE;
    if (!ota_job_for_this_type(a, job)) {
        err = OTA_ERR_WRONG_DEVICE_TYPE;
        why = "the job is for other device types";
    } else if (a->plane == NULL) {
        err = OTA_ERR_UNSUPPORTED;
        why = "no data plane for the protocols";
    } else if (job->file_size > pal->max_file_size) {
        why = "file too large for the slot";
    } else if (count > OTA_MAX_FILE_BLOCKS) {
        why = "too many blocks (OTA_MAX_FILE_BLOCKS)";
    }
    if (why != NULL) {
        ota_fail_job(a, OTA_FAIL_REJECTED, err, 0, why);
        return;
    }
    if (ota_job_topic_sub(a, 1) != OTA_OK) {
        ota_log(a, OTA_LOG_WARN, "cannot subscribe to the job's update/rejected", OTA_ERR_MQTT, 0,
                0, NULL);
    }
    if (!ota_open_file(a, 1)) {
        return;
    }
    ota_tell(a, a->cfg.callbacks.job_received);
    ota_set_state(a, OTA_AGENT_DOWNLOADING);
    ota_log(a, OTA_LOG_INFO, "data plane", OTA_OK, 0, 0, OTA_PLANE_NAME(a->plane));
    if (OTA_JOB_PLANE(a)->open(a) != OTA_OK) {
        ota_log(a, OTA_LOG_WARN, "cannot open the data plane", OTA_ERR_MQTT, 0, 0,
                OTA_PLANE_NAME(a->plane));
#if OTA_HTTP_PLANE
        if (a->plane->poll != NULL) {
            ota_http_failed(a, OTA_PLANE_POLL_REFUSED);
            return;
        }
#endif
    }
    a->since_checkpoint = 0;
    a->since_status = a->cfg.status_every_blocks; /* report the first block */
    if (ota_download_complete(&a->dl)) {
        ota_finish_download(a);
        return;
    }
    ota_new_round(a);
}

/* Notes a message that could not be decoded. */
static void ota_bad_message(ota_agent_t *a, const char *what, ota_err_t err)
{
    a->stats.bad_messages++;
    ota_log(a, OTA_LOG_WARN, what, err, 0, 0, NULL);
}

/* Writes bytes at..at + len - 1 of block index (all of them new to the port). */
static int ota_write(ota_agent_t *a, uint32_t index, uint32_t at, const uint8_t *data, uint32_t len)
{
    const ota_pal_t *pal = a->cfg.pal;
    int32_t written = pal->write_block(pal->ctx, index * a->dl.block_size + at, data, len);
    if (written != (int32_t)len) {
        ota_err_t err = written < 0 ? (ota_err_t)written : OTA_ERR_IO;
        ota_fail_job(a, OTA_FAIL_TRANSFER, err, index, "the port cannot write");
        return 0;
    }
    return 1;
}

/* Block index is written whole: account, checkpoint, report, go on. */
static void ota_block_done(ota_agent_t *a, uint32_t index)
{
#if OTA_HTTP_PLANE
    uint32_t len = ota_download_block_len(&a->dl, index);
    if (a->plane->poll != NULL) {
        a->stats.bytes_http += len;
    } else {
        a->stats.bytes_mqtt += len;
    }
    a->switches = 0;
    a->http.failures = 0;
    if (a->http.part_block == index) {
        a->http.part_len = 0;
    }
#endif
    ota_download_written(&a->dl, index, a->now);
    if (++a->since_checkpoint >= a->cfg.checkpoint_every_blocks) {
        ota_checkpoint(a);
    }
    /* Progress at least every eighth of the file, at most status_every_blocks apart. */
    if (++a->since_status >= a->cfg.status_every_blocks ||
        a->since_status > a->dl.block_count >> 3) {
        ota_send_progress(a);
    }
#if OTA_HTTP_PLANE
    if (a->http.in_poll) {
        return; /* the client is mid-answer: the agent goes on after its poll */
    }
#endif
    if (ota_download_complete(&a->dl)) {
        ota_finish_download(a);
    } else {
        ota_request_more(a);
    }
}

/* A block from the data plane: check, write to the port, account, checkpoint. */
static void ota_on_block(ota_agent_t *a, const ota_plane_event_t *ev)
{
    ota_block_check_t check = ev->file_id == a->job.file_id
                                  ? ota_download_check(&a->dl, ev->index, ev->len)
                                  : OTA_BLOCK_BAD;
    uint32_t skip = 0;

    if (check == OTA_BLOCK_BAD) {
        ota_bad_message(a, "block of another file, beyond the file or of the wrong length",
                        OTA_ERR_BAD_MESSAGE);
        return;
    }
    if (check == OTA_BLOCK_DUPLICATE) {
        return;
    }
#if OTA_HTTP_PLANE
    /* The HTTP plane wrote its first bytes already: the port gets each byte once. */
    if (a->http.part_len != 0u && a->http.part_block == ev->index) {
        skip = a->http.part_len;
    }
#endif
    if (ota_write(a, ev->index, skip, ev->data + skip, (uint32_t)ev->len - skip)) {
        ota_block_done(a, ev->index);
    }
}

#if OTA_HTTP_PLANE
ota_err_t ota_agent_bytes(ota_agent_t *a, uint32_t offset, const uint8_t *data, size_t len)
{
    ota_http_plane_t *h = &a->http;
    while (len > 0u) {
        uint32_t k = offset / a->dl.block_size;
        uint32_t at = offset - k * a->dl.block_size;
        uint32_t blen = k < a->dl.block_count ? ota_download_block_len(&a->dl, k) : 0u;
        uint32_t n = blen - at < len ? blen - at : (uint32_t)len;
        uint32_t have = h->part_len != 0u && h->part_block == k ? h->part_len : 0u;

        if (a->state != OTA_AGENT_DOWNLOADING || a->plane != &ota_data_plane_http) {
            return OTA_ERR_WRONG_STATE; /* the job ended, or failed over */
        }
        if (blen == 0u) {
            return OTA_ERR_BAD_MESSAGE; /* the client checked the range: cannot happen */
        }
        if ((((unsigned)a->dl.done[k / 8u] >> (k % 8u)) & 1u) == 0u) {
            if (at > have) {
                /* The block's start went missing: write nothing of it now. */
            } else if (at + n > have) {
                if (!ota_write(a, k, have, data + (have - at), at + n - have)) {
                    return OTA_ERR_IO;
                }
                h->part_block = k;
                h->part_len = at + n;
                if (at + n == blen) {
                    ota_block_done(a, k);
                }
            }
        } else if (at == 0u) {
            a->stats.blocks_duplicate++;
        }
        offset += n;
        data += n;
        len -= n;
    }
    return OTA_OK;
}
#endif

/* Reports "self_test": stage ("ready", "active") with this image's version. */
static void ota_report_self_test(ota_agent_t *a, const char *stage)
{
    char version[11];
    (void)ota_jobs_hex32(version, a->cfg.app_version);
    if (ota_report(a, "IN_PROGRESS", "self_test", stage, "updatedBy", version, 1) != OTA_OK) {
        ota_log(a, OTA_LOG_ERROR, "cannot report self_test", OTA_ERR_MQTT, 0, 0, stage);
    }
}

/* Activating: the service is to name the job again, and the reset delay to pass. */
OTA_OUT_OF_LINE static void ota_await_confirmation(ota_agent_t *a)
{
    ota_set_state(a, OTA_AGENT_ACTIVATING);
    a->confirm_pending = 1;
    a->confirm_tries = 0;
    a->ready_unrecorded = 0;
    ota_set_deadline(a, a->cfg.reset_delay_ms);
}

static void ota_finish_download(ota_agent_t *a)
{
    const ota_pal_t *pal = a->cfg.pal;
    ota_pal_file_t file;
    ota_err_t err;

    OTA_JOB_PLANE(a)->close(a);
    a->dl.deadline_set = 0;
    if (a->since_checkpoint != 0u) {
        ota_checkpoint(a);
    }
    if (a->since_status != 0u) {
        ota_send_progress(a);
    }
    ota_file_desc(a, &file);
    err = pal->close_file(pal->ctx, &file);
    a->file_open = 0;
    if (err != OTA_OK && a->resumed && !a->restarted) {
        /* A cut during the resume's own erase can leave trusted blocks
         * half-erased; the signature caught it. Start over once. */
        ota_log(a, OTA_LOG_WARN, "resumed file failed verification; downloading it again", err, 0,
                0, NULL);
        a->restarted = 1;
        if (ota_open_file(a, 0)) {
            ota_download_again(a);
        }
        return;
    }
    if (err != OTA_OK) {
        (void)pal->set_image_state(pal->ctx, OTA_IMAGE_STATE_REJECTED);
        ota_fail_job(a, OTA_FAIL_TRANSFER, err, 0,
                     err == OTA_ERR_SIGNATURE_CHECK_FAILED ? "signature check failed"
                     : err == OTA_ERR_BAD_SIGNER_CERT      ? "signer certificate unusable"
                                                           : "the port cannot close the file");
        return;
    }
    /* The complete checkpoint stays until the new image is committed or
     * rejected: a cut before activation then resumes with nothing to fetch. */
    ota_log(a, OTA_LOG_INFO, "file verified", OTA_OK, a->job.file_size, 0, NULL);
    if (a->job.file_type != 0u) {
        /* A data file: no activation, no self-test. */
        (void)ota_succeed(a, "accepted", NULL, NULL, 1);
        return;
    }
    /* Activation waits for the reset delay (the status goes out first) and
     * for the service to name the job again: a cancel that raced the last
     * blocks or the verification is seen before anything is activated. */
    ota_tell(a, a->cfg.callbacks.verified);
    a->image_ready = 1;
    ota_await_confirmation(a);
    ota_report_self_test(a, "ready");
    (void)ota_ask_next_job(a);
}

/* The data plane's service refused a request: throttled -> back off; otherwise
 * fail the job with its code, once the service says the job is still ours. */
static void ota_on_refused(ota_agent_t *a, const char *code, size_t code_len)
{
    static const char prefix[] = "stream request refused: ";
    if (a->refusal_pending) {
        return;
    }
#if OTA_HTTP_PLANE
    /* Throttled or refused on MQTT: the job's HTTP URL may still serve. */
    ota_copy_safe(a->detail, 48, code, code_len);
    if (ota_failover(a, a->detail)) {
        return;
    }
#endif
    if (code_len == sizeof ota_throttled_code - 1u &&
        memcmp(code, ota_throttled_code, code_len) == 0) {
        ota_download_throttled(&a->dl, a->now);
        ota_log(a, OTA_LOG_WARN, "throttled by the service; backing off", OTA_OK, a->dl.rto, 0,
                NULL);
        return;
    }
    strcpy(a->detail, prefix);
    ota_copy_safe(a->detail + sizeof prefix - 1u, 48, code, code_len);
    /* A job canceled a moment ago is refused too: before reporting a
     * failure, ask whether the job is still ours (the answer decides:
     * gone -> canceled; still there -> FAILED with the service's reason). */
    a->refusal_pending = 1;
    a->dl.paused = 1;
    ota_set_deadline(a, a->dl.rto);
    if (ota_ask_next_job(a) != OTA_OK) {
        ota_fail_job(a, OTA_FAIL_TRANSFER, OTA_ERR_SERVICE_REJECTED, 0, a->detail);
    }
}

#if OTA_HTTP_PLANE
/*
 * Continue the download on the other plane the job lists, from the same
 * bitmap. Refused when there is none, or when both planes were tried since
 * the last new block. @return 1 if switched.
 */
static int ota_failover(ota_agent_t *a, const char *why)
{
    const ota_data_plane_t *other = ota_data_plane_for(a, a->plane);
    if (other == NULL || a->switches >= 2u) {
        return 0;
    }
    ota_log(a, OTA_LOG_WARN, "data plane failing over", OTA_OK, a->dl.blocks_done,
            a->dl.block_count, why);
    OTA_JOB_PLANE(a)->close(a);
    a->plane = other;
    a->switches++;
    a->stats.failovers++;
    a->http.url_wait = 0;
    a->http.failures = 0;
    a->dl.paused = 0;
    a->dl.throttled = 0;
    a->refusal_pending = 0;
    a->deadline_set = 0;
    ota_log(a, OTA_LOG_INFO, "data plane", OTA_OK, a->dl.blocks_done, a->dl.block_count,
            other->name);
    if (other->open(a) != OTA_OK) {
        if (other->poll != NULL) {
            ota_http_failed(a, OTA_PLANE_POLL_REFUSED);
            return 1;
        }
        ota_log(a, OTA_LOG_WARN, "cannot open the data plane", OTA_ERR_MQTT, 0, 0, other->name);
    }
    ota_new_round(a);
    return 1;
}

/* The HTTP plane failed (why): ask again, back off, renew the URL or fail over. */
static void ota_http_failed(ota_agent_t *a, ota_plane_poll_t why)
{
    ota_http_plane_t *h = &a->http;
    const char *what = ota_data_http_error(a);

    ota_log(a, OTA_LOG_WARN, "HTTP plane failure", OTA_ERR_SERVICE_REJECTED, h->c.info.last_status,
            h->c.info.last_first, what);
    if (why == OTA_PLANE_POLL_EXPIRED && !h->fresh) {
        /* 403: the URL expired; the job document brings a fresh one. */
        h->url_wait = 1;
        a->dl.paused = 1;
        a->deadline_set = 1;
        a->deadline = a->now + a->dl.rto;
        if (ota_ask_next_job(a) == OTA_OK) {
            return;
        }
        h->url_wait = 0;
        a->dl.paused = 0;
    }
    if ((why == OTA_PLANE_POLL_RETRY || why == OTA_PLANE_POLL_BACK_OFF) &&
        ++h->failures < OTA_FAILOVER_AFTER) {
        /* wait a doubled timer, then ask again from the bitmap */
        ota_download_throttled(&a->dl, a->now);
        return;
    }
    if (ota_failover(a, what)) {
        return;
    }
    if ((why == OTA_PLANE_POLL_RETRY || why == OTA_PLANE_POLL_BACK_OFF) &&
        h->failures <= a->cfg.max_timeouts) {
        /* No other plane: wait and ask again, as for a timeout. */
        ota_download_throttled(&a->dl, a->now);
        return;
    }
    memcpy(a->detail, "HTTP: ", 6);
    ota_copy_safe(a->detail + 6, 48, what, strlen(what));
    ota_fail_job(a, OTA_FAIL_TRANSFER, OTA_ERR_SERVICE_REJECTED, h->c.info.last_status, a->detail);
}

/* The job document came again while a fresh URL was awaited. */
static void ota_http_renewed(ota_agent_t *a, const ota_job_t *job)
{
    a->http.url_wait = 0;
    a->dl.paused = 0;
    a->deadline_set = 0;
    if (job->url[0] == '\0' || strcmp(job->url, a->job.url) == 0) {
        ota_http_failed(a, OTA_PLANE_POLL_REFUSED); /* no fresh URL */
        return;
    }
    memcpy(a->job.url, job->url, sizeof a->job.url);
    a->stats.url_renewals++;
    if (ota_data_plane_http.open(a) != OTA_OK) {
        ota_http_failed(a, OTA_PLANE_POLL_REFUSED);
        return;
    }
    a->http.fresh = 1;
    ota_log(a, OTA_LOG_INFO, "fresh URL; continuing", OTA_OK, a->dl.blocks_done, a->dl.block_count,
            NULL);
    ota_new_round(a);
}

/* The HTTP plane's stream: read, then go on from what arrived. */
static void ota_poll_plane(ota_agent_t *a)
{
    ota_plane_poll_t r;
    if (ota_download_complete(&a->dl)) {
        /* Finished in the last poll: the next steps (activation delay) count
         * from this call's time, not from before the last one's port writes. */
        ota_finish_download(a);
        return;
    }
    a->http.in_poll = 1;
    r = a->plane->poll(a);
    a->http.in_poll = 0;
    if (a->state != OTA_AGENT_DOWNLOADING || a->plane->poll == NULL ||
        ota_download_complete(&a->dl)) {
        return;
    }
    if (r != OTA_PLANE_POLL_OK) {
        ota_http_failed(a, r);
    } else if (!a->http.url_wait) {
        ota_request_more(a);
    }
}
#endif

/* ---- self-test ---- */

static void ota_schedule_reset(ota_agent_t *a)
{
    ota_set_state(a, OTA_AGENT_RESETTING);
    ota_set_deadline(a, a->cfg.reset_delay_ms);
}

/* Rejects the image under test, reports FAILED and resets into the old image. */
static void ota_reject_new_image(ota_agent_t *a, ota_err_t err, const char *detail)
{
    const ota_pal_t *pal = a->cfg.pal;
    char reason[32];
    ota_err_t serr;

    ota_log(a, OTA_LOG_ERROR, "new image rejected", err, 0, 0, detail);
    if (a->have_job) {
        ota_report_failed(a, reason, OTA_FAIL_REJECTED, err, 0, detail);
    }
    serr = pal->set_image_state(pal->ctx, OTA_IMAGE_STATE_REJECTED);
    if (serr != OTA_OK) {
        ota_log(a, OTA_LOG_ERROR, "port cannot reject the image", serr, 0, 0, NULL);
    }
    ota_clear_progress(a);
    if (a->have_job) {
        ota_outcome(a, OTA_OUTCOME_FAILED, err, reason, detail);
    }
    ota_schedule_reset(a);
}

static void ota_on_self_test_job(ota_agent_t *a, const ota_job_t *job)
{
    const ota_pal_t *pal = a->cfg.pal;
    int pending = pal->get_image_state(pal->ctx) == OTA_PAL_IMAGE_STATE_PENDING_COMMIT;
    char reason[32];

    if (a->state == OTA_AGENT_SELF_TEST && a->have_job && strcmp(job->job_id, a->job.job_id) == 0) {
        return; /* the same job again while the test runs */
    }
    if (!pending) {
        uint32_t count = ota_block_count(job->file_size, a->cfg.block_size);
        if (ota_progress_matches(&a->progress, job, a->cfg.block_size, count) &&
            !ota_progress_activating(&a->progress)) {
            /* Verified, "ready" reported, but power failed before activation:
             * finish the transfer from the checkpoint and activate. */
            ota_log(a, OTA_LOG_INFO, "activation was interrupted; finishing it", OTA_OK, 0, 0,
                    NULL);
            ota_start_job(a, job);
            return;
        }
    }
    ota_take_job(a, job);
    if (!pending) {
        /* The old image runs: the new one never started, crashed, or was reverted. */
        const char *detail = "new image did not run; old one runs";
        ota_log(a, OTA_LOG_ERROR, "update did not take", OTA_ERR_VERSION, a->cfg.app_version,
                job->updated_by, detail);
        ota_report_failed(a, reason, OTA_FAIL_REJECTED, OTA_ERR_VERSION, 0, detail);
        ota_clear_progress(a);
        ota_outcome(a, OTA_OUTCOME_FAILED, OTA_ERR_VERSION, reason, detail);
        ota_forget_job(a);
        return;
    }
    if (job->self_test == OTA_SELF_TEST_NONE) {
        /* A document from before this device reported "ready": an answer
         * delayed past the reset. Ask again after the retry timer; the
         * self-test deadline still runs. */
        ota_log(a, OTA_LOG_WARN, "job document from before the self-test step", OTA_OK, 0, 0, NULL);
        a->asking = 1;
        return;
    }
    if (!job->has_updated_by) {
        ota_reject_new_image(a, OTA_ERR_VERSION, "no updatedBy in the job");
        return;
    }
    if (a->cfg.app_version > job->updated_by ||
        (job->self_test == OTA_SELF_TEST_ACTIVE && a->cfg.app_version == job->updated_by)) {
        a->old_version_ok = job->self_test == OTA_SELF_TEST_READY;
        a->old_version = job->updated_by;
        if (!a->old_version_ok) {
            /* A reset during the self-test: "active" carries this image's
             * version; the checkpoint still names the one that downloaded. */
            a->old_version_ok =
                (uint8_t)ota_progress_downloaded_by(&a->progress, job, &a->old_version);
        }
        (void)ota_job_topic_sub(a, 1);
        ota_report_self_test(a, "active");
        ota_set_state(a, OTA_AGENT_SELF_TEST);
        ota_tell(a, a->cfg.callbacks.self_test);
        return;
    }
    ota_reject_new_image(a, OTA_ERR_VERSION,
                         a->cfg.app_version == job->updated_by ? "new image has the same version"
                                                               : "new image is older (downgrade)");
}

/* ---- jobs messages ---- */

static void ota_on_job(ota_agent_t *a, const ota_job_t *job)
{
    if (ota_status_terminal(job->status)) {
        if (a->have_job && (a->state == OTA_AGENT_DOWNLOADING || a->file_open) &&
            strcmp(job->job_id, a->job.job_id) == 0) {
            ota_abandon_job(a, "the service ended the job");
        }
        ota_log(a, OTA_LOG_DEBUG, "job already finished", OTA_OK, 0, 0, job->job_id);
        return;
    }
    if (a->state == OTA_AGENT_ACTIVATING || a->state == OTA_AGENT_RESETTING) {
        return; /* a reset follows; the job comes back after it */
    }
    if (a->state == OTA_AGENT_SELF_TEST && strcmp(job->job_id, a->job.job_id) != 0) {
        /* The test under way decides; other jobs come back after it. */
        ota_log(a, OTA_LOG_WARN, "another job during the self-test: later", OTA_OK, 0, 0,
                job->job_id);
        return;
    }
    if (job->self_test != OTA_SELF_TEST_NONE || a->state == OTA_AGENT_WAITING_SELF_TEST ||
        a->state == OTA_AGENT_SELF_TEST) {
        if (a->have_job && a->state == OTA_AGENT_DOWNLOADING) {
            ota_abandon_job(a, "another job is next");
        }
        ota_on_self_test_job(a, job);
        return;
    }
    if (a->have_job) {
#if OTA_HTTP_PLANE
        if (ota_same_file(&a->job, job) && a->http.url_wait && a->state == OTA_AGENT_DOWNLOADING) {
            ota_http_renewed(a, job);
            return;
        }
#endif
        if (ota_same_file(&a->job, job) && a->refusal_pending) {
            /* Still our job, yet the service refused its blocks. */
            ota_fail_job(a, OTA_FAIL_TRANSFER, OTA_ERR_SERVICE_REJECTED, 0, a->detail);
            return;
        }
        if (ota_same_file(&a->job, job)) {
            if (a->state == OTA_AGENT_WAITING_JOB && a->file_open) {
                /* Stopped or reconnected earlier: carry on. */
                (void)ota_job_topic_sub(a, 1);
                ota_download_again(a);
            }
            ota_log(a, OTA_LOG_DEBUG, "same job again: continuing", OTA_OK, a->dl.blocks_done,
                    a->dl.block_count, NULL);
            return;
        }
        ota_abandon_job(a, "another job is next");
    }
    ota_start_job(a, job);
}

static void ota_on_unusable_job(ota_agent_t *a, ota_err_t err, const ota_job_issue_t *issue)
{
    const ota_job_t *job = &a->scratch_job;

    if (ota_status_terminal(job->status)) {
        return;
    }
    if (a->state == OTA_AGENT_SELF_TEST && strcmp(job->job_id, a->job.job_id) != 0) {
        ota_log(a, OTA_LOG_WARN, "another job during the self-test: later", err, 0, 0, job->job_id);
        return;
    }
    if (a->have_job) {
        if (strcmp(job->job_id, a->job.job_id) != 0) {
            ota_abandon_job(a, "another job is next");
        } else {
            ota_release_job(a, 1);
        }
    }
    ota_take_job(a, job);
    /* "job document: <problem> (<field>)": the problem texts and field names
     * are the parser's short static strings, so this fits a->detail. */
    strcpy(a->detail, "job document: ");
    strcat(a->detail, ota_job_problem_str(issue->problem));
    if (issue->field != NULL) {
        strcat(a->detail, " (");
        strcat(a->detail, issue->field);
        strcat(a->detail, ")");
    }
    ota_fail_job(a, OTA_FAIL_REJECTED, err, (uint32_t)issue->problem, a->detail);
}

/* A jobs message while the verified image waits for activation: the job
 * named again confirms it; anything else says it is over (canceled, removed,
 * timed out, replaced), and the image is discarded. */
static void ota_check_before_activation(ota_agent_t *a, ota_err_t err)
{
    const ota_job_t *job = &a->scratch_job;
    int named = err == OTA_OK || err == OTA_ERR_BAD_JOB_DOC || err == OTA_ERR_UNSUPPORTED;
    int ours = named && strcmp(job->job_id, a->job.job_id) == 0;

    if (ours && !ota_status_terminal(job->status)) {
        if (a->confirm_pending && job->self_test != OTA_SELF_TEST_READY) {
            /* The job is ours, but the service has not recorded "ready" (the update
             * was lost, e.g. with a broker that died): after the reset the new image
             * would find no self-test step. Say it again now, once; the timer asks
             * again (and says it again) until an answer shows it. */
            if (!a->ready_unrecorded) {
                a->ready_unrecorded = 1;
                ota_report_self_test(a, "ready");
            }
            return;
        }
        if (a->confirm_pending) {
            if (a->confirm_pending == 2u) {
                ota_set_deadline(a, 0); /* the reset delay is over: activate now */
            }
            a->confirm_pending = 0;
            ota_log(a, OTA_LOG_INFO, "the service confirmed the job", OTA_OK, 0, 0, NULL);
        }
        return;
    }
    if (!named && err != OTA_ERR_NOT_FOUND) {
        ota_bad_message(a, "unusable jobs message", err);
        return;
    }
    ota_abandon_job(a, ours                       ? "the service ended the job"
                       : err == OTA_ERR_NOT_FOUND ? "the service names no job"
                                                  : "another job is next");
    if (!ours && err != OTA_ERR_NOT_FOUND) {
        (void)ota_ask_next_job(a); /* start the next job with a fresh answer */
    }
}

static void ota_on_jobs_message(ota_agent_t *a, const uint8_t *payload, size_t len)
{
    ota_job_issue_t issue;
    ota_err_t err = ota_job_parse((const char *)payload, len, &a->scratch_job, &issue);
    if ((err == OTA_OK || err == OTA_ERR_BAD_JOB_DOC || err == OTA_ERR_UNSUPPORTED) &&
        a->finished_job != 0u && ota_job_mark(a->scratch_job.job_id) == a->finished_job) {
        /* A duplicate or late copy (the service may repeat an execution on
         * notify-next) of the job this boot already reported. */
        ota_log(a, OTA_LOG_DEBUG, "job already reported here", OTA_OK, 0, 0, a->scratch_job.job_id);
        return;
    }
    if (a->state == OTA_AGENT_ACTIVATING) {
        ota_check_before_activation(a, err);
        return;
    }
    switch (err) {
    case OTA_OK:
        ota_on_job(a, &a->scratch_job);
        break;
    case OTA_ERR_NOT_FOUND:
        if (a->have_job && (a->state == OTA_AGENT_DOWNLOADING || a->file_open)) {
            ota_abandon_job(a, "the service names no job");
        } else if (a->state == OTA_AGENT_WAITING_SELF_TEST) {
            /* The job that brought the new image is over: revert now. */
            ota_reject_new_image(a, OTA_ERR_CANCELED, "no job for the new image");
        } else {
            ota_log(a, OTA_LOG_INFO, "no job pending", OTA_OK, 0, 0, NULL);
        }
        break;
    case OTA_ERR_BAD_JOB_DOC:
    case OTA_ERR_UNSUPPORTED:
        if (a->state == OTA_AGENT_ACTIVATING || a->state == OTA_AGENT_RESETTING) {
            break;
        }
        {
            int pending =
                a->state == OTA_AGENT_WAITING_SELF_TEST || a->state == OTA_AGENT_SELF_TEST;
            ota_on_unusable_job(a, err, &issue);
            if (pending && a->state == OTA_AGENT_WAITING_JOB) {
                /* The new image still waits for its job; its deadline still runs. */
                ota_set_state(a, OTA_AGENT_WAITING_SELF_TEST);
            }
        }
        break;
    default:
        ota_bad_message(a, "unusable jobs message", err);
        break;
    }
}

/* A refusal of $next/get (next 1) or of one of the job's status updates
 * (next 0): throttled -> back off, then the request again after a doubled
 * timer; a code that says the job is over -> the job is abandoned. */
static void ota_on_jobs_refusal(ota_agent_t *a, int next, const uint8_t *payload, size_t len)
{
    /* The codes that say the job is over, one after the other. */
    static const char over[] = "TerminalStateReached\0InvalidStateTransition\0ResourceNotFound";
    if (ota_jobs_refusal_is(payload, len, ota_throttled_code)) {
        uint32_t rto = ota_download_back_off(&a->dl);
        a->stats.throttled++;
        ota_log(a, OTA_LOG_WARN, "throttled by the service; backing off", OTA_OK, rto, 0, NULL);
        ota_retry_later(a, next ? OTA_RETRY_NEXT : OTA_RETRY_REPORT);
        return;
    }
    if (next) {
        ota_log(a, OTA_LOG_WARN, "the service refused $next/get", OTA_ERR_SERVICE_REJECTED, 0, 0,
                NULL);
        return;
    }
    for (const char *code = over; code < over + sizeof over; code += strlen(code) + 1u) {
        if (ota_jobs_refusal_is(payload, len, code)) {
            if (a->state == OTA_AGENT_DOWNLOADING || a->file_open || a->image_ready) {
                ota_abandon_job(a, "update refused: the job is over");
            }
            return;
        }
    }
    ota_log(a, OTA_LOG_WARN, "status update refused", OTA_ERR_SERVICE_REJECTED, 0, 0, NULL);
}

/* ---- public calls ---- */

/* 1 if agent is NULL or was never initialised. */
static int ota_bad_agent(const ota_agent_t *agent)
{
    return agent == NULL || agent->cfg.pal == NULL;
}

/* States as bits, for the states a public call is allowed in. */
#define OTA_IN(state) (1u << (unsigned)(state))
#define OTA_IN_ANY ((1u << (unsigned)OTA_AGENT_STATE_COUNT) - 1u)
#define OTA_IN_RUNNING (OTA_IN_ANY & ~(OTA_IN(OTA_AGENT_STOPPED) | OTA_IN(OTA_AGENT_SUSPENDED)))

/* Calls allowed from inside an application callback (the agent is in the
 * middle of a step, which would undo or trip over anything else). */
#define OTA_IN_CALLBACK_OK (1u << 31)

/* The checks a public call starts with: an initialised agent in one of the
 * allowed states (OTA_IN bits), not inside a callback unless OTA_IN_CALLBACK_OK. */
static ota_err_t ota_call_allowed(const ota_agent_t *agent, unsigned allowed)
{
    if (ota_bad_agent(agent)) {
        return OTA_ERR_INVALID_ARG;
    }
    if (agent->in_callback != 0u && (allowed & OTA_IN_CALLBACK_OK) == 0u) {
        return OTA_ERR_WRONG_STATE;
    }
    return ((allowed >> (unsigned)agent->state) & 1u) != 0u ? OTA_OK : OTA_ERR_WRONG_STATE;
}

static int ota_thing_name_ok(const char *name)
{
    size_t n;
    if (name == NULL) {
        return 0;
    }
    n = strlen(name);
    if (n == 0u || n > OTA_THING_NAME_MAX) {
        return 0;
    }
    return strpbrk(name, "/+#") == NULL;
}

static int ota_pal_ok(const ota_pal_t *pal)
{
    if (pal == NULL) {
        return 0;
    }
    /* The progress store: all four operations and a capacity, or none of them. */
    unsigned progress =
        (unsigned)(pal->progress_save != NULL) + (unsigned)(pal->progress_load != NULL) +
        (unsigned)(pal->progress_clear != NULL) + (unsigned)(pal->resume_file != NULL);
    return pal->create_file != NULL && pal->write_block != NULL && pal->close_file != NULL &&
           pal->abort != NULL && pal->activate != NULL && pal->reset != NULL &&
           pal->set_image_state != NULL && pal->get_image_state != NULL &&
           (progress == 0u || (progress == 4u && pal->progress_capacity != 0u));
}

/* The numbers of ota_agent_config_t, block_size .. reset_delay_ms, are
 * consecutive uint32_t fields; their defaults in that order (window_blocks:
 * below, it depends on the block size). */
#define OTA_CFG_NUMBERS 10u
typedef char ota_cfg_numbers_consecutive[offsetof(ota_agent_config_t, reset_delay_ms) -
                                                     offsetof(ota_agent_config_t, block_size) ==
                                                 4u * (OTA_CFG_NUMBERS - 1u)
                                             ? 1
                                             : -1];
static const uint32_t ota_cfg_defaults[OTA_CFG_NUMBERS] = {
    OTA_DEFAULT_BLOCK_SIZE,
    0,
    OTA_DEFAULT_RTO_INITIAL_MS,
    OTA_DEFAULT_RTO_MIN_MS,
    OTA_DEFAULT_RTO_MAX_MS,
    OTA_DEFAULT_MAX_TIMEOUTS,
    OTA_DEFAULT_SELF_TEST_TIMEOUT_MS,
    OTA_DEFAULT_STATUS_EVERY_BLOCKS,
    OTA_DEFAULT_CHECKPOINT_EVERY_BLOCKS,
    OTA_DEFAULT_RESET_DELAY_MS,
};

ota_err_t ota_agent_init_sized(ota_agent_t *agent, const ota_agent_config_t *config,
                               size_t agent_size, size_t config_size)
{
    ota_agent_config_t c;
    uint8_t *num = (uint8_t *)&c + offsetof(ota_agent_config_t, block_size);
    if (agent_size != sizeof *agent || config_size != sizeof *config || agent == NULL ||
        config == NULL || !ota_thing_name_ok(config->thing_name) || !ota_pal_ok(config->pal) ||
        config->mqtt.subscribe == NULL || config->mqtt.unsubscribe == NULL ||
        config->mqtt.publish == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    c = *config;
    for (size_t i = 0; i < OTA_CFG_NUMBERS; i++) {
        uint32_t v;
        memcpy(&v, num + 4u * i, 4);
        if (v == 0u) {
            memcpy(num + 4u * i, &ota_cfg_defaults[i], 4);
        }
    }
    if (c.block_size < 256u || c.block_size > OTA_REQUEST_BYTES_MAX ||
        (c.pal->block_align > 1u && c.block_size % c.pal->block_align != 0u)) {
        return OTA_ERR_INVALID_ARG;
    }
    if (c.window_blocks == 0u) {
        c.window_blocks = OTA_DEFAULT_WINDOW_BLOCKS;
        if (c.window_blocks > OTA_REQUEST_BYTES_MAX / c.block_size) {
            c.window_blocks = OTA_REQUEST_BYTES_MAX / c.block_size;
        }
    }
    if (c.window_blocks > 255u) {
        return OTA_ERR_INVALID_ARG;
    }
    if (c.rto_min_ms > c.rto_initial_ms || c.rto_initial_ms > c.rto_max_ms ||
        c.rto_max_ms > 0x40000000u) {
        return OTA_ERR_INVALID_ARG;
    }

    uint32_t tag = 0;
    if (c.device_type != NULL &&
        ota_device_type_tag(c.device_type, strlen(c.device_type), &tag) != OTA_OK) {
        return OTA_ERR_INVALID_ARG;
    }

    memset(agent, 0, sizeof *agent);
    agent->cfg = c;
    agent->cfg.device_type = NULL; /* the caller's string need not outlive init */
    agent->device_type_tag = tag;
    agent->state = OTA_AGENT_STOPPED;
    ota_jobs_init(&agent->jobs, c.thing_name, &c.mqtt);
    ota_download_init(&agent->dl, &agent->cfg, &agent->stats, config->window_blocks == 0u);
    return OTA_OK;
}

static void ota_start_waiting(ota_agent_t *agent);

ota_err_t ota_agent_start(ota_agent_t *agent, uint32_t now_ms)
{
    ota_err_t err = ota_call_allowed(agent, OTA_IN(OTA_AGENT_STOPPED));
    if (err != OTA_OK) {
        return err;
    }
    agent->now = now_ms;
    err = ota_jobs_subscription(agent, 1);
    if (err != OTA_OK) {
        (void)ota_jobs_subscription(agent, 0);
        return err;
    }
    if (agent->have_job && agent->image_ready) {
        /* Stopped while the verified image waited for activation: confirm
         * the job again and carry on. */
        ota_await_confirmation(agent);
        (void)ota_job_topic_sub(agent, 1);
    } else {
        ota_start_waiting(agent);
    }
    err = ota_ask_next_job(agent);
    if (err != OTA_OK) {
        (void)ota_jobs_subscription(agent, 0);
        ota_set_state(agent, OTA_AGENT_STOPPED);
    }
    return err;
}

/* Start without a verified image in hand: note an interrupted download, and
 * wait for a job (or, on a new image, for its self-test job). */
static void ota_start_waiting(ota_agent_t *agent)
{
    const ota_pal_t *pal = agent->cfg.pal;
    if (!agent->file_open && ota_progress_load(&agent->progress, pal) == OTA_OK &&
        pal->get_image_state(pal->ctx) != OTA_PAL_IMAGE_STATE_PENDING_COMMIT) {
        /* A new image under test finds the record of its own, completed
         * download: nothing was interrupted. */
        ota_log(agent, OTA_LOG_INFO, "found an interrupted download", OTA_OK, 0,
                OTA_LOG_LEVEL >= (int)OTA_LOG_INFO ? ota_progress_block_count(&agent->progress)
                                                   : 0u,
                NULL);
    }
    if (pal->get_image_state(pal->ctx) == OTA_PAL_IMAGE_STATE_PENDING_COMMIT) {
        agent->self_test_deadline = agent->now + agent->cfg.self_test_timeout_ms;
        ota_set_state(agent, OTA_AGENT_WAITING_SELF_TEST);
    } else {
        ota_set_state(agent, OTA_AGENT_WAITING_JOB);
    }
}

ota_err_t ota_agent_stop(ota_agent_t *agent)
{
    ota_err_t err = ota_call_allowed(agent, OTA_IN_ANY);
    if (err != OTA_OK || agent->state == OTA_AGENT_STOPPED) {
        return err;
    }
    if (ota_downloading(agent)) {
        OTA_JOB_PLANE(agent)->close(agent);
        if (agent->since_checkpoint != 0u) {
            ota_checkpoint(agent);
        }
    }
    if (agent->job_sub) {
        (void)ota_job_topic_sub(agent, 0);
    }
    (void)ota_jobs_subscription(agent, 0);
    agent->deadline_set = 0;
    ota_set_state(agent, OTA_AGENT_STOPPED);
    return OTA_OK;
}

ota_err_t ota_agent_suspend(ota_agent_t *agent)
{
    ota_err_t err = ota_call_allowed(agent, OTA_IN_RUNNING);
    if (err != OTA_OK) {
        return err;
    }
    agent->suspended_state = agent->state;
    /* The self-test deadline pauses too: keep what is left of it. */
    agent->self_test_left = agent->self_test_deadline - agent->now;
    ota_set_state(agent, OTA_AGENT_SUSPENDED);
    return OTA_OK;
}

ota_err_t ota_agent_resume(ota_agent_t *agent, uint32_t now_ms)
{
    ota_err_t err = ota_call_allowed(agent, OTA_IN(OTA_AGENT_SUSPENDED));
    if (err != OTA_OK) {
        return err;
    }
    agent->now = now_ms;
    ota_set_state(agent, agent->suspended_state);
    if (agent->state == OTA_AGENT_WAITING_SELF_TEST || agent->state == OTA_AGENT_SELF_TEST) {
        agent->self_test_deadline = now_ms + agent->self_test_left;
    }
    if (agent->state == OTA_AGENT_DOWNLOADING) {
        ota_new_round(agent);
    } else if (agent->deadline_set) {
        ota_set_deadline(agent, agent->cfg.reset_delay_ms);
    }
    /* The job may have changed meanwhile (canceled, replaced). */
    return ota_ask_next_job(agent);
}

ota_err_t ota_agent_check_for_update(ota_agent_t *agent, uint32_t now_ms)
{
    ota_err_t err = ota_call_allowed(agent, OTA_IN_RUNNING | OTA_IN_CALLBACK_OK);
    if (err != OTA_OK) {
        return err;
    }
    agent->now = now_ms;
    return ota_ask_next_job(agent);
}

ota_err_t ota_agent_reconnected(ota_agent_t *agent, uint32_t now_ms)
{
    ota_err_t err = ota_call_allowed(agent, OTA_IN_ANY & ~OTA_IN(OTA_AGENT_STOPPED));
    if (err != OTA_OK) {
        return err;
    }
    agent->now = now_ms;
    ota_log(agent, OTA_LOG_INFO, "reconnected: subscribing again", OTA_OK, 0, 0, NULL);
    err = ota_jobs_subscription(agent, 1);
    if (err != OTA_OK) {
        return err;
    }
    if (agent->have_job || agent->job_sub) {
        (void)ota_job_topic_sub(agent, 1);
    }
    if (agent->state == OTA_AGENT_DOWNLOADING) {
        ota_download_again(agent);
    }
    if (agent->state == OTA_AGENT_SUSPENDED) {
        if (agent->suspended_state == OTA_AGENT_DOWNLOADING) {
            (void)OTA_JOB_PLANE(agent)->open(agent);
        }
        return OTA_OK;
    }
    return ota_ask_next_job(agent);
}

ota_err_t ota_agent_self_test_result(ota_agent_t *agent, int passed, uint32_t now_ms)
{
    const ota_pal_t *pal;
    ota_err_t err = ota_call_allowed(agent, OTA_IN(OTA_AGENT_SELF_TEST) | OTA_IN_CALLBACK_OK);
    if (err != OTA_OK) {
        return err;
    }
    pal = agent->cfg.pal;
    agent->now = now_ms;
    if (!passed) {
        ota_reject_new_image(agent, OTA_ERR_SELF_TEST_FAILED, "the new image failed its self-test");
        return OTA_OK;
    }
    err = pal->set_image_state(pal->ctx, OTA_IMAGE_STATE_ACCEPTED);
    if (err != OTA_OK) {
        ota_reject_new_image(agent, OTA_ERR_COMMIT_FAILED, "the port cannot commit");
        return OTA_ERR_COMMIT_FAILED;
    }
    ota_clear_progress(agent);
    {
        char reason[32];
        char updated_by[24];
        strcpy(reason, "accepted  ");
        ota_jobs_version_str(reason + 10, agent->cfg.app_version);
        memcpy(updated_by, "  ", 2);
        ota_jobs_version_str(updated_by + 2, agent->old_version);
        ota_log(agent, OTA_LOG_INFO, "new image committed", OTA_OK, agent->cfg.app_version, 0,
                NULL);
        return ota_succeed(agent, reason, agent->old_version_ok ? "updatedBy" : NULL, updated_by,
                           0);
    }
}

ota_err_t ota_agent_handle_message(ota_agent_t *agent, const char *topic, size_t topic_len,
                                   const uint8_t *payload, size_t len, uint32_t now_ms)
{
    ota_jobs_topic_t topic_kind;
    ota_err_t err = ota_call_allowed(agent, OTA_IN_ANY);
    if (err != OTA_OK) {
        return err;
    }
    if (topic == NULL || (payload == NULL && len != 0u)) {
        return OTA_ERR_INVALID_ARG;
    }
    if (agent->state == OTA_AGENT_STOPPED || agent->state == OTA_AGENT_SUSPENDED) {
        return OTA_OK;
    }
    agent->now = now_ms;
    if (payload == NULL) {
        payload = (const uint8_t *)"";
    }
    /* Stream data first: while downloading, nearly every message is a block. */
    if (agent->state == OTA_AGENT_DOWNLOADING) {
        ota_plane_event_t ev;
        OTA_JOB_PLANE(agent)->handle(agent, topic, topic_len, payload, len, &ev);
        if (ev.kind == OTA_PLANE_BLOCK) {
            ota_on_block(agent, &ev);
        } else if (ev.kind == OTA_PLANE_REFUSED) {
            ota_on_refused(agent, ev.code, ev.code_len);
        } else if (ev.kind == OTA_PLANE_BAD) {
            ota_bad_message(agent, "undecodable block message", OTA_ERR_BAD_MESSAGE);
        }
        if (ev.kind != OTA_PLANE_NOT_MINE) {
            return OTA_OK;
        }
    }
    topic_kind = ota_jobs_classify(&agent->jobs,
                                   agent->have_job || agent->job_sub ? agent->job.job_id : NULL,
                                   topic, topic_len);
    if (topic_kind == OTA_JOBS_TOPIC_NEXT || topic_kind == OTA_JOBS_TOPIC_NEXT_REJECTED) {
        agent->asking = 0; /* the Jobs API answers */
        if (agent->dl.rto_asked != 0u) {
            /* The download's retry timer as it was before the unanswered asks. */
            agent->stats.rto_ms = agent->dl.rto = agent->dl.rto_asked;
            agent->dl.rto_asked = 0;
        }
    }
    if (topic_kind == OTA_JOBS_TOPIC_NEXT) {
        ota_on_jobs_message(agent, payload, len);
    } else if (topic_kind != OTA_JOBS_TOPIC_OTHER) {
        ota_on_jobs_refusal(agent, topic_kind == OTA_JOBS_TOPIC_NEXT_REJECTED, payload, len);
    }
    return OTA_OK;
}

/* ---- activation ---- */

/*
 * The named step between a verified file and the new image: mark the
 * checkpoint "activation attempted", put the image under test, activate it and
 * reset. Runs only once the service named the job again and the reset delay
 * (which lets "self_test: ready" go out) passed.
 */
static void ota_activate(ota_agent_t *a)
{
    const ota_pal_t *pal = a->cfg.pal;
    ota_err_t err;

    ota_tell(a, a->cfg.callbacks.activate);
    a->image_ready = 0; /* the port's next image from here on */
    /* From here on a reboot into the old image means the new one did not
     * take, not that activation is still to do. */
    a->activating = 1;
    ota_checkpoint(a);
    err = pal->set_image_state(pal->ctx, OTA_IMAGE_STATE_TESTING);
    if (err == OTA_OK) {
        err = pal->activate(pal->ctx);
    }
    a->deadline_set = 0;
    if (err != OTA_OK) {
        (void)pal->set_image_state(pal->ctx, OTA_IMAGE_STATE_REJECTED);
        ota_fail_job(a, OTA_FAIL_TRANSFER, err, 0, "the port cannot activate");
        return;
    }
    ota_log(a, OTA_LOG_INFO, "activated; resetting", OTA_OK, 0, 0, NULL);
    ota_set_state(a, OTA_AGENT_RESETTING);
    (void)pal->reset(pal->ctx);
}

/* Timer work of the activating state: confirmation retries, then activation. */
static void ota_poll_activating(ota_agent_t *a)
{
    if (!ota_deadline_due(a)) {
        return;
    }
    if (!a->confirm_pending) {
        ota_activate(a);
        return;
    }
    if (a->confirm_pending == 1u) {
        /* The reset delay is over, not the service's round trip: a busy service (a fleet
         * finishing at once) answers within the retry timer, and asking again before that
         * only adds to its queue. Wait one retry timer more before counting a timeout. */
        a->confirm_pending = 2u;
        ota_set_deadline(a, a->dl.rto);
        return;
    }
    /* No answer yet: ask again, and give up after as many tries as a download. */
    a->stats.timeouts++;
    if (++a->confirm_tries > a->cfg.max_timeouts) {
        ota_fail_job(a, OTA_FAIL_ABORTED, OTA_ERR_TIMEOUT, a->confirm_tries - 1u,
                     "job not confirmed before activation");
        return;
    }
    ota_set_deadline(a, ota_download_back_off(&a->dl));
    if (a->ready_unrecorded) {
        a->ready_unrecorded = 0;
        ota_report_self_test(a, "ready");
    }
    (void)ota_ask_next_job(a);
}

/* Timer work of a download: a refusal's check, retries, giving up. */
static void ota_poll_downloading(ota_agent_t *a)
{
#if OTA_HTTP_PLANE
    if (a->http.url_wait) {
        if (ota_deadline_due(a)) {
            a->http.url_wait = 0;
            a->dl.paused = 0;
            a->deadline_set = 0;
            ota_http_failed(a, OTA_PLANE_POLL_REFUSED); /* no fresh URL came */
        }
        return;
    }
    if (a->plane->poll != NULL) {
        ota_poll_plane(a);
        if (a->state != OTA_AGENT_DOWNLOADING || a->http.url_wait) {
            return;
        }
    }
#endif
    if (a->refusal_pending) {
        if (ota_deadline_due(a)) {
            ota_fail_job(a, OTA_FAIL_TRANSFER, OTA_ERR_SERVICE_REJECTED, 0, a->detail);
        }
        return;
    }
    switch (ota_download_timer(&a->dl, a->now)) {
    case OTA_DOWNLOAD_PROBE:
    case OTA_DOWNLOAD_RETRY:
        ota_log(a, OTA_LOG_WARN, "request timed out; asking again", OTA_ERR_TIMEOUT,
                a->dl.blocks_done, a->dl.rto, NULL);
#if OTA_HTTP_PLANE
        if (a->dl.timeouts_in_row >= OTA_FAILOVER_AFTER && ota_failover(a, "timeouts")) {
            break;
        }
        if (a->plane->drop != NULL) {
            a->dl.probe = 0; /* the ranges in flight are dropped: ask for them again */
        }
#endif
        if (a->dl.probe) {
            ota_request_more(a); /* one block alone, the earlier requests in flight */
        } else {
            ota_new_round(a);
        }
        break;
    case OTA_DOWNLOAD_RESUME:
        ota_log(a, OTA_LOG_INFO, "throttling wait over; asking again", OTA_OK, a->dl.blocks_done,
                a->dl.rto, NULL);
        ota_new_round(a);
        break;
    case OTA_DOWNLOAD_GIVE_UP:
#if OTA_HTTP_PLANE
        if (ota_failover(a, "timeouts")) {
            break;
        }
#endif
        ota_fail_job(a, OTA_FAIL_ABORTED, OTA_ERR_TIMEOUT, a->dl.timeouts_in_row - 1u,
                     "stream service stopped answering");
        break;
    default:
        break;
    }
}

/* The Jobs requests that wait for jobs_retry_at. */
static void ota_retry_due(ota_agent_t *a)
{
    unsigned r = a->jobs_retry;
    a->jobs_retry = 0;
    if ((r & OTA_RETRY_REPORT) != 0u) {
        ota_log(a, OTA_LOG_INFO, "sending the throttled status update again", OTA_OK, 0, 0, NULL);
        if (a->state == OTA_AGENT_DOWNLOADING && a->jobs.report_len == 0u) {
            ota_send_progress(a); /* block requests reused its buffer: the progress now */
        } else if (ota_jobs_report_again(&a->jobs, a->job.job_id, 1) != OTA_OK) {
            ota_log(a, OTA_LOG_WARN, "status update not sent", OTA_ERR_MQTT, 0, 0, NULL);
        }
        if (!a->have_job) {
            ota_retry_later(a, OTA_RETRY_LINGER);
        }
    } else if ((r & OTA_RETRY_LINGER) != 0u && !a->have_job && a->job_sub) {
        (void)ota_job_topic_sub(a, 0);
    }
    if ((r & OTA_RETRY_NEXT) != 0u) {
        (void)ota_ask_next_job(a);
    }
}

ota_err_t ota_agent_poll(ota_agent_t *agent, uint32_t now_ms)
{
    const ota_pal_t *pal;
    ota_err_t err = ota_call_allowed(agent, OTA_IN_ANY);
    if (err != OTA_OK) {
        return err;
    }
    pal = agent->cfg.pal;
    agent->now = now_ms;
    if (agent->state != OTA_AGENT_STOPPED && agent->state != OTA_AGENT_SUSPENDED) {
        if (agent->jobs_retry && ota_time_reached(now_ms, agent->jobs_retry_at)) {
            ota_retry_due(agent);
        }
        if (agent->asking &&
            (agent->state == OTA_AGENT_WAITING_JOB ||
             agent->state == OTA_AGENT_WAITING_SELF_TEST) &&
            ota_time_reached(now_ms, agent->ask_at)) {
            /* Only while the answer is awaited (a download or an activation goes on
             * without it). The retry timer doubles, up to its bound: far inside the
             * Jobs budget. Its value from before is kept for the answer's job. */
            if (agent->dl.rto_asked == 0u) {
                agent->dl.rto_asked = agent->dl.rto;
            }
            (void)ota_download_back_off(&agent->dl);
            ota_log(agent, OTA_LOG_WARN, "no answer to $next/get; asking again", OTA_ERR_TIMEOUT,
                    agent->dl.rto, 0, NULL);
            (void)ota_ask_next_job(agent);
        }
    }
    switch (agent->state) {
    case OTA_AGENT_DOWNLOADING:
        ota_poll_downloading(agent);
        break;
    case OTA_AGENT_WAITING_SELF_TEST:
    case OTA_AGENT_SELF_TEST:
        if (ota_time_reached(now_ms, agent->self_test_deadline)) {
            ota_reject_new_image(agent, OTA_ERR_SELF_TEST_FAILED,
                                 agent->state == OTA_AGENT_SELF_TEST
                                     ? "self-test gave no verdict in time"
                                     : "no self-test job arrived in time");
        }
        break;
    case OTA_AGENT_ACTIVATING:
        ota_poll_activating(agent);
        break;
    case OTA_AGENT_RESETTING:
        if (ota_deadline_due(agent)) {
            agent->deadline_set = 0;
            ota_log(agent, OTA_LOG_INFO, "resetting", OTA_OK, 0, 0, NULL);
            (void)pal->reset(pal->ctx);
        }
        break;
    default:
        break;
    }
    return OTA_OK;
}

ota_agent_state_t ota_agent_get_state(const ota_agent_t *agent)
{
    return agent != NULL ? agent->state : OTA_AGENT_STOPPED;
}

const char *ota_agent_state_str(ota_agent_state_t state)
{
    const char *name = ota_state_names;
    if ((unsigned)state >= OTA_AGENT_STATE_COUNT) {
        return "unknown";
    }
    for (unsigned s = (unsigned)state; s != 0u; s--) {
        name += strlen(name) + 1u;
    }
    return name;
}

const ota_agent_stats_t *ota_agent_get_stats(const ota_agent_t *agent)
{
    return agent != NULL ? &agent->stats : NULL;
}
