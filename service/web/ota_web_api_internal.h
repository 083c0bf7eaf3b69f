/*
 * otter web console: what the API's files share (private to service/web): the
 * answers, the request body checks and the handlers that edit the fleet.
 */
#ifndef OTA_WEB_API_INTERNAL_H
#define OTA_WEB_API_INTERNAL_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "ota_store.h"
#include "ota_web_api.h"

/** A handler: fills resp from the request, the path's {} segments and an open store. */
typedef void (*ota_web_handler_fn)(const ota_web_request_t *req, ota_web_response_t *resp,
                                   ota_store_t *store, char args[][160]);

/** Answers with the JSON error {"code": code, "message": the formatted text}. */
__attribute__((format(printf, 4, 5))) void ota_web_error(ota_web_response_t *resp, int status,
                                                         const char *code, const char *fmt, ...);

/** Answers with a JSON value (consumed); 500 when it cannot be printed. */
void ota_web_answer(ota_web_response_t *resp, int status, cJSON *value);

/** Answers 500 for a store failure while doing `what`. */
void ota_web_store_error(ota_web_response_t *resp, ota_store_t *store, const char *what);

/**
 * The request's body as a JSON object whose fields are all among known[0..n-1].
 * @return the object (caller deletes), or NULL with a 400 answer in resp.
 */
cJSON *ota_web_body_object(const ota_web_request_t *req, ota_web_response_t *resp,
                           const char *const *known, size_t n);

/** A group as JSON: name, kind, query, size, members (names), createdAt; NULL on a store
 *  failure. */
cJSON *ota_web_group_json(ota_store_t *store, const ota_store_group_t *group);

/** Adds "attributes": {key: value, ...} of a thing to o. @return 0, or -1 on a store failure. */
int ota_web_add_attributes(ota_store_t *store, cJSON *o, const char *thing);

/** GET /api/v1/groups/{name}. */
void ota_web_h_group(const ota_web_request_t *req, ota_web_response_t *resp, ota_store_t *store,
                     char args[][160]);
/** POST /api/v1/groups: {"name", "query"?}. */
void ota_web_h_group_create(const ota_web_request_t *req, ota_web_response_t *resp,
                            ota_store_t *store, char args[][160]);
/** DELETE /api/v1/groups/{name}. */
void ota_web_h_group_delete(const ota_web_request_t *req, ota_web_response_t *resp,
                            ota_store_t *store, char args[][160]);
/** PUT /api/v1/groups/{name}/members/{thing}. */
void ota_web_h_member_put(const ota_web_request_t *req, ota_web_response_t *resp,
                          ota_store_t *store, char args[][160]);
/** DELETE /api/v1/groups/{name}/members/{thing}. */
void ota_web_h_member_delete(const ota_web_request_t *req, ota_web_response_t *resp,
                             ota_store_t *store, char args[][160]);
/** PUT /api/v1/things/{name}/attributes/{key}: {"value"}. */
void ota_web_h_attr_put(const ota_web_request_t *req, ota_web_response_t *resp, ota_store_t *store,
                        char args[][160]);
/** DELETE /api/v1/things/{name}/attributes/{key}. */
void ota_web_h_attr_delete(const ota_web_request_t *req, ota_web_response_t *resp,
                           ota_store_t *store, char args[][160]);

#endif /* OTA_WEB_API_INTERNAL_H */
