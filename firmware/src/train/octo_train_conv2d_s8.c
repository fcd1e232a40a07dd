/* octo_train_conv2d_s8.c - CONV_2D, INT8 training: forward, input gradient,
 * weight gradient, int32 accumulation with SXTB16 + SMLAD (octo_dsp.h), and the
 * blocked kernels the INT8 training layers share (octo_train_internal.h).
 *
 * forward      the weights are expanded once per call to int16 pairs, four
 *              output channels per block (octo_tr_blk4_s8). Per output pixel
 *              every kernel row ky inside the image is one contiguous run of x
 *              (taps kx0..kx1 of KW*C bytes); one 32-bit load of x, unpacked by
 *              SXTB16, feeds eight SMLAD (four channels x two pairs). Runs whose
 *              start or length is not a multiple of four bytes (possible when
 *              in_c is not) are copied to a zero-padded row first.
 * input grad   the same kernel on the transposed conv: for an input pixel and
 *              a kernel row, the taps kx reaching it (every stride_w-th one)
 *              read consecutive dy pixels, so each is one contiguous run of dy
 *              against weights expanded per block of four input channels in
 *              the order [ky][kx class][kx descending][out_c] (out_c a multiple
 *              of 4; else the transposed-weight dot of the portable loop).
 * weight grad  positions eight at a time: their receptive fields and dy rows
 *              are staged as int16 [k][8] and [o][8] so one SMLAD adds two
 *              positions' products and one read-modify-write of dw[o][k] adds
 *              eight (octo_tr_rank8_s8).
 *
 * Every sum is an exact int32 sum of the same int8 products (bounded by
 * OCTO_TRAIN_S8_MAX_TERMS), so the order of the additions does not matter: the
 * assembly on DSP cores and the C below give the same bits. */
#include <string.h>

#include "octo_train_internal.h"

/* ---------------------------------------------------------------------------------------------- */
/* The blocked kernels                                                                            */
/* ---------------------------------------------------------------------------------------------- */

#if OCTO_HAVE_DSP && defined(__thumb2__)
/* Thumb-2: LDM brings four expanded weight words per instruction, so a group
 * of four activations x four outputs costs LDR + 2 SXTB16 + 2 LDM + 8 SMLAD. */
#define OCTO_TR_B4_GROUP                                                                                               \
    "ldr r7, [r4], #4\n\t"                                                                                             \
    "sxtb16 r8, r7, ror #8\n\t"                                                                                        \
    "sxtb16 r7, r7\n\t"                                                                                                \
    "ldm r5!, {r9, r10, r11, r12}\n\t"                                                                                 \
    "smlad r0, r7, r9, r0\n\t"                                                                                         \
    "smlad r0, r8, r10, r0\n\t"                                                                                        \
    "smlad r1, r7, r11, r1\n\t"                                                                                        \
    "smlad r1, r8, r12, r1\n\t"                                                                                        \
    "ldm r5!, {r9, r10, r11, r12}\n\t"                                                                                 \
    "smlad r2, r7, r9, r2\n\t"                                                                                         \
    "smlad r2, r8, r10, r2\n\t"                                                                                        \
    "smlad r3, r7, r11, r3\n\t"                                                                                        \
    "smlad r3, r8, r12, r3\n\t"

/* job (r0): seg 0, nseg 4, w 8, wstride 12, nblk 16, init 20, out 24, act 28, hi 32,
 * copied to the frame: [sp] end of the segment list, [sp+4] the block's weights,
 * [sp+8] wstride, [sp+12] blocks left, [sp+16] init, [sp+20] out, [sp+24] the
 * segment list, [sp+28] act, [sp+32] hi. Registers in the loop: r0-r3 the sums,
 * r4 activations, r5 weights, r6 end of the run, r7/r8 unpacked activations,
 * r9-r12 weights, lr the segment list. */
#define OCTO_TR_B4_RELU(r) "asr r5, " r ", #31\n\tbic " r ", " r ", r5\n\t"
#define OCTO_TR_B4_MIN(r) "cmp " r ", r5\n\tit gt\n\tmovgt " r ", r5\n\t"

__asm__(".section .text.octo_tr_blk4_s8,\"ax\",%progbits\n\t"
        ".syntax unified\n\t"
        ".thumb\n\t"
        ".p2align 2\n\t"
        ".global octo_tr_blk4_s8\n\t"
        ".type octo_tr_blk4_s8, %function\n\t"
        ".thumb_func\n"
        "octo_tr_blk4_s8:\n\t"
        "push {r4-r11, lr}\n\t"
        "sub sp, sp, #36\n\t"
        "ldm r0, {r1-r7}\n\t"
        "add r2, r2, r2, lsl #1\n\t"
        "add r2, r1, r2, lsl #2\n\t"
        "stm sp, {r2-r7}\n\t"
        "str r1, [sp, #24]\n\t"
        "ldr r1, [r0, #28]\n\t"
        "ldr r2, [r0, #32]\n\t"
        "strd r1, r2, [sp, #28]\n"
        ".Lb4_blk:\n\t"
        "ldr r4, [sp, #16]\n\t"
        "cbz r4, .Lb4_zero\n\t"
        "ldm r4!, {r0-r3}\n\t"
        "str r4, [sp, #16]\n\t"
        "b .Lb4_segs\n"
        ".Lb4_zero:\n\t"
        "movs r0, #0\n\t"
        "movs r1, #0\n\t"
        "movs r2, #0\n\t"
        "movs r3, #0\n"
        ".Lb4_segs:\n\t"
        "ldr lr, [sp, #24]\n\t"
        "ldr r7, [sp, #0]\n\t"
        "cmp lr, r7\n\t"
        "beq .Lb4_store\n"
        ".Lb4_seg:\n\t"
        "ldm lr!, {r4, r5, r6}\n\t"
        "ldr r7, [sp, #4]\n\t"
        "add r5, r5, r7\n\t"
        "lsls r7, r6, #31\n\t"
        "add r6, r4, r6, lsl #2\n\t"
        "bne .Lb4_odd\n"
        ".Lb4_loop:\n\t"
        OCTO_TR_B4_GROUP
        ".Lb4_odd:\n\t"
        OCTO_TR_B4_GROUP
        "cmp r4, r6\n\t"
        "bne .Lb4_loop\n\t"
        "ldr r7, [sp, #0]\n\t"
        "cmp lr, r7\n\t"
        "bne .Lb4_seg\n"
        ".Lb4_store:\n\t"
        "ldr r4, [sp, #28]\n\t"
        "cbz r4, .Lb4_put\n\t"
        OCTO_TR_B4_RELU("r0") OCTO_TR_B4_RELU("r1") OCTO_TR_B4_RELU("r2") OCTO_TR_B4_RELU("r3")
        "cmp r4, #2\n\t"
        "bne .Lb4_put\n\t"
        "ldr r5, [sp, #32]\n\t"
        OCTO_TR_B4_MIN("r0") OCTO_TR_B4_MIN("r1") OCTO_TR_B4_MIN("r2") OCTO_TR_B4_MIN("r3")
        ".Lb4_put:\n\t"
        "ldr r4, [sp, #20]\n\t"
        "stm r4!, {r0-r3}\n\t"
        "str r4, [sp, #20]\n\t"
        "ldrd r5, r6, [sp, #4]\n\t"
        "add r5, r5, r6\n\t"
        "str r5, [sp, #4]\n\t"
        "ldr r5, [sp, #12]\n\t"
        "subs r5, r5, #1\n\t"
        "str r5, [sp, #12]\n\t"
        "bne .Lb4_blk\n\t"
        "add sp, sp, #36\n\t"
        "pop {r4-r11, pc}\n\t"
        ".size octo_tr_blk4_s8, .-octo_tr_blk4_s8\n\t"
        ".text");

/* job (r0) offsets: pe 0, de 4, dw 8, nk 12, no 16. Registers: r0-r3 the
 * four dy pairs of output o, r4-r7 four patch pairs, r8/r9 dw[o][k], dw[o][k+1].
 * Frame: [sp] outputs left, [sp+4] pe, [sp+8] pe end, [sp+12] nk. Per row: one
 * k if nk is odd, two if bit 1 of nk is set, then four per iteration. */
#define OCTO_TR_R8_K(acc)                                                                                              \
    "ldm r10!, {r4-r7}\n\t"                                                                                            \
    "smlad " acc ", r0, r4, " acc "\n\t"                                                                               \
    "smlad " acc ", r1, r5, " acc "\n\t"                                                                               \
    "smlad " acc ", r2, r6, " acc "\n\t"                                                                               \
    "smlad " acc ", r3, r7, " acc "\n\t"
#define OCTO_TR_R8_PAIR "ldrd r8, r9, [r11]\n\t" OCTO_TR_R8_K("r8") OCTO_TR_R8_K("r9") "strd r8, r9, [r11], #8\n\t"

__asm__(".section .text.octo_tr_rank8_s8,\"ax\",%progbits\n\t"
        ".syntax unified\n\t"
        ".thumb\n\t"
        ".p2align 2\n\t"
        ".global octo_tr_rank8_s8\n\t"
        ".type octo_tr_rank8_s8, %function\n\t"
        ".thumb_func\n"
        "octo_tr_rank8_s8:\n\t"
        "push {r4-r11, lr}\n\t"
        "sub sp, sp, #20\n\t"
        "ldr r10, [r0, #0]\n\t"
        "ldr lr, [r0, #4]\n\t"
        "ldr r11, [r0, #8]\n\t"
        "ldr r12, [r0, #12]\n\t"
        "ldr r1, [r0, #16]\n\t"
        "str r1, [sp, #0]\n\t"
        "str r10, [sp, #4]\n\t"
        "str r12, [sp, #12]\n\t"
        "add r12, r10, r12, lsl #4\n\t"
        "str r12, [sp, #8]\n"
        ".Lr8_row:\n\t"
        "ldm lr!, {r0-r3}\n\t"
        "ldr r10, [sp, #4]\n\t"
        "ldr r12, [sp, #8]\n\t"
        "ldr r8, [sp, #12]\n\t"
        "lsls r8, r8, #31\n\t" /* N = bit 0 of nk, C = bit 1 */
        "bpl .Lr8_two\n\t"
        "ldr r8, [r11]\n\t"
        OCTO_TR_R8_K("r8")
        "str r8, [r11], #4\n"
        ".Lr8_two:\n\t"
        "bcc .Lr8_four\n\t"
        OCTO_TR_R8_PAIR
        ".Lr8_four:\n\t"
        "cmp r10, r12\n\t"
        "beq .Lr8_next\n"
        ".Lr8_loop:\n\t"
        OCTO_TR_R8_PAIR
        OCTO_TR_R8_PAIR
        "cmp r10, r12\n\t"
        "bne .Lr8_loop\n"
        ".Lr8_next:\n\t"
        "ldr r8, [sp, #0]\n\t"
        "subs r8, r8, #1\n\t"
        "str r8, [sp, #0]\n\t"
        "bne .Lr8_row\n\t"
        "add sp, sp, #20\n\t"
        "pop {r4-r11, pc}\n\t"
        ".size octo_tr_rank8_s8, .-octo_tr_rank8_s8\n\t"
        ".text");

#else /* portable: the same sums with the octo_dsp.h primitives */

void octo_tr_blk4_s8(const octo_tr_blk4_t *job) {
    const uint8_t *wb = (const uint8_t *)job->w;
    for (int32_t blk = 0; blk < job->nblk; blk++, wb += job->wstride) {
        int32_t acc[4] = {0, 0, 0, 0};
        if (job->init != NULL) {
            memcpy(acc, &job->init[4 * blk], sizeof acc);
        }
        for (int32_t s = 0; s < job->nseg; s++) {
            const octo_tr_seg_t *sg = &job->seg[s];
            const uint32_t *w = (const uint32_t *)(const void *)(wb + sg->woff);
            for (int32_t g = 0; g < sg->n; g++, w += 8) {
                const uint32_t v = octo_read_u32(&sg->a[4 * g]);
                const uint32_t lo = octo_sxtb16(v), hi = octo_sxtb16_ror8(v);
                for (int32_t j = 0; j < 4; j++) {
                    acc[j] = octo_smlad(lo, w[2 * j], acc[j]);
                    acc[j] = octo_smlad(hi, w[2 * j + 1], acc[j]);
                }
            }
        }
        for (int32_t j = 0; j < 4; j++) {
            acc[j] = octo_tr_act_s32(acc[j], job->act, job->hi);
        }
        memcpy(&job->out[4 * blk], acc, sizeof acc);
    }
}

void octo_tr_rank8_s8(const octo_tr_rank8_t *job) {
    for (int32_t o = 0; o < job->no; o++) {
        const uint32_t *d = &job->de[4 * o];
        int32_t *row = &job->dw[o * job->nk];
        for (int32_t k = 0; k < job->nk; k++) {
            const uint32_t *pk = &job->pe[4 * k];
            int32_t acc = row[k];
            for (int32_t i = 0; i < 4; i++) {
                acc = octo_smlad(d[i], pk[i], acc);
            }
            row[k] = acc;
        }
    }
}
#endif

/* ---------------------------------------------------------------------------------------------- */

static int32_t round_up(int32_t v, int32_t m) {
    return (v + m - 1) / m * m;
}

static size_t round_up_z(size_t v, size_t m) {
    return (v + m - 1) / m * m;
}

/* Segments of one output (at most OCTO_TR_SEGS per kernel call; longer lists are
 * run in pieces through tmp, each piece starting from the previous sums). */
#define OCTO_TR_SEGS 8

typedef struct {
    octo_tr_seg_t seg[OCTO_TR_SEGS];
    octo_tr_blk4_t job; /* seg, w, wstride, nblk and hi fixed; the rest per output */
    const int32_t *init;
    int32_t *tmp;
    int32_t act;   /* the fused activation, applied once all segments are in */
    int32_t split; /* the segments of this output did not fit in one call */
} seg_list_t;

static void seg_init(seg_list_t *l, const uint32_t *w, int32_t wstride, int32_t nblk, const int32_t *init,
                     int32_t *tmp, int32_t act, int32_t hi) {
    l->job.seg = l->seg;
    l->job.nseg = 0;
    l->job.w = w;
    l->job.wstride = wstride;
    l->job.nblk = nblk;
    l->job.hi = hi;
    l->init = init;
    l->tmp = tmp;
    l->act = act;
    l->split = 0;
}

static void seg_run(seg_list_t *l, const int32_t *init, int32_t *out, int32_t act) {
    l->job.init = init;
    l->job.out = out;
    l->job.act = act;
    octo_tr_blk4_s8(&l->job);
}

/* Start the segment list of a new output. */
static void seg_reset(seg_list_t *l) {
    l->job.nseg = 0;
    l->split = 0;
}

static void seg_add(seg_list_t *l, const int8_t *a, int32_t woff, int32_t n) {
    if (l->job.nseg == OCTO_TR_SEGS) {
        seg_run(l, l->split ? l->tmp : l->init, l->tmp, OCTO_TRAIN_ACT_NONE);
        l->job.nseg = 0;
        l->split = 1;
    }
    octo_tr_seg_t *sg = &l->seg[l->job.nseg++];
    sg->a = a;
    sg->woff = woff;
    sg->n = n;
}

/* Run the list into out (any nb <= 4*nblk of its sums wanted: through tmp if fewer). */
static void seg_out(seg_list_t *l, int32_t *out, int32_t nb) {
    const int32_t *init = l->split ? l->tmp : l->init;
    if (nb == 4 * l->job.nblk) {
        seg_run(l, init, out, l->act);
    } else {
        seg_run(l, init, l->tmp, l->act);
        memcpy(out, l->tmp, (size_t)nb * sizeof(int32_t));
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Forward                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

/* expanded weights 2*OC4*KH*R4, bias and block sums 2 x 4*OC4, zero-padded rows KH*R4
 * (OC4 = out_c rounded up to 4, R4 = kw*in_c rounded up to 4) */
size_t octo_train_conv2d_s8_fwd_scratch_size(const octo_dims_t *w_dims) {
    if (!octo_tr_dims_ok(w_dims)) {
        return 0;
    }
    const size_t oc4 = round_up_z((size_t)w_dims->n, 4), kh = (size_t)w_dims->h;
    const size_t r4 = round_up_z((size_t)w_dims->w * (size_t)w_dims->c, 4);
    return 2 * oc4 * kh * r4 + 8 * oc4 + kh * r4;
}

int octo_train_conv2d_s8_fwd(const octo_train_conv_params_t *p, const octo_dims_t *in_dims, const octo_train_q8_t *x,
                             const octo_dims_t *w_dims, const octo_train_q8_t *w, const float *bias, void *scratch,
                             const octo_dims_t *out_dims, octo_train_q32_t *y) {
    if (!octo_tr_q8_ok(x) || !octo_tr_q8_ok(w) || !octo_tr_q32_out_ok(y) || scratch == NULL ||
        !octo_tr_aligned4(scratch) || !octo_tr_conv_ok(p, in_dims, w_dims, out_dims, 0)) {
        return OCTO_E_ARG;
    }
    const int32_t H = in_dims->h, W = in_dims->w, C = in_dims->c;
    const int32_t OH = out_dims->h, OW = out_dims->w, OC = out_dims->c;
    const int32_t KH = w_dims->h, KW = w_dims->w;
    const int32_t K = KH * KW * C;
    const float acc_scale = x->scale * w->scale;
    if (K > OCTO_TRAIN_S8_MAX_TERMS || !octo_tr_scale_ok(acc_scale)) {
        return OCTO_E_ARG;
    }
    const int32_t row = KW * C, R4 = round_up(row, 4), G = R4 / 4;
    const int32_t OC4 = round_up(OC, 4), NB = OC4 / 4;
    uint32_t *wx = (uint32_t *)scratch; /* [OC4/4][KH][G][4 outputs x 2 words] */
    int32_t *bias_acc = (int32_t *)&wx[NB * KH * G * 8];
    int32_t *tmp = &bias_acc[OC4];
    int8_t *rows = (int8_t *)&tmp[OC4]; /* [KH][R4] */
    for (int32_t oc = 0; oc < OC4; oc++) {
        uint32_t *dst = &wx[(oc >> 2) * KH * G * 8 + 2 * (oc & 3)];
        if (oc >= OC) {
            for (int32_t g = 0; g < KH * G; g++, dst += 8) {
                dst[0] = dst[1] = 0;
            }
            continue;
        }
        const int8_t *src = &w->data[oc * K];
        if (row == R4) { /* whole groups: the [KH][KW*C] row of oc is one run */
            for (int32_t k = 0; k < K; k += 4, dst += 8) {
                octo_tr_expand4(octo_read_u32(&src[k]), dst);
            }
            continue;
        }
        for (int32_t ky = 0; ky < KH; ky++, src += row) {
            for (int32_t k = 0; k < R4; k += 4, dst += 8) {
                uint8_t t[4] = {0, 0, 0, 0};
                memcpy(t, &src[k], (size_t)octo_tr_min(4, row - k));
                octo_tr_expand4(octo_read_u32(t), dst);
            }
        }
    }
    const float inv = 1.0f / acc_scale;
    for (int32_t oc = 0; oc < OC4; oc++) {
        bias_acc[oc] = oc < OC ? octo_tr_bias_acc(bias, oc, inv) : 0;
    }
    const int32_t step = p->stride_w * C; /* x bytes from one output column to the next */
    seg_list_t l;
    seg_init(&l, wx, KH * G * OCTO_TR_GROUP_BYTES, NB, bias_acc, tmp, p->act, octo_tr_six(acc_scale));
    for (int32_t b = 0; b < in_dims->n; b++) {
        for (int32_t oy = 0; oy < OH; oy++) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            int32_t ky0, ky1;
            octo_tr_taps(iy0, KH, H, &ky0, &ky1);
            int32_t kept = 0, pk0 = 0, pk1 = 0; /* the segments of the previous column, shifted by step, serve */
            for (int32_t ox = 0; ox < OW; ox++) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                int32_t kx0, kx1;
                octo_tr_taps(ix0, KW, W, &kx0, &kx1);
                if (kept && kx0 == pk0 && kx1 == pk1) {
                    for (int32_t s = 0; s < l.job.nseg; s++) {
                        l.seg[s].a += step;
                    }
                } else {
                    seg_reset(&l);
                    const int32_t skip = kx0 * C, len = (kx1 - kx0) * C;
                    const int direct = ((skip | len) & 3) == 0;
                    for (int32_t ky = ky0; ky < ky1 && len > 0; ky++) {
                        const int8_t *src = &x->data[((b * H + iy0 + ky) * W + ix0 + kx0) * C];
                        if (direct) {
                            seg_add(&l, src, (ky * R4 + skip) * (OCTO_TR_GROUP_BYTES / 4), len >> 2);
                        } else {
                            int8_t *dst = &rows[ky * R4];
                            memset(dst, 0, (size_t)skip);
                            memcpy(&dst[skip], src, (size_t)len);
                            memset(&dst[skip + len], 0, (size_t)(R4 - skip - len));
                            seg_add(&l, dst, ky * R4 * (OCTO_TR_GROUP_BYTES / 4), G);
                        }
                    }
                    kept = direct && !l.split;
                    pk0 = kx0;
                    pk1 = kx1;
                }
                seg_out(&l, &y->data[((b * OH + oy) * OW + ox) * OC], OC);
            }
        }
    }
    y->scale = acc_scale;
    return OCTO_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* Input gradient                                                                                 */
/* ---------------------------------------------------------------------------------------------- */

/* expanded transposed weights 2*C4*KH*KW*OC and block sums 4*C4 (C4 = in_c rounded up to 4);
 * out_c not a multiple of 4 uses the first OC*KH*KW*C bytes for the int8 transpose */
size_t octo_train_conv2d_s8_bwd_input_scratch_size(const octo_dims_t *w_dims) {
    if (!octo_tr_dims_ok(w_dims)) {
        return 0;
    }
    const size_t c4 = round_up_z((size_t)w_dims->c, 4);
    return 2 * c4 * (size_t)w_dims->h * (size_t)w_dims->w * (size_t)w_dims->n + 4 * c4;
}

/* The kx taps of class r (kx % SW == r) are stored in descending kx order after
 * the classes below r: slot of kx. */
static int32_t kx_class_start(int32_t r, int32_t KW, int32_t SW) {
    return (KW / SW) * r + octo_tr_min(r, KW % SW);
}

/* out_c % 4 != 0: the weights transposed to [C][KH][KW][OC], one dot per tap. */
static void bwd_input_dot(const octo_train_conv_params_t *p, const octo_dims_t *in_dims, const octo_dims_t *w_dims,
                          const octo_train_q8_t *w, const octo_dims_t *out_dims, const octo_train_q8_t *dy,
                          int8_t *wt, octo_train_q32_t *dx) {
    const int32_t H = in_dims->h, W = in_dims->w, C = in_dims->c;
    const int32_t OH = out_dims->h, OW = out_dims->w, OC = out_dims->c;
    const int32_t KH = w_dims->h, KW = w_dims->w;
    const int32_t SH = p->stride_h, SW = p->stride_w;
    for (int32_t oc = 0; oc < OC; oc++) {
        for (int32_t t = 0; t < KH * KW; t++) {
            const int8_t *src = &w->data[(oc * KH * KW + t) * C];
            for (int32_t ic = 0; ic < C; ic++) {
                wt[(ic * KH * KW + t) * OC + oc] = src[ic];
            }
        }
    }
    for (int32_t b = 0; b < in_dims->n; b++) {
        for (int32_t iy = 0; iy < H; iy++) {
            const int32_t ty = iy + p->pad_h;
            for (int32_t ix = 0; ix < W; ix++) {
                const int32_t tx = ix + p->pad_w;
                int32_t *g = &dx->data[((b * H + iy) * W + ix) * C];
                memset(g, 0, (size_t)C * sizeof(int32_t));
                for (int32_t ky = ty % SH; ky < KH && ky <= ty; ky += SH) {
                    const int32_t oy = (ty - ky) / SH;
                    if (oy >= OH) {
                        continue;
                    }
                    for (int32_t kx = tx % SW; kx < KW && kx <= tx; kx += SW) {
                        const int32_t ox = (tx - kx) / SW;
                        if (ox >= OW) {
                            continue;
                        }
                        const int8_t *dyr = &dy->data[((b * OH + oy) * OW + ox) * OC];
                        const int8_t *wr = &wt[(ky * KW + kx) * OC];
                        for (int32_t ic = 0; ic < C; ic++) {
                            g[ic] = octo_tr_dot_s8(dyr, &wr[ic * KH * KW * OC], OC, g[ic]);
                        }
                    }
                }
            }
        }
    }
}

int octo_train_conv2d_s8_bwd_input(const octo_train_conv_params_t *p, const octo_dims_t *in_dims,
                                   const octo_dims_t *w_dims, const octo_train_q8_t *w, const octo_dims_t *out_dims,
                                   const octo_train_q8_t *dy, void *scratch, octo_train_q32_t *dx) {
    if (!octo_tr_q8_ok(w) || !octo_tr_q8_ok(dy) || !octo_tr_q32_out_ok(dx) || scratch == NULL ||
        !octo_tr_aligned4(scratch) || !octo_tr_conv_ok(p, in_dims, w_dims, out_dims, 0)) {
        return OCTO_E_ARG;
    }
    const int32_t H = in_dims->h, W = in_dims->w, C = in_dims->c;
    const int32_t OH = out_dims->h, OW = out_dims->w, OC = out_dims->c;
    const int32_t KH = w_dims->h, KW = w_dims->w;
    const int32_t SH = p->stride_h, SW = p->stride_w;
    const float acc_scale = dy->scale * w->scale;
    if (KH * KW * OC > OCTO_TRAIN_S8_MAX_TERMS || !octo_tr_scale_ok(acc_scale)) {
        return OCTO_E_ARG;
    }
    dx->scale = acc_scale;
    if ((OC & 3) != 0) {
        bwd_input_dot(p, in_dims, w_dims, w, out_dims, dy, (int8_t *)scratch, dx);
        return OCTO_OK;
    }
    const int32_t K = KH * KW * C, OG = OC / 4, C4 = round_up(C, 4), NB = C4 / 4;
    uint32_t *wt = (uint32_t *)scratch; /* [C4/4][KH][KW slots][OC/4][4 channels x 2 words] */
    int32_t *tmp = (int32_t *)&wt[NB * KH * KW * OG * 8];
    for (int32_t ky = 0; ky < KH; ky++) {
        for (int32_t kx = 0; kx < KW; kx++) {
            const int32_t r = kx % SW, n_r = (KW - r + SW - 1) / SW;
            const int32_t slot = kx_class_start(r, KW, SW) + n_r - 1 - kx / SW;
            const int8_t *src = &w->data[(ky * KW + kx) * C]; /* w[0][ky][kx][0] */
            for (int32_t cb = 0; cb < NB; cb++) { /* four channels of four output channels: a 4x4 byte transpose */
                uint32_t *dst = &wt[((cb * KH + ky) * KW + slot) * OG * 8];
                const int8_t *s = &src[4 * cb];
                const int32_t nc = C - 4 * cb; /* channels of the block in w (zero weights past C) */
                if (nc >= 4) {
                    for (int32_t g = 0; g < OG; g++, dst += 8, s += 4 * K) {
                        octo_tr_expand_t4(octo_read_u32(s), octo_read_u32(&s[K]), octo_read_u32(&s[2 * K]),
                                          octo_read_u32(&s[3 * K]), dst);
                    }
                    continue;
                }
                for (int32_t g = 0; g < OG; g++, dst += 8, s += 4 * K) {
                    octo_tr_expand_t4(octo_tr_read_part(s, nc), octo_tr_read_part(&s[K], nc),
                                      octo_tr_read_part(&s[2 * K], nc), octo_tr_read_part(&s[3 * K], nc), dst);
                }
            }
        }
    }
    seg_list_t l;
    seg_init(&l, wt, KH * KW * OG * OCTO_TR_GROUP_BYTES, NB, NULL, tmp, OCTO_TRAIN_ACT_NONE, 0);
    for (int32_t b = 0; b < in_dims->n; b++) {
        for (int32_t iy = 0; iy < H; iy++) {
            /* taps ky with iy = oy*SH - pad_h + ky for an output row 0 <= oy < OH */
            const int32_t ty = iy + p->pad_h;
            int32_t kept = 0, pslot = 0, pn = 0; /* stride 1: the previous pixel's runs, one dy pixel on, serve */
            for (int32_t ix = 0; ix < W; ix++) {
                /* taps kx = r, r + SW, ... (r = tx % SW) reach ix from the consecutive output columns
                 * ox = (tx - kx) / SW: those with kx < KW, kx <= tx and ox < OW form one run */
                const int32_t tx = ix + p->pad_w;
                if (kept) {
                    const int32_t kx_hi = octo_tr_min(KW - 1, tx), kx_lo = octo_tr_max(0, tx - (OW - 1));
                    if (kx_lo <= kx_hi && KW - 1 - kx_hi == pslot && (kx_hi - kx_lo + 1) * OG == pn) {
                        for (int32_t i = 0; i < l.job.nseg; i++) {
                            l.seg[i].a += OC;
                        }
                        seg_out(&l, &dx->data[((b * H + iy) * W + ix) * C], C);
                        continue;
                    }
                }
                const int32_t r = tx % SW;
                seg_reset(&l);
                kept = 0;
                if (r < KW) {
                    const int32_t kx_top = r + (KW - 1 - r) / SW * SW; /* largest kx of the class */
                    const int32_t kx_hi = octo_tr_min(kx_top, tx);
                    const int32_t kx_lo = octo_tr_max(r, tx - SW * (OW - 1));
                    if (kx_lo <= kx_hi) {
                        const int32_t ox0 = (tx - kx_hi) / SW, n = ((kx_hi - kx_lo) / SW + 1) * OG;
                        const int32_t slot = kx_class_start(r, KW, SW) + (kx_top - kx_hi) / SW;
                        for (int32_t ky = ty % SH; ky < KH && ky <= ty; ky += SH) {
                            const int32_t oy = (ty - ky) / SH;
                            if (oy < OH) {
                                seg_add(&l, &dy->data[((b * OH + oy) * OW + ox0) * OC],
                                        (ky * KW + slot) * OG * OCTO_TR_GROUP_BYTES, n);
                            }
                        }
                        kept = SW == 1 && !l.split;
                        pslot = slot;
                        pn = n;
                    }
                }
                seg_out(&l, &dx->data[((b * H + iy) * W + ix) * C], C);
            }
        }
    }
    return OCTO_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* Weight gradient                                                                                */
/* ---------------------------------------------------------------------------------------------- */

/* eight receptive fields and eight dy rows as int16, 16*(KH*KW*C + OC), and two
 * zero-padded kernel rows, 2*R4 (R4 = kw*in_c rounded up to 4) */
size_t octo_train_conv2d_s8_bwd_weight_scratch_size(const octo_dims_t *w_dims) {
    if (!octo_tr_dims_ok(w_dims)) {
        return 0;
    }
    const size_t row = (size_t)w_dims->w * (size_t)w_dims->c;
    return 16 * ((size_t)w_dims->h * row + (size_t)w_dims->n) + 2 * round_up_z(row, 4);
}

/* An output position's receptive field, walked position by position (b, oy, ox). */
typedef struct {
    int32_t b, oy, ox;
    int32_t iy0, ix0, kx0, kx1;
    int32_t full; /* every tap of a row in the image: kx0 == 0, kx1 == KW */
} field_t;

static void field_set(field_t *f, const octo_train_conv_params_t *p, const octo_dims_t *in_dims, int32_t KW) {
    f->iy0 = f->oy * p->stride_h - p->pad_h;
    f->ix0 = f->ox * p->stride_w - p->pad_w;
    octo_tr_taps(f->ix0, KW, in_dims->w, &f->kx0, &f->kx1);
    f->full = f->kx0 == 0 && f->kx1 == KW;
}

static void field_next(field_t *f, const octo_train_conv_params_t *p, const octo_dims_t *in_dims,
                       const octo_dims_t *out_dims, int32_t KW) {
    if (++f->ox == out_dims->w) {
        f->ox = 0;
        if (++f->oy == out_dims->h) {
            f->oy = 0;
            f->b++;
        }
    }
    field_set(f, p, in_dims, KW);
}

/* Row ky of the field (KW*C bytes, zeros outside the image): straight in x when
 * the whole row is inside, else assembled in buf. */
static const int8_t *field_row(const field_t *f, int32_t ky, const octo_dims_t *in_dims, int32_t KW,
                               const int8_t *x, int8_t *buf) {
    const int32_t H = in_dims->h, W = in_dims->w, C = in_dims->c, row = KW * C;
    const int32_t iy = f->iy0 + ky;
    if (iy < 0 || iy >= H || f->kx1 <= f->kx0) {
        memset(buf, 0, (size_t)row);
        return buf;
    }
    const int8_t *src = &x[((f->b * H + iy) * W + f->ix0 + f->kx0) * C];
    if (f->full) {
        return src;
    }
    const int32_t skip = f->kx0 * C, len = (f->kx1 - f->kx0) * C;
    memset(buf, 0, (size_t)skip);
    memcpy(&buf[skip], src, (size_t)len);
    memset(&buf[skip + len], 0, (size_t)(row - skip - len));
    return buf;
}

int octo_train_conv2d_s8_bwd_weight(const octo_train_conv_params_t *p, const octo_dims_t *in_dims,
                                    const octo_train_q8_t *x, const octo_dims_t *out_dims, const octo_train_q8_t *dy,
                                    const octo_dims_t *w_dims, void *scratch, octo_train_q32_t *dw,
                                    octo_train_q32_t *db) {
    if (!octo_tr_q8_ok(x) || !octo_tr_q8_ok(dy) || !octo_tr_q32_out_ok(dw) || (db != NULL && db->data == NULL) ||
        scratch == NULL || !octo_tr_aligned4(scratch) || !octo_tr_conv_ok(p, in_dims, w_dims, out_dims, 0)) {
        return OCTO_E_ARG;
    }
    const int32_t H = in_dims->h, W = in_dims->w, C = in_dims->c;
    const int32_t OH = out_dims->h, OW = out_dims->w, OC = out_dims->c;
    const int32_t KH = w_dims->h, KW = w_dims->w;
    const int32_t K = KH * KW * C, row = KW * C, R4 = round_up(row, 4);
    const int32_t positions = in_dims->n * OH * OW;
    const float acc_scale = x->scale * dy->scale;
    if ((int64_t)in_dims->n * OH * OW > OCTO_TRAIN_S8_MAX_TERMS || !octo_tr_scale_ok(acc_scale)) {
        return OCTO_E_ARG;
    }
    uint32_t *pe = (uint32_t *)scratch; /* [K][8] int16 receptive fields */
    uint32_t *de = &pe[4 * K];          /* [OC][8] int16 dy rows */
    int8_t *buf_a = (int8_t *)&de[4 * OC], *buf_b = &buf_a[R4];
    if (positions > 2 && positions < 8) { /* the stage words of the missing positions are read (times a zero dy) */
        memset(pe, 0, (size_t)K * 16);
    }
    memset(dw->data, 0, (size_t)OC * (size_t)K * sizeof(int32_t));
    if (db != NULL) {
        memset(db->data, 0, (size_t)OC * sizeof(int32_t));
    }
    const octo_tr_rank8_t job = {pe, de, dw->data, K, OC};
    field_t cur = {0, 0, 0, 0, 0, 0, 0, 0};
    field_set(&cur, p, in_dims, KW);
    for (int32_t pos0 = 0; pos0 < positions; pos0 += 8) {
        const int32_t nq = octo_tr_min(8, positions - pos0);
        for (int32_t q = 0; q < 8; q += 2) {
            if (q >= nq) { /* missing positions: zero dy rows make them no-ops */
                for (int32_t o = 0; o < OC; o++) {
                    de[4 * o + (q >> 1)] = 0;
                }
                continue;
            }
            const int has_b = q + 1 < nq;
            const field_t fa = cur;
            if (has_b) {
                field_next(&cur, p, in_dims, out_dims, KW);
            }
            const field_t fb = cur;
            field_next(&cur, p, in_dims, out_dims, KW);
            uint32_t *col = &pe[q >> 1];
            const int32_t ya = (fa.b * H + fa.iy0) * W + fa.ix0, yb = (fb.b * H + fb.iy0) * W + fb.ix0;
            for (int32_t ky = 0; ky < KH; ky++, col += 4 * row) {
                const int8_t *ra, *rb;
                if (fa.full && fb.full && fa.iy0 + ky >= 0 && fa.iy0 + ky < H && fb.iy0 + ky >= 0 &&
                    fb.iy0 + ky < H) { /* the common case: both rows straight from x */
                    ra = &x->data[(ya + ky * W) * C];
                    rb = &x->data[(yb + ky * W) * C];
                } else {
                    ra = field_row(&fa, ky, in_dims, KW, x->data, buf_a);
                    rb = field_row(&fb, ky, in_dims, KW, x->data, buf_b);
                }
                octo_tr_stage2(col, ra, rb, row);
            }
            const int8_t *g = &dy->data[(pos0 + q) * OC];
            octo_tr_stage2(&de[q >> 1], g, has_b ? &g[OC] : NULL, OC);
        }
        octo_tr_rank_s8(&job, nq);
        if (db != NULL) {
            octo_tr_sum8(de, OC, db->data);
        }
    }
    dw->scale = acc_scale;
    if (db != NULL) {
        db->scale = dy->scale;
    }
    return OCTO_OK;
}
