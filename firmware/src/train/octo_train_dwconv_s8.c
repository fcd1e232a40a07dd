/* octo_train_dwconv_s8.c - DEPTHWISE_CONV_2D (multiplier 1), INT8 training:
 * forward, input gradient, weight gradient. Channels are independent, so four
 * of them share one word: SXTB16 splits it into lanes (0,2) and (1,3) and
 * SMLABB/SMLATT multiply-accumulate each lane into its own int32 (octo_dsp.h). */
#include <string.h>

#include "octo_train_internal.h"

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

int octo_train_dwconv_s8_fwd(const octo_train_conv_params_t *p, const octo_dims_t *in_dims, const octo_train_q8_t *x,
                             const octo_dims_t *w_dims, const octo_train_q8_t *w, const float *bias,
                             const octo_dims_t *out_dims, octo_train_q32_t *y) {
    if (!octo_tr_q8_ok(x) || !octo_tr_q8_ok(w) || !octo_tr_q32_out_ok(y) ||
        !octo_tr_conv_ok(p, in_dims, w_dims, out_dims, 1)) {
        return OCTO_E_ARG;
    }
    const int32_t H = in_dims->h, W = in_dims->w, C = in_dims->c;
    const int32_t OH = out_dims->h, OW = out_dims->w;
    const int32_t KH = w_dims->h, KW = w_dims->w;
    const float acc_scale = x->scale * w->scale;
    if (KH * KW > OCTO_TRAIN_S8_MAX_TERMS || !octo_tr_scale_ok(acc_scale)) {
        return OCTO_E_ARG;
    }
    const float inv = 1.0f / acc_scale;
    const int32_t six = octo_tr_six(acc_scale);
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
                            mac_group(&x->data[((b * H + iy0 + ky) * W + ix0 + kx) * C + c],
                                      &w->data[(ky * KW + kx) * C + c], n, acc);
                        }
                    }
                    int32_t *yo = &y->data[((b * OH + oy) * OW + ox) * C + c];
                    for (int32_t j = 0; j < n; j++) {
                        yo[j] = octo_tr_act_s32(acc[j], p->act, six);
                    }
                }
            }
        }
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
    const int32_t H = in_dims->h, W = in_dims->w, C = in_dims->c;
    const int32_t OH = out_dims->h, OW = out_dims->w;
    const int32_t KH = w_dims->h, KW = w_dims->w;
    const int32_t SH = p->stride_h, SW = p->stride_w;
    const float acc_scale = dy->scale * w->scale;
    if (KH * KW > OCTO_TRAIN_S8_MAX_TERMS || !octo_tr_scale_ok(acc_scale)) {
        return OCTO_E_ARG;
    }
    for (int32_t b = 0; b < in_dims->n; b++) {
        for (int32_t iy = 0; iy < H; iy++) {
            const int32_t ty = iy + p->pad_h;
            for (int32_t ix = 0; ix < W; ix++) {
                const int32_t tx = ix + p->pad_w;
                int32_t *g = &dx->data[((b * H + iy) * W + ix) * C];
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
                            mac_group(&dy->data[((b * OH + oy) * OW + ox) * C + c], &w->data[(ky * KW + kx) * C + c],
                                      n, acc);
                        }
                    }
                    for (int32_t j = 0; j < n; j++) {
                        g[c + j] = acc[j];
                    }
                }
            }
        }
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
    const int32_t H = in_dims->h, W = in_dims->w, C = in_dims->c;
    const int32_t OH = out_dims->h, OW = out_dims->w;
    const int32_t KH = w_dims->h, KW = w_dims->w;
    const float acc_scale = x->scale * dy->scale;
    if ((int64_t)in_dims->n * OH * OW > OCTO_TRAIN_S8_MAX_TERMS || !octo_tr_scale_ok(acc_scale)) {
        return OCTO_E_ARG;
    }
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
                            mac_group(&dy->data[((b * OH + oy) * OW + ox) * C + c],
                                      &x->data[((b * H + iy) * W + ix) * C + c], n, acc);
                        }
                    }
                }
                int32_t *wo = &dw->data[(ky * KW + kx) * C + c];
                for (int32_t j = 0; j < n; j++) {
                    wo[j] = acc[j];
                }
            }
        }
    }
    dw->scale = acc_scale;
    if (db != NULL) {
        memset(db->data, 0, (size_t)C * sizeof(int32_t));
        const int32_t positions = in_dims->n * OH * OW;
        for (int32_t pos = 0; pos < positions; pos++) {
            const int8_t *g = &dy->data[pos * C];
            for (int32_t c = 0; c < C; c++) {
                db->data[c] += g[c];
            }
        }
        db->scale = dy->scale;
    }
    return OCTO_OK;
}
