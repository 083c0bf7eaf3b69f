/*
 * otter: topics and status updates of the agent.
 *
 * Status payloads follow the FreeRTOS agent byte for byte
 * ({"status":"IN_PROGRESS","statusDetails":{"receive":"1/3"}}), because
 * devices and AWS tooling read them back; the agent only adds a "detail" key.
 */
#include <string.h>

#include "ota_agent_internal.h"

static const char ota_hex_digits[] = "0123456789abcdef";

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

ota_err_t ota_agent_topic(ota_agent_t *agent, const char *a, const char *b, const char *c)
{
    const char *parts[6];
    size_t len = 0;
    parts[0] = "$aws/things/";
    parts[1] = agent->cfg.thing_name;
    parts[2] = "/";
    parts[3] = a;
    parts[4] = b;
    parts[5] = c;
    for (size_t i = 0; i < 6u; i++) {
        len = ota_put(agent->topic, sizeof agent->topic, len, parts[i], 0);
    }
    if (len >= sizeof agent->topic) {
        return OTA_ERR_OUT_OF_MEMORY;
    }
    agent->topic[len] = '\0';
    return OTA_OK;
}

int ota_agent_topic_is(ota_agent_t *agent, const char *topic, size_t topic_len, const char *a,
                       const char *b, const char *c)
{
    return ota_agent_topic(agent, a, b, c) == OTA_OK && strlen(agent->topic) == topic_len &&
           memcmp(agent->topic, topic, topic_len) == 0;
}

ota_err_t ota_agent_publish_status(ota_agent_t *agent, const char *status, const char *k0,
                                   const char *v0, const char *k1, const char *v1, uint8_t qos)
{
    /* Pieces in order; odd ones are values, escaped as JSON strings. */
    const char *parts[10];
    char *buf = (char *)agent->message;
    size_t len = 0;
    size_t count = k1 != NULL ? 10u : 6u;
    ota_err_t err;

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
        len = ota_put(buf, sizeof agent->message, len, parts[i], (int)(i & 1u));
    }
    len = ota_put(buf, sizeof agent->message, len, "\"}}", 0);
    if (len >= sizeof agent->message) {
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

char *ota_agent_hex32(char *out, uint32_t v)
{
    out[0] = '0';
    out[1] = 'x';
    for (int i = 0; i < 8; i++) {
        out[2 + i] = ota_hex_digits[(v >> (28 - 4 * i)) & 0xfu];
    }
    out[10] = '\0';
    return out + 10;
}

char *ota_agent_dec(char *out, uint32_t v, char sep)
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

void ota_agent_version_str(char *out, uint32_t version)
{
    *out++ = 'v';
    out = ota_agent_dec(out, version >> 24, '.');
    out = ota_agent_dec(out, (version >> 16) & 0xffu, '.');
    (void)ota_agent_dec(out, version & 0xffffu, '\0');
}
