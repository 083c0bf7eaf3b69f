/*
 * otter CLI: the --json form of the list and show commands, and the words
 * every command uses for an execution's state and a device's reason.
 *
 * Each function prints one JSON document (cJSON, unformatted) and a newline
 * on stdout, or the error line. Times are UTC "YYYY-MM-DDTHH:MM:SSZ", or null.
 */
#ifndef CLI_JSON_H
#define CLI_JSON_H

#include <stddef.h>

#include "ota_store.h"

/**
 * An execution's state as people read it: its status, or
 * "QUEUED (held by rollout)" while the rollout holds it back.
 */
const char *cli_exec_status_text(ota_store_exec_status_t status, int released);

/**
 * The words for a device's reason in statusDetails text, for the plain lines
 * of job show and job history: "  (OTA_ERR_ROLLBACK: <meaning>)" when the
 * reason is one the agent writes (ota_svc_reason_decode()), else "".
 * Reasons in --json and watch go through ota_svc_reason_text().
 */
void cli_details_reason_words(const char *details, char *out, size_t cap);

/** `job list --json`: an array of jobs. @return an exit code. */
int cli_json_job_list(ota_store_t *store);

/** `job show --json`: the job, its document and executions. @return an exit code. */
int cli_json_job_show(ota_store_t *store, const ota_store_job_t *job);

/** `job history --json`: one execution's changes, oldest first. @return an exit code. */
int cli_json_job_history(ota_store_t *store, const char *job_id, const char *thing);

/** `thing list --json`: an array of things with their inventory. @return an exit code. */
int cli_json_thing_list(ota_store_t *store);

/** `thing show --json`: a thing, groups, attributes, executions. @return an exit code. */
int cli_json_thing_show(ota_store_t *store, const ota_store_thing_t *thing);

/** `group list --json`: an array of groups. @return an exit code. */
int cli_json_group_list(ota_store_t *store);

/** `group show --json`: a group and its members. @return an exit code. */
int cli_json_group_show(ota_store_t *store, const ota_store_group_t *group);

/** `stream describe --json`: the stream and its files. @return an exit code. */
int cli_json_stream_describe(const ota_store_stream_t *stream);

#endif /* CLI_JSON_H */
