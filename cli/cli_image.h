/*
 * otter CLI: what the image commands share with job create and sign.
 */
#ifndef CLI_IMAGE_H
#define CLI_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "otter/ota_image_header.h"
#include "otter/ota_pal.h"

/**
 * The tag of a --device-type value, or the usage error line.
 * @return CLI_EXIT_OK, or CLI_EXIT_USAGE after printing the error.
 */
int cli_image_type_tag(const char *type, uint32_t *tag);

/**
 * The value of a --security-counter option (1-65535), or the usage error line.
 * @return CLI_EXIT_OK, or CLI_EXIT_USAGE after printing the error.
 */
int cli_image_counter(const char *text, uint16_t *counter);

/**
 * Read an otter image file and decode its header; the header's size must be
 * the file's. The caller frees *data.
 * @return CLI_EXIT_OK, or CLI_EXIT_FAIL after printing the error.
 */
int cli_image_load(const char *path, uint8_t **data, size_t *len, ota_image_header_t *hdr);

/**
 * Write a DER signature to out (a new file), or print it in base64 when out
 * is NULL.
 * @return CLI_EXIT_OK, or CLI_EXIT_FAIL after printing the error.
 */
int cli_put_signature(const char *out, const uint8_t *sig, size_t sig_len);

/**
 * Check a signature over data with a certificate (PEM text read from
 * cert_path), printing the error line when it does not verify. With method
 * not NULL, the certificate's key must also be of that method.
 * @return CLI_EXIT_OK, or CLI_EXIT_FAIL after printing the error.
 */
int cli_check_signature(const char *cert_path, const char *pem, const uint8_t *data, size_t len,
                        const uint8_t *sig, size_t sig_len, const ota_sig_method_t *method);

#endif /* CLI_IMAGE_H */
