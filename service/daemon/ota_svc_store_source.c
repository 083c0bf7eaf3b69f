/*
 * otter service: the store as the streams module's source, with a short cache.
 */
#define _POSIX_C_SOURCE 200809L
#include "ota_svc_store_source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUCKETS 1024u
/* Beyond this many cached permissions the cache is simply emptied. */
#define AUTH_MAX 200000u
/* A stream that does not exist is remembered for less time than one that does. */
#define NEGATIVE_TTL_MS 1000

typedef struct stream_entry {
    struct stream_entry *next;
    int64_t expires_ms;
    int found;
    ota_store_stream_t st;
    ota_svc_stream_file_t *files;
    char id[OTA_STORE_STREAM_ID_MAX + 1];
} stream_entry_t;

typedef struct auth_entry {
    struct auth_entry *next;
    int64_t expires_ms;
    int allowed;
    char *thing;
    char *stream;
} auth_entry_t;

struct ota_svc_store_source {
    ota_store_t *store;
    int64_t ttl_ms;
    stream_entry_t *streams[BUCKETS];
    auth_entry_t *auth[BUCKETS];
    size_t n_auth;
    ota_svc_store_source_stats_t stats;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t hash_str(const char *a, const char *b)
{
    uint32_t h = 2166136261u;
    for (; *a != '\0'; a++) {
        h = (h ^ (uint8_t)*a) * 16777619u;
    }
    if (b != NULL) {
        h = (h ^ 0xffu) * 16777619u;
        for (; *b != '\0'; b++) {
            h = (h ^ (uint8_t)*b) * 16777619u;
        }
    }
    return h % BUCKETS;
}

static void stream_entry_free(stream_entry_t *e)
{
    ota_store_stream_free(&e->st);
    free(e->files);
    free(e);
}

static void auth_entry_free(auth_entry_t *e)
{
    free(e->thing);
    free(e->stream);
    free(e);
}

/* Drops entries that expired (or all of them when all is set). */
static void sweep(ota_svc_store_source_t *src, int all)
{
    int64_t now = mono_ms();
    for (size_t h = 0; h < BUCKETS; h++) {
        stream_entry_t **sp = &src->streams[h];
        auth_entry_t **ap = &src->auth[h];
        while (*sp != NULL) {
            stream_entry_t *e = *sp;
            if (all || e->expires_ms <= now) {
                *sp = e->next;
                stream_entry_free(e);
            } else {
                sp = &e->next;
            }
        }
        while (*ap != NULL) {
            auth_entry_t *e = *ap;
            if (all || e->expires_ms <= now) {
                *ap = e->next;
                auth_entry_free(e);
                src->n_auth--;
            } else {
                ap = &e->next;
            }
        }
    }
}

ota_svc_store_source_t *ota_svc_store_source_create(ota_store_t *store, int64_t ttl_ms)
{
    ota_svc_store_source_t *src;
    if (store == NULL || ttl_ms < 0) {
        return NULL;
    }
    src = calloc(1, sizeof(*src));
    if (src == NULL) {
        return NULL;
    }
    src->store = store;
    src->ttl_ms = ttl_ms;
    return src;
}

void ota_svc_store_source_destroy(ota_svc_store_source_t *src)
{
    if (src == NULL) {
        return;
    }
    sweep(src, 1);
    free(src);
}

void ota_svc_store_source_tick(ota_svc_store_source_t *src)
{
    int changed = 0;
    if (ota_store_poll_changes(src->store, &changed) != OTA_STORE_OK || changed) {
        src->stats.invalidations++;
        sweep(src, 1);
        return;
    }
    sweep(src, 0);
}

void ota_svc_store_source_get_stats(const ota_svc_store_source_t *src,
                                    ota_svc_store_source_stats_t *out)
{
    *out = src->stats;
}

/* Fills out from a cached entry (found). */
static void expose(const stream_entry_t *e, ota_svc_stream_t *out)
{
    out->version = e->st.version;
    out->description = e->st.description;
    out->n_files = e->st.n_files;
    out->files = e->files;
}

static int src_get(void *ctx, const char *stream_id, ota_svc_stream_t *out)
{
    ota_svc_store_source_t *src = ctx;
    int64_t now = mono_ms();
    size_t h;
    stream_entry_t *e;
    int rc;

    src->stats.stream_lookups++;
    if (strlen(stream_id) > OTA_STORE_STREAM_ID_MAX) {
        return 0;
    }
    h = hash_str(stream_id, NULL);
    for (stream_entry_t **pp = &src->streams[h]; *pp != NULL; pp = &(*pp)->next) {
        e = *pp;
        if (strcmp(e->id, stream_id) != 0) {
            continue;
        }
        if (e->expires_ms > now) {
            if (e->found) {
                expose(e, out);
            }
            return e->found;
        }
        *pp = e->next;
        stream_entry_free(e);
        break;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return -1;
    }
    snprintf(e->id, sizeof(e->id), "%s", stream_id);
    src->stats.stream_queries++;
    rc = ota_store_stream_get(src->store, stream_id, &e->st);
    if (rc == OTA_STORE_NOT_FOUND || rc == OTA_STORE_INVALID) {
        e->found = 0;
        e->expires_ms = now + (src->ttl_ms < NEGATIVE_TTL_MS ? src->ttl_ms : NEGATIVE_TTL_MS);
    } else if (rc == OTA_STORE_OK) {
        e->found = 1;
        e->expires_ms = now + src->ttl_ms;
        e->files = calloc(e->st.n_files > 0 ? e->st.n_files : 1, sizeof(*e->files));
        if (e->files == NULL) {
            stream_entry_free(e);
            return -1;
        }
        for (size_t i = 0; i < e->st.n_files; i++) {
            e->files[i].file_id = e->st.files[i].file_id;
            e->files[i].path = e->st.files[i].path;
            e->files[i].size = e->st.files[i].size;
        }
    } else {
        stream_entry_free(e);
        return -1;
    }
    if (e->found) {
        expose(e, out);
    }
    rc = e->found;
    /* Kept in the table even without a cache: it must live until release(). */
    e->next = src->streams[h];
    src->streams[h] = e;
    return rc;
}

static void src_release(void *ctx, ota_svc_stream_t *stream)
{
    ota_svc_store_source_t *src = ctx;
    (void)stream;
    if (src->ttl_ms == 0) {
        sweep(src, 0); /* everything has expired */
    }
}

static int src_may_read(void *ctx, const char *thing, const char *stream_id)
{
    ota_svc_store_source_t *src = ctx;
    int64_t now = mono_ms();
    size_t h = hash_str(thing, stream_id);
    auth_entry_t *e;
    int rc;

    src->stats.auth_lookups++;
    for (auth_entry_t **pp = &src->auth[h]; *pp != NULL; pp = &(*pp)->next) {
        e = *pp;
        if (strcmp(e->thing, thing) != 0 || strcmp(e->stream, stream_id) != 0) {
            continue;
        }
        if (e->expires_ms > now) {
            return e->allowed;
        }
        *pp = e->next;
        auth_entry_free(e);
        src->n_auth--;
        break;
    }
    src->stats.auth_queries++;
    rc = ota_store_thing_may_read_stream(src->store, thing, stream_id);
    if (rc < 0) {
        return -1;
    }
    if (src->ttl_ms == 0) {
        return rc;
    }
    if (src->n_auth >= AUTH_MAX) {
        sweep(src, 1);
    }
    e = calloc(1, sizeof(*e));
    if (e != NULL) {
        e->thing = strdup(thing);
        e->stream = strdup(stream_id);
        if (e->thing == NULL || e->stream == NULL) {
            auth_entry_free(e);
            return rc;
        }
        e->allowed = rc;
        e->expires_ms = now + src->ttl_ms;
        e->next = src->auth[h];
        src->auth[h] = e;
        src->n_auth++;
    }
    return rc;
}

void ota_svc_store_source_bind(ota_svc_store_source_t *src, ota_svc_streams_source_t *out)
{
    out->get = src_get;
    out->release = src_release;
    out->may_read = src_may_read;
    out->ctx = src;
}
