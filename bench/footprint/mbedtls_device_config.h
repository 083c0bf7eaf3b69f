/*
 * otter: the mbed TLS 2.28 configuration of the footprint benchmark (table 3,
 * bench/footprint.sh): what verify/ota_verify.c needs on a device and nothing
 * else. Used as MBEDTLS_CONFIG_FILE in place of mbed TLS's own config.h.
 *
 * ota_verify.c parses a PEM certificate or public key, hashes the file with
 * SHA-256 and checks an ECDSA P-256 signature. That takes SHA-256 and the
 * message-digest layer, bignum, ECP with secp256r1 only, ECDSA, ASN.1, OID,
 * PK parsing, X.509 certificate parsing, PEM and base64. There is no
 * threading, file system, network, clock, entropy source or random generator:
 * verification handles no secret, so ECP's internal random generator (blinding
 * against side channels, which would pull in a DRBG) is turned off, as mbed
 * TLS documents for verification-only builds.
 *
 * mbed TLS allocates through calloc/free (the platform layer without
 * MBEDTLS_PLATFORM_MEMORY); a device may point them at a static pool. Speed
 * and heap knobs (ECP window size, fixed-point cache, NIST fast reduction)
 * keep mbed TLS's defaults.
 */
#ifndef OTA_BENCH_MBEDTLS_DEVICE_CONFIG_H
#define OTA_BENCH_MBEDTLS_DEVICE_CONFIG_H

/* System: Thumb-2 assembly for bignum multiplication; calloc/free from libc. */
#define MBEDTLS_HAVE_ASM
#define MBEDTLS_PLATFORM_C

/* Hashing. */
#define MBEDTLS_MD_C
#define MBEDTLS_SHA256_C

/* ECDSA verification on secp256r1. */
#define MBEDTLS_BIGNUM_C
#define MBEDTLS_ECP_C
#define MBEDTLS_ECP_DP_SECP256R1_ENABLED
#define MBEDTLS_ECP_NIST_OPTIM
#define MBEDTLS_ECP_NO_INTERNAL_RNG
#define MBEDTLS_ECDSA_C

/* Keys and certificates. */
#define MBEDTLS_PK_C
#define MBEDTLS_PK_PARSE_C
#define MBEDTLS_X509_USE_C
#define MBEDTLS_X509_CRT_PARSE_C

/* Encodings. MBEDTLS_ASN1_WRITE_C is a prerequisite of MBEDTLS_ECDSA_C. */
#define MBEDTLS_ASN1_PARSE_C
#define MBEDTLS_ASN1_WRITE_C
#define MBEDTLS_OID_C
#define MBEDTLS_PEM_PARSE_C
#define MBEDTLS_BASE64_C

#include "mbedtls/check_config.h"

#endif /* OTA_BENCH_MBEDTLS_DEVICE_CONFIG_H */
