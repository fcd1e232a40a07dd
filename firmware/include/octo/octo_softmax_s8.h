/* octo_softmax_s8.h - SOFTMAX, INT8 in, INT8 out (scale 1/256, zero point -128). */
#ifndef OCTO_SOFTMAX_S8_H
#define OCTO_SOFTMAX_S8_H

#include "octo/octo_kernel_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* TFLM's int8 softmax parameters (computed at conversion time from beta and the input scale). */
typedef struct {
    int32_t input_multiplier; /* Q0.31 significand of beta * input_scale * 2^26 */
    int32_t input_left_shift; /* its exponent, >= 0 */
    int32_t diff_min;         /* inputs further than this below the row max give exactly 0 */
} octo_softmax_params_t;

/* SOFTMAX over the last dimension: `rows` rows of `depth` values each. Bit-exact
 * with TFLM's reference kernel; a row whose sum of exponentials reaches 512
 * (depth >= 512 only), where TFLM aborts on a TFLITE_CHECK, comes out all -128
 * (the value of TFLM's formula continued). OCTO_E_ARG for bad arguments. */
int octo_softmax_s8(const octo_softmax_params_t *p, int32_t rows, int32_t depth, const int8_t *in,
                    int8_t *out) OCTO_CHECK_RESULT;

#ifdef __cplusplus
}
#endif

#endif /* OCTO_SOFTMAX_S8_H */
