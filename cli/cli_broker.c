/* otter CLI: `broker init`, the logins it writes, and whether the broker runs. */
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

#include "cli_dynsec.h"
#include "cli_federation.h"
#include "cli_x509.h"

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

/* Whether an address means "every interface". */
static int is_wildcard(const char *addr)
{
    return strcmp(addr, "0.0.0.0") == 0 || strcmp(addr, "::") == 0;
}

/*
 * The bridge from the broker to itself (--shared-streams): Mosquitto 2.0.11
 * accepts $share/... on $aws topics but never delivers to it, so the bridge
 * republishes every stream and Jobs API request under an ordinary topic,
 * where shared subscriptions work. With --tls it logs in with a certificate
 * of its own on the TLS listener (the only one), checking the server's.
 */
static char *bridge_text(const char *dir, const cli_broker_setup_t *s, const char *password)
{
    char *login =
        s->tls ? cli_sprintf("bridge_cafile %s/ca.crt\n"
                             "bridge_certfile %s/bridge.crt\n"
                             "bridge_keyfile %s/bridge.key\n"
                             "bridge_tls_version tlsv1.2\n"
                             "bridge_insecure false\n",
                             dir, dir, dir)
               : cli_sprintf("remote_username " CLI_BRIDGE_USER "\nremote_password %s\n", password);
    if (login == NULL) {
        return NULL;
    }
    char *text = cli_sprintf(
        "\n"
        "# Shared requests ('otter broker init --shared-streams'). Mosquitto 2.0\n"
        "# accepts a $share/... subscription on a $aws topic but never delivers to it.\n"
        "# This bridge connects the broker to itself as " CLI_BRIDGE_USER " (a login that\n"
        "# may only read the things' stream and Jobs API requests) and republishes each\n"
        "# request under the ordinary topic " CLI_SHARE_PREFIX "$aws/things/...; the service\n"
        "# instances subscribe to that as $share/otter-streams/" CLI_SHARE_PREFIX "$aws/things/+/\n"
        "# streams/... and $share/otter-jobs/" CLI_SHARE_PREFIX "$aws/things/+/jobs/..., so\n"
        "# the broker hands each request to one of them (service.credentials:\n"
        "# share_prefix, share_jobs). Devices may not use " CLI_SHARE_PREFIX " topics. Its\n"
        "# session persists, so that Jobs API requests (QoS 1) that arrive while it\n"
        "# reconnects after a restart wait for it.%s\n"
        "connection otter-shared-streams\n"
        "address %s:%u\n"
        "remote_clientid " CLI_BRIDGE_USER "\n"
        "%s"
        "bridge_protocol_version mqttv311\n"
        "try_private false\n"
        "cleansession false\n"
        "notifications false\n"
        "restart_timeout 1 10\n"
        "topic things/+/streams/+/get/+ in 0 " CLI_SHARE_PREFIX "$aws/ $aws/\n"
        "topic things/+/streams/+/describe/+ in 0 " CLI_SHARE_PREFIX "$aws/ $aws/\n"
        "topic things/+/jobs/get in 1 " CLI_SHARE_PREFIX "$aws/ $aws/\n"
        "topic things/+/jobs/start-next in 1 " CLI_SHARE_PREFIX "$aws/ $aws/\n"
        "topic things/+/jobs/+/get in 1 " CLI_SHARE_PREFIX "$aws/ $aws/\n"
        "topic things/+/jobs/+/update in 1 " CLI_SHARE_PREFIX "$aws/ $aws/\n",
        s->tls ? "\n# It logs in on the TLS listener with its own certificate (bridge.crt, CN\n"
                 "# " CLI_BRIDGE_USER ") and checks the server's against ca.crt."
               : " This file holds the bridge's\n# password: keep it private (mode 0600).",
        is_wildcard(s->bind) ? "127.0.0.1" : s->bind, s->port, login);
    memset(login, 0, strlen(login));
    free(login);
    return text;
}

/*
 * The path of otter's broker plugin: CLI_LIMITS_PLUGIN in the folder of the running otter
 * binary. -1 (with an error line) when it is not there.
 */
static int limits_plugin_path(char *out, size_t cap)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        fprintf(stderr, "otter: error: cannot find the otter binary's folder (%s)\n",
                strerror(errno));
        return -1;
    }
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash != NULL) {
        *slash = '\0';
    }
    if (join_path(out, cap, exe, CLI_LIMITS_PLUGIN) != 0) {
        return -1;
    }
    if (access(out, R_OK) != 0) {
        fprintf(stderr,
                "otter: error: the broker plugin %s is missing (%s); build it with otter "
                "(cmake --build) or copy it next to the otter binary\n",
                out, strerror(errno));
        return -1;
    }
    return 0;
}

/* The plugin lines that limit each thing's publishes (plugin: its path). */
static char *limits_text(const char *plugin)
{
    return cli_sprintf(
        "\n"
        "# Each thing's publishes, limited by otter's plugin: at most %u bytes of\n"
        "# payload (a status update's details are at most 16 KiB), %u messages/s\n"
        "# (burst %u) and %u bytes/s (burst %u) per thing, across its connections,\n"
        "# wills included; what is over is refused and logged (otter_device_limits).\n"
        "# The packet limit below is for everyone and must let the service publish\n"
        "# 128 KiB blocks, and Mosquitto does not bound QoS 0 messages queued for\n"
        "# the service in bytes. The service's, the CLI's and the bridges' logins\n"
        "# are exempt. It checks each publish before the dynamic-security rules\n"
        "# below do, so its lines come first.\n"
        "plugin %s\n"
        "plugin_opt_max_payload %u\n"
        "plugin_opt_messages_per_second %u\n"
        "plugin_opt_message_burst %u\n"
        "plugin_opt_bytes_per_second %u\n"
        "plugin_opt_byte_burst %u\n"
        "plugin_opt_exempt_users " CLI_ADMIN_USER "\n"
        "plugin_opt_exempt_prefix " CLI_SERVICE_USER "\n",
        CLI_DEVICE_MAX_PAYLOAD, CLI_DEVICE_MSG_RATE, CLI_DEVICE_MSG_BURST, CLI_DEVICE_BYTE_RATE,
        CLI_DEVICE_BYTE_BURST, plugin, CLI_DEVICE_MAX_PAYLOAD, CLI_DEVICE_MSG_RATE,
        CLI_DEVICE_MSG_BURST, CLI_DEVICE_BYTE_RATE, CLI_DEVICE_BYTE_BURST);
}

/* The Mosquitto configuration text for the final folder `dir`. */
static char *config_text(const char *dir, const cli_broker_setup_t *s, const char *bridge)
{
    char plugin[CLI_PATH_MAX];
    if (limits_plugin_path(plugin, sizeof plugin) != 0) {
        return NULL;
    }
    char *limits = limits_text(plugin);
    if (limits == NULL) {
        return NULL;
    }
    char *tls = NULL;
    if (s->tls) {
        tls =
            cli_sprintf("# Mutual TLS only (no plain listener): the server certificate names %s;\n"
                        "# every client presents a certificate issued by the CA in ca.crt\n"
                        "# ('otter thing create' issues one per thing) and its common name is\n"
                        "# its username and its client id; revoked ones are in crl.pem\n"
                        "# ('otter thing revoke').\n"
                        "cafile %s/ca.crt\n"
                        "certfile %s/server.crt\n"
                        "keyfile %s/server.key\n"
                        "crlfile %s/crl.pem\n"
                        "require_certificate true\n"
                        "use_identity_as_username true\n"
                        "use_username_as_clientid true\n"
                        "tls_version tlsv1.2\n",
                        s->host, dir, dir, dir, dir);
        if (tls == NULL) {
            free(limits);
            return NULL;
        }
    }
    char *text = cli_sprintf(
        "# otter broker configuration, written by 'otter broker init'.\n"
        "# Run: mosquitto -c %s/mosquitto.conf\n"
        "per_listener_settings false\n"
        "allow_anonymous false\n"
        "%s"
        "\n"
        "# Logins and access rules: Mosquitto's dynamic-security plugin. Each thing\n"
        "# may connect only with its own name as client id and use only its own\n"
        "# $aws/things/<thing>/jobs, streams and shadow topics; 'otter thing create'\n"
        "# adds them.\n"
        "plugin %s\n"
        "plugin_opt_config_file %s/dynsec.json\n"
        "pid_file %s/mosquitto.pid\n"
        "\n"
        "# Sessions and queued messages survive a restart of the broker (the\n"
        "# service keeps a persistent session).\n"
        "persistence true\n"
        "persistence_location %s/\n"
        "autosave_interval 60\n"
        "\n"
        "# Small messages leave at once instead of waiting for a delayed ACK.\n"
        "set_tcp_nodelay true\n"
        "# AWS IoT's 128 KiB payload limit plus 4 KiB for the topic and headers: a\n"
        "# client sending a bigger packet is disconnected.\n"
        "max_packet_size %u\n"
        "# No retained messages: a device could otherwise leave a forged message on\n"
        "# its own topics for its next connection. A retained publish disconnects.\n"
        "retain_available false\n"
        "# Requests queued for the service while it restarts: a fleet's worth, bounded\n"
        "# in bytes per client (Mosquitto's default of 1000 messages would drop them).\n"
        "max_queued_messages 100000\n"
        "max_queued_bytes 67108864\n"
        "# Connection notices also on $SYS/broker/log/N: the service learns from\n"
        "# them which things are online (clients cannot publish on $SYS topics).\n"
        "log_dest stderr\n"
        "log_dest topic\n"
        "%s"
        "\n"
        "listener %u %s\n"
        "%s%s",
        dir, limits, CLI_DYNSEC_PLUGIN, dir, dir, dir, CLI_BROKER_MAX_PACKET,
        geteuid() == 0 ? "# Written by root: the broker keeps running as root, since the files\n"
                         "# here are private to root (mode 0600) and Mosquitto would otherwise\n"
                         "# switch to user 'mosquitto' and fail to read them. Run 'otter broker\n"
                         "# init' as the user that runs the broker to avoid this.\n"
                         "user root\n"
                       : "",
        s->port, s->bind, tls ? tls : "", bridge ? bridge : "");
    free(tls);
    free(limits);
    return text;
}
/* Reads a PEM file under dir into a new heap string. */
static char *read_pem(const char *dir, const char *name)
{
    char p[CLI_PATH_MAX];
    uint8_t *buf = NULL;
    size_t len = 0;
    if (join_path(p, sizeof p, dir, name) != 0 || cli_read_file(p, &buf, &len) != 0) {
        return NULL;
    }
    return (char *)buf;
}

/* Loads the CA's key from ca_dir/ca.key. */
static int load_ca_key(const char *ca_dir, mbedtls_pk_context *key)
{
    char *pem = read_pem(ca_dir, "ca.key");
    int rc = pem == NULL
                 ? -1
                 : mbedtls_pk_parse_key(key, (const unsigned char *)pem, strlen(pem) + 1, NULL, 0);
    free(pem);
    return rc;
}

/* The CA's subject: the issuer of everything it signs. */
static const char ca_dn[] = "CN=otter broker CA,O=otter";

/* Issues a key and a certificate (kind, names) from the CA in ca_dir. */
static int issue(const char *ca_dir, const char *cn, cli_x509_kind_t kind, const char *const *names,
                 const char *cert_path, const char *key_path)
{
    mbedtls_pk_context ca_key, key;
    mbedtls_pk_init(&ca_key);
    mbedtls_pk_init(&key);
    char pem[4096], key_pem[1024];
    char *subject = cli_sprintf("CN=%s,O=otter", cn);
    int rc = subject == NULL ? -1 : load_ca_key(ca_dir, &ca_key);
    if (rc == 0) {
        rc = cli_x509_make_key(&key);
    }
    if (rc == 0) {
        cli_x509_cert_t c = {subject, &key, ca_dn, &ca_key, 10, kind, names};
        rc = cli_x509_make_cert(&c, pem, sizeof pem);
    }
    if (rc == 0) {
        rc = mbedtls_pk_write_key_pem(&key, (unsigned char *)key_pem, sizeof key_pem);
    }
    mbedtls_pk_free(&ca_key);
    mbedtls_pk_free(&key);
    free(subject);
    if (rc == 0 && cli_write_new_file(key_path, key_pem, strlen(key_pem), 0600) != 0) {
        rc = -1;
    }
    if (rc == 0 && cli_write_new_file(cert_path, pem, strlen(pem), 0644) != 0) {
        unlink(key_path);
        rc = -1;
    }
    memset(key_pem, 0, sizeof key_pem);
    return rc == 0 ? 0 : -1;
}

int cli_broker_issue_cert(const char *ca_dir, const char *name, const char *cert_path,
                          const char *key_path)
{
    return issue(ca_dir, name, CLI_X509_CLIENT, NULL, cert_path, key_path);
}

/* Writes a CRL signed by the CA in ca_dir: the current one plus revoke (may be NULL). */
static int write_crl(const char *ca_dir, const char *current, const char *revoke, const char *path)
{
    mbedtls_pk_context ca_key;
    mbedtls_pk_init(&ca_key);
    char *ca_pem = read_pem(ca_dir, "ca.crt");
    size_t cap = 1u << 20;
    char *out = malloc(cap);
    int rc = (ca_pem == NULL || out == NULL) ? -1 : load_ca_key(ca_dir, &ca_key);
    if (rc == 0) {
        rc = cli_x509_make_crl(ca_pem, &ca_key, current, revoke, out, cap);
    }
    if (rc == 0 && cli_replace_file(path, out, strlen(out), 0644) != 0) {
        rc = -1;
    }
    mbedtls_pk_free(&ca_key);
    free(ca_pem);
    free(out);
    return rc == 0 ? 0 : -1;
}

int cli_broker_revoke_cert(const cli_ctx_t *ctx, const char *cert_path)
{
    char dir[CLI_PATH_MAX], crl[CLI_PATH_MAX];
    if (cli_data_path(ctx, dir, sizeof dir, "broker") != 0 ||
        join_path(crl, sizeof crl, dir, "crl.pem") != 0) {
        return -1;
    }
    uint8_t *cert = NULL, *current = NULL;
    size_t len;
    int rc = -1;
    if (cli_read_file(cert_path, &cert, &len) == 0 && cli_read_file(crl, &current, &len) == 0) {
        rc = cli_x509_is_revoked((const char *)current, (const char *)cert) == 1
                 ? 0
                 : write_crl(dir, (const char *)current, (const char *)cert, crl);
    }
    free(cert);
    free(current);
    return rc;
}

/* Writes a new CA's key and certificate into tmp. */
static int make_ca(const char *tmp)
{
    mbedtls_pk_context ca_key;
    mbedtls_pk_init(&ca_key);
    char ca_pem[4096], ca_key_pem[1024];
    int rc = cli_x509_make_key(&ca_key);
    if (rc == 0) {
        cli_x509_cert_t ca = {ca_dn, &ca_key, ca_dn, &ca_key, 10, CLI_X509_CA, NULL};
        rc = cli_x509_make_cert(&ca, ca_pem, sizeof ca_pem);
    }
    if (rc == 0) {
        rc = mbedtls_pk_write_key_pem(&ca_key, (unsigned char *)ca_key_pem, sizeof ca_key_pem);
    }
    mbedtls_pk_free(&ca_key);
    char p[CLI_PATH_MAX], k[CLI_PATH_MAX];
    if (rc != 0 || join_path(p, sizeof p, tmp, "ca.crt") != 0 ||
        cli_write_new_file(p, ca_pem, strlen(ca_pem), 0644) != 0 ||
        join_path(k, sizeof k, tmp, "ca.key") != 0 ||
        cli_write_new_file(k, ca_key_pem, strlen(ca_key_pem), 0600) != 0) {
        rc = -1;
    }
    memset(ca_key_pem, 0, sizeof ca_key_pem);
    return rc == 0 ? 0 : -1;
}

/* Writes the CA (a new one, or a copy of s->ca_dir's certificate: a federation's brokers
 * share hub 1's CA, whose key stays there), the server's, the service's and the CLI's keys
 * and certificates, the bridges' and an empty CRL, into tmp. */
static int write_tls_files(const char *tmp, const cli_broker_setup_t *s)
{
    const char *ca_dir = s->ca_dir != NULL ? s->ca_dir : tmp;
    char p[CLI_PATH_MAX], k[CLI_PATH_MAX];
    if (s->ca_dir == NULL) {
        if (make_ca(tmp) != 0) {
            return -1;
        }
    } else {
        char *ca_pem = read_pem(s->ca_dir, "ca.crt");
        int rc = ca_pem == NULL || join_path(p, sizeof p, tmp, "ca.crt") != 0 ||
                         cli_write_new_file(p, ca_pem, strlen(ca_pem), 0644) != 0
                     ? -1
                     : 0;
        free(ca_pem);
        if (rc != 0) {
            return -1;
        }
    }
    /* The server is reached by --host, by the bound address and on the machine itself. */
    const char *names[5];
    size_t n = 0;
    names[n++] = s->host;
    if (!is_wildcard(s->bind) && strcmp(s->bind, s->host) != 0) {
        names[n++] = s->bind;
    }
    if (strcmp(s->host, "127.0.0.1") != 0 && strcmp(s->bind, "127.0.0.1") != 0) {
        names[n++] = "127.0.0.1";
    }
    if (strcmp(s->host, "localhost") != 0) {
        names[n++] = "localhost";
    }
    names[n] = NULL;
    char fed_cn[64];
    snprintf(fed_cn, sizeof fed_cn, CLI_FEDERATION_USER "-%u", s->fed_index);
    const struct {
        const char *cn, *crt, *key;
        cli_x509_kind_t kind;
        int wanted;
    } certs[] = {
        {"otter broker", "server.crt", "server.key", CLI_X509_SERVER, 1},
        {CLI_SERVICE_USER, "service.crt", "service.key", CLI_X509_CLIENT, 1},
        {CLI_ADMIN_USER, "admin.crt", "admin.key", CLI_X509_CLIENT, 1},
        /* the bridge to itself (--shared-streams), the federation's bridge of this broker */
        {CLI_BRIDGE_USER, "bridge.crt", "bridge.key", CLI_X509_CLIENT, s->shared_streams},
        {fed_cn, "federation.crt", "federation.key", CLI_X509_CLIENT, s->fed_bridge},
    };
    for (size_t i = 0; i < sizeof certs / sizeof certs[0]; i++) {
        if (certs[i].wanted && (join_path(p, sizeof p, tmp, certs[i].crt) != 0 ||
                                join_path(k, sizeof k, tmp, certs[i].key) != 0 ||
                                issue(ca_dir, certs[i].cn, certs[i].kind, names, p, k) != 0)) {
            return -1;
        }
    }
    return join_path(p, sizeof p, tmp, "crl.pem") == 0 ? write_crl(ca_dir, NULL, NULL, p) : -1;
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

char *cli_broker_login_json(const char *host, unsigned port, const char *user, const char *password,
                            const char *prefix, const char *cafile, const char *certfile,
                            const char *keyfile)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "host", host);
    cJSON_AddNumberToObject(o, "port", port);
    cJSON_AddStringToObject(o, "username", user);
    if (password != NULL) {
        cJSON_AddStringToObject(o, "password", password);
    }
    cJSON_AddStringToObject(o, "client_id", user);
    if (prefix != NULL) {
        cJSON_AddStringToObject(o, "client_id_prefix", prefix);
    }
    if (cafile != NULL) {
        cJSON_AddStringToObject(o, "cafile", cafile);
        cJSON_AddStringToObject(o, "certfile", certfile);
        cJSON_AddStringToObject(o, "keyfile", keyfile);
    }
    char *p = cJSON_Print(o);
    cJSON_Delete(o);
    char *t = p ? cli_sprintf("%s\n", p) : NULL;
    cJSON_free(p);
    return t;
}

/* The login file of the service or the CLI (name: "service", "admin"). */
static char *own_login(const cli_broker_setup_t *s, const char *dir, const char *user,
                       const char *name, const char *password, const char *prefix)
{
    char *ca = cli_sprintf("%s/ca.crt", dir);
    char *crt = cli_sprintf("%s/%s.crt", dir, name);
    char *key = cli_sprintf("%s/%s.key", dir, name);
    char *t = (ca && crt && key)
                  ? cli_broker_login_json(s->host, s->port, user, s->tls ? NULL : password, prefix,
                                          s->tls ? ca : NULL, crt, key)
                  : NULL;
    free(ca);
    free(crt);
    free(key);
    return t;
}

/* A JSON object text with one more member (a string, else a boolean), as a new heap string
 * (NULL on failure). */
static char *json_with(const char *text, const char *key, const char *value, int flag)
{
    cJSON *o = cJSON_Parse(text);
    char *p = NULL, *t = NULL;
    if (cJSON_IsObject(o) && (value != NULL ? cJSON_AddStringToObject(o, key, value)
                                            : cJSON_AddBoolToObject(o, key, flag)) != NULL) {
        p = cJSON_Print(o);
    }
    cJSON_Delete(o);
    t = p ? cli_sprintf("%s\n", p) : NULL;
    if (p != NULL) {
        memset(p, 0, strlen(p));
    }
    cJSON_free(p);
    return t;
}

/* Writes one text file into tmp. */
static int write_one(const char *tmp, const char *name, const char *text, unsigned mode)
{
    char p[CLI_PATH_MAX];
    if (text == NULL || join_path(p, sizeof p, tmp, name) != 0) {
        return -1;
    }
    return cli_write_new_file(p, text, strlen(text), mode);
}

/* Writes every broker file into tmp; dir is where they will live; extra is more
 * configuration (a federation's bridges) or NULL. */
static int write_broker_files(const char *tmp, const char *dir, const cli_broker_setup_t *s,
                              const cli_broker_secrets_t *pw, const char *extra)
{
    char *bridge = s->shared_streams ? bridge_text(dir, s, pw->bridge) : NULL;
    char *more = cli_sprintf("%s%s", bridge ? bridge : "", extra ? extra : "");
    char *conf = more ? config_text(dir, s, more) : NULL;
    char *dynsec = cli_dynsec_initial(s->tls ? NULL : pw->admin, s->tls ? NULL : pw->service,
                                      s->shared_streams, s->tls ? NULL : pw->bridge);
    if (dynsec != NULL && s->fed_index != 0) {
        char *t = cli_dynsec_with_federation(dynsec, pw->federation, 9);
        free(dynsec);
        dynsec = t;
    }
    char *service =
        own_login(s, dir, CLI_SERVICE_USER, "service", pw->service, CLI_SERVICE_USER "-");
    char *admin = own_login(s, dir, CLI_ADMIN_USER, "admin", pw->admin, NULL);
    if (service != NULL && s->shared_streams) {
        /* The service's instances take the bridged requests under this prefix, the Jobs API's
         * too. */
        char *t = json_with(service, "share_prefix", CLI_SHARE_PREFIX, 0);
        free(service);
        service = t != NULL ? json_with(t, "share_jobs", NULL, 1) : NULL;
        free(t);
    }
    if (service != NULL && s->service_brokers != NULL) {
        /* In a federation: the hubs, in order, for the service to fail over between. */
        char *t = json_with(service, "brokers", s->service_brokers, 0);
        free(service);
        service = t;
    }
    if (service != NULL && s->fed_count > 0) {
        /* The brokers are numbered 1 .. this (the hubs first, as in "brokers"). */
        char n[16];
        snprintf(n, sizeof n, "%u", s->fed_count);
        char *t = json_with(service, "federation_brokers", n, 0);
        free(service);
        service = t;
    }
    /* With a bridge's password in it, the configuration is private too. */
    int secret = s->shared_streams || (extra != NULL && extra[0] != '\0');
    int rc = ((s->shared_streams && bridge == NULL) || more == NULL)
                 ? -1
                 : write_one(tmp, "mosquitto.conf", conf, secret ? 0600 : 0644);
    if (rc == 0) {
        rc = write_one(tmp, "dynsec.json", dynsec, 0600);
    }
    if (rc == 0) {
        rc = write_one(tmp, "service.credentials", service, 0600);
    }
    if (rc == 0) {
        rc = write_one(tmp, "admin.credentials", admin, 0600);
    }
    if (rc == 0 && s->tls) {
        rc = write_tls_files(tmp, s);
    }
    if (bridge != NULL) {
        memset(bridge, 0, strlen(bridge));
        free(bridge);
    }
    if (more != NULL) {
        memset(more, 0, strlen(more));
        free(more);
    }
    if (conf != NULL) {
        memset(conf, 0, strlen(conf));
    }
    free(conf);
    free(dynsec);
    free(service);
    free(admin);
    return rc;
}

int cli_broker_secrets_make(cli_broker_secrets_t *pw, int federation)
{
    memset(pw, 0, sizeof *pw);
    if (cli_broker_random_password(pw->service) != 0 ||
        cli_broker_random_password(pw->admin) != 0 || cli_broker_random_password(pw->bridge) != 0) {
        return -1;
    }
    for (size_t k = 1; federation && k < sizeof pw->federation / sizeof pw->federation[0]; k++) {
        if (cli_broker_random_password(pw->federation[k]) != 0) {
            return -1;
        }
    }
    return 0;
}

int cli_broker_make(const char *data_dir, const cli_broker_setup_t *s,
                    const cli_broker_secrets_t *pw, const char *extra)
{
    if (cli_mkdirs(data_dir) != 0) {
        return cli_fail(CLI_EXIT_FAIL, "cannot create data folder '%s' (%s); check --data-dir",
                        data_dir, strerror(errno));
    }
    char abs[PATH_MAX];
    if (realpath(data_dir, abs) == NULL) {
        return cli_fail(CLI_EXIT_FAIL, "cannot resolve '%s' (%s); check --data-dir", data_dir,
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
    if (write_broker_files(tmp, dir, s, pw, extra) != 0) {
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
    return CLI_EXIT_OK;
}

static const char broker_help[] =
    "usage: otter broker init --port N [--bind ADDRESS] [--host NAME]\n"
    "                         [--tls] [--shared-streams] [--federate HOST:PORT,...]\n"
    "\n"
    "Write a Mosquitto configuration under DATA_DIR/broker/: a listener on\n"
    "ADDRESS:N, no anonymous clients, logins and access rules in Mosquitto's\n"
    "dynamic-security plugin (each device may connect only as its own thing name\n"
    "and use only its own $aws/things/<thing>/jobs and streams topics),\n"
    "persistence in DATA_DIR/broker/, TCP_NODELAY, a 128 KiB + 4 KiB packet limit,\n"
    "no retained messages, per-thing publish limits (otter's broker plugin\n"
    "" CLI_LIMITS_PLUGIN ", found next to the otter binary: 32 KiB of payload,\n"
    "1000 messages/s and 1 MiB/s per device), and the service's login in\n"
    "service.credentials (mode 0600). The data folder is created if it does not\n"
    "exist.\n"
    "Then run: mosquitto -c DATA_DIR/broker/mosquitto.conf\n"
    "\n"
    "  --port N          MQTT listener port\n"
    "  --bind ADDRESS    address to listen on (default 127.0.0.1; 0.0.0.0 for all)\n"
    "  --host NAME       name or address devices and the service connect to (written\n"
    "                    to their credentials; default: ADDRESS, needed with 0.0.0.0)\n"
    "  --tls             mutual TLS only, as AWS IoT devices use it: make a CA, a\n"
    "                    server certificate for NAME, ADDRESS, 127.0.0.1 and localhost,\n"
    "                    and client certificates for the service and the CLI; the\n"
    "                    listener on N requires a client certificate from that CA\n"
    "                    (things get one from 'thing create'), takes the identity\n"
    "                    from it and refuses revoked ones (broker/crl.pem); no plain\n"
    "                    listener\n"
    "  --shared-streams  several service instances share the stream and Jobs API\n"
    "                    requests: a bridge from the broker to itself republishes\n"
    "                    them under " CLI_SHARE_PREFIX "$aws/things/..., where Mosquitto 2.0\n"
    "                    delivers shared subscriptions ($share/otter-streams/...,\n"
    "                    $share/otter-jobs/...); its login " CLI_BRIDGE_USER "\n"
    "                    may only read those requests; mosquitto.conf (which holds\n"
    "                    its password) is mode 0600. With --tls the bridge logs in\n"
    "                    on the TLS listener with its own certificate (bridge.crt)\n"
    "  --federate HOST:PORT,...  a federation: this broker (ADDRESS:N, hub 1)\n"
    "                    and one more broker per HOST:PORT (1 to " CLI_FEDERATION_MAX_S "), each\n"
    "                    written to DATA_DIR/federation/K/broker/ (K = 2, 3, ...) to be\n"
    "                    copied to the same path on its machine; all have the same\n"
    "                    logins and rules. Broker 2 is hub 2: hub 1 bridges to it,\n"
    "                    and every further broker bridges to hub 1, or to hub 2 while\n"
    "                    hub 1 is down (the things' jobs, streams and shadow topics,\n"
    "                    both ways; each bridge its own login, or with --tls its own\n"
    "                    certificate from this broker's CA). The service fails over\n"
    "                    between the hubs (service.credentials lists both).\n"
    "                    'thing create' and the other thing commands then change every\n"
    "                    broker of the federation, which must be running. See\n"
    "                    docs/SCALING.md\n";

/* Checks a --bind or --host value: letters, digits, '.', '-', ':' only. */
int cli_broker_valid_address(const char *a)
{
    size_t n = strlen(a);
    if (n == 0 || n > 253) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = a[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':')) {
            return 0;
        }
    }
    return 1;
}

/* Parses broker init's options into s; prints the error line. */
static int parse_setup(int argc, char **argv, cli_broker_setup_t *s, int *help)
{
    const char *port_s = NULL, *tls = NULL, *shared = NULL, *pos[1];
    size_t n_pos;
    const cli_opt_t opts[] = {{"port", 1, &port_s},           {"tls", 0, &tls},
                              {"bind", 1, &s->bind},          {"host", 1, &s->host},
                              {"shared-streams", 0, &shared}, {"federate", 1, &s->federate}};
    int rc = cli_parse(argc, argv, opts, 6, pos, 0, &n_pos, help);
    if (rc != CLI_EXIT_OK || *help) {
        return rc;
    }
    unsigned long port = 0;
    if (port_s == NULL) {
        return cli_fail(CLI_EXIT_USAGE,
                        "broker init needs --port N; see 'otter broker init --help'");
    }
    if (cli_parse_uint(port_s, 1, 65535, &port) != 0) {
        return cli_fail(CLI_EXIT_USAGE, "bad port '%s'; give a number from 1 to 65535", port_s);
    }
    if (s->bind == NULL) {
        s->bind = "127.0.0.1";
    }
    if (!cli_broker_valid_address(s->bind)) {
        return cli_fail(CLI_EXIT_USAGE, "bad --bind address '%s'; give an IP address like 0.0.0.0",
                        s->bind);
    }
    if (s->host == NULL && is_wildcard(s->bind)) {
        return cli_fail(CLI_EXIT_USAGE,
                        "--bind %s listens everywhere; add --host NAME, the name or address "
                        "devices use to reach this machine",
                        s->bind);
    }
    if (s->host == NULL) {
        s->host = s->bind;
    }
    if (!cli_broker_valid_address(s->host)) {
        return cli_fail(CLI_EXIT_USAGE, "bad --host '%s'; give a host name or an IP address",
                        s->host);
    }
    s->port = (unsigned)port;
    s->tls = tls != NULL;
    s->shared_streams = shared != NULL;
    return CLI_EXIT_OK;
}

int cli_cmd_broker_init(const cli_ctx_t *ctx, int argc, char **argv)
{
    cli_broker_setup_t s;
    memset(&s, 0, sizeof s);
    int help;
    int rc = parse_setup(argc, argv, &s, &help);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (help) {
        fputs(broker_help, stdout);
        return CLI_EXIT_OK;
    }
    if (s.federate != NULL) {
        return cli_federation_init(ctx, &s);
    }
    cli_broker_secrets_t pw;
    if (cli_broker_secrets_make(&pw, 0) != 0) {
        return cli_fail(CLI_EXIT_FAIL, "cannot make passwords (no randomness); try again");
    }
    rc = cli_broker_make(ctx->data_dir, &s, &pw, NULL);
    memset(&pw, 0, sizeof pw);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    char abs[PATH_MAX], dir[CLI_PATH_MAX];
    if (realpath(ctx->data_dir, abs) == NULL ||
        snprintf(dir, sizeof dir, "%s/broker", abs) >= (int)sizeof dir) {
        return cli_fail(CLI_EXIT_FAIL, "cannot resolve '%s'; check --data-dir", ctx->data_dir);
    }
    printf("broker config: %s/mosquitto.conf\n", dir);
    printf("listener:      %s:%u%s (devices connect to %s:%u)\n", s.bind, s.port,
           s.tls ? ", mutual TLS" : "", s.host, s.port);
    if (s.tls) {
        printf("CA:            %s/ca.crt (revoked: %s/crl.pem)\n", dir, dir);
    }
    printf("service login: %s/service.credentials\n", dir);
    if (s.shared_streams) {
        printf("shared requests: a bridge to itself republishes stream and Jobs API requests "
               "under %s; start more instances with 'otter-service --instance NAME' (any "
               "--role)\n",
               CLI_SHARE_PREFIX "$aws/things/");
    }
    printf("start it with: mosquitto -c %s/mosquitto.conf\n", dir);
    return CLI_EXIT_OK;
}

/* Copies a JSON string member into out; 0, or -1 when absent or too long. */
static int json_copy(const cJSON *o, const char *key, char *out, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= cap) {
        return -1;
    }
    memcpy(out, v->valuestring, strlen(v->valuestring) + 1);
    return 0;
}

int cli_broker_login(const cli_ctx_t *ctx, const char *rel, cli_login_t *out)
{
    char p[CLI_PATH_MAX];
    memset(out, 0, sizeof *out);
    if (cli_data_path(ctx, p, sizeof p, "%s", rel) != 0) {
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
    const cJSON *port = cJSON_GetObjectItemCaseSensitive(o, "port");
    int ok = cJSON_IsNumber(port) && json_copy(o, "host", out->host, sizeof out->host) == 0 &&
             json_copy(o, "username", out->username, sizeof out->username) == 0 &&
             json_copy(o, "client_id", out->client_id, sizeof out->client_id) == 0;
    if (ok) {
        out->port = (unsigned)port->valueint;
        (void)json_copy(o, "password", out->password, sizeof out->password);
        if (json_copy(o, "cafile", out->cafile, sizeof out->cafile) == 0) {
            ok = json_copy(o, "certfile", out->certfile, sizeof out->certfile) == 0 &&
                 json_copy(o, "keyfile", out->keyfile, sizeof out->keyfile) == 0;
        }
    }
    cJSON_Delete(o);
    if (!ok) {
        return cli_fail(CLI_EXIT_FAIL,
                        "'%s' is damaged; run 'otter broker init' again in a new data folder", p);
    }
    return CLI_EXIT_OK;
}

long cli_broker_running(const cli_ctx_t *ctx)
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
    return (got == 1 && strcmp(comm, "mosquitto") == 0) ? pid : 0;
}
