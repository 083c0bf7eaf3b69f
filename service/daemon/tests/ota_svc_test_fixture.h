/*
 * otter TEST SUPPORT ONLY: end-to-end fixtures for otter-service's streams.
 *
 * A fixture is a temporary data directory populated through the store API
 * (things dev-0..dev-N-1 plus "intruder", one stream with one file of random
 * bytes, one job on that stream for every dev-*), a Mosquitto broker, and up
 * to four otter-service instances logging into the fixture's folder.
 */
#ifndef OTA_SVC_TEST_FIXTURE_H
#define OTA_SVC_TEST_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "ota_test_net.h"

/** Most service instances a fixture runs. */
#define SVC_FX_MAX_SERVICES 4

/** One end-to-end setup. */
typedef struct svc_fx {
    ota_test_broker_t broker;
    char dir[128];      /**< temporary root */
    char data_dir[192]; /**< the service's data directory */
    uint8_t *file;      /**< the stream's file contents */
    size_t file_size;   /**< its size */
    char stream_id[64]; /**< the stream (with the file as file id 0) */
    int n_things;       /**< dev-0 .. dev-(n_things-1) may read the stream */
    ota_test_proc_t svc[SVC_FX_MAX_SERVICES];
    char svc_log[SVC_FX_MAX_SERVICES][256];
    int n_svc;
} svc_fx_t;

/**
 * Creates the data directory, populates the store and starts the broker.
 * @param fx        receives the fixture.
 * @param file_size size of the stream's file.
 * @param n_things  number of dev-* things in the job.
 * @return 0 on success; -1 on failure (reason on stderr).
 */
int svc_fx_setup(svc_fx_t *fx, size_t file_size, int n_things);

/**
 * As svc_fx_setup(), with the store in a given database.
 * @param store NULL (SQLite in the data folder) or a postgresql:// URL.
 */
int svc_fx_setup_store(svc_fx_t *fx, size_t file_size, int n_things, const char *store);

/**
 * As svc_fx_setup_store(), with the broker set up by `otter broker init
 * init_args...` in the service's data folder (so that the instances read its
 * broker/service.credentials, e.g. the share prefix of --shared-streams).
 * @param init_args NULL-terminated `broker init` arguments, or NULL (a broker
 *                  in a folder of its own, as svc_fx_setup_store()).
 */
int svc_fx_setup_broker(svc_fx_t *fx, size_t file_size, int n_things, const char *store,
                        const char *const *init_args);

/**
 * Starts one otter-service instance (log: <dir>/service-<index>.log).
 * @param fx         the fixture.
 * @param extra_args NULL-terminated extra arguments (e.g. --role streams), or NULL.
 * @return the instance's index, or -1 if it did not become ready.
 */
int svc_fx_start_service(svc_fx_t *fx, const char *const *extra_args);

/**
 * Stops an instance with SIGTERM.
 * @return its exit status (0 for a clean stop).
 */
int svc_fx_stop_service(svc_fx_t *fx, int index);

/**
 * Stops everything and removes the temporary folder (kept when
 * OTA_TEST_KEEP is set in the environment).
 */
void svc_fx_teardown(svc_fx_t *fx);

/**
 * Prints an instance's log to stderr (for failing tests).
 */
void svc_fx_dump_log(const svc_fx_t *fx, int index);

/**
 * Reads "key=N" from the last "stats:" line of an instance's log that has the key.
 * @return N, or -1 when absent.
 */
long long svc_fx_log_stat(const svc_fx_t *fx, int index, const char *key);

/** Absent value for svc_cbor_get(). */
#define SVC_ABSENT (-1LL)

/**
 * Encodes a GetStream CBOR request (keys in the AWS agent's order c, f, l, o, b, n).
 * @return a malloc'ed buffer (caller frees) and its length in *len.
 */
uint8_t *svc_cbor_get(const char *c, long long f, long long l, long long o, const uint8_t *b,
                      size_t blen, long long n, size_t *len);

/** A decoded data message. */
typedef struct svc_block {
    char c[80];       /**< token ("" if none) */
    int has_c;        /**< whether c was present */
    uint64_t f;       /**< file id */
    uint64_t i;       /**< block index */
    uint64_t l;       /**< payload length */
    const uint8_t *p; /**< payload bytes (inside the decoded message) */
    size_t plen;      /**< payload length as encoded */
} svc_block_t;

/**
 * Decodes a data/cbor message (without allocation; p points into payload).
 * @return 0 if it is a well-formed {c?, f, i, l, p} map; -1 otherwise.
 */
int svc_decode_block(const uint8_t *payload, size_t len, svc_block_t *out);

/**
 * Decodes a rejected/cbor message.
 * @param code  receives the "o" code (NUL-terminated).
 * @param token receives the "c" token or "" when absent.
 * @return 0 on success; -1 when malformed.
 */
int svc_decode_rejection(const uint8_t *payload, size_t len, char *code, size_t code_cap,
                         char *token, size_t token_cap);

/** Outcome of a fleet download. */
typedef struct svc_fleet_result {
    int completed;           /**< devices with every byte verified */
    uint64_t requests;       /**< GetStream requests sent */
    uint64_t retries;        /**< of which re-requests after a timeout */
    uint64_t blocks;         /**< data messages received (duplicates included) */
    uint64_t duplicates;     /**< blocks received twice */
    double seconds;          /**< from the first connect to the last byte */
    double download_seconds; /**< from the first request to the last byte */
} svc_fleet_result_t;

/**
 * n_devices simulated devices (things dev-0..) on `threads` threads, each
 * thread multiplexing its share of libmosquitto clients with poll(). Every
 * device subscribes to its data topic, then asks for `window` blocks of
 * `block_size` at a time (bitmap of the missing blocks of the window, n =
 * window), re-asking for what is missing after 2 s of silence. Every byte is
 * compared with the file.
 * @param timeout_ms give up after this long.
 * @return 0 when every device completed; -1 otherwise (result filled either way).
 */
int svc_fleet_run(const svc_fx_t *fx, int n_devices, int threads, uint32_t block_size,
                  uint32_t window, int timeout_ms, svc_fleet_result_t *result);

#endif /* OTA_SVC_TEST_FIXTURE_H */
