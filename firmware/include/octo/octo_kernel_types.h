/*
 * octo_kernel_types.h - types shared by the INT8 kernels (see octo_kernels.h).
 */
#ifndef OCTO_KERNEL_TYPES_H
#define OCTO_KERNEL_TYPES_H

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
    const int32_t *merged;     /* optional [channels][3] {k_lo, k_hi, e-1} for octo_requantize_merged
                                * (every shift <= -1), made by the converter; NULL = compute */
} octo_requant_t;

/* AVERAGE_POOL_2D and MAX_POOL_2D (no requantization: input and output share it). */
typedef struct {
    int32_t stride_h; /* vertical stride */
    int32_t stride_w; /* horizontal stride */
    int32_t pad_h;    /* rows of padding on top (padding taps are skipped) */
    int32_t pad_w;    /* columns of padding on the left */
    int32_t filter_h; /* window height */
    int32_t filter_w; /* window width */
    int32_t act_min;  /* fused activation clamp, int8 domain */
    int32_t act_max;
} octo_pool_params_t;

#ifdef __cplusplus
}
#endif

#endif /* OCTO_KERNEL_TYPES_H */
