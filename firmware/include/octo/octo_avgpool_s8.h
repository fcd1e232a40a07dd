/* octo_avgpool_s8.h - AVERAGE_POOL_2D, INT8. */
#ifndef OCTO_AVGPOOL_S8_H
#define OCTO_AVGPOOL_S8_H

#include "octo/octo_kernel_types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t stride_h; /* vertical stride */
    int32_t stride_w; /* horizontal stride */
    int32_t pad_h;    /* rows of padding on top (padding taps are skipped, not averaged) */
    int32_t pad_w;    /* columns of padding on the left */
    int32_t filter_h; /* window height */
    int32_t filter_w; /* window width */
    int32_t act_min;  /* fused activation clamp, int8 domain */
    int32_t act_max;
} octo_avgpool_params_t;

/* AVERAGE_POOL_2D. Input and output share quantization: the average of the
 * in-image window taps, rounded half away from zero, clamped. */
int octo_avgpool_s8(const octo_avgpool_params_t *p, const octo_dims_t *in_dims, const int8_t *in,
                    const octo_dims_t *out_dims, int8_t *out) OCTO_CHECK_RESULT;

#ifdef __cplusplus
}
#endif

#endif /* OCTO_AVGPOOL_S8_H */
