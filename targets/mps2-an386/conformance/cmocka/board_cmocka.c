/* otter on mps2-an386: the conformance suite's test runner (see cmocka.h). */
#include <setjmp.h>
#include <stdio.h>

#include "cmocka.h"

static jmp_buf g_escape;

void board_cmocka_fail(const char *file, int line, const char *what, long a, long b)
{
    printf("[   LINE   ] --- %s:%d: failed: %s (%ld, %ld)\n", file, line, what, a, b);
    longjmp(g_escape, 1);
}

/* Runs one fixture or test function under the escape; 0 when it passed. */
static int guarded(const struct CMUnitTest *t, void **state, int phase)
{
    if (setjmp(g_escape) != 0) {
        return -1;
    }
    if (phase == 0) {
        return t->setup_func != NULL ? t->setup_func(state) : 0;
    }
    if (phase == 1) {
        t->test_func(state);
        return 0;
    }
    return t->teardown_func != NULL ? t->teardown_func(state) : 0;
}

int _cmocka_run_group_tests(const char *group_name, const struct CMUnitTest *tests, size_t count,
                            CMFixtureFunction group_setup, CMFixtureFunction group_teardown)
{
    int failed = 0;
    void *group_state = NULL;
    printf("[==========] %s: Running %u test(s).\n", group_name, (unsigned)count);
    if (group_setup != NULL && group_setup(&group_state) != 0) {
        printf("[  ERROR   ] %s: group setup failed\n", group_name);
        return (int)count;
    }
    for (size_t i = 0; i < count; i++) {
        const struct CMUnitTest *t = &tests[i];
        void *state = t->initial_state != NULL ? t->initial_state : group_state;
        printf("[ RUN      ] %s\n", t->name);
        int ok = guarded(t, &state, 0) == 0;
        if (ok) {
            ok = guarded(t, &state, 1) == 0;
            ok = guarded(t, &state, 2) == 0 && ok;
        }
        printf(ok ? "[       OK ] %s\n" : "[  FAILED  ] %s\n", t->name);
        failed += ok ? 0 : 1;
    }
    if (group_teardown != NULL) {
        (void)group_teardown(&group_state);
    }
    printf("[==========] %s: %u test(s) run.\n", group_name, (unsigned)count);
    printf(failed == 0 ? "[  PASSED  ] %u test(s).\n" : "[  FAILED  ] %u test(s).\n",
           (unsigned)(failed == 0 ? count : (size_t)failed));
    fflush(stdout);
    return failed;
}
