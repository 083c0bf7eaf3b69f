/*
 * otter: what the agent's own files share (not part of the public API).
 */
#ifndef OTA_AGENT_INTERNAL_H
#define OTA_AGENT_INTERNAL_H

#include "ota_config_defaults.h"

#include <stddef.h>
#include <stdint.h>

#include "ota_agent.h"

/** The block bitmap inside the progress record. */
#define OTA_AGENT_BITMAP(agent) (&(agent)->record[OTA_PROGRESS_HEADER_SIZE])

/** Bytes of a bitmap of n blocks. */
#define OTA_BITMAP_BYTES(n) (((n) + 7u) / 8u)

/** 1 if block k is marked in bitmap. */
static inline int ota_bit_get(const uint8_t *bitmap, uint32_t k)
{
    return (int)(((uint32_t)bitmap[k / 8u] >> (k % 8u)) & 1u);
}

/** Mark block k in bitmap. */
static inline void ota_bit_set(uint8_t *bitmap, uint32_t k)
{
    bitmap[k / 8u] = (uint8_t)(bitmap[k / 8u] | (1u << (k % 8u)));
}

/* ---- topics and status updates (ota_agent_status.c) ---- */

/**
 * Build "$aws/things/<thing>/" + a + b + c into agent->topic (use "" for
 * unused parts).
 * @return OTA_OK; OTA_ERR_OUT_OF_MEMORY (does not fit).
 */
ota_err_t ota_agent_topic(ota_agent_t *agent, const char *a, const char *b, const char *c);

/**
 * 1 if topic (topic_len bytes) is "$aws/things/<thing>/" + a + b + c.
 * Uses agent->topic as scratch.
 */
int ota_agent_topic_is(ota_agent_t *agent, const char *topic, size_t topic_len, const char *a,
                       const char *b, const char *c);

/**
 * Publish {"status":status,"statusDetails":{"k0":"v0","k1":"v1"}} (k1 NULL:
 * only the first entry) on the current job's update topic, with QoS qos.
 * Values are escaped as JSON strings.
 * @return OTA_OK; OTA_ERR_OUT_OF_MEMORY; OTA_ERR_MQTT.
 */
ota_err_t ota_agent_publish_status(ota_agent_t *agent, const char *status, const char *k0,
                                   const char *v0, const char *k1, const char *v1, uint8_t qos);

/**
 * Write "0x" + 8 lowercase hex digits of v and a NUL at out (11 bytes).
 * @return the position of the NUL.
 */
char *ota_agent_hex32(char *out, uint32_t v);

/**
 * Write v in decimal at out, then sep (unless it is NUL) and a NUL (at most
 * 12 bytes).
 * @return the position of the NUL.
 */
char *ota_agent_dec(char *out, uint32_t v, char sep);

/** Write "v<major>.<minor>.<build>" of a version and a NUL at out (at most 16 bytes). */
void ota_agent_version_str(char *out, uint32_t version);

/* ---- progress record (ota_agent_progress.c) ---- */

/** Identity of the current job's file: job, stream, file id, size, signature. */
uint32_t ota_agent_file_identity(const ota_job_t *job);

/**
 * Save the current download's checkpoint (header + bitmap + CRC) through the
 * port. A port without a progress store, or one too small, is skipped.
 * @return OTA_OK; the port's error.
 */
ota_err_t ota_agent_progress_save(ota_agent_t *agent);

/**
 * Load the port's progress record into agent->record and check it.
 * @return OTA_OK (agent->have_checkpoint set); OTA_ERR_NOT_FOUND (none, or
 *         none usable: a corrupt record is ignored).
 */
ota_err_t ota_agent_progress_load(ota_agent_t *agent);

/**
 * 1 if the loaded checkpoint is for this job's file at this block size.
 */
int ota_agent_progress_matches(const ota_agent_t *agent, const ota_job_t *job, uint32_t block_size,
                               uint32_t block_count);

/** 1 if the loaded checkpoint says activation of its file was attempted. */
int ota_agent_progress_activating(const ota_agent_t *agent);

/* ---- the data plane (ota_data_mqtt.c) ---- */

/**
 * A data plane delivers file blocks for the current job: MQTT streams now,
 * HTTP range requests later. The core agent keeps the bitmap, the window and
 * the timers; a data plane only moves bytes and calls ota_agent_block().
 */
typedef struct ota_data_plane {
    /** Subscribe to what the plane needs. */
    ota_err_t (*open)(ota_agent_t *agent);
    /**
     * Ask for up to count missing blocks at or after first (count >= 1).
     * *next receives the index after the last block considered, *asked the
     * number of blocks asked for (0: none missing from first on).
     */
    ota_err_t (*request)(ota_agent_t *agent, uint32_t first, uint32_t count, uint32_t *next,
                         uint32_t *asked);
    /** Handle a message (topic of topic_len bytes); 1 if it was the plane's. */
    int (*handle)(ota_agent_t *agent, const char *topic, size_t topic_len, const uint8_t *payload,
                  size_t len);
    /** Unsubscribe. */
    void (*close)(ota_agent_t *agent);
} ota_data_plane_t;

/** The MQTT streams data plane. */
extern const ota_data_plane_t ota_data_plane_mqtt;

/**
 * A block arrived from the data plane: check, write, account.
 */
void ota_agent_block(ota_agent_t *agent, uint32_t file_id, uint32_t index, const uint8_t *data,
                     size_t len);

/**
 * The data plane's service refused a request: fail the job with its code.
 */
void ota_agent_data_refused(ota_agent_t *agent, const char *code, size_t code_len);

/** Note a message that could not be decoded. */
void ota_agent_bad_message(ota_agent_t *agent, const char *what, ota_err_t err);

#endif /* OTA_AGENT_INTERNAL_H */
