/*
 * otter service: the stored files over HTTP (see ota_files_http.h), on
 * civetweb: HTTP/1.1 keep-alive with pipelined requests answered in order.
 */
#include "ota_files_http.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <civetweb.h>

#include "ota_svc_budget.h"
#include "ota_url_sign.h"

/** Bytes read from the file per write to the connection. */
#define CHUNK 16384u

struct ota_files_http {
    struct mg_context *ctx;
    int dir_fd;
    uint8_t key[256];
    size_t key_len;
    int64_t (*now)(void *ctx);
    void *now_ctx;
    uint16_t port;
    ota_svc_budget_t *budget; /* per-thing requests and bytes, under lock */
    pthread_mutex_t lock;
    int has_lock;
    int64_t last_tick_ms;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Take one request (bytes 0) or `bytes` answer bytes from thing's budget: 1 allowed. */
static int within_budget(ota_files_http_t *s, const char *thing, uint64_t bytes)
{
    int64_t now = mono_ms();
    int ok;
    pthread_mutex_lock(&s->lock);
    if (now - s->last_tick_ms >= 5000) {
        ota_svc_budget_tick(s->budget, now);
        s->last_tick_ms = now;
    }
    ok = bytes == 0 ? ota_svc_budget_request(s->budget, thing, now)
                    : ota_svc_budget_bytes(s->budget, thing, bytes, now);
    pthread_mutex_unlock(&s->lock);
    return ok;
}

static int64_t wall_clock(void *ctx)
{
    (void)ctx;
    return (int64_t)time(NULL);
}

/* Start an answer: status, then each name/value pair (NULL ends), Content-Length. */
static void head(struct mg_connection *con, int status, uint64_t length, const char *const *pairs)
{
    char len[24];
    mg_response_header_start(con, status);
    for (; pairs != NULL && pairs[0] != NULL; pairs += 2) {
        mg_response_header_add(con, pairs[0], pairs[1], -1);
    }
    snprintf(len, sizeof(len), "%" PRIu64, length);
    mg_response_header_add(con, "Content-Length", len, -1);
    mg_response_header_send(con);
}

static int answer_text(struct mg_connection *con, int status, const char *text)
{
    /* 405 names the methods; 503 (throttled, as S3's "Slow Down") says when to ask again */
    const char *const pairs[] = {"Content-Type", "text/plain",
                                 status == 405   ? "Allow"
                                 : status == 503 ? "Retry-After"
                                                 : NULL,
                                 status == 405 ? "GET, HEAD" : "1", NULL};
    head(con, status, strlen(text), pairs);
    if (strcmp(mg_get_request_info(con)->request_method, "HEAD") != 0) {
        mg_write(con, text, strlen(text));
    }
    return status;
}

/* "/files/<digits>" (at most 18 digits, no leading zero): the id, or -1. */
static int64_t file_id(const char *path, size_t len)
{
    size_t i;
    int64_t id = 0;
    if (len <= 7 || len > 7 + 18 || memcmp(path, "/files/", 7) != 0 ||
        (path[7] == '0' && len > 8)) {
        return -1;
    }
    for (i = 7; i < len; i++) {
        if (path[i] < '0' || path[i] > '9') {
            return -1;
        }
        id = id * 10 + (path[i] - '0');
    }
    return id;
}

/* Parse one "bytes=a-b" / "bytes=a-" / "bytes=-n" against size: 1 range, 0 ignore, -1 beyond. */
static int parse_range(const char *h, uint64_t size, uint64_t *first, uint64_t *last)
{
    const char *p;
    char *end;
    unsigned long long a, b;
    if (h == NULL || strncmp(h, "bytes=", 6) != 0 || strchr(h, ',') != NULL) {
        return 0;
    }
    p = h + 6;
    if (*p == '-') {
        if (p[1] < '0' || p[1] > '9') {
            return 0;
        }
        errno = 0;
        b = strtoull(p + 1, &end, 10);
        if (*end != 0 || errno != 0 || b == 0) {
            return b == 0 && *end == 0 ? -1 : 0;
        }
        if (size == 0) {
            return -1;
        }
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return 1;
    }
    if (*p < '0' || *p > '9') {
        return 0;
    }
    errno = 0;
    a = strtoull(p, &end, 10);
    if (errno != 0 || *end != '-') {
        return 0;
    }
    p = end + 1;
    if (*p == 0) {
        b = size == 0 ? 0 : size - 1;
    } else {
        if (*p < '0' || *p > '9') {
            return 0;
        }
        b = strtoull(p, &end, 10);
        if (errno != 0 || *end != 0 || b < a) {
            return 0;
        }
    }
    if (a >= size) {
        return -1;
    }
    *first = a;
    *last = b >= size ? size - 1 : b;
    return 1;
}

static int serve(struct mg_connection *con, void *cbdata)
{
    ota_files_http_t *s = cbdata;
    const struct mg_request_info *ri = mg_get_request_info(con);
    const char *range_h, *if_range;
    char name[32], path[32], etag[80], crange[96];
    struct stat st;
    ota_url_params_t params;
    uint64_t first = 0, last = 0, left, at;
    int fd, ranged, status;
    int64_t id;
    int is_head = strcmp(ri->request_method, "HEAD") == 0;
    if (strcmp(ri->request_method, "GET") != 0 && !is_head) {
        return answer_text(con, 405, "GET or HEAD\n");
    }
    id = ri->local_uri_raw != NULL ? file_id(ri->local_uri_raw, strlen(ri->local_uri_raw)) : -1;
    if (id < 0) {
        return answer_text(con, 404, "no such file\n");
    }
    snprintf(path, sizeof(path), "/files/%" PRId64, id);
    switch (
        ota_url_check(s->key, s->key_len, path, ri->query_string, s->now(s->now_ctx), &params)) {
    case OTA_URL_OK:
        break;
    case OTA_URL_EXPIRED:
        return answer_text(con, 403, "URL expired\n");
    case OTA_URL_BAD_SIGNATURE:
        return answer_text(con, 403, "bad signature\n");
    default:
        return answer_text(con, 400, "not a signed file URL\n");
    }
    if (!within_budget(s, params.thing, 0)) {
        return answer_text(con, 503, "slow down\n");
    }
    snprintf(name, sizeof(name), "%" PRId64 ".bin", id);
    fd = openat(s->dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        return answer_text(con, 404, "no such file\n");
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return answer_text(con, 404, "no such file\n");
    }
    snprintf(etag, sizeof(etag), "\"%" PRIx64 "-%" PRIx64 "-%" PRIx64 "\"", (uint64_t)st.st_size,
             (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec,
             (uint64_t)st.st_ino);
    range_h = mg_get_header(con, "Range");
    if_range = mg_get_header(con, "If-Range");
    ranged = parse_range(range_h, (uint64_t)st.st_size, &first, &last);
    if (ranged != 0 && if_range != NULL && strcmp(if_range, etag) != 0) {
        ranged = 0; /* the file changed since the device's first answer: all of it */
    }
    if (ranged < 0) {
        const char *const pairs[] = {"Content-Range", crange, "ETag", etag, NULL};
        close(fd);
        snprintf(crange, sizeof(crange), "bytes */%" PRIu64, (uint64_t)st.st_size);
        head(con, 416, 0, pairs);
        return 416;
    }
    if (ranged == 0) {
        first = 0;
        last = (uint64_t)st.st_size - 1u;
    }
    left = st.st_size == 0 ? 0 : last - first + 1u;
    if (!is_head && left > 0 && !within_budget(s, params.thing, left)) {
        close(fd);
        return answer_text(con, 503, "slow down\n");
    }
    status = ranged > 0 ? 206 : 200;
    snprintf(crange, sizeof(crange), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, last,
             (uint64_t)st.st_size);
    {
        const char *const pairs[] = {"ETag",
                                     etag,
                                     "Accept-Ranges",
                                     "bytes",
                                     "Content-Type",
                                     "application/octet-stream",
                                     "Cache-Control",
                                     "private, no-store",
                                     ranged > 0 ? "Content-Range" : NULL,
                                     crange,
                                     NULL};
        head(con, status, left, pairs);
    }
    for (at = first; !is_head && left > 0;) {
        uint8_t buf[CHUNK];
        ssize_t n = pread(fd, buf, left < CHUNK ? (size_t)left : CHUNK, (off_t)at);
        if (n <= 0 || mg_write(con, buf, (size_t)n) != (int)n) {
            break; /* the answer is cut short: the client sees the connection close */
        }
        at += (uint64_t)n;
        left -= (uint64_t)n;
    }
    close(fd);
    return status; /* after a read error the answer is short: the client refuses what follows */
}

ota_files_http_t *ota_files_http_start(const ota_files_http_config_t *cfg)
{
    ota_files_http_t *s;
    char listen[64], threads[16], timeout[16];
    const char *options[14];
    size_t o = 0;
    struct mg_server_port ports[1];
    if (cfg == NULL || cfg->files_dir == NULL || cfg->key == NULL ||
        cfg->key_len < OTA_URL_KEY_MIN || cfg->key_len > 256) {
        fprintf(stderr, "otter files: bad configuration (files folder, key of 32..256 bytes)\n");
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    mg_init_library(0);
    s->dir_fd = open(cfg->files_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dir_fd < 0) {
        fprintf(stderr, "otter files: %s: %s\n", cfg->files_dir, strerror(errno));
        ota_files_http_stop(s);
        return NULL;
    }
    memcpy(s->key, cfg->key, cfg->key_len);
    s->key_len = cfg->key_len;
    {
        ota_svc_budget_config_t bc;
        ota_svc_budget_defaults(&bc);
        s->budget = ota_svc_budget_create(cfg->budget != NULL ? cfg->budget : &bc);
    }
    pthread_mutex_init(&s->lock, NULL);
    s->has_lock = 1;
    if (s->budget == NULL) {
        fprintf(stderr, "otter files: bad budget settings\n");
        ota_files_http_stop(s);
        return NULL;
    }
    s->now = cfg->now != NULL ? cfg->now : wall_clock;
    s->now_ctx = cfg->now_ctx;
    snprintf(listen, sizeof(listen), "%s:%u", cfg->bind_addr != NULL ? cfg->bind_addr : "127.0.0.1",
             (unsigned)cfg->port);
    snprintf(threads, sizeof(threads), "%u",
             cfg->max_connections != 0 ? cfg->max_connections : 64u);
    snprintf(timeout, sizeof(timeout), "%u",
             (cfg->idle_timeout_s != 0 ? cfg->idle_timeout_s : 30u) * 1000u);
    options[o++] = "listening_ports";
    options[o++] = listen;
    options[o++] = "num_threads";
    options[o++] = threads;
    options[o++] = "enable_keep_alive";
    options[o++] = "yes";
    options[o++] = "keep_alive_timeout_ms";
    options[o++] = timeout;
    options[o++] = "request_timeout_ms";
    options[o++] = timeout;
    options[o++] = "max_request_size";
    options[o++] = "16384";
    options[o] = NULL;
    s->ctx = mg_start(NULL, s, options);
    if (s->ctx == NULL) {
        fprintf(stderr, "otter files: cannot listen on %s\n", listen);
        ota_files_http_stop(s);
        return NULL;
    }
    mg_set_request_handler(s->ctx, "/", serve, s);
    if (mg_get_server_ports(s->ctx, 1, ports) != 1) {
        ota_files_http_stop(s);
        return NULL;
    }
    s->port = (uint16_t)ports[0].port;
    return s;
}

uint16_t ota_files_http_port(const ota_files_http_t *s)
{
    return s == NULL ? 0 : s->port;
}

void ota_files_http_stop(ota_files_http_t *s)
{
    if (s == NULL) {
        return;
    }
    if (s->ctx != NULL) {
        mg_stop(s->ctx);
    }
    if (s->dir_fd >= 0) {
        close(s->dir_fd);
    }
    ota_svc_budget_destroy(s->budget);
    if (s->has_lock) {
        pthread_mutex_destroy(&s->lock);
    }
    memset(s->key, 0, sizeof(s->key));
    free(s);
    mg_exit_library();
}
