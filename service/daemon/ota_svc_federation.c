/* The service's watch on the other hub of a federation (see ota_svc_federation.h). */
#include "ota_svc_federation.h"

#include <mosquitto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The watch tries an unreachable broker this often. */
#define HOME_RETRY_MS 2000
/* A connection attempt (TCP, TLS, CONNACK) given up after this. */
#define CONNECT_TIMEOUT_MS 5000
/* Broker 0 must keep the watch's connection this long before the main connection moves back;
 * doubled at every flap, up to HOME_STABLE_MAX_MS, back to the base after FLAP_FORGET_MS on
 * broker 0. */
#define HOME_STABLE_MS 3000
#define HOME_STABLE_MAX_MS 60000
#define FLAP_WINDOW_MS 30000
#define FLAP_FORGET_MS 300000
/* Probes: one each way this often; a direction silent this long is a split (longer before the
 * first probe of a pairing crossed: a hub that just started has its bridge up a few seconds
 * later). */
#define PROBE_EVERY_MS 1000
#define SPLIT_MS 6000
#define SPLIT_FIRST_MS 15000
/* The other hub unreachable this long: reported. */
#define ALONE_MS 15000

#define PROBE_THING "otter-service-probe"

struct ota_svc_fed {
    ota_svc_fed_config_t cfg;
    struct mosquitto *m;
    char topic[256]; /* this instance's probe topic */
    char host[256];  /* the watch's broker */
    int port;
    int index; /* its place in the list, -1: no watch */
    int main_index;
    int main_ready;
    int connected;
    int64_t now;
    int64_t attempt_at; /* the current attempt started then (0: none) */
    int64_t next_try;
    int64_t up_since;   /* the watch connected then */
    int64_t down_since; /* the watch has had no connection since then (0: connected) */
    int alone;          /* the watch's broker unreachable for ALONE_MS: reported */
    int64_t pair_since; /* both connections up since then (0: not both) */
    int64_t seen_to_watch, seen_to_main, last_probe;
    uint32_t seq;
    int split;
    int crossed; /* probes crossed both ways in this pairing: said once */
    int64_t split_since;
    int64_t stable_ms;
    int64_t moved_at;    /* the main connection was told to move back then (0: not recently) */
    int64_t ready_since; /* main_ready changed then */
    ota_svc_fed_stats_t stats;
};

static void flog(ota_svc_fed_t *f, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void flog(ota_svc_fed_t *f, int level, const char *fmt, ...)
{
    char line[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (f->cfg.log != NULL) {
        f->cfg.log(f->cfg.ctx, level, line);
    }
}

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
    ota_svc_fed_t *f = obj;
    if (rc != 0) {
        flog(f, 3, "federation watch: broker %d (%s:%d) refused the connection: %s", f->index + 1,
             f->host, f->port, mosquitto_connack_string(rc));
        return;
    }
    f->connected = 1;
    f->attempt_at = 0;
    f->up_since = f->now;
    f->down_since = 0;
    if (f->alone) {
        f->alone = 0;
        flog(f, 2, "federation watch: broker %d (%s:%d) reachable again", f->index + 1, f->host,
             f->port);
    }
    flog(f, 3, "federation watch: connected to broker %d (%s:%d)", f->index + 1, f->host, f->port);
    (void)mosquitto_subscribe(m, NULL, f->topic, 0);
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc)
{
    ota_svc_fed_t *f = obj;
    (void)m;
    if (f->connected) {
        flog(f, 3, "federation watch: connection to broker %d (%s:%d) ended (%d)", f->index + 1,
             f->host, f->port, rc);
        f->down_since = f->now;
    }
    f->connected = 0;
    f->pair_since = 0;
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
        f->seen_to_watch = f->now;
    }
}

/* A fresh client object (the old one, if any, destroyed: its socket closed). */
static int make_client(ota_svc_fed_t *f)
{
    if (f->m != NULL) {
        mosquitto_destroy(f->m);
    }
    f->connected = 0;
    f->attempt_at = 0;
    f->pair_since = 0;
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
    f->index = -1;
    f->main_index = -1;
    f->stable_ms = HOME_STABLE_MS;
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

/* Ends the watch's connection: DISCONNECT sent (so the broker drops the clean session at
 * once, before the main connection may log in there with the same client id). */
static void drop(ota_svc_fed_t *f)
{
    if (f->m != NULL && f->connected) {
        mosquitto_disconnect(f->m);
        for (int i = 0; i < 10 && mosquitto_loop(f->m, 20, 1) == MOSQ_ERR_SUCCESS; i++) {
        }
    }
    if (f->m != NULL && mosquitto_socket(f->m) >= 0) {
        (void)make_client(f);
    }
    f->connected = 0;
    f->attempt_at = 0;
    f->pair_since = 0;
}

void ota_svc_fed_destroy(ota_svc_fed_t *f)
{
    if (f == NULL) {
        return;
    }
    drop(f);
    if (f->m != NULL) {
        mosquitto_destroy(f->m);
    }
    free(f);
}

void ota_svc_fed_set(ota_svc_fed_t *f, int main_index, const char *other_host, int other_port,
                     int other_index, int64_t now)
{
    f->now = now;
    if (main_index >= 0) {
        f->main_index = main_index;
    }
    if (main_index < 0 || other_host == NULL) {
        f->main_ready = 0;
        if (f->index >= 0) {
            drop(f);
            f->index = -1;
        }
        return;
    }
    if (f->index == other_index && strcmp(f->host, other_host) == 0 && f->port == other_port) {
        return;
    }
    drop(f);
    snprintf(f->host, sizeof f->host, "%s", other_host);
    f->port = other_port;
    f->index = other_index;
    f->next_try = now;
    f->down_since = now;
    f->alone = 0;
}

void ota_svc_fed_main_ready(ota_svc_fed_t *f, int ready, int64_t now)
{
    f->now = now;
    if (ready != f->main_ready) {
        f->pair_since = 0;
        f->ready_since = now;
    }
    f->main_ready = ready;
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
        f->seen_to_main = now;
    }
    return 1;
}

void ota_svc_fed_main_lost(ota_svc_fed_t *f, int64_t now)
{
    if (f->moved_at != 0 && now - f->moved_at < FLAP_WINDOW_MS) {
        f->stats.flaps++;
        f->stable_ms =
            f->stable_ms * 2 > HOME_STABLE_MAX_MS ? HOME_STABLE_MAX_MS : f->stable_ms * 2;
        flog(f, 1,
             "broker 1 failed %.1f s after the move back to it: it must now stay "
             "reachable for %.0f s before the next move back",
             (double)(now - f->moved_at) / 1000.0, (double)f->stable_ms / 1000.0);
    }
    f->moved_at = 0;
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
        if (mosquitto_connect_async(f->m, f->host, f->port, f->cfg.keepalive_s) !=
            MOSQ_ERR_SUCCESS) {
            f->attempt_at = 0;
            return;
        }
    }
    if (!f->connected && f->attempt_at != 0 && now - f->attempt_at > CONNECT_TIMEOUT_MS) {
        flog(f, 3, "federation watch: no answer from broker %d (%s:%d)", f->index + 1, f->host,
             f->port);
        (void)make_client(f);
        return;
    }
    if (mosquitto_loop(f->m, 0, 1) != MOSQ_ERR_SUCCESS) {
        if (f->connected) {
            on_disconnect(f->m, f, 1);
        }
        /* A refused or failed attempt leaves the socket open: close it for the next. */
        (void)make_client(f);
    }
}

/* Probes both ways and the split's verdict. */
static void check_split(ota_svc_fed_t *f, int64_t now)
{
    if (!f->connected || !f->main_ready) {
        f->pair_since = 0;
        return;
    }
    if (f->pair_since == 0) {
        f->pair_since = now;
        f->seen_to_watch = 0;
        f->seen_to_main = 0;
        f->last_probe = 0;
        f->crossed = 0;
    }
    if (now - f->last_probe >= PROBE_EVERY_MS) {
        char body[32];
        f->last_probe = now;
        f->seq++;
        int len = snprintf(body, sizeof body, "m %u", (unsigned)f->seq);
        (void)f->cfg.publish_main(f->cfg.ctx, f->topic, body, (size_t)len, 0);
        body[0] = 'w';
        (void)mosquitto_publish(f->m, NULL, f->topic, len, body, 0, false);
    }
    int64_t to_watch =
        f->seen_to_watch != 0 ? f->seen_to_watch + SPLIT_MS : f->pair_since + SPLIT_FIRST_MS;
    int64_t to_main =
        f->seen_to_main != 0 ? f->seen_to_main + SPLIT_MS : f->pair_since + SPLIT_FIRST_MS;
    int down = now > to_watch || now > to_main;
    if (down && !f->split) {
        int a_to_b = now > to_watch, b_to_a = now > to_main;
        f->split = 1;
        f->split_since = now;
        f->stats.splits++;
        flog(f, 0,
             "federation split: this instance reaches hub %d (its connection) and hub %d "
             "(%s:%d), but no probe crossed %s for %d s: the hubs cannot reach each other. "
             "Devices on the brokers on one side cannot reach the instances on the other; check "
             "the bridge from hub 1 to hub 2 (the network between them; hub 1's log, "
             "connection otter-federation)",
             f->main_index + 1, f->index + 1, f->host, f->port,
             a_to_b && b_to_a ? "either way"
             : a_to_b         ? "from the first to the second"
                              : "from the second to the first",
             (f->seen_to_watch != 0 && f->seen_to_main != 0 ? SPLIT_MS : SPLIT_FIRST_MS) / 1000);
    } else if (!down && f->split) {
        f->split = 0;
        f->crossed = 1;
        flog(f, 1,
             "federation split healed: probes cross between hub %d and hub %d again (reported "
             "split for %.1f s)",
             f->main_index + 1, f->index + 1, (double)(now - f->split_since) / 1000.0);
    } else if (!f->split && !f->crossed && f->seen_to_watch != 0 && f->seen_to_main != 0) {
        f->crossed = 1;
        flog(f, 2, "federation: probes cross both ways between hub %d and hub %d (%s:%d)",
             f->main_index + 1, f->index + 1, f->host, f->port);
    }
}

int ota_svc_fed_poll(ota_svc_fed_t *f, int64_t now)
{
    f->now = now;
    if (f->main_index == 0 && f->main_ready) {
        if (f->moved_at != 0 && now - f->moved_at >= FLAP_WINDOW_MS) {
            f->moved_at = 0; /* stayed: no flap */
        }
        if (f->stable_ms > HOME_STABLE_MS && now - f->ready_since >= FLAP_FORGET_MS) {
            f->stable_ms = HOME_STABLE_MS;
        }
    }
    if (f->index < 0) {
        return OTA_SVC_FED_NOTHING;
    }
    watch_io(f, now);
    if (!f->connected && f->down_since != 0 && !f->alone && now - f->down_since >= ALONE_MS) {
        f->alone = 1;
        flog(f, 1,
             "federation: broker %d (%s:%d) unreachable for %d s; this instance serves the devices "
             "of the brokers that reach broker %d only",
             f->index + 1, f->host, f->port, ALONE_MS / 1000, f->main_index + 1);
    }
    check_split(f, now);
    /* Back to broker 0 once it kept the watch's connection for the stable time and probes
     * cross between it and this broker (its bridge is up), or after SPLIT_FIRST_MS without
     * (the spokes are on broker 0 then: the larger part). */
    int crossing = f->pair_since != 0 && f->seen_to_watch != 0 && f->seen_to_main != 0;
    int64_t up = f->connected ? now - f->up_since : -1;
    if (f->main_index > 0 && f->index == 0 && up >= f->stable_ms &&
        (crossing || up >= SPLIT_FIRST_MS)) {
        f->stats.moves_home++;
        f->moved_at = now;
        return OTA_SVC_FED_MOVE_HOME;
    }
    return OTA_SVC_FED_NOTHING;
}

const char *ota_svc_fed_state(const ota_svc_fed_t *f)
{
    if (f->split) {
        return "split";
    }
    if (f->alone) {
        return "alone";
    }
    if (f->pair_since != 0 && f->seen_to_watch != 0 && f->seen_to_main != 0) {
        return "ok";
    }
    return "waiting";
}

void ota_svc_fed_get_stats(const ota_svc_fed_t *f, ota_svc_fed_stats_t *out)
{
    *out = f->stats;
}
