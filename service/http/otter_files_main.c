/*
 * otter-files: the stored files over HTTP for the HTTP data plane, and the
 * signed URLs that open them.
 *
 *   otter-files serve --data DIR --key-file FILE [--port N] [--bind ADDR]
 *   otter-files url --key-file FILE --base URL --file ID --thing NAME --job ID [--ttl S]
 *
 * serve answers for DIR/files/<id>.bin (the service's data folder) until
 * SIGINT or SIGTERM and prints "INFO ready: port N" once it listens. url
 * prints a URL valid for S seconds (default 1800, at most 3600, as AWS).
 * The key file holds the URL key: 32 to 256 bytes, e.g. head -c 32 /dev/urandom.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ota_files_http.h"
#include "ota_url_sign.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static int usage(void)
{
    fprintf(stderr, "usage: otter-files serve --data DIR --key-file FILE [--port N] [--bind ADDR]\n"
                    "       otter-files url --key-file FILE --base URL --file ID --thing NAME "
                    "--job ID [--ttl S]\n");
    return 2;
}

/* Reads a whole file of at most cap bytes; its length, or -1. */
static long read_all(const char *path, void *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n;
    if (f == NULL) {
        fprintf(stderr, "otter-files: %s: %s\n", path, strerror(errno));
        return -1;
    }
    n = fread(buf, 1, cap, f);
    if (n == cap && fgetc(f) != EOF) {
        fprintf(stderr, "otter-files: %s: larger than %zu bytes\n", path, cap - 1);
        fclose(f);
        return -1;
    }
    fclose(f);
    return (long)n;
}

static int parse_num(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    long long v;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != 0 || v < lo || v > hi) {
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    const char *data = NULL, *key_file = NULL, *bind_addr = NULL;
    const char *base = NULL, *thing = NULL, *job = NULL;
    long long port = 0, file = -1, ttl = 1800;
    static uint8_t key[257];
    long key_len;
    int i;
    if (argc < 2) {
        return usage();
    }
    for (i = 2; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL) {
            return usage();
        }
        i++;
        if (strcmp(o, "--data") == 0) {
            data = v;
        } else if (strcmp(o, "--key-file") == 0) {
            key_file = v;
        } else if (strcmp(o, "--bind") == 0) {
            bind_addr = v;
        } else if (strcmp(o, "--base") == 0) {
            base = v;
        } else if (strcmp(o, "--thing") == 0) {
            thing = v;
        } else if (strcmp(o, "--job") == 0) {
            job = v;
        } else if (strcmp(o, "--port") == 0) {
            if (parse_num(v, 0, 65535, &port) != 0) {
                return usage();
            }
        } else if (strcmp(o, "--file") == 0) {
            if (parse_num(v, 1, INT64_MAX, &file) != 0) {
                return usage();
            }
        } else if (strcmp(o, "--ttl") == 0) {
            if (parse_num(v, 1, 3600, &ttl) != 0) {
                return usage();
            }
        } else {
            return usage();
        }
    }
    if (key_file == NULL) {
        return usage();
    }
    key_len = read_all(key_file, key, sizeof(key));
    if (key_len < (long)OTA_URL_KEY_MIN) {
        fprintf(stderr, "otter-files: the key must be 32 to 256 bytes\n");
        return 1;
    }
    if (strcmp(argv[1], "url") == 0) {
        char url[2048];
        if (base == NULL || thing == NULL || job == NULL || file < 0) {
            return usage();
        }
        if (ota_url_make(key, (size_t)key_len, base, file, thing, job, (int64_t)time(NULL) + ttl,
                         url, sizeof(url)) < 0) {
            fprintf(stderr, "otter-files: bad thing name, job id or base URL\n");
            return 1;
        }
        printf("%s\n", url);
        return 0;
    }
    if (strcmp(argv[1], "serve") == 0) {
        ota_files_http_config_t cfg;
        ota_files_http_t *s;
        char files_dir[4096];
        struct sigaction sa;
        if (data == NULL) {
            return usage();
        }
        snprintf(files_dir, sizeof(files_dir), "%s/files", data);
        memset(&cfg, 0, sizeof(cfg));
        cfg.bind_addr = bind_addr;
        cfg.port = (uint16_t)port;
        cfg.files_dir = files_dir;
        cfg.key = key;
        cfg.key_len = (size_t)key_len;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        s = ota_files_http_start(&cfg);
        if (s == NULL) {
            return 1;
        }
        printf("INFO ready: port %u\n", (unsigned)ota_files_http_port(s));
        fflush(stdout);
        while (!stop_flag) {
            pause();
        }
        ota_files_http_stop(s);
        return 0;
    }
    return usage();
}
