/* otter on mps2-an386: clock, console, reset, UART0 (see board.h). */
#include "board.h"

#include <stdarg.h>
#include <stdio.h>

#include "semihost.h"

#define REG(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* SysTick and the System Control Block. */
#define SYST_CSR REG(0xe000e010u)
#define SYST_RVR REG(0xe000e014u)
#define SYST_CVR REG(0xe000e018u)
#define SCB_AIRCR REG(0xe000ed0cu)
#define AIRCR_SYSRESETREQ 0x05fa0004u

/* CMSDK APB UART0. */
#define UART0_DATA REG(0x40004000u)
#define UART0_STATE REG(0x40004004u)
#define UART0_CTRL REG(0x40004008u)
#define UART0_BAUDDIV REG(0x40004010u)
#define UART_STATE_TX_FULL 1u
#define UART_STATE_RX_FULL 2u
#define UART_CTRL_TX_EN 1u
#define UART_CTRL_RX_EN 2u

static volatile uint32_t g_ms;

void board_systick_handler(void);

void board_systick_handler(void)
{
    g_ms++;
}

void board_clock_start(void)
{
    SYST_RVR = BOARD_CPU_HZ / 1000u - 1u;
    SYST_CVR = 0;
    SYST_CSR = 7u; /* processor clock, interrupt, enable */
}

void board_clock_stop(void)
{
    SYST_CSR = 0;
}

uint32_t board_now_ms(void)
{
    return g_ms;
}

void board_delay_ms(uint32_t ms)
{
    uint32_t t0 = g_ms;
    while (g_ms - t0 < ms) {
        __asm__ volatile("wfi");
    }
}

void board_log(const char *fmt, ...)
{
    char line[200];
    uint32_t ms = g_ms;
    int n = snprintf(line, sizeof line, "[%5lu.%03lu] ", (unsigned long)(ms / 1000u),
                     (unsigned long)(ms % 1000u));
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line) {
        int m = vsnprintf(line + n, sizeof line - (size_t)n - 1u, fmt, ap);
        if (m > 0) {
            n += m < (int)(sizeof line - (size_t)n - 2u) ? m : (int)(sizeof line - (size_t)n - 2u);
        }
        line[n] = '\n';
        line[n + 1] = '\0';
    }
    va_end(ap);
    semihost_puts(line);
}

void board_reset(void)
{
    __asm__ volatile("dsb" ::: "memory");
    SCB_AIRCR = AIRCR_SYSRESETREQ;
    __asm__ volatile("dsb" ::: "memory");
    for (;;) {
    }
}

static int g_uart_ready;

static void uart_start(void)
{
    if (!g_uart_ready) {
        UART0_BAUDDIV = 16u;
        UART0_CTRL = UART_CTRL_TX_EN | UART_CTRL_RX_EN;
        /* QEMU's model holds back the first received byte until DATA has
         * been read once after RX is enabled. */
        (void)UART0_DATA;
        g_uart_ready = 1;
    }
}

static ota_err_t uart_send(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    uart_start();
    for (size_t i = 0; i < len; i++) {
        while (UART0_STATE & UART_STATE_TX_FULL) {
        }
        UART0_DATA = data[i];
    }
    return OTA_OK;
}

static int32_t uart_recv(void *ctx, uint8_t *buf, size_t cap)
{
    size_t n = 0;
    (void)ctx;
    uart_start();
    while (n < cap && (UART0_STATE & UART_STATE_RX_FULL)) {
        buf[n++] = (uint8_t)UART0_DATA;
    }
    return (int32_t)n;
}

ota_mqttc_transport_t board_uart_transport(void)
{
    ota_mqttc_transport_t t = {NULL, NULL, NULL, uart_send, uart_recv};
    return t;
}
