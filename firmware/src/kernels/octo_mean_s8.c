/* octo_mean_s8.c - MEAN over H and W (global average pool), INT8 (reference path). */
#include "octo/octo_mean_s8.h"
#include "octo/octo_qmath.h"

int octo_mean_s8(const octo_mean_params_t *p, const octo_dims_t *in_dims, const int8_t *in,
                 const octo_dims_t *out_dims, int8_t *out) {
    if (p == NULL || in_dims == NULL || in == NULL || out_dims == NULL || out == NULL) {
        return OCTO_E_ARG;
    }
    const int32_t ch = in_dims->c;
    const int32_t hw = in_dims->h * in_dims->w;
    if (out_dims->n != in_dims->n || out_dims->c != ch || out_dims->h != 1 || out_dims->w != 1 || p->shift < -31) {
        return OCTO_E_ARG;
    }
    for (int32_t b = 0; b < in_dims->n; b++) {
        const int8_t *ib = &in[b * hw * ch];
        for (int32_t c = 0; c < ch; c++) {
            int32_t acc = 0;
            for (int32_t i = 0; i < hw; i++) {
                acc += (int32_t)ib[i * ch + c] + p->input_offset;
            }
            /* the 1/(h*w) is folded into the multiplier at conversion time */
            acc = octo_requantize(acc, p->multiplier, p->shift) + p->output_offset;
            out[b * ch + c] = (int8_t)octo_clamp(acc, INT8_MIN, INT8_MAX);
        }
    }
    return OCTO_OK;
}
