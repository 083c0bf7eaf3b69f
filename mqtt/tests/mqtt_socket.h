/*
 * otter TEST SUPPORT ONLY: the device MQTT client's transport over a TCP
 * socket to 127.0.0.1 (blocking send, non-blocking receive), for host tests.
 */
#ifndef MQTT_SOCKET_H
#define MQTT_SOCKET_H

#include "otter/ota_mqtt_client.h"

/** A socket transport; port is set by the test, fd is -1 while closed. */
typedef struct mqtt_socket {
    int port;
    int fd;
    unsigned opens; /**< successful opens */
} mqtt_socket_t;

/** The transport for s (closed until the client opens it). */
ota_mqttc_transport_t mqtt_socket_transport(mqtt_socket_t *s, int port);

/** Milliseconds of the monotonic clock, truncated to 32 bits. */
uint32_t mqtt_socket_now_ms(void);

#endif /* MQTT_SOCKET_H */
