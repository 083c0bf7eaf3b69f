/* otter CLI: thing groups (create, list, show, delete, add, remove). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_cmds.h"
#include "cli_json.h"
#include "ota_store.h"

static const char create_help[] =
    "usage: otter group create NAME [--query QUERY]\n"
    "\n"
    "Create a group of things. Without --query the group is static: add and remove\n"
    "members with 'otter group add|remove'. With --query it is dynamic: its members\n"
    "are the things whose attributes match, now and whenever attributes change.\n"
    "A thing may be in any number of groups. Jobs target groups with\n"
    "--targets group:NAME; with --continuous, things that join later get the job.\n"
    "NAME is 1-128 of [A-Za-z0-9:_-], not starting with '-'.\n"
    "\n"
    "  --query QUERY  TERM[,TERM...] (all must hold, up to 8), TERM = KEY OP VALUE,\n"
    "                 OP one of = != < <= > >=; the ordering operators compare\n"
    "                 versions X.Y.Z (firmwareVersion<1.2.0). A thing without the\n"
    "                 attribute matches only != terms. Presence (connected,\n"
    "                 connectedTo, presenceUnknownOn, lastSeen) is not always known\n"
    "                 and cannot be queried. Example:\n"
    "                 --query 'deviceType=nrf52840-dk,firmwareVersion<1.2.0,site=lab'\n";

int cli_cmd_group_create(const cli_ctx_t *ctx, int argc, char **argv)
{
    const char *query, *pos[1];
    const cli_opt_t opts[] = {{"query", 1, &query}};
    int rc = cli_parse_one(argc, argv, opts, 1, create_help,
                           "group create needs a NAME; see 'otter group create --help'", &pos[0]);
    if (rc != CLI_EXIT_OK) {
        return rc == CLI_DONE ? CLI_EXIT_OK : rc;
    }
    if (!ota_store_valid_thing_name(pos[0]) || !ota_store_new_name_ok(pos[0])) {
        return cli_fail(CLI_EXIT_USAGE, "group create needs a NAME of 1-128 [A-Za-z0-9:_-], not "
                                        "starting with '-'; see 'otter group create --help'");
    }
    if (query && !ota_store_valid_query(query)) {
        return cli_fail(CLI_EXIT_USAGE,
                        "bad --query '%s'; give KEY=VALUE or KEY<X.Y.Z terms separated by commas, "
                        "not on presence (connected, connectedTo, presenceUnknownOn, lastSeen) "
                        "(see 'otter group create --help')",
                        query);
    }
    ota_store_t *store = NULL;
    if ((rc = cli_store_open(ctx, &store)) != CLI_EXIT_OK) {
        return rc;
    }
    int src = ota_store_group_create(store, pos[0], query, ota_store_now_ms());
    if (src == OTA_STORE_EXISTS) {
        rc =
            cli_fail(CLI_EXIT_FAIL, "group '%s' exists; see 'otter group show %s'", pos[0], pos[0]);
    } else if (src != OTA_STORE_OK) {
        rc = cli_fail(CLI_EXIT_FAIL, "cannot create group '%s' (%s)", pos[0],
                      ota_store_errmsg(store));
    } else {
        printf("group %s created (%s)\n", pos[0], query ? "dynamic" : "static");
    }
    ota_store_close(store);
    return rc;
}

/* One row of `group list`. */
static int list_row(void *ctx, const ota_store_group_t *g)
{
    (void)ctx;
    printf("%-32s %-8s %7zu  %s\n", g->name, g->query[0] ? "dynamic" : "static", g->n_members,
           g->query[0] ? g->query : "-");
    return 0;
}

int cli_cmd_group_list(const cli_ctx_t *ctx, int argc, char **argv)
{
    const char *none;
    int rc = cli_parse_one(argc, argv, NULL, 0,
                           "usage: otter group list\n\nList every group: kind (static or "
                           "dynamic), members now, query.\n",
                           NULL, &none);
    if (rc != CLI_EXIT_OK) {
        return rc == CLI_DONE ? CLI_EXIT_OK : rc;
    }
    ota_store_t *store = NULL;
    if ((rc = cli_store_open(ctx, &store)) != CLI_EXIT_OK) {
        return rc;
    }
    if (ctx->json) {
        rc = cli_json_group_list(store);
        ota_store_close(store);
        return rc;
    }
    printf("%-32s %-8s %7s  %s\n", "GROUP", "KIND", "MEMBERS", "QUERY");
    if (ota_store_group_list(store, list_row, NULL) != OTA_STORE_OK) {
        rc = cli_fail(CLI_EXIT_FAIL, "cannot list groups (%s); check the data folder",
                      ota_store_errmsg(store));
    }
    ota_store_close(store);
    return rc;
}

/* One member line of `group show`. */
static int member_row(void *ctx, const ota_store_thing_t *t, const ota_store_attr_t *attrs,
                      size_t n)
{
    (void)ctx;
    const char *type = ota_store_attr_find(attrs, n, OTA_STORE_ATTR_DEVICE_TYPE);
    const char *version = ota_store_attr_find(attrs, n, OTA_STORE_ATTR_FIRMWARE_VERSION);
    printf("  %-32s %-16s %s\n", t->name, type != NULL ? type : "-",
           version != NULL ? version : "-");
    return 0;
}

int cli_cmd_group_show(const cli_ctx_t *ctx, int argc, char **argv)
{
    const char *arg = NULL;
    ota_store_t *store = NULL;
    int rc = cli_one_arg_with_store(
        ctx, argc, argv,
        "usage: otter group show NAME\n\nShow a group: kind, query, and its members now with "
        "their device type and\nfirmware version.\n",
        "group show needs a NAME; see 'otter group list'", &arg, &store);
    if (rc != CLI_EXIT_OK) {
        return rc == CLI_DONE ? CLI_EXIT_OK : rc;
    }
    ota_store_group_t g;
    if (ota_store_group_get(store, arg, &g) != OTA_STORE_OK) {
        ota_store_close(store);
        return cli_fail(CLI_EXIT_FAIL, "unknown group '%s'; see 'otter group list'", arg);
    }
    if (ctx->json) {
        rc = cli_json_group_show(store, &g);
        ota_store_close(store);
        return rc;
    }
    char when[24];
    cli_format_time(g.created_ms, when);
    printf("group:      %s\nkind:       %s\nquery:      %s\ncreated:    %s UTC\nmembers:    %zu\n",
           g.name, g.query[0] ? "dynamic" : "static", g.query[0] ? g.query : "-", when,
           g.n_members);
    if (ota_store_group_members_attrs(store, arg, member_row, NULL) != OTA_STORE_OK) {
        rc = cli_fail(CLI_EXIT_FAIL, "cannot list members (%s)", ota_store_errmsg(store));
    }
    ota_store_close(store);
    return rc;
}

int cli_cmd_group_delete(const cli_ctx_t *ctx, int argc, char **argv)
{
    const char *arg = NULL;
    ota_store_t *store = NULL;
    int rc =
        cli_one_arg_with_store(ctx, argc, argv,
                               "usage: otter group delete NAME\n\nDelete a group (the "
                               "things stay). Refused while an IN_PROGRESS job\ntargets "
                               "it.\n",
                               "group delete needs a NAME; see 'otter group list'", &arg, &store);
    if (rc != CLI_EXIT_OK) {
        return rc == CLI_DONE ? CLI_EXIT_OK : rc;
    }
    int src = ota_store_group_delete(store, arg);
    if (src == OTA_STORE_NOT_FOUND || src == OTA_STORE_INVALID) {
        rc = cli_fail(CLI_EXIT_FAIL, "unknown group '%s'; see 'otter group list'", arg);
    } else if (src == OTA_STORE_CONFLICT) {
        rc = cli_fail(CLI_EXIT_FAIL, "%s; cancel that job first", ota_store_errmsg(store));
    } else if (src != OTA_STORE_OK) {
        rc = cli_fail(CLI_EXIT_FAIL, "cannot delete group '%s' (%s)", arg, ota_store_errmsg(store));
    } else {
        printf("group %s deleted\n", arg);
    }
    ota_store_close(store);
    return rc;
}

/* group add / group remove of the names in pos: every name checked before the
 * first change. */
static int add_or_remove_names(const cli_ctx_t *ctx, int argc, char **argv, int add,
                               const char **pos)
{
    size_t n_pos;
    int help;
    int rc = cli_parse(argc, argv, NULL, 0, pos, (size_t)argc, &n_pos, &help);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (help) {
        printf("usage: otter group %s GROUP THING [THING...]\n\n%s things %s a static group%s.\n",
               add ? "add" : "remove", add ? "Add" : "Remove", add ? "to" : "from",
               add ? " (created if missing, and then said); continuous jobs\nthat target it give "
                     "them an "
                     "execution"
                   : "; their QUEUED executions of continuous jobs\nthat no longer target "
                     "them become REMOVED");
        return CLI_EXIT_OK;
    }
    if (n_pos < 2) {
        return cli_fail(CLI_EXIT_USAGE,
                        "group %s needs a GROUP and THING names; see 'otter group "
                        "%s --help'",
                        add ? "add" : "remove", add ? "add" : "remove");
    }
    ota_store_t *store = NULL;
    if ((rc = cli_store_open(ctx, &store)) != CLI_EXIT_OK) {
        return rc;
    }
    ota_store_group_t g;
    int have = ota_store_group_get(store, pos[0], &g) == OTA_STORE_OK;
    if (!have && !add) {
        rc = cli_fail(CLI_EXIT_FAIL, "unknown group '%s'; see 'otter group list'", pos[0]);
    } else if (!have && (!ota_store_valid_thing_name(pos[0]) || !ota_store_new_name_ok(pos[0]))) {
        rc = cli_fail(CLI_EXIT_FAIL,
                      "bad group name '%s'; a new group needs a NAME of 1-128 [A-Za-z0-9:_-], not "
                      "starting with '-'",
                      pos[0]);
    } else if (have && g.query[0]) {
        rc = cli_fail(CLI_EXIT_FAIL,
                      "group '%s' is dynamic (%s); change the things' attributes instead", pos[0],
                      g.query);
    }
    for (size_t i = 1; rc == CLI_EXIT_OK && i < n_pos; i++) {
        ota_store_thing_t t;
        if (ota_store_thing_get(store, pos[i], &t) != OTA_STORE_OK) {
            rc = cli_fail(CLI_EXIT_FAIL, "unknown thing '%s'; see 'otter thing list'", pos[i]);
        }
    }
    for (size_t i = 1; rc == CLI_EXIT_OK && i < n_pos; i++) {
        int src = add ? ota_store_group_add(store, pos[0], pos[i])
                      : ota_store_group_remove(store, pos[0], pos[i]);
        if (src == OTA_STORE_OK && !have) {
            /* said, so that a mistyped name is seen at once */
            printf("group %s created (static)\n", pos[0]);
            have = 1;
        }
        if (src == OTA_STORE_EXISTS || (src == OTA_STORE_NOT_FOUND && !add)) {
            printf("%s: %s\n", pos[i], ota_store_errmsg(store)); /* already as asked */
        } else if (src != OTA_STORE_OK) {
            rc = cli_fail(CLI_EXIT_FAIL, "cannot change group '%s' (%s)", pos[0],
                          ota_store_errmsg(store));
        }
    }
    ota_store_close(store);
    return rc;
}

/* group add / group remove: any number of things (a fleet's worth at once). */
static int add_or_remove(const cli_ctx_t *ctx, int argc, char **argv, int add)
{
    const char **pos = calloc((size_t)argc + 1, sizeof *pos);
    if (pos == NULL) {
        return cli_fail(CLI_EXIT_FAIL, "out of memory; try again");
    }
    int rc = add_or_remove_names(ctx, argc, argv, add, pos);
    free(pos);
    return rc;
}

int cli_cmd_group_add(const cli_ctx_t *ctx, int argc, char **argv)
{
    return add_or_remove(ctx, argc, argv, 1);
}

int cli_cmd_group_remove(const cli_ctx_t *ctx, int argc, char **argv)
{
    return add_or_remove(ctx, argc, argv, 0);
}

/* One group name of `thing show`. */
static int thing_group(void *ctx, const ota_store_group_t *g)
{
    (void)ctx;
    printf(" %s", g->name);
    return 0;
}

int cli_print_thing_groups(struct ota_store *store, const char *thing)
{
    printf("groups:     ");
    int src = ota_store_thing_groups(store, thing, thing_group, NULL);
    printf("\n");
    if (src != OTA_STORE_OK) {
        return cli_fail(CLI_EXIT_FAIL, "cannot list groups (%s)", ota_store_errmsg(store));
    }
    return CLI_EXIT_OK;
}
