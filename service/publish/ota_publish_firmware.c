/* otter (CLI job create and web console upload): firmware to image, checked (see
 * ota_publish_firmware.h). */
#include "ota_publish_firmware.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ota_publish_appdesc.h"
#include "ota_publish_counter.h"
#include "ota_publish_image.h"
#include "otter/ota_device_type.h"
#include "otter/ota_image_header.h"
#include "otter/ota_version.h"

/* Is every one of the job's device types the image's (by its tag)? */
static int types_all_tag(const char *types, uint32_t tag)
{
    const char *t = types;
    while (t != NULL && *t != '\0') {
        const char *comma = strchr(t, ',');
        size_t n = comma ? (size_t)(comma - t) : strlen(t);
        uint32_t mine = 0;
        if (ota_device_type_tag(t, n, &mine) != OTA_OK || mine != tag) {
            return 0;
        }
        t = comma ? comma + 1 : NULL;
    }
    return 1;
}

/* A finished image carries the header fields the job asks for; an image made
 * for one device type goes only to things of that type. */
static int check_finished_image(const ota_publish_names_t *names, const ota_publish_firmware_t *fw,
                                uint32_t tag, const uint8_t *image, size_t len, char *err,
                                size_t cap)
{
    ota_image_header_t hdr;
    if (ota_image_header_decode(image, len, &hdr) != OTA_OK) {
        snprintf(err, cap, "%s has a damaged image header; make it again", fw->name);
        return -1;
    }
    if (fw->security_counter != 0 && hdr.security_counter != fw->security_counter) {
        snprintf(err, cap,
                 "%s is an image with security counter %u, not %u; drop the security counter "
                 "(the image's header decides) or make the image again",
                 fw->name, (unsigned)hdr.security_counter, (unsigned)fw->security_counter);
        return -1;
    }
    if (tag != 0 && hdr.device_type_tag != tag) {
        snprintf(err, cap,
                 "%s is an image not made for device type %s; drop the device type (the "
                 "image's header decides) or make the image again",
                 fw->name, fw->device_type);
        return -1;
    }
    if (hdr.device_type_tag != 0 &&
        (fw->device_types == NULL || !types_all_tag(fw->device_types, hdr.device_type_tag))) {
        snprintf(err, cap,
                 "%s is made for one device type, %s; give %s with just the type given to "
                 "'otter image create --device-type'",
                 fw->name,
                 fw->device_types ? "not all of the job's device types" : "and the job names none",
                 names->device_types);
        return -1;
    }
    return 0;
}

/* The header fields asked for: usable for this file and job? The tag of the
 * device type in *tag (0 for none). */
static int check_header_fields(const ota_publish_names_t *names, const ota_publish_firmware_t *fw,
                               uint32_t *tag, char *err, size_t cap)
{
    *tag = 0;
    if (fw->security_counter == 0 && fw->device_type == NULL) {
        return 0;
    }
    if (fw->file_type != 0 || fw->raw) {
        snprintf(err, cap,
                 "a security counter and a device type go into otter's image header, "
                 "which a raw file or another file type does not get; drop them");
        return OTA_PUBLISH_FIRMWARE_USAGE;
    }
    if (fw->device_type == NULL) {
        return 0;
    }
    if (ota_publish_device_type_parse(fw->device_type, names->device_type, tag, err, cap) != 0) {
        return OTA_PUBLISH_FIRMWARE_USAGE;
    }
    if (fw->device_types == NULL || !types_all_tag(fw->device_types, *tag)) {
        snprintf(err, cap,
                 "an image for device type %s goes only to a job for that type; give %s %s or "
                 "leave it out",
                 fw->device_type, names->device_types, fw->device_type);
        return OTA_PUBLISH_FIRMWARE_USAGE;
    }
    return 0;
}

int ota_publish_firmware_image(const ota_publish_names_t *names, const ota_publish_firmware_t *fw,
                               uint32_t *version, uint8_t **image, size_t *image_len, char *err,
                               size_t cap)
{
    *image = NULL;
    *image_len = 0;
    *version = fw->version;
    if (fw->len == 0) {
        snprintf(err, cap, "%s is empty; give the firmware file", fw->name);
        return -1;
    }
    uint32_t tag = 0;
    int rc = check_header_fields(names, fw, &tag, err, cap);
    if (rc != 0) {
        return rc;
    }
    int is_image =
        fw->len >= 4 && memcmp(fw->data, "OTIM", 4) == 0 && fw->file_type == 0 && !fw->raw;
    if (!fw->version_given) {
        ota_image_header_t hdr;
        if (!is_image) {
            snprintf(err, cap, "%s has no image header to take the version from; give %s X.Y.Z",
                     fw->name, names->version);
            return OTA_PUBLISH_FIRMWARE_USAGE;
        }
        if (ota_image_header_decode(fw->data, fw->len, &hdr) != OTA_OK) {
            snprintf(err, cap,
                     "%s starts with a damaged image header; make it again with 'otter image "
                     "create'",
                     fw->name);
            return -1;
        }
        *version = hdr.version;
    }
    size_t skip = is_image ? OTA_IMAGE_HEADER_SIZE : 0;
    if (fw->file_type == 0 && fw->len > skip &&
        ota_publish_appdesc_check(fw->data + skip, fw->len - skip, *version, fw->name,
                                  names->version, err, cap) != 0) {
        return -1;
    }
    if (fw->file_type != 0 || fw->raw) {
        *image = malloc(fw->len);
        if (*image == NULL) {
            snprintf(err, cap, "out of memory for %s; give a smaller file", fw->name);
            return -1;
        }
        memcpy(*image, fw->data, fw->len);
        *image_len = fw->len;
        return 0;
    }
    uint32_t found = 0;
    char want[OTA_VERSION_TEXT_MAX], got[OTA_VERSION_TEXT_MAX];
    /* Firmware gets the header 'otter image create' writes, from the same fields. */
    const ota_image_header_t fields = {
        .version = *version, .security_counter = fw->security_counter, .device_type_tag = tag};
    switch (ota_publish_image_prepare(fw->data, fw->len, &fields, image, image_len, &found)) {
    case OTA_PUBLISH_IMAGE_WRAPPED:
        return 0;
    case OTA_PUBLISH_IMAGE_AS_IS:
        if (check_finished_image(names, fw, tag, *image, *image_len, err, cap) != 0) {
            free(*image);
            *image = NULL;
            *image_len = 0;
            return -1;
        }
        return 0;
    case OTA_PUBLISH_IMAGE_VERSION_MISMATCH:
        ota_version_format(*version, want);
        ota_version_format(found, got);
        snprintf(err, cap, "%s has an image header for version %s, not %s; give %s %s", fw->name,
                 got, want, names->version, got);
        return -1;
    case OTA_PUBLISH_IMAGE_BAD_HEADER:
        snprintf(err, cap,
                 "%s starts with a damaged image header; rebuild the image or give the raw "
                 "firmware",
                 fw->name);
        return -1;
    case OTA_PUBLISH_IMAGE_BAD_SIZE:
    default:
        snprintf(err, cap, "%s is too large or memory ran out; give a smaller file", fw->name);
        return -1;
    }
}
