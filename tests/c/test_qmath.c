/* test_qmath.c - octo_requantize_fast and octo_requantize_merged equal
 * octo_requantize (the TFLite-exact reference) on edge values and millions of
 * random inputs, for every shift they accept. */
#include <stdio.h>
#include <stdint.h>

#include "octo/octo_qmath.h"

static uint64_t s_state = 0x9E3779B97F4A7C15ull;
static uint32_t next_u32(void) { /* xorshift64* */
    s_state ^= s_state >> 12;
    s_state ^= s_state << 25;
    s_state ^= s_state >> 27;
    return (uint32_t)((s_state * 0x2545F4914F6CDD1Dull) >> 32);
}

int main(void) {
    static const int32_t k_edges[] = {0, 1, -1, 2, -2, 3, -3, 127, -128, 32767, -32768, 1 << 20, -(1 << 20),
                                      INT32_MAX, INT32_MIN, INT32_MAX - 1, INT32_MIN + 1, 1 << 30, -(1 << 30)};
    long checks = 0, failed = 0;
    for (int32_t shift = -31; shift <= 30; shift++) {
        for (int i = 0; i < 60000; i++) {
            int32_t x = (i < 19 * 19) ? k_edges[i % 19] : (int32_t)next_u32();
            /* multipliers the converter produces: 0 or in [2^30, 2^31) */
            int32_t m = (i < 19 * 19) ? (int32_t)((1u << 30) + (uint32_t)(i / 19) * 59652323u) : 0;
            if (i >= 19 * 19) {
                m = (i % 97 == 0) ? 0 : (int32_t)((1u << 30) | (next_u32() & 0x3FFFFFFFu));
            }
            if (shift > 0 && i % 2 == 0) {
                x = (int32_t)((int32_t)next_u32() >> (shift + 1)); /* also values that do not wrap */
            }
            int32_t want = octo_requantize(x, m, shift);
            int32_t got = octo_requantize_fast(x, m, shift);
            if (shift <= -1 && m != 0 && got == want) { /* the merged form takes m in [2^30, 2^31) */
                int32_t k[3];
                octo_merged_constants(shift, k);
                got = octo_requantize_merged(x, m, (uint32_t)k[0], k[1], k[2]);
            }
            checks++;
            if (want != got) {
                if (failed < 10) {
                    printf("mismatch: x=%ld m=%ld shift=%ld: reference %ld, fast %ld\n", (long)x, (long)m,
                           (long)shift, (long)want, (long)got);
                }
                failed++;
            }
        }
    }
    printf("%ld passed, %ld failed\n", checks - failed, failed);
    return failed != 0;
}
