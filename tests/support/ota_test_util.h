/*
 * otter TEST SUPPORT: small helpers every host test shares (removing a
 * temporary folder, a CBOR map lookup, a test program's main that runs one
 * test by name). Include <cmocka.h> (after its usual headers) before this
 * header to get ota_test_main.
 */
#ifndef OTA_TEST_UTIL_H
#define OTA_TEST_UTIL_H

#include <stddef.h>

#include <cbor.h>

/** Remove dir and everything under it (no symlink is followed); nothing for "" or NULL. */
void ota_test_rm_tree(const char *dir);

/** The value of the text key key in the CBOR map map, or NULL. */
cbor_item_t *ota_test_map_get(cbor_item_t *map, const char *key);

#ifdef cmocka_unit_test
/**
 * Run the tests, or with a first argument NAME only the test `test_NAME`.
 * @return cmocka's result: the number of failed tests; 2 for a name too long.
 */
int ota_test_run(const struct CMUnitTest *tests, size_t count, int argc, char **argv);

/** ota_test_run over a whole array. */
#define ota_test_main(tests, argc, argv)                                                           \
    ota_test_run((tests), sizeof(tests) / sizeof((tests)[0]), (argc), (argv))
#endif

#endif /* OTA_TEST_UTIL_H */
