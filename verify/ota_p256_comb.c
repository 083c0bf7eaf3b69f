/*
 * otter: P-256's comb table of G for mbed TLS 2 (see ota_p256_comb.h).
 * Written by verify/tools/ota_p256_comb_gen.c from mbed TLS 2.28.3's own table;
 * each coordinate as 32-bit words, least significant first.
 */
#include "ota_p256_comb.h"

#if OTA_P256_COMB

#if defined(MBEDTLS_HAVE_INT64)
#define OTA_P256_LIMBS 4
#define W2(lo, hi) (((mbedtls_mpi_uint)(hi) << 32) | (mbedtls_mpi_uint)(lo))
#else
#define OTA_P256_LIMBS 8
#define W2(lo, hi) (mbedtls_mpi_uint)(lo), (mbedtls_mpi_uint)(hi)
#endif
#define C(w0, w1, w2, w3, w4, w5, w6, w7)                                                          \
    {                                                                                              \
        W2(w0, w1), W2(w2, w3), W2(w4, w5), W2(w6, w7)                                             \
    }

/* [entry][x, y] */
static const mbedtls_mpi_uint ota_p256_comb_limbs[8][2][OTA_P256_LIMBS] = {
    {C(0xd898c296u, 0xf4a13945u, 0x2deb33a0u, 0x77037d81u, 0x63a440f2u, 0xf8bce6e5u, 0xe12c4247u,
       0x6b17d1f2u),
     C(0x37bf51f5u, 0xcbb64068u, 0x6b315eceu, 0x2bce3357u, 0x7c0f9e16u, 0x8ee7eb4au, 0xfe1a7f9bu,
       0x4fe342e2u)},
    {C(0x097992afu, 0x93391ce2u, 0x0d35f1fau, 0xe96c98fdu, 0x95e02789u, 0xb257c0deu, 0x89d6726fu,
       0x300a4bbcu),
     C(0xc08127a0u, 0xaa54a291u, 0xa9d806a5u, 0x5bb1eeadu, 0xff1e3c6fu, 0x7f1ddb25u, 0xd09b4644u,
       0x72aac7e0u)},
    {C(0x2a1d367fu, 0x13949c93u, 0x1a0a11b7u, 0xef7fbd2bu, 0xb91dfc60u, 0xddc6068bu, 0x8a9c72ffu,
       0xef951932u),
     C(0x7376d8a8u, 0x196035a7u, 0x95ca1740u, 0x23183b08u, 0x022c219cu, 0xc1ee9807u, 0x7dbb2c9bu,
       0x611e9fc3u)},
    {C(0xfc5cde01u, 0xe48ecaffu, 0x0d715f26u, 0x7ccd84e7u, 0xf43e4391u, 0xa2e8f483u, 0xb21141eau,
       0xeb5d7745u),
     C(0x731a3479u, 0xcac917e2u, 0x2844b645u, 0x85f22cfeu, 0x58006ceeu, 0x0990e6a1u, 0xdbecc17bu,
       0xeafd72ebu)},
    {C(0x677c8a3eu, 0x2df48c04u, 0x0203a56bu, 0x74e02f08u, 0xb8c7fedbu, 0x31855f7du, 0x72c9ddadu,
       0x4e769e76u),
     C(0xb824bbb0u, 0xa4c36165u, 0x3b9122a5u, 0xfb9ae16fu, 0x06947281u, 0x1ec00572u, 0xde830663u,
       0x42b99082u)},
    {C(0xc31a3573u, 0x7f991ed2u, 0xd54fb496u, 0x5b82dd5bu, 0x812ffcaeu, 0x595c5220u, 0x716b1287u,
       0x0c88bc4du),
     C(0x5f48aca8u, 0x3a57bf63u, 0xdf2564f3u, 0x7c8181f4u, 0x9c04e6aau, 0x18d1b5b3u, 0xf3901dc6u,
       0xdd5ddea3u)},
    {C(0xa2582e7fu, 0xd36b4789u, 0x4ec39c28u, 0x0d1a1014u, 0xedbad7a0u, 0x663c62c3u, 0x6f461db9u,
       0x4052bf4bu),
     C(0x188d25ebu, 0x235a27c3u, 0x99bfcc5bu, 0xe724f339u, 0x71d70cc8u, 0x862be6bdu, 0x90b0fc61u,
       0xfecf4d51u)},
    {C(0x0d1d78e5u, 0x9615b511u, 0x25c4744bu, 0x66b0de32u, 0x6aaf363au, 0x0a4a46fbu, 0x84f7a21cu,
       0xb48e26b4u),
     C(0x21a01b2du, 0x06ebb0f6u, 0x8b7b0f98u, 0xc004e404u, 0xfed6f668u, 0x64131bcdu, 0x4d4d3dabu,
       0xfac01540u)},
};

static const mbedtls_mpi_uint ota_p256_comb_one[1] = {1};

/* mbed TLS only reads the table: the casts leave it in ROM. */
#define COORD(limbs, count)                                                                        \
    {                                                                                              \
        .s = 1, .n = (count), .p = (mbedtls_mpi_uint *)(limbs)                                     \
    }
#define ENTRY(i)                                                                                   \
    {                                                                                              \
        .X = COORD(ota_p256_comb_limbs[i][0], OTA_P256_LIMBS),                                     \
        .Y = COORD(ota_p256_comb_limbs[i][1], OTA_P256_LIMBS), .Z = COORD(ota_p256_comb_one, 1)    \
    }

const mbedtls_ecp_point ota_p256_comb_g[OTA_P256_COMB_POINTS] = {
    ENTRY(0), ENTRY(1), ENTRY(2), ENTRY(3), ENTRY(4), ENTRY(5), ENTRY(6), ENTRY(7),
};

#endif /* OTA_P256_COMB */
