/* otter CLI: thing attributes (thing set, thing unset) and how they are shown. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_cmds.h"
#include "cli_text.h"
#include "ota_store.h"

#define ATTRS_ARGS_MAX 32

static const char set_help[] =
    "usage: otter thing set NAME KEY=VALUE [KEY=VALUE...]\n"
    "\n"
    "Set attributes of a thing. Two keys mean something to otter:\n"
    "  deviceType=TYPE          the board type (1-64 of [A-Za-z0-9_.-]); a job made\n"
    "                           with --device-types is sent only to things of those\n"
    "                           types, the others are SKIPPED\n"
    "  firmwareVersion=X.Y.Z    the version the thing runs; otter records it itself\n"
    "                           when the thing reports a job SUCCEEDED. A thing on a\n"
    "                           job's version is SKIPPED (never a failure)\n"
    "Other keys (1-64 of [A-Za-z0-9_]) are free (site=lab); values are 1-128\n"
    "printable characters without '\"' or '\\'. At most 32 attributes per thing.\n"
    "Queued executions the thing no longer needs become SKIPPED at once.\n"
    "Each key is given once. The service keeps some attributes itself, and they\n"
    "cannot be set or unset: connected, connectedTo, presenceUnknownOn and\n"
    "lastSeen (presence, from the brokers' notices and the thing's reports),\n"
    "disabled ('otter thing disable' and 'otter thing enable') and revoked\n"
    "('otter thing revoke').\n";

static const char unset_help[] = "usage: otter thing unset NAME KEY [KEY...]\n"
                                 "\n"
                                 "Remove attributes of a thing (see 'otter thing set --help').\n";

/* Splits and checks every KEY=VALUE (or KEY when unsetting) before anything is written. */
static int check_pairs(const char **pos, size_t n, int unset, char **keys, char **values)
{
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(pos[i], '=');
        if (unset != (eq == NULL)) {
            return cli_fail(CLI_EXIT_USAGE,
                            unset ? "give KEY, not '%s'; see 'otter thing unset --help'"
                                  : "give KEY=VALUE, not '%s'; see 'otter thing "
                                    "set --help'",
                            pos[i]);
        }
        size_t klen = eq ? (size_t)(eq - pos[i]) : strlen(pos[i]);
        keys[i] = cli_sprintf("%.*s", (int)klen, pos[i]);
        values[i] = eq ? cli_sprintf("%s", eq + 1) : NULL;
        if (keys[i] == NULL || (eq && values[i] == NULL)) {
            return cli_fail(CLI_EXIT_FAIL, "out of memory; try again");
        }
        if (!ota_store_valid_attr_key(keys[i])) {
            return cli_fail(CLI_EXIT_USAGE, "bad attribute key '%s'; use 1-64 of [A-Za-z0-9_]",
                            keys[i]);
        }
        const char *owner = ota_store_attr_owner(keys[i]);
        if (owner != NULL) {
            return cli_fail(CLI_EXIT_USAGE, "'%s' is %s; it cannot be set or unset", keys[i],
                            owner);
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(keys[k], keys[i]) == 0) {
                return cli_fail(CLI_EXIT_USAGE, "'%s' is given twice; give each key once", keys[i]);
            }
        }
        if (!eq) {
            continue;
        }
        if (strcmp(keys[i], OTA_STORE_ATTR_DEVICE_TYPE) == 0 &&
            !ota_store_valid_device_type(values[i])) {
            return cli_fail(CLI_EXIT_USAGE, "bad device type '%s'; use 1-64 of [A-Za-z0-9_.-]",
                            values[i]);
        }
        if (strcmp(keys[i], OTA_STORE_ATTR_FIRMWARE_VERSION) == 0 &&
            !ota_store_valid_version(values[i])) {
            return cli_fail(CLI_EXIT_USAGE,
                            "bad firmwareVersion '%s'; give X.Y.Z with X, Y in 0-255 and Z in "
                            "0-65535",
                            values[i]);
        }
        if (!ota_store_valid_attr_value(values[i])) {
            return cli_fail(CLI_EXIT_USAGE,
                            "bad value of '%s'; give 1-128 printable characters without '\"' "
                            "or '\\'",
                            keys[i]);
        }
    }
    return CLI_EXIT_OK;
}

/* thing set / thing unset. */
static int set_or_unset(const cli_ctx_t *ctx, int argc, char **argv, int unset)
{
    const char *pos[ATTRS_ARGS_MAX + 1];
    size_t n_pos = 0;
    int help = 0;
    int rc = cli_parse(argc, argv, NULL, 0, pos, ATTRS_ARGS_MAX + 1, &n_pos, &help);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (help) {
        fputs(unset ? unset_help : set_help, stdout);
        return CLI_EXIT_OK;
    }
    if (n_pos < 2) {
        return cli_fail(CLI_EXIT_USAGE, "%s needs a thing name and %s; see 'otter %s --help'",
                        argv[0], unset ? "KEY..." : "KEY=VALUE...", argv[0]);
    }
    char *keys[ATTRS_ARGS_MAX] = {0}, *values[ATTRS_ARGS_MAX] = {0};
    size_t n = n_pos - 1;
    rc = check_pairs(pos + 1, n, unset, keys, values);
    ota_store_t *store = NULL;
    if (rc == CLI_EXIT_OK && !ota_store_valid_thing_name(pos[0])) {
        rc = cli_fail(CLI_EXIT_USAGE, "bad thing name '%s'; see 'otter thing list'", pos[0]);
    }
    if (rc == CLI_EXIT_OK) {
        rc = cli_store_open(ctx, &store);
    }
    ota_store_thing_t thing;
    if (rc == CLI_EXIT_OK && ota_store_thing_get(store, pos[0], &thing) != OTA_STORE_OK) {
        rc = cli_fail(CLI_EXIT_FAIL, "unknown thing '%s'; see 'otter thing list'", pos[0]);
    }
    for (size_t i = 0; rc == CLI_EXIT_OK && i < n; i++) {
        int src = ota_store_thing_attr_set(store, pos[0], keys[i], values[i], ota_store_now_ms());
        if (src == OTA_STORE_NOT_FOUND && unset) {
            rc = cli_fail(CLI_EXIT_FAIL,
                          "thing '%s' has no attribute '%s'; see 'otter thing show %s'", pos[0],
                          keys[i], pos[0]);
        } else if (src != OTA_STORE_OK) {
            rc = cli_fail(CLI_EXIT_FAIL, "cannot set '%s' on '%s' (%s)", keys[i], pos[0],
                          ota_store_errmsg(store));
        }
    }
    for (size_t i = 0; i < n; i++) {
        free(keys[i]);
        free(values[i]);
    }
    ota_store_close(store);
    return rc;
}

int cli_cmd_thing_set(const cli_ctx_t *ctx, int argc, char **argv)
{
    return set_or_unset(ctx, argc, argv, 0);
}

int cli_cmd_thing_unset(const cli_ctx_t *ctx, int argc, char **argv)
{
    return set_or_unset(ctx, argc, argv, 1);
}

/* Prints one attribute line of `thing show`. */
static int print_attr(void *ctx, const char *key, const char *value, int64_t updated_ms)
{
    (void)ctx;
    char when[24], k[OTA_STORE_ATTR_VALUE_MAX + 1], v[OTA_STORE_ATTR_VALUE_MAX + 1];
    cli_format_time(updated_ms, when);
    printf("  %-24s %-40s %s\n", cli_safe_text(key, k, sizeof k), cli_safe_text(value, v, sizeof v),
           when);
    return 0;
}

/* What `thing show` says of presence, from the attributes the service writes. */
struct presence_view {
    char connected[OTA_STORE_ATTR_VALUE_MAX + 1], to[OTA_STORE_ATTR_VALUE_MAX + 1],
        unknown[OTA_STORE_ATTR_VALUE_MAX + 1], seen[OTA_STORE_ATTR_VALUE_MAX + 1];
    int64_t unknown_since;
};

static int read_presence(void *ctx, const char *key, const char *value, int64_t updated_ms)
{
    struct presence_view *p = ctx;
    char *out = strcmp(key, "connected") == 0           ? p->connected
                : strcmp(key, "connectedTo") == 0       ? p->to
                : strcmp(key, "presenceUnknownOn") == 0 ? p->unknown
                : strcmp(key, "lastSeen") == 0          ? p->seen
                                                        : NULL;
    if (out != NULL) {
        snprintf(out, OTA_STORE_ATTR_VALUE_MAX + 1, "%s", value);
    }
    if (out == p->unknown) {
        p->unknown_since = updated_ms;
    }
    return 0;
}

int cli_print_thing_presence(struct ota_store *store, const char *thing)
{
    struct presence_view p;
    memset(&p, 0, sizeof p);
    if (ota_store_thing_attr_list(store, thing, read_presence, &p) != OTA_STORE_OK) {
        return cli_fail(CLI_EXIT_FAIL, "cannot list attributes (%s); check the data folder",
                        ota_store_errmsg(store));
    }
    char seen[24], since[24];
    cli_format_time(p.seen[0] ? strtoll(p.seen, NULL, 10) : 0, seen);
    cli_format_time(p.unknown_since, since);
    const char *state = strcmp(p.connected, "true") == 0      ? "online"
                        : strcmp(p.connected, "unknown") == 0 ? "unknown"
                        : p.connected[0] != '\0'              ? "offline"
                                                              : "never seen";
    printf("presence:    %s", state);
    if (p.to[0] != '\0') {
        printf(", on broker %s", p.to);
    }
    if (p.unknown[0] != '\0') {
        printf(", unknown on broker %s since %s UTC (notices may have been lost then)", p.unknown,
               since);
    }
    if (p.seen[0] != '\0') {
        printf("; last seen %s UTC", seen);
    }
    printf("\n");
    return CLI_EXIT_OK;
}

int cli_print_thing_attrs(struct ota_store *store, const char *thing)
{
    printf("attributes:\n");
    if (ota_store_thing_attr_list(store, thing, print_attr, NULL) != OTA_STORE_OK) {
        return cli_fail(CLI_EXIT_FAIL, "cannot list attributes (%s); check the data folder",
                        ota_store_errmsg(store));
    }
    return CLI_EXIT_OK;
}

/* One attribute of a thing among attrs into out, made safe to print (cli_safe_text()), or "-"
 * when unset. */
static void row_attr(const ota_store_attr_t *attrs, size_t n, const char *key, char *out,
                     size_t cap)
{
    const char *v = ota_store_attr_find(attrs, n, key);
    if (v == NULL) {
        snprintf(out, cap, "-");
        return;
    }
    cli_safe_text(v, out, cap);
}

void cli_print_thing_row(const char *thing, const ota_store_attr_t *attrs, size_t n)
{
    if (thing == NULL) {
        printf("%-24s %-16s %-10s %-4s %-10s %-8s %s\n", "THING", "DEVICE TYPE", "FIRMWARE", "SLOT",
               "IMAGE", "STATE", "LAST SEEN (UTC)");
        return;
    }
    char type[OTA_STORE_ATTR_VALUE_MAX + 1], version[OTA_STORE_ATTR_VALUE_MAX + 1],
        slot[OTA_STORE_ATTR_VALUE_MAX + 1], image[OTA_STORE_ATTR_VALUE_MAX + 1],
        connected[OTA_STORE_ATTR_VALUE_MAX + 1], seen[OTA_STORE_ATTR_VALUE_MAX + 1], when[24];
    row_attr(attrs, n, OTA_STORE_ATTR_DEVICE_TYPE, type, sizeof type);
    if (strcmp(type, "-") == 0) {
        row_attr(attrs, n, "reportedDeviceType", type, sizeof type);
    }
    row_attr(attrs, n, OTA_STORE_ATTR_FIRMWARE_VERSION, version, sizeof version);
    row_attr(attrs, n, "slot", slot, sizeof slot);
    row_attr(attrs, n, "imageState", image, sizeof image);
    row_attr(attrs, n, "connected", connected, sizeof connected);
    char disabled[OTA_STORE_ATTR_VALUE_MAX + 1];
    row_attr(attrs, n, "disabled", disabled, sizeof disabled);
    if (strcmp(disabled, "true") == 0) {
        snprintf(connected, sizeof connected, "disabled");
    }
    row_attr(attrs, n, "revoked", disabled, sizeof disabled);
    if (strcmp(disabled, "true") == 0) {
        snprintf(connected, sizeof connected, "revoked");
    }
    row_attr(attrs, n, "lastSeen", seen, sizeof seen);
    cli_format_time(strcmp(seen, "-") == 0 ? 0 : strtoll(seen, NULL, 10), when);
    printf("%-24s %-16s %-10s %-4s %-10s %-8s %s\n", thing, type, version, slot, image,
           strcmp(connected, "true") == 0       ? "online"
           : strcmp(connected, "false") == 0    ? "offline"
           : strcmp(connected, "unknown") == 0  ? "unknown"
           : strcmp(connected, "disabled") == 0 ? "disabled"
           : strcmp(connected, "revoked") == 0  ? "revoked"
                                                : "-",
           when);
}
