/*
 * otter service: the lastSeen write budget of Jobs requests. See
 * ota_svc_jobs_seen.h.
 */
#include "ota_svc_jobs_seen.h"

#include <stdlib.h>

/** FNV-1a 64 of a name, never 0 (0 marks a free slot). */
static uint64_t name_hash(const char *name)
{
    uint64_t h = 14695981039346656037u;
    for (const char *c = name; *c; c++)
        h = (h ^ (uint8_t)*c) * 1099511628211u;
    return h ? h : 1u;
}

/** The slot of key in a table of cap slots (a power of two): its own or the free one. */
static size_t slot_of(const uint64_t *keys, size_t cap, uint64_t key)
{
    size_t i = (size_t)(key ^ (key >> 32)) & (cap - 1u);
    while (keys[i] != 0 && keys[i] != key)
        i = (i + 1u) & (cap - 1u);
    return i;
}

/* Rebuilds the table with the entries still within the period, in at least
 * four times as many slots as they fill (64 at least). 0, or -1 out of memory. */
static int rebuild(ota_svc_seen_t *s, int64_t now_ms)
{
    size_t live = 0;
    for (size_t i = 0; i < s->cap; i++)
        if (s->key[i] != 0 && now_ms - s->at[i] < OTA_SVC_SEEN_PERIOD_MS && now_ms >= s->at[i])
            live++;
    size_t cap = 64;
    while (cap < 4u * (live + 1u))
        cap *= 2u;
    uint64_t *key = calloc(cap, sizeof *key);
    int64_t *at = calloc(cap, sizeof *at);
    if (!key || !at) {
        free(key);
        free(at);
        return -1;
    }
    for (size_t i = 0; i < s->cap; i++)
        if (s->key[i] != 0 && now_ms - s->at[i] < OTA_SVC_SEEN_PERIOD_MS && now_ms >= s->at[i]) {
            size_t k = slot_of(key, cap, s->key[i]);
            key[k] = s->key[i];
            at[k] = s->at[i];
        }
    free(s->key);
    free(s->at);
    s->key = key;
    s->at = at;
    s->cap = cap;
    s->n = live;
    return 0;
}

int ota_svc_seen_due(ota_svc_seen_t *s, const char *thing, int64_t now_ms)
{
    uint64_t key = name_hash(thing);
    if (s->cap != 0) {
        size_t i = slot_of(s->key, s->cap, key);
        if (s->key[i] == key) {
            if (now_ms - s->at[i] < OTA_SVC_SEEN_PERIOD_MS && now_ms >= s->at[i])
                return 0;
            s->at[i] = now_ms;
            return 1;
        }
    }
    /* A new entry: at most half the slots in use, the expired ones dropped on the way. */
    if (2u * (s->n + 1u) > s->cap && rebuild(s, now_ms) != 0)
        return 1;
    size_t i = slot_of(s->key, s->cap, key);
    s->key[i] = key;
    s->at[i] = now_ms;
    s->n++;
    return 1;
}

void ota_svc_seen_free(ota_svc_seen_t *s)
{
    free(s->key);
    free(s->at);
    s->key = NULL;
    s->at = NULL;
    s->cap = s->n = 0;
}
