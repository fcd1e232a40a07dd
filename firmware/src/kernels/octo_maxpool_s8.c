/* octo_maxpool_s8.c - MAX_POOL_2D, INT8 (reference path). */
#include "octo/octo_maxpool_s8.h"
#include "octo/octo_qmath.h"

static int maxpool_check(const octo_pool_params_t *p, const octo_dims_t *in_dims, const int8_t *in,
                         const octo_dims_t *out_dims, const int8_t *out) {
    if (p == NULL || in_dims == NULL || in == NULL || out_dims == NULL || out == NULL) {
        return OCTO_E_ARG;
    }
    if (out_dims->c != in_dims->c || out_dims->n != in_dims->n || p->stride_h <= 0 || p->stride_w <= 0 ||
        p->filter_h <= 0 || p->filter_w <= 0) {
        return OCTO_E_ARG;
    }
    return OCTO_OK;
}

/* Every batch's output box [oy0, oy1) x [ox0, ox1), raster order. */
static void maxpool_box(const octo_pool_params_t *p, const octo_dims_t *in_dims, const int8_t *in,
                        const octo_dims_t *out_dims, int8_t *out, int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1) {
    const int32_t ch = in_dims->c;
    for (int32_t b = 0; b < out_dims->n; b++) {
        for (int32_t oy = oy0; oy < oy1; oy++) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            const int32_t fy0 = iy0 < 0 ? -iy0 : 0;
            const int32_t fy1 = in_dims->h - iy0 < p->filter_h ? in_dims->h - iy0 : p->filter_h;
            for (int32_t ox = ox0; ox < ox1; ox++) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                const int32_t fx0 = ix0 < 0 ? -ix0 : 0;
                const int32_t fx1 = in_dims->w - ix0 < p->filter_w ? in_dims->w - ix0 : p->filter_w;
                int8_t *o = &out[((b * out_dims->h + oy) * out_dims->w + ox) * ch];
                for (int32_t c = 0; c < ch; c++) {
                    int32_t m = INT8_MIN; /* an all-padding window yields -128 before the clamp, as TFLM */
                    for (int32_t fy = fy0; fy < fy1; fy++) {
                        const int8_t *row = &in[(b * in_dims->h + iy0 + fy) * in_dims->w * ch + c];
                        for (int32_t fx = fx0; fx < fx1; fx++) {
                            const int32_t v = row[(ix0 + fx) * ch];
                            m = v > m ? v : m;
                        }
                    }
                    o[c] = (int8_t)octo_clamp(m, p->act_min, p->act_max);
                }
            }
        }
    }
}

int octo_maxpool_s8(const octo_pool_params_t *p, const octo_dims_t *in_dims, const int8_t *in,
                    const octo_dims_t *out_dims, int8_t *out) {
    const int st = maxpool_check(p, in_dims, in, out_dims, out);
    if (st != OCTO_OK) {
        return st;
    }
    maxpool_box(p, in_dims, in, out_dims, out, 0, out_dims->h, 0, out_dims->w);
    return OCTO_OK;
}

int octo_maxpool_s8_box(const octo_pool_params_t *p, const octo_dims_t *in_dims, const int8_t *in,
                        const octo_dims_t *out_dims, int8_t *out, int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1) {
    const int st = maxpool_check(p, in_dims, in, out_dims, out);
    if (st != OCTO_OK) {
        return st;
    }
    if (oy0 < 0 || oy0 > oy1 || oy1 > out_dims->h || ox0 < 0 || ox0 > ox1 || ox1 > out_dims->w) {
        return OCTO_E_ARG;
    }
    maxpool_box(p, in_dims, in, out_dims, out, oy0, oy1, ox0, ox1);
    return OCTO_OK;
}
