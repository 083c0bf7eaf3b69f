/* otter service and CLI: a device's failure reason in words (see ota_svc_reason.h). */
#include "ota_svc_reason.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ota_text_escape.h"

/* What each code means to an operator, by -code (index 0 is OTA_OK). The
 * names are common/ota_err.c's; this table is host-only, so the device's
 * image never carries these texts. */
static const char *const meanings[] = {
    "no error",
    "the device's update port was used before it was started",
    "a buffer on the device is too small for the job",
    "the device has no file open for this step",
    "the code signature does not verify with the device's certificate",
    "the device cannot create the file to receive into",
    "the file does not fit the device's update slot",
    "the device cannot write its boot metadata",
    "the signer certificate is missing on the device or unusable",
    "the device was asked for an image state it does not allow",
    "the device could not abort the transfer",
    "the device could not reject the image",
    "the device could not commit (accept) the image",
    "the device could not activate the new image",
    "an error while aborting the file on the device",
    "an error while closing the file on the device",
    "a bad argument inside the device's update code",
    "the device's storage reported an error",
    "a flash rule was broken on the device (alignment, erase first)",
    "the device found nothing stored where it expected a record",
    "data stored on the device failed its integrity check",
    "the step is not allowed in the device's current state",
    "reserved code (no device reports it)",
    ("anti-rollback: the image's security counter is below the device's minimum; once a "
     "device confirmed an image with a counter it refuses images without one"),
    "the image header is missing or malformed, or the image is for another device type",
    "the job document is one the device cannot use",
    "the signature method or the data planes offered are not supported by the device",
    "the device received a malformed MQTT message",
    "the device's requests went unanswered too often",
    "the service refused one of the device's requests",
    "the device's MQTT connection failed to publish or subscribe",
    "the job was canceled or removed by the service",
    "the new image failed its self-test and was rolled back",
    "the new image is not newer than the one the device runs",
    "the job or image is for other device types",
};

/* The build fails when an error code is added without its meaning. */
typedef char ota_svc_reason_meanings_complete
    [(sizeof meanings / sizeof meanings[0] == (size_t)(1 - OTA_ERR_MIN_CODE)) ? 1 : -1];

const char *ota_svc_reason_meaning(ota_err_t err)
{
    int n = -(int)err;
    if (n < 0 || n > -OTA_ERR_MIN_CODE) {
        return "unknown error";
    }
    return meanings[n];
}

/* "0x" and exactly 8 hex digits at s: the value, and 1; else 0. */
static int hex32(const char *s, uint32_t *v)
{
    if (s[0] != '0' || s[1] != 'x') {
        return 0;
    }
    uint32_t x = 0;
    for (int i = 2; i < 10; i++) {
        char c = s[i];
        unsigned d;
        if (c >= '0' && c <= '9') {
            d = (unsigned)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            d = (unsigned)(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            d = (unsigned)(c - 'A' + 10);
        } else {
            return 0;
        }
        x = (x << 4) | d;
    }
    *v = x;
    return 1;
}

int ota_svc_reason_decode(const char *reason, ota_err_t *err)
{
    static const char *const prefixes[] = {"rejected: ", "aborted: "};
    uint32_t code = 0, sub = 0;
    const char *p = reason;
    int transfer = 1;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        size_t n = strlen(prefixes[i]);
        if (strncmp(p, prefixes[i], n) == 0) {
            p += n;
            transfer = 0;
            break;
        }
    }
    if (!hex32(p, &code)) {
        return 0;
    }
    p += 10;
    if (transfer && (strncmp(p, ": ", 2) != 0 || !hex32(p + 2, &sub))) {
        return 0;
    }
    if (*(transfer ? p + 12 : p) != '\0') {
        return 0;
    }
    for (int e = -1; e >= OTA_ERR_MIN_CODE; e--) {
        if (ota_err_pal_code((ota_err_t)e) == code) {
            *err = (ota_err_t)e;
            return 1;
        }
    }
    return 0;
}

void ota_svc_reason_text(const char *reason, char *out, size_t cap)
{
    if (cap == 0) {
        return;
    }
    /* Escapes first (they hold no space), then runs of spaces become one in place. */
    ota_text_escape(reason, strlen(reason), out, cap);
    size_t n = 0;
    for (const char *p = out; *p != '\0'; p++) {
        if (*p == ' ' && n > 0 && out[n - 1] == ' ') {
            continue;
        }
        out[n++] = *p;
    }
    while (n > 0 && out[n - 1] == ' ') {
        n--;
    }
    out[n] = '\0';
    ota_err_t err;
    if (ota_svc_reason_decode(out, &err)) {
        snprintf(out + n, cap - n, " (%s: %s)", ota_err_str(err), ota_svc_reason_meaning(err));
    }
}
