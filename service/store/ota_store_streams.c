/*
 * otter service: the store's streams and their files. See ota_store.h.
 */
#define _POSIX_C_SOURCE 200809L

#include "ota_store.h"
#include "ota_store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ota_store_stream_create(ota_store_t *store, const char *stream_id, const char *description,
                            const ota_store_stream_file_t *files, size_t n_files, int64_t now_ms)
{
    if (!store)
        return OTA_STORE_INVALID;
    if (!ota_store_valid_stream_id(stream_id))
        return fail(store, OTA_STORE_INVALID, "invalid stream id '%s' (1..128 of [A-Za-z0-9_-])",
                    stream_id ? stream_id : "(null)");
    if (!files || n_files == 0 || n_files > OTA_STORE_FILE_ID_MAX + 1)
        return fail(store, OTA_STORE_INVALID, "a stream needs 1..256 files");
    unsigned char seen[OTA_STORE_FILE_ID_MAX + 1] = {0};
    for (size_t i = 0; i < n_files; i++) {
        if (files[i].file_id > OTA_STORE_FILE_ID_MAX || !files[i].path || !files[i].path[0] ||
            files[i].size == 0 || files[i].size > INT64_MAX || seen[files[i].file_id]++)
            return fail(store, OTA_STORE_INVALID,
                        "stream file %zu: file id must be 0..255 and unique, path set, size > 0",
                        i);
    }
    int rc = begin(store);
    if (rc)
        return rc;
    ota_db_stmt_t *st;
    if (!(rc = prep(
              store, &st,
              "INSERT INTO streams(id, version, description, created_ms) VALUES(?, 1, ?, ?)"))) {
        ota_db_bind_text(st, 1, stream_id);
        ota_db_bind_text(st, 2, description ? description : "");
        ota_db_bind_int64(st, 3, now_ms);
        if (ota_db_step(st) != OTA_DB_DONE)
            rc = ota_db_errcode(store->db) == OTA_DB_E_UNIQUE
                     ? fail(store, OTA_STORE_EXISTS, "stream '%s' already exists", stream_id)
                     : fail_db(store, "create stream");
        ota_db_finalize(st);
    }
    if (!rc && !(rc = prep(store, &st,
                           "INSERT INTO stream_files(stream, file_id, path, size) "
                           "VALUES(?, ?, ?, ?)"))) {
        for (size_t i = 0; i < n_files && !rc; i++) {
            ota_db_reset(st);
            ota_db_bind_text(st, 1, stream_id);
            ota_db_bind_int64(st, 2, (int)files[i].file_id);
            ota_db_bind_text(st, 3, files[i].path);
            ota_db_bind_int64(st, 4, (int64_t)files[i].size);
            rc = step_done(store, st, "add stream file");
        }
        ota_db_finalize(st);
    }
    return finish(store, rc);
}

void ota_store_stream_free(ota_store_stream_t *stream)
{
    if (!stream)
        return;
    free(stream->description);
    free(stream->files);
    memset(stream, 0, sizeof *stream);
}

/** Reads a stream's files into one allocation (array followed by the paths). */
static int read_stream_files(ota_store_t *s, ota_store_stream_t *out)
{
    ota_db_stmt_t *st;
    /* an imported file also has its id: with PostgreSQL it is served from this machine's copy */
    int rc = prep(s, &st,
                  "SELECT sf.file_id, sf.path, sf.size, (SELECT MAX(f.id) FROM files f WHERE "
                  "f.path = sf.path AND f.size = sf.size) FROM stream_files sf WHERE sf.stream = ? "
                  "ORDER BY sf.file_id");
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, out->stream_id);
    int pg = ota_store_is_postgresql(s);
    size_t n = 0, bytes = 0;
    int r;
    while ((r = ota_db_step(st)) == OTA_DB_ROW) {
        n++;
        const char *p = ota_db_column_text(st, 1);
        bytes += (p ? strlen(p) : 0) + 1 + (pg ? strlen(s->data_dir) + 48 : 0);
    }
    if (r != OTA_DB_DONE) {
        ota_db_finalize(st);
        return fail_db(s, "read stream files");
    }
    ota_db_reset(st);
    out->files = calloc(1, n * sizeof *out->files + bytes + 1);
    if (!out->files) {
        ota_db_finalize(st);
        return fail(s, OTA_STORE_ERROR, "out of memory");
    }
    char *paths = (char *)(out->files + n);
    size_t i = 0;
    char local[4096];
    while (i < n && ota_db_step(st) == OTA_DB_ROW) {
        const char *p = ota_db_column_text(st, 1);
        if (pg && !ota_db_column_is_null(st, 3)) {
            if ((rc = ota_store_file_local(s, ota_db_column_int64(st, 3),
                                           (uint64_t)ota_db_column_int64(st, 2), local,
                                           sizeof local)))
                break;
            p = local;
        }
        size_t len = p ? strlen(p) : 0;
        memcpy(paths, p ? p : "", len);
        paths[len] = '\0';
        out->files[i].file_id = (uint32_t)ota_db_column_int64(st, 0);
        out->files[i].path = paths;
        out->files[i].size = (uint64_t)ota_db_column_int64(st, 2);
        paths += len + 1;
        i++;
    }
    out->n_files = i;
    ota_db_finalize(st);
    if (rc) {
        free(out->files);
        out->files = NULL;
        out->n_files = 0;
    }
    return rc;
}

static int read_stream_row(ota_store_t *s, ota_db_stmt_t *st, ota_store_stream_t *out)
{
    memset(out, 0, sizeof *out);
    copy_col(out->stream_id, sizeof out->stream_id, st, 0);
    out->version = ota_db_column_int64(st, 1);
    out->description = dup_text(ota_db_column_text(st, 2));
    out->created_ms = ota_db_column_int64(st, 3);
    if (!out->description)
        return fail(s, OTA_STORE_ERROR, "out of memory");
    int rc = read_stream_files(s, out);
    if (rc)
        ota_store_stream_free(out);
    return rc;
}

int ota_store_stream_get(ota_store_t *store, const char *stream_id, ota_store_stream_t *out)
{
    if (!store || !out)
        return OTA_STORE_INVALID;
    memset(out, 0, sizeof *out);
    if (!ota_store_valid_stream_id(stream_id))
        return fail(store, OTA_STORE_INVALID, "invalid stream id");
    ota_db_stmt_t *st;
    int rc =
        prep(store, &st, "SELECT id, version, description, created_ms FROM streams WHERE id = ?");
    if (rc)
        return rc;
    ota_db_bind_text(st, 1, stream_id);
    int r = ota_db_step(st);
    if (r == OTA_DB_ROW)
        rc = read_stream_row(store, st, out);
    else if (r == OTA_DB_DONE)
        rc = fail(store, OTA_STORE_NOT_FOUND, "stream '%s' not found", stream_id);
    else
        rc = fail_db(store, "get stream");
    ota_db_finalize(st);
    if (!rc)
        ok(store);
    return rc;
}

int ota_store_stream_list(ota_store_t *store, ota_store_stream_cb cb, void *ctx)
{
    if (!store || !cb)
        return OTA_STORE_INVALID;
    ota_db_stmt_t *st;
    int rc =
        prep(store, &st, "SELECT id, version, description, created_ms FROM streams ORDER BY id");
    if (rc)
        return rc;
    int r;
    while (!rc && (r = ota_db_step(st)) == OTA_DB_ROW) {
        ota_store_stream_t one;
        rc = read_stream_row(store, st, &one);
        if (rc)
            break;
        int stop = cb(ctx, &one);
        ota_store_stream_free(&one);
        if (stop)
            break;
    }
    if (!rc && r != OTA_DB_ROW && r != OTA_DB_DONE)
        rc = fail_db(store, "list streams");
    ota_db_finalize(st);
    if (!rc)
        ok(store);
    return rc;
}

int ota_store_thing_may_read_stream(ota_store_t *store, const char *thing, const char *stream_id)
{
    if (!store)
        return OTA_STORE_INVALID;
    if (!ota_store_valid_thing_name(thing) || !ota_store_valid_stream_id(stream_id))
        return 0;
    int64_t yes = 0;
    int rc = query_int(store,
                       "SELECT 1 FROM executions e JOIN jobs j ON j.id = e.job "
                       "WHERE e.thing = ? AND j.stream = ? AND e.released = 1 "
                       "AND e.status NOT IN (" EX_REMOVED ", " EX_CANCELED ", " EX_SKIPPED ") "
                       "AND NOT EXISTS (SELECT 1 FROM thing_attrs a WHERE a.thing = e.thing "
                       "AND a.key IN ('disabled', 'revoked') AND a.value = 'true') LIMIT 1",
                       thing, stream_id, &yes);
    if (rc)
        return rc;
    ok(store);
    return yes ? 1 : 0;
}
