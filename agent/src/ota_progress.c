/*
 * otter: the agent's download checkpoint, kept in the port's power-safe
 * progress store.
 *
 * Record (little-endian):
 *   0  "OTPR"                 magic
 *   4  u8  format version (2); u8 flags (bit 0: activation attempted);
 *          2 bytes zero
 *   8  u32 identity: CRC-32 over job id, stream, file id, size, signature
 *  12  u32 block size
 *  16  u32 block count
 *  20  u32 version of the firmware that downloads the file (its "updatedBy",
 *          which the new image needs after a reset during its self-test)
 *  24  bitmap, ceil(count / 8) bytes: bit k of byte k / 8 = block k written
 *   n  u32 CRC-32 of bytes 0 .. n-1
 *
 * The port stores the record whole or not at all; the CRC and identity
 * guard against a record of another transfer or another agent version. A
 * wrong match is still caught: the signature fails, and the agent then
 * starts over instead of resuming again.
 */
#include "ota_progress.h"
#include "ota_out_of_line.h"

#include <string.h>

#include "otter/ota_bytes.h"
#include "otter/ota_crc32.h"

#define OTA_PROGRESS_VERSION 2u
#define OTA_PROGRESS_HEADER 24u
#define OTA_PROGRESS_BYTES(count) (OTA_PROGRESS_HEADER + ((count) + 7u) / 8u + 4u)

/* The size the public header reserves is this layout's largest record. */
typedef char ota_progress_size_matches
    [sizeof(((ota_progress_t *)0)->bytes) == OTA_PROGRESS_BYTES(OTA_MAX_FILE_BLOCKS) ? 1 : -1];

/* The little-endian word at p: ota_get_le32, which -Os keeps out of line
 * (a call per use) although its code is one load on Cortex-M4. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline uint32_t
ota_word(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* "OTPR" as a little-endian word. */
#define OTA_PROGRESS_MAGIC 0x5250544fu

/* Stores count words of w at r, little-endian. */
OTA_OUT_OF_LINE static void ota_put_words(uint8_t *r, const uint32_t *w, uint32_t count)
{
    for (uint32_t i = 0; i < 4u * count; i++) {
        r[i] = (uint8_t)(w[i / 4u] >> (8u * (i % 4u)));
    }
}

/* Identity of a job's file: job, stream, file id, size, signature. */
static uint32_t ota_progress_identity(const ota_job_t *job)
{
    uint8_t num[8];
    uint32_t crc = ota_crc32(0, job->job_id, strlen(job->job_id) + 1u);
    crc = ota_crc32(crc, job->stream, strlen(job->stream) + 1u);
    ota_put_le32(num, job->file_id);
    ota_put_le32(num + 4, job->file_size);
    crc = ota_crc32(crc, num, sizeof num);
    return ota_crc32(crc, job->signature, job->signature_len);
}

uint8_t *ota_progress_bitmap(ota_progress_t *p)
{
    return p->bytes + OTA_PROGRESS_HEADER;
}

uint32_t ota_progress_record_bytes(uint32_t block_count)
{
    return OTA_PROGRESS_BYTES(block_count);
}

ota_err_t ota_progress_save(ota_agent_t *a)
{
    ota_progress_t *p = &a->progress;
    const ota_pal_t *pal = a->cfg.pal;
    uint32_t block_count = a->dl.block_count;
    uint32_t len = OTA_PROGRESS_BYTES(block_count);
    uint8_t *r = p->bytes;
    uint32_t head[6]; /* the header's words */

    if (pal->progress_save == NULL || pal->progress_capacity < len) {
        return OTA_OK;
    }
    head[0] = OTA_PROGRESS_MAGIC;
    head[1] = OTA_PROGRESS_VERSION | (a->activating ? 0x100u : 0u);
    head[2] = ota_progress_identity(&a->job);
    head[3] = a->dl.block_size;
    head[4] = block_count;
    head[5] = a->cfg.app_version;
    ota_put_words(r, head, 6);
    head[0] = ota_crc32(0, r, len - 4u);
    ota_put_words(r + len - 4u, head, 1);
    return pal->progress_save(pal->ctx, r, len);
}

ota_err_t ota_progress_load(ota_progress_t *p, const ota_pal_t *pal)
{
    uint8_t *r = p->bytes;
    int32_t got;
    uint32_t count;

    p->loaded = 0;
    if (pal->progress_load == NULL) {
        return OTA_ERR_NOT_FOUND;
    }
    got = pal->progress_load(pal->ctx, r, (uint32_t)sizeof p->bytes);
    count = got >= (int32_t)OTA_PROGRESS_BYTES(0) ? ota_word(r + 16) : 0u;
    if (count == 0u || count > OTA_MAX_FILE_BLOCKS || ota_word(r) != OTA_PROGRESS_MAGIC ||
        r[4] != OTA_PROGRESS_VERSION || (uint32_t)got != OTA_PROGRESS_BYTES(count) ||
        ota_word(r + (uint32_t)got - 4u) != ota_crc32(0, r, (uint32_t)got - 4u)) {
        memset(r, 0, sizeof p->bytes);
        return OTA_ERR_NOT_FOUND;
    }
    p->loaded = 1;
    return OTA_OK;
}

/* Is the loaded record of job's file? */
static int ota_progress_is_of(const ota_progress_t *p, const ota_job_t *job)
{
    return p->loaded && ota_word(p->bytes + 8) == ota_progress_identity(job);
}

int ota_progress_matches(const ota_progress_t *p, const ota_job_t *job, uint32_t block_size,
                         uint32_t block_count)
{
    const uint8_t *r = p->bytes;
    return ota_progress_is_of(p, job) && ota_word(r + 12) == block_size &&
           ota_word(r + 16) == block_count;
}

int ota_progress_downloaded_by(const ota_progress_t *p, const ota_job_t *job, uint32_t *version)
{
    if (!ota_progress_is_of(p, job)) {
        return 0;
    }
    *version = ota_word(p->bytes + 20);
    return 1;
}

int ota_progress_activating(const ota_progress_t *p)
{
    return p->loaded && (p->bytes[5] & 1u) != 0u;
}

uint32_t ota_progress_block_count(const ota_progress_t *p)
{
    return ota_word(p->bytes + 16);
}

ota_err_t ota_progress_clear(ota_progress_t *p, const ota_pal_t *pal)
{
    p->loaded = 0;
    return pal->progress_clear != NULL ? pal->progress_clear(pal->ctx) : OTA_OK;
}
