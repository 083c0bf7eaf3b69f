/* otter CLI: things (devices): create with broker credentials, list, show. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli_broker.h"
#include "cli_cmds.h"
#include "ota_store.h"

/* The credentials file of a thing, as its device reads it. */
static char *thing_json(const char *name, const char *password, const cli_broker_info_t *b)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "thing", name);
    cJSON_AddStringToObject(o, "host", b->host);
    cJSON_AddNumberToObject(o, "port", b->port);
    cJSON_AddStringToObject(o, "username", name);
    cJSON_AddStringToObject(o, "password", password);
    cJSON_AddStringToObject(o, "client_id", name);
    if (b->tls_port) {
        cJSON_AddNumberToObject(o, "tls_port", b->tls_port);
        cJSON_AddStringToObject(o, "cafile", b->cafile);
    }
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    char *t = s ? cli_sprintf("%s\n", s) : NULL;
    cJSON_free(s);
    return t;
}

static const char create_help[] =
    "usage: otter thing create NAME [--group G]\n"
    "\n"
    "Give a device an identity: a random MQTT password for username NAME, its\n"
    "password-file entry (the ACL already limits NAME to $aws/things/NAME/jobs/#\n"
    "and $aws/things/NAME/streams/#), and DATA_DIR/things/NAME.json (mode 0600)\n"
    "with host, port, username and password. A running broker is told to reload.\n"
    "\n"
    "  NAME       1-128 characters of letters, digits, '-', '_', ':'\n"
    "  --group G  also add the thing to group G (jobs can target group:G)\n";

int cli_cmd_thing_create(const cli_ctx_t *ctx, int argc, char **argv)
{
    const char *group = NULL, *pos[1];
    size_t n_pos;
    int help;
    const cli_opt_t opts[] = {{"group", 1, &group}};
    int rc = cli_parse(argc, argv, opts, 1, pos, 1, &n_pos, &help);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (help) {
        fputs(create_help, stdout);
        return CLI_EXIT_OK;
    }
    if (n_pos != 1) {
        return cli_fail(CLI_EXIT_USAGE,
                        "thing create needs a NAME; see 'otter thing create --help'");
    }
    const char *name = pos[0];
    if (!ota_store_valid_thing_name(name) || !cli_valid_name(name)) {
        return cli_fail(CLI_EXIT_USAGE,
                        "bad thing name '%s'; use 1-128 letters, digits, '-', '_' or ':'", name);
    }
    if (strcmp(name, CLI_SERVICE_USER) == 0) {
        return cli_fail(CLI_EXIT_USAGE, "'%s' is the service's login; choose another name", name);
    }
    if (group != NULL && !ota_store_valid_thing_name(group)) {
        return cli_fail(CLI_EXIT_USAGE,
                        "bad group name '%s'; use 1-128 letters, digits, '-', '_' or ':'", group);
    }
    cli_broker_info_t broker;
    rc = cli_broker_info(ctx, &broker);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    ota_store_t *store = NULL;
    rc = cli_store_open(ctx, &store);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    ota_store_thing_t t;
    char dir[CLI_PATH_MAX], path[CLI_PATH_MAX];
    if (ota_store_thing_get(store, name, &t) == OTA_STORE_OK) {
        ota_store_close(store);
        return cli_fail(CLI_EXIT_FAIL, "thing '%s' already exists; choose another name", name);
    }
    if (cli_data_path(ctx, dir, sizeof dir, "things") != 0 ||
        cli_data_path(ctx, path, sizeof path, "things/%s.json", name) != 0) {
        ota_store_close(store);
        return cli_fail(CLI_EXIT_USAGE, "data folder path too long; use a shorter --data-dir");
    }
    if (cli_exists(path)) {
        ota_store_close(store);
        return cli_fail(CLI_EXIT_FAIL, "'%s' already exists; remove it or choose another name",
                        path);
    }
    char password[33];
    char *json = NULL;
    if (cli_broker_random_password(password) != 0 ||
        (json = thing_json(name, password, &broker)) == NULL) {
        ota_store_close(store);
        return cli_fail(CLI_EXIT_FAIL, "cannot make credentials; try again");
    }
    rc = cli_broker_add_user(ctx, name, password);
    if (rc == CLI_EXIT_OK &&
        (cli_mkdirs(dir) != 0 || cli_write_new_file(path, json, strlen(json), 0600) != 0)) {
        rc = cli_fail(CLI_EXIT_FAIL, "cannot write '%s' (%s); check permissions", path,
                      strerror(errno));
        cli_broker_remove_user(ctx, name);
    }
    if (rc == CLI_EXIT_OK) {
        int src = ota_store_thing_create(store, name, ota_store_now_ms());
        if (src == OTA_STORE_OK && group != NULL) {
            src = ota_store_group_add(store, group, name);
            if (src != OTA_STORE_OK) {
                ota_store_thing_delete(store, name);
            }
        }
        if (src != OTA_STORE_OK) {
            rc = cli_fail(CLI_EXIT_FAIL, "cannot record thing '%s' (%s); try again", name,
                          ota_store_errmsg(store));
            unlink(path);
            cli_broker_remove_user(ctx, name);
        }
    }
    ota_store_close(store);
    if (rc == CLI_EXIT_OK) {
        int reloaded = cli_broker_reload(ctx);
        printf("thing:       %s\n", name);
        printf("host:        %s\nport:        %u\n", broker.host, broker.port);
        if (broker.tls_port) {
            printf("tls port:    %u\ncafile:      %s\n", broker.tls_port, broker.cafile);
        }
        printf("username:    %s\npassword:    %s\n", name, password);
        printf("credentials: %s\n", path);
        if (group) {
            printf("group:       %s\n", group);
        }
        printf("broker:      %s\n", reloaded ? "reloaded" : "not running (reads it at start)");
    }
    memset(password, 0, sizeof password);
    free(json);
    return rc;
}

/* Prints one row of `thing list`. */
static int list_row(void *ctx, const ota_store_thing_t *t)
{
    char when[24], type[OTA_STORE_ATTR_VALUE_MAX + 1], version[OTA_STORE_ATTR_VALUE_MAX + 1];
    cli_format_time(t->created_ms, when);
    cli_thing_attr(ctx, t->name, OTA_STORE_ATTR_DEVICE_TYPE, type, sizeof type);
    cli_thing_attr(ctx, t->name, OTA_STORE_ATTR_FIRMWARE_VERSION, version, sizeof version);
    printf("%-32s %-16s %-10s %s\n", t->name, type, version, when);
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
        fputs("usage: otter thing list\n\nList every thing with its device type, the firmware "
              "version it runs\n(as last reported; '-' when unknown) and its creation time "
              "(UTC).\n",
              stdout);
        return CLI_EXIT_OK;
    }
    ota_store_t *store = NULL;
    if ((rc = cli_store_open(ctx, &store)) != CLI_EXIT_OK) {
        return rc;
    }
    printf("%-32s %-16s %-10s %s\n", "THING", "DEVICE TYPE", "FIRMWARE", "CREATED (UTC)");
    if (ota_store_thing_list(store, list_row, store) != OTA_STORE_OK) {
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
    char when[24];
    cli_format_time(e.last_updated_at_ms, when);
    printf("  %-24s %-12s v%-3lld %s  %s\n", e.job_id, ota_store_exec_status_name(e.status),
           (long long)e.version_number, when, e.status_details ? e.status_details : "{}");
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
    char when[24], path[CLI_PATH_MAX];
    cli_format_time(t.created_ms, when);
    printf("thing:       %s\ncreated:     %s UTC\n", t.name, when);
    if (cli_data_path(ctx, path, sizeof path, "things/%s.json", t.name) == 0 && cli_exists(path)) {
        printf("credentials: %s\n", path);
    }
    if ((rc = cli_print_thing_attrs(store, t.name)) != CLI_EXIT_OK) {
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
