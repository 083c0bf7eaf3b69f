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
        memcpy(out[*n].host, item, strlen(item) + 1);
        out[*n].port = (unsigned)port;
        (*n)++;
        p = end ? end + 1 : p + len;
        if (end != NULL && *p == '\0') {
            return cli_fail(CLI_EXIT_USAGE, "bad --federate list '%s'; it ends with ','", list);
        }
    }
    return *n == 0 ? cli_fail(CLI_EXIT_USAGE, "--federate needs HOST:PORT,...") : CLI_EXIT_OK;
}

/*
 * The bridge of broker k (its folder dir): hub 1's to hub 2 (to: hub 2), or a
 * spoke's to the hubs (to: hub 1 then hub 2; round_robin false connects to hub
 * 1 whenever it is reachable and to hub 2 only while it is not, and moves back).
 * Each broker has at most one bridge and hub 2 none, so the bridges form a
 * tree at every moment: a message reaches every broker at most once.
 * try_private makes the other broker treat the bridge as one and not send back
 * what it published there. With TLS the bridge logs in with its certificate
 * (federation.crt, CN otter-service-federation-K) and checks the hubs' against
 * the federation's CA; else with the password of its own login.
 */
static char *bridge_of(unsigned k, const char *dir, const fed_addr_t *to, size_t nto,
                       const char *password, int tls)
{
    char addr[2 * 300] = "";
    for (size_t i = 0; i < nto; i++) {
        size_t len = strlen(addr);
        snprintf(addr + len, sizeof addr - len, "%s%s:%u", i ? " " : "", to[i].host, to[i].port);
    }
    char *login = tls ? cli_sprintf("bridge_cafile %s/ca.crt\n"
                                    "bridge_certfile %s/federation.crt\n"
                                    "bridge_keyfile %s/federation.key\n"
                                    "bridge_tls_version tlsv1.2\n"
                                    "bridge_insecure false\n",
                                    dir, dir, dir)
                      : cli_sprintf("remote_username " CLI_FEDERATION_USER "-%u\n"
                                    "remote_password %s\n",
                                    k, password);
    if (login == NULL) {
        return NULL;
    }
    char *text = cli_sprintf(
        "\n"
        "# Federation: the bridge of broker %u to %s (the first reachable of the\n"
        "# list; it moves back to the first when that one returns).\n"
        "connection otter-federation\n"
        "address %s\n"
        "round_robin false\n"
        "local_clientid " CLI_FEDERATION_USER "-local\n"
        "remote_clientid " CLI_FEDERATION_USER "-%u\n"
        "%s"
        "bridge_protocol_version mqttv311\n"
        "try_private true\n"
        "cleansession true\n"
        "notifications false\n"
        "keepalive_interval 10\n"
        "restart_timeout 1 3\n"
        "topic things/+/jobs/# both 1 $aws/ $aws/\n"
        "topic things/+/streams/# both 0 $aws/ $aws/\n"
        "topic things/+/shadow/# both 1 $aws/ $aws/\n"
        "# Presence: this broker's connection notices, to the hubs as\n"
        "# " CLI_PRESENCE_PREFIX "%u/log/N%s\n"
        "topic log/N out 0 $SYS/broker/ " CLI_PRESENCE_PREFIX "%u/\n"
        "%s",
        k, nto > 1 ? "the hubs" : "hub 2", addr, k, login, k,
        k == 1 ? "; hub 2's to here, and the others' both ways" : "", k,
        k == 1 ? "topic log/N in 0 " CLI_PRESENCE_PREFIX "2/ $SYS/broker/\n"
                 "topic +/log/N both 0 " CLI_PRESENCE_PREFIX " " CLI_PRESENCE_PREFIX "\n"
               : "");
    memset(login, 0, strlen(login));
    free(login);
    return text;
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
    /* Broker 1 (hub 1) and broker 3 .. N own a bridge; hub 2 has none. */
    for (size_t k = 1; k < sizeof pw.federation / sizeof pw.federation[0]; k++) {
        if (k == 2 || k > n + 1) {
            pw.federation[k][0] = '\0';
        } else if (s->tls) {
            snprintf(pw.federation[k], sizeof pw.federation[k], "-");
        }
    }
    char abs[PATH_MAX], hub_dir[PATH_MAX + 16];
    const char *top = realpath(ctx->data_dir, abs) != NULL ? abs : ctx->data_dir;
    snprintf(hub_dir, sizeof hub_dir, "%s/broker", top);
    fed_addr_t hubs[2];
    snprintf(hubs[0].host, sizeof hubs[0].host, "%s", s->host);
    hubs[0].port = s->port;
    hubs[1] = m[0];
    char service_brokers[2 * 300];
    snprintf(service_brokers, sizeof service_brokers, "%s:%u,%s:%u", hubs[0].host, hubs[0].port,
             hubs[1].host, hubs[1].port);
    for (size_t i = 0; rc == CLI_EXIT_OK && i <= n; i++) {
        /* i = 0: this data folder's broker, hub 1; i >= 1: broker i + 1. Another machine's
         * broker listens where hub 1 does (every interface, or its own address). Both hubs
         * get the bridge to themselves that shares requests among the instances. */
        unsigned k = (unsigned)i + 1u;
        cli_broker_setup_t o = *s;
        if (i > 0) {
            o.host = m[i - 1].host;
            o.port = m[i - 1].port;
            o.bind = (strcmp(s->bind, "0.0.0.0") == 0 || strcmp(s->bind, "::") == 0)
                         ? s->bind
                         : m[i - 1].host;
            o.shared_streams = k == 2 ? s->shared_streams : 0;
            o.ca_dir = hub_dir;
        }
        o.federate = NULL;
        o.fed_index = k;
        o.fed_bridge = k != 2;
        o.service_brokers = service_brokers;
        o.fed_count = (unsigned)n + 1u;
        const char *dir = i == 0 ? ctx->data_dir : dirs[i - 1];
        char final[PATH_MAX + 16];
        char dabs[PATH_MAX];
        snprintf(final, sizeof final, "%s/broker",
                 i == 0 ? top : (cli_mkdirs(dir) == 0 && realpath(dir, dabs) ? dabs : dir));
        char *bridge = k == 2 ? cli_sprintf("%s", "")
                              : bridge_of(k, final, k == 1 ? &hubs[1] : hubs, k == 1 ? 1 : 2,
                                          pw.federation[k], s->tls);
        rc = bridge == NULL ? cli_fail(CLI_EXIT_FAIL, "out of memory; try again")
                            : cli_broker_make(dir, &o, &pw, bridge);
        if (bridge != NULL) {
            memset(bridge, 0, strlen(bridge));
            free(bridge);
        }
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
    printf("federation:    %u brokers%s; broker 1 (hub 1) %s:%u: %s/broker/mosquitto.conf\n",
           (unsigned)n + 1u, s->tls ? ", bridges over mutual TLS" : "", s->host, s->port, top);
    for (size_t i = 0; i < n; i++) {
        printf("broker %u:      %s%s:%u: %s/federation/%u/broker/mosquitto.conf (copy "
               "%s/federation/%u "
               "to the same path on that machine)\n",
               (unsigned)i + 2u, i == 0 ? "(hub 2) " : "", m[i].host, m[i].port, top,
               (unsigned)i + 2u, top, (unsigned)i + 2u);
    }
    printf("service login: %s/broker/service.credentials (the service connects to hub 1, to "
           "hub 2 while hub 1 is down, and back to hub 1 when it returns)\n",
           top);
    if (s->shared_streams) {
        printf("shared streams: on both hubs; start more instances with 'otter-service --role "
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
