/* otter CLI: the broker's logins and roles (Mosquitto's dynamic-security plugin). */
#include "cli_dynsec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <mbedtls/md.h>
#include <mbedtls/pkcs5.h>
#include <mosquitto.h>

#include "cli_broker.h"
#include "cli_federation.h"

/* The plugin's password hashing: PBKDF2-HMAC-SHA512, 12-byte salt, 64-byte hash. */
#define PW_SALT_LEN 12
#define PW_HASH_LEN 64
#define PW_ITERATIONS 101

/* How long the CLI waits for the running broker at each step (a batch of things is
 * LIVE_BATCH x 2 saves of the plugin's whole file). */
#define LIVE_TIMEOUT_MS 30000

static const char control_topic[] = "$CONTROL/dynamic-security/v1";
static const char response_topic[] = "$CONTROL/dynamic-security/v1/response";

/* Adds an ACL entry {acltype, topic, allow: true} to the array acls; returns it. */
static cJSON *add_acl(cJSON *acls, const char *type, const char *topic)
{
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "acltype", type);
    cJSON_AddStringToObject(a, "topic", topic);
    cJSON_AddBoolToObject(a, "allow", 1);
    cJSON_AddItemToArray(acls, a);
    return a;
}

/* Adds send, receive and subscribe rights on a topic filter. */
static void add_rw(cJSON *acls, const char *filter)
{
    add_acl(acls, "publishClientSend", filter);
    add_acl(acls, "publishClientReceive", filter);
    add_acl(acls, "subscribePattern", filter);
}

/* A role object {rolename, acls} (also the body of a createRole command). */
static cJSON *role_object(const char *name, cJSON *acls)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "rolename", name);
    cJSON_AddItemToObject(r, "acls", acls);
    return r;
}

/*
 * The topics of the service's answers and notices to a thing, below
 * $aws/things/<thing>/: a thing may receive only these and may not send on
 * them, so no topic is both, and a thing never receives what it sent itself.
 * Otherwise a device that subscribes to its own topics and never reads makes
 * the broker buffer its own publishes for it, up to max_queued_messages of
 * them (QoS 0 packets are not counted in max_queued_bytes).
 */
static const char *const answer_topics[] = {
    "jobs/notify",
    "jobs/notify-next",
    "jobs/+/accepted", /* get, start-next, an unknown topic's InvalidTopic */
    "jobs/+/rejected",
    "jobs/+/+/accepted", /* $next/get, <job>/get, <job>/update */
    "jobs/+/+/rejected",
    "jobs/+/+/+/accepted",
    "jobs/+/+/+/rejected",
    "streams/+/data/+",
    "streams/+/description/+",
    "streams/+/rejected/+",
    "shadow/update/accepted",
    "shadow/update/rejected",
    NULL,
};

/*
 * The rules every thing shares (role CLI_THINGS_ROLE, checked before a thing's own role): no
 * thing may send on any thing's answer topics, and a thing may receive those only. Which
 * thing's answers it receives is bounded by its own role, which lets it subscribe to its own
 * topics only. Shared, so that a thing's own role is 6 rules instead of 32: the plugin
 * rewrites its whole file after every change, so adding n things to a running broker costs
 * about n^2 times what one thing takes in the file.
 */
static cJSON *things_role(void)
{
    char topic[300];
    cJSON *acls = cJSON_CreateArray();
    for (const char *const *t = answer_topics; *t != NULL; t++) {
        snprintf(topic, sizeof topic, "$aws/things/+/%s", *t);
        cJSON *deny = add_acl(acls, "publishClientSend", topic);
        cJSON_ReplaceItemInObjectCaseSensitive(deny, "allow", cJSON_CreateBool(0));
        add_acl(acls, "publishClientReceive", topic);
    }
    return role_object(CLI_THINGS_ROLE, acls);
}

/* The role of one thing: sending on and subscribing to its own jobs, streams and shadow topics,
 * nothing else (what it may receive and not send comes from things_role). */
static cJSON *thing_role(const char *thing)
{
    static const char *const own[] = {"jobs/#", "streams/#", "shadow/#"};
    char role[160], topic[300];
    snprintf(role, sizeof role, "thing:%s", thing);
    cJSON *acls = cJSON_CreateArray();
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) {
        snprintf(topic, sizeof topic, "$aws/things/%s/%s", thing, own[i]);
        add_acl(acls, "publishClientSend", topic);
        add_acl(acls, "subscribePattern", topic);
    }
    return role_object(role, acls);
}

/* A client object: username, optional bound client id, its roles. */
static cJSON *client_object(const char *user, const char *client_id, const char *role)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "username", user);
    if (client_id != NULL) {
        cJSON_AddStringToObject(c, "clientid", client_id);
    }
    cJSON *roles = cJSON_AddArrayToObject(c, "roles");
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "rolename", role);
    cJSON_AddItemToArray(roles, r);
    return c;
}

/* The client object of a thing: its own role, and the shared rules checked first. */
static cJSON *thing_client(const char *thing)
{
    char role[160];
    snprintf(role, sizeof role, "thing:%s", thing);
    cJSON *c = client_object(thing, thing, role);
    cJSON *shared = cJSON_CreateObject();
    cJSON_AddStringToObject(shared, "rolename", CLI_THINGS_ROLE);
    cJSON_AddNumberToObject(shared, "priority", 1);
    cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(c, "roles"), shared);
    return c;
}

/* Adds the hashed password fields the plugin reads from its file. */
static int add_password_hash(cJSON *client, const char *password)
{
    uint8_t salt[PW_SALT_LEN], hash[PW_HASH_LEN];
    if (cli_random(salt, sizeof salt) != 0) {
        return -1;
    }
    mbedtls_md_context_t md;
    mbedtls_md_init(&md);
    int rc = mbedtls_md_setup(&md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA512), 1);
    if (rc == 0) {
        rc = mbedtls_pkcs5_pbkdf2_hmac(&md, (const unsigned char *)password, strlen(password), salt,
                                       sizeof salt, PW_ITERATIONS, sizeof hash, hash);
    }
    mbedtls_md_free(&md);
    char *salt64 = rc == 0 ? cli_base64(salt, sizeof salt) : NULL;
    char *hash64 = rc == 0 ? cli_base64(hash, sizeof hash) : NULL;
    if (salt64 != NULL && hash64 != NULL) {
        cJSON_AddStringToObject(client, "password", hash64);
        cJSON_AddStringToObject(client, "salt", salt64);
        cJSON_AddNumberToObject(client, "iterations", PW_ITERATIONS);
    } else {
        rc = -1;
    }
    free(salt64);
    free(hash64);
    return rc == 0 ? 0 : -1;
}

/* The request topics the broker's bridge carries (--shared-streams): streams and Jobs API. */
static const char *const bridged[] = {
    "$aws/things/+/streams/+/get/+", "$aws/things/+/streams/+/describe/+",
    "$aws/things/+/jobs/get",        "$aws/things/+/jobs/start-next",
    "$aws/things/+/jobs/+/get",      "$aws/things/+/jobs/+/update"};

/* Prints a JSON tree with a final newline into a heap string. */
static char *print_json(cJSON *o)
{
    char *s = o ? cJSON_Print(o) : NULL;
    char *t = s ? cli_sprintf("%s\n", s) : NULL;
    cJSON_free(s);
    return t;
}

char *cli_dynsec_initial(const char *admin_pw, const char *service_pw, int bridge,
                         const char *bridge_pw)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *clients = cJSON_AddArrayToObject(root, "clients");
    cJSON *admin = client_object(CLI_ADMIN_USER, CLI_ADMIN_USER, CLI_ADMIN_USER);
    cJSON *service = client_object(CLI_SERVICE_USER, NULL, CLI_SERVICE_USER);
    cJSON_AddItemToArray(clients, admin);
    cJSON_AddItemToArray(clients, service);
    int rc = 0;
    if (admin_pw != NULL) {
        rc |= add_password_hash(admin, admin_pw);
    }
    if (service_pw != NULL) {
        rc |= add_password_hash(service, service_pw);
    }
    if (bridge) {
        cJSON *login = client_object(CLI_BRIDGE_USER, CLI_BRIDGE_USER, CLI_BRIDGE_USER);
        cJSON_AddItemToArray(clients, login);
        if (bridge_pw != NULL) {
            rc |= add_password_hash(login, bridge_pw);
        }
    }
    cJSON_AddArrayToObject(root, "groups");
    cJSON *roles = cJSON_AddArrayToObject(root, "roles");
    cJSON *acls = cJSON_CreateArray();
    add_rw(acls, "$CONTROL/dynamic-security/#");
    cJSON_AddItemToArray(roles, role_object(CLI_ADMIN_USER, acls));
    /* The service answers for every thing, also through shared subscriptions. */
    acls = cJSON_CreateArray();
    add_rw(acls, "$aws/things/#");
    add_acl(acls, "subscribePattern", "$share/+/$aws/things/#");
    /* stream requests the broker's bridge republishes under the share prefix */
    add_acl(acls, "subscribePattern", "$share/+/" CLI_SHARE_PREFIX "$aws/things/#");
    add_acl(acls, "publishClientReceive", CLI_SHARE_PREFIX "$aws/things/#");
    /* presence: the broker's connection notices, and in a federation the other brokers'
     * (their bridges publish them under CLI_PRESENCE_PREFIX<K>/, apart from the
     * share prefix) */
    add_acl(acls, "subscribePattern", "$SYS/broker/log/N");
    add_acl(acls, "publishClientReceive", "$SYS/broker/log/N");
    add_acl(acls, "subscribePattern", CLI_PRESENCE_PREFIX "+/log/N");
    add_acl(acls, "publishClientReceive", CLI_PRESENCE_PREFIX "+/log/N");
    cJSON_AddItemToArray(roles, role_object(CLI_SERVICE_USER, acls));
    cJSON_AddItemToArray(roles, things_role());
    if (bridge) {
        /* The bridge only reads the things' requests (it republishes them locally). */
        acls = cJSON_CreateArray();
        for (size_t i = 0; i < sizeof bridged / sizeof bridged[0]; i++) {
            add_acl(acls, "subscribePattern", bridged[i]);
            add_acl(acls, "publishClientReceive", bridged[i]);
        }
        cJSON_AddItemToArray(roles, role_object(CLI_BRIDGE_USER, acls));
    }
    cJSON *def = cJSON_AddObjectToObject(root, "defaultACLAccess");
    cJSON_AddBoolToObject(def, "publishClientSend", 0);
    cJSON_AddBoolToObject(def, "publishClientReceive", 0);
    cJSON_AddBoolToObject(def, "subscribe", 0);
    cJSON_AddBoolToObject(def, "unsubscribe", 1);
    char *text = rc == 0 ? print_json(root) : NULL;
    cJSON_Delete(root);
    return text;
}

/* ------------------------------------------------------- the file itself -- */

/* Reads and parses the dynsec file; prints the error line on failure. */
static cJSON *read_file_json(const char *path)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (cli_read_file(path, &buf, &len) != 0) {
        cli_fail(CLI_EXIT_FAIL, "cannot read '%s' (%s); run 'otter broker init' first", path,
                 strerror(errno));
        return NULL;
    }
    cJSON *o = cJSON_Parse((const char *)buf);
    free(buf);
    if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(o, "clients")) ||
        !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(o, "roles"))) {
        cJSON_Delete(o);
        cli_fail(CLI_EXIT_FAIL, "'%s' is damaged; restore it or run 'otter broker init' again",
                 path);
        return NULL;
    }
    return o;
}

/* Index of the array entry whose `key` is `value`, or -1. */
static int find_named(const cJSON *array, const char *key, const char *value)
{
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, array)
    {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, key);
        if (cJSON_IsString(v) && strcmp(v->valuestring, value) == 0) {
            return i;
        }
        i++;
    }
    return -1;
}

/* The path (path[CLI_PATH_MAX]) and parsed tree of the data folder's dynsec.json;
 * NULL after printing the error line. */
static cJSON *open_file_json(const cli_ctx_t *ctx, char *path)
{
    if (cli_data_path(ctx, path, CLI_PATH_MAX, "broker/dynsec.json") != 0) {
        cli_fail(CLI_EXIT_FAIL, "data folder path too long; use a shorter --data-dir");
        return NULL;
    }
    return read_file_json(path);
}

/* Writes the edited tree back when rc is CLI_EXIT_OK (atomic replace, 0600); frees it. */
static int save_file_json(const char *path, cJSON *root, int rc)
{
    char *text = rc == CLI_EXIT_OK ? print_json(root) : NULL;
    cJSON_Delete(root);
    if (rc == CLI_EXIT_OK &&
        (text == NULL || cli_replace_file(path, text, strlen(text), 0600) != 0)) {
        rc = cli_fail(CLI_EXIT_FAIL, "cannot write '%s' (%s); check permissions", path,
                      strerror(errno));
    }
    free(text);
    return rc;
}

/* Adds (add = 1) or removes (add = 0) things in the file. */
static int edit_file(const cli_ctx_t *ctx, const cli_dynsec_thing_t *things, size_t n, int add)
{
    char path[CLI_PATH_MAX];
    cJSON *root = open_file_json(ctx, path);
    if (root == NULL) {
        return CLI_EXIT_FAIL;
    }
    cJSON *clients = cJSON_GetObjectItemCaseSensitive(root, "clients");
    cJSON *roles = cJSON_GetObjectItemCaseSensitive(root, "roles");
    int rc = CLI_EXIT_OK;
    if (add && find_named(roles, "rolename", CLI_THINGS_ROLE) < 0) {
        /* A file written before the shared rules existed. */
        cJSON_AddItemToArray(roles, things_role());
    }
    for (size_t i = 0; i < n && rc == CLI_EXIT_OK; i++) {
        char role[160];
        snprintf(role, sizeof role, "thing:%s", things[i].name);
        int ci = find_named(clients, "username", things[i].name);
        int ri = find_named(roles, "rolename", role);
        if (!add) {
            if (ci >= 0) {
                cJSON_DeleteItemFromArray(clients, ci);
            }
            if (ri >= 0) {
                cJSON_DeleteItemFromArray(roles, ri);
            }
            continue;
        }
        if (ci >= 0 || ri >= 0) {
            rc = cli_fail(CLI_EXIT_FAIL, "'%s' already has a broker login; choose another name",
                          things[i].name);
            break;
        }
        cJSON *c = thing_client(things[i].name);
        cJSON_AddItemToArray(clients, c);
        cJSON_AddItemToArray(roles, thing_role(things[i].name));
        if (things[i].password != NULL && add_password_hash(c, things[i].password) != 0) {
            rc = cli_fail(CLI_EXIT_FAIL, "cannot hash a password; try again");
        }
    }
    return save_file_json(path, root, rc);
}

/* ------------------------------------------------- the running broker -- */

/** State of one exchange with the running broker. */
struct live {
    struct mosquitto *m;
    int connack; /* -1 until CONNACK, then its code */
    int subscribed;
    char *response; /* the plugin's answer */
};

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
    (void)m;
    ((struct live *)obj)->connack = rc;
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *granted)
{
    (void)m;
    (void)mid;
    ((struct live *)obj)->subscribed = (n > 0 && granted[0] <= 2) ? 1 : -1;
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    struct live *l = obj;
    (void)m;
    if (l->response == NULL && strcmp(msg->topic, response_topic) == 0) {
        l->response = cli_sprintf("%.*s", msg->payloadlen, (const char *)msg->payload);
    }
}

/* Whether the step a live exchange waits for has happened. */
typedef int (*live_done_fn)(const struct live *l);

static int got_connack(const struct live *l)
{
    return l->connack >= 0;
}

static int got_suback(const struct live *l)
{
    return l->subscribed != 0;
}

static int got_response(const struct live *l)
{
    return l->response != NULL;
}

/* Runs the network loop until done(l) or the time is up; 0 when done. */
static int run_until(struct live *l, live_done_fn done)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!done(l)) {
        if (mosquitto_loop(l->m, 100, 1) != MOSQ_ERR_SUCCESS) {
            return -1;
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > LIVE_TIMEOUT_MS) {
            return -1;
        }
    }
    return 0;
}

/* Connects l with a login; MOSQ_ERR_SUCCESS once the broker accepted it. */
static int live_open(struct live *l, const cli_login_t *login)
{
    mosquitto_lib_init();
    l->connack = -1;
    l->m = mosquitto_new(login->client_id, true, l);
    if (l->m == NULL) {
        return MOSQ_ERR_NOMEM;
    }
    mosquitto_connect_callback_set(l->m, on_connect);
    mosquitto_subscribe_callback_set(l->m, on_subscribe);
    mosquitto_message_callback_set(l->m, on_message);
    int rc =
        login->cafile[0] != '\0'
            ? mosquitto_tls_set(l->m, login->cafile, NULL, login->certfile, login->keyfile, NULL)
            : mosquitto_username_pw_set(l->m, login->username, login->password);
    if (rc == MOSQ_ERR_SUCCESS) {
        rc = mosquitto_connect(l->m, login->host, (int)login->port, 30);
    }
    if (rc == MOSQ_ERR_SUCCESS && run_until(l, got_connack) != 0) {
        rc = MOSQ_ERR_CONN_LOST;
    }
    if (rc == MOSQ_ERR_SUCCESS && l->connack != 0) {
        rc = MOSQ_ERR_CONN_REFUSED;
    }
    return rc;
}

static void live_close(struct live *l);

/* Connects as the admin with the login broker init wrote. */
static int live_connect(const cli_ctx_t *ctx, struct live *l)
{
    cli_login_t login;
    if (cli_broker_login(ctx, "broker/admin.credentials", &login) != CLI_EXIT_OK) {
        return CLI_EXIT_FAIL;
    }
    int rc = live_open(l, &login);
    if (rc != MOSQ_ERR_SUCCESS) {
        return cli_fail(CLI_EXIT_FAIL,
                        "the broker at %s:%u does not take the CLI's login (%s); check "
                        "that it runs with %s/broker/mosquitto.conf",
                        login.host, login.port,
                        l->connack > 0 ? mosquitto_connack_string(l->connack)
                                       : mosquitto_strerror(rc),
                        ctx->data_dir);
    }
    return CLI_EXIT_OK;
}

int cli_dynsec_login_refused(const cli_ctx_t *ctx, const char *rel)
{
    cli_login_t login;
    struct live l;
    memset(&l, 0, sizeof l);
    if (cli_broker_login(ctx, rel, &login) != CLI_EXIT_OK) {
        return -1;
    }
    int refused = live_open(&l, &login) != MOSQ_ERR_SUCCESS;
    live_close(&l);
    return refused;
}

/* Sends one batch of commands; *responses receives the plugin's answers. */
static int live_exchange(struct live *l, cJSON *commands, cJSON **responses)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "commands", commands);
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    free(l->response);
    l->response = NULL;
    int rc = text == NULL ? -1 : 0;
    if (rc == 0 && l->subscribed == 0 &&
        (mosquitto_subscribe(l->m, NULL, response_topic, 1) != MOSQ_ERR_SUCCESS ||
         run_until(l, got_suback) != 0 || l->subscribed != 1)) {
        rc = -1;
    }
    if (rc == 0 && mosquitto_publish(l->m, NULL, control_topic, (int)strlen(text), text, 1,
                                     false) != MOSQ_ERR_SUCCESS) {
        rc = -1;
    }
    cJSON_free(text);
    if (rc == 0 && run_until(l, got_response) != 0) {
        rc = -1;
    }
    *responses = rc == 0 ? cJSON_Parse(l->response) : NULL;
    if (*responses == NULL) {
        return cli_fail(CLI_EXIT_FAIL,
                        "the running broker did not answer the change; check its log and try "
                        "again");
    }
    return CLI_EXIT_OK;
}

/* The error text of the i-th response, or NULL when that command succeeded. */
static const char *response_error(const cJSON *responses, int i)
{
    const cJSON *r =
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(responses, "responses"), i);
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(r, "error");
    if (r == NULL) {
        return "no answer";
    }
    return cJSON_IsString(err) ? err->valuestring : NULL;
}

static void live_close(struct live *l)
{
    if (l->m != NULL) {
        mosquitto_disconnect(l->m);
        mosquitto_destroy(l->m);
    }
    free(l->response);
    mosquitto_lib_cleanup();
}

/* A command object {"command": name, ...}: a copy of body with the name added. */
static cJSON *command(const char *name, cJSON *body)
{
    cJSON_AddStringToObject(body, "command", name);
    return body;
}

/* The commands that remove things (deleteClient, deleteRole). */
static cJSON *remove_commands(const cli_dynsec_thing_t *things, size_t n)
{
    cJSON *cmds = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        char role[160];
        snprintf(role, sizeof role, "thing:%s", things[i].name);
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "username", things[i].name);
        cJSON_AddItemToArray(cmds, command("deleteClient", c));
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "rolename", role);
        cJSON_AddItemToArray(cmds, command("deleteRole", r));
    }
    return cmds;
}

/*
 * Things per control message: the plugin saves its whole file after each
 * command, so a batch takes 2 x LIVE_BATCH saves, which must stay well within
 * LIVE_TIMEOUT_MS with thousands of things in the file on a loaded machine. A
 * thing's commands (6 access rules of up to about 200 bytes each with a
 * 128-character name, and its client) take under 2 KiB, far under the
 * broker's packet limit.
 */
#define LIVE_BATCH 16

/* The commands that create things[0..n) (createRole, createClient for each). */
static cJSON *create_commands(const cli_dynsec_thing_t *things, size_t n)
{
    cJSON *cmds = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        cJSON_AddItemToArray(cmds, command("createRole", thing_role(things[i].name)));
        cJSON *c = thing_client(things[i].name);
        if (things[i].password != NULL) {
            cJSON_AddStringToObject(c, "password", things[i].password);
        }
        cJSON_AddItemToArray(cmds, command("createClient", c));
    }
    return cmds;
}

/* Adds things through the running broker, in batches; all or none. */
static int add_live(struct live *l, const cli_dynsec_thing_t *things, size_t n)
{
    /* made[2i]: role of thing i created; made[2i+1]: its client. */
    unsigned char *made = calloc(2 * n + 1, 1);
    const char *err = NULL;
    cJSON *resp = NULL;
    int rc = made == NULL ? cli_fail(CLI_EXIT_FAIL, "out of memory; try again") : CLI_EXIT_OK;
    if (rc == CLI_EXIT_OK) {
        /* The shared rules, missing from a broker set up before they existed (refused as a
         * duplicate otherwise; a client naming a missing role is refused below). */
        cJSON *shared = cJSON_CreateArray();
        cJSON_AddItemToArray(shared, command("createRole", things_role()));
        rc = live_exchange(l, shared, &resp);
    }
    for (size_t first = 0; rc == CLI_EXIT_OK && err == NULL && first < n; first += LIVE_BATCH) {
        size_t k = n - first < LIVE_BATCH ? n - first : LIVE_BATCH;
        cJSON_Delete(resp);
        resp = NULL;
        rc = live_exchange(l, create_commands(things + first, k), &resp);
        for (size_t i = 0; rc == CLI_EXIT_OK && i < 2 * k; i++) {
            const char *e = response_error(resp, (int)i);
            made[2 * first + i] = e == NULL;
            err = err != NULL ? err : e;
        }
    }
    if (rc == CLI_EXIT_OK && err != NULL) {
        rc =
            cli_fail(CLI_EXIT_FAIL, "the broker refused the change (%s); nothing was changed", err);
    }
    if (rc != CLI_EXIT_OK && made != NULL) {
        /* Whatever part was taken is taken back, in batches as well. */
        cJSON *undo = cJSON_CreateArray();
        for (size_t i = 0; i < 2 * n; i++) {
            if (cJSON_GetArraySize(undo) >= 2 * LIVE_BATCH) {
                cJSON *undone = NULL;
                (void)live_exchange(l, undo, &undone);
                cJSON_Delete(undone);
                undo = cJSON_CreateArray();
            }
            if (made[i]) {
                char role[160];
                snprintf(role, sizeof role, "thing:%s", things[i / 2].name);
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, i % 2 ? "username" : "rolename",
                                        i % 2 ? things[i / 2].name : role);
                cJSON_AddItemToArray(undo, command(i % 2 ? "deleteClient" : "deleteRole", o));
            }
        }
        cJSON *undone = NULL;
        (void)live_exchange(l, undo, &undone);
        cJSON_Delete(undone);
    }
    cJSON_Delete(resp);
    free(made);
    return rc;
}

/* Adds or removes things through the running broker. */
static int edit_live(const cli_ctx_t *ctx, const cli_dynsec_thing_t *things, size_t n, int add)
{
    struct live l;
    memset(&l, 0, sizeof l);
    int rc = live_connect(ctx, &l);
    if (rc == CLI_EXIT_OK && add) {
        rc = add_live(&l, things, n);
    }
    for (size_t first = 0; rc == CLI_EXIT_OK && !add && first < n; first += LIVE_BATCH) {
        size_t k = n - first < LIVE_BATCH ? n - first : LIVE_BATCH;
        cJSON *resp = NULL;
        rc = live_exchange(&l, remove_commands(things + first, k), &resp);
        cJSON_Delete(resp);
    }
    live_close(&l);
    return rc;
}

/* Tells which broker of a federation was not changed, after the error line. */
static int member_failed(const cli_federation_member_t *m, const char *what)
{
    fprintf(stderr,
            "otter: the federation's broker in '%s' %s; every broker of the federation must run "
            "for thing changes: start it and run the command again\n",
            m->data_dir, what);
    return CLI_EXIT_FAIL;
}

int cli_dynsec_add_things(const cli_ctx_t *ctx, const cli_dynsec_thing_t *things, size_t n,
                          int *live)
{
    cli_federation_member_t m[CLI_FEDERATION_MAX];
    size_t nm = cli_federation_members(ctx, m, CLI_FEDERATION_MAX);
    *live = cli_broker_running(ctx) > 0;
    int rc = *live ? edit_live(ctx, things, n, 1) : edit_file(ctx, things, n, 1);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    /* The other brokers of a federation may run on other machines: they are
     * always changed through their running broker, all of them or none. */
    size_t done = 0;
    for (; rc == CLI_EXIT_OK && done < nm; done++) {
        if (edit_live(&m[done].ctx, things, n, 1) != CLI_EXIT_OK) {
            rc = member_failed(&m[done], "did not take the new logins; none was added");
            break;
        }
    }
    if (rc != CLI_EXIT_OK) {
        for (size_t i = 0; i < done; i++) {
            (void)edit_live(&m[i].ctx, things, n, 0);
        }
        (void)(*live ? edit_live(ctx, things, n, 0) : edit_file(ctx, things, n, 0));
    }
    return rc;
}

int cli_dynsec_remove_things(const cli_ctx_t *ctx, const cli_dynsec_thing_t *things, size_t n,
                             int live)
{
    cli_federation_member_t m[CLI_FEDERATION_MAX];
    size_t nm = cli_federation_members(ctx, m, CLI_FEDERATION_MAX);
    int rc = live ? edit_live(ctx, things, n, 0) : edit_file(ctx, things, n, 0);
    /* Every broker that can be reached loses the logins, even when one cannot. */
    for (size_t i = 0; i < nm; i++) {
        if (edit_live(&m[i].ctx, things, n, 0) != CLI_EXIT_OK) {
            rc = member_failed(&m[i], "still has the logins");
        }
    }
    return rc;
}

/* ------------------------------------------- disable, enable, password -- */

/* Changes one thing's client object in the file. */
static int change_file(const cli_ctx_t *ctx, const char *name, cli_dynsec_change_t what,
                       const char *password)
{
    char path[CLI_PATH_MAX];
    cJSON *root = open_file_json(ctx, path);
    if (root == NULL) {
        return CLI_EXIT_FAIL;
    }
    cJSON *clients = cJSON_GetObjectItemCaseSensitive(root, "clients");
    int ci = find_named(clients, "username", name);
    cJSON *c = ci >= 0 ? cJSON_GetArrayItem(clients, ci) : NULL;
    int rc = c == NULL
                 ? cli_fail(CLI_EXIT_FAIL, "'%s' has no broker login; see 'otter thing list'", name)
                 : CLI_EXIT_OK;
    if (rc == CLI_EXIT_OK && what != CLI_DYNSEC_PASSWORD) {
        cJSON_DeleteItemFromObjectCaseSensitive(c, "disabled");
        cJSON_AddBoolToObject(c, "disabled", what == CLI_DYNSEC_DISABLE);
    } else if (rc == CLI_EXIT_OK) {
        cJSON_DeleteItemFromObjectCaseSensitive(c, "password");
        cJSON_DeleteItemFromObjectCaseSensitive(c, "salt");
        cJSON_DeleteItemFromObjectCaseSensitive(c, "iterations");
        if (password != NULL && add_password_hash(c, password) != 0) {
            rc = cli_fail(CLI_EXIT_FAIL, "cannot hash a password; try again");
        }
    }
    return save_file_json(path, root, rc);
}

/* The live commands of a change; a new password or certificate also ends the
 * sessions opened with the old one (disable, then enable again). */
static cJSON *change_commands(const char *name, cli_dynsec_change_t what, const char *password)
{
    cJSON *cmds = cJSON_CreateArray();
    if (what == CLI_DYNSEC_PASSWORD && password != NULL) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "username", name);
        cJSON_AddStringToObject(c, "password", password);
        cJSON_AddItemToArray(cmds, command("setClientPassword", c));
    }
    if (what != CLI_DYNSEC_ENABLE) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "username", name);
        cJSON_AddItemToArray(cmds, command("disableClient", c));
    }
    if (what != CLI_DYNSEC_DISABLE) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "username", name);
        cJSON_AddItemToArray(cmds, command("enableClient", c));
    }
    return cmds;
}

/* Changes a thing's login through ctx's running broker. */
static int change_live(const cli_ctx_t *ctx, const char *name, cli_dynsec_change_t what,
                       const char *password)
{
    struct live l;
    memset(&l, 0, sizeof l);
    int rc = live_connect(ctx, &l);
    cJSON *resp = NULL;
    if (rc == CLI_EXIT_OK) {
        rc = live_exchange(&l, change_commands(name, what, password), &resp);
    }
    const char *err = rc == CLI_EXIT_OK ? response_error(resp, 0) : NULL;
    if (rc == CLI_EXIT_OK && err != NULL) {
        rc = cli_fail(CLI_EXIT_FAIL, "the broker refused the change for '%s' (%s)", name, err);
    }
    cJSON_Delete(resp);
    live_close(&l);
    return rc;
}

int cli_dynsec_change_thing(const cli_ctx_t *ctx, const char *name, cli_dynsec_change_t what,
                            const char *password)
{
    int rc = cli_broker_running(ctx) <= 0 ? change_file(ctx, name, what, password)
                                          : change_live(ctx, name, what, password);
    cli_federation_member_t m[CLI_FEDERATION_MAX];
    size_t nm = rc == CLI_EXIT_OK ? cli_federation_members(ctx, m, CLI_FEDERATION_MAX) : 0;
    /* A disabled thing is cut off on every broker that can be reached, even when one cannot. */
    for (size_t i = 0; i < nm; i++) {
        if (change_live(&m[i].ctx, name, what, password) != CLI_EXIT_OK) {
            rc = member_failed(&m[i], "was not changed");
        }
    }
    return rc;
}

char *cli_dynsec_with_federation(const char *text, const char (*passwords)[33], size_t n)
{
    cJSON *root = cJSON_Parse(text);
    cJSON *clients = cJSON_GetObjectItemCaseSensitive(root, "clients");
    cJSON *roles = cJSON_GetObjectItemCaseSensitive(root, "roles");
    char *out = NULL;
    int rc = cJSON_IsArray(clients) && cJSON_IsArray(roles) ? 0 : -1;
    for (size_t k = 1; rc == 0 && k < n; k++) {
        if (passwords[k][0] == '\0') {
            continue; /* broker k has no bridge of its own */
        }
        char name[64];
        snprintf(name, sizeof name, CLI_FEDERATION_USER "-%u", (unsigned)k);
        cJSON *c = client_object(name, name, CLI_FEDERATION_USER);
        cJSON_AddItemToArray(clients, c);
        /* Its own role: it may publish its broker's connection notices only (hub 1's also
         * relays the others' between the hubs and reads hub 2's). */
        cJSON *own = cJSON_CreateObject();
        cJSON_AddStringToObject(own, "rolename", name);
        cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(c, "roles"), own);
        char topic[64];
        snprintf(topic, sizeof topic, CLI_PRESENCE_PREFIX "%u/log/N", (unsigned)k);
        cJSON *acls = cJSON_CreateArray();
        add_acl(acls, "publishClientSend", topic);
        if (k == 1) {
            add_rw(acls, CLI_PRESENCE_PREFIX "+/log/N");
            add_acl(acls, "subscribePattern", "$SYS/broker/log/N");
            add_acl(acls, "publishClientReceive", "$SYS/broker/log/N");
        }
        cJSON_AddItemToArray(roles, role_object(name, acls));
        /* With certificates (TLS) the password is "-": the certificate's name is the login. */
        if (strcmp(passwords[k], "-") != 0) {
            rc = add_password_hash(c, passwords[k]);
        }
    }
    if (rc == 0) {
        /* The bridges relay exactly the topics they carry, in both directions. */
        cJSON *acls = cJSON_CreateArray();
        add_rw(acls, "$aws/things/+/jobs/#");
        add_rw(acls, "$aws/things/+/streams/#");
        add_rw(acls, "$aws/things/+/shadow/#");
        cJSON_AddItemToArray(roles, role_object(CLI_FEDERATION_USER, acls));
        out = print_json(root);
    }
    cJSON_Delete(root);
    return out;
}

/* Adds the login of one service instance (name: otter-service-NAME) to one broker: through it
 * when it runs, else (this data folder's broker only) in its file. */
static int add_instance_one(const cli_ctx_t *ctx, const char *name, int file_ok)
{
    if (cli_broker_running(ctx) > 0) {
        struct live l;
        memset(&l, 0, sizeof l);
        int rc = live_connect(ctx, &l);
        cJSON *resp = NULL;
        if (rc == CLI_EXIT_OK) {
            cJSON *cmds = cJSON_CreateArray();
            cJSON_AddItemToArray(
                cmds, command("createClient", client_object(name, name, CLI_SERVICE_USER)));
            rc = live_exchange(&l, cmds, &resp);
        }
        const char *err = rc == CLI_EXIT_OK ? response_error(resp, 0) : NULL;
        if (err != NULL && strstr(err, "already exists") == NULL) {
            rc = cli_fail(CLI_EXIT_FAIL, "the broker refused the login '%s' (%s)", name, err);
        }
        cJSON_Delete(resp);
        live_close(&l);
        return rc;
    }
    if (!file_ok) {
        return CLI_EXIT_FAIL;
    }
    char path[CLI_PATH_MAX];
    cJSON *root = open_file_json(ctx, path);
    if (root == NULL) {
        return CLI_EXIT_FAIL;
    }
    cJSON *clients = cJSON_GetObjectItemCaseSensitive(root, "clients");
    if (find_named(clients, "username", name) < 0) {
        cJSON_AddItemToArray(clients, client_object(name, name, CLI_SERVICE_USER));
    }
    return save_file_json(path, root, CLI_EXIT_OK);
}

int cli_dynsec_add_service_instance(const cli_ctx_t *ctx, const char *name)
{
    int rc = add_instance_one(ctx, name, 1);
    cli_federation_member_t m[CLI_FEDERATION_MAX];
    size_t nm = rc == CLI_EXIT_OK ? cli_federation_members(ctx, m, CLI_FEDERATION_MAX) : 0;
    for (size_t i = 0; rc == CLI_EXIT_OK && i < nm; i++) {
        if (add_instance_one(&m[i].ctx, name, 0) != CLI_EXIT_OK) {
            rc = member_failed(&m[i], "did not take the instance's login");
        }
    }
    return rc;
}
