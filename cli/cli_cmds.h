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

/** `otter image create --version V --out IMAGE FIRMWARE`: wrap firmware in an image. */
int cli_cmd_image_create(const cli_ctx_t *ctx, int argc, char **argv);

/** `otter image sign --key KEY IMAGE`: a detached signature over an image. */
int cli_cmd_image_sign(const cli_ctx_t *ctx, int argc, char **argv);

/** `otter image verify --cert CERT --signature SIG IMAGE`: check as a device does. */
int cli_cmd_image_verify(const cli_ctx_t *ctx, int argc, char **argv);

/** `otter image show IMAGE`: an image's header and digest. */
int cli_cmd_image_show(const cli_ctx_t *ctx, int argc, char **argv);

/** `otter broker init --port N [--bind A] [--host H] [--tls]`: broker configuration. */
int cli_cmd_broker_init(const cli_ctx_t *ctx, int argc, char **argv);

/** `otter service credentials --instance NAME`: an instance's own certificate and login (TLS). */
int cli_cmd_service_credentials(const cli_ctx_t *ctx, int argc, char **argv);

/** `otter thing create NAME`: credentials, password entry, store record. */
int cli_cmd_thing_create(const cli_ctx_t *ctx, int argc, char **argv);

/** `otter thing revoke NAME`: revoke its certificate, delete its login, end its session. */
int cli_cmd_thing_revoke(const cli_ctx_t *ctx, int argc, char **argv);

/** `otter thing list`: every thing. */
int cli_cmd_thing_list(const cli_ctx_t *ctx, int argc, char **argv);

/** `otter thing show NAME`: a thing and its job executions. */
int cli_cmd_thing_show(const cli_ctx_t *ctx, int argc, char **argv);

/** `otter thing set NAME KEY=VALUE...`: thing attributes (deviceType, firmwareVersion, ...). */
int cli_cmd_thing_set(const cli_ctx_t *ctx, int argc, char **argv);

/** `otter thing unset NAME KEY...`: remove thing attributes. */
int cli_cmd_thing_unset(const cli_ctx_t *ctx, int argc, char **argv);

/** Prints "attributes:" and one line per attribute of a thing; CLI_EXIT_OK or an error line. */
int cli_print_thing_attrs(struct ota_store *store, const char *thing);

/** Print `thing show`'s presence line: online / unknown / offline / never seen, the brokers
 * it is known on, those where it is unknown and since when, when it was last seen. */
int cli_print_thing_presence(struct ota_store *store, const char *thing);

/** One line of `thing list` (the header when thing is NULL). */
void cli_print_thing_row(struct ota_store *store, const char *thing);

/** One attribute of a thing into out, made safe to print (cli_safe_text()), or "-" when unset. */
void cli_thing_attr(struct ota_store *store, const char *thing, const char *key, char *out,
                    size_t cap);

/** `otter group create NAME [--query Q]`: a static or dynamic group. */
int cli_cmd_group_create(const cli_ctx_t *ctx, int argc, char **argv);
/** `otter group list`. */
int cli_cmd_group_list(const cli_ctx_t *ctx, int argc, char **argv);
/** `otter group show NAME`: a group and its members now. */
int cli_cmd_group_show(const cli_ctx_t *ctx, int argc, char **argv);
/** `otter group delete NAME`. */
int cli_cmd_group_delete(const cli_ctx_t *ctx, int argc, char **argv);
/** `otter group add GROUP THING...`: static membership. */
int cli_cmd_group_add(const cli_ctx_t *ctx, int argc, char **argv);
/** `otter group remove GROUP THING...`. */
int cli_cmd_group_remove(const cli_ctx_t *ctx, int argc, char **argv);
/** Prints "groups:" and the groups a thing is in now; CLI_EXIT_OK or an error line. */
int cli_print_thing_groups(struct ota_store *store, const char *thing);

/** `otter thing disable NAME`: the broker refuses it and ends its session. */
int cli_cmd_thing_disable(const cli_ctx_t *ctx, int argc, char **argv);
/** `otter thing enable NAME`. */
int cli_cmd_thing_enable(const cli_ctx_t *ctx, int argc, char **argv);
/** `otter thing rotate NAME`: new credentials, the old ones refused. */
int cli_cmd_thing_rotate(const cli_ctx_t *ctx, int argc, char **argv);
/** `otter thing delete NAME [--force]`: login, certificate, files and record. */
int cli_cmd_thing_delete(const cli_ctx_t *ctx, int argc, char **argv);

/** `otter job create ...`: sign/wrap the firmware, store it, stream and job. */
int cli_cmd_job_create(const cli_ctx_t *ctx, int argc, char **argv);

/** `otter job list`: every job. */
int cli_cmd_job_list(const cli_ctx_t *ctx, int argc, char **argv);

/** `otter job show ID`: a job and its executions. */
int cli_cmd_job_show(const cli_ctx_t *ctx, int argc, char **argv);

/** `otter job history ID THING [--json]`: every change of one execution. */
int cli_cmd_job_history(const cli_ctx_t *ctx, int argc, char **argv);

/** `otter job cancel ID [--thing T [--force]]`: cancel a job, or one thing's execution. */
int cli_cmd_job_cancel(const cli_ctx_t *ctx, int argc, char **argv);

/** `otter job delete ID [--force]`: delete a job, its stream and its image. */
int cli_cmd_job_delete(const cli_ctx_t *ctx, int argc, char **argv);

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
