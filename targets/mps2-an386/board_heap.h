/*
 * otter on mps2-an386: the static pool mbed TLS allocates from while it
 * parses the signer's certificate and checks a signature (no heap).
 */
#ifndef BOARD_HEAP_H
#define BOARD_HEAP_H

#include <stddef.h>

/** Bytes of the pool. */
#define BOARD_MBEDTLS_POOL 12288u

/** Point mbed TLS's calloc and free at the pool (once, at start-up). */
void board_heap_init(void);

#endif /* BOARD_HEAP_H */
