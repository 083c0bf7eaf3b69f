/*
 * otter on mps2-an386: the conformance suite on the emulated Cortex-M4. The
 * suite (conformance/ota_conformance_suite.c, unchanged) runs against the
 * board's test device, its flash the board's emulated NOR region written
 * through to a host file over semihosting (the second word of the
 * semihosting command line), which every reboot reads back. Test keys and
 * signatures are read from the source tree over semihosting (newlib's
 * rdimon). The results are printed on the host's console and the emulation
 * ends with the number of failed cases as its exit status.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "board_conformance.h"
#include "board_test_keyfile.h"
#include "board_layout.h"
#include "ota_test_sign.h"
#include "semihost.h"

#define SEMIHOST_MODE_WPLUSB 7

void initialise_monitor_handles(void);
void board_pre_main(void);

static int32_t g_fd = -1;

void board_pre_main(void)
{
    initialise_monitor_handles();
    setvbuf(stdout, NULL, _IONBF, 0);
}

static uint8_t *target_memory(void *ctx)
{
    (void)ctx;
    return (uint8_t *)(uintptr_t)BOARD_FLASH_BASE;
}

static int target_create(void *ctx, const uint8_t *mem, uint32_t size)
{
    char line[256];
    const char *path;
    (void)ctx;
    if (g_fd < 0) {
        if (semihost_cmdline(line, sizeof line) != 0 || (path = strchr(line, ' ')) == NULL) {
            return -1;
        }
        g_fd = semihost_open(path + 1, SEMIHOST_MODE_WPLUSB);
    }
    return g_fd >= 0 && semihost_seek(g_fd, 0) == 0 && semihost_write(g_fd, mem, size) == 0 ? 0
                                                                                            : -1;
}

static ota_err_t target_persist(void *ctx, uint32_t addr, const uint8_t *data, uint32_t len)
{
    (void)ctx;
    return semihost_seek(g_fd, addr) == 0 && semihost_write(g_fd, data, len) == 0 ? OTA_OK
                                                                                  : OTA_ERR_IO;
}

static int target_load(void *ctx, uint8_t *mem, uint32_t size)
{
    (void)ctx;
    return semihost_seek(g_fd, 0) == 0 && semihost_read(g_fd, mem, size) == 0 ? 0 : -1;
}

static const board_conf_backing_t target_backing = {NULL, target_memory, target_create,
                                                    target_persist, target_load};

const ota_conformance_port_t ota_conformance_ports[] = {
    BOARD_CONFORMANCE_PORT("mps2-an386", &target_backing),
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};

void *_sbrk(ptrdiff_t incr);

/* The test program's heap (the suite's calloc): from the end of the image's
 * RAM up to the hand-over area. Replaces rdimon's, which expects the stack
 * above the heap. */
void *_sbrk(ptrdiff_t incr)
{
    extern char end;
    static char *brk;
    if (brk == NULL) {
        brk = &end;
    }
    if (incr < 0 || (uintptr_t)brk + (uintptr_t)incr > BOARD_HANDOFF_ADDR) {
        return (void *)-1;
    }
    char *p = brk;
    brk += incr;
    return p;
}

int board_pk_parse_keyfile(mbedtls_pk_context *ctx, const char *path, const char *password)
{
    static unsigned char pem[4096];
    size_t len = 0;
    if (ota_test_read_file(path, pem, sizeof pem - 1u, &len) != 0) {
        return -1;
    }
    pem[len] = '\0'; /* mbed TLS wants PEM with its terminating NUL */
    return mbedtls_pk_parse_key(ctx, pem, len + 1u, (const unsigned char *)password,
                                password != NULL ? strlen(password) : 0u);
}
