/* otter CLI: job cancel (whole job or one thing's execution) and job delete. */
#include <stdio.h>
#include <string.h>

#include "cli_cmds.h"
#include "ota_store.h"

static const char cancel_help[] =
    "usage: otter job cancel ID [--thing NAME [--force]] [--reason-code CODE]\n"
    "                           [--comment TEXT]\n"
    "\n"
    "Cancel a job: every execution not finished yet becomes CANCELED (also those\n"
    "the rollout still holds) and the service tells those devices. The job keeps\n"
    "the reason (default code CANCELED), shown by 'otter job show'.\n"
    "\n"
    "  --thing NAME        cancel only this thing's execution (AWS\n"
    "                      CancelJobExecution); the job goes on for the others\n"
    "  --force             also cancel an execution IN_PROGRESS (the device may be\n"
    "                      writing its flash; it is told through notify-next and\n"
    "                      its next status update is refused)\n"
    "  --reason-code CODE  1-32 of [A-Za-z0-9_] (whole job only)\n"
    "  --comment TEXT      1-256 printable characters (whole job only)\n";

/* The error line for a store refusal of a cancel. */
static int cancel_failed(ota_store_t *store, int src, const char *job, const char *thing)
{
    if (src == OTA_STORE_NOT_FOUND && thing) {
        return cli_fail(CLI_EXIT_FAIL,
                        "thing '%s' has no execution of job '%s'; see 'otter job show %s'", thing,
                        job, job);
    }
    if (src == OTA_STORE_NOT_FOUND) {
        return cli_fail(CLI_EXIT_FAIL, "unknown job '%s'; see 'otter job list'", job);
    }
    if (src == OTA_STORE_CONFLICT && thing) {
        return cli_fail(CLI_EXIT_FAIL,
                        "the execution of '%s' is IN_PROGRESS (the device may be writing its "
                        "flash); add --force to cancel it anyway",
                        thing);
    }
    if (src == OTA_STORE_TERMINAL || src == OTA_STORE_CONFLICT) {
        return cli_fail(CLI_EXIT_FAIL, "%s; nothing to cancel", ota_store_errmsg(store));
    }
    if (src == OTA_STORE_INVALID) {
        return cli_fail(CLI_EXIT_USAGE, "%s; see 'otter job cancel --help'",
                        ota_store_errmsg(store));
    }
    return cli_fail(CLI_EXIT_FAIL, "cannot cancel (%s); try again", ota_store_errmsg(store));
}

int cli_cmd_job_cancel(const cli_ctx_t *ctx, int argc, char **argv)
{
    const char *thing, *force, *code, *comment, *pos[1];
    const cli_opt_t opts[] = {{"thing", 1, &thing},
                              {"force", 0, &force},
                              {"reason-code", 1, &code},
                              {"comment", 1, &comment}};
    int rc = cli_parse_one(argc, argv, opts, 4, cancel_help,
                           "job cancel needs a job ID; see 'otter job list'", &pos[0]);
    if (rc != CLI_EXIT_OK) {
        return rc == CLI_DONE ? CLI_EXIT_OK : rc;
    }
    if (force && !thing) {
        return cli_fail(CLI_EXIT_USAGE, "--force goes with --thing NAME; a whole job is canceled "
                                        "without it");
    }
    if (thing && (code || comment)) {
        return cli_fail(CLI_EXIT_USAGE, "--reason-code and --comment are for a whole job; drop "
                                        "them or --thing");
    }
    if (thing && !ota_store_valid_thing_name(thing)) {
        return cli_fail(CLI_EXIT_USAGE, "bad thing name '%s'; see 'otter thing list'", thing);
    }
    ota_store_t *store = NULL;
    if ((rc = cli_store_open(ctx, &store)) != CLI_EXIT_OK) {
        return rc;
    }
    int src =
        thing ? ota_store_execution_cancel(store, pos[0], thing, force != NULL, ota_store_now_ms())
              : ota_store_job_cancel_why(store, pos[0], code, comment, ota_store_now_ms());
    if (src != OTA_STORE_OK) {
        rc = cancel_failed(store, src, pos[0], thing);
    } else if (thing) {
        printf("execution of job %s on %s canceled\n", pos[0], thing);
    } else {
        printf("job %s canceled\n", pos[0]);
    }
    ota_store_close(store);
    return rc;
}

static const char delete_help[] =
    "usage: otter job delete ID [--force]\n"
    "\n"
    "Delete a finished job (COMPLETED, CANCELED or ABORTED) with its executions,\n"
    "its stream and the stored firmware image (unless another job uses the stream).\n"
    "\n"
    "  --force  delete a job still IN_PROGRESS: its devices are told first\n";

int cli_cmd_job_delete(const cli_ctx_t *ctx, int argc, char **argv)
{
    const char *force, *pos[1];
    const cli_opt_t opts[] = {{"force", 0, &force}};
    int rc = cli_parse_one(argc, argv, opts, 1, delete_help,
                           "job delete needs a job ID; see 'otter job list'", &pos[0]);
    if (rc != CLI_EXIT_OK) {
        return rc == CLI_DONE ? CLI_EXIT_OK : rc;
    }
    ota_store_t *store = NULL;
    if ((rc = cli_store_open(ctx, &store)) != CLI_EXIT_OK) {
        return rc;
    }
    int src = ota_store_job_delete(store, pos[0], force != NULL, ota_store_now_ms());
    if (src == OTA_STORE_NOT_FOUND || src == OTA_STORE_INVALID) {
        rc = cli_fail(CLI_EXIT_FAIL, "unknown job '%s'; see 'otter job list'", pos[0]);
    } else if (src == OTA_STORE_CONFLICT) {
        rc = cli_fail(CLI_EXIT_FAIL,
                      "job '%s' is IN_PROGRESS; cancel it first ('otter job cancel %s') or add "
                      "--force",
                      pos[0], pos[0]);
    } else if (src != OTA_STORE_OK) {
        rc = cli_fail(CLI_EXIT_FAIL, "cannot delete job '%s' (%s); try again", pos[0],
                      ota_store_errmsg(store));
    } else {
        printf("job %s deleted\n", pos[0]);
    }
    ota_store_close(store);
    return rc;
}
