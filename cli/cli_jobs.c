/* otter CLI: OTA jobs (create, list, show, cancel). */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli_cmds.h"
#include "cli_json.h"
#include "cli_text.h"
#include "cli_image.h"
#include "ota_publish_counter.h"
#include "ota_publish_firmware.h"
#include "ota_publish_image.h"
#include "ota_publish_job.h"
#include "cli_job_protocols.h"
#include "cli_rollout.h"
#include "otter/ota_err.h"
#include "ota_job_spec.h"
#include "ota_store.h"
#include "ota_svc_presign.h"

static const char create_help[] =
    "usage: otter job create --file FIRMWARE|IMAGE [--version X.Y.Z] --targets T[,T...]\n"
    "                        (--key KEY.pem | --signature SIG.der) [options]\n"
    "\n"
    "Publish a signed firmware update. A file that does not start with otter's\n"
    "image header gets one (with --version) prepended. A finished image (from\n"
    "'otter image create') is published as it is: its version is the job's (a\n"
    "--version must match it), and one made for a device type needs exactly that\n"
    "type as --device-types. With --raw the file is delivered exactly as given, for devices\n"
    "with their own bootloader; the version and types are in the job document.\n"
    "Firmware with an ESP-IDF application descriptor must state the job's version.\n"
    "\n"
    "The image is signed with --key (sig-sha256-ecdsa with a P-256 key,\n"
    "sig-sha256-rsa with an RSA one, as AWS names them), or --signature is a\n"
    "detached signature over\n"
    "it (from 'otter image sign', openssl or an HSM). The signature is checked with\n"
    "--cert or the certificate beside the key or signature; a --signature that\n"
    "nothing can check is refused unless --unchecked-signature. The image is\n"
    "imported, offered as stream AFR_OTA-<uuid> (file id 0), and an AWS-style OTA\n"
    "job document is queued for every target. Things already on the version or a\n"
    "newer one (as they reported it) are SKIPPED: counted apart, never sent the\n"
    "job, never a failure. The document's file entry also carries otterVersion and\n"
    "otterDeviceTypes. Prints the job id. When a published image has a security\n"
    "counter higher than this image's (or this one has none), job create warns:\n"
    "devices that confirmed that image refuse this one (anti-rollback).\n"
    "\n"
    "  --file FILE              the firmware, a finished image, or a data file with\n"
    "                           --file-type\n"
    "  --version X.Y.Z          major.minor.build (0-255, 0-255, 0-65535); taken from\n"
    "                           the header of a finished image when not given\n"
    "  --security-counter N     1-65535, into the header FIRMWARE gets (as 'otter\n"
    "                           image create --security-counter'): once a device\n"
    "                           confirmed an image with a counter, it refuses images\n"
    "                           without one and images whose counter is lower. A\n"
    "                           finished image must already carry N\n"
    "  --device-type TYPE       into the header too: the bootloader of another type\n"
    "                           refuses the image; the job is for TYPE (--device-types\n"
    "                           may only name TYPE). A finished image must carry it\n"
    "  --targets LIST           thing names and group:NAME, comma separated\n"
    "  --continuous             things that join a target group later get the job,\n"
    "                           those that leave lose a QUEUED execution (REMOVED);\n"
    "                           the job runs until canceled (AWS targetSelection\n"
    "                           CONTINUOUS)\n"
    "  --key KEY.pem            sign with this P-256, RSA-2048 or RSA-3072 key\n"
    "  --signature SIG.der      or use this signature over the final image (DER\n"
    "                           ECDSA, or RSA as 'otter sign --out' writes it)\n"
    "  --cert CERT.pem          check the signature with this certificate (default:\n"
    "                           the --cert-name file beside the key or signature,\n"
    "                           when there is one)\n"
    "  --unchecked-signature    publish a --signature without a certificate to\n"
    "                           check it with (devices may refuse it)\n"
    "  --raw                    deliver FILE exactly as given: no otter header\n"
    "                           (devices with their own bootloader, e.g. ESP-IDF)\n"
    "  --cert-name NAME         certfile the device verifies with (default codesign.crt)\n"
    "  --job-id ID              1-64 of [A-Za-z0-9_-], not starting with '-'\n"
    "                           (default: ota-<uuid>)\n"
    "  --device-types LIST      the board types the job is for, comma separated\n"
    "                           (1-64 of [A-Za-z0-9_.-] each); only things whose\n"
    "                           deviceType is one of them get it, the others are\n"
    "                           SKIPPED (see 'otter thing set --help')\n"
    "  --file-path PATH         filepath for the device (default firmware.bin)\n"
    "  --file-type N            0-255 (default 0 = firmware; other types are sent\n"
    "                           as given, without an image header)\n"
    "  --protocols LIST         data planes in order of preference: MQTT (default),\n"
    "                           HTTP, HTTP,MQTT or MQTT,HTTP; with HTTP the service\n"
    "                           gives each device a presigned URL (otter-http)\n"
    "  --url-expiry S           lifetime of a presigned URL, 60-3600 s (default 1800);\n"
    "                           renewed whenever the device asks for its job again\n"
    "  --timeout-minutes N      an execution may stay IN_PROGRESS N minutes\n"
    "  --abort-failure-percent P  abort when P% of finished executions failed ...\n"
    "  --abort-min-finished N   ... once at least N have finished\n";

/** Everything job create gathers before it writes anything. */
struct job_plan {
    const char *job_id;
    char job_id_buf[48];
    uint32_t version;
    int version_given;
    uint8_t *image;
    size_t image_len;
    uint8_t sig[CLI_SIG_MAX];
    size_t sig_len;
    ota_sig_method_t sig_method;
    char stream_id[64];
    ota_job_spec_targets_t targets;
};

/* Makes a random UUID version 4 text (36 characters). */
static int uuid_v4(char out[37])
{
    uint8_t u[16];
    if (cli_random(u, sizeof u) != 0) {
        return -1;
    }
    u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
             u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
             u[14], u[15]);
    return 0;
}

/* The CLI's names for the fields the job rules talk about. */
static const ota_job_spec_names_t cli_names = {.targets = "--targets",
                                               .timeout = "--timeout-minutes",
                                               .rollout = "--rollout-rate",
                                               .abort_pct = "--abort-failure-percent",
                                               .abort_min = "--abort-min-finished"};

/* Splits --targets into things and groups and checks each exists (groups with members,
 * unless the job is continuous). */
static int plan_targets(ota_store_t *store, const char *list, int continuous, struct job_plan *p)
{
    char err[512];
    int rc =
        ota_job_spec_targets_for(store, &cli_names, list, continuous, &p->targets, err, sizeof err);
    return rc == OTA_JOB_SPEC_OK ? CLI_EXIT_OK : cli_fail(rc, "%s", err);
}

/* The certificate beside a key or signature file, if there is one. */
static char *sibling_cert(const char *file, const char *cert_name)
{
    char *copy = strdup(file);
    if (copy == NULL || strchr(cert_name, '/') != NULL) {
        free(copy);
        return NULL;
    }
    char *p = cli_sprintf("%s/%s", dirname(copy), cert_name);
    free(copy);
    if (p != NULL && access(p, R_OK) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

/* Signs the image or loads the given signature, then checks it. A signature
 * nobody can check here is refused unless the operator says so. */
static int plan_signature(struct job_plan *p, const char *key, const char *sig_path,
                          const char *cert, const char *cert_name, int unchecked)
{
    char *pub = NULL;
    int rc;
    if (key != NULL) {
        rc = cli_sign_data(key, p->image, p->image_len, p->sig, &p->sig_len, &pub);
        if (rc != CLI_EXIT_OK) {
            return rc;
        }
        /* The key decides the method, and so the document's signature key. */
        if (ota_publish_signer_method(pub, &p->sig_method) != 0 ||
            cli_verify_data(pub, p->image, p->image_len, p->sig, p->sig_len) != 0) {
            free(pub);
            return cli_fail(CLI_EXIT_FAIL, "the new signature does not verify; check the key");
        }
        free(pub);
    } else {
        uint8_t *der = NULL;
        size_t len = 0;
        if ((rc = cli_read_input("signature", sig_path, &der, &len)) != CLI_EXIT_OK) {
            return rc;
        }
        /* DER ECDSA P-256 (at most 72 bytes), or RSA-2048/3072 (256 or 384). */
        int rsa = len == 256 || len == 384;
        if (!rsa && (len < 8 || len > 72 || der[0] != 0x30)) {
            free(der);
            return cli_fail(CLI_EXIT_FAIL,
                            "'%s' is not a DER ECDSA P-256 signature nor an RSA-2048/3072 one; "
                            "make one with 'otter image "
                            "sign --out'",
                            sig_path);
        }
        p->sig_method = rsa ? OTA_SIG_SHA256_RSA : OTA_SIG_SHA256_ECDSA;
        memcpy(p->sig, der, len);
        p->sig_len = len;
        free(der);
    }
    char *cert_path = cert ? strdup(cert) : sibling_cert(key ? key : sig_path, cert_name);
    if (cert_path == NULL) {
        if (key != NULL || unchecked) {
            return CLI_EXIT_OK; /* checked with the key's own public key, or told not to */
        }
        return cli_fail(CLI_EXIT_FAIL,
                        "no certificate to check '%s' with (none given, no %s beside it); give "
                        "--cert CERT.pem, or --unchecked-signature to publish it unchecked",
                        sig_path, cert_name);
    }
    uint8_t *pem = NULL;
    size_t pem_len = 0;
    rc = cli_read_input("certificate", cert_path, &pem, &pem_len);
    if (rc == CLI_EXIT_OK) {
        rc = cli_check_signature(cert_path, (const char *)pem, p->image, p->image_len, p->sig,
                                 p->sig_len, &p->sig_method);
    }
    free(pem);
    free(cert_path);
    return rc;
}

/* Loads the firmware and makes the image to publish (the checks are the web
 * console's too: ota_publish_firmware). */
static int plan_image(struct job_plan *p, const char *file, unsigned long file_type, int raw,
                      const char *types, uint16_t counter, const char *type)
{
    static const ota_publish_names_t names = {
        .version = "--version", .device_types = "--device-types", .device_type = "--device-type"};
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = cli_read_input("firmware", file, &data, &len);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    char *name = cli_sprintf("'%s'", file);
    const ota_publish_firmware_t fw = {.data = data,
                                       .len = len,
                                       .name = name ? name : file,
                                       .version_given = p->version_given,
                                       .version = p->version,
                                       .file_type = (unsigned)file_type,
                                       .raw = raw,
                                       .device_types = types,
                                       .security_counter = counter,
                                       .device_type = type};
    char err[400];
    rc = ota_publish_firmware_image(&names, &fw, &p->version, &p->image, &p->image_len, err,
                                    sizeof err);
    free(name);
    free(data);
    if (rc == 0) {
        return CLI_EXIT_OK;
    }
    return cli_fail(rc == OTA_PUBLISH_FIRMWARE_USAGE ? CLI_EXIT_USAGE : CLI_EXIT_FAIL, "%s", err);
}

/* Warns when devices that confirmed a published image with a security counter
 * will refuse this one: it has none, or a lower one (anti-rollback; the web
 * console's job create warns with the same check and text). */
static void warn_counter_floor(ota_store_t *store, const struct job_plan *p)
{
    ota_image_header_t hdr;
    ota_publish_rollback_t r;
    if (ota_image_header_decode(p->image, p->image_len, &hdr) != OTA_OK ||
        ota_publish_rollback_check(store, &hdr, &r) != 1) {
        return;
    }
    char text[600];
    ota_publish_rollback_text(&r, "--security-counter", text, sizeof text);
    fprintf(stderr, "otter: warning: %s\n", text);
}

/* Frees what a plan holds. */
static void plan_free(struct job_plan *p)
{
    free(p->image);
    ota_job_spec_targets_free(&p->targets);
}

/** Parsed command line of job create. */
struct create_args {
    const char *file, *version, *targets, *key, *signature, *cert, *cert_name, *job_id, *file_path,
        *file_type, *timeout, *rollout, *abort_pct, *abort_min, *protocols, *url_expiry,
        *device_types, *continuous, *unchecked, *raw, *security_counter, *device_type;
    uint16_t counter; /* 0: none */
    cli_job_protocols_t planes;
    cli_rollout_args_t ro;
};

/* Checks the numeric options; fills the spec's limits. */
static int check_numbers(const struct create_args *a, ota_store_job_spec_t *spec,
                         unsigned long *file_type)
{
    *file_type = 0;
    if (a->file_type && cli_parse_uint(a->file_type, 0, 255, file_type) != 0) {
        return cli_fail(CLI_EXIT_USAGE, "bad --file-type '%s'; give 0-255", a->file_type);
    }
    const ota_job_spec_limits_t lim = {.timeout = a->timeout,
                                       .rollout = a->rollout,
                                       .abort_pct = a->abort_pct,
                                       .abort_min = a->abort_min};
    char err[256];
    int rc = ota_job_spec_check_limits(&cli_names, &lim, spec, err, sizeof err);
    return rc == OTA_JOB_SPEC_OK ? CLI_EXIT_OK : cli_fail(rc, "%s", err);
}

/* Checks the command line that needs no store. */
static int check_args(struct create_args *a, struct job_plan *p)
{
    if (a->file == NULL || a->targets == NULL) {
        return cli_fail(CLI_EXIT_USAGE,
                        "job create needs --file and --targets; see 'otter job create --help'");
    }
    if ((a->key == NULL) == (a->signature == NULL)) {
        return cli_fail(CLI_EXIT_USAGE, "job create needs exactly one of --key and --signature; "
                                        "see 'otter job create --help'");
    }
    p->version_given = a->version != NULL;
    if (a->version != NULL && ota_version_parse(a->version, &p->version) != 0) {
        return cli_fail(CLI_EXIT_USAGE,
                        "bad version '%s'; give X.Y.Z with X, Y in 0-255 and Z in 0-65535",
                        a->version);
    }
    char err[160];
    if (a->job_id && ota_job_spec_check_id(a->job_id, err, sizeof err) != OTA_JOB_SPEC_OK) {
        return cli_fail(CLI_EXIT_USAGE, "%s", err);
    }
    if (a->cert_name && (a->cert_name[0] == '\0' || strlen(a->cert_name) > 255)) {
        return cli_fail(CLI_EXIT_USAGE, "bad --cert-name; give a name such as codesign.crt");
    }
    if (a->device_types && !ota_store_valid_device_types(a->device_types)) {
        return cli_fail(CLI_EXIT_USAGE,
                        "bad --device-types '%s'; give TYPE[,TYPE...], up to 16 distinct types of "
                        "1-64 of [A-Za-z0-9_.-]",
                        a->device_types);
    }
    if (a->file_path && (a->file_path[0] == '\0' || strlen(a->file_path) > 1024)) {
        return cli_fail(CLI_EXIT_USAGE, "bad --file-path; give 1-1024 characters");
    }
    uint32_t tag;
    if (a->device_type && cli_image_type_tag(a->device_type, &tag) != CLI_EXIT_OK) {
        return CLI_EXIT_USAGE;
    }
    return a->security_counter ? cli_image_counter(a->security_counter, &a->counter) : CLI_EXIT_OK;
}

/* Writes the file, the stream and the job: the only step that changes the store. */
static int publish(const cli_ctx_t *ctx, ota_store_t *store, struct job_plan *p,
                   const struct create_args *a, unsigned long file_type, ota_store_job_spec_t *spec)
{
    const ota_publish_job_t pj = {.tmp_dir = ctx->data_dir,
                                  .stream_id = p->stream_id,
                                  .job_id = p->job_id,
                                  .image = p->image,
                                  .image_len = p->image_len,
                                  .sig = p->sig,
                                  .sig_len = p->sig_len,
                                  .sig_method = p->sig_method,
                                  .version = p->version,
                                  .file_type = (unsigned)file_type,
                                  .file_path = a->file_path,
                                  .cert_name = a->cert_name,
                                  .device_types = a->device_types,
                                  .protocols = a->planes.names,
                                  .n_protocols = a->planes.n,
                                  .http = a->planes.http,
                                  .url_expiry_s = (uint32_t)a->planes.expiry_s};
    spec->things = p->targets.things;
    spec->n_things = p->targets.n_things;
    spec->groups = p->targets.groups;
    spec->n_groups = p->targets.n_groups;
    char err[1400];
    return ota_publish_job(store, &pj, spec, "--job-id", err, sizeof err) == 0
               ? CLI_EXIT_OK
               : cli_fail(CLI_EXIT_FAIL, "%s", err);
}

int cli_cmd_job_create(const cli_ctx_t *ctx, int argc, char **argv)
{
    struct create_args a;
    a.counter = 0;
    const char *pos[1];
    size_t n_pos;
    int help;
    const cli_opt_t opts[] = {{"file", 1, &a.file},
                              {"version", 1, &a.version},
                              {"targets", 1, &a.targets},
                              {"key", 1, &a.key},
                              {"signature", 1, &a.signature},
                              {"cert", 1, &a.cert},
                              {"cert-name", 1, &a.cert_name},
                              {"job-id", 1, &a.job_id},
                              {"file-path", 1, &a.file_path},
                              {"file-type", 1, &a.file_type},
                              {"timeout-minutes", 1, &a.timeout},
                              {"rollout-rate", 1, &a.rollout},
                              {"abort-failure-percent", 1, &a.abort_pct},
                              {"abort-min-finished", 1, &a.abort_min},
                              {"protocols", 1, &a.protocols},
                              {"url-expiry", 1, &a.url_expiry},
                              {"device-types", 1, &a.device_types},
                              {"continuous", 0, &a.continuous},
                              {"unchecked-signature", 0, &a.unchecked},
                              {"raw", 0, &a.raw},
                              {"security-counter", 1, &a.security_counter},
                              {"device-type", 1, &a.device_type},
                              CLI_ROLLOUT_OPTS(a.ro)};
    int rc = cli_parse(argc, argv, opts, sizeof opts / sizeof opts[0], pos, 0, &n_pos, &help);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (help) {
        fputs(create_help, stdout);
        fputs(cli_rollout_help, stdout);
        return CLI_EXIT_OK;
    }
    struct job_plan p;
    memset(&p, 0, sizeof p);
    ota_store_job_spec_t spec;
    memset(&spec, 0, sizeof spec);
    unsigned long file_type = 0;
    if ((rc = check_args(&a, &p)) != CLI_EXIT_OK ||
        (rc = check_numbers(&a, &spec, &file_type)) != CLI_EXIT_OK ||
        (rc = cli_job_protocols_parse(a.protocols, a.url_expiry, &a.planes)) != CLI_EXIT_OK ||
        (rc = cli_rollout_parse(&a.ro, ota_store_now_ms(), &spec)) != CLI_EXIT_OK) {
        return rc;
    }
    char uuid[37];
    if (uuid_v4(uuid) != 0) {
        return cli_fail(CLI_EXIT_FAIL, "no randomness available; try again");
    }
    snprintf(p.stream_id, sizeof p.stream_id, "AFR_OTA-%s", uuid);
    if (a.job_id == NULL) {
        snprintf(p.job_id_buf, sizeof p.job_id_buf, "ota-%s", uuid);
        p.job_id = p.job_id_buf;
    } else {
        p.job_id = a.job_id;
    }
    /* Everything that needs no store first: the image and its signature. */
    if (a.device_type != NULL && a.device_types == NULL) {
        a.device_types = a.device_type; /* an image for one type: a job for that type */
    }
    rc = plan_image(&p, a.file, file_type, a.raw != NULL, a.device_types, a.counter, a.device_type);
    if (rc == CLI_EXIT_OK) {
        rc = plan_signature(&p, a.key, a.signature, a.cert,
                            a.cert_name ? a.cert_name : "codesign.crt", a.unchecked != NULL);
    }
    ota_store_t *store = NULL;
    if (rc == CLI_EXIT_OK) {
        rc = cli_store_open(ctx, &store);
    }
    ota_store_job_t existing;
    if (rc == CLI_EXIT_OK && ota_store_job_get(store, p.job_id, &existing) == OTA_STORE_OK) {
        ota_store_job_free(&existing);
        rc = cli_fail(CLI_EXIT_FAIL, "job id '%s' is taken; choose another --job-id", p.job_id);
    }
    if (rc == CLI_EXIT_OK) {
        spec.continuous = a.continuous != NULL;
        rc = plan_targets(store, a.targets, spec.continuous, &p);
    }
    if (rc == CLI_EXIT_OK) {
        rc = publish(ctx, store, &p, &a, file_type, &spec);
    }
    if (rc == CLI_EXIT_OK && file_type == 0 && a.raw == NULL) {
        warn_counter_floor(store, &p);
    }
    if (rc == CLI_EXIT_OK) {
        printf("%s\n", p.job_id);
    }
    ota_store_close(store);
    plan_free(&p);
    return rc;
}

/* Prints one row of `job list`. */
static int list_row(void *ctx, const ota_store_job_t *j)
{
    (void)ctx;
    char when[24];
    cli_format_time(j->created_ms, when);
    printf("%-40s %-12s %7u %9u %6u %8u %s\n", j->job_id, ota_store_job_status_name(j->status),
           j->n_executions, j->n_succeeded, j->n_failed + j->n_timed_out + j->n_rejected,
           j->n_in_progress + j->n_queued + j->n_unreleased, when);
    return 0;
}

int cli_cmd_job_list(const cli_ctx_t *ctx, int argc, char **argv)
{
    const char *pos[1];
    size_t n_pos;
    int help;
    int rc = cli_parse(argc, argv, NULL, 0, pos, 0, &n_pos, &help);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (help) {
        fputs("usage: otter job list\n\nList every job, oldest first, with its status and "
              "execution counts.\n",
              stdout);
        return CLI_EXIT_OK;
    }
    ota_store_t *store = NULL;
    if ((rc = cli_store_open(ctx, &store)) != CLI_EXIT_OK) {
        return rc;
    }
    if (ctx->json) {
        rc = cli_json_job_list(store);
        ota_store_close(store);
        return rc;
    }
    printf("%-40s %-12s %7s %9s %6s %8s %s\n", "JOB", "STATUS", "TARGETS", "SUCCEEDED", "FAILED",
           "PENDING", "CREATED (UTC)");
    if (ota_store_job_list(store, list_row, NULL) != OTA_STORE_OK) {
        rc = cli_fail(CLI_EXIT_FAIL, "cannot list jobs (%s); check the data folder",
                      ota_store_errmsg(store));
    }
    ota_store_close(store);
    return rc;
}

/* Prints one execution of `job show`. */
static int show_exec(void *ctx, const ota_store_execution_t *e)
{
    (void)ctx;
    char when[24], words[320], details[CLI_TEXT_JSON_CAP];
    cli_format_time(e->last_updated_at_ms, when);
    cli_details_reason_words(e->status_details, words, sizeof words);
    printf("  %-32s %-12s v%-3lld %s  %s%s\n", e->thing,
           cli_exec_status_text(e->status, e->released), (long long)e->version_number, when,
           cli_safe_json(e->status_details, details, sizeof details), words);
    return 0;
}

/* Prints what a job installs: version, device types, the device's file name,
 * the stored image and its size (read from the job document and the stream). */
static void print_firmware(ota_store_t *store, const ota_store_job_t *j)
{
    const char *path = "-";
    double size = 0;
    cJSON *doc = cJSON_Parse(j->document ? j->document : "");
    const cJSON *files =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "afr_ota"), "files");
    const cJSON *f = cJSON_GetArrayItem(files, 0);
    const cJSON *fp = cJSON_GetObjectItemCaseSensitive(f, "filepath");
    const cJSON *fs = cJSON_GetObjectItemCaseSensitive(f, "filesize");
    if (cJSON_IsString(fp)) {
        path = fp->valuestring;
    }
    if (cJSON_IsNumber(fs)) {
        size = fs->valuedouble;
    }
    printf("version:    %s\ndevices:    %s\nfile:       %s (%.0f bytes)\n",
           j->target_version[0] ? j->target_version : "-",
           j->device_types[0] ? j->device_types : "any type", path, size);
    ota_store_stream_t st;
    if (j->stream_id[0] && ota_store_stream_get(store, j->stream_id, &st) == OTA_STORE_OK) {
        for (size_t i = 0; i < st.n_files; i++) {
            printf("firmware:   %s (file id %u, %llu bytes)\n", st.files[i].path,
                   st.files[i].file_id, (unsigned long long)st.files[i].size);
        }
        ota_store_stream_free(&st);
    }
    cJSON_Delete(doc);
}

int cli_cmd_job_show(const cli_ctx_t *ctx, int argc, char **argv)
{
    const char *arg = NULL;
    ota_store_t *store = NULL;
    int rc = cli_one_arg_with_store(
        ctx, argc, argv,
        "usage: otter job show ID\n\nShow a job (status, the version and device types it is "
        "for, the file the\ndevice receives, the stored firmware image, settings, document) "
        "and every\ntarget's execution: status, version number, last update (UTC), "
        "statusDetails\n(a failure's error code named and explained after them).\nSKIPPED "
        "executions were not needed (already on the version or a newer one,\nor another "
        "device type); they never count as failures.\n",
        "job show needs a job ID; see 'otter job list'", &arg, &store);
    if (rc != CLI_EXIT_OK) {
        return rc == CLI_DONE ? CLI_EXIT_OK : rc;
    }
    ota_store_job_t j;
    if (ota_store_job_get(store, arg, &j) != OTA_STORE_OK) {
        ota_store_close(store);
        return cli_fail(CLI_EXIT_FAIL, "unknown job '%s'; see 'otter job list'", arg);
    }
    if (ctx->json) {
        rc = cli_json_job_show(store, &j);
        ota_store_job_free(&j);
        ota_store_close(store);
        return rc;
    }
    char created[24], done[24];
    cli_format_time(j.created_ms, created);
    cli_format_time(j.completed_ms, done);
    printf("job:        %s\nstatus:     %s\nstream:     %s\ncreated:    %s\ncompleted:  %s\n",
           j.job_id, ota_store_job_status_name(j.status), j.stream_id[0] ? j.stream_id : "-",
           created, done);
    print_firmware(store, &j);
    printf("targets:    %u (succeeded %u, failed %u, timed out %u, rejected %u, in progress %u, "
           "queued %u, canceled %u, removed %u, skipped %u)\n",
           j.n_executions, j.n_succeeded, j.n_failed, j.n_timed_out, j.n_rejected, j.n_in_progress,
           j.n_queued + j.n_unreleased, j.n_canceled, j.n_removed, j.n_skipped);
    if (j.in_progress_timeout_min) {
        printf("timeout:    %u minutes in progress\n", j.in_progress_timeout_min);
    }
    if (j.rollout_per_minute) {
        printf("rollout:    %u things per minute\n", j.rollout_per_minute);
    }
    if (j.abort_failure_percent) {
        printf("abort:      %u%% failed once %u finished\n", j.abort_failure_percent,
               j.abort_min_finished);
    }
    if (j.continuous) {
        printf("selection:  continuous (new members of its groups get it)\n");
    }
    cli_rollout_print(&j);
    printf("document:   %s\nexecutions:\n", j.document ? j.document : "");
    if (ota_store_execution_list(store, j.job_id, show_exec, NULL) != OTA_STORE_OK) {
        rc = cli_fail(CLI_EXIT_FAIL, "cannot list executions (%s); check the data folder",
                      ota_store_errmsg(store));
    }
    ota_store_job_free(&j);
    ota_store_close(store);
    return rc;
}
