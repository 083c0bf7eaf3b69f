/* otter on mps2-an386: the flash file, its region and the hand-over (see board_storage.h). */
#include "board_storage.h"

#include <string.h>

#include "board_layout.h"
#include "semihost.h"

#define FLASH_MEM ((uint8_t *)(uintptr_t)BOARD_FLASH_BASE)

/* The handoff must fit the 1 KiB kept out of the RAM region (its boot record
 * holds a 384-byte signature with OTA_SIG_RSA). */
typedef char handoff_fits[sizeof(board_handoff_t) <= 1024u ? 1 : -1];

static ota_err_t persist(void *ctx, uint32_t addr, const uint8_t *data, uint32_t len)
{
    board_storage_t *s = ctx;
    if (semihost_seek(s->fd, addr) != 0 || semihost_write(s->fd, data, len) != 0) {
        return OTA_ERR_IO;
    }
    return OTA_OK;
}

/* The second word of the command line ("otter FILE"). */
static int flash_path(char *out, size_t cap)
{
    char line[256];
    if (semihost_cmdline(line, sizeof line) != 0) {
        return -1;
    }
    line[sizeof line - 1u] = '\0';
    const char *p = strchr(line, ' ');
    if (p == NULL || p[1] == '\0' || strlen(p + 1) >= cap) {
        return -1;
    }
    strcpy(out, p + 1);
    return 0;
}

ota_err_t board_storage_open(board_storage_t *s, int load)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    if (flash_path(s->path, sizeof s->path) != 0) {
        return OTA_ERR_NOT_FOUND;
    }
    s->fd = semihost_open(s->path, SEMIHOST_MODE_RPLUSB);
    if (s->fd < 0) {
        return OTA_ERR_NOT_FOUND;
    }
    if (semihost_flen(s->fd) != (int32_t)BOARD_FLASH_SIZE) {
        board_storage_close(s);
        return OTA_ERR_IO;
    }
    if (load &&
        (semihost_seek(s->fd, 0) != 0 || semihost_read(s->fd, FLASH_MEM, BOARD_FLASH_SIZE) != 0)) {
        board_storage_close(s);
        return OTA_ERR_IO;
    }
    if (board_flash_init(&s->drv, FLASH_MEM, BOARD_FLASH_SIZE, BOARD_SECTOR_SIZE, BOARD_WRITE_UNIT,
                         BOARD_ERASED, persist, s, &s->flash) != OTA_OK) {
        board_storage_close(s);
        return OTA_ERR_IO;
    }
    ota_err_t err =
        board_provision_decode(FLASH_MEM + BOARD_PROVISION, BOARD_PROVISION_SIZE, &s->prov);
    if (err != OTA_OK) {
        board_storage_close(s);
        return OTA_ERR_CORRUPT;
    }
    return OTA_OK;
}

void board_storage_close(board_storage_t *s)
{
    if (s->fd >= 0) {
        semihost_close(s->fd);
        s->fd = -1;
    }
}

board_handoff_t *board_handoff(void)
{
    return (board_handoff_t *)(uintptr_t)BOARD_HANDOFF_ADDR;
}
