/*
 * One otter-service process per client id on a data folder: the lock is
 * refused to a second holder (another process: the lock is per process) and
 * freed when its holder ends; the takeover watch reports a run of connections
 * closed right after they were made, once, and forgets it after one that lasted.
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
#include <sys/wait.h>
#include <unistd.h>

#include "ota_svc_instance_lock.h"
#include "ota_test_util.h"

static char g_dir[64];

/* Tries the lock in a child process; returns what ota_svc_instance_lock returned there (as
 * 0 for a descriptor, 1 for -1, 2 for -2) and its message in err. */
static int lock_in_child(const char *client_id, char *err, size_t cap)
{
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char msg[640] = "";
        int fd = ota_svc_instance_lock(g_dir, client_id, msg, sizeof msg);
        if (write(pipefd[1], msg, strlen(msg)) < 0) {
            _exit(9);
        }
        _exit(fd >= 0 ? 0 : fd == -1 ? 1 : 2);
    }
    close(pipefd[1]);
    ssize_t n = read(pipefd[0], err, cap - 1);
    err[n > 0 ? n : 0] = '\0';
    close(pipefd[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void test_second_process_is_refused(void **state)
{
    (void)state;
    char err[640];
    int fd = ota_svc_instance_lock(g_dir, "otter-service", err, sizeof err);
    assert_true(fd >= 0);
    /* another process, same client id: refused, with this process's pid and the way out */
    assert_int_equal(lock_in_child("otter-service", err, sizeof err), 1);
    char pid[32];
    snprintf(pid, sizeof pid, "pid %ld", (long)getpid());
    assert_non_null(strstr(err, pid));
    assert_non_null(strstr(err, "--instance NAME"));
    /* another client id: its own lock */
    assert_int_equal(lock_in_child("otter-service-blue", err, sizeof err), 0);
    /* the holder ends (here: closes): the next one gets it */
    close(fd);
    assert_int_equal(lock_in_child("otter-service", err, sizeof err), 0);
}

static void test_odd_client_ids_stay_in_the_folder(void **state)
{
    (void)state;
    char err[640], path[256];
    int fd = ota_svc_instance_lock(g_dir, "../x/y", err, sizeof err);
    assert_true(fd >= 0);
    snprintf(path, sizeof path, "%s/run/_._x_y.lock", g_dir);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    close(fd);
}

static void test_unwritable_folder_is_an_error(void **state)
{
    (void)state;
    char err[640];
    assert_int_equal(ota_svc_instance_lock("/proc/nonexistent-otter", "s", err, sizeof err), -2);
    assert_non_null(strstr(err, "cannot create"));
}

static void test_takeover_hint_once_per_run(void **state)
{
    (void)state;
    ota_svc_takeover_t t;
    ota_svc_takeover_init(&t);
    /* a lost attempt that never connected is no takeover */
    assert_int_equal(ota_svc_takeover_lost(&t, 100), 0);
    int64_t now = 1000;
    int hints = 0;
    for (unsigned i = 0; i < 2u * OTA_SVC_TAKEOVER_COUNT; i++) {
        ota_svc_takeover_connected(&t, now);
        now += 900; /* closed again within a second, as by a second process */
        hints += ota_svc_takeover_lost(&t, now);
        if (i + 1u == OTA_SVC_TAKEOVER_COUNT) {
            assert_int_equal(hints, 1); /* at the third short-lived connection */
        }
        now += 1000;
    }
    assert_int_equal(hints, 1); /* once, not at every further loss */
    /* a connection that lasts starts the count again */
    ota_svc_takeover_connected(&t, now);
    now += OTA_SVC_TAKEOVER_MS;
    assert_int_equal(ota_svc_takeover_lost(&t, now), 0);
    for (unsigned i = 0; i < OTA_SVC_TAKEOVER_COUNT; i++) {
        ota_svc_takeover_connected(&t, now);
        now += 10;
        hints += ota_svc_takeover_lost(&t, now);
    }
    assert_int_equal(hints, 2);
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/otter-lock-XXXXXX");
    return mkdtemp(g_dir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    ota_test_rm_tree(g_dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_process_is_refused),
        cmocka_unit_test(test_odd_client_ids_stay_in_the_folder),
        cmocka_unit_test(test_unwritable_folder_is_an_error),
        cmocka_unit_test(test_takeover_hint_once_per_run),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
