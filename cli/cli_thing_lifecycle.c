/* otter CLI: a thing's life cycle: disable, enable, rotate its credentials, delete. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli_broker.h"
#include "cli_cmds.h"
#include "cli_dynsec.h"
#include "cli_thing_identity.h"
#include "ota_store.h"

/* Waits (up to 5 s) until the broker refuses (want_refused = 1) or accepts the
 * credentials file of a thing. */
static int wait_login(const cli_ctx_t *ctx, const char *name, int want_refused)
{
    char rel[CLI_PATH_MAX];
    snprintf(rel, sizeof rel, "things/%s.json", name);
    for (int i = 0; i < 100; i++) {
        if (cli_dynsec_login_refused(ctx, rel) == want_refused) {
            return 0;
        }
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return -1;
}

/* Records (or clears) the "disabled" attribute shown by thing list. */
static void mark_disabled(const cli_ctx_t *ctx, const char *name, int disabled)
{
    ota_store_t *store = NULL;
    if (cli_store_open(ctx, &store) == CLI_EXIT_OK) {
        (void)ota_store_thing_service_attr_set(store, name, "disabled", disabled ? "true" : NULL,
                                               ota_store_now_ms());
        ota_store_close(store);
    }
}

/* Issues a new key and certificate for a thing in place of the (revoked) old ones. */
static int issue_new(const char *name, const cli_thing_files_t *f)
{
    unlink(f->cert);
    unlink(f->key);
    if (cli_broker_issue_cert(f->dir, name, f->cert, f->key) != 0) {
        return cli_fail(CLI_EXIT_FAIL, "cannot issue a certificate for '%s'; check '%s/ca.key'",
                        name, f->dir);
    }
    return CLI_EXIT_OK;
}

static const char disable_help[] =
    "usage: otter thing disable NAME\n"
    "\n"
    "Cut a device off without forgetting it (a lost or suspect board): the broker\n"
    "refuses its logins and ends its live session at once; 'otter thing enable'\n"
    "lets it back. Its record, credentials and job history stay. With a --tls\n"
    "broker (certificate logins) its certificate is revoked, and 'otter thing\n"
    "enable' issues a new one to give to the device.\n";

static const char enable_help[] = "usage: otter thing enable NAME\n"
                                  "\n"
                                  "Accept a disabled device's logins again.\n";

/* thing disable / thing enable. */
static int disable_or_enable(const cli_ctx_t *ctx, int argc, char **argv, int disable)
{
    const char *name = NULL;
    cli_login_t broker;
    int rc = cli_thing_known(ctx, argc, argv, disable ? disable_help : enable_help,
                             disable ? "disable" : "enable", &name, &broker);
    if (rc != CLI_EXIT_OK) {
        return rc == CLI_DONE ? CLI_EXIT_OK : rc;
    }
    long pid = cli_broker_running(ctx);
    cli_thing_files_t f;
    int tls = broker.cafile[0] != '\0', pending = 0;
    char again[OTA_STORE_THING_NAME_MAX + 24];
    snprintf(again, sizeof again, "otter thing disable %s", name);
    if (tls && (rc = cli_thing_files(ctx, name, &f)) == CLI_EXIT_OK) {
        /* the plugin does not check certificate logins: the certificate goes */
        rc = disable ? cli_thing_revoke_cert(ctx, &f, again, &pending) : issue_new(name, &f);
    }
    if (rc == CLI_EXIT_OK) {
        rc = cli_dynsec_change_thing(ctx, name, disable ? CLI_DYNSEC_DISABLE : CLI_DYNSEC_ENABLE,
                                     NULL);
    }
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (pid > 0 && wait_login(ctx, name, disable) != 0) {
        return cli_fail(CLI_EXIT_FAIL, "the running broker still %s '%s'; check its log",
                        disable ? "accepts" : "refuses", name);
    }
    mark_disabled(ctx, name, disable);
    printf("thing:       %s %s\n", name, disable ? "disabled" : "enabled");
    if (tls) {
        printf("certificate: %s (%s)\n", f.cert,
               disable ? "revoked" : "new: give it and the key to the device");
    }
    printf("broker:      %s\n", pid <= 0  ? "not running (reads it at start)"
                                : disable ? "running; it refuses the login and ended the session"
                                          : "running; it accepts the login");
    return pending > 0 ? cli_thing_crl_pending(name, pending) : CLI_EXIT_OK;
}

int cli_cmd_thing_disable(const cli_ctx_t *ctx, int argc, char **argv)
{
    return disable_or_enable(ctx, argc, argv, 1);
}

int cli_cmd_thing_enable(const cli_ctx_t *ctx, int argc, char **argv)
{
    return disable_or_enable(ctx, argc, argv, 0);
}

static const char rotate_help[] =
    "usage: otter thing rotate NAME\n"
    "\n"
    "Give a device new credentials: a new password (or, with --tls brokers, a new\n"
    "key and certificate, the old certificate revoked), written to\n"
    "DATA_DIR/things/NAME.json (and .crt/.key). The old credentials are refused at\n"
    "once and sessions opened with them are ended; give the new file to the device.\n"
    "Download URLs handed out before are refused too (the device asks for its job\n"
    "again and gets a new one).\n";

/* Replaces the password in the thing's credentials file. */
static int rewrite_password(const char *path, const char *password)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (cli_read_file(path, &buf, &len) != 0) {
        return -1;
    }
    cJSON *o = cJSON_Parse((const char *)buf);
    free(buf);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return -1;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(o, "password");
    cJSON_AddStringToObject(o, "password", password);
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    char *t = s ? cli_sprintf("%s\n", s) : NULL;
    cJSON_free(s);
    int rc = t && cli_replace_file(path, t, strlen(t), 0600) == 0 ? 0 : -1;
    if (t) {
        memset(t, 0, strlen(t));
    }
    free(t);
    return rc;
}

int cli_cmd_thing_rotate(const cli_ctx_t *ctx, int argc, char **argv)
{
    const char *name = NULL;
    cli_login_t broker;
    int rc = cli_thing_known(ctx, argc, argv, rotate_help, "rotate", &name, &broker);
    if (rc != CLI_EXIT_OK) {
        return rc == CLI_DONE ? CLI_EXIT_OK : rc;
    }
    cli_thing_files_t f;
    if ((rc = cli_thing_files(ctx, name, &f)) != CLI_EXIT_OK) {
        return rc;
    }
    const char *path = f.path;
    long pid = cli_broker_running(ctx);
    char password[33] = "";
    int pending = 0;
    if (broker.cafile[0] != '\0') {
        /* The old certificate is refused before the new one exists. */
        if ((rc = cli_thing_revoke_cert(ctx, &f, NULL, &pending)) != CLI_EXIT_OK ||
            (rc = issue_new(name, &f)) != CLI_EXIT_OK) {
            return rc;
        }
        rc = cli_dynsec_change_thing(ctx, name, CLI_DYNSEC_PASSWORD, NULL);
    } else {
        if (cli_broker_random_password(password) != 0) {
            return cli_fail(CLI_EXIT_FAIL, "cannot make a password; try again");
        }
        rc = cli_dynsec_change_thing(ctx, name, CLI_DYNSEC_PASSWORD, password);
        if (rc == CLI_EXIT_OK && rewrite_password(path, password) != 0) {
            rc = cli_fail(CLI_EXIT_FAIL,
                          "the broker has the new password but '%s' could not be written (%s); "
                          "run 'otter thing rotate %s' again",
                          path, strerror(errno), name);
        }
    }
    if (rc == CLI_EXIT_OK && pid > 0 && wait_login(ctx, name, 0) != 0) {
        rc = cli_fail(CLI_EXIT_FAIL,
                      "the running broker refuses the new credentials of '%s'; "
                      "check its log",
                      name);
    }
    if (rc == CLI_EXIT_OK) {
        /* otter-http refuses the URLs handed out before now: they went to whoever held the
         * old credentials. */
        ota_store_t *store = NULL;
        char now[24];
        snprintf(now, sizeof now, "%lld", (long long)ota_store_now_ms());
        rc = cli_store_open(ctx, &store);
        if (rc == CLI_EXIT_OK &&
            ota_store_thing_service_attr_set(store, name, OTA_STORE_ATTR_CREDENTIALS_ROTATED, now,
                                             ota_store_now_ms()) != OTA_STORE_OK) {
            rc = cli_fail(CLI_EXIT_FAIL,
                          "new credentials are in place, but the store could not note the "
                          "rotation, so download URLs handed out before it still work; run "
                          "'otter thing rotate %s' again",
                          name);
        }
        ota_store_close(store);
    }
    if (rc == CLI_EXIT_OK) {
        printf("thing:       %s\ncredentials: %s\n", name, path);
        if (password[0]) {
            printf("password:    %s\n", password);
        } else {
            printf("certificate: %s (the old one is revoked)\nkey:         %s\n", f.cert, f.key);
        }
        printf("broker:      %s\n", pid > 0 ? "running; old credentials refused, sessions ended"
                                            : "not running (reads them at start)");
    }
    memset(password, 0, sizeof password);
    return rc == CLI_EXIT_OK && pending > 0 ? cli_thing_crl_pending(name, pending) : rc;
}

static const char delete_help[] =
    "usage: otter thing delete NAME [--force]\n"
    "\n"
    "Forget a device: its broker login is deleted (its live session ends at once),\n"
    "with --tls brokers its certificate is revoked, its credentials files, group\n"
    "memberships, attributes and finished executions are removed. A thing with an\n"
    "unfinished execution is refused unless --force, which cancels them first.\n";

/* The jobs in which a thing has an unfinished execution (canceled by delete --force
 * once the listing is over). */
#define UNFINISHED_MAX 256
struct unfinished {
    ota_store_t *store;
    const char *thing;
    size_t n;
    char jobs[UNFINISHED_MAX][OTA_STORE_JOB_ID_MAX + 1];
};

static int unfinished_one(void *vctx, const ota_store_job_t *job)
{
    struct unfinished *u = vctx;
    ota_store_execution_t e;
    if (ota_store_execution_get(u->store, job->job_id, u->thing, &e) == OTA_STORE_OK &&
        !ota_store_exec_status_is_terminal(e.status) && u->n < UNFINISHED_MAX) {
        snprintf(u->jobs[u->n++], sizeof u->jobs[0], "%s", job->job_id);
    }
    ota_store_execution_free(&e);
    return 0;
}

/* Lists the jobs in which a thing has an unfinished execution into u; without force,
 * refuses when there are some (nothing changed yet). */
static int unfinished_check(ota_store_t *store, const char *name, int force, struct unfinished *u)
{
    memset(u, 0, sizeof *u);
    u->store = store;
    u->thing = name;
    if (ota_store_job_list(store, unfinished_one, u) != OTA_STORE_OK) {
        return cli_fail(CLI_EXIT_FAIL, "cannot read the jobs (%s); check the data folder",
                        ota_store_errmsg(store));
    }
    if (u->n > 0 && !force) {
        return cli_fail(CLI_EXIT_FAIL,
                        "thing '%s' has unfinished job executions; cancel them or add --force",
                        name);
    }
    return CLI_EXIT_OK;
}

/* Ends the executions unfinished_check() found: CANCELED (details, when not NULL, become
 * their statusDetails). */
static int unfinished_end(ota_store_t *store, const struct unfinished *u, const char *details)
{
    for (size_t i = 0; i < u->n; i++) {
        int src = ota_store_execution_cancel_why(store, u->jobs[i], u->thing, 1, details,
                                                 ota_store_now_ms());
        if (src != OTA_STORE_OK && src != OTA_STORE_TERMINAL) {
            return cli_fail(CLI_EXIT_FAIL,
                            "cannot cancel the execution of job '%s' (%s); try again", u->jobs[i],
                            ota_store_errmsg(store));
        }
    }
    return CLI_EXIT_OK;
}

/* The start of thing delete and thing revoke: NAME [--force] parsed, the store opened
 * (*store to close, also on failure), the thing known, the service's broker login read, and
 * its unfinished executions listed into u: refused without --force, before anything changes. */
static int take_away_begin(const cli_ctx_t *ctx, int argc, char **argv, const char *help,
                           const char *verb, const char **name, ota_store_t **store,
                           cli_login_t *broker, struct unfinished *u)
{
    const char *force;
    const cli_opt_t opts[] = {{"force", 0, &force}};
    char missing[64];
    snprintf(missing, sizeof missing, "thing %s needs a NAME; see 'otter thing list'", verb);
    int rc = cli_parse_one(argc, argv, opts, 1, help, missing, name);
    if (rc != CLI_EXIT_OK || (rc = cli_store_open(ctx, store)) != CLI_EXIT_OK) {
        return rc;
    }
    ota_store_thing_t t;
    if (ota_store_thing_get(*store, *name, &t) != OTA_STORE_OK) {
        return cli_fail(CLI_EXIT_FAIL, "unknown thing '%s'; see 'otter thing list'", *name);
    }
    if ((rc = cli_broker_login(ctx, "broker/service.credentials", broker)) != CLI_EXIT_OK) {
        return rc;
    }
    return unfinished_check(*store, *name, force != NULL, u);
}

int cli_cmd_thing_delete(const cli_ctx_t *ctx, int argc, char **argv)
{
    const char *name;
    ota_store_t *store = NULL;
    cli_login_t broker;
    static struct unfinished u;
    int rc = take_away_begin(ctx, argc, argv, delete_help, "delete", &name, &store, &broker, &u);
    if (rc != CLI_EXIT_OK) {
        ota_store_close(store);
        return rc == CLI_DONE ? CLI_EXIT_OK : rc;
    }
    cli_thing_files_t f;
    long pid = cli_broker_running(ctx);
    int pending = 0;
    if (rc == CLI_EXIT_OK && broker.cafile[0] != '\0' &&
        (rc = cli_thing_files(ctx, name, &f)) == CLI_EXIT_OK) {
        rc = cli_thing_revoke_cert(ctx, &f, NULL, &pending);
    }
    cli_dynsec_thing_t ds = {name, NULL};
    if (rc == CLI_EXIT_OK) {
        rc = cli_dynsec_remove_things(ctx, &ds, 1, pid > 0);
    }
    if (rc == CLI_EXIT_OK) {
        rc = unfinished_end(store, &u, NULL);
    }
    int src = rc == CLI_EXIT_OK ? ota_store_thing_delete(store, name) : OTA_STORE_OK;
    if (rc == CLI_EXIT_OK && src != OTA_STORE_OK) {
        rc = cli_fail(CLI_EXIT_FAIL, "cannot delete '%s' from the store (%s); try again", name,
                      ota_store_errmsg(store));
    }
    ota_store_close(store);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    static const char *const ext[] = {"json", "crt", "key"};
    for (size_t i = 0; i < 3; i++) {
        char path[CLI_PATH_MAX];
        if (cli_data_path(ctx, path, sizeof path, "things/%s.%s", name, ext[i]) == 0) {
            unlink(path);
        }
    }
    printf("thing:       %s deleted\nbroker:      %s\n", name,
           pid > 0 ? "running; its login is deleted and its session ended"
                   : "not running; its login is deleted");
    return pending > 0 ? cli_thing_crl_pending(name, pending) : CLI_EXIT_OK;
}

static const char revoke_help[] =
    "usage: otter thing revoke NAME [--force]\n"
    "\n"
    "Take a device's identity away (a stolen or retired device): with --tls\n"
    "brokers its certificate is added to DATA_DIR/broker/crl.pem, which a\n"
    "running broker rereads; in a federation the list is also written into\n"
    "DATA_DIR/federation/K/broker/crl.pem, brokers running on this machine reread\n"
    "it, and every broker is checked to refuse the certificate at the TLS\n"
    "handshake (for a broker on another machine the command says what to copy\n"
    "there and fails until it refuses it). Its broker login is deleted on every\n"
    "broker, which ends a live session at once. Its record and job history stay,\n"
    "and it is shown as revoked; disable, enable and rotate refuse it ('otter\n"
    "thing delete' then 'otter thing create' give the name a new identity). A\n"
    "thing with an unfinished execution is refused unless --force, which cancels\n"
    "them (statusDetails {\"reason\":\"thing revoked\"}): a revoked device can\n"
    "never finish them.\n";

int cli_cmd_thing_revoke(const cli_ctx_t *ctx, int argc, char **argv)
{
    const char *name;
    ota_store_t *store = NULL;
    cli_login_t broker;
    static struct unfinished u;
    int rc = take_away_begin(ctx, argc, argv, revoke_help, "revoke", &name, &store, &broker, &u);
    if (rc != CLI_EXIT_OK) {
        ota_store_close(store);
        return rc == CLI_DONE ? CLI_EXIT_OK : rc;
    }
    long pid = cli_broker_running(ctx);
    cli_thing_files_t f;
    char again[OTA_STORE_THING_NAME_MAX + 24];
    int pending = 0;
    if (rc == CLI_EXIT_OK && broker.cafile[0] != '\0') {
        /* The CRL must be in force before the session ends, or the device is back at once. */
        snprintf(again, sizeof again, "otter thing revoke %s", name);
        if ((rc = cli_thing_files(ctx, name, &f)) == CLI_EXIT_OK) {
            rc = cli_thing_revoke_cert(ctx, &f, again, &pending);
        }
    }
    cli_dynsec_thing_t ds = {name, NULL};
    if (rc == CLI_EXIT_OK) {
        rc = cli_dynsec_remove_things(ctx, &ds, 1, pid > 0);
    }
    if (rc == CLI_EXIT_OK) {
        rc = unfinished_end(store, &u, "{\"reason\":\"thing revoked\"}");
    }
    if (rc == CLI_EXIT_OK && ota_store_thing_service_attr_set(store, name, "revoked", "true",
                                                              ota_store_now_ms()) != OTA_STORE_OK) {
        rc = cli_fail(CLI_EXIT_FAIL, "cannot mark '%s' revoked in the store (%s); try again", name,
                      ota_store_errmsg(store));
    }
    ota_store_close(store);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    printf("thing:       %s revoked\n", name);
    if (broker.cafile[0] != '\0') {
        printf("certificate: %s listed in %s/broker/crl.pem\n", f.cert, ctx->data_dir);
    }
    printf("broker:      %s\n", pid > 0 ? "running; its login is deleted and its session ended"
                                        : "not running; its login is deleted");
    if (u.n > 0) {
        printf("executions:  %zu canceled (thing revoked)\n", u.n);
    }
    return pending > 0 ? cli_thing_crl_pending(name, pending) : CLI_EXIT_OK;
}
