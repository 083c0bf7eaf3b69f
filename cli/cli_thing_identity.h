/*
 * otter CLI: a thing's identity, for the commands that take it away (thing
 * revoke, disable, rotate, delete): the thing looked up with the broker's
 * login, where its credentials and certificate files are, and with --tls
 * brokers its certificate's revocation put in force on every broker of the
 * data folder (cli_crl.h).
 */
#ifndef CLI_THING_IDENTITY_H
#define CLI_THING_IDENTITY_H

#include "cli_broker.h"
#include "cli_common.h"

/**
 * Parse `otter thing VERB NAME` (help printed for --help, an error line for a
 * missing NAME) and check that the thing exists and is not revoked (it has no
 * broker login left to change); then read the service's
 * broker login (its cafile set: the brokers take certificates).
 * @param help   the command's help text.
 * @param verb   the command's word after `thing`, for the error line.
 * @param name   receives NAME.
 * @param broker receives the login.
 * @return CLI_EXIT_OK; CLI_DONE after printing help; CLI_EXIT_USAGE;
 *         CLI_EXIT_FAIL for an unknown or revoked thing or an unreadable login.
 */
int cli_thing_known(const cli_ctx_t *ctx, int argc, char **argv, const char *help, const char *verb,
                    const char **name, cli_login_t *broker);

/** The files of a thing in the data folder. */
typedef struct cli_thing_files {
    char path[CLI_PATH_MAX]; /**< its credentials file: DATA_DIR/things/NAME.json */
    char cert[CLI_PATH_MAX]; /**< its certificate: DATA_DIR/things/NAME.crt */
    char key[CLI_PATH_MAX];  /**< its key: DATA_DIR/things/NAME.key */
    char dir[CLI_PATH_MAX];  /**< hub 1's broker folder (its CA): DATA_DIR/broker */
} cli_thing_files_t;

/**
 * The paths of a thing's files (nothing is read or checked on disk).
 * @return CLI_EXIT_OK, or CLI_EXIT_USAGE (with the error line) when a path is
 *         too long for the data folder.
 */
int cli_thing_files(const cli_ctx_t *ctx, const char *name, cli_thing_files_t *f);

/**
 * Add a thing's certificate to hub 1's revocation list and put the list in
 * force on every broker (cli_crl_in_force).
 * @param again   the command that checks again (may be NULL), for brokers not
 *                known to refuse the certificate.
 * @param pending receives how many brokers are not known to refuse it yet.
 * @return CLI_EXIT_OK, or CLI_EXIT_FAIL (with the error line) when the
 *         certificate cannot be revoked or hub 1 still accepts it.
 */
int cli_thing_revoke_cert(const cli_ctx_t *ctx, const cli_thing_files_t *f, const char *again,
                          int *pending);

/**
 * The error of a command that did everything but could not check `pending`
 * brokers (more than 0): they are not known to refuse the revoked certificate
 * of thing `name`; cli_crl_in_force printed what to copy where.
 * @return CLI_EXIT_FAIL.
 */
int cli_thing_crl_pending(const char *name, int pending);

#endif /* CLI_THING_IDENTITY_H */
