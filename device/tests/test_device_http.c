/*
 * otter: the simulated device's HTTP data plane end to end: Mosquitto,
 * otter-service with --http-url, otter-http and the CLI on free loopback
 * ports; jobs created with --protocols.
 *
 * test_device_http NAME runs one test (update_over_http, update_over_https,
 * http_killed_fails_over,
 * mqtt_stalls_fails_over_to_http, url_key_rotated_renews). OTA_TEST_KEEP=1 keeps the temporary
 * folder.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "device_fixture.h"
#include "ota_test_util.h"

#define WINDOW_BYTES (16u * 4096u)

/* The device's "delivered:" line: bytes of blocks per plane, HTTP answer bytes, duplicates. */
typedef struct delivered {
    unsigned mqtt, http, answers, duplicates, failovers, renewals;
} delivered_t;

static void read_delivered(fixture_t *f, delivered_t *d)
{
    char line[256];
    memset(d, 0, sizeof *d);
    assert_int_equal(dfx_last_after(f->dev_log, 0, "delivered: ", line, sizeof line), 0);
    assert_int_equal(sscanf(line,
                            "mqtt=%u http=%u bytes of blocks; http answers %u bytes; duplicate "
                            "blocks %u; failovers %u; fresh URLs %u",
                            &d->mqtt, &d->http, &d->answers, &d->duplicates, &d->failovers,
                            &d->renewals),
                     6);
    print_message("delivered: mqtt=%u http=%u (answers %u) duplicates=%u failovers=%u\n", d->mqtt,
                  d->http, d->answers, d->duplicates, d->failovers);
}

/* Bytes of the large image as the service streams it (its 32-byte header too). */
static unsigned large_image_bytes(void)
{
    char fw[256];
    dfx_fw_path(fw, sizeof fw, "otter-fw-1.1.0-large");
    return (unsigned)dfx_file_size(fw) + 32u;
}

/* Slows the device's writes so that a download lasts a few seconds. */
static void slow_device(fixture_t *f, unsigned ms)
{
    FILE *fp = fopen(f->config, "a");
    assert_non_null(fp);
    fprintf(fp, "block_delay_ms = %u\n", ms);
    assert_int_equal(fclose(fp), 0);
}

/* Waits until the device console showed `lines` progress lines. */
static void wait_progress(fixture_t *f, int lines)
{
    for (int t = 0; t < 30000 && dfx_log_count(f, "downloading: ") < lines; t += 50) {
        dfx_sleep_ms(50);
    }
    assert_true(dfx_log_count(f, "downloading: ") >= lines);
}

/*
 * A job listing HTTP first: the whole file from url_prefix (as the console
 * names it), nothing over MQTT streams, nothing twice.
 */
static void update_all_over_http(fixture_t *f, const char *job, const char *url_prefix)
{
    char status[32], details[512], test[64];
    delivered_t d;
    dfx_start_device(f, "otter-fw-1.0.0", "1.0.0");
    dfx_expect_running(f, "1.0.0", "A", "committed", 5000);
    dfx_create_job_protocols(f, job, "otter-fw-1.1.0-large", "1.1.0", "HTTP,MQTT");
    dfx_wait_job(f, job, status, sizeof status, details, sizeof details, 60000);
    snprintf(test, sizeof test, "e2e_update_over_%s", f->http_tls ? "https" : "http");
    dfx_report(f, test, "otter-fw-1.1.0-large", dfx_since_s(&f->t_job), status, details);
    assert_string_equal(status, "SUCCEEDED");
    dfx_expect_running(f, "1.1.0", "B", "committed", 5000);
    assert_true(dfx_log_count(f, url_prefix) >= 1);
    assert_int_equal(dfx_log_count(f, "failing over"), 0);
    read_delivered(f, &d);
    assert_int_equal(d.mqtt, 0);
    assert_int_equal(d.http, large_image_bytes());
    assert_int_equal(d.answers, d.http);
    assert_int_equal(d.duplicates, 0);
}

static void test_update_over_http(void **state)
{
    update_all_over_http(*state, "e2e-http", "HTTP data plane: http://127.0.0.1:");
}

/* The same over HTTPS: mbed TLS on the device, the fleet's CA, otter-http --tls. */
static void test_update_over_https(void **state)
{
    update_all_over_http(*state, "e2e-https", "HTTP data plane: https://localhost:");
}

/*
 * otter-http killed mid-download: the agent goes on over MQTT streams from
 * its bitmap; what HTTP had delivered is not fetched again (at most what was
 * in flight: one window).
 */
static void test_http_killed_fails_over(void **state)
{
    fixture_t *f = *state;
    char status[32], details[512];
    delivered_t d;
    slow_device(f, 15);
    dfx_start_device(f, "otter-fw-1.0.0", "1.0.0");
    dfx_expect_running(f, "1.0.0", "A", "committed", 5000);
    dfx_create_job_protocols(f, "e2e-http-kill", "otter-fw-1.1.0-large", "1.1.0", "HTTP,MQTT");
    wait_progress(f, 2);
    dfx_http_kill(f);
    dfx_wait_job(f, "e2e-http-kill", status, sizeof status, details, sizeof details, 60000);
    dfx_report(f, "e2e_http_killed_fails_over", "otter-fw-1.1.0-large", dfx_since_s(&f->t_job),
               status, details);
    assert_string_equal(status, "SUCCEEDED");
    dfx_expect_running(f, "1.1.0", "B", "committed", 5000);
    assert_true(dfx_log_count(f, "data plane failing over") >= 1);
    read_delivered(f, &d);
    assert_true(d.http > 0u);
    assert_true(d.mqtt > 0u);
    assert_int_equal(d.mqtt + d.http, large_image_bytes());
    assert_int_equal(d.failovers, 1);
    /* bytes HTTP carried beyond the blocks it completed: at most what was in flight */
    assert_true(d.answers - d.http <= WINDOW_BYTES);
    assert_true(d.duplicates <= 16u);
}

/*
 * MQTT first, and the stream service goes away mid-download (otter-service
 * killed): after a few timeouts the agent continues over HTTP from its
 * bitmap; the service, started again, confirms the job before activation.
 */
static void test_mqtt_stalls_fails_over_to_http(void **state)
{
    fixture_t *f = *state;
    char status[32], details[512];
    delivered_t d;
    slow_device(f, 40); /* one write per block over MQTT: about 2 s */
    dfx_start_device(f, "otter-fw-1.0.0", "1.0.0");
    dfx_expect_running(f, "1.0.0", "A", "committed", 5000);
    dfx_create_job_protocols(f, "e2e-mqtt-stall", "otter-fw-1.1.0-large", "1.1.0", "MQTT,HTTP");
    wait_progress(f, 2);
    (void)ota_test_proc_kill(&f->svc);
    for (int t = 0; t < 30000 && dfx_log_count(f, "data plane failing over") == 0; t += 50) {
        dfx_sleep_ms(50);
    }
    assert_true(dfx_log_count(f, "data plane failing over") >= 1);
    assert_int_equal(dfx_restart_service(f, 1), 0);
    dfx_wait_job(f, "e2e-mqtt-stall", status, sizeof status, details, sizeof details, 60000);
    dfx_report(f, "e2e_mqtt_stalls_fails_over_to_http", "otter-fw-1.1.0-large",
               dfx_since_s(&f->t_job), status, details);
    assert_string_equal(status, "SUCCEEDED");
    dfx_expect_running(f, "1.1.0", "B", "committed", 5000);
    read_delivered(f, &d);
    assert_true(d.mqtt > 0u);
    assert_true(d.http > 0u);
    assert_int_equal(d.mqtt + d.http, large_image_bytes());
    assert_true(d.failovers >= 1u);
    assert_int_equal(d.answers, d.http); /* HTTP delivered nothing twice */
    assert_true(d.duplicates <= 16u);
}

/*
 * The fleet's URL signing key replaced mid-download of an HTTP-only job
 * (removed, otter-service and otter-http restarted): the device's URL gets
 * 403, it asks for its job again and continues with the fresh URL from its
 * bitmap, all over HTTP.
 */
static void test_url_key_rotated_renews(void **state)
{
    fixture_t *f = *state;
    char status[32], details[512], key[160];
    delivered_t d;
    slow_device(f, 15);
    dfx_start_device(f, "otter-fw-1.0.0", "1.0.0");
    dfx_expect_running(f, "1.0.0", "A", "committed", 5000);
    dfx_create_job_protocols(f, "e2e-http-key", "otter-fw-1.1.0-large", "1.1.0", "HTTP");
    wait_progress(f, 2);
    snprintf(key, sizeof key, "%s/http/url-signing.key", f->dir);
    assert_int_equal(unlink(key), 0);
    assert_int_equal(dfx_restart_service(f, 0), 0); /* makes a new key */
    ota_test_proc_stop(&f->http);
    assert_int_equal(dfx_http_start(f), 0);
    dfx_wait_job(f, "e2e-http-key", status, sizeof status, details, sizeof details, 60000);
    dfx_report(f, "e2e_url_key_rotated_renews", "otter-fw-1.1.0-large", dfx_since_s(&f->t_job),
               status, details);
    assert_string_equal(status, "SUCCEEDED");
    dfx_expect_running(f, "1.1.0", "B", "committed", 5000);
    assert_true(dfx_log_count(f, "fresh URL; continuing") >= 1);
    read_delivered(f, &d);
    assert_int_equal(d.mqtt, 0);
    assert_int_equal(d.http, large_image_bytes());
    assert_true(d.renewals >= 1u);
    assert_int_equal(d.failovers, 0);
    assert_true(d.answers - d.http <= WINDOW_BYTES);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_update_over_http, dfx_setup_http, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_update_over_https, dfx_setup_https, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_http_killed_fails_over, dfx_setup_http, dfx_teardown),
        cmocka_unit_test_setup_teardown(test_mqtt_stalls_fails_over_to_http, dfx_setup_http,
                                        dfx_teardown),
        cmocka_unit_test_setup_teardown(test_url_key_rotated_renews, dfx_setup_http, dfx_teardown),
    };
    return ota_test_main(tests, argc, argv);
}
