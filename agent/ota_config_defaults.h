/*
 * otter: compile-time configuration of the agent, with a documented default
 * for every knob.
 *
 * To change a value, define it in a header of your own and build with
 * -DOTA_CONFIG_FILE='"my_ota_config.h"'; that header is included first, and
 * every value it does not define takes the default below. Invalid
 * combinations stop the build here. The buffers these values size live inside
 * ota_agent_t, which the caller allocates; docs/AGENT.md gives the RAM that
 * results.
 */
#ifndef OTA_CONFIG_DEFAULTS_H
#define OTA_CONFIG_DEFAULTS_H

#ifdef OTA_CONFIG_FILE
#include OTA_CONFIG_FILE
#endif

/**
 * Largest file the agent can track, in blocks (its block bitmap holds one bit
 * per block). Possible values: 8 .. 1 << 20, a multiple of 8. Default: 4096
 * (16 MiB at 4 KiB blocks; 512 bytes of RAM). A job whose file needs more
 * blocks fails with "file too large".
 */
#ifndef OTA_MAX_FILE_BLOCKS
#define OTA_MAX_FILE_BLOCKS 4096u
#endif

/**
 * Block size requested from the stream service, in bytes, when the runtime
 * configuration leaves it 0. Possible values: 256 .. 131072 (the service's
 * bounds), a multiple of the port's block_align. Default: 4096 (as AWS).
 */
#ifndef OTA_DEFAULT_BLOCK_SIZE
#define OTA_DEFAULT_BLOCK_SIZE 4096u
#endif

/**
 * Blocks in flight at once (the request window) when the runtime
 * configuration leaves it 0. A new request leaves as soon as half of a window
 * has arrived, so the link never idles for a round trip. Possible values:
 * 1 .. 255; the default is lowered to 128 KiB of blocks when the block size
 * makes it larger (a runtime window may be larger: it is then asked for in
 * several requests of at most 128 KiB each). Default: 16.
 */
#ifndef OTA_DEFAULT_WINDOW_BLOCKS
#define OTA_DEFAULT_WINDOW_BLOCKS 16u
#endif

/**
 * jsmn tokens for one jobs message (notify-next or $next/get/accepted with a
 * full execution: job document and ten statusDetails keys). Each token takes
 * OTA_JOB_TOKEN_SIZE bytes of RAM. Possible values: 32 .. 1024. Default: 96.
 */
#ifndef OTA_JSON_TOKENS
#define OTA_JSON_TOKENS 96u
#endif

/**
 * Bytes of the buffer the agent builds outgoing payloads in (status updates,
 * block requests). Possible values: 256 .. 4096. Default: 384.
 */
#ifndef OTA_MESSAGE_BUFFER_SIZE
#define OTA_MESSAGE_BUFFER_SIZE 384u
#endif

/**
 * Longest thing name, in bytes (AWS allows 128). Sizes the topic buffer.
 * Possible values: 1 .. 128. Default: 128.
 */
#ifndef OTA_THING_NAME_MAX
#define OTA_THING_NAME_MAX 128u
#endif

/** Request timeout before the first round trip is measured, ms. Default: 2000. */
#ifndef OTA_DEFAULT_RTO_INITIAL_MS
#define OTA_DEFAULT_RTO_INITIAL_MS 2000u
#endif

/** Lower bound of the adaptive request timeout, ms. Default: 200. */
#ifndef OTA_DEFAULT_RTO_MIN_MS
#define OTA_DEFAULT_RTO_MIN_MS 200u
#endif

/** Upper bound of the adaptive request timeout (after backoff), ms. Default: 30000. */
#ifndef OTA_DEFAULT_RTO_MAX_MS
#define OTA_DEFAULT_RTO_MAX_MS 30000u
#endif

/**
 * Consecutive request timeouts without a single new block before the
 * download is given up (FAILED, "aborted"). With the backoff this is several
 * minutes at the default bounds. Default: 12.
 */
#ifndef OTA_DEFAULT_MAX_TIMEOUTS
#define OTA_DEFAULT_MAX_TIMEOUTS 12u
#endif

/**
 * Time a new image has, from the agent's start after its first boot, to
 * receive its self-test job and report its verdict; then the agent resets and
 * the bootloader reverts. Default: 16000 (as the AWS agent).
 */
#ifndef OTA_DEFAULT_SELF_TEST_TIMEOUT_MS
#define OTA_DEFAULT_SELF_TEST_TIMEOUT_MS 16000u
#endif

/** Blocks between "receive" progress status updates (first block always). Default: 64. */
#ifndef OTA_DEFAULT_STATUS_EVERY_BLOCKS
#define OTA_DEFAULT_STATUS_EVERY_BLOCKS 64u
#endif

/**
 * Blocks between progress checkpoints. After a power cut the download loses
 * at most this many blocks minus one, plus the blocks of one erase sector.
 * Default: 1 (a checkpoint per block: at most one sector is fetched again).
 */
#ifndef OTA_DEFAULT_CHECKPOINT_EVERY_BLOCKS
#define OTA_DEFAULT_CHECKPOINT_EVERY_BLOCKS 1u
#endif

/**
 * Delay between the last status update and a reset or activation, ms, so the
 * MQTT client can send the update first. Default: 500.
 */
#ifndef OTA_DEFAULT_RESET_DELAY_MS
#define OTA_DEFAULT_RESET_DELAY_MS 500u
#endif

/**
 * Agent events passed to the log callback: -1 none (the calls and their
 * texts compile out), 0 errors, 1 and warnings, 2 and state changes and
 * milestones, 3 and every request. Default: -1, as the size table measures;
 * host builds of otter use 3.
 */
#ifndef OTA_LOG_LEVEL
#define OTA_LOG_LEVEL (-1)
#endif

/* Invalid configurations fail the build. */
#if (OTA_MAX_FILE_BLOCKS < 8u) || (OTA_MAX_FILE_BLOCKS > (1u << 20)) ||                            \
    (OTA_MAX_FILE_BLOCKS % 8u != 0u)
#error "OTA_MAX_FILE_BLOCKS must be a multiple of 8 in 8 .. 1 << 20"
#endif
#if (OTA_DEFAULT_BLOCK_SIZE < 256u) || (OTA_DEFAULT_BLOCK_SIZE > 131072u)
#error "OTA_DEFAULT_BLOCK_SIZE must be in 256 .. 131072"
#endif
#if (OTA_DEFAULT_WINDOW_BLOCKS < 1u) || (OTA_DEFAULT_WINDOW_BLOCKS > 255u)
#error "OTA_DEFAULT_WINDOW_BLOCKS must be in 1 .. 255"
#endif
#if (OTA_JSON_TOKENS < 32u) || (OTA_JSON_TOKENS > 1024u)
#error "OTA_JSON_TOKENS must be in 32 .. 1024"
#endif
#if (OTA_MESSAGE_BUFFER_SIZE < 256u) || (OTA_MESSAGE_BUFFER_SIZE > 4096u)
#error "OTA_MESSAGE_BUFFER_SIZE must be in 256 .. 4096"
#endif
#if (OTA_THING_NAME_MAX < 1u) || (OTA_THING_NAME_MAX > 128u)
#error "OTA_THING_NAME_MAX must be in 1 .. 128"
#endif
#if (OTA_LOG_LEVEL < -1) || (OTA_LOG_LEVEL > 3)
#error "OTA_LOG_LEVEL must be in -1 .. 3"
#endif
#if OTA_DEFAULT_CHECKPOINT_EVERY_BLOCKS < 1u
#error "OTA_DEFAULT_CHECKPOINT_EVERY_BLOCKS must be at least 1"
#endif

#endif /* OTA_CONFIG_DEFAULTS_H */
