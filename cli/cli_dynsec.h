/*
 * otter CLI: logins and access rules of the broker, kept by Mosquitto's
 * dynamic-security plugin in <data_dir>/broker/dynsec.json.
 *
 * Every login is a dynsec client:
 *   otter-admin    the CLI itself; client id bound to "otter-admin"; may only
 *                  use $CONTROL/dynamic-security (to add things to a running
 *                  broker).
 *   otter-service  every service instance; any client id starting with
 *                  "otter-service" (no thing may have such a name); reads and
 *                  writes $aws/things/#, reads otter/$aws/things/# (the
 *                  bridged stream requests) also through $share/+/....
 *   otter-service-bridge  with --shared-streams only: the broker's bridge to
 *                  itself; client id bound to its name; may only read the
 *                  things' stream requests ($aws/things/+/streams/+/get/+
 *                  and .../describe/+).
 *   <thing>        one per device; its client id is bound to its name (the
 *                  broker refuses a CONNECT with any other id) and its own
 *                  role "thing:<name>" allows sending on and subscribing to
 *                  only $aws/things/<name>/jobs/#, .../streams/# and
 *                  .../shadow/# (Mosquitto 2.0.11's dynsec has no %u or %c
 *                  patterns, so each thing has a role); the role
 *                  CLI_THINGS_ROLE, which every thing shares and which is
 *                  checked first, denies sending on any thing's answer topics
 *                  and allows receiving those only.
 *
 *   otter-service-federation-K  in a federation only: the bridge of broker K
 *                  (hub 1's to hub 2, a spoke's to the hubs); client id
 *                  bound to its name; relays the things' jobs, streams and
 *                  shadow topics both ways, nothing else.
 *
 * In a federation (cli_federation.h) every change is made on every broker:
 * this data folder's as below, the others always through their running
 * broker.
 *
 * While the broker runs it owns the file (it rewrites it after every change
 * and does not reread it), so a thing is then added through its
 * $CONTROL/dynamic-security/v1 topic; when it does not run, the file is
 * edited (atomic replace).
 */
#ifndef CLI_DYNSEC_H
#define CLI_DYNSEC_H

#include <stddef.h>

#include "cli_common.h"

/** The plugin as Debian's mosquitto package installs it. */
#define CLI_DYNSEC_PLUGIN "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"

/** Username and bound client id of the CLI's administration login. */
#define CLI_ADMIN_USER "otter-admin"

/** Username and bound client id of the broker's bridge to itself (--shared-streams). */
#define CLI_BRIDGE_USER "otter-service-bridge"

/** The role every thing shares (its rules on the answer topics). */
#define CLI_THINGS_ROLE "things"

/** The ordinary topic prefix under which that bridge republishes stream requests. */
#define CLI_SHARE_PREFIX "otter/"

/** One thing to add: its name and, with passwords, its password. */
typedef struct cli_dynsec_thing {
    /** Thing name: username, client id and the topics it may use. */
    const char *name;
    /** Its password; NULL when it logs in with a certificate only. */
    const char *password;
} cli_dynsec_thing_t;

/**
 * The initial dynsec.json text: the admin and service logins and roles, no
 * thing, every access denied by default.
 * @param admin_pw   the admin's password, or NULL (certificate logins).
 * @param service_pw the service's password, or NULL (certificate logins).
 * @param bridge     1: the broker has a bridge to itself (CLI_BRIDGE_USER,
 *                   --shared-streams) that reads the things' requests.
 * @param bridge_pw  the bridge's password, or NULL (certificate login).
 * @return a heap string (caller frees), or NULL on failure.
 */
char *cli_dynsec_initial(const char *admin_pw, const char *service_pw, int bridge,
                         const char *bridge_pw);

/**
 * Add things: through the running broker (its pid file names a live
 * Mosquitto), else in the file. All or none are added.
 * Prints the error line on failure.
 * @param live receives 1 when the running broker took them, 0 for the file.
 * @return CLI_EXIT_OK or CLI_EXIT_FAIL.
 */
int cli_dynsec_add_things(const cli_ctx_t *ctx, const cli_dynsec_thing_t *things, size_t n,
                          int *live);

/**
 * Remove things' logins: through the running broker when live (the plugin
 * then ends their sessions at once), else in the file. Also the undo of
 * cli_dynsec_add_things(), with what it returned in *live.
 * Prints the error line on failure.
 * @return CLI_EXIT_OK or CLI_EXIT_FAIL.
 */
int cli_dynsec_remove_things(const cli_ctx_t *ctx, const cli_dynsec_thing_t *things, size_t n,
                             int live);

/**
 * Try to log in with a credentials file under the data folder (e.g.
 * "things/dev1.json") and disconnect at once.
 * @return 1 when the broker refused it (or cannot be reached), 0 when it
 *         accepted it, -1 when the file cannot be read.
 */
int cli_dynsec_login_refused(const cli_ctx_t *ctx, const char *rel);

/** A change of one thing's login. */
typedef enum cli_dynsec_change {
    CLI_DYNSEC_DISABLE,  /**< refuse its logins; end its sessions */
    CLI_DYNSEC_ENABLE,   /**< accept its logins again */
    CLI_DYNSEC_PASSWORD, /**< a new password (NULL: none, certificate logins); end its sessions */
} cli_dynsec_change_t;

/**
 * Change a thing's login: through the running broker (the plugin ends the
 * thing's live sessions when it is disabled or its password changes), else
 * in the file. Prints the error line on failure.
 * @return CLI_EXIT_OK or CLI_EXIT_FAIL.
 */
int cli_dynsec_change_thing(const cli_ctx_t *ctx, const char *name, cli_dynsec_change_t what,
                            const char *password);

/**
 * A dynsec.json text with the logins of a federation's bridges added: for
 * every broker k (1 .. n-1) with a bridge of its own (passwords[k] not ""),
 * CLI_FEDERATION_USER-k with its client id bound to that name and the role
 * CLI_FEDERATION_USER, which may send, receive and subscribe on the bridged
 * topics only ($aws/things/+/jobs/#, .../streams/#, .../shadow/#). A password
 * of "-" adds the login without one (a certificate login, with --tls).
 * @return a heap string (caller frees), or NULL on failure.
 */
char *cli_dynsec_with_federation(const char *text, const char (*passwords)[33], size_t n);

/**
 * Add the login of one service instance with a certificate of its own (name:
 * otter-service-NAME, client id bound to it, the service's role) to every
 * broker: this data folder's through it when it runs, else in its file; the
 * other brokers of a federation through them. A broker that has it already
 * is left as it is, so running it again after a failure adds it where it is
 * missing. Prints the error line on failure.
 * @return CLI_EXIT_OK or CLI_EXIT_FAIL.
 */
int cli_dynsec_add_service_instance(const cli_ctx_t *ctx, const char *name);

#endif /* CLI_DYNSEC_H */
