/*
 * otter service, HTTP daemons and CLI: text from outside (a device's report,
 * a request's path, a stored value) made safe to show on a terminal or to
 * write into a log line.
 *
 * What could steer a terminal or start a line that is not the writer's is
 * replaced by a visible escape:
 *   - C0 controls (U+0000..U+001F, so also TAB, LF and CR) and DEL as "\xHH";
 *   - C1 controls (U+0080..U+009F), the bidi embeddings, overrides and
 *     isolates (U+202A..U+202E, U+2066..U+2069) and the line and paragraph
 *     separators (U+2028, U+2029) as "\uHHHH";
 *   - each byte that is not part of well-formed UTF-8 as "\xHH" (a terminal
 *     in an 8-bit mode takes a lone 0x9b for CSI).
 * Everything else, well-formed UTF-8 included, is kept as it is.
 *
 * Host code: no heap, no state; any thread.
 */
#ifndef OTA_TEXT_ESCAPE_H
#define OTA_TEXT_ESCAPE_H

#include <stddef.h>

/** Room one input byte may take in the output: "\xHH" for one byte. */
#define OTA_TEXT_ESCAPE_GROWTH 4

/**
 * Copies len bytes of text to out with what is described above escaped.
 * @param in  the text; may hold NUL bytes (escaped as "\x00"); NULL with len 0.
 * @param len its length in bytes.
 * @param out receives the result, cut before a character or an escape that
 *            does not fit whole, and always terminated (nothing when cap is 0).
 *            len * OTA_TEXT_ESCAPE_GROWTH + 1 bytes always hold it all.
 * @param cap size of out in bytes.
 * @return the number of input bytes copied: len when everything fitted.
 */
size_t ota_text_escape(const char *in, size_t len, char *out, size_t cap);

/** Room one input byte may take in the output of ota_text_escape_json(). */
#define OTA_TEXT_ESCAPE_JSON_GROWTH 6

/**
 * The same for JSON text (as cJSON prints it), so that it stays valid JSON
 * that reads back to the same strings: what is escaped above becomes a JSON
 * escape "\uHHHH" (DEL "\u007f", U+202E "\u202e"), and a byte that is not
 * part of well-formed UTF-8 "\ufffd" (the replacement character; JSON cannot
 * hold it). Outside strings JSON text holds none of these.
 * Parameters and return as ota_text_escape(); len * OTA_TEXT_ESCAPE_JSON_GROWTH
 * + 1 bytes of out always hold it all.
 */
size_t ota_text_escape_json(const char *in, size_t len, char *out, size_t cap);

/**
 * Whether ota_text_escape() changes a character of the text, that is whether
 * it holds anything listed above.
 * @param in the text, NUL-terminated.
 * @return 1 when it does, 0 when the text is safe as it is.
 */
int ota_text_needs_escape(const char *in);

#endif /* OTA_TEXT_ESCAPE_H */
