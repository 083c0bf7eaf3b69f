/* otter (CLI and web console): security counters and device types of new image headers,
 * and the anti-rollback warning (see ota_publish_counter.h). */
#include "ota_publish_counter.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otter/ota_device_type.h"

int ota_publish_counter_parse(const char *text, const char *name, uint16_t *counter, char *err,
                              size_t cap)
{
    unsigned long v = 0;
    char *end = NULL;
    int ok = text != NULL && text[0] >= '0' && text[0] <= '9';
    if (ok) {
        errno = 0;
        v = strtoul(text, &end, 10);
        ok = errno == 0 && *end == '\0' && v >= 1 && v <= 65535;
    }
    if (!ok) {
        snprintf(err, cap, "bad %s '%.40s'; give 1-65535", name, text ? text : "");
        return -1;
    }
    *counter = (uint16_t)v;
    return 0;
}

int ota_publish_device_type_parse(const char *type, const char *name, uint32_t *tag, char *err,
                                  size_t cap)
{
    if (type == NULL || ota_device_type_tag(type, strlen(type), tag) != OTA_OK) {
        snprintf(err, cap, "bad %s '%.80s'; give 1-64 of [A-Za-z0-9_.-] (the thing's deviceType)",
                 name, type ? type : "");
        return -1;
    }
    return 0;
}

int ota_publish_stream_header(const ota_store_stream_t *stream, ota_image_header_t *hdr)
{
    uint8_t head[OTA_IMAGE_HEADER_SIZE];
    if (stream->n_files == 0 || stream->files[0].file_id != 0) {
        return -1;
    }
    FILE *f = fopen(stream->files[0].path, "rb");
    size_t n = f != NULL ? fread(head, 1, sizeof head, f) : 0;
    if (f != NULL) {
        fclose(f);
    }
    return n == sizeof head && ota_image_header_decode(head, sizeof head, hdr) == OTA_OK ? 0 : -1;
}

/* Raises the floor to one stream's image counter, if higher. */
static int floor_of_stream(void *ctx, const ota_store_stream_t *stream)
{
    ota_publish_counter_floor_t *floor = ctx;
    ota_image_header_t hdr;
    /* The newest of those with the highest counter (the list is in id order, which is
     * random): the one devices most likely confirmed, and the same answer every time. */
    if (ota_publish_stream_header(stream, &hdr) == 0 && hdr.security_counter != 0 &&
        (hdr.security_counter > floor->counter ||
         (hdr.security_counter == floor->counter && stream->created_ms > floor->created_ms))) {
        floor->counter = hdr.security_counter;
        floor->created_ms = stream->created_ms;
        snprintf(floor->stream_id, sizeof floor->stream_id, "%s", stream->stream_id);
    }
    return 0;
}

int ota_publish_counter_floor(ota_store_t *store, ota_publish_counter_floor_t *floor)
{
    memset(floor, 0, sizeof *floor);
    if (ota_store_stream_list(store, floor_of_stream, floor) != OTA_STORE_OK) {
        memset(floor, 0, sizeof *floor);
        return -1;
    }
    return 0;
}

/* Stops at the first job that publishes the rollback's stream. */
static int job_of_stream(void *ctx, const ota_store_job_t *j)
{
    ota_publish_rollback_t *r = ctx;
    if (strcmp(j->stream_id, r->stream_id) != 0) {
        return 0;
    }
    snprintf(r->job_id, sizeof r->job_id, "%s", j->job_id);
    return 1;
}

int ota_publish_rollback_check(ota_store_t *store, const ota_image_header_t *hdr,
                               ota_publish_rollback_t *out)
{
    ota_publish_counter_floor_t floor;
    memset(out, 0, sizeof *out);
    if (ota_publish_counter_floor(store, &floor) != 0) {
        return -1;
    }
    if (floor.counter <= hdr->security_counter) {
        return 0;
    }
    out->counter = hdr->security_counter;
    out->published = floor.counter;
    snprintf(out->stream_id, sizeof out->stream_id, "%s", floor.stream_id);
    (void)ota_store_job_list(store, job_of_stream, out); /* the job is only named */
    return 1;
}

void ota_publish_rollback_text(const ota_publish_rollback_t *r, const char *flag, char *out,
                               size_t cap)
{
    char what[40] = "no security counter";
    if (r->counter != 0) {
        snprintf(what, sizeof what, "security counter %u", (unsigned)r->counter);
    }
    snprintf(out, cap,
             "this image has %s, but the image of job %s (stream %s) has security counter %u: "
             "devices that confirmed that image will refuse this one after the download "
             "(OTA_ERR_ROLLBACK); publish it with %s %u or higher for them",
             what, r->job_id[0] ? r->job_id : "-", r->stream_id, (unsigned)r->published, flag,
             (unsigned)r->published);
}
