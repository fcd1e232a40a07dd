/* octo_add_s8.h - ADD, INT8. */
#ifndef OCTO_ADD_S8_H
#define OCTO_ADD_S8_H

#include "octo/octo_kernel_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Quantized-add parameters (TFLite's ArithmeticParams for int8 ADD). */
typedef struct {
    int32_t input1_offset;     /* minus input 1's zero point */
    int32_t input1_multiplier; /* Q0.31 rescale of input 1 onto the common scale */
    int32_t input1_shift;      /* its exponent, <= 0 (right shift) */
    int32_t input2_offset;     /* minus input 2's zero point */
    int32_t input2_multiplier; /* Q0.31 rescale of input 2 */
    int32_t input2_shift;      /* its exponent, <= 0 */
    int32_t left_shift;        /* headroom shift applied to both inputs first (20 for int8) */
    int32_t output_multiplier; /* Q0.31 rescale of the sum onto the output scale */
    int32_t output_shift;      /* its exponent, <= 0 */
    int32_t output_offset;     /* the output zero point */
    int32_t act_min;           /* fused activation clamp, int8 domain */
    int32_t act_max;
} octo_add_params_t;

/* ADD with numpy-style broadcasting over NHWC: every dimension of in1_dims and
 * in2_dims equals out_dims' or is 1. out must not overlap in1/in2 unless it is
 * the same buffer as a non-broadcast input. */
int octo_add_s8(const octo_add_params_t *p, const octo_dims_t *in1_dims, const int8_t *in1,
                const octo_dims_t *in2_dims, const int8_t *in2, const octo_dims_t *out_dims,
                int8_t *out) OCTO_CHECK_RESULT;

#ifdef __cplusplus
}
#endif

#endif /* OCTO_ADD_S8_H */
