/*
 * otter service: static and dynamic thing groups, and continuous jobs that
 * follow their members. See ota_store.h.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ota_store.h"
#include "otter/ota_version.h"
#include "ota_store_internal.h"

/* ------------------------------------------------------------------------ */
/* Queries                                                                  */
/* ------------------------------------------------------------------------ */

enum { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE };

typedef struct {
    char key[OTA_STORE_ATTR_KEY_MAX + 1];
    int op;
    char value[OTA_STORE_ATTR_VALUE_MAX + 1];
} term_t;

int ota_store_presence_key(const char *key)
{
    static const char *const keys[] = {"connected", "connectedTo", "presenceUnknownOn", "lastSeen"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(key, keys[i]) == 0)
            return 1;
    return 0;
}

/* Splits a query into terms; returns the count, or -1 if malformed. A new query may not use
 * the presence attributes; a stored one may (a group saved before presence could be unknown
 * keeps working: it is re-checked when other attributes change, not when presence does). */
static int parse_query(const char *q, term_t *terms, int stored)
{
    static const char *const ops[] = {"!=", "<=", ">=", "=", "<", ">"};
    static const int op_codes[] = {OP_NE, OP_LE, OP_GE, OP_EQ, OP_LT, OP_GT};
    if (!q || !*q || strlen(q) > OTA_STORE_QUERY_MAX)
        return -1;
    int n = 0;
    for (const char *p = q;;) {
        size_t len = strcspn(p, ",");
        char term[OTA_STORE_QUERY_MAX + 1];
        memcpy(term, p, len);
        term[len] = '\0';
        if (n == OTA_STORE_QUERY_TERMS_MAX)
            return -1;
        size_t klen = strcspn(term, "!=<>");
        if (klen == 0 || klen > OTA_STORE_ATTR_KEY_MAX || term[klen] == '\0')
            return -1;
        int op = -1;
        size_t olen = 0;
        for (int i = 0; i < 6 && op < 0; i++)
            if (strncmp(term + klen, ops[i], strlen(ops[i])) == 0) {
                op = op_codes[i];
                olen = strlen(ops[i]);
            }
        term_t *t = &terms[n++];
        memcpy(t->key, term, klen);
        t->key[klen] = '\0';
        const char *v = term + klen + olen;
        if (op < 0 || !ota_store_valid_attr_key(t->key) ||
            (!stored && ota_store_presence_key(t->key)) || !ota_store_valid_attr_value(v) ||
            strchr("!=<>", v[0]) != NULL || strlen(v) > OTA_STORE_ATTR_VALUE_MAX ||
            ((op >= OP_LT) && !ota_store_valid_version(v)))
            return -1;
        t->op = op;
        snprintf(t->value, sizeof t->value, "%s", v);
        if (p[len] == '\0')
            return n;
        p += len + 1;
    }
}

int ota_store_valid_query(const char *query)
{
    term_t terms[OTA_STORE_QUERY_TERMS_MAX];
    return parse_query(query, terms, 0) > 0;
}

/* X.Y.Z -> one comparable number (valid versions only). */
static long long version_key(const char *v)
{
    uint32_t version = 0;
    (void)ota_version_parse(v, &version);
    return (long long)version;
}

static int term_matches(const term_t *t, const char *have)
{
    if (!have)
        return t->op == OP_NE; /* an unset attribute differs from every value */
    if (t->op == OP_EQ)
        return strcmp(have, t->value) == 0;
    if (t->op == OP_NE)
        return strcmp(have, t->value) != 0;
    if (!ota_store_valid_version(have))
        return 0;
    long long h = version_key(have), w = version_key(t->value);
    return t->op == OP_LT ? h < w : t->op == OP_LE ? h <= w : t->op == OP_GT ? h > w : h >= w;
}

/* Whether a thing's attributes match every term. */
static int thing_matches(ota_store_t *s, const char *thing, const term_t *terms, int n)
{
    for (int i = 0; i < n; i++) {
        char have[OTA_STORE_ATTR_VALUE_MAX + 1];
        int rc = ota_store_thing_attr_get(s, thing, terms[i].key, have, sizeof have);
        if (!term_matches(&terms[i], rc == OTA_STORE_OK ? have : NULL))
            return 0;
    }
    return 1;
}

/* The query of a group ("" static); OTA_STORE_NOT_FOUND when there is no such group. */
static int group_query(ota_store_t *s, const char *name, char query[OTA_STORE_QUERY_MAX + 1],
                       int64_t *created_ms)
{
    ota_db_stmt_t *st;
    int rc = prep(s, &st, "SELECT query, created_ms FROM groups WHERE name = ?");
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, name);
    if (ota_db_step(st) == OTA_DB_ROW) {
        copy_col(query, OTA_STORE_QUERY_MAX + 1, st, 0);
        if (created_ms)
            *created_ms = ota_db_column_int64(st, 1);
    } else {
        rc = fail(s, OTA_STORE_NOT_FOUND, "group '%s' not found", name);
    }
    ota_db_finalize(st);
    return rc;
}

/* Whether a thing is in a group now (0/1), or < 0. */
static int in_group(ota_store_t *s, const char *group, const char *thing)
{
    char query[OTA_STORE_QUERY_MAX + 1];
    int rc = group_query(s, group, query, NULL);
    if (rc)
        return rc == OTA_STORE_NOT_FOUND ? 0 : rc;
    if (query[0]) {
        term_t terms[OTA_STORE_QUERY_TERMS_MAX];
        int n = parse_query(query, terms, 1);
        return n > 0 && thing_matches(s, thing, terms, n);
    }
    int64_t yes = 0;
    rc = query_int(s, "SELECT COUNT(*) FROM group_members WHERE grp = ? AND thing = ?", group,
                   thing, &yes);
    return rc ? rc : yes > 0;
}

/* ------------------------------------------------------------------------ */
/* Groups                                                                   */
/* ------------------------------------------------------------------------ */

int ota_store_group_create(ota_store_t *store, const char *name, const char *query, int64_t now_ms)
{
    if (!store)
        return OTA_STORE_INVALID;
    int rc = check_thing_name(store, name, "group");
    if (rc)
        return rc;
    if (!ota_store_new_name_ok(name))
        return fail(store, OTA_STORE_INVALID, "a group's name may not start with '-' ('%s')", name);
    if (query && *query && !ota_store_valid_query(query))
        return fail(store, OTA_STORE_INVALID, "invalid query '%s'", query);
    ota_db_stmt_t *st;
    if ((rc = prep(store, &st, "INSERT INTO groups(name, query, created_ms) VALUES(?, ?, ?)")))
        return rc;
    ota_db_bind_text(st, 1, name);
    ota_db_bind_text(st, 2, query ? query : "");
    ota_db_bind_int64(st, 3, now_ms);
    int r = ota_db_step(st);
    if (r == OTA_DB_DONE)
        ok(store);
    else if (ota_db_errcode(store->db) == OTA_DB_E_UNIQUE)
        rc = fail(store, OTA_STORE_EXISTS, "group '%s' already exists", name);
    else
        rc = fail_db(store, "create group");
    ota_db_finalize(st);
    return rc;
}

/* Counts members. */
static int count_cb(void *ctx, const ota_store_thing_t *t)
{
    (void)t;
    (*(size_t *)ctx)++;
    return 0;
}

int ota_store_group_get(ota_store_t *store, const char *name, ota_store_group_t *out)
{
    if (!store || !out)
        return OTA_STORE_INVALID;
    memset(out, 0, sizeof *out);
    int rc = check_thing_name(store, name, "group");
    if (rc || (rc = group_query(store, name, out->query, &out->created_ms)))
        return rc;
    snprintf(out->name, sizeof out->name, "%s", name);
    return ota_store_group_members(store, name, count_cb, &out->n_members);
}

int ota_store_group_delete(ota_store_t *store, const char *name)
{
    if (!store)
        return OTA_STORE_INVALID;
    int rc = check_thing_name(store, name, "group");
    if (rc || (rc = begin(store)))
        return rc;
    char query[OTA_STORE_QUERY_MAX + 1];
    int64_t busy = 0;
    rc = group_query(store, name, query, NULL);
    if (!rc)
        rc = query_int(store,
                       "SELECT COUNT(*) FROM job_targets t JOIN jobs j ON j.id = t.job WHERE "
                       "t.kind = 1 AND t.name = ? AND j.status = " JOB_IN_PROGRESS "",
                       name, NULL, &busy);
    if (!rc && busy)
        rc = fail(store, OTA_STORE_CONFLICT, "an IN_PROGRESS job targets group '%s'", name);
    ota_db_stmt_t *st;
    for (int i = 0; !rc && i < 2; i++) {
        if ((rc = prep(store, &st,
                       i ? "DELETE FROM groups WHERE name = ?"
                         : "DELETE FROM group_members WHERE grp = ?")))
            break;
        ota_db_bind_text(st, 1, name);
        rc = step_done(store, st, "delete group");
        ota_db_finalize(st);
    }
    return finish(store, rc);
}

/* Adds or removes a static membership, then re-syncs the thing's continuous jobs. */
static int change_member(ota_store_t *store, const char *group, const char *thing, int add)
{
    if (!store)
        return OTA_STORE_INVALID;
    int rc = check_thing_name(store, group, "group");
    if (rc || (rc = check_thing_name(store, thing, "thing")) || (rc = begin(store)))
        return rc;
    char query[OTA_STORE_QUERY_MAX + 1] = "";
    rc = group_query(store, group, query, NULL);
    if (rc == OTA_STORE_NOT_FOUND && add) {
        rc = ota_store_group_create(store, group, NULL, ota_store_now_ms());
    }
    if (!rc && query[0])
        rc = fail(store, OTA_STORE_INVALID,
                  "group '%s' is dynamic: its members are the things matching '%s'", group, query);
    ota_db_stmt_t *st;
    if (!rc && !(rc = prep(store, &st,
                           add ? "INSERT INTO group_members(grp, thing) VALUES(?, ?)"
                               : "DELETE FROM group_members WHERE grp = ? AND thing = ?"))) {
        ota_db_bind_text(st, 1, group);
        ota_db_bind_text(st, 2, thing);
        int r = ota_db_step(st);
        int ext = ota_db_errcode(store->db);
        if (r == OTA_DB_DONE && !add && ota_db_changes(store->db) == 0)
            rc = fail(store, OTA_STORE_NOT_FOUND, "thing '%s' is not in group '%s'", thing, group);
        else if (r == OTA_DB_DONE)
            rc = OTA_STORE_OK;
        else if (ext == OTA_DB_E_UNIQUE)
            rc = fail(store, OTA_STORE_EXISTS, "thing '%s' is already in group '%s'", thing, group);
        else if (ext == OTA_DB_E_FOREIGN)
            rc = fail(store, OTA_STORE_NOT_FOUND, "thing '%s' not found", thing);
        else
            rc = fail_db(store, "change group");
        ota_db_finalize(st);
    }
    if (!rc)
        rc = ota_store_continuous_sync(store, thing, ota_store_now_ms());
    return finish(store, rc);
}

int ota_store_group_add(ota_store_t *store, const char *group, const char *thing)
{
    return change_member(store, group, thing, 1);
}

int ota_store_group_remove(ota_store_t *store, const char *group, const char *thing)
{
    return change_member(store, group, thing, 0);
}

/* Dynamic members: every thing matching the query. */
typedef struct {
    ota_store_t *s;
    ota_store_thing_t *things;
    size_t n, cap;
} dyn_t;

static int collect_thing(void *ctx, const ota_store_thing_t *t)
{
    dyn_t *d = ctx;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 64;
        void *p = realloc(d->things, cap * sizeof *d->things);
        if (!p)
            return 1;
        d->things = p;
        d->cap = cap;
    }
    d->things[d->n++] = *t;
    return 0;
}

/** A dynamic group's query, and whom its members go to. */
typedef struct {
    term_t terms[OTA_STORE_QUERY_TERMS_MAX];
    int n_terms;
    ota_store_thing_attrs_cb cb;
    void *ctx;
} match_t;

/* Passes on a thing whose attributes match every term of the query. */
static int match_cb(void *ctx, const ota_store_thing_t *t, const ota_store_attr_t *attrs, size_t n)
{
    match_t *m = ctx;
    for (int i = 0; i < m->n_terms; i++)
        if (!term_matches(&m->terms[i], ota_store_attr_find(attrs, n, m->terms[i].key)))
            return 0;
    return m->cb(m->ctx, t, attrs, n);
}

/* The members of a group of that query ("" static) with their attributes. */
static int members_attrs(ota_store_t *store, const char *group, const char *query,
                         ota_store_thing_attrs_cb cb, void *ctx)
{
    if (!query[0])
        return thing_list_attrs_of(store, LIST_GROUP, group, cb, ctx);
    match_t m = {.cb = cb, .ctx = ctx};
    m.n_terms = parse_query(query, m.terms, 1);
    if (m.n_terms <= 0) { /* a query that no longer parses matches nothing */
        ok(store);
        return OTA_STORE_OK;
    }
    return thing_list_attrs_of(store, LIST_ALL, NULL, match_cb, &m);
}

int ota_store_group_members_attrs(ota_store_t *store, const char *group,
                                  ota_store_thing_attrs_cb cb, void *ctx)
{
    if (!store || !cb)
        return OTA_STORE_INVALID;
    int rc = check_thing_name(store, group, "group");
    char query[OTA_STORE_QUERY_MAX + 1];
    if (rc || (rc = group_query(store, group, query, NULL)))
        return rc;
    return members_attrs(store, group, query, cb, ctx);
}

/* Keeps a member of a dynamic group. */
static int collect_member(void *ctx, const ota_store_thing_t *t, const ota_store_attr_t *attrs,
                          size_t n)
{
    (void)attrs;
    (void)n;
    return collect_thing(ctx, t);
}

int ota_store_group_members(ota_store_t *store, const char *group, ota_store_thing_cb cb, void *ctx)
{
    if (!store || !cb)
        return OTA_STORE_INVALID;
    int rc = check_thing_name(store, group, "group");
    char query[OTA_STORE_QUERY_MAX + 1];
    if (rc || (rc = group_query(store, group, query, NULL)))
        return rc;
    size_t n;
    if (!query[0])
        return list_things(store,
                           "SELECT t.name, t.created_ms FROM group_members g JOIN things t ON "
                           "t.name = g.thing WHERE g.grp = ? ORDER BY t.name",
                           group, cb, ctx, &n);
    /* every member first, as the query matches the listing's attributes; then the callback */
    dyn_t d = {.s = store};
    rc = members_attrs(store, group, query, collect_member, &d);
    for (size_t i = 0; !rc && i < d.n; i++)
        if (cb(ctx, &d.things[i]))
            break;
    free(d.things);
    if (!rc)
        ok(store);
    return rc;
}

/* Names of every group, read before anything else is asked of the store. */
static int group_names(ota_store_t *s, char (**names)[OTA_STORE_GROUP_NAME_MAX + 1], size_t *n)
{
    *names = NULL;
    *n = 0;
    ota_db_stmt_t *st;
    int rc = prep(s, &st, "SELECT name FROM groups ORDER BY name");
    while (!rc && ota_db_step(st) == OTA_DB_ROW) {
        void *p = realloc(*names, (*n + 1) * sizeof **names);
        if (!p) {
            rc = fail(s, OTA_STORE_ERROR, "out of memory");
            break;
        }
        *names = p;
        copy_col((*names)[(*n)++], sizeof **names, st, 0);
    }
    ota_db_finalize(st);
    return rc;
}

/* Lists groups, all of them or those a thing is in. */
static int list_groups(ota_store_t *store, const char *thing, ota_store_group_cb cb, void *ctx)
{
    char(*names)[OTA_STORE_GROUP_NAME_MAX + 1];
    size_t n;
    int rc = group_names(store, &names, &n);
    for (size_t i = 0; !rc && i < n; i++) {
        if (thing) {
            int in = in_group(store, names[i], thing);
            if (in <= 0) {
                rc = in < 0 ? in : OTA_STORE_OK;
                continue;
            }
        }
        ota_store_group_t g;
        if ((rc = ota_store_group_get(store, names[i], &g)) == OTA_STORE_OK && cb(ctx, &g))
            break;
    }
    free(names);
    if (!rc)
        ok(store);
    return rc;
}

int ota_store_group_list(ota_store_t *store, ota_store_group_cb cb, void *ctx)
{
    if (!store || !cb)
        return OTA_STORE_INVALID;
    return list_groups(store, NULL, cb, ctx);
}

int ota_store_thing_groups(ota_store_t *store, const char *thing, ota_store_group_cb cb, void *ctx)
{
    if (!store || !cb)
        return OTA_STORE_INVALID;
    int rc = check_thing_name(store, thing, "thing");
    return rc ? rc : list_groups(store, thing, cb, ctx);
}

/* ------------------------------------------------------------------------ */
/* Continuous jobs                                                          */
/* ------------------------------------------------------------------------ */

int ota_store_job_targets_save(ota_store_t *s, const ota_store_job_spec_t *spec)
{
    ota_db_stmt_t *st;
    int rc = prep(
        s, &st, "INSERT INTO job_targets(job, kind, name) VALUES(?, ?, ?) ON CONFLICT DO NOTHING");
    for (size_t i = 0; !rc && i < spec->n_things + spec->n_groups; i++) {
        int group = i >= spec->n_things;
        ota_db_reset(st);
        ota_db_bind_text(st, 1, spec->job_id);
        ota_db_bind_int64(st, 2, group);
        ota_db_bind_text(st, 3, group ? spec->groups[i - spec->n_things] : spec->things[i]);
        rc = step_done(s, st, "record target");
    }
    ota_db_finalize(st);
    if (!rc && spec->continuous) {
        if (!(rc = prep(s, &st, "UPDATE jobs SET continuous = 1 WHERE id = ?"))) {
            ota_db_bind_text(st, 1, spec->job_id);
            rc = step_done(s, st, "mark continuous");
            ota_db_finalize(st);
        }
    }
    return rc;
}

/* Whether a continuous job targets a thing now (directly or through a group). */
static int job_targets_thing(ota_store_t *s, const char *job_id, const char *thing)
{
    ota_db_stmt_t *st;
    int rc = prep(s, &st, "SELECT kind, name FROM job_targets WHERE job = ?");
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, job_id);
    char groups[16][OTA_STORE_GROUP_NAME_MAX + 1];
    size_t n = 0;
    int direct = 0;
    while (ota_db_step(st) == OTA_DB_ROW) {
        const char *name = ota_db_column_text(st, 1);
        if (ota_db_column_int64(st, 0) == 0)
            direct |= strcmp(name, thing) == 0;
        else if (n < 16)
            snprintf(groups[n++], sizeof groups[0], "%s", name);
    }
    ota_db_finalize(st);
    for (size_t i = 0; !direct && i < n; i++) {
        int in = in_group(s, groups[i], thing);
        if (in < 0)
            return in;
        direct = in;
    }
    return direct;
}

int ota_store_continuous_sync(ota_store_t *s, const char *thing, int64_t now_ms)
{
    ota_db_stmt_t *st;
    int rc = prep(s, &st,
                  "SELECT j.id, j.controlled, j.rollout_per_min, (SELECT e.status FROM "
                  "executions e WHERE e.job = j.id AND e.thing = ?1) FROM jobs j "
                  "WHERE j.status = " JOB_IN_PROGRESS " AND j.continuous = 1 ORDER BY j.seq");
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, thing);
    typedef struct {
        char id[OTA_STORE_JOB_ID_MAX + 1];
        int held, status;
    } cj_t;
    cj_t *jobs = NULL;
    size_t n = 0;
    while (ota_db_step(st) == OTA_DB_ROW) {
        cj_t *p = realloc(jobs, (n + 1) * sizeof *jobs);
        if (!p)
            break;
        jobs = p;
        copy_col(jobs[n].id, sizeof jobs[n].id, st, 0);
        jobs[n].held = ota_db_column_int64(st, 1) || ota_db_column_int64(st, 2) > 0;
        jobs[n].status = ota_db_column_is_null(st, 3) ? -1 : ota_db_column_int64(st, 3);
        n++;
    }
    ota_db_finalize(st);
    for (size_t i = 0; !rc && i < n; i++) {
        int want = job_targets_thing(s, jobs[i].id, thing);
        if (want < 0) {
            rc = want;
        } else if (want && jobs[i].status < 0) {
            if (!(rc = prep(s, &st,
                            "INSERT INTO executions(job, thing, status, version, exec_number, "
                            "queued_ms, updated_ms, released) VALUES(?, ?, " EX_QUEUED
                            ", 1, 1, ?, ?, ?)"))) {
                ota_db_bind_text(st, 1, jobs[i].id);
                ota_db_bind_text(st, 2, thing);
                ota_db_bind_int64(st, 3, now_ms);
                ota_db_bind_int64(st, 4, now_ms);
                ota_db_bind_int64(st, 5, !jobs[i].held);
                rc = step_done(s, st, "add execution");
                ota_db_finalize(st);
            }
            if (!rc && !jobs[i].held)
                rc = bump_thing(s, thing);
            if (!rc)
                rc = ota_store_skip_unneeded(s, jobs[i].id, thing, now_ms);
            if (!rc)
                rc = ota_store_release_controlled(s, jobs[i].id, now_ms, NULL);
        } else if (!want && jobs[i].status == OTA_STORE_EXEC_QUEUED) {
            if (!(rc = prep(s, &st,
                            "UPDATE executions SET status = " EX_REMOVED
                            ", released = 1, version = version "
                            "+ 1, updated_ms = ?3 WHERE job = ?1 AND thing = ?2"))) {
                ota_db_bind_text(st, 1, jobs[i].id);
                ota_db_bind_text(st, 2, thing);
                ota_db_bind_int64(st, 3, now_ms);
                rc = step_done(s, st, "remove execution");
                ota_db_finalize(st);
            }
            if (!rc)
                rc = bump_thing(s, thing);
        }
    }
    free(jobs);
    return rc;
}
