/*
 * otter: every translation unit of the device libraries, built with a
 * configuration unlike the defaults (ota_test_config.h), agrees on the size of
 * every public struct, and the configuration reached every unit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ota_config_probe_entry.h"
#include "ota_config_probe_list.h"

#include "otter/ota_agent.h"

#define units ota_probe_units
#define UNIT_COUNT (sizeof units / sizeof units[0])

/* This test's own view, built with the same configuration. */
#define OTA_PROBE_NAME ota_probe_test_config_sizes
#include "ota_config_probe.h"

static void test_every_unit_agrees_on_every_struct(void **state)
{
    int bad = 0;
    size_t types = 0;
    (void)state;
    for (const ota_probe_entry_t *e = ota_probe_test_config_sizes; e->type != NULL; e++) {
        types++;
        for (size_t u = 0; u < UNIT_COUNT; u++) {
            const ota_probe_entry_t *t = &units[u].table[e - ota_probe_test_config_sizes];
            assert_string_equal(t->type, e->type);
            if (t->size != e->size) {
                print_error("%s: sizeof(%s) is %u, elsewhere %u\n", units[u].name, e->type,
                            (unsigned)t->size, (unsigned)e->size);
                bad++;
            }
        }
    }
    printf("config sizes: %zu units agree on %zu public structs (OTA_CONFIG_FILE=%s)\n", UNIT_COUNT,
           types, OTA_CONFIG_FILE);
    assert_int_equal(bad, 0);
}

static void test_the_configuration_took_effect(void **state)
{
    ota_job_t job;
    (void)state;
    /* Every size knob differs from its default, and shows in the structs. */
    assert_int_equal(OTA_PAL_SIGNATURE_MAX, 384);
    assert_int_equal(sizeof job.signature, 384);
    assert_int_equal(sizeof job.job_id, 128 + 1);
    assert_int_equal(sizeof job.stream, 100 + 1);
    assert_int_equal(sizeof job.file_path, 200 + 1);
    assert_int_equal(sizeof job.cert_name, 90 + 1);
    assert_int_equal(OTA_MAX_FILE_BLOCKS, 8192);
    assert_int_equal(OTA_MESSAGE_BUFFER_SIZE, 600);
    assert_int_equal(OTA_THING_NAME_MAX, 40);
    assert_int_equal(OTA_BOOT_READ_ATTEMPTS, 5);
    assert_int_equal(OTA_VERIFY_MAX_PEM_LEN, 6000);
    assert_int_equal(OTA_PORT_POSIX_PATH_MAX, 400);
    assert_int_equal(OTA_PORT_POSIX_PROGRESS_CAPACITY, 20000);
    assert_int_equal(OTA_PORT_POSIX_CHUNK, 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_unit_agrees_on_every_struct),
        cmocka_unit_test(test_the_configuration_took_effect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
