/*
 * Scale-out end to end: a federation of two brokers, a PostgreSQL store and
 * several otter-service instances carry one fleet's update, and one instance
 * and one broker die in the middle of the downloads.
 *
 * The brokers are what `otter broker init --shared-streams --federate
 * 127.0.0.1:P2` writes: the hub (Mosquitto with a bridge to itself that
 * republishes stream requests under otter/$aws/things/..., where shared
 * subscriptions work, and a bridge to broker 2 for the things' jobs, streams
 * and shadow topics) and broker 2 in federation/2/. The things are what
 * `otter thing create` makes on both; each thing's file names its first
 * broker (spread by name) and the other one to fail over to. The store is a
 * throwaway PostgreSQL server (OTTER_STORE, as an operator sets it). Three
 * instances connect to the hub, in the layout docs/SCALING.md gives for
 * production: one in role jobs (the Jobs API) and two in role streams, which
 * take the stream requests from $share/otter-streams/otter/$aws/things/....
 * FLEET (100) simulated devices run
 * real firmware and get one job for the large 1.1.0 image; while they download
 * it, one streams instance and broker 2 are killed with SIGKILL. Every device
 * must end SUCCEEDED on 1.1.0, the devices of broker 2 must have moved to the
 * hub, each streams instance must have served a part of the requests (the
 * split is printed), and the surviving one must have served requests after
 * the kill, every execution's history must be exact (QUEUED, IN_PROGRESS updates,
 * one SUCCEEDED, versions one apart, each recorded by a service instance; also
 * read through `otter job history`), and the block requests the devices sent
 * must have reached an instance but for at most one per device, and no retry
 * may go unanswered within one retry interval (the devices' retry watch,
 * docs/SCALING.md). The longest stall of a download and the request timeouts
 * are printed.
 *
 * The same set-up checks that devices cannot use the bridged topics: a
 * thing may neither subscribe to otter/# nor publish a request there for
 * another thing (the forged request reaches no instance).
 *
 * OTA_TEST_KEEP=1 keeps the temporary folder.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "device_fixture.h"
#include "ota_store.h"
#include "ota_test_pg.h"

#define FW_LARGE "otter-fw-1.1.0-large"
/* Devices: OTTER_SCALE_FLEET (up to SCALE_MAX), else SCALE_DEFAULT. */
#define SCALE_MAX 100
#define SCALE_DEFAULT 100
#define FLEET g_fleet
#define INSTANCES 3
#define KILLED 1 /* the instance killed mid-download (role streams) */
#define JOB_ID "e2e-scale"

typedef struct scale {
    fixture_t *f;
    ota_test_pg_t pg;
    int pg_up;
    ota_test_broker_t b2;           /* broker 2 of the federation (the hub is f->broker) */
    ota_test_proc_t svc[INSTANCES]; /* [0] role jobs, [1] and [2] role streams */
    char svc_log[INSTANCES][160];
    ota_test_proc_t fleet[SCALE_MAX];
} scale_t;

static scale_t g_scale;
static int g_fleet = SCALE_DEFAULT;

/* The stream requests an instance had served by its last stats line; -1 when none. */
static long served_in(const char *log)
{
    char tail[512];
    if (dfx_last_after(log, 0, "stats: stream_requests=", tail, sizeof tail) != 0) {
        return -1;
    }
    const char *p = strstr(tail, "stream_served=");
    return p != NULL ? strtol(p + strlen("stream_served="), NULL, 10) : -1;
}

static int start_instance(scale_t *s, int i)
{
    static const char *const roles[INSTANCES][6] = {
        {"--stats-interval", "1", "--role", "jobs", "--instance", "j1"},
        {"--stats-interval", "1", "--role", "streams", "--instance", "s1"},
        {"--stats-interval", "1", "--role", "streams", "--instance", "s2"},
    };
    const char *args[8] = {0};
    for (int k = 0; k < 6 && roles[i][k] != NULL; k++) {
        args[k] = roles[i][k];
    }
    snprintf(s->svc_log[i], sizeof s->svc_log[i], "%s/service-%d.log", s->f->dir, i);
    if (ota_test_service_start(&s->svc[i], s->f->dir, &s->f->broker, args, s->svc_log[i]) != 0) {
        fprintf(stderr, "otter-service %d did not get ready; see %s\n", i, s->svc_log[i]);
        return -1;
    }
    /* Ready means the probe came back through the bridge: the requests are shared. */
    if (i != 0 &&
        ota_test_log_wait(s->svc_log[i], 0, "streams shared in group otter-streams under otter/",
                          1000) != 0) {
        dfx_dump_log(s->svc_log[i]);
        fprintf(stderr, "otter-service %d does not share the stream requests\n", i);
        return -1;
    }
    return 0;
}

static int scale_setup(void **state)
{
    static char member[32];
    static const char *init_args[] = {"--shared-streams", "--federate", member, NULL};
    scale_t *s = &g_scale;
    fixture_t *f = calloc(1, sizeof *f);
    char dir2[600];
    memset(s, 0, sizeof *s);
    if (f == NULL) {
        return -1;
    }
    s->f = f;
    *state = s;
    if (ota_test_pg_start(&s->pg) != 0) {
        fprintf(stderr, "cannot start PostgreSQL\n");
        return -1;
    }
    s->pg_up = 1;
    setenv("OTTER_STORE", s->pg.url, 1);
    snprintf(member, sizeof member, "127.0.0.1:%d", ota_test_free_port());
    if (dfx_setup_broker(f, "/tmp/otter-scale-XXXXXX", init_args) != 0) {
        return -1;
    }
    snprintf(dir2, sizeof dir2, "%s/federation/2", f->dir);
    if (ota_test_broker_start_with(&s->b2, dir2, NULL) != 0) {
        fprintf(stderr, "broker 2 of the federation did not start; see %s/mosquitto.log\n", dir2);
        return -1;
    }
    /* The hub's bridge may have tried before broker 2 listened: wait for it, or the requests
     * of broker 2's devices sent before it connects reach nobody. */
    char log2[700];
    snprintf(log2, sizeof log2, "%s/mosquitto.log", dir2);
    if (ota_test_log_wait(log2, 0, "New bridge connected", 15000) != 0) {
        fprintf(stderr, "the hub's bridge did not reach broker 2; see %s\n", log2);
        return -1;
    }
    for (int i = 0; i < INSTANCES; i++) {
        if (start_instance(s, i) != 0) {
            return -1;
        }
    }
    return 0;
}

static int scale_teardown(void **state)
{
    scale_t *s = *state;
    dfx_stop_all(s->fleet, FLEET);
    dfx_stop_all(s->svc, INSTANCES);
    ota_test_broker_stop(&s->b2);
    int rc = dfx_teardown((void **)&s->f);
    if (s->pg_up) {
        ota_test_pg_stop(&s->pg);
    }
    unsetenv("OTTER_STORE");
    return rc;
}

/* Counts of one `otter job show`. 0 or -1. */
static int job_counts(fixture_t *f, int *succeeded, int *failed, int *seen)
{
    static char buf[1 << 16];
    char out[160];
    const char *args[] = {"job", "show", JOB_ID, NULL};
    *succeeded = *failed = *seen = 0;
    snprintf(out, sizeof out, "%s/job-show.txt", f->dir);
    unlink(out);
    if (dfx_run_cli(out, args) != 0 || dfx_read_text(out, buf, sizeof buf) != 0) {
        return -1;
    }
    for (const char *l = strstr(buf, "\n  unit"); l != NULL; l = strstr(l + 1, "\n  unit")) {
        char thing[64], st[64];
        if (sscanf(l, " %63s %63s", thing, st) == 2) {
            (*seen)++;
            *succeeded += strcmp(st, "SUCCEEDED") == 0;
            *failed += strcmp(st, "FAILED") == 0;
        }
    }
    return 0;
}

/* unit01 asks for a stream that does not exist; the answer within timeout_ms, or NULL. */
static ota_test_msg_t *ask_unit01(ota_test_client_t *c, const char *answers, int timeout_ms)
{
    assert_int_equal(
        ota_test_client_publish(c, "$aws/things/unit01/streams/x/describe/json", "{}", 2, 0), 0);
    return ota_test_client_expect(c, answers, timeout_ms);
}

/* A thing cannot subscribe to the bridged topics, nor forge a request there for another. */
static void check_bridged_topics_closed(scale_t *s)
{
    fixture_t *f = s->f;
    ota_test_client_t *attacker = ota_test_thing_connect(&f->broker, "unit00");
    ota_test_client_t *victim = ota_test_thing_connect(&f->broker, "unit01");
    static const char answers[] = "$aws/things/unit01/streams/+/+/json";
    ota_test_msg_t *m;
    assert_non_null(attacker);
    assert_non_null(victim);
    assert_true(ota_test_client_subscribe(attacker, "otter/#", 0) < 0);
    assert_true(ota_test_client_subscribe(attacker, "$share/x/otter/$aws/things/#", 0) < 0);
    assert_true(ota_test_client_subscribe(victim, answers, 0) >= 0);
    /* An instance that took a forged request would answer it to unit01 (no such stream). */
    for (int i = 0; i < 5; i++) {
        assert_int_equal(ota_test_client_publish(attacker,
                                                 "otter/$aws/things/unit01/streams/x/describe/json",
                                                 "{}", 2, 0),
                         0);
    }
    m = ota_test_client_expect(victim, answers, 2000);
    if (m != NULL) {
        ota_test_msg_free(m);
        fail_msg("a stream request forged under otter/ reached a service instance");
    }
    /* The same request on unit01's own topic goes through the bridge and is answered. */
    m = ask_unit01(victim, answers, 5000);
    assert_non_null(m);
    ota_test_msg_free(m);
    assert_true(ota_test_client_connected(attacker));
    ota_test_client_disconnect(attacker);
    ota_test_client_disconnect(victim);

    /* On broker 2 the thing has the same login and rules, and its request
     * crosses the hub's bridge to the service and the answer comes back
     * (once the bridge is up: the hub retries it every few seconds). */
    ota_test_login_t l;
    assert_int_equal(ota_test_thing_login(&f->broker, "unit01", &l), 0);
    victim = ota_test_login_connect(s->b2.port, &l, "unit01");
    attacker = ota_test_thing_connect(&f->broker, "unit00");
    assert_non_null(victim);
    assert_non_null(attacker);
    assert_true(ota_test_client_subscribe(victim, "$aws/things/unit00/#", 0) < 0);
    assert_true(ota_test_client_subscribe(victim, answers, 0) >= 0);
    m = NULL;
    for (int i = 0; i < 20 && m == NULL; i++) {
        m = ask_unit01(victim, answers, 1000);
    }
    if (m == NULL) {
        fail_msg("a request on broker 2 got no answer through the hub's bridge in 20 s");
    }
    ota_test_msg_free(m);
    /* Exactly one answer per request: no loop between the brokers. */
    dfx_sleep_ms(500);
    while ((m = ota_test_client_expect(victim, answers, 100)) != NULL) {
        ota_test_msg_free(m);
    }
    m = ask_unit01(victim, answers, 5000);
    assert_non_null(m);
    ota_test_msg_free(m);
    m = ota_test_client_expect(victim, answers, 1000);
    if (m != NULL) {
        ota_test_msg_free(m);
        fail_msg("one request on broker 2 was answered twice");
    }
    /* A second login with unit01's client id on the hub is refused and leaves this one up. */
    ota_test_login_t l0;
    assert_int_equal(ota_test_thing_login(&f->broker, "unit00", &l0), 0);
    assert_null(ota_test_client_connect(f->broker.port, "unit01", l0.username, l0.password));
    assert_null(ota_test_client_connect(s->b2.port, "unit01", l0.username, l0.password));
    assert_true(ota_test_client_connected(victim));
    ota_test_client_disconnect(attacker);
    ota_test_client_disconnect(victim);
}

/* The longest gap between two progress lines of a device's download, in s, and
 * its download's request timeouts ("download stats"); -1 when not found. */
static double longest_stall(const char *log, long *timeouts)
{
    static char buf[1 << 18];
    double prev = -1.0, worst = -1.0;
    *timeouts = -1;
    if (dfx_read_text(log, buf, sizeof buf) != 0) {
        return -1.0;
    }
    for (char *l = buf; l != NULL && *l != '\0';) {
        char *next = strchr(l, '\n');
        double t;
        if (next != NULL) {
            *next = '\0';
        }
        if (sscanf(l, "[%lf]", &t) == 1) {
            if (strstr(l, "downloading:") != NULL) {
                if (prev >= 0.0 && t - prev > worst) {
                    worst = t - prev;
                }
                prev = t;
            }
            const char *st = strstr(l, "download stats:");
            const char *to = st != NULL ? strstr(st, "requests, ") : NULL;
            if (to != NULL) {
                *timeouts = strtol(to + strlen("requests, "), NULL, 10);
                prev = -1.0;
            }
        }
        l = next != NULL ? next + 1 : NULL;
    }
    return worst;
}

/* One execution's history, checked as it goes (history_cb). */
typedef struct {
    int n;             /* entries seen */
    int64_t version;   /* the last entry's version */
    int terminal;      /* terminal entries seen */
    int in_progress;   /* IN_PROGRESS entries */
    int by_instance;   /* entries recorded by a service instance */
    char problem[160]; /* the first thing wrong, "" when none */
} history_t;

static int history_cb(void *ctx, const ota_store_exec_event_t *ev)
{
    history_t *h = ctx;
    const char *st = ota_store_exec_status_name((int)ev->status);
    if (h->problem[0] == '\0') {
        if (h->n == 0 && (ev->status != OTA_STORE_EXEC_QUEUED || ev->version_number != 1 ||
                          strcmp(ev->recorder, "otter-cli") != 0)) {
            snprintf(h->problem, sizeof h->problem, "starts with %s v%lld by '%s'", st,
                     (long long)ev->version_number, ev->recorder);
        } else if (h->n > 0 && ev->version_number != h->version + 1) {
            snprintf(h->problem, sizeof h->problem, "v%lld follows v%lld",
                     (long long)ev->version_number, (long long)h->version);
        } else if (h->terminal) {
            snprintf(h->problem, sizeof h->problem, "%s after the terminal status", st);
        } else if (h->n > 0 && ev->status != OTA_STORE_EXEC_IN_PROGRESS &&
                   ev->status != OTA_STORE_EXEC_SUCCEEDED) {
            snprintf(h->problem, sizeof h->problem, "%s v%lld", st, (long long)ev->version_number);
        } else if (h->n > 0 && strncmp(ev->recorder, "otter-service", 13) != 0) {
            snprintf(h->problem, sizeof h->problem, "%s v%lld recorded by '%s'", st,
                     (long long)ev->version_number, ev->recorder);
        }
    }
    h->n++;
    h->version = ev->version_number;
    h->terminal += ota_store_exec_status_is_terminal((int)ev->status);
    h->in_progress += ev->status == OTA_STORE_EXEC_IN_PROGRESS;
    h->by_instance += strncmp(ev->recorder, "otter-service", 13) == 0;
    return 0;
}

static int print_event(void *ctx, const ota_store_exec_event_t *ev)
{
    fprintf(stderr, "  %s: %s v%lld at %lld by %s %s\n", (const char *)ctx,
            ota_store_exec_status_name((int)ev->status), (long long)ev->version_number,
            (long long)ev->at_ms, ev->recorder, ev->status_details ? ev->status_details : "{}");
    return 0;
}

/* Prints the history of every execution that did not end SUCCEEDED (what went wrong). */
static void print_unsucceeded(scale_t *s, char names[][16])
{
    ota_store_t *store = NULL;
    if (ota_store_open(s->f->dir, &store) != OTA_STORE_OK) {
        return;
    }
    for (int i = 0; i < FLEET; i++) {
        ota_store_execution_t e;
        if (ota_store_execution_get(store, JOB_ID, names[i], &e) == OTA_STORE_OK &&
            e.status != OTA_STORE_EXEC_SUCCEEDED) {
            (void)ota_store_execution_history(store, JOB_ID, names[i], print_event, names[i]);
        }
        ota_store_execution_free(&e);
    }
    ota_store_close(store);
}

/*
 * Every execution's history is exact: QUEUED v1 (by the CLI that created the
 * job), then IN_PROGRESS updates, then one SUCCEEDED, versions one apart (no
 * change lost, none recorded twice), each recorded by a service instance,
 * and the last entry is the execution as it stands. Returns the entries in all.
 */
static long check_histories(scale_t *s, char names[][16])
{
    ota_store_t *store = NULL;
    long entries = 0;
    assert_int_equal(ota_store_open(s->f->dir, &store), OTA_STORE_OK);
    for (int i = 0; i < FLEET; i++) {
        history_t h;
        ota_store_execution_t e;
        memset(&h, 0, sizeof h);
        assert_int_equal(ota_store_execution_history(store, JOB_ID, names[i], history_cb, &h),
                         OTA_STORE_OK);
        assert_int_equal(ota_store_execution_get(store, JOB_ID, names[i], &e), OTA_STORE_OK);
        if (h.problem[0] == '\0' &&
            (h.terminal != 1 || h.in_progress < 1 || h.version != e.version_number ||
             e.status != OTA_STORE_EXEC_SUCCEEDED)) {
            snprintf(h.problem, sizeof h.problem,
                     "%d terminal, %d IN_PROGRESS entries, last v%lld, execution %s v%lld",
                     h.terminal, h.in_progress, (long long)h.version,
                     ota_store_exec_status_name((int)e.status), (long long)e.version_number);
        }
        ota_store_execution_free(&e);
        if (h.problem[0] != '\0') {
            ota_store_close(store);
            fail_msg("%s: execution history: %s", names[i], h.problem);
        }
        entries += h.n;
    }
    ota_store_close(store);
    /* What an operator sees: the same history through the CLI, as text and as JSON. */
    char out[160];
    static char buf[1 << 16];
    const char *text[] = {"job", "history", JOB_ID, names[0], NULL};
    const char *json[] = {"job", "history", JOB_ID, names[0], "--json", NULL};
    snprintf(out, sizeof out, "%s/job-history.txt", s->f->dir);
    unlink(out);
    assert_int_equal(dfx_run_cli(out, text), 0);
    assert_int_equal(dfx_read_text(out, buf, sizeof buf), 0);
    assert_non_null(strstr(buf, "QUEUED      v1   otter-cli"));
    assert_non_null(strstr(buf, "SUCCEEDED"));
    unlink(out);
    assert_int_equal(dfx_run_cli(out, json), 0);
    assert_int_equal(dfx_read_text(out, buf, sizeof buf), 0);
    assert_non_null(strstr(buf, "\"history\":[{\"status\":\"QUEUED\",\"versionNumber\":1"));
    assert_non_null(strstr(buf, "\"recordedBy\":\"otter-service"));
    return entries;
}

/* A device's retry watch ("retry watch: R retries, U unanswered ..."); 0, or -1 when absent. */
static int retry_watch(const char *log, long *retries, long *unanswered, long *silence_ms)
{
    char tail[256];
    if (dfx_last_after(log, 0, "retry watch: ", tail, sizeof tail) != 0 ||
        sscanf(tail, "%ld retries, %ld unanswered", retries, unanswered) != 2) {
        return -1;
    }
    const char *p = strstr(tail, "broker up ");
    *silence_ms = p != NULL ? strtol(p + strlen("broker up "), NULL, 10) : -1;
    return 0;
}

static void test_scale_out_streams(void **state)
{
    scale_t *s = *state;
    fixture_t *f = s->f;
    static char targets[SCALE_MAX * 8];
    const char *create[16];
    static char names[SCALE_MAX][16]; /* printed as %.15s, their bound, for -Wformat-truncation */
    char fw[256], path[160], conf[160], log[160], thing_file[64];
    long at_kill[INSTANCES], final[INSTANCES];
    int succeeded = 0, failed = 0, seen = 0;
    double t_kill = -1.0, secs;
    struct timespec t0;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    targets[0] = '\0';
    for (int i = 0; i < FLEET; i++) {
        snprintf(names[i], sizeof names[i], "unit%02d", i);
        snprintf(targets + strlen(targets), sizeof targets - strlen(targets), "%s%.15s",
                 i > 0 ? "," : "", names[i]);
    }
    /* `thing create` with 10 names at a time (the CLI runner passes up to 30 arguments). */
    for (int i = 0; i < FLEET; i += 10) {
        int n = 0;
        create[n++] = "thing";
        create[n++] = "create";
        for (int k = i; k < i + 10 && k < FLEET; k++) {
            create[n++] = names[k];
        }
        create[n] = NULL;
        assert_int_equal(dfx_run_cli(f->cli_log, create), 0);
    }
    check_bridged_topics_closed(s);
    for (int i = 0; i < FLEET; i++) {
        snprintf(conf, sizeof conf, "%s/%.15s.conf", f->dir, names[i]);
        snprintf(path, sizeof path, "%s/%.15s.flash", f->dir, names[i]);
        snprintf(log, sizeof log, "%s/%.15s.log", f->dir, names[i]);
        snprintf(thing_file, sizeof thing_file, "things/%.15s.json", names[i]);
        /* The brokers come from the thing file (its first one, then the other).
         * No slow link: a hundred devices downloading at once keep the service
         * busy for several seconds, so the kills land in the middle; a link
         * slowed in the device (block_delay_ms) only adds queueing of its own
         * that the retry watch would count. The self-test waits for its job document as
         * long as a device does by default (16 s; the reset delay is the other end-to-end
         * tests' 200 ms). */
        FILE *fp = fopen(conf, "w");
        assert_non_null(fp);
        fprintf(fp,
                "thing_file = %s\ncodesign_cert = keys/codesign.crt\n"
                "reset_delay_ms = 200\n",
                thing_file);
        assert_int_equal(fclose(fp), 0);
        assert_int_equal(
            dfx_start_device_group(&s->fleet[i], path, conf, log, "otter-fw-1.0.0", "1.0.0", 0), 0);
    }
    char on_b2[64];
    int n_b2 = 0;
    snprintf(on_b2, sizeof on_b2, "connected to 127.0.0.1:%d ", s->b2.port);
    for (int i = 0; i < FLEET; i++) {
        snprintf(log, sizeof log, "%s/%.15s.log", f->dir, names[i]);
        if (ota_test_log_wait(log, 0, "INFO agent started", 60000) != 0) {
            dfx_dump_log(log);
            fail_msg("%s did not start its agent", names[i]);
        }
        n_b2 += dfx_count_from(log, 0, on_b2) > 0;
    }
    fprintf(stderr, "e2e_scale_out_streams: %d of %d devices on broker 2\n", n_b2, FLEET);
    /* The things' files spread them over both brokers. */
    assert_true(n_b2 > 0 && n_b2 < FLEET);
    fprintf(stderr, "e2e_scale_out_streams: %d devices up in %.2f s\n", FLEET, dfx_since_s(&t0));

    dfx_fw_path(fw, sizeof fw, FW_LARGE);
    {
        const char *args[] = {"job",      "create",    "--file", fw,      "--version",
                              "1.1.0",    "--targets", targets,  "--key", f->key,
                              "--job-id", JOB_ID,      NULL};
        clock_gettime(CLOCK_MONOTONIC, &f->t_job);
        if (dfx_run_cli(f->cli_log, args) != 0) {
            dfx_dump_log(f->cli_log);
            fail_msg("otter job create failed");
        }
    }
    /* Mid-download: as soon as the instance to kill has served a few requests. Its count is
     * its last stats line (one a second), so it is killed the moment a line showing them
     * appears (the log polled every millisecond): the count then misses only the requests it
     * served in those milliseconds, and the kill comes at most a second after its first
     * requests (a hundred devices download in about two seconds here). */
    for (long seen_size = -1;;) {
        long size = ota_test_log_size(s->svc_log[KILLED]);
        if (size != seen_size) {
            seen_size = size;
            if (served_in(s->svc_log[KILLED]) >= 3) {
                break;
            }
        }
        if (dfx_since_s(&f->t_job) > 40.0) {
            dfx_dump_log(s->svc_log[KILLED]);
            fail_msg("instance %d served no stream request within 40 s", KILLED);
        }
        dfx_sleep_ms(1);
    }
    ota_test_proc_kill(&s->svc[KILLED]);
    ota_test_proc_kill(&s->b2.proc);
    t_kill = dfx_since_s(&f->t_job);
    for (int i = 0; i < INSTANCES; i++) {
        at_kill[i] = served_in(s->svc_log[i]);
    }
    assert_int_equal(job_counts(f, &succeeded, &failed, &seen), 0);
    fprintf(
        stderr,
        "e2e_scale_out_streams: instance %d and broker 2 killed (SIGKILL) at %.2f s (as soon as "
        "a stats line of instance %d showed 3 requests served), %d of %d devices SUCCEEDED "
        "then\n",
        KILLED, t_kill, KILLED, succeeded, FLEET);
    assert_true(succeeded < FLEET);

    for (;;) {
        if (job_counts(f, &succeeded, &failed, &seen) == 0 && seen == FLEET &&
            succeeded + failed == FLEET) {
            break;
        }
        if (dfx_since_s(&f->t_job) > 240.0) {
            print_unsucceeded(s, names);
            fail_msg("the job did not finish: %d SUCCEEDED, %d FAILED of %d", succeeded, failed,
                     FLEET);
        }
        dfx_sleep_ms(250);
    }
    secs = dfx_since_s(&f->t_job);
    /* The survivors' final stats lines, then the split. */
    for (int i = 0; i < INSTANCES; i++) {
        if (i != KILLED) {
            long from = ota_test_log_size(s->svc_log[i]);
            ota_test_proc_stop(&s->svc[i]);
            /* its last stats line (a periodic one may come just before it) */
            assert_true(dfx_count_from(s->svc_log[i], from, "stats: stream_requests=") >= 1);
        }
        final[i] = served_in(s->svc_log[i]);
    }
    fprintf(stderr,
            "e2e_scale_out_streams: %d SUCCEEDED, %d FAILED in %.2f s; stream requests served: "
            "streams-s1 %ld (killed at %.2f s; its last stats line), streams-s2 %ld, of which "
            "%ld after the kill\n",
            succeeded, failed, secs, final[1], t_kill, final[2], final[2] - at_kill[2]);
    if (succeeded != FLEET) {
        print_unsucceeded(s, names);
    }
    assert_int_equal(succeeded, FLEET);
    /* The jobs instance serves no stream request; each streams instance served a part. */
    assert_int_equal(final[0], 0);
    assert_true(final[1] > 0 && final[2] > 0);
    /* The downloads went on after the kill, on the surviving instance. */
    assert_true(final[2] - at_kill[2] > 0);
    /* Every device of broker 2 moved to the hub; how long downloads stalled. */
    char moved_to[80];
    int moved = 0;
    long timeouts_sum = 0, timeouts_max = 0;
    double stall_max = 0.0;
    snprintf(moved_to, sizeof moved_to, "; trying 127.0.0.1:%d", f->broker.port);
    for (int i = 0; i < FLEET; i++) {
        long to;
        snprintf(log, sizeof log, "%s/%.15s.log", f->dir, names[i]);
        moved += dfx_count_from(log, 0, moved_to) > 0;
        double st = longest_stall(log, &to);
        stall_max = st > stall_max ? st : stall_max;
        timeouts_sum += to > 0 ? to : 0;
        timeouts_max = to > timeouts_max ? to : timeouts_max;
    }
    fprintf(stderr,
            "e2e_scale_out_streams: %d devices failed over to the hub; longest stall of a "
            "download %.2f s; request timeouts %ld in all, at most %ld on one device\n",
            moved, stall_max, timeouts_sum, timeouts_max);
    assert_true(moved > 0);
    /* The retry bound (docs/SCALING.md, "The retry bound"): a request lost with the instance
     * or the broker is asked again after one retry interval, and that retry is answered
     * before the interval (doubled) runs out again: no retry goes unanswered. */
    long retries = 0, unanswered = 0, silence_max = 0;
    int unanswered_devices = 0;
    for (int i = 0; i < FLEET; i++) {
        long r = 0, u = 0, sil = 0;
        snprintf(log, sizeof log, "%s/%.15s.log", f->dir, names[i]);
        if (retry_watch(log, &r, &u, &sil) != 0) {
            dfx_dump_log(log);
            fail_msg("%s logged no retry watch", names[i]);
        }
        retries += r;
        unanswered += u;
        unanswered_devices += u > 0;
        silence_max = sil > silence_max ? sil : silence_max;
    }
    fprintf(stderr,
            "e2e_scale_out_streams: retries %ld, unanswered within one retry interval %ld (on %d "
            "devices); longest silence with the broker up %.2f s\n",
            retries, unanswered, unanswered_devices, (double)silence_max / 1000.0);
    if (unanswered > 0) {
        fail_msg("%ld retries on %d devices went unanswered within one retry interval (the "
                 "devices' logs say which: \"the retry before went unanswered\"; "
                 "docs/SCALING.md)",
                 unanswered, unanswered_devices);
    }
    for (int i = 0; i < FLEET; i++) {
        dfx_expect_committed(f, names[i], "1.1.0");
    }
    long entries = check_histories(s, names);
    fprintf(stderr,
            "e2e_scale_out_streams: %d execution histories exact (%ld entries; QUEUED, "
            "IN_PROGRESS.., one SUCCEEDED)\n",
            FLEET, entries);
    /* Requests lost on the way: what the devices sent against what reached an instance (the
     * killed one's count is its stats line seen just before the kill). A request is lost with
     * the killed instance or broker only while it is in flight at the kill: at most one window
     * per device; a path that drops requests (a dead share-group member still handed some)
     * loses far more. */
    long sent = 0, reached = final[0] + final[1] + final[2], received = 0, duplicates = 0;
    for (int i = 0; i < FLEET; i++) {
        char tail[256];
        long n_rec = 0, n_res = 0, n_dup = 0, n_req = 0;
        snprintf(log, sizeof log, "%s/%.15s.log", f->dir, names[i]);
        if (dfx_last_after(log, 0, "download stats: ", tail, sizeof tail) == 0 &&
            sscanf(tail, "%ld blocks received, %ld resumed, %ld duplicates, %ld requests", &n_rec,
                   &n_res, &n_dup, &n_req) != 4) {
            n_rec = n_dup = n_req = 0;
        }
        sent += n_req;
        received += n_rec;
        duplicates += n_dup;
    }
    fprintf(
        stderr,
        "e2e_scale_out_streams: block requests sent %ld, served by an instance %ld (lost %ld)\n",
        sent, reached, sent - reached);
    assert_true(sent > 0 && sent - reached <= FLEET);
    /* No congestion collapse: a timeout asks for one block alone unless blocks are lost, so
     * late answers are mostly not asked for again. Measured: 1 to 3 % duplicates with room
     * to spare, up to 25 % on a 2-core machine with a load of 18 (asking for the window again
     * on every timeout: 34 % at a load of 15 to 20). Asserted: at most half. */
    fprintf(stderr, "e2e_scale_out_streams: blocks received %ld new, %ld duplicates\n", received,
            duplicates);
    if (duplicates * 2 > received) {
        fail_msg("%ld duplicate blocks for %ld new ones: more than half", duplicates, received);
    }
}

int main(void)
{
    const char *n = getenv("OTTER_SCALE_FLEET");
    if (n != NULL) {
        g_fleet = atoi(n);
        if (g_fleet < 4 || g_fleet > SCALE_MAX) {
            fprintf(stderr, "OTTER_SCALE_FLEET: give 4 to %d devices\n", SCALE_MAX);
            return 1;
        }
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scale_out_streams, scale_setup, scale_teardown),
    };
    if (access(OTTER_TEST_CLI_BIN, X_OK) != 0 || access(OTTER_TEST_DEVICE_BIN, X_OK) != 0) {
        fprintf(stderr, "build the otter, otter-service, otter-device and otter-fw-* targets\n");
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
