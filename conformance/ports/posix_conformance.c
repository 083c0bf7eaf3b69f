/* otter: the posix port's entry in the conformance suite (files in a temporary directory). */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ota_conformance_ports.h"
#include "otter/ota_port_posix.h"

typedef struct posix_device {
    char root[64];
    ota_port_posix_t port;
} posix_device_t;

static int write_file(const char *path, const uint8_t *data, uint32_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        return -1;
    }
    int ok = fwrite(data, 1, len, f) == len;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

static int posix_boot(posix_device_t *d, ota_pal_t *pal)
{
    ota_port_posix_config_t cfg = {d->root, OTA_TEST_KEYS_DIR, OTA_CONFORMANCE_CERT, 256u * 1024u};
    /* Nothing of the previous boot survives but the files. */
    memset(&d->port, 0xa5, sizeof d->port);
    return ota_port_posix_init(&d->port, &cfg, pal) == OTA_OK ? 0 : -1;
}

int posix_conformance_setup(const void *param, const uint8_t *factory, uint32_t len, void **dev,
                            ota_pal_t *pal)
{
    char path[96];
    (void)param;
    posix_device_t *d = calloc(1, sizeof *d);
    if (d == NULL) {
        return -1;
    }
    strcpy(d->root, "/tmp/otter-conformance-XXXXXX");
    if (mkdtemp(d->root) == NULL) {
        free(d);
        return -1;
    }
    snprintf(path, sizeof path, "%s/current.bin", d->root);
    if (write_file(path, factory, len) != 0 || posix_boot(d, pal) != 0) {
        free(d);
        return -1;
    }
    *dev = d;
    return 0;
}

int posix_conformance_reboot(void *dev, ota_pal_t *pal)
{
    posix_device_t *d = dev;
    ota_port_posix_deinit(&d->port);
    return posix_boot(d, pal);
}

int posix_conformance_running_is(void *dev, const uint8_t *img, uint32_t len)
{
    posix_device_t *d = dev;
    char path[96];
    uint8_t buf[4096];
    snprintf(path, sizeof path, "%s/current.bin", d->root);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return 0;
    }
    int same = 1;
    uint32_t off = 0;
    size_t n;
    while (same && (n = fread(buf, 1, sizeof buf, f)) > 0) {
        same = off + n <= len && memcmp(buf, img + off, n) == 0;
        off += (uint32_t)n;
    }
    fclose(f);
    return same && off == len;
}

void posix_conformance_teardown(void *dev)
{
    posix_device_t *d = dev;
    static const char *const names[] = {"current.bin", "previous.bin", "pending.bin",
                                        "receive.tmp", "state",        "state.tmp",
                                        "progress",    "progress.tmp"};
    char path[96];
    ota_port_posix_deinit(&d->port);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", d->root, names[i]);
        (void)unlink(path);
    }
    (void)rmdir(d->root);
    free(d);
}

int posix_conformance_fail_next_read(void *dev)
{
    posix_device_t *d = dev;
    char path[96];
    /* The port reads the file through its descriptor: put one there that is
     * open for writing only, so that every read of it fails until it is closed. */
    snprintf(path, sizeof path, "%s/receive.tmp", d->root);
    int fd = open(path, O_WRONLY);
    if (fd < 0 || d->port.rx_fd < 0 || dup2(fd, d->port.rx_fd) < 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    close(fd);
    return 0;
}
