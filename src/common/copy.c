/* copy.c -- copying large values into the shared store.
 *
 * glibc's memcpy uses `rep movsb` for large sizes, which on this class of
 * machine runs at a third of the bandwidth whenever the destination sits a
 * little ahead of the source within a 4 KiB page (a value's buffers rarely
 * line up with the source array).  Non-temporal AVX2 stores do not care
 * about that, and skip reading the destination lines first, which suits
 * data written once for other processes to read. */
#include "mt.h"

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define NT_MIN (256 * 1024)

__attribute__((target("avx2"))) static void nt_copy(uint8_t *d, const uint8_t *s, size_t n)
{
    while (((uintptr_t)d & 31) && n) {
        *d++ = *s++;
        n--;
    }
    size_t blocks = n / 128;
    for (size_t i = 0; i < blocks; i++) {
        __m256i a = _mm256_loadu_si256((const __m256i *)s);
        __m256i b = _mm256_loadu_si256((const __m256i *)(s + 32));
        __m256i c = _mm256_loadu_si256((const __m256i *)(s + 64));
        __m256i e = _mm256_loadu_si256((const __m256i *)(s + 96));
        _mm256_stream_si256((__m256i *)d, a);
        _mm256_stream_si256((__m256i *)(d + 32), b);
        _mm256_stream_si256((__m256i *)(d + 64), c);
        _mm256_stream_si256((__m256i *)(d + 96), e);
        s += 128;
        d += 128;
    }
    _mm_sfence();
    memcpy(d, s, n % 128);
}

void mt_copy(void *dst, const void *src, size_t n)
{
    static int avx2 = -1;
    if (n < NT_MIN) {
        memcpy(dst, src, n);
        return;
    }
    if (avx2 < 0) avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
    if (avx2)
        nt_copy(dst, src, n);
    else
        memcpy(dst, src, n);
}
