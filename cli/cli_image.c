/* otter CLI: firmware images (create, sign, verify, show). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <mbedtls/sha256.h>

#include "cli_cmds.h"
#include "ota_publish_sign.h"
#include "cli_image.h"
#include "otter/ota_err.h"
#include "ota_publish_appdesc.h"
#include "ota_publish_counter.h"
#include "ota_publish_image.h"

int cli_image_type_tag(const char *type, uint32_t *tag)
{
    char err[200];
    if (ota_publish_device_type_parse(type, "--device-type", tag, err, sizeof err) != 0) {
        return cli_fail(CLI_EXIT_USAGE, "%s", err);
    }
    return CLI_EXIT_OK;
}

int cli_image_counter(const char *text, uint16_t *counter)
{
    char err[120];
    if (ota_publish_counter_parse(text, "--security-counter", counter, err, sizeof err) != 0) {
        return cli_fail(CLI_EXIT_USAGE, "%s", err);
    }
    return CLI_EXIT_OK;
}

int cli_image_load(const char *path, uint8_t **data, size_t *len, ota_image_header_t *hdr)
{
    int rc = cli_read_input("image", path, data, len);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (*len < 4 || memcmp(*data, "OTIM", 4) != 0) {
        rc = cli_fail(CLI_EXIT_FAIL,
                      "'%s' is not an otter image; make one with 'otter image create'", path);
    } else if (ota_image_header_decode(*data, *len, hdr) != OTA_OK) {
        rc = cli_fail(CLI_EXIT_FAIL,
                      "'%s' has a damaged or unknown image header; make it again with 'otter "
                      "image create'",
                      path);
    } else if (hdr->image_size != *len) {
        rc = cli_fail(CLI_EXIT_FAIL,
                      "'%s' is %zu bytes but its header says %u; the file was cut or "
                      "extended, make it again",
                      path, *len, (unsigned)hdr->image_size);
    }
    if (rc != CLI_EXIT_OK) {
        free(*data);
        *data = NULL;
    }
    return rc;
}

static const char create_help[] =
    "usage: otter image create --version X.Y.Z --out IMAGE [--security-counter N]\n"
    "                          [--device-type TYPE] FIRMWARE\n"
    "\n"
    "Write the image a device installs: otter's 32-byte header, then FIRMWARE as\n"
    "it is. The header carries the version, the image size and, when given, a\n"
    "security counter and a device type. Sign the IMAGE (not the FIRMWARE) with\n"
    "'otter image sign', or offline with any tool that makes an ECDSA P-256\n"
    "SHA-256 signature in DER, and publish it with 'otter job create'.\n"
    "Firmware that carries an ESP-IDF application descriptor must state the\n"
    "same version.\n"
    "\n"
    "  --version X.Y.Z         major.minor.build (0-255, 0-255, 0-65535)\n"
    "  --out IMAGE             the image file to write (must not exist)\n"
    "  --security-counter N    1-65535: once a device confirmed an image with a\n"
    "                          counter, its bootloader refuses images whose counter\n"
    "                          is lower, and images without a counter, whatever\n"
    "                          their version (anti-rollback): give every later image\n"
    "                          a counter, and raise it when an update fixes a\n"
    "                          security flaw. An image with a counter may carry a\n"
    "                          lower version than the device runs; one without may\n"
    "                          not, and only devices that never confirmed a counter\n"
    "                          accept it\n"
    "  --device-type TYPE      the deviceType the image is for; the bootloader of\n"
    "                          another type refuses it\n"
    "\n"
    "An image with a counter or a device type uses header format 2, which\n"
    "bootloaders older than format 2 refuse; one without is format 1.\n"
    "'otter job create --file FIRMWARE' takes the same --security-counter and\n"
    "--device-type and writes the same header.\n";

int cli_cmd_image_create(const cli_ctx_t *ctx, int argc, char **argv)
{
    (void)ctx;
    const char *version = NULL, *out = NULL, *counter = NULL, *type = NULL, *pos[1];
    size_t n_pos;
    int help;
    const cli_opt_t opts[] = {{"version", 1, &version},
                              {"out", 1, &out},
                              {"security-counter", 1, &counter},
                              {"device-type", 1, &type}};
    int rc = cli_parse(argc, argv, opts, 4, pos, 1, &n_pos, &help);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (help) {
        fputs(create_help, stdout);
        return CLI_EXIT_OK;
    }
    if (version == NULL || out == NULL || n_pos != 1) {
        return cli_fail(CLI_EXIT_USAGE, "image create needs --version, --out and the FIRMWARE; "
                                        "see 'otter image create --help'");
    }
    ota_image_header_t fields = {0};
    if (ota_version_parse(version, &fields.version) != 0) {
        return cli_fail(CLI_EXIT_USAGE,
                        "bad version '%s'; give X.Y.Z with X, Y in 0-255 and Z in 0-65535",
                        version);
    }
    if (counter != NULL &&
        (rc = cli_image_counter(counter, &fields.security_counter)) != CLI_EXIT_OK) {
        return rc;
    }
    if (type != NULL && (rc = cli_image_type_tag(type, &fields.device_type_tag)) != CLI_EXIT_OK) {
        return rc;
    }
    if (cli_exists(out)) {
        return cli_fail(CLI_EXIT_FAIL, "'%s' already exists; remove it or choose another --out",
                        out);
    }
    uint8_t *fw = NULL, *img = NULL;
    size_t fw_len = 0, img_len = 0;
    if ((rc = cli_read_input("firmware", pos[0], &fw, &fw_len)) != CLI_EXIT_OK) {
        return rc;
    }
    char err[300];
    char *name = cli_sprintf("'%s'", pos[0]);
    if (fw_len == 0) {
        rc = cli_fail(CLI_EXIT_FAIL, "'%s' is empty; give the firmware file", pos[0]);
    } else if (fw_len >= 4 && memcmp(fw, "OTIM", 4) == 0) {
        rc = cli_fail(CLI_EXIT_FAIL,
                      "'%s' is already an otter image; give the firmware it was made from", pos[0]);
    } else if (ota_publish_appdesc_check(fw, fw_len, fields.version, name ? name : pos[0],
                                         "--version", err, sizeof err) != 0) {
        rc = cli_fail(CLI_EXIT_FAIL, "%s", err);
    } else if (ota_publish_image_wrap(fw, fw_len, &fields, &img, &img_len) != 0) {
        rc = cli_fail(CLI_EXIT_FAIL, "'%s' is too large or memory ran out; give a smaller file",
                      pos[0]);
    } else if (cli_write_new_file(out, img, img_len, 0644) != 0) {
        rc = cli_fail(CLI_EXIT_FAIL, "cannot write '%s' (%s); check --out", out, strerror(errno));
    } else {
        printf("%s\n", out);
    }
    free(name);
    free(fw);
    free(img);
    return rc;
}

static const char sign_help[] =
    "usage: otter image sign --key KEY.pem [--out SIG.der] IMAGE\n"
    "\n"
    "Sign an image made by 'otter image create' as the devices verify it\n"
    "(the SHA-256 of the whole image, header included: sig-sha256-ecdsa with a\n"
    "P-256 key, sig-sha256-rsa with an RSA one). The signature is\n"
    "detached: publish it with 'otter job create --file IMAGE --signature SIG.der'.\n"
    "A key kept offline or in an HSM signs the same bytes: e.g.\n"
    "  openssl dgst -sha256 -sign KEY.pem -out SIG.der IMAGE\n"
    "('otter image show' prints the SHA-256 an HSM signs).\n"
    "\n"
    "  --key KEY.pem  private key, P-256 or RSA-2048/3072 (from 'otter keygen')\n"
    "  --out SIG.der  write the DER signature there (must not exist); without it\n"
    "                 the signature is printed in base64\n";

int cli_cmd_image_sign(const cli_ctx_t *ctx, int argc, char **argv)
{
    (void)ctx;
    const char *key, *out, *file = NULL;
    int help = 0;
    int rc = cli_sign_args(argc, argv, "image sign", sign_help, &key, &out, &file, &help);
    if (rc != CLI_EXIT_OK || help) {
        return rc;
    }
    uint8_t *img = NULL;
    size_t len = 0;
    ota_image_header_t hdr;
    if ((rc = cli_image_load(file, &img, &len, &hdr)) != CLI_EXIT_OK) {
        return rc;
    }
    uint8_t sig[CLI_SIG_MAX];
    size_t sig_len = 0;
    rc = cli_sign_data(key, img, len, sig, &sig_len, NULL);
    free(img);
    return rc == CLI_EXIT_OK ? cli_put_signature(out, sig, sig_len) : rc;
}

static const char verify_help[] =
    "usage: otter image verify --cert CERT.pem --signature SIG.der IMAGE\n"
    "\n"
    "Check an image and its detached signature the way a device does: the\n"
    "header decodes and matches the file's size, and the signature over the\n"
    "whole image verifies with the certificate's key (otter's device verifier).\n"
    "Exit status 0 when both hold, 1 otherwise.\n"
    "\n"
    "  --cert CERT.pem       the code-signing certificate the devices trust\n"
    "  --signature SIG.der   the DER signature (from 'otter image sign', openssl\n"
    "                        or an HSM)\n";

int cli_cmd_image_verify(const cli_ctx_t *ctx, int argc, char **argv)
{
    (void)ctx;
    const char *cert = NULL, *sig_path = NULL, *pos[1];
    size_t n_pos;
    int help;
    const cli_opt_t opts[] = {{"cert", 1, &cert}, {"signature", 1, &sig_path}};
    int rc = cli_parse(argc, argv, opts, 2, pos, 1, &n_pos, &help);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (help) {
        fputs(verify_help, stdout);
        return CLI_EXIT_OK;
    }
    if (cert == NULL || sig_path == NULL || n_pos != 1) {
        return cli_fail(CLI_EXIT_USAGE, "image verify needs --cert, --signature and the IMAGE; "
                                        "see 'otter image verify --help'");
    }
    uint8_t *img = NULL, *sig = NULL, *pem = NULL;
    size_t len = 0, sig_len = 0, pem_len = 0;
    ota_image_header_t hdr;
    if ((rc = cli_image_load(pos[0], &img, &len, &hdr)) == CLI_EXIT_OK &&
        (rc = cli_read_input("signature", sig_path, &sig, &sig_len)) == CLI_EXIT_OK &&
        (rc = cli_read_input("certificate", cert, &pem, &pem_len)) == CLI_EXIT_OK) {
        rc = cli_check_signature(cert, (const char *)pem, img, len, sig, sig_len, NULL);
    }
    if (rc == CLI_EXIT_OK) {
        char v[OTA_VERSION_TEXT_MAX];
        ota_version_format(hdr.version, v);
        printf("%s: signature verifies with %s (version %s, security counter %u)\n", pos[0], cert,
               v, (unsigned)hdr.security_counter);
    }
    free(img);
    free(sig);
    free(pem);
    return rc;
}

static const char show_help[] =
    "usage: otter image show [--json] [--device-type TYPE] IMAGE\n"
    "\n"
    "Print an image's header (format, version, size, security counter, device\n"
    "type tag), the size of the firmware in it, the version its ESP-IDF\n"
    "application descriptor states (if any) and the SHA-256 of the whole image\n"
    "(what a signature covers).\n"
    "\n"
    "  --json              one JSON object instead of text\n"
    "  --device-type TYPE  also say whether the image is for TYPE\n";

int cli_cmd_image_show(const cli_ctx_t *ctx, int argc, char **argv)
{
    (void)ctx;
    const char *json = NULL, *type = NULL, *pos[1];
    size_t n_pos;
    int help;
    const cli_opt_t opts[] = {{"json", 0, &json}, {"device-type", 1, &type}};
    int rc = cli_parse(argc, argv, opts, 2, pos, 1, &n_pos, &help);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (help) {
        fputs(show_help, stdout);
        return CLI_EXIT_OK;
    }
    if (n_pos != 1) {
        return cli_fail(CLI_EXIT_USAGE,
                        "image show needs the IMAGE; see 'otter image show --help'");
    }
    uint32_t tag = 0;
    if (type != NULL && (rc = cli_image_type_tag(type, &tag)) != CLI_EXIT_OK) {
        return rc;
    }
    uint8_t *img = NULL;
    size_t len = 0;
    ota_image_header_t hdr;
    if ((rc = cli_image_load(pos[0], &img, &len, &hdr)) != CLI_EXIT_OK) {
        return rc;
    }
    uint8_t digest[32];
    char hex[65], v[OTA_VERSION_TEXT_MAX], app[OTA_PUBLISH_APPDESC_VERSION_MAX], tag_hex[12];
    mbedtls_sha256_ret(img, len, digest, 0);
    for (size_t i = 0; i < sizeof digest; i++) {
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    }
    ota_version_format(hdr.version, v);
    snprintf(tag_hex, sizeof tag_hex, "0x%08x", (unsigned)hdr.device_type_tag);
    int has_app =
        ota_publish_appdesc_version(img + OTA_IMAGE_HEADER_SIZE, len - OTA_IMAGE_HEADER_SIZE, app);
    int for_type = tag == 0 || hdr.device_type_tag == 0 || hdr.device_type_tag == tag;
    if (json != NULL) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "format", hdr.format);
        cJSON_AddStringToObject(o, "version", v);
        cJSON_AddNumberToObject(o, "imageSize", hdr.image_size);
        cJSON_AddNumberToObject(o, "firmwareSize", (double)(len - OTA_IMAGE_HEADER_SIZE));
        cJSON_AddNumberToObject(o, "securityCounter", hdr.security_counter);
        if (hdr.device_type_tag != 0) {
            cJSON_AddStringToObject(o, "deviceTypeTag", tag_hex);
        } else {
            cJSON_AddNullToObject(o, "deviceTypeTag");
        }
        if (type != NULL) {
            cJSON_AddBoolToObject(o, "forDeviceType", for_type);
        }
        if (has_app) {
            cJSON_AddStringToObject(o, "appVersion", app);
        }
        cJSON_AddStringToObject(o, "sha256", hex);
        char *text = cJSON_PrintUnformatted(o);
        if (text != NULL) {
            printf("%s\n", text);
        }
        free(text);
        cJSON_Delete(o);
    } else {
        printf("format:            %u\nversion:           %s\nimage size:        %u bytes\n"
               "firmware size:     %zu bytes\nsecurity counter:  %u\ndevice type tag:   %s\n",
               (unsigned)hdr.format, v, (unsigned)hdr.image_size, len - OTA_IMAGE_HEADER_SIZE,
               (unsigned)hdr.security_counter, hdr.device_type_tag ? tag_hex : "any type");
        if (type != NULL) {
            printf("for %-15s %s\n", type, for_type ? "yes" : "no");
        }
        if (has_app) {
            printf("app version:       %s (ESP-IDF descriptor)\n", app);
        }
        printf("sha256:            %s\n", hex);
    }
    free(img);
    return CLI_EXIT_OK;
}

int cli_put_signature(const char *out, const uint8_t *sig, size_t sig_len)
{
    if (out != NULL) {
        if (cli_write_new_file(out, sig, sig_len, 0644) != 0) {
            return cli_fail(CLI_EXIT_FAIL, "cannot write '%s' (%s); check --out", out,
                            strerror(errno));
        }
        return CLI_EXIT_OK;
    }
    char *b64 = cli_base64(sig, sig_len);
    if (b64 == NULL) {
        return cli_fail(CLI_EXIT_FAIL, "out of memory; try again");
    }
    printf("%s\n", b64);
    free(b64);
    return CLI_EXIT_OK;
}

int cli_check_signature(const char *cert_path, const char *pem, const uint8_t *data, size_t len,
                        const uint8_t *sig, size_t sig_len, const ota_sig_method_t *method)
{
    int v = cli_verify_data(pem, data, len, sig, sig_len);
    ota_sig_method_t cert_method = method != NULL ? *method : OTA_SIG_SHA256_ECDSA;
    if (v == OTA_ERR_BAD_SIGNER_CERT ||
        (v == 0 && method != NULL && ota_publish_signer_method(pem, &cert_method) != 0)) {
        return cli_fail(CLI_EXIT_FAIL,
                        "'%s' is not a P-256, RSA-2048 or RSA-3072 certificate in PEM; give the "
                        "codesign.crt that 'otter keygen' made",
                        cert_path);
    }
    if (v == 0 && method != NULL && cert_method != *method) {
        return cli_fail(CLI_EXIT_FAIL, "the signature's method is not the one of '%s'; check it",
                        cert_path);
    }
    if (v != 0) {
        return cli_fail(CLI_EXIT_FAIL,
                        "the signature does not verify with '%s' (%s); sign the final image "
                        "(with its header) with the matching key",
                        cert_path, ota_err_str((ota_err_t)v));
    }
    return CLI_EXIT_OK;
}
