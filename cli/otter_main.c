/* otter: the command-line tool (keys, signing, broker, things, jobs, watch). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_cmds.h"
#include "otter/ota_boot_record.h"
#include "otter/ota_image_header.h"

static const char main_help[] =
    "usage: otter [--data-dir DIR] COMMAND [ARGS]\n"
    "       otter --version | help [COMMAND]\n"
    "\n"
    "Over-the-air firmware updates: keys, signing, broker, things and jobs.\n"
    "\n"
    "  keygen          make a code-signing key and certificate\n"
    "  sign            sign a file (sig-sha256-ecdsa or sig-sha256-rsa)\n"
    "  image create    wrap firmware in otter's image header (version, security\n"
    "                  counter, device type)\n"
    "  image sign      a detached signature over an image\n"
    "  image verify    check an image and its signature as a device does\n"
    "  image show      an image's header and SHA-256\n"
    "  broker init     write the Mosquitto configuration, logins and access rules\n"
    "  service credentials  an otter-service instance's own certificate (TLS brokers)\n"
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
    "  job history     every change of one device's execution of a job\n"
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
    "  --version       print otter's version and the formats it reads\n"
    "\n"
    "'otter COMMAND --help' (or 'otter help COMMAND') describes each command.\n"
    "List and show commands take --json: one JSON document on stdout.\n"
    "Exit status: 0 done, 1 failed, 2 bad command line.\n";

/** A command name (one or two words), its entry point, and whether it takes --json. */
struct cli_command {
    const char *group;
    const char *verb;
    cli_cmd_fn fn;
    int json;
};

static const struct cli_command commands[] = {
    {"keygen", NULL, cli_cmd_keygen, 0},
    {"sign", NULL, cli_cmd_sign, 0},
    {"image", "create", cli_cmd_image_create, 0},
    {"image", "sign", cli_cmd_image_sign, 0},
    {"image", "verify", cli_cmd_image_verify, 0},
    {"image", "show", cli_cmd_image_show, 0},
    {"broker", "init", cli_cmd_broker_init, 0},
    {"service", "credentials", cli_cmd_service_credentials, 0},
    {"thing", "create", cli_cmd_thing_create, 0},
    {"thing", "revoke", cli_cmd_thing_revoke, 0},
    {"thing", "list", cli_cmd_thing_list, 1},
    {"thing", "show", cli_cmd_thing_show, 1},
    {"thing", "disable", cli_cmd_thing_disable, 0},
    {"thing", "enable", cli_cmd_thing_enable, 0},
    {"thing", "rotate", cli_cmd_thing_rotate, 0},
    {"thing", "delete", cli_cmd_thing_delete, 0},
    {"thing", "set", cli_cmd_thing_set, 0},
    {"thing", "unset", cli_cmd_thing_unset, 0},
    {"group", "create", cli_cmd_group_create, 0},
    {"group", "list", cli_cmd_group_list, 1},
    {"group", "show", cli_cmd_group_show, 1},
    {"group", "add", cli_cmd_group_add, 0},
    {"group", "remove", cli_cmd_group_remove, 0},
    {"group", "delete", cli_cmd_group_delete, 0},
    {"job", "create", cli_cmd_job_create, 0},
    {"job", "list", cli_cmd_job_list, 1},
    {"job", "show", cli_cmd_job_show, 1},
    {"job", "history", cli_cmd_job_history, 1},
    {"job", "cancel", cli_cmd_job_cancel, 0},
    {"job", "delete", cli_cmd_job_delete, 0},
    {"watch", NULL, cli_cmd_watch, 0},
    {"stream", "describe", cli_cmd_stream_describe, 1},
    {"user", "add", cli_cmd_user_add, 0},
    {"user", "list", cli_cmd_user_list, 1},
    {"user", "remove", cli_cmd_user_remove, 0},
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

static const char json_help[] = "  --json          one JSON document on stdout instead of text\n";

/* Runs a command found in the table, with argv[0] replaced by its full name;
 * --json is taken off the arguments of the commands that have it. */
static int run(const cli_ctx_t *base, const struct cli_command *c, int argc, char **argv)
{
    cli_ctx_t json_ctx = *base;
    const cli_ctx_t *ctx = base;
    int help = 0;
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
    int n = 1, options = 1;
    for (int i = 1; i < argc; i++) {
        options = options && strcmp(argv[i], "--") != 0;
        help |= options && (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0);
        if (c->json && options && strcmp(argv[i], "--json") == 0) {
            json_ctx.json = 1;
            ctx = &json_ctx;
            continue;
        }
        args[n++] = argv[i];
    }
    args[n] = NULL;
    int rc = c->fn(ctx, n, args);
    free(args);
    if (rc == CLI_EXIT_OK && help && c->json) {
        fputs(json_help, stdout);
    }
    fflush(stdout);
    return rc;
}

/** Entry point: global options, then the command. */
int main(int argc, char **argv)
{
    cli_ctx_t ctx = {.data_dir = getenv("OTTER_DATA_DIR")};
    char *again[8]; /* "otter help X Y" becomes "otter X Y --help" */
    if (ctx.data_dir == NULL || ctx.data_dir[0] == '\0') {
        ctx.data_dir = "./otter-data";
    }
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(main_help, stdout);
            return CLI_EXIT_OK;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("otter %s (image header formats 1-%u, boot record formats 1-%u)\n",
                   OTTER_VERSION_TEXT, OTA_IMAGE_HEADER_FORMAT_2, OTA_BOOT_RECORD_FORMAT_2);
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
    if (strcmp(argv[i], "help") == 0) {
        /* "otter help job create" is "otter job create --help". */
        if (i + 1 >= argc) {
            fputs(main_help, stdout);
            return CLI_EXIT_OK;
        }
        int n = 0;
        again[n++] = argv[0];
        for (int k = i + 1; k < argc && n < 6; k++) {
            again[n++] = argv[k];
        }
        again[n++] = (char *)"--help";
        again[n] = NULL;
        argv = again;
        argc = n;
        i = 1;
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
