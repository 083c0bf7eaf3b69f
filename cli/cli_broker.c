/* otter CLI: `broker init`, password entries and broker reloads. */
#include "cli_broker.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <mbedtls/md.h>
#include <mbedtls/pkcs5.h>

#include "cli_x509.h"

/* Mosquitto 2's PBKDF2-SHA512 parameters (hash type 7). */
#define PW_SALT_LEN 12
#define PW_HASH_LEN 64
#define PW_ITERATIONS 101

char *cli_broker_password_entry(const char *user, const char *password)
{
    uint8_t salt[PW_SALT_LEN], hash[PW_HASH_LEN];
    if (cli_random(salt, sizeof salt) != 0) {
        return NULL;
    }
    mbedtls_md_context_t md;
    mbedtls_md_init(&md);
    int rc = mbedtls_md_setup(&md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA512), 1);
    if (rc == 0) {
        rc = mbedtls_pkcs5_pbkdf2_hmac(&md, (const unsigned char *)password, strlen(password), salt,
                                       sizeof salt, PW_ITERATIONS, sizeof hash, hash);
    }
    mbedtls_md_free(&md);
    if (rc != 0) {
        return NULL;
    }
    char *salt64 = cli_base64(salt, sizeof salt);
    char *hash64 = cli_base64(hash, sizeof hash);
    char *line = NULL;
    if (salt64 && hash64) {
        line = cli_sprintf("%s:$7$%d$%s$%s\n", user, PW_ITERATIONS, salt64, hash64);
    }
    free(salt64);
    free(hash64);
    return line;
}

int cli_broker_random_password(char out[33])
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    for (size_t i = 0; i < 32;) {
        uint8_t r[32];
        if (cli_random(r, sizeof r) != 0) {
            return -1;
        }
        for (size_t k = 0; k < sizeof r && i < 32; k++) {
            if (r[k] < 248) { /* 248 = 4 * 62: no modulo bias */
                out[i++] = alphabet[r[k] % 62];
            }
        }
    }
    out[32] = '\0';
    return 0;
}

/* Text of the ACL file; every user name in it is fixed. */
/* "<dir>/<name>" into out; -1 (with an error line) when it does not fit. */
static int join_path(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "otter: error: path too long under '%s'; use a shorter data folder\n", dir);
        return -1;
    }
    return 0;
}

static const char acl_text[] =
    "# otter broker ACL, written by 'otter broker init'.\n"
    "#\n"
    "# Devices log in with their thing name as username (%u below) and may only\n"
    "# publish and receive under their own jobs and streams topics. A subscription\n"
    "# to anything else is accepted by the broker but delivers nothing: every\n"
    "# message is checked against the receiver's read access.\n"
    "pattern readwrite $aws/things/%u/jobs/#\n"
    "pattern readwrite $aws/things/%u/streams/#\n"
    "\n"
    "# The service answers for every thing, also through shared subscriptions\n"
    "# ($share/<group>/...) when several service instances share the load.\n"
    "user " CLI_SERVICE_USER "\n"
    "topic readwrite $aws/things/#\n"
    "topic readwrite $share/+/$aws/things/#\n";

/* Writes the Mosquitto configuration text for the final folder `dir`. */
static char *config_text(const char *dir, unsigned port, unsigned tls_port)
{
    char *tls = NULL;
    if (tls_port) {
        tls = cli_sprintf("\n# TLS listener: server certificate for 127.0.0.1 and localhost,\n"
                          "# issued by the CA in ca.crt (give that to clients).\n"
                          "listener %u 127.0.0.1\n"
                          "cafile %s/ca.crt\n"
                          "certfile %s/server.crt\n"
                          "keyfile %s/server.key\n"
                          "tls_version tlsv1.2\n",
                          tls_port, dir, dir, dir);
        if (tls == NULL) {
            return NULL;
        }
    }
    char *text = cli_sprintf("# otter broker configuration, written by 'otter broker init'.\n"
                             "# Run: mosquitto -c %s/mosquitto.conf\n"
                             "per_listener_settings false\n"
                             "allow_anonymous false\n"
                             "password_file %s/passwd\n"
                             "acl_file %s/acl\n"
                             "pid_file %s/mosquitto.pid\n"
                             "persistence false\n"
                             "%s"
                             "\n"
                             "listener %u 127.0.0.1\n"
                             "%s",
                             dir, dir, dir, dir,
                             geteuid() == 0 ? "# Started as root: keep root so the 0600 files stay "
                                              "readable.\nuser root\n"
                                            : "",
                             port, tls ? tls : "");
    free(tls);
    return text;
}

/* Writes the CA, the server key and certificate into tmp (final paths in dir). */
static int write_tls_files(const char *tmp)
{
    mbedtls_pk_context ca_key, srv_key;
    mbedtls_pk_init(&ca_key);
    mbedtls_pk_init(&srv_key);
    char ca_pem[4096], srv_pem[4096], ca_key_pem[1024], srv_key_pem[1024];
    const char *ca_dn = "CN=otter broker CA,O=otter";
    int rc = cli_x509_make_key(&ca_key);
    if (rc == 0) {
        rc = cli_x509_make_key(&srv_key);
    }
    if (rc == 0) {
        cli_x509_cert_t ca = {ca_dn, &ca_key, ca_dn, &ca_key, 10, CLI_X509_CA};
        rc = cli_x509_make_cert(&ca, ca_pem, sizeof ca_pem);
    }
    if (rc == 0) {
        cli_x509_cert_t srv = {"CN=localhost,O=otter", &srv_key, ca_dn, &ca_key, 10,
                               CLI_X509_SERVER};
        rc = cli_x509_make_cert(&srv, srv_pem, sizeof srv_pem);
    }
    if (rc == 0) {
        rc = mbedtls_pk_write_key_pem(&ca_key, (unsigned char *)ca_key_pem, sizeof ca_key_pem);
    }
    if (rc == 0) {
        rc = mbedtls_pk_write_key_pem(&srv_key, (unsigned char *)srv_key_pem, sizeof srv_key_pem);
    }
    mbedtls_pk_free(&ca_key);
    mbedtls_pk_free(&srv_key);
    if (rc != 0) {
        return rc;
    }
    char p[CLI_PATH_MAX];
    struct {
        const char *name;
        const char *text;
        unsigned mode;
    } files[] = {{"ca.crt", ca_pem, 0644},
                 {"ca.key", ca_key_pem, 0600},
                 {"server.crt", srv_pem, 0644},
                 {"server.key", srv_key_pem, 0600}};
    for (size_t i = 0; i < 4; i++) {
        if (join_path(p, sizeof p, tmp, files[i].name) != 0 ||
            cli_write_new_file(p, files[i].text, strlen(files[i].text), files[i].mode) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Removes the regular files of a folder and the folder (best effort). */
static void remove_folder(const char *dir)
{
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        char p[CLI_PATH_MAX];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
                snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
                unlink(p);
            }
        }
        closedir(d);
    }
    rmdir(dir);
}

/* Credentials JSON for a login on this broker. */
static char *credentials_json(const char *user, const char *password, unsigned port,
                              unsigned tls_port, const char *cafile)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "host", "127.0.0.1");
    cJSON_AddNumberToObject(o, "port", port);
    cJSON_AddStringToObject(o, "username", user);
    cJSON_AddStringToObject(o, "password", password);
    cJSON_AddStringToObject(o, "client_id", user);
    if (tls_port) {
        cJSON_AddNumberToObject(o, "tls_port", tls_port);
        cJSON_AddStringToObject(o, "cafile", cafile);
    }
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    if (s == NULL) {
        return NULL;
    }
    char *t = cli_sprintf("%s\n", s);
    cJSON_free(s);
    return t;
}

/* Writes every broker file into tmp; dir is where they will live. */
static int write_broker_files(const char *tmp, const char *dir, unsigned port, unsigned tls_port)
{
    char p[CLI_PATH_MAX], password[33], cafile[CLI_PATH_MAX];
    if (join_path(cafile, sizeof cafile, dir, "ca.crt") != 0 ||
        cli_broker_random_password(password) != 0) {
        return -1;
    }
    char *conf = config_text(dir, port, tls_port);
    char *entry = cli_broker_password_entry(CLI_SERVICE_USER, password);
    char *creds = credentials_json(CLI_SERVICE_USER, password, port, tls_port, cafile);
    int rc = (conf && entry && creds) ? 0 : -1;
    if (rc == 0) {
        rc = join_path(p, sizeof p, tmp, "mosquitto.conf");
    }
    if (rc == 0) {
        rc = cli_write_new_file(p, conf, strlen(conf), 0644);
    }
    if (rc == 0) {
        rc = join_path(p, sizeof p, tmp, "passwd");
    }
    if (rc == 0) {
        rc = cli_write_new_file(p, entry, strlen(entry), 0600);
    }
    if (rc == 0) {
        rc = join_path(p, sizeof p, tmp, "acl");
    }
    if (rc == 0) {
        rc = cli_write_new_file(p, acl_text, strlen(acl_text), 0600);
    }
    if (rc == 0) {
        rc = join_path(p, sizeof p, tmp, "service.credentials");
    }
    if (rc == 0) {
        rc = cli_write_new_file(p, creds, strlen(creds), 0600);
    }
    if (rc == 0 && tls_port) {
        rc = write_tls_files(tmp);
    }
    memset(password, 0, sizeof password);
    free(conf);
    free(entry);
    free(creds);
    return rc;
}

static const char broker_help[] =
    "usage: otter broker init --port N [--tls [--tls-port M]]\n"
    "\n"
    "Write a Mosquitto configuration under DATA_DIR/broker/: a listener on\n"
    "127.0.0.1:N, no anonymous clients, a password file, an ACL that keeps every\n"
    "device to its own $aws/things/<thing>/jobs and streams topics, and the\n"
    "service's login in service.credentials (mode 0600).\n"
    "Then run: mosquitto -c DATA_DIR/broker/mosquitto.conf\n"
    "\n"
    "  --port N      plain MQTT listener port\n"
    "  --tls         also make a CA and a server certificate for 127.0.0.1 and\n"
    "                localhost, and a TLS listener (clients use broker/ca.crt)\n"
    "  --tls-port M  TLS listener port (default: N + 1)\n";

int cli_cmd_broker_init(const cli_ctx_t *ctx, int argc, char **argv)
{
    const char *port_s = NULL, *tls = NULL, *tls_port_s = NULL, *pos[1];
    size_t n_pos;
    int help;
    const cli_opt_t opts[] = {{"port", 1, &port_s}, {"tls", 0, &tls}, {"tls-port", 1, &tls_port_s}};
    int rc = cli_parse(argc, argv, opts, 3, pos, 0, &n_pos, &help);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (help) {
        fputs(broker_help, stdout);
        return CLI_EXIT_OK;
    }
    unsigned long port = 0, tls_port = 0;
    if (port_s == NULL) {
        return cli_fail(CLI_EXIT_USAGE,
                        "broker init needs --port N; see 'otter broker init --help'");
    }
    if (cli_parse_uint(port_s, 1, 65535, &port) != 0) {
        return cli_fail(CLI_EXIT_USAGE, "bad port '%s'; give a number from 1 to 65535", port_s);
    }
    if (tls_port_s != NULL && tls == NULL) {
        return cli_fail(CLI_EXIT_USAGE, "--tls-port needs --tls; add --tls");
    }
    if (tls != NULL) {
        if (tls_port_s == NULL) {
            tls_port = port + 1;
        } else if (cli_parse_uint(tls_port_s, 1, 65535, &tls_port) != 0) {
            return cli_fail(CLI_EXIT_USAGE, "bad TLS port '%s'; give a number from 1 to 65535",
                            tls_port_s);
        }
        if (tls_port == port || tls_port > 65535) {
            return cli_fail(CLI_EXIT_USAGE, "TLS port %lu is not usable; give another --tls-port",
                            tls_port);
        }
    }
    if (cli_mkdirs(ctx->data_dir) != 0) {
        return cli_fail(CLI_EXIT_FAIL, "cannot create data folder '%s' (%s); check --data-dir",
                        ctx->data_dir, strerror(errno));
    }
    char abs[PATH_MAX];
    if (realpath(ctx->data_dir, abs) == NULL) {
        return cli_fail(CLI_EXIT_FAIL, "cannot resolve '%s' (%s); check --data-dir", ctx->data_dir,
                        strerror(errno));
    }
    char dir[CLI_PATH_MAX], tmp[CLI_PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s/broker", abs) >= (int)sizeof dir - 32 ||
        snprintf(tmp, sizeof tmp, "%s/.broker-XXXXXX", abs) >= (int)sizeof tmp - 32) {
        return cli_fail(CLI_EXIT_USAGE, "data folder path too long; use a shorter --data-dir");
    }
    char conf[CLI_PATH_MAX];
    if (snprintf(conf, sizeof conf, "%s/mosquitto.conf", dir) >= (int)sizeof conf) {
        return cli_fail(CLI_EXIT_USAGE, "data folder path too long; use a shorter --data-dir");
    }
    if (cli_exists(conf)) {
        return cli_fail(CLI_EXIT_FAIL,
                        "the broker is already set up in '%s'; remove that folder to start over",
                        dir);
    }
    if (mkdtemp(tmp) == NULL) {
        return cli_fail(CLI_EXIT_FAIL, "cannot create a folder in '%s' (%s); check permissions",
                        abs, strerror(errno));
    }
    if (write_broker_files(tmp, dir, (unsigned)port, (unsigned)tls_port) != 0) {
        int e = errno;
        remove_folder(tmp);
        return cli_fail(CLI_EXIT_FAIL, "cannot write the broker files (%s); check '%s'",
                        strerror(e), abs);
    }
    if (rename(tmp, dir) != 0) {
        int e = errno;
        remove_folder(tmp);
        return cli_fail(CLI_EXIT_FAIL, "cannot create '%s' (%s); remove it if it is in the way",
                        dir, strerror(e));
    }
    printf("broker config: %s/mosquitto.conf\n", dir);
    printf("listener:      127.0.0.1:%lu\n", port);
    if (tls_port) {
        printf("TLS listener:  127.0.0.1:%lu (CA: %s/ca.crt)\n", tls_port, dir);
    }
    printf("service login: %s/service.credentials\n", dir);
    printf("start it with: mosquitto -c %s/mosquitto.conf\n", dir);
    return CLI_EXIT_OK;
}

int cli_broker_info(const cli_ctx_t *ctx, cli_broker_info_t *out)
{
    char p[CLI_PATH_MAX];
    memset(out, 0, sizeof *out);
    if (cli_data_path(ctx, p, sizeof p, "broker/service.credentials") != 0) {
        return cli_fail(CLI_EXIT_FAIL, "data folder path too long; use a shorter --data-dir");
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    if (cli_read_file(p, &buf, &len) != 0) {
        return cli_fail(CLI_EXIT_FAIL,
                        "no broker set up in '%s' (%s); run 'otter broker init' first",
                        ctx->data_dir, strerror(errno));
    }
    cJSON *o = cJSON_Parse((const char *)buf);
    free(buf);
    const cJSON *host = cJSON_GetObjectItemCaseSensitive(o, "host");
    const cJSON *port = cJSON_GetObjectItemCaseSensitive(o, "port");
    const cJSON *tls_port = cJSON_GetObjectItemCaseSensitive(o, "tls_port");
    const cJSON *cafile = cJSON_GetObjectItemCaseSensitive(o, "cafile");
    int ok = cJSON_IsString(host) && cJSON_IsNumber(port) &&
             strlen(host->valuestring) < sizeof out->host;
    if (ok) {
        snprintf(out->host, sizeof out->host, "%s", host->valuestring);
        out->port = (unsigned)port->valueint;
        if (cJSON_IsNumber(tls_port) && cJSON_IsString(cafile)) {
            out->tls_port = (unsigned)tls_port->valueint;
            snprintf(out->cafile, sizeof out->cafile, "%s", cafile->valuestring);
        }
    }
    cJSON_Delete(o);
    if (!ok) {
        return cli_fail(CLI_EXIT_FAIL,
                        "'%s' is damaged; run 'otter broker init' again in a new "
                        "data folder",
                        p);
    }
    return CLI_EXIT_OK;
}

/* Whether a password-file text has a line for user. */
static int has_user(const char *text, const char *user)
{
    size_t ul = strlen(user);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, user, ul) == 0 && l[ul] == ':') {
            return 1;
        }
    }
    return 0;
}

int cli_broker_add_user(const cli_ctx_t *ctx, const char *user, const char *password)
{
    char p[CLI_PATH_MAX];
    if (cli_data_path(ctx, p, sizeof p, "broker/passwd") != 0) {
        return cli_fail(CLI_EXIT_FAIL, "data folder path too long; use a shorter --data-dir");
    }
    uint8_t *old = NULL;
    size_t len = 0;
    if (cli_read_file(p, &old, &len) != 0) {
        return cli_fail(CLI_EXIT_FAIL, "cannot read '%s' (%s); run 'otter broker init' first", p,
                        strerror(errno));
    }
    if (has_user((const char *)old, user)) {
        free(old);
        return cli_fail(CLI_EXIT_FAIL, "'%s' already has broker credentials; choose another name",
                        user);
    }
    char *entry = cli_broker_password_entry(user, password);
    char *text = entry ? cli_sprintf("%s%s%s", (const char *)old,
                                     (len > 0 && old[len - 1] != '\n') ? "\n" : "", entry)
                       : NULL;
    free(old);
    free(entry);
    if (text == NULL) {
        return cli_fail(CLI_EXIT_FAIL, "cannot make a password entry; try again");
    }
    int rc = cli_replace_file(p, text, strlen(text), 0600);
    free(text);
    if (rc != 0) {
        return cli_fail(CLI_EXIT_FAIL, "cannot write '%s' (%s); check permissions", p,
                        strerror(errno));
    }
    return CLI_EXIT_OK;
}

int cli_broker_remove_user(const cli_ctx_t *ctx, const char *user)
{
    char p[CLI_PATH_MAX];
    if (cli_data_path(ctx, p, sizeof p, "broker/passwd") != 0) {
        return -1;
    }
    uint8_t *old = NULL;
    size_t len = 0;
    if (cli_read_file(p, &old, &len) != 0) {
        return -1;
    }
    char *out = malloc(len + 1);
    if (out == NULL) {
        free(old);
        return -1;
    }
    size_t n = 0, ul = strlen(user);
    for (char *l = (char *)old; *l;) {
        char *nl = strchr(l, '\n');
        size_t ll = nl ? (size_t)(nl - l) + 1 : strlen(l);
        if (!(strncmp(l, user, ul) == 0 && l[ul] == ':')) {
            memcpy(out + n, l, ll);
            n += ll;
        }
        l += ll;
    }
    int rc = cli_replace_file(p, out, n, 0600);
    free(out);
    free(old);
    return rc;
}

int cli_broker_reload(const cli_ctx_t *ctx)
{
    char p[CLI_PATH_MAX];
    if (cli_data_path(ctx, p, sizeof p, "broker/mosquitto.pid") != 0) {
        return 0;
    }
    FILE *f = fopen(p, "r");
    if (f == NULL) {
        return 0;
    }
    long pid = 0;
    int got = fscanf(f, "%ld", &pid);
    fclose(f);
    if (got != 1 || pid <= 1 || pid > INT_MAX) {
        return 0;
    }
    /* Only a Mosquitto process: a stale pid file may name another process. */
    char comm_path[64], comm[64] = "";
    snprintf(comm_path, sizeof comm_path, "/proc/%ld/comm", pid);
    f = fopen(comm_path, "r");
    if (f == NULL) {
        return 0;
    }
    got = fscanf(f, "%63s", comm);
    fclose(f);
    if (got != 1 || strcmp(comm, "mosquitto") != 0) {
        return 0;
    }
    return kill((pid_t)pid, SIGHUP) == 0 ? 1 : 0;
}
