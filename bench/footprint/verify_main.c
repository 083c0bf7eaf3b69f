/*
 * otter: the verification firmware of the footprint benchmark (table 3,
 * bench/footprint.sh).
 *
 * Its entry point makes the calls a device makes of verify/: find the signer
 * a job names, take its key id, verify a signature over an image in flash.
 * Linked with --gc-sections, the firmware keeps exactly what a device links of
 * ota_verify.c, mbed TLS and the C library. It is linked to be measured, never
 * run: it has no vector table and no C start-up, its inputs are flash
 * addresses, and it keeps no static data of its own.
 */
#include <stdint.h>
#include <string.h>

#include "otter/ota_verify.h"

/* Where a device would keep the signer's PEM, a signature and the image. */
#define BENCH_SIGNER_ADDR 0x08004000u
#define BENCH_SIGNER_LEN 800u
#define BENCH_SIG_ADDR 0x08004400u
#define BENCH_SIG_LEN 72u
#define BENCH_IMAGE_ADDR 0x08010000u
#define BENCH_IMAGE_SIZE 0x00040000u

/** The firmware's entry point (the linker's -e). */
void ota_bench_verify_entry(void);

/* Reads the image from memory-mapped flash; ctx is its first byte. */
static int32_t read_image(void *ctx, uint32_t offset, uint8_t *buf, uint32_t len)
{
    memcpy(buf, (const uint8_t *)ctx + offset, len);
    return (int32_t)len;
}

void ota_bench_verify_entry(void)
{
    const ota_verify_signer_t signers[1] = {
        {"codesign.crt", (const uint8_t *)BENCH_SIGNER_ADDR, BENCH_SIGNER_LEN}};
    const ota_verify_signer_t *signer = ota_verify_find_signer(signers, 1u, "codesign.crt");
    uint8_t chunk[256];
    uint32_t key_id = 0u;
    volatile ota_err_t result = OTA_ERR_BAD_SIGNER_CERT;

    if (signer != NULL && ota_verify_key_id(signer->pem, signer->pem_len, &key_id) == OTA_OK) {
        result = ota_verify_sha256_ecdsa(
            signer->pem, signer->pem_len, (const uint8_t *)BENCH_SIG_ADDR, BENCH_SIG_LEN,
            read_image, (void *)BENCH_IMAGE_ADDR, BENCH_IMAGE_SIZE, chunk, sizeof chunk);
    }
    (void)result;
    for (;;) {
    }
}
