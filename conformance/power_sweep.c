/*
 * otter: the power-loss sweep of every port whose storage is reached through
 * ota_flash_t (every entry of ota_conformance_ports[] made with
 * OTA_FLASH_DEVICE_CONFORMANCE_PORT, whatever its metadata layout).
 *
 * The sweep owns the simulated flash the device runs on and gives the device
 * a driver over it; it knows the device's metadata only through the device's
 * state() description, and which operations touch metadata from the trace:
 * the sectors where the state changed and those the progress store wrote.
 *
 * For every device (a port on one flash geometry) and two update plans (accept; reject then
 * revert), a fault-free run of the whole lifecycle is traced operation by operation: create, every
 * block write and progress checkpoint, close, activate, first boot, confirm (or reject, reset and
 * revert). Then, for every flash operation of that run, a fresh device is cut:
 *   - before the operation, after it, and (programs) torn with the unit left
 *     old / new / mixed / random, (erases) torn half-erased;
 *   - or the operation fails with an I/O error (power stays on): the failure
 *     must be reported by the step, and the device is then reset;
 *   - and for every cut of a metadata operation, the recovery boot is cut
 *     again at each of its operations in the same ways (depth 2).
 * After each cut the device must show:
 *   - a stored state (state()) equal to the state just before or just after
 *     the interrupted operation (exactly that one for clean cuts before/after);
 *   - after a boot with fresh RAM, a progress record equal to the one before
 *     or after the interrupted save;
 *   - exactly the old image or exactly the verified new image running;
 *   - a boot that fails runs the committed image or nothing, never a trial;
 *   - and another full update (to a third image) that succeeds.
 * Two more families: a read error at every read of the boot step in every
 * state the lifecycle passes through (the boot falls back to the old image or
 * runs nothing, never an unverified one, and a boot that succeeds decides as
 * without the error), and the progress store on
 * its own, with records large enough to change bank every few saves, cut at
 * every operation (the store holds the old or the new record, whole, and takes
 * the next one). And resume: a download cut at any operation resumes from its
 * stored checkpoint, fetches again at most one erase sector's worth of blocks,
 * and the image verifies and boots.
 * The counts are printed; any failure prints a line that names the scenario,
 * and the program exits non-zero.
 *
 * Usage: power_sweep [--first-failure[=FAMILY]] [DEVICE [SCENARIO]]
 *   (default: every device, every scenario; --first-failure stops at the first
 *   failure, after its FAIL line and the summary, as a check of a planted bug needs;
 *   FAMILY, one of lifecycle, progress, resume/1024, resume/1536, resume/1001, is run
 *   first, then the others)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ota_conformance.h"
#include "ota_flash_device.h"
#include "otter/ota_image_header.h"
#include "ota_test_image.h"

#define MAX_OPS 2048u
#define BLOCK 1024u
#define IMAGE_LEN (6u * BLOCK + 300u)
#define RESUME_LEN (20u * BLOCK + 300u) /* five 4 KiB sectors and a bit */
#define FACTORY_LEN 3000u

enum plan { PLAN_ACCEPT = 0, PLAN_REJECT = 1 };
static const char *const plan_name[] = {"accept", "reject"};

/* The device's stored state as it describes it (0 bytes: none). */
typedef struct rec_state {
    uint32_t len;
    uint8_t bytes[OTA_FLASH_DEVICE_STATE_MAX];
} rec_state_t;

/* Sectors that hold metadata, found by the trace. */
#define MAX_META_SECTORS 64u

/* Signed test image. */
typedef struct image {
    uint8_t bytes[RESUME_LEN];
    uint32_t len;
    uint8_t sig[OTA_PAL_SIGNATURE_MAX];
    size_t sig_len;
} image_t;

/* The driver the device is given: the simulated flash, recording the stored
 * state after every operation while on. */
typedef struct tracer {
    ota_flash_t inner;
    struct sweep *s;
    int on;
    int in_progress_call; /* a progress save or clear is running */
    uint32_t count;
    rec_state_t after[MAX_OPS];
    uint32_t sector[MAX_OPS];
    uint8_t is_meta[MAX_OPS];
    uint8_t is_program[MAX_OPS];
    uint8_t is_progress[MAX_OPS];
} tracer_t;

/* Progress checkpoints of the lifecycle: -1 = none stored, k = checkpoint k. */
typedef struct progress_track {
    int before;
    int after;
} progress_track_t;

typedef struct sweep {
    const char *name;
    const ota_flash_device_t *device;
    ota_flashsim_t sim;
    uint8_t *mem;
    size_t size;
    ota_flash_t flash; /* the driver the device was given: through the tracer */
    void *dev;
    int b_accepted;       /* the new image B was accepted (it may run as committed) */
    int failed_boot_runs; /* the last boot failed but started an image */
    uint8_t *factory_mem;
    uint8_t *cut_mem;
    uint8_t factory[FACTORY_LEN];
    image_t b; /* the update under test */
    image_t c; /* the update after recovery */
    image_t r; /* the download the resume family cuts */
    tracer_t tracer;
    progress_track_t progress;
    unsigned long ops; /* operations in the traced lifecycles */
    unsigned long scenarios;
    unsigned long failures;
    unsigned long depth2;
    unsigned long read_faults;
    unsigned long progress_cuts;
    uint32_t progress_ops;
    unsigned long resume_cuts;
    uint32_t resume_max_refetch;
    uint32_t resume_bound;
} sweep_t;

/* `power_sweep GEOMETRY SCENARIO` runs one scenario: the key a FAIL line
 * prints (e.g. accept/12/torn-mix, accept/12/torn-mix/3/after,
 * progress/2/5/before, resume/1001/24/after). NULL runs every scenario. */
static const char *g_only;
/* How this program was started, for the rerun command of a FAIL line. */
static const char *g_argv0;
/* --first-failure: exit at the first failure. */
static int g_first_failure;

/* The families of scenarios, in the order they run by default, named as the
 * keys of their scenarios begin: the lifecycle (both plans, with the read
 * errors at boot), the progress store, and the resumed downloads of each block size. */
enum family {
    FAMILY_LIFECYCLE,
    FAMILY_PROGRESS,
    FAMILY_RESUME_1024,
    FAMILY_RESUME_1536,
    FAMILY_RESUME_1001,
    FAMILIES
};
static const char *const family_name[FAMILIES] = {"lifecycle", "progress", "resume/1024",
                                                  "resume/1536", "resume/1001"};

/* Set when a failed boot named a trial image (checked after every scenario). */
static int g_unsafe_boot;

static int powered(struct sweep *s);
static void stop_at_failure(const struct sweep *s);

/*
 * Boot the device with fresh RAM. A boot that fails but starts an image is
 * noted: which image it started is checked once the power is back
 * (check_failed_boot), as the power may be off now.
 */
static ota_err_t boot_device(sweep_t *s, ota_pal_t *pal)
{
    ota_err_t err = s->device->boot(s->dev, pal);
    s->failed_boot_runs = err != OTA_OK && pal->ctx != NULL;
    return err;
}

static int running_is(sweep_t *s, const uint8_t *img, uint32_t len)
{
    return s->device->running_is(s->dev, img, len);
}

/* A boot that failed may have started only a committed image: the factory
 * image, or B once it was accepted. Call with the power on, before the next boot. */
static void check_failed_boot(sweep_t *s)
{
    if (s->failed_boot_runs && !running_is(s, s->factory, (uint32_t)sizeof s->factory) &&
        !(s->b_accepted && running_is(s, s->b.bytes, s->b.len))) {
        g_unsafe_boot = 1;
    }
    s->failed_boot_runs = 0;
}

static void read_rec(sweep_t *s, rec_state_t *st)
{
    memset(st, 0, sizeof *st);
    st->len = s->device->state(s->dev, st->bytes, (uint32_t)sizeof st->bytes);
    if (st->len > sizeof st->bytes) {
        fprintf(stderr, "power_sweep: %s describes its state in more than %u bytes\n", s->name,
                (unsigned)sizeof st->bytes);
        exit(2);
    }
}

static int rec_equal(const rec_state_t *a, const rec_state_t *b)
{
    return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

static void trace_op(tracer_t *t, uint32_t addr, int program)
{
    if (!t->on) {
        return;
    }
    uint32_t idx = ota_flashsim_op_count(&t->s->sim) - 1u;
    if (idx >= MAX_OPS) {
        fprintf(stderr, "power_sweep: more than %u operations in one lifecycle\n", MAX_OPS);
        exit(2);
    }
    uint32_t size;
    t->on = 0; /* the state is read through this driver */
    read_rec(t->s, &t->after[idx]);
    t->on = 1;
    if (t->inner.sector_info(t->inner.ctx, addr, &t->sector[idx], &size) != OTA_OK) {
        exit(2);
    }
    t->is_program[idx] = (uint8_t)program;
    t->is_progress[idx] = (uint8_t)t->in_progress_call;
    t->count = idx + 1u;
}

/*
 * After the reference run: an operation touches metadata when its sector is
 * one where the stored state changed, or one the progress store wrote.
 */
static void mark_meta(tracer_t *t, const rec_state_t *initial)
{
    uint32_t meta[MAX_META_SECTORS];
    uint32_t n = 0;
    for (uint32_t op = 0; op < t->count; op++) {
        const rec_state_t *before = op == 0u ? initial : &t->after[op - 1u];
        if (!rec_equal(before, &t->after[op]) || t->is_progress[op]) {
            uint32_t k = 0;
            while (k < n && meta[k] != t->sector[op]) {
                k++;
            }
            if (k == n && n < MAX_META_SECTORS) {
                meta[n++] = t->sector[op];
            }
        }
    }
    for (uint32_t op = 0; op < t->count; op++) {
        t->is_meta[op] = 0;
        for (uint32_t k = 0; k < n; k++) {
            t->is_meta[op] = (uint8_t)(t->is_meta[op] | (meta[k] == t->sector[op]));
        }
    }
}

static ota_err_t tr_read(void *ctx, uint32_t addr, void *buf, uint32_t len)
{
    tracer_t *t = ctx;
    return t->inner.read(t->inner.ctx, addr, buf, len);
}

static ota_err_t tr_program(void *ctx, uint32_t addr, const void *buf, uint32_t len)
{
    tracer_t *t = ctx;
    ota_err_t err = t->inner.program(t->inner.ctx, addr, buf, len);
    if (err == OTA_OK) {
        trace_op(t, addr, 1);
    }
    return err;
}

static ota_err_t tr_erase(void *ctx, uint32_t addr, uint32_t len)
{
    tracer_t *t = ctx;
    ota_err_t err = t->inner.erase(t->inner.ctx, addr, len);
    if (err == OTA_OK) {
        trace_op(t, addr, 0);
    }
    return err;
}

static ota_err_t tr_sector_info(void *ctx, uint32_t addr, uint32_t *start, uint32_t *size)
{
    tracer_t *t = ctx;
    return t->inner.sector_info(t->inner.ctx, addr, start, size);
}

/* ---- the lifecycle --------------------------------------------------------------- */

enum outcome { RAN_TO_END = 0, POWER_CUT = 1, BROKE = 2 };

static int powered(sweep_t *s)
{
    return ota_flashsim_is_powered(&s->sim);
}

/* A step's result: fine, cut (stop quietly), or a real failure. */
#define STEP(s, expr, why)                                                                         \
    do {                                                                                           \
        if (!(expr)) {                                                                             \
            if (!powered(s)) {                                                                     \
                return POWER_CUT;                                                                  \
            }                                                                                      \
            snprintf(reason, reason_len, "%s", why);                                               \
            return BROKE;                                                                          \
        }                                                                                          \
    } while (0)

static int save_checkpoint(sweep_t *s, ota_pal_t *pal, int k)
{
    uint8_t rec[12] = {'c', 'k', 'p', 't'};
    rec[4] = (uint8_t)k;
    s->progress.after = k;
    s->tracer.in_progress_call = 1;
    int ok = pal->progress_save(pal->ctx, rec, sizeof rec) == OTA_OK;
    s->tracer.in_progress_call = 0;
    if (ok) {
        s->progress.before = k;
    }
    return ok;
}

static int clear_checkpoint(sweep_t *s, ota_pal_t *pal)
{
    s->progress.after = -1;
    s->tracer.in_progress_call = 1;
    int ok = pal->progress_clear(pal->ctx) == OTA_OK;
    s->tracer.in_progress_call = 0;
    if (ok) {
        s->progress.before = -1;
    }
    return ok;
}

/* Download, verify and activate img, with a progress checkpoint after every block. */
static int download(sweep_t *s, ota_pal_t *pal, const image_t *img, char *reason, size_t reason_len)
{
    ota_pal_file_t f = ota_test_image_file(img->len, img->sig, img->sig_len, OTA_CONFORMANCE_CERT);
    STEP(s, pal->create_file(pal->ctx, &f) == OTA_OK, "create_file failed");
    int k = 0;
    for (uint32_t off = 0; off < img->len; off += BLOCK, k++) {
        uint32_t n = img->len - off < BLOCK ? img->len - off : BLOCK;
        STEP(s, pal->write_block(pal->ctx, off, img->bytes + off, n) == (int32_t)n,
             "write_block failed");
        STEP(s, save_checkpoint(s, pal, k), "progress_save failed");
    }
    STEP(s, pal->close_file(pal->ctx, &f) == OTA_OK, "close_file failed");
    STEP(s, clear_checkpoint(s, pal), "progress_clear failed");
    STEP(s, pal->set_image_state(pal->ctx, OTA_IMAGE_STATE_TESTING) == OTA_OK, "testing failed");
    STEP(s, pal->activate(pal->ctx) == OTA_OK, "activate failed");
    return RAN_TO_END;
}

/* The traced lifecycle: factory A -> B, then accept, or reject and revert. */
static int lifecycle(sweep_t *s, int plan, char *reason, size_t reason_len)
{
    ota_pal_t pal;
    s->progress.before = s->progress.after = -1;
    STEP(s, boot_device(s, &pal) == OTA_OK, "first boot failed");
    STEP(s, running_is(s, s->factory, FACTORY_LEN), "factory not running");
    int r = download(s, &pal, &s->b, reason, reason_len);
    if (r != RAN_TO_END) {
        return r;
    }
    STEP(s, boot_device(s, &pal) == OTA_OK, "boot of new image failed");
    STEP(s, pal.get_image_state(pal.ctx) == OTA_PAL_IMAGE_STATE_PENDING_COMMIT, "not pending");
    if (plan == PLAN_ACCEPT) {
        s->b_accepted = 1;
        STEP(s, pal.set_image_state(pal.ctx, OTA_IMAGE_STATE_ACCEPTED) == OTA_OK, "accept failed");
    } else {
        STEP(s, pal.set_image_state(pal.ctx, OTA_IMAGE_STATE_REJECTED) == OTA_OK, "reject failed");
        STEP(s, boot_device(s, &pal) == OTA_OK, "boot after reject failed");
        STEP(s, running_is(s, s->factory, FACTORY_LEN), "no revert");
    }
    return RAN_TO_END;
}

/* ---- checks after a cut ---------------------------------------------------------- */

/* Boot, check the image the record calls for, settle it, and update to C. */
static int recover_and_update(sweep_t *s, int plan, char *reason, size_t reason_len)
{
    ota_pal_t pal;
    rec_state_t st;
    uint8_t buf[16];
    check_failed_boot(s);
    if (g_unsafe_boot) {
        snprintf(reason, reason_len, "a failed boot started an image that is not committed");
        return BROKE;
    }
    read_rec(s, &st);
    int had_record = st.len > 0u;
    STEP(s, boot_device(s, &pal) == OTA_OK, "recovery boot failed");
    STEP(s, running_is(s, s->factory, FACTORY_LEN) || running_is(s, s->b.bytes, s->b.len),
         "neither the old nor the new image runs");
    read_rec(s, &st);
    STEP(s, st.len > 0u || !had_record, "no legal stored state after recovery");
    /* The progress store holds the checkpoint before or after the cut, whole. */
    int32_t got = pal.progress_load(pal.ctx, buf, sizeof buf);
    STEP(s, got == OTA_ERR_NOT_FOUND || (got == 12 && memcmp(buf, "ckpt", 4) == 0),
         "progress record torn or foreign");
    int k = got == OTA_ERR_NOT_FOUND ? -1 : buf[4];
    STEP(s, k == s->progress.before || k == s->progress.after,
         "progress record is neither the old nor the new checkpoint");
    if (pal.get_image_state(pal.ctx) == OTA_PAL_IMAGE_STATE_PENDING_COMMIT) {
        STEP(s, running_is(s, s->b.bytes, s->b.len), "pending but not B");
        if (plan == PLAN_ACCEPT) {
            s->b_accepted = 1;
            STEP(s, pal.set_image_state(pal.ctx, OTA_IMAGE_STATE_ACCEPTED) == OTA_OK,
                 "accept after recovery failed");
        } else {
            STEP(s, pal.set_image_state(pal.ctx, OTA_IMAGE_STATE_REJECTED) == OTA_OK,
                 "reject after recovery failed");
            STEP(s, boot_device(s, &pal) == OTA_OK, "boot after reject failed");
        }
    }
    int r = download(s, &pal, &s->c, reason, reason_len);
    if (r != RAN_TO_END) {
        return r;
    }
    STEP(s, boot_device(s, &pal) == OTA_OK, "boot of C failed");
    STEP(s, pal.get_image_state(pal.ctx) == OTA_PAL_IMAGE_STATE_PENDING_COMMIT, "C not pending");
    STEP(s, running_is(s, s->c.bytes, s->c.len), "C not running");
    STEP(s, pal.set_image_state(pal.ctx, OTA_IMAGE_STATE_ACCEPTED) == OTA_OK, "accept C failed");
    STEP(s, boot_device(s, &pal) == OTA_OK, "boot after C failed");
    STEP(s, running_is(s, s->c.bytes, s->c.len), "C not kept");
    STEP(s, pal.get_image_state(pal.ctx) == OTA_PAL_IMAGE_STATE_VALID, "C not valid");
    return RAN_TO_END;
}

/* ---- scenarios ------------------------------------------------------------------- */

typedef struct cut {
    ota_flashsim_fault_kind_t kind;
    ota_flashsim_tear_t tear;
} cut_t;

static const char *cut_name(const cut_t *c)
{
    static const char *const tear[] = {"torn-old", "torn-new", "torn-mix", "torn-random"};
    switch (c->kind) {
    case OTA_FLASHSIM_FAULT_CUT_BEFORE:
        return "before";
    case OTA_FLASHSIM_FAULT_CUT_AFTER:
        return "after";
    case OTA_FLASHSIM_FAULT_TORN:
        return tear[c->tear];
    case OTA_FLASHSIM_FAULT_ERROR:
        return "io-error";
    case OTA_FLASHSIM_FAULT_READ_ERROR:
        return "read-error";
    default:
        return "?";
    }
}

/* The cuts tried at one operation. */
static size_t cuts_for(int program, cut_t out[7])
{
    size_t n = 0;
    out[n++] = (cut_t){OTA_FLASHSIM_FAULT_CUT_BEFORE, OTA_FLASHSIM_TEAR_OLD};
    out[n++] = (cut_t){OTA_FLASHSIM_FAULT_CUT_AFTER, OTA_FLASHSIM_TEAR_OLD};
    if (program) {
        for (int t = OTA_FLASHSIM_TEAR_OLD; t <= OTA_FLASHSIM_TEAR_RANDOM; t++) {
            out[n++] = (cut_t){OTA_FLASHSIM_FAULT_TORN, (ota_flashsim_tear_t)t};
        }
    } else {
        out[n++] = (cut_t){OTA_FLASHSIM_FAULT_TORN, OTA_FLASHSIM_TEAR_MIX};
    }
    return n;
}

/* The faults tried at one operation of the lifecycle: the cuts, and an error return. */
static size_t faults_for(int program, cut_t out[7])
{
    size_t n = cuts_for(program, out);
    out[n++] = (cut_t){OTA_FLASHSIM_FAULT_ERROR, OTA_FLASHSIM_TEAR_OLD};
    return n;
}

static void arm(sweep_t *s, uint32_t op, const cut_t *c, uint32_t seed)
{
    ota_flashsim_fault_t f = {c->kind, op, c->tear, seed};
    g_unsafe_boot = 0;
    s->b_accepted = 0;
    s->failed_boot_runs = 0;
    ota_flashsim_power_on(&s->sim);
    ota_flashsim_set_fault(&s->sim, &f);
}

/* Is the scenario key wanted? A prefix of the wanted key is too when
 * prefix_ok (a scenario whose recovery holds the wanted one). */
static int wanted(const char *key, int prefix_ok)
{
    size_t n = strlen(key);
    return g_only == NULL || strcmp(g_only, key) == 0 ||
           (prefix_ok && strncmp(g_only, key, n) == 0 && g_only[n] == '/');
}

/* One FAIL line: what failed and the command that reruns exactly it. */
static void report(sweep_t *s, const char *what, const char *key, const char *why)
{
    s->failures++;
    if (s->failures <= 20u) {
        printf("FAIL power_sweep %s %s: %s; rerun with: %s %s %s\n", s->name, what, why, g_argv0,
               s->name, key);
    }
    if (g_first_failure) {
        stop_at_failure(s);
    }
}

static void fail(sweep_t *s, int plan, uint32_t op, const cut_t *c, long op2, const cut_t *c2,
                 const char *why)
{
    char what[160];
    char key[96];
    g_unsafe_boot = 0;
    if (op2 >= 0) {
        snprintf(what, sizeof what, "plan=%s op=%u cut=%s recovery-op=%ld recovery-cut=%s",
                 plan_name[plan], op, cut_name(c), op2, cut_name(c2));
        snprintf(key, sizeof key, "%s/%u/%s/%ld/%s", plan_name[plan], op, cut_name(c), op2,
                 cut_name(c2));
    } else {
        snprintf(what, sizeof what, "plan=%s op=%u cut=%s", plan_name[plan], op, cut_name(c));
        snprintf(key, sizeof key, "%s/%u/%s", plan_name[plan], op, cut_name(c));
    }
    report(s, what, key, why);
}

/*
 * State check right after a cut: the record is the one before or after the
 * interrupted change. With exact set (before/after refer to the one operation
 * cut), a clean cut must leave exactly the before or the after state.
 */
static const char *check_record(sweep_t *s, const rec_state_t *before, const rec_state_t *after,
                                const cut_t *c, int exact)
{
    rec_state_t now;
    read_rec(s, &now);
    int is_before = rec_equal(&now, before);
    int is_after = rec_equal(&now, after);
    if (exact &&
        (c->kind == OTA_FLASHSIM_FAULT_CUT_BEFORE || c->kind == OTA_FLASHSIM_FAULT_ERROR) &&
        !is_before) {
        return "record changed by an operation that never ran";
    }
    if (exact && c->kind == OTA_FLASHSIM_FAULT_CUT_AFTER && !is_after) {
        return "record is not the one the completed operation wrote";
    }
    if (!is_before && !is_after) {
        return "record is neither the old nor the new state";
    }
    return NULL;
}

static void run_depth2(sweep_t *s, int plan, uint32_t op, const cut_t *c, uint32_t seed)
{
    char reason[128];
    rec_state_t before;
    rec_state_t after;
    size_t size = s->size;
    ota_pal_t pal;
    memcpy(s->cut_mem, s->mem, size);
    progress_track_t progress = s->progress;

    /* How many operations does the recovery boot make, and what does it leave? */
    read_rec(s, &before);
    ota_flashsim_power_on(&s->sim);
    (void)boot_device(s, &pal);
    uint32_t ops = ota_flashsim_op_count(&s->sim);
    read_rec(s, &after);

    for (uint32_t j = 0; j < ops; j++) {
        cut_t cuts[7];
        size_t n = cuts_for(1, cuts);
        for (size_t k = 0; k < n; k++) {
            char key[96];
            snprintf(key, sizeof key, "%s/%u/%s/%u/%s", plan_name[plan], op, cut_name(c), j,
                     cut_name(&cuts[k]));
            if (!wanted(key, 0)) {
                continue;
            }
            memcpy(s->mem, s->cut_mem, size);
            s->progress = progress;
            arm(s, j, &cuts[k], seed * 31u + j);
            (void)boot_device(s, &pal);
            s->scenarios++;
            s->depth2++;
            if (powered(s)) {
                fail(s, plan, op, c, (long)j, &cuts[k], "recovery cut never happened");
                continue;
            }
            ota_flashsim_power_on(&s->sim);
            /* before/after span the whole recovery boot: either is legal. */
            const char *why = check_record(s, &before, &after, &cuts[k], 0);
            if (why != NULL) {
                fail(s, plan, op, c, (long)j, &cuts[k], why);
                continue;
            }
            if (recover_and_update(s, plan, reason, sizeof reason) != RAN_TO_END) {
                fail(s, plan, op, c, (long)j, &cuts[k], reason);
            }
        }
    }
}

static void run_plan(sweep_t *s, int plan)
{
    char reason[128];
    size_t size = s->size;
    tracer_t *t = &s->tracer;

    /* The fault-free reference run, traced. */
    memcpy(s->mem, s->factory_mem, size);
    ota_flashsim_power_on(&s->sim);
    t->count = 0;
    t->on = 1;
    s->b_accepted = 0;
    int r = lifecycle(s, plan, reason, sizeof reason);
    t->on = 0;
    if (r != RAN_TO_END) {
        /* The update fails without any fault: every scenario of the plan
         * starts with this run, so the plan's name reruns it. */
        char what[64];
        snprintf(what, sizeof what, "plan=%s without a fault", plan_name[plan]);
        g_unsafe_boot = 0;
        report(s, what, plan_name[plan], reason);
        return;
    }
    s->ops += t->count;

    rec_state_t initial;
    memcpy(s->mem, s->factory_mem, size);
    read_rec(s, &initial);
    mark_meta(t, &initial);

    for (uint32_t op = 0; op < t->count; op++) {
        cut_t cuts[7];
        size_t n = faults_for(t->is_program[op], cuts);
        const rec_state_t *before = op == 0u ? &initial : &t->after[op - 1u];
        for (size_t k = 0; k < n; k++) {
            uint32_t seed = op * 7u + (uint32_t)k + 1u;
            char key[96];
            snprintf(key, sizeof key, "%s/%u/%s", plan_name[plan], op, cut_name(&cuts[k]));
            if (!wanted(key, t->is_meta[op])) {
                continue;
            }
            memcpy(s->mem, s->factory_mem, size);
            arm(s, op, &cuts[k], seed);
            s->scenarios++;
            r = lifecycle(s, plan, reason, sizeof reason);
            if (r == RAN_TO_END && !powered(s)) {
                r = POWER_CUT; /* cut after the lifecycle's last operation */
            }
            if (cuts[k].kind == OTA_FLASHSIM_FAULT_ERROR) {
                /* A flash error must surface as a failed step, never be swallowed;
                 * then the device is reset as an agent would after giving up. */
                if (r != BROKE) {
                    fail(s, plan, op, &cuts[k], -1, NULL, "a flash error went unreported");
                    continue;
                }
            } else if (r != POWER_CUT) {
                fail(s, plan, op, &cuts[k], -1, NULL,
                     r == BROKE ? reason : "the cut never happened");
                continue;
            }
            ota_flashsim_power_on(&s->sim);
            const char *why = check_record(s, before, &t->after[op], &cuts[k], 1);
            if (why != NULL) {
                fail(s, plan, op, &cuts[k], -1, NULL, why);
                continue;
            }
            if (t->is_meta[op]) {
                progress_track_t progress = s->progress;
                run_depth2(s, plan, op, &cuts[k], seed);
                memcpy(s->mem, s->cut_mem, size);
                s->progress = progress;
            }
            if (recover_and_update(s, plan, reason, sizeof reason) != RAN_TO_END) {
                fail(s, plan, op, &cuts[k], -1, NULL, reason);
            }
        }
    }
}

/* What a boot led to: which image runs (0 neither, 1 the factory image, 2 B),
 * its state, and the stored state after the boot. */
typedef struct observed {
    int image;
    ota_pal_image_state_t image_state;
    rec_state_t stored;
} observed_t;

static void observe(sweep_t *s, const ota_pal_t *pal, observed_t *o)
{
    o->image = running_is(s, s->factory, FACTORY_LEN) ? 1
               : running_is(s, s->b.bytes, s->b.len)  ? 2
                                                      : 0;
    o->image_state =
        pal->get_image_state != NULL ? pal->get_image_state(pal->ctx) : (ota_pal_image_state_t)0;
    read_rec(s, &o->stored);
}

static int observed_equal(const observed_t *a, const observed_t *b)
{
    return a->image == b->image && a->image_state == b->image_state &&
           rec_equal(&a->stored, &b->stored);
}

/*
 * Read errors during the boot decision, at every state the lifecycle passes
 * through (after each of its metadata operations): the decision may fall back
 * to the old image or name no slot, but never starts an unverified image, and
 * the device still updates afterwards.
 */
static void run_read_faults(sweep_t *s, int plan)
{
    char reason[128];
    size_t size = s->size;
    const tracer_t *t = &s->tracer;
    ota_pal_t pal;
    cut_t read_err = {OTA_FLASHSIM_FAULT_READ_ERROR, OTA_FLASHSIM_TEAR_OLD};
    cut_t after = {OTA_FLASHSIM_FAULT_CUT_AFTER, OTA_FLASHSIM_TEAR_OLD};

    for (uint32_t op = 0; op < t->count; op++) {
        char key[96];
        snprintf(key, sizeof key, "%s/%u/%s", plan_name[plan], op, cut_name(&after));
        if (!t->is_meta[op] || !wanted(key, 1)) {
            continue;
        }
        /* The state right after this operation. */
        memcpy(s->mem, s->factory_mem, size);
        arm(s, op, &after, 1);
        (void)lifecycle(s, plan, reason, sizeof reason);
        ota_flashsim_power_on(&s->sim);
        memcpy(s->cut_mem, s->mem, size);
        progress_track_t progress = s->progress;
        int b_accepted = s->b_accepted;
        observed_t clean;
        int clean_ok = boot_device(s, &pal) == OTA_OK;
        uint32_t reads = ota_flashsim_read_count(&s->sim);
        observe(s, &pal, &clean);
        for (uint32_t r = 0; r < reads; r++) {
            char read_key[128];
            snprintf(read_key, sizeof read_key, "%s/%u/%s", key, r, cut_name(&read_err));
            if (!wanted(read_key, 0)) {
                continue;
            }
            memcpy(s->mem, s->cut_mem, size);
            s->progress = progress;
            arm(s, r, &read_err, 1);
            s->b_accepted = b_accepted;
            s->scenarios++;
            s->read_faults++;
            ota_err_t err = boot_device(s, &pal);
            observed_t seen;
            observe(s, &pal, &seen);
            check_failed_boot(s);
            const char *why = NULL;
            if (g_unsafe_boot) {
                why = "a failed boot started an image that is not committed";
            } else if (err == OTA_OK && seen.image == 0) {
                why = "the running image is neither the old nor the new one";
            } else if (err == OTA_OK && (!clean_ok || !observed_equal(&seen, &clean))) {
                /* A one-off read error is either retried away or reported: it
                 * never turns into another decision (an older state, a revert). */
                why = "a read error silently changed the boot decision";
            } else if (recover_and_update(s, plan, reason, sizeof reason) != RAN_TO_END) {
                why = reason;
            }
            if (why != NULL) {
                fail(s, plan, op, &after, (long)r, &read_err, why);
            }
        }
    }
}

/*
 * The progress store on its own: saves large enough that the log changes bank
 * every few records, then a clear, cut at every operation (before, after,
 * torn). After each cut the store holds the record before or the record after
 * the interrupted save, whole, and a new save still works.
 */
enum { PROGRESS_SAVES = 7 };

/* Step k of the progress family: save record k (0 .. PROGRESS_SAVES-1), or clear. */
static ota_err_t progress_step(const ota_pal_t *pal, uint8_t *rec, uint32_t len, uint32_t k)
{
    if (k < PROGRESS_SAVES) {
        memset(rec, (int)(k + 1u), len);
        return pal->progress_save(pal->ctx, rec, len - k);
    }
    return pal->progress_clear(pal->ctx);
}

/*
 * Boot the factory state and make steps 0 .. last in that one boot (the port
 * keeps its RAM between them, as it remembers where its store ends); the
 * operation count after each step goes to ends[]. Stops at a failed step.
 * @return the number of steps that succeeded.
 */
static uint32_t progress_run(sweep_t *s, uint8_t *rec, uint32_t len, uint32_t last, uint32_t *ends)
{
    ota_pal_t pal;
    memcpy(s->mem, s->factory_mem, s->size);
    if (boot_device(s, &pal) != OTA_OK) {
        return 0;
    }
    for (uint32_t k = 0; k <= last; k++) {
        if (progress_step(&pal, rec, len, k) != OTA_OK) {
            return k;
        }
        if (ends != NULL) {
            ends[k] = ota_flashsim_op_count(&s->sim);
        }
    }
    return last + 1u;
}

static void run_progress_sweep(sweep_t *s)
{
    static uint8_t rec[64 * 1024];
    static uint8_t got[64 * 1024];
    uint32_t ends[PROGRESS_SAVES + 1] = {0};
    uint32_t again[PROGRESS_SAVES + 1] = {0};
    ota_pal_t pal;

    memcpy(s->mem, s->factory_mem, s->size);
    ota_flashsim_power_on(&s->sim);
    if (boot_device(s, &pal) != OTA_OK) {
        report(s, "progress", "progress", "the device does not boot");
        return;
    }
    uint32_t len = pal.progress_capacity / 3u;
    if (len > sizeof rec) {
        len = sizeof rec;
    }
    /* The reference: every step succeeds, and a second run makes the same
     * operations and leaves the same flash (the cuts below replay it). */
    ota_flashsim_power_on(&s->sim);
    uint32_t done = progress_run(s, rec, len, PROGRESS_SAVES, ends);
    memcpy(s->cut_mem, s->mem, s->size);
    ota_flashsim_power_on(&s->sim);
    uint32_t done_again = progress_run(s, rec, len, PROGRESS_SAVES, again);
    if (done != PROGRESS_SAVES + 1u) {
        char key[32];
        snprintf(key, sizeof key, "progress/%u", done);
        report(s, "progress without a fault", key, "a progress step fails without a fault");
        return;
    }
    if (done_again != done || memcmp(ends, again, sizeof ends) != 0 ||
        memcmp(s->mem, s->cut_mem, s->size) != 0) {
        report(s, "progress replay", "progress",
               "the progress steps do not replay the same operations");
        return;
    }
    /* The boot's own operations come before step 0. */
    memcpy(s->mem, s->factory_mem, s->size);
    ota_flashsim_power_on(&s->sim);
    (void)boot_device(s, &pal);
    uint32_t boot_ops = ota_flashsim_op_count(&s->sim);
    s->progress_ops = 0;
    for (uint32_t k = 0; k <= PROGRESS_SAVES; k++) {
        uint32_t start = k == 0u ? boot_ops : ends[k - 1u];
        s->progress_ops += ends[k] - start;
        for (uint32_t op = 0; op < ends[k] - start; op++) {
            cut_t cuts[7];
            size_t n = cuts_for(1, cuts);
            for (size_t c = 0; c < n; c++) {
                char key[96];
                snprintf(key, sizeof key, "progress/%u/%u/%s", k, op, cut_name(&cuts[c]));
                if (!wanted(key, 0)) {
                    continue;
                }
                arm(s, start + op, &cuts[c], op * 13u + (uint32_t)c + 1u);
                s->scenarios++;
                s->progress_cuts++;
                (void)progress_run(s, rec, len, k, NULL);
                ota_flashsim_power_on(&s->sim);
                /* The device booted afresh reads what the store holds now. */
                const char *why = NULL;
                ota_pal_t fresh;
                if (boot_device(s, &fresh) != OTA_OK) {
                    why = "the device does not boot after the cut";
                } else {
                    int32_t n_got = fresh.progress_load(fresh.ctx, got, sizeof got);
                    int is_old = k == 0u ? n_got == OTA_ERR_NOT_FOUND
                                         : (n_got == (int32_t)(len - (k - 1u)) && got[0] == k &&
                                            got[n_got - 1] == k);
                    int is_new = k < PROGRESS_SAVES ? (n_got == (int32_t)(len - k) &&
                                                       got[0] == k + 1u && got[n_got - 1] == k + 1u)
                                                    : n_got == OTA_ERR_NOT_FOUND;
                    if (!is_old && !is_new) {
                        why = "progress store holds neither the old nor the new record";
                    } else if (fresh.progress_save(fresh.ctx, (const uint8_t *)"next", 4) !=
                                   OTA_OK ||
                               fresh.progress_load(fresh.ctx, got, sizeof got) != 4 ||
                               memcmp(got, "next", 4) != 0) {
                        why = "progress store does not take a new record after the cut";
                    }
                }
                if (why != NULL) {
                    char what[96];
                    snprintf(what, sizeof what, "progress step=%u op=%u cut=%s", k, op,
                             cut_name(&cuts[c]));
                    report(s, what, key, why);
                }
            }
        }
    }
}

/* Download img with a checkpoint (the done bitmap) after every block, in
 * order or last block first; counts the blocks whose write completed. Stops
 * quietly at a cut. */
static void download_with_checkpoints(sweep_t *s, ota_pal_t *pal, const image_t *img,
                                      uint32_t block, int reverse, uint32_t *written)
{
    uint8_t done[8] = {0};
    const uint32_t blocks = (img->len - 1u) / block + 1u;
    ota_pal_file_t f = ota_test_image_file(img->len, img->sig, img->sig_len, OTA_CONFORMANCE_CERT);
    *written = 0;
    if (pal->create_file(pal->ctx, &f) != OTA_OK) {
        return;
    }
    for (uint32_t i = 0; i < blocks; i++) {
        uint32_t b = reverse ? blocks - 1u - i : i;
        uint32_t off = b * block;
        uint32_t n = img->len - off < block ? img->len - off : block;
        if (pal->write_block(pal->ctx, off, img->bytes + off, n) != (int32_t)n) {
            return;
        }
        (*written)++;
        done[b / 8u] = (uint8_t)(done[b / 8u] | (1u << (b % 8u)));
        if (pal->progress_save(pal->ctx, done, sizeof done) != OTA_OK || !powered(s)) {
            return;
        }
    }
}

/*
 * Resume after a cut anywhere in a download: at every operation of it (block
 * writes and checkpoints), cut before, after or torn; boot; resume from the
 * stored checkpoint; write the blocks the port did not keep; the image must
 * verify and boot. Counts the blocks that had been written but were fetched
 * again, against the bound of one erase sector's worth of blocks (plus the
 * block whose checkpoint the cut may have lost).
 */
static void run_resume_sweep(sweep_t *s, const image_t *img, uint32_t block, int reverse)
{
    size_t size = s->size;
    ota_pal_t pal;
    const uint32_t blocks = (img->len - 1u) / block + 1u;
    const ota_flash_t *f = &s->tracer.inner;
    /* The bound: the most blocks one sector of the image holds (whole or in
     * part), plus the block whose checkpoint a cut may have lost. Where the
     * port keeps the image is its own business: every sector boundary of the
     * flash is tried as the slot's start. */
    uint32_t bound = 0;
    for (uint32_t base = 0; base + img->len <= f->size;) {
        uint32_t base_len;
        if (f->sector_info(f->ctx, base, &base, &base_len) != OTA_OK) {
            exit(2);
        }
        for (uint32_t at = 0; at < img->len;) {
            uint32_t start;
            uint32_t len;
            if (f->sector_info(f->ctx, base + at, &start, &len) != OTA_OK) {
                exit(2);
            }
            uint32_t hi = start - base + len < img->len ? start - base + len : img->len;
            uint32_t touching = (hi - 1u) / block - (start - base) / block + 1u;
            bound = touching > bound ? touching : bound;
            at = hi;
        }
        base += base_len;
    }
    bound += 1u;

    /* The reference download: how many operations? */
    memcpy(s->mem, s->factory_mem, size);
    ota_flashsim_power_on(&s->sim);
    uint32_t written = 0;
    if (boot_device(s, &pal) != OTA_OK) {
        exit(2);
    }
    download_with_checkpoints(s, &pal, img, block, reverse, &written);
    uint32_t ops = ota_flashsim_op_count(&s->sim);

    for (uint32_t op = 0; op < ops; op++) {
        cut_t cuts[7];
        size_t n = cuts_for(1, cuts);
        for (size_t c = 0; c < n; c++) {
            const char *why = NULL;
            uint8_t done[8] = {0};
            char key[96];
            snprintf(key, sizeof key, "resume/%u/%u/%s", block, op, cut_name(&cuts[c]));
            if (!wanted(key, 0)) {
                continue;
            }
            memcpy(s->mem, s->factory_mem, size);
            ota_flashsim_power_on(&s->sim);
            if (boot_device(s, &pal) != OTA_OK) {
                exit(2);
            }
            arm(s, op, &cuts[c], op * 17u + (uint32_t)c + 1u);
            download_with_checkpoints(s, &pal, img, block, reverse, &written);
            s->scenarios++;
            s->resume_cuts++;
            ota_flashsim_power_on(&s->sim);
            ota_pal_file_t file =
                ota_test_image_file(img->len, img->sig, img->sig_len, OTA_CONFORMANCE_CERT);
            if (boot_device(s, &pal) != OTA_OK) {
                why = "boot after the cut failed";
            } else {
                int32_t got = pal.progress_load(pal.ctx, done, sizeof done);
                if (got != OTA_ERR_NOT_FOUND && got != (int32_t)sizeof done) {
                    why = "progress record unreadable";
                } else {
                    /* As the agent does: nothing to resume, so start over. */
                    ota_err_t r = pal.resume_file(pal.ctx, &file, block, done, blocks);
                    if (r == OTA_ERR_NOT_FOUND) {
                        memset(done, 0, sizeof done);
                        r = pal.create_file(pal.ctx, &file);
                    }
                    if (r != OTA_OK) {
                        why = "resume_file failed";
                    }
                }
            }
            uint32_t kept = 0;
            for (uint32_t b = 0, off = 0; why == NULL && b < blocks; b++, off += block) {
                uint32_t len = img->len - off < block ? img->len - off : block;
                if ((done[b / 8u] >> (b % 8u)) & 1u) {
                    kept++;
                } else if (pal.write_block(pal.ctx, off, img->bytes + off, len) != (int32_t)len) {
                    why = "a block could not be written again after resume";
                }
            }
            if (why == NULL) {
                uint32_t again = written > kept ? written - kept : 0u;
                if (again > s->resume_max_refetch) {
                    s->resume_max_refetch = again;
                }
                if (again > bound) {
                    why = "more than one erase sector's worth of blocks fetched again";
                } else if (pal.close_file(pal.ctx, &file) != OTA_OK) {
                    why = "the resumed image does not verify";
                } else if (pal.activate(pal.ctx) != OTA_OK || boot_device(s, &pal) != OTA_OK ||
                           !running_is(s, img->bytes, img->len)) {
                    why = "the resumed image does not boot";
                }
            }
            if (why != NULL) {
                char what[96];
                snprintf(what, sizeof what, "resume block=%u op=%u cut=%s", block, op,
                         cut_name(&cuts[c]));
                report(s, what, key, why);
            }
        }
    }
    if (bound > s->resume_bound) {
        s->resume_bound = bound;
    }
}

static int make_image(image_t *img, uint32_t len, uint32_t version, uint32_t seed)
{
    img->len = len;
    ota_test_image_make(img->bytes, len, version, seed);
    return ota_test_image_sign(img->bytes, len, img->sig, &img->sig_len);
}

/* The counts of every device swept so far. */
static struct totals {
    unsigned geometries;
    unsigned long ops;
    unsigned long scenarios;
    unsigned long failures;
    unsigned long depth2;
    unsigned long read_faults;
    unsigned long progress_cuts;
    unsigned long resume_cuts;
} g_total;

/* One device's counts line; adds them to the totals. */
static void device_done(const sweep_t *s)
{
    printf("power_sweep %-23s lifecycle ops %4lu  scenarios %6lu (depth 2: %5lu, read errors: "
           "%4lu, progress store: %5lu over %4u ops, resume: %4lu, refetched <= %u of %u "
           "allowed)  failures %lu\n",
           s->name, s->ops, s->scenarios, s->depth2, s->read_faults, s->progress_cuts,
           s->progress_ops, s->resume_cuts, s->resume_max_refetch, s->resume_bound, s->failures);
    g_total.geometries++;
    g_total.ops += s->ops;
    g_total.scenarios += s->scenarios;
    g_total.failures += s->failures;
    g_total.depth2 += s->depth2;
    g_total.read_faults += s->read_faults;
    g_total.progress_cuts += s->progress_cuts;
    g_total.resume_cuts += s->resume_cuts;
}

static void print_summary(const char *stopped)
{
    printf("power-loss sweep: %u devices, %lu operations in the lifecycles, %lu scenarios "
           "(%lu with a second cut during recovery, %lu read errors at boot, %lu progress-store "
           "cuts, %lu cuts during downloads then resumed), %lu failures%s\n",
           g_total.geometries, g_total.ops, g_total.scenarios, g_total.depth2, g_total.read_faults,
           g_total.progress_cuts, g_total.resume_cuts, g_total.failures, stopped);
    fflush(stdout);
}

static void stop_at_failure(const sweep_t *s)
{
    device_done(s);
    print_summary(" (stopped at the first failure)");
    exit(1);
}

static void run_family(sweep_t *s, int family)
{
    switch (family) {
    case FAMILY_LIFECYCLE:
        for (int plan = PLAN_ACCEPT; plan <= PLAN_REJECT; plan++) {
            run_plan(s, plan);
            run_read_faults(s, plan);
        }
        break;
    case FAMILY_PROGRESS:
        run_progress_sweep(s);
        break;
    case FAMILY_RESUME_1024:
        /* Blocks that divide the sector, in order. */
        run_resume_sweep(s, &s->r, BLOCK, 0);
        break;
    case FAMILY_RESUME_1536:
        /* Blocks that straddle sectors, last first (as a windowed download leaves them). */
        run_resume_sweep(s, &s->r, 1536u, 1);
        break;
    default:
        /* Blocks that end inside a write unit: checkpoints hold the unit a
         * block covered in part, which the port keeps in RAM. */
        run_resume_sweep(s, &s->r, 1001u, 0);
        break;
    }
}

int main(int argc, char **argv)
{
    static sweep_t s;
    int first = FAMILY_LIFECYCLE;
    /* power_sweep [--first-failure[=FAMILY]] [DEVICE [SCENARIO]] */
    g_argv0 = argv[0];
    if (argc > 1 && strncmp(argv[1], "--first-failure", 15) == 0) {
        const char *f = argv[1] + 15;
        g_first_failure = 1;
        if (*f == '=') {
            first = FAMILIES;
            for (int k = 0; k < FAMILIES; k++) {
                first = strcmp(f + 1, family_name[k]) == 0 ? k : first;
            }
        } else if (*f != '\0') {
            first = FAMILIES;
        }
        if (first == FAMILIES) {
            fprintf(stderr,
                    "power_sweep: %s: use --first-failure or --first-failure=FAMILY "
                    "(lifecycle, progress, resume/1024, resume/1536, resume/1001)\n",
                    argv[1]);
            return 2;
        }
        argc--;
        argv++;
    }
    const char *only = argc > 1 ? argv[1] : NULL;
    g_only = argc > 2 ? argv[2] : NULL;

    /* Every registered device on flash: a port on one geometry. */
    for (const ota_conformance_port_t *port = ota_conformance_ports; port->name != NULL; port++) {
        const ota_flash_device_t *d = port->param;
        if (port->setup != ota_flash_device_setup ||
            (only != NULL && strcmp(only, port->name) != 0)) {
            continue;
        }
        memset(&s, 0, sizeof s);
        s.name = port->name;
        s.device = d;
        s.size = d->geometry->size;
        s.mem = malloc(s.size);
        s.factory_mem = malloc(s.size);
        s.cut_mem = malloc(s.size);
        if (s.mem == NULL || s.factory_mem == NULL || s.cut_mem == NULL ||
            ota_flashsim_init(&s.sim, d->geometry, s.mem, s.size) != OTA_OK) {
            fprintf(stderr, "power_sweep: cannot make the flash of %s\n", port->name);
            return 2;
        }
        /* The device's driver: the simulated flash through the tracer. */
        s.tracer.inner = ota_flashsim_driver(&s.sim);
        s.tracer.s = &s;
        s.flash = s.tracer.inner;
        s.flash.ctx = &s.tracer;
        s.flash.read = tr_read;
        s.flash.program = tr_program;
        s.flash.erase = tr_erase;
        s.flash.sector_info = tr_sector_info;
        ota_test_image_make(s.factory, FACTORY_LEN, ota_version_make(1, 0, 0), 1);
        if (make_image(&s.b, IMAGE_LEN, ota_version_make(1, 1, 0), 2) != 0 ||
            make_image(&s.c, IMAGE_LEN - 555u, ota_version_make(1, 2, 0), 3) != 0 ||
            make_image(&s.r, RESUME_LEN, ota_version_make(1, 3, 0), 4) != 0 ||
            d->create(d->param, &s.flash, s.factory, FACTORY_LEN, &s.dev) != 0) {
            fprintf(stderr, "power_sweep: cannot set up %s\n", port->name);
            return 2;
        }
        memcpy(s.factory_mem, s.mem, s.size);
        /* Every family; the one named by --first-failure=FAMILY first. */
        run_family(&s, first);
        for (int family = 0; family < FAMILIES; family++) {
            if (family != first) {
                run_family(&s, family);
            }
        }
        device_done(&s);
        d->destroy(s.dev);
        free(s.mem);
        free(s.factory_mem);
        free(s.cut_mem);
    }
    if (g_total.geometries == 0u) {
        fprintf(stderr, "power_sweep: no device on flash named %s\n", only);
        return 2;
    }
    if (g_only != NULL && g_total.scenarios == 0u && g_total.failures == 0u) {
        fprintf(stderr, "power_sweep: no scenario %s on %s\n", g_only, only);
        return 2;
    }
    print_summary("");
    return g_total.failures == 0u ? 0 : 1;
}
