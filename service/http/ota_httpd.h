/*
 * otter's HTTP daemons (otter-http, otter-web): what both do around
 * libmicrohttpd the same way: log lines, the library's own log, URL
 * decoding, client addresses, PEM files and the listening address
 * (connection deadlines: ota_httpd_deadlines.h).
 *
 * Host code. The log is written to stderr as
 * "<UTC time> <program> <LEVEL> <text>", one line per call, thread-safe.
 */
#ifndef OTA_HTTPD_H
#define OTA_HTTPD_H

#include <stdarg.h>
#include <stddef.h>
#include <sys/socket.h>

#include <microhttpd.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Log levels, most important first. */
enum ota_httpd_level { OTA_HTTPD_ERROR, OTA_HTTPD_WARN, OTA_HTTPD_INFO, OTA_HTTPD_DEBUG };

/**
 * Names the program in log lines and sets the level (lines above it are dropped).
 * @param prog a static string, e.g. "otter-web".
 */
void ota_httpd_log_setup(const char *prog, int level);

/** Writes one log line at a level: "STAMP PROG LEVEL text" on stderr, the text with every
 * control character and bidi override shown as an escape (ota_text_escape()). */
void ota_httpd_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** libmicrohttpd's MHD_OPTION_EXTERNAL_LOGGER: its messages as DEBUG lines. */
void ota_httpd_mhd_log(void *ctx, const char *fmt, va_list ap);

/**
 * libmicrohttpd's MHD_OPTION_UNESCAPE_CALLBACK: percent-decoding, with a
 * decoded NUL (%00) turned into 0x7f, a byte no valid path, name or number
 * holds, so nothing is cut short.
 */
size_t ota_httpd_unescape(void *cls, struct MHD_Connection *c, char *s);

/**
 * Writes a connection's client address (IPv4 or IPv6 text, without the port) into out,
 * or "?" when it is unknown.
 */
void ota_httpd_client_address(struct MHD_Connection *c, char *out, size_t cap);

/**
 * Reads a text file (a PEM certificate or key) of at most 1 MiB.
 * @return the NUL-terminated text (heap, the caller frees it), or NULL.
 */
char *ota_httpd_read_text(const char *path);

/**
 * Fills a socket address from an IPv4 or IPv6 text and a port.
 * @param ipv6 receives 1 for an IPv6 address (give MHD_USE_IPv6), else 0.
 * @return 0, or -1 for a bad address.
 */
int ota_httpd_address(const char *bind, int port, struct sockaddr_storage *ss, int *ipv6);

#ifdef __cplusplus
}
#endif

#endif /* OTA_HTTPD_H */
