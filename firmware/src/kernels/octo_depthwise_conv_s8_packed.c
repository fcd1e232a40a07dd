/* octo_depthwise_conv_s8_packed.c - DEPTHWISE_CONV_2D (multiplier 1), INT8, weights at 1 byte in TFLite's
 * order [kh*kw][C], input offset folded into bias_full at conversion time (octo_depthwise_conv_s8.h).
 * Bit-exact with octo_depthwise_conv_s8.
 *
 * DSP and portable paths: the call first expands the weights into the caller's scratch, per group of four
 * channels every tap as [w0 w2 w1 w3] halfwords (one LDR and two SXTB16 per four weights, once per call: a few
 * instructions per weight against OH*OW MACs each). Then four channels per step: per tap, one LDR of four input
 * channels, SXTB16 into lanes (0,2) and (1,3), one LDRD of the tap's expanded weights, four halfword MACs
 * (SMLABB/SMLATT). A channel group's weights for all taps are contiguous, so the common interior 3x3 case is
 * fully unrolled with constant offsets. A border pixel subtracts the offset share of its taps that fall into the
 * padding.
 *
 * Helium (MVE): four channels per vector straight from the int8 weights (widening byte loads, VMUL, VADD), and
 * the output stage on four channels at once (VQRDMULH and a rounding shift with TFLite's half-away-from-zero
 * fix-up); the scratch is not used.
 */
#include <string.h>

#include "octo/octo_depthwise_conv_s8.h"
#include "octo/octo_dsp.h"
#include "octo/octo_qmath.h"

/* Widest layer whose 3x3 border pixels go through the stack patch (9 x 256 bytes). */
#define DW_PATCH_MAX_C 256
#define DW_PATCH_BYTES (9 * DW_PATCH_MAX_C)

/* The receptive field of a border pixel into patch, layout [ky][kx][C]: valid taps [ky0, ky1) x [kx0, kx1)
 * copied from the input (a row's valid taps are contiguous there: one copy), padding taps set to zp, the input
 * zero point, whose offset-added value 0 is what TFLM's skipped taps contribute. */
static void dw_fill_patch(const int8_t *in, int32_t W, int32_t C, int32_t iy0, int32_t ix0, int32_t kh, int32_t kw,
                          int32_t ky0, int32_t ky1, int32_t kx0, int32_t kx1, int zp, int8_t *patch) {
    const int32_t row = kw * C;
    for (int32_t ky = 0; ky < kh; ky++) {
        int8_t *dst = &patch[ky * row];
        if (ky < ky0 || ky >= ky1 || kx1 <= kx0) {
            memset(dst, zp, (size_t)row);
            continue;
        }
        if (kx0 > 0) {
            memset(dst, zp, (size_t)(kx0 * C));
        }
        memcpy(&dst[kx0 * C], &in[((iy0 + ky) * W + ix0 + kx0) * C], (size_t)((kx1 - kx0) * C));
        if (kx1 < kw) {
            memset(&dst[kx1 * C], zp, (size_t)((kw - kx1) * C));
        }
    }
}

#if !OCTO_HAVE_MVE
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

#endif

#if OCTO_HAVE_MVE
/* o[0..3] = clamp(requantize(acc) + off) for four channels: TFLite's MultiplyByQuantizedMultiplier per lane.
 * VQRDMULH is its SaturatingRoundingDoublingHighMul ((2ab + 2^31) >> 32 equals the nudged form, octo_srdhm);
 * VRSHL rounds half up, so negative values first lose 1 where a right shift follows (TFLite rounds half away
 * from zero, octo_rdbpot). */
static OCTO_ALWAYS_INLINE void dw_requant4_mve(int32x4_t acc, const int32_t *mult, const int32_t *shift, int32_t off,
                                               int32_t act_min, int32_t act_max, int8_t *o) {
    const int32x4_t sh = vldrwq_s32(shift), zero = vdupq_n_s32(0);
    const int32x4_t right = vminq_s32(sh, zero); /* -(right shift), 0 where the shift is to the left */
    int32x4_t v = vqrdmulhq_s32(vshlq_s32(acc, vmaxq_s32(sh, zero)), vldrwq_s32(mult));
    v = vqaddq_s32(v, vshrq_n_s32(vandq_s32(v, right), 31));
    v = vaddq_n_s32(vrshlq_s32(v, right), off);
    vstrbq_s32(o, vminq_s32(vmaxq_s32(v, vdupq_n_s32(act_min)), vdupq_n_s32(act_max)));
}

/* Sixteen channels of one interior pixel, kh x kw taps, from their biases (bias[0..15]) into acc[0..3]: x = the
 * top-left tap's first channel of the block, taps C bytes apart, rows rs bytes apart; w = the same channels of
 * tap 0 in the [kh*kw][C] weights. Per tap: eight widening byte loads (VLDRB.S32) at immediate offsets of two
 * pointers, four VMUL, four VADD, two pointer steps, a low-overhead loop end: 19 instructions for 16 MACs.
 * Assembly because GCC 12 spills the four accumulators from these intrinsics (VLDRB.S32 takes only a low base
 * register, and the moves to one crowd the vector registers). kh, kw >= 1. */
__attribute__((noinline)) static void dw_taps16_mve(const int8_t *x, int32_t rs, int32_t C, const int8_t *w,
                                                    int32_t kh, int32_t kw, const int32_t *bias, int32_t acc[16]) {
    const int8_t *xp;
    __asm volatile(
        "vldrw.32 q0, [%[b]]\n\t"
        "vldrw.32 q1, [%[b], #16]\n\t"
        "vldrw.32 q2, [%[b], #32]\n\t"
        "vldrw.32 q3, [%[b], #48]\n"
        "1:\n\t"
        "mov %[xp], %[x]\n\t"
        "dls lr, %[kw]\n"
        "2:\n\t"
        "vldrb.s32 q4, [%[xp]]\n\t"
        "vldrb.s32 q5, [%[w]]\n\t"
        "vmul.i32 q4, q4, q5\n\t"
        "vadd.i32 q0, q0, q4\n\t"
        "vldrb.s32 q4, [%[xp], #4]\n\t"
        "vldrb.s32 q5, [%[w], #4]\n\t"
        "vmul.i32 q4, q4, q5\n\t"
        "vadd.i32 q1, q1, q4\n\t"
        "vldrb.s32 q4, [%[xp], #8]\n\t"
        "vldrb.s32 q5, [%[w], #8]\n\t"
        "vmul.i32 q4, q4, q5\n\t"
        "vadd.i32 q2, q2, q4\n\t"
        "vldrb.s32 q4, [%[xp], #12]\n\t"
        "vldrb.s32 q5, [%[w], #12]\n\t"
        "vmul.i32 q4, q4, q5\n\t"
        "vadd.i32 q3, q3, q4\n\t"
        "add %[xp], %[xp], %[c]\n\t"
        "add %[w], %[w], %[c]\n\t"
        "le lr, 2b\n\t"
        "add %[x], %[x], %[rs]\n\t"
        "subs %[kh], %[kh], #1\n\t"
        "bne 1b\n\t"
        "vstrw.32 q0, [%[a]]\n\t"
        "vstrw.32 q1, [%[a], #16]\n\t"
        "vstrw.32 q2, [%[a], #32]\n\t"
        "vstrw.32 q3, [%[a], #48]\n\t"
        : [x] "+l"(x), [w] "+l"(w), [xp] "=&l"(xp), [kh] "+r"(kh)
        : [b] "r"(bias), [kw] "r"(kw), [c] "r"(C), [rs] "r"(rs), [a] "r"(acc)
        : "q0", "q1", "q2", "q3", "q4", "q5", "lr", "cc", "memory");
}

/* All channels of one interior pixel: sixteen per pass (the pointer updates of a tap serve four vectors), then
 * four at a time. */
static void dw_pixel_mve(const octo_requant_t *q, const int8_t *x, int32_t rs, int32_t C, const int8_t *w8,
                         const int32_t *bias_full, int32_t off, int32_t lo, int32_t hi, int8_t *o, int32_t kh,
                         int32_t kw) {
    int32_t c = 0;
    for (; c + 16 <= C; c += 16) {
        int32_t acc[16];
        dw_taps16_mve(&x[c], rs, C, &w8[c], kh, kw, &bias_full[c], acc);
        for (int32_t j = 0; j < 16; j += 4) {
            dw_requant4_mve(vldrwq_s32(&acc[j]), &q->multiplier[c + j], &q->shift[c + j], off, lo, hi, &o[c + j]);
        }
    }
    for (; c < C; c += 4) {
        int32x4_t acc = vldrwq_s32(&bias_full[c]);
        const int8_t *xr = &x[c], *w = &w8[c];
        for (int32_t ky = 0; ky < kh; ky++, xr += rs) {
            for (int32_t kx = 0; kx < kw; kx++, w += C) {
                acc = vaddq_s32(acc, vmulq_s32(vldrbq_s32(&xr[kx * C]), vldrbq_s32(w)));
            }
        }
        dw_requant4_mve(acc, &q->multiplier[c], &q->shift[c], off, lo, hi, &o[c]);
    }
}

/* The whole layer on Helium; w8 in TFLite's [kh*kw][C] order. */
static void dw_mve(const octo_dw_conv_params_t *p, const octo_requant_t *q, const octo_dims_t *in_dims,
                   const int8_t *in, const octo_dims_t *filter_dims, const int8_t *w8, const int32_t *bias_full,
                   const octo_dims_t *out_dims, int8_t *out) {
    const int32_t C = in_dims->c, H = in_dims->h, W = in_dims->w;
    const int32_t OH = out_dims->h, OW = out_dims->w;
    const int32_t kh = filter_dims->h, kw = filter_dims->w;
    const int32_t off = p->input_offset, out_off = p->output_offset, lo = p->act_min, hi = p->act_max;
    const int32_t rs = W * C;
    const int zp = (uint8_t)(int8_t)(-off); /* padding taps: the input zero point */
    uint32_t patch_words[DW_PATCH_BYTES / 4];
    int8_t *const patch = (int8_t *)(void *)patch_words;
    for (int32_t oy = 0; oy < OH; oy++) {
        const int32_t iy0 = oy * p->stride_h - p->pad_h;
        const int32_t ky0 = iy0 < 0 ? -iy0 : 0;
        const int32_t ky1 = (H - iy0) < kh ? (H - iy0) : kh;
        for (int32_t ox = 0; ox < OW; ox++) {
            const int32_t ix0 = ox * p->stride_w - p->pad_w;
            const int32_t kx0 = ix0 < 0 ? -ix0 : 0;
            const int32_t kx1 = (W - ix0) < kw ? (W - ix0) : kw;
            int8_t *o = &out[(oy * OW + ox) * C];
            if (ky0 == 0 && ky1 == kh && kx0 == 0 && kx1 == kw) {
                dw_pixel_mve(q, &in[(iy0 * W + ix0) * C], rs, C, w8, bias_full, out_off, lo, hi, o, kh, kw);
                continue;
            }
            if (kh * kw * C <= DW_PATCH_BYTES) { /* a border pixel through the patch, like an interior one */
                dw_fill_patch(in, W, C, iy0, ix0, kh, kw, ky0, ky1, kx0, kx1, zp, patch);
                dw_pixel_mve(q, patch, kw * C, C, w8, bias_full, out_off, lo, hi, o, kh, kw);
                continue;
            }
            for (int32_t c = 0; c < C; c += 4) { /* a wide border pixel: padding taps take their offset share out */
                int32x4_t acc = vldrwq_s32(&bias_full[c]);
                for (int32_t ky = 0; ky < kh; ky++) {
                    for (int32_t kx = 0; kx < kw; kx++) {
                        const int32x4_t wv = vldrbq_s32(&w8[(ky * kw + kx) * C + c]);
                        if (ky >= ky0 && ky < ky1 && kx >= kx0 && kx < kx1) {
                            acc = vaddq_s32(acc, vmulq_s32(vldrbq_s32(&in[((iy0 + ky) * W + ix0 + kx) * C + c]), wv));
                        } else {
                            acc = vmlaq_n_s32(acc, wv, -off);
                        }
                    }
                }
                dw_requant4_mve(acc, &q->multiplier[c], &q->shift[c], out_off, lo, hi, &o[c]);
            }
        }
    }
}
#endif

int octo_depthwise_conv_s8_packed(const octo_dw_conv_params_t *p, const octo_requant_t *q,
                                  const octo_dims_t *in_dims, const int8_t *in, const octo_dims_t *filter_dims,
                                  const int8_t *filter, const int32_t *bias_full, int16_t *scratch,
                                  const octo_dims_t *out_dims, int8_t *out) {
    if (p == NULL || q == NULL || in_dims == NULL || in == NULL || filter_dims == NULL || filter == NULL ||
        bias_full == NULL || scratch == NULL || out_dims == NULL || out == NULL || q->multiplier == NULL ||
        q->shift == NULL) {
        return OCTO_E_ARG;
    }
    const int32_t C = in_dims->c, H = in_dims->h, W = in_dims->w;
    const int32_t OH = out_dims->h, OW = out_dims->w;
    const int32_t kh = filter_dims->h, kw = filter_dims->w;
    if (out_dims->c != C || filter_dims->c != C || (C & 3) != 0 || p->depth_multiplier != 1 ||
        p->dilation_h != 1 || p->dilation_w != 1 || in_dims->n != 1 || out_dims->n != 1) {
        return OCTO_E_ARG;
    }
    const int32_t taps = kh * kw;
#if OCTO_HAVE_MVE
    (void)H, (void)W, (void)OH, (void)OW, (void)taps;
    dw_mve(p, q, in_dims, in, filter_dims, filter, bias_full, out_dims, out);
    return OCTO_OK;
#else
    /* the weights as [C/4][taps][w0 w2 w1 w3] halfwords, what the tap loops read */
    for (int32_t g = 0; g < C / 4; g++) {
        for (int32_t t = 0; t < taps; t++) {
            const uint32_t x = octo_read_u32(&filter[t * C + 4 * g]);
            const uint32_t pair[2] = {octo_sxtb16(x), octo_sxtb16_ror8(x)};
            memcpy(&scratch[(g * taps + t) * 4], pair, sizeof pair);
        }
    }
    const int16_t *const wpack = scratch;
    const int32_t off = p->input_offset;
    const int32_t out_off = p->output_offset, act_min = p->act_min, act_max = p->act_max;
    const int rq_mode = octo_requant_mode_act(q->shift, q->merged, C, out_off, act_min);
    const dw3x3_ctx_t k3 = {wpack,   bias_full, q->multiplier, q->shift, q->merged,
                            C,       out_off,   act_min,       act_max,  rq_mode};
    const int32_t rs = W * C; /* input row stride */
    /* Border pixels of a 3x3 kernel: the taps are gathered into a patch (dw_fill_patch). Up to 9 x
     * DW_PATCH_MAX_C channels on the stack; wider layers take the generic path for borders. */
    uint32_t patch_words[DW_PATCH_BYTES / 4];
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
                dw_fill_patch(in, W, C, iy0, ix0, 3, 3, ky0, ky1, kx0, kx1, zp, patch);
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
#endif
}
