/*
 * otter: the agent's side of the AWS IoT Jobs API (see ota_jobs.h).
 */
#include "ota_jobs.h"
#include "ota_out_of_line.h"

#include <string.h>

/* The lowercase hex digit of d (0 .. 15). */
static unsigned ota_hex(unsigned d)
{
    return d + (d < 10u ? (unsigned)'0' : (unsigned)'a' - 10u);
}

/*
 * Pieces of topics ('\2' .. '\7' in a text stand for the first six), then,
 * after "$aws/things/<thing>/", the topic of each ota_jobs_kind_t in order,
 * '\1' standing for the job id or stream name.
 */
#define OTA_PIECES 6u
static const char ota_texts[] = "jobs/\0"
                                "$next/get\0"
                                "/update\0"
                                "/rejected\0"
                                "streams/\0"
                                "/cbor\0"
                                "\2notify-next\0"
                                "\2\3/accepted\0"
                                "\2\3\5\0"
                                "\2\1\4\5\0"
                                "\6\1/data\7\0"
                                "\6\1\5\7\0"
                                "\6\1/get\7\0"
                                "\2\3\0"
                                "\2\1\4";

/* Text k of ota_texts. */
OTA_OUT_OF_LINE static const char *ota_nth(unsigned k)
{
    const char *t = ota_texts;
    while (k-- != 0u) {
        t += strlen(t) + 1u;
    }
    return t;
}

void ota_jobs_init(ota_jobs_t *j, const char *thing_name, const ota_mqtt_t *mqtt)
{
    j->thing_name = thing_name;
    j->mqtt = *mqtt;
}

/*
 * Text written into buf (cap bytes; a length above cap - 1 means it did not
 * fit: it keeps growing, so one check at the end does), or, with cmp set,
 * compared with the cap bytes at buf: a difference makes len cap + 1, so len
 * ends at cap only for the same text.
 */
typedef struct ota_writer {
    char *buf;
    size_t cap;
    size_t len;
    uint8_t cmp;
    uint8_t escape; /* values are escaped as JSON strings */
} ota_writer_t;

OTA_OUT_OF_LINE static void ota_emit(ota_writer_t *w, unsigned ch)
{
    size_t n = w->len;
    if (w->cmp) {
        if (n >= w->cap || (unsigned char)w->buf[n] != ch) {
            n = w->cap;
        }
    } else if (n + 1u < w->cap) {
        w->buf[n] = (char)ch;
    }
    w->len = n + 1u;
}

/* Writes s (JSON-escaped if w->escape). */
OTA_OUT_OF_LINE static void ota_value(ota_writer_t *w, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned ch = (unsigned char)*s;
        if (w->escape && (ch == '"' || ch == '\\' || ch < 0x20u)) {
            ota_emit(w, '\\');
            if (ch < 0x20u) {
                ota_emit(w, 'u');
                ota_emit(w, '0');
                ota_emit(w, '0');
                ota_emit(w, ota_hex(ch >> 4));
                ch = ota_hex(ch & 0xfu);
            }
        }
        ota_emit(w, ch);
    }
}

/* Writes template t, each '\1' in it standing for the next of args, '\2' ..
 * '\7' for pieces of ota_texts (only in topics, which are not escaped). */
OTA_OUT_OF_LINE static void ota_text(ota_writer_t *w, const char *t, const char *const *args)
{
    for (; *t != '\0'; t++) {
        unsigned ch = (unsigned char)*t;
        if (ch < 8u) {
            ota_value(w, ch == 1u ? *args++ : ota_nth(ch - 2u));
        } else if (ch == 8u) {
            /* The rest up to '\t' only if the next of args is there. */
            if (*args == NULL) {
                t = strchr(t, '\t');
            }
        } else if (ch != 9u) {
            ota_emit(w, ch);
        }
    }
}

/* Writes "$aws/things/<thing>/" and the topic of kind, id in it. */
OTA_OUT_OF_LINE static void ota_topic_text(ota_writer_t *w, const ota_jobs_t *j, unsigned kind,
                                           const char *id)
{
    ota_text(w, "$aws/things/\1/", &j->thing_name);
    ota_text(w, ota_nth(OTA_PIECES + kind), &id);
}

ota_err_t ota_jobs_topic(ota_jobs_t *j, unsigned kind, const char *id)
{
    ota_writer_t w = {j->topic, sizeof j->topic, 0, 0, 0};
    ota_topic_text(&w, j, kind, id);
    if (w.len >= sizeof j->topic) {
        return OTA_ERR_OUT_OF_MEMORY;
    }
    j->topic[w.len] = '\0';
    return OTA_OK;
}

unsigned ota_jobs_match(const ota_jobs_t *j, const char *topic, size_t topic_len, const char *id,
                        unsigned kinds)
{
    ota_writer_t w = {(char *)(uintptr_t)topic, topic_len, 0, 1, 0};
    unsigned kind = 0;
    for (; kinds != 0u; kinds >>= 1, kind++) {
        if ((kinds & 1u) == 0u) {
            continue;
        }
        w.len = 0;
        ota_topic_text(&w, j, kind, id);
        if (w.len == topic_len) {
            return kind + 1u;
        }
    }
    return 0;
}

ota_err_t ota_jobs_send(ota_jobs_t *j, unsigned kind, const char *id, const uint8_t *payload,
                        size_t len, uint8_t qos)
{
    ota_err_t err = ota_jobs_topic(j, kind, id);
    if (err == OTA_OK && j->mqtt.publish(j->mqtt.ctx, j->topic, payload, len, qos) != OTA_OK) {
        err = OTA_ERR_MQTT;
    }
    return err;
}

ota_err_t ota_jobs_follow(ota_jobs_t *j, unsigned kinds, const char *id, int on)
{
    unsigned kind = 0;
    for (; kinds != 0u; kinds >>= 1, kind++) {
        ota_err_t err;
        if ((kinds & 1u) == 0u) {
            continue;
        }
        err = ota_jobs_topic(j, kind, id);
        if (err != OTA_OK) {
            return err;
        }
        if (!on) {
            (void)j->mqtt.unsubscribe(j->mqtt.ctx, j->topic);
        } else if (j->mqtt.subscribe(j->mqtt.ctx, j->topic,
                                     kind < OTA_JOBS_STREAM_DATA ? 1u : 0u) != OTA_OK) {
            return OTA_ERR_MQTT;
        }
    }
    return OTA_OK;
}

ota_err_t ota_jobs_ask_next(ota_jobs_t *j)
{
    static const char payload[] = "{\"clientToken\":\"otter\"}";
    return ota_jobs_send(j, OTA_JOBS_NEXT_GET, NULL, (const uint8_t *)payload, sizeof payload - 1u,
                         1) != OTA_OK
               ? OTA_ERR_MQTT
               : OTA_OK;
}

ota_err_t ota_jobs_report(ota_jobs_t *j, const char *job_id, const char *status, const char *k0,
                          const char *v0, const char *k1, const char *v1, uint8_t qos)
{
    const char *args[5];
    ota_writer_t w = {(char *)j->message, sizeof j->message, 0, 0, 1};

    args[0] = status;
    args[1] = k0;
    args[2] = v0;
    args[3] = k1;
    args[4] = v1;
    ota_text(&w, "{\"status\":\"\1\",\"statusDetails\":{\"\1\":\"\1\b\",\"\1\":\"\1\t\"}}", args);
    j->report_len = 0;
    if (w.len >= sizeof j->message) {
        return OTA_ERR_OUT_OF_MEMORY;
    }
    j->report_len = (uint16_t)w.len;
    /* Not through ota_jobs_report_again: one frame less under this one's. */
    return ota_jobs_send(j, OTA_JOBS_UPDATE, job_id, j->message, w.len, qos);
}

ota_err_t ota_jobs_report_again(ota_jobs_t *j, const char *job_id, uint8_t qos)
{
    return j->report_len != 0u
               ? ota_jobs_send(j, OTA_JOBS_UPDATE, job_id, j->message, j->report_len, qos)
               : OTA_ERR_NOT_FOUND;
}

ota_jobs_topic_t ota_jobs_classify(const ota_jobs_t *j, const char *job_id, const char *topic,
                                   size_t topic_len)
{
    /* 0 (none), then notify-next and $next/get/accepted (both name the next
     * job), $next/get/rejected, update/rejected: the ota_jobs_topic_t in order. */
    unsigned m = ota_jobs_match(j, topic, topic_len, job_id, job_id != NULL ? 15u : 7u);
    return (ota_jobs_topic_t)(m - (m > 1u));
}

int ota_jobs_refusal_is(const uint8_t *payload, size_t len, const char *code)
{
    size_t n = strlen(code);
    for (size_t p = 0; p + n + 2u <= len; p++) {
        if (payload[p] == '"' && memcmp(payload + p + 1u, code, n) == 0 &&
            payload[p + 1u + n] == '"') {
            return 1;
        }
    }
    return 0;
}

char *ota_jobs_hex32(char *out, uint32_t v)
{
    out[0] = '0';
    out[1] = 'x';
    for (int i = 9; i > 1; i--, v >>= 4) {
        out[i] = (char)ota_hex(v & 0xfu);
    }
    out[10] = '\0';
    return out + 10;
}

char *ota_jobs_dec(char *out, uint32_t v, char sep)
{
    char *end = out;
    for (uint32_t t = v; t >= 10u; t /= 10u) {
        end++;
    }
    out = end;
    do {
        *out-- = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0u);
    *++end = sep;
    if (sep != '\0') {
        *++end = '\0';
    }
    return end;
}

void ota_jobs_version_str(char *out, uint32_t version)
{
    *out++ = 'v';
    out = ota_jobs_dec(out, version >> 24, '.');
    out = ota_jobs_dec(out, (version >> 16) & 0xffu, '.');
    (void)ota_jobs_dec(out, version & 0xffffu, '\0');
}
