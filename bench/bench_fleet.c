/*
 * otter benchmark 2: a fleet. One job, one image, many devices.
 *
 *   bench_fleet [--devices 100,500,1000] [--image-kib 256] [--instances 1,2] [--quick]
 *               [--federate] [--loops N]
 *
 * For every device count N and every number of service instances (1, then 2),
 * a fresh environment (bench_env.h: Mosquitto on loopback, things fleet-0 ..
 * fleet-(N-1) in group "fleet", the service instances) and N simulated
 * devices in this process. Each device is the agent on the simulated NOR
 * flash port (the otter bootloader, real ECDSA P-256 verification) with a
 * libmosquitto client of its own. The devices are split into --loops slices
 * (by default one per core of the machine beyond the two left to the broker and
 * the service, at least one); a thread per slice drives its
 * devices through one poll() loop over their clients' sockets, with
 * libmosquitto's non-threaded calls (loop_read, loop_write, loop_misc). A
 * device is only ever touched by its loop's thread, so a device's busy turn
 * (a signature check, a boot) delays the devices of its own slice only, and the
 * devices can use every core, as a fleet of real devices each has its own CPU.
 *
 * The devices connect (at most CONNECT_INFLIGHT waiting for CONNACK at a time,
 * so the broker's listen backlog never overflows), start their agents and are
 * told there is no job. Then the clock starts (t0) and one job is created with
 * the otter CLI for group:fleet, version 1.1.0, with an image of pseudo-random
 * bytes. A device is done when its agent reports the job SUCCEEDED: download,
 * verification, activation, reset (the device's MQTT session ends, its RAM is
 * wiped, the bootloader runs the new image and a new agent starts with the new
 * version), the self-test passes, the image is committed. Its completion time
 * runs from t0 to that report.
 *
 * Measured per configuration, from t0 to the last completion:
 *   - aggregate throughput: N x the image as served (with otter's header)
 *     divided by the time to the last completion, MiB/s;
 *   - the service's CPU seconds (all instances, from /proc) per delivered MiB;
 *   - the broker's and this process's (all devices') CPU seconds;
 *   - median and 99th-percentile completion time;
 *   - the agents' request timeouts and duplicate blocks (signs of congestion).
 * A note line per configuration says where the time went: the median phases
 * (t0 to the job document, download and verification, activation to the
 * report), the time the devices' loops spent in signature checks (which
 * real devices would each do on their own CPU), the longest busy turn of a
 * loop, the timeouts that came while bytes of an answer waited unread in the
 * device's socket (the loop was late, not the service), the services'
 * counters from their "stats:" lines, lost connections, the broker's log
 * lines about dropped messages and the CPU other processes on the machine
 * used meanwhile. The result is a Markdown section on stdout;
 * progress goes to stderr.
 *
 * The run fails (exit status 1) when a device ends FAILED or CANCELED, when
 * not every device finishes within the deadline (300 s; 60 s with --quick),
 * or when the store does not record every execution SUCCEEDED afterwards.
 *
 * --federate (benchmark 7): the same on a federation of two brokers (bench_env_start_federated),
 * the devices spread over both by their thing files, the instances (up to 3) sharing the stream
 * requests through the hub.
 *
 * --quick: 10 devices and a 32 KiB image (a smoke test: it asserts that every
 * device SUCCEEDED, not any speed). BENCH_KEEP=1 keeps each run's folder (the
 * service logs with their "stats:" line).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <mosquitto.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench_env.h"
#include "flashsim_device.h"
#include "otter/ota_agent.h"
#include "ota_store.h"
#include "ota_test_image.h"

#define KIB 1024u
#define MIB (1024.0 * 1024.0)
#define V1_0_0 0x01000000u
#define JOB_ID "fleet-job"
#define GROUP "fleet"
#define PREFIX "fleet-"
#define NEW_VERSION "1.1.0"

#define MAX_LIST 8
#define MAX_DEVICES 5000u
#define MAX_LOOPS 64u
#define FACTORY_LEN 4096u
/* Connects waiting for CONNACK at once (Mosquitto listens with a backlog of 100). */
#define CONNECT_INFLIGHT 50u
#define CONNECT_TIMEOUT_S 10.0
#define KEEPALIVE_S 60
#define POLL_MS 10
#define AGENT_POLL_MS 100u
#define MISC_EVERY_S 1.0
/* Packets read from one socket per wakeup, so that one busy device cannot
 * starve the others. */
#define READ_BURST 64
/* A device that resets waits at most this long for its last publishes. */
#define FLUSH_TIMEOUT_S 3.0
#define SETUP_TIMEOUT_S 60.0
#define STORE_TIMEOUT_S 15.0
#define DEADLINE_S 300.0
#define QUICK_DEADLINE_S 60.0

/* ---- the fleet ---- */

typedef enum phase {
    PH_QUEUED = 0,  /* waiting for a connect slot */
    PH_CONNECTING,  /* CONNECT sent, waiting for CONNACK */
    PH_ONLINE,      /* connected; the agent runs */
    PH_RESETTING,   /* the port reset: sending what is queued, then the power cycle */
    PH_UNREACHABLE, /* out of the run: could not connect, or the run is over */
} phase_t;

typedef struct fleet fleet_t;
typedef struct loop loop_t;

typedef struct device {
    fleet_t *fleet;
    loop_t *loop;  /* the event loop (thread) that drives it */
    unsigned slot; /* its index in that loop's devices */
    char name[32];
    char password[64]; /* its broker login's, from `otter thing create` */
    int port;          /* its broker's port, from the same file */
    phase_t phase;
    struct mosquitto *m;
    int connected_once; /* this boot's client has connected before (reconnect) */
    flashsim_device_t flash;
    ota_pal_t pal;
    ota_agent_t agent;
    int agent_started;
    int connack; /* CONNACK: 1 accepted, -1 refused, 0 not yet */
    int link_lost;
    int reset_requested;
    int self_test_requested;
    int told_no_job; /* the service answered $next/get before the job existed */
    int outcome;     /* 0 none yet, 1 SUCCEEDED, -1 FAILED, CANCELED or unreachable */
    char reason[192];
    double done_at;
    double job_at;      /* the first agent accepted the job document */
    double verified_at; /* the port verified the file */
    double phase_since;
    double next_misc;
    uint32_t next_poll_ms;
    uint32_t file_size;
    unsigned long published; /* publishes handed to libmosquitto */
    unsigned long sent;      /* ... and written (QoS 0) or acknowledged (QoS 1) */
    unsigned boots;
    ota_agent_stats_t earlier; /* counters of earlier boots' agents */
} device_t;

/* One event loop: a thread that drives a slice of the fleet through one
 * poll() over their sockets. Only its thread touches its devices; the fields
 * below "under the fleet's lock" are also read by the main thread. */
struct loop {
    fleet_t *fleet;
    pthread_t thread;
    int running;
    device_t **dev; /* its slice of the fleet's devices */
    unsigned n;
    unsigned connect_max; /* its share of CONNECT_INFLIGHT */
    unsigned connecting;  /* devices in PH_CONNECTING */
    unsigned *queue;      /* devices in PH_QUEUED (slots), a ring of n entries */
    unsigned q_head;
    unsigned q_len;
    struct pollfd *pfd;
    unsigned *pfd_dev;
    /* under the fleet's lock: */
    unsigned link_losses; /* connections lost without being closed by the device */
    unsigned reboots;
    unsigned timeouts_unread; /* request timeouts with bytes waiting unread in the socket */
    double max_stall;         /* longest turn of the loop spent working, s */
    double port_s;            /* in the port's signature checks */
    double boot_s;            /* in the bootloader's */
};

struct fleet {
    device_t **dev;
    unsigned n;
    int port;
    const bench_env_t *env;
    loop_t *loops;
    unsigned n_loops;
    pthread_mutex_t lock;
    /* under the lock: */
    int closing;       /* the loops disconnect their devices and end */
    unsigned finished; /* devices with an outcome */
    unsigned succeeded;
    unsigned told_no_job;
    uint8_t factory[FACTORY_LEN];
};

/* Event loops (threads) for the devices: --loops, by default the cores less two, at least one. */
static unsigned g_loops;

/* The simulated device: 1 MiB of NOR flash in 4 KiB sectors, write unit 8:
 * two slots of 504 KiB. */
static const flashsim_variant_t device_flash = {{1024u * KIB, 4u * KIB, NULL, 0, 8, 0xff},
                                                {{0, 0}, 0, {0, 0}, {0, 0}, 0}};

/* Time the devices' loops spend in signature checks, which real devices
 * would each do on their own CPU: the port's check of a received file (timed
 * around the port's close_file, below) and the bootloader's check of a new
 * image at boot. */
static ota_err_t (*g_port_close_file)(void *ctx, const ota_pal_file_t *file);

/* The loop the calling thread runs (NULL in the main thread). */
static __thread loop_t *t_loop;

static uint32_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

static double self_cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) {
        return -1.0;
    }
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void set_phase(device_t *d, phase_t p)
{
    d->phase = p;
    d->phase_since = bench_now();
}

static void enqueue(device_t *d)
{
    loop_t *l = d->loop;
    l->queue[(l->q_head + l->q_len) % l->n] = d->slot;
    l->q_len++;
    set_phase(d, PH_QUEUED);
}

/* Adds to a loop's counters under the fleet's lock. */
static void loop_count(loop_t *l, unsigned *counter)
{
    pthread_mutex_lock(&l->fleet->lock);
    (*counter)++;
    pthread_mutex_unlock(&l->fleet->lock);
}

static void loop_add_time(loop_t *l, double *sum, double s)
{
    pthread_mutex_lock(&l->fleet->lock);
    *sum += s;
    pthread_mutex_unlock(&l->fleet->lock);
}

/* Records a device's end: 1 SUCCEEDED, -1 anything else (with the reason). */
static void finish(device_t *d, int outcome, const char *reason)
{
    if (d->outcome != 0) {
        return;
    }
    d->outcome = outcome;
    d->done_at = bench_now();
    snprintf(d->reason, sizeof d->reason, "%s", reason);
    pthread_mutex_lock(&d->fleet->lock);
    d->fleet->finished++;
    if (outcome > 0) {
        d->fleet->succeeded++;
    }
    pthread_mutex_unlock(&d->fleet->lock);
}

/* ---- the agent's MQTT operations, on the device's libmosquitto client ---- */

static ota_err_t op_subscribe(void *ctx, const char *topic, uint8_t qos)
{
    device_t *d = ctx;
    return mosquitto_subscribe(d->m, NULL, topic, qos) == MOSQ_ERR_SUCCESS ? OTA_OK : OTA_ERR_MQTT;
}

static ota_err_t op_unsubscribe(void *ctx, const char *topic)
{
    device_t *d = ctx;
    return mosquitto_unsubscribe(d->m, NULL, topic) == MOSQ_ERR_SUCCESS ? OTA_OK : OTA_ERR_MQTT;
}

static ota_err_t op_publish(void *ctx, const char *topic, const uint8_t *payload, size_t len,
                            uint8_t qos)
{
    device_t *d = ctx;
    if (len > (size_t)INT32_MAX ||
        mosquitto_publish(d->m, NULL, topic, (int)len, payload, qos, false) != MOSQ_ERR_SUCCESS) {
        return OTA_ERR_MQTT;
    }
    d->published++;
    return OTA_OK;
}

/* ---- libmosquitto callbacks (from within loop_read / loop_write) ---- */

static void cb_connect(struct mosquitto *m, void *obj, int rc)
{
    device_t *d = obj;
    (void)m;
    d->connack = rc == 0 ? 1 : -1;
}

static void cb_disconnect(struct mosquitto *m, void *obj, int rc)
{
    device_t *d = obj;
    (void)m;
    if (rc != 0 && (d->phase == PH_ONLINE || d->phase == PH_CONNECTING)) {
        d->link_lost = 1;
    }
}

static void cb_publish(struct mosquitto *m, void *obj, int mid)
{
    device_t *d = obj;
    (void)m;
    (void)mid;
    d->sent++;
}

static void cb_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    static const char no_job[] = "/jobs/$next/get/accepted";
    device_t *d = obj;
    size_t topic_len = strlen(msg->topic);
    (void)m;
    if (d->phase != PH_ONLINE || d->reset_requested || !d->agent_started) {
        return; /* a resetting device hears nothing */
    }
    if (!d->told_no_job && topic_len >= sizeof no_job - 1u &&
        strcmp(msg->topic + topic_len - (sizeof no_job - 1u), no_job) == 0) {
        d->told_no_job = 1;
        pthread_mutex_lock(&d->fleet->lock);
        d->fleet->told_no_job++;
        pthread_mutex_unlock(&d->fleet->lock);
    }
    (void)ota_agent_handle_message(&d->agent, msg->topic, topic_len, msg->payload,
                                   msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0u, now_ms());
}

/* ---- the agent's callbacks and the port's reset ---- */

static void on_job(void *ctx, const ota_job_t *job)
{
    device_t *d = ctx;
    d->file_size = job->file_size;
    if (d->job_at == 0.0) {
        d->job_at = bench_now();
    }
}

static void on_activate(void *ctx, const ota_job_t *job)
{
    device_t *d = ctx;
    (void)job;
    if (d->verified_at == 0.0) {
        d->verified_at = bench_now();
    }
}

static void on_self_test(void *ctx, const ota_job_t *job)
{
    device_t *d = ctx;
    (void)job;
    d->self_test_requested = 1;
}

static void on_outcome(void *ctx, const ota_agent_outcome_t *o)
{
    device_t *d = ctx;
    char text[192];
    if (o->status == OTA_OUTCOME_SUCCEEDED) {
        finish(d, 1, "SUCCEEDED");
    } else {
        snprintf(text, sizeof text, "%s: %s (%s)",
                 o->status == OTA_OUTCOME_FAILED ? "FAILED" : "CANCELED", o->reason, o->detail);
        finish(d, -1, text);
    }
}

/* The port's close_file (the file's signature check), timed. */
static ota_err_t timed_close_file(void *ctx, const ota_pal_file_t *file)
{
    double t = bench_now();
    ota_err_t err = g_port_close_file(ctx, file);
    if (t_loop != NULL) {
        loop_add_time(t_loop, &t_loop->port_s, bench_now() - t);
    }
    return err;
}

static void on_reset(void *ctx)
{
    device_t *d = ctx;
    d->reset_requested = 1; /* the power cycle follows once the agent's call returns */
}

/* ---- a device's boots ---- */

/* Runs the bootloader with fresh RAM, makes a new agent for the image that
 * booted and a new MQTT client, and queues the device for a connect. */
static int device_boot(device_t *d)
{
    ota_agent_config_t ac;
    ota_err_t err;
    char text[128];
    double t;

    memset(&d->agent, 0x5a, sizeof d->agent); /* RAM is not zero after a reset */
    d->agent_started = 0;
    d->reset_requested = 0;
    d->self_test_requested = 0;
    d->connected_once = 0;
    d->connack = 0;
    d->link_lost = 0;
    d->published = d->sent = 0;
    t = bench_now();
    err = flashsim_device_boot(&d->flash, &d->pal);
    loop_add_time(d->loop, &d->loop->boot_s, bench_now() - t);
    if (err == OTA_OK) {
        if (g_port_close_file == NULL) {
            g_port_close_file = d->pal.close_file; /* the first boot, before the loops start */
        }
        d->pal.close_file = timed_close_file;
    }
    if (err != OTA_OK) {
        snprintf(text, sizeof text, "the bootloader failed: %s", ota_err_str(err));
        finish(d, -1, text);
        set_phase(d, PH_UNREACHABLE);
        return -1;
    }
    memset(&ac, 0, sizeof ac);
    ac.thing_name = d->name;
    ac.app_version = d->flash.boot.version;
    ac.pal = &d->pal;
    ac.mqtt.ctx = d;
    ac.mqtt.subscribe = op_subscribe;
    ac.mqtt.unsubscribe = op_unsubscribe;
    ac.mqtt.publish = op_publish;
    ac.callbacks.ctx = d;
    ac.callbacks.job_received = on_job;
    ac.callbacks.self_test = on_self_test;
    ac.callbacks.verified = on_activate;
    ac.callbacks.outcome = on_outcome;
    err = ota_agent_init(&d->agent, &ac);
    if (err != OTA_OK) {
        snprintf(text, sizeof text, "the agent does not initialise: %s", ota_err_str(err));
        finish(d, -1, text);
        set_phase(d, PH_UNREACHABLE);
        return -1;
    }
    d->m = mosquitto_new(d->name, true, d);
    if (d->m == NULL ||
        mosquitto_int_option(d->m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311) !=
            MOSQ_ERR_SUCCESS ||
        mosquitto_int_option(d->m, MOSQ_OPT_TCP_NODELAY, 1) != MOSQ_ERR_SUCCESS ||
        mosquitto_username_pw_set(d->m, d->name, d->password) != MOSQ_ERR_SUCCESS) {
        finish(d, -1, "cannot make an MQTT client");
        set_phase(d, PH_UNREACHABLE);
        return -1;
    }
    mosquitto_connect_callback_set(d->m, cb_connect);
    mosquitto_disconnect_callback_set(d->m, cb_disconnect);
    mosquitto_publish_callback_set(d->m, cb_publish);
    mosquitto_message_callback_set(d->m, cb_message);
    d->boots++;
    enqueue(d);
    return 0;
}

static void add_stats(ota_agent_stats_t *sum, const ota_agent_stats_t *s)
{
    sum->requests += s->requests;
    sum->blocks_received += s->blocks_received;
    sum->blocks_duplicate += s->blocks_duplicate;
    sum->timeouts += s->timeouts;
}

/* The device resets: its connection closes without an MQTT DISCONNECT (as
 * when the firmware's process exits), and the device boots again. */
static void device_power_cycle(device_t *d)
{
    add_stats(&d->earlier, ota_agent_get_stats(&d->agent));
    if (d->m != NULL) {
        mosquitto_destroy(d->m);
        d->m = NULL;
    }
    loop_count(d->loop, &d->loop->reboots);
    (void)device_boot(d);
}

static int device_make(fleet_t *f, unsigned index)
{
    device_t *d = calloc(1, sizeof *d);
    f->dev[index] = d;
    if (d == NULL) {
        fprintf(stderr, "bench: out of memory for device %u\n", index);
        return -1;
    }
    d->fleet = f;
    d->loop = &f->loops[(unsigned long)index * f->n_loops / f->n];
    d->slot = (unsigned)(&f->dev[index] - d->loop->dev);
    snprintf(d->name, sizeof d->name, PREFIX "%u", index);
    ota_test_login_t login;
    if (bench_env_login(f->env, d->name, &login) != 0) {
        return -1;
    }
    snprintf(d->password, sizeof d->password, "%s", login.password);
    d->port = login.port; /* its thing file's broker (on a federation: one of two) */
    if (flashsim_device_create(&d->flash, &device_flash, f->factory, FACTORY_LEN) != 0) {
        fprintf(stderr, "bench: cannot make the simulated flash of %s\n", d->name);
        return -1;
    }
    d->flash.cfg.reset_fn = on_reset;
    d->flash.cfg.reset_ctx = d;
    return device_boot(d);
}

static void device_free(device_t *d)
{
    if (d == NULL) {
        return;
    }
    if (d->m != NULL) {
        mosquitto_destroy(d->m);
    }
    flashsim_device_destroy(&d->flash);
    free(d);
}

/* ---- the event loop ---- */

/* Starts queued connects while fewer than CONNECT_INFLIGHT wait for CONNACK. */
static void admit_connects(loop_t *l)
{
    while (l->q_len > 0u && l->connecting < l->connect_max) {
        device_t *d = l->dev[l->queue[l->q_head]];
        int rc;
        char text[128];
        l->q_head = (l->q_head + 1u) % l->n;
        l->q_len--;
        d->connack = 0;
        d->link_lost = 0;
        rc = d->connected_once ? mosquitto_reconnect(d->m)
                               : mosquitto_connect(d->m, "127.0.0.1", d->port, KEEPALIVE_S);
        if (rc != MOSQ_ERR_SUCCESS) {
            snprintf(text, sizeof text, "cannot connect: %s",
                     rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
            finish(d, -1, text);
            set_phase(d, PH_UNREACHABLE);
            continue;
        }
        set_phase(d, PH_CONNECTING);
        d->next_misc = bench_now() + MISC_EVERY_S;
        l->connecting++;
    }
}

static void read_socket(device_t *d)
{
    for (int k = 0; k < READ_BURST && d->m != NULL && mosquitto_socket(d->m) >= 0; k++) {
        errno = 0;
        if (mosquitto_loop_read(d->m, 1) != MOSQ_ERR_SUCCESS || errno == EAGAIN ||
            errno == EWOULDBLOCK) {
            break;
        }
    }
}

/* Timers and state changes of one device, outside libmosquitto's callbacks. */
static void device_step(device_t *d, double now, uint32_t ms)
{
    loop_t *l = d->loop;
    switch (d->phase) {
    case PH_CONNECTING:
        if (d->connack != 0 || d->link_lost || now - d->phase_since > CONNECT_TIMEOUT_S) {
            l->connecting--;
            if (d->connack > 0 && !d->link_lost) {
                ota_err_t err;
                int again = d->connected_once;
                d->connected_once = 1;
                set_phase(d, PH_ONLINE);
                if (d->agent_started) {
                    err = ota_agent_reconnected(&d->agent, ms);
                } else {
                    err = ota_agent_start(&d->agent, ms);
                    d->agent_started = err == OTA_OK;
                }
                d->next_poll_ms = ms + AGENT_POLL_MS;
                if (err != OTA_OK) {
                    char text[128];
                    snprintf(text, sizeof text, "the agent does not %s: %s",
                             again ? "carry on after a reconnect" : "start", ota_err_str(err));
                    finish(d, -1, text);
                }
            } else if (d->link_lost) {
                loop_count(l, &l->link_losses);
                enqueue(d);
            } else {
                finish(d, -1, d->connack < 0 ? "the broker refused the connection" : "no CONNACK");
                set_phase(d, PH_UNREACHABLE);
            }
        }
        break;
    case PH_ONLINE:
        if (d->link_lost) {
            loop_count(l, &l->link_losses);
            enqueue(d);
            break;
        }
        if (d->self_test_requested) {
            d->self_test_requested = 0;
            (void)ota_agent_self_test_result(&d->agent, 1, ms);
        }
        if (!d->reset_requested && (int32_t)(ms - d->next_poll_ms) >= 0) {
            uint32_t timeouts = ota_agent_get_stats(&d->agent)->timeouts;
            int unread = 0;
            d->next_poll_ms = ms + AGENT_POLL_MS;
            (void)ota_agent_poll(&d->agent, ms);
            /* A timeout while bytes wait unread in the socket: the answer (or
             * part of it) came, and this loop had not read it yet. */
            if (ota_agent_get_stats(&d->agent)->timeouts != timeouts &&
                ioctl(mosquitto_socket(d->m), FIONREAD, &unread) == 0 && unread > 0) {
                loop_count(l, &l->timeouts_unread);
            }
        }
        if (d->reset_requested) {
            set_phase(d, PH_RESETTING);
        }
        break;
    case PH_RESETTING:
        /* What the firmware's reset does: flush MQTT (briefly), then reset. */
        if ((d->sent >= d->published && !mosquitto_want_write(d->m)) || d->link_lost ||
            now - d->phase_since > FLUSH_TIMEOUT_S) {
            device_power_cycle(d);
        }
        break;
    default:
        break;
    }
    if ((d->phase == PH_ONLINE || d->phase == PH_CONNECTING || d->phase == PH_RESETTING) &&
        now >= d->next_misc) {
        d->next_misc = now + MISC_EVERY_S;
        (void)mosquitto_loop_misc(d->m);
    }
}

/* One turn of a loop: wait at most timeout_ms for a socket, read and write
 * what is ready, then the timers of every device of the loop. */
static void pump(loop_t *l, int timeout_ms)
{
    unsigned n = 0;
    double now, busy;
    uint32_t ms;

    admit_connects(l);
    for (unsigned i = 0; i < l->n; i++) {
        device_t *d = l->dev[i];
        int fd = d->m != NULL && d->phase != PH_QUEUED ? mosquitto_socket(d->m) : -1;
        if (fd < 0) {
            continue;
        }
        l->pfd[n].fd = fd;
        l->pfd[n].events = (short)(POLLIN | (mosquitto_want_write(d->m) ? POLLOUT : 0));
        l->pfd[n].revents = 0;
        l->pfd_dev[n] = i;
        n++;
    }
    int ready = poll(l->pfd, n, timeout_ms);
    double woke = bench_now();
    if (ready > 0) {
        for (unsigned k = 0; k < n; k++) {
            device_t *d = l->dev[l->pfd_dev[k]];
            if ((l->pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
                read_socket(d);
            }
            /* Messages handled above may have queued answers. */
            if (d->m != NULL && mosquitto_socket(d->m) >= 0 && mosquitto_want_write(d->m)) {
                (void)mosquitto_loop_write(d->m, 1);
            }
        }
    }
    now = bench_now();
    ms = now_ms();
    for (unsigned i = 0; i < l->n; i++) {
        device_step(l->dev[i], now, ms);
    }
    busy = bench_now() - woke;
    pthread_mutex_lock(&l->fleet->lock);
    if (busy > l->max_stall) {
        l->max_stall = busy;
    }
    pthread_mutex_unlock(&l->fleet->lock);
}

/* Sends what its devices have queued, then disconnects every one of them. */
static void loop_disconnect(loop_t *l)
{
    double until = bench_now() + FLUSH_TIMEOUT_S;
    for (;;) {
        int busy = 0;
        for (unsigned i = 0; i < l->n; i++) {
            device_t *d = l->dev[i];
            busy |= d->phase == PH_ONLINE && d->sent < d->published;
        }
        if (!busy || bench_now() > until) {
            break;
        }
        pump(l, POLL_MS);
    }
    for (unsigned i = 0; i < l->n; i++) {
        device_t *d = l->dev[i];
        if (d->m != NULL && mosquitto_socket(d->m) >= 0) {
            (void)mosquitto_disconnect(d->m);
        }
        set_phase(d, PH_UNREACHABLE);
    }
    for (int i = 0; i < 20; i++) {
        pump(l, POLL_MS);
    }
}

static int fleet_closing(fleet_t *f)
{
    int closing;
    pthread_mutex_lock(&f->lock);
    closing = f->closing;
    pthread_mutex_unlock(&f->lock);
    return closing;
}

/* A loop's thread: turns until the fleet closes, then disconnects its devices. */
static void *loop_main(void *arg)
{
    loop_t *l = arg;
    t_loop = l;
    while (!fleet_closing(l->fleet)) {
        pump(l, POLL_MS);
    }
    loop_disconnect(l);
    return NULL;
}

/* Starts the loops' threads. */
static int fleet_start(fleet_t *f)
{
    for (unsigned k = 0; k < f->n_loops; k++) {
        loop_t *l = &f->loops[k];
        if (pthread_create(&l->thread, NULL, loop_main, l) != 0) {
            fprintf(stderr, "bench: cannot start the devices' loop %u\n", k);
            return -1;
        }
        l->running = 1;
    }
    return 0;
}

/* Sends what is queued, disconnects every device and ends the loops' threads. */
static void fleet_stop(fleet_t *f)
{
    if (f->loops == NULL) {
        return;
    }
    pthread_mutex_lock(&f->lock);
    f->closing = 1;
    pthread_mutex_unlock(&f->lock);
    for (unsigned k = 0; k < f->n_loops; k++) {
        if (f->loops[k].running) {
            (void)pthread_join(f->loops[k].thread, NULL);
            f->loops[k].running = 0;
        }
    }
}

/* The fleet's counters, read under its lock. */
static void fleet_counts(fleet_t *f, unsigned *finished, unsigned *succeeded, unsigned *told)
{
    pthread_mutex_lock(&f->lock);
    *finished = f->finished;
    *succeeded = f->succeeded;
    if (told != NULL) {
        *told = f->told_no_job;
    }
    pthread_mutex_unlock(&f->lock);
}

/* The main thread waits a turn while the loops work. */
static void nap(void)
{
    struct timespec ts = {0, POLL_MS * 1000000L};
    (void)nanosleep(&ts, NULL);
}

static void fleet_free(fleet_t *f)
{
    fleet_stop(f);
    if (f->dev != NULL) {
        for (unsigned i = 0; i < f->n; i++) {
            device_free(f->dev[i]);
        }
    }
    if (f->loops != NULL) {
        for (unsigned k = 0; k < f->n_loops; k++) {
            free(f->loops[k].queue);
            free(f->loops[k].pfd);
            free(f->loops[k].pfd_dev);
        }
        pthread_mutex_destroy(&f->lock);
    }
    free(f->dev);
    free(f->loops);
    memset(f, 0, sizeof *f);
}

/* Makes n devices in loops slices of the fleet (not started). */
static int fleet_make(fleet_t *f, unsigned n, unsigned loops, const bench_env_t *env)
{
    memset(f, 0, sizeof *f);
    f->n = n;
    f->port = env->broker.port;
    f->env = env;
    f->n_loops = loops < n ? loops : n;
    f->dev = calloc(n, sizeof *f->dev);
    f->loops = calloc(f->n_loops, sizeof *f->loops);
    if (f->dev == NULL || f->loops == NULL) {
        fprintf(stderr, "bench: out of memory for %u devices\n", n);
        free(f->dev);
        free(f->loops);
        memset(f, 0, sizeof *f);
        return -1;
    }
    pthread_mutex_init(&f->lock, NULL);
    for (unsigned i = 0; i < n; i++) {
        loop_t *l = &f->loops[(unsigned long)i * f->n_loops / n];
        if (l->dev == NULL) {
            l->dev = &f->dev[i];
        }
        l->n++;
    }
    for (unsigned k = 0; k < f->n_loops; k++) {
        loop_t *l = &f->loops[k];
        l->fleet = f;
        l->connect_max = CONNECT_INFLIGHT / f->n_loops > 0u ? CONNECT_INFLIGHT / f->n_loops : 1u;
        l->queue = calloc(l->n, sizeof *l->queue);
        l->pfd = calloc(l->n, sizeof *l->pfd);
        l->pfd_dev = calloc(l->n, sizeof *l->pfd_dev);
        if (l->queue == NULL || l->pfd == NULL || l->pfd_dev == NULL) {
            fprintf(stderr, "bench: out of memory for %u devices\n", n);
            fleet_free(f);
            return -1;
        }
    }
    ota_test_image_make(f->factory, FACTORY_LEN, V1_0_0, 1u);
    for (unsigned i = 0; i < n; i++) {
        if (device_make(f, i) != 0) {
            fleet_free(f);
            return -1;
        }
    }
    return 0;
}

/* What the loops counted, added up: busy turn (the longest), signature checks,
 * lost connections, timeouts with bytes unread. reset: start again from 0. */
static void fleet_loop_stats(fleet_t *f, double *stall, double *port_s, double *boot_s,
                             unsigned *losses, unsigned *unread, int reset)
{
    *stall = *port_s = *boot_s = 0.0;
    *losses = *unread = 0;
    pthread_mutex_lock(&f->lock);
    for (unsigned k = 0; k < f->n_loops; k++) {
        loop_t *l = &f->loops[k];
        *stall = l->max_stall > *stall ? l->max_stall : *stall;
        *port_s += l->port_s;
        *boot_s += l->boot_s;
        *losses += l->link_losses;
        *unread += l->timeouts_unread;
        if (reset) {
            l->max_stall = l->port_s = l->boot_s = 0.0;
            l->timeouts_unread = 0;
        }
    }
    pthread_mutex_unlock(&f->lock);
}

/* ---- one configuration ---- */

typedef struct result {
    unsigned devices;
    int instances;
    double mib_per_s;
    double service_cpu_per_mib;
    double service_cpu;
    double broker_cpu;
    double devices_cpu;
    double p50;
    double p99;
    double first;
    double last;
    double create_s; /* otter job create */
    uint32_t image_bytes;
    uint32_t timeouts;
    uint32_t duplicates;
    uint32_t requests;
    unsigned link_losses;
    unsigned timeouts_unread;        /* timeouts with bytes waiting unread in the device's socket */
    unsigned loops;                  /* event loops (threads) driving the devices */
    double notice_p50;               /* t0 to the job document */
    double download_p50;             /* job document to verified file */
    double finish_p50;               /* verified file to SUCCEEDED: activation, reboot, self-test */
    double max_stall;                /* longest busy turn of a devices' loop */
    double port_check_s;             /* the devices' loops in the port's signature checks */
    double boot_check_s;             /* ... and in the bootloader at the reboots */
    double other_cpu;                /* CPU seconds of every other process on the machine */
    unsigned broker_drops;           /* broker log lines about dropped messages */
    unsigned long long svc_requests; /* from the services' stats lines */
    unsigned long long svc_blocks;
    unsigned long long svc_paused;
    unsigned long long svc_other_shard; /* requests an instance skipped as another's */
    unsigned long long svc_merged;      /* requests naming only blocks already waiting */
    unsigned long long svc_backlog_peak;
    int svc_stats; /* stats lines found */
} result_t;

typedef struct exec_count {
    unsigned succeeded;
    unsigned other;
} exec_count_t;

static int count_execution(void *ctx, const ota_store_execution_t *e)
{
    exec_count_t *c = ctx;
    if (e->status == OTA_STORE_EXEC_SUCCEEDED) {
        c->succeeded++;
    } else {
        c->other++;
    }
    return 0;
}

/* Waits (pumping the fleet) until the store records every execution SUCCEEDED. */
static int check_store(bench_env_t *env, fleet_t *f)
{
    ota_store_t *store = NULL;
    exec_count_t c = {0, 0};
    double until = bench_now() + STORE_TIMEOUT_S, next = 0.0;
    if (ota_store_open(env->dir, &store) != OTA_STORE_OK) {
        fprintf(stderr, "bench: cannot open the store in %s\n", env->dir);
        return -1;
    }
    while (bench_now() < until) {
        if (bench_now() >= next) {
            next = bench_now() + 0.2;
            memset(&c, 0, sizeof c);
            if (ota_store_execution_list(store, JOB_ID, count_execution, &c) == OTA_STORE_OK &&
                c.succeeded == f->n) {
                break;
            }
        }
        nap();
    }
    ota_store_close(store);
    if (c.succeeded != f->n) {
        fprintf(stderr, "bench: the store records %u of %u executions SUCCEEDED (%u other)\n",
                c.succeeded, f->n, c.other);
        return -1;
    }
    return 0;
}

/* Adds up the "stats:" lines the services print when they stop. */
static void read_service_stats(const bench_env_t *env, result_t *r)
{
    char path[400], line[1024];
    for (int i = 0; i < BENCH_ENV_MAX_SERVICES; i++) {
        FILE *fp;
        unsigned long long req = 0, blocks = 0, paused = 0, peak = 0, other = 0, merged = 0;
        int found = 0;
        snprintf(path, sizeof path, "%s/service%d.log", env->dir, i);
        fp = fopen(path, "r");
        if (fp == NULL) {
            continue;
        }
        while (fgets(line, sizeof line, fp) != NULL) {
            const char *p = strstr(line, "stats: stream_requests=");
            const char *q;
            if (p == NULL) {
                continue;
            }
            found = sscanf(p, "stats: stream_requests=%llu", &req) == 1;
            q = strstr(p, " blocks=");
            found = found && q != NULL && sscanf(q, " blocks=%llu", &blocks) == 1;
            q = strstr(p, " other_shard=");
            found = found && q != NULL && sscanf(q, " other_shard=%llu", &other) == 1;
            q = strstr(p, " backlog_peak=");
            found = found && q != NULL && sscanf(q, " backlog_peak=%llu", &peak) == 1;
            q = strstr(p, " paused=");
            found = found && q != NULL && sscanf(q, " paused=%llu", &paused) == 1;
            q = strstr(p, " stream_merged=");
            found = found && q != NULL && sscanf(q, " stream_merged=%llu", &merged) == 1;
        }
        fclose(fp);
        if (found) {
            r->svc_stats++;
            r->svc_requests += req;
            r->svc_blocks += blocks;
            r->svc_paused += paused;
            r->svc_merged += merged;
            r->svc_other_shard += other;
            if (peak > r->svc_backlog_peak) {
                r->svc_backlog_peak = peak;
            }
        }
    }
}

static double services_cpu(const bench_env_t *env)
{
    double sum = 0.0;
    for (int i = 0; i < env->services; i++) {
        sum += bench_env_cpu_seconds(env->service[i].pid);
    }
    return sum;
}

/* Connects the fleet (its loops running) and waits until every device was
 * told there is no job. On failure the loops are stopped. */
static int fleet_setup(fleet_t *f)
{
    double until = bench_now() + SETUP_TIMEOUT_S;
    unsigned finished = 0, succeeded = 0, told = 0;
    for (;;) {
        fleet_counts(f, &finished, &succeeded, &told);
        if (told >= f->n || finished > 0u || bench_now() >= until) {
            break;
        }
        nap();
    }
    if (told < f->n) {
        unsigned online = 0;
        fleet_stop(f);
        for (unsigned i = 0; i < f->n; i++) {
            online += f->dev[i]->agent_started;
        }
        fprintf(stderr,
                "bench: %u of %u devices connected, %u were told there is no job, before the "
                "job (limit %.0f s)\n",
                online, f->n, told, SETUP_TIMEOUT_S);
        for (unsigned i = 0; i < f->n; i++) {
            if (f->dev[i]->outcome < 0) {
                fprintf(stderr, "bench: %s: %s\n", f->dev[i]->name, f->dev[i]->reason);
                break;
            }
        }
        return -1;
    }
    return 0;
}

/* Names what went wrong: how many finished, the first failures and stragglers
 * (the loops stopped). */
static void report_failure(const fleet_t *f, double deadline_s)
{
    unsigned failed = f->finished - f->succeeded, failed_shown = 0, late_shown = 0;
    fprintf(stderr, "bench: %u of %u devices SUCCEEDED, %u failed, %u unfinished after %.0f s\n",
            f->succeeded, f->n, failed, f->n - f->finished, deadline_s);
    for (unsigned i = 0; i < f->n; i++) {
        const device_t *d = f->dev[i];
        if (d->outcome < 0 && failed_shown < 5u) {
            fprintf(stderr, "bench: %s: %s\n", d->name, d->reason);
            failed_shown++;
        } else if (d->outcome == 0 && late_shown < 5u) {
            fprintf(stderr, "bench: %s: unfinished, agent %s, boot %u\n", d->name,
                    d->agent_started ? ota_agent_state_str(ota_agent_get_state(&d->agent))
                                     : "not started",
                    d->boots);
            late_shown++;
        }
    }
}

/* CPU seconds every process on the machine has used so far (/proc/stat). */
static double machine_cpu_seconds(void)
{
    unsigned long long v[8] = {0};
    FILE *fp = fopen("/proc/stat", "r");
    int got;
    if (fp == NULL) {
        return 0.0;
    }
    got = fscanf(fp, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                 &v[4], &v[5], &v[6], &v[7]);
    fclose(fp);
    if (got != 8) {
        return 0.0;
    }
    /* user nice system idle iowait irq softirq steal: all but idle and iowait */
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
}

/* Lines of dir/name that contain needle (0 when the file cannot be read). */
static unsigned count_lines(const char *dir, const char *name, const char *needle)
{
    char path[600], line[1024];
    unsigned count = 0;
    FILE *fp;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    fp = fopen(path, "r");
    if (fp == NULL) {
        return 0;
    }
    while (fgets(line, sizeof line, fp) != NULL) {
        count += strstr(line, needle) != NULL;
    }
    fclose(fp);
    return count;
}

/* Completion times, their phases and the agents' counters of a finished run. */
static int summarise(const fleet_t *f, double t0, result_t *r)
{
    unsigned n = f->n;
    double *done = calloc(n, sizeof *done);
    double *notice = calloc(n, sizeof *notice);
    double *download = calloc(n, sizeof *download);
    double *rest = calloc(n, sizeof *rest);
    int rc = -1;
    if (done == NULL || notice == NULL || download == NULL || rest == NULL) {
        goto out;
    }
    r->first = 1e30;
    for (unsigned i = 0; i < n; i++) {
        const device_t *d = f->dev[i];
        ota_agent_stats_t s = d->earlier;
        add_stats(&s, ota_agent_get_stats(&d->agent));
        done[i] = d->done_at - t0;
        notice[i] = d->job_at - t0;
        download[i] = d->verified_at - d->job_at;
        rest[i] = d->done_at - d->verified_at;
        r->first = done[i] < r->first ? done[i] : r->first;
        r->last = done[i] > r->last ? done[i] : r->last;
        r->timeouts += s.timeouts;
        r->duplicates += s.blocks_duplicate;
        r->requests += s.requests;
        if (d->file_size > r->image_bytes) {
            r->image_bytes = d->file_size;
        }
    }
    r->p50 = bench_quantile(done, n, 0.5);
    r->p99 = bench_quantile(done, n, 0.99);
    r->notice_p50 = bench_quantile(notice, n, 0.5);
    r->download_p50 = bench_quantile(download, n, 0.5);
    r->finish_p50 = bench_quantile(rest, n, 0.5);
    {
        double mib = (double)n * (double)r->image_bytes / MIB;
        r->mib_per_s = mib / r->last;
        r->service_cpu_per_mib = r->service_cpu / mib;
    }
    rc = 0;
out:
    free(done);
    free(notice);
    free(download);
    free(rest);
    return rc;
}

/* 1: the runs use a federation of two brokers (--federate). */
static int g_federate;

static int run_config(unsigned n, int instances, const uint8_t *firmware, size_t len,
                      double deadline_s, result_t *r)
{
    bench_env_t env;
    fleet_t f;
    double t0, svc0, brk0, cpu0, machine0, until, setup;
    unsigned finished = 0, succeeded = 0, reboots = 0;
    int rc = -1, stored;

    memset(r, 0, sizeof *r);
    memset(&f, 0, sizeof f);
    r->devices = n;
    r->instances = instances;
    r->loops = g_loops < n ? g_loops : n;
    if ((g_federate ? bench_env_start_federated(&env) : bench_env_start(&env)) != 0) {
        return -1;
    }
    if (bench_env_add_things(&env, PREFIX, n, GROUP) != 0 ||
        bench_env_start_services(&env, instances) != 0) {
        goto out;
    }
    setup = bench_now();
    if (fleet_make(&f, n, g_loops, &env) != 0 || fleet_start(&f) != 0 || fleet_setup(&f) != 0) {
        goto out;
    }
    fprintf(stderr, "bench: %u devices online and idle after %.1f s\n", n, bench_now() - setup);

    t0 = bench_now();
    svc0 = services_cpu(&env);
    brk0 = bench_env_cpu_seconds(env.broker.proc.pid) +
           (env.federated ? bench_env_cpu_seconds(env.broker2.proc.pid) : 0.0);
    cpu0 = self_cpu_seconds();
    machine0 = machine_cpu_seconds();
    fleet_loop_stats(&f, &r->max_stall, &r->port_check_s, &r->boot_check_s, &r->link_losses,
                     &r->timeouts_unread, 1);
    if (bench_env_create_job(&env, JOB_ID, "group:" GROUP, firmware, len, NEW_VERSION) != 0) {
        goto out;
    }
    r->create_s = bench_now() - t0;
    until = t0 + deadline_s;
    for (;;) {
        fleet_counts(&f, &finished, &succeeded, NULL);
        if (finished >= n || bench_now() >= until) {
            break;
        }
        nap();
    }
    if (finished < n || succeeded < n) {
        fleet_stop(&f);
        report_failure(&f, deadline_s);
        fleet_loop_stats(&f, &r->max_stall, &r->port_check_s, &r->boot_check_s, &r->link_losses,
                         &r->timeouts_unread, 0);
        if (summarise(&f, t0, r) == 0) {
            fprintf(stderr,
                    "bench: %u timeouts (%u with bytes unread in the device's socket), %u "
                    "duplicate blocks; longest busy turn %.0f ms\n",
                    r->timeouts, r->timeouts_unread, r->duplicates, r->max_stall * 1e3);
        }
        goto out;
    }
    r->service_cpu = services_cpu(&env) - svc0;
    r->broker_cpu = bench_env_cpu_seconds(env.broker.proc.pid) +
                    (env.federated ? bench_env_cpu_seconds(env.broker2.proc.pid) : 0.0) - brk0;
    r->devices_cpu = self_cpu_seconds() - cpu0;

    r->other_cpu =
        machine_cpu_seconds() - machine0 - r->service_cpu - r->broker_cpu - r->devices_cpu;
    fleet_loop_stats(&f, &r->max_stall, &r->port_check_s, &r->boot_check_s, &r->link_losses,
                     &r->timeouts_unread, 0);
    /* The store, while the devices still run; then the loops stop, and their devices'
     * records are read. */
    stored = check_store(&env, &f);
    fleet_stop(&f);
    for (unsigned k = 0; k < f.n_loops; k++) {
        reboots += f.loops[k].reboots;
    }
    if (summarise(&f, t0, r) != 0) {
        goto out;
    }
    fprintf(stderr,
            "bench: %u devices, %d service instance%s: all SUCCEEDED, last after %.1f s "
            "(%u reboots, %u lost connections)\n",
            n, instances, instances > 1 ? "s" : "", r->last, reboots, r->link_losses);
    fprintf(stderr,
            "bench: %u timeouts (%u with bytes unread in the device's socket), %u duplicate "
            "blocks, service CPU %.4f s per MiB, devices CPU %.1f s, p50 %.2f s, p99 %.2f s, "
            "longest busy turn %.0f ms, other processes %.1f CPU s\n",
            r->timeouts, r->timeouts_unread, r->duplicates, r->service_cpu_per_mib, r->devices_cpu,
            r->p50, r->p99, r->max_stall * 1e3, r->other_cpu);
    if (stored != 0) {
        goto out;
    }
    rc = 0;
out:
    fleet_free(&f); /* stops the loops: they send what is queued and disconnect */
    /* Stop the services first: each prints its "stats:" line as it exits. */
    for (int i = env.services - 1; i >= 0; i--) {
        if (env.service[i].pid != 0) {
            ota_test_proc_stop(&env.service[i]);
        }
    }
    read_service_stats(&env, r);
    r->broker_drops = count_lines(env.broker.dir, "mosquitto.log", "dropped");
    if (rc != 0) {
        env.keep = 1;
    }
    bench_env_stop(&env);
    return rc;
}

/* ---- command line and table ---- */

static int parse_list(const char *s, unsigned *out, int *count, unsigned lo, unsigned hi)
{
    char *end;
    *count = 0;
    for (;;) {
        unsigned long v = strtoul(s, &end, 10);
        if (end == s || v < lo || v > hi || *count >= MAX_LIST) {
            return -1;
        }
        out[(*count)++] = (unsigned)v;
        if (*end == '\0') {
            return 0;
        }
        if (*end != ',') {
            return -1;
        }
        s = end + 1;
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_fleet [--devices 100,500,1000] [--image-kib 256] "
                    "[--instances 1,2] [--loops N] [--quick] [--federate (then --instances "
                    "1,2,3)]\n");
}

static void print_config_note(const result_t *r)
{
    double needed = (double)r->devices * (double)((r->image_bytes + 4095u) / 4096u);
    printf("- %u devices, %d instance%s: job create %.2f s, first completion %.1f s; medians: "
           "t0 to the job document %.2f s, download and verification %.2f s, activation, "
           "reboot, self-test and report %.2f s; %u timeouts, %u duplicate blocks, %.1f block "
           "requests per device",
           r->devices, r->instances, r->instances > 1 ? "s" : "", r->create_s, r->first,
           r->notice_p50, r->download_p50, r->finish_p50, r->timeouts, r->duplicates,
           (double)r->requests / r->devices);
    if (r->svc_stats == r->instances) {
        if (r->instances > 1) {
            printf("; the instances answered %llu stream requests between them (and skipped "
                   "%llu of the other shard's)",
                   r->svc_requests, r->svc_other_shard);
        } else {
            printf("; the service answered %llu stream requests", r->svc_requests);
        }
        printf(", dropped %llu that named only blocks still waiting to be sent, sent %.3f blocks "
               "per block needed; answers waiting for the broker peaked at %.1f MiB, reading "
               "paused %llu times",
               r->svc_merged, (double)r->svc_blocks / needed, (double)r->svc_backlog_peak / MIB,
               r->svc_paused);
    }
    printf("; the devices' %u loop%s spent %.2f s in the port's signature checks and %.2f s in "
           "the bootloader's",
           r->loops, r->loops > 1u ? "s" : "", r->port_check_s, r->boot_check_s);
    printf("; longest busy turn of a devices' loop %.0f ms; %u timeouts with bytes unread in the "
           "device's socket; %u lost connections; %u broker log lines about dropped messages; "
           "other processes on the machine %.1f CPU s.\n",
           r->max_stall * 1e3, r->timeouts_unread, r->link_losses, r->broker_drops,
           r->other_cpu > 0.0 ? r->other_cpu : 0.0);
}

static void print_table(const result_t *res, int count, unsigned image_kib)
{
    if (g_federate) {
        printf("## 7. A fleet on a federation of two brokers: one job, %u KiB image, N devices, "
               "1 to 3 service instances\n\n",
               image_kib);
        printf("headline: fleet on a federation of two Mosquitto brokers, all on this machine's "
               "%ld cores:",
               sysconf(_SC_NPROCESSORS_ONLN));
        for (int i = 0; i < count; i++) {
            printf("%s %.1f MiB/s with %d instance%s (%u devices)", i > 0 ? ";" : "",
                   res[i].mib_per_s, res[i].instances, res[i].instances > 1 ? "s" : "",
                   res[i].devices);
        }
        printf("\n");
    } else {
        printf("## 2. A fleet: one job, %u KiB image, N devices\n\n", image_kib);
    }
    printf("Method: N simulated devices (agent, simulated NOR flash with the otter bootloader, "
           "ECDSA P-256 verification; one libmosquitto client each; the devices split between "
           "event loops, one thread each) "
           "wait for a job; at t0 `otter job create --targets group:fleet` starts one job, and a "
           "device completes when its agent reports SUCCEEDED after download, verification, "
           "activation, reboot and self-test.\n\n");
    printf("| devices | service instances | aggregate MiB/s | service CPU s per MiB | broker CPU "
           "s | devices CPU s | median completion s | p99 completion s | timeouts |\n");
    printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < count; i++) {
        const result_t *r = &res[i];
        printf("| %u | %d | %.1f | %.4f | %.1f | %.1f | %.2f | %.2f | %u |\n", r->devices,
               r->instances, r->mib_per_s, r->service_cpu_per_mib, r->broker_cpu, r->devices_cpu,
               r->p50, r->p99, r->timeouts);
    }
    printf("\n");
    printf("- The machine has %ld cores, shared by the broker(s), the service instance(s) and "
           "all the devices (this process): the numbers are those of one small host, "
           "not of the service alone. CPU seconds run from t0 to the last completion; service "
           "CPU is the sum over the instances, broker CPU over the brokers.\n",
           sysconf(_SC_NPROCESSORS_ONLN));
    if (count > 0) {
        printf("- Image as served: %u bytes (%u KiB of firmware and otter's 32-byte header); "
               "aggregate = devices x image / time from t0 to the last completion; delivered "
               "MiB = devices x image. Agent defaults: 4 KiB blocks, 16 in flight, reset delay "
               "0.5 s.\n",
               res[0].image_bytes, image_kib);
    }
    if (g_federate) {
        printf("- Two brokers as `otter broker init --shared-streams --federate` writes them, both "
               "on this machine: the hub (the service instances connect to it; a bridge to "
               "itself makes the stream requests shareable) and broker 2 (bridged to the hub). "
               "`thing create` spreads the devices over both by name; every message of broker 2's "
               "devices crosses the bridge. The instances share the stream requests "
               "(`$share/otter-streams`): the first in role all (it also serves the Jobs API), "
               "the others in role streams. All of it, the devices included, shares the same "
               "cores, so more instances can only show what the split costs or gains on one "
               "machine, not what more machines would give.\n");
    } else {
        printf("- Two instances split the stream requests by thing (`--shard K/2`); the first "
               "one also serves the Jobs API.\n");
    }
    for (int i = 0; i < count; i++) {
        print_config_note(&res[i]);
    }
}

/**
 * Runs the fleet benchmark (see the top of this file) and prints its table.
 * @return 0 when every device of every configuration SUCCEEDED; 1 on a failed
 *         run; 2 on a wrong command line.
 */
int main(int argc, char **argv)
{
    unsigned devices[MAX_LIST] = {100u, 500u, 1000u};
    unsigned instances[MAX_LIST] = {1u, 2u};
    int n_devices = 3, n_instances = 2, quick = 0, count = 0, rc = 0;
    unsigned image_kib = 256u;
    int devices_given = 0, kib_given = 0;
    result_t results[MAX_LIST * MAX_LIST];
    uint8_t *firmware;
    uint32_t x = 0x2545f491u;
    double started = bench_now();

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--devices") == 0 && i + 1 < argc) {
            devices_given = 1;
            if (parse_list(argv[++i], devices, &n_devices, 1u, MAX_DEVICES) != 0) {
                fprintf(stderr, "bench: --devices takes a list of 1 .. %u\n", MAX_DEVICES);
                return 2;
            }
        } else if (strcmp(argv[i], "--instances") == 0 && i + 1 < argc) {
            if (parse_list(argv[++i], instances, &n_instances, 1u, BENCH_ENV_MAX_SERVICES) != 0) {
                fprintf(stderr, "bench: --instances takes a list of 1 .. %d\n",
                        BENCH_ENV_MAX_SERVICES);
                return 2;
            }
        } else if (strcmp(argv[i], "--image-kib") == 0 && i + 1 < argc) {
            char *end;
            unsigned long v = strtoul(argv[++i], &end, 10);
            kib_given = 1;
            if (*end != '\0' || v < 1u || v > 480u) {
                fprintf(stderr, "bench: --image-kib takes 1 .. 480 (the device's slot)\n");
                return 2;
            }
            image_kib = (unsigned)v;
        } else if (strcmp(argv[i], "--loops") == 0 && i + 1 < argc) {
            char *end;
            unsigned long v = strtoul(argv[++i], &end, 10);
            if (*end != '\0' || v < 1u || v > MAX_LOOPS) {
                fprintf(stderr, "bench: --loops takes 1 .. %u\n", MAX_LOOPS);
                return 2;
            }
            g_loops = (unsigned)v;
        } else if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--federate") == 0) {
            g_federate = 1;
        } else {
            usage();
            return 2;
        }
    }
    for (int j = 0; j < n_instances && !g_federate; j++) {
        if (instances[j] > 2u) {
            fprintf(stderr, "bench: 3 instances need --federate (2 at most split by --shard)\n");
            return 2;
        }
    }
    if (quick) {
        if (!devices_given) {
            devices[0] = 10u;
            n_devices = 1;
        }
        if (!kib_given) {
            image_kib = 32u;
        }
    }
    if (g_loops == 0u) {
        /* A core each is left to the broker and the service, which the fleet measures: on 2
         * cores, a second device loop took their CPU and gave 438 and 676 timeouts where one
         * loop gave 48 and 21 (docs/BENCHMARKS.md, section 2). */
        long cores = sysconf(_SC_NPROCESSORS_ONLN) - 2;
        g_loops = cores < 1 ? 1u : cores > (long)MAX_LOOPS ? MAX_LOOPS : (unsigned)cores;
    }
    firmware = malloc((size_t)image_kib * KIB);
    if (firmware == NULL) {
        return 1;
    }
    for (size_t i = 0; i < (size_t)image_kib * KIB; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        firmware[i] = (uint8_t)(x >> 24);
    }
    mosquitto_lib_init();
    for (int i = 0; i < n_devices && rc == 0; i++) {
        for (int j = 0; j < n_instances && rc == 0; j++) {
            double t = bench_now();
            fprintf(stderr, "bench: %u devices, %u service instance%s, %u KiB image\n", devices[i],
                    instances[j], instances[j] > 1u ? "s" : "", image_kib);
            if (run_config(devices[i], (int)instances[j], firmware, (size_t)image_kib * KIB,
                           quick ? QUICK_DEADLINE_S : DEADLINE_S, &results[count]) != 0) {
                fprintf(stderr, "bench: FAILED: %u devices, %u service instance%s\n", devices[i],
                        instances[j], instances[j] > 1u ? "s" : "");
                rc = 1;
                break;
            }
            fprintf(stderr, "bench: run took %.1f s\n", bench_now() - t);
            count++;
        }
    }
    mosquitto_lib_cleanup();
    free(firmware);
    if (rc == 0) {
        print_table(results, count, image_kib);
        fprintf(stderr, "bench: all runs took %.1f s\n", bench_now() - started);
    }
    return rc;
}
