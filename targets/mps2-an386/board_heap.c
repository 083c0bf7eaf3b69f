/* otter on mps2-an386: mbed TLS's static pool (see board_heap.h). */
#include "board_heap.h"

#include "mbedtls/memory_buffer_alloc.h"
#include "semihost.h"

static unsigned char g_pool[BOARD_MBEDTLS_POOL];

void board_heap_init(void)
{
    mbedtls_memory_buffer_alloc_init(g_pool, sizeof g_pool);
}

void *board_no_calloc(size_t n, size_t size)
{
    (void)n;
    (void)size;
    return NULL;
}

void board_no_free(void *p)
{
    (void)p;
}

void board_mbedtls_exit(int status)
{
    semihost_exit(status);
}
