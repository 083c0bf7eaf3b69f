/*
 * otter: code-signature verification (SHA-256 with ECDSA P-256, DER, or with
 * RSA-2048 .. RSA-3072 PKCS#1 v1.5 where RSA is built in).
 *
 * Our code allocates nothing: the PEM copy and the hash live on the stack and
 * the file is read through the caller's chunk buffer. mbed TLS's certificate
 * and key parsers allocate through its platform layer; every mbed TLS object
 * is initialised on entry and freed on every exit path.
 */
#include "otter/ota_verify.h"

#include <string.h>

#include "mbedtls/ecdsa.h"
#include "mbedtls/ecp.h"
#include "mbedtls/md.h"
#include "mbedtls/pk.h"
#include "mbedtls/sha256.h"
#include "mbedtls/version.h"
#include "mbedtls/x509_crt.h"

#include "ota_p256_comb.h"
#include "ota_verify_key.h"

/* RSA code: in device builds that accept RSA signatures, and in the host
 * tools' build (OTA_VERIFY_HOST_TOOLS, set by verify/CMakeLists.txt), which
 * sign and check both methods. ECDSA-only device builds carry none of it. */
#if OTA_SIG_RSA || defined(OTA_VERIFY_HOST_TOOLS)
#define OTA_VERIFY_RSA 1
#if !defined(MBEDTLS_RSA_C) || !defined(MBEDTLS_PKCS1_V15)
#error "RSA signatures need MBEDTLS_RSA_C and MBEDTLS_PKCS1_V15 in the mbed TLS configuration"
#endif
#include "mbedtls/rsa.h"
#else
#define OTA_VERIFY_RSA 0
#endif

/** Smallest and largest RSA key accepted, in bits (AWS signs with 2048 and 3072). */
#define OTA_RSA_MIN_BITS 2048u
#define OTA_RSA_MAX_BITS 3072u

/* mbed TLS 3 renamed the SHA-256 "_ret" functions to the plain names. */
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#define OTA_SHA256_STARTS mbedtls_sha256_starts
#define OTA_SHA256_UPDATE mbedtls_sha256_update
#define OTA_SHA256_FINISH mbedtls_sha256_finish
#define OTA_SHA256 mbedtls_sha256
#else
#define OTA_SHA256_STARTS mbedtls_sha256_starts_ret
#define OTA_SHA256_UPDATE mbedtls_sha256_update_ret
#define OTA_SHA256_FINISH mbedtls_sha256_finish_ret
#define OTA_SHA256 mbedtls_sha256_ret
#endif

/** SHA-256 digest size in bytes. */
#define OTA_SHA256_LEN 32u

/** Largest request made of the reader, so that its int32_t return can say it. */
#define OTA_VERIFY_MAX_READ 0x7fffffffu

void ota_verify_key_init(ota_verify_key_t *k)
{
    mbedtls_x509_crt_init(&k->crt);
    mbedtls_pk_init(&k->pk);
    k->key = NULL;
}

void ota_verify_key_free(ota_verify_key_t *k)
{
    mbedtls_x509_crt_free(&k->crt);
    mbedtls_pk_free(&k->pk);
    k->key = NULL;
}

/* True when pk holds an EC key on P-256 usable for ECDSA. */
static int key_is_p256(const mbedtls_pk_context *pk)
{
    const mbedtls_ecp_keypair *ec;

    if (!mbedtls_pk_can_do(pk, MBEDTLS_PK_ECDSA)) {
        return 0;
    }
    ec = mbedtls_pk_ec(*pk);
    return ec != NULL && ec->grp.id == MBEDTLS_ECP_DP_SECP256R1;
}

/* The method pk verifies; 0 when it verifies none (another curve or type, an
 * RSA key out of 2048 .. 3072 bits, RSA not built in). */
static int key_method(const mbedtls_pk_context *pk, ota_sig_method_t *method)
{
    if (key_is_p256(pk)) {
        *method = OTA_SIG_SHA256_ECDSA;
        return 1;
    }
#if OTA_VERIFY_RSA
    if (mbedtls_pk_get_type(pk) == MBEDTLS_PK_RSA) {
        size_t bits = mbedtls_pk_get_bitlen(pk);
        /* PKCS#1 v1.5 is the padding a parsed key starts with. */
        if (bits >= OTA_RSA_MIN_BITS && bits <= OTA_RSA_MAX_BITS) {
            *method = OTA_SIG_SHA256_RSA;
            return 1;
        }
    }
#endif
    return 0;
}

ota_err_t ota_verify_key_parse(ota_verify_key_t *k, const uint8_t *pem, size_t pem_len)
{
    unsigned char text[OTA_VERIFY_MAX_PEM_LEN];
    size_t text_len = pem_len;

    /* A caller may count the terminator already (sizeof a string literal). */
    if (text_len > 0u && pem[text_len - 1u] == 0u) {
        text_len--;
    }
    if (text_len == 0u || text_len > sizeof(text) - 1u) {
        return OTA_ERR_BAD_SIGNER_CERT;
    }
    /* mbed TLS parses PEM only from a buffer whose last byte is the NUL. */
    memcpy(text, pem, text_len);
    text[text_len] = 0u;

    if (mbedtls_x509_crt_parse(&k->crt, text, text_len + 1u) == 0) {
        k->key = &k->crt.pk;
    } else if (mbedtls_pk_parse_public_key(&k->pk, text, text_len + 1u) == 0) {
        k->key = &k->pk;
    } else {
        return OTA_ERR_BAD_SIGNER_CERT;
    }
    return key_method(k->key, &k->method) ? OTA_OK : OTA_ERR_BAD_SIGNER_CERT;
}

/* Parse the signer into k (initialised) and check it verifies method. */
static ota_err_t key_parse_for(ota_verify_key_t *k, const uint8_t *pem, size_t pem_len,
                               ota_sig_method_t method)
{
    ota_err_t err = ota_verify_key_parse(k, pem, pem_len);
    if (err == OTA_OK && k->method != method) {
        err = OTA_ERR_BAD_SIGNER_CERT; /* an RSA key for ECDSA, or the other way round */
    }
    return err;
}

/* A method this code knows. */
static int method_known(ota_sig_method_t method)
{
    return method == OTA_SIG_SHA256_ECDSA || method == OTA_SIG_SHA256_RSA;
}

/*
 * Read file_size bytes through read in chunks of chunk and hash them into
 * digest. Returns OTA_OK, the reader's negative error, or OTA_ERR_IO for a
 * non-negative count other than the one requested.
 */
static ota_err_t hash_file(ota_verify_read_fn read, void *read_ctx, uint32_t file_size,
                           uint8_t *chunk, uint32_t chunk_len, uint8_t digest[OTA_SHA256_LEN])
{
    mbedtls_sha256_context sha;
    ota_err_t err = OTA_OK;
    uint32_t step = chunk_len < OTA_VERIFY_MAX_READ ? chunk_len : OTA_VERIFY_MAX_READ;
    uint32_t offset = 0u;

    mbedtls_sha256_init(&sha);
    if (OTA_SHA256_STARTS(&sha, 0) != 0) {
        err = OTA_ERR_SIGNATURE_CHECK_FAILED;
    }
    while (err == OTA_OK && offset < file_size) {
        uint32_t want = file_size - offset < step ? file_size - offset : step;
        int32_t got = read(read_ctx, offset, chunk, want);

        if (got < 0) {
            err = (ota_err_t)got;
        } else if ((uint32_t)got != want) {
            err = OTA_ERR_IO;
        } else if (OTA_SHA256_UPDATE(&sha, chunk, want) != 0) {
            err = OTA_ERR_SIGNATURE_CHECK_FAILED;
        } else {
            offset += want;
        }
    }
    if (err == OTA_OK && OTA_SHA256_FINISH(&sha, digest) != 0) {
        err = OTA_ERR_SIGNATURE_CHECK_FAILED;
    }
    mbedtls_sha256_free(&sha);
    return err;
}

/* The signer, the signature and a digest: the checks after hashing. */
static ota_err_t check_digest(ota_verify_key_t *k, const uint8_t *sig, size_t sig_len,
                              const uint8_t digest[OTA_SHA256_LEN])
{
    int ret;
#if OTA_P256_COMB
    mbedtls_ecp_keypair *ec = k->method == OTA_SIG_SHA256_ECDSA ? mbedtls_pk_ec(*k->key) : NULL;
    if (ec != NULL && ec->grp.id == MBEDTLS_ECP_DP_SECP256R1 && ec->grp.T == NULL) {
        /* What mbedtls_pk_verify() does for an EC key (DER signature, nothing
         * after it), with G's multiples from ROM (ota_p256_comb.h) instead of
         * computed again; the group gets its own T back before it is freed. */
        ec->grp.T = (mbedtls_ecp_point *)ota_p256_comb_g;
        ec->grp.T_size = 0;
        ret = mbedtls_ecdsa_read_signature(ec, digest, OTA_SHA256_LEN, sig, sig_len);
        ec->grp.T = NULL;
        ec->grp.T_size = 0;
        return ret == 0 ? OTA_OK : OTA_ERR_SIGNATURE_CHECK_FAILED;
    }
#endif
    ret = mbedtls_pk_verify(k->key, MBEDTLS_MD_SHA256, digest, OTA_SHA256_LEN, sig, sig_len);
    return ret == 0 ? OTA_OK : OTA_ERR_SIGNATURE_CHECK_FAILED;
}

ota_err_t ota_verify_signer_method(const uint8_t *signer_pem, size_t signer_len,
                                   ota_sig_method_t *method)
{
    ota_verify_key_t k;
    ota_err_t err;

    if (signer_pem == NULL || method == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    ota_verify_key_init(&k);
    err = ota_verify_key_parse(&k, signer_pem, signer_len);
    if (err == OTA_OK) {
        *method = k.method;
    }
    ota_verify_key_free(&k);
    return err;
}

ota_err_t ota_verify_sha256_ecdsa(const uint8_t *signer_pem, size_t signer_len, const uint8_t *sig,
                                  size_t sig_len, ota_verify_read_fn read, void *read_ctx,
                                  uint32_t file_size, uint8_t *chunk, uint32_t chunk_len)
{
    return ota_verify_sha256(signer_pem, signer_len, OTA_SIG_SHA256_ECDSA, sig, sig_len, read,
                             read_ctx, file_size, chunk, chunk_len);
}

ota_err_t ota_verify_sha256(const uint8_t *signer_pem, size_t signer_len, ota_sig_method_t method,
                            const uint8_t *sig, size_t sig_len, ota_verify_read_fn read,
                            void *read_ctx, uint32_t file_size, uint8_t *chunk, uint32_t chunk_len)
{
    ota_verify_key_t k;
    ota_err_t err;

    if (signer_pem == NULL || (sig == NULL && sig_len != 0u) || read == NULL || chunk == NULL ||
        chunk_len == 0u || !method_known(method)) {
        return OTA_ERR_INVALID_ARG;
    }

    ota_verify_key_init(&k);
    err = key_parse_for(&k, signer_pem, signer_len, method);
    if (err == OTA_OK) {
        err = ota_verify_key_check_file(&k, sig, sig_len, read, read_ctx, file_size, chunk,
                                        chunk_len);
    }
    ota_verify_key_free(&k);
    return err;
}

ota_err_t ota_verify_key_check_file(ota_verify_key_t *k, const uint8_t *sig, size_t sig_len,
                                    ota_verify_read_fn read, void *read_ctx, uint32_t file_size,
                                    uint8_t *chunk, uint32_t chunk_len)
{
    uint8_t digest[OTA_SHA256_LEN];
    ota_err_t err = sig_len == 0u ? OTA_ERR_SIGNATURE_CHECK_FAILED : OTA_OK;

    if (err == OTA_OK) {
        err = hash_file(read, read_ctx, file_size, chunk, chunk_len, digest);
    }
    if (err == OTA_OK) {
        err = check_digest(k, sig, sig_len, digest);
    }
    return err;
}

/* The SHA-256 context inside ota_verify_hash_t's storage. */
typedef char
    ota_verify_hash_context_fits[sizeof(mbedtls_sha256_context) <= OTA_VERIFY_HASH_CONTEXT_SIZE
                                     ? 1
                                     : -1]; /* else raise OTA_VERIFY_HASH_CONTEXT_SIZE */
#define OTA_HASH_SHA(hash) ((mbedtls_sha256_context *)(void *)(hash)->sha.bytes)

void ota_verify_hash_start(ota_verify_hash_t *hash)
{
    if (hash == NULL) {
        return;
    }
    mbedtls_sha256_init(OTA_HASH_SHA(hash));
    hash->length = 0;
    hash->failed = OTA_SHA256_STARTS(OTA_HASH_SHA(hash), 0) != 0;
}

void ota_verify_hash_update(ota_verify_hash_t *hash, const uint8_t *data, uint32_t len)
{
    if (hash == NULL || len == 0u) {
        return;
    }
    if (data == NULL || OTA_SHA256_UPDATE(OTA_HASH_SHA(hash), data, len) != 0) {
        hash->failed = 1;
    }
    hash->length += len;
}

void ota_verify_hash_discard(ota_verify_hash_t *hash)
{
    if (hash != NULL) {
        mbedtls_sha256_free(OTA_HASH_SHA(hash));
        hash->length = 0;
        hash->failed = 1;
    }
}

/* Finish hash into digest and free it; a failure sets hash->failed. */
static void hash_finish(ota_verify_hash_t *hash, uint8_t digest[OTA_SHA256_LEN])
{
    if (OTA_SHA256_FINISH(OTA_HASH_SHA(hash), digest) != 0) {
        hash->failed = 1;
    }
    mbedtls_sha256_free(OTA_HASH_SHA(hash));
}

/* The signature over a finished hash's digest. */
static ota_err_t check_finished(ota_verify_key_t *k, const uint8_t *sig, size_t sig_len,
                                const ota_verify_hash_t *hash, const uint8_t digest[OTA_SHA256_LEN])
{
    if (sig_len == 0u || hash->failed) {
        return OTA_ERR_SIGNATURE_CHECK_FAILED;
    }
    return check_digest(k, sig, sig_len, digest);
}

ota_err_t ota_verify_hash_ecdsa(const uint8_t *signer_pem, size_t signer_len, const uint8_t *sig,
                                size_t sig_len, ota_verify_hash_t *hash)
{
    return ota_verify_hash_check(signer_pem, signer_len, OTA_SIG_SHA256_ECDSA, sig, sig_len, hash);
}

ota_err_t ota_verify_hash_check(const uint8_t *signer_pem, size_t signer_len,
                                ota_sig_method_t method, const uint8_t *sig, size_t sig_len,
                                ota_verify_hash_t *hash)
{
    ota_verify_key_t k;
    uint8_t digest[OTA_SHA256_LEN];
    ota_err_t err;

    if (hash == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    hash_finish(hash, digest);
    if (signer_pem == NULL || (sig == NULL && sig_len != 0u) || !method_known(method)) {
        return OTA_ERR_INVALID_ARG;
    }
    ota_verify_key_init(&k);
    err = key_parse_for(&k, signer_pem, signer_len, method);
    if (err == OTA_OK) {
        err = check_finished(&k, sig, sig_len, hash, digest);
    }
    ota_verify_key_free(&k);
    return err;
}

ota_err_t ota_verify_key_check_hash(ota_verify_key_t *k, const uint8_t *sig, size_t sig_len,
                                    ota_verify_hash_t *hash)
{
    uint8_t digest[OTA_SHA256_LEN];

    hash_finish(hash, digest);
    return check_finished(k, sig, sig_len, hash, digest);
}

/* The bytes a key id hashes: the P-256 point (uncompressed) or the RSA modulus. */
static ota_err_t key_id_bytes(const ota_verify_key_t *k, unsigned char *out, size_t cap,
                              size_t *len)
{
#if OTA_VERIFY_RSA
    if (k->method == OTA_SIG_SHA256_RSA) {
        const mbedtls_rsa_context *rsa = mbedtls_pk_rsa(*k->key);
        *len = mbedtls_rsa_get_len(rsa);
        if (*len > cap ||
            mbedtls_rsa_export_raw(rsa, out, *len, NULL, 0u, NULL, 0u, NULL, 0u, NULL, 0u) != 0) {
            return OTA_ERR_BAD_SIGNER_CERT;
        }
        return OTA_OK;
    }
#endif
    const mbedtls_ecp_keypair *ec = mbedtls_pk_ec(*k->key);
    if (mbedtls_ecp_point_write_binary(&ec->grp, &ec->Q, MBEDTLS_ECP_PF_UNCOMPRESSED, len, out,
                                       cap) != 0 ||
        *len != 65u) {
        return OTA_ERR_BAD_SIGNER_CERT;
    }
    return OTA_OK;
}

ota_err_t ota_verify_key_id_of(const ota_verify_key_t *k, uint32_t *id)
{
    unsigned char bytes[OTA_VERIFY_RSA ? OTA_RSA_MAX_BITS / 8u : 65u];
    unsigned char digest[32];
    size_t len = 0;
    ota_err_t err = key_id_bytes(k, bytes, sizeof bytes, &len);

    if (err == OTA_OK && OTA_SHA256(bytes, len, digest, 0) != 0) {
        err = OTA_ERR_BAD_SIGNER_CERT;
    }
    if (err == OTA_OK) {
        *id = ((uint32_t)digest[0] << 24) | ((uint32_t)digest[1] << 16) |
              ((uint32_t)digest[2] << 8) | (uint32_t)digest[3];
    }
    return err;
}

ota_err_t ota_verify_key_id(const uint8_t *signer_pem, size_t signer_len, uint32_t *id)
{
    ota_verify_key_t k;

    if (signer_pem == NULL || id == NULL) {
        return OTA_ERR_INVALID_ARG;
    }
    ota_verify_key_init(&k);
    ota_err_t err = ota_verify_key_parse(&k, signer_pem, signer_len);
    if (err == OTA_OK) {
        err = ota_verify_key_id_of(&k, id);
    }
    ota_verify_key_free(&k);
    return err;
}

const ota_verify_signer_t *ota_verify_find_signer(const ota_verify_signer_t *signers, size_t count,
                                                  const char *name)
{
    size_t i;

    if (signers == NULL || count == 0u) {
        return NULL;
    }
    if (name == NULL) {
        return &signers[0];
    }
    for (i = 0u; i < count; i++) {
        if (signers[i].name != NULL && strcmp(signers[i].name, name) == 0) {
            return &signers[i];
        }
    }
    return NULL;
}
