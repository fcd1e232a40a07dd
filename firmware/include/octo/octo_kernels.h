/*
 * octo_kernels.h - INT8 inference kernels (forward), TFLite semantics.
 *
 * Layout NHWC; filters [out_c, kh, kw, in_c] (CONV_2D), [1, kh, kw, out_c]
 * (DEPTHWISE_CONV_2D), [out, in] (FULLY_CONNECTED). Per-channel requantization
 * (multiplier, shift) as TFLite computes it. Every kernel is bit-exact with
 * TFLM's reference kernel for the same parameters; the portable C path and the
 * DSP path (__ARM_FEATURE_DSP) are bit-identical. Kernels never allocate;
 * those that need scratch take it from the caller (octo_<op>_get_buffer_size).
 * Returns OCTO_OK or OCTO_E_ARG (NULL pointers, inconsistent shapes).
 */
#ifndef OCTO_KERNELS_H
#define OCTO_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "octo/octo_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t n; /* batch */
    int32_t h; /* height */
    int32_t w; /* width */
    int32_t c; /* channels */
} octo_dims_t;

/* Per-output-channel requantization. */
typedef struct {
    const int32_t *multiplier; /* Q0.31 significands */
    const int32_t *shift;      /* exponents, > 0 = left shift */
} octo_requant_t;

typedef struct {
    int32_t input_offset;  /* minus the input zero point */
    int32_t output_offset; /* the output zero point */
    int32_t stride_h;      /* vertical stride */
    int32_t stride_w;      /* horizontal stride */
    int32_t pad_h;         /* rows of implicit zero padding on top */
    int32_t pad_w;         /* columns of implicit zero padding on the left */
    int32_t dilation_h;    /* vertical dilation (1 = none) */
    int32_t dilation_w;    /* horizontal dilation */
    int32_t act_min;       /* fused activation clamp, int8 domain */
    int32_t act_max;
} octo_conv_params_t;

/* CONV_2D. filter [out_c, kh, kw, in_c/groups]; bias int32[out_c] or NULL. */
int octo_conv_s8(const octo_conv_params_t *p, const octo_requant_t *q, const octo_dims_t *in_dims,
                 const int8_t *in, const octo_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                 const octo_dims_t *out_dims, int8_t *out) OCTO_CHECK_RESULT;

#ifdef __cplusplus
}
#endif

#endif /* OCTO_KERNELS_H */
