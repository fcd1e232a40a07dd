/* octo_depthwise_conv_s8.c - DEPTHWISE_CONV_2D, INT8, per-channel requantization (reference path). */
#include "octo/octo_depthwise_conv_s8.h"
#include "octo/octo_qmath.h"

int octo_depthwise_conv_s8(const octo_dw_conv_params_t *p, const octo_requant_t *q, const octo_dims_t *in_dims,
                           const int8_t *in, const octo_dims_t *filter_dims, const int8_t *filter,
                           const int32_t *bias, const octo_dims_t *out_dims, int8_t *out) {
    if (p == NULL || q == NULL || in_dims == NULL || in == NULL || filter_dims == NULL || filter == NULL ||
        out_dims == NULL || out == NULL || q->multiplier == NULL || q->shift == NULL) {
        return OCTO_E_ARG;
    }
    const int32_t in_c = in_dims->c;
    const int32_t out_c = out_dims->c;
    const int32_t mult = p->depth_multiplier;
    if (mult <= 0 || out_c != in_c * mult || filter_dims->n != 1 || filter_dims->c != out_c ||
        in_dims->n != out_dims->n || p->stride_h <= 0 || p->stride_w <= 0 || p->dilation_h <= 0 ||
        p->dilation_w <= 0) {
        return OCTO_E_ARG;
    }
    const int32_t kh = filter_dims->h;
    const int32_t kw = filter_dims->w;
    for (int32_t b = 0; b < out_dims->n; b++) {
        for (int32_t oy = 0; oy < out_dims->h; oy++) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            for (int32_t ox = 0; ox < out_dims->w; ox++) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                int8_t *o = &out[((b * out_dims->h + oy) * out_dims->w + ox) * out_c];
                for (int32_t oc = 0; oc < out_c; oc++) {
                    const int32_t ic = oc / mult;
                    int32_t acc = 0;
                    for (int32_t fy = 0; fy < kh; fy++) {
                        const int32_t iy = iy0 + p->dilation_h * fy;
                        if (iy < 0 || iy >= in_dims->h) {
                            continue;
                        }
                        for (int32_t fx = 0; fx < kw; fx++) {
                            const int32_t ix = ix0 + p->dilation_w * fx;
                            if (ix < 0 || ix >= in_dims->w) {
                                continue;
                            }
                            const int32_t iv = in[((b * in_dims->h + iy) * in_dims->w + ix) * in_c + ic];
                            const int32_t fv = filter[(fy * kw + fx) * out_c + oc];
                            acc += fv * (iv + p->input_offset);
                        }
                    }
                    if (bias != NULL) {
                        acc += bias[oc];
                    }
                    acc = octo_requantize(acc, q->multiplier[oc], q->shift[oc]) + p->output_offset;
                    o[oc] = (int8_t)octo_clamp(acc, p->act_min, p->act_max);
                }
            }
        }
    }
    return OCTO_OK;
}
