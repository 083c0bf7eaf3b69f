/*
 * otter CLI: text a device controls, shown safely.
 *
 * A device writes its statusDetails (and through them its reason) itself, and
 * the store keeps what the service took; the CLI trusts neither. Every piece of
 * such text goes through these functions before it reaches the terminal, so
 * that no escape sequence (OSC 52 clipboard writes, cursor moves), no line
 * break and no bidi override a device sent can act on the operator's screen
 * or forge a line: see ota_text_escape.h for what is escaped and how.
 */
#ifndef CLI_TEXT_H
#define CLI_TEXT_H

#include <stddef.h>

/** Longest string (value or key) of stored JSON shown whole, in bytes. */
#define CLI_TEXT_VALUE_MAX 200
/** Room for stored JSON as shown (cli_safe_json()), terminating NUL included. */
#define CLI_TEXT_JSON_CAP 2048
/** What ends a text that was cut. */
#define CLI_TEXT_CUT_MARK "...(cut)"

/**
 * Text made safe to print: ota_text_escape()d, and cut with CLI_TEXT_CUT_MARK
 * when it does not fit.
 * @param text the text, NUL-terminated; NULL is shown as "".
 * @param out  receives the result, always terminated.
 * @param cap  size of out; at least sizeof CLI_TEXT_CUT_MARK.
 * @return out, for use as a printf argument.
 */
const char *cli_safe_text(const char *text, char *out, size_t cap);

/**
 * Stored JSON (statusDetails) made safe to print on one line: parsed and
 * printed again compact, each string longer than CLI_TEXT_VALUE_MAX bytes cut
 * to that ("...(N bytes more)" after it), then cli_safe_text(). Text that is
 * not JSON is shown by cli_safe_text() alone.
 * @param stored the stored text; NULL is shown as "{}".
 * @param out    receives the result, always terminated.
 * @param cap    size of out; CLI_TEXT_JSON_CAP is meant.
 * @return out, for use as a printf argument.
 */
const char *cli_safe_json(const char *stored, char *out, size_t cap);

/**
 * Prints JSON text (a --json document) and a newline on stdout with
 * ota_text_escape_json(): what a device wrote stays readable to a JSON parser,
 * and no bidi override or C1 control reaches the terminal raw.
 * @param json the document as cJSON printed it, NUL-terminated.
 * @return 0, or -1 when out of memory (nothing printed).
 */
int cli_print_json(const char *json);

#endif /* CLI_TEXT_H */
