/*
 * otter web console: login sessions and login throttling, in memory (a
 * restart of otter-web logs everyone out). Thread-safe: otter-web answers
 * each connection in its own thread.
 *
 * A session is named by a 256-bit random token (the cookie) and carries a
 * second random token for CSRF protection, which the pages send back in a
 * header on every state-changing request. Sessions end after
 * OTA_WEB_SESSION_IDLE_MS without a request, after OTA_WEB_SESSION_MAX_MS in
 * all, or on logout.
 *
 * Throttling: after OTA_WEB_THROTTLE_FREE failed logins in a row for one key
 * (an account name "user:NAME"; OTA_WEB_THROTTLE_FREE_ADDR for a client
 * address "addr:A"), each further attempt must wait 2^(failures - free)
 * seconds after the last failure, at
 * most OTA_WEB_THROTTLE_MAX_S. An attempt whose password is being checked
 * counts against the free attempts until its outcome is known, so that
 * attempts sent at once are not all checked; past the free attempts only one
 * is checked at a time. A success clears the account's key (otter-web keeps the
 * address's failures: see ota_web_api.c).
 */
#ifndef OTA_WEB_SESSIONS_H
#define OTA_WEB_SESSIONS_H

#include <stddef.h>
#include <stdint.h>

#include "ota_web_users.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A session ends after this long without a request (30 minutes). */
#define OTA_WEB_SESSION_IDLE_MS (30LL * 60 * 1000)
/** A session ends this long after login (12 hours). */
#define OTA_WEB_SESSION_MAX_MS (12LL * 3600 * 1000)
/** Sessions kept at most. When all are live a login is refused: no account's login ends
 *  another account's session. */
#define OTA_WEB_SESSIONS_MAX 1024
/** Sessions one account keeps at most; a login beyond ends that account's least recently
 *  used session. */
#define OTA_WEB_SESSIONS_PER_USER 16
/** Failed logins in a row allowed without waiting, for an account ... */
#define OTA_WEB_THROTTLE_FREE 5
/** ... and for a client address (keys starting "addr:"), which many people may share. */
#define OTA_WEB_THROTTLE_FREE_ADDR 20
/** Longest wait between attempts, in seconds. */
#define OTA_WEB_THROTTLE_MAX_S 900
/** Logins that may wait for a password check when all of them are busy (see
 *  ota_web_hash_enter()); beyond, a login is refused at once. */
#define OTA_WEB_HASH_QUEUE 4
/** Longest wait of a login for a password check, in milliseconds. */
#define OTA_WEB_HASH_WAIT_MS 10000
/** How long an address where a login succeeded keeps its kept slot for password checks. */
#define OTA_WEB_KNOWN_ADDR_MS (12LL * 3600 * 1000)
/** Length of a token's text (64 hex digits). */
#define OTA_WEB_TOKEN_LEN 64

/** A session's contents (a copy; the table keeps its own). */
typedef struct ota_web_session {
    char token[OTA_WEB_TOKEN_LEN + 1];
    char csrf[OTA_WEB_TOKEN_LEN + 1];
    char user[OTA_WEB_USER_NAME_MAX + 1];
    ota_web_role_t role;
    int64_t created_ms;
    int64_t last_ms;
} ota_web_session_t;

/** The session and throttling tables. Opaque. */
typedef struct ota_web_sessions ota_web_sessions_t;

/** Makes empty tables. @return the tables, or NULL when out of memory. */
ota_web_sessions_t *ota_web_sessions_new(void);

/** Frees the tables (NULL is a no-op). */
void ota_web_sessions_free(ota_web_sessions_t *s);

/**
 * Starts a session for an account that just logged in. When the account has
 * OTA_WEB_SESSIONS_PER_USER live sessions, its least recently used one ends.
 * @param out receives the new session (its token and CSRF token).
 * @return 0; -1 when no randomness is available; -2 when the table is full of
 *         other accounts' live sessions (nothing ended).
 */
int ota_web_session_start(ota_web_sessions_t *s, const char *user, ota_web_role_t role,
                          int64_t now_ms, ota_web_session_t *out);

/**
 * Finds a live session by its token (constant-time comparison) and marks it
 * used at now_ms.
 * @return 0 and *out, or -1 (unknown, expired or malformed token).
 */
int ota_web_session_find(ota_web_sessions_t *s, const char *token, int64_t now_ms,
                         ota_web_session_t *out);

/**
 * Whether a session still lives, without marking it used (for long-lived
 * event streams, which must end at logout).
 * @return 1 or 0.
 */
int ota_web_session_alive(ota_web_sessions_t *s, const char *token, int64_t now_ms);

/** Ends a session (unknown tokens are ignored). */
void ota_web_session_end(ota_web_sessions_t *s, const char *token);

/**
 * Whether a login attempt for this key may go ahead now.
 * @param retry_s receives the seconds to wait when it may not.
 * @return 1 = go ahead, 0 = wait.
 */
int ota_web_throttle_allow(ota_web_sessions_t *s, const char *key, int64_t now_ms,
                           unsigned *retry_s);

/**
 * Whether a login attempt for this key may go ahead now, as
 * ota_web_throttle_allow(); when it may, it is counted as in flight until
 * ota_web_throttle_failed(), ota_web_throttle_end() or ota_web_throttle_clear()
 * for the same key.
 * @return 1 = go ahead (counted), 0 = wait.
 */
int ota_web_throttle_begin(ota_web_sessions_t *s, const char *key, int64_t now_ms,
                           unsigned *retry_s);

/** Records a failed login for this key (one attempt in flight, if any, ends as a failure). */
void ota_web_throttle_failed(ota_web_sessions_t *s, const char *key, int64_t now_ms);

/** Ends one attempt in flight for this key without a failure (it was not checked). */
void ota_web_throttle_end(ota_web_sessions_t *s, const char *key);

/** Clears this key after a successful login (its attempts in flight too). */
void ota_web_throttle_clear(ota_web_sessions_t *s, const char *key);

/**
 * Password checks (PBKDF2) running at once are bounded by the number of CPUs
 * (at least 1, at most 16): a login takes a slot before hashing and gives it
 * back after. When all slots are busy it waits for one, unless
 * OTA_WEB_HASH_QUEUE logins wait already, and at most OTA_WEB_HASH_WAIT_MS.
 * One more slot is kept for logins from a client address where a login
 * succeeded within OTA_WEB_KNOWN_ADDR_MS (ota_web_address_known()), so that a
 * flood of logins from other addresses does not keep its operators out.
 * @param client the client address text (may be NULL).
 * @return 1 with a slot, 2 with the kept slot (give either back with
 *         ota_web_hash_leave()), 0 when refused.
 */
int ota_web_hash_enter(ota_web_sessions_t *s, const char *client, int64_t now_ms);

/** Gives back a slot taken by ota_web_hash_enter() (its return value). */
void ota_web_hash_leave(ota_web_sessions_t *s, int slot);

/** Records a successful login from a client address (see ota_web_hash_enter()). */
void ota_web_address_known(ota_web_sessions_t *s, const char *client, int64_t now_ms);

/** The number of password checks that may run at once. */
unsigned ota_web_hash_slots(const ota_web_sessions_t *s);

#ifdef __cplusplus
}
#endif

#endif /* OTA_WEB_SESSIONS_H */
