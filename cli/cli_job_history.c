/* otter CLI: job history (every change of one thing's execution of a job). */
#include <stdio.h>
#include <string.h>

#include "cli_cmds.h"
#include "cli_json.h"
#include "cli_text.h"
#include "ota_store.h"

#define HISTORY_KEPT_STR(n) #n
#define HISTORY_KEPT_NUM(n) HISTORY_KEPT_STR(n)
#define HISTORY_KEPT_TEXT HISTORY_KEPT_NUM(OTA_STORE_HISTORY_KEPT)

static const char history_help[] =
    "usage: otter job history ID THING [--json]\n"
    "\n"
    "Every change of one thing's execution of a job, oldest first: its creation\n"
    "(QUEUED, version 1), then each accepted status update of the device (progress\n"
    "reports included), a timeout, a cancel, a skip or a removal, each recorded once\n"
    "in the transaction that made it. Columns: time (UTC, milliseconds), status,\n"
    "version number, who recorded it (the service instance's client id, otter-cli,\n"
    "otter-web), statusDetails (a failure's error code named and explained after\n"
    "them).\n"
    "\n"
    "The history keeps the creation and the most recent " HISTORY_KEPT_TEXT " changes; when\n"
    "older ones were dropped, a line says how many (--json: \"droppedBefore\" on the\n"
    "entry after them).\n";

static int show_event(void *ctx, const ota_store_exec_event_t *ev)
{
    (void)ctx;
    char when[24], words[320], recorder[129], details[CLI_TEXT_JSON_CAP];
    if (ev->dropped_before > 0) {
        printf("... %lld older change(s) dropped: the history keeps the creation and the most "
               "recent %d\n",
               (long long)ev->dropped_before, OTA_STORE_HISTORY_KEPT);
    }
    cli_format_time(ev->at_ms, when);
    cli_details_reason_words(ev->status_details, words, sizeof words);
    printf("%s.%03lld  %-11s v%-3lld %-24s %s%s\n", when, (long long)(ev->at_ms % 1000),
           ota_store_exec_status_name(ev->status), (long long)ev->version_number,
           ev->recorder[0] ? cli_safe_text(ev->recorder, recorder, sizeof recorder) : "-",
           cli_safe_json(ev->status_details, details, sizeof details), words);
    return 0;
}

int cli_cmd_job_history(const cli_ctx_t *ctx, int argc, char **argv)
{
    const char *pos[3] = {NULL, NULL, NULL};
    size_t n_pos = 0;
    int help = 0;
    int rc = cli_parse(argc, argv, NULL, 0, pos, 3, &n_pos, &help);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (help) {
        fputs(history_help, stdout);
        return CLI_EXIT_OK;
    }
    if (n_pos != 2) {
        return cli_fail(CLI_EXIT_USAGE, "job history needs a job ID and a thing name; see "
                                        "'otter job show ID' for the job's things");
    }
    if (!ota_store_valid_job_id(pos[0]) || !ota_store_valid_thing_name(pos[1])) {
        return cli_fail(CLI_EXIT_USAGE, "bad job ID '%s' or thing name '%s'; see 'otter job list'",
                        pos[0], pos[1]);
    }
    ota_store_t *store = NULL;
    if ((rc = cli_store_open(ctx, &store)) != CLI_EXIT_OK) {
        return rc;
    }
    ota_store_execution_t e;
    if (ota_store_execution_get(store, pos[0], pos[1], &e) != OTA_STORE_OK) {
        rc = cli_fail(CLI_EXIT_FAIL,
                      "thing '%s' has no execution of job '%s'; see 'otter job "
                      "show %s'",
                      pos[1], pos[0], pos[0]);
    } else if (ctx->json) {
        rc = cli_json_job_history(store, pos[0], pos[1]);
    } else {
        printf("job %s, thing %s (now %s, version %lld):\n", pos[0], pos[1],
               ota_store_exec_status_name(e.status), (long long)e.version_number);
        if (ota_store_execution_history(store, pos[0], pos[1], show_event, NULL) != OTA_STORE_OK) {
            rc = cli_fail(CLI_EXIT_FAIL, "cannot read the history (%s); check the data folder",
                          ota_store_errmsg(store));
        }
    }
    ota_store_execution_free(&e);
    ota_store_close(store);
    return rc;
}
