/*
 * otter: writes verify/ota_p256_comb.c, P-256's comb table of G as the
 * linked mbed TLS computes it (see verify/ota_p256_comb.h).
 *
 * Usage: ota_p256_comb_gen > verify/ota_p256_comb.c && clang-format -i verify/ota_p256_comb.c
 *
 * mbed TLS keeps the table of G in the group after a multiplication of G, so
 * this multiplies G once and prints the group's table, each coordinate as
 * eight 32-bit words, least significant first, so that the file builds for
 * 32-bit (Cortex-M) and 64-bit limbs alike.
 */
#include <stdio.h>

#include "mbedtls/ecp.h"

#include "ota_p256_comb.h"

#if !OTA_P256_COMB
#error "this mbed TLS does not use the table's layout (see ota_p256_comb.h)"
#endif

/* Print x as 32-bit words, least significant first; -1 if it needs more than 256 bits. */
static int print_words(const mbedtls_mpi *x)
{
    unsigned char be[32];
    if (mbedtls_mpi_write_binary(x, be, sizeof be) != 0) {
        return -1;
    }
    printf("(");
    for (int w = 0; w < 8; w++) {
        const unsigned char *b = be + 28 - 4 * w;
        unsigned long v = ((unsigned long)b[0] << 24) | ((unsigned long)b[1] << 16) |
                          ((unsigned long)b[2] << 8) | (unsigned long)b[3];
        printf("0x%08lxu%s", v, w < 7 ? ", " : ")");
    }
    return 0;
}

/** Print the C file; 0 on success, 1 on any failure. */
int main(void)
{
    mbedtls_ecp_group grp;
    mbedtls_ecp_point r;
    mbedtls_mpi m;
    int rc = 1;

    mbedtls_ecp_group_init(&grp);
    mbedtls_ecp_point_init(&r);
    mbedtls_mpi_init(&m);
    if (mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1) != 0 ||
        mbedtls_mpi_lset(&m, 2) != 0 || mbedtls_ecp_mul(&grp, &r, &m, &grp.G, NULL, NULL) != 0 ||
        grp.T == NULL || grp.T_size != OTA_P256_COMB_POINTS) {
        fprintf(stderr, "ota_p256_comb_gen: mbed TLS kept no table of %u points\n",
                (unsigned)OTA_P256_COMB_POINTS);
        goto out;
    }
    printf("/*\n"
           " * otter: P-256's comb table of G for mbed TLS 2 (see ota_p256_comb.h).\n"
           " * Written by verify/tools/ota_p256_comb_gen.c from mbed TLS %s's own table;\n"
           " * each coordinate as 32-bit words, least significant first.\n"
           " */\n"
           "#include \"ota_p256_comb.h\"\n\n"
           "#if OTA_P256_COMB\n\n"
           "#if defined(MBEDTLS_HAVE_INT64)\n"
           "#define OTA_P256_LIMBS 4\n"
           "#define W2(lo, hi) (((mbedtls_mpi_uint)(hi) << 32) | (mbedtls_mpi_uint)(lo))\n"
           "#else\n"
           "#define OTA_P256_LIMBS 8\n"
           "#define W2(lo, hi) (mbedtls_mpi_uint)(lo), (mbedtls_mpi_uint)(hi)\n"
           "#endif\n"
           "#define C(w0, w1, w2, w3, w4, w5, w6, w7) {W2(w0, w1), W2(w2, w3), W2(w4, w5), "
           "W2(w6, w7)}\n\n"
           "/* [entry][x, y] */\n"
           "static const mbedtls_mpi_uint ota_p256_comb_limbs[%u][2][OTA_P256_LIMBS] = {\n",
           MBEDTLS_VERSION_STRING, (unsigned)OTA_P256_COMB_POINTS);
    for (size_t i = 0; i < grp.T_size; i++) {
        /* mbed TLS drops Z (1) of the entries it normalised. */
        if (grp.T[i].Z.p != NULL && mbedtls_mpi_cmp_int(&grp.T[i].Z, 1) != 0) {
            fprintf(stderr, "ota_p256_comb_gen: entry %u is not affine\n", (unsigned)i);
            goto out;
        }
        printf("    {C");
        if (print_words(&grp.T[i].X) != 0) {
            goto out;
        }
        printf(",\n     C");
        if (print_words(&grp.T[i].Y) != 0) {
            goto out;
        }
        printf("},\n");
    }
    printf("};\n\n"
           "static const mbedtls_mpi_uint ota_p256_comb_one[1] = {1};\n\n"
           "/* mbed TLS only reads the table: the casts leave it in ROM. */\n"
           "#define COORD(limbs, count) {.s = 1, .n = (count), .p = (mbedtls_mpi_uint *)(limbs)}\n"
           "#define ENTRY(i)                                                    \\\n"
           "    {.X = COORD(ota_p256_comb_limbs[i][0], OTA_P256_LIMBS),          \\\n"
           "     .Y = COORD(ota_p256_comb_limbs[i][1], OTA_P256_LIMBS),          \\\n"
           "     .Z = COORD(ota_p256_comb_one, 1)}\n\n"
           "const mbedtls_ecp_point ota_p256_comb_g[OTA_P256_COMB_POINTS] = {\n"
           "    ENTRY(0), ENTRY(1), ENTRY(2), ENTRY(3), ENTRY(4), ENTRY(5), ENTRY(6), ENTRY(7),\n"
           "};\n\n"
           "#endif /* OTA_P256_COMB */\n");
    rc = 0;
out:
    mbedtls_mpi_free(&m);
    mbedtls_ecp_point_free(&r);
    mbedtls_ecp_group_free(&grp);
    return rc;
}
