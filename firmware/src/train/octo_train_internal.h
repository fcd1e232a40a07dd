/*
 * octo_train_internal.h - helpers private to the training kernels: argument
 * checks, window geometry, and the SXTB16/SMLAD inner loops shared by the
 * INT8 kernels (octo_dsp.h primitives only, so the DSP build and the portable
 * build run the same integer arithmetic).
 */
#ifndef OCTO_TRAIN_INTERNAL_H
#define OCTO_TRAIN_INTERNAL_H

#include <float.h>
#include <stdint.h>

#include "octo/octo_dsp.h"
#include "octo/octo_train.h"

/* --- argument checks --------------------------------------------------------------------------- */

/* All four dims positive and the element count below 2^31. */
static inline int octo_tr_dims_ok(const octo_dims_t *d) {
    if (d == NULL || d->n <= 0 || d->h <= 0 || d->w <= 0 || d->c <= 0) {
        return 0;
    }
    const int64_t count = (int64_t)d->n * d->h * d->w * d->c;
    return count <= INT32_MAX;
}

static inline int32_t octo_tr_count(const octo_dims_t *d) {
    return d->n * d->h * d->w * d->c;
}

static inline int octo_tr_act_ok(int32_t act) {
    return act == OCTO_TRAIN_ACT_NONE || act == OCTO_TRAIN_ACT_RELU || act == OCTO_TRAIN_ACT_RELU6;
}

static inline int octo_tr_scale_ok(float s) {
    return s > 0.0f && s <= FLT_MAX; /* false for NaN too */
}

static inline int octo_tr_q8_ok(const octo_train_q8_t *t) {
    return t != NULL && t->data != NULL && octo_tr_scale_ok(t->scale);
}

static inline int octo_tr_q32_out_ok(const octo_train_q32_t *t) {
    return t != NULL && t->data != NULL;
}

static inline int octo_tr_aligned4(const void *p) {
    return ((uintptr_t)p & 3u) == 0;
}

/* Stride/padding sane, batch equal, in/out dims valid. Shapes of weights are checked by the caller. */
static inline int octo_tr_window_ok(int32_t stride_h, int32_t stride_w, int32_t pad_h, int32_t pad_w,
                                    const octo_dims_t *in_dims, const octo_dims_t *out_dims) {
    return stride_h >= 1 && stride_w >= 1 && pad_h >= 0 && pad_w >= 0 && octo_tr_dims_ok(in_dims) &&
           octo_tr_dims_ok(out_dims) && in_dims->n == out_dims->n;
}

/* Window index arithmetic of one axis stays in int32: (out-1)*stride + k + pad + in < 2^31. */
static inline int octo_tr_axis_ok(int32_t out, int32_t stride, int32_t k, int32_t pad, int32_t in) {
    return (int64_t)(out - 1) * stride + k + pad + in <= INT32_MAX;
}

/* CONV_2D / DEPTHWISE_CONV_2D parameters and shapes (w_dims {OC,KH,KW,C} or {1,KH,KW,C}). */
static inline int octo_tr_conv_ok(const octo_train_conv_params_t *p, const octo_dims_t *in_dims,
                                  const octo_dims_t *w_dims, const octo_dims_t *out_dims, int depthwise) {
    if (p == NULL || !octo_tr_act_ok(p->act) || !octo_tr_dims_ok(w_dims) ||
        !octo_tr_window_ok(p->stride_h, p->stride_w, p->pad_h, p->pad_w, in_dims, out_dims) ||
        !octo_tr_axis_ok(out_dims->h, p->stride_h, w_dims->h, p->pad_h, in_dims->h) ||
        !octo_tr_axis_ok(out_dims->w, p->stride_w, w_dims->w, p->pad_w, in_dims->w)) {
        return 0;
    }
    if (depthwise) {
        return w_dims->n == 1 && w_dims->c == in_dims->c && out_dims->c == in_dims->c;
    }
    return w_dims->c == in_dims->c && w_dims->n == out_dims->c;
}

/* FULLY_CONNECTED shapes: D = in h*w*c = w_dims->c, w_dims {O,1,1,D}, out {N,1,1,O}. */
static inline int octo_tr_fc_ok(const octo_dims_t *in_dims, const octo_dims_t *w_dims, const octo_dims_t *out_dims) {
    if (!octo_tr_dims_ok(in_dims) || !octo_tr_dims_ok(w_dims) || !octo_tr_dims_ok(out_dims)) {
        return 0;
    }
    return w_dims->h == 1 && w_dims->w == 1 && (int64_t)in_dims->h * in_dims->w * in_dims->c == w_dims->c &&
           out_dims->n == in_dims->n && out_dims->h == 1 && out_dims->w == 1 && out_dims->c == w_dims->n;
}

static inline int octo_tr_pool_ok(const octo_train_pool_params_t *p, const octo_dims_t *in_dims,
                                  const octo_dims_t *out_dims) {
    return p != NULL && p->filter_h >= 1 && p->filter_w >= 1 &&
           octo_tr_window_ok(p->stride_h, p->stride_w, p->pad_h, p->pad_w, in_dims, out_dims) &&
           octo_tr_axis_ok(out_dims->h, p->stride_h, p->filter_h, p->pad_h, in_dims->h) &&
           octo_tr_axis_ok(out_dims->w, p->stride_w, p->filter_w, p->pad_w, in_dims->w) && out_dims->c == in_dims->c;
}

/* --- window geometry --------------------------------------------------------------------------- */

/* Taps [*k0, *k1) of a k-wide window starting at input index i0 that fall inside [0, n). */
static inline void octo_tr_taps(int32_t i0, int32_t k, int32_t n, int32_t *k0, int32_t *k1) {
    *k0 = i0 < 0 ? -i0 : 0;
    *k1 = n - i0 < k ? n - i0 : k;
}

static inline int32_t octo_tr_max(int32_t a, int32_t b) {
    return a > b ? a : b;
}

static inline int32_t octo_tr_min(int32_t a, int32_t b) {
    return a < b ? a : b;
}

/* The fused activation in FP32. */
static inline float octo_tr_act_f32(float v, int32_t act) {
    if (act != OCTO_TRAIN_ACT_NONE && v < 0.0f) {
        return 0.0f;
    }
    if (act == OCTO_TRAIN_ACT_RELU6 && v > 6.0f) {
        return 6.0f;
    }
    return v;
}

/* --- float <-> int ----------------------------------------------------------------------------- */

/* round(f) half away from zero, clamped to [-lim, lim] (lim <= 2^30, exact in float); NaN -> 0. */
static inline int32_t octo_tr_round_sat(float f, int32_t lim) {
    const float fl = (float)lim;
    if (f >= fl) {
        return lim;
    }
    if (f <= -fl) {
        return -lim;
    }
    if (!(f == f)) {
        return 0;
    }
    return (int32_t)(f >= 0.0f ? f + 0.5f : f - 0.5f);
}

/* floor(f) for |f| < 2^30. */
static inline int32_t octo_tr_floor(float f) {
    int32_t t = (int32_t)f; /* truncates toward zero */
    return (float)t > f ? t - 1 : t;
}

/* int8 value of v (already in int8 units) rounded as floor(v + u): u = 1/2 for
 * round to nearest, uniform in [0, 1) for stochastic rounding. Saturates to +-127. */
static inline int8_t octo_tr_q8_round(float v, float u) {
    v = v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v);
    if (!(v == v)) {
        v = 0.0f; /* NaN */
    }
    const int32_t r = octo_tr_floor(v + u);
    return (int8_t)(r > 127 ? 127 : r); /* 127 + u may round up to 128 in float */
}

/* --- INT8 inner loops (octo_dsp.h) ------------------------------------------------------------- */

/* acc + sum a[i]*b[i], i < n: four bytes per step, SXTB16 splits each word into
 * the even and the odd lanes, two SMLAD add the four products. */
static inline int32_t octo_tr_dot_s8(const int8_t *a, const int8_t *b, int32_t n, int32_t acc) {
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint32_t va = octo_read_u32(&a[i]);
        const uint32_t vb = octo_read_u32(&b[i]);
        acc = octo_smlad(octo_sxtb16(va), octo_sxtb16(vb), acc);
        acc = octo_smlad(octo_sxtb16_ror8(va), octo_sxtb16_ror8(vb), acc);
    }
    for (; i < n; i++) {
        acc += (int32_t)a[i] * (int32_t)b[i];
    }
    return acc;
}

/* Four independent lanes: acc[j] += a[j] * b[j], j < 4 (depthwise: four channels). */
static inline void octo_tr_mac4_s8(const int8_t *a, const int8_t *b, int32_t acc[4]) {
    const uint32_t va = octo_read_u32(a);
    const uint32_t vb = octo_read_u32(b);
    const uint32_t a02 = octo_sxtb16(va), b02 = octo_sxtb16(vb);
    const uint32_t a13 = octo_sxtb16_ror8(va), b13 = octo_sxtb16_ror8(vb);
    acc[0] = octo_smlabb(a02, b02, acc[0]);
    acc[2] = octo_smlatt(a02, b02, acc[2]);
    acc[1] = octo_smlabb(a13, b13, acc[1]);
    acc[3] = octo_smlatt(a13, b13, acc[3]);
}

/* Pair-interleaved layout of two int8 rows r0, r1 of length n (n2 = n rounded
 * up to even): for every even k the four bytes r0[k] r0[k+1] r1[k] r1[k+1], so
 * SXTB16 of a word gives (r0[k], r1[k]) and SXTB16 ROR 8 gives (r0[k+1], r1[k+1]). */
static inline int32_t octo_tr_il_index(int32_t k, int32_t row) {
    return ((k >> 1) << 2) + (row << 1) + (k & 1);
}

/* Rank-2 update for a weight gradient over a pair of positions:
 *   dw[o][k] += dy0[o] * p0[k] + dy1[o] * p1[k]   (o < n_o, k < n_k)
 * with dy_il and p_il the pair-interleaved rows (octo_tr_il_index): one SMLAD
 * per (o, k). dw is row-major [n_o][n_k]. */
static inline void octo_tr_rank2_s8(const int8_t *dy_il, int32_t n_o, const int8_t *p_il, int32_t n_k,
                                    int32_t *dw) {
    const int32_t k_even = n_k & ~1;
    for (int32_t o = 0; o < n_o; o += 2) {
        const uint32_t vd = octo_read_u32(&dy_il[o << 1]);
        const uint32_t d0 = octo_sxtb16(vd);      /* (dy0[o], dy1[o]) */
        const uint32_t d1 = octo_sxtb16_ror8(vd); /* (dy0[o+1], dy1[o+1]) */
        int32_t *w0 = &dw[o * n_k];
        if (o + 1 < n_o) {
            int32_t *w1 = w0 + n_k;
            for (int32_t k = 0; k < k_even; k += 2) {
                const uint32_t vp = octo_read_u32(&p_il[k << 1]);
                const uint32_t pa = octo_sxtb16(vp), pb = octo_sxtb16_ror8(vp);
                w0[k] = octo_smlad(d0, pa, w0[k]);
                w0[k + 1] = octo_smlad(d0, pb, w0[k + 1]);
                w1[k] = octo_smlad(d1, pa, w1[k]);
                w1[k + 1] = octo_smlad(d1, pb, w1[k + 1]);
            }
            if (k_even < n_k) {
                const uint32_t pa = octo_sxtb16(octo_read_u32(&p_il[k_even << 1]));
                w0[k_even] = octo_smlad(d0, pa, w0[k_even]);
                w1[k_even] = octo_smlad(d1, pa, w1[k_even]);
            }
        } else {
            for (int32_t k = 0; k < k_even; k += 2) {
                const uint32_t vp = octo_read_u32(&p_il[k << 1]);
                w0[k] = octo_smlad(d0, octo_sxtb16(vp), w0[k]);
                w0[k + 1] = octo_smlad(d0, octo_sxtb16_ror8(vp), w0[k + 1]);
            }
            if (k_even < n_k) {
                w0[k_even] = octo_smlad(d0, octo_sxtb16(octo_read_u32(&p_il[k_even << 1])), w0[k_even]);
            }
        }
    }
}

/* Float biases in the accumulator scale acc_scale: round(b / acc_scale), clamped to +-2^30. */
static inline int32_t octo_tr_bias_acc(const float *bias, int32_t i, float inv_acc_scale) {
    return bias == NULL ? 0 : octo_tr_round_sat(bias[i] * inv_acc_scale, 1 << 30);
}

/* The fused activation on an int32 accumulator (six = 6 in accumulator units). */
static inline int32_t octo_tr_act_s32(int32_t acc, int32_t act, int32_t six) {
    if (act != OCTO_TRAIN_ACT_NONE && acc < 0) {
        return 0;
    }
    if (act == OCTO_TRAIN_ACT_RELU6 && acc > six) {
        return six;
    }
    return acc;
}

/* 6 / acc_scale rounded, clamped to 2^30. */
static inline int32_t octo_tr_six(float acc_scale) {
    return octo_tr_round_sat(6.0f / acc_scale, 1 << 30);
}

#endif /* OCTO_TRAIN_INTERNAL_H */
