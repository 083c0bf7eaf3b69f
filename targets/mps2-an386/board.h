/*
 * otter on mps2-an386: the board support shared by the bootloader, the
 * application and the conformance firmware: start-up (startup.c), the
 * millisecond clock (SysTick), the console over semihosting, the reset, the
 * stack high-water mark, and UART0 as the MQTT byte stream (uart.c).
 */
#ifndef BOARD_H
#define BOARD_H

#include <stdint.h>

#include "otter/ota_mqtt_client.h"

/** The core clock of the MPS2 FPGA images (and of QEMU's model), Hz. */
#define BOARD_CPU_HZ 25000000u

/** Start the 1 ms SysTick interrupt. */
void board_clock_start(void);

/** Stop SysTick (before handing over to another image). */
void board_clock_stop(void);

/** Milliseconds since board_clock_start() (wraps after 49 days). */
uint32_t board_now_ms(void);

/** Busy-wait for ms milliseconds. */
void board_delay_ms(uint32_t ms);

/** printf-style line to the console (semihosting), prefixed with the time. */
void board_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** Reset the core (SYSRESETREQ); QEMU with -no-reboot exits. */
void board_reset(void) __attribute__((noreturn));

/** Stack bytes never touched since start-up (the stack is painted at reset). */
uint32_t board_stack_unused(void);

/** Size of the main stack in bytes. */
uint32_t board_stack_size(void);

/** UART0 as the client's transport (no open/close: the wire is always there). */
ota_mqttc_transport_t board_uart_transport(void);

#endif /* BOARD_H */
