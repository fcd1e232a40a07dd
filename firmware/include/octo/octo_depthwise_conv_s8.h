/* octo_depthwise_conv_s8.h - DEPTHWISE_CONV_2D, INT8. */
#ifndef OCTO_DEPTHWISE_CONV_S8_H
#define OCTO_DEPTHWISE_CONV_S8_H

#include "octo/octo_kernel_types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t input_offset;     /* minus the input zero point */
    int32_t output_offset;    /* the output zero point */
    int32_t depth_multiplier; /* output channels per input channel (out_c = in_c * depth_multiplier) */
    int32_t stride_h;         /* vertical stride */
    int32_t stride_w;         /* horizontal stride */
    int32_t pad_h;            /* rows of implicit zero padding on top */
    int32_t pad_w;            /* columns of implicit zero padding on the left */
    int32_t dilation_h;       /* vertical dilation (1 = none) */
    int32_t dilation_w;       /* horizontal dilation */
    int32_t act_min;          /* fused activation clamp, int8 domain */
    int32_t act_max;
} octo_dw_conv_params_t;

/* DEPTHWISE_CONV_2D. filter [1, kh, kw, out_c]; output channel oc reads input
 * channel oc / depth_multiplier; bias int32[out_c] or NULL; per-channel
 * requantization indexed by output channel. */
int octo_depthwise_conv_s8(const octo_dw_conv_params_t *p, const octo_requant_t *q, const octo_dims_t *in_dims,
                           const int8_t *in, const octo_dims_t *filter_dims, const int8_t *filter,
                           const int32_t *bias, const octo_dims_t *out_dims, int8_t *out) OCTO_CHECK_RESULT;

/* DEPTHWISE_CONV_2D, depth multiplier 1, the fast path (converter/lower/depthwise_conv.py):
 *   filter     int8[kh*kw][C], TFLite's order (1 byte per weight); C a multiple of 4
 *   bias_full  int32[C]: bias + input_offset * (sum of the channel's kh*kw weights)
 *   scratch    int16[kh*kw*C]: the weights widened once per call for the DSP/portable tap loops (unused with
 *              Helium, which reads the int8 weights directly)
 * Taps in the padding take their offset share back out (TFLM skips them).
 * Batch 1, dilation 1. Bit-exact with octo_depthwise_conv_s8. */
int octo_depthwise_conv_s8_packed(const octo_dw_conv_params_t *p, const octo_requant_t *q,
                                  const octo_dims_t *in_dims, const int8_t *in, const octo_dims_t *filter_dims,
                                  const int8_t *filter, const int32_t *bias_full, int16_t *scratch,
                                  const octo_dims_t *out_dims, int8_t *out) OCTO_CHECK_RESULT;

#ifdef __cplusplus
}
#endif

#endif /* OCTO_DEPTHWISE_CONV_S8_H */
