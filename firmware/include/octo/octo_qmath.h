/*
 * octo_qmath.h - fixed-point requantization primitives, bit-exact with
 * TFLite/TFLM's reference (gemmlowp-style double rounding).
 */
#ifndef OCTO_QMATH_H
#define OCTO_QMATH_H

#include <stdint.h>
#include <string.h>

#include "octo/octo_dsp.h"

#if defined(__GNUC__) || defined(__clang__)
#define OCTO_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define OCTO_ALWAYS_INLINE inline
#endif

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

/* octo_requantize for multipliers from the converter (0 or in [2^30, 2^31), so
 * never INT32_MIN: the saturating case of SRDHM cannot occur, and the first
 * rounding is one multiply-accumulate and a 64-bit shift by the constant 31).
 * Equal to octo_requantize for all x and shifts in [-31, 30]; a positive shift
 * (a real multiplier above 1, rare) takes the reference path.
 * tests/c/test_qmath.c checks it against octo_requantize for every shift. */
static inline int32_t octo_requantize_fast(int32_t x, int32_t multiplier, int32_t shift) {
    if (shift > 0) {
        return octo_requantize(x, multiplier, shift);
    }
    const int32_t q = (int32_t)(((int64_t)x * multiplier + (1LL << 30)) >> 31);
    return octo_rdbpot(q, -shift);
}

static inline int32_t octo_clamp(int32_t v, int32_t lo, int32_t hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

/* For multipliers from the converter (m in [2^30, 2^31)) and e = -shift >= 1,
 * TFLite's two roundings merge into one: since floor((floor(a/b) + c) / d) =
 * floor((a + b*c) / (b*d)) for integer c,
 *   result = (x*m + 2^30 + 2^(30+e) - [x*m + 2^30 < 0] * 2^31) >> (31+e),
 * and as m >= 2^30 the sign test is [x < 0] (for m = 2^30, x = -1 both give 0).
 * k = 2^30 + 2^(30+e) is a per-channel constant (split into k_lo, k_hi), and the
 * 64-bit shift by 31+e >= 32 is the high word shifted by e-1: one SMLAL and a
 * 32-bit shift. tests/c/test_qmath.c checks it against octo_requantize. */
static inline int32_t octo_requantize_merged(int32_t x, int32_t multiplier, uint32_t k_lo, int32_t k_hi,
                                             int32_t e_minus_1) {
    const int64_t k = (int64_t)(((uint64_t)(uint32_t)k_hi << 32) | k_lo) - (int64_t)((uint32_t)x & 0x80000000u);
    const int64_t t = (int64_t)x * multiplier + k;
    return (int32_t)(t >> 32) >> e_minus_1;
}

/* The per-channel constants of octo_requantize_merged for shift <= -1. */
static inline void octo_merged_constants(int32_t shift, int32_t out[3]) {
    const int64_t k = (1LL << 30) + ((int64_t)1 << (30 - shift));
    out[0] = (int32_t)(uint32_t)k;
    out[1] = (int32_t)(k >> 32);
    out[2] = -shift - 1;
}

/* Requantization modes a kernel picks once per call (octo_requant_mode). */
enum {
    OCTO_RQ_GENERAL = 0, /* some shift > 0 */
    OCTO_RQ_RIGHT = 1,   /* every shift <= 0 */
    OCTO_RQ_MERGED = 2,  /* the converter's merged table is present */
    OCTO_RQ_MERGED_FLOOR = 3 /* merged, and act_min >= the output zero point (octo_merged_raw) */
};

static inline int octo_requant_mode(const int32_t *shift, const int32_t *merged, int32_t n) {
    if (merged != NULL) {
        return OCTO_RQ_MERGED;
    }
    for (int32_t i = 0; i < n; i++) {
        if (shift[i] > 0) {
            return OCTO_RQ_GENERAL;
        }
    }
    return OCTO_RQ_RIGHT;
}

/* The mode a kernel runs: OCTO_RQ_MERGED becomes OCTO_RQ_MERGED_FLOOR when the clamp's lower bound is at or
 * above the output zero point (ReLU, ReLU6). */
static inline int octo_requant_mode_act(const int32_t *shift, const int32_t *merged, int32_t n, int32_t out_off,
                                        int32_t act_min) {
    const int mode = octo_requant_mode(shift, merged, n);
    return mode == OCTO_RQ_MERGED && act_min >= out_off ? OCTO_RQ_MERGED_FLOOR : mode;
}

/* octo_requantize_merged(acc, ...) + off before the clamp, k = the channel's {k_lo, k_hi, e-1}. With
 * floor_clamps (act_min >= off) the sign correction is dropped: for acc >= 0 it is 0, and for acc < 0
 * both forms give a value <= 0 (acc*m <= -2^30, so the numerator is below 2^(30+e) and the quotient
 * below 1/2), which the clamp takes to act_min either way. */
static OCTO_ALWAYS_INLINE int32_t octo_merged_raw(int32_t acc, int32_t m, const int32_t *k, int32_t off,
                                                  const int floor_clamps) {
    int64_t t = (int64_t)(((uint64_t)(uint32_t)k[1] << 32) | (uint32_t)k[0]);
    if (!floor_clamps) {
        t -= (int64_t)((uint32_t)acc & 0x80000000u);
    }
    t += (int64_t)acc * m;
    return ((int32_t)(t >> 32) >> k[2]) + off;
}

/* Four channels of the merged output stage into out[0..3]; lo4/hi4: act_min/act_max in every byte. */
static OCTO_ALWAYS_INLINE void octo_requant_store4_merged(int32_t a0, int32_t a1, int32_t a2, int32_t a3,
                                                          const int32_t *mult, const int32_t *merged, int32_t off,
                                                          uint32_t lo4, uint32_t hi4, const int floor_clamps,
                                                          int8_t *out) {
    const uint32_t r = octo_pack4_clamp(octo_merged_raw(a0, mult[0], &merged[0], off, floor_clamps),
                                        octo_merged_raw(a1, mult[1], &merged[3], off, floor_clamps),
                                        octo_merged_raw(a2, mult[2], &merged[6], off, floor_clamps),
                                        octo_merged_raw(a3, mult[3], &merged[9], off, floor_clamps), lo4, hi4);
    memcpy(out, &r, sizeof r);
}

/* Output stage shared by the fast kernels: out[j] = clamp(requantize(acc[j]) +
 * offset) for n channels, in the mode the caller chose once per call; mult,
 * shift and merged already point at the first of the n channels. Parameters
 * are passed by value: stores to int8 memory would otherwise force the
 * compiler to reload them. */

static OCTO_ALWAYS_INLINE void octo_requant_store(const int32_t *acc, int32_t n, const int32_t *mult, const int32_t *shift,
                                      const int32_t *merged, int32_t offset, int32_t act_min, int32_t act_max,
                                      int mode, int8_t *out) {
    for (int32_t j = 0; j < n; j++) {
        int32_t v;
        if (mode == OCTO_RQ_MERGED || mode == OCTO_RQ_MERGED_FLOOR) {
            v = octo_requantize_merged(acc[j], mult[j], (uint32_t)merged[3 * j], merged[3 * j + 1],
                                       merged[3 * j + 2]);
        } else if (mode == OCTO_RQ_RIGHT) {
            const int32_t q = (int32_t)(((int64_t)acc[j] * mult[j] + (1LL << 30)) >> 31);
            v = octo_rdbpot(q, -shift[j]);
        } else {
            v = octo_requantize_fast(acc[j], mult[j], shift[j]);
        }
        out[j] = (int8_t)octo_clamp(v + offset, act_min, act_max);
    }
}

#ifdef __cplusplus
}
#endif

#endif /* OCTO_QMATH_H */
