/*
 * otter CLI tests: the image commands (create, sign, verify, show) and job
 * create with finished images, detached signatures, raw delivery and
 * application descriptors. The `otter` binary is run as a user runs it;
 * openssl signs as an offline or HSM key would, and the header is decoded
 * with the device's codec.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <cjson/cJSON.h>

#include "cli_test_util.h"
#include "otter/ota_crc32.h"
#include "otter/ota_image_header.h"
#include "ota_store.h"

static cli_run_t g_run;
#define R (&g_run)

/* Asserts a run's exit code (and one error line on a failure). */
#define expect(code, want) assert_true(cli_test_exit_is(R, (code), (want)))

/* Writes size pseudo-random bytes starting with first. */
static const char *make_file(const char *name, size_t size, uint8_t first)
{
    uint8_t *b = malloc(size);
    assert_non_null(b);
    uint32_t x = 0x9e3779b9u ^ (uint32_t)size;
    for (size_t i = 0; i < size; i++) {
        x = x * 1103515245u + 12345u;
        b[i] = (uint8_t)(x >> 16);
    }
    b[0] = first;
    const char *p = cli_test_path("%s", name);
    assert_int_equal(cli_test_write(p, b, size), 0);
    free(b);
    return p;
}

/* An ESP-IDF application image whose descriptor states version text. */
static const char *make_esp_app(const char *name, const char *text)
{
    uint8_t b[1024];
    memset(b, 0x11, sizeof b);
    b[0] = 0xe9;
    const uint8_t magic[4] = {0x32, 0x54, 0xcd, 0xab};
    memcpy(b + 32, magic, 4);
    memset(b + 48, 0, 32);
    memcpy(b + 48, text, strlen(text));
    const char *p = cli_test_path("%s", name);
    assert_int_equal(cli_test_write(p, b, sizeof b), 0);
    return p;
}

/* The stored image of a job, read through the store. */
static unsigned char *job_file(const char *job_id, size_t *len, cJSON **doc)
{
    ota_store_t *s = NULL;
    assert_int_equal(ota_store_open(cli_test_data(), &s), OTA_STORE_OK);
    ota_store_job_t j;
    assert_int_equal(ota_store_job_get(s, job_id, &j), OTA_STORE_OK);
    ota_store_stream_t st;
    assert_int_equal(ota_store_stream_get(s, j.stream_id, &st), OTA_STORE_OK);
    unsigned char *img = cli_test_read(st.files[0].path, len);
    assert_non_null(img);
    if (doc != NULL) {
        *doc = cJSON_Parse(j.document);
        assert_non_null(*doc);
    }
    ota_store_stream_free(&st);
    ota_store_job_free(&j);
    ota_store_close(s);
    return img;
}

/* The first file entry of a job document. */
static const cJSON *doc_file(const cJSON *doc)
{
    return cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "afr_ota"), "files"), 0);
}

static void test_image_create_sign_verify_show(void **state)
{
    (void)state;
    assert_int_equal(cli_test_run(R, "keygen", "--out", cli_test_path("keys"), NULL), 0);
    const char *key = cli_test_path("keys/codesign.key");
    const char *crt = cli_test_path("keys/codesign.crt");
    char fw[512], img[512], sig[512], hsm[512], raw_sig[512];
    snprintf(fw, sizeof fw, "%s", make_file("fw.bin", 4000, 0x7f));
    snprintf(img, sizeof img, "%s", cli_test_path("fw.img"));
    snprintf(sig, sizeof sig, "%s", cli_test_path("fw.sig"));
    snprintf(hsm, sizeof hsm, "%s", cli_test_path("hsm.sig"));
    snprintf(raw_sig, sizeof raw_sig, "%s", cli_test_path("raw.sig"));

    expect(cli_test_run(R, "image", "create", "--version", "2.1.7", "--security-counter", "5",
                        "--device-type", "sim-a", "--out", img, fw, NULL),
           0);
    size_t len = 0, fw_len = 0;
    unsigned char *bytes = cli_test_read(img, &len);
    unsigned char *fw_bytes = cli_test_read(fw, &fw_len);
    assert_int_equal(len, fw_len + OTA_IMAGE_HEADER_SIZE);
    assert_memory_equal(bytes + OTA_IMAGE_HEADER_SIZE, fw_bytes, fw_len);
    ota_image_header_t h;
    assert_int_equal(ota_image_header_decode(bytes, len, &h), OTA_OK);
    assert_int_equal(h.format, 2);
    assert_int_equal(h.version, ota_version_make(2, 1, 7));
    assert_int_equal(h.security_counter, 5);
    assert_int_equal(h.device_type_tag, ota_crc32(0, (const uint8_t *)"sim-a", 5));
    free(bytes);
    free(fw_bytes);

    /* show --json parses and says what the header says. */
    expect(cli_test_run(R, "image", "show", "--json", "--device-type", "sim-b", img, NULL), 0);
    cJSON *o = cJSON_Parse(R->out);
    assert_non_null(o);
    assert_int_equal(cJSON_GetObjectItem(o, "format")->valueint, 2);
    assert_string_equal(cJSON_GetObjectItem(o, "version")->valuestring, "2.1.7");
    assert_int_equal(cJSON_GetObjectItem(o, "securityCounter")->valueint, 5);
    assert_int_equal(cJSON_GetObjectItem(o, "imageSize")->valueint, 4032);
    assert_int_equal(cJSON_GetObjectItem(o, "firmwareSize")->valueint, 4000);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(o, "forDeviceType")));
    char sha[65];
    snprintf(sha, sizeof sha, "%s", cJSON_GetObjectItem(o, "sha256")->valuestring);
    cJSON_Delete(o);
    /* The digest is openssl's. */
    assert_int_equal(
        cli_test_sh("'%s' dgst -sha256 -r '%s' | grep -q '^%s '", OTA_OPENSSL, img, sha), 0);

    /* A detached signature from image sign, and one made offline by openssl. */
    expect(cli_test_run(R, "image", "sign", "--key", key, "--out", sig, img, NULL), 0);
    assert_int_equal(
        cli_test_sh("'%s' dgst -sha256 -sign '%s' -out '%s' '%s'", OTA_OPENSSL, key, hsm, img), 0);
    expect(cli_test_run(R, "image", "verify", "--cert", crt, "--signature", sig, img, NULL), 0);
    assert_non_null(strstr(R->out, "security counter 5"));
    expect(cli_test_run(R, "image", "verify", "--cert", crt, "--signature", hsm, img, NULL), 0);
    /* The raw file's signature is not the image's. */
    expect(cli_test_run(R, "sign", "--key", key, "--out", raw_sig, fw, NULL), 0);
    expect(cli_test_run(R, "image", "verify", "--cert", crt, "--signature", raw_sig, img, NULL), 1);
    /* Another key's signature. */
    expect(cli_test_run(R, "image", "verify", "--cert", OTA_TEST_KEYS_DIR "/untrusted-test.crt",
                        "--signature", sig, img, NULL),
           1);

    /* Refusals: an image as firmware, a folder, a cut image, bad values, existing --out. */
    expect(cli_test_run(R, "image", "create", "--version", "1.0.0", "--out", cli_test_path("x.img"),
                        img, NULL),
           1);
    expect(cli_test_run(R, "image", "create", "--version", "1.0.0", "--out", cli_test_path("x.img"),
                        cli_test_dir(), NULL),
           1);
    assert_non_null(strstr(R->err, "is a directory"));
    expect(cli_test_run(R, "image", "create", "--version", "1.0.0", "--out", img, fw, NULL), 1);
    expect(cli_test_run(R, "image", "create", "--version", " 1.0.0", "--out",
                        cli_test_path("x.img"), fw, NULL),
           2);
    expect(cli_test_run(R, "image", "create", "--version", "1.0.0", "--security-counter", "65536",
                        "--out", cli_test_path("x.img"), fw, NULL),
           2);
    expect(cli_test_run(R, "image", "create", "--version", "1.0.0", "--device-type", "a,b", "--out",
                        cli_test_path("x.img"), fw, NULL),
           2);
    expect(cli_test_run(R, "image", "sign", "--key", key, fw, NULL), 1);
    bytes = cli_test_read(img, &len);
    assert_int_equal(cli_test_write(cli_test_path("cut.img"), bytes, len - 1), 0);
    free(bytes);
    expect(cli_test_run(R, "image", "show", cli_test_path("cut.img"), NULL), 1);

    /* Without counter and type: format 1, what every bootloader reads. */
    expect(cli_test_run(R, "image", "create", "--version", "1.0.0", "--out",
                        cli_test_path("plain.img"), fw, NULL),
           0);
    expect(cli_test_run(R, "image", "show", "--json", cli_test_path("plain.img"), NULL), 0);
    o = cJSON_Parse(R->out);
    assert_non_null(o);
    assert_int_equal(cJSON_GetObjectItem(o, "format")->valueint, 1);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "deviceTypeTag")));
    cJSON_Delete(o);

    /* An ESP-IDF application descriptor must state the version. */
    const char *esp = make_esp_app("esp.bin", "v3.4.5");
    expect(cli_test_run(R, "image", "create", "--version", "3.4.6", "--out",
                        cli_test_path("esp.img"), esp, NULL),
           1);
    assert_non_null(strstr(R->err, "v3.4.5"));
    expect(cli_test_run(R, "image", "create", "--version", "3.4.5", "--out",
                        cli_test_path("esp.img"), esp, NULL),
           0);
    expect(cli_test_run(R, "image", "show", cli_test_path("esp.img"), NULL), 0);
    assert_non_null(strstr(R->out, "v3.4.5 (ESP-IDF descriptor)"));
}

static void test_job_create_with_images(void **state)
{
    (void)state;
    expect(cli_test_run(R, "broker", "init", "--port", "18998", NULL), 0);
    expect(cli_test_run(R, "thing", "create", "A", NULL), 0);
    expect(cli_test_run(R, "keygen", "--out", cli_test_path("keys"), NULL), 0);
    expect(cli_test_run(R, "keygen", "--out", cli_test_path("hsm"), NULL), 0);
    const char *key = cli_test_path("keys/codesign.key");
    char fw[512], img[512], sig[512], crt[512];
    snprintf(fw, sizeof fw, "%s", make_file("fw.bin", 3000, 0x7f));
    snprintf(img, sizeof img, "%s", cli_test_path("fw.img"));
    snprintf(crt, sizeof crt, "%s", cli_test_path("keys/codesign.crt"));
    expect(cli_test_run(R, "image", "create", "--version", "1.4.0", "--security-counter", "2",
                        "--device-type", "sim-a", "--out", img, fw, NULL),
           0);
    /* Signed offline into a folder without a certificate. */
    expect(cli_test_run(R, "thing", "set", "A", "deviceType=sim-a", NULL), 0);
    assert_int_equal(cli_test_sh("mkdir -p '%s' && '%s' dgst -sha256 -sign '%s' -out '%s' '%s'",
                                 cli_test_path("offline"), OTA_OPENSSL, key,
                                 cli_test_path("offline/fw.sig"), img),
                     0);
    snprintf(sig, sizeof sig, "%s", cli_test_path("offline/fw.sig"));

    /* A signature nothing can check is refused, unless told explicitly. */
    expect(cli_test_run(R, "job", "create", "--file", img, "--targets", "A", "--signature", sig,
                        "--device-types", "sim-a", NULL),
           1);
    assert_non_null(strstr(R->err, "--unchecked-signature"));
    /* With the certificate: accepted, the version taken from the header, stored as is. */
    expect(cli_test_run(R, "job", "create", "--file", img, "--targets", "A", "--signature", sig,
                        "--cert", crt, "--device-types", "sim-a", "--job-id", "signed", NULL),
           0);
    size_t len = 0, img_len = 0;
    cJSON *doc = NULL;
    unsigned char *stored = job_file("signed", &len, &doc);
    unsigned char *given = cli_test_read(img, &img_len);
    assert_int_equal(len, img_len);
    assert_memory_equal(stored, given, len);
    assert_string_equal(cJSON_GetObjectItem(doc_file(doc), "otterVersion")->valuestring, "1.4.0");
    cJSON_Delete(doc);
    free(stored);
    /* The raw firmware's signature over the image is refused (the silent error of old). */
    assert_int_equal(cli_test_sh("'%s' dgst -sha256 -sign '%s' -out '%s' '%s'", OTA_OPENSSL, key,
                                 cli_test_path("offline/raw.sig"), fw),
                     0);
    expect(cli_test_run(R, "job", "create", "--file", img, "--targets", "A", "--signature",
                        cli_test_path("offline/raw.sig"), "--cert", crt, "--device-types", "sim-a",
                        NULL),
           1);
    /* --unchecked-signature publishes it as given. */
    expect(cli_test_run(R, "job", "create", "--file", img, "--targets", "A", "--signature", sig,
                        "--unchecked-signature", "--device-types", "sim-a", "--job-id", "unchecked",
                        NULL),
           0);
    /* Another key's certificate: refused. */
    expect(cli_test_run(R, "job", "create", "--file", img, "--targets", "A", "--signature", sig,
                        "--cert", cli_test_path("hsm/codesign.crt"), "--device-types", "sim-a",
                        NULL),
           1);
    /* The image's device type must be among the job's; the version must match. */
    expect(cli_test_run(R, "job", "create", "--file", img, "--targets", "A", "--key", key, NULL),
           1);
    expect(cli_test_run(R, "job", "create", "--file", img, "--targets", "A", "--key", key,
                        "--device-types", "sim-b", NULL),
           1);
    expect(cli_test_run(R, "job", "create", "--file", img, "--targets", "A", "--key", key,
                        "--device-types", "sim-b,sim-a", NULL),
           1);
    expect(cli_test_run(R, "job", "create", "--file", img, "--targets", "A", "--key", key,
                        "--device-types", "sim-a", "--version", "1.4.1", NULL),
           1);
    expect(cli_test_run(R, "job", "create", "--file", img, "--targets", "A", "--key", key,
                        "--device-types", "sim-a", "--version", "1.4.0", "--job-id", "typed", NULL),
           0);
    /* Firmware without a header needs --version; a folder is named as one. */
    expect(cli_test_run(R, "job", "create", "--file", fw, "--targets", "A", "--key", key, NULL), 2);
    expect(cli_test_run(R, "job", "create", "--file", cli_test_dir(), "--version", "1.0.0",
                        "--targets", "A", "--key", key, NULL),
           1);
    assert_non_null(strstr(R->err, "is a directory"));

    /* --raw: delivered exactly as uploaded, version and types in the document. */
    const char *esp = make_esp_app("esp.bin", "2.0.1");
    expect(cli_test_run(R, "job", "create", "--file", esp, "--version", "2.0.2", "--raw",
                        "--targets", "A", "--key", key, NULL),
           1);
    assert_non_null(strstr(R->err, "'2.0.1'"));
    expect(cli_test_run(R, "job", "create", "--file", esp, "--version", "2.0.1", "--raw",
                        "--device-types", "esp32", "--targets", "A", "--key", key, "--job-id",
                        "raw", NULL),
           0);
    size_t esp_len = 0;
    unsigned char *esp_bytes = cli_test_read(esp, &esp_len);
    stored = job_file("raw", &len, &doc);
    assert_int_equal(len, esp_len);
    assert_memory_equal(stored, esp_bytes, len);
    const cJSON *f = doc_file(doc);
    assert_string_equal(cJSON_GetObjectItem(f, "otterVersion")->valuestring, "2.0.1");
    assert_string_equal(
        cJSON_GetArrayItem(cJSON_GetObjectItem(f, "otterDeviceTypes"), 0)->valuestring, "esp32");
    assert_int_equal(cJSON_GetObjectItem(f, "filesize")->valueint, (int)esp_len);
    cJSON_Delete(doc);
    free(stored);
    free(esp_bytes);
    free(given);
    /* Wrapping checks the descriptor too. */
    expect(cli_test_run(R, "job", "create", "--file", esp, "--version", "2.0.2", "--targets", "A",
                        "--key", key, NULL),
           1);
}

/* The security counter of a job's stored image, and its device type tag. */
static void job_counter(const char *job_id, unsigned *counter, uint32_t *tag)
{
    size_t len = 0;
    unsigned char *img = job_file(job_id, &len, NULL);
    ota_image_header_t h;
    assert_int_equal(ota_image_header_decode(img, len, &h), OTA_OK);
    *counter = h.security_counter;
    *tag = h.device_type_tag;
    free(img);
}

/* job create --file FIRMWARE writes the header image create writes (security
 * counter, device type), and warns when devices that confirmed a published
 * image with a counter will refuse the new one. */
static void test_job_create_security_counter(void **state)
{
    (void)state;
    expect(cli_test_run(R, "broker", "init", "--port", "18997", NULL), 0);
    expect(cli_test_run(R, "thing", "create", "A", NULL), 0);
    expect(cli_test_run(R, "keygen", "--out", cli_test_path("keys"), NULL), 0);
    const char *key = cli_test_path("keys/codesign.key");
    char fw[512], img[512];
    snprintf(fw, sizeof fw, "%s", make_file("fw.bin", 3000, 0x7f));
    snprintf(img, sizeof img, "%s", cli_test_path("fw.img"));
    unsigned counter = 0;
    uint32_t tag = 0, sim_a = ota_crc32(0, (const uint8_t *)"sim-a", 5);

    /* The help says what devices do with images without a counter. */
    expect(cli_test_run(R, "image", "create", "--help", NULL), 0);
    assert_null(strstr(R->out, "one without (0) may not"));
    assert_non_null(strstr(R->out, "and images without a counter, whatever\n"));
    expect(cli_test_run(R, "job", "create", "--help", NULL), 0);
    assert_non_null(strstr(R->out, "--security-counter N"));
    assert_non_null(strstr(R->out, "--device-type TYPE"));

    /* Firmware with a counter and a type: the header has both, the job is for the type. */
    expect(cli_test_run(R, "job", "create", "--file", fw, "--version", "1.0.0",
                        "--security-counter", "3", "--device-type", "sim-a", "--targets", "A",
                        "--key", key, "--job-id", "c3", NULL),
           0);
    assert_string_equal(R->err, "");
    job_counter("c3", &counter, &tag);
    assert_int_equal(counter, 3);
    assert_int_equal(tag, sim_a);
    cJSON *doc = NULL;
    free(job_file("c3", &(size_t){0}, &doc));
    const cJSON *types = cJSON_GetObjectItem(doc_file(doc), "otterDeviceTypes");
    assert_int_equal(cJSON_GetArraySize(types), 1);
    assert_string_equal(cJSON_GetArrayItem(types, 0)->valuestring, "sim-a");
    cJSON_Delete(doc);

    /* Without a counter (the old way), or with a lower one: published, with a warning. */
    expect(cli_test_run(R, "job", "create", "--file", fw, "--version", "1.0.1", "--targets", "A",
                        "--key", key, "--job-id", "plain", NULL),
           0);
    job_counter("plain", &counter, &tag);
    assert_int_equal(counter, 0);
    assert_int_equal(tag, 0);
    assert_non_null(strstr(R->err, "otter: warning: this image has no security counter"));
    assert_non_null(strstr(R->err, "the image of job c3 (stream AFR_OTA-"));
    assert_non_null(strstr(R->err, "has security counter 3: devices that confirmed that image "
                                   "will refuse this one after the download (OTA_ERR_ROLLBACK)"));
    expect(cli_test_run(R, "job", "create", "--file", fw, "--version", "1.0.2",
                        "--security-counter", "2", "--targets", "A", "--key", key, NULL),
           0);
    assert_non_null(strstr(R->err, "this image has security counter 2, but"));
    /* The same counter or a higher one: no warning. */
    expect(cli_test_run(R, "job", "create", "--file", fw, "--version", "1.0.3",
                        "--security-counter", "3", "--targets", "A", "--key", key, "--job-id",
                        "same", NULL),
           0);
    assert_string_equal(R->err, "");
    job_counter("same", &counter, &tag);
    assert_int_equal(counter, 3);

    /* Refusals: bad values, a counter or type where no header goes, a type the job is not for. */
    expect(cli_test_run(R, "job", "create", "--file", fw, "--version", "1.0.4",
                        "--security-counter", "0", "--targets", "A", "--key", key, NULL),
           2);
    expect(cli_test_run(R, "job", "create", "--file", fw, "--version", "1.0.4",
                        "--security-counter", "65536", "--targets", "A", "--key", key, NULL),
           2);
    expect(cli_test_run(R, "job", "create", "--file", fw, "--version", "1.0.4", "--device-type",
                        "a,b", "--targets", "A", "--key", key, NULL),
           2);
    expect(cli_test_run(R, "job", "create", "--file", fw, "--version", "1.0.4",
                        "--security-counter", "4", "--raw", "--targets", "A", "--key", key, NULL),
           2);
    expect(cli_test_run(R, "job", "create", "--file", fw, "--version", "1.0.4", "--device-type",
                        "sim-a", "--device-types", "sim-a,sim-b", "--targets", "A", "--key", key,
                        NULL),
           2);
    assert_non_null(strstr(R->err, "give --device-types sim-a"));
    /* A finished image keeps its header: the options must agree with it. */
    expect(cli_test_run(R, "image", "create", "--version", "1.1.0", "--security-counter", "4",
                        "--device-type", "sim-a", "--out", img, fw, NULL),
           0);
    expect(cli_test_run(R, "job", "create", "--file", img, "--security-counter", "5", "--targets",
                        "A", "--key", key, NULL),
           1);
    assert_non_null(strstr(R->err, "security counter 4, not 5"));
    expect(cli_test_run(R, "job", "create", "--file", img, "--device-type", "sim-b", "--targets",
                        "A", "--key", key, NULL),
           1);
    expect(cli_test_run(R, "job", "create", "--file", img, "--security-counter", "4",
                        "--device-type", "sim-a", "--targets", "A", "--key", key, "--job-id",
                        "finished", NULL),
           0);
    assert_string_equal(R->err, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_image_create_sign_verify_show, cli_test_setup,
                                        cli_test_teardown),
        cmocka_unit_test_setup_teardown(test_job_create_with_images, cli_test_setup,
                                        cli_test_teardown),
        cmocka_unit_test_setup_teardown(test_job_create_security_counter, cli_test_setup,
                                        cli_test_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
