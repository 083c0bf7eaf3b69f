/*
 * otter benchmark, table 4: CPU per byte on the device.
 *
 * Usage:
 *   bench_cpu agent BLOCK_SIZE   download a 1 MiB image through the agent
 *   bench_cpu floor BLOCK_SIZE   memcpy + SHA-256 of the same 1 MiB, block by block
 *
 * The image is 1 MiB (1,048,576 bytes) in otter's image header, signed with
 * the test key (test-keys/codesign-test.key) as the agent tests sign theirs.
 *
 * agent: a simulated microcontroller (the flash port with the bootloader on
 * a simulated NOR flash of 4 KiB sectors, write unit 8, erased 0xFF: two
 * 1 MiB slots, two progress banks and two boot-record sectors) runs the
 * agent with the given block size and the default window, checkpoint and
 * status settings. Everything the service would send is encoded before the
 * measurement: the job document and one CBOR data-block message per block
 * (libcbor). The agent is started and handed the job document in
 * bench_cpu_measured_start(). bench_cpu_measured_download() then only hands
 * the agent its block messages, in file order, through
 * ota_agent_handle_message() (and calls ota_agent_poll() every 100 ms of
 * simulated time) until the last block has been written and the port has
 * verified the file (SHA-256 of the slot, ECDSA P-256 against the test
 * certificate) and the agent is activating. The MQTT client is a stand-in
 * whose publish only keeps a copy of each block request.
 *
 * After the measurement the program checks the outcome and exits non-zero,
 * with a message, unless: the agent is activating and the activate callback
 * fired; no failure was reported; the port holds the file closed and
 * verified; the slot holds exactly the image; every block was written once,
 * with no duplicate, bad message or timeout; and every block had been
 * requested by the agent before it was delivered (decoding the recorded
 * requests with libcbor), so the run is one a real service could produce.
 *
 * floor: bench_cpu_measured_floor() copies each block of the image into a
 * 1 MiB buffer with memcpy and feeds the copy to mbed TLS's SHA-256 (the
 * implementation the port's verification uses); the digest is then checked
 * against a one-shot SHA-256 of the image.
 *
 * The measured functions are kept out of line so that bench/cpu.sh can count
 * their instructions with valgrind's callgrind (--toggle-collect). Each run
 * prints one line saying what it did; the exit status is 0 on success.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>
#include <mbedtls/base64.h>
#include <mbedtls/sha256.h>
#include <mbedtls/version.h>

#include "flashsim_device.h"
#include "otter/ota_agent.h"
#include "ota_conformance.h"
#include "ota_test_image.h"
#include "ota_test_util.h"

/* mbed TLS 3 renamed the SHA-256 "_ret" functions to the plain names. */
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#define BENCH_SHA256_STARTS mbedtls_sha256_starts
#define BENCH_SHA256_UPDATE mbedtls_sha256_update
#define BENCH_SHA256_FINISH mbedtls_sha256_finish
#define BENCH_SHA256 mbedtls_sha256
#else
#define BENCH_SHA256_STARTS mbedtls_sha256_starts_ret
#define BENCH_SHA256_UPDATE mbedtls_sha256_update_ret
#define BENCH_SHA256_FINISH mbedtls_sha256_finish_ret
#define BENCH_SHA256 mbedtls_sha256_ret
#endif

/* Out of line and not cloned: callgrind finds the measured code by name. */
#if defined(__GNUC__) && !defined(__clang__)
#define BENCH_MEASURED __attribute__((noinline, noclone))
#else
#define BENCH_MEASURED __attribute__((noinline))
#endif

#define BENCH_KIB 1024u
/* The image: 1 MiB, header included. */
#define BENCH_IMAGE_SIZE (1024u * BENCH_KIB)
#define BENCH_FACTORY_SIZE (4u * BENCH_KIB)
/* Flash: 4 KiB sectors, write unit 8; slots of exactly the image's size. */
#define BENCH_SECTOR (4u * BENCH_KIB)
#define BENCH_WRITE_UNIT 8u
#define BENCH_FLASH_SIZE (2u * BENCH_IMAGE_SIZE + 4u * BENCH_SECTOR)
#define BENCH_VERSION_OLD 0x01000000u /* 1.0.0, running */
#define BENCH_VERSION_NEW 0x01010000u /* 1.1.0, downloaded */
#define BENCH_THING "bench-1"
#define BENCH_TOPIC_PREFIX "$aws/things/" BENCH_THING "/"
#define BENCH_STREAM "AFR_OTA-bench"
#define BENCH_JOB_ID "bench-cpu"
/* A GetStream request: 45 bytes plus bitmap (at most 64 bytes) and token. */
#define BENCH_REQUEST_MAX 192u
/* Simulated time between two block messages, and between two polls. */
#define BENCH_MS_PER_BLOCK 1u
#define BENCH_POLL_MS 100u

/** One pre-encoded message. */
typedef struct bench_msg {
    uint8_t *payload;
    size_t len;
} bench_msg_t;

/** A copy of one block request the agent published. */
typedef struct bench_request {
    uint8_t msg[BENCH_REQUEST_MAX];
    size_t len;
    /** Block messages handed to the agent when it sent this request, the
     * one being handled included (0: before the first block). */
    uint32_t stamp;
} bench_request_t;

/** Everything one agent run needs; heap-allocated (it is large). */
typedef struct bench_run {
    ota_agent_t agent;
    flashsim_device_t dev;
    ota_pal_t pal;
    const uint8_t *image;
    uint32_t block_size;
    uint32_t block_count;

    /* What the service sends, encoded before the measurement. */
    char job_topic[128];
    char *job_msg;
    size_t job_len;
    char data_topic[128];
    size_t data_topic_len;
    bench_msg_t *blocks;

    /* Simulated time and progress. */
    uint32_t now;
    uint32_t last_poll;
    uint32_t delivered;

    /* What the agent did. */
    bench_request_t *requests;
    uint32_t nrequests;
    uint32_t max_requests;
    int request_overflow;
    uint32_t statuses;
    int activated;
    int failed;
    char failure[160];
} bench_run_t;

/**
 * The start, measured apart from the download: start the agent and hand it
 * the job document (parse, create the file, first checkpoint and request).
 * @param run a prepared run whose agent is initialised and stopped.
 * @return 0 if the agent is downloading afterwards, -1 otherwise.
 */
int bench_cpu_measured_start(bench_run_t *run);

/**
 * The measured download: hand the agent every pre-encoded block message,
 * polling every BENCH_POLL_MS of simulated time, until the last block.
 * @param run a run whose agent is downloading (after bench_cpu_measured_start).
 * @return 0 if the agent is activating afterwards (the port verified the
 *         file), -1 otherwise.
 */
int bench_cpu_measured_download(bench_run_t *run);

/**
 * The floor: copy image[0..len) into dst block by block with memcpy and hash
 * each copied block with mbed TLS's SHA-256.
 * @param image the source bytes (len of them).
 * @param dst receives the copy; len bytes.
 * @param len bytes to copy and hash.
 * @param block_size bytes per block (> 0); the last block may be short.
 * @param digest receives the SHA-256 of the copy.
 * @return 0; -1 if mbed TLS reports an error.
 */
int bench_cpu_measured_floor(const uint8_t *image, uint8_t *dst, uint32_t len, uint32_t block_size,
                             uint8_t digest[32]);

/* ---- the agent's MQTT client and callbacks --------------------------------------- */

static ota_err_t bench_subscribe(void *ctx, const char *topic, uint8_t qos)
{
    (void)ctx;
    (void)topic;
    (void)qos;
    return OTA_OK;
}

static ota_err_t bench_unsubscribe(void *ctx, const char *topic)
{
    (void)ctx;
    (void)topic;
    return OTA_OK;
}

/* Keeps a copy of each block request; counts the other publishes (status updates). */
static ota_err_t bench_publish(void *ctx, const char *topic, const uint8_t *payload, size_t len,
                               uint8_t qos)
{
    static const char suffix[] = "/get/cbor";
    bench_run_t *run = ctx;
    size_t tl = strlen(topic);
    (void)qos;
    if (tl >= sizeof suffix - 1u &&
        memcmp(topic + tl - (sizeof suffix - 1u), suffix, sizeof suffix - 1u) == 0) {
        if (run->nrequests >= run->max_requests || len > BENCH_REQUEST_MAX) {
            run->request_overflow = 1;
            return OTA_OK;
        }
        bench_request_t *r = &run->requests[run->nrequests++];
        memcpy(r->msg, payload, len);
        r->len = len;
        r->stamp = run->delivered;
    } else {
        run->statuses++;
    }
    return OTA_OK;
}

static void bench_on_activate(void *ctx, const ota_job_t *job)
{
    bench_run_t *run = ctx;
    (void)job;
    run->activated = 1;
}

static void bench_on_outcome(void *ctx, const ota_agent_outcome_t *outcome)
{
    bench_run_t *run = ctx;
    run->failed = 1;
    (void)snprintf(run->failure, sizeof run->failure, "outcome %d: %s %s", (int)outcome->status,
                   outcome->reason, outcome->detail);
}

/* ---- the measured functions ------------------------------------------------------ */

BENCH_MEASURED int bench_cpu_measured_start(bench_run_t *run)
{
    if (ota_agent_start(&run->agent, run->now) != OTA_OK) {
        return -1;
    }
    if (ota_agent_handle_message(&run->agent, run->job_topic, strlen(run->job_topic),
                                 (const uint8_t *)run->job_msg, run->job_len, run->now) != OTA_OK) {
        return -1;
    }
    return ota_agent_get_state(&run->agent) == OTA_AGENT_DOWNLOADING ? 0 : -1;
}

BENCH_MEASURED int bench_cpu_measured_download(bench_run_t *run)
{
    for (uint32_t k = 0; k < run->block_count; k++) {
        run->now += BENCH_MS_PER_BLOCK;
        run->delivered = k + 1u;
        if (ota_agent_handle_message(&run->agent, run->data_topic, run->data_topic_len,
                                     run->blocks[k].payload, run->blocks[k].len,
                                     run->now) != OTA_OK) {
            return -1;
        }
        if (run->now - run->last_poll >= BENCH_POLL_MS) {
            run->last_poll = run->now;
            if (ota_agent_poll(&run->agent, run->now) != OTA_OK) {
                return -1;
            }
        }
    }
    return ota_agent_get_state(&run->agent) == OTA_AGENT_ACTIVATING ? 0 : -1;
}

BENCH_MEASURED int bench_cpu_measured_floor(const uint8_t *image, uint8_t *dst, uint32_t len,
                                            uint32_t block_size, uint8_t digest[32])
{
    mbedtls_sha256_context sha;
    int rc = 0;
    mbedtls_sha256_init(&sha);
    if (BENCH_SHA256_STARTS(&sha, 0) != 0) {
        rc = -1;
    }
    for (uint32_t off = 0; rc == 0 && off < len; off += block_size) {
        uint32_t n = len - off < block_size ? len - off : block_size;
        memcpy(dst + off, image + off, n);
        if (BENCH_SHA256_UPDATE(&sha, dst + off, n) != 0) {
            rc = -1;
        }
    }
    if (rc == 0 && BENCH_SHA256_FINISH(&sha, digest) != 0) {
        rc = -1;
    }
    mbedtls_sha256_free(&sha);
    return rc;
}

/* ---- preparing the messages ------------------------------------------------------- */

static int add_pair(cbor_item_t *map, const char *key, cbor_item_t *value)
{
    struct cbor_pair pair;
    if (value == NULL) {
        return -1;
    }
    pair.key = cbor_move(cbor_build_string(key));
    pair.value = cbor_move(value);
    return cbor_map_add(map, pair) ? 0 : -1;
}

/* The data-block message of block index, as the otter service encodes it. */
static int encode_block(const bench_run_t *run, uint32_t index, bench_msg_t *out)
{
    uint32_t off = index * run->block_size;
    uint32_t len =
        BENCH_IMAGE_SIZE - off < run->block_size ? BENCH_IMAGE_SIZE - off : run->block_size;
    cbor_item_t *map = cbor_new_definite_map(5);
    unsigned char *buf = NULL;
    size_t cap = 0;
    int rc = -1;
    if (map != NULL && add_pair(map, "c", cbor_build_string("otter")) == 0 &&
        add_pair(map, "f", cbor_build_uint32(0)) == 0 &&
        add_pair(map, "i", cbor_build_uint32(index)) == 0 &&
        add_pair(map, "l", cbor_build_uint32(len)) == 0 &&
        add_pair(map, "p", cbor_build_bytestring(run->image + off, len)) == 0) {
        out->len = cbor_serialize_alloc(map, &buf, &cap);
        out->payload = buf;
        rc = out->len != 0u ? 0 : -1;
    }
    if (map != NULL) {
        cbor_decref(&map);
    }
    return rc;
}

/* The $next/get answer holding the job: one firmware file, signed. */
static int make_job_message(bench_run_t *run, const uint8_t *sig, size_t sig_len)
{
    char b64[128];
    size_t b64_len = 0;
    int n;
    if (mbedtls_base64_encode((unsigned char *)b64, sizeof b64, &b64_len, sig, sig_len) != 0) {
        return -1;
    }
    run->job_msg = malloc(2048);
    if (run->job_msg == NULL) {
        return -1;
    }
    n = snprintf(
        run->job_msg, 2048,
        "{\"clientToken\":\"otter\",\"timestamp\":1700000002,\"execution\":{\"jobId\":\"%s\","
        "\"thingName\":\"" BENCH_THING "\",\"status\":\"QUEUED\",\"queuedAt\":1700000000,"
        "\"lastUpdatedAt\":1700000001,\"versionNumber\":1,\"executionNumber\":1,"
        "\"jobDocument\":{\"afr_ota\":{\"protocols\":[\"MQTT\"],\"streamname\":\"%s\","
        "\"files\":[{\"filepath\":\"firmware.bin\",\"filesize\":%u,\"fileid\":0,"
        "\"certfile\":\"%s\",\"fileType\":0,\"update_data_url\":null,\"auth_scheme\":null,"
        "\"sig-sha256-ecdsa\":\"%s\"}]}}}}",
        BENCH_JOB_ID, BENCH_STREAM, (unsigned)BENCH_IMAGE_SIZE, OTA_CONFORMANCE_CERT, b64);
    if (n < 0 || n >= 2048) {
        return -1;
    }
    run->job_len = (size_t)n;
    (void)snprintf(run->job_topic, sizeof run->job_topic, "%s",
                   BENCH_TOPIC_PREFIX "jobs/$next/get/accepted");
    n = snprintf(run->data_topic, sizeof run->data_topic, "%sstreams/%s/data/cbor",
                 BENCH_TOPIC_PREFIX, BENCH_STREAM);
    if (n < 0 || (size_t)n >= sizeof run->data_topic) {
        return -1;
    }
    run->data_topic_len = (size_t)n;
    return 0;
}

static void run_free(bench_run_t *run)
{
    if (run == NULL) {
        return;
    }
    if (run->blocks != NULL) {
        for (uint32_t k = 0; k < run->block_count; k++) {
            free(run->blocks[k].payload);
        }
    }
    free(run->blocks);
    free(run->requests);
    free(run->job_msg);
    flashsim_device_destroy(&run->dev);
    free(run);
}

/* A device running 1.0.0 on a fresh flash, an agent, and every message encoded. */
static bench_run_t *run_new(const uint8_t *image, const uint8_t *sig, size_t sig_len,
                            uint32_t block_size)
{
    static uint8_t factory[BENCH_FACTORY_SIZE];
    const flashsim_variant_t variant = {
        {BENCH_FLASH_SIZE, BENCH_SECTOR, NULL, 0, BENCH_WRITE_UNIT, 0xff},
        {{0, 0}, 0, {0, 0}, {0, 0}, 0}};
    ota_agent_config_t cfg;
    bench_run_t *run = calloc(1, sizeof *run);
    if (run == NULL) {
        fprintf(stderr, "bench_cpu: out of memory\n");
        return NULL;
    }
    run->image = image;
    run->block_size = block_size;
    run->block_count = (BENCH_IMAGE_SIZE + block_size - 1u) / block_size;
    run->now = 1000;
    run->last_poll = run->now;
    ota_test_image_make(factory, BENCH_FACTORY_SIZE, BENCH_VERSION_OLD, 1);
    if (flashsim_device_create(&run->dev, &variant, factory, BENCH_FACTORY_SIZE) != 0 ||
        flashsim_device_boot(&run->dev, &run->pal) != OTA_OK) {
        fprintf(stderr, "bench_cpu: cannot set up the simulated device\n");
        run_free(run);
        return NULL;
    }
    if (run->pal.max_file_size < BENCH_IMAGE_SIZE) {
        fprintf(stderr, "bench_cpu: the slot (%u B) is smaller than the image\n",
                (unsigned)run->pal.max_file_size);
        run_free(run);
        return NULL;
    }

    memset(&cfg, 0, sizeof cfg);
    cfg.thing_name = BENCH_THING;
    cfg.app_version = BENCH_VERSION_OLD;
    cfg.pal = &run->pal;
    cfg.mqtt.ctx = run;
    cfg.mqtt.subscribe = bench_subscribe;
    cfg.mqtt.unsubscribe = bench_unsubscribe;
    cfg.mqtt.publish = bench_publish;
    cfg.callbacks.ctx = run;
    cfg.callbacks.verified = bench_on_activate;
    cfg.callbacks.outcome = bench_on_outcome;
    cfg.block_size = block_size;
    if (ota_agent_init(&run->agent, &cfg) != OTA_OK) {
        fprintf(stderr, "bench_cpu: the agent refuses block size %u\n", (unsigned)block_size);
        run_free(run);
        return NULL;
    }

    /* Every request asks for at least one missing block. */
    run->max_requests = run->block_count + 16u;
    run->requests = calloc(run->max_requests, sizeof *run->requests);
    run->blocks = calloc(run->block_count, sizeof *run->blocks);
    if (run->requests == NULL || run->blocks == NULL || make_job_message(run, sig, sig_len) != 0) {
        fprintf(stderr, "bench_cpu: cannot prepare the messages\n");
        run_free(run);
        return NULL;
    }
    for (uint32_t k = 0; k < run->block_count; k++) {
        if (encode_block(run, k, &run->blocks[k]) != 0) {
            fprintf(stderr, "bench_cpu: cannot encode block %u\n", (unsigned)k);
            run_free(run);
            return NULL;
        }
    }
    return run;
}

/* ---- checking the outcome --------------------------------------------------------- */

static int map_uint(cbor_item_t *map, const char *key, uint32_t *out)
{
    cbor_item_t *v = ota_test_map_get(map, key);
    if (v == NULL || !cbor_isa_uint(v) || cbor_get_int(v) > UINT32_MAX) {
        return -1;
    }
    *out = (uint32_t)cbor_get_int(v);
    return 0;
}

/*
 * Decode the recorded requests; first[k] gets the stamp of the first request
 * that asked for block k (UINT32_MAX if none did).
 */
static int requested_at(const bench_run_t *run, uint32_t *first)
{
    for (uint32_t k = 0; k < run->block_count; k++) {
        first[k] = UINT32_MAX;
    }
    for (uint32_t q = 0; q < run->nrequests; q++) {
        const bench_request_t *r = &run->requests[q];
        struct cbor_load_result res;
        cbor_item_t *req = cbor_load(r->msg, r->len, &res);
        cbor_item_t *bitmap;
        uint32_t offset = 0, wanted = 0, l = 0, asked = 0;
        int ok = req != NULL && res.error.code == CBOR_ERR_NONE && cbor_isa_map(req) &&
                 map_uint(req, "o", &offset) == 0 && map_uint(req, "n", &wanted) == 0 &&
                 map_uint(req, "l", &l) == 0 && l == run->block_size;
        bitmap = ok ? ota_test_map_get(req, "b") : NULL;
        if (bitmap == NULL || !cbor_isa_bytestring(bitmap)) {
            if (req != NULL) {
                cbor_decref(&req);
            }
            fprintf(stderr, "bench_cpu: request %u does not decode\n", (unsigned)q);
            return -1;
        }
        const uint8_t *b = cbor_bytestring_handle(bitmap);
        size_t bits = cbor_bytestring_length(bitmap) * 8u;
        for (size_t i = 0; i < bits && asked < wanted; i++) {
            uint64_t k = (uint64_t)offset + i;
            if (((b[i / 8u] >> (i % 8u)) & 1u) == 0u || k >= run->block_count) {
                continue;
            }
            asked++;
            if (first[k] == UINT32_MAX) {
                first[k] = r->stamp;
            }
        }
        cbor_decref(&req);
    }
    return 0;
}

/* Everything a verified download leaves behind; prints what is wrong. */
static int check_download(bench_run_t *run)
{
    const ota_agent_stats_t *st = ota_agent_get_stats(&run->agent);
    uint32_t slot = run->dev.cfg.layout.slot_addr[run->dev.port.target_slot];
    uint32_t *first;
    int ok = 1;

    if (run->failed) {
        fprintf(stderr, "bench_cpu: the agent reported a failure: %s\n", run->failure);
        ok = 0;
    }
    if (ota_agent_get_state(&run->agent) != OTA_AGENT_ACTIVATING || !run->activated) {
        fprintf(stderr, "bench_cpu: the agent is %s, not activating a verified image\n",
                ota_agent_state_str(ota_agent_get_state(&run->agent)));
        ok = 0;
    }
    if (run->dev.port.phase != (uint8_t)OTA_PORT_FLASH_CLOSED || run->dev.port.invalid) {
        fprintf(stderr, "bench_cpu: the port did not close the file as verified\n");
        ok = 0;
    }
    if (memcmp(run->dev.mem + slot, run->image, BENCH_IMAGE_SIZE) != 0) {
        fprintf(stderr, "bench_cpu: the slot does not hold the image\n");
        ok = 0;
    }
    if (st->blocks_received != run->block_count || st->blocks_duplicate != 0u ||
        st->bad_messages != 0u || st->timeouts != 0u) {
        fprintf(stderr,
                "bench_cpu: blocks received %u of %u, duplicates %u, bad messages %u, "
                "timeouts %u\n",
                (unsigned)st->blocks_received, (unsigned)run->block_count,
                (unsigned)st->blocks_duplicate, (unsigned)st->bad_messages, (unsigned)st->timeouts);
        ok = 0;
    }
    if (run->request_overflow) {
        fprintf(stderr, "bench_cpu: more block requests than expected\n");
        return -1;
    }
    first = malloc(run->block_count * sizeof *first);
    if (first == NULL || requested_at(run, first) != 0) {
        free(first);
        return -1;
    }
    for (uint32_t k = 0; k < run->block_count; k++) {
        /* Block k is message k + 1; its request must have left before it. */
        if (first[k] == UINT32_MAX || first[k] > k) {
            fprintf(stderr, "bench_cpu: block %u was delivered before the agent asked for it\n",
                    (unsigned)k);
            ok = 0;
            break;
        }
    }
    free(first);
    return ok ? 0 : -1;
}

/* ---- modes ------------------------------------------------------------------------ */

static int run_agent(const uint8_t *image, uint32_t block_size)
{
    uint8_t sig[OTA_PAL_SIGNATURE_MAX];
    size_t sig_len = 0;
    bench_run_t *run;
    uint32_t erases;
    uint32_t programs;
    int rc;

    if (ota_test_image_sign(image, BENCH_IMAGE_SIZE, sig, &sig_len) != 0) {
        fprintf(stderr, "bench_cpu: cannot sign the image with the test key\n");
        return -1;
    }
    run = run_new(image, sig, sig_len, block_size);
    if (run == NULL) {
        return -1;
    }
    if (bench_cpu_measured_start(run) != 0) {
        fprintf(stderr, "bench_cpu: the agent did not start downloading (%s)\n",
                run->failed ? run->failure : ota_agent_state_str(ota_agent_get_state(&run->agent)));
        run_free(run);
        return -1;
    }
    erases = run->dev.sim.erase_ops;
    programs = run->dev.sim.program_ops;
    rc = bench_cpu_measured_download(run);
    if (rc != 0) {
        fprintf(stderr, "bench_cpu: the download did not complete\n");
    }
    if (check_download(run) != 0) {
        rc = -1;
    }
    if (rc == 0) {
        const ota_agent_stats_t *st = ota_agent_get_stats(&run->agent);
        printf("bench_cpu agent: %u B in %u blocks of %u B, window %u, %u requests, "
               "%u checkpoints, %u status updates, flash %u erases and %u programs; "
               "verified (ECDSA P-256, SHA-256), activating; mbed TLS %s\n",
               (unsigned)BENCH_IMAGE_SIZE, (unsigned)run->block_count, (unsigned)block_size,
               (unsigned)run->agent.stats.window_blocks, (unsigned)st->requests,
               (unsigned)st->checkpoints, (unsigned)run->statuses,
               (unsigned)(run->dev.sim.erase_ops - erases),
               (unsigned)(run->dev.sim.program_ops - programs), MBEDTLS_VERSION_STRING);
    }
    run_free(run);
    return rc;
}

static int run_floor(const uint8_t *image, uint32_t block_size)
{
    uint8_t digest[32];
    uint8_t expect[32];
    uint8_t *dst = malloc(BENCH_IMAGE_SIZE);
    int rc = 0;

    if (dst == NULL) {
        fprintf(stderr, "bench_cpu: out of memory\n");
        return -1;
    }
    memset(dst, 0, BENCH_IMAGE_SIZE);
    if (bench_cpu_measured_floor(image, dst, BENCH_IMAGE_SIZE, block_size, digest) != 0 ||
        BENCH_SHA256(image, BENCH_IMAGE_SIZE, expect, 0) != 0) {
        fprintf(stderr, "bench_cpu: SHA-256 failed\n");
        rc = -1;
    } else if (memcmp(digest, expect, sizeof digest) != 0 ||
               memcmp(dst, image, BENCH_IMAGE_SIZE) != 0) {
        fprintf(stderr, "bench_cpu: the copy or its digest is wrong\n");
        rc = -1;
    } else {
        printf("bench_cpu floor: %u B in blocks of %u B copied and hashed (SHA-256); "
               "mbed TLS %s\n",
               (unsigned)BENCH_IMAGE_SIZE, (unsigned)block_size, MBEDTLS_VERSION_STRING);
    }
    free(dst);
    return rc;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_cpu agent|floor BLOCK_SIZE\n"
                    "  agent  download a 1 MiB signed image through the agent on the\n"
                    "         simulated flash port, BLOCK_SIZE bytes per block\n"
                    "  floor  memcpy + SHA-256 of the same 1 MiB, BLOCK_SIZE bytes at a time\n");
    return 2;
}

/**
 * Run one mode (see the top of this file).
 * @return 0 on success; 1 if the run failed its checks; 2 on a usage error.
 */
int main(int argc, char **argv)
{
    static uint8_t image[BENCH_IMAGE_SIZE];
    unsigned long block_size;
    char *end = NULL;
    int rc;

    if (argc != 3) {
        return usage();
    }
    errno = 0;
    block_size = strtoul(argv[2], &end, 10);
    if (errno != 0 || end == argv[2] || *end != '\0' || block_size < 256u || block_size > 131072u) {
        fprintf(stderr, "bench_cpu: BLOCK_SIZE must be 256 .. 131072\n");
        return usage();
    }
    ota_test_image_make(image, BENCH_IMAGE_SIZE, BENCH_VERSION_NEW, 2);
    if (strcmp(argv[1], "agent") == 0) {
        rc = run_agent(image, (uint32_t)block_size);
    } else if (strcmp(argv[1], "floor") == 0) {
        rc = run_floor(image, (uint32_t)block_size);
    } else {
        return usage();
    }
    return rc == 0 ? 0 : 1;
}
