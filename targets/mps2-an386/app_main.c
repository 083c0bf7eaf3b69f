/*
 * otter on mps2-an386: the application image. It starts the flash port on
 * the bootloader's decision, connects to the broker over UART0 with the
 * device MQTT client (client id = thing name, the provisioned username and
 * password), and runs the agent: jobs, downloads, verification, activation,
 * the self-test of a new image and its report.
 *
 * Built in several versions from this one source (BOARD_APP_MAJOR, _MINOR,
 * _BUILD); BOARD_APP_SELF_TEST_FAILS=1 makes an image whose self-test fails.
 * The self-test of a normal image passes when the broker is reachable.
 *
 * The console (semihosting) prints one line per event, and before every
 * reset the stack's high-water mark.
 */
#include <string.h>

#include "board.h"
#include "board_heap.h"
#include "board_layout.h"
#include "board_storage.h"
#include "otter/ota_agent.h"
#include "otter/ota_mqtt_client.h"
#include "otter/ota_port_flash.h"

#ifndef BOARD_APP_SELF_TEST_FAILS
#define BOARD_APP_SELF_TEST_FAILS 0
#endif

#define APP_VERSION                                                                                \
    (((uint32_t)BOARD_APP_MAJOR << 24) | ((uint32_t)BOARD_APP_MINOR << 16) |                       \
     (uint32_t)BOARD_APP_BUILD)

/* Blocks of 4 KiB, 4 in flight: about a second of the UART's throughput. */
#define APP_BLOCK_SIZE 4096u
#define APP_WINDOW_BLOCKS 4u
/* A data message: the block, its CBOR framing and its topic. */
#define APP_RX_SIZE (APP_BLOCK_SIZE + 512u)
#define APP_TX_SIZE 512u
#define APP_POLL_MS 100u
#define APP_FLUSH_MS 3000u

typedef struct app {
    board_storage_t storage;
    ota_port_flash_t port;
    ota_pal_t pal;
    ota_boot_result_t boot;
    ota_mqttc_t mqtt;
    ota_agent_t agent;
    uint8_t rx[APP_RX_SIZE];
    uint8_t tx[APP_TX_SIZE];
    uint8_t self_test_due;
    uint8_t agent_started;
    uint32_t last_poll;
} app_t;

static app_t g_app;

static const char *level_name(ota_log_level_t level)
{
    static const char *const names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    return (unsigned)level < 4u ? names[level] : "?";
}

static void log_stack(void)
{
    uint32_t size = board_stack_size();
    board_log("stack: %lu of %lu bytes used (high-water mark)",
              (unsigned long)(size - board_stack_unused()), (unsigned long)size);
}

/* ---- MQTT client callbacks ---- */

static void on_connect(void *ctx)
{
    app_t *a = ctx;
    uint32_t now = board_now_ms();
    board_log("mqtt: connected as %s", a->storage.prov.thing);
    ota_err_t err =
        a->agent_started ? ota_agent_reconnected(&a->agent, now) : ota_agent_start(&a->agent, now);
    if (err == OTA_OK) {
        if (!a->agent_started) {
            board_log("agent started");
        }
        a->agent_started = 1;
    } else {
        board_log("agent: start failed (%s)", ota_err_str(err));
    }
}

static void on_disconnect(void *ctx, ota_err_t err)
{
    (void)ctx;
    board_log("mqtt: connection lost (%s)", ota_err_str(err));
}

static void on_message(void *ctx, const char *topic, size_t topic_len, const uint8_t *payload,
                       size_t len)
{
    app_t *a = ctx;
    (void)ota_agent_handle_message(&a->agent, topic, topic_len, payload, len, board_now_ms());
}

/* ---- agent callbacks ---- */

static void cb_log(void *ctx, const ota_agent_event_t *ev)
{
    (void)ctx;
    if (ev->level == OTA_LOG_DEBUG) {
        return;
    }
    if (strcmp(ev->what, "job accepted") == 0) {
        board_log("INFO job accepted: %s, %lu bytes in %lu blocks", ev->job_id,
                  (unsigned long)ev->a, (unsigned long)ev->b);
        return;
    }
    if (strcmp(ev->what, "download resumed") == 0) {
        board_log("INFO download resumed: %lu of %lu blocks kept", (unsigned long)ev->a,
                  (unsigned long)ev->b);
        return;
    }
    board_log("%s %s%s%s%s%s%s%s", level_name(ev->level), ev->what, ev->detail[0] ? ": " : "",
              ev->detail, ev->err != OTA_OK ? " " : "",
              ev->err != OTA_OK ? ota_err_str(ev->err) : "", ev->job_id[0] ? " job " : "",
              ev->job_id);
}

static void cb_self_test(void *ctx, const ota_job_t *job)
{
    app_t *a = ctx;
    (void)job;
    a->self_test_due = 1;
}

static void cb_outcome(void *ctx, const ota_agent_outcome_t *o)
{
    (void)ctx;
    static const char *const names[] = {"SUCCEEDED", "FAILED", "CANCELED"};
    board_log("job %s %s: reason \"%s\"", o->job_id,
              (unsigned)o->status < 3u ? names[o->status] : "?", o->reason);
    log_stack();
}

/* The port's reset: let the last reports leave, then reset the core. */
static void app_reset(void *ctx)
{
    app_t *a = ctx;
    uint32_t t0 = board_now_ms();
    while (ota_mqttc_pending(&a->mqtt) > 0u && board_now_ms() - t0 < APP_FLUSH_MS &&
           ota_mqttc_get_state(&a->mqtt) == OTA_MQTTC_CONNECTED) {
        (void)ota_mqttc_poll(&a->mqtt, board_now_ms(), 0);
    }
    log_stack();
    board_log("reset");
    board_storage_close(&a->storage);
    board_reset();
}

static int run_self_test(app_t *a)
{
    if (BOARD_APP_SELF_TEST_FAILS) {
        board_log("INFO self-test: failed (this build's self-test fails)");
        return 0;
    }
    int ok = ota_mqttc_get_state(&a->mqtt) == OTA_MQTTC_CONNECTED;
    board_log("INFO self-test: %s (broker reachable)", ok ? "passed" : "failed");
    return ok;
}

static int start(app_t *a)
{
    board_handoff_t *h = board_handoff();
    if (h->magic != BOARD_HANDOFF_MAGIC) {
        board_log("app: not started by the bootloader");
        return 1;
    }
    a->boot = h->result;
    ota_err_t err = board_storage_open(&a->storage, 0);
    if (err != OTA_OK) {
        board_log("app: cannot use the flash file (%s)", ota_err_str(err));
        return 1;
    }
    board_provision_t *p = &a->storage.prov;
    static ota_verify_signer_t signer;
    signer.name = p->cert_name;
    signer.pem = p->pem;
    signer.pem_len = p->pem_len;
    ota_port_flash_config_t pc;
    ota_boot_layout_t layout = BOARD_BOOT_LAYOUT;
    memset(&pc, 0, sizeof pc);
    pc.flash = a->storage.flash;
    pc.layout = layout;
    pc.signers = &signer;
    pc.signer_count = 1;
    pc.reset_fn = app_reset;
    pc.reset_ctx = a;
    if ((err = ota_port_flash_init(&a->port, &pc, &a->boot, &a->pal)) != OTA_OK) {
        board_log("app: flash port: %s", ota_err_str(err));
        return 1;
    }

    ota_mqttc_config_t mc;
    memset(&mc, 0, sizeof mc);
    mc.transport = board_uart_transport();
    mc.callbacks.ctx = a;
    mc.callbacks.on_connect = on_connect;
    mc.callbacks.on_disconnect = on_disconnect;
    mc.callbacks.on_message = on_message;
    mc.client_id = p->thing;
    mc.username = p->username;
    mc.password = p->password;
    mc.keep_alive_s = 30;
    mc.rx_buf = a->rx;
    mc.rx_size = sizeof a->rx;
    mc.tx_buf = a->tx;
    mc.tx_size = sizeof a->tx;
    if ((err = ota_mqttc_init(&a->mqtt, &mc)) != OTA_OK) {
        board_log("app: mqtt: %s", ota_err_str(err));
        return 1;
    }

    ota_agent_config_t ac;
    memset(&ac, 0, sizeof ac);
    ac.thing_name = p->thing;
    ac.app_version = APP_VERSION;
    ac.device_type = BOARD_DEVICE_TYPE;
    ac.pal = &a->pal;
    ac.mqtt = ota_mqttc_interface(&a->mqtt);
    ac.callbacks.ctx = a;
    ac.callbacks.self_test = cb_self_test;
    ac.callbacks.outcome = cb_outcome;
    ac.callbacks.log = cb_log;
    ac.block_size = APP_BLOCK_SIZE;
    ac.window_blocks = APP_WINDOW_BLOCKS;
    /* A progress report per block: 16 small publishes per image, and the
     * service's progress bar moves with every block. */
    ac.status_every_blocks = 1;
    if ((err = ota_agent_init(&a->agent, &ac)) != OTA_OK) {
        board_log("app: agent: %s", ota_err_str(err));
        return 1;
    }
    return 0;
}

int main(void)
{
    app_t *a = &g_app;
    board_clock_start();
    board_heap_init();
    board_log("otter-app %u.%u.%u booted from slot %c (%s)", (unsigned)BOARD_APP_MAJOR,
              (unsigned)BOARD_APP_MINOR, (unsigned)BOARD_APP_BUILD,
              board_handoff()->result.slot ? 'B' : 'A',
              board_handoff()->result.pending ? "pending commit" : "committed");
    if (start(a) != 0) {
        return 1;
    }
    (void)ota_mqttc_connect(&a->mqtt, board_now_ms());
    for (;;) {
        uint32_t now = board_now_ms();
        (void)ota_mqttc_poll(&a->mqtt, now, 0);
        if (a->self_test_due) {
            a->self_test_due = 0;
            (void)ota_agent_self_test_result(&a->agent, run_self_test(a), now);
        }
        if (now - a->last_poll >= APP_POLL_MS) {
            a->last_poll = now;
            if (a->agent_started) {
                (void)ota_agent_poll(&a->agent, now);
            }
        }
    }
}
