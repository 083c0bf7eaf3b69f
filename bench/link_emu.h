/*
 * otter benchmarks: a link emulator, a user-space TCP proxy that gives a
 * loopback connection the shape of a real link.
 *
 * Kernel netem is not available on these machines, so the emulator sits
 * between a client (the device) and a server (the broker): it listens on
 * 127.0.0.1, and for every connection it accepts it opens one to the target
 * and relays both directions through a model of a link:
 *
 *   read (at most one segment, default 1448 bytes, from the sending socket)
 *     -> bottleneck: a FIFO of queue_bytes drained at rate_bps
 *     -> propagation: delay_ms, plus one round trip for a "lost" segment
 *        (loss) or reorder_ms for a "reordered" one
 *     -> write to the receiving socket, in order.
 *
 * Per segment of n bytes read at time t_in (the departure time is the end of
 * its serialization at the bottleneck; t_due the time it is written out):
 *
 *   t_dep = max(t_in, t_dep of the previous segment) + 8 n / rate_bps
 *   t_due = max(t_dep + delay_ms + extra, t_due of the previous segment)
 *
 * Each direction (up: client to target; down: target to client) has its own
 * delay, rate and bottleneck buffer. The schedule is computed from these
 * times, not from when the emulator's thread happens to run, so a late
 * wake-up delays one write but does not slow the link down: the segments
 * behind it keep their times.
 *
 * Overflow: a full bottleneck buffer is not a drop. The emulator stops
 * reading from the sending socket until the buffer has room (TCP
 * back-pressure): the bytes wait in the sender's socket, as they would wait
 * in a TCP sender whose window is full. Real losses are modelled separately,
 * as what TCP makes of them: the lost segment arrives one round trip later
 * (its retransmission), and since TCP delivers a byte stream in order, every
 * segment behind it waits for it (head-of-line blocking). A reordered
 * segment is, seen from the application over TCP, also a delayed one: the
 * segments that overtook it wait in the receiver's reassembly queue. Not
 * modelled: the TCP handshake's round trip (the connection to the target is
 * made at once; the first bytes pay the delay), TCP's congestion control
 * (no window reduction after a loss), and link-layer or TCP/IP headers: the
 * rate is of TCP payload bytes.
 *
 * One thread serves all connections of an emulator (poll, timers with
 * nanosecond resolution). It asks for real-time scheduling (SCHED_FIFO,
 * priority LINK_EMU_RT_PRIORITY; granted to root) unless told not to: on a
 * machine whose cores are busy, an ordinary thread waits for the next
 * scheduler tick (4 ms here) to read or write, and the link would gain that
 * much delay per hop; a real-time one runs at once. Its work is a few system
 * calls per segment. Listens on 127.0.0.1 only.
 */
#ifndef LINK_EMU_H
#define LINK_EMU_H

#include <stddef.h>
#include <stdint.h>

/** Default segment size: a TCP payload on Ethernet with timestamps. */
#define LINK_EMU_SEGMENT_BYTES 1448u

/** Smallest default bottleneck buffer, bytes. */
#define LINK_EMU_QUEUE_MIN_BYTES (16u * 1024u)

/** Real-time priority of the emulator's thread (SCHED_FIFO, 1 .. 99). */
#define LINK_EMU_RT_PRIORITY 10

/** Bytes held per direction when the rate is unlimited (bounds memory). */
#define LINK_EMU_HOLD_UNLIMITED (4u * 1024u * 1024u)

/** The link in one direction. */
typedef struct link_emu_dir_config {
    /** One-way propagation delay, ms (0 .. 60000). */
    double delay_ms;
    /** Bottleneck rate in bits of TCP payload per second; 0: unlimited (else 1000 .. 1e11). */
    double rate_bps;
    /**
     * Bottleneck buffer, bytes (at least one segment); 0: one bandwidth-delay
     * product of this direction's rate and the round trip (both delays), at
     * least LINK_EMU_QUEUE_MIN_BYTES. Ignored when the rate is unlimited.
     */
    size_t queue_bytes;
} link_emu_dir_config_t;

/** An emulator; zero means default for every number. */
typedef struct link_emu_config {
    /** Port to listen on at 127.0.0.1; 0: a free one (see link_emu_port()). */
    int listen_port;
    /** Where to connect each accepted connection to: a host name or address. */
    const char *target_host;
    /** Its port, 1 .. 65535. */
    int target_port;
    /** Client to target. */
    link_emu_dir_config_t up;
    /** Target to client. */
    link_emu_dir_config_t down;
    /** Share of segments (0 .. 1) that arrive one round trip late, as a loss repaired by TCP. */
    double loss;
    /** Share of segments (0 .. 1, before loss) that arrive reorder_ms late. */
    double reorder;
    /** Extra delay of a reordered segment, ms (0 .. 60000). */
    double reorder_ms;
    /** Seed of the random choices (0: a fixed default); equal seeds choose alike. */
    uint64_t seed;
    /** Largest segment, bytes (0: LINK_EMU_SEGMENT_BYTES; else 64 .. 65536). */
    size_t segment_bytes;
    /** Most connections at once (0: 16; else 1 .. 1024); more are refused (closed). */
    unsigned max_connections;
    /** 1: keep the thread at ordinary priority (do not ask for SCHED_FIFO). */
    int plain_priority;
} link_emu_config_t;

/** What one direction carried, over all connections since the start. */
typedef struct link_emu_dir_stats {
    uint64_t bytes;       /**< bytes written to the receiver */
    uint64_t segments;    /**< segments written in full */
    uint64_t lost;        /**< segments delayed by one round trip (loss) */
    uint64_t reordered;   /**< segments delayed by reorder_ms */
    double first_s;       /**< CLOCK_MONOTONIC seconds of the first write (0: none) */
    double last_s;        /**< CLOCK_MONOTONIC seconds of the last completed segment */
    uint64_t first_bytes; /**< bytes of the first segment (not paced by the rate before it) */
    double late_max_s;    /**< most a segment's write began after its due time, s */
    double late_sum_s;    /**< sum of those, s (divide by segments for the mean) */
    size_t queue_peak;    /**< most bytes ever waiting at the bottleneck */
    size_t held_peak;     /**< most bytes ever inside the emulator (queued and in flight) */
    size_t queue_bytes;   /**< the bottleneck buffer in use (after defaults) */
} link_emu_dir_stats_t;

/** What the emulator did since the start. */
typedef struct link_emu_stats {
    link_emu_dir_stats_t up;   /**< client to target */
    link_emu_dir_stats_t down; /**< target to client */
    uint64_t accepted;         /**< connections relayed */
    uint64_t refused;          /**< connections closed: too many, or the target refused */
    unsigned open;             /**< connections open now */
    int realtime;              /**< 1: the thread runs with SCHED_FIFO */
} link_emu_stats_t;

/** An emulator (opaque). */
typedef struct link_emu link_emu_t;

/**
 * Check a configuration.
 * @param cfg the configuration.
 * @param why receives a one-line reason when it is invalid (may be NULL).
 * @param n   size of why.
 * @return 0 valid; -1 invalid.
 */
int link_emu_check(const link_emu_config_t *cfg, char *why, size_t n);

/**
 * Listen on 127.0.0.1 and start the emulator's thread.
 * @param cfg the configuration (copied; target_host is used during the call only).
 * @param out receives the emulator.
 * @return 0; -1 with a message on stderr (an invalid configuration, the
 *         target name does not resolve, the port is taken); nothing is left
 *         running then.
 */
int link_emu_start(const link_emu_config_t *cfg, link_emu_t **out);

/**
 * The port the emulator listens on at 127.0.0.1.
 * @param emu a started emulator.
 * @return the port.
 */
int link_emu_port(const link_emu_t *emu);

/**
 * A snapshot of the counters (thread-safe).
 * @param emu a started emulator.
 * @param out receives the counters.
 */
void link_emu_get_stats(link_emu_t *emu, link_emu_stats_t *out);

/**
 * Stop the thread, close every connection (both sides, at once) and the
 * listening socket, and free the emulator. Bytes still inside are dropped.
 * @param emu the emulator (NULL is allowed).
 */
void link_emu_stop(link_emu_t *emu);

/** CLOCK_MONOTONIC in seconds, the clock of link_emu_dir_stats_t. */
double link_emu_now(void);

#endif /* LINK_EMU_H */
