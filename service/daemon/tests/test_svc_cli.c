/*
 * otter-service's command line: --help documents every flag, bad arguments
 * exit 2, and a service that cannot reach its broker keeps retrying and still
 * stops cleanly (exit 0) on SIGTERM. Its configuration: a missing data folder
 * is an error that names it and the command that makes it (and nothing is
 * created); the broker's address and the login come from the folder `otter
 * broker init` wrote; a refused login says what to check and backs off.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "ota_test_net.h"

static char g_dir[64];
static char g_log[128];
static char g_data[96]; /* an existing, empty data folder */

static int run(const char *const *args)
{
    char *argv[32];
    size_t n = 0;
    ota_test_proc_t p;
    int status = -1;
    argv[n++] = (char *)OTA_TEST_SERVICE_BIN;
    for (size_t i = 0; args[i] != NULL && n < 31; i++) {
        argv[n++] = (char *)args[i];
    }
    argv[n] = NULL;
    assert_int_equal(ota_test_proc_start(&p, "otter-service", argv, g_log), 0);
    for (int i = 0; i < 1000 && ota_test_proc_running(&p, &status); i++) {
        usleep(10000);
    }
    if (p.pid > 0) {
        ota_test_proc_kill(&p);
        fail_msg("otter-service did not exit");
    }
    return status;
}

static void test_help(void **state)
{
    (void)state;
    static const char *const args[] = {"--help", NULL};
    assert_int_equal(run(args), 0);
    static const char *const flags[] = {"--data-dir",
                                        "--host",
                                        "--port",
                                        "--username",
                                        "--password",
                                        "--client-id",
                                        "--role",
                                        "--share-group",
                                        "--shard",
                                        "--cafile",
                                        "--log-level",
                                        "--max-backlog",
                                        "--instance",
                                        "--thing-requests",
                                        "--thing-request-burst",
                                        "--thing-jobs-requests",
                                        "--thing-jobs-burst",
                                        "--thing-kib-per-s",
                                        "--thing-burst-kib",
                                        "--certfile",
                                        "--keyfile",
                                        "--broker-numbers",
                                        "service.credentials",
                                        NULL};
    for (size_t i = 0; flags[i] != NULL; i++) {
        if (ota_test_log_wait(g_log, 0, flags[i], 0) != 0) {
            fail_msg("--help does not mention %s", flags[i]);
        }
    }
}

static void test_bad_arguments(void **state)
{
    (void)state;
    const char *d = g_data;
    const char *const cases[][6] = {
        {"--port", "1883", NULL},
        {"--data-dir", d, "--port", "0", NULL},
        {"--data-dir", d, "--role", "bogus", NULL},
        {"--data-dir", d, "--shard", "2/2", NULL},
        {"--data-dir", d, "--share-group", "a/b", NULL},
        {"--data-dir", d, "--password", "p", NULL},
        {"--data-dir", d, "--frobnicate", "1", NULL},
        {"--data-dir", d, "--instance", "a.b", NULL},
        {"--data-dir", d, "--thing-burst-kib", "64", NULL},
        {"--data-dir", d, "--thing-request-burst", "0", NULL},
        {"--data-dir", NULL},
    };
    unsetenv("OTTER_DATA_DIR");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(run(cases[i]), 2);
    }
}

static void test_sigterm_without_broker(void **state)
{
    (void)state;
    char port[16];
    ota_test_proc_t p;
    snprintf(port, sizeof(port), "%d", ota_test_free_port());
    /* Nothing listens on the port: the service retries until told to stop. */
    char *argv[] = {(char *)OTA_TEST_SERVICE_BIN, "--data-dir", g_data, "--port", port, NULL};
    assert_int_equal(ota_test_proc_start(&p, "otter-service", argv, g_log), 0);
    assert_int_equal(ota_test_log_wait(g_log, 0, "retrying", 5000), 0);
    assert_int_equal(ota_test_proc_stop(&p), 0);
    assert_int_equal(ota_test_log_wait(g_log, 0, "INFO stopped", 1000), 0);
}

/* A second process with the same client id on the same data folder does not start (the two
 * would take the broker connection from each other for as long as both run); one with its
 * own --instance does, and so does the same one once the first has stopped. */
static void test_second_process_same_client_id(void **state)
{
    (void)state;
    char port[16];
    ota_test_proc_t first, other;
    snprintf(port, sizeof(port), "%d", ota_test_free_port());
    char *argv[] = {(char *)OTA_TEST_SERVICE_BIN, "--data-dir", g_data, "--port", port, NULL};
    long from = ota_test_log_size(g_log);
    assert_int_equal(ota_test_proc_start(&first, "otter-service", argv, g_log), 0);
    assert_int_equal(ota_test_log_wait(g_log, from, "retrying", 5000), 0);
    from = ota_test_log_size(g_log);
    const char *const same[] = {"--data-dir", g_data, "--port", port, NULL};
    int status = run(same);
    char pid[64];
    snprintf(pid, sizeof(pid), "another otter-service (pid %ld) already runs", (long)first.pid);
    int named = ota_test_log_wait(g_log, from, pid, 0);
    char *blue[] = {(char *)OTA_TEST_SERVICE_BIN,
                    "--data-dir",
                    g_data,
                    "--port",
                    port,
                    "--instance",
                    "blue",
                    NULL};
    long from_blue = ota_test_log_size(g_log);
    assert_int_equal(ota_test_proc_start(&other, "otter-service", blue, g_log), 0);
    int blue_runs = ota_test_log_wait(g_log, from_blue, "retrying", 5000);
    assert_int_equal(ota_test_proc_stop(&other), 0);
    assert_int_equal(ota_test_proc_stop(&first), 0);
    assert_int_equal(status, 2);
    assert_int_equal(named, 0);
    assert_int_equal(blue_runs, 0);
    /* the first one stopped: the lock is free again */
    from = ota_test_log_size(g_log);
    assert_int_equal(ota_test_proc_start(&first, "otter-service", argv, g_log), 0);
    int again = ota_test_log_wait(g_log, from, "retrying", 5000);
    assert_int_equal(ota_test_proc_stop(&first), 0);
    assert_int_equal(again, 0);
}

/* A newer otter that migrates the store while a service runs (here: the schema version moved
 * past this build's, as a migration would) stops that service with a message naming both
 * versions, exit 1: it would go on writing what the newer code no longer reads. */
static void test_stops_when_store_migrated_by_newer(void **state)
{
    (void)state;
    char data[96], db[128], port[16];
    snprintf(data, sizeof(data), "%s/migrated", g_dir);
    snprintf(db, sizeof(db), "%s/otter.db", data);
    assert_int_equal(mkdir(data, 0700), 0);
    snprintf(port, sizeof(port), "%d", ota_test_free_port());
    char *argv[] = {(char *)OTA_TEST_SERVICE_BIN, "--data-dir", data, "--port", port, NULL};
    long from = ota_test_log_size(g_log);
    ota_test_proc_t p;
    assert_int_equal(ota_test_proc_start(&p, "otter-service", argv, g_log), 0);
    assert_int_equal(ota_test_log_wait(g_log, from, "retrying", 5000), 0);
    sqlite3 *conn = NULL;
    int ok =
        sqlite3_open(db, &conn) == SQLITE_OK && sqlite3_busy_timeout(conn, 5000) == SQLITE_OK &&
        sqlite3_exec(conn, "UPDATE schema_version SET version = version + 1", NULL, NULL, NULL) ==
            SQLITE_OK;
    sqlite3_close(conn);
    int status = -1;
    int exited = ota_test_proc_wait_exit(&p, 10000, &status); /* checked every 5 s */
    assert_true(ok);
    assert_int_equal(exited, 0);
    assert_int_equal(status, 1);
    assert_int_equal(ota_test_log_wait(g_log, from, "newer than this program's", 0), 0);
}

/* A federation that shrank (here: a thing's notice recorded on broker 2, and the service now
 * runs with one broker): at its start the service forgets the notices of the brokers gone,
 * which would keep things unknown there for good. */
static void test_forgets_presence_of_brokers_gone(void **state)
{
    (void)state;
    char data[96], db[128], port[16];
    snprintf(data, sizeof(data), "%s/shrunk", g_dir);
    snprintf(db, sizeof(db), "%s/otter.db", data);
    assert_int_equal(mkdir(data, 0700), 0);
    snprintf(port, sizeof(port), "%d", ota_test_free_port());
    char *argv[] = {(char *)OTA_TEST_SERVICE_BIN, "--data-dir", data, "--port", port, NULL};
    ota_test_proc_t p;
    long from = ota_test_log_size(g_log);
    assert_int_equal(ota_test_proc_start(&p, "otter-service", argv, g_log), 0);
    assert_int_equal(ota_test_log_wait(g_log, from, "retrying", 5000), 0);
    assert_int_equal(ota_test_proc_stop(&p), 0);
    assert_int_not_equal(ota_test_log_wait(g_log, from, "are forgotten", 0), 0);
    sqlite3 *conn = NULL;
    int ok = sqlite3_open(db, &conn) == SQLITE_OK &&
             sqlite3_exec(conn,
                          "INSERT INTO things(name, created_ms) VALUES('t0', 1);"
                          "INSERT INTO presence(thing, broker, online, epoch, at_ms) "
                          "VALUES('t0', 2, 1, 0, 5)",
                          NULL, NULL, NULL) == SQLITE_OK;
    sqlite3_close(conn);
    assert_true(ok);
    from = ota_test_log_size(g_log);
    assert_int_equal(ota_test_proc_start(&p, "otter-service", argv, g_log), 0);
    int said = ota_test_log_wait(g_log, from, "notices on brokers above 1 are forgotten", 5000);
    assert_int_equal(ota_test_proc_stop(&p), 0);
    assert_int_equal(said, 0);
}

/* --cafile, --certfile, --keyfile: the service connects with mutual TLS to the broker
 * `otter broker init --tls` sets up, with the certificate it issued for the service. */
static void test_tls_cafile(void **state)
{
    (void)state;
    char data[96];
    char port[16];
    ota_test_broker_t b;
    ota_test_proc_t p;
    ota_test_login_t login;

    /* The mutual-TLS broker `otter broker init --tls` sets up, and its service login. */
    static const char *const init_tls[] = {"--tls", NULL};
    assert_int_equal(ota_test_broker_start_with(&b, NULL, init_tls), 0);
    assert_int_equal(ota_test_service_login(&b, &login), 0);
    assert_string_equal(login.password, "");
    snprintf(data, sizeof(data), "%s/data", g_dir);
    snprintf(port, sizeof(port), "%d", b.port);
    /* The test support passes --cafile, --certfile and --keyfile from service.credentials. */
    static const char *const id[] = {"--client-id", "otter-service-tls", NULL};
    int rc = ota_test_service_start(&p, data, &b, id, g_log);
    if (rc != 0) {
        ota_test_proc_kill(&p);
        ota_test_broker_stop(&b);
        fail_msg("otter-service with --cafile did not become ready (see %s)", g_log);
    }
    assert_int_equal(ota_test_proc_stop(&p), 0);

    /* Without TLS, or with TLS but no client certificate, the same port gives nothing. */
    char *plain[] = {(char *)OTA_TEST_SERVICE_BIN, "--data-dir", data, "--port", port, NULL};
    char *no_cert[] = {(char *)OTA_TEST_SERVICE_BIN,
                       "--data-dir",
                       data,
                       "--port",
                       port,
                       "--cafile",
                       login.cafile,
                       NULL};
    char **refused[] = {plain, no_cert};
    for (size_t i = 0; i < 2; i++) {
        long from = ota_test_log_size(g_log);
        assert_int_equal(ota_test_proc_start(&p, "otter-service", refused[i], g_log), 0);
        assert_int_equal(ota_test_log_wait(g_log, from, OTA_TEST_SERVICE_READY, 1500), -1);
        assert_int_equal(ota_test_proc_stop(&p), 0);
    }
    ota_test_broker_stop(&b);
}

/* ---------------------------------------------------------- configuration -- */

/* A data folder that does not exist: exit 1, a message naming it and the
 * command that makes it, and nothing created. */
static void test_missing_data_folder(void **state)
{
    (void)state;
    char missing[128];
    struct stat sb;
    snprintf(missing, sizeof(missing), "%s/no-such-folder", g_dir);
    long from = ota_test_log_size(g_log);
    const char *const args[] = {"--data-dir", missing, NULL};
    assert_int_equal(run(args), 1);
    char needle[256];
    snprintf(needle, sizeof(needle), "data folder '%s' does not exist", missing);
    assert_int_equal(ota_test_log_wait(g_log, from, needle, 0), 0);
    assert_int_equal(ota_test_log_wait(g_log, from, "broker init", 0), 0);
    assert_int_equal(stat(missing, &sb), -1); /* nothing created */
    /* the same through the environment */
    setenv("OTTER_DATA_DIR", missing, 1);
    const char *const none[] = {NULL};
    assert_int_equal(run(none), 1);
    unsetenv("OTTER_DATA_DIR");
    assert_int_equal(stat(missing, &sb), -1);
}

/* `otter --data-dir D broker init --port P` and Mosquitto on the file it wrote. */
static void broker_init(const char *data, int port, ota_test_proc_t *broker, const char *log)
{
    char cmd[512];
    char conf[256];
    snprintf(cmd, sizeof(cmd), "'%s' --data-dir '%s' broker init --port %d > /dev/null",
             OTA_TEST_OTTER_BIN, data, port);
    assert_int_equal(system(cmd), 0);
    snprintf(conf, sizeof(conf), "%s/broker/mosquitto.conf", data);
    char *argv[] = {(char *)OTA_TEST_MOSQUITTO, "-c", conf, NULL};
    assert_int_equal(ota_test_proc_start(broker, "mosquitto", argv, log), 0);
    assert_int_equal(ota_test_wait_port(port, 5000), 0);
}

/* Count of lines holding needle in a file, from byte offset `from`. */
static int count_lines(const char *path, long from, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[2048];
    int n = 0;
    if (f == NULL) {
        return 0;
    }
    fseek(f, from, SEEK_SET);
    while (fgets(line, sizeof(line), f) != NULL) {
        n += strstr(line, needle) != NULL;
    }
    fclose(f);
    return n;
}

static void test_reads_what_broker_init_wrote(void **state)
{
    (void)state;
    char data[128], blog[128], cred[192];
    ota_test_proc_t broker, svc;
    int port = ota_test_free_port();
    snprintf(data, sizeof(data), "%s/initialised", g_dir);
    snprintf(blog, sizeof(blog), "%s/broker.log", g_dir);
    broker_init(data, port, &broker, blog);

    /* Only the data folder: host, port, user, password and client id come from it. */
    long from = ota_test_log_size(g_log);
    char *argv[] = {(char *)OTA_TEST_SERVICE_BIN, "--data-dir", data, NULL};
    assert_int_equal(ota_test_proc_start(&svc, "otter-service", argv, g_log), 0);
    if (ota_test_log_wait(g_log, from, OTA_TEST_SERVICE_READY, 10000) != 0) {
        ota_test_proc_kill(&svc);
        ota_test_proc_stop(&broker);
        fail_msg("otter-service did not connect with the credentials of broker init (see %s)",
                 g_log);
    }
    assert_int_equal(ota_test_log_wait(g_log, from, "as user otter-service", 0), 0);
    assert_int_equal(ota_test_log_wait(g_log, from, "as otter-service, new session", 0), 0);
    assert_int_equal(ota_test_proc_stop(&svc), 0);

    /* A wrong password: the refusal names the file and the user, and the retries back
     * off (0.5, 1, 2, 4 s ...) instead of coming twice a second. */
    snprintf(cred, sizeof(cred), "%s/broker/service.credentials", data);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "sed -i 's/\"password\":[^,]*/\"password\": \"wrong\"/' '%s'", cred);
    assert_int_equal(system(cmd), 0);
    from = ota_test_log_size(g_log);
    assert_int_equal(ota_test_proc_start(&svc, "otter-service", argv, g_log), 0);
    char needle[384];
    snprintf(needle, sizeof(needle), "refused the login of user 'otter-service'");
    assert_int_equal(ota_test_log_wait(g_log, from, needle, 5000), 0);
    assert_int_equal(ota_test_log_wait(g_log, from, cred, 0), 0);
    usleep(7000 * 1000);
    int refusals = count_lines(g_log, from, needle);
    assert_int_equal(ota_test_proc_stop(&svc), 0);
    ota_test_proc_stop(&broker);
    printf("refused logins logged in 7 s: %d (twice a second would be 14)\n", refusals);
    assert_true(refusals >= 2);
    assert_true(refusals <= 5);
}

/* Presence numbers the service's broker from the federation's description broker init wrote
 * (hub 1, hub 2), whatever --host names; --broker-numbers for another name, never against the
 * description; bad input exits 2 with a clear message. No broker is needed. */
static void test_broker_numbers(void **state)
{
    (void)state;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char data[128], p1[32], p2[32], fed[64], other[64];
    int port1 = ota_test_free_port(), port2 = ota_test_free_port();
    snprintf(data, sizeof(data), "%s/federation", g_dir);
    snprintf(p1, sizeof(p1), "%d", port1);
    snprintf(fed, sizeof(fed), "127.0.0.1:%d", port2);
    const char *const init[] = {"broker", "init", "--port", p1, "--federate", fed, NULL};
    assert_int_equal(ota_test_otter(data, init, NULL), 0);
    snprintf(p2, sizeof(p2), "127.0.0.1:%d", port2);
    snprintf(other, sizeof(other), "localhost:%d", port2);
    struct {
        const char *args[8];
        const char *says;
    } bad[] = {
        {{"--data-dir", data, "--host", p2, "--broker-numbers", "1", NULL}, "says it is hub 2"},
        {{"--data-dir", data, "--host", other, NULL}, "is not in the federation's description"},
        {{"--data-dir", data, "--host", other, "--broker-numbers", "2,3", NULL},
         "gives 2 numbers for 1 brokers"},
        {{"--data-dir", data, "--host", other, "--broker-numbers", "0", NULL},
         "bad --broker-numbers"},
        {{"--data-dir", data, "--host", other, "--broker-numbers", "9", NULL},
         "bad --broker-numbers"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        long from = ota_test_log_size(g_log);
        assert_int_equal(run(bad[i].args), 2);
        if (ota_test_log_wait(g_log, from, bad[i].says, 0) != 0) {
            fail_msg("case %zu does not say '%s' (see %s)", i, bad[i].says, g_log);
        }
    }
    /* hub 2 alone, or the hubs the other way round: still hub 2's own number */
    snprintf(fed, sizeof(fed), "%s,127.0.0.1:%d", p2, port1);
    const char *ok_cases[][3] = {{p2, NULL, NULL}, {fed, NULL, NULL}, {other, "2", NULL}};
    for (size_t i = 0; i < 3; i++) {
        long from = ota_test_log_size(g_log);
        ota_test_proc_t svc;
        char *argv[] = {(char *)OTA_TEST_SERVICE_BIN,
                        "--data-dir",
                        data,
                        "--host",
                        (char *)ok_cases[i][0],
                        ok_cases[i][1] != NULL ? "--broker-numbers" : NULL,
                        (char *)ok_cases[i][1],
                        NULL};
        assert_int_equal(ota_test_proc_start(&svc, "otter-service", argv, g_log), 0);
        char says[128];
        snprintf(says, sizeof(says), "presence: %s:%d is broker 2",
                 i == 2 ? "localhost" : "127.0.0.1", port2);
        int found = ota_test_log_wait(g_log, from, says, 5000);
        assert_int_equal(ota_test_proc_stop(&svc), 0);
        if (found != 0) {
            fail_msg("case %zu: no '%s' (see %s)", i, says, g_log);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("svc_cli: broker numbers checked in %ld ms\n",
           (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
}

/* The credentials `otter broker init` wrote: an instance's fixed id from client_id_prefix,
 * the session the broker kept for it across a restart of the service, and a damaged file. */
static void test_instance_id_and_session(void **state)
{
    (void)state;
    ota_test_broker_t b;
    ota_test_proc_t svc;
    char data[128], path[192];
    snprintf(data, sizeof(data), "%s/instances", g_dir);
    assert_int_equal(mkdir(data, 0700), 0);
    assert_int_equal(ota_test_broker_start(&b, data), 0);
    char *argv[] = {(char *)OTA_TEST_SERVICE_BIN, "--data-dir", data, "--instance", "blue", NULL};
    for (int round = 0; round < 2; round++) {
        long from = ota_test_log_size(g_log);
        assert_int_equal(ota_test_proc_start(&svc, "otter-service", argv, g_log), 0);
        int ready = ota_test_log_wait(g_log, from, OTA_TEST_SERVICE_READY, 10000);
        /* the second start finds the session the broker kept */
        int named = ota_test_log_wait(g_log, from,
                                      round == 0 ? "as otter-service-blue, new session"
                                                 : "as otter-service-blue, resumed session",
                                      0);
        assert_int_equal(ota_test_proc_stop(&svc), 0);
        if (ready != 0 || named != 0) {
            ota_test_broker_stop(&b);
            fail_msg("start %d: not ready as otter-service-blue with the expected session (see "
                     "%s)",
                     round, g_log);
        }
    }
    /* a damaged file is an error that names it */
    snprintf(path, sizeof(path), "%s/broker/service.credentials", data);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"host\":\"127.0.0.1\",\"port\":\"x\"}\n", f);
    fclose(f);
    long from = ota_test_log_size(g_log);
    const char *const args[] = {"--data-dir", data, NULL};
    assert_int_equal(run(args), 1);
    assert_int_equal(ota_test_log_wait(g_log, from, "service.credentials is damaged", 0), 0);
    ota_test_broker_stop(&b);
}

/* `otter broker init --tls`: the credentials name a mutual-TLS listener, the CA and the
 * service's certificate; the data folder alone is enough. */
static void test_reads_tls_credentials(void **state)
{
    (void)state;
    ota_test_broker_t b;
    ota_test_proc_t svc;
    char data[128];
    static const char *const init_tls[] = {"--tls", NULL};
    snprintf(data, sizeof(data), "%s/tls-folder", g_dir);
    assert_int_equal(mkdir(data, 0700), 0);
    assert_int_equal(ota_test_broker_start_with(&b, data, init_tls), 0);
    long from = ota_test_log_size(g_log);
    char *argv[] = {(char *)OTA_TEST_SERVICE_BIN, "--data-dir", data, NULL};
    assert_int_equal(ota_test_proc_start(&svc, "otter-service", argv, g_log), 0);
    int ready = ota_test_log_wait(g_log, from, OTA_TEST_SERVICE_READY, 10000);
    int tls = ota_test_log_wait(g_log, from, "(TLS) as user otter-service", 0);
    assert_int_equal(ota_test_proc_stop(&svc), 0);
    ota_test_broker_stop(&b);
    if (ready != 0 || tls != 0) {
        fail_msg("otter-service did not connect with the TLS credentials of broker init (see %s)",
                 g_log);
    }
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/otter-svc-cli-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    snprintf(g_log, sizeof(g_log), "%s/out.log", g_dir);
    snprintf(g_data, sizeof(g_data), "%s/data", g_dir);
    assert_int_equal(mkdir(g_data, 0755), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_sigterm_without_broker),
        cmocka_unit_test(test_second_process_same_client_id),
        cmocka_unit_test(test_stops_when_store_migrated_by_newer),
        cmocka_unit_test(test_forgets_presence_of_brokers_gone),
        cmocka_unit_test(test_tls_cafile),
        cmocka_unit_test(test_missing_data_folder),
        cmocka_unit_test(test_reads_what_broker_init_wrote),
        cmocka_unit_test(test_instance_id_and_session),
        cmocka_unit_test(test_reads_tls_credentials),
        cmocka_unit_test(test_broker_numbers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
