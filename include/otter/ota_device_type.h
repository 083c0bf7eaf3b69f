/*
 * otter: device type names and their 32-bit tags.
 *
 * A device type is the service's deviceType: 1-OTA_DEVICE_TYPE_MAX of
 * [A-Za-z0-9_.-]. Its tag (CRC-32 of the name's bytes, 0 mapped to
 * 0xffffffff) stands for it where a name does not fit: in the image header,
 * and in the agent's copy of a job's device types. Tags tell types apart
 * except with a chance of 2^-32 for a pair; the service matches names exactly.
 */
#ifndef OTTER_OTA_DEVICE_TYPE_H
#define OTTER_OTA_DEVICE_TYPE_H

#include "otter/ota_config_defaults.h"

#include <stddef.h>
#include <stdint.h>

#include "otter/ota_err.h"

/** Longest device type name. */
#define OTA_DEVICE_TYPE_MAX 64u

/**
 * The tag of a device type name (never 0: 0 means "any type" where tags are kept).
 * @param name len bytes (need not be NUL-terminated).
 * @param tag  receives the tag.
 * @return OTA_OK, or OTA_ERR_INVALID_ARG (NULL, empty, longer than
 *         OTA_DEVICE_TYPE_MAX, or a character outside [A-Za-z0-9_.-]).
 */
ota_err_t ota_device_type_tag(const char *name, size_t len, uint32_t *tag);

#endif /* OTTER_OTA_DEVICE_TYPE_H */
