/* otter CLI tests: running processes and reading and writing files. */
#include "cli_test_util.h"
#include "ota_test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char g_dir[256];
static char g_data[300];

int cli_test_begin(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/otter-cli-test-XXXXXX");
    if (mkdtemp(g_dir) == NULL) {
        return -1;
    }
    snprintf(g_data, sizeof g_data, "%s/data", g_dir);
    return 0;
}

void cli_test_end(void)
{
    if (g_dir[0] != '\0') {
        ota_test_rm_tree(g_dir);
        g_dir[0] = '\0';
    }
}

const char *cli_test_dir(void)
{
    return g_dir;
}

const char *cli_test_data(void)
{
    return g_data;
}

const char *cli_test_path(const char *fmt, ...)
{
    static char bufs[64][1024];
    static unsigned next;
    char *b = bufs[next++ % 64];
    int n = snprintf(b, 1024, "%s/", g_dir);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b + n, 1024 - (size_t)n, fmt, ap);
    va_end(ap);
    return b;
}

/* Builds the full argument vector: otter --data-dir DATA argv... */
static char **full_argv(const char *const *argv)
{
    size_t n = 0;
    while (argv[n]) {
        n++;
    }
    char **v = calloc(n + 4, sizeof(char *));
    if (v == NULL) {
        return NULL;
    }
    v[0] = (char *)OTTER_BIN;
    v[1] = (char *)"--data-dir";
    v[2] = g_data;
    for (size_t i = 0; i < n; i++) {
        v[3 + i] = (char *)argv[i];
    }
    return v;
}

pid_t cli_test_spawn(const char *const *argv, const char *out_path, const char *err_path)
{
    char **v = full_argv(argv);
    if (v == NULL) {
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (in < 0 || out < 0 || err < 0) {
            _exit(126);
        }
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        execv(OTTER_BIN, v);
        _exit(127);
    }
    free(v);
    return pid;
}

int cli_test_wait(pid_t pid, int timeout_ms)
{
    int status = 0;
    for (int waited = 0;; waited += 10) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            break;
        }
        if (w < 0 && errno != EINTR) {
            return -1;
        }
        if (waited >= timeout_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    return 128 + WTERMSIG(status);
}

/* Reads a file into a fixed buffer. */
static void slurp(const char *path, char *buf, size_t cap)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return;
    }
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

int cli_test_runv(cli_run_t *r, const char *const *argv)
{
    char out[512], err[512];
    snprintf(out, sizeof out, "%s/.run.out", g_dir);
    snprintf(err, sizeof err, "%s/.run.err", g_dir);
    pid_t pid = cli_test_spawn(argv, out, err);
    r->code = pid < 0 ? -1 : cli_test_wait(pid, 60000);
    slurp(out, r->out, sizeof r->out);
    slurp(err, r->err, sizeof r->err);
    return r->code;
}

int cli_test_run(cli_run_t *r, ...)
{
    const char *argv[64];
    size_t n = 0;
    va_list ap;
    va_start(ap, r);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 63) {
        argv[n++] = a;
    }
    va_end(ap);
    argv[n] = NULL;
    return cli_test_runv(r, argv);
}

int cli_test_setup(void **state)
{
    (void)state;
    return cli_test_begin();
}

int cli_test_teardown(void **state)
{
    (void)state;
    cli_test_end();
    return 0;
}

int cli_test_exit_is(const cli_run_t *r, int code, int want)
{
    if (code != want) {
        fprintf(stderr, "exit %d, wanted %d; stderr: %s\n", code, want, r->err);
        return 0;
    }
    return want == 0 || cli_test_one_error_line(r);
}

int cli_test_one_error_line(const cli_run_t *r)
{
    const char *e = r->err;
    size_t len = strlen(e);
    const char *nl = strchr(e, '\n');
    int ok = len > 0 && strncmp(e, "otter: error: ", 14) == 0 && nl == e + len - 1 &&
             strstr(e, "; ") != NULL && strstr(e, "; ") < nl;
    if (!ok) {
        fprintf(stderr, "expected one error line, got stderr: [%s]\n", e);
    }
    return ok;
}

int cli_test_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        return -1;
    }
    int ok = fwrite(data, 1, len, f) == len;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

unsigned char *cli_test_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = malloc(cap);
    while (b != NULL) {
        size_t got = fread(b + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) {
            break;
        }
        if (n + 1 >= cap) {
            unsigned char *nb = realloc(b, cap * 2);
            if (nb == NULL) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (b != NULL) {
        b[n] = 0;
        if (len) {
            *len = n;
        }
    }
    return b;
}

int cli_test_sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd - 20, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof cmd - 20) {
        return -1;
    }
    strcat(cmd, " >/dev/null 2>&1");
    int rc = system(cmd);
    if (rc == -1 || !WIFEXITED(rc)) {
        return -1;
    }
    return WEXITSTATUS(rc);
}

/* Whether some line of text holds a and b. */
static int line_has(const char *text, const char *a, const char *b)
{
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        char *line = strndup(p, n);
        int hit = line != NULL && strstr(line, a) != NULL && (b == NULL || strstr(line, b));
        free(line);
        if (hit) {
            return 1;
        }
        p += n + (nl ? 1 : 0);
    }
    return 0;
}

int cli_test_wait_line(const char *path, const char *a, const char *b, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        unsigned char *text = cli_test_read(path, NULL);
        int hit = text != NULL && line_has((const char *)text, a, b);
        free(text);
        if (hit) {
            return 0;
        }
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return -1;
}
