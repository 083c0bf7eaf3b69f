/*
 * otter service: the store's imported files. See ota_store.h.
 *
 * Every back-end keeps a file's bytes in <data_dir>/files/<id>.bin. With
 * PostgreSQL they are also in the database (file_chunks, 256 KiB per row),
 * written in the transaction that records the file, so that an instance on
 * another machine, whose data folder never saw the import, serves it too:
 * the first lookup of the file there (ota_store_file_get(), a stream's
 * files) writes its local copy from the chunks, checks the size and renames
 * it into place.
 */
#define _POSIX_C_SOURCE 200809L

#include "ota_store.h"
#include "ota_store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/** Copy buffer for file imports. */
#define STORE_COPY_CHUNK 65536
/** Bytes per file_chunks row (PostgreSQL). */
#define STORE_DB_CHUNK (256 * 1024)

/** Copies src into the open descriptor dst with a fixed buffer; returns bytes or -1. */
static int64_t copy_fd(int src, int dst)
{
    char *buf = malloc(STORE_COPY_CHUNK);
    if (!buf)
        return -1;
    int64_t total = 0;
    for (;;) {
        ssize_t n = read(src, buf, STORE_COPY_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            total = -1;
            break;
        }
        if (n == 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(dst, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                free(buf);
                return -1;
            }
            off += w;
        }
        total += n;
    }
    free(buf);
    return total;
}

static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/** Reads up to cap bytes (fewer only at the end); bytes read or -1. */
static ssize_t read_full(int fd, unsigned char *buf, size_t cap)
{
    size_t got = 0;
    while (got < cap) {
        ssize_t n = read(fd, buf + got, cap - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

/** PostgreSQL: stores the bytes of path as file id's chunks (inside the import's transaction). */
static int save_chunks(ota_store_t *s, int64_t id, const char *path)
{
    static const char digits[] = "0123456789abcdef";
    int fd = open(path, O_RDONLY);
    unsigned char *buf = malloc(STORE_DB_CHUNK);
    char *hex = malloc(2 * STORE_DB_CHUNK + 1);
    ota_db_stmt_t *st = NULL;
    int rc = fd < 0 || !buf || !hex ? fail(s, OTA_STORE_ERROR, "cannot read back '%s'", path)
                                    : prep(s, &st,
                                           "INSERT INTO file_chunks(file_id, n, data) "
                                           "VALUES(?, ?, decode(?, 'hex'))");
    for (int64_t n = 0; !rc; n++) {
        ssize_t got = read_full(fd, buf, STORE_DB_CHUNK);
        if (got < 0) {
            rc = fail(s, OTA_STORE_ERROR, "cannot read back '%s': %s", path, strerror(errno));
            break;
        }
        if (got == 0)
            break;
        for (ssize_t i = 0; i < got; i++) {
            hex[2 * i] = digits[buf[i] >> 4];
            hex[2 * i + 1] = digits[buf[i] & 15];
        }
        hex[2 * got] = '\0';
        ota_db_reset(st);
        ota_db_bind_int64(st, 1, id);
        ota_db_bind_int64(st, 2, n);
        ota_db_bind_text(st, 3, hex);
        rc = step_done(s, st, "store file bytes");
    }
    ota_db_finalize(st);
    free(buf);
    free(hex);
    if (fd >= 0)
        close(fd);
    return rc;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/** PostgreSQL: writes the local copy of file id from its chunks into path (tmp, then rename). */
static int fetch_chunks(ota_store_t *s, int64_t id, uint64_t size, const char *path)
{
    char tmp[4096 + 32];
    snprintf(tmp, sizeof tmp, "%s/files/.fetch-XXXXXX", s->data_dir);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return fail(s, OTA_STORE_ERROR, "cannot create a file in '%s/files': %s", s->data_dir,
                    strerror(errno));
    ota_db_stmt_t *st;
    int rc =
        prep(s, &st, "SELECT encode(data, 'hex') FROM file_chunks WHERE file_id = ? ORDER BY n");
    uint64_t total = 0;
    unsigned char *buf = malloc(STORE_DB_CHUNK);
    if (!rc && !buf)
        rc = fail(s, OTA_STORE_ERROR, "out of memory");
    if (!rc) {
        ota_db_bind_int64(st, 1, id);
        int r;
        while (!rc && (r = ota_db_step(st)) == OTA_DB_ROW) {
            const char *h = ota_db_column_text(st, 0);
            size_t len = h ? strlen(h) / 2 : 0;
            if (len > STORE_DB_CHUNK)
                rc = fail(s, OTA_STORE_ERROR, "file %lld: a chunk is too big", (long long)id);
            for (size_t i = 0; !rc && i < len; i++) {
                int a = hexval(h[2 * i]), b = hexval(h[2 * i + 1]);
                if (a < 0 || b < 0)
                    rc = fail(s, OTA_STORE_ERROR, "file %lld: bad chunk", (long long)id);
                buf[i] = (unsigned char)(a << 4 | b);
            }
            for (size_t off = 0; !rc && off < len;) {
                ssize_t w = write(fd, buf + off, len - off);
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0)
                    rc = fail(s, OTA_STORE_ERROR, "writing '%s': %s", tmp, strerror(errno));
                else
                    off += (size_t)w;
            }
            total += len;
        }
        if (!rc && r != OTA_DB_DONE)
            rc = fail_db(s, "read file bytes");
    }
    ota_db_finalize(st);
    free(buf);
    if (!rc && total != size)
        rc = fail(s, OTA_STORE_ERROR, "file %lld: the database holds %llu of its %llu bytes",
                  (long long)id, (unsigned long long)total, (unsigned long long)size);
    if (!rc && fsync(fd) != 0)
        rc = fail(s, OTA_STORE_ERROR, "writing '%s': %s", tmp, strerror(errno));
    if (close(fd) != 0 && !rc)
        rc = fail(s, OTA_STORE_ERROR, "writing '%s': %s", tmp, strerror(errno));
    if (!rc && rename(tmp, path) != 0)
        rc = fail(s, OTA_STORE_ERROR, "cannot rename into '%s': %s", path, strerror(errno));
    if (rc)
        unlink(tmp);
    return rc;
}

int ota_store_file_local(ota_store_t *s, int64_t id, uint64_t size, char *path, size_t cap)
{
    int n = snprintf(path, cap, "%s/files/%lld.bin", s->data_dir, (long long)id);
    if (n < 0 || (size_t)n >= cap)
        return fail(s, OTA_STORE_INVALID, "data directory path too long");
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size == size)
        return OTA_STORE_OK;
    return fetch_chunks(s, id, size, path);
}

int ota_store_file_import(ota_store_t *store, const char *src_path, ota_store_file_t *out)
{
    if (!store || !src_path || !out)
        return OTA_STORE_INVALID;
    memset(out, 0, sizeof *out);
    struct stat sb;
    if (stat(src_path, &sb) != 0)
        return fail(store, errno == ENOENT ? OTA_STORE_NOT_FOUND : OTA_STORE_ERROR,
                    "cannot read '%s': %s", src_path, strerror(errno));
    if (!S_ISREG(sb.st_mode) || sb.st_size == 0)
        return fail(store, OTA_STORE_INVALID, "'%s' is not a non-empty regular file", src_path);
    char dir[4096], tmp[4096 + 32];
    snprintf(dir, sizeof dir, "%s/files", store->data_dir);
    snprintf(tmp, sizeof tmp, "%s/.import-XXXXXX", dir);
    int src = open(src_path, O_RDONLY);
    if (src < 0)
        return fail(store, OTA_STORE_ERROR, "cannot open '%s': %s", src_path, strerror(errno));
    int dst = mkstemp(tmp);
    if (dst < 0) {
        close(src);
        return fail(store, OTA_STORE_ERROR, "cannot create a file in '%s': %s", dir,
                    strerror(errno));
    }
    int64_t size = copy_fd(src, dst);
    int bad = size <= 0 || fsync(dst) != 0;
    bad |= close(dst) != 0;
    close(src);
    if (bad) {
        unlink(tmp);
        return fail(store, OTA_STORE_ERROR, "copying '%s' failed: %s", src_path, strerror(errno));
    }
    int rc = begin(store);
    ota_db_stmt_t *st = NULL;
    if (!rc &&
        !(rc = prep(store, &st, "INSERT INTO files(path, size, created_ms) VALUES('', ?, ?)"))) {
        ota_db_bind_int64(st, 1, size);
        ota_db_bind_int64(st, 2, ota_store_now_ms());
        rc = step_done(store, st, "import file");
        ota_db_finalize(st);
    }
    if (!rc) {
        out->id = ota_db_last_insert_id(store->db);
        out->size = (uint64_t)size;
        int n = snprintf(out->path, sizeof out->path, "%s/%lld.bin", dir, (long long)out->id);
        if (n < 0 || (size_t)n >= sizeof out->path)
            rc = fail(store, OTA_STORE_INVALID, "data directory path too long");
    }
    if (!rc && !(rc = prep(store, &st, "UPDATE files SET path = ? WHERE id = ?"))) {
        ota_db_bind_text(st, 1, out->path);
        ota_db_bind_int64(st, 2, out->id);
        rc = step_done(store, st, "import file");
        ota_db_finalize(st);
    }
    if (!rc && ota_store_is_postgresql(store))
        rc = save_chunks(store, out->id, tmp);
    if (!rc && rename(tmp, out->path) != 0)
        rc =
            fail(store, OTA_STORE_ERROR, "cannot rename into '%s': %s", out->path, strerror(errno));
    if (!rc) {
        fsync_dir(dir);
        rc = finish(store, rc);
        if (rc)
            unlink(out->path);
    } else {
        finish(store, rc);
        unlink(tmp);
    }
    if (rc)
        memset(out, 0, sizeof *out);
    return rc;
}

int ota_store_file_get(ota_store_t *store, int64_t id, ota_store_file_t *out)
{
    if (!store || !out)
        return OTA_STORE_INVALID;
    memset(out, 0, sizeof *out);
    ota_db_stmt_t *st;
    int rc = prep(store, &st, "SELECT id, path, size FROM files WHERE id = ?");
    if (rc)
        return rc;
    ota_db_bind_int64(st, 1, id);
    int r = ota_db_step(st);
    if (r == OTA_DB_ROW) {
        out->id = ota_db_column_int64(st, 0);
        copy_col(out->path, sizeof out->path, st, 1);
        out->size = (uint64_t)ota_db_column_int64(st, 2);
        ok(store);
    } else if (r == OTA_DB_DONE) {
        rc = fail(store, OTA_STORE_NOT_FOUND, "file %lld not found", (long long)id);
    } else {
        rc = fail_db(store, "get file");
    }
    ota_db_finalize(st);
    if (!rc && ota_store_is_postgresql(store)) /* this machine's copy, made when missing */
        rc = ota_store_file_local(store, out->id, out->size, out->path, sizeof out->path);
    if (rc)
        memset(out, 0, sizeof *out);
    else
        ok(store);
    return rc;
}
