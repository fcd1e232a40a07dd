/* octo_train_fully_connected_s8.c - FULLY_CONNECTED, INT8 training: forward, input
 * gradient, weight gradient; int32 accumulation with SXTB16 + SMLAD.
 *
 * forward      four outputs at a time (the forward has no scratch, so the
 *              weights stay int8): one load of x, unpacked by SXTB16, feeds the
 *              SMLAD of four weight rows.
 * input grad   the weights are transposed once to [D][O]; four rows of the
 *              transpose at a time are dotted with the dy row (one dy load, four
 *              features).
 * weight grad  batch items eight at a time, staged as int16 [d][8] and [o][8]:
 *              one SMLAD per two items, one dw read-modify-write per eight
 *              (octo_tr_rank8_s8, as the conv weight gradient).
 */
#include <string.h>

#include "octo_train_internal.h"

/* acc[j] += dot(x, w[j]) over n (j < 4): each x word, unpacked once, feeds the SMLAD of four rows. */
#if OCTO_HAVE_DSP && defined(__thumb2__)
/* dot4_groups(x, w, groups >= 1, acc): the whole groups of four bytes. r0-r3 the sums, r4 x, r5-r8 the
 * rows, r9 the end of x, r10-r12/lr unpacked words. */
void octo_tr_dot4_groups(const int8_t *x, const int8_t *const *w, int32_t groups, int32_t *acc);
#define OCTO_TR_D4_ROW(acc, ptr)                                                                                       \
    "ldr r12, [" ptr "], #4\n\t"                                                                                       \
    "sxtb16 lr, r12\n\t"                                                                                               \
    "sxtb16 r12, r12, ror #8\n\t"                                                                                      \
    "smlad " acc ", r10, lr, " acc "\n\t"                                                                              \
    "smlad " acc ", r11, r12, " acc "\n\t"
__asm__(".section .text.octo_tr_dot4_groups,\"ax\",%progbits\n\t"
        ".syntax unified\n\t"
        ".thumb\n\t"
        ".p2align 2\n\t"
        ".global octo_tr_dot4_groups\n\t"
        ".type octo_tr_dot4_groups, %function\n\t"
        ".thumb_func\n"
        "octo_tr_dot4_groups:\n\t"
        "push {r3-r11, lr}\n\t"
        "mov r4, r0\n\t"
        "add r9, r0, r2, lsl #2\n\t"
        "ldm r1, {r5-r8}\n\t"
        "ldm r3, {r0-r3}\n"
        ".Ld4_loop:\n\t"
        "ldr r10, [r4], #4\n\t"
        "sxtb16 r11, r10, ror #8\n\t"
        "sxtb16 r10, r10\n\t"
        OCTO_TR_D4_ROW("r0", "r5")
        OCTO_TR_D4_ROW("r1", "r6")
        OCTO_TR_D4_ROW("r2", "r7")
        OCTO_TR_D4_ROW("r3", "r8")
        "cmp r4, r9\n\t"
        "bne .Ld4_loop\n\t"
        "ldr r12, [sp]\n\t"
        "stm r12, {r0-r3}\n\t"
        "pop {r3-r11, pc}\n\t"
        ".size octo_tr_dot4_groups, .-octo_tr_dot4_groups\n\t"
        ".text");
#else
static void octo_tr_dot4_groups(const int8_t *x, const int8_t *const *w, int32_t groups, int32_t *acc) {
    for (int32_t i = 0; i < 4 * groups; i += 4) {
        const uint32_t vx = octo_read_u32(&x[i]);
        const uint32_t lo = octo_sxtb16(vx), hi = octo_sxtb16_ror8(vx);
        for (int32_t j = 0; j < 4; j++) {
            const uint32_t v = octo_read_u32(&w[j][i]);
            acc[j] = octo_smlad(lo, octo_sxtb16(v), acc[j]);
            acc[j] = octo_smlad(hi, octo_sxtb16_ror8(v), acc[j]);
        }
    }
}
#endif

static void dot4_s8(const int8_t *x, const int8_t *w0, const int8_t *w1, const int8_t *w2, const int8_t *w3,
                    int32_t n, int32_t acc[4]) {
    const int8_t *const w[4] = {w0, w1, w2, w3};
    const int32_t groups = n >> 2;
    if (groups > 0) {
        octo_tr_dot4_groups(x, w, groups, acc);
    }
    for (int32_t i = 4 * groups; i < n; i++) {
        const int32_t xv = x[i];
        for (int32_t j = 0; j < 4; j++) {
            acc[j] += xv * w[j][i];
        }
    }
}

int octo_train_fully_connected_s8_fwd(const octo_train_fully_connected_params_t *p, const octo_dims_t *in_dims,
                                      const octo_train_q8_t *x, const octo_dims_t *w_dims, const octo_train_q8_t *w,
                                      const float *bias, const octo_dims_t *out_dims, octo_train_q32_t *y) {
    if (p == NULL || !octo_tr_act_ok(p->act) || !octo_tr_q8_ok(x) || !octo_tr_q8_ok(w) || !octo_tr_q32_out_ok(y) ||
        !octo_tr_fully_connected_ok(in_dims, w_dims, out_dims)) {
        return OCTO_E_ARG;
    }
    const int32_t N = in_dims->n, D = w_dims->c, O = w_dims->n;
    const float acc_scale = x->scale * w->scale;
    if (D > OCTO_TRAIN_S8_MAX_TERMS || !octo_tr_scale_ok(acc_scale)) {
        return OCTO_E_ARG;
    }
    const float inv = 1.0f / acc_scale;
    const int32_t six = octo_tr_six(acc_scale);
    int32_t o = 0;
    for (; o + 4 <= O; o += 4) { /* outputs outermost: their biases are converted once */
        int32_t b_acc[4];
        for (int32_t j = 0; j < 4; j++) {
            b_acc[j] = octo_tr_bias_acc(bias, o + j, inv);
        }
        const int8_t *wr = &w->data[o * D];
        for (int32_t b = 0; b < N; b++) {
            int32_t acc[4] = {b_acc[0], b_acc[1], b_acc[2], b_acc[3]};
            dot4_s8(&x->data[b * D], wr, &wr[D], &wr[2 * D], &wr[3 * D], D, acc);
            for (int32_t j = 0; j < 4; j++) {
                y->data[b * O + o + j] = octo_tr_act_s32(acc[j], p->act, six);
            }
        }
    }
    for (; o < O; o++) {
        const int32_t b_acc = octo_tr_bias_acc(bias, o, inv);
        const int8_t *wr = &w->data[o * D];
        for (int32_t b = 0; b < N; b++) {
            const int32_t acc = octo_tr_dot_s8(&x->data[b * D], wr, D, b_acc);
            y->data[b * O + o] = octo_tr_act_s32(acc, p->act, six);
        }
    }
    y->scale = acc_scale;
    return OCTO_OK;
}

size_t octo_train_fully_connected_s8_bwd_input_scratch_size(const octo_dims_t *w_dims) {
    return octo_tr_dims_ok(w_dims) ? (size_t)octo_tr_count(w_dims) : 0;
}

/* dst[d][o] = src[o][d] (rows x cols bytes): 4x4 blocks by words, the edges by bytes. */
static void transpose_s8(const int8_t *src, int32_t rows, int32_t cols, int8_t *dst) {
    int32_t o = 0;
    for (; o + 4 <= rows; o += 4) {
        const int8_t *r = &src[o * cols];
        int32_t d = 0;
        for (; d + 4 <= cols; d += 4) {
            const uint32_t a = octo_read_u32(&r[d]), b = octo_read_u32(&r[cols + d]);
            const uint32_t c = octo_read_u32(&r[2 * cols + d]), e = octo_read_u32(&r[3 * cols + d]);
            const uint32_t ab0 = (a & 0x00FF00FFu) | (b & 0x00FF00FFu) << 8; /* a0 b0 a2 b2 */
            const uint32_t ab1 = (a >> 8 & 0x00FF00FFu) | (b & 0xFF00FF00u); /* a1 b1 a3 b3 */
            const uint32_t ce0 = (c & 0x00FF00FFu) | (e & 0x00FF00FFu) << 8;
            const uint32_t ce1 = (c >> 8 & 0x00FF00FFu) | (e & 0xFF00FF00u);
            const uint32_t col[4] = {octo_tr_pk_lo(ab0, ce0), octo_tr_pk_lo(ab1, ce1), octo_tr_pk_hi(ab0, ce0),
                                     octo_tr_pk_hi(ab1, ce1)};
            for (int32_t j = 0; j < 4; j++) {
                memcpy(&dst[(d + j) * rows + o], &col[j], 4);
            }
        }
        for (; d < cols; d++) {
            for (int32_t i = 0; i < 4; i++) {
                dst[d * rows + o + i] = r[i * cols + d];
            }
        }
    }
    for (; o < rows; o++) {
        for (int32_t d = 0; d < cols; d++) {
            dst[d * rows + o] = src[o * cols + d];
        }
    }
}

int octo_train_fully_connected_s8_bwd_input(const octo_dims_t *in_dims, const octo_dims_t *w_dims,
                                            const octo_train_q8_t *w, const octo_dims_t *out_dims,
                                            const octo_train_q8_t *dy, void *scratch, octo_train_q32_t *dx) {
    if (!octo_tr_q8_ok(w) || !octo_tr_q8_ok(dy) || !octo_tr_q32_out_ok(dx) || scratch == NULL ||
        !octo_tr_aligned4(scratch) || !octo_tr_fully_connected_ok(in_dims, w_dims, out_dims)) {
        return OCTO_E_ARG;
    }
    const int32_t N = in_dims->n, D = w_dims->c, O = w_dims->n;
    const float acc_scale = dy->scale * w->scale;
    if (O > OCTO_TRAIN_S8_MAX_TERMS || !octo_tr_scale_ok(acc_scale)) {
        return OCTO_E_ARG;
    }
    int8_t *wt = (int8_t *)scratch; /* [D][O] */
    transpose_s8(w->data, O, D, wt);
    for (int32_t b = 0; b < N; b++) {
        const int8_t *g = &dy->data[b * O];
        int32_t *xr = &dx->data[b * D];
        int32_t d = 0;
        for (; d + 4 <= D; d += 4) {
            const int8_t *t = &wt[d * O];
            int32_t acc[4] = {0, 0, 0, 0};
            dot4_s8(g, t, &t[O], &t[2 * O], &t[3 * O], O, acc);
            memcpy(&xr[d], acc, sizeof acc);
        }
        for (; d < D; d++) {
            xr[d] = octo_tr_dot_s8(g, &wt[d * O], O, 0);
        }
    }
    dx->scale = acc_scale;
    return OCTO_OK;
}

/* eight input rows and eight dy rows as int16: 16*(D + O) */
size_t octo_train_fully_connected_s8_bwd_weight_scratch_size(const octo_dims_t *w_dims) {
    if (!octo_tr_dims_ok(w_dims)) {
        return 0;
    }
    return 16 * ((size_t)w_dims->c + (size_t)w_dims->n);
}

int octo_train_fully_connected_s8_bwd_weight(const octo_dims_t *in_dims, const octo_train_q8_t *x,
                                             const octo_dims_t *out_dims, const octo_train_q8_t *dy,
                                             const octo_dims_t *w_dims, void *scratch, octo_train_q32_t *dw,
                                             octo_train_q32_t *db) {
    if (!octo_tr_q8_ok(x) || !octo_tr_q8_ok(dy) || !octo_tr_q32_out_ok(dw) || (db != NULL && db->data == NULL) ||
        scratch == NULL || !octo_tr_aligned4(scratch) || !octo_tr_fully_connected_ok(in_dims, w_dims, out_dims)) {
        return OCTO_E_ARG;
    }
    const int32_t N = in_dims->n, D = w_dims->c, O = w_dims->n;
    const float acc_scale = x->scale * dy->scale;
    if (N > OCTO_TRAIN_S8_MAX_TERMS || !octo_tr_scale_ok(acc_scale)) {
        return OCTO_E_ARG;
    }
    uint32_t *xe = (uint32_t *)scratch; /* [D][8] int16 input rows */
    uint32_t *de = &xe[4 * D];          /* [O][8] int16 dy rows */
    if (N > 2 && N < 8) { /* the stage words of the missing items are read (times a zero dy): define them */
        memset(xe, 0, (size_t)D * 16);
    }
    memset(dw->data, 0, (size_t)O * (size_t)D * sizeof(int32_t));
    if (db != NULL) {
        memset(db->data, 0, (size_t)O * sizeof(int32_t));
    }
    const octo_tr_rank8_t job = {xe, de, dw->data, D, O};
    for (int32_t b0 = 0; b0 < N; b0 += 8) {
        const int32_t nq = octo_tr_min(8, N - b0);
        for (int32_t q = 0; q < 8; q += 2) {
            const int32_t b = b0 + q;
            if (b >= N) { /* missing items: zero dy rows make them no-ops */
                for (int32_t o = 0; o < O; o++) {
                    de[4 * o + (q >> 1)] = 0;
                }
                continue;
            }
            const int has_b = b + 1 < N;
            const int8_t *xr = &x->data[b * D], *g = &dy->data[b * O];
            octo_tr_stage2(&xe[q >> 1], xr, has_b ? &xr[D] : xr, D);
            octo_tr_stage2(&de[q >> 1], g, has_b ? &g[O] : NULL, O);
        }
        octo_tr_rank_s8(&job, nq);
        if (db != NULL) {
            octo_tr_sum8(de, O, db->data);
        }
    }
    dw->scale = acc_scale;
    if (db != NULL) {
        db->scale = dy->scale;
    }
    return OCTO_OK;
}
