/* octo_train_dwconv_s8.c - DEPTHWISE_CONV_2D (multiplier 1), INT8 training:
 * forward, input gradient, weight gradient, int32 accumulation.
 *
 * Channels are independent and contiguous (NHWC, weights [1,KH,KW,C]), so four
 * of them share one 32-bit load: SXTB16 splits it into lanes (0,2) and (1,3)
 * and SMLABB/SMLATT multiply-accumulate each lane into its own int32
 * (octo_dsp.h). Groups of four channels are outermost; the last C % 4 channels
 * are the group of channels C-4..C-1 (C >= 4), overlapping the one before.
 *
 * forward      per group, a table of the taps on the stack ("records": byte
 *              offset of the tap in x from the window origin, then its four
 *              weights expanded to two int16 pairs), so one LDM brings a tap.
 *              Output rows and columns split into the border (clipped windows)
 *              and the interior (whole windows); every block of outputs sharing
 *              one clipping runs the same list of record runs ("segments")
 *              with no bounds checks (octo_tr_dw_gather; Thumb-2 assembly on
 *              DSP cores: LDM + LDR + 2 SXTB16 + 4 SMLAxy per tap, 9 taps
 *              unrolled, entered through TBB).
 * input grad   the same walk in the transposed direction: every dy pixel, once
 *              unpacked, is scattered into the four int32 sums of each dx pixel
 *              of its window (LDM, 4 SMLAxy, STM per tap) over a dx zeroed
 *              first, so the cost per MAC does not depend on the stride. The
 *              overlapping lanes of a last group have zero weights.
 * weight grad  per tap and group, the sum over the positions whose tap falls
 *              inside x: a rectangle of positions, walked by rows of dy and x
 *              with one offset, two positions per iteration (octo_tr_dw_wgrad),
 *              or by columns when they are fewer. At stride_w 1, three
 *              horizontally adjacent taps go together where all three are
 *              inside x: each x pixel is loaded once for the three, two
 *              channels a pass (octo_tr_dw_wgrad3). The bias gradient sums dy
 *              with SXTAB16 in 16-bit lanes, flushed every 255 positions.
 *
 * small maps   (at most OCTO_TR_DW_SMALL pixels in and out: MobileNet's 4x4,
 *              2x2 and 1x1 layers) the blocks above would cost more to set up
 *              per channel group and border output than their MACs: every
 *              output (output pixel, input pixel, weight tap) gets its list of
 *              (a, b) offset pairs once and one call walks all channel groups
 *              through it (octo_tr_dwc_s8: LDRD + 2 LDR + 4 SXTB16 + 4 SMLAxy
 *              per pair and group).
 *
 * Fewer than four channels, more than OCTO_TR_DW_TAPS taps or tensors whose
 * byte offsets might not fit in int32 take the plain per-tap loops (generic_*).
 * No scratch: the fast path keeps at most ~0.9 KB on the stack (records and
 * segments), the small-map path 0.5 KB (pairs). Every sum is an exact int32
 * sum of the same int8 products (bounded by OCTO_TRAIN_S8_MAX_TERMS), so the
 * order of the additions does not matter: the assembly on DSP cores, the C
 * below and the generic loops give the same bits. */
#include <string.h>

#include "octo_train_internal.h"

/* ---------------------------------------------------------------------------------------------- */
/* Generic loops                                                                                  */
/* ---------------------------------------------------------------------------------------------- */

/* acc[j] += a[j] * b[j] for j < n (n <= 4): the SIMD path for a full group of four. */
static inline void mac_group(const int8_t *a, const int8_t *b, int32_t n, int32_t acc[4]) {
    if (n == 4) {
        octo_tr_mac4_s8(a, b, acc);
    } else {
        for (int32_t j = 0; j < n; j++) {
            acc[j] += (int32_t)a[j] * (int32_t)b[j];
        }
    }
}

__attribute__((noinline))
static void generic_fwd(const octo_train_conv_params_t *p, const octo_dims_t *in_dims, const int8_t *x,
                        const octo_dims_t *w_dims, const int8_t *w, const float *bias, float inv, int32_t six,
                        const octo_dims_t *out_dims, int32_t *y) {
    const int32_t H = in_dims->h, W = in_dims->w, C = in_dims->c;
    const int32_t OH = out_dims->h, OW = out_dims->w;
    const int32_t KH = w_dims->h, KW = w_dims->w;
    for (int32_t c = 0; c < C; c += 4) { /* channel group outermost: its biases are converted once */
        const int32_t n = octo_tr_min(4, C - c);
        int32_t b_acc[4] = {0, 0, 0, 0};
        for (int32_t j = 0; j < n; j++) {
            b_acc[j] = octo_tr_bias_acc(bias, c + j, inv);
        }
        for (int32_t b = 0; b < in_dims->n; b++) {
            for (int32_t oy = 0; oy < OH; oy++) {
                const int32_t iy0 = oy * p->stride_h - p->pad_h;
                int32_t ky0, ky1;
                octo_tr_taps(iy0, KH, H, &ky0, &ky1);
                for (int32_t ox = 0; ox < OW; ox++) {
                    const int32_t ix0 = ox * p->stride_w - p->pad_w;
                    int32_t kx0, kx1;
                    octo_tr_taps(ix0, KW, W, &kx0, &kx1);
                    int32_t acc[4] = {b_acc[0], b_acc[1], b_acc[2], b_acc[3]};
                    for (int32_t ky = ky0; ky < ky1; ky++) {
                        for (int32_t kx = kx0; kx < kx1; kx++) {
                            mac_group(&x[((b * H + iy0 + ky) * W + ix0 + kx) * C + c], &w[(ky * KW + kx) * C + c], n,
                                      acc);
                        }
                    }
                    int32_t *yo = &y[((b * OH + oy) * OW + ox) * C + c];
                    for (int32_t j = 0; j < n; j++) {
                        yo[j] = octo_tr_act_s32(acc[j], p->act, six);
                    }
                }
            }
        }
    }
}

__attribute__((noinline))
static void generic_bwd_input(const octo_train_conv_params_t *p, const octo_dims_t *in_dims,
                              const octo_dims_t *w_dims, const int8_t *w, const octo_dims_t *out_dims,
                              const int8_t *dy, int32_t *dx) {
    const int32_t H = in_dims->h, W = in_dims->w, C = in_dims->c;
    const int32_t OH = out_dims->h, OW = out_dims->w;
    const int32_t KH = w_dims->h, KW = w_dims->w;
    const int32_t SH = p->stride_h, SW = p->stride_w;
    for (int32_t b = 0; b < in_dims->n; b++) {
        for (int32_t iy = 0; iy < H; iy++) {
            const int32_t ty = iy + p->pad_h;
            for (int32_t ix = 0; ix < W; ix++) {
                const int32_t tx = ix + p->pad_w;
                int32_t *g = &dx[((b * H + iy) * W + ix) * C];
                for (int32_t c = 0; c < C; c += 4) {
                    const int32_t n = octo_tr_min(4, C - c);
                    int32_t acc[4] = {0, 0, 0, 0};
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
                            mac_group(&dy[((b * OH + oy) * OW + ox) * C + c], &w[(ky * KW + kx) * C + c], n, acc);
                        }
                    }
                    for (int32_t j = 0; j < n; j++) {
                        g[c + j] = acc[j];
                    }
                }
            }
        }
    }
}

__attribute__((noinline))
static void generic_bwd_weight(const octo_train_conv_params_t *p, const octo_dims_t *in_dims, const int8_t *x,
                               const octo_dims_t *out_dims, const int8_t *dy, const octo_dims_t *w_dims,
                               int32_t *dw) {
    const int32_t H = in_dims->h, W = in_dims->w, C = in_dims->c;
    const int32_t OH = out_dims->h, OW = out_dims->w;
    const int32_t KH = w_dims->h, KW = w_dims->w;
    for (int32_t ky = 0; ky < KH; ky++) {
        for (int32_t kx = 0; kx < KW; kx++) {
            for (int32_t c = 0; c < C; c += 4) {
                const int32_t n = octo_tr_min(4, C - c);
                int32_t acc[4] = {0, 0, 0, 0};
                for (int32_t b = 0; b < in_dims->n; b++) {
                    for (int32_t oy = 0; oy < OH; oy++) {
                        const int32_t iy = oy * p->stride_h - p->pad_h + ky;
                        if (iy < 0 || iy >= H) {
                            continue;
                        }
                        for (int32_t ox = 0; ox < OW; ox++) {
                            const int32_t ix = ox * p->stride_w - p->pad_w + kx;
                            if (ix < 0 || ix >= W) {
                                continue;
                            }
                            mac_group(&dy[((b * OH + oy) * OW + ox) * C + c], &x[((b * H + iy) * W + ix) * C + c], n,
                                      acc);
                        }
                    }
                }
                int32_t *wo = &dw[(ky * KW + kx) * C + c];
                for (int32_t j = 0; j < n; j++) {
                    wo[j] = acc[j];
                }
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* The fast path: records, segments, blocks                                                       */
/* ---------------------------------------------------------------------------------------------- */

/* Most taps of the fast path (7x7): records on the stack, 12 bytes each. */
#define OCTO_TR_DW_TAPS 49
/* Most kernel rows of the fast path when KW > 1 (a block with clipped columns
 * has a segment per row); the segment list adds the end mark. */
#define OCTO_TR_DW_ROWS 8
#define OCTO_TR_DW_SEGS (OCTO_TR_DW_ROWS + 1)
/* Words per record: byte offset, (w0, w2), (w1, w3). */
#define OCTO_TR_DW_REC 3

/* A run of records [start, end), start < end; entry = number of records % 9
 * (the 9-record unrolled loop is entered so that its first pass runs entry
 * records, or 9). A list ends with start == NULL. On ARM: 0 entry, 4 start, 8 end. */
typedef struct {
    int32_t entry;
    const uint32_t *start;
    const uint32_t *end;
} octo_tr_dwseg_t;

/* Forward: rows x n outputs of four int32 sums (a block of one clipping).
 * Output (r, i): acc = init; for every record of every segment, the four int8
 * at a + org + r*rstep + i*step + off against its weights; act; out. Steps in
 * bytes (outputs 4-byte aligned). Offsets on ARM: 0 a, 4 org, 8 step, 12 ostep,
 * 16 rstep, 20 orstep, 24 n, 28 rows, 32 seg, 36 out, 40 init, 44 act, 48 hi. */
typedef struct {
    const int8_t *a;
    int32_t org;
    int32_t step;
    int32_t ostep;
    int32_t rstep;
    int32_t orstep;
    int32_t n;
    int32_t rows;
    const octo_tr_dwseg_t *seg;
    int32_t *out;
    const int32_t *init;
    int32_t act;
    int32_t hi;
} octo_tr_dwgather_t;

/* Input gradient: for dy pixel (r, i), the four int8 at g + r*grstep + i*gstep,
 * times every record's weights, added to the four int32 at byte d + org +
 * r*rstep + i*step + off. Offsets on ARM: 0 g, 4 gstep, 8 grstep, 12 d, 16 org,
 * 20 step, 24 rstep, 28 n, 32 rows, 36 seg. */
typedef struct {
    const int8_t *g;
    int32_t gstep;
    int32_t grstep;
    int32_t *d;
    int32_t org;
    int32_t step;
    int32_t rstep;
    int32_t n;
    int32_t rows;
    const octo_tr_dwseg_t *seg;
} octo_tr_dwscatter_t;

/* Weight gradient: acc[j] += sum over rows r < rows, positions i < n of
 * g[r*grstep + i*c + j] * x[r*xrstep + i*(c << shift) + j], j < 4 (the
 * portable loop takes any x step). Offsets on ARM: 0 g, 4 x, 8 c, 12 shift,
 * 16 n, 20 rows, 24 grstep, 28 xrstep, 32 acc. */
typedef struct {
    const int8_t *g;
    const int8_t *x;
    int32_t c;
    int32_t shift;
    int32_t n;
    int32_t rows;
    int32_t grstep;
    int32_t xrstep;
    int32_t *acc;
} octo_tr_dwwgrad_t;

/* Weight gradient of three horizontally adjacent taps at stride 1: for rows
 * r < rows, positions i < n, dy at g + r*grstep + i*c and x of tap t at x +
 * r*xrstep + (i + t)*c, so each x pixel is loaded once for the three taps.
 * acc[lane][tap][2] (12 int32) is added to: lane 0 holds channels (0, 2), lane 1
 * (1, 3). Offsets on ARM: 0 g, 4 x, 8 c, 12 n, 16 rows, 20 grstep, 24 xrstep, 28 acc. */
typedef struct {
    const int8_t *g;
    const int8_t *x;
    int32_t c;
    int32_t n;
    int32_t rows;
    int32_t grstep;
    int32_t xrstep;
    int32_t *acc;
} octo_tr_dwwgrad3_t;

/* --- the Thumb-2 blocks (DSP cores) ----------------------------------------------------------- */

#if OCTO_HAVE_DSP && defined(__thumb2__)
#define OCTO_TR_DW_ASM 1
void octo_tr_dw_gather(const octo_tr_dwgather_t *job);
void octo_tr_dw_scatter(const octo_tr_dwscatter_t *job);
void octo_tr_dw_wgrad(const octo_tr_dwwgrad_t *job);
void octo_tr_dw_wgrad3(const octo_tr_dwwgrad3_t *job);
void octo_tr_dw_zero(int32_t *p, int32_t bytes);

/* The 9-entry TBB table of a 9-record unrolled loop: entry e (records % 9)
 * starts at record k = (9 - e) % 9, 10 + 32*k bytes after the table (the table
 * and its padding, then 32-byte records: OCTO_TR_DW_CHECK asserts the layout). */
#define OCTO_TR_DW_TBB ".byte 5, 133, 117, 101, 85, 69, 53, 37, 21, 0\n"
#define OCTO_TR_DW_CHECK(p)                                                                                            \
    ".if (" p "t0 - " p "tbl - 10) | (" p "t1 - " p "t0 - 32) | (" p "t8 - " p "t0 - 256)\n\t"                         \
    ".error \"octo_train_dwconv_s8: unexpected unrolled loop layout\"\n\t"                                             \
    ".endif\n\t"

/* Gather: one record (r6) into the sums r0-r3: x at origin r4 + offset, unpacked
 * into r5 (lanes 0, 2) and r8 (lanes 1, 3), times the weights r10, r11. */
#define OCTO_TR_DW_GTAP(label)                                                                                         \
    label ":\n\t"                                                                                                      \
    "ldm r6!, {r9, r10, r11}\n\t"                                                                                      \
    "ldr r5, [r4, r9]\n\t"                                                                                             \
    "sxtb16 r8, r5, ror #8\n\t"                                                                                        \
    "sxtb16 r5, r5\n\t"                                                                                                \
    "smlabb r0, r5, r10, r0\n\t"                                                                                       \
    "smlatt r2, r5, r10, r2\n\t"                                                                                       \
    "smlabb r1, r8, r11, r1\n\t"                                                                                       \
    "smlatt r3, r8, r11, r3\n"
#define OCTO_TR_DW_RELU(r) "bic " r ", " r ", " r ", asr #31\n\t"
#define OCTO_TR_DW_MIN(r) "cmp " r ", r7\n\tit gt\n\tmovgt " r ", r7\n\t"

/* job (r0): a 0, org 4, step 8, ostep 12, rstep 16, orstep 20, n 24, rows 28,
 * seg 32, out 36, init 40, act 44, hi 48. Frame: [sp] seg, [sp+4] init,
 * [sp+8] step, [sp+12] ostep, [sp+16] end of the row's outputs, [sp+20] rows
 * left, [sp+24] row origin, [sp+28] row output, [sp+32] rstep, [sp+36] orstep,
 * [sp+40] act, [sp+44] hi, [sp+48] n*ostep. In the loop: r0-r3 the sums, r4
 * the window origin, r5 entry then x, r6/r7 the segment's records, r8 x,
 * r9-r11 a record, r12 the output, lr the segment list. */
__asm__(".section .text.octo_tr_dw_gather,\"ax\",%progbits\n\t"
        ".syntax unified\n\t"
        ".thumb\n\t"
        ".p2align 2\n\t"
        ".global octo_tr_dw_gather\n\t"
        ".type octo_tr_dw_gather, %function\n\t"
        ".thumb_func\n"
        "octo_tr_dw_gather:\n\t"
        "push {r4-r11, lr}\n\t"
        "sub sp, sp, #56\n\t"
        "ldr r1, [r0, #32]\n\t"
        "ldr r2, [r0, #40]\n\t"
        "strd r1, r2, [sp, #0]\n\t"
        "ldrd r3, r4, [r0, #8]\n\t"
        "strd r3, r4, [sp, #8]\n\t"
        "ldrd r5, r6, [r0, #24]\n\t"
        "mul r5, r5, r4\n\t"
        "str r5, [sp, #48]\n\t"
        "str r6, [sp, #20]\n\t"
        "ldrd r7, r8, [r0, #0]\n\t"
        "add r4, r7, r8\n\t"
        "ldr r12, [r0, #36]\n\t"
        "add r5, r5, r12\n\t"
        "str r5, [sp, #16]\n\t"
        "strd r4, r12, [sp, #24]\n\t"
        "ldrd r1, r2, [r0, #16]\n\t"
        "strd r1, r2, [sp, #32]\n\t"
        "ldrd r1, r2, [r0, #44]\n\t"
        "strd r1, r2, [sp, #40]\n"
        ".Lg_out:\n\t"
        "ldr r7, [sp, #4]\n\t"
        "ldm r7, {r0-r3}\n\t"
        "ldr lr, [sp, #0]\n\t"
        "ldm lr!, {r5, r6, r7}\n"
        ".Lg_disp:\n\t"
        "tbb [pc, r5]\n"
        ".Lg_tbl:\n\t"
        OCTO_TR_DW_TBB
        OCTO_TR_DW_GTAP(".Lg_t0") OCTO_TR_DW_GTAP(".Lg_t1") OCTO_TR_DW_GTAP(".Lg_t2")
        OCTO_TR_DW_GTAP(".Lg_t3") OCTO_TR_DW_GTAP(".Lg_t4") OCTO_TR_DW_GTAP(".Lg_t5")
        OCTO_TR_DW_GTAP(".Lg_t6") OCTO_TR_DW_GTAP(".Lg_t7") OCTO_TR_DW_GTAP(".Lg_t8")
        "\tcmp r6, r7\n\t"
        "bne .Lg_t0\n\t"
        "ldm lr!, {r5, r6, r7}\n\t"
        "cbz r6, .Lg_act\n\t"
        "b .Lg_disp\n"
        ".Lg_act:\n\t"
        "ldr r7, [sp, #40]\n\t"
        "cbz r7, .Lg_put\n\t"
        OCTO_TR_DW_RELU("r0") OCTO_TR_DW_RELU("r1") OCTO_TR_DW_RELU("r2") OCTO_TR_DW_RELU("r3")
        "cmp r7, #1\n\t"
        "beq .Lg_put\n\t"
        "ldr r7, [sp, #44]\n\t"
        OCTO_TR_DW_MIN("r0") OCTO_TR_DW_MIN("r1") OCTO_TR_DW_MIN("r2") OCTO_TR_DW_MIN("r3")
        "\n.Lg_put:\n\t"
        "stm r12, {r0-r3}\n\t"
        "ldrd r7, r8, [sp, #8]\n\t"
        "add r4, r4, r7\n\t"
        "add r12, r12, r8\n\t"
        "ldr r7, [sp, #16]\n\t"
        "cmp r12, r7\n\t"
        "bne .Lg_out\n\t"
        "ldr r7, [sp, #20]\n\t"
        "subs r7, r7, #1\n\t"
        "beq .Lg_done\n\t"
        "str r7, [sp, #20]\n\t"
        "ldrd r4, r12, [sp, #24]\n\t"
        "ldrd r7, r8, [sp, #32]\n\t"
        "add r4, r4, r7\n\t"
        "add r12, r12, r8\n\t"
        "strd r4, r12, [sp, #24]\n\t"
        "ldr r7, [sp, #48]\n\t"
        "add r7, r7, r12\n\t"
        "str r7, [sp, #16]\n\t"
        "b .Lg_out\n"
        ".Lg_done:\n\t"
        "add sp, sp, #56\n\t"
        "pop {r4-r11, pc}\n\t"
        OCTO_TR_DW_CHECK(".Lg_")
        ".size octo_tr_dw_gather, .-octo_tr_dw_gather\n\t"
        ".text");

/* Scatter: one record (r5): the four sums at origin r4 + offset (r9) += dy
 * (r7 lanes 0, 2, r8 lanes 1, 3) times the weights r10, r11. */
#define OCTO_TR_DW_STAP(label)                                                                                         \
    label ":\n\t"                                                                                                      \
    "ldm r5!, {r9, r10, r11}\n\t"                                                                                      \
    "add.w r9, r9, r4\n\t"                                                                                             \
    "ldm r9, {r0-r3}\n\t"                                                                                              \
    "smlabb r0, r7, r10, r0\n\t"                                                                                       \
    "smlatt r2, r7, r10, r2\n\t"                                                                                       \
    "smlabb r1, r8, r11, r1\n\t"                                                                                       \
    "smlatt r3, r8, r11, r3\n\t"                                                                                       \
    "stm r9, {r0-r3}\n"

/* job (r0): g 0, gstep 4, grstep 8, d 12, org 16, step 20, rstep 24, n 28,
 * rows 32, seg 36. Frame: [sp] seg, [sp+8] gstep, [sp+12] step, [sp+16] end
 * of the row's dy, [sp+20] rows left, [sp+24] row dy, [sp+28] row origin,
 * [sp+32] grstep, [sp+36] rstep, [sp+40] n*gstep. In the loop: r0 entry then
 * r0-r3 the sums of a dx pixel, r4 the window origin, r5/r6 the segment's
 * records, r7/r8 dy unpacked, r9-r11 a record, r12 dy, lr the segment list. */
__asm__(".section .text.octo_tr_dw_scatter,\"ax\",%progbits\n\t"
        ".syntax unified\n\t"
        ".thumb\n\t"
        ".p2align 2\n\t"
        ".global octo_tr_dw_scatter\n\t"
        ".type octo_tr_dw_scatter, %function\n\t"
        ".thumb_func\n"
        "octo_tr_dw_scatter:\n\t"
        "push {r4-r11, lr}\n\t"
        "sub sp, sp, #48\n\t"
        "ldr r1, [r0, #36]\n\t"
        "str r1, [sp, #0]\n\t"
        "ldr r1, [r0, #4]\n\t"
        "ldr r2, [r0, #20]\n\t"
        "strd r1, r2, [sp, #8]\n\t"
        "ldrd r3, r4, [r0, #28]\n\t"
        "mul r3, r3, r1\n\t"
        "str r3, [sp, #40]\n\t"
        "str r4, [sp, #20]\n\t"
        "ldr r12, [r0, #0]\n\t"
        "add r3, r3, r12\n\t"
        "str r3, [sp, #16]\n\t"
        "ldrd r4, r5, [r0, #12]\n\t"
        "add r4, r4, r5\n\t"
        "strd r12, r4, [sp, #24]\n\t"
        "ldr r1, [r0, #8]\n\t"
        "ldr r2, [r0, #24]\n\t"
        "strd r1, r2, [sp, #32]\n"
        ".Ls_out:\n\t"
        "ldr r7, [r12]\n\t"
        "sxtb16 r8, r7, ror #8\n\t"
        "sxtb16 r7, r7\n\t"
        "ldr lr, [sp, #0]\n\t"
        "ldm lr!, {r0, r5, r6}\n"
        ".Ls_disp:\n\t"
        "tbb [pc, r0]\n"
        ".Ls_tbl:\n\t"
        OCTO_TR_DW_TBB
        OCTO_TR_DW_STAP(".Ls_t0") OCTO_TR_DW_STAP(".Ls_t1") OCTO_TR_DW_STAP(".Ls_t2")
        OCTO_TR_DW_STAP(".Ls_t3") OCTO_TR_DW_STAP(".Ls_t4") OCTO_TR_DW_STAP(".Ls_t5")
        OCTO_TR_DW_STAP(".Ls_t6") OCTO_TR_DW_STAP(".Ls_t7") OCTO_TR_DW_STAP(".Ls_t8")
        "\tcmp r5, r6\n\t"
        "bne .Ls_t0\n\t"
        "ldm lr!, {r0, r5, r6}\n\t"
        "cbz r5, .Ls_next\n\t"
        "b .Ls_disp\n"
        ".Ls_next:\n\t"
        "ldrd r0, r1, [sp, #8]\n\t"
        "add r12, r12, r0\n\t"
        "add r4, r4, r1\n\t"
        "ldr r0, [sp, #16]\n\t"
        "cmp r12, r0\n\t"
        "bne .Ls_out\n\t"
        "ldr r0, [sp, #20]\n\t"
        "subs r0, r0, #1\n\t"
        "beq .Ls_done\n\t"
        "str r0, [sp, #20]\n\t"
        "ldrd r12, r4, [sp, #24]\n\t"
        "ldrd r0, r1, [sp, #32]\n\t"
        "add r12, r12, r0\n\t"
        "add r4, r4, r1\n\t"
        "strd r12, r4, [sp, #24]\n\t"
        "ldr r0, [sp, #40]\n\t"
        "add r0, r0, r12\n\t"
        "str r0, [sp, #16]\n\t"
        "b .Ls_out\n"
        ".Ls_done:\n\t"
        "add sp, sp, #48\n\t"
        "pop {r4-r11, pc}\n\t"
        OCTO_TR_DW_CHECK(".Ls_")
        ".size octo_tr_dw_scatter, .-octo_tr_dw_scatter\n\t"
        ".text");

/* Weight gradient: one position, dy at g + r6 and x at x + (r6 << s), into r0-r3. */
#define OCTO_TR_DW_WPOS(g, x, s)                                                                                       \
    "ldr r7, [" g ", r6]\n\t"                                                                                          \
    "ldr r9, [" x ", r6, lsl #" s "]\n\t"                                                                              \
    "sxtb16 r8, r7, ror #8\n\t"                                                                                        \
    "sxtb16 r7, r7\n\t"                                                                                                \
    "sxtb16 r10, r9, ror #8\n\t"                                                                                       \
    "sxtb16 r9, r9\n\t"                                                                                                \
    "smlabb r0, r7, r9, r0\n\t"                                                                                        \
    "smlatt r2, r7, r9, r2\n\t"                                                                                        \
    "smlabb r1, r8, r10, r1\n\t"                                                                                       \
    "smlatt r3, r8, r10, r3\n\t"

/* The rows of x step c << s: per row r4/r5 the ends of the dy and x runs, r11/lr
 * the same one position on, r6 the offset from -n*c up to 0, r12 2c; one
 * position first if n is odd, then two per iteration. */
#define OCTO_TR_DW_WROWS(s)                                                                                            \
    ".Lw" s "_row:\n\t"                                                                                                \
    "ldrd r4, r5, [sp, #4]\n\t"                                                                                        \
    "ldr r6, [sp, #20]\n\t"                                                                                            \
    "add r4, r4, r6\n\t"                                                                                               \
    "add r5, r5, r6, lsl #" s "\n\t"                                                                                   \
    "ldr r7, [sp, #24]\n\t"                                                                                            \
    "add r11, r4, r7\n\t"                                                                                              \
    "add lr, r5, r7, lsl #" s "\n\t"                                                                                   \
    "lsl r12, r7, #1\n\t"                                                                                              \
    "rsb r6, r6, #0\n\t"                                                                                               \
    "ldr r7, [sp, #32]\n\t"                                                                                            \
    "cbz r7, .Lw" s "_loop\n\t"                                                                                        \
    OCTO_TR_DW_WPOS("r4", "r5", s)                                                                                     \
    "adds r6, r6, r12, lsr #1\n\t"                                                                                     \
    "beq .Lw" s "_end\n"                                                                                               \
    ".Lw" s "_loop:\n\t"                                                                                               \
    OCTO_TR_DW_WPOS("r4", "r5", s)                                                                                     \
    OCTO_TR_DW_WPOS("r11", "lr", s)                                                                                    \
    "adds r6, r6, r12\n\t"                                                                                             \
    "bne .Lw" s "_loop\n"                                                                                              \
    ".Lw" s "_end:\n\t"                                                                                                \
    "ldrd r4, r5, [sp, #4]\n\t"                                                                                        \
    "ldrd r7, r8, [sp, #12]\n\t"                                                                                       \
    "add r4, r4, r7\n\t"                                                                                               \
    "add r5, r5, r8\n\t"                                                                                               \
    "strd r4, r5, [sp, #4]\n\t"                                                                                        \
    "ldr r7, [sp, #0]\n\t"                                                                                             \
    "subs r7, r7, #1\n\t"                                                                                              \
    "str r7, [sp, #0]\n\t"                                                                                             \
    "bne .Lw" s "_row\n\t"                                                                                             \
    "b .Lw_done\n"

/* job (r0): g 0, x 4, c 8, shift 12, n 16, rows 20, grstep 24, xrstep 28,
 * acc 32. Frame: [sp] rows left, [sp+4] row dy, [sp+8] row x, [sp+12]
 * grstep, [sp+16] xrstep, [sp+20] n*c, [sp+24] c, [sp+28] acc, [sp+32] n & 1. */
__asm__(".section .text.octo_tr_dw_wgrad,\"ax\",%progbits\n\t"
        ".syntax unified\n\t"
        ".thumb\n\t"
        ".p2align 2\n\t"
        ".global octo_tr_dw_wgrad\n\t"
        ".type octo_tr_dw_wgrad, %function\n\t"
        ".thumb_func\n"
        "octo_tr_dw_wgrad:\n\t"
        "push {r4-r11, lr}\n\t"
        "sub sp, sp, #40\n\t"
        "ldm r0, {r1-r7}\n\t"
        "str r6, [sp, #0]\n\t"
        "strd r1, r2, [sp, #4]\n\t"
        "ldr r8, [r0, #28]\n\t"
        "strd r7, r8, [sp, #12]\n\t"
        "mul r8, r5, r3\n\t"
        "strd r8, r3, [sp, #20]\n\t"
        "ldr r8, [r0, #32]\n\t"
        "str r8, [sp, #28]\n\t"
        "and r5, r5, #1\n\t"
        "str r5, [sp, #32]\n\t"
        "ldm r8, {r0-r3}\n\t"
        "cmp r4, #1\n\t"
        "beq .Lw1_row\n\t"
        "cmp r4, #2\n\t"
        "beq .Lw2_row\n"
        OCTO_TR_DW_WROWS("0")
        OCTO_TR_DW_WROWS("1")
        OCTO_TR_DW_WROWS("2")
        ".Lw_done:\n\t"
        "ldr r8, [sp, #28]\n\t"
        "stm r8, {r0-r3}\n\t"
        "add sp, sp, #40\n\t"
        "pop {r4-r11, pc}\n\t"
        ".size octo_tr_dw_wgrad, .-octo_tr_dw_wgrad\n\t"
        ".text");
/* Three taps, one lane (sx: "" for channels (0, 2), ", ror #8" for (1, 3)): dy
 * at gE (r10) + offset (r12), the new x pixel (tap 2) at xE (r11) + offset into
 * nw; taps 0-2 use t0-t2 (the window rotates through r7-r9); sums r0-r5. */
#define OCTO_TR_DW_W3POS(sx, nw, t0, t1, t2)                                                                           \
    "ldr r6, [r10, r12]\n\t"                                                                                           \
    "ldr " nw ", [r11, r12]\n\t"                                                                                       \
    "sxtb16 r6, r6" sx "\n\t"                                                                                          \
    "sxtb16 " nw ", " nw sx "\n\t"                                                                                     \
    "smlabb r0, r6, " t0 ", r0\n\t"                                                                                    \
    "smlatt r1, r6, " t0 ", r1\n\t"                                                                                    \
    "smlabb r2, r6, " t1 ", r2\n\t"                                                                                    \
    "smlatt r3, r6, " t1 ", r3\n\t"                                                                                    \
    "smlabb r4, r6, " t2 ", r4\n\t"                                                                                    \
    "smlatt r5, r6, " t2 ", r5\n\t"
/* Window prefill (x pixels 0 and 1 of the row into a, b), then r10/r11 the ends
 * of the dy and x runs (x two pixels further), r12 = -n*c. */
#define OCTO_TR_DW_W3PRE(sx, a, b)                                                                                     \
    "ldr " a ", [r11]\n\t"                                                                                             \
    "ldr " b ", [r11, lr]\n\t"                                                                                         \
    "sxtb16 " a ", " a sx "\n\t"                                                                                       \
    "sxtb16 " b ", " b sx "\n\t"                                                                                       \
    "ldr r12, [sp, #20]\n\t"                                                                                           \
    "add r10, r10, r12\n\t"                                                                                            \
    "add r11, r11, r12\n\t"                                                                                            \
    "add r11, r11, lr, lsl #1\n\t"                                                                                     \
    "rsb r12, r12, #0\n\t"
/* The rows of one lane: three positions per iteration, entered so that the
 * row's n positions end with the third (n % 3 == 0: first, 2: second, 1: third). */
#define OCTO_TR_DW_W3ROWS(l, sx)                                                                                       \
    ".Lt" l "_row:\n\t"                                                                                                \
    "ldrd r10, r11, [sp, #4]\n\t"                                                                                      \
    "ldr lr, [sp, #24]\n\t"                                                                                            \
    "ldr r12, [sp, #32]\n\t"                                                                                           \
    "cmp r12, #1\n\t"                                                                                                  \
    "beq .Lt" l "_e1\n\t"                                                                                              \
    "cmp r12, #2\n\t"                                                                                                  \
    "beq .Lt" l "_e2\n\t"                                                                                              \
    OCTO_TR_DW_W3PRE(sx, "r7", "r8")                                                                                   \
    "b .Lt" l "_p0\n"                                                                                                  \
    ".Lt" l "_e1:\n\t"                                                                                                 \
    OCTO_TR_DW_W3PRE(sx, "r9", "r7")                                                                                   \
    "b .Lt" l "_p2\n"                                                                                                  \
    ".Lt" l "_e2:\n\t"                                                                                                 \
    OCTO_TR_DW_W3PRE(sx, "r8", "r9")                                                                                   \
    "b .Lt" l "_p1\n"                                                                                                  \
    ".Lt" l "_p0:\n\t"                                                                                                 \
    OCTO_TR_DW_W3POS(sx, "r9", "r7", "r8", "r9")                                                                       \
    "add r12, r12, lr\n"                                                                                               \
    ".Lt" l "_p1:\n\t"                                                                                                 \
    OCTO_TR_DW_W3POS(sx, "r7", "r8", "r9", "r7")                                                                       \
    "add r12, r12, lr\n"                                                                                               \
    ".Lt" l "_p2:\n\t"                                                                                                 \
    OCTO_TR_DW_W3POS(sx, "r8", "r9", "r7", "r8")                                                                       \
    "adds r12, r12, lr\n\t"                                                                                            \
    "bne .Lt" l "_p0\n\t"                                                                                              \
    "ldrd r10, r11, [sp, #4]\n\t"                                                                                      \
    "ldrd r6, r7, [sp, #12]\n\t"                                                                                       \
    "add r10, r10, r6\n\t"                                                                                             \
    "add r11, r11, r7\n\t"                                                                                             \
    "strd r10, r11, [sp, #4]\n\t"                                                                                      \
    "ldr r6, [sp, #0]\n\t"                                                                                             \
    "subs r6, r6, #1\n\t"                                                                                              \
    "str r6, [sp, #0]\n\t"                                                                                             \
    "bne .Lt" l "_row\n\t"

/* job (r0): g 0, x 4, c 8, n 12, rows 16, grstep 20, xrstep 24, acc 28. Frame:
 * [sp] rows left, [sp+4] row dy, [sp+8] row x, [sp+12] grstep, [sp+16]
 * xrstep, [sp+20] n*c, [sp+24] c, [sp+28] acc, [sp+32] n % 3, [sp+36] rows,
 * [sp+40] dy, [sp+44] x. Lane 0 over all rows, then lane 1. */
__asm__(".section .text.octo_tr_dw_wgrad3,\"ax\",%progbits\n\t"
        ".syntax unified\n\t"
        ".thumb\n\t"
        ".p2align 2\n\t"
        ".global octo_tr_dw_wgrad3\n\t"
        ".type octo_tr_dw_wgrad3, %function\n\t"
        ".thumb_func\n"
        "octo_tr_dw_wgrad3:\n\t"
        "push {r4-r11, lr}\n\t"
        "sub sp, sp, #48\n\t"
        "ldm r0, {r1-r8}\n\t"
        "str r5, [sp, #0]\n\t"
        "str r5, [sp, #36]\n\t"
        "strd r1, r2, [sp, #4]\n\t"
        "strd r1, r2, [sp, #40]\n\t"
        "strd r6, r7, [sp, #12]\n\t"
        "mul r6, r4, r3\n\t"
        "strd r6, r3, [sp, #20]\n\t"
        "str r8, [sp, #28]\n\t"
        "movs r9, #3\n\t"
        "udiv r7, r4, r9\n\t"
        "mls r7, r7, r9, r4\n\t"
        "str r7, [sp, #32]\n\t"
        "ldm r8, {r0-r5}\n"
        OCTO_TR_DW_W3ROWS("0", "")
        "ldr r8, [sp, #28]\n\t"
        "stm r8!, {r0-r5}\n\t"
        "ldm r8, {r0-r5}\n\t"
        "ldr r6, [sp, #36]\n\t"
        "str r6, [sp, #0]\n\t"
        "ldrd r6, r7, [sp, #40]\n\t"
        "strd r6, r7, [sp, #4]\n"
        OCTO_TR_DW_W3ROWS("1", ", ror #8")
        "ldr r8, [sp, #28]\n\t"
        "add r8, r8, #24\n\t"
        "stm r8, {r0-r5}\n\t"
        "add sp, sp, #48\n\t"
        "pop {r4-r11, pc}\n\t"
        ".size octo_tr_dw_wgrad3, .-octo_tr_dw_wgrad3\n\t"
        ".text");

/* p (4-byte aligned) [0, bytes) = 0, bytes a multiple of 4: 32 bytes per STM. */
__asm__(".section .text.octo_tr_dw_zero,\"ax\",%progbits\n\t"
        ".syntax unified\n\t"
        ".thumb\n\t"
        ".p2align 2\n\t"
        ".global octo_tr_dw_zero\n\t"
        ".type octo_tr_dw_zero, %function\n\t"
        ".thumb_func\n"
        "octo_tr_dw_zero:\n\t"
        "push {r4-r9}\n\t"
        "movs r2, #0\n\t"
        "movs r3, #0\n\t"
        "movs r4, #0\n\t"
        "movs r5, #0\n\t"
        "movs r6, #0\n\t"
        "movs r7, #0\n\t"
        "mov r8, r2\n\t"
        "mov r9, r2\n\t"
        "subs r1, r1, #32\n\t"
        "blt .Lz_tail\n"
        ".Lz_blk:\n\t"
        "stm r0!, {r2-r9}\n\t"
        "subs r1, r1, #32\n\t"
        "bge .Lz_blk\n"
        ".Lz_tail:\n\t"
        "adds r1, r1, #32\n\t"
        "beq .Lz_done\n"
        ".Lz_word:\n\t"
        "str r2, [r0], #4\n\t"
        "subs r1, r1, #4\n\t"
        "bne .Lz_word\n"
        ".Lz_done:\n\t"
        "pop {r4-r9}\n\t"
        "bx lr\n\t"
        ".size octo_tr_dw_zero, .-octo_tr_dw_zero\n\t"
        ".text");
#else
#define OCTO_TR_DW_ASM 0
#endif

/* --- the portable blocks (the reference for the assembly) ------------------------------------- */

#if !OCTO_TR_DW_ASM
static inline void dw_mac4(uint32_t v, const uint32_t *rec, int32_t acc[4]) {
    const uint32_t lo = octo_sxtb16(v), hi = octo_sxtb16_ror8(v);
    acc[0] = octo_smlabb(lo, rec[1], acc[0]);
    acc[2] = octo_smlatt(lo, rec[1], acc[2]);
    acc[1] = octo_smlabb(hi, rec[2], acc[1]);
    acc[3] = octo_smlatt(hi, rec[2], acc[3]);
}

static void dw_gather_c(const octo_tr_dwgather_t *j) {
    const int32_t ow = j->ostep / 4, orw = j->orstep / 4;
    for (int32_t r = 0; r < j->rows; r++) {
        for (int32_t i = 0; i < j->n; i++) {
            const int32_t org = j->org + r * j->rstep + i * j->step;
            int32_t acc[4] = {j->init[0], j->init[1], j->init[2], j->init[3]};
            for (const octo_tr_dwseg_t *s = j->seg; s->start != NULL; s++) {
                for (const uint32_t *rec = s->start; rec < s->end; rec += OCTO_TR_DW_REC) {
                    dw_mac4(octo_read_u32(&j->a[org + (int32_t)rec[0]]), rec, acc);
                }
            }
            int32_t *o = &j->out[r * orw + i * ow];
            for (int32_t k = 0; k < 4; k++) {
                o[k] = octo_tr_act_s32(acc[k], j->act, j->hi);
            }
        }
    }
}

static void dw_scatter_c(const octo_tr_dwscatter_t *j) {
    for (int32_t r = 0; r < j->rows; r++) {
        for (int32_t i = 0; i < j->n; i++) {
            const uint32_t v = octo_read_u32(&j->g[r * j->grstep + i * j->gstep]);
            const uint32_t lo = octo_sxtb16(v), hi = octo_sxtb16_ror8(v);
            const int32_t org = j->org + r * j->rstep + i * j->step;
            for (const octo_tr_dwseg_t *s = j->seg; s->start != NULL; s++) {
                for (const uint32_t *rec = s->start; rec < s->end; rec += OCTO_TR_DW_REC) {
                    int32_t *d = &j->d[(org + (int32_t)rec[0]) / 4];
                    d[0] = octo_smlabb(lo, rec[1], d[0]);
                    d[2] = octo_smlatt(lo, rec[1], d[2]);
                    d[1] = octo_smlabb(hi, rec[2], d[1]);
                    d[3] = octo_smlatt(hi, rec[2], d[3]);
                }
            }
        }
    }
}

#endif

/* Any x step (xstep bytes between positions). */
static void dw_wgrad_c(const octo_tr_dwwgrad_t *j, int32_t xstep) {
    int32_t acc[4] = {j->acc[0], j->acc[1], j->acc[2], j->acc[3]};
    for (int32_t r = 0; r < j->rows; r++) {
        const int8_t *g = &j->g[r * j->grstep], *x = &j->x[r * j->xrstep];
        for (int32_t i = 0; i < j->n; i++) {
            const uint32_t vg = octo_read_u32(&g[i * j->c]), vx = octo_read_u32(&x[i * xstep]);
            const uint32_t g02 = octo_sxtb16(vg), g13 = octo_sxtb16_ror8(vg);
            const uint32_t x02 = octo_sxtb16(vx), x13 = octo_sxtb16_ror8(vx);
            acc[0] = octo_smlabb(g02, x02, acc[0]);
            acc[2] = octo_smlatt(g02, x02, acc[2]);
            acc[1] = octo_smlabb(g13, x13, acc[1]);
            acc[3] = octo_smlatt(g13, x13, acc[3]);
        }
    }
    memcpy(j->acc, acc, sizeof acc);
}


#if !OCTO_TR_DW_ASM
static void dw_wgrad3_c(const octo_tr_dwwgrad3_t *j) {
    int32_t acc[12];
    memcpy(acc, j->acc, sizeof acc);
    for (int32_t r = 0; r < j->rows; r++) {
        const int8_t *g = &j->g[r * j->grstep], *x = &j->x[r * j->xrstep];
        for (int32_t i = 0; i < j->n; i++) {
            const uint32_t vg = octo_read_u32(&g[i * j->c]);
            const uint32_t g02 = octo_sxtb16(vg), g13 = octo_sxtb16_ror8(vg);
            for (int32_t t = 0; t < 3; t++) {
                const uint32_t vx = octo_read_u32(&x[(i + t) * j->c]);
                const uint32_t x02 = octo_sxtb16(vx), x13 = octo_sxtb16_ror8(vx);
                acc[2 * t] = octo_smlabb(g02, x02, acc[2 * t]);
                acc[2 * t + 1] = octo_smlatt(g02, x02, acc[2 * t + 1]);
                acc[6 + 2 * t] = octo_smlabb(g13, x13, acc[6 + 2 * t]);
                acc[6 + 2 * t + 1] = octo_smlatt(g13, x13, acc[6 + 2 * t + 1]);
            }
        }
    }
    memcpy(j->acc, acc, sizeof acc);
}
#endif

#if OCTO_TR_DW_ASM
#define dw_gather octo_tr_dw_gather
#define dw_scatter octo_tr_dw_scatter
#define dw_wgrad3 octo_tr_dw_wgrad3
#define dw_zero octo_tr_dw_zero
#else
#define dw_gather dw_gather_c
#define dw_scatter dw_scatter_c
#define dw_wgrad3 dw_wgrad3_c
static void dw_zero(int32_t *p, int32_t bytes) {
    memset(p, 0, (size_t)bytes);
}
#endif

/* xstep = c * stride_w */
static void dw_wgrad(const octo_tr_dwwgrad_t *j, int32_t xstep) {
#if OCTO_TR_DW_ASM
    if (xstep == j->c << j->shift) {
        octo_tr_dw_wgrad(j);
        return;
    }
#endif
    dw_wgrad_c(j, xstep);
}

/* --- geometry ---------------------------------------------------------------------------------- */

/* One axis: output o reads inputs o*s - pad + k, k < K, of [0, N). Outputs [lo, hi)
 * see their whole window; the others are the border, one output per block. */
typedef struct {
    int32_t o, s, pad, k, n, lo, hi;
} dw_axis_t;

static void dw_axis_init(dw_axis_t *a, int32_t o, int32_t s, int32_t pad, int32_t k, int32_t n) {
    a->o = o;
    a->s = s;
    a->pad = pad;
    a->k = k;
    a->n = n;
    a->lo = octo_tr_min(o, pad / s + (pad % s != 0));
    const int32_t last = n - k + pad; /* whole windows: o*s <= last */
    a->hi = last < 0 ? a->lo : octo_tr_max(a->lo, octo_tr_min(o, last / s + 1));
}

/* The end of the block starting at output i. */
static int32_t dw_axis_next(const dw_axis_t *a, int32_t i) {
    return i >= a->lo && i < a->hi ? a->hi : i + 1;
}

/* Taps [*k0, *k1) of output i inside the input. */
static void dw_axis_taps(const dw_axis_t *a, int32_t i, int32_t *k0, int32_t *k1) {
    octo_tr_taps(i * a->s - a->pad, a->k, a->n, k0, k1);
}

/* The segments of taps [ky0, ky1) x [kx0, kx1) of records [KH][KW] (non-empty); returns seg. */
static const octo_tr_dwseg_t *dw_segs(octo_tr_dwseg_t *seg, const uint32_t *rec, int32_t KW, int32_t ky0,
                                      int32_t ky1, int32_t kx0, int32_t kx1) {
    int32_t ns = 0;
    if (kx0 == 0 && kx1 == KW) { /* whole rows: one run */
        seg[0].start = &rec[ky0 * KW * OCTO_TR_DW_REC];
        seg[0].end = &rec[ky1 * KW * OCTO_TR_DW_REC];
        seg[0].entry = (ky1 - ky0) * KW % 9;
        ns = 1;
    } else {
        for (int32_t ky = ky0; ky < ky1; ky++, ns++) {
            seg[ns].start = &rec[(ky * KW + kx0) * OCTO_TR_DW_REC];
            seg[ns].end = &rec[(ky * KW + kx1) * OCTO_TR_DW_REC];
            seg[ns].entry = (kx1 - kx0) % 9;
        }
    }
    seg[ns].start = NULL;
    seg[ns].end = NULL;
    seg[ns].entry = 0;
    return seg;
}

/* The fast path applies: C >= 4, at most OCTO_TR_DW_TAPS taps in at most
 * OCTO_TR_DW_ROWS rows (or one column), and every byte offset of the walk
 * (origins from -(pad_h*W + pad_w)*C*4 to the far end of the int32 tensors)
 * fits in int32. */
static int dw_fast_ok(const octo_train_conv_params_t *p, const octo_dims_t *in_dims, const octo_dims_t *w_dims,
                      const octo_dims_t *out_dims) {
    if (in_dims->c < 4 || (int64_t)w_dims->h * w_dims->w > OCTO_TR_DW_TAPS ||
        (w_dims->w > 1 && w_dims->h > OCTO_TR_DW_ROWS)) {
        return 0;
    }
    const int64_t rows = (int64_t)in_dims->n * in_dims->h + p->pad_h + (int64_t)out_dims->h * p->stride_h + w_dims->h;
    const int64_t cols = (int64_t)in_dims->w + p->pad_w + (int64_t)out_dims->w * p->stride_w + w_dims->w;
    const int64_t big = (int64_t)out_dims->n * out_dims->h * out_dims->w; /* the int32 outputs */
    return rows * cols * in_dims->c * 4 < INT32_MAX && big * out_dims->c * 4 < INT32_MAX;
}

/* The channel groups: c = 0, 4, ..., and C - 4 for the last C % 4 channels. */
static int32_t dw_next_group(int32_t c, int32_t C) {
    if (c + 4 >= C) {
        return C;
    }
    return octo_tr_min(c + 4, C - 4);
}

/* Records of the whole kernel for channels c..c+3: byte offset of tap (ky, kx)
 * from the window origin ((ky*W + kx)*C*unit), the weights expanded; lanes
 * below keep are zeroed (the overlap of a last group, for the scatter). */
static void dw_records(uint32_t *rec, const int8_t *w, int32_t KH, int32_t KW, int32_t W, int32_t C, int32_t c,
                       int32_t unit, int32_t keep) {
    const uint32_t mask = ~0u << (8 * keep);
    for (int32_t ky = 0; ky < KH; ky++) {
        for (int32_t kx = 0; kx < KW; kx++, rec += OCTO_TR_DW_REC) {
            const uint32_t v = octo_read_u32(&w[(ky * KW + kx) * C + c]) & mask;
            rec[0] = (uint32_t)((ky * W + kx) * C * unit);
            rec[1] = octo_sxtb16(v);
            rec[2] = octo_sxtb16_ror8(v);
        }
    }
}

__attribute__((noinline))
static void fast_fwd(const octo_train_conv_params_t *p, const octo_dims_t *in_dims, const int8_t *x,
                     const octo_dims_t *w_dims, const int8_t *w, const float *bias, float inv, int32_t six,
                     const octo_dims_t *out_dims, int32_t *y) {
    const int32_t H = in_dims->h, W = in_dims->w, C = in_dims->c;
    const int32_t OH = out_dims->h, OW = out_dims->w;
    const int32_t KH = w_dims->h, KW = w_dims->w;
    const int32_t SH = p->stride_h, SW = p->stride_w;
    uint32_t rec[OCTO_TR_DW_TAPS * OCTO_TR_DW_REC];
    octo_tr_dwseg_t seg[OCTO_TR_DW_SEGS];
    dw_axis_t ay, ax;
    dw_axis_init(&ay, OH, SH, p->pad_h, KH, H);
    dw_axis_init(&ax, OW, SW, p->pad_w, KW, W);
    int32_t init[4];
    octo_tr_dwgather_t job;
    job.a = x;
    job.step = SW * C;
    job.ostep = C * 4;
    job.rstep = SH * W * C;
    job.orstep = OW * C * 4;
    job.init = init;
    job.act = p->act;
    job.hi = six;
    for (int32_t c = 0; c < C; c = dw_next_group(c, C)) {
        dw_records(rec, w, KH, KW, W, C, c, 1, 0);
        for (int32_t j = 0; j < 4; j++) {
            init[j] = octo_tr_bias_acc(bias, c + j, inv);
        }
        for (int32_t b = 0; b < in_dims->n; b++) {
            for (int32_t oy = 0, oy1; oy < OH; oy = oy1) {
                oy1 = dw_axis_next(&ay, oy);
                int32_t ky0, ky1;
                dw_axis_taps(&ay, oy, &ky0, &ky1);
                for (int32_t ox = 0, ox1; ox < OW; ox = ox1) {
                    ox1 = dw_axis_next(&ax, ox);
                    int32_t kx0, kx1;
                    dw_axis_taps(&ax, ox, &kx0, &kx1);
                    int32_t *out = &y[((b * OH + oy) * OW + ox) * C + c];
                    if (ky0 >= ky1 || kx0 >= kx1) { /* the window misses x: the bias alone */
                        for (int32_t r = 0; r < oy1 - oy; r++) {
                            for (int32_t i = 0; i < ox1 - ox; i++) {
                                for (int32_t j = 0; j < 4; j++) {
                                    out[(r * OW + i) * C + j] = octo_tr_act_s32(init[j], p->act, six);
                                }
                            }
                        }
                        continue;
                    }
                    job.org = ((b * H + oy * SH - p->pad_h) * W + ox * SW - p->pad_w) * C + c;
                    job.n = ox1 - ox;
                    job.rows = oy1 - oy;
                    job.seg = dw_segs(seg, rec, KW, ky0, ky1, kx0, kx1);
                    job.out = out;
                    dw_gather(&job);
                }
            }
        }
    }
}

__attribute__((noinline))
static void fast_bwd_input(const octo_train_conv_params_t *p, const octo_dims_t *in_dims, const octo_dims_t *w_dims,
                           const int8_t *w, const octo_dims_t *out_dims, const int8_t *dy, int32_t *dx) {
    const int32_t H = in_dims->h, W = in_dims->w, C = in_dims->c;
    const int32_t OH = out_dims->h, OW = out_dims->w;
    const int32_t KH = w_dims->h, KW = w_dims->w;
    const int32_t SH = p->stride_h, SW = p->stride_w;
    uint32_t rec[OCTO_TR_DW_TAPS * OCTO_TR_DW_REC];
    octo_tr_dwseg_t seg[OCTO_TR_DW_SEGS];
    dw_axis_t ay, ax;
    dw_axis_init(&ay, OH, SH, p->pad_h, KH, H);
    dw_axis_init(&ax, OW, SW, p->pad_w, KW, W);
    dw_zero(dx, octo_tr_count(in_dims) * 4);
    octo_tr_dwscatter_t job;
    job.gstep = C;
    job.grstep = OW * C;
    job.d = dx;
    job.step = SW * C * 4;
    job.rstep = SH * W * C * 4;
    for (int32_t c = 0; c < C; c = dw_next_group(c, C)) {
        /* the last group: its lanes below 4 - C % 4 belong to the group before */
        const int32_t keep = c % 4 == 0 ? 0 : 4 - C % 4;
        dw_records(rec, w, KH, KW, W, C, c, 4, keep);
        for (int32_t b = 0; b < in_dims->n; b++) {
            for (int32_t oy = 0, oy1; oy < OH; oy = oy1) {
                oy1 = dw_axis_next(&ay, oy);
                int32_t ky0, ky1;
                dw_axis_taps(&ay, oy, &ky0, &ky1);
                for (int32_t ox = 0, ox1; ox < OW; ox = ox1) {
                    ox1 = dw_axis_next(&ax, ox);
                    int32_t kx0, kx1;
                    dw_axis_taps(&ax, ox, &kx0, &kx1);
                    if (ky0 >= ky1 || kx0 >= kx1) {
                        continue;
                    }
                    job.g = &dy[((b * OH + oy) * OW + ox) * C + c];
                    job.org = (((b * H + oy * SH - p->pad_h) * W + ox * SW - p->pad_w) * C + c) * 4;
                    job.n = ox1 - ox;
                    job.rows = oy1 - oy;
                    job.seg = dw_segs(seg, rec, KW, ky0, ky1, kx0, kx1);
                    dw_scatter(&job);
                }
            }
        }
    }
}

/* Outputs o with o*s - pad + k inside [0, n): [*o0, *o1) (maybe empty). */
static void dw_tap_range(int32_t o, int32_t s, int32_t pad, int32_t k, int32_t n, int32_t *o0, int32_t *o1) {
    const int32_t first = pad - k;        /* o*s >= first */
    const int32_t last = n - 1 + pad - k; /* o*s <= last */
    *o0 = first <= 0 ? 0 : octo_tr_min(o, first / s + (first % s != 0));
    *o1 = last < 0 ? 0 : octo_tr_min(o, last / s + 1);
}

/* s with a == b << s (s <= 2), or -1. */
static int32_t dw_shift(int32_t a, int32_t b) {
    for (int32_t sh = 0; sh <= 2; sh++) {
        if (a == b << sh) {
            return sh;
        }
    }
    return -1;
}

/* The weight-gradient walk: the tensors and their geometry. */
typedef struct {
    const int8_t *x, *dy;
    int32_t N, H, W, C, OH, OW, SH, SW, ph, pw;
} dw_wgeo_t;

/* acc += the sums of tap (ky, kx), channels c..c+3, over the positions [oy0, oy1) x
 * [ox0, ox1) of every image: rows of positions, or columns when they are fewer
 * and the column steps of dy and x suit the assembly (x step = dy step << s). */
static void dw_wgrad_rect(const dw_wgeo_t *q, int32_t ky, int32_t kx, int32_t oy0, int32_t oy1, int32_t ox0,
                          int32_t ox1, int32_t c, int32_t *acc) {
    const int32_t rows = oy1 - oy0, cols = ox1 - ox0;
    if (rows <= 0 || cols <= 0) {
        return;
    }
    const int32_t gcol = q->C, grow = q->OW * q->C, xcol = q->SW * q->C, xrow = q->SH * q->W * q->C;
    octo_tr_dwwgrad_t j;
    int32_t xstep;
    if (cols < rows && dw_shift(xrow, grow) >= 0) {
        j.c = grow;
        j.shift = dw_shift(xrow, grow);
        xstep = xrow;
        j.n = rows;
        j.rows = cols;
        j.grstep = gcol;
        j.xrstep = xcol;
    } else {
        j.c = gcol;
        j.shift = octo_tr_max(0, dw_shift(xcol, gcol));
        xstep = xcol;
        j.n = cols;
        j.rows = rows;
        j.grstep = grow;
        j.xrstep = xrow;
    }
    j.acc = acc;
    for (int32_t b = 0; b < q->N; b++) {
        j.g = &q->dy[((b * q->OH + oy0) * q->OW + ox0) * q->C + c];
        j.x = &q->x[((b * q->H + oy0 * q->SH - q->ph + ky) * q->W + ox0 * q->SW - q->pw + kx) * q->C + c];
        dw_wgrad(&j, xstep);
    }
}

/* Taps (ky, kx..kx+2) at stride 1: the positions where all three are inside x
 * ([i0, i1), each x pixel loaded once for the three), then each tap's own border. */
static void dw_wgrad_triple(const dw_wgeo_t *q, int32_t ky, int32_t kx, int32_t oy0, int32_t oy1, int32_t i0,
                            int32_t i1, const int32_t *o0, const int32_t *o1, int32_t c, int32_t *dw) {
    int32_t acc[12];
    memset(acc, 0, sizeof acc);
    octo_tr_dwwgrad3_t j;
    j.c = q->C;
    j.n = i1 - i0;
    j.rows = oy1 - oy0;
    j.grstep = q->OW * q->C;
    j.xrstep = q->SH * q->W * q->C;
    j.acc = acc;
    for (int32_t b = 0; b < q->N; b++) {
        j.g = &q->dy[((b * q->OH + oy0) * q->OW + i0) * q->C + c];
        j.x = &q->x[((b * q->H + oy0 * q->SH - q->ph + ky) * q->W + i0 - q->pw + kx) * q->C + c];
        dw_wgrad3(&j);
    }
    for (int32_t t = 0; t < 3; t++) {
        int32_t a[4] = {acc[2 * t], acc[6 + 2 * t], acc[2 * t + 1], acc[6 + 2 * t + 1]};
        dw_wgrad_rect(q, ky, kx + t, oy0, oy1, o0[t], i0, c, a);
        dw_wgrad_rect(q, ky, kx + t, oy0, oy1, i1, o1[t], c, a);
        memcpy(&dw[(kx + t) * q->C + c], a, sizeof a);
    }
}

__attribute__((noinline))
static void fast_bwd_weight(const octo_train_conv_params_t *p, const octo_dims_t *in_dims, const int8_t *x,
                            const octo_dims_t *out_dims, const int8_t *dy, const octo_dims_t *w_dims, int32_t *dw) {
    const int32_t C = in_dims->c, KH = w_dims->h, KW = w_dims->w;
    const dw_wgeo_t q = {x,           dy,           in_dims->n,  in_dims->h,  in_dims->w, C,
                         out_dims->h, out_dims->w, p->stride_h, p->stride_w, p->pad_h,  p->pad_w};
    for (int32_t ky = 0; ky < KH; ky++) {
        int32_t oy0, oy1;
        dw_tap_range(q.OH, q.SH, q.ph, ky, q.H, &oy0, &oy1);
        int32_t *dwr = &dw[ky * KW * C];
        for (int32_t kx = 0; kx < KW;) {
            int32_t o0[3], o1[3], i0 = 0, i1 = 0;
            const int triple = q.SW == 1 && kx + 3 <= KW && oy0 < oy1;
            if (triple) {
                for (int32_t t = 0; t < 3; t++) {
                    dw_tap_range(q.OW, 1, q.pw, kx + t, q.W, &o0[t], &o1[t]);
                }
                i0 = octo_tr_max(o0[0], octo_tr_max(o0[1], o0[2]));
                i1 = octo_tr_min(o1[0], octo_tr_min(o1[1], o1[2]));
            }
            if (triple && i0 < i1) {
                for (int32_t c = 0; c < C; c = dw_next_group(c, C)) {
                    dw_wgrad_triple(&q, ky, kx, oy0, oy1, i0, i1, o0, o1, c, dwr);
                }
                kx += 3;
                continue;
            }
            int32_t ox0, ox1;
            dw_tap_range(q.OW, q.SW, q.pw, kx, q.W, &ox0, &ox1);
            for (int32_t c = 0; c < C; c = dw_next_group(c, C)) {
                int32_t acc[4] = {0, 0, 0, 0};
                dw_wgrad_rect(&q, ky, kx, oy0, oy1, ox0, ox1, c, acc);
                memcpy(&dwr[kx * C + c], acc, sizeof acc);
            }
            kx++;
        }
    }
}

/* db[c] = sum of dy[pos][c] over the positions: four channels a word, SXTAB16
 * into 16-bit lanes (|sum| <= 255 * 128), flushed to int32 every 255 positions. */
#if OCTO_HAVE_DSP
static inline uint32_t dw_sxtab16(uint32_t acc, uint32_t x) {
    uint32_t r;
    __asm("sxtab16 %0, %1, %2" : "=r"(r) : "r"(acc), "r"(x));
    return r;
}

static inline uint32_t dw_sxtab16_ror8(uint32_t acc, uint32_t x) {
    uint32_t r;
    __asm("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(acc), "r"(x));
    return r;
}
#else
static inline uint32_t dw_sxtab16(uint32_t acc, uint32_t x) {
    const uint32_t v = octo_sxtb16(x);
    return ((acc + v) & 0xFFFFu) | ((acc & 0xFFFF0000u) + (v & 0xFFFF0000u));
}

static inline uint32_t dw_sxtab16_ror8(uint32_t acc, uint32_t x) {
    const uint32_t v = octo_sxtb16_ror8(x);
    return ((acc + v) & 0xFFFFu) | ((acc & 0xFFFF0000u) + (v & 0xFFFF0000u));
}
#endif

static void dw_flush(uint32_t e, uint32_t o, int32_t acc[4]) {
    acc[0] += (int16_t)(uint16_t)e;
    acc[2] += (int16_t)(uint16_t)(e >> 16);
    acc[1] += (int16_t)(uint16_t)o;
    acc[3] += (int16_t)(uint16_t)(o >> 16);
}

static void fast_bias_grad(const int8_t *dy, int32_t positions, int32_t C, int32_t *db) {
    for (int32_t c = 0; c < C; c = dw_next_group(c, C)) {
        int32_t acc[4] = {0, 0, 0, 0};
        for (int32_t pos = 0; pos < positions;) {
            const int32_t end = octo_tr_min(positions, pos + 255);
            uint32_t e = 0, o = 0;
            for (; pos + 4 <= end; pos += 4) {
                const int8_t *g = &dy[pos * C + c];
                const uint32_t v0 = octo_read_u32(g), v1 = octo_read_u32(&g[C]);
                const uint32_t v2 = octo_read_u32(&g[2 * C]), v3 = octo_read_u32(&g[3 * C]);
                e = dw_sxtab16(e, v0);
                o = dw_sxtab16_ror8(o, v0);
                e = dw_sxtab16(e, v1);
                o = dw_sxtab16_ror8(o, v1);
                e = dw_sxtab16(e, v2);
                o = dw_sxtab16_ror8(o, v2);
                e = dw_sxtab16(e, v3);
                o = dw_sxtab16_ror8(o, v3);
            }
            for (; pos < end; pos++) {
                const uint32_t v = octo_read_u32(&dy[pos * C + c]);
                e = dw_sxtab16(e, v);
                o = dw_sxtab16_ror8(o, v);
            }
            dw_flush(e, o, acc);
        }
        memcpy(&db[c], acc, sizeof acc);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Small maps: channels innermost                                                                 */
/* ---------------------------------------------------------------------------------------------- */

/* On maps of a few pixels the blocks above cost more to set up (records and blocks per channel
 * group, a block per border output) than their MACs. Here each output (an output pixel, an input
 * pixel of the input gradient, a tap of the weight gradient) gets its list of (a, b) byte offsets
 * once, and one kernel call walks every group of four channels through it:
 *   out[c + j] = init[c + j] (or 0) + sum over the pairs of a[pa + c + j] * b[pb + c + j]
 * (LDRD + 2 LDR + 4 SXTB16 + 4 SMLAxy per pair and group). The last C % 4 channels take a plain
 * loop, so a call never reads or writes them twice and init may be out. */

/* The small-map path: maps of at most OCTO_TR_DW_SMALL pixels (in and out), C >= 4. */
#define OCTO_TR_DW_SMALL 16
/* Pairs per kernel call of the weight gradient (a tap's positions run in chunks). */
#define OCTO_TR_DW_CHUNK 64

/* Offsets on ARM: 0 pairs, 4 npairs (>= 1), 8 a, 12 b, 16 groups (>= 1), 20 init (or NULL), 24 out. */
typedef struct {
    const int32_t *pairs;
    int32_t npairs;
    const int8_t *a;
    const int8_t *b;
    int32_t groups;
    const int32_t *init;
    int32_t *out;
} octo_tr_dwc_t;

#if OCTO_TR_DW_ASM
void octo_tr_dwc_s8(const octo_tr_dwc_t *job);

/* One pair (r10) into the sums r0-r3: a at r12 + offset, b at lr + offset. */
#define OCTO_TR_DWC_PAIR                                                                                               \
    "ldrd r4, r5, [r10], #8\n\t"                                                                                       \
    "ldr r6, [r12, r4]\n\t"                                                                                            \
    "ldr r7, [lr, r5]\n\t"                                                                                             \
    "sxtb16 r8, r6, ror #8\n\t"                                                                                        \
    "sxtb16 r6, r6\n\t"                                                                                                \
    "sxtb16 r9, r7, ror #8\n\t"                                                                                        \
    "sxtb16 r7, r7\n\t"                                                                                                \
    "smlabb r0, r6, r7, r0\n\t"                                                                                        \
    "smlatt r2, r6, r7, r2\n\t"                                                                                        \
    "smlabb r1, r8, r9, r1\n\t"                                                                                        \
    "smlatt r3, r8, r9, r3\n\t"

/* job (r0) as octo_tr_dwc_t. Frame: [sp] pairs, [sp+4] end of pairs, [sp+8] init (or 0), [sp+12]
 * out, [sp+16] groups left, [sp+20] npairs odd. Loop: r0-r3 the sums, r4/r5 a pair, r6-r9 unpacked,
 * r10 the pairs, r11 their end, r12 a, lr b (both at the group's channel). */
__asm__(".section .text.octo_tr_dwc_s8,\"ax\",%progbits\n\t"
        ".syntax unified\n\t"
        ".thumb\n\t"
        ".p2align 2\n\t"
        ".global octo_tr_dwc_s8\n\t"
        ".type octo_tr_dwc_s8, %function\n\t"
        ".thumb_func\n"
        "octo_tr_dwc_s8:\n\t"
        "push {r4-r11, lr}\n\t"
        "sub sp, sp, #24\n\t"
        "ldm r0, {r1-r7}\n\t" /* pairs npairs a b groups init out */
        "add r8, r1, r2, lsl #3\n\t"
        "strd r1, r8, [sp, #0]\n\t"
        "strd r6, r7, [sp, #8]\n\t"
        "str r5, [sp, #16]\n\t"
        "and r8, r2, #1\n\t"
        "str r8, [sp, #20]\n\t"
        "mov r12, r3\n\t"
        "mov lr, r4\n"
        ".Ldc_grp:\n\t"
        "ldr r4, [sp, #8]\n\t"
        "cbz r4, .Ldc_zero\n\t"
        "ldm r4!, {r0-r3}\n\t"
        "str r4, [sp, #8]\n\t"
        "b .Ldc_pairs\n"
        ".Ldc_zero:\n\t"
        "movs r0, #0\n\t"
        "movs r1, #0\n\t"
        "movs r2, #0\n\t"
        "movs r3, #0\n"
        ".Ldc_pairs:\n\t"
        "ldrd r10, r11, [sp, #0]\n\t"
        "ldr r4, [sp, #20]\n\t"
        "cbnz r4, .Ldc_odd\n"
        ".Ldc_loop:\n\t"
        OCTO_TR_DWC_PAIR
        ".Ldc_odd:\n\t"
        OCTO_TR_DWC_PAIR
        "cmp r10, r11\n\t"
        "bne .Ldc_loop\n\t"
        "ldr r4, [sp, #12]\n\t"
        "stm r4!, {r0-r3}\n\t"
        "str r4, [sp, #12]\n\t"
        "add r12, r12, #4\n\t"
        "add lr, lr, #4\n\t"
        "ldr r4, [sp, #16]\n\t"
        "subs r4, r4, #1\n\t"
        "str r4, [sp, #16]\n\t"
        "bne .Ldc_grp\n\t"
        "add sp, sp, #24\n\t"
        "pop {r4-r11, pc}\n\t"
        ".size octo_tr_dwc_s8, .-octo_tr_dwc_s8\n\t"
        ".text");

/* Pairs outermost (few pairs, many groups): each pair walks every group, the sums in out (the first
 * pair starts from init, or from products alone when init is NULL). r0-r3 the sums, r4-r7 the
 * operands, r8 a, r9 b (at the group's channel), r10 the sums read, r11 out, r12 end of a's
 * groups, lr the pairs. Frame: [sp] end of the pairs, [sp+4] a, [sp+8] b, [sp+12] out,
 * [sp+16] 16*groups. */
#define OCTO_TR_DWP_LOAD                                                                                               \
    "ldr r4, [r8], #4\n\t"                                                                                             \
    "ldr r5, [r9], #4\n\t"                                                                                             \
    "sxtb16 r6, r4, ror #8\n\t"                                                                                        \
    "sxtb16 r4, r4\n\t"                                                                                                \
    "sxtb16 r7, r5, ror #8\n\t"                                                                                        \
    "sxtb16 r5, r5\n\t"
void octo_tr_dwp_s8(const octo_tr_dwc_t *job);
__asm__(".section .text.octo_tr_dwp_s8,\"ax\",%progbits\n\t"
        ".syntax unified\n\t"
        ".thumb\n\t"
        ".p2align 2\n\t"
        ".global octo_tr_dwp_s8\n\t"
        ".type octo_tr_dwp_s8, %function\n\t"
        ".thumb_func\n"
        "octo_tr_dwp_s8:\n\t"
        "push {r4-r11, lr}\n\t"
        "sub sp, sp, #20\n\t"
        "ldm r0, {r1-r7}\n\t" /* pairs npairs a b groups init out */
        "add r8, r1, r2, lsl #3\n\t"
        "str r8, [sp, #0]\n\t"
        "strd r3, r4, [sp, #4]\n\t"
        "str r7, [sp, #12]\n\t"
        "lsl r5, r5, #4\n\t"
        "str r5, [sp, #16]\n\t"
        "mov lr, r1\n\t"
        "mov r10, r6\n\t"
        "ldrd r4, r5, [lr], #8\n\t" /* the first pair */
        "add r8, r3, r4\n\t"
        "ldr r9, [sp, #8]\n\t"
        "add r9, r9, r5\n\t"
        "mov r11, r7\n\t"
        "ldr r12, [sp, #16]\n\t"
        "add r12, r8, r12, lsr #2\n\t"
        "cmp r10, #0\n\t"
        "beq .Ldp_first0\n"
        ".Ldp_first:\n\t"
        "ldm r10!, {r0-r3}\n\t"
        OCTO_TR_DWP_LOAD
        "smlabb r0, r4, r5, r0\n\t"
        "smlatt r2, r4, r5, r2\n\t"
        "smlabb r1, r6, r7, r1\n\t"
        "smlatt r3, r6, r7, r3\n\t"
        "stm r11!, {r0-r3}\n\t"
        "cmp r8, r12\n\t"
        "bne .Ldp_first\n\t"
        "b .Ldp_next\n"
        ".Ldp_first0:\n\t"
        OCTO_TR_DWP_LOAD
        "smulbb r0, r4, r5\n\t"
        "smultt r2, r4, r5\n\t"
        "smulbb r1, r6, r7\n\t"
        "smultt r3, r6, r7\n\t"
        "stm r11!, {r0-r3}\n\t"
        "cmp r8, r12\n\t"
        "bne .Ldp_first0\n"
        ".Ldp_next:\n\t"
        "ldr r4, [sp, #0]\n\t"
        "cmp lr, r4\n\t"
        "beq .Ldp_done\n\t"
        "ldrd r4, r5, [lr], #8\n\t"
        "ldrd r8, r9, [sp, #4]\n\t"
        "add r8, r8, r4\n\t"
        "add r9, r9, r5\n\t"
        "ldrd r10, r12, [sp, #12]\n\t"
        "mov r11, r10\n\t"
        "add r12, r8, r12, lsr #2\n"
        ".Ldp_loop:\n\t"
        "ldm r10!, {r0-r3}\n\t"
        OCTO_TR_DWP_LOAD
        "smlabb r0, r4, r5, r0\n\t"
        "smlatt r2, r4, r5, r2\n\t"
        "smlabb r1, r6, r7, r1\n\t"
        "smlatt r3, r6, r7, r3\n\t"
        "stm r11!, {r0-r3}\n\t"
        "cmp r8, r12\n\t"
        "bne .Ldp_loop\n\t"
        "b .Ldp_next\n"
        ".Ldp_done:\n\t"
        "add sp, sp, #20\n\t"
        "pop {r4-r11, pc}\n\t"
        ".size octo_tr_dwp_s8, .-octo_tr_dwp_s8\n\t"
        ".text");
#else
static void octo_tr_dwc_s8(const octo_tr_dwc_t *j) {
    for (int32_t g = 0; g < j->groups; g++) {
        const int32_t c = 4 * g;
        int32_t acc[4] = {0, 0, 0, 0};
        if (j->init != NULL) {
            memcpy(acc, &j->init[c], sizeof acc);
        }
        for (int32_t i = 0; i < j->npairs; i++) {
            const uint32_t va = octo_read_u32(&j->a[j->pairs[2 * i] + c]);
            const uint32_t vb = octo_read_u32(&j->b[j->pairs[2 * i + 1] + c]);
            const uint32_t a02 = octo_sxtb16(va), a13 = octo_sxtb16_ror8(va);
            const uint32_t b02 = octo_sxtb16(vb), b13 = octo_sxtb16_ror8(vb);
            acc[0] = octo_smlabb(a02, b02, acc[0]);
            acc[2] = octo_smlatt(a02, b02, acc[2]);
            acc[1] = octo_smlabb(a13, b13, acc[1]);
            acc[3] = octo_smlatt(a13, b13, acc[3]);
        }
        memcpy(&j->out[c], acc, sizeof acc);
    }
}

/* pairs outermost on ARM; the same sums */
static void octo_tr_dwp_s8(const octo_tr_dwc_t *j) {
    octo_tr_dwc_s8(j);
}
#endif

/* Pair lists this short walk the pairs outermost (octo_tr_dwp_s8: the sums of a group go through
 * memory once per pair, no per-group setup); longer ones the groups (octo_tr_dwc_s8). */
#define OCTO_TR_DW_FEWPAIRS 8

/* out[c] = init[c] (or 0) + the sums of the n pairs, every channel c < C (init may be out). */
static void dwc_run(const int32_t *pairs, int32_t n, const int8_t *a, const int8_t *b, int32_t C,
                    const int32_t *init, int32_t *out) {
    const int32_t G = C / 4;
    if (n == 0) {
        if (init == NULL) {
            memset(out, 0, (size_t)C * sizeof(int32_t));
        } else if (init != out) {
            memcpy(out, init, (size_t)C * sizeof(int32_t));
        }
        return;
    }
    if (G > 0) {
        const octo_tr_dwc_t job = {pairs, n, a, b, G, init, out};
        if (n <= OCTO_TR_DW_FEWPAIRS) {
            octo_tr_dwp_s8(&job);
        } else {
            octo_tr_dwc_s8(&job);
        }
    }
    for (int32_t c = 4 * G; c < C; c++) {
        int32_t acc = init != NULL ? init[c] : 0;
        for (int32_t i = 0; i < n; i++) {
            acc += (int32_t)a[pairs[2 * i] + c] * (int32_t)b[pairs[2 * i + 1] + c];
        }
        out[c] = acc;
    }
}

static int dw_small_ok(const octo_dims_t *in_dims, const octo_dims_t *w_dims, const octo_dims_t *out_dims) {
    return in_dims->c >= 4 && (int64_t)w_dims->h * w_dims->w <= OCTO_TR_DW_TAPS &&
           (int64_t)in_dims->h * in_dims->w <= OCTO_TR_DW_SMALL &&
           (int64_t)out_dims->h * out_dims->w <= OCTO_TR_DW_SMALL;
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

/* The biases (in accumulator units) go to the first output pixel's slots, which the others start
 * from; that pixel runs last, in place. */
__attribute__((noinline))
static void small_fwd(const octo_train_conv_params_t *p, const octo_dims_t *in_dims, const int8_t *x,
                      const octo_dims_t *w_dims, const int8_t *w, const float *bias, float inv, int32_t six,
                      const octo_dims_t *out_dims, int32_t *y) {
    const int32_t H = in_dims->h, W = in_dims->w, C = in_dims->c;
    const int32_t OH = out_dims->h, OW = out_dims->w, KH = w_dims->h, KW = w_dims->w;
    int32_t pairs[2 * OCTO_TR_DW_TAPS];
    if (bias != NULL) {
        bias_acc_n(bias, C, inv, y);
    }
    const int32_t *init = bias != NULL ? y : NULL;
    for (int32_t pos = in_dims->n * OH * OW - 1; pos >= 0; pos--) {
        const int32_t ox = pos % OW, oy = pos / OW % OH, b = pos / (OW * OH);
        const int32_t iy0 = oy * p->stride_h - p->pad_h, ix0 = ox * p->stride_w - p->pad_w;
        int32_t ky0, ky1, kx0, kx1, n = 0;
        octo_tr_taps(iy0, KH, H, &ky0, &ky1);
        octo_tr_taps(ix0, KW, W, &kx0, &kx1);
        for (int32_t ky = ky0; ky < ky1; ky++) {
            for (int32_t kx = kx0; kx < kx1; kx++, n++) {
                pairs[2 * n] = ((b * H + iy0 + ky) * W + ix0 + kx) * C;
                pairs[2 * n + 1] = (ky * KW + kx) * C;
            }
        }
        dwc_run(pairs, n, x, w, C, init, &y[pos * C]);
    }
    if (p->act != OCTO_TRAIN_ACT_NONE) {
        const int32_t count = octo_tr_count(out_dims);
        for (int32_t i = 0; i < count; i++) {
            y[i] = octo_tr_act_s32(y[i], p->act, six);
        }
    }
}

__attribute__((noinline))
static void small_bwd_input(const octo_train_conv_params_t *p, const octo_dims_t *in_dims,
                            const octo_dims_t *w_dims, const int8_t *w, const octo_dims_t *out_dims,
                            const int8_t *dy, int32_t *dx) {
    const int32_t H = in_dims->h, W = in_dims->w, C = in_dims->c;
    const int32_t OH = out_dims->h, OW = out_dims->w, KH = w_dims->h, KW = w_dims->w;
    const int32_t SH = p->stride_h, SW = p->stride_w;
    int32_t pairs[2 * OCTO_TR_DW_TAPS];
    for (int32_t b = 0; b < in_dims->n; b++) {
        for (int32_t iy = 0; iy < H; iy++) {
            const int32_t ty = iy + p->pad_h;
            for (int32_t ix = 0; ix < W; ix++) {
                const int32_t tx = ix + p->pad_w;
                int32_t n = 0;
                for (int32_t ky = ty % SH; ky < KH && ky <= ty; ky += SH) {
                    const int32_t oy = (ty - ky) / SH;
                    if (oy >= OH) {
                        continue;
                    }
                    for (int32_t kx = tx % SW; kx < KW && kx <= tx; kx += SW) {
                        const int32_t ox = (tx - kx) / SW;
                        if (ox < OW) {
                            pairs[2 * n] = ((b * OH + oy) * OW + ox) * C;
                            pairs[2 * n + 1] = (ky * KW + kx) * C;
                            n++;
                        }
                    }
                }
                dwc_run(pairs, n, dy, w, C, NULL, &dx[((b * H + iy) * W + ix) * C]);
            }
        }
    }
}

__attribute__((noinline))
static void small_bwd_weight(const octo_train_conv_params_t *p, const octo_dims_t *in_dims, const int8_t *x,
                             const octo_dims_t *out_dims, const int8_t *dy, const octo_dims_t *w_dims,
                             int32_t *dw) {
    const int32_t H = in_dims->h, W = in_dims->w, C = in_dims->c;
    const int32_t OH = out_dims->h, OW = out_dims->w, KW = w_dims->w;
    int32_t pairs[2 * OCTO_TR_DW_CHUNK];
    for (int32_t t = 0; t < w_dims->h * KW; t++) {
        const int32_t ky = t / KW, kx = t % KW;
        int32_t *out = &dw[t * C];
        int32_t n = 0, first = 1;
        for (int32_t b = 0; b < in_dims->n; b++) {
            for (int32_t oy = 0; oy < OH; oy++) {
                const int32_t iy = oy * p->stride_h - p->pad_h + ky;
                if (iy < 0 || iy >= H) {
                    continue;
                }
                for (int32_t ox = 0; ox < OW; ox++) {
                    const int32_t ix = ox * p->stride_w - p->pad_w + kx;
                    if (ix < 0 || ix >= W) {
                        continue;
                    }
                    pairs[2 * n] = ((b * OH + oy) * OW + ox) * C;
                    pairs[2 * n + 1] = ((b * H + iy) * W + ix) * C;
                    if (++n == OCTO_TR_DW_CHUNK) {
                        dwc_run(pairs, n, dy, x, C, first ? NULL : out, out);
                        n = 0;
                        first = 0;
                    }
                }
            }
        }
        if (n > 0 || first) {
            dwc_run(pairs, n, dy, x, C, first ? NULL : out, out);
        }
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* API                                                                                            */
/* ---------------------------------------------------------------------------------------------- */

int octo_train_dwconv_s8_fwd(const octo_train_conv_params_t *p, const octo_dims_t *in_dims, const octo_train_q8_t *x,
                             const octo_dims_t *w_dims, const octo_train_q8_t *w, const float *bias,
                             const octo_dims_t *out_dims, octo_train_q32_t *y) {
    if (!octo_tr_q8_ok(x) || !octo_tr_q8_ok(w) || !octo_tr_q32_out_ok(y) ||
        !octo_tr_conv_ok(p, in_dims, w_dims, out_dims, 1)) {
        return OCTO_E_ARG;
    }
    const float acc_scale = x->scale * w->scale;
    if (w_dims->h * w_dims->w > OCTO_TRAIN_S8_MAX_TERMS || !octo_tr_scale_ok(acc_scale)) {
        return OCTO_E_ARG;
    }
    const float inv = 1.0f / acc_scale;
    const int32_t six = octo_tr_six(acc_scale);
    if (dw_small_ok(in_dims, w_dims, out_dims)) {
        small_fwd(p, in_dims, x->data, w_dims, w->data, bias, inv, six, out_dims, y->data);
    } else if (dw_fast_ok(p, in_dims, w_dims, out_dims)) {
        fast_fwd(p, in_dims, x->data, w_dims, w->data, bias, inv, six, out_dims, y->data);
    } else {
        generic_fwd(p, in_dims, x->data, w_dims, w->data, bias, inv, six, out_dims, y->data);
    }
    y->scale = acc_scale;
    return OCTO_OK;
}

int octo_train_dwconv_s8_bwd_input(const octo_train_conv_params_t *p, const octo_dims_t *in_dims,
                                   const octo_dims_t *w_dims, const octo_train_q8_t *w, const octo_dims_t *out_dims,
                                   const octo_train_q8_t *dy, octo_train_q32_t *dx) {
    if (!octo_tr_q8_ok(w) || !octo_tr_q8_ok(dy) || !octo_tr_q32_out_ok(dx) ||
        !octo_tr_conv_ok(p, in_dims, w_dims, out_dims, 1)) {
        return OCTO_E_ARG;
    }
    const float acc_scale = dy->scale * w->scale;
    if (w_dims->h * w_dims->w > OCTO_TRAIN_S8_MAX_TERMS || !octo_tr_scale_ok(acc_scale)) {
        return OCTO_E_ARG;
    }
    if (dw_small_ok(in_dims, w_dims, out_dims)) {
        small_bwd_input(p, in_dims, w_dims, w->data, out_dims, dy->data, dx->data);
    } else if (dw_fast_ok(p, in_dims, w_dims, out_dims)) {
        fast_bwd_input(p, in_dims, w_dims, w->data, out_dims, dy->data, dx->data);
    } else {
        generic_bwd_input(p, in_dims, w_dims, w->data, out_dims, dy->data, dx->data);
    }
    dx->scale = acc_scale;
    return OCTO_OK;
}

int octo_train_dwconv_s8_bwd_weight(const octo_train_conv_params_t *p, const octo_dims_t *in_dims,
                                    const octo_train_q8_t *x, const octo_dims_t *out_dims, const octo_train_q8_t *dy,
                                    const octo_dims_t *w_dims, octo_train_q32_t *dw, octo_train_q32_t *db) {
    if (!octo_tr_q8_ok(x) || !octo_tr_q8_ok(dy) || !octo_tr_q32_out_ok(dw) || (db != NULL && db->data == NULL) ||
        !octo_tr_conv_ok(p, in_dims, w_dims, out_dims, 1)) {
        return OCTO_E_ARG;
    }
    const int32_t C = in_dims->c;
    const float acc_scale = x->scale * dy->scale;
    if ((int64_t)in_dims->n * out_dims->h * out_dims->w > OCTO_TRAIN_S8_MAX_TERMS || !octo_tr_scale_ok(acc_scale)) {
        return OCTO_E_ARG;
    }
    const int small = dw_small_ok(in_dims, w_dims, out_dims);
    const int fast = small || dw_fast_ok(p, in_dims, w_dims, out_dims); /* C >= 4: the SIMD bias gradient */
    if (small) {
        small_bwd_weight(p, in_dims, x->data, out_dims, dy->data, w_dims, dw->data);
    } else if (fast) {
        fast_bwd_weight(p, in_dims, x->data, out_dims, dy->data, w_dims, dw->data);
    } else {
        generic_bwd_weight(p, in_dims, x->data, out_dims, dy->data, w_dims, dw->data);
    }
    dw->scale = acc_scale;
    if (db != NULL) {
        const int32_t positions = in_dims->n * out_dims->h * out_dims->w;
        if (fast) {
            fast_bias_grad(dy->data, positions, C, db->data);
        } else {
            memset(db->data, 0, (size_t)C * sizeof(int32_t));
            for (int32_t pos = 0; pos < positions; pos++) {
                const int8_t *g = &dy->data[pos * C];
                for (int32_t c = 0; c < C; c++) {
                    db->data[c] += g[c];
                }
            }
        }
        db->scale = dy->scale;
    }
    return OCTO_OK;
}
