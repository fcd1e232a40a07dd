/* octo_maxpool_s8.h - MAX_POOL_2D, INT8. */
#ifndef OCTO_MAXPOOL_S8_H
#define OCTO_MAXPOOL_S8_H

#include "octo/octo_kernel_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* MAX_POOL_2D. Input and output share quantization: the maximum of the
 * in-image window taps, clamped. */
int octo_maxpool_s8(const octo_pool_params_t *p, const octo_dims_t *in_dims, const int8_t *in,
                    const octo_dims_t *out_dims, int8_t *out) OCTO_CHECK_RESULT;

#ifdef __cplusplus
}
#endif

#endif /* OCTO_MAXPOOL_S8_H */
