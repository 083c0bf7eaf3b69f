/*
 * otter (CLI image create, job create and web console): the anti-rollback fields an
 * operator writes into a new image header (security counter, device type), and the
 * warning before devices are sent an image they will refuse.
 *
 * Once a device confirmed an image with a security counter, its bootloader refuses
 * images with a lower counter or none (OTA_ERR_ROLLBACK, after the download). The
 * counters of published images are read from their stored headers, so every
 * publisher (CLI or web) warns the same way.
 *
 * Host code. Error texts read "<what is wrong>; <what to do>".
 */
#ifndef OTA_PUBLISH_COUNTER_H
#define OTA_PUBLISH_COUNTER_H

#include <stddef.h>
#include <stdint.h>

#include "ota_store.h"
#include "otter/ota_image_header.h"

/**
 * Parse a security counter as an operator gives it: decimal digits only, 1-65535.
 * @param text     the value (NULL is refused).
 * @param name     how the caller names the field in err ("--security-counter",
 *                 "securityCounter").
 * @param counter  receives the counter on success.
 * @return 0, or -1 with "bad <name> '<text>'; give 1-65535" in err.
 */
int ota_publish_counter_parse(const char *text, const char *name, uint16_t *counter, char *err,
                              size_t cap);

/**
 * The image header tag of a device type name (1-64 of [A-Za-z0-9_.-], the
 * thing's deviceType; see ota_device_type_tag()).
 * @param type  the name (NULL is refused).
 * @param name  how the caller names the field in err ("--device-type", "deviceType").
 * @param tag   receives the tag on success.
 * @return 0, or -1 with the reason in err.
 */
int ota_publish_device_type_parse(const char *type, const char *name, uint32_t *tag, char *err,
                                  size_t cap);

/**
 * The header of the image a stream publishes (its file id 0), read from the
 * stored file's first OTA_IMAGE_HEADER_SIZE bytes.
 * @return 0; -1 when the stream has no file 0, the file cannot be read or does
 *         not start with a valid otter header (a raw file, another file type).
 */
int ota_publish_stream_header(const ota_store_stream_t *stream, ota_image_header_t *hdr);

/** The highest security counter among published images, and where it is. */
typedef struct ota_publish_counter_floor {
    uint16_t counter; /**< 0 when no published image has a counter */
    /** the stream of the newest image with that counter ("" when none) */
    char stream_id[OTA_STORE_STREAM_ID_MAX + 1];
    int64_t created_ms; /**< when that stream was made */
} ota_publish_counter_floor_t;

/**
 * Finds the highest security counter in the headers of the published images
 * (ota_publish_stream_header() of every stream in the store; streams without
 * a readable header count as none).
 * @return 0, or -1 when the store cannot be listed (floor then says none).
 */
int ota_publish_counter_floor(ota_store_t *store, ota_publish_counter_floor_t *floor);

/** Why devices will refuse an image: a published image has a higher counter. */
typedef struct ota_publish_rollback {
    uint16_t counter;   /**< the image's security counter, 0 for none */
    uint16_t published; /**< the highest counter of a published image */
    /** the stream of the newest published image with that counter */
    char stream_id[OTA_STORE_STREAM_ID_MAX + 1];
    /** the first job that publishes it ("" when no job does) */
    char job_id[OTA_STORE_JOB_ID_MAX + 1];
} ota_publish_rollback_t;

/**
 * Whether devices that confirmed a published image will refuse an image with
 * this header: a published image has a security counter above the header's
 * (or the header has none and a published image has one). Call it after
 * publishing as well as before: the image itself never raises the floor above
 * its own counter.
 * @param hdr  the decoded header of the image to send.
 * @param out  filled when the result is 1.
 * @return 1 (devices will refuse it; out says why), 0 (no such image), -1 when
 *         the store cannot be listed.
 */
int ota_publish_rollback_check(ota_store_t *store, const ota_image_header_t *hdr,
                               ota_publish_rollback_t *out);

/**
 * The warning for ota_publish_rollback_check()'s result as one sentence
 * ("this image has ..., but the image of job ... has security counter N:
 * devices that confirmed that image will refuse this one after the download
 * (OTA_ERR_ROLLBACK); publish it with <flag> N or higher for them").
 * @param flag how the caller names the counter field ("--security-counter").
 * @param out  receives the text, NUL-terminated and cut to cap.
 */
void ota_publish_rollback_text(const ota_publish_rollback_t *r, const char *flag, char *out,
                               size_t cap);

#endif /* OTA_PUBLISH_COUNTER_H */
