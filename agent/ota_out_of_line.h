/*
 * otter: OTA_OUT_OF_LINE keeps a function out of line where -Os would copy it
 * into its callers and the code measured larger (Cortex-M4 code size,
 * docs/AGENT.md). A private header of the agent's sources.
 */
#ifndef OTA_OUT_OF_LINE_H
#define OTA_OUT_OF_LINE_H

#if defined(__GNUC__)
#define OTA_OUT_OF_LINE __attribute__((noinline))
#else
#define OTA_OUT_OF_LINE
#endif

#endif
