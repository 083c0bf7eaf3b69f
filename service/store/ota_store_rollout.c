/*
 * otter service: rollouts (scheduled start, maintenance window, phases gated by
 * success, exponential rate) and abort rules with failure types. See
 * ota_store.h (ota_store_rollout_t, ota_store_abort_rule_t).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ota_store.h"
#include "ota_store_internal.h"

#define MINUTE_MS 60000
#define DAY_MIN 1440

const char *ota_store_failure_type_name(int type)
{
    static const char *const names[] = {"FAILED", "REJECTED", "TIMED_OUT", "ALL"};
    return type >= 0 && type < 4 ? names[type] : "UNKNOWN";
}

int ota_store_rollout_is_controlled(const ota_store_rollout_t *r)
{
    return r->start_at_ms > 0 || r->window_start_min != r->window_end_min || r->n_phases > 0 ||
           r->base_per_minute > 0;
}

int ota_store_rollout_check(ota_store_t *s, const ota_store_job_spec_t *spec)
{
    const ota_store_rollout_t *r = &spec->rollout;
    if (spec->n_abort_rules > OTA_STORE_ABORT_RULES_MAX)
        return fail(s, OTA_STORE_INVALID, "at most %d abort rules", OTA_STORE_ABORT_RULES_MAX);
    for (size_t i = 0; i < spec->n_abort_rules; i++) {
        const ota_store_abort_rule_t *a = &spec->abort_rules[i];
        if ((unsigned)a->type > OTA_STORE_FAILURE_ALL || a->percent < 1 || a->percent > 100 ||
            a->min_executed < 1 || a->min_executed > 1000000)
            return fail(s, OTA_STORE_INVALID,
                        "abort rule %zu: type FAILED|REJECTED|TIMED_OUT|ALL, percent 1..100, "
                        "minimum executed 1..1000000",
                        i + 1);
    }
    if (r->start_at_ms < 0)
        return fail(s, OTA_STORE_INVALID, "scheduled start must be >= 0");
    if (r->window_start_min >= DAY_MIN || r->window_end_min >= DAY_MIN)
        return fail(s, OTA_STORE_INVALID, "maintenance window minutes must be 0..1439");
    if (r->n_phases > OTA_STORE_PHASES_MAX)
        return fail(s, OTA_STORE_INVALID, "at most %d phases", OTA_STORE_PHASES_MAX);
    for (uint32_t i = 0; i < r->n_phases; i++) {
        uint32_t prev = i ? r->phase_percent[i - 1] : 0;
        if (r->phase_percent[i] <= prev || r->phase_percent[i] > 100)
            return fail(s, OTA_STORE_INVALID, "phase shares must increase up to 100%%");
    }
    if (r->n_phases > 0 && (r->phase_percent[r->n_phases - 1] != 100 ||
                            r->phase_success_percent < 1 || r->phase_success_percent > 100))
        return fail(s, OTA_STORE_INVALID,
                    "the last phase must reach 100%% and the success threshold be 1..100%%");
    if (r->base_per_minute > 0 &&
        (r->base_per_minute > 1000000 || r->factor_x10 < 11 || r->factor_x10 > 50 ||
         r->increase_every < 1 || r->increase_every > 1000000))
        return fail(s, OTA_STORE_INVALID,
                    "exponential rate: base 1..1000000, factor 1.1..5.0, every 1..1000000");
    return OTA_STORE_OK;
}

/* ------------------------------------------------------------------------ */
/* Saving and reading the settings                                          */
/* ------------------------------------------------------------------------ */

int ota_store_rollout_save(ota_store_t *s, const ota_store_job_spec_t *spec)
{
    char rules[OTA_STORE_ABORT_RULES_MAX * 32] = "", phases[OTA_STORE_PHASES_MAX * 5] = "";
    size_t n = 0;
    for (size_t i = 0; i < spec->n_abort_rules; i++)
        n += (size_t)snprintf(rules + n, sizeof rules - n, "%s%d:%u:%u", i ? ";" : "",
                              (int)spec->abort_rules[i].type, spec->abort_rules[i].percent,
                              spec->abort_rules[i].min_executed);
    const ota_store_rollout_t *r = &spec->rollout;
    n = 0;
    for (uint32_t i = 0; i < r->n_phases; i++)
        n += (size_t)snprintf(phases + n, sizeof phases - n, "%s%u", i ? "," : "",
                              r->phase_percent[i]);
    ota_db_stmt_t *st;
    int rc = prep(s, &st,
                  "UPDATE jobs SET abort_rules = ?2, controlled = ?3, start_ms = ?4, "
                  "win_start = ?5, win_end = ?6, phases = ?7, phase_success = ?8, "
                  "exp_base = ?9, exp_factor = ?10, exp_every = ?11, exp_on_succ = ?12 "
                  "WHERE id = ?1");
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, spec->job_id);
    ota_db_bind_text(st, 2, rules);
    ota_db_bind_int64(st, 3, ota_store_rollout_is_controlled(r));
    ota_db_bind_int64(st, 4, r->start_at_ms);
    ota_db_bind_int64(st, 5, r->window_start_min);
    ota_db_bind_int64(st, 6, r->window_end_min);
    ota_db_bind_text(st, 7, phases);
    ota_db_bind_int64(st, 8, r->phase_success_percent);
    ota_db_bind_int64(st, 9, r->base_per_minute);
    ota_db_bind_int64(st, 10, r->factor_x10);
    ota_db_bind_int64(st, 11, r->increase_every);
    ota_db_bind_int64(st, 12, r->increase_on_succeeded != 0);
    rc = step_done(s, st, "save rollout");
    ota_db_finalize(st);
    return rc;
}

/* Settings of a job as stored, plus what the release needs. */
typedef struct {
    int status;
    int controlled;
    int64_t created_ms, rate;
    int64_t rel_minute, rel_count;
    ota_store_abort_rule_t rules[OTA_STORE_ABORT_RULES_MAX + 1];
    size_t n_rules;
    ota_store_rollout_t r;
    char reason_code[33], reason[257];
} settings_t;

#define SETTINGS_COLS                                                                              \
    "status, controlled, created_ms, rollout_per_min, rel_minute, rel_count, abort_rules, "        \
    "start_ms, win_start, win_end, phases, phase_success, exp_base, exp_factor, exp_every, "       \
    "exp_on_succ, reason_code, reason, abort_pct, abort_min"

static int read_settings(ota_store_t *s, const char *job_id, settings_t *o)
{
    memset(o, 0, sizeof *o);
    ota_db_stmt_t *st;
    int rc = prep(s, &st, "SELECT " SETTINGS_COLS " FROM jobs WHERE id = ?");
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, job_id);
    if (ota_db_step(st) != OTA_DB_ROW) {
        ota_db_finalize(st);
        return fail(s, OTA_STORE_NOT_FOUND, "job '%s' not found", job_id);
    }
    o->status = ota_db_column_int64(st, 0);
    o->controlled = ota_db_column_int64(st, 1);
    o->created_ms = ota_db_column_int64(st, 2);
    o->rate = ota_db_column_int64(st, 3);
    o->rel_minute = ota_db_column_int64(st, 4);
    o->rel_count = ota_db_column_int64(st, 5);
    const char *rules = ota_db_column_text(st, 6);
    for (const char *p = rules; p && *p && o->n_rules < OTA_STORE_ABORT_RULES_MAX;) {
        int type = 0;
        unsigned pct = 0, min = 0;
        int used = 0;
        if (sscanf(p, "%d:%u:%u%n", &type, &pct, &min, &used) != 3)
            break;
        o->rules[o->n_rules++] = (ota_store_abort_rule_t){(ota_store_failure_type_t)type, pct, min};
        p += used;
        p += *p == ';';
    }
    o->r.start_at_ms = ota_db_column_int64(st, 7);
    o->r.window_start_min = (uint32_t)ota_db_column_int64(st, 8);
    o->r.window_end_min = (uint32_t)ota_db_column_int64(st, 9);
    const char *phases = ota_db_column_text(st, 10);
    for (const char *p = phases; p && *p && o->r.n_phases < OTA_STORE_PHASES_MAX;) {
        o->r.phase_percent[o->r.n_phases++] = (uint32_t)strtoul(p, (char **)&p, 10);
        p += *p == ',';
    }
    o->r.phase_success_percent = (uint32_t)ota_db_column_int64(st, 11);
    o->r.base_per_minute = (uint32_t)ota_db_column_int64(st, 12);
    o->r.factor_x10 = (uint32_t)ota_db_column_int64(st, 13);
    o->r.increase_every = (uint32_t)ota_db_column_int64(st, 14);
    o->r.increase_on_succeeded = ota_db_column_int64(st, 15);
    copy_col(o->reason_code, sizeof o->reason_code, st, 16);
    copy_col(o->reason, sizeof o->reason, st, 17);
    int64_t pct = ota_db_column_int64(st, 18), min = ota_db_column_int64(st, 19);
    if (pct > 0) /* the original single criterion: ALL failures */
        o->rules[o->n_rules++] = (ota_store_abort_rule_t){OTA_STORE_FAILURE_ALL, (uint32_t)pct,
                                                          (uint32_t)(min > 0 ? min : 1)};
    ota_db_finalize(st);
    return OTA_STORE_OK;
}

/* Executions of a job in creation order: status and whether released. */
typedef struct {
    int64_t *seq;
    int *status;
    int *released;
    size_t n;
} execs_t;

static void execs_free(execs_t *e)
{
    free(e->seq);
    free(e->status);
    free(e->released);
    memset(e, 0, sizeof *e);
}

static int read_execs(ota_store_t *s, const char *job_id, execs_t *e)
{
    memset(e, 0, sizeof *e);
    int64_t n = 0;
    int rc = query_int(s, "SELECT COUNT(*) FROM executions WHERE job = ?", job_id, NULL, &n);
    if (rc || n == 0)
        return rc;
    e->seq = malloc((size_t)n * sizeof *e->seq);
    e->status = malloc((size_t)n * sizeof *e->status);
    e->released = malloc((size_t)n * sizeof *e->released);
    if (!e->seq || !e->status || !e->released) {
        execs_free(e);
        return fail(s, OTA_STORE_ERROR, "out of memory");
    }
    ota_db_stmt_t *st;
    if ((rc = prep(s, &st,
                   "SELECT seq, status, released FROM executions WHERE job = ? ORDER BY seq"))) {
        execs_free(e);
        return rc;
    }
    ota_db_bind_text(st, 1, job_id);
    while (e->n < (size_t)n && ota_db_step(st) == OTA_DB_ROW) {
        e->seq[e->n] = ota_db_column_int64(st, 0);
        e->status[e->n] = ota_db_column_int64(st, 1);
        e->released[e->n] = ota_db_column_int64(st, 2);
        e->n++;
    }
    ota_db_finalize(st);
    return OTA_STORE_OK;
}

/* End (exclusive) of phase i in creation order. */
static size_t phase_end(const ota_store_rollout_t *r, uint32_t i, size_t total)
{
    if (r->n_phases == 0 || i + 1 >= r->n_phases)
        return total;
    return (total * r->phase_percent[i] + 99) / 100;
}

/* The open phase: the first whose SUCCEEDED + SKIPPED share is below the threshold. */
static uint32_t open_phase(const ota_store_rollout_t *r, const execs_t *e)
{
    size_t begin = 0;
    for (uint32_t i = 0; i < r->n_phases; i++) {
        size_t end = phase_end(r, i, e->n), good = 0;
        for (size_t k = begin; k < end; k++)
            good +=
                e->status[k] == OTA_STORE_EXEC_SUCCEEDED || e->status[k] == OTA_STORE_EXEC_SKIPPED;
        if (good * 100 < (size_t)r->phase_success_percent * (end - begin))
            return i;
        begin = end;
    }
    return r->n_phases;
}

/* Whether now (UTC) is inside the daily window. */
static int in_window(const ota_store_rollout_t *r, int64_t now_ms)
{
    if (r->window_start_min == r->window_end_min)
        return 1;
    uint32_t m = (uint32_t)((now_ms / MINUTE_MS) % DAY_MIN);
    if (r->window_start_min < r->window_end_min)
        return m >= r->window_start_min && m < r->window_end_min;
    return m >= r->window_start_min || m < r->window_end_min;
}

/* Releases per minute allowed now; -1 = no limit. */
static int64_t current_rate(ota_store_t *s, const char *job_id, const settings_t *o)
{
    if (o->r.base_per_minute == 0)
        return o->rate > 0 ? o->rate : -1;
    int64_t done = 0;
    query_int(s,
              o->r.increase_on_succeeded
                  ? "SELECT COUNT(*) FROM executions WHERE job = ? AND status = " EX_SUCCEEDED
                  : "SELECT COUNT(*) FROM executions WHERE job = ? AND released = 1 "
                    "AND status NOT IN (" EX_CANCELED ", " EX_SKIPPED ")",
              job_id, NULL, &done);
    double rate = o->r.base_per_minute;
    for (int64_t k = done / o->r.increase_every; k > 0 && rate < 1e7; k--)
        rate = rate * o->r.factor_x10 / 10.0;
    if (o->rate > 0 && rate > (double)o->rate)
        rate = (double)o->rate;
    return rate >= 1e7 ? 10000000 : (int64_t)rate;
}

int ota_store_release_controlled(ota_store_t *s, const char *job_id, int64_t now_ms,
                                 size_t *n_released)
{
    settings_t o;
    int rc = read_settings(s, job_id, &o);
    if (rc || o.status != OTA_STORE_JOB_IN_PROGRESS || !o.controlled)
        return rc;
    if (now_ms < o.r.start_at_ms || !in_window(&o.r, now_ms))
        return OTA_STORE_OK;
    execs_t e;
    if ((rc = read_execs(s, job_id, &e)))
        return rc;
    uint32_t phase = open_phase(&o.r, &e);
    size_t limit = phase >= o.r.n_phases ? e.n : phase_end(&o.r, phase, e.n);
    int64_t base = o.r.start_at_ms > o.created_ms ? o.r.start_at_ms : o.created_ms;
    int64_t minute = now_ms > base ? (now_ms - base) / MINUTE_MS : 0;
    int64_t used = minute == o.rel_minute ? o.rel_count : 0;
    int64_t rate = current_rate(s, job_id, &o);
    int64_t budget = rate < 0 ? INT64_MAX : rate - used;
    ota_db_stmt_t *st = NULL;
    size_t n = 0;
    if (budget > 0)
        rc = prep(s, &st,
                  "UPDATE executions SET released = 1, queued_ms = ?2, updated_ms = ?2 "
                  "WHERE seq = ?1 RETURNING thing");
    for (size_t k = 0; !rc && st && k < limit && (int64_t)n < budget; k++) {
        if (e.released[k] || e.status[k] != OTA_STORE_EXEC_QUEUED)
            continue;
        ota_db_reset(st);
        ota_db_bind_int64(st, 1, e.seq[k]);
        ota_db_bind_int64(st, 2, now_ms);
        char thing[OTA_STORE_THING_NAME_MAX + 1] = "";
        if (ota_db_step(st) == OTA_DB_ROW)
            copy_col(thing, sizeof thing, st, 0);
        while (ota_db_step(st) == OTA_DB_ROW) {
        }
        rc = thing[0] ? bump_thing(s, thing) : fail_db(s, "release execution");
        n++;
    }
    ota_db_finalize(st);
    execs_free(&e);
    if (!rc && n > 0 && rate >= 0) {
        if (!(rc = prep(s, &st, "UPDATE jobs SET rel_minute = ?2, rel_count = ?3 WHERE id = ?1"))) {
            ota_db_bind_text(st, 1, job_id);
            ota_db_bind_int64(st, 2, minute);
            ota_db_bind_int64(st, 3, used + (int64_t)n);
            rc = step_done(s, st, "record release");
            ota_db_finalize(st);
        }
    }
    if (!rc && n_released)
        *n_released += n;
    return rc ? rc : ota_store_skip_unneeded(s, job_id, NULL, now_ms);
}

int ota_store_rollout_next(ota_store_t *s, int64_t now_ms, int64_t *out)
{
    ota_db_stmt_t *st;
    int rc = prep(s, &st,
                  "SELECT id FROM jobs j WHERE status = " JOB_IN_PROGRESS
                  " AND controlled = 1 AND EXISTS "
                  "(SELECT 1 FROM executions e WHERE e.job = j.id AND e.released = 0 "
                  "AND e.status = " EX_QUEUED ")");
    if (rc)
        return rc;
    char ids[64][OTA_STORE_JOB_ID_MAX + 1];
    size_t n = 0;
    while (n < 64 && ota_db_step(st) == OTA_DB_ROW)
        copy_col(ids[n++], sizeof ids[0], st, 0);
    int more = n == 64;
    ota_db_finalize(st);
    for (size_t i = 0; !rc && i < n; i++) {
        settings_t o;
        if ((rc = read_settings(s, ids[i], &o)))
            break;
        int64_t t;
        if (now_ms < o.r.start_at_ms) {
            t = o.r.start_at_ms;
        } else if (!in_window(&o.r, now_ms)) {
            int64_t day = now_ms / (DAY_MIN * (int64_t)MINUTE_MS) * DAY_MIN * MINUTE_MS;
            t = day + (int64_t)o.r.window_start_min * MINUTE_MS;
            if (t <= now_ms)
                t += DAY_MIN * (int64_t)MINUTE_MS;
        } else {
            /* the next minute of the rate; phases open on executions' updates */
            int64_t base = o.r.start_at_ms > o.created_ms ? o.r.start_at_ms : o.created_ms;
            t = base + ((now_ms - base) / MINUTE_MS + 1) * MINUTE_MS;
        }
        if (t < *out)
            *out = t;
    }
    if (!rc && more && now_ms + 1000 < *out)
        *out = now_ms + 1000; /* more jobs than one pass looks at: come back soon */
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Abort rules                                                              */
/* ------------------------------------------------------------------------ */

int ota_store_abort_check(ota_store_t *s, const char *job_id, const uint32_t *by_status, char *code,
                          size_t code_cap, char *why, size_t why_cap)
{
    settings_t o;
    int rc = read_settings(s, job_id, &o);
    if (rc)
        return rc;
    uint32_t failed = by_status[OTA_STORE_EXEC_FAILED],
             rejected = by_status[OTA_STORE_EXEC_REJECTED],
             timed_out = by_status[OTA_STORE_EXEC_TIMED_OUT];
    uint32_t executed = failed + rejected + timed_out + by_status[OTA_STORE_EXEC_SUCCEEDED];
    for (size_t i = 0; i < o.n_rules; i++) {
        const ota_store_abort_rule_t *a = &o.rules[i];
        uint32_t bad = a->type == OTA_STORE_FAILURE_FAILED      ? failed
                       : a->type == OTA_STORE_FAILURE_REJECTED  ? rejected
                       : a->type == OTA_STORE_FAILURE_TIMED_OUT ? timed_out
                                                                : failed + rejected + timed_out;
        if (executed >= a->min_executed && executed > 0 &&
            (uint64_t)bad * 100 >= (uint64_t)a->percent * executed) {
            const char *type = ota_store_failure_type_name((int)a->type);
            snprintf(code, code_cap, "ABORT_%s", type);
            snprintf(why, why_cap,
                     "%u of %u executed things %s (%u%%), rule %s >= %u%% once %u executed", bad,
                     executed, a->type == OTA_STORE_FAILURE_ALL ? "failed" : type,
                     (unsigned)((uint64_t)bad * 100 / executed), type, a->percent, a->min_executed);
            return 1;
        }
    }
    if (o.r.n_phases == 0)
        return 0;
    /* A phase that finished below its success threshold stops the rollout. */
    execs_t e;
    if ((rc = read_execs(s, job_id, &e)))
        return rc;
    uint32_t phase = open_phase(&o.r, &e);
    int stuck = 0;
    if (phase < o.r.n_phases) {
        size_t begin = phase ? phase_end(&o.r, phase - 1, e.n) : 0,
               end = phase_end(&o.r, phase, e.n);
        size_t good = 0, open = 0;
        for (size_t k = begin; k < end; k++) {
            good +=
                e.status[k] == OTA_STORE_EXEC_SUCCEEDED || e.status[k] == OTA_STORE_EXEC_SKIPPED;
            open += !ota_store_exec_status_is_terminal(e.status[k]);
        }
        if (open == 0 && end > begin) {
            stuck = 1;
            snprintf(code, code_cap, "ABORT_PHASE");
            snprintf(why, why_cap, "phase %u: %zu of %zu succeeded (%zu%%), below %u%%", phase + 1,
                     good, end - begin, good * 100 / (end - begin), o.r.phase_success_percent);
        }
    }
    execs_free(&e);
    return stuck;
}

int ota_store_job_extra(ota_store_t *s, ota_store_job_t *j)
{
    settings_t o;
    int rc = read_settings(s, j->job_id, &o);
    if (rc)
        return rc;
    /* the ALL rule from abort_failure_percent is reported there, not twice */
    j->n_abort_rules = o.n_rules - (j->abort_failure_percent > 0 ? 1 : 0);
    memcpy(j->abort_rules, o.rules, sizeof j->abort_rules);
    j->rollout = o.r;
    snprintf(j->reason_code, sizeof j->reason_code, "%s", o.reason_code);
    snprintf(j->reason, sizeof j->reason, "%s", o.reason);
    int64_t continuous = 0;
    if ((rc = query_int(s, "SELECT continuous FROM jobs WHERE id = ?", j->job_id, NULL,
                        &continuous)))
        return rc;
    j->continuous = continuous != 0;
    j->current_phase = 0;
    if (o.r.n_phases > 0) {
        execs_t e;
        if ((rc = read_execs(s, j->job_id, &e)))
            return rc;
        j->current_phase = open_phase(&o.r, &e);
        execs_free(&e);
    }
    return OTA_STORE_OK;
}
