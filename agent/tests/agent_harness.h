/*
 * otter: a scripted broker and stream service for agent tests.
 *
 * The harness is the agent's MQTT interface (it records subscriptions and
 * publishes) and plays the service's part in process: it answers $next/get
 * with the execution the test set, records status updates, and answers
 * GetStream requests with data blocks. Requests are decoded and blocks are
 * encoded with libcbor, so the agent's own codec is checked against an
 * independent one on every exchange. Time is simulated: the harness
 * advances it and calls ota_agent_poll().
 */
#ifndef AGENT_HARNESS_H
#define AGENT_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "otter/ota_agent.h"

#define H_THING "dev-1"
#define H_TOPIC_MAX 256
#define H_MAX_SUBS 32
#define H_MAX_MSGS 8192
#define H_MAX_STATUS 512

/** One MQTT message. */
typedef struct h_msg {
    char topic[H_TOPIC_MAX];
    uint8_t *payload;
    size_t len;
    uint8_t qos;
    uint32_t due; /* delivery time (service -> agent) */
} h_msg_t;

/** How the scripted stream service misbehaves. */
typedef struct h_policy {
    uint32_t delay_ms;             /* latency of every answer */
    uint32_t drop_every;           /* drop every n-th block message (0 = none) */
    uint32_t drop_first;           /* drop the first n block messages */
    int duplicate;                 /* send every block twice */
    int reverse;                   /* answer a request's blocks in reverse order */
    int silent;                    /* answer no stream request at all */
    const char *reject_code;       /* refuse every stream request with this code */
    int jobs_silent;               /* answer no $next/get */
    uint32_t throttle_first;       /* refuse the first n stream requests with RequestThrottled */
    uint32_t throttle_jobs_first;  /* refuse the first n $next/get with RequestThrottled */
    uint32_t throttle_final_first; /* refuse the first n SUCCEEDED/FAILED updates likewise */
    int drop_updates;              /* status updates are lost (their statusDetails not applied) */
} h_policy_t;

/** The harness. Allocate with h_new (it is large). */
typedef struct harness {
    ota_agent_t agent;
    ota_agent_config_t cfg;
    uint32_t now;

    /* MQTT as the agent sees it. */
    char subs[H_MAX_SUBS][H_TOPIC_MAX];
    size_t nsubs;
    int publish_fail;
    int subscribe_fail;
    h_msg_t *to_service; /* agent -> service, not yet processed */
    size_t n_to_service;
    h_msg_t *to_agent; /* service -> agent, waiting for their due time */
    size_t n_to_agent;

    /* The service. */
    const uint8_t *file;
    uint32_t file_size;
    char execution[4096]; /* the execution object answered to $next/get; "" = none */
    h_policy_t policy;
    const char *cert_name;          /* "certfile" of documents h_set_job makes */
    uint32_t block_msgs;            /* block messages generated */
    uint32_t requests;              /* GetStream requests seen */
    uint32_t blocks_requested;      /* blocks asked for in total */
    uint32_t max_request_bytes;     /* most bytes asked for by one request */
    uint32_t next_gets;             /* $next/get requests seen */
    uint32_t next_get_at[64];       /* times of the first $next/get requests */
    uint32_t request_at[64];        /* times of the first GetStream requests */
    int job_over;                   /* the job ended: its updates are refused */
    int cancel_on_confirm;          /* cancel when the agent asks for its job before activating */
    int cancel_notify;              /* ... and publish notify-next about it */
    uint32_t done_at_request[1024]; /* blocks the agent had when it sent request n */
    uint32_t published_requests;
    uint16_t requested_count[8192]; /* times each block was asked for */
    uint8_t last_request[512];
    size_t last_request_len;

    /* What the agent reported. */
    char status[H_MAX_STATUS][512]; /* payloads of update messages, in order */
    uint8_t status_qos[H_MAX_STATUS];
    uint32_t status_at[H_MAX_STATUS]; /* when each arrived */
    size_t nstatus;
    uint32_t finals_refused; /* final updates refused with RequestThrottled */
    int outcomes;
    ota_agent_outcome_t outcome;
    char outcome_job[80];
    char outcome_reason[64];
    char outcome_detail[128];
    int self_test_calls;
    int activate_calls;
    int verified_calls;
    int job_received_calls;
    int log_errors;
    int interrupted_logs; /* "found an interrupted download" events */
    char last_warn[96];   /* what the last WARN event said */
    uint32_t last_warn_a; /* and its numbers */
    uint32_t last_warn_b;
    /* A call the application makes from inside one of its callbacks (H_IN_*, H_CALL_*, both
     * nonzero), at most once, and what the agent answered. */
    int misuse_in;
    int misuse_call;
    int misuse_calls;
    ota_err_t misuse_rc;
    int verbose;
} harness_t;

/**
 * As a service does with an accepted update: its "statusDetails" (one flat
 * object, as the agent sends) replace those of the execution JSON in
 * execution (cap bytes), or are added after its "status". No statusDetails,
 * or an empty execution: nothing changes.
 */
void h_apply_status_details(char *execution, size_t cap, const char *update);

/** Callbacks a test can make call the agent from inside (harness_t.misuse_in). */
enum { H_IN_JOB = 1, H_IN_VERIFIED, H_IN_ACTIVATE, H_IN_OUTCOME, H_IN_LOG, H_IN_SELF_TEST };

/** Agent calls a test can make from inside a callback (harness_t.misuse_call). */
enum {
    H_CALL_STOP = 1,
    H_CALL_SUSPEND,
    H_CALL_START,
    H_CALL_RECONNECTED,
    H_CALL_POLL,
    H_CALL_HANDLE,
    H_CALL_CHECK
};

/** A new harness for a port; the agent is initialised (not started). */
harness_t *h_new(const ota_pal_t *pal, uint32_t app_version, const ota_agent_config_t *overrides);

/** Free the harness and its queues. */
void h_free(harness_t *h);

/** Re-create the agent (a reboot: fresh RAM), keeping the service's state. */
void h_reboot(harness_t *h, const ota_pal_t *pal, uint32_t app_version);

/** 1 if the agent is subscribed to "$aws/things/dev-1/" + rest. */
int h_subscribed(const harness_t *h, const char *rest);

/**
 * Set the execution the service holds: an OTA job for file[0..size) with
 * signature sig (base64 of sig_len bytes); status_details is a JSON object
 * text or NULL.
 */
void h_set_job(harness_t *h, const char *job_id, const char *stream, const uint8_t *file,
               uint32_t size, const uint8_t *sig, size_t sig_len, const char *status,
               const char *status_details);

/** Set the execution text verbatim (for malformed documents); "" = none. */
void h_set_execution(harness_t *h, const char *execution_json);

/**
 * The service cancels the job: $next/get names no job from now on, updates of
 * the job are refused (TerminalStateReached), and, with notify, notify-next
 * without an execution is published, behind the messages already in flight.
 */
void h_cancel(harness_t *h, int notify);

/** Deliver notify-next with the current execution to the agent now. */
void h_notify_next(harness_t *h);

/** Deliver a message on "$aws/things/dev-1/" + rest to the agent now. */
void h_deliver(harness_t *h, const char *rest, const void *payload, size_t len);

/**
 * Run the exchange: serve what the agent published, deliver due messages,
 * poll the agent, advance time in steps of step_ms, until stop(h) holds or
 * max_ms passed. Returns 1 if stop held.
 */
int h_run(harness_t *h, uint32_t max_ms, uint32_t step_ms, int (*stop)(const harness_t *h));

/** Process pending agent publishes once, without advancing time. */
void h_serve(harness_t *h);

/** Drop every message queued for the agent (a lost connection). */
void h_drop_in_flight(harness_t *h);

/** The last status payload, or "" (serves pending publishes first). */
const char *h_last_status(harness_t *h);

/** 1 if some status payload equals s exactly (serves pending publishes first). */
int h_has_status(harness_t *h, const char *s);

/** Stop conditions for h_run. */
int h_stop_outcome(const harness_t *h);
int h_stop_activating(const harness_t *h);
int h_stop_self_test(const harness_t *h);

/** Base64 of n bytes into out (NUL-terminated). */
void h_base64(const uint8_t *in, size_t n, char *out, size_t cap);

#endif /* AGENT_HARNESS_H */
