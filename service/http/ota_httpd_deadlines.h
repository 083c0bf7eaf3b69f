/*
 * otter's HTTP daemons: a deadline per connection, enforced from outside
 * libmicrohttpd.
 *
 * libmicrohttpd's connection timeout counts from the last byte received, so a
 * client sending one byte of a never-ending request every few seconds holds its
 * connection (one of a limited number of slots) for ever. A tracker notes every
 * connection when it opens, with a deadline; the daemon moves or clears the
 * deadline as requests arrive and answers complete, and one thread (the main
 * one) periodically shuts down the sockets of connections past theirs, which
 * libmicrohttpd then sees closed and cleans up.
 *
 * Deadlines are durations from now, on a monotonic clock, or
 * OTA_HTTPD_DEADLINE_NONE. Host code; every function is thread-safe.
 */
#ifndef OTA_HTTPD_DEADLINES_H
#define OTA_HTTPD_DEADLINES_H

#include <microhttpd.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A deadline duration meaning none: the connection is never cut (a request being answered). */
#define OTA_HTTPD_DEADLINE_NONE (-1LL)

/** Open connections and their deadlines. */
typedef struct ota_httpd_deadlines ota_httpd_deadlines_t;

/**
 * Makes a tracker.
 * @param first_ms the deadline of a new connection, in milliseconds from its start.
 * @param log_cuts 1: log each cut connection with its client address, at INFO while no request
 *                 was answered on it yet, at DEBUG after (an idle keep-alive); 0: log nothing.
 * @return the tracker (free it with ota_httpd_deadlines_free()), or NULL without memory.
 */
ota_httpd_deadlines_t *ota_httpd_deadlines_new(long long first_ms, int log_cuts);

/**
 * Frees a tracker, after its daemon has stopped (MHD_stop_daemon()). NULL is allowed.
 */
void ota_httpd_deadlines_free(ota_httpd_deadlines_t *t);

/**
 * libmicrohttpd's MHD_OPTION_NOTIFY_CONNECTION callback, the tracker as its cls: notes a
 * started connection (its socket and, with log_cuts, its client address; the socket context
 * becomes its entry) and forgets a closed one. Without memory a connection only lacks a deadline.
 */
void ota_httpd_deadlines_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                                enum MHD_ConnectionNotificationCode toe);

/**
 * Sets a connection's deadline.
 * @param in_ms milliseconds from now, or OTA_HTTPD_DEADLINE_NONE.
 * @param served 1: one more request was answered on it (for the log of a cut), else 0.
 * A connection the tracker does not know (no memory at its start) is left alone.
 */
void ota_httpd_deadlines_set(ota_httpd_deadlines_t *t, struct MHD_Connection *c, long long in_ms,
                             int served);

/**
 * Shuts down (shutdown(SHUT_RDWR)) the sockets of connections past their deadline and not cut
 * yet, logging each if the tracker was made so. Call it from one thread, periodically.
 * @return how many connections were cut by this call.
 */
unsigned ota_httpd_deadlines_cut(ota_httpd_deadlines_t *t);

#ifdef __cplusplus
}
#endif

#endif /* OTA_HTTPD_DEADLINES_H */
