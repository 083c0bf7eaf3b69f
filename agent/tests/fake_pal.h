/*
 * otter: an in-memory port for agent tests, with counters and injectable
 * failures. Its "signature" is 8 bytes: the CRC-32 of the file and its size
 * (fake_pal_sign), so tests need no keys; the real ports and ECDSA are
 * exercised by the flashsim resume tests.
 */
#ifndef FAKE_PAL_H
#define FAKE_PAL_H

#include <stddef.h>
#include <stdint.h>

#include "otter/ota_pal.h"

#define FAKE_PAL_MAX (1u << 20)

typedef struct fake_pal {
    ota_pal_t pal;
    /* Storage that survives a "reboot". */
    uint8_t data[FAKE_PAL_MAX];
    uint8_t written[FAKE_PAL_MAX]; /* 1 where a byte was written */
    uint32_t size;
    int open;
    int closed_ok;
    ota_pal_image_state_t image_state;
    uint8_t progress[8192];
    int32_t progress_len; /* < 0: none */
    /* Counters. */
    int creates, resumes, aborts, writes, closes, activates, resets, saves, clears, loads;
    int rewrites; /* writes to already written bytes */
    ota_image_state_t last_state;
    int states_set;
    /* Failures to inject. */
    ota_err_t fail_create;
    int fail_write_at; /* block offset whose write fails with OTA_ERR_IO (-1 = none) */
    ota_err_t fail_close;
    ota_err_t fail_activate;
    ota_err_t fail_accept;
    int corrupt_on_resume; /* resume keeps a wrong byte in a kept block */
    /* A slow port: every write advances *clock (the test's time) by write_ms. */
    uint32_t write_ms;
    uint32_t *clock;
    /* Called after every write ("write", writes so far), at close ("close") and at
     * activate ("activate"), for tests that act at a given step. */
    void (*hook)(void *ctx, const char *op, int count);
    void *hook_ctx;
} fake_pal_t;

/** Initialise (no file, VALID image, no progress) and fill in the pal struct. */
void fake_pal_init(fake_pal_t *f, uint32_t max_file_size);

/** The 8-byte signature the fake port accepts for data[0..len). */
void fake_pal_sign(const uint8_t *data, uint32_t len, uint8_t sig[8]);

#endif /* FAKE_PAL_H */
