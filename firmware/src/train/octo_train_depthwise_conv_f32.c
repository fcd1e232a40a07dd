/* octo_train_depthwise_conv_f32.c - DEPTHWISE_CONV_2D, FP32: forward, input gradient, weight gradient.
 * A depth multiplier M > 1 (OC = M x C: output channel o reads input channel o / M) takes the scalar
 * loops over output channels (mult_*); multiplier 1 the loops below them. */
#include <string.h>

#include "octo_train_internal.h"

/* One pass over every (output pixel, tap inside the input) pair of the batch: what the three multiplier-M
 * kernels share. mode 0 forward (out += x w), 1 input gradient (out = dx += dy w), 2 weight and bias
 * gradients (out = dw += dy x, db += dy). x: the input (modes 0, 2), dy: the output gradient (1, 2). */
static void mult_walk(int mode, const octo_train_conv_params_t *p, const octo_dims_t *in_dims, const float *x,
                      const octo_dims_t *w_dims, const float *w, const octo_dims_t *out_dims, const float *dy,
                      float *out, float *db) {
    const int32_t H = in_dims->h, W = in_dims->w, C = in_dims->c;
    const int32_t OH = out_dims->h, OW = out_dims->w, OC = out_dims->c, M = OC / C;
    const int32_t KH = w_dims->h, KW = w_dims->w;
    for (int32_t b = 0; b < in_dims->n; b++) {
        for (int32_t oy = 0; oy < OH; oy++) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            int32_t ky0, ky1;
            octo_tr_taps(iy0, KH, H, &ky0, &ky1);
            for (int32_t ox = 0; ox < OW; ox++) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                int32_t kx0, kx1;
                octo_tr_taps(ix0, KW, W, &kx0, &kx1);
                const int32_t po = ((b * OH + oy) * OW + ox) * OC;
                for (int32_t o = 0; db != NULL && o < OC; o++) {
                    db[o] += dy[po + o];
                }
                for (int32_t ky = ky0; ky < ky1; ky++) {
                    for (int32_t kx = kx0; kx < kx1; kx++) {
                        const int32_t pi = ((b * H + iy0 + ky) * W + ix0 + kx) * C, pw = (ky * KW + kx) * OC;
                        for (int32_t o = 0; o < OC; o++) {
                            if (mode == 0) {
                                out[po + o] += x[pi + o / M] * w[pw + o];
                            } else if (mode == 1) {
                                out[pi + o / M] += dy[po + o] * w[pw + o];
                            } else {
                                out[pw + o] += dy[po + o] * x[pi + o / M];
                            }
                        }
                    }
                }
            }
        }
    }
}

int octo_train_depthwise_conv_f32_fwd(const octo_train_conv_params_t *p, const octo_dims_t *in_dims, const float *x,
                                      const octo_dims_t *w_dims, const float *w, const float *bias,
                                      const octo_dims_t *out_dims, float *y) {
    if (x == NULL || w == NULL || y == NULL || !octo_tr_conv_ok(p, in_dims, w_dims, out_dims, 1)) {
        return OCTO_E_ARG;
    }
    if (out_dims->c != in_dims->c) {
        const int32_t OC = out_dims->c, n = octo_tr_count(out_dims);
        for (int32_t i = 0; i < n; i++) {
            y[i] = bias != NULL ? bias[i % OC] : 0.0f;
        }
        mult_walk(0, p, in_dims, x, w_dims, w, out_dims, NULL, y, NULL);
        for (int32_t i = 0; i < n; i++) {
            y[i] = octo_tr_act_f32(y[i], p->act);
        }
        return OCTO_OK;
    }
    const int32_t H = in_dims->h, W = in_dims->w, C = in_dims->c;
    const int32_t OH = out_dims->h, OW = out_dims->w;
    const int32_t KH = w_dims->h, KW = w_dims->w;
    for (int32_t b = 0; b < in_dims->n; b++) {
        for (int32_t oy = 0; oy < OH; oy++) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            int32_t ky0, ky1;
            octo_tr_taps(iy0, KH, H, &ky0, &ky1);
            for (int32_t ox = 0; ox < OW; ox++) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                int32_t kx0, kx1;
                octo_tr_taps(ix0, KW, W, &kx0, &kx1);
                float *yo = &y[((b * OH + oy) * OW + ox) * C];
                for (int32_t c = 0; c < C; c++) {
                    yo[c] = bias != NULL ? bias[c] : 0.0f;
                }
                for (int32_t ky = ky0; ky < ky1; ky++) {
                    for (int32_t kx = kx0; kx < kx1; kx++) {
                        const float *xp = &x[((b * H + iy0 + ky) * W + ix0 + kx) * C];
                        const float *wp = &w[(ky * KW + kx) * C];
                        for (int32_t c = 0; c < C; c++) {
                            yo[c] += xp[c] * wp[c];
                        }
                    }
                }
                for (int32_t c = 0; c < C; c++) {
                    yo[c] = octo_tr_act_f32(yo[c], p->act);
                }
            }
        }
    }
    return OCTO_OK;
}

int octo_train_depthwise_conv_f32_bwd_input(const octo_train_conv_params_t *p, const octo_dims_t *in_dims,
                                            const octo_dims_t *w_dims, const float *w, const octo_dims_t *out_dims,
                                            const float *dy, float *dx) {
    if (w == NULL || dy == NULL || dx == NULL || !octo_tr_conv_ok(p, in_dims, w_dims, out_dims, 1)) {
        return OCTO_E_ARG;
    }
    const int32_t H = in_dims->h, W = in_dims->w, C = in_dims->c;
    const int32_t OH = out_dims->h, OW = out_dims->w;
    const int32_t KH = w_dims->h, KW = w_dims->w;
    memset(dx, 0, (size_t)octo_tr_count(in_dims) * sizeof(float));
    if (out_dims->c != in_dims->c) {
        mult_walk(1, p, in_dims, NULL, w_dims, w, out_dims, dy, dx, NULL);
        return OCTO_OK;
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
                const float *g = &dy[((b * OH + oy) * OW + ox) * C];
                for (int32_t ky = ky0; ky < ky1; ky++) {
                    for (int32_t kx = kx0; kx < kx1; kx++) {
                        float *xp = &dx[((b * H + iy0 + ky) * W + ix0 + kx) * C];
                        const float *wp = &w[(ky * KW + kx) * C];
                        for (int32_t c = 0; c < C; c++) {
                            xp[c] += g[c] * wp[c];
                        }
                    }
                }
            }
        }
    }
    return OCTO_OK;
}

int octo_train_depthwise_conv_f32_bwd_weight(const octo_train_conv_params_t *p, const octo_dims_t *in_dims,
                                             const float *x, const octo_dims_t *out_dims, const float *dy,
                                             const octo_dims_t *w_dims, float *dw, float *db) {
    if (x == NULL || dy == NULL || dw == NULL || !octo_tr_conv_ok(p, in_dims, w_dims, out_dims, 1)) {
        return OCTO_E_ARG;
    }
    const int32_t H = in_dims->h, W = in_dims->w, C = in_dims->c;
    const int32_t OH = out_dims->h, OW = out_dims->w;
    const int32_t KH = w_dims->h, KW = w_dims->w;
    memset(dw, 0, (size_t)octo_tr_count(w_dims) * sizeof(float));
    if (db != NULL) {
        memset(db, 0, (size_t)out_dims->c * sizeof(float));
    }
    if (out_dims->c != in_dims->c) {
        mult_walk(2, p, in_dims, x, w_dims, NULL, out_dims, dy, dw, db);
        return OCTO_OK;
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
                const float *g = &dy[((b * OH + oy) * OW + ox) * C];
                if (db != NULL) {
                    for (int32_t c = 0; c < C; c++) {
                        db[c] += g[c];
                    }
                }
                for (int32_t ky = ky0; ky < ky1; ky++) {
                    for (int32_t kx = kx0; kx < kx1; kx++) {
                        const float *xp = &x[((b * H + iy0 + ky) * W + ix0 + kx) * C];
                        float *wp = &dw[(ky * KW + kx) * C];
                        for (int32_t c = 0; c < C; c++) {
                            wp[c] += g[c] * xp[c];
                        }
                    }
                }
            }
        }
    }
    return OCTO_OK;
}
