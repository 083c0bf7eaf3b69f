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
#include "ota_image_header.h"
#include "ota_test_net.h"
#include "ota_verify.h"

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

/* Finds a text key in a CBOR map. */
static cbor_item_t *map_get(cbor_item_t *map, const char *key)
{
    struct cbor_pair *p = cbor_map_handle(map);
    for (size_t i = 0; i < cbor_map_size(map); i++) {
        if (cbor_isa_string(p[i].key) && cbor_string_length(p[i].key) == strlen(key) &&
            memcmp(cbor_string_handle(p[i].key), key, strlen(key)) == 0) {
            return p[i].value;
        }
    }
    return NULL;
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
        cbor_item_t *i = map_get(msg, "i"), *p = map_get(msg, "p"), *f = map_get(msg, "f");
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
        device_status(d, job_id, "FAILED", "{\"reason\":\"rejected: 0x00000010\"}");
    }
    cJSON_Delete(root);
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
    pid_t pid = cli_test_spawn(argv, out, cli_test_path("watch.err"));
    assert_true(pid > 0);
    g_watch_out = out;
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_update_all_succeed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_one_fails, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
