/* octo_train_conv2d_s8.c - CONV_2D, INT8 training: forward, input gradient,
 * weight gradient, int32 accumulation with SXTB16 + SMLAD (octo_dsp.h).
 *
 * forward      per output pixel the receptive field is gathered into a patch
 *              laid out like a weight row ([KH][KW][C], zeros in the padding:
 *              symmetric quantization has zero point 0), then dotted with
 *              every output channel's row.
 * input grad   the weights are transposed once to [C][KH][KW][OC] so that for
 *              each input pixel and tap reaching it, dx[:, c] is a dot over
 *              output channels of the dy row and a contiguous weight row.
 * weight grad  positions are taken two at a time; their receptive fields and
 *              dy rows are pair-interleaved so one SXTB16 yields (p0[k], p1[k])
 *              and one SMLAD adds both positions' products to dw[o][k].
 */
#include <string.h>

#include "octo_train_internal.h"

static int32_t round_up(int32_t v, int32_t m) {
    return (v + m - 1) / m * m;
}

size_t octo_train_conv2d_s8_fwd_scratch_size(const octo_dims_t *w_dims) {
    if (!octo_tr_dims_ok(w_dims)) {
        return 0;
    }
    return (size_t)w_dims->n * sizeof(int32_t) + (size_t)round_up(w_dims->h * w_dims->w * w_dims->c, 4);
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
    int32_t *bias_acc = (int32_t *)scratch;
    int8_t *patch = (int8_t *)&bias_acc[OC];
    const float inv = 1.0f / acc_scale;
    for (int32_t oc = 0; oc < OC; oc++) {
        bias_acc[oc] = octo_tr_bias_acc(bias, oc, inv);
    }
    const int32_t six = octo_tr_six(acc_scale);
    const int32_t row = KW * C;
    for (int32_t b = 0; b < in_dims->n; b++) {
        for (int32_t oy = 0; oy < OH; oy++) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            for (int32_t ox = 0; ox < OW; ox++) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                int32_t kx0, kx1;
                octo_tr_taps(ix0, KW, W, &kx0, &kx1);
                for (int32_t ky = 0; ky < KH; ky++) {
                    int8_t *dst = &patch[ky * row];
                    const int32_t iy = iy0 + ky;
                    if (iy < 0 || iy >= H || kx1 <= kx0) {
                        memset(dst, 0, (size_t)row);
                        continue;
                    }
                    memset(dst, 0, (size_t)(kx0 * C));
                    memcpy(&dst[kx0 * C], &x->data[((b * H + iy) * W + ix0 + kx0) * C], (size_t)((kx1 - kx0) * C));
                    memset(&dst[kx1 * C], 0, (size_t)((KW - kx1) * C));
                }
                int32_t *yo = &y->data[((b * OH + oy) * OW + ox) * OC];
                for (int32_t oc = 0; oc < OC; oc++) {
                    const int32_t acc = octo_tr_dot_s8(patch, &w->data[oc * K], K, bias_acc[oc]);
                    yo[oc] = octo_tr_act_s32(acc, p->act, six);
                }
            }
        }
    }
    y->scale = acc_scale;
    return OCTO_OK;
}

size_t octo_train_conv2d_s8_bwd_input_scratch_size(const octo_dims_t *w_dims) {
    return octo_tr_dims_ok(w_dims) ? (size_t)octo_tr_count(w_dims) : 0;
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
    int8_t *wt = (int8_t *)scratch; /* [C][KH][KW][OC] */
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
            /* taps ky with iy = oy*SH - pad_h + ky for an output row 0 <= oy < OH */
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
    dx->scale = acc_scale;
    return OCTO_OK;
}

size_t octo_train_conv2d_s8_bwd_weight_scratch_size(const octo_dims_t *w_dims) {
    if (!octo_tr_dims_ok(w_dims)) {
        return 0;
    }
    const int32_t k2 = round_up(w_dims->h * w_dims->w * w_dims->c, 2);
    const int32_t o2 = round_up(w_dims->n, 2);
    return (size_t)round_up(2 * k2 + 2 * o2, 4);
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
    const int32_t K = KH * KW * C;
    const int32_t positions = in_dims->n * OH * OW;
    const float acc_scale = x->scale * dy->scale;
    if ((int64_t)in_dims->n * OH * OW > OCTO_TRAIN_S8_MAX_TERMS || !octo_tr_scale_ok(acc_scale)) {
        return OCTO_E_ARG;
    }
    int8_t *p_il = (int8_t *)scratch;             /* 2 receptive fields, pair-interleaved */
    int8_t *dy_il = &p_il[2 * round_up(K, 2)];     /* 2 dy rows, pair-interleaved */
    memset(scratch, 0, octo_train_conv2d_s8_bwd_weight_scratch_size(w_dims));
    memset(dw->data, 0, (size_t)OC * (size_t)K * sizeof(int32_t));
    if (db != NULL) {
        memset(db->data, 0, (size_t)OC * sizeof(int32_t));
    }
    for (int32_t pos0 = 0; pos0 < positions; pos0 += 2) {
        for (int32_t j = 0; j < 2; j++) {
            const int32_t pos = pos0 + j;
            if (pos >= positions) { /* odd count: a zero dy row makes the second position a no-op */
                for (int32_t o = 0; o < OC; o++) {
                    dy_il[octo_tr_il_index(o, j)] = 0;
                }
                continue;
            }
            const int32_t b = pos / (OH * OW), oy = (pos / OW) % OH, ox = pos % OW;
            const int32_t iy0 = oy * p->stride_h - p->pad_h, ix0 = ox * p->stride_w - p->pad_w;
            for (int32_t ky = 0; ky < KH; ky++) {
                const int32_t iy = iy0 + ky;
                for (int32_t kx = 0; kx < KW; kx++) {
                    const int32_t ix = ix0 + kx;
                    const int32_t k0 = (ky * KW + kx) * C;
                    if (iy < 0 || iy >= H || ix < 0 || ix >= W) {
                        for (int32_t ic = 0; ic < C; ic++) {
                            p_il[octo_tr_il_index(k0 + ic, j)] = 0;
                        }
                    } else {
                        const int8_t *src = &x->data[((b * H + iy) * W + ix) * C];
                        for (int32_t ic = 0; ic < C; ic++) {
                            p_il[octo_tr_il_index(k0 + ic, j)] = src[ic];
                        }
                    }
                }
            }
            const int8_t *g = &dy->data[pos * OC];
            for (int32_t o = 0; o < OC; o++) {
                dy_il[octo_tr_il_index(o, j)] = g[o];
            }
            if (db != NULL) {
                for (int32_t o = 0; o < OC; o++) {
                    db->data[o] += g[o];
                }
            }
        }
        octo_tr_rank2_s8(dy_il, OC, p_il, K, dw->data);
    }
    dw->scale = acc_scale;
    if (db != NULL) {
        db->scale = dy->scale;
    }
    return OCTO_OK;
}
