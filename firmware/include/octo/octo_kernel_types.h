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

#ifdef __cplusplus
}
#endif

#endif /* OCTO_KERNEL_TYPES_H */
