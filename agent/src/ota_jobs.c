/*
 * otter: the agent's side of the AWS IoT Jobs API (see ota_jobs.h).
 */
#include "ota_jobs.h"

#include <string.h>

static const char ota_hex_digits[] = "0123456789abcdef";

/* The jobs topics the agent listens to: the first two name the next job (OTA_JOBS_TOPIC_NEXT),
 * the third is OTA_JOBS_TOPIC_NEXT_REJECTED. */
static const char *const ota_jobs_topics[] = {
    "jobs/notify-next",
    "jobs/$next/get/accepted",
    "jobs/$next/get/rejected",
};

void ota_jobs_init(ota_jobs_t *j, const char *thing_name, const ota_mqtt_t *mqtt)
{
    j->thing_name = thing_name;
    j->mqtt = *mqtt;
}

/*
 * Appends s at buf[len] (cap bytes in all), JSON-escaped with escape, and
 * returns the new length. A length above cap - 1 means it did not fit; it
 * keeps growing, so one check at the end does.
 */
static size_t ota_put(char *buf, size_t cap, size_t len, const char *s, int escape)
{
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        char esc[6];
        size_t n = 1;
        esc[0] = (char)ch;
        if (escape && (ch == '"' || ch == '\\')) {
            esc[0] = '\\';
            esc[1] = (char)ch;
            n = 2;
        } else if (escape && ch < 0x20u) {
            memcpy(esc, "\\u00", 4);
            esc[4] = ota_hex_digits[ch >> 4];
            esc[5] = ota_hex_digits[ch & 0xfu];
            n = 6;
        }
        for (size_t i = 0; i < n; i++, len++) {
            if (len + 1u < cap) {
                buf[len] = esc[i];
            }
        }
    }
    return len;
}

/* The six pieces of "$aws/things/<thing>/" + a + b + c. */
static void ota_topic_parts(const ota_jobs_t *j, const char **parts, const char *a, const char *b,
                            const char *c)
{
    parts[0] = "$aws/things/";
    parts[1] = j->thing_name;
    parts[2] = "/";
    parts[3] = a;
    parts[4] = b;
    parts[5] = c;
}

ota_err_t ota_jobs_topic(ota_jobs_t *j, const char *a, const char *b, const char *c)
{
    const char *parts[6];
    size_t len = 0;
    ota_topic_parts(j, parts, a, b, c);
    for (size_t i = 0; i < 6u; i++) {
        len = ota_put(j->topic, sizeof j->topic, len, parts[i], 0);
    }
    if (len >= sizeof j->topic) {
        return OTA_ERR_OUT_OF_MEMORY;
    }
    j->topic[len] = '\0';
    return OTA_OK;
}

int ota_jobs_topic_is(const ota_jobs_t *j, const char *topic, size_t topic_len, const char *a,
                      const char *b, const char *c)
{
    const char *parts[6];
    size_t at = 0;
    ota_topic_parts(j, parts, a, b, c);
    for (size_t i = 0; i < 6u; i++) {
        size_t n = strlen(parts[i]);
        if (topic_len - at < n || memcmp(topic + at, parts[i], n) != 0) {
            return 0;
        }
        at += n;
    }
    return at == topic_len;
}

ota_err_t ota_jobs_publish(ota_jobs_t *j, size_t len, uint8_t qos)
{
    return j->mqtt.publish(j->mqtt.ctx, j->topic, j->message, len, qos) == OTA_OK ? OTA_OK
                                                                                  : OTA_ERR_MQTT;
}

ota_err_t ota_jobs_follow(ota_jobs_t *j, const char *a, const char *b, const char *c, int on,
                          uint8_t qos)
{
    ota_err_t err = ota_jobs_topic(j, a, b, c);
    if (err != OTA_OK) {
        return err;
    }
    if (!on) {
        (void)j->mqtt.unsubscribe(j->mqtt.ctx, j->topic);
        return OTA_OK;
    }
    return j->mqtt.subscribe(j->mqtt.ctx, j->topic, qos) == OTA_OK ? OTA_OK : OTA_ERR_MQTT;
}

ota_err_t ota_jobs_subscribe(ota_jobs_t *j, const char *job_id, int on)
{
    if (job_id != NULL) {
        return ota_jobs_follow(j, "jobs/", job_id, "/update/rejected", on, 1);
    }
    for (size_t i = 0; i < sizeof ota_jobs_topics / sizeof ota_jobs_topics[0]; i++) {
        ota_err_t err = ota_jobs_follow(j, ota_jobs_topics[i], "", "", on, 1);
        if (err != OTA_OK) {
            return err;
        }
    }
    return OTA_OK;
}

ota_err_t ota_jobs_ask_next(ota_jobs_t *j)
{
    static const char payload[] = "{\"clientToken\":\"otter\"}";
    if (ota_jobs_topic(j, "jobs/$next/get", "", "") != OTA_OK ||
        j->mqtt.publish(j->mqtt.ctx, j->topic, (const uint8_t *)payload, sizeof payload - 1u, 1) !=
            OTA_OK) {
        return OTA_ERR_MQTT;
    }
    return OTA_OK;
}

ota_err_t ota_jobs_report(ota_jobs_t *j, const char *job_id, const char *status, const char *k0,
                          const char *v0, const char *k1, const char *v1, uint8_t qos)
{
    /* Pieces in order; odd ones are values, escaped as JSON strings. */
    const char *parts[10];
    char *buf = (char *)j->message;
    size_t len = 0;
    size_t count = k1 != NULL ? 10u : 6u;

    parts[0] = "{\"status\":\"";
    parts[1] = status;
    parts[2] = "\",\"statusDetails\":{\"";
    parts[3] = k0;
    parts[4] = "\":\"";
    parts[5] = v0;
    parts[6] = "\",\"";
    parts[7] = k1;
    parts[8] = "\":\"";
    parts[9] = v1;
    for (size_t i = 0; i < count; i++) {
        len = ota_put(buf, sizeof j->message, len, parts[i], (int)(i & 1u));
    }
    len = ota_put(buf, sizeof j->message, len, "\"}}", 0);
    j->report_len = 0;
    if (len >= sizeof j->message) {
        return OTA_ERR_OUT_OF_MEMORY;
    }
    j->report_len = (uint16_t)len;
    return ota_jobs_report_again(j, job_id, qos);
}

ota_err_t ota_jobs_report_again(ota_jobs_t *j, const char *job_id, uint8_t qos)
{
    ota_err_t err =
        j->report_len != 0u ? ota_jobs_topic(j, "jobs/", job_id, "/update") : OTA_ERR_NOT_FOUND;
    return err != OTA_OK ? err : ota_jobs_publish(j, j->report_len, qos);
}

ota_jobs_topic_t ota_jobs_classify(const ota_jobs_t *j, const char *job_id, const char *topic,
                                   size_t topic_len)
{
    for (size_t i = 0; i < sizeof ota_jobs_topics / sizeof ota_jobs_topics[0]; i++) {
        if (ota_jobs_topic_is(j, topic, topic_len, ota_jobs_topics[i], "", "")) {
            return (ota_jobs_topic_t)(OTA_JOBS_TOPIC_NEXT + (i >> 1));
        }
    }
    if (job_id != NULL &&
        ota_jobs_topic_is(j, topic, topic_len, "jobs/", job_id, "/update/rejected")) {
        return OTA_JOBS_TOPIC_UPDATE_REJECTED;
    }
    return OTA_JOBS_TOPIC_OTHER;
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
    for (int i = 0; i < 8; i++) {
        out[2 + i] = ota_hex_digits[(v >> (28 - 4 * i)) & 0xfu];
    }
    out[10] = '\0';
    return out + 10;
}

char *ota_jobs_dec(char *out, uint32_t v, char sep)
{
    char tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0u);
    while (n != 0u) {
        *out++ = tmp[--n];
    }
    *out = sep;
    if (sep != '\0') {
        *++out = '\0';
    }
    return out;
}

void ota_jobs_version_str(char *out, uint32_t version)
{
    *out++ = 'v';
    out = ota_jobs_dec(out, version >> 24, '.');
    out = ota_jobs_dec(out, (version >> 16) & 0xffu, '.');
    (void)ota_jobs_dec(out, version & 0xffffu, '\0');
}
