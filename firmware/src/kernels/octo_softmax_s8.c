/*
 * octo_softmax_s8.c - SOFTMAX, INT8 -> INT8 (reference path).
 *
 * Bit-exact with TFLM's reference_ops::Softmax<int8_t, int8_t>: input
 * differences from the row maximum are rescaled to Q5.26, exponentiated with
 * gemmlowp's fixed-point exp_on_negative_values (Q0.31 result), summed in
 * Q12.19, and the sum inverted with gemmlowp's Newton-Raphson
 * one_over_one_plus_x_for_x_in_0_1. The gemmlowp primitives are re-implemented
 * here from their documented semantics; signed additions that gemmlowp leaves to
 * two's-complement wrap-around are done in uint32_t to stay defined in C.
 */
#include "octo/octo_softmax_s8.h"
#include "octo/octo_qmath.h"

#define SCALED_DIFF_INTEGER_BITS 5  /* exp() input format Q5.26 */
#define ACCUM_INTEGER_BITS 12       /* sum-of-exps format Q12.19 */

static inline int32_t wrap_add(int32_t a, int32_t b) {
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static inline int32_t wrap_sub(int32_t a, int32_t b) {
    return (int32_t)((uint32_t)a - (uint32_t)b);
}

/* gemmlowp SaturatingRoundingMultiplyByPOT<exponent> for exponent in 1..30 (saturating left shift). */
static inline int32_t sat_shl(int32_t x, int exponent) {
    const int32_t threshold = (int32_t)((1u << (31 - exponent)) - 1u);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

/* gemmlowp RoundingHalfSum: (a + b) / 2 rounded to nearest, halves away from zero. */
static inline int32_t rounding_half_sum(int32_t a, int32_t b) {
    const int64_t sum = (int64_t)a + (int64_t)b;
    return (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
}

/* exp(a) for a in [-1/4, 0), Q0.31 in and out (Taylor expansion around -1/8). */
static int32_t exp_on_interval_between_negative_one_quarter_and_0_excl(int32_t a) {
    const int32_t constant_term = 1895147668; /* exp(-1/8) */
    const int32_t constant_1_over_3 = 715827883;
    const int32_t x = wrap_add(a, 1 << 28); /* a + 1/8 */
    const int32_t x2 = octo_srdhm(x, x);
    const int32_t x3 = octo_srdhm(x2, x);
    const int32_t x4 = octo_srdhm(x2, x2);
    const int32_t x4_over_4 = octo_rdbpot(x4, 2);
    const int32_t poly =
        octo_rdbpot(wrap_add(octo_srdhm(wrap_add(x4_over_4, x3), constant_1_over_3), x2), 1);
    return wrap_add(constant_term, octo_srdhm(constant_term, wrap_add(x, poly)));
}

/* exp(a) for a <= 0 given in Q5.26; result Q0.31 (gemmlowp exp_on_negative_values). */
static int32_t exp_on_negative_values_q5(int32_t a) {
    const int32_t frac_bits = 31 - SCALED_DIFF_INTEGER_BITS;
    const int32_t one_quarter = (int32_t)1 << (frac_bits - 2);
    const int32_t a_mod_quarter_minus_one_quarter = wrap_sub(a & (one_quarter - 1), one_quarter);
    int32_t result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        sat_shl(a_mod_quarter_minus_one_quarter, SCALED_DIFF_INTEGER_BITS));
    const int32_t remainder = wrap_sub(a_mod_quarter_minus_one_quarter, a);
    /* exp(-2^k) in Q0.31 for k = -2 .. 4: multiply in each power of two present in the remainder. */
    static const int32_t k_barrel[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    for (int k = 0; k < 7; k++) {
        if ((remainder & ((int32_t)1 << (frac_bits - 2 + k))) != 0) {
            result = octo_srdhm(result, k_barrel[k]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + a) for a in [0, 1), Q0.31 in and out (three Newton-Raphson steps in Q2.29). */
static int32_t one_over_one_plus_x_for_x_in_0_1(int32_t a) {
    const int32_t half_denominator = rounding_half_sum(a, INT32_MAX);
    const int32_t constant_48_over_17 = 1515870810;
    const int32_t constant_neg_32_over_17 = -1010580540;
    const int32_t one_q2 = (int32_t)1 << 29;
    int32_t x = wrap_add(constant_48_over_17, octo_srdhm(half_denominator, constant_neg_32_over_17));
    for (int i = 0; i < 3; i++) {
        const int32_t half_denominator_times_x = octo_srdhm(half_denominator, x);
        const int32_t one_minus_half_denominator_times_x = wrap_sub(one_q2, half_denominator_times_x);
        x = wrap_add(x, sat_shl(octo_srdhm(x, one_minus_half_denominator_times_x), 2));
    }
    return sat_shl(x, 1);
}

static inline int count_leading_zeros(uint32_t v) {
#if defined(__GNUC__) || defined(__clang__)
    return v == 0 ? 32 : __builtin_clz(v);
#else
    int n = 0;
    if (v == 0) {
        return 32;
    }
    while ((v & 0x80000000u) == 0) {
        v <<= 1;
        n++;
    }
    return n;
#endif
}

/* exp((x - max) * beta * input_scale) in Q0.31 for a difference at or above diff_min. */
static inline int32_t scaled_exp(const octo_softmax_params_t *p, int32_t diff) {
    const int32_t shifted = (int32_t)((uint32_t)diff << p->input_left_shift);
    return exp_on_negative_values_q5(octo_srdhm(shifted, p->input_multiplier));
}

int octo_softmax_s8(const octo_softmax_params_t *p, int32_t rows, int32_t depth, const int8_t *in, int8_t *out) {
    if (p == NULL || in == NULL || out == NULL || rows < 0 || depth <= 0 || p->input_left_shift < 0 ||
        p->input_left_shift > 31 || p->diff_min > 0) {
        return OCTO_E_ARG;
    }
    for (int32_t r = 0; r < rows; r++) {
        const int8_t *x = in + (size_t)r * (size_t)depth;
        int8_t *y = out + (size_t)r * (size_t)depth;
        int32_t max_in_row = INT8_MIN;
        for (int32_t c = 0; c < depth; c++) {
            max_in_row = x[c] > max_in_row ? x[c] : max_in_row;
        }
        int64_t sum = 0; /* Q12.19; 64-bit so that no depth can wrap it */
        for (int32_t c = 0; c < depth; c++) {
            const int32_t diff = (int32_t)x[c] - max_in_row;
            if (diff >= p->diff_min) {
                sum += octo_rdbpot(scaled_exp(p, diff), ACCUM_INTEGER_BITS);
            }
        }
        if (sum >= ((int64_t)1 << 28)) {
            /* A sum of exps >= 512 (possible for depth >= 512 only, e.g. a near-uniform 1000-class
             * output) needs an output shift > 31, where TFLM's TFLITE_CHECK aborts. Every
             * probability is then <= 1/512, at most half an output step, and TFLM's formula
             * continued to those shifts gives 0 for each element: the row is all -128. */
            for (int32_t c = 0; c < depth; c++) {
                y[c] = INT8_MIN;
            }
            continue;
        }
        /* Reciprocal of the sum: sum = 2^num_bits_over_unit * (1 + f), shifted_scale = 1 / (1 + f) in Q0.31. */
        const int32_t sum_of_exps = (int32_t)sum;
        const int headroom_plus_one = count_leading_zeros((uint32_t)sum_of_exps);
        const int num_bits_over_unit = ACCUM_INTEGER_BITS - headroom_plus_one;
        const int32_t shifted_sum_minus_one =
            (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - ((uint32_t)1 << 31));
        const int32_t shifted_scale = one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one);
        const int exponent = num_bits_over_unit + 31 - 8; /* 23..31: the sum is in [1, 512) */
        for (int32_t c = 0; c < depth; c++) {
            const int32_t diff = (int32_t)x[c] - max_in_row;
            if (diff >= p->diff_min) {
                const int32_t unsat = octo_rdbpot(octo_srdhm(shifted_scale, scaled_exp(p, diff)), exponent);
                y[c] = (int8_t)octo_clamp(unsat + INT8_MIN, INT8_MIN, INT8_MAX);
            } else {
                y[c] = INT8_MIN;
            }
        }
    }
    return OCTO_OK;
}
