/* octo_avgpool_s8.c - AVERAGE_POOL_2D, INT8. Windows of up to 256 taps sum
 * four channels at a time in halfword lanes (SXTB16, SADD16); the rest, and
 * wider windows, one channel at a time. */
#include "octo/octo_avgpool_s8.h"
#include "octo/octo_dsp.h"
#include "octo/octo_qmath.h"

static int avgpool_check(const octo_pool_params_t *p, const octo_dims_t *in_dims, const int8_t *in,
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
static int avgpool_box(const octo_pool_params_t *p, const octo_dims_t *in_dims, const int8_t *in,
                       const octo_dims_t *out_dims, int8_t *out, int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1) {
    const int32_t ch = in_dims->c;
    for (int32_t b = 0; b < out_dims->n; b++) {
        for (int32_t oy = oy0; oy < oy1; oy++) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            /* the window clipped to the image: padding taps do not count */
            const int32_t fy0 = iy0 < 0 ? -iy0 : 0;
            const int32_t fy1 = in_dims->h - iy0 < p->filter_h ? in_dims->h - iy0 : p->filter_h;
            for (int32_t ox = ox0; ox < ox1; ox++) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                const int32_t fx0 = ix0 < 0 ? -ix0 : 0;
                const int32_t fx1 = in_dims->w - ix0 < p->filter_w ? in_dims->w - ix0 : p->filter_w;
                if (fy1 <= fy0 || fx1 <= fx0) {
                    return OCTO_E_ARG; /* a window entirely in the padding (TFLM fails too) */
                }
                const int32_t count = (fy1 - fy0) * (fx1 - fx0);
                int8_t *o = &out[((b * out_dims->h + oy) * out_dims->w + ox) * ch];
                int32_t c = 0;
                /* four channels per word, two halfword sums each (|sum| <= 128 * count <= 32768 fits) */
                for (; count <= 256 && c + 4 <= ch; c += 4) {
                    uint32_t s02 = 0, s13 = 0;
                    for (int32_t fy = fy0; fy < fy1; fy++) {
                        const int8_t *row = &in[(b * in_dims->h + iy0 + fy) * in_dims->w * ch + c];
                        for (int32_t fx = fx0; fx < fx1; fx++) {
                            const uint32_t x = octo_read_u32(&row[(ix0 + fx) * ch]);
                            s02 = octo_sadd16(s02, octo_sxtb16(x));
                            s13 = octo_sadd16(s13, octo_sxtb16_ror8(x));
                        }
                    }
                    const int32_t sums[4] = {(int16_t)(uint16_t)s02, (int16_t)(uint16_t)s13,
                                             (int16_t)(uint16_t)(s02 >> 16), (int16_t)(uint16_t)(s13 >> 16)};
                    for (int32_t j = 0; j < 4; j++) {
                        const int32_t acc = sums[j] > 0 ? (sums[j] + count / 2) / count : (sums[j] - count / 2) / count;
                        o[c + j] = (int8_t)octo_clamp(acc, p->act_min, p->act_max);
                    }
                }
                for (; c < ch; c++) {
                    int32_t acc = 0;
                    for (int32_t fy = fy0; fy < fy1; fy++) {
                        const int8_t *row = &in[(b * in_dims->h + iy0 + fy) * in_dims->w * ch + c];
                        for (int32_t fx = fx0; fx < fx1; fx++) {
                            acc += row[(ix0 + fx) * ch];
                        }
                    }
                    /* division rounding half away from zero (C division truncates toward zero) */
                    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    o[c] = (int8_t)octo_clamp(acc, p->act_min, p->act_max);
                }
            }
        }
    }
    return OCTO_OK;
}

int octo_avgpool_s8(const octo_pool_params_t *p, const octo_dims_t *in_dims, const int8_t *in,
                    const octo_dims_t *out_dims, int8_t *out) {
    const int st = avgpool_check(p, in_dims, in, out_dims, out);
    if (st != OCTO_OK) {
        return st;
    }
    return avgpool_box(p, in_dims, in, out_dims, out, 0, out_dims->h, 0, out_dims->w);
}

int octo_avgpool_s8_box(const octo_pool_params_t *p, const octo_dims_t *in_dims, const int8_t *in,
                        const octo_dims_t *out_dims, int8_t *out, int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1) {
    const int st = avgpool_check(p, in_dims, in, out_dims, out);
    if (st != OCTO_OK) {
        return st;
    }
    if (oy0 < 0 || oy0 > oy1 || oy1 > out_dims->h || ox0 < 0 || ox0 > ox1 || ox1 > out_dims->w) {
        return OCTO_E_ARG;
    }
    return avgpool_box(p, in_dims, in, out_dims, out, oy0, oy1, ox0, ox1);
}
