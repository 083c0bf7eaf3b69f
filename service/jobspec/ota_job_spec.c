/* otter service: the rules of a new job's targets and limits (see ota_job_spec.h). */
#include "ota_job_spec.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((format(printf, 4, 5))) static int refuse(int rc, char *err, size_t cap,
                                                        const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return rc;
}

int ota_job_spec_parse_uint(const char *text, unsigned long min, unsigned long max,
                            unsigned long *out)
{
    if (text == NULL || text[0] < '0' || text[0] > '9') {
        return -1;
    }
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

int ota_job_spec_check_id(const char *job_id, char *err, size_t cap)
{
    if (!ota_store_valid_job_id(job_id) || !ota_store_new_name_ok(job_id)) {
        return refuse(OTA_JOB_SPEC_USAGE, err, cap,
                      "bad job id '%.80s'; use 1-64 letters, digits, '-' or '_', not starting "
                      "with '-'",
                      job_id ? job_id : "");
    }
    return OTA_JOB_SPEC_OK;
}

int ota_job_spec_check_limits(const ota_job_spec_names_t *n, const ota_job_spec_limits_t *lim,
                              ota_store_job_spec_t *spec, char *err, size_t cap)
{
    unsigned long v;
    if (lim->timeout) {
        if (ota_job_spec_parse_uint(lim->timeout, 1, 10080, &v) != 0) {
            return refuse(OTA_JOB_SPEC_USAGE, err, cap, "bad %s '%.40s'; give 1-10080", n->timeout,
                          lim->timeout);
        }
        spec->in_progress_timeout_min = (uint32_t)v;
    }
    if (lim->rollout) {
        if (ota_job_spec_parse_uint(lim->rollout, 1, 1000000, &v) != 0) {
            return refuse(OTA_JOB_SPEC_USAGE, err, cap,
                          "bad %s '%.40s'; give things per minute, 1-1000000", n->rollout,
                          lim->rollout);
        }
        spec->rollout_per_minute = (uint32_t)v;
    }
    if ((lim->abort_pct == NULL) != (lim->abort_min == NULL)) {
        return refuse(OTA_JOB_SPEC_USAGE, err, cap, "%s and %s go together; give both",
                      n->abort_pct, n->abort_min);
    }
    if (lim->abort_pct) {
        if (ota_job_spec_parse_uint(lim->abort_pct, 1, 100, &v) != 0) {
            return refuse(OTA_JOB_SPEC_USAGE, err, cap, "bad %s '%.40s'; give 1-100", n->abort_pct,
                          lim->abort_pct);
        }
        spec->abort_failure_percent = (uint32_t)v;
        if (ota_job_spec_parse_uint(lim->abort_min, 1, 1000000, &v) != 0) {
            return refuse(OTA_JOB_SPEC_USAGE, err, cap, "bad %s '%.40s'; give 1-1000000",
                          n->abort_min, lim->abort_min);
        }
        spec->abort_min_finished = (uint32_t)v;
    }
    return OTA_JOB_SPEC_OK;
}

/* Counts group members (stops at the first). */
static int count_member(void *ctx, const ota_store_thing_t *t)
{
    (void)t;
    (*(size_t *)ctx)++;
    return 1;
}

int ota_job_spec_targets(ota_store_t *store, const ota_job_spec_names_t *names, const char *list,
                         ota_job_spec_targets_t *p, char *err, size_t cap)
{
    return ota_job_spec_targets_for(store, names, list, 0, p, err, cap);
}

int ota_job_spec_targets_for(ota_store_t *store, const ota_job_spec_names_t *names,
                             const char *list, int continuous, ota_job_spec_targets_t *p, char *err,
                             size_t cap)
{
    memset(p, 0, sizeof *p);
    if (list == NULL) {
        list = "";
    }
    p->copy = strdup(list);
    size_t n = 1;
    for (const char *c = list; *c; c++) {
        n += *c == ',';
    }
    p->things = calloc(n, sizeof(char *));
    p->groups = calloc(n, sizeof(char *));
    if (p->copy == NULL || p->things == NULL || p->groups == NULL) {
        return refuse(OTA_JOB_SPEC_FAIL, err, cap, "out of memory; try again");
    }
    /* An empty entry (a leading, trailing or doubled comma) is a typo, not a list. */
    size_t len = strlen(list);
    if (len > 0 && (list[0] == ',' || list[len - 1] == ',' || strstr(list, ",,") != NULL)) {
        return refuse(OTA_JOB_SPEC_USAGE, err, cap,
                      "%s has an empty entry ('%.140s'); give NAME[,NAME|group:G...] without "
                      "a leading, trailing or doubled comma",
                      names->targets, list);
    }
    char *save = NULL;
    for (char *t = strtok_r(p->copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (strncmp(t, "group:", 6) == 0) {
            const char *g = t + 6;
            if (!ota_store_valid_thing_name(g)) {
                return refuse(OTA_JOB_SPEC_USAGE, err, cap,
                              "bad group name '%.140s' in %s; use group:NAME", g, names->targets);
            }
            p->groups[p->n_groups++] = g;
            continue;
        }
        if (!ota_store_valid_thing_name(t)) {
            return refuse(OTA_JOB_SPEC_USAGE, err, cap,
                          "bad thing name '%.140s' in %s; give NAME[,NAME|group:G...]", t,
                          names->targets);
        }
        ota_store_thing_t thing;
        if (ota_store_thing_get(store, t, &thing) != OTA_STORE_OK) {
            return refuse(OTA_JOB_SPEC_FAIL, err, cap,
                          "unknown thing '%s' in %s; create it with 'otter thing create %s'", t,
                          names->targets, t);
        }
        p->things[p->n_things++] = t;
    }
    if (p->n_things + p->n_groups == 0) {
        return refuse(OTA_JOB_SPEC_USAGE, err, cap,
                      "%s names no thing; give NAME[,NAME|group:G...]", names->targets);
    }
    for (size_t i = 0; i < p->n_groups; i++) {
        size_t members = 0;
        if (ota_store_group_members(store, p->groups[i], count_member, &members) != OTA_STORE_OK) {
            return refuse(OTA_JOB_SPEC_FAIL, err, cap,
                          "unknown group '%s' in %s; create it with 'otter group create %s'",
                          p->groups[i], names->targets, p->groups[i]);
        }
        if (members == 0 && !continuous) {
            return refuse(OTA_JOB_SPEC_FAIL, err, cap,
                          "group '%s' in %s has no members; add things ('otter group add %s "
                          "THING') or make the job continuous",
                          p->groups[i], names->targets, p->groups[i]);
        }
    }
    return OTA_JOB_SPEC_OK;
}

void ota_job_spec_targets_free(ota_job_spec_targets_t *t)
{
    if (t == NULL) {
        return;
    }
    free(t->things);
    free(t->groups);
    free(t->copy);
    memset(t, 0, sizeof *t);
}
