/*
 * otter benchmarks: one simulated device downloading one update.
 *
 * The device is otter's agent over the libmosquitto binding, on the simulated
 * NOR flash port (4 MiB in 4 KiB sectors) with real ECDSA P-256 verification,
 * running version 1.0.0. It connects with the connection settings it is
 * given (a broker, or a link emulator in front of one, and the thing's
 * login), takes the job the service offers its thing, downloads and verifies
 * the file, and stops when the port has verified the signature (before
 * activation). Built with ota_agent_http (library ota_bench_device_http), it
 * also has the HTTP data plane over TCP, and reads its stream whenever the
 * socket is readable. Without the HTTP plane, downloads may run at once in
 * separate threads (each has its own device, client and agent).
 */
#ifndef BENCH_DEVICE_H
#define BENCH_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "otter/ota_agent.h"
#include "ota_mqtt_mosquitto.h"

/** What one download did. Times are bench_now() seconds (0: did not happen). */
typedef struct bench_device_run {
    double start;            /**< the agent accepted the job document */
    double verified;         /**< the port verified the file */
    double last_data;        /**< the last stream data message arrived */
    int failed;              /**< the job ended otherwise (reported on stderr) */
    uint32_t file_size;      /**< bytes downloaded: the image with its header */
    uint32_t block_size;     /**< bytes per block, as configured (default resolved) */
    uint32_t window;         /**< blocks in flight at most at the start (the agent's window) */
    uint32_t window_peak;    /**< the largest window seen between turns of the device's loop */
    size_t data_msg_len;     /**< largest stream data message received, bytes */
    size_t data_bytes;       /**< all stream data messages received, bytes */
    ota_agent_stats_t stats; /**< the agent's counters at the end */
} bench_device_run_t;

/**
 * Run one device until its download is verified, fails, or timeout_s pass.
 * @param conn       how to connect (host, port, client id, credentials);
 *                   its on_message and ctx are the device's own.
 * @param thing      the thing name (also used as the client id when
 *                   conn->client_id is NULL).
 * @param block_size bytes per block (0: the agent's default).
 * @param window     blocks in flight (0: the agent's default).
 * @param timeout_s  longest time, from the agent's start.
 * @param r          receives what the download did.
 * @return 0 verified; -1 with a message on stderr.
 */
#if OTA_HTTP_PLANE
/**
 * Where the device's HTTP data plane connects (built with ota_agent_http):
 * to this loopback port instead of the job's URL's (a link emulator in front
 * of otter-http); 0, the default, connects to the URL's host and port.
 * @param port the port, or 0.
 */
void bench_device_http_via(int port);
#endif

int bench_device_download(const ota_mqtt_mosquitto_config_t *conn, const char *thing,
                          uint32_t block_size, uint32_t window, double timeout_s,
                          bench_device_run_t *r);

#endif /* BENCH_DEVICE_H */
