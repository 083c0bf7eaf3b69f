/* otter: a signed image published as a job (see ota_publish_job.h). */
#include "ota_publish_job.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ota_publish_doc.h"
#include "ota_publish_image.h"
#include "ota_svc_presign.h"

/* Writes data to a new file of mode 0600 (never replacing one), synced. */
static int write_new(const char *path, const uint8_t *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        return -1;
    }
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            int e = errno;
            close(fd);
            unlink(path);
            errno = e;
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        int e = errno;
        unlink(path);
        errno = e;
        return -1;
    }
    return 0;
}

/* Writes the image to a temporary file and imports it; removes the temporary. */
static int import_image(ota_store_t *store, const ota_publish_job_t *p, ota_store_file_t *file,
                        char *err, size_t cap)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s/.import-%s.bin", p->tmp_dir, p->stream_id);
    if (n < 0 || (size_t)n >= sizeof tmp || write_new(tmp, p->image, p->image_len) != 0) {
        snprintf(err, cap,
                 "cannot write a temporary file in '%s' (%s); check space and permissions",
                 p->tmp_dir, strerror(errno));
        return -1;
    }
    int src = ota_store_file_import(store, tmp, file);
    unlink(tmp);
    if (src != OTA_STORE_OK) {
        snprintf(err, cap, "cannot import the image (%s); check the data folder",
                 ota_store_errmsg(store));
        return -1;
    }
    return 0;
}

int ota_publish_job(ota_store_t *store, const ota_publish_job_t *p, ota_store_job_spec_t *spec,
                    const char *job_flag, char *err, size_t cap)
{
    ota_store_file_t file;
    if (import_image(store, p, &file, err, cap) != 0) {
        return -1;
    }
    char ver[16];
    ota_version_format(p->version, ver);
    char url[64];
    if (p->http && ota_svc_presign_placeholder(file.id, p->url_expiry_s, url, sizeof url)) {
        unlink(file.path);
        snprintf(err, cap, "cannot name the stored file for HTTP; try again");
        return -1;
    }
    ota_publish_doc_t d = {.stream_id = p->stream_id,
                           .file_path = p->file_path ? p->file_path : "firmware.bin",
                           .file_size = p->image_len,
                           .cert_name = p->cert_name ? p->cert_name : "codesign.crt",
                           .file_type = p->file_type,
                           .sig = p->sig,
                           .sig_len = p->sig_len,
                           .sig_method = p->sig_method,
                           .protocols = p->protocols,
                           .n_protocols = p->n_protocols,
                           .data_url = p->http ? url : NULL,
                           .version = p->file_type == 0 ? ver : NULL,
                           .device_types = p->device_types};
    char *doc = ota_publish_doc(&d);
    char desc[1200];
    snprintf(desc, sizeof desc, "otter job %s: %s version %s", p->job_id, d.file_path, ver);
    if (doc == NULL) {
        unlink(file.path);
        snprintf(err, cap, "out of memory; try again");
        return -1;
    }
    ota_store_stream_file_t sf = {.file_id = 0, .path = file.path, .size = file.size};
    int64_t now = ota_store_now_ms();
    int src = ota_store_stream_create(store, p->stream_id, desc, &sf, 1, now);
    if (src != OTA_STORE_OK) {
        free(doc);
        unlink(file.path);
        snprintf(err, cap, "cannot create stream %s (%s); try again", p->stream_id,
                 ota_store_errmsg(store));
        return -1;
    }
    spec->job_id = p->job_id;
    spec->document = doc;
    spec->target_version = p->file_type == 0 ? ver : NULL;
    spec->device_types = p->device_types;
    spec->stream_id = p->stream_id;
    src = ota_store_job_create(store, spec, now);
    free(doc);
    spec->document = NULL;
    spec->target_version = NULL;
    if (src == OTA_STORE_EXISTS) {
        snprintf(err, cap, "job id '%s' is taken; choose another %s", p->job_id, job_flag);
        return OTA_PUBLISH_TAKEN;
    }
    if (src != OTA_STORE_OK) {
        snprintf(err, cap, "cannot create job '%s' (%s); check the targets", p->job_id,
                 ota_store_errmsg(store));
        return -1;
    }
    return 0;
}
