/* otter: the command-line tool (keys, signing, broker, things, jobs, watch). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_cmds.h"

static const char main_help[] =
    "usage: otter [--data-dir DIR] COMMAND [ARGS]\n"
    "\n"
    "Over-the-air firmware updates: keys, signing, broker, things and jobs.\n"
    "\n"
    "  keygen          make a code-signing key and certificate\n"
    "  sign            sign a file (sig-sha256-ecdsa or sig-sha256-rsa)\n"
    "  broker init     write the Mosquitto configuration, logins and access rules\n"
    "  thing create    give devices an identity on the broker\n"
    "  thing revoke    take a device's identity away (certificate, login, session)\n"
    "  thing disable   cut a device off (login refused, session ended); enable undoes it\n"
    "  thing enable    accept a disabled device again\n"
    "  thing rotate    new credentials for a device, the old ones refused\n"
    "  thing delete    forget a device (login, certificate, files, record)\n"
    "  thing list      list things\n"
    "  thing show      a thing, its attributes and its job executions\n"
    "  thing set       set attributes (deviceType, firmwareVersion, your own)\n"
    "  thing unset     remove attributes\n"
    "  group create    a static group, or a dynamic one (--query on attributes)\n"
    "  group list      list groups\n"
    "  group show      a group and its members\n"
    "  group add       add things to a static group\n"
    "  group remove    remove things from a static group\n"
    "  group delete    delete a group\n"
    "  job create      sign and publish a firmware update job\n"
    "  job list        list jobs\n"
    "  job show        a job and the status of every device\n"
    "  job cancel      cancel a job, or one thing's execution\n"
    "  job delete      delete a finished job and its firmware\n"
    "  watch           follow a job's progress live\n"
    "  stream describe a stream's files and sizes\n"
    "  user add        a web console account (viewer or operator)\n"
    "  user list       list web console accounts\n"
    "  user remove     remove a web console account\n"
    "\n"
    "  --data-dir DIR  where otter keeps its state (default: $OTTER_DATA_DIR,\n"
    "                  else ./otter-data)\n"
    "\n"
    "'otter COMMAND --help' describes each command.\n";

/** A command name (one or two words) and its entry point. */
struct cli_command {
    const char *group;
    const char *verb;
    cli_cmd_fn fn;
};

static const struct cli_command commands[] = {
    {"keygen", NULL, cli_cmd_keygen},
    {"sign", NULL, cli_cmd_sign},
    {"broker", "init", cli_cmd_broker_init},
    {"thing", "create", cli_cmd_thing_create},
    {"thing", "revoke", cli_cmd_thing_revoke},
    {"thing", "list", cli_cmd_thing_list},
    {"thing", "show", cli_cmd_thing_show},
    {"thing", "disable", cli_cmd_thing_disable},
    {"thing", "enable", cli_cmd_thing_enable},
    {"thing", "rotate", cli_cmd_thing_rotate},
    {"thing", "delete", cli_cmd_thing_delete},
    {"thing", "set", cli_cmd_thing_set},
    {"thing", "unset", cli_cmd_thing_unset},
    {"group", "create", cli_cmd_group_create},
    {"group", "list", cli_cmd_group_list},
    {"group", "show", cli_cmd_group_show},
    {"group", "add", cli_cmd_group_add},
    {"group", "remove", cli_cmd_group_remove},
    {"group", "delete", cli_cmd_group_delete},
    {"job", "create", cli_cmd_job_create},
    {"job", "list", cli_cmd_job_list},
    {"job", "show", cli_cmd_job_show},
    {"job", "cancel", cli_cmd_job_cancel},
    {"job", "delete", cli_cmd_job_delete},
    {"watch", NULL, cli_cmd_watch},
    {"stream", "describe", cli_cmd_stream_describe},
    {"user", "add", cli_cmd_user_add},
    {"user", "list", cli_cmd_user_list},
    {"user", "remove", cli_cmd_user_remove},
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

/* Prints the verbs of a group, for "otter thing --help". */
static void group_help(const char *group)
{
    printf("usage: otter %s VERB [ARGS]\n\nverbs:", group);
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(commands[i].group, group) == 0) {
            printf(" %s", commands[i].verb);
        }
    }
    printf("\n\n'otter %s VERB --help' describes each one.\n", group);
}

/* Runs a command found in the table, with argv[0] replaced by its full name. */
static int run(const cli_ctx_t *ctx, const struct cli_command *c, int argc, char **argv)
{
    char name[64];
    if (c->verb) {
        snprintf(name, sizeof name, "%s %s", c->group, c->verb);
    } else {
        snprintf(name, sizeof name, "%s", c->group);
    }
    char **args = malloc(sizeof(char *) * ((size_t)argc + 1));
    if (args == NULL) {
        return cli_fail(CLI_EXIT_FAIL, "out of memory; try again");
    }
    args[0] = name;
    for (int i = 1; i < argc; i++) {
        args[i] = argv[i];
    }
    args[argc] = NULL;
    int rc = c->fn(ctx, argc, args);
    free(args);
    fflush(stdout);
    return rc;
}

/** Entry point: global options, then the command. */
int main(int argc, char **argv)
{
    cli_ctx_t ctx = {.data_dir = getenv("OTTER_DATA_DIR")};
    if (ctx.data_dir == NULL || ctx.data_dir[0] == '\0') {
        ctx.data_dir = "./otter-data";
    }
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(main_help, stdout);
            return CLI_EXIT_OK;
        }
        if (strcmp(argv[i], "--data-dir") == 0) {
            if (i + 1 >= argc || argv[i + 1][0] == '\0') {
                return cli_fail(CLI_EXIT_USAGE, "option '--data-dir' needs a value; give a folder");
            }
            ctx.data_dir = argv[++i];
        } else if (strncmp(argv[i], "--data-dir=", 11) == 0 && argv[i][11] != '\0') {
            ctx.data_dir = argv[i] + 11;
        } else {
            return cli_fail(CLI_EXIT_USAGE, "unknown option '%s'; see 'otter --help'", argv[i]);
        }
    }
    if (i >= argc) {
        return cli_fail(CLI_EXIT_USAGE, "no command given; see 'otter --help'");
    }
    const char *group = argv[i];
    int group_known = 0;
    for (size_t k = 0; k < N_COMMANDS; k++) {
        const struct cli_command *c = &commands[k];
        if (strcmp(c->group, group) != 0) {
            continue;
        }
        group_known = 1;
        if (c->verb == NULL) {
            return run(&ctx, c, argc - i, argv + i);
        }
        if (i + 1 < argc && strcmp(argv[i + 1], c->verb) == 0) {
            return run(&ctx, c, argc - i - 1, argv + i + 1);
        }
    }
    if (!group_known) {
        return cli_fail(CLI_EXIT_USAGE, "unknown command '%s'; see 'otter --help'", group);
    }
    if (i + 1 < argc && (strcmp(argv[i + 1], "--help") == 0 || strcmp(argv[i + 1], "-h") == 0)) {
        group_help(group);
        return CLI_EXIT_OK;
    }
    if (i + 1 >= argc) {
        return cli_fail(CLI_EXIT_USAGE, "'%s' needs a verb; see 'otter %s --help'", group, group);
    }
    return cli_fail(CLI_EXIT_USAGE, "unknown command '%s %s'; see 'otter %s --help'", group,
                    argv[i + 1], group);
}
