/* otter web console: the HTTP API /api/v1 (see ota_web_api.h, docs/openapi.yaml). */
#include "ota_web_api.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include <sys/stat.h>
#include <unistd.h>

#include "ota_job_spec.h"
#include "ota_publish_counter.h"
#include "ota_publish_firmware.h"
#include "ota_publish_job.h"
#include "ota_publish_sign.h"
#include "ota_store.h"
#include "ota_svc_reason.h"
#include "ota_web_api_internal.h"
#include "otter/ota_version.h"

typedef struct route_entry {
    ota_web_route_t route;
    ota_web_handler_fn fn;
    int needs_store;
    int raw; /**< the body is application/octet-stream (an upload), not JSON */
} route_entry_t;

/* The API's names for the fields the job rules talk about. */
static const ota_job_spec_names_t api_names = {.targets = "targets",
                                               .timeout = "timeoutMinutes",
                                               .rollout = "rolloutRate",
                                               .abort_pct = "abortFailurePercent",
                                               .abort_min = "abortMinFinished"};

/* ------------------------------------------------------------- answers -- */

char *ota_web_error_json(const char *code, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "code", code);
    cJSON_AddStringToObject(o, "message", message);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

void ota_web_error(ota_web_response_t *resp, int status, const char *code, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    free(resp->body);
    resp->status = status;
    resp->body = ota_web_error_json(code, msg);
}

void ota_web_answer(ota_web_response_t *resp, int status, cJSON *value)
{
    free(resp->body);
    resp->body = value ? cJSON_PrintUnformatted(value) : NULL;
    cJSON_Delete(value);
    if (resp->body == NULL) {
        ota_web_error(resp, 500, "internal", "out of memory; try again");
        return;
    }
    resp->status = status;
}

void ota_web_store_error(ota_web_response_t *resp, ota_store_t *store, const char *what)
{
    ota_web_error(resp, 500, "internal", "cannot %s (%s); check otter-web's data folder", what,
                  ota_store_errmsg(store));
}

void ota_web_response_free(ota_web_response_t *resp)
{
    free(resp->body);
    resp->body = NULL;
}

cJSON *ota_web_body_object(const ota_web_request_t *req, ota_web_response_t *resp,
                           const char *const *known, size_t n)
{
    cJSON *body = req->body ? cJSON_ParseWithLength(req->body, req->body_len) : NULL;
    if (!cJSON_IsObject(body)) {
        cJSON_Delete(body);
        ota_web_error(resp, 400, "bad_request",
                      "the body is not a JSON object; see docs/openapi.yaml");
        return NULL;
    }
    const cJSON *f;
    cJSON_ArrayForEach(f, body)
    {
        size_t k = 0;
        while (k < n && strcmp(known[k], f->string) != 0) {
            k++;
        }
        if (k == n) {
            ota_web_error(resp, 400, "bad_request", "unknown field '%.60s'; see docs/openapi.yaml",
                          f->string);
            cJSON_Delete(body);
            return NULL;
        }
    }
    return body;
}

/* A time in ms as a JSON number, or null for 0. */
static void add_time(cJSON *o, const char *key, int64_t ms)
{
    if (ms > 0) {
        cJSON_AddNumberToObject(o, key, (double)ms);
    } else {
        cJSON_AddNullToObject(o, key);
    }
}

/* statusDetails as an object (a device wrote them: sent as data, never markup),
 * and their reason made readable (reasonText: an error code named and explained). */
static void add_details(cJSON *o, const char *details)
{
    cJSON *d = details ? cJSON_Parse(details) : NULL;
    if (d == NULL) {
        d = cJSON_CreateObject();
    }
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(d, "reason");
    if (cJSON_IsString(reason)) {
        char text[512];
        ota_svc_reason_text(reason->valuestring, text, sizeof text);
        cJSON_AddStringToObject(o, "reasonText", text);
    }
    cJSON_AddItemToObject(o, "statusDetails", d);
}

/* ---------------------------------------------------------------- images -- */

/* The version an image carries, from its stream's description ("... version X.Y.Z"). */
static void image_version(const char *description, char *out, size_t cap)
{
    out[0] = '\0';
    const char *v = description ? strstr(description, " version ") : NULL;
    if (v == NULL) {
        return;
    }
    v += 9;
    size_t n = strspn(v, "0123456789.");
    if (n > 0 && n < cap) {
        memcpy(out, v, n);
        out[n] = '\0';
    }
}

/* The version of a stream's image ("" when unknown). */
static void stream_version(ota_store_t *store, const char *stream_id, char *out, size_t cap)
{
    out[0] = '\0';
    ota_store_stream_t s;
    if (stream_id[0] != '\0' && ota_store_stream_get(store, stream_id, &s) == OTA_STORE_OK) {
        image_version(s.description, out, cap);
        ota_store_stream_free(&s);
    }
}

typedef struct image_jobs {
    const char *stream_id;
    char first_job[OTA_STORE_JOB_ID_MAX + 1];
    char *document; /* the first job's document (heap) */
    /* What the first job (the one that published the image) targets: a job
     * made again from the image targets the same version and device types. */
    char target_version[OTA_STORE_VERSION_MAX + 1];
    char device_types[OTA_STORE_DEVICE_TYPES_MAX + 1];
    unsigned n;
} image_jobs_t;

static int count_image_job(void *ctx, const ota_store_job_t *j)
{
    image_jobs_t *c = ctx;
    if (strcmp(j->stream_id, c->stream_id) == 0) {
        if (c->n++ == 0) {
            snprintf(c->first_job, sizeof c->first_job, "%s", j->job_id);
            c->document = j->document ? strdup(j->document) : NULL;
            snprintf(c->target_version, sizeof c->target_version, "%s", j->target_version);
            snprintf(c->device_types, sizeof c->device_types, "%s", j->device_types);
        }
    }
    return 0;
}

static int image_row(void *ctx, const ota_store_stream_t *s)
{
    void **c = ctx;
    cJSON *arr = c[0];
    ota_store_t *store = c[1];
    image_jobs_t jobs = {.stream_id = s->stream_id};
    if (ota_store_job_list(store, count_image_job, &jobs) != OTA_STORE_OK) {
        return 1;
    }
    free(jobs.document);
    cJSON *o = cJSON_CreateObject();
    char ver[32];
    image_version(s->description, ver, sizeof ver);
    cJSON_AddStringToObject(o, "imageId", s->stream_id);
    cJSON_AddStringToObject(o, "version", ver);
    cJSON_AddStringToObject(o, "description", s->description);
    cJSON_AddNumberToObject(o, "size", s->n_files ? (double)s->files[0].size : 0);
    add_time(o, "createdAt", s->created_ms);
    cJSON_AddNumberToObject(o, "jobs", jobs.n);
    /* An image can start a new job when a job holds its signed document. */
    cJSON_AddBoolToObject(o, "signed", jobs.n > 0);
    cJSON_AddItemToArray(arr, o);
    return 0;
}

static void h_images(const ota_web_request_t *req, ota_web_response_t *resp, ota_store_t *store,
                     char args[][160])
{
    (void)req;
    (void)args;
    cJSON *arr = cJSON_CreateArray();
    void *c[2] = {arr, store};
    if (ota_store_stream_list(store, image_row, c) != OTA_STORE_OK) {
        cJSON_Delete(arr);
        ota_web_store_error(resp, store, "list images");
        return;
    }
    ota_web_answer(resp, 200, arr);
}

/* ---------------------------------------------------------------- things -- */

/** Jobs by id with their stream (for a thing's history and version). */
typedef struct job_ref {
    char job_id[OTA_STORE_JOB_ID_MAX + 1];
    char stream_id[OTA_STORE_STREAM_ID_MAX + 1];
    char version[32];
} job_ref_t;

typedef struct job_refs {
    job_ref_t *v;
    size_t n, cap;
} job_refs_t;

static int collect_job(void *ctx, const ota_store_job_t *j)
{
    job_refs_t *r = ctx;
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        job_ref_t *g = realloc(r->v, cap * sizeof *g);
        if (g == NULL) {
            return 1;
        }
        r->v = g;
        r->cap = cap;
    }
    job_ref_t *x = &r->v[r->n++];
    snprintf(x->job_id, sizeof x->job_id, "%s", j->job_id);
    snprintf(x->stream_id, sizeof x->stream_id, "%s", j->stream_id);
    x->version[0] = '\0';
    return 0;
}

static int load_jobs(ota_store_t *store, job_refs_t *r)
{
    memset(r, 0, sizeof *r);
    if (ota_store_job_list(store, collect_job, r) != OTA_STORE_OK) {
        free(r->v);
        memset(r, 0, sizeof *r);
        return -1;
    }
    for (size_t i = 0; i < r->n; i++) {
        stream_version(store, r->v[i].stream_id, r->v[i].version, sizeof r->v[i].version);
    }
    return 0;
}

/** Groups with their members, for the groups of a thing. */
typedef struct group_map {
    cJSON *groups; /* array of {"name", "members": [...]} */
    ota_store_t *store;
} group_map_t;

static int add_group(void *ctx, const ota_store_group_t *group)
{
    group_map_t *m = ctx;
    cJSON *g = ota_web_group_json(m->store, group);
    if (g == NULL) {
        return 1;
    }
    cJSON_AddItemToArray(m->groups, g);
    return 0;
}

static cJSON *load_groups(ota_store_t *store)
{
    group_map_t m = {.groups = cJSON_CreateArray(), .store = store};
    if (ota_store_group_list(store, add_group, &m) != OTA_STORE_OK) {
        cJSON_Delete(m.groups);
        return NULL;
    }
    return m.groups;
}

/** A group's member, for the groups of a thing. */
typedef struct member_ref {
    const char *thing, *group; /* the groups' JSON's */
    size_t order;              /* groups in their order, then members in theirs */
} member_ref_t;

/** Every group's members by thing, so that a thing's groups are found without a walk of all. */
typedef struct group_index {
    member_ref_t *v;
    size_t n;
} group_index_t;

static int cmp_member(const void *a, const void *b)
{
    const member_ref_t *x = a, *y = b;
    int c = strcmp(x->thing, y->thing);
    return c != 0 ? c : (x->order > y->order) - (x->order < y->order);
}

/* Indexes groups (load_groups()); -1 out of memory. */
static int index_groups(const cJSON *groups, group_index_t *ix)
{
    memset(ix, 0, sizeof *ix);
    size_t n = 0;
    const cJSON *g, *m;
    cJSON_ArrayForEach(g, groups)
    {
        n += (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(g, "members"));
    }
    if (n > 0 && (ix->v = malloc(n * sizeof *ix->v)) == NULL) {
        return -1;
    }
    cJSON_ArrayForEach(g, groups)
    {
        const char *name = cJSON_GetObjectItemCaseSensitive(g, "name")->valuestring;
        cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(g, "members"))
        {
            ix->v[ix->n] = (member_ref_t){m->valuestring, name, ix->n};
            ix->n++;
        }
    }
    if (ix->n > 1) {
        qsort(ix->v, ix->n, sizeof *ix->v, cmp_member);
    }
    return 0;
}

/* The names of the groups a thing is in, in the groups' order. */
static cJSON *groups_of(const group_index_t *ix, const char *thing)
{
    cJSON *out = cJSON_CreateArray();
    size_t lo = 0, hi = ix->n; /* the first member entry of thing */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(ix->v[mid].thing, thing) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    for (; lo < ix->n && strcmp(ix->v[lo].thing, thing) == 0; lo++) {
        cJSON_AddItemToArray(out, cJSON_CreateString(ix->v[lo].group));
    }
    return out;
}

static cJSON *execution_json(const ota_store_execution_t *e, const char *version)
{
    cJSON *x = cJSON_CreateObject();
    cJSON_AddStringToObject(x, "jobId", e->job_id);
    cJSON_AddStringToObject(x, "thing", e->thing);
    cJSON_AddStringToObject(x, "status", ota_store_exec_status_name(e->status));
    cJSON_AddBoolToObject(x, "released", e->released);
    add_details(x, e->status_details);
    cJSON_AddNumberToObject(x, "versionNumber", (double)e->version_number);
    add_time(x, "queuedAt", e->queued_at_ms);
    add_time(x, "startedAt", e->started_at_ms);
    add_time(x, "lastUpdatedAt", e->last_updated_at_ms);
    if (version != NULL) {
        cJSON_AddStringToObject(x, "version", version);
    }
    return x;
}

/* An inventory attribute as a JSON string, or null when the thing never reported it. */
static void add_attr(cJSON *o, const char *json_key, const ota_store_attr_t *attrs, size_t n,
                     const char *key, const char *fallback_key)
{
    const char *v = ota_store_attr_find(attrs, n, key);
    if (v == NULL && fallback_key != NULL) {
        v = ota_store_attr_find(attrs, n, fallback_key);
    }
    if (v != NULL) {
        cJSON_AddStringToObject(o, json_key, v);
    } else {
        cJSON_AddNullToObject(o, json_key);
    }
}

/* 1 when the thing's attribute key is "true". */
static int attr_true(const ota_store_attr_t *attrs, size_t n, const char *key)
{
    const char *v = ota_store_attr_find(attrs, n, key);
    return v != NULL && strcmp(v, "true") == 0;
}

/*
 * What the inventory knows, from the thing's attributes (ota_store_thing_list_attrs()):
 * deviceType (the operator's, else the reported one), firmwareVersion (reported), online and
 * presence (the brokers' presence: online, unknown, offline, or null never seen) with
 * presenceUnknownOn (broker numbers), lastSeen; disabled and revoked.
 */
static void add_inventory(cJSON *o, const ota_store_attr_t *attrs, size_t n)
{
    add_attr(o, "deviceType", attrs, n, "deviceType", "reportedDeviceType");
    add_attr(o, "firmwareVersion", attrs, n, "firmwareVersion", NULL);
    /* presence: "online" (known on a broker), "unknown" (known on none, unknown on some since
     * a gap in the service's view), "offline", null (never seen) */
    const char *v = ota_store_attr_find(attrs, n, "connected");
    const char *presence = v == NULL                   ? NULL
                           : strcmp(v, "true") == 0    ? "online"
                           : strcmp(v, "unknown") == 0 ? "unknown"
                                                       : "offline";
    cJSON_AddBoolToObject(o, "online", presence != NULL && strcmp(presence, "online") == 0);
    cJSON_AddItemToObject(o, "presence",
                          presence ? cJSON_CreateString(presence) : cJSON_CreateNull());
    cJSON *unknown = cJSON_AddArrayToObject(o, "presenceUnknownOn");
    if ((v = ota_store_attr_find(attrs, n, "presenceUnknownOn")) != NULL) {
        for (const char *c = v; *c != '\0'; c++) {
            if (*c >= '1' && *c <= '9') {
                cJSON_AddItemToArray(unknown, cJSON_CreateNumber(*c - '0'));
            }
        }
    }
    long long seen = 0;
    if ((v = ota_store_attr_find(attrs, n, "lastSeen")) != NULL) {
        seen = strtoll(v, NULL, 10);
    }
    add_time(o, "lastSeen", seen);
    /* the life-cycle commands' marks: otter thing disable (until enable), otter thing revoke */
    cJSON_AddBoolToObject(o, "disabled", attr_true(attrs, n, "disabled"));
    cJSON_AddBoolToObject(o, "revoked", attr_true(attrs, n, "revoked"));
}

/* What a thing's execution of a job adds to the latest report and the version it runs. */
static void note_execution(const ota_store_execution_t *e, const job_ref_t *job,
                           int64_t *last_report, int64_t *best_ok, const char **version)
{
    if (e->started_at_ms > 0 || ota_store_exec_status_is_terminal(e->status)) {
        if (e->status != OTA_STORE_EXEC_CANCELED && e->last_updated_at_ms > *last_report) {
            *last_report = e->last_updated_at_ms;
        }
    }
    if (e->status == OTA_STORE_EXEC_SUCCEEDED && e->last_updated_at_ms >= *best_ok &&
        job->version[0] != '\0') {
        *best_ok = e->last_updated_at_ms;
        *version = job->version;
    }
}

/** What a listed thing's executions say (read for every thing at once). */
typedef struct thing_jobs {
    char thing[OTA_STORE_THING_NAME_MAX + 1];
    int64_t last_report;
    const char *version; /* a job_refs_t's, or NULL */
    int has_current;
    char job_id[OTA_STORE_JOB_ID_MAX + 1]; /* the current job */
    ota_store_exec_status_t status;
    char *details;
} thing_jobs_t;

typedef struct thing_jobs_list {
    const job_refs_t *jobs;
    thing_jobs_t *v;
    size_t n, cap;
    int failed; /* out of memory */
} thing_jobs_list_t;

/* Keeps what one thing's executions (by job, in the jobs' order) say. */
static int keep_thing_jobs(void *ctx, const char *thing, const ota_store_execution_t *execs,
                           size_t n, long next)
{
    thing_jobs_list_t *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        thing_jobs_t *v = realloc(l->v, cap * sizeof *v);
        if (v == NULL) {
            l->failed = 1;
            return 1;
        }
        l->v = v;
        l->cap = cap;
    }
    thing_jobs_t *x = &l->v[l->n];
    memset(x, 0, sizeof *x);
    snprintf(x->thing, sizeof x->thing, "%s", thing);
    int64_t best_ok = 0;
    size_t k = 0; /* both in the jobs' order: the next execution's job is after k */
    for (size_t i = 0; i < n; i++) {
        size_t j = k;
        while (j < l->jobs->n && strcmp(l->jobs->v[j].job_id, execs[i].job_id) != 0) {
            j++;
        }
        if (j == l->jobs->n) {
            continue; /* a job created since the jobs were read */
        }
        k = j + 1;
        note_execution(&execs[i], &l->jobs->v[j], &x->last_report, &best_ok, &x->version);
    }
    if (next >= 0) {
        x->has_current = 1;
        snprintf(x->job_id, sizeof x->job_id, "%s", execs[next].job_id);
        x->status = execs[next].status;
        if (execs[next].status_details != NULL &&
            (x->details = strdup(execs[next].status_details)) == NULL) {
            l->failed = 1;
            return 1;
        }
    }
    l->n++;
    return 0;
}

static int cmp_thing_jobs(const void *a, const void *b)
{
    return strcmp(((const thing_jobs_t *)a)->thing, ((const thing_jobs_t *)b)->thing);
}

static void free_thing_jobs(thing_jobs_list_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].details);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Every thing's executions, in one read; -1 on failure. */
static int load_thing_jobs(ota_store_t *store, const job_refs_t *jobs, thing_jobs_list_t *l)
{
    memset(l, 0, sizeof *l);
    l->jobs = jobs;
    if (ota_store_thing_executions(store, keep_thing_jobs, l) != OTA_STORE_OK || l->failed) {
        free_thing_jobs(l);
        return -1;
    }
    qsort(l->v, l->n, sizeof *l->v, cmp_thing_jobs);
    return 0;
}

/* The current job of a thing as JSON. */
static cJSON *current_job(const char *job_id, ota_store_exec_status_t status, const char *details)
{
    cJSON *cur = cJSON_CreateObject();
    cJSON_AddStringToObject(cur, "jobId", job_id);
    cJSON_AddStringToObject(cur, "status", ota_store_exec_status_name(status));
    add_details(cur, details);
    return cur;
}

/*
 * A thing as JSON: name, creation, groups, version (the image of its last
 * SUCCEEDED job), last report, current job; with history, every execution.
 * Its attributes are attrs; its executions come from listing (every thing's, read at once) when
 * it is not NULL, else they are read here, a job at a time.
 */
static cJSON *thing_json(ota_store_t *store, const ota_store_thing_t *t,
                         const ota_store_attr_t *attrs, size_t n_attrs, const job_refs_t *jobs,
                         const group_index_t *groups, int history, const thing_jobs_list_t *listing)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", t->name);
    add_time(o, "createdAt", t->created_ms);
    cJSON_AddItemToObject(o, "groups", groups_of(groups, t->name));
    cJSON *hist = history ? cJSON_CreateArray() : NULL;
    int64_t last_report = 0, best_ok = 0;
    const char *version = NULL;
    const thing_jobs_t *pre = NULL;
    if (listing != NULL) {
        thing_jobs_t key;
        snprintf(key.thing, sizeof key.thing, "%s", t->name);
        pre = bsearch(&key, listing->v, listing->n, sizeof *listing->v, cmp_thing_jobs);
        if (pre != NULL) {
            last_report = pre->last_report;
            version = pre->version;
        }
    }
    for (size_t i = 0; listing == NULL && i < jobs->n; i++) {
        ota_store_execution_t e;
        if (ota_store_execution_get(store, jobs->v[i].job_id, t->name, &e) != OTA_STORE_OK) {
            continue;
        }
        note_execution(&e, &jobs->v[i], &last_report, &best_ok, &version);
        if (hist != NULL) {
            cJSON_AddItemToArray(hist, execution_json(&e, jobs->v[i].version));
        }
        ota_store_execution_free(&e);
    }
    if (version != NULL) {
        cJSON_AddStringToObject(o, "version", version);
    } else {
        cJSON_AddNullToObject(o, "version");
    }
    add_time(o, "lastReportAt", last_report);
    add_inventory(o, attrs, n_attrs);
    ota_store_execution_t next;
    if (listing != NULL) {
        if (pre != NULL && pre->has_current) {
            cJSON_AddItemToObject(o, "currentJob",
                                  current_job(pre->job_id, pre->status, pre->details));
        } else {
            cJSON_AddNullToObject(o, "currentJob");
        }
    } else if (ota_store_execution_next(store, t->name, &next) == OTA_STORE_OK) {
        cJSON_AddItemToObject(o, "currentJob",
                              current_job(next.job_id, next.status, next.status_details));
        ota_store_execution_free(&next);
    } else {
        cJSON_AddNullToObject(o, "currentJob");
    }
    if (hist != NULL) {
        cJSON_AddItemToObject(o, "history", hist);
    }
    return o;
}

typedef struct thing_list_ctx {
    ota_store_t *store;
    const job_refs_t *jobs;
    const group_index_t *groups;
    int history;
    const thing_jobs_list_t *listing; /* every thing's executions, when listing */
    cJSON *out; /* the array of things; the one thing's object when history is 1 */
} thing_list_ctx_t;

static int thing_row(void *ctx, const ota_store_thing_t *t, const ota_store_attr_t *attrs, size_t n)
{
    thing_list_ctx_t *c = ctx;
    cJSON *o = thing_json(c->store, t, attrs, n, c->jobs, c->groups, c->history, c->listing);
    if (c->history) {
        c->out = o;
        return 1;
    }
    cJSON_AddItemToArray(c->out, o);
    return 0;
}

static void h_things(const ota_web_request_t *req, ota_web_response_t *resp, ota_store_t *store,
                     char args[][160])
{
    (void)req;
    (void)args;
    job_refs_t jobs;
    cJSON *groups = NULL;
    group_index_t ix = {NULL, 0};
    thing_jobs_list_t listing;
    if (load_jobs(store, &jobs) != 0 || (groups = load_groups(store)) == NULL ||
        index_groups(groups, &ix) != 0 || load_thing_jobs(store, &jobs, &listing) != 0) {
        free(jobs.v);
        free(ix.v);
        cJSON_Delete(groups);
        ota_web_store_error(resp, store, "list things");
        return;
    }
    thing_list_ctx_t c = {store, &jobs, &ix, 0, &listing, cJSON_CreateArray()};
    int rc = ota_store_thing_list_attrs(store, NULL, thing_row, &c);
    free_thing_jobs(&listing);
    free(jobs.v);
    free(ix.v);
    cJSON_Delete(groups);
    if (rc != OTA_STORE_OK) {
        cJSON_Delete(c.out);
        ota_web_store_error(resp, store, "list things");
        return;
    }
    ota_web_answer(resp, 200, c.out);
}

static void h_thing(const ota_web_request_t *req, ota_web_response_t *resp, ota_store_t *store,
                    char args[][160])
{
    (void)req;
    ota_store_thing_t t;
    if (!ota_store_valid_thing_name(args[0]) ||
        ota_store_thing_get(store, args[0], &t) != OTA_STORE_OK) {
        ota_web_error(resp, 404, "not_found", "unknown thing '%.140s'; see GET /api/v1/things",
                      args[0]);
        return;
    }
    job_refs_t jobs;
    cJSON *groups = NULL;
    group_index_t ix = {NULL, 0};
    if (load_jobs(store, &jobs) != 0 || (groups = load_groups(store)) == NULL ||
        index_groups(groups, &ix) != 0) {
        free(jobs.v);
        cJSON_Delete(groups);
        ota_web_store_error(resp, store, "read the thing");
        return;
    }
    thing_list_ctx_t c = {store, &jobs, &ix, 1, NULL, NULL};
    int rc = ota_store_thing_list_attrs(store, t.name, thing_row, &c);
    cJSON *o = c.out != NULL ? c.out : thing_json(store, &t, NULL, 0, &jobs, &ix, 1, NULL);
    free(jobs.v);
    free(ix.v);
    cJSON_Delete(groups);
    if (rc != OTA_STORE_OK) {
        cJSON_Delete(o);
        ota_web_store_error(resp, store, "read the thing's attributes");
        return;
    }
    if (ota_web_add_attributes(store, o, t.name) != 0) {
        cJSON_Delete(o);
        ota_web_store_error(resp, store, "read the thing's attributes");
        return;
    }
    ota_web_answer(resp, 200, o);
}

static void h_groups(const ota_web_request_t *req, ota_web_response_t *resp, ota_store_t *store,
                     char args[][160])
{
    (void)req;
    (void)args;
    cJSON *groups = load_groups(store);
    if (groups == NULL) {
        ota_web_store_error(resp, store, "list groups");
        return;
    }
    ota_web_answer(resp, 200, groups);
}

/* ------------------------------------------------------------------ jobs -- */

/* A job's rollout (phases, the open one, exponential rate, window, start), abort rules and
 * why it ended. */
static void add_rollout(cJSON *o, const ota_store_job_t *j)
{
    const ota_store_rollout_t *r = &j->rollout;
    cJSON *ro = cJSON_AddObjectToObject(o, "rollout");
    cJSON *phases = cJSON_AddArrayToObject(ro, "phases");
    for (uint32_t i = 0; i < r->n_phases && i < OTA_STORE_PHASES_MAX; i++) {
        cJSON_AddItemToArray(phases, cJSON_CreateNumber(r->phase_percent[i]));
    }
    cJSON_AddNumberToObject(ro, "phaseSuccessPercent", r->phase_success_percent);
    cJSON_AddNumberToObject(ro, "currentPhase", j->current_phase);
    add_time(ro, "startAt", r->start_at_ms);
    if (r->window_start_min != 0 || r->window_end_min != 0) {
        cJSON *w = cJSON_AddObjectToObject(ro, "window");
        cJSON_AddNumberToObject(w, "startMinute", r->window_start_min);
        cJSON_AddNumberToObject(w, "endMinute", r->window_end_min);
    } else {
        cJSON_AddNullToObject(ro, "window");
    }
    if (r->base_per_minute > 0) {
        cJSON *x = cJSON_AddObjectToObject(ro, "exponentialRate");
        cJSON_AddNumberToObject(x, "basePerMinute", r->base_per_minute);
        cJSON_AddNumberToObject(x, "factor", r->factor_x10 / 10.0);
        cJSON_AddNumberToObject(x, "increaseEvery", r->increase_every);
        cJSON_AddBoolToObject(x, "onSucceeded", r->increase_on_succeeded);
    } else {
        cJSON_AddNullToObject(ro, "exponentialRate");
    }
    cJSON *rules = cJSON_AddArrayToObject(o, "abortRules");
    for (size_t i = 0; i < j->n_abort_rules && i < OTA_STORE_ABORT_RULES_MAX; i++) {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "failureType",
                                ota_store_failure_type_name(j->abort_rules[i].type));
        cJSON_AddNumberToObject(a, "percent", j->abort_rules[i].percent);
        cJSON_AddNumberToObject(a, "minExecuted", j->abort_rules[i].min_executed);
        cJSON_AddItemToArray(rules, a);
    }
    cJSON_AddStringToObject(o, "targetVersion", j->target_version);
    cJSON_AddStringToObject(o, "deviceTypes", j->device_types);
    if (j->reason_code[0] != '\0') {
        cJSON_AddStringToObject(o, "reasonCode", j->reason_code);
        cJSON_AddStringToObject(o, "reason", j->reason);
    } else {
        cJSON_AddNullToObject(o, "reasonCode");
        cJSON_AddNullToObject(o, "reason");
    }
}

static cJSON *job_json(ota_store_t *store, const ota_store_job_t *j)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "jobId", j->job_id);
    cJSON_AddStringToObject(o, "status", ota_store_job_status_name(j->status));
    cJSON_AddStringToObject(o, "imageId", j->stream_id);
    char ver[32];
    stream_version(store, j->stream_id, ver, sizeof ver);
    cJSON_AddStringToObject(o, "version", ver);
    add_time(o, "createdAt", j->created_ms);
    add_time(o, "completedAt", j->completed_ms);
    cJSON_AddNumberToObject(o, "timeoutMinutes", j->in_progress_timeout_min);
    cJSON_AddNumberToObject(o, "rolloutRate", j->rollout_per_minute);
    cJSON_AddNumberToObject(o, "abortFailurePercent", j->abort_failure_percent);
    cJSON_AddNumberToObject(o, "abortMinFinished", j->abort_min_finished);
    cJSON *c = cJSON_AddObjectToObject(o, "counts");
    cJSON_AddNumberToObject(c, "targets", j->n_executions);
    cJSON_AddNumberToObject(c, "held", j->n_unreleased);
    cJSON_AddNumberToObject(c, "queued", j->n_queued);
    cJSON_AddNumberToObject(c, "inProgress", j->n_in_progress);
    cJSON_AddNumberToObject(c, "succeeded", j->n_succeeded);
    cJSON_AddNumberToObject(c, "failed", j->n_failed);
    cJSON_AddNumberToObject(c, "timedOut", j->n_timed_out);
    cJSON_AddNumberToObject(c, "rejected", j->n_rejected);
    cJSON_AddNumberToObject(c, "removed", j->n_removed);
    cJSON_AddNumberToObject(c, "canceled", j->n_canceled);
    cJSON_AddNumberToObject(c, "skipped", j->n_skipped);
    add_rollout(o, j);
    return o;
}

static int job_row(void *ctx, const ota_store_job_t *j)
{
    void **c = ctx;
    cJSON_AddItemToArray(c[0], job_json(c[1], j));
    return 0;
}

static void h_jobs(const ota_web_request_t *req, ota_web_response_t *resp, ota_store_t *store,
                   char args[][160])
{
    (void)req;
    (void)args;
    cJSON *arr = cJSON_CreateArray();
    void *c[2] = {arr, store};
    if (ota_store_job_list(store, job_row, c) != OTA_STORE_OK) {
        cJSON_Delete(arr);
        ota_web_store_error(resp, store, "list jobs");
        return;
    }
    ota_web_answer(resp, 200, arr);
}

static int exec_row(void *ctx, const ota_store_execution_t *e)
{
    cJSON_AddItemToArray(ctx, execution_json(e, NULL));
    return 0;
}

/* A job with its executions, or NULL (*found says whether the job exists). */
static cJSON *job_detail(ota_store_t *store, const char *job_id, int *found, int *done)
{
    ota_store_job_t j;
    *found = 0;
    if (!ota_store_valid_job_id(job_id) || ota_store_job_get(store, job_id, &j) != OTA_STORE_OK) {
        return NULL;
    }
    *found = 1;
    cJSON *o = job_json(store, &j);
    cJSON *doc = j.document ? cJSON_Parse(j.document) : NULL;
    cJSON_AddItemToObject(o, "document", doc ? doc : cJSON_CreateNull());
    cJSON *execs = cJSON_AddArrayToObject(o, "executions");
    if (done != NULL) {
        *done = j.status != OTA_STORE_JOB_IN_PROGRESS;
    }
    ota_store_job_free(&j);
    if (ota_store_execution_list(store, job_id, exec_row, execs) != OTA_STORE_OK) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static void h_job(const ota_web_request_t *req, ota_web_response_t *resp, ota_store_t *store,
                  char args[][160])
{
    (void)req;
    int found;
    cJSON *o = job_detail(store, args[0], &found, NULL);
    if (o == NULL && !found) {
        ota_web_error(resp, 404, "not_found", "unknown job '%.80s'; see 'otter job list'", args[0]);
    } else if (o == NULL) {
        ota_web_store_error(resp, store, "read the job");
    } else {
        ota_web_answer(resp, 200, o);
    }
}

char *ota_web_job_event(ota_store_t *store, const char *job_id, int *done)
{
    int found;
    *done = 0;
    cJSON *o = job_detail(store, job_id, &found, done);
    if (o == NULL) {
        *done = 1;
        return NULL;
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

static void h_job_events(const ota_web_request_t *req, ota_web_response_t *resp, ota_store_t *store,
                         char args[][160])
{
    (void)req;
    ota_store_job_t j;
    if (!ota_store_valid_job_id(args[0]) || ota_store_job_get(store, args[0], &j) != OTA_STORE_OK) {
        ota_web_error(resp, 404, "not_found", "unknown job '%.80s'; see 'otter job list'", args[0]);
        return;
    }
    ota_store_job_free(&j);
    resp->status = 200;
    snprintf(resp->event_job, sizeof resp->event_job, "%s", args[0]);
}

static void h_job_cancel(const ota_web_request_t *req, ota_web_response_t *resp, ota_store_t *store,
                         char args[][160])
{
    const char *id = args[0];
    int src = ota_store_job_cancel(store, id, req->now_ms);
    if (src == OTA_STORE_NOT_FOUND || src == OTA_STORE_INVALID) {
        ota_web_error(resp, 404, "not_found", "unknown job '%.80s'; see 'otter job list'", id);
    } else if (src == OTA_STORE_CONFLICT) {
        ota_store_job_t j;
        const char *st = "finished";
        int got = ota_store_job_get(store, id, &j) == OTA_STORE_OK;
        if (got) {
            st = ota_store_job_status_name(j.status);
        }
        ota_web_error(resp, 409, "conflict", "job '%s' is already %s; nothing to cancel", id, st);
        if (got) {
            ota_store_job_free(&j);
        }
    } else if (src != OTA_STORE_OK) {
        ota_web_store_error(resp, store, "cancel the job");
    } else {
        h_job(req, resp, store, args);
    }
}

/* A number or a decimal string field as text (NULL when absent); -1 on a bad type. */
static int field_text(const cJSON *body, const char *name, char *buf, size_t cap, const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);
    *out = NULL;
    if (v == NULL || cJSON_IsNull(v)) {
        return 0;
    }
    if (cJSON_IsString(v)) {
        *out = v->valuestring;
        return 0;
    }
    if (cJSON_IsNumber(v)) {
        if (v->valuedouble >= 0 && v->valuedouble <= 4294967295.0 &&
            v->valuedouble == (double)(unsigned long)v->valuedouble) {
            snprintf(buf, cap, "%lu", (unsigned long)v->valuedouble);
        } else {
            snprintf(buf, cap, "%.6g", v->valuedouble);
        }
        *out = buf;
        return 0;
    }
    return -1;
}

static void random_job_id(char out[48])
{
    unsigned char u[16];
    if (ota_web_random(u, sizeof u) != 0) {
        out[0] = '\0';
        return;
    }
    u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);
    u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
    snprintf(out, 48, "ota-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
             u[14], u[15]);
}

int ota_web_upload_dir(const char *data_dir, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/web/uploads", data_dir);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static void h_upload(const ota_web_request_t *req, ota_web_response_t *resp, ota_store_t *store,
                     char args[][160])
{
    (void)store;
    (void)args;
    if (req->upload_id == NULL) {
        ota_web_error(resp, 400, "bad_request",
                      "send the firmware file as the body; at most %d MiB",
                      OTA_WEB_UPLOAD_MAX / (1024 * 1024));
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "uploadId", req->upload_id);
    cJSON_AddNumberToObject(o, "size", (double)req->upload_size);
    ota_web_answer(resp, 201, o);
}

/* Whether the key file is there, a regular file, readable by otter-web alone. */
static int signing_key_ready(const char *path, char *err, size_t cap)
{
    struct stat st;
    if (path == NULL || stat(path, &st) != 0) {
        snprintf(err, cap,
                 "signing is off: no code-signing key at '%s'; make one with 'otter keygen --out "
                 "DIR', copy codesign.key and codesign.crt there (mode 0600) or start otter-web "
                 "with --signing-key FILE",
                 path ? path : "");
        return -1;
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
        snprintf(err, cap,
                 "signing is off: the code-signing key '%s' is readable by others; chmod 600 it",
                 path);
        return -1;
    }
    return 0;
}

/* Reads an upload (at most OTA_WEB_UPLOAD_MAX bytes) into memory. */
static int read_upload(const char *data_dir, const char *id, uint8_t **out, size_t *len)
{
    char dir[3000], path[3100];
    if (strlen(id) != OTA_WEB_UPLOAD_ID_LEN || strspn(id, "0123456789abcdef") != strlen(id) ||
        ota_web_upload_dir(data_dir, dir, sizeof dir) != 0) {
        return -1;
    }
    snprintf(path, sizeof path, "%s/%s.bin", dir, id);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return -1;
    }
    uint8_t *buf = malloc(OTA_WEB_UPLOAD_MAX + 1);
    size_t n = buf ? fread(buf, 1, OTA_WEB_UPLOAD_MAX + 1, f) : 0;
    fclose(f);
    if (buf == NULL || n > OTA_WEB_UPLOAD_MAX) {
        free(buf);
        return -1;
    }
    *out = buf;
    *len = n;
    return 0;
}

/* The certificate beside the key (codesign.crt), as text, or NULL. */
static char *signing_cert(const char *key_path)
{
    char path[3100];
    const char *slash = strrchr(key_path, '/');
    int dl = slash ? (int)(slash - key_path) : 1;
    snprintf(path, sizeof path, "%.*s/codesign.crt", dl, slash ? key_path : ".");
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    char *pem = calloc(1, 16385);
    if (pem != NULL) {
        size_t n = fread(pem, 1, 16384, f);
        pem[n] = '\0';
    }
    fclose(f);
    return pem;
}

/** What a job create asks of an upload: the fields of `otter job create --file`. */
typedef struct upload_fields {
    const char *upload;        /**< the upload id */
    const char *version;       /**< X.Y.Z */
    const char *device_types;  /**< the job's types, or NULL */
    uint16_t security_counter; /**< into the new header, 0 for none */
    const char *device_type;   /**< into the new header, or NULL */
} upload_fields_t;

/*
 * Signs an upload with the server's key and publishes the job, as `otter job create
 * --file F --version V [--security-counter N] [--device-type T] --key K` does (the same
 * library). The new image's stream id goes to stream_id. Returns OTA_JOB_SPEC_OK or a
 * negative HTTP status with the text in err.
 */
static int publish_upload(const ota_web_request_t *req, ota_store_t *store,
                          const upload_fields_t *u, const char *job_id, ota_store_job_spec_t *spec,
                          char *stream_id, size_t stream_cap, char *err, size_t cap)
{
    const char *upload = u->upload, *version = u->version, *device_types = u->device_types;
    uint32_t ver;
    if (ota_version_parse(version, &ver) != 0) {
        snprintf(err, cap, "bad version '%s'; give X.Y.Z with X, Y in 0-255 and Z in 0-65535",
                 version);
        return -400;
    }
    uint8_t *data = NULL, *image = NULL;
    size_t len = 0, image_len = 0;
    if (read_upload(req->data_dir, upload, &data, &len) != 0) {
        snprintf(err, cap, "unknown upload '%.40s'; send the firmware to POST /api/v1/uploads",
                 upload);
        return -404;
    }
    /* The checks of `otter job create --file`: versions in an image header or an
     * ESP-IDF application descriptor, a finished image's device type. */
    static const ota_publish_names_t names = {
        .version = "version", .device_types = "deviceTypes", .device_type = "deviceType"};
    const ota_publish_firmware_t fw = {.data = data,
                                       .len = len,
                                       .name = "the upload",
                                       .version_given = 1,
                                       .version = ver,
                                       .device_types = device_types,
                                       .security_counter = u->security_counter,
                                       .device_type = u->device_type};
    int r = ota_publish_firmware_image(&names, &fw, &ver, &image, &image_len, err, cap);
    free(data);
    if (r != 0) {
        return r == OTA_PUBLISH_FIRMWARE_USAGE ? -400 : -422;
    }
    uint8_t sig[OTA_PUBLISH_SIG_MAX];
    size_t sig_len = 0;
    char *pub = NULL;
    int rc = ota_publish_sign(req->signing_key, "--signing-key", image, image_len, sig, &sig_len,
                              &pub, err, cap);
    char *cert = rc == 0 ? signing_cert(req->signing_key) : NULL;
    ota_sig_method_t method = OTA_SIG_SHA256_ECDSA;
    if (rc == 0 &&
        (ota_publish_signer_method(pub, &method) != 0 ||
         ota_publish_verify(pub, image, image_len, sig, sig_len) != 0 ||
         (cert != NULL && ota_publish_verify(cert, image, image_len, sig, sig_len) != 0))) {
        snprintf(err, cap,
                 "the new signature does not verify with codesign.crt beside the key; "
                 "put the key's own certificate there");
        rc = -1;
    }
    free(pub);
    free(cert);
    if (rc != 0) {
        free(image);
        return -500;
    }
    char uuid[48];
    random_job_id(uuid);
    if (uuid[0] == '\0') {
        free(image);
        snprintf(err, cap, "no randomness available; try again");
        return -500;
    }
    snprintf(stream_id, stream_cap, "AFR_OTA-%s", uuid + 4);
    const ota_publish_job_t pj = {.tmp_dir = req->data_dir,
                                  .stream_id = stream_id,
                                  .job_id = job_id,
                                  .image = image,
                                  .image_len = image_len,
                                  .sig = sig,
                                  .sig_len = sig_len,
                                  .sig_method = method,
                                  .version = ver,
                                  .device_types = device_types};
    rc = ota_publish_job(store, &pj, spec, "jobId", err, cap);
    free(image);
    if (rc == 0) {
        char dir[3000], path[3100];
        if (ota_web_upload_dir(req->data_dir, dir, sizeof dir) == 0) {
            snprintf(path, sizeof path, "%s/%s.bin", dir, upload);
            unlink(path);
        }
        return OTA_JOB_SPEC_OK;
    }
    return rc == OTA_PUBLISH_TAKEN ? -409 : -500;
}

/*
 * The image header fields of a job create (securityCounter, deviceType), checked as
 * `otter job create --security-counter N --device-type T` checks them (the same code).
 * They go into the header an upload gets, so only with an upload; a deviceType without
 * deviceTypes makes the job for that type. Returns 0, or -1 with the text in err.
 */
static int header_fields(const cJSON *body, upload_fields_t *u, char *err, size_t cap)
{
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(body, "deviceType");
    char buf[32];
    const char *counter = NULL;
    if (field_text(body, "securityCounter", buf, sizeof buf, &counter) != 0) {
        snprintf(err, cap, "bad securityCounter; give a whole number 1-65535");
        return -1;
    }
    if (dt != NULL && !cJSON_IsNull(dt) && !cJSON_IsString(dt)) {
        snprintf(err, cap,
                 "bad deviceType; give one type, 1-64 of [A-Za-z0-9_.-] (the thing's "
                 "deviceType)");
        return -1;
    }
    u->device_type = cJSON_IsString(dt) ? dt->valuestring : NULL;
    if ((counter != NULL || u->device_type != NULL) && u->upload == NULL) {
        snprintf(err, cap,
                 "securityCounter and deviceType go into the header of an upload; an image's "
                 "header already states them (see GET /api/v1/images)");
        return -1;
    }
    uint32_t tag;
    if ((counter != NULL && ota_publish_counter_parse(counter, "securityCounter",
                                                      &u->security_counter, err, cap) != 0) ||
        (u->device_type != NULL &&
         ota_publish_device_type_parse(u->device_type, "deviceType", &tag, err, cap) != 0)) {
        return -1;
    }
    if (u->device_type != NULL && u->device_types == NULL) {
        u->device_types = u->device_type; /* an image for one type: a job for that type */
    }
    return 0;
}

/*
 * The warnings of a new job, as `otter job create` prints them: devices that confirmed a
 * published image with a higher security counter will refuse this job's image
 * (OTA_ERR_ROLLBACK). An array, empty when there is nothing to say.
 */
static cJSON *job_warnings(ota_store_t *store, const char *stream_id)
{
    cJSON *arr = cJSON_CreateArray();
    ota_store_stream_t st;
    if (stream_id[0] == '\0' || ota_store_stream_get(store, stream_id, &st) != OTA_STORE_OK) {
        return arr;
    }
    ota_image_header_t hdr;
    ota_publish_rollback_t r;
    int warn = ota_publish_stream_header(&st, &hdr) == 0 &&
               ota_publish_rollback_check(store, &hdr, &r) == 1;
    ota_store_stream_free(&st);
    if (warn) {
        char text[600];
        ota_publish_rollback_text(&r, "securityCounter", text, sizeof text);
        cJSON *w = cJSON_CreateObject();
        cJSON_AddStringToObject(w, "code", "security_counter_rollback");
        cJSON_AddStringToObject(w, "message", text);
        cJSON_AddNumberToObject(w, "securityCounter", r.counter);
        cJSON_AddNumberToObject(w, "publishedSecurityCounter", r.published);
        cJSON_AddStringToObject(w, "publishedImageId", r.stream_id);
        if (r.job_id[0] != '\0') {
            cJSON_AddStringToObject(w, "publishedJobId", r.job_id);
        } else {
            cJSON_AddNullToObject(w, "publishedJobId");
        }
        cJSON_AddItemToArray(arr, w);
    }
    return arr;
}

/* The answer to a job create: 201 with the job, its executions and its warnings. */
static void answer_created(ota_web_response_t *resp, ota_store_t *store, const char *job_id,
                           const char *stream_id)
{
    int found;
    cJSON *o = job_detail(store, job_id, &found, NULL);
    if (o == NULL) {
        ota_web_store_error(resp, store, "read the new job");
        return;
    }
    cJSON_AddItemToObject(o, "warnings", job_warnings(store, stream_id));
    ota_web_answer(resp, 201, o);
}

static void h_job_create(const ota_web_request_t *req, ota_web_response_t *resp, ota_store_t *store,
                         char args[][160])
{
    static const char *const known[] = {"jobId",
                                        "image",
                                        "targets",
                                        "timeoutMinutes",
                                        "rolloutRate",
                                        "abortFailurePercent",
                                        "abortMinFinished",
                                        "upload",
                                        "version",
                                        "deviceTypes",
                                        "securityCounter",
                                        "deviceType"};
    cJSON *body = ota_web_body_object(req, resp, known, sizeof known / sizeof known[0]);
    if (body == NULL) {
        return;
    }
    char b[4][32];
    ota_job_spec_limits_t lim;
    const char *image = NULL, *targets = NULL, *job_id = NULL;
    const cJSON *img = cJSON_GetObjectItemCaseSensitive(body, "image");
    const cJSON *tg = cJSON_GetObjectItemCaseSensitive(body, "targets");
    const cJSON *jid = cJSON_GetObjectItemCaseSensitive(body, "jobId");
    const cJSON *up = cJSON_GetObjectItemCaseSensitive(body, "upload");
    const cJSON *vv = cJSON_GetObjectItemCaseSensitive(body, "version");
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(body, "deviceTypes");
    image = cJSON_IsString(img) ? img->valuestring : NULL;
    targets = cJSON_IsString(tg) ? tg->valuestring : NULL;
    job_id = cJSON_IsString(jid) ? jid->valuestring : NULL;
    const char *upload = cJSON_IsString(up) ? up->valuestring : NULL;
    const char *version = cJSON_IsString(vv) ? vv->valuestring : NULL;
    const char *device_types = cJSON_IsString(dt) ? dt->valuestring : NULL;
    if (tg != NULL && targets == NULL) {
        ota_web_error(resp, 400, "bad_request",
                      "targets is one string of thing names and group:NAME separated by commas, "
                      "as otter job create --targets: \"d1,d2,group:lab\"");
        cJSON_Delete(body);
        return;
    }
    if ((image == NULL) == (upload == NULL) || targets == NULL || (jid != NULL && job_id == NULL) ||
        (upload != NULL) != (version != NULL) || (dt != NULL && upload == NULL)) {
        ota_web_error(
            resp, 400, "bad_request",
            "job create needs targets and either image, or upload and version (strings, with "
            "deviceTypes if the upload is for some types only); see GET /api/v1/images and POST "
            "/api/v1/uploads");
        cJSON_Delete(body);
        return;
    }
    char kerr[700];
    if (dt != NULL && (device_types == NULL || !ota_store_valid_device_types(device_types))) {
        ota_web_error(resp, 400, "bad_request",
                      "bad deviceTypes; give \"TYPE[,TYPE...]\", up to 16 distinct types of 1-64 "
                      "of [A-Za-z0-9_.-]");
        cJSON_Delete(body);
        return;
    }
    upload_fields_t uf = {.upload = upload, .version = version, .device_types = device_types};
    if (header_fields(body, &uf, kerr, sizeof kerr) != 0) {
        ota_web_error(resp, 400, "bad_request", "%s", kerr);
        cJSON_Delete(body);
        return;
    }
    if (upload != NULL && signing_key_ready(req->signing_key, kerr, sizeof kerr) != 0) {
        ota_web_error(resp, 503, "signing_unavailable", "%s", kerr);
        cJSON_Delete(body);
        return;
    }
    if (field_text(body, "timeoutMinutes", b[0], sizeof b[0], &lim.timeout) ||
        field_text(body, "rolloutRate", b[1], sizeof b[1], &lim.rollout) ||
        field_text(body, "abortFailurePercent", b[2], sizeof b[2], &lim.abort_pct) ||
        field_text(body, "abortMinFinished", b[3], sizeof b[3], &lim.abort_min)) {
        ota_web_error(resp, 400, "bad_request", "limits are whole numbers; see docs/openapi.yaml");
        cJSON_Delete(body);
        return;
    }
    char err[512], idbuf[48], stream_id[OTA_STORE_STREAM_ID_MAX + 1] = "";
    ota_store_job_spec_t spec;
    memset(&spec, 0, sizeof spec);
    ota_job_spec_targets_t t;
    memset(&t, 0, sizeof t);
    int rc = OTA_JOB_SPEC_OK;
    if (job_id != NULL) {
        rc = ota_job_spec_check_id(job_id, err, sizeof err);
    } else {
        random_job_id(idbuf);
        job_id = idbuf;
    }
    if (rc == OTA_JOB_SPEC_OK) {
        rc = ota_job_spec_check_limits(&api_names, &lim, &spec, err, sizeof err);
    }
    image_jobs_t ij = {.stream_id = image};
    ota_store_job_t existing;
    if (rc == OTA_JOB_SPEC_OK && ota_store_job_get(store, job_id, &existing) == OTA_STORE_OK) {
        ota_store_job_free(&existing);
        snprintf(err, sizeof err, "job id '%s' is taken; choose another jobId", job_id);
        rc = -409;
    }
    if (rc == OTA_JOB_SPEC_OK) {
        rc = ota_job_spec_targets(store, &api_names, targets, &t, err, sizeof err);
    }
    if (rc == OTA_JOB_SPEC_OK && upload != NULL) {
        spec.things = t.things;
        spec.n_things = t.n_things;
        spec.groups = t.groups;
        spec.n_groups = t.n_groups;
        rc = publish_upload(req, store, &uf, job_id, &spec, stream_id, sizeof stream_id, err,
                            sizeof err);
        if (rc == OTA_JOB_SPEC_OK) {
            rc = 1000; /* created */
        }
    }
    if (rc == OTA_JOB_SPEC_OK &&
        (!ota_store_valid_stream_id(image) ||
         ota_store_job_list(store, count_image_job, &ij) != OTA_STORE_OK || ij.document == NULL)) {
        snprintf(err, sizeof err, "unknown image '%.140s'; choose one of GET /api/v1/images",
                 image);
        rc = -404;
    }
    if (rc == OTA_JOB_SPEC_OK) {
        spec.job_id = job_id;
        spec.document = ij.document;
        spec.target_version = ij.target_version[0] ? ij.target_version : NULL;
        spec.device_types = ij.device_types[0] ? ij.device_types : NULL;
        spec.stream_id = image;
        snprintf(stream_id, sizeof stream_id, "%s", image);
        spec.things = t.things;
        spec.n_things = t.n_things;
        spec.groups = t.groups;
        spec.n_groups = t.n_groups;
        int src = ota_store_job_create(store, &spec, req->now_ms);
        if (src == OTA_STORE_EXISTS) {
            snprintf(err, sizeof err, "job id '%s' is taken; choose another jobId", job_id);
            rc = -409;
        } else if (src != OTA_STORE_OK) {
            snprintf(err, sizeof err, "cannot create job '%s' (%s); check the targets", job_id,
                     ota_store_errmsg(store));
            rc = -409;
        }
    }
    free(ij.document);
    ota_job_spec_targets_free(&t);
    snprintf(args[0], 160, "%s", job_id);
    cJSON_Delete(body);
    if (rc == OTA_JOB_SPEC_USAGE) {
        ota_web_error(resp, 400, "bad_request", "%s", err);
    } else if (rc == OTA_JOB_SPEC_FAIL || rc == -404) {
        ota_web_error(resp, rc == -404 ? 404 : 422, rc == -404 ? "not_found" : "unprocessable",
                      "%s", err);
    } else if (rc == -409) {
        ota_web_error(resp, 409, "conflict", "%s", err);
    } else if (rc == -400 || rc == -422 || rc == -500) {
        ota_web_error(resp, -rc,
                      rc == -400   ? "bad_request"
                      : rc == -422 ? "unprocessable"
                                   : "internal",
                      "%s", err);
    } else {
        answer_created(resp, store, args[0], stream_id); /* body (job_id) is freed */
    }
}

/* ------------------------------------------------------------- session -- */

static void session_answer(ota_web_response_t *resp, int status, const ota_web_session_t *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "user", s->user);
    cJSON_AddStringToObject(o, "role", ota_web_role_name(s->role));
    cJSON_AddStringToObject(o, "csrfToken", s->csrf);
    ota_web_answer(resp, status, o);
}

static void h_session(const ota_web_request_t *req, ota_web_response_t *resp, ota_store_t *store,
                      char args[][160])
{
    (void)req;
    (void)store;
    (void)args;
    session_answer(resp, 200, &resp->session);
}

static void h_logout(const ota_web_request_t *req, ota_web_response_t *resp, ota_store_t *store,
                     char args[][160])
{
    (void)store;
    (void)args;
    ota_web_session_end(req->sessions, resp->session.token);
    snprintf(resp->set_cookie, sizeof resp->set_cookie,
             "otter_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict%s",
             req->tls ? "; Secure" : "");
    ota_web_answer(resp, 200, cJSON_CreateObject());
}

static void h_login(const ota_web_request_t *req, ota_web_response_t *resp, ota_store_t *store,
                    char args[][160])
{
    (void)store;
    (void)args;
    cJSON *body = req->body ? cJSON_ParseWithLength(req->body, req->body_len) : NULL;
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(body, "user");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(body, "password");
    if (!cJSON_IsString(u) || !cJSON_IsString(p) || !ota_web_user_valid_name(u->valuestring)) {
        cJSON_Delete(body);
        ota_web_error(
            resp, 400, "bad_request",
            "login needs {\"user\": NAME, \"password\": TEXT}; ask an administrator for an "
            "account ('otter user add')");
        return;
    }
    char user_key[96], ip_key[96];
    snprintf(user_key, sizeof user_key, "user:%s", u->valuestring);
    snprintf(ip_key, sizeof ip_key, "addr:%.80s", req->client ? req->client : "");
    /* Both keys count this attempt before the password is checked, so that attempts sent
     * at once cannot all be checked before the first failure is recorded. */
    unsigned wait_u = 0, wait_a = 0;
    int allow_u = ota_web_throttle_begin(req->sessions, user_key, req->now_ms, &wait_u);
    int allow_a = allow_u && ota_web_throttle_begin(req->sessions, ip_key, req->now_ms, &wait_a);
    if (!allow_u || !allow_a) {
        if (allow_u) {
            ota_web_throttle_end(req->sessions, user_key);
        }
        cJSON_Delete(body);
        resp->retry_after_s = wait_u > wait_a ? wait_u : wait_a;
        ota_web_error(
            resp, 429, "throttled",
            "too many failed logins; wait %u seconds and try again, or ask an administrator",
            resp->retry_after_s);
        return;
    }
    /* Password checks running at once are bounded (the CPUs, and a few waiting): beyond,
     * the login is refused at once, before hashing, and its attempt given back. */
    int slot = ota_web_hash_enter(req->sessions, req->client, req->now_ms);
    if (slot == 0) {
        ota_web_throttle_end(req->sessions, user_key);
        ota_web_throttle_end(req->sessions, ip_key);
        cJSON_Delete(body);
        resp->retry_after_s = 1;
        ota_web_error(resp, 503, "busy",
                      "otter-web is checking as many passwords as it can (%u at once, %d "
                      "waiting); try again in a second",
                      ota_web_hash_slots(req->sessions), OTA_WEB_HASH_QUEUE);
        return;
    }
    ota_web_role_t role = OTA_WEB_ROLE_NONE;
    int verified = ota_web_user_verify(req->data_dir, u->valuestring, p->valuestring, &role);
    ota_web_hash_leave(req->sessions, slot);
    if (!verified) {
        /* The wait counts from the failure's answer, not from the request's start. */
        long long failed_at = req->clock_ms != NULL ? req->clock_ms() : req->now_ms;
        ota_web_throttle_failed(req->sessions, user_key, failed_at);
        ota_web_throttle_failed(req->sessions, ip_key, failed_at);
        cJSON_Delete(body);
        ota_web_error(resp, 401, "bad_login", "wrong user name or password; try again");
        return;
    }
    /* A success clears the account's failures only: the address keeps its own, so that one
     * account's login does not reset the count of guesses at others from that address. */
    ota_web_throttle_clear(req->sessions, user_key);
    ota_web_throttle_end(req->sessions, ip_key);
    ota_web_address_known(req->sessions, req->client, req->now_ms);
    ota_web_session_t s;
    int started = ota_web_session_start(req->sessions, u->valuestring, role, req->now_ms, &s);
    if (started == -2) {
        cJSON_Delete(body);
        resp->retry_after_s = 60;
        ota_web_error(resp, 503, "sessions_full",
                      "otter-web holds %d sessions of other accounts; try again later, or ask "
                      "an administrator (a restart of otter-web ends every session)",
                      OTA_WEB_SESSIONS_MAX);
        return;
    }
    if (started != 0) {
        cJSON_Delete(body);
        ota_web_error(resp, 500, "internal", "no randomness for a session; try again");
        return;
    }
    cJSON_Delete(body);
    snprintf(resp->set_cookie, sizeof resp->set_cookie,
             "otter_session=%s; Path=/; HttpOnly; SameSite=Strict%s", s.token,
             req->tls ? "; Secure" : "");
    session_answer(resp, 200, &s);
}

/* --------------------------------------------------------------- routes -- */

static const route_entry_t routes[] = {
    {{"POST", "/api/v1/session", OTA_WEB_ROLE_NONE}, h_login, 0, 0},
    {{"GET", "/api/v1/session", OTA_WEB_ROLE_VIEWER}, h_session, 0, 0},
    {{"DELETE", "/api/v1/session", OTA_WEB_ROLE_VIEWER}, h_logout, 0, 0},
    {{"GET", "/api/v1/things", OTA_WEB_ROLE_VIEWER}, h_things, 1, 0},
    {{"GET", "/api/v1/things/{}", OTA_WEB_ROLE_VIEWER}, h_thing, 1, 0},
    {{"PUT", "/api/v1/things/{}/attributes/{}", OTA_WEB_ROLE_OPERATOR}, ota_web_h_attr_put, 1, 0},
    {{"DELETE", "/api/v1/things/{}/attributes/{}", OTA_WEB_ROLE_OPERATOR},
     ota_web_h_attr_delete,
     1,
     0},
    {{"GET", "/api/v1/groups", OTA_WEB_ROLE_VIEWER}, h_groups, 1, 0},
    {{"POST", "/api/v1/groups", OTA_WEB_ROLE_OPERATOR}, ota_web_h_group_create, 1, 0},
    {{"GET", "/api/v1/groups/{}", OTA_WEB_ROLE_VIEWER}, ota_web_h_group, 1, 0},
    {{"DELETE", "/api/v1/groups/{}", OTA_WEB_ROLE_OPERATOR}, ota_web_h_group_delete, 1, 0},
    {{"PUT", "/api/v1/groups/{}/members/{}", OTA_WEB_ROLE_OPERATOR}, ota_web_h_member_put, 1, 0},
    {{"DELETE", "/api/v1/groups/{}/members/{}", OTA_WEB_ROLE_OPERATOR},
     ota_web_h_member_delete,
     1,
     0},
    {{"GET", "/api/v1/images", OTA_WEB_ROLE_VIEWER}, h_images, 1, 0},
    {{"GET", "/api/v1/jobs", OTA_WEB_ROLE_VIEWER}, h_jobs, 1, 0},
    {{"POST", "/api/v1/jobs", OTA_WEB_ROLE_OPERATOR}, h_job_create, 1, 0},
    {{"POST", "/api/v1/uploads", OTA_WEB_ROLE_OPERATOR}, h_upload, 0, 1},
    {{"GET", "/api/v1/jobs/{}", OTA_WEB_ROLE_VIEWER}, h_job, 1, 0},
    {{"GET", "/api/v1/jobs/{}/events", OTA_WEB_ROLE_VIEWER}, h_job_events, 1, 0},
    {{"POST", "/api/v1/jobs/{}/cancel", OTA_WEB_ROLE_OPERATOR}, h_job_cancel, 1, 0},
};
#define N_ROUTES (sizeof routes / sizeof routes[0])

const ota_web_route_t *ota_web_api_routes(size_t *n)
{
    static ota_web_route_t table[N_ROUTES];
    for (size_t i = 0; i < N_ROUTES; i++) {
        table[i] = routes[i].route;
    }
    *n = N_ROUTES;
    return table;
}

/* Matches a path against a pattern; fills the {} segments (at most 2). */
static int match(const char *pattern, const char *path, char args[][160])
{
    int n_args = 0;
    while (*pattern && *path) {
        if (pattern[0] == '{' && pattern[1] == '}') {
            size_t len = strcspn(path, "/");
            if (len == 0 || len >= 160 || n_args >= 2) {
                return 0;
            }
            memcpy(args[n_args], path, len);
            args[n_args++][len] = '\0';
            path += len;
            pattern += 2;
            continue;
        }
        if (*pattern++ != *path++) {
            return 0;
        }
    }
    return *pattern == '\0' && *path == '\0';
}

/* The checks before the body; the route hit and its arguments when admitted. */
static const route_entry_t *admit(const ota_web_request_t *req, ota_web_response_t *resp,
                                  char args[][160])
{
    memset(resp, 0, sizeof *resp);
    if (req->cookie != NULL) {
        if (ota_web_session_find(req->sessions, req->cookie, req->now_ms, &resp->session) == 0 &&
            ota_web_user_role(req->data_dir, resp->session.user) != resp->session.role) {
            ota_web_session_end(req->sessions, resp->session.token);
            memset(&resp->session, 0, sizeof resp->session);
        }
    }
    const route_entry_t *path_hit = NULL, *hit = NULL;
    for (size_t i = 0; i < N_ROUTES; i++) {
        if (match(routes[i].route.pattern, req->path, args)) {
            path_hit = &routes[i];
            if (strcmp(routes[i].route.method, req->method) == 0) {
                hit = &routes[i];
                break;
            }
        }
    }
    ota_web_role_t role = resp->session.role;
    int open = hit != NULL && hit->route.role == OTA_WEB_ROLE_NONE;
    if (role == OTA_WEB_ROLE_NONE && !open) {
        ota_web_error(resp, 401, "unauthenticated", "log in first: POST /api/v1/session");
        return NULL;
    }
    if (path_hit == NULL) {
        ota_web_error(resp, 404, "not_found", "no such API path; see docs/openapi.yaml");
        return NULL;
    }
    if (hit == NULL) {
        ota_web_error(resp, 405, "method_not_allowed",
                      "%s is not allowed here; see docs/openapi.yaml", req->method);
        return NULL;
    }
    if (strcmp(req->method, "GET") != 0) {
        const char *want = hit->raw ? "application/octet-stream" : "application/json";
        if (req->content_type == NULL || strncasecmp(req->content_type, want, strlen(want)) != 0) {
            ota_web_error(resp, 415, "unsupported_media_type",
                          hit->raw ? "send the firmware as application/octet-stream"
                                   : "send the body as application/json (also an empty object)");
            return NULL;
        }
        if (!open && (req->csrf == NULL || strlen(req->csrf) != OTA_WEB_TOKEN_LEN ||
                      !ota_web_equal(req->csrf, resp->session.csrf, OTA_WEB_TOKEN_LEN))) {
            ota_web_error(
                resp, 403, "csrf",
                "missing or wrong X-CSRF-Token; send the csrfToken of GET /api/v1/session");
            return NULL;
        }
    }
    if (role < hit->route.role) {
        ota_web_error(resp, 403, "forbidden", "the %s role may not do this; ask an operator",
                      ota_web_role_name(role));
        return NULL;
    }
    return hit;
}

int ota_web_api_admit(const ota_web_request_t *req, ota_web_response_t *resp)
{
    char args[2][160];
    return admit(req, resp, args) != NULL;
}

void ota_web_api_handle(const ota_web_request_t *req, ota_web_response_t *resp)
{
    char args[2][160];
    const route_entry_t *hit = admit(req, resp, args);
    if (hit == NULL) {
        return;
    }
    ota_store_t *store = NULL;
    if (hit->needs_store && ota_store_open(req->data_dir, &store) != OTA_STORE_OK) {
        ota_web_error(resp, 500, "internal", "cannot open the store; check otter-web's --data-dir");
        return;
    }
    if (store != NULL) {
        (void)ota_store_set_recorder(store, "otter-web"); /* names it in execution histories */
    }
    hit->fn(req, resp, store, args);
    ota_store_close(store);
}
