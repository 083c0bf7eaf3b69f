/*
 * otter on mps2-an386: Arm semihosting, the board's line to the host (QEMU
 * with -semihosting-config enable=on,target=native): the console, the flash
 * file, the command line and the exit status.
 */
#ifndef SEMIHOST_H
#define SEMIHOST_H

#include <stddef.h>
#include <stdint.h>

/** Open modes (the semihosting fopen mode numbers). */
#define SEMIHOST_MODE_RB 1
#define SEMIHOST_MODE_RPLUSB 3

/** Write a NUL-terminated string to the host's console. */
void semihost_puts(const char *s);

/** Open a host file; the handle, or -1. */
int32_t semihost_open(const char *path, int mode);

/** Close a handle. */
void semihost_close(int32_t fd);

/** Length of an open file, or -1. */
int32_t semihost_flen(int32_t fd);

/** Move to byte pos; 0 or -1. */
int semihost_seek(int32_t fd, uint32_t pos);

/** Read len bytes; 0 when all were read, else -1. */
int semihost_read(int32_t fd, void *buf, uint32_t len);

/** Write len bytes; 0 when all were written, else -1. */
int semihost_write(int32_t fd, const void *buf, uint32_t len);

/** The command line QEMU was given (-semihosting-config arg=...); 0 or -1. */
int semihost_cmdline(char *buf, uint32_t cap);

/** Centiseconds since the program started (the host's clock). */
uint32_t semihost_clock_cs(void);

/** End the emulation with an exit status (SYS_EXIT_EXTENDED). */
void semihost_exit(int status) __attribute__((noreturn));

#endif /* SEMIHOST_H */
