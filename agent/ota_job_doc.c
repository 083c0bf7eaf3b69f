/* otter: jobs messages and OTA job documents (JSON, tokenised by jsmn). */
#include "ota_job_doc.h"

#include <limits.h>
#include <stddef.h>
#include <string.h>

#include "ota_base64.h"

/* jsmn's functions become static here, so the library exports none of them. */
#define JSMN_STATIC
#include <jsmn.h>

/* The public token type must have the size of jsmn's (both hold ints, so they
 * share their alignment too). */
typedef char ota_job_token_matches_jsmn[sizeof(ota_job_token_t) == sizeof(jsmntok_t) ? 1 : -1];

/* Flags of copy_string(). */
#define COPY_TOPIC 1u /* refuse "/", "+", "#": the string becomes an MQTT topic level */
#define COPY_SIG 2u   /* drop CR and LF (raw or escaped): base64 text */

/* The parse: the message, its tokens and the field a problem concerns. */
typedef struct parse {
    const char *js;
    const jsmntok_t *t;
    int n;
    const char *field;
} parse_t;

/* Keys of each object; a value's position in slots[] is its key's index. */
static const char *const root_keys[] = {"execution"};
enum { R_EXECUTION, R_COUNT };
static const char *const exec_keys[] = {"jobId", "status", "versionNumber", "statusDetails",
                                        "jobDocument"};
enum { E_JOB_ID, E_STATUS, E_VERSION, E_DETAILS, E_DOCUMENT, E_COUNT };
static const char *const detail_keys[] = {"self_test", "updatedBy", "receive"};
enum { D_SELF_TEST, D_UPDATED_BY, D_RECEIVE, D_COUNT };
static const char *const doc_keys[] = {"afr_ota"};
enum { J_AFR_OTA, J_COUNT };
static const char *const ota_keys[] = {"protocols", "streamname", "files"};
enum { O_PROTOCOLS, O_STREAM, O_FILES, O_COUNT };
/* The last key, "sig-", matches any key that starts with it. */
static const char *const file_keys[] = {"filepath", "certfile",         "filesize",       "fileid",
                                        "fileType", "sig-sha256-ecdsa", "sig-sha256-rsa", "sig-"};
enum { F_PATH, F_CERT, F_SIZE, F_ID, F_TYPE, F_SIG_ECDSA, F_SIG_RSA, F_SIG_OTHER, F_COUNT };

/* Values of known strings; a match at index k gives k + 1. */
static const char *const self_test_names[] = {"ready", "active"}; /* ota_self_test_t */
static const char *const protocol_names[] = {"MQTT", "HTTP"};     /* OTA_PROTO_* bits */
/* Status texts in ota_job_status_t order, from OTA_JOB_STATUS_QUEUED. */
static const char *const status_names[] = {"QUEUED",    "IN_PROGRESS", "SUCCEEDED", "FAILED",
                                           "TIMED_OUT", "REJECTED",    "REMOVED",   "CANCELED"};

static const char *const problem_names[OTA_JOB_PROBLEM_COUNT] = {
    "no problem",
    "bad JSON",
    "too many JSON tokens",
    "not an OTA job",
    "missing field",
    "bad value",
    "zero file size",
    "field too long",
    "bad signature encoding",
    "unknown signature method",
    "no supported protocol",
    "signature method not enabled",
};

const char *ota_job_problem_str(ota_job_problem_t problem)
{
    if ((unsigned)problem >= OTA_JOB_PROBLEM_COUNT) {
        return "unknown problem";
    }
    return problem_names[problem];
}

static size_t tok_len(const jsmntok_t *t)
{
    return (size_t)(t->end - t->start);
}

/* 1 if the text of token i is text (with prefix: starts with text). */
static int tok_is(const parse_t *p, int i, const char *text, int prefix)
{
    const jsmntok_t *t = &p->t[i];
    size_t n = strlen(text);

    return (prefix ? tok_len(t) >= n : tok_len(t) == n) && memcmp(p->js + t->start, text, n) == 0;
}

/* Index of the token after token i and everything inside it. */
static int skip(const parse_t *p, int i)
{
    int pending = 1;

    while (pending > 0 && i < p->n) {
        pending += p->t[i].size - 1;
        i++;
    }
    return i;
}

/*
 * Finds the values of count keys in object obj: slots[k] is the token index of
 * keys[k]'s value, 0 when absent. With prefix, the last key matches every key
 * that starts with it (and may repeat). Unknown keys are skipped.
 */
static ota_job_problem_t members(parse_t *p, int obj, const char *const *keys, int count,
                                 int prefix, int *slots)
{
    int i = obj + 1;
    int left;

    memset(slots, 0, (size_t)count * sizeof(*slots));
    for (left = p->t[obj].size; left > 0; left--) {
        int k;

        /* jsmn tolerates a key without a value, or several: refuse both here. */
        if (i + 1 >= p->n || p->t[i].type != JSMN_STRING || p->t[i].size != 1) {
            return OTA_JOB_PROBLEM_BAD_JSON;
        }
        for (k = 0; k < count; k++) {
            int last = prefix && k == count - 1;

            if (tok_is(p, i, keys[k], last)) {
                if (slots[k] != 0 && !last) {
                    p->field = keys[k];
                    return OTA_JOB_PROBLEM_BAD_VALUE;
                }
                slots[k] = i + 1;
                break;
            }
        }
        i = skip(p, i + 1);
    }
    return OTA_JOB_PROBLEM_NONE;
}

/* 1 if token i (0: absent) has this type; a string or primitive must have no
 * children (jsmn gives some to malformed input such as ["a":1]). */
static int is_type(const parse_t *p, int i, jsmntype_t type)
{
    return i != 0 && p->t[i].type == type && (type <= JSMN_ARRAY || p->t[i].size == 0);
}

static int is_null(const parse_t *p, int i)
{
    return is_type(p, i, JSMN_PRIMITIVE) && tok_is(p, i, "null", 0);
}

/* 1 + the index of the name that string token i (0: absent) equals, or 0. */
static unsigned lookup(const parse_t *p, int i, const char *const *names, unsigned count)
{
    unsigned k;

    if (is_type(p, i, JSMN_STRING)) {
        for (k = 0; k < count; k++) {
            if (tok_is(p, i, names[k], 0)) {
                return k + 1;
            }
        }
    }
    return 0;
}

/* Parses n characters as a decimal or "0x" hex number <= max. */
static int parse_u32(const char *s, size_t n, uint32_t max, uint32_t *out)
{
    uint32_t base = 10;
    uint32_t v = 0;
    size_t i = 0;

    if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        i = 2;
    }
    if (n == 0) {
        return 0;
    }
    for (; i < n; i++) {
        uint32_t c = (uint32_t)(unsigned char)s[i];
        uint32_t lower = c | 0x20u;
        uint32_t d;

        if (c >= '0' && c <= '9') {
            d = c - '0';
        } else if (base == 16 && lower >= 'a' && lower <= 'f') {
            d = lower - 'a' + 10u;
        } else {
            return 0;
        }
        if (v > (max - d) / base) {
            return 0;
        }
        v = v * base + d;
    }
    *out = v;
    return 1;
}

/* A number, as a JSON number or a string, <= max. */
static int get_u32(const parse_t *p, int i, uint32_t max, uint32_t *out)
{
    const jsmntok_t *t = &p->t[i];

    return (t->type == JSMN_PRIMITIVE || t->type == JSMN_STRING) && t->size == 0 &&
           parse_u32(p->js + t->start, tok_len(t), max, out);
}

/*
 * Copies string token i into dst (room for max bytes and a NUL), decoding the
 * escapes \" \\ \/ (and, with COPY_SIG, dropping CR/LF and \r \n). dst is
 * NUL-terminated also on failure.
 */
static ota_job_problem_t copy_string(const parse_t *p, int i, char *dst, size_t max, unsigned flags)
{
    const jsmntok_t *t = &p->t[i];
    const char *s = p->js + t->start;
    const char *end = p->js + t->end;
    size_t n = 0;
    ota_job_problem_t pr =
        is_type(p, i, JSMN_STRING) ? OTA_JOB_PROBLEM_NONE : OTA_JOB_PROBLEM_BAD_VALUE;

    while (pr == OTA_JOB_PROBLEM_NONE && s < end) {
        char c = *s++;

        if (c == '\\') {
            /* jsmn guarantees a character after a backslash inside a string. */
            c = *s++;
            if (c == 'n' || c == 'r') {
                c = '\n';
            } else if (c != '"' && c != '\\' && c != '/') {
                c = 0; /* refused below */
            }
        }
        if ((flags & COPY_SIG) != 0 && (c == '\n' || c == '\r')) {
            continue;
        }
        if ((unsigned char)c < 0x20u ||
            ((flags & COPY_TOPIC) != 0 && (c == '/' || c == '+' || c == '#'))) {
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

/* statusDetails: values this device wrote; anything unexpected counts as absent. */
static void parse_details(parse_t *p, int obj, ota_job_t *out)
{
    int s[D_COUNT];
    int i;

    if (!is_type(p, obj, JSMN_OBJECT) ||
        members(p, obj, detail_keys, D_COUNT, 0, s) != OTA_JOB_PROBLEM_NONE) {
        return;
    }
    out->self_test = (uint8_t)lookup(p, s[D_SELF_TEST], self_test_names, 2);
    i = s[D_UPDATED_BY];
    out->has_updated_by = (uint8_t)(i != 0 && get_u32(p, i, UINT32_MAX, &out->updated_by));
    i = s[D_RECEIVE];
    if (is_type(p, i, JSMN_STRING)) {
        const char *v = p->js + p->t[i].start;
        size_t n = tok_len(&p->t[i]);
        const char *slash = memchr(v, '/', n);

        if (slash != NULL) {
            size_t k = (size_t)(slash - v);

            out->has_receive =
                (uint8_t)(parse_u32(v, k, UINT32_MAX, &out->received_blocks) &&
                          parse_u32(slash + 1, n - k - 1, UINT32_MAX, &out->total_blocks));
        }
    }
}

/* "protocols": an array of strings (or one string). */
static ota_job_problem_t parse_protocols(parse_t *p, int i, ota_job_t *out)
{
    int count = 1;
    int k;

    p->field = ota_keys[O_PROTOCOLS];
    if (i == 0) {
        return OTA_JOB_PROBLEM_MISSING_FIELD;
    }
    if (is_type(p, i, JSMN_ARRAY)) {
        count = p->t[i].size;
        i++;
    }
    for (k = 0; k < count; k++, i++) {
        if (i >= p->n || !is_type(p, i, JSMN_STRING)) {
            return OTA_JOB_PROBLEM_BAD_VALUE;
        }
        /* MQTT -> 1, HTTP -> 2, others -> 0 */
        out->protocols |= (uint8_t)lookup(p, i, protocol_names, 2);
    }
    return (out->protocols & OTA_PROTO_MQTT) != 0 ? OTA_JOB_PROBLEM_NONE
                                                  : OTA_JOB_PROBLEM_NO_PROTOCOL;
}

/*
 * Value i of key: a problem missing when absent (0), BAD_VALUE when it is not
 * an object, else its members as members() finds them.
 */
static ota_job_problem_t object(parse_t *p, int i, const char *key, ota_job_problem_t missing,
                                const char *const *keys, int count, int prefix, int *slots)
{
    p->field = key;
    if (i == 0) {
        return missing;
    }
    if (!is_type(p, i, JSMN_OBJECT)) {
        return OTA_JOB_PROBLEM_BAD_VALUE;
    }
    return members(p, i, keys, count, prefix, slots);
}

/* "jobId" or "streamname": a required, non-empty string usable as a topic level. */
static ota_job_problem_t topic_string(parse_t *p, int i, const char *key, char *dst, size_t max)
{
    ota_job_problem_t pr;

    p->field = key;
    if (i == 0) {
        return OTA_JOB_PROBLEM_MISSING_FIELD;
    }
    pr = copy_string(p, i, dst, max, COPY_TOPIC);
    return pr == OTA_JOB_PROBLEM_NONE && dst[0] == '\0' ? OTA_JOB_PROBLEM_BAD_VALUE : pr;
}

/* Kinds of the fields of a file, in file_fields[]. */
#define FF_STRING 0u   /* a string, null or absent; the byte at aux is set when present */
#define FF_REQUIRED 1u /* a required number (aux: 1 if it must not be 0) */
#define FF_OPTIONAL 2u /* a number, 0 when absent */

/* The fields of a file in check order (the signature follows them). */
static const struct file_field {
    uint8_t key;  /* index in file_keys[] */
    uint8_t kind; /* FF_* */
    uint8_t max;  /* FF_STRING: longest length; numbers: 255, or 0 for UINT32_MAX */
    uint16_t dst; /* offset in ota_job_t */
    uint16_t aux; /* see FF_* */
} file_fields[] = {
    {F_PATH, FF_STRING, OTA_FILE_PATH_MAX, offsetof(ota_job_t, file_path),
     offsetof(ota_job_t, has_file_path)},
    {F_SIZE, FF_REQUIRED, 0, offsetof(ota_job_t, file_size), 1},
    {F_ID, FF_REQUIRED, 255, offsetof(ota_job_t, file_id), 0},
    {F_CERT, FF_STRING, OTA_CERT_NAME_MAX, offsetof(ota_job_t, cert_name),
     offsetof(ota_job_t, has_cert_name)},
    {F_TYPE, FF_OPTIONAL, 255, offsetof(ota_job_t, file_type), 0},
};

typedef char file_field_lengths_fit[OTA_FILE_PATH_MAX <= 255 && OTA_CERT_NAME_MAX <= 255 ? 1 : -1];

static ota_job_problem_t parse_signature(parse_t *p, const int *s, ota_job_t *out)
{
    char text[OTA_JOB_SIG_B64_MAX + 1];
    ota_job_problem_t pr;

    int key = F_SIG_ECDSA;

    /* ECDSA when the document has it; RSA only when built in (OTA_SIG_RSA). */
    if (s[F_SIG_ECDSA] == 0 && s[F_SIG_RSA] != 0) {
        key = F_SIG_RSA;
        if (!OTA_SIG_RSA) {
            p->field = file_keys[F_SIG_RSA];
            return OTA_JOB_PROBLEM_SIG_METHOD_DISABLED;
        }
    }
    p->field = file_keys[key];
    if (s[key] == 0) {
        if (s[F_SIG_OTHER] != 0) {
            p->field = NULL;
            return OTA_JOB_PROBLEM_UNKNOWN_SIG_METHOD;
        }
        return OTA_JOB_PROBLEM_MISSING_FIELD;
    }
    out->sig_method = key == F_SIG_RSA ? OTA_SIG_SHA256_RSA : OTA_SIG_SHA256_ECDSA;
    pr = copy_string(p, s[key], text, OTA_JOB_SIG_B64_MAX, COPY_SIG);
    if (pr == OTA_JOB_PROBLEM_NONE &&
        (ota_base64_decode(text, strlen(text), out->signature, sizeof(out->signature),
                           &out->signature_len) != OTA_OK ||
         out->signature_len == 0)) {
        pr = OTA_JOB_PROBLEM_BAD_VALUE;
    }
    return pr == OTA_JOB_PROBLEM_BAD_VALUE ? OTA_JOB_PROBLEM_BAD_SIGNATURE_ENCODING : pr;
}

/* The first file of "files". */
static ota_job_problem_t parse_file(parse_t *p, int i, ota_job_t *out)
{
    int s[F_COUNT];
    ota_job_problem_t pr;
    uint8_t *base = (uint8_t *)out;

    p->field = ota_keys[O_FILES];
    if (i == 0) {
        return OTA_JOB_PROBLEM_MISSING_FIELD;
    }
    if (!is_type(p, i, JSMN_ARRAY) || p->t[i].size == 0) {
        return OTA_JOB_PROBLEM_BAD_VALUE;
    }
    pr = object(p, i + 1, ota_keys[O_FILES], OTA_JOB_PROBLEM_NONE, file_keys, F_COUNT, 1, s);
    for (size_t f = 0; pr == OTA_JOB_PROBLEM_NONE && f < sizeof file_fields / sizeof file_fields[0];
         f++) {
        const struct file_field *ff = &file_fields[f];
        int v = s[ff->key];
        uint32_t n;

        p->field = file_keys[ff->key];
        if (ff->kind == FF_STRING) {
            if (v != 0 && !is_null(p, v)) {
                base[ff->aux] = 1;
                pr = copy_string(p, v, (char *)base + ff->dst, ff->max, 0);
            }
        } else if (v == 0) {
            if (ff->kind == FF_REQUIRED) {
                pr = OTA_JOB_PROBLEM_MISSING_FIELD;
            }
        } else if (!get_u32(p, v, ff->max != 0u ? ff->max : UINT32_MAX, &n)) {
            pr = OTA_JOB_PROBLEM_BAD_VALUE;
        } else if (n == 0u && ff->aux != 0u) {
            pr = OTA_JOB_PROBLEM_ZERO_SIZE;
        } else {
            memcpy(base + ff->dst, &n, sizeof n);
        }
    }
    if (pr == OTA_JOB_PROBLEM_NONE) {
        pr = parse_signature(p, s, out);
    }
    return pr;
}

/* jobDocument.afr_ota. */
static ota_job_problem_t parse_document(parse_t *p, int doc, ota_job_t *out)
{
    int s[O_COUNT];
    ota_job_problem_t pr;

    pr = object(p, doc, exec_keys[E_DOCUMENT], OTA_JOB_PROBLEM_MISSING_FIELD, doc_keys, J_COUNT, 0,
                s);
    if (pr == OTA_JOB_PROBLEM_NONE) {
        pr = object(p, s[J_AFR_OTA], doc_keys[J_AFR_OTA], OTA_JOB_PROBLEM_NO_AFR_OTA, ota_keys,
                    O_COUNT, 0, s);
    }
    if (pr == OTA_JOB_PROBLEM_NONE) {
        pr = parse_protocols(p, s[O_PROTOCOLS], out);
    }
    if (pr == OTA_JOB_PROBLEM_NONE) {
        pr = topic_string(p, s[O_STREAM], ota_keys[O_STREAM], out->stream, OTA_STREAM_NAME_MAX);
    }
    if (pr == OTA_JOB_PROBLEM_NONE) {
        pr = parse_file(p, s[O_FILES], out);
    }
    return pr;
}

/* The execution up to its job document; a problem here leaves no job to report to. */
static ota_job_problem_t parse_job_id(parse_t *p, int exec, int *s, ota_job_t *out)
{
    ota_job_problem_t pr = object(p, exec, root_keys[R_EXECUTION], OTA_JOB_PROBLEM_BAD_VALUE,
                                  exec_keys, E_COUNT, 0, s);

    if (pr == OTA_JOB_PROBLEM_NONE) {
        pr = topic_string(p, s[E_JOB_ID], exec_keys[E_JOB_ID], out->job_id, OTA_JOB_ID_MAX);
    }
    return pr;
}

/* Everything of a message whose job id is known. */
static ota_job_problem_t parse_job(parse_t *p, const int *s, ota_job_t *out)
{
    int i = s[E_STATUS];

    if (i != 0) {
        p->field = exec_keys[E_STATUS];
        out->status = (ota_job_status_t)lookup(p, i, status_names, 8);
        if (out->status == OTA_JOB_STATUS_NONE) {
            return OTA_JOB_PROBLEM_BAD_VALUE;
        }
    }
    if (s[E_VERSION] != 0) {
        (void)get_u32(p, s[E_VERSION], UINT32_MAX, &out->version_number);
    }
    parse_details(p, s[E_DETAILS], out);
    return parse_document(p, s[E_DOCUMENT], out);
}

/* 1 if js[from, to) is JSON whitespace only. */
static int blank(const char *js, size_t from, size_t to)
{
    for (; from < to; from++) {
        char c = js[from];

        if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
            return 0;
        }
    }
    return 1;
}

/* Splits the message into tokens; problem NONE and p->n tokens on success. */
static ota_job_problem_t tokenise(parse_t *p, const char *json, size_t len, jsmntok_t *t,
                                  size_t token_count)
{
    jsmn_parser parser;
    int r;

    jsmn_init(&parser);
    r = jsmn_parse(&parser, json, len, t,
                   token_count > UINT_MAX ? UINT_MAX : (unsigned)token_count);
    if (r == JSMN_ERROR_NOMEM) {
        return OTA_JOB_PROBLEM_TOO_MANY_TOKENS;
    }
    p->js = json;
    p->t = t;
    p->n = r;
    /* One object and nothing else (jsmn stops at a NUL byte and skips stray
     * commas and colons between values). */
    if (r < 1 || t[0].type != JSMN_OBJECT || skip(p, 0) != r ||
        !blank(json, 0, (size_t)t[0].start) || !blank(json, (size_t)t[0].end, len)) {
        return OTA_JOB_PROBLEM_BAD_JSON;
    }
    return OTA_JOB_PROBLEM_NONE;
}

ota_err_t ota_job_parse(const char *json, size_t len, ota_job_token_t *tokens, size_t token_count,
                        ota_job_t *out, ota_job_issue_t *issue)
{
    parse_t p;
    int s[E_COUNT];
    ota_job_problem_t pr;
    ota_err_t err = OTA_ERR_BAD_MESSAGE;

    if (json == NULL || tokens == NULL || out == NULL || token_count == 0 ||
        len > (size_t)INT_MAX) {
        return OTA_ERR_INVALID_ARG;
    }
    memset(out, 0, sizeof(*out));
    p.field = NULL;
    pr = tokenise(&p, json, len, (jsmntok_t *)(void *)tokens, token_count);
    if (pr == OTA_JOB_PROBLEM_TOO_MANY_TOKENS) {
        err = OTA_ERR_OUT_OF_MEMORY;
    } else if (pr == OTA_JOB_PROBLEM_NONE) {
        pr = members(&p, 0, root_keys, R_COUNT, 0, s);
    }
    if (pr == OTA_JOB_PROBLEM_NONE) {
        if (s[R_EXECUTION] == 0 || is_null(&p, s[R_EXECUTION])) {
            err = OTA_ERR_NOT_FOUND;
        } else {
            pr = parse_job_id(&p, s[R_EXECUTION], s, out);
            if (pr == OTA_JOB_PROBLEM_NONE) {
                pr = parse_job(&p, s, out);
                err = OTA_ERR_BAD_JOB_DOC;
                if (pr == OTA_JOB_PROBLEM_NONE) {
                    err = OTA_OK;
                } else if (pr == OTA_JOB_PROBLEM_UNKNOWN_SIG_METHOD ||
                           pr == OTA_JOB_PROBLEM_SIG_METHOD_DISABLED ||
                           pr == OTA_JOB_PROBLEM_NO_PROTOCOL) {
                    err = OTA_ERR_UNSUPPORTED;
                }
            }
        }
    }
    if (issue != NULL) {
        issue->problem = pr;
        issue->field = pr == OTA_JOB_PROBLEM_NONE ? NULL : p.field;
    }
    return err;
}
