/*
 * The broker plugin's options: Mosquitto gives a plugin only the options after
 * its own plugin line, so a name the plugin does not know is a mistake (a
 * misspelt limit would leave the default in force without a word). The broker
 * must refuse to start, saying which option; a bad value likewise; the options
 * `otter broker init` writes start it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ota_test_loopback.h"
#include "ota_test_net.h"

/* Writes a configuration with one listener and the plugin with options (lines), starts
 * Mosquitto on it and waits up to 5 s: 1 when it accepts connections (it is then
 * stopped), 0 when it exited by itself with an error; the log is read into log. */
static int broker_runs_with(const char *options, char *log, size_t log_cap)
{
    char dir[] = "/tmp/otter-plugin-opts-XXXXXX";
    char conf[128], log_path[128];
    assert_non_null(mkdtemp(dir));
    snprintf(conf, sizeof conf, "%s/mosquitto.conf", dir);
    snprintf(log_path, sizeof log_path, "%s/mosquitto.log", dir);
    int port = ota_test_free_port();
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f, "listener %d 127.0.0.1\nallow_anonymous true\nplugin %s\n%s", port,
            OTA_TEST_PLUGIN_PATH, options);
    fclose(f);

    char *argv[] = {(char *)OTA_TEST_MOSQUITTO_PATH, (char *)"-c", conf, NULL};
    ota_test_proc_t p;
    assert_int_equal(ota_test_proc_start(&p, "mosquitto", argv, log_path), 0);
    int runs = 0, status = -1;
    for (int waited = 0; waited < 5000 && !runs; waited += 50) {
        if (!ota_test_proc_running(&p, &status)) {
            break; /* exited by itself */
        }
        runs = ota_test_wait_port(port, 50) == 0;
    }
    if (runs) {
        (void)ota_test_proc_stop(&p);
    } else {
        assert_int_equal(ota_test_proc_wait_exit(&p, 5000, &status), 0);
        assert_int_not_equal(status, 0);
    }

    log[0] = '\0';
    f = fopen(log_path, "r");
    if (f != NULL) {
        size_t n = fread(log, 1, log_cap - 1, f);
        log[n] = '\0';
        fclose(f);
    }
    unlink(conf);
    unlink(log_path);
    rmdir(dir);
    return runs;
}

static void test_known_options_start_the_broker(void **state)
{
    (void)state;
    static char log[16384];
    int runs = broker_runs_with("plugin_opt_max_payload 1000\n"
                                "plugin_opt_messages_per_second 10\n"
                                "plugin_opt_message_burst 20\n"
                                "plugin_opt_bytes_per_second 4096\n"
                                "plugin_opt_byte_burst 8192\n"
                                "plugin_opt_exempt_users admin\n"
                                "plugin_opt_exempt_prefix otter-service\n",
                                log, sizeof log);
    if (!runs) {
        fprintf(stderr, "%s", log);
    }
    assert_true(runs);
    /* The limits given are the ones in force. */
    assert_non_null(strstr(log, "at most 1000 bytes, 10/s (burst 20), 4096 bytes/s (burst 8192)"));
}

static void test_unknown_option_stops_the_broker(void **state)
{
    (void)state;
    static char log[16384];
    /* A misspelt rate: the default would have stayed in force. */
    assert_false(broker_runs_with("plugin_opt_max_payload 1000\n"
                                  "plugin_opt_messages_per_sec 10\n",
                                  log, sizeof log));
    assert_non_null(strstr(log, "unknown plugin_opt_messages_per_sec"));
}

static void test_bad_value_stops_the_broker(void **state)
{
    (void)state;
    static char log[16384];
    assert_false(broker_runs_with("plugin_opt_byte_burst -5\n", log, sizeof log));
    assert_non_null(strstr(log, "bad plugin_opt_byte_burst '-5'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_options_start_the_broker),
        cmocka_unit_test(test_unknown_option_stops_the_broker),
        cmocka_unit_test(test_bad_value_stops_the_broker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
