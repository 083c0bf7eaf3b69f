/*
 * otter-web: the web console daemon. Serves the console's pages (plain
 * HTML, CSS and JavaScript from a folder of the repository) and the HTTP API
 * /api/v1 (ota_web_api.h) to operators, over HTTP or HTTPS, with
 * libmicrohttpd. Apart from otter-http, which faces devices (docs/WEB.md).
 *
 * libmicrohttpd runs a thread per connection, so that a job's event stream
 * (Server-Sent Events) may wait for changes in its own thread; each request
 * opens its own store handle. The main thread waits for SIGTERM or SIGINT.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <pthread.h>

#include "ota_httpd.h"
#include "ota_httpd_deadlines.h"
#include "ota_store.h"
#include "ota_web_api.h"
#include "ota_web_sessions.h"
#include "ota_web_users.h"

#ifndef OTTER_WEB_STATIC_DIR
#define OTTER_WEB_STATIC_DIR "web/static"
#endif

typedef struct options {
    const char *data_dir;
    const char *bind;
    long port;
    int tls;
    const char *cert;
    const char *key;
    const char *static_dir;
    const char *signing_key; /* --signing-key, or NULL for DIR/web/codesign.key */
    char signing_key_buf[4200];
    int log_level;
    int routes;
    const char *public_hosts[16]; /* --public-host NAME[:PORT], repeatable */
    int n_public_hosts;
} options_t;

typedef struct app {
    const options_t *o;
    ota_web_sessions_t *sessions;
    /* Uploads arriving now and the bytes set aside for them (OTA_WEB_UPLOADS_*). */
    pthread_mutex_t up_lock;
    int up_active;
    long long up_reserved;
    /* Open connections and their deadlines, checked by the main thread. */
    ota_httpd_deadlines_t *deadlines;
} app_t;

/** What a connection accumulates between libmicrohttpd's calls. */
typedef struct conn_state {
    char *body;
    size_t len;
    int too_large;
    /* An upload (POST /api/v1/uploads): streamed to DIR/web/uploads/<id>.part. */
    int upload; /* 1: admitted and streaming; -1: refused (refusal below) */
    int fd;     /* the .part file, or -1 */
    char id[OTA_WEB_UPLOAD_ID_LEN + 1];
    char part[4300];
    long long up_len;
    long long up_room; /* bytes this upload may store (set aside in app_t) */
    app_t *app;        /* set while the upload holds its room */
    ota_web_response_t refusal;
} conn_state_t;

/** A job's event stream. */
typedef struct event_stream {
    const app_t *app;
    char job[80];
    char token[OTA_WEB_TOKEN_LEN + 1];
    ota_store_t *store;
    char *pending;
    size_t off, len;
    int first, finished;
    long long last_send_ms;
} event_stream_t;

static volatile sig_atomic_t g_stop;
static int g_tls; /* serving HTTPS: browsers are told to stay on it */

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ----------------------------------------------------------- answering -- */

/* Headers every answer carries: no framing, no sniffing, scripts only from here. */
static void security_headers(struct MHD_Response *r)
{
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'self'; script-src 'self'; style-src 'self'; img-src "
                            "'self' data:; connect-src 'self'; frame-ancestors 'none'; "
                            "base-uri 'none'; form-action 'self'");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (g_tls) {
        MHD_add_response_header(r, "Strict-Transport-Security", "max-age=31536000");
    }
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *type,
                                 char *body, size_t len, const char *cookie, unsigned retry_after,
                                 const char *location)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, body ? body : (char *)"", MHD_RESPMEM_MUST_COPY);
    if (r == NULL) {
        return MHD_NO;
    }
    security_headers(r);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (cookie != NULL && cookie[0] != '\0') {
        MHD_add_response_header(r, MHD_HTTP_HEADER_SET_COOKIE, cookie);
    }
    if (retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%u", retry_after);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (location != NULL) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, location);
    }
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *code,
                                  const char *message)
{
    char *body = ota_web_error_json(code, message);
    enum MHD_Result rc =
        send_text(c, status, "application/json", body, body ? strlen(body) : 0, NULL, 0, NULL);
    free(body);
    return rc;
}

/* ------------------------------------------------------- event streams -- */

static void stream_free(void *cls)
{
    event_stream_t *s = cls;
    ota_store_close(s->store);
    free(s->pending);
    free(s);
}

/* Next bytes of a job's event stream; waits in this connection's thread. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    event_stream_t *s = cls;
    (void)pos;
    for (;;) {
        if (s->pending != NULL) {
            size_t n = s->len - s->off < max ? s->len - s->off : max;
            memcpy(buf, s->pending + s->off, n);
            s->off += n;
            if (s->off == s->len) {
                free(s->pending);
                s->pending = NULL;
            }
            return (ssize_t)n;
        }
        long long now = now_ms();
        if (s->finished || g_stop || !ota_web_session_alive(s->app->sessions, s->token, now)) {
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        int changed = 0;
        if (ota_store_poll_changes(s->store, &changed) != OTA_STORE_OK) {
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (changed || s->first) {
            int done = 0;
            char *json = ota_web_job_event(s->store, s->job, &done);
            s->first = 0;
            if (json == NULL) {
                return MHD_CONTENT_READER_END_OF_STREAM;
            }
            size_t n = strlen(json) + 16;
            s->pending = malloc(n);
            if (s->pending == NULL) {
                free(json);
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
            s->len = (size_t)snprintf(s->pending, n, "data: %s\n\n", json);
            s->off = 0;
            free(json);
            s->finished = done;
            s->last_send_ms = now;
            continue;
        }
        if (now - s->last_send_ms >= 15000) {
            s->pending = strdup(": keep-alive\n\n");
            s->len = s->pending ? strlen(s->pending) : 0;
            s->off = 0;
            s->last_send_ms = now;
            continue;
        }
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static enum MHD_Result send_stream(struct MHD_Connection *c, const app_t *app,
                                   const ota_web_response_t *resp)
{
    event_stream_t *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return send_error(c, 500, "internal", "out of memory; try again");
    }
    s->app = app;
    s->first = 1;
    snprintf(s->job, sizeof s->job, "%s", resp->event_job);
    snprintf(s->token, sizeof s->token, "%s", resp->session.token);
    if (ota_store_open(app->o->data_dir, &s->store) != OTA_STORE_OK) {
        free(s);
        return send_error(c, 500, "internal", "cannot open the store; check --data-dir");
    }
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, s, stream_free);
    if (r == NULL) {
        stream_free(s);
        return MHD_NO;
    }
    security_headers(r);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    enum MHD_Result rc = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return rc;
}

/* ---------------------------------------------------------------- pages -- */

/* Pages anybody may load: the login page and what it needs. */
static int public_file(const char *name)
{
    return strcmp(name, "login.html") == 0 || strcmp(name, "app.css") == 0 ||
           strcmp(name, "app.js") == 0 || strcmp(name, "login.js") == 0;
}

/* The content type of a page file, or NULL for a name that is not one. */
static const char *page_type(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64 || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-.") != n ||
        name[0] == '.' || strstr(name, "..") != NULL) {
        return NULL;
    }
    const char *dot = strrchr(name, '.');
    if (dot == NULL) {
        return NULL;
    }
    if (strcmp(dot, ".html") == 0) {
        return "text/html; charset=utf-8";
    }
    if (strcmp(dot, ".css") == 0) {
        return "text/css; charset=utf-8";
    }
    if (strcmp(dot, ".js") == 0) {
        return "text/javascript; charset=utf-8";
    }
    if (strcmp(dot, ".png") == 0) {
        return "image/png";
    }
    return NULL;
}

static enum MHD_Result send_page(struct MHD_Connection *c, const app_t *app, const char *url,
                                 const char *method)
{
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        return send_error(c, 405, "method_not_allowed", "pages are read with GET");
    }
    const char *name = strcmp(url, "/") == 0 ? "index.html" : url + 1;
    const char *type = page_type(name);
    if (type == NULL) {
        return send_error(c, 404, "not_found", "no such page; start at /");
    }
    if (!public_file(name)) {
        const char *cookie = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "otter_session");
        ota_web_session_t s;
        if (cookie == NULL || ota_web_session_find(app->sessions, cookie, now_ms(), &s) != 0) {
            return send_text(c, 303, "text/plain; charset=utf-8", (char *)"log in first\n", 13,
                             NULL, 0, "/login.html");
        }
    }
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", app->o->static_dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return send_error(c, 404, "not_found", "no such page; start at /");
    }
    char *buf = NULL;
    size_t len = 0;
    if (fseek(f, 0, SEEK_END) == 0) {
        long sz = ftell(f);
        if (sz >= 0 && sz <= 4 * 1024 * 1024 && fseek(f, 0, SEEK_SET) == 0) {
            buf = malloc((size_t)sz + 1);
            if (buf != NULL) {
                len = fread(buf, 1, (size_t)sz, f);
            }
        }
    }
    fclose(f);
    if (buf == NULL) {
        return send_error(c, 500, "internal", "cannot read the page; check --static");
    }
    enum MHD_Result rc = send_text(c, 200, type, buf, len, NULL, 0, NULL);
    free(buf);
    return rc;
}

/* ------------------------------------------------------------- requests -- */

/* Whether text is an IPv4 or IPv6 address; its bytes (16) and family in *fam. */
static int ip_literal(const char *text, unsigned char out[16], int *fam)
{
    memset(out, 0, 16);
    if (inet_pton(AF_INET, text, out) == 1) {
        *fam = AF_INET;
        return 1;
    }
    if (inet_pton(AF_INET6, text, out) == 1) {
        *fam = AF_INET6;
        return 1;
    }
    return 0;
}

/* The kind of address otter-web listens on: 2 any (0.0.0.0, ::), 1 loopback, 0 another. */
static int bind_kind(const char *bind)
{
    unsigned char a[16], zero[16] = {0};
    int fam = 0;
    if (!ip_literal(bind, a, &fam)) {
        return 0;
    }
    if (memcmp(a, zero, fam == AF_INET ? 4 : 16) == 0) {
        return 2;
    }
    if (fam == AF_INET) {
        return a[0] == 127;
    }
    return memcmp(a, zero, 15) == 0 && a[15] == 1;
}

/* The port a connection came in on: the one listened on, known to each connection without
 * shared state (with --port 0 it is chosen by the system when listening starts). 0 if
 * unknown. */
static long local_port(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (ci == NULL || getsockname(ci->connect_fd, (struct sockaddr *)&ss, &len) != 0) {
        return 0;
    }
    if (ss.ss_family == AF_INET) {
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    if (ss.ss_family == AF_INET6) {
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return 0;
}

/*
 * Whether the Host header names this console (against DNS rebinding: a page of another
 * site whose name was made to point here sends that name): the address listened on (any
 * address when listening on all), "localhost" when listening on loopback or on all, or a
 * --public-host name; with the port listened on (or none for 80 / 443), or for a
 * --public-host without a port, any port (a proxy's).
 */
static int host_allowed(const char *host, const app_t *app, long listened)
{
    const options_t *o = app->o;
    char name[300];
    const char *port = NULL;
    if (host == NULL || host[0] == '\0' || strlen(host) >= sizeof name) {
        return 0;
    }
    if (host[0] == '[') {
        const char *end = strchr(host, ']');
        if (end == NULL || (end[1] != '\0' && end[1] != ':')) {
            return 0;
        }
        snprintf(name, sizeof name, "%.*s", (int)(end - host - 1), host + 1);
        port = end[1] == ':' ? end + 2 : NULL;
    } else {
        const char *colon = strchr(host, ':');
        if (colon != NULL && strchr(colon + 1, ':') != NULL) {
            return 0;
        }
        snprintf(name, sizeof name, "%.*s", colon ? (int)(colon - host) : (int)strlen(host), host);
        port = colon ? colon + 1 : NULL;
    }
    for (char *p = name; *p; p++) {
        if (*p >= 'A' && *p <= 'Z') {
            *p = (char)(*p - 'A' + 'a');
        }
    }
    long pnum = -1;
    if (port != NULL) {
        char *end;
        if (port[0] < '0' || port[0] > '9') {
            return 0;
        }
        pnum = strtol(port, &end, 10);
        if (*end != '\0' || pnum > 65535) {
            return 0;
        }
    }
    for (int i = 0; i < o->n_public_hosts; i++) {
        const char *h = o->public_hosts[i];
        size_t n = strlen(name);
        if (strncasecmp(h, name, n) == 0 &&
            (h[n] == '\0' || (h[n] == ':' && pnum >= 0 && strtol(h + n + 1, NULL, 10) == pnum))) {
            return 1;
        }
    }
    long dflt = o->tls ? 443 : 80;
    if (listened <= 0 || (pnum >= 0 ? pnum != listened : listened != dflt)) {
        return 0;
    }
    int kind = bind_kind(o->bind);
    if (strcmp(name, "localhost") == 0) {
        return kind != 0;
    }
    unsigned char a[16], b[16];
    int fa = 0, fb = 0;
    if (!ip_literal(name, a, &fa)) {
        return 0;
    }
    if (kind == 2) {
        return 1;
    }
    return ip_literal(o->bind, b, &fb) && fa == fb && memcmp(a, b, 16) == 0;
}

/* A state-changing request from another site's page is refused (with SameSite cookies
 * and the CSRF token this is a third wall). */
static int foreign_origin(struct MHD_Connection *c, int tls)
{
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (origin == NULL) {
        return 0;
    }
    char want[600];
    snprintf(want, sizeof want, "%s://%s", tls ? "https" : "http", host ? host : "");
    return strcmp(origin, want) != 0;
}

/* The request as the API sees it (client receives the address text). */
static void fill_request(struct MHD_Connection *c, const app_t *app, const char *method,
                         const char *url, const conn_state_t *st, char client[64],
                         ota_web_request_t *req)
{
    ota_httpd_client_address(c, client, 64);
    ota_web_request_t r = {
        .method = method,
        .path = url,
        .body = st->body,
        .body_len = st->len,
        .content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type"),
        .csrf = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-CSRF-Token"),
        .cookie = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "otter_session"),
        .client = client,
        .tls = app->o->tls,
        .data_dir = app->o->data_dir,
        .signing_key = app->o->signing_key,
        .sessions = app->sessions,
        .now_ms = now_ms(),
        .clock_ms = now_ms,
    };
    *req = r;
}

/* ------------------------------------------------------------ deadlines -- */

/*
 * Slow senders cannot hold the connection slots (128, 32 per address): a request must
 * arrive whole within OTA_WEB_REQUEST_DEADLINE_S of its connection's start or of the
 * previous answer on it (an admitted upload gets more, by its size), or the main thread
 * shuts its socket down; libmicrohttpd's thread for it then sees the end and closes it
 * (ota_httpd_deadlines.h). A request being answered (an event stream too) has no deadline.
 */

/* Sets the deadline of a connection's request (milliseconds from now, or
 * OTA_HTTPD_DEADLINE_NONE while it is answered); served: one more request was answered on it. */
static void set_deadline(struct MHD_Connection *c, app_t *app, long long in_ms, int served)
{
    ota_httpd_deadlines_set(app->deadlines, c, in_ms, served);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Removes a partial upload. */
static void drop_upload(conn_state_t *st)
{
    if (st->fd >= 0) {
        close(st->fd);
        st->fd = -1;
        unlink(st->part);
    }
}

/* The upload is whole: <id>.part becomes <id>.bin, and its reservation is given back. */
static int finish_upload(conn_state_t *st)
{
    if (st->upload < 0 || st->fd < 0) {
        return -1;
    }
    char done[4300];
    snprintf(done, sizeof done, "%.*s.bin", (int)(strlen(st->part) - 5), st->part);
    int rc = fsync(st->fd) == 0 ? 0 : -1;
    if (close(st->fd) != 0) {
        rc = -1;
    }
    st->fd = -1;
    if (rc != 0) {
        unlink(st->part);
        return -1;
    }
    /* The stored file and the reservation it replaces change places under one lock, so
     * an upload that follows this answer never sees both (nor neither). */
    app_t *app = st->app;
    if (app != NULL) {
        pthread_mutex_lock(&app->up_lock);
    }
    rc = rename(st->part, done);
    if (app != NULL) {
        app->up_active--;
        app->up_reserved -= st->up_room;
        st->app = NULL;
        pthread_mutex_unlock(&app->up_lock);
    }
    if (rc != 0) {
        unlink(st->part);
        return -1;
    }
    return 0;
}

/*
 * Sets room aside for one more upload, or refuses it (507 in *refusal): at most
 * OTA_WEB_UPLOADS_MAX stored or arriving, OTA_WEB_UPLOADS_BYTES_MAX bytes in all.
 * Uploads no job was made of within OTA_WEB_UPLOAD_TTL_S are removed first.
 */
static int reserve_upload(app_t *app, const char *dir, long long *room, ota_web_response_t *refusal)
{
    char path[4500], msg[300];
    int count = 0;
    long long bytes = 0;
    time_t now = time(NULL);
    pthread_mutex_lock(&app->up_lock);
    DIR *d = opendir(dir);
    const struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        struct stat sb;
        if (n <= 4 || strcmp(e->d_name + n - 4, ".bin") != 0) {
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &sb) != 0) {
            continue;
        }
        if (now - sb.st_mtime > OTA_WEB_UPLOAD_TTL_S) {
            unlink(path);
            continue;
        }
        count++;
        bytes += (long long)sb.st_size;
    }
    if (d != NULL) {
        closedir(d);
    }
    count += app->up_active;
    bytes += app->up_reserved;
    if (count >= OTA_WEB_UPLOADS_MAX || bytes >= OTA_WEB_UPLOADS_BYTES_MAX) {
        pthread_mutex_unlock(&app->up_lock);
        snprintf(msg, sizeof msg,
                 "%d uploads holding %lld MiB wait to become jobs (at most %d and %lld MiB); "
                 "create jobs from them, or wait: an upload unused for %d minutes is removed",
                 count, bytes / (1024 * 1024), OTA_WEB_UPLOADS_MAX,
                 OTA_WEB_UPLOADS_BYTES_MAX / (1024 * 1024), OTA_WEB_UPLOAD_TTL_S / 60);
        refusal->status = 507;
        refusal->body = ota_web_error_json("storage_full", msg);
        return -1;
    }
    *room = OTA_WEB_UPLOADS_BYTES_MAX - bytes;
    if (*room > OTA_WEB_UPLOAD_MAX) {
        *room = OTA_WEB_UPLOAD_MAX;
    }
    app->up_active++;
    app->up_reserved += *room;
    pthread_mutex_unlock(&app->up_lock);
    return 0;
}

/* Gives an upload's room back (once). */
static void release_upload(conn_state_t *st)
{
    if (st->app != NULL) {
        pthread_mutex_lock(&st->app->up_lock);
        st->app->up_active--;
        st->app->up_reserved -= st->up_room;
        pthread_mutex_unlock(&st->app->up_lock);
        st->app = NULL;
    }
}

/* Admits an upload before its body (session, CSRF, origin, role) and opens its file. */
static void start_upload(struct MHD_Connection *c, app_t *app, const char *method, const char *url,
                         conn_state_t *st)
{
    char client[64];
    ota_web_request_t req;
    fill_request(c, app, method, url, st, client, &req);
    st->upload = -1;
    if (foreign_origin(c, app->o->tls)) {
        st->refusal.status = 403;
        st->refusal.body =
            ota_web_error_json("csrf", "cross-site request refused; use the console's own pages");
        return;
    }
    if (!ota_web_api_admit(&req, &st->refusal)) {
        ota_httpd_log(OTA_HTTPD_INFO, "%s %s %d %s (%s)", method, url, st->refusal.status,
                      st->refusal.session.user[0] ? st->refusal.session.user : "-", client);
        return;
    }
    ota_web_response_free(&st->refusal);
    unsigned char r[OTA_WEB_UPLOAD_ID_LEN / 2];
    char dir[4200];
    if (ota_web_random(r, sizeof r) != 0 ||
        ota_web_upload_dir(app->o->data_dir, dir, sizeof dir) != 0) {
        st->refusal.status = 500;
        st->refusal.body = ota_web_error_json("internal", "cannot name the upload; try again");
        return;
    }
    for (size_t i = 0; i < sizeof r; i++) {
        snprintf(st->id + 2 * i, 3, "%02x", r[i]);
    }
    char web[4200];
    snprintf(web, sizeof web, "%s/web", app->o->data_dir);
    (void)mkdir(web, 0700);
    (void)mkdir(dir, 0700);
    if (reserve_upload(app, dir, &st->up_room, &st->refusal) != 0) {
        return;
    }
    st->app = app;
    snprintf(st->part, sizeof st->part, "%s/%s.part", dir, st->id);
    st->fd = open(st->part, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (st->fd < 0) {
        st->refusal.status = 500;
        st->refusal.body = ota_web_error_json(
            "internal", "cannot store the upload; check otter-web's data folder");
        return;
    }
    st->upload = 1;
}

/* An upload past its room: its part file and its room go now, before the answer, so that
 * an upload sent right after the answer finds them gone (not when the connection ends). */
static enum MHD_Result refuse_large_upload(struct MHD_Connection *c, conn_state_t *st)
{
    char msg[300];
    drop_upload(st);
    release_upload(st);
    if (st->too_large == 2) {
        return send_error(c, 500, "internal",
                          "cannot store the upload; check space in otter-web's data folder");
    }
    if (st->up_room < OTA_WEB_UPLOAD_MAX) {
        snprintf(msg, sizeof msg,
                 "the uploads waiting to become jobs leave room for %lld bytes; create "
                 "jobs from them, or upload a smaller file",
                 st->up_room);
        return send_error(c, 507, "storage_full", msg);
    }
    return send_error(c, 413, "too_large", "the firmware is over 16 MiB; upload a smaller file");
}

/*
 * The first call for a request (its headers are in, its body not yet read). Whatever can be
 * refused is refused now, answered at once without reading the body, and libmicrohttpd then
 * closes the connection: a refused request cannot keep a connection slot by sending a body
 * that never ends. Returns MHD_YES with *answered 0 to go on reading the body.
 */
static enum MHD_Result first_call(struct MHD_Connection *c, app_t *app, const char *url,
                                  const char *method, conn_state_t *st, int *answered)
{
    *answered = 1;
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (!host_allowed(host, app, local_port(c))) {
        /* Before anything else: a name that is not this console's is a rebinding page's
         * (or a mistake). */
        char client[64];
        ota_httpd_client_address(c, client, sizeof client);
        ota_httpd_log(OTA_HTTPD_INFO, "%s %s 421 - (%s) Host '%s' is not this console's", method,
                      url, client, host ? host : "");
        return send_error(c, 421, "misdirected",
                          "this Host is not a name of this console; use its address, or "
                          "start otter-web with --public-host NAME");
    }
    if (strncmp(url, "/api/", 5) != 0) {
        /* A page is answered at the final call: an answer queued at the first call ends
         * the connection (libmicrohttpd), and pages are fetched several on one. */
        *answered = 0;
        return MHD_YES;
    }
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    long long declared = cl != NULL ? strtoll(cl, NULL, 10) : -1;
    if (strcmp(method, "POST") == 0 && strcmp(url, "/api/v1/uploads") == 0) {
        start_upload(c, app, method, url, st);
        if (st->upload > 0 && declared > st->up_room) {
            st->too_large = 1;
            return refuse_large_upload(c, st);
        }
        if (st->upload < 0) {
            return send_text(c, (unsigned)st->refusal.status, "application/json", st->refusal.body,
                             st->refusal.body ? strlen(st->refusal.body) : 0, NULL, 0, NULL);
        }
        /* Admitted: its deadline grows with its size, at the slowest rate allowed. */
        long long size = declared >= 0 ? declared : OTA_WEB_UPLOAD_MAX;
        set_deadline(
            c, app, OTA_WEB_REQUEST_DEADLINE_S * 1000LL + size * 1000 / OTA_WEB_UPLOAD_MIN_RATE, 0);
        *answered = 0;
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        if (foreign_origin(c, app->o->tls)) {
            return send_error(c, 403, "csrf",
                              "cross-site request refused; use the console's own pages");
        }
        char client[64];
        ota_web_request_t req;
        ota_web_response_t refusal;
        fill_request(c, app, method, url, st, client, &req);
        if (!ota_web_api_admit(&req, &refusal)) {
            ota_httpd_log(OTA_HTTPD_INFO, "%s %s %d %s (%s)", method, url, refusal.status,
                          refusal.session.user[0] ? refusal.session.user : "-", client);
            enum MHD_Result rc = send_text(c, (unsigned)refusal.status, "application/json",
                                           refusal.body, refusal.body ? strlen(refusal.body) : 0,
                                           NULL, refusal.retry_after_s, NULL);
            ota_web_response_free(&refusal);
            return rc;
        }
        ota_web_response_free(&refusal);
        if (declared > OTA_WEB_BODY_MAX) {
            return send_error(c, 413, "too_large", "the request body is over 64 KiB; send less");
        }
    }
    /* The body, if any, must arrive within the deadline counted from the connection's start
     * or the previous answer (set then, kept here). */
    *answered = 0;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    app_t *app = cls;
    (void)version;
    conn_state_t *st = *con_cls;
    if (st == NULL) {
        st = calloc(1, sizeof *st);
        if (st == NULL) {
            return MHD_NO;
        }
        st->fd = -1;
        *con_cls = st;
        int answered = 0;
        enum MHD_Result r = first_call(c, app, url, method, st, &answered);
        if (answered) {
            set_deadline(c, app, OTA_HTTPD_DEADLINE_NONE, 0);
        }
        return r;
    }
    if (st->upload < 0) {
        /* Refused: answered at the first call (not reached). */
        return MHD_NO;
    }
    if (st->upload > 0 && *upload_size > 0) {
        if (!st->too_large && st->up_len + (long long)*upload_size <= st->up_room) {
            if (write_all(st->fd, upload, *upload_size) != 0) {
                st->too_large = 2;
            }
            st->up_len += (long long)*upload_size;
        } else if (!st->too_large) {
            st->too_large = 1;
        }
        if (st->too_large) {
            drop_upload(st);
            release_upload(st);
        }
        *upload_size = 0;
        /* Past its room (it declared no size, or less than it sends): closed at once, the
         * rest not read; an answer cannot be queued in the middle of a body. */
        return st->too_large == 1 ? MHD_NO : MHD_YES;
    }
    if (*upload_size > 0) {
        if (!st->too_large && st->len + *upload_size <= OTA_WEB_BODY_MAX) {
            char *nb = realloc(st->body, st->len + *upload_size + 1);
            if (nb == NULL) {
                st->too_large = 1;
            } else {
                st->body = nb;
                memcpy(st->body + st->len, upload, *upload_size);
                st->len += *upload_size;
                st->body[st->len] = '\0';
            }
        } else {
            st->too_large = 1;
        }
        *upload_size = 0;
        /* Over 64 KiB without saying so beforehand: closed at once, as above. */
        return st->too_large ? MHD_NO : MHD_YES;
    }
    /* The request is whole: no deadline while it is answered. */
    set_deadline(c, app, OTA_HTTPD_DEADLINE_NONE, 0);
    if (strncmp(url, "/api/", 5) != 0) {
        return send_page(c, app, url, method);
    }
    if (st->too_large && st->upload > 0) {
        return refuse_large_upload(c, st);
    }
    if (st->too_large) {
        return send_error(c, 413, "too_large", "the request body is over 64 KiB; send less");
    }
    if (strcmp(method, "GET") != 0 && foreign_origin(c, app->o->tls)) {
        return send_error(c, 403, "csrf",
                          "cross-site request refused; use the console's own pages");
    }
    char client[64];
    ota_web_request_t req;
    fill_request(c, app, method, url, st, client, &req);
    ota_web_response_t resp;
    if (st->upload != 0) {
        if (finish_upload(st) != 0) {
            return send_error(c, 500, "internal",
                              "cannot store the upload; check space in otter-web's data folder");
        }
        req.upload_id = st->id;
        req.upload_size = st->up_len;
    }
    ota_web_api_handle(&req, &resp);
    ota_httpd_log(resp.status >= 400 ? OTA_HTTPD_INFO : OTA_HTTPD_DEBUG, "%s %s %d %s (%s)", method,
                  url, resp.status, resp.session.user[0] ? resp.session.user : "-", client);
    enum MHD_Result rc;
    if (resp.event_job[0] != '\0') {
        rc = send_stream(c, app, &resp);
    } else {
        rc =
            send_text(c, (unsigned)resp.status, "application/json", resp.body,
                      resp.body ? strlen(resp.body) : 0, resp.set_cookie, resp.retry_after_s, NULL);
    }
    ota_web_response_free(&resp);
    return rc;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode code)
{
    (void)code;
    /* The next request on this connection has its deadline from now. */
    set_deadline(c, cls, OTA_WEB_REQUEST_DEADLINE_S * 1000LL, 1);
    conn_state_t *st = *con_cls;
    if (st != NULL) {
        drop_upload(st);
        release_upload(st);
        ota_web_response_free(&st->refusal);
        free(st->body);
        free(st);
        *con_cls = NULL;
    }
}

/* -------------------------------------------------------------- startup -- */

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: otter-web --data-dir DIR [options]\n"
            "\n"
            "The web console: the fleet, jobs and their live progress in a browser, and the\n"
            "HTTP API /api/v1 (docs/openapi.yaml), for the accounts 'otter user add' makes.\n"
            "\n"
            "Options:\n"
            "  --data-dir DIR    data folder (otter.db, web/users); required\n"
            "  --bind ADDR       IPv4 or IPv6 address to listen on (default 127.0.0.1)\n"
            "  --port N          port (default 8090, or 8444 with --tls; 0 = any free one)\n"
            "  --tls             HTTPS with DIR/broker/server.crt and server.key\n"
            "  --cert F --key F  HTTPS with this PEM certificate chain and key instead\n"
            "  --static DIR      the pages' folder (default %s)\n"
            "  --signing-key F   code-signing key (P-256 PEM, mode 0600, codesign.crt beside\n"
            "                    it) for firmware uploaded in the console (default\n"
            "                    DIR/web/codesign.key; without it, uploads cannot be signed)\n"
            "  --public-host H   a name (NAME or NAME:PORT) the console is reached by,\n"
            "                    beside its address (and localhost on loopback); requests\n"
            "                    with another Host are refused with 421; repeatable\n"
            "  --log-level L     error, warn, info (default) or debug\n"
            "  --routes          print the API's routes (method, path, role) and exit\n"
            "  -h, --help        this text\n"
            "\n"
            "Prints \"ready: <url>\" when it listens. SIGTERM or SIGINT: stop; exit 0.\n"
            "Exit status: 0 after a signal, 1 on a fatal error, 2 on a usage error.\n",
            OTTER_WEB_STATIC_DIR);
}

/* A --public-host: a name, or NAME:PORT with a port of 1-65535 in digits. */
static int public_host_valid(const char *v)
{
    if (v[0] == '\0' || v[0] == ':' || strlen(v) > 255 || strpbrk(v, " /[]@") != NULL) {
        return 0;
    }
    const char *colon = strchr(v, ':');
    if (colon == NULL) {
        return 1;
    }
    const char *p = colon + 1;
    size_t n = strspn(p, "0123456789");
    if (n == 0 || n > 5 || p[n] != '\0') {
        return 0;
    }
    long port = strtol(p, NULL, 10);
    return port >= 1 && port <= 65535;
}

static int parse_args(int argc, char **argv, options_t *o)
{
    memset(o, 0, sizeof *o);
    o->bind = "127.0.0.1";
    o->port = -1;
    o->log_level = OTA_HTTPD_INFO;
    o->static_dir = OTTER_WEB_STATIC_DIR;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--tls") == 0) {
            o->tls = 1;
        } else if (strcmp(a, "--routes") == 0) {
            o->routes = 1;
        } else if (v == NULL) {
            fprintf(stderr,
                    "otter-web: error: unknown option or missing value '%s'; see "
                    "otter-web --help\n",
                    a);
            return -1;
        } else if (strcmp(a, "--data-dir") == 0) {
            o->data_dir = argv[++i];
        } else if (strcmp(a, "--bind") == 0) {
            o->bind = argv[++i];
        } else if (strcmp(a, "--cert") == 0) {
            o->cert = argv[++i];
        } else if (strcmp(a, "--key") == 0) {
            o->key = argv[++i];
        } else if (strcmp(a, "--static") == 0) {
            o->static_dir = argv[++i];
        } else if (strcmp(a, "--public-host") == 0) {
            if (o->n_public_hosts == (int)(sizeof o->public_hosts / sizeof o->public_hosts[0]) ||
                !public_host_valid(v)) {
                fprintf(stderr,
                        "otter-web: error: bad --public-host '%s'; give a name or NAME:PORT "
                        "(PORT 1-65535), at most 16 times\n",
                        v);
                return -1;
            }
            o->public_hosts[o->n_public_hosts++] = argv[++i];
        } else if (strcmp(a, "--signing-key") == 0) {
            o->signing_key = argv[++i];
        } else if (strcmp(a, "--port") == 0) {
            char *end;
            errno = 0;
            o->port = strtol(argv[++i], &end, 10);
            if (errno || *end || end == argv[i] || o->port < 0 || o->port > 65535) {
                fprintf(stderr, "otter-web: error: bad --port '%s'; give 0-65535\n", argv[i]);
                return -1;
            }
        } else if (strcmp(a, "--log-level") == 0) {
            static const char *const names[] = {"error", "warn", "info", "debug"};
            o->log_level = -1;
            for (int k = 0; k < 4; k++) {
                if (strcmp(v, names[k]) == 0) {
                    o->log_level = k;
                }
            }
            i++;
            if (o->log_level < 0) {
                fprintf(stderr,
                        "otter-web: error: bad --log-level '%s'; give error, warn, info "
                        "or debug\n",
                        v);
                return -1;
            }
        } else {
            fprintf(stderr, "otter-web: error: unknown option '%s'; see otter-web --help\n", a);
            return -1;
        }
    }
    if ((o->cert == NULL) != (o->key == NULL)) {
        fprintf(stderr, "otter-web: error: --cert and --key go together; give both\n");
        return -1;
    }
    if (o->cert != NULL) {
        o->tls = 1;
    }
    if (o->data_dir == NULL && !o->routes) {
        fprintf(stderr, "otter-web: error: --data-dir is required; see otter-web --help\n");
        return -1;
    }
    if (o->port < 0) {
        o->port = o->tls ? 8444 : 8090;
    }
    return 0;
}

/* Uploads cut off by a stop (<id>.part) are of no use: removed at start. */
static void drop_partial_uploads(const char *data_dir)
{
    char dir[4200], path[4500];
    if (ota_web_upload_dir(data_dir, dir, sizeof dir) != 0) {
        return;
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        return;
    }
    const struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > 5 && strcmp(e->d_name + n - 5, ".part") == 0) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    }
    closedir(d);
}

/* The code-signing key: given and missing, or readable by others, is fatal; the default
 * one missing only turns signing off (said on the log). */
static int check_signing_key(options_t *o)
{
    int given = o->signing_key != NULL;
    if (!given) {
        snprintf(o->signing_key_buf, sizeof o->signing_key_buf, "%s/web/codesign.key", o->data_dir);
        o->signing_key = o->signing_key_buf;
    }
    struct stat ks;
    if (stat(o->signing_key, &ks) != 0) {
        if (given) {
            ota_httpd_log(OTA_HTTPD_ERROR,
                          "cannot read --signing-key %s (%s); make one with 'otter keygen --out "
                          "DIR' (codesign.crt stays beside it)",
                          o->signing_key, strerror(errno));
            return -1;
        }
        ota_httpd_log(OTA_HTTPD_INFO,
                      "signing: off (no code-signing key at %s; uploaded firmware cannot be "
                      "signed; see docs/WEB.md)",
                      o->signing_key);
        return 0;
    }
    if (!S_ISREG(ks.st_mode) || (ks.st_mode & 077) != 0) {
        ota_httpd_log(OTA_HTTPD_ERROR,
                      "the code-signing key %s is not a file readable by its owner alone; chmod "
                      "600 it",
                      o->signing_key);
        return -1;
    }
    ota_httpd_log(OTA_HTTPD_INFO, "signing: on with %s", o->signing_key);
    return 0;
}

static struct MHD_Daemon *start_daemon(const options_t *o, app_t *app, char *cert, char *key)
{
    struct sockaddr_storage ss;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_ERROR_LOG | MHD_USE_POLL;
    int v6 = 0;
    if (ota_httpd_address(o->bind, (int)o->port, &ss, &v6) != 0) {
        ota_httpd_log(OTA_HTTPD_ERROR, "bad --bind address '%s'", o->bind);
        return NULL;
    }
    if (v6) {
        flags |= MHD_USE_IPv6;
    }
    if (o->tls) {
        flags |= MHD_USE_TLS;
    }
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_CONNECTION_LIMIT, 128, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, 32, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, 60, NULL},
        {MHD_OPTION_SOCK_ADDR, 0, &ss},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, app},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)ota_httpd_deadlines_notify, app->deadlines},
        {MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)ota_httpd_unescape, NULL},
        {o->tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, cert},
        {o->tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, key},
        {MHD_OPTION_END, 0, NULL},
    };
    struct MHD_Daemon *d = MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, on_request, app,
                                            MHD_OPTION_EXTERNAL_LOGGER, ota_httpd_mhd_log, NULL,
                                            MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (d == NULL) {
        ota_httpd_log(OTA_HTTPD_ERROR, "cannot listen on %s port %ld (in use, or a bad address%s)",
                      o->bind, o->port, o->tls ? ", or the certificate and key do not fit" : "");
    }
    return d;
}

int main(int argc, char **argv)
{
    options_t o;
    if (parse_args(argc, argv, &o) != 0) {
        return 2;
    }
    if (o.routes) {
        size_t n;
        const ota_web_route_t *r = ota_web_api_routes(&n);
        for (size_t i = 0; i < n; i++) {
            printf("%s %s %s\n", r[i].method, r[i].pattern, ota_web_role_name(r[i].role));
        }
        return 0;
    }
    ota_httpd_log_setup("otter-web", o.log_level);
    g_tls = o.tls;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    char db[4200];
    snprintf(db, sizeof db, "%s/otter.db", o.data_dir);
    if (access(db, R_OK) != 0) {
        ota_httpd_log(OTA_HTTPD_ERROR, "no store in %s; create one with 'otter broker init'",
                      o.data_dir);
        return 1;
    }
    if (check_signing_key(&o) != 0) {
        return 1;
    }
    drop_partial_uploads(o.data_dir);
    char probe[4400];
    snprintf(probe, sizeof probe, "%s/login.html", o.static_dir);
    if (access(probe, R_OK) != 0) {
        ota_httpd_log(OTA_HTTPD_ERROR,
                      "no pages in %s; give --static with the repository's web/static",
                      o.static_dir);
        return 1;
    }
    char *cert = NULL, *key = NULL;
    if (o.tls) {
        char cpath[4200], kpath[4200];
        snprintf(cpath, sizeof cpath, "%s", o.cert ? o.cert : "");
        snprintf(kpath, sizeof kpath, "%s", o.key ? o.key : "");
        if (o.cert == NULL) {
            snprintf(cpath, sizeof cpath, "%s/broker/server.crt", o.data_dir);
            snprintf(kpath, sizeof kpath, "%s/broker/server.key", o.data_dir);
        }
        cert = ota_httpd_read_text(cpath);
        key = ota_httpd_read_text(kpath);
        if (cert == NULL || key == NULL) {
            ota_httpd_log(OTA_HTTPD_ERROR,
                          "cannot read %s or %s; make them with 'otter broker init --tls' or give "
                          "--cert and --key",
                          cpath, kpath);
            free(cert);
            free(key);
            return 1;
        }
    }
    app_t app = {.o = &o, .sessions = ota_web_sessions_new()};
    pthread_mutex_init(&app.up_lock, NULL);
    app.deadlines = ota_httpd_deadlines_new(OTA_WEB_REQUEST_DEADLINE_S * 1000LL, 1);
    int status = 1;
    struct MHD_Daemon *d = app.sessions && app.deadlines ? start_daemon(&o, &app, cert, key) : NULL;
    if (d != NULL) {
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
        int v6 = strchr(o.bind, ':') != NULL;
        ota_httpd_log(OTA_HTTPD_INFO, "ready: %s://%s%s%s:%u/ (data %s)", o.tls ? "https" : "http",
                      v6 ? "[" : "", o.bind, v6 ? "]" : "",
                      info != NULL ? info->port : (unsigned)o.port, o.data_dir);
        while (!g_stop) {
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
            (void)ota_httpd_deadlines_cut(app.deadlines);
        }
        MHD_stop_daemon(d);
        status = 0;
    }
    ota_web_sessions_free(app.sessions);
    ota_httpd_deadlines_free(app.deadlines);
    free(cert);
    free(key);
    ota_httpd_log(OTA_HTTPD_INFO, "stopped");
    return status;
}
