/* octo_fully_connected_s8.h - FULLY_CONNECTED, INT8. */
#ifndef OCTO_FULLY_CONNECTED_S8_H
#define OCTO_FULLY_CONNECTED_S8_H

#include "octo/octo_kernel_types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t input_offset;  /* minus the input zero point */
    int32_t filter_offset; /* minus the filter zero point (0 unless legacy per-tensor asymmetric weights) */
    int32_t output_offset; /* the output zero point */
    int32_t act_min;       /* fused activation clamp, int8 domain */
    int32_t act_max;
    int32_t per_channel;   /* 1: requant arrays hold out_depth entries; 0: one entry for all outputs */
} octo_fc_params_t;

/* FULLY_CONNECTED: out[b][o] = requant(sum_d filter[o][d] * (in[b][d] + input_offset) + bias[o]).
 * in_dims:     n = batches, c = accum_depth (h = w = 1): the input of any rank, flattened.
 * filter_dims: n = out_depth, c = accum_depth (h = w = 1); filter is [out_depth, accum_depth].
 * out_dims:    n = batches, c = out_depth (h = w = 1).
 * bias int32[out_depth] or NULL. */
int octo_fully_connected_s8(const octo_fc_params_t *p, const octo_requant_t *q, const octo_dims_t *in_dims,
                            const int8_t *in, const octo_dims_t *filter_dims, const int8_t *filter,
                            const int32_t *bias, const octo_dims_t *out_dims, int8_t *out) OCTO_CHECK_RESULT;

#ifdef __cplusplus
}
#endif

#endif /* OCTO_FULLY_CONNECTED_S8_H */
