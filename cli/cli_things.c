/* otter CLI: things (devices): create with broker credentials, list, show. */
#include <errno.h>
#include <limits.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli_broker.h"
#include "cli_cmds.h"
#include "cli_json.h"
#include "cli_text.h"
#include "cli_dynsec.h"
#include "cli_federation.h"
#include "cli_thing_identity.h"
#include "ota_store.h"

/** What `thing create` makes for one thing. */
struct new_thing {
    char password[33]; /* "" with certificates */
    char path[CLI_PATH_MAX];
    char cert[CLI_PATH_MAX];
    char key[CLI_PATH_MAX];
    int file_written;
    int cert_written;
};

/* The credentials file of a thing, as its device reads it. */
/* A thing's file; in a federation (fed: its n brokers) it connects first to
 * one picked by its name, so that things spread over the brokers, and lists
 * them all, from that one on, to fail over to. */
static char *thing_json(const char *name, const struct new_thing *nt, const cli_login_t *b,
                        const cli_federation_addr_t *fed, size_t n)
{
    cJSON *o = cJSON_CreateObject();
    uint32_t h = 2166136261u; /* FNV-1a of the name */
    for (const char *c = name; *c != '\0'; c++) {
        h = (h ^ (uint8_t)*c) * 16777619u;
    }
    size_t first = n > 1 ? h % n : 0;
    cJSON_AddStringToObject(o, "thing", name);
    cJSON_AddStringToObject(o, "host", n > 1 ? fed[first].host : b->host);
    cJSON_AddNumberToObject(o, "port", n > 1 ? fed[first].port : b->port);
    if (n > 1) {
        cJSON *list = cJSON_AddArrayToObject(o, "brokers");
        for (size_t i = 0; i < n; i++) {
            const cli_federation_addr_t *a = &fed[(first + i) % n];
            char item[300];
            snprintf(item, sizeof item, "%s:%u", a->host, a->port);
            cJSON_AddItemToArray(list, cJSON_CreateString(item));
        }
    }
    cJSON_AddStringToObject(o, "username", name);
    if (b->cafile[0] == '\0') {
        cJSON_AddStringToObject(o, "password", nt->password);
    }
    cJSON_AddStringToObject(o, "client_id", name);
    if (b->cafile[0] != '\0') {
        cJSON_AddStringToObject(o, "cafile", b->cafile);
        cJSON_AddStringToObject(o, "certfile", nt->cert);
        cJSON_AddStringToObject(o, "keyfile", nt->key);
    }
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    char *t = s ? cli_sprintf("%s\n", s) : NULL;
    cJSON_free(s);
    return t;
}

static const char create_help[] =
    "usage: otter thing create NAME... [--group G]\n"
    "\n"
    "Give devices an identity: for each NAME a broker login with a random\n"
    "password that may connect only with client id NAME and use only\n"
    "$aws/things/NAME/jobs/# and $aws/things/NAME/streams/# (receiving only\n"
    "the service's answers there, and sending anything but them), and\n"
    "DATA_DIR/things/NAME.json (mode 0600) with host, port, username, password\n"
    "and client id. A running broker takes the logins at once; a stopped one\n"
    "reads them when it starts. All names are created, or none.\n"
    "\n"
    "  NAME       1-128 characters of letters, digits, '-', '_', ':'; not\n"
    "             starting with '-' or 'otter-service' and not 'otter-admin'\n"
    "  --group G  also add the things to group G (jobs can target group:G)\n";

/* Checks one new thing name; prints the error line. */
static int check_name(const char *name)
{
    if (!ota_store_valid_thing_name(name) || !cli_valid_name(name) ||
        !ota_store_new_name_ok(name)) {
        return cli_fail(CLI_EXIT_USAGE,
                        "bad thing name '%s'; use 1-128 letters, digits, '-', '_' or ':', not "
                        "starting with '-'",
                        name);
    }
    if (strncmp(name, CLI_SERVICE_USER, strlen(CLI_SERVICE_USER)) == 0 ||
        strcmp(name, CLI_ADMIN_USER) == 0) {
        return cli_fail(CLI_EXIT_USAGE,
                        "'%s' is reserved for the service's and the CLI's logins; choose a name "
                        "not starting with '" CLI_SERVICE_USER "'",
                        name);
    }
    return CLI_EXIT_OK;
}

/* Undoes the thing files written so far. */
static void remove_thing_files(struct new_thing *nt, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (nt[i].file_written) {
            unlink(nt[i].path);
        }
        if (nt[i].cert_written) {
            unlink(nt[i].cert);
            unlink(nt[i].key);
        }
    }
}

/* Records the things (and their group) in the store; all or none. */
static int record_things(ota_store_t *store, const char *const *names, size_t n, const char *group)
{
    int src = OTA_STORE_OK;
    int64_t now = ota_store_now_ms();
    size_t done = 0;
    for (; done < n && src == OTA_STORE_OK; done++) {
        src = ota_store_thing_create(store, names[done], now);
        if (src == OTA_STORE_OK && group != NULL) {
            src = ota_store_group_add(store, group, names[done]);
            if (src != OTA_STORE_OK) {
                ota_store_thing_delete(store, names[done]);
            }
        }
        if (src != OTA_STORE_OK) {
            break;
        }
    }
    for (size_t i = 0; src != OTA_STORE_OK && i < done; i++) {
        ota_store_thing_delete(store, names[i]);
    }
    return src;
}

int cli_cmd_thing_create(const cli_ctx_t *ctx, int argc, char **argv)
{
    const char *group = NULL;
    size_t n = 0;
    int help;
    const cli_opt_t opts[] = {{"group", 1, &group}};
    const char **names = calloc((size_t)argc + 1, sizeof *names);
    if (names == NULL) {
        return cli_fail(CLI_EXIT_FAIL, "out of memory; try again");
    }
    int rc = cli_parse(argc, argv, opts, 1, names, (size_t)argc, &n, &help);
    if (rc == CLI_EXIT_OK && help) {
        fputs(create_help, stdout);
        free(names);
        return CLI_EXIT_OK;
    }
    if (rc == CLI_EXIT_OK && n == 0) {
        rc = cli_fail(CLI_EXIT_USAGE, "thing create needs a NAME; see 'otter thing create --help'");
    }
    for (size_t i = 0; i < n && rc == CLI_EXIT_OK; i++) {
        rc = check_name(names[i]);
        for (size_t k = 0; k < i && rc == CLI_EXIT_OK; k++) {
            if (strcmp(names[k], names[i]) == 0) {
                rc = cli_fail(CLI_EXIT_USAGE, "'%s' is given twice; give each name once", names[i]);
            }
        }
    }
    if (rc == CLI_EXIT_OK && group != NULL && !ota_store_valid_thing_name(group)) {
        rc = cli_fail(CLI_EXIT_USAGE,
                      "bad group name '%s'; use 1-128 letters, digits, '-', '_' or ':'", group);
    }
    cli_login_t broker;
    if (rc == CLI_EXIT_OK) {
        rc = cli_broker_login(ctx, "broker/service.credentials", &broker);
    }
    ota_store_t *store = NULL;
    if (rc == CLI_EXIT_OK) {
        rc = cli_store_open(ctx, &store);
    }
    int tls = rc == CLI_EXIT_OK && broker.cafile[0] != '\0';
    /* Absolute paths in the things' files: devices run from anywhere. */
    char abs[PATH_MAX];
    if (rc == CLI_EXIT_OK && realpath(ctx->data_dir, abs) == NULL) {
        rc = cli_fail(CLI_EXIT_FAIL, "cannot resolve '%s' (%s); check --data-dir", ctx->data_dir,
                      strerror(errno));
    }
    char broker_dir[CLI_PATH_MAX];
    if (rc == CLI_EXIT_OK && cli_data_path(ctx, broker_dir, sizeof broker_dir, "broker") != 0) {
        rc = cli_fail(CLI_EXIT_USAGE, "data folder path too long; use a shorter --data-dir");
    }
    struct new_thing *nt = rc == CLI_EXIT_OK ? calloc(n, sizeof *nt) : NULL;
    cli_dynsec_thing_t *ds = rc == CLI_EXIT_OK ? calloc(n, sizeof *ds) : NULL;
    if (rc == CLI_EXIT_OK && (nt == NULL || ds == NULL)) {
        rc = cli_fail(CLI_EXIT_FAIL, "out of memory; try again");
    }
    for (size_t i = 0; i < n && rc == CLI_EXIT_OK; i++) {
        ota_store_thing_t t;
        if (ota_store_thing_get(store, names[i], &t) == OTA_STORE_OK) {
            rc =
                cli_fail(CLI_EXIT_FAIL, "thing '%s' already exists; choose another name", names[i]);
        } else if (cli_data_path(ctx, nt[i].path, sizeof nt[i].path, "things/%s.json", names[i]) !=
                   0) {
            rc = cli_fail(CLI_EXIT_USAGE, "data folder path too long; use a shorter --data-dir");
        } else if (snprintf(nt[i].cert, sizeof nt[i].cert, "%s/things/%s.crt", abs, names[i]) >=
                       (int)sizeof nt[i].cert ||
                   snprintf(nt[i].key, sizeof nt[i].key, "%s/things/%s.key", abs, names[i]) >=
                       (int)sizeof nt[i].key) {
            rc = cli_fail(CLI_EXIT_USAGE, "data folder path too long; use a shorter --data-dir");
        } else if (cli_exists(nt[i].path) || cli_exists(nt[i].cert) || cli_exists(nt[i].key)) {
            rc = cli_fail(CLI_EXIT_FAIL,
                          "'%s' (or its .crt or .key) already exists; remove it or choose another "
                          "name",
                          nt[i].path);
        } else if (!tls && cli_broker_random_password(nt[i].password) != 0) {
            rc = cli_fail(CLI_EXIT_FAIL, "cannot make a password; try again");
        }
        if (ds != NULL) {
            ds[i].name = names[i];
            ds[i].password = tls ? NULL : nt[i].password;
        }
    }
    char dir[CLI_PATH_MAX];
    if (rc == CLI_EXIT_OK &&
        (cli_data_path(ctx, dir, sizeof dir, "things") != 0 || cli_mkdirs(dir) != 0)) {
        rc = cli_fail(CLI_EXIT_FAIL, "cannot create '%s/things' (%s); check permissions",
                      ctx->data_dir, strerror(errno));
    }
    for (size_t i = 0; i < n && rc == CLI_EXIT_OK && tls; i++) {
        if (cli_broker_issue_cert(broker_dir, names[i], nt[i].cert, nt[i].key) != 0) {
            rc = cli_fail(CLI_EXIT_FAIL, "cannot issue a certificate for '%s'; check '%s/ca.key'",
                          names[i], broker_dir);
        } else {
            nt[i].cert_written = 1;
        }
    }
    cli_federation_addr_t fed[CLI_FEDERATION_MAX];
    size_t nfed = rc == CLI_EXIT_OK ? cli_federation_addresses(ctx, fed, CLI_FEDERATION_MAX) : 1;
    if (nfed == 0) {
        rc = CLI_EXIT_FAIL;
    }
    for (size_t i = 0; i < n && rc == CLI_EXIT_OK; i++) {
        char *json = thing_json(names[i], &nt[i], &broker, fed, nfed);
        if (json == NULL || cli_write_new_file(nt[i].path, json, strlen(json), 0600) != 0) {
            rc = cli_fail(CLI_EXIT_FAIL, "cannot write '%s' (%s); check permissions", nt[i].path,
                          strerror(errno));
        } else {
            nt[i].file_written = 1;
        }
        free(json);
    }
    int live = 0;
    if (rc == CLI_EXIT_OK) {
        rc = cli_dynsec_add_things(ctx, ds, n, &live);
    }
    if (rc == CLI_EXIT_OK) {
        int src = record_things(store, names, n, group);
        if (src != OTA_STORE_OK) {
            rc = cli_fail(CLI_EXIT_FAIL, "cannot record the things (%s); try again",
                          ota_store_errmsg(store));
            (void)cli_dynsec_remove_things(ctx, ds, n, live);
        }
    }
    if (rc != CLI_EXIT_OK && nt != NULL) {
        remove_thing_files(nt, n);
    }
    for (size_t i = 0; i < n && rc == CLI_EXIT_OK; i++) {
        printf("thing:       %s\n", names[i]);
        printf("host:        %s\nport:        %u\n", broker.host, broker.port);
        if (tls) {
            printf("cafile:      %s\ncertificate: %s\nkey:         %s\n", broker.cafile, nt[i].cert,
                   nt[i].key);
        } else {
            printf("password:    %s\n", nt[i].password);
        }
        printf("username:    %s\nclient id:   %s\n", names[i], names[i]);
        printf("credentials: %s\n", nt[i].path);
        if (group) {
            printf("group:       %s\n", group);
        }
    }
    if (rc == CLI_EXIT_OK) {
        printf("broker:      %s\n",
               live ? "running; it took the logins" : "not running (reads them at start)");
    }
    if (nt != NULL) {
        memset(nt, 0, n * sizeof *nt);
    }
    free(nt);
    free(ds);
    free(names);
    if (store != NULL) {
        ota_store_close(store);
    }
    return rc;
}

/* Prints one row of `thing list`. */
static int list_row(void *ctx, const ota_store_thing_t *t, const ota_store_attr_t *attrs, size_t n)
{
    (void)ctx;
    cli_print_thing_row(t->name, attrs, n);
    return 0;
}

int cli_cmd_thing_list(const cli_ctx_t *ctx, int argc, char **argv)
{
    const char *pos[1];
    size_t n_pos;
    int help;
    int rc = cli_parse(argc, argv, NULL, 0, pos, 0, &n_pos, &help);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (help) {
        fputs("usage: otter thing list\n\nList every thing with its device type (as set, else as "
              "the device reports\nit), the firmware version it runs, its slot and image state, "
              "whether it is\nconnected now (STATE: online on a broker; offline; unknown when the "
              "service's\nview had a gap since it was last known, e.g. the service restarted "
              "or a\nbroker's bridge went down: see 'otter thing show') and when it was last "
              "seen\n(UTC); '-' when never seen or not reported.\n",
              stdout);
        return CLI_EXIT_OK;
    }
    ota_store_t *store = NULL;
    if ((rc = cli_store_open(ctx, &store)) != CLI_EXIT_OK) {
        return rc;
    }
    if (ctx->json) {
        rc = cli_json_thing_list(store);
        ota_store_close(store);
        return rc;
    }
    cli_print_thing_row(NULL, NULL, 0);
    if (ota_store_thing_list_attrs(store, NULL, list_row, NULL) != OTA_STORE_OK) {
        rc = cli_fail(CLI_EXIT_FAIL, "cannot list things (%s); check the data folder",
                      ota_store_errmsg(store));
    }
    ota_store_close(store);
    return rc;
}

/** State of `thing show` while it walks the jobs. */
struct show_ctx {
    ota_store_t *store;
    const char *thing;
    size_t n;
};

/* Prints the thing's execution of one job, if it has one. */
static int show_job(void *vctx, const ota_store_job_t *job)
{
    struct show_ctx *s = vctx;
    ota_store_execution_t e;
    if (ota_store_execution_get(s->store, job->job_id, s->thing, &e) != OTA_STORE_OK) {
        return 0;
    }
    char when[24], words[320], details[CLI_TEXT_JSON_CAP];
    cli_format_time(e.last_updated_at_ms, when);
    cli_details_reason_words(e.status_details, words, sizeof words);
    printf("  %-24s %-12s v%-3lld %s  %s%s\n", e.job_id, cli_exec_status_text(e.status, e.released),
           (long long)e.version_number, when,
           cli_safe_json(e.status_details, details, sizeof details), words);
    ota_store_execution_free(&e);
    s->n++;
    return 0;
}

int cli_cmd_thing_show(const cli_ctx_t *ctx, int argc, char **argv)
{
    const char *arg = NULL;
    ota_store_t *store = NULL;
    int rc = cli_one_arg_with_store(
        ctx, argc, argv,
        "usage: otter thing show NAME\n\nShow a thing, its credentials file, its attributes "
        "(deviceType,\nfirmwareVersion, ...; see 'otter thing set --help') and every job "
        "execution it\nhas (status, version number, last update, statusDetails).\n",
        "thing show needs a NAME; see 'otter thing show --help'", &arg, &store);
    if (rc != CLI_EXIT_OK) {
        return rc == CLI_DONE ? CLI_EXIT_OK : rc;
    }
    ota_store_thing_t t;
    if (ota_store_thing_get(store, arg, &t) != OTA_STORE_OK) {
        ota_store_close(store);
        return cli_fail(CLI_EXIT_FAIL, "unknown thing '%s'; see 'otter thing list'", arg);
    }
    if (ctx->json) {
        rc = cli_json_thing_show(store, &t);
        ota_store_close(store);
        return rc;
    }
    char when[24], path[CLI_PATH_MAX];
    cli_format_time(t.created_ms, when);
    printf("thing:       %s\ncreated:     %s UTC\n", t.name, when);
    char revoked[OTA_STORE_ATTR_VALUE_MAX + 1];
    if (ota_store_thing_attr_get(store, t.name, "revoked", revoked, sizeof revoked) ==
        OTA_STORE_OK) {
        printf("revoked:     its credentials are refused; 'otter thing delete %s' forgets it\n",
               t.name);
    } else if (cli_data_path(ctx, path, sizeof path, "things/%s.json", t.name) == 0 &&
               cli_exists(path)) {
        printf("credentials: %s\n", path);
    }
    if ((rc = cli_print_thing_presence(store, t.name)) != CLI_EXIT_OK ||
        (rc = cli_print_thing_groups(store, t.name)) != CLI_EXIT_OK ||
        (rc = cli_print_thing_attrs(store, t.name)) != CLI_EXIT_OK) {
        ota_store_close(store);
        return rc;
    }
    printf("executions:\n");
    struct show_ctx s = {store, t.name, 0};
    if (ota_store_job_list(store, show_job, &s) != OTA_STORE_OK) {
        rc = cli_fail(CLI_EXIT_FAIL, "cannot list jobs (%s); check the data folder",
                      ota_store_errmsg(store));
    } else if (s.n == 0) {
        printf("  (none)\n");
    }
    ota_store_close(store);
    return rc;
}
