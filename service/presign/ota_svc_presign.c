/*
 * otter service: presigned URLs. See ota_svc_presign.h.
 */
#define _POSIX_C_SOURCE 200809L
#include "ota_svc_presign.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <mbedtls/md.h>

#include "ota_store.h"

#define SECRET_LEN 32
#define PATH_PREFIX "/files/"
/* Largest file id and expiry accepted in text (keeps parsing in int64_t). */
#define DIGITS_MAX 15

struct ota_svc_presign {
    uint8_t secret[SECRET_LEN];
};

/* ----------------------------------------------------------- secret file -- */

static int read_secret(const char *path, uint8_t out[SECRET_LEN], char *err, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return errno == ENOENT
                   ? 1
                   : (snprintf(err, cap, "cannot open %s: %s", path, strerror(errno)), -1);
    }
    uint8_t extra;
    ssize_t n = read(fd, out, SECRET_LEN);
    ssize_t more = n == SECRET_LEN ? read(fd, &extra, 1) : 0;
    close(fd);
    if (n != SECRET_LEN || more != 0) {
        snprintf(err, cap, "%s is not a %d-byte key; remove it to make a new one", path,
                 SECRET_LEN);
        return -1;
    }
    return 0;
}

/* Writes a new secret under a temporary name and links it into place, so two
 * programs creating it at once end up with the same one. 0 made or found, -1 failed. */
static int create_secret(const char *path, char *err, size_t cap)
{
    char tmp[4200];
    uint8_t key[SECRET_LEN];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    if (getrandom(key, sizeof key, 0) != (ssize_t)sizeof key) {
        snprintf(err, cap, "no randomness for the URL signing key: %s", strerror(errno));
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, cap, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    int ok = write(fd, key, sizeof key) == (ssize_t)sizeof key && fsync(fd) == 0;
    close(fd);
    memset(key, 0, sizeof key);
    if (!ok || (link(tmp, path) != 0 && errno != EEXIST)) {
        snprintf(err, cap, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    unlink(tmp);
    return 0;
}

ota_svc_presign_t *ota_svc_presign_open(const char *data_dir, char *err, size_t err_cap)
{
    char dir[4096], path[4096];
    if (data_dir == NULL || snprintf(dir, sizeof dir, "%s/http", data_dir) >= (int)sizeof dir ||
        snprintf(path, sizeof path, "%s/" OTA_SVC_PRESIGN_KEY_FILE, data_dir) >= (int)sizeof path) {
        snprintf(err, err_cap, "bad data directory");
        return NULL;
    }
    ota_svc_presign_t *p = calloc(1, sizeof *p);
    if (p == NULL) {
        snprintf(err, err_cap, "out of memory");
        return NULL;
    }
    int rc = read_secret(path, p->secret, err, err_cap);
    if (rc == 1) {
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            snprintf(err, err_cap, "cannot create %s: %s", dir, strerror(errno));
            rc = -1;
        } else if (create_secret(path, err, err_cap) == 0) {
            rc = read_secret(path, p->secret, err, err_cap);
        } else {
            rc = -1;
        }
    }
    if (rc != 0) {
        if (rc == 1) {
            snprintf(err, err_cap, "%s vanished while it was created", path);
        }
        ota_svc_presign_close(p);
        return NULL;
    }
    return p;
}

void ota_svc_presign_close(ota_svc_presign_t *p)
{
    if (p != NULL) {
        volatile uint8_t *s = p->secret;
        for (size_t i = 0; i < SECRET_LEN; i++) {
            s[i] = 0;
        }
        free(p);
    }
}

/* ------------------------------------------------------------- signature -- */

/* issued < 0: the form without an issue time (URLs of earlier versions). */
static int mac(const ota_svc_presign_t *p, const char *path, const char *thing, const char *job,
               int64_t issued, int64_t expires, uint8_t out[32])
{
    char text[512];
    int n = issued < 0 ? snprintf(text, sizeof text, "OTTER-HMAC-SHA256\n%s\n%s\n%s\n%" PRId64,
                                  path, thing, job, expires)
                       : snprintf(text, sizeof text,
                                  "OTTER-HMAC-SHA256\n%s\n%s\n%s\n%" PRId64 "\n%" PRId64, path,
                                  thing, job, expires, issued);
    if (n < 0 || (size_t)n >= sizeof text) {
        return -1;
    }
    return mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), p->secret, SECRET_LEN,
                           (const unsigned char *)text, (size_t)n, out) == 0
               ? 0
               : -1;
}

/* Whether an issue time fits an expiry: not after it, at most the longest lifetime before. */
static int issued_fits(int64_t issued, int64_t expires)
{
    return issued <= expires && expires - issued <= OTA_SVC_PRESIGN_EXPIRY_MAX;
}

/* Whether path is "/files/<1..15 digits, no leading zero>"; the id in *id. */
static int parse_path(const char *path, int64_t *id)
{
    size_t plen = strlen(PATH_PREFIX);
    if (path == NULL || strncmp(path, PATH_PREFIX, plen) != 0) {
        return -1;
    }
    const char *d = path + plen;
    size_t n = strspn(d, "0123456789");
    if (n == 0 || n > DIGITS_MAX || d[n] != '\0' || d[0] == '0') {
        return -1;
    }
    *id = strtoll(d, NULL, 10);
    return 0;
}

int ota_svc_presign_sign(const ota_svc_presign_t *p, const char *path, const char *thing,
                         const char *job, int64_t issued, int64_t expires,
                         char out[OTA_SVC_PRESIGN_SIG_LEN + 1])
{
    uint8_t m[32];
    int64_t id;
    if (p == NULL || parse_path(path, &id) != 0 || !ota_store_valid_thing_name(thing) ||
        !ota_store_valid_job_id(job) || expires < 0 ||
        (issued >= 0 && !issued_fits(issued, expires)) ||
        mac(p, path, thing, job, issued, expires, m) != 0) {
        return -1;
    }
    for (size_t i = 0; i < sizeof m; i++) {
        snprintf(out + 2 * i, 3, "%02x", m[i]);
    }
    return 0;
}

char *ota_svc_presign_url(const ota_svc_presign_t *p, const char *base, int64_t file_id,
                          const char *thing, const char *job, int64_t issued, int64_t expires)
{
    char path[64], sig[OTA_SVC_PRESIGN_SIG_LEN + 1];
    if (base == NULL || file_id <= 0 || issued < 0) {
        return NULL;
    }
    snprintf(path, sizeof path, PATH_PREFIX "%" PRId64, file_id);
    if (ota_svc_presign_sign(p, path, thing, job, issued, expires, sig) != 0) {
        return NULL;
    }
    size_t cap = strlen(base) + strlen(path) + strlen(thing) + strlen(job) + 160;
    char *url = malloc(cap);
    if (url != NULL) {
        snprintf(url, cap,
                 "%s%s?thing=%s&job=%s&expires=%" PRId64 "&issued=%" PRId64 "&signature=%s", base,
                 path, thing, job, expires, issued, sig);
    }
    return url;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Decimal text of 1..DIGITS_MAX digits (no sign, no leading zero) into *out. */
static int parse_decimal(const char *s, int64_t *out)
{
    size_t n = s != NULL ? strspn(s, "0123456789") : 0;
    if (n == 0 || n > DIGITS_MAX || s[n] != '\0' || (s[0] == '0' && n > 1)) {
        return -1;
    }
    *out = strtoll(s, NULL, 10);
    return 0;
}

int ota_svc_presign_verify(const ota_svc_presign_t *p, const char *path, const char *thing,
                           const char *job, const char *expires, const char *issued,
                           const char *signature, int64_t now_s, int64_t *issued_s)
{
    int64_t id, exp, iss = -1;
    uint8_t want[32], got[32];
    if (p == NULL || parse_path(path, &id) != 0 || thing == NULL ||
        !ota_store_valid_thing_name(thing) || job == NULL || !ota_store_valid_job_id(job) ||
        parse_decimal(expires, &exp) != 0 ||
        (issued != NULL && (parse_decimal(issued, &iss) != 0 || !issued_fits(iss, exp))) ||
        signature == NULL || strlen(signature) != OTA_SVC_PRESIGN_SIG_LEN) {
        return OTA_SVC_PRESIGN_BAD;
    }
    for (size_t i = 0; i < sizeof got; i++) {
        int hi = hexval(signature[2 * i]), lo = hexval(signature[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return OTA_SVC_PRESIGN_BAD;
        }
        got[i] = (uint8_t)(hi << 4 | lo);
    }
    if (mac(p, path, thing, job, iss, exp, want) != 0) {
        return OTA_SVC_PRESIGN_BAD;
    }
    /* Constant time: every byte is compared whatever the first difference. */
    volatile uint8_t diff = 0;
    for (size_t i = 0; i < sizeof want; i++) {
        diff |= (uint8_t)(want[i] ^ got[i]);
    }
    if (diff != 0) {
        return OTA_SVC_PRESIGN_BAD;
    }
    if (issued_s != NULL) {
        *issued_s = iss >= 0 ? iss : exp - OTA_SVC_PRESIGN_EXPIRY_MAX;
    }
    return now_s > exp ? OTA_SVC_PRESIGN_EXPIRED : OTA_SVC_PRESIGN_OK;
}

/* ------------------------------------------------------------ documents -- */

int ota_svc_presign_parse_placeholder(const char *text, int64_t *file_id, int64_t *expiry_s)
{
    size_t plen = strlen(OTA_SVC_PRESIGN_PLACEHOLDER);
    char path[64], exp[32];
    if (text == NULL || strncmp(text, OTA_SVC_PRESIGN_PLACEHOLDER, plen) != 0) {
        return -1;
    }
    const char *a = text + plen;
    const char *colon = strchr(a, ':');
    size_t tl = strlen(text);
    if (colon == NULL || text[tl - 1] != '}' || (size_t)(colon - a) >= sizeof path ||
        (size_t)(text + tl - 1 - colon - 1) >= sizeof exp) {
        return -1;
    }
    memcpy(path, a, (size_t)(colon - a));
    path[colon - a] = '\0';
    memcpy(exp, colon + 1, (size_t)(text + tl - 1 - colon - 1));
    exp[text + tl - 1 - colon - 1] = '\0';
    if (parse_path(path, file_id) != 0 || parse_decimal(exp, expiry_s) != 0 ||
        *expiry_s < OTA_SVC_PRESIGN_EXPIRY_MIN || *expiry_s > OTA_SVC_PRESIGN_EXPIRY_MAX) {
        return -1;
    }
    return 0;
}

int ota_svc_presign_placeholder(int64_t file_id, int64_t expiry_s, char *out, size_t cap)
{
    if (file_id <= 0 || expiry_s < OTA_SVC_PRESIGN_EXPIRY_MIN ||
        expiry_s > OTA_SVC_PRESIGN_EXPIRY_MAX) {
        return -1;
    }
    int n = snprintf(out, cap, OTA_SVC_PRESIGN_PLACEHOLDER PATH_PREFIX "%" PRId64 ":%" PRId64 "}",
                     file_id, expiry_s);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

char *ota_svc_presign_document(const ota_svc_presign_t *p, const char *base, const char *doc,
                               const char *thing, const char *job, int64_t now_s)
{
    if (doc == NULL) {
        return NULL;
    }
    cJSON *root = strstr(doc, OTA_SVC_PRESIGN_PLACEHOLDER) ? cJSON_Parse(doc) : NULL;
    cJSON *files = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(root, "afr_ota"), "files");
    if (!cJSON_IsArray(files)) {
        cJSON_Delete(root);
        return strdup(doc);
    }
    int failed = 0;
    cJSON *f;
    cJSON_ArrayForEach(f, files)
    {
        cJSON *u = cJSON_GetObjectItemCaseSensitive(f, "update_data_url");
        int64_t id, life;
        if (!cJSON_IsString(u) || ota_svc_presign_parse_placeholder(u->valuestring, &id, &life)) {
            continue;
        }
        char *url = p != NULL && base != NULL
                        ? ota_svc_presign_url(p, base, id, thing, job, now_s, now_s + life)
                        : NULL;
        cJSON *repl = url != NULL ? cJSON_CreateString(url) : cJSON_CreateNull();
        free(url);
        failed |=
            repl == NULL || !cJSON_ReplaceItemInObjectCaseSensitive(f, "update_data_url", repl);
        cJSON *scheme = cJSON_GetObjectItemCaseSensitive(f, "auth_scheme");
        if (cJSON_IsNull(repl) && scheme != NULL) {
            failed |= !cJSON_ReplaceItemInObjectCaseSensitive(f, "auth_scheme", cJSON_CreateNull());
        }
    }
    char *text = failed ? NULL : cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (text == NULL) {
        return NULL;
    }
    char *out = strdup(text);
    cJSON_free(text);
    return out;
}
