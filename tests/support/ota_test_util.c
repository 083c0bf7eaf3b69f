/* otter TEST SUPPORT: helpers every host test shares. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ota_test_util.h"

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void ota_test_rm_tree(const char *dir)
{
    if (dir != NULL && dir[0] != '\0') {
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
}

cbor_item_t *ota_test_map_get(cbor_item_t *map, const char *key)
{
    struct cbor_pair *p = cbor_map_handle(map);
    size_t n = strlen(key);
    for (size_t i = 0; i < cbor_map_size(map); i++) {
        if (cbor_isa_string(p[i].key) && cbor_string_length(p[i].key) == n &&
            memcmp(cbor_string_handle(p[i].key), key, n) == 0) {
            return p[i].value;
        }
    }
    return NULL;
}

int ota_test_run(const struct CMUnitTest *tests, size_t count, int argc, char **argv)
{
    static char filter[128];
    if (argc > 1) {
        int n = snprintf(filter, sizeof filter, "test_%s", argv[1]);
        if (n < 0 || (size_t)n >= sizeof filter) {
            fprintf(stderr, "unknown test %s\n", argv[1]);
            return 2;
        }
        cmocka_set_test_filter(filter);
    }
    return _cmocka_run_group_tests("tests", tests, count, NULL, NULL);
}
