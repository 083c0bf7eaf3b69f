/*
 * otter service: the rules of a new job's targets and limits, with the error
 * texts every front end gives (the CLI's `otter job create` and the web API's
 * POST /api/v1/jobs). Each front end names its own fields ("--targets" or
 * "targets"); the rules and the advice are the same.
 *
 * Host code: uses the heap. Error texts read "<what went wrong>; <what to do>".
 */
#ifndef OTA_JOB_SPEC_H
#define OTA_JOB_SPEC_H

#include <stddef.h>

#include "ota_store.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Result: accepted. */
#define OTA_JOB_SPEC_OK 0
/** Result: the request itself is malformed (a bad name, number or combination). */
#define OTA_JOB_SPEC_USAGE 2
/** Result: well formed but refused by the store's state (unknown thing, empty group). */
#define OTA_JOB_SPEC_FAIL 1

/** How a front end names the fields in its error texts. */
typedef struct ota_job_spec_names {
    const char *targets;   /**< e.g. "--targets" */
    const char *timeout;   /**< e.g. "--timeout-minutes" */
    const char *rollout;   /**< e.g. "--rollout-rate" */
    const char *abort_pct; /**< e.g. "--abort-failure-percent" */
    const char *abort_min; /**< e.g. "--abort-min-finished" */
} ota_job_spec_names_t;

/** The limits of a job as text, each NULL when not given. */
typedef struct ota_job_spec_limits {
    const char *timeout;
    const char *rollout;
    const char *abort_pct;
    const char *abort_min;
} ota_job_spec_limits_t;

/** A target list split into things and groups; free with ota_job_spec_targets_free(). */
typedef struct ota_job_spec_targets {
    const char **things; /**< point into copy */
    size_t n_things;
    const char **groups; /**< point into copy (after "group:") */
    size_t n_groups;
    char *copy;
} ota_job_spec_targets_t;

/**
 * Checks a job id: 1-64 of [A-Za-z0-9_-].
 * @return OTA_JOB_SPEC_OK, or OTA_JOB_SPEC_USAGE with the text in err.
 */
int ota_job_spec_check_id(const char *job_id, char *err, size_t cap);

/**
 * Checks the limits and fills the spec's in_progress_timeout_min,
 * rollout_per_minute, abort_failure_percent and abort_min_finished.
 * Timeout 1-10080 minutes, rollout 1-1000000 things per minute, abort
 * percent 1-100 and minimum 1-1000000, the last two together.
 * @return OTA_JOB_SPEC_OK, or OTA_JOB_SPEC_USAGE with the text in err.
 */
int ota_job_spec_check_limits(const ota_job_spec_names_t *names, const ota_job_spec_limits_t *lim,
                              ota_store_job_spec_t *spec, char *err, size_t cap);

/**
 * Splits a target list ("NAME[,NAME|group:G...]") and checks it against the
 * store: every thing exists, every group has members, at least one target.
 * @param out receives the lists (also filled in part on failure; always free it).
 * @return OTA_JOB_SPEC_OK; OTA_JOB_SPEC_USAGE (bad syntax, no target);
 *         OTA_JOB_SPEC_FAIL (unknown thing, unknown or empty group, no memory),
 *         with the text in err.
 */
int ota_job_spec_targets(ota_store_t *store, const ota_job_spec_names_t *names, const char *list,
                         ota_job_spec_targets_t *out, char *err, size_t cap);

/** Releases what ota_job_spec_targets() allocated; zeroes *t. */
void ota_job_spec_targets_free(ota_job_spec_targets_t *t);

/**
 * Parses a decimal unsigned number in [min, max] (no sign, no spaces).
 * @return 0 and *out, or -1.
 */
int ota_job_spec_parse_uint(const char *text, unsigned long min, unsigned long max,
                            unsigned long *out);

#ifdef __cplusplus
}
#endif

#endif /* OTA_JOB_SPEC_H */
