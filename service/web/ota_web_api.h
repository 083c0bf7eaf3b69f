/*
 * otter web console: the HTTP API /api/v1 (docs/openapi.yaml), over the same
 * store and job rules as the CLI. Independent of the HTTP library: otter-web
 * hands each request over as an ota_web_request_t and sends the answer.
 *
 * Every route but login (POST /api/v1/session) needs a session; every
 * request that changes something (any method but GET) needs the session's
 * CSRF token in the X-CSRF-Token header; creating and canceling jobs,
 * uploading firmware and editing groups and thing attributes need the
 * operator role. Errors are JSON {"code": "...", "message": "<what went
 * wrong>; <what to do>"}.
 */
#ifndef OTA_WEB_API_H
#define OTA_WEB_API_H

#include <stddef.h>

#include "ota_store.h"
#include "ota_web_sessions.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Largest request body accepted (bytes). */
#define OTA_WEB_BODY_MAX (64 * 1024)
/** Largest firmware upload (POST /api/v1/uploads), streamed to disk. */
#define OTA_WEB_UPLOAD_MAX (16 * 1024 * 1024)
/** Uploads stored at once (waiting to become a job, or arriving) at most. */
#define OTA_WEB_UPLOADS_MAX 8
/** Bytes all stored uploads (waiting and arriving) hold at most. */
#define OTA_WEB_UPLOADS_BYTES_MAX (64LL * 1024 * 1024)
/** An upload no job was made of within this many seconds is removed. */
#define OTA_WEB_UPLOAD_TTL_S 3600
/** A request must arrive whole (headers and body) within this many seconds of its
 *  connection's start or of the previous answer on it; otter-web then closes it. */
#define OTA_WEB_REQUEST_DEADLINE_S 20
/** An admitted upload gets beyond that one second for every this many bytes it declares
 *  (Content-Length), or for OTA_WEB_UPLOAD_MAX when it declares none: its slowest rate. */
#define OTA_WEB_UPLOAD_MIN_RATE (32 * 1024)
/** An upload's id: 32 hex digits. */
#define OTA_WEB_UPLOAD_ID_LEN 32

/** One request, as otter-web received it. */
typedef struct ota_web_request {
    const char *method; /**< "GET", "POST", ... */
    const char *path;   /**< decoded path, e.g. "/api/v1/jobs/j1" */
    const char *body;   /**< request body (NUL-terminated), or NULL */
    size_t body_len;
    const char *content_type; /**< Content-Type header, or NULL */
    const char *csrf;         /**< X-CSRF-Token header, or NULL */
    const char *cookie;       /**< the session cookie's value, or NULL */
    const char *client;       /**< client address text (throttling key) */
    int tls;                  /**< 1 when served over HTTPS (Secure cookies) */
    const char *data_dir;
    /** The code-signing key (PEM) for uploaded firmware; its certificate is beside it as
     *  codesign.crt. Never served. */
    const char *signing_key;
    /** POST /api/v1/uploads: the stored upload's id (otter-web streamed the body to
     *  DATA/web/uploads/<id>.bin) and size, or NULL. */
    const char *upload_id;
    long long upload_size;
    ota_web_sessions_t *sessions;
    long long now_ms;
    /** The clock now_ms came from, read again after slow work (a password check takes
     *  long enough for a throttling wait to pass), or NULL to keep now_ms. */
    long long (*clock_ms)(void);
} ota_web_request_t;

/** The answer. Free with ota_web_response_free(). */
typedef struct ota_web_response {
    int status;             /**< HTTP status */
    char *body;             /**< JSON text (heap) */
    char set_cookie[256];   /**< Set-Cookie value, or "" */
    unsigned retry_after_s; /**< Retry-After header when nonzero */
    /** For GET /api/v1/jobs/{id}/events: the job to stream (status 200, body
     *  NULL); otter-web then calls ota_web_job_event() for each event. */
    char event_job[80];
    ota_web_session_t session; /**< the request's session (role NONE if none) */
} ota_web_response_t;

/** One route of the API. */
typedef struct ota_web_route {
    const char *method;
    const char *pattern; /**< "{}" stands for one path segment */
    ota_web_role_t role; /**< least role; OTA_WEB_ROLE_NONE = open (login only) */
} ota_web_route_t;

/**
 * The route table (for `otter-web --routes` and the tests that walk it).
 * @param n receives the number of routes.
 */
const ota_web_route_t *ota_web_api_routes(size_t *n);

/**
 * Answers one request under /api/. Never fails: every problem is an answer.
 */
void ota_web_api_handle(const ota_web_request_t *req, ota_web_response_t *resp);

/**
 * The checks every request passes before its body is read (session, route, media type,
 * CSRF token, role): lets otter-web refuse an upload before storing a byte of it.
 * @return 1 when admitted; 0 with the refusal in resp (free with ota_web_response_free()).
 */
int ota_web_api_admit(const ota_web_request_t *req, ota_web_response_t *resp);

/** The folder of uploads in the data folder, into out. @return 0, or -1 if too long. */
int ota_web_upload_dir(const char *data_dir, char *out, size_t cap);

/** Releases the response's body. */
void ota_web_response_free(ota_web_response_t *resp);

/**
 * The event a job's stream sends: the job with its executions as JSON (the
 * body of GET /api/v1/jobs/{id}), NUL-terminated, heap.
 * @param store an open store (each stream keeps its own).
 * @param done  receives 1 when the job has ended (the last event).
 * @return the text, or NULL when the job is gone or on a store failure.
 */
char *ota_web_job_event(ota_store_t *store, const char *job_id, int *done);

/**
 * JSON error text {"code": code, "message": message} (heap).
 */
char *ota_web_error_json(const char *code, const char *message);

#ifdef __cplusplus
}
#endif

#endif /* OTA_WEB_API_H */
