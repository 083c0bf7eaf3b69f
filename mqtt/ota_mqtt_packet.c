/* otter: the MQTT 3.1.1 packet codec of the device client (see ota_mqtt_packet.h). */
#include "otter/ota_mqtt_packet.h"

#include <string.h>

#define PHASE_TYPE 0u
#define PHASE_LENGTH 1u
#define PHASE_BODY 2u
#define PHASE_DONE 3u

void ota_mqtt_reader_init(ota_mqtt_reader_t *r, uint8_t *buf, uint32_t cap)
{
    memset(r, 0, sizeof *r);
    r->buf = buf;
    r->cap = buf != NULL ? cap : 0u;
}

void ota_mqtt_reader_next(ota_mqtt_reader_t *r)
{
    r->phase = PHASE_TYPE;
    r->len_bytes = 0;
    r->first = 0;
    r->remaining = 0;
    r->received = 0;
}

int ota_mqtt_reader_feed(ota_mqtt_reader_t *r, const uint8_t *in, size_t len, size_t *used)
{
    size_t i = 0;
    int result = 0;
    while (i < len && result == 0) {
        uint8_t b = in[i];
        if (r->phase == PHASE_TYPE) {
            uint8_t type = (uint8_t)(b >> 4);
            if (type == 0u || type == 15u) {
                result = OTA_ERR_BAD_MESSAGE;
                break;
            }
            r->first = b;
            r->phase = PHASE_LENGTH;
            i++;
        } else if (r->phase == PHASE_LENGTH) {
            if (r->len_bytes == 4u) {
                result = OTA_ERR_BAD_MESSAGE;
                break;
            }
            r->remaining |= (uint32_t)(b & 0x7fu) << (7u * r->len_bytes);
            r->len_bytes++;
            i++;
            if ((b & 0x80u) == 0u) {
                r->phase = r->remaining == 0u ? PHASE_DONE : PHASE_BODY;
                result = r->remaining == 0u ? 1 : 0;
            }
        } else if (r->phase == PHASE_BODY) {
            uint32_t want = r->remaining - r->received;
            size_t n = len - i < want ? len - i : want;
            if (r->received < r->cap) {
                uint32_t room = r->cap - r->received;
                size_t copy = n < room ? n : room;
                memcpy(r->buf + r->received, in + i, copy);
            }
            r->received += (uint32_t)n;
            i += n;
            if (r->received == r->remaining) {
                r->phase = PHASE_DONE;
                result = 1;
            }
        } else {
            result = 1; /* a complete packet waits to be taken */
        }
    }
    if (r->phase == PHASE_DONE) {
        result = result < 0 ? result : 1;
    }
    *used = i;
    return result;
}

uint8_t ota_mqtt_reader_type(const ota_mqtt_reader_t *r)
{
    return (uint8_t)(r->first >> 4);
}

uint8_t ota_mqtt_reader_flags(const ota_mqtt_reader_t *r)
{
    return (uint8_t)(r->first & 0x0fu);
}

uint32_t ota_mqtt_reader_length(const ota_mqtt_reader_t *r)
{
    return r->remaining;
}

uint32_t ota_mqtt_reader_kept(const ota_mqtt_reader_t *r)
{
    return r->remaining < r->cap ? r->remaining : r->cap;
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint8_t *put16(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

/* 1 if a topic name for PUBLISH is usable: non-empty, no wildcards, no NUL. */
static int topic_name_ok(const char *t, size_t len)
{
    if (len == 0u || len > 65535u) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (t[i] == '+' || t[i] == '#' || t[i] == '\0') {
            return 0;
        }
    }
    return 1;
}

ota_err_t ota_mqtt_decode_publish(uint8_t flags, const uint8_t *body, uint32_t kept,
                                  uint32_t length, ota_mqtt_publish_t *out)
{
    if ((body == NULL && kept > 0u) || out == NULL || kept > length) {
        return OTA_ERR_INVALID_ARG;
    }
    memset(out, 0, sizeof *out);
    uint8_t qos = (uint8_t)((flags >> 1) & 3u);
    uint8_t dup = (uint8_t)((flags >> 3) & 1u);
    if (qos == 3u || (qos == 0u && dup)) {
        return OTA_ERR_BAD_MESSAGE;
    }
    uint32_t head = 2u + (qos > 0u ? 2u : 0u);
    if (kept < 2u) {
        return OTA_ERR_BAD_MESSAGE;
    }
    uint32_t tlen = get16(body);
    if (tlen > kept - 2u || head + tlen > length || head + tlen > kept) {
        return OTA_ERR_BAD_MESSAGE;
    }
    const char *topic = (const char *)(body + 2);
    if (!topic_name_ok(topic, tlen)) {
        return OTA_ERR_BAD_MESSAGE;
    }
    out->topic = topic;
    out->topic_len = tlen;
    out->qos = qos;
    out->dup = dup;
    out->retain = (uint8_t)(flags & 1u);
    if (qos > 0u) {
        out->packet_id = get16(body + 2 + tlen);
        if (out->packet_id == 0u) {
            return OTA_ERR_BAD_MESSAGE;
        }
    }
    out->payload = body + head + tlen;
    out->payload_len = length - head - tlen;
    return OTA_OK;
}

ota_err_t ota_mqtt_decode_connack(uint8_t flags, const uint8_t *body, uint32_t len,
                                  uint8_t *session, uint8_t *code)
{
    if (body == NULL || session == NULL || code == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    if (flags != 0u || len != 2u || (body[0] & 0xfeu) != 0u || body[1] > 5u ||
        (body[1] != 0u && body[0] != 0u)) {
        return OTA_ERR_BAD_MESSAGE;
    }
    *session = body[0];
    *code = body[1];
    return OTA_OK;
}

ota_err_t ota_mqtt_decode_ack(uint8_t flags, const uint8_t *body, uint32_t len, uint16_t *id)
{
    if (body == NULL || id == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    if (flags != 0u || len != 2u || get16(body) == 0u) {
        return OTA_ERR_BAD_MESSAGE;
    }
    *id = get16(body);
    return OTA_OK;
}

ota_err_t ota_mqtt_decode_suback(uint8_t flags, const uint8_t *body, uint32_t len, uint16_t *id,
                                 uint8_t *code)
{
    if (body == NULL || id == NULL || code == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    if (flags != 0u || len != 3u || get16(body) == 0u || (body[2] > 2u && body[2] != 0x80u)) {
        return OTA_ERR_BAD_MESSAGE;
    }
    *id = get16(body);
    *code = body[2];
    return OTA_OK;
}

/* Writes the fixed header; returns its length, or 0 if the length is too large. */
static size_t fixed_header(uint8_t *p, uint8_t first, size_t remaining)
{
    size_t n = 0;
    if (remaining > OTA_MQTT_REMAINING_MAX) {
        return 0;
    }
    p[n++] = first;
    do {
        uint8_t b = (uint8_t)(remaining & 0x7fu);
        remaining >>= 7;
        p[n++] = (uint8_t)(b | (remaining > 0u ? 0x80u : 0u));
    } while (remaining > 0u);
    return n;
}

static size_t fixed_header_len(size_t remaining)
{
    return remaining < 128u ? 2u : remaining < 16384u ? 3u : remaining < 2097152u ? 4u : 5u;
}

static uint8_t *put_str(uint8_t *p, const char *s, size_t len)
{
    p = put16(p, len);
    memcpy(p, s, len);
    return p + len;
}

/* A string field of CONNECT: NULL, or at most 65535 bytes. */
static int str_ok(const char *s)
{
    return s == NULL || strlen(s) <= 65535u;
}

int32_t ota_mqtt_encode_connect(uint8_t *buf, size_t cap, const ota_mqtt_connect_t *c)
{
    static const uint8_t proto[] = {0, 4, 'M', 'Q', 'T', 'T', 4};
    if (buf == NULL || c == NULL || c->client_id == NULL || c->client_id[0] == '\0' ||
        !str_ok(c->client_id) || !str_ok(c->username) || !str_ok(c->password) ||
        (c->password != NULL && c->username == NULL)) {
        return OTA_ERR_INVALID_ARG;
    }
    size_t id_len = strlen(c->client_id);
    size_t user_len = c->username != NULL ? strlen(c->username) : 0u;
    size_t pass_len = c->password != NULL ? strlen(c->password) : 0u;
    size_t body = sizeof proto + 1u + 2u + 2u + id_len;
    body += c->username != NULL ? 2u + user_len : 0u;
    body += c->password != NULL ? 2u + pass_len : 0u;
    if (fixed_header_len(body) + body > cap) {
        return OTA_ERR_OUT_OF_MEMORY;
    }
    uint8_t *p = buf + fixed_header(buf, (uint8_t)(OTA_MQTT_CONNECT << 4), body);
    memcpy(p, proto, sizeof proto);
    p += sizeof proto;
    *p++ = (uint8_t)((c->username != NULL ? 0x80u : 0u) | (c->password != NULL ? 0x40u : 0u) |
                     (c->clean_session ? 0x02u : 0u));
    p = put16(p, c->keep_alive_s);
    p = put_str(p, c->client_id, id_len);
    if (c->username != NULL) {
        p = put_str(p, c->username, user_len);
    }
    if (c->password != NULL) {
        p = put_str(p, c->password, pass_len);
    }
    return (int32_t)(p - buf);
}

int32_t ota_mqtt_encode_publish_header(uint8_t *buf, size_t cap, const char *topic,
                                       size_t payload_len, uint8_t qos, uint16_t id)
{
    if (buf == NULL || topic == NULL || qos > 1u || (qos == 1u && id == 0u)) {
        return OTA_ERR_INVALID_ARG;
    }
    size_t tlen = strlen(topic);
    if (!topic_name_ok(topic, tlen)) {
        return OTA_ERR_INVALID_ARG;
    }
    size_t var = 2u + tlen + (qos ? 2u : 0u);
    if (payload_len > OTA_MQTT_REMAINING_MAX - var) {
        return OTA_ERR_INVALID_ARG;
    }
    if (fixed_header_len(var + payload_len) + var > cap) {
        return OTA_ERR_OUT_OF_MEMORY;
    }
    uint8_t *p =
        buf + fixed_header(buf, (uint8_t)((OTA_MQTT_PUBLISH << 4) | (qos << 1)), var + payload_len);
    p = put_str(p, topic, tlen);
    if (qos) {
        p = put16(p, id);
    }
    return (int32_t)(p - buf);
}

/* SUBSCRIBE (with its QoS byte) and UNSUBSCRIBE of one filter. */
static int32_t encode_filter(uint8_t *buf, size_t cap, uint8_t first, uint16_t id,
                             const char *filter, int with_qos, uint8_t qos)
{
    if (buf == NULL || filter == NULL || id == 0u || qos > 1u) {
        return OTA_ERR_INVALID_ARG;
    }
    size_t flen = strlen(filter);
    if (flen == 0u || flen > 65535u) {
        return OTA_ERR_INVALID_ARG;
    }
    size_t body = 2u + 2u + flen + (with_qos ? 1u : 0u);
    if (fixed_header_len(body) + body > cap) {
        return OTA_ERR_OUT_OF_MEMORY;
    }
    uint8_t *p = buf + fixed_header(buf, first, body);
    p = put16(p, id);
    p = put_str(p, filter, flen);
    if (with_qos) {
        *p++ = qos;
    }
    return (int32_t)(p - buf);
}

int32_t ota_mqtt_encode_subscribe(uint8_t *buf, size_t cap, uint16_t id, const char *filter,
                                  uint8_t qos)
{
    return encode_filter(buf, cap, (uint8_t)((OTA_MQTT_SUBSCRIBE << 4) | 2u), id, filter, 1, qos);
}

int32_t ota_mqtt_encode_unsubscribe(uint8_t *buf, size_t cap, uint16_t id, const char *filter)
{
    return encode_filter(buf, cap, (uint8_t)((OTA_MQTT_UNSUBSCRIBE << 4) | 2u), id, filter, 0, 0);
}

int32_t ota_mqtt_encode_puback(uint8_t buf[OTA_MQTT_SMALL_PACKET], uint16_t id)
{
    buf[0] = (uint8_t)(OTA_MQTT_PUBACK << 4);
    buf[1] = 2;
    put16(buf + 2, id);
    return 4;
}

int32_t ota_mqtt_encode_empty(uint8_t buf[OTA_MQTT_SMALL_PACKET], uint8_t type)
{
    if (type != OTA_MQTT_PINGREQ && type != OTA_MQTT_DISCONNECT) {
        return OTA_ERR_INVALID_ARG;
    }
    buf[0] = (uint8_t)(type << 4);
    buf[1] = 0;
    return 2;
}
