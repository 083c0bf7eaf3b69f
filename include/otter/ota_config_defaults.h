/*
 * otter: the one compile-time configuration of every device library (agent,
 * port layer, boot, verify, ports), with a documented default for every knob.
 *
 * Every header of otter's device code includes this file before anything
 * else of its own, so every translation unit sees the same values and every
 * public struct has one size in all of them.
 *
 * To change a value, define it in a header of your own and build every
 * device library with -DOTA_CONFIG_FILE='"my_ota_config.h"' (the same for all
 * of them); that header is included first, and every value it does not define
 * takes the default below. Defining a knob with -D on the command line works
 * too, as long as every unit gets the same definition. Invalid values and
 * combinations stop the build here. The buffers these values size live inside
 * caller-allocated structs (ota_agent_t, the ports' structs); docs/AGENT.md
 * gives the RAM that results.
 *
 * It lives in common/, the bottom layer, so every device library can include
 * it without pointing up a layer.
 */
#ifndef OTTER_OTA_CONFIG_DEFAULTS_H
#define OTTER_OTA_CONFIG_DEFAULTS_H

#ifdef OTA_CONFIG_FILE
#include OTA_CONFIG_FILE
#endif

/* ==== Signatures (port layer, agent, ports, verify, boot) ==== */

/**
 * RSA code signatures. 1: RSA-2048 and RSA-3072 PKCS#1 v1.5 signatures over
 * SHA-256 ("sig-sha256-rsa" in job documents) are accepted besides ECDSA
 * P-256, and signatures of up to 384 bytes are carried. 0: only
 * "sig-sha256-ecdsa"; a job signed with RSA is answered FAILED ("signature
 * method not enabled"). Possible values: 0, 1. Default: 0.
 */
#ifndef OTA_SIG_RSA
#define OTA_SIG_RSA 0
#endif

/**
 * Largest signature the port layer, the job document and the agent carry, in
 * bytes (DER ECDSA P-256: 70..72; RSA-3072: 384). Derived from OTA_SIG_RSA;
 * may be set larger, never smaller. Possible values: 72 .. 1024 (384 ..
 * 1024 with OTA_SIG_RSA). Default: 72, or 384 with OTA_SIG_RSA.
 */
#ifndef OTA_PAL_SIGNATURE_MAX
#if OTA_SIG_RSA
#define OTA_PAL_SIGNATURE_MAX 384u
#else
#define OTA_PAL_SIGNATURE_MAX 72u
#endif
#endif

/* ==== The agent: job documents ==== */

/**
 * Longest job id accepted, in bytes (AWS ids are at most 64; the FreeRTOS
 * agent takes 72). Possible values: 1 .. 255. Default: 72.
 */
#ifndef OTA_JOB_ID_MAX
#define OTA_JOB_ID_MAX 72u
#endif

/**
 * Longest stream name accepted, in bytes (AWS: "AFR_OTA-" + UUID, 44).
 * Possible values: 1 .. 255. Default: 64.
 */
#ifndef OTA_STREAM_NAME_MAX
#define OTA_STREAM_NAME_MAX 64u
#endif

/** Longest "filepath" accepted, in bytes. Possible values: 1 .. 255. Default: 64. */
#ifndef OTA_FILE_PATH_MAX
#define OTA_FILE_PATH_MAX 64u
#endif

/** Longest "certfile" accepted, in bytes. Possible values: 1 .. 255. Default: 48. */
#ifndef OTA_CERT_NAME_MAX
#define OTA_CERT_NAME_MAX 48u
#endif

/* ==== The agent: buffers, downloads, timers ==== */

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
 * Blocks in flight at once (the request window) at the start of a download
 * when the runtime configuration leaves the window 0; the window then adapts
 * to the link, up to OTA_WINDOW_MAX_BYTES. A new request leaves as soon as
 * half of a window has arrived, so the link never idles for a round trip.
 * Possible values: 1 .. 255; the default is lowered to 128 KiB of blocks when
 * the block size makes it larger (a runtime window may be larger: it is then
 * asked for in several requests of at most 128 KiB each). Default: 16.
 */
#ifndef OTA_DEFAULT_WINDOW_BLOCKS
#define OTA_DEFAULT_WINDOW_BLOCKS 16u
#endif

/**
 * Largest adaptive window, in bytes of blocks (at most 255 blocks): the most
 * the agent lets the network hold for it. It costs the agent no RAM (blocks
 * are written as they arrive), but data in flight waits in the broker's queue
 * for the device and in the device's TCP receive window. A link needs about
 * its bandwidth-delay product (rate x round trip) plus one request (128 KiB)
 * for full speed, since the next part of the window is asked for once half
 * of it, or 128 KiB, has arrived: 1 MiB covers 10 Mbit/s at a 700 ms round
 * trip. Possible values: 4096 .. 16777216. Default: 1048576.
 */
#ifndef OTA_WINDOW_MAX_BYTES
#define OTA_WINDOW_MAX_BYTES 1048576u
#endif

/**
 * Bytes of the buffer the agent builds outgoing payloads in (status updates,
 * block requests). Possible values: 256 .. 4096. Default: 384.
 */
#ifndef OTA_MESSAGE_BUFFER_SIZE
#define OTA_MESSAGE_BUFFER_SIZE 384u
#endif

/**
 * The HTTP data plane. 1: a job whose "protocols" list "HTTP" and whose file
 * carries "update_data_url" is fetched with HTTP/1.1 range requests (the
 * device range client of http/, over a byte stream the integrator gives in
 * ota_agent_config_t http), with failover to MQTT streams and back from the
 * same block bitmap; the agent then links ota_http_client. 0: MQTT streams
 * only, and the agent's code and RAM do not grow. Possible values: 0, 1.
 * Default: 0.
 */
#ifndef OTA_HTTP_PLANE
#define OTA_HTTP_PLANE 0
#endif

/**
 * Longest "update_data_url" accepted, in bytes (OTA_HTTP_PLANE builds); a
 * longer one is refused ("field too long"), never cut. otter's presigned
 * URLs take about 140 bytes plus the base, thing name and job id; S3's with a
 * session token about 1,600. Possible values: 32 .. 4096. Default: 512.
 */
#ifndef OTA_HTTP_URL_MAX
#define OTA_HTTP_URL_MAX 512u
#endif

/**
 * Failures in a row without a new block after which the HTTP plane hands the
 * download to MQTT (when the job lists it), and request timeouts in a row
 * after which the MQTT plane hands it to HTTP. Possible values: 1 .. 100.
 * Default: 3.
 */
#ifndef OTA_FAILOVER_AFTER
#define OTA_FAILOVER_AFTER 3u
#endif

/**
 * Longest thing name, in bytes (AWS allows 128). Sizes the topic buffer.
 * Possible values: 1 .. 128. Default: 128.
 */
#ifndef OTA_THING_NAME_MAX
#define OTA_THING_NAME_MAX 128u
#endif

/** Request timeout before the first round trip is measured, ms: RTO_MIN .. RTO_MAX. Default: 2000.
 */
#ifndef OTA_DEFAULT_RTO_INITIAL_MS
#define OTA_DEFAULT_RTO_INITIAL_MS 2000u
#endif

/** Lower bound of the adaptive request timeout, ms: 1 .. RTO_INITIAL. Default: 2000. */
#ifndef OTA_DEFAULT_RTO_MIN_MS
#define OTA_DEFAULT_RTO_MIN_MS 2000u
#endif

/** Upper bound of the adaptive request timeout (after backoff), ms: up to 2^30. Default: 30000. */
#ifndef OTA_DEFAULT_RTO_MAX_MS
#define OTA_DEFAULT_RTO_MAX_MS 30000u
#endif

/**
 * Consecutive request timeouts without a single new block before the
 * download is given up (FAILED, "aborted"). With the backoff this is several
 * minutes at the default bounds. 1 .. 1000. Default: 12.
 */
#ifndef OTA_DEFAULT_MAX_TIMEOUTS
#define OTA_DEFAULT_MAX_TIMEOUTS 12u
#endif

/**
 * Time a new image has, from the agent's start after its first boot, to
 * receive its self-test job and report its verdict; then the agent resets and
 * the bootloader reverts. 1000 .. 86400000. Default: 16000 (as the AWS agent).
 */
#ifndef OTA_DEFAULT_SELF_TEST_TIMEOUT_MS
#define OTA_DEFAULT_SELF_TEST_TIMEOUT_MS 16000u
#endif

/**
 * Most blocks between "receive" progress status updates. The first block is
 * always reported, and a download of N blocks reports at least every N/8 + 1
 * blocks (17 blocks: blocks 1, 4, 7, ..., 16 and the last), so progress shows
 * for small files too. At least 1. Default: 64.
 */
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
 * MQTT client can send the update first. 0 .. 60000. Default: 500.
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

/* ==== Boot ==== */

/**
 * Reads of a boot record copy before it counts as unreadable (transient errors
 * pass). Possible values: 1 .. 16. Default: 3.
 */
#ifndef OTA_BOOT_READ_ATTEMPTS
#define OTA_BOOT_READ_ATTEMPTS 3u
#endif

/* ==== Verify ==== */

/**
 * Largest signer PEM accepted by the signature check, in bytes, counting the
 * NUL terminator that mbed TLS's PEM parser needs. The PEM is copied into a
 * stack buffer of this size (mbed TLS parses PEM only from a NUL-terminated
 * buffer and the caller's PEM need not be one), so this is also the check's
 * stack cost beyond mbed TLS's own. A P-256 certificate is typically 600-900
 * bytes of PEM. Possible values: 128 or more. Default: 4096.
 */
#ifndef OTA_VERIFY_MAX_PEM_LEN
#define OTA_VERIFY_MAX_PEM_LEN 4096u
#endif

/* ==== The posix port ==== */

/**
 * Bytes kept for mbed TLS's SHA-256 context in ota_verify_hash_t (mbed TLS
 * 2.28 and 3.x need 108 on 32- and 64-bit targets; a hardware SHA-256
 * (MBEDTLS_SHA256_ALT) may need more: the build of verify/ota_verify.c stops
 * with an error naming this setting when it does not fit). Default: 108.
 */
#ifndef OTA_VERIFY_HASH_CONTEXT_SIZE
#define OTA_VERIFY_HASH_CONTEXT_SIZE 108u
#endif

/**
 * Size of the posix port's buffers holding cert_dir and default_cert (with
 * their NUL), and of the path built from them at close time. Longer paths are
 * refused. Possible values: 64 or more. Default: 256.
 */
#ifndef OTA_PORT_POSIX_PATH_MAX
#define OTA_PORT_POSIX_PATH_MAX 256u
#endif

/**
 * Largest progress record of the posix port (ota_pal_t.progress_capacity), in
 * bytes. Possible values: 1 .. 1048576. Default: 16384.
 */
#ifndef OTA_PORT_POSIX_PROGRESS_CAPACITY
#define OTA_PORT_POSIX_PROGRESS_CAPACITY 16384u
#endif

/**
 * Size of the buffer the posix port reads the received file through while its
 * signature is checked (part of ota_port_posix_t). Possible values: 64 or
 * more. Default: 4096.
 */
#ifndef OTA_PORT_POSIX_CHUNK
#define OTA_PORT_POSIX_CHUNK 4096u
#endif

/**
 * The posix port's max_file_size when its configuration gives 0, in bytes.
 * Possible values: 1 .. 4294967295. Default: 67108864 (64 MiB).
 */
#ifndef OTA_PORT_POSIX_DEFAULT_MAX_FILE_SIZE
#define OTA_PORT_POSIX_DEFAULT_MAX_FILE_SIZE 67108864u
#endif

/* ==== Invalid configurations fail the build ==== */
#if (OTA_HTTP_PLANE != 0) && (OTA_HTTP_PLANE != 1)
#error "OTA_HTTP_PLANE must be 0 or 1"
#endif
#if OTA_HTTP_URL_MAX < 32 || OTA_HTTP_URL_MAX > 4096
#error "OTA_HTTP_URL_MAX must be in 32 .. 4096"
#endif
#if OTA_FAILOVER_AFTER < 1 || OTA_FAILOVER_AFTER > 100
#error "OTA_FAILOVER_AFTER must be in 1 .. 100"
#endif
#if (OTA_SIG_RSA != 0) && (OTA_SIG_RSA != 1)
#error "OTA_SIG_RSA must be 0 or 1"
#endif
#if (OTA_PAL_SIGNATURE_MAX < 72u) || (OTA_PAL_SIGNATURE_MAX > 1024u)
#error "OTA_PAL_SIGNATURE_MAX must be in 72 .. 1024"
#endif
#if OTA_SIG_RSA && (OTA_PAL_SIGNATURE_MAX < 384u)
#error "OTA_SIG_RSA needs OTA_PAL_SIGNATURE_MAX of at least 384 (RSA-3072)"
#endif
#if (OTA_JOB_ID_MAX < 1u) || (OTA_JOB_ID_MAX > 255u)
#error "OTA_JOB_ID_MAX must be in 1 .. 255"
#endif
#if (OTA_STREAM_NAME_MAX < 1u) || (OTA_STREAM_NAME_MAX > 255u)
#error "OTA_STREAM_NAME_MAX must be in 1 .. 255"
#endif
#if (OTA_FILE_PATH_MAX < 1u) || (OTA_FILE_PATH_MAX > 255u)
#error "OTA_FILE_PATH_MAX must be in 1 .. 255"
#endif
#if (OTA_CERT_NAME_MAX < 1u) || (OTA_CERT_NAME_MAX > 255u)
#error "OTA_CERT_NAME_MAX must be in 1 .. 255"
#endif
#if (OTA_BOOT_READ_ATTEMPTS < 1u) || (OTA_BOOT_READ_ATTEMPTS > 16u)
#error "OTA_BOOT_READ_ATTEMPTS must be in 1 .. 16"
#endif
#if OTA_VERIFY_MAX_PEM_LEN < 128u
#error "OTA_VERIFY_MAX_PEM_LEN must be at least 128"
#endif
#if OTA_PORT_POSIX_PATH_MAX < 64u
#error "OTA_PORT_POSIX_PATH_MAX must be at least 64"
#endif
#if (OTA_PORT_POSIX_PROGRESS_CAPACITY < 1u) || (OTA_PORT_POSIX_PROGRESS_CAPACITY > 1048576u)
#error "OTA_PORT_POSIX_PROGRESS_CAPACITY must be 1 .. 1048576"
#endif
#if OTA_PORT_POSIX_CHUNK < 64u
#error "OTA_PORT_POSIX_CHUNK must be at least 64"
#endif
#if OTA_PORT_POSIX_DEFAULT_MAX_FILE_SIZE < 1u
#error "OTA_PORT_POSIX_DEFAULT_MAX_FILE_SIZE must be at least 1"
#endif
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
#if (OTA_WINDOW_MAX_BYTES < 4096u) || (OTA_WINDOW_MAX_BYTES > 16777216u)
#error "OTA_WINDOW_MAX_BYTES must be in 4096 .. 16777216"
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
#if (OTA_DEFAULT_RTO_MIN_MS < 1u) || (OTA_DEFAULT_RTO_MIN_MS > OTA_DEFAULT_RTO_INITIAL_MS) ||      \
    (OTA_DEFAULT_RTO_INITIAL_MS > OTA_DEFAULT_RTO_MAX_MS) ||                                       \
    (OTA_DEFAULT_RTO_MAX_MS > 1073741824u)
#error                                                                                             \
    "the request timeouts must keep 1 <= OTA_DEFAULT_RTO_MIN_MS <= OTA_DEFAULT_RTO_INITIAL_MS <= OTA_DEFAULT_RTO_MAX_MS <= 2^30 ms"
#endif
#if (OTA_DEFAULT_MAX_TIMEOUTS < 1u) || (OTA_DEFAULT_MAX_TIMEOUTS > 1000u)
#error "OTA_DEFAULT_MAX_TIMEOUTS must be in 1 .. 1000"
#endif
#if (OTA_DEFAULT_SELF_TEST_TIMEOUT_MS < 1000u) || (OTA_DEFAULT_SELF_TEST_TIMEOUT_MS > 86400000u)
#error "OTA_DEFAULT_SELF_TEST_TIMEOUT_MS must be in 1000 .. 86400000 (1 s .. 1 day)"
#endif
#if OTA_DEFAULT_STATUS_EVERY_BLOCKS < 1u
#error "OTA_DEFAULT_STATUS_EVERY_BLOCKS must be at least 1"
#endif
#if OTA_DEFAULT_RESET_DELAY_MS > 60000u
#error "OTA_DEFAULT_RESET_DELAY_MS must be at most 60000"
#endif

#endif /* OTTER_OTA_CONFIG_DEFAULTS_H */
