/* otter web console: login sessions and throttling (see ota_web_sessions.h). */
#include "ota_web_sessions.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define THROTTLE_KEYS 4096
/** Client addresses where a login succeeded, remembered at most. */
#define KNOWN_ADDRS 256
#define THROTTLE_KEY_MAX 96
/** A key with no failure for this long is forgotten. */
#define THROTTLE_FORGET_MS (3600LL * 1000)

typedef struct throttle {
    char key[THROTTLE_KEY_MAX + 1];
    unsigned failures;
    unsigned inflight; /* attempts being checked now */
    int64_t last_ms;   /* the last failure */
    int64_t used_ms;   /* the last attempt or failure (which key gives way when all are used) */
} throttle_t;

struct ota_web_sessions {
    pthread_mutex_t lock;
    /* Password checks: running, waiting, and how many may run. */
    pthread_mutex_t hash_lock;
    pthread_cond_t hash_free;
    unsigned hashing, hash_waiting, hash_slots;
    int kept_busy; /* the slot kept for known addresses */
    struct {
        char addr[64];
        int64_t ms;
    } known[KNOWN_ADDRS];
    ota_web_session_t sessions[OTA_WEB_SESSIONS_MAX];
    throttle_t throttle[THROTTLE_KEYS];
};

ota_web_sessions_t *ota_web_sessions_new(void)
{
    ota_web_sessions_t *s = calloc(1, sizeof *s);
    if (s != NULL) {
        pthread_mutex_init(&s->lock, NULL);
        pthread_mutex_init(&s->hash_lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&s->hash_free, &ca);
        pthread_condattr_destroy(&ca);
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        s->hash_slots = n < 1 ? 1 : n > 16 ? 16 : (unsigned)n;
    }
    return s;
}

void ota_web_sessions_free(ota_web_sessions_t *s)
{
    if (s != NULL) {
        pthread_mutex_destroy(&s->lock);
        pthread_mutex_destroy(&s->hash_lock);
        pthread_cond_destroy(&s->hash_free);
        memset(s->sessions, 0, sizeof s->sessions);
        free(s);
    }
}

static int token(char out[OTA_WEB_TOKEN_LEN + 1])
{
    unsigned char b[OTA_WEB_TOKEN_LEN / 2];
    if (ota_web_random(b, sizeof b) != 0) {
        return -1;
    }
    for (size_t i = 0; i < sizeof b; i++) {
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    }
    return 0;
}

static int expired(const ota_web_session_t *x, int64_t now_ms)
{
    return x->token[0] == '\0' || now_ms - x->last_ms > OTA_WEB_SESSION_IDLE_MS ||
           now_ms - x->created_ms > OTA_WEB_SESSION_MAX_MS;
}

int ota_web_session_start(ota_web_sessions_t *s, const char *user, ota_web_role_t role,
                          int64_t now_ms, ota_web_session_t *out)
{
    ota_web_session_t n;
    memset(&n, 0, sizeof n);
    if (token(n.token) != 0 || token(n.csrf) != 0) {
        return -1;
    }
    snprintf(n.user, sizeof n.user, "%s", user);
    n.role = role;
    n.created_ms = n.last_ms = now_ms;
    pthread_mutex_lock(&s->lock);
    /* A free (or expired) entry, and the account's own live sessions. */
    size_t free_slot = OTA_WEB_SESSIONS_MAX, own_oldest = OTA_WEB_SESSIONS_MAX;
    unsigned own = 0;
    for (size_t i = 0; i < OTA_WEB_SESSIONS_MAX; i++) {
        const ota_web_session_t *x = &s->sessions[i];
        if (expired(x, now_ms)) {
            if (free_slot == OTA_WEB_SESSIONS_MAX) {
                free_slot = i;
            }
            continue;
        }
        if (strcmp(x->user, n.user) == 0) {
            own++;
            if (own_oldest == OTA_WEB_SESSIONS_MAX ||
                x->last_ms < s->sessions[own_oldest].last_ms) {
                own_oldest = i;
            }
        }
    }
    size_t slot = own >= OTA_WEB_SESSIONS_PER_USER ? own_oldest : free_slot;
    if (slot == OTA_WEB_SESSIONS_MAX) {
        pthread_mutex_unlock(&s->lock);
        memset(&n, 0, sizeof n);
        return -2;
    }
    s->sessions[slot] = n;
    pthread_mutex_unlock(&s->lock);
    *out = n;
    return 0;
}

/* The live session with this token, or NULL; the lock is held. */
static ota_web_session_t *lookup(ota_web_sessions_t *s, const char *tok, int64_t now_ms)
{
    if (tok == NULL || strlen(tok) != OTA_WEB_TOKEN_LEN) {
        return NULL;
    }
    ota_web_session_t *found = NULL;
    for (size_t i = 0; i < OTA_WEB_SESSIONS_MAX; i++) {
        ota_web_session_t *x = &s->sessions[i];
        if (x->token[0] != '\0' && ota_web_equal(x->token, tok, OTA_WEB_TOKEN_LEN)) {
            found = x;
        }
    }
    if (found != NULL && expired(found, now_ms)) {
        memset(found, 0, sizeof *found);
        found = NULL;
    }
    return found;
}

int ota_web_session_find(ota_web_sessions_t *s, const char *tok, int64_t now_ms,
                         ota_web_session_t *out)
{
    pthread_mutex_lock(&s->lock);
    ota_web_session_t *x = lookup(s, tok, now_ms);
    if (x != NULL) {
        x->last_ms = now_ms;
        *out = *x;
    }
    pthread_mutex_unlock(&s->lock);
    return x != NULL ? 0 : -1;
}

int ota_web_session_alive(ota_web_sessions_t *s, const char *tok, int64_t now_ms)
{
    pthread_mutex_lock(&s->lock);
    int alive = lookup(s, tok, now_ms) != NULL;
    pthread_mutex_unlock(&s->lock);
    return alive;
}

void ota_web_session_end(ota_web_sessions_t *s, const char *tok)
{
    pthread_mutex_lock(&s->lock);
    ota_web_session_t *x = lookup(s, tok, 0);
    if (x != NULL) {
        memset(x, 0, sizeof *x);
    }
    pthread_mutex_unlock(&s->lock);
}

/* The entry of a key (creating it, or reusing the stalest with no attempt in flight), the
 * lock held; NULL when not found (or, creating, when every entry has one in flight). */
static throttle_t *throttle_entry(ota_web_sessions_t *s, const char *key, int create)
{
    throttle_t *stalest = NULL;
    for (size_t i = 0; i < THROTTLE_KEYS; i++) {
        throttle_t *t = &s->throttle[i];
        if (t->key[0] != '\0' && strncmp(t->key, key, THROTTLE_KEY_MAX) == 0) {
            return t;
        }
        if (t->inflight == 0 && (stalest == NULL || t->used_ms < stalest->used_ms)) {
            stalest = t;
        }
    }
    if (!create || stalest == NULL) {
        return NULL;
    }
    memset(stalest, 0, sizeof *stalest);
    snprintf(stalest->key, sizeof stalest->key, "%s", key);
    return stalest;
}

static int64_t wait_ms(const throttle_t *t, unsigned failures)
{
    unsigned free_n =
        strncmp(t->key, "addr:", 5) == 0 ? OTA_WEB_THROTTLE_FREE_ADDR : OTA_WEB_THROTTLE_FREE;
    if (failures < free_n) {
        return 0;
    }
    unsigned shift = failures - free_n;
    int64_t s = shift >= 10 ? OTA_WEB_THROTTLE_MAX_S : (int64_t)1 << shift;
    return (s > OTA_WEB_THROTTLE_MAX_S ? OTA_WEB_THROTTLE_MAX_S : s) * 1000;
}

/* Whether an attempt may go ahead, the lock held. Attempts in flight count as failures
 * until they end: within the free attempts any number may be checked at once, past them
 * one at a time, each after the wait. */
static int may_try(ota_web_sessions_t *s, const char *key, int64_t now_ms, unsigned *retry_s)
{
    throttle_t *t = throttle_entry(s, key, 0);
    if (t == NULL) {
        return 1;
    }
    /* Forgotten by the last failure, not the last attempt: successful logins from an
     * address that keeps its count (a shared one) do not keep its old failures. */
    if (t->inflight == 0 && now_ms - t->last_ms > THROTTLE_FORGET_MS) {
        memset(t, 0, sizeof *t);
        return 1;
    }
    if (wait_ms(t, t->failures + t->inflight) == 0) {
        return 1;
    }
    int64_t left = t->last_ms + wait_ms(t, t->failures) - now_ms;
    if (t->inflight == 0 && left <= 0) {
        return 1;
    }
    *retry_s = left > 1000 ? (unsigned)((left + 999) / 1000) : 1;
    return 0;
}

int ota_web_throttle_allow(ota_web_sessions_t *s, const char *key, int64_t now_ms,
                           unsigned *retry_s)
{
    pthread_mutex_lock(&s->lock);
    int allow = may_try(s, key, now_ms, retry_s);
    pthread_mutex_unlock(&s->lock);
    return allow;
}

int ota_web_throttle_begin(ota_web_sessions_t *s, const char *key, int64_t now_ms,
                           unsigned *retry_s)
{
    pthread_mutex_lock(&s->lock);
    int allow = may_try(s, key, now_ms, retry_s);
    if (allow) {
        throttle_t *t = throttle_entry(s, key, 1);
        if (t == NULL) {
            /* Every key has an attempt in flight: wait for one to end. */
            allow = 0;
            *retry_s = 1;
        } else {
            t->inflight++;
            t->used_ms = now_ms;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return allow;
}

void ota_web_throttle_failed(ota_web_sessions_t *s, const char *key, int64_t now_ms)
{
    pthread_mutex_lock(&s->lock);
    throttle_t *t = throttle_entry(s, key, 1);
    if (t != NULL) {
        if (t->inflight > 0) {
            t->inflight--;
        }
        t->failures++;
        t->last_ms = t->used_ms = now_ms;
    }
    pthread_mutex_unlock(&s->lock);
}

void ota_web_throttle_end(ota_web_sessions_t *s, const char *key)
{
    pthread_mutex_lock(&s->lock);
    throttle_t *t = throttle_entry(s, key, 0);
    if (t != NULL && t->inflight > 0) {
        t->inflight--;
    }
    pthread_mutex_unlock(&s->lock);
}

void ota_web_throttle_clear(ota_web_sessions_t *s, const char *key)
{
    pthread_mutex_lock(&s->lock);
    throttle_t *t = throttle_entry(s, key, 0);
    if (t != NULL && t->inflight > 1) {
        /* Other attempts still in flight keep counting. */
        t->inflight--;
        t->failures = 0;
    } else if (t != NULL) {
        memset(t, 0, sizeof *t);
    }
    pthread_mutex_unlock(&s->lock);
}

void ota_web_address_known(ota_web_sessions_t *s, const char *client, int64_t now_ms)
{
    if (client == NULL || client[0] == '\0') {
        return;
    }
    pthread_mutex_lock(&s->hash_lock);
    size_t slot = 0;
    for (size_t i = 0; i < KNOWN_ADDRS; i++) {
        if (strncmp(s->known[i].addr, client, sizeof s->known[i].addr - 1) == 0) {
            slot = i;
            break;
        }
        if (s->known[i].ms < s->known[slot].ms) {
            slot = i;
        }
    }
    snprintf(s->known[slot].addr, sizeof s->known[slot].addr, "%s", client);
    s->known[slot].ms = now_ms;
    pthread_mutex_unlock(&s->hash_lock);
}

/* Whether a login succeeded from this address lately; the hash lock held. */
static int address_known(const ota_web_sessions_t *s, const char *client, int64_t now_ms)
{
    if (client == NULL || client[0] == '\0') {
        return 0;
    }
    for (size_t i = 0; i < KNOWN_ADDRS; i++) {
        if (s->known[i].addr[0] != '\0' && now_ms - s->known[i].ms <= OTA_WEB_KNOWN_ADDR_MS &&
            strncmp(s->known[i].addr, client, sizeof s->known[i].addr - 1) == 0) {
            return 1;
        }
    }
    return 0;
}

int ota_web_hash_enter(ota_web_sessions_t *s, const char *client, int64_t now_ms)
{
    pthread_mutex_lock(&s->hash_lock);
    if (s->hashing >= s->hash_slots && !s->kept_busy && address_known(s, client, now_ms)) {
        s->kept_busy = 1;
        pthread_mutex_unlock(&s->hash_lock);
        return 2;
    }
    if (s->hashing >= s->hash_slots) {
        if (s->hash_waiting >= OTA_WEB_HASH_QUEUE) {
            pthread_mutex_unlock(&s->hash_lock);
            return 0;
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += OTA_WEB_HASH_WAIT_MS / 1000;
        until.tv_nsec += (OTA_WEB_HASH_WAIT_MS % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        s->hash_waiting++;
        int rc = 0;
        while (s->hashing >= s->hash_slots && rc == 0) {
            rc = pthread_cond_timedwait(&s->hash_free, &s->hash_lock, &until);
        }
        s->hash_waiting--;
        if (s->hashing >= s->hash_slots) {
            pthread_mutex_unlock(&s->hash_lock);
            return 0;
        }
    }
    s->hashing++;
    pthread_mutex_unlock(&s->hash_lock);
    return 1;
}

void ota_web_hash_leave(ota_web_sessions_t *s, int slot)
{
    pthread_mutex_lock(&s->hash_lock);
    if (slot == 2) {
        s->kept_busy = 0;
    } else if (s->hashing > 0) {
        s->hashing--;
        pthread_cond_signal(&s->hash_free);
    }
    pthread_mutex_unlock(&s->hash_lock);
}

unsigned ota_web_hash_slots(const ota_web_sessions_t *s)
{
    return s->hash_slots;
}
