/* octo_depthwise_conv_s8_packed.c - DEPTHWISE_CONV_2D (multiplier 1), INT8,
 * weights pre-packed at conversion time (layout in octo_depthwise_conv_s8.h).
 * Bit-exact with octo_depthwise_conv_s8.
 *
 * Four channels per step: per tap, one LDR of four input channels, SXTB16 into
 * lanes (0,2) and (1,3), one LDRD of the tap's packed weights, four halfword
 * MACs (SMLABB/SMLATT). A channel group's weights for all taps are contiguous,
 * so the common interior 3x3 case is fully unrolled with constant offsets. The
 * input offset is folded into bias_full; a border pixel subtracts the offset
 * share of its taps that fall into the padding.
 */
#include <string.h>

#include "octo/octo_depthwise_conv_s8.h"
#include "octo/octo_dsp.h"
#include "octo/octo_qmath.h"

/* Widest layer whose 3x3 border pixels go through the stack patch (9 x 256 bytes). */
#define DW_PATCH_MAX_C 256

/* One tap: four channels at x (input) against w (packed [w0 w2 w1 w3]). */
#define DW_TAP(xp, wp)                                                   \
    do {                                                                 \
        const uint32_t x_ = octo_read_u32(xp);                           \
        const uint32_t x02_ = octo_sxtb16(x_), x13_ = octo_sxtb16_ror8(x_); \
        const uint32_t w02_ = octo_read_u32(wp), w13_ = octo_read_u32((wp) + 2); \
        a0 = octo_smlabb(x02_, w02_, a0);                                \
        a2 = octo_smlatt(x02_, w02_, a2);                                \
        a1 = octo_smlabb(x13_, w13_, a1);                                \
        a3 = octo_smlatt(x13_, w13_, a3);                                \
    } while (0)

/* Nine taps of a 3x3 kernel for four channels, accumulated into a0..a3 (lvalues):
 * p points at the channel group of the top-left tap, taps C bytes apart, rows rs
 * bytes apart; w: the group's 9 packed taps (8 bytes each). On DSP cores one
 * block of asm (LDR, LDRD, 2 SXTB16, 4 halfword MACs per tap); elsewhere DW_TAP. */
#if OCTO_HAVE_DSP
#define DW3X3_TAPS(P_, RS_, C_, W_, A0_, A1_, A2_, A3_)                                                       \
    do {                                                                                                      \
        const int8_t *p_ = (P_);                                                                              \
        DW_ROW_ASM(p_, C_, W_, "0", "8", "16", A0_, A1_, A2_, A3_);                                           \
        p_ += (RS_);                                                                                          \
        DW_ROW_ASM(p_, C_, W_, "24", "32", "40", A0_, A1_, A2_, A3_);                                         \
        p_ += (RS_);                                                                                          \
        DW_ROW_ASM(p_, C_, W_, "48", "56", "64", A0_, A1_, A2_, A3_);                                         \
    } while (0)
/* One kernel row (three taps); one asm block per row keeps the register need at 11. */
#define DW_ROW_ASM(P_, C_, W_, w0, w1, w2, A0_, A1_, A2_, A3_)                                                \
    do {                                                                                                      \
        uint32_t t0_, t1_, t2_, t3_;                                                                          \
        __asm volatile(DW_ROW(w0, w1, w2)                                                                     \
                       : [a0] "+r"(A0_), [a1] "+r"(A1_), [a2] "+r"(A2_), [a3] "+r"(A3_), [x] "=&r"(t0_),      \
                         [y] "=&r"(t1_), [u] "=&r"(t2_), [v] "=&r"(t3_)                                       \
                       : [p] "r"(P_), [c] "r"(C_), [w] "r"(W_)                                                \
                       : "memory");                                                                           \
    } while (0)
#define DW_TAP_ASM(addr, woff)                                                                                \
    "ldr %[x], " addr "\n\t"                                                                                  \
    "ldrd %[u], %[v], [%[w], #" woff "]\n\t"                                                                  \
    "sxtb16 %[y], %[x]\n\t"                                                                                   \
    "sxtb16 %[x], %[x], ror #8\n\t"                                                                           \
    "smlabb %[a0], %[y], %[u], %[a0]\n\t"                                                                     \
    "smlatt %[a2], %[y], %[u], %[a2]\n\t"                                                                     \
    "smlabb %[a1], %[x], %[v], %[a1]\n\t"                                                                     \
    "smlatt %[a3], %[x], %[v], %[a3]\n\t"
#define DW_ROW(w0, w1, w2) DW_TAP_ASM("[%[p]]", w0) DW_TAP_ASM("[%[p], %[c]]", w1) DW_TAP_ASM("[%[p], %[c], lsl #1]", w2)
#else
#define DW3X3_TAPS(p, rs, C, w, a0, a1, a2, a3)                                                               \
    do {                                                                                                      \
        for (int32_t t_ = 0; t_ < 9; t_++) {                                                                  \
            DW_TAP(&(p)[(t_ / 3) * (rs) + (t_ % 3) * (C)], &(w)[4 * t_]);                                     \
        }                                                                                                     \
    } while (0)
#endif

/* Interior 3x3 for four channels (the non-merged requantization modes). acc[0..3] in/out. */
__attribute__((noinline)) static void dw3x3_group(const int8_t *p, int32_t rs, int32_t C, const int16_t *w,
                                                  int32_t acc[4]) {
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    DW3X3_TAPS(p, rs, C, w, a0, a1, a2, a3);
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* Per-call constants of the 3x3 pixel routine. */
typedef struct {
    const int16_t *wpack;    /* packed weights, group after group */
    const int32_t *bias;     /* bias_full */
    const int32_t *mult;     /* per-channel multipliers */
    const int32_t *shift;    /* per-channel shifts */
    const int32_t *merged;   /* per-channel merged constants or NULL */
    int32_t C;               /* channels */
    int32_t out_off;         /* output zero point */
    int32_t act_min, act_max;
    int rq_mode;             /* OCTO_RQ_* chosen once per call */
} dw3x3_ctx_t;

/* All channels of one output pixel, 3x3 kernel: p = the top-left tap's
 * channel 0, taps tap_step bytes apart, rows row_step bytes apart, channel
 * groups group_step bytes apart. mode is a constant at each call site below,
 * so each copy of the loop has its requantization inlined without a test. */
static OCTO_ALWAYS_INLINE void dw3x3_pixel_mode(const dw3x3_ctx_t *k, const int8_t *p, int32_t row_step,
                                                int32_t tap_step, int32_t group_step, int8_t *o, const int mode) {
    const int16_t *w = k->wpack;
    for (int32_t c = 0; c < k->C; c += 4, p += group_step, w += 36) {
        int32_t acc[4] = {k->bias[c], k->bias[c + 1], k->bias[c + 2], k->bias[c + 3]};
        dw3x3_group(p, row_step, tap_step, w, acc);
        octo_requant_store(acc, 4, &k->mult[c], &k->shift[c], NULL,
                           k->out_off, k->act_min, k->act_max, mode, &o[c]);
    }
}

/* dw3x3_pixel for the merged requantization table: taps and output stage of
 * each channel group inline, accumulators in registers. */
static OCTO_ALWAYS_INLINE void dw3x3_pixel_merged_mode(const dw3x3_ctx_t *k, const int8_t *p, int32_t row_step,
                                                       int32_t tap_step, int8_t *o, const int floor_clamps) {
    const int16_t *w = k->wpack;
    const int32_t *bias = k->bias, *mult = k->mult, *mg = k->merged;
    const int32_t off = k->out_off;
    const uint32_t lo4 = 0x01010101u * (uint8_t)(int8_t)k->act_min, hi4 = 0x01010101u * (uint8_t)(int8_t)k->act_max;
    for (int32_t c = k->C; c > 0; c -= 4, p += 4, w += 36, bias += 4, mult += 4, mg += 12, o += 4) {
        int32_t a0 = bias[0], a1 = bias[1], a2 = bias[2], a3 = bias[3];
        DW3X3_TAPS(p, row_step, tap_step, w, a0, a1, a2, a3);
        octo_requant_store4_merged(a0, a1, a2, a3, mult, mg, off, lo4, hi4, floor_clamps, o);
    }
}

__attribute__((noinline)) static void dw3x3_pixel(const dw3x3_ctx_t *k, const int8_t *p, int32_t row_step,
                                                  int32_t tap_step, int32_t group_step, int8_t *o) {
    if (k->rq_mode == OCTO_RQ_MERGED_FLOOR) {
        dw3x3_pixel_merged_mode(k, p, row_step, tap_step, o, 1);
    } else if (k->rq_mode == OCTO_RQ_MERGED) {
        dw3x3_pixel_merged_mode(k, p, row_step, tap_step, o, 0);
    } else if (k->rq_mode == OCTO_RQ_RIGHT) {
        dw3x3_pixel_mode(k, p, row_step, tap_step, group_step, o, OCTO_RQ_RIGHT);
    } else {
        dw3x3_pixel_mode(k, p, row_step, tap_step, group_step, o, OCTO_RQ_GENERAL);
    }
}

int octo_depthwise_conv_s8_packed(const octo_dw_conv_params_t *p, const octo_requant_t *q,
                                  const octo_dims_t *in_dims, const int8_t *in, const octo_dims_t *filter_dims,
                                  const int16_t *wpack, const int32_t *bias_full, const octo_dims_t *out_dims,
                                  int8_t *out) {
    if (p == NULL || q == NULL || in_dims == NULL || in == NULL || filter_dims == NULL || wpack == NULL ||
        bias_full == NULL || out_dims == NULL || out == NULL || q->multiplier == NULL || q->shift == NULL) {
        return OCTO_E_ARG;
    }
    const int32_t C = in_dims->c, H = in_dims->h, W = in_dims->w;
    const int32_t OH = out_dims->h, OW = out_dims->w;
    const int32_t kh = filter_dims->h, kw = filter_dims->w;
    if (out_dims->c != C || filter_dims->c != C || (C & 3) != 0 || p->depth_multiplier != 1 ||
        p->dilation_h != 1 || p->dilation_w != 1 || in_dims->n != 1 || out_dims->n != 1) {
        return OCTO_E_ARG;
    }
    const int32_t off = p->input_offset;
    const int32_t out_off = p->output_offset, act_min = p->act_min, act_max = p->act_max;
    const int rq_mode = octo_requant_mode_act(q->shift, q->merged, C, out_off, act_min);
    const dw3x3_ctx_t k3 = {wpack,   bias_full, q->multiplier, q->shift, q->merged,
                            C,       out_off,   act_min,       act_max,  rq_mode};
    const int32_t taps = kh * kw;
    const int32_t rs = W * C; /* input row stride */
    /* Border pixels of a 3x3 kernel: the taps are gathered into a patch whose
     * padding taps hold the input zero point (offset-added value 0, which is what
     * TFLM's skipped taps contribute); layout [tap][C]. Up to 9 x DW_PATCH_MAX_C
     * channels on the stack; wider layers take the generic path for borders. */
    uint32_t patch_words[9 * DW_PATCH_MAX_C / 4];
    int8_t *const patch = (int8_t *)(void *)patch_words;
    const int zp = (uint8_t)(int8_t)(-off); /* padding taps: the input zero point */
    for (int32_t oy = 0; oy < OH; oy++) {
        const int32_t iy0 = oy * p->stride_h - p->pad_h;
        const int32_t ky0 = iy0 < 0 ? -iy0 : 0;
        const int32_t ky1 = (H - iy0) < kh ? (H - iy0) : kh;
        for (int32_t ox = 0; ox < OW; ox++) {
            const int32_t ix0 = ox * p->stride_w - p->pad_w;
            const int32_t kx0 = ix0 < 0 ? -ix0 : 0;
            const int32_t kx1 = (W - ix0) < kw ? (W - ix0) : kw;
            const int interior = (ky0 == 0 && ky1 == kh && kx0 == 0 && kx1 == kw);
            int8_t *o = &out[(oy * OW + ox) * C];
            if (kh == 3 && kw == 3 && interior) {
                dw3x3_pixel(&k3, &in[(iy0 * W + ix0) * C], rs, C, 4, o);
                continue;
            }
            if (kh == 3 && kw == 3 && C <= DW_PATCH_MAX_C) {
                /* per kernel row: the valid taps are contiguous in the input, one copy */
                for (int32_t ky = 0; ky < 3; ky++) {
                    int8_t *dst = &patch[ky * 3 * C];
                    if (ky < ky0 || ky >= ky1 || kx1 <= kx0) {
                        memset(dst, zp, (size_t)(3 * C));
                        continue;
                    }
                    if (kx0 > 0) {
                        memset(dst, zp, (size_t)(kx0 * C));
                    }
                    memcpy(&dst[kx0 * C], &in[((iy0 + ky) * W + ix0 + kx0) * C], (size_t)((kx1 - kx0) * C));
                    if (kx1 < 3) {
                        memset(&dst[kx1 * C], zp, (size_t)((3 - kx1) * C));
                    }
                }
                dw3x3_pixel(&k3, patch, 3 * C, C, 4, o);
                continue;
            }
            const int8_t *base = &in[(iy0 * W + ix0) * C]; /* tap (0,0); only valid taps are read */
            for (int32_t c = 0; c < C; c += 4) {
                const int16_t *wg = &wpack[(c >> 2) * taps * 4];
                int32_t a0 = bias_full[c], a1 = bias_full[c + 1], a2 = bias_full[c + 2], a3 = bias_full[c + 3];
                for (int32_t ky = 0; ky < kh; ky++) {
                    for (int32_t kx = 0; kx < kw; kx++) {
                        const int16_t *w = &wg[(ky * kw + kx) * 4];
                        if (ky >= ky0 && ky < ky1 && kx >= kx0 && kx < kx1) {
                            DW_TAP(&base[ky * rs + kx * C + c], w);
                        } else { /* a padding tap: TFLM skips it, so take its offset share back out */
                            a0 -= off * w[0];
                            a2 -= off * w[1];
                            a1 -= off * w[2];
                            a3 -= off * w[3];
                        }
                    }
                }
                const int32_t acc[4] = {a0, a1, a2, a3};
                octo_requant_store(acc, 4, &q->multiplier[c], &q->shift[c],
                                   q->merged != NULL ? &q->merged[3 * c] : NULL, out_off, act_min, act_max, rq_mode,
                                   &o[c]);
            }
        }
    }
    return OCTO_OK;
}
