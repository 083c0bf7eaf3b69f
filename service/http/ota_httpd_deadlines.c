/* otter's HTTP daemons: a deadline per connection (see ota_httpd_deadlines.h). */
#define _POSIX_C_SOURCE 200809L
#include "ota_httpd_deadlines.h"

#include "ota_httpd.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

/* A connection. */
typedef struct entry {
    struct entry *prev, *next;
    MHD_socket fd;
    long long deadline_ms; /* monotonic; OTA_HTTPD_DEADLINE_NONE while a request is answered */
    int cut;               /* 1: shut down by its deadline */
    int served; /* requests answered on it (past the first, a cut is an idle keep-alive) */
    char client[64];
} entry_t;

struct ota_httpd_deadlines {
    pthread_mutex_t lock;
    entry_t *conns;
    long long first_ms;
    int log_cuts;
};

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long deadline_in(long long in_ms)
{
    return in_ms < 0 ? OTA_HTTPD_DEADLINE_NONE : mono_ms() + in_ms;
}

ota_httpd_deadlines_t *ota_httpd_deadlines_new(long long first_ms, int log_cuts)
{
    ota_httpd_deadlines_t *t = calloc(1, sizeof *t);
    if (t == NULL) {
        return NULL;
    }
    if (pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t);
        return NULL;
    }
    t->first_ms = first_ms;
    t->log_cuts = log_cuts;
    return t;
}

void ota_httpd_deadlines_free(ota_httpd_deadlines_t *t)
{
    if (t == NULL) {
        return;
    }
    while (t->conns != NULL) {
        entry_t *e = t->conns;
        t->conns = e->next;
        free(e);
    }
    pthread_mutex_destroy(&t->lock);
    free(t);
}

void ota_httpd_deadlines_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                                enum MHD_ConnectionNotificationCode toe)
{
    ota_httpd_deadlines_t *t = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        entry_t *e = calloc(1, sizeof *e);
        if (e == NULL || ci == NULL) {
            free(e); /* without memory the connection only lacks the deadline */
            *socket_context = NULL;
            return;
        }
        e->fd = ci->connect_fd;
        e->deadline_ms = deadline_in(t->first_ms);
        if (t->log_cuts) {
            ota_httpd_client_address(c, e->client, sizeof e->client);
        }
        pthread_mutex_lock(&t->lock);
        e->next = t->conns;
        if (t->conns != NULL) {
            t->conns->prev = e;
        }
        t->conns = e;
        pthread_mutex_unlock(&t->lock);
        *socket_context = e;
        return;
    }
    if (toe != MHD_CONNECTION_NOTIFY_CLOSED || *socket_context == NULL) {
        return;
    }
    /* Called before libmicrohttpd closes the socket: once the entry is off the list under
     * the lock, ota_httpd_deadlines_cut() no longer uses its number, which is not reused
     * before then. */
    entry_t *e = *socket_context;
    pthread_mutex_lock(&t->lock);
    if (e->prev != NULL) {
        e->prev->next = e->next;
    } else {
        t->conns = e->next;
    }
    if (e->next != NULL) {
        e->next->prev = e->prev;
    }
    pthread_mutex_unlock(&t->lock);
    free(e);
    *socket_context = NULL;
}

void ota_httpd_deadlines_set(ota_httpd_deadlines_t *t, struct MHD_Connection *c, long long in_ms,
                             int served)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (ci == NULL || ci->socket_context == NULL) {
        return;
    }
    entry_t *e = ci->socket_context;
    long long deadline = deadline_in(in_ms);
    pthread_mutex_lock(&t->lock);
    e->deadline_ms = deadline;
    e->served += served;
    pthread_mutex_unlock(&t->lock);
}

unsigned ota_httpd_deadlines_cut(ota_httpd_deadlines_t *t)
{
    unsigned n = 0;
    long long now = mono_ms();
    /* The lock keeps every listed socket number valid while it is used: a connection leaves
     * the list (ota_httpd_deadlines_notify()) before libmicrohttpd closes its socket. */
    pthread_mutex_lock(&t->lock);
    for (entry_t *e = t->conns; e != NULL; e = e->next) {
        if (e->cut || e->deadline_ms == OTA_HTTPD_DEADLINE_NONE || now < e->deadline_ms) {
            continue;
        }
        /* Shut down, not closed: libmicrohttpd's thread sees the end and closes it itself. */
        shutdown(e->fd, SHUT_RDWR);
        e->cut = 1;
        n++;
        if (t->log_cuts) {
            ota_httpd_log(e->served ? OTA_HTTPD_DEBUG : OTA_HTTPD_INFO,
                          "connection closed: %s did not arrive in time (%s)",
                          e->served ? "no further request" : "its request", e->client);
        }
    }
    pthread_mutex_unlock(&t->lock);
    return n;
}
