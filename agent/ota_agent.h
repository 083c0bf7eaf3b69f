/*
 * otter: the OTA agent.
 *
 * The agent speaks the AWS IoT Jobs + MQTT streams protocol: it waits for an
 * OTA job, downloads the file block by block through the port (ota_pal.h),
 * has the port verify and activate it, runs the self-test flow after the
 * reboot and reports every outcome, in FreeRTOS's status vocabulary, so it
 * works against AWS IoT Core and against the otter service alike.
 *
 * It is portable C99 with no heap, no OS and no threads. The integrator:
 *   - allocates one ota_agent_t (statically or on its own stack/heap) and
 *     calls ota_agent_init() with an ota_agent_config_t;
 *   - passes every MQTT message that arrives on the agent's subscriptions to
 *     ota_agent_handle_message(), and calls ota_agent_poll() regularly (every
 *     100 ms or so; the agent never needs finer time);
 *   - gives the time as a millisecond counter that may wrap (uint32_t);
 *   - calls the agent from one thread at a time.
 *
 * Every call checks its arguments and returns the one error type; calls that
 * are not allowed in the current state return OTA_ERR_WRONG_STATE and change
 * nothing. The RAM the agent needs is sizeof(ota_agent_t); see docs/AGENT.md.
 */
#ifndef OTA_AGENT_H
#define OTA_AGENT_H

#include "ota_config_defaults.h"

#include <stddef.h>
#include <stdint.h>

#include "ota_err.h"
#include "ota_job_doc.h"
#include "ota_mqtt.h"
#include "ota_pal.h"

/** Bytes before the block bitmap in a progress record (see ota_agent_progress.c). */
#define OTA_PROGRESS_HEADER_SIZE 20u

/** Largest progress record: header, bitmap, CRC. */
#define OTA_PROGRESS_RECORD_MAX (OTA_PROGRESS_HEADER_SIZE + OTA_MAX_FILE_BLOCKS / 8u + 4u)

/**
 * Longest topic the agent builds: "$aws/things/" + thing + "/jobs/" + job id +
 * "/update/accepted", or "/streams/" + stream + "/rejected/cbor", and a NUL.
 */
#define OTA_TOPIC_MAX                                                                              \
    (OTA_THING_NAME_MAX + 48u +                                                                    \
     (OTA_JOB_ID_MAX > OTA_STREAM_NAME_MAX ? OTA_JOB_ID_MAX : OTA_STREAM_NAME_MAX))

/** States of the agent. */
typedef enum ota_agent_state {
    OTA_AGENT_STOPPED = 0,       /**< after init and stop: no subscriptions, no traffic */
    OTA_AGENT_WAITING_JOB,       /**< subscribed; waiting for a job document */
    OTA_AGENT_DOWNLOADING,       /**< receiving the file of the current job */
    OTA_AGENT_ACTIVATING,        /**< verified; activation and reset follow shortly */
    OTA_AGENT_WAITING_SELF_TEST, /**< a new image runs pending commit; waiting for its job */
    OTA_AGENT_SELF_TEST,         /**< the application's self-test runs; waiting for its verdict */
    OTA_AGENT_RESETTING,         /**< a reset follows shortly (revert or retry) */
    OTA_AGENT_SUSPENDED,         /**< paused by the application; resume continues */
} ota_agent_state_t;

/** Number of ota_agent_state_t values. */
#define OTA_AGENT_STATE_COUNT 8

/** Log levels of agent events. */
typedef enum ota_log_level {
    OTA_LOG_ERROR = 0,
    OTA_LOG_WARN = 1,
    OTA_LOG_INFO = 2,
    OTA_LOG_DEBUG = 3,
} ota_log_level_t;

/** Something the agent did or saw, for the integrator's log. */
typedef struct ota_agent_event {
    ota_log_level_t level;
    /** What happened, a static string ("job document refused", ...). */
    const char *what;
    /** The error concerned, or OTA_OK. */
    ota_err_t err;
    /** Current job id, or "" when there is none. */
    const char *job_id;
    /** Two numbers whose meaning depends on the event (e.g. block, blocks). */
    uint32_t a;
    uint32_t b;
    /** Further detail (a static or agent-owned string valid for the call), or "". */
    const char *detail;
} ota_agent_event_t;

/** How a job ended on this device. */
typedef enum ota_outcome_status {
    OTA_OUTCOME_SUCCEEDED = 0, /**< committed (firmware) or received (data file) */
    OTA_OUTCOME_FAILED = 1,    /**< reported FAILED with a reason */
    OTA_OUTCOME_CANCELED = 2,  /**< the service canceled or removed the job */
} ota_outcome_status_t;

/** The end of a job, as reported to the service. */
typedef struct ota_agent_outcome {
    const char *job_id;
    ota_outcome_status_t status;
    /** Why (OTA_OK on success). */
    ota_err_t err;
    /** The "reason" sent in statusDetails ("" for CANCELED). */
    const char *reason;
    /** The human-readable "detail" sent along ("" if none). */
    const char *detail;
} ota_agent_outcome_t;

/** Application callbacks; any may be NULL. Called from within agent calls. */
typedef struct ota_agent_callbacks {
    /** Passed back as the first argument. */
    void *ctx;
    /** A usable OTA job was accepted and its download starts or resumes. */
    void (*job_received)(void *ctx, const ota_job_t *job);
    /**
     * The new image booted and its job asks for the self-test: run it (now or
     * later) and call ota_agent_self_test_result() before the self-test
     * timeout.
     */
    void (*self_test)(void *ctx, const ota_job_t *job);
    /** The file is verified; the port activates it (and resets) next. */
    void (*activate)(void *ctx, const ota_job_t *job);
    /** A job ended on this device (also for documents that could not be used). */
    void (*outcome)(void *ctx, const ota_agent_outcome_t *outcome);
    /** Every state change and every error, for the log (serial console). */
    void (*log)(void *ctx, const ota_agent_event_t *event);
} ota_agent_callbacks_t;

/** Runtime configuration; zero means default for every number. */
typedef struct ota_agent_config {
    /** Thing name (1 .. OTA_THING_NAME_MAX bytes, no '/', '+', '#'); must outlive the agent. */
    const char *thing_name;
    /** Version of the running firmware: major << 24 | minor << 16 | build. */
    uint32_t app_version;
    /** The port; must outlive the agent. */
    const ota_pal_t *pal;
    /** The MQTT interface (copied). */
    ota_mqtt_t mqtt;
    /** Application callbacks (copied). */
    ota_agent_callbacks_t callbacks;
    /** Block size, bytes (0 = OTA_DEFAULT_BLOCK_SIZE). */
    uint32_t block_size;
    /**
     * Blocks in flight, 1 .. 255 (0 = OTA_DEFAULT_WINDOW_BLOCKS, at most
     * 128 KiB of blocks). A window of more than 128 KiB is asked for in
     * several requests, since one request carries at most 128 KiB.
     */
    uint32_t window_blocks;
    /** Request timeout before the first measured round trip, ms (0 = default). */
    uint32_t rto_initial_ms;
    /** Lower and upper bounds of the adaptive request timeout, ms (0 = default). */
    uint32_t rto_min_ms;
    uint32_t rto_max_ms;
    /** Consecutive timeouts without progress before giving up (0 = default). */
    uint32_t max_timeouts;
    /** Self-test deadline after a new image starts, ms (0 = default). */
    uint32_t self_test_timeout_ms;
    /** Blocks between progress status updates (0 = default). */
    uint32_t status_every_blocks;
    /** Blocks between progress checkpoints (0 = default). */
    uint32_t checkpoint_every_blocks;
    /** Delay before a reset or activation, ms (0 = default). */
    uint32_t reset_delay_ms;
} ota_agent_config_t;

/** Counters, for logs and benchmarks. */
typedef struct ota_agent_stats {
    uint32_t requests;         /**< block requests published */
    uint32_t blocks_received;  /**< blocks written */
    uint32_t blocks_duplicate; /**< blocks that arrived again and were dropped */
    uint32_t blocks_resumed;   /**< blocks kept from before a reset */
    uint32_t timeouts;         /**< request timeouts */
    uint32_t checkpoints;      /**< progress records saved */
    uint32_t rtt_ms;           /**< smoothed round trip, ms (0 until measured) */
    uint32_t bad_messages;     /**< messages that could not be decoded */
} ota_agent_stats_t;

/**
 * The agent. Its fields are private (visible only so callers can allocate
 * it); use the functions below.
 */
typedef struct ota_agent {
    ota_agent_config_t cfg;
    ota_agent_state_t state;
    ota_agent_state_t suspended_state;
    ota_agent_stats_t stats;

    /* The current job and its file. */
    ota_job_t job;
    uint8_t have_job;
    uint8_t file_open;      /* the port holds the job's file open */
    uint8_t resumed;        /* the transfer continued a checkpoint */
    uint8_t restarted;      /* a resumed file failed verification and started over */
    uint8_t old_version_ok; /* old_version is known */
    uint32_t old_version;   /* version that performed the download */
    uint32_t block_size;
    uint32_t window;
    uint32_t block_count;
    uint32_t blocks_done;
    uint32_t cursor;   /* blocks below it were requested in this round */
    uint32_t inflight; /* requested in this round, not yet received */
    uint32_t since_checkpoint;
    uint32_t since_status;

    /* Timers (ms, wrapping). */
    uint32_t now;
    uint32_t deadline; /* request timeout, reset or self-test deadline */
    uint8_t deadline_set;
    uint8_t rtt_pending;     /* the last request may be timed (Karn) */
    uint8_t request_failed;  /* the MQTT client could not send the last request */
    uint8_t refusal_pending; /* a stream refusal waits for the job's confirmation */
    uint32_t request_sent;
    uint32_t rtt_lo; /* blocks of the timed request: rtt_lo .. rtt_hi - 1 */
    uint32_t rtt_hi;
    uint32_t rto;
    uint32_t srtt;   /* smoothed round trip x 8 */
    uint32_t rttvar; /* round-trip variation x 4 */
    uint32_t timeouts_in_row;
    uint32_t self_test_deadline;
    uint8_t reset_activates; /* the pending reset activates the new image */
    uint8_t activating;      /* checkpoints say activation was attempted */
    uint32_t finished_job;   /* fingerprint of the last job reported here (0: none) */

    /* Buffers. The block bitmap (bit k of byte k / 8: block k written) lives
     * inside the progress record, so a checkpoint needs no copy. */
    uint8_t record[OTA_PROGRESS_RECORD_MAX];
    uint8_t have_checkpoint; /* record holds a loaded checkpoint not yet matched */
    uint8_t message[OTA_MESSAGE_BUFFER_SIZE];
    char topic[OTA_TOPIC_MAX];
    char detail[96];
    ota_job_token_t tokens[OTA_JSON_TOKENS];
    ota_job_t scratch_job;
} ota_agent_t;

/**
 * Prepare the agent; it starts in OTA_AGENT_STOPPED.
 * @param agent caller-owned agent, overwritten.
 * @param config copied; its thing_name and pal must outlive the agent.
 * @return OTA_OK; OTA_ERR_INVALID_ARG (NULL, missing MQTT or port operations,
 *         thing name empty, too long or with '/', '+', '#', block size not in
 *         256 .. 131072 or not a multiple of the port's block_align, window
 *         above 255 blocks, RTO bounds inverted).
 */
ota_err_t ota_agent_init(ota_agent_t *agent, const ota_agent_config_t *config);

/**
 * Start: subscribe to the jobs topics, load the port's progress record (to
 * resume an interrupted download), and ask for the next job. On a new image
 * pending commit, the self-test deadline starts now.
 * @return OTA_OK; OTA_ERR_INVALID_ARG; OTA_ERR_WRONG_STATE (not stopped);
 *         OTA_ERR_MQTT (a subscribe or publish failed; the agent stays stopped).
 */
ota_err_t ota_agent_start(ota_agent_t *agent, uint32_t now_ms);

/**
 * Stop: unsubscribe and go quiet. A download in progress keeps its port
 * progress record and continues after the next start; nothing is reported,
 * because the job is not over.
 * @return OTA_OK; OTA_ERR_INVALID_ARG.
 */
ota_err_t ota_agent_stop(ota_agent_t *agent);

/**
 * Pause: no requests, no timeouts; messages are ignored until resume.
 * @return OTA_OK; OTA_ERR_INVALID_ARG; OTA_ERR_WRONG_STATE (stopped or suspended).
 */
ota_err_t ota_agent_suspend(ota_agent_t *agent);

/**
 * Continue after suspend: ask for the job again and carry on where the
 * download was.
 * @return OTA_OK; OTA_ERR_INVALID_ARG; OTA_ERR_WRONG_STATE (not suspended); OTA_ERR_MQTT.
 */
ota_err_t ota_agent_resume(ota_agent_t *agent, uint32_t now_ms);

/**
 * Ask the service for the next job now ($next/get).
 * @return OTA_OK; OTA_ERR_INVALID_ARG; OTA_ERR_WRONG_STATE (stopped or suspended); OTA_ERR_MQTT.
 */
ota_err_t ota_agent_check_for_update(ota_agent_t *agent, uint32_t now_ms);

/**
 * After an MQTT reconnect (the broker may have dropped the session):
 * subscribe again, ask for the job again and continue.
 * @return OTA_OK; OTA_ERR_INVALID_ARG; OTA_ERR_WRONG_STATE (stopped); OTA_ERR_MQTT.
 */
ota_err_t ota_agent_reconnected(ota_agent_t *agent, uint32_t now_ms);

/**
 * The application's self-test verdict for the new image. Passed: the port
 * commits the image and the job is reported SUCCEEDED. Failed: the job is
 * reported FAILED ("rejected"), the port rejects the image, and the device
 * resets shortly after into the old image.
 * @return OTA_OK; OTA_ERR_INVALID_ARG; OTA_ERR_WRONG_STATE (no self-test running);
 *         OTA_ERR_COMMIT_FAILED (the port could not commit: reported FAILED,
 *         the device resets and reverts).
 */
ota_err_t ota_agent_self_test_result(ota_agent_t *agent, int passed, uint32_t now_ms);

/**
 * Hand the agent one incoming MQTT message. Messages on topics that are not
 * the agent's are ignored (return OTA_OK).
 * @param topic the topic name, topic_len bytes (need not be NUL-terminated).
 * @param payload the payload (borrowed for the call), len bytes.
 * @return OTA_OK, also when the message was bad (it is logged, counted and,
 *         where a job is concerned, reported); OTA_ERR_INVALID_ARG (NULL).
 */
ota_err_t ota_agent_handle_message(ota_agent_t *agent, const char *topic, size_t topic_len,
                                   const uint8_t *payload, size_t len, uint32_t now_ms);

/**
 * Timer work: request timeouts and retries, the self-test deadline, the
 * delayed activation and reset. Call every 100 ms or so.
 * @return OTA_OK; OTA_ERR_INVALID_ARG.
 */
ota_err_t ota_agent_poll(ota_agent_t *agent, uint32_t now_ms);

/** Current state (OTA_AGENT_STOPPED for NULL). */
ota_agent_state_t ota_agent_get_state(const ota_agent_t *agent);

/** Name of a state, e.g. "downloading"; "unknown" for other values. */
const char *ota_agent_state_str(ota_agent_state_t state);

/** Counters since init (NULL gives NULL). */
const ota_agent_stats_t *ota_agent_get_stats(const ota_agent_t *agent);

#endif /* OTA_AGENT_H */
