/*
 * otter: the posix reference port (files on a POSIX.1-2008 file system).
 * See ota_port_posix.h for the files, the on-disk formats and the boot steps.
 *
 * Every file the port owns is reached through a descriptor of root_dir
 * (openat/renameat/linkat/unlinkat/fstatat) by a fixed name: no path is ever
 * built from job data. Durability rule: a file that must survive is written,
 * fsync'ed, renamed into place, and then root_dir is fsync'ed; a step is only
 * recorded in the state file after the files it moved are durable.
 */
#define _POSIX_C_SOURCE 200809L
#define _FILE_OFFSET_BITS 64

#include "otter/ota_port_posix.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "otter/ota_bytes.h"
#include "otter/ota_crc32.h"
#include "otter/ota_verify_close.h"

/* File names inside root_dir. */
#define NAME_CURRENT "current.bin"
#define NAME_PREVIOUS "previous.bin"
#define NAME_PENDING "pending.bin"
#define NAME_RECEIVE "receive.tmp"
#define NAME_STATE "state"
#define NAME_STATE_TMP "state.tmp"
#define NAME_PROGRESS "progress"
#define NAME_PROGRESS_TMP "progress.tmp"

/* Persisted phases (byte 5 of the state record). */
enum { PHASE_VALID = 0, PHASE_ACTIVATED = 1, PHASE_TESTING = 2, PHASE_REVERTED = 3 };

/* The file being received, in RAM only. */
enum { RX_NONE = 0, RX_OPEN = 1, RX_CLOSED = 2 };

#define STATE_LEN 12u
#define STATE_VERSION 1u
#define STATE_FLAG_HAS_PREV 0x01u
#define PROGRESS_HDR_LEN 16u
#define PROGRESS_VERSION 1u

static const uint8_t state_magic[4] = {'O', 'T', 'P', 'S'};
static const uint8_t progress_magic[4] = {'O', 'T', 'P', 'R'};

/* ---------------------------------------------------------------------------
 * Small file helpers. They return 0 on success and -1 on failure (errno set),
 * except where noted.
 */

/* Read exactly len bytes at offset: 0; -1 on error; -2 on end of file first. */
static int read_all(int fd, uint8_t *buf, size_t len, uint64_t offset)
{
    while (len > 0) {
        ssize_t n = pread(fd, buf, len, (off_t)offset);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        if (n == 0) {
            return -2;
        }
        buf += n;
        len -= (size_t)n;
        offset += (uint64_t)n;
    }
    return 0;
}

/* Write exactly len bytes at offset, looping on short writes. */
static int write_all(int fd, const uint8_t *buf, size_t len, uint64_t offset)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, buf, len, (off_t)offset);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
        offset += (uint64_t)n;
    }
    return 0;
}

static int sync_fd(int fd)
{
    while (fsync(fd) != 0) {
        if (errno != EINTR) {
            return -1;
        }
    }
    return 0;
}

/* fsync root_dir so that renames and unlinks in it are durable. File systems
 * that cannot sync a directory (EINVAL) have nothing more to offer. */
static int sync_root(const ota_port_posix_t *port)
{
    if (sync_fd(port->root_fd) != 0 && errno != EINVAL) {
        return -1;
    }
    return 0;
}

/* 1 when name exists in root_dir, 0 when not, -1 on error. */
static int exists(const ota_port_posix_t *port, const char *name)
{
    struct stat st;
    if (fstatat(port->root_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        return 1;
    }
    return errno == ENOENT ? 0 : -1;
}

/* Delete name from root_dir; a missing file is success. */
static int remove_file(const ota_port_posix_t *port, const char *name)
{
    if (unlinkat(port->root_fd, name, 0) != 0 && errno != ENOENT) {
        return -1;
    }
    return 0;
}

static int rename_file(const ota_port_posix_t *port, const char *from, const char *to)
{
    return renameat(port->root_fd, from, port->root_fd, to);
}

static int open_file(const ota_port_posix_t *port, const char *name, int flags)
{
    int fd;
    do {
        fd = openat(port->root_fd, name, flags | O_CLOEXEC | O_NOFOLLOW, 0600);
    } while (fd < 0 && errno == EINTR);
    return fd;
}

/* Replace name with head followed by body, atomically: write tmp, fsync it,
 * rename it over name, fsync root_dir. After a crash at any point, name holds
 * the old content or the new content whole. */
static int replace_file(const ota_port_posix_t *port, const char *tmp, const char *name,
                        const uint8_t *head, size_t head_len, const uint8_t *body, size_t body_len)
{
    int fd = open_file(port, tmp, O_WRONLY | O_CREAT | O_TRUNC);
    if (fd < 0) {
        return -1;
    }
    int bad = write_all(fd, head, head_len, 0) != 0 ||
              (body_len > 0 && write_all(fd, body, body_len, head_len) != 0) || sync_fd(fd) != 0;
    if (close(fd) != 0) {
        bad = 1;
    }
    if (bad || rename_file(port, tmp, name) != 0) {
        (void)remove_file(port, tmp);
        return -1;
    }
    return sync_root(port);
}

/* ---------------------------------------------------------------------------
 * The state record.
 */

static int state_write(ota_port_posix_t *port, uint8_t phase, uint8_t has_prev)
{
    uint8_t rec[STATE_LEN];
    memcpy(rec, state_magic, sizeof state_magic);
    rec[4] = (uint8_t)STATE_VERSION;
    rec[5] = phase;
    rec[6] = has_prev ? (uint8_t)STATE_FLAG_HAS_PREV : (uint8_t)0;
    rec[7] = 0;
    ota_put_le32(&rec[8], ota_crc32(0, rec, 8));
    if (replace_file(port, NAME_STATE_TMP, NAME_STATE, rec, sizeof rec, NULL, 0) != 0) {
        return -1;
    }
    port->phase = phase;
    port->has_prev = has_prev;
    return 0;
}

enum { STATE_OK = 0, STATE_MISSING = 1, STATE_CORRUPT = 2, STATE_IO = -1 };

/* Read the state record into port->phase/has_prev (VALID when not STATE_OK). */
static int state_read(ota_port_posix_t *port)
{
    uint8_t rec[STATE_LEN];
    struct stat st;
    int result = STATE_CORRUPT;

    port->phase = PHASE_VALID;
    port->has_prev = 0;
    int fd = open_file(port, NAME_STATE, O_RDONLY);
    if (fd < 0) {
        return errno == ENOENT ? STATE_MISSING : STATE_IO;
    }
    if (fstat(fd, &st) != 0) {
        result = STATE_IO;
    } else if (S_ISREG(st.st_mode) && st.st_size == (off_t)STATE_LEN) {
        int r = read_all(fd, rec, sizeof rec, 0);
        if (r == -1) {
            result = STATE_IO;
        } else if (r == 0 && memcmp(rec, state_magic, sizeof state_magic) == 0 &&
                   rec[4] == STATE_VERSION && rec[5] <= PHASE_REVERTED &&
                   (rec[6] & (uint8_t)~STATE_FLAG_HAS_PREV) == 0 && rec[7] == 0 &&
                   ota_get_le32(&rec[8]) == ota_crc32(0, rec, 8)) {
            port->phase = rec[5];
            port->has_prev = (uint8_t)(rec[6] & STATE_FLAG_HAS_PREV);
            result = STATE_OK;
        }
    }
    (void)close(fd);
    return result;
}

/* ---------------------------------------------------------------------------
 * Boot steps (also used by set_image_state). Each is idempotent: run again
 * after a crash at any point, it finishes the job.
 */

/* Put the old image back (state TESTING), or delete the refused image when
 * there was no old one; state := REVERTED. */
static int revert(ota_port_posix_t *port)
{
    if (port->has_prev) {
        int p = exists(port, NAME_PREVIOUS);
        if (p < 0) {
            return -1;
        }
        /* No previous.bin means an earlier run already renamed it back. */
        if (p == 1 && rename_file(port, NAME_PREVIOUS, NAME_CURRENT) != 0) {
            return -1;
        }
    } else if (remove_file(port, NAME_CURRENT) != 0) {
        return -1;
    }
    if (sync_root(port) != 0) {
        return -1;
    }
    return state_write(port, PHASE_REVERTED, 0);
}

/* VALID or REVERTED: remove what interrupted steps left behind. */
static int tidy(ota_port_posix_t *port)
{
    int c = exists(port, NAME_CURRENT);
    int p = exists(port, NAME_PREVIOUS);
    if (c < 0 || p < 0) {
        return -1;
    }
    /* pending.bin: an activation that never got as far as its state record. */
    if (remove_file(port, NAME_PENDING) != 0) {
        return -1;
    }
    if (p == 1) {
        if (c == 0) {
            /* Only damage from outside gets here: keep an image to run. */
            if (rename_file(port, NAME_PREVIOUS, NAME_CURRENT) != 0) {
                return -1;
            }
        } else if (remove_file(port, NAME_PREVIOUS) != 0) {
            /* An accept that stopped before deleting the old image. */
            return -1;
        }
    }
    return sync_root(port);
}

/* Keep the old image as previous.bin: a hard link, so that current.bin exists
 * at every moment; a rename where the file system has no hard links. */
static int keep_previous(const ota_port_posix_t *port)
{
    if (remove_file(port, NAME_PREVIOUS) != 0) {
        return -1;
    }
    if (linkat(port->root_fd, NAME_CURRENT, port->root_fd, NAME_PREVIOUS, 0) == 0) {
        return 0;
    }
    if (errno == EPERM || errno == ENOTSUP || errno == EOPNOTSUPP || errno == EMLINK ||
        errno == ENOSYS) {
        return rename_file(port, NAME_CURRENT, NAME_PREVIOUS);
    }
    return -1;
}

/* ACTIVATED: make pending.bin the running image; state := TESTING. */
static int boot_new_image(ota_port_posix_t *port)
{
    int pending = exists(port, NAME_PENDING);
    int current = exists(port, NAME_CURRENT);
    if (pending < 0 || current < 0) {
        return -1;
    }
    if (pending == 1) {
        /* current.bin missing here: keep_previous renamed it (no hard links)
         * or there never was an old image. */
        if (current == 1 && keep_previous(port) != 0) {
            return -1;
        }
        if (rename_file(port, NAME_PENDING, NAME_CURRENT) != 0 || sync_root(port) != 0) {
            return -1;
        }
    } else if (current == 0) {
        /* Neither the new image nor a current one: damage from outside. Put
         * back what there is and drop the update. */
        port->phase = PHASE_VALID;
        if (tidy(port) != 0) {
            return -1;
        }
        return state_write(port, PHASE_REVERTED, 0);
    }
    /* current.bin is the new image now; previous.bin, if any, the old one. */
    int prev = exists(port, NAME_PREVIOUS);
    if (prev < 0) {
        return -1;
    }
    return state_write(port, PHASE_TESTING, (uint8_t)prev);
}

static int boot(ota_port_posix_t *port)
{
    int found = state_read(port);
    int r;
    if (found == STATE_IO) {
        return -1;
    }
    switch (port->phase) {
    case PHASE_ACTIVATED:
        r = boot_new_image(port);
        break;
    case PHASE_TESTING:
        /* Booted once and not accepted: the test failed. */
        r = revert(port);
        break;
    default:
        r = tidy(port);
        /* A corrupt record was taken as VALID (see the header): say so on disk. */
        if (r == 0 && found == STATE_CORRUPT) {
            r = state_write(port, PHASE_VALID, 0);
        }
        break;
    }
    if (r != 0) {
        return -1;
    }
    (void)remove_file(port, NAME_STATE_TMP);
    (void)remove_file(port, NAME_PROGRESS_TMP);
    return 0;
}

/* ---------------------------------------------------------------------------
 * The file being received.
 */

/* Close and delete receive.tmp (whatever its phase); 0, or -1 on error. */
static int rx_discard(ota_port_posix_t *port)
{
    if (port->rx_fd >= 0) {
        (void)close(port->rx_fd);
        port->rx_fd = -1;
    }
    port->rx_phase = RX_NONE;
    port->rx_size = 0;
    return remove_file(port, NAME_RECEIVE);
}

/* A signer name is a plain file name: not empty, no '/', no "..", and short
 * enough for a path. */
static int cert_name_ok(const char *name)
{
    size_t i;
    for (i = 0; i < OTA_PORT_POSIX_PATH_MAX && name[i] != '\0'; i++) {
        if (name[i] == '/' || (name[i] == '.' && name[i + 1] == '.')) {
            return 0;
        }
    }
    return i > 0 && i < OTA_PORT_POSIX_PATH_MAX;
}

/* Read <cert_dir>/<name> into port->pem; *len gets its length. */
static ota_err_t load_signer(ota_port_posix_t *port, const char *cert_name, size_t *len)
{
    char path[OTA_PORT_POSIX_PATH_MAX];
    struct stat st;
    const char *name = cert_name;

    if (name == NULL) {
        if (port->default_cert[0] == '\0') {
            return OTA_ERR_BAD_SIGNER_CERT;
        }
        name = port->default_cert;
    }
    if (!cert_name_ok(name)) {
        return OTA_ERR_BAD_SIGNER_CERT;
    }
    size_t dir_len = strlen(port->cert_dir);
    size_t name_len = strlen(name);
    if (dir_len + 1u + name_len + 1u > sizeof path) {
        return OTA_ERR_BAD_SIGNER_CERT;
    }
    memcpy(path, port->cert_dir, dir_len);
    path[dir_len] = '/';
    memcpy(&path[dir_len + 1u], name, name_len + 1u);

    int fd;
    do {
        /* O_NONBLOCK: a FIFO in cert_dir must not hang the agent. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        return OTA_ERR_BAD_SIGNER_CERT;
    }
    ota_err_t err = OTA_ERR_BAD_SIGNER_CERT;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
        st.st_size < (off_t)sizeof port->pem &&
        read_all(fd, port->pem, (size_t)st.st_size, 0) == 0) {
        *len = (size_t)st.st_size;
        err = OTA_OK;
    }
    (void)close(fd);
    return err;
}

static int32_t posix_read_back(void *ctx, uint32_t offset, uint8_t *buf, uint32_t len);

/* Check file's signature over receive.tmp, read back through read_back. */
static ota_err_t check_signature(ota_port_posix_t *port, const ota_pal_file_t *file)
{
    ota_verify_signer_t signer = {NULL, port->pem, 0};
    const ota_verify_reader_t reader = {posix_read_back, port, port->chunk,
                                        (uint32_t)sizeof port->chunk};
    int found = load_signer(port, file->cert_name, &signer.pem_len) == OTA_OK;
    return ota_verify_close(file, port->rx_size, found ? &signer : NULL, NULL, NULL, &reader);
}

/* ---------------------------------------------------------------------------
 * The PAL operations.
 */

/* ctx as an initialised port: OTA_OK; OTA_ERR_INVALID_ARG (NULL);
 * OTA_ERR_UNINITIALIZED (deinit'ed). */
static ota_err_t port_of(void *ctx, ota_port_posix_t **port)
{
    if (ctx == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    *port = ctx;
    return (*port)->root_fd >= 0 ? OTA_OK : OTA_ERR_UNINITIALIZED;
}

/* A new image is activated or under test: until it is decided (accepted,
 * rejected, or reverted by the next boot), no new file is received, so that
 * the one decision in flight is never mixed with another update. */
static int new_image_pending(const ota_port_posix_t *port)
{
    return port->phase == PHASE_ACTIVATED || port->phase == PHASE_TESTING;
}

static ota_err_t posix_create_file(void *ctx, const ota_pal_file_t *file)
{
    ota_port_posix_t *port;
    ota_err_t err = port_of(ctx, &port);
    if (err != OTA_OK) {
        return err;
    }
    if (file == NULL || file->size == 0) {
        return OTA_ERR_INVALID_ARG;
    }
    if (file->size > port->max_file_size) {
        return OTA_ERR_RX_FILE_TOO_LARGE;
    }
    if (new_image_pending(port)) {
        return OTA_ERR_RX_FILE_CREATE_FAILED;
    }
    if (rx_discard(port) != 0) {
        return OTA_ERR_RX_FILE_CREATE_FAILED;
    }
    int fd = open_file(port, NAME_RECEIVE, O_RDWR | O_CREAT | O_TRUNC);
    if (fd < 0) {
        return OTA_ERR_RX_FILE_CREATE_FAILED;
    }
    /* Reserve the space now, so that a full disk fails here and not after
     * most of a download; fall back to a sparse file where the file system
     * cannot allocate. Either way unwritten bytes read as zeros. */
    int r = posix_fallocate(fd, 0, (off_t)file->size);
    if (r != 0 && (r == ENOSPC || r == EFBIG || ftruncate(fd, (off_t)file->size) != 0)) {
        (void)close(fd);
        (void)remove_file(port, NAME_RECEIVE);
        return OTA_ERR_RX_FILE_CREATE_FAILED;
    }
    port->rx_fd = fd;
    port->rx_size = file->size;
    port->rx_phase = RX_OPEN;
    port->rx_unsynced = 0;
    port->invalid = 0;
    return OTA_OK;
}

/*
 * Resume: reopen receive.tmp as it is. Files can be overwritten, so every
 * block is writable again and the done bitmap stays as the caller gave it.
 */
static ota_err_t posix_resume_file(void *ctx, const ota_pal_file_t *file, uint32_t block_size,
                                   uint8_t *done, uint32_t block_count)
{
    ota_port_posix_t *port;
    struct stat st;
    ota_err_t err = port_of(ctx, &port);
    if (err != OTA_OK) {
        return err;
    }
    if (file == NULL || done == NULL || file->size == 0 || block_size == 0 ||
        block_count != (file->size - 1u) / block_size + 1u) {
        return OTA_ERR_INVALID_ARG;
    }
    if (file->size > port->max_file_size) {
        return OTA_ERR_RX_FILE_TOO_LARGE;
    }
    if (new_image_pending(port)) {
        return OTA_ERR_RX_FILE_CREATE_FAILED;
    }
    if (port->rx_fd >= 0) {
        (void)close(port->rx_fd); /* reopened below, content kept */
        port->rx_fd = -1;
    }
    port->rx_phase = RX_NONE;
    int fd = open_file(port, NAME_RECEIVE, O_RDWR);
    if (fd < 0) {
        return OTA_ERR_NOT_FOUND;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != file->size) {
        (void)close(fd);
        return OTA_ERR_NOT_FOUND;
    }
    port->rx_fd = fd;
    port->rx_size = file->size;
    port->rx_phase = RX_OPEN;
    port->rx_unsynced = 0;
    port->invalid = 0;
    return OTA_OK;
}

static int32_t posix_write_block(void *ctx, uint32_t offset, const uint8_t *data, uint32_t size)
{
    ota_port_posix_t *port;
    ota_err_t err = port_of(ctx, &port);
    if (err != OTA_OK) {
        return (int32_t)err;
    }
    if (data == NULL || size == 0 || size > (uint32_t)INT32_MAX) {
        return (int32_t)OTA_ERR_INVALID_ARG;
    }
    if (port->rx_phase != RX_OPEN) {
        return (int32_t)OTA_ERR_NULL_FILE_CONTEXT;
    }
    if ((uint64_t)offset + size > port->rx_size) {
        return (int32_t)OTA_ERR_INVALID_ARG;
    }
    if (write_all(port->rx_fd, data, size, offset) != 0) {
        return (int32_t)OTA_ERR_IO;
    }
    return (int32_t)size;
}

static ota_err_t posix_close_file(void *ctx, const ota_pal_file_t *file)
{
    ota_port_posix_t *port;
    ota_err_t err = port_of(ctx, &port);
    if (err != OTA_OK) {
        return err;
    }
    if (file == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    if (port->rx_phase != RX_OPEN) {
        return OTA_ERR_NULL_FILE_CONTEXT;
    }
    /* The signature covers the size given at create_file (the one the file
     * has); file->size of the same transfer is the same value. */
    err = check_signature(port, file);
    if (err == OTA_OK && sync_fd(port->rx_fd) != 0) {
        err = OTA_ERR_FILE_CLOSE;
    }
    if (err != OTA_OK) {
        (void)rx_discard(port);
        port->invalid = 1;
        return err;
    }
    /* Closed for writing; the descriptor stays open for read_back. */
    port->rx_phase = RX_CLOSED;
    return OTA_OK;
}

static ota_err_t posix_abort(void *ctx)
{
    ota_port_posix_t *port;
    ota_err_t err = port_of(ctx, &port);
    if (err != OTA_OK) {
        return err;
    }
    return rx_discard(port) == 0 ? OTA_OK : OTA_ERR_FILE_ABORT;
}

static ota_err_t posix_activate(void *ctx)
{
    ota_port_posix_t *port;
    ota_err_t err = port_of(ctx, &port);
    if (err != OTA_OK) {
        return err;
    }
    /* A new image under test must be accepted or rejected first: activating
     * over it would make the untested image the fallback. */
    if (port->rx_phase != RX_CLOSED || port->phase == PHASE_TESTING) {
        return OTA_ERR_ACTIVATE_FAILED;
    }
    /* previous.bin left by an accept whose delete failed: the boot step must
     * not take it for the old image. */
    if (remove_file(port, NAME_PREVIOUS) != 0 ||
        rename_file(port, NAME_RECEIVE, NAME_PENDING) != 0) {
        return OTA_ERR_ACTIVATE_FAILED;
    }
    (void)close(port->rx_fd);
    port->rx_fd = -1;
    port->rx_phase = RX_NONE;
    port->rx_size = 0;
    /* Until the state record says ACTIVATED, init deletes pending.bin. */
    if (sync_root(port) != 0 || state_write(port, PHASE_ACTIVATED, 0) != 0) {
        return OTA_ERR_ACTIVATE_FAILED;
    }
    return OTA_OK;
}

static ota_err_t posix_reset(void *ctx)
{
    ota_port_posix_t *port;
    /* A host port does not reset: the caller restarts the program, whose
     * ota_port_posix_init() runs the boot step. */
    return port_of(ctx, &port);
}

static ota_err_t posix_set_image_state(void *ctx, ota_image_state_t state)
{
    ota_port_posix_t *port;
    ota_err_t err = port_of(ctx, &port);
    if (err != OTA_OK) {
        return err;
    }
    int s = (int)state;
    if (s <= (int)OTA_IMAGE_STATE_UNKNOWN || s >= OTA_IMAGE_STATE_COUNT) {
        return OTA_ERR_BAD_IMAGE_STATE;
    }
    if (state == OTA_IMAGE_STATE_TESTING) {
        return OTA_OK;
    }
    if (state == OTA_IMAGE_STATE_ACCEPTED) {
        if (port->phase != PHASE_TESTING || state_write(port, PHASE_VALID, 0) != 0) {
            return OTA_ERR_COMMIT_FAILED;
        }
        /* Committed. A previous.bin left by a failure here is deleted by the
         * next init or activate. */
        if (remove_file(port, NAME_PREVIOUS) == 0) {
            (void)sync_root(port);
        }
        port->invalid = 0;
        return OTA_OK;
    }
    /* REJECTED or ABORTED. */
    ota_err_t fail =
        state == OTA_IMAGE_STATE_REJECTED ? OTA_ERR_REJECT_FAILED : OTA_ERR_ABORT_FAILED;
    if (rx_discard(port) != 0) {
        return fail;
    }
    if (port->phase == PHASE_ACTIVATED) {
        /* Activated, not booted: drop it. Once the record says REVERTED,
         * pending.bin is a leftover that init deletes. */
        if (state_write(port, PHASE_REVERTED, 0) != 0) {
            return fail;
        }
        if (remove_file(port, NAME_PENDING) == 0) {
            (void)sync_root(port);
        }
    } else if (port->phase == PHASE_TESTING && revert(port) != 0) {
        return fail;
    }
    port->invalid = 1;
    return OTA_OK;
}

static ota_pal_image_state_t posix_get_image_state(void *ctx)
{
    ota_port_posix_t *port;
    if (port_of(ctx, &port) != OTA_OK || port->invalid) {
        return OTA_PAL_IMAGE_STATE_INVALID;
    }
    return port->phase == PHASE_TESTING ? OTA_PAL_IMAGE_STATE_PENDING_COMMIT
                                        : OTA_PAL_IMAGE_STATE_VALID;
}

static int32_t posix_read_back(void *ctx, uint32_t offset, uint8_t *buf, uint32_t len)
{
    ota_port_posix_t *port;
    ota_err_t err = port_of(ctx, &port);
    if (err != OTA_OK) {
        return (int32_t)err;
    }
    if (buf == NULL || len == 0 || len > (uint32_t)INT32_MAX) {
        return (int32_t)OTA_ERR_INVALID_ARG;
    }
    if (port->rx_phase == RX_NONE) {
        return (int32_t)OTA_ERR_NULL_FILE_CONTEXT;
    }
    if ((uint64_t)offset + len > port->rx_size) {
        return (int32_t)OTA_ERR_INVALID_ARG;
    }
    if (read_all(port->rx_fd, buf, len, offset) != 0) {
        return (int32_t)OTA_ERR_IO;
    }
    return (int32_t)len;
}

static ota_err_t posix_progress_save(void *ctx, const uint8_t *record, uint32_t len)
{
    ota_port_posix_t *port;
    ota_err_t err = port_of(ctx, &port);
    if (err != OTA_OK) {
        return err;
    }
    if (record == NULL || len == 0 || len > OTA_PORT_POSIX_PROGRESS_CAPACITY) {
        return OTA_ERR_INVALID_ARG;
    }
    uint8_t head[PROGRESS_HDR_LEN];
    memcpy(head, progress_magic, sizeof progress_magic);
    head[4] = (uint8_t)PROGRESS_VERSION;
    head[5] = 0;
    head[6] = 0;
    head[7] = 0;
    ota_put_le32(&head[8], len);
    ota_put_le32(&head[12], ota_crc32(ota_crc32(0, head, 12), record, len));
    /* The blocks the record counts must be on disk before the record is. Once
     * an fsync failed, Linux may have dropped the dirty pages and a later fsync
     * can succeed without them: no record is stored until the file is created
     * or resumed again. */
    if (port->rx_fd >= 0 && (port->rx_unsynced || sync_fd(port->rx_fd) != 0)) {
        port->rx_unsynced = 1;
        return OTA_ERR_IO;
    }
    if (replace_file(port, NAME_PROGRESS_TMP, NAME_PROGRESS, head, sizeof head, record, len) != 0) {
        return OTA_ERR_IO;
    }
    return OTA_OK;
}

/* CRC of len bytes of fd at offset, read through port->chunk; -1/-2 as read_all. */
static int crc_of(ota_port_posix_t *port, int fd, uint32_t crc, uint32_t len, uint32_t *out)
{
    uint32_t done = 0;
    while (done < len) {
        uint32_t n = len - done;
        if (n > (uint32_t)sizeof port->chunk) {
            n = (uint32_t)sizeof port->chunk;
        }
        int r = read_all(fd, port->chunk, n, (uint64_t)PROGRESS_HDR_LEN + done);
        if (r != 0) {
            return r;
        }
        crc = ota_crc32(crc, port->chunk, n);
        done += n;
    }
    *out = crc;
    return 0;
}

/* Load the progress record from an open file; see posix_progress_load. */
static int32_t progress_read(ota_port_posix_t *port, int fd, uint8_t *buf, uint32_t cap)
{
    uint8_t head[PROGRESS_HDR_LEN];
    struct stat st;
    if (fstat(fd, &st) != 0) {
        return (int32_t)OTA_ERR_IO;
    }
    if (!S_ISREG(st.st_mode) || st.st_size < (off_t)PROGRESS_HDR_LEN) {
        return (int32_t)OTA_ERR_NOT_FOUND;
    }
    int r = read_all(fd, head, sizeof head, 0);
    if (r != 0) {
        return r == -1 ? (int32_t)OTA_ERR_IO : (int32_t)OTA_ERR_NOT_FOUND;
    }
    uint32_t len = ota_get_le32(&head[8]);
    if (memcmp(head, progress_magic, sizeof progress_magic) != 0 || head[4] != PROGRESS_VERSION ||
        len == 0 || len > OTA_PORT_POSIX_PROGRESS_CAPACITY ||
        st.st_size != (off_t)PROGRESS_HDR_LEN + (off_t)len) {
        return (int32_t)OTA_ERR_NOT_FOUND;
    }
    uint32_t crc = ota_crc32(0, head, 12);
    if (len <= cap) {
        r = read_all(fd, buf, len, PROGRESS_HDR_LEN);
        if (r == 0) {
            crc = ota_crc32(crc, buf, len);
        }
    } else {
        /* Too large for buf: report OUT_OF_MEMORY only for a record that
         * is whole (a torn one is no record). */
        r = crc_of(port, fd, crc, len, &crc);
    }
    if (r != 0) {
        return r == -1 ? (int32_t)OTA_ERR_IO : (int32_t)OTA_ERR_NOT_FOUND;
    }
    if (crc != ota_get_le32(&head[12])) {
        return (int32_t)OTA_ERR_NOT_FOUND;
    }
    return len <= cap ? (int32_t)len : (int32_t)OTA_ERR_OUT_OF_MEMORY;
}

static int32_t posix_progress_load(void *ctx, uint8_t *buf, uint32_t cap)
{
    ota_port_posix_t *port;
    ota_err_t err = port_of(ctx, &port);
    if (err != OTA_OK) {
        return (int32_t)err;
    }
    if (buf == NULL) {
        return (int32_t)OTA_ERR_INVALID_ARG;
    }
    int fd = open_file(port, NAME_PROGRESS, O_RDONLY);
    if (fd < 0) {
        return errno == ENOENT ? (int32_t)OTA_ERR_NOT_FOUND : (int32_t)OTA_ERR_IO;
    }
    int32_t result = progress_read(port, fd, buf, cap);
    (void)close(fd);
    return result;
}

static ota_err_t posix_progress_clear(void *ctx)
{
    ota_port_posix_t *port;
    ota_err_t err = port_of(ctx, &port);
    if (err != OTA_OK) {
        return err;
    }
    if (remove_file(port, NAME_PROGRESS) != 0 || sync_root(port) != 0) {
        return OTA_ERR_IO;
    }
    return OTA_OK;
}

/* ---------------------------------------------------------------------------
 * Init and deinit.
 */

/* Copy src (NULL = "") into dst of OTA_PORT_POSIX_PATH_MAX bytes; -1 if too long. */
static int copy_name(char *dst, const char *src)
{
    size_t n = src == NULL ? 0 : strlen(src);
    if (n >= OTA_PORT_POSIX_PATH_MAX) {
        return -1;
    }
    if (n > 0) {
        memcpy(dst, src, n);
    }
    dst[n] = '\0';
    return 0;
}

static int open_root(const char *dir)
{
    int fd = -1;
    for (int attempt = 0; attempt < 2 && fd < 0; attempt++) {
        do {
            fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        } while (fd < 0 && errno == EINTR);
        if (fd < 0 && (errno != ENOENT || (mkdir(dir, 0700) != 0 && errno != EEXIST))) {
            return -1;
        }
    }
    return fd;
}

ota_err_t ota_port_posix_init(ota_port_posix_t *port, const ota_port_posix_config_t *cfg,
                              ota_pal_t *pal_out)
{
    if (pal_out != NULL) {
        memset(pal_out, 0, sizeof *pal_out);
    }
    if (port == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    memset(port, 0, sizeof *port);
    port->root_fd = -1;
    port->rx_fd = -1;
    if (cfg == NULL || pal_out == NULL || cfg->root_dir == NULL || cfg->root_dir[0] == '\0' ||
        cfg->cert_dir == NULL || cfg->cert_dir[0] == '\0' ||
        copy_name(port->cert_dir, cfg->cert_dir) != 0 ||
        copy_name(port->default_cert, cfg->default_cert) != 0) {
        return OTA_ERR_INVALID_ARG;
    }
    port->max_file_size =
        cfg->max_file_size != 0 ? cfg->max_file_size : OTA_PORT_POSIX_DEFAULT_MAX_FILE_SIZE;
    port->root_fd = open_root(cfg->root_dir);
    if (port->root_fd < 0) {
        return OTA_ERR_IO;
    }
    if (boot(port) != 0) {
        ota_port_posix_deinit(port);
        return OTA_ERR_IO;
    }

    pal_out->ctx = port;
    pal_out->max_file_size = port->max_file_size;
    pal_out->block_align = 1;
    pal_out->progress_capacity = OTA_PORT_POSIX_PROGRESS_CAPACITY;
    pal_out->create_file = posix_create_file;
    pal_out->resume_file = posix_resume_file;
    pal_out->write_block = posix_write_block;
    pal_out->close_file = posix_close_file;
    pal_out->abort = posix_abort;
    pal_out->activate = posix_activate;
    pal_out->reset = posix_reset;
    pal_out->set_image_state = posix_set_image_state;
    pal_out->get_image_state = posix_get_image_state;
    pal_out->read_back = posix_read_back;
    pal_out->progress_save = posix_progress_save;
    pal_out->progress_load = posix_progress_load;
    pal_out->progress_clear = posix_progress_clear;
    return OTA_OK;
}

void ota_port_posix_deinit(ota_port_posix_t *port)
{
    if (port == NULL) {
        return;
    }
    if (port->rx_fd >= 0) {
        (void)close(port->rx_fd);
    }
    if (port->root_fd >= 0) {
        (void)close(port->root_fd);
    }
    port->rx_fd = -1;
    port->root_fd = -1;
    port->rx_phase = RX_NONE;
}
