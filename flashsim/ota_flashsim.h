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
 * After a power cut every erase/program/read fails with OTA_ERR_IO (what a
 * flash controller losing its supply would do to the code still running)
 * until ota_flashsim_power_on(); the content survives (that is the point).
 * A test tells a cut from an I/O error with ota_flashsim_is_powered().
 *
 * What counts as an operation: an erase or program call that is accepted, i.e.
 * the power is on, the arguments are valid and no flash rule is broken. A call
 * rejected with OTA_ERR_INVALID_ARG, OTA_ERR_FLASH_RULE or OTA_ERR_IO with
 * the power already off is not an operation and does not advance the op counter;
 * nor is a program of zero bytes. An operation hit by a fault is still an
 * operation: CUT_BEFORE and ERROR advance the op counter although they change
 * nothing. erase_ops / program_ops count only the operations that reached the
 * flash cells (completed, CUT_AFTER, TORN); the per-sector erase counter also
 * counts a torn erase of that sector (a partial erase wears the cells too).
 *
 * Torn operations (FAULT_TORN), drawn from a xorshift32 PRNG seeded by
 * fault.seed, so the same seed on the same operation gives the same result:
 *   - program of n units: a tear unit t in [0, n) is chosen; units before t
 *     hold the new data, unit t holds what fault.tear says, units after t keep
 *     their old (erased) content;
 *   - erase of k sectors: a tear sector t in [0, k) is chosen; sectors before
 *     it are erased, sectors after it keep their content, and in sector t
 *     either a random-length prefix (shorter than the sector) or a random
 *     subset of the bytes is erased, the other bytes keep their old content.
 * Both return OTA_ERR_IO with the power off; the partial result is
 * written through to the backing file first.
 *
 * Backing file layout (all integers little-endian u32): a header of
 * OTA_FLASHSIM_FILE_HEADER_LEN bytes { magic OTA_FLASHSIM_FILE_MAGIC,
 * format version OTA_FLASHSIM_FILE_VERSION, size, sector count, write unit,
 * erased value, CRC-32 of the sector sizes (each as a little-endian u32) },
 * then the size bytes of content, then one erase counter per sector.
 */
#ifndef OTA_FLASHSIM_H
#define OTA_FLASHSIM_H

#include <stdint.h>
#include <stdio.h>

#include "otter/ota_err.h"
#include "otter/ota_flash.h"

/** Most sectors a simulated flash may have. */
#define OTA_FLASHSIM_MAX_SECTORS 1024u

/** First word of a backing file: "OTFS" read as a little-endian u32. */
#define OTA_FLASHSIM_FILE_MAGIC 0x5346544fu
/** Version of the backing file format (independent of the API). */
#define OTA_FLASHSIM_FILE_VERSION 1u
/** Bytes before the content in a backing file. */
#define OTA_FLASHSIM_FILE_HEADER_LEN 28u

/** Flash geometry. */
typedef struct ota_flashsim_geometry {
    /** Total size in bytes; must equal the sum of the sector sizes. */
    uint32_t size;
    /** Uniform sector size in bytes; used when sector_sizes is NULL (size must
     *  then be a multiple of it, and sector_count is ignored). */
    uint32_t sector_size;
    /** Optional list of sector sizes from address 0 upwards (non-uniform flash). */
    const uint32_t *sector_sizes;
    /** Number of entries in sector_sizes (1 .. OTA_FLASHSIM_MAX_SECTORS). */
    uint32_t sector_count;
    /** Write unit in bytes: 1, 2, 4, ... 256; every sector size is a multiple of it. */
    uint32_t write_unit;
    /** Erased value: 0xFF or 0x00. */
    uint8_t erased_value;
} ota_flashsim_geometry_t;

/** What a torn program leaves in the unit where the cut hits. */
typedef enum ota_flashsim_tear {
    OTA_FLASHSIM_TEAR_OLD = 0,    /**< the unit keeps its old (erased) value */
    OTA_FLASHSIM_TEAR_NEW = 1,    /**< the unit holds the new value */
    OTA_FLASHSIM_TEAR_MIX = 2,    /**< a random subset of the bits was programmed */
    OTA_FLASHSIM_TEAR_RANDOM = 3, /**< random bits (any other value acts the same) */
} ota_flashsim_tear_t;

/** Kind of fault armed at one operation. */
typedef enum ota_flashsim_fault_kind {
    OTA_FLASHSIM_FAULT_NONE = 0,
    OTA_FLASHSIM_FAULT_CUT_BEFORE, /**< op N does nothing, returns OTA_ERR_IO, power off */
    OTA_FLASHSIM_FAULT_CUT_AFTER,  /**< op N completes and returns OTA_OK, then power is off */
    OTA_FLASHSIM_FAULT_TORN,       /**< op N is torn, returns OTA_ERR_IO, power off */
    OTA_FLASHSIM_FAULT_ERROR,      /**< op N returns OTA_ERR_IO, changes nothing, power stays on */
    /** Read N (reads are numbered apart from operations, from 0 since power on)
     * returns OTA_ERR_IO, as a read with an uncorrectable ECC error would. */
    OTA_FLASHSIM_FAULT_READ_ERROR,
} ota_flashsim_fault_kind_t;

/** A fault armed at one operation. */
typedef struct ota_flashsim_fault {
    ota_flashsim_fault_kind_t kind;
    /** Index of the operation it hits (0 = first erase/program after power on),
     * or of the read for OTA_FLASHSIM_FAULT_READ_ERROR. */
    uint32_t op;
    /** For a torn program: what the torn unit holds. */
    ota_flashsim_tear_t tear;
    /** Seed for the random choices (tear position, mixed and random bits). */
    uint32_t seed;
} ota_flashsim_fault_t;

/**
 * A simulated flash. Fields are private (read them through the functions
 * below); allocate it wherever you like. geo is a copy of the caller's
 * geometry with sector_sizes set to NULL (the sector table lives in
 * sector_start / sector_size). A fault fires once: it is disarmed when its
 * operation runs.
 */
typedef struct ota_flashsim {
    ota_flashsim_geometry_t geo;
    uint32_t sector_count;
    uint32_t sector_start[OTA_FLASHSIM_MAX_SECTORS];
    uint32_t sector_size[OTA_FLASHSIM_MAX_SECTORS];
    uint32_t erase_count[OTA_FLASHSIM_MAX_SECTORS];
    uint8_t *mem;
    FILE *file;
    uint32_t ops;         /* erase + program operations since power on */
    uint32_t reads;       /* reads since power on */
    uint32_t erase_ops;   /* erase operations since init */
    uint32_t program_ops; /* program operations since init */
    uint32_t violations;  /* flash-rule violations since init */
    ota_flashsim_fault_t fault;
    uint32_t rng;
    int powered;
} ota_flashsim_t;

/**
 * Set up a simulated flash in caller-owned memory (mem_len >= geo->size),
 * fully erased, powered on, counters zero, no fault armed, no backing file.
 * @param sim the simulated flash to set up (caller-owned, any lifetime).
 * @param geo the geometry; copied, so it (and geo->sector_sizes) need not
 *            outlive the call.
 * @param mem the flash content, caller-owned; must stay valid as long as sim
 *            is used.
 * @param mem_len bytes at mem.
 * @return OTA_OK or OTA_ERR_INVALID_ARG: a NULL pointer, mem too small, or a
 *         bad geometry (size 0; sizes not summing to size; a sector of size 0
 *         or not a multiple of the write unit; more than
 *         OTA_FLASHSIM_MAX_SECTORS sectors; a write unit that is not a power
 *         of two in 1 .. 256; an erased value other than 0xFF / 0x00).
 */
ota_err_t ota_flashsim_init(ota_flashsim_t *sim, const ota_flashsim_geometry_t *geo, uint8_t *mem,
                            uint32_t mem_len);

/**
 * Set up a simulated flash backed by a file at path: if the file exists and
 * holds a flash of the same geometry, its content and erase counters are
 * loaded; otherwise (no file, or an empty file) it is created fully erased.
 * Every later erase/program (partial effects of torn ones included) is
 * written through to the file (fwrite + fflush) before the call returns.
 * Counters other than the per-sector erase counts start at zero; the power is
 * on. Close the file with ota_flashsim_close().
 * @param sim, geo, mem, mem_len as for ota_flashsim_init().
 * @param path the backing file; only used during the call.
 * @return OTA_OK; OTA_ERR_INVALID_ARG for what ota_flashsim_init() rejects, a
 *         NULL path, or a file that is not a flashsim file of this geometry
 *         (wrong magic, format version, size, sector count or sizes, write
 *         unit or erased value; the file is left untouched); OTA_ERR_IO when
 *         the file cannot be opened, created, read or written, or has the
 *         wrong length. On failure no file stays open.
 */
ota_err_t ota_flashsim_open_file(ota_flashsim_t *sim, const ota_flashsim_geometry_t *geo,
                                 uint8_t *mem, uint32_t mem_len, const char *path);

/**
 * Close the backing file, if any (later operations only change memory). The
 * memory stays readable. Safe to call twice, and on a sim without a file.
 */
void ota_flashsim_close(ota_flashsim_t *sim);

/**
 * The ota_flash_t driver for this simulated flash: ctx is sim, size, write
 * unit and erased value come from the geometry; read, program, erase and
 * sector_info call into the sim with the rules and faults described above.
 * read returns OTA_ERR_IO while the power is off; sector_info works
 * regardless of power. sim must outlive the driver.
 */
ota_flash_t ota_flashsim_driver(ota_flashsim_t *sim);

/**
 * Arm one fault (replacing any armed one); kind NONE or a NULL fault disarms.
 * Reseeds the PRNG from fault->seed (any value, 0 included). Does not change
 * the op counter: fault->op is compared with the op counter since the last
 * power on.
 */
void ota_flashsim_set_fault(ota_flashsim_t *sim, const ota_flashsim_fault_t *fault);

/** Restore power after a cut: disarm the fault and restart op numbering at 0. */
void ota_flashsim_power_on(ota_flashsim_t *sim);

/** 1 while powered, 0 after a simulated power cut. */
int ota_flashsim_is_powered(const ota_flashsim_t *sim);

/** Erase and program operations since the last power on. */
uint32_t ota_flashsim_op_count(const ota_flashsim_t *sim);

/** Reads since the last power on (the numbering of OTA_FLASHSIM_FAULT_READ_ERROR). */
uint32_t ota_flashsim_read_count(const ota_flashsim_t *sim);

/** Erase count of the sector with index idx (0 if out of range). */
uint32_t ota_flashsim_sector_erases(const ota_flashsim_t *sim, uint32_t idx);

/** Erase operations that reached the cells since init (completed, cut after, torn). */
uint32_t ota_flashsim_erase_ops(const ota_flashsim_t *sim);

/** Program operations that reached the cells since init (completed, cut after, torn). */
uint32_t ota_flashsim_program_ops(const ota_flashsim_t *sim);

/** Calls rejected with OTA_ERR_FLASH_RULE since init. */
uint32_t ota_flashsim_violations(const ota_flashsim_t *sim);

#endif /* OTA_FLASHSIM_H */
