/*
 * otter web console: operator accounts. Kept in <data_dir>/web/users (folder
 * 0700, file 0600), one account a line:
 *
 *   <name> <role> pbkdf2-sha256 <iterations> <salt, 32 hex> <hash, 64 hex>
 *
 * Passwords are hashed with PBKDF2-HMAC-SHA256 (mbed TLS) over a random
 * 16-byte salt per account, OTA_WEB_PBKDF2_ITERATIONS rounds. The file is
 * replaced atomically on every change; the CLI writes it (`otter user add`),
 * otter-web reads it on every login, so a change applies at once.
 *
 * Host code: uses the heap and the file system.
 */
#ifndef OTA_WEB_USERS_H
#define OTA_WEB_USERS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** PBKDF2-HMAC-SHA256 rounds of a new password (OWASP's 2021 advice for this hash). */
#define OTA_WEB_PBKDF2_ITERATIONS 310000
/** Longest account name (characters [A-Za-z0-9._-]). */
#define OTA_WEB_USER_NAME_MAX 64
/** Shortest password accepted. */
#define OTA_WEB_PASSWORD_MIN 10
/** Longest password accepted. */
#define OTA_WEB_PASSWORD_MAX 256

/** What an account may do. */
typedef enum ota_web_role {
    OTA_WEB_ROLE_NONE = 0,     /**< not logged in */
    OTA_WEB_ROLE_VIEWER = 1,   /**< reads everything but keys */
    OTA_WEB_ROLE_OPERATOR = 2, /**< also creates and cancels jobs */
} ota_web_role_t;

/** "viewer", "operator" ("none" otherwise). */
const char *ota_web_role_name(ota_web_role_t role);

/**
 * Parses "viewer" or "operator".
 * @return 0 and *out, or -1.
 */
int ota_web_role_parse(const char *text, ota_web_role_t *out);

/** 1 if name is a valid account name (1..64 of [A-Za-z0-9._-]), else 0. */
int ota_web_user_valid_name(const char *name);

/**
 * Adds an account, or replaces its role and password when it exists and
 * replace is 1.
 * @param err receives "<what went wrong>; <what to do>" on failure.
 * @return 0; -1 on failure (bad name or password, exists without replace, I/O).
 */
int ota_web_user_add(const char *data_dir, const char *name, ota_web_role_t role,
                     const char *password, int replace, char *err, size_t cap);

/**
 * Removes an account.
 * @return 0; -1 with err (unknown account, I/O).
 */
int ota_web_user_remove(const char *data_dir, const char *name, char *err, size_t cap);

/** Callback of ota_web_user_list(); return nonzero to stop. */
typedef int (*ota_web_user_cb)(void *ctx, const char *name, ota_web_role_t role);

/**
 * Lists the accounts in file order.
 * @return 0 (also when there is no file yet); -1 on a read error.
 */
int ota_web_user_list(const char *data_dir, ota_web_user_cb cb, void *ctx);

/**
 * Checks a password. Takes as long for an unknown account as for a known one
 * (a dummy hash is computed), so timing tells nothing about which exist.
 * @param role receives the account's role on success.
 * @return 1 when name and password match, 0 otherwise (also on errors).
 */
int ota_web_user_verify(const char *data_dir, const char *name, const char *password,
                        ota_web_role_t *role);

/**
 * The current role of an account (for sessions: an account removed or
 * given another role loses its sessions at their next request).
 * @return the role, or OTA_WEB_ROLE_NONE for an unknown account.
 */
ota_web_role_t ota_web_user_role(const char *data_dir, const char *name);

/**
 * Fills buf with len random bytes from the kernel (getrandom).
 * @return 0, or -1.
 */
int ota_web_random(unsigned char *buf, size_t len);

/** Constant-time comparison of two byte strings of length n: 1 if equal. */
int ota_web_equal(const void *a, const void *b, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* OTA_WEB_USERS_H */
