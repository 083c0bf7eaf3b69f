/* otter on mps2-an386: no C library heap in the device images. */
#include <stddef.h>

void *_sbrk(ptrdiff_t incr);

/* newlib-nano's printf family links malloc (for its asprintf path), and
 * malloc links _sbrk; the board has no heap, so every request is refused. */
void *_sbrk(ptrdiff_t incr)
{
    (void)incr;
    return (void *)-1;
}
