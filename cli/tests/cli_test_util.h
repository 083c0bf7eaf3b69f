/*
 * otter CLI tests: running the otter binary in a fresh folder and checking
 * what it printed.
 *
 * OTTER_BIN (a string literal, set by CMake) is the binary under test.
 */
#ifndef CLI_TEST_UTIL_H
#define CLI_TEST_UTIL_H

#include <stddef.h>
#include <sys/types.h>

/** What one run of the CLI produced. */
typedef struct cli_run {
    /** Exit code (0..255), or 128 + signal. */
    int code;
    /** Everything written on stdout, NUL-terminated. */
    char out[65536];
    /** Everything written on stderr, NUL-terminated. */
    char err[16384];
} cli_run_t;

/**
 * Make a fresh temporary folder for one test; its "data" subfolder is the
 * CLI's --data-dir.
 * @return 0, or -1 on failure.
 */
int cli_test_begin(void);

/** Remove the test's folder and everything in it. */
void cli_test_end(void);

/** The test's folder (absolute). */
const char *cli_test_dir(void);

/** The test's data folder (cli_test_dir()/data). */
const char *cli_test_data(void);

/**
 * Format a path inside the test's folder into a static rotating buffer
 * (valid for the next 63 calls).
 */
const char *cli_test_path(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/**
 * Run `otter --data-dir <data> args...` (NULL-terminated) and collect its
 * exit code and output.
 * @return r->code.
 */
int cli_test_run(cli_run_t *r, ...);

/**
 * Run `otter --data-dir <data> argv...` with an argument array.
 * @return r->code.
 */
int cli_test_runv(cli_run_t *r, const char *const *argv);

/**
 * Start `otter --data-dir <data> argv...` without waiting; its stdout goes to
 * out_path, stderr to err_path.
 * @return the child's pid, or -1.
 */
pid_t cli_test_spawn(const char *const *argv, const char *out_path, const char *err_path);

/**
 * Wait for a spawned child, killing it after timeout_ms.
 * @return its exit code, 128 + signal, or -1 when it had to be killed.
 */
int cli_test_wait(pid_t pid, int timeout_ms);

/**
 * Whether stderr holds exactly one line "otter: error: <what>; <what to do>".
 * @return 1 when it does, 0 otherwise (and prints what it saw).
 */
int cli_test_one_error_line(const cli_run_t *r);

/** cmocka setup and teardown around cli_test_begin() and cli_test_end(). */
int cli_test_setup(void **state);
int cli_test_teardown(void **state);

/**
 * Whether a run ended with exit code want and, when want is not 0, with one
 * error line on stderr; prints what it saw when not.
 */
int cli_test_exit_is(const cli_run_t *r, int code, int want);

/**
 * Wait until a line of a file holds both texts (b may be NULL).
 * @return 0 when found; -1 after timeout_ms.
 */
int cli_test_wait_line(const char *path, const char *a, const char *b, int timeout_ms);

/**
 * Write bytes to a new file (replacing any).
 * @return 0, or -1.
 */
int cli_test_write(const char *path, const void *data, size_t len);

/**
 * Read a whole file into a heap buffer (NUL-terminated); caller frees.
 * @return the buffer, or NULL.
 */
unsigned char *cli_test_read(const char *path, size_t *len);

/**
 * Run a shell command line quietly (output discarded).
 * @return its exit code, or -1.
 */
int cli_test_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* CLI_TEST_UTIL_H */
