/* otter CLI: rollout and abort options of job create, and their display. */
#include "cli_rollout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char cli_rollout_help[] =
    "\n"
    "Rollout (executions are held, invisible to devices, until released):\n"
    "  --rollout-rate N         at most N things per minute (with --rate-base: the cap)\n"
    "  --rate-base N            exponential rate (AWS exponentialRate): N per minute\n"
    "  --rate-factor F          ... times F (1.1-5.0) each time ...\n"
    "  --rate-increase-every N  ... N more things were notified (or succeeded, with\n"
    "  --rate-increase-on S     S = notified (default) or succeeded)\n"
    "  --phases P1,P2,...,100   phases of the targets in creation order, as cumulative\n"
    "                           percentages; the next phase opens when the current one's\n"
    "  --phase-success P        SUCCEEDED (or SKIPPED) share reaches P%; a phase that ends\n"
    "                           below it aborts the job (reason ABORT_PHASE)\n"
    "  --start-at TIME          release nothing before TIME: YYYY-MM-DDTHH:MM:SSZ (UTC),\n"
    "                           or +N seconds from now\n"
    "  --window HH:MM-HH:MM     daily maintenance window (UTC): release only inside it\n"
    "Abort (the job ends ABORTED, its unfinished executions CANCELED, the rule kept):\n"
    "  --abort TYPE:P:N[,...]   abort when failures of TYPE (FAILED, REJECTED, TIMED_OUT\n"
    "                           or ALL) reach P% of executed things, once N have executed\n"
    "                           (SUCCEEDED or failed; skipped and canceled do not count);\n"
    "                           up to 4 rules\n";

/* "HH:MM" -> minutes of the day; -1 if malformed. */
static int parse_hhmm(const char *t, size_t len)
{
    if (len != 5 || t[2] != ':') {
        return -1;
    }
    for (size_t i = 0; i < 5; i++) {
        if (i != 2 && (t[i] < '0' || t[i] > '9')) {
            return -1;
        }
    }
    int h = (t[0] - '0') * 10 + (t[1] - '0'), m = (t[3] - '0') * 10 + (t[4] - '0');
    return h < 24 && m < 60 ? h * 60 + m : -1;
}

/* "+N" seconds or "YYYY-MM-DDTHH:MM:SSZ" -> ms since the epoch; -1 if malformed. */
static int64_t parse_time(const char *t, int64_t now_ms)
{
    unsigned long v;
    if (t[0] == '+') {
        return cli_parse_uint(t + 1, 1, 366UL * 86400, &v) == 0 ? now_ms + (int64_t)v * 1000 : -1;
    }
    int y, mo, d, h, mi, s, used = 0;
    if (strlen(t) != 20 ||
        sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &y, &mo, &d, &h, &mi, &s, &used) != 6 ||
        used != 20 || y < 2000 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        s > 59) {
        return -1;
    }
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = s};
    time_t when = timegm(&tm);
    struct tm back;
    gmtime_r(&when, &back);
    if (back.tm_mday != d) {
        return -1; /* e.g. February 30 */
    }
    return (int64_t)when * 1000;
}

static int parse_abort(const char *list, ota_store_job_spec_t *spec)
{
    static const char *const types[] = {"FAILED", "REJECTED", "TIMED_OUT", "ALL"};
    for (const char *p = list;;) {
        size_t n = strcspn(p, ",");
        char rule[64];
        if (n == 0 || n >= sizeof rule || spec->n_abort_rules == OTA_STORE_ABORT_RULES_MAX) {
            return -1;
        }
        memcpy(rule, p, n);
        rule[n] = '\0';
        char *c1 = strchr(rule, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c2 == NULL) {
            return -1;
        }
        *c1 = *c2 = '\0';
        int type = -1;
        for (int i = 0; i < 4; i++) {
            type = strcmp(rule, types[i]) == 0 ? i : type;
        }
        unsigned long pct, min;
        if (type < 0 || cli_parse_uint(c1 + 1, 1, 100, &pct) != 0 ||
            cli_parse_uint(c2 + 1, 1, 1000000, &min) != 0) {
            return -1;
        }
        spec->abort_rules[spec->n_abort_rules++] =
            (ota_store_abort_rule_t){(ota_store_failure_type_t)type, (uint32_t)pct, (uint32_t)min};
        if (p[n] == '\0') {
            return 0;
        }
        p += n + 1;
    }
}

static int parse_phases(const char *list, ota_store_rollout_t *r)
{
    for (const char *p = list;;) {
        size_t n = strcspn(p, ",");
        char num[8];
        unsigned long v;
        if (n == 0 || n >= sizeof num || r->n_phases == OTA_STORE_PHASES_MAX) {
            return -1;
        }
        memcpy(num, p, n);
        num[n] = '\0';
        if (cli_parse_uint(num, 1, 100, &v) != 0 ||
            (r->n_phases > 0 && v <= r->phase_percent[r->n_phases - 1])) {
            return -1;
        }
        r->phase_percent[r->n_phases++] = (uint32_t)v;
        if (p[n] == '\0') {
            return v == 100 ? 0 : -1;
        }
        p += n + 1;
    }
}

/* "1.1" .. "5.0" (one decimal) -> 11 .. 50; -1 if malformed. */
static int parse_factor(const char *t)
{
    if (strlen(t) == 1 && t[0] >= '1' && t[0] <= '5') {
        return (t[0] - '0') * 10;
    }
    if (strlen(t) != 3 || t[1] != '.' || t[0] < '1' || t[0] > '5' || t[2] < '0' || t[2] > '9') {
        return -1;
    }
    int v = (t[0] - '0') * 10 + (t[2] - '0');
    return v >= 11 && v <= 50 ? v : -1;
}

static int parse_rate(const cli_rollout_args_t *a, ota_store_rollout_t *r)
{
    unsigned long v;
    if (a->rate_base == NULL) {
        if (a->rate_factor || a->rate_every || a->rate_on) {
            return cli_fail(CLI_EXIT_USAGE, "--rate-factor, --rate-increase-every and "
                                            "--rate-increase-on need --rate-base; give it");
        }
        return CLI_EXIT_OK;
    }
    if (cli_parse_uint(a->rate_base, 1, 1000000, &v) != 0) {
        return cli_fail(CLI_EXIT_USAGE, "bad --rate-base '%s'; give things per minute, 1-1000000",
                        a->rate_base);
    }
    r->base_per_minute = (uint32_t)v;
    int f = a->rate_factor ? parse_factor(a->rate_factor) : 20;
    if (f < 0) {
        return cli_fail(CLI_EXIT_USAGE, "bad --rate-factor '%s'; give 1.1-5.0", a->rate_factor);
    }
    r->factor_x10 = (uint32_t)f;
    v = r->base_per_minute;
    if (a->rate_every && cli_parse_uint(a->rate_every, 1, 1000000, &v) != 0) {
        return cli_fail(CLI_EXIT_USAGE, "bad --rate-increase-every '%s'; give 1-1000000",
                        a->rate_every);
    }
    r->increase_every = (uint32_t)v;
    if (a->rate_on && strcmp(a->rate_on, "succeeded") != 0 && strcmp(a->rate_on, "notified") != 0) {
        return cli_fail(CLI_EXIT_USAGE, "bad --rate-increase-on '%s'; give notified or succeeded",
                        a->rate_on);
    }
    r->increase_on_succeeded = a->rate_on && strcmp(a->rate_on, "succeeded") == 0;
    return CLI_EXIT_OK;
}

int cli_rollout_parse(const cli_rollout_args_t *a, int64_t now_ms, ota_store_job_spec_t *spec)
{
    ota_store_rollout_t *r = &spec->rollout;
    if (a->abort && parse_abort(a->abort, spec) != 0) {
        return cli_fail(CLI_EXIT_USAGE,
                        "bad --abort '%s'; give TYPE:PERCENT:MIN_EXECUTED[,...] with TYPE "
                        "FAILED, REJECTED, TIMED_OUT or ALL (up to 4), e.g. FAILED:20:5",
                        a->abort);
    }
    if (a->start_at) {
        int64_t t = parse_time(a->start_at, now_ms);
        if (t < 0) {
            return cli_fail(CLI_EXIT_USAGE,
                            "bad --start-at '%s'; give YYYY-MM-DDTHH:MM:SSZ (UTC) or +SECONDS",
                            a->start_at);
        }
        r->start_at_ms = t;
    }
    if (a->window) {
        const char *dash = strchr(a->window, '-');
        int from = dash ? parse_hhmm(a->window, (size_t)(dash - a->window)) : -1;
        int to = dash ? parse_hhmm(dash + 1, strlen(dash + 1)) : -1;
        if (from < 0 || to < 0 || from == to) {
            return cli_fail(CLI_EXIT_USAGE,
                            "bad --window '%s'; give HH:MM-HH:MM (UTC), two different times",
                            a->window);
        }
        r->window_start_min = (uint32_t)from;
        r->window_end_min = (uint32_t)to;
    }
    if ((a->phases == NULL) != (a->phase_success == NULL)) {
        return cli_fail(CLI_EXIT_USAGE, "--phases and --phase-success go together; give both");
    }
    if (a->phases) {
        unsigned long v;
        if (parse_phases(a->phases, r) != 0) {
            return cli_fail(CLI_EXIT_USAGE,
                            "bad --phases '%s'; give increasing cumulative percentages ending "
                            "with 100 (up to 8), e.g. 10,50,100",
                            a->phases);
        }
        if (cli_parse_uint(a->phase_success, 1, 100, &v) != 0) {
            return cli_fail(CLI_EXIT_USAGE, "bad --phase-success '%s'; give 1-100",
                            a->phase_success);
        }
        r->phase_success_percent = (uint32_t)v;
    }
    return parse_rate(a, r);
}

void cli_rollout_print(const ota_store_job_t *j)
{
    const ota_store_rollout_t *r = &j->rollout;
    char when[24];
    if (r->start_at_ms) {
        cli_format_time(r->start_at_ms, when);
        printf("start at:   %s UTC\n", when);
    }
    if (r->window_start_min != r->window_end_min) {
        printf("window:     %02u:%02u-%02u:%02u UTC daily\n", r->window_start_min / 60,
               r->window_start_min % 60, r->window_end_min / 60, r->window_end_min % 60);
    }
    if (r->n_phases) {
        printf("phases:    ");
        for (uint32_t i = 0; i < r->n_phases; i++) {
            printf(" %u%%", r->phase_percent[i]);
        }
        printf(" (next opens at %u%% succeeded; open: %u of %u)\n", r->phase_success_percent,
               j->current_phase < r->n_phases ? j->current_phase + 1 : r->n_phases, r->n_phases);
    }
    if (r->base_per_minute) {
        printf("rate:       %u per minute, x%u.%u every %u %s\n", r->base_per_minute,
               r->factor_x10 / 10, r->factor_x10 % 10, r->increase_every,
               r->increase_on_succeeded ? "succeeded" : "notified");
    }
    for (size_t i = 0; i < j->n_abort_rules; i++) {
        printf("abort:      %s >= %u%% once %u executed\n",
               ota_store_failure_type_name((int)j->abort_rules[i].type), j->abort_rules[i].percent,
               j->abort_rules[i].min_executed);
    }
    if (j->reason_code[0]) {
        printf("reason:     %s%s%s\n", j->reason_code, j->reason[0] ? ": " : "", j->reason);
    }
}
