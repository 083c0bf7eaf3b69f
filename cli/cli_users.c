/* otter CLI: web console accounts (user add, list, remove). */
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli_cmds.h"
#include "ota_web_users.h"

static const char add_help[] =
    "usage: otter user add NAME --role viewer|operator [--replace]\n"
    "\n"
    "Add a web console account (otter-web). The password is read from the first\n"
    "line of standard input (asked for without echo on a terminal); 10-256\n"
    "characters. It is kept as a salted PBKDF2-HMAC-SHA256 hash in DATA/web/users.\n"
    "A viewer sees the fleet and the jobs; an operator also creates and cancels\n"
    "jobs. --replace sets a new password and role for an existing account.\n";

/* Reads the password: one line of stdin, without echo on a terminal. */
static int read_password(char *out, size_t cap)
{
    int tty = isatty(STDIN_FILENO);
    struct termios old, quiet;
    if (tty) {
        fputs("password: ", stderr);
        if (tcgetattr(STDIN_FILENO, &old) == 0) {
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        } else {
            tty = 0;
        }
    }
    char *got = fgets(out, (int)cap, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputs("\n", stderr);
    }
    if (got == NULL) {
        return -1;
    }
    out[strcspn(out, "\r\n")] = '\0';
    return 0;
}

int cli_cmd_user_add(const cli_ctx_t *ctx, int argc, char **argv)
{
    const char *role_text = NULL, *replace = NULL;
    const char *pos[1];
    size_t n_pos;
    int help;
    const cli_opt_t opts[] = {{"role", 1, &role_text}, {"replace", 0, &replace}};
    int rc = cli_parse(argc, argv, opts, 2, pos, 1, &n_pos, &help);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (help) {
        fputs(add_help, stdout);
        return CLI_EXIT_OK;
    }
    if (n_pos != 1) {
        return cli_fail(CLI_EXIT_USAGE, "user add needs a NAME; see 'otter user add --help'");
    }
    ota_web_role_t role;
    if (ota_web_role_parse(role_text, &role) != 0) {
        return cli_fail(CLI_EXIT_USAGE, "user add needs --role viewer or --role operator");
    }
    if (!ota_web_user_valid_name(pos[0])) {
        return cli_fail(CLI_EXIT_USAGE,
                        "bad user name '%s'; use 1-64 letters, digits, '.', '-' "
                        "or '_'",
                        pos[0]);
    }
    if ((rc = cli_data_dir_check(ctx)) != CLI_EXIT_OK) {
        return rc;
    }
    char password[OTA_WEB_PASSWORD_MAX + 8];
    if (read_password(password, sizeof password) != 0) {
        return cli_fail(CLI_EXIT_USAGE, "no password on standard input; give one line");
    }
    char err[512];
    rc = ota_web_user_add(ctx->data_dir, pos[0], role, password, replace != NULL, err, sizeof err);
    memset(password, 0, sizeof password);
    if (rc != 0) {
        return cli_fail(CLI_EXIT_FAIL, "%s", err);
    }
    printf("user %s (%s) %s\n", pos[0], ota_web_role_name(role), replace ? "set" : "added");
    return CLI_EXIT_OK;
}

static int print_user(void *ctx, const char *name, ota_web_role_t role)
{
    (void)ctx;
    printf("%-32s %s\n", name, ota_web_role_name(role));
    return 0;
}

/* Adds an account to the --json array. */
static int add_user(void *ctx, const char *name, ota_web_role_t role)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL || !cJSON_AddItemToArray(ctx, o) || !cJSON_AddStringToObject(o, "user", name) ||
        !cJSON_AddStringToObject(o, "role", ota_web_role_name(role))) {
        return -1;
    }
    return 0;
}

/* `user list --json`: an array of {user, role}. */
static int json_user_list(const cli_ctx_t *ctx)
{
    cJSON *users = cJSON_CreateArray();
    char *text = NULL;
    if (users != NULL && ota_web_user_list(ctx->data_dir, add_user, users) == 0) {
        text = cJSON_PrintUnformatted(users);
    }
    cJSON_Delete(users);
    if (text == NULL) {
        return cli_fail(CLI_EXIT_FAIL, "cannot read %s/web/users; check the data folder",
                        ctx->data_dir);
    }
    printf("%s\n", text);
    cJSON_free(text);
    return CLI_EXIT_OK;
}

int cli_cmd_user_list(const cli_ctx_t *ctx, int argc, char **argv)
{
    const char *pos[1];
    size_t n_pos;
    int help;
    int rc = cli_parse(argc, argv, NULL, 0, pos, 0, &n_pos, &help);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (help) {
        fputs("usage: otter user list\n\nList the web console's accounts and their roles.\n",
              stdout);
        return CLI_EXIT_OK;
    }
    if ((rc = cli_data_dir_check(ctx)) != CLI_EXIT_OK) {
        return rc;
    }
    if (ctx->json) {
        return json_user_list(ctx);
    }
    printf("%-32s %s\n", "USER", "ROLE");
    if (ota_web_user_list(ctx->data_dir, print_user, NULL) != 0) {
        return cli_fail(CLI_EXIT_FAIL, "cannot read %s/web/users; check the data folder",
                        ctx->data_dir);
    }
    return CLI_EXIT_OK;
}

int cli_cmd_user_remove(const cli_ctx_t *ctx, int argc, char **argv)
{
    const char *pos[1];
    size_t n_pos;
    int help;
    int rc = cli_parse(argc, argv, NULL, 0, pos, 1, &n_pos, &help);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (help) {
        fputs("usage: otter user remove NAME\n\nRemove a web console account; its open sessions "
              "end at their next request.\n",
              stdout);
        return CLI_EXIT_OK;
    }
    if (n_pos != 1) {
        return cli_fail(CLI_EXIT_USAGE, "user remove needs a NAME; see 'otter user list'");
    }
    if ((rc = cli_data_dir_check(ctx)) != CLI_EXIT_OK) {
        return rc;
    }
    char err[512];
    if (ota_web_user_remove(ctx->data_dir, pos[0], err, sizeof err) != 0) {
        return cli_fail(CLI_EXIT_FAIL, "%s", err);
    }
    printf("user %s removed\n", pos[0]);
    return CLI_EXIT_OK;
}
