/*
 * otter service and CLI: a device's failure reason in words.
 *
 * The agent reports a failed job with a reason of one of three forms, each
 * number 8 hex digits: "rejected: 0xAAAAAAAA", "aborted: 0xAAAAAAAA" and
 * "0xAAAAAAAA: 0xBBBBBBBB" (a transfer or activation failure; B is a detail
 * such as a block index). A is the FreeRTOS-style code of an ota_err_t
 * (ota_err_pal_code()). These functions name that error (ota_err_str()) and
 * say what it means, for operators; the device itself keeps only the codes.
 *
 * Host code: no heap, no state; any thread.
 */
#ifndef OTA_SVC_REASON_H
#define OTA_SVC_REASON_H

#include <stddef.h>

#include "otter/ota_err.h"

/**
 * A short meaning of an error code for operators, e.g. for OTA_ERR_ROLLBACK
 * "anti-rollback: ...".
 * @return a static string, never NULL ("unknown error" for unknown values).
 */
const char *ota_svc_reason_meaning(ota_err_t err);

/**
 * Decodes a device's reason exactly as the agent writes it (see above).
 * @param reason the reason text (runs of spaces already collapsed or not: no).
 * @param err    receives the ota_err_t the reason's first number stands for.
 * @return 1 when reason has one of the three forms and its code is an
 *         ota_err_t's; 0 otherwise (*err untouched).
 */
int ota_svc_reason_decode(const char *reason, ota_err_t *err);

/**
 * A reason made readable: runs of spaces become one, trailing spaces go, and a
 * reason ota_svc_reason_decode() understands gets its error's name and
 * meaning: "0x000000f7: 0x00000000 (OTA_ERR_ROLLBACK: anti-rollback: ...)".
 * Any other text is kept as it is (a device may write anything), but for
 * control characters, bidi overrides and bytes that are not UTF-8, shown as
 * escapes ("\x1b", "\u202e"; ota_text_escape()): the text may go to a terminal.
 * @param out receives the text, cut to cap - 1 bytes and always terminated.
 */
void ota_svc_reason_text(const char *reason, char *out, size_t cap);

#endif /* OTA_SVC_REASON_H */
