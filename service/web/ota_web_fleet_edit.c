/*
 * otter web console: editing the fleet through the API: groups (create,
 * delete, members of static groups) and thing attributes. The rules are the
 * store's (service/store), the same the CLI's group and thing set commands
 * follow; this file maps them to HTTP answers.
 */
#include <stdio.h>
#include <string.h>

#include "ota_web_api_internal.h"

/* --------------------------------------------------------------- groups -- */

static int add_member_name(void *ctx, const ota_store_thing_t *t)
{
    cJSON_AddItemToArray(ctx, cJSON_CreateString(t->name));
    return 0;
}

cJSON *ota_web_group_json(ota_store_t *store, const ota_store_group_t *group)
{
    cJSON *g = cJSON_CreateObject();
    cJSON_AddStringToObject(g, "name", group->name);
    cJSON_AddStringToObject(g, "kind", group->query[0] ? "dynamic" : "static");
    cJSON_AddStringToObject(g, "query", group->query);
    cJSON_AddNumberToObject(g, "size", (double)group->n_members);
    if (group->created_ms > 0) {
        cJSON_AddNumberToObject(g, "createdAt", (double)group->created_ms);
    } else {
        cJSON_AddNullToObject(g, "createdAt");
    }
    cJSON *members = cJSON_AddArrayToObject(g, "members");
    if (ota_store_group_members(store, group->name, add_member_name, members) != OTA_STORE_OK) {
        cJSON_Delete(g);
        return NULL;
    }
    return g;
}

/* The group named by the path, or 0 with 404 in resp. */
static int find_group(ota_web_response_t *resp, ota_store_t *store, const char *name,
                      ota_store_group_t *g)
{
    if (!ota_store_valid_thing_name(name) || ota_store_group_get(store, name, g) != OTA_STORE_OK) {
        ota_web_error(resp, 404, "not_found", "unknown group '%.140s'; see GET /api/v1/groups",
                      name);
        return 0;
    }
    return 1;
}

/* Answers with the group as it is now. */
static void answer_group(ota_web_response_t *resp, ota_store_t *store, const char *name, int status)
{
    ota_store_group_t g;
    cJSON *o = NULL;
    if (ota_store_group_get(store, name, &g) != OTA_STORE_OK ||
        (o = ota_web_group_json(store, &g)) == NULL) {
        ota_web_store_error(resp, store, "read the group");
        return;
    }
    ota_web_answer(resp, status, o);
}

void ota_web_h_group(const ota_web_request_t *req, ota_web_response_t *resp, ota_store_t *store,
                     char args[][160])
{
    (void)req;
    ota_store_group_t g;
    if (find_group(resp, store, args[0], &g)) {
        answer_group(resp, store, args[0], 200);
    }
}

void ota_web_h_group_create(const ota_web_request_t *req, ota_web_response_t *resp,
                            ota_store_t *store, char args[][160])
{
    static const char *const known[] = {"name", "query"};
    (void)args;
    cJSON *body = ota_web_body_object(req, resp, known, 2);
    if (body == NULL) {
        return;
    }
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(body, "name");
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(body, "query");
    const char *query = cJSON_IsString(q) && q->valuestring[0] != '\0' ? q->valuestring : NULL;
    if (!cJSON_IsString(n) || !ota_store_valid_thing_name(n->valuestring) ||
        !ota_store_new_name_ok(n->valuestring)) {
        ota_web_error(resp, 400, "bad_request",
                      "a group needs a name of 1-128 [A-Za-z0-9:_-], not starting with '-'; see "
                      "docs/openapi.yaml");
    } else if (q != NULL && !cJSON_IsString(q) && !cJSON_IsNull(q)) {
        ota_web_error(resp, 400, "bad_request", "query is a string (or null for a static group)");
    } else if (query != NULL && !ota_store_valid_query(query)) {
        ota_web_error(resp, 400, "bad_request",
                      "bad query '%.300s'; give KEY=VALUE or KEY<X.Y.Z terms separated by "
                      "commas (up to %d; operators = != < <= > >=), not on presence "
                      "(connected, connectedTo, presenceUnknownOn, lastSeen)",
                      query, OTA_STORE_QUERY_TERMS_MAX);
    } else {
        int src = ota_store_group_create(store, n->valuestring, query, req->now_ms);
        if (src == OTA_STORE_EXISTS) {
            ota_web_error(resp, 409, "conflict", "group '%s' exists; choose another name",
                          n->valuestring);
        } else if (src != OTA_STORE_OK) {
            ota_web_store_error(resp, store, "create the group");
        } else {
            answer_group(resp, store, n->valuestring, 201);
        }
    }
    cJSON_Delete(body);
}

void ota_web_h_group_delete(const ota_web_request_t *req, ota_web_response_t *resp,
                            ota_store_t *store, char args[][160])
{
    (void)req;
    ota_store_group_t g;
    if (!find_group(resp, store, args[0], &g)) {
        return;
    }
    int src = ota_store_group_delete(store, args[0]);
    if (src == OTA_STORE_CONFLICT) {
        ota_web_error(resp, 409, "conflict", "%s; cancel that job first", ota_store_errmsg(store));
    } else if (src == OTA_STORE_NOT_FOUND) {
        ota_web_error(resp, 404, "not_found", "unknown group '%s'; see GET /api/v1/groups",
                      args[0]);
    } else if (src != OTA_STORE_OK) {
        ota_web_store_error(resp, store, "delete the group");
    } else {
        ota_web_answer(resp, 200, cJSON_CreateObject());
    }
}

/* The static group and the thing of a member path, or 0 with the refusal in resp. */
static int member_path(ota_web_response_t *resp, ota_store_t *store, char args[][160])
{
    ota_store_group_t g;
    ota_store_thing_t t;
    if (!find_group(resp, store, args[0], &g)) {
        return 0;
    }
    if (g.query[0] != '\0') {
        ota_web_error(resp, 409, "conflict",
                      "group '%s' is dynamic (%s); change the things' attributes instead", g.name,
                      g.query);
        return 0;
    }
    if (!ota_store_valid_thing_name(args[1]) ||
        ota_store_thing_get(store, args[1], &t) != OTA_STORE_OK) {
        ota_web_error(resp, 404, "not_found", "unknown thing '%.140s'; see GET /api/v1/things",
                      args[1]);
        return 0;
    }
    return 1;
}

/* Adds (add) or removes a member of a static group; answers with the group. */
static void member_change(ota_web_response_t *resp, ota_store_t *store, char args[][160], int add)
{
    if (!member_path(resp, store, args)) {
        return;
    }
    int src = add ? ota_store_group_add(store, args[0], args[1])
                  : ota_store_group_remove(store, args[0], args[1]);
    if (!add && src == OTA_STORE_NOT_FOUND) {
        ota_web_error(resp, 404, "not_found", "thing '%s' is not in group '%s'", args[1], args[0]);
    } else if (src != OTA_STORE_OK && !(add && src == OTA_STORE_EXISTS)) {
        ota_web_store_error(resp, store, add ? "add the member" : "remove the member");
    } else {
        answer_group(resp, store, args[0], 200); /* a member already: as asked */
    }
}

void ota_web_h_member_put(const ota_web_request_t *req, ota_web_response_t *resp,
                          ota_store_t *store, char args[][160])
{
    (void)req;
    member_change(resp, store, args, 1);
}

void ota_web_h_member_delete(const ota_web_request_t *req, ota_web_response_t *resp,
                             ota_store_t *store, char args[][160])
{
    (void)req;
    member_change(resp, store, args, 0);
}

/* ----------------------------------------------------------- attributes -- */

static int add_attr_value(void *ctx, const char *key, const char *value, int64_t updated_ms)
{
    (void)updated_ms;
    cJSON_AddStringToObject(ctx, key, value);
    return 0;
}

int ota_web_add_attributes(ota_store_t *store, cJSON *o, const char *thing)
{
    cJSON *a = cJSON_AddObjectToObject(o, "attributes");
    return ota_store_thing_attr_list(store, thing, add_attr_value, a) == OTA_STORE_OK ? 0 : -1;
}

/* The thing of an attribute path, or 0 with 404 in resp. */
static int attr_thing(ota_web_response_t *resp, ota_store_t *store, const char *name)
{
    ota_store_thing_t t;
    if (!ota_store_valid_thing_name(name) || ota_store_thing_get(store, name, &t) != OTA_STORE_OK) {
        ota_web_error(resp, 404, "not_found", "unknown thing '%.140s'; see GET /api/v1/things",
                      name);
        return 0;
    }
    return 1;
}

/* Answers with the thing's attributes as they are now. */
static void answer_attributes(ota_web_response_t *resp, ota_store_t *store, const char *thing)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", thing);
    if (ota_web_add_attributes(store, o, thing) != 0) {
        cJSON_Delete(o);
        ota_web_store_error(resp, store, "read the attributes");
        return;
    }
    ota_web_answer(resp, 200, o);
}

/* 400 for an attribute the service keeps (the CLI's words). */
static void owned_attr(ota_web_response_t *resp, const char *key)
{
    ota_web_error(resp, 400, "bad_request", "'%s' is %s; it cannot be set or unset", key,
                  ota_store_attr_owner(key));
}

void ota_web_h_attr_put(const ota_web_request_t *req, ota_web_response_t *resp, ota_store_t *store,
                        char args[][160])
{
    static const char *const known[] = {"value"};
    if (!attr_thing(resp, store, args[0])) {
        return;
    }
    cJSON *body = ota_web_body_object(req, resp, known, 1);
    if (body == NULL) {
        return;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "value");
    if (!cJSON_IsString(v)) {
        ota_web_error(resp, 400, "bad_request",
                      "send {\"value\": TEXT}; remove an attribute with DELETE");
    } else if (ota_store_attr_owner(args[1]) != NULL) {
        owned_attr(resp, args[1]);
    } else {
        int src = ota_store_thing_attr_set(store, args[0], args[1], v->valuestring, req->now_ms);
        if (src == OTA_STORE_INVALID) {
            ota_web_error(resp, 400, "bad_request",
                          "%s; keys are 1-64 of [A-Za-z0-9_], values 1-128 printable characters "
                          "without '\"' or '\\'",
                          ota_store_errmsg(store));
        } else if (src != OTA_STORE_OK) {
            ota_web_store_error(resp, store, "set the attribute");
        } else {
            answer_attributes(resp, store, args[0]);
        }
    }
    cJSON_Delete(body);
}

void ota_web_h_attr_delete(const ota_web_request_t *req, ota_web_response_t *resp,
                           ota_store_t *store, char args[][160])
{
    (void)req;
    if (!attr_thing(resp, store, args[0])) {
        return;
    }
    if (ota_store_attr_owner(args[1]) != NULL) {
        owned_attr(resp, args[1]);
        return;
    }
    int src = ota_store_thing_attr_set(store, args[0], args[1], NULL, req->now_ms);
    if (src == OTA_STORE_INVALID && ota_store_valid_attr_key(args[1])) {
        /* a key that cannot be removed (the computed presence): the store says why */
        ota_web_error(resp, 400, "bad_request", "%s", ota_store_errmsg(store));
    } else if (src == OTA_STORE_NOT_FOUND || src == OTA_STORE_INVALID) {
        ota_web_error(resp, 404, "not_found", "thing '%s' has no attribute '%.64s'", args[0],
                      args[1]);
    } else if (src != OTA_STORE_OK) {
        ota_web_store_error(resp, store, "remove the attribute");
    } else {
        answer_attributes(resp, store, args[0]);
    }
}
