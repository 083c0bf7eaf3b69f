/* otter benchmarks: the link emulator (see link_emu.h for the model). */
#define _GNU_SOURCE
#include "link_emu.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_CONNECTIONS 16u
#define DEFAULT_SEED 0x9e3779b97f4a7c15ull
#define UP 0
#define DOWN 1

/* One segment: its bytes sit in the direction's slot of the same index. */
typedef struct seg {
    uint32_t len;
    uint32_t off; /* bytes already written */
    double t_dep; /* end of its serialization at the bottleneck */
    double t_due; /* when it is written to the receiver */
} seg_t;

/* One direction of one connection. Indices count segments since the start;
 * slot = index % slots. Segments head .. tail-1 are inside; of them, dep ..
 * tail-1 have not yet left the bottleneck (dep >= head). */
typedef struct dir {
    int src;
    int dst;
    uint8_t *data;
    seg_t *seg;
    size_t slots;
    size_t seg_bytes; /* bytes of a slot */
    uint64_t head, dep, tail;
    size_t held;   /* bytes of head .. tail-1 */
    size_t queued; /* bytes of dep .. tail-1 */
    double last_dep;
    double last_due;
    int eof; /* the sender's FIN was read */
    double fin_due;
    int fin_sent; /* the FIN was passed on (shutdown) */
    int want_write;
} dir_t;

typedef struct conn {
    int used;
    int fd[2]; /* client, target */
    dir_t d[2];
} conn_t;

/* What a direction's link is, after defaults. */
typedef struct link {
    double delay_s;
    double rate_Bps; /* bytes per second; 0: unlimited */
    size_t queue;    /* bottleneck buffer, bytes */
    size_t cap;      /* most bytes held */
    size_t slots;
} link_t;

struct link_emu {
    link_emu_config_t cfg;
    unsigned max;     /* connections at most */
    size_t seg_bytes; /* largest segment */
    link_t link[2];
    double rtt_s;
    double reorder_s;
    struct sockaddr_storage target;
    socklen_t target_len;
    int listen_fd;
    int port;
    int wake[2];
    pthread_t thread;
    int thread_up;
    pthread_mutex_t lock; /* guards stats; the thread holds it while it works */
    link_emu_stats_t stats;
    conn_t *conns;
    struct pollfd *pfd;
    uint64_t rng;
};

double link_emu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(char *why, size_t n, const char *text)
{
    if (why != NULL && n > 0u) {
        snprintf(why, n, "%s", text);
    }
    return -1;
}

static int bad_share(double p)
{
    return !(p >= 0.0 && p <= 1.0);
}

static int bad_dir(const link_emu_dir_config_t *d, size_t seg_bytes, char *why, size_t n)
{
    if (!(d->delay_ms >= 0.0 && d->delay_ms <= 60000.0)) {
        return fail(why, n, "a delay must be 0 .. 60000 ms");
    }
    if (!(d->rate_bps == 0.0 || (d->rate_bps >= 1000.0 && d->rate_bps <= 1e11))) {
        return fail(why, n, "a rate must be 0 (unlimited) or 1000 .. 1e11 bit/s");
    }
    if (d->queue_bytes != 0u && d->queue_bytes < seg_bytes) {
        return fail(why, n, "a bottleneck buffer must hold at least one segment");
    }
    if (d->queue_bytes > (size_t)1 << 30) {
        return fail(why, n, "a bottleneck buffer must be at most 1 GiB");
    }
    return 0;
}

int link_emu_check(const link_emu_config_t *cfg, char *why, size_t n)
{
    size_t seg_bytes;
    if (cfg == NULL) {
        return fail(why, n, "no configuration");
    }
    seg_bytes = cfg->segment_bytes == 0u ? LINK_EMU_SEGMENT_BYTES : cfg->segment_bytes;
    if (seg_bytes < 64u || seg_bytes > 65536u) {
        return fail(why, n, "the segment size must be 64 .. 65536 bytes");
    }
    if (cfg->listen_port < 0 || cfg->listen_port > 65535) {
        return fail(why, n, "the listening port must be 0 .. 65535");
    }
    if (cfg->target_host == NULL || cfg->target_host[0] == '\0') {
        return fail(why, n, "no target host");
    }
    if (cfg->target_port < 1 || cfg->target_port > 65535) {
        return fail(why, n, "the target port must be 1 .. 65535");
    }
    if (bad_dir(&cfg->up, seg_bytes, why, n) != 0 || bad_dir(&cfg->down, seg_bytes, why, n) != 0) {
        return -1;
    }
    if (bad_share(cfg->loss) || bad_share(cfg->reorder)) {
        return fail(why, n, "loss and reorder are shares, 0 .. 1");
    }
    if (!(cfg->reorder_ms >= 0.0 && cfg->reorder_ms <= 60000.0)) {
        return fail(why, n, "the reorder delay must be 0 .. 60000 ms");
    }
    if (cfg->max_connections > 1024u) {
        return fail(why, n, "at most 1024 connections");
    }
    return 0;
}

/* The link of one direction with its defaults, and the memory it may hold:
 * the buffer, plus what the rate delivers during the delay and the longest
 * extra delay (the segments behind a late one wait for it). */
static void make_link(link_t *l, const link_emu_dir_config_t *d, double rtt_s, double extra_s,
                      size_t seg_bytes)
{
    l->delay_s = d->delay_ms / 1e3;
    l->rate_Bps = d->rate_bps / 8.0;
    if (l->rate_Bps > 0.0) {
        double bdp = l->rate_Bps * rtt_s;
        double flight = l->rate_Bps * (l->delay_s + extra_s) * 1.25;
        l->queue = d->queue_bytes != 0u                     ? d->queue_bytes
                   : bdp > (double)LINK_EMU_QUEUE_MIN_BYTES ? (size_t)llround(bdp)
                                                            : LINK_EMU_QUEUE_MIN_BYTES;
        if (l->queue < seg_bytes) {
            l->queue = seg_bytes;
        }
        l->cap = l->queue + (size_t)ceil(flight) + 4u * seg_bytes;
    } else {
        l->queue = 0u;
        l->cap = LINK_EMU_HOLD_UNLIMITED;
    }
    /* Room for short segments too (small writes): twice the slots full ones need. */
    l->slots = 2u * (l->cap / seg_bytes) + 16u;
}

/* xorshift64*: uniform in [0, 1). */
static double uniform(link_emu_t *emu)
{
    uint64_t x = emu->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    emu->rng = x;
    return (double)((x * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- one direction ---- */

static int dir_can_read(const dir_t *d, const link_t *l)
{
    return !d->eof && d->tail - d->head < d->slots && d->held + d->seg_bytes <= l->cap &&
           (l->rate_Bps == 0.0 || d->queued + d->seg_bytes <= l->queue);
}

static void dir_departures(dir_t *d, double now)
{
    while (d->dep < d->tail && d->seg[d->dep % d->slots].t_dep <= now) {
        d->queued -= d->seg[d->dep % d->slots].len;
        d->dep++;
    }
}

/* A segment of len bytes was read at now into the tail's slot. */
static void dir_push(link_emu_t *emu, dir_t *d, const link_t *l, size_t len, double now,
                     link_emu_dir_stats_t *st)
{
    seg_t *s = &d->seg[d->tail % d->slots];
    double start = now > d->last_dep ? now : d->last_dep;
    double extra = 0.0;
    s->len = (uint32_t)len;
    s->off = 0u;
    s->t_dep = start + (l->rate_Bps > 0.0 ? (double)len / l->rate_Bps : 0.0);
    if (emu->cfg.reorder > 0.0 && uniform(emu) < emu->cfg.reorder) {
        extra = emu->reorder_s;
        st->reordered++;
    } else if (emu->cfg.loss > 0.0 && uniform(emu) < emu->cfg.loss) {
        extra = emu->rtt_s;
        st->lost++;
    }
    s->t_due = s->t_dep + l->delay_s + extra;
    if (s->t_due < d->last_due) {
        s->t_due = d->last_due; /* TCP delivers in order */
    }
    d->last_dep = s->t_dep;
    d->last_due = s->t_due;
    d->tail++;
    d->held += len;
    d->queued += len;
    if (d->queued > st->queue_peak) {
        st->queue_peak = d->queued;
    }
    if (d->held > st->held_peak) {
        st->held_peak = d->held;
    }
}

/* Write the segments that are due. Returns -1 when the receiver is gone. */
static int dir_write(dir_t *d, double now, link_emu_dir_stats_t *st)
{
    while (!d->want_write && d->head < d->tail) {
        seg_t *s = &d->seg[d->head % d->slots];
        const uint8_t *bytes = d->data + (d->head % d->slots) * d->seg_bytes;
        ssize_t n;
        if (s->t_due > now) {
            break;
        }
        if (s->off == 0u) {
            double late = now - s->t_due;
            st->late_sum_s += late;
            if (late > st->late_max_s) {
                st->late_max_s = late;
            }
            if (st->first_s == 0.0) {
                st->first_s = now;
                st->first_bytes = s->len;
            }
        }
        n = send(d->dst, bytes + s->off, s->len - s->off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                d->want_write = 1;
                break;
            }
            return -1;
        }
        s->off += (uint32_t)n;
        st->bytes += (uint64_t)n;
        if (s->off < s->len) {
            d->want_write = 1; /* the receiver's buffer is full: wait for room */
            break;
        }
        st->segments++;
        st->last_s = now;
        d->held -= s->len;
        d->head++;
    }
    if (d->eof && !d->fin_sent && d->head == d->tail && now >= d->fin_due) {
        (void)shutdown(d->dst, SHUT_WR);
        d->fin_sent = 1;
    }
    return 0;
}

/* Read while the link takes more; each segment is stamped with the time it is
 * read. Returns -1 when the sender is gone. */
static int dir_read(link_emu_t *emu, dir_t *d, const link_t *l, link_emu_dir_stats_t *st)
{
    while (dir_can_read(d, l)) {
        uint8_t *slot = d->data + (d->tail % d->slots) * d->seg_bytes;
        ssize_t n = recv(d->src, slot, d->seg_bytes, MSG_DONTWAIT);
        if (n > 0) {
            /* Stamped when read: the loop's time may be older than the bytes, which
             * would let them leave early. */
            dir_push(emu, d, l, (size_t)n, link_emu_now(), st);
        } else if (n == 0) {
            /* The FIN travels the link too, behind the last segment. */
            double at = link_emu_now();
            double start = at > d->last_dep ? at : d->last_dep;
            d->eof = 1;
            d->fin_due = start + l->delay_s;
            if (d->fin_due < d->last_due) {
                d->fin_due = d->last_due;
            }
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        } else {
            return -1;
        }
    }
    return 0;
}

/* Move one direction along: deliver, read, deliver what is due at once. */
static int dir_pump(link_emu_t *emu, dir_t *d, const link_t *l, double now,
                    link_emu_dir_stats_t *st)
{
    dir_departures(d, now);
    if (dir_write(d, now, st) != 0 || dir_read(emu, d, l, st) != 0) {
        return -1;
    }
    dir_departures(d, now);
    return dir_write(d, now, st);
}

/* The next time this direction has something to do; HUGE_VAL for none. */
static double dir_next(const dir_t *d, const link_t *l)
{
    double t = HUGE_VAL;
    if (d->head < d->tail && !d->want_write) {
        t = d->seg[d->head % d->slots].t_due;
    }
    if (!d->eof && l->rate_Bps > 0.0 && d->queued + d->seg_bytes > l->queue && d->dep < d->tail) {
        double dep = d->seg[d->dep % d->slots].t_dep; /* room at the bottleneck */
        t = dep < t ? dep : t;
    }
    if (d->eof && !d->fin_sent && d->head == d->tail) {
        t = d->fin_due < t ? d->fin_due : t;
    }
    return t;
}

/* ---- connections ---- */

static void conn_close(link_emu_t *emu, conn_t *c)
{
    for (int i = 0; i < 2; i++) {
        if (c->fd[i] >= 0) {
            close(c->fd[i]);
        }
        free(c->d[i].data);
        free(c->d[i].seg);
    }
    memset(c, 0, sizeof *c);
    emu->stats.open--;
}

static int nonblocking_nodelay(int fd)
{
    int one = 1;
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
        return -1;
    }
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int dir_init(dir_t *d, const link_t *l, size_t seg_bytes, int src, int dst)
{
    memset(d, 0, sizeof *d);
    d->src = src;
    d->dst = dst;
    d->slots = l->slots;
    d->seg_bytes = seg_bytes;
    d->data = malloc(l->slots * seg_bytes);
    d->seg = calloc(l->slots, sizeof *d->seg);
    return d->data != NULL && d->seg != NULL ? 0 : -1;
}

/* A client connected: connect to the target and relay, or close it. */
static void conn_accept(link_emu_t *emu, int client)
{
    conn_t *c = NULL;
    int target = -1;
    for (unsigned i = 0; i < emu->max && c == NULL; i++) {
        c = emu->conns[i].used ? NULL : &emu->conns[i];
    }
    if (c != NULL) {
        target = socket(emu->target.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    }
    if (target < 0 ||
        connect(target, (const struct sockaddr *)&emu->target, emu->target_len) != 0 ||
        nonblocking_nodelay(client) != 0 || nonblocking_nodelay(target) != 0) {
        if (target >= 0) {
            close(target);
        }
        close(client);
        emu->stats.refused++;
        return;
    }
    c->used = 1;
    c->fd[0] = client;
    c->fd[1] = target;
    emu->stats.open++;
    if (dir_init(&c->d[UP], &emu->link[UP], emu->seg_bytes, client, target) != 0 ||
        dir_init(&c->d[DOWN], &emu->link[DOWN], emu->seg_bytes, target, client) != 0) {
        conn_close(emu, c);
        emu->stats.refused++;
        return;
    }
    emu->stats.accepted++;
}

/* ---- the thread ---- */

static void *emu_thread(void *arg)
{
    link_emu_t *emu = arg;
    link_emu_dir_stats_t *st[2] = {&emu->stats.up, &emu->stats.down};
    struct sched_param sp = {.sched_priority = LINK_EMU_RT_PRIORITY};
    double listen_paused_until = 0.0;
    if (!emu->cfg.plain_priority && pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) == 0) {
        pthread_mutex_lock(&emu->lock);
        emu->stats.realtime = 1;
        pthread_mutex_unlock(&emu->lock);
    }
    for (;;) {
        double now = link_emu_now(), next = HUGE_VAL;
        nfds_t n = 2;
        struct timespec ts, *timeout = NULL;

        pthread_mutex_lock(&emu->lock);
        emu->pfd[0] = (struct pollfd){emu->wake[0], POLLIN, 0};
        /* After accept failed for want of resources, listen again 100 ms later. */
        emu->pfd[1] = (struct pollfd){now >= listen_paused_until ? emu->listen_fd : -1, POLLIN, 0};
        next = now >= listen_paused_until ? next : listen_paused_until;
        for (unsigned i = 0; i < emu->max; i++) {
            conn_t *c = &emu->conns[i];
            int bad = 0;
            if (!c->used) {
                continue;
            }
            for (int k = 0; k < 2 && !bad; k++) {
                bad = dir_pump(emu, &c->d[k], &emu->link[k], now, st[k]) != 0;
            }
            if (bad || (c->d[UP].fin_sent && c->d[DOWN].fin_sent)) {
                conn_close(emu, c);
                continue;
            }
            /* fd[k] is the source of direction k and the receiver of the other. */
            for (int k = 0; k < 2; k++) {
                short ev = (short)((dir_can_read(&c->d[k], &emu->link[k]) ? POLLIN : 0) |
                                   (c->d[1 - k].want_write ? POLLOUT : 0));
                double t = dir_next(&c->d[k], &emu->link[k]);
                emu->pfd[n++] = (struct pollfd){ev != 0 ? c->fd[k] : -1, ev, 0};
                next = t < next ? t : next;
            }
        }
        pthread_mutex_unlock(&emu->lock);

        if (next != HUGE_VAL) {
            double wait = next - link_emu_now();
            if (wait < 0.0) {
                wait = 0.0;
            }
            ts.tv_sec = (time_t)wait;
            ts.tv_nsec = (long)((wait - (double)ts.tv_sec) * 1e9);
            timeout = &ts;
        }
        if (ppoll(emu->pfd, n, timeout, NULL) < 0 && errno != EINTR) {
            break;
        }
        if (emu->pfd[0].revents != 0) {
            break; /* stop */
        }
        pthread_mutex_lock(&emu->lock);
        n = 2;
        for (unsigned i = 0; i < emu->max; i++) {
            conn_t *c = &emu->conns[i];
            if (!c->used) {
                continue;
            }
            for (int k = 0; k < 2; k++) {
                if (emu->pfd[n++].revents & (POLLOUT | POLLERR | POLLHUP)) {
                    c->d[1 - k].want_write = 0; /* try the write again */
                }
            }
        }
        if (emu->pfd[1].revents & POLLIN) {
            int fd = accept4(emu->listen_fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0) {
                conn_accept(emu, fd);
            } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                       errno != ECONNABORTED) {
                listen_paused_until = link_emu_now() + 0.1;
            }
        }
        pthread_mutex_unlock(&emu->lock);
    }
    return NULL;
}

/* ---- start and stop ---- */

static int resolve(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len)
{
    struct addrinfo hints, *res = NULL;
    char service[16];
    int rc;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    snprintf(service, sizeof service, "%d", port);
    rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0 || res == NULL) {
        fprintf(stderr, "link-emu: cannot resolve %s: %s\n", host, gai_strerror(rc));
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int listen_on(int port, int *bound)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        fprintf(stderr, "link-emu: cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    *bound = ntohs(sa.sin_port);
    return fd;
}

int link_emu_start(const link_emu_config_t *cfg, link_emu_t **out)
{
    char why[128];
    link_emu_t *emu;
    double extra;

    *out = NULL;
    if (link_emu_check(cfg, why, sizeof why) != 0) {
        fprintf(stderr, "link-emu: %s\n", why);
        return -1;
    }
    emu = calloc(1, sizeof *emu);
    if (emu == NULL) {
        return -1;
    }
    emu->cfg = *cfg;
    emu->cfg.target_host = NULL;
    emu->listen_fd = -1;
    emu->wake[0] = emu->wake[1] = -1;
    emu->max = cfg->max_connections == 0u ? DEFAULT_MAX_CONNECTIONS : cfg->max_connections;
    emu->seg_bytes = cfg->segment_bytes == 0u ? LINK_EMU_SEGMENT_BYTES : cfg->segment_bytes;
    emu->rtt_s = (cfg->up.delay_ms + cfg->down.delay_ms) / 1e3;
    emu->reorder_s = cfg->reorder_ms / 1e3;
    emu->rng = cfg->seed != 0u ? cfg->seed : DEFAULT_SEED;
    extra = cfg->loss > 0.0 ? emu->rtt_s : 0.0;
    if (cfg->reorder > 0.0 && emu->reorder_s > extra) {
        extra = emu->reorder_s;
    }
    make_link(&emu->link[UP], &cfg->up, emu->rtt_s, extra, emu->seg_bytes);
    make_link(&emu->link[DOWN], &cfg->down, emu->rtt_s, extra, emu->seg_bytes);
    emu->stats.up.queue_bytes = emu->link[UP].queue;
    emu->stats.down.queue_bytes = emu->link[DOWN].queue;
    emu->conns = calloc(emu->max, sizeof *emu->conns);
    emu->pfd = calloc(2u + 2u * emu->max, sizeof *emu->pfd);
    if (emu->conns == NULL || emu->pfd == NULL ||
        resolve(cfg->target_host, cfg->target_port, &emu->target, &emu->target_len) != 0 ||
        (emu->listen_fd = listen_on(cfg->listen_port, &emu->port)) < 0 ||
        pipe2(emu->wake, O_CLOEXEC) != 0 || pthread_mutex_init(&emu->lock, NULL) != 0) {
        link_emu_stop(emu);
        return -1;
    }
    if (pthread_create(&emu->thread, NULL, emu_thread, emu) != 0) {
        fprintf(stderr, "link-emu: cannot start the thread\n");
        pthread_mutex_destroy(&emu->lock);
        link_emu_stop(emu);
        return -1;
    }
    emu->thread_up = 1;
    *out = emu;
    return 0;
}

int link_emu_port(const link_emu_t *emu)
{
    return emu->port;
}

void link_emu_get_stats(link_emu_t *emu, link_emu_stats_t *out)
{
    pthread_mutex_lock(&emu->lock);
    *out = emu->stats;
    pthread_mutex_unlock(&emu->lock);
}

void link_emu_stop(link_emu_t *emu)
{
    if (emu == NULL) {
        return;
    }
    if (emu->thread_up) {
        ssize_t w = write(emu->wake[1], "x", 1);
        (void)w;
        pthread_join(emu->thread, NULL);
        pthread_mutex_destroy(&emu->lock);
    }
    for (unsigned i = 0; emu->conns != NULL && i < emu->max; i++) {
        if (emu->conns[i].used) {
            conn_close(emu, &emu->conns[i]);
        }
    }
    for (int i = 0; i < 2; i++) {
        if (emu->wake[i] >= 0) {
            close(emu->wake[i]);
        }
    }
    if (emu->listen_fd >= 0) {
        close(emu->listen_fd);
    }
    free(emu->conns);
    free(emu->pfd);
    free(emu);
}
