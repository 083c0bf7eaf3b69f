/*
 * otter device lifecycle on the mutual-TLS broker `otter broker init --tls`
 * sets up (real Mosquitto, real otter-service, certificates from
 * `otter thing create`): a connected thing is disabled (session ended,
 * certificate refused), enabled again, its key and certificate rotated (the
 * old certificate refused, the new one accepted) and deleted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ota_test_net.h"
#include "security_util.h"

static sec_world_t g;
static ota_test_login_t g_logins[2];

static int setup(void **state)
{
    static const char *const tls[] = {"--tls", NULL};
    static const char *const things[] = {"A", "B", NULL};
    *state = &g;
    return sec_world_start(&g, tls, things, g_logins);
}

/* Runs `otter thing VERB A [more]`; returns its exit code. */
static int otter_thing(const char *verb, const char *more)
{
    const char *const args[] = {"thing", verb, "A", more, NULL};
    char log[600];
    snprintf(log, sizeof log, "%s/otter-cli.log", g.broker.dir);
    int rc = ota_test_otter(g.broker.dir, args, log);
    if (rc != 0) {
        char line[512];
        FILE *f = fopen(log, "r");
        while (f && fgets(line, sizeof line, f)) {
            fputs(line, stderr);
        }
        if (f) {
            fclose(f);
        }
    }
    return rc;
}

/* Copies a file (the old certificate and key, kept to try them after rotation). */
static void copy(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
        assert_int_equal(fwrite(buf, 1, n, out), n);
    }
    fclose(in);
    fclose(out);
}

static void test_lifecycle_tls(void **state)
{
    (void)state;
    ota_test_login_t *a_login = &g_logins[0];
    ota_test_client_t *a = ota_test_login_connect(g.broker.port, a_login, NULL);
    assert_non_null(a);
    assert_int_equal(otter_thing("disable", NULL), 0);
    assert_true(sec_dropped(a));
    ota_test_client_disconnect(a);
    assert_null(ota_test_login_connect(g.broker.port, a_login, NULL));
    assert_int_equal(otter_thing("enable", NULL), 0);
    a = ota_test_login_connect(g.broker.port, a_login, NULL);
    assert_non_null(a);

    /* rotate: the old certificate is revoked, sessions on it end, the new one works */
    ota_test_login_t old = *a_login;
    snprintf(old.certfile, sizeof old.certfile, "%s/old-A.crt", g.broker.dir);
    snprintf(old.keyfile, sizeof old.keyfile, "%s/old-A.key", g.broker.dir);
    copy(a_login->certfile, old.certfile);
    copy(a_login->keyfile, old.keyfile);
    assert_int_equal(otter_thing("rotate", NULL), 0);
    assert_true(sec_dropped(a));
    ota_test_client_disconnect(a);
    assert_null(ota_test_login_connect(g.broker.port, &old, NULL));
    a = ota_test_login_connect(g.broker.port, a_login, NULL);
    assert_non_null(a);

    /* delete: the session ends and the new certificate is refused too */
    assert_int_equal(otter_thing("delete", NULL), 0);
    assert_true(sec_dropped(a));
    ota_test_client_disconnect(a);
    assert_null(ota_test_login_connect(g.broker.port, a_login, NULL));
    /* B is untouched */
    ota_test_client_t *b = sec_device(&g, &g_logins[1]);
    assert_non_null(b);
    assert_true(sec_honest_request(b, "B", 0));
    ota_test_client_disconnect(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lifecycle_tls, setup, sec_world_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
