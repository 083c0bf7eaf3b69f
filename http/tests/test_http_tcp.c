/*
 * The HTTP range client over real TCP against socket servers of this test
 * whose answers otter-http never gives: a server that closes the connection
 * in the middle of an answer. (The client against otter-http itself, over
 * TCP and TLS, pipelined, with expired URLs: service/http/tests/test_http_net.c.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "otter/ota_http_client.h"
#include "http_test_dl.h"
#include "ota_test_loopback.h"

#define FILE_SIZE (1024u * 1024u)
#define RANGE_SIZE (16u * 1024u)

static uint8_t file_data[FILE_SIZE];

/* A download of FILE_SIZE bytes in RANGE_SIZE ranges. */
static http_dl_t *dl_new(const char *host, int port, const char *path, const char *ca)
{
    http_dl_t *d = http_dl_new(host, port, path, ca, FILE_SIZE, RANGE_SIZE);
    assert_non_null(d);
    return d;
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
    pthread_t th;
    http_dl_t *d;
    (void)state;
    s.listen_fd = ota_test_listen_loopback(&s.port);
    assert_true(s.listen_fd >= 0);
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
        cmocka_unit_test(test_server_closes_mid_answer),
    };
    uint32_t i, x = 12345u;
    for (i = 0; i < FILE_SIZE; i++) {
        x = x * 1103515245u + 12345u;
        file_data[i] = (uint8_t)(x >> 16);
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
