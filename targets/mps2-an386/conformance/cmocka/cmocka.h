/*
 * otter on mps2-an386: the part of cmocka's API the conformance suite uses,
 * for the board (cmocka is a host library). A failed assertion prints where
 * and why and leaves the test through longjmp; the runner prints cmocka's
 * lines ([ RUN ], [ OK ], [ FAILED ]) and returns the number of failures.
 */
#ifndef BOARD_CMOCKA_H
#define BOARD_CMOCKA_H

#include <stddef.h>
#include <string.h>

typedef void (*CMUnitTestFunction)(void **state);
typedef int (*CMFixtureFunction)(void **state);

/** One test: its function, its fixture, its initial state. */
struct CMUnitTest {
    const char *name;
    CMUnitTestFunction test_func;
    CMFixtureFunction setup_func;
    CMFixtureFunction teardown_func;
    void *initial_state;
};

#define cmocka_unit_test(f)                                                                        \
    {                                                                                              \
#f, f, NULL, NULL, NULL                                                                    \
    }
#define cmocka_unit_test_setup_teardown(f, setup, teardown)                                        \
    {                                                                                              \
#f, f, setup, teardown, NULL                                                               \
    }

/** Run count tests as a group; the number of tests that failed. */
int _cmocka_run_group_tests(const char *group_name, const struct CMUnitTest *tests, size_t count,
                            CMFixtureFunction group_setup, CMFixtureFunction group_teardown);

#define cmocka_run_group_tests_name(name, tests, setup, teardown)                                  \
    _cmocka_run_group_tests(name, tests, sizeof(tests) / sizeof((tests)[0]), setup, teardown)
#define cmocka_run_group_tests(tests, setup, teardown)                                             \
    _cmocka_run_group_tests(#tests, tests, sizeof(tests) / sizeof((tests)[0]), setup, teardown)

/** Report a failed check and leave the test. */
void board_cmocka_fail(const char *file, int line, const char *what, long a, long b)
    __attribute__((noreturn));

#define assert_true(c)                                                                             \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            board_cmocka_fail(__FILE__, __LINE__, #c, 0, 0);                                       \
        }                                                                                          \
    } while (0)
#define assert_false(c) assert_true(!(c))
#define assert_non_null(p) assert_true((p) != NULL)
#define assert_null(p) assert_true((p) == NULL)
#define assert_int_equal(x, y)                                                                     \
    do {                                                                                           \
        long x_ = (long)(x), y_ = (long)(y);                                                       \
        if (x_ != y_) {                                                                            \
            board_cmocka_fail(__FILE__, __LINE__, #x " == " #y, x_, y_);                           \
        }                                                                                          \
    } while (0)
#define assert_int_not_equal(x, y) assert_true((long)(x) != (long)(y))
#define assert_memory_equal(x, y, n) assert_true(memcmp((x), (y), (n)) == 0)
#define assert_string_equal(x, y) assert_true(strcmp((x), (y)) == 0)
#define fail_msg(...) board_cmocka_fail(__FILE__, __LINE__, "fail_msg", 0, 0)

#endif /* BOARD_CMOCKA_H */
