/* otter CLI: a federation of Mosquitto brokers (see cli_federation.h). */
#include "cli_federation.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_dynsec.h"

/* One broker's address from the --federate list. */
typedef struct fed_addr {
    char host[254];
    unsigned port;
} fed_addr_t;

/* Parses "HOST:PORT,..." into out; prints the error line. */
static int parse_list(const char *list, fed_addr_t *out, size_t *n)
{
    *n = 0;
    const char *p = list;
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char item[300];
        if (len == 0 || len >= sizeof item) {
            return cli_fail(CLI_EXIT_USAGE,
                            "bad --federate list '%s'; give HOST:PORT,HOST:PORT,... with no "
                            "empty entries",
                            list);
        }
        if (*n == CLI_FEDERATION_MAX - 1) {
            return cli_fail(CLI_EXIT_USAGE,
                            "--federate lists more than " CLI_FEDERATION_MAX_S
                            " brokers; a federation has at most %d with this one",
                            CLI_FEDERATION_MAX);
        }
        memcpy(item, p, len);
        item[len] = '\0';
        char *colon = strrchr(item, ':');
        unsigned long port = 0;
        if (colon == NULL || colon == item) {
            return cli_fail(CLI_EXIT_USAGE, "bad --federate entry '%s'; give HOST:PORT", item);
        }
        *colon = '\0';
        if (!cli_broker_valid_address(item) || strchr(item, ':') != NULL ||
            strlen(item) >= sizeof out->host) {
            return cli_fail(CLI_EXIT_USAGE,
                            "bad --federate host '%s'; give a host name or an IPv4 address", item);
        }
        if (cli_parse_uint(colon + 1, 1, 65535, &port) != 0) {
            return cli_fail(CLI_EXIT_USAGE,
                            "bad --federate port '%s'; give a number from 1 to 65535", colon + 1);
        }
        snprintf(out[*n].host, sizeof out[*n].host, "%s", item);
        out[*n].port = (unsigned)port;
        (*n)++;
        p = end ? end + 1 : p + len;
        if (end != NULL && *p == '\0') {
            return cli_fail(CLI_EXIT_USAGE, "bad --federate list '%s'; it ends with ','", list);
        }
    }
    return *n == 0 ? cli_fail(CLI_EXIT_USAGE, "--federate needs HOST:PORT,...") : CLI_EXIT_OK;
}

/* The hub's bridge to one other broker. Each bridge carries the things'
 * jobs, streams and shadow topics both ways. try_private makes the other
 * broker treat the bridge as one and not send it back what it published
 * there; with the bridges in a star (only the hub has them), a message
 * crosses each bridge at most once. */
static char *bridge_to(unsigned k, const fed_addr_t *a, const char *password)
{
    return cli_sprintf("\n"
                       "# Federation: the bridge to broker %u (%s:%u).\n"
                       "connection otter-federation-%u\n"
                       "address %s:%u\n"
                       "local_clientid " CLI_FEDERATION_USER "-%u\n"
                       "remote_clientid " CLI_FEDERATION_USER "\n"
                       "remote_username " CLI_FEDERATION_USER "\n"
                       "remote_password %s\n"
                       "bridge_protocol_version mqttv311\n"
                       "try_private true\n"
                       "cleansession true\n"
                       "notifications false\n"
                       "restart_timeout 1 5\n"
                       "topic things/+/jobs/# both 1 $aws/ $aws/\n"
                       "topic things/+/streams/# both 0 $aws/ $aws/\n"
                       "topic things/+/shadow/# both 1 $aws/ $aws/\n",
                       k, a->host, a->port, k, a->host, a->port, k, password);
}

/* All bridges of the hub, as one configuration text. */
static char *hub_bridges(const fed_addr_t *m, size_t n, const char *password)
{
    char *all = cli_sprintf("%s", "");
    for (size_t i = 0; all != NULL && i < n; i++) {
        char *b = bridge_to((unsigned)i + 2u, &m[i], password);
        char *t = b ? cli_sprintf("%s%s", all, b) : NULL;
        if (b != NULL) {
            memset(b, 0, strlen(b));
        }
        free(b);
        memset(all, 0, strlen(all));
        free(all);
        all = t;
    }
    return all;
}

int cli_federation_init(const cli_ctx_t *ctx, const cli_broker_setup_t *s)
{
    fed_addr_t m[CLI_FEDERATION_MAX];
    size_t n = 0;
    int rc = parse_list(s->federate, m, &n);
    for (size_t i = 0; rc == CLI_EXIT_OK && i < n; i++) {
        int same_hub = strcmp(m[i].host, s->host) == 0 && m[i].port == s->port;
        for (size_t k = 0; k < i && !same_hub; k++) {
            same_hub = strcmp(m[i].host, m[k].host) == 0 && m[i].port == m[k].port;
        }
        if (same_hub) {
            rc = cli_fail(CLI_EXIT_USAGE,
                          "%s:%u is given twice (this broker is %s:%u); give each broker once",
                          m[i].host, m[i].port, s->host, s->port);
        }
    }
    char dirs[CLI_FEDERATION_MAX][CLI_PATH_MAX];
    for (size_t i = 0; rc == CLI_EXIT_OK && i < n; i++) {
        if (cli_data_path(ctx, dirs[i], sizeof dirs[i], "federation/%u", (unsigned)i + 2u) != 0) {
            rc = cli_fail(CLI_EXIT_USAGE, "data folder path too long; use a shorter --data-dir");
        } else if (cli_exists(dirs[i])) {
            rc = cli_fail(CLI_EXIT_FAIL,
                          "'%s' exists already; remove it (and the broker folder) to start over",
                          dirs[i]);
        }
    }
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    cli_broker_secrets_t pw;
    if (cli_broker_secrets_make(&pw, 1) != 0) {
        return cli_fail(CLI_EXIT_FAIL, "cannot make passwords (no randomness); try again");
    }
    char *bridges = hub_bridges(m, n, pw.federation);
    rc = bridges == NULL ? cli_fail(CLI_EXIT_FAIL, "out of memory; try again")
                         : cli_broker_make(ctx->data_dir, s, &pw, bridges);
    for (size_t i = 0; rc == CLI_EXIT_OK && i < n; i++) {
        /* Another machine's broker listens where the hub does (every interface, or its
         * own address); it serves streams through the hub's bridge, not its own. */
        cli_broker_setup_t o = *s;
        o.host = m[i].host;
        o.port = m[i].port;
        o.bind =
            (strcmp(s->bind, "0.0.0.0") == 0 || strcmp(s->bind, "::") == 0) ? s->bind : m[i].host;
        o.shared_streams = 0;
        o.federate = NULL;
        rc = cli_broker_make(dirs[i], &o, &pw, NULL);
    }
    if (bridges != NULL) {
        memset(bridges, 0, strlen(bridges));
        free(bridges);
    }
    memset(&pw, 0, sizeof pw);
    if (rc != CLI_EXIT_OK) {
        fprintf(stderr,
                "otter: the federation is written only in part; remove '%s/broker' and "
                "'%s/federation' and run broker init again\n",
                ctx->data_dir, ctx->data_dir);
        return rc;
    }
    /* Absolute paths: the folders are copied to the same path on the other machines. */
    char abs[PATH_MAX];
    const char *top = realpath(ctx->data_dir, abs) != NULL ? abs : ctx->data_dir;
    printf("federation:    %u brokers; broker 1 (the hub) %s:%u: %s/broker/mosquitto.conf\n",
           (unsigned)n + 1u, s->host, s->port, top);
    for (size_t i = 0; i < n; i++) {
        printf(
            "broker %u:      %s:%u: %s/federation/%u/broker/mosquitto.conf (copy %s/federation/%u "
            "to the same path on that machine)\n",
            (unsigned)i + 2u, m[i].host, m[i].port, top, (unsigned)i + 2u, top, (unsigned)i + 2u);
    }
    printf("service login: %s/broker/service.credentials (connect the service to the hub)\n", top);
    if (s->shared_streams) {
        printf("shared streams: on the hub; start more instances with 'otter-service --role "
               "streams --instance NAME'\n");
    }
    printf("start each with: mosquitto -c <its folder>/broker/mosquitto.conf; thing commands "
           "change every broker, which must be running\n");
    return CLI_EXIT_OK;
}

size_t cli_federation_members(const cli_ctx_t *ctx, cli_federation_member_t *out, size_t cap)
{
    size_t n = 0;
    for (unsigned k = 2; k <= CLI_FEDERATION_MAX && n < cap; k++) {
        char conf[CLI_PATH_MAX];
        if (cli_data_path(ctx, out[n].data_dir, sizeof out[n].data_dir, "federation/%u", k) != 0 ||
            cli_data_path(ctx, conf, sizeof conf, "federation/%u/broker/admin.credentials", k) !=
                0 ||
            !cli_exists(conf)) {
            break;
        }
        out[n].ctx = *ctx;
        out[n].ctx.data_dir = out[n].data_dir;
        n++;
    }
    return n;
}

size_t cli_federation_addresses(const cli_ctx_t *ctx, cli_federation_addr_t *out, size_t cap)
{
    cli_federation_member_t m[CLI_FEDERATION_MAX];
    size_t nm = cli_federation_members(ctx, m, CLI_FEDERATION_MAX);
    size_t n = 0;
    for (size_t i = 0; i <= nm && n < cap; i++) {
        cli_login_t login;
        if (cli_broker_login(i == 0 ? ctx : &m[i - 1].ctx, "broker/service.credentials", &login) !=
            CLI_EXIT_OK) {
            return 0;
        }
        snprintf(out[n].host, sizeof out[n].host, "%s", login.host);
        out[n].port = login.port;
        n++;
    }
    return n;
}
