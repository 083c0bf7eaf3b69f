/*
 * otter: jobs messages and OTA job documents.
 *
 * JSON without tokens: the whole message is first checked to be one
 * well-formed JSON object (scan()), then values are found by their offset in
 * the text, by walking the objects on the way to them. Nothing is stored but
 * a few offsets per object; the text is scanned a few times, which costs far
 * less than a token array.
 */
#include "otter/ota_job_doc.h"

#include <limits.h>
#include <stddef.h>
#include <string.h>

#include "ota_base64.h"
#include "ota_out_of_line.h"
#include "otter/ota_device_type.h"

/*
 * The names the parser knows, one list: each NUL-terminated, one after the
 * other (no table of pointers); nth() finds one by its index.
 *
 * First the keys of the objects read: each object's keys follow each other
 * (members() takes the first and the count). The last key, "sig-", matches
 * any key that starts with it. Before them "null", index 0, which no field
 * has; after them the values of known strings, and the problems' texts.
 */
#if OTA_HTTP_PLANE
#define HTTP_KEYS "update_data_url\0auth_scheme\0"
#else
#define HTTP_KEYS
#endif
static const char names[] =
    "null\0" /* first: index 0 is no field */
    "execution\0"
    "jobId\0status\0versionNumber\0statusDetails\0jobDocument\0"
    "self_test\0updatedBy\0receive\0"
    "afr_ota\0"
    "protocols\0streamname\0files\0"
    "filepath\0certfile\0filesize\0fileid\0fileType\0" HTTP_KEYS
    "otterDeviceTypes\0sig-sha256-ecdsa\0sig-sha256-rsa\0sig-\0"
    "ready\0active\0" /* ota_self_test_t from 1 */
    "MQTT\0HTTP\0"    /* OTA_PROTO_* bits */
    /* ota_job_status_t from OTA_JOB_STATUS_QUEUED */
    "QUEUED\0IN_PROGRESS\0SUCCEEDED\0FAILED\0TIMED_OUT\0REJECTED\0"
    "REMOVED\0CANCELED\0"
    /* the problems in ota_job_problem_t order, then the text of other values */
    "no problem\0"
    "bad JSON\0"
    "JSON nested too deeply\0"
    "not an OTA job\0"
    "missing field\0"
    "bad value\0"
    "zero file size\0"
    "field too long\0"
    "bad signature encoding\0"
    "unknown signature method\0"
    "no supported protocol\0"
    "signature method not enabled\0"
    "unknown problem";
enum {
    N_NULL,
    K_NONE = N_NULL, /* no field */
    K_EXECUTION,     /* the message's */
    K_JOB_ID,        /* the execution's */
    K_STATUS,
    K_VERSION,
    K_DETAILS,
    K_DOCUMENT,
    K_SELF_TEST, /* statusDetails' */
    K_UPDATED_BY,
    K_RECEIVE,
    K_AFR_OTA,   /* jobDocument's */
    K_PROTOCOLS, /* afr_ota's */
    K_STREAM,
    K_FILES,
    K_PATH, /* a file's */
    K_CERT,
    K_SIZE,
    K_ID,
    K_TYPE,
#if OTA_HTTP_PLANE
    K_URL,
    K_AUTH,
#endif
    K_DEVICE_TYPES,
    K_SIG_ECDSA,
    K_SIG_RSA,
    K_SIG_OTHER,
    K_COUNT, /* the keys end here */
    N_SELF_TEST = K_COUNT,
    N_PROTOCOL = N_SELF_TEST + 2,
    N_STATUS = N_PROTOCOL + 2,
    N_PROBLEM = N_STATUS + 8
};
#if OTA_HTTP_PLANE
/** Longest "auth_scheme" accepted. */
#define OTA_AUTH_SCHEME_MAX 32u
#endif

/* The parse: the message, the field a problem concerns (an index in names[],
 * or K_NONE, 0) and the values of the known keys: slots[k] is the offset of the
 * first character of names[k]'s value, 0 when absent (the root object is never
 * a member's value); slots[K_NONE] is not used. */
typedef struct parse {
    const char *js;
    size_t len;
    size_t slots[K_COUNT];
    unsigned field;
} parse_t;

/* Kinds of values, by their first character; the others are numbers, true,
 * false, null, or bare words (as FreeRTOS's jsmn took them). */
#define K_OBJECT '{'
#define K_ARRAY '['
#define K_STRING '"'

/* What scan() returns for a value nested too deeply (messages are shorter than INT_MAX). */
#define TOO_DEEP SIZE_MAX

/* scan() keeps one bit per open container in a uint32_t. */
typedef char ota_job_depth_fits[OTA_JOB_MAX_DEPTH <= 32u ? 1 : -1];

/* Name k of names[]. */
static const char *nth(unsigned k)
{
    const char *s = names;

    while (k-- != 0u) {
        s += strlen(s) + 1u;
    }
    return s;
}

const char *ota_job_problem_str(ota_job_problem_t problem)
{
    unsigned k = (unsigned)problem;

    return nth(N_PROBLEM + (k < OTA_JOB_PROBLEM_COUNT ? k : OTA_JOB_PROBLEM_COUNT));
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static size_t ws(const parse_t *p, size_t i)
{
    const char *js = p->js;
    size_t len = p->len;

    while (i < len && is_space(js[i])) {
        i++;
    }
    return i;
}

/* 1 if c ends a bare word (primitive): whitespace, punctuation or NUL. */
static int is_delim(char c)
{
    static const char delims[] = " \t\r\n,]}:\"[{";
    return memchr(delims, c, sizeof delims) != NULL; /* the terminating NUL included */
}

/* After the string starting at js[i] ('"'), or 0 when it is malformed (no end,
 * a bad escape). Raw control characters are kept: base64 may hold CR/LF. */
static size_t string_end(const parse_t *p, size_t i)
{
    const char *js = p->js;
    size_t len = p->len;

    for (i++; i < len; i++) {
        if (js[i] == '"') {
            return i + 1;
        }
        if (js[i] == '\\') {
            if (++i >= len) {
                return 0;
            }
            if (js[i] == 'u') {
                for (int h = 0; h < 4; h++) {
                    /* a digit as it is; a letter folded to lower case */
                    char r = ++i < len ? js[i] : 0;
                    char c = (char)(r | 0x20);
                    if (!((r >= '0' && r <= '9') || (c >= 'a' && c <= 'f'))) {
                        return 0;
                    }
                }
            } else if (memchr("\"\\/bfnrt", js[i], 8) == NULL) {
                return 0;
            }
        }
    }
    return 0;
}

/*
 * After a key ("...") and its colon at js[i], or 0 when the key is malformed.
 * A missing colon is passed over (as the FreeRTOS agent's tokenizer does):
 * the offset returned then follows no colon, and members() refuses it in the
 * objects the parser reads, so a job whose document has one can still be
 * answered FAILED. i < len: scan() checks that, and members() reads only
 * objects scan() found whole.
 */
static size_t key_end(const parse_t *p, size_t i)
{
    const char *js = p->js;
    size_t len = p->len;

    if (js[i] != '"' || (i = string_end(p, i)) == 0) {
        return 0;
    }
    i = ws(p, i);
    if (i < len && js[i] == ':') {
        return i + 1;
    }
    return i;
}

/* What scan() looks for next. */
#define WANT_VALUE 0 /* a value */
#define WANT_AFTER 1 /* after a value inside a container: a comma or the container's end */
#define WANT_FIRST 2 /* after an opening: the end, or the first member or element */
#define WANT_NEXT 3  /* after a comma: a member or element */

/*
 * Checks the JSON value at js[i] (after whitespace) and returns the offset
 * right after it (not past the whitespace that follows), or 0 when it is
 * malformed, or TOO_DEEP when it nests deeper than OTA_JOB_MAX_DEPTH.
 * Iterative: one bit per open container (1: object).
 */
static size_t scan(const parse_t *p, size_t i)
{
    const char *js = p->js;
    size_t len = p->len;
    uint32_t stack = 0;
    unsigned depth = 0;
    int want = WANT_VALUE;

    for (;;) {
        char c;
        if (want == WANT_AFTER && depth == 0) {
            return i;
        }
        i = ws(p, i);
        if (i >= len) {
            return 0;
        }
        c = js[i];
        /* '[' and '{', ']' and '}' differ in bit 5 alone, an object's bit */
        if ((want == WANT_AFTER || want == WANT_FIRST) && c == (char)(']' | (stack & 1u) << 5)) {
            i++;
            depth--;
            stack >>= 1;
            want = WANT_AFTER;
        } else if (want == WANT_AFTER) {
            if (c != ',') {
                return 0;
            }
            i++;
            want = WANT_NEXT;
        } else if (want != WANT_VALUE && (stack & 1u) != 0) {
            /* a member of an object: its key first */
            i = key_end(p, i);
            want = WANT_VALUE;
        } else if ((c | 0x20) == '{') {
            if (depth == OTA_JOB_MAX_DEPTH) {
                return TOO_DEEP;
            }
            depth++;
            stack = (stack << 1) | ((unsigned char)c >> 5 & 1u);
            i++;
            want = WANT_FIRST;
        } else if (c == '"') {
            i = string_end(p, i);
            want = WANT_AFTER;
        } else {
            /* a bare word, up to a delimiter; none at all is malformed */
            size_t start = i;

            while (i < len && !is_delim(js[i])) {
                i++;
            }
            if (i == start) {
                return 0;
            }
            want = WANT_AFTER;
        }
        if (i == 0) {
            return 0;
        }
    }
}

/*
 * 1 if value i is of kind k (K_OBJECT, K_ARRAY, K_STRING). Offset 0, where
 * absent values point, holds whitespace or the message's "{": an absent
 * value is no array or string, but callers rule it out before asking for
 * an object.
 */
static int is_type(const parse_t *p, size_t i, char k)
{
    return p->js[i] == k;
}

/* The text of string or primitive i: *n bytes at the returned pointer. */
static const char *text(const parse_t *p, size_t i, size_t *n)
{
    size_t end = scan(p, i);
    size_t quoted = p->js[i] == '"'; /* a string's quotes are left out */

    *n = end - i - 2u * quoted;
    return p->js + i + quoted;
}

/* 1 + the index of the first of count names from names[k] that the text of
 * value i equals, or 0; a name that ends in "-" ("sig-") matches every text
 * that starts with it. */
static unsigned match(const parse_t *p, size_t i, unsigned k, unsigned count)
{
    size_t n;
    const char *s = text(p, i, &n);
    const char *t = nth(k);

    for (k = 1; k <= count; k++) {
        size_t tn = strlen(t);

        if ((t[tn - 1] == '-' ? n >= tn : n == tn) && memcmp(s, t, tn) == 0) {
            return k;
        }
        t += tn + 1u;
    }
    return 0;
}

/* The first element of array i, or 0 when it is empty or value i is no array. */
static size_t first_element(const parse_t *p, size_t i)
{
    if (!is_type(p, i, K_ARRAY)) {
        return 0;
    }
    i = ws(p, i + 1);
    return p->js[i] == ']' ? 0 : i;
}

/* After the element of an array or the member's value of an object at i:
 * the next element or member, or 0 after the last. */
static size_t next_element(const parse_t *p, size_t i)
{
    i = ws(p, scan(p, i));
    return p->js[i] == ',' ? ws(p, i + 1) : 0;
}

/* 1 if value i (not absent) is null: a word, as its first letter tells. */
static int is_null(const parse_t *p, size_t i)
{
    return p->js[i] == 'n' && match(p, i, N_NULL, 1) != 0;
}

/* match() for a string i (0: absent); 0 for other values. */
static unsigned lookup(const parse_t *p, size_t i, unsigned k, unsigned count)
{
    return is_type(p, i, K_STRING) ? match(p, i, k, count) : 0;
}

/*
 * Finds the values of the count keys from names[first] in object obj:
 * p->slots[k] is the offset of names[k]'s value, 0 when absent (every slot is
 * zeroed once per parse: each object's keys are looked for once). The last key,
 * "sig-", matches every key that starts with it (and may repeat). Unknown
 * keys are skipped.
 */
static ota_job_problem_t members(parse_t *p, size_t obj, unsigned first, unsigned count)
{
    size_t i = ws(p, obj + 1);

    while (p->js[i] == '"') {
        size_t value = key_end(p, i);
        if (p->js[value - 1] != ':') {
            return OTA_JOB_PROBLEM_BAD_JSON; /* a key without its colon */
        }
        value = ws(p, value);
        unsigned k = lookup(p, i, first, count);

        if (k-- != 0) {
            k += first;
            if (p->slots[k] != 0 && k != K_SIG_OTHER) {
                p->field = k;
                return OTA_JOB_PROBLEM_BAD_VALUE;
            }
            p->slots[k] = value;
        }
        i = next_element(p, value); /* 0 after the last: js[0] is no '"' */
    }
    return OTA_JOB_PROBLEM_NONE;
}

/* Parses n characters as a decimal or "0x" hex number that fits uint32_t. */
static int parse_u32(const char *s, size_t n, uint32_t *out)
{
    const char *end = s + n;
    uint32_t base = 10;
    uint32_t v = 0;

    if (n > 2 && s[0] == '0' && (s[1] | 0x20) == 'x') {
        base = 16;
        s += 2;
    }
    if (n == 0) {
        return 0;
    }
    while (s < end) {
        uint32_t c = (unsigned char)*s++;
        uint32_t d = c - '0';

        if (d > 9u) {
            /* a-f, A-F: 10 .. 15; anything else 16, a digit of no base */
            d = (c | 0x20u) - 'a';
            d = d < 6u ? d + 10u : 16u;
        }
        if (d >= base || v > (UINT32_MAX - d) / base) {
            return 0;
        }
        v = v * base + d;
    }
    *out = v;
    return 1;
}

/* Value i as a number, a JSON number or a string. An object or array fails
 * by its first character ("{", "["), not a digit, and so does an absent value
 * (i = 0: the message, whose text starts with "{" or whitespace). */
static int get_u32(const parse_t *p, size_t i, uint32_t *out)
{
    size_t n;
    const char *t = text(p, i, &n);

    return parse_u32(t, n, out);
}

/*
 * Copies the value of key (present), a string, into dst (room for max bytes
 * and a NUL), decoding the escapes \" \\ \/. The key tells the rest: a
 * signature's CR/LF (raw, or escaped as \r \n) are dropped (base64 text); the
 * job id and stream name refuse "/", "+", "#" (they become MQTT topic
 * levels). dst is NUL-terminated also on failure.
 */
static ota_job_problem_t copy_string(const parse_t *p, unsigned key, char *dst, size_t max)
{
    size_t i = p->slots[key];
    uint32_t topic = (1u << K_JOB_ID | 1u << K_STREAM) >> key & 1u;
    uint32_t sig = (1u << K_SIG_ECDSA | 1u << K_SIG_RSA) >> key & 1u;
    size_t len = 0;
    int is_string = is_type(p, i, K_STRING);
    const char *s = is_string ? text(p, i, &len) : p->js;
    const char *end = s + len;
    size_t n = 0;
    ota_job_problem_t pr = is_string ? OTA_JOB_PROBLEM_NONE : OTA_JOB_PROBLEM_BAD_VALUE;

    while (pr == OTA_JOB_PROBLEM_NONE && s < end) {
        char c = *s++;
        unsigned u;

        if (c == '\\') {
            /* scan() checked the escape: a quote, backslash or slash (kept as
             * they are) or one of the letters b f n r t u: \n and \r are a
             * line break, the others are refused below. */
            c = *s++;
            if (c >= 'a') {
                c = c == 'n' || c == 'r' ? '\n' : 0;
            }
        }
        if (sig && (c == '\n' || c == '\r')) {
            continue;
        }
        /* Refused: control characters, and in a topic level '#', '+' and '/'
         * (bits 0, 8 and 12 from '#'). */
        u = (unsigned char)c - 0x23u; /* wraps around below '#' */
        if ((unsigned char)c < 0x20u || (topic && u < 13u && (0x1101u >> u & 1u) != 0)) {
            pr = OTA_JOB_PROBLEM_BAD_VALUE;
        } else if (n == max) {
            pr = OTA_JOB_PROBLEM_FIELD_TOO_LONG;
        } else {
            dst[n++] = c;
        }
    }
    dst[pr == OTA_JOB_PROBLEM_NONE ? n : 0] = '\0';
    return pr;
}

/* "protocols": an array of strings (or one string). */
static ota_job_problem_t parse_protocols(parse_t *p, size_t i, ota_job_t *out)
{
    int array;

    p->field = K_PROTOCOLS;
    if (i == 0) {
        return OTA_JOB_PROBLEM_MISSING_FIELD;
    }
    array = is_type(p, i, K_ARRAY);
    for (i = array ? first_element(p, i) : i; i != 0; i = array ? next_element(p, i) : 0) {
        if (!is_type(p, i, K_STRING)) {
            return OTA_JOB_PROBLEM_BAD_VALUE;
        }
        /* MQTT -> 1, HTTP -> 2, others -> 0 */
        unsigned proto = lookup(p, i, N_PROTOCOL, 2);
#if OTA_HTTP_PLANE
        if (out->first_protocol == 0u) {
            out->first_protocol = (uint8_t)proto;
        }
#endif
        out->protocols |= (uint8_t)proto;
    }
#if OTA_HTTP_PLANE
    /* HTTP alone needs a URL: checked with the file. */
    if ((out->protocols & OTA_PROTO_HTTP) != 0) {
        return OTA_JOB_PROBLEM_NONE;
    }
#endif
    return (out->protocols & OTA_PROTO_MQTT) != 0 ? OTA_JOB_PROBLEM_NONE
                                                  : OTA_JOB_PROBLEM_NO_PROTOCOL;
}

/*
 * The value of key: NO_AFR_OTA ("afr_ota") or MISSING_FIELD (the others) when
 * absent, BAD_VALUE when it is not an object, else its members from
 * names[first] as members() finds them (up to the next object's keys, at
 * last). ("execution" and the file are never absent here.)
 */
static ota_job_problem_t object(parse_t *p, unsigned key, unsigned first, unsigned last)
{
    size_t i = p->slots[key];

    p->field = key;
    if (i == 0) {
        return key == K_AFR_OTA ? OTA_JOB_PROBLEM_NO_AFR_OTA : OTA_JOB_PROBLEM_MISSING_FIELD;
    }
    if (!is_type(p, i, K_OBJECT)) {
        return OTA_JOB_PROBLEM_BAD_VALUE;
    }
    return members(p, i, first, last - first);
}

/* statusDetails: values this device wrote; anything unexpected counts as absent. */
static void parse_details(parse_t *p, ota_job_t *out)
{
    size_t i;

    /* (p->field is left at K_DETAILS: what follows sets it again) */
    if (object(p, K_DETAILS, K_SELF_TEST, K_AFR_OTA) != OTA_JOB_PROBLEM_NONE) {
        return;
    }
    out->self_test = (uint8_t)lookup(p, p->slots[K_SELF_TEST], N_SELF_TEST, 2);
    i = p->slots[K_UPDATED_BY];
    out->has_updated_by = (uint8_t)get_u32(p, i, &out->updated_by);
    i = p->slots[K_RECEIVE];
    if (is_type(p, i, K_STRING)) {
        size_t n;
        const char *v = text(p, i, &n);
        const char *slash = memchr(v, '/', n);

        if (slash != NULL) {
            size_t k = (size_t)(slash - v);

            out->has_receive = (uint8_t)(parse_u32(v, k, &out->received_blocks) &&
                                         parse_u32(slash + 1, n - k - 1, &out->total_blocks));
        }
    }
}

/* "jobId" or "streamname": a required, non-empty string usable as a topic level. */
static ota_job_problem_t topic_string(parse_t *p, unsigned key, char *dst, size_t max)
{
    ota_job_problem_t pr;
    size_t i = p->slots[key];

    p->field = key;
    if (i == 0) {
        return OTA_JOB_PROBLEM_MISSING_FIELD;
    }
    pr = copy_string(p, key, dst, max);
    return pr == OTA_JOB_PROBLEM_NONE && dst[0] == '\0' ? OTA_JOB_PROBLEM_BAD_VALUE : pr;
}

/* What file_fields[].aux says of a number: optional (0 when absent), required,
 * or required and not 0; a string's aux is the offset of the byte set when it
 * is present (never one of these: ota_job_t starts with the job id). */
#define FF_OPTIONAL 0u
#define FF_REQUIRED 1u
#define FF_NONZERO 2u

/* The fields of a file in check order (the signature follows them). */
static const struct file_field {
    uint8_t key;  /* index in names[] */
    uint8_t max;  /* a string's longest length; a number's: 255, or 0 for UINT32_MAX */
    uint16_t dst; /* offset in ota_job_t */
    uint16_t aux; /* a number's FF_*, or a string's presence byte (see above) */
} file_fields[] = {
    {K_PATH, OTA_FILE_PATH_MAX, offsetof(ota_job_t, file_path), offsetof(ota_job_t, has_file_path)},
    {K_SIZE, 0, offsetof(ota_job_t, file_size), FF_NONZERO},
    {K_ID, 255, offsetof(ota_job_t, file_id), FF_REQUIRED},
    {K_CERT, OTA_CERT_NAME_MAX, offsetof(ota_job_t, cert_name), offsetof(ota_job_t, has_cert_name)},
    {K_TYPE, 255, offsetof(ota_job_t, file_type), FF_OPTIONAL},
};

typedef char file_field_strings_apart[offsetof(ota_job_t, has_file_path) > FF_NONZERO ? 1 : -1];
typedef char file_field_lengths_fit[OTA_FILE_PATH_MAX <= 255 && OTA_CERT_NAME_MAX <= 255 ? 1 : -1];

static ota_job_problem_t parse_signature(parse_t *p, ota_job_t *out)
{
    char text[OTA_JOB_SIG_B64_MAX + 1];
    ota_job_problem_t pr;
    const size_t *s = p->slots;
    unsigned key = K_SIG_ECDSA;

    /* ECDSA when the document has it; RSA only when built in (OTA_SIG_RSA). */
    if (s[K_SIG_ECDSA] == 0 && s[K_SIG_RSA] != 0) {
        key = K_SIG_RSA;
        if (!OTA_SIG_RSA) {
            p->field = K_SIG_RSA;
            return OTA_JOB_PROBLEM_SIG_METHOD_DISABLED;
        }
    }
    p->field = key;
    if (s[key] == 0) {
        if (s[K_SIG_OTHER] != 0) {
            p->field = K_NONE;
            return OTA_JOB_PROBLEM_UNKNOWN_SIG_METHOD;
        }
        return OTA_JOB_PROBLEM_MISSING_FIELD;
    }
    if (key == K_SIG_RSA) {
        out->sig_method = OTA_SIG_SHA256_RSA; /* else OTA_SIG_SHA256_ECDSA, 0 from the start */
    }
    pr = copy_string(p, key, text, OTA_JOB_SIG_B64_MAX);
    if (pr == OTA_JOB_PROBLEM_NONE &&
        (ota_base64_decode(text, strlen(text), out->signature, sizeof(out->signature),
                           &out->signature_len) != OTA_OK ||
         out->signature_len == 0)) {
        pr = OTA_JOB_PROBLEM_BAD_VALUE;
    }
    return pr == OTA_JOB_PROBLEM_BAD_VALUE ? OTA_JOB_PROBLEM_BAD_SIGNATURE_ENCODING : pr;
}

#if OTA_HTTP_PLANE
/* "update_data_url" and "auth_scheme" of the first file (strings or null). */
static ota_job_problem_t parse_url(parse_t *p, ota_job_t *out)
{
    char scheme[OTA_AUTH_SCHEME_MAX + 1];
    ota_job_problem_t pr = OTA_JOB_PROBLEM_NONE;
    const size_t *s = p->slots;

    p->field = K_URL;
    if (s[K_URL] != 0 && !is_null(p, s[K_URL])) {
        pr = copy_string(p, K_URL, out->url, OTA_HTTP_URL_MAX);
        /* a space would end the request line early */
        if (pr == OTA_JOB_PROBLEM_NONE && strchr(out->url, ' ') != NULL) {
            out->url[0] = '\0';
            pr = OTA_JOB_PROBLEM_BAD_VALUE;
        }
    }
    if (pr == OTA_JOB_PROBLEM_NONE && s[K_AUTH] != 0 && !is_null(p, s[K_AUTH])) {
        p->field = K_AUTH;
        pr = copy_string(p, K_AUTH, scheme, OTA_AUTH_SCHEME_MAX);
    }
    if (pr == OTA_JOB_PROBLEM_NONE && (out->protocols & OTA_PROTO_MQTT) == 0 &&
        out->url[0] == '\0') {
        /* "HTTP" alone and no URL: nothing to fetch the file from */
        p->field = K_URL;
        pr = OTA_JOB_PROBLEM_NO_PROTOCOL;
    }
    return pr;
}
#endif

/* "otterDeviceTypes": absent or null (any type), or an array of 1 to
 * OTA_JOB_DEVICE_TYPES_MAX type names, kept as their tags. */
static ota_job_problem_t parse_device_types(parse_t *p, ota_job_t *out)
{
    size_t i = p->slots[K_DEVICE_TYPES];
    unsigned k = 0;

    p->field = K_DEVICE_TYPES;
    if (i == 0 || is_null(p, i)) {
        return OTA_JOB_PROBLEM_NONE;
    }
    /* Absent elements (no array, or an empty one) are at 0, which holds no string. */
    i = first_element(p, i);
    do {
        size_t n;
        const char *name;
        if (!is_type(p, i, K_STRING) || k == OTA_JOB_DEVICE_TYPES_MAX) {
            return OTA_JOB_PROBLEM_BAD_VALUE;
        }
        /* The name's characters need no escapes: its raw text is the name. */
        name = text(p, i, &n);
        if (ota_device_type_tag(name, n, &out->device_type_tags[k]) != OTA_OK) {
            return OTA_JOB_PROBLEM_BAD_VALUE;
        }
        out->n_device_types = (uint8_t)++k;
        i = next_element(p, i);
    } while (i != 0);
    return OTA_JOB_PROBLEM_NONE;
}

/* The first file of "files". */
static ota_job_problem_t parse_file(parse_t *p, ota_job_t *out)
{
    ota_job_problem_t pr;
    uint8_t *base = (uint8_t *)out;
    size_t i = p->slots[K_FILES];

    p->field = K_FILES;
    if (i == 0) {
        return OTA_JOB_PROBLEM_MISSING_FIELD;
    }
    /* The file object's value takes the place of the "files" array's. */
    i = first_element(p, i);
    if (i == 0) {
        return OTA_JOB_PROBLEM_BAD_VALUE;
    }
    p->slots[K_FILES] = i;
    pr = object(p, K_FILES, K_PATH, K_COUNT);
    for (size_t f = 0; pr == OTA_JOB_PROBLEM_NONE && f < sizeof file_fields / sizeof file_fields[0];
         f++) {
        const struct file_field *ff = &file_fields[f];
        size_t v = p->slots[ff->key];
        uint32_t n;

        p->field = ff->key;
        if (ff->aux > FF_NONZERO) {
            if (v != 0 && !is_null(p, v)) {
                base[ff->aux] = 1;
                pr = copy_string(p, ff->key, (char *)base + ff->dst, ff->max);
            }
        } else if (v == 0) {
            if (ff->aux != FF_OPTIONAL) {
                pr = OTA_JOB_PROBLEM_MISSING_FIELD;
            }
        } else if (!get_u32(p, v, &n) || (ff->max != 0u && n > ff->max)) {
            pr = OTA_JOB_PROBLEM_BAD_VALUE;
        } else if (n == 0u && ff->aux == FF_NONZERO) {
            pr = OTA_JOB_PROBLEM_ZERO_SIZE;
        } else {
            memcpy(base + ff->dst, &n, sizeof n);
        }
    }
    if (pr == OTA_JOB_PROBLEM_NONE) {
        pr = parse_device_types(p, out);
    }
#if OTA_HTTP_PLANE
    if (pr == OTA_JOB_PROBLEM_NONE) {
        pr = parse_url(p, out);
    }
#endif
    if (pr == OTA_JOB_PROBLEM_NONE) {
        pr = parse_signature(p, out);
    }
    return pr;
}

/* jobDocument.afr_ota. */
static ota_job_problem_t parse_document(parse_t *p, ota_job_t *out)
{
    ota_job_problem_t pr;

    pr = object(p, K_DOCUMENT, K_AFR_OTA, K_PROTOCOLS);
    if (pr == OTA_JOB_PROBLEM_NONE) {
        pr = object(p, K_AFR_OTA, K_PROTOCOLS, K_PATH);
    }
    if (pr == OTA_JOB_PROBLEM_NONE) {
        pr = parse_protocols(p, p->slots[K_PROTOCOLS], out);
    }
    if (pr == OTA_JOB_PROBLEM_NONE) {
        pr = topic_string(p, K_STREAM, out->stream, OTA_STREAM_NAME_MAX);
    }
    if (pr == OTA_JOB_PROBLEM_NONE) {
        pr = parse_file(p, out);
    }
    return pr;
}

/* The execution (present, not null) and its job: everything of it. */
OTA_OUT_OF_LINE static ota_job_problem_t parse_job(parse_t *p, ota_job_t *out)
{
    ota_job_problem_t pr = object(p, K_EXECUTION, K_JOB_ID, K_SELF_TEST);
    size_t i = p->slots[K_STATUS];

    if (pr == OTA_JOB_PROBLEM_NONE) {
        pr = topic_string(p, K_JOB_ID, out->job_id, OTA_JOB_ID_MAX);
    }
    if (pr != OTA_JOB_PROBLEM_NONE) {
        return pr;
    }
    if (i != 0) {
        p->field = K_STATUS;
        out->status = (ota_job_status_t)lookup(p, i, N_STATUS, 8);
        if (out->status == OTA_JOB_STATUS_NONE) {
            return OTA_JOB_PROBLEM_BAD_VALUE;
        }
    }
    (void)get_u32(p, p->slots[K_VERSION], &out->version_number);
    parse_details(p, out);
    return parse_document(p, out);
}

/* A zeroed ota_job_t names ECDSA. */
typedef char ota_job_ecdsa_zero[OTA_SIG_SHA256_ECDSA == 0 ? 1 : -1];

/* The problems that make a job unsupported rather than bad come last. */
typedef char ota_job_unsupported_last[OTA_JOB_PROBLEM_UNKNOWN_SIG_METHOD == 9 &&
                                              OTA_JOB_PROBLEM_NO_PROTOCOL == 10 &&
                                              OTA_JOB_PROBLEM_SIG_METHOD_DISABLED == 11 &&
                                              OTA_JOB_PROBLEM_COUNT == 12
                                          ? 1
                                          : -1];

/* Checks that the message is one JSON object and nothing else, and finds its
 * "execution". */
static ota_job_problem_t check_json(parse_t *p, const char *json, size_t len)
{
    size_t start;
    size_t end;

    p->js = json;
    p->len = len;
    start = ws(p, 0);
    if (memchr(json, 0, len) != NULL || start >= len || json[start] != '{') {
        return OTA_JOB_PROBLEM_BAD_JSON;
    }
    end = scan(p, start);
    if (end == TOO_DEEP) {
        return OTA_JOB_PROBLEM_TOO_DEEP;
    }
    if (ws(p, end) != len) {
        return OTA_JOB_PROBLEM_BAD_JSON;
    }
    return members(p, start, K_EXECUTION, 1);
}

ota_err_t ota_job_parse(const char *json, size_t len, ota_job_t *out, ota_job_issue_t *issue)
{
    parse_t p;
    ota_job_problem_t pr;
    ota_err_t err = OTA_ERR_NOT_FOUND;
    size_t i;

    if (json == NULL || out == NULL || len > (size_t)INT_MAX) {
        return OTA_ERR_INVALID_ARG;
    }
    memset(out, 0, sizeof(*out));
    memset(&p, 0, sizeof p); /* every slot absent, no field */
    pr = check_json(&p, json, len);
    i = p.slots[K_EXECUTION];
    if (pr == OTA_JOB_PROBLEM_NONE && i != 0 && !is_null(&p, i)) {
        pr = parse_job(&p, out);
        err = OTA_OK;
    }
    if (pr != OTA_JOB_PROBLEM_NONE) {
        /* A job id is there (and only then) when the problem came after it. */
        err = pr == OTA_JOB_PROBLEM_TOO_DEEP ? OTA_ERR_OUT_OF_MEMORY
              : out->job_id[0] == '\0'       ? OTA_ERR_BAD_MESSAGE
              : pr >= OTA_JOB_PROBLEM_UNKNOWN_SIG_METHOD
                  /* UNKNOWN_SIG_METHOD, NO_PROTOCOL, SIG_METHOD_DISABLED */
                  ? OTA_ERR_UNSUPPORTED
                  : OTA_ERR_BAD_JOB_DOC;
    }
    if (issue != NULL) {
        issue->problem = pr;
        issue->field = pr == OTA_JOB_PROBLEM_NONE || p.field == K_NONE ? NULL : nth(p.field);
    }
    return err;
}
