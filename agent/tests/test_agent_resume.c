/*
 * otter: download resume under power loss, on the simulated flash.
 *
 * For each flash geometry, a clean download is run once to count the flash
 * operations it makes (block writes, progress checkpoints, erases). Then, for
 * every one of those operations and three kinds of cut (before it, after it,
 * torn in the middle), a fresh device downloads again until the power fails
 * there, boots with fresh RAM, and the agent resumes. Each scenario checks:
 *   - the download completes and the file verifies (ECDSA, the real port);
 *   - the new image then activates and boots;
 *   - blocks written before the cut and fetched again are at most one erase
 *     sector's worth.
 * A failure prints one line naming geometry, kind and operation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_harness.h"
#include "flashsim_device.h"
#include "otter/ota_image_header.h"
#include "ota_progress.h"
#include "ota_test_image.h"

#define KIB 1024u
#define BLOCK 1024u
#define IMAGE_LEN (20u * BLOCK + 300u)
#define FACTORY_LEN 3000u
#define STREAM "AFR_OTA-resume"
#define V1_0_0 0x01000000u

typedef struct geometry {
    const char *name;
    flashsim_variant_t variant;
    uint32_t sector; /* erase sector of the image slot */
} geometry_t;

static const geometry_t geometries[] = {
    {"4k-wu1-ff",
     {{256 * KIB, 4 * KIB, NULL, 0, 1, 0xff}, {{0, 0}, 0, {0, 0}, {0, 0}, 0}},
     4 * KIB},
    {"4k-wu8-00",
     {{256 * KIB, 4 * KIB, NULL, 0, 8, 0x00}, {{0, 0}, 0, {0, 0}, {0, 0}, 0}},
     4 * KIB},
    {"4k-wu256-ff",
     {{256 * KIB, 4 * KIB, NULL, 0, 256, 0xff}, {{0, 0}, 0, {0, 0}, {0, 0}, 0}},
     4 * KIB},
    {"8k-wu4-ff",
     {{512 * KIB, 8 * KIB, NULL, 0, 4, 0xff}, {{0, 0}, 0, {0, 0}, {0, 0}, 0}},
     8 * KIB},
};

static uint8_t factory[FACTORY_LEN];
static uint8_t image[IMAGE_LEN];
static uint8_t sig[OTA_PAL_SIGNATURE_MAX];
static size_t sig_len;
static flashsim_device_t *g_dev;

static int stop_power_or_activating(const harness_t *h)
{
    return !ota_flashsim_is_powered(&g_dev->sim) ||
           ota_agent_get_state(&h->agent) == OTA_AGENT_ACTIVATING;
}

static int stop_activating(const harness_t *h)
{
    return ota_agent_get_state(&h->agent) == OTA_AGENT_ACTIVATING;
}

static ota_agent_config_t agent_config(void)
{
    ota_agent_config_t c;
    memset(&c, 0, sizeof c);
    c.block_size = BLOCK;
    return c;
}

static void set_job(harness_t *h, const char *status, const char *details)
{
    h->cert_name = "codesign-test.crt";
    h_set_job(h, "job-r", STREAM, image, IMAGE_LEN, sig, sig_len, status, details);
}

/* A clean download; returns the flash operations it made (from start to activation). */
static int baseline(const geometry_t *g, uint32_t *ops)
{
    flashsim_device_t dev;
    ota_pal_t pal;
    harness_t *h;
    uint32_t before;
    int ok;
    ota_agent_config_t c = agent_config();
    if (flashsim_device_create(&dev, &g->variant, factory, FACTORY_LEN) != 0 ||
        flashsim_device_boot(&dev, &pal) != OTA_OK) {
        return -1;
    }
    g_dev = &dev;
    h = h_new(&pal, V1_0_0, &c);
    set_job(h, "QUEUED", NULL);
    before = ota_flashsim_op_count(&dev.sim);
    ok = ota_agent_start(&h->agent, h->now) == OTA_OK && h_run(h, 60000, 10, stop_activating);
    *ops = ota_flashsim_op_count(&dev.sim) - before;
    h_free(h);
    flashsim_device_destroy(&dev);
    return ok ? 0 : -1;
}

typedef struct result {
    int fired;         /* the cut happened before activation */
    uint32_t refetch;  /* blocks written before the cut and asked for again */
    const char *error; /* NULL = pass */
} result_t;

static result_t scenario(const geometry_t *g, ota_flashsim_fault_kind_t kind, uint32_t op)
{
    result_t r = {0, 0, NULL};
    flashsim_device_t *dev = calloc(1, sizeof *dev);
    ota_pal_t pal;
    harness_t *h;
    uint8_t had[OTA_MAX_FILE_BLOCKS / 8u];
    uint32_t blocks = (IMAGE_LEN + BLOCK - 1u) / BLOCK;
    ota_flashsim_fault_t fault;
    ota_agent_config_t c = agent_config();

    if (dev == NULL || flashsim_device_create(dev, &g->variant, factory, FACTORY_LEN) != 0 ||
        flashsim_device_boot(dev, &pal) != OTA_OK) {
        r.error = "device setup failed";
        free(dev);
        return r;
    }
    g_dev = dev;
    h = h_new(&pal, V1_0_0, &c);
    set_job(h, "QUEUED", NULL);
    memset(&fault, 0, sizeof fault);
    fault.kind = kind;
    fault.op = ota_flashsim_op_count(&dev->sim) + op;
    fault.tear = (ota_flashsim_tear_t)(op % 4u);
    fault.seed = op * 2654435761u + 1u;
    ota_flashsim_set_fault(&dev->sim, &fault);
    if (ota_agent_start(&h->agent, h->now) != OTA_OK) {
        r.error = "start failed";
        goto out;
    }
    h_run(h, 60000, 10, stop_power_or_activating);
    if (ota_flashsim_is_powered(&dev->sim)) {
        goto out; /* the download finished first (the op belongs to a later phase) */
    }
    r.fired = 1;
    /* The blocks the download had marked (none when the cut came before its file was open). */
    memset(had, 0, sizeof had);
    if (h->agent.dl.done != NULL) {
        memcpy(had, h->agent.dl.done, sizeof had);
    }

    /* Power returns: boot with fresh RAM, the service still has the job in progress. */
    ota_flashsim_power_on(&dev->sim);
    if (flashsim_device_boot(dev, &pal) != OTA_OK) {
        r.error = "boot after the cut failed";
        goto out;
    }
    h_reboot(h, &pal, V1_0_0);
    memset(h->requested_count, 0, sizeof h->requested_count);
    set_job(h, "IN_PROGRESS", "{\"receive\":\"1/21\"}");
    h->outcomes = 0;
    if (ota_agent_start(&h->agent, h->now) != OTA_OK || !h_run(h, 120000, 10, stop_activating)) {
        r.error = h->outcomes ? "the job failed after the cut" : "the download did not complete";
        goto out;
    }
    for (uint32_t k = 0; k < blocks; k++) {
        if (((had[k / 8u] >> (k % 8u)) & 1u) && h->requested_count[k] != 0u) {
            r.refetch++;
        }
    }
    if (r.refetch > g->sector / BLOCK) {
        r.error = "fetched more than one sector's worth of blocks again";
        goto out;
    }
    /* Activate, reset, and boot the new image. */
    h_run(h, 2000, 100, NULL);
    if (flashsim_device_boot(dev, &pal) != OTA_OK ||
        !flashsim_device_running_is(dev, image, IMAGE_LEN)) {
        r.error = "the new image does not boot after the resumed download";
    }
out:
    h_free(h);
    flashsim_device_destroy(dev);
    free(dev);
    return r;
}

int main(void)
{
    static const ota_flashsim_fault_kind_t kinds[] = {
        OTA_FLASHSIM_FAULT_CUT_BEFORE, OTA_FLASHSIM_FAULT_CUT_AFTER, OTA_FLASHSIM_FAULT_TORN};
    static const char *const kind_names[] = {"cut-before", "cut-after", "torn"};
    uint32_t scenarios = 0, failures = 0, cuts = 0, max_refetch = 0, total_refetch = 0;

    ota_test_image_make(factory, FACTORY_LEN, V1_0_0, 1);
    ota_test_image_make(image, IMAGE_LEN, 0x01010000u, 2);
    if (ota_test_image_sign(image, IMAGE_LEN, sig, &sig_len) != 0) {
        fprintf(stderr, "error: cannot sign the test image\n");
        return 1;
    }
    for (size_t gi = 0; gi < sizeof geometries / sizeof geometries[0]; gi++) {
        const geometry_t *g = &geometries[gi];
        uint32_t ops = 0;
        if (baseline(g, &ops) != 0) {
            fprintf(stderr, "FAIL agent_resume %s: clean download failed\n", g->name);
            failures++;
            continue;
        }
        for (size_t ki = 0; ki < sizeof kinds / sizeof kinds[0]; ki++) {
            for (uint32_t op = 0; op < ops; op++) {
                result_t r = scenario(g, kinds[ki], op);
                scenarios++;
                cuts += (uint32_t)r.fired;
                total_refetch += r.refetch;
                if (r.refetch > max_refetch) {
                    max_refetch = r.refetch;
                }
                if (r.error != NULL) {
                    failures++;
                    fprintf(stderr, "FAIL agent_resume geometry=%s kind=%s op=%u: %s\n", g->name,
                            kind_names[ki], (unsigned)op, r.error);
                }
            }
        }
        printf("agent resume %s: %u flash operations per download, sector %u KiB, block %u B\n",
               g->name, (unsigned)ops, (unsigned)(g->sector / KIB), (unsigned)BLOCK);
    }
    printf("agent resume sweep: %u scenarios, %u power cuts during downloads, %u failures; "
           "blocks fetched again after a cut: at most %u (bound: one sector), %.2f on average\n",
           (unsigned)scenarios, (unsigned)cuts, (unsigned)failures, (unsigned)max_refetch,
           cuts ? (double)total_refetch / cuts : 0.0);
    return failures == 0 && cuts > 0 ? 0 : 1;
}
