/*
 * otter CLI: the rollout and abort options of `job create` (scheduled start,
 * maintenance window, phases, exponential rate, abort rules) and how
 * `job show` prints them.
 */
#ifndef CLI_ROLLOUT_H
#define CLI_ROLLOUT_H

#include "cli_common.h"
#include "ota_store.h"

/** The option values as given (NULL when absent). */
typedef struct cli_rollout_args {
    const char *abort, *start_at, *window, *phases, *phase_success, *rate_base, *rate_factor,
        *rate_every, *rate_on;
} cli_rollout_args_t;

/** The options' table entries, to append to a command's option table. */
#define CLI_ROLLOUT_OPTS(a)                                                                        \
    {"abort", 1, &(a).abort}, {"start-at", 1, &(a).start_at}, {"window", 1, &(a).window},          \
        {"phases", 1, &(a).phases}, {"phase-success", 1, &(a).phase_success},                      \
        {"rate-base", 1, &(a).rate_base}, {"rate-factor", 1, &(a).rate_factor},                    \
        {"rate-increase-every", 1, &(a).rate_every},                                               \
    {                                                                                              \
        "rate-increase-on", 1, &(a).rate_on                                                        \
    }

/** Help text of the options (for `job create --help`). */
extern const char cli_rollout_help[];

/**
 * Checks the options and fills the spec's abort rules and rollout.
 * @param now_ms the time "+N" start times count from.
 * @return CLI_EXIT_OK, or CLI_EXIT_USAGE after printing the error line.
 */
int cli_rollout_parse(const cli_rollout_args_t *a, int64_t now_ms, ota_store_job_spec_t *spec);

/** Prints the rollout, abort rules and end reason of a job (for `job show`). */
void cli_rollout_print(const ota_store_job_t *j);

#endif /* CLI_ROLLOUT_H */
