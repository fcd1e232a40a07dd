/* octo_conv_s8_packed.c - CONV_2D, INT8, with weights pre-packed at
 * conversion time (layout in octo_conv_s8.h). Bit-exact with octo_conv_s8.
 *
 * Per output pixel the receptive field is gathered into a small patch (padding
 * taps filled with the input zero point, which is what TFLM's skipped taps
 * amount to once the input offset is folded into bias_full). The patch is then
 * dotted with four output channels at a time; their packed weights for each
 * group of four patch bytes lie together (16 int16), so the DSP loop is one LDR
 * of four input bytes, SXTB16 (lanes 0,2) and SXTB16 ROR 8 (lanes 1,3), two LDM
 * of four weight words and eight SMLAD: 15 instructions for 16 MACs.
 * With Helium (__ARM_FEATURE_MVE, Cortex-M55) the converter emits plain int8 rows instead and dot4_mve takes
 * 16 input bytes per step: 9 instructions for 64 MACs.
 * octo_conv_s8_packed8 reads 1-byte weights (the converter's default): the patch is expanded once per pixel into
 * SXTB16 pairs and each weight word is sign-extended in the loop; two pixels share that work (dot_pair, 30
 * instructions for 32 MACs), a single pixel (a dense layer) does not (dot_pixel8, 36 for 32).
 */
#include <string.h>

#include "octo/octo_conv_s8.h"
#include "octo/octo_dsp.h"
#include "octo/octo_qmath.h"

#define OCB 4 /* output channels per block */
#define CONV_ACC_BLOCKS 64 /* blocks whose raw sums one pixel holds on the stack (1 KiB) */

#if !OCTO_HAVE_MVE
/* acc[0..3] += sum over `groups` whole groups of ip[4g..4g+3] . block weights at w. */
__attribute__((noinline)) static void dot_groups(const int8_t *ip, const int16_t *w, int32_t groups,
                                                 int32_t acc[OCB]) {
    if (groups <= 0) {
        return;
    }
#if OCTO_HAVE_DSP
    register int32_t a0 __asm("r4") = acc[0];
    register int32_t a1 __asm("r5") = acc[1];
    register int32_t a2 __asm("r6") = acc[2];
    register int32_t a3 __asm("r7") = acc[3];
    const int8_t *end = ip + 4 * groups;
    __asm volatile(
        "1:\n\t"
        "ldr r8, [%[ip]], #4\n\t"
        "ldmia %[w]!, {r0-r3}\n\t"
        "sxtb16 r9, r8\n\t"
        "sxtb16 r8, r8, ror #8\n\t"
        "smlad %[a0], r9, r0, %[a0]\n\t"
        "smlad %[a0], r8, r1, %[a0]\n\t"
        "smlad %[a1], r9, r2, %[a1]\n\t"
        "smlad %[a1], r8, r3, %[a1]\n\t"
        "ldmia %[w]!, {r0-r3}\n\t"
        "smlad %[a2], r9, r0, %[a2]\n\t"
        "smlad %[a2], r8, r1, %[a2]\n\t"
        "smlad %[a3], r9, r2, %[a3]\n\t"
        "smlad %[a3], r8, r3, %[a3]\n\t"
        "cmp %[ip], %[end]\n\t"
        "bne 1b\n\t"
        : [ip] "+r"(ip), [w] "+r"(w), [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3)
        : [end] "r"(end)
        : "r0", "r1", "r2", "r3", "r8", "r9", "cc", "memory");
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
#else
    int32_t s0 = acc[0], s1 = acc[1], s2 = acc[2], s3 = acc[3];
    for (int32_t g = 0; g < groups; g++, ip += 4, w += 4 * OCB) {
        uint32_t x = octo_read_u32(ip);
        uint32_t x02 = octo_sxtb16(x), x13 = octo_sxtb16_ror8(x);
        s0 = octo_smlad(x02, octo_read_u32(&w[0]), s0);
        s0 = octo_smlad(x13, octo_read_u32(&w[2]), s0);
        s1 = octo_smlad(x02, octo_read_u32(&w[4]), s1);
        s1 = octo_smlad(x13, octo_read_u32(&w[6]), s1);
        s2 = octo_smlad(x02, octo_read_u32(&w[8]), s2);
        s2 = octo_smlad(x13, octo_read_u32(&w[10]), s2);
        s3 = octo_smlad(x02, octo_read_u32(&w[12]), s3);
        s3 = octo_smlad(x13, octo_read_u32(&w[14]), s3);
    }
    acc[0] = s0;
    acc[1] = s1;
    acc[2] = s2;
    acc[3] = s3;
#endif
}
#endif

#if !OCTO_HAVE_MVE
/* Whole blocks of one pixel: for each of nblocks blocks (w advancing through
 * them), acc[4b..4b+3] = bias[4b..4b+3] + the dot of the len patch bytes at ip
 * (len = 4 * groups > 0) with the block's weights. On DSP cores one routine keeps
 * the accumulators in registers across the blocks: per block, one LDM of the
 * biases and one STM of the sums around the 15-instruction group loop. */
#if OCTO_HAVE_DSP
#define OCTO_ASM_ARG __attribute__((unused)) /* read by the asm body from r0-r3 and the stack */
__attribute__((naked, noinline)) static void dot_pixel(OCTO_ASM_ARG const int8_t *ip, OCTO_ASM_ARG const int16_t *w,
                                                       OCTO_ASM_ARG const int32_t *bias, OCTO_ASM_ARG int32_t *acc,
                                                       OCTO_ASM_ARG int32_t len, OCTO_ASM_ARG int32_t nblocks) {
    __asm volatile(
        "push {r4-r11, lr}\n\t"  /* 36 bytes: len at [sp, #36], nblocks at [sp, #40] */
        "ldr r12, [sp, #36]\n\t"
        "add r12, r0, r12\n\t"   /* end of the patch */
        "mov r10, r0\n\t"        /* ip */
        "mov r11, r1\n\t"        /* w */
        "mov lr, r2\n\t"         /* bias */
        "push {r0, r3}\n\t"      /* [sp] = patch start, [sp, #4] = acc; nblocks now at [sp, #48] */
        "2:\n\t"
        "ldmia lr!, {r4-r7}\n\t"
        "1:\n\t"
        "ldr r8, [r10], #4\n\t"
        "ldmia r11!, {r0-r3}\n\t"
        "sxtb16 r9, r8\n\t"
        "sxtb16 r8, r8, ror #8\n\t"
        "smlad r4, r9, r0, r4\n\t"
        "smlad r4, r8, r1, r4\n\t"
        "smlad r5, r9, r2, r5\n\t"
        "smlad r5, r8, r3, r5\n\t"
        "ldmia r11!, {r0-r3}\n\t"
        "smlad r6, r9, r0, r6\n\t"
        "smlad r6, r8, r1, r6\n\t"
        "smlad r7, r9, r2, r7\n\t"
        "smlad r7, r8, r3, r7\n\t"
        "cmp r10, r12\n\t"
        "bne 1b\n\t"
        "ldr r0, [sp, #4]\n\t"
        "stmia r0!, {r4-r7}\n\t"
        "str r0, [sp, #4]\n\t"
        "ldr r10, [sp]\n\t"
        "ldr r0, [sp, #48]\n\t"
        "subs r0, r0, #1\n\t"
        "str r0, [sp, #48]\n\t"
        "bne 2b\n\t"
        "add sp, sp, #8\n\t"
        "pop {r4-r11, pc}\n\t");
}
#else
static void dot_pixel(const int8_t *ip, const int16_t *w, const int32_t *bias, int32_t *acc, int32_t len,
                      int32_t nblocks) {
    for (int32_t b = 0; b < nblocks; b++, bias += OCB, acc += OCB, w += len * OCB) {
        memcpy(acc, bias, OCB * sizeof acc[0]);
        dot_groups(ip, w, len >> 2, acc);
    }
}
#endif
#endif

#if !OCTO_HAVE_MVE
/* The 1-byte layout (octo_conv_s8_packed8): the patch is first expanded once per pixel into x16, per group of
 * four bytes the int16 pairs [x0 x2] [x1 x3] (SXTB16, SXTB16 ROR 8), len8 / 2 words; each block's weights are
 * int8, per group of four patch bytes four words (one per channel, the bytes in patch order), so SXTB16 and
 * SXTB16 ROR 8 of a word give the lanes matching the two activation words. For each of nblocks blocks (w8
 * advancing through them), acc[4b..4b+3] = bias[4b..4b+3] + the block's dot; len8 is a multiple of 8, so the
 * DSP loop takes two groups per turn: two LDM of the activations, two LDM of the weights, 16 SXTB16 and
 * 16 SMLAD: 36 instructions for 32 MACs. */
#if OCTO_HAVE_DSP
__attribute__((naked, noinline)) static void dot_pixel8(OCTO_ASM_ARG const int16_t *x16, OCTO_ASM_ARG const int8_t *w8,
                                                        OCTO_ASM_ARG const int32_t *bias, OCTO_ASM_ARG int32_t *acc,
                                                        OCTO_ASM_ARG int32_t len8, OCTO_ASM_ARG int32_t nblocks) {
#define OCTO_DOT8_GROUP                                                                                         \
    "ldmia r10!, {r8, r9}\n\t"                                                                                 \
    "ldmia r11!, {r0-r3}\n\t"                                                                                  \
    "sxtb16 lr, r0\n\t"                                                                                        \
    "sxtb16 r0, r0, ror #8\n\t"                                                                                \
    "smlad r4, r8, lr, r4\n\t"                                                                                 \
    "smlad r4, r9, r0, r4\n\t"                                                                                 \
    "sxtb16 lr, r1\n\t"                                                                                        \
    "sxtb16 r1, r1, ror #8\n\t"                                                                                \
    "smlad r5, r8, lr, r5\n\t"                                                                                 \
    "smlad r5, r9, r1, r5\n\t"                                                                                 \
    "sxtb16 lr, r2\n\t"                                                                                        \
    "sxtb16 r2, r2, ror #8\n\t"                                                                                \
    "smlad r6, r8, lr, r6\n\t"                                                                                 \
    "smlad r6, r9, r2, r6\n\t"                                                                                 \
    "sxtb16 lr, r3\n\t"                                                                                        \
    "sxtb16 r3, r3, ror #8\n\t"                                                                                \
    "smlad r7, r8, lr, r7\n\t"                                                                                 \
    "smlad r7, r9, r3, r7\n\t"
    __asm volatile(
        "push {r4-r11, lr}\n\t"      /* 36 bytes: len8 at [sp, #36], nblocks at [sp, #40] */
        "ldr r12, [sp, #36]\n\t"
        "add r12, r0, r12, lsl #1\n\t" /* end of x16 */
        "mov r10, r0\n\t"            /* x16 */
        "mov r11, r1\n\t"            /* w8 */
        "push {r0, r2, r3}\n\t"      /* [sp] = x16, [sp, #4] = bias, [sp, #8] = acc; nblocks now at [sp, #52] */
        "2:\n\t"
        "ldr lr, [sp, #4]\n\t"
        "ldmia lr!, {r4-r7}\n\t"
        "str lr, [sp, #4]\n\t"
        "1:\n\t"
        OCTO_DOT8_GROUP
        OCTO_DOT8_GROUP
        "cmp r10, r12\n\t"
        "bne 1b\n\t"
        "ldr r0, [sp, #8]\n\t"
        "stmia r0!, {r4-r7}\n\t"
        "str r0, [sp, #8]\n\t"
        "ldr r10, [sp]\n\t"
        "ldr r0, [sp, #52]\n\t"
        "subs r0, r0, #1\n\t"
        "str r0, [sp, #52]\n\t"
        "bne 2b\n\t"
        "add sp, sp, #12\n\t"
        "pop {r4-r11, pc}\n\t");
#undef OCTO_DOT8_GROUP
}
#else
static void dot_pixel8(const int16_t *x16, const int8_t *w8, const int32_t *bias, int32_t *acc, int32_t len8,
                       int32_t nblocks) {
    for (int32_t b = 0; b < nblocks; b++, bias += OCB, acc += OCB) {
        int32_t s0 = bias[0], s1 = bias[1], s2 = bias[2], s3 = bias[3];
        for (int32_t g = 0; g < len8 >> 2; g++, w8 += 4 * OCB) {
            const uint32_t x02 = octo_read_u32(&x16[4 * g]), x13 = octo_read_u32(&x16[4 * g + 2]);
            const uint32_t w0 = octo_read_u32(&w8[0]), w1 = octo_read_u32(&w8[4]);
            const uint32_t w2 = octo_read_u32(&w8[8]), w3 = octo_read_u32(&w8[12]);
            s0 = octo_smlad(x13, octo_sxtb16_ror8(w0), octo_smlad(x02, octo_sxtb16(w0), s0));
            s1 = octo_smlad(x13, octo_sxtb16_ror8(w1), octo_smlad(x02, octo_sxtb16(w1), s1));
            s2 = octo_smlad(x13, octo_sxtb16_ror8(w2), octo_smlad(x02, octo_sxtb16(w2), s2));
            s3 = octo_smlad(x13, octo_sxtb16_ror8(w3), octo_smlad(x02, octo_sxtb16(w3), s3));
        }
        acc[0] = s0;
        acc[1] = s1;
        acc[2] = s2;
        acc[3] = s3;
    }
}
#endif

/* x16 = the len8 bytes at src as SXTB16 lane pairs (see dot_pixel8). */
static void expand_patch(const int8_t *src, int16_t *x16, int32_t len8) {
    uint32_t *d = (uint32_t *)(void *)x16;
    for (int32_t i = 0; i < len8; i += 4, d += 2) {
        const uint32_t x = octo_read_u32(&src[i]);
        d[0] = octo_sxtb16(x);
        d[1] = octo_sxtb16_ror8(x);
    }
}
#endif

#if OCTO_HAVE_MVE
/* Helium (MVE): wpack holds plain int8 rows instead (octo_conv_s8.h): channel oc's L weights at oc * L, out_c
 * rounded up to a multiple of four with zero rows. The receptive field is read as `nseg` segments of `seg`
 * bytes, `xstride` bytes apart (the kh rows of an interior pixel straight from the input, or the gathered patch
 * as one segment); segment s meets weights s * seg of each row. One VLDRB of 16 input bytes serves four
 * channels: four VLDRB of their weights and four VMLADAVA (16 MACs each); a tail predicate (VCTP) covers the
 * last bytes of a segment. */
__attribute__((noinline)) static void dot4_mve(const int8_t *x, int32_t xstride, int32_t nseg, int32_t seg,
                                               const int8_t *w, int32_t len, int32_t acc[OCB]) {
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    const int32_t full = seg >> 4, tail = seg & 15;
    for (int32_t s = 0; s < nseg; s++, x += xstride, w += seg) {
        const int8_t *xp = x, *w0 = w, *w1 = w + len, *w2 = w + 2 * len, *w3 = w + 3 * len;
        for (int32_t i = 0; i < full; i++) { /* whole vectors: 5 loads, 4 VMLADAVA */
            const int8x16_t xv = vld1q_s8(xp);
            a0 = vmladavaq_s8(a0, xv, vld1q_s8(w0));
            a1 = vmladavaq_s8(a1, xv, vld1q_s8(w1));
            a2 = vmladavaq_s8(a2, xv, vld1q_s8(w2));
            a3 = vmladavaq_s8(a3, xv, vld1q_s8(w3));
            xp += 16;
            w0 += 16;
            w1 += 16;
            w2 += 16;
            w3 += 16;
        }
        if (tail) { /* the segment's last bytes under a tail predicate (inactive lanes load 0) */
            const mve_pred16_t pr = vctp8q((uint32_t)tail);
            const int8x16_t xv = vldrbq_z_s8(xp, pr);
            a0 = vmladavaq_s8(a0, xv, vldrbq_z_s8(w0, pr));
            a1 = vmladavaq_s8(a1, xv, vldrbq_z_s8(w1, pr));
            a2 = vmladavaq_s8(a2, xv, vldrbq_z_s8(w2, pr));
            a3 = vmladavaq_s8(a3, xv, vldrbq_z_s8(w3, pr));
        }
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#endif

/* acc = block b's biases (0 past the last channel): a whole block is one 16-byte copy. */
/* The receptive field of the output pixel whose top-left tap is input (iy0, ix0) into patch, kh rows of kw * C
 * bytes; taps outside the image hold the padding value zp (the input zero point). */
static void fill_patch(const octo_dims_t *in_dims, const int8_t *in, int32_t kh, int32_t kw, int32_t iy0,
                       int32_t ix0, int8_t zp, int8_t *patch) {
    const int32_t C = in_dims->c, H = in_dims->h, W = in_dims->w, row = kw * C;
    const int32_t kx0 = ix0 < 0 ? -ix0 : 0;
    const int32_t kx1 = (W - ix0) < kw ? (W - ix0) : kw;
    for (int32_t ky = 0; ky < kh; ky++) {
        int8_t *dst = &patch[ky * row];
        const int32_t iy = iy0 + ky;
        if (iy < 0 || iy >= H || kx1 <= kx0) {
            memset(dst, zp, (size_t)row);
            continue;
        }
        if (kx0 > 0) {
            memset(dst, zp, (size_t)(kx0 * C));
        }
        memcpy(&dst[kx0 * C], &in[(iy * W + ix0 + kx0) * C], (size_t)((kx1 - kx0) * C));
        if (kx1 < kw) {
            memset(&dst[kx1 * C], zp, (size_t)((kw - kx1) * C));
        }
    }
}

static OCTO_ALWAYS_INLINE void conv_bias_block(const int32_t *bias_full, int32_t b, int32_t OC, int32_t acc[OCB]) {
    if ((b + 1) * OCB <= OC) {
        memcpy(acc, &bias_full[b * OCB], OCB * sizeof acc[0]);
        return;
    }
    for (int32_t j = 0; j < OCB; j++) {
        acc[j] = b * OCB + j < OC ? bias_full[b * OCB + j] : 0;
    }
}

/* The loops over the output box [oy0, oy1) x [ox0, ox1), in raster order, with the
 * requantization mode a constant at each call site (see conv_packed_box) so every
 * copy has its output stage inlined without a test. */
static OCTO_ALWAYS_INLINE void conv_packed_loops(const octo_conv_params_t *p, const octo_requant_t *q,
                                                 const octo_dims_t *in_dims, const int8_t *in,
                                                 const octo_dims_t *filter_dims, const int16_t *wpack,
                                                 const int8_t *w8, const int32_t *bias_full, int8_t *patch,
                                                 const octo_dims_t *out_dims, int8_t *out, const int mode, const int32_t oy0, const int32_t oy1,
                                                 const int32_t ox0, const int32_t ox1) {
    const int32_t C = in_dims->c, H = in_dims->h, W = in_dims->w;
    const int32_t OC = out_dims->c, OW = out_dims->w;
    const int32_t kh = filter_dims->h, kw = filter_dims->w;
    const int32_t row = kw * C;                            /* patch bytes per kernel row */
    const int32_t len = octo_conv_s8_packed_patch_len(filter_dims);
    const int32_t groups = len >> 2;
    const int32_t blocks = (OC + OCB - 1) / OCB;
    const int32_t full = OC / OCB; /* whole blocks */
#if OCTO_HAVE_MVE
    const int32_t first_loop_block = 0; /* the block loop below does them all */
    const int32_t plen = len;
    (void)full;
    (void)w8;
#else
    const int32_t first_loop_block = full; /* dot_pixel does the whole blocks; the loop, a last partial one */
    const int32_t len8 = (kh * kw * C + 7) & ~7; /* the 1-byte layout's patch: whole pairs of groups */
    const int32_t plen = w8 != NULL ? len8 : len;
    int16_t *x16 = (int16_t *)(void *)&patch[len8]; /* its expanded copy (dot_pixel8) */
    const int direct = kh == 1 && kw == 1 && plen == C;
    const int one_pass = OC % OCB == 0 && full <= CONV_ACC_BLOCKS; /* every sum of a pixel before its first store */
#endif
    const int8_t zp = (int8_t)(-p->input_offset); /* padding value: the input zero point */
    const int32_t out_off = p->output_offset, act_min = p->act_min, act_max = p->act_max;
    const int merged4 = mode == OCTO_RQ_MERGED || mode == OCTO_RQ_MERGED_FLOOR; /* four channels per store */
    const uint32_t lo4 = 0x01010101u * (uint8_t)(int8_t)act_min, hi4 = 0x01010101u * (uint8_t)(int8_t)act_max;
    memset(&patch[kh * row], 0, (size_t)(plen - kh * row)); /* round-up bytes meet zero weights */
    for (int32_t oy = oy0; oy < oy1; oy++) {
        const int32_t iy0 = oy * p->stride_h - p->pad_h;
        for (int32_t ox = ox0; ox < ox1; ox++) {
            const int32_t ix0 = ox * p->stride_w - p->pad_w;
#if OCTO_HAVE_MVE
            const int32_t kx0 = ix0 < 0 ? -ix0 : 0;
            const int32_t kx1 = (W - ix0) < kw ? (W - ix0) : kw;
            /* Interior pixel: its kh rows are read in place, no patch, unless the pixel's output overlaps them
             * (the converter may run a layer in place, trusting the kernel to gather a pixel before writing it). */
            const int8_t *x = kx0 == 0 && kx1 == kw && iy0 >= 0 && iy0 + kh <= H ? &in[(iy0 * W + ix0) * C] : NULL;
            int8_t *o = &out[(oy * OW + ox) * OC];
            if (x != NULL && (o + OC <= x || o >= x + (kh - 1) * W * C + row)) {
                const int8_t *wrows = (const int8_t *)(const void *)wpack; /* the Helium layout: int8 rows */
                for (int32_t b = 0; b < blocks; b++) {
                    int32_t acc[OCB];
                    conv_bias_block(bias_full, b, OC, acc);
                    dot4_mve(x, W * C, kh, row, &wrows[b * OCB * len], len, acc);
                    const int32_t oc = b * OCB;
                    if (merged4 && OC - oc >= OCB) {
                        octo_requant_store4_merged(acc[0], acc[1], acc[2], acc[3], &q->multiplier[oc],
                                                   &q->merged[3 * oc], out_off, lo4, hi4,
                                                   mode == OCTO_RQ_MERGED_FLOOR, &o[oc]);
                        continue;
                    }
                    octo_requant_store(acc, OC - oc < OCB ? OC - oc : OCB, &q->multiplier[oc], &q->shift[oc],
                                       merged4 ? &q->merged[3 * oc] : NULL, out_off, act_min, act_max, mode, &o[oc]);
                }
                continue;
            }
#endif
            const int8_t *src = patch; /* the receptive field, gathered */
#if !OCTO_HAVE_MVE
            int8_t *o = &out[(oy * OW + ox) * OC];
            /* 1x1 kernel, C a multiple of 4, pixel inside the image: its C input bytes are the patch, read in place
             * unless this pixel's output overlaps them (a layer run in place) and some output is stored before the
             * last read (more than one dot_pixel call, or a partial block) */
            if (direct && iy0 >= 0 && iy0 < H && ix0 >= 0 && ix0 < W) {
                const int8_t *x = &in[(iy0 * W + ix0) * C];
                if (w8 != NULL || one_pass || o + OC <= x || o >= x + C) { /* x16 is a copy */
                    src = x;
                }
            }
#endif
            if (src == patch) {
                fill_patch(in_dims, in, kh, kw, iy0, ix0, zp, patch);
            }
#if !OCTO_HAVE_MVE
            if (w8 != NULL) {
                expand_patch(src, x16, len8);
            }
            /* whole blocks, up to CONV_ACC_BLOCKS at a time: raw sums first, then the output stage */
            for (int32_t b0 = 0; b0 < full; b0 += CONV_ACC_BLOCKS) {
                const int32_t nb = full - b0 < CONV_ACC_BLOCKS ? full - b0 : CONV_ACC_BLOCKS;
                int32_t accs[CONV_ACC_BLOCKS * OCB];
                if (w8 != NULL) {
                    dot_pixel8(x16, &w8[b0 * len8 * OCB], &bias_full[b0 * OCB], accs, len8, nb);
                } else {
                    dot_pixel(src, &wpack[b0 * len * OCB], &bias_full[b0 * OCB], accs, len, nb);
                }
                const int32_t c0 = b0 * OCB;
                if (merged4) {
                    const int32_t *a = accs, *mu = &q->multiplier[c0], *mg = &q->merged[3 * c0];
                    int8_t *ob = &o[c0];
                    for (int32_t b = 0; b < nb; b++, a += OCB, mu += OCB, mg += 3 * OCB, ob += OCB) {
                        octo_requant_store4_merged(a[0], a[1], a[2], a[3], mu, mg, out_off, lo4, hi4,
                                                   mode == OCTO_RQ_MERGED_FLOOR, ob);
                    }
                } else {
                    octo_requant_store(accs, nb * OCB, &q->multiplier[c0], &q->shift[c0], NULL, out_off, act_min,
                                       act_max, mode, &o[c0]);
                }
            }
#endif
            for (int32_t b = first_loop_block; b < blocks; b++) {
                int32_t acc[OCB];
                conv_bias_block(bias_full, b, OC, acc);
#if OCTO_HAVE_MVE
                (void)groups;
                dot4_mve(patch, 0, 1, len, &((const int8_t *)(const void *)wpack)[b * OCB * len], len, acc);
#else
                if (w8 != NULL) {
                    dot_pixel8(x16, &w8[b * len8 * OCB], acc, acc, len8, 1);
                } else {
                    dot_groups(src, &wpack[b * len * OCB], groups, acc);
                }
#endif
                const int32_t oc = b * OCB;
                if (merged4 && OC - oc >= OCB) {
                    octo_requant_store4_merged(acc[0], acc[1], acc[2], acc[3], &q->multiplier[oc], &q->merged[3 * oc],
                                               out_off, lo4, hi4, mode == OCTO_RQ_MERGED_FLOOR, &o[oc]);
                    continue;
                }
                octo_requant_store(acc, OC - oc < OCB ? OC - oc : OCB, &q->multiplier[oc], &q->shift[oc],
                                   merged4 ? &q->merged[3 * oc] : NULL, out_off, act_min, act_max, mode, &o[oc]);
            }
        }
    }
}

#if !OCTO_HAVE_MVE
/* The 1-byte layout on an image of more than one output pixel (octo_conv_s8_packed8): output channels in
 * blocks of two, two pixels at a time, so the SXTB16 of each weight word serves both. x16 holds, per group of
 * four patch bytes, pixel A's pairs [x0 x2] [x1 x3] then pixel B's (four words); the weights, per group, one
 * word per channel (two words). For each of nblocks blocks, accA/accB[2b..2b+1] = bias[2b..2b+1] + the dots.
 * The DSP loop takes two groups per turn: per group one LDM of the activations, one LDM of the weights,
 * 4 SXTB16 and 8 SMLAD: 30 instructions for 32 MACs, as the 2-byte layout. */
#if OCTO_HAVE_DSP
__attribute__((naked, noinline)) static void dot_pair(OCTO_ASM_ARG const int16_t *x16, OCTO_ASM_ARG const int8_t *w8,
                                                      OCTO_ASM_ARG const int32_t *bias, OCTO_ASM_ARG int32_t *acc_a,
                                                      OCTO_ASM_ARG int32_t *acc_b, OCTO_ASM_ARG int32_t len8,
                                                      OCTO_ASM_ARG int32_t nblocks) {
#define OCTO_DOT_PAIR_GROUP                                                                                     \
    "ldmia r10!, {r2, r3, r8, r9}\n\t"                                                                         \
    "ldmia r11!, {r0, r1}\n\t"                                                                                 \
    "sxtb16 lr, r0\n\t"                                                                                        \
    "sxtb16 r0, r0, ror #8\n\t"                                                                                \
    "smlad r4, r2, lr, r4\n\t"                                                                                 \
    "smlad r4, r3, r0, r4\n\t"                                                                                 \
    "smlad r6, r8, lr, r6\n\t"                                                                                 \
    "smlad r6, r9, r0, r6\n\t"                                                                                 \
    "sxtb16 lr, r1\n\t"                                                                                        \
    "sxtb16 r1, r1, ror #8\n\t"                                                                                \
    "smlad r5, r2, lr, r5\n\t"                                                                                 \
    "smlad r5, r3, r1, r5\n\t"                                                                                 \
    "smlad r7, r8, lr, r7\n\t"                                                                                 \
    "smlad r7, r9, r1, r7\n\t"
    __asm volatile(
        "push {r4-r11, lr}\n\t"        /* 36 bytes: acc_b at [sp, #36], len8 at [sp, #40], nblocks at [sp, #44] */
        "ldr r12, [sp, #40]\n\t"
        "add r12, r0, r12, lsl #2\n\t" /* end of x16: 4 * len8 bytes */
        "mov r10, r0\n\t"
        "mov r11, r1\n\t"
        "push {r0, r2, r3}\n\t"        /* [sp] = x16, [sp, #4] = bias, [sp, #8] = acc_a; acc_b at [sp, #48] */
        "2:\n\t"
        "ldr lr, [sp, #4]\n\t"
        "ldmia lr!, {r4, r5}\n\t"
        "str lr, [sp, #4]\n\t"
        "mov r6, r4\n\t"
        "mov r7, r5\n\t"
        "1:\n\t"
        OCTO_DOT_PAIR_GROUP
        OCTO_DOT_PAIR_GROUP
        "cmp r10, r12\n\t"
        "bne 1b\n\t"
        "ldr r0, [sp, #8]\n\t"
        "stmia r0!, {r4, r5}\n\t"
        "str r0, [sp, #8]\n\t"
        "ldr r0, [sp, #48]\n\t"
        "stmia r0!, {r6, r7}\n\t"
        "str r0, [sp, #48]\n\t"
        "ldr r10, [sp]\n\t"
        "ldr r0, [sp, #56]\n\t"
        "subs r0, r0, #1\n\t"
        "str r0, [sp, #56]\n\t"
        "bne 2b\n\t"
        "add sp, sp, #12\n\t"
        "pop {r4-r11, pc}\n\t");
#undef OCTO_DOT_PAIR_GROUP
}
#else
static void dot_pair(const int16_t *x16, const int8_t *w8, const int32_t *bias, int32_t *acc_a, int32_t *acc_b,
                     int32_t len8, int32_t nblocks) {
    for (int32_t b = 0; b < nblocks; b++, bias += 2, acc_a += 2, acc_b += 2) {
        int32_t a0 = bias[0], a1 = bias[1], b0 = bias[0], b1 = bias[1];
        const int16_t *x = x16;
        for (int32_t g = 0; g < len8 >> 2; g++, w8 += 8, x += 8) {
            const uint32_t xa02 = octo_read_u32(&x[0]), xa13 = octo_read_u32(&x[2]);
            const uint32_t xb02 = octo_read_u32(&x[4]), xb13 = octo_read_u32(&x[6]);
            const uint32_t w0 = octo_read_u32(&w8[0]), w1 = octo_read_u32(&w8[4]);
            const uint32_t w0e = octo_sxtb16(w0), w0o = octo_sxtb16_ror8(w0);
            const uint32_t w1e = octo_sxtb16(w1), w1o = octo_sxtb16_ror8(w1);
            a0 = octo_smlad(xa13, w0o, octo_smlad(xa02, w0e, a0));
            b0 = octo_smlad(xb13, w0o, octo_smlad(xb02, w0e, b0));
            a1 = octo_smlad(xa13, w1o, octo_smlad(xa02, w1e, a1));
            b1 = octo_smlad(xb13, w1o, octo_smlad(xb02, w1e, b1));
        }
        acc_a[0] = a0;
        acc_a[1] = a1;
        acc_b[0] = b0;
        acc_b[1] = b1;
    }
}
#endif

/* x16 = the len8 bytes at a and at b as SXTB16 lane pairs, interleaved per group (see dot_pair). */
static void expand_pair(const int8_t *a, const int8_t *b, int16_t *x16, int32_t len8) {
    uint32_t *d = (uint32_t *)(void *)x16;
#if OCTO_HAVE_DSP
    const uint32_t *end = d + len8; /* 4 words per group of 4 bytes; len8 a multiple of 8: two groups per turn */
    __asm volatile(
        "1:\n\t"
        "ldr r4, [%[a]], #4\n\t"
        "ldr r5, [%[b]], #4\n\t"
        "sxtb16 r6, r4\n\t"
        "sxtb16 r7, r4, ror #8\n\t"
        "sxtb16 r8, r5\n\t"
        "sxtb16 r9, r5, ror #8\n\t"
        "stmia %[d]!, {r6-r9}\n\t"
        "ldr r4, [%[a]], #4\n\t"
        "ldr r5, [%[b]], #4\n\t"
        "sxtb16 r6, r4\n\t"
        "sxtb16 r7, r4, ror #8\n\t"
        "sxtb16 r8, r5\n\t"
        "sxtb16 r9, r5, ror #8\n\t"
        "stmia %[d]!, {r6-r9}\n\t"
        "cmp %[d], %[end]\n\t"
        "bne 1b\n\t"
        : [a] "+r"(a), [b] "+r"(b), [d] "+r"(d)
        : [end] "r"(end)
        : "r4", "r5", "r6", "r7", "r8", "r9", "cc", "memory");
#else
    for (int32_t i = 0; i < len8; i += 4, d += 4) {
        const uint32_t xa = octo_read_u32(&a[i]), xb = octo_read_u32(&b[i]);
        d[0] = octo_sxtb16(xa);
        d[1] = octo_sxtb16_ror8(xa);
        d[2] = octo_sxtb16(xb);
        d[3] = octo_sxtb16_ror8(xb);
    }
#endif
}

/* Output pixel pix's receptive field: its input bytes in place (1x1 kernel, len8 == C, inside the image), or
 * gathered into patch (padding taps = the input zero point). */
static const int8_t *gather8(const octo_conv_params_t *p, const octo_dims_t *in_dims, const int8_t *in, int32_t kh,
                             int32_t kw, int32_t len8, int32_t OW, int32_t pix, int8_t *patch) {
    const int32_t C = in_dims->c, H = in_dims->h, W = in_dims->w;
    const int32_t iy0 = (pix / OW) * p->stride_h - p->pad_h, ix0 = (pix % OW) * p->stride_w - p->pad_w;
    const int8_t zp = (int8_t)(-p->input_offset);
    if (kh == 1 && kw == 1 && len8 == C && iy0 >= 0 && iy0 < H && ix0 >= 0 && ix0 < W) {
        return &in[(iy0 * W + ix0) * C];
    }
    fill_patch(in_dims, in, kh, kw, iy0, ix0, zp, patch);
    return patch;
}

#define PAIR_ACC 128 /* channels whose raw sums one pixel pair holds on the stack (1 KiB) */

/* The output stage of n channels from c0 of one pixel. */
static OCTO_ALWAYS_INLINE void store_run(const octo_requant_t *q, const int32_t *acc, int32_t c0, int32_t n,
                                         int32_t out_off, int32_t act_min, int32_t act_max, uint32_t lo4,
                                         uint32_t hi4, const int mode, int8_t *o) {
    const int merged4 = mode == OCTO_RQ_MERGED || mode == OCTO_RQ_MERGED_FLOOR;
    if (!merged4) {
        octo_requant_store(acc, n, &q->multiplier[c0], &q->shift[c0], NULL, out_off, act_min, act_max, mode, &o[c0]);
        return;
    }
    int32_t c = 0;
    for (; c + OCB <= n; c += OCB) {
        octo_requant_store4_merged(acc[c], acc[c + 1], acc[c + 2], acc[c + 3], &q->multiplier[c0 + c],
                                   &q->merged[3 * (c0 + c)], out_off, lo4, hi4, mode == OCTO_RQ_MERGED_FLOOR,
                                   &o[c0 + c]);
    }
    if (c < n) {
        octo_requant_store(&acc[c], n - c, &q->multiplier[c0 + c], &q->shift[c0 + c], &q->merged[3 * (c0 + c)],
                           out_off, act_min, act_max, mode, &o[c0 + c]);
    }
}

/* octo_conv_s8_packed8 on an image of more than one output pixel, pixels in raster order two at a time (an odd
 * last one with itself): both are expanded before any store, so a layer run in place reads each pixel before
 * its output is written. scratch: 6 * len8 bytes (two patches, then x16). */
static OCTO_ALWAYS_INLINE void conv_pair_loops(const octo_conv_params_t *p, const octo_requant_t *q,
                                               const octo_dims_t *in_dims, const int8_t *in,
                                               const octo_dims_t *filter_dims, const int8_t *w8,
                                               const int32_t *bias_full, int8_t *scratch,
                                               const octo_dims_t *out_dims, int8_t *out, const int mode) {
    const int32_t C = in_dims->c, OC = out_dims->c, OW = out_dims->w, npix = out_dims->h * out_dims->w;
    const int32_t kh = filter_dims->h, kw = filter_dims->w;
    const int32_t len8 = octo_conv_s8_packed8_patch_len(filter_dims);
    const int32_t oc4 = (OC + OCB - 1) / OCB * OCB; /* channels with weights (zero past OC) */
    int8_t *patch_a = scratch, *patch_b = &scratch[len8];
    int16_t *x16 = (int16_t *)(void *)&scratch[2 * len8];
    const int32_t out_off = p->output_offset, act_min = p->act_min, act_max = p->act_max;
    const uint32_t lo4 = 0x01010101u * (uint8_t)(int8_t)act_min, hi4 = 0x01010101u * (uint8_t)(int8_t)act_max;
    memset(&patch_a[kh * kw * C], 0, (size_t)(len8 - kh * kw * C)); /* round-up bytes meet zero weights */
    memset(&patch_b[kh * kw * C], 0, (size_t)(len8 - kh * kw * C));
    for (int32_t pix = 0; pix < npix; pix += 2) {
        const int32_t pix_b = pix + 1 < npix ? pix + 1 : pix;
        const int8_t *a = gather8(p, in_dims, in, kh, kw, len8, OW, pix, patch_a);
        const int8_t *b = gather8(p, in_dims, in, kh, kw, len8, OW, pix_b, patch_b);
        expand_pair(a, b, x16, len8);
        int8_t *oa = &out[pix * OC], *ob = &out[pix_b * OC];
        for (int32_t c0 = 0; c0 < oc4; c0 += PAIR_ACC) {
            const int32_t nc = oc4 - c0 < PAIR_ACC ? oc4 - c0 : PAIR_ACC;
            int32_t acc_a[PAIR_ACC], acc_b[PAIR_ACC];
            dot_pair(x16, &w8[c0 * len8], &bias_full[c0], acc_a, acc_b, len8, nc >> 1);
            const int32_t n = OC - c0 < nc ? OC - c0 : nc;
            store_run(q, acc_a, c0, n, out_off, act_min, act_max, lo4, hi4, mode, oa);
            if (pix_b != pix) {
                store_run(q, acc_b, c0, n, out_off, act_min, act_max, lo4, hi4, mode, ob);
            }
        }
    }
}

static void conv_pair(const octo_conv_params_t *p, const octo_requant_t *q, const octo_dims_t *in_dims,
                      const int8_t *in, const octo_dims_t *filter_dims, const int8_t *w8, const int32_t *bias_full,
                      int8_t *scratch, const octo_dims_t *out_dims, int8_t *out) {
    const int mode = octo_requant_mode_act(q->shift, q->merged, out_dims->c, p->output_offset, p->act_min);
    if (mode == OCTO_RQ_MERGED_FLOOR) {
        conv_pair_loops(p, q, in_dims, in, filter_dims, w8, bias_full, scratch, out_dims, out, OCTO_RQ_MERGED_FLOOR);
    } else if (mode == OCTO_RQ_MERGED) {
        conv_pair_loops(p, q, in_dims, in, filter_dims, w8, bias_full, scratch, out_dims, out, OCTO_RQ_MERGED);
    } else if (mode == OCTO_RQ_RIGHT) {
        conv_pair_loops(p, q, in_dims, in, filter_dims, w8, bias_full, scratch, out_dims, out, OCTO_RQ_RIGHT);
    } else {
        conv_pair_loops(p, q, in_dims, in, filter_dims, w8, bias_full, scratch, out_dims, out, OCTO_RQ_GENERAL);
    }
}
#endif

/* Argument checks shared by the full and the box entry points. */
static int conv_packed_check(const octo_conv_params_t *p, const octo_requant_t *q, const octo_dims_t *in_dims,
                             const int8_t *in, const octo_dims_t *filter_dims, const int16_t *wpack,
                             const int32_t *bias_full, const int8_t *patch, const octo_dims_t *out_dims,
                             const int8_t *out) {
    if (p == NULL || q == NULL || in_dims == NULL || in == NULL || filter_dims == NULL || wpack == NULL ||
        bias_full == NULL || patch == NULL || out_dims == NULL || out == NULL || q->multiplier == NULL ||
        q->shift == NULL) {
        return OCTO_E_ARG;
    }
    if (filter_dims->c != in_dims->c || filter_dims->n != out_dims->c || in_dims->n != 1 || out_dims->n != 1 ||
        p->dilation_h != 1 || p->dilation_w != 1) {
        return OCTO_E_ARG;
    }
    return OCTO_OK;
}

/* Picks the requantization mode once, then runs the loops over the box. */
static void conv_packed_box(const octo_conv_params_t *p, const octo_requant_t *q, const octo_dims_t *in_dims,
                            const int8_t *in, const octo_dims_t *filter_dims, const int16_t *wpack, const int8_t *w8,
                            const int32_t *bias_full, int8_t *patch, const octo_dims_t *out_dims, int8_t *out,
                            int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1) {
    const int mode = octo_requant_mode_act(q->shift, q->merged, out_dims->c, p->output_offset, p->act_min);
    if (mode == OCTO_RQ_MERGED_FLOOR) {
        conv_packed_loops(p, q, in_dims, in, filter_dims, wpack, w8, bias_full, patch, out_dims, out,
                          OCTO_RQ_MERGED_FLOOR, oy0, oy1, ox0, ox1);
    } else if (mode == OCTO_RQ_MERGED) {
        conv_packed_loops(p, q, in_dims, in, filter_dims, wpack, w8, bias_full, patch, out_dims, out, OCTO_RQ_MERGED,
                          oy0, oy1, ox0, ox1);
    } else if (mode == OCTO_RQ_RIGHT) {
        conv_packed_loops(p, q, in_dims, in, filter_dims, wpack, w8, bias_full, patch, out_dims, out, OCTO_RQ_RIGHT,
                          oy0, oy1, ox0, ox1);
    } else {
        conv_packed_loops(p, q, in_dims, in, filter_dims, wpack, w8, bias_full, patch, out_dims, out, OCTO_RQ_GENERAL,
                          oy0, oy1, ox0, ox1);
    }
}

int octo_conv_s8_packed(const octo_conv_params_t *p, const octo_requant_t *q, const octo_dims_t *in_dims,
                        const int8_t *in, const octo_dims_t *filter_dims, const int16_t *wpack,
                        const int32_t *bias_full, int8_t *patch, const octo_dims_t *out_dims, int8_t *out) {
    const int st = conv_packed_check(p, q, in_dims, in, filter_dims, wpack, bias_full, patch, out_dims, out);
    if (st != OCTO_OK) {
        return st;
    }
    conv_packed_box(p, q, in_dims, in, filter_dims, wpack, NULL, bias_full, patch, out_dims, out, 0, out_dims->h, 0,
                    out_dims->w);
    return OCTO_OK;
}

int octo_conv_s8_packed_box(const octo_conv_params_t *p, const octo_requant_t *q, const octo_dims_t *in_dims,
                            const int8_t *in, const octo_dims_t *filter_dims, const int16_t *wpack,
                            const int32_t *bias_full, int8_t *patch, const octo_dims_t *out_dims, int8_t *out,
                            int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1) {
    const int st = conv_packed_check(p, q, in_dims, in, filter_dims, wpack, bias_full, patch, out_dims, out);
    if (st != OCTO_OK) {
        return st;
    }
    if (oy0 < 0 || oy0 > oy1 || oy1 > out_dims->h || ox0 < 0 || ox0 > ox1 || ox1 > out_dims->w) {
        return OCTO_E_ARG;
    }
    conv_packed_box(p, q, in_dims, in, filter_dims, wpack, NULL, bias_full, patch, out_dims, out, oy0, oy1, ox0, ox1);
    return OCTO_OK;
}

int octo_conv_s8_packed8(const octo_conv_params_t *p, const octo_requant_t *q, const octo_dims_t *in_dims,
                         const int8_t *in, const octo_dims_t *filter_dims, const int8_t *wpack8,
                         const int32_t *bias_full, int8_t *scratch, const octo_dims_t *out_dims, int8_t *out) {
    const int16_t *as16 = (const int16_t *)(const void *)wpack8; /* only for the argument check */
    const int st = conv_packed_check(p, q, in_dims, in, filter_dims, as16, bias_full, scratch, out_dims, out);
    if (st != OCTO_OK) {
        return st;
    }
#if OCTO_HAVE_MVE
    /* Helium reads its own int8 rows (the converter emits them in place of this layout) through the wpack path */
    conv_packed_box(p, q, in_dims, in, filter_dims, as16, NULL, bias_full, scratch, out_dims, out, 0, out_dims->h,
                    0, out_dims->w);
#else
    if (out_dims->h * out_dims->w > 1) {
        conv_pair(p, q, in_dims, in, filter_dims, wpack8, bias_full, scratch, out_dims, out);
    } else {
        conv_packed_box(p, q, in_dims, in, filter_dims, NULL, wpack8, bias_full, scratch, out_dims, out, 0, 1, 0, 1);
    }
#endif
    return OCTO_OK;
}
