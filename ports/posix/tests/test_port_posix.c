/*
 * otter: unit tests of the posix port's own behaviour: the state record and
 * its atomic replacement, the boot step after activate and its crash safety,
 * revert and accept, signer name checks, and the progress store. The generic
 * PAL cases live in the conformance suite.
 *
 * Every test runs in a fresh mkdtemp() folder under /tmp, removed afterwards.
 * "Reboot" = deinit, scribble over the port struct, init again: nothing
 * survives but the files.
 */
#define _DEFAULT_SOURCE

#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "otter/ota_bytes.h"
#include "otter/ota_crc32.h"
#include "otter/ota_port_posix.h"
#include "ota_test_sign.h"

#define CERT_NAME "codesign-test.crt"
#define SIGN_KEY OTA_TEST_KEYS_DIR "/codesign-test.key"

#define OLD_LEN 3000u
#define NEW_LEN 5000u
#define MAX_FILE 65536u

/* State record phases (see ota_port_posix.h). */
enum { PH_VALID = 0, PH_ACTIVATED = 1, PH_TESTING = 2, PH_REVERTED = 3 };

typedef struct fx {
    char tmp[64];
    char root[128];
    char certs[128];
    ota_port_posix_config_t cfg;
    ota_port_posix_t port;
    ota_pal_t pal;
    uint8_t old_img[OLD_LEN];
    uint8_t new_img[NEW_LEN];
} fx_t;

/* ------------------------------------------------------------------------- */
/* File helpers.                                                              */

static const char *path_in(const char *dir, const char *name)
{
    static char bufs[4][256];
    static unsigned next;
    char *p = bufs[next++ % 4];
    int n = snprintf(p, sizeof bufs[0], "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < sizeof bufs[0]);
    return p;
}

static const char *rp(const fx_t *f, const char *name)
{
    return path_in(f->root, name);
}

static void put_file(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    if (len > 0) {
        assert_int_equal(fwrite(data, 1, len, fp), len);
    }
    assert_int_equal(fclose(fp), 0);
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static ino_t inode_of(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_ino;
}

/* Assert that path holds exactly len bytes equal to data. */
static void assert_file_is(const char *path, const uint8_t *data, size_t len)
{
    static uint8_t buf[2 * MAX_FILE];
    size_t got = 0;
    assert_int_equal(ota_test_read_file(path, buf, sizeof buf, &got), 0);
    assert_int_equal(got, len);
    assert_memory_equal(buf, data, len);
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        const char *p = path_in(dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s", p);
            remove_tree(sub);
        } else {
            unlink(p);
        }
    }
    closedir(d);
    rmdir(dir);
}

/* A state record as the header documents it. */
static void make_state(uint8_t rec[12], uint8_t phase, uint8_t flags)
{
    memcpy(rec, "OTPS", 4);
    rec[4] = 1;
    rec[5] = phase;
    rec[6] = flags;
    rec[7] = 0;
    ota_put_le32(&rec[8], ota_crc32(0, rec, 8));
}

static void put_state(const fx_t *f, uint8_t phase, uint8_t flags)
{
    uint8_t rec[12];
    make_state(rec, phase, flags);
    put_file(rp(f, "state"), rec, sizeof rec);
}

static void assert_state_is(const fx_t *f, uint8_t phase, uint8_t flags)
{
    uint8_t rec[12];
    make_state(rec, phase, flags);
    assert_file_is(rp(f, "state"), rec, sizeof rec);
}

/* ------------------------------------------------------------------------- */
/* Port helpers.                                                              */

static void boot(fx_t *f)
{
    ota_port_posix_deinit(&f->port);
    memset(&f->port, 0xA5, sizeof f->port); /* fresh RAM: nothing survives */
    memset(&f->pal, 0xA5, sizeof f->pal);
    assert_int_equal(ota_port_posix_init(&f->port, &f->cfg, &f->pal), OTA_OK);
}

static ota_pal_image_state_t image_state(fx_t *f)
{
    return f->pal.get_image_state(f->pal.ctx);
}

/* Fill *file for data, with a valid signature into sig (OTA_TEST_SIG_MAX). */
static void make_file(ota_pal_file_t *file, const uint8_t *data, uint32_t len, uint8_t *sig)
{
    size_t sig_len = 0;
    assert_int_equal(
        ota_test_sign_sha256_ecdsa(SIGN_KEY, data, len, sig, OTA_TEST_SIG_MAX, &sig_len), 0);
    memset(file, 0, sizeof *file);
    file->path = "/opt/device/firmware.bin";
    file->size = len;
    file->cert_name = CERT_NAME;
    file->sig_method = OTA_SIG_SHA256_ECDSA;
    file->signature = sig;
    file->signature_len = sig_len;
}

/* create, write in 1000-byte blocks from the end, close with file. */
static ota_err_t receive(fx_t *f, const ota_pal_file_t *file, const uint8_t *data)
{
    assert_int_equal(f->pal.create_file(f->pal.ctx, file), OTA_OK);
    uint32_t nblocks = (file->size + 999u) / 1000u;
    for (uint32_t b = nblocks; b-- > 0;) {
        uint32_t off = b * 1000u;
        uint32_t n = file->size - off < 1000u ? file->size - off : 1000u;
        assert_int_equal(f->pal.write_block(f->pal.ctx, off, data + off, n), (int32_t)n);
    }
    return f->pal.close_file(f->pal.ctx, file);
}

/* A whole update of data up to (not including) the reboot. */
static void update(fx_t *f, const uint8_t *data, uint32_t len)
{
    uint8_t sig[OTA_TEST_SIG_MAX];
    ota_pal_file_t file;
    make_file(&file, data, len, sig);
    assert_int_equal(receive(f, &file, data), OTA_OK);
    assert_int_equal(f->pal.activate(f->pal.ctx), OTA_OK);
    assert_int_equal(f->pal.reset(f->pal.ctx), OTA_OK);
}

/* ------------------------------------------------------------------------- */
/* Fixture.                                                                   */

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (f == NULL) {
        return -1;
    }
    snprintf(f->tmp, sizeof f->tmp, "/tmp/otter-posix-XXXXXX");
    if (mkdtemp(f->tmp) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->root, sizeof f->root, "%s/root", f->tmp); /* created by init */
    snprintf(f->certs, sizeof f->certs, "%s", OTA_TEST_KEYS_DIR);
    f->cfg.root_dir = f->root;
    f->cfg.cert_dir = f->certs;
    f->cfg.default_cert = CERT_NAME;
    f->cfg.max_file_size = MAX_FILE;
    f->port.root_fd = -1;
    f->port.rx_fd = -1;
    for (uint32_t i = 0; i < OLD_LEN; i++) {
        f->old_img[i] = (uint8_t)(i * 7u + 1u);
    }
    for (uint32_t i = 0; i < NEW_LEN; i++) {
        f->new_img[i] = (uint8_t)(i * 13u + 5u);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    ota_port_posix_deinit(&f->port);
    remove_tree(f->tmp);
    free(f);
    return 0;
}

/* Boot a device whose running image is old_img. */
static fx_t *device(void **state)
{
    fx_t *f = *state;
    boot(f);
    put_file(rp(f, "current.bin"), f->old_img, OLD_LEN);
    return f;
}

/* ------------------------------------------------------------------------- */
/* Init and deinit.                                                           */

static void test_init_fills_pal_and_creates_root(void **state)
{
    fx_t *f = *state;
    assert_false(exists(f->root));
    boot(f);
    assert_true(exists(f->root));
    assert_ptr_equal(f->pal.ctx, &f->port);
    assert_int_equal(f->pal.max_file_size, MAX_FILE);
    assert_int_equal(f->pal.block_align, 1);
    assert_int_equal(f->pal.progress_capacity, OTA_PORT_POSIX_PROGRESS_CAPACITY);
    assert_non_null(f->pal.create_file);
    assert_non_null(f->pal.write_block);
    assert_non_null(f->pal.close_file);
    assert_non_null(f->pal.abort);
    assert_non_null(f->pal.activate);
    assert_non_null(f->pal.reset);
    assert_non_null(f->pal.set_image_state);
    assert_non_null(f->pal.get_image_state);
    assert_non_null(f->pal.read_back);
    assert_non_null(f->pal.progress_save);
    assert_non_null(f->pal.progress_load);
    assert_non_null(f->pal.progress_clear);
    /* A fresh device: no state file is needed to be VALID. */
    assert_int_equal(image_state(f), OTA_PAL_IMAGE_STATE_VALID);
    assert_false(exists(rp(f, "state")));

    /* 0 = the default slot size. */
    f->cfg.max_file_size = 0;
    boot(f);
    assert_int_equal(f->pal.max_file_size, OTA_PORT_POSIX_DEFAULT_MAX_FILE_SIZE);
}

static void test_init_refuses_bad_config(void **state)
{
    fx_t *f = *state;
    ota_port_posix_config_t cfg = f->cfg;
    char long_name[OTA_PORT_POSIX_PATH_MAX + 8];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';

    assert_int_equal(ota_port_posix_init(NULL, &cfg, &f->pal), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_port_posix_init(&f->port, NULL, &f->pal), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_port_posix_init(&f->port, &cfg, NULL), OTA_ERR_INVALID_ARG);
    cfg.root_dir = NULL;
    assert_int_equal(ota_port_posix_init(&f->port, &cfg, &f->pal), OTA_ERR_INVALID_ARG);
    assert_null(f->pal.create_file); /* zeroed on failure */
    cfg.root_dir = "";
    assert_int_equal(ota_port_posix_init(&f->port, &cfg, &f->pal), OTA_ERR_INVALID_ARG);
    cfg = f->cfg;
    cfg.cert_dir = NULL;
    assert_int_equal(ota_port_posix_init(&f->port, &cfg, &f->pal), OTA_ERR_INVALID_ARG);
    cfg.cert_dir = long_name;
    assert_int_equal(ota_port_posix_init(&f->port, &cfg, &f->pal), OTA_ERR_INVALID_ARG);
    cfg = f->cfg;
    cfg.default_cert = long_name;
    assert_int_equal(ota_port_posix_init(&f->port, &cfg, &f->pal), OTA_ERR_INVALID_ARG);

    /* root_dir that is a regular file, or below a missing folder. */
    cfg = f->cfg;
    put_file(path_in(f->tmp, "plain"), "x", 1);
    cfg.root_dir = path_in(f->tmp, "plain");
    assert_int_equal(ota_port_posix_init(&f->port, &cfg, &f->pal), OTA_ERR_IO);
    cfg.root_dir = path_in(f->tmp, "missing/root");
    assert_int_equal(ota_port_posix_init(&f->port, &cfg, &f->pal), OTA_ERR_IO);
    assert_int_equal(f->port.root_fd, -1);
}

static void test_deinit_closes_and_keeps_state(void **state)
{
    fx_t *f = device(state);
    uint8_t sig[OTA_TEST_SIG_MAX];
    ota_pal_file_t file;
    make_file(&file, f->new_img, NEW_LEN, sig);
    assert_int_equal(f->pal.create_file(f->pal.ctx, &file), OTA_OK);

    ota_port_posix_deinit(&f->port);
    ota_port_posix_deinit(&f->port); /* twice is fine */
    ota_port_posix_deinit(NULL);
    assert_int_equal(f->pal.create_file(f->pal.ctx, &file), OTA_ERR_UNINITIALIZED);
    assert_int_equal(f->pal.write_block(f->pal.ctx, 0, f->new_img, 1), OTA_ERR_UNINITIALIZED);
    assert_int_equal(f->pal.abort(f->pal.ctx), OTA_ERR_UNINITIALIZED);
    assert_int_equal(f->pal.activate(f->pal.ctx), OTA_ERR_UNINITIALIZED);
    assert_int_equal(f->pal.progress_clear(f->pal.ctx), OTA_ERR_UNINITIALIZED);
    assert_int_equal(image_state(f), OTA_PAL_IMAGE_STATE_INVALID);
    /* deinit leaves the files alone. */
    assert_true(exists(rp(f, "receive.tmp")));
    assert_file_is(rp(f, "current.bin"), f->old_img, OLD_LEN);
}

/* ------------------------------------------------------------------------- */
/* The state record.                                                          */

static void test_state_replaced_atomically_and_survives_reboot(void **state)
{
    fx_t *f = device(state);
    update(f, f->new_img, NEW_LEN);

    /* activate wrote ACTIVATED through state.tmp + rename. */
    assert_state_is(f, PH_ACTIVATED, 0);
    assert_false(exists(rp(f, "state.tmp")));
    ino_t before = inode_of(rp(f, "state"));

    boot(f); /* boot step: TESTING, with the old image kept */
    assert_state_is(f, PH_TESTING, 1);
    assert_false(exists(rp(f, "state.tmp")));
    /* A new file was renamed over the record: never rewritten in place. */
    assert_true(inode_of(rp(f, "state")) != before);

    assert_int_equal(f->pal.set_image_state(f->pal.ctx, OTA_IMAGE_STATE_ACCEPTED), OTA_OK);
    assert_state_is(f, PH_VALID, 0);

    /* The commit survives any number of reboots. */
    for (int i = 0; i < 3; i++) {
        boot(f);
        assert_int_equal(image_state(f), OTA_PAL_IMAGE_STATE_VALID);
        assert_state_is(f, PH_VALID, 0);
        assert_file_is(rp(f, "current.bin"), f->new_img, NEW_LEN);
    }
}

static void test_leftover_state_tmp_is_ignored(void **state)
{
    fx_t *f = device(state);
    /* A state.tmp that never got renamed: here a whole TESTING record, which
     * would revert the image if it were read. The committed record is VALID. */
    uint8_t rec[12];
    make_state(rec, PH_TESTING, 1);
    put_file(rp(f, "state.tmp"), rec, sizeof rec);
    put_state(f, PH_VALID, 0);
    put_file(rp(f, "previous.bin"), f->new_img, NEW_LEN);

    boot(f);
    assert_int_equal(image_state(f), OTA_PAL_IMAGE_STATE_VALID);
    assert_file_is(rp(f, "current.bin"), f->old_img, OLD_LEN);
    assert_false(exists(rp(f, "state.tmp")));
    assert_false(exists(rp(f, "previous.bin")));
    assert_state_is(f, PH_VALID, 0);
}

static void test_corrupt_state_is_taken_as_valid(void **state)
{
    fx_t *f = device(state);
    uint8_t good[12];
    make_state(good, PH_TESTING, 1);

    /* Each variant: the record of a TESTING device (which would revert), damaged.
     * The port takes any record that fails its checks as VALID: the image in
     * current.bin keeps running, nothing is reverted, leftovers of an update
     * are deleted, and the record is rewritten as a proper VALID one. */
    struct {
        const char *what;
        uint8_t rec[16];
        size_t len;
    } cases[8];
    memset(cases, 0, sizeof cases);
    size_t n = 0;
    cases[n].what = "empty";
    cases[n++].len = 0;
    cases[n].what = "torn (first half)";
    memcpy(cases[n].rec, good, 6);
    cases[n++].len = 6;
    cases[n].what = "bad CRC";
    memcpy(cases[n].rec, good, 12);
    cases[n].rec[9] ^= 0x10;
    cases[n++].len = 12;
    cases[n].what = "bit flip in phase";
    memcpy(cases[n].rec, good, 12);
    cases[n].rec[5] ^= 0x01;
    cases[n++].len = 12;
    cases[n].what = "bad magic";
    memcpy(cases[n].rec, good, 12);
    cases[n].rec[0] = 'X';
    ota_put_le32(&cases[n].rec[8], ota_crc32(0, cases[n].rec, 8));
    cases[n++].len = 12;
    cases[n].what = "unknown version";
    memcpy(cases[n].rec, good, 12);
    cases[n].rec[4] = 2;
    ota_put_le32(&cases[n].rec[8], ota_crc32(0, cases[n].rec, 8));
    cases[n++].len = 12;
    cases[n].what = "unknown phase";
    memcpy(cases[n].rec, good, 12);
    cases[n].rec[5] = 9;
    ota_put_le32(&cases[n].rec[8], ota_crc32(0, cases[n].rec, 8));
    cases[n++].len = 12;
    cases[n].what = "trailing byte";
    memcpy(cases[n].rec, good, 12);
    cases[n++].len = 13;

    for (size_t i = 0; i < n; i++) {
        print_message("corrupt state: %s\n", cases[i].what);
        put_file(rp(f, "current.bin"), f->new_img, NEW_LEN);
        put_file(rp(f, "previous.bin"), f->old_img, OLD_LEN);
        put_file(rp(f, "state"), cases[i].rec, cases[i].len);
        boot(f);
        assert_int_equal(image_state(f), OTA_PAL_IMAGE_STATE_VALID);
        assert_file_is(rp(f, "current.bin"), f->new_img, NEW_LEN);
        assert_false(exists(rp(f, "previous.bin")));
        assert_state_is(f, PH_VALID, 0);
    }

    /* A corrupt record of an activated device: the update is dropped whole. */
    put_file(rp(f, "current.bin"), f->old_img, OLD_LEN);
    put_file(rp(f, "pending.bin"), f->new_img, NEW_LEN);
    put_file(rp(f, "state"), "garbage!garbage!", 16);
    boot(f);
    assert_file_is(rp(f, "current.bin"), f->old_img, OLD_LEN);
    assert_false(exists(rp(f, "pending.bin")));

    /* And the device can still take an update. */
    update(f, f->new_img, NEW_LEN);
    boot(f);
    assert_int_equal(image_state(f), OTA_PAL_IMAGE_STATE_PENDING_COMMIT);
    assert_file_is(rp(f, "current.bin"), f->new_img, NEW_LEN);
}

/* ------------------------------------------------------------------------- */
/* Activate, boot, accept, revert.                                            */

static void test_boot_after_activate(void **state)
{
    fx_t *f = device(state);
    update(f, f->new_img, NEW_LEN);

    /* Activated, not booted: the old image still runs. */
    assert_int_equal(image_state(f), OTA_PAL_IMAGE_STATE_VALID);
    assert_file_is(rp(f, "current.bin"), f->old_img, OLD_LEN);
    assert_file_is(rp(f, "pending.bin"), f->new_img, NEW_LEN);
    assert_false(exists(rp(f, "receive.tmp")));
    uint8_t b;
    assert_int_equal(f->pal.read_back(f->pal.ctx, 0, &b, 1), OTA_ERR_NULL_FILE_CONTEXT);
    /* A second activate has nothing to activate. */
    assert_int_equal(f->pal.activate(f->pal.ctx), OTA_ERR_ACTIVATE_FAILED);

    boot(f);
    assert_int_equal(image_state(f), OTA_PAL_IMAGE_STATE_PENDING_COMMIT);
    assert_file_is(rp(f, "current.bin"), f->new_img, NEW_LEN);
    assert_file_is(rp(f, "previous.bin"), f->old_img, OLD_LEN);
    assert_false(exists(rp(f, "pending.bin")));
    /* The job's path was never used. */
    assert_false(exists("/opt/device/firmware.bin"));
}

static void test_reboot_in_testing_reverts(void **state)
{
    fx_t *f = device(state);
    update(f, f->new_img, NEW_LEN);
    boot(f);
    assert_int_equal(image_state(f), OTA_PAL_IMAGE_STATE_PENDING_COMMIT);
    /* TESTING is only a word: it changes nothing. */
    assert_int_equal(f->pal.set_image_state(f->pal.ctx, OTA_IMAGE_STATE_TESTING), OTA_OK);
    assert_state_is(f, PH_TESTING, 1);

    boot(f); /* reset without accept: the self-test failed */
    assert_int_equal(image_state(f), OTA_PAL_IMAGE_STATE_VALID);
    assert_file_is(rp(f, "current.bin"), f->old_img, OLD_LEN);
    assert_false(exists(rp(f, "previous.bin")));
    assert_state_is(f, PH_REVERTED, 0);
    assert_int_equal(f->pal.set_image_state(f->pal.ctx, OTA_IMAGE_STATE_ACCEPTED),
                     OTA_ERR_COMMIT_FAILED);

    boot(f); /* REVERTED is stable */
    assert_int_equal(image_state(f), OTA_PAL_IMAGE_STATE_VALID);
    assert_file_is(rp(f, "current.bin"), f->old_img, OLD_LEN);

    /* The next update still works. */
    update(f, f->new_img, NEW_LEN);
    boot(f);
    assert_int_equal(image_state(f), OTA_PAL_IMAGE_STATE_PENDING_COMMIT);
}

static void test_accept_removes_previous(void **state)
{
    fx_t *f = device(state);
    /* Accepted refused before the new image has booted. */
    update(f, f->new_img, NEW_LEN);
    assert_int_equal(f->pal.set_image_state(f->pal.ctx, OTA_IMAGE_STATE_ACCEPTED),
                     OTA_ERR_COMMIT_FAILED);
    boot(f);
    assert_true(exists(rp(f, "previous.bin")));
    assert_int_equal(f->pal.set_image_state(f->pal.ctx, OTA_IMAGE_STATE_ACCEPTED), OTA_OK);
    assert_int_equal(image_state(f), OTA_PAL_IMAGE_STATE_VALID);
    assert_false(exists(rp(f, "previous.bin")));
    assert_file_is(rp(f, "current.bin"), f->new_img, NEW_LEN);
    /* Only once. */
    assert_int_equal(f->pal.set_image_state(f->pal.ctx, OTA_IMAGE_STATE_ACCEPTED),
                     OTA_ERR_COMMIT_FAILED);
    boot(f);
    assert_int_equal(image_state(f), OTA_PAL_IMAGE_STATE_VALID);
    assert_file_is(rp(f, "current.bin"), f->new_img, NEW_LEN);
}

static void test_reject_reverts_at_once(void **state)
{
    static const ota_image_state_t refusals[] = {OTA_IMAGE_STATE_REJECTED, OTA_IMAGE_STATE_ABORTED};
    for (size_t i = 0; i < 2; i++) {
        fx_t *f = device(state);
        update(f, f->new_img, NEW_LEN);
        boot(f);
        assert_int_equal(f->pal.set_image_state(f->pal.ctx, refusals[i]), OTA_OK);
        assert_int_equal(image_state(f), OTA_PAL_IMAGE_STATE_INVALID);
        assert_file_is(rp(f, "current.bin"), f->old_img, OLD_LEN);
        assert_false(exists(rp(f, "previous.bin")));
        assert_state_is(f, PH_REVERTED, 0);
        boot(f);
        assert_int_equal(image_state(f), OTA_PAL_IMAGE_STATE_VALID);
        assert_file_is(rp(f, "current.bin"), f->old_img, OLD_LEN);
    }
}

static void test_reject_activated_image_before_boot(void **state)
{
    fx_t *f = device(state);
    update(f, f->new_img, NEW_LEN);
    assert_int_equal(f->pal.set_image_state(f->pal.ctx, OTA_IMAGE_STATE_REJECTED), OTA_OK);
    assert_int_equal(image_state(f), OTA_PAL_IMAGE_STATE_INVALID);
    assert_false(exists(rp(f, "pending.bin")));
    assert_state_is(f, PH_REVERTED, 0);
    boot(f);
    assert_int_equal(image_state(f), OTA_PAL_IMAGE_STATE_VALID);
    assert_file_is(rp(f, "current.bin"), f->old_img, OLD_LEN);
}

static void test_activate_refused_while_testing(void **state)
{
    fx_t *f = device(state);
    update(f, f->new_img, NEW_LEN);
    boot(f);
    uint8_t sig[OTA_TEST_SIG_MAX];
    ota_pal_file_t file;
    make_file(&file, f->old_img, OLD_LEN, sig);
    /* The untested image must not become the fallback: nothing is received
     * while it is under test, and nothing is activated over it. */
    assert_int_equal(f->pal.create_file(f->pal.ctx, &file), OTA_ERR_RX_FILE_CREATE_FAILED);
    assert_int_equal(f->pal.activate(f->pal.ctx), OTA_ERR_ACTIVATE_FAILED);
    assert_file_is(rp(f, "previous.bin"), f->old_img, OLD_LEN);
    /* After the commit a new file is received and activated. */
    assert_int_equal(f->pal.set_image_state(f->pal.ctx, OTA_IMAGE_STATE_ACCEPTED), OTA_OK);
    assert_int_equal(receive(f, &file, f->old_img), OTA_OK);
    assert_int_equal(f->pal.activate(f->pal.ctx), OTA_OK);
    boot(f);
    assert_file_is(rp(f, "current.bin"), f->old_img, OLD_LEN);
    assert_file_is(rp(f, "previous.bin"), f->new_img, NEW_LEN);
}

static void test_first_image_without_old_one(void **state)
{
    fx_t *f = *state;
    boot(f); /* no current.bin at all */
    update(f, f->new_img, NEW_LEN);
    boot(f);
    assert_int_equal(image_state(f), OTA_PAL_IMAGE_STATE_PENDING_COMMIT);
    assert_file_is(rp(f, "current.bin"), f->new_img, NEW_LEN);
    assert_false(exists(rp(f, "previous.bin")));
    assert_state_is(f, PH_TESTING, 0);
    /* Not accepted: there is no old image to go back to, so the refused one
     * is removed ("exactly the old image" = none). */
    boot(f);
    assert_false(exists(rp(f, "current.bin")));
    assert_int_equal(image_state(f), OTA_PAL_IMAGE_STATE_VALID);

    update(f, f->new_img, NEW_LEN);
    boot(f);
    assert_int_equal(f->pal.set_image_state(f->pal.ctx, OTA_IMAGE_STATE_ACCEPTED), OTA_OK);
    boot(f);
    assert_file_is(rp(f, "current.bin"), f->new_img, NEW_LEN);
}

/* ------------------------------------------------------------------------- */
/* Crash safety: every file situation a crash can leave.                      */

enum { IMG_NONE, IMG_OLD, IMG_NEW, IMG_JUNK };

typedef struct crash_case {
    const char *what;
    uint8_t phase, flags;
    uint8_t current, previous, pending;
    uint8_t expect_current;    /* after the first boot */
    int expect_pending_commit; /* after the first boot */
} crash_case_t;

static void put_img(const fx_t *f, const char *name, uint8_t img)
{
    static const uint8_t junk[] = "half a copy of something";
    unlink(rp(f, name));
    if (img == IMG_OLD) {
        put_file(rp(f, name), f->old_img, OLD_LEN);
    } else if (img == IMG_NEW) {
        put_file(rp(f, name), f->new_img, NEW_LEN);
    } else if (img == IMG_JUNK) {
        put_file(rp(f, name), junk, sizeof junk);
    }
}

static void assert_img(const fx_t *f, const char *name, uint8_t img)
{
    if (img == IMG_OLD) {
        assert_file_is(rp(f, name), f->old_img, OLD_LEN);
    } else if (img == IMG_NEW) {
        assert_file_is(rp(f, name), f->new_img, NEW_LEN);
    } else {
        assert_false(exists(rp(f, name)));
    }
}

static void test_boot_step_crash_points(void **state)
{
    /* Files and record at each point where activate, the boot step, revert or
     * accept can stop. */
    static const crash_case_t cases[] = {
        /* activate: receive.tmp renamed to pending.bin, record not yet written. */
        {"activate before record", PH_VALID, 0, IMG_OLD, IMG_NONE, IMG_NEW, IMG_OLD, 0},
        /* boot step, from the start. */
        {"boot: nothing done", PH_ACTIVATED, 0, IMG_OLD, IMG_NONE, IMG_NEW, IMG_NEW, 1},
        {"boot: stale previous", PH_ACTIVATED, 0, IMG_OLD, IMG_JUNK, IMG_NEW, IMG_NEW, 1},
        {"boot: previous linked", PH_ACTIVATED, 0, IMG_OLD, IMG_OLD, IMG_NEW, IMG_NEW, 1},
        {"boot: current renamed (no links)", PH_ACTIVATED, 0, IMG_NONE, IMG_OLD, IMG_NEW, IMG_NEW,
         1},
        {"boot: pending renamed, record not written", PH_ACTIVATED, 0, IMG_NEW, IMG_OLD, IMG_NONE,
         IMG_NEW, 1},
        {"boot: done", PH_TESTING, 1, IMG_NEW, IMG_OLD, IMG_NONE, IMG_OLD, 0},
        /* revert: previous renamed back, record not yet REVERTED. */
        {"revert: renamed, record not written", PH_TESTING, 1, IMG_OLD, IMG_NONE, IMG_NONE, IMG_OLD,
         0},
        /* accept: record VALID, previous.bin not yet deleted. */
        {"accept: record written, previous kept", PH_VALID, 0, IMG_NEW, IMG_OLD, IMG_NONE, IMG_NEW,
         0},
        /* reject before boot: record REVERTED, pending.bin not yet deleted. */
        {"reject before boot: pending kept", PH_REVERTED, 0, IMG_OLD, IMG_NONE, IMG_NEW, IMG_OLD,
         0},
    };
    fx_t *f = *state;
    boot(f);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const crash_case_t *c = &cases[i];
        for (int second = 0; second < 3; second++) {
            /* second: 0 = boot again without accepting, 1 = accept, 2 = update again */
            print_message("crash point: %s (then %s)\n", c->what,
                          second == 0   ? "reboot"
                          : second == 1 ? "accept"
                                        : "update");
            ota_port_posix_deinit(&f->port);
            put_state(f, c->phase, c->flags);
            put_img(f, "current.bin", c->current);
            put_img(f, "previous.bin", c->previous);
            put_img(f, "pending.bin", c->pending);
            boot(f);
            /* Exactly the old image or exactly the new one. */
            assert_img(f, "current.bin", c->expect_current);
            assert_img(f, "pending.bin", IMG_NONE);
            if (c->expect_pending_commit) {
                assert_int_equal(image_state(f), OTA_PAL_IMAGE_STATE_PENDING_COMMIT);
                assert_img(f, "previous.bin", IMG_OLD);
                assert_state_is(f, PH_TESTING, 1);
            } else {
                assert_int_equal(image_state(f), OTA_PAL_IMAGE_STATE_VALID);
                assert_img(f, "previous.bin", IMG_NONE);
            }
            if (second == 0) {
                boot(f);
                /* An unaccepted new image is gone after one more boot. */
                assert_img(f, "current.bin",
                           c->expect_pending_commit ? IMG_OLD : c->expect_current);
                assert_int_equal(image_state(f), OTA_PAL_IMAGE_STATE_VALID);
            } else if (second == 1) {
                ota_err_t want = c->expect_pending_commit ? OTA_OK : OTA_ERR_COMMIT_FAILED;
                assert_int_equal(f->pal.set_image_state(f->pal.ctx, OTA_IMAGE_STATE_ACCEPTED),
                                 want);
                boot(f);
                assert_img(f, "current.bin", c->expect_current);
                assert_img(f, "previous.bin", IMG_NONE);
                assert_int_equal(image_state(f), OTA_PAL_IMAGE_STATE_VALID);
            } else {
                if (c->expect_pending_commit) {
                    assert_int_equal(f->pal.set_image_state(f->pal.ctx, OTA_IMAGE_STATE_ACCEPTED),
                                     OTA_OK);
                }
                update(f, f->old_img, OLD_LEN);
                boot(f);
                assert_int_equal(image_state(f), OTA_PAL_IMAGE_STATE_PENDING_COMMIT);
                assert_img(f, "current.bin", IMG_OLD);
            }
            unlink(rp(f, "previous.bin"));
        }
    }
}

/* A boot interrupted at each point of the boot step, then interrupted again
 * during the recovery boot (depth 2), using the real files of an update. */
static void test_boot_step_interrupted_twice(void **state)
{
    fx_t *f = device(state);
    update(f, f->new_img, NEW_LEN);
    ota_port_posix_deinit(&f->port);
    /* First cut: previous linked, pending not renamed. */
    assert_int_equal(link(rp(f, "current.bin"), rp(f, "previous.bin")), 0);
    /* Second cut during the recovery: the old current renamed away (as
     * without hard links), pending not yet renamed. */
    assert_int_equal(unlink(rp(f, "previous.bin")), 0);
    assert_int_equal(rename(rp(f, "current.bin"), rp(f, "previous.bin")), 0);
    boot(f);
    assert_img(f, "current.bin", IMG_NEW);
    assert_img(f, "previous.bin", IMG_OLD);
    assert_int_equal(image_state(f), OTA_PAL_IMAGE_STATE_PENDING_COMMIT);
}

/* ------------------------------------------------------------------------- */
/* Signer names and the job's path.                                           */

static void test_cert_name_traversal_refused(void **state)
{
    fx_t *f = *state;
    /* cert_dir is an empty folder; a real certificate sits one level up and
     * in a subfolder, reachable only through a path in the name. */
    char certs[200], sub[256];
    snprintf(certs, sizeof certs, "%s/certs", f->tmp);
    snprintf(sub, sizeof sub, "%s/sub", certs);
    assert_int_equal(mkdir(certs, 0700), 0);
    assert_int_equal(mkdir(sub, 0700), 0);
    static uint8_t pem[8192];
    size_t pem_len = 0;
    assert_int_equal(ota_test_read_file(OTA_TEST_KEYS_DIR "/" CERT_NAME, pem, sizeof pem, &pem_len),
                     0);
    put_file(path_in(f->tmp, CERT_NAME), pem, pem_len);
    put_file(path_in(sub, CERT_NAME), pem, pem_len);
    assert_int_equal(mkfifo(path_in(certs, "fifo.crt"), 0600), 0);
    /* Larger than OTA_VERIFY_MAX_PEM_LEN - 1: refused unread. */
    static uint8_t big[OTA_VERIFY_MAX_PEM_LEN + 100];
    memset(big, 'A', sizeof big);
    memcpy(big, pem, pem_len);
    put_file(path_in(certs, "big.crt"), big, sizeof big);
    put_file(path_in(certs, "empty.crt"), "", 0);
    f->cfg.cert_dir = certs;
    f->cfg.default_cert = NULL;
    boot(f);

    char long_name[OTA_PORT_POSIX_PATH_MAX + 10];
    memset(long_name, 'c', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    const char *bad[] = {"",
                         "..",
                         "../" CERT_NAME,
                         "sub/" CERT_NAME,
                         "sub/../../" CERT_NAME,
                         OTA_TEST_KEYS_DIR "/" CERT_NAME,
                         "a..b",
                         ".",
                         "fifo.crt",
                         "big.crt",
                         "empty.crt",
                         "missing.crt",
                         long_name,
                         NULL /* no default configured */};
    uint8_t sig[OTA_TEST_SIG_MAX];
    ota_pal_file_t file;
    make_file(&file, f->new_img, NEW_LEN, sig);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        print_message("cert name: \"%.40s\"\n", bad[i] ? bad[i] : "(NULL)");
        file.cert_name = bad[i];
        assert_int_equal(receive(f, &file, f->new_img), OTA_ERR_BAD_SIGNER_CERT);
        assert_int_equal(image_state(f), OTA_PAL_IMAGE_STATE_INVALID);
        assert_false(exists(rp(f, "receive.tmp")));
        assert_int_equal(f->pal.activate(f->pal.ctx), OTA_ERR_ACTIVATE_FAILED);
    }

    /* The same certificate placed in cert_dir works, by name and as default. */
    put_file(path_in(certs, CERT_NAME), pem, pem_len);
    file.cert_name = CERT_NAME;
    assert_int_equal(receive(f, &file, f->new_img), OTA_OK);
    assert_int_equal(image_state(f), OTA_PAL_IMAGE_STATE_VALID);
    f->cfg.default_cert = CERT_NAME;
    boot(f);
    file.cert_name = NULL;
    assert_int_equal(receive(f, &file, f->new_img), OTA_OK);
}

static void test_failed_close_deletes_file(void **state)
{
    fx_t *f = device(state);
    uint8_t sig[OTA_TEST_SIG_MAX];
    ota_pal_file_t file;
    make_file(&file, f->new_img, NEW_LEN, sig);
    f->new_img[100] ^= 1; /* one flipped byte */
    assert_int_equal(receive(f, &file, f->new_img), OTA_ERR_SIGNATURE_CHECK_FAILED);
    assert_false(exists(rp(f, "receive.tmp")));
    assert_int_equal(image_state(f), OTA_PAL_IMAGE_STATE_INVALID);
    uint8_t b;
    assert_int_equal(f->pal.read_back(f->pal.ctx, 0, &b, 1), OTA_ERR_NULL_FILE_CONTEXT);
    assert_int_equal(f->pal.activate(f->pal.ctx), OTA_ERR_ACTIVATE_FAILED);
    assert_false(exists(rp(f, "pending.bin")));
    /* The flag is this boot's only. */
    boot(f);
    assert_int_equal(image_state(f), OTA_PAL_IMAGE_STATE_VALID);
    /* Other methods and over-long signatures fail the check. */
    f->new_img[100] ^= 1;
    file.sig_method = (ota_sig_method_t)7;
    assert_int_equal(receive(f, &file, f->new_img), OTA_ERR_SIGNATURE_CHECK_FAILED);
    file.sig_method = OTA_SIG_SHA256_ECDSA;
    file.signature_len = OTA_PAL_SIGNATURE_MAX + 1;
    assert_int_equal(receive(f, &file, f->new_img), OTA_ERR_SIGNATURE_CHECK_FAILED);
    /* A new transfer clears the flag. */
    make_file(&file, f->new_img, NEW_LEN, sig);
    assert_int_equal(receive(f, &file, f->new_img), OTA_OK);
    assert_int_equal(image_state(f), OTA_PAL_IMAGE_STATE_VALID);
}

static void test_receive_file_and_read_back(void **state)
{
    fx_t *f = device(state);
    uint8_t sig[OTA_TEST_SIG_MAX];
    ota_pal_file_t file;
    make_file(&file, f->new_img, NEW_LEN, sig);
    file.path = "../../../../../../tmp/otter-escape.bin";
    assert_int_equal(f->pal.create_file(f->pal.ctx, &file), OTA_OK);
    /* Full size from the start, unwritten bytes zero. */
    struct stat st;
    assert_int_equal(stat(rp(f, "receive.tmp"), &st), 0);
    assert_int_equal(st.st_size, NEW_LEN);
    uint8_t buf[16];
    assert_int_equal(f->pal.read_back(f->pal.ctx, NEW_LEN - 16, buf, 16), 16);
    uint8_t zeros[16] = {0};
    assert_memory_equal(buf, zeros, 16);
    assert_int_equal(f->pal.write_block(f->pal.ctx, NEW_LEN - 1, f->new_img, 2),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(f->pal.write_block(f->pal.ctx, UINT32_MAX, f->new_img, 2),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(f->pal.read_back(f->pal.ctx, UINT32_MAX, buf, 2), OTA_ERR_INVALID_ARG);
    assert_int_equal(f->pal.close_file(f->pal.ctx, &file), OTA_ERR_SIGNATURE_CHECK_FAILED);

    assert_int_equal(receive(f, &file, f->new_img), OTA_OK);
    assert_false(exists("/tmp/otter-escape.bin"));
    /* Closed: no more writes, still readable until activate. */
    assert_int_equal(f->pal.write_block(f->pal.ctx, 0, f->new_img, 1), OTA_ERR_NULL_FILE_CONTEXT);
    assert_int_equal(f->pal.close_file(f->pal.ctx, &file), OTA_ERR_NULL_FILE_CONTEXT);
    assert_int_equal(f->pal.read_back(f->pal.ctx, 1000, buf, 16), 16);
    assert_memory_equal(buf, f->new_img + 1000, 16);
    assert_file_is(rp(f, "receive.tmp"), f->new_img, NEW_LEN);

    /* A new create_file truncates the earlier file; abort deletes it. */
    file.size = NEW_LEN / 2;
    assert_int_equal(f->pal.create_file(f->pal.ctx, &file), OTA_OK);
    assert_int_equal(stat(rp(f, "receive.tmp"), &st), 0);
    assert_int_equal(st.st_size, NEW_LEN / 2);
    assert_int_equal(f->pal.abort(f->pal.ctx), OTA_OK);
    assert_false(exists(rp(f, "receive.tmp")));
    assert_int_equal(f->pal.abort(f->pal.ctx), OTA_OK);

    /* Slot size limits. */
    file.size = MAX_FILE;
    assert_int_equal(f->pal.create_file(f->pal.ctx, &file), OTA_OK);
    file.size = MAX_FILE + 1;
    assert_int_equal(f->pal.create_file(f->pal.ctx, &file), OTA_ERR_RX_FILE_TOO_LARGE);
    file.size = 0;
    assert_int_equal(f->pal.create_file(f->pal.ctx, &file), OTA_ERR_INVALID_ARG);
    assert_int_equal(f->pal.create_file(NULL, &file), OTA_ERR_INVALID_ARG);
    assert_int_equal(f->pal.create_file(f->pal.ctx, NULL), OTA_ERR_INVALID_ARG);
}

static void test_resume_reopens_only_a_matching_file(void **state)
{
    fx_t *f = device(state);
    uint8_t sig[OTA_TEST_SIG_MAX];
    ota_pal_file_t file;
    uint8_t done[1] = {0x01}; /* block 0 of 5 (1000-byte blocks) */
    make_file(&file, f->new_img, NEW_LEN, sig);
    /* Nothing interrupted: nothing to resume. */
    assert_int_equal(f->pal.resume_file(f->pal.ctx, &file, 1000, done, 5), OTA_ERR_NOT_FOUND);
    assert_int_equal(f->pal.create_file(f->pal.ctx, &file), OTA_OK);
    assert_int_equal(f->pal.write_block(f->pal.ctx, 0, f->new_img, 1000), 1000);
    assert_int_equal(f->pal.progress_save(f->pal.ctx, done, sizeof done), OTA_OK);
    boot(f);
    /* Another size is another file. */
    file.size = NEW_LEN - 1;
    assert_int_equal(f->pal.resume_file(f->pal.ctx, &file, 1000, done, 5), OTA_ERR_NOT_FOUND);
    file.size = MAX_FILE + 1;
    assert_int_equal(f->pal.resume_file(f->pal.ctx, &file, 1000, done, 66),
                     OTA_ERR_RX_FILE_TOO_LARGE);
    file.size = NEW_LEN;
    assert_int_equal(f->pal.resume_file(f->pal.ctx, &file, 1000, done, 4), OTA_ERR_INVALID_ARG);
    assert_int_equal(f->pal.resume_file(f->pal.ctx, &file, 1000, done, 5), OTA_OK);
    assert_int_equal(done[0], 0x01); /* files keep every block */
    uint8_t buf[1000];
    assert_int_equal(f->pal.read_back(f->pal.ctx, 0, buf, sizeof buf), (int32_t)sizeof buf);
    assert_memory_equal(buf, f->new_img, sizeof buf);
    for (uint32_t off = 1000; off < NEW_LEN; off += 1000) {
        assert_int_equal(f->pal.write_block(f->pal.ctx, off, f->new_img + off, 1000), 1000);
    }
    assert_int_equal(f->pal.close_file(f->pal.ctx, &file), OTA_OK);
    /* Activated: nothing is received until the new image is decided. */
    assert_int_equal(f->pal.activate(f->pal.ctx), OTA_OK);
    assert_int_equal(f->pal.resume_file(f->pal.ctx, &file, 1000, done, 5),
                     OTA_ERR_RX_FILE_CREATE_FAILED);
    assert_int_equal(f->pal.create_file(f->pal.ctx, &file), OTA_ERR_RX_FILE_CREATE_FAILED);
}

/* ------------------------------------------------------------------------- */
/* Progress store.                                                            */

static void test_progress_round_trip_replace_clear(void **state)
{
    fx_t *f = device(state);
    uint8_t a[100], b[37], buf[200];
    memset(a, 0xAA, sizeof a);
    for (size_t i = 0; i < sizeof b; i++) {
        b[i] = (uint8_t)i;
    }
    assert_int_equal(f->pal.progress_load(f->pal.ctx, buf, sizeof buf), OTA_ERR_NOT_FOUND);
    assert_int_equal(f->pal.progress_save(f->pal.ctx, a, sizeof a), OTA_OK);
    assert_int_equal(f->pal.progress_load(f->pal.ctx, buf, sizeof buf), (int32_t)sizeof a);
    assert_memory_equal(buf, a, sizeof a);

    /* Replace with a shorter record; atomic (new file renamed over). */
    ino_t before = inode_of(rp(f, "progress"));
    assert_int_equal(f->pal.progress_save(f->pal.ctx, b, sizeof b), OTA_OK);
    assert_true(inode_of(rp(f, "progress")) != before);
    assert_false(exists(rp(f, "progress.tmp")));
    boot(f);
    memset(buf, 0, sizeof buf);
    assert_int_equal(f->pal.progress_load(f->pal.ctx, buf, sizeof buf), (int32_t)sizeof b);
    assert_memory_equal(buf, b, sizeof b);
    /* Exactly the record's size is enough; one less is not. */
    assert_int_equal(f->pal.progress_load(f->pal.ctx, buf, sizeof b), (int32_t)sizeof b);
    assert_int_equal(f->pal.progress_load(f->pal.ctx, buf, sizeof b - 1), OTA_ERR_OUT_OF_MEMORY);
    assert_int_equal(f->pal.progress_load(f->pal.ctx, buf, 0), OTA_ERR_OUT_OF_MEMORY);

    /* The on-disk format of the header. */
    uint8_t disk[16 + sizeof b];
    memcpy(disk, "OTPR\x01\0\0\0", 8);
    ota_put_le32(&disk[8], sizeof b);
    memcpy(&disk[16], b, sizeof b);
    uint32_t crc = ota_crc32(ota_crc32(0, disk, 12), b, sizeof b);
    ota_put_le32(&disk[12], crc);
    assert_file_is(rp(f, "progress"), disk, sizeof disk);

    assert_int_equal(f->pal.progress_clear(f->pal.ctx), OTA_OK);
    assert_int_equal(f->pal.progress_load(f->pal.ctx, buf, sizeof buf), OTA_ERR_NOT_FOUND);
    assert_int_equal(f->pal.progress_clear(f->pal.ctx), OTA_OK);
    boot(f);
    assert_int_equal(f->pal.progress_load(f->pal.ctx, buf, sizeof buf), OTA_ERR_NOT_FOUND);
}

static void test_progress_capacity_and_args(void **state)
{
    fx_t *f = device(state);
    static uint8_t rec[OTA_PORT_POSIX_PROGRESS_CAPACITY + 1];
    static uint8_t buf[OTA_PORT_POSIX_PROGRESS_CAPACITY + 1];
    for (size_t i = 0; i < sizeof rec; i++) {
        rec[i] = (uint8_t)(i * 31u);
    }
    const uint32_t cap = f->pal.progress_capacity;
    assert_int_equal(f->pal.progress_save(f->pal.ctx, rec, 0), OTA_ERR_INVALID_ARG);
    assert_int_equal(f->pal.progress_save(f->pal.ctx, rec, cap + 1), OTA_ERR_INVALID_ARG);
    assert_int_equal(f->pal.progress_save(f->pal.ctx, NULL, 1), OTA_ERR_INVALID_ARG);
    assert_int_equal(f->pal.progress_save(NULL, rec, 1), OTA_ERR_INVALID_ARG);
    assert_int_equal(f->pal.progress_load(f->pal.ctx, NULL, 1), OTA_ERR_INVALID_ARG);
    assert_int_equal(f->pal.progress_load(NULL, buf, 1), OTA_ERR_INVALID_ARG);
    assert_int_equal(f->pal.progress_clear(NULL), OTA_ERR_INVALID_ARG);
    assert_false(exists(rp(f, "progress")));

    assert_int_equal(f->pal.progress_save(f->pal.ctx, rec, cap), OTA_OK);
    assert_int_equal(f->pal.progress_load(f->pal.ctx, buf, cap), (int32_t)cap);
    assert_memory_equal(buf, rec, cap);
    assert_int_equal(f->pal.progress_load(f->pal.ctx, buf, cap - 1), OTA_ERR_OUT_OF_MEMORY);
    /* A torn record too large for buf is no record, not OUT_OF_MEMORY. */
    int fd = open(rp(f, "progress"), O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "\x55", 1, 16 + cap - 1), 1);
    close(fd);
    assert_int_equal(f->pal.progress_load(f->pal.ctx, buf, 10), OTA_ERR_NOT_FOUND);
    assert_int_equal(f->pal.progress_load(f->pal.ctx, buf, cap), OTA_ERR_NOT_FOUND);
    /* A failed load falls back to nothing; a new save works. */
    assert_int_equal(f->pal.progress_save(f->pal.ctx, rec, 3), OTA_OK);
    assert_int_equal(f->pal.progress_load(f->pal.ctx, buf, 3), 3);
}

static void test_progress_torn_or_garbage_is_not_found(void **state)
{
    fx_t *f = device(state);
    uint8_t rec[64], buf[128];
    for (size_t i = 0; i < sizeof rec; i++) {
        rec[i] = (uint8_t)(0x40 + i);
    }
    assert_int_equal(f->pal.progress_save(f->pal.ctx, rec, sizeof rec), OTA_OK);
    uint8_t good[16 + sizeof rec];
    size_t good_len = 0;
    assert_int_equal(ota_test_read_file(rp(f, "progress"), good, sizeof good, &good_len), 0);
    assert_int_equal(good_len, sizeof good);

    uint8_t bad[sizeof good + 8];
    for (int v = 0; v < 10; v++) {
        size_t len = sizeof good;
        memcpy(bad, good, sizeof good);
        const char *what = "";
        switch (v) {
        case 0:
            what = "empty";
            len = 0;
            break;
        case 1:
            what = "3 bytes";
            len = 3;
            break;
        case 2:
            what = "header only";
            len = 16;
            break;
        case 3:
            what = "cut in the record";
            len = 16 + 20;
            break;
        case 4:
            what = "flipped byte in the record";
            bad[16 + 10] ^= 0x80;
            break;
        case 5:
            what = "bad magic";
            bad[1] = 'X';
            break;
        case 6:
            what = "length larger than the file";
            bad[8] = (uint8_t)(bad[8] + 1);
            break;
        case 7:
            what = "trailing bytes";
            len = sizeof good + 8;
            break;
        case 8:
            what = "version 2";
            bad[4] = 2;
            break;
        default:
            what = "random garbage";
            for (size_t i = 0; i < sizeof bad; i++) {
                bad[i] = (uint8_t)(i * 151u + 17u);
            }
            break;
        }
        print_message("progress file: %s\n", what);
        put_file(rp(f, "progress"), bad, len);
        assert_int_equal(f->pal.progress_load(f->pal.ctx, buf, sizeof buf), OTA_ERR_NOT_FOUND);
        boot(f);
        assert_int_equal(f->pal.progress_load(f->pal.ctx, buf, sizeof buf), OTA_ERR_NOT_FOUND);
    }
    /* A leftover progress.tmp (a save cut before its rename) is not the record
     * and is removed at boot. */
    put_file(rp(f, "progress"), good, sizeof good);
    put_file(rp(f, "progress.tmp"), "junk", 4);
    boot(f);
    assert_false(exists(rp(f, "progress.tmp")));
    assert_int_equal(f->pal.progress_load(f->pal.ctx, buf, sizeof buf), (int32_t)sizeof rec);
    assert_memory_equal(buf, rec, sizeof rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_init_fills_pal_and_creates_root, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_refuses_bad_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deinit_closes_and_keeps_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_replaced_atomically_and_survives_reboot, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_leftover_state_tmp_is_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_state_is_taken_as_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_boot_after_activate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reboot_in_testing_reverts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accept_removes_previous, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reject_reverts_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reject_activated_image_before_boot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_activate_refused_while_testing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_image_without_old_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_boot_step_crash_points, setup, teardown),
        cmocka_unit_test_setup_teardown(test_boot_step_interrupted_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cert_name_traversal_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_close_deletes_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receive_file_and_read_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_reopens_only_a_matching_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_progress_round_trip_replace_clear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_progress_capacity_and_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_progress_torn_or_garbage_is_not_found, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("port_posix", tests, NULL, NULL);
}
