/*
 * otter-service: AWS IoT Jobs and MQTT streams on a standard MQTT broker.
 *
 * One thread: the loop reads and writes the broker connection
 * (mosquitto_loop), dispatches each message to the Jobs or the streams
 * module, and runs their periodic work every 200 ms. Every callback therefore
 * runs on the loop's thread, one at a time.
 *
 * Stream answers of one turn go out in one write: over plain TCP, as PUBLISH
 * packets built in one buffer (raw) when libmosquitto has nothing queued;
 * otherwise queued in the MQTT client and written with the socket corked.
 * When more than --max-backlog bytes wait for the broker, the loop only
 * writes (reads no request) until they are sent, so memory stays bounded and
 * TCP holds the devices back.
 *
 * Stream requests are subscribed through a shared subscription; a probe
 * message at each connect checks that the broker delivers shared
 * subscriptions on $aws topics, and the service falls back to plain
 * subscriptions when it does not (--shard K/N then splits the load). With a
 * share prefix (`otter broker init --shared-streams`), the broker bridges
 * every stream request to itself under an ordinary topic,
 * <prefix>$aws/things/..., where shared subscriptions work on Mosquitto 2.0;
 * the probe then goes through that bridge.
 *
 * Valid stream requests wait in one queue per thing and are answered in
 * turns of at most 16 KiB of blocks, one thing after the other, while less
 * than SERVE_LOW_WATER bytes of answers wait for the broker, so a thing
 * asking for much delays another thing's next block by at most one turn.
 * Per-thing budgets refuse what is over them.
 *
 * The session is persistent (a fixed client id, clean session off, the Jobs
 * API at QoS 1): requests published while the service is away wait in the
 * broker. libmosquitto is told it is threaded so that it only queues the
 * PUBACK of a request and writes it after the message callback returned: a
 * request is acknowledged to the broker only after its change is committed,
 * and a crash before that makes the broker deliver it again, which the store
 * recognises (same session, packet id and digest) and applies once.
 *
 * Configuration comes from the data folder: broker/service.credentials
 * (written by `otter broker init`) gives host, port, user, password and the
 * client id; command-line options override it.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <mosquitto.h>

#include "ota_store.h"
#include "ota_svc_budget.h"
#include "ota_svc_federation.h"
#include "ota_svc_instance_lock.h"
#include "ota_svc_inventory.h"
#include "ota_svc_jobs.h"
#include "ota_svc_presign.h"
#include "ota_svc_store_source.h"
#include "ota_svc_streams.h"
#include "ota_text_escape.h"
#include "otter/ota_mqtt_packet.h"

/* One publish function serves both modules: their callback types must agree. */
_Static_assert(__builtin_types_compatible_p(ota_svc_publish_fn, ota_svc_streams_publish_fn),
               "the Jobs and streams modules must share the publish callback type");

#define TICK_MS 200
#define KEEPALIVE_S 30
#define RECONNECT_MIN_MS 500
#define RECONNECT_MAX_MS 5000
/* A refused login backs off further: nothing changes until someone fixes it. */
#define REFUSED_MAX_MS 60000
/* Stream answers are produced while fewer bytes than this wait for the broker. */
#define SERVE_LOW_WATER (512u * 1024u)
/* The thing name of the shared-subscription probe: reserved (no thing may be named
 * otter-service...), so no device's stream requests are ever taken for it. */
#define PROBE_THING "otter-service-probe"

/* Default client id (and, with --instance NAME, its prefix) without credentials. */
#define DEFAULT_CLIENT_ID "otter-service"
#define STREAM_CACHE_TTL_MS 5000
#define PROBE_WAIT_MS 1500
/* Instances that share requests record a heartbeat in the store this often; one silent for
 * LIVE_MS no longer counts (budgets are divided by the live ones; its outbox is taken over). */
#define HEARTBEAT_MS 2000
#define LIVE_MS 6000
/* The share group of the Jobs API requests bridged under the share prefix. */
#define JOBS_SHARE_GROUP "otter-jobs"
/* Outgoing bytes queued in the client above which no request is read until
 * the broker has taken them (TCP then holds the devices' requests back). */
#define OUT_HIGH_WATER (32u * 1024u * 1024u)

enum role { ROLE_ALL, ROLE_STREAMS, ROLE_JOBS };
enum level { LV_ERROR, LV_WARN, LV_INFO, LV_DEBUG };

typedef struct options {
    const char *data_dir;
    const char *store; /* NULL: SQLite in data_dir; else a postgresql:// URL */
    const char *host;
    int port;
    const char *username;
    const char *password;
    const char *client_id;
    const char *instance;
    const char *cafile;
    const char *certfile; /* client certificate and key (mutual TLS): options or credentials */
    const char *keyfile;
    ota_svc_budget_config_t budget;
    const char *share_group;
    const char *share_prefix; /* stream requests arrive as <prefix>$aws/...; NULL: plain */
    int stats_interval_s;     /* log the stats line every N s (0: only at the end) */
    enum role role;
    int log_level;
    uint64_t max_backlog; /* bytes queued for the broker before requests wait */
    int shard_k;          /* with shard_n > 0: serve only things whose name hashes to shard_k */
    int shard_n;
    const char *http_url;       /* base of presigned URLs (otter-http), or NULL */
    const char *broker_numbers; /* --broker-numbers K,...: presence numbers of --host's brokers */
} options_t;

/* What the data folder's broker/service.credentials holds. */
typedef struct credentials {
    char path[4096];
    int present;
    char host[256];
    int port;
    int tls_port;
    char username[128];
    char password[256];
    char client_id[128];
    char client_id_prefix[128];
    char share_prefix[64];
    int share_jobs; /* the broker's bridge also carries the Jobs API requests */
    char cafile[4096];
    char certfile[4096];
    char keyfile[4096];
    char brokers[1024];       /* in a federation: "HOST:PORT,HOST:PORT", the hubs in order */
    char fed_brokers[8];      /* in a federation: how many brokers it has ("3") */
    char inst_certfile[4096]; /* an instance's own certificate and key (TLS) */
    char inst_keyfile[4096];
} credentials_t;

/* The brokers to connect to, in order: the next when the current one is lost. */
#define MAX_BROKERS 8
typedef struct broker_addr {
    char host[256];
    int port;
    unsigned number; /* its number in the federation (presence): 1 hub 1, 2 hub 2, ... */
} broker_addr_t;

typedef struct daemon {
    options_t opt;
    credentials_t cred;
    broker_addr_t brokers[MAX_BROKERS];
    int n_brokers;
    int cur_broker;     /* opt.host and opt.port are brokers[cur_broker] */
    int attempt_failed; /* the last connection attempt failed: the next goes to the next broker */
    int accepted;       /* the broker accepted the current connection (CONNACK 0) */
    char client_id[160];
    struct mosquitto *m;
    ota_store_t *jobs_store;
    ota_store_t *streams_store;
    ota_svc_jobs_t *jobs;
    ota_svc_inventory_t *inventory; /* with the Jobs API: shadow reports, presence */
    ota_svc_streams_t *streams;
    ota_svc_store_source_t *source;
    ota_svc_presign_t *signer;
    int warned_no_http_url;
    int connected;
    int ready;
    int subs_pending;
    int subs_total;
    int subs_refused;
    int ever_connected;
    int refused;                   /* the last connection attempt was refused by the broker */
    ota_svc_takeover_t conn_watch; /* connections the broker closed right after they were made */
    int lock_fd;                   /* DATA/run/<client id>.lock, held while the process runs */
    int64_t backoff_ms;            /* wait before the next connection attempt */
    ota_svc_budget_t *budget;
    int shared;     /* stream requests subscribed through $share on this connection */
    int probing;    /* waiting for the shared-subscription probe */
    int probe_seen; /* the probe came back */
    int64_t probe_deadline;
    char probe_pub[192];   /* where the probe is published */
    char probe_topic[256]; /* where it arrives (through the bridge with a share prefix) */
    char probe_filter[320];
    int share_broken; /* the probe failed once: subscribe plainly from then on */
    int jobs_shared;  /* Jobs API requests subscribed through $share on this connection */
    int named;        /* a share prefix: this instance is named in the store (heartbeats) */
    int schema_moved; /* a newer otter migrated the store under this process: stop, exit 1 */
    int64_t last_beat;
    int jobs_live; /* live instances serving the Jobs API, at the last heartbeat */
    /* The session of a stopped instance being drained (its client id), or none. */
    struct mosquitto *takeover;
    char takeover_id[160];
    int64_t takeover_quiet; /* drained when nothing came until then */
    int64_t takeover_end;   /* given up then at the latest */
    uint64_t takeover_messages;
    int streams_live; /* live instances serving streams, at the last heartbeat */
    uint64_t shard_skipped;
    /* Outgoing backlog: bytes published and not yet written, by message id. */
    uint64_t out_bytes;
    uint32_t out_count;
    uint64_t out_peak;
    int64_t handle_max_ms; /* longest handling of one message (on_message) */
    uint64_t paused;
    int draining;
    uint32_t out_len[65536];
    uint8_t out_state[65536];  /* 0 unknown, 1 queued, 2 sent before publish returned */
    int64_t out_outbox[65536]; /* outbox id of a Jobs answer in flight, by message id */
    int outbox_resent;         /* the outbox of the previous run was sent again */
    /* Stream answers of one turn as MQTT PUBLISH packets, written with one send() (plain
     * TCP only): while raw_off < raw_len, libmosquitto must not write (its packets would
     * land inside ours), so the loop finishes these bytes first. */
    int raw_collect; /* the streams module's publishes go into raw */
    uint8_t *raw;
    size_t raw_len, raw_off, raw_cap;
    uint64_t raw_writes; /* send() calls that wrote answers */
    uint64_t jobs_messages;
    uint64_t other_messages;
    uint64_t publish_failures;
    uint64_t reconnects;
    /* With several brokers: the watch on the other hub (moving back, split detection). */
    ota_svc_fed_t *fed;
    unsigned fed_size; /* the federation's brokers, for presence (1 without one) */
    int go_home;       /* the next connection goes to the first broker of the list */
} daemon_t;

static volatile sig_atomic_t g_stop;
static const char *g_inst = "otter-service";
static int g_log_level = LV_INFO;

/* ----------------------------------------------------------------- log -- */

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

static void log_line(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void log_line(int level, const char *fmt, ...)
{
    char stamp[32];
    char text[1024], safe[sizeof(text) * OTA_TEXT_ESCAPE_GROWTH];
    struct timespec ts;
    struct tm tm;
    va_list ap;

    if (level > g_log_level) {
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (level < LV_ERROR) {
        level = LV_ERROR;
    }
    if (level > LV_DEBUG) {
        level = LV_DEBUG;
    }
    /* Text a device or a client sent may be in it: no control character or bidi
     * override reaches the log, so every line is one of ours. */
    ota_text_escape(text, strlen(text), safe, sizeof(safe));
    /* One write per line, so lines of several instances sharing a file do not mix. */
    fprintf(stderr, "%s otter-service[%s] %s %s\n", stamp, g_inst, level_names[level], safe);
}

/* Log hook for both modules (their levels are the same 0..3). */
static void module_log(void *ctx, int level, const char *line)
{
    (void)ctx;
    log_line(level, "%s", line);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* ----------------------------------------------------------------- CLI -- */

static void usage(FILE *f)
{
    fprintf(f, "Usage: otter-service --data-dir DIR [options]\n"
               "\n"
               "Serves AWS IoT Jobs and MQTT streams (file blocks) to devices through an MQTT\n"
               "broker, from the data directory the otter CLI writes.\n"
               "\n"
               "The broker's address, the login and the client id come from\n"
               "DIR/broker/service.credentials, written by 'otter broker init'; the options\n"
               "below override what it says.\n"
               "\n"
               "Options:\n"
               "  --data-dir DIR       data directory (otter.db, files/, broker/); default\n"
               "                       $OTTER_DATA_DIR; it must exist\n"
               "  --store URL          the store's database: postgresql://[user@]host[:port]/db\n"
               "                       (password: PGPASSWORD or ~/.pgpass rather than the URL,\n"
               "                       which others can see in the process list); default\n"
               "                       $OTTER_STORE, else SQLite in DIR/otter.db\n"
               "  --host HOST[:PORT],...  broker host, or a list of brokers tried in order:\n"
               "                       when the one in use is lost and cannot be reached\n"
               "                       again, the next (subscriptions are made again there);\n"
               "                       back to the first once it is reachable again; a\n"
               "                       split between the first two is logged (ERROR);\n"
               "                       a HOST without :PORT takes --port (default: the\n"
               "                       credentials' brokers list, else their host, else\n"
               "                       127.0.0.1)\n"
               "  --broker-numbers K,...  the federation's number of each broker of --host\n"
               "                       (1 hub 1, 2 hub 2), in the same order: the service\n"
               "                       counts its broker's connection notices under it.\n"
               "                       Needed only for a --host entry that is not written as\n"
               "                       in the credentials' brokers list (another name or\n"
               "                       address); one that is must agree with it\n"
               "  --port N             broker port (default: credentials, else 1883, or 8883\n"
               "                       with --cafile)\n"
               "  --username U         MQTT username (default: credentials)\n"
               "  --password P         MQTT password (or the OTTER_MQTT_PASSWORD environment\n"
               "                       variable, which keeps it out of the process list;\n"
               "                       default: credentials)\n"
               "  --client-id ID       MQTT client id, also the instance name in log lines\n"
               "                       (default: the credentials' client_id, else\n"
               "                       otter-service). It is fixed so that the broker keeps\n"
               "                       the session (requests sent while the service is away)\n"
               "                       and must be unique per instance\n"
               "  --instance NAME      several instances: client id <client_id_prefix>NAME\n"
               "                       (credentials; else <client id>-NAME; NAME: 1..32 of\n"
               "                       A-Z a-z 0-9 _ -); without it, an instance with another\n"
               "                       --role or a --shard is named <role>[-shard<K>]\n"
               "  --role all|streams|jobs\n"
               "                       all (default): Jobs API and streams; streams: only\n"
               "                       stream requests (extra instances for load); jobs: only\n"
               "                       the Jobs API. Run exactly one instance that serves jobs.\n"
               "  --share-group NAME   subscribe to stream requests as the MQTT shared\n"
               "                       subscription $share/NAME/... so that the instances of a\n"
               "                       group split them (default otter-streams); \"none\":\n"
               "                       plain subscriptions (every instance answers every\n"
               "                       request). A broker that does not deliver shared\n"
               "                       subscriptions on $aws topics (Mosquitto 2.0) is detected\n"
               "                       at connect time: the service then subscribes plainly\n"
               "                       and logs a warning.\n"
               "  --share-prefix P     stream requests arrive bridged under P ($share/GROUP/\n"
               "                       P$aws/things/...): the broker's bridge to itself that\n"
               "                       'otter broker init --shared-streams' writes, so that\n"
               "                       Mosquitto 2.0 delivers shared subscriptions (default:\n"
               "                       share_prefix of the credentials; none: off)\n"
               "  --stats-interval S   log the \"stats:\" line every S seconds too (default 0:\n"
               "                       only when stopping)\n"
               "  --shard K/N          split the stream load without shared subscriptions: N\n"
               "                       instances each subscribe plainly and instance K (0..N-1)\n"
               "                       answers only things whose name hashes to K (FNV-1a\n"
               "                       modulo N); overrides --share-group\n"
               "  --cafile F           connect with TLS, trusting the CA certificates in F\n"
               "  --certfile F, --keyfile K\n"
               "                       with --cafile: present this client certificate and key\n"
               "                       (mutual TLS, as 'otter broker init --tls' sets up)\n"
               "  --max-backlog KIB    answers queued for the broker, in KiB, above which no\n"
               "                       new request is read until they are sent (default 32768)\n"
               "  --thing-requests N   stream requests per second per thing (default 100; 0:\n"
               "                       no stream request budget)\n"
               "  --thing-request-burst N\n"
               "                       stream requests a thing may make at once (default 1000)\n"
               "  --thing-jobs-requests N\n"
               "                       Jobs API requests per second per thing (default 10; 0:\n"
               "                       no Jobs request budget)\n"
               "  --thing-jobs-burst N Jobs API requests a thing may make at once (default 200)\n"
               "  --thing-kib-per-s N  stream answer KiB per second per thing (default 1024;\n"
               "                       0: no byte budget)\n"
               "  --thing-burst-kib N  stream answer KiB a thing may get at once (default\n"
               "                       32768)\n"
               "                       Over a budget, a request is refused with\n"
               "                       RequestThrottled (see docs/SERVICE.md)\n"
               "  --http-url URL       where devices reach otter-http, e.g.\n"
               "                       https://ota.example.com:8443: HTTP jobs' documents get\n"
               "                       a presigned URL under it, renewed on every answer\n"
               "                       (without it their update_data_url is null)\n"
               "  --log-level L        error, warn, info (default) or debug\n"
               "  -h, --help           this text\n"
               "\n"
               "Logs go to stderr, one line per event: connection changes, each Jobs API\n"
               "request, one summary per thing and stream download, refused requests, and\n"
               "a final \"stats:\" line. SIGTERM or SIGINT: disconnect cleanly and exit 0.\n"
               "Exit status: 0 after a signal, 1 on a fatal error (also when a newer otter\n"
               "migrated the store while it ran: checked every 5 s), 2 on a usage error.\n");
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* A share prefix: "none", or an ordinary topic level path ending in '/'. 0 when valid. */
static int valid_share_prefix(const char *p)
{
    size_t n = strlen(p);
    if (strcmp(p, "none") == 0) {
        return 0;
    }
    return n == 0 || n > 48 || p[0] == '$' || p[0] == '/' || p[n - 1] != '/' ||
                   strpbrk(p, "+#") != NULL
               ? -1
               : 0;
}

static int parse_args(int argc, char **argv, options_t *o)
{
    memset(o, 0, sizeof(*o));
    o->host = "127.0.0.1";
    o->port = -1;
    o->role = ROLE_ALL;
    o->share_group = "otter-streams";
    o->log_level = LV_INFO;
    o->max_backlog = OUT_HIGH_WATER;
    o->host = NULL;
    ota_svc_budget_defaults(&o->budget);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (v == NULL) {
            fprintf(stderr, "otter-service: %s needs a value (see --help)\n", a);
            return -1;
        }
        i++;
        if (strcmp(a, "--data-dir") == 0) {
            o->data_dir = v;
        } else if (strcmp(a, "--store") == 0) {
            o->store = v;
        } else if (strcmp(a, "--host") == 0) {
            o->host = v;
        } else if (strcmp(a, "--broker-numbers") == 0) {
            o->broker_numbers = v;
        } else if (strcmp(a, "--port") == 0) {
            if (parse_int(v, 1, 65535, &o->port) != 0) {
                fprintf(stderr, "otter-service: bad port '%s'\n", v);
                return -1;
            }
        } else if (strcmp(a, "--username") == 0) {
            o->username = v;
        } else if (strcmp(a, "--password") == 0) {
            o->password = v;
        } else if (strcmp(a, "--client-id") == 0) {
            o->client_id = v;
        } else if (strcmp(a, "--instance") == 0) {
            size_t n = strlen(v);
            if (n == 0 || n > 32 ||
                strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                          "0123456789_-") != n) {
                fprintf(stderr, "otter-service: --instance takes 1..32 of A-Z a-z 0-9 _ -\n");
                return -1;
            }
            o->instance = v;
        } else if (strcmp(a, "--thing-requests") == 0 || strcmp(a, "--thing-request-burst") == 0 ||
                   strcmp(a, "--thing-jobs-requests") == 0 ||
                   strcmp(a, "--thing-jobs-burst") == 0 || strcmp(a, "--thing-kib-per-s") == 0 ||
                   strcmp(a, "--thing-burst-kib") == 0) {
            int n;
            int burst = strstr(a, "burst") != NULL;
            if (parse_int(v, burst ? 1 : 0, 4 * 1024 * 1024, &n) != 0 ||
                (strcmp(a, "--thing-burst-kib") == 0 && n < 128)) {
                fprintf(stderr,
                        "otter-service: %s takes a number, 0..4194304 (bursts: at least 1; "
                        "--thing-burst-kib at least 128)\n",
                        a);
                return -1;
            }
            if (strcmp(a, "--thing-requests") == 0) {
                o->budget.requests_per_s = (uint32_t)n;
            } else if (strcmp(a, "--thing-request-burst") == 0) {
                o->budget.request_burst = (uint32_t)n;
            } else if (strcmp(a, "--thing-jobs-requests") == 0) {
                o->budget.jobs_per_s = (uint32_t)n;
            } else if (strcmp(a, "--thing-jobs-burst") == 0) {
                o->budget.jobs_burst = (uint32_t)n;
            } else if (strcmp(a, "--thing-kib-per-s") == 0) {
                o->budget.bytes_per_s = (uint64_t)n * 1024u;
            } else {
                o->budget.byte_burst = (uint64_t)n * 1024u;
            }
        } else if (strcmp(a, "--http-url") == 0) {
            size_t n = strlen(v);
            if ((strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) || n > 256 ||
                strpbrk(v, "?# \"\\") != NULL || v[n - 1] == '/') {
                fprintf(stderr, "otter-service: --http-url takes http(s)://HOST[:PORT] without "
                                "a trailing '/', query or spaces\n");
                return -1;
            }
            o->http_url = v;
        } else if (strcmp(a, "--cafile") == 0) {
            o->cafile = v;
        } else if (strcmp(a, "--certfile") == 0) {
            o->certfile = v;
        } else if (strcmp(a, "--keyfile") == 0) {
            o->keyfile = v;
        } else if (strcmp(a, "--share-group") == 0) {
            o->share_group = v;
        } else if (strcmp(a, "--share-prefix") == 0) {
            o->share_prefix = v;
        } else if (strcmp(a, "--stats-interval") == 0) {
            if (parse_int(v, 0, 86400, &o->stats_interval_s) != 0) {
                fprintf(stderr, "otter-service: --stats-interval takes seconds, 0..86400\n");
                return -1;
            }
        } else if (strcmp(a, "--max-backlog") == 0) {
            int kib;
            if (parse_int(v, 64, 4 * 1024 * 1024, &kib) != 0) {
                fprintf(stderr, "otter-service: --max-backlog takes KiB, 64..4194304\n");
                return -1;
            }
            o->max_backlog = (uint64_t)kib * 1024u;
        } else if (strcmp(a, "--shard") == 0) {
            char k[16], n[16];
            const char *slash = strchr(v, '/');
            if (slash == NULL || (size_t)(slash - v) >= sizeof(k) ||
                strlen(slash + 1) >= sizeof(n)) {
                fprintf(stderr, "otter-service: --shard takes K/N, e.g. 0/2\n");
                return -1;
            }
            memcpy(k, v, (size_t)(slash - v));
            k[slash - v] = '\0';
            snprintf(n, sizeof(n), "%s", slash + 1);
            if (parse_int(n, 1, 1024, &o->shard_n) != 0 ||
                parse_int(k, 0, o->shard_n - 1, &o->shard_k) != 0) {
                fprintf(stderr, "otter-service: --shard K/N needs 0 <= K < N <= 1024\n");
                return -1;
            }
        } else if (strcmp(a, "--role") == 0) {
            if (strcmp(v, "all") == 0) {
                o->role = ROLE_ALL;
            } else if (strcmp(v, "streams") == 0) {
                o->role = ROLE_STREAMS;
            } else if (strcmp(v, "jobs") == 0) {
                o->role = ROLE_JOBS;
            } else {
                fprintf(stderr, "otter-service: role must be all, streams or jobs\n");
                return -1;
            }
        } else if (strcmp(a, "--log-level") == 0) {
            int found = 0;
            static const char *const names[] = {"error", "warn", "info", "debug"};
            for (int k = 0; k < 4; k++) {
                if (strcmp(v, names[k]) == 0) {
                    o->log_level = k;
                    found = 1;
                }
            }
            if (!found) {
                fprintf(stderr, "otter-service: log level must be error, warn, info or debug\n");
                return -1;
            }
        } else {
            fprintf(stderr, "otter-service: unknown option %s (see --help)\n", a);
            return -1;
        }
    }
    if (o->data_dir == NULL) {
        o->data_dir = getenv("OTTER_DATA_DIR");
    }
    if (o->data_dir == NULL || o->data_dir[0] == '\0') {
        fprintf(stderr, "otter-service: --data-dir is required (see --help)\n");
        return -1;
    }
    if (o->store == NULL || o->store[0] == '\0') {
        o->store = getenv("OTTER_STORE");
        if (o->store != NULL && o->store[0] == '\0')
            o->store = NULL;
    }
    if (o->store != NULL && !ota_store_location_is_postgresql(o->store)) {
        fprintf(stderr,
                "otter-service: --store takes a postgresql:// URL (or nothing for SQLite in the "
                "data folder)\n");
        return -1;
    }
    if (o->share_group[0] == '\0' || strpbrk(o->share_group, "/+#") != NULL) {
        fprintf(stderr, "otter-service: a share group name cannot be empty or hold / + #\n");
        return -1;
    }
    if (o->share_prefix != NULL && valid_share_prefix(o->share_prefix) != 0) {
        fprintf(stderr, "otter-service: --share-prefix takes 1..48 characters ending in '/', "
                        "without + # or a leading $ (or \"none\")\n");
        return -1;
    }
    if (o->password == NULL) {
        o->password = getenv("OTTER_MQTT_PASSWORD");
    }
    if ((o->certfile == NULL) != (o->keyfile == NULL)) {
        fprintf(stderr, "otter-service: --certfile and --keyfile go together, with --cafile\n");
        return -1;
    }
    return 0;
}

/* Copies a string member of the credentials; 0 absent, 1 copied, -1 wrong type or too long. */
static int cred_string(const cJSON *o, const char *key, char *out, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (v == NULL) {
        return 0;
    }
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= cap || v->valuestring[0] == '\0') {
        return -1;
    }
    memcpy(out, v->valuestring, strlen(v->valuestring) + 1);
    return 1;
}

static int cred_bool(const cJSON *o, const char *key, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (v == NULL) {
        return 0;
    }
    if (!cJSON_IsBool(v)) {
        return -1;
    }
    *out = cJSON_IsTrue(v);
    return 1;
}

static int cred_port(const cJSON *o, const char *key, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (v == NULL) {
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 65535 ||
        v->valuedouble != (double)(int)v->valuedouble) {
        return -1;
    }
    *out = (int)v->valuedouble;
    return 1;
}

/*
 * Checks the data folder and reads broker/service.credentials when it is
 * there (a folder without a broker, e.g. a broker set up by hand, needs the
 * options instead). Nothing is created. 0 on success; -1 (a bad folder or
 * file) or -2 (a usage error) with a message.
 */
static int load_config(options_t *o, credentials_t *c)
{
    struct stat sb;
    char text[8192];
    memset(c, 0, sizeof(*c));
    if (stat(o->data_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr,
                "otter-service: data folder '%s' %s; create it with 'otter --data-dir %s broker "
                "init --port PORT' (or give the right --data-dir)\n",
                o->data_dir, stat(o->data_dir, &sb) != 0 ? "does not exist" : "is not a folder",
                o->data_dir);
        return -1;
    }
    snprintf(c->path, sizeof(c->path), "%s/broker/service.credentials", o->data_dir);
    int fd = open(c->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno != ENOENT) {
        fprintf(stderr, "otter-service: cannot read %s (%s); check its owner and mode\n", c->path,
                strerror(errno));
        return -1;
    }
    if (fd >= 0) {
        ssize_t n = read(fd, text, sizeof(text) - 1);
        close(fd);
        cJSON *j = n > 0 ? cJSON_ParseWithLength(text, (size_t)n) : NULL;
        int bad = j == NULL || !cJSON_IsObject(j);
        if (!bad) {
            bad =
                cred_string(j, "host", c->host, sizeof(c->host)) < 0 ||
                cred_port(j, "port", &c->port) < 0 || cred_port(j, "tls_port", &c->tls_port) < 0 ||
                cred_string(j, "username", c->username, sizeof(c->username)) <= 0 ||
                cred_string(j, "password", c->password, sizeof(c->password)) < 0 ||
                cred_string(j, "client_id", c->client_id, sizeof(c->client_id)) < 0 ||
                cred_string(j, "client_id_prefix", c->client_id_prefix,
                            sizeof(c->client_id_prefix)) < 0 ||
                cred_string(j, "share_prefix", c->share_prefix, sizeof(c->share_prefix)) < 0 ||
                cred_bool(j, "share_jobs", &c->share_jobs) < 0 ||
                (c->share_prefix[0] != '\0' && valid_share_prefix(c->share_prefix) != 0) ||
                cred_string(j, "cafile", c->cafile, sizeof(c->cafile)) < 0 ||
                cred_string(j, "certfile", c->certfile, sizeof(c->certfile)) < 0 ||
                cred_string(j, "keyfile", c->keyfile, sizeof(c->keyfile)) < 0 ||
                cred_string(j, "brokers", c->brokers, sizeof(c->brokers)) < 0 ||
                cred_string(j, "federation_brokers", c->fed_brokers, sizeof(c->fed_brokers)) < 0 ||
                (c->certfile[0] != '\0') != (c->keyfile[0] != '\0') ||
                (c->password[0] == '\0' && c->certfile[0] == '\0') ||
                (c->port == 0 && c->tls_port == 0);
        }
        cJSON_Delete(j);
        memset(text, 0, sizeof(text));
        if (bad) {
            fprintf(stderr,
                    "otter-service: %s is damaged (it needs host, port, username and a password "
                    "or a certfile and keyfile, as 'otter broker init' writes them); run 'otter "
                    "broker init' in a new data folder\n",
                    c->path);
            return -1;
        }
        c->present = 1;
    }
    /* The command line wins, then the environment's password, then the file. */
    if (c->present) {
        if (o->host == NULL && c->host[0] != '\0') {
            o->host = c->host;
        }
        if (o->username == NULL) {
            o->username = c->username;
            if (o->password == NULL && c->password[0] != '\0') {
                o->password = c->password;
            }
        }
        /* "port" with "cafile" and no "tls_port": the listener is TLS only. */
        int tls_only = c->cafile[0] != '\0' && (c->tls_port == 0 || c->port == 0);
        if (o->port < 0 && o->cafile == NULL && tls_only) {
            o->cafile = c->cafile;
        }
        if (o->cafile != NULL && o->certfile == NULL && o->instance != NULL &&
            c->certfile[0] != '\0') {
            /* An instance's own certificate ('otter service credentials --instance NAME'):
             * on a TLS listener the certificate's name is the client id. */
            snprintf(c->inst_certfile, sizeof(c->inst_certfile), "%s/broker/service-%s.crt",
                     o->data_dir, o->instance);
            snprintf(c->inst_keyfile, sizeof(c->inst_keyfile), "%s/broker/service-%s.key",
                     o->data_dir, o->instance);
            if (access(c->inst_certfile, R_OK) == 0) {
                o->certfile = c->inst_certfile;
                o->keyfile = c->inst_keyfile;
            } else {
                fprintf(stderr,
                        "otter-service: warning: instance '%s' on a TLS broker has no "
                        "certificate of its own (%s) and logs in as the service: the broker "
                        "names clients by their certificate, so it takes the client id of any "
                        "other instance that does the same; run 'otter --data-dir %s service "
                        "credentials --instance %s'\n",
                        o->instance, c->inst_certfile, o->data_dir, o->instance);
            }
        }
        if (o->cafile != NULL && o->certfile == NULL && c->certfile[0] != '\0') {
            o->certfile = c->certfile;
            o->keyfile = c->keyfile;
        }
        if (o->port < 0) {
            o->port = o->cafile != NULL && c->tls_port > 0 ? c->tls_port
                      : c->port > 0                        ? c->port
                                                           : c->tls_port;
        }
        if (o->share_prefix == NULL && c->share_prefix[0] != '\0') {
            o->share_prefix = c->share_prefix;
        }
    }
    if (o->share_prefix != NULL && strcmp(o->share_prefix, "none") == 0) {
        o->share_prefix = NULL;
    }
    if (o->host == NULL) {
        o->host = "127.0.0.1";
    }
    if (o->password != NULL && o->username == NULL) {
        fprintf(stderr, "otter-service: --password needs --username\n");
        return -2;
    }
    if (o->certfile != NULL && o->cafile == NULL) {
        fprintf(stderr, "otter-service: --certfile and --keyfile go together, with --cafile\n");
        return -2;
    }
    if (o->port <= 0) {
        o->port = o->cafile != NULL ? 8883 : 1883;
    }
    return 0;
}

/*
 * The broker list: --host "HOST[:PORT],HOST[:PORT],..." (a HOST without a port
 * takes --port), else the credentials' "brokers" when neither --host nor --port
 * is given, else the one broker host:port. 0, or -1 with a message.
 */
static int make_broker_list(daemon_t *d, int host_given, int port_given)
{
    const char *list = d->opt.host;
    if (!host_given && !port_given && d->cred.brokers[0] != '\0') {
        list = d->cred.brokers;
    }
    d->n_brokers = 0;
    const char *p = list;
    for (;;) {
        size_t len = strcspn(p, ",");
        char item[300];
        if (len == 0 || len >= sizeof item || d->n_brokers == MAX_BROKERS) {
            fprintf(stderr,
                    "otter-service: bad broker list '%s'; give HOST or HOST:PORT, up to %d, "
                    "separated by ','\n",
                    list, MAX_BROKERS);
            return -1;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        broker_addr_t *b = &d->brokers[d->n_brokers];
        char *colon = strrchr(item, ':');
        b->port = d->opt.port;
        /* An IPv6 address without brackets has several ':' and no port of its own. */
        if (colon != NULL && strchr(item, ':') == colon) {
            *colon = '\0';
            if (parse_int(colon + 1, 1, 65535, &b->port) != 0) {
                fprintf(stderr, "otter-service: bad port in broker '%s:%s'\n", item, colon + 1);
                return -1;
            }
        }
        if (item[0] == '\0' || strlen(item) >= sizeof b->host) {
            fprintf(stderr, "otter-service: bad broker list '%s'; an entry has no host\n", list);
            return -1;
        }
        memcpy(b->host, item, strlen(item) + 1);
        d->n_brokers++;
        if (p[len] == '\0') {
            break;
        }
        p += len + 1;
    }
    d->cur_broker = 0;
    d->opt.host = d->brokers[0].host;
    d->opt.port = d->brokers[0].port;
    return 0;
}

/* ---------------------------------------------------------------- MQTT -- */

static int serves_jobs(const daemon_t *d)
{
    return d->opt.role != ROLE_STREAMS;
}

static int serves_streams(const daemon_t *d)
{
    return d->opt.role != ROLE_JOBS;
}

/* Splits "HOST:PORT" (a HOST without a port takes dflt); 0, or -1 when it is not one. */
static int split_addr(const char *text, size_t len, int dflt, char host[256], int *port)
{
    char item[300];
    if (len == 0 || len >= sizeof item) {
        return -1;
    }
    memcpy(item, text, len);
    item[len] = '\0';
    char *colon = strrchr(item, ':');
    *port = dflt;
    if (colon != NULL && strchr(item, ':') == colon) {
        *colon = '\0';
        if (parse_int(colon + 1, 1, 65535, port) != 0) {
            return -1;
        }
    }
    if (item[0] == '\0' || strlen(item) >= 256) {
        return -1;
    }
    memcpy(host, item, strlen(item) + 1);
    return 0;
}

/*
 * Numbers the brokers of the list for presence (which broker's connection notices the service
 * reads on $SYS/broker/log/N): from the federation's description, the credentials' "brokers"
 * (hub 1, hub 2, as 'otter broker init --federate' wrote them), whatever the order or the
 * subset --host names; from --broker-numbers for an entry written otherwise, which must not
 * contradict the description. Also the federation's size (its "federation_brokers", else the
 * broker folders DATA/federation/K, else the hubs listed). 0, or -1 with a message.
 */
static int number_brokers(daemon_t *d, unsigned *fed_size)
{
    broker_addr_t desc[MAX_BROKERS];
    int n_desc = 0;
    for (const char *p = d->cred.brokers; *p != '\0' && n_desc < MAX_BROKERS;) {
        size_t len = strcspn(p, ",");
        if (split_addr(p, len, d->cred.port > 0 ? d->cred.port : d->opt.port, desc[n_desc].host,
                       &desc[n_desc].port) != 0) {
            fprintf(stderr,
                    "otter-service: %s is damaged (brokers '%s' is not a list of HOST:PORT); "
                    "run 'otter broker init' in a new data folder\n",
                    d->cred.path, d->cred.brokers);
            return -1;
        }
        n_desc++;
        p += len + (p[len] == ',');
    }
    unsigned given[MAX_BROKERS] = {0};
    int n_given = 0;
    if (d->opt.broker_numbers != NULL) {
        for (const char *p = d->opt.broker_numbers;;) {
            size_t len = strcspn(p, ",");
            char item[8];
            int k = 0;
            if (len == 0 || len >= sizeof item || n_given == MAX_BROKERS) {
                k = -1;
            } else {
                memcpy(item, p, len);
                item[len] = '\0';
                if (parse_int(item, 1, OTA_SVC_INVENTORY_BROKERS_MAX, &k) != 0) {
                    k = -1;
                }
            }
            for (int i = 0; k > 0 && i < n_given; i++) {
                k = given[i] == (unsigned)k ? -1 : k;
            }
            if (k < 0) {
                fprintf(stderr,
                        "otter-service: bad --broker-numbers '%s'; give one number from 1 to %d "
                        "per broker of --host, each once, separated by ','\n",
                        d->opt.broker_numbers, OTA_SVC_INVENTORY_BROKERS_MAX);
                return -1;
            }
            given[n_given++] = (unsigned)k;
            if (p[len] == '\0') {
                break;
            }
            p += len + 1;
        }
        if (n_given != d->n_brokers) {
            fprintf(stderr,
                    "otter-service: --broker-numbers '%s' gives %d numbers for %d brokers; give "
                    "one per broker of the list, in its order\n",
                    d->opt.broker_numbers, n_given, d->n_brokers);
            return -1;
        }
    }
    for (int i = 0; i < d->n_brokers; i++) {
        broker_addr_t *b = &d->brokers[i];
        int j = 0;
        while (j < n_desc && !(strcmp(desc[j].host, b->host) == 0 && desc[j].port == b->port)) {
            j++;
        }
        if (n_given > 0 && j < n_desc && given[i] != (unsigned)j + 1u) {
            fprintf(stderr,
                    "otter-service: --broker-numbers says %s:%d is broker %u, but the "
                    "federation's description (%s, \"brokers\") says it is hub %d; leave "
                    "--broker-numbers out, or correct it\n",
                    b->host, b->port, given[i], d->cred.path, j + 1);
            return -1;
        }
        if (n_given > 0) {
            b->number = given[i];
        } else if (j < n_desc) {
            b->number = (unsigned)j + 1u;
        } else if (n_desc == 0 && d->n_brokers == 1) {
            b->number = 1; /* one broker, no federation */
        } else if (!serves_jobs(d)) {
            b->number = (unsigned)i + 1u; /* no presence in this instance: unused */
        } else {
            fprintf(stderr,
                    "otter-service: broker %s:%d of --host is not in the federation's "
                    "description (%s lists the hubs as '%s'), so the service cannot tell which "
                    "broker's connection notices it reads there; name the brokers as listed "
                    "there, or give --broker-numbers (1 for hub 1, 2 for hub 2, one per broker "
                    "of --host)\n",
                    b->host, b->port, d->cred.present ? d->cred.path : "no service.credentials",
                    d->cred.brokers[0] != '\0' ? d->cred.brokers : "(none)");
            return -1;
        }
    }
    /* The federation's size. */
    int size = 0;
    if (d->cred.fed_brokers[0] != '\0' &&
        parse_int(d->cred.fed_brokers, 1, OTA_SVC_INVENTORY_BROKERS_MAX, &size) != 0) {
        fprintf(stderr,
                "otter-service: %s is damaged (federation_brokers '%s' is not a number from 1 "
                "to %d)\n",
                d->cred.path, d->cred.fed_brokers, OTA_SVC_INVENTORY_BROKERS_MAX);
        return -1;
    }
    if (size == 0) {
        /* Written before the count was: the member folders broker init made, else the hubs. */
        size = 1;
        for (int k = 2; k <= OTA_SVC_INVENTORY_BROKERS_MAX; k++) {
            char dir[4200];
            struct stat sb;
            snprintf(dir, sizeof dir, "%s/federation/%d/broker", d->opt.data_dir, k);
            if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
                break;
            }
            size = k;
        }
        size = size < n_desc ? n_desc : size;
    }
    for (int i = 0; i < d->n_brokers; i++) {
        size = (int)d->brokers[i].number > size ? (int)d->brokers[i].number : size;
    }
    *fed_size = (unsigned)size;
    return 0;
}

/* Publishes; *mid receives the message id. */
static int publish_mid(daemon_t *d, const char *topic, const void *payload, size_t len, int qos,
                       int *mid)
{
    int rc;
    if (len > (size_t)INT_MAX) {
        return -1;
    }
    if (!ota_svc_jobs_packet_fits(topic, len, qos)) {
        /* The broker would end the connection for it (and libmosquitto send it again after
         * each reconnect, for ever): never sent. */
        log_line(LV_ERROR, "not published on %s: %zu bytes, more than the broker takes (%u)", topic,
                 ota_svc_jobs_packet_size(topic, len, qos), OTA_STORE_MQTT_PACKET_MAX);
        return -1;
    }
    rc = mosquitto_publish(d->m, mid, topic, (int)len, payload, qos, false);
    if (rc == MOSQ_ERR_SUCCESS) {
        uint16_t id = (uint16_t)*mid;
        if (d->out_state[id] == 2) {
            d->out_state[id] = 0; /* already written */
        } else {
            d->out_state[id] = 1;
            d->out_len[id] = (uint32_t)len;
            d->out_bytes += len;
            d->out_count++;
            if (d->out_bytes > d->out_peak) {
                d->out_peak = d->out_bytes;
            }
        }
    }
    if (rc != MOSQ_ERR_SUCCESS) {
        if (d->publish_failures++ == 0 || rc != MOSQ_ERR_NO_CONN) {
            log_line(LV_WARN, "publish to %s failed: %s", topic, mosquitto_strerror(rc));
        }
        return -1;
    }
    return 0;
}

static int publish_cb(void *ctx, const char *topic, const void *payload, size_t len, int qos)
{
    int mid = 0;
    return publish_mid(ctx, topic, payload, len, qos, &mid);
}

/* An answer from the Jobs module's outbox: QoS 1, and its outbox entry goes when the broker
 * acknowledged it (libmosquitto sends it again itself after a reconnect). */
static int durable_cb(void *ctx, const char *topic, const void *payload, size_t len,
                      int64_t outbox_id)
{
    daemon_t *d = ctx;
    int mid = 0;
    if (publish_mid(d, topic, payload, len, 1, &mid) != 0) {
        return -1;
    }
    d->out_outbox[(uint16_t)mid] = outbox_id;
    return 0;
}

/* Answer bytes waiting for the broker: queued in libmosquitto or in raw. */
static uint64_t backlog(const daemon_t *d)
{
    return d->out_bytes + (uint64_t)(d->raw_len - d->raw_off);
}

/* Appends one QoS 0 PUBLISH packet (MQTT 3.1.1, the device codec's encoding) to raw; 0 on
 * success. */
static int raw_append(daemon_t *d, const char *topic, const void *payload, size_t len)
{
    size_t most = 5u + 2u + strlen(topic) + len; /* fixed header at its longest */
    if (d->raw_cap - d->raw_len < most) {
        size_t cap = d->raw_cap != 0u ? d->raw_cap : 256u * 1024u;
        while (cap - d->raw_len < most) {
            cap *= 2u;
        }
        uint8_t *grown = realloc(d->raw, cap);
        if (grown == NULL) {
            return -1;
        }
        d->raw = grown;
        d->raw_cap = cap;
    }
    int32_t h = ota_mqtt_encode_publish_header(d->raw + d->raw_len, d->raw_cap - d->raw_len, topic,
                                               len, 0u, 0u);
    if (h < 0) {
        return -1;
    }
    d->raw_len += (size_t)h;
    if (len > 0u) {
        memcpy(d->raw + d->raw_len, payload, len);
        d->raw_len += len;
    }
    if (backlog(d) > d->out_peak) {
        d->out_peak = backlog(d);
    }
    return 0;
}

/* The streams module's publish: into raw during a turn that collects, else as any other. */
static int stream_publish_cb(void *ctx, const char *topic, const void *payload, size_t len, int qos)
{
    daemon_t *d = ctx;
    if (d->raw_collect && qos == 0 && ota_svc_jobs_packet_fits(topic, len, qos)) {
        return raw_append(d, topic, payload, len);
    }
    return publish_cb(ctx, topic, payload, len, qos);
}

/* Forgets raw answers (a lost connection drops them, as libmosquitto's QoS 0 queue). */
static void raw_reset(daemon_t *d)
{
    d->raw_len = 0;
    d->raw_off = 0;
}

/* Writes what the socket takes of raw now; a MOSQ_ERR_* code. */
static int raw_write(daemon_t *d)
{
    int fd = mosquitto_socket(d->m);
    if (fd < 0) {
        raw_reset(d);
        return MOSQ_ERR_NO_CONN;
    }
    while (d->raw_off < d->raw_len) {
        ssize_t n =
            send(fd, d->raw + d->raw_off, d->raw_len - d->raw_off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return MOSQ_ERR_SUCCESS; /* the rest when the socket has room */
        }
        if (n <= 0) {
            raw_reset(d);
            return MOSQ_ERR_CONN_LOST;
        }
        d->raw_writes++;
        d->raw_off += (size_t)n;
    }
    raw_reset(d);
    return MOSQ_ERR_SUCCESS;
}

/* A message left the client (QoS 0: written; QoS 1: acknowledged). */
static void on_publish(struct mosquitto *m, void *obj, int mid)
{
    daemon_t *d = obj;
    uint16_t id = (uint16_t)mid;
    (void)m;
    if (d->out_outbox[id] != 0) {
        ota_svc_jobs_answer_delivered(d->jobs, d->out_outbox[id]);
        d->out_outbox[id] = 0;
    }
    if (d->out_state[id] == 1) {
        d->out_bytes -= d->out_len[id];
        d->out_count--;
        d->out_state[id] = 0;
    } else {
        d->out_state[id] = 2;
    }
}

/* Forgets the backlog: a lost connection drops what the client had queued. */
static void reset_backlog(daemon_t *d)
{
    d->out_bytes = 0;
    d->out_count = 0;
    memset(d->out_state, 0, sizeof(d->out_state));
}

static void subscribe_one(daemon_t *d, const char *filter, int qos)
{
    int rc = mosquitto_subscribe(d->m, NULL, filter, qos);
    if (rc != MOSQ_ERR_SUCCESS) {
        log_line(LV_ERROR, "subscribe %s failed: %s", filter, mosquitto_strerror(rc));
        return;
    }
    d->subs_pending++;
    d->subs_total++;
    log_line(LV_DEBUG, "subscribing to %s (QoS %d)", filter, qos);
}

/* The shared filter of a stream request topic: $share/<group>/[<prefix>]<topic>. */
static void shared_filter(const daemon_t *d, const char *topic, char *out, size_t cap)
{
    snprintf(out, cap, "$share/%s/%s%s", d->opt.share_group,
             d->opt.share_prefix != NULL ? d->opt.share_prefix : "", topic);
}

/* Stream request filters, shared ($share/<group>/...) or plain. */
static void subscribe_streams(daemon_t *d, int shared)
{
    for (const char *const *t = ota_svc_streams_topics(); *t != NULL; t++) {
        char filter[256];
        if (shared) {
            shared_filter(d, *t, filter, sizeof(filter));
        } else {
            snprintf(filter, sizeof(filter), "%s", *t);
        }
        subscribe_one(d, filter, 0);
    }
}

static void unsubscribe_shared_streams(daemon_t *d)
{
    for (const char *const *t = ota_svc_streams_topics(); *t != NULL; t++) {
        char filter[256];
        shared_filter(d, *t, filter, sizeof(filter));
        mosquitto_unsubscribe(d->m, NULL, filter);
    }
}

/* The Jobs API request topics the broker's bridge carries ('otter broker init --shared-streams').
 */
static const char *const bridged_jobs_topics[] = {
    "$aws/things/+/jobs/get", "$aws/things/+/jobs/start-next", "$aws/things/+/jobs/+/get",
    "$aws/things/+/jobs/+/update", NULL};

/* Jobs API request filters at QoS 1: shared 1 ($share/otter-jobs/<prefix>...), plain 0, or
 * none -1; the others go (a resumed session keeps the last run's). */
static void subscribe_jobs(daemon_t *d, int shared)
{
    for (const char *const *t = bridged_jobs_topics; *t != NULL; t++) {
        char filter[256];
        snprintf(filter, sizeof(filter), "$share/" JOBS_SHARE_GROUP "/%s%s",
                 d->opt.share_prefix != NULL ? d->opt.share_prefix : "", *t);
        if (shared == 1) {
            subscribe_one(d, filter, 1);
        } else if (d->opt.share_prefix != NULL) {
            mosquitto_unsubscribe(d->m, NULL, filter);
        }
    }
    for (const char *const *t = ota_svc_jobs_topics(); *t != NULL; t++) {
        if (shared == 0) {
            subscribe_one(d, *t, 1);
        } else {
            mosquitto_unsubscribe(d->m, NULL, *t);
        }
    }
}

static const char *role_name(const daemon_t *d)
{
    return d->opt.role == ROLE_ALL ? "all" : d->opt.role == ROLE_STREAMS ? "streams" : "jobs";
}

static void announce_ready(daemon_t *d)
{
    char how[256] = "";
    int filters = 0;
    d->ready = 1;
    if (serves_jobs(d)) {
        for (const char *const *t = d->jobs_shared ? bridged_jobs_topics : ota_svc_jobs_topics();
             *t != NULL; t++) {
            filters++;
        }
        for (const char *const *t = ota_svc_inventory_topics(); *t != NULL; t++) {
            filters++;
        }
    }
    if (serves_streams(d)) {
        for (const char *const *t = ota_svc_streams_topics(); *t != NULL; t++) {
            filters++;
        }
    }
    if (serves_streams(d)) {
        if (d->opt.shard_n > 0) {
            snprintf(how, sizeof(how), ", streams shard %d of %d", d->opt.shard_k, d->opt.shard_n);
        } else if (d->shared) {
            snprintf(how, sizeof(how), ", streams shared in group %s%s%s", d->opt.share_group,
                     d->opt.share_prefix != NULL ? " under " : "",
                     d->opt.share_prefix != NULL ? d->opt.share_prefix : "");
        } else if (d->share_broken) {
            snprintf(how, sizeof(how), ", streams subscribed plainly: no working $share");
        } else {
            snprintf(how, sizeof(how), ", streams subscribed plainly");
        }
    }
    if (serves_jobs(d) && d->jobs_shared) {
        snprintf(how + strlen(how), sizeof(how) - strlen(how),
                 ", Jobs API shared in group " JOBS_SHARE_GROUP " under %s", d->opt.share_prefix);
    }
    log_line(LV_INFO, "ready: subscribed to %d filters (role %s%s)", filters, role_name(d), how);
}

/*
 * Some brokers accept a shared subscription on a $aws/... filter but never
 * deliver to it (Mosquitto 2.0 files such subscriptions under the wrong root).
 * Check once per connection with a probe message on a $aws topic of our own.
 * With a share prefix the probe is a stream request topic of a reserved thing,
 * and must come back through the broker's bridge under the prefix.
 */
static void start_probe(daemon_t *d)
{
    char id[96];
    size_t j = 0;
    for (const char *p = d->client_id; *p != '\0' && j + 1 < sizeof(id); p++) {
        id[j++] = strchr("+#/", *p) != NULL ? '_' : *p;
    }
    id[j] = '\0';
    if (d->opt.share_prefix != NULL && d->jobs_shared) {
        /* a Jobs API request topic: the bridge carries those too */
        snprintf(d->probe_pub, sizeof(d->probe_pub), "$aws/things/" PROBE_THING "/jobs/%s/get", id);
        snprintf(d->probe_topic, sizeof(d->probe_topic), "%s%s", d->opt.share_prefix, d->probe_pub);
    } else if (d->opt.share_prefix != NULL) {
        snprintf(d->probe_pub, sizeof(d->probe_pub),
                 "$aws/things/" PROBE_THING "/streams/%s/get/probe", id);
        snprintf(d->probe_topic, sizeof(d->probe_topic), "%s%s", d->opt.share_prefix, d->probe_pub);
    } else {
        snprintf(d->probe_pub, sizeof(d->probe_pub), "$aws/things/" PROBE_THING "/streams/%s/probe",
                 id);
        snprintf(d->probe_topic, sizeof(d->probe_topic), "%s", d->probe_pub);
    }
    snprintf(d->probe_filter, sizeof(d->probe_filter), "$share/%s-probe/%s", d->opt.share_group,
             d->probe_topic);
    d->probing = 1;
    d->probe_seen = 0;
    d->probe_deadline = mono_ms() + PROBE_WAIT_MS;
    subscribe_one(d, d->probe_filter, 0);
}

/* Called from the loop: the probe's verdict. */
static void check_probe(daemon_t *d)
{
    if (!d->probing) {
        return;
    }
    if (d->probe_seen) {
        d->probing = 0;
        mosquitto_unsubscribe(d->m, NULL, d->probe_filter);
        log_line(LV_DEBUG, "shared subscriptions on $aws topics work on this broker");
        announce_ready(d);
    } else if (mono_ms() >= d->probe_deadline) {
        d->probing = 0;
        mosquitto_unsubscribe(d->m, NULL, d->probe_filter);
        if (d->opt.share_prefix != NULL) {
            log_line(LV_WARN,
                     "no %s request came back under %s: the broker runs without the bridge "
                     "'otter broker init --shared-streams' writes (or an older configuration); "
                     "requests are subscribed plainly, so every instance receives every "
                     "request%s",
                     d->jobs_shared ? "Jobs API" : "stream", d->opt.share_prefix,
                     d->jobs_shared ? " (run one instance serving the Jobs API)" : "");
        } else {
            log_line(LV_WARN,
                     "the broker does not deliver shared subscriptions on $aws topics (a known "
                     "Mosquitto 2.0 limitation): stream requests are subscribed plainly, so "
                     "every instance receives every request; split the load with --shard K/N, "
                     "or set the broker up with 'otter broker init --shared-streams'");
        }
        d->share_broken = 1;
        if (d->shared) {
            unsubscribe_shared_streams(d);
            d->shared = 0;
            subscribe_streams(d, 0);
        }
        if (d->jobs_shared) {
            d->jobs_shared = 0;
            subscribe_jobs(d, 0);
        }
    }
}

static void subscribe_all(daemon_t *d)
{
    d->probing = 0;
    d->probe_seen = 0;
    d->subs_pending = 0;
    d->subs_total = 0;
    d->subs_refused = 0;
    d->ready = 0;
    /* A resumed session keeps the subscriptions of the last run, which may have had another
     * role or way of sharing: drop what this run does not use (a Jobs request delivered to an
     * instance that does not serve them would be acknowledged and lost). */
    d->jobs_shared =
        serves_jobs(d) && d->opt.share_prefix != NULL && d->cred.share_jobs && !d->share_broken;
    if (!serves_jobs(d)) {
        subscribe_jobs(d, -1);
    }
    d->shared = serves_streams(d) && d->opt.shard_n == 0 &&
                strcmp(d->opt.share_group, "none") != 0 && !d->share_broken;
    if (!serves_streams(d) || d->shared) {
        for (const char *const *t = ota_svc_streams_topics(); *t != NULL; t++) {
            mosquitto_unsubscribe(d->m, NULL, *t);
        }
    }
    if (!d->shared) {
        unsubscribe_shared_streams(d);
    }
    if (serves_jobs(d)) {
        subscribe_jobs(d, d->jobs_shared);
        for (const char *const *t = ota_svc_inventory_topics(); *t != NULL; t++) {
            subscribe_one(d, *t, 0);
        }
    }
    if (serves_streams(d)) {
        subscribe_streams(d, d->shared);
    }
    if (d->fed != NULL) {
        subscribe_one(d, ota_svc_fed_probe_topic(d->fed), 0);
    }
}

static void on_connect(struct mosquitto *m, void *obj, int rc, int flags)
{
    daemon_t *d = obj;
    int resumed = (flags & 1) != 0; /* CONNACK "session present" */
    (void)m;
    if (rc != 0) {
        d->refused = 1;
        if (d->fed != NULL) {
            ota_svc_fed_main_lost(d->fed, mono_ms()); /* a move back refused: a flap */
        }
        if (rc == 4 || rc == 5) {
            /* 4: bad user name or password; 5: not authorised. */
            log_line(LV_ERROR,
                     "broker %s:%d refused the login of user '%s' (%s): check the username and "
                     "password in %s (written by 'otter broker init'), that the broker runs with "
                     "%s/broker/mosquitto.conf and has read its password file since; retrying "
                     "in %.1f s",
                     d->opt.host, d->opt.port, d->opt.username ? d->opt.username : "(none)",
                     mosquitto_connack_string(rc),
                     d->cred.present ? d->cred.path : "--username/--password", d->opt.data_dir,
                     (double)d->backoff_ms / 1000.0);
        } else {
            log_line(LV_ERROR, "broker %s:%d refused the connection: %s", d->opt.host, d->opt.port,
                     mosquitto_connack_string(rc));
        }
        return;
    }
    d->refused = 0;
    d->backoff_ms = RECONNECT_MIN_MS;
    d->connected = 1;
    ota_svc_takeover_connected(&d->conn_watch, mono_ms());
    d->accepted = 1;
    d->attempt_failed = 0;
    if (d->n_brokers > 1) {
        log_line(LV_INFO, "connected to %s:%d (broker %d of %d) as %s%s, %s session", d->opt.host,
                 d->opt.port, d->cur_broker + 1, d->n_brokers, d->client_id,
                 d->ever_connected ? " (reconnected)" : "", resumed ? "resumed" : "new");
    } else {
        log_line(LV_INFO, "connected to %s:%d as %s%s, %s session", d->opt.host, d->opt.port,
                 d->client_id, d->ever_connected ? " (reconnected)" : "",
                 resumed ? "resumed" : "new");
    }
    int first = !d->ever_connected;
    d->ever_connected = 1;
    /* Presence: this broker's own notices count as its number in the federation (hub 1, hub
     * 2); every notice of the time without this connection is lost, whichever broker it
     * came from (the others' reach the service through this one). */
    if (d->inventory != NULL) {
        char why[64];
        snprintf(why, sizeof why, "%s to broker %u", first ? "connected" : "reconnected",
                 d->brokers[d->cur_broker].number);
        ota_svc_inventory_set_broker(d->inventory, d->brokers[d->cur_broker].number);
        (void)ota_svc_inventory_gap(d->inventory, OTA_SVC_INVENTORY_ALL, why, wall_ms());
    }
    if (d->fed != NULL) {
        /* The watch goes to the first broker while this connection is on another, else to
         * the second. */
        int other = d->cur_broker == 0 ? 1 : 0;
        ota_svc_fed_set(d->fed, d->cur_broker, d->brokers[other].host, d->brokers[other].port,
                        other, mono_ms());
    }
    if (d->jobs != NULL) {
        ota_svc_jobs_set_session(d->jobs, d->client_id, resumed);
        if (!d->outbox_resent) {
            /* Answers the previous run had not seen acknowledged. */
            d->outbox_resent = 1;
            ota_svc_jobs_resend_answers(d->jobs);
        }
    }
    subscribe_all(d);
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc)
{
    daemon_t *d = obj;
    (void)m;
    if (d->connected) {
        if (rc == 0) {
            log_line(LV_INFO, "disconnected from %s:%d", d->opt.host, d->opt.port);
        } else {
            log_line(LV_WARN, "connection to %s:%d lost: %s", d->opt.host, d->opt.port,
                     mosquitto_strerror(rc));
            if (ota_svc_takeover_lost(&d->conn_watch, mono_ms())) {
                log_line(LV_ERROR,
                         "the broker %s:%d closed this connection %u times in a row within %d s "
                         "of making it: another client may connect with this client id, %s (a "
                         "second otter-service elsewhere without its own --instance NAME?), or "
                         "the broker is unstable",
                         d->opt.host, d->opt.port, OTA_SVC_TAKEOVER_COUNT,
                         OTA_SVC_TAKEOVER_MS / 1000, d->client_id);
            }
        }
    }
    if (d->fed != NULL) {
        /* Before the next attempt, which may go where the watch holds this client id. */
        if (d->connected && rc != 0) {
            ota_svc_fed_main_lost(d->fed, mono_ms());
        }
        ota_svc_fed_set(d->fed, -1, NULL, 0, -1, mono_ms());
    }
    d->connected = 0;
    d->ready = 0;
    d->draining = 0;
    reset_backlog(d);
    raw_reset(d);
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int qos_count, const int *granted)
{
    daemon_t *d = obj;
    (void)m;
    (void)mid;
    for (int i = 0; i < qos_count; i++) {
        if (granted[i] > 2) {
            d->subs_refused++;
        }
    }
    if (--d->subs_pending > 0) {
        return;
    }
    if (d->subs_refused > 0) {
        log_line(LV_ERROR, "the broker refused %d of %d subscriptions (check its ACL)",
                 d->subs_refused, d->subs_total);
    }
    if (d->probing) {
        /* The probe filter is in place: send the probe. */
        if (publish_cb(d, d->probe_pub, "probe", 5, 0) != 0) {
            d->probe_deadline = 0;
        }
        return;
    }
    if (((d->shared && serves_streams(d)) || d->jobs_shared) && !d->ready && !d->probe_seen) {
        start_probe(d);
        return;
    }
    announce_ready(d);
}

/* Whether this instance answers requests of this thing (--shard). */
static int in_my_shard(const daemon_t *d, const char *topic)
{
    static const char prefix[] = "$aws/things/";
    uint32_t h = 2166136261u;
    const char *p;

    if (d->opt.shard_n <= 1 || strncmp(topic, prefix, sizeof(prefix) - 1) != 0) {
        return 1;
    }
    for (p = topic + sizeof(prefix) - 1; *p != '\0' && *p != '/'; p++) {
        h = (h ^ (uint8_t)*p) * 16777619u;
    }
    return (int)(h % (uint32_t)d->opt.shard_n) == d->opt.shard_k;
}

static void handle_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    daemon_t *d = obj;
    size_t len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
    const char *topic = msg->topic;
    static const char probe_prefix[] = "$aws/things/" PROBE_THING "/";
    (void)m;
    if (d->fed != NULL && ota_svc_fed_main_message(d->fed, topic, msg->payload, len, mono_ms())) {
        return;
    }
    if (d->probing && strcmp(topic, d->probe_topic) == 0) {
        d->probe_seen = 1;
        return;
    }
    if (d->opt.share_prefix != NULL &&
        strncmp(topic, d->opt.share_prefix, strlen(d->opt.share_prefix)) == 0) {
        /* A request through the broker's bridge: its own topic follows the prefix. */
        topic += strlen(d->opt.share_prefix);
        if (strncmp(topic, "$aws/things/", 12) != 0 || (d->streams == NULL && d->jobs == NULL)) {
            d->other_messages++;
            return;
        }
    }
    if (strncmp(topic, probe_prefix, sizeof(probe_prefix) - 1) == 0) {
        return; /* another instance's probe */
    }
    /* QoS 1: its PUBACK leaves after this returns (see the top of this file). */
    if (d->jobs != NULL &&
        ota_svc_jobs_handle_delivery(d->jobs, topic, msg->payload, len, msg->qos > 0 ? msg->mid : 0,
                                     wall_ms(), mono_ms()) == 1) {
        d->jobs_messages++;
        return;
    }
    if (d->inventory != NULL && topic == msg->topic &&
        ota_svc_inventory_handle(d->inventory, msg->topic, msg->payload, len, wall_ms()) == 1) {
        return;
    }
    if (d->streams != NULL && !in_my_shard(d, topic)) {
        d->shard_skipped++;
        return;
    }
    if (d->streams != NULL &&
        ota_svc_streams_handle(d->streams, topic, msg->payload, len, mono_ms()) == 1) {
        return;
    }
    d->other_messages++;
    log_line(LV_DEBUG, "ignored a message on %s", msg->topic);
}

/* Every message, timed: the longest handling is in the stats line (handle_max_ms), since
 * nothing else (stream answers included) runs meanwhile. */
static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    daemon_t *d = obj;
    int64_t t0 = mono_ms();
    handle_message(m, obj, msg);
    int64_t took = mono_ms() - t0;
    if (took > d->handle_max_ms) {
        d->handle_max_ms = took;
    }
}

static void on_mosq_log(struct mosquitto *m, void *obj, int level, const char *str)
{
    (void)m;
    (void)obj;
    if (level & (MOSQ_LOG_ERR)) {
        log_line(LV_WARN, "mqtt: %s", str);
    }
}

/* Sleeps up to ms, returning early on a stop signal. */
static void nap(int64_t ms)
{
    int64_t end = mono_ms() + ms;
    while (!g_stop && mono_ms() < end) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* ---------------------------------------------------------------- main -- */

/* Job documents as sent: presigned URLs in place of the stored placeholders. */
static char *document_hook(void *ctx, const char *thing, const char *job_id, const char *doc,
                           int64_t now_ms)
{
    daemon_t *d = ctx;
    if (d->opt.http_url == NULL && !d->warned_no_http_url &&
        strstr(doc, OTA_SVC_PRESIGN_PLACEHOLDER) != NULL) {
        d->warned_no_http_url = 1;
        log_line(LV_WARN,
                 "job %s uses HTTP but the service has no --http-url: its devices get "
                 "no URL (update_data_url null)",
                 job_id);
    }
    return ota_svc_presign_document(d->signer, d->opt.http_url, doc, thing, job_id, now_ms / 1000);
}

/* With a share prefix, instances share requests: each names itself in the store (its client
 * id) for heartbeats and as the owner of its outbox entries. */
static int name_instance(daemon_t *d, ota_store_t *s)
{
    if (d->opt.share_prefix == NULL || s == NULL) {
        return 0;
    }
    d->named = 1;
    if (ota_store_set_instance(s, d->client_id) != OTA_STORE_OK) {
        log_line(LV_ERROR, "instance name %s: %s", d->client_id, ota_store_errmsg(s));
        return -1;
    }
    return 0;
}

static int open_everything(daemon_t *d)
{
    d->budget = ota_svc_budget_create(&d->opt.budget);
    if (d->budget == NULL) {
        log_line(LV_ERROR, "cannot create the per-thing budgets");
        return -1;
    }
    if (serves_jobs(d)) {
        if (ota_store_open_at(d->opt.data_dir, d->opt.store, &d->jobs_store) != OTA_STORE_OK) {
            log_line(LV_ERROR, "cannot open the store of %s", d->opt.data_dir);
            return -1;
        }
        /* execution histories name this instance (a client id they cannot hold: none) */
        (void)ota_store_set_recorder(d->jobs_store, d->client_id);
        d->jobs = ota_svc_jobs_create(d->jobs_store, publish_cb, d);
        d->inventory = ota_svc_inventory_create(d->jobs_store, publish_cb, d);
        if (d->jobs == NULL || d->inventory == NULL) {
            log_line(LV_ERROR, "cannot start the Jobs API");
            return -1;
        }
        ota_svc_jobs_set_log(d->jobs, module_log, NULL);
        /* Presence: a start is a gap in every broker's notices (what the store says of
         * presence is from before it). */
        ota_svc_inventory_set_log(d->inventory, module_log, NULL);
        ota_svc_inventory_set_brokers(d->inventory, d->fed_size);
        {
            /* A federation that shrank: its brokers gone would keep things unknown there. */
            int forgot = 0;
            if (ota_store_presence_keep_brokers(d->jobs_store, d->fed_size, &forgot) !=
                OTA_STORE_OK) {
                log_line(LV_WARN, "presence: %s", ota_store_errmsg(d->jobs_store));
            } else if (forgot) {
                log_line(LV_INFO,
                         "presence: the federation has %u broker%s; the things' notices on "
                         "brokers above %u are forgotten",
                         d->fed_size, d->fed_size == 1 ? "" : "s", d->fed_size);
            }
        }
        ota_svc_inventory_set_broker(d->inventory, d->brokers[0].number);
        (void)ota_svc_inventory_gap(d->inventory, OTA_SVC_INVENTORY_ALL, "service started",
                                    wall_ms());
        ota_svc_jobs_set_budget(d->jobs, d->budget);
        ota_svc_jobs_set_durable(d->jobs, durable_cb, d);
        if (d->opt.http_url != NULL) {
            char err[512];
            d->signer = ota_svc_presign_open(d->opt.data_dir, err, sizeof err);
            if (d->signer == NULL) {
                log_line(LV_ERROR, "URL signing key: %s", err);
                return -1;
            }
        }
        ota_svc_jobs_set_document_hook(d->jobs, document_hook, d);
    }
    if (serves_streams(d)) {
        ota_svc_streams_source_t src;
        /* A handle of its own: its change polling must not race the Jobs module's. */
        if (ota_store_open_at(d->opt.data_dir, d->opt.store, &d->streams_store) != OTA_STORE_OK) {
            log_line(LV_ERROR, "cannot open the store of %s", d->opt.data_dir);
            return -1;
        }
        (void)ota_store_set_recorder(d->streams_store, d->client_id);
        d->source = ota_svc_store_source_create(d->streams_store, STREAM_CACHE_TTL_MS);
        if (d->source == NULL) {
            return -1;
        }
        ota_svc_store_source_bind(d->source, &src);
        d->streams = ota_svc_streams_create(&src, stream_publish_cb, d);
        if (d->streams == NULL) {
            log_line(LV_ERROR, "cannot start the streams API");
            return -1;
        }
        ota_svc_streams_set_log(d->streams, module_log, NULL);
        ota_svc_streams_set_budget(d->streams, d->budget);
        ota_svc_streams_set_deferred(d->streams, 1);
    }
    return name_instance(d, d->jobs_store) != 0 || name_instance(d, d->streams_store) != 0 ? -1 : 0;
}

static int setup_mqtt(daemon_t *d)
{
    /* A persistent session: clean session off, a fixed client id. An instance that only
     * serves streams (QoS 0, nothing to keep) takes a clean session, so that the broker
     * drops its shared subscriptions when it dies instead of sending it requests. */
    d->m = mosquitto_new(d->client_id, d->opt.role == ROLE_STREAMS, d);
    if (d->m == NULL) {
        log_line(LV_ERROR, "cannot create the MQTT client");
        return -1;
    }
    mosquitto_int_option(d->m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    /* Packets are queued and written by the loop, never from within a callback:
     * a request's PUBACK leaves after its callback has committed the change. */
    mosquitto_threaded_set(d->m, true);
    /* No window on QoS 1 answers: one held back behind the window would be lost with the
     * process while the PUBACK of its request (never held back) already left. */
    mosquitto_max_inflight_messages_set(d->m, 0);
    /* Answers leave at once: with Nagle's algorithm a small answer waits for
     * the broker's delayed acknowledgement of the previous one (40 ms). */
    mosquitto_int_option(d->m, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_connect_with_flags_callback_set(d->m, on_connect);
    mosquitto_disconnect_callback_set(d->m, on_disconnect);
    mosquitto_subscribe_callback_set(d->m, on_subscribe);
    mosquitto_publish_callback_set(d->m, on_publish);
    mosquitto_message_callback_set(d->m, on_message);
    mosquitto_log_callback_set(d->m, on_mosq_log);
    if (d->opt.username != NULL &&
        mosquitto_username_pw_set(d->m, d->opt.username, d->opt.password) != MOSQ_ERR_SUCCESS) {
        log_line(LV_ERROR, "cannot set the MQTT credentials");
        return -1;
    }
    if (d->opt.cafile != NULL) {
        int rc =
            mosquitto_tls_set(d->m, d->opt.cafile, NULL, d->opt.certfile, d->opt.keyfile, NULL);
        if (rc != MOSQ_ERR_SUCCESS) {
            log_line(LV_ERROR, "cannot use CA file %s: %s", d->opt.cafile, mosquitto_strerror(rc));
            return -1;
        }
    }
    return 0;
}

/* With several brokers: the watch on the other hub, with this instance's login. */
static int setup_watch(daemon_t *d)
{
    if (d->n_brokers < 2) {
        return 0;
    }
    ota_svc_fed_config_t cfg = {.client_id = d->client_id,
                                .username = d->opt.username,
                                .password = d->opt.password,
                                .cafile = d->opt.cafile,
                                .certfile = d->opt.certfile,
                                .keyfile = d->opt.keyfile,
                                .keepalive_s = KEEPALIVE_S,
                                .publish_main = publish_cb,
                                .ctx = d,
                                .log = module_log};
    d->fed = ota_svc_fed_create(&cfg);
    if (d->fed == NULL) {
        log_line(LV_ERROR, "cannot set up the connection that watches the other broker");
        return -1;
    }
    return 0;
}

static void print_stats(daemon_t *d)
{
    ota_svc_streams_stats_t st;
    ota_svc_jobs_stats_t js;
    ota_svc_budget_stats_t bs;
    ota_svc_fed_stats_t fs;
    memset(&fs, 0, sizeof(fs));
    if (d->fed != NULL) {
        ota_svc_fed_get_stats(d->fed, &fs);
    }
    memset(&st, 0, sizeof(st));
    memset(&js, 0, sizeof(js));
    if (d->streams != NULL) {
        ota_svc_streams_get_stats(d->streams, &st);
    }
    if (d->jobs != NULL) {
        ota_svc_jobs_get_stats(d->jobs, &js);
    }
    ota_svc_budget_get_stats(d->budget, &bs);
    log_line(LV_INFO,
             "stats: stream_requests=%" PRIu64 " stream_served=%" PRIu64 " blocks=%" PRIu64
             " bytes=%" PRIu64 " stream_rejected=%" PRIu64 " describes=%" PRIu64
             " jobs_messages=%" PRIu64 " other_shard=%" PRIu64 " reconnects=%" PRIu64
             " publish_failures=%" PRIu64 " backlog_peak=%" PRIu64 " paused=%" PRIu64
             " stream_throttled=%" PRIu64 " jobs_throttled=%" PRIu64 " refusals_dropped=%" PRIu64
             " redelivered=%" PRIu64 " answers_resent=%" PRIu64 " stream_merged=%" PRIu64
             " answer_writes=%" PRIu64 " broker=%d federation=%s splits=%" PRIu64
             " moves_home=%" PRIu64 " home_flaps=%" PRIu64 " stream_wait_max_ms=%" PRIu64
             " handle_max_ms=%" PRId64 " jobs_too_large=%" PRIu64,
             st.requests, st.served, st.blocks, st.bytes, st.rejected, st.describes,
             d->jobs_messages, d->shard_skipped, d->reconnects, d->publish_failures, d->out_peak,
             d->paused, st.throttled, js.throttled, bs.refusals_dropped, js.redelivered, js.resent,
             st.merged, d->raw_writes, d->cur_broker + 1,
             d->fed != NULL ? ota_svc_fed_state(d->fed) : "off", fs.splits, fs.moves_home, fs.flaps,
             st.wait_max_ms, d->handle_max_ms, js.too_large);
    if (d->inventory != NULL) {
        ota_svc_inventory_stats_t is;
        ota_svc_inventory_get_stats(d->inventory, &is);
        log_line(LV_INFO,
                 "stats: presence_writes=%" PRIu64 " presence_held=%" PRIu64
                 " presence_untracked=%" PRIu64 " presence_tracked=%zu",
                 is.writes, is.held, is.untracked, is.tracked);
    }
    if (d->source != NULL) {
        ota_svc_store_source_stats_t cs;
        ota_svc_store_source_get_stats(d->source, &cs);
        log_line(LV_DEBUG,
                 "stats: stream lookups %" PRIu64 " (%" PRIu64
                 " queries), permission checks %" PRIu64 " (%" PRIu64 " queries), %" PRIu64
                 " cache flushes",
                 cs.stream_lookups, cs.stream_queries, cs.auth_lookups, cs.auth_queries,
                 cs.invalidations);
    }
}

/*
 * Taking over a stopped instance's session. The broker hands a share group's requests in turn
 * to every member, connected or not, and keeps the QoS 1 ones of a member that is gone in its
 * persistent session. When an instance serving the Jobs API stops beating, one live instance
 * claims it in the store, connects with its client id (resuming its session), answers what the
 * broker kept for it under its session name (so a request it had committed but not
 * acknowledged is recognised as delivered again), and unsubscribes its shared filters, so that
 * the broker stops handing it requests. The instance, when it comes back, subscribes again.
 */
#define TAKEOVER_QUIET_MS 1000
#define TAKEOVER_MAX_MS 30000

static void takeover_end(daemon_t *d, const char *why)
{
    if (d->takeover == NULL) {
        return;
    }
    mosquitto_disconnect(d->takeover);
    for (int i = 0; i < 10 && mosquitto_loop(d->takeover, 10, 1) == MOSQ_ERR_SUCCESS; i++) {
    }
    mosquitto_destroy(d->takeover);
    d->takeover = NULL;
    log_line(LV_INFO, "session of stopped instance %s: %" PRIu64 " request(s) answered; %s",
             d->takeover_id, d->takeover_messages, why);
}

static void takeover_on_connect(struct mosquitto *m, void *obj, int rc, int flags)
{
    daemon_t *d = obj;
    if (rc != 0 || (flags & 1) == 0) {
        /* no session kept for it: nothing waits */
        d->takeover_end = 0;
        return;
    }
    /* What the broker kept arrives first; from now on it hands that instance nothing. */
    for (const char *const *t = bridged_jobs_topics; *t != NULL; t++) {
        char filter[256];
        snprintf(filter, sizeof(filter), "$share/" JOBS_SHARE_GROUP "/%s%s", d->opt.share_prefix,
                 *t);
        mosquitto_unsubscribe(m, NULL, filter);
    }
    for (const char *const *t = ota_svc_streams_topics(); *t != NULL; t++) {
        char filter[256];
        shared_filter(d, *t, filter, sizeof(filter));
        mosquitto_unsubscribe(m, NULL, filter);
    }
    d->takeover_quiet = mono_ms() + TAKEOVER_QUIET_MS;
}

static void takeover_on_disconnect(struct mosquitto *m, void *obj, int rc)
{
    daemon_t *d = obj;
    (void)m;
    (void)rc;
    d->takeover_end = 0; /* e.g. the instance came back and took its session: done */
}

static void takeover_on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    daemon_t *d = obj;
    const char *topic = msg->topic;
    size_t n = strlen(d->opt.share_prefix);
    (void)m;
    d->takeover_quiet = mono_ms() + TAKEOVER_QUIET_MS;
    if (strncmp(topic, d->opt.share_prefix, n) == 0) {
        topic += n;
    }
    /* Under the stopped instance's session name: its deliveries are recognised. */
    ota_svc_jobs_set_session(d->jobs, d->takeover_id, 1);
    if (ota_svc_jobs_handle_delivery(d->jobs, topic, msg->payload,
                                     msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0,
                                     msg->qos > 0 ? msg->mid : 0, wall_ms(), mono_ms()) == 1) {
        d->takeover_messages++;
    }
    ota_svc_jobs_set_session(d->jobs, d->client_id, 1);
}

static void takeover_start(daemon_t *d, const char *id)
{
    struct mosquitto *m;
    if (d->opt.certfile != NULL) {
        /* A certificate login's client id is its certificate's name: another instance's
         * session cannot be resumed with this certificate. */
        log_line(LV_WARN,
                 "instance %s stopped beating; its session waits for it (a certificate login "
                 "cannot take it over)",
                 id);
        return;
    }
    m = mosquitto_new(id, false, d);
    if (m == NULL) {
        return;
    }
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_threaded_set(m, true); /* PUBACK after the change is committed */
    mosquitto_connect_with_flags_callback_set(m, takeover_on_connect);
    mosquitto_disconnect_callback_set(m, takeover_on_disconnect);
    mosquitto_message_callback_set(m, takeover_on_message);
    if ((d->opt.username != NULL &&
         mosquitto_username_pw_set(m, d->opt.username, d->opt.password) != MOSQ_ERR_SUCCESS) ||
        (d->opt.cafile != NULL && mosquitto_tls_set(m, d->opt.cafile, NULL, d->opt.certfile,
                                                    d->opt.keyfile, NULL) != MOSQ_ERR_SUCCESS) ||
        mosquitto_connect(m, d->opt.host, d->opt.port, KEEPALIVE_S) != MOSQ_ERR_SUCCESS) {
        log_line(LV_WARN, "cannot connect as stopped instance %s", id);
        mosquitto_destroy(m);
        return;
    }
    d->takeover = m;
    snprintf(d->takeover_id, sizeof(d->takeover_id), "%s", id);
    d->takeover_messages = 0;
    d->takeover_quiet = 0;
    d->takeover_end = mono_ms() + TAKEOVER_MAX_MS;
    log_line(LV_INFO, "instance %s stopped beating: taking over its session", id);
}

/* Called from the loop: the takeover's network work and its end. */
static void takeover_poll(daemon_t *d)
{
    int64_t now = mono_ms();
    if (d->takeover == NULL) {
        return;
    }
    if (mosquitto_loop(d->takeover, 0, 1) != MOSQ_ERR_SUCCESS || now >= d->takeover_end) {
        takeover_end(d, "its session ended or the time was up");
    } else if (d->takeover_quiet != 0 && now >= d->takeover_quiet) {
        takeover_end(d, "drained");
    }
}

/*
 * Instances that share requests (a share prefix) record a heartbeat in the store: the live
 * ones divide the per-thing budgets, and the outbox of one that stopped is taken over.
 */
/* A newer otter that migrated the store (an upgraded instance, CLI or console) would find
 * this process writing what it no longer reads: stop, and say why. */
static void check_schema(daemon_t *d)
{
    ota_store_t *s = d->jobs_store != NULL ? d->jobs_store : d->streams_store;
    if (s != NULL && ota_store_schema_check(s) == OTA_STORE_CONFLICT) {
        log_line(LV_ERROR, "stopping: %s", ota_store_errmsg(s));
        d->schema_moved = 1;
        g_stop = 1;
    }
}

static void heartbeat(daemon_t *d, int64_t now)
{
    ota_store_t *s = d->jobs_store != NULL ? d->jobs_store : d->streams_store;
    int jobs = 0, streams = 0;
    if (!d->named || !d->ready || now - d->last_beat < HEARTBEAT_MS) {
        return;
    }
    d->last_beat = now;
    if (ota_store_instance_beat(s, serves_jobs(d), serves_streams(d), wall_ms(), LIVE_MS, &jobs,
                                &streams) != OTA_STORE_OK) {
        log_line(LV_WARN, "heartbeat: %s", ota_store_errmsg(s));
        return;
    }
    if (jobs != d->jobs_live || streams != d->streams_live) {
        log_line(LV_INFO,
                 "live instances: %d serving the Jobs API, %d serving streams; per-thing "
                 "budgets: 1/%d of the streams', 1/%d of the Jobs API's",
                 jobs, streams, d->shared && streams > 1 ? streams : 1,
                 d->jobs_shared && jobs > 1 ? jobs : 1);
        d->jobs_live = jobs;
        d->streams_live = streams;
    }
    ota_svc_budget_set_shares(d->budget, d->shared ? (unsigned)streams : 1u,
                              d->jobs_shared ? (unsigned)jobs : 1u);
    if (d->jobs != NULL) {
        char stopped[OTA_STORE_INSTANCE_MAX + 1];
        if (d->jobs_shared && d->takeover == NULL &&
            ota_store_instance_claim_stopped(s, wall_ms(), LIVE_MS, stopped, sizeof(stopped)) ==
                1) {
            takeover_start(d, stopped);
        }
        ota_svc_jobs_adopt_answers(d->jobs, wall_ms(), LIVE_MS);
    }
}

/* Writes queued messages without reading new requests (backlog above the high water,
 * or raw answers not yet written, which go first). */
static int drain(daemon_t *d)
{
    struct pollfd pfd;
    int rc;
    pfd.fd = mosquitto_socket(d->m);
    pfd.events = POLLOUT;
    pfd.revents = 0;
    if (pfd.fd < 0) {
        raw_reset(d);
        return MOSQ_ERR_NO_CONN;
    }
    if (poll(&pfd, 1, TICK_MS / 2) > 0) {
        rc = d->raw_off < d->raw_len ? raw_write(d) : mosquitto_loop_write(d->m, 1);
        if (rc != MOSQ_ERR_SUCCESS) {
            return rc;
        }
    }
    return mosquitto_loop_misc(d->m);
}

/*
 * Writes the answers just made in one go. Over plain TCP with nothing else
 * queued, a turn's answers were collected as PUBLISH packets in raw and go
 * out with one send(). Otherwise (TLS, or libmosquitto had packets queued)
 * they were queued in libmosquitto, and the socket is corked while it writes
 * them (one write per message), so the kernel still sends full segments and
 * the broker wakes once per turn instead of once per block. What the socket
 * cannot take now waits for the loop.
 */
static int push_answers(daemon_t *d)
{
    int fd = mosquitto_socket(d->m);
    int rc;
    if (d->raw_off < d->raw_len) {
        return raw_write(d);
    }
    if (fd < 0 || !mosquitto_want_write(d->m)) {
        return MOSQ_ERR_SUCCESS;
    }
#ifdef TCP_CORK
    int on = 1, off = 0;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
#endif
    rc = mosquitto_loop_write(d->m, 1);
#ifdef TCP_CORK
    (void)setsockopt(fd, IPPROTO_TCP, TCP_CORK, &off, sizeof off);
#endif
    return rc;
}

/* Whether more answers wait for the broker than --max-backlog allows: then no
 * request is read until they are written. Counts and logs the pauses. */
static int check_backlog(daemon_t *d)
{
    /* Message ids wrap at 65536: the count is capped below that. */
    int full = backlog(d) > d->opt.max_backlog || d->out_count > 50000u;
    if (full != d->draining) {
        d->draining = full;
        d->paused += full ? 1u : 0u;
        if (full) {
            log_line(LV_DEBUG, "%" PRIu64 " bytes wait for the broker: no requests read until sent",
                     backlog(d));
        } else {
            log_line(LV_DEBUG, "backlog down to %" PRIu64 " bytes: reading requests again",
                     backlog(d));
        }
    }
    return full;
}

/*
 * Connects again: to the same broker after a lost connection, to the next
 * broker of the list after a failed attempt (refused, unreachable, or its
 * login refused). Subscriptions are made again on every connect.
 */
static int reconnect(daemon_t *d)
{
    if (d->go_home) {
        d->go_home = 0;
        d->cur_broker = 0;
        d->opt.host = d->brokers[0].host;
        d->opt.port = d->brokers[0].port;
        d->probe_seen = 0;
        d->refused = 0;
        int rc = mosquitto_connect(d->m, d->opt.host, d->opt.port, KEEPALIVE_S);
        d->attempt_failed = rc != MOSQ_ERR_SUCCESS;
        if (rc != MOSQ_ERR_SUCCESS) {
            ota_svc_fed_main_lost(d->fed, mono_ms());
        }
        return rc;
    }
    if (d->n_brokers > 1 && (d->attempt_failed || d->refused)) {
        const broker_addr_t *was = &d->brokers[d->cur_broker];
        d->cur_broker = (d->cur_broker + 1) % d->n_brokers;
        d->opt.host = d->brokers[d->cur_broker].host;
        d->opt.port = d->brokers[d->cur_broker].port;
        d->probe_seen = 0; /* another broker: check its shared subscriptions again */
        log_line(LV_WARN, "broker %s:%d unavailable; trying the next of the list, %s:%d (%d of %d)",
                 was->host, was->port, d->opt.host, d->opt.port, d->cur_broker + 1, d->n_brokers);
        d->attempt_failed = 0;
        d->refused = 0;
        int rc = mosquitto_connect(d->m, d->opt.host, d->opt.port, KEEPALIVE_S);
        d->attempt_failed = rc != MOSQ_ERR_SUCCESS;
        return rc;
    }
    int rc = mosquitto_reconnect(d->m);
    d->attempt_failed = rc != MOSQ_ERR_SUCCESS;
    return rc;
}

/* Sends what is queued, then DISCONNECT. Raw answers go first; if they cannot, no DISCONNECT
 * follows half a packet: the connection just closes. QoS 1 answers not yet acknowledged stay
 * in libmosquitto and go again on the next connection. */
static void leave_broker(daemon_t *d)
{
    for (int i = 0; i < 10 && d->raw_off < d->raw_len; i++) {
        if (drain(d) != MOSQ_ERR_SUCCESS) {
            break;
        }
    }
    if (d->raw_off == d->raw_len) {
        mosquitto_disconnect(d->m);
        for (int i = 0; i < 50; i++) {
            if (mosquitto_loop(d->m, 20, 1) != MOSQ_ERR_SUCCESS) {
                break;
            }
        }
    }
    raw_reset(d);
    if (d->connected) {
        on_disconnect(d->m, d, 0);
    }
}

/* The watch's work; when the first broker has been reachable long enough, this instance leaves
 * a later one for it. Returns the loop's new state: MOSQ_ERR_NO_CONN after leaving. */
static int watch_home(daemon_t *d, int rc, int64_t now)
{
    if (d->fed == NULL) {
        return rc;
    }
    ota_svc_fed_main_ready(d->fed, d->connected && d->ready, now);
    if (ota_svc_fed_poll(d->fed, now) != OTA_SVC_FED_MOVE_HOME || !d->connected ||
        d->cur_broker == 0) {
        return rc;
    }
    log_line(LV_WARN,
             "broker 1 (%s:%d) is reachable again and stayed so: moving back to it from broker "
             "%d (%s:%d), so that every instance serves from the same hub",
             d->brokers[0].host, d->brokers[0].port, d->cur_broker + 1, d->opt.host, d->opt.port);
    takeover_end(d, "moving to broker 1");
    leave_broker(d);
    d->go_home = 1;
    return MOSQ_ERR_NO_CONN;
}

static void run(daemon_t *d)
{
    int64_t last_tick = 0;
    int64_t last_budget_tick = 0;
    int64_t last_stats = mono_ms();
    d->backoff_ms = RECONNECT_MIN_MS;
    int rc = mosquitto_connect(d->m, d->opt.host, d->opt.port, KEEPALIVE_S);

    d->attempt_failed = rc != MOSQ_ERR_SUCCESS;
    if (rc != MOSQ_ERR_SUCCESS) {
        log_line(LV_WARN, "cannot reach %s:%d: %s; retrying", d->opt.host, d->opt.port,
                 rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
    }
    while (!g_stop) {
        int64_t now;
        int full = check_backlog(d);
        if (rc == MOSQ_ERR_SUCCESS && (full || d->raw_off < d->raw_len)) {
            rc = drain(d);
        } else if (rc == MOSQ_ERR_SUCCESS) {
            /* No wait while stream requests wait for their turn and answers may be made. */
            int busy = d->streams != NULL && d->ready && ota_svc_streams_pending(d->streams) > 0 &&
                       backlog(d) < SERVE_LOW_WATER;
            rc = mosquitto_loop(d->m, busy ? 0 : TICK_MS / 2, 1);
        }
        if (rc == MOSQ_ERR_SUCCESS && d->streams != NULL && d->ready) {
            /* Turns: one request per thing, while the broker keeps up. The answers are
             * collected in raw when nothing else waits to be written on plain TCP. */
            int64_t t = mono_ms();
            int served = 0;
            d->raw_collect = d->opt.cafile == NULL && d->raw_off == d->raw_len &&
                             !mosquitto_want_write(d->m) && mosquitto_socket(d->m) >= 0;
            while (backlog(d) < SERVE_LOW_WATER && ota_svc_streams_serve(d->streams, t)) {
                served = 1;
            }
            d->raw_collect = 0;
            if (served) {
                /* Answers made faster than written also pause reading (until the
                 * next turn of the loop finds them written). */
                (void)check_backlog(d);
                rc = push_answers(d);
            }
        }
        if (rc != MOSQ_ERR_SUCCESS && !g_stop) {
            int64_t cap = d->refused ? REFUSED_MAX_MS : RECONNECT_MAX_MS;
            if (d->connected) {
                on_disconnect(d->m, d, rc);
            }
            if (!d->accepted) {
                /* Closed before a CONNACK (a broker that accepts TCP and drops it): that
                 * broker failed, as one that refuses the connection; right after a move back,
                 * a flap. */
                d->attempt_failed = 1;
                if (d->fed != NULL) {
                    ota_svc_fed_main_lost(d->fed, mono_ms());
                }
            }
            d->accepted = 0;
            if (!d->go_home) {
                nap(d->backoff_ms);
            }
            /* Reset only by an accepted connection (on_connect), not by a TCP connect. */
            d->backoff_ms = d->backoff_ms * 2 > cap ? cap : d->backoff_ms * 2;
            if (g_stop) {
                break;
            }
            rc = reconnect(d);
            d->reconnects++;
            if (rc != MOSQ_ERR_SUCCESS) {
                log_line(LV_DEBUG, "reconnect to %s:%d failed: %s", d->opt.host, d->opt.port,
                         rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
            }
        }
        check_probe(d);
        now = mono_ms();
        heartbeat(d, now);
        takeover_poll(d);
        rc = watch_home(d, rc, now);
        if (now - last_tick >= TICK_MS) {
            last_tick = now;
            /* Jobs work publishes: only while the broker can take it. */
            if (d->jobs != NULL && d->ready) {
                ota_svc_jobs_tick(d->jobs, wall_ms());
            }
            if (d->source != NULL) {
                ota_svc_store_source_tick(d->source);
            }
            if (d->streams != NULL) {
                ota_svc_streams_tick(d->streams, now);
            }
            if (d->inventory != NULL) {
                (void)ota_svc_inventory_tick(d->inventory, wall_ms());
            }
            if (now - last_budget_tick >= 5000) {
                last_budget_tick = now;
                ota_svc_budget_tick(d->budget, now);
                check_schema(d);
            }
            if (d->opt.stats_interval_s > 0 &&
                now - last_stats >= (int64_t)d->opt.stats_interval_s * 1000) {
                last_stats = now;
                print_stats(d);
            }
        }
    }
    takeover_end(d, "stopping");
    if (d->connected) {
        leave_broker(d);
    }
}

int main(int argc, char **argv)
{
    static daemon_t d;
    struct sigaction sa;
    int status = 0;

    if (parse_args(argc, argv, &d.opt) != 0) {
        return 2;
    }
    int host_given = d.opt.host != NULL, port_given = d.opt.port > 0;
    status = load_config(&d.opt, &d.cred);
    if (status == 0 && (make_broker_list(&d, host_given, port_given) != 0 ||
                        number_brokers(&d, &d.fed_size) != 0)) {
        status = -2;
    }
    if (status != 0) {
        return status == -2 ? 2 : 1;
    }
    g_log_level = d.opt.log_level;
    /* Fixed, so that the broker keeps the session across restarts; instances of
     * another role or shard get their own by default. */
    {
        const char *base = d.opt.client_id != NULL       ? d.opt.client_id
                           : d.cred.client_id[0] != '\0' ? d.cred.client_id
                                                         : DEFAULT_CLIENT_ID;
        char inst[64] = "";
        char prefix[160];
        /* Instances: <client_id_prefix>NAME ("otter-service-NAME"), else <client id>-NAME. */
        if (d.opt.client_id == NULL && d.cred.client_id_prefix[0] != '\0') {
            snprintf(prefix, sizeof(prefix), "%s", d.cred.client_id_prefix);
        } else {
            snprintf(prefix, sizeof(prefix), "%s-", base);
        }
        if (d.opt.instance != NULL) {
            snprintf(inst, sizeof(inst), "%s", d.opt.instance);
        } else if (d.opt.role != ROLE_ALL || d.opt.shard_n > 0) {
            snprintf(inst, sizeof(inst), "%s", role_name(&d));
            if (d.opt.shard_n > 0) {
                snprintf(inst + strlen(inst), sizeof(inst) - strlen(inst), "-shard%d",
                         d.opt.shard_k);
            }
        }
        int w = inst[0] != '\0' ? snprintf(d.client_id, sizeof(d.client_id), "%s%s", prefix, inst)
                                : snprintf(d.client_id, sizeof(d.client_id), "%s", base);
        if (w < 0 || (size_t)w >= sizeof(d.client_id)) {
            /* Cut, it could name another instance's session. */
            fprintf(stderr,
                    "otter-service: the client id '%s%s' is longer than %zu characters; give "
                    "a shorter --client-id or --instance\n",
                    inst[0] != '\0' ? prefix : base, inst, sizeof(d.client_id) - 1);
            return 2;
        }
    }
    g_inst = d.client_id;
    {
        char why[640];
        d.lock_fd = ota_svc_instance_lock(d.opt.data_dir, d.client_id, why, sizeof why);
        if (d.lock_fd < 0) {
            fprintf(stderr, "otter-service: %s\n", why);
            return d.lock_fd == -1 ? 2 : 1;
        }
    }
    ota_svc_takeover_init(&d.conn_watch);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    mosquitto_lib_init();
    log_line(LV_INFO, "starting: data %s, store %s, broker %s:%d%s as user %s%s, role %s",
             d.opt.data_dir, d.opt.store != NULL ? "PostgreSQL" : "SQLite", d.opt.host, d.opt.port,
             d.opt.cafile != NULL ? " (TLS)" : "",
             d.opt.username != NULL ? d.opt.username : "(anonymous)",
             d.cred.present ? " (from broker/service.credentials)" : "",
             d.opt.role == ROLE_ALL       ? "all"
             : d.opt.role == ROLE_STREAMS ? "streams"
                                          : "jobs");
    if (d.n_brokers > 1) {
        log_line(LV_INFO,
                 "broker list: %d brokers (%s first); on losing one, the next; back to the "
                 "first when it is reachable again",
                 d.n_brokers, d.brokers[0].host);
    }
    if (serves_jobs(&d)) {
        char nums[1024] = "";
        for (int i = 0; i < d.n_brokers; i++) {
            snprintf(nums + strlen(nums), sizeof(nums) - strlen(nums), "%s%s:%d is broker %u",
                     i > 0 ? ", " : "", d.brokers[i].host, d.brokers[i].port, d.brokers[i].number);
        }
        log_line(LV_INFO, "presence: %s of %u%s", nums, d.fed_size,
                 d.opt.broker_numbers != NULL ? " (--broker-numbers)"
                 : d.cred.brokers[0] != '\0'  ? " (the federation's description)"
                                              : "");
    }
    if (open_everything(&d) != 0 || setup_mqtt(&d) != 0 || setup_watch(&d) != 0) {
        status = 1;
    } else {
        run(&d);
        if (!d.schema_moved) {
            ota_svc_inventory_flush(d.inventory, wall_ms()); /* the notices held back */
        }
        if (d.named) {
            ota_store_instance_leave(d.jobs_store != NULL ? d.jobs_store : d.streams_store);
        }
        if (d.streams != NULL) {
            ota_svc_streams_flush_log(d.streams);
        }
        print_stats(&d);
        status = d.schema_moved ? 1 : 0;
    }
    ota_svc_fed_destroy(d.fed);
    if (d.m != NULL) {
        mosquitto_destroy(d.m);
    }
    free(d.raw);
    ota_svc_streams_destroy(d.streams);
    ota_svc_store_source_destroy(d.source);
    ota_svc_jobs_destroy(d.jobs);
    ota_svc_inventory_destroy(d.inventory);
    ota_svc_budget_destroy(d.budget);
    ota_svc_presign_close(d.signer);
    ota_store_close(d.streams_store);
    ota_store_close(d.jobs_store);
    mosquitto_lib_cleanup();
    log_line(LV_INFO, "stopped");
    return status;
}
