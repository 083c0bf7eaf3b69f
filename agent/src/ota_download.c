/*
 * otter: the download of one file (see ota_download.h).
 */
#include "ota_download.h"
#include "ota_out_of_line.h"

#include <stddef.h>
#include <string.h>

static int ota_reached(uint32_t now, uint32_t deadline)
{
    return (uint32_t)(now - deadline) < 0x80000000u;
}

OTA_OUT_OF_LINE static int ota_bit(const uint8_t *bitmap, uint32_t k)
{
    return (int)(((uint32_t)bitmap[k / 8u] >> (k % 8u)) & 1u);
}

OTA_OUT_OF_LINE static void ota_bit_set(uint8_t *bitmap, uint32_t k)
{
    bitmap[k / 8u] = (uint8_t)(bitmap[k / 8u] | (1u << (k % 8u)));
}

/* Milliseconds a round trip may exceed the shortest one by, beyond a
 * quarter of it, before the window takes it for a queue (the clock's and the
 * schedulers' jitter). */
#define OTA_RTT_SLACK_MS 8u

OTA_OUT_OF_LINE static void ota_arm(ota_download_t *d, uint32_t now)
{
    d->deadline = now + d->rto;
    d->deadline_set = 1;
}

/* The window becomes w blocks at now: at least 4 (or the first window if
 * smaller), so a request keeps carrying several blocks; at most
 * OTA_WINDOW_MAX_BYTES of blocks and 255. */
OTA_OUT_OF_LINE static void ota_set_window(ota_download_t *d, uint32_t w, uint32_t now)
{
    uint32_t max = OTA_WINDOW_MAX_BYTES / d->block_size;
    uint32_t min = d->cfg->window_blocks < 4u ? d->cfg->window_blocks : 4u;
    max = max > 255u ? 255u : max;
    w = w > max ? max : w;
    d->window = w > min ? w : min;
    d->stats->window_blocks = d->window;
    d->adapted_at = now;
}

void ota_download_init(ota_download_t *d, const ota_agent_config_t *cfg, ota_agent_stats_t *stats,
                       int adaptive)
{
    memset(d, 0, sizeof *d);
    d->cfg = cfg;
    d->stats = stats;
    d->adaptive = (uint8_t)(adaptive != 0);
    d->window = cfg->window_blocks;
    d->rto = cfg->rto_initial_ms;
    stats->rto_ms = d->rto;
    stats->window_blocks = d->window;
}

void ota_download_begin(ota_download_t *d, uint8_t *done, uint32_t file_size, uint32_t block_size)
{
    d->done = done;
    d->file_size = file_size;
    d->block_size = block_size;
    d->block_count = file_size / block_size + (file_size % block_size != 0u ? 1u : 0u);
    memset((uint8_t *)d + offsetof(ota_download_t, throttled), 0,
           offsetof(ota_download_t, rtt_last) + sizeof d->rtt_last -
               offsetof(ota_download_t, throttled));
    for (uint32_t k = 0; k < d->block_count; k++) {
        d->blocks_done += (uint32_t)ota_bit(done, k);
    }
    /* A new file may come over another link: the window starts again. */
    d->window = d->cfg->window_blocks;
    d->stats->window_blocks = d->window;
    d->startup = 1;
}

uint32_t ota_download_block_len(const ota_download_t *d, uint32_t index)
{
    return index + 1u == d->block_count ? d->file_size - index * d->block_size : d->block_size;
}

int ota_download_complete(const ota_download_t *d)
{
    return d->blocks_done == d->block_count;
}

void ota_download_round(ota_download_t *d)
{
    d->cursor = 0;
    d->inflight = 0;
    d->rtt_pending = 0; /* blocks of an earlier round or job are not timed */
    d->probe = 0;
}

/* The first block not written (the download is not complete). */
static uint32_t ota_first_missing(const ota_download_t *d)
{
    uint32_t k = 0;
    while (ota_bit(d->done, k)) {
        k++;
    }
    return k;
}

int ota_download_plan(ota_download_t *d, ota_block_request_t *req, int first)
{
    uint32_t cap = OTA_REQUEST_BYTES_MAX / d->block_size; /* blocks in one request */
    uint32_t want = d->window - d->inflight;
    uint32_t top_up = d->window - d->window / 2u;
    uint32_t k, end = 0;

    /* Top the window up once half of it, or one full request, has arrived
     * (pipelining: a large window never drains to half before it is topped up). */
    top_up = top_up > cap ? cap : top_up;
    want = want > cap ? cap : want;
    if (d->throttled || d->paused) {
        return 0;
    }
    memset(req, 0, sizeof *req);
    if (d->probe) {
        /* After a timeout with nothing lost for sure: one block alone, the
         * earlier requests still in flight (sent() moves nothing). */
        /* The last block asked for, unless written: then every block asked
         * for is (none is missing below one that arrived), and the first
         * missing one was never asked for. */
        req->offset = d->asked_hi - 1u;
        if (d->asked_hi == 0u || ota_bit(d->done, req->offset)) {
            req->offset = ota_first_missing(d);
        }
        req->count = 1;
        req->bitmap[0] = 1;
        req->bitmap_len = 1;
        return 1;
    }
    if ((first && d->inflight + top_up > d->window) || d->inflight >= d->window ||
        d->cursor >= d->block_count) {
        return 0;
    }
    for (k = d->cursor; k < d->block_count && req->count < want; k++) {
        if (ota_bit(d->done, k)) {
            continue;
        }
        if (req->count == 0u) {
            req->offset = k;
        } else if (k - req->offset >= OTA_REQUEST_BITMAP_MAX * 8u) {
            break;
        }
        ota_bit_set(req->bitmap, k - req->offset);
        req->count++;
        end = k + 1u;
    }
    req->next = k;
    if (req->count == 0u) {
        d->cursor = k; /* nothing missing from the cursor on */
        return 0;
    }
    req->bitmap_len = (end - req->offset + 7u) / 8u;
    return 1;
}

void ota_download_sent(ota_download_t *d, const ota_block_request_t *req, int sent, uint32_t now)
{
    if (!sent) {
        /* The timer retries; a link that stays down ends in a timeout. */
        d->request_failed = 1;
        ota_arm(d, now);
        return;
    }
    d->request_failed = 0;
    d->stats->requests++;
    ota_arm(d, now);
    if (d->probe) {
        d->probe = 0;
        return;
    }
    /* Karn: a block asked for before may answer the earlier request, so only
     * a request for blocks never asked for is timed. */
    if (!d->rtt_pending && req->offset >= d->asked_hi) {
        d->rtt_pending = 1;
        d->request_sent = now;
        d->rtt_lo = req->offset;
        d->rtt_hi = req->next;
    }
    if (req->next > d->asked_hi) {
        d->asked_hi = req->next;
    }
    d->cursor = req->next;
    d->inflight += req->count;
}

ota_block_check_t ota_download_check(ota_download_t *d, uint32_t index, size_t len)
{
    if (index >= d->block_count || len != ota_download_block_len(d, index)) {
        return OTA_BLOCK_BAD;
    }
    if (ota_bit(d->done, index)) {
        d->stats->blocks_duplicate++;
        return OTA_BLOCK_DUPLICATE;
    }
    return OTA_BLOCK_NEW;
}

OTA_OUT_OF_LINE static void ota_update_rto(ota_download_t *d, uint32_t sample)
{
    uint32_t rto;
    if (d->srtt == 0u) {
        d->srtt = sample * 8u;
        d->rttvar = sample * 2u;
    } else {
        uint32_t mean = d->srtt / 8u;
        uint32_t delta = sample > mean ? sample - mean : mean - sample;
        d->rttvar = d->rttvar - d->rttvar / 4u + delta;
        d->srtt = d->srtt - d->srtt / 8u + sample;
    }
    if (d->srtt < 8u) {
        d->srtt = 8u;
    }
    rto = d->srtt / 8u + d->rttvar;
    if (rto < d->cfg->rto_min_ms) {
        rto = d->cfg->rto_min_ms;
    }
    if (rto > d->cfg->rto_max_ms) {
        rto = d->cfg->rto_max_ms;
    }
    d->rto = rto;
    d->stats->rto_ms = rto;
    d->stats->rtt_ms = d->srtt / 8u;
}

/*
 * The delay-based window (docs/AGENT.md): a round trip of sample ms, of a
 * request sent at sent, against the shortest of the file. Only a request
 * sent after the last change tells of it. Within a quarter of the shortest
 * (and the slack), no queue builds: the window doubles until the first queue,
 * then grows by an eighth. Beyond, it shrinks in the ratio of the shortest
 * round trip to this one, to what the link holds without a queue. After the
 * first queue the shorter of this round trip and the one before decides, so
 * one late segment changes nothing.
 */
OTA_OUT_OF_LINE static void ota_adapt(ota_download_t *d, uint32_t sample, uint32_t sent,
                                      uint32_t now)
{
    uint32_t rtt, limit, w = d->window;
    sample = (sample > 0xFFFFFFu ? 0xFFFFFFu : sample) + 1u; /* w x limit fits 32 bits */
    if (d->rtt_base == 0u) {
        d->adapted_at = sent; /* the first round trip decides */
    }
    if (d->rtt_base == 0u || sample < d->rtt_base) {
        d->rtt_base = sample;
    }
    rtt = !d->startup && d->rtt_last != 0u && d->rtt_last < sample ? d->rtt_last : sample;
    d->rtt_last = sample;
    if (!d->adaptive || !ota_reached(sent, d->adapted_at)) {
        return;
    }
    limit = d->rtt_base + d->rtt_base / 4u + OTA_RTT_SLACK_MS;
    if (rtt <= limit) {
        w = d->startup ? 2u * w : w + w / 8u + 1u;
    } else {
        d->startup = 0;
        w = w * d->rtt_base / rtt;
    }
    ota_set_window(d, w, now);
}

void ota_download_written(ota_download_t *d, uint32_t index, uint32_t now)
{
    ota_bit_set(d->done, index);
    d->answered = 1;
    d->blocks_done++;
    d->stats->blocks_received++;
    if (index < d->cursor && d->inflight > 0u) {
        d->inflight--;
    }
    d->timeouts_in_row = 0;
    if (index >= d->seen_hi) {
        d->seen_hi = index + 1u;
    }
    if (d->rtt_pending && index >= d->rtt_lo && index < d->rtt_hi) {
        d->rtt_pending = 0;
        ota_update_rto(d, now - d->request_sent);
        ota_adapt(d, now - d->request_sent, d->request_sent, now);
    }
    ota_arm(d, now);
}

uint32_t ota_download_back_off(ota_download_t *d)
{
    d->rto = d->rto * 2u > d->cfg->rto_max_ms ? d->cfg->rto_max_ms : d->rto * 2u;
    d->stats->rto_ms = d->rto;
    return d->rto;
}

void ota_download_throttled(ota_download_t *d, uint32_t now)
{
    d->stats->throttled++;
    (void)ota_download_back_off(d);
    d->throttled = 1;
    d->rtt_pending = 0;
    ota_arm(d, now);
}

ota_download_timer_t ota_download_timer(ota_download_t *d, uint32_t now)
{
    uint32_t gap = now - d->checked_at;
    d->checked_at = now;
    if (d->answered && !d->throttled) {
        /* Blocks still arrive: the time spent handling them (a slow port's
         * writes) is no lost request. Count from now. */
        d->answered = 0;
        d->deaf = 0;
        ota_arm(d, now);
        return OTA_DOWNLOAD_WAIT;
    }
    if (!d->deadline_set || !ota_reached(now, d->deadline)) {
        return OTA_DOWNLOAD_WAIT;
    }
    if (gap > d->rto && !d->deaf && !d->throttled) {
        /* The agent was not called for longer than the timeout (the device
         * was busy): what arrived meanwhile waits unread in the MQTT client.
         * Put the expiry off once, by a timeout from now. */
        d->deaf = 1;
        ota_arm(d, now);
        return OTA_DOWNLOAD_WAIT;
    }
    if (d->throttled) {
        d->throttled = 0; /* a refusal over budget is no timeout */
        return OTA_DOWNLOAD_RESUME;
    }
    d->stats->timeouts++;
    /* A request the MQTT client could not send says the link is down, not
     * that the service is silent: wait for it to return. */
    if (!d->request_failed && ++d->timeouts_in_row > d->cfg->max_timeouts) {
        return OTA_DOWNLOAD_GIVE_UP;
    }
    (void)ota_download_back_off(d);
    d->rtt_pending = 0;
    if (d->adaptive) {
        /* A lost request or an overloaded service: half the window. */
        d->startup = 0;
        ota_set_window(d, d->window / 2u, now);
    }
    /* Blocks missing below one that arrived are taken as lost (one service
     * instance answers a device's requests in order; with several instances
     * sharing them, late answers may look lost, and then the whole round is
     * asked again, as before this check): ask for them again. Otherwise the answers
     * may only be late (a busy service), and asking for the whole window
     * again would double its load: ask for the last block asked for alone.
     * Its answer comes after the earlier ones, so if they were lost it leaves
     * them missing below it, and the next expiry asks for them. */
    if (ota_first_missing(d) < d->seen_hi) {
        return OTA_DOWNLOAD_RETRY;
    }
    d->probe = 1;
    return OTA_DOWNLOAD_PROBE;
}
