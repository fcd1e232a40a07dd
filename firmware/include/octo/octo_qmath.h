/*
 * octo_qmath.h - fixed-point requantization primitives, bit-exact with
 * TFLite/TFLM's reference (gemmlowp-style double rounding).
 */
#ifndef OCTO_QMATH_H
#define OCTO_QMATH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* round(a * b / 2^31) as TFLite's SaturatingRoundingDoublingHighMul.
 * TFLite adds a sign-dependent nudge and divides truncating toward zero; for
 * ab < 0 that is ceil((ab + 1 - 2^30) / 2^31) = floor((ab + 2^30) / 2^31), the
 * same expression as for ab >= 0, so one multiply-add and a shift suffice
 * (arithmetic right shift of a negative int64: GCC and Clang define it). */
static inline int32_t octo_srdhm(int32_t a, int32_t b) {
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    int64_t ab = (int64_t)a * (int64_t)b;
    return (int32_t)((ab + (1LL << 30)) >> 31);
}

/* Arithmetic right shift rounding half away from zero (exponent 0..31). */
static inline int32_t octo_rdbpot(int32_t x, int exponent) {
    int32_t mask = (int32_t)((1LL << exponent) - 1);
    int32_t remainder = x & mask;
    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* x * multiplier * 2^shift, shift > 0 = left (TFLite MultiplyByQuantizedMultiplier). */
static inline int32_t octo_requantize(int32_t x, int32_t multiplier, int32_t shift) {
    int left = shift > 0 ? shift : 0;
    int right = shift > 0 ? 0 : -shift;
    return octo_rdbpot(octo_srdhm((int32_t)((uint32_t)x << left), multiplier), right);
}

static inline int32_t octo_clamp(int32_t v, int32_t lo, int32_t hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

#ifdef __cplusplus
}
#endif

#endif /* OCTO_QMATH_H */
