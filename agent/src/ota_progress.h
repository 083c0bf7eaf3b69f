/*
 * otter: the agent's download checkpoint (private to the agent).
 *
 * One record, kept in the port's power-safe progress store, says which file is
 * being received (job, stream, file id, size, signature, as a CRC-32
 * identity), at which block size, which blocks are written, and whether
 * activation was attempted. Its layout is ota_progress.c's alone; the block
 * bitmap lives inside it, so a checkpoint needs no copy.
 */
#ifndef OTA_PROGRESS_H
#define OTA_PROGRESS_H

#include "ota_module.h"

#include "otter/ota_config_defaults.h"

#include <stdint.h>

#include "otter/ota_agent.h"

/** The bitmap inside the record: bit k of byte k / 8 = block k written. */
OTA_MODULE uint8_t *ota_progress_bitmap(ota_progress_t *p);

/** Bytes of the record of a file of block_count blocks (what progress_capacity must hold). */
OTA_MODULE uint32_t ota_progress_record_bytes(uint32_t block_count);

/**
 * Save the checkpoint of the agent's file (its job, the download's block
 * size and count and bitmap as it stands, whether activation was attempted,
 * the version of the firmware downloading it) through the port. A port
 * without a progress store, or one too small, is skipped (OTA_OK).
 * @return OTA_OK; the port's error.
 */
OTA_MODULE ota_err_t ota_progress_save(ota_agent_t *a);

/**
 * 1 and *version = the version of the firmware that downloaded job's file, if
 * the loaded record is of that file; 0 otherwise.
 */
OTA_MODULE int ota_progress_downloaded_by(const ota_progress_t *p, const ota_job_t *job,
                                          uint32_t *version);

/**
 * Load the port's record and check it (magic, version, size, CRC).
 * @return OTA_OK (p->loaded set); OTA_ERR_NOT_FOUND (none, or none usable: a
 *         corrupt record is ignored).
 */
OTA_MODULE ota_err_t ota_progress_load(ota_progress_t *p, const ota_pal_t *pal);

/** 1 if the loaded record is for job's file at this block size and count. */
OTA_MODULE int ota_progress_matches(const ota_progress_t *p, const ota_job_t *job,
                                    uint32_t block_size, uint32_t block_count);

/** 1 if the loaded record says activation of its file was attempted. */
OTA_MODULE int ota_progress_activating(const ota_progress_t *p);

/** Blocks of the file the loaded record describes. */
OTA_MODULE uint32_t ota_progress_block_count(const ota_progress_t *p);

/** Ask the port to forget its record (a failure is returned, nothing else). */
OTA_MODULE ota_err_t ota_progress_clear(ota_progress_t *p, const ota_pal_t *pal);

#endif /* OTA_PROGRESS_H */
