/*
 * otter: topics and status updates of the agent.
 *
 * Status payloads follow the FreeRTOS agent byte for byte
 * ({"status":"IN_PROGRESS","statusDetails":{"receive":"1/3"}}), because
 * devices and AWS tooling read them back; the agent only adds a "detail" key.
 */
#include <string.h>

#include "ota_agent_internal.h"

static const char ota_topic_prefix[] = "$aws/things/";

/* Appends s to the buffer at *len; clears *ok when it does not fit. */
static void ota_append(char *buf, size_t cap, size_t *len, const char *s, int *ok)
{
    size_t n = strlen(s);
    if (!*ok || n >= cap - *len) {
        *ok = 0;
        return;
    }
    memcpy(buf + *len, s, n + 1u);
    *len += n;
}

ota_err_t ota_agent_topic(ota_agent_t *agent, const char *a, const char *b, const char *c)
{
    size_t len = 0;
    int ok = 1;
    agent->topic[0] = '\0';
    ota_append(agent->topic, sizeof agent->topic, &len, ota_topic_prefix, &ok);
    ota_append(agent->topic, sizeof agent->topic, &len, agent->cfg.thing_name, &ok);
    ota_append(agent->topic, sizeof agent->topic, &len, "/", &ok);
    ota_append(agent->topic, sizeof agent->topic, &len, a, &ok);
    if (b != NULL) {
        ota_append(agent->topic, sizeof agent->topic, &len, b, &ok);
    }
    if (c != NULL) {
        ota_append(agent->topic, sizeof agent->topic, &len, c, &ok);
    }
    return ok ? OTA_OK : OTA_ERR_OUT_OF_MEMORY;
}

const char *ota_agent_topic_rest(const ota_agent_t *agent, const char *topic, size_t topic_len,
                                 size_t *rest_len)
{
    size_t prefix = sizeof ota_topic_prefix - 1u;
    size_t thing = strlen(agent->cfg.thing_name);
    if (topic_len <= prefix + thing + 1u || memcmp(topic, ota_topic_prefix, prefix) != 0 ||
        memcmp(topic + prefix, agent->cfg.thing_name, thing) != 0 || topic[prefix + thing] != '/') {
        return NULL;
    }
    *rest_len = topic_len - prefix - thing - 1u;
    return topic + prefix + thing + 1u;
}

/* Appends s as a JSON string body (without quotes), escaping what JSON needs. */
static void ota_append_escaped(char *buf, size_t cap, size_t *len, const char *s, int *ok)
{
    static const char hex[] = "0123456789abcdef";
    for (; *ok && *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        char esc[7];
        if (ch == '"' || ch == '\\') {
            esc[0] = '\\';
            esc[1] = (char)ch;
            esc[2] = '\0';
        } else if (ch < 0x20u) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[ch >> 4];
            esc[5] = hex[ch & 0xfu];
            esc[6] = '\0';
        } else {
            esc[0] = (char)ch;
            esc[1] = '\0';
        }
        ota_append(buf, cap, len, esc, ok);
    }
}

ota_err_t ota_agent_publish_status(ota_agent_t *agent, const char *status,
                                   const ota_status_kv_t *kv, size_t kv_count, uint8_t qos)
{
    char *buf = (char *)agent->message;
    size_t cap = sizeof agent->message;
    size_t len = 0;
    int ok = 1;
    ota_err_t err;

    buf[0] = '\0';
    ota_append(buf, cap, &len, "{\"status\":\"", &ok);
    ota_append(buf, cap, &len, status, &ok);
    ota_append(buf, cap, &len, "\",\"statusDetails\":{", &ok);
    for (size_t i = 0; i < kv_count; i++) {
        ota_append(buf, cap, &len, i == 0u ? "\"" : ",\"", &ok);
        ota_append(buf, cap, &len, kv[i].key, &ok);
        ota_append(buf, cap, &len, "\":\"", &ok);
        ota_append_escaped(buf, cap, &len, kv[i].value, &ok);
        ota_append(buf, cap, &len, "\"", &ok);
    }
    ota_append(buf, cap, &len, "}}", &ok);
    if (!ok) {
        return OTA_ERR_OUT_OF_MEMORY;
    }
    err = ota_agent_topic(agent, "jobs/", agent->job.job_id, "/update");
    if (err != OTA_OK) {
        return err;
    }
    return agent->cfg.mqtt.publish(agent->cfg.mqtt.ctx, agent->topic, agent->message, len, qos) ==
                   OTA_OK
               ? OTA_OK
               : OTA_ERR_MQTT;
}

void ota_agent_hex32(char out[11], uint32_t v)
{
    static const char hex[] = "0123456789abcdef";
    out[0] = '0';
    out[1] = 'x';
    for (int i = 0; i < 8; i++) {
        out[2 + i] = hex[(v >> (28 - 4 * i)) & 0xfu];
    }
    out[10] = '\0';
}

/* Writes v in decimal at out; returns the digits written. */
static size_t ota_put_dec(char *out, uint32_t v)
{
    char tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0u);
    for (size_t i = 0; i < n; i++) {
        out[i] = tmp[n - 1u - i];
    }
    return n;
}

void ota_agent_version_str(char out[16], uint32_t version)
{
    size_t n = 0;
    out[n++] = 'v';
    n += ota_put_dec(out + n, version >> 24);
    out[n++] = '.';
    n += ota_put_dec(out + n, (version >> 16) & 0xffu);
    out[n++] = '.';
    n += ota_put_dec(out + n, version & 0xffffu);
    out[n] = '\0';
}

void ota_agent_fraction(char out[24], uint32_t n, uint32_t total)
{
    size_t len = ota_put_dec(out, n);
    out[len++] = '/';
    len += ota_put_dec(out + len, total);
    out[len] = '\0';
}
