/*
 * otter CLI tests, end to end: `otter broker init`, `thing create` and
 * `job create` set up a real Mosquitto and otter-service; scripted devices
 * fetch the job, download the file block by block over MQTT, check its
 * signature with the device verifier, and report; `otter watch --json` shows
 * their progress and ends with the right exit code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <cbor.h>
#include <cjson/cJSON.h>
#include <mbedtls/base64.h>

#include "cli_test_util.h"
#include "otter/ota_image_header.h"
#include "ota_test_net.h"
#include "otter/ota_verify.h"
#include "ota_test_util.h"

/** Block size the devices ask for. */
#define BLOCK 256u

static cli_run_t g_run;

/** The broker, the service and the logins. */
struct world {
    int port;
    ota_test_broker_t broker;
    ota_test_proc_t service;
};

static struct world g;

/** Where the running watch writes. */
static const char *g_watch_out;

/* Reads the "password" of a credentials file. */
static void read_password(const char *path, char out[64])
{
    char *text = (char *)cli_test_read(path, NULL);
    assert_non_null(text);
    cJSON *o = cJSON_Parse(text);
    free(text);
    const cJSON *pw = cJSON_GetObjectItemCaseSensitive(o, "password");
    assert_true(cJSON_IsString(pw));
    snprintf(out, 64, "%s", pw->valuestring);
    cJSON_Delete(o);
}

static int setup(void **state)
{
    (void)state;
    memset(&g, 0, sizeof g);
    if (cli_test_begin() != 0 || (g.port = ota_test_free_port()) <= 0) {
        return -1;
    }
    char port[16];
    snprintf(port, sizeof port, "%d", g.port);
    if (cli_test_run(&g_run, "broker", "init", "--port", port, NULL) != 0 ||
        cli_test_run(&g_run, "thing", "create", "A", NULL) != 0 ||
        cli_test_run(&g_run, "thing", "create", "B", NULL) != 0 ||
        cli_test_run(&g_run, "keygen", "--out", cli_test_path("keys"), NULL) != 0) {
        fprintf(stderr, "setup: %s\n", g_run.err);
        return -1;
    }
    /* Mosquitto on what broker init wrote (things created before it started). */
    if (ota_test_broker_start(&g.broker, cli_test_data()) != 0 || g.broker.port != g.port) {
        ota_test_broker_stop(&g.broker);
        return -1;
    }
    /* Plain subscriptions: Mosquitto 2.0 delivers no $aws message to $share ones. */
    const char *extra[] = {"--share-group", "none", NULL};
    if (ota_test_service_start(&g.service, cli_test_data(), &g.broker, extra,
                               cli_test_path("service.log")) != 0) {
        ota_test_proc_stop(&g.service);
        ota_test_broker_stop(&g.broker);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ota_test_proc_stop(&g.service);
    ota_test_broker_stop(&g.broker);
    cli_test_end();
    return 0;
}

/** A scripted device. */
struct device {
    const char *name;
    ota_test_client_t *c;
    char topic[256];
};

/* Connects a device with the credentials `thing create` wrote for it. */
static void device_connect(struct device *d, const char *name)
{
    char pw[64];
    read_password(cli_test_path("data/things/%s.json", name), pw);
    d->name = name;
    d->c = ota_test_client_connect(g.port, name, name, pw);
    assert_non_null(d->c);
}

/* Asks for the next job; returns the execution object (caller deletes the root). */
static cJSON *device_next_job(struct device *d, cJSON **root)
{
    snprintf(d->topic, sizeof d->topic, "$aws/things/%s/jobs/$next/get/accepted", d->name);
    assert_true(ota_test_client_subscribe(d->c, d->topic, 1) >= 0);
    char req[256];
    snprintf(req, sizeof req, "$aws/things/%s/jobs/$next/get", d->name);
    const char *token = "{\"clientToken\":\"e2e\"}";
    assert_int_equal(ota_test_client_publish(d->c, req, token, strlen(token), 1), 0);
    ota_test_msg_t *m = ota_test_client_expect(d->c, d->topic, 10000);
    assert_non_null(m);
    *root = cJSON_Parse((const char *)m->payload);
    ota_test_msg_free(m);
    assert_non_null(*root);
    cJSON *e = cJSON_GetObjectItemCaseSensitive(*root, "execution");
    assert_true(cJSON_IsObject(e));
    return e;
}

/* Sends a status update and waits for the service to accept it. */
static void device_status(struct device *d, const char *job, const char *status,
                          const char *details)
{
    char topic[256], acc[300], body[512];
    snprintf(topic, sizeof topic, "$aws/things/%s/jobs/%s/update", d->name, job);
    snprintf(acc, sizeof acc, "%s/accepted", topic);
    assert_true(ota_test_client_subscribe(d->c, acc, 1) >= 0);
    snprintf(body, sizeof body, "{\"status\":\"%s\",\"statusDetails\":%s}", status, details);
    assert_int_equal(ota_test_client_publish(d->c, topic, body, strlen(body), 1), 0);
    ota_test_msg_t *m = ota_test_client_expect(d->c, acc, 10000);
    if (m == NULL) {
        fail_msg("no update/accepted for %s %s", d->name, body);
    }
    ota_test_msg_free(m);
    /* Wait until the watch has shown it, so no state goes unseen. */
    if (g_watch_out == NULL) {
        return;
    }
    char who[160];
    snprintf(who, sizeof who, "\"thing\":\"%s\"", d->name);
    if (cli_test_wait_line(g_watch_out, who, details, 10000) != 0) {
        fail_msg("watch never showed %s for %s", details, d->name);
    }
}

/* Adds a text-keyed pair to a CBOR map. */
static void map_put(cbor_item_t *map, const char *key, cbor_item_t *value)
{
    assert_true(cbor_map_add(map, (struct cbor_pair){.key = cbor_move(cbor_build_string(key)),
                                                     .value = cbor_move(value)}));
}

/* Downloads file 0 of a stream: every block in one request, any order. */
static uint8_t *device_download(struct device *d, const char *stream, size_t size)
{
    size_t blocks = (size + BLOCK - 1) / BLOCK;
    assert_true(blocks <= 64);
    char data[256], get[256];
    snprintf(data, sizeof data, "$aws/things/%s/streams/%s/data/cbor", d->name, stream);
    snprintf(get, sizeof get, "$aws/things/%s/streams/%s/get/cbor", d->name, stream);
    assert_true(ota_test_client_subscribe(d->c, data, 0) >= 0);
    uint8_t bitmap[8] = {0};
    for (size_t i = 0; i < blocks; i++) {
        bitmap[i / 8] |= (uint8_t)(1u << (i % 8));
    }
    cbor_item_t *req = cbor_new_definite_map(6);
    map_put(req, "c", cbor_build_string("e2e"));
    map_put(req, "f", cbor_build_uint8(0));
    map_put(req, "l", cbor_build_uint16(BLOCK));
    map_put(req, "o", cbor_build_uint8(0));
    map_put(req, "b", cbor_build_bytestring(bitmap, (blocks + 7) / 8));
    map_put(req, "n", cbor_build_uint8((uint8_t)blocks));
    unsigned char *buf = NULL;
    size_t buf_size = 0, len = cbor_serialize_alloc(req, &buf, &buf_size);
    cbor_decref(&req);
    assert_true(len > 0);
    assert_int_equal(ota_test_client_publish(d->c, get, buf, len, 0), 0);
    free(buf);

    uint8_t *file = calloc(1, size);
    assert_non_null(file);
    size_t got = 0;
    uint8_t seen[64] = {0};
    while (got < blocks) {
        ota_test_msg_t *m = ota_test_client_expect(d->c, data, 10000);
        if (m == NULL) {
            fail_msg("%s: block %zu of %zu never came", d->name, got, blocks);
        }
        struct cbor_load_result res;
        cbor_item_t *msg = cbor_load(m->payload, m->len, &res);
        assert_non_null(msg);
        assert_true(cbor_isa_map(msg));
        cbor_item_t *i = ota_test_map_get(msg, "i"), *p = ota_test_map_get(msg, "p"),
                    *f = ota_test_map_get(msg, "f");
        assert_non_null(i);
        assert_non_null(p);
        assert_non_null(f);
        assert_int_equal(cbor_get_int(f), 0);
        size_t idx = (size_t)cbor_get_int(i);
        assert_true(idx < blocks);
        size_t want = idx + 1 < blocks ? BLOCK : size - (blocks - 1) * BLOCK;
        assert_int_equal(cbor_bytestring_length(p), want);
        memcpy(file + idx * BLOCK, cbor_bytestring_handle(p), want);
        if (!seen[idx]) {
            seen[idx] = 1;
            got++;
        }
        cbor_decref(&msg);
        ota_test_msg_free(m);
    }
    return file;
}

/* Reader over memory for the verifier. */
struct mem {
    const uint8_t *p;
    size_t n;
};

static int32_t mem_read(void *ctx, uint32_t off, uint8_t *buf, uint32_t len)
{
    const struct mem *m = ctx;
    if ((size_t)off + len > m->n) {
        return OTA_ERR_IO;
    }
    memcpy(buf, m->p + off, len);
    return (int32_t)len;
}

/* What a device does with its job: fetch, download, verify, report. */
static void device_update(struct device *d, const char *job_id, int succeed)
{
    cJSON *root = NULL;
    cJSON *e = device_next_job(d, &root);
    assert_string_equal(cJSON_GetObjectItem(e, "jobId")->valuestring, job_id);
    cJSON *f = cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "jobDocument"), "afr_ota"),
                            "files"),
        0);
    const char *stream =
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "jobDocument"), "afr_ota"),
                            "streamname")
            ->valuestring;
    size_t size = (size_t)cJSON_GetObjectItem(f, "filesize")->valuedouble;
    const char *sig64 = cJSON_GetObjectItem(f, "sig-sha256-ecdsa")->valuestring;
    char blocks[64];
    size_t n_blocks = (size + BLOCK - 1) / BLOCK;
    snprintf(blocks, sizeof blocks, "{\"receive\":\"1/%zu\"}", n_blocks);
    device_status(d, job_id, "IN_PROGRESS", blocks);

    uint8_t *file = device_download(d, stream, size);
    snprintf(blocks, sizeof blocks, "{\"receive\":\"%zu/%zu\"}", n_blocks, n_blocks);
    device_status(d, job_id, "IN_PROGRESS", blocks);

    /* The device's checks: image header and code signature. */
    ota_image_header_t h;
    assert_int_equal(ota_image_header_decode(file, size, &h), OTA_OK);
    assert_int_equal(h.version, 0x01020003u);
    uint8_t sig[80];
    size_t sig_len = 0;
    assert_int_equal(mbedtls_base64_decode(sig, sizeof sig, &sig_len, (const unsigned char *)sig64,
                                           strlen(sig64)),
                     0);
    size_t pem_len = 0;
    unsigned char *pem = cli_test_read(cli_test_path("keys/codesign.crt"), &pem_len);
    struct mem m = {file, size};
    uint8_t chunk[128];
    assert_int_equal(ota_verify_sha256_ecdsa(pem, pem_len, sig, sig_len, mem_read, &m,
                                             (uint32_t)size, chunk, sizeof chunk),
                     OTA_OK);
    free(pem);
    free(file);
    device_status(d, job_id, "IN_PROGRESS",
                  "{\"self_test\":\"ready\",\"updatedBy\":\"0x01020002\"}");
    if (succeed) {
        device_status(d, job_id, "SUCCEEDED",
                      "{\"reason\":\"accepted v1.2.3\",\"updatedBy\":\"0x01020002\"}");
    } else {
        /* What the agent reports when the port refuses to activate an image
         * below the device's anti-rollback minimum (OTA_ERR_ROLLBACK). */
        device_status(d, job_id, "FAILED",
                      "{\"reason\":\"0x000000f7: 0x00000000\",\"detail\":\"the port cannot "
                      "activate\"}");
    }
    cJSON_Delete(root);
}

/* Starts `otter watch` writing to out; devices' reports wait for its lines. */
static pid_t start_watch(const char *const *argv, const char *out)
{
    pid_t pid = cli_test_spawn(argv, out, cli_test_path("watch.err"));
    assert_true(pid > 0);
    g_watch_out = out;
    return pid;
}

/* Runs the whole update for A and B while `otter watch --json` follows it. */
static void run_update(const char *job_id, int b_succeeds, int want_exit)
{
    const char *fw = cli_test_path("app.bin");
    uint8_t app[3000];
    for (size_t i = 0; i < sizeof app; i++) {
        app[i] = (uint8_t)(i * 7 + 1);
    }
    assert_int_equal(cli_test_write(fw, app, sizeof app), 0);
    assert_int_equal(cli_test_run(&g_run, "job", "create", "--file", fw, "--version", "1.2.3",
                                  "--targets", "A,B", "--key", cli_test_path("keys/codesign.key"),
                                  "--job-id", job_id, NULL),
                     0);
    const char *argv[] = {"watch", job_id, "--json", "--timeout", "60", NULL};
    const char *out = cli_test_path("watch.out");
    pid_t pid = start_watch(argv, out);
    struct device a, b;
    device_connect(&a, "A");
    device_connect(&b, "B");
    device_update(&a, job_id, 1);
    device_update(&b, job_id, b_succeeds);
    assert_int_equal(cli_test_wait(pid, 20000), want_exit);
    ota_test_client_disconnect(a.c);
    ota_test_client_disconnect(b.c);

    /* Every line is JSON; the progress of both devices is there. */
    char *text = (char *)cli_test_read(out, NULL);
    assert_non_null(text);
    int saw_a_receive = 0, saw_b_self_test = 0, saw_b_final = 0;
    cJSON *last = NULL;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON_Delete(last);
        last = cJSON_Parse(line);
        assert_non_null(last);
        const cJSON *thing = cJSON_GetObjectItem(last, "thing");
        const cJSON *total = cJSON_GetObjectItem(last, "total");
        const cJSON *st = cJSON_GetObjectItem(last, "self_test");
        const cJSON *status = cJSON_GetObjectItem(last, "status");
        if (cJSON_IsString(thing) && strcmp(thing->valuestring, "A") == 0 && total) {
            saw_a_receive |= total->valueint == 12;
        }
        if (cJSON_IsString(thing) && strcmp(thing->valuestring, "B") == 0 && st) {
            saw_b_self_test |= strcmp(st->valuestring, "ready") == 0;
        }
        if (cJSON_IsString(thing) && strcmp(thing->valuestring, "B") == 0 &&
            cJSON_IsString(status)) {
            saw_b_final = strcmp(status->valuestring, b_succeeds ? "SUCCEEDED" : "FAILED") == 0;
        }
    }
    assert_true(saw_a_receive);
    assert_true(saw_b_self_test);
    assert_true(saw_b_final);
    assert_string_equal(cJSON_GetObjectItem(last, "result")->valuestring,
                        b_succeeds ? "SUCCEEDED" : "FAILED");
    cJSON_Delete(last);
    free(text);

    /* job show agrees. */
    assert_int_equal(cli_test_run(&g_run, "job", "show", job_id, NULL), 0);
    assert_non_null(strstr(g_run.out, "status:     COMPLETED"));
    assert_non_null(strstr(g_run.out, b_succeeds ? "succeeded 2" : "succeeded 1, failed 1"));
    if (!b_succeeds) {
        /* The operator reads the error's name and meaning, not just its number. */
        assert_non_null(strstr(g_run.out, "\"detail\":\"the port cannot activate\"}  "
                                          "(OTA_ERR_ROLLBACK: anti-rollback: the image's security "
                                          "counter is below the device's minimum"));
        /* and so does thing show, where the same execution is listed */
        assert_int_equal(cli_test_run(&g_run, "thing", "show", "B", NULL), 0);
        assert_non_null(strstr(g_run.out, "(OTA_ERR_ROLLBACK: anti-rollback:"));
    }
}

static void test_update_all_succeed(void **state)
{
    (void)state;
    run_update("e2e-ok", 1, 0);
}

static void test_update_one_fails(void **state)
{
    (void)state;
    run_update("e2e-fail", 0, 1);
}

/* Asks for the next job: its id into out, "" when there is none. */
static void device_next_id(struct device *d, char *out, size_t cap)
{
    snprintf(d->topic, sizeof d->topic, "$aws/things/%s/jobs/$next/get/accepted", d->name);
    assert_true(ota_test_client_subscribe(d->c, d->topic, 1) >= 0);
    char req[256];
    snprintf(req, sizeof req, "$aws/things/%s/jobs/$next/get", d->name);
    assert_int_equal(ota_test_client_publish(d->c, req, "{}", 2, 1), 0);
    ota_test_msg_t *m = ota_test_client_expect(d->c, d->topic, 10000);
    assert_non_null(m);
    cJSON *root = cJSON_Parse((const char *)m->payload);
    ota_test_msg_free(m);
    assert_non_null(root);
    const cJSON *id = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "execution"), "jobId");
    snprintf(out, cap, "%s", cJSON_IsString(id) ? id->valuestring : "");
    cJSON_Delete(root);
}

/* Asks for the next job and checks there is none. */
static void device_expect_no_job(struct device *d)
{
    char id[80];
    device_next_id(d, id, sizeof id);
    if (id[0]) {
        fail_msg("%s was offered job %s", d->name, id);
    }
}

/* Asks for the next job until it is job_id (the service releases it on its own). */
static void device_wait_job(struct device *d, const char *job_id, int timeout_s)
{
    char id[80] = "";
    for (int i = 0; i < timeout_s * 4; i++) {
        device_next_id(d, id, sizeof id);
        if (strcmp(id, job_id) == 0) {
            return;
        }
        usleep(250000);
    }
    fail_msg("%s never got job %s (last: '%s')", d->name, job_id, id);
}

/* `job show ID` until its output contains text. */
static void wait_job_show(const char *job_id, const char *text, int timeout_s)
{
    for (int i = 0; i < timeout_s * 4; i++) {
        assert_int_equal(cli_test_run(&g_run, "job", "show", job_id, NULL), 0);
        if (strstr(g_run.out, text)) {
            return;
        }
        usleep(250000);
    }
    fail_msg("job show %s never showed '%s':\n%s", job_id, text, g_run.out);
}

/* Targeting against the running service: a job names device types and is sent
 * only to those; a thing already on the job's version (as it reported on an
 * earlier job) is skipped, counted apart and never a failure. */
static void test_targeting(void **state)
{
    (void)state;
    assert_int_equal(cli_test_run(&g_run, "thing", "set", "A", "deviceType=sim", "site=lab", NULL),
                     0);
    assert_int_equal(cli_test_run(&g_run, "thing", "set", "B", "deviceType=board-x", NULL), 0);
    const char *fw = cli_test_path("app.bin");
    uint8_t app[3000];
    for (size_t i = 0; i < sizeof app; i++) {
        app[i] = (uint8_t)(i * 7 + 1);
    }
    assert_int_equal(cli_test_write(fw, app, sizeof app), 0);
    const char *key = cli_test_path("keys/codesign.key");
    assert_int_equal(cli_test_run(&g_run, "job", "create", "--file", fw, "--version", "1.2.3",
                                  "--targets", "A,B", "--key", key, "--device-types", "sim,board-y",
                                  "--abort-failure-percent", "1", "--abort-min-finished", "1",
                                  "--job-id", "t1", NULL),
                     0);
    const char *argv[] = {"watch", "t1", "--json", "--timeout", "60", NULL};
    const char *out = cli_test_path("watch.out");
    pid_t pid = start_watch(argv, out);
    struct device a, b;
    device_connect(&a, "A");
    device_connect(&b, "B");
    device_expect_no_job(&b); /* another device type: nothing is sent */
    /* The document names the version and the device types for the agent. */
    cJSON *root = NULL;
    cJSON *f = cJSON_GetArrayItem(
        cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(device_next_job(&a, &root), "jobDocument"),
                                "afr_ota"),
            "files"),
        0);
    assert_string_equal(cJSON_GetObjectItem(f, "otterVersion")->valuestring, "1.2.3");
    const cJSON *types = cJSON_GetObjectItem(f, "otterDeviceTypes");
    assert_int_equal(cJSON_GetArraySize(types), 2);
    assert_string_equal(cJSON_GetArrayItem(types, 1)->valuestring, "board-y");
    cJSON_Delete(root);
    device_update(&a, "t1", 1);
    assert_int_equal(cli_test_wait(pid, 20000), 0); /* a skip is not a failure */
    char *text = (char *)cli_test_read(out, NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "\"skipped\":1"));
    assert_non_null(strstr(text, "\"result\":\"SUCCEEDED\""));
    free(text);
    assert_int_equal(cli_test_run(&g_run, "job", "show", "t1", NULL), 0);
    assert_non_null(strstr(g_run.out, "status:     COMPLETED"));
    assert_non_null(strstr(g_run.out, "succeeded 1, failed 0"));
    assert_non_null(strstr(g_run.out, "skipped 1)"));
    assert_non_null(strstr(g_run.out, "version:    1.2.3\ndevices:    sim,board-y\n"));
    assert_non_null(strstr(g_run.out, "device type board-x is not one of sim,board-y"));

    /* A reported 1.2.3 by succeeding: the service knows what it runs. */
    assert_int_equal(cli_test_run(&g_run, "thing", "list", NULL), 0);
    assert_non_null(strstr(g_run.out, "sim              1.2.3"));
    assert_int_equal(cli_test_run(&g_run, "thing", "show", "A", NULL), 0);
    assert_non_null(strstr(g_run.out, "firmwareVersion"));
    assert_non_null(strstr(g_run.out, "site "));

    /* The same version again: A is skipped at once, is offered nothing, and the
     * job completes without a single download. */
    assert_int_equal(cli_test_run(&g_run, "job", "create", "--file", fw, "--version", "1.2.3",
                                  "--targets", "A", "--key", key, "--job-id", "t2", NULL),
                     0);
    device_expect_no_job(&a);
    assert_int_equal(cli_test_run(&g_run, "job", "show", "t2", NULL), 0);
    assert_non_null(strstr(g_run.out, "status:     COMPLETED"));
    assert_non_null(strstr(g_run.out, "already on 1.2.3"));
    assert_int_equal(cli_test_run(&g_run, "watch", "t2", "--json", NULL), 0);

    /* Bad input is refused with a clear line and changes nothing. */
    assert_int_equal(cli_test_run(&g_run, "job", "create", "--file", fw, "--version", "1.2.4",
                                  "--targets", "A", "--key", key, "--device-types", "sim,,x", NULL),
                     2);
    assert_non_null(strstr(g_run.err, "bad --device-types 'sim,,x'"));
    assert_int_equal(cli_test_run(&g_run, "thing", "set", "A", "firmwareVersion= 1.2.3", NULL), 2);
    assert_non_null(strstr(g_run.err, "bad firmwareVersion"));
    assert_int_equal(cli_test_run(&g_run, "thing", "set", "nobody", "deviceType=sim", NULL), 1);
    assert_non_null(strstr(g_run.err, "unknown thing 'nobody'"));
    assert_int_equal(cli_test_run(&g_run, "thing", "unset", "A", "nokey", NULL), 1);
    assert_int_equal(cli_test_run(&g_run, "job", "list", NULL), 0);
    size_t lines = 0;
    for (const char *c = g_run.out; *c; c++) {
        lines += *c == '\n';
    }
    assert_int_equal(lines, 3); /* the header, t1 and t2 */
    ota_test_client_disconnect(a.c);
    ota_test_client_disconnect(b.c);
}

/* Writes app.bin and creates a job on it with extra options (NULL-terminated). */
static void create_job(const char *job_id, const char *targets, ...)
{
    const char *fw = cli_test_path("app.bin");
    uint8_t app[3000];
    for (size_t i = 0; i < sizeof app; i++) {
        app[i] = (uint8_t)(i * 7 + 1);
    }
    assert_int_equal(cli_test_write(fw, app, sizeof app), 0);
    const char *argv[40] = {
        "job",      "create",    "--file", fw,      "--version",
        "1.2.3",    "--targets", targets,  "--key", cli_test_path("keys/codesign.key"),
        "--job-id", job_id};
    size_t n = 12;
    va_list ap;
    va_start(ap, targets);
    for (const char *a = va_arg(ap, const char *); a && n < 39; a = va_arg(ap, const char *)) {
        argv[n++] = a;
    }
    va_end(ap);
    argv[n] = NULL;
    if (cli_test_runv(&g_run, argv) != 0) {
        fail_msg("job create %s: %s", job_id, g_run.err);
    }
}

/* Rollouts, abort rules, cancels and timeouts against the running service. */
static void test_rollout_rules(void **state)
{
    (void)state;
    assert_int_equal(cli_test_run(&g_run, "thing", "create", "C", NULL), 0);
    assert_int_equal(cli_test_run(&g_run, "thing", "create", "D", NULL), 0);
    struct device a, b, c, d;
    device_connect(&a, "A");
    device_connect(&b, "B");
    device_connect(&c, "C");
    device_connect(&d, "D");
    g_watch_out = NULL;

    /* An in-progress timeout of one minute, left to run while the rest goes on. */
    create_job("r-timeout", "D", "--timeout-minutes", "1", NULL);
    device_wait_job(&d, "r-timeout", 10);
    device_status(&d, "r-timeout", "IN_PROGRESS", "{\"receive\":\"1/12\"}");

    /* Phases: a third first; the rest once it succeeded; then the abort rule
     * FAILED >= 50% once 2 executed fires and cancels what is left. */
    create_job("r-phase", "A,B,C", "--phases", "33,100", "--phase-success", "100", "--abort",
               "FAILED:50:2,TIMED_OUT:10:5", NULL);
    char id[80];
    device_next_id(&b, id, sizeof id);
    assert_string_equal(id, "");
    device_next_id(&c, id, sizeof id);
    assert_string_equal(id, "");
    device_wait_job(&a, "r-phase", 10);
    device_status(&a, "r-phase", "SUCCEEDED", "{\"reason\":\"accepted v1.2.3\"}");
    device_wait_job(&b, "r-phase", 10);
    device_wait_job(&c, "r-phase", 10);
    device_status(&b, "r-phase", "FAILED", "{\"reason\":\"rejected: 0x00000010\"}");
    wait_job_show("r-phase", "status:     ABORTED", 10);
    assert_non_null(strstr(g_run.out, "reason:     ABORT_FAILED: 1 of 2 executed things FAILED "
                                      "(50%), rule FAILED >= 50% once 2 executed"));
    assert_non_null(strstr(g_run.out, "canceled 1"));
    assert_null(strstr(g_run.out, "held by rollout"));
    assert_non_null(strstr(g_run.out, "abort:      TIMED_OUT >= 10% once 5 executed"));
    device_expect_no_job(&c);

    /* Exponential rate: one thing in the first minute; a window that is closed
     * now releases nothing; a scheduled start releases at its time. */
    create_job("r-exp", "B,C", "--rate-base", "1", "--rate-factor", "2", "--rate-increase-every",
               "5", NULL);
    device_wait_job(&b, "r-exp", 10);
    device_expect_no_job(&c);
    assert_int_equal(cli_test_run(&g_run, "job", "cancel", "r-exp", "--reason-code", "DONE_HERE",
                                  "--comment", "enough for today", NULL),
                     0);
    wait_job_show("r-exp", "reason:     DONE_HERE: enough for today", 5);
    time_t now = time(NULL);
    int minute = (int)((now / 60) % 1440);
    char window[16];
    snprintf(window, sizeof window, "%02d:%02d-%02d:%02d", (minute + 120) % 1440 / 60,
             (minute + 120) % 60, (minute + 180) % 1440 / 60, (minute + 180) % 60);
    create_job("r-window", "B", "--window", window, NULL);
    device_expect_no_job(&b);
    assert_int_equal(cli_test_run(&g_run, "job", "delete", "r-window", NULL), 1);
    assert_non_null(strstr(g_run.err, "is IN_PROGRESS; cancel it first"));
    assert_int_equal(cli_test_run(&g_run, "job", "delete", "r-window", "--force", NULL), 0);
    assert_int_equal(cli_test_run(&g_run, "job", "show", "r-window", NULL), 1);
    create_job("r-start", "C", "--start-at", "+4", NULL);
    device_expect_no_job(&c);
    device_wait_job(&c, "r-start", 30);

    /* Per-thing cancel: a queued execution at once, an IN_PROGRESS one only with
     * --force, after which the device's next update is refused. (A runs 1.2.3
     * since r-phase, so a 1.2.3 job would skip it.) */
    assert_int_equal(cli_test_run(&g_run, "job", "cancel", "r-start", "--thing", "C", NULL), 0);
    device_expect_no_job(&c);
    create_job("r-cancel", "B,C", NULL);
    device_wait_job(&c, "r-cancel", 10);
    device_status(&c, "r-cancel", "IN_PROGRESS", "{\"receive\":\"1/12\"}");
    assert_int_equal(cli_test_run(&g_run, "job", "cancel", "r-cancel", "--thing", "C", NULL), 1);
    assert_non_null(strstr(g_run.err, "add --force"));
    assert_int_equal(cli_test_run(&g_run, "job", "cancel", "r-cancel", "--thing", "B", NULL), 0);
    device_expect_no_job(&b);
    assert_int_equal(
        cli_test_run(&g_run, "job", "cancel", "r-cancel", "--thing", "C", "--force", NULL), 0);
    char topic[256], rej[300];
    snprintf(topic, sizeof topic, "$aws/things/C/jobs/r-cancel/update");
    snprintf(rej, sizeof rej, "%s/rejected", topic);
    assert_true(ota_test_client_subscribe(c.c, rej, 1) >= 0);
    const char *body = "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"receive\":\"2/12\"}}";
    assert_int_equal(ota_test_client_publish(c.c, topic, body, strlen(body), 1), 0);
    ota_test_msg_t *m = ota_test_client_expect(c.c, rej, 10000);
    assert_non_null(m);
    assert_non_null(strstr((const char *)m->payload, "TerminalStateReached"));
    ota_test_msg_free(m);
    wait_job_show("r-cancel", "status:     COMPLETED", 5);
    assert_non_null(strstr(g_run.out, "canceled 2"));

    /* The timeout fired on its own, and a finished job is deleted with its image. */
    wait_job_show("r-timeout", "timed out 1", 150);
    assert_non_null(strstr(g_run.out, "status:     COMPLETED"));
    assert_int_equal(cli_test_run(&g_run, "job", "delete", "r-timeout", NULL), 0);
    assert_int_equal(cli_test_run(&g_run, "job", "list", NULL), 0);
    assert_null(strstr(g_run.out, "r-timeout"));
    ota_test_client_disconnect(a.c);
    ota_test_client_disconnect(b.c);
    ota_test_client_disconnect(c.c);
    ota_test_client_disconnect(d.c);
}

/* Groups against the running service: static and dynamic groups, several per
 * thing, and a continuous job that reaches things joining later. */
static void test_groups_continuous(void **state)
{
    (void)state;
    assert_int_equal(cli_test_run(&g_run, "thing", "create", "C", NULL), 0);
    assert_int_equal(cli_test_run(&g_run, "group", "create", "lab", NULL), 0);
    assert_int_equal(cli_test_run(&g_run, "group", "add", "lab", "A", NULL), 0);
    assert_int_equal(cli_test_run(&g_run, "group", "create", "sims", "--query",
                                  "deviceType=sim,site!=roof", NULL),
                     0);
    assert_int_equal(cli_test_run(&g_run, "group", "create", "bad", "--query", "v<1.2", NULL), 2);
    assert_int_equal(cli_test_run(&g_run, "group", "add", "sims", "B", NULL), 1);
    assert_non_null(strstr(g_run.err, "is dynamic"));
    struct device a, b, c;
    device_connect(&a, "A");
    device_connect(&b, "B");
    device_connect(&c, "C");
    g_watch_out = NULL;
    create_job("g1", "group:lab,group:sims", "--continuous", NULL);
    device_wait_job(&a, "g1", 10);
    device_expect_no_job(&b);
    device_expect_no_job(&c);
    /* joining the static group, or coming to match the query, brings the job */
    assert_int_equal(cli_test_run(&g_run, "group", "add", "lab", "B", NULL), 0);
    device_wait_job(&b, "g1", 10);
    assert_int_equal(cli_test_run(&g_run, "thing", "set", "C", "deviceType=sim", NULL), 0);
    device_wait_job(&c, "g1", 10);
    /* leaving takes a QUEUED execution away */
    assert_int_equal(cli_test_run(&g_run, "group", "remove", "lab", "B", NULL), 0);
    device_expect_no_job(&b);
    /* a continuous job stays open when everything it has finished */
    device_status(&a, "g1", "SUCCEEDED", "{\"reason\":\"accepted v1.2.3\"}");
    device_status(&c, "g1", "SUCCEEDED", "{\"reason\":\"accepted v1.2.3\"}");
    wait_job_show("g1", "succeeded 2", 5);
    assert_non_null(strstr(g_run.out, "status:     IN_PROGRESS"));
    assert_non_null(strstr(g_run.out, "removed 1"));
    assert_non_null(strstr(g_run.out, "selection:  continuous"));
    /* several groups per thing, shown both ways */
    assert_int_equal(cli_test_run(&g_run, "group", "add", "lab", "C", NULL), 0);
    assert_int_equal(cli_test_run(&g_run, "thing", "show", "C", NULL), 0);
    assert_non_null(strstr(g_run.out, "groups:      lab sims\n"));
    assert_int_equal(cli_test_run(&g_run, "group", "list", NULL), 0);
    assert_non_null(strstr(g_run.out, "lab                              static         2  -"));
    assert_non_null(strstr(g_run.out, "sims                             dynamic        1  "
                                      "deviceType=sim,site!=roof"));
    assert_int_equal(cli_test_run(&g_run, "group", "show", "sims", NULL), 0);
    assert_non_null(strstr(g_run.out, "  C "));
    assert_int_equal(cli_test_run(&g_run, "group", "delete", "lab", NULL), 1);
    assert_non_null(strstr(g_run.err, "cancel that job first"));
    assert_int_equal(cli_test_run(&g_run, "job", "cancel", "g1", NULL), 0);
    assert_int_equal(cli_test_run(&g_run, "group", "delete", "lab", NULL), 0);
    assert_int_equal(cli_test_run(&g_run, "group", "show", "lab", NULL), 1);
    ota_test_client_disconnect(a.c);
    ota_test_client_disconnect(b.c);
    ota_test_client_disconnect(c.c);
}

/* Publishes a reported document; returns the answer's topic suffix ("accepted",
 * "rejected") and copies its payload into out. */
static const char *shadow_update(struct device *d, const char *body, size_t len, char *out,
                                 size_t cap)
{
    char topic[200], answers[220];
    snprintf(topic, sizeof topic, "$aws/things/%s/shadow/update", d->name);
    snprintf(answers, sizeof answers, "%s/+", topic);
    assert_true(ota_test_client_subscribe(d->c, answers, 1) >= 0);
    assert_int_equal(ota_test_client_publish(d->c, topic, body, len, 1), 0);
    ota_test_msg_t *m = ota_test_client_expect(d->c, answers, 10000);
    assert_non_null(m);
    snprintf(out, cap, "%s", (const char *)m->payload);
    static char kind[16];
    snprintf(kind, sizeof kind, "%s", strrchr(m->topic, '/') + 1);
    ota_test_msg_free(m);
    return kind;
}

/* `thing list` until the line of a thing contains text. */
static void wait_thing_list(const char *thing, const char *text, int timeout_s)
{
    for (int i = 0; i < timeout_s * 4; i++) {
        assert_int_equal(cli_test_run(&g_run, "thing", "list", NULL), 0);
        const char *line = strstr(g_run.out, thing);
        const char *end = line ? strchr(line + 1, '\n') : NULL;
        const char *hit = line ? strstr(line, text) : NULL;
        if (hit && end && hit < end) {
            return;
        }
        usleep(250000);
    }
    fail_msg("thing list never showed '%s' for %s:\n%s", text, thing, g_run.out);
}

/* Inventory against the running broker and service: presence from the
 * broker's notices, the reported state checked and bounded, and targeting
 * that uses what the device reported. */
static void test_inventory(void **state)
{
    (void)state;
    struct device a;
    device_connect(&a, "A");
    wait_thing_list("\nA ", "online", 10);
    char ans[600];
    const char *good = "{\"state\":{\"reported\":{\"firmwareVersion\":\"1.2.3\","
                       "\"deviceType\":\"sim\",\"slot\":\"B\",\"imageState\":\"accepted\"}},"
                       "\"clientToken\":\"t1\"}";
    assert_string_equal(shadow_update(&a, good, strlen(good), ans, sizeof ans), "accepted");
    assert_non_null(strstr(ans, "\"firmwareVersion\":\"1.2.3\""));
    assert_non_null(strstr(ans, "\"clientToken\":\"t1\""));
    wait_thing_list("\nA ", "sim              1.2.3      B    accepted   online", 5);

    /* hostile reports are refused and change nothing */
    const char *bad[] = {
        "{\"state\":{\"reported\":{\"firmwareVersion\":\" 9.9.9\"}}}",
        "{\"state\":{\"reported\":{\"firmwareVersion\":\"9.9.9\",\"evil\":1}}}",
        "{\"state\":{\"reported\":{\"slot\":{\"nested\":\"x\"}}}}",
        ("{\"state\":{\"reported\":{\"firmwareVersion\":\"9.9.9\",\"firmwareVersion\":"
         "\"9.9.8\"}}}"), /* one literal, split */
        "{\"state\":{\"desired\":{\"firmwareVersion\":\"9.9.9\"}}}",
        "{\"state\":{\"reported\":{\"imageState\":\"a\\u0000b\"}}}",
        "not json",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (strcmp(shadow_update(&a, bad[i], strlen(bad[i]), ans, sizeof ans), "rejected") != 0) {
            fail_msg("accepted: %s", bad[i]);
        }
        assert_non_null(strstr(ans, "\"code\":400"));
    }
    char big[3000];
    memset(big, ' ', sizeof big);
    memcpy(big, good, strlen(good));
    assert_string_equal(shadow_update(&a, big, sizeof big, ans, sizeof ans), "rejected");
    assert_non_null(strstr(ans, "\"code\":413"));
    assert_int_equal(cli_test_run(&g_run, "thing", "show", "A", NULL), 0);
    assert_null(strstr(g_run.out, "9.9."));
    /* at most 10 reports a minute */
    int throttled = 0;
    for (int i = 0; i < 12; i++) {
        throttled +=
            strcmp(shadow_update(&a, good, strlen(good), ans, sizeof ans), "rejected") == 0 &&
            strstr(ans, "\"code\":429") != NULL;
    }
    assert_true(throttled >= 2);

    /* what A reported decides its targeting: a job for 1.2.3 skips it */
    create_job("inv", "A,B", NULL);
    assert_int_equal(cli_test_run(&g_run, "job", "show", "inv", NULL), 0);
    assert_non_null(strstr(g_run.out, "already on 1.2.3"));
    device_expect_no_job(&a);

    /* A leaves while the service is stopped: its disconnect notice is lost, so afterwards A
     * is not shown online but unknown (on broker 1, since the restart) */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ota_test_proc_stop(&g.service);
    ota_test_client_disconnect(a.c);
    const char *extra[] = {"--share-group", "none", NULL};
    assert_int_equal(ota_test_service_start(&g.service, cli_test_data(), &g.broker, extra,
                                            cli_test_path("service.log")),
                     0);
    wait_thing_list("\nA ", "unknown", 10);
    assert_int_equal(cli_test_run(&g_run, "thing", "show", "A", NULL), 0);
    assert_non_null(strstr(g_run.out, "presence:    unknown, unknown on broker 1 since "));
    assert_non_null(strstr(g_run.out, "  connected                unknown "));
    assert_non_null(strstr(g_run.out, "  presenceUnknownOn        1 "));
    assert_null(strstr(g_run.out, "connectedTo"));
    /* its next connect makes it known again: online, then offline once it leaves; a thing
     * never seen stays unknown */
    device_connect(&a, "A");
    wait_thing_list("\nA ", "online", 10);
    ota_test_client_disconnect(a.c);
    wait_thing_list("\nA ", "offline", 10);
    assert_int_equal(cli_test_run(&g_run, "thing", "show", "A", NULL), 0);
    assert_non_null(strstr(g_run.out, "presence:    offline; last seen "));
    assert_null(strstr(g_run.out, "presenceUnknownOn"));
    wait_thing_list("\nB ", "-        -", 1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("cli_e2e: presence across a service restart checked in %ld ms\n",
           (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
}

/* Waits until a client has been disconnected by the broker. */
static void wait_disconnected(ota_test_client_t *c, const char *who)
{
    for (int i = 0; i < 100 && ota_test_client_connected(c); i++) {
        usleep(100000);
    }
    if (ota_test_client_connected(c)) {
        fail_msg("the broker did not end the session of %s", who);
    }
}

/* Device lifecycle against the running broker: disable, enable, rotate, delete. */
static void test_lifecycle(void **state)
{
    (void)state;
    char old_pw[64], pw[64];
    read_password(cli_test_path("data/things/A.json"), old_pw);
    ota_test_client_t *a = ota_test_client_connect(g.port, "A", "A", old_pw);
    assert_non_null(a);

    /* disable: the session ends and the login is refused; enable undoes it */
    assert_int_equal(cli_test_run(&g_run, "thing", "disable", "A", NULL), 0);
    wait_disconnected(a, "A (disabled)");
    ota_test_client_disconnect(a);
    assert_null(ota_test_client_connect(g.port, "A", "A", old_pw));
    assert_int_equal(cli_test_run(&g_run, "thing", "list", NULL), 0);
    assert_non_null(strstr(g_run.out, "disabled"));
    assert_int_equal(cli_test_run(&g_run, "thing", "enable", "A", NULL), 0);
    a = ota_test_client_connect(g.port, "A", "A", old_pw);
    assert_non_null(a);

    /* rotate: new password in the file; the old one refused, its session ended */
    assert_int_equal(cli_test_run(&g_run, "thing", "rotate", "A", NULL), 0);
    wait_disconnected(a, "A (rotated)");
    ota_test_client_disconnect(a);
    read_password(cli_test_path("data/things/A.json"), pw);
    assert_string_not_equal(pw, old_pw);
    assert_non_null(strstr(g_run.out, pw));
    assert_null(ota_test_client_connect(g.port, "A", "A", old_pw));
    a = ota_test_client_connect(g.port, "A", "A", pw);
    assert_non_null(a);

    /* delete: refused with unfinished work unless --force; then gone everywhere */
    create_job("life", "A", NULL);
    assert_int_equal(cli_test_run(&g_run, "thing", "delete", "A", NULL), 1);
    assert_non_null(strstr(g_run.err, "add --force"));
    assert_true(ota_test_client_connected(a));
    if (cli_test_run(&g_run, "thing", "delete", "A", "--force", NULL) != 0) {
        fail_msg("thing delete --force: %s", g_run.err);
    }
    wait_disconnected(a, "A (deleted)");
    ota_test_client_disconnect(a);
    assert_null(ota_test_client_connect(g.port, "A", "A", pw));
    assert_int_equal(cli_test_run(&g_run, "thing", "show", "A", NULL), 1);
    assert_int_equal(access(cli_test_path("data/things/A.json"), F_OK), -1);
    assert_int_equal(cli_test_run(&g_run, "job", "show", "life", NULL), 0);
    assert_non_null(strstr(g_run.out, "status:     COMPLETED"));
    assert_int_equal(cli_test_run(&g_run, "thing", "disable", "A", NULL), 1);
    assert_non_null(strstr(g_run.err, "unknown thing 'A'"));
    /* B was never touched */
    read_password(cli_test_path("data/things/B.json"), pw);
    ota_test_client_t *b = ota_test_client_connect(g.port, "B", "B", pw);
    assert_non_null(b);
    ota_test_client_disconnect(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_update_all_succeed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_one_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_targeting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollout_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_groups_continuous, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inventory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
