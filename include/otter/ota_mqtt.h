/*
 * otter: the MQTT interface the agent publishes and subscribes through.
 *
 * The integrator owns the MQTT client (coreMQTT, libmosquitto, a modem's AT
 * commands ...) and passes incoming messages to ota_agent_handle_message().
 * The agent only needs these three operations; each may queue the request
 * and return at once. Requests on one connection must reach the broker in the
 * order they were made (every MQTT client does this), so that a subscription
 * is in place before the request whose answer it carries.
 */
#ifndef OTTER_OTA_MQTT_H
#define OTTER_OTA_MQTT_H

#include "otter/ota_config_defaults.h"

#include <stddef.h>
#include <stdint.h>

#include "otter/ota_err.h"

/** MQTT operations plus the context they receive. */
typedef struct ota_mqtt {
    /** Client state, passed back as the first argument of every operation. */
    void *ctx;

    /**
     * Subscribe to topic (a NUL-terminated topic name without wildcards) with
     * the given maximum QoS (0 or 1).
     * @return OTA_OK when the request was accepted or queued; OTA_ERR_MQTT.
     */
    ota_err_t (*subscribe)(void *ctx, const char *topic, uint8_t qos);

    /**
     * Unsubscribe from topic. Unsubscribing from a topic that is not
     * subscribed is harmless.
     * @return OTA_OK; OTA_ERR_MQTT.
     */
    ota_err_t (*unsubscribe)(void *ctx, const char *topic);

    /**
     * Publish len bytes of payload to topic with QoS 0 or 1. The payload buffer
     * belongs to the agent and may be reused after the call returns, so a
     * client that sends later must copy it.
     * @return OTA_OK; OTA_ERR_MQTT.
     */
    ota_err_t (*publish)(void *ctx, const char *topic, const uint8_t *payload, size_t len,
                         uint8_t qos);
} ota_mqtt_t;

#endif /* OTTER_OTA_MQTT_H */
