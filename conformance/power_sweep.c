/*
 * otter: the power-loss sweep of the flash port and bootloader.
 *
 * For every flash geometry and two update plans (accept; reject then revert),
 * a fault-free run of the whole lifecycle is traced operation by operation:
 * create, every block write and progress checkpoint, close, activate, first
 * boot, confirm (or reject, reset and revert). Then, for every flash operation
 * of that run, a fresh device is cut:
 *   - before the operation, after it, and (programs) torn with the unit left
 *     old / new / mixed / random, (erases) torn half-erased;
 *   - or the operation fails with an I/O error (power stays on): the failure
 *     must be reported by the step, and the device is then reset;
 *   - and for every cut of a metadata operation, the recovery boot is cut
 *     again at each of its operations in the same ways (depth 2).
 * After each cut the device boots with fresh RAM and must show:
 *   - a boot record that decodes to a legal state equal to the state just
 *     before or just after the interrupted operation (exactly that one for
 *     clean cuts before/after);
 *   - a progress record equal to the one before or after the interrupted save;
 *   - exactly the old image or exactly the verified new image running, the
 *     one the record calls for;
 *   - and another full update (to a third image) that succeeds.
 * Two more families: a read error at every read of the boot decision in every
 * state the lifecycle passes through (the decision falls back to the old image
 * or names no slot, never starts an unverified one), and the progress store on
 * its own, with records large enough to change bank every few saves, cut at
 * every operation (the store holds the old or the new record, whole, and takes
 * the next one). And resume: a download cut at any operation resumes from its
 * stored checkpoint, fetches again at most one erase sector's worth of blocks,
 * and the image verifies and boots.
 * The counts are printed; any failure prints a line that names the scenario,
 * and the program exits non-zero.
 *
 * Usage: power_sweep [GEOMETRY]   (default: every geometry)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flashsim_device.h"
#include "otter/ota_boot_record.h"
#include "ota_conformance.h"
#include "ota_conformance_ports.h"
#include "otter/ota_image_header.h"
#include "ota_test_image.h"

#define MAX_OPS 2048u
#define BLOCK 1024u
#define IMAGE_LEN (6u * BLOCK + 300u)
#define RESUME_LEN (20u * BLOCK + 300u) /* five 4 KiB sectors and a bit */
#define FACTORY_LEN 3000u

enum plan { PLAN_ACCEPT = 0, PLAN_REJECT = 1 };
static const char *const plan_name[] = {"accept", "reject"};

/* Boot-record state as seen from flash: found or not, and the record. */
typedef struct rec_state {
    int found;
    ota_boot_record_t rec;
} rec_state_t;

/* Signed test image. */
typedef struct image {
    uint8_t bytes[RESUME_LEN];
    uint32_t len;
    uint8_t sig[OTA_PAL_SIGNATURE_MAX];
    size_t sig_len;
} image_t;

/* Wraps the flash driver to record the boot record after every operation. */
typedef struct tracer {
    ota_flash_t inner;
    flashsim_device_t *dev;
    int on;
    uint32_t count;
    rec_state_t after[MAX_OPS];
    uint8_t is_meta[MAX_OPS];
    uint8_t is_program[MAX_OPS];
} tracer_t;

/* Progress checkpoints of the lifecycle: -1 = none stored, k = checkpoint k. */
typedef struct progress_track {
    int before;
    int after;
} progress_track_t;

typedef struct sweep {
    const char *name;
    const flashsim_variant_t *variant;
    flashsim_device_t dev;
    uint8_t *factory_mem;
    uint8_t *cut_mem;
    uint8_t factory[FACTORY_LEN];
    image_t b; /* the update under test */
    image_t c; /* the update after recovery */
    image_t r; /* the download the resume family cuts */
    tracer_t tracer;
    progress_track_t progress;
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

static tracer_t *g_tracer;

/* `power_sweep GEOMETRY SCENARIO` runs one scenario: the key a FAIL line
 * prints (e.g. accept/12/torn-mix, accept/12/torn-mix/3/after,
 * progress/2/5/before, resume/1001/24/after). NULL runs every scenario. */
static const char *g_only;
/* How this program was started, for the rerun command of a FAIL line. */
static const char *g_argv0;

/* Set when a failed boot named a trial image (checked after every scenario). */
static int g_unsafe_boot;

/*
 * Boot the device. A failed decision may name only the committed image (or no
 * slot at all); a failure that still starts a trial image is recorded.
 */
static ota_err_t boot_device(flashsim_device_t *dev, ota_pal_t *pal)
{
    ota_err_t err = flashsim_device_boot(dev, pal);
    const ota_boot_result_t *b = &dev->boot;
    if (err != OTA_OK && b->slot != OTA_BOOT_NO_SLOT &&
        (b->pending || b->slot != b->record.active_slot)) {
        g_unsafe_boot = 1;
    }
    return err;
}

static void read_rec(const ota_flash_t *flash, const ota_boot_layout_t *layout, rec_state_t *st)
{
    memset(st, 0, sizeof *st);
    st->found = ota_boot_record_load(flash, layout->record_addr, &st->rec, NULL) == OTA_OK;
}

static int rec_equal(const rec_state_t *a, const rec_state_t *b)
{
    if (a->found != b->found) {
        return 0;
    }
    if (!a->found) {
        return 1;
    }
    const ota_boot_record_t *x = &a->rec;
    const ota_boot_record_t *y = &b->rec;
    return x->seq == y->seq && x->state == y->state && x->active_slot == y->active_slot &&
           x->trial_slot == y->trial_slot && x->attempts_left == y->attempts_left &&
           x->min_version == y->min_version && x->active_version == y->active_version &&
           x->trial_version == y->trial_version && x->trial_size == y->trial_size &&
           x->sig_len == y->sig_len && memcmp(x->sig, y->sig, x->sig_len) == 0;
}

static int in_region(uint32_t addr, uint32_t start, uint32_t len)
{
    return addr >= start && addr - start < len;
}

static int is_meta_addr(const ota_boot_layout_t *l, const ota_flash_t *f, uint32_t addr)
{
    for (uint32_t i = 0; i < 2u; i++) {
        uint32_t start;
        uint32_t size;
        if (f->sector_info(f->ctx, l->record_addr[i], &start, &size) == OTA_OK &&
            in_region(addr, start, size)) {
            return 1;
        }
        if (in_region(addr, l->progress_addr[i], l->progress_size)) {
            return 1;
        }
    }
    return 0;
}

static void trace_op(tracer_t *t, uint32_t addr, int program)
{
    if (!t->on) {
        return;
    }
    uint32_t idx = ota_flashsim_op_count(&t->dev->sim) - 1u;
    if (idx >= MAX_OPS) {
        fprintf(stderr, "power_sweep: more than %u operations in one lifecycle\n", MAX_OPS);
        exit(2);
    }
    read_rec(&t->inner, &t->dev->cfg.layout, &t->after[idx]);
    t->is_meta[idx] = (uint8_t)is_meta_addr(&t->dev->cfg.layout, &t->inner, addr);
    t->is_program[idx] = (uint8_t)program;
    t->count = idx + 1u;
}

static ota_err_t tr_read(void *ctx, uint32_t addr, void *buf, uint32_t len)
{
    (void)ctx;
    return g_tracer->inner.read(g_tracer->inner.ctx, addr, buf, len);
}

static ota_err_t tr_program(void *ctx, uint32_t addr, const void *buf, uint32_t len)
{
    (void)ctx;
    ota_err_t err = g_tracer->inner.program(g_tracer->inner.ctx, addr, buf, len);
    if (err == OTA_OK) {
        trace_op(g_tracer, addr, 1);
    }
    return err;
}

static ota_err_t tr_erase(void *ctx, uint32_t addr, uint32_t len)
{
    (void)ctx;
    ota_err_t err = g_tracer->inner.erase(g_tracer->inner.ctx, addr, len);
    if (err == OTA_OK) {
        trace_op(g_tracer, addr, 0);
    }
    return err;
}

static ota_err_t tr_sector_info(void *ctx, uint32_t addr, uint32_t *start, uint32_t *size)
{
    (void)ctx;
    return g_tracer->inner.sector_info(g_tracer->inner.ctx, addr, start, size);
}

/* ---- the lifecycle --------------------------------------------------------------- */

enum outcome { RAN_TO_END = 0, POWER_CUT = 1, BROKE = 2 };

static int powered(sweep_t *s)
{
    return ota_flashsim_is_powered(&s->dev.sim);
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
    int ok = pal->progress_save(pal->ctx, rec, sizeof rec) == OTA_OK;
    if (ok) {
        s->progress.before = k;
    }
    return ok;
}

static int clear_checkpoint(sweep_t *s, ota_pal_t *pal)
{
    s->progress.after = -1;
    int ok = pal->progress_clear(pal->ctx) == OTA_OK;
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
    STEP(s, boot_device(&s->dev, &pal) == OTA_OK, "first boot failed");
    STEP(s, flashsim_device_running_is(&s->dev, s->factory, FACTORY_LEN), "factory not running");
    int r = download(s, &pal, &s->b, reason, reason_len);
    if (r != RAN_TO_END) {
        return r;
    }
    STEP(s, boot_device(&s->dev, &pal) == OTA_OK, "boot of new image failed");
    STEP(s, pal.get_image_state(pal.ctx) == OTA_PAL_IMAGE_STATE_PENDING_COMMIT, "not pending");
    if (plan == PLAN_ACCEPT) {
        STEP(s, pal.set_image_state(pal.ctx, OTA_IMAGE_STATE_ACCEPTED) == OTA_OK, "accept failed");
    } else {
        STEP(s, pal.set_image_state(pal.ctx, OTA_IMAGE_STATE_REJECTED) == OTA_OK, "reject failed");
        STEP(s, boot_device(&s->dev, &pal) == OTA_OK, "boot after reject failed");
        STEP(s, flashsim_device_running_is(&s->dev, s->factory, FACTORY_LEN), "no revert");
    }
    return RAN_TO_END;
}

/* ---- checks after a cut ---------------------------------------------------------- */

/* The image the record calls for: B on trial, else the active slot's. */
static const uint8_t *expected_image(sweep_t *s, const rec_state_t *st, uint32_t *len)
{
    int b = st->found && ((st->rec.state == OTA_BOOT_STATE_TRIAL && st->rec.attempts_left > 0u)
                              ? 1
                              : st->rec.active_slot == 1u);
    *len = b ? s->b.len : FACTORY_LEN;
    return b ? s->b.bytes : s->factory;
}

/* Boot, check the image the record calls for, settle it, and update to C. */
static int recover_and_update(sweep_t *s, int plan, char *reason, size_t reason_len)
{
    ota_pal_t pal;
    rec_state_t st;
    uint32_t len;
    uint8_t buf[16];
    if (g_unsafe_boot) {
        snprintf(reason, reason_len, "a failed boot started a trial image");
        return BROKE;
    }
    read_rec(&s->dev.cfg.flash, &s->dev.cfg.layout, &st);
    int had_record = st.found;
    const uint8_t *want = expected_image(s, &st, &len);
    STEP(s, boot_device(&s->dev, &pal) == OTA_OK, "recovery boot failed");
    STEP(s, flashsim_device_running_is(&s->dev, want, len),
         "the image the record calls for does not run");
    read_rec(&s->dev.cfg.flash, &s->dev.cfg.layout, &st);
    STEP(s, st.found || !had_record, "no legal boot record after recovery");
    /* The progress store holds nothing or a whole checkpoint. */
    int32_t got = pal.progress_load(pal.ctx, buf, sizeof buf);
    STEP(s, got == OTA_ERR_NOT_FOUND || (got == 12 && memcmp(buf, "ckpt", 4) == 0),
         "progress store holds garbage");
    if (pal.get_image_state(pal.ctx) == OTA_PAL_IMAGE_STATE_PENDING_COMMIT) {
        STEP(s, flashsim_device_running_is(&s->dev, s->b.bytes, s->b.len), "pending but not B");
        if (plan == PLAN_ACCEPT) {
            STEP(s, pal.set_image_state(pal.ctx, OTA_IMAGE_STATE_ACCEPTED) == OTA_OK,
                 "accept after recovery failed");
        } else {
            STEP(s, pal.set_image_state(pal.ctx, OTA_IMAGE_STATE_REJECTED) == OTA_OK,
                 "reject after recovery failed");
            STEP(s, boot_device(&s->dev, &pal) == OTA_OK, "boot after reject failed");
        }
    }
    int r = download(s, &pal, &s->c, reason, reason_len);
    if (r != RAN_TO_END) {
        return r;
    }
    STEP(s, boot_device(&s->dev, &pal) == OTA_OK, "boot of C failed");
    STEP(s, pal.get_image_state(pal.ctx) == OTA_PAL_IMAGE_STATE_PENDING_COMMIT, "C not pending");
    STEP(s, flashsim_device_running_is(&s->dev, s->c.bytes, s->c.len), "C not running");
    STEP(s, pal.set_image_state(pal.ctx, OTA_IMAGE_STATE_ACCEPTED) == OTA_OK, "accept C failed");
    STEP(s, boot_device(&s->dev, &pal) == OTA_OK, "boot after C failed");
    STEP(s, flashsim_device_running_is(&s->dev, s->c.bytes, s->c.len), "C not kept");
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
    ota_flashsim_power_on(&s->dev.sim);
    ota_flashsim_set_fault(&s->dev.sim, &f);
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
    read_rec(&s->dev.cfg.flash, &s->dev.cfg.layout, &now);
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

static const char *check_progress(sweep_t *s)
{
    ota_pal_t pal;
    uint8_t buf[16];
    /* Read through a port started on the cut flash without booting (booting
     * would change it); which slot it thinks runs does not matter here. */
    ota_boot_result_t boot;
    memset(&boot, 0, sizeof boot);
    if (ota_port_flash_init(&s->dev.port, &s->dev.cfg, &boot, &pal) != OTA_OK) {
        return "port does not start";
    }
    int32_t got = pal.progress_load(pal.ctx, buf, sizeof buf);
    int k;
    if (got == OTA_ERR_NOT_FOUND) {
        k = -1;
    } else if (got == 12 && memcmp(buf, "ckpt", 4) == 0) {
        k = buf[4];
    } else {
        return "progress record torn or foreign";
    }
    if (k != s->progress.before && k != s->progress.after) {
        return "progress record is neither the old nor the new checkpoint";
    }
    return NULL;
}

static void run_depth2(sweep_t *s, int plan, uint32_t op, const cut_t *c, uint32_t seed)
{
    char reason[128];
    rec_state_t before;
    rec_state_t after;
    size_t size = s->variant->geo.size;
    ota_pal_t pal;
    memcpy(s->cut_mem, s->dev.mem, size);
    progress_track_t progress = s->progress;

    /* How many operations does the recovery boot make, and what does it leave? */
    read_rec(&s->dev.cfg.flash, &s->dev.cfg.layout, &before);
    ota_flashsim_power_on(&s->dev.sim);
    (void)boot_device(&s->dev, &pal);
    uint32_t ops = ota_flashsim_op_count(&s->dev.sim);
    read_rec(&s->dev.cfg.flash, &s->dev.cfg.layout, &after);

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
            memcpy(s->dev.mem, s->cut_mem, size);
            s->progress = progress;
            arm(s, j, &cuts[k], seed * 31u + j);
            (void)boot_device(&s->dev, &pal);
            s->scenarios++;
            s->depth2++;
            if (powered(s)) {
                fail(s, plan, op, c, (long)j, &cuts[k], "recovery cut never happened");
                continue;
            }
            ota_flashsim_power_on(&s->dev.sim);
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

static void run_plan(sweep_t *s, int plan, unsigned long *ops_total)
{
    char reason[128];
    size_t size = s->variant->geo.size;
    tracer_t *t = &s->tracer;

    /* The fault-free reference run, traced. */
    memcpy(s->dev.mem, s->factory_mem, size);
    ota_flashsim_power_on(&s->dev.sim);
    memset(t, 0, sizeof *t);
    t->inner = s->dev.cfg.flash;
    t->dev = &s->dev;
    t->on = 1;
    g_tracer = t;
    s->dev.cfg.flash.read = tr_read;
    s->dev.cfg.flash.program = tr_program;
    s->dev.cfg.flash.erase = tr_erase;
    s->dev.cfg.flash.sector_info = tr_sector_info;
    int r = lifecycle(s, plan, reason, sizeof reason);
    s->dev.cfg.flash = t->inner;
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
    *ops_total += t->count;

    rec_state_t initial;
    memcpy(s->dev.mem, s->factory_mem, size);
    read_rec(&s->dev.cfg.flash, &s->dev.cfg.layout, &initial);

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
            memcpy(s->dev.mem, s->factory_mem, size);
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
            ota_flashsim_power_on(&s->dev.sim);
            const char *why = check_record(s, before, &t->after[op], &cuts[k], 1);
            if (why == NULL) {
                why = check_progress(s);
            }
            if (why != NULL) {
                fail(s, plan, op, &cuts[k], -1, NULL, why);
                continue;
            }
            if (t->is_meta[op]) {
                progress_track_t progress = s->progress;
                run_depth2(s, plan, op, &cuts[k], seed);
                memcpy(s->dev.mem, s->cut_mem, size);
                s->progress = progress;
            }
            if (recover_and_update(s, plan, reason, sizeof reason) != RAN_TO_END) {
                fail(s, plan, op, &cuts[k], -1, NULL, reason);
            }
        }
    }
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
    size_t size = s->variant->geo.size;
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
        memcpy(s->dev.mem, s->factory_mem, size);
        arm(s, op, &after, 1);
        (void)lifecycle(s, plan, reason, sizeof reason);
        ota_flashsim_power_on(&s->dev.sim);
        memcpy(s->cut_mem, s->dev.mem, size);
        progress_track_t progress = s->progress;
        (void)boot_device(&s->dev, &pal);
        uint32_t reads = ota_flashsim_read_count(&s->dev.sim);
        ota_boot_result_t clean = s->dev.boot;
        for (uint32_t r = 0; r < reads; r++) {
            char read_key[128];
            snprintf(read_key, sizeof read_key, "%s/%u/%s", key, r, cut_name(&read_err));
            if (!wanted(read_key, 0)) {
                continue;
            }
            memcpy(s->dev.mem, s->cut_mem, size);
            s->progress = progress;
            arm(s, r, &read_err, 1);
            s->scenarios++;
            s->read_faults++;
            ota_err_t err = boot_device(&s->dev, &pal);
            const char *why = NULL;
            if (g_unsafe_boot) {
                why = "a failed boot started a trial image";
            } else if (err == OTA_OK &&
                       !flashsim_device_running_is(&s->dev, s->factory, FACTORY_LEN) &&
                       !flashsim_device_running_is(&s->dev, s->b.bytes, s->b.len)) {
                why = "the running image is neither the old nor the new one";
            } else if (err == OTA_OK &&
                       (s->dev.boot.slot != clean.slot || s->dev.boot.pending != clean.pending ||
                        s->dev.boot.record.seq != clean.record.seq)) {
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
static void run_progress_sweep(sweep_t *s)
{
    enum { SAVES = 7 };
    size_t size = s->variant->geo.size;
    ota_pal_t pal;
    static uint8_t rec[64 * 1024];
    static uint8_t got[64 * 1024];
    static uint8_t *before_mem;
    uint32_t ops_at[SAVES + 2] = {0};

    memcpy(s->dev.mem, s->factory_mem, size);
    ota_flashsim_power_on(&s->dev.sim);
    if (boot_device(&s->dev, &pal) != OTA_OK) {
        s->failures++;
        return;
    }
    uint32_t len = pal.progress_capacity / 3u;
    if (len > sizeof rec) {
        len = sizeof rec;
    }
    before_mem = malloc(size);
    if (before_mem == NULL) {
        exit(2);
    }
    /* Step k (0 .. SAVES-1) saves record k; step SAVES clears. */
    for (uint32_t k = 0; k <= SAVES; k++) {
        /* The port's RAM before step k (it remembers where the log ends), so
         * that every replay below makes exactly the operations of step k. */
        ota_port_flash_t port_before = s->dev.port;
        ota_flashsim_power_on(&s->dev.sim);
        memcpy(before_mem, s->dev.mem, size);
        /* How many operations does this step take? */
        memset(rec, (int)(k + 1u), len);
        ota_err_t err =
            k < SAVES ? pal.progress_save(pal.ctx, rec, len - k) : pal.progress_clear(pal.ctx);
        ops_at[k] = ota_flashsim_op_count(&s->dev.sim);
        if (err != OTA_OK) {
            s->failures++;
            printf("FAIL power_sweep %s progress step %u fails without a fault\n", s->name, k);
            break;
        }
        memcpy(s->cut_mem, s->dev.mem, size); /* the state after step k */
        /* A replay without a cut must repeat step k exactly. */
        memcpy(s->dev.mem, before_mem, size);
        s->dev.port = port_before;
        ota_flashsim_power_on(&s->dev.sim);
        (void)(k < SAVES ? pal.progress_save(pal.ctx, rec, len - k) : pal.progress_clear(pal.ctx));
        if (ota_flashsim_op_count(&s->dev.sim) != ops_at[k] ||
            memcmp(s->dev.mem, s->cut_mem, size) != 0) {
            s->failures++;
            printf("FAIL power_sweep %s progress step %u does not replay the same operations\n",
                   s->name, k);
            break;
        }
        ota_port_flash_t port_after = s->dev.port;
        for (uint32_t op = 0; op < ops_at[k]; op++) {
            cut_t cuts[7];
            size_t n = cuts_for(1, cuts);
            for (size_t c = 0; c < n; c++) {
                char key[96];
                snprintf(key, sizeof key, "progress/%u/%u/%s", k, op, cut_name(&cuts[c]));
                if (!wanted(key, 0)) {
                    continue;
                }
                memcpy(s->dev.mem, before_mem, size);
                s->dev.port = port_before;
                arm(s, op, &cuts[c], op * 13u + (uint32_t)c + 1u);
                s->scenarios++;
                s->progress_cuts++;
                (void)(k < SAVES ? pal.progress_save(pal.ctx, rec, len - k)
                                 : pal.progress_clear(pal.ctx));
                ota_flashsim_power_on(&s->dev.sim);
                /* A fresh port reads what the store holds now. */
                ota_boot_result_t boot;
                memset(&boot, 0, sizeof boot);
                ota_pal_t fresh;
                (void)ota_port_flash_init(&s->dev.port, &s->dev.cfg, &boot, &fresh);
                int32_t n_got = fresh.progress_load(fresh.ctx, got, sizeof got);
                int is_old = k == 0u ? n_got == OTA_ERR_NOT_FOUND
                                     : (n_got == (int32_t)(len - (k - 1u)) && got[0] == k &&
                                        got[n_got - 1] == k);
                int is_new = k < SAVES ? (n_got == (int32_t)(len - k) && got[0] == k + 1u &&
                                          got[n_got - 1] == k + 1u)
                                       : n_got == OTA_ERR_NOT_FOUND;
                const char *why = NULL;
                if (!is_old && !is_new) {
                    why = "progress store holds neither the old nor the new record";
                } else if (fresh.progress_save(fresh.ctx, (const uint8_t *)"next", 4) != OTA_OK ||
                           fresh.progress_load(fresh.ctx, got, sizeof got) != 4 ||
                           memcmp(got, "next", 4) != 0) {
                    why = "progress store does not take a new record after the cut";
                }
                if (why != NULL) {
                    char what[96];
                    snprintf(what, sizeof what, "progress step=%u op=%u cut=%s", k, op,
                             cut_name(&cuts[c]));
                    report(s, what, key, why);
                }
            }
        }
        /* Continue from the state after step k in the same boot: the port
         * keeps its RAM, so later steps append where it remembers the log
         * ends (across bank switches too), and their cuts are swept that way. */
        memcpy(s->dev.mem, s->cut_mem, size);
        s->dev.port = port_after;
        ota_flashsim_power_on(&s->dev.sim);
    }
    uint32_t total = 0;
    for (uint32_t k = 0; k <= SAVES; k++) {
        total += ops_at[k];
    }
    s->progress_ops = total;
    free(before_mem);
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
    size_t size = s->variant->geo.size;
    ota_pal_t pal;
    const uint32_t blocks = (img->len - 1u) / block + 1u;
    const ota_flash_t *f = &s->dev.cfg.flash;
    uint32_t base = s->dev.cfg.layout.slot_addr[1];
    /* The bound: the most blocks one sector of the image holds (whole or in
     * part), plus the block whose checkpoint a cut may have lost. */
    uint32_t bound = 0;
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
    bound += 1u;

    /* The reference download: how many operations? */
    memcpy(s->dev.mem, s->factory_mem, size);
    ota_flashsim_power_on(&s->dev.sim);
    uint32_t written = 0;
    if (boot_device(&s->dev, &pal) != OTA_OK) {
        exit(2);
    }
    download_with_checkpoints(s, &pal, img, block, reverse, &written);
    uint32_t ops = ota_flashsim_op_count(&s->dev.sim);

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
            memcpy(s->dev.mem, s->factory_mem, size);
            ota_flashsim_power_on(&s->dev.sim);
            if (boot_device(&s->dev, &pal) != OTA_OK) {
                exit(2);
            }
            arm(s, op, &cuts[c], op * 17u + (uint32_t)c + 1u);
            download_with_checkpoints(s, &pal, img, block, reverse, &written);
            s->scenarios++;
            s->resume_cuts++;
            ota_flashsim_power_on(&s->dev.sim);
            ota_pal_file_t file =
                ota_test_image_file(img->len, img->sig, img->sig_len, OTA_CONFORMANCE_CERT);
            if (boot_device(&s->dev, &pal) != OTA_OK) {
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
                } else if (pal.activate(pal.ctx) != OTA_OK ||
                           boot_device(&s->dev, &pal) != OTA_OK ||
                           !flashsim_device_running_is(&s->dev, img->bytes, img->len)) {
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

int main(int argc, char **argv)
{
    static sweep_t s;
    unsigned long scenarios = 0;
    unsigned long failures = 0;
    unsigned long depth2 = 0;
    unsigned long read_faults = 0;
    unsigned long progress_cuts = 0;
    unsigned long resume_cuts = 0;
    unsigned long ops_total = 0;
    unsigned geometries = 0;
    /* power_sweep [GEOMETRY [SCENARIO]] */
    const char *only = argc > 1 ? argv[1] : NULL;
    g_only = argc > 2 ? argv[2] : NULL;
    g_argv0 = argv[0];

    /* Every registered flash port entry is one geometry. */
    for (const ota_conformance_port_t *port = ota_conformance_ports; port->name != NULL; port++) {
        const flashsim_variant_t *v = port->param;
        if (port->setup != flashsim_conformance_setup ||
            (only != NULL && strcmp(only, port->name) != 0)) {
            continue;
        }
        memset(&s, 0, sizeof s);
        s.name = port->name;
        s.variant = v;
        ota_test_image_make(s.factory, FACTORY_LEN, ota_version_make(1, 0, 0), 1);
        if (make_image(&s.b, IMAGE_LEN, ota_version_make(1, 1, 0), 2) != 0 ||
            make_image(&s.c, IMAGE_LEN - 555u, ota_version_make(1, 2, 0), 3) != 0 ||
            make_image(&s.r, RESUME_LEN, ota_version_make(1, 3, 0), 4) != 0 ||
            flashsim_device_create(&s.dev, v, s.factory, FACTORY_LEN) != 0) {
            fprintf(stderr, "power_sweep: cannot set up %s\n", port->name);
            return 2;
        }
        s.factory_mem = malloc(v->geo.size);
        s.cut_mem = malloc(v->geo.size);
        if (s.factory_mem == NULL || s.cut_mem == NULL) {
            return 2;
        }
        memcpy(s.factory_mem, s.dev.mem, v->geo.size);
        unsigned long ops_before = ops_total;
        for (int plan = PLAN_ACCEPT; plan <= PLAN_REJECT; plan++) {
            run_plan(&s, plan, &ops_total);
            run_read_faults(&s, plan);
        }
        run_progress_sweep(&s);
        /* Blocks that divide the sector, in order; and blocks that straddle
         * sectors, last first (as a windowed download leaves them). */
        run_resume_sweep(&s, &s.r, BLOCK, 0);
        run_resume_sweep(&s, &s.r, 1536u, 1);
        /* Blocks that end inside a write unit: checkpoints hold the unit a
         * block covered in part, which the port keeps in RAM. */
        run_resume_sweep(&s, &s.r, 1001u, 0);
        printf("power_sweep %-23s lifecycle ops %4lu  scenarios %6lu (depth 2: %5lu, read errors: "
               "%4lu, progress store: %5lu over %4u ops, resume: %4lu, refetched <= %u of %u "
               "allowed)  failures %lu\n",
               port->name, ops_total - ops_before, s.scenarios, s.depth2, s.read_faults,
               s.progress_cuts, s.progress_ops, s.resume_cuts, s.resume_max_refetch, s.resume_bound,
               s.failures);
        fflush(stdout);
        scenarios += s.scenarios;
        failures += s.failures;
        depth2 += s.depth2;
        read_faults += s.read_faults;
        progress_cuts += s.progress_cuts;
        resume_cuts += s.resume_cuts;
        geometries++;
        free(s.factory_mem);
        free(s.cut_mem);
        flashsim_device_destroy(&s.dev);
    }
    if (geometries == 0u) {
        fprintf(stderr, "power_sweep: no geometry named %s\n", only);
        return 2;
    }
    if (g_only != NULL && scenarios == 0u && failures == 0u) {
        fprintf(stderr, "power_sweep: no scenario %s on %s\n", g_only, only);
        return 2;
    }
    printf("power-loss sweep: %u geometries, %lu operations in the lifecycles, %lu scenarios "
           "(%lu with a second cut during recovery, %lu read errors at boot, %lu progress-store "
           "cuts, %lu cuts during downloads then resumed), %lu failures\n",
           geometries, ops_total, scenarios, depth2, read_faults, progress_cuts, resume_cuts,
           failures);
    return failures == 0u ? 0 : 1;
}
