/*
 * otter: a configuration unlike the defaults in every size knob, for the
 * configuration test (tests/config). Every device library and the agent's
 * tests are built with -DOTA_CONFIG_FILE='"ota_test_config.h"', as an
 * integrator builds them with their own.
 */
#ifndef OTA_TEST_CONFIG_H
#define OTA_TEST_CONFIG_H

/* Signatures: RSA on, so signatures take up to 384 bytes instead of 72. */
#define OTA_SIG_RSA 1

/* Job documents. */
#define OTA_JOB_ID_MAX 128u
#define OTA_STREAM_NAME_MAX 100u
#define OTA_FILE_PATH_MAX 200u
#define OTA_CERT_NAME_MAX 90u

/* The agent's buffers. */
#define OTA_MAX_FILE_BLOCKS 8192u
#define OTA_MESSAGE_BUFFER_SIZE 600u
#define OTA_THING_NAME_MAX 40u

/* Boot, verify, the posix port. */
#define OTA_BOOT_READ_ATTEMPTS 5u
#define OTA_VERIFY_MAX_PEM_LEN 6000u
#define OTA_PORT_POSIX_PATH_MAX 400u
#define OTA_PORT_POSIX_PROGRESS_CAPACITY 20000u
#define OTA_PORT_POSIX_CHUNK 1000u

#endif /* OTA_TEST_CONFIG_H */
