/*
 * otter TEST SUPPORT ONLY: a throwaway PostgreSQL server for a test binary.
 *
 * ota_test_pg_start() makes a cluster in a fresh temporary folder (initdb,
 * a random password, scram-sha-256 logins), starts it on a free port of
 * 127.0.0.1 with its socket in that folder, and forks a watchdog process
 * that stops the server and removes the folder as soon as the test process
 * ends, however it ends (normal exit, failed assertion, crash, SIGKILL): the
 * watchdog waits for the end of a pipe only the test process holds.
 * Started as root, initdb and the server run as the `postgres` user.
 *
 * Compile definition (set by CMake): OTA_TEST_PG_BIN, the folder of initdb
 * and pg_ctl (default /usr/lib/postgresql/15/bin).
 */
#ifndef OTA_TEST_PG_H
#define OTA_TEST_PG_H

#include <sys/types.h>

/** A running throwaway server. */
typedef struct ota_test_pg {
    char dir[256];  /**< its folder (data/, socket, log) */
    char url[512];  /**< postgresql://otter:<password>@127.0.0.1:<port>/postgres */
    int port;       /**< its TCP port */
    pid_t watchdog; /**< the process that stops it */
    int keepalive;  /**< write end of the watchdog's pipe */
} ota_test_pg_t;

/**
 * Makes and starts a server (about 1.5 s).
 * @param pg receives the server.
 * @return 0, or -1 with the reason on stderr (nothing left behind).
 */
int ota_test_pg_start(ota_test_pg_t *pg);

/**
 * As ota_test_pg_start(); durable 0 turns fsync off (what the tests use: a
 * throwaway cluster), 1 keeps PostgreSQL's defaults (for measurements).
 */
int ota_test_pg_start_with(ota_test_pg_t *pg, int durable);

/**
 * Empties the database: drops and recreates the public schema, so that the
 * next store opened on pg->url starts from nothing.
 * @param pg a started server.
 * @return 0 or -1 (reason on stderr).
 */
int ota_test_pg_reset(const ota_test_pg_t *pg);

/**
 * Empties every table of the database but schema_version (much faster than
 * ota_test_pg_reset(): the schema stays).
 * @param pg a started server.
 * @return 0 or -1 (reason on stderr).
 */
int ota_test_pg_empty(const ota_test_pg_t *pg);

/**
 * Runs SQL text on the server's database.
 * @param pg a started server.
 * @param sql statements without parameters.
 * @return 0 or -1 (reason on stderr).
 */
int ota_test_pg_exec(const ota_test_pg_t *pg, const char *sql);

/**
 * Stops the server and removes its folder; waits until it is done.
 * @param pg a started server; zeroed afterwards.
 */
void ota_test_pg_stop(ota_test_pg_t *pg);

#endif /* OTA_TEST_PG_H */
