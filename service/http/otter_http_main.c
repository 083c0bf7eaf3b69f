/*
 * otter-http: the HTTP data plane daemon. Serves the store's firmware files
 * to devices by presigned URL (see ota_http_files.h) over HTTP/1.1, or HTTPS
 * with the fleet's server certificate, with libmicrohttpd.
 *
 * One polling thread of libmicrohttpd answers every connection (keep-alive,
 * pipelined requests, sendfile for plain HTTP); the main thread only waits
 * for SIGTERM or SIGINT, then stops the daemon and logs the counters.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "ota_httpd.h"
#include "ota_httpd_deadlines.h"
#include "ota_http_files.h"
#include "ota_store.h"
#include "ota_svc_budget.h"
#include "ota_svc_presign.h"

typedef struct options {
    const char *data_dir;
    const char *bind;
    int port;
    int tls;
    const char *cert;
    const char *key;
    int log_level;
    unsigned max_connections;
    unsigned max_per_address;
    unsigned timeout_s;
    unsigned header_timeout_s;
} options_t;

/* Connections one address may hold by default: a site of that many devices behind one NAT
 * downloading at once; a quarter of the default --max-connections would let four addresses
 * hold everything. */
#define DEFAULT_MAX_PER_ADDRESS 100u
/* Seconds a request's headers may take to arrive whole, from the connection's start or the
 * end of its previous answer (Apache's mod_reqtimeout waits 20 s for headers too). */
#define DEFAULT_HEADER_TIMEOUT_S 20u

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void module_log(void *ctx, int level, const char *line)
{
    (void)ctx;
    ota_httpd_log(level, "%s", line);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ----------------------------------------------------------------- CLI -- */

static void usage(FILE *f)
{
    fprintf(f, "Usage: otter-http --data-dir DIR [options]\n"
               "\n"
               "Serves the data folder's firmware files to devices over HTTP/1.1 range\n"
               "requests, by the presigned URLs that otter-service --http-url puts into job\n"
               "documents (GET and HEAD /files/<id>?thing=&job=&expires=&issued=&signature=).\n"
               "\n"
               "Options:\n"
               "  --data-dir DIR       data folder (otter.db, files/, http/url-signing.key);\n"
               "                       required\n"
               "  --bind ADDR          IPv4 or IPv6 address to listen on (default 127.0.0.1)\n"
               "  --port N             port (default 8080, or 8443 with --tls)\n"
               "  --tls                HTTPS with the certificate 'otter broker init --tls' made\n"
               "                       (DIR/broker/server.crt and server.key)\n"
               "  --cert F --key F     HTTPS with this PEM certificate chain and key instead\n"
               "  --max-connections N  open connections at most (default 1000)\n"
               "  --max-per-address N  open connections from one client address at most\n"
               "                       (default 100: a site of 100 devices behind one NAT\n"
               "                       downloading at once; raise it for larger sites)\n"
               "  --timeout S          close a connection idle for S seconds (default 60)\n"
               "  --header-timeout S   close a connection whose request headers have not\n"
               "                       arrived whole S seconds after it opened or after its\n"
               "                       previous answer, however fast bytes drip (default 20)\n"
               "  --log-level L        error, warn, info (default) or debug (every refusal)\n"
               "  -h, --help           this text\n"
               "\n"
               "Answers: 200/206 the file or range; 403 bad or expired signature; 404 not a\n"
               "file of that thing's job; 405 not GET or HEAD; 416 not one range inside the\n"
               "file; 429 over the thing's request or byte budget (Retry-After: 1).\n"
               "SIGTERM or SIGINT: stop and log a \"stats:\" line; exit 0.\n"
               "Exit status: 0 after a signal, 1 on a fatal error (also when a newer otter\n"
               "migrated the store while it ran: checked every 5 s), 2 on a usage error.\n");
}

static int parse_uint(const char *s, unsigned long lo, unsigned long hi, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < lo || v > hi) {
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, options_t *o)
{
    memset(o, 0, sizeof *o);
    o->bind = "127.0.0.1";
    o->port = -1;
    o->log_level = OTA_HTTPD_INFO;
    o->max_connections = 1000;
    o->max_per_address = DEFAULT_MAX_PER_ADDRESS;
    o->timeout_s = 60;
    o->header_timeout_s = DEFAULT_HEADER_TIMEOUT_S;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(a, "--tls") == 0) {
            o->tls = 1;
            continue;
        }
        const char *v = i + 1 < argc ? argv[++i] : NULL;
        unsigned long n;
        if (v == NULL) {
            fprintf(stderr, "otter-http: %s needs a value (see --help)\n", a);
            return -1;
        }
        if (strcmp(a, "--data-dir") == 0) {
            o->data_dir = v;
        } else if (strcmp(a, "--bind") == 0) {
            o->bind = v;
        } else if (strcmp(a, "--port") == 0) {
            if (parse_uint(v, 1, 65535, &n) != 0) {
                fprintf(stderr, "otter-http: bad port '%s'; give 1-65535\n", v);
                return -1;
            }
            o->port = (int)n;
        } else if (strcmp(a, "--cert") == 0) {
            o->cert = v;
        } else if (strcmp(a, "--key") == 0) {
            o->key = v;
        } else if (strcmp(a, "--max-connections") == 0) {
            if (parse_uint(v, 1, 100000, &n) != 0) {
                fprintf(stderr, "otter-http: bad --max-connections '%s'; give 1-100000\n", v);
                return -1;
            }
            o->max_connections = (unsigned)n;
        } else if (strcmp(a, "--max-per-address") == 0) {
            if (parse_uint(v, 1, 100000, &n) != 0) {
                fprintf(stderr, "otter-http: bad --max-per-address '%s'; give 1-100000\n", v);
                return -1;
            }
            o->max_per_address = (unsigned)n;
        } else if (strcmp(a, "--timeout") == 0) {
            if (parse_uint(v, 1, 3600, &n) != 0) {
                fprintf(stderr, "otter-http: bad --timeout '%s'; give 1-3600 seconds\n", v);
                return -1;
            }
            o->timeout_s = (unsigned)n;
        } else if (strcmp(a, "--header-timeout") == 0) {
            if (parse_uint(v, 1, 3600, &n) != 0) {
                fprintf(stderr, "otter-http: bad --header-timeout '%s'; give 1-3600 seconds\n", v);
                return -1;
            }
            o->header_timeout_s = (unsigned)n;
        } else if (strcmp(a, "--log-level") == 0) {
            static const char *const names[] = {"error", "warn", "info", "debug"};
            o->log_level = -1;
            for (int k = 0; k < 4; k++) {
                if (strcmp(v, names[k]) == 0) {
                    o->log_level = k;
                }
            }
            if (o->log_level < 0) {
                fprintf(stderr, "otter-http: log level must be error, warn, info or debug\n");
                return -1;
            }
        } else {
            fprintf(stderr, "otter-http: unknown option %s (see --help)\n", a);
            return -1;
        }
    }
    if (o->data_dir == NULL) {
        fprintf(stderr, "otter-http: --data-dir is required (see --help)\n");
        return -1;
    }
    if ((o->cert == NULL) != (o->key == NULL)) {
        fprintf(stderr, "otter-http: --cert and --key go together\n");
        return -1;
    }
    if (o->cert != NULL && o->tls) {
        fprintf(stderr, "otter-http: give --tls or --cert/--key, not both\n");
        return -1;
    }
    o->tls = o->tls || o->cert != NULL;
    if (o->port < 0) {
        o->port = o->tls ? 8443 : 8080;
    }
    return 0;
}

/* ------------------------------------------------------------- daemon -- */

/*
 * The header deadline. libmicrohttpd's --timeout counts from the last byte received, so a
 * client sending one byte of a never-ending header every few seconds holds its connection
 * for ever. Every connection is noted when it opens (ota_httpd_deadlines.h); its clock
 * restarts when an answer completes and stops while a request is being answered. The main
 * thread looks once a second and shuts down the sockets of connections whose clock passed
 * the deadline, which the polling thread then sees closed and cleans up.
 */
typedef struct app {
    ota_http_files_t *files;
    ota_httpd_deadlines_t *deadlines;
    long long header_timeout_ms;
    uint64_t late_headers; /* connections closed by the deadline */
} app_t;

static void on_completed(void *cls, struct MHD_Connection *c, void **state,
                         enum MHD_RequestTerminationCode toe)
{
    app_t *app = cls;
    (void)state;
    (void)toe;
    ota_httpd_deadlines_set(app->deadlines, c, app->header_timeout_ms, 1);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **state)
{
    static int first_call_seen;
    app_t *app = cls;
    (void)version;
    (void)upload_data;
    if (*state == NULL) {
        /* Headers only: answering now would make libmicrohttpd close the
         * connection after the answer. Answer on the next call. */
        *state = &first_call_seen;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        /* No handler takes a body: skip it. The deadline still runs, so a body sent a
         * byte at a time cannot hold the connection either. */
        *upload_data_size = 0;
        return MHD_YES;
    }
    /* The whole request arrived: the deadline waits for the answer to end. */
    ota_httpd_deadlines_set(app->deadlines, c, OTA_HTTPD_DEADLINE_NONE, 0);
    if (strncmp(url, OTA_HTTP_FILES_PREFIX, strlen(OTA_HTTP_FILES_PREFIX)) == 0) {
        return ota_http_files_handle(app->files, c, url, method, mono_ms(), (int64_t)time(NULL));
    }
    static const char text[] = "404 not found\n";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof text - 1, (void *)text, MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    enum MHD_Result rc = MHD_queue_response(c, MHD_HTTP_NOT_FOUND, r);
    MHD_destroy_response(r);
    return rc;
}

/* Starts libmicrohttpd on the configured address; NULL with a logged reason. */
static struct MHD_Daemon *start_daemon(const options_t *o, app_t *app, char *cert, char *key)
{
    struct sockaddr_storage ss;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    int v6 = 0;
    if (ota_httpd_address(o->bind, (int)o->port, &ss, &v6) != 0) {
        ota_httpd_log(OTA_HTTPD_ERROR, "bad --bind address '%s'", o->bind);
        return NULL;
    }
    if (v6) {
        flags |= MHD_USE_IPv6;
    }
    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES) {
        flags |= MHD_USE_EPOLL;
    } else {
        flags |= MHD_USE_POLL;
    }
    if (o->tls) {
        flags |= MHD_USE_TLS;
    }
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)o->max_connections, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)o->max_per_address, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)o->timeout_s, NULL},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)ota_httpd_deadlines_notify, app->deadlines},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, app},
        {MHD_OPTION_SOCK_ADDR, 0, &ss},
        {MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)ota_httpd_unescape, NULL},
        {o->tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, cert},
        {o->tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, key},
        {MHD_OPTION_END, 0, NULL},
    };
    struct MHD_Daemon *d = MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, on_request, app,
                                            MHD_OPTION_EXTERNAL_LOGGER, ota_httpd_mhd_log, NULL,
                                            MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (d == NULL) {
        ota_httpd_log(OTA_HTTPD_ERROR, "cannot listen on %s port %d (in use, or a bad address%s)",
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
    ota_httpd_log_setup("otter-http", o.log_level);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int status = 1;
    char err[512];
    char *cert = NULL, *key = NULL;
    ota_store_t *store = NULL, *check = NULL;
    ota_svc_presign_t *signer = NULL;
    ota_svc_budget_t *budget = NULL;
    struct MHD_Daemon *d = NULL;
    app_t app;
    memset(&app, 0, sizeof app);
    app.header_timeout_ms = (long long)o.header_timeout_s * 1000;
    /* Every connection is a descriptor: let the limits above, not the soft limit, decide. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    ota_svc_budget_config_t bc;
    ota_svc_budget_defaults(&bc);

    char db[4200];
    snprintf(db, sizeof db, "%s/otter.db", o.data_dir);
    if (access(db, R_OK) != 0) {
        ota_httpd_log(OTA_HTTPD_ERROR,
                      "no store in %s; create one with 'otter broker init' or 'otter thing "
                      "create'",
                      o.data_dir);
        return 1;
    }
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
                          "cannot read %s or %s; make them with 'otter broker init --tls' "
                          "or give --cert and --key",
                          cpath, kpath);
            goto out;
        }
    }
    if (ota_store_open(o.data_dir, &store) != OTA_STORE_OK) {
        ota_httpd_log(OTA_HTTPD_ERROR, "cannot open the store in %s", o.data_dir);
        goto out;
    }
    /* A newer otter that migrates the store (an upgraded service, CLI or console) would find
     * this process serving from what it no longer writes: stop, and say why. The check has
     * its own handle, as the server's threads use the other one; it is open before the ready
     * line, so a migration at any time after it is seen. */
    if (ota_store_open(o.data_dir, &check) != OTA_STORE_OK) {
        ota_httpd_log(OTA_HTTPD_ERROR, "cannot open the store in %s", o.data_dir);
        goto out;
    }
    signer = ota_svc_presign_open(o.data_dir, err, sizeof err);
    if (signer == NULL) {
        ota_httpd_log(OTA_HTTPD_ERROR, "URL signing key: %s", err);
        goto out;
    }
    budget = ota_svc_budget_create(&bc);
    app.files = ota_http_files_create(store, signer, budget);
    app.deadlines = ota_httpd_deadlines_new(app.header_timeout_ms, 0);
    if (budget == NULL || app.files == NULL || app.deadlines == NULL) {
        ota_httpd_log(OTA_HTTPD_ERROR, "out of memory");
        goto out;
    }
    ota_http_files_set_log(app.files, module_log, NULL);
    d = start_daemon(&o, &app, cert, key);
    if (d == NULL) {
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    ota_httpd_log(OTA_HTTPD_INFO, "ready: %s://%s%s%s:%u/files/ (data %s)",
                  o.tls ? "https" : "http", strchr(o.bind, ':') ? "[" : "", o.bind,
                  strchr(o.bind, ':') ? "]" : "", info != NULL ? info->port : (unsigned)o.port,
                  o.data_dir);
    int moved = 0;
    for (int tick = 1; !g_stop; tick++) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
        if (tick % 10 == 0) {
            unsigned late = ota_httpd_deadlines_cut(app.deadlines);
            app.late_headers += late;
            if (late > 0) {
                ota_httpd_log(OTA_HTTPD_DEBUG,
                              "closed %u connection(s) whose request headers took over %u s", late,
                              o.header_timeout_s);
            }
        }
        if (tick % 50 == 0 && ota_store_schema_check(check) == OTA_STORE_CONFLICT) {
            ota_httpd_log(OTA_HTTPD_ERROR, "stopping: %s", ota_store_errmsg(check));
            moved = 1;
            break;
        }
    }
    MHD_stop_daemon(d);
    d = NULL;
    ota_http_files_stats_t st;
    ota_http_files_get_stats(app.files, &st);
    ota_httpd_log(OTA_HTTPD_INFO,
                  "stats: requests=%" PRIu64 " served=%" PRIu64 " bytes=%" PRIu64
                  " bad_signature=%" PRIu64 " expired=%" PRIu64 " not_found=%" PRIu64
                  " bad_range=%" PRIu64 " bad_method=%" PRIu64 " throttled=%" PRIu64
                  " failed=%" PRIu64 " late_headers=%" PRIu64,
                  st.requests, st.served, st.bytes, st.bad_signature, st.expired, st.not_found,
                  st.bad_range, st.bad_method, st.throttled, st.failed, app.late_headers);
    status = moved ? 1 : 0;
out:
    if (d != NULL) {
        MHD_stop_daemon(d);
    }
    ota_http_files_destroy(app.files);
    ota_svc_budget_destroy(budget);
    ota_svc_presign_close(signer);
    ota_store_close(store);
    ota_store_close(check);
    free(cert);
    free(key);
    ota_httpd_deadlines_free(app.deadlines);
    ota_httpd_log(OTA_HTTPD_INFO, "stopped");
    return status;
}
