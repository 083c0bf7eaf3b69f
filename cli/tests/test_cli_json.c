/*
 * otter CLI tests: the CLI in scripts. --json on the list and show commands
 * (parsed back with cJSON), every list/show/describe command of 'otter help'
 * naming --json, --version, help, the refusal of empty --targets
 * entries, and watch's words for people (reasons normalised, the device's
 * detail, the rollout's held executions named as job show names them).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <cjson/cJSON.h>

#include "cli_test_util.h"
#include "otter/ota_err.h"
#include "ota_store.h"

static cli_run_t g_run;
#define R (&g_run)

/* Asserts a run's exit code (and one error line on a failure). */
#define expect(code, want) assert_true(cli_test_exit_is(R, (code), (want)))

/* The run's stdout as one JSON document (never NULL). */
static cJSON *out_json(void)
{
    cJSON *j = cJSON_Parse(R->out);
    if (j == NULL) {
        fail_msg("not JSON: %s", R->out);
    }
    return j;
}

static void test_json_lists_and_shows(void **state)
{
    (void)state;
    expect(cli_test_run(R, "broker", "init", "--port", "18996", NULL), 0);
    expect(cli_test_run(R, "thing", "create", "A", NULL), 0);
    expect(cli_test_run(R, "thing", "create", "B", "--group", "lab", NULL), 0);
    expect(cli_test_run(R, "thing", "set", "A", "deviceType=sim-a", NULL), 0);
    expect(cli_test_run(R, "keygen", "--out", cli_test_path("keys"), NULL), 0);
    uint8_t fw[700];
    memset(fw, 0x42, sizeof fw);
    assert_int_equal(cli_test_write(cli_test_path("fw.bin"), fw, sizeof fw), 0);
    expect(cli_test_run(R, "job", "create", "--file", cli_test_path("fw.bin"), "--version", "1.2.3",
                        "--targets", "A,group:lab", "--key", cli_test_path("keys/codesign.key"),
                        "--job-id", "j1", "--rollout-rate", "1", NULL),
           0);

    expect(cli_test_run(R, "job", "list", "--json", NULL), 0);
    cJSON *j = out_json();
    assert_int_equal(cJSON_GetArraySize(j), 1);
    const cJSON *job = cJSON_GetArrayItem(j, 0);
    assert_string_equal(cJSON_GetObjectItem(job, "jobId")->valuestring, "j1");
    assert_string_equal(cJSON_GetObjectItem(job, "version")->valuestring, "1.2.3");
    assert_int_equal(cJSON_GetObjectItem(job, "targets")->valueint, 2);
    cJSON_Delete(j);

    expect(cli_test_run(R, "job", "show", "j1", "--json", NULL), 0);
    j = out_json();
    const cJSON *doc = cJSON_GetObjectItem(j, "document");
    assert_non_null(cJSON_GetObjectItem(doc, "afr_ota"));
    const cJSON *ex = cJSON_GetObjectItem(j, "executions");
    assert_int_equal(cJSON_GetArraySize(ex), 2);
    /* One thing a minute: one released, one held; words as in job show's text. */
    int held = 0;
    for (int i = 0; i < 2; i++) {
        const cJSON *e = cJSON_GetArrayItem(ex, i);
        if (cJSON_IsFalse(cJSON_GetObjectItem(e, "released"))) {
            held++;
            assert_string_equal(cJSON_GetObjectItem(e, "state")->valuestring,
                                "QUEUED (held by rollout)");
        }
    }
    assert_int_equal(held, 1);
    cJSON_Delete(j);
    expect(cli_test_run(R, "job", "show", "j1", NULL), 0);
    assert_non_null(strstr(R->out, "QUEUED (held by rollout)"));

    expect(cli_test_run(R, "thing", "list", "--json", NULL), 0);
    j = out_json();
    assert_int_equal(cJSON_GetArraySize(j), 2);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "deviceType")->valuestring,
                        "sim-a");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 1), "deviceType")));
    cJSON_Delete(j);

    expect(cli_test_run(R, "thing", "show", "--json", "B", NULL), 0);
    j = out_json();
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "groups"), 0)->valuestring,
                        "lab");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "executions"), 0), "jobId")
            ->valuestring,
        "j1");
    cJSON_Delete(j);

    expect(cli_test_run(R, "group", "list", "--json", NULL), 0);
    j = out_json();
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "group")->valuestring, "lab");
    cJSON_Delete(j);
    expect(cli_test_run(R, "group", "show", "lab", "--json", NULL), 0);
    j = out_json();
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "things"), 0), "thing")
            ->valuestring,
        "B");
    cJSON_Delete(j);

    /* --json where there is no JSON form; help names --json where there is. */
    expect(cli_test_run(R, "thing", "create", "C", "--json", NULL), 2);
    expect(cli_test_run(R, "job", "list", "--help", NULL), 0);
    assert_non_null(strstr(R->out, "--json"));
    /* Errors stay one line on stderr, nothing on stdout. */
    expect(cli_test_run(R, "job", "show", "nope", "--json", NULL), 1);
    assert_string_equal(R->out, "");

    /* An execution's history: its creation and the cancel, each once, by the CLI. */
    expect(cli_test_run(R, "job", "cancel", "j1", "--thing", "A", NULL), 0);
    expect(cli_test_run(R, "job", "history", "j1", "A", "--json", NULL), 0);
    j = out_json();
    assert_string_equal(cJSON_GetObjectItem(j, "thing")->valuestring, "A");
    const cJSON *h = cJSON_GetObjectItem(j, "history");
    assert_int_equal(cJSON_GetArraySize(h), 2);
    const char *want[] = {"QUEUED", "CANCELED"};
    for (int i = 0; i < 2; i++) {
        const cJSON *e = cJSON_GetArrayItem(h, i);
        assert_string_equal(cJSON_GetObjectItem(e, "status")->valuestring, want[i]);
        assert_int_equal(cJSON_GetObjectItem(e, "versionNumber")->valueint, i + 1);
        assert_string_equal(cJSON_GetObjectItem(e, "recordedBy")->valuestring, "otter-cli");
        assert_true(cJSON_IsString(cJSON_GetObjectItem(e, "at")));
        assert_true(cJSON_GetObjectItem(e, "atMs")->valuedouble > 0);
    }
    cJSON_Delete(j);
    expect(cli_test_run(R, "job", "history", "j1", "A", NULL), 0);
    assert_non_null(strstr(R->out, "CANCELED    v2   otter-cli"));
    expect(cli_test_run(R, "job", "history", "j1", "nope", NULL), 1);
    assert_string_equal(R->out, "");
    expect(cli_test_run(R, "job", "history", "j1", NULL), 2);
    expect(cli_test_run(R, "job", "history", "j1", "A", "B", NULL), 2);
    expect(cli_test_run(R, "job", "history", "j1", "bad name", NULL), 2);

    /* Empty --targets entries are typos. */
    const char *bad[] = {"A,", ",A", "A,,B", ","};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        expect(cli_test_run(R, "job", "create", "--file", cli_test_path("fw.bin"), "--version",
                            "1.2.4", "--targets", bad[i], "--key",
                            cli_test_path("keys/codesign.key"), NULL),
               2);
        assert_non_null(strstr(R->err, "empty entry"));
    }
}

/* A code-signing key and a job of 700 bytes of fill for targets. */
static void make_job(const char *version, const char *targets, const char *job_id, int fill)
{
    expect(cli_test_run(R, "keygen", "--out", cli_test_path("keys"), NULL), 0);
    uint8_t fw[700];
    memset(fw, fill, sizeof fw);
    assert_int_equal(cli_test_write(cli_test_path("fw.bin"), fw, sizeof fw), 0);
    expect(cli_test_run(R, "job", "create", "--file", cli_test_path("fw.bin"), "--version", version,
                        "--targets", targets, "--key", cli_test_path("keys/codesign.key"),
                        "--job-id", job_id, NULL),
           0);
}

/* stream describe and user list in JSON; every list, show and describe command
 * named by 'otter help' says it takes --json. */
static void test_json_everywhere(void **state)
{
    (void)state;
    expect(cli_test_run(R, "broker", "init", "--port", "18994", NULL), 0);
    expect(cli_test_run(R, "thing", "create", "A", NULL), 0);
    make_job("1.0.1", "A", "s1", 0x44);
    expect(cli_test_run(R, "job", "show", "s1", "--json", NULL), 0);
    cJSON *j = out_json();
    char *stream = strdup(cJSON_GetObjectItem(j, "stream")->valuestring);
    cJSON_Delete(j);
    expect(cli_test_run(R, "stream", "describe", "--json", stream, NULL), 0);
    j = out_json();
    assert_string_equal(cJSON_GetObjectItem(j, "streamId")->valuestring, stream);
    assert_int_equal(cJSON_GetObjectItem(j, "version")->valueint, 1);
    assert_true(cJSON_IsString(cJSON_GetObjectItem(j, "createdAt")));
    const cJSON *files = cJSON_GetObjectItem(j, "files");
    assert_int_equal(cJSON_GetArraySize(files), 1);
    const cJSON *f = cJSON_GetArrayItem(files, 0);
    assert_int_equal(cJSON_GetObjectItem(f, "fileId")->valueint, 0);
    assert_true(cJSON_GetObjectItem(f, "size")->valueint > 700); /* with its header */
    assert_true(cJSON_IsString(cJSON_GetObjectItem(f, "path")));
    cJSON_Delete(j);
    free(stream);
    expect(cli_test_run(R, "stream", "describe", "nope", "--json", NULL), 1);
    assert_string_equal(R->out, "");

    /* No accounts yet: an empty array; then two accounts in the order added. */
    expect(cli_test_run(R, "user", "list", "--json", NULL), 0);
    j = out_json();
    assert_true(cJSON_IsArray(j));
    assert_int_equal(cJSON_GetArraySize(j), 0);
    cJSON_Delete(j);
    const char *add[][2] = {{"ann", "operator"}, {"bob", "viewer"}};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(cli_test_sh("printf 'a long enough password\\n' | %s --data-dir %s user "
                                     "add %s --role %s",
                                     OTTER_BIN, cli_test_data(), add[i][0], add[i][1]),
                         0);
    }
    expect(cli_test_run(R, "user", "list", "--json", NULL), 0);
    j = out_json();
    assert_int_equal(cJSON_GetArraySize(j), 2);
    for (int i = 0; i < 2; i++) {
        const cJSON *u = cJSON_GetArrayItem(j, i);
        assert_string_equal(cJSON_GetObjectItem(u, "user")->valuestring, add[i][0]);
        assert_string_equal(cJSON_GetObjectItem(u, "role")->valuestring, add[i][1]);
    }
    cJSON_Delete(j);

    /* Every list, show and describe command of the main help takes --json. */
    expect(cli_test_run(R, "help", NULL), 0);
    char *help = strdup(R->out);
    int checked = 0;
    for (char *line = strtok(help, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char group[32], verb[32];
        if (sscanf(line, "  %31[a-z] %31[a-z]", group, verb) != 2 ||
            (strcmp(verb, "list") != 0 && strcmp(verb, "show") != 0 &&
             strcmp(verb, "describe") != 0)) {
            continue;
        }
        cli_run_t *r = malloc(sizeof *r);
        assert_non_null(r);
        assert_int_equal(cli_test_run(r, group, verb, "--help", NULL), 0);
        if (strstr(r->out, "--json") == NULL) {
            fail_msg("'otter %s %s --help' does not name --json", group, verb);
        }
        free(r);
        checked++;
    }
    free(help);
    assert_true(checked >= 7); /* thing, group, job list and show; image show; stream; user */
}

/* An operator's fleet at once: more things in one 'group add' and 'group
 * remove' than a command line used to take (64), listed back in JSON. */
static void test_fleet_at_once(void **state)
{
    (void)state;
    enum { N = 65 };
    static char names[N][16];
    const char *argv[N + 4];
    expect(cli_test_run(R, "broker", "init", "--port", "18993", NULL), 0);
    argv[0] = "thing";
    argv[1] = "create";
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "dev%03d", i + 1);
        argv[2 + i] = names[i];
    }
    argv[2 + N] = NULL;
    expect(cli_test_runv(R, argv), 0);
    argv[0] = "group";
    argv[1] = "add";
    argv[2] = "lab";
    for (int i = 0; i < N; i++) {
        argv[3 + i] = names[i];
    }
    argv[3 + N] = NULL;
    expect(cli_test_runv(R, argv), 0);
    expect(cli_test_run(R, "group", "show", "lab", "--json", NULL), 0);
    cJSON *j = out_json();
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "things")), N);
    assert_int_equal(cJSON_GetObjectItem(j, "members")->valueint, N);
    cJSON_Delete(j);
    /* One unknown name among them: refused, nothing changed. */
    argv[1] = "remove";
    argv[3 + N / 2] = "nosuch";
    expect(cli_test_runv(R, argv), 1);
    assert_non_null(strstr(R->err, "unknown thing 'nosuch'"));
    argv[3 + N / 2] = names[N / 2];
    expect(cli_test_run(R, "group", "show", "lab", "--json", NULL), 0);
    j = out_json();
    assert_int_equal(cJSON_GetObjectItem(j, "members")->valueint, N);
    cJSON_Delete(j);
    expect(cli_test_runv(R, argv), 0);
    expect(cli_test_run(R, "group", "list", "--json", NULL), 0);
    j = out_json();
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "members")->valueint, 0);
    cJSON_Delete(j);
    expect(cli_test_run(R, "thing", "list", "--json", NULL), 0);
    j = out_json();
    assert_int_equal(cJSON_GetArraySize(j), N);
    cJSON_Delete(j);
}

static void test_version_and_help(void **state)
{
    (void)state;
    expect(cli_test_run(R, "--version", NULL), 0);
    assert_memory_equal(R->out, "otter ", 6);
    assert_non_null(strstr(R->out, "image header formats 1-2"));
    expect(cli_test_run(R, "help", NULL), 0);
    char *main_help = strdup(R->out);
    expect(cli_test_run(R, "--help", NULL), 0);
    assert_string_equal(R->out, main_help);
    free(main_help);
    expect(cli_test_run(R, "help", "job", "create", NULL), 0);
    char *a = strdup(R->out);
    expect(cli_test_run(R, "job", "create", "--help", NULL), 0);
    assert_string_equal(R->out, a);
    free(a);
    expect(cli_test_run(R, "help", "image", NULL), 0);
    assert_non_null(strstr(R->out, "create sign verify show"));
    expect(cli_test_run(R, "help", "nothing", NULL), 2);
}

static void test_watch_words(void **state)
{
    (void)state;
    expect(cli_test_run(R, "broker", "init", "--port", "18995", NULL), 0);
    expect(cli_test_run(R, "thing", "create", "A", NULL), 0);
    expect(cli_test_run(R, "thing", "create", "B", NULL), 0);
    make_job("1.1.0", "A,B", "w", 0x43);
    ota_store_t *s = NULL;
    assert_int_equal(ota_store_open(cli_test_data(), &s), OTA_STORE_OK);
    char reason[64];
    snprintf(reason, sizeof reason, "{\"reason\":\"rejected: 0x%08x\",\"detail\":\"bad sig\"}",
             (unsigned)ota_err_pal_code(OTA_ERR_SIGNATURE_CHECK_FAILED));
    ota_store_exec_update_t ok = {.status = OTA_STORE_EXEC_SUCCEEDED,
                                  .status_details = "{\"reason\":\"accepted  v1.1.0\"}"};
    ota_store_exec_update_t failed = {.status = OTA_STORE_EXEC_FAILED, .status_details = reason};
    assert_int_equal(ota_store_execution_update(s, "w", "A", &ok, ota_store_now_ms(), NULL),
                     OTA_STORE_OK);
    assert_int_equal(ota_store_execution_update(s, "w", "B", &failed, ota_store_now_ms(), NULL),
                     OTA_STORE_OK);
    ota_store_close(s);
    assert_int_equal(cli_test_run(R, "watch", "w", "--timeout", "10", NULL), 1); /* one failed */
    assert_non_null(strstr(R->out, "A: SUCCEEDED    reason \"accepted v1.1.0\"\n"));
#define SIG_WORDS                                                                                  \
    "(OTA_ERR_SIGNATURE_CHECK_FAILED: the code signature does not verify with the device's "       \
    "certificate)"
    assert_non_null(strstr(R->out, "B: FAILED       reason \"rejected: 0x000000e3 " SIG_WORDS
                                   "\" detail \"bad sig\"\n"));
    expect(cli_test_run(R, "job", "show", "w", "--json", NULL), 0);
    cJSON *j = out_json();
    const cJSON *ex = cJSON_GetObjectItem(j, "executions");
    int seen = 0, seen_words = 0;
    for (int i = 0; i < cJSON_GetArraySize(ex); i++) {
        const cJSON *r = cJSON_GetObjectItem(cJSON_GetArrayItem(ex, i), "reason");
        seen += cJSON_IsString(r) && strcmp(r->valuestring, "accepted v1.1.0") == 0;
        seen_words +=
            cJSON_IsString(r) && strcmp(r->valuestring, "rejected: 0x000000e3 " SIG_WORDS) == 0;
    }
    assert_int_equal(seen, 1);
    assert_int_equal(seen_words, 1);
    cJSON_Delete(j);
    /* The plain lines of job show and job history name it after the statusDetails. */
    expect(cli_test_run(R, "job", "show", "w", NULL), 0);
    assert_non_null(strstr(R->out, "\"detail\":\"bad sig\"}  " SIG_WORDS "\n"));
    assert_non_null(strstr(R->out, "{\"reason\":\"accepted  v1.1.0\"}\n"));
    expect(cli_test_run(R, "job", "history", "w", "B", NULL), 0);
    assert_non_null(strstr(R->out, "\"detail\":\"bad sig\"}  " SIG_WORDS "\n"));
#undef SIG_WORDS
}

/* A history longer than the store keeps: job history says how many changes were dropped. */
static void test_history_says_what_was_dropped(void **state)
{
    (void)state;
    expect(cli_test_run(R, "broker", "init", "--port", "18996", NULL), 0);
    expect(cli_test_run(R, "thing", "create", "A", NULL), 0);
    make_job("1.1.0", "A", "h", 0x44);
    ota_store_t *s = NULL;
    assert_int_equal(ota_store_open(cli_test_data(), &s), OTA_STORE_OK);
    const int updates = OTA_STORE_HISTORY_KEPT + 5;
    for (int i = 0; i < updates; i++) {
        ota_store_exec_update_t u = {.status = OTA_STORE_EXEC_IN_PROGRESS,
                                     .status_details = "{\"receive\":\"1/2\"}"};
        assert_int_equal(ota_store_execution_update(s, "h", "A", &u, ota_store_now_ms(), NULL),
                         OTA_STORE_OK);
    }
    ota_store_close(s);
    expect(cli_test_run(R, "job", "history", "h", "A", NULL), 0);
    char line[160];
    snprintf(line, sizeof line,
             "\n... 5 older change(s) dropped: the history keeps the creation and the most "
             "recent %d\n",
             OTA_STORE_HISTORY_KEPT);
    assert_non_null(strstr(R->out, line));
    expect(cli_test_run(R, "job", "history", "h", "A", "--json", NULL), 0);
    cJSON *j = out_json();
    const cJSON *h = cJSON_GetObjectItem(j, "history");
    assert_int_equal(cJSON_GetArraySize(h), OTA_STORE_HISTORY_KEPT + 1);
    assert_null(cJSON_GetObjectItem(cJSON_GetArrayItem(h, 0), "droppedBefore"));
    const cJSON *d = cJSON_GetObjectItem(cJSON_GetArrayItem(h, 1), "droppedBefore");
    assert_true(cJSON_IsNumber(d));
    assert_int_equal(d->valueint, 5);
    cJSON_Delete(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_json_lists_and_shows, cli_test_setup,
                                        cli_test_teardown),
        cmocka_unit_test_setup_teardown(test_json_everywhere, cli_test_setup, cli_test_teardown),
        cmocka_unit_test_setup_teardown(test_fleet_at_once, cli_test_setup, cli_test_teardown),
        cmocka_unit_test_setup_teardown(test_version_and_help, cli_test_setup, cli_test_teardown),
        cmocka_unit_test_setup_teardown(test_watch_words, cli_test_setup, cli_test_teardown),
        cmocka_unit_test_setup_teardown(test_history_says_what_was_dropped, cli_test_setup,
                                        cli_test_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
