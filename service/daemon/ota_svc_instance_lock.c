/* otter service: one process per client id on a data folder. See ota_svc_instance_lock.h. */
#define _POSIX_C_SOURCE 200809L

#include "ota_svc_instance_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The client id as a file name: characters other than A-Z a-z 0-9 _ . - become '_'. */
static void file_name(const char *client_id, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *c = client_id; *c != '\0' && n + 1 < cap; c++) {
        int ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                 *c == '_' || *c == '-' || (*c == '.' && n > 0);
        out[n++] = ok ? *c : '_';
    }
    out[n] = '\0';
}

int ota_svc_instance_lock(const char *data_dir, const char *client_id, char *err, size_t cap)
{
    char dir[4096], name[256], path[4400];
    file_name(client_id, name, sizeof name);
    snprintf(dir, sizeof dir, "%s/run", data_dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, cap, "cannot create %s: %s", dir, strerror(errno));
        return -2;
    }
    snprintf(path, sizeof path, "%s/%s.lock", dir, name);
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    if (fd < 0) {
        snprintf(err, cap, "cannot open %s: %s", path, strerror(errno));
        return -2;
    }
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    struct flock lk;
    memset(&lk, 0, sizeof lk);
    lk.l_type = F_WRLCK;
    lk.l_whence = SEEK_SET;
    if (fcntl(fd, F_SETLK, &lk) != 0) {
        int e = errno;
        if (e == EACCES || e == EAGAIN) {
            struct flock who = lk;
            long pid = fcntl(fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK ? (long)who.l_pid : 0;
            snprintf(err, cap,
                     "another otter-service (pid %ld) already runs as '%s' on this data folder "
                     "(%s): two processes with one client id take the broker connection from "
                     "each other. Stop it, or give this one its own --instance NAME",
                     pid, client_id, path);
            close(fd);
            return -1;
        }
        snprintf(err, cap, "cannot lock %s: %s", path, strerror(e));
        close(fd);
        return -2;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || write(fd, pid, (size_t)n) != n) {
        /* the lock holds all the same; the pid is only for people */
    }
    return fd;
}

void ota_svc_takeover_init(ota_svc_takeover_t *t)
{
    t->connected_ms = -1;
    t->short_lived = 0;
    t->reported = 0;
}

void ota_svc_takeover_connected(ota_svc_takeover_t *t, int64_t now_ms)
{
    t->connected_ms = now_ms;
}

int ota_svc_takeover_lost(ota_svc_takeover_t *t, int64_t now_ms)
{
    if (t->connected_ms < 0)
        return 0; /* not connected: a failed attempt, not a takeover */
    int64_t lasted = now_ms - t->connected_ms;
    t->connected_ms = -1;
    if (lasted >= OTA_SVC_TAKEOVER_MS) {
        t->short_lived = 0;
        t->reported = 0;
        return 0;
    }
    if (++t->short_lived < OTA_SVC_TAKEOVER_COUNT || t->reported)
        return 0;
    t->reported = 1;
    return 1;
}
