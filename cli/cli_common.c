/* otter CLI: what every command shares (errors, options, files, randomness, base64). */
#include "cli_common.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/base64.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>

#include "ota_store.h"

int cli_fail(int code, const char *fmt, ...)
{
    va_list ap;
    fputs("otter: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

static const char cli_flag_set[] = "1";

/* Finds an option by name (name may carry "=value", name_len excludes it). */
static const cli_opt_t *find_opt(const cli_opt_t *opts, size_t n, const char *name, size_t name_len)
{
    for (size_t i = 0; i < n; i++) {
        if (strlen(opts[i].name) == name_len && strncmp(opts[i].name, name, name_len) == 0) {
            return &opts[i];
        }
    }
    return NULL;
}

int cli_parse(int argc, char **argv, const cli_opt_t *opts, size_t n_opts, const char **pos,
              size_t max_pos, size_t *n_pos, int *help)
{
    int only_pos = 0;
    *n_pos = 0;
    *help = 0;
    for (size_t i = 0; i < n_opts; i++) {
        *opts[i].value = NULL;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (!only_pos && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)) {
            *help = 1;
            continue;
        }
        if (!only_pos && a[0] == '-' && a[1] != '\0') {
            if (a[1] != '-') {
                return cli_fail(CLI_EXIT_USAGE,
                                "unknown option '%s' for '%s'; see 'otter %s --help'", a, argv[0],
                                argv[0]);
            }
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
            const cli_opt_t *o = find_opt(opts, n_opts, name, name_len);
            if (o == NULL) {
                return cli_fail(CLI_EXIT_USAGE,
                                "unknown option '--%.*s' for '%s'; see 'otter %s --help'",
                                (int)name_len, name, argv[0], argv[0]);
            }
            if (*o->value != NULL) {
                return cli_fail(CLI_EXIT_USAGE, "option '--%s' given twice; give it once", o->name);
            }
            if (o->has_value) {
                if (eq) {
                    *o->value = eq + 1;
                } else if (i + 1 < argc) {
                    *o->value = argv[++i];
                } else {
                    return cli_fail(CLI_EXIT_USAGE,
                                    "option '--%s' needs a value; see 'otter %s --help'", o->name,
                                    argv[0]);
                }
            } else {
                if (eq) {
                    return cli_fail(CLI_EXIT_USAGE, "option '--%s' takes no value; remove '=%s'",
                                    o->name, eq + 1);
                }
                *o->value = cli_flag_set;
            }
            continue;
        }
        if (*n_pos >= max_pos) {
            return cli_fail(CLI_EXIT_USAGE,
                            "unexpected argument '%s' for '%s'; see 'otter %s --help'", a, argv[0],
                            argv[0]);
        }
        pos[(*n_pos)++] = a;
    }
    return CLI_EXIT_OK;
}

int cli_data_path(const cli_ctx_t *ctx, char *out, size_t cap, const char *fmt, ...)
{
    int n = snprintf(out, cap, "%s/", ctx->data_dir);
    if (n < 0 || (size_t)n >= cap) {
        return -1;
    }
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(out + n, cap - (size_t)n, fmt, ap);
    va_end(ap);
    if (m < 0 || (size_t)m >= cap - (size_t)n) {
        return -1;
    }
    return 0;
}

int cli_read_input(const char *what, const char *path, uint8_t **buf, size_t *len)
{
    if (cli_read_file(path, buf, len) == 0) {
        return CLI_EXIT_OK;
    }
    if (errno == EISDIR) {
        return cli_fail(CLI_EXIT_FAIL, "%s '%s' is a directory; give a file", what, path);
    }
    return cli_fail(CLI_EXIT_FAIL, "cannot read %s '%s' (%s); check the path", what, path,
                    strerror(errno));
}

int cli_read_file(const char *path, uint8_t **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        errno = EISDIR;
        return -1;
    }
    size_t cap = 4096, n = 0;
    uint8_t *b = malloc(cap);
    if (b == NULL) {
        fclose(f);
        errno = ENOMEM;
        return -1;
    }
    for (;;) {
        if (n + 1 >= cap) {
            uint8_t *nb = realloc(b, cap * 2);
            if (nb == NULL) {
                free(b);
                fclose(f);
                errno = ENOMEM;
                return -1;
            }
            b = nb;
            cap *= 2;
        }
        size_t got = fread(b + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) {
            break;
        }
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(b);
        errno = EIO;
        return -1;
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return 0;
}

/* Writes all of data to fd. */
static int write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int cli_write_new_file(const char *path, const void *data, size_t len, unsigned mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
    if (fd < 0) {
        return -1;
    }
    if (fchmod(fd, (mode_t)mode) != 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(path);
        errno = e;
        return -1;
    }
    if (close(fd) != 0) {
        int e = errno;
        unlink(path);
        errno = e;
        return -1;
    }
    return 0;
}

int cli_replace_file(const char *path, const void *data, size_t len, unsigned mode)
{
    char tmp[CLI_PATH_MAX];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    unlink(tmp);
    if (cli_write_new_file(tmp, data, len, mode) != 0) {
        return -1;
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    return 0;
}

int cli_mkdirs(const char *path)
{
    char buf[CLI_PATH_MAX];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
                return -1;
            }
            buf[i] = c;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

int cli_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static mbedtls_entropy_context g_entropy;
static mbedtls_ctr_drbg_context g_drbg;
static int g_drbg_ready;

/* Frees the generator at exit. */
static void random_cleanup(void)
{
    mbedtls_ctr_drbg_free(&g_drbg);
    mbedtls_entropy_free(&g_entropy);
}

int cli_random(uint8_t *buf, size_t len)
{
    if (!g_drbg_ready) {
        static const unsigned char pers[] = "otter cli";
        mbedtls_entropy_init(&g_entropy);
        mbedtls_ctr_drbg_init(&g_drbg);
        if (mbedtls_ctr_drbg_seed(&g_drbg, mbedtls_entropy_func, &g_entropy, pers,
                                  sizeof pers - 1) != 0) {
            random_cleanup();
            return -1;
        }
        g_drbg_ready = 1;
        atexit(random_cleanup);
    }
    while (len > 0) {
        size_t chunk = len > MBEDTLS_CTR_DRBG_MAX_REQUEST ? MBEDTLS_CTR_DRBG_MAX_REQUEST : len;
        if (mbedtls_ctr_drbg_random(&g_drbg, buf, chunk) != 0) {
            return -1;
        }
        buf += chunk;
        len -= chunk;
    }
    return 0;
}

int cli_rng(void *ctx, unsigned char *buf, size_t len)
{
    (void)ctx;
    return cli_random(buf, len) == 0 ? 0 : MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED;
}

char *cli_base64(const uint8_t *data, size_t len)
{
    size_t cap = 4 * ((len + 2) / 3) + 1, olen = 0;
    char *out = malloc(cap);
    if (out == NULL) {
        return NULL;
    }
    if (mbedtls_base64_encode((unsigned char *)out, cap, &olen, data, len) != 0) {
        free(out);
        return NULL;
    }
    out[olen] = '\0';
    return out;
}

char *cli_sprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (s == NULL) {
        return NULL;
    }
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

int cli_valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 128) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || c == ':';
        if (!ok) {
            return 0;
        }
    }
    return 1;
}

int cli_parse_uint(const char *text, unsigned long min, unsigned long max, unsigned long *out)
{
    if (text == NULL || text[0] < '0' || text[0] > '9') {
        return -1;
    }
    errno = 0;
    char *end = NULL;
    unsigned long v = strtoul(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

int cli_data_dir_check(const cli_ctx_t *ctx)
{
    struct stat st;
    char store[CLI_PATH_MAX], broker[CLI_PATH_MAX];
    if (stat(ctx->data_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return cli_fail(CLI_EXIT_FAIL,
                        "data folder '%s' does not exist; create it with 'otter --data-dir %s "
                        "broker init --port N', or check --data-dir and $OTTER_DATA_DIR",
                        ctx->data_dir, ctx->data_dir);
    }
    if (cli_data_path(ctx, store, sizeof store, "otter.db") != 0 ||
        cli_data_path(ctx, broker, sizeof broker, "broker/mosquitto.conf") != 0) {
        return cli_fail(CLI_EXIT_USAGE, "data folder path too long; use a shorter --data-dir");
    }
    if (!cli_exists(store) && !cli_exists(broker)) {
        return cli_fail(CLI_EXIT_FAIL,
                        "'%s' is not an otter data folder (no otter.db, no broker/); set it up "
                        "with 'otter --data-dir %s broker init --port N', or check --data-dir",
                        ctx->data_dir, ctx->data_dir);
    }
    return CLI_EXIT_OK;
}

int cli_store_open(const cli_ctx_t *ctx, struct ota_store **out)
{
    *out = NULL;
    int rc = cli_data_dir_check(ctx);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    /* An absolute folder: stored file paths must not depend on the working folder. */
    char abs[PATH_MAX];
    if (realpath(ctx->data_dir, abs) == NULL) {
        return cli_fail(CLI_EXIT_FAIL, "cannot use data folder '%s' (%s); check --data-dir",
                        ctx->data_dir, strerror(errno));
    }
    rc = ota_store_open(abs, out);
    if (rc != OTA_STORE_OK) {
        return cli_fail(CLI_EXIT_FAIL, "cannot open the store in '%s' (%s); check --data-dir",
                        ctx->data_dir, ota_store_rc_name(rc));
    }
    (void)ota_store_set_recorder(*out, "otter-cli"); /* names it in execution histories */
    return CLI_EXIT_OK;
}

void cli_format_time(int64_t ms, char out[24])
{
    if (ms <= 0) {
        snprintf(out, 24, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 24, "%Y-%m-%d %H:%M:%S", &tm);
}

int cli_one_arg_with_store(const cli_ctx_t *ctx, int argc, char **argv, const char *usage,
                           const char *missing, const char **arg, struct ota_store **store)
{
    const char *pos[1] = {NULL};
    size_t n_pos;
    int help;
    int rc = cli_parse(argc, argv, NULL, 0, pos, 1, &n_pos, &help);
    *store = NULL;
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (help) {
        fputs(usage, stdout);
        return CLI_DONE;
    }
    if (n_pos != 1) {
        return cli_fail(CLI_EXIT_USAGE, "%s", missing);
    }
    *arg = pos[0];
    return cli_store_open(ctx, store);
}

int cli_parse_one(int argc, char **argv, const cli_opt_t *opts, size_t n_opts, const char *help,
                  const char *missing, const char **arg)
{
    const char *pos[1] = {NULL};
    size_t n_pos = 0;
    int want_help = 0;
    int rc = cli_parse(argc, argv, opts, n_opts, pos, missing ? 1 : 0, &n_pos, &want_help);
    *arg = pos[0];
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (want_help) {
        fputs(help, stdout);
        return CLI_DONE;
    }
    if (missing != NULL && n_pos != 1) {
        return cli_fail(CLI_EXIT_USAGE, "%s", missing);
    }
    return CLI_EXIT_OK;
}
