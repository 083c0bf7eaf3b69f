/*
 * otter on mps2-an386: the bootloader. At every start it loads the flash
 * from the host file, runs otter's boot decision (ota_boot_decide: trial
 * attempts, revert, the signature of a new image), copies the chosen slot's
 * image to the execution region, leaves the decision in the hand-over area
 * and jumps to the image's reset handler.
 *
 * Exit statuses (the emulation ends): 2 no flash file or a damaged one,
 * 3 nothing may boot.
 */
#include <string.h>

#include "board.h"
#include "board_heap.h"
#include "board_layout.h"
#include "board_storage.h"
#include "otter/ota_image_header.h"
#include "otter/ota_verify.h"
#include "semihost.h"

#define SCB_VTOR (*(volatile uint32_t *)(uintptr_t)0xe000ed08u)

static board_storage_t g_storage;
static uint8_t g_scratch[256];

/* Sets the stack pointer and jumps: never returns. */
static void jump(uint32_t base) __attribute__((noreturn));

static void jump(uint32_t base)
{
    const volatile uint32_t *vec = (const volatile uint32_t *)(uintptr_t)base;
    uint32_t sp = vec[0], pc = vec[1];
    SCB_VTOR = base;
    __asm__ volatile("dsb\n isb\n msr msp, %0\n bx %1" : : "r"(sp), "r"(pc) : "memory");
    for (;;) {
    }
}

int main(void)
{
    board_storage_t *s = &g_storage;
    board_clock_start();
    board_heap_init();
    ota_err_t err = board_storage_open(s, 1);
    if (err != OTA_OK) {
        board_log("boot: cannot use the flash file (%s)", ota_err_str(err));
        return 2;
    }
    ota_verify_signer_t signer = {s->prov.cert_name, s->prov.pem, s->prov.pem_len};
    ota_boot_layout_t layout = BOARD_BOOT_LAYOUT;
    ota_boot_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.flash = &s->flash;
    cfg.layout = &layout;
    cfg.signers = &signer;
    cfg.signer_count = 1;
    cfg.scratch = g_scratch;
    cfg.scratch_len = sizeof g_scratch;
    (void)ota_device_type_tag(BOARD_DEVICE_TYPE, sizeof BOARD_DEVICE_TYPE - 1u,
                              &cfg.device_type_tag);
    board_handoff_t *h = board_handoff();
    memset(h, 0, sizeof *h);
    err = ota_boot_decide(&cfg, &h->result);
    if (h->result.slot == OTA_BOOT_NO_SLOT) {
        board_log("boot: nothing may boot (%s)", ota_err_str(err));
        board_storage_close(s);
        return 3;
    }
    uint32_t slot = layout.slot_addr[h->result.slot];
    ota_image_header_t hdr;
    if (ota_image_header_decode((const uint8_t *)(uintptr_t)(BOARD_FLASH_BASE + slot),
                                OTA_IMAGE_HEADER_SIZE, &hdr) != OTA_OK ||
        hdr.image_size > layout.slot_size) {
        board_log("boot: slot %c holds no image", h->result.slot ? 'B' : 'A');
        board_storage_close(s);
        return 3;
    }
    board_log("boot: slot %c, version %u.%u.%u, %s (%u attempts left), %lu bytes",
              h->result.slot ? 'B' : 'A', (unsigned)(hdr.version >> 24),
              (unsigned)((hdr.version >> 16) & 0xffu), (unsigned)(hdr.version & 0xffffu),
              h->result.pending ? "trial" : "committed", (unsigned)h->result.record.attempts_left,
              (unsigned long)hdr.image_size);
    h->image_size = hdr.image_size - OTA_IMAGE_HEADER_SIZE;
    memcpy((void *)(uintptr_t)BOARD_EXEC_BASE,
           (const void *)(uintptr_t)(BOARD_FLASH_BASE + slot + OTA_IMAGE_HEADER_SIZE),
           h->image_size);
    h->magic = BOARD_HANDOFF_MAGIC;
    board_log("boot: stack %lu of %lu bytes used (high-water mark)",
              (unsigned long)(board_stack_size() - board_stack_unused()),
              (unsigned long)board_stack_size());
    board_storage_close(s);
    board_clock_stop();
    jump(BOARD_EXEC_BASE);
}
