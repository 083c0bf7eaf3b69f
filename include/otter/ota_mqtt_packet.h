/*
 * otter: the MQTT 3.1.1 packet codec of the device client (ota_mqtt_client.h).
 *
 * Only what a device needs: CONNECT, PUBLISH (both ways), PUBACK (both ways),
 * SUBSCRIBE and UNSUBSCRIBE with one topic each, PINGREQ and DISCONNECT are
 * encoded; CONNACK, PUBLISH, PUBACK, SUBACK, UNSUBACK and PINGRESP are
 * decoded. No heap: encoders write into a caller's buffer, decoders point
 * into the caller's bytes. Every decoder checks the packet against the
 * specification (fixed-header flags, lengths, packet identifiers, topic
 * names) and answers anything else with OTA_ERR_BAD_MESSAGE.
 *
 * A PUBLISH is encoded in two parts, its header (fixed header, topic, packet
 * identifier) and its payload, so that a large payload is sent from where it
 * lies instead of being copied into the client's transmit buffer.
 */
#ifndef OTTER_OTA_MQTT_PACKET_H
#define OTTER_OTA_MQTT_PACKET_H

#include <stddef.h>
#include <stdint.h>

#include "otter/ota_err.h"

/** Packet types (the high nibble of the first byte). */
enum {
    OTA_MQTT_CONNECT = 1,
    OTA_MQTT_CONNACK = 2,
    OTA_MQTT_PUBLISH = 3,
    OTA_MQTT_PUBACK = 4,
    OTA_MQTT_SUBSCRIBE = 8,
    OTA_MQTT_SUBACK = 9,
    OTA_MQTT_UNSUBSCRIBE = 10,
    OTA_MQTT_UNSUBACK = 11,
    OTA_MQTT_PINGREQ = 12,
    OTA_MQTT_PINGRESP = 13,
    OTA_MQTT_DISCONNECT = 14,
};

/** Largest remaining length MQTT can express (four length bytes). */
#define OTA_MQTT_REMAINING_MAX 268435455u

/** Largest fixed header: the type byte and four length bytes. */
#define OTA_MQTT_FIXED_HEADER_MAX 5u

/** Bytes of a PUBLISH header besides its topic (fixed header, topic length, id). */
#define OTA_MQTT_PUBLISH_OVERHEAD (OTA_MQTT_FIXED_HEADER_MAX + 2u + 2u)

/** Bytes of a PUBACK, PINGREQ or DISCONNECT at most. */
#define OTA_MQTT_SMALL_PACKET 4u

/**
 * Frames packets out of a byte stream, one byte at a time or in chunks: the
 * fixed header is parsed, the body is kept up to the buffer's capacity and
 * the rest of a larger body is counted but dropped (the packet is then
 * "truncated"). Fields are private except where noted.
 */
typedef struct ota_mqtt_reader {
    uint8_t *buf;       /**< body buffer (caller's) */
    uint32_t cap;       /**< its size */
    uint8_t phase;      /**< 0: type byte, 1: length bytes, 2: body, 3: complete */
    uint8_t len_bytes;  /**< length bytes read so far */
    uint8_t first;      /**< the packet's first byte (type << 4 | flags) */
    uint32_t remaining; /**< body length (valid from phase 2) */
    uint32_t received;  /**< body bytes seen so far */
} ota_mqtt_reader_t;

/**
 * Start a reader on a body buffer.
 * @param r   the reader.
 * @param buf where bodies are kept (may be NULL when cap is 0).
 * @param cap its size in bytes.
 */
void ota_mqtt_reader_init(ota_mqtt_reader_t *r, uint8_t *buf, uint32_t cap);

/**
 * Feed bytes. Stops after the byte that completes a packet, so at most one
 * packet is complete per call; take it (ota_mqtt_reader_type() ...) and call
 * ota_mqtt_reader_next() before feeding more.
 * @param r    the reader.
 * @param in   bytes from the stream.
 * @param len  how many.
 * @param used receives how many bytes of in were consumed.
 * @return 1 when a packet is complete, 0 when more bytes are needed,
 *         OTA_ERR_BAD_MESSAGE for a malformed fixed header (reserved type 0 or
 *         15, a fifth length byte): the stream cannot be trusted any more.
 */
int ota_mqtt_reader_feed(ota_mqtt_reader_t *r, const uint8_t *in, size_t len, size_t *used);

/** Forget the complete packet and wait for the next one. */
void ota_mqtt_reader_next(ota_mqtt_reader_t *r);

/** The complete packet's type (OTA_MQTT_*). */
uint8_t ota_mqtt_reader_type(const ota_mqtt_reader_t *r);

/** The complete packet's fixed-header flags (low nibble). */
uint8_t ota_mqtt_reader_flags(const ota_mqtt_reader_t *r);

/** The complete packet's body length as announced (may exceed the buffer). */
uint32_t ota_mqtt_reader_length(const ota_mqtt_reader_t *r);

/** How many body bytes the buffer holds (min(length, cap)). */
uint32_t ota_mqtt_reader_kept(const ota_mqtt_reader_t *r);

/** A decoded PUBLISH; the pointers point into the decoded bytes. */
typedef struct ota_mqtt_publish {
    const char *topic;      /**< topic name, topic_len bytes, not NUL-terminated */
    size_t topic_len;       /**< 1 .. 65535 */
    uint8_t qos;            /**< 0 or 1 (2 is decoded too, the client refuses it) */
    uint8_t retain;         /**< retain flag */
    uint8_t dup;            /**< duplicate flag */
    uint16_t packet_id;     /**< nonzero when qos > 0, else 0 */
    const uint8_t *payload; /**< the payload bytes present in the buffer */
    size_t payload_len;     /**< the payload's length as announced */
} ota_mqtt_publish_t;

/**
 * Decode a PUBLISH from its fixed-header flags and body. The body may be
 * truncated (kept < length): the topic and packet id must then still be
 * within the kept bytes, and payload_len says how long the payload was.
 * @param flags  fixed-header flags.
 * @param body   the kept body bytes.
 * @param kept   how many are kept.
 * @param length the body's announced length (>= kept).
 * @param out    receives the fields.
 * @return OTA_OK; OTA_ERR_BAD_MESSAGE (QoS 3, DUP on QoS 0, topic missing,
 *         empty, with wildcards or NUL, packet id 0, lengths inconsistent);
 *         OTA_ERR_INVALID_ARG (NULL).
 */
ota_err_t ota_mqtt_decode_publish(uint8_t flags, const uint8_t *body, uint32_t kept,
                                  uint32_t length, ota_mqtt_publish_t *out);

/**
 * Decode a CONNACK body.
 * @param flags   fixed-header flags (must be 0).
 * @param body    body bytes, len of them (must be 2).
 * @param session receives the session-present flag.
 * @param code    receives the return code (0 accepted, 1..5 refused).
 * @return OTA_OK; OTA_ERR_BAD_MESSAGE; OTA_ERR_INVALID_ARG.
 */
ota_err_t ota_mqtt_decode_connack(uint8_t flags, const uint8_t *body, uint32_t len,
                                  uint8_t *session, uint8_t *code);

/**
 * Decode a PUBACK or UNSUBACK body: a nonzero packet identifier.
 * @return OTA_OK; OTA_ERR_BAD_MESSAGE (flags not 0, length not 2, id 0);
 *         OTA_ERR_INVALID_ARG.
 */
ota_err_t ota_mqtt_decode_ack(uint8_t flags, const uint8_t *body, uint32_t len, uint16_t *id);

/**
 * Decode a SUBACK for a SUBSCRIBE of one topic.
 * @param code receives the granted QoS (0..2) or 0x80 (refused).
 * @return OTA_OK; OTA_ERR_BAD_MESSAGE (flags, length not 3, id 0, another
 *         return code); OTA_ERR_INVALID_ARG.
 */
ota_err_t ota_mqtt_decode_suback(uint8_t flags, const uint8_t *body, uint32_t len, uint16_t *id,
                                 uint8_t *code);

/** Fields of a CONNECT. */
typedef struct ota_mqtt_connect {
    const char *client_id; /**< 1 .. 65535 bytes */
    const char *username;  /**< NULL for none */
    const char *password;  /**< NULL for none (needs a username) */
    uint16_t keep_alive_s; /**< keep-alive interval, seconds (0 = off) */
    uint8_t clean_session; /**< 1: start a new session */
} ota_mqtt_connect_t;

/**
 * Encode a CONNECT (protocol level 4, no will).
 * @return its length in bytes; OTA_ERR_OUT_OF_MEMORY (cap too small);
 *         OTA_ERR_INVALID_ARG (NULL, client id empty or a string longer
 *         than 65535 bytes, password without username).
 */
int32_t ota_mqtt_encode_connect(uint8_t *buf, size_t cap, const ota_mqtt_connect_t *c);

/**
 * Encode the header of a PUBLISH (fixed header, topic, packet id); its
 * payload_len bytes of payload follow it on the wire.
 * @param id packet identifier, nonzero for qos 1, ignored for qos 0.
 * @return the header's length; OTA_ERR_OUT_OF_MEMORY; OTA_ERR_INVALID_ARG
 *         (topic NULL, empty, longer than 65535 bytes or with wildcards; qos
 *         not 0 or 1; id 0 with qos 1; packet longer than MQTT allows).
 */
int32_t ota_mqtt_encode_publish_header(uint8_t *buf, size_t cap, const char *topic,
                                       size_t payload_len, uint8_t qos, uint16_t id);

/**
 * Encode a SUBSCRIBE of one topic filter with a maximum QoS (0 or 1).
 * @return its length; OTA_ERR_OUT_OF_MEMORY; OTA_ERR_INVALID_ARG.
 */
int32_t ota_mqtt_encode_subscribe(uint8_t *buf, size_t cap, uint16_t id, const char *filter,
                                  uint8_t qos);

/**
 * Encode an UNSUBSCRIBE of one topic filter.
 * @return its length; OTA_ERR_OUT_OF_MEMORY; OTA_ERR_INVALID_ARG.
 */
int32_t ota_mqtt_encode_unsubscribe(uint8_t *buf, size_t cap, uint16_t id, const char *filter);

/**
 * Encode a PUBACK for packet id.
 * @return 4.
 */
int32_t ota_mqtt_encode_puback(uint8_t buf[OTA_MQTT_SMALL_PACKET], uint16_t id);

/**
 * Encode a packet without body: PINGREQ or DISCONNECT.
 * @return 2; OTA_ERR_INVALID_ARG for another type.
 */
int32_t ota_mqtt_encode_empty(uint8_t buf[OTA_MQTT_SMALL_PACKET], uint8_t type);

#endif /* OTTER_OTA_MQTT_PACKET_H */
