/* The rules of the service's watch on the other hub (see ota_svc_fed_rules.h). */
#include "ota_svc_fed_rules.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Broker 0 must keep the watch's connection this long before the main connection moves back;
 * doubled at every flap, up to HOME_STABLE_MAX_MS, back to the base after FLAP_FORGET_MS on
 * broker 0. */
#define HOME_STABLE_MS 3000
#define HOME_STABLE_MAX_MS 60000
#define FLAP_WINDOW_MS 30000
#define FLAP_FORGET_MS 300000
/* Probes: one each way this often; a direction silent this long is a split (longer before the
 * first probe of a pairing crossed: a hub that just started has its bridge up a few seconds
 * later). */
#define PROBE_EVERY_MS 1000
#define SPLIT_MS 6000
#define SPLIT_FIRST_MS 15000
/* The other hub unreachable this long: reported. */
#define ALONE_MS 15000

void ota_svc_fed_rules_logf(ota_svc_fed_rules_t *r, int level, const char *fmt, ...)
{
    char line[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (r->log != NULL) {
        r->log(r->ctx, level, line);
    }
}

void ota_svc_fed_rules_init(ota_svc_fed_rules_t *r,
                            void (*log)(void *ctx, int level, const char *line), void *ctx)
{
    memset(r, 0, sizeof *r);
    r->log = log;
    r->ctx = ctx;
    r->index = -1;
    r->main_index = -1;
    r->stable_ms = HOME_STABLE_MS;
}

/* A failure of the main connection: within FLAP_WINDOW_MS of a move back, a flap. */
static void main_failed(ota_svc_fed_rules_t *r, int64_t now, const char *how)
{
    if (r->moved_at != 0 && now - r->moved_at < FLAP_WINDOW_MS) {
        r->stats.flaps++;
        r->stable_ms =
            r->stable_ms * 2 > HOME_STABLE_MAX_MS ? HOME_STABLE_MAX_MS : r->stable_ms * 2;
        ota_svc_fed_rules_logf(
            r, 1,
            "broker 1 failed %.1f s after the move back to it%s: it must now stay "
            "reachable for %.0f s before the next move back",
            (double)(now - r->moved_at) / 1000.0, how, (double)r->stable_ms / 1000.0);
    }
    r->moved_at = 0;
}

int ota_svc_fed_rules_target(ota_svc_fed_rules_t *r, int main_index, const char *host, int port,
                             int index, int64_t now)
{
    if (main_index >= 0) {
        if (main_index != 0 && r->moved_at != 0) {
            /* Asked to move to broker 0, the main connection came up elsewhere. */
            main_failed(r, now, " (the main connection went to another broker)");
        }
        r->main_index = main_index;
    }
    if (main_index < 0 || host == NULL) {
        r->main_ready = 0;
        if (r->index >= 0) {
            int was_up = ota_svc_fed_rules_watch_down(r, now);
            r->index = -1;
            return OTA_SVC_FED_END | (was_up ? OTA_SVC_FED_WAS_UP : 0);
        }
        return OTA_SVC_FED_KEEP;
    }
    if (r->index == index && strcmp(r->host, host) == 0 && r->port == port) {
        return OTA_SVC_FED_KEEP;
    }
    int was_up = ota_svc_fed_rules_watch_down(r, now);
    snprintf(r->host, sizeof r->host, "%s", host);
    r->port = port;
    r->index = index;
    r->down_since = now;
    r->alone = 0;
    return OTA_SVC_FED_GO | (was_up ? OTA_SVC_FED_WAS_UP : 0);
}

void ota_svc_fed_rules_watch_up(ota_svc_fed_rules_t *r, int64_t now)
{
    r->connected = 1;
    r->up_since = now;
    r->down_since = 0;
    if (r->alone) {
        r->alone = 0;
        ota_svc_fed_rules_logf(r, 2, "federation watch: broker %d (%s:%d) reachable again",
                               r->index + 1, r->host, r->port);
    }
    ota_svc_fed_rules_logf(r, 3, "federation watch: connected to broker %d (%s:%d)", r->index + 1,
                           r->host, r->port);
}

int ota_svc_fed_rules_watch_down(ota_svc_fed_rules_t *r, int64_t now)
{
    int was_up = r->connected;
    if (was_up) {
        r->down_since = now;
        ota_svc_fed_rules_logf(r, 3, "federation watch: connection to broker %d (%s:%d) ended",
                               r->index + 1, r->host, r->port);
    }
    r->connected = 0;
    r->pair_since = 0;
    return was_up;
}

int ota_svc_fed_rules_watch_connected(const ota_svc_fed_rules_t *r)
{
    return r->connected;
}

int ota_svc_fed_rules_watch_index(const ota_svc_fed_rules_t *r)
{
    return r->index;
}

const char *ota_svc_fed_rules_watch_host(const ota_svc_fed_rules_t *r)
{
    return r->index >= 0 ? r->host : "";
}

int ota_svc_fed_rules_watch_port(const ota_svc_fed_rules_t *r)
{
    return r->port;
}

ota_svc_fed_stats_t ota_svc_fed_rules_stats(const ota_svc_fed_rules_t *r)
{
    return r->stats;
}

void ota_svc_fed_rules_main_ready(ota_svc_fed_rules_t *r, int ready, int64_t now)
{
    if (ready != r->main_ready) {
        r->pair_since = 0;
        r->ready_since = now;
    }
    r->main_ready = ready;
}

void ota_svc_fed_rules_probe_at_watch(ota_svc_fed_rules_t *r, int64_t now)
{
    r->seen_to_watch = now;
}

void ota_svc_fed_rules_probe_at_main(ota_svc_fed_rules_t *r, int64_t now)
{
    r->seen_to_main = now;
}

void ota_svc_fed_rules_main_lost(ota_svc_fed_rules_t *r, int64_t now)
{
    main_failed(r, now, "");
}

/* Probes both ways and the split's verdict. A split stays open across pairings: only probes
 * that crossed both ways in the current pairing heal it. */
static int check_split(ota_svc_fed_rules_t *r, int64_t now)
{
    int probe = 0;
    if (!r->connected || !r->main_ready) {
        r->pair_since = 0;
        return 0;
    }
    if (r->pair_since == 0) {
        r->pair_since = now;
        r->seen_to_watch = 0;
        r->seen_to_main = 0;
        r->last_probe = 0;
        r->crossed = 0;
    }
    if (r->last_probe == 0 || now - r->last_probe >= PROBE_EVERY_MS) {
        r->last_probe = now;
        probe = 1;
    }
    int both = r->seen_to_watch != 0 && r->seen_to_main != 0;
    int64_t to_watch =
        r->seen_to_watch != 0 ? r->seen_to_watch + SPLIT_MS : r->pair_since + SPLIT_FIRST_MS;
    int64_t to_main =
        r->seen_to_main != 0 ? r->seen_to_main + SPLIT_MS : r->pair_since + SPLIT_FIRST_MS;
    int down = now > to_watch || now > to_main;
    if (r->split) {
        if (both && !down) {
            r->split = 0;
            r->crossed = 1;
            ota_svc_fed_rules_logf(
                r, 1,
                "federation split healed: probes cross between hub %d and hub %d again "
                "(reported split for %.1f s)",
                r->main_index + 1, r->index + 1, (double)(now - r->split_since) / 1000.0);
        }
    } else if (down) {
        int a_to_b = now > to_watch, b_to_a = now > to_main;
        r->split = 1;
        r->split_since = now;
        r->stats.splits++;
        ota_svc_fed_rules_logf(
            r, 0,
            "federation split: this instance reaches hub %d (its connection) and hub %d "
            "(%s:%d), but no probe crossed %s for %d s: the hubs cannot reach each other. "
            "Devices on the brokers on one side cannot reach the instances on the other; check "
            "the bridge from hub 1 to hub 2 (the network between them; hub 1's log, "
            "connection otter-federation)",
            r->main_index + 1, r->index + 1, r->host, r->port,
            a_to_b && b_to_a ? "either way"
            : a_to_b         ? "from the first to the second"
                             : "from the second to the first",
            (both ? SPLIT_MS : SPLIT_FIRST_MS) / 1000);
    } else if (!r->crossed && both) {
        r->crossed = 1;
        ota_svc_fed_rules_logf(
            r, 2, "federation: probes cross both ways between hub %d and hub %d (%s:%d)",
            r->main_index + 1, r->index + 1, r->host, r->port);
    }
    return probe;
}

int ota_svc_fed_rules_poll(ota_svc_fed_rules_t *r, int64_t now, int *probe)
{
    *probe = 0;
    if (r->main_index == 0 && r->main_ready) {
        if (r->moved_at != 0 && now - r->moved_at >= FLAP_WINDOW_MS) {
            r->moved_at = 0; /* stayed: no flap */
        }
        if (r->stable_ms > HOME_STABLE_MS && now - r->ready_since >= FLAP_FORGET_MS) {
            r->stable_ms = HOME_STABLE_MS;
        }
    }
    if (r->index < 0) {
        return OTA_SVC_FED_NOTHING;
    }
    if (!r->connected && r->down_since != 0 && !r->alone && now - r->down_since >= ALONE_MS) {
        r->alone = 1;
        ota_svc_fed_rules_logf(
            r, 1,
            "federation: broker %d (%s:%d) unreachable for %d s; this instance serves the devices "
            "of the brokers that reach broker %d only",
            r->index + 1, r->host, r->port, ALONE_MS / 1000, r->main_index + 1);
    }
    *probe = check_split(r, now);
    /* Back to broker 0 once it kept the watch's connection for the stable time and probes
     * cross between it and this broker (its bridge is up), or after SPLIT_FIRST_MS without
     * (the spokes are on broker 0 then: the larger part). */
    int crossing = r->pair_since != 0 && r->seen_to_watch != 0 && r->seen_to_main != 0;
    int64_t up = r->connected ? now - r->up_since : -1;
    if (r->main_index > 0 && r->index == 0 && up >= r->stable_ms &&
        (crossing || up >= SPLIT_FIRST_MS)) {
        r->stats.moves_home++;
        r->moved_at = now;
        return OTA_SVC_FED_MOVE_HOME;
    }
    return OTA_SVC_FED_NOTHING;
}

const char *ota_svc_fed_rules_state(const ota_svc_fed_rules_t *r)
{
    if (r->alone) {
        return "alone";
    }
    if (r->split) {
        return "split";
    }
    if (r->pair_since != 0 && r->seen_to_watch != 0 && r->seen_to_main != 0) {
        return "ok";
    }
    return "waiting";
}

int64_t ota_svc_fed_rules_stable_ms(const ota_svc_fed_rules_t *r)
{
    return r->stable_ms;
}
