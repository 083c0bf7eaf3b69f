/*
 * otter service: per-thing budgets. See ota_svc_budget.h.
 */
#define _POSIX_C_SOURCE 200809L
#include "ota_svc_budget.h"

#include <stdlib.h>
#include <string.h>

#define BUCKETS 4096u

/* Token counts are kept in millitokens so that integer refills stay exact. */
typedef struct bucket {
    int64_t milli; /* tokens x 1000 */
    int64_t at_ms; /* last refill */
} bucket_t;

typedef struct entry {
    struct entry *next;
    bucket_t req, jobs, bytes, refusals;
    char thing[];
} entry_t;

struct ota_svc_budget {
    ota_svc_budget_config_t base; /* as configured */
    ota_svc_budget_config_t cfg;  /* this instance's share of it */
    ota_svc_budget_stats_t stats;
    entry_t *table[BUCKETS];
};

void ota_svc_budget_defaults(ota_svc_budget_config_t *cfg)
{
    cfg->requests_per_s = OTA_SVC_BUDGET_REQUESTS_PER_S;
    cfg->request_burst = OTA_SVC_BUDGET_REQUEST_BURST;
    cfg->bytes_per_s = OTA_SVC_BUDGET_BYTES_PER_S;
    cfg->byte_burst = OTA_SVC_BUDGET_BYTE_BURST;
    cfg->jobs_per_s = OTA_SVC_BUDGET_JOBS_PER_S;
    cfg->jobs_burst = OTA_SVC_BUDGET_JOBS_BURST;
}

ota_svc_budget_t *ota_svc_budget_create(const ota_svc_budget_config_t *cfg)
{
    if (cfg == NULL || (cfg->requests_per_s > 0 && cfg->request_burst < 1) ||
        (cfg->jobs_per_s > 0 && cfg->jobs_burst < 1) ||
        (cfg->bytes_per_s > 0 && cfg->byte_burst < 131072u) ||
        cfg->byte_burst > (uint64_t)INT64_MAX / 2000u ||
        cfg->bytes_per_s > (uint64_t)INT64_MAX / 2000u) {
        return NULL;
    }
    ota_svc_budget_t *b = calloc(1, sizeof(*b));
    if (b != NULL) {
        b->base = *cfg;
        b->cfg = *cfg;
    }
    return b;
}

/* x / n rounded up, at least min (rates and bursts of a shared budget). */
static uint64_t share_of(uint64_t x, unsigned n, uint64_t min)
{
    uint64_t v = (x + n - 1) / n;
    return x == 0 ? 0 : v < min ? min : v;
}

void ota_svc_budget_set_shares(ota_svc_budget_t *b, unsigned stream_share, unsigned jobs_share)
{
    unsigned s = stream_share > 1 ? stream_share : 1;
    unsigned j = jobs_share > 1 ? jobs_share : 1;
    if (b == NULL) {
        return;
    }
    b->cfg.requests_per_s = (uint32_t)share_of(b->base.requests_per_s, s, 1);
    b->cfg.request_burst = (uint32_t)share_of(b->base.request_burst, s, 1);
    b->cfg.bytes_per_s = share_of(b->base.bytes_per_s, s, 1);
    b->cfg.byte_burst = share_of(b->base.byte_burst, s, 131072u);
    b->cfg.jobs_per_s = (uint32_t)share_of(b->base.jobs_per_s, j, 1);
    b->cfg.jobs_burst = (uint32_t)share_of(b->base.jobs_burst, j, 1);
}

void ota_svc_budget_destroy(ota_svc_budget_t *b)
{
    if (b == NULL) {
        return;
    }
    for (size_t i = 0; i < BUCKETS; i++) {
        entry_t *e = b->table[i];
        while (e != NULL) {
            entry_t *next = e->next;
            free(e);
            e = next;
        }
    }
    free(b);
}

static size_t hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s != '\0'; s++) {
        h = (h ^ (uint8_t)*s) * 16777619u;
    }
    return h % BUCKETS;
}

static void fill(bucket_t *k, int64_t burst, int64_t now_ms)
{
    k->milli = burst * 1000;
    k->at_ms = now_ms;
}

/* Drops tokens above a burst that became smaller (a budget shared by more instances). */
static void cap_at(bucket_t *k, int64_t burst)
{
    if (k->milli > burst * 1000) {
        k->milli = burst * 1000;
    }
}

/* Refills a bucket of `burst` tokens at `rate` per second. */
static void refill(bucket_t *k, int64_t rate, int64_t burst, int64_t now_ms)
{
    int64_t dt = now_ms - k->at_ms;
    if (dt <= 0) {
        return;
    }
    k->at_ms = now_ms;
    /* dt * rate may be large after a long pause: the bucket is full anyway (from what it
     * holds, which is below zero after an answer larger than the burst). */
    if (dt > (burst * 1000 - k->milli) / (rate > 0 ? rate : 1) + 1000) {
        k->milli = burst * 1000;
        return;
    }
    k->milli += dt * rate;
    cap_at(k, burst);
}

static int full(bucket_t *k, int64_t rate, int64_t burst, int64_t now_ms);

static entry_t *find(ota_svc_budget_t *b, const char *thing, int64_t now_ms)
{
    size_t h = hash(thing);
    for (entry_t *e = b->table[h]; e != NULL; e = e->next) {
        if (strcmp(e->thing, thing) == 0) {
            return e;
        }
    }
    size_t n = strlen(thing);
    entry_t *e = malloc(sizeof(*e) + n + 1);
    if (e == NULL) {
        return NULL;
    }
    memcpy(e->thing, thing, n + 1);
    fill(&e->req, b->cfg.request_burst, now_ms);
    fill(&e->jobs, b->cfg.jobs_burst, now_ms);
    fill(&e->bytes, (int64_t)b->cfg.byte_burst, now_ms);
    fill(&e->refusals, OTA_SVC_BUDGET_REFUSALS_PER_S, now_ms);
    e->next = b->table[h];
    b->table[h] = e;
    b->stats.things++;
    return e;
}

/* Takes `n` tokens (all or nothing); 1 taken, 0 not enough. */
static int take(bucket_t *k, int64_t rate, int64_t burst, int64_t n, int64_t now_ms)
{
    refill(k, rate, burst, now_ms);
    cap_at(k, burst);
    if (k->milli < n * 1000) {
        return 0;
    }
    k->milli -= n * 1000;
    return 1;
}

int ota_svc_budget_request(ota_svc_budget_t *b, const char *thing, int64_t now_ms)
{
    if (b == NULL || b->cfg.requests_per_s == 0) {
        return 1;
    }
    entry_t *e = find(b, thing, now_ms);
    if (e == NULL) {
        return 1; /* out of memory: never refuse for our own failure */
    }
    if (take(&e->req, b->cfg.requests_per_s, b->cfg.request_burst, 1, now_ms)) {
        return 1;
    }
    b->stats.request_throttled++;
    return 0;
}

int ota_svc_budget_jobs_request(ota_svc_budget_t *b, const char *thing, int64_t now_ms)
{
    if (b == NULL || b->cfg.jobs_per_s == 0) {
        return 1;
    }
    entry_t *e = find(b, thing, now_ms);
    if (e == NULL) {
        return 1;
    }
    if (take(&e->jobs, b->cfg.jobs_per_s, b->cfg.jobs_burst, 1, now_ms)) {
        return 1;
    }
    b->stats.jobs_throttled++;
    return 0;
}

int ota_svc_budget_bytes(ota_svc_budget_t *b, const char *thing, uint64_t bytes, int64_t now_ms)
{
    if (b == NULL || b->cfg.bytes_per_s == 0 || bytes == 0) {
        return 1;
    }
    entry_t *e = find(b, thing, now_ms);
    if (e == NULL) {
        return 1;
    }
    int64_t rate = (int64_t)b->cfg.bytes_per_s, burst = (int64_t)b->cfg.byte_burst;
    if (bytes <= b->cfg.byte_burst) {
        if (take(&e->bytes, rate, burst, (int64_t)bytes, now_ms)) {
            return 1;
        }
    } else if (bytes <= (uint64_t)INT64_MAX / 4000u && full(&e->bytes, rate, burst, now_ms)) {
        /* More than the burst at once (a whole file over it, asked without Range): allowed
         * from a full bucket, which it leaves in debt, so the thing's next answers wait until
         * the rate has paid for all of it and its long-run rate stays the budget's. */
        e->bytes.milli -= (int64_t)bytes * 1000;
        return 1;
    }
    b->stats.bytes_throttled++;
    return 0;
}

int ota_svc_budget_may_refuse(ota_svc_budget_t *b, const char *thing, int64_t now_ms)
{
    if (b == NULL) {
        return 1;
    }
    entry_t *e = find(b, thing, now_ms);
    if (e == NULL) {
        return 0;
    }
    if (take(&e->refusals, OTA_SVC_BUDGET_REFUSALS_PER_S, OTA_SVC_BUDGET_REFUSALS_PER_S, 1,
             now_ms)) {
        return 1;
    }
    b->stats.refusals_dropped++;
    return 0;
}

static int full(bucket_t *k, int64_t rate, int64_t burst, int64_t now_ms)
{
    if (rate == 0) {
        return 1;
    }
    refill(k, rate, burst, now_ms);
    return k->milli >= burst * 1000;
}

void ota_svc_budget_tick(ota_svc_budget_t *b, int64_t now_ms)
{
    if (b == NULL) {
        return;
    }
    for (size_t i = 0; i < BUCKETS; i++) {
        entry_t **pp = &b->table[i];
        while (*pp != NULL) {
            entry_t *e = *pp;
            if (full(&e->req, b->cfg.requests_per_s, b->cfg.request_burst, now_ms) &&
                full(&e->jobs, b->cfg.jobs_per_s, b->cfg.jobs_burst, now_ms) &&
                full(&e->bytes, (int64_t)b->cfg.bytes_per_s, (int64_t)b->cfg.byte_burst, now_ms) &&
                full(&e->refusals, OTA_SVC_BUDGET_REFUSALS_PER_S, OTA_SVC_BUDGET_REFUSALS_PER_S,
                     now_ms)) {
                *pp = e->next;
                free(e);
                b->stats.things--;
                continue;
            }
            pp = &e->next;
        }
    }
}

void ota_svc_budget_get_stats(const ota_svc_budget_t *b, ota_svc_budget_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (b != NULL) {
        *out = b->stats;
    }
}
