/* otter simulated device: shared configuration, hand-over and helpers. */
#include "otter_device_common.h"

#include "otter/ota_image_header.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

ota_flashsim_geometry_t otter_dev_geometry(void)
{
    ota_flashsim_geometry_t g;
    memset(&g, 0, sizeof g);
    g.size = OTTER_DEV_FLASH_SIZE;
    g.sector_size = OTTER_DEV_SECTOR_SIZE;
    g.write_unit = OTTER_DEV_WRITE_UNIT;
    g.erased_value = OTTER_DEV_ERASED;
    return g;
}

long otter_dev_read_file(const char *path, char *buf, size_t cap)
{
    FILE *fp = fopen(path, "rb");
    size_t n;
    if (fp == NULL || cap == 0u) {
        if (fp != NULL) {
            fclose(fp);
        }
        return -1;
    }
    n = fread(buf, 1, cap - 1u, fp);
    if (ferror(fp) || (n == cap - 1u && fgetc(fp) != EOF)) {
        fclose(fp);
        return -1;
    }
    fclose(fp);
    buf[n] = '\0';
    return (long)n;
}

int otter_dev_write_file(const char *path, const void *data, size_t len, unsigned mode)
{
    char tmp[OTTER_DEV_PATH_MAX + 16];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *fp;
    if (n < 0 || (size_t)n >= sizeof tmp || (fp = fopen(tmp, "wb")) == NULL) {
        return -1;
    }
    if ((len > 0u && fwrite(data, 1, len, fp) != len) || fflush(fp) != 0) {
        fclose(fp);
        unlink(tmp);
        return -1;
    }
    if (fclose(fp) != 0 || chmod(tmp, (mode_t)mode) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Trim spaces at both ends, in place. */
static char *trim(char *s)
{
    char *end;
    while (isspace((unsigned char)*s)) {
        s++;
    }
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1])) {
        *--end = '\0';
    }
    return s;
}

/* dir of the config file + value, unless value is absolute. */
static int set_path(char *out, size_t cap, const char *base_dir, const char *value)
{
    int n;
    if (value[0] == '/' || base_dir[0] == '\0') {
        n = snprintf(out, cap, "%s", value);
    } else {
        n = snprintf(out, cap, "%s/%s", base_dir, value);
    }
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int parse_u32(const char *s, uint32_t *out)
{
    char *end;
    unsigned long v;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v > 0xffffffffu || s[0] == '-') {
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

int otter_dev_config_load(const char *path, otter_dev_config_t *cfg, char *err, size_t err_len)
{
    char text[8192], dir[OTTER_DEV_PATH_MAX];
    char *line, *next;
    const char *slash;
    int lineno = 0;
    memset(cfg, 0, sizeof *cfg);
    if (otter_dev_read_file(path, text, sizeof text) < 0) {
        snprintf(err, err_len, "cannot read the configuration %s: %s", path, strerror(errno));
        return -1;
    }
    slash = strrchr(path, '/');
    if (slash == NULL) {
        dir[0] = '\0';
    } else if ((size_t)(slash - path) >= sizeof dir) {
        snprintf(err, err_len, "configuration path too long");
        return -1;
    } else {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
        if (dir[0] == '\0') {
            snprintf(dir, sizeof dir, "/");
        }
    }
    /* Line by line, blank ones included, so that lineno is the file's line. */
    for (line = text; line != NULL; line = next) {
        char *hash;
        char *eq, *key, *value;
        int bad = 0;
        uint32_t u = 0;
        next = strchr(line, '\n');
        if (next != NULL) {
            *next++ = '\0';
        }
        hash = strchr(line, '#');
        lineno++;
        if (hash != NULL) {
            *hash = '\0';
        }
        key = trim(line);
        if (key[0] == '\0') {
            continue;
        }
        eq = strchr(key, '=');
        if (eq == NULL) {
            snprintf(err, err_len, "%s: line %d: expected key = value", path, lineno);
            return -1;
        }
        *eq = '\0';
        value = trim(eq + 1);
        key = trim(key);
        if (strcmp(key, "thing_file") == 0) {
            bad = set_path(cfg->thing_file, sizeof cfg->thing_file, dir, value);
        } else if (strcmp(key, "codesign_cert") == 0) {
            bad = set_path(cfg->codesign_cert, sizeof cfg->codesign_cert, dir, value);
        } else if (strcmp(key, "cert_name") == 0) {
            int n = snprintf(cfg->cert_name, sizeof cfg->cert_name, "%s", value);
            bad = n < 0 || (size_t)n >= sizeof cfg->cert_name || value[0] == '\0';
        } else if (strcmp(key, "broker_host") == 0) {
            int n = snprintf(cfg->broker_host, sizeof cfg->broker_host, "%s", value);
            bad = n < 0 || (size_t)n >= sizeof cfg->broker_host;
        } else if (strcmp(key, "broker_port") == 0) {
            bad = parse_u32(value, &u) != 0 || u == 0u || u > 65535u;
            cfg->broker_port = (int)u;
        } else if (strcmp(key, "self_test_timeout_ms") == 0) {
            bad = parse_u32(value, &cfg->self_test_timeout_ms);
        } else if (strcmp(key, "reset_delay_ms") == 0) {
            bad = parse_u32(value, &cfg->reset_delay_ms);
        } else if (strcmp(key, "status_every_blocks") == 0) {
            bad = parse_u32(value, &cfg->status_every_blocks);
        } else if (strcmp(key, "block_delay_ms") == 0) {
            bad = parse_u32(value, &cfg->block_delay_ms) != 0 || cfg->block_delay_ms > 10000u;
        } else {
            snprintf(err, err_len, "%s: line %d: unknown key '%.64s'", path, lineno, key);
            return -1;
        }
        if (bad) {
            snprintf(err, err_len, "%s: line %d: bad value for %.64s", path, lineno, key);
            return -1;
        }
    }
    if (cfg->thing_file[0] == '\0' || cfg->codesign_cert[0] == '\0') {
        snprintf(err, err_len, "%s: thing_file and codesign_cert are required", path);
        return -1;
    }
    if (cfg->cert_name[0] == '\0') {
        const char *base = strrchr(cfg->codesign_cert, '/');
        base = base != NULL ? base + 1 : cfg->codesign_cert;
        int n = snprintf(cfg->cert_name, sizeof cfg->cert_name, "%s", base);
        if (n < 0 || (size_t)n >= sizeof cfg->cert_name) {
            snprintf(err, err_len, "%s: certificate file name too long", path);
            return -1;
        }
    }
    return 0;
}

typedef struct handover {
    uint32_t magic;
    uint32_t size;
    ota_boot_result_t boot;
} handover_t;

int otter_dev_handover_write(const char *path, const ota_boot_result_t *boot)
{
    handover_t h;
    memset(&h, 0, sizeof h);
    h.magic = OTTER_DEV_HANDOVER_MAGIC;
    h.size = (uint32_t)sizeof h;
    h.boot = *boot;
    return otter_dev_write_file(path, &h, sizeof h, 0644u);
}

int otter_dev_handover_read(const char *path, ota_boot_result_t *boot)
{
    handover_t h;
    FILE *fp = fopen(path, "rb");
    size_t n;
    if (fp == NULL) {
        return -1;
    }
    n = fread(&h, 1, sizeof h, fp);
    fclose(fp);
    if (n != sizeof h || h.magic != OTTER_DEV_HANDOVER_MAGIC || h.size != (uint32_t)sizeof h ||
        h.boot.slot > 1u) {
        return -1;
    }
    *boot = h.boot;
    return 0;
}

void otter_dev_version_str(uint32_t version, char *out, size_t cap)
{
    snprintf(out, cap, "%u.%u.%u", (unsigned)(version >> 24), (unsigned)((version >> 16) & 0xffu),
             (unsigned)(version & 0xffffu));
}

int otter_dev_version_parse(const char *s, uint32_t *version)
{
    unsigned major, minor, build;
    char tail;
    if (sscanf(s, "%u.%u.%u%c", &major, &minor, &build, &tail) != 3 || major > 255u ||
        minor > 255u || build > 65535u) {
        return -1;
    }
    *version = ota_version_make((uint8_t)major, (uint8_t)minor, (uint16_t)build);
    return 0;
}

const char *otter_dev_slot_name(uint8_t slot)
{
    return slot == 0u ? "A" : slot == 1u ? "B" : "-";
}

uint64_t otter_dev_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

double otter_dev_uptime_s(void)
{
    static uint64_t t0;
    if (t0 == 0u) {
        const char *env = getenv("OTTER_DEVICE_T0");
        char *end = NULL;
        unsigned long long v = env != NULL ? strtoull(env, &end, 10) : 0u;
        t0 = (env != NULL && end != env && *end == '\0' && v > 0u) ? (uint64_t)v
                                                                   : otter_dev_mono_ms();
    }
    return (double)(otter_dev_mono_ms() - t0) / 1000.0;
}
