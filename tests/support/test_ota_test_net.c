/*
 * Self-test of the network test support: ports, processes and their cleanup,
 * the broker (start, restart, ACL config), and the scripted MQTT client.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ota_test_net.h"

static void test_ports(void **state)
{
    (void)state;
    int port = ota_test_free_port();
    assert_true(port > 0 && port < 65536);
    /* Nothing listens there: the wait times out. */
    assert_int_equal(ota_test_wait_port(port, 100), -1);
}

static void test_proc_exit_codes(void **state)
{
    (void)state;
    ota_test_proc_t p;
    char *sh_exit3[] = {"/bin/sh", "-c", "echo hello; exit 3", NULL};
    char *sleeper[] = {"/bin/sleep", "100", NULL};
    char log[] = "/tmp/otter-test-net-XXXXXX";
    int fd = mkstemp(log);
    assert_true(fd >= 0);
    close(fd);

    assert_int_equal(ota_test_proc_start(&p, "sh", sh_exit3, log), 0);
    assert_int_equal(ota_test_log_wait(log, 0, "hello", 5000), 0);
    int status = -1;
    for (int i = 0; i < 500 && ota_test_proc_running(&p, &status); i++) {
        usleep(10000);
    }
    assert_int_equal(status, 3);
    assert_int_equal(p.pid, 0);
    assert_int_equal(ota_test_proc_stop(&p), -1);

    assert_int_equal(ota_test_proc_start(&p, "sleep", sleeper, NULL), 0);
    assert_true(ota_test_proc_running(&p, NULL));
    assert_int_equal(ota_test_proc_stop(&p), 128 + SIGTERM);

    assert_int_equal(ota_test_proc_start(&p, "sleep", sleeper, NULL), 0);
    assert_int_equal(ota_test_proc_kill(&p), 128 + SIGKILL);

    char *missing[] = {"/nonexistent/binary", NULL};
    assert_int_equal(ota_test_proc_start(&p, "missing", missing, NULL), -1);
    assert_int_equal(p.pid, 0);
    unlink(log);
}

/* Whether pid is gone (or a zombie nobody has reaped yet). */
static int pid_gone(pid_t pid)
{
    char path[64];
    char buf[256];
    FILE *f;
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return 1;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    return rp != NULL && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

enum death { DIE_EXIT, DIE_ABORT, DIE_SIGTERM, DIE_SIGINT, DIE_SIGKILL, DIE_UNDERSCORE_EXIT };

/* A "test" process starts a sleeper and then dies in the given way; the sleeper must go too. */
static void check_cleanup(enum death how)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t test = fork();
    assert_true(test >= 0);
    if (test == 0) {
        ota_test_proc_t p;
        char *sleeper[] = {"/bin/sleep", "1000", NULL};
        close(fds[0]);
        if (ota_test_proc_start(&p, "sleep", sleeper, NULL) != 0) {
            _exit(1);
        }
        if (write(fds[1], &p.pid, sizeof(p.pid)) != (ssize_t)sizeof(p.pid)) {
            _exit(1);
        }
        close(fds[1]);
        switch (how) {
        case DIE_EXIT:
            exit(0);
        case DIE_ABORT:
            abort();
        case DIE_SIGTERM:
            raise(SIGTERM);
            break;
        case DIE_SIGINT:
            raise(SIGINT);
            break;
        case DIE_SIGKILL:
            raise(SIGKILL);
            break;
        case DIE_UNDERSCORE_EXIT:
            _exit(0);
        }
        _exit(2);
    }
    close(fds[1]);
    pid_t child = 0;
    assert_int_equal(read(fds[0], &child, sizeof(child)), (ssize_t)sizeof(child));
    close(fds[0]);
    int st = 0;
    assert_int_equal(waitpid(test, &st, 0), test);
    int gone = 0;
    for (int i = 0; i < 300 && !gone; i++) {
        gone = pid_gone(child);
        if (!gone) {
            usleep(10000);
        }
    }
    if (!gone) {
        kill(child, SIGKILL);
    }
    assert_true(gone);
}

static void test_proc_cleanup_on_exit(void **state)
{
    (void)state;
    check_cleanup(DIE_EXIT);
}

static void test_proc_cleanup_on_abort(void **state)
{
    (void)state;
    check_cleanup(DIE_ABORT);
}

static void test_proc_cleanup_on_sigterm(void **state)
{
    (void)state;
    check_cleanup(DIE_SIGTERM);
}

static void test_proc_cleanup_on_sigint(void **state)
{
    (void)state;
    check_cleanup(DIE_SIGINT);
}

static void test_proc_cleanup_on_sigkill(void **state)
{
    (void)state;
    check_cleanup(DIE_SIGKILL);
}

static void test_proc_cleanup_on_quick_exit(void **state)
{
    (void)state;
    check_cleanup(DIE_UNDERSCORE_EXIT);
}

/* Topics of thing t1, the only ones its login may use. */
#define T1 "$aws/things/t1/jobs/"

static void test_broker_round_trip(void **state)
{
    (void)state;
    ota_test_broker_t b;
    ota_test_login_t svc;
    assert_int_equal(ota_test_broker_start(&b, NULL), 0);
    assert_true(b.port > 0);
    assert_true(b.proc.pid > 0);

    /* A thing subscribes to its own topics; the service publishes to them. */
    ota_test_client_t *sub = ota_test_thing_connect(&b, "t1");
    assert_int_equal(ota_test_service_login(&b, &svc), 0);
    ota_test_client_t *pub =
        ota_test_client_connect(b.port, "otter-service-test", svc.username, svc.password);
    assert_non_null(sub);
    assert_non_null(pub);
    assert_true(ota_test_client_connected(sub));
    assert_int_equal(ota_test_client_subscribe(sub, T1 "a/+/c", 1), 1);
    assert_int_equal(ota_test_client_subscribe(sub, T1 "x/#", 0), 0);

    static const uint8_t bin[] = {0x00, 0xff, 0x10, 0x00};
    assert_int_equal(ota_test_client_publish(pub, T1 "a/b/c", bin, sizeof(bin), 1), 0);
    assert_int_equal(ota_test_client_publish(pub, T1 "x/y", "hello", 5, 0), 0);
    assert_int_equal(ota_test_client_publish(pub, T1 "a/z/c", "", 0, 2), 0);
    assert_int_equal(ota_test_client_publish(pub, T1 "not/subscribed", "n", 1, 1), 0);

    /* x/y arrives even though a/... came first: expect takes by filter. */
    ota_test_msg_t *m = ota_test_client_expect(sub, T1 "x/#", 5000);
    assert_non_null(m);
    assert_string_equal(m->topic, T1 "x/y");
    assert_int_equal(m->len, 5);
    assert_memory_equal(m->payload, "hello", 5);
    ota_test_msg_free(m);

    m = ota_test_client_expect(sub, T1 "a/+/c", 5000);
    assert_non_null(m);
    assert_string_equal(m->topic, T1 "a/b/c");
    assert_int_equal(m->len, sizeof(bin));
    assert_memory_equal(m->payload, bin, sizeof(bin));
    ota_test_msg_free(m);

    m = ota_test_client_expect(sub, NULL, 5000);
    assert_non_null(m);
    assert_string_equal(m->topic, T1 "a/z/c");
    assert_int_equal(m->len, 0);
    ota_test_msg_free(m);

    assert_int_equal(ota_test_client_pending(sub, NULL), 0);
    assert_null(ota_test_client_expect(sub, NULL, 100));

    /* Several queued, counted, taken in order. */
    for (int i = 0; i < 5; i++) {
        char t[64];
        snprintf(t, sizeof(t), T1 "x/%d", i);
        assert_int_equal(ota_test_client_publish(pub, t, t, strlen(t), 1), 0);
    }
    for (int i = 0; i < 100 && ota_test_client_pending(sub, T1 "x/#") < 5; i++) {
        usleep(10000);
    }
    assert_int_equal(ota_test_client_pending(sub, T1 "x/#"), 5);
    assert_int_equal(ota_test_client_pending(sub, T1 "a/#"), 0);
    for (int i = 0; i < 5; i++) {
        char t[64];
        snprintf(t, sizeof(t), T1 "x/%d", i);
        m = ota_test_client_expect(sub, T1 "x/#", 1000);
        assert_non_null(m);
        assert_string_equal(m->topic, t);
        ota_test_msg_free(m);
    }

    /* Restart: clients reconnect by themselves (clean session). */
    int port = b.port;
    assert_int_equal(ota_test_broker_restart(&b), 0);
    assert_int_equal(b.port, port);
    for (int i = 0; i < 500 && !(ota_test_client_connected(sub) && ota_test_client_connected(pub));
         i++) {
        usleep(10000);
    }
    assert_true(ota_test_client_connected(sub));
    assert_true(ota_test_client_connected(pub));
    assert_int_equal(ota_test_client_subscribe(sub, T1 "after/restart", 1), 1);
    assert_int_equal(ota_test_client_publish(pub, T1 "after/restart", "r", 1, 1), 0);
    m = ota_test_client_expect(sub, T1 "after/restart", 5000);
    assert_non_null(m);
    ota_test_msg_free(m);

    ota_test_client_disconnect(sub);
    ota_test_client_disconnect(pub);

    /* Stopped: nothing listens, clients are refused, dir is gone. */
    char dir[512];
    snprintf(dir, sizeof(dir), "%s", b.dir);
    ota_test_broker_stop(&b);
    assert_int_equal(access(dir, F_OK), -1);
    assert_null(ota_test_client_connect(port, NULL, NULL, NULL));
    ota_test_broker_stop(&b); /* twice is harmless */
}

/* The broker is the one `otter broker init` sets up: logins only, own topics only. */
static void test_broker_shipped_config(void **state)
{
    (void)state;
    ota_test_broker_t b;
    char data[] = "/tmp/otter-test-data-XXXXXX";
    assert_non_null(mkdtemp(data));
    assert_int_equal(ota_test_broker_start(&b, data), 0);
    char conf[600];
    snprintf(conf, sizeof(conf), "%s/broker/mosquitto.conf", data);
    assert_int_equal(access(conf, F_OK), 0);

    /* No anonymous access, no unknown login, no wrong password. */
    assert_null(ota_test_client_connect(b.port, NULL, NULL, NULL));
    assert_null(ota_test_client_connect(b.port, NULL, "nobody", "wrong"));
    ota_test_login_t l;
    assert_int_equal(ota_test_thing_login(&b, "t1", &l), 0);
    assert_null(ota_test_client_connect(b.port, l.client_id, l.username, "wrong"));

    ota_test_client_t *c = ota_test_thing_connect(&b, "t1");
    assert_non_null(c);
    assert_int_equal(ota_test_client_subscribe(c, T1 "x", 1), 1);
    /* Another thing's topics: the subscription is refused (0x80), a publish dropped. */
    assert_int_equal(ota_test_client_subscribe(c, "$aws/things/t2/jobs/x", 1), -1);
    assert_int_equal(ota_test_client_publish(c, "$aws/things/t2/jobs/x", "f", 1, 1), 0);
    assert_int_equal(ota_test_client_publish(c, T1 "x", "a", 1, 1), 0);
    ota_test_msg_t *m = ota_test_client_expect(c, NULL, 5000);
    assert_non_null(m);
    assert_string_equal(m->topic, T1 "x");
    ota_test_msg_free(m);
    assert_null(ota_test_client_expect(c, NULL, 200));
    /* An invalid filter is refused before it is sent. */
    assert_int_equal(ota_test_client_subscribe(c, "bad/#/filter", 0), -1);
    ota_test_client_disconnect(c);

    /* A data folder set up already starts again on its own port; it stays. */
    int port = b.port;
    ota_test_broker_stop(&b);
    assert_int_equal(ota_test_broker_start(&b, data), 0);
    assert_int_equal(b.port, port);
    c = ota_test_thing_connect(&b, "t1");
    assert_non_null(c);
    ota_test_client_disconnect(c);
    ota_test_broker_stop(&b);
    assert_int_equal(access(conf, F_OK), 0);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", data);
    assert_int_equal(system(cmd), 0);
}

/* A folder left by a test that was killed is removed by the next broker start. */
static void test_stale_broker_dir_removed(void **state)
{
    (void)state;
    char stale[] = "/tmp/otter-broker-XXXXXX";
    char path[64];
    assert_non_null(mkdtemp(stale));
    pid_t gone = fork();
    if (gone == 0) {
        _exit(0);
    }
    waitpid(gone, NULL, 0);
    snprintf(path, sizeof(path), "%s/owner", stale);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%ld\n", (long)gone);
    fclose(f);
    ota_test_broker_t b;
    assert_int_equal(ota_test_broker_start(&b, NULL), 0);
    assert_int_equal(access(stale, F_OK), -1);
    /* Our own running broker's folder is not touched by another start. */
    ota_test_broker_t b2;
    assert_int_equal(ota_test_broker_start(&b2, NULL), 0);
    assert_int_equal(access(b.dir, F_OK), 0);
    ota_test_broker_stop(&b2);
    ota_test_broker_stop(&b);
}

static void test_client_disconnect_while_broker_down(void **state)
{
    (void)state;
    ota_test_broker_t b;
    assert_int_equal(ota_test_broker_start(&b, NULL), 0);
    ota_test_client_t *c = ota_test_thing_connect(&b, "t1");
    assert_non_null(c);
    ota_test_proc_kill(&b.proc);
    for (int i = 0; i < 200 && ota_test_client_connected(c); i++) {
        usleep(10000);
    }
    assert_false(ota_test_client_connected(c));
    ota_test_client_disconnect(c);
    ota_test_broker_stop(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ports),
        cmocka_unit_test(test_proc_exit_codes),
        cmocka_unit_test(test_proc_cleanup_on_exit),
        cmocka_unit_test(test_proc_cleanup_on_abort),
        cmocka_unit_test(test_proc_cleanup_on_sigterm),
        cmocka_unit_test(test_proc_cleanup_on_sigint),
        cmocka_unit_test(test_proc_cleanup_on_sigkill),
        cmocka_unit_test(test_proc_cleanup_on_quick_exit),
        cmocka_unit_test(test_broker_round_trip),
        cmocka_unit_test(test_broker_shipped_config),
        cmocka_unit_test(test_stale_broker_dir_removed),
        cmocka_unit_test(test_client_disconnect_while_broker_down),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
