/*
 * otter CLI: what every command shares.
 *
 * Error reporting (one line on stderr, "otter: error: <what>; <what to do>"),
 * exit codes, the data folder, option parsing, files, random bytes and base64.
 */
#ifndef CLI_COMMON_H
#define CLI_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/** Exit code: success. */
#define CLI_EXIT_OK 0
/** Exit code: the command ran and failed (missing file, unknown thing ...). */
#define CLI_EXIT_FAIL 1
/** Exit code: the command line itself is wrong (unknown option, bad value). */
#define CLI_EXIT_USAGE 2

/** Longest path the CLI builds. */
#define CLI_PATH_MAX 4096

/** What every command receives besides its own arguments. */
typedef struct cli_ctx {
    /** The data folder (--data-dir, $OTTER_DATA_DIR or ./otter-data). */
    const char *data_dir;
    /** 1 when a list or show command was given --json (taken off its arguments). */
    int json;
} cli_ctx_t;

/** A subcommand's entry point: argv[0] is the subcommand's own name. */
typedef int (*cli_cmd_fn)(const cli_ctx_t *ctx, int argc, char **argv);

/**
 * Print "otter: error: <formatted text>" and a newline on stderr.
 * The text should read "<what went wrong>; <what to do>".
 * @param code the exit code to return.
 * @return code, so that callers can write `return cli_fail(...)`.
 */
int cli_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** One option of a command: its long name, whether it takes a value, and a slot. */
typedef struct cli_opt {
    /** Long name without the dashes, e.g. "out". */
    const char *name;
    /** 1 when the option takes a value ("--out DIR" or "--out=DIR"), 0 for a flag. */
    int has_value;
    /** Receives the value (has_value) or a pointer to "1" (flag); NULL when absent. */
    const char **value;
} cli_opt_t;

/**
 * Parse a command's options and positional arguments.
 *
 * Options may appear anywhere; "--" ends them. "-h" and "--help" set *help.
 * @param argc, argv  the command's arguments, argv[0] being its name.
 * @param opts        table of n_opts options.
 * @param pos         receives up to max_pos positional arguments.
 * @param n_pos       receives how many positional arguments there were.
 * @param help        receives 1 when help was asked for.
 * @return CLI_EXIT_OK, or CLI_EXIT_USAGE after printing the error line
 *         (unknown option, missing value, repeated option, too many arguments).
 */
int cli_parse(int argc, char **argv, const cli_opt_t *opts, size_t n_opts, const char **pos,
              size_t max_pos, size_t *n_pos, int *help);

/**
 * Format a path under the data folder: "<data_dir>/<fmt...>".
 * @return 0, or -1 when it does not fit in cap.
 */
int cli_data_path(const cli_ctx_t *ctx, char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/**
 * Read a whole file into a new heap buffer (NUL-terminated, the NUL not
 * counted in *len). The caller frees *buf.
 * @return 0, or -1 with errno set.
 */
int cli_read_file(const char *path, uint8_t **buf, size_t *len);

/**
 * cli_read_file, or the error line: "<what> 'PATH' is a directory" or
 * "cannot read <what> 'PATH' (reason)".
 * @return CLI_EXIT_OK, or CLI_EXIT_FAIL after printing the error.
 */
int cli_read_input(const char *what, const char *path, uint8_t **buf, size_t *len);

/**
 * Write a new file with the given mode; fails if it exists (O_EXCL).
 * A partly written file is removed.
 * @return 0, or -1 with errno set.
 */
int cli_write_new_file(const char *path, const void *data, size_t len, unsigned mode);

/**
 * Replace a file atomically: write "<path>.tmp" with the mode, fsync, rename.
 * @return 0, or -1 with errno set (the temporary file is removed).
 */
int cli_replace_file(const char *path, const void *data, size_t len, unsigned mode);

/**
 * Create a folder and its parents (mode 0700 for the ones created).
 * @return 0 (also when it exists), or -1 with errno set.
 */
int cli_mkdirs(const char *path);

/** 1 when a file (or anything) exists at path, 0 otherwise. */
int cli_exists(const char *path);

/**
 * Fill buf with len cryptographically random bytes (mbed TLS CTR-DRBG seeded
 * from the system's entropy).
 * @return 0, or -1 when the generator cannot be seeded.
 */
int cli_random(uint8_t *buf, size_t len);

/** The mbed TLS random callback over cli_random() (ctx unused). */
int cli_rng(void *ctx, unsigned char *buf, size_t len);

/**
 * Base64 of data, NUL-terminated, in a new heap buffer the caller frees.
 * @return the text, or NULL when out of memory.
 */
char *cli_base64(const uint8_t *data, size_t len);

/**
 * Format text into a growing heap buffer.
 * @return the text (caller frees), or NULL when out of memory.
 */
char *cli_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/**
 * Check a thing name: 1 to 128 characters among letters, digits, '-', '_',
 * ':' (so it is safe in topics, file names and ACL patterns).
 * @return 1 when valid, 0 otherwise.
 */
int cli_valid_name(const char *name);

/**
 * Parse a decimal unsigned number with bounds.
 * @return 0 and *out, or -1 when text is not a number in [min, max].
 */
int cli_parse_uint(const char *text, unsigned long min, unsigned long max, unsigned long *out);

struct ota_store;

/**
 * Check that the data folder exists and is otter's (it holds otter.db or
 * broker/mosquitto.conf); nothing is created. Prints the error line, which
 * names the folder and `otter broker init`, the command that sets one up.
 * @return CLI_EXIT_OK or CLI_EXIT_FAIL.
 */
int cli_data_dir_check(const cli_ctx_t *ctx);

/**
 * Open the store in the data folder (the file is created when missing, the
 * folder never: see cli_data_dir_check()).
 * Prints the error line on failure.
 * @param out receives the handle; close it with ota_store_close().
 * @return CLI_EXIT_OK or CLI_EXIT_FAIL.
 */
int cli_store_open(const cli_ctx_t *ctx, struct ota_store **out);

/** What cli_one_arg_with_store gives after printing --help: the command is done, exit 0. */
#define CLI_DONE (-1)

/**
 * Parse a command that takes options and exactly one positional argument
 * (or none, when missing is NULL); prints help or the error line.
 * @param arg receives the argument (NULL when missing is NULL).
 * @return CLI_EXIT_OK, CLI_DONE after printing help, or CLI_EXIT_USAGE.
 */
int cli_parse_one(int argc, char **argv, const cli_opt_t *opts, size_t n_opts, const char *help,
                  const char *missing, const char **arg);

/**
 * The start of a command that takes exactly one argument and no options and
 * reads the store: --help prints usage and gives CLI_DONE; a missing or
 * extra argument prints the error line missing (exit 2); then the store is
 * opened.
 * @param arg receives the argument.
 * @param store receives the open store (close it with ota_store_close()).
 * @return CLI_EXIT_OK; CLI_DONE; CLI_EXIT_USAGE; CLI_EXIT_FAIL.
 */
int cli_one_arg_with_store(const cli_ctx_t *ctx, int argc, char **argv, const char *usage,
                           const char *missing, const char **arg, struct ota_store **store);

/**
 * Format a time in ms since the epoch as "YYYY-MM-DD hh:mm:ss" (UTC), or "-"
 * for 0, into out (at least 24 bytes).
 */
void cli_format_time(int64_t ms, char out[24]);

#endif /* CLI_COMMON_H */
