/*
 * libFuzzer harness: jobs messages (notify-next, $next/get/accepted) into
 * ota_job_parse() and its JSON scanner. Whatever the bytes, the result is
 * one of the documented codes; a job that parses has NUL-terminated strings
 * within their buffers, a non-empty signature of at most 72 bytes, a file
 * size above 0 and file id and type within 0..255.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otter/ota_job_doc.h"

static void check_strings(const ota_job_t *job)
{
    if (memchr(job->job_id, 0, sizeof(job->job_id)) == NULL ||
        memchr(job->stream, 0, sizeof(job->stream)) == NULL ||
        memchr(job->file_path, 0, sizeof(job->file_path)) == NULL ||
        memchr(job->cert_name, 0, sizeof(job->cert_name)) == NULL ||
        job->signature_len > OTA_PAL_SIGNATURE_MAX) {
        abort();
    }
}

static void check(const char *json, size_t len)
{
    ota_job_t job;
    ota_job_issue_t issue;
    ota_err_t err = ota_job_parse(json, len, &job, &issue);

    check_strings(&job);
    if ((unsigned)issue.problem >= OTA_JOB_PROBLEM_COUNT ||
        ota_job_problem_str(issue.problem) == NULL) {
        abort();
    }
    switch (err) {
    case OTA_OK:
        if (issue.problem != OTA_JOB_PROBLEM_NONE || issue.field != NULL || job.job_id[0] == '\0' ||
            job.stream[0] == '\0' || job.file_size == 0 || job.file_id > 255 ||
            job.file_type > 255 || job.signature_len == 0 ||
            (job.protocols & OTA_PROTO_MQTT) == 0 || job.self_test > OTA_SELF_TEST_ACTIVE ||
            job.status > OTA_JOB_STATUS_CANCELED) {
            abort();
        }
        break;
    case OTA_ERR_NOT_FOUND:
        if (issue.problem != OTA_JOB_PROBLEM_NONE || job.job_id[0] != '\0') {
            abort();
        }
        break;
    case OTA_ERR_BAD_JOB_DOC:
    case OTA_ERR_UNSUPPORTED:
        /* There is a job to report the failure to. */
        if (issue.problem == OTA_JOB_PROBLEM_NONE || job.job_id[0] == '\0') {
            abort();
        }
        break;
    case OTA_ERR_BAD_MESSAGE:
        if (issue.problem == OTA_JOB_PROBLEM_NONE) {
            abort();
        }
        break;
    case OTA_ERR_OUT_OF_MEMORY:
        if (issue.problem != OTA_JOB_PROBLEM_TOO_DEEP) {
            abort();
        }
        break;
    default:
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so that reading past the end is caught. */
    char *copy = malloc(size ? size : 1);

    if (copy == NULL) {
        return 0;
    }
    memcpy(copy, data, size);
    check(copy, size);
    free(copy);
    return 0;
}
