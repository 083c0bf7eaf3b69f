/*
 * otter security tests: a device with its own valid login attacks the broker
 * `otter broker init` sets up, with the real Mosquitto and the real
 * otter-service on a free 127.0.0.1 port.
 *
 * - client-id takeover: the device connects with the service's client id
 *   (read from the service's log, and guessed from its pattern), with the id
 *   of the credentials file, the CLI's id and another thing's name; every
 *   CONNECT is refused and the victims stay connected and answered;
 * - retained messages: a forged notice left retained on the device's own
 *   notify-next topic is refused and never replayed;
 * - oversized packets: a publish above the broker's packet limit ends only
 *   the sender's connection;
 * - revocation: `otter thing revoke` ends the device's live session and its
 *   login is refused from then on;
 * - invalid requests: a flood of them is charged to the device's Jobs budget;
 * - echo: nothing a device sends comes back to it, so it cannot make the
 *   broker buffer its own messages;
 * - flood: a device publishes 130 kB QoS 0 messages on its own Jobs topic as
 *   fast as its link takes them; the broker drops them (otter's broker plugin),
 *   its memory stays bounded and another device's requests are answered
 *   promptly; a device's largest legitimate publish still arrives; a flood of
 *   small publishes is held to the device's message budget.
 *
 * Each test prints one line
 *   security: <name>: attacks=N refused=N honest_answered=N updates_lost=N
 * that scripts/test.sh sums.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ota_test_net.h"
#include "security_util.h"

/** Rounds of attacks; between rounds an honest device asks for its next job. */
#define ROUNDS 5
/** How long a test waits for a message that must not come. */
#define SILENCE_MS 800

/** The broker, the service and the logins of one test. */
static sec_world_t g;

/** The logins of the two things, in the order of setup's list. */
static ota_test_login_t g_logins[2];
#define g_attacker g_logins[0]
#define g_victim g_logins[1]

/* Broker, things attacker, victim and otter-service with its default client id. */
static int setup(void **state)
{
    static const char *const things[] = {"attacker", "victim", NULL};
    *state = &g;
    return sec_world_start(&g, NULL, things, g_logins);
}

/* The attacker's own login with a client id (NULL: its own). */
static ota_test_client_t *attacker(const char *client_id)
{
    return ota_test_login_connect(g.broker.port, &g_attacker, client_id);
}

/* No device can connect with another client's id, so none can push it off. */
static void test_client_id_takeover(void **state)
{
    (void)state;
    ota_test_client_t *victim = sec_device(&g, &g_victim);
    assert_non_null(victim);
    char host[128] = "localhost", guessed[2][200];
    gethostname(host, sizeof host - 1);
    snprintf(guessed[0], sizeof guessed[0], "otter-service-%s-%ld", host, (long)g.service.pid + 1);
    snprintf(guessed[1], sizeof guessed[1], "otter-service-%s-1", host);
    /* Every client id that belongs to someone else. */
    const char *ids[] = {g.service_id, "otter-service", "otter-service-0", guessed[0], guessed[1],
                         "otter-admin", "victim",
                         /* the same ids with other casing or spaces: the binding is exact */
                         "Victim", "victim ", " victim", "Otter-Service", "otter-service ",
                         /* its own name in other casing */
                         "Attacker"};
    const size_t n_ids = sizeof ids / sizeof ids[0];
    int attacks = 0, refused = 0, honest = 0;
    for (int round = 0; round < ROUNDS; round++) {
        for (size_t i = 0; i < n_ids; i++) {
            ota_test_client_t *c = attacker(ids[i]);
            attacks++;
            if (c == NULL) {
                refused++;
            } else {
                fprintf(stderr, "the attacker connected as '%s'\n", ids[i]);
                ota_test_client_disconnect(c);
            }
        }
        /* Another thing's username with the attacker's password. */
        ota_test_client_t *c =
            ota_test_client_connect(g.broker.port, "victim", "victim", g_attacker.password);
        attacks++;
        refused += c == NULL;
        ota_test_client_disconnect(c);
        honest += sec_honest_request(victim, "victim", round);
    }
    /* The attacker's own login still works: refusals are about the id, not the login. */
    ota_test_client_t *own = attacker(NULL);
    assert_non_null(own);
    ota_test_client_disconnect(own);
    sec_report("client_id_takeover", attacks, refused, honest);
    assert_int_equal(refused, attacks);
    assert_int_equal(honest, ROUNDS);
    /* The victims never lost their connection: no session was taken over, and the
     * service connected once. */
    assert_true(ota_test_client_connected(victim));
    assert_int_equal(sec_count_in_file(g.broker_log, "already connected"), 0);
    assert_int_equal(sec_count_in_file(g.service_log, "connected to "), 1);
    assert_true(ota_test_proc_running(&g.service, NULL));
    ota_test_client_disconnect(victim);
}

/* A forged notice left retained on the device's own topic is refused, never replayed. */
static void test_retained_notice(void **state)
{
    (void)state;
    static const char forged[] = "{\"execution\":{\"jobId\":\"forged\",\"status\":\"QUEUED\"}}";
    static const char topic[] = "$aws/things/attacker/jobs/notify-next";
    int attacks = 0, refused = 0, honest = 0;
    for (int qos = 0; qos <= 2; qos++) {
        ota_test_client_t *c = attacker(NULL);
        assert_non_null(c);
        (void)ota_test_client_publish_retained(c, topic, forged, strlen(forged), qos, 1);
        attacks++;
        refused += sec_dropped(c);
        ota_test_client_disconnect(c);
    }
    /* The device connects again, as at every boot: nothing is replayed to it. */
    ota_test_client_t *c = attacker(NULL);
    assert_non_null(c);
    assert_int_equal(ota_test_client_subscribe(c, topic, 1), 1);
    ota_test_msg_t *m = ota_test_client_expect(c, NULL, SILENCE_MS);
    if (m != NULL) {
        fprintf(stderr, "replayed on %s: %s\n", m->topic, (const char *)m->payload);
        refused--;
    }
    ota_test_msg_free(m);
    ota_test_client_disconnect(c);
    /* The honest device is served as before. */
    ota_test_client_t *victim = sec_device(&g, &g_victim);
    assert_non_null(victim);
    honest += sec_honest_request(victim, "victim", 0);
    ota_test_client_disconnect(victim);
    sec_report("retained_notice", attacks, refused, honest);
    assert_int_equal(refused, attacks);
    assert_int_equal(honest, 1);
}

/* A publish above the packet limit ends the sender's connection only. */
static void test_oversized_packet(void **state)
{
    (void)state;
    size_t big = 128u * 1024u + 8192u;
    char *payload = malloc(big);
    assert_non_null(payload);
    memset(payload, '{', big);
    ota_test_client_t *victim = sec_device(&g, &g_victim);
    assert_non_null(victim);
    int attacks = 0, refused = 0, honest = 0;
    for (int round = 0; round < ROUNDS; round++) {
        ota_test_client_t *c = attacker(NULL);
        assert_non_null(c);
        (void)ota_test_client_publish(c, "$aws/things/attacker/jobs/$next/get", payload, big, 0);
        attacks++;
        refused += sec_dropped(c);
        ota_test_client_disconnect(c);
        honest += sec_honest_request(victim, "victim", round);
    }
    free(payload);
    ota_test_client_disconnect(victim);
    sec_report("oversized_packet", attacks, refused, honest);
    assert_int_equal(refused, attacks);
    assert_int_equal(honest, ROUNDS);
    assert_int_equal(sec_count_in_file(g.service_log, "connected to "), 1);
}

/* A revoked device is cut off at once: its live session ends and its login is refused. */
static void test_revoke(void **state)
{
    (void)state;
    ota_test_client_t *victim = sec_device(&g, &g_victim);
    assert_non_null(victim);
    ota_test_client_t *c = attacker(NULL);
    assert_non_null(c);
    static const char *const revoke[] = {"thing", "revoke", "attacker", NULL};
    char log[600];
    snprintf(log, sizeof log, "%s/otter-cli.log", g.broker.dir);
    assert_int_equal(ota_test_otter(g.broker.dir, revoke, log), 0);
    int attacks = 1, refused = sec_dropped(c), honest = 0;
    ota_test_client_disconnect(c);
    for (int i = 0; i < ROUNDS; i++) {
        c = attacker(NULL);
        attacks++;
        refused += c == NULL;
        ota_test_client_disconnect(c);
        honest += sec_honest_request(victim, "victim", i);
    }
    ota_test_client_disconnect(victim);
    sec_report("revoked_login", attacks, refused, honest);
    assert_int_equal(refused, attacks);
    assert_int_equal(honest, ROUNDS);
}

/* Milliseconds of a monotonic clock. */
static int64_t mono_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until no answer has come for a second (at most 20 s); how many matched filter. */
static size_t settled_count(ota_test_client_t *c, const char *filter)
{
    size_t n = ota_test_client_pending(c, filter), before;
    for (int i = 0; i < 20; i++) {
        struct timespec ts = {1, 0};
        before = n;
        nanosleep(&ts, NULL);
        n = ota_test_client_pending(c, filter);
        if (n == before) {
            break;
        }
    }
    return n;
}

/*
 * Invalid Jobs API requests (a clientToken that is a number) at QoS 1 cost the
 * service an answer written to its outbox, a log line and a publish each: they
 * are charged to the thing's Jobs budget like valid ones, so a flood of them is
 * answered at most burst + rate x time times, and the other device is served.
 */
static void test_invalid_request_flood(void **state)
{
    (void)state;
    enum { FLOOD = 1000, BURST = 200, RATE = 10, REFUSALS = 10 };
    static const char bad[] = "{\"clientToken\":7}";
    static const char topic[] = "$aws/things/attacker/jobs/$next/get";
    ota_test_client_t *victim = sec_device(&g, &g_victim);
    ota_test_client_t *c = attacker(NULL);
    assert_non_null(victim);
    assert_non_null(c);
    assert_int_equal(ota_test_client_subscribe(c, "$aws/things/attacker/jobs/$next/get/+", 1), 1);
    int attacks = 0, honest = 0;
    int64_t t0 = mono_now_ms();
    for (int i = 0; i < FLOOD; i++) {
        attacks += ota_test_client_publish(c, topic, bad, strlen(bad), 1) == 0;
        if (i % (FLOOD / ROUNDS) == FLOOD / ROUNDS - 1) {
            honest += sec_honest_request(victim, "victim", i);
        }
    }
    int64_t seconds = (mono_now_ms() - t0) / 1000 + 1;
    size_t answered = settled_count(c, "$aws/things/attacker/jobs/$next/get/+");
    long bound = BURST + (RATE + REFUSALS) * (seconds + 1);
    fprintf(stderr, "%d invalid requests in %lld s, %zu answered (at most %ld)\n", attacks,
            (long long)seconds, answered, bound);
    ota_test_client_disconnect(c);
    ota_test_client_disconnect(victim);
    /* Every request was refused (InvalidRequest or RequestThrottled), and those over the
     * budget cost nothing but the budget check. */
    sec_report("invalid_request_flood", attacks, attacks, honest);
    assert_int_equal(attacks, FLOOD);
    assert_int_equal(honest, ROUNDS);
    assert_true((long)answered <= bound);
    assert_true(sec_count_in_file(g.service_log, "rejected: InvalidRequest") <= bound);
    assert_int_equal(sec_count_in_file(g.service_log, "connected to "), 1);
}

/*
 * A device that subscribes to its own topics and publishes on them gets its
 * own messages back; if it never reads them the broker buffers them for it
 * (QoS 0 packets count only against max_queued_messages, not
 * max_queued_bytes: 3000 of 130 kB made the broker grow by 600 MB). A device
 * receives only the service's answers and may not send on them, so nothing it
 * sends comes back to it.
 */
static void test_no_echo(void **state)
{
    (void)state;
    static const char *const topics[] = {
        "$aws/things/attacker/jobs/j1/update",          "$aws/things/attacker/jobs/junk",
        "$aws/things/attacker/jobs/j1/update/accepted", "$aws/things/attacker/jobs/notify-next",
        "$aws/things/attacker/jobs/$next/get",          "$aws/things/attacker/streams/s/get/cbor",
        "$aws/things/attacker/streams/s/data/cbor",     "$aws/things/attacker/jobs/a/b/c/rejected",
    };
    ota_test_client_t *victim = sec_device(&g, &g_victim);
    ota_test_client_t *c = attacker(NULL);
    assert_non_null(victim);
    assert_non_null(c);
    assert_int_equal(ota_test_client_subscribe(c, "$aws/things/attacker/jobs/#", 0), 0);
    assert_int_equal(ota_test_client_subscribe(c, "$aws/things/attacker/streams/#", 0), 0);
    int attacks = 0, honest = 0;
    for (int round = 0; round < ROUNDS; round++) {
        for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++) {
            attacks += ota_test_client_publish(c, topics[i], "{}", 2, 0) == 0;
        }
        honest += sec_honest_request(victim, "victim", round);
    }
    /* Only the service's answers may come (InvalidTopic, InvalidRequest...): nothing the
     * attacker sent itself. */
    struct timespec ts = {1, 0};
    nanosleep(&ts, NULL);
    int echoed = 0;
    for (ota_test_msg_t *m; (m = ota_test_client_expect(c, NULL, 100)) != NULL;) {
        for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++) {
            if (strcmp(m->topic, topics[i]) == 0) {
                fprintf(stderr, "echoed: %s\n", m->topic);
                echoed++;
            }
        }
        ota_test_msg_free(m);
    }
    ota_test_client_disconnect(c);
    ota_test_client_disconnect(victim);
    sec_report("no_echo", attacks, attacks - echoed, honest);
    assert_int_equal(attacks, ROUNDS * (int)(sizeof topics / sizeof topics[0]));
    assert_int_equal(echoed, 0);
    assert_int_equal(honest, ROUNDS);
}

/* Appends an MQTT remaining length to p; the bytes written. */
static size_t mqtt_varint(uint8_t *p, size_t n)
{
    size_t k = 0;
    do {
        uint8_t b = (uint8_t)(n % 128);
        n /= 128;
        p[k++] = (uint8_t)(b | (n > 0 ? 128 : 0));
    } while (n > 0);
    return k;
}

/* Appends an MQTT string to p; the bytes written. */
static size_t mqtt_string(uint8_t *p, const char *s)
{
    size_t n = strlen(s);
    p[0] = (uint8_t)(n >> 8);
    p[1] = (uint8_t)n;
    memcpy(p + 2, s, n);
    return n + 2;
}

/* Writes all of buf; 0, or -1 when the connection is gone. */
static int send_all(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n <= 0) {
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int raw_connect_will(const ota_test_login_t *l, const char *will_topic, size_t will_len,
                            int *refused);

/* A bare MQTT 3.1.1 connection with a login (blocking socket: the flood goes exactly as fast
 * as the broker reads); the socket, or -1. */
static int raw_connect(const ota_test_login_t *l)
{
    return raw_connect_will(l, NULL, 0, NULL);
}

/* raw_connect() with a QoS 0 will of will_len bytes on will_topic (none when NULL); *refused
 * (if not NULL) is 1 when the broker answered the CONNECT with a refusal. */
static int raw_connect_will(const ota_test_login_t *l, const char *will_topic, size_t will_len,
                            int *refused)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)l->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    static uint8_t body[140000], pkt[140010];
    size_t n = mqtt_string(body, "MQTT");
    body[n++] = 4;                                /* 3.1.1 */
    body[n++] = will_topic != NULL ? 0xC6 : 0xC2; /* username, password, [will], clean */
    body[n++] = 0;
    body[n++] = 60;
    n += mqtt_string(body + n, l->client_id);
    if (will_topic != NULL) {
        n += mqtt_string(body + n, will_topic);
        body[n++] = (uint8_t)(will_len >> 8);
        body[n++] = (uint8_t)will_len;
        memset(body + n, 'W', will_len);
        n += will_len;
    }
    n += mqtt_string(body + n, l->username);
    n += mqtt_string(body + n, l->password);
    pkt[0] = 0x10;
    size_t h = 1 + mqtt_varint(pkt + 1, n);
    memcpy(pkt + h, body, n);
    uint8_t ack[4];
    int got = send_all(fd, pkt, h + n) == 0 && recv(fd, ack, 4, MSG_WAITALL) == 4 && ack[0] == 0x20;
    if (refused != NULL) {
        *refused = got && ack[3] != 0;
    }
    if (!got || ack[3] != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/** The flooding device: its login, how long it floods, what it sent. */
typedef struct flood {
    const ota_test_login_t *login;
    int seconds;
    long sent;     /**< publishes written */
    long long mib; /**< MiB written */
    int connected; /**< 1: it stayed connected throughout */
} flood_t;

/* Publishes {"x":"<130,000 A>"} at QoS 0 on the device's own jobs/get for f->seconds. */
static void *flood_run(void *arg)
{
    flood_t *f = arg;
    enum { X = 130000 };
    static const char topic[] = "$aws/things/attacker/jobs/get";
    static uint8_t pkt[X + 256];
    size_t payload = X + 8, body = 2 + strlen(topic) + payload;
    pkt[0] = 0x30;
    size_t n = 1 + mqtt_varint(pkt + 1, body);
    n += mqtt_string(pkt + n, topic);
    memcpy(pkt + n, "{\"x\":\"", 6);
    memset(pkt + n + 6, 'A', X);
    memcpy(pkt + n + 6 + X, "\"}", 2);
    n += payload;
    int fd = raw_connect(f->login);
    f->connected = fd >= 0;
    long long bytes = 0;
    int64_t end = mono_now_ms() + f->seconds * 1000;
    while (fd >= 0 && mono_now_ms() < end) {
        if (send_all(fd, pkt, n) != 0) {
            f->connected = 0;
            break;
        }
        f->sent++;
        bytes += (long long)n;
    }
    f->mib = bytes >> 20;
    if (fd >= 0) {
        close(fd);
    }
    return NULL;
}

/* The resident memory of a process, in KiB (VmRSS); -1 when unknown. */
static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return kib;
}

/*
 * A device floods its own jobs/get with 130 kB QoS 0 publishes (the packet limit lets them
 * in; Mosquitto bounds QoS 0 deliveries to the online service by count only, so without a
 * per-device limit the broker grew by gigabytes and other devices waited seconds). Otter's
 * broker plugin drops them: the broker's memory stays within FLOOD_RSS_MIB of where it was,
 * every request of another device is answered within ANSWER_MS, and afterwards a device's
 * largest legitimate publish (a 20 kB request) still reaches the service.
 */
static void test_flood(void **state)
{
    (void)state;
    enum { FLOOD_S = 4, ANSWER_MS = 2000, FLOOD_RSS_MIB = 100 };
    ota_test_client_t *victim = sec_device(&g, &g_victim);
    assert_non_null(victim);
    pid_t broker = g.broker.proc.pid;
    long rss0 = rss_kib(broker), rss_max = rss0;
    assert_true(rss0 > 0);
    flood_t f = {&g_attacker, FLOOD_S, 0, 0, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, flood_run, &f), 0);
    int requests = 0, honest = 0;
    int64_t worst = 0, end = mono_now_ms() + FLOOD_S * 1000;
    char topic[] = "$aws/things/victim/jobs/$next/get", tag[32], token[64];
    while (mono_now_ms() < end) {
        snprintf(tag, sizeof tag, "\"flood-%d\"", requests);
        snprintf(token, sizeof token, "{\"clientToken\":%s}", tag);
        int64_t t0 = mono_now_ms();
        requests++;
        if (ota_test_client_publish(victim, topic, token, strlen(token), 1) == 0) {
            ota_test_msg_t *m =
                ota_test_client_expect(victim, "$aws/things/victim/jobs/$next/get/+", ANSWER_MS);
            int64_t took = mono_now_ms() - t0;
            if (m != NULL && strstr((const char *)m->payload, tag) != NULL && took <= ANSWER_MS) {
                honest++;
            }
            worst = took > worst ? took : worst;
            ota_test_msg_free(m);
        }
        long r = rss_kib(broker);
        rss_max = r > rss_max ? r : rss_max;
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    pthread_join(t, NULL);
    for (int i = 0; i < 10; i++) { /* what the broker still holds shortly after */
        long r = rss_kib(broker);
        rss_max = r > rss_max ? r : rss_max;
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr,
            "flood: %ld publishes (%lld MiB) in %d s; broker VmRSS %ld -> max %ld KiB; "
            "%d/%d requests of another device answered within %d ms (slowest %lld ms)\n",
            f.sent, f.mib, FLOOD_S, rss0, rss_max, honest, requests, ANSWER_MS, (long long)worst);
    /* The device's largest legitimate publish (a status update's details are at most 16 KiB
     * compact) still arrives: the service answers a 20 kB request. */
    ota_test_client_t *c = attacker(NULL);
    assert_non_null(c);
    assert_int_equal(ota_test_client_subscribe(c, "$aws/things/attacker/jobs/$next/get/+", 1), 1);
    enum { BIG = 20000 };
    char *big = malloc(BIG + 64);
    assert_non_null(big);
    int k = snprintf(big, BIG + 64, "{\"clientToken\":\"big\",\"pad\":\"");
    memset(big + k, 'p', BIG);
    memcpy(big + k + BIG, "\"}", 3);
    assert_int_equal(
        ota_test_client_publish(c, "$aws/things/attacker/jobs/$next/get", big, strlen(big), 1), 0);
    free(big);
    ota_test_msg_t *m = ota_test_client_expect(c, "$aws/things/attacker/jobs/$next/get/+", 5000);
    int big_answered = m != NULL && strstr((const char *)m->payload, "\"big\"") != NULL;
    ota_test_msg_free(m);
    ota_test_client_disconnect(c);
    ota_test_client_disconnect(victim);
    sec_report("publish_flood", (int)f.sent, (int)f.sent, honest);
    assert_true(f.connected);
    assert_true(f.sent > 0);
    assert_true(requests >= 2);
    assert_int_equal(honest, requests);
    assert_true(rss_max - rss0 < FLOOD_RSS_MIB * 1024L);
    assert_true(big_answered);
    /* The broker said what it dropped, and the service never saw the flood. */
    assert_true(sec_count_in_file(g.broker_log, "otter_device_limits: dropped") >= 1);
    assert_int_equal(sec_count_in_file(g.service_log, "connected to "), 1);
}

/* The publishes the broker's drop lines in a log count: over max_payload (over_rate 0) or over
 * the rate budget (over_rate 1). The lines read "...): N over max_payload, M over the rate
 * budget". */
static long dropped_in_log(const char *log, int over_rate)
{
    FILE *f = fopen(log, "r");
    char line[1024];
    long sum = 0;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        const char *p = strstr(line, "): ");
        long size = 0, rate = 0;
        if (strstr(line, "otter_device_limits: dropped") != NULL && p != NULL &&
            sscanf(p, "): %ld over max_payload, %ld over the rate budget", &size, &rate) == 2) {
            sum += over_rate ? rate : size;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return sum;
}

/* A QoS 0 PUBLISH of "{}" on the attacker's own jobs/get into pkt (64 bytes); its length. */
static size_t small_publish(uint8_t *pkt)
{
    static const char topic[] = "$aws/things/attacker/jobs/get";
    size_t n = 1 + mqtt_varint(pkt + 1, 2 + strlen(topic) + 2);
    pkt[0] = 0x30;
    n += mqtt_string(pkt + n, topic);
    memcpy(pkt + n, "{}", 2);
    return n + 2;
}

/*
 * A device floods small publishes (2 bytes each) on its own jobs/get, faster than any download
 * asks for blocks: 20,000 of them, which the broker takes in far less than the 16 s its
 * message budget (a burst of 4000, then 1000 a second) would need to let all through. It drops
 * the rest and says so, and another device is answered.
 */
static void test_message_rate_flood(void **state)
{
    (void)state;
    enum { FLOOD = 20000 };
    uint8_t pkt[64];
    size_t n = small_publish(pkt);
    ota_test_client_t *victim = sec_device(&g, &g_victim);
    assert_non_null(victim);
    int fd = raw_connect(&g_attacker);
    assert_true(fd >= 0);
    int sent = 0;
    int64_t t0 = mono_now_ms();
    for (int i = 0; i < FLOOD && send_all(fd, pkt, n) == 0; i++) {
        sent++;
    }
    int64_t ms = mono_now_ms() - t0;
    int honest = sec_honest_request(victim, "victim", 0);
    (void)ota_test_log_wait(g.broker_log, 0, "over the rate budget", 5000);
    long from = ota_test_log_size(g.broker_log);
    close(fd);
    ota_test_client_disconnect(victim);
    /* The rest of the drops are logged when the device disconnects. */
    (void)ota_test_log_wait(g.broker_log, from, "over the rate budget", 3000);
    long dropped = dropped_in_log(g.broker_log, 1);
    fprintf(stderr, "%d publishes of 2 bytes in %lld ms; %ld dropped over the rate budget\n", sent,
            (long long)ms, dropped);
    sec_report("message_rate_flood", sent, (int)dropped, honest);
    assert_int_equal(sent, FLOOD);
    assert_int_equal(honest, 1);
    /* At most the burst and a few seconds' rate went through. */
    assert_true(dropped >= FLOOD - 4000 - 1000 * 8);
}

/* The Jobs messages the service received, from the stats line it logs as it stops; -1. */
static long service_jobs_messages(void)
{
    FILE *f = fopen(g.service_log, "r");
    char line[4096];
    long n = -1;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        const char *p = strstr(line, " jobs_messages=");
        if (strstr(line, "stats: stream_requests=") != NULL && p != NULL) {
            n = strtol(p + strlen(" jobs_messages="), NULL, 10);
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return n;
}

/*
 * A device reconnects again and again, each time sending 200 small publishes on its own
 * jobs/get: the budget is the thing's, not the connection's, so a reconnect does not refill
 * it. What reaches the service is at most the burst and the rate for the time (a reconnect
 * with the same client id may also cut off what the broker had not read yet; that is not
 * counted as passed).
 */
static void test_reconnect_flood(void **state)
{
    (void)state;
    uint8_t pkt[64];
    size_t n = small_publish(pkt);
    long sent = 0;
    int connections = 0;
    int64_t t0 = mono_now_ms();
    while (mono_now_ms() - t0 < 2000) {
        int fd = raw_connect(&g_attacker);
        assert_true(fd >= 0);
        connections++;
        for (int i = 0; i < 200 && send_all(fd, pkt, n) == 0; i++) {
            sent++;
        }
        close(fd);
    }
    double secs = (double)(mono_now_ms() - t0) / 1000.0;
    ota_test_client_t *victim = sec_device(&g, &g_victim);
    assert_non_null(victim);
    int honest = sec_honest_request(victim, "victim", 0);
    ota_test_client_disconnect(victim);
    usleep(500000); /* what the broker passed on reaches the service */
    assert_int_equal(ota_test_proc_stop(&g.service), 0);
    long passed = service_jobs_messages();
    fprintf(stderr, "%ld publishes in %d connections in %.1f s; %ld reached the service\n", sent,
            connections, secs, passed);
    sec_report("reconnect_flood", (int)sent, (int)(sent - passed), honest);
    assert_int_equal(honest, 1);
    assert_true(sent > 4000 + 1000 * 4);
    assert_true(passed >= 1);
    /* At most the burst and the rate for the time, with a second's slack (and the honest
     * device's few requests). */
    assert_true(passed <= 4000 + (long)(1000.0 * (secs + 1.0)) + 10);
}

/*
 * A device connects with a will of 60,000 bytes (its length is a 16-bit field) on its own jobs/get
 * and drops the connection without a DISCONNECT, so that the broker sends the will: it is held to
 * max_payload like a publish (refused at the connect, or dropped when sent and logged).
 */
static void test_large_will(void **state)
{
    (void)state;
    int refused = 0;
    int fd = raw_connect_will(&g_attacker, "$aws/things/attacker/jobs/get", 60000, &refused);
    if (fd >= 0) {
        close(fd); /* no DISCONNECT: the broker sends the will */
        usleep(200000);
        fd = raw_connect(&g_attacker); /* its drops are logged at the disconnect */
        assert_true(fd >= 0);
        close(fd);
        (void)ota_test_log_wait(g.broker_log, 0, "over max_payload", 3000);
    }
    long dropped = dropped_in_log(g.broker_log, 0);
    fprintf(stderr, "a will of 60000 bytes: %s\n",
            refused       ? "connect refused"
            : dropped > 0 ? "dropped when sent"
                          : "sent");
    sec_report("large_will", 1, refused || dropped >= 1, 0);
    assert_true(refused || dropped >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_client_id_takeover, setup, sec_world_teardown),
        cmocka_unit_test_setup_teardown(test_retained_notice, setup, sec_world_teardown),
        cmocka_unit_test_setup_teardown(test_oversized_packet, setup, sec_world_teardown),
        cmocka_unit_test_setup_teardown(test_revoke, setup, sec_world_teardown),
        cmocka_unit_test_setup_teardown(test_invalid_request_flood, setup, sec_world_teardown),
        cmocka_unit_test_setup_teardown(test_no_echo, setup, sec_world_teardown),
        cmocka_unit_test_setup_teardown(test_flood, setup, sec_world_teardown),
        cmocka_unit_test_setup_teardown(test_message_rate_flood, setup, sec_world_teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_flood, setup, sec_world_teardown),
        cmocka_unit_test_setup_teardown(test_large_will, setup, sec_world_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
