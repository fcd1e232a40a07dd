/* octo_train_depthwise_conv_s8.c - DEPTHWISE_CONV_2D, INT8 training:
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
 * byte offsets might not fit in int32 take the plain per-tap loops (generic_*);
 * a depth multiplier M > 1 (OC = M x C) the scalar loops over output
 * channels (mult_*).
 * No scratch: the fast path keeps at most ~0.9 KB on the stack (records and
 * segments), the small-map path 0.5 KB (pairs). Every sum is an exact int32
 * sum of the same int8 products (bounded by OCTO_TRAIN_S8_MAX_TERMS), so the
 * order of the additions does not matter: the assembly on DSP cores, the C
 * below and the generic loops give the same bits.
 *
 * The strategies are in the parts below, compiled here as one translation unit:
 * GCC specializes each strategy's static functions for their one caller
 * (arguments by value), which separately compiled files would undo (other code,
 * other instruction counts).
 *   octo_train_depthwise_conv_s8_generic.inc   the plain per-tap loops (generic_*)
 *   octo_train_depthwise_conv_s8_fast_asm.inc  the fast path's layouts and Thumb-2 blocks
 *   octo_train_depthwise_conv_s8_fast.inc      the fast path: portable blocks, geometry, drivers (fast_*)
 *   octo_train_depthwise_conv_s8_small.inc     the small-map path (small_*)
 * This file: the API (argument checks, choice of the strategy). */
#include <string.h>

#include "octo_train_internal.h"

#include "octo_train_depthwise_conv_s8_generic.inc"
#include "octo_train_depthwise_conv_s8_fast_asm.inc"
#include "octo_train_depthwise_conv_s8_fast.inc"
#include "octo_train_depthwise_conv_s8_small.inc"

/* ---------------------------------------------------------------------------------------------- */
/* API                                                                                            */
/* ---------------------------------------------------------------------------------------------- */

int octo_train_depthwise_conv_s8_fwd(const octo_train_conv_params_t *p, const octo_dims_t *in_dims,
                                     const octo_train_q8_t *x, const octo_dims_t *w_dims, const octo_train_q8_t *w,
                                     const float *bias, const octo_dims_t *out_dims, octo_train_q32_t *y) {
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
    if (out_dims->c != in_dims->c) {
        mult_fwd(p, in_dims, x->data, w_dims, w->data, bias, inv, six, out_dims, y->data);
    } else if (dw_small_ok(in_dims, w_dims, out_dims)) {
        small_fwd(p, in_dims, x->data, w_dims, w->data, bias, inv, six, out_dims, y->data);
    } else if (dw_fast_ok(p, in_dims, w_dims, out_dims)) {
        fast_fwd(p, in_dims, x->data, w_dims, w->data, bias, inv, six, out_dims, y->data);
    } else {
        generic_fwd(p, in_dims, x->data, w_dims, w->data, bias, inv, six, out_dims, y->data);
    }
    y->scale = acc_scale;
    return OCTO_OK;
}

int octo_train_depthwise_conv_s8_bwd_input(const octo_train_conv_params_t *p, const octo_dims_t *in_dims,
                                           const octo_dims_t *w_dims, const octo_train_q8_t *w,
                                           const octo_dims_t *out_dims, const octo_train_q8_t *dy,
                                           octo_train_q32_t *dx) {
    if (!octo_tr_q8_ok(w) || !octo_tr_q8_ok(dy) || !octo_tr_q32_out_ok(dx) ||
        !octo_tr_conv_ok(p, in_dims, w_dims, out_dims, 1)) {
        return OCTO_E_ARG;
    }
    const float acc_scale = dy->scale * w->scale;
    if ((int64_t)w_dims->h * w_dims->w * (out_dims->c / in_dims->c) > OCTO_TRAIN_S8_MAX_TERMS ||
        !octo_tr_scale_ok(acc_scale)) {
        return OCTO_E_ARG;
    }
    if (out_dims->c != in_dims->c) {
        mult_bwd_input(p, in_dims, w_dims, w->data, out_dims, dy->data, dx->data);
    } else if (dw_small_ok(in_dims, w_dims, out_dims)) {
        small_bwd_input(p, in_dims, w_dims, w->data, out_dims, dy->data, dx->data);
    } else if (dw_fast_ok(p, in_dims, w_dims, out_dims)) {
        fast_bwd_input(p, in_dims, w_dims, w->data, out_dims, dy->data, dx->data);
    } else {
        generic_bwd_input(p, in_dims, w_dims, w->data, out_dims, dy->data, dx->data);
    }
    dx->scale = acc_scale;
    return OCTO_OK;
}

int octo_train_depthwise_conv_s8_bwd_weight(const octo_train_conv_params_t *p, const octo_dims_t *in_dims,
                                            const octo_train_q8_t *x, const octo_dims_t *out_dims,
                                            const octo_train_q8_t *dy, const octo_dims_t *w_dims, octo_train_q32_t *dw,
                                            octo_train_q32_t *db) {
    if (!octo_tr_q8_ok(x) || !octo_tr_q8_ok(dy) || !octo_tr_q32_out_ok(dw) || (db != NULL && db->data == NULL) ||
        !octo_tr_conv_ok(p, in_dims, w_dims, out_dims, 1)) {
        return OCTO_E_ARG;
    }
    const int32_t C = out_dims->c;
    const float acc_scale = x->scale * dy->scale;
    if ((int64_t)in_dims->n * out_dims->h * out_dims->w > OCTO_TRAIN_S8_MAX_TERMS || !octo_tr_scale_ok(acc_scale)) {
        return OCTO_E_ARG;
    }
    const int mult = out_dims->c != in_dims->c;
    const int small = !mult && dw_small_ok(in_dims, w_dims, out_dims);
    /* C >= 4: the SIMD bias gradient */
    const int fast = small || (!mult && dw_fast_ok(p, in_dims, w_dims, out_dims));
    if (mult) {
        mult_bwd_weight(p, in_dims, x->data, out_dims, dy->data, w_dims, dw->data);
    } else if (small) {
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
