/* octo_train_conv_s8.c - CONV_2D, INT8 training: forward, input gradient,
 * weight gradient, int32 accumulation with SXTB16 + SMLAD (octo_dsp.h). The
 * blocked kernels it shares with FULLY_CONNECTED are in octo_train_gemm_s8.c;
 * the first weight-gradient update (octo_tr_rank8w_s8) stays here, inlined.
 *
 * forward      two paths (fwd_by_pixels). By pixels (1x1 kernels, kernel rows
 *              that are not whole words, maps of at most 16 output pixels):
 *              four output pixels at a time, their receptive fields expanded
 *              to int16 pairs side by side; each output channel's int8 weight
 *              row is unpacked once for the four (octo_tr_gemm4_s8: LDR + 2
 *              SXTB16 + 2 LDM + 8 SMLAD per four taps), a single pixel streams
 *              the rows 16 weights per LDM (octo_tr_gemm1_s8). No copy of the
 *              weights unless their rows are not whole aligned words. By
 *              segments (larger kernels on larger maps): the weights are
 *              expanded to int16 pairs, a chunk of blocks of four output
 *              channels at a time (octo_tr_blk4_s8). Per output pixel every
 *              kernel row ky inside the image is one contiguous run of x (taps
 *              kx0..kx1 of KW*C bytes); one 32-bit load of x, unpacked by
 *              SXTB16, feeds eight SMLAD (four channels x two pairs). Runs whose
 *              start or length is not a multiple of four bytes (possible when
 *              in_c is not) are copied to a zero-padded row first.
 * input grad   the same segment kernel on the transposed conv: for an input
 *              pixel and a kernel row, the taps kx reaching it (every
 *              stride_w-th one) read consecutive dy pixels, so each is one
 *              contiguous run of dy against weights expanded (PKHBT/PKHTB, then
 *              SXTB16: octo_tr_expand_t_s8) a chunk of blocks of four input
 *              channels at a time, in the order [ky][kx class][kx descending]
 *              [out_c], out_c padded to a multiple of 4 with zero weights.
 *              Small maps first expand dy to int16 pairs once
 *              (octo_tr_blk4e_s8: LDRD instead of LDR + 2 SXTB16 per block).
 *              out_c % 4 != 0 with kernels larger than 1x1 takes the
 *              transposed-weight dot of the portable loop, in chunks of input
 *              channels.
 * weight grad  positions eight at a time: their receptive fields and dy rows
 *              are staged as int16 [k][8] and [o][8] so one SMLAD adds two
 *              positions' products and one read-modify-write of dw[o][k] adds
 *              eight (octo_tr_rank8_s8; the first eight write dw,
 *              octo_tr_rank8w_s8, so it needs no zeroing).
 *
 * Scratch stays bounded (a few KiB for MobileNet's layers): no kernel keeps an
 * expanded or transposed copy of all the weights.
 *
 * Every sum is an exact int32 sum of the same int8 products (bounded by
 * OCTO_TRAIN_S8_MAX_TERMS), so the order of the additions does not matter: the
 * assembly on DSP cores and the C below give the same bits. */
#include <string.h>

#include "octo_train_internal.h"

/* ---------------------------------------------------------------------------------------------- */
/* The first weight-gradient update (the shared blocked kernels are in octo_train_gemm_s8.c)      */
/* ---------------------------------------------------------------------------------------------- */

#if OCTO_HAVE_DSP && defined(__thumb2__)
/* The first update of a weight gradient: dw[o][k] = the rank-8 sum (SMUAD starts each sum; dw is not
 * read, so it needs no zeroing). Registers and frame as octo_tr_rank8_s8. */
void octo_tr_rank8w_s8(const octo_tr_rank8_t *job);
#define OCTO_TR_R8W_K(acc)                                                                                             \
    "ldm r10!, {r4-r7}\n\t"                                                                                            \
    "smuad " acc ", r0, r4\n\t"                                                                                        \
    "smlad " acc ", r1, r5, " acc "\n\t"                                                                               \
    "smlad " acc ", r2, r6, " acc "\n\t"                                                                               \
    "smlad " acc ", r3, r7, " acc "\n\t"
#define OCTO_TR_R8W_PAIR OCTO_TR_R8W_K("r8") OCTO_TR_R8W_K("r9") "strd r8, r9, [r11], #8\n\t"

__asm__(".section .text.octo_tr_rank8w_s8,\"ax\",%progbits\n\t"
        ".syntax unified\n\t"
        ".thumb\n\t"
        ".p2align 2\n\t"
        ".global octo_tr_rank8w_s8\n\t"
        ".type octo_tr_rank8w_s8, %function\n\t"
        ".thumb_func\n"
        "octo_tr_rank8w_s8:\n\t"
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
        ".Lr8w_row:\n\t"
        "ldm lr!, {r0-r3}\n\t"
        "ldr r10, [sp, #4]\n\t"
        "ldr r12, [sp, #8]\n\t"
        "ldr r8, [sp, #12]\n\t"
        "lsls r8, r8, #31\n\t" /* N = bit 0 of nk, C = bit 1 */
        "bpl .Lr8w_two\n\t"
        OCTO_TR_R8W_K("r8")
        "str r8, [r11], #4\n"
        ".Lr8w_two:\n\t"
        "bcc .Lr8w_four\n\t"
        OCTO_TR_R8W_PAIR
        ".Lr8w_four:\n\t"
        "cmp r10, r12\n\t"
        "beq .Lr8w_next\n"
        ".Lr8w_loop:\n\t"
        OCTO_TR_R8W_PAIR
        OCTO_TR_R8W_PAIR
        "cmp r10, r12\n\t"
        "bne .Lr8w_loop\n"
        ".Lr8w_next:\n\t"
        "ldr r8, [sp, #0]\n\t"
        "subs r8, r8, #1\n\t"
        "str r8, [sp, #0]\n\t"
        "bne .Lr8w_row\n\t"
        "add sp, sp, #20\n\t"
        "pop {r4-r11, pc}\n\t"
        ".size octo_tr_rank8w_s8, .-octo_tr_rank8w_s8\n\t"
        ".text");

#else /* portable: the same sums with the octo_dsp.h primitives */

/* The first update: dw[o][k] = the rank-8 sum (dw not read). */
static void octo_tr_rank8w_s8(const octo_tr_rank8_t *job) {
    for (int32_t o = 0; o < job->no; o++) {
        const uint32_t *d = &job->de[4 * o];
        int32_t *row = &job->dw[o * job->nk];
        for (int32_t k = 0; k < job->nk; k++) {
            const uint32_t *pk = &job->pe[4 * k];
            int32_t acc = 0;
            for (int32_t i = 0; i < 4; i++) {
                acc = octo_smlad(d[i], pk[i], acc);
            }
            row[k] = acc;
        }
    }
}
#endif

/* ---------------------------------------------------------------------------------------------- */
/* The pixel kernels of the forward: expanded activations x int8 weight rows                      */
/* ---------------------------------------------------------------------------------------------- */

/* Four lanes (output pixels) x rows (output channels): for r < rows and j < 4,
 *   out[r*ostep + j*lstep] = init[r] + sum_{g < groups} SMLAD pairs of xs[g][j] and row r's word g,
 * xs [groups][4 lanes][2 words] (SXTB16 pairs (a0, a2), (a1, a3) of four int8), row r of int8 at
 * w + r*wstride (any alignment), steps in bytes. Offsets on ARM: 0 xs, 4 w, 8 wstride, 12 groups,
 * 16 rows, 20 init, 24 out, 28 ostep, 32 lstep. */
typedef struct {
    const uint32_t *xs;
    const int8_t *w;
    int32_t wstride;
    int32_t groups;
    int32_t rows;
    const int32_t *init;
    int32_t *out;
    int32_t ostep;
    int32_t lstep;
} octo_tr_gemm4_t;

/* One lane: out[r] = init[r] + sum_g SMLAD pairs of xs[g] ([groups][2 words]) and row r's word g;
 * the rows 4-byte aligned, groups*4 bytes apart. Offsets on ARM: 0 xs, 4 w, 8 groups, 12 rows,
 * 16 init, 20 out. */
typedef struct {
    const uint32_t *xs;
    const int8_t *w;
    int32_t groups;
    int32_t rows;
    const int32_t *init;
    int32_t *out;
} octo_tr_gemm1_t;

#if OCTO_HAVE_DSP && defined(__thumb2__)
void octo_tr_gemm4_s8(const octo_tr_gemm4_t *j);
void octo_tr_gemm1_s8(const octo_tr_gemm1_t *j);

/* One group of four taps for the four lanes: the row's word (r7) unpacked once (r7, r8), two LDM of
 * the lanes' pairs (r9-r12), eight SMLAD into r0-r3. */
#define OCTO_TR_G4_GROUP                                                                                               \
    "ldr r7, [r4], #4\n\t"                                                                                             \
    "sxtb16 r8, r7, ror #8\n\t"                                                                                        \
    "sxtb16 r7, r7\n\t"                                                                                                \
    "ldm r5!, {r9, r10, r11, r12}\n\t"                                                                                 \
    "smlad r0, r9, r7, r0\n\t"                                                                                         \
    "smlad r0, r10, r8, r0\n\t"                                                                                        \
    "smlad r1, r11, r7, r1\n\t"                                                                                        \
    "smlad r1, r12, r8, r1\n\t"                                                                                        \
    "ldm r5!, {r9, r10, r11, r12}\n\t"                                                                                 \
    "smlad r2, r9, r7, r2\n\t"                                                                                         \
    "smlad r2, r10, r8, r2\n\t"                                                                                        \
    "smlad r3, r11, r7, r3\n\t"                                                                                        \
    "smlad r3, r12, r8, r3\n\t"

/* job (r0): xs 0, w 4, wstride 8, groups 12, rows 16, init 20, out 24, ostep 28, lstep 32. Frame:
 * [sp] xs, [sp+4] end of xs, [sp+8] groups odd, [sp+12] out, [sp+16] lstep, [sp+20] ostep,
 * [sp+24] end of init, [sp+28] row start, [sp+32] wstride. Loop: r0-r3 the sums, r4 the row, r5 xs,
 * r6 end of xs, r7/r8 the unpacked word, r9-r12 xs words, lr init. */
__asm__(".section .text.octo_tr_gemm4_s8,\"ax\",%progbits\n\t"
        ".syntax unified\n\t"
        ".thumb\n\t"
        ".p2align 2\n\t"
        ".global octo_tr_gemm4_s8\n\t"
        ".type octo_tr_gemm4_s8, %function\n\t"
        ".thumb_func\n"
        "octo_tr_gemm4_s8:\n\t"
        "push {r4-r11, lr}\n\t"
        "sub sp, sp, #36\n\t"
        "ldm r0, {r1-r7}\n\t"           /* xs w wstride groups rows init out */
        "add r8, r1, r4, lsl #5\n\t"
        "strd r1, r8, [sp, #0]\n\t"
        "and r8, r4, #1\n\t"
        "str r8, [sp, #8]\n\t"
        "str r7, [sp, #12]\n\t"
        "ldr r8, [r0, #32]\n\t"
        "ldr r9, [r0, #28]\n\t"
        "strd r8, r9, [sp, #16]\n\t"
        "add r8, r6, r5, lsl #2\n\t"
        "str r8, [sp, #24]\n\t"
        "strd r2, r3, [sp, #28]\n\t"
        "mov lr, r6\n"
        ".Lg4_row:\n\t"
        "ldr r0, [lr], #4\n\t"
        "mov r1, r0\n\t"
        "mov r2, r0\n\t"
        "mov r3, r0\n\t"
        "ldr r4, [sp, #28]\n\t"
        "ldrd r5, r6, [sp, #0]\n\t"
        "ldr r7, [sp, #8]\n\t"
        "cmp r7, #0\n\t"
        "bne .Lg4_odd\n"
        ".Lg4_loop:\n\t"
        OCTO_TR_G4_GROUP
        ".Lg4_odd:\n\t"
        OCTO_TR_G4_GROUP
        "cmp r5, r6\n\t"
        "bne .Lg4_loop\n\t"
        "ldrd r7, r8, [sp, #12]\n\t"
        "str r0, [r7]\n\t"
        "str r1, [r7, r8]\n\t"
        "add r9, r7, r8, lsl #1\n\t"
        "str r2, [r9]\n\t"
        "str r3, [r9, r8]\n\t"
        "ldr r9, [sp, #20]\n\t"
        "add r7, r7, r9\n\t"
        "str r7, [sp, #12]\n\t"
        "ldrd r4, r9, [sp, #28]\n\t"
        "add r4, r4, r9\n\t"
        "str r4, [sp, #28]\n\t"
        "ldr r7, [sp, #24]\n\t"
        "cmp lr, r7\n\t"
        "bne .Lg4_row\n\t"
        "add sp, sp, #36\n\t"
        "pop {r4-r11, pc}\n\t"
        ".size octo_tr_gemm4_s8, .-octo_tr_gemm4_s8\n\t"
        ".text");

/* Four groups of one lane: one LDM brings 16 weights (r1, r2, r3, r7), two LDM their xs pairs. */
#define OCTO_TR_G1_WORD(w, xa, xb)                                                                                     \
    "sxtb16 r12, " w ", ror #8\n\t"                                                                                    \
    "sxtb16 " w ", " w "\n\t"                                                                                          \
    "smlad r0, " xa ", " w ", r0\n\t"                                                                                  \
    "smlad r0, " xb ", r12, r0\n\t"
#define OCTO_TR_G1_BLOCK4                                                                                              \
    "ldm r4!, {r1, r2, r3, r7}\n\t"                                                                                    \
    "ldm r5!, {r8, r9, r10, r11}\n\t"                                                                                  \
    OCTO_TR_G1_WORD("r1", "r8", "r9")                                                                                  \
    OCTO_TR_G1_WORD("r2", "r10", "r11")                                                                                \
    "ldm r5!, {r8, r9, r10, r11}\n\t"                                                                                  \
    OCTO_TR_G1_WORD("r3", "r8", "r9")                                                                                  \
    OCTO_TR_G1_WORD("r7", "r10", "r11")
#define OCTO_TR_G1_SINGLE                                                                                              \
    "ldr r1, [r4], #4\n\t"                                                                                             \
    "ldrd r8, r9, [r5], #8\n\t"                                                                                        \
    OCTO_TR_G1_WORD("r1", "r8", "r9")

/* job (r0): xs 0, w 4, groups 8, rows 12, init 16, out 20. Frame: [sp] xs, [sp+4] end of xs,
 * [sp+8] groups, [sp+12] end of init, [sp+16] out. Loop: r0 the sum, r4 the weights (rows
 * contiguous), r5 xs, r6 end of xs, r1-r3/r7 weight words, r8-r11 xs words, r12 unpacked, lr init. */
__asm__(".section .text.octo_tr_gemm1_s8,\"ax\",%progbits\n\t"
        ".syntax unified\n\t"
        ".thumb\n\t"
        ".p2align 2\n\t"
        ".global octo_tr_gemm1_s8\n\t"
        ".type octo_tr_gemm1_s8, %function\n\t"
        ".thumb_func\n"
        "octo_tr_gemm1_s8:\n\t"
        "push {r4-r11, lr}\n\t"
        "sub sp, sp, #20\n\t"
        "ldm r0, {r1-r6}\n\t"           /* xs w groups rows init out */
        "add r7, r1, r3, lsl #3\n\t"
        "strd r1, r7, [sp, #0]\n\t"
        "add r7, r5, r4, lsl #2\n\t"
        "strd r3, r7, [sp, #8]\n\t"
        "str r6, [sp, #16]\n\t"
        "mov r4, r2\n\t"
        "mov lr, r5\n"
        ".Lg1_row:\n\t"
        "ldr r0, [lr], #4\n\t"
        "ldrd r5, r6, [sp, #0]\n\t"
        "ldr r1, [sp, #8]\n\t"
        "lsls r1, r1, #31\n\t"          /* N = bit 0 of groups, C = bit 1 */
        "bpl .Lg1_two\n\t"
        OCTO_TR_G1_SINGLE
        ".Lg1_two:\n\t"
        "bcc .Lg1_four\n\t"
        OCTO_TR_G1_SINGLE
        OCTO_TR_G1_SINGLE
        ".Lg1_four:\n\t"
        "ldr r1, [sp, #8]\n\t"
        "tst r1, #4\n\t"
        "beq .Lg1_test\n\t"
        OCTO_TR_G1_BLOCK4
        ".Lg1_test:\n\t"
        "cmp r5, r6\n\t"
        "beq .Lg1_put\n"
        ".Lg1_loop:\n\t"
        OCTO_TR_G1_BLOCK4
        OCTO_TR_G1_BLOCK4
        "cmp r5, r6\n\t"
        "bne .Lg1_loop\n"
        ".Lg1_put:\n\t"
        "ldr r7, [sp, #16]\n\t"
        "str r0, [r7], #4\n\t"
        "str r7, [sp, #16]\n\t"
        "ldr r7, [sp, #12]\n\t"
        "cmp lr, r7\n\t"
        "bne .Lg1_row\n\t"
        "add sp, sp, #20\n\t"
        "pop {r4-r11, pc}\n\t"
        ".size octo_tr_gemm1_s8, .-octo_tr_gemm1_s8\n\t"
        ".text");
#else
static void octo_tr_gemm4_s8(const octo_tr_gemm4_t *j) {
    const int8_t *wr = j->w;
    uint8_t *orow = (uint8_t *)j->out;
    for (int32_t r = 0; r < j->rows; r++, wr += j->wstride, orow += j->ostep) {
        int32_t acc[4] = {j->init[r], j->init[r], j->init[r], j->init[r]};
        const uint32_t *xs = j->xs;
        for (int32_t g = 0; g < j->groups; g++, xs += 8) {
            const uint32_t v = octo_read_u32(&wr[4 * g]);
            const uint32_t lo = octo_sxtb16(v), hi = octo_sxtb16_ror8(v);
            for (int32_t i = 0; i < 4; i++) {
                acc[i] = octo_smlad(xs[2 * i], lo, acc[i]);
                acc[i] = octo_smlad(xs[2 * i + 1], hi, acc[i]);
            }
        }
        for (int32_t i = 0; i < 4; i++) {
            memcpy(&orow[i * j->lstep], &acc[i], sizeof acc[i]);
        }
    }
}

static void octo_tr_gemm1_s8(const octo_tr_gemm1_t *j) {
    const int8_t *wr = j->w;
    for (int32_t r = 0; r < j->rows; r++) {
        int32_t acc = j->init[r];
        const uint32_t *xs = j->xs;
        for (int32_t g = 0; g < j->groups; g++, xs += 2, wr += 4) {
            const uint32_t v = octo_read_u32(wr);
            acc = octo_smlad(xs[0], octo_sxtb16(v), acc);
            acc = octo_smlad(xs[1], octo_sxtb16_ror8(v), acc);
        }
        j->out[r] = acc;
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
    int32_t act;      /* the fused activation, applied once all segments are in */
    int32_t split;    /* the segments of this output did not fit in one call */
    int32_t expanded; /* the activations are int16 pairs (octo_tr_blk4e_s8) */
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
    l->expanded = 0;
}

static void seg_run(seg_list_t *l, const int32_t *init, int32_t *out, int32_t act) {
    l->job.init = init;
    l->job.out = out;
    l->job.act = act;
    if (l->expanded) {
        octo_tr_blk4e_s8(&l->job);
    } else {
        octo_tr_blk4_s8(&l->job);
    }
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

/* Two ways, same sums:
 *   by pixels    (few output pixels per weight: 1x1 and 2x2 maps, pointwise layers) four output
 *                pixels at a time: their receptive fields (im2col, zeros outside x) are expanded
 *                to int16 pairs side by side (octo_tr_gemm4_t), and every output channel's int8
 *                weight row is unpacked once for the four (LDR + 2 SXTB16 + 2 LDM + 8 SMLAD per
 *                four taps); a single pixel streams the rows 16 weights per LDM (octo_tr_gemm1_t).
 *                No expanded copy of the weights: rows are read in place when they are whole
 *                words (else copied zero-padded, a block of rows at a time).
 *   by segments  (many pixels per weight) the weights are expanded, a chunk of blocks of four
 *                output channels at a time, and each output pixel runs its kernel rows as
 *                segments against them (octo_tr_blk4_s8). */

/* Expanded weight bytes per chunk of the segment path (a chunk holds at least one block). */
#define OCTO_TR_FWD_CHUNK 8192
/* Zero-padded weight rows of the pixel path: at most this many bytes, or four rows. */
#define OCTO_TR_FWD_WPAD 2048

/* Rows of the pixel path's zero-padded weight block (k4 bytes each). */
static size_t fwd_pad_rows(size_t oc, size_t k4) {
    const size_t fit = OCTO_TR_FWD_WPAD / k4 / 4 * 4, oc4 = round_up_z(oc, 4);
    return fit < 4 ? 4 : (fit < oc4 ? fit : oc4);
}

/* Blocks of four output channels per chunk of the segment path (bytes expanded bytes per block). */
static size_t fwd_chunk_blocks(size_t nb, size_t bytes) {
    const size_t fit = OCTO_TR_FWD_CHUNK / bytes;
    return fit < 1 ? 1 : (fit < nb ? fit : nb);
}

/* pixel path: bias sums 4*OC4, four expanded fields 8*K4, a field K4, padded rows pad_rows*K4;
 * segment path: bias and block sums 2 x 4*OC4, a chunk of expanded weights, zero-padded rows KH*R4
 * (OC4 = out_c rounded up to 4, K4 = kh*kw*in_c and R4 = kw*in_c rounded up to 4) */
size_t octo_train_conv_s8_fwd_scratch_size(const octo_dims_t *w_dims) {
    if (!octo_tr_dims_ok(w_dims)) {
        return 0;
    }
    const size_t oc4 = round_up_z((size_t)w_dims->n, 4), kh = (size_t)w_dims->h;
    const size_t r4 = round_up_z((size_t)w_dims->w * (size_t)w_dims->c, 4), k4 = round_up_z(kh * (size_t)w_dims->w * (size_t)w_dims->c, 4);
    const size_t pix = 4 * oc4 + 9 * k4 + fwd_pad_rows((size_t)w_dims->n, k4) * k4;
    if ((w_dims->h == 1 && w_dims->w == 1) || ((size_t)w_dims->w * (size_t)w_dims->c) % 4 != 0) {
        return pix; /* always the pixel path (fwd_by_pixels) */
    }
    const size_t blk = kh * r4 / 4 * OCTO_TR_GROUP_BYTES;
    const size_t seg = 8 * oc4 + fwd_chunk_blocks(oc4 / 4, blk) * blk + kh * r4;
    return pix > seg ? pix : seg;
}

/* The fused activation over n results (the kernels of the pixel path leave it out). */
static void act_s32(int32_t *y, int32_t n, int32_t act, int32_t six) {
    if (act == OCTO_TRAIN_ACT_NONE) {
        return;
    }
    for (int32_t i = 0; i < n; i++) {
        y[i] = octo_tr_act_s32(y[i], act, six);
    }
}

/* groups words of four int8 at src to int16 pairs: dst[i*stride] = (a0, a2), dst[i*stride + 1] = (a1, a3). */
static void unpack_s8(const int8_t *src, int32_t groups, uint32_t *dst, int32_t stride) {
    for (int32_t i = 0; i < groups; i++, src += 4, dst += stride) {
        const uint32_t v = octo_read_u32(src);
        dst[0] = octo_sxtb16(v);
        dst[1] = octo_sxtb16_ror8(v);
    }
}

/* Output pixels in order (b, oy, ox) and the top-left corner (iy0, ix0) of their receptive fields. */
typedef struct {
    int32_t b, oy, ox, iy0, ix0;
} pix_t;

static void pix_first(pix_t *q, const octo_train_conv_params_t *p) {
    q->b = q->oy = q->ox = 0;
    q->iy0 = -p->pad_h;
    q->ix0 = -p->pad_w;
}

static void pix_next(pix_t *q, const octo_train_conv_params_t *p, const octo_dims_t *out_dims) {
    q->ix0 += p->stride_w;
    if (++q->ox == out_dims->w) {
        q->ox = 0;
        q->ix0 = -p->pad_w;
        q->iy0 += p->stride_h;
        if (++q->oy == out_dims->h) {
            q->oy = 0;
            q->iy0 = -p->pad_h;
            q->b++;
        }
    }
}

/* n bytes from src to dst, and n zero bytes to dst: words first (unaligned LDR/STR on Armv7-M), no
 * library call for these short rows. */
static inline void copy_s8(int8_t *dst, const int8_t *src, int32_t n) {
    for (; n >= 4; n -= 4, dst += 4, src += 4) {
        const uint32_t v = octo_read_u32(src);
        memcpy(dst, &v, 4);
    }
    for (; n > 0; n--) {
        *dst++ = *src++;
    }
}

static inline void zero_s8(int8_t *dst, int32_t n) {
    const uint32_t z = 0;
    for (; n >= 4; n -= 4, dst += 4) {
        memcpy(dst, &z, 4);
    }
    for (; n > 0; n--) {
        *dst++ = 0;
    }
}

/* A receptive field crossing the image border: the taps inside copied to patch, zeros elsewhere
 * (patch[K..K4) is zero already). */
__attribute__((noinline))
static const int8_t *pix_border(const pix_t *q, const octo_dims_t *in_dims, const int8_t *x, int32_t KH,
                                int32_t KW, int8_t *patch) {
    const int32_t H = in_dims->h, W = in_dims->w, C = in_dims->c, row = KW * C;
    int32_t kx0, kx1;
    octo_tr_taps(q->ix0, KW, W, &kx0, &kx1);
    const int32_t skip = kx0 * C, len = octo_tr_max(0, kx1 - kx0) * C;
    const int32_t base = ((q->b * H + q->iy0) * W + q->ix0 + kx0) * C; /* the first tap of row 0 (maybe outside) */
    int8_t *dst = patch;
    for (int32_t ky = 0; ky < KH; ky++, dst += row) {
        const int32_t iy = q->iy0 + ky;
        if (iy < 0 || iy >= H || len == 0) {
            zero_s8(dst, row);
            continue;
        }
        zero_s8(dst, skip);
        copy_s8(&dst[skip], &x[base + ky * W * C], len);
        zero_s8(&dst[skip + len], row - skip - len);
    }
    return patch;
}

/* The K4 bytes of the receptive field of q (zeros outside x and past K): straight in x when it is one
 * run of whole words inside the image (1xKW kernels), else assembled in patch. */
static inline const int8_t *pix_field(const pix_t *q, const octo_dims_t *in_dims, const int8_t *x, int32_t KH,
                                      int32_t KW, int32_t K4, int8_t *patch) {
    const int32_t H = in_dims->h, W = in_dims->w, C = in_dims->c, row = KW * C;
    if (q->ix0 < 0 || q->ix0 + KW > W || q->iy0 < 0 || q->iy0 + KH > H) {
        return pix_border(q, in_dims, x, KH, KW, patch);
    }
    const int8_t *src = &x[((q->b * H + q->iy0) * W + q->ix0) * C];
    if (KH == 1 && row == K4) {
        return src;
    }
    for (int32_t ky = 0; ky < KH; ky++) {
        copy_s8(&patch[ky * row], &src[ky * W * C], row);
    }
    return patch;
}

static void fwd_pixels(const octo_train_conv_params_t *p, const octo_dims_t *in_dims, const octo_train_q8_t *x,
                       const octo_dims_t *w_dims, const octo_train_q8_t *w, const int32_t *bias_acc,
                       void *scratch_rest, const octo_dims_t *out_dims, int32_t *y) {
    const int32_t OC = out_dims->c, KH = w_dims->h, KW = w_dims->w;
    const int32_t K = KH * KW * w_dims->c, K4 = round_up(K, 4), G = K4 / 4;
    const int32_t M = out_dims->n * out_dims->h * out_dims->w;
    uint32_t *xs = (uint32_t *)scratch_rest; /* [G][4 pixels][2 words], or [G][2 words] for one */
    int8_t *patch = (int8_t *)&xs[8 * G];
    int8_t *wpad = &patch[K4];
    zero_s8(&patch[K], K4 - K);
    const int direct = K == K4 && octo_tr_aligned4(w->data); /* rows read in place */
    const int32_t OCB = direct ? OC : (int32_t)fwd_pad_rows((size_t)OC, (size_t)K4);
    octo_tr_gemm4_t j4;
    j4.xs = xs;
    j4.wstride = K4;
    j4.groups = G;
    j4.ostep = 4;
    j4.lstep = OC * 4;
    octo_tr_gemm1_t j1;
    j1.xs = xs;
    j1.groups = G;
    for (int32_t o0 = 0; o0 < OC; o0 += OCB) {
        const int32_t nb = octo_tr_min(OCB, OC - o0);
        const int8_t *wr = &w->data[o0 * K];
        if (!direct) {
            for (int32_t r = 0; r < nb; r++) {
                memcpy(&wpad[r * K4], &wr[r * K], (size_t)K);
                memset(&wpad[r * K4 + K], 0, (size_t)(K4 - K));
            }
            wr = wpad;
        }
        j4.w = wr;
        j4.rows = nb;
        j4.init = &bias_acc[o0];
        j1.w = wr;
        j1.rows = nb;
        j1.init = &bias_acc[o0];
        pix_t q;
        pix_first(&q, p);
        int32_t m = 0;
        for (; m + 4 <= M; m += 4) {
            for (int32_t i = 0; i < 4; i++, pix_next(&q, p, out_dims)) {
                unpack_s8(pix_field(&q, in_dims, x->data, KH, KW, K4, patch), G, &xs[2 * i], 8);
            }
            j4.out = &y[m * OC + o0];
            octo_tr_gemm4_s8(&j4);
        }
        for (; m < M; m++, pix_next(&q, p, out_dims)) {
            unpack_s8(pix_field(&q, in_dims, x->data, KH, KW, K4, patch), G, xs, 2);
            j1.out = &y[m * OC + o0];
            octo_tr_gemm1_s8(&j1);
        }
    }
}

static void fwd_segments(const octo_train_conv_params_t *p, const octo_dims_t *in_dims, const octo_train_q8_t *x,
                         const octo_dims_t *w_dims, const octo_train_q8_t *w, int32_t *bias_acc,
                         void *scratch_rest, const octo_dims_t *out_dims, int32_t six, int32_t *y) {
    const int32_t H = in_dims->h, W = in_dims->w, C = in_dims->c;
    const int32_t OH = out_dims->h, OW = out_dims->w, OC = out_dims->c;
    const int32_t KH = w_dims->h, KW = w_dims->w;
    const int32_t K = KH * KW * C;
    const int32_t row = KW * C, R4 = round_up(row, 4), G = R4 / 4;
    const int32_t OC4 = round_up(OC, 4), NB = OC4 / 4;
    const int32_t CH = (int32_t)fwd_chunk_blocks((size_t)NB, (size_t)(KH * G * OCTO_TR_GROUP_BYTES));
    int32_t *tmp = (int32_t *)scratch_rest;
    uint32_t *wx = (uint32_t *)&tmp[OC4]; /* [CH][KH][G][4 outputs x 2 words] */
    int8_t *rows = (int8_t *)&wx[CH * KH * G * 8]; /* [KH][R4] */
    const int32_t step = p->stride_w * C; /* x bytes from one output column to the next */
    for (int32_t blk0 = 0; blk0 < NB; blk0 += CH) {
        const int32_t nblk = octo_tr_min(CH, NB - blk0);
        for (int32_t oc = 4 * blk0; oc < 4 * (blk0 + nblk); oc++) {
            uint32_t *dst = &wx[((oc >> 2) - blk0) * KH * G * 8 + 2 * (oc & 3)];
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
                    octo_tr_expand4(octo_tr_read_part(&src[k], octo_tr_min(4, row - k)), dst);
                }
            }
        }
        const int32_t nout = octo_tr_min(4 * nblk, OC - 4 * blk0); /* outputs of the chunk */
        seg_list_t l;
        seg_init(&l, wx, KH * G * OCTO_TR_GROUP_BYTES, nblk, &bias_acc[4 * blk0], tmp, p->act, six);
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
                    seg_out(&l, &y[((b * OH + oy) * OW + ox) * OC + 4 * blk0], nout);
                }
            }
        }
    }
}

/* bias[i] * inv rounded to the accumulator scale, i < n: octo_tr_bias_acc, with the common case
 * (|v| < 2^30: no clamp, not NaN) tested once. NULL bias: zeros. */
static void bias_acc_n(const float *bias, int32_t n, float inv, int32_t *out) {
    for (int32_t i = 0; i < n; i++) {
        const float v = bias == NULL ? 0.0f : bias[i] * inv;
        const int inside = v < 1073741824.0f && v > -1073741824.0f; /* false for NaN */
        out[i] = inside ? (int32_t)(v >= 0.0f ? v + 0.5f : v - 0.5f) : octo_tr_bias_acc(bias, i, inv);
    }
}

/* The pixel path for 1x1 kernels, for kernel rows that are not whole words (the segment path would
 * copy them per pixel) and for at most OCTO_TR_FWD_PIXELS output pixels (of the batch: the expanded
 * weights would serve few); else the segment path. */
#define OCTO_TR_FWD_PIXELS 16

static int fwd_by_pixels(const octo_dims_t *w_dims, const octo_dims_t *out_dims) {
    return (w_dims->h == 1 && w_dims->w == 1) || (w_dims->w * w_dims->c) % 4 != 0 ||
           (int64_t)out_dims->n * out_dims->h * out_dims->w <= OCTO_TR_FWD_PIXELS;
}

int octo_train_conv_s8_fwd(const octo_train_conv_params_t *p, const octo_dims_t *in_dims, const octo_train_q8_t *x,
                           const octo_dims_t *w_dims, const octo_train_q8_t *w, const float *bias, void *scratch,
                           const octo_dims_t *out_dims, octo_train_q32_t *y) {
    if (!octo_tr_q8_ok(x) || !octo_tr_q8_ok(w) || !octo_tr_q32_out_ok(y) || scratch == NULL ||
        !octo_tr_aligned4(scratch) || !octo_tr_conv_ok(p, in_dims, w_dims, out_dims, 0)) {
        return OCTO_E_ARG;
    }
    const int32_t OC = out_dims->c;
    const int32_t K = w_dims->h * w_dims->w * in_dims->c;
    const float acc_scale = x->scale * w->scale;
    if (K > OCTO_TRAIN_S8_MAX_TERMS || !octo_tr_scale_ok(acc_scale)) {
        return OCTO_E_ARG;
    }
    const int32_t OC4 = round_up(OC, 4), six = octo_tr_six(acc_scale);
    int32_t *bias_acc = (int32_t *)scratch; /* [OC4] */
    const float inv = 1.0f / acc_scale;
    bias_acc_n(bias, OC, inv, bias_acc);
    for (int32_t oc = OC; oc < OC4; oc++) {
        bias_acc[oc] = 0;
    }
    if (fwd_by_pixels(w_dims, out_dims)) {
        fwd_pixels(p, in_dims, x, w_dims, w, bias_acc, &bias_acc[OC4], out_dims, y->data);
        act_s32(y->data, octo_tr_count(out_dims), p->act, six);
    } else {
        fwd_segments(p, in_dims, x, w_dims, w, bias_acc, &bias_acc[OC4], out_dims, six, y->data);
    }
    y->scale = acc_scale;
    return OCTO_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* Input gradient                                                                                 */
/* ---------------------------------------------------------------------------------------------- */

/* The transposed weights are expanded a chunk of blocks of four input channels at a time (at most
 * OCTO_TR_BWD_CHUNK bytes, at least one block), each chunk then runs every input pixel. out_c is
 * padded to a multiple of 4 with zero weights; with 1x1 kernels a pixel's dy row is then copied to
 * a padded row (other kernels with out_c % 4 != 0: the transposed-weight dot below, in chunks of
 * input channels). */
#define OCTO_TR_BWD_CHUNK 8192
/* dy expanded to int16 pairs (every pixel of the call, when they fit): the kernel then loads a group's
 * pairs with one LDRD instead of LDR + 2 SXTB16 per block of four input channels. */
#define OCTO_TR_BWD_DY 2048

static size_t bwd_chunk(size_t n, size_t bytes) {
    const size_t fit = OCTO_TR_BWD_CHUNK / bytes;
    return fit < 1 ? 1 : (fit < n ? fit : n);
}

/* segments: a chunk of expanded transposed weights (8*KH*KW*OC4 bytes per block of four input
 * channels), the chunk's block sums 16 per block, a padded dy row OC4, expanded dy OCTO_TR_BWD_DY;
 * the dot (out_c % 4 != 0, kernels larger than 1x1): a chunk of the int8 transpose, KH*KW*OC per channel */
size_t octo_train_conv_s8_bwd_input_scratch_size(const octo_dims_t *w_dims) {
    if (!octo_tr_dims_ok(w_dims)) {
        return 0;
    }
    const size_t c4 = round_up_z((size_t)w_dims->c, 4), oc4 = round_up_z((size_t)w_dims->n, 4);
    const size_t taps = (size_t)w_dims->h * (size_t)w_dims->w;
    const size_t blk = 8 * taps * oc4, ch = bwd_chunk(c4 / 4, blk);
    const size_t seg = ch * blk + 16 * ch + oc4 + OCTO_TR_BWD_DY;
    if (w_dims->n % 4 == 0 || taps == 1) {
        return seg;
    }
    const size_t row = taps * (size_t)w_dims->n, dot = bwd_chunk((size_t)w_dims->c, row) * row;
    return seg > dot ? seg : dot;
}

/* The kx taps of class r (kx % SW == r) are stored in descending kx order after
 * the classes below r: slot of kx. */
static int32_t kx_class_start(int32_t r, int32_t KW, int32_t SW) {
    return (KW / SW) * r + octo_tr_min(r, KW % SW);
}

/* out_c % 4 != 0 (kernels larger than 1x1): the weights transposed to [C][KH][KW][OC], a chunk
 * of input channels at a time, one dot per tap. */
static void bwd_input_dot(const octo_train_conv_params_t *p, const octo_dims_t *in_dims, const octo_dims_t *w_dims,
                          const octo_train_q8_t *w, const octo_dims_t *out_dims, const octo_train_q8_t *dy,
                          int8_t *wt, octo_train_q32_t *dx) {
    const int32_t H = in_dims->h, W = in_dims->w, C = in_dims->c;
    const int32_t OH = out_dims->h, OW = out_dims->w, OC = out_dims->c;
    const int32_t KH = w_dims->h, KW = w_dims->w;
    const int32_t SH = p->stride_h, SW = p->stride_w;
    const int32_t row = KH * KW * OC, CH = (int32_t)bwd_chunk((size_t)C, (size_t)row);
    for (int32_t c0 = 0; c0 < C; c0 += CH) {
        const int32_t nc = octo_tr_min(CH, C - c0);
        for (int32_t oc = 0; oc < OC; oc++) {
            for (int32_t t = 0; t < KH * KW; t++) {
                const int8_t *src = &w->data[(oc * KH * KW + t) * C + c0];
                for (int32_t ic = 0; ic < nc; ic++) {
                    wt[ic * row + t * OC + oc] = src[ic];
                }
            }
        }
        for (int32_t b = 0; b < in_dims->n; b++) {
            for (int32_t iy = 0; iy < H; iy++) {
                const int32_t ty = iy + p->pad_h;
                for (int32_t ix = 0; ix < W; ix++) {
                    const int32_t tx = ix + p->pad_w;
                    int32_t *g = &dx->data[((b * H + iy) * W + ix) * C + c0];
                    memset(g, 0, (size_t)nc * sizeof(int32_t));
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
                            for (int32_t ic = 0; ic < nc; ic++) {
                                g[ic] = octo_tr_dot_s8(dyr, &wr[ic * row], OC, g[ic]);
                            }
                        }
                    }
                }
            }
        }
    }
}

/* Rows r0..r3 (four output channels, a word of four input channels c0..c3 each) to the eight
 * expanded words of octo_tr_expand_t4: PKHBT/PKHTB on the int8 words first, then SXTB16. */
static inline void expand_t4p(uint32_t r0, uint32_t r1, uint32_t r2, uint32_t r3, uint32_t *dst) {
    const uint32_t a = octo_tr_pk_lo(r0, r2), b = octo_tr_pk_hi(r0, r2); /* r0, r2: bytes c0 c1 | c2 c3 */
    const uint32_t c = octo_tr_pk_lo(r1, r3), d = octo_tr_pk_hi(r1, r3);
    dst[0] = octo_sxtb16(a);
    dst[1] = octo_sxtb16(c);
    dst[2] = octo_sxtb16_ror8(a);
    dst[3] = octo_sxtb16_ror8(c);
    dst[4] = octo_sxtb16(b);
    dst[5] = octo_sxtb16(d);
    dst[6] = octo_sxtb16_ror8(b);
    dst[7] = octo_sxtb16_ror8(d);
}

/* groups >= 1 whole groups of four output channels: the word at s + i*K of row i (i < 4), then
 * s += 4*K, eight words to dst per group (expand_t4p). */
#if OCTO_HAVE_DSP && defined(__thumb2__)
void octo_tr_expand_t_s8(const int8_t *s, int32_t K, int32_t groups, uint32_t *dst);

/* r0 s, r1 K, r2 2K, r3 3K, r4-r7 the rows then dst[0..3], r8-r11 the packed words then dst[4..7],
 * r12 dst, lr groups left. */
__asm__(".section .text.octo_tr_expand_t_s8,\"ax\",%progbits\n\t"
        ".syntax unified\n\t"
        ".thumb\n\t"
        ".p2align 2\n\t"
        ".global octo_tr_expand_t_s8\n\t"
        ".type octo_tr_expand_t_s8, %function\n\t"
        ".thumb_func\n"
        "octo_tr_expand_t_s8:\n\t"
        "push {r4-r11, lr}\n\t"
        "mov r12, r3\n\t"
        "mov lr, r2\n\t"
        "lsl r2, r1, #1\n\t"
        "add r3, r2, r1\n"
        ".Let_grp:\n\t"
        "ldr r4, [r0]\n\t"
        "ldr r5, [r0, r1]\n\t"
        "ldr r6, [r0, r2]\n\t"
        "ldr r7, [r0, r3]\n\t"
        "add r0, r0, r1, lsl #2\n\t"
        "pkhbt r8, r4, r6, lsl #16\n\t"
        "pkhtb r9, r6, r4, asr #16\n\t"
        "pkhbt r10, r5, r7, lsl #16\n\t"
        "pkhtb r11, r7, r5, asr #16\n\t"
        "sxtb16 r4, r8\n\t"
        "sxtb16 r5, r10\n\t"
        "sxtb16 r6, r8, ror #8\n\t"
        "sxtb16 r7, r10, ror #8\n\t"
        "sxtb16 r10, r9, ror #8\n\t"
        "sxtb16 r8, r9\n\t"
        "sxtb16 r9, r11\n\t"
        "sxtb16 r11, r11, ror #8\n\t"
        "stm r12!, {r4-r11}\n\t"
        "subs lr, lr, #1\n\t"
        "bne .Let_grp\n\t"
        "pop {r4-r11, pc}\n\t"
        ".size octo_tr_expand_t_s8, .-octo_tr_expand_t_s8\n\t"
        ".text");
#else
static void octo_tr_expand_t_s8(const int8_t *s, int32_t K, int32_t groups, uint32_t *dst) {
    for (int32_t g = 0; g < groups; g++, dst += 8, s += 4 * K) {
        expand_t4p(octo_read_u32(s), octo_read_u32(&s[K]), octo_read_u32(&s[2 * K]), octo_read_u32(&s[3 * K]), dst);
    }
}
#endif

/* Blocks [cb0, cb0 + nb) of the transposed weights, expanded: [nb][KH][KW slots][OG][8 words],
 * output channels o >= OC and input channels >= C zero. */
static void bwd_expand(const octo_train_conv_params_t *p, const octo_dims_t *w_dims, const int8_t *w, int32_t cb0,
                       int32_t nb, uint32_t *wt) {
    const int32_t KH = w_dims->h, KW = w_dims->w, C = w_dims->c, OC = w_dims->n;
    const int32_t SW = p->stride_w, K = KH * KW * C, OG = round_up(OC, 4) / 4, OGF = OC / 4;
    for (int32_t ky = 0; ky < KH; ky++) {
        for (int32_t kx = 0; kx < KW; kx++) {
            const int32_t r = kx % SW, n_r = (KW - r + SW - 1) / SW;
            const int32_t slot = kx_class_start(r, KW, SW) + n_r - 1 - kx / SW;
            for (int32_t cb = cb0; cb < cb0 + nb; cb++) {
                uint32_t *dst = &wt[(((cb - cb0) * KH + ky) * KW + slot) * OG * 8];
                const int8_t *s = &w[(ky * KW + kx) * C + 4 * cb]; /* w[0][ky][kx][4 cb] */
                const int32_t nc = C - 4 * cb; /* channels of the block in w (zero weights past C) */
                int32_t g = 0;
                if (nc >= 4 && OGF > 0) {
                    octo_tr_expand_t_s8(s, K, OGF, dst);
                    g = OGF;
                    dst += 8 * OGF;
                    s += 4 * K * OGF;
                }
                for (; g < OG; g++, dst += 8, s += 4 * K) {
                    uint32_t v[4];
                    for (int32_t i = 0; i < 4; i++) {
                        v[i] = 4 * g + i >= OC ? 0 : (nc >= 4 ? octo_read_u32(&s[i * K]) : octo_tr_read_part(&s[i * K], nc));
                    }
                    expand_t4p(v[0], v[1], v[2], v[3], dst);
                }
            }
        }
    }
}

int octo_train_conv_s8_bwd_input(const octo_train_conv_params_t *p, const octo_dims_t *in_dims,
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
    const int pointwise = KH == 1 && KW == 1;
    if ((OC & 3) != 0 && !pointwise) {
        bwd_input_dot(p, in_dims, w_dims, w, out_dims, dy, (int8_t *)scratch, dx);
        return OCTO_OK;
    }
    const int32_t OC4 = round_up(OC, 4), OG = OC4 / 4, NB = round_up(C, 4) / 4;
    const int32_t blk = KH * KW * OG * OCTO_TR_GROUP_BYTES, CH = (int32_t)bwd_chunk((size_t)NB, (size_t)blk);
    uint32_t *wt = (uint32_t *)scratch; /* [CH][KH][KW slots][OG][4 channels x 2 words] */
    int32_t *tmp = (int32_t *)&wt[CH * blk / 4];
    int8_t *pad = (int8_t *)&tmp[4 * CH]; /* a dy row padded to OC4 (1x1 kernels, out_c % 4 != 0) */
    uint32_t *dye = (uint32_t *)&pad[OC4]; /* [N*OH*OW][OG][2 words] when they fit OCTO_TR_BWD_DY */
    /* (each dy group serves up to KH*KW taps of NB blocks: unpacking it once pays from about eight) */
    const int expanded = NB * KH * KW >= 8 && (int64_t)out_dims->n * OH * OW * OG * 8 <= OCTO_TR_BWD_DY;
    const int padded = (OC & 3) != 0 && !expanded;
    const int32_t pstep = expanded ? OG * 8 : OC; /* bytes from one dy pixel to the next */
    if (padded) {
        memset(&pad[OC], 0, (size_t)(OC4 - OC));
    }
    if (expanded) {
        const int8_t *g = dy->data;
        uint32_t *d = dye;
        for (int32_t i = 0; i < out_dims->n * OH * OW; i++, g += OC, d += 2 * OG) {
            unpack_s8(g, OC / 4, d, 2);
            if ((OC & 3) != 0) {
                const uint32_t v = octo_tr_read_part(&g[OC & ~3], OC & 3);
                d[2 * (OG - 1)] = octo_sxtb16(v);
                d[2 * (OG - 1) + 1] = octo_sxtb16_ror8(v);
            }
        }
    }
    const int8_t *dyb = expanded ? (const int8_t *)dye : dy->data;
    for (int32_t cb0 = 0; cb0 < NB; cb0 += CH) {
        const int32_t nb = octo_tr_min(CH, NB - cb0), nout = octo_tr_min(4 * nb, C - 4 * cb0);
        bwd_expand(p, w_dims, w->data, cb0, nb, wt);
        seg_list_t l;
        seg_init(&l, wt, blk, nb, NULL, tmp, OCTO_TRAIN_ACT_NONE, 0);
        l.expanded = expanded;
        for (int32_t b = 0; b < in_dims->n; b++) {
            for (int32_t iy = 0; iy < H; iy++) {
                /* taps ky with iy = oy*SH - pad_h + ky for an output row 0 <= oy < OH */
                const int32_t ty = iy + p->pad_h;
                int32_t kept = 0, pslot = 0, pn = 0; /* stride 1: the previous pixel's runs, one dy pixel on, serve */
                for (int32_t ix = 0; ix < W; ix++) {
                    int32_t *out = &dx->data[((b * H + iy) * W + ix) * C + 4 * cb0];
                    /* taps kx = r, r + SW, ... (r = tx % SW) reach ix from the consecutive output columns
                     * ox = (tx - kx) / SW: those with kx < KW, kx <= tx and ox < OW form one run */
                    const int32_t tx = ix + p->pad_w;
                    if (kept) {
                        const int32_t kx_hi = octo_tr_min(KW - 1, tx), kx_lo = octo_tr_max(0, tx - (OW - 1));
                        if (kx_lo <= kx_hi && KW - 1 - kx_hi == pslot && (kx_hi - kx_lo + 1) * OG == pn) {
                            for (int32_t i = 0; i < l.job.nseg; i++) {
                                l.seg[i].a += pstep;
                            }
                            seg_out(&l, out, nout);
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
                                    const int8_t *run = &dyb[((b * OH + oy) * OW + ox0) * pstep];
                                    if (padded) { /* 1x1: one tap, one dy pixel */
                                        memcpy(pad, run, (size_t)OC);
                                        run = pad;
                                    }
                                    seg_add(&l, run, (ky * KW + slot) * OG * OCTO_TR_GROUP_BYTES, n);
                                }
                            }
                            kept = SW == 1 && !l.split && !padded;
                            pslot = slot;
                            pn = n;
                        }
                    }
                    seg_out(&l, out, nout);
                }
            }
        }
    }
    return OCTO_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* Weight gradient                                                                                */
/* ---------------------------------------------------------------------------------------------- */

/* eight receptive fields and eight dy rows as int16, 16*(KH*KW*C + OC), and two
 * receptive fields assembled at the border, 2*K4 (K4 = kh*kw*in_c rounded up to 4) */
size_t octo_train_conv_s8_bwd_weight_scratch_size(const octo_dims_t *w_dims) {
    if (!octo_tr_dims_ok(w_dims)) {
        return 0;
    }
    const size_t k = (size_t)w_dims->h * (size_t)w_dims->w * (size_t)w_dims->c;
    return 16 * (k + (size_t)w_dims->n) + 2 * round_up_z(k, 4);
}

static inline int pix_inside(const pix_t *q, const octo_dims_t *in_dims, int32_t KH, int32_t KW) {
    return q->ix0 >= 0 && q->ix0 + KW <= in_dims->w && q->iy0 >= 0 && q->iy0 + KH <= in_dims->h;
}

/* Eight positions' rows of n int8 at src + q*stride (q < 8) staged as octo_tr_stage2 pairs. */
static void stage8(uint32_t *dst, const int8_t *src, int32_t stride, int32_t n) {
    for (int32_t i = 0; i < 4; i++, src += 2 * stride) {
        octo_tr_stage2(&dst[i], src, &src[stride], n);
    }
}

int octo_train_conv_s8_bwd_weight(const octo_train_conv_params_t *p, const octo_dims_t *in_dims,
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
    const int32_t K = KH * KW * C, row = KW * C;
    const int32_t positions = in_dims->n * OH * OW;
    const float acc_scale = x->scale * dy->scale;
    if ((int64_t)in_dims->n * OH * OW > OCTO_TRAIN_S8_MAX_TERMS || !octo_tr_scale_ok(acc_scale)) {
        return OCTO_E_ARG;
    }
    uint32_t *pe = (uint32_t *)scratch; /* [K][8] int16 receptive fields */
    uint32_t *de = &pe[4 * K];          /* [OC][8] int16 dy rows */
    int8_t *patch_a = (int8_t *)&de[4 * OC], *patch_b = &patch_a[round_up(K, 4)];
    zero_s8(&patch_a[K], round_up(K, 4) - K); /* pix_border leaves the tails */
    zero_s8(&patch_b[K], round_up(K, 4) - K);
    if (positions > 2 && positions < 8) { /* the stage words of the missing positions are read (times a zero dy) */
        memset(pe, 0, (size_t)K * 16);
    }
    if (positions <= 2) { /* else the first rank-8 update writes dw */
        memset(dw->data, 0, (size_t)OC * (size_t)K * sizeof(int32_t));
    }
    if (db != NULL) {
        memset(db->data, 0, (size_t)OC * sizeof(int32_t));
    }
    const octo_tr_rank8_t job = {pe, de, dw->data, K, OC};
    const int32_t xrow = W * C; /* x bytes from one image row to the next */
    /* 1x1 kernels over the whole map: position q's field is x + q*C */
    const int flat = KH == 1 && KW == 1 && p->stride_h == 1 && p->stride_w == 1 && p->pad_h == 0 &&
                     p->pad_w == 0 && OH == H && OW == W;
    const int32_t xstep = p->stride_w * C; /* x bytes from one output column to the next */
    pix_t cur;
    pix_first(&cur, p);
    for (int32_t pos0 = 0; pos0 < positions; pos0 += 8) {
        const int32_t nq = octo_tr_min(8, positions - pos0);
        if (nq == 8 && (flat || (cur.ox + 7 < OW && pix_inside(&cur, in_dims, KH, KW) &&
                                 cur.ix0 + 7 * p->stride_w + KW <= W))) {
            /* eight positions of one output row, every field inside x: kernel row by kernel row */
            const int8_t *r = &x->data[flat ? pos0 * C : ((cur.b * H + cur.iy0) * W + cur.ix0) * C];
            if (flat) {
                stage8(pe, r, C, K);
            } else {
                for (int32_t ky = 0; ky < KH; ky++, r += xrow) {
                    stage8(&pe[4 * ky * row], r, xstep, row);
                }
            }
            stage8(de, &dy->data[pos0 * OC], OC, OC);
            if (!flat) { /* eight columns on (the last one may end the row) */
                cur.ox += 7;
                cur.ix0 += 7 * p->stride_w;
                pix_next(&cur, p, out_dims);
            } else if (pos0 + 8 < positions && positions - pos0 - 8 < 8) { /* the pair loop takes the rest */
                const int32_t next = pos0 + 8;
                cur.ox = next % OW;
                cur.oy = next / OW % OH;
                cur.b = next / (OW * OH);
                cur.iy0 = cur.oy;
                cur.ix0 = cur.ox;
            }
        } else {
            for (int32_t q = 0; q < 8; q += 2) {
                if (q >= nq) { /* missing positions: zero dy rows make them no-ops */
                    for (int32_t o = 0; o < OC; o++) {
                        de[4 * o + (q >> 1)] = 0;
                    }
                    continue;
                }
                const int has_b = q + 1 < nq;
                const pix_t fa = cur;
                if (has_b) {
                    pix_next(&cur, p, out_dims);
                }
                const pix_t fb = cur; /* fa again without a second position (its dy is zero) */
                pix_next(&cur, p, out_dims);
                uint32_t *col = &pe[q >> 1];
                if (pix_inside(&fa, in_dims, KH, KW) && pix_inside(&fb, in_dims, KH, KW)) {
                    /* the common case: each kernel row of both fields straight from x */
                    const int8_t *ra = &x->data[((fa.b * H + fa.iy0) * W + fa.ix0) * C];
                    const int8_t *rb = &x->data[((fb.b * H + fb.iy0) * W + fb.ix0) * C];
                    for (int32_t ky = 0; ky < KH; ky++, col += 4 * row, ra += xrow, rb += xrow) {
                        octo_tr_stage2(col, ra, rb, row);
                    }
                } else {
                    octo_tr_stage2(col, pix_border(&fa, in_dims, x->data, KH, KW, patch_a),
                                   pix_border(&fb, in_dims, x->data, KH, KW, patch_b), K);
                }
                const int8_t *g = &dy->data[(pos0 + q) * OC];
                octo_tr_stage2(&de[q >> 1], g, has_b ? &g[OC] : NULL, OC);
            }
        }
        if (pos0 == 0 && positions > 2) {
            octo_tr_rank8w_s8(&job);
        } else {
            octo_tr_rank_s8(&job, nq);
        }
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
