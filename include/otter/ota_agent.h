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
#ifndef OTTER_OTA_AGENT_H
#define OTTER_OTA_AGENT_H

#include "otter/ota_config_defaults.h"

#include <stddef.h>
#include <stdint.h>

#include "otter/ota_err.h"
#include "otter/ota_job_doc.h"
#include "otter/ota_mqtt.h"
#include "otter/ota_pal.h"
#include "otter/ota_version.h"
#if OTA_HTTP_PLANE
#include "otter/ota_http_client.h"
#endif

/**
 * Version of the otter agent library (not of the firmware it updates):
 * major << 24 | minor << 16 | patch, the agent's own version format, and as
 * text. The second generation (confirmation before activation, one
 * configuration for every device library) is 2.0.0.
 */
#define OTA_VERSION_MAJOR 2
#define OTA_VERSION_MINOR 0
#define OTA_VERSION_PATCH 0
#define OTA_VERSION                                                                                \
    (((uint32_t)OTA_VERSION_MAJOR << 24) | ((uint32_t)OTA_VERSION_MINOR << 16) |                   \
     (uint32_t)OTA_VERSION_PATCH)
#define OTA_VERSION_STRING "2.0.0"

/**
 * Largest progress record: a 24-byte header, the block bitmap and a CRC (the
 * layout is agent/src/ota_progress.c's alone).
 */
#define OTA_PROGRESS_RECORD_MAX (24u + OTA_MAX_FILE_BLOCKS / 8u + 4u)

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
    /**
     * The file is verified and the service still names the job: the port
     * activates it (and resets) right after this call.
     */
    void (*activate)(void *ctx, const ota_job_t *job);
    /** A job ended on this device (also for documents that could not be used). */
    void (*outcome)(void *ctx, const ota_agent_outcome_t *outcome);
    /** Every state change and every error, for the log (serial console). */
    void (*log)(void *ctx, const ota_agent_event_t *event);
    /**
     * The file is verified (the port closed it with a good signature);
     * activation follows once the service names the job again, unless the
     * job turns out to be canceled (then outcome reports CANCELED and
     * activate is never called).
     */
    void (*verified)(void *ctx, const ota_job_t *job);
} ota_agent_callbacks_t;

#if OTA_HTTP_PLANE
/**
 * The HTTP data plane's byte stream, given by the integrator (OTA_HTTP_PLANE
 * builds): a TCP socket, a TLS session, a modem's data mode.
 */
typedef struct ota_agent_http {
    /** Passed back as the first argument of target. */
    void *ctx;
    /**
     * Point the byte stream at url's host and port, over TLS when url->tls.
     * Called with the stream closed whenever the agent takes a URL from a job
     * document; url's pieces point into the agent and stay valid until the
     * next call. NULL: the stream always goes to the same place.
     * @return OTA_OK; anything else: this URL cannot be used (the download
     *         goes on over MQTT if the job lists it).
     */
    ota_err_t (*target)(void *ctx, const ota_http_url_t *url);
    /** The stream (the device MQTT client's transport type); send and recv required. */
    ota_httpc_transport_t transport;
} ota_agent_http_t;
#endif

/** Runtime configuration; zero means default for every number. */
typedef struct ota_agent_config {
    /** Thing name (1 .. OTA_THING_NAME_MAX bytes, no '/', '+', '#'); must outlive the agent. */
    const char *thing_name;
    /** Version of the running firmware: major << 24 | minor << 16 | build. */
    uint32_t app_version;
    /**
     * This device's type (the service's deviceType: 1-64 of [A-Za-z0-9_.-]),
     * or NULL. With a type, a job whose document names device types
     * ("otterDeviceTypes") but not this one is refused before anything is
     * downloaded: FAILED, "rejected: " and OTA_ERR_WRONG_DEVICE_TYPE's code.
     * Need not outlive ota_agent_init().
     */
    const char *device_type;
    /** The port; must outlive the agent. */
    const ota_pal_t *pal;
    /** The MQTT interface (copied). */
    ota_mqtt_t mqtt;
    /** Application callbacks (copied). */
    ota_agent_callbacks_t callbacks;
    /** Block size, bytes (0 = OTA_DEFAULT_BLOCK_SIZE). */
    uint32_t block_size;
    /**
     * Blocks in flight, 1 .. 255: a fixed window. 0: a window that adapts to
     * the link (docs/AGENT.md): it starts at OTA_DEFAULT_WINDOW_BLOCKS (at
     * most 128 KiB of blocks), grows while the round trip holds and shrinks
     * when it grows, up to OTA_WINDOW_MAX_BYTES of blocks (at most 255). A
     * window of more than 128 KiB is asked for in several requests, since one
     * request carries at most 128 KiB.
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
    /**
     * Most blocks between progress status updates (0 = default); a download
     * also reports its first block and, of N blocks, at least every N/8 + 1.
     */
    uint32_t status_every_blocks;
    /** Blocks between progress checkpoints (0 = default). */
    uint32_t checkpoint_every_blocks;
    /** Delay before a reset or activation, ms (0 = default). */
    uint32_t reset_delay_ms;
#if OTA_HTTP_PLANE
    /** The HTTP plane's stream (copied); without send and recv, jobs go over MQTT only. */
    ota_agent_http_t http;
#endif
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
    uint32_t throttled;        /**< requests the service refused with RequestThrottled */
    uint32_t rto_ms;           /**< the retry timer now, ms */
    uint32_t window_blocks;    /**< blocks in flight at most, now (the window) */
#if OTA_HTTP_PLANE
    uint32_t bytes_mqtt;   /**< bytes of new blocks the MQTT plane delivered (this job) */
    uint32_t bytes_http;   /**< bytes of new blocks the HTTP plane delivered (this job) */
    uint32_t http_bytes;   /**< body bytes HTTP answers carried, also dropped ones (this job) */
    uint32_t failovers;    /**< switches from one plane to the other (this job) */
    uint32_t url_renewals; /**< fresh URLs taken after a 403 (this job) */
#endif
} ota_agent_stats_t;

/*
 * The agent's parts. Their fields are private (visible only so callers can
 * allocate the agent); each belongs to one module under agent/src/.
 */

/** The progress record (agent/src/ota_progress.c): header, block bitmap, CRC. */
typedef struct ota_progress {
    uint8_t bytes[OTA_PROGRESS_RECORD_MAX];
    uint8_t loaded; /* bytes hold a checked record loaded from the port */
} ota_progress_t;

/** The download of one file (agent/src/ota_download.c): bitmap, window, retry timer. */
typedef struct ota_download {
    uint8_t adaptive;       /* the window follows the round trip (configured 0) */
    uint8_t startup;        /* no queue seen yet: the window doubles per round trip */
    uint8_t rtt_pending;    /* the last request may be timed (Karn) */
    uint8_t request_failed; /* the last request could not be sent */
    uint8_t deaf;           /* the last expiry was put off: the agent had not been called */
    /* From throttled to rtt_last: cleared for each new file (ota_download_begin). */
    uint8_t throttled; /* the service throttled us: the next expiry retries, uncounted */
    uint8_t answered;  /* a block arrived since the last timer check */
    uint8_t paused;    /* no requests (a refusal is being checked) */
    uint8_t probe;     /* the next request asks for one block alone (a timeout) */
    uint8_t deadline_set;
    uint32_t blocks_done;
    uint32_t timeouts_in_row;
    uint32_t asked_hi; /* blocks below it were asked for already (Karn: not timed) */
    uint32_t seen_hi;  /* blocks below it were received, or are lost (holes) */
    uint32_t rtt_base; /* the shortest round trip of this file, ms + 1 (0: none yet) */
    uint32_t rtt_last; /* the round trip before, ms + 1 (0: none yet) */
    uint8_t *done;     /* the block bitmap: bit k of byte k / 8 = block k written */
    ota_agent_stats_t *stats;
    const ota_agent_config_t *cfg;
    uint32_t file_size;
    uint32_t block_size;
    uint32_t block_count;
    uint32_t window;   /* blocks in flight at most, now */
    uint32_t cursor;   /* blocks below it were requested in this round */
    uint32_t inflight; /* requested in this round, not yet received */
    uint32_t deadline; /* of the retry timer */
    uint32_t request_sent;
    uint32_t rtt_lo; /* blocks of the timed request: rtt_lo .. rtt_hi - 1 */
    uint32_t rtt_hi;
    uint32_t rto;
    uint32_t srtt;       /* smoothed round trip x 8 */
    uint32_t rttvar;     /* round-trip variation x 4 */
    uint32_t adapted_at; /* when the window last changed */
    uint32_t checked_at; /* the timer's last check */
    uint32_t rto_asked;  /* rto before unanswered $next/get asks doubled it (0: not) */
} ota_download_t;

/** The Jobs API and topics over the MQTT interface (agent/src/ota_jobs.c). */
typedef struct ota_jobs {
    const char *thing_name;
    ota_mqtt_t mqtt;
    uint16_t report_len; /* message holds the last status update, of this length (0: not) */
    char topic[OTA_TOPIC_MAX];
    uint8_t message[OTA_MESSAGE_BUFFER_SIZE];
} ota_jobs_t;

struct ota_data_plane;

#if OTA_HTTP_PLANE
/** The HTTP data plane (agent/src/ota_data_http.c): the range client and its buffers. */
typedef struct ota_http_plane {
    ota_httpc_t c;
    uint8_t rx[OTA_HTTP_RX_BUFFER_SIZE];
    uint8_t tx[OTA_HTTP_TX_BUFFER_SIZE];
    uint8_t ready;       /* c holds the job's URL */
    uint8_t url_wait;    /* a 403: the job document was asked for again */
    uint8_t fresh;       /* no body byte since the URL was taken */
    uint8_t failures;    /* failures in a row without a new block */
    uint8_t in_poll;     /* the client is delivering: the agent asks for more after it */
    uint32_t part_block; /* the block written in part (part_len bytes of it) */
    uint32_t part_len;
} ota_http_plane_t;
#endif

/**
 * The agent. Its fields are private (visible only so callers can allocate
 * it); use the functions below.
 */
typedef struct ota_agent {
    /* The fields the state machine uses most come first, where Thumb's
     * short loads and stores reach (bytes: 32, words: 128; code size). */
    ota_agent_state_t state;
    ota_agent_state_t suspended_state;
    uint8_t have_job;
    uint8_t file_open;       /* the port holds the job's file open */
    uint8_t image_ready;     /* the port holds the job's closed, verified image */
    uint8_t resumed;         /* the transfer continued a checkpoint */
    uint8_t restarted;       /* a resumed file failed verification and started over */
    uint8_t refusal_pending; /* a stream refusal waits for the job's confirmation */
    uint8_t confirm_pending; /* verified: activation waits for the service to name the job */
    uint8_t activating;      /* checkpoints say activation was attempted */
    uint8_t old_version_ok;  /* old_version is known */
    uint8_t jobs_retry;      /* OTA_RETRY_* bits (agent/src/ota_agent.c), due at jobs_retry_at */
    uint8_t job_sub;         /* subscribed to the job's update/rejected */
    uint8_t asking;          /* a $next/get waits for its answer until ask_at */
    uint8_t deadline_set;
    uint8_t ready_unrecorded; /* the service's answer showed no "self_test":"ready" yet */
    uint8_t in_callback;      /* application callbacks under way (nested: self-test verdict) */
    uint32_t now;
    const struct ota_data_plane *plane; /* chosen per job from its "protocols" */
    uint32_t old_version;               /* version that performed the download */
    uint32_t device_type_tag;           /* ota_device_type_tag of cfg.device_type, 0 when none */
    uint32_t since_checkpoint;
    uint32_t since_status;
    uint32_t deadline; /* of the step under way: confirmation, activation, reset */
    uint32_t jobs_retry_at;
    uint32_t self_test_deadline;
    uint32_t self_test_left; /* of the self-test deadline, while suspended */
    uint32_t finished_job;   /* fingerprint of the last job reported here (0: none) */
    uint32_t confirm_tries;  /* unanswered confirmations before activation */
    uint32_t ask_at;         /* an unanswered $next/get is asked again then */
    ota_agent_stats_t stats;
    ota_agent_config_t cfg;

    /* The current job and its file. */
    ota_job_t job;
    ota_download_t dl;
    ota_progress_t progress;
    ota_jobs_t jobs;
#if OTA_HTTP_PLANE
    ota_http_plane_t http;
    uint8_t switches; /* plane switches since the last new block */
#endif
    char detail[96];
    ota_job_t scratch_job;
} ota_agent_t;

/**
 * Prepare the agent; it starts in OTA_AGENT_STOPPED. A macro: it passes the
 * sizes of ota_agent_t and ota_agent_config_t as the caller's unit sees them
 * to ota_agent_init_sized(), which refuses sizes unlike the library's (a unit
 * built without the library's OTA_CONFIG_FILE) before writing anything.
 * @param agent caller-owned agent, overwritten.
 * @param config copied; its thing_name and pal must outlive the agent.
 * @return OTA_OK; OTA_ERR_INVALID_ARG (NULL; missing MQTT or port operations;
 *         some but not all of the port's progress operations progress_save,
 *         progress_load, progress_clear, resume_file, or them without
 *         progress_capacity; thing name empty, too long or with '/', '+',
 *         '#'; block size not in 256 .. 131072 or not a multiple of the
 *         port's block_align; window above 255 blocks; RTO bounds inverted or
 *         above 2^30 ms; device type not 1-64 of [A-Za-z0-9_.-]; the sizes
 *         differ: the caller and the library were built with different
 *         configurations).
 */
#define ota_agent_init(agent, config)                                                              \
    ota_agent_init_sized((agent), (config), sizeof(ota_agent_t), sizeof(ota_agent_config_t))

/**
 * ota_agent_init() with the sizes of ota_agent_t and ota_agent_config_t the
 * caller was built with; call it through ota_agent_init().
 */
ota_err_t ota_agent_init_sized(ota_agent_t *agent, const ota_agent_config_t *config,
                               size_t agent_size, size_t config_size);

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

#endif /* OTTER_OTA_AGENT_H */
