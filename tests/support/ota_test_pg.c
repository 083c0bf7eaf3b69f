/*
 * otter TEST SUPPORT ONLY: a throwaway PostgreSQL server. See ota_test_pg.h.
 */
#define _GNU_SOURCE

#include "ota_test_pg.h"
#include "ota_test_loopback.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef OTA_TEST_PG_BIN
#define OTA_TEST_PG_BIN "/usr/lib/postgresql/15/bin"
#endif

/** Runs argv (as `postgres` when we are root); stdout/stderr to log; exit status or -1. */
static int run(char *const argv[], const char *log)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, 0);
        if (geteuid() == 0) {
            char *args[32] = {"setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups",
                              "--reset-env"};
            int n = 5;
            for (int i = 0; argv[i] && n < 31; i++)
                args[n++] = argv[i];
            args[n] = NULL;
            execvp("setpriv", args);
        } else {
            execv(argv[0], argv);
        }
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void remove_dir(const char *dir)
{
    pid_t pid = fork();
    if (pid == 0) {
        execlp("rm", "rm", "-rf", dir, (char *)NULL);
        _exit(127);
    }
    if (pid > 0)
        waitpid(pid, NULL, 0);
}

static void stop_server(const char *dir)
{
    char data[300], log[300];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(log, sizeof log, "%s/ctl.log", dir);
    char *argv[] = {OTA_TEST_PG_BIN "/pg_ctl", "stop", "-D", data, "-m", "immediate", "-w", NULL};
    run(argv, log);
}

/** The watchdog: waits for the test process to go (its pipe closes), then cleans up. */
static void watchdog(int rfd, const char *dir)
{
    setsid(); /* a Ctrl-C to the test's process group does not cut the clean-up short */
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    char c;
    while (read(rfd, &c, 1) != 0 && errno == EINTR) {
    }
    stop_server(dir);
    remove_dir(dir);
    _exit(0);
}

int ota_test_pg_start(ota_test_pg_t *pg)
{
    return ota_test_pg_start_with(pg, 0);
}

int ota_test_pg_start_with(ota_test_pg_t *pg, int durable)
{
    memset(pg, 0, sizeof *pg);
    pg->keepalive = -1;
    snprintf(pg->dir, sizeof pg->dir, "/tmp/otter-pg-XXXXXX");
    if (!mkdtemp(pg->dir)) {
        perror("otter test pg: mkdtemp");
        return -1;
    }
    int fds[2];
    if (pipe(fds) != 0) {
        perror("otter test pg: pipe");
        rmdir(pg->dir);
        return -1;
    }
    pg->watchdog = fork();
    if (pg->watchdog < 0) {
        perror("otter test pg: fork");
        rmdir(pg->dir);
        return -1;
    }
    if (pg->watchdog == 0) {
        close(fds[1]);
        watchdog(fds[0], pg->dir);
    }
    close(fds[0]);
    pg->keepalive = fds[1];
    fcntl(pg->keepalive, F_SETFD, FD_CLOEXEC);

    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("postgres");
        if (!pw || chown(pg->dir, pw->pw_uid, pw->pw_gid) != 0) {
            fprintf(stderr, "otter test pg: no 'postgres' user to run the server as\n");
            ota_test_pg_stop(pg);
            return -1;
        }
    }
    chmod(pg->dir, 0700);
    /* a random password, given to initdb in a file only the server's user reads */
    unsigned char rnd[16];
    int rfd = open("/dev/urandom", O_RDONLY);
    if (rfd < 0 || read(rfd, rnd, sizeof rnd) != (ssize_t)sizeof rnd) {
        if (rfd >= 0)
            close(rfd);
        ota_test_pg_stop(pg);
        return -1;
    }
    close(rfd);
    char password[33];
    for (int i = 0; i < 16; i++)
        snprintf(password + 2 * i, 3, "%02x", rnd[i]);
    char pwfile[300], data[300], log[300], ctllog[300];
    snprintf(pwfile, sizeof pwfile, "%s/pw", pg->dir);
    snprintf(data, sizeof data, "%s/data", pg->dir);
    snprintf(log, sizeof log, "%s/server.log", pg->dir);
    snprintf(ctllog, sizeof ctllog, "%s/ctl.log", pg->dir);
    FILE *f = fopen(pwfile, "w");
    if (!f) {
        ota_test_pg_stop(pg);
        return -1;
    }
    fprintf(f, "%s\n", password);
    fclose(f);
    chmod(pwfile, 0600);
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("postgres");
        if (chown(pwfile, pw->pw_uid, pw->pw_gid) != 0) {
            ota_test_pg_stop(pg);
            return -1;
        }
    }
    char pwopt[320];
    snprintf(pwopt, sizeof pwopt, "--pwfile=%s", pwfile);
    char *initdb[] = {
        OTA_TEST_PG_BIN "/initdb", "-D", data,   "-U", "otter", pwopt, "--auth=scram-sha-256",
        "--locale=C.UTF-8",        "-E", "UTF8", "-N", NULL};
    if (run(initdb, ctllog) != 0) {
        fprintf(stderr, "otter test pg: initdb failed; see %s\n", ctllog);
        ota_test_pg_stop(pg);
        return -1;
    }
    unlink(pwfile);
    for (int attempt = 0; attempt < 5; attempt++) {
        pg->port = ota_test_free_port();
        char opts[600];
        /* a throwaway cluster: durability buys nothing, and its fsyncs would cost seconds */
        snprintf(opts, sizeof opts, "-k %s -c listen_addresses=127.0.0.1 -p %d%s", pg->dir,
                 pg->port,
                 durable ? "" : " -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        char *start[] = {OTA_TEST_PG_BIN "/pg_ctl",
                         "start",
                         "-w",
                         "-t",
                         "30",
                         "-D",
                         data,
                         "-l",
                         log,
                         "-o",
                         opts,
                         NULL};
        if (run(start, ctllog) == 0) {
            snprintf(pg->url, sizeof pg->url, "postgresql://otter:%s@127.0.0.1:%d/postgres",
                     password, pg->port);
            return 0;
        }
    }
    fprintf(stderr, "otter test pg: the server did not start; see %s\n", log);
    ota_test_pg_stop(pg);
    return -1;
}

int ota_test_pg_exec(const ota_test_pg_t *pg, const char *sql)
{
    PGconn *c = PQconnectdb(pg->url);
    int rc = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *res = PQexec(c, sql);
        ExecStatusType t = PQresultStatus(res);
        rc = t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK ? 0 : -1;
        if (rc)
            fprintf(stderr, "otter test pg: %s: %s", sql, PQresultErrorMessage(res));
        PQclear(res);
    } else {
        fprintf(stderr, "otter test pg: %s", PQerrorMessage(c));
    }
    PQfinish(c);
    return rc;
}

int ota_test_pg_reset(const ota_test_pg_t *pg)
{
    return ota_test_pg_exec(pg, "SET client_min_messages = warning;"
                                "DROP SCHEMA public CASCADE; CREATE SCHEMA public");
}

int ota_test_pg_empty(const ota_test_pg_t *pg)
{
    return ota_test_pg_exec(
        pg,
        "SET client_min_messages = warning;"
        "DO $$DECLARE t TEXT; BEGIN"
        " SELECT string_agg(quote_ident(tablename), ', ') INTO t FROM pg_tables"
        " WHERE schemaname = 'public' AND tablename NOT IN ('schema_version', 'otter_changes');"
        " IF t IS NOT NULL THEN EXECUTE 'TRUNCATE ' || t || ' RESTART IDENTITY CASCADE'; END IF;"
        " END$$");
}

void ota_test_pg_stop(ota_test_pg_t *pg)
{
    if (pg->keepalive >= 0)
        close(pg->keepalive);
    if (pg->watchdog > 0)
        while (waitpid(pg->watchdog, NULL, 0) < 0 && errno == EINTR) {
        }
    memset(pg, 0, sizeof *pg);
    pg->keepalive = -1;
}
