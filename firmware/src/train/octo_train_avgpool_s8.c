/* octo_train_avgpool_s8.c - AVERAGE_POOL_2D, INT8 training: forward and input
 * gradient as int32 window sums weighted by 1/count (see octo_train_s8.h). */
#include <string.h>

#include "octo_train_internal.h"

#define AVG_ONE (1 << 16) /* fixed-point 1 of the per-window weights when counts differ */

/* Checks every window has an in-image tap; *uniform = every window has the same count. */
static int windows_ok(const octo_train_pool_params_t *p, const octo_dims_t *in_dims, const octo_dims_t *out_dims,
                      int32_t *uniform_count) {
    int32_t cy = -1, cx = -1, uniform = 1;
    for (int32_t oy = 0; oy < out_dims->h; oy++) {
        int32_t k0, k1;
        octo_tr_taps(oy * p->stride_h - p->pad_h, p->filter_h, in_dims->h, &k0, &k1);
        if (k1 <= k0) {
            return 0;
        }
        uniform &= cy < 0 || cy == k1 - k0;
        cy = k1 - k0;
    }
    for (int32_t ox = 0; ox < out_dims->w; ox++) {
        int32_t k0, k1;
        octo_tr_taps(ox * p->stride_w - p->pad_w, p->filter_w, in_dims->w, &k0, &k1);
        if (k1 <= k0) {
            return 0;
        }
        uniform &= cx < 0 || cx == k1 - k0;
        cx = k1 - k0;
    }
    *uniform_count = uniform ? cy * cx : 0;
    return 1;
}

/* weight of a window of `count` taps: 1 when uniform, else round(2^16 / count) */
static int32_t window_weight(int32_t uniform_count, int32_t count) {
    return uniform_count > 0 ? 1 : (AVG_ONE + count / 2) / count;
}

static float sum_scale(float s, int32_t uniform_count) {
    return uniform_count > 0 ? s / (float)uniform_count : s * (1.0f / (float)AVG_ONE);
}

int octo_train_avgpool_s8_fwd(const octo_train_pool_params_t *p, const octo_dims_t *in_dims,
                              const octo_train_q8_t *x, const octo_dims_t *out_dims, octo_train_q32_t *y) {
    int32_t uc = 0;
    if (!octo_tr_q8_ok(x) || !octo_tr_q32_out_ok(y) || !octo_tr_pool_ok(p, in_dims, out_dims) ||
        (int64_t)p->filter_h * p->filter_w > OCTO_TRAIN_S8_MAX_TERMS || !windows_ok(p, in_dims, out_dims, &uc)) {
        return OCTO_E_ARG;
    }
    const int32_t H = in_dims->h, W = in_dims->w, C = in_dims->c;
    const int32_t OH = out_dims->h, OW = out_dims->w;
    const float out_scale = sum_scale(x->scale, uc);
    if (!octo_tr_scale_ok(out_scale)) {
        return OCTO_E_ARG;
    }
    for (int32_t b = 0; b < in_dims->n; b++) {
        for (int32_t oy = 0; oy < OH; oy++) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            int32_t ky0, ky1;
            octo_tr_taps(iy0, p->filter_h, H, &ky0, &ky1);
            for (int32_t ox = 0; ox < OW; ox++) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                int32_t kx0, kx1;
                octo_tr_taps(ix0, p->filter_w, W, &kx0, &kx1);
                const int32_t wgt = window_weight(uc, (ky1 - ky0) * (kx1 - kx0));
                int32_t *yo = &y->data[((b * OH + oy) * OW + ox) * C];
                memset(yo, 0, (size_t)C * sizeof(int32_t));
                for (int32_t ky = ky0; ky < ky1; ky++) {
                    for (int32_t kx = kx0; kx < kx1; kx++) {
                        const int8_t *xp = &x->data[((b * H + iy0 + ky) * W + ix0 + kx) * C];
                        for (int32_t c = 0; c < C; c++) {
                            yo[c] += xp[c];
                        }
                    }
                }
                for (int32_t c = 0; c < C; c++) {
                    yo[c] *= wgt;
                }
            }
        }
    }
    y->scale = out_scale;
    return OCTO_OK;
}

int octo_train_avgpool_s8_bwd(const octo_train_pool_params_t *p, const octo_dims_t *in_dims,
                              const octo_dims_t *out_dims, const octo_train_q8_t *dy, octo_train_q32_t *dx) {
    int32_t uc = 0;
    if (!octo_tr_q8_ok(dy) || !octo_tr_q32_out_ok(dx) || !octo_tr_pool_ok(p, in_dims, out_dims) ||
        !windows_ok(p, in_dims, out_dims, &uc)) {
        return OCTO_E_ARG;
    }
    const int64_t overlap = (int64_t)((p->filter_h + p->stride_h - 1) / p->stride_h) *
                            ((p->filter_w + p->stride_w - 1) / p->stride_w);
    const float out_scale = sum_scale(dy->scale, uc);
    if (overlap > 255 || !octo_tr_scale_ok(out_scale)) {
        return OCTO_E_ARG;
    }
    const int32_t H = in_dims->h, W = in_dims->w, C = in_dims->c;
    const int32_t OH = out_dims->h, OW = out_dims->w;
    memset(dx->data, 0, (size_t)octo_tr_count(in_dims) * sizeof(int32_t));
    for (int32_t b = 0; b < in_dims->n; b++) {
        for (int32_t oy = 0; oy < OH; oy++) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            int32_t ky0, ky1;
            octo_tr_taps(iy0, p->filter_h, H, &ky0, &ky1);
            for (int32_t ox = 0; ox < OW; ox++) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                int32_t kx0, kx1;
                octo_tr_taps(ix0, p->filter_w, W, &kx0, &kx1);
                const int32_t wgt = window_weight(uc, (ky1 - ky0) * (kx1 - kx0));
                const int8_t *g = &dy->data[((b * OH + oy) * OW + ox) * C];
                for (int32_t ky = ky0; ky < ky1; ky++) {
                    for (int32_t kx = kx0; kx < kx1; kx++) {
                        int32_t *xp = &dx->data[((b * H + iy0 + ky) * W + ix0 + kx) * C];
                        for (int32_t c = 0; c < C; c++) {
                            xp[c] += g[c] * wgt;
                        }
                    }
                }
            }
        }
    }
    dx->scale = out_scale;
    return OCTO_OK;
}
