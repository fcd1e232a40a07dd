/* octo_train_maxpool_s8.c - MAX_POOL_2D, INT8 training: forward (int8, the
 * input's scale) and input gradient (int32 sums of routed dy, dy's scale). */
#include <string.h>

#include "octo_train_internal.h"

int octo_train_maxpool_s8_fwd(const octo_train_pool_params_t *p, const octo_dims_t *in_dims,
                              const octo_train_q8_t *x, const octo_dims_t *out_dims, octo_train_q8_t *y) {
    if (!octo_tr_q8_ok(x) || y == NULL || y->data == NULL || !octo_tr_pool_ok(p, in_dims, out_dims)) {
        return OCTO_E_ARG;
    }
    const int32_t H = in_dims->h, W = in_dims->w, C = in_dims->c;
    const int32_t OH = out_dims->h, OW = out_dims->w;
    for (int32_t b = 0; b < in_dims->n; b++) {
        for (int32_t oy = 0; oy < OH; oy++) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            int32_t ky0, ky1;
            octo_tr_taps(iy0, p->filter_h, H, &ky0, &ky1);
            for (int32_t ox = 0; ox < OW; ox++) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                int32_t kx0, kx1;
                octo_tr_taps(ix0, p->filter_w, W, &kx0, &kx1);
                if (ky1 <= ky0 || kx1 <= kx0) {
                    return OCTO_E_ARG; /* a window entirely in the padding */
                }
                int8_t *yo = &y->data[((b * OH + oy) * OW + ox) * C];
                memcpy(yo, &x->data[((b * H + iy0 + ky0) * W + ix0 + kx0) * C], (size_t)C);
                for (int32_t ky = ky0; ky < ky1; ky++) {
                    for (int32_t kx = kx0; kx < kx1; kx++) {
                        const int8_t *xp = &x->data[((b * H + iy0 + ky) * W + ix0 + kx) * C];
                        for (int32_t c = 0; c < C; c++) {
                            if (xp[c] > yo[c]) {
                                yo[c] = xp[c];
                            }
                        }
                    }
                }
            }
        }
    }
    y->scale = x->scale;
    return OCTO_OK;
}

int octo_train_maxpool_s8_bwd(const octo_train_pool_params_t *p, const octo_dims_t *in_dims,
                              const octo_train_q8_t *x, const octo_dims_t *out_dims, const octo_train_q8_t *dy,
                              octo_train_q32_t *dx) {
    if (!octo_tr_q8_ok(x) || !octo_tr_q8_ok(dy) || !octo_tr_q32_out_ok(dx) || !octo_tr_pool_ok(p, in_dims, out_dims)) {
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
                if (ky1 <= ky0 || kx1 <= kx0) {
                    return OCTO_E_ARG;
                }
                const int8_t *g = &dy->data[((b * OH + oy) * OW + ox) * C];
                for (int32_t c = 0; c < C; c++) {
                    int32_t best = ((b * H + iy0 + ky0) * W + ix0 + kx0) * C + c;
                    for (int32_t ky = ky0; ky < ky1; ky++) {
                        for (int32_t kx = kx0; kx < kx1; kx++) {
                            const int32_t i = ((b * H + iy0 + ky) * W + ix0 + kx) * C + c;
                            if (x->data[i] > x->data[best]) {
                                best = i;
                            }
                        }
                    }
                    dx->data[best] += g[c];
                }
            }
        }
    }
    dx->scale = dy->scale;
    return OCTO_OK;
}
