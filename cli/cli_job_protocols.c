/* otter CLI: the data planes of a job. */
#include "cli_job_protocols.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cli_common.h"
#include "ota_svc_presign.h"

int cli_job_protocols_parse(const char *list, const char *expiry, cli_job_protocols_t *out)
{
    memset(out, 0, sizeof *out);
    out->expiry_s = OTA_SVC_PRESIGN_EXPIRY_DEFAULT;
    if (list == NULL) {
        list = "MQTT";
    }
    char copy[32];
    if (strlen(list) >= sizeof copy) {
        return cli_fail(CLI_EXIT_USAGE,
                        "bad --protocols '%s'; give MQTT, HTTP or both in order "
                        "of preference, e.g. HTTP,MQTT",
                        list);
    }
    snprintf(copy, sizeof copy, "%s", list);
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
        const char *name = strcasecmp(t, "MQTT") == 0   ? "MQTT"
                           : strcasecmp(t, "HTTP") == 0 ? "HTTP"
                                                        : NULL;
        if (name == NULL || out->n == 2 || (out->n == 1 && strcmp(out->names[0], name) == 0)) {
            return cli_fail(CLI_EXIT_USAGE,
                            "bad --protocols '%s'; give MQTT, HTTP or both in order of "
                            "preference, e.g. HTTP,MQTT",
                            list);
        }
        out->names[out->n++] = name;
        out->http |= name[0] == 'H';
    }
    if (out->n == 0) {
        return cli_fail(CLI_EXIT_USAGE, "--protocols names no protocol; give MQTT, HTTP or both");
    }
    if (expiry != NULL) {
        unsigned long v;
        if (!out->http) {
            return cli_fail(CLI_EXIT_USAGE, "--url-expiry is for HTTP jobs; add --protocols HTTP");
        }
        if (cli_parse_uint(expiry, OTA_SVC_PRESIGN_EXPIRY_MIN, OTA_SVC_PRESIGN_EXPIRY_MAX, &v) !=
            0) {
            return cli_fail(CLI_EXIT_USAGE, "bad --url-expiry '%s'; give %d-%d seconds", expiry,
                            OTA_SVC_PRESIGN_EXPIRY_MIN, OTA_SVC_PRESIGN_EXPIRY_MAX);
        }
        out->expiry_s = (int64_t)v;
    }
    return CLI_EXIT_OK;
}
