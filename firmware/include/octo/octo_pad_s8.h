/* octo_pad_s8.h - PAD / PADV2, INT8. */
#ifndef OCTO_PAD_S8_H
#define OCTO_PAD_S8_H

#include "octo/octo_kernel_types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t before[4]; /* elements added before the data, per dimension (n, h, w, c) */
    int32_t after[4];  /* elements added after the data, per dimension (n, h, w, c) */
    int32_t pad_value; /* int8 value written into the padding (raw, no requantization) */
} octo_pad_params_t;

/* PAD / PADV2: out = in surrounded by pad_value; out_dims must equal
 * in_dims + before + after in every dimension. Bytes are copied unchanged. */
int octo_pad_s8(const octo_pad_params_t *p, const octo_dims_t *in_dims, const int8_t *in,
                const octo_dims_t *out_dims, int8_t *out) OCTO_CHECK_RESULT;

#ifdef __cplusplus
}
#endif

#endif /* OCTO_PAD_S8_H */
