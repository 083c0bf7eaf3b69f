/*
 * otter: a small MQTT 3.1.1 client for devices.
 *
 * No heap, no OS, no threads: the client runs in the caller's loop over a
 * byte-stream transport (a TCP socket, a UART wired to the broker, a modem's
 * data mode). It does what the agent needs and nothing more:
 *   - CONNECT with client id, username and password, clean session, and a
 *     keep-alive interval; PINGREQ when nothing else was sent for that long;
 *   - PUBLISH with QoS 0 and 1 (the payload is sent from the caller's buffer,
 *     not copied), SUBSCRIBE and UNSUBSCRIBE of one topic at a time, and the
 *     acknowledgements of each (at most OTA_MQTTC_INFLIGHT_MAX outstanding);
 *   - incoming PUBLISH with QoS 0 and 1 (PUBACK sent before delivery), kept in
 *     the caller's receive buffer; a message larger than the buffer is
 *     dropped and counted (a QoS 1 one is still acknowledged);
 *   - reconnection: a lost connection (transport error, malformed packet,
 *     CONNACK, ping or acknowledgement not received in time) closes the
 *     transport, and ota_mqttc_poll() connects again after a back-off that
 *     doubles from reconnect_min_ms to reconnect_max_ms. Sessions are clean,
 *     so the application subscribes again in on_connect (the agent does it in
 *     ota_agent_reconnected()); unacknowledged QoS 1 publishes are not sent
 *     again, the application's protocol repeats what matters.
 *
 * Buffers are sized by the configuration: rx_size is the largest incoming
 * packet body the device accepts (a stream block plus its topic and CBOR
 * framing), tx_size the largest outgoing packet without a PUBLISH payload
 * (CONNECT with its strings, a topic plus OTA_MQTT_PUBLISH_OVERHEAD).
 *
 * Time is a millisecond counter passed to the calls; it may wrap.
 */
#ifndef OTTER_OTA_MQTT_CLIENT_H
#define OTTER_OTA_MQTT_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "otter/ota_err.h"
#include "otter/ota_mqtt.h"
#include "otter/ota_mqtt_packet.h"

/** Outstanding acknowledgements (PUBACK, SUBACK, UNSUBACK) at most. */
#ifndef OTA_MQTTC_INFLIGHT_MAX
#define OTA_MQTTC_INFLIGHT_MAX 8u
#endif

/**
 * The byte stream. send and recv are required; open and close may be NULL
 * for a stream that is always there (a UART).
 */
typedef struct ota_mqttc_transport {
    /** Transport state, passed back as the first argument. */
    void *ctx;
    /**
     * Open the stream (e.g. connect a socket).
     * @return OTA_OK; anything else: retried after the back-off.
     */
    ota_err_t (*open)(void *ctx);
    /** Close the stream; the next open starts a new one. */
    void (*close)(void *ctx);
    /**
     * Send all len bytes (blocking as long as needed).
     * @return OTA_OK; anything else closes the connection.
     */
    ota_err_t (*send)(void *ctx, const uint8_t *data, size_t len);
    /**
     * Take up to cap bytes that have arrived, without waiting.
     * @return bytes taken (0 when none); negative: the stream is closed.
     */
    int32_t (*recv)(void *ctx, uint8_t *buf, size_t cap);
} ota_mqttc_transport_t;

/** Application callbacks; any may be NULL. */
typedef struct ota_mqttc_callbacks {
    /** Passed back as the first argument. */
    void *ctx;
    /** The broker accepted the connection (after every connect and reconnect). */
    void (*on_connect)(void *ctx);
    /** The connection was lost or refused (err says why). */
    void (*on_disconnect)(void *ctx, ota_err_t err);
    /** A message arrived; topic and payload are borrowed for the call. */
    void (*on_message)(void *ctx, const char *topic, size_t topic_len, const uint8_t *payload,
                       size_t len);
} ota_mqttc_callbacks_t;

/** Configuration; zero means default for every number. */
typedef struct ota_mqttc_config {
    ota_mqttc_transport_t transport;
    ota_mqttc_callbacks_t callbacks;
    /** Client id (required), username and password (may be NULL); must outlive the client. */
    const char *client_id;
    const char *username;
    const char *password;
    /** Keep-alive interval, seconds (0 = 60). */
    uint16_t keep_alive_s;
    /** Wait for CONNACK, PINGRESP and every acknowledgement, ms (0 = 10000). */
    uint32_t ack_timeout_ms;
    /** Reconnect back-off, ms (0 = 1000 and 30000). */
    uint32_t reconnect_min_ms;
    uint32_t reconnect_max_ms;
    /** Receive buffer: the largest incoming packet body accepted. */
    uint8_t *rx_buf;
    uint32_t rx_size;
    /** Transmit buffer: the largest outgoing packet without a PUBLISH payload. */
    uint8_t *tx_buf;
    uint32_t tx_size;
} ota_mqttc_config_t;

/** Connection states. */
typedef enum ota_mqttc_state {
    OTA_MQTTC_IDLE = 0,       /**< not started, or disconnected by the application */
    OTA_MQTTC_WAITING = 1,    /**< lost; reconnects when the back-off has passed */
    OTA_MQTTC_CONNECTING = 2, /**< CONNECT sent, waiting for CONNACK */
    OTA_MQTTC_CONNECTED = 3,  /**< CONNACK accepted */
} ota_mqttc_state_t;

/** Counters since init. */
typedef struct ota_mqttc_stats {
    uint32_t connects;     /**< connections accepted by the broker */
    uint32_t losses;       /**< connections lost or refused */
    uint32_t received;     /**< messages delivered */
    uint32_t dropped;      /**< messages larger than the receive buffer */
    uint32_t published;    /**< PUBLISH packets sent */
    uint32_t refused_subs; /**< SUBACKs with 0x80 */
    uint32_t pings;        /**< PINGREQs sent */
    uint8_t last_connack;  /**< the last CONNACK return code */
} ota_mqttc_stats_t;

/** The client; fields are private (visible so it can be allocated statically). */
typedef struct ota_mqttc {
    ota_mqttc_config_t cfg;
    ota_mqttc_state_t state;
    ota_mqttc_stats_t stats;
    ota_mqtt_reader_t reader;
    uint32_t now;
    uint32_t last_tx;     /* when a packet was last sent */
    uint32_t wait_since;  /* CONNECT or PINGREQ sent at */
    uint8_t ping_pending; /* a PINGREQ waits for its PINGRESP */
    uint32_t retry_at;    /* WAITING: reconnect from then */
    uint32_t backoff;     /* current reconnect delay */
    uint16_t next_id;
    uint32_t epoch; /* incremented on every loss (callbacks may cause one) */
    uint16_t inflight_id[OTA_MQTTC_INFLIGHT_MAX];
    uint32_t inflight_at[OTA_MQTTC_INFLIGHT_MAX];
    uint8_t inflight_type[OTA_MQTTC_INFLIGHT_MAX];
} ota_mqttc_t;

/**
 * Prepare a client; it starts IDLE.
 * @return OTA_OK; OTA_ERR_INVALID_ARG (NULL, no send/recv, no client id,
 *         password without username, no buffers, rx_size < 16, tx_size too
 *         small for the CONNECT, back-off bounds inverted).
 */
ota_err_t ota_mqttc_init(ota_mqttc_t *c, const ota_mqttc_config_t *cfg);

/**
 * Connect: open the transport and send CONNECT. The connection is up when
 * on_connect is called (from ota_mqttc_poll()); if the transport cannot be
 * opened the client waits for the back-off and tries again.
 * @return OTA_OK; OTA_ERR_INVALID_ARG; OTA_ERR_WRONG_STATE (not IDLE).
 */
ota_err_t ota_mqttc_connect(ota_mqttc_t *c, uint32_t now_ms);

/**
 * The client's work: read and handle every packet that has arrived (at most
 * max_packets, 0 = no bound), send PINGREQ when due, detect lost
 * connections, reconnect after the back-off. Callbacks run from here.
 * @return OTA_OK; OTA_ERR_INVALID_ARG.
 */
ota_err_t ota_mqttc_poll(ota_mqttc_t *c, uint32_t now_ms, uint32_t max_packets);

/**
 * Publish len bytes of payload on topic with QoS 0 or 1; the payload is sent
 * before the call returns.
 * @return OTA_OK; OTA_ERR_INVALID_ARG (NULL, bad topic, qos > 1);
 *         OTA_ERR_MQTT (not connected, too many acknowledgements outstanding,
 *         header larger than tx_size, or the send failed: the connection is
 *         then lost).
 */
ota_err_t ota_mqttc_publish(ota_mqttc_t *c, const char *topic, const uint8_t *payload, size_t len,
                            uint8_t qos);

/**
 * Subscribe to one topic filter with maximum QoS 0 or 1. A SUBACK refusing it
 * is counted in stats.refused_subs.
 * @return as ota_mqttc_publish().
 */
ota_err_t ota_mqttc_subscribe(ota_mqttc_t *c, const char *filter, uint8_t qos);

/**
 * Unsubscribe from one topic filter.
 * @return as ota_mqttc_publish().
 */
ota_err_t ota_mqttc_unsubscribe(ota_mqttc_t *c, const char *filter);

/**
 * Send DISCONNECT (when connected), close the transport and go IDLE.
 * @return OTA_OK; OTA_ERR_INVALID_ARG.
 */
ota_err_t ota_mqttc_disconnect(ota_mqttc_t *c);

/** Current state (IDLE for NULL). */
ota_mqttc_state_t ota_mqttc_get_state(const ota_mqttc_t *c);

/** Acknowledgements outstanding (0 when every publish so far is acknowledged). */
uint32_t ota_mqttc_pending(const ota_mqttc_t *c);

/** Counters (NULL gives NULL). */
const ota_mqttc_stats_t *ota_mqttc_get_stats(const ota_mqttc_t *c);

/**
 * The agent's MQTT interface on this client (ota_mqtt.h): subscribe,
 * unsubscribe and publish map to the calls above.
 */
ota_mqtt_t ota_mqttc_interface(ota_mqttc_t *c);

#endif /* OTTER_OTA_MQTT_CLIENT_H */
