/*
 * Nothing acknowledged is lost: many devices send bursts of job execution
 * updates (QoS 1) through a real Mosquitto to the real otter-service while
 * the service is killed with SIGKILL and started again, and, separately,
 * while the broker is restarted. Every update the broker acknowledged to its
 * device (PUBACK) must be applied exactly once and answered (accepted, with
 * its client token), and no update may be refused.
 *
 * The broker runs the configuration `otter broker init` writes (persistence
 * on); the devices log in with the logins `otter thing create` made. They
 * are libmosquitto clients with persistent sessions (their
 * answers wait in the broker while they are away). A device whose connection
 * drops gets a new client: an update whose PUBACK it did not see is never
 * sent again, so each update reaches the broker at most once, and those the
 * broker acknowledged exactly once.
 *
 * Each update asks for the execution state, so the test can count what was
 * applied: the execution's final versionNumber must be 1 + the number of
 * distinct updates answered as accepted, and every acknowledged update must
 * be among them.
 */
#define _GNU_SOURCE

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <ftw.h>
#include <mosquitto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ota_store.h"
#include "ota_test_net.h"

#define N_DEV 20
#define N_UPD 40
#define ROUND_MS 20

typedef struct device {
    char name[32];
    ota_test_login_t login; /* its broker login, made by `otter thing create` */
    struct mosquitto *m;
    pthread_mutex_t mu;
    int connected;
    int mid[N_UPD + 1];      /* packet id of update k in the current client, 0 if none */
    int acked[N_UPD + 1];    /* the broker acknowledged update k */
    int sent[N_UPD + 1];     /* update k was handed to a client */
    int accepted[N_UPD + 1]; /* accepted answers with token k */
    int rejected;
    int clients;
} device_t;

typedef struct fx {
    char tmp[128];
    char data[192];
    char log[192];
    ota_test_broker_t broker;
    ota_test_proc_t service;
    device_t dev[N_DEV];
    volatile int round; /* rounds of updates sent so far */
    int64_t t0;
} fx_t;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
    device_t *d = obj;
    char filter[96];
    if (rc != 0) {
        return;
    }
    snprintf(filter, sizeof filter, "$aws/things/%s/jobs/job-1/update/+", d->name);
    mosquitto_subscribe(m, NULL, filter, 1);
    pthread_mutex_lock(&d->mu);
    d->connected = 1;
    pthread_mutex_unlock(&d->mu);
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc)
{
    device_t *d = obj;
    (void)m;
    (void)rc;
    pthread_mutex_lock(&d->mu);
    d->connected = 0;
    pthread_mutex_unlock(&d->mu);
}

static void on_publish(struct mosquitto *m, void *obj, int mid)
{
    device_t *d = obj;
    (void)m;
    pthread_mutex_lock(&d->mu);
    for (int k = 1; k <= N_UPD; k++) {
        if (d->mid[k] == mid) {
            d->acked[k] = 1;
            d->mid[k] = 0;
        }
    }
    pthread_mutex_unlock(&d->mu);
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    device_t *d = obj;
    (void)m;
    cJSON *j = cJSON_ParseWithLength(msg->payload, (size_t)msg->payloadlen);
    cJSON *tok = cJSON_GetObjectItemCaseSensitive(j, "clientToken");
    size_t tl = strlen(msg->topic);
    pthread_mutex_lock(&d->mu);
    if (tl > 9 && strcmp(msg->topic + tl - 9, "/accepted") == 0 && cJSON_IsString(tok)) {
        int k = atoi(tok->valuestring);
        if (k >= 1 && k <= N_UPD) {
            d->accepted[k]++;
        }
    } else if (tl > 9 && strcmp(msg->topic + tl - 9, "/rejected") == 0) {
        d->rejected++;
        fprintf(stderr, "%s: rejected: %.*s\n", d->name, msg->payloadlen, (char *)msg->payload);
    }
    pthread_mutex_unlock(&d->mu);
    cJSON_Delete(j);
}

/* A new client for the device (a persistent session under its thing name). */
static void dev_connect(fx_t *fx, device_t *d)
{
    if (d->m != NULL) {
        mosquitto_disconnect(d->m);
        mosquitto_loop_stop(d->m, true);
        mosquitto_destroy(d->m);
        /* what the old client had not seen acknowledged is never sent again */
        for (int k = 1; k <= N_UPD; k++) {
            d->mid[k] = 0;
        }
    }
    d->connected = 0;
    d->clients++;
    d->m = mosquitto_new(d->login.client_id, false, d);
    assert_non_null(d->m);
    assert_int_equal(mosquitto_username_pw_set(d->m, d->login.username, d->login.password),
                     MOSQ_ERR_SUCCESS);
    mosquitto_connect_callback_set(d->m, on_connect);
    mosquitto_disconnect_callback_set(d->m, on_disconnect);
    mosquitto_publish_callback_set(d->m, on_publish);
    mosquitto_message_callback_set(d->m, on_message);
    /* The driver replaces a dropped client itself (no resend of unacknowledged updates). */
    mosquitto_reconnect_delay_set(d->m, 600, 600, false);
    mosquitto_connect_async(d->m, "127.0.0.1", fx->broker.port, 30);
    mosquitto_loop_start(d->m);
}

static int dev_wait_connected(device_t *d, int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        pthread_mutex_lock(&d->mu);
        int c = d->connected;
        pthread_mutex_unlock(&d->mu);
        if (c) {
            return 1;
        }
        usleep(10000);
    }
    return 0;
}

/* Sends update k of every device, round after round; a dropped device gets a new client. */
static void *driver(void *arg)
{
    fx_t *fx = arg;
    for (int k = 1; k <= N_UPD; k++) {
        for (int i = 0; i < N_DEV; i++) {
            device_t *d = &fx->dev[i];
            pthread_mutex_lock(&d->mu);
            int c = d->connected;
            pthread_mutex_unlock(&d->mu);
            if (!c) {
                dev_connect(fx, d);
                if (!dev_wait_connected(d, 3000)) {
                    continue; /* not sent: not counted */
                }
            }
            char topic[96], payload[160];
            snprintf(topic, sizeof topic, "$aws/things/%s/jobs/job-1/update", d->name);
            snprintf(payload, sizeof payload,
                     "{\"status\":\"IN_PROGRESS\",\"statusDetails\":{\"step\":\"%d\"},"
                     "\"clientToken\":\"%d\",\"includeJobExecutionState\":true}",
                     k, k);
            int mid = 0;
            pthread_mutex_lock(&d->mu);
            if (mosquitto_publish(d->m, &mid, topic, (int)strlen(payload), payload, 1, false) ==
                MOSQ_ERR_SUCCESS) {
                d->mid[k] = mid;
                d->sent[k] = 1;
            }
            pthread_mutex_unlock(&d->mu);
        }
        fx->round = k;
        usleep(ROUND_MS * 1000);
    }
    return NULL;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    snprintf(fx->tmp, sizeof fx->tmp, "/tmp/otter-jobs-sessions-XXXXXX");
    assert_non_null(mkdtemp(fx->tmp));
    snprintf(fx->data, sizeof fx->data, "%s/data", fx->tmp);
    snprintf(fx->log, sizeof fx->log, "%s/service.log", fx->tmp);
    /* The broker `otter broker init` sets up in the data folder (persistence on), and the
     * things' logins `otter thing create` makes. */
    assert_int_equal(mkdir(fx->data, 0700), 0);
    assert_int_equal(ota_test_broker_start(&fx->broker, fx->data), 0);
    const char *names[N_DEV + 1];
    for (int i = 0; i < N_DEV; i++) {
        device_t *d = &fx->dev[i];
        snprintf(d->name, sizeof d->name, "dev%02d", i);
        pthread_mutex_init(&d->mu, NULL);
        names[i] = d->name;
    }
    names[N_DEV] = NULL;
    assert_int_equal(ota_test_things_create(&fx->broker, names), 0);
    for (int i = 0; i < N_DEV; i++) {
        assert_int_equal(ota_test_thing_login(&fx->broker, names[i], &fx->dev[i].login), 0);
    }
    ota_store_t *st;
    assert_int_equal(ota_store_open(fx->data, &st), OTA_STORE_OK);
    int64_t now = ota_store_now_ms();
    ota_store_stream_file_t f = {0, "/tmp/unused.bin", 1000};
    assert_int_equal(ota_store_stream_create(st, "AFR_OTA-s", "fw", &f, 1, now), OTA_STORE_OK);
    ota_store_job_spec_t spec = {0};
    spec.job_id = "job-1";
    spec.document = "{\"afr_ota\":{}}";
    spec.stream_id = "AFR_OTA-s";
    spec.things = names;
    spec.n_things = N_DEV;
    assert_int_equal(ota_store_job_create(st, &spec, now), OTA_STORE_OK);
    ota_store_close(st);
    assert_int_equal(ota_test_service_start(&fx->service, fx->data, &fx->broker, NULL, fx->log), 0);
    for (int i = 0; i < N_DEV; i++) {
        dev_connect(fx, &fx->dev[i]);
    }
    for (int i = 0; i < N_DEV; i++) {
        assert_true(dev_wait_connected(&fx->dev[i], 5000));
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    for (int i = 0; i < N_DEV; i++) {
        if (fx->dev[i].m != NULL) {
            mosquitto_disconnect(fx->dev[i].m);
            mosquitto_loop_stop(fx->dev[i].m, true);
            mosquitto_destroy(fx->dev[i].m);
        }
        pthread_mutex_destroy(&fx->dev[i].mu);
    }
    if (fx->service.pid) {
        ota_test_proc_stop(&fx->service);
    }
    ota_test_broker_stop(&fx->broker);
    if (getenv("OTA_TEST_KEEP") == NULL) {
        nftw(fx->tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    } else {
        fprintf(stderr, "kept %s\n", fx->tmp);
    }
    free(fx);
    return 0;
}

/* Reads "key=N" from the last "stats:" line of the service log; -1 if absent. */
static long long log_stat(const char *path, const char *key)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    long long v = -1;
    char pat[64];
    snprintf(pat, sizeof pat, " %s=", key);
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        char *p = strstr(line, "stats:") ? strstr(line, pat) : NULL;
        if (p != NULL) {
            v += (v < 0 ? 1 : 0) + atoll(p + strlen(pat));
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return v;
}

/* Runs the bursts with `disrupt` at a third of them; checks and prints the outcome. */
static void run_bursts(fx_t *fx, const char *name, void (*disrupt)(fx_t *))
{
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, driver, fx), 0);
    while (fx->round < N_UPD / 3) {
        usleep(5000);
    }
    disrupt(fx);
    pthread_join(th, NULL);

    /* Wait for the answers of everything acknowledged (the service catches up). */
    int64_t end = now_ms() + 30000;
    for (;;) {
        int missing = 0;
        for (int i = 0; i < N_DEV; i++) {
            device_t *d = &fx->dev[i];
            pthread_mutex_lock(&d->mu);
            for (int k = 1; k <= N_UPD; k++) {
                missing += d->acked[k] && d->accepted[k] == 0;
            }
            pthread_mutex_unlock(&d->mu);
        }
        if (missing == 0 || now_ms() > end) {
            break;
        }
        usleep(50000);
    }
    usleep(1000 * 1000); /* late duplicates, if any, arrive too */
    assert_int_equal(ota_test_proc_stop(&fx->service), 0);

    ota_store_t *st;
    assert_int_equal(ota_store_open(fx->data, &st), OTA_STORE_OK);
    long acked = 0, unacked = 0, answered = 0, lost = 0, twice = 0, rejected = 0;
    for (int i = 0; i < N_DEV; i++) {
        device_t *d = &fx->dev[i];
        ota_store_execution_t e;
        assert_int_equal(ota_store_execution_get(st, "job-1", d->name, &e), OTA_STORE_OK);
        int applied = 0, last = 0;
        pthread_mutex_lock(&d->mu);
        for (int k = 1; k <= N_UPD; k++) {
            acked += d->acked[k];
            unacked += d->sent[k] && !d->acked[k];
            if (d->accepted[k] > 0) {
                applied++;
                last = k;
            }
            if (d->acked[k] && d->accepted[k] == 0) {
                lost++;
                fprintf(stderr, "%s: update %d acknowledged by the broker, never answered\n",
                        d->name, k);
            }
        }
        rejected += d->rejected;
        pthread_mutex_unlock(&d->mu);
        answered += applied;
        /* Each update applied once: the version counts exactly the answered updates. */
        if (e.version_number != 1 + applied) {
            fprintf(stderr, "%s: version %lld after %d distinct accepted updates\n", d->name,
                    (long long)e.version_number, applied);
            twice += e.version_number > 1 + applied ? e.version_number - 1 - applied : 0;
            lost += e.version_number < 1 + applied ? 1 + applied - e.version_number : 0;
        }
        char want[64];
        snprintf(want, sizeof want, "{\"step\":\"%d\"}", last);
        if (last > 0 && (e.status_details == NULL || strcmp(e.status_details, want) != 0)) {
            fprintf(stderr, "%s: details %s, last accepted update %d\n", d->name,
                    e.status_details ? e.status_details : "(none)", last);
            lost++;
        }
        ota_store_execution_free(&e);
    }
    ota_store_close(st);
    printf("%s: %d devices x %d updates: %ld acknowledged by the broker, %ld sent but not "
           "acknowledged (connection lost), %ld applied and answered, %lld delivered again to "
           "the service and answered without a change, %lld answers sent again from the "
           "service's outbox\n",
           name, N_DEV, N_UPD, acked, unacked, answered, log_stat(fx->log, "redelivered"),
           log_stat(fx->log, "answers_resent"));
    printf("security: %s: attacks=0 refused=0 honest_answered=%ld updates_lost=%ld\n", name,
           answered, lost + twice);
    assert_int_equal(lost, 0);
    assert_int_equal(twice, 0);
    assert_int_equal(rejected, 0);
    assert_true(acked > N_DEV * N_UPD / 2);
}

static void kill_and_restart_service(fx_t *fx)
{
    assert_true(ota_test_proc_kill(&fx->service) > 0);
    usleep(300 * 1000); /* updates keep coming meanwhile */
    assert_int_equal(ota_test_service_start(&fx->service, fx->data, &fx->broker, NULL, fx->log), 0);
}

static void restart_broker(fx_t *fx)
{
    assert_int_equal(ota_test_broker_restart(&fx->broker), 0);
}

static void test_service_killed_during_bursts(void **state)
{
    fx_t *fx = *state;
    run_bursts(fx, "service_kill9", kill_and_restart_service);
    /* the broker stayed up: every update was acknowledged */
    for (int i = 0; i < N_DEV; i++) {
        for (int k = 1; k <= N_UPD; k++) {
            assert_true(fx->dev[i].acked[k]);
        }
    }
}

static void test_broker_restarted_during_bursts(void **state)
{
    fx_t *fx = *state;
    run_bursts(fx, "broker_restart", restart_broker);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_service_killed_during_bursts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_restarted_during_bursts, setup, teardown),
    };
    mosquitto_lib_init();
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    mosquitto_lib_cleanup();
    return rc;
}
