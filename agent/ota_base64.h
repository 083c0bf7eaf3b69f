/*
 * otter: base64 decoding for code signatures in job documents.
 *
 * Standard alphabet (RFC 4648 section 4, "A-Z a-z 0-9 + /") with "="
 * padding. Line breaks (CR and LF, alone or in pairs) may appear anywhere and
 * are skipped, as signatures are sometimes wrapped like PEM text. No tables:
 * the alphabet is decoded by comparisons, so nothing lives in RAM.
 */
#ifndef OTA_BASE64_H
#define OTA_BASE64_H

#include "ota_module.h"

#include "otter/ota_config_defaults.h"

#include <stddef.h>
#include <stdint.h>

#include "otter/ota_err.h"

/** Number of bytes that n base64 characters (CR/LF excluded) decode to at most. */
#define OTA_BASE64_DECODED_MAX(n) (((n) / 4u) * 3u)

/**
 * Decode base64 text.
 *
 * The input must consist of complete groups of four characters, the last of
 * which may end in "=" or "==". Any other character (space, tab, "-", "_", a
 * NUL byte), "=" anywhere but at the end, a group after a padded group, a
 * missing "=" and non-zero bits left over before the padding are refused.
 * Empty input (or input of only CR/LF) decodes to zero bytes.
 *
 * @param in      the text; need not be NUL-terminated; borrowed for the call.
 *                May be NULL when in_len is 0.
 * @param in_len  length of in in bytes.
 * @param out     receives the decoded bytes; may be NULL when cap is 0. On
 *                failure its contents are unspecified.
 * @param cap     size of out in bytes.
 * @param out_len receives the number of bytes decoded (set on OTA_OK only).
 * @return OTA_OK; OTA_ERR_INVALID_ARG (out_len NULL, in NULL with in_len > 0,
 *         out NULL with cap > 0); OTA_ERR_BAD_MESSAGE (not valid base64, see
 *         above); OTA_ERR_OUT_OF_MEMORY (the decoded bytes do not fit in cap).
 *         Input is checked in order, so invalid text after more bytes than
 *         cap gives OTA_ERR_OUT_OF_MEMORY.
 */
OTA_MODULE ota_err_t ota_base64_decode(const char *in, size_t in_len, uint8_t *out, size_t cap,
                                       size_t *out_len);

#endif /* OTA_BASE64_H */
