/* octo_mean_s8.h - MEAN (average over H and W), INT8. */
#ifndef OCTO_MEAN_S8_H
#define OCTO_MEAN_S8_H

#include "octo/octo_kernel_types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t input_offset;  /* minus the input zero point */
    int32_t output_offset; /* the output zero point */
    int32_t multiplier;    /* Q0.31 significand of in_scale / (out_scale * h * w), TFLM's folding */
    int32_t shift;         /* its exponent, > 0 = left shift (>= -31) */
} octo_mean_params_t;

/* MEAN over axes {1, 2} of an NHWC tensor: out[n][c] = clamp(requant(sum_hw (in + input_offset)) + output_offset).
 * out_dims: n and c as the input, h = w = 1 (keep_dims or not: same bytes). */
int octo_mean_s8(const octo_mean_params_t *p, const octo_dims_t *in_dims, const int8_t *in,
                 const octo_dims_t *out_dims, int8_t *out) OCTO_CHECK_RESULT;

#ifdef __cplusplus
}
#endif

#endif /* OCTO_MEAN_S8_H */
