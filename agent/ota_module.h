/*
 * otter: the linkage of the functions one agent module offers the others (a
 * private header of the agent's sources).
 *
 * The agent is compiled as one unit, agent/ota_agent_unit.c, which includes
 * every module's source after defining OTA_MODULE as static: a call between
 * modules then costs what a call inside a file costs, a function called once
 * can be inlined, and the library exports only the public API. Compiled one
 * file at a time (the modules' own tests, the configuration test), the
 * functions are external. The module headers put OTA_MODULE before each
 * function they declare; a definition takes its linkage from that declaration.
 */
#ifndef OTA_MODULE
#define OTA_MODULE
#endif
