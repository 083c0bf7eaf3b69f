/*
 * otter on mps2-an386: the vector table and C start-up, linked into every
 * image (bootloader, application, conformance firmware). The linker script
 * provides the symbols: where .data's initial values lie and go, .bss, and
 * the main stack.
 */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "semihost.h"

/* Linker-script symbols. */
extern uint32_t __data_load__[], __data_start__[], __data_end__[];
extern uint32_t __bss_start__[], __bss_end__[];
extern uint32_t __stack_bottom__[], __stack_top__[];

int main(void);
void board_reset_handler(void);
/** Called before main when an image defines it (the conformance firmware). */
void board_pre_main(void) __attribute__((weak));
void board_fault_handler(void);
void board_systick_handler(void);

/** The value painted over the stack at reset, to find its high-water mark. */
#define STACK_PAINT 0xa5a5a5a5u

void board_reset_handler(void)
{
    /* Paint the stack below the start-up's own frame (64 bytes of margin). */
    uintptr_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (volatile uint32_t *p = __stack_bottom__; (uintptr_t)p < sp - 64u; p++) {
        *p = STACK_PAINT;
    }
    size_t data_len = (size_t)((uintptr_t)__data_end__ - (uintptr_t)__data_start__);
    if ((uintptr_t)__data_start__ != (uintptr_t)__data_load__) {
        memcpy(__data_start__, __data_load__, data_len);
    }
    memset(__bss_start__, 0, (size_t)((uintptr_t)__bss_end__ - (uintptr_t)__bss_start__));
    if (board_pre_main != NULL) {
        board_pre_main();
    }
    semihost_exit(main());
}

void board_fault_handler(void)
{
    semihost_puts("board: fault\n");
    semihost_exit(99);
}

uint32_t board_stack_unused(void)
{
    uint32_t n = 0;
    for (const uint32_t *p = __stack_bottom__; p < __stack_top__ && *p == STACK_PAINT; p++) {
        n += 4u;
    }
    return n;
}

uint32_t board_stack_size(void)
{
    return (uint32_t)((uintptr_t)__stack_top__ - (uintptr_t)__stack_bottom__);
}

typedef void (*vector_t)(void);

/* Cortex-M4: initial stack pointer, reset, 14 system exceptions (SysTick
 * last); the board's interrupts are not used. */
__attribute__((section(".vectors"), used)) const vector_t board_vectors[16] = {
    (vector_t)(uintptr_t)__stack_top__,
    board_reset_handler,
    board_fault_handler, /* NMI */
    board_fault_handler, /* HardFault */
    board_fault_handler, /* MemManage */
    board_fault_handler, /* BusFault */
    board_fault_handler, /* UsageFault */
    0,
    0,
    0,
    0,
    board_fault_handler, /* SVCall */
    board_fault_handler, /* DebugMonitor */
    0,
    board_fault_handler, /* PendSV */
    board_systick_handler,
};
