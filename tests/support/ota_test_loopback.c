/*
 * otter TEST SUPPORT: TCP sockets on 127.0.0.1 (see ota_test_loopback.h).
 */
#define _GNU_SOURCE
#include "ota_test_loopback.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The address 127.0.0.1:port. */
static struct sockaddr_in loopback(int port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    return a;
}

/* A TCP socket bound to 127.0.0.1 on a port the kernel chooses; the socket and *port, or -1
 * (errno set, *what names the call that failed). */
static int bind_loopback(int *port, const char **what)
{
    struct sockaddr_in a = loopback(0);
    socklen_t alen = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *what = "socket";
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        *what = "bind";
    } else if (getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
        *what = "getsockname";
    } else {
        *port = ntohs(a.sin_port);
        return fd;
    }
    int err = errno;
    close(fd);
    errno = err;
    return -1;
}

int ota_test_free_port(void)
{
    const char *what = NULL;
    int port = -1;
    int fd = bind_loopback(&port, &what);
    if (fd < 0) {
        return -1;
    }
    close(fd);
    return port;
}

int ota_test_listen_loopback(int *port)
{
    const char *what = NULL;
    int p = 0;
    int fd = bind_loopback(&p, &what);
    if (fd >= 0 && listen(fd, 16) != 0) {
        int err = errno;
        close(fd);
        errno = err;
        fd = -1;
        what = "listen";
    }
    if (fd < 0) {
        fprintf(stderr, "ota_test_listen_loopback: %s on 127.0.0.1 failed: %s\n", what,
                strerror(errno));
        return -1;
    }
    *port = p;
    return fd;
}

int ota_test_connect_loopback(int port)
{
    struct sockaddr_in a = loopback(port);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int err = errno;
        close(fd);
        errno = err;
        fd = -1;
    }
    return fd;
}
