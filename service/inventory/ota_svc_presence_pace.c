/* otter service: the presence write budget. See ota_svc_presence_pace.h. */
#define _POSIX_C_SOURCE 200809L

#include "ota_svc_presence_pace.h"

#include <stdlib.h>
#include <string.h>

#define CHAINS 4096u

struct ota_svc_pace {
    ota_svc_pace_thing_t *chain[CHAINS];
    size_t n;       /* entries */
    size_t holding; /* entries holding back a notice */
};

/* FNV-1a of a name, as a chain number. */
static size_t chain_of(const char *name)
{
    uint32_t h = 2166136261u;
    for (const char *c = name; *c; c++)
        h = (h ^ (uint8_t)*c) * 16777619u;
    return h % CHAINS;
}

ota_svc_pace_t *ota_svc_pace_create(void)
{
    return calloc(1, sizeof(ota_svc_pace_t));
}

void ota_svc_pace_destroy(ota_svc_pace_t *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < CHAINS; i++)
        for (ota_svc_pace_thing_t *e = p->chain[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    free(p);
}

ota_svc_pace_thing_t *ota_svc_pace_find(ota_svc_pace_t *p, const char *thing)
{
    for (ota_svc_pace_thing_t *e = p->chain[chain_of(thing)]; e; e = e->next)
        if (strcmp(e->name, thing) == 0)
            return e;
    return NULL;
}

ota_svc_pace_thing_t *ota_svc_pace_add(ota_svc_pace_t *p, const char *thing, int64_t written_ms)
{
    size_t len = strlen(thing);
    if (p->n >= OTA_SVC_PRESENCE_TRACKED_MAX || len > OTA_STORE_THING_NAME_MAX)
        return NULL;
    ota_svc_pace_thing_t *e = calloc(1, sizeof *e + len + 1);
    if (!e)
        return NULL;
    memcpy(e->name, thing, len + 1);
    e->written_ms = written_ms;
    size_t c = chain_of(thing);
    e->next = p->chain[c];
    p->chain[c] = e;
    p->n++;
    return e;
}

void ota_svc_pace_hold(ota_svc_pace_t *p, ota_svc_pace_thing_t *e, unsigned broker, int online,
                       int64_t at_ms)
{
    if (broker < 1 || broker > OTA_STORE_PRESENCE_BROKERS_MAX)
        return;
    unsigned bit = 1u << broker;
    if (!e->held)
        p->holding++;
    e->held |= bit;
    e->online = online ? e->online | bit : e->online & ~bit;
    e->at_ms[broker] = at_ms;
}

void ota_svc_pace_written(ota_svc_pace_t *p, ota_svc_pace_thing_t *e, int64_t now_ms)
{
    if (e->held)
        p->holding--;
    e->held = 0;
    e->written_ms = now_ms;
}

int ota_svc_pace_due(const ota_svc_pace_thing_t *e, int64_t now_ms)
{
    return now_ms - e->written_ms >= OTA_SVC_PRESENCE_PERIOD_MS || now_ms < e->written_ms;
}

size_t ota_svc_pace_notes(const ota_svc_pace_thing_t *e,
                          ota_store_presence_note_t notes[OTA_STORE_PRESENCE_BROKERS_MAX])
{
    size_t n = 0;
    for (unsigned k = 1; k <= OTA_STORE_PRESENCE_BROKERS_MAX; k++)
        if (e->held & (1u << k)) {
            notes[n].broker = k;
            notes[n].online = (e->online >> k) & 1u;
            notes[n].at_ms = e->at_ms[k];
            n++;
        }
    return n;
}

void ota_svc_pace_sweep(ota_svc_pace_t *p, int64_t now_ms, unsigned now_mask,
                        ota_svc_pace_write_fn write, void *ctx)
{
    if (!p->n)
        return;
    for (size_t i = 0; i < CHAINS; i++) {
        ota_svc_pace_thing_t **pp = &p->chain[i];
        while (*pp) {
            ota_svc_pace_thing_t *e = *pp;
            if (e->held && write && ((e->held & now_mask) || ota_svc_pace_due(e, now_ms))) {
                write(ctx, e, now_ms);
                ota_svc_pace_written(p, e, now_ms);
            }
            if (!e->held && ota_svc_pace_due(e, now_ms)) {
                *pp = e->next;
                free(e);
                p->n--;
                continue;
            }
            pp = &e->next;
        }
    }
}

size_t ota_svc_pace_count(const ota_svc_pace_t *p)
{
    return p ? p->n : 0;
}

size_t ota_svc_pace_holding(const ota_svc_pace_t *p)
{
    return p ? p->holding : 0;
}
