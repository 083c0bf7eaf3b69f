/*
 * otter HTTP data plane: the file handler. See ota_http_files.h.
 */
#define _POSIX_C_SOURCE 200809L
#include "ota_http_files.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Budgets forget idle things this often. */
#define BUDGET_TICK_MS 5000
/* Entries of the (job, file id) -> file cache (direct-mapped). */
#define CACHE_SLOTS 256

/* What never changes once a job exists: its stream and the stored file a
 * file id names. Only the thing's permission is asked of the store per request. */
typedef struct resolved {
    int used;
    int64_t file_id;
    char job[OTA_STORE_JOB_ID_MAX + 1];
    char stream_id[OTA_STORE_STREAM_ID_MAX + 1];
    char path[4096];
    uint64_t size;
} resolved_t;

struct ota_http_files {
    ota_store_t *store;
    const ota_svc_presign_t *signer;
    ota_svc_budget_t *budget;
    ota_http_log_fn log;
    void *log_ctx;
    int64_t next_tick_ms;
    ota_http_files_stats_t stats;
    resolved_t cache[CACHE_SLOTS];
};

ota_http_files_t *ota_http_files_create(ota_store_t *store, const ota_svc_presign_t *signer,
                                        ota_svc_budget_t *budget)
{
    if (store == NULL || signer == NULL) {
        return NULL;
    }
    ota_http_files_t *h = calloc(1, sizeof *h);
    if (h != NULL) {
        h->store = store;
        h->signer = signer;
        h->budget = budget;
    }
    return h;
}

void ota_http_files_destroy(ota_http_files_t *h)
{
    free(h);
}

void ota_http_files_set_log(ota_http_files_t *h, ota_http_log_fn log, void *ctx)
{
    h->log = log;
    h->log_ctx = ctx;
}

void ota_http_files_get_stats(const ota_http_files_t *h, ota_http_files_stats_t *out)
{
    *out = h->stats;
}

__attribute__((format(printf, 3, 4))) static void logf_(ota_http_files_t *h, int level,
                                                        const char *fmt, ...)
{
    if (h->log == NULL) {
        return;
    }
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    h->log(h->log_ctx, level, line);
}

/* ------------------------------------------------------------- answers -- */

/* Queues a short text answer; extra header name/value or NULL. */
static enum MHD_Result answer_text(struct MHD_Connection *c, unsigned status, const char *text,
                                   const char *hname, const char *hvalue)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (r == NULL) {
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    if (hname != NULL) {
        MHD_add_response_header(r, hname, hvalue);
    }
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

/* ---------------------------------------------------------------- range -- */

enum { RANGE_NONE, RANGE_OK, RANGE_BAD };

/* Parses a decimal of at most 19 digits. */
static int parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 19) {
        return -1;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* One byte range of a file of `size` bytes: [*first, *last]. */
static int parse_range(const char *hdr, uint64_t size, uint64_t *first, uint64_t *last)
{
    static const char unit[] = "bytes=";
    if (hdr == NULL) {
        return RANGE_NONE;
    }
    if (strncmp(hdr, unit, sizeof unit - 1) != 0) {
        return RANGE_BAD;
    }
    const char *s = hdr + sizeof unit - 1;
    size_t len = strlen(s);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) {
        len--;
    }
    const char *dash = memchr(s, '-', len);
    if (dash == NULL || memchr(s, ',', len) != NULL) {
        return RANGE_BAD; /* one range per request */
    }
    size_t a_len = (size_t)(dash - s), b_len = len - a_len - 1;
    uint64_t a = 0, b = 0;
    if (a_len == 0) { /* suffix: the last b bytes */
        if (parse_u64(dash + 1, b_len, &b) != 0 || b == 0) {
            return RANGE_BAD;
        }
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return RANGE_OK;
    }
    if (parse_u64(s, a_len, &a) != 0 || a >= size) {
        return RANGE_BAD;
    }
    if (b_len == 0) {
        b = size - 1;
    } else if (parse_u64(dash + 1, b_len, &b) != 0 || b < a) {
        return RANGE_BAD;
    }
    *first = a;
    *last = b >= size ? size - 1 : b;
    return RANGE_OK;
}

/* --------------------------------------------------------------- lookup -- */

typedef struct target {
    char path[4096];
    uint64_t size;
} target_t;

static resolved_t *slot(ota_http_files_t *h, const char *job, int64_t file_id)
{
    uint32_t x = 2166136261u ^ (uint32_t)file_id;
    for (const char *p = job; *p != '\0'; p++) {
        x = (x ^ (uint8_t)*p) * 16777619u;
    }
    return &h->cache[x % CACHE_SLOTS];
}

/* The job's stream and the stored file `file_id` if it is a file of that
 * stream: 1 found, 0 not, -1 store failure. Cached: jobs, streams and stored
 * files never change. */
static int resolve(ota_http_files_t *h, const char *job, int64_t file_id, resolved_t **out)
{
    resolved_t *r = slot(h, job, file_id);
    if (r->used && r->file_id == file_id && strcmp(r->job, job) == 0) {
        *out = r;
        return 1;
    }
    ota_store_job_t j;
    int rc = ota_store_job_get(h->store, job, &j);
    if (rc != OTA_STORE_OK) {
        ota_store_job_free(&j);
        return rc == OTA_STORE_NOT_FOUND ? 0 : -1;
    }
    char stream_id[OTA_STORE_STREAM_ID_MAX + 1];
    memcpy(stream_id, j.stream_id, sizeof stream_id);
    ota_store_job_free(&j);
    if (stream_id[0] == '\0') {
        return 0;
    }
    ota_store_file_t f;
    rc = ota_store_file_get(h->store, file_id, &f);
    if (rc != OTA_STORE_OK) {
        return rc == OTA_STORE_NOT_FOUND ? 0 : -1;
    }
    ota_store_stream_t s;
    rc = ota_store_stream_get(h->store, stream_id, &s);
    if (rc != OTA_STORE_OK) {
        ota_store_stream_free(&s);
        return rc == OTA_STORE_NOT_FOUND ? 0 : -1;
    }
    int found = 0;
    for (size_t i = 0; i < s.n_files && !found; i++) {
        found = strcmp(s.files[i].path, f.path) == 0;
    }
    ota_store_stream_free(&s);
    if (found) {
        r->used = 1;
        r->file_id = file_id;
        snprintf(r->job, sizeof r->job, "%s", job);
        memcpy(r->stream_id, stream_id, sizeof r->stream_id);
        memcpy(r->path, f.path, sizeof r->path);
        r->size = f.size;
        *out = r;
    }
    return found;
}

/* The stored file `file_id` of job `job` for `thing`: 1 found, 0 not for
 * this thing (or no such job or file), 2 the URL (issued at issued_s, as signed
 * in it) was issued before the thing's credentials were rotated, -1 store failure. */
static int find_file(ota_http_files_t *h, const char *thing, const char *job, int64_t file_id,
                     int64_t issued_s, target_t *out)
{
    resolved_t *r = NULL;
    int rc = resolve(h, job, file_id, &r);
    if (rc <= 0) {
        return rc;
    }
    /* Asked every time: a canceled job or a removed thing stops at once. */
    int may = ota_store_thing_may_read_stream(h->store, thing, r->stream_id);
    if (may <= 0) {
        return may;
    }
    /* 'otter thing rotate' notes when (ms). URLs issued in an earlier second went to whoever
     * held the old credentials. */
    char rotated[OTA_STORE_ATTR_VALUE_MAX + 1];
    rc = ota_store_thing_attr_get(h->store, thing, OTA_STORE_ATTR_CREDENTIALS_ROTATED, rotated,
                                  sizeof rotated);
    if (rc == OTA_STORE_OK && issued_s < strtoll(rotated, NULL, 10) / 1000) {
        return 2;
    }
    if (rc != OTA_STORE_OK && rc != OTA_STORE_NOT_FOUND) {
        return -1;
    }
    memcpy(out->path, r->path, sizeof out->path);
    out->size = r->size;
    return 1;
}

/* ---------------------------------------------------------------- serve -- */

static enum MHD_Result serve(ota_http_files_t *h, struct MHD_Connection *c, const char *thing,
                             int64_t file_id, const target_t *t, int head, int64_t now_ms)
{
    char etag[64];
    snprintf(etag, sizeof etag, "\"otter-%" PRId64 "-%" PRIu64 "\"", file_id, t->size);
    uint64_t first = 0, last = t->size - 1;
    const char *range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_RANGE);
    const char *if_range =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_RANGE);
    if (range != NULL && if_range != NULL && strcmp(if_range, etag) != 0) {
        range = NULL; /* the device holds another version: the whole file */
    }
    int kind = parse_range(range, t->size, &first, &last);
    if (kind == RANGE_BAD) {
        char cr[48];
        snprintf(cr, sizeof cr, "bytes */%" PRIu64, t->size);
        h->stats.bad_range++;
        logf_(h, 3, "http: %s file %" PRId64 ": range '%s' refused (size %" PRIu64 ")", thing,
              file_id, range, t->size);
        return answer_text(c, MHD_HTTP_RANGE_NOT_SATISFIABLE,
                           "416 one range per request, starting inside the file\n",
                           MHD_HTTP_HEADER_CONTENT_RANGE, cr);
    }
    uint64_t len = last - first + 1;
    if (!head && !ota_svc_budget_bytes(h->budget, thing, len, now_ms)) {
        h->stats.throttled++;
        return answer_text(c, MHD_HTTP_TOO_MANY_REQUESTS,
                           "429 byte budget exhausted; retry later\n", MHD_HTTP_HEADER_RETRY_AFTER,
                           "1");
    }
    int fd = open(t->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != t->size) {
        logf_(h, 0, "http: stored file %s cannot be served: %s", t->path,
              fd < 0 ? strerror(errno) : "size differs from the store's record");
        if (fd >= 0) {
            close(fd);
        }
        h->stats.failed++;
        return answer_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "500 stored file unreadable\n", NULL,
                           NULL);
    }
    struct MHD_Response *r = MHD_create_response_from_fd_at_offset64(len, fd, first);
    if (r == NULL) {
        close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
    MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "private, no-transform");
    unsigned status = MHD_HTTP_OK;
    if (kind == RANGE_OK) {
        char cr[80];
        snprintf(cr, sizeof cr, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, last, t->size);
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
        status = MHD_HTTP_PARTIAL_CONTENT;
    }
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    if (rc == MHD_YES) {
        h->stats.served++;
        h->stats.bytes += head ? 0 : len;
    }
    return rc;
}

enum MHD_Result ota_http_files_handle(ota_http_files_t *h, struct MHD_Connection *c,
                                      const char *url, const char *method, int64_t now_ms,
                                      int64_t now_s)
{
    h->stats.requests++;
    if (now_ms >= h->next_tick_ms) {
        ota_svc_budget_tick(h->budget, now_ms);
        h->next_tick_ms = now_ms + BUDGET_TICK_MS;
    }
    int head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (!head && strcmp(method, MHD_HTTP_METHOD_GET) != 0) {
        h->stats.bad_method++;
        return answer_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "405 only GET and HEAD\n",
                           MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    }
    const char *thing = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "thing");
    const char *job = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "job");
    const char *expires = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "expires");
    const char *issued = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "issued");
    const char *sig = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "signature");
    int64_t issued_s = 0;
    int v =
        ota_svc_presign_verify(h->signer, url, thing, job, expires, issued, sig, now_s, &issued_s);
    if (v == OTA_SVC_PRESIGN_BAD) {
        h->stats.bad_signature++;
        logf_(h, 3, "http: %s: bad signature", url);
        return answer_text(c, MHD_HTTP_FORBIDDEN, "403 signature does not match\n", NULL, NULL);
    }
    if (v == OTA_SVC_PRESIGN_EXPIRED) {
        h->stats.expired++;
        logf_(h, 3, "http: %s job %s: URL expired at %s", thing, job, expires);
        return answer_text(c, MHD_HTTP_FORBIDDEN,
                           "403 URL expired; ask for the job document again\n", NULL, NULL);
    }
    /* From here the thing is authenticated: charge its budget. */
    if (!ota_svc_budget_request(h->budget, thing, now_ms)) {
        h->stats.throttled++;
        return answer_text(c, MHD_HTTP_TOO_MANY_REQUESTS,
                           "429 request budget exhausted; retry later\n",
                           MHD_HTTP_HEADER_RETRY_AFTER, "1");
    }
    int64_t file_id = strtoll(url + strlen(OTA_HTTP_FILES_PREFIX), NULL, 10);
    target_t t;
    int found = find_file(h, thing, job, file_id, issued_s, &t);
    if (found < 0) {
        h->stats.failed++;
        logf_(h, 0, "http: store lookup for %s job %s: %s", thing, job, ota_store_errmsg(h->store));
        return answer_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "500 store unavailable\n", NULL,
                           NULL);
    }
    if (found == 2) {
        h->stats.expired++;
        logf_(h, 3, "http: %s job %s: URL issued before the thing's credentials were rotated",
              thing, job);
        return answer_text(c, MHD_HTTP_FORBIDDEN,
                           "403 URL issued before this thing's credentials were rotated; ask for "
                           "the job document again\n",
                           NULL, NULL);
    }
    if (found == 0) {
        h->stats.not_found++;
        logf_(h, 3, "http: %s job %s file %" PRId64 ": not a file of this thing's job", thing, job,
              file_id);
        return answer_text(c, MHD_HTTP_NOT_FOUND, "404 no such file for this thing and job\n", NULL,
                           NULL);
    }
    return serve(h, c, thing, file_id, &t, head, now_ms);
}
