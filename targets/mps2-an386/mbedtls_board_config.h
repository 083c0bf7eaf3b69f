/*
 * otter on mps2-an386: the mbed TLS 2.28 configuration of the board's
 * images: what verify/ota_verify.c needs, bench/footprint/
 * mbedtls_device_config.h (SHA-256, ECDSA on secp256r1 without a random
 * generator, PK and X.509 parsing, PEM), with mbed TLS's allocations served from a static
 * pool (MBEDTLS_MEMORY_BUFFER_ALLOC_C): the board has no heap. The
 * conformance firmware (BOARD_CONFORMANCE) adds what test signing needs.
 */
#ifndef BOARD_MBEDTLS_CONFIG_H
#define BOARD_MBEDTLS_CONFIG_H

#if defined(BOARD_CONFORMANCE)
/* The conformance firmware is a test program: it signs test images with the
 * test key (read over semihosting, parsed from memory), allocates from the C library's heap, and
 * needs a random generator for signing, which the test-only null entropy
 * source feeds. Never in a device image. */
#define MBEDTLS_ENTROPY_C
#define MBEDTLS_CTR_DRBG_C
#define MBEDTLS_AES_C
#define MBEDTLS_SHA512_C
#define MBEDTLS_NO_PLATFORM_ENTROPY
#define MBEDTLS_NO_DEFAULT_ENTROPY_SOURCES
#define MBEDTLS_TEST_NULL_ENTROPY
#else
#define MBEDTLS_PLATFORM_MEMORY
#define MBEDTLS_MEMORY_BUFFER_ALLOC_C
/* No C library heap and no exit: the pool replaces calloc/free (the defaults
 * below only stand in until board_heap_init()), a damaged pool ends the
 * emulation. */
#include <stddef.h>
void *board_no_calloc(size_t n, size_t size);
void board_no_free(void *p);
void board_mbedtls_exit(int status);
#define MBEDTLS_PLATFORM_STD_CALLOC board_no_calloc
#define MBEDTLS_PLATFORM_STD_FREE board_no_free
#define MBEDTLS_PLATFORM_EXIT_MACRO board_mbedtls_exit
#endif
/* RSA code signatures (OTA_SIG_RSA=1 builds only): RSA-2048/3072 PKCS#1
 * v1.5 verification over the bignum module ECDSA already uses. ECDSA-only
 * builds carry no RSA code. */
#if defined(OTA_SIG_RSA) && OTA_SIG_RSA
#define MBEDTLS_RSA_C
#define MBEDTLS_PKCS1_V15
#endif
/* Then the verification set of the footprint benchmark, so the board links
 * the mbed TLS the size table measures; it ends with mbed TLS's check of the
 * whole configuration. */
#include "mbedtls_device_config.h"

#endif /* BOARD_MBEDTLS_CONFIG_H */
