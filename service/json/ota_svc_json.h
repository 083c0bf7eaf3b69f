/*
 * otter service: strict checks of device JSON before it is parsed or stored.
 *
 * cJSON accepts text that later answers could not carry: invalid UTF-8,
 * "\u0000" (a NUL that cuts strings short), lone surrogate escapes, and
 * objects with a key twice (the first one wins in lookups). A device request
 * with any of these is refused (InvalidJson) before anything is stored.
 *
 * Threading: no state; any thread.
 */
#ifndef OTA_SVC_JSON_H
#define OTA_SVC_JSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Checks raw JSON text: valid UTF-8 throughout (no overlong forms, no
 * surrogates, nothing above U+10FFFF), no control characters inside strings,
 * no "\u0000" escape, surrogate escapes only as high-low pairs.
 * @param text JSON text; need not be NUL-terminated.
 * @param len  its length in bytes.
 * @param msg  receives a one-line reason when the text is refused.
 * @param cap  size of msg.
 * @return 0 when the text passes; -1 otherwise.
 */
int ota_svc_json_check_text(const char *text, size_t len, char *msg, size_t cap);

/**
 * Checks that no object in a parsed tree has the same key twice (after
 * unescaping), at any depth.
 * @param item parsed tree (cJSON nests at most CJSON_NESTING_LIMIT deep).
 * @param msg  receives a one-line reason when a key repeats.
 * @param cap  size of msg.
 * @return 0 when every key is unique in its object; -1 otherwise.
 */
int ota_svc_json_check_keys(const cJSON *item, char *msg, size_t cap);

/**
 * Whether bytes are valid UTF-8 (no overlong forms, no surrogates, nothing
 * above U+10FFFF).
 * @param s         the bytes.
 * @param len       their count.
 * @param allow_nul 0: a NUL byte makes them invalid (the rule for every
 *                  string the service keeps or echoes: tokens, status details).
 * @return 1 valid; 0 not.
 */
int ota_svc_utf8_valid(const void *s, size_t len, int allow_nul);

#ifdef __cplusplus
}
#endif

#endif /* OTA_SVC_JSON_H */
