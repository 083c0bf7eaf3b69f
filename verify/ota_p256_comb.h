/*
 * otter: P-256's generator, multiples precomputed for mbed TLS 2's comb
 * method (private to verify/).
 *
 * mbed TLS 2 verifies an ECDSA signature as u1 * G + u2 * Q, each by the comb
 * method, and first computes a table of multiples of the point: for G that is
 * about a quarter of the whole verification (4.9 M of 18.2 M instructions on
 * x86-64). It keeps G's table in the group once computed (ecp_group.T), but
 * the group lives only as long as the parsed key, so every verification
 * computed it again. This table is that same table, computed once by mbed TLS
 * itself (verify/tools/ota_p256_comb_gen.c) and kept in ROM, so verification
 * starts with it; mbed TLS 3 does the same with its own built-in tables.
 *
 * The table's layout is mbed TLS's: for a window of w = 4 bits and
 * d = ceil(256 / 4) = 64, entry i (0 .. 7) is the affine point
 * sum over bits j of i of 2^(j * d) * G. It is used only where that layout
 * holds (OTA_P256_COMB below); the verify tests compare it with the table
 * the linked mbed TLS computes, entry by entry.
 */
#ifndef OTA_P256_COMB_H
#define OTA_P256_COMB_H

#include "mbedtls/ecp.h"
#include "mbedtls/version.h"

/* mbed TLS 2.16 .. 2.28 with its own ECP code, the fixed-point speed-up and
 * a window of 4 (so 8 entries for P-256's G); otherwise 0 and no table. */
#if MBEDTLS_VERSION_NUMBER >= 0x02100000 && MBEDTLS_VERSION_NUMBER < 0x03000000 &&                 \
    defined(MBEDTLS_ECP_C) && defined(MBEDTLS_ECDSA_C) &&                                          \
    defined(MBEDTLS_ECP_DP_SECP256R1_ENABLED) && !defined(MBEDTLS_ECP_ALT) &&                      \
    !defined(MBEDTLS_ECP_INTERNAL_ALT) && !defined(MBEDTLS_ECDSA_VERIFY_ALT) &&                    \
    MBEDTLS_ECP_FIXED_POINT_OPTIM == 1 && MBEDTLS_ECP_WINDOW_SIZE == 4
#define OTA_P256_COMB 1
#else
#define OTA_P256_COMB 0
#endif

/** Entries of the table: 2^(w - 1) for w = 4. */
#define OTA_P256_COMB_POINTS 8u

#if OTA_P256_COMB
/**
 * The table (read-only; mbed TLS only reads it). Put it in a P-256 group's T
 * before a verification and take it out again before the group is freed:
 * mbed TLS would free a table it finds there.
 */
extern const mbedtls_ecp_point ota_p256_comb_g[OTA_P256_COMB_POINTS];
#endif

#endif /* OTA_P256_COMB_H */
