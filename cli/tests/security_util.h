/*
 * otter security tests: what every attack test shares. A world is a broker
 * set up by `otter broker init`, things made by `otter thing create`, and
 * otter-service on the same data folder with its default client id.
 */
#ifndef SECURITY_UTIL_H
#define SECURITY_UTIL_H

#include "ota_test_net.h"

/** The broker and the service of one test. */
typedef struct sec_world {
    ota_test_broker_t broker;
    ota_test_proc_t service;
    char service_log[600]; /**< DATA/service.log */
    char broker_log[600];  /**< DATA/mosquitto.log */
    char service_id[160];  /**< the client id the service connected with */
} sec_world_t;

/**
 * Start a world: `broker init` (with init_args), `thing create things...`,
 * Mosquitto, and otter-service on the same data folder; logins[i] receives
 * the login of things[i].
 * @return 0, or -1 with nothing left running.
 */
int sec_world_start(sec_world_t *w, const char *const *init_args, const char *const *things,
                    ota_test_login_t *logins);

/** Stop the service and the broker, remove the folder. */
void sec_world_stop(sec_world_t *w);

/** cmocka teardown of a world that setup put in *state. */
int sec_world_teardown(void **state);

/**
 * Connect a device with its own login and subscribe to the answers to its
 * next-job requests and its status updates.
 * @return the client, or NULL.
 */
ota_test_client_t *sec_device(const sec_world_t *w, const ota_test_login_t *login);

/**
 * An honest request: the device asks for its next job (client token n) and
 * must get the service's answer within 5 s.
 * @return 1 when answered, else 0.
 */
int sec_honest_request(ota_test_client_t *c, const char *thing, int n);

/** Wait at most 3 s for a client to lose its connection; 1 when it has. */
int sec_dropped(ota_test_client_t *c);

/** How many times text occurs in a file (its first MiB). */
int sec_count_in_file(const char *path, const char *text);

/**
 * Print the line scripts/test.sh sums:
 * "security: <name>: attacks=N refused=N honest_answered=N updates_lost=0".
 */
void sec_report(const char *name, int attacks, int refused, int honest);

#endif /* SECURITY_UTIL_H */
