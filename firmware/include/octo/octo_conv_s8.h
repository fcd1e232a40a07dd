/* octo_conv_s8.h - CONV_2D, INT8. */
#ifndef OCTO_CONV_S8_H
#define OCTO_CONV_S8_H

#include "octo/octo_kernel_types.h"

#ifdef __cplusplus
extern "C" {
#endif

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


/* CONV_2D with weights packed by the converter (converter/lower/conv.py).
 * Each output pixel's receptive field (kh*kw*in_c bytes, padding taps filled
 * with the input zero point) is gathered into `patch`, then dotted with
 *   wpack      int16[ceil(out_c/4)][L*4], L = octo_conv_s8_packed_patch_len():
 *              output channels in blocks of four (last block zero-padded); per
 *              group of four patch bytes, each channel's weights as
 *              [w0 w2 w1 w3] (SXTB16 lane order), 16 int16 per group
 *              With Helium (__ARM_FEATURE_MVE, OCTO_HAVE_MVE in octo_dsp.h) the converter emits instead
 *              int8[ceil(out_c/4)*4][L]: each channel's weights as one plain row (zero rows pad the
 *              last block), passed through the same pointer (converter/lower/conv.py, emit_wpack)
 *   bias_full  int32[out_c]: bias + input_offset * (sum of the channel's weights)
 * patch: caller scratch of octo_conv_s8_packed_patch_len() bytes.
 * Batch 1, dilation 1, groups 1. Bit-exact with octo_conv_s8. */
int octo_conv_s8_packed(const octo_conv_params_t *p, const octo_requant_t *q, const octo_dims_t *in_dims,
                        const int8_t *in, const octo_dims_t *filter_dims, const int16_t *wpack,
                        const int32_t *bias_full, int8_t *patch, const octo_dims_t *out_dims,
                        int8_t *out) OCTO_CHECK_RESULT;

/* octo_conv_s8_packed over the output box [oy0, oy1) x [ox0, ox1) only (half-open,
 * 0 <= oy0 <= oy1 <= out h, 0 <= ox0 <= ox1 <= out w, else OCTO_E_ARG; an empty box
 * writes nothing). Every other output byte is left untouched; the box's bytes equal
 * those the full call writes. For PASS (octo_pass.h), which recomputes dirty runs. */
int octo_conv_s8_packed_box(const octo_conv_params_t *p, const octo_requant_t *q, const octo_dims_t *in_dims,
                            const int8_t *in, const octo_dims_t *filter_dims, const int16_t *wpack,
                            const int32_t *bias_full, int8_t *patch, const octo_dims_t *out_dims, int8_t *out,
                            int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1) OCTO_CHECK_RESULT;

/* CONV_2D with the 1-byte packed layout (converter/lower/conv.py, pack8_rows), bit-exact with
 * octo_conv_s8_packed: L8 = octo_conv_s8_packed8_patch_len() (kh*kw*in_c rounded up to a multiple of 8),
 * P = out_c rounded up to a multiple of 4,
 *   wpack8     int8[P/B][L8/4][B][4], B = 2 output channels per block when out h*w > 1 (pixels are taken in
 *              pairs), else B = 4: per group of four patch bytes, each channel's four weights in patch order
 *              (zero for the channels past out_c). With Helium the converter emits instead the int8 rows of
 *              octo_conv_s8_packed.
 *   bias_full  int32[P]: as octo_conv_s8_packed, zeros past out_c.
 * scratch: 6 * L8 bytes when out h*w > 1, else 3 * L8; 4-byte aligned (the gathered patches, their int16
 * expansion). */
int octo_conv_s8_packed8(const octo_conv_params_t *p, const octo_requant_t *q, const octo_dims_t *in_dims,
                         const int8_t *in, const octo_dims_t *filter_dims, const int8_t *wpack8,
                         const int32_t *bias_full, int8_t *scratch, const octo_dims_t *out_dims,
                         int8_t *out) OCTO_CHECK_RESULT;

/* L8 of octo_conv_s8_packed8: kh*kw*in_c rounded up to a multiple of 8. */
static inline int32_t octo_conv_s8_packed8_patch_len(const octo_dims_t *filter_dims) {
    return (filter_dims->h * filter_dims->w * filter_dims->c + 7) & ~7;
}

/* Scratch bytes octo_conv_s8_packed needs: kh*kw*in_c rounded up to a multiple of 4. */
static inline int32_t octo_conv_s8_packed_patch_len(const octo_dims_t *filter_dims) {
    return (filter_dims->h * filter_dims->w * filter_dims->c + 3) & ~3;
}

#ifdef __cplusplus
}
#endif

#endif /* OCTO_CONV_S8_H */
