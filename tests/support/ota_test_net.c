/*
 * otter TEST SUPPORT ONLY: ports, child processes, broker, service, MQTT client.
 */
#define _GNU_SOURCE
#include "ota_test_net.h"
#include "ota_test_util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <mosquitto.h>

#ifndef OTA_TEST_MOSQUITTO_PATH
#define OTA_TEST_MOSQUITTO_PATH "/usr/sbin/mosquitto"
#endif
#ifndef OTA_TEST_SERVICE_PATH
#define OTA_TEST_SERVICE_PATH "otter-service"
#endif
#ifndef OTA_TEST_OTTER_PATH
#define OTA_TEST_OTTER_PATH "otter"
#endif

/* ---------------------------------------------------------------- time -- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* --------------------------------------------------------------- ports -- */

int ota_test_wait_port(int port, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;

    do {
        struct sockaddr_in a;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) {
            return -1;
        }
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons((uint16_t)port);
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
            close(fd);
            return 0;
        }
        close(fd);
        sleep_ms(20);
    } while (now_ms() < end);
    return -1;
}

/* ----------------------------------------------------------- processes -- */

#define MAX_PROCS 256
#define MAX_DIRS 64

/* Every running child; read by the signal handler (kill() only). */
static volatile pid_t g_pids[MAX_PROCS];
/* Broker folders still to remove at exit. */
static char g_dirs[MAX_DIRS][512];
static pthread_mutex_t g_reg_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_cleanup_once = PTHREAD_ONCE_INIT;

static void kill_all_children(void)
{
    for (size_t i = 0; i < MAX_PROCS; i++) {
        pid_t pid = g_pids[i];
        if (pid > 0) {
            kill(pid, SIGKILL);
        }
    }
}

static void cleanup_at_exit(void)
{
    kill_all_children();
    for (size_t i = 0; i < MAX_PROCS; i++) {
        pid_t pid = g_pids[i];
        if (pid > 0) {
            waitpid(pid, NULL, 0);
            g_pids[i] = 0;
        }
    }
    if (getenv("OTA_TEST_KEEP") == NULL) {
        for (size_t i = 0; i < MAX_DIRS; i++) {
            ota_test_rm_tree(g_dirs[i]);
            g_dirs[i][0] = '\0';
        }
    }
}

static void on_fatal_signal(int sig)
{
    kill_all_children();
    /* SA_RESETHAND restored the default action: end the way we were asked to. */
    raise(sig);
}

/* Called by the sanitizers before they end the process (weak: absent without them). */
void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

static void install_cleanup(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGABRT, SIGQUIT};
    struct sigaction sa;

    atexit(cleanup_at_exit);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_fatal_signal;
    sa.sa_flags = (int)SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        sigaction(sigs[i], &sa, NULL);
    }
    if (__sanitizer_set_death_callback != NULL) {
        __sanitizer_set_death_callback(kill_all_children);
    }
}

static void register_pid(pid_t pid)
{
    pthread_mutex_lock(&g_reg_mu);
    for (size_t i = 0; i < MAX_PROCS; i++) {
        if (g_pids[i] == 0) {
            g_pids[i] = pid;
            break;
        }
    }
    pthread_mutex_unlock(&g_reg_mu);
}

static void unregister_pid(pid_t pid)
{
    pthread_mutex_lock(&g_reg_mu);
    for (size_t i = 0; i < MAX_PROCS; i++) {
        if (g_pids[i] == pid) {
            g_pids[i] = 0;
        }
    }
    pthread_mutex_unlock(&g_reg_mu);
}

static void register_dir(const char *dir)
{
    pthread_mutex_lock(&g_reg_mu);
    for (size_t i = 0; i < MAX_DIRS; i++) {
        if (g_dirs[i][0] == '\0') {
            snprintf(g_dirs[i], sizeof(g_dirs[i]), "%s", dir);
            break;
        }
    }
    pthread_mutex_unlock(&g_reg_mu);
}

static void unregister_dir(const char *dir)
{
    pthread_mutex_lock(&g_reg_mu);
    for (size_t i = 0; i < MAX_DIRS; i++) {
        if (strcmp(g_dirs[i], dir) == 0) {
            g_dirs[i][0] = '\0';
        }
    }
    pthread_mutex_unlock(&g_reg_mu);
}

static int status_code(int st)
{
    if (WIFEXITED(st)) {
        return WEXITSTATUS(st);
    }
    if (WIFSIGNALED(st)) {
        return 128 + WTERMSIG(st);
    }
    return -1;
}

int ota_test_proc_start(ota_test_proc_t *p, const char *name, char *const argv[],
                        const char *log_path)
{
    pid_t parent = getpid();
    const char *out = log_path != NULL ? log_path : "/dev/null";
    int log_fd;
    int null_fd;
    int err_pipe[2];
    int exec_errno = 0;
    pid_t pid;

    pthread_once(&g_cleanup_once, install_cleanup);
    p->pid = 0;
    snprintf(p->name, sizeof(p->name), "%s", name != NULL ? name : argv[0]);

    /* Open before fork: the child only calls async-signal-safe functions. */
    log_fd = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (log_fd < 0 || null_fd < 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
        fprintf(stderr, "ota_test_proc_start(%s): cannot open %s: %s\n", p->name, out,
                strerror(errno));
        if (log_fd >= 0) {
            close(log_fd);
        }
        if (null_fd >= 0) {
            close(null_fd);
        }
        return -1;
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        close(log_fd);
        close(null_fd);
        close(err_pipe[0]);
        close(err_pipe[1]);
        return -1;
    }
    if (pid == 0) {
        sigset_t none;
        int e;
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(127);
        }
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        dup2(null_fd, STDIN_FILENO);
        dup2(log_fd, STDOUT_FILENO);
        dup2(log_fd, STDERR_FILENO);
        execv(argv[0], argv);
        /* Tell the parent why exec failed (the pipe closes on a successful exec). */
        e = errno;
        if (write(err_pipe[1], &e, sizeof(e)) < 0) {
            _exit(126);
        }
        _exit(127);
    }
    close(log_fd);
    close(null_fd);
    close(err_pipe[1]);
    p->pid = pid;
    register_pid(pid);
    if (read(err_pipe[0], &exec_errno, sizeof(exec_errno)) == (ssize_t)sizeof(exec_errno)) {
        int code;
        fprintf(stderr, "ota_test_proc_start(%s): cannot run %s: %s\n", p->name, argv[0],
                strerror(exec_errno));
        close(err_pipe[0]);
        waitpid(pid, &code, 0);
        unregister_pid(pid);
        p->pid = 0;
        return -1;
    }
    close(err_pipe[0]);
    return 0;
}

static int reap(ota_test_proc_t *p, int options, int *code)
{
    int st = 0;
    pid_t r = waitpid(p->pid, &st, options);

    if (r == p->pid) {
        unregister_pid(p->pid);
        p->pid = 0;
        *code = status_code(st);
        return 1;
    }
    if (r < 0 && errno == ECHILD) {
        unregister_pid(p->pid);
        p->pid = 0;
        *code = -1;
        return 1;
    }
    return 0;
}

int ota_test_proc_running(ota_test_proc_t *p, int *status)
{
    int code = -1;

    if (p->pid <= 0) {
        if (status != NULL) {
            *status = -1;
        }
        return 0;
    }
    if (reap(p, WNOHANG, &code)) {
        if (status != NULL) {
            *status = code;
        }
        return 0;
    }
    return 1;
}

int ota_test_proc_wait_exit(ota_test_proc_t *p, int ms, int *status)
{
    int code = -1;
    for (int waited = 0; waited <= ms; waited += 10) {
        if (!ota_test_proc_running(p, &code)) {
            if (status != NULL) {
                *status = code;
            }
            return 0;
        }
        usleep(10000);
    }
    ota_test_proc_kill(p);
    if (status != NULL) {
        *status = -1;
    }
    return -1;
}

int ota_test_proc_stop(ota_test_proc_t *p)
{
    int code = -1;
    int64_t end;

    if (p->pid <= 0) {
        return -1;
    }
    kill(p->pid, SIGTERM);
    end = now_ms() + 5000;
    while (now_ms() < end) {
        if (reap(p, WNOHANG, &code)) {
            return code;
        }
        sleep_ms(10);
    }
    fprintf(stderr, "ota_test_proc_stop(%s): no exit 5 s after SIGTERM, killing\n", p->name);
    kill(p->pid, SIGKILL);
    reap(p, 0, &code);
    return code;
}

int ota_test_proc_kill(ota_test_proc_t *p)
{
    int code = -1;

    if (p->pid <= 0) {
        return -1;
    }
    kill(p->pid, SIGKILL);
    reap(p, 0, &code);
    return code;
}

/* ---------------------------------------------------------------- logs -- */

long ota_test_log_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* Whether the file holds needle at or after offset from. */
static int file_contains(const char *path, long from, const char *needle)
{
    FILE *f = fopen(path, "rb");
    size_t nlen = strlen(needle);
    char buf[8192];
    size_t keep = 0;
    int found = 0;

    if (f == NULL) {
        return 0;
    }
    if (fseek(f, from, SEEK_SET) != 0) {
        fclose(f);
        return 0;
    }
    for (;;) {
        size_t got = fread(buf + keep, 1, sizeof(buf) - 1 - keep, f);
        size_t have = keep + got;
        if (got == 0) {
            break;
        }
        buf[have] = '\0';
        if (memmem(buf, have, needle, nlen) != NULL) {
            found = 1;
            break;
        }
        /* Keep the tail so a needle across two reads is still found. */
        keep = nlen - 1 < have ? nlen - 1 : have;
        memmove(buf, buf + have - keep, keep);
    }
    fclose(f);
    return found;
}

int ota_test_log_wait(const char *path, long from, const char *needle, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;

    do {
        if (file_contains(path, from, needle)) {
            return 0;
        }
        sleep_ms(20);
    } while (now_ms() < end);
    return -1;
}

/* -------------------------------------------------------------- broker -- */

static int broker_launch(ota_test_broker_t *b)
{
    char conf[600];
    char log[600];
    char *argv[4];
    long from;

    snprintf(conf, sizeof(conf), "%s/broker/mosquitto.conf", b->dir);
    snprintf(log, sizeof(log), "%s/mosquitto.log", b->dir);
    argv[0] = (char *)OTA_TEST_MOSQUITTO_PATH;
    argv[1] = (char *)"-c";
    argv[2] = conf;
    argv[3] = NULL;
    from = ota_test_log_size(log);
    if (ota_test_proc_start(&b->proc, "mosquitto", argv, log) != 0) {
        return -1;
    }
    /* Our broker, not another listener: its own "running" line, then the port. */
    if (ota_test_log_wait(log, from, " running", 5000) != 0 ||
        ota_test_wait_port(b->port, 5000) != 0 || !ota_test_proc_running(&b->proc, NULL)) {
        fprintf(stderr, "ota_test_broker: mosquitto did not start on port %d (see %s)\n", b->port,
                log);
        ota_test_proc_kill(&b->proc);
        return -1;
    }
    return 0;
}

int ota_test_otter(const char *data_dir, const char *const *args, const char *log_path)
{
    size_t n = 0, count = 0;
    char **argv;
    ota_test_proc_t p;
    int status = -1;

    while (args[count] != NULL) {
        count++;
    }
    argv = calloc(count + 4, sizeof(*argv));
    if (argv == NULL) {
        return -1;
    }
    argv[n++] = (char *)OTA_TEST_OTTER_PATH;
    argv[n++] = (char *)"--data-dir";
    argv[n++] = (char *)data_dir;
    for (size_t i = 0; i < count; i++) {
        argv[n++] = (char *)args[i];
    }
    argv[n] = NULL;
    if (ota_test_proc_start(&p, "otter", argv, log_path) != 0) {
        free(argv);
        return -1;
    }
    free(argv);
    for (int64_t end = now_ms() + 120000; ota_test_proc_running(&p, &status);) {
        if (now_ms() > end) {
            fprintf(stderr, "ota_test_otter: otter %s did not end in 120 s\n", args[0]);
            ota_test_proc_kill(&p);
            return -1;
        }
        sleep_ms(5);
    }
    return status;
}

/* Reads a whole small file into a new NUL-terminated buffer. */
static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long len;

    if (f == NULL) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    buf = malloc((size_t)len + 1);
    if (buf != NULL && fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
    }
    if (buf != NULL) {
        buf[len] = '\0';
    }
    fclose(f);
    return buf;
}

/* Copies a string member of a JSON object; "" when absent. */
static void json_member(const cJSON *o, const char *key, char *out, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    snprintf(out, cap, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

int ota_test_login_read(const char *path, ota_test_login_t *out)
{
    char *text = read_text(path);
    cJSON *o = text != NULL ? cJSON_Parse(text) : NULL;
    const cJSON *port = cJSON_GetObjectItemCaseSensitive(o, "port");

    memset(out, 0, sizeof(*out));
    free(text);
    if (o == NULL) {
        fprintf(stderr, "ota_test_login_read: cannot read %s\n", path);
        return -1;
    }
    json_member(o, "username", out->username, sizeof(out->username));
    json_member(o, "password", out->password, sizeof(out->password));
    json_member(o, "client_id", out->client_id, sizeof(out->client_id));
    json_member(o, "cafile", out->cafile, sizeof(out->cafile));
    json_member(o, "certfile", out->certfile, sizeof(out->certfile));
    json_member(o, "keyfile", out->keyfile, sizeof(out->keyfile));
    out->port = cJSON_IsNumber(port) ? port->valueint : 0;
    cJSON_Delete(o);
    return out->username[0] != '\0' && out->port > 0 ? 0 : -1;
}

int ota_test_things_create(const ota_test_broker_t *b, const char *const *names)
{
    size_t n = 0;
    char log[600];
    const char **args;
    int rc;

    while (names[n] != NULL) {
        n++;
    }
    args = calloc(n + 3, sizeof(*args));
    if (args == NULL) {
        return -1;
    }
    args[0] = "thing";
    args[1] = "create";
    memcpy(args + 2, names, n * sizeof(*args));
    snprintf(log, sizeof(log), "%s/otter-cli.log", b->dir);
    rc = ota_test_otter(b->dir, args, log);
    free(args);
    if (rc != 0) {
        fprintf(stderr, "ota_test_things_create: otter thing create failed (see %s)\n", log);
        return -1;
    }
    return 0;
}

int ota_test_thing_login(const ota_test_broker_t *b, const char *thing, ota_test_login_t *out)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/things/%s.json", b->dir, thing);
    if (access(path, F_OK) != 0) {
        const char *names[] = {thing, NULL};
        if (ota_test_things_create(b, names) != 0) {
            return -1;
        }
    }
    return ota_test_login_read(path, out);
}

int ota_test_service_login(const ota_test_broker_t *b, ota_test_login_t *out)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/broker/service.credentials", b->dir);
    return ota_test_login_read(path, out);
}

ota_test_client_t *ota_test_thing_connect(const ota_test_broker_t *b, const char *thing)
{
    ota_test_login_t l;
    if (ota_test_thing_login(b, thing, &l) != 0) {
        return NULL;
    }
    return ota_test_login_connect(b->port, &l, NULL);
}

/*
 * A test killed by a signal cannot remove its broker folders (only its
 * processes). Each folder names its owner; folders of owners that no longer
 * exist are removed here. Folders kept on purpose (OTA_TEST_KEEP) name none.
 */
static void remove_stale_broker_dirs(void)
{
    DIR *tmp = opendir("/tmp");
    struct dirent *e;

    if (tmp == NULL) {
        return;
    }
    while ((e = readdir(tmp)) != NULL) {
        char path[600];
        FILE *f;
        long owner = 0;
        if (strncmp(e->d_name, "otter-broker-", 13) != 0) {
            continue;
        }
        snprintf(path, sizeof(path), "/tmp/%s/owner", e->d_name);
        f = fopen(path, "r");
        if (f == NULL) {
            continue;
        }
        if (fscanf(f, "%ld", &owner) != 1) {
            owner = 0;
        }
        fclose(f);
        if (owner > 0 && kill((pid_t)owner, 0) != 0 && errno == ESRCH) {
            snprintf(path, sizeof(path), "/tmp/%s", e->d_name);
            ota_test_rm_tree(path);
        }
    }
    closedir(tmp);
}

static void write_owner(const char *dir)
{
    char path[600];
    FILE *f;
    if (getenv("OTA_TEST_KEEP") != NULL) {
        return;
    }
    snprintf(path, sizeof(path), "%s/owner", dir);
    f = fopen(path, "w");
    if (f != NULL) {
        fprintf(f, "%ld\n", (long)getpid());
        fclose(f);
    }
}

/* `otter broker init` on a free port, then Mosquitto on what it wrote. */
static int broker_init_and_launch(ota_test_broker_t *b, const char *const *init_args)
{
    char port[16], log[600], broker_dir[600];
    const char *args[32];
    size_t n = 0;

    snprintf(log, sizeof(log), "%s/otter-cli.log", b->dir);
    snprintf(broker_dir, sizeof(broker_dir), "%s/broker", b->dir);
    b->port = ota_test_free_port();
    snprintf(port, sizeof(port), "%d", b->port);
    args[n++] = "broker";
    args[n++] = "init";
    args[n++] = "--port";
    args[n++] = port;
    for (size_t i = 0; init_args != NULL && init_args[i] != NULL; i++) {
        if (n + 1 >= sizeof(args) / sizeof(args[0])) {
            return -1;
        }
        args[n++] = init_args[i];
    }
    args[n] = NULL;
    if (b->port <= 0 || ota_test_otter(b->dir, args, log) != 0) {
        fprintf(stderr, "ota_test_broker: otter broker init failed (see %s)\n", log);
        return -1;
    }
    if (broker_launch(b) == 0) {
        return 0;
    }
    /* Most likely another process took the port: the next try makes it again. */
    ota_test_rm_tree(broker_dir);
    return -1;
}

int ota_test_broker_start_with(ota_test_broker_t *b, const char *data_dir,
                               const char *const *init_args)
{
    char creds[700];
    ota_test_login_t l;

    memset(b, 0, sizeof(*b));
    pthread_once(&g_cleanup_once, install_cleanup);
    if (data_dir == NULL) {
        remove_stale_broker_dirs();
        snprintf(b->dir, sizeof(b->dir), "/tmp/otter-broker-XXXXXX");
        if (mkdtemp(b->dir) == NULL) {
            b->dir[0] = '\0';
            return -1;
        }
        b->own_dir = 1;
        register_dir(b->dir);
        write_owner(b->dir);
    } else {
        snprintf(b->dir, sizeof(b->dir), "%s", data_dir);
    }
    snprintf(creds, sizeof(creds), "%s/broker/service.credentials", b->dir);
    if (access(creds, F_OK) == 0) {
        /* Set up already: its own port. */
        if (ota_test_login_read(creds, &l) == 0) {
            b->port = l.port;
            if (broker_launch(b) == 0) {
                return 0;
            }
        }
    } else {
        for (int attempt = 0; attempt < 3; attempt++) {
            if (broker_init_and_launch(b, init_args) == 0) {
                return 0;
            }
        }
    }
    ota_test_broker_stop(b);
    return -1;
}

int ota_test_broker_start(ota_test_broker_t *b, const char *data_dir)
{
    return ota_test_broker_start_with(b, data_dir, NULL);
}

int ota_test_broker_restart(ota_test_broker_t *b)
{
    if (b->dir[0] == '\0') {
        return -1;
    }
    if (b->proc.pid > 0) {
        ota_test_proc_stop(&b->proc);
    }
    for (int attempt = 0; attempt < 20; attempt++) {
        if (broker_launch(b) == 0) {
            return 0;
        }
        sleep_ms(100);
    }
    return -1;
}

void ota_test_broker_stop(ota_test_broker_t *b)
{
    if (b->proc.pid > 0) {
        ota_test_proc_stop(&b->proc);
    }
    if (b->own_dir && b->dir[0] != '\0') {
        if (getenv("OTA_TEST_KEEP") == NULL) {
            ota_test_rm_tree(b->dir);
        }
        unregister_dir(b->dir);
    }
    b->dir[0] = '\0';
    b->own_dir = 0;
}

/* ------------------------------------------------------------- service -- */

int ota_test_service_start(ota_test_proc_t *p, const char *data_dir, const ota_test_broker_t *b,
                           const char *const *extra_args, const char *log_path)
{
    char port[16];
    char *argv[64];
    size_t n = 0;
    long from = log_path != NULL ? ota_test_log_size(log_path) : 0;
    ota_test_login_t login;

    if (ota_test_service_login(b, &login) != 0) {
        return -1;
    }
    snprintf(port, sizeof(port), "%d", b->port);
    argv[n++] = (char *)OTA_TEST_SERVICE_PATH;
    argv[n++] = (char *)"--data-dir";
    argv[n++] = (char *)data_dir;
    argv[n++] = (char *)"--host";
    argv[n++] = (char *)"127.0.0.1";
    argv[n++] = (char *)"--port";
    argv[n++] = port;
    if (login.cafile[0] != '\0') {
        argv[n++] = (char *)"--cafile";
        argv[n++] = login.cafile;
        argv[n++] = (char *)"--certfile";
        argv[n++] = login.certfile;
        argv[n++] = (char *)"--keyfile";
        argv[n++] = login.keyfile;
    } else {
        argv[n++] = (char *)"--username";
        argv[n++] = login.username;
        argv[n++] = (char *)"--password";
        argv[n++] = login.password;
    }
    for (size_t i = 0; extra_args != NULL && extra_args[i] != NULL; i++) {
        if (n + 1 >= sizeof(argv) / sizeof(argv[0])) {
            return -1;
        }
        argv[n++] = (char *)extra_args[i];
    }
    argv[n] = NULL;
    if (ota_test_proc_start(p, "otter-service", argv, log_path) != 0) {
        return -1;
    }
    if (log_path == NULL) {
        return 1;
    }
    for (int64_t end = now_ms() + 10000; now_ms() < end;) {
        if (file_contains(log_path, from, OTA_TEST_SERVICE_READY)) {
            return 0;
        }
        if (!ota_test_proc_running(p, NULL)) {
            fprintf(stderr, "ota_test_service_start: otter-service exited (see %s)\n", log_path);
            return -1;
        }
        sleep_ms(20);
    }
    return 1;
}

/* -------------------------------------------------------------- client -- */

#define MID_RING 256

typedef struct msg_node {
    ota_test_msg_t msg;
    struct msg_node *next;
} msg_node_t;

struct ota_test_client {
    struct mosquitto *m;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int conn_rc;   /* -1 until the first CONNACK */
    int connected; /* 1 between CONNACK (accepted) and disconnect */
    int pub_done[MID_RING];
    size_t pub_next;
    struct {
        int mid;
        int qos;
    } sub_done[MID_RING];
    size_t sub_next;
    msg_node_t *head;
    msg_node_t *tail;
};

static pthread_once_t g_lib_once = PTHREAD_ONCE_INIT;

static void lib_init(void)
{
    mosquitto_lib_init();
}

static void cb_connect(struct mosquitto *m, void *obj, int rc)
{
    ota_test_client_t *c = obj;
    (void)m;
    pthread_mutex_lock(&c->mu);
    c->conn_rc = rc;
    c->connected = rc == 0;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void cb_disconnect(struct mosquitto *m, void *obj, int rc)
{
    ota_test_client_t *c = obj;
    (void)m;
    (void)rc;
    pthread_mutex_lock(&c->mu);
    c->connected = 0;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void cb_publish(struct mosquitto *m, void *obj, int mid)
{
    ota_test_client_t *c = obj;
    (void)m;
    pthread_mutex_lock(&c->mu);
    c->pub_done[c->pub_next++ % MID_RING] = mid;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void cb_subscribe(struct mosquitto *m, void *obj, int mid, int qos_count, const int *granted)
{
    ota_test_client_t *c = obj;
    size_t slot;
    (void)m;
    pthread_mutex_lock(&c->mu);
    slot = c->sub_next++ % MID_RING;
    c->sub_done[slot].mid = mid;
    c->sub_done[slot].qos = qos_count > 0 ? granted[0] : 0x80;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void cb_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    ota_test_client_t *c = obj;
    msg_node_t *n = calloc(1, sizeof(*n));
    size_t len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
    (void)m;

    if (n == NULL) {
        return;
    }
    n->msg.topic = strdup(msg->topic);
    n->msg.payload = malloc(len + 1);
    if (n->msg.topic == NULL || n->msg.payload == NULL) {
        free(n->msg.topic);
        free(n->msg.payload);
        free(n);
        return;
    }
    if (len > 0) {
        memcpy(n->msg.payload, msg->payload, len);
    }
    n->msg.payload[len] = 0;
    n->msg.len = len;
    pthread_mutex_lock(&c->mu);
    if (c->tail != NULL) {
        c->tail->next = n;
    } else {
        c->head = n;
    }
    c->tail = n;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Wait on c->cv until the deadline; c->mu is held. Returns 0 on timeout. */
static int wait_until(ota_test_client_t *c, int64_t deadline_ms)
{
    struct timespec ts;
    int64_t left = deadline_ms - now_ms();

    if (left <= 0) {
        return 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(left / 1000);
    ts.tv_nsec += (long)(left % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    return 1;
}

static void client_free(ota_test_client_t *c)
{
    msg_node_t *n = c->head;
    while (n != NULL) {
        msg_node_t *next = n->next;
        free(n->msg.topic);
        free(n->msg.payload);
        free(n);
        n = next;
    }
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* Connects a client: a password login, or TLS when cafile is not NULL. */
static ota_test_client_t *client_connect(const char *host, int port, const char *client_id,
                                         const char *username, const char *password,
                                         const char *cafile, const char *certfile,
                                         const char *keyfile)
{
    static int counter;
    char gen_id[64];
    ota_test_client_t *c;
    pthread_condattr_t ca;
    int64_t deadline;
    int rc;

    pthread_once(&g_lib_once, lib_init);
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    c->conn_rc = -1;
    for (size_t i = 0; i < MID_RING; i++) {
        c->pub_done[i] = -1;
        c->sub_done[i].mid = -1;
    }
    if (client_id == NULL) {
        snprintf(gen_id, sizeof(gen_id), "otter-test-%ld-%d", (long)getpid(),
                 __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
        client_id = gen_id;
    }
    c->m = mosquitto_new(client_id, true, c);
    if (c->m == NULL) {
        client_free(c);
        return NULL;
    }
    mosquitto_int_option(c->m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_connect_callback_set(c->m, cb_connect);
    mosquitto_disconnect_callback_set(c->m, cb_disconnect);
    mosquitto_publish_callback_set(c->m, cb_publish);
    mosquitto_subscribe_callback_set(c->m, cb_subscribe);
    mosquitto_message_callback_set(c->m, cb_message);
    mosquitto_reconnect_delay_set(c->m, 1, 2, false);
    if ((username != NULL && mosquitto_username_pw_set(c->m, username, password) != 0) ||
        (cafile != NULL &&
         mosquitto_tls_set(c->m, cafile, NULL, certfile, keyfile, NULL) != MOSQ_ERR_SUCCESS) ||
        mosquitto_connect(c->m, host, port, 60) != MOSQ_ERR_SUCCESS ||
        mosquitto_loop_start(c->m) != MOSQ_ERR_SUCCESS) {
        mosquitto_destroy(c->m);
        client_free(c);
        return NULL;
    }
    deadline = now_ms() + 5000;
    pthread_mutex_lock(&c->mu);
    while (c->conn_rc < 0 && wait_until(c, deadline)) {
    }
    rc = c->conn_rc;
    pthread_mutex_unlock(&c->mu);
    if (rc != 0) {
        mosquitto_disconnect(c->m);
        mosquitto_loop_stop(c->m, true);
        mosquitto_destroy(c->m);
        client_free(c);
        return NULL;
    }
    return c;
}

ota_test_client_t *ota_test_client_connect(int port, const char *client_id, const char *username,
                                           const char *password)
{
    return client_connect("127.0.0.1", port, client_id, username, password, NULL, NULL, NULL);
}

ota_test_client_t *ota_test_client_connect_tls(const char *host, int port, const char *client_id,
                                               const char *cafile, const char *certfile,
                                               const char *keyfile)
{
    return client_connect(host, port, client_id, NULL, NULL, cafile, certfile, keyfile);
}

ota_test_client_t *ota_test_login_connect(int port, const ota_test_login_t *l,
                                          const char *client_id)
{
    const char *id = client_id != NULL ? client_id : l->client_id;
    if (l->cafile[0] != '\0') {
        return ota_test_client_connect_tls("127.0.0.1", port, id, l->cafile, l->certfile,
                                           l->keyfile);
    }
    return ota_test_client_connect(port, id, l->username, l->password);
}

int ota_test_client_subscribe(ota_test_client_t *c, const char *filter, int qos)
{
    int mid = -1;
    int granted = -1;
    int64_t deadline = now_ms() + 5000;

    if (mosquitto_subscribe(c->m, &mid, filter, qos) != MOSQ_ERR_SUCCESS) {
        return -1;
    }
    pthread_mutex_lock(&c->mu);
    do {
        for (size_t i = 0; i < MID_RING; i++) {
            if (c->sub_done[i].mid == mid) {
                granted = c->sub_done[i].qos;
                c->sub_done[i].mid = -1;
                break;
            }
        }
    } while (granted < 0 && wait_until(c, deadline));
    pthread_mutex_unlock(&c->mu);
    if (granted < 0 || granted > 2) {
        return -1;
    }
    return granted;
}

int ota_test_client_publish(ota_test_client_t *c, const char *topic, const void *payload,
                            size_t len, int qos)
{
    return ota_test_client_publish_retained(c, topic, payload, len, qos, 0);
}

int ota_test_client_publish_retained(ota_test_client_t *c, const char *topic, const void *payload,
                                     size_t len, int qos, int retain)
{
    int mid = -1;
    int done = 0;
    int64_t deadline = now_ms() + 5000;

    if (len > INT32_MAX || mosquitto_publish(c->m, &mid, topic, (int)len, payload, qos,
                                             retain != 0) != MOSQ_ERR_SUCCESS) {
        return -1;
    }
    if (qos == 0) {
        return 0;
    }
    pthread_mutex_lock(&c->mu);
    do {
        for (size_t i = 0; i < MID_RING; i++) {
            if (c->pub_done[i] == mid) {
                c->pub_done[i] = -1;
                done = 1;
                break;
            }
        }
    } while (!done && wait_until(c, deadline));
    pthread_mutex_unlock(&c->mu);
    return done ? 0 : -1;
}

static int topic_matches(const char *filter, const char *topic)
{
    bool result = false;
    if (filter == NULL) {
        return 1;
    }
    return mosquitto_topic_matches_sub(filter, topic, &result) == MOSQ_ERR_SUCCESS && result;
}

ota_test_msg_t *ota_test_client_expect(ota_test_client_t *c, const char *filter, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    ota_test_msg_t *out = NULL;

    pthread_mutex_lock(&c->mu);
    do {
        msg_node_t *prev = NULL;
        for (msg_node_t *n = c->head; n != NULL; prev = n, n = n->next) {
            if (topic_matches(filter, n->msg.topic)) {
                if (prev != NULL) {
                    prev->next = n->next;
                } else {
                    c->head = n->next;
                }
                if (c->tail == n) {
                    c->tail = prev;
                }
                out = &n->msg; /* msg is the node's first member */
                break;
            }
        }
    } while (out == NULL && wait_until(c, deadline));
    pthread_mutex_unlock(&c->mu);
    return out;
}

size_t ota_test_client_pending(ota_test_client_t *c, const char *filter)
{
    size_t count = 0;

    pthread_mutex_lock(&c->mu);
    for (msg_node_t *n = c->head; n != NULL; n = n->next) {
        count += topic_matches(filter, n->msg.topic) ? 1u : 0u;
    }
    pthread_mutex_unlock(&c->mu);
    return count;
}

int ota_test_client_connected(ota_test_client_t *c)
{
    int v;
    pthread_mutex_lock(&c->mu);
    v = c->connected;
    pthread_mutex_unlock(&c->mu);
    return v;
}

void ota_test_msg_free(ota_test_msg_t *m)
{
    if (m == NULL) {
        return;
    }
    free(m->topic);
    free(m->payload);
    free((msg_node_t *)(void *)m);
}

void ota_test_client_disconnect(ota_test_client_t *c)
{
    if (c == NULL) {
        return;
    }
    mosquitto_disconnect(c->m);
    mosquitto_loop_stop(c->m, false);
    mosquitto_destroy(c->m);
    client_free(c);
}
