/* otter's HTTP daemons: shared helpers around libmicrohttpd (see ota_httpd.h). */
#define _POSIX_C_SOURCE 200809L
#include "ota_httpd.h"

#include "ota_text_escape.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *g_prog = "otter";
static int g_level = OTA_HTTPD_INFO;

void ota_httpd_log_setup(const char *prog, int level)
{
    g_prog = prog;
    g_level = level;
}

void ota_httpd_log(int level, const char *fmt, ...)
{
    static const char *const names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    char stamp[32], text[1024], safe[sizeof text * OTA_TEXT_ESCAPE_GROWTH];
    struct timespec ts;
    struct tm tm;
    if (level > g_level) {
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    /* A request's path, a client's text: no control character or bidi override
     * reaches the log, so every line is one of ours. */
    ota_text_escape(text, strlen(text), safe, sizeof safe);
    fprintf(stderr, "%s %s %s %s\n", stamp, g_prog,
            names[level < 0   ? 0
                  : level > 3 ? 3
                              : level],
            safe);
}

void ota_httpd_mhd_log(void *ctx, const char *fmt, va_list ap)
{
    char text[512];
    (void)ctx;
    vsnprintf(text, sizeof text, fmt, ap);
    size_t n = strlen(text);
    while (n > 0 && text[n - 1] == '\n') {
        text[--n] = '\0';
    }
    ota_httpd_log(OTA_HTTPD_DEBUG, "microhttpd: %s", text);
}

size_t ota_httpd_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    size_t n = MHD_http_unescape(s);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\0') {
            s[i] = 0x7f;
        }
    }
    return n;
}

void ota_httpd_client_address(struct MHD_Connection *c, char *out, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, cap, "?");
    if (ci == NULL || ci->client_addr == NULL) {
        return;
    }
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)cap);
    } else if (sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)cap);
    }
}

char *ota_httpd_read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int ch;
    while ((ch = fgetc(f)) != EOF && len < 1024 * 1024) {
        if (len + 2 > cap) {
            cap = cap ? cap * 2 : 4096;
            char *nb = realloc(buf, cap);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        buf[len++] = (char)ch;
    }
    fclose(f);
    if (buf != NULL) {
        buf[len] = '\0';
    }
    return buf;
}

int ota_httpd_address(const char *bind, int port, struct sockaddr_storage *ss, int *ipv6)
{
    memset(ss, 0, sizeof *ss);
    *ipv6 = strchr(bind, ':') != NULL;
    if (*ipv6) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        return inet_pton(AF_INET6, bind, &a6->sin6_addr) == 1 ? 0 : -1;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, bind, &a4->sin_addr) == 1 ? 0 : -1;
}
