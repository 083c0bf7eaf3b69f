/*
 * otter (CLI job create and web console upload): the checks that turn a
 * firmware file into the image a job publishes, in one place. The version the
 * job states, the one in an image header and the one in an ESP-IDF
 * application descriptor must agree; an image made for one device type goes
 * only to a job for exactly that type.
 *
 * Host code: uses the heap. Error texts read "<what is wrong>; <what to do>".
 */
#ifndef OTA_PUBLISH_FIRMWARE_H
#define OTA_PUBLISH_FIRMWARE_H

#include <stddef.h>
#include <stdint.h>

/** How the caller names its inputs in advice ("--version" or "version", ...). */
typedef struct ota_publish_names {
    const char *version;      /**< the job's version */
    const char *device_types; /**< the job's device types */
    const char *device_type;  /**< the device type a new image header names */
} ota_publish_names_t;

/** A firmware file and the job it is for. */
typedef struct ota_publish_firmware {
    const uint8_t *data; /**< the file's bytes */
    size_t len;
    const char *name;         /**< how errors call the file, e.g. "'fw.bin'" */
    int version_given;        /**< 0: take the version from the file's image header */
    uint32_t version;         /**< the job's version when version_given */
    unsigned file_type;       /**< 0 = firmware; other types are delivered as given */
    int raw;                  /**< deliver the firmware as given (no otter header) */
    const char *device_types; /**< the job's types "a,b", or NULL */
    /** Header fields for firmware that gets a header, as 'otter image create'
     * writes them; a finished image must already carry them. */
    uint16_t security_counter; /**< 1-65535, or 0 for none */
    const char *device_type;   /**< the type the image is for (its tag), or NULL */
} ota_publish_firmware_t;

/** Result: the caller's input is incomplete (no version to go by). */
#define OTA_PUBLISH_FIRMWARE_USAGE (-2)

/**
 * Make the image to publish: the file as given (raw, other file types), the
 * file with a header prepended (version, and the security counter and device
 * type when given: the same header 'otter image create' writes), or a
 * finished image whose header states the job's version, the given security
 * counter and device type, and (if it names a type) the job's only device
 * type. A device type given needs the job's device types to be just that one.
 * @param version   receives the job's version (from the header when not given).
 * @param image, image_len receive the image (heap, caller frees) on success.
 * @return 0; -1 when the file is refused; OTA_PUBLISH_FIRMWARE_USAGE; the
 *         text in err on failure.
 */
int ota_publish_firmware_image(const ota_publish_names_t *names, const ota_publish_firmware_t *fw,
                               uint32_t *version, uint8_t **image, size_t *image_len, char *err,
                               size_t cap);

#endif /* OTA_PUBLISH_FIRMWARE_H */
