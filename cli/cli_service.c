/* otter CLI: `service credentials --instance NAME`, a service instance's own certificate. */
#include <stdio.h>
#include <string.h>

#include "cli_broker.h"
#include "cli_cmds.h"
#include "cli_dynsec.h"

static const char service_help[] =
    "usage: otter service credentials --instance NAME\n"
    "\n"
    "With a mutual-TLS broker ('otter broker init --tls') the broker names every\n"
    "client by its certificate, so each otter-service instance needs one of its\n"
    "own: this issues DATA_DIR/broker/service-NAME.crt and .key (CN\n"
    "otter-service-NAME, from the broker's CA) and adds that login, with the\n"
    "service's rights and its client id bound to it, to the broker (and to every\n"
    "broker of a federation, which must run). 'otter-service --instance NAME'\n"
    "then uses it. Running it again keeps the certificate and adds the login\n"
    "where it is missing. With password logins instances share the service's\n"
    "login and need nothing.\n"
    "\n"
    "  --instance NAME   1 to 32 of A-Z a-z 0-9 _ -, as 'otter-service --instance'\n";

int cli_cmd_service_credentials(const cli_ctx_t *ctx, int argc, char **argv)
{
    const char *inst = NULL, *pos[1];
    size_t n_pos;
    int help = 0;
    const cli_opt_t opts[] = {{"instance", 1, &inst}};
    int rc = cli_parse(argc, argv, opts, 1, pos, 0, &n_pos, &help);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (help) {
        fputs(service_help, stdout);
        return CLI_EXIT_OK;
    }
    size_t len = inst != NULL ? strlen(inst) : 0;
    if (len == 0 || len > 32 ||
        strspn(inst, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != len) {
        return cli_fail(CLI_EXIT_USAGE, "service credentials needs --instance NAME (1 to 32 of "
                                        "A-Z a-z 0-9 _ -); see 'otter service credentials --help'");
    }
    char dir[CLI_PATH_MAX], ca_key[CLI_PATH_MAX], crt[CLI_PATH_MAX], key[CLI_PATH_MAX];
    if (cli_data_path(ctx, dir, sizeof dir, "broker") != 0 ||
        cli_data_path(ctx, ca_key, sizeof ca_key, "broker/ca.key") != 0 ||
        cli_data_path(ctx, crt, sizeof crt, "broker/service-%s.crt", inst) != 0 ||
        cli_data_path(ctx, key, sizeof key, "broker/service-%s.key", inst) != 0) {
        return cli_fail(CLI_EXIT_USAGE, "data folder path too long; use a shorter --data-dir");
    }
    if (!cli_exists(ca_key)) {
        return cli_fail(CLI_EXIT_USAGE,
                        "no broker CA in '%s': the broker uses passwords (instances share the "
                        "service's login and need nothing), or was not set up here; see 'otter "
                        "broker init --tls'",
                        dir);
    }
    char cn[64];
    snprintf(cn, sizeof cn, CLI_SERVICE_USER "-%s", inst);
    int fresh = !cli_exists(crt);
    if (fresh && cli_broker_issue_cert(dir, cn, crt, key) != 0) {
        return cli_fail(CLI_EXIT_FAIL, "cannot issue the certificate for '%s'; check '%s'", cn,
                        dir);
    }
    rc = cli_dynsec_add_service_instance(ctx, cn);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    printf("certificate:   %s (%s)\nkey:           %s\nlogin:         %s on every broker\n"
           "start it with: otter-service --data-dir %s --instance %s\n",
           crt, fresh ? "new" : "kept", key, cn, ctx->data_dir, inst);
    return CLI_EXIT_OK;
}
