/*
 * Two otter-service instances share the stream load: 60 devices fetch a
 * 256 KiB file, every byte verified, each instance's own count of served
 * requests (its final stats line) is above zero and every request was
 * answered by exactly one instance.
 *
 * Two ways to share:
 * - the MQTT shared subscription $share/otter-streams/... (the default), when
 *   the broker delivers shared subscriptions on $aws topics. Mosquitto 2.0.11
 *   (Debian 12) does not; on such a broker the case checks instead that one
 *   instance in the default mode notices it, says so in its log, falls back to
 *   a plain subscription and serves every device;
 * - --shard 0/2 and --shard 1/2: plain subscriptions, each instance answers the
 *   things whose name hashes to its shard (works on every broker).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ota_svc_test_fixture.h"
#include "ota_test_net.h"

#define DEVICES 60
#define FILE_SIZE (256u * 1024u)
#define BLOCK 4096u
#define WINDOW 8u

/* Whether the broker delivers a $share subscription on a $aws topic. */
static int broker_shares_aws_topics(const ota_test_broker_t *b)
{
    ota_test_login_t l;
    ota_test_client_t *c = ota_test_service_login(b, &l) == 0
                               ? ota_test_client_connect(b->port, NULL, l.username, l.password)
                               : NULL;
    int ok = 0;
    if (c == NULL) {
        return 0;
    }
    if (ota_test_client_subscribe(c, "$share/probe/$aws/things/t/streams/s/probe", 0) == 0 &&
        ota_test_client_publish(c, "$aws/things/t/streams/s/probe", "x", 1, 0) == 0) {
        ota_test_msg_t *m = ota_test_client_expect(c, NULL, 1000);
        ok = m != NULL;
        ota_test_msg_free(m);
    }
    ota_test_client_disconnect(c);
    return ok;
}

static void run_two(const char *const *args0, const char *const *args1, const char *mode)
{
    svc_fx_t fx;
    svc_fleet_result_t r;
    assert_int_equal(svc_fx_setup(&fx, FILE_SIZE, DEVICES), 0);
    if (svc_fx_start_service(&fx, args0) != 0 || svc_fx_start_service(&fx, args1) != 1) {
        svc_fx_teardown(&fx);
        fail_msg("otter-service did not start");
    }
    int rc = svc_fleet_run(&fx, DEVICES, 2, BLOCK, WINDOW, 50000, &r);
    int s0 = svc_fx_stop_service(&fx, 0);
    int s1 = svc_fx_stop_service(&fx, 1);
    long long req0 = svc_fx_log_stat(&fx, 0, "stream_requests");
    long long req1 = svc_fx_log_stat(&fx, 1, "stream_requests");
    long long blk0 = svc_fx_log_stat(&fx, 0, "blocks");
    long long blk1 = svc_fx_log_stat(&fx, 1, "blocks");
    printf("streams share (%s): %d of %d devices completed in %.2f s; %llu requests sent; "
           "svc-0 (role all) served %lld requests / %lld blocks, svc-1 (role streams) "
           "%lld / %lld\n",
           mode, r.completed, DEVICES, r.seconds, (unsigned long long)r.requests, req0, blk0, req1,
           blk1);
    if (rc != 0 || req0 <= 0 || req1 <= 0 || req0 + req1 != (long long)r.requests) {
        svc_fx_dump_log(&fx, 0);
        svc_fx_dump_log(&fx, 1);
    }
    svc_fx_teardown(&fx);
    assert_int_equal(rc, 0);
    assert_int_equal(r.completed, DEVICES);
    assert_int_equal(s0, 0);
    assert_int_equal(s1, 0);
    assert_true(req0 > 0);
    assert_true(req1 > 0);
    /* Each request went to exactly one instance. */
    assert_int_equal(req0 + req1, (long long)r.requests);
}

static void test_shared_subscription(void **state)
{
    (void)state;
    ota_test_broker_t b;
    assert_int_equal(ota_test_broker_start(&b, NULL), 0);
    int shares = broker_shares_aws_topics(&b);
    ota_test_broker_stop(&b);
    if (!shares) {
        svc_fx_t fx;
        svc_fleet_result_t r;
        char line[4096];
        int warned = 0;
        FILE *log;
        assert_int_equal(svc_fx_setup(&fx, FILE_SIZE, DEVICES), 0);
        if (svc_fx_start_service(&fx, NULL) != 0) {
            svc_fx_teardown(&fx);
            fail_msg("otter-service did not start");
        }
        int rc = svc_fleet_run(&fx, DEVICES, 2, BLOCK, WINDOW, 50000, &r);
        int s0 = svc_fx_stop_service(&fx, 0);
        log = fopen(fx.svc_log[0], "r");
        while (log != NULL && fgets(line, sizeof line, log) != NULL) {
            warned |= strstr(line, "split the load with --shard") != NULL;
        }
        if (log != NULL) {
            fclose(log);
        }
        printf("streams share ($share/otter-streams): this broker does not deliver shared "
               "subscriptions on $aws topics; the service noticed (%s) and served %d of %d "
               "devices on a plain subscription\n",
               warned ? "logged" : "NOT logged", r.completed, DEVICES);
        if (rc != 0 || !warned) {
            svc_fx_dump_log(&fx, 0);
        }
        svc_fx_teardown(&fx);
        assert_int_equal(rc, 0);
        assert_int_equal(s0, 0);
        assert_int_equal(r.completed, DEVICES);
        assert_true(warned);
        return;
    }
    static const char *const a0[] = {NULL};
    static const char *const a1[] = {"--role", "streams", NULL};
    run_two(a0, a1, "$share/otter-streams");
}

static void test_shards(void **state)
{
    (void)state;
    static const char *const a0[] = {"--shard", "0/2", NULL};
    static const char *const a1[] = {"--role", "streams", "--shard", "1/2", NULL};
    run_two(a0, a1, "--shard K/2");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_subscription),
        cmocka_unit_test(test_shards),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
