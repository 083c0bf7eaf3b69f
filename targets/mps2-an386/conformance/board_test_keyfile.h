/*
 * otter on mps2-an386: mbedtls_pk_parse_keyfile for the conformance firmware.
 * The test signer (tests/support/ota_test_sign.c) reads the test key with
 * mbed TLS's file functions, which come with MBEDTLS_FS_IO and its directory
 * calls that newlib lacks; the firmware compiles that file with
 * mbedtls_pk_parse_keyfile renamed to this function, which reads the file
 * over semihosting and parses it from memory.
 */
#ifndef BOARD_TEST_KEYFILE_H
#define BOARD_TEST_KEYFILE_H

#include "mbedtls/pk.h"

/** As mbedtls_pk_parse_keyfile (mbed TLS 2.28). */
int board_pk_parse_keyfile(mbedtls_pk_context *ctx, const char *path, const char *password);

#endif /* BOARD_TEST_KEYFILE_H */
