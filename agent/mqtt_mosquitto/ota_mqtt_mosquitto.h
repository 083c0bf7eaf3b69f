/*
 * otter: the OTA agent over libmosquitto, for host (Linux/POSIX) devices.
 *
 * The binding owns one MQTT connection (struct mosquitto, MQTT 3.1.1, clean
 * session, optional TLS) and feeds one ota_agent_t. libmosquitto runs its own
 * network thread (mosquitto_loop_start). That thread copies incoming messages
 * into a bounded queue (messages that do not fit are dropped and counted) and
 * queues connection events. The caller's thread -- the one that calls
 * ota_mqtt_mosquitto_run_once() or ota_mqtt_mosquitto_run() -- takes them out
 * in arrival order and hands them to the agent, calls ota_agent_poll() every
 * OTA_MQTT_MOSQUITTO_POLL_MS with a monotonic millisecond clock, and calls
 * ota_agent_reconnected() after every reconnect (the agent subscribes again
 * through that call, since a clean session loses the subscriptions).
 *
 * One exception saves a copy and a thread wake-up per block: while run_once
 * waits for messages and nothing is queued, the network thread hands a stream
 * data block ($aws/things/<thing>/streams/<stream>/data/cbor or /json) to the
 * agent itself, and run_once does not return (nor call the agent) before that
 * hand-off is over. So the agent, its port and its callbacks run in one
 * thread at a time, and only within run_once (or run): code that calls the
 * agent outside run_once, in the delivering thread, needs no lock, as before.
 * Everything else (job documents, refusals, other topics, reconnects) reaches
 * the agent in the delivering thread, and arrival order is kept: once a
 * message is queued, the blocks after it are queued too.
 *
 * Connection loss is handled by libmosquitto's automatic reconnect, with the
 * delays of the configuration (mosquitto_reconnect_delay_set()). The socket
 * has Nagle's algorithm off (MOSQ_OPT_TCP_NODELAY): block requests are small
 * and would otherwise wait for the previous segment's acknowledgement.
 *
 * The ota_mqtt_t the binding provides maps subscribe, unsubscribe and publish
 * to libmosquitto with the QoS the agent asks for; libmosquitto copies the
 * payload, so the agent may reuse its buffer at once. Those operations are
 * thread-safe, but the agent calls them from the delivering thread anyway.
 *
 * ota_mqtt_mosquitto_flush() waits until every publish made so far has left
 * (QoS 0: written to the socket) or been acknowledged by the broker (QoS 1),
 * so a device can make sure its "self_test: ready" or FAILED status is out
 * before it resets.
 *
 * Typical use:
 *
 *     ota_mqtt_mosquitto_t b;
 *     ota_agent_t agent;
 *     ota_mqtt_mosquitto_config_t conn_cfg = {
 *         .host = "broker.local", .port = 8883, .client_id = "dev-1",
 *         .ca_file = "/etc/otter/ca.pem",
 *     };
 *     ota_agent_config_t cfg = { .thing_name = "dev-1", ... };
 *
 *     ota_mqtt_mosquitto_init(&b, &conn_cfg);      // connects, starts the network thread
 *     cfg.mqtt = ota_mqtt_mosquitto_interface(&b);  // the agent's ota_mqtt_t
 *     ota_agent_init(&agent, &cfg);
 *     ota_mqtt_mosquitto_attach(&b, &agent);
 *     ota_agent_start(&agent, ota_mqtt_mosquitto_now_ms());
 *     while (!stop)
 *         ota_mqtt_mosquitto_run_once(&b, 100);
 *     ota_agent_stop(&agent);
 *     ota_mqtt_mosquitto_flush(&b, 2000);
 *     ota_mqtt_mosquitto_cleanup(&b);
 *
 * If the connection drops between init and ota_agent_start(), the start fails
 * with OTA_ERR_MQTT and the agent stays stopped: start it again once
 * ota_mqtt_mosquitto_connected() says so (run_once may be called meanwhile).
 *
 * The binding must not move in memory between init and cleanup (libmosquitto
 * keeps its address). It allocates from the heap: the connection, and one
 * block per queued message. Apart from libmosquitto's own reference-counted
 * library initialisation it keeps no global state, so several bindings may
 * run side by side; init and cleanup of bindings should not run concurrently
 * in different threads, because mosquitto_lib_init()/mosquitto_lib_cleanup()
 * are not thread-safe.
 */
#ifndef OTA_MQTT_MOSQUITTO_H
#define OTA_MQTT_MOSQUITTO_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "otter/ota_agent.h"
#include "otter/ota_err.h"
#include "otter/ota_mqtt.h"

/** Interval of ota_agent_poll() calls made by the delivering thread, ms. */
#define OTA_MQTT_MOSQUITTO_POLL_MS 100u

/** Default bound of the incoming queue, in messages. */
#define OTA_MQTT_MOSQUITTO_QUEUE_MSGS 256u

/** Default bound of the incoming queue, in payload bytes. */
#define OTA_MQTT_MOSQUITTO_QUEUE_BYTES (4u * 1024u * 1024u)

/** How to connect; strings are copied by libmosquitto or used during init only. */
typedef struct ota_mqtt_mosquitto_config {
    /** Broker host name or address (required). */
    const char *host;
    /** Broker port, 1 .. 65535 (required; 1883 plain, 8883 TLS usually). */
    int port;
    /** Client id; NULL lets libmosquitto pick a random one. */
    const char *client_id;
    /** Username, or NULL for none. */
    const char *username;
    /** Password (only with a username), or NULL. */
    const char *password;
    /** CA certificate file (PEM): when set, the connection uses TLS. */
    const char *ca_file;
    /** Client certificate and key (PEM) for mutual TLS; both or neither; need ca_file. */
    const char *cert_file;
    const char *key_file;
    /** Keepalive, seconds (0 = 60; otherwise at least 5). */
    int keepalive_s;
    /** First and largest delay between reconnect attempts, seconds (0 = 1 and 30). */
    unsigned reconnect_min_s;
    unsigned reconnect_max_s;
    /** How long init waits for the broker's CONNACK, ms (0 = 10000). */
    uint32_t connect_timeout_ms;
    /** Bound of the incoming queue in messages (0 = OTA_MQTT_MOSQUITTO_QUEUE_MSGS). */
    size_t queue_max_msgs;
    /** Bound of the incoming queue in payload bytes (0 = OTA_MQTT_MOSQUITTO_QUEUE_BYTES). */
    size_t queue_max_bytes;
    /**
     * Optional: called for every incoming message, in order, just before the
     * agent gets it and in the same thread (for the application's own topics
     * on the same connection; see above for when that is the network thread).
     * topic is NUL-terminated; both buffers are borrowed for the call. May be
     * NULL.
     */
    void (*on_message)(void *ctx, const char *topic, const uint8_t *payload, size_t len);
    /**
     * Optional: connection events and dropped messages, as one line of text,
     * called in the delivering thread (never in the network thread). May be NULL.
     */
    void (*log)(void *ctx, ota_log_level_t level, const char *text);
    /** Passed back to on_message and log. */
    void *ctx;
} ota_mqtt_mosquitto_config_t;

/** Counters since init, for logs and tests. */
typedef struct ota_mqtt_mosquitto_stats {
    uint32_t received;         /**< messages that arrived from the broker */
    uint32_t delivered;        /**< messages handed to the agent */
    uint32_t delivered_direct; /**< of those, handed over in the network thread */
    uint32_t dropped;          /**< messages dropped because the queue was full */
    uint32_t queued;           /**< messages waiting in the queue now */
    uint32_t queue_peak;       /**< most messages ever waiting at once */
    uint32_t connects;         /**< successful CONNACKs, the first connection included */
    uint32_t disconnects;      /**< connection losses and disconnects */
    uint32_t reconnects;       /**< ota_agent_reconnected() calls made */
    uint32_t published;        /**< publishes accepted by libmosquitto */
    uint32_t publish_done;     /**< publishes sent (QoS 0) or acknowledged (QoS 1) */
    uint32_t publish_lost;     /**< QoS 0 publishes discarded by a connection loss */
    uint32_t request_errors;   /**< publish, subscribe or unsubscribe calls that failed */
    uint32_t polls;            /**< ota_agent_poll() calls made */
    int connected;             /**< 1 while the connection is up */
} ota_mqtt_mosquitto_stats_t;

/** One queued incoming message or connection event (private). */
struct ota_mqtt_mosquitto_item;

/** One publish waiting for on_publish (private). */
typedef struct ota_mqtt_mosquitto_pending {
    uint64_t seq; /* order of the publish */
    int mid;      /* libmosquitto's message id */
    int qos;
} ota_mqtt_mosquitto_pending_t;

/**
 * The binding. Its fields are private (visible so callers can allocate it);
 * use the functions below.
 */
typedef struct ota_mqtt_mosquitto {
    struct mosquitto *mosq;
    ota_agent_t *agent;
    ota_mqtt_mosquitto_config_t cfg;
    int lib_ready;  /* mosquitto_lib_init() was called */
    int loop_ready; /* the network thread runs */
    int sync_ready; /* lock and conditions exist */
    pthread_mutex_t lock;
    pthread_cond_t queue_cond; /* a queue item arrived */
    pthread_cond_t pub_cond;   /* a publish completed or was lost */
    pthread_cond_t conn_cond;  /* the first CONNACK arrived */

    /* Guarded by lock. */
    struct ota_mqtt_mosquitto_item *head;
    struct ota_mqtt_mosquitto_item *tail;
    size_t nitems; /* messages and events queued */
    size_t queue_bytes;
    uint32_t drops_unreported;
    int connack_rc; /* -1 until the first CONNACK */
    uint32_t disconnect_gen;
    ota_mqtt_mosquitto_stats_t stats;
    ota_mqtt_mosquitto_pending_t *pending; /* publishes not yet completed */
    size_t npending;
    size_t pending_cap;
    int *early; /* on_publish seen before the publisher recorded the id */
    size_t nearly;
    size_t early_cap;
    uint64_t pub_seq;

    int parked;              /* run_once waits: the network thread may hand over blocks */
    int direct_busy;         /* the network thread is in the agent */
    pthread_t direct_thread; /* which thread that is (valid while direct_busy) */

    /* Used by the delivering thread only. */
    uint32_t last_poll;
    int polled;
} ota_mqtt_mosquitto_t;

/**
 * A monotonic clock in milliseconds (CLOCK_MONOTONIC), wrapping at 2^32, as
 * the agent expects. Thread-safe.
 */
uint32_t ota_mqtt_mosquitto_now_ms(void);

/**
 * Create the connection, connect and start libmosquitto's network thread;
 * returns once the broker accepted the connection.
 * @param b   caller-owned binding, overwritten; must stay at this address
 *            until ota_mqtt_mosquitto_cleanup().
 * @param cfg connection settings; the strings need only live during the call
 *            (libmosquitto copies them), on_message/log/ctx are kept.
 * @return OTA_OK; OTA_ERR_INVALID_ARG (NULL, no host, port out of range,
 *         keepalive below 5, password without username, key without
 *         certificate or certificate without CA, reconnect delays inverted);
 *         OTA_ERR_OUT_OF_MEMORY; OTA_ERR_MQTT (libmosquitto refused the
 *         settings, the TLS files, or the broker refused the connection);
 *         OTA_ERR_TIMEOUT (no CONNACK within connect_timeout_ms). On any
 *         error nothing is left running or allocated and b needs no cleanup
 *         (calling ota_mqtt_mosquitto_cleanup() on it is harmless).
 * Thread: any; not concurrently with another binding's init or cleanup.
 */
ota_err_t ota_mqtt_mosquitto_init(ota_mqtt_mosquitto_t *b, const ota_mqtt_mosquitto_config_t *cfg);

/**
 * The MQTT interface for ota_agent_config_t.mqtt: subscribe, unsubscribe and
 * publish on this connection (ctx is b). Each returns OTA_ERR_MQTT when
 * libmosquitto refuses the request, in particular while the connection is
 * down (libmosquitto queues nothing then; the agent retries on its timers and
 * subscribes again in ota_agent_reconnected()). QoS 1 publishes that were
 * sent but not yet acknowledged when the connection dropped are resent by
 * libmosquitto after the reconnect.
 * @param b an initialised binding (NULL gives an interface whose operations
 *          all fail with OTA_ERR_INVALID_ARG).
 * @return the interface, by value.
 * Thread: any; the operations themselves are thread-safe.
 */
ota_mqtt_t ota_mqtt_mosquitto_interface(ota_mqtt_mosquitto_t *b);

/**
 * Give the binding the agent it delivers to. Messages that arrived before
 * are delivered by the next run_once. The agent is borrowed: it must outlive
 * the binding or be detached by attaching another one.
 * @param b     an initialised binding.
 * @param agent an initialised agent whose mqtt interface is this binding's.
 * @return OTA_OK; OTA_ERR_INVALID_ARG (NULL or b not initialised).
 * Thread: the delivering thread (or before it starts calling run_once).
 */
ota_err_t ota_mqtt_mosquitto_attach(ota_mqtt_mosquitto_t *b, ota_agent_t *agent);

/**
 * Do the agent's work once: wait at most timeout_ms for an incoming message
 * or connection event (less if ota_agent_poll() is due sooner), then hand
 * every message queued at that moment to the agent in arrival order, call
 * ota_agent_reconnected() for a reconnect (after the messages that arrived
 * before it), and call ota_agent_poll() when OTA_MQTT_MOSQUITTO_POLL_MS
 * have passed since the last poll. While it waits, stream data blocks may
 * reach the agent in the network thread (see above); the call returns only
 * once such a hand-off is over. The agent's callbacks and port run inside
 * this call; they may call ota_mqtt_mosquitto_flush().
 * @param b          an initialised binding with an agent attached.
 * @param timeout_ms longest wait, ms (0: do not wait).
 * @return OTA_OK; OTA_ERR_INVALID_ARG (NULL or not initialised);
 *         OTA_ERR_WRONG_STATE (no agent attached). Agent errors are not
 *         returned: the agent logs them through its own callbacks.
 * Thread: one delivering thread at a time, never libmosquitto's.
 */
ota_err_t ota_mqtt_mosquitto_run_once(ota_mqtt_mosquitto_t *b, uint32_t timeout_ms);

/**
 * Call ota_mqtt_mosquitto_run_once(b, OTA_MQTT_MOSQUITTO_POLL_MS) until
 * *stop becomes non-zero (checked at least every 100 ms; another thread or a
 * signal handler may set it).
 * @param b    as for run_once.
 * @param stop the stop flag (required).
 * @return OTA_OK when stopped; the errors of run_once; OTA_ERR_INVALID_ARG
 *         for a NULL stop.
 * Thread: the delivering thread.
 */
ota_err_t ota_mqtt_mosquitto_run(ota_mqtt_mosquitto_t *b, const atomic_int *stop);

/**
 * Wait until every publish accepted before this call has been written to
 * the socket (QoS 0) or acknowledged by the broker (QoS 1). QoS 0 publishes
 * that a connection loss discarded count as done (they will never go out);
 * QoS 1 publishes are resent after a reconnect and waited for. Does not
 * deliver messages to the agent, so it may be called from the agent's
 * callbacks and port (e.g. before a reset). Called by the agent while it
 * handles a stream data block in the network thread (see above), it cannot
 * wait: it returns OTA_OK if nothing is outstanding, OTA_ERR_WRONG_STATE
 * otherwise. (The agent resets and activates from ota_agent_poll() or a job
 * document, which come in the delivering thread.)
 * @param b          an initialised binding.
 * @param timeout_ms longest wait, ms.
 * @return OTA_OK; OTA_ERR_INVALID_ARG; OTA_ERR_TIMEOUT (some are still
 *         outstanding, e.g. the broker is unreachable); OTA_ERR_WRONG_STATE
 *         (called within a hand-off in the network thread, some outstanding).
 * Thread: any thread but libmosquitto's (do not call it from on_message/log).
 */
ota_err_t ota_mqtt_mosquitto_flush(ota_mqtt_mosquitto_t *b, uint32_t timeout_ms);

/**
 * Whether the connection is up now.
 * @param b the binding (NULL gives 0).
 * @return 1 connected; 0 not.
 * Thread: any.
 */
int ota_mqtt_mosquitto_connected(ota_mqtt_mosquitto_t *b);

/**
 * A snapshot of the counters.
 * @param b   an initialised binding.
 * @param out receives the counters.
 * @return OTA_OK; OTA_ERR_INVALID_ARG (NULL or not initialised).
 * Thread: any.
 */
ota_err_t ota_mqtt_mosquitto_get_stats(ota_mqtt_mosquitto_t *b, ota_mqtt_mosquitto_stats_t *out);

/**
 * Disconnect (queued outgoing messages are not waited for: flush first),
 * stop and join the network thread, free the queue and the connection. The
 * attached agent is not touched (stop it first if it should unsubscribe).
 * Safe on a binding whose init failed, and safe to call twice.
 * @param b the binding (NULL is allowed).
 * Thread: the delivering thread, not inside run_once; not concurrently with
 * another binding's init or cleanup.
 */
void ota_mqtt_mosquitto_cleanup(ota_mqtt_mosquitto_t *b);

#endif /* OTA_MQTT_MOSQUITTO_H */
