/* otter CLI: `watch`, a job's live progress per device, read from the store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli_cmds.h"
#include "cli_json.h"
#include "cli_text.h"
#include "ota_text_escape.h"
#include "ota_store.h"
#include "ota_svc_reason.h"

/** Poll period in milliseconds. */
#define WATCH_POLL_MS 200

/** How watch prints. */
typedef enum watch_mode { WATCH_TTY, WATCH_LINES, WATCH_JSON } watch_mode_t;

/** What watch knows about one execution. */
struct row {
    char thing[OTA_STORE_THING_NAME_MAX + 1];
    int status;
    int released;
    int64_t version;
    char *details; /* statusDetails text, or NULL */
    int changed;
};

/** All executions of the watched job. */
struct rows {
    struct row *v;
    size_t n, cap;
};

/* Finds or adds the row of a thing. */
static struct row *row_for(struct rows *rs, const char *thing)
{
    for (size_t i = 0; i < rs->n; i++) {
        if (strcmp(rs->v[i].thing, thing) == 0) {
            return &rs->v[i];
        }
    }
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 16;
        struct row *v = realloc(rs->v, cap * sizeof *v);
        if (v == NULL) {
            return NULL;
        }
        rs->v = v;
        rs->cap = cap;
    }
    struct row *r = &rs->v[rs->n++];
    memset(r, 0, sizeof *r);
    snprintf(r->thing, sizeof r->thing, "%s", thing);
    r->status = -1;
    return r;
}

/* Updates a row from an execution; marks it changed when anything differs. */
static int take_exec(void *ctx, const ota_store_execution_t *e)
{
    struct rows *rs = ctx;
    struct row *r = row_for(rs, e->thing);
    if (r == NULL) {
        return 1;
    }
    const char *d = e->status_details;
    int same_details = (d == NULL && r->details == NULL) ||
                       (d != NULL && r->details != NULL && strcmp(d, r->details) == 0);
    if (r->status == (int)e->status && r->version == e->version_number &&
        r->released == e->released && same_details) {
        return 0;
    }
    r->status = (int)e->status;
    r->version = e->version_number;
    r->released = e->released;
    free(r->details);
    r->details = d ? strdup(d) : NULL;
    r->changed = 1;
    return 0;
}

/** Largest block count watch takes from "receive" (the agent's counts are 32-bit). */
#define WATCH_BLOCKS_MAX 4294967296LL

/** Progress facts from statusDetails. */
struct progress {
    long long received, total; /* -1 when unknown; 0..WATCH_BLOCKS_MAX */
    const char *self_test, *detail;
    char reason[256]; /* "" when none; ota_svc_reason_text */
    cJSON *details;
};

/* Reads a decimal count of at most WATCH_BLOCKS_MAX at *s and moves *s past it.
 * Returns 0, or -1 when there is no digit or the count is larger. */
static int parse_count(const char **s, long long *out)
{
    long long v = 0;
    const char *p = *s;
    if (*p < '0' || *p > '9') {
        return -1;
    }
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (*p - '0');
        if (v > WATCH_BLOCKS_MAX) {
            return -1;
        }
    }
    *s = p;
    *out = v;
    return 0;
}

/* Reads "n/N" with 0 <= n <= N, 0 < N <= WATCH_BLOCKS_MAX. Returns 0 or -1. */
static int parse_receive(const char *s, long long *n, long long *t)
{
    if (parse_count(&s, n) != 0 || *s++ != '/' || parse_count(&s, t) != 0 || *s != '\0') {
        return -1;
    }
    return *t > 0 && *n <= *t ? 0 : -1;
}

/* Reads receive "n/N", self_test and reason from a row's statusDetails. */
static void progress_of(const struct row *r, struct progress *p)
{
    memset(p, 0, sizeof *p);
    p->received = p->total = -1;
    p->details = r->details ? cJSON_Parse(r->details) : NULL;
    const cJSON *rcv = cJSON_GetObjectItemCaseSensitive(p->details, "receive");
    long long n, t;
    if (cJSON_IsString(rcv) && parse_receive(rcv->valuestring, &n, &t) == 0) {
        p->received = n;
        p->total = t;
    }
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(p->details, "self_test");
    p->self_test = cJSON_IsString(st) ? st->valuestring : NULL;
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(p->details, "reason");
    if (cJSON_IsString(rs)) {
        ota_svc_reason_text(rs->valuestring, p->reason, sizeof p->reason);
    }
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(p->details, "detail");
    p->detail = cJSON_IsString(dt) ? dt->valuestring : NULL;
}

/* Status name as watch shows it. */
static const char *status_text(const struct row *r)
{
    return cli_exec_status_text((ota_store_exec_status_t)r->status, r->released);
}

/* One JSON object for a changed row. */
static void print_json_row(const char *job_id, const struct row *r, const struct progress *p)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "job", job_id);
    cJSON_AddStringToObject(o, "thing", r->thing);
    cJSON_AddStringToObject(o, "status", ota_store_exec_status_name(r->status));
    cJSON_AddStringToObject(o, "state", status_text(r));
    cJSON_AddBoolToObject(o, "released", r->released);
    cJSON_AddNumberToObject(o, "versionNumber", (double)r->version);
    if (p->total > 0) {
        cJSON_AddNumberToObject(o, "received", (double)p->received);
        cJSON_AddNumberToObject(o, "total", (double)p->total);
    }
    if (p->self_test) {
        cJSON_AddStringToObject(o, "self_test", p->self_test);
    }
    if (p->reason[0]) {
        cJSON_AddStringToObject(o, "reason", p->reason);
    }
    if (p->detail) {
        cJSON_AddStringToObject(o, "detail", p->detail);
    }
    cJSON *d = p->details ? cJSON_Duplicate(p->details, 1) : cJSON_CreateObject();
    cJSON_AddItemToObject(o, "statusDetails", d);
    cJSON_AddBoolToObject(o, "terminal", ota_store_exec_status_is_terminal(r->status));
    char *s = cJSON_PrintUnformatted(o);
    if (s) {
        cli_print_json(s);
    }
    cJSON_free(s);
    cJSON_Delete(o);
}

/* The text after the thing name: status, progress, self-test, reason. What the
 * device wrote (self_test, reason, detail) goes through cli_safe_text(). */
static void describe(const struct row *r, const struct progress *p, int bar, char *out, size_t cap)
{
    char safe[160];
    int n = snprintf(out, cap, "%-12s", status_text(r));
    if (p->total > 0 && n >= 0 && (size_t)n < cap) {
        /* received <= total <= 2^32: the products fit a long long. */
        long long pct = p->received * 100 / p->total;
        if (bar) {
            char b[31];
            long long fill = p->received * 30 / p->total;
            for (int i = 0; i < 30; i++) {
                b[i] = i < fill ? '#' : '.';
            }
            b[30] = '\0';
            n += snprintf(out + n, cap - (size_t)n, " [%s] %3lld%% %lld/%lld blocks", b, pct,
                          p->received, p->total);
        } else {
            n += snprintf(out + n, cap - (size_t)n, " receive %lld/%lld (%lld%%)", p->received,
                          p->total, pct);
        }
    }
    if (p->self_test && n >= 0 && (size_t)n < cap) {
        n += snprintf(out + n, cap - (size_t)n, " self_test %s",
                      cli_safe_text(p->self_test, safe, sizeof safe));
    }
    if (p->reason[0] && n >= 0 && (size_t)n < cap) {
        n += snprintf(out + n, cap - (size_t)n, " reason \"%s\"",
                      cli_safe_text(p->reason, safe, sizeof safe));
    }
    if (p->detail && n >= 0 && (size_t)n < cap) {
        snprintf(out + n, cap - (size_t)n, " detail \"%s\"",
                 cli_safe_text(p->detail, safe, sizeof safe));
    }
    size_t len = strlen(out);
    while (len > 0 && out[len - 1] == ' ') {
        out[--len] = '\0';
    }
}

/* Prints what changed, in the chosen mode. */
static void render(watch_mode_t mode, const char *job_id, struct rows *rs, size_t *drawn)
{
    char text[640], thing[sizeof rs->v[0].thing * OTA_TEXT_ESCAPE_GROWTH];
    if (mode == WATCH_TTY) {
        if (*drawn > 0) {
            printf("\033[%zuA", *drawn);
        }
        for (size_t i = 0; i < rs->n; i++) {
            struct progress p;
            progress_of(&rs->v[i], &p);
            describe(&rs->v[i], &p, 1, text, sizeof text);
            printf("\r\033[2K%-24s %s\n", cli_safe_text(rs->v[i].thing, thing, sizeof thing), text);
            cJSON_Delete(p.details);
            rs->v[i].changed = 0;
        }
        *drawn = rs->n;
        fflush(stdout);
        return;
    }
    for (size_t i = 0; i < rs->n; i++) {
        struct row *r = &rs->v[i];
        if (!r->changed) {
            continue;
        }
        r->changed = 0;
        struct progress p;
        progress_of(r, &p);
        if (mode == WATCH_JSON) {
            print_json_row(job_id, r, &p);
        } else {
            describe(r, &p, 0, text, sizeof text);
            printf("%s: %s\n", cli_safe_text(r->thing, thing, sizeof thing), text);
        }
        cJSON_Delete(p.details);
    }
    fflush(stdout);
}

/* Prints the final summary; returns the exit code. */
static int finish(watch_mode_t mode, const ota_store_job_t *j, const struct rows *rs)
{
    size_t ok = 0, skipped = 0;
    for (size_t i = 0; i < rs->n; i++) {
        ok += rs->v[i].status == OTA_STORE_EXEC_SUCCEEDED;
        skipped += rs->v[i].status == OTA_STORE_EXEC_SKIPPED;
    }
    int all_ok = rs->n > 0 && ok + skipped == rs->n;
    const char *st = ota_store_job_status_name(j->status);
    if (j->status == OTA_STORE_JOB_IN_PROGRESS) {
        st = "COMPLETED";
    }
    if (mode == WATCH_JSON) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "job", j->job_id);
        cJSON_AddStringToObject(o, "jobStatus", st);
        cJSON_AddNumberToObject(o, "targets", (double)rs->n);
        cJSON_AddNumberToObject(o, "succeeded", (double)ok);
        cJSON_AddNumberToObject(o, "skipped", (double)skipped);
        cJSON_AddStringToObject(o, "result", all_ok ? "SUCCEEDED" : "FAILED");
        char *s = cJSON_PrintUnformatted(o);
        if (s) {
            printf("%s\n", s);
        }
        cJSON_free(s);
        cJSON_Delete(o);
    } else {
        printf("job %s %s: %zu of %zu succeeded, %zu skipped (not needed)\n", j->job_id, st, ok,
               rs->n, skipped);
    }
    fflush(stdout);
    return all_ok ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

/* Whether every execution has reached a terminal status. */
static int all_terminal(const struct rows *rs)
{
    for (size_t i = 0; i < rs->n; i++) {
        if (!ota_store_exec_status_is_terminal(rs->v[i].status)) {
            return 0;
        }
    }
    return rs->n > 0;
}

/* Monotonic milliseconds. */
static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char watch_help[] =
    "usage: otter watch JOB_ID [--json] [--timeout S]\n"
    "\n"
    "Follow a job live: per device its status, download progress (statusDetails\n"
    "receive n/N), self-test state, final reason (spaces collapsed, an error code\n"
    "named and explained: \"0x000000f7: 0x00000000 (OTA_ERR_ROLLBACK: anti-rollback:\n"
    "...)\") and the device's own failure text (detail); what a device wrote shows\n"
    "control characters and bidi overrides as escapes (\\x1b, \\u202e). Executions\n"
    "the rollout holds back read \"QUEUED (held by rollout)\", as in 'otter job show'\n"
    "(with --json \"released\":false, which stays false for one canceled while\n"
    "held). On a terminal, progress bars redrawn in place; otherwise one line per\n"
    "change.\n"

    "Ends when every execution has finished or the job is canceled or aborted.\n"
    "Exit code 0 when every device SUCCEEDED or was SKIPPED (already on the\n"
    "version or a newer one, or not of the job's device types), 1 otherwise.\n"
    "\n"
    "  --json       one JSON object per change, then a summary object\n"
    "  --timeout S  give up after S seconds (exit code 1)\n";

/** Everything the watch loop holds. */
struct watch {
    ota_store_t *store;
    const char *job_id;
    watch_mode_t mode;
    struct rows rows;
    size_t drawn;
};

/* One poll: read the job and its executions, print changes. 1 = done. */
static int watch_poll(struct watch *w, int *exit_code)
{
    ota_store_job_t j;
    if (ota_store_job_get(w->store, w->job_id, &j) != OTA_STORE_OK ||
        ota_store_execution_list(w->store, w->job_id, take_exec, &w->rows) != OTA_STORE_OK) {
        *exit_code = cli_fail(CLI_EXIT_FAIL, "cannot read job '%s' (%s); check the data folder",
                              w->job_id, ota_store_errmsg(w->store));
        ota_store_job_free(&j);
        return 1;
    }
    render(w->mode, w->job_id, &w->rows, &w->drawn);
    int done = j.status != OTA_STORE_JOB_IN_PROGRESS || all_terminal(&w->rows);
    if (done) {
        *exit_code = finish(w->mode, &j, &w->rows);
    }
    ota_store_job_free(&j);
    return done;
}

int cli_cmd_watch(const cli_ctx_t *ctx, int argc, char **argv)
{
    const char *json = NULL, *timeout_s = NULL, *pos[1];
    size_t n_pos;
    int help;
    const cli_opt_t opts[] = {{"json", 0, &json}, {"timeout", 1, &timeout_s}};
    int rc = cli_parse(argc, argv, opts, 2, pos, 1, &n_pos, &help);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (help) {
        fputs(watch_help, stdout);
        return CLI_EXIT_OK;
    }
    if (n_pos != 1) {
        return cli_fail(CLI_EXIT_USAGE, "watch needs a JOB_ID; see 'otter job list'");
    }
    unsigned long timeout = 0;
    if (timeout_s && cli_parse_uint(timeout_s, 1, 86400 * 365, &timeout) != 0) {
        return cli_fail(CLI_EXIT_USAGE, "bad --timeout '%s'; give seconds, 1 or more", timeout_s);
    }
    struct watch w = {.job_id = pos[0]};
    w.mode = json ? WATCH_JSON : isatty(STDOUT_FILENO) ? WATCH_TTY : WATCH_LINES;
    if ((rc = cli_store_open(ctx, &w.store)) != CLI_EXIT_OK) {
        return rc;
    }
    ota_store_job_t j;
    if (ota_store_job_get(w.store, w.job_id, &j) != OTA_STORE_OK) {
        ota_store_close(w.store);
        return cli_fail(CLI_EXIT_FAIL, "unknown job '%s'; see 'otter job list'", w.job_id);
    }
    ota_store_job_free(&j);
    int64_t deadline = timeout ? mono_ms() + (int64_t)timeout * 1000 : INT64_MAX;
    int exit_code = CLI_EXIT_FAIL;
    for (int first = 1;; first = 0) {
        int changed = 1;
        if (ota_store_poll_changes(w.store, &changed) != OTA_STORE_OK) {
            changed = 1;
        }
        if ((changed || first) && watch_poll(&w, &exit_code)) {
            break;
        }
        if (mono_ms() >= deadline) {
            exit_code = cli_fail(CLI_EXIT_FAIL,
                                 "job '%s' still running after %lu s; see 'otter job show %s'",
                                 w.job_id, timeout, w.job_id);
            break;
        }
        struct timespec ts = {0, WATCH_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    for (size_t i = 0; i < w.rows.n; i++) {
        free(w.rows.v[i].details);
    }
    free(w.rows.v);
    ota_store_close(w.store);
    return exit_code;
}
