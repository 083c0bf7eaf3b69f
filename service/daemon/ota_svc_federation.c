/* The service's watch on the other hub of a federation (see ota_svc_federation.h): its
 * connection; the decisions are the rules' (ota_svc_fed_rules.h). */
#include "ota_svc_federation.h"

#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The watch tries an unreachable broker this often. */
#define HOME_RETRY_MS 2000
/* A connection attempt (TCP, TLS, CONNACK) given up after this. */
#define CONNECT_TIMEOUT_MS 5000

#define PROBE_THING "otter-service-probe"

struct ota_svc_fed {
    ota_svc_fed_config_t cfg;
    ota_svc_fed_rules_t r;
    struct mosquitto *m;
    char topic[256]; /* this instance's probe topic */
    int64_t now;
    int64_t attempt_at; /* the current attempt started then (0: none) */
    int64_t next_try;
    uint32_t seq;
};

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
    ota_svc_fed_t *f = obj;
    if (rc != 0) {
        ota_svc_fed_rules_logf(
            &f->r, 3, "federation watch: broker %d (%s:%d) refused the connection: %s",
            ota_svc_fed_rules_watch_index(&f->r) + 1, ota_svc_fed_rules_watch_host(&f->r),
            ota_svc_fed_rules_watch_port(&f->r), mosquitto_connack_string(rc));
        return;
    }
    f->attempt_at = 0;
    ota_svc_fed_rules_watch_up(&f->r, f->now);
    (void)mosquitto_subscribe(m, NULL, f->topic, 0);
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc)
{
    ota_svc_fed_t *f = obj;
    (void)m;
    (void)rc;
    (void)ota_svc_fed_rules_watch_down(&f->r, f->now);
}

/* A probe: "m SEQ" from the main connection, "w SEQ" from the watch. */
static int probe_from(const void *payload, size_t len, char who)
{
    const char *p = payload;
    return len >= 3 && len < 32 && p[0] == who && p[1] == ' ';
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    ota_svc_fed_t *f = obj;
    (void)m;
    if (strcmp(msg->topic, f->topic) == 0 && msg->payloadlen > 0 &&
        probe_from(msg->payload, (size_t)msg->payloadlen, 'm')) {
        ota_svc_fed_rules_probe_at_watch(&f->r, f->now);
    }
}

/* A fresh client object (the old one, if any, destroyed: its socket closed). */
static int make_client(ota_svc_fed_t *f)
{
    if (f->m != NULL) {
        mosquitto_destroy(f->m);
    }
    (void)ota_svc_fed_rules_watch_down(&f->r, f->now); /* its socket is closed */
    f->attempt_at = 0;
    /* Clean session: it also ends what this broker kept of the instance's session. */
    f->m = mosquitto_new(f->cfg.client_id, true, f);
    if (f->m == NULL) {
        return -1;
    }
    mosquitto_int_option(f->m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_connect_callback_set(f->m, on_connect);
    mosquitto_disconnect_callback_set(f->m, on_disconnect);
    mosquitto_message_callback_set(f->m, on_message);
    if (f->cfg.username != NULL &&
        mosquitto_username_pw_set(f->m, f->cfg.username, f->cfg.password) != MOSQ_ERR_SUCCESS) {
        return -1;
    }
    if (f->cfg.cafile != NULL && mosquitto_tls_set(f->m, f->cfg.cafile, NULL, f->cfg.certfile,
                                                   f->cfg.keyfile, NULL) != MOSQ_ERR_SUCCESS) {
        return -1;
    }
    return 0;
}

ota_svc_fed_t *ota_svc_fed_create(const ota_svc_fed_config_t *cfg)
{
    ota_svc_fed_t *f = calloc(1, sizeof *f);
    if (f == NULL) {
        return NULL;
    }
    f->cfg = *cfg;
    ota_svc_fed_rules_init(&f->r, cfg->log, cfg->ctx);
    /* The topic of a reserved thing: no device may publish or subscribe there. */
    char id[128];
    size_t j = 0;
    for (const char *p = cfg->client_id; *p != '\0' && j + 1 < sizeof id; p++) {
        id[j++] = strchr("+#/", *p) != NULL ? '_' : *p;
    }
    id[j] = '\0';
    snprintf(f->topic, sizeof f->topic, "$aws/things/" PROBE_THING "/jobs/federation/%s/probe", id);
    if (make_client(f) != 0) {
        ota_svc_fed_destroy(f);
        return NULL;
    }
    return f;
}

/* Ends the watch's connection, which the rules have counted as ended: DISCONNECT sent when it
 * was up (so the broker drops the clean session at once, before the main connection may log
 * in there with the same client id). */
static void drop(ota_svc_fed_t *f, int was_up)
{
    if (f->m != NULL && was_up) {
        mosquitto_disconnect(f->m);
        for (int i = 0; i < 10 && mosquitto_loop(f->m, 20, 1) == MOSQ_ERR_SUCCESS; i++) {
        }
    }
    if (f->m != NULL && mosquitto_socket(f->m) >= 0) {
        (void)make_client(f);
    }
    f->attempt_at = 0;
}

void ota_svc_fed_destroy(ota_svc_fed_t *f)
{
    if (f == NULL) {
        return;
    }
    drop(f, ota_svc_fed_rules_watch_down(&f->r, f->now));
    if (f->m != NULL) {
        mosquitto_destroy(f->m);
    }
    free(f);
}

void ota_svc_fed_set(ota_svc_fed_t *f, int main_index, const char *other_host, int other_port,
                     int other_index, int64_t now)
{
    f->now = now;
    int what =
        ota_svc_fed_rules_target(&f->r, main_index, other_host, other_port, other_index, now);
    if (what == OTA_SVC_FED_KEEP) {
        return;
    }
    drop(f, (what & OTA_SVC_FED_WAS_UP) != 0);
    if ((what & ~OTA_SVC_FED_WAS_UP) == OTA_SVC_FED_GO) {
        f->next_try = now;
    }
}

void ota_svc_fed_main_ready(ota_svc_fed_t *f, int ready, int64_t now)
{
    f->now = now;
    ota_svc_fed_rules_main_ready(&f->r, ready, now);
}

const char *ota_svc_fed_probe_topic(const ota_svc_fed_t *f)
{
    return f->topic;
}

int ota_svc_fed_main_message(ota_svc_fed_t *f, const char *topic, const void *payload, size_t len,
                             int64_t now)
{
    if (strcmp(topic, f->topic) != 0) {
        return 0;
    }
    if (probe_from(payload, len, 'w')) {
        ota_svc_fed_rules_probe_at_main(&f->r, now);
    }
    return 1;
}

void ota_svc_fed_main_lost(ota_svc_fed_t *f, int64_t now)
{
    ota_svc_fed_rules_main_lost(&f->r, now);
}

/* The watch's connection: attempts, their timeout, the network work. */
static void watch_io(ota_svc_fed_t *f, int64_t now)
{
    if (mosquitto_socket(f->m) < 0) {
        if (now < f->next_try) {
            return;
        }
        f->next_try = now + HOME_RETRY_MS;
        f->attempt_at = now;
        if (mosquitto_connect_async(f->m, ota_svc_fed_rules_watch_host(&f->r),
                                    ota_svc_fed_rules_watch_port(&f->r),
                                    f->cfg.keepalive_s) != MOSQ_ERR_SUCCESS) {
            f->attempt_at = 0;
            return;
        }
    }
    if (!ota_svc_fed_rules_watch_connected(&f->r) && f->attempt_at != 0 &&
        now - f->attempt_at > CONNECT_TIMEOUT_MS) {
        ota_svc_fed_rules_logf(&f->r, 3, "federation watch: no answer from broker %d (%s:%d)",
                               ota_svc_fed_rules_watch_index(&f->r) + 1,
                               ota_svc_fed_rules_watch_host(&f->r),
                               ota_svc_fed_rules_watch_port(&f->r));
        (void)make_client(f);
        return;
    }
    if (mosquitto_loop(f->m, 0, 1) != MOSQ_ERR_SUCCESS) {
        /* The connection ended (make_client reports it), or a refused or failed attempt left
         * the socket open: close it for the next. */
        (void)make_client(f);
    }
}

int ota_svc_fed_poll(ota_svc_fed_t *f, int64_t now)
{
    f->now = now;
    if (ota_svc_fed_rules_watch_index(&f->r) >= 0) {
        watch_io(f, now);
    }
    int probe = 0;
    int what = ota_svc_fed_rules_poll(&f->r, now, &probe);
    if (probe) {
        char body[32];
        f->seq++;
        int len = snprintf(body, sizeof body, "m %u", (unsigned)f->seq);
        (void)f->cfg.publish_main(f->cfg.ctx, f->topic, body, (size_t)len, 0);
        body[0] = 'w';
        (void)mosquitto_publish(f->m, NULL, f->topic, len, body, 0, false);
    }
    return what;
}

const char *ota_svc_fed_state(const ota_svc_fed_t *f)
{
    return ota_svc_fed_rules_state(&f->r);
}

void ota_svc_fed_get_stats(const ota_svc_fed_t *f, ota_svc_fed_stats_t *out)
{
    *out = ota_svc_fed_rules_stats(&f->r);
}
