/*
 * otter: tests of the jobs-message parser (ota_job_doc) and base64 decoding.
 *
 * Hand-written cases cover the wire protocol's examples, every tolerance and
 * every problem; random documents made with cJSON and random base64 made with
 * mbed TLS cross-check the parsers. A failing random case prints its seed.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <cJSON.h>
#include <mbedtls/base64.h>

#include "ota_base64.h"
#include "otter/ota_device_type.h"
#include "otter/ota_job_doc.h"

/* A real DER signature (ECDSA P-256, 71 bytes) in base64. */
#define SIG_B64                                                                                    \
    "MEUCIQDvrAVtgYGSRB8PQBGwIFAy+8b+"                                                             \
    "0e898dU5iN8WRqjApAIgdnkZ6CacAbPWUQX8lPKPmnEea9bjfTSaSIYv9GBYS7"                               \
    "M="

/* ---- helpers ---------------------------------------------------------- */

/* Parses a copy of json that has no NUL after it, so that ASan sees over-reads. */
static ota_err_t parse_n(const char *json, size_t len, ota_job_t *job, ota_job_issue_t *issue)
{
    char *copy = malloc(len ? len : 1);
    ota_err_t err;

    assert_non_null(copy);
    memcpy(copy, json, len);
    err = ota_job_parse(copy, len, job, issue);
    free(copy);
    return err;
}

static ota_err_t parse(const char *json, ota_job_t *job, ota_job_issue_t *issue)
{
    return parse_n(json, strlen(json), job, issue);
}

/* Every string of job is NUL-terminated within its buffer. */
static void check_terminated(const ota_job_t *job)
{
    assert_non_null(memchr(job->job_id, 0, sizeof(job->job_id)));
    assert_non_null(memchr(job->stream, 0, sizeof(job->stream)));
    assert_non_null(memchr(job->file_path, 0, sizeof(job->file_path)));
    assert_non_null(memchr(job->cert_name, 0, sizeof(job->cert_name)));
    assert_true(job->signature_len <= OTA_PAL_SIGNATURE_MAX);
}

static char doc_buf[8192];

/* A $next/get/accepted message around an afr_ota object's members. */
static const char *with_ota(const char *ota_members)
{
    snprintf(doc_buf, sizeof(doc_buf),
             "{\"clientToken\":\"1:thing\",\"timestamp\":1700000000,\"execution\":{"
             "\"jobId\":\"job-1\",\"status\":\"QUEUED\",\"versionNumber\":1,"
             "\"jobDocument\":{\"afr_ota\":{%s}}}}",
             ota_members);
    return doc_buf;
}

static char file_buf[4096];

/* Same, with MQTT protocol, a stream and one file of these members. */
static const char *with_file(const char *file_members)
{
    snprintf(file_buf, sizeof(file_buf),
             "\"protocols\":[\"MQTT\"],\"streamname\":\"AFR_OTA-s1\",\"files\":[{%s}]",
             file_members);
    return with_ota(file_buf);
}

#define GOOD_FILE                                                                                  \
    "\"filepath\":\"firmware.bin\",\"filesize\":366816,\"fileid\":0,"                              \
    "\"certfile\":\"codesign.crt\",\"fileType\":0,\"sig-sha256-ecdsa\":\"" SIG_B64 "\""

static char file2_buf[4096];

/* GOOD_FILE with one member replaced (or removed when value is NULL) and extra appended. */
static const char *file_with(const char *key, const char *value)
{
    static const char *const keys[] = {"filepath", "filesize", "fileid",
                                       "certfile", "fileType", "sig-sha256-ecdsa"};
    static const char *const values[] = {"\"firmware.bin\"", "366816", "0",
                                         "\"codesign.crt\"", "0",      "\"" SIG_B64 "\""};
    size_t i;
    int found = 0;

    file2_buf[0] = '\0';
    for (i = 0; i < 6; i++) {
        const char *v = values[i];

        if (strcmp(keys[i], key) == 0) {
            found = 1;
            v = value;
        }
        if (v == NULL) {
            continue;
        }
        if (file2_buf[0] != '\0') {
            strcat(file2_buf, ",");
        }
        strcat(file2_buf, "\"");
        strcat(file2_buf, keys[i]);
        strcat(file2_buf, "\":");
        strcat(file2_buf, v);
    }
    if (!found && value != NULL) {
        strcat(file2_buf, ",\"");
        strcat(file2_buf, key);
        strcat(file2_buf, "\":");
        strcat(file2_buf, value);
    }
    return with_file(file2_buf);
}

static void expect_problem(const char *json, ota_err_t err, ota_job_problem_t problem,
                           const char *field)
{
    ota_job_t job;
    ota_job_issue_t issue;
    ota_err_t got = parse(json, &job, &issue);

    if (got != err || issue.problem != problem || (field == NULL) != (issue.field == NULL) ||
        (field != NULL && strcmp(field, issue.field) != 0)) {
        print_error("input: %s\nwant %s/%s/%s got %s/%s/%s\n", json, ota_err_str(err),
                    ota_job_problem_str(problem), field ? field : "NULL", ota_err_str(got),
                    ota_job_problem_str(issue.problem), issue.field ? issue.field : "NULL");
        fail();
    }
    check_terminated(&job);
    if ((err == OTA_ERR_BAD_JOB_DOC || err == OTA_ERR_UNSUPPORTED) &&
        strstr(json, "\"jobId\":\"job-1\",\"status\":\"QUEUED\"") != NULL) {
        assert_string_equal(job.job_id, "job-1");
        assert_int_equal(job.status, OTA_JOB_STATUS_QUEUED);
    }
    if (err == OTA_ERR_BAD_MESSAGE) {
        assert_string_equal(job.job_id, "");
    }
}

static void expect_ok(const char *json, ota_job_t *job)
{
    ota_job_issue_t issue;
    ota_err_t err = parse(json, job, &issue);

    if (err != OTA_OK) {
        print_error("input: %s\ngot %s (%s, %s)\n", json, ota_err_str(err),
                    ota_job_problem_str(issue.problem), issue.field ? issue.field : "NULL");
        fail();
    }
    assert_int_equal(issue.problem, OTA_JOB_PROBLEM_NONE);
    assert_null(issue.field);
    check_terminated(job);
    assert_true(job->file_size > 0);
}

static void check_sig(const ota_job_t *job)
{
    assert_int_equal(job->sig_method, OTA_SIG_SHA256_ECDSA);
    assert_int_equal(job->signature_len, 71);
    assert_int_equal(job->signature[0], 0x30);
    assert_int_equal(job->signature[1], 0x45);
    assert_int_equal(job->signature[70], 0xb3);
}

/* ---- the protocol's examples ------------------------------------------ */

static const char spec_accepted[] =
    "{\"clientToken\":\"0:my-thing\",\"timestamp\":1700000123,\"execution\":{"
    "\"jobId\":\"AFR_OTA-rollout-7\",\"thingName\":\"my-thing\",\"status\":\"QUEUED\","
    "\"queuedAt\":1700000000,\"lastUpdatedAt\":1700000001,\"versionNumber\":1,"
    "\"executionNumber\":1,\"jobDocument\":{\"afr_ota\":{"
    "\"protocols\":[\"MQTT\"],"
    "\"streamname\":\"AFR_OTA-0f3c6a0e-1a2b-4c3d-8e9f-0123456789ab\","
    "\"files\":[{"
    "\"filepath\":\"firmware.bin\","
    "\"filesize\":366816,"
    "\"fileid\":0,"
    "\"certfile\":\"codesign.crt\","
    "\"fileType\":0,"
    "\"update_data_url\":null,"
    "\"auth_scheme\":null,"
    "\"sig-sha256-ecdsa\":\"" SIG_B64 "\""
    "}]}}}}";

static void check_spec_job(const ota_job_t *job)
{
    assert_string_equal(job->job_id, "AFR_OTA-rollout-7");
    assert_int_equal(job->status, OTA_JOB_STATUS_QUEUED);
    assert_int_equal(job->version_number, 1);
    assert_int_equal(job->protocols, OTA_PROTO_MQTT);
    assert_string_equal(job->stream, "AFR_OTA-0f3c6a0e-1a2b-4c3d-8e9f-0123456789ab");
    assert_int_equal(job->has_file_path, 1);
    assert_string_equal(job->file_path, "firmware.bin");
    assert_int_equal(job->file_size, 366816);
    assert_int_equal(job->file_id, 0);
    assert_int_equal(job->has_cert_name, 1);
    assert_string_equal(job->cert_name, "codesign.crt");
    assert_int_equal(job->file_type, 0);
    assert_int_equal(job->self_test, OTA_SELF_TEST_NONE);
    assert_int_equal(job->has_updated_by, 0);
    assert_int_equal(job->has_receive, 0);
    check_sig(job);
}

static void test_spec_get_accepted(void **state)
{
    ota_job_t job;

    (void)state;
    expect_ok(spec_accepted, &job);
    check_spec_job(&job);
}

static void test_spec_notify_next(void **state)
{
    /* Same execution, notify-next wrapper (no clientToken), pretty-printed. */
    static const char msg[] =
        "{\n  \"timestamp\" : 1700000123 ,\n  \"execution\" : {\n"
        "    \"jobId\" : \"AFR_OTA-rollout-7\",\n    \"status\" : \"QUEUED\",\n"
        "    \"versionNumber\" : 1,\n    \"jobDocument\" : {\n      \"afr_ota\" : {\n"
        "        \"protocols\" : [ \"MQTT\" ],\n"
        "        \"streamname\" : \"AFR_OTA-0f3c6a0e-1a2b-4c3d-8e9f-0123456789ab\",\n"
        "        \"files\" : [ {\n"
        "\t\"filepath\" : \"firmware.bin\",\r\n\t\"filesize\" : 366816,\n"
        "\t\"fileid\" : 0,\n\t\"certfile\" : \"codesign.crt\",\n\t\"fileType\" : 0,\n"
        "\t\"sig-sha256-ecdsa\" : \"" SIG_B64 "\"\n"
        "        } ]\n      }\n    }\n  }\n}\n";
    ota_job_t job;

    (void)state;
    expect_ok(msg, &job);
    check_spec_job(&job);
}

static void test_aws_console_document(void **state)
{
    /* As the AWS console creates it: other key order, attr, nulls. */
    static const char msg[] =
        "{\"timestamp\":1700000200,\"execution\":{\"jobId\":\"AFR_OTA-console-job\","
        "\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"self_test\":\"ready\","
        "\"updatedBy\":\"0x00090002\"},\"queuedAt\":1700000100,\"startedAt\":1700000110,"
        "\"lastUpdatedAt\":1700000190,\"versionNumber\":3,\"executionNumber\":1,"
        "\"jobDocument\":{\"afr_ota\":{\"streamname\":\"AFR_OTA-6a5b4c3d-2e1f-4a0b-9c8d-"
        "7e6f5a4b3c2d\",\"protocols\":[\"MQTT\"],\"files\":[{\"filepath\":\"/device/image\","
        "\"filesize\":\"250000\",\"fileid\":0,\"certfile\":\"codesign.crt\","
        "\"update_data_url\":null,\"auth_scheme\":null,\"sig-sha256-ecdsa\":\"" SIG_B64 "\","
        "\"attr\":\"3\",\"fileType\":0}]}}}}";
    ota_job_t job;

    (void)state;
    expect_ok(msg, &job);
    assert_string_equal(job.job_id, "AFR_OTA-console-job");
    assert_int_equal(job.status, OTA_JOB_STATUS_IN_PROGRESS);
    assert_int_equal(job.version_number, 3);
    assert_int_equal(job.self_test, OTA_SELF_TEST_READY);
    assert_int_equal(job.has_updated_by, 1);
    assert_int_equal(job.updated_by, 0x00090002);
    assert_string_equal(job.stream, "AFR_OTA-6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d");
    assert_string_equal(job.file_path, "/device/image");
    assert_int_equal(job.file_size, 250000);
    assert_string_equal(job.cert_name, "codesign.crt");
    check_sig(&job);
}

static void test_no_execution(void **state)
{
    static const char *const msgs[] = {
        "{\"timestamp\":1700000000}",
        "{\"clientToken\":\"0:thing\",\"timestamp\":1700000000}",
        " {\"timestamp\":1,\"execution\":null}\n",
        "{}",
        "{\"other\":{\"execution\":{\"jobId\":\"x\"}}}",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        ota_job_t job;
        ota_job_issue_t issue;

        assert_int_equal(parse(msgs[i], &job, &issue), OTA_ERR_NOT_FOUND);
        assert_int_equal(issue.problem, OTA_JOB_PROBLEM_NONE);
        assert_null(issue.field);
        assert_string_equal(job.job_id, "");
    }
}

/* ---- tolerance ---------------------------------------------------------- */

static void test_numbers_as_strings_and_hex(void **state)
{
    static const struct {
        const char *text;
        uint32_t value;
    } cases[] = {
        {"366816", 366816},
        {"\"366816\"", 366816},
        {"\"0x598e0\"", 0x598e0},
        {"\"0X598E0\"", 0x598e0},
        {"0x598e0", 0x598e0},
        {"4294967295", 4294967295u},
        {"\"0xffffffff\"", 0xffffffffu},
        {"\"0x00000001\"", 1},
        {"007", 7},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ota_job_t job;

        expect_ok(file_with("filesize", cases[i].text), &job);
        assert_int_equal(job.file_size, cases[i].value);
    }
    {
        ota_job_t job;

        expect_ok(file_with("fileid", "\"0xff\""), &job);
        assert_int_equal(job.file_id, 255);
        expect_ok(file_with("fileType", "\"7\""), &job);
        assert_int_equal(job.file_type, 7);
        expect_ok(file_with("fileType", "0x02"), &job);
        assert_int_equal(job.file_type, 2);
        expect_ok(file_with("fileType", NULL), &job);
        assert_int_equal(job.file_type, 0);
    }
}

static void test_nulls_and_absent_optionals(void **state)
{
    ota_job_t job;

    (void)state;
    expect_ok(file_with("filepath", "null"), &job);
    assert_int_equal(job.has_file_path, 0);
    assert_string_equal(job.file_path, "");
    assert_int_equal(job.has_cert_name, 1);
    expect_ok(file_with("certfile", "null"), &job);
    assert_int_equal(job.has_cert_name, 0);
    assert_string_equal(job.cert_name, "");
    expect_ok(file_with("filepath", NULL), &job);
    assert_int_equal(job.has_file_path, 0);
    expect_ok(file_with("certfile", NULL), &job);
    assert_int_equal(job.has_cert_name, 0);
    expect_ok(file_with("update_data_url", "null"), &job);
    expect_ok(file_with("auth_scheme", "null"), &job);
    expect_ok(file_with("update_data_url", "\"https://example.com/x?a=1\\u0026b=2\""), &job);
    expect_ok(file_with("auth_scheme", "\"aws.s3.presigned\""), &job);
}

static void test_unknown_keys_everywhere(void **state)
{
    static const char msg[] =
        "{\"junk\":[1,{\"a\":[[],{}]},\"x\"],\"timestamp\":1,\"execution\":{"
        "\"new\":{\"execution\":{\"jobId\":\"wrong\"}},\"jobId\":\"job-1\","
        "\"status\":\"QUEUED\",\"statusDetails\":{\"detail\":\"x\",\"self_test\":\"active\"},"
        "\"jobDocument\":{\"other\":{\"afr_ota\":1},\"afr_ota\":{\"x\":[{\"files\":[]}],"
        "\"protocols\":[\"MQTT\",\"HTTP\",\"COAP\"],\"streamname\":\"s\",\"files\":[{"
        "\"filesize\":5,\"fileid\":1,\"nested\":{\"filesize\":0,\"a\":[true,false,null,-1.5e3]},"
        "\"sig-sha256-ecdsa\":\"" SIG_B64 "\",\"attr\":{\"a\":1}},"
        "{\"filesize\":0,\"junk\":true}],\"tail\":\"}\"},\"tail\":[\"]\"]},"
        "\"thingName\":\"t\"},\"end\":{}}";
    ota_job_t job;

    (void)state;
    expect_ok(msg, &job);
    assert_string_equal(job.job_id, "job-1");
    assert_int_equal(job.protocols, OTA_PROTO_MQTT | OTA_PROTO_HTTP);
    assert_string_equal(job.stream, "s");
    assert_int_equal(job.file_size, 5);
    assert_int_equal(job.file_id, 1);
    assert_int_equal(job.self_test, OTA_SELF_TEST_ACTIVE);
    assert_int_equal(job.has_file_path, 0);
    assert_int_equal(job.has_cert_name, 0);
    check_sig(&job);
}

static void test_signature_line_breaks_and_escapes(void **state)
{
    static const char *const sigs[] = {
        /* JSON escapes \r\n every 32 characters, as PEM-style tools wrap. */
        "\"MEUCIQDvrAVtgYGSRB8PQBGwIFAy+8b+\\r\\n0e898dU5iN8WRqjApAIgdnkZ6CacAbPW\\r\\n"
        "UQX8lPKPmnEea9bjfTSaSIYv9GBYS7M=\\n\"",
        /* Raw CR/LF bytes inside the string (not valid JSON, tolerated). */
        "\"MEUCIQDvrAVtgYGSRB8PQBGwIFAy+8b+\r\n0e898dU5iN8WRqjApAIgdnkZ6CacAbPW\n"
        "UQX8lPKPmnEea9bjfTSaSIYv9GBYS7M=\r\n\"",
        /* Escaped slashes and a bare \r. */
        "\"MEUCIQDvrAVtgYGSRB8PQBGwIFAy+8b+0e898dU5iN8WRqjApAIgdnkZ6CacAbPWUQX8lPKPmnEea9bjfTSa"
        "SIYv9GBYS7M=\"",
        "\"\\nMEUCIQDvrAVtgYGSRB8PQBGwIFAy+8b+0e898dU5iN8WRqjApAIgdnkZ6CacAbPWUQX8lPKPmnEea9bjf"
        "TSaSIYv9GBYS7M=\\r\"",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        ota_job_t job;

        expect_ok(file_with("sig-sha256-ecdsa", sigs[i]), &job);
        check_sig(&job);
    }
    {
        /* \/ in the signature decodes to "/". */
        ota_job_t job;
        ota_job_t plain;

        expect_ok(file_with("sig-sha256-ecdsa", "\"ab\\/+\""), &job);
        expect_ok(file_with("sig-sha256-ecdsa", "\"ab/+\""), &plain);
        assert_int_equal(job.signature_len, 3);
        assert_memory_equal(job.signature, plain.signature, 3);
    }
}

static void test_string_escapes(void **state)
{
    ota_job_t job;

    (void)state;
    expect_ok(file_with("filepath", "\"\\/dev\\/a \\\"b\\\" c\\\\d\""), &job);
    assert_string_equal(job.file_path, "/dev/a \"b\" c\\d");
    expect_ok(file_with("certfile", "\"certs\\/code\\\"sign\\\".crt\""), &job);
    assert_string_equal(job.cert_name, "certs/code\"sign\".crt");
    /* UTF-8 passes through. */
    expect_ok(file_with("filepath", "\"f\xc3\xbcr.bin\""), &job);
    assert_string_equal(job.file_path, "f\xc3\xbcr.bin");
    expect_ok("{\"execution\":{\"jobId\":\"a\\\"b\\\\c\",\"jobDocument\":{\"afr_ota\":{"
              "\"protocols\":\"MQTT\",\"streamname\":\"s\\\\1\",\"files\":[{\"filesize\":1,"
              "\"fileid\":2,\"sig-sha256-ecdsa\":\"AAAA\"}]}}}}",
              &job);
    assert_string_equal(job.job_id, "a\"b\\c");
    assert_string_equal(job.stream, "s\\1");
    assert_int_equal(job.status, OTA_JOB_STATUS_NONE);
    assert_int_equal(job.protocols, OTA_PROTO_MQTT);
    assert_int_equal(job.signature_len, 3);
}

static void test_statuses(void **state)
{
    static const char *const names[] = {"QUEUED",    "IN_PROGRESS", "SUCCEEDED", "FAILED",
                                        "TIMED_OUT", "REJECTED",    "REMOVED",   "CANCELED"};
    size_t i;

    (void)state;
    for (i = 0; i < 8; i++) {
        char msg[512];
        ota_job_t job;

        snprintf(msg, sizeof(msg),
                 "{\"execution\":{\"status\":\"%s\",\"versionNumber\":\"0x10\",\"jobId\":\"j\","
                 "\"jobDocument\":{\"afr_ota\":{\"protocols\":[\"MQTT\"],\"streamname\":\"s\","
                 "\"files\":[{\"filesize\":1,\"fileid\":0,\"sig-sha256-ecdsa\":\"AAAA\"}]}}}}",
                 names[i]);
        expect_ok(msg, &job);
        assert_int_equal(job.status, (int)i + 1);
        assert_int_equal(job.version_number, 16);
    }
}

static void test_status_details(void **state)
{
    static const struct {
        const char *details;
        uint8_t self_test, has_updated_by, has_receive;
        uint32_t updated_by, received, total;
    } cases[] = {
        {"{\"self_test\":\"ready\",\"updatedBy\":\"0x00090002\"}", OTA_SELF_TEST_READY, 1, 0,
         0x00090002, 0, 0},
        {"{\"updatedBy\":\"0x00090003\",\"self_test\":\"active\"}", OTA_SELF_TEST_ACTIVE, 1, 0,
         0x00090003, 0, 0},
        {"{\"receive\":\"1/3\"}", 0, 0, 1, 0, 1, 3},
        {"{\"receive\":\"64/90\",\"reason\":\"x\"}", 0, 0, 1, 0, 64, 90},
        {"{\"self_test\":\"READY\",\"updatedBy\":\"v0.9.2\",\"receive\":\"1/\"}", 0, 0, 0, 0, 0, 0},
        {"{\"self_test\":1,\"updatedBy\":\"0x1ffffffff\",\"receive\":\"/3\"}", 0, 0, 0, 0, 0, 0},
        {"{\"self_test\":\"readyy\",\"updatedBy\":null,\"receive\":\"1/3/4\"}", 0, 0, 0, 0, 0, 0},
        {"{\"reason\":\"accepted  v0.9.3\",\"updatedBy\":\"  v0.9.2\"}", 0, 0, 0, 0, 0, 0},
        {"[\"self_test\",\"ready\"]", 0, 0, 0, 0, 0, 0},
        {"\"self_test\"", 0, 0, 0, 0, 0, 0},
        {"{\"self_test\":\"ready\",\"self_test\":\"active\"}", 0, 0, 0, 0, 0, 0},
        {"{}", 0, 0, 0, 0, 0, 0},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char msg[1024];
        ota_job_t job;

        snprintf(msg, sizeof(msg),
                 "{\"execution\":{\"jobId\":\"j\",\"status\":\"IN_PROGRESS\",\"statusDetails\":%s,"
                 "\"jobDocument\":{\"afr_ota\":{\"protocols\":[\"MQTT\"],\"streamname\":\"s\","
                 "\"files\":[{\"filesize\":1,\"fileid\":0,\"sig-sha256-ecdsa\":\"AAAA\"}]}}}}",
                 cases[i].details);
        expect_ok(msg, &job);
        assert_int_equal(job.self_test, cases[i].self_test);
        assert_int_equal(job.has_updated_by, cases[i].has_updated_by);
        assert_int_equal(job.updated_by, cases[i].updated_by);
        assert_int_equal(job.has_receive, cases[i].has_receive);
        if (job.has_receive) {
            assert_int_equal(job.received_blocks, cases[i].received);
            assert_int_equal(job.total_blocks, cases[i].total);
        }
    }
}

static void test_protocols(void **state)
{
    ota_job_t job;

    (void)state;
    expect_ok(
        with_ota("\"protocols\":[\"HTTP\",\"MQTT\"],\"streamname\":\"s\",\"files\":[{" GOOD_FILE
                 "}]"),
        &job);
    assert_int_equal(job.protocols, OTA_PROTO_MQTT | OTA_PROTO_HTTP);
    expect_ok(with_ota("\"protocols\":\"MQTT\",\"streamname\":\"s\",\"files\":[{" GOOD_FILE "}]"),
              &job);
    assert_int_equal(job.protocols, OTA_PROTO_MQTT);
    expect_problem(
        with_ota("\"protocols\":[\"HTTP\"],\"streamname\":\"s\",\"files\":[{" GOOD_FILE "}]"),
        OTA_ERR_UNSUPPORTED, OTA_JOB_PROBLEM_NO_PROTOCOL, "protocols");
    parse(doc_buf, &job, NULL);
    assert_int_equal(job.protocols, OTA_PROTO_HTTP);
    expect_problem(with_ota("\"protocols\":[],\"streamname\":\"s\",\"files\":[{" GOOD_FILE "}]"),
                   OTA_ERR_UNSUPPORTED, OTA_JOB_PROBLEM_NO_PROTOCOL, "protocols");
    expect_problem(
        with_ota("\"protocols\":[\"mqtt\"],\"streamname\":\"s\",\"files\":[{" GOOD_FILE "}]"),
        OTA_ERR_UNSUPPORTED, OTA_JOB_PROBLEM_NO_PROTOCOL, "protocols");
    expect_problem(
        with_ota("\"protocols\":[\"MQTT\",1],\"streamname\":\"s\",\"files\":[{" GOOD_FILE "}]"),
        OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "protocols");
    expect_problem(
        with_ota("\"protocols\":[[\"MQTT\"]],\"streamname\":\"s\",\"files\":[{" GOOD_FILE "}]"),
        OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "protocols");
    expect_problem(
        with_ota("\"protocols\":{\"MQTT\":1},\"streamname\":\"s\",\"files\":[{" GOOD_FILE "}]"),
        OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "protocols");
    /* A colon inside an array is no JSON. */
    expect_problem(
        with_ota("\"protocols\":[\"MQTT\":1],\"streamname\":\"s\",\"files\":[{" GOOD_FILE "}]"),
        OTA_ERR_BAD_MESSAGE, OTA_JOB_PROBLEM_BAD_JSON, NULL);
    expect_problem(with_ota("\"protocols\":null,\"streamname\":\"s\",\"files\":[{" GOOD_FILE "}]"),
                   OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "protocols");
}

static void test_signature_methods(void **state)
{
    ota_job_t job;

    (void)state;
    /* ecdsa next to others: ecdsa is used. */
    expect_ok(file_with("sig-sha256-rsa", "\"AAAA\""), &job);
    check_sig(&job);
    expect_problem(file_with("sig-sha256-ecdsa", NULL), OTA_ERR_BAD_JOB_DOC,
                   OTA_JOB_PROBLEM_MISSING_FIELD, "sig-sha256-ecdsa");
    assert_int_equal(job.sig_method, OTA_SIG_SHA256_ECDSA);
    /* RSA alone: used with OTA_SIG_RSA, refused with its own problem without. */
    with_file("\"filesize\":1,\"fileid\":0,\"sig-sha256-rsa\":\"AAAA\"");
    if (OTA_SIG_RSA) {
        expect_ok(doc_buf, &job);
        assert_int_equal(job.sig_method, OTA_SIG_SHA256_RSA);
        assert_int_equal(job.signature_len, 3);
    } else {
        expect_problem(doc_buf, OTA_ERR_UNSUPPORTED, OTA_JOB_PROBLEM_SIG_METHOD_DISABLED,
                       "sig-sha256-rsa");
    }
    with_file("\"filesize\":1,\"fileid\":0,\"sig-sha256-rsa\":\"!!\"");
    if (OTA_SIG_RSA) {
        expect_problem(doc_buf, OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_SIGNATURE_ENCODING,
                       "sig-sha256-rsa");
    }
    with_file("\"filesize\":1,\"fileid\":0,\"sig-sha1-rsa\":\"AAAA\"");
    expect_problem(doc_buf, OTA_ERR_UNSUPPORTED, OTA_JOB_PROBLEM_UNKNOWN_SIG_METHOD, NULL);
    with_file("\"filesize\":1,\"fileid\":0,\"sig-sha384-ecdsa\":\"AAAA\"");
    expect_problem(doc_buf, OTA_ERR_UNSUPPORTED, OTA_JOB_PROBLEM_UNKNOWN_SIG_METHOD, NULL);
    /* Key names are exact: neither "sig-sha256-ecdsa2" nor "Sig-sha256-ecdsa". */
    with_file("\"filesize\":1,\"fileid\":0,\"sig-sha256-ecdsa2\":\"AAAA\"");
    expect_problem(doc_buf, OTA_ERR_UNSUPPORTED, OTA_JOB_PROBLEM_UNKNOWN_SIG_METHOD, NULL);
    with_file("\"filesize\":1,\"fileid\":0,\"Sig-sha256-ecdsa\":\"AAAA\"");
    expect_problem(doc_buf, OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_MISSING_FIELD, "sig-sha256-ecdsa");
}

/* ---- problems ------------------------------------------------------------ */

static void test_bad_json(void **state)
{
    static const char *const msgs[] = {
        "",
        " ",
        "null",
        "[]",
        "\"execution\"",
        "{",
        "}",
        "{\"execution\":{}",
        "{\"execution\":{}}}",
        "{\"execution\":{}}x",
        "{\"execution\":{}},",
        "{\"execution\":{}} {}",
        "x{\"execution\":{}}",
        ",{\"execution\":{}}",
        "{\"execution\":{]}",
        "{\"execution\" {\"jobId\":\"j\"}}",
        "{\"a\" \"b\"}",
        "{\"a\":1 \"execution\":2}",
        "{\"a\"}",
        "{1:2}",
        "{\"a\":\"\\x\"}",
        "{\"a\":\"\\u12g4\"}",
        "{\"a\":\"\\u\x10\x11\x12\x13\"}", /* raw control bytes are no hex digits */
        "{\"a\":\"\\u00\x16\x19\"}",
        "{\"a\":\"unterminated}",
        "{\"execution\":{}}\0",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        ota_job_t job;
        ota_job_issue_t issue;
        size_t len = strlen(msgs[i]) + (i == sizeof(msgs) / sizeof(msgs[0]) - 1);

        if (parse_n(msgs[i], len, &job, &issue) != OTA_ERR_BAD_MESSAGE ||
            issue.problem != OTA_JOB_PROBLEM_BAD_JSON) {
            print_error("input %zu: %s\n", i, msgs[i]);
            fail();
        }
        assert_null(issue.field);
    }
    /* Malformed JSON inside the job document: the job can still be failed. */
    expect_problem(with_ota("\"protocols\" [\"MQTT\"]"), OTA_ERR_BAD_JOB_DOC,
                   OTA_JOB_PROBLEM_BAD_JSON, "afr_ota");
}

static void test_bad_execution(void **state)
{
    (void)state;
    expect_problem("{\"execution\":[]}", OTA_ERR_BAD_MESSAGE, OTA_JOB_PROBLEM_BAD_VALUE,
                   "execution");
    expect_problem("{\"execution\":\"x\"}", OTA_ERR_BAD_MESSAGE, OTA_JOB_PROBLEM_BAD_VALUE,
                   "execution");
    expect_problem("{\"execution\":{}}", OTA_ERR_BAD_MESSAGE, OTA_JOB_PROBLEM_MISSING_FIELD,
                   "jobId");
    expect_problem("{\"execution\":{\"jobId\":null}}", OTA_ERR_BAD_MESSAGE,
                   OTA_JOB_PROBLEM_BAD_VALUE, "jobId");
    expect_problem("{\"execution\":{\"jobId\":7}}", OTA_ERR_BAD_MESSAGE, OTA_JOB_PROBLEM_BAD_VALUE,
                   "jobId");
    expect_problem("{\"execution\":{\"jobId\":\"\"}}", OTA_ERR_BAD_MESSAGE,
                   OTA_JOB_PROBLEM_BAD_VALUE, "jobId");
    expect_problem("{\"execution\":{\"jobId\":\"a/b\"}}", OTA_ERR_BAD_MESSAGE,
                   OTA_JOB_PROBLEM_BAD_VALUE, "jobId");
    expect_problem("{\"execution\":{\"jobId\":\"a\\/b\"}}", OTA_ERR_BAD_MESSAGE,
                   OTA_JOB_PROBLEM_BAD_VALUE, "jobId");
    expect_problem("{\"execution\":{\"jobId\":\"a+\"}}", OTA_ERR_BAD_MESSAGE,
                   OTA_JOB_PROBLEM_BAD_VALUE, "jobId");
    expect_problem("{\"execution\":{\"jobId\":\"#\"}}", OTA_ERR_BAD_MESSAGE,
                   OTA_JOB_PROBLEM_BAD_VALUE, "jobId");
    expect_problem("{\"execution\":{\"jobId\":\"a\\nb\"}}", OTA_ERR_BAD_MESSAGE,
                   OTA_JOB_PROBLEM_BAD_VALUE, "jobId");
    expect_problem("{\"execution\":{\"jobId\":\"a\\u0041\"}}", OTA_ERR_BAD_MESSAGE,
                   OTA_JOB_PROBLEM_BAD_VALUE, "jobId");
    expect_problem("{\"execution\":{\"jobId\":\"a\tb\"}}", OTA_ERR_BAD_MESSAGE,
                   OTA_JOB_PROBLEM_BAD_VALUE, "jobId");
    expect_problem("{\"execution\":{\"jobId\":\"a\",\"jobId\":\"b\"}}", OTA_ERR_BAD_MESSAGE,
                   OTA_JOB_PROBLEM_BAD_VALUE, "jobId");
    expect_problem("{\"execution\":{},\"execution\":{}}", OTA_ERR_BAD_MESSAGE,
                   OTA_JOB_PROBLEM_BAD_VALUE, "execution");
    expect_problem("{\"execution\":{\"jobId\":{\"a\":1}}}", OTA_ERR_BAD_MESSAGE,
                   OTA_JOB_PROBLEM_BAD_VALUE, "jobId");
}

static void test_bad_job_document(void **state)
{
    (void)state;
    expect_problem("{\"execution\":{\"jobId\":\"job-1\",\"status\":\"QUEUED\"}}",
                   OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_MISSING_FIELD, "jobDocument");
    expect_problem("{\"execution\":{\"jobId\":\"job-1\",\"status\":\"QUEUED\",\"jobDocument\":7}}",
                   OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "jobDocument");
    expect_problem("{\"execution\":{\"jobId\":\"job-1\",\"status\":\"QUEUED\",\"jobDocument\":"
                   "{\"operation\":\"reboot\"}}}",
                   OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_NO_AFR_OTA, "afr_ota");
    expect_problem("{\"execution\":{\"jobId\":\"job-1\",\"status\":\"QUEUED\",\"jobDocument\":"
                   "{\"afr_ota\":[]}}}",
                   OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "afr_ota");
    expect_problem("{\"execution\":{\"jobId\":\"job-1\",\"status\":\"WAITING\",\"jobDocument\":"
                   "{}}}",
                   OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "status");
    {
        ota_job_t job;
        ota_job_issue_t issue;

        assert_int_equal(parse("{\"execution\":{\"jobId\":\"job-1\",\"status\":1}}", &job, &issue),
                         OTA_ERR_BAD_JOB_DOC);
        assert_int_equal(job.status, OTA_JOB_STATUS_NONE);
        assert_string_equal(issue.field, "status");
    }
    expect_problem(with_ota("\"streamname\":\"s\",\"files\":[{" GOOD_FILE "}]"),
                   OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_MISSING_FIELD, "protocols");
    expect_problem(with_ota("\"protocols\":[\"MQTT\"],\"files\":[{" GOOD_FILE "}]"),
                   OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_MISSING_FIELD, "streamname");
    expect_problem(
        with_ota("\"protocols\":[\"MQTT\"],\"streamname\":\"\",\"files\":[{" GOOD_FILE "}]"),
        OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "streamname");
    expect_problem(
        with_ota("\"protocols\":[\"MQTT\"],\"streamname\":null,\"files\":[{" GOOD_FILE "}]"),
        OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "streamname");
    expect_problem(
        with_ota("\"protocols\":[\"MQTT\"],\"streamname\":\"a/b\",\"files\":[{" GOOD_FILE "}]"),
        OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "streamname");
    expect_problem(with_ota("\"protocols\":[\"MQTT\"],\"streamname\":\"s\""), OTA_ERR_BAD_JOB_DOC,
                   OTA_JOB_PROBLEM_MISSING_FIELD, "files");
    expect_problem(with_ota("\"protocols\":[\"MQTT\"],\"streamname\":\"s\",\"files\":[]"),
                   OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "files");
    expect_problem(with_ota("\"protocols\":[\"MQTT\"],\"streamname\":\"s\",\"files\":{}"),
                   OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "files");
    expect_problem(
        with_ota("\"protocols\":[\"MQTT\"],\"streamname\":\"s\",\"files\":[1,{" GOOD_FILE "}]"),
        OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "files");
    /* Only the first file counts: a broken second file is ignored. */
    {
        ota_job_t job;

        expect_ok(with_ota("\"protocols\":[\"MQTT\"],\"streamname\":\"s\",\"files\":[{" GOOD_FILE
                           "},{\"filesize\":0}]"),
                  &job);
        assert_int_equal(job.file_size, 366816);
    }
}

static void test_bad_file_fields(void **state)
{
    static const struct {
        const char *key, *value;
        ota_err_t err;
        ota_job_problem_t problem;
        const char *field;
    } cases[] = {
        {"filesize", NULL, OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_MISSING_FIELD, "filesize"},
        {"filesize", "0", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_ZERO_SIZE, "filesize"},
        {"filesize", "\"0\"", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_ZERO_SIZE, "filesize"},
        {"filesize", "\"0x0\"", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_ZERO_SIZE, "filesize"},
        {"filesize", "-1", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "filesize"},
        {"filesize", "1.5", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "filesize"},
        {"filesize", "1e3", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "filesize"},
        {"filesize", "\"12a\"", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "filesize"},
        {"filesize", "\" 12\"", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "filesize"},
        {"filesize", "\"\"", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "filesize"},
        {"filesize", "\"0x\"", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "filesize"},
        {"filesize", "\"0xg\"", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "filesize"},
        {"filesize", "\"+1\"", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "filesize"},
        {"filesize", "4294967296", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "filesize"},
        {"filesize", "99999999999999999999", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE,
         "filesize"},
        {"filesize", "\"0x100000000\"", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "filesize"},
        {"filesize", "true", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "filesize"},
        {"filesize", "null", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "filesize"},
        {"filesize", "[1]", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "filesize"},
        {"filesize", "\"1\\u0030\"", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "filesize"},
        {"fileid", NULL, OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_MISSING_FIELD, "fileid"},
        {"fileid", "256", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "fileid"},
        {"fileid", "\"0x100\"", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "fileid"},
        {"fileid", "null", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "fileid"},
        {"fileType", "256", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "fileType"},
        {"fileType", "\"x\"", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "fileType"},
        {"filepath", "7", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "filepath"},
        {"filepath", "{}", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "filepath"},
        {"filepath", "\"a\\u0041\"", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "filepath"},
        {"filepath", "\"a\\tb\"", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "filepath"},
        {"filepath", "\"a\\nb\"", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "filepath"},
        {"filepath", "\"a\\bb\"", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "filepath"},
        {"certfile", "false", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "certfile"},
        {"certfile", "\"a\\fb\"", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE, "certfile"},
        {"filesize", "1,\"filesize\":2", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_VALUE,
         "filesize"},
        {"sig-sha256-ecdsa", "7", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_SIGNATURE_ENCODING,
         "sig-sha256-ecdsa"},
        {"sig-sha256-ecdsa", "null", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_SIGNATURE_ENCODING,
         "sig-sha256-ecdsa"},
        {"sig-sha256-ecdsa", "\"\"", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_SIGNATURE_ENCODING,
         "sig-sha256-ecdsa"},
        {"sig-sha256-ecdsa", "\"\\n\"", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_SIGNATURE_ENCODING,
         "sig-sha256-ecdsa"},
        {"sig-sha256-ecdsa", "\"AAA\"", OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_BAD_SIGNATURE_ENCODING,
         "sig-sha256-ecdsa"},
        {"sig-sha256-ecdsa", "\"AB==\"", OTA_ERR_BAD_JOB_DOC,
         OTA_JOB_PROBLEM_BAD_SIGNATURE_ENCODING, "sig-sha256-ecdsa"},
        {"sig-sha256-ecdsa", "\"AA=A\"", OTA_ERR_BAD_JOB_DOC,
         OTA_JOB_PROBLEM_BAD_SIGNATURE_ENCODING, "sig-sha256-ecdsa"},
        {"sig-sha256-ecdsa", "\"AA AA\"", OTA_ERR_BAD_JOB_DOC,
         OTA_JOB_PROBLEM_BAD_SIGNATURE_ENCODING, "sig-sha256-ecdsa"},
        {"sig-sha256-ecdsa", "\"AA-_\"", OTA_ERR_BAD_JOB_DOC,
         OTA_JOB_PROBLEM_BAD_SIGNATURE_ENCODING, "sig-sha256-ecdsa"},
        {"sig-sha256-ecdsa", "\"AAAA\\tAAAA\"", OTA_ERR_BAD_JOB_DOC,
         OTA_JOB_PROBLEM_BAD_SIGNATURE_ENCODING, "sig-sha256-ecdsa"},
        {"sig-sha256-ecdsa", "\"AAAA\\u000aAAAA\"", OTA_ERR_BAD_JOB_DOC,
         OTA_JOB_PROBLEM_BAD_SIGNATURE_ENCODING, "sig-sha256-ecdsa"},
        {"sig-sha256-ecdsa", "[\"AAAA\"]", OTA_ERR_BAD_JOB_DOC,
         OTA_JOB_PROBLEM_BAD_SIGNATURE_ENCODING, "sig-sha256-ecdsa"},
        {"sig-sha256-ecdsa", "\"" SIG_B64 "\",\"sig-sha256-ecdsa\":\"AAAA\"", OTA_ERR_BAD_JOB_DOC,
         OTA_JOB_PROBLEM_BAD_VALUE, "sig-sha256-ecdsa"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        expect_problem(file_with(cases[i].key, cases[i].value), cases[i].err, cases[i].problem,
                       cases[i].field);
    }
}

/* The order of checks does not depend on the order of keys. */
/* "otterDeviceTypes": names kept as tags; bad lists are refused. */
static void test_device_types(void **state)
{
    ota_job_t job;
    uint32_t a = 0, b = 0;
    (void)state;
    assert_int_equal(ota_device_type_tag("sim-a", 5, &a), OTA_OK);
    assert_int_equal(ota_device_type_tag("esp32.c3_x", 10, &b), OTA_OK);
    expect_ok(file_with("otterDeviceTypes", "[\"sim-a\", \"esp32.c3_x\"]"), &job);
    assert_int_equal(job.n_device_types, 2);
    assert_int_equal(job.device_type_tags[0], a);
    assert_int_equal(job.device_type_tags[1], b);
    expect_ok(file_with("otterDeviceTypes", "null"), &job);
    assert_int_equal(job.n_device_types, 0);
    expect_ok(file_with("fileType", "0"), &job);
    assert_int_equal(job.n_device_types, 0);
    /* Exactly 16 names fit. */
    char list[1024] = "[";
    for (int i = 0; i < 17; i++) {
        char one[16];
        snprintf(one, sizeof one, "%s\"t%d\"", i ? "," : "", i);
        strcat(list, one);
        if (i == 15) {
            char sixteen[sizeof list + 1];
            snprintf(sixteen, sizeof sixteen, "%s]", list);
            expect_ok(file_with("otterDeviceTypes", sixteen), &job);
            assert_int_equal(job.n_device_types, 16);
        }
    }
    strcat(list, "]");
    const char *const bad[] = {
        "[]",
        "\"sim-a\"",
        "[1]",
        "[\"\"]",
        "[\"a b\"]",
        "[\"a\\/b\"]",
        "[\"a,b\"]",
        "[\"sim-a\",null]",
        "{\"a\":1}",
        "[[\"a\"]]",
        "[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]",
        list,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        expect_problem(file_with("otterDeviceTypes", bad[i]), OTA_ERR_BAD_JOB_DOC,
                       OTA_JOB_PROBLEM_BAD_VALUE, "otterDeviceTypes");
    }
}

static void test_problem_precedence(void **state)
{
    (void)state;
    /* filesize is checked before the signature, whatever comes first. */
    with_file("\"sig-sha256-rsa\":\"AAAA\",\"filesize\":0,\"fileid\":0");
    expect_problem(doc_buf, OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_ZERO_SIZE, "filesize");
    with_file("\"fileid\":0,\"filesize\":0,\"sig-sha256-rsa\":\"AAAA\"");
    expect_problem(doc_buf, OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_ZERO_SIZE, "filesize");
    /* protocols before files. */
    expect_problem(with_ota("\"files\":[],\"protocols\":[\"HTTP\"]"), OTA_ERR_UNSUPPORTED,
                   OTA_JOB_PROBLEM_NO_PROTOCOL, "protocols");
}

/* ---- boundary lengths ---------------------------------------------------- */

static void fill(char *buf, size_t n, char c)
{
    memset(buf, c, n);
    buf[n] = '\0';
}

/* Base64 characters of the longest signature (a multiple of 3 bytes: no padding). */
#define SIG_CHARS ((int)OTA_JOB_SIG_B64_MAX)
typedef char sig_max_is_a_multiple_of_3[OTA_PAL_SIGNATURE_MAX % 3u == 0u ? 1 : -1];

static void test_boundary_lengths(void **state)
{
    char s[OTA_JOB_SIG_B64_MAX + 300];
    char v[OTA_JOB_SIG_B64_MAX + 320];
    char msg[OTA_JOB_SIG_B64_MAX + 1024];
    ota_job_t job;

    (void)state;
    /* jobId */
    fill(s, OTA_JOB_ID_MAX, 'j');
    snprintf(msg, sizeof(msg), "{\"execution\":{\"jobId\":\"%s\",\"jobDocument\":{}}}", s);
    expect_problem(msg, OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_NO_AFR_OTA, "afr_ota");
    parse(msg, &job, NULL);
    assert_string_equal(job.job_id, s);
    fill(s, OTA_JOB_ID_MAX + 1, 'j');
    snprintf(msg, sizeof(msg), "{\"execution\":{\"jobId\":\"%s\",\"jobDocument\":{}}}", s);
    expect_problem(msg, OTA_ERR_BAD_MESSAGE, OTA_JOB_PROBLEM_FIELD_TOO_LONG, "jobId");
    /* An escape counts as one character. */
    fill(s, OTA_JOB_ID_MAX - 1, 'j');
    snprintf(msg, sizeof(msg), "{\"execution\":{\"jobId\":\"%s\\\\\",\"jobDocument\":{}}}", s);
    parse(msg, &job, NULL);
    assert_int_equal(strlen(job.job_id), OTA_JOB_ID_MAX);

    /* streamname */
    fill(s, OTA_STREAM_NAME_MAX, 's');
    snprintf(msg, sizeof(msg),
             "\"protocols\":[\"MQTT\"],\"streamname\":\"%s\",\"files\":[{" GOOD_FILE "}]", s);
    expect_ok(with_ota(msg), &job);
    assert_string_equal(job.stream, s);
    fill(s, OTA_STREAM_NAME_MAX + 1, 's');
    snprintf(msg, sizeof(msg),
             "\"protocols\":[\"MQTT\"],\"streamname\":\"%s\",\"files\":[{" GOOD_FILE "}]", s);
    expect_problem(with_ota(msg), OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_FIELD_TOO_LONG,
                   "streamname");

    /* filepath, with escapes counted decoded */
    fill(s, OTA_FILE_PATH_MAX, 'p');
    snprintf(v, sizeof(v), "\"%s\"", s);
    expect_ok(file_with("filepath", v), &job);
    assert_string_equal(job.file_path, s);
    snprintf(v, sizeof(v), "\"\\/%s\"", s + 1);
    expect_ok(file_with("filepath", v), &job);
    assert_int_equal(strlen(job.file_path), OTA_FILE_PATH_MAX);
    fill(s, OTA_FILE_PATH_MAX + 1, 'p');
    snprintf(v, sizeof(v), "\"%s\"", s);
    expect_problem(file_with("filepath", v), OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_FIELD_TOO_LONG,
                   "filepath");

    /* certfile */
    fill(s, OTA_CERT_NAME_MAX, 'c');
    snprintf(v, sizeof(v), "\"%s\"", s);
    expect_ok(file_with("certfile", v), &job);
    assert_string_equal(job.cert_name, s);
    fill(s, OTA_CERT_NAME_MAX + 1, 'c');
    snprintf(v, sizeof(v), "\"%s\"", s);
    expect_problem(file_with("certfile", v), OTA_ERR_BAD_JOB_DOC, OTA_JOB_PROBLEM_FIELD_TOO_LONG,
                   "certfile");

    /* signature: OTA_PAL_SIGNATURE_MAX bytes (72: 96 characters) fit, 3 more (100
     * characters) do not. */
    fill(s, SIG_CHARS, 'A');
    snprintf(v, sizeof(v), "\"%s\"", s);
    expect_ok(file_with("sig-sha256-ecdsa", v), &job);
    assert_int_equal(job.signature_len, OTA_PAL_SIGNATURE_MAX);
    /* ... also when wrapped, since line breaks do not count. */
    snprintf(v, sizeof(v), "\"%.*s\\r\\n%.*s\r\n\"", SIG_CHARS / 2, s, SIG_CHARS / 2, s);
    expect_ok(file_with("sig-sha256-ecdsa", v), &job);
    assert_int_equal(job.signature_len, OTA_PAL_SIGNATURE_MAX);
    fill(s, SIG_CHARS + 4, 'A');
    snprintf(v, sizeof(v), "\"%s\"", s);
    expect_problem(file_with("sig-sha256-ecdsa", v), OTA_ERR_BAD_JOB_DOC,
                   OTA_JOB_PROBLEM_FIELD_TOO_LONG, "sig-sha256-ecdsa");
    fill(s, SIG_CHARS + 1, 'A');
    snprintf(v, sizeof(v), "\"%s\"", s);
    expect_problem(file_with("sig-sha256-ecdsa", v), OTA_ERR_BAD_JOB_DOC,
                   OTA_JOB_PROBLEM_FIELD_TOO_LONG, "sig-sha256-ecdsa");
    /* Two bytes less (70) = as many characters with padding: fits. */
    fill(s, SIG_CHARS - 2, 'A');
    s[SIG_CHARS - 3] = 'B'; /* non-zero bits under the padding */
    snprintf(v, sizeof(v), "\"%s==\"", s);
    expect_problem(file_with("sig-sha256-ecdsa", v), OTA_ERR_BAD_JOB_DOC,
                   OTA_JOB_PROBLEM_BAD_SIGNATURE_ENCODING, "sig-sha256-ecdsa");
    s[SIG_CHARS - 3] = 'Q';
    snprintf(v, sizeof(v), "\"%s==\"", s);
    expect_ok(file_with("sig-sha256-ecdsa", v), &job);
    assert_int_equal(job.signature_len, OTA_PAL_SIGNATURE_MAX - 2);
}

/* ---- truncation, tokens, arguments ------------------------------------- */

static void test_truncation(void **state)
{
    const char *msgs[3];
    size_t m;

    (void)state;
    msgs[0] = spec_accepted;
    msgs[1] = "{\"timestamp\":1700000000,\"execution\":{\"jobId\":\"j\",\"status\":\"QUEUED\","
              "\"statusDetails\":{\"self_test\":\"ready\",\"updatedBy\":\"0x00090002\"},"
              "\"jobDocument\":{\"afr_ota\":{\"protocols\":\"MQTT\",\"streamname\":\"s\","
              "\"files\":[{\"filesize\":\"0x10\",\"fileid\":1,\"filepath\":null,"
              "\"sig-sha256-ecdsa\":\"AAAA\\r\\nAAAA\"}]}}}}";
    msgs[2] = "{\"clientToken\":\"x\",\"timestamp\":1700000000}";
    for (m = 0; m < 3; m++) {
        size_t len = strlen(msgs[m]);
        size_t n;
        ota_job_t job;

        assert_true(parse_n(msgs[m], len, &job, NULL) == (m == 2 ? OTA_ERR_NOT_FOUND : OTA_OK));
        for (n = 0; n < len; n++) {
            ota_job_issue_t issue;
            ota_err_t err = parse_n(msgs[m], n, &job, &issue);

            if (err != OTA_ERR_BAD_MESSAGE || issue.problem != OTA_JOB_PROBLEM_BAD_JSON) {
                print_error("message %zu cut at %zu: %s\n", m, n, ota_err_str(err));
                fail();
            }
            check_terminated(&job);
        }
    }
}

/* The largest message the agent expects: every field AWS sends, ten statusDetails keys. */
static const char full_message[] =
    "{\"clientToken\":\"12:my-thing\",\"timestamp\":1700000300,\"execution\":{"
    "\"jobId\":\"AFR_OTA-rollout-7\",\"thingName\":\"my-thing\",\"status\":\"IN_PROGRESS\","
    "\"statusDetails\":{\"self_test\":\"ready\",\"updatedBy\":\"0x00090002\",\"receive\":\"90/90\","
    "\"reason\":\"x\",\"detail\":\"y\",\"k6\":\"6\",\"k7\":\"7\",\"k8\":\"8\",\"k9\":\"9\","
    "\"k10\":\"10\"},"
    "\"queuedAt\":1700000000,\"startedAt\":1700000010,\"lastUpdatedAt\":1700000290,"
    "\"versionNumber\":5,\"executionNumber\":1,\"jobDocument\":{\"afr_ota\":{"
    "\"protocols\":[\"MQTT\",\"HTTP\"],\"streamname\":\"AFR_OTA-0f3c6a0e-1a2b-4c3d-8e9f-"
    "0123456789ab\","
    "\"files\":[{\"filepath\":\"firmware.bin\",\"filesize\":366816,\"fileid\":0,"
    "\"certfile\":\"codesign.crt\",\"fileType\":0,\"update_data_url\":null,\"auth_scheme\":null,"
    "\"attr\":[1,2],\"sig-sha256-ecdsa\":\"" SIG_B64 "\"}]}}}}";

/* Nesting up to OTA_JOB_MAX_DEPTH is taken (in values the parser skips too), deeper is refused. */
static void test_nesting_depth(void **state)
{
    char msg[256];
    ota_job_t job;
    ota_job_issue_t issue;

    (void)state;
    assert_int_equal(parse(full_message, &job, &issue), OTA_OK);
    assert_int_equal(job.received_blocks, 90);
    assert_int_equal(job.total_blocks, 90);
    assert_int_equal(job.protocols, OTA_PROTO_MQTT | OTA_PROTO_HTTP);
    for (unsigned depth = 2; depth <= OTA_JOB_MAX_DEPTH + 1u; depth++) {
        size_t n = 0;
        /* {"x": then depth - 1 arrays: depth levels in all. */
        n += (size_t)snprintf(msg + n, sizeof msg - n, "{\"x\":");
        for (unsigned k = 1; k < depth; k++) {
            msg[n++] = '[';
        }
        for (unsigned k = 1; k < depth; k++) {
            msg[n++] = ']';
        }
        n += (size_t)snprintf(msg + n, sizeof msg - n, ",\"timestamp\":1}");
        if (depth <= OTA_JOB_MAX_DEPTH) {
            assert_int_equal(parse(msg, &job, &issue), OTA_ERR_NOT_FOUND);
        } else {
            assert_int_equal(parse(msg, &job, &issue), OTA_ERR_OUT_OF_MEMORY);
            assert_int_equal(issue.problem, OTA_JOB_PROBLEM_TOO_DEEP);
            assert_null(issue.field);
        }
        check_terminated(&job);
    }
}

static void test_invalid_args(void **state)
{
    ota_job_t job;
    ota_job_issue_t issue;

    (void)state;
    assert_int_equal(ota_job_parse(NULL, 2, &job, &issue), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_job_parse("{}", 2, NULL, &issue), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_job_parse("{}", (size_t)INT32_MAX + 1u, &job, &issue),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_job_parse("{}", 2, &job, NULL), OTA_ERR_NOT_FOUND);
}

static void test_problem_strings(void **state)
{
    int i;
    int j;

    (void)state;
    for (i = 0; i < OTA_JOB_PROBLEM_COUNT; i++) {
        const char *s = ota_job_problem_str((ota_job_problem_t)i);

        assert_non_null(s);
        assert_true(strlen(s) > 0 && strlen(s) < 32);
        assert_string_not_equal(s, "unknown problem");
        for (j = 0; j < i; j++) {
            assert_string_not_equal(s, ota_job_problem_str((ota_job_problem_t)j));
        }
    }
    assert_string_equal(ota_job_problem_str((ota_job_problem_t)OTA_JOB_PROBLEM_COUNT),
                        "unknown problem");
    assert_string_equal(ota_job_problem_str((ota_job_problem_t)-1), "unknown problem");
    assert_string_equal(ota_job_problem_str(OTA_JOB_PROBLEM_NO_AFR_OTA), "not an OTA job");
}

/* ---- base64 --------------------------------------------------------------- */

static ota_err_t b64(const char *text, uint8_t *out, size_t cap, size_t *len)
{
    return ota_base64_decode(text, strlen(text), out, cap, len);
}

static void test_base64_vectors(void **state)
{
    /* RFC 4648 section 10. */
    static const char *const enc[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                      "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    static const char *const dec[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    uint8_t out[16];
    size_t len;
    size_t i;

    (void)state;
    for (i = 0; i < 7; i++) {
        len = 99;
        assert_int_equal(b64(enc[i], out, sizeof(out), &len), OTA_OK);
        assert_int_equal(len, strlen(dec[i]));
        assert_memory_equal(out, dec[i], len);
    }
    assert_int_equal(b64("Zm9v\r\nYmFy\n", out, sizeof(out), &len), OTA_OK);
    assert_int_equal(len, 6);
    assert_int_equal(b64("\nZ\rm\r\n9\nv\n\n", out, sizeof(out), &len), OTA_OK);
    assert_int_equal(len, 3);
    assert_int_equal(b64("\r\n", out, sizeof(out), &len), OTA_OK);
    assert_int_equal(len, 0);
    assert_int_equal(b64("Zg=\n=", out, sizeof(out), &len), OTA_OK);
    assert_int_equal(len, 1);
    assert_int_equal(b64("+/+/", out, sizeof(out), &len), OTA_OK);
    assert_int_equal(out[0], 0xfb);
    assert_int_equal(out[1], 0xff);
    assert_int_equal(out[2], 0xbf);
    /* Exact fit, then one byte short. */
    assert_int_equal(b64("Zm9vYmFy", out, 6, &len), OTA_OK);
    assert_int_equal(b64("Zm9vYmFy", out, 5, &len), OTA_ERR_OUT_OF_MEMORY);
    assert_int_equal(b64("Zm9vYg==", out, 4, &len), OTA_OK);
    assert_int_equal(b64("Zm9vYg==", out, 3, &len), OTA_ERR_OUT_OF_MEMORY);
    assert_int_equal(b64("", NULL, 0, &len), OTA_OK);
    assert_int_equal(ota_base64_decode(NULL, 0, NULL, 0, &len), OTA_OK);
    assert_int_equal(len, 0);
}

static void test_base64_rejects(void **state)
{
    static const char *const bad[] = {
        "Z",    "Zg",      "Zg=",    "Zm9",          "Zg==Zg==", "Zh==",    "Zm9=",   "Zm9vY===",
        "=Zg=", "Z===",    "====",   "Zg=a",         "Zm 9v",    "Zm9v ",   "Zm9v\t", "Zm-9",
        "Zm_9", "Zm9v\\n", "Zm9v\0", "Zg==\r\nZg==", "Zg==A",    "Zm9vYmF",
    };
    uint8_t out[16];
    size_t len;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n = strlen(bad[i]) + (strcmp(bad[i], "Zm9v") == 0);

        len = 1234;
        if (ota_base64_decode(bad[i], n, out, sizeof(out), &len) != OTA_ERR_BAD_MESSAGE) {
            print_error("accepted %s\n", bad[i]);
            fail();
        }
        assert_int_equal(len, 1234);
    }
    assert_int_equal(ota_base64_decode("Zm9v", 4, out, 4, NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_base64_decode(NULL, 4, out, 4, &len), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_base64_decode("Zm9v", 4, NULL, 4, &len), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_base64_decode("Zm9v", 4, NULL, 0, &len), OTA_ERR_OUT_OF_MEMORY);
}

/* ---- random cross-checks --------------------------------------------------- */

static uint64_t rng_state;

static uint32_t rnd(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}

static uint32_t below(uint32_t n)
{
    return n ? rnd() % n : 0;
}

/* Mbed TLS encodes, we decode: random bytes, with and without line breaks. */
static void test_base64_against_mbedtls(void **state)
{
    const uint64_t seed = 0x6f7461623634ull;
    int iter;

    (void)state;
    rng_state = seed;
    for (iter = 0; iter < 4000; iter++) {
        uint8_t data[200];
        unsigned char text[400];
        char wrapped[800];
        uint8_t out[200];
        size_t n = below(sizeof(data) + 1);
        size_t tlen = 0;
        size_t wlen = 0;
        size_t olen = 0;
        size_t i;

        for (i = 0; i < n; i++) {
            data[i] = (uint8_t)rnd();
        }
        assert_int_equal(mbedtls_base64_encode(text, sizeof(text), &tlen, data, n), 0);
        if (ota_base64_decode((const char *)text, tlen, out, sizeof(out), &olen) != OTA_OK ||
            olen != n || memcmp(out, data, n) != 0) {
            print_error("seed %llx iteration %d: %.*s\n", (unsigned long long)seed, iter, (int)tlen,
                        text);
            fail();
        }
        if (n > 0) {
            assert_int_equal(ota_base64_decode((const char *)text, tlen, out, n - 1, &olen),
                             OTA_ERR_OUT_OF_MEMORY);
        }
        /* Line breaks anywhere. */
        for (i = 0; i < tlen; i++) {
            uint32_t r = below(8);

            if (r == 0) {
                wrapped[wlen++] = '\r';
                wrapped[wlen++] = '\n';
            } else if (r == 1) {
                wrapped[wlen++] = '\n';
            } else if (r == 2) {
                wrapped[wlen++] = '\r';
            }
            wrapped[wlen++] = (char)text[i];
        }
        if (ota_base64_decode(wrapped, wlen, out, sizeof(out), &olen) != OTA_OK || olen != n ||
            memcmp(out, data, n) != 0) {
            print_error("seed %llx iteration %d: wrapped %.*s\n", (unsigned long long)seed, iter,
                        (int)wlen, wrapped);
            fail();
        }
    }
    /* Random text over the alphabet and "=": we accept exactly the canonical
     * encodings among what Mbed TLS accepts. */
    for (iter = 0; iter < 20000; iter++) {
        static const char alphabet[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/====";
        char in[20];
        unsigned char mb[32];
        unsigned char again[40];
        uint8_t ours[32];
        size_t n = below(13);
        size_t mlen = 0;
        size_t alen = 0;
        size_t olen = 0;
        size_t i;
        int mb_ok;
        int canonical;
        int ours_ok;

        for (i = 0; i < n; i++) {
            /* Mostly A, so that zero trailing bits are common. */
            in[i] = below(3) == 0 ? 'A' : alphabet[below(sizeof(alphabet) - 1)];
        }
        mb_ok = mbedtls_base64_decode(mb, sizeof(mb), &mlen, (const unsigned char *)in, n) == 0;
        canonical = mb_ok && mbedtls_base64_encode(again, sizeof(again), &alen, mb, mlen) == 0 &&
                    alen == n && memcmp(again, in, n) == 0;
        ours_ok = ota_base64_decode(in, n, ours, sizeof(ours), &olen) == OTA_OK;
        if (ours_ok != canonical || (ours_ok && (olen != mlen || memcmp(ours, mb, mlen) != 0))) {
            print_error("seed %llx iteration %d: %.*s ours %d mbedtls %d canonical %d\n",
                        (unsigned long long)seed, iter, (int)n, in, ours_ok, mb_ok, canonical);
            fail();
        }
    }
}

/* Inserts random JSON whitespace between tokens (outside strings). */
static void sprinkle(const char *in, char *out, size_t cap)
{
    static const char ws[] = " \t\r\n";
    size_t o = 0;
    int in_str = 0;

    for (; *in != '\0' && o + 8 < cap; in++) {
        char c = *in;

        out[o++] = c;
        if (in_str) {
            if (c == '\\') {
                out[o++] = *++in;
            } else if (c == '"') {
                in_str = 0;
            }
        } else if (c == '"') {
            in_str = 1;
        }
        if (!in_str &&
            (c == ',' || c == ':' || c == '{' || c == '[' || c == '"' || c == '}' || c == ']') &&
            below(3) == 0) {
            uint32_t k = below(4) + 1;

            while (k-- > 0) {
                out[o++] = ws[below(4)];
            }
        }
    }
    out[o] = '\0';
}

static void random_id(char *buf, size_t min, size_t max, const char *alphabet)
{
    size_t n = min + below((uint32_t)(max - min + 1));
    size_t i;
    size_t k = strlen(alphabet);

    for (i = 0; i < n; i++) {
        buf[i] = alphabet[below((uint32_t)k)];
    }
    buf[n] = '\0';
}

/* Adds key to obj as a JSON number, a decimal string or a hex string. */
static void add_number(cJSON *obj, const char *key, uint32_t v)
{
    char text[24];

    switch (below(4)) {
    case 0:
        snprintf(text, sizeof(text), "%u", (unsigned)v);
        cJSON_AddStringToObject(obj, key, text);
        break;
    case 1:
        snprintf(text, sizeof(text), below(2) ? "0x%x" : "0X%08X", (unsigned)v);
        cJSON_AddStringToObject(obj, key, text);
        break;
    default:
        cJSON_AddNumberToObject(obj, key, (double)v);
        break;
    }
}

/* A random value for an unknown key, nested up to depth. */
static cJSON *random_value(int depth)
{
    char s[16];
    uint32_t k = below(depth > 0 ? 8 : 5);
    cJSON *v;
    uint32_t i;
    uint32_t n;

    switch (k) {
    case 0:
        return cJSON_CreateNull();
    case 1:
        return cJSON_CreateBool((int)below(2));
    case 2:
        return cJSON_CreateNumber((double)(int32_t)rnd() / 8.0);
    case 3:
    case 4:
        random_id(s, 0, 12, "ab{}[]\":,\\/ \n\tx");
        return cJSON_CreateString(s);
    case 5:
    case 6:
        v = cJSON_CreateObject();
        n = below(4);
        for (i = 0; i < n; i++) {
            /* Known key names nested inside unknown values must be ignored. */
            static const char *const names[] = {"jobId", "filesize",         "afr_ota",
                                                "files", "sig-sha256-ecdsa", "x"};

            cJSON_AddItemToObject(v, names[below(6)], random_value(depth - 1));
        }
        return v;
    default:
        v = cJSON_CreateArray();
        n = below(4);
        for (i = 0; i < n; i++) {
            cJSON_AddItemToArray(v, random_value(depth - 1));
        }
        return v;
    }
}

/* Adds the items of items[] to obj in random order, plus a few unknown keys. */
static void add_shuffled(cJSON *obj, cJSON **items, const char **keys, size_t n)
{
    size_t i;
    uint32_t extra = below(3);

    for (i = n; i > 1; i--) {
        size_t j = below((uint32_t)i);
        cJSON *t = items[i - 1];
        const char *k = keys[i - 1];

        items[i - 1] = items[j];
        keys[i - 1] = keys[j];
        items[j] = t;
        keys[j] = k;
    }
    for (i = 0; i < n; i++) {
        if (items[i] != NULL) {
            cJSON_AddItemToObject(obj, keys[i], items[i]);
        }
        if (extra > 0 && below(3) == 0) {
            char name[12];

            random_id(name, 1, 10, "abcdefxyz_");
            cJSON_AddItemToObject(obj, name, random_value(3));
            extra--;
        }
    }
}

/* What a random document should parse to. */
typedef struct expect {
    ota_err_t err;
    ota_job_problem_t problem;
    ota_job_t job;
} expect_t;

/* Faults injected into some documents (one at most). */
enum {
    FAULT_NONE,
    FAULT_ZERO_SIZE,
    FAULT_BIG_ID,
    FAULT_NO_SIZE,
    FAULT_RSA,
    FAULT_HTTP_ONLY,
    FAULT_LONG_STREAM,
    FAULT_NO_AFR_OTA,
    FAULT_NO_EXECUTION,
    FAULT_COUNT
};

/* Builds one random message in cJSON; fills want. */
static cJSON *random_message(expect_t *want)
{
    static const char *const statuses[] = {"QUEUED",    "IN_PROGRESS", "SUCCEEDED", "FAILED",
                                           "TIMED_OUT", "REJECTED",    "REMOVED",   "CANCELED"};
    static const char id_chars[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    static const char path_chars[] = "abcdefghijklmnopqrstuvwxyz0123456789_-./\\\" ";
    ota_job_t *j = &want->job;
    uint32_t fault = below(3) == 0 ? 1 + below(FAULT_COUNT - 1) : FAULT_NONE;
    cJSON *root = cJSON_CreateObject();
    cJSON *exec;
    cJSON *doc;
    cJSON *ota;
    cJSON *files;
    cJSON *file;
    cJSON *items[16];
    const char *keys[16];
    size_t en = 0;
    size_t n;
    uint8_t sig[OTA_PAL_SIGNATURE_MAX];
    unsigned char sig_text[OTA_JOB_SIG_B64_MAX + 8];
    size_t sig_text_len = 0;
    char text[400];
    size_t i;

    memset(want, 0, sizeof(*want));
    want->err = OTA_OK;

    /* execution */
    exec = cJSON_CreateObject();
    random_id(j->job_id, 1, OTA_JOB_ID_MAX, id_chars);
    keys[en] = "jobId";
    items[en++] = cJSON_CreateString(j->job_id);
    if (below(4) != 0) {
        j->status = (ota_job_status_t)(1 + below(8));
        keys[en] = "status";
        items[en++] = cJSON_CreateString(statuses[j->status - 1]);
    }
    keys[en] = "thingName";
    items[en++] = cJSON_CreateString("thing");
    keys[en] = "queuedAt";
    items[en++] = cJSON_CreateNumber(1700000000);
    if (below(2)) {
        j->version_number = below(100000);
        keys[en] = "versionNumber";
        items[en++] = cJSON_CreateNumber(j->version_number);
    }
    if (below(2)) {
        cJSON *d = cJSON_CreateObject();
        cJSON *ditems[6];
        const char *dkeys[6];
        size_t dn = 0;

        if (below(2)) {
            uint32_t k = below(3);

            j->self_test = (uint8_t)k;
            dkeys[dn] = "self_test";
            ditems[dn++] = cJSON_CreateString(k == 1 ? "ready" : k == 2 ? "active" : "maybe");
        }
        if (below(2)) {
            j->has_updated_by = 1;
            j->updated_by = rnd();
            snprintf(text, sizeof(text), "0x%08x", (unsigned)j->updated_by);
            dkeys[dn] = "updatedBy";
            ditems[dn++] = cJSON_CreateString(text);
        }
        if (below(2)) {
            j->has_receive = 1;
            j->total_blocks = below(100000);
            j->received_blocks = below(j->total_blocks + 1);
            snprintf(text, sizeof(text), "%u/%u", (unsigned)j->received_blocks,
                     (unsigned)j->total_blocks);
            dkeys[dn] = "receive";
            ditems[dn++] = cJSON_CreateString(text);
        }
        dkeys[dn] = "reason";
        ditems[dn++] = cJSON_CreateString("accepted  v0.9.3");
        add_shuffled(d, ditems, dkeys, dn);
        keys[en] = "statusDetails";
        items[en++] = d;
    }

    /* afr_ota */
    ota = cJSON_CreateObject();
    {
        cJSON *oitems[8];
        const char *okeys[8];
        size_t on = 0;
        cJSON *protocols = cJSON_CreateArray();
        uint32_t pr = fault == FAULT_HTTP_ONLY ? 2 : below(2) ? 1 : 3;

        if (pr & 1) {
            cJSON_AddItemToArray(protocols, cJSON_CreateString("MQTT"));
        }
        if (pr & 2) {
            cJSON_AddItemToArray(protocols, cJSON_CreateString("HTTP"));
        }
        if (below(2) && pr == 3) {
            /* Reverse order sometimes. */
            cJSON_Delete(protocols);
            protocols = cJSON_CreateArray();
            cJSON_AddItemToArray(protocols, cJSON_CreateString("HTTP"));
            cJSON_AddItemToArray(protocols, cJSON_CreateString("MQTT"));
        }
        j->protocols = (uint8_t)pr;
        okeys[on] = "protocols";
        oitems[on++] = protocols;
        random_id(j->stream, 1, fault == FAULT_LONG_STREAM ? 0 : OTA_STREAM_NAME_MAX, id_chars);
        if (fault == FAULT_LONG_STREAM) {
            random_id(text, OTA_STREAM_NAME_MAX + 1, OTA_STREAM_NAME_MAX + 40, id_chars);
            j->stream[0] = '\0';
            okeys[on] = "streamname";
            oitems[on++] = cJSON_CreateString(text);
        } else {
            okeys[on] = "streamname";
            oitems[on++] = cJSON_CreateString(j->stream);
        }

        /* The file. */
        file = cJSON_CreateObject();
        {
            cJSON *fitems[12];
            const char *fkeys[12];
            size_t fn = 0;
            uint32_t r = below(3);

            if (r == 0) {
                fkeys[fn] = "filepath";
                fitems[fn++] = cJSON_CreateNull();
            } else if (r == 1) {
                j->has_file_path = 1;
                random_id(j->file_path, 0, OTA_FILE_PATH_MAX, path_chars);
                fkeys[fn] = "filepath";
                fitems[fn++] = cJSON_CreateString(j->file_path);
            }
            r = below(3);
            if (r == 0) {
                fkeys[fn] = "certfile";
                fitems[fn++] = cJSON_CreateNull();
            } else if (r == 1) {
                j->has_cert_name = 1;
                random_id(j->cert_name, 0, OTA_CERT_NAME_MAX, path_chars);
                fkeys[fn] = "certfile";
                fitems[fn++] = cJSON_CreateString(j->cert_name);
            }
            j->file_size = fault == FAULT_ZERO_SIZE ? 0
                           : below(2)               ? 1 + below(1000000)
                                                    : rnd() | 1u;
            if (fault != FAULT_NO_SIZE) {
                cJSON *tmp = cJSON_CreateObject();

                add_number(tmp, "filesize", j->file_size);
                fkeys[fn] = "filesize";
                fitems[fn++] = cJSON_DetachItemFromObject(tmp, "filesize");
                cJSON_Delete(tmp);
            }
            j->file_id = fault == FAULT_BIG_ID ? 256 + below(100000) : below(256);
            {
                cJSON *tmp = cJSON_CreateObject();

                add_number(tmp, "fileid", j->file_id);
                fkeys[fn] = "fileid";
                fitems[fn++] = cJSON_DetachItemFromObject(tmp, "fileid");
                cJSON_Delete(tmp);
            }
            if (below(2)) {
                cJSON *tmp = cJSON_CreateObject();

                j->file_type = below(256);
                add_number(tmp, "fileType", j->file_type);
                fkeys[fn] = "fileType";
                fitems[fn++] = cJSON_DetachItemFromObject(tmp, "fileType");
                cJSON_Delete(tmp);
            }
            if (below(2)) {
                fkeys[fn] = "update_data_url";
                fitems[fn++] = cJSON_CreateNull();
                fkeys[fn] = "auth_scheme";
                fitems[fn++] = cJSON_CreateNull();
            }
            if (below(3) == 0) {
                fkeys[fn] = "attr";
                fitems[fn++] = random_value(2);
            }
            j->signature_len = 1 + below(OTA_PAL_SIGNATURE_MAX);
            for (i = 0; i < j->signature_len; i++) {
                sig[i] = (uint8_t)rnd();
            }
            memcpy(j->signature, sig, j->signature_len);
            assert_int_equal(mbedtls_base64_encode(sig_text, sizeof(sig_text), &sig_text_len, sig,
                                                   j->signature_len),
                             0);
            {
                /* Sometimes with line breaks (cJSON writes them as \r \n). */
                char wrapped[3 * OTA_JOB_SIG_B64_MAX];
                size_t w = 0;

                for (i = 0; i < sig_text_len; i++) {
                    if (below(16) == 0) {
                        wrapped[w++] = '\r';
                        wrapped[w++] = '\n';
                    }
                    wrapped[w++] = (char)sig_text[i];
                }
                wrapped[w] = '\0';
                fkeys[fn] = fault == FAULT_RSA ? "sig-sha256-rsa" : "sig-sha256-ecdsa";
                fitems[fn++] = cJSON_CreateString(wrapped);
            }
            if (below(4) == 0) {
                fkeys[fn] = "sig-sha1-rsa";
                fitems[fn++] = cJSON_CreateString("AAAA");
            }
            add_shuffled(file, fitems, fkeys, fn);
        }
        files = cJSON_CreateArray();
        cJSON_AddItemToArray(files, file);
        n = below(3);
        for (i = 0; i < n; i++) {
            cJSON_AddItemToArray(files, random_value(2));
        }
        okeys[on] = "files";
        oitems[on++] = files;
        add_shuffled(ota, oitems, okeys, on);
    }
    doc = cJSON_CreateObject();
    if (fault == FAULT_NO_AFR_OTA) {
        cJSON_Delete(ota);
        cJSON_AddStringToObject(doc, "operation", "reboot");
    } else {
        if (below(2)) {
            cJSON_AddItemToObject(doc, "other", random_value(2));
        }
        cJSON_AddItemToObject(doc, "afr_ota", ota);
    }
    if (fault == FAULT_NO_AFR_OTA) {
        want->err = OTA_ERR_BAD_JOB_DOC;
        want->problem = OTA_JOB_PROBLEM_NO_AFR_OTA;
    }
    keys[en] = "jobDocument";
    items[en++] = doc;
    add_shuffled(exec, items, keys, en);

    /* The wrapper: $next/get/accepted or notify-next. */
    en = 0;
    if (below(2)) {
        keys[en] = "clientToken";
        items[en++] = cJSON_CreateString("7:thing");
    }
    keys[en] = "timestamp";
    items[en++] = cJSON_CreateNumber(1700000000 + below(1000));
    if (fault == FAULT_NO_EXECUTION) {
        cJSON_Delete(exec);
        memset(want, 0, sizeof(*want));
        want->err = OTA_ERR_NOT_FOUND;
    } else {
        keys[en] = "execution";
        items[en++] = exec;
    }
    add_shuffled(root, items, keys, en);

    /* Expected outcome of the other faults (the document is otherwise good). */
    switch (fault) {
    case FAULT_ZERO_SIZE:
        want->err = OTA_ERR_BAD_JOB_DOC;
        want->problem = OTA_JOB_PROBLEM_ZERO_SIZE;
        break;
    case FAULT_BIG_ID:
        want->err = OTA_ERR_BAD_JOB_DOC;
        want->problem = OTA_JOB_PROBLEM_BAD_VALUE;
        break;
    case FAULT_NO_SIZE:
        want->err = OTA_ERR_BAD_JOB_DOC;
        want->problem = OTA_JOB_PROBLEM_MISSING_FIELD;
        break;
    case FAULT_RSA:
        /* Usable only in a build with RSA signatures. */
        want->job.sig_method = OTA_SIG_RSA ? OTA_SIG_SHA256_RSA : OTA_SIG_SHA256_ECDSA;
        if (!OTA_SIG_RSA) {
            want->err = OTA_ERR_UNSUPPORTED;
            want->problem = OTA_JOB_PROBLEM_SIG_METHOD_DISABLED;
        }
        break;
    case FAULT_HTTP_ONLY:
        want->err = OTA_ERR_UNSUPPORTED;
        want->problem = OTA_JOB_PROBLEM_NO_PROTOCOL;
        break;
    case FAULT_LONG_STREAM:
        want->err = OTA_ERR_BAD_JOB_DOC;
        want->problem = OTA_JOB_PROBLEM_FIELD_TOO_LONG;
        break;
    default:
        break;
    }
    return root;
}

static void test_random_documents_against_cjson(void **state)
{
    const uint64_t seed = 0x6a6f62646f63ull;
    int iter;

    (void)state;
    for (iter = 0; iter < 5000; iter++) {
        expect_t want;
        ota_job_t got;
        ota_job_issue_t issue;
        cJSON *msg;
        char *text;
        char *spaced;
        size_t cap;
        ota_err_t err;
        int ok;

        rng_state = seed + (uint64_t)iter * 0x100000001ull;
        msg = random_message(&want);
        text = below(2) ? cJSON_PrintUnformatted(msg) : cJSON_Print(msg);
        assert_non_null(text);
        cap = strlen(text) * 3 + 16;
        spaced = malloc(cap);
        assert_non_null(spaced);
        sprinkle(text, spaced, cap);
        err = parse(spaced, &got, &issue);
        ok = err == want.err && issue.problem == want.problem;
        if (ok && (err == OTA_OK || err == OTA_ERR_BAD_JOB_DOC || err == OTA_ERR_UNSUPPORTED)) {
            ok = strcmp(got.job_id, want.job.job_id) == 0 && got.status == want.job.status &&
                 got.self_test == want.job.self_test &&
                 got.has_updated_by == want.job.has_updated_by &&
                 got.updated_by == want.job.updated_by && got.has_receive == want.job.has_receive &&
                 got.received_blocks == want.job.received_blocks &&
                 got.total_blocks == want.job.total_blocks &&
                 got.version_number == want.job.version_number;
        }
        if (ok && err == OTA_OK) {
            ok = got.protocols == want.job.protocols && strcmp(got.stream, want.job.stream) == 0 &&
                 got.has_file_path == want.job.has_file_path &&
                 strcmp(got.file_path, want.job.file_path) == 0 &&
                 got.has_cert_name == want.job.has_cert_name &&
                 strcmp(got.cert_name, want.job.cert_name) == 0 &&
                 got.file_size == want.job.file_size && got.file_id == want.job.file_id &&
                 got.file_type == want.job.file_type && got.sig_method == want.job.sig_method &&
                 got.signature_len == want.job.signature_len &&
                 memcmp(got.signature, want.job.signature, got.signature_len) == 0;
        }
        if (!ok) {
            print_error(
                "seed %llx iteration %d: want %s/%s got %s/%s (%s)\n%s\n", (unsigned long long)seed,
                iter, ota_err_str(want.err), ota_job_problem_str(want.problem), ota_err_str(err),
                ota_job_problem_str(issue.problem), issue.field ? issue.field : "-", spaced);
            fail();
        }
        check_terminated(&got);
        free(spaced);
        cJSON_free(text);
        cJSON_Delete(msg);
    }
}

/* ---- the JSON scanner against cJSON ------------------------------------ */

static int cjson_depth(const cJSON *item)
{
    int deepest = 0;
    const cJSON *c;

    if (!cJSON_IsObject(item) && !cJSON_IsArray(item)) {
        return 0;
    }
    for (c = item->child; c != NULL; c = c->next) {
        int d = cjson_depth(c);
        deepest = d > deepest ? d : deepest;
    }
    return deepest + 1;
}

/* 1 if a backslash-u in buf lacks its four hex digits. */
static int bad_unicode_escape(const char *buf, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (buf[i] == '\\' && buf[i + 1] == 'u') {
            for (size_t h = i + 2; h < i + 6; h++) {
                if (h >= len || strchr("0123456789abcdefABCDEF", buf[h]) == NULL || buf[h] == 0) {
                    return 1;
                }
            }
        }
        if (buf[i] == '\\') {
            i++; /* an escaped backslash does not start another escape */
        }
    }
    return 0;
}

typedef struct oracle_counts {
    unsigned both_json, both_not, lenient;
} oracle_counts_t;

/*
 * One message through the parser and through cJSON. What cJSON takes as one
 * object (no NUL, nested at most OTA_JOB_MAX_DEPTH) the parser takes as JSON
 * too, and a job both read has the job id cJSON sees. The parser may take
 * more than cJSON (bare words such as 0x1f, raw control characters in
 * strings, as the FreeRTOS agent does); those are counted.
 */
static void oracle_check(const char *buf, size_t len, oracle_counts_t *counts)
{
    ota_job_t job;
    ota_job_issue_t issue;
    const char *end = NULL;
    ota_err_t err = parse_n(buf, len, &job, &issue);
    int ours =
        issue.problem != OTA_JOB_PROBLEM_BAD_JSON && issue.problem != OTA_JOB_PROBLEM_TOO_DEEP;
    cJSON *cj = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    int theirs = cj != NULL && cJSON_IsObject(cj) && memchr(buf, 0, len) == NULL &&
                 cjson_depth(cj) <= (int)OTA_JOB_MAX_DEPTH;

    if (theirs) {
        for (const char *e = end; e < buf + len; e++) {
            theirs &= *e == ' ' || *e == '\t' || *e == '\r' || *e == '\n';
        }
    }
    if (theirs && bad_unicode_escape(buf, len)) {
        theirs = 0; /* cJSON passes over a \u without four hex digits; JSON does not */
    }
    if (theirs && !ours) {
        print_error("cJSON takes what the parser refuses (%s): %.*s\n", ota_err_str(err), (int)len,
                    buf);
        fail();
    }
    if (theirs && ours && (err == OTA_OK || err == OTA_ERR_BAD_JOB_DOC)) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cj, "execution"), "jobId");
        if (cJSON_IsString(id) && strchr(id->valuestring, '\\') == NULL &&
            strcmp(id->valuestring, job.job_id) != 0) {
            print_error("job id %s, cJSON reads %s\n", job.job_id, id->valuestring);
            fail();
        }
    }
    counts->both_json += (unsigned)(theirs && ours);
    counts->both_not += (unsigned)(!theirs && !ours);
    counts->lenient += (unsigned)(!theirs && ours);
    check_terminated(&job);
    cJSON_Delete(cj);
}

/* Appends a message and mutations of it (a byte removed, changed or repeated). */
static void oracle_variants(const char *msg, size_t len, oracle_counts_t *counts)
{
    static const char bytes[] = "{}[],:\" \\0x-1eu";
    char *v = malloc(len + 2);

    assert_non_null(v);
    oracle_check(msg, len, counts);
    for (int m = 0; m < 24 && len > 0; m++) {
        size_t at = (size_t)below((uint32_t)len);
        size_t n = len;
        memcpy(v, msg, len);
        switch (below(3)) {
        case 0: /* remove */
            memmove(v + at, v + at + 1, len - at - 1);
            n--;
            break;
        case 1: /* change */
            v[at] = bytes[below(sizeof bytes - 1)];
            break;
        default: /* repeat */
            memmove(v + at + 1, v + at, len - at);
            n++;
            break;
        }
        oracle_check(v, n, counts);
    }
    free(v);
}

static void test_scanner_against_cjson(void **state)
{
    oracle_counts_t counts = {0, 0, 0};
    unsigned files = 0;
    char path[512];
    struct dirent *e;
    DIR *dir = opendir(OTA_FUZZ_JOB_SEEDS);
    int iter;

    (void)state;
    rng_state = 0x6a736f6e6f72ull;
    /* The fuzz corpus. */
    assert_non_null(dir);
    while ((e = readdir(dir)) != NULL) {
        FILE *f;
        char buf[8192];
        size_t n;

        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", OTA_FUZZ_JOB_SEEDS, e->d_name);
        f = fopen(path, "rb");
        assert_non_null(f);
        n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        oracle_variants(buf, n, &counts);
        files++;
    }
    closedir(dir);
    /* Generated documents. */
    for (iter = 0; iter < 1000; iter++) {
        expect_t want;
        cJSON *msg = random_message(&want);
        char *text = cJSON_PrintUnformatted(msg);

        assert_non_null(text);
        oracle_variants(text, strlen(text), &counts);
        cJSON_free(text);
        cJSON_Delete(msg);
    }
    printf("scanner vs cJSON: %u corpus files and 1000 generated documents with 24 mutations "
           "each: %u JSON to both, %u to neither, %u taken only by the parser's FreeRTOS-like "
           "leniency\n",
           files, counts.both_json, counts.both_not, counts.lenient);
    assert_true(files > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_get_accepted),
        cmocka_unit_test(test_spec_notify_next),
        cmocka_unit_test(test_aws_console_document),
        cmocka_unit_test(test_no_execution),
        cmocka_unit_test(test_numbers_as_strings_and_hex),
        cmocka_unit_test(test_nulls_and_absent_optionals),
        cmocka_unit_test(test_unknown_keys_everywhere),
        cmocka_unit_test(test_signature_line_breaks_and_escapes),
        cmocka_unit_test(test_string_escapes),
        cmocka_unit_test(test_statuses),
        cmocka_unit_test(test_status_details),
        cmocka_unit_test(test_protocols),
        cmocka_unit_test(test_signature_methods),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_bad_execution),
        cmocka_unit_test(test_bad_job_document),
        cmocka_unit_test(test_bad_file_fields),
        cmocka_unit_test(test_problem_precedence),
        cmocka_unit_test(test_device_types),
        cmocka_unit_test(test_boundary_lengths),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_nesting_depth),
        cmocka_unit_test(test_invalid_args),
        cmocka_unit_test(test_problem_strings),
        cmocka_unit_test(test_base64_vectors),
        cmocka_unit_test(test_base64_rejects),
        cmocka_unit_test(test_base64_against_mbedtls),
        cmocka_unit_test(test_random_documents_against_cjson),
        cmocka_unit_test(test_scanner_against_cjson),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
