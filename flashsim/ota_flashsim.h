/*
 * otter: a simulated NOR flash that behaves like flash.
 *
 * - Geometry: total size, uniform sectors or a list of sector sizes, a write
 *   unit of 1 .. 256 bytes, erased value 0xFF or 0x00.
 * - Rules enforced: erase whole sectors only; program whole, aligned write
 *   units; a unit may be programmed only while every byte of it is erased.
 *   A violation returns OTA_ERR_FLASH_RULE and changes nothing; the number of
 *   violations is counted so tests can assert on it.
 * - Counters: erase and program operations, and an erase counter per sector.
 * - Faults: power cut before or after operation N, torn program and torn
 *   erase at operation N, and operations that return OTA_ERR_IO. Operations
 *   are the erase and program calls, numbered from 0 since the last
 *   ota_flashsim_power_on (reads are not operations).
 * - Storage: caller-owned memory, optionally written through to a file so
 *   that a simulated device can reboot across processes.
 *
 * After a power cut every erase/program/read returns OTA_ERR_POWER_LOSS until
 * ota_flashsim_power_on(); the content survives (that is the point).
 */
#ifndef OTA_FLASHSIM_H
#define OTA_FLASHSIM_H

#include <stdint.h>
#include <stdio.h>

#include "ota_err.h"
#include "ota_flash.h"

/** Most sectors a simulated flash may have. */
#define OTA_FLASHSIM_MAX_SECTORS 1024u

/** Flash geometry. */
typedef struct ota_flashsim_geometry {
    /** Total size in bytes; must equal the sum of the sector sizes. */
    uint32_t size;
    /** Uniform sector size in bytes; used when sector_sizes is NULL. */
    uint32_t sector_size;
    /** Optional list of sector sizes from address 0 upwards (non-uniform flash). */
    const uint32_t *sector_sizes;
    /** Number of entries in sector_sizes. */
    uint32_t sector_count;
    /** Write unit in bytes: 1, 2, 4, ... 256. */
    uint32_t write_unit;
    /** Erased value: 0xFF or 0x00. */
    uint8_t erased_value;
} ota_flashsim_geometry_t;

/** What a torn program leaves in the unit where the cut hits. */
typedef enum ota_flashsim_tear {
    OTA_FLASHSIM_TEAR_OLD = 0,    /**< the unit keeps its old (erased) value */
    OTA_FLASHSIM_TEAR_NEW = 1,    /**< the unit holds the new value */
    OTA_FLASHSIM_TEAR_MIX = 2,    /**< a random subset of the bits was programmed */
    OTA_FLASHSIM_TEAR_RANDOM = 3, /**< random bits */
} ota_flashsim_tear_t;

/** Kind of fault armed at one operation. */
typedef enum ota_flashsim_fault_kind {
    OTA_FLASHSIM_FAULT_NONE = 0,
    OTA_FLASHSIM_FAULT_CUT_BEFORE, /**< power dies before op N runs */
    OTA_FLASHSIM_FAULT_CUT_AFTER,  /**< op N completes, then power dies */
    OTA_FLASHSIM_FAULT_TORN,       /**< op N is torn, then power dies */
    OTA_FLASHSIM_FAULT_ERROR,      /**< op N fails with OTA_ERR_IO, changes nothing */
} ota_flashsim_fault_kind_t;

/** A fault armed at one operation. */
typedef struct ota_flashsim_fault {
    ota_flashsim_fault_kind_t kind;
    /** Index of the operation it hits (0 = first erase/program after power on). */
    uint32_t op;
    /** For a torn program: what the torn unit holds. */
    ota_flashsim_tear_t tear;
    /** Seed for the random choices (tear position, mixed and random bits). */
    uint32_t seed;
} ota_flashsim_fault_t;

/** A simulated flash. Fields are private; allocate it wherever you like. */
typedef struct ota_flashsim {
    ota_flashsim_geometry_t geo;
    uint32_t sector_count;
    uint32_t sector_start[OTA_FLASHSIM_MAX_SECTORS];
    uint32_t sector_size[OTA_FLASHSIM_MAX_SECTORS];
    uint32_t erase_count[OTA_FLASHSIM_MAX_SECTORS];
    uint8_t *mem;
    FILE *file;
    uint32_t ops;         /* erase + program operations since power on */
    uint32_t erase_ops;   /* erase operations since init */
    uint32_t program_ops; /* program operations since init */
    uint32_t violations;  /* flash-rule violations since init */
    ota_flashsim_fault_t fault;
    uint32_t rng;
    int powered;
} ota_flashsim_t;

/**
 * Set up a simulated flash in caller-owned memory (mem_len >= geo->size),
 * fully erased, powered on, counters zero.
 * @return OTA_OK or OTA_ERR_INVALID_ARG (bad geometry, mem too small).
 */
ota_err_t ota_flashsim_init(ota_flashsim_t *sim, const ota_flashsim_geometry_t *geo,
                            uint8_t *mem, uint32_t mem_len);

/**
 * Set up a simulated flash backed by a file at path: if the file exists and
 * holds a flash of the same geometry, its content and erase counters are
 * loaded; otherwise it is created fully erased. Every later erase/program is
 * written through to the file before the call returns.
 * @return OTA_OK, OTA_ERR_INVALID_ARG, OTA_ERR_IO.
 */
ota_err_t ota_flashsim_open_file(ota_flashsim_t *sim, const ota_flashsim_geometry_t *geo,
                                 uint8_t *mem, uint32_t mem_len, const char *path);

/** Close the backing file, if any. The memory stays readable. */
void ota_flashsim_close(ota_flashsim_t *sim);

/** The ota_flash_t driver for this simulated flash. */
ota_flash_t ota_flashsim_driver(ota_flashsim_t *sim);

/** Arm one fault (replacing any armed one); kind NONE disarms. */
void ota_flashsim_set_fault(ota_flashsim_t *sim, const ota_flashsim_fault_t *fault);

/** Restore power after a cut: disarm the fault and restart op numbering at 0. */
void ota_flashsim_power_on(ota_flashsim_t *sim);

/** 1 while powered, 0 after a simulated power cut. */
int ota_flashsim_is_powered(const ota_flashsim_t *sim);

/** Erase and program operations since the last power on. */
uint32_t ota_flashsim_op_count(const ota_flashsim_t *sim);

/** Erase count of the sector with index idx (0 if out of range). */
uint32_t ota_flashsim_sector_erases(const ota_flashsim_t *sim, uint32_t idx);

#endif /* OTA_FLASHSIM_H */
