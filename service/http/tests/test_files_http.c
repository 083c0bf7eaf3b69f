/*
 * The file server of the HTTP data plane: URL signing and checking, and the
 * server answering the device's range client (pipelined, over TCP) and raw
 * requests: bad and expired signatures, another file's URL, paths that try
 * to leave the files folder, ranges beyond the file, If-Range, HEAD, other
 * methods; and otter-files as a program.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ota_files_http.h"
#include "http_test_dl.h"
#include "ota_test_net.h"
#include "ota_url_sign.h"

#define FILE_SIZE (256u * 1024u)
#define NOW 1700000000

static const uint8_t key[32] = "0123456789abcdef0123456789abcdef";
static uint8_t file_data[FILE_SIZE];
static char dir[64], files_dir[128];
static int64_t clock_now = NOW;
static ota_files_http_t *server;
static uint16_t port;

static int64_t test_clock(void *ctx)
{
    (void)ctx;
    return clock_now;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static int start(void **state)
{
    char path[256];
    uint32_t i, x = 99u;
    ota_files_http_config_t cfg;
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/otter-files-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(files_dir, sizeof(files_dir), "%s/files", dir);
    assert_int_equal(mkdir(files_dir, 0755), 0);
    for (i = 0; i < FILE_SIZE; i++) {
        x = x * 1664525u + 1013904223u;
        file_data[i] = (uint8_t)(x >> 24);
    }
    snprintf(path, sizeof(path), "%s/1.bin", files_dir);
    write_file(path, file_data, FILE_SIZE);
    snprintf(path, sizeof(path), "%s/2.bin", files_dir);
    write_file(path, "second file\n", 12);
    snprintf(path, sizeof(path), "%s/secret", dir);
    write_file(path, "secret\n", 7);
    snprintf(path, sizeof(path), "%s/3.bin", files_dir);
    assert_int_equal(symlink("../secret", path), 0);
    memset(&cfg, 0, sizeof(cfg));
    cfg.files_dir = files_dir;
    cfg.key = key;
    cfg.key_len = sizeof(key);
    cfg.now = test_clock;
    server = ota_files_http_start(&cfg);
    assert_non_null(server);
    port = ota_files_http_port(server);
    assert_true(port > 0);
    return 0;
}

static int stop(void **state)
{
    char cmd[128];
    (void)state;
    ota_files_http_stop(server);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void make_url(char *out, size_t cap, int64_t file, const char *thing, const char *job,
                     int64_t expires)
{
    char base[64];
    snprintf(base, sizeof(base), "http://127.0.0.1:%u", (unsigned)port);
    assert_true(ota_url_make(key, sizeof(key), base, file, thing, job, expires, out, cap) > 0);
}

/* ---- signing ---- */

static void test_sign_and_check(void **state)
{
    char url[512], sig[65];
    const char *q;
    ota_url_params_t p;
    (void)state;
    make_url(url, sizeof(url), 7, "dev 1/ü", "job-1", NOW + 60);
    q = strchr(url, '?') + 1;
    assert_non_null(
        strstr(url, "/files/7?thing=dev%201%2F%C3%BC&job=job-1&expires=1700000060&sig="));
    assert_int_equal(ota_url_check(key, sizeof(key), "/files/7", q, NOW, &p), OTA_URL_OK);
    assert_string_equal(p.thing, "dev 1/ü");
    assert_string_equal(p.job, "job-1");
    assert_int_equal(p.expires, NOW + 60);
    /* expired at and after its time */
    assert_int_equal(ota_url_check(key, sizeof(key), "/files/7", q, NOW + 60, NULL),
                     OTA_URL_EXPIRED);
    /* another file, another key */
    assert_int_equal(ota_url_check(key, sizeof(key), "/files/8", q, NOW, NULL),
                     OTA_URL_BAD_SIGNATURE);
    assert_int_equal(ota_url_check((const uint8_t *)"1123456789abcdef0123456789abcdef", 32,
                                   "/files/7", q, NOW, NULL),
                     OTA_URL_BAD_SIGNATURE);
    /* the same signature with the canonical string's fields moved */
    assert_int_equal(ota_url_sign(key, sizeof(key), "/files/7", "a", "b", 5, sig), 0);
    {
        char sig2[65];
        assert_int_equal(ota_url_sign(key, sizeof(key), "/files/7", "b", "a", 5, sig2), 0);
        assert_string_not_equal(sig, sig2);
    }
    assert_int_equal(ota_url_sign(key, 31, "/files/7", "a", "b", 5, sig), -1);
    assert_int_equal(ota_url_sign(key, sizeof(key), "/files/7", "a\n", "b", 5, sig), -1);
}

static void test_check_tampering(void **state)
{
    char url[512], bad[600];
    const char *q;
    size_t i;
    static const char *const fields[] = {"thing=", "job=", "expires="};
    (void)state;
    make_url(url, sizeof(url), 1, "thing-a", "job-a", NOW + 60);
    q = strchr(url, '?') + 1;
    /* one character changed in each field and in the signature */
    for (i = 0; i < 3; i++) {
        char *f;
        snprintf(bad, sizeof(bad), "%s", q);
        f = strstr(bad, fields[i]) + strlen(fields[i]);
        f[0] = f[0] == '1' ? '2' : '1';
        assert_int_equal(ota_url_check(key, sizeof(key), "/files/1", bad, NOW, NULL),
                         OTA_URL_BAD_SIGNATURE);
    }
    snprintf(bad, sizeof(bad), "%s", q);
    bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == '0' ? '1' : '0';
    assert_int_equal(ota_url_check(key, sizeof(key), "/files/1", bad, NOW, NULL),
                     OTA_URL_BAD_SIGNATURE);
    /* missing, repeated, unknown parameters; bad encodings */
    {
        static const char *const malformed[] = {
            "",
            "thing=a&job=b&expires=1",
            "thing=a&job=b&expires=1&sig=00&",
            "thing=a&thing=a&job=b&expires=1&sig="
            "0000000000000000000000000000000000000000000000000000000000000000",
            "thing=a&job=b&expires=1&x=1&sig="
            "0000000000000000000000000000000000000000000000000000000000000000",
            "thing=%0a&job=b&expires=1&sig="
            "0000000000000000000000000000000000000000000000000000000000000000",
            "thing=%g1&job=b&expires=1&sig="
            "0000000000000000000000000000000000000000000000000000000000000000",
            "thing=a&job=b&expires=-1&sig="
            "0000000000000000000000000000000000000000000000000000000000000000",
            "thing=a&job=b&expires=1&sig="
            "000000000000000000000000000000000000000000000000000000000000000G",
            "thing=&job=b&expires=1&sig="
            "0000000000000000000000000000000000000000000000000000000000000000",
        };
        for (i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
            assert_int_equal(ota_url_check(key, sizeof(key), "/files/1", malformed[i], NOW, NULL),
                             OTA_URL_MALFORMED);
        }
    }
}

/* ---- the device's range client against the server ---- */

static void test_device_client_downloads(void **state)
{
    char url[512];
    http_dl_t *d;
    (void)state;
    make_url(url, sizeof(url), 1, "thing-a", "job-a", NOW + 1800);
    d = http_dl_new("127.0.0.1", port, strchr(url + 8, '/'), NULL, FILE_SIZE, 8192);
    assert_non_null(d);
    assert_int_equal(http_dl_run(d, FILE_SIZE), OTA_HTTPC_OK);
    assert_int_equal(d->bytes, FILE_SIZE);
    assert_int_equal(d->ranges, FILE_SIZE / 8192);
    assert_memory_equal(d->got, file_data, FILE_SIZE);
    assert_int_equal(d->max_in_flight, OTA_HTTP_PIPELINE_MAX);
    assert_int_equal(ota_httpc_info(&d->c)->connects, 1);
    /* the URL expires: the next range is refused as expired, with nothing delivered */
    clock_now = NOW + 1800;
    assert_int_equal(ota_httpc_request(&d->c, 0, 99, http_dl_now_ms()), OTA_HTTPC_OK);
    assert_int_equal(http_dl_run(d, 0), OTA_HTTPC_EXPIRED);
    clock_now = NOW;
    assert_int_equal(d->bytes, FILE_SIZE);
    http_dl_free(d);
}

/* ---- raw requests ---- */

static char answer[FILE_SIZE + 4096];

/* Send one request (Connection: close added) and read the whole answer into `answer`. */
static size_t raw(const char *method, const char *target, const char *headers)
{
    struct sockaddr_in a;
    char req[2048];
    size_t have = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0), n;
    assert_true(fd >= 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n",
                 method, target, headers);
    assert_int_equal(send(fd, req, (size_t)n, 0), n);
    for (;;) {
        ssize_t got = recv(fd, answer + have, sizeof(answer) - 1 - have, 0);
        if (got <= 0) {
            break;
        }
        have += (size_t)got;
    }
    close(fd);
    answer[have] = 0;
    return have;
}

static const char *target_of(const char *url)
{
    return strchr(url + 8, '/');
}

static void assert_status(const char *status)
{
    assert_memory_equal(answer, status, strlen(status));
}

static const char *body_of(void)
{
    return strstr(answer, "\r\n\r\n") + 4;
}

static void test_refusals(void **state)
{
    char url[512], target[600];
    (void)state;
    /* expired */
    make_url(url, sizeof(url), 1, "thing-a", "job-a", NOW - 1);
    raw("GET", target_of(url), "Range: bytes=0-9\r\n");
    assert_status("HTTP/1.1 403");
    assert_non_null(strstr(answer, "URL expired"));
    /* thing-a's URL for file 1 used for file 2 */
    make_url(url, sizeof(url), 1, "thing-a", "job-a", NOW + 60);
    snprintf(target, sizeof(target), "/files/2%s", strchr(url, '?'));
    raw("GET", target, "");
    assert_status("HTTP/1.1 403");
    assert_non_null(strstr(answer, "bad signature"));
    /* another thing's name put into thing-a's URL */
    snprintf(target, sizeof(target), "%s", target_of(url));
    memcpy(strstr(target, "thing-a"), "thing-b", 7);
    raw("GET", target, "");
    assert_status("HTTP/1.1 403");
    /* no signature at all */
    raw("GET", "/files/1", "");
    assert_status("HTTP/1.1 400");
    /* paths that would leave the folder or name something else: never opened */
    {
        static const char *const paths[] = {"/files/../secret",
                                            "/files/%2e%2e/secret",
                                            "/files/1.bin",
                                            "/files/01",
                                            "/files/",
                                            "/secret",
                                            "/files/1/",
                                            "/files//1",
                                            "/files/99999999999999999999"};
        size_t i;
        for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
            snprintf(target, sizeof(target), "%s%s", paths[i], strchr(url, '?'));
            raw("GET", target, "");
            assert_status("HTTP/1.1 404");
            assert_null(strstr(answer, "secret\n"));
        }
    }
    /* a correctly signed URL for a file that is a symbolic link out of the folder */
    make_url(url, sizeof(url), 3, "thing-a", "job-a", NOW + 60);
    raw("GET", target_of(url), "");
    assert_status("HTTP/1.1 404");
    assert_null(strstr(answer, "secret\n"));
    /* a file that is not there */
    make_url(url, sizeof(url), 4, "thing-a", "job-a", NOW + 60);
    raw("GET", target_of(url), "");
    assert_status("HTTP/1.1 404");
    /* other methods */
    make_url(url, sizeof(url), 2, "thing-a", "job-a", NOW + 60);
    raw("DELETE", target_of(url), "");
    assert_status("HTTP/1.1 405");
}

static void test_ranges(void **state)
{
    char url[512], hdr[256], etag[80];
    const char *e;
    (void)state;
    make_url(url, sizeof(url), 2, "thing-a", "job-a", NOW + 60);
    /* whole file, with its ETag */
    raw("GET", target_of(url), "");
    assert_status("HTTP/1.1 200");
    assert_string_equal(body_of(), "second file\n");
    e = strstr(answer, "ETag: ");
    assert_non_null(e);
    sscanf(e + 6, "%79s", etag);
    assert_non_null(strstr(answer, "Accept-Ranges: bytes"));
    /* ranges of each form */
    raw("GET", target_of(url), "Range: bytes=7-10\r\n");
    assert_status("HTTP/1.1 206");
    assert_non_null(strstr(answer, "Content-Range: bytes 7-10/12\r\n"));
    assert_string_equal(body_of(), "file");
    raw("GET", target_of(url), "Range: bytes=7-\r\n");
    assert_non_null(strstr(answer, "Content-Range: bytes 7-11/12\r\n"));
    assert_string_equal(body_of(), "file\n");
    raw("GET", target_of(url), "Range: bytes=-5\r\n");
    assert_string_equal(body_of(), "file\n");
    raw("GET", target_of(url), "Range: bytes=7-100\r\n");
    assert_non_null(strstr(answer, "Content-Range: bytes 7-11/12\r\n"));
    /* beyond the file */
    raw("GET", target_of(url), "Range: bytes=12-20\r\n");
    assert_status("HTTP/1.1 416");
    assert_non_null(strstr(answer, "Content-Range: bytes */12\r\n"));
    /* several ranges or nonsense: the whole file */
    raw("GET", target_of(url), "Range: bytes=0-1,3-4\r\n");
    assert_status("HTTP/1.1 200");
    raw("GET", target_of(url), "Range: lines=1-2\r\n");
    assert_status("HTTP/1.1 200");
    /* If-Range: the same ETag keeps the range, another gives the whole file */
    snprintf(hdr, sizeof(hdr), "Range: bytes=0-5\r\nIf-Range: %s\r\n", etag);
    raw("GET", target_of(url), hdr);
    assert_status("HTTP/1.1 206");
    assert_string_equal(body_of(), "second");
    raw("GET", target_of(url), "Range: bytes=0-5\r\nIf-Range: \"other\"\r\n");
    assert_status("HTTP/1.1 200");
    assert_string_equal(body_of(), "second file\n");
    /* HEAD: the headers alone */
    raw("HEAD", target_of(url), "Range: bytes=0-5\r\n");
    assert_status("HTTP/1.1 206");
    assert_string_equal(body_of(), "");
}

/* Per-thing budgets: a thing over its requests or bytes gets 503 with Retry-After; others not. */
static void test_budgets(void **state)
{
    ota_files_http_config_t cfg;
    ota_svc_budget_config_t budget;
    ota_files_http_t *tight;
    uint16_t saved = port;
    char url[512];
    int i;
    (void)state;
    memset(&budget, 0, sizeof(budget));
    budget.requests_per_s = 1;
    budget.request_burst = 2;
    budget.bytes_per_s = 1;
    budget.byte_burst = 131072;
    memset(&cfg, 0, sizeof(cfg));
    cfg.files_dir = files_dir;
    cfg.key = key;
    cfg.key_len = sizeof(key);
    cfg.now = test_clock;
    cfg.budget = &budget;
    tight = ota_files_http_start(&cfg);
    assert_non_null(tight);
    port = ota_files_http_port(tight);
    make_url(url, sizeof(url), 2, "thing-a", "job-a", NOW + 60);
    for (i = 0; i < 2; i++) {
        raw("GET", target_of(url), "Range: bytes=0-1\r\n");
        assert_status("HTTP/1.1 206");
    }
    raw("GET", target_of(url), "Range: bytes=0-1\r\n");
    assert_status("HTTP/1.1 503");
    assert_non_null(strstr(answer, "Retry-After: 1\r\n"));
    /* another thing has its own budget */
    make_url(url, sizeof(url), 1, "thing-b", "job-a", NOW + 60);
    raw("GET", target_of(url), "Range: bytes=0-131071\r\n");
    assert_status("HTTP/1.1 206");
    /* its bytes are spent: the next range is refused, the file not read */
    raw("GET", target_of(url), "Range: bytes=0-99\r\n");
    assert_status("HTTP/1.1 503");
    port = saved;
    ota_files_http_stop(tight);
}

/* otter-files url makes a URL the server takes; otter-files serve starts and stops. */
static void test_program(void **state)
{
    char cmd[1024], url[1024], key_path[128], ready[128];
    FILE *p;
    ota_test_proc_t proc;
    int free_port = ota_test_free_port();
    char port_arg[16];
    char *argv[] = {OTA_TEST_FILES_BIN, "serve",  "--data", dir, "--key-file",
                    key_path,           "--port", port_arg, NULL};
    (void)state;
    snprintf(key_path, sizeof(key_path), "%s/url.key", dir);
    write_file(key_path, key, sizeof(key));
    snprintf(cmd, sizeof(cmd),
             "%s url --key-file %s --base http://127.0.0.1:%u --file 2 --thing t1 --job j1 "
             "--ttl 60",
             OTA_TEST_FILES_BIN, key_path, (unsigned)port);
    p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(url, sizeof(url), p));
    assert_int_equal(pclose(p), 0);
    url[strcspn(url, "\n")] = 0;
    clock_now = time(NULL);
    raw("GET", target_of(url), "");
    clock_now = NOW;
    assert_status("HTTP/1.1 200");
    assert_string_equal(body_of(), "second file\n");
    snprintf(cmd, sizeof(cmd),
             "%s url --key-file %s --base x --file 2 --thing t --job j --ttl 3601",
             OTA_TEST_FILES_BIN, key_path);
    assert_int_not_equal(system(cmd), 0);
    /* serve: listens, answers, stops on SIGTERM with status 0 */
    assert_true(free_port > 0);
    snprintf(port_arg, sizeof(port_arg), "%d", free_port);
    snprintf(ready, sizeof(ready), "%s/serve.log", dir);
    assert_int_equal(ota_test_proc_start(&proc, "otter-files", argv, ready), 0);
    assert_int_equal(ota_test_wait_port(free_port, 10000), 0);
    assert_int_equal(ota_test_proc_stop(&proc), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_and_check),
        cmocka_unit_test(test_check_tampering),
        cmocka_unit_test(test_device_client_downloads),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_budgets),
        cmocka_unit_test(test_program),
    };
    return cmocka_run_group_tests(tests, start, stop);
}
