/* otter web console: operator accounts (see ota_web_users.h). */
#include "ota_web_users.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/md.h>
#include <mbedtls/pkcs5.h>

#define SALT_LEN 16
#define HASH_LEN 32
#define LINE_MAX_LEN 512

/** One parsed account line. */
typedef struct account {
    char name[OTA_WEB_USER_NAME_MAX + 1];
    ota_web_role_t role;
    unsigned long iterations;
    unsigned char salt[SALT_LEN];
    unsigned char hash[HASH_LEN];
} account_t;

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t cap, const char *fmt, ...)
{
    if (err != NULL && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

const char *ota_web_role_name(ota_web_role_t role)
{
    switch (role) {
    case OTA_WEB_ROLE_VIEWER:
        return "viewer";
    case OTA_WEB_ROLE_OPERATOR:
        return "operator";
    default:
        return "none";
    }
}

int ota_web_role_parse(const char *text, ota_web_role_t *out)
{
    if (text != NULL && strcmp(text, "viewer") == 0) {
        *out = OTA_WEB_ROLE_VIEWER;
        return 0;
    }
    if (text != NULL && strcmp(text, "operator") == 0) {
        *out = OTA_WEB_ROLE_OPERATOR;
        return 0;
    }
    return -1;
}

int ota_web_user_valid_name(const char *name)
{
    if (name == NULL) {
        return 0;
    }
    size_t n = strlen(name);
    if (n == 0 || n > OTA_WEB_USER_NAME_MAX) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            return 0;
        }
    }
    return 1;
}

int ota_web_random(unsigned char *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = getrandom(buf + done, len - done, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        done += (size_t)n;
    }
    return 0;
}

int ota_web_equal(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    unsigned char d = 0;
    for (size_t i = 0; i < n; i++) {
        d |= (unsigned char)(x[i] ^ y[i]);
    }
    return d == 0;
}

static int pbkdf2(const char *password, const unsigned char *salt, unsigned long iterations,
                  unsigned char out[HASH_LEN])
{
    mbedtls_md_context_t md;
    mbedtls_md_init(&md);
    int rc = mbedtls_md_setup(&md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), 1);
    if (rc == 0) {
        rc = mbedtls_pkcs5_pbkdf2_hmac(&md, (const unsigned char *)password, strlen(password), salt,
                                       SALT_LEN, (unsigned int)iterations, HASH_LEN, out);
    }
    mbedtls_md_free(&md);
    return rc == 0 ? 0 : -1;
}

static void hex(const unsigned char *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static int unhex(const char *s, unsigned char *out, size_t n)
{
    if (strlen(s) != 2 * n) {
        return -1;
    }
    for (size_t i = 0; i < 2 * n; i++) {
        char c = s[i];
        int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
        if (v < 0) {
            return -1;
        }
        out[i / 2] = (unsigned char)(i % 2 ? (out[i / 2] | v) : (v << 4));
    }
    return 0;
}

/* Parses one line; -1 when it is not an account. */
static int parse_line(char *line, account_t *a)
{
    char *save = NULL;
    char *f[6];
    int n = 0;
    for (char *t = strtok_r(line, " \t\r\n", &save); t && n < 6;
         t = strtok_r(NULL, " \t\r\n", &save)) {
        f[n++] = t;
    }
    if (n != 6 || !ota_web_user_valid_name(f[0]) || ota_web_role_parse(f[1], &a->role) != 0 ||
        strcmp(f[2], "pbkdf2-sha256") != 0) {
        return -1;
    }
    char *end;
    a->iterations = strtoul(f[3], &end, 10);
    if (*end != '\0' || a->iterations < 1000 || a->iterations > 100000000 ||
        unhex(f[4], a->salt, SALT_LEN) != 0 || unhex(f[5], a->hash, HASH_LEN) != 0) {
        return -1;
    }
    snprintf(a->name, sizeof a->name, "%s", f[0]);
    return 0;
}

static int users_path(const char *data_dir, char *out, size_t cap, const char *suffix)
{
    int n = snprintf(out, cap, "%s/web/users%s", data_dir, suffix);
    return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

/* Reads every account; *accounts is heap (free it). Missing file: none. */
static int read_accounts(const char *data_dir, account_t **accounts, size_t *n)
{
    *accounts = NULL;
    *n = 0;
    char path[4200];
    if (users_path(data_dir, path, sizeof path, "") != 0) {
        return -1;
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return errno == ENOENT ? 0 : -1;
    }
    char line[LINE_MAX_LEN];
    size_t cap = 0;
    int rc = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        account_t a;
        if (parse_line(line, &a) != 0) {
            continue;
        }
        if (*n == cap) {
            size_t ncap = cap ? 2 * cap : 8;
            account_t *grown = cap >= 100000 ? NULL : realloc(*accounts, ncap * sizeof *grown);
            if (grown == NULL) {
                rc = -1;
                break;
            }
            *accounts = grown;
            cap = ncap;
        }
        (*accounts)[(*n)++] = a;
    }
    fclose(f);
    if (rc != 0) {
        free(*accounts);
        *accounts = NULL;
        *n = 0;
    }
    return rc;
}

/* Replaces the file with these accounts (temporary file, fsync, rename). */
static int write_accounts(const char *data_dir, const account_t *a, size_t n, char *err, size_t cap)
{
    char dir[4200], path[4200], tmp[4200];
    snprintf(dir, sizeof dir, "%s/web", data_dir);
    if (users_path(data_dir, path, sizeof path, "") != 0 ||
        users_path(data_dir, tmp, sizeof tmp, ".tmp") != 0) {
        return fail(err, cap, "data folder path too long; use a shorter --data-dir");
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        return fail(err, cap, "cannot create %s (%s); check the data folder", dir, strerror(errno));
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        return fail(err, cap, "cannot write %s (%s); check the data folder", tmp, strerror(errno));
    }
    FILE *f = fdopen(fd, "w");
    int ok = f != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        char salt[2 * SALT_LEN + 1], hash[2 * HASH_LEN + 1];
        hex(a[i].salt, SALT_LEN, salt);
        hex(a[i].hash, HASH_LEN, hash);
        ok = fprintf(f, "%s %s pbkdf2-sha256 %lu %s %s\n", a[i].name, ota_web_role_name(a[i].role),
                     a[i].iterations, salt, hash) > 0;
    }
    ok = ok && fflush(f) == 0 && fsync(fd) == 0;
    if (f != NULL) {
        ok = (fclose(f) == 0) && ok;
    } else {
        close(fd);
    }
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return fail(err, cap, "cannot write %s; check the disk and try again", path);
    }
    return 0;
}

int ota_web_user_add(const char *data_dir, const char *name, ota_web_role_t role,
                     const char *password, int replace, char *err, size_t cap)
{
    if (!ota_web_user_valid_name(name)) {
        return fail(err, cap, "bad user name '%.80s'; use 1-64 letters, digits, '.', '-' or '_'",
                    name ? name : "");
    }
    if (role != OTA_WEB_ROLE_VIEWER && role != OTA_WEB_ROLE_OPERATOR) {
        return fail(err, cap, "bad role; give viewer or operator");
    }
    size_t plen = password ? strlen(password) : 0;
    if (plen < OTA_WEB_PASSWORD_MIN || plen > OTA_WEB_PASSWORD_MAX) {
        return fail(err, cap, "the password must have %d to %d characters; choose another",
                    OTA_WEB_PASSWORD_MIN, OTA_WEB_PASSWORD_MAX);
    }
    account_t *all;
    size_t n;
    if (read_accounts(data_dir, &all, &n) != 0) {
        return fail(err, cap, "cannot read %s/web/users; check the data folder", data_dir);
    }
    size_t at = n;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(all[i].name, name) == 0) {
            at = i;
        }
    }
    if (at < n && !replace) {
        free(all);
        return fail(err, cap, "user '%s' exists; give --replace to set a new password or role",
                    name);
    }
    if (at == n) {
        account_t *grown = realloc(all, (n + 1) * sizeof *grown);
        if (grown == NULL) {
            free(all);
            return fail(err, cap, "out of memory; try again");
        }
        all = grown;
        n++;
    }
    account_t *a = &all[at];
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", name);
    a->role = role;
    a->iterations = OTA_WEB_PBKDF2_ITERATIONS;
    int rc = -1;
    if (ota_web_random(a->salt, SALT_LEN) != 0 ||
        pbkdf2(password, a->salt, a->iterations, a->hash)) {
        fail(err, cap, "cannot hash the password (no randomness?); try again");
    } else {
        rc = write_accounts(data_dir, all, n, err, cap);
    }
    free(all);
    return rc;
}

int ota_web_user_remove(const char *data_dir, const char *name, char *err, size_t cap)
{
    account_t *all;
    size_t n, kept = 0;
    if (read_accounts(data_dir, &all, &n) != 0) {
        return fail(err, cap, "cannot read %s/web/users; check the data folder", data_dir);
    }
    for (size_t i = 0; i < n; i++) {
        if (name == NULL || strcmp(all[i].name, name) != 0) {
            all[kept++] = all[i];
        }
    }
    int rc;
    if (kept == n) {
        rc = fail(err, cap, "unknown user '%.80s'; see 'otter user list'", name ? name : "");
    } else {
        rc = write_accounts(data_dir, all, kept, err, cap);
    }
    free(all);
    return rc;
}

int ota_web_user_list(const char *data_dir, ota_web_user_cb cb, void *ctx)
{
    account_t *all;
    size_t n;
    if (read_accounts(data_dir, &all, &n) != 0) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (cb(ctx, all[i].name, all[i].role) != 0) {
            break;
        }
    }
    free(all);
    return 0;
}

int ota_web_user_verify(const char *data_dir, const char *name, const char *password,
                        ota_web_role_t *role)
{
    static const unsigned char dummy_salt[SALT_LEN] = {0};
    account_t *all = NULL;
    size_t n = 0;
    const account_t *found = NULL;
    if (name != NULL && password != NULL && strlen(password) <= OTA_WEB_PASSWORD_MAX &&
        read_accounts(data_dir, &all, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            if (strcmp(all[i].name, name) == 0) {
                found = &all[i];
            }
        }
    }
    unsigned char h[HASH_LEN];
    int ok = 0;
    if (found != NULL) {
        ok = pbkdf2(password, found->salt, found->iterations, h) == 0 &&
             ota_web_equal(h, found->hash, HASH_LEN);
        if (ok) {
            *role = found->role;
        }
    } else {
        /* The same work as for a real account. */
        (void)pbkdf2(password ? password : "", dummy_salt, OTA_WEB_PBKDF2_ITERATIONS, h);
    }
    free(all);
    return ok;
}

ota_web_role_t ota_web_user_role(const char *data_dir, const char *name)
{
    account_t *all = NULL;
    size_t n = 0;
    ota_web_role_t role = OTA_WEB_ROLE_NONE;
    if (name != NULL && read_accounts(data_dir, &all, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            if (strcmp(all[i].name, name) == 0) {
                role = all[i].role;
            }
        }
    }
    free(all);
    return role;
}
