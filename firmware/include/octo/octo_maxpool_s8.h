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

/* octo_maxpool_s8 over the output box [oy0, oy1) x [ox0, ox1) only (half-open,
 * 0 <= oy0 <= oy1 <= out h, 0 <= ox0 <= ox1 <= out w, else OCTO_E_ARG), every
 * batch; other output bytes are left untouched. For PASS (octo_pass.h). */
int octo_maxpool_s8_box(const octo_pool_params_t *p, const octo_dims_t *in_dims, const int8_t *in,
                        const octo_dims_t *out_dims, int8_t *out, int32_t oy0, int32_t oy1, int32_t ox0,
                        int32_t ox1) OCTO_CHECK_RESULT;

#ifdef __cplusplus
}
#endif

#endif /* OCTO_MAXPOOL_S8_H */
