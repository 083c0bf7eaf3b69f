/*
 * otter TEST SUPPORT ONLY: end-to-end fixtures for otter-service's streams.
 */
#define _GNU_SOURCE
#include "ota_svc_test_fixture.h"

#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cbor.h>
#include <mosquitto.h>

#include "ota_store.h"
#include "ota_test_util.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* -------------------------------------------------------------- fixture -- */

static int write_all(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        return -1;
    }
    size_t n = fwrite(data, 1, len, f);
    return fclose(f) == 0 && n == len ? 0 : -1;
}

static int populate(svc_fx_t *fx, const char *file_path, const char *store)
{
    ota_store_t *st = NULL;
    ota_store_file_t file;
    int64_t now = ota_store_now_ms();
    char **names = NULL;
    char doc[1024];
    int rc;

    if (ota_store_open_at(fx->data_dir, store, &st) != OTA_STORE_OK) {
        fprintf(stderr, "fixture: cannot open the store in %s\n", fx->data_dir);
        return -1;
    }
#define CHECK(call)                                                                                \
    do {                                                                                           \
        rc = (call);                                                                               \
        if (rc != OTA_STORE_OK) {                                                                  \
            fprintf(stderr, "fixture: %s: %s (%s)\n", #call, ota_store_rc_name(rc),                \
                    ota_store_errmsg(st));                                                         \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)
    CHECK(ota_store_file_import(st, file_path, &file));
    ota_store_stream_file_t sf = {0, file.path, file.size};
    CHECK(
        ota_store_stream_create(st, fx->stream_id, "firmware for the streams tests", &sf, 1, now));
    names = calloc((size_t)fx->n_things, sizeof(*names));
    for (int i = 0; i < fx->n_things; i++) {
        names[i] = malloc(32);
        snprintf(names[i], 32, "dev-%d", i);
        CHECK(ota_store_thing_create(st, names[i], now));
    }
    CHECK(ota_store_thing_create(st, "intruder", now));
    snprintf(doc, sizeof(doc),
             "{\"afr_ota\":{\"protocols\":[\"MQTT\"],\"streamname\":\"%s\",\"files\":[{"
             "\"filepath\":\"firmware.bin\",\"filesize\":%zu,\"fileid\":0,\"certfile\":null,"
             "\"fileType\":0,\"update_data_url\":null,\"auth_scheme\":null,"
             "\"sig-sha256-ecdsa\":\"AA==\"}]}}",
             fx->stream_id, fx->file_size);
    ota_store_job_spec_t spec;
    memset(&spec, 0, sizeof(spec));
    spec.job_id = "streams-test-job";
    spec.document = doc;
    spec.stream_id = fx->stream_id;
    spec.things = (const char *const *)names;
    spec.n_things = (size_t)fx->n_things;
    CHECK(ota_store_job_create(st, &spec, now));
#undef CHECK
    for (int i = 0; i < fx->n_things; i++) {
        free(names[i]);
    }
    free(names);
    ota_store_close(st);
    return 0;
fail:
    if (names != NULL) {
        for (int i = 0; i < fx->n_things; i++) {
            free(names[i]);
        }
        free(names);
    }
    ota_store_close(st);
    return -1;
}

int svc_fx_setup(svc_fx_t *fx, size_t file_size, int n_things)
{
    return svc_fx_setup_store(fx, file_size, n_things, NULL);
}

int svc_fx_setup_store(svc_fx_t *fx, size_t file_size, int n_things, const char *store)
{
    return svc_fx_setup_broker(fx, file_size, n_things, store, NULL);
}

int svc_fx_setup_broker(svc_fx_t *fx, size_t file_size, int n_things, const char *store,
                        const char *const *init_args)
{
    char file_path[256];
    uint32_t x = 0x5eed1234u ^ (uint32_t)file_size;

    memset(fx, 0, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/otter-svc-test-XXXXXX");
    if (mkdtemp(fx->dir) == NULL) {
        return -1;
    }
    snprintf(fx->data_dir, sizeof(fx->data_dir), "%s/data", fx->dir);
    snprintf(file_path, sizeof(file_path), "%s/firmware.bin", fx->dir);
    snprintf(fx->stream_id, sizeof(fx->stream_id), "AFR_OTA-0f3c6a0e-test-stream");
    fx->n_things = n_things;
    fx->file_size = file_size;
    fx->file = malloc(file_size);
    for (size_t i = 0; i < file_size; i++) {
        x = x * 1664525u + 1013904223u;
        fx->file[i] = (uint8_t)(x >> 24);
    }
    if (write_all(file_path, fx->file, file_size) != 0 || populate(fx, file_path, store) != 0) {
        return -1;
    }
    /* With init_args the broker is set up in the service's data folder, whose
     * broker/service.credentials the instances read. */
    if ((init_args == NULL
             ? ota_test_broker_start(&fx->broker, NULL)
             : ota_test_broker_start_with(&fx->broker, fx->data_dir, init_args)) != 0) {
        fprintf(stderr, "fixture: cannot start mosquitto\n");
        return -1;
    }
    /* The things' broker logins, made by `otter thing create` in one call. */
    const char **logins = calloc((size_t)n_things + 2, sizeof(*logins));
    char(*names)[32] = calloc((size_t)n_things, sizeof(*names));
    int rc = logins != NULL && names != NULL ? 0 : -1;
    for (int i = 0; rc == 0 && i < n_things; i++) {
        snprintf(names[i], sizeof(names[i]), "dev-%d", i);
        logins[i] = names[i];
    }
    if (rc == 0) {
        logins[n_things] = "intruder";
        rc = ota_test_things_create(&fx->broker, logins);
    }
    free(logins);
    free(names);
    return rc;
}

int svc_fx_start_service(svc_fx_t *fx, const char *const *extra_args)
{
    const char *args[32];
    char id[32];
    size_t n = 0;
    int idx = fx->n_svc;

    if (idx >= SVC_FX_MAX_SERVICES) {
        return -1;
    }
    snprintf(id, sizeof(id), "svc-%d", idx);
    args[n++] = "--client-id";
    args[n++] = id;
    for (size_t i = 0; extra_args != NULL && extra_args[i] != NULL && n < 30; i++) {
        args[n++] = extra_args[i];
    }
    args[n] = NULL;
    snprintf(fx->svc_log[idx], sizeof(fx->svc_log[idx]), "%s/service-%d.log", fx->dir, idx);
    if (ota_test_service_start(&fx->svc[idx], fx->data_dir, &fx->broker, args, fx->svc_log[idx]) !=
        0) {
        fprintf(stderr, "fixture: otter-service %d did not become ready\n", idx);
        fx->n_svc++;
        svc_fx_dump_log(fx, idx);
        return -1;
    }
    fx->n_svc++;
    return idx;
}

int svc_fx_stop_service(svc_fx_t *fx, int index)
{
    return ota_test_proc_stop(&fx->svc[index]);
}

void svc_fx_teardown(svc_fx_t *fx)
{
    for (int i = 0; i < fx->n_svc; i++) {
        if (fx->svc[i].pid > 0) {
            ota_test_proc_stop(&fx->svc[i]);
        }
    }
    ota_test_broker_stop(&fx->broker);
    if (fx->dir[0] != '\0') {
        if (getenv("OTA_TEST_KEEP") == NULL) {
            ota_test_rm_tree(fx->dir);
        } else {
            fprintf(stderr, "fixture: kept %s\n", fx->dir);
        }
    }
    free(fx->file);
    memset(fx, 0, sizeof(*fx));
}

void svc_fx_dump_log(const svc_fx_t *fx, int index)
{
    char line[1024];
    FILE *f = fopen(fx->svc_log[index], "r");
    if (f == NULL) {
        return;
    }
    fprintf(stderr, "---- %s ----\n", fx->svc_log[index]);
    while (fgets(line, sizeof(line), f) != NULL) {
        fputs(line, stderr);
    }
    fprintf(stderr, "----\n");
    fclose(f);
}

long long svc_fx_log_stat(const svc_fx_t *fx, int index, const char *key)
{
    char line[2048];
    char last[2048] = "";
    char pat[64];
    FILE *f = fopen(fx->svc_log[index], "r");
    const char *p;

    if (f == NULL) {
        return -1;
    }
    /* The last "stats:" line that has the key (the service logs several kinds). */
    snprintf(pat, sizeof(pat), " %s=", key);
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strstr(line, " stats: ") != NULL && strstr(line, pat) != NULL) {
            snprintf(last, sizeof(last), "%s", line);
        }
    }
    fclose(f);
    p = strstr(last, pat);
    return p != NULL ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

/* ---------------------------------------------------------------- CBOR -- */

uint8_t *svc_cbor_get(const char *c, long long f, long long l, long long o, const uint8_t *b,
                      size_t blen, long long n, size_t *len)
{
    size_t npairs = (c != NULL) + (f >= 0) + (l >= 0) + (o >= 0) + (b != NULL) + (n >= 0);
    cbor_item_t *m = cbor_new_definite_map(npairs);
    unsigned char *buf = NULL;
    size_t cap = 0;
#define ADD(k, v) cbor_map_add(m, (struct cbor_pair){cbor_move(cbor_build_string(k)), cbor_move(v)})
    if (c != NULL) {
        ADD("c", cbor_build_string(c));
    }
    if (f >= 0) {
        ADD("f", cbor_build_uint64((uint64_t)f));
    }
    if (l >= 0) {
        ADD("l", cbor_build_uint64((uint64_t)l));
    }
    if (o >= 0) {
        ADD("o", cbor_build_uint64((uint64_t)o));
    }
    if (b != NULL) {
        ADD("b", cbor_build_bytestring(b, blen));
    }
    if (n >= 0) {
        ADD("n", cbor_build_uint64((uint64_t)n));
    }
#undef ADD
    *len = cbor_serialize_alloc(m, &buf, &cap);
    cbor_decref(&m);
    return buf;
}

/* Minimal reader for the service's answers: definite maps, one-letter keys. */
typedef struct rd {
    const uint8_t *p, *end;
} rd_t;

static int rd_head(rd_t *d, unsigned *major, uint64_t *arg)
{
    if (d->p >= d->end) {
        return -1;
    }
    unsigned addl = *d->p & 31u;
    *major = *d->p++ >> 5;
    if (addl < 24) {
        *arg = addl;
        return 0;
    }
    if (addl > 27) {
        return -1;
    }
    size_t nb = (size_t)1 << (addl - 24);
    if ((size_t)(d->end - d->p) < nb) {
        return -1;
    }
    *arg = 0;
    for (size_t i = 0; i < nb; i++) {
        *arg = *arg << 8 | *d->p++;
    }
    return 0;
}

static int rd_bytes(rd_t *d, unsigned want_major, const uint8_t **p, size_t *len)
{
    unsigned major;
    uint64_t arg;
    if (rd_head(d, &major, &arg) != 0 || major != want_major || arg > (uint64_t)(d->end - d->p)) {
        return -1;
    }
    *p = d->p;
    *len = (size_t)arg;
    d->p += arg;
    return 0;
}

int svc_decode_block(const uint8_t *payload, size_t len, svc_block_t *out)
{
    rd_t d = {payload, payload + len};
    unsigned major;
    uint64_t npairs;
    int seen = 0;

    memset(out, 0, sizeof(*out));
    if (rd_head(&d, &major, &npairs) != 0 || major != 5) {
        return -1;
    }
    for (uint64_t k = 0; k < npairs; k++) {
        const uint8_t *key;
        size_t klen;
        uint64_t v;
        if (rd_bytes(&d, 3, &key, &klen) != 0 || klen != 1) {
            return -1;
        }
        switch (key[0]) {
        case 'c': {
            const uint8_t *t;
            size_t tl;
            if (rd_bytes(&d, 3, &t, &tl) != 0 || tl >= sizeof(out->c)) {
                return -1;
            }
            memcpy(out->c, t, tl);
            out->c[tl] = '\0';
            out->has_c = 1;
            break;
        }
        case 'f':
        case 'i':
        case 'l':
            if (rd_head(&d, &major, &v) != 0 || major != 0) {
                return -1;
            }
            if (key[0] == 'f') {
                out->f = v;
            } else if (key[0] == 'i') {
                out->i = v;
            } else {
                out->l = v;
            }
            seen |= key[0] == 'f' ? 1 : key[0] == 'i' ? 2 : 4;
            break;
        case 'p':
            if (rd_bytes(&d, 2, &out->p, &out->plen) != 0) {
                return -1;
            }
            seen |= 8;
            break;
        default:
            return -1;
        }
    }
    return seen == 15 && d.p == d.end ? 0 : -1;
}

int svc_decode_rejection(const uint8_t *payload, size_t len, char *code, size_t code_cap,
                         char *token, size_t token_cap)
{
    rd_t d = {payload, payload + len};
    unsigned major;
    uint64_t npairs;

    code[0] = '\0';
    token[0] = '\0';
    if (rd_head(&d, &major, &npairs) != 0 || major != 5) {
        return -1;
    }
    for (uint64_t k = 0; k < npairs; k++) {
        const uint8_t *key, *t;
        size_t klen, tl;
        if (rd_bytes(&d, 3, &key, &klen) != 0 || klen != 1 || rd_bytes(&d, 3, &t, &tl) != 0) {
            return -1;
        }
        if (key[0] == 'o' && tl < code_cap) {
            memcpy(code, t, tl);
            code[tl] = '\0';
        } else if (key[0] == 'c' && tl < token_cap) {
            memcpy(token, t, tl);
            token[tl] = '\0';
        }
    }
    return code[0] != '\0' && d.p == d.end ? 0 : -1;
}

/* ---------------------------------------------------------------- fleet -- */

enum dev_state { DEV_CONNECTING, DEV_DOWNLOADING, DEV_DONE, DEV_FAILED };

typedef struct device {
    struct mosquitto *m;
    const svc_fx_t *fx;
    int index;
    enum dev_state state;
    char get_topic[160];
    char data_topic[160];
    char rejected_topic[160];
    uint8_t *have;
    uint32_t nblocks;
    uint32_t received;
    uint32_t window_start;
    uint32_t window;
    uint32_t block_size;
    int64_t last_ms;
    int subacks;
    int64_t first_request_ms;
    int64_t done_ms;
    uint64_t requests, retries, blocks, duplicates;
} device_t;

typedef struct worker {
    pthread_t thread;
    device_t *devs;
    int n;
    int timeout_ms;
    int64_t start_ms;
    int64_t end_ms;
} worker_t;

static void dev_fail(device_t *d, const char *why)
{
    if (d->state != DEV_FAILED) {
        fprintf(stderr, "fleet: dev-%d failed: %s\n", d->index, why);
    }
    d->state = DEV_FAILED;
}

/* Asks for the missing blocks of the current window. */
static void dev_request(device_t *d, int retry)
{
    uint8_t bitmap[512];
    uint32_t count =
        d->nblocks - d->window_start < d->window ? d->nblocks - d->window_start : d->window;
    size_t blen = (count + 7) / 8;
    size_t len;
    uint8_t *req;

    memset(bitmap, 0, sizeof(bitmap));
    for (uint32_t k = 0; k < count; k++) {
        if (!d->have[d->window_start + k]) {
            bitmap[k / 8] |= (uint8_t)(1u << (k % 8));
        }
    }
    req = svc_cbor_get("fleet", 0, d->block_size, d->window_start, bitmap, blen, d->window, &len);
    if (mosquitto_publish(d->m, NULL, d->get_topic, (int)len, req, 0, false) != MOSQ_ERR_SUCCESS) {
        dev_fail(d, "publish failed");
    }
    free(req);
    d->requests++;
    d->retries += retry ? 1u : 0u;
    d->last_ms = now_ms();
    if (d->first_request_ms == 0) {
        d->first_request_ms = d->last_ms;
    }
}

/* Moves to the next window with missing blocks, or finishes. */
static void dev_advance(device_t *d)
{
    while (d->window_start < d->nblocks) {
        uint32_t end = d->window_start + d->window;
        if (end > d->nblocks) {
            end = d->nblocks;
        }
        for (uint32_t k = d->window_start; k < end; k++) {
            if (!d->have[k]) {
                dev_request(d, 0);
                return;
            }
        }
        d->window_start = end;
    }
    d->state = DEV_DONE;
    d->done_ms = now_ms();
}

static void fleet_on_connect(struct mosquitto *m, void *obj, int rc)
{
    device_t *d = obj;
    if (rc != 0) {
        dev_fail(d, "connection refused");
        return;
    }
    mosquitto_subscribe(m, NULL, d->data_topic, 0);
    mosquitto_subscribe(m, NULL, d->rejected_topic, 0);
}

static void fleet_on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *granted)
{
    device_t *d = obj;
    (void)m;
    (void)n;
    (void)granted;
    (void)mid;
    /* Both topics subscribed: start. */
    if (++d->subacks == 2 && d->state == DEV_CONNECTING) {
        d->state = DEV_DOWNLOADING;
        dev_advance(d);
    }
}

static void fleet_on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    device_t *d = obj;
    svc_block_t b;
    (void)m;
    if (d->state != DEV_DOWNLOADING) {
        return;
    }
    if (strcmp(msg->topic, d->rejected_topic) == 0) {
        char code[64], token[80], why[200];
        svc_decode_rejection(msg->payload, (size_t)msg->payloadlen, code, sizeof(code), token,
                             sizeof(token));
        snprintf(why, sizeof(why), "refused: %s", code);
        dev_fail(d, why);
        return;
    }
    if (svc_decode_block(msg->payload, (size_t)msg->payloadlen, &b) != 0) {
        dev_fail(d, "undecodable data message");
        return;
    }
    uint64_t expect =
        b.i + 1 < d->nblocks ? d->block_size : d->fx->file_size - (uint64_t)b.i * d->block_size;
    if (b.f != 0 || b.i >= d->nblocks || b.l != expect || b.plen != expect ||
        strcmp(b.c, "fleet") != 0 ||
        memcmp(b.p, d->fx->file + (size_t)b.i * d->block_size, (size_t)expect) != 0) {
        char why[128];
        snprintf(why, sizeof(why), "wrong block (i=%llu l=%llu)", (unsigned long long)b.i,
                 (unsigned long long)b.l);
        dev_fail(d, why);
        return;
    }
    d->blocks++;
    d->last_ms = now_ms();
    if (d->have[b.i]) {
        d->duplicates++;
        return;
    }
    d->have[b.i] = 1;
    d->received++;
    if (b.i >= d->window_start && b.i < d->window_start + d->window) {
        uint32_t end = d->window_start + d->window;
        if (end > d->nblocks) {
            end = d->nblocks;
        }
        for (uint32_t k = d->window_start; k < end; k++) {
            if (!d->have[k]) {
                return;
            }
        }
        d->window_start = end;
        dev_advance(d);
    }
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    struct pollfd *fds = calloc((size_t)w->n, sizeof(*fds));
    int *map = calloc((size_t)w->n, sizeof(*map));
    int64_t deadline = w->start_ms + w->timeout_ms;

    for (;;) {
        int nfds = 0;
        int active = 0;
        int64_t now = now_ms();
        for (int i = 0; i < w->n; i++) {
            device_t *d = &w->devs[i];
            if (d->state == DEV_DONE || d->state == DEV_FAILED) {
                continue;
            }
            active++;
            if (d->state == DEV_DOWNLOADING && now - d->last_ms > 2000) {
                dev_request(d, 1);
            }
            int fd = mosquitto_socket(d->m);
            if (fd < 0) {
                continue;
            }
            fds[nfds].fd = fd;
            fds[nfds].events = (short)(POLLIN | (mosquitto_want_write(d->m) ? POLLOUT : 0));
            fds[nfds].revents = 0;
            map[nfds++] = i;
        }
        if (active == 0 || now > deadline) {
            break;
        }
        if (poll(fds, (nfds_t)nfds, 20) < 0 && errno != EINTR) {
            break;
        }
        for (int k = 0; k < nfds; k++) {
            device_t *d = &w->devs[map[k]];
            if (fds[k].revents & (POLLIN | POLLERR | POLLHUP)) {
                for (int r = 0; r < 8; r++) {
                    if (mosquitto_loop_read(d->m, 1) != MOSQ_ERR_SUCCESS) {
                        if (d->state != DEV_DONE) {
                            dev_fail(d, "connection lost");
                        }
                        break;
                    }
                }
            }
            if (fds[k].revents & POLLOUT) {
                mosquitto_loop_write(d->m, 1);
            }
            mosquitto_loop_misc(d->m);
        }
    }
    w->end_ms = now_ms();
    free(fds);
    free(map);
    return NULL;
}

int svc_fleet_run(const svc_fx_t *fx, int n_devices, int threads, uint32_t block_size,
                  uint32_t window, int timeout_ms, svc_fleet_result_t *result)
{
    device_t *devs = calloc((size_t)n_devices, sizeof(*devs));
    worker_t *ws = calloc((size_t)threads, sizeof(*ws));
    uint32_t nblocks = (uint32_t)((fx->file_size + block_size - 1) / block_size);
    int64_t start;
    int64_t end = 0;
    int64_t first_req = INT64_MAX;
    int64_t last_done = 0;
    int rc = 0;

    memset(result, 0, sizeof(*result));
    mosquitto_lib_init();
    start = now_ms();
    for (int i = 0; i < n_devices; i++) {
        device_t *d = &devs[i];
        char name[32];
        ota_test_login_t login;
        d->fx = fx;
        d->index = i;
        d->nblocks = nblocks;
        d->block_size = block_size;
        d->window = window;
        d->have = calloc(nblocks, 1);
        snprintf(d->get_topic, sizeof(d->get_topic), "$aws/things/dev-%d/streams/%s/get/cbor", i,
                 fx->stream_id);
        snprintf(d->data_topic, sizeof(d->data_topic), "$aws/things/dev-%d/streams/%s/data/cbor", i,
                 fx->stream_id);
        snprintf(d->rejected_topic, sizeof(d->rejected_topic),
                 "$aws/things/dev-%d/streams/%s/rejected/cbor", i, fx->stream_id);
        /* Each device logs in as its thing, with the login `otter thing create` made. */
        snprintf(name, sizeof(name), "dev-%d", i);
        if (ota_test_thing_login(&fx->broker, name, &login) != 0) {
            login.client_id[0] = '\0';
        }
        d->m = mosquitto_new(login.client_id, true, d);
        mosquitto_connect_callback_set(d->m, fleet_on_connect);
        mosquitto_subscribe_callback_set(d->m, fleet_on_subscribe);
        mosquitto_message_callback_set(d->m, fleet_on_message);
        if (mosquitto_username_pw_set(d->m, login.username, login.password) != MOSQ_ERR_SUCCESS ||
            mosquitto_connect(d->m, "127.0.0.1", fx->broker.port, 60) != MOSQ_ERR_SUCCESS) {
            dev_fail(d, "cannot connect");
        }
    }
    for (int t = 0; t < threads; t++) {
        int per = (n_devices + threads - 1) / threads;
        int first = t * per;
        ws[t].devs = devs + first;
        ws[t].n = first >= n_devices ? 0 : (first + per > n_devices ? n_devices - first : per);
        ws[t].timeout_ms = timeout_ms;
        ws[t].start_ms = start;
        pthread_create(&ws[t].thread, NULL, worker_main, &ws[t]);
    }
    for (int t = 0; t < threads; t++) {
        pthread_join(ws[t].thread, NULL);
        if (ws[t].end_ms > end) {
            end = ws[t].end_ms;
        }
    }
    for (int i = 0; i < n_devices; i++) {
        device_t *d = &devs[i];
        if (d->state == DEV_DONE && d->received == d->nblocks) {
            result->completed++;
        } else {
            if (d->state != DEV_FAILED) {
                fprintf(stderr, "fleet: dev-%d incomplete: %u of %u blocks\n", i, d->received,
                        d->nblocks);
            }
            rc = -1;
        }
        if (d->first_request_ms > 0 && d->first_request_ms < first_req) {
            first_req = d->first_request_ms;
        }
        if (d->done_ms > last_done) {
            last_done = d->done_ms;
        }
        result->requests += d->requests;
        result->retries += d->retries;
        result->blocks += d->blocks;
        result->duplicates += d->duplicates;
        mosquitto_disconnect(d->m);
        mosquitto_loop_write(d->m, 1);
        mosquitto_destroy(d->m);
        free(d->have);
    }
    result->seconds = (double)(end - start) / 1000.0;
    result->download_seconds =
        last_done > first_req ? (double)(last_done - first_req) / 1000.0 : result->seconds;
    free(devs);
    free(ws);
    mosquitto_lib_cleanup();
    return rc;
}
