/*
 * otter CLI: the subcommands. Each takes the shared context and its own
 * arguments (argv[0] = the command's name, e.g. "job create") and returns an
 * exit code: CLI_EXIT_OK, CLI_EXIT_FAIL or CLI_EXIT_USAGE, after printing
 * exactly one error line on failure.
 */
#ifndef CLI_CMDS_H
#define CLI_CMDS_H

#include "cli_common.h"
#include "cli_keys.h"

/** `otter broker init --port N [--bind A] [--host H] [--tls]`: broker configuration. */
int cli_cmd_broker_init(const cli_ctx_t *ctx, int argc, char **argv);

/** `otter thing create NAME`: credentials, password entry, store record. */
int cli_cmd_thing_create(const cli_ctx_t *ctx, int argc, char **argv);

/** `otter thing revoke NAME`: revoke its certificate, delete its login, end its session. */
int cli_cmd_thing_revoke(const cli_ctx_t *ctx, int argc, char **argv);

/** `otter thing list`: every thing. */
int cli_cmd_thing_list(const cli_ctx_t *ctx, int argc, char **argv);

/** `otter thing show NAME`: a thing and its job executions. */
int cli_cmd_thing_show(const cli_ctx_t *ctx, int argc, char **argv);

/** `otter job create ...`: sign/wrap the firmware, store it, stream and job. */
int cli_cmd_job_create(const cli_ctx_t *ctx, int argc, char **argv);

/** `otter job list`: every job. */
int cli_cmd_job_list(const cli_ctx_t *ctx, int argc, char **argv);

/** `otter job show ID`: a job and its executions. */
int cli_cmd_job_show(const cli_ctx_t *ctx, int argc, char **argv);

/** `otter job cancel ID`: cancel a job and its unfinished executions. */
int cli_cmd_job_cancel(const cli_ctx_t *ctx, int argc, char **argv);

/** `otter watch JOB_ID [--json] [--timeout S]`: live progress of a job. */
int cli_cmd_watch(const cli_ctx_t *ctx, int argc, char **argv);

/** `otter stream describe STREAM_ID`: a stream's version, description, files. */
int cli_cmd_stream_describe(const cli_ctx_t *ctx, int argc, char **argv);

/** `otter user add NAME --role viewer|operator`: a web console account. */
int cli_cmd_user_add(const cli_ctx_t *ctx, int argc, char **argv);

/** `otter user list`: the web console's accounts. */
int cli_cmd_user_list(const cli_ctx_t *ctx, int argc, char **argv);

/** `otter user remove NAME`: remove a web console account. */
int cli_cmd_user_remove(const cli_ctx_t *ctx, int argc, char **argv);

#endif /* CLI_CMDS_H */
