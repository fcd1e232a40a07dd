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
    if (depthwise) { /* out channel o reads input channel o / (out c / in c): TFLite's depth multiplier */
        return w_dims->n == 1 && w_dims->c == out_dims->c && out_dims->c >= in_dims->c &&
               out_dims->c % in_dims->c == 0;
    }
    return w_dims->c == in_dims->c && w_dims->n == out_dims->c;
}

/* FULLY_CONNECTED shapes: D = in h*w*c = w_dims->c, w_dims {O,1,1,D}, out {N,1,1,O}. */
static inline int octo_tr_fully_connected_ok(const octo_dims_t *in_dims, const octo_dims_t *w_dims,
                                             const octo_dims_t *out_dims) {
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

/* --- INT8 blocked kernels (octo_train_gemm_s8.c; Thumb-2 assembly on DSP cores) --------------- */

/* Weights pre-expanded to int16 pairs in the order SXTB16 unpacks activations:
 * for a group of four activations a[0..3] (one 32-bit load) and one output j of a
 * block of four, the two words (w[0], w[2]) and (w[1], w[3]) (low halfword first),
 * so SMLAD(SXTB16(a), ...) + SMLAD(SXTB16 ROR 8(a), ...) adds the four products.
 * A block's group is 8 words: output 0's pair, output 1's, output 2's, output 3's. */
#define OCTO_TR_GROUP_BYTES 32

/* Halfword packing: (lo(a), lo(b)) and (hi(a), hi(b)) as (low, high) halfwords (PKHBT, PKHTB). */
#if OCTO_HAVE_DSP
static inline uint32_t octo_tr_pk_lo(uint32_t a, uint32_t b) {
    uint32_t r;
    __asm("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

static inline uint32_t octo_tr_pk_hi(uint32_t a, uint32_t b) {
    uint32_t r;
    __asm("pkhtb %0, %2, %1, asr #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
#else
static inline uint32_t octo_tr_pk_lo(uint32_t a, uint32_t b) {
    return (a & 0xFFFFu) | (b << 16);
}

static inline uint32_t octo_tr_pk_hi(uint32_t a, uint32_t b) {
    return (a >> 16) | (b & 0xFFFF0000u);
}
#endif

/* Two words of expanded weights from four int8 weights (w[0..3] in one little-endian word). */
static inline void octo_tr_expand4(uint32_t v, uint32_t *dst) {
    dst[0] = octo_sxtb16(v);
    dst[1] = octo_sxtb16_ror8(v);
}

/* The 4x4 transpose for the input gradient: v_i holds w[o_i][c_0..c_3] (four
 * output channels o_i, four input channels c_j); dst gets for each c_j the two
 * words (w[o_0][c_j], w[o_2][c_j]) and (w[o_1][c_j], w[o_3][c_j]) (PKHBT/PKHTB). */
static inline void octo_tr_expand_t4(uint32_t v0, uint32_t v1, uint32_t v2, uint32_t v3, uint32_t *dst) {
    const uint32_t e0 = octo_sxtb16(v0), e2 = octo_sxtb16(v2), o0 = octo_sxtb16_ror8(v0), o2 = octo_sxtb16_ror8(v2);
    const uint32_t e1 = octo_sxtb16(v1), e3 = octo_sxtb16(v3), o1 = octo_sxtb16_ror8(v1), o3 = octo_sxtb16_ror8(v3);
    dst[0] = octo_tr_pk_lo(e0, e2); /* c_0 */
    dst[1] = octo_tr_pk_lo(e1, e3);
    dst[2] = octo_tr_pk_lo(o0, o2); /* c_1 */
    dst[3] = octo_tr_pk_lo(o1, o3);
    dst[4] = octo_tr_pk_hi(e0, e2); /* c_2 */
    dst[5] = octo_tr_pk_hi(e1, e3);
    dst[6] = octo_tr_pk_hi(o0, o2); /* c_3 */
    dst[7] = octo_tr_pk_hi(o1, o3);
}

/* The weight-gradient stage: eight positions q side by side, int16 [k][8] (16
 * bytes per k: the words (q0, q1), (q2, q3), ...), written a pair of positions
 * at a time: dst[4*i] = (a[i], b[i]), i < n (four bytes per load, SXTB16 then
 * PKHBT/PKHTB); b NULL stands for zeros. */
static inline void octo_tr_stage2(uint32_t *dst, const int8_t *a, const int8_t *b, int32_t n) {
    int32_t i = 0;
    if (b == NULL) {
        for (; i < n; i++, dst += 4) {
            *dst = (uint16_t)a[i];
        }
        return;
    }
    for (; i + 4 <= n; i += 4, dst += 16) {
        const uint32_t va = octo_read_u32(&a[i]), vb = octo_read_u32(&b[i]);
        const uint32_t ea = octo_sxtb16(va), eb = octo_sxtb16(vb);
        const uint32_t oa = octo_sxtb16_ror8(va), ob = octo_sxtb16_ror8(vb);
        dst[0] = octo_tr_pk_lo(ea, eb);
        dst[4] = octo_tr_pk_lo(oa, ob);
        dst[8] = octo_tr_pk_hi(ea, eb);
        dst[12] = octo_tr_pk_hi(oa, ob);
    }
    for (; i < n; i++, dst += 4) {
        *dst = octo_tr_pk_lo((uint32_t)(int32_t)a[i], (uint32_t)(int32_t)b[i]);
    }
}

/* db[o] += the eight staged dy values of output o (de as for octo_tr_rank8_s8), two per SMLAD. */
static inline void octo_tr_sum8(const uint32_t *de, int32_t no, int32_t *db) {
    for (int32_t o = 0; o < no; o++, de += 4) {
        int32_t acc = db[o];
        acc = octo_smlad(de[0], 0x00010001u, acc);
        acc = octo_smlad(de[1], 0x00010001u, acc);
        acc = octo_smlad(de[2], 0x00010001u, acc);
        acc = octo_smlad(de[3], 0x00010001u, acc);
        db[o] = acc;
    }
}

/* One contiguous run of activations: n >= 1 groups of four int8 at a (any
 * alignment), against the weights at byte offset woff of every block. */
typedef struct {
    const int8_t *a;
    int32_t woff;
    int32_t n;
} octo_tr_seg_t;

/* For each of nblk >= 1 blocks of four outputs: acc = init (four int32, or 0
 * when init is NULL), plus, for every segment, the dot of its activations with
 * the block's weights; act (OCTO_TRAIN_ACT_*) then clamps at 0 and, for ReLU6,
 * at hi; the four results go to out (which may be init). Blocks are wstride
 * bytes apart from w (4-byte aligned). */
typedef struct {
    const octo_tr_seg_t *seg;
    int32_t nseg;
    const uint32_t *w;
    int32_t wstride;
    int32_t nblk;
    const int32_t *init;
    int32_t *out;
    int32_t act;
    int32_t hi;
} octo_tr_blk4_t;

void octo_tr_blk4_s8(const octo_tr_blk4_t *job);
/* The same with int16 activation pairs: segment a holds 2n words (a0, a2), (a1, a3) per group. */
void octo_tr_blk4e_s8(const octo_tr_blk4_t *job);

/* Rank-8 weight-gradient update over eight positions q:
 *   dw[o][k] += sum_q d_q[o] * p_q[k]   (o < no, k < nk)
 * pe holds int16 p_q[k] at [k][q] and de int16 d_q[o] at [o][q] as words (the
 * pair q = 2i, 2i+1, low halfword first, for one SMLAD); dw is [no][nk]. */
typedef struct {
    const uint32_t *pe;
    const uint32_t *de;
    int32_t *dw;
    int32_t nk;
    int32_t no;
} octo_tr_rank8_t;

void octo_tr_rank8_s8(const octo_tr_rank8_t *job);

/* The same update when only positions 0 and 1 hold data (the other dy are zero):
 * one SMLAD per (o, k) on the first word of each stage row, four outputs per pass. */
static inline void octo_tr_rank2_s8(const octo_tr_rank8_t *job) {
    const int32_t nk = job->nk, no = job->no;
    int32_t o = 0;
    for (; o + 4 <= no; o += 4) {
        const uint32_t d0 = job->de[4 * o], d1 = job->de[4 * o + 4], d2 = job->de[4 * o + 8], d3 = job->de[4 * o + 12];
        int32_t *r0 = &job->dw[o * nk], *r1 = r0 + nk, *r2 = r1 + nk, *r3 = r2 + nk;
        const uint32_t *pk = job->pe;
        for (int32_t k = 0; k < nk; k++, pk += 4) {
            const uint32_t v = *pk;
            r0[k] = octo_smlad(d0, v, r0[k]);
            r1[k] = octo_smlad(d1, v, r1[k]);
            r2[k] = octo_smlad(d2, v, r2[k]);
            r3[k] = octo_smlad(d3, v, r3[k]);
        }
    }
    for (; o < no; o++) {
        const uint32_t d = job->de[4 * o];
        int32_t *row = &job->dw[o * nk];
        const uint32_t *pk = job->pe;
        for (int32_t k = 0; k < nk; k++, pk += 4) {
            row[k] = octo_smlad(d, *pk, row[k]);
        }
    }
}

/* The rank-8 update of a stage holding nq positions (the rest zero). */
static inline void octo_tr_rank_s8(const octo_tr_rank8_t *job, int32_t nq) {
    if (nq <= 2) {
        octo_tr_rank2_s8(job);
    } else {
        octo_tr_rank8_s8(job);
    }
}

/* Four int8 from p as a little-endian word, bytes n..3 zero (n <= 4). */
static inline uint32_t octo_tr_read_part(const int8_t *p, int32_t n) {
    if (n >= 4) {
        return octo_read_u32(p);
    }
    uint8_t t[4] = {0, 0, 0, 0};
    for (int32_t i = 0; i < n; i++) {
        t[i] = (uint8_t)p[i];
    }
    return octo_read_u32(t);
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
