/* otter CLI: the revocation list in force on every broker (see cli_crl.h). */
#include "cli_crl.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "cli_broker.h"
#include "cli_federation.h"

/* How long a broker that got SIGHUP has to refuse the certificate. */
#define RELOAD_WAIT_MS 5000

/* What a broker's check found, for its line. */
static const char *probe_text(cli_crl_probe_t r)
{
    return r == CLI_CRL_REFUSED    ? "refuses the certificate at the TLS handshake"
           : r == CLI_CRL_ACCEPTED ? "STILL ACCEPTS the certificate"
                                   : "not reached, not checked";
}

int cli_crl_in_force(const cli_ctx_t *ctx, const char *cert_path, const char *key_path,
                     const char *again, int *pending)
{
    *pending = 0;
    cli_federation_member_t m[CLI_FEDERATION_MAX];
    size_t nm = cli_federation_members(ctx, m, CLI_FEDERATION_MAX);
    cli_login_t hub;
    char crl_path[CLI_PATH_MAX];
    uint8_t *crl = NULL;
    size_t crl_len = 0;
    int rc = cli_broker_login(ctx, "broker/service.credentials", &hub);
    if (rc == CLI_EXIT_OK &&
        (cli_data_path(ctx, crl_path, sizeof crl_path, "broker/crl.pem") != 0 ||
         cli_read_file(crl_path, &crl, &crl_len) != 0)) {
        rc = cli_fail(CLI_EXIT_FAIL, "cannot read '%s/broker/crl.pem'; check the data folder",
                      ctx->data_dir);
    }
    /* Every folder here gets the list first, then the running brokers reread it. A
     * folder that cannot be written leaves its broker pending, not the others. */
    int unwritten[CLI_FEDERATION_MAX] = {0};
    for (size_t i = 0; rc == CLI_EXIT_OK && i < nm; i++) {
        char p[CLI_PATH_MAX];
        if (cli_data_path(&m[i].ctx, p, sizeof p, "broker/crl.pem") != 0 ||
            cli_replace_file(p, crl, crl_len, 0644) != 0) {
            unwritten[i] = 1;
            (*pending)++;
            fprintf(stderr,
                    "otter: cannot write '%s/broker/crl.pem' (%s): broker %u still has the old "
                    "list; fix the folder and run the command again\n",
                    m[i].data_dir, strerror(errno), (unsigned)i + 2u);
        }
    }
    free(crl);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    long pid = cli_broker_running(ctx);
    cli_crl_probe_t r = CLI_CRL_REFUSED;
    if (pid > 0) {
        r = kill((pid_t)pid, SIGHUP) == 0
                ? cli_crl_probe_until_refused(hub.host, hub.port, hub.cafile, cert_path, key_path,
                                              RELOAD_WAIT_MS)
                : CLI_CRL_UNKNOWN;
    }
    if (r != CLI_CRL_REFUSED) {
        return cli_fail(CLI_EXIT_FAIL,
                        r == CLI_CRL_ACCEPTED
                            ? "the running broker still accepts the certificate '%s' after "
                              "rereading crl.pem; restart it and try again"
                            : "could not check that the running broker refuses the certificate "
                              "'%s' (no TLS handshake with it and its key); check its log",
                        cert_path);
    }
    if (nm == 0) {
        return CLI_EXIT_OK;
    }
    printf("crl:         broker 1 (hub 1) %s:%u: %s\n", hub.host, hub.port,
           pid > 0 ? "reread crl.pem; refuses the certificate at the TLS handshake"
                   : "not running here; reads crl.pem when it starts");
    for (size_t i = 0; i < nm; i++) {
        cli_login_t b;
        unsigned k = (unsigned)i + 2u;
        if (unwritten[i]) {
            continue; /* said above */
        }
        if (cli_broker_login(&m[i].ctx, "broker/service.credentials", &b) != CLI_EXIT_OK) {
            (*pending)++;
            fprintf(stderr,
                    "otter: broker %u was not checked (no address): its crl.pem is written in "
                    "'%s/broker'; copy it to that broker's machine and send it SIGHUP\n",
                    k, m[i].data_dir);
            continue;
        }
        long mpid = cli_broker_running(&m[i].ctx);
        int here = mpid > 0 && kill((pid_t)mpid, SIGHUP) == 0;
        cli_crl_probe_t got = cli_crl_probe_until_refused(b.host, b.port, b.cafile, cert_path,
                                                          key_path, here ? RELOAD_WAIT_MS : 0);
        printf("crl:         broker %u %s:%u: %s%s\n", k, b.host, b.port,
               here ? "runs here, reread crl.pem; " : "", probe_text(got));
        if (got != CLI_CRL_REFUSED) {
            /* The folders are at the same absolute path on every machine. */
            char abs[PATH_MAX];
            const char *dir = realpath(m[i].data_dir, abs) != NULL ? abs : m[i].data_dir;
            (*pending)++;
            fprintf(stderr,
                    "otter: broker %u (%s:%u) is not known to refuse the certificate: copy "
                    "%s/broker/crl.pem to the same path on its machine, then run 'kill -HUP "
                    "$(cat %s/broker/mosquitto.pid)' there (a stopped broker reads it when it "
                    "starts)%s%s%s\n",
                    k, b.host, b.port, dir, dir, again != NULL ? "; then check with '" : "",
                    again != NULL ? again : "", again != NULL ? "'" : "");
        }
    }
    return CLI_EXIT_OK;
}
