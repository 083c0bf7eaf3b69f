/* otter CLI: --json output of the list and show commands (see cli_json.h). */
#include "cli_json.h"
#include "cli_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cli_common.h"
#include "ota_svc_reason.h"
#include "otter/ota_err.h"

const char *cli_exec_status_text(ota_store_exec_status_t status, int released)
{
    /* one canceled while held stays unreleased: it is shown as what it is now */
    return released || status != OTA_STORE_EXEC_QUEUED ? ota_store_exec_status_name(status)
                                                       : "QUEUED (held by rollout)";
}

void cli_details_reason_words(const char *details, char *out, size_t cap)
{
    cJSON *d = details != NULL ? cJSON_Parse(details) : NULL;
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(d, "reason");
    ota_err_t err;
    out[0] = '\0';
    if (cJSON_IsString(reason) && ota_svc_reason_decode(reason->valuestring, &err)) {
        snprintf(out, cap, "  (%s: %s)", ota_err_str(err), ota_svc_reason_meaning(err));
    }
    cJSON_Delete(d);
}

/* A time as "YYYY-MM-DDTHH:MM:SSZ", or null for 0. */
static cJSON *json_time(int64_t ms)
{
    if (ms <= 0) {
        return cJSON_CreateNull();
    }
    char buf[24];
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return cJSON_CreateString(buf);
}

/* Stored JSON text as a value (the text as a string when it does not parse). */
static cJSON *json_text(const char *text)
{
    cJSON *v = text != NULL ? cJSON_Parse(text) : NULL;
    return v != NULL ? v : text != NULL ? cJSON_CreateString(text) : cJSON_CreateNull();
}

/* Prints and frees a document; an exit code. */
static int emit(cJSON *doc, int rc)
{
    char *s = rc == CLI_EXIT_OK && doc != NULL ? cJSON_PrintUnformatted(doc) : NULL;
    if (s != NULL && cli_print_json(s) == 0) {
        /* printed */
    } else if (rc == CLI_EXIT_OK) {
        rc = cli_fail(CLI_EXIT_FAIL, "out of memory; try again");
    }
    cJSON_free(s);
    cJSON_Delete(doc);
    return rc;
}

/* The store's failure as an error line. */
static int store_fail(ota_store_t *store, const char *what)
{
    return cli_fail(CLI_EXIT_FAIL, "cannot list %s (%s); check the data folder", what,
                    ota_store_errmsg(store));
}

/* A job's summary (list) fields. */
static cJSON *job_summary(const ota_store_job_t *j)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "jobId", j->job_id);
    cJSON_AddStringToObject(o, "status", ota_store_job_status_name(j->status));
    cJSON_AddItemToObject(o, "version",
                          j->target_version[0] ? cJSON_CreateString(j->target_version)
                                               : cJSON_CreateNull());
    cJSON_AddNumberToObject(o, "targets", j->n_executions);
    cJSON_AddNumberToObject(o, "succeeded", j->n_succeeded);
    cJSON_AddNumberToObject(o, "failed", j->n_failed + j->n_timed_out + j->n_rejected);
    cJSON_AddNumberToObject(o, "pending", j->n_in_progress + j->n_queued + j->n_unreleased);
    cJSON_AddNumberToObject(o, "skipped", j->n_skipped);
    cJSON_AddItemToObject(o, "createdAt", json_time(j->created_ms));
    return o;
}

static int add_job(void *ctx, const ota_store_job_t *j)
{
    cJSON_AddItemToArray(ctx, job_summary(j));
    return 0;
}

int cli_json_job_list(ota_store_t *store)
{
    cJSON *a = cJSON_CreateArray();
    int rc = ota_store_job_list(store, add_job, a) == OTA_STORE_OK ? CLI_EXIT_OK
                                                                   : store_fail(store, "jobs");
    return emit(a, rc);
}

/* statusDetails as JSON, and its reason in words when it has one. */
static void add_details(cJSON *o, const char *details)
{
    cJSON *d = json_text(details);
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(d, "reason");
    if (cJSON_IsString(reason)) {
        char text[256];
        ota_svc_reason_text(reason->valuestring, text, sizeof text);
        cJSON_AddStringToObject(o, "reason", text);
    }
    cJSON_AddItemToObject(o, "statusDetails", d);
}

/* One execution as JSON. */
static cJSON *execution(const ota_store_execution_t *e, int with_job)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, with_job ? "jobId" : "thing", with_job ? e->job_id : e->thing);
    cJSON_AddStringToObject(o, "status", ota_store_exec_status_name(e->status));
    cJSON_AddStringToObject(o, "state", cli_exec_status_text(e->status, e->released));
    cJSON_AddBoolToObject(o, "released", e->released);
    cJSON_AddNumberToObject(o, "versionNumber", (double)e->version_number);
    cJSON_AddItemToObject(o, "lastUpdatedAt", json_time(e->last_updated_at_ms));
    add_details(o, e->status_details);
    return o;
}

static int add_exec(void *ctx, const ota_store_execution_t *e)
{
    cJSON_AddItemToArray(ctx, execution(e, 0));
    return 0;
}

int cli_json_job_show(ota_store_t *store, const ota_store_job_t *j)
{
    cJSON *o = job_summary(j);
    cJSON_AddItemToObject(o, "stream",
                          j->stream_id[0] ? cJSON_CreateString(j->stream_id) : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "completedAt", json_time(j->completed_ms));
    cJSON *types = cJSON_AddArrayToObject(o, "deviceTypes");
    char copy[sizeof j->device_types];
    snprintf(copy, sizeof copy, "%s", j->device_types);
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
        cJSON_AddItemToArray(types, cJSON_CreateString(t));
    }
    cJSON *counts = cJSON_AddObjectToObject(o, "counts");
    cJSON_AddNumberToObject(counts, "succeeded", j->n_succeeded);
    cJSON_AddNumberToObject(counts, "failed", j->n_failed);
    cJSON_AddNumberToObject(counts, "timedOut", j->n_timed_out);
    cJSON_AddNumberToObject(counts, "rejected", j->n_rejected);
    cJSON_AddNumberToObject(counts, "inProgress", j->n_in_progress);
    cJSON_AddNumberToObject(counts, "queued", j->n_queued + j->n_unreleased);
    cJSON_AddNumberToObject(counts, "canceled", j->n_canceled);
    cJSON_AddNumberToObject(counts, "removed", j->n_removed);
    cJSON_AddNumberToObject(counts, "skipped", j->n_skipped);
    cJSON_AddItemToObject(o, "document", json_text(j->document));
    cJSON *ex = cJSON_AddArrayToObject(o, "executions");
    int rc = ota_store_execution_list(store, j->job_id, add_exec, ex) == OTA_STORE_OK
                 ? CLI_EXIT_OK
                 : store_fail(store, "executions");
    return emit(o, rc);
}

/* One change of an execution as JSON. */
static int add_event(void *ctx, const ota_store_exec_event_t *ev)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", ota_store_exec_status_name(ev->status));
    cJSON_AddNumberToObject(o, "versionNumber", (double)ev->version_number);
    cJSON_AddItemToObject(o, "at", json_time(ev->at_ms));
    cJSON_AddNumberToObject(o, "atMs", (double)ev->at_ms);
    cJSON_AddStringToObject(o, "recordedBy", ev->recorder);
    add_details(o, ev->status_details);
    if (ev->dropped_before > 0) {
        /* changes between the previous entry and this one that the bounded history dropped */
        cJSON_AddNumberToObject(o, "droppedBefore", (double)ev->dropped_before);
    }
    cJSON_AddItemToArray(ctx, o);
    return 0;
}

int cli_json_job_history(ota_store_t *store, const char *job_id, const char *thing)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "jobId", job_id);
    cJSON_AddStringToObject(o, "thing", thing);
    cJSON *a = cJSON_AddArrayToObject(o, "history");
    int rc = ota_store_execution_history(store, job_id, thing, add_event, a) == OTA_STORE_OK
                 ? CLI_EXIT_OK
                 : store_fail(store, "the history");
    return emit(o, rc);
}

/* One attribute into an object. */
static int add_attr(void *ctx, const char *key, const char *value, int64_t updated_ms)
{
    (void)updated_ms;
    cJSON_AddStringToObject(ctx, key, value);
    return 0;
}

/* The inventory fields of a thing (as `thing list` shows them) from its attributes. */
static cJSON *thing_row(const ota_store_thing_t *t, const ota_store_attr_t *list, size_t n)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "thing", t->name);
    cJSON_AddItemToObject(o, "createdAt", json_time(t->created_ms));
    cJSON *attrs = cJSON_CreateObject();
    for (size_t i = 0; i < n; i++) {
        (void)add_attr(attrs, list[i].key, list[i].value, list[i].updated_ms);
    }
    static const char *const keys[][2] = {{"deviceType", "deviceType"},
                                          {"reportedDeviceType", "reportedDeviceType"},
                                          {"firmwareVersion", "firmwareVersion"},
                                          {"slot", "slot"},
                                          {"imageState", "imageState"}};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(attrs, keys[i][0]);
        cJSON_AddItemToObject(o, keys[i][1],
                              cJSON_IsString(v) ? cJSON_CreateString(v->valuestring)
                                                : cJSON_CreateNull());
    }
    const cJSON *rev = cJSON_GetObjectItemCaseSensitive(attrs, "revoked");
    const cJSON *dis = cJSON_GetObjectItemCaseSensitive(attrs, "disabled");
    const cJSON *con = cJSON_GetObjectItemCaseSensitive(attrs, "connected");
    const char *state = cJSON_IsString(rev) && strcmp(rev->valuestring, "true") == 0   ? "revoked"
                        : cJSON_IsString(dis) && strcmp(dis->valuestring, "true") == 0 ? "disabled"
                        : !cJSON_IsString(con)                                         ? NULL
                        : strcmp(con->valuestring, "true") == 0                        ? "online"
                        : strcmp(con->valuestring, "unknown") == 0                     ? "unknown"
                                                                                       : "offline";
    cJSON_AddItemToObject(o, "state", state ? cJSON_CreateString(state) : cJSON_CreateNull());
    const cJSON *seen = cJSON_GetObjectItemCaseSensitive(attrs, "lastSeen");
    cJSON_AddItemToObject(
        o, "lastSeenAt",
        json_time(cJSON_IsString(seen) ? strtoll(seen->valuestring, NULL, 10) : 0));
    cJSON_Delete(attrs);
    return o;
}

/** Context of the thing and member walks. */
struct walk {
    ota_store_t *store;
    cJSON *array;
    const char *thing;
};

static int add_thing(void *ctx, const ota_store_thing_t *t, const ota_store_attr_t *attrs, size_t n)
{
    struct walk *w = ctx;
    cJSON_AddItemToArray(w->array, thing_row(t, attrs, n));
    return 0;
}

/* The row of `thing show`: the thing as listed (its one row of the listing). */
static int show_thing_row(void *ctx, const ota_store_thing_t *t, const ota_store_attr_t *attrs,
                          size_t n)
{
    cJSON **o = ctx;
    *o = thing_row(t, attrs, n);
    return 1;
}

int cli_json_thing_list(ota_store_t *store)
{
    struct walk w = {store, cJSON_CreateArray(), NULL};
    int rc = ota_store_thing_list_attrs(store, NULL, add_thing, &w) == OTA_STORE_OK
                 ? CLI_EXIT_OK
                 : store_fail(store, "things");
    return emit(w.array, rc);
}

static int add_group_name(void *ctx, const ota_store_group_t *g)
{
    cJSON_AddItemToArray(ctx, cJSON_CreateString(g->name));
    return 0;
}

/* The thing's execution of one job, if it has one. */
static int add_thing_exec(void *ctx, const ota_store_job_t *job)
{
    struct walk *w = ctx;
    ota_store_execution_t e;
    if (ota_store_execution_get(w->store, job->job_id, w->thing, &e) == OTA_STORE_OK) {
        cJSON_AddItemToArray(w->array, execution(&e, 1));
        ota_store_execution_free(&e);
    }
    return 0;
}

int cli_json_thing_show(ota_store_t *store, const ota_store_thing_t *t)
{
    cJSON *o = NULL;
    (void)ota_store_thing_list_attrs(store, t->name, show_thing_row, &o);
    if (o == NULL) {
        o = thing_row(t, NULL, 0);
    }
    cJSON *groups = cJSON_AddArrayToObject(o, "groups");
    cJSON *attrs = cJSON_AddObjectToObject(o, "attributes");
    struct walk w = {store, cJSON_AddArrayToObject(o, "executions"), t->name};
    int rc = CLI_EXIT_OK;
    if (ota_store_thing_groups(store, t->name, add_group_name, groups) != OTA_STORE_OK ||
        ota_store_thing_attr_list(store, t->name, add_attr, attrs) != OTA_STORE_OK ||
        ota_store_job_list(store, add_thing_exec, &w) != OTA_STORE_OK) {
        rc = store_fail(store, "the thing's records");
    }
    return emit(o, rc);
}

/* A group's fields. */
static cJSON *group_obj(const ota_store_group_t *g)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "group", g->name);
    cJSON_AddStringToObject(o, "kind", g->query[0] ? "dynamic" : "static");
    cJSON_AddItemToObject(o, "query",
                          g->query[0] ? cJSON_CreateString(g->query) : cJSON_CreateNull());
    cJSON_AddNumberToObject(o, "members", (double)g->n_members);
    cJSON_AddItemToObject(o, "createdAt", json_time(g->created_ms));
    return o;
}

static int add_group(void *ctx, const ota_store_group_t *g)
{
    cJSON_AddItemToArray(ctx, group_obj(g));
    return 0;
}

int cli_json_group_list(ota_store_t *store)
{
    cJSON *a = cJSON_CreateArray();
    int rc = ota_store_group_list(store, add_group, a) == OTA_STORE_OK
                 ? CLI_EXIT_OK
                 : store_fail(store, "groups");
    return emit(a, rc);
}

int cli_json_group_show(ota_store_t *store, const ota_store_group_t *g)
{
    cJSON *o = group_obj(g);
    struct walk w = {store, cJSON_AddArrayToObject(o, "things"), NULL};
    int rc = ota_store_group_members_attrs(store, g->name, add_thing, &w) == OTA_STORE_OK
                 ? CLI_EXIT_OK
                 : store_fail(store, "members");
    return emit(o, rc);
}

int cli_json_stream_describe(const ota_store_stream_t *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "streamId", s->stream_id);
    cJSON_AddNumberToObject(o, "version", (double)s->version);
    cJSON_AddStringToObject(o, "description", s->description);
    cJSON_AddItemToObject(o, "createdAt", json_time(s->created_ms));
    cJSON *files = cJSON_AddArrayToObject(o, "files");
    for (size_t i = 0; i < s->n_files; i++) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddNumberToObject(f, "fileId", s->files[i].file_id);
        cJSON_AddNumberToObject(f, "size", (double)s->files[i].size);
        cJSON_AddStringToObject(f, "path", s->files[i].path);
        cJSON_AddItemToArray(files, f);
    }
    return emit(o, CLI_EXIT_OK);
}
