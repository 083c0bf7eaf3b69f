/*
 * Unit tests of the console's accounts (ota_web_users) and sessions and
 * throttling (ota_web_sessions), with the clock driven by the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ota_web_sessions.h"
#include "ota_web_users.h"

static char g_dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/otter-web-unit-XXXXXX");
    return mkdtemp(g_dir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_accounts(void **state)
{
    (void)state;
    char err[256];
    ota_web_role_t role = OTA_WEB_ROLE_NONE;
    assert_int_equal(ota_web_user_add(g_dir, "alice", OTA_WEB_ROLE_OPERATOR, "correct-horse-1", 0,
                                      err, sizeof err),
                     0);
    assert_int_equal(ota_web_user_verify(g_dir, "alice", "correct-horse-1", &role), 1);
    assert_int_equal(role, OTA_WEB_ROLE_OPERATOR);
    assert_int_equal(ota_web_user_verify(g_dir, "alice", "correct-horse-2", &role), 0);
    assert_int_equal(ota_web_user_verify(g_dir, "nobody", "correct-horse-1", &role), 0);
    assert_int_equal(ota_web_user_role(g_dir, "alice"), OTA_WEB_ROLE_OPERATOR);

    /* The file: 0600, the hash and a salt, never the password. */
    char path[128];
    snprintf(path, sizeof path, "%s/web/users", g_dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[512] = "";
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_null(strstr(line, "correct-horse"));
    assert_non_null(strstr(line, "alice operator pbkdf2-sha256 310000 "));

    /* Two accounts with one password get different hashes (salts). */
    assert_int_equal(
        ota_web_user_add(g_dir, "bob", OTA_WEB_ROLE_VIEWER, "correct-horse-1", 0, err, sizeof err),
        0);
    f = fopen(path, "r");
    char l1[512], l2[512];
    assert_non_null(fgets(l1, sizeof l1, f));
    assert_non_null(fgets(l2, sizeof l2, f));
    fclose(f);
    assert_string_not_equal(strrchr(l1, ' '), strrchr(l2, ' '));

    /* Refusals change nothing. */
    assert_int_equal(
        ota_web_user_add(g_dir, "alice", OTA_WEB_ROLE_VIEWER, "another-pass-1", 0, err, sizeof err),
        -1);
    assert_non_null(strstr(err, "--replace"));
    assert_int_equal(ota_web_user_add(g_dir, "bad name", OTA_WEB_ROLE_VIEWER, "another-pass-1", 0,
                                      err, sizeof err),
                     -1);
    assert_int_equal(
        ota_web_user_add(g_dir, "carol", OTA_WEB_ROLE_VIEWER, "short", 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "10 to 256"));
    assert_int_equal(ota_web_user_role(g_dir, "alice"), OTA_WEB_ROLE_OPERATOR);
    assert_int_equal(ota_web_user_role(g_dir, "carol"), OTA_WEB_ROLE_NONE);

    /* Replace, then remove. */
    assert_int_equal(
        ota_web_user_add(g_dir, "alice", OTA_WEB_ROLE_VIEWER, "another-pass-1", 1, err, sizeof err),
        0);
    assert_int_equal(ota_web_user_verify(g_dir, "alice", "correct-horse-1", &role), 0);
    assert_int_equal(ota_web_user_verify(g_dir, "alice", "another-pass-1", &role), 1);
    assert_int_equal(role, OTA_WEB_ROLE_VIEWER);
    assert_int_equal(ota_web_user_remove(g_dir, "alice", err, sizeof err), 0);
    assert_int_equal(ota_web_user_verify(g_dir, "alice", "another-pass-1", &role), 0);
    assert_int_equal(ota_web_user_remove(g_dir, "alice", err, sizeof err), -1);
    assert_int_equal(ota_web_user_role(g_dir, "bob"), OTA_WEB_ROLE_VIEWER);
}

static void test_sessions_expire(void **state)
{
    (void)state;
    ota_web_sessions_t *s = ota_web_sessions_new();
    assert_non_null(s);
    ota_web_session_t a, b, got;
    const int64_t t0 = 1000000;
    assert_int_equal(ota_web_session_start(s, "alice", OTA_WEB_ROLE_OPERATOR, t0, &a), 0);
    assert_int_equal(ota_web_session_start(s, "bob", OTA_WEB_ROLE_VIEWER, t0, &b), 0);
    assert_int_equal(strlen(a.token), OTA_WEB_TOKEN_LEN);
    assert_string_not_equal(a.token, b.token);
    assert_string_not_equal(a.token, a.csrf);
    assert_int_equal(ota_web_session_find(s, a.token, t0 + 1, &got), 0);
    assert_string_equal(got.user, "alice");
    assert_string_equal(got.csrf, a.csrf);
    /* Wrong, short and empty tokens. */
    char wrong[OTA_WEB_TOKEN_LEN + 1];
    memcpy(wrong, a.token, sizeof wrong);
    wrong[10] = wrong[10] == '0' ? '1' : '0';
    assert_int_equal(ota_web_session_find(s, wrong, t0 + 1, &got), -1);
    assert_int_equal(ota_web_session_find(s, "abc", t0 + 1, &got), -1);
    assert_int_equal(ota_web_session_find(s, "", t0 + 1, &got), -1);
    /* Used within the idle time: lives on; idle too long: gone. */
    int64_t t = t0;
    const int64_t step = OTA_WEB_SESSION_IDLE_MS - 1000;
    while (t + step - t0 <= OTA_WEB_SESSION_MAX_MS) {
        t += step;
        assert_int_equal(ota_web_session_find(s, a.token, t, &got), 0);
    }
    assert_int_equal(ota_web_session_alive(s, b.token, t), 0);
    /* ... but never beyond the maximum age. */
    t += step;
    assert_int_equal(ota_web_session_find(s, a.token, t, &got), -1);
    /* Logout. */
    ota_web_session_t c;
    assert_int_equal(ota_web_session_start(s, "carol", OTA_WEB_ROLE_VIEWER, t, &c), 0);
    assert_int_equal(ota_web_session_alive(s, c.token, t), 1);
    ota_web_session_end(s, c.token);
    assert_int_equal(ota_web_session_alive(s, c.token, t), 0);
    ota_web_sessions_free(s);
}

static void test_throttle(void **state)
{
    (void)state;
    ota_web_sessions_t *s = ota_web_sessions_new();
    unsigned wait = 0;
    int64_t t = 5000000;
    for (int i = 0; i < OTA_WEB_THROTTLE_FREE; i++) {
        assert_int_equal(ota_web_throttle_allow(s, "user:x", t, &wait), 1);
        ota_web_throttle_failed(s, "user:x", t);
    }
    /* 1 s, then 2, 4, 8 ... after each further failure. */
    unsigned expect = 1;
    for (int i = 0; i < 8; i++) {
        assert_int_equal(ota_web_throttle_allow(s, "user:x", t, &wait), 0);
        assert_int_equal(wait, expect);
        assert_int_equal(ota_web_throttle_allow(s, "user:x", t + expect * 1000 - 1, &wait), 0);
        t += expect * 1000;
        assert_int_equal(ota_web_throttle_allow(s, "user:x", t, &wait), 1);
        ota_web_throttle_failed(s, "user:x", t);
        expect *= 2;
    }
    /* Other keys are not affected; an address has more free attempts. */
    assert_int_equal(ota_web_throttle_allow(s, "user:y", t, &wait), 1);
    for (int i = 0; i < OTA_WEB_THROTTLE_FREE_ADDR; i++) {
        assert_int_equal(ota_web_throttle_allow(s, "addr:10.0.0.1", t, &wait), 1);
        ota_web_throttle_failed(s, "addr:10.0.0.1", t);
    }
    assert_int_equal(ota_web_throttle_allow(s, "addr:10.0.0.1", t, &wait), 0);
    /* The wait is bounded. */
    for (int i = 0; i < 40; i++) {
        ota_web_throttle_failed(s, "user:z", t);
    }
    assert_int_equal(ota_web_throttle_allow(s, "user:z", t, &wait), 0);
    assert_int_equal(wait, OTA_WEB_THROTTLE_MAX_S);
    /* Success clears. */
    ota_web_throttle_clear(s, "user:x");
    assert_int_equal(ota_web_throttle_allow(s, "user:x", t, &wait), 1);
    ota_web_sessions_free(s);
}

/* Attempts sent at once: each counts before its password is checked, so no more than the
 * free attempts are checked, and past them one at a time. */
static void test_throttle_in_flight(void **state)
{
    (void)state;
    ota_web_sessions_t *s = ota_web_sessions_new();
    unsigned wait = 0;
    int64_t t = 7000000;
    for (int i = 0; i < OTA_WEB_THROTTLE_FREE; i++) {
        assert_int_equal(ota_web_throttle_begin(s, "user:r", t, &wait), 1);
    }
    assert_int_equal(ota_web_throttle_begin(s, "user:r", t, &wait), 0);
    assert_int_equal(wait, 1);
    assert_int_equal(ota_web_throttle_allow(s, "user:r", t, &wait), 0);
    /* A success gives its attempt back (and clears the failures). */
    ota_web_throttle_clear(s, "user:r");
    assert_int_equal(ota_web_throttle_begin(s, "user:r", t, &wait), 1);
    assert_int_equal(ota_web_throttle_begin(s, "user:r", t, &wait), 0);
    /* An attempt not checked (refused later) gives it back too. */
    ota_web_throttle_end(s, "user:r");
    assert_int_equal(ota_web_throttle_begin(s, "user:r", t, &wait), 1);
    for (int i = 0; i < OTA_WEB_THROTTLE_FREE; i++) {
        ota_web_throttle_failed(s, "user:r", t);
    }
    assert_int_equal(ota_web_throttle_begin(s, "user:r", t + 999, &wait), 0);
    /* Past the free attempts: one at a time, after the wait. */
    t += 1000;
    assert_int_equal(ota_web_throttle_begin(s, "user:r", t, &wait), 1);
    assert_int_equal(ota_web_throttle_begin(s, "user:r", t + 5000, &wait), 0);
    ota_web_throttle_failed(s, "user:r", t + 10);
    assert_int_equal(ota_web_throttle_begin(s, "user:r", t + 1000, &wait), 0);
    assert_int_equal(ota_web_throttle_begin(s, "user:r", t + 2010, &wait), 1);
    ota_web_sessions_free(s);
}

/* Failures are forgotten an hour after the last failure, even when attempts that succeed
 * (which leave an address's count as it is) come from that address in between. */
static void test_throttle_forgets_by_failure(void **state)
{
    (void)state;
    ota_web_sessions_t *s = ota_web_sessions_new();
    unsigned wait = 0;
    const char *k = "addr:10.0.0.9";
    int64_t t = 8000000;
    for (int i = 0; i < OTA_WEB_THROTTLE_FREE_ADDR + 5; i++) {
        ota_web_throttle_failed(s, k, t);
    }
    assert_int_equal(ota_web_throttle_allow(s, k, t, &wait), 0);
    /* Logins that succeed every half hour. */
    for (int i = 1; i <= 3; i++) {
        int64_t at = t + i * 1800LL * 1000 + 1000;
        assert_int_equal(ota_web_throttle_begin(s, k, at, &wait), 1);
        ota_web_throttle_end(s, k);
    }
    /* Over an hour after the last failure: the count starts again. */
    int64_t now = t + 3 * 1800LL * 1000 + 2000;
    ota_web_throttle_failed(s, k, now);
    assert_int_equal(ota_web_throttle_allow(s, k, now, &wait), 1);
    ota_web_sessions_free(s);
}

/* One account keeps at most OTA_WEB_SESSIONS_PER_USER sessions (its own oldest ends), and
 * no login ends another account's session: with the table full, a login is refused. */
static void test_sessions_per_account(void **state)
{
    (void)state;
    ota_web_sessions_t *s = ota_web_sessions_new();
    ota_web_session_t a[OTA_WEB_SESSIONS_PER_USER + 1], x, got;
    int64_t t = 9000000;
    for (int i = 0; i <= OTA_WEB_SESSIONS_PER_USER; i++) {
        assert_int_equal(ota_web_session_start(s, "alice", OTA_WEB_ROLE_VIEWER, t + i, &a[i]), 0);
    }
    t += OTA_WEB_SESSIONS_PER_USER + 1;
    assert_int_equal(ota_web_session_alive(s, a[0].token, t), 0);
    for (int i = 1; i <= OTA_WEB_SESSIONS_PER_USER; i++) {
        assert_int_equal(ota_web_session_alive(s, a[i].token, t), 1);
    }
    /* The least recently used goes, not the first made. */
    assert_int_equal(ota_web_session_find(s, a[1].token, t, &got), 0);
    assert_int_equal(ota_web_session_start(s, "alice", OTA_WEB_ROLE_VIEWER, t, &x), 0);
    assert_int_equal(ota_web_session_alive(s, a[1].token, t), 1);
    assert_int_equal(ota_web_session_alive(s, a[2].token, t), 0);
    /* Fill the table with other accounts' sessions. */
    ota_web_session_t op;
    assert_int_equal(ota_web_session_start(s, "op", OTA_WEB_ROLE_OPERATOR, t, &op), 0);
    char name[32];
    for (int i = 0; i < OTA_WEB_SESSIONS_MAX - OTA_WEB_SESSIONS_PER_USER - 1; i++) {
        snprintf(name, sizeof name, "u%d", i);
        assert_int_equal(ota_web_session_start(s, name, OTA_WEB_ROLE_VIEWER, t + 1, &x), 0);
    }
    assert_int_equal(ota_web_session_start(s, "mallory", OTA_WEB_ROLE_VIEWER, t + 2, &x), -2);
    assert_int_equal(ota_web_session_alive(s, op.token, t + 2), 1);
    /* An account at its cap still logs in, ending its own oldest session. */
    assert_int_equal(ota_web_session_start(s, "alice", OTA_WEB_ROLE_VIEWER, t + 2, &x), 0);
    assert_int_equal(ota_web_session_alive(s, op.token, t + 2), 1);
    /* Ended sessions make room again. */
    ota_web_session_end(s, op.token);
    assert_int_equal(ota_web_session_start(s, "mallory", OTA_WEB_ROLE_VIEWER, t + 3, &x), 0);
    ota_web_sessions_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_accounts, setup, teardown),
        cmocka_unit_test(test_sessions_expire),
        cmocka_unit_test(test_throttle),
        cmocka_unit_test(test_throttle_in_flight),
        cmocka_unit_test(test_throttle_forgets_by_failure),
        cmocka_unit_test(test_sessions_per_account),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
