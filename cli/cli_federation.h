/*
 * otter CLI: a federation of Mosquitto brokers ('otter broker init --federate').
 *
 * Layout: the broker of this data folder (DATA_DIR/broker/, broker 1, the hub)
 * and one more per --federate entry in DATA_DIR/federation/K/broker/ (K = 2,
 * 3, ...), each a complete broker folder with the same logins, passwords and
 * access rules. The hub's mosquitto.conf has one bridge to every other broker
 * carrying the things' jobs, streams and shadow topics both ways; the others
 * have none, so the bridges form a star and no message goes round a loop.
 * The thing commands change every broker's dynamic-security logins.
 */
#ifndef CLI_FEDERATION_H
#define CLI_FEDERATION_H

#include <stddef.h>

#include "cli_broker.h"
#include "cli_common.h"

/** Most brokers in a federation, the hub included. */
#define CLI_FEDERATION_MAX 8
/** The same, as text for help messages. */
#define CLI_FEDERATION_MAX_S "7"

/** Username and bound client id of the bridges between the brokers of a federation. */
#define CLI_FEDERATION_USER "otter-service-federation"

/** Topic prefix under which the bridges carry broker K's connection notices
 * ($SYS/broker/log/N) to the hubs: CLI_PRESENCE_PREFIX "K/log/N". */
#define CLI_PRESENCE_PREFIX "otter-presence/"

/** One broker of the federation other than the hub. */
typedef struct cli_federation_member {
    /** Its data folder: DATA_DIR/federation/K (its files are in broker/ under it). */
    char data_dir[CLI_PATH_MAX];
    /** A context for the CLI's functions that work on one broker. */
    cli_ctx_t ctx;
} cli_federation_member_t;

/**
 * Write the federation that broker init's setup s asks for (s->federate set):
 * the hub in ctx's data folder and every other broker under federation/K/.
 * Prints what it wrote, or the error line.
 * @return CLI_EXIT_OK, CLI_EXIT_USAGE or CLI_EXIT_FAIL.
 */
int cli_federation_init(const cli_ctx_t *ctx, const cli_broker_setup_t *s);

/**
 * The brokers of ctx's federation other than the hub (none when the data
 * folder has no federation). Each member's ctx points into out[i], so out must
 * stay where it is while they are used.
 * @return how many were written to out (at most cap).
 */
size_t cli_federation_members(const cli_ctx_t *ctx, cli_federation_member_t *out, size_t cap);

/** One broker's address as things' files hold it. */
typedef struct cli_federation_addr {
    /** Host name or address. */
    char host[256];
    /** Listener port. */
    unsigned port;
} cli_federation_addr_t;

/**
 * Every broker a thing of ctx's data folder may connect to: the hub (from
 * its service.credentials) first, then the others in order. Prints the error
 * line on failure.
 * @return how many (1 without a federation), or 0 on failure.
 */
size_t cli_federation_addresses(const cli_ctx_t *ctx, cli_federation_addr_t *out, size_t cap);

#endif /* CLI_FEDERATION_H */
