/* otter on mps2-an386: Arm semihosting calls (see semihost.h). */
#include "semihost.h"

#include <string.h>

#define SYS_OPEN 0x01u
#define SYS_CLOSE 0x02u
#define SYS_WRITE0 0x04u
#define SYS_WRITE 0x05u
#define SYS_READ 0x06u
#define SYS_SEEK 0x0au
#define SYS_FLEN 0x0cu
#define SYS_CLOCK 0x10u
#define SYS_GET_CMDLINE 0x15u
#define SYS_EXIT_EXTENDED 0x20u
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

/* One semihosting call: operation in r0, argument block in r1, result in r0. */
static int32_t call(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return (int32_t)r0;
}

void semihost_puts(const char *s)
{
    (void)call(SYS_WRITE0, s);
}

int32_t semihost_open(const char *path, int mode)
{
    uint32_t args[3] = {(uint32_t)(uintptr_t)path, (uint32_t)mode, (uint32_t)strlen(path)};
    return call(SYS_OPEN, args);
}

void semihost_close(int32_t fd)
{
    uint32_t args[1] = {(uint32_t)fd};
    (void)call(SYS_CLOSE, args);
}

int32_t semihost_flen(int32_t fd)
{
    uint32_t args[1] = {(uint32_t)fd};
    return call(SYS_FLEN, args);
}

int semihost_seek(int32_t fd, uint32_t pos)
{
    uint32_t args[2] = {(uint32_t)fd, pos};
    return call(SYS_SEEK, args) == 0 ? 0 : -1;
}

int semihost_read(int32_t fd, void *buf, uint32_t len)
{
    uint32_t args[3] = {(uint32_t)fd, (uint32_t)(uintptr_t)buf, len};
    return call(SYS_READ, args) == 0 ? 0 : -1; /* the call returns the bytes NOT read */
}

int semihost_write(int32_t fd, const void *buf, uint32_t len)
{
    uint32_t args[3] = {(uint32_t)fd, (uint32_t)(uintptr_t)buf, len};
    return call(SYS_WRITE, args) == 0 ? 0 : -1;
}

int semihost_cmdline(char *buf, uint32_t cap)
{
    uint32_t args[2] = {(uint32_t)(uintptr_t)buf, cap};
    return call(SYS_GET_CMDLINE, args) == 0 ? 0 : -1;
}

uint32_t semihost_clock_cs(void)
{
    return (uint32_t)call(SYS_CLOCK, NULL);
}

void semihost_exit(int status)
{
    uint32_t args[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)status};
    (void)call(SYS_EXIT_EXTENDED, args);
    for (;;) {
    }
}
