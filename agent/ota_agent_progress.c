/*
 * otter: the agent's download checkpoint, kept in the port's power-safe
 * progress store.
 *
 * Record (little-endian):
 *   0  "OTPR"                 magic
 *   4  u8  format version (1); u8 flags (bit 0: activation attempted);
 *          2 bytes zero
 *   8  u32 identity: CRC-32 over job id, stream, file id, size, signature
 *  12  u32 block size
 *  16  u32 block count
 *  20  bitmap, ceil(count / 8) bytes: bit k of byte k / 8 = block k written
 *   n  u32 CRC-32 of bytes 0 .. n-1
 *
 * The port stores the record whole or not at all; the CRC and identity
 * guard against a record of another transfer or another agent version. A
 * wrong match is still caught: the signature fails, and the agent then
 * starts over instead of resuming again.
 */
#include <string.h>

#include "ota_agent_internal.h"
#include "ota_bytes.h"
#include "ota_crc32.h"

#define OTA_PROGRESS_VERSION 1u

static const uint8_t ota_progress_magic[4] = {'O', 'T', 'P', 'R'};

uint32_t ota_agent_file_identity(const ota_job_t *job)
{
    uint8_t num[8];
    uint32_t crc = ota_crc32(0, job->job_id, strlen(job->job_id) + 1u);
    crc = ota_crc32(crc, job->stream, strlen(job->stream) + 1u);
    ota_put_le32(num, job->file_id);
    ota_put_le32(num + 4, job->file_size);
    crc = ota_crc32(crc, num, sizeof num);
    return ota_crc32(crc, job->signature, job->signature_len);
}

ota_err_t ota_agent_progress_save(ota_agent_t *agent)
{
    const ota_pal_t *pal = agent->cfg.pal;
    uint32_t bytes = OTA_BITMAP_BYTES(agent->block_count);
    uint32_t len = OTA_PROGRESS_HEADER_SIZE + bytes + 4u;
    uint8_t *r = agent->record;
    ota_err_t err;

    if (pal->progress_save == NULL || pal->progress_capacity < len) {
        return OTA_OK;
    }
    memcpy(r, ota_progress_magic, 4);
    r[4] = OTA_PROGRESS_VERSION;
    r[5] = agent->activating ? 1u : 0u;
    r[6] = r[7] = 0;
    ota_put_le32(r + 8, ota_agent_file_identity(&agent->job));
    ota_put_le32(r + 12, agent->block_size);
    ota_put_le32(r + 16, agent->block_count);
    ota_put_le32(r + OTA_PROGRESS_HEADER_SIZE + bytes,
                 ota_crc32(0, r, OTA_PROGRESS_HEADER_SIZE + bytes));
    err = pal->progress_save(pal->ctx, r, len);
    if (err == OTA_OK) {
        agent->stats.checkpoints++;
    }
    return err;
}

ota_err_t ota_agent_progress_load(ota_agent_t *agent)
{
    const ota_pal_t *pal = agent->cfg.pal;
    uint8_t *r = agent->record;
    int32_t got;
    uint32_t count;
    uint32_t bytes;

    agent->have_checkpoint = 0;
    if (pal->progress_load == NULL) {
        return OTA_ERR_NOT_FOUND;
    }
    got = pal->progress_load(pal->ctx, r, (uint32_t)sizeof agent->record);
    if (got < (int32_t)(OTA_PROGRESS_HEADER_SIZE + 4u)) {
        memset(r, 0, sizeof agent->record);
        return OTA_ERR_NOT_FOUND;
    }
    count = ota_get_le32(r + 16);
    bytes = OTA_BITMAP_BYTES(count);
    if (memcmp(r, ota_progress_magic, 4) != 0 || r[4] != OTA_PROGRESS_VERSION || count == 0u ||
        count > OTA_MAX_FILE_BLOCKS || (uint32_t)got != OTA_PROGRESS_HEADER_SIZE + bytes + 4u ||
        ota_get_le32(r + OTA_PROGRESS_HEADER_SIZE + bytes) !=
            ota_crc32(0, r, OTA_PROGRESS_HEADER_SIZE + bytes)) {
        memset(r, 0, sizeof agent->record);
        return OTA_ERR_NOT_FOUND;
    }
    agent->have_checkpoint = 1;
    return OTA_OK;
}

int ota_agent_progress_matches(const ota_agent_t *agent, const ota_job_t *job, uint32_t block_size,
                               uint32_t block_count)
{
    const uint8_t *r = agent->record;
    return agent->have_checkpoint && ota_get_le32(r + 8) == ota_agent_file_identity(job) &&
           ota_get_le32(r + 12) == block_size && ota_get_le32(r + 16) == block_count;
}

int ota_agent_progress_activating(const ota_agent_t *agent)
{
    return agent->have_checkpoint && (agent->record[5] & 1u) != 0u;
}
