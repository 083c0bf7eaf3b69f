/*
 * otter broker plugin: per-device publish limits for Mosquitto 2.0 (plugin API 5).
 *
 * The broker's packet limit is global and must let the service publish 128 KiB
 * blocks, and Mosquitto does not bound QoS 0 deliveries to an online client in
 * bytes: one device flooding its own topics with large QoS 0 publishes grows
 * the broker's queue for the service by gigabytes. This plugin, for clients
 * logged in as things, refuses
 *   - publishes whose payload is larger than max_payload bytes, and
 *   - publishes over the thing's budget: two token buckets per thing (its
 *     username), one in messages, one in payload bytes, each refilled at its
 *     rate per second up to its burst; kept across the thing's connections
 *     (a reconnect does not refill them);
 * with at most one log line per thing every LOG_INTERVAL_S seconds. It does so
 * in the write access check (MOSQ_EVT_ACL_CHECK, MOSQ_ACL_WRITE), which the
 * broker makes for every publish and for a will before it is sent, so wills
 * are held to the same limits; the plugin line must come before the
 * dynamic-security one, whose allowing answer ends the check ('otter broker
 * init' writes it so). A refused QoS 0 publish vanishes; a QoS 1/2 one is
 * acknowledged as not authorized.
 *
 * Exempt (never limited): clients without a username (the broker's own bridge
 * connections), the usernames in exempt_users and those that start with
 * exempt_prefix (the service's instances, the CLI, the bridges' logins).
 *
 * Options (plugin_opt_NAME VALUE lines after the plugin line; 'otter broker
 * init' writes all of them): max_payload, messages_per_second, message_burst,
 * bytes_per_second, byte_burst (positive integers), exempt_users (names
 * separated by commas), exempt_prefix. Mosquitto gives a plugin only the
 * options that follow its own plugin line, so any other name is a mistake (a
 * misspelt limit would leave the default in force): the plugin refuses to load
 * and the broker does not start.
 *
 * Memory: one small record per thing that has published in the last few
 * seconds: a record whose buckets would be full again is the same as none, and
 * is freed when its table chain is next walked.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

/** Seconds between two log lines about the same client's dropped publishes. */
#define LOG_INTERVAL_S 10

/** Buckets of the client table (chained; grows no further). */
#define TABLE_SIZE 4096u

/** Nanoseconds per second. */
#define NS_PER_S 1000000000.0

/** The limits, from the plugin options. */
typedef struct limits {
    uint32_t max_payload;       /**< largest payload of a device's publish, bytes */
    double messages_per_second; /**< message bucket refill */
    double message_burst;       /**< message bucket size */
    double bytes_per_second;    /**< byte bucket refill */
    double byte_burst;          /**< byte bucket size */
    char *exempt_users;         /**< ",name,name," or NULL */
    char *exempt_prefix;        /**< or NULL */
} limits_t;

/** One thing that has published. */
typedef struct client_state {
    struct client_state *next;
    char *username;             /**< the thing: the key */
    double messages;            /**< tokens in the message bucket */
    double bytes;               /**< tokens in the byte bucket */
    int64_t refilled_ns;        /**< when the buckets were last refilled */
    int64_t logged_ns;          /**< when a drop was last logged, 0 never */
    unsigned long dropped_size; /**< over max_payload since the last log line */
    unsigned long dropped_rate; /**< over budget since the last log line */
    char client_id[64];         /**< of the last refused publish, for the log */
} client_state_t;

/** The plugin's state. */
typedef struct plugin {
    mosquitto_plugin_id_t *id;
    limits_t limits;
    int64_t idle_ns; /**< idle this long, a record's buckets are full again: it is freed */
    client_state_t *table[TABLE_SIZE];
} plugin_t;

/* Nanoseconds of the monotonic clock. */
static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + (int64_t)ts.tv_nsec;
}

/* The table bucket of a username (FNV-1a). */
static size_t slot_of(const char *username)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)username; *p != '\0'; p++) {
        h = (h ^ *p) * 16777619u;
    }
    return (size_t)(h % TABLE_SIZE);
}

/* Whether a username is exempt from the limits. */
static int is_exempt(const limits_t *l, const char *username)
{
    if (username == NULL) {
        return 1;
    }
    if (l->exempt_prefix != NULL && l->exempt_prefix[0] != '\0' &&
        strncmp(username, l->exempt_prefix, strlen(l->exempt_prefix)) == 0) {
        return 1;
    }
    size_t n = strlen(username);
    if (l->exempt_users != NULL && n > 0) {
        for (const char *p = strstr(l->exempt_users, username); p != NULL;
             p = strstr(p + 1, username)) {
            if (p > l->exempt_users && p[-1] == ',' && p[n] == ',') {
                return 1;
            }
        }
    }
    return 0;
}

static void log_drops(client_state_t *s, int64_t now);

/* The state of a thing, made (with full buckets) on its first publish; NULL without memory.
 * Records of the same chain idle long enough to be full again are freed on the way. */
static client_state_t *state_of(plugin_t *pl, const char *username, int64_t now)
{
    client_state_t *found = NULL;
    for (client_state_t **pp = &pl->table[slot_of(username)]; *pp != NULL;) {
        client_state_t *s = *pp;
        if (strcmp(s->username, username) == 0) {
            found = s;
        } else if (now - s->refilled_ns >= pl->idle_ns) {
            log_drops(s, now);
            *pp = s->next;
            free(s->username);
            free(s);
            continue;
        }
        pp = &s->next;
    }
    if (found != NULL) {
        return found;
    }
    client_state_t *s = calloc(1, sizeof *s);
    if (s == NULL || (s->username = strdup(username)) == NULL) {
        free(s);
        return NULL;
    }
    size_t k = slot_of(username);
    s->messages = pl->limits.message_burst;
    s->bytes = pl->limits.byte_burst;
    s->refilled_ns = now;
    s->next = pl->table[k];
    pl->table[k] = s;
    return s;
}

/* Logs a thing's drops since the last line (when there are any). */
static void log_drops(client_state_t *s, int64_t now)
{
    if (s->dropped_size == 0 && s->dropped_rate == 0) {
        return;
    }
    mosquitto_log_printf(MOSQ_LOG_WARNING,
                         "otter_device_limits: dropped %lu publishes from '%s' (user '%s'): %lu "
                         "over max_payload, %lu over the rate budget",
                         s->dropped_size + s->dropped_rate, s->client_id, s->username,
                         s->dropped_size, s->dropped_rate);
    s->dropped_size = 0;
    s->dropped_rate = 0;
    s->logged_ns = now;
}

/* Refills a client's buckets for the time since the last refill. */
static void refill(const limits_t *l, client_state_t *s, int64_t now)
{
    double dt = (double)(now - s->refilled_ns) / NS_PER_S;
    if (dt <= 0.0) {
        return;
    }
    s->refilled_ns = now;
    s->messages += dt * l->messages_per_second;
    if (s->messages > l->message_burst) {
        s->messages = l->message_burst;
    }
    s->bytes += dt * l->bytes_per_second;
    if (s->bytes > l->byte_burst) {
        s->bytes = l->byte_burst;
    }
}

/* MOSQ_EVT_ACL_CHECK: for a thing's publish (or will), MOSQ_ERR_ACL_DENIED refuses it; anything
 * else is left to the next plugin (the dynamic-security rules). */
static int on_acl_check(int event, void *event_data, void *userdata)
{
    (void)event;
    plugin_t *pl = userdata;
    struct mosquitto_evt_acl_check *ev = event_data;
    if (ev->access != MOSQ_ACL_WRITE) {
        return MOSQ_ERR_PLUGIN_DEFER;
    }
    const char *username = mosquitto_client_username(ev->client);
    if (is_exempt(&pl->limits, username)) {
        return MOSQ_ERR_PLUGIN_DEFER;
    }
    int64_t now = now_ns();
    client_state_t *s = state_of(pl, username, now);
    if (s == NULL) {
        return MOSQ_ERR_ACL_DENIED; /* no memory: refuse rather than queue */
    }
    refill(&pl->limits, s, now);
    int drop = 0;
    if (ev->payloadlen > pl->limits.max_payload) {
        s->dropped_size++;
        drop = 1;
    } else if (s->messages < 1.0 || s->bytes < (double)ev->payloadlen) {
        s->dropped_rate++;
        drop = 1;
    } else {
        s->messages -= 1.0;
        s->bytes -= (double)ev->payloadlen;
    }
    if (!drop) {
        return MOSQ_ERR_PLUGIN_DEFER;
    }
    const char *id = mosquitto_client_id(ev->client);
    snprintf(s->client_id, sizeof s->client_id, "%s", id != NULL ? id : "");
    if (s->logged_ns == 0 || now - s->logged_ns >= (int64_t)LOG_INTERVAL_S * 1000000000) {
        log_drops(s, now);
    }
    return MOSQ_ERR_ACL_DENIED;
}

/* MOSQ_EVT_DISCONNECT: logs the thing's drops not yet logged (its record stays: a reconnect
 * finds its buckets as they were). */
static int on_disconnect(int event, void *event_data, void *userdata)
{
    (void)event;
    plugin_t *pl = userdata;
    struct mosquitto_evt_disconnect *ev = event_data;
    const char *username = mosquitto_client_username(ev->client);
    if (username == NULL) {
        return MOSQ_ERR_SUCCESS;
    }
    for (client_state_t *s = pl->table[slot_of(username)]; s != NULL; s = s->next) {
        if (strcmp(s->username, username) == 0) {
            log_drops(s, now_ns());
            break;
        }
    }
    return MOSQ_ERR_SUCCESS;
}

/* Parses a positive integer option value; 0 when it is not one. */
static unsigned long parse_positive(const char *key, const char *value)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(value, &end, 10);
    if (value[0] < '0' || value[0] > '9' || errno != 0 || end == value || *end != '\0' || v == 0 ||
        v > 0xFFFFFFFFul) {
        mosquitto_log_printf(MOSQ_LOG_ERR,
                             "otter_device_limits: bad plugin_opt_%s '%s': give a positive "
                             "integer below 2^32",
                             key, value);
        return 0;
    }
    return v;
}

/* Copies an option string, with commas around it when comma_list. */
static char *copy_option(const char *value, int comma_list)
{
    size_t n = strlen(value);
    char *c = malloc(n + 3);
    if (c != NULL) {
        snprintf(c, n + 3, comma_list ? ",%s," : "%s", value);
    }
    return c;
}

/* Reads the options into l (defaults first); 0, or -1 with an error logged. */
static int read_options(limits_t *l, const struct mosquitto_opt *opts, int n)
{
    l->max_payload = 32768;
    l->messages_per_second = 1000;
    l->message_burst = 4000;
    l->bytes_per_second = 1048576;
    l->byte_burst = 4194304;
    for (int i = 0; i < n; i++) {
        const char *k = opts[i].key, *v = opts[i].value;
        double *target = NULL;
        unsigned long x = 0;
        if (strcmp(k, "exempt_users") == 0 || strcmp(k, "exempt_prefix") == 0) {
            char **s = k[7] == 'u' ? &l->exempt_users : &l->exempt_prefix;
            free(*s);
            *s = copy_option(v, k[7] == 'u');
            if (*s == NULL) {
                return -1;
            }
            continue;
        }
        if (strcmp(k, "messages_per_second") == 0) {
            target = &l->messages_per_second;
        } else if (strcmp(k, "message_burst") == 0) {
            target = &l->message_burst;
        } else if (strcmp(k, "bytes_per_second") == 0) {
            target = &l->bytes_per_second;
        } else if (strcmp(k, "byte_burst") == 0) {
            target = &l->byte_burst;
        } else if (strcmp(k, "max_payload") != 0) {
            mosquitto_log_printf(MOSQ_LOG_ERR,
                                 "otter_device_limits: unknown plugin_opt_%s: the options are "
                                 "max_payload, messages_per_second, message_burst, "
                                 "bytes_per_second, byte_burst, exempt_users, exempt_prefix",
                                 k);
            return -1;
        }
        if ((x = parse_positive(k, v)) == 0) {
            return -1;
        }
        if (target != NULL) {
            *target = (double)x;
        } else {
            l->max_payload = (uint32_t)x;
        }
    }
    return 0;
}

/* Frees the plugin's state. */
static void plugin_free(plugin_t *pl)
{
    for (size_t k = 0; k < TABLE_SIZE; k++) {
        while (pl->table[k] != NULL) {
            client_state_t *s = pl->table[k];
            pl->table[k] = s->next;
            free(s->username);
            free(s);
        }
    }
    free(pl->limits.exempt_users);
    free(pl->limits.exempt_prefix);
    free(pl);
}

/** Plugin API: the interface version this plugin implements (5, Mosquitto 2.0). */
int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
    for (int i = 0; i < supported_version_count; i++) {
        if (supported_versions[i] == 5) {
            return 5;
        }
    }
    return -1;
}

/** Plugin API: reads the options and registers the write-access check and disconnect callbacks. */
int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
                          struct mosquitto_opt *options, int option_count)
{
    plugin_t *pl = calloc(1, sizeof *pl);
    if (pl == NULL) {
        return MOSQ_ERR_NOMEM;
    }
    pl->id = identifier;
    if (read_options(&pl->limits, options, option_count) != 0) {
        plugin_free(pl);
        return MOSQ_ERR_INVAL;
    }
    /* Full again after the longer of the two refill times, from empty. */
    const limits_t *lim = &pl->limits;
    double idle_s = lim->message_burst / lim->messages_per_second;
    if (lim->byte_burst / lim->bytes_per_second > idle_s) {
        idle_s = lim->byte_burst / lim->bytes_per_second;
    }
    pl->idle_ns = (int64_t)(idle_s * NS_PER_S) + 1;
    if (mosquitto_callback_register(identifier, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, pl) != 0 ||
        mosquitto_callback_register(identifier, MOSQ_EVT_DISCONNECT, on_disconnect, NULL, pl) !=
            0) {
        mosquitto_callback_unregister(identifier, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
        plugin_free(pl);
        return MOSQ_ERR_UNKNOWN;
    }
    const limits_t *l = &pl->limits;
    mosquitto_log_printf(MOSQ_LOG_INFO,
                         "otter_device_limits: things' publishes at most %lu bytes, %.0f/s "
                         "(burst %.0f), %.0f bytes/s (burst %.0f)",
                         (unsigned long)l->max_payload, l->messages_per_second, l->message_burst,
                         l->bytes_per_second, l->byte_burst);
    *userdata = pl;
    return MOSQ_ERR_SUCCESS;
}

/** Plugin API: unregisters the callbacks and frees every client's state. */
int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
    (void)options;
    (void)option_count;
    plugin_t *pl = userdata;
    if (pl != NULL) {
        mosquitto_callback_unregister(pl->id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
        mosquitto_callback_unregister(pl->id, MOSQ_EVT_DISCONNECT, on_disconnect, NULL);
        plugin_free(pl);
    }
    return MOSQ_ERR_SUCCESS;
}
