/* octo_train_quant.c - dynamic-scale quantization for the INT8 training
 * kernels: float -> int8, int32 accumulators -> int8 (round to nearest or
 * stochastic), int8 -> float. Semantics in octo_train_types.h. */
#include "octo_train_internal.h"

float octo_train_absmax_f32(const float *x, int32_t n) {
    float m = 0.0f;
    for (int32_t i = 0; i < n; i++) {
        const float a = x[i] < 0.0f ? -x[i] : x[i];
        if (a > m) {
            m = a;
        }
    }
    return m;
}

uint32_t octo_train_absmax_s32(const int32_t *x, int32_t n) {
    uint32_t m = 0;
    for (int32_t i = 0; i < n; i++) {
        const uint32_t a = x[i] < 0 ? 0u - (uint32_t)x[i] : (uint32_t)x[i];
        if (a > m) {
            m = a;
        }
    }
    return m;
}

int octo_train_quantize_s8_range(const float *x, int32_t n, float range, int32_t rounding, octo_train_prng_t *prng,
                                 octo_train_q8_t *out) {
    if (x == NULL || n < 0 || out == NULL || out->data == NULL || !octo_tr_scale_ok(range) ||
        (rounding != OCTO_TRAIN_ROUND_NEAREST && rounding != OCTO_TRAIN_ROUND_STOCHASTIC) ||
        (rounding == OCTO_TRAIN_ROUND_STOCHASTIC && prng == NULL)) {
        return OCTO_E_ARG;
    }
    const float inv = 127.0f / range;
    int8_t *q = out->data;
    for (int32_t i = 0; i < n; i++) {
        float u = 0.5f;
        if (rounding == OCTO_TRAIN_ROUND_STOCHASTIC) {
            u = (float)(octo_train_prng_next(prng) >> 8) * (1.0f / 16777216.0f);
        }
        q[i] = octo_tr_q8_round(x[i] * inv, u);
    }
    out->scale = range / 127.0f;
    return OCTO_OK;
}

int octo_train_quantize_s8(const float *x, int32_t n, int32_t rounding, octo_train_prng_t *prng,
                           octo_train_q8_t *out) {
    if (x == NULL || n < 0) {
        return OCTO_E_ARG;
    }
    const float m = octo_train_absmax_f32(x, n);
    if (!(m <= FLT_MAX)) {
        return OCTO_E_ARG; /* inf or NaN in the tensor */
    }
    return octo_train_quantize_s8_range(x, n, m > 0.0f ? m : 127.0f, rounding, prng, out);
}

/* Integer core of the int32 -> int8 requantization, range >= 128:
 * q = (a * M + r) >> s with M = floor(127 * 2^s / range) in [2^30, 2^31) and
 * a clamped to +-range, so |a * M| <= 127 * 2^s and q stays in [-127, 127]. */
static void requant_scaled(const int32_t *acc, int32_t n, uint32_t range, int32_t rounding, octo_train_prng_t *prng,
                           int8_t *q) {
    int32_t s = 31;
    while (((uint64_t)127 << (s + 1)) / range < ((uint64_t)1 << 31)) {
        s++;
    }
    const int64_t mult = (int64_t)(((uint64_t)127 << s) / range);
    const int64_t half = (int64_t)1 << (s - 1);
    const int64_t lim = (int64_t)range;
    for (int32_t i = 0; i < n; i++) {
        int64_t a = acc[i];
        a = a > lim ? lim : (a < -lim ? -lim : a);
        int64_t r = half;
        if (rounding == OCTO_TRAIN_ROUND_STOCHASTIC) {
            const uint32_t d = octo_train_prng_next(prng);
            r = s >= 32 ? (int64_t)((uint64_t)d << (s - 32)) : (int64_t)(d >> (32 - s));
        }
        q[i] = (int8_t)((a * mult + r) >> s); /* arithmetic shift (GCC/Clang) */
    }
}

int octo_train_requant_s8_range(const octo_train_q32_t *acc, int32_t n, uint32_t range, int32_t rounding,
                                octo_train_prng_t *prng, octo_train_q8_t *out) {
    if (acc == NULL || acc->data == NULL || !octo_tr_scale_ok(acc->scale) || n < 0 || out == NULL ||
        out->data == NULL || range < 1u || range > 0x80000000u ||
        (rounding != OCTO_TRAIN_ROUND_NEAREST && rounding != OCTO_TRAIN_ROUND_STOCHASTIC) ||
        (rounding == OCTO_TRAIN_ROUND_STOCHASTIC && prng == NULL)) {
        return OCTO_E_ARG;
    }
    const float acc_scale = acc->scale;
    if (range <= 127u) {
        /* exact: the values fit, only the clip applies (in place: byte i is written after word i is read) */
        const int32_t lim = (int32_t)range;
        for (int32_t i = 0; i < n; i++) {
            const int32_t a = acc->data[i];
            out->data[i] = (int8_t)(a > lim ? lim : (a < -lim ? -lim : a));
        }
        out->scale = acc_scale;
        return OCTO_OK;
    }
    requant_scaled(acc->data, n, range, rounding, prng, out->data);
    out->scale = acc_scale * ((float)range / 127.0f);
    return OCTO_OK;
}

int octo_train_requant_s8(const octo_train_q32_t *acc, int32_t n, int32_t rounding, octo_train_prng_t *prng,
                          octo_train_q8_t *out) {
    if (acc == NULL || acc->data == NULL || n < 0) {
        return OCTO_E_ARG;
    }
    const uint32_t m = octo_train_absmax_s32(acc->data, n);
    return octo_train_requant_s8_range(acc, n, m > 127u ? m : 127u, rounding, prng, out);
}

int octo_train_dequantize_s8(const octo_train_q8_t *q, int32_t n, float *out) {
    if (q == NULL || q->data == NULL || out == NULL || n < 0) {
        return OCTO_E_ARG;
    }
    for (int32_t i = 0; i < n; i++) {
        out[i] = (float)q->data[i] * q->scale;
    }
    return OCTO_OK;
}
