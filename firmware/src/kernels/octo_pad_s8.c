/* octo_pad_s8.c - PAD / PADV2, INT8, up to 4-D (TFLM's reference Pad: raw bytes, constant fill). */
#include <string.h>

#include "octo/octo_pad_s8.h"

int octo_pad_s8(const octo_pad_params_t *p, const octo_dims_t *in_dims, const int8_t *in,
                const octo_dims_t *out_dims, int8_t *out) {
    if (p == NULL || in_dims == NULL || in == NULL || out_dims == NULL || out == NULL) {
        return OCTO_E_ARG;
    }
    const int32_t in_d[4] = {in_dims->n, in_dims->h, in_dims->w, in_dims->c};
    const int32_t out_d[4] = {out_dims->n, out_dims->h, out_dims->w, out_dims->c};
    for (int i = 0; i < 4; i++) {
        if (p->before[i] < 0 || p->after[i] < 0 || in_d[i] < 0 || out_d[i] != in_d[i] + p->before[i] + p->after[i]) {
            return OCTO_E_ARG;
        }
    }
    if (p->pad_value < -128 || p->pad_value > 127) {
        return OCTO_E_ARG;
    }
    const int8_t fill = (int8_t)p->pad_value;
    const int32_t oc = out_d[3];
    const int32_t ic = in_d[3];
    const int32_t c0 = p->before[3];
    const int32_t c1 = p->after[3];
    int8_t *o = out;
    for (int32_t b = 0; b < out_d[0]; b++) {
        const int32_t ib = b - p->before[0];
        for (int32_t y = 0; y < out_d[1]; y++) {
            const int32_t iy = y - p->before[1];
            for (int32_t x = 0; x < out_d[2]; x++) {
                const int32_t ix = x - p->before[2];
                if (ib < 0 || ib >= in_d[0] || iy < 0 || iy >= in_d[1] || ix < 0 || ix >= in_d[2]) {
                    memset(o, fill, (size_t)oc);
                } else {
                    memset(o, fill, (size_t)c0);
                    memcpy(o + c0, &in[((ib * in_d[1] + iy) * in_d[2] + ix) * ic], (size_t)ic);
                    memset(o + c0 + ic, fill, (size_t)c1);
                }
                o += oc;
            }
        }
    }
    return OCTO_OK;
}
