/*
 * otter service: strict checks of device JSON. See ota_svc_json.h.
 */
#include "ota_svc_json.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ota_text_escape.h"

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when it is invalid. */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    size_t len;
    uint32_t cp, min;
    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, cp = c & 0x1Fu, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, cp = c & 0x0Fu, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, cp = c & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            return 0;
        }
        cp = cp << 6 | (p[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return 0;
    }
    return len;
}

int ota_svc_utf8_valid(const void *s, size_t len, int allow_nul)
{
    const uint8_t *p = s;
    size_t i = 0;
    while (i < len) {
        size_t k = p[i] == 0 && !allow_nul ? 0 : utf8_seq(p + i, len - i);
        if (k == 0) {
            return 0;
        }
        i += k;
    }
    return 1;
}

static int hex4(const uint8_t *p, size_t n, uint32_t *out)
{
    uint32_t v = 0;
    if (n < 4) {
        return -1;
    }
    for (int i = 0; i < 4; i++) {
        uint8_t c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) {
            return -1;
        }
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return 0;
}

static int refuse(char *msg, size_t cap, const char *why, size_t at)
{
    snprintf(msg, cap, "%s at byte %zu", why, at);
    return -1;
}

int ota_svc_json_check_text(const char *text, size_t len, char *msg, size_t cap)
{
    const uint8_t *p = (const uint8_t *)text;
    int in_string = 0;
    size_t i = 0;
    while (i < len) {
        uint8_t c = p[i];
        if (c >= 0x80) {
            size_t k = utf8_seq(p + i, len - i);
            if (k == 0) {
                return refuse(msg, cap, "invalid UTF-8", i);
            }
            i += k;
            continue;
        }
        if (!in_string) {
            in_string = c == '"';
            i++;
            continue;
        }
        if (c < 0x20) {
            return refuse(msg, cap, "control character in a string", i);
        }
        if (c == '"') {
            in_string = 0;
            i++;
            continue;
        }
        if (c != '\\') {
            i++;
            continue;
        }
        if (i + 1 >= len) {
            return refuse(msg, cap, "unfinished escape", i);
        }
        if (p[i + 1] != 'u') {
            i += 2;
            continue;
        }
        uint32_t u;
        if (hex4(p + i + 2, len - i - 2, &u) != 0) {
            return refuse(msg, cap, "bad \\u escape", i);
        }
        if (u == 0) {
            return refuse(msg, cap, "NUL (\\u0000) in a string", i);
        }
        if (u >= 0xDC00 && u <= 0xDFFF) {
            return refuse(msg, cap, "lone low surrogate escape", i);
        }
        if (u >= 0xD800 && u <= 0xDBFF) {
            uint32_t lo;
            if (i + 7 >= len || p[i + 6] != '\\' || p[i + 7] != 'u' ||
                hex4(p + i + 8, len - i - 8, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF) {
                return refuse(msg, cap, "lone high surrogate escape", i);
            }
            i += 12;
            continue;
        }
        i += 6;
    }
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int ota_svc_json_check_keys(const cJSON *item, char *msg, size_t cap)
{
    if (item == NULL) {
        return 0;
    }
    if (cJSON_IsObject(item)) {
        size_t n = 0;
        for (const cJSON *c = item->child; c != NULL; c = c->next) {
            n++;
        }
        if (n > 1) {
            const char **names = malloc(n * sizeof(*names));
            size_t k = 0;
            int dup = 0;
            if (names == NULL) {
                snprintf(msg, cap, "out of memory");
                return -1;
            }
            for (const cJSON *c = item->child; c != NULL; c = c->next) {
                names[k++] = c->string != NULL ? c->string : "";
            }
            qsort(names, n, sizeof(*names), cmp_names);
            for (k = 1; k < n && !dup; k++) {
                if (strcmp(names[k - 1], names[k]) == 0) {
                    /* The key is the sender's text: shown escaped, never raw. */
                    char key[64 * OTA_TEXT_ESCAPE_GROWTH + 1];
                    size_t len = strlen(names[k]);
                    ota_text_escape(names[k], len < 64 ? len : 64, key, sizeof key);
                    snprintf(msg, cap, "key \"%s\" appears twice in one object", key);
                    dup = 1;
                }
            }
            free(names);
            if (dup) {
                return -1;
            }
        }
    }
    if (cJSON_IsObject(item) || cJSON_IsArray(item)) {
        for (const cJSON *c = item->child; c != NULL; c = c->next) {
            if (ota_svc_json_check_keys(c, msg, cap) != 0) {
                return -1;
            }
        }
    }
    return 0;
}

cJSON *ota_svc_json_parse(const char *text, size_t len)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (root == NULL || end == NULL) {
        cJSON_Delete(root);
        return NULL;
    }
    for (size_t i = (size_t)(end - text); i < len; i++) {
        if (!strchr(" \t\r\n", text[i]) || text[i] == '\0') {
            cJSON_Delete(root);
            return NULL;
        }
    }
    return root;
}
