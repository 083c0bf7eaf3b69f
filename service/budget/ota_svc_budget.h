/*
 * otter service: per-thing budgets (token buckets) of requests and of answer
 * bytes.
 *
 * Every thing has three buckets: stream requests (each GetStream or
 * DescribeStream takes one token), Jobs API requests (each takes one token;
 * each is a store transaction, so this budget is smaller) and answer bytes (a
 * GetStream answer takes the block payload bytes it would send, before
 * anything is sent). A bucket holds at most its
 * burst and refills at its rate; a request that finds too few tokens is
 * refused with RequestThrottled and takes nothing from the byte bucket. A
 * third, small bucket limits how many throttling refusals a thing receives
 * per second, so refusing a flood cannot itself become one.
 *
 * Entries of things idle long enough to have refilled completely are
 * forgotten by ota_svc_budget_tick(), so memory follows the active things.
 *
 * Threading: one thread at a time. Time comes in as now_ms (monotonic ms).
 */
#ifndef OTA_SVC_BUDGET_H
#define OTA_SVC_BUDGET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Default sustained stream requests per second per thing (AWS IoT's publish limit per
 *  connection). */
#define OTA_SVC_BUDGET_REQUESTS_PER_S 100u
/** Default request burst: a whole 24 MiB download of the agent's default window (768 requests)
 *  with room for re-requests. */
#define OTA_SVC_BUDGET_REQUEST_BURST 1000u
/** Default sustained Jobs API requests per second per thing. */
#define OTA_SVC_BUDGET_JOBS_PER_S 10u
/** Default Jobs API burst: a download's progress reports (one per 64 blocks: 96 for 24 MiB)
 *  and the rest of an update, twice over. */
#define OTA_SVC_BUDGET_JOBS_BURST 200u
/** Default sustained answer bytes per second per thing. */
#define OTA_SVC_BUDGET_BYTES_PER_S (1024u * 1024u)
/** Default answer byte burst: the largest stream file (24 MiB on AWS) plus re-requests. */
#define OTA_SVC_BUDGET_BYTE_BURST (32u * 1024u * 1024u)
/** Throttling refusals sent per thing per second at most (the rest are dropped, counted). */
#define OTA_SVC_BUDGET_REFUSALS_PER_S 10u

/** Budget settings; a rate of 0 turns that budget off. */
typedef struct ota_svc_budget_config {
    uint32_t requests_per_s; /**< sustained stream requests per second */
    uint32_t request_burst;  /**< stream requests allowed at once (bucket size, >= 1) */
    uint64_t bytes_per_s;    /**< sustained answer bytes per second */
    uint64_t byte_burst;     /**< answer bytes allowed at once (>= 131072) */
    uint32_t jobs_per_s;     /**< sustained Jobs API requests per second */
    uint32_t jobs_burst;     /**< Jobs API requests allowed at once (>= 1) */
} ota_svc_budget_config_t;

/** Counters since creation. */
typedef struct ota_svc_budget_stats {
    uint64_t request_throttled; /**< stream requests refused by the request budget */
    uint64_t jobs_throttled;    /**< Jobs API requests refused by the Jobs budget */
    uint64_t bytes_throttled;   /**< requests refused by the byte budget */
    uint64_t refusals_dropped;  /**< throttling refusals not sent (refusal budget) */
    uint64_t things;            /**< things with an entry now */
} ota_svc_budget_stats_t;

/** The budgets of every thing. Opaque. */
typedef struct ota_svc_budget ota_svc_budget_t;

/**
 * Fills a configuration with the defaults above.
 * @param cfg receives the defaults.
 */
void ota_svc_budget_defaults(ota_svc_budget_config_t *cfg);

/**
 * Creates the budgets.
 * @param cfg settings; copied.
 * @return the budgets, or NULL (bad settings or out of memory).
 */
ota_svc_budget_t *ota_svc_budget_create(const ota_svc_budget_config_t *cfg);

/**
 * Frees the budgets.
 * @param b budgets, or NULL (no-op).
 */
void ota_svc_budget_destroy(ota_svc_budget_t *b);

/**
 * Takes one request token of a thing.
 * @param b      budgets (NULL: always allowed).
 * @param thing  thing name, NUL-terminated.
 * @param now_ms monotonic time in ms.
 * @return 1 allowed (token taken); 0 throttled.
 */
int ota_svc_budget_request(ota_svc_budget_t *b, const char *thing, int64_t now_ms);

/**
 * Takes one Jobs API request token of a thing.
 * @param b      budgets (NULL: always allowed).
 * @param thing  thing name, NUL-terminated.
 * @param now_ms monotonic time in ms.
 * @return 1 allowed (token taken); 0 throttled.
 */
int ota_svc_budget_jobs_request(ota_svc_budget_t *b, const char *thing, int64_t now_ms);

/**
 * Takes `bytes` answer-byte tokens of a thing, all or nothing. An answer larger
 * than the burst is allowed only when the thing's bucket is full, and leaves it
 * below zero: smaller answers wait until the rate has refilled it to their size,
 * another larger one until it is full again (a whole file larger than the burst
 * costs a wait, not a refusal for ever).
 * @param b      budgets (NULL: always allowed).
 * @param thing  thing name.
 * @param bytes  answer bytes the request would produce.
 * @param now_ms monotonic time in ms.
 * @return 1 allowed (tokens taken); 0 throttled (nothing taken).
 */
int ota_svc_budget_bytes(ota_svc_budget_t *b, const char *thing, uint64_t bytes, int64_t now_ms);

/**
 * Whether a throttling refusal may be sent to a thing now (takes a token of
 * its refusal bucket: OTA_SVC_BUDGET_REFUSALS_PER_S per second).
 * @return 1 send it; 0 drop it (counted in refusals_dropped).
 */
int ota_svc_budget_may_refuse(ota_svc_budget_t *b, const char *thing, int64_t now_ms);

/**
 * Forgets things whose buckets are full again (call every few seconds).
 * @param b      budgets (NULL: no-op).
 * @param now_ms monotonic time in ms.
 */
void ota_svc_budget_tick(ota_svc_budget_t *b, int64_t now_ms);

/**
 * Shares the budgets with other instances: from now on this instance grants
 * each thing 1/stream_share of the stream request and byte budgets and
 * 1/jobs_share of the Jobs budget (rates and bursts; a burst never below 1
 * request, nor below 128 KiB of bytes), so that instances that receive a
 * thing's requests in turn grant it about its whole budget together. Tokens a
 * thing holds above a smaller burst are dropped.
 * @param b            budgets (NULL: no-op).
 * @param stream_share instances sharing the stream requests (0 or 1: none).
 * @param jobs_share   instances sharing the Jobs API requests (0 or 1: none).
 */
void ota_svc_budget_set_shares(ota_svc_budget_t *b, unsigned stream_share, unsigned jobs_share);

/**
 * Reads the counters.
 * @param b   budgets (NULL: zeros).
 * @param out receives them.
 */
void ota_svc_budget_get_stats(const ota_svc_budget_t *b, ota_svc_budget_stats_t *out);

#ifdef __cplusplus
}
#endif

#endif /* OTA_SVC_BUDGET_H */
