/*
 * otter CLI: code-signing keys and signatures (sig-sha256-ecdsa, sig-sha256-rsa).
 *
 * ECDSA P-256 over the SHA-256 of a whole file, DER SEQUENCE{r,s}, or RSA-2048/
 * 3072 PKCS#1 v1.5 over it: what the devices verify with ota_verify and what
 * AWS code signing produces.
 */
#ifndef CLI_KEYS_H
#define CLI_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "cli_common.h"
#include "ota_publish_sign.h"

/** Largest signature (RSA-3072). */
#define CLI_SIG_MAX OTA_PUBLISH_SIG_MAX

/**
 * `otter keygen --out DIR [--name codesign] [--cn NAME] [--type T]`: writes
 * DIR/NAME.key (P-256, or RSA-2048/3072 with --type, private key, PEM, mode
 * 0600) and DIR/NAME.crt (self-signed X.509, codeSigning extended key usage,
 * 10 years). Refuses to overwrite.
 * @return an exit code (CLI_EXIT_*).
 */
int cli_cmd_keygen(const cli_ctx_t *ctx, int argc, char **argv);

/**
 * `otter sign --key KEY.pem FILE [--out SIG.der]`: signs FILE; prints the
 * signature in base64 when there is no --out.
 * @return an exit code (CLI_EXIT_*).
 */
int cli_cmd_sign(const cli_ctx_t *ctx, int argc, char **argv);

/**
 * Sign data with a P-256 or RSA-2048/3072 private key file.
 * Prints the error line itself on failure.
 * @param key_path PEM private key (SEC1 or PKCS#8).
 * @param sig      receives the signature (CLI_SIG_MAX bytes).
 * @param sig_len  receives its length.
 * @param pub_pem  when not NULL, receives the key's public key as PEM
 *                 (heap, caller frees) for verification.
 * @return CLI_EXIT_OK or CLI_EXIT_FAIL.
 */
int cli_sign_data(const char *key_path, const uint8_t *data, size_t len, uint8_t *sig,
                  size_t *sig_len, char **pub_pem);

/**
 * The arguments of a signing command ('otter sign', 'otter image sign'):
 * --key KEY.pem, optional --out SIG.der (which must not exist) and one file.
 * Prints help (and returns CLI_EXIT_OK with *help set) or the error line.
 * @param cmd   the command's words for error lines, e.g. "image sign".
 * @param usage the command's help text.
 * @return CLI_EXIT_OK, CLI_EXIT_USAGE or CLI_EXIT_FAIL.
 */
int cli_sign_args(int argc, char **argv, const char *cmd, const char *usage, const char **key,
                  const char **out, const char **file, int *help);

/**
 * Verify a signature over data with otter's device verifier, by the method
 * of the signer's key.
 * @param signer_pem certificate or public key PEM (NUL-terminated).
 * @return 0 when it verifies; otherwise the negative ota_err_t.
 */
int cli_verify_data(const char *signer_pem, const uint8_t *data, size_t len, const uint8_t *sig,
                    size_t sig_len);

#endif /* CLI_KEYS_H */
