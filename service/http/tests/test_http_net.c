/*
 * otter-http end to end: `otter broker init --tls`, `thing create` and
 * `job create --protocols HTTP,MQTT` set up a real Mosquitto, otter-service
 * (--http-url) and otter-http on free ports of 127.0.0.1; scripted devices
 * ask for their job over MQTT and fetch the file by the presigned URL in the
 * document, as the AWS agent does and worse.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <sqlite3.h>
#include <mbedtls/md.h>

#include "cli_test_util.h"
#include "http_test_client.h"
#include "http_test_dl.h"
#include "ota_test_net.h"

/** Block size of the AWS agent's requests. */
#define BLOCK 4096u
#define SIZE_A 300001u
#define SIZE_B 10000u
#define SIZE_BIG (8u * 1024u * 1024u)
/** Over the byte budget's burst (32 MiB). */
#define SIZE_HUGE (33u * 1024u * 1024u)
#define WAIT_MS 10000

static cli_run_t g_run;

/** The broker, the service, the HTTP servers and what the jobs are. */
static struct world {
    int http_port, https_port;
    ota_test_broker_t broker;
    ota_test_proc_t service, http, https;
    char http_log[600];
    ota_test_client_t *dev_a, *dev_b;
    char url_a[1024];   /* A's URL of job jA */
    char url_big[1024]; /* A's URL of job jBig */
    char url_b[1024];   /* B's URL of job jB */
    uint8_t *file_a, *file_big;
    size_t len_a, len_big;
    long id_a, id_b, id_big;
} g;

/* ------------------------------------------------------------- helpers -- */

static ota_test_client_t *device(const char *name)
{
    ota_test_client_t *c = ota_test_thing_connect(&g.broker, name);
    assert_non_null(c);
    char filter[256];
    snprintf(filter, sizeof filter, "$aws/things/%s/jobs/#", name);
    assert_true(ota_test_client_subscribe(c, filter, 1) >= 0);
    return c;
}

/* Asks `$aws/things/<thing>/jobs/<what>/get` and returns the answer's execution (root in *root). */
static cJSON *ask_job(ota_test_client_t *c, const char *thing, const char *what, cJSON **root)
{
    char topic[256], accepted[300];
    snprintf(topic, sizeof topic, "$aws/things/%s/jobs/%s/get", thing, what);
    snprintf(accepted, sizeof accepted, "%s/accepted", topic);
    const char *req = "{\"clientToken\":\"http-test\"}";
    assert_int_equal(ota_test_client_publish(c, topic, req, strlen(req), 1), 0);
    ota_test_msg_t *m = ota_test_client_expect(c, accepted, WAIT_MS);
    assert_non_null(m);
    *root = cJSON_Parse((const char *)m->payload);
    ota_test_msg_free(m);
    assert_non_null(*root);
    cJSON *e = cJSON_GetObjectItemCaseSensitive(*root, "execution");
    assert_true(cJSON_IsObject(e));
    return e;
}

/* files[0] of an execution's job document. */
static cJSON *doc_file(cJSON *exec)
{
    cJSON *ota = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(exec, "jobDocument"), "afr_ota");
    cJSON *f = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ota, "files"), 0);
    assert_non_null(f);
    return f;
}

/* The job's URL for a thing, asked the way the AWS agent asks ($next or <job>). */
static void fetch_url(ota_test_client_t *c, const char *thing, const char *what, char *out)
{
    cJSON *root;
    cJSON *e = ask_job(c, thing, what, &root);
    cJSON *u = cJSON_GetObjectItemCaseSensitive(doc_file(e), "update_data_url");
    assert_true(cJSON_IsString(u));
    snprintf(out, 1024, "%s", u->valuestring);
    cJSON_Delete(root);
}

/* A query value of a URL ("" when absent). */
static void query_value(const char *url, const char *key, char *out, size_t cap)
{
    char pat[32];
    snprintf(pat, sizeof pat, "%s=", key);
    const char *q = strchr(url, '?');
    out[0] = '\0';
    for (const char *p = q; p != NULL; p = strchr(p + 1, '&')) {
        if (strncmp(p + 1, pat, strlen(pat)) == 0) {
            const char *v = p + 1 + strlen(pat);
            size_t n = strcspn(v, "&");
            snprintf(out, cap, "%.*s", (int)n, v);
            return;
        }
    }
}

/* Signs like the service does, with the data folder's key (the test's own HMAC). */
static void sign_target(const char *path, const char *thing, const char *job, long long expires,
                        char *out, size_t cap)
{
    size_t klen = 0;
    unsigned char *key = cli_test_read(cli_test_path("data/http/url-signing.key"), &klen);
    assert_non_null(key);
    assert_int_equal(klen, 32);
    char text[512];
    int n = snprintf(text, sizeof text, "OTTER-HMAC-SHA256\n%s\n%s\n%s\n%lld", path, thing, job,
                     expires);
    uint8_t m[32];
    assert_int_equal(mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), key, klen,
                                     (const unsigned char *)text, (size_t)n, m),
                     0);
    free(key);
    char hex[65];
    for (int i = 0; i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", m[i]);
    }
    snprintf(out, cap, "%s?thing=%s&job=%s&expires=%lld&signature=%s", path, thing, job, expires,
             hex);
}

/* One request on a connection of its own. */
static void get_once(int port, const char *method, const char *target, const char *extra,
                     http_resp_t *r)
{
    http_conn_t c;
    assert_int_equal(http_connect(&c, port, 0), 0);
    char *req = http_request(method, target, extra);
    assert_int_equal(http_send(&c, req), 0);
    free(req);
    assert_int_equal(http_read(&c, r, strcmp(method, "HEAD") == 0, SIZE_MAX, WAIT_MS), 0);
    http_close(&c);
}

/* One range on an open connection; checks 206, Content-Range and the bytes. */
static void get_range(http_conn_t *c, const char *target, const uint8_t *file, size_t size,
                      size_t first, size_t last)
{
    char extra[128];
    snprintf(extra, sizeof extra, "Range: bytes=%zu-%zu\r\n", first, last);
    char *req = http_request("GET", target, extra);
    assert_int_equal(http_send(c, req), 0);
    free(req);
    http_resp_t r;
    assert_int_equal(http_read(c, &r, 0, SIZE_MAX, WAIT_MS), 0);
    assert_int_equal(r.status, 206);
    char cr[96], want[96];
    assert_int_equal(http_header(&r, "Content-Range", cr, sizeof cr), 0);
    snprintf(want, sizeof want, "bytes %zu-%zu/%zu", first, last, size);
    assert_string_equal(cr, want);
    assert_int_equal(r.body_len, last - first + 1);
    assert_memory_equal(r.body, file + first, r.body_len);
    http_resp_free(&r);
}

/* The stored file with this id. */
static uint8_t *stored_file(long id, size_t *len)
{
    uint8_t *b = cli_test_read(cli_test_path("data/files/%ld.bin", id), len);
    assert_non_null(b);
    return b;
}

static long url_file_id(const char *url)
{
    const char *p = strstr(url, "/files/");
    assert_non_null(p);
    return atol(p + 7);
}

static void make_file(const char *name, size_t size)
{
    uint8_t *b = malloc(size);
    assert_non_null(b);
    for (size_t i = 0; i < size; i++) {
        b[i] = (uint8_t)(i * 2654435761u >> 13);
    }
    assert_int_equal(cli_test_write(cli_test_path("%s", name), b, size), 0);
    free(b);
}

/* Starts otter-http on a port and waits for its ready line. */
static int start_http(ota_test_proc_t *p, int port, int tls, const char *log)
{
    char portbuf[16];
    snprintf(portbuf, sizeof portbuf, "%d", port);
    char *argv[] = {(char *)OTTER_HTTP_BIN,
                    (char *)"--data-dir",
                    (char *)cli_test_data(),
                    (char *)"--port",
                    portbuf,
                    tls ? (char *)"--tls" : NULL,
                    NULL};
    long from = ota_test_log_size(log);
    if (ota_test_proc_start(p, "otter-http", argv, log) != 0) {
        return -1;
    }
    return ota_test_log_wait(log, from, "INFO ready:", WAIT_MS);
}

/* --------------------------------------------------------------- setup -- */

static int create_job(const char *file, const char *targets, const char *id, const char *protocols)
{
    const char *argv[] = {"job",
                          "create",
                          "--file",
                          cli_test_path("%s", file),
                          "--version",
                          "1.2.3",
                          "--targets",
                          targets,
                          "--key",
                          NULL,
                          "--job-id",
                          id,
                          protocols ? "--protocols" : NULL,
                          protocols,
                          NULL};
    char key[600];
    snprintf(key, sizeof key, "%s", cli_test_path("keys/codesign.key"));
    argv[3] = strdup(argv[3]);
    argv[9] = key;
    int rc = cli_test_runv(&g_run, argv);
    free((void *)argv[3]);
    if (rc != 0) {
        fprintf(stderr, "job create %s: %s\n", id, g_run.err);
    }
    return rc;
}

static int setup(void **state)
{
    (void)state;
    memset(&g, 0, sizeof g);
    if (cli_test_begin() != 0) {
        return -1;
    }
    g.http_port = ota_test_free_port();
    g.https_port = ota_test_free_port();
    make_file("a.bin", SIZE_A);
    make_file("b.bin", SIZE_B);
    make_file("big.bin", SIZE_BIG);
    make_file("huge.bin", SIZE_HUGE);
    /* The fleet with mutual TLS: one CA for the broker, the devices and otter-http. */
    const char *init[] = {"--tls", NULL};
    if (mkdir(cli_test_data(), 0700) != 0 ||
        ota_test_broker_start_with(&g.broker, cli_test_data(), init) != 0 ||
        cli_test_run(&g_run, "thing", "create", "A", NULL) != 0 ||
        cli_test_run(&g_run, "thing", "create", "B", NULL) != 0 ||
        cli_test_run(&g_run, "thing", "create", "C", NULL) != 0 ||
        cli_test_run(&g_run, "thing", "create", "D", NULL) != 0 ||
        cli_test_run(&g_run, "keygen", "--out", cli_test_path("keys"), NULL) != 0 ||
        create_job("a.bin", "A", "jA", "HTTP,MQTT") != 0 ||
        create_job("b.bin", "B", "jB", "HTTP") != 0 ||
        create_job("big.bin", "A", "jBig", "http") != 0 ||
        create_job("b.bin", "B", "jM", NULL) != 0 ||
        create_job("huge.bin", "C", "jHuge", "HTTP") != 0 ||
        create_job("b.bin", "D", "jD", "HTTP") != 0) {
        fprintf(stderr, "setup: %s\n", g_run.err);
        return -1;
    }
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", g.http_port);
    /* Plain subscriptions: Mosquitto 2.0 delivers no $aws message to $share ones. */
    const char *extra[] = {"--share-group", "none", "--http-url", base, NULL};
    snprintf(g.http_log, sizeof g.http_log, "%s", cli_test_path("http.log"));
    if (ota_test_service_start(&g.service, cli_test_data(), &g.broker, extra,
                               cli_test_path("service.log")) != 0 ||
        start_http(&g.http, g.http_port, 0, g.http_log) != 0 ||
        start_http(&g.https, g.https_port, 1, cli_test_path("https.log")) != 0) {
        fprintf(stderr, "setup: a server did not start (logs in %s)\n", cli_test_dir());
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ota_test_client_disconnect(g.dev_a);
    ota_test_client_disconnect(g.dev_b);
    ota_test_proc_stop(&g.https);
    ota_test_proc_stop(&g.http);
    ota_test_proc_stop(&g.service);
    ota_test_broker_stop(&g.broker);
    free(g.file_a);
    free(g.file_big);
    cli_test_end();
    return 0;
}

/* --------------------------------------------------------------- tests -- */

/* CLI: bad --protocols and --url-expiry are usage errors that create nothing. */
static void test_cli_protocols(void **state)
{
    (void)state;
    const char *bad[][4] = {{"--protocols", "FTP", NULL, NULL},
                            {"--protocols", "HTTP,HTTP", NULL, NULL},
                            {"--protocols", "HTTP,MQTT,HTTP", NULL, NULL},
                            {"--protocols", ",", NULL, NULL},
                            {"--protocols", "HTTP", "--url-expiry", "59"},
                            {"--protocols", "HTTP", "--url-expiry", "3601"},
                            {"--protocols", "MQTT", "--url-expiry", "600"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char key[600], file[600];
        snprintf(key, sizeof key, "%s", cli_test_path("keys/codesign.key"));
        snprintf(file, sizeof file, "%s", cli_test_path("b.bin"));
        const char *argv[] = {"job",       "create",  "--file",  file,      "--version", "1.0.0",
                              "--targets", "B",       "--key",   key,       "--job-id",  "bad",
                              bad[i][0],   bad[i][1], bad[i][2], bad[i][3], NULL};
        assert_int_equal(cli_test_runv(&g_run, argv), 2);
        assert_true(cli_test_one_error_line(&g_run));
    }
    assert_int_not_equal(cli_test_run(&g_run, "job", "show", "bad", NULL), 0);
    /* The stored document keeps the placeholder, never a URL. */
    assert_int_equal(cli_test_run(&g_run, "job", "show", "jA", NULL), 0);
    assert_non_null(strstr(g_run.out, "\"protocols\":[\"HTTP\",\"MQTT\"]"));
    assert_non_null(strstr(g_run.out, "\"update_data_url\":\"${otter:presigned-url:/files/"));
    assert_non_null(strstr(g_run.out, ":1800}\",\"auth_scheme\":\"aws.s3.presigned\""));
}

/* otter-http's command line: help, usage errors (2), a folder without a store (1). */
static void test_command_line(void **state)
{
    (void)state;
    assert_int_equal(cli_test_sh("%s --help", OTTER_HTTP_BIN), 0);
    const char *bad[] = {"",
                         "--data-dir",
                         "--data-dir x --port 0",
                         "--data-dir x --port 65536",
                         "--data-dir x --bind",
                         "--data-dir x --cert a",
                         "--data-dir x --tls --cert a --key b",
                         "--data-dir x --timeout 0",
                         "--data-dir x --log-level loud",
                         "--data-dir x --bogus 1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(cli_test_sh("%s %s", OTTER_HTTP_BIN, bad[i]), 2);
    }
    assert_int_equal(cli_test_sh("%s --data-dir %s", OTTER_HTTP_BIN, cli_test_path("nothing")), 1);
    /* A port in use is a clear failure, not a hang. */
    assert_int_equal(
        cli_test_sh("%s --data-dir %s --port %d", OTTER_HTTP_BIN, cli_test_data(), g.http_port), 1);
}

/* Every answer carrying a document carries a URL for that thing and job. */
static void test_documents_carry_urls(void **state)
{
    (void)state;
    g.dev_a = device("A");
    g.dev_b = device("B");
    cJSON *root;
    long long now = (long long)time(NULL);
    cJSON *e = ask_job(g.dev_a, "A", "$next", &root);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "jobId")->valuestring, "jA");
    cJSON *ota = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(e, "jobDocument"), "afr_ota");
    cJSON *protos = cJSON_GetObjectItemCaseSensitive(ota, "protocols");
    assert_int_equal(cJSON_GetArraySize(protos), 2);
    assert_string_equal(cJSON_GetArrayItem(protos, 0)->valuestring, "HTTP");
    assert_string_equal(cJSON_GetArrayItem(protos, 1)->valuestring, "MQTT");
    cJSON *f = doc_file(e);
    const char *url = cJSON_GetObjectItemCaseSensitive(f, "update_data_url")->valuestring;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "http://127.0.0.1:%d/files/", g.http_port);
    assert_memory_equal(url, prefix, strlen(prefix));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(f, "auth_scheme")->valuestring,
                        "aws.s3.presigned");
    snprintf(g.url_a, sizeof g.url_a, "%s", url);
    cJSON_Delete(root);
    char v[80];
    query_value(g.url_a, "thing", v, sizeof v);
    assert_string_equal(v, "A");
    query_value(g.url_a, "job", v, sizeof v);
    assert_string_equal(v, "jA");
    query_value(g.url_a, "expires", v, sizeof v);
    assert_true(atoll(v) >= now + 1800 && atoll(v) <= (long long)time(NULL) + 1800);
    long long expires = atoll(v);
    query_value(g.url_a, "issued", v, sizeof v);
    assert_int_equal(atoll(v), expires - 1800);
    /* The service repeats the execution on notify-next: with a URL too. */
    ota_test_msg_t *m = ota_test_client_expect(g.dev_a, "$aws/things/A/jobs/notify-next", WAIT_MS);
    assert_non_null(m);
    assert_non_null(strstr((const char *)m->payload, prefix));
    assert_non_null(strstr((const char *)m->payload, "thing=A&job=jA&expires="));
    ota_test_msg_free(m);
    /* start-next (the execution becomes IN_PROGRESS): its document has a URL too. */
    const char *sn = "{\"clientToken\":\"sn\"}";
    assert_int_equal(
        ota_test_client_publish(g.dev_a, "$aws/things/A/jobs/start-next", sn, strlen(sn), 1), 0);
    m = ota_test_client_expect(g.dev_a, "$aws/things/A/jobs/start-next/accepted", WAIT_MS);
    assert_non_null(m);
    assert_non_null(strstr((const char *)m->payload, "\"status\":\"IN_PROGRESS\""));
    assert_non_null(strstr((const char *)m->payload, "thing=A&job=jA&expires="));
    ota_test_msg_free(m);
    /* <job>/get: the other job of A. */
    fetch_url(g.dev_a, "A", "jBig", g.url_big);
    assert_non_null(strstr(g.url_big, "thing=A&job=jBig&expires="));
    fetch_url(g.dev_b, "B", "jB", g.url_b);
    assert_non_null(strstr(g.url_b, "thing=B&job=jB&expires="));
    /* An MQTT-only job: no URL. */
    e = ask_job(g.dev_b, "B", "jM", &root);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(doc_file(e), "update_data_url")));
    cJSON_Delete(root);
    g.id_a = url_file_id(g.url_a);
    g.id_big = url_file_id(g.url_big);
    g.id_b = url_file_id(g.url_b);
    g.file_a = stored_file(g.id_a, &g.len_a);
    g.file_big = stored_file(g.id_big, &g.len_big);
    assert_int_equal(g.len_a, SIZE_A + 32); /* the image header */
}

/* Text with every {NAME} of names[i][0] replaced by names[i][1] (heap). */
static char *fill_placeholders(const char *text, const char *const names[][2], size_t n)
{
    size_t cap = strlen(text) + 1;
    for (size_t i = 0; i < n; i++) {
        cap += strlen(names[i][1]) * 4; /* a placeholder at most four times a line */
    }
    char *out = malloc(cap);
    assert_non_null(out);
    size_t len = 0;
    for (const char *p = text; *p != '\0';) {
        size_t i = 0;
        while (i < n && strncmp(p, names[i][0], strlen(names[i][0])) != 0) {
            i++;
        }
        const char *put = i < n ? names[i][1] : p;
        size_t put_len = i < n ? strlen(names[i][1]) : 1;
        assert_true(len + put_len < cap);
        memcpy(out + len, put, put_len);
        len += put_len;
        p += i < n ? strlen(names[i][0]) : 1;
    }
    out[len] = '\0';
    return out;
}

/* Checks one answer of the replay against the request it answers; 206 bodies go to file. */
static void replay_check(http_conn_t *c, const char *wire, int status, uint8_t *file, size_t size,
                         uint8_t *seen)
{
    http_resp_t r;
    assert_int_equal(http_read(c, &r, 0, SIZE_MAX, WAIT_MS), 0);
    assert_int_equal(r.status, status);
    char v[96], want[96];
    if (status == 403) {
        assert_non_null(memmem(r.body, r.body_len, "expired", 7));
        http_resp_free(&r);
        return;
    }
    unsigned long long first = 0, last = 0;
    const char *range = strstr(wire, "\r\nRange: bytes=");
    assert_non_null(range);
    assert_int_equal(sscanf(range, "\r\nRange: bytes=%llu-%llu", &first, &last), 2);
    assert_true(first <= last && last < size);
    assert_int_equal(http_header(&r, "Content-Range", v, sizeof v), 0);
    snprintf(want, sizeof want, "bytes %llu-%llu/%zu", first, last, size);
    assert_string_equal(v, want);
    assert_int_equal(r.content_length, (long long)(last - first + 1));
    assert_int_equal(r.body_len, last - first + 1);
    /* The agent asked to keep the connection: nothing says it closes. */
    if (http_header(&r, "Connection", v, sizeof v) == 0) {
        assert_int_not_equal(strcasecmp(v, "close"), 0);
    }
    for (unsigned long long i = first; i <= last; i++) {
        assert_int_equal(seen[i], 0); /* every byte asked once */
        seen[i] = 1;
    }
    memcpy(file + first, r.body, r.body_len);
    http_resp_free(&r);
}

/*
 * The AWS agent's requests replayed byte for byte (service/http/tests/aws-agent-http.txt):
 * one Range per 4 KiB block in order, each after the answer before; an expired URL gets 403;
 * the job document asked for again over MQTT gives a fresh URL; the download goes on from the
 * refused block on a new connection; the reassembled file is the stored one, and after its
 * image header the uploaded one.
 */
static void test_aws_agent_replay(void **state)
{
    (void)state;
    size_t flen = 0;
    char *script = (char *)cli_test_read(AWS_AGENT_FIXTURE, &flen);
    assert_non_null(script);
    char url[1024], path[64], expired[1024], host[64], old_exp[32], new_exp[32];
    snprintf(url, sizeof url, "%s", g.url_a);
    snprintf(path, sizeof path, "/files/%ld", g.id_a);
    sign_target(path, "A", "jA", (long long)time(NULL) - 1, expired, sizeof expired);
    snprintf(host, sizeof host, "127.0.0.1:%d", g.http_port);
    assert_non_null(strstr(url, host));
    uint8_t *file = calloc(1, g.len_a), *seen = calloc(1, g.len_a);
    assert_non_null(file);
    assert_non_null(seen);
    http_conn_t c;
    int open = 0, n_206 = 0, n_403 = 0, renewals = 0;
    char *save = NULL;
    for (char *line = strtok_r(script, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#') {
            continue;
        }
        if (strncmp(line, "file ", 5) == 0) {
            assert_int_equal(strtoull(line + 5, NULL, 10), g.len_a);
        } else if (strcmp(line, "connect") == 0 || strcmp(line, "close") == 0) {
            if (open) {
                http_close(&c);
                open = 0;
            }
            if (strcmp(line, "connect") == 0) {
                assert_int_equal(http_connect(&c, g.http_port, 0), 0);
                open = 1;
            }
        } else if (strcmp(line, "renew") == 0) {
            char fresh[1024];
            query_value(url, "expires", old_exp, sizeof old_exp);
            fetch_url(g.dev_a, "A", "$next", fresh);
            query_value(fresh, "expires", new_exp, sizeof new_exp);
            assert_true(atoll(new_exp) >= atoll(old_exp));
            assert_true(atoll(new_exp) >= (long long)time(NULL) + 1800 - 2);
            ota_test_msg_free(
                ota_test_client_expect(g.dev_a, "$aws/things/A/jobs/notify-next", WAIT_MS));
            snprintf(url, sizeof url, "%s", fresh);
            renewals++;
        } else if (strncmp(line, "request ", 8) == 0) {
            int status = atoi(line + 8);
            /* The request's lines up to the empty one (strtok_r skips empty tokens). */
            char *head = save, *blank = strstr(head, "\n\n");
            assert_non_null(blank);
            blank[1] = '\0';
            save = blank + 2;
            char *crlf = malloc(2 * strlen(head) + 3);
            assert_non_null(crlf);
            size_t k = 0;
            for (const char *p = head; *p != '\0'; p++) {
                if (*p == '\n') {
                    crlf[k++] = '\r';
                }
                crlf[k++] = *p;
            }
            memcpy(crlf + k, "\r\n", 3);
            const char *const names[][2] = {
                {"{PATH}", http_target(url)}, {"{EXPIRED_PATH}", expired}, {"{HOST}", host}};
            char *wire = fill_placeholders(crlf, names, 3);
            free(crlf);
            assert_true(open);
            assert_int_equal(http_send(&c, wire), 0);
            replay_check(&c, wire, status, file, g.len_a, seen);
            free(wire);
            n_206 += status == 206;
            n_403 += status == 403;
        } else {
            fail_msg("unknown line in %s: %s", AWS_AGENT_FIXTURE, line);
        }
    }
    assert_false(open);
    assert_int_equal(n_206, (g.len_a + BLOCK - 1) / BLOCK);
    assert_int_equal(n_403, 1);
    assert_int_equal(renewals, 1);
    assert_memory_equal(file, g.file_a, g.len_a);
    size_t raw_len = 0;
    uint8_t *raw = cli_test_read(cli_test_path("a.bin"), &raw_len);
    assert_non_null(raw);
    assert_int_equal(raw_len, SIZE_A);
    assert_memory_equal(file + 32, raw, raw_len);
    free(raw);
    free(file);
    free(seen);
    free(script);
}

/* Ranges at and beyond the end, suffixes, several ranges, HEAD, ETag and If-Range. */
static void test_ranges(void **state)
{
    (void)state;
    const char *t = http_target(g.url_a);
    http_resp_t r;
    char v[128], want[128], etag[96];
    struct {
        const char *range;
        int status;
    } bad[] = {
        {"bytes=300033-", 416}, {"bytes=300033-300033", 416}, {"bytes=999999999-", 416},
        {"bytes=0-1,4-5", 416}, {"bytes=5-4", 416},           {"bytes=-0", 416},
        {"bytes=abc", 416},     {"items=0-1", 416},           {"bytes=18446744073709551616-", 416}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char extra[128];
        snprintf(extra, sizeof extra, "Range: %s\r\n", bad[i].range);
        get_once(g.http_port, "GET", t, extra, &r);
        assert_int_equal(r.status, bad[i].status);
        assert_int_equal(http_header(&r, "Content-Range", v, sizeof v), 0);
        snprintf(want, sizeof want, "bytes */%zu", g.len_a);
        assert_string_equal(v, want);
        http_resp_free(&r);
    }
    /* An end past the file is cut to the file (RFC 9110): the last byte. */
    char past[64];
    snprintf(past, sizeof past, "Range: bytes=%zu-%zu\r\n", g.len_a - 1, g.len_a + 100000);
    get_once(g.http_port, "GET", t, past, &r);
    assert_int_equal(r.status, 206);
    assert_int_equal(r.body_len, 1);
    assert_int_equal(r.body[0], g.file_a[g.len_a - 1]);
    http_resp_free(&r);
    /* Suffix: the last 10 bytes. */
    get_once(g.http_port, "GET", t, "Range: bytes=-10\r\n", &r);
    assert_int_equal(r.status, 206);
    assert_int_equal(r.body_len, 10);
    assert_memory_equal(r.body, g.file_a + g.len_a - 10, 10);
    http_resp_free(&r);
    /* HEAD: size, ETag, Accept-Ranges and no body. */
    get_once(g.http_port, "HEAD", t, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.content_length, (long long)g.len_a);
    assert_int_equal(r.body_len, 0);
    assert_int_equal(http_header(&r, "Accept-Ranges", v, sizeof v), 0);
    assert_string_equal(v, "bytes");
    assert_int_equal(http_header(&r, "ETag", etag, sizeof etag), 0);
    http_resp_free(&r);
    /* If-Range with the ETag: the range; with another: the whole file. */
    char extra[256];
    snprintf(extra, sizeof extra, "Range: bytes=100-199\r\nIf-Range: %s\r\n", etag);
    get_once(g.http_port, "GET", t, extra, &r);
    assert_int_equal(r.status, 206);
    assert_memory_equal(r.body, g.file_a + 100, 100);
    http_resp_free(&r);
    get_once(g.http_port, "GET", t, "Range: bytes=100-199\r\nIf-Range: \"otter-0-1\"\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, g.len_a);
    assert_memory_equal(r.body, g.file_a, g.len_a);
    http_resp_free(&r);
}

/* Every field of the URL is covered by the signature; only GET and HEAD. */
static void test_tampered(void **state)
{
    (void)state;
    char path[64], exp[32], iss[32], later[32], sig[80], t[1024];
    snprintf(path, sizeof path, "/files/%ld", g.id_a);
    query_value(g.url_a, "expires", exp, sizeof exp);
    query_value(g.url_a, "issued", iss, sizeof iss);
    query_value(g.url_a, "signature", sig, sizeof sig);
    assert_true(iss[0] != '\0');
    snprintf(later, sizeof later, "%lld", atoll(iss) + 1);
    char flipped[80];
    snprintf(flipped, sizeof flipped, "%s", sig);
    flipped[17] = flipped[17] == 'a' ? 'b' : 'a';
    /* Issue time NULL: the field left out. */
    const char *forms[][6] = {{path, "B", "jA", exp, iss, sig},
                              {path, "A", "jB", exp, iss, sig},
                              {path, "A", "jA", "9999999999", iss, sig},
                              {path, "A", "jA", exp, iss, flipped},
                              {"/files/999", "A", "jA", exp, iss, sig},
                              {path, "A", "jA", exp, iss, ""},
                              {path, "A", "jA", "", iss, sig},
                              {path, "", "jA", exp, iss, sig},
                              {path, "A", "jA", exp, later, sig},
                              {path, "A", "jA", exp, NULL, sig},
                              {path, "A", "jA", exp, "", sig}};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        snprintf(t, sizeof t, "%s?thing=%s&job=%s&expires=%s%s%s&signature=%s", forms[i][0],
                 forms[i][1], forms[i][2], forms[i][3], forms[i][4] != NULL ? "&issued=" : "",
                 forms[i][4] != NULL ? forms[i][4] : "", forms[i][5]);
        http_resp_t r;
        get_once(g.http_port, "GET", t, NULL, &r);
        assert_int_equal(r.status, 403);
        assert_non_null(memmem(r.body, r.body_len, "signature", 9));
        http_resp_free(&r);
    }
    http_resp_t r;
    get_once(g.http_port, "GET", path, NULL, &r); /* no query at all */
    assert_int_equal(r.status, 403);
    http_resp_free(&r);
    const char *methods[] = {"POST", "PUT", "DELETE", "OPTIONS", "PATCH"};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        get_once(g.http_port, methods[i], http_target(g.url_a), "Content-Length: 0\r\n", &r);
        assert_int_equal(r.status, 405);
        char allow[64];
        assert_int_equal(http_header(&r, "Allow", allow, sizeof allow), 0);
        assert_string_equal(allow, "GET, HEAD");
        http_resp_free(&r);
    }
}

/* Nothing of the URL reaches the file system: traversal attempts get nothing. */
static void test_path_traversal(void **state)
{
    (void)state;
    const char *q = strchr(g.url_a, '?');
    const char *paths[] = {"/files/../otter.db",
                           "/files/%2e%2e/otter.db",
                           "/files/..%2fotter.db",
                           "/files/1/../../otter.db",
                           "/files/./1",
                           "/files/01",
                           "/files/1%00",
                           "/files/1%00/../2",
                           "/otter.db",
                           "/files/",
                           "/files",
                           "/../../../../etc/passwd",
                           "/files/../http/url-signing.key"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        char t[1200];
        snprintf(t, sizeof t, "%s%s", paths[i], q);
        http_resp_t r;
        get_once(g.http_port, "GET", t, NULL, &r);
        if (r.status != 403 && r.status != 404) {
            print_error("%s: %d\n", paths[i], r.status);
        }
        assert_true(r.status == 403 || r.status == 404);
        assert_true(r.body_len < 100);
        assert_null(memmem(r.body, r.body_len, "SQLite", 6));
        http_resp_free(&r);
    }
    /* A NUL in a query value does not cut it short. */
    char nul[1200];
    snprintf(nul, sizeof nul, "%s", http_target(g.url_a));
    char *thing = strstr(nul, "thing=A&");
    assert_non_null(thing);
    memmove(thing + 11, thing + 7, strlen(thing + 7) + 1);
    memcpy(thing + 7, "%00B", 4); /* thing=A%00B: not A */
    http_resp_t rn;
    get_once(g.http_port, "GET", nul, NULL, &rn);
    assert_int_equal(rn.status, 403);
    http_resp_free(&rn);
    /* Even correctly signed, a path that is not /files/<id> is refused. */
    char t[1024];
    sign_target("/files/../otter.db", "A", "jA", (long long)time(NULL) + 600, t, sizeof t);
    http_resp_t r;
    get_once(g.http_port, "GET", t, NULL, &r);
    assert_int_equal(r.status, 403);
    http_resp_free(&r);
    /* A signed id that is no file of the job: 404. */
    sign_target("/files/999999", "A", "jA", (long long)time(NULL) + 600, t, sizeof t);
    get_once(g.http_port, "GET", t, NULL, &r);
    assert_int_equal(r.status, 404);
    http_resp_free(&r);
}

/* Another thing's file: 404, even with a valid signature; a canceled job too. */
static void test_other_things_files(void **state)
{
    (void)state;
    char pb[64], pa[64], t[1024];
    long long exp = (long long)time(NULL) + 600;
    snprintf(pb, sizeof pb, "/files/%ld", g.id_b);
    snprintf(pa, sizeof pa, "/files/%ld", g.id_a);
    const char *forms[][3] = {{pb, "A", "jB"},  /* B's job and file, for A */
                              {pb, "A", "jA"},  /* B's file under A's job */
                              {pa, "B", "jA"},  /* A's job and file, for B */
                              {pa, "B", "jM"}}; /* A's file under B's other job */
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        sign_target(forms[i][0], forms[i][1], forms[i][2], exp, t, sizeof t);
        http_resp_t r;
        get_once(g.http_port, "GET", t, "Range: bytes=0-9\r\n", &r);
        assert_int_equal(r.status, 404);
        http_resp_free(&r);
    }
    http_resp_t r;
    get_once(g.http_port, "GET", http_target(g.url_b), "Range: bytes=0-9\r\n", &r);
    assert_int_equal(r.status, 206);
    http_resp_free(&r);
    assert_int_equal(cli_test_run(&g_run, "job", "cancel", "jB", NULL), 0);
    get_once(g.http_port, "GET", http_target(g.url_b), "Range: bytes=0-9\r\n", &r);
    assert_int_equal(r.status, 404);
    http_resp_free(&r);
}

/* A 10-byte range of a URL on a connection of its own: the status. */
static int range_status(const char *url)
{
    http_resp_t r;
    get_once(g.http_port, "GET", http_target(url), "Range: bytes=0-9\r\n", &r);
    int status = r.status;
    http_resp_free(&r);
    return status;
}

/*
 * A URL handed out before `otter thing disable` (a lost or suspect board) is refused with 404
 * while the thing is disabled, whole file or range, and works again after `otter thing
 * enable`; one handed out before `otter thing rotate` (new credentials for a suspect board) is
 * refused with 403, and the device with its new credentials asks for its job again and gets a
 * URL that works.
 */
static void test_disabled_or_rotated_thing_refused(void **state)
{
    (void)state;
    char url[1024], fresh[1024];
    ota_test_client_t *d = device("D");
    fetch_url(d, "D", "jD", url);
    ota_test_client_disconnect(d);
    assert_int_equal(range_status(url), 206);

    assert_int_equal(cli_test_run(&g_run, "thing", "disable", "D", NULL), 0);
    assert_int_equal(range_status(url), 404);
    http_resp_t r;
    get_once(g.http_port, "GET", http_target(url), NULL, &r);
    assert_int_equal(r.status, 404);
    assert_int_equal(r.body_len, strlen("404 no such file for this thing and job\n"));
    http_resp_free(&r);
    assert_int_equal(cli_test_run(&g_run, "thing", "enable", "D", NULL), 0);
    assert_int_equal(range_status(url), 206);

    /* URLs issued in the rotation's own second are let through: make it a later one. */
    sleep(1);
    assert_int_equal(cli_test_run(&g_run, "thing", "rotate", "D", NULL), 0);
    get_once(g.http_port, "GET", http_target(url), "Range: bytes=0-9\r\n", &r);
    assert_int_equal(r.status, 403);
    assert_non_null(memmem(r.body, r.body_len, "rotated", 7));
    http_resp_free(&r);
    d = device("D"); /* the new credentials */
    fetch_url(d, "D", "jD", fresh);
    ota_test_client_disconnect(d);
    assert_string_not_equal(fresh, url);
    assert_int_equal(range_status(fresh), 206);
    assert_int_equal(range_status(url), 403);
}

/* Rewrites job `job`'s stored document: edit(files) changes its afr_ota.files array; with
 * `escape`, written as a JSON writer that escapes every '/' would (the same once decoded). */
static void rewrite_document(const char *job, void (*edit)(cJSON *files), int escape)
{
    sqlite3 *conn = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(cli_test_path("data/otter.db"), &conn), SQLITE_OK);
    assert_int_equal(sqlite3_busy_timeout(conn, 5000), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(conn, "SELECT document FROM jobs WHERE id = ?1", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    cJSON *doc = cJSON_Parse((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    assert_non_null(doc);
    edit(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "afr_ota"),
                                          "files"));
    char *text = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    assert_non_null(text);
    char *esc = malloc(2 * strlen(text) + 1), *o = esc;
    assert_non_null(esc);
    for (const char *i = text; *i != '\0'; i++) {
        if (*i == '/' && escape) {
            *o++ = '\\';
        }
        *o++ = *i;
    }
    *o = '\0';
    cJSON_free(text);
    assert_int_equal(
        sqlite3_prepare_v2(conn, "UPDATE jobs SET document = ?1 WHERE id = ?2", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_text(st, 1, esc, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, job, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(conn);
    free(esc);
}

static void keep_files(cJSON *files)
{
    (void)files;
}

/* files[0] twice: first with a 60 s lifetime, then with the longest. */
static void two_lifetimes(cJSON *files)
{
    cJSON *f = cJSON_GetArrayItem(files, 0);
    cJSON *g2 = cJSON_Duplicate(f, 1);
    assert_non_null(g2);
    const char *u = cJSON_GetObjectItemCaseSensitive(f, "update_data_url")->valuestring;
    char a[128], b[128];
    snprintf(a, sizeof a, "%.*s:60}", (int)(strrchr(u, ':') - u), u);
    snprintf(b, sizeof b, "%.*s:3600}", (int)(strrchr(u, ':') - u), u);
    cJSON_ReplaceItemInObjectCaseSensitive(f, "update_data_url", cJSON_CreateString(a));
    cJSON_ReplaceItemInObjectCaseSensitive(g2, "update_data_url", cJSON_CreateString(b));
    cJSON_AddItemToArray(files, g2);
}

/* The URL of files[i] of a job for a thing. */
static void fetch_url_at(const char *thing, const char *job, int i, char *out)
{
    cJSON *root;
    ota_test_client_t *d = device(thing);
    cJSON *e = ask_job(d, thing, job, &root);
    ota_test_client_disconnect(d);
    cJSON *ota = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(e, "jobDocument"), "afr_ota");
    cJSON *u = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ota, "files"), i), "update_data_url");
    assert_true(cJSON_IsString(u));
    snprintf(out, 1024, "%s", u->valuestring);
    cJSON_Delete(root);
}

/*
 * After `otter thing rotate`, a URL is judged by when it was issued, whatever the stored
 * document's text: one issued after the rotation from a document written with escaped slashes
 * ("\/files\/<id>:<s>") works, and of two placeholders for one file with different lifetimes,
 * a URL from the longer one issued before the rotation is refused.
 */
static void test_rotation_judges_urls_by_issue_time(void **state)
{
    (void)state;
    char url[1024], longer[1024], shorter[1024];
    assert_int_equal(create_job("b.bin", "D", "jEsc", "HTTP"), 0);
    rewrite_document("jEsc", keep_files, 1);
    sleep(1);
    assert_int_equal(cli_test_run(&g_run, "thing", "rotate", "D", NULL), 0);
    fetch_url_at("D", "jEsc", 0, url);
    assert_int_equal(range_status(url), 206);

    assert_int_equal(create_job("b.bin", "D", "jTwo", "HTTP"), 0);
    rewrite_document("jTwo", two_lifetimes, 0);
    fetch_url_at("D", "jTwo", 0, shorter);
    fetch_url_at("D", "jTwo", 1, longer);
    assert_int_equal(range_status(shorter), 206);
    assert_int_equal(range_status(longer), 206);
    sleep(1);
    assert_int_equal(cli_test_run(&g_run, "thing", "rotate", "D", NULL), 0);
    assert_int_equal(range_status(shorter), 403);
    assert_int_equal(range_status(longer), 403);
    fetch_url_at("D", "jTwo", 1, longer);
    assert_int_equal(range_status(longer), 206);
}

/* Several requests sent at once on one keep-alive connection: answers in order. */
static void test_pipelined(void **state)
{
    (void)state;
    const char *t = http_target(g.url_a);
    size_t firsts[] = {0, 4096, 8192, 12288, 65536, 100000, 200000, 299000};
    size_t n = sizeof firsts / sizeof firsts[0];
    char *all = NULL;
    size_t all_len = 0;
    FILE *f = open_memstream(&all, &all_len);
    for (size_t i = 0; i < n; i++) {
        char extra[64];
        snprintf(extra, sizeof extra, "Range: bytes=%zu-%zu\r\n", firsts[i], firsts[i] + 999);
        char *req = http_request(i == 3 ? "HEAD" : "GET", t, extra);
        fputs(req, f);
        free(req);
    }
    fclose(f);
    http_conn_t c;
    assert_int_equal(http_connect(&c, g.http_port, 0), 0);
    assert_int_equal(http_send(&c, all), 0);
    free(all);
    for (size_t i = 0; i < n; i++) {
        http_resp_t r;
        assert_int_equal(http_read(&c, &r, i == 3, SIZE_MAX, WAIT_MS), 0);
        assert_int_equal(r.status, 206);
        assert_int_equal(r.content_length, 1000);
        if (i != 3) {
            assert_int_equal(r.body_len, 1000);
            assert_memory_equal(r.body, g.file_a + firsts[i], 1000);
        }
        http_resp_free(&r);
    }
    /* The connection stays open for more. */
    get_range(&c, t, g.file_a, g.len_a, 1, 2);
    http_close(&c);
}

/* ------------------------------------------------------- slow headers -- */

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One honest 4 KiB range of A's file on a new connection from 127.0.0.1: the milliseconds
 * until the answer was whole, or -1 when it was not a 206 with the right bytes within 5 s. */
static long long honest_range(void)
{
    static http_conn_t c;
    long long t0 = mono_ms();
    if (http_connect(&c, g.http_port, 0) != 0) {
        return -1;
    }
    char *req = http_request("GET", http_target(g.url_a), "Range: bytes=0-4095\r\n");
    http_resp_t r;
    memset(&r, 0, sizeof r);
    int ok = http_send(&c, req) == 0 && http_read(&c, &r, 0, SIZE_MAX, 5000) == 0 &&
             r.status == 206 && r.body_len == 4096 && memcmp(r.body, g.file_a, 4096) == 0;
    free(req);
    http_resp_free(&r);
    http_close(&c);
    return ok ? mono_ms() - t0 : -1;
}

/* Opens n connections from source address src to otter-http, each sending the start of a
 * request whose headers never end, as conn_flood does; returns how many connected. */
static size_t flood_open_with(int *fds, size_t n, const char *src, const char *start)
{
    struct sockaddr_in from, to;
    memset(&from, 0, sizeof from);
    from.sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, src, &from.sin_addr), 1);
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_port = htons((uint16_t)g.http_port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct timeval tv = {1, 0};
        assert_true(fd >= 0);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (bind(fd, (struct sockaddr *)&from, sizeof from) != 0 ||
            connect(fd, (struct sockaddr *)&to, sizeof to) != 0) {
            close(fd);
            fds[i] = -1;
            continue;
        }
        (void)send(fd, start, strlen(start), MSG_NOSIGNAL | MSG_DONTWAIT);
        fds[i] = fd;
        ok++;
    }
    return ok;
}

/* flood_open_with() a request's start that never ends its headers. */
static size_t flood_open(int *fds, size_t n, const char *src)
{
    return flood_open_with(fds, n, src, "GET /files/1 HTTP/1.1\r\nHost: x\r\n");
}

/* Connections the server still holds open (nothing to read, not closed). */
static size_t flood_held(const int *fds, size_t n)
{
    size_t held = 0;
    for (size_t i = 0; i < n; i++) {
        char b;
        if (fds[i] >= 0 && recv(fds[i], &b, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
            (errno == EAGAIN || errno == EWOULDBLOCK)) {
            held++;
        }
    }
    return held;
}

/* One header byte on every connection still open. */
static void flood_drip(const int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (fds[i] >= 0) {
            (void)send(fds[i], "X", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
    }
}

static void flood_close(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
        }
        fds[i] = -1;
    }
}

/* For `seconds`: an honest range every 0.5 s, a byte on every flood connection every 5 s.
 * Counts the honest ranges, those answered 206, and the slowest. */
static void flood_watch(const int *fds, size_t n, int seconds, int *asked, int *answered,
                        long long *slowest)
{
    long long t0 = mono_ms(), last_drip = t0;
    *asked = *answered = 0;
    *slowest = 0;
    while (mono_ms() - t0 < seconds * 1000LL) {
        long long ms = honest_range();
        (*asked)++;
        if (ms >= 0) {
            (*answered)++;
            *slowest = ms > *slowest ? ms : *slowest;
        }
        if (mono_ms() - last_drip >= 5000) {
            flood_drip(fds, n);
            last_drip = mono_ms();
        }
        usleep(500 * 1000);
    }
}

/*
 * Anyone on the network, no credentials: 1000 connections from one address, each sending
 * "GET /files/1 HTTP/1.1\r\nHost: x\r\n" and a byte every 5 s but never the end of its
 * headers, and 20 whose headers end but whose announced body comes a byte every 5 s; then
 * 1040 from eight other addresses. With the shipped settings one address holds at most 100
 * connections (--max-per-address) and every such connection is closed 20 s after it opened
 * (--header-timeout: until the whole request arrived), however often it sends a byte; an
 * honest device on another address is answered 206 throughout, each range within 2 s.
 */
static void test_slow_header_flood(void **state)
{
    (void)state;
    enum { ONE = 1000, BODY = 20, PER = 130, ADDRS = 8, MANY = PER * ADDRS };
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    assert_true(rl.rlim_max >= ONE + BODY + MANY + 64);
    rl.rlim_cur = rl.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    static int fds[ONE + MANY];
    int asked, answered;
    long long slowest;

    /* One address; beside it, from another, complete headers announcing a body that then
     * comes a byte at a time (the drips): the deadline counts until the whole request. */
    size_t opened = flood_open(fds, ONE, "127.0.0.2");
    static int body_fds[BODY];
    size_t body_opened = flood_open_with(body_fds, BODY, "127.0.0.11",
                                         "GET /files/1 HTTP/1.1\r\nHost: x\r\n"
                                         "Content-Length: 100000\r\n\r\n");
    usleep(1000 * 1000);
    size_t held_start = flood_held(fds, ONE), body_held_start = flood_held(body_fds, BODY);
    static int all[ONE + BODY];
    memcpy(all, fds, sizeof(int) * ONE);
    memcpy(all + ONE, body_fds, sizeof body_fds);
    flood_watch(all, ONE + BODY, 23, &asked, &answered, &slowest);
    size_t held_end = flood_held(fds, ONE), body_held_end = flood_held(body_fds, BODY);
    print_message("slow headers, one address: %zu connected, %zu held after 1 s, %zu after 24 s "
                  "(a byte every 5 s); slow bodies: %zu connected, %zu held after 1 s, %zu after "
                  "24 s; honest ranges: %d of %d answered 206, slowest %lld ms\n",
                  opened, held_start, held_end, body_opened, body_held_start, body_held_end,
                  answered, asked, slowest);
    flood_close(fds, ONE);
    flood_close(body_fds, BODY);
    assert_true(held_start <= 100);
    assert_int_equal(held_end, 0);
    assert_int_equal(body_opened, BODY);
    assert_int_equal(body_held_end, 0);
    assert_int_equal(answered, asked);
    assert_true(slowest < 2000);

    /* Eight addresses, more connections than --max-connections. */
    size_t held_many = 0;
    opened = 0;
    for (int a = 0; a < ADDRS; a++) {
        char src[16];
        snprintf(src, sizeof src, "127.0.0.%d", 3 + a);
        opened += flood_open(fds + a * PER, PER, src);
    }
    usleep(1000 * 1000);
    held_many = flood_held(fds, MANY);
    flood_watch(fds, MANY, 6, &asked, &answered, &slowest);
    print_message("slow headers, %d addresses: %zu connected, %zu held after 1 s; honest ranges: "
                  "%d of %d answered 206, slowest %lld ms\n",
                  ADDRS, opened, held_many, answered, asked, slowest);
    flood_close(fds, MANY);
    assert_true(held_many <= 100 * ADDRS);
    assert_int_equal(answered, asked);
    assert_true(slowest < 2000);
}

/* ---------------------------------------------- the device range client -- */

/* The device's range client (http/) on a URL of a document, over TCP or (ca given) TLS. */
static http_dl_t *device_download(const char *url, int port, const char *ca, uint32_t range)
{
    http_dl_t *d = http_dl_new(ca != NULL ? "localhost" : "127.0.0.1", port, http_target(url), ca,
                               (uint32_t)g.len_a, range);
    assert_non_null(d);
    return d;
}

/*
 * The device client keeps OTA_HTTP_PIPELINE_MAX ranges in flight on one
 * keep-alive connection to otter-http: every answer arrives on it (one
 * connection opened, nothing sent again), every byte equal.
 */
static void test_device_client_pipelined(void **state)
{
    (void)state;
    const uint32_t range = 16384;
    http_dl_t *d = device_download(g.url_a, g.http_port, NULL, range);
    assert_int_equal(http_dl_run(d, (uint32_t)g.len_a), OTA_HTTPC_OK);
    const ota_httpc_info_t *in = ota_httpc_info(&d->c);
    uint32_t ranges = ((uint32_t)g.len_a + range - 1) / range;
    assert_int_equal(d->bytes, g.len_a);
    assert_memory_equal(d->got, g.file_a, g.len_a);
    assert_int_equal(d->ranges, ranges);
    assert_int_equal(in->requests, ranges);
    assert_int_equal(d->max_in_flight, OTA_HTTP_PIPELINE_MAX);
    assert_int_equal(in->connects, 1);
    assert_int_equal(d->tcp.opens, 1);
    assert_int_equal(in->resends, 0);
    assert_int_equal(in->file_size, g.len_a);
    http_dl_free(d);
}

/* The same over HTTPS (mbed TLS, the fleet's CA): one TLS session for every range. */
static void test_device_client_tls(void **state)
{
    (void)state;
    http_dl_t *d =
        device_download(g.url_a, g.https_port, cli_test_path("data/broker/ca.crt"), 16384);
    assert_int_equal(http_dl_run(d, (uint32_t)g.len_a), OTA_HTTPC_OK);
    assert_int_equal(d->bytes, g.len_a);
    assert_memory_equal(d->got, g.file_a, g.len_a);
    assert_int_equal(d->max_in_flight, OTA_HTTP_PIPELINE_MAX);
    assert_int_equal(ota_httpc_info(&d->c)->connects, 1);
    assert_int_equal(d->tls.handshakes, 1);
    http_dl_free(d);
}

/*
 * An expired URL in the middle of a pipelined download: OTA_HTTPC_EXPIRED
 * (403), nothing delivered past what had arrived; the fresh URL of a new
 * document continues from the first byte still missing.
 */
static void test_device_client_expired(void **state)
{
    (void)state;
    const uint32_t range = 8192, half = 16 * 8192;
    char path[64], expired[1024], url[1200], fresh[1024];
    snprintf(path, sizeof path, "/files/%ld", g.id_a);
    sign_target(path, "A", "jA", (long long)time(NULL) - 1, expired, sizeof expired);
    http_dl_t *d = device_download(g.url_a, g.http_port, NULL, range);
    assert_int_equal(http_dl_run(d, half), OTA_HTTPC_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", g.http_port, expired);
    memcpy(d->url, url, strlen(url) + 1);
    assert_int_equal(ota_httpc_set_url(&d->c, d->url), OTA_HTTPC_OK);
    assert_int_equal(http_dl_run(d, (uint32_t)g.len_a), OTA_HTTPC_EXPIRED);
    assert_int_equal(ota_httpc_info(&d->c)->last_status, 403);
    assert_int_equal(ota_httpc_info(&d->c)->last_first, half);
    assert_int_equal(d->bytes, half);
    assert_int_equal(ota_httpc_in_flight(&d->c), 0);
    fetch_url(g.dev_a, "A", "jA", fresh);
    memcpy(d->url, fresh, strlen(fresh) + 1);
    assert_int_equal(ota_httpc_set_url(&d->c, d->url), OTA_HTTPC_OK);
    d->next_ask = half; /* what the bitmap still lacks */
    assert_int_equal(http_dl_run(d, (uint32_t)g.len_a), OTA_HTTPC_OK);
    assert_int_equal(d->bytes, g.len_a);
    assert_memory_equal(d->got, g.file_a, g.len_a);
    http_dl_free(d);
}

static size_t curl_sink(char *p, size_t size, size_t n, void *ctx)
{
    FILE *f = ctx;
    return fwrite(p, size, n, f);
}

/* HTTPS with the server certificate and CA `broker init --tls` made. */
static void test_https(void **state)
{
    (void)state;
    char url[1200];
    snprintf(url, sizeof url, "https://127.0.0.1:%d%s", g.https_port, http_target(g.url_a));
    char *body = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&body, &len);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CAINFO, cli_test_path("data/broker/ca.crt"));
    curl_easy_setopt(c, CURLOPT_RANGE, "4096-8191");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, curl_sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    fclose(f);
    assert_int_equal(status, 206);
    assert_int_equal(len, 4096);
    assert_memory_equal(body, g.file_a + 4096, 4096);
    free(body);
    /* Without the fleet's CA the certificate is not trusted. */
    curl_easy_setopt(c, CURLOPT_CAINFO, "/dev/null");
    curl_easy_setopt(c, CURLOPT_CAPATH, "/nonexistent");
    f = fopen("/dev/null", "w");
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    assert_int_not_equal(curl_easy_perform(c), CURLE_OK);
    fclose(f);
    curl_easy_cleanup(c);
}

/* The server killed mid-download: the device sees a short body; a restarted
 * server continues from the byte it got to (Range + If-Range). */
static void test_killed_mid_download(void **state)
{
    (void)state;
    ota_test_proc_t p;
    int port = ota_test_free_port();
    const char *log = cli_test_path("http-killed.log");
    char logp[600];
    snprintf(logp, sizeof logp, "%s", log);
    assert_int_equal(start_http(&p, port, 0, logp), 0);
    http_conn_t c;
    /* A small receive window keeps most of the 8 MiB in the server: what the
     * kernel still sends after the kill is at most its send buffer (4 MiB at
     * most with Debian's net.ipv4.tcp_wmem), so the body ends short. */
    assert_int_equal(http_connect(&c, port, 4096), 0);
    char *req = http_request("GET", http_target(g.url_big), NULL);
    assert_int_equal(http_send(&c, req), 0);
    free(req);
    http_resp_t r;
    assert_int_equal(http_read(&c, &r, 0, 65536, WAIT_MS), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.content_length, (long long)g.len_big);
    assert_int_equal(r.body_len, 65536);
    char etag[96];
    assert_int_equal(http_header(&r, "ETag", etag, sizeof etag), 0);
    assert_int_equal(ota_test_proc_kill(&p), 128 + 9);
    http_read_rest(&c, &r, WAIT_MS);
    http_close(&c);
    assert_true(r.truncated);
    assert_true(r.body_len < g.len_big);
    assert_memory_equal(r.body, g.file_big, r.body_len);
    size_t got = r.body_len;
    uint8_t *have = r.body;
    /* Restarted: the rest, from where it stopped. */
    assert_int_equal(start_http(&p, port, 0, logp), 0);
    char extra[256];
    snprintf(extra, sizeof extra, "Range: bytes=%zu-\r\nIf-Range: %s\r\n", got, etag);
    http_resp_t rest;
    get_once(port, "GET", http_target(g.url_big), extra, &rest);
    assert_int_equal(rest.status, 206);
    assert_int_equal(got + rest.body_len, g.len_big);
    assert_memory_equal(rest.body, g.file_big + got, rest.body_len);
    http_resp_free(&rest);
    free(have);
    assert_int_equal(ota_test_proc_stop(&p), 0);
}

/*
 * A file larger than the byte budget's burst (32 MiB), asked whole without Range, as a plain
 * HTTP client does: 200 with every byte, from the thing's full budget, which it leaves in
 * debt; the file asked whole again waits until the budget is full again (429; 33 s).
 */
static void test_whole_file_over_byte_burst(void **state)
{
    (void)state;
    char url[1024];
    ota_test_client_t *c = device("C");
    fetch_url(c, "C", "jHuge", url);
    ota_test_client_disconnect(c);
    size_t len = 0;
    uint8_t *stored = stored_file(url_file_id(url), &len);
    assert_int_equal(len, SIZE_HUGE + 32);
    http_resp_t r;
    get_once(g.http_port, "GET", http_target(url), NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, len);
    assert_memory_equal(r.body, stored, len);
    http_resp_free(&r);
    free(stored);
    get_once(g.http_port, "GET", http_target(url), NULL, &r);
    assert_int_equal(r.status, 429);
    http_resp_free(&r);
}

/* The thing's request budget: a flood is answered 429 with Retry-After, and
 * after a pause the thing is served again. */
static void test_budget(void **state)
{
    (void)state;
    const char *t = http_target(g.url_big);
    char *req = http_request("HEAD", t, NULL);
    http_conn_t c;
    assert_int_equal(http_connect(&c, g.http_port, 0), 0);
    size_t served = 0, throttled = 0, batch = 100, total = 4000;
    int retry_after_ok = 1;
    for (size_t sent = 0; sent < total; sent += batch) {
        for (size_t i = 0; i < batch; i++) {
            assert_int_equal(http_send(&c, req), 0);
        }
        for (size_t i = 0; i < batch; i++) {
            http_resp_t r;
            assert_int_equal(http_read(&c, &r, 1, 0, WAIT_MS), 0);
            if (r.status == 200) {
                served++;
            } else {
                assert_int_equal(r.status, 429);
                char v[16];
                retry_after_ok &=
                    http_header(&r, "Retry-After", v, sizeof v) == 0 && strcmp(v, "1") == 0;
                throttled++;
            }
            http_resp_free(&r);
        }
    }
    free(req);
    http_close(&c);
    print_message("budget: %zu of %zu HEAD requests served, %zu throttled\n", served, total,
                  throttled);
    assert_int_equal(served + throttled, total);
    assert_true(throttled > 0);
    assert_true(retry_after_ok);
    assert_true(served >= 500); /* the burst (1000) less what A used before */
    sleep(2);                   /* 100 requests per second refill */
    http_resp_t r;
    get_once(g.http_port, "HEAD", t, NULL, &r);
    assert_int_equal(r.status, 200);
    http_resp_free(&r);
}

/* Stopping logs the counters of what was refused. */
static void test_stats_on_stop(void **state)
{
    (void)state;
    long from = ota_test_log_size(g.http_log);
    (void)from;
    assert_int_equal(ota_test_proc_stop(&g.http), 0);
    char *text = (char *)cli_test_read(g.http_log, NULL);
    assert_non_null(text);
    const char *s = strstr(text, "stats: requests=");
    assert_non_null(s);
    assert_null(strstr(s, "bad_signature=0 "));
    assert_null(strstr(s, "expired=0 "));
    assert_null(strstr(s, "not_found=0 "));
    assert_null(strstr(s, "bad_range=0 "));
    assert_null(strstr(s, "bad_method=0 "));
    assert_null(strstr(s, "throttled=0 "));
    assert_non_null(strstr(s, "failed=0"));
    free(text);
}

/* A newer otter that migrates the store while otter-http runs (here: the schema version moved
 * past this build's, as a migration would) stops it with a message naming both versions,
 * exit 1. Last: the store is left newer than this build. */
static void test_stops_when_store_migrated_by_newer(void **state)
{
    (void)state;
    ota_test_proc_t p;
    long from = ota_test_log_size(g.http_log);
    assert_int_equal(start_http(&p, ota_test_free_port(), 0, g.http_log), 0);
    sqlite3 *conn = NULL;
    int ok = sqlite3_open(cli_test_path("data/otter.db"), &conn) == SQLITE_OK &&
             sqlite3_busy_timeout(conn, 5000) == SQLITE_OK &&
             sqlite3_exec(conn, "UPDATE schema_version SET version = version + 1", NULL, NULL,
                          NULL) == SQLITE_OK;
    sqlite3_close(conn);
    int status = -1;
    int exited = ota_test_proc_wait_exit(&p, 10000, &status); /* checked every 5 s */
    assert_true(ok);
    assert_int_equal(exited, 0);
    assert_int_equal(status, 1);
    assert_int_equal(ota_test_log_wait(g.http_log, from, "newer than this program's", 0), 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_protocols),
        cmocka_unit_test(test_command_line),
        cmocka_unit_test(test_documents_carry_urls),
        cmocka_unit_test(test_aws_agent_replay),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_path_traversal),
        cmocka_unit_test(test_other_things_files),
        cmocka_unit_test(test_disabled_or_rotated_thing_refused),
        cmocka_unit_test(test_rotation_judges_urls_by_issue_time),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_slow_header_flood),
        cmocka_unit_test(test_device_client_pipelined),
        cmocka_unit_test(test_device_client_tls),
        cmocka_unit_test(test_device_client_expired),
        cmocka_unit_test(test_https),
        cmocka_unit_test(test_killed_mid_download),
        cmocka_unit_test(test_whole_file_over_byte_burst),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_stats_on_stop),
        cmocka_unit_test(test_stops_when_store_migrated_by_newer),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
