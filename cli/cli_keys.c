/* otter CLI: keygen, sign, and the signing/verification used by job creation. */
#include "cli_keys.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <mbedtls/sha256.h>
#include <mbedtls/x509_crt.h>

#include "cli_image.h"
#include "cli_x509.h"
#include "ota_publish_sign.h"
#include "otter/ota_verify.h"

static const char keygen_help[] =
    "usage: otter keygen --out DIR [--name codesign] [--cn NAME] [--type TYPE]\n"
    "\n"
    "Make a code-signing key and a self-signed certificate for it:\n"
    "  DIR/NAME.key  private key, PEM, mode 0600 (keep it secret)\n"
    "  DIR/NAME.crt  X.509 certificate, PEM, codeSigning, valid 10 years\n"
    "Existing files are never overwritten.\n"
    "\n"
    "  --out DIR   folder for the two files (created if missing)\n"
    "  --name N    base name of the files (default: codesign)\n"
    "  --cn NAME   certificate common name (default: otter code signing)\n"
    "  --type T    ecdsa-p256 (default): jobs signed sig-sha256-ecdsa;\n"
    "              rsa-2048 or rsa-3072: sig-sha256-rsa (PKCS#1 v1.5), for\n"
    "              devices built with OTA_SIG_RSA\n";

/* Makes a key of a --type; bits 0 is ECDSA P-256. */
static int make_key(mbedtls_pk_context *key, unsigned bits)
{
    if (bits == 0) {
        return cli_x509_make_key(key);
    }
    int rc = mbedtls_pk_setup(key, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA));
    return rc != 0 ? rc : mbedtls_rsa_gen_key(mbedtls_pk_rsa(*key), cli_rng, NULL, bits, 65537);
}

int cli_cmd_keygen(const cli_ctx_t *ctx, int argc, char **argv)
{
    (void)ctx;
    const char *out = NULL, *name = NULL, *cn = NULL, *type = NULL, *pos[1];
    size_t n_pos;
    int help;
    const cli_opt_t opts[] = {
        {"out", 1, &out}, {"name", 1, &name}, {"cn", 1, &cn}, {"type", 1, &type}};
    int rc = cli_parse(argc, argv, opts, 4, pos, 0, &n_pos, &help);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (help) {
        fputs(keygen_help, stdout);
        return CLI_EXIT_OK;
    }
    if (out == NULL) {
        return cli_fail(CLI_EXIT_USAGE, "keygen needs --out DIR; see 'otter keygen --help'");
    }
    unsigned bits = 0;
    if (type != NULL && strcmp(type, "rsa-2048") == 0) {
        bits = 2048;
    } else if (type != NULL && strcmp(type, "rsa-3072") == 0) {
        bits = 3072;
    } else if (type != NULL && strcmp(type, "ecdsa-p256") != 0) {
        return cli_fail(CLI_EXIT_USAGE,
                        "unknown key type '%s'; use ecdsa-p256, rsa-2048 or rsa-3072", type);
    }
    if (name == NULL) {
        name = "codesign";
    }
    if (cn == NULL) {
        cn = "otter code signing";
    }
    if (!cli_valid_name(name)) {
        return cli_fail(CLI_EXIT_USAGE,
                        "bad key name '%s'; use letters, digits, '-', '_' (at most 128)", name);
    }
    if (cn[0] == '\0' || strpbrk(cn, ",=+<>#;\\\"") != NULL || strlen(cn) > 64) {
        return cli_fail(CLI_EXIT_USAGE,
                        "bad common name '%s'; use 1-64 characters without , = + < > # ; \\ \"",
                        cn);
    }
    char key_path[CLI_PATH_MAX], crt_path[CLI_PATH_MAX];
    if (snprintf(key_path, sizeof key_path, "%s/%s.key", out, name) >= (int)sizeof key_path ||
        snprintf(crt_path, sizeof crt_path, "%s/%s.crt", out, name) >= (int)sizeof crt_path) {
        return cli_fail(CLI_EXIT_USAGE, "output path too long; use a shorter --out");
    }
    if (cli_exists(key_path) || cli_exists(crt_path)) {
        return cli_fail(CLI_EXIT_FAIL, "'%s' already exists; remove it or choose another --name",
                        cli_exists(key_path) ? key_path : crt_path);
    }
    if (cli_mkdirs(out) != 0) {
        return cli_fail(CLI_EXIT_FAIL, "cannot create folder '%s' (%s); check --out", out,
                        strerror(errno));
    }

    char key_pem[4096], crt_pem[4096];
    char subject[128];
    snprintf(subject, sizeof subject, "CN=%s,O=otter", cn);
    mbedtls_pk_context key;
    mbedtls_pk_init(&key);
    rc = make_key(&key, bits);
    if (rc == 0) {
        rc = mbedtls_pk_write_key_pem(&key, (unsigned char *)key_pem, sizeof key_pem);
    }
    if (rc == 0) {
        cli_x509_cert_t c = {.subject = subject,
                             .subject_key = &key,
                             .issuer = subject,
                             .issuer_key = &key,
                             .years = 10,
                             .kind = CLI_X509_CODE_SIGNING};
        rc = cli_x509_make_cert(&c, crt_pem, sizeof crt_pem);
    }
    mbedtls_pk_free(&key);
    if (rc != 0) {
        return cli_fail(CLI_EXIT_FAIL, "key generation failed (mbed TLS -0x%04x); try again",
                        (unsigned)-rc);
    }
    if (cli_write_new_file(key_path, key_pem, strlen(key_pem), 0600) != 0) {
        return cli_fail(CLI_EXIT_FAIL, "cannot write '%s' (%s); check the folder", key_path,
                        strerror(errno));
    }
    if (cli_write_new_file(crt_path, crt_pem, strlen(crt_pem), 0644) != 0) {
        int e = errno;
        unlink(key_path);
        return cli_fail(CLI_EXIT_FAIL, "cannot write '%s' (%s); check the folder", crt_path,
                        strerror(e));
    }
    memset(key_pem, 0, sizeof key_pem);
    printf("key:         %s\ncertificate: %s\n", key_path, crt_path);
    return CLI_EXIT_OK;
}

int cli_sign_data(const char *key_path, const uint8_t *data, size_t len, uint8_t *sig,
                  size_t *sig_len, char **pub_pem)
{
    char err[600];
    if (ota_publish_sign(key_path, "--key", data, len, sig, sig_len, pub_pem, err, sizeof err) !=
        0) {
        return cli_fail(CLI_EXIT_FAIL, "%s", err);
    }
    return CLI_EXIT_OK;
}

int cli_verify_data(const char *signer_pem, const uint8_t *data, size_t len, const uint8_t *sig,
                    size_t sig_len)
{
    return ota_publish_verify(signer_pem, data, len, sig, sig_len);
}

static const char sign_help[] =
    "usage: otter sign --key KEY.pem FILE [--out SIG.der]\n"
    "\n"
    "Sign the SHA-256 of the whole FILE the way the devices verify it, by the\n"
    "key's type: a P-256 key signs sig-sha256-ecdsa (DER SEQUENCE{r,s}), an\n"
    "RSA-2048/3072 key sig-sha256-rsa (PKCS#1 v1.5, as long as the modulus).\n"
    "\n"
    "  --key KEY.pem  private key (from 'otter keygen')\n"
    "  --out SIG.der  write the signature there (must not exist);\n"
    "                 without it the signature is printed in base64\n";

int cli_sign_args(int argc, char **argv, const char *cmd, const char *usage, const char **key,
                  const char **out, const char **file, int *help)
{
    const char *pos[1];
    size_t n_pos;
    const cli_opt_t opts[] = {{"key", 1, key}, {"out", 1, out}};
    *key = NULL;
    *out = NULL;
    int rc = cli_parse(argc, argv, opts, 2, pos, 1, &n_pos, help);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (*help) {
        fputs(usage, stdout);
        return CLI_EXIT_OK;
    }
    if (*key == NULL) {
        return cli_fail(CLI_EXIT_USAGE, "%s needs --key KEY.pem; see 'otter %s --help'", cmd, cmd);
    }
    if (n_pos != 1) {
        return cli_fail(CLI_EXIT_USAGE, "%s needs the file to sign; see 'otter %s --help'", cmd,
                        cmd);
    }
    if (*out != NULL && cli_exists(*out)) {
        return cli_fail(CLI_EXIT_FAIL, "'%s' already exists; remove it or choose another --out",
                        *out);
    }
    *file = pos[0];
    return CLI_EXIT_OK;
}

int cli_cmd_sign(const cli_ctx_t *ctx, int argc, char **argv)
{
    (void)ctx;
    const char *key, *out, *file = NULL;
    int help = 0;
    int rc = cli_sign_args(argc, argv, "sign", sign_help, &key, &out, &file, &help);
    if (rc != CLI_EXIT_OK || help) {
        return rc;
    }
    uint8_t *data = NULL;
    size_t len = 0;
    if (cli_read_file(file, &data, &len) != 0) {
        return cli_fail(CLI_EXIT_FAIL, "cannot read '%s' (%s); check the file name", file,
                        strerror(errno));
    }
    uint8_t sig[CLI_SIG_MAX];
    size_t sig_len = 0;
    rc = cli_sign_data(key, data, len, sig, &sig_len, NULL);
    free(data);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    return cli_put_signature(out, sig, sig_len);
}
