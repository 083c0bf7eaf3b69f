/*
 * The HTTP range client over real TCP and TLS: against nginx (Debian's,
 * started on free loopback ports in a fresh folder, HTTPS with a CA and
 * certificate made by openssl for the test) serving a 1 MiB file with ranges
 * and keep-alive, and against a socket server of this test that closes the
 * connection in the middle of an answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ota_http_client.h"
#include "ota_http_tcp.h"
#include "ota_http_tls.h"
#include "http_test_dl.h"
#include "ota_test_net.h"

#define FILE_SIZE (1024u * 1024u)
#define RANGE_SIZE (16u * 1024u)

static uint8_t file_data[FILE_SIZE];
static char dir[64];
static int nginx_port, nginx_tls_port, files_port;
static ota_test_proc_t nginx, files;

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static int start_nginx(void **state)
{
    char path[512], conf[4096];
    uint32_t i, x = 12345u;
    char *argv[] = {OTA_TEST_NGINX_PATH, "-p", dir, "-c", path, NULL};
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/otter-http-XXXXXX");
    assert_non_null(mkdtemp(dir));
    chmod(dir, 0755);
    snprintf(path, sizeof(path), "%s/www", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/www/expired", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    for (i = 0; i < FILE_SIZE; i++) {
        x = x * 1103515245u + 12345u;
        file_data[i] = (uint8_t)(x >> 16);
    }
    snprintf(path, sizeof(path), "%s/www/fw.bin", dir);
    write_file(path, file_data, FILE_SIZE);
    /* the service's file server with the same file as stored file 1, behind nginx's HTTPS */
    snprintf(path, sizeof(path), "%s/files", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/files/1.bin", dir);
    write_file(path, file_data, FILE_SIZE);
    snprintf(path, sizeof(path), "%s/url.key", dir);
    write_file(path, "0123456789abcdef0123456789abcdef", 32);
    files_port = ota_test_free_port();
    assert_true(files_port > 0);
    {
        char port_arg[16], log[512];
        char *fargv[] = {OTA_TEST_FILES_BIN, "serve",  "--data", dir, "--key-file", path,
                         "--port",           port_arg, NULL};
        snprintf(port_arg, sizeof(port_arg), "%d", files_port);
        snprintf(log, sizeof(log), "%s/files.log", dir);
        assert_int_equal(ota_test_proc_start(&files, "otter-files", fargv, log), 0);
        assert_int_equal(ota_test_wait_port(files_port, 10000), 0);
    }
    nginx_port = ota_test_free_port();
    assert_true(nginx_port > 0);
    do {
        nginx_tls_port = ota_test_free_port();
    } while (nginx_tls_port == nginx_port || nginx_tls_port == files_port);
    assert_true(nginx_tls_port > 0);
    /* a CA, a server certificate for localhost signed by it, and a second CA that signed nothing */
    {
        char cmd[2048];
        snprintf(cmd, sizeof(cmd),
                 "(cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                 "-keyout ca.key -out ca.pem -subj /CN=otter-test-ca -days 2 && "
                 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                 "-keyout other-ca.key -out other-ca.pem -subj /CN=otter-other-ca -days 2 && "
                 "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key "
                 "-out srv.csr -subj /CN=localhost && "
                 "printf 'subjectAltName=DNS:localhost' > san.ext && "
                 "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
                 "-out srv.pem -days 2 -extfile san.ext) >/dev/null 2>&1",
                 dir);
        assert_int_equal(system(cmd), 0);
    }
    /* One process, logs in the folder; the access log names each request's connection. */
    snprintf(conf, sizeof(conf),
             "daemon off;\nmaster_process off;\nworker_processes 1;\npid %s/nginx.pid;\n"
             "error_log %s/error.log;\nevents { worker_connections 64; }\n"
             "http {\n  log_format conn '$connection $connection_requests $status $http_range';\n"
             "  access_log %s/access.log conn;\n"
             "  client_body_temp_path %s/tmp;\n  proxy_temp_path %s/tmp;\n"
             "  fastcgi_temp_path %s/tmp;\n  uwsgi_temp_path %s/tmp;\n  scgi_temp_path %s/tmp;\n"
             "  keepalive_requests 10000;\n"
             "  server {\n    listen 127.0.0.1:%d;\n    listen 127.0.0.1:%d ssl;\n"
             "    ssl_certificate %s/srv.pem;\n    ssl_certificate_key %s/srv.key;\n"
             "    root %s/www;\n    location /expired/ { return 403; }\n"
             "    location /files/ {\n      proxy_pass http://127.0.0.1:%d;\n"
             "      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n    }\n"
             "  }\n}\n",
             dir, dir, dir, dir, dir, dir, dir, dir, nginx_port, nginx_tls_port, dir, dir, dir,
             files_port);
    snprintf(path, sizeof(path), "%s/nginx.conf", dir);
    write_file(path, conf, strlen(conf));
    {
        char log[512];
        snprintf(log, sizeof(log), "%s/nginx.out", dir);
        assert_int_equal(ota_test_proc_start(&nginx, "nginx", argv, log), 0);
    }
    assert_int_equal(ota_test_wait_port(nginx_port, 10000), 0);
    assert_int_equal(ota_test_wait_port(nginx_tls_port, 10000), 0);
    return 0;
}

static int stop_nginx(void **state)
{
    char cmd[300];
    (void)state;
    ota_test_proc_stop(&nginx);
    ota_test_proc_stop(&files);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A download of FILE_SIZE bytes in RANGE_SIZE ranges, over TLS trusting ca when not NULL. */
static http_dl_t *dl_new(const char *host, int port, const char *path, const char *ca)
{
    http_dl_t *d = http_dl_new(host, port, path, ca, FILE_SIZE, RANGE_SIZE);
    assert_non_null(d);
    return d;
}

/* Lines of nginx's access log (each "connection requests status range"). */
static int count_log_lines(unsigned long *first_conn, int *one_conn)
{
    char path[512], line[256];
    int n = 0;
    FILE *f;
    snprintf(path, sizeof(path), "%s/access.log", dir);
    f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    *one_conn = 1;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long conn = strtoul(line, NULL, 10);
        if (n == 0) {
            *first_conn = conn;
        } else if (conn != *first_conn) {
            *one_conn = 0;
        }
        n++;
    }
    fclose(f);
    return n;
}

static void truncate_log(void)
{
    char path[512];
    FILE *f;
    snprintf(path, sizeof(path), "%s/access.log", dir);
    f = fopen(path, "w");
    if (f != NULL) {
        fclose(f);
    }
}

/* 1 MiB in 16 KiB ranges, pipelined, one connection, every byte right. */
static void test_pipelined_download(void **state)
{
    http_dl_t *d = dl_new("127.0.0.1", nginx_port, "/fw.bin?sig=abc&exp=1", NULL);
    unsigned long conn = 0;
    int one_conn = 0, lines;
    uint32_t tries;
    (void)state;
    truncate_log();
    assert_int_equal(http_dl_run(d, FILE_SIZE), OTA_HTTPC_OK);
    assert_int_equal(d->bytes, FILE_SIZE);
    assert_int_equal(d->ranges, FILE_SIZE / RANGE_SIZE);
    assert_memory_equal(d->got, file_data, FILE_SIZE);
    assert_int_equal(ota_httpc_info(&d->c)->file_size, FILE_SIZE);
    assert_int_equal(ota_httpc_info(&d->c)->connects, 1);
    assert_int_equal(ota_httpc_info(&d->c)->requests, FILE_SIZE / RANGE_SIZE);
    assert_int_equal(d->max_in_flight, OTA_HTTP_PIPELINE_MAX);
    assert_int_equal(d->tcp.opens, 1);
    /* nginx saw every request on one connection (it logs after answering: wait a little) */
    for (tries = 0; tries < 100; tries++) {
        lines = count_log_lines(&conn, &one_conn);
        if (lines >= (int)(FILE_SIZE / RANGE_SIZE)) {
            break;
        }
        usleep(10000);
    }
    assert_int_equal(lines, FILE_SIZE / RANGE_SIZE);
    assert_true(one_conn);
    http_dl_free(d);
}

/* 403 (an expired URL), then a fresh URL: the download goes on where it was. */
static void test_expired_then_fresh_url(void **state)
{
    http_dl_t *d = dl_new("127.0.0.1", nginx_port, "/fw.bin", NULL);
    char fresh[256];
    (void)state;
    assert_int_equal(http_dl_run(d, 5u * RANGE_SIZE), OTA_HTTPC_OK);
    snprintf(d->url, sizeof(d->url), "http://127.0.0.1:%d/expired/fw.bin?exp=1", nginx_port);
    assert_int_equal(ota_httpc_set_url(&d->c, d->url), OTA_HTTPC_OK);
    assert_int_equal(http_dl_run(d, 6u * RANGE_SIZE), OTA_HTTPC_EXPIRED);
    assert_int_equal(ota_httpc_info(&d->c)->last_status, 403);
    assert_int_equal(ota_httpc_info(&d->c)->last_first, 5u * RANGE_SIZE);
    assert_int_equal(d->bytes, 5u * RANGE_SIZE);
    snprintf(fresh, sizeof(fresh), "http://127.0.0.1:%d/fw.bin?exp=2", nginx_port);
    memcpy(d->url, fresh, sizeof(fresh));
    assert_int_equal(ota_httpc_set_url(&d->c, d->url), OTA_HTTPC_OK);
    d->next_ask = 5u * RANGE_SIZE; /* what the bitmap still lacks */
    assert_int_equal(http_dl_run(d, FILE_SIZE), OTA_HTTPC_OK);
    assert_int_equal(d->bytes, FILE_SIZE);
    assert_memory_equal(d->got, file_data, FILE_SIZE);
    http_dl_free(d);
}

static void test_refusals(void **state)
{
    http_dl_t *d = dl_new("127.0.0.1", nginx_port, "/fw.bin", NULL);
    http_dl_t *missing = dl_new("127.0.0.1", nginx_port, "/nothing.bin", NULL);
    (void)state;
    /* a range beyond the file (the size is not known yet) */
    assert_int_equal(ota_httpc_request(&d->c, FILE_SIZE, FILE_SIZE + 10u, http_dl_now_ms()),
                     OTA_HTTPC_OK);
    assert_int_equal(http_dl_run(d, 0), OTA_HTTPC_RANGE_REFUSED);
    assert_int_equal(ota_httpc_info(&d->c)->last_status, 416);
    assert_int_equal(http_dl_run(missing, RANGE_SIZE), OTA_HTTPC_NOT_FOUND);
    assert_int_equal(d->bytes + missing->bytes, 0);
    http_dl_free(d);
    http_dl_free(missing);
}

/* Over TLS: 1 MiB pipelined on one TLS session, every byte right. */
static void test_tls_download(void **state)
{
    char ca[128];
    http_dl_t *d;
    (void)state;
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    d = dl_new("localhost", nginx_tls_port, "/fw.bin?sig=abc", ca);
    assert_int_equal(http_dl_run(d, FILE_SIZE), OTA_HTTPC_OK);
    assert_int_equal(d->bytes, FILE_SIZE);
    assert_memory_equal(d->got, file_data, FILE_SIZE);
    assert_int_equal(d->max_in_flight, OTA_HTTP_PIPELINE_MAX);
    assert_int_equal(ota_httpc_info(&d->c)->connects, 1);
    assert_int_equal(d->tls.handshakes, 1);
    http_dl_free(d);
}

/* A server whose certificate another CA signed: no connection, nothing delivered. */
static void test_tls_untrusted(void **state)
{
    char ca[128];
    http_dl_t *d;
    (void)state;
    snprintf(ca, sizeof(ca), "%s/other-ca.pem", dir);
    d = dl_new("localhost", nginx_tls_port, "/fw.bin", ca);
    assert_int_equal(ota_httpc_request(&d->c, 0, 99, http_dl_now_ms()), OTA_HTTPC_TRANSPORT);
    assert_int_equal(d->tls.handshakes, 0);
    assert_int_equal(d->bytes, 0);
    http_dl_free(d);
}

/*
 * The service's signed URLs over HTTPS (nginx terminating TLS in front of
 * otter-files): the download completes; the same URL with another job is refused.
 */
static void test_signed_url_over_https(void **state)
{
    char cmd[1024], url[1024], ca[128];
    FILE *p;
    http_dl_t *d;
    char *tampered;
    (void)state;
    snprintf(cmd, sizeof(cmd),
             "%s url --key-file %s/url.key --base https://localhost:%d --file 1 --thing dev-1 "
             "--job job-1 --ttl 600",
             OTA_TEST_FILES_BIN, dir, nginx_tls_port);
    p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(url, sizeof(url), p));
    assert_int_equal(pclose(p), 0);
    url[strcspn(url, "\n")] = 0;
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    d = dl_new("localhost", nginx_tls_port, strchr(url + 8, '/'), ca);
    assert_int_equal(http_dl_run(d, FILE_SIZE), OTA_HTTPC_OK);
    assert_int_equal(d->bytes, FILE_SIZE);
    assert_memory_equal(d->got, file_data, FILE_SIZE);
    assert_int_equal(ota_httpc_info(&d->c)->connects, 1);
    /* another job's name in the same URL: 403, nothing more delivered */
    tampered = strstr(d->url, "job=job-1");
    assert_non_null(tampered);
    tampered[8] = '2';
    assert_int_equal(ota_httpc_set_url(&d->c, d->url), OTA_HTTPC_OK);
    assert_int_equal(ota_httpc_request(&d->c, 0, 99, http_dl_now_ms()), OTA_HTTPC_OK);
    assert_int_equal(http_dl_run(d, 0), OTA_HTTPC_EXPIRED);
    assert_int_equal(ota_httpc_info(&d->c)->last_status, 403);
    assert_int_equal(d->bytes, FILE_SIZE);
    http_dl_free(d);
}

/* ---- a server that closes in the middle of its second answer ---- */

typedef struct half_server {
    int listen_fd, port;
} half_server_t;

static void *half_server_main(void *arg)
{
    half_server_t *s = arg;
    int fd = accept(s->listen_fd, NULL, NULL);
    char req[4096];
    size_t have = 0;
    int answers = 0;
    if (fd < 0) {
        return NULL;
    }
    /* both pipelined requests, then the first answer whole and half of the second */
    while (answers < 2 && have < sizeof(req) - 1) {
        ssize_t n = recv(fd, req + have, sizeof(req) - 1 - have, 0);
        char *p;
        if (n <= 0) {
            break;
        }
        have += (size_t)n;
        req[have] = 0;
        answers = 0;
        for (p = strstr(req, "\r\n\r\n"); p != NULL; p = strstr(p + 4, "\r\n\r\n")) {
            answers++;
        }
    }
    {
        char head[256];
        int len = snprintf(head, sizeof(head),
                           "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-999/%u\r\n"
                           "Content-Length: 1000\r\n\r\n",
                           FILE_SIZE);
        send(fd, head, (size_t)len, MSG_NOSIGNAL);
        send(fd, file_data, 1000, MSG_NOSIGNAL);
        len = snprintf(head, sizeof(head),
                       "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 1000-1999/%u\r\n"
                       "Content-Length: 1000\r\n\r\n",
                       FILE_SIZE);
        send(fd, head, (size_t)len, MSG_NOSIGNAL);
        send(fd, file_data + 1000, 400, MSG_NOSIGNAL);
    }
    close(fd);
    return NULL;
}

static void test_server_closes_mid_answer(void **state)
{
    half_server_t s;
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    pthread_t th;
    http_dl_t *d;
    (void)state;
    s.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s.listen_fd >= 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s.listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s.listen_fd, 1), 0);
    assert_int_equal(getsockname(s.listen_fd, (struct sockaddr *)&a, &alen), 0);
    s.port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&th, NULL, half_server_main, &s), 0);
    d = dl_new("127.0.0.1", s.port, "/fw.bin", NULL);
    assert_int_equal(ota_httpc_request(&d->c, 0, 999, http_dl_now_ms()), OTA_HTTPC_OK);
    assert_int_equal(ota_httpc_request(&d->c, 1000, 1999, http_dl_now_ms()), OTA_HTTPC_OK);
    assert_int_equal(http_dl_run(d, 0), OTA_HTTPC_CLOSED);
    assert_int_equal(ota_httpc_info(&d->c)->last_first, 1000);
    assert_int_equal(d->ranges, 1);
    assert_int_equal(d->bytes, 1400);
    assert_memory_equal(d->got, file_data, 1400);
    assert_int_equal(ota_httpc_in_flight(&d->c), 0);
    assert_int_equal(d->tcp.fd, -1);
    pthread_join(th, NULL);
    close(s.listen_fd);
    http_dl_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipelined_download),
        cmocka_unit_test(test_expired_then_fresh_url),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_server_closes_mid_answer),
        cmocka_unit_test(test_tls_download),
        cmocka_unit_test(test_tls_untrusted),
        cmocka_unit_test(test_signed_url_over_https),
    };
    return cmocka_run_group_tests(tests, start_nginx, stop_nginx);
}
