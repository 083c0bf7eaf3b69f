/*
 * otter on mps2-an386: the production line. Makes a new flash file for the
 * emulated board: every byte erased, the factory application in slot A with
 * otter's image header, tagged with the board's device type BOARD_DEVICE_TYPE
 * (no boot record yet, so the bootloader starts from the factory state), and the provisioning
 * sector with the thing's identity (from `otter thing create`'s thing file) and the code-signing
 * certificate.
 *
 *   otter-board-flash --out FILE --factory APP.bin --version X.Y.Z
 *                     --thing THING.json --cert CERT.pem [--cert-name NAME]
 *
 * The file is written as FILE.new and renamed when complete. Exit status 0,
 * 1 on a bad input or I/O error (with a message), 2 on a wrong command line.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "board_layout.h"
#include "board_provision.h"
#include "otter/ota_image_header.h"

static int fail(const char *what, const char *detail)
{
    fprintf(stderr, "otter-board-flash: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    return 1;
}

/* Reads a whole file into a new buffer; NULL on error. */
static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long n;
    if (f == NULL) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1u)) != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = '\0';
        *len = (size_t)n;
    } else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

static const char *json_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int main(int argc, char **argv)
{
    const char *out = NULL, *factory = NULL, *version = NULL, *thing = NULL, *cert = NULL;
    const char *cert_name = "codesign.crt";
    for (int i = 1; i + 1 < argc; i += 2) {
        const char **slot = strcmp(argv[i], "--out") == 0         ? &out
                            : strcmp(argv[i], "--factory") == 0   ? &factory
                            : strcmp(argv[i], "--version") == 0   ? &version
                            : strcmp(argv[i], "--thing") == 0     ? &thing
                            : strcmp(argv[i], "--cert") == 0      ? &cert
                            : strcmp(argv[i], "--cert-name") == 0 ? &cert_name
                                                                  : NULL;
        if (slot == NULL) {
            argc = 0;
            break;
        }
        *slot = argv[i + 1];
    }
    if (argc % 2 == 0 || !out || !factory || !version || !thing || !cert) {
        fprintf(stderr, "usage: otter-board-flash --out FILE --factory APP.bin --version X.Y.Z "
                        "--thing THING.json --cert CERT.pem [--cert-name NAME]\n");
        return 2;
    }
    uint32_t v;
    if (ota_version_parse(version, &v) != 0) {
        return fail("bad --version (want X.Y.Z)", version);
    }
    size_t app_len = 0, pem_len = 0, thing_len = 0;
    uint8_t *app = slurp(factory, &app_len), *pem = slurp(cert, &pem_len);
    uint8_t *thing_text = slurp(thing, &thing_len);
    uint8_t *flash = malloc(BOARD_FLASH_SIZE);
    cJSON *json = thing_text ? cJSON_Parse((const char *)thing_text) : NULL;
    int rc = 1;
    if (app == NULL || pem == NULL || thing_text == NULL || flash == NULL) {
        fail("cannot read", app == NULL ? factory : pem == NULL ? cert : thing);
        goto out;
    }
    if (app_len == 0 || app_len + OTA_IMAGE_HEADER_SIZE > BOARD_SLOT_SIZE) {
        fail("the factory image is empty or does not fit a slot", factory);
        goto out;
    }
    const char *name = json ? json_str(json, "thing") : NULL;
    const char *user = json ? json_str(json, "username") : NULL;
    const char *pass = json ? json_str(json, "password") : NULL;
    if (!name || !user || !pass) {
        fail("not a thing file (thing, username, password)", thing);
        goto out;
    }
    memset(flash, BOARD_ERASED, BOARD_FLASH_SIZE);
    ota_image_header_t hdr = {.version = v,
                              .image_size = (uint32_t)(app_len + OTA_IMAGE_HEADER_SIZE)};
    /* Made for this board: its bootloader boots only images of its type. */
    (void)ota_device_type_tag(BOARD_DEVICE_TYPE, sizeof BOARD_DEVICE_TYPE - 1u,
                              &hdr.device_type_tag);
    if (ota_image_header_encode(&hdr, flash + BOARD_SLOT_A) != OTA_OK) {
        fail("cannot encode the image header", NULL);
        goto out;
    }
    memcpy(flash + BOARD_SLOT_A + OTA_IMAGE_HEADER_SIZE, app, app_len);
    if (board_provision_encode(flash + BOARD_PROVISION, BOARD_PROVISION_SIZE, name, user, pass,
                               cert_name, pem, pem_len) < 0) {
        fail("identity or certificate too large or empty", NULL);
        goto out;
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.new", out);
    FILE *f = fopen(tmp, "wb");
    if (f == NULL || fwrite(flash, 1, BOARD_FLASH_SIZE, f) != BOARD_FLASH_SIZE) {
        if (f != NULL) {
            fclose(f);
        }
        fail("cannot write", tmp);
        goto out;
    }
    if (fclose(f) != 0 || rename(tmp, out) != 0) {
        fail("cannot write", out);
        goto out;
    }
    printf("flash %s: factory %s %s for %s in slot A (%zu bytes), thing %s\n", out, factory,
           version, BOARD_DEVICE_TYPE, app_len, name);
    rc = 0;
out:
    cJSON_Delete(json);
    free(app);
    free(pem);
    free(thing_text);
    free(flash);
    return rc;
}
