/* otter CLI: text a device controls, shown safely (see cli_text.h). */
#include "cli_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ota_text_escape.h"

const char *cli_safe_text(const char *text, char *out, size_t cap)
{
    const size_t mark = sizeof CLI_TEXT_CUT_MARK - 1;
    size_t len = text ? strlen(text) : 0;
    if (cap <= mark) {
        if (cap > 0) {
            out[0] = '\0';
        }
        return out;
    }
    if (ota_text_escape(text, len, out, cap) == len) {
        return out;
    }
    ota_text_escape(text, len, out, cap - mark);
    memcpy(out + strlen(out), CLI_TEXT_CUT_MARK, mark + 1);
    return out;
}

/* A string of stored JSON cut to CLI_TEXT_VALUE_MAX bytes at a character's
 * start, as a new cJSON_malloc() string; NULL when it is short enough. */
static char *cut_string(const char *s)
{
    size_t len = strlen(s);
    if (len <= CLI_TEXT_VALUE_MAX) {
        return NULL;
    }
    size_t keep = CLI_TEXT_VALUE_MAX;
    while (keep > 0 && ((unsigned char)s[keep] & 0xc0) == 0x80) {
        keep--;
    }
    char more[48];
    int m = snprintf(more, sizeof more, "...(%zu bytes more)", len - keep);
    char *c = cJSON_malloc(keep + (size_t)m + 1);
    if (c != NULL) {
        memcpy(c, s, keep);
        memcpy(c + keep, more, (size_t)m + 1);
    }
    return c;
}

/* Cuts every long key and string value of a parsed document, at any depth. */
static void cut_strings(cJSON *item)
{
    for (; item != NULL; item = item->next) {
        char *c;
        if (item->string != NULL && !(item->type & cJSON_StringIsConst) &&
            (c = cut_string(item->string)) != NULL) {
            cJSON_free(item->string);
            item->string = c;
        }
        if (cJSON_IsString(item) && item->valuestring != NULL &&
            (c = cut_string(item->valuestring)) != NULL) {
            cJSON_free(item->valuestring);
            item->valuestring = c;
        }
        cut_strings(item->child);
    }
}

const char *cli_safe_json(const char *stored, char *out, size_t cap)
{
    if (stored == NULL) {
        return cli_safe_text("{}", out, cap);
    }
    cJSON *doc = cJSON_Parse(stored);
    if (doc == NULL) {
        return cli_safe_text(stored, out, cap);
    }
    cut_strings(doc);
    char *compact = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    cli_safe_text(compact ? compact : "{}", out, cap);
    cJSON_free(compact);
    return out;
}

int cli_print_json(const char *json)
{
    size_t len = strlen(json);
    size_t cap = len * OTA_TEXT_ESCAPE_JSON_GROWTH + 1;
    char *out = malloc(cap);
    if (out == NULL) {
        return -1;
    }
    ota_text_escape_json(json, len, out, cap);
    printf("%s\n", out);
    free(out);
    return 0;
}
