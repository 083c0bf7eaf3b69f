/*
 * otter CLI: the data planes of a job (`job create --protocols`, `--url-expiry`).
 */
#ifndef CLI_JOB_PROTOCOLS_H
#define CLI_JOB_PROTOCOLS_H

#include <stddef.h>
#include <stdint.h>

/** The data planes of a job, in order of preference. */
typedef struct cli_job_protocols {
    const char *names[2]; /**< "MQTT" and/or "HTTP" */
    size_t n;             /**< entries in names (1 or 2) */
    int http;             /**< HTTP is among them */
    int64_t expiry_s;     /**< presigned URL lifetime, seconds */
} cli_job_protocols_t;

/**
 * Parses --protocols (NULL: MQTT) and --url-expiry (NULL: the default); prints
 * the error line on failure.
 * @param list   "MQTT", "HTTP", "HTTP,MQTT" or "MQTT,HTTP" (case-insensitive), or NULL.
 * @param expiry seconds, 60-3600, or NULL; only with HTTP.
 * @param out    receives the result.
 * @return CLI_EXIT_OK or CLI_EXIT_USAGE.
 */
int cli_job_protocols_parse(const char *list, const char *expiry, cli_job_protocols_t *out);

#endif /* CLI_JOB_PROTOCOLS_H */
