/* otter CLI: a thing's identity: the thing, its files, its certificate's revocation (see
 * cli_thing_identity.h). */
#include "cli_thing_identity.h"

#include <stdio.h>

#include "cli_crl.h"
#include "ota_store.h"

int cli_thing_known(const cli_ctx_t *ctx, int argc, char **argv, const char *help, const char *verb,
                    const char **name, cli_login_t *broker)
{
    ota_store_t *store = NULL;
    char missing[96];
    snprintf(missing, sizeof missing, "thing %s needs a NAME; see 'otter thing %s --help'", verb,
             verb);
    int rc = cli_one_arg_with_store(ctx, argc, argv, help, missing, name, &store);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    ota_store_thing_t t;
    char v[OTA_STORE_ATTR_VALUE_MAX + 1];
    int known = ota_store_thing_get(store, *name, &t) == OTA_STORE_OK;
    int revoked =
        known && ota_store_thing_attr_get(store, *name, "revoked", v, sizeof v) == OTA_STORE_OK;
    ota_store_close(store);
    if (!known) {
        return cli_fail(CLI_EXIT_FAIL, "unknown thing '%s'; see 'otter thing list'", *name);
    }
    if (revoked) {
        return cli_fail(CLI_EXIT_FAIL,
                        "thing '%s' is revoked: it has no broker login to %s; create it again "
                        "with 'otter thing delete %s' and 'otter thing create %s'",
                        *name, verb, *name, *name);
    }
    return cli_broker_login(ctx, "broker/service.credentials", broker);
}

int cli_thing_files(const cli_ctx_t *ctx, const char *name, cli_thing_files_t *f)
{
    if (cli_data_path(ctx, f->path, sizeof f->path, "things/%s.json", name) != 0 ||
        cli_data_path(ctx, f->cert, sizeof f->cert, "things/%s.crt", name) != 0 ||
        cli_data_path(ctx, f->key, sizeof f->key, "things/%s.key", name) != 0 ||
        cli_data_path(ctx, f->dir, sizeof f->dir, "broker") != 0) {
        return cli_fail(CLI_EXIT_USAGE, "data folder path too long; use a shorter --data-dir");
    }
    return CLI_EXIT_OK;
}

int cli_thing_revoke_cert(const cli_ctx_t *ctx, const cli_thing_files_t *f, const char *again,
                          int *pending)
{
    if (cli_broker_revoke_cert(ctx, f->cert) != 0) {
        return cli_fail(CLI_EXIT_FAIL, "cannot revoke the certificate '%s'; check '%s/ca.key'",
                        f->cert, f->dir);
    }
    return cli_crl_in_force(ctx, f->cert, f->key, again, pending);
}

int cli_thing_crl_pending(const char *name, int pending)
{
    return cli_fail(CLI_EXIT_FAIL,
                    "%d broker(s) of the federation are not known to refuse the revoked "
                    "certificate of '%s' at the TLS handshake: copy their crl.pem as said above",
                    pending, name);
}
