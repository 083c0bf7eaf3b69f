/* otter service: device-reported state and presence. See ota_svc_inventory.h. */
#define _POSIX_C_SOURCE 200809L

#include "ota_svc_inventory.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ota_svc_json.h"
#include "ota_svc_presence_pace.h"

#define TOKEN_MAX 64
#define TOPIC_MAX 256
#define RATE_SLOTS 4096 /* rate windows kept; a thing beyond them shares a slot */
#define STATE_MAX 32

/** One thing's rate window (by hash slot; a collision only shares a budget). */
typedef struct {
    char thing[OTA_STORE_THING_NAME_MAX + 1];
    int64_t window_ms;
    uint32_t count;
} rate_t;

struct ota_svc_inventory {
    ota_store_t *store;
    ota_svc_publish_fn publish;
    void *publish_ctx;
    rate_t *rates;      /* RATE_SLOTS entries */
    unsigned broker;    /* the number of the broker the service is connected to */
    unsigned n_brokers; /* the federation's brokers: 1..n_brokers */
    int64_t since[OTA_SVC_INVENTORY_BROKERS_MAX + 1]; /* each stream's last (re)start */
    /* The service's own hub's bridge was seen down and its loss admitted: its retries
     * ("Connecting bridge ...") are the same gap until a sign that it is up again. */
    int hub_bridge_down;
    /* Brokers with a notice the store could not take, or a gap it could not record: their
     * gap is recorded again by ota_svc_inventory_tick(). */
    unsigned pending;
    int64_t pending_tried_ms;
    ota_svc_pace_t *pace; /* the presence write budget: notices held back per thing */
    ota_svc_inventory_stats_t stats;
    ota_svc_inventory_log_fn log;
    void *log_ctx;
};

/* Bit K for brokers 1..n. */
#define BROKERS_UPTO(n) ((unsigned)((1u << ((n) + 1u)) - 2u))

static const char *const topics[] = {"$aws/things/+/shadow/update", "$SYS/broker/log/N",
                                     OTA_SVC_INVENTORY_PRESENCE_PREFIX "+/log/N", NULL};

const char *const *ota_svc_inventory_topics(void)
{
    return topics;
}

ota_svc_inventory_t *ota_svc_inventory_create(ota_store_t *store, ota_svc_publish_fn publish,
                                              void *publish_ctx)
{
    if (!store || !publish)
        return NULL;
    ota_svc_inventory_t *inv = calloc(1, sizeof *inv);
    if (inv) {
        inv->rates = calloc(RATE_SLOTS, sizeof *inv->rates);
        inv->pace = ota_svc_pace_create();
    }
    if (!inv || !inv->rates || !inv->pace) {
        if (inv) {
            free(inv->rates);
            ota_svc_pace_destroy(inv->pace);
        }
        free(inv);
        return NULL;
    }
    inv->store = store;
    inv->broker = 1;
    inv->n_brokers = 1;
    inv->publish = publish;
    inv->publish_ctx = publish_ctx;
    return inv;
}

void ota_svc_inventory_set_broker(ota_svc_inventory_t *inv, unsigned broker)
{
    if (inv && broker >= 1 && broker <= OTA_SVC_INVENTORY_BROKERS_MAX) {
        if (broker != inv->broker)
            inv->hub_bridge_down = 0; /* another hub, another bridge */
        inv->broker = broker;
    }
}

void ota_svc_inventory_set_brokers(ota_svc_inventory_t *inv, unsigned n)
{
    if (inv && n >= 1 && n <= OTA_SVC_INVENTORY_BROKERS_MAX)
        inv->n_brokers = n;
}

void ota_svc_inventory_set_log(ota_svc_inventory_t *inv, ota_svc_inventory_log_fn log, void *ctx)
{
    if (inv) {
        inv->log = log;
        inv->log_ctx = ctx;
    }
}

int64_t ota_svc_inventory_stream_since(const ota_svc_inventory_t *inv, unsigned broker)
{
    return inv && broker >= 1 && broker <= OTA_SVC_INVENTORY_BROKERS_MAX ? inv->since[broker] : 0;
}

void ota_svc_inventory_destroy(ota_svc_inventory_t *inv)
{
    if (inv) {
        free(inv->rates);
        ota_svc_pace_destroy(inv->pace);
    }
    free(inv);
}

void ota_svc_inventory_get_stats(const ota_svc_inventory_t *inv, ota_svc_inventory_stats_t *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (inv) {
        *out = inv->stats;
        out->tracked = ota_svc_pace_count(inv->pace);
        out->holding = ota_svc_pace_holding(inv->pace);
    }
}

/* ------------------------------------------------------------------------ */
/* Answers                                                                  */
/* ------------------------------------------------------------------------ */

static void answer(ota_svc_inventory_t *inv, const char *thing, const char *kind, cJSON *body,
                   const char *token, int64_t now_ms)
{
    char topic[TOPIC_MAX];
    snprintf(topic, sizeof topic, "$aws/things/%s/shadow/update/%s", thing, kind);
    if (token)
        cJSON_AddStringToObject(body, "clientToken", token);
    cJSON_AddNumberToObject(body, "timestamp", (double)(now_ms / 1000));
    char *text = cJSON_PrintUnformatted(body);
    if (text)
        inv->publish(inv->publish_ctx, topic, text, strlen(text), 0);
    cJSON_free(text);
    cJSON_Delete(body);
}

static void reject(ota_svc_inventory_t *inv, const char *thing, int code, const char *msg,
                   const char *token, int64_t now_ms)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "code", code);
    cJSON_AddStringToObject(o, "message", msg);
    answer(inv, thing, "rejected", o, token, now_ms);
}

/* ------------------------------------------------------------------------ */
/* Reported state                                                           */
/* ------------------------------------------------------------------------ */

/* 1 if s is 1..STATE_MAX of [A-Za-z0-9_.-]. */
static int state_word(const char *s)
{
    return ota_store_valid_device_type(s) && strlen(s) <= STATE_MAX;
}

/* The thing's rate window: 1 if another update is allowed now. */
static int rate_ok(ota_svc_inventory_t *inv, const char *thing, int64_t now_ms)
{
    uint32_t h = 2166136261u;
    for (const char *c = thing; *c; c++)
        h = (h ^ (uint8_t)*c) * 16777619u;
    rate_t *r = &inv->rates[h % RATE_SLOTS];
    if (strcmp(r->thing, thing) != 0 || now_ms - r->window_ms >= 60000 || now_ms < r->window_ms) {
        snprintf(r->thing, sizeof r->thing, "%s", thing);
        r->window_ms = now_ms;
        r->count = 0;
    }
    return ++r->count <= OTA_SVC_INVENTORY_MAX_PER_MINUTE;
}

/** A reported key, the attribute it is stored as, and its check. */
typedef struct {
    const char *key, *attr;
    int (*ok)(const char *value);
} field_t;

static const field_t fields[] = {
    {"firmwareVersion", OTA_STORE_ATTR_FIRMWARE_VERSION, ota_store_valid_version},
    {"deviceType", "reportedDeviceType", ota_store_valid_device_type},
    {"slot", "slot", state_word},
    {"imageState", "imageState", state_word},
};
#define N_FIELDS (sizeof fields / sizeof fields[0])

/* Checks the reported object; fills values[i] per field (NULL when absent) and connected. */
static const char *check_reported(const cJSON *rep, const char *values[N_FIELDS], int *connected)
{
    if (!cJSON_IsObject(rep))
        return "state.reported must be an object";
    *connected = -1;
    for (const cJSON *it = rep->child; it; it = it->next) {
        size_t i = 0;
        while (i < N_FIELDS && strcmp(it->string, fields[i].key) != 0)
            i++;
        if (i < N_FIELDS) {
            if (!cJSON_IsString(it) || !fields[i].ok(it->valuestring))
                return i == 0 ? "firmwareVersion must be X.Y.Z"
                              : "deviceType, slot and imageState must be 1-32 of [A-Za-z0-9_.-]";
            values[i] = it->valuestring;
        } else if (strcmp(it->string, "connected") == 0 && cJSON_IsBool(it)) {
            *connected = cJSON_IsTrue(it);
        } else {
            return "unknown key or type in state.reported (firmwareVersion, deviceType, slot, "
                   "imageState, connected)";
        }
    }
    return NULL;
}

static void handle_update(ota_svc_inventory_t *inv, const char *thing, const char *payload,
                          size_t len, int64_t now_ms)
{
    char why[160];
    if (len > OTA_SVC_INVENTORY_MAX_PAYLOAD) {
        reject(inv, thing, 413, "payload too large", NULL, now_ms);
        return;
    }
    if (ota_svc_json_check_text(payload, len, why, sizeof why) != 0) {
        reject(inv, thing, 400, why, NULL, now_ms);
        return;
    }
    cJSON *root = cJSON_ParseWithLength(payload, len);
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(root, "clientToken");
    const char *token = cJSON_IsString(tok) && strlen(tok->valuestring) <= TOKEN_MAX &&
                                ota_svc_utf8_valid(tok->valuestring, strlen(tok->valuestring), 0)
                            ? tok->valuestring
                            : NULL;
    const char *err = NULL;
    const char *values[N_FIELDS] = {0};
    int connected = -1;
    if (!cJSON_IsObject(root) || ota_svc_json_check_keys(root, why, sizeof why) != 0) {
        err = cJSON_IsObject(root) ? why : "not a JSON object";
    } else {
        for (const cJSON *it = root->child; it && !err; it = it->next)
            if (strcmp(it->string, "state") != 0 && strcmp(it->string, "clientToken") != 0 &&
                strcmp(it->string, "version") != 0)
                err = "unknown key (state, clientToken, version)";
        const cJSON *state = cJSON_GetObjectItemCaseSensitive(root, "state");
        if (!err && (!cJSON_IsObject(state) || cJSON_GetArraySize(state) != 1))
            err = "state must be an object with reported only";
        if (!err)
            err = check_reported(cJSON_GetObjectItemCaseSensitive(state, "reported"), values,
                                 &connected);
    }
    if (err) {
        reject(inv, thing, 400, err, token, now_ms);
        cJSON_Delete(root);
        return;
    }
    if (!rate_ok(inv, thing, now_ms)) {
        reject(inv, thing, 429, "too many updates; at most 10 a minute", token, now_ms);
        cJSON_Delete(root);
        return;
    }
    int rc = OTA_STORE_OK;
    char seen[24];
    snprintf(seen, sizeof seen, "%lld", (long long)now_ms);
    for (size_t i = 0; rc == OTA_STORE_OK && i < N_FIELDS; i++)
        if (values[i])
            rc = ota_store_thing_attr_set(inv->store, thing, fields[i].attr, values[i], now_ms);
    /* A reported "connected" (AWS devices send it) is checked and not stored: presence is the
     * brokers' word, not the device's. */
    if (rc == OTA_STORE_OK)
        rc = ota_store_thing_service_attr_set(inv->store, thing, "lastSeen", seen, now_ms);
    if (rc != OTA_STORE_OK) {
        reject(inv, thing, rc == OTA_STORE_NOT_FOUND ? 404 : 500, ota_store_errmsg(inv->store),
               token, now_ms);
        cJSON_Delete(root);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *rep = cJSON_AddObjectToObject(cJSON_AddObjectToObject(o, "state"), "reported");
    for (size_t i = 0; i < N_FIELDS; i++)
        if (values[i])
            cJSON_AddStringToObject(rep, fields[i].key, values[i]);
    answer(inv, thing, "accepted", o, token, now_ms);
    cJSON_Delete(root);
}

/* ------------------------------------------------------------------------ */
/* Presence from the broker's notices                                       */
/* ------------------------------------------------------------------------ */

/* Copies the word of text up to stop into out if it is a thing name. */
static int thing_word(const char *text, const char *stop, char out[OTA_STORE_THING_NAME_MAX + 1])
{
    size_t n = (size_t)(stop - text);
    if (stop < text || n == 0 || n > OTA_STORE_THING_NAME_MAX)
        return 0;
    memcpy(out, text, n);
    out[n] = '\0';
    return ota_store_valid_thing_name(out);
}

#define SET_TEXT_MAX (2 * OTA_SVC_INVENTORY_BROKERS_MAX + 1)
_Static_assert(OTA_SVC_INVENTORY_BROKERS_MAX == OTA_STORE_PRESENCE_BROKERS_MAX,
               "the store keeps presence for every broker told apart");

/* Records a thing's notices (one transaction); a notice the store could not take is admitted
 * as a gap on its broker (by the tick). Returns the store's code. */
static int write_notices(ota_svc_inventory_t *inv, const char *thing,
                         const ota_store_presence_note_t *notes, size_t n)
{
    /* Known on these brokers from now on; each broker's notices come in order, so a move
     * (connect on one, disconnect on the other, either order) leaves the right set. A notice
     * leaves the thing unknown on the federation's other brokers it has no notice from yet,
     * whose notices about it were never seen (never offline), until a notice from each. */
    int rc = ota_store_presence_notices(inv->store, thing, notes, n, BROKERS_UPTO(inv->n_brokers));
    if (rc == OTA_STORE_OK) {
        inv->stats.writes++;
    } else if (rc != OTA_STORE_NOT_FOUND && rc != OTA_STORE_INVALID) {
        for (size_t i = 0; i < n; i++)
            inv->pending |= 1u << notes[i].broker; /* lost to the store: admitted as a gap */
    }
    /* not a thing (the service, the CLI, a stranger), or one deleted: nothing */
    return rc;
}

/* ota_svc_pace_write_fn: writes what the budget held back of a thing. */
static void write_held(void *ctx, ota_svc_pace_thing_t *e, int64_t now_ms)
{
    ota_store_presence_note_t notes[OTA_STORE_PRESENCE_BROKERS_MAX];
    size_t n = ota_svc_pace_notes(e, notes);
    (void)now_ms;
    if (n)
        (void)write_notices(ctx, e->name, notes, n);
}

int ota_svc_inventory_gap(ota_svc_inventory_t *inv, unsigned mask, const char *why, int64_t now_ms)
{
    if (!inv)
        return -1;
    mask &= OTA_SVC_INVENTORY_ALL;
    if (!mask)
        return 0;
    /* Notices held back by the write budget came before the gap: written first, in the
     * epoch they belong to (one that fails is admitted by this very gap). */
    ota_svc_pace_sweep(inv->pace, now_ms, mask, write_held, inv);
    for (unsigned k = 1; k <= OTA_SVC_INVENTORY_BROKERS_MAX; k++)
        if (mask & (1u << k))
            inv->since[k] = now_ms;
    /* One row per broker: every thing's presence there is computed against it when read. */
    int any = 0;
    int ok = ota_store_presence_gap(inv->store, mask, now_ms, &any) == OTA_STORE_OK;
    if (ok)
        inv->pending &= ~mask;
    else
        inv->pending |= mask; /* recorded again by the tick */
    if (inv->log) {
        char line[200], set[SET_TEXT_MAX];
        ota_store_presence_set_text(mask & BROKERS_UPTO(inv->n_brokers), set, sizeof set);
        if (ok)
            snprintf(line, sizeof line,
                     "presence: %s: brokers %s may have lost notices; what they said before is "
                     "unknown until each thing's next notice there",
                     why ? why : "gap", set);
        else
            snprintf(line, sizeof line,
                     "presence: %s: cannot record the gap on brokers %s (%s); tried again in a "
                     "second",
                     why ? why : "gap", set, ota_store_errmsg(inv->store));
        inv->log(inv->log_ctx, ok ? (any ? 2 : 3) : 0, line); /* no thing seen yet: debug */
    }
    return ok ? 0 : -1;
}

/* A federation bridge's client id (the id ending at stop) in broker's notices: K for broker
 * K's bridge on the remote side (OTA_SVC_INVENTORY_BRIDGE_ID K), broker for the broker's own
 * bridge's local side (OTA_SVC_INVENTORY_BRIDGE_ID "local"), else 0. */
static unsigned bridge_id(const char *text, const char *stop, unsigned broker)
{
    size_t pl = strlen(OTA_SVC_INVENTORY_BRIDGE_ID);
    if (!stop || stop - text <= (ptrdiff_t)pl ||
        strncmp(text, OTA_SVC_INVENTORY_BRIDGE_ID, pl) != 0)
        return 0;
    if (stop - text == (ptrdiff_t)pl + 5 && strncmp(text + pl, "local", 5) == 0)
        return broker;
    if (stop - text != (ptrdiff_t)pl + 1 || text[pl] < '1' ||
        text[pl] >= '1' + OTA_SVC_INVENTORY_BROKERS_MAX)
        return 0;
    return (unsigned)(text[pl] - '0');
}

/* The streams broker k's bridge carries to the service: hub 1's (k 1), between the hubs, all
 * but the service's own broker's; a spoke's, its own. */
static unsigned bridge_streams(const ota_svc_inventory_t *inv, unsigned k)
{
    return k == 1 ? OTA_SVC_INVENTORY_ALL & ~(1u << inv->broker) : 1u << k;
}

/* A notice about a federation bridge: a gap (1), else 0. */
static int bridge_notice(ota_svc_inventory_t *inv, unsigned broker, const char *msg, int64_t now_ms)
{
    char why[96];
    unsigned k = 0;
    const char *as = strstr(msg, " as "), *paren = as ? strstr(as, " (") : NULL;
    if ((strncmp(msg, "New bridge connected from ", 26) == 0 ||
         strncmp(msg, "New client connected from ", 26) == 0) &&
        paren && (k = bridge_id(as + 4, paren, 0)) != 0) {
        /* its own login, which only that bridge holds: u'otter-service-federation-K' */
        char user[64];
        snprintf(user, sizeof user, "u'" OTA_SVC_INVENTORY_BRIDGE_ID "%u')", k);
        if (!strstr(paren, user))
            return 1; /* not the bridge's login: no gap, and no thing either */
        snprintf(why, sizeof why, "broker %u's bridge connected to broker %u", k, broker);
        if (k == inv->broker)
            inv->hub_bridge_down = 0;
    } else if (strncmp(msg, "Client ", 7) == 0 &&
               (k = bridge_id(msg + 7, strchr(msg + 7, ' '), broker)) != 0) {
        /* refused logins under its id and take-overs (a new connect follows) are no gap */
        if (strstr(msg, "not authorised") || strstr(msg, "already connected") ||
            strstr(msg, "not allowed feature"))
            return 1;
        snprintf(why, sizeof why, "broker %u's bridge left broker %u", k, broker);
        if (k == broker)
            snprintf(why, sizeof why, "broker %u's bridge lost its connection", k);
    } else if (strncmp(msg, "Socket error on client ", 23) == 0 &&
               (k = bridge_id(msg + 23, strchr(msg + 23, ','), broker)) != 0) {
        snprintf(why, sizeof why, "broker %u's bridge left broker %u", k, broker);
    } else if (strncmp(msg, "Connecting bridge ", 18) == 0 &&
               strstr(msg, " " OTA_SVC_INVENTORY_BRIDGE_NAME " (")) {
        /* "Connecting bridge (step 1) otter-federation (HOST:PORT)": the broker's own bridge
         * is being made again; while its loss is admitted, a retry is the same gap */
        if (inv->hub_bridge_down)
            return 1;
        k = broker;
        snprintf(why, sizeof why, "broker %u's bridge reconnecting", k);
    } else {
        return 0;
    }
    if (k == broker && broker == inv->broker)
        inv->hub_bridge_down = 1; /* lost, or being made: down until a sign it is up */
    (void)ota_svc_inventory_gap(inv, bridge_streams(inv, k), why, now_ms);
    return 1;
}

static void handle_log(ota_svc_inventory_t *inv, unsigned broker, const char *payload, size_t len,
                       int64_t now_ms)
{
    char line[512], thing[OTA_STORE_THING_NAME_MAX + 1], user[OTA_STORE_THING_NAME_MAX + 8];
    if (len >= sizeof line)
        return;
    memcpy(line, payload, len);
    line[len] = '\0';
    if (memchr(line, '\0', len))
        return;
    const char *msg = strstr(line, ": ");
    if (!msg)
        return;
    msg += 2;
    if (broker > inv->n_brokers)
        inv->n_brokers = broker; /* a broker the federation's description did not count */
    /* The other hub's notices come only over the bridge between the hubs: it is up. */
    if (broker != inv->broker && broker <= 2)
        inv->hub_bridge_down = 0;
    if (bridge_notice(inv, broker, msg, now_ms))
        return;
    const char *as = strstr(msg, " as "), *paren = as ? strstr(as, " (") : NULL;
    int online;
    if (strncmp(msg, "New client connected from ", 26) == 0 && paren &&
        thing_word(as + 4, paren, thing)) {
        /* the login must be the thing itself: u'<thing>' */
        snprintf(user, sizeof user, "u'%s')", thing);
        if (!strstr(paren, user))
            return;
        online = 1;
    } else if (strncmp(msg, "Client ", 7) == 0 &&
               thing_word(msg + 7, strchr(msg + 7, ' '), thing)) {
        const char *rest = msg + 7 + strlen(thing);
        /* someone else's failed login under its name, or a reconnect (a connect follows) */
        if (strstr(rest, "not authorised") || strstr(rest, "already connected") ||
            strstr(rest, "not allowed feature"))
            return;
        online = 0;
    } else if (strncmp(msg, "Socket error on client ", 23) == 0 &&
               thing_word(msg + 23, strchr(msg + 23, ','), thing)) {
        online = 0;
    } else {
        return;
    }
    /* The write budget: a thing written less than a period ago has its notice held back (the
     * latest per broker), written by the tick; one without an entry is written now, and gets
     * one if the store knows it (a client that is no thing never does). */
    ota_svc_pace_thing_t *e = ota_svc_pace_find(inv->pace, thing);
    if (e) {
        ota_svc_pace_hold(inv->pace, e, broker, online, now_ms);
        if (!ota_svc_pace_due(e, now_ms)) {
            inv->stats.held++;
            return;
        }
        write_held(inv, e, now_ms);
        ota_svc_pace_written(inv->pace, e, now_ms);
        return;
    }
    ota_store_presence_note_t note = {.broker = broker, .online = online, .at_ms = now_ms};
    if (write_notices(inv, thing, &note, 1) == OTA_STORE_OK &&
        !ota_svc_pace_add(inv->pace, thing, now_ms))
        inv->stats.untracked++; /* the table is full: written at once, each */
}

int ota_svc_inventory_handle(ota_svc_inventory_t *inv, const char *topic, const void *payload,
                             size_t len, int64_t now_ms)
{
    if (!inv || !topic)
        return 0;
    if (strcmp(topic, "$SYS/broker/log/N") == 0) {
        handle_log(inv, inv->broker, payload, len, now_ms);
        return 1;
    }
    /* Another broker's notices, bridged: PREFIX<K>/log/N, K one digit from 1 to the most. */
    const char *pp = OTA_SVC_INVENTORY_PRESENCE_PREFIX;
    size_t pl = strlen(pp);
    if (strncmp(topic, pp, pl) == 0) {
        char k = topic[pl];
        if (k >= '1' && k < '1' + OTA_SVC_INVENTORY_BROKERS_MAX &&
            strcmp(topic + pl + 1, "/log/N") == 0)
            handle_log(inv, (unsigned)(k - '0'), payload, len, now_ms);
        return 1;
    }
    const char *prefix = "$aws/things/", *suffix = "/shadow/update";
    size_t plen = strlen(prefix), slen = strlen(suffix), tlen = strlen(topic);
    if (tlen <= plen + slen || strncmp(topic, prefix, plen) != 0 ||
        strcmp(topic + tlen - slen, suffix) != 0)
        return 0;
    char thing[OTA_STORE_THING_NAME_MAX + 1];
    if (!thing_word(topic + plen, topic + tlen - slen, thing))
        return 1; /* not a thing's topic: nothing to answer on */
    handle_update(inv, thing, (const char *)payload, len, now_ms);
    return 1;
}

void ota_svc_inventory_flush(ota_svc_inventory_t *inv, int64_t now_ms)
{
    if (inv)
        ota_svc_pace_sweep(inv->pace, now_ms, OTA_SVC_INVENTORY_ALL, write_held, inv);
}

int ota_svc_inventory_tick(ota_svc_inventory_t *inv, int64_t now_ms)
{
    if (!inv)
        return 0;
    /* the notices the write budget held back whose period has passed */
    ota_svc_pace_sweep(inv->pace, now_ms, 0, write_held, inv);
    if (!inv->pending || now_ms - inv->pending_tried_ms < 1000)
        return 0;
    inv->pending_tried_ms = now_ms;
    return ota_svc_inventory_gap(inv, inv->pending, "a notice the store could not take", now_ms) < 0
               ? -1
               : 0;
}
