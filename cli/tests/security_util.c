/* otter security tests: the world of a test, honest requests, counting. */
#include "security_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The client id the service logged in with ("connected to H:P as ID"). */
static void read_service_id(const char *log, char out[160])
{
    FILE *f = fopen(log, "r");
    char line[1024];
    out[0] = '\0';
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        const char *p = strstr(line, "connected to ");
        const char *as = p ? strstr(p, " as ") : NULL;
        if (as != NULL && sscanf(as + 4, "%159[^ \n]", out) == 1) {
            break;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
}

int sec_world_start(sec_world_t *w, const char *const *init_args, const char *const *things,
                    ota_test_login_t *logins)
{
    static const char *const args[] = {"--share-group", "none", NULL};
    memset(w, 0, sizeof *w);
    if (ota_test_broker_start_with(&w->broker, NULL, init_args) != 0) {
        return -1;
    }
    snprintf(w->service_log, sizeof w->service_log, "%s/service.log", w->broker.dir);
    snprintf(w->broker_log, sizeof w->broker_log, "%s/mosquitto.log", w->broker.dir);
    /* The service works in the same data folder, as a user runs it. */
    if (ota_test_things_create(&w->broker, things) != 0 ||
        ota_test_service_start(&w->service, w->broker.dir, &w->broker, args, w->service_log) != 0) {
        sec_world_stop(w);
        return -1;
    }
    read_service_id(w->service_log, w->service_id);
    int rc = w->service_id[0] != '\0' ? 0 : -1;
    for (size_t i = 0; rc == 0 && things[i] != NULL; i++) {
        rc = ota_test_thing_login(&w->broker, things[i], &logins[i]);
    }
    if (rc != 0) {
        sec_world_stop(w);
    }
    return rc;
}

int sec_world_teardown(void **state)
{
    sec_world_stop(*state);
    return 0;
}

void sec_world_stop(sec_world_t *w)
{
    if (w->service.pid != 0) {
        ota_test_proc_stop(&w->service);
    }
    ota_test_broker_stop(&w->broker);
}

ota_test_client_t *sec_device(const sec_world_t *w, const ota_test_login_t *login)
{
    char next[256], update[256];
    ota_test_client_t *c = ota_test_login_connect(w->broker.port, login, NULL);
    snprintf(next, sizeof next, "$aws/things/%s/jobs/$next/get/+", login->username);
    snprintf(update, sizeof update, "$aws/things/%s/jobs/+/update/+", login->username);
    if (c != NULL && (ota_test_client_subscribe(c, next, 1) != 1 ||
                      ota_test_client_subscribe(c, update, 1) != 1)) {
        ota_test_client_disconnect(c);
        c = NULL;
    }
    return c;
}

int sec_honest_request(ota_test_client_t *c, const char *thing, int n)
{
    char topic[256], answers[300], token[64], tag[32];
    snprintf(tag, sizeof tag, "\"honest-%d\"", n);
    snprintf(token, sizeof token, "{\"clientToken\":%s}", tag);
    snprintf(topic, sizeof topic, "$aws/things/%s/jobs/$next/get", thing);
    snprintf(answers, sizeof answers, "%s/+", topic);
    if (ota_test_client_publish(c, topic, token, strlen(token), 1) != 0) {
        return 0;
    }
    ota_test_msg_t *m = ota_test_client_expect(c, answers, 5000);
    int ok = m != NULL && strstr((const char *)m->payload, tag) != NULL;
    ota_test_msg_free(m);
    return ok;
}

int sec_dropped(ota_test_client_t *c)
{
    for (int i = 0; i < 300 && ota_test_client_connected(c); i++) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return !ota_test_client_connected(c);
}

int sec_count_in_file(const char *path, const char *text)
{
    static char buf[1 << 20];
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return 0;
    }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    int count = 0;
    for (const char *p = buf; (p = strstr(p, text)) != NULL; p += strlen(text)) {
        count++;
    }
    return count;
}

void sec_report(const char *name, int attacks, int refused, int honest)
{
    printf("security: %s: attacks=%d refused=%d honest_answered=%d updates_lost=0\n", name, attacks,
           refused, honest);
    fflush(stdout);
}
