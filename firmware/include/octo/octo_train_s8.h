/*
 * octo_train_s8.h - INT8 training kernels ("Octo"): the API of octo_train_f32.h
 * with int8 operands carrying per-tensor scales (octo_train_q8_t) and int32
 * results carrying the product scale (octo_train_q32_t). Conventions, scales
 * and rounding in octo_train.h.
 *
 * The MAC kernels (conv, depthwise, FC) write raw int32 accumulators; the
 * caller turns activations and input gradients into int8 with
 * octo_train_requant_s8 (stochastic rounding for forward outputs, round to
 * nearest for gradients), which can work in place over the accumulators.
 * Weight and bias gradients stay int32 for the optimizer.
 *
 * Operands are expected in [-127, 127] (what the quantizers produce); every
 * scale must be > 0. Kernels needing scratch take a 4-byte aligned caller
 * buffer of octo_train_*_scratch_size() bytes (0 = none, pass NULL).
 * Returns OCTO_OK, or OCTO_E_ARG (NULL pointer, bad shape or parameter, a
 * scale <= 0, misaligned scratch, a reduction longer than OCTO_TRAIN_S8_MAX_TERMS).
 */
#ifndef OCTO_TRAIN_S8_H
#define OCTO_TRAIN_S8_H

#include "octo/octo_train_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --- CONV_2D: layouts as octo_train_conv_f32_* ---------------------------------------------- */

/* y->data [N,OH,OW,OC] = act(conv(x, w) + bias / (sx*sw)), y->scale = sx*sw.
 * bias [OC] float or NULL, rounded to the accumulator scale (clamped to +-2^30);
 * ReLU6 clamps at round(6 / (sx*sw)). Scratch (OC4 = OC, K4 = KH*KW*C and R4 =
 * KW*C rounded up to 4): the larger of the pixel path's 4*OC4 + 9*K4 + P*K4
 * (bias sums, four receptive fields as int16 and one as int8, P = min(OC4,
 * max(4, 2048/K4 rounded down to 4)) zero-padded weight rows) and, for kernels
 * larger than 1x1 with R4 == KW*C, the segment path's 8*OC4 + B*KH*R4*8 + KH*R4
 * (bias and block sums, B = min(OC4/4, max(1, 8192/(8*KH*R4))) blocks of four
 * output channels expanded to int16, zero-padded kernel rows). */
int octo_train_conv_s8_fwd(const octo_train_conv_params_t *p, const octo_dims_t *in_dims, const octo_train_q8_t *x,
                           const octo_dims_t *w_dims, const octo_train_q8_t *w, const float *bias, void *scratch,
                           const octo_dims_t *out_dims, octo_train_q32_t *y) OCTO_CHECK_RESULT;
size_t octo_train_conv_s8_fwd_scratch_size(const octo_dims_t *w_dims);

/* dx->data [N,H,W,C] = input gradient, dx->scale = sdy*sw. Scratch (C4 = C and
 * OC4 = OC rounded up to 4): B blocks of four input channels of the transposed
 * weights expanded to int16, their sums, a padded dy row and 2048 bytes of dy
 * expanded to int16 (used when a call's dy fits): B*(8*KH*KW*OC4 + 16) + OC4 +
 * 2048 with B = min(C4/4, max(1, 8192/(8*KH*KW*OC4))); when OC % 4 != 0 and
 * KH*KW > 1 at least T*KH*KW*OC (the int8 transpose of T = min(C, max(1,
 * 8192/(KH*KW*OC))) input channels). */
int octo_train_conv_s8_bwd_input(const octo_train_conv_params_t *p, const octo_dims_t *in_dims,
                                 const octo_dims_t *w_dims, const octo_train_q8_t *w, const octo_dims_t *out_dims,
                                 const octo_train_q8_t *dy, void *scratch, octo_train_q32_t *dx) OCTO_CHECK_RESULT;
size_t octo_train_conv_s8_bwd_input_scratch_size(const octo_dims_t *w_dims);

/* dw->data [OC,KH,KW,C] (scale sx*sdy) and db->data [OC] (scale sdy; db may be
 * NULL), summed over the batch. Scratch: eight receptive fields and eight dy
 * rows as int16, two receptive fields assembled at the image border:
 * 16*(KH*KW*C + OC) + 2*K4 bytes (K4 = KH*KW*C rounded up to 4). */
int octo_train_conv_s8_bwd_weight(const octo_train_conv_params_t *p, const octo_dims_t *in_dims,
                                  const octo_train_q8_t *x, const octo_dims_t *out_dims, const octo_train_q8_t *dy,
                                  const octo_dims_t *w_dims, void *scratch, octo_train_q32_t *dw,
                                  octo_train_q32_t *db) OCTO_CHECK_RESULT;
size_t octo_train_conv_s8_bwd_weight_scratch_size(const octo_dims_t *w_dims);

/* --- DEPTHWISE_CONV_2D, multiplier 1 (no scratch) --------------------------------------------- */

/* Layouts as octo_train_depthwise_conv_f32_*: x [N,H,W,C], w [1,KH,KW,C], y/dy [N,OH,OW,C];
 * y, dx, dw, db int32 as for CONV_2D. With C >= 4 and KH*KW <= 49, four
 * channels run per SIMD word with no bounds checks inside the image (about
 * 0.9 KB of stack for the tap table); maps of at most 16 pixels walk every
 * channel group of an output in one call instead (at most 0.5 KB of stack);
 * other shapes take plain loops, same bits. */

int octo_train_depthwise_conv_s8_fwd(const octo_train_conv_params_t *p, const octo_dims_t *in_dims,
                                     const octo_train_q8_t *x, const octo_dims_t *w_dims, const octo_train_q8_t *w,
                                     const float *bias, const octo_dims_t *out_dims,
                                     octo_train_q32_t *y) OCTO_CHECK_RESULT;
int octo_train_depthwise_conv_s8_bwd_input(const octo_train_conv_params_t *p, const octo_dims_t *in_dims,
                                           const octo_dims_t *w_dims, const octo_train_q8_t *w,
                                           const octo_dims_t *out_dims, const octo_train_q8_t *dy,
                                           octo_train_q32_t *dx) OCTO_CHECK_RESULT;
int octo_train_depthwise_conv_s8_bwd_weight(const octo_train_conv_params_t *p, const octo_dims_t *in_dims,
                                            const octo_train_q8_t *x, const octo_dims_t *out_dims,
                                            const octo_train_q8_t *dy, const octo_dims_t *w_dims, octo_train_q32_t *dw,
                                            octo_train_q32_t *db) OCTO_CHECK_RESULT;

/* --- FULLY_CONNECTED: layouts as octo_train_fully_connected_f32_* ------------------------------------------ */

int octo_train_fully_connected_s8_fwd(const octo_train_fully_connected_params_t *p, const octo_dims_t *in_dims,
                                      const octo_train_q8_t *x, const octo_dims_t *w_dims, const octo_train_q8_t *w,
                                      const float *bias, const octo_dims_t *out_dims,
                                      octo_train_q32_t *y) OCTO_CHECK_RESULT;
/* Scratch: the weights transposed to [D][O] (the size of w). */
int octo_train_fully_connected_s8_bwd_input(const octo_dims_t *in_dims, const octo_dims_t *w_dims,
                                            const octo_train_q8_t *w, const octo_dims_t *out_dims,
                                            const octo_train_q8_t *dy, void *scratch,
                                            octo_train_q32_t *dx) OCTO_CHECK_RESULT;
size_t octo_train_fully_connected_s8_bwd_input_scratch_size(const octo_dims_t *w_dims);
/* Scratch: eight input rows and eight dy rows as int16, 16*(D + O) bytes. */
int octo_train_fully_connected_s8_bwd_weight(const octo_dims_t *in_dims, const octo_train_q8_t *x,
                                             const octo_dims_t *out_dims, const octo_train_q8_t *dy,
                                             const octo_dims_t *w_dims, void *scratch, octo_train_q32_t *dw,
                                             octo_train_q32_t *db) OCTO_CHECK_RESULT;
size_t octo_train_fully_connected_s8_bwd_weight_scratch_size(const octo_dims_t *w_dims);

/* --- MAX_POOL_2D: y is int8 with x's scale (max commutes with quantization);
 * the backward routes dy to the first maximum of the saved int8 window (ties
 * are common in int8: the row-major first wins) and sums, dx->scale = sdy. ----------------------- */

int octo_train_maxpool_s8_fwd(const octo_train_pool_params_t *p, const octo_dims_t *in_dims,
                              const octo_train_q8_t *x, const octo_dims_t *out_dims,
                              octo_train_q8_t *y) OCTO_CHECK_RESULT;
int octo_train_maxpool_s8_bwd(const octo_train_pool_params_t *p, const octo_dims_t *in_dims,
                              const octo_train_q8_t *x, const octo_dims_t *out_dims, const octo_train_q8_t *dy,
                              octo_train_q32_t *dx) OCTO_CHECK_RESULT;

/* --- AVERAGE_POOL_2D: window sums weighted by 1/count. When every window has
 * the same in-image tap count c the weight is 1 and the scale s/c (exact);
 * otherwise each window's weight is round(2^16 / count) and the scale s/2^16.
 * The backward sums at most 255 windows per input (else OCTO_E_ARG). ---------------------------- */

int octo_train_avgpool_s8_fwd(const octo_train_pool_params_t *p, const octo_dims_t *in_dims,
                              const octo_train_q8_t *x, const octo_dims_t *out_dims,
                              octo_train_q32_t *y) OCTO_CHECK_RESULT;
int octo_train_avgpool_s8_bwd(const octo_train_pool_params_t *p, const octo_dims_t *in_dims,
                              const octo_dims_t *out_dims, const octo_train_q8_t *dy,
                              octo_train_q32_t *dx) OCTO_CHECK_RESULT;

/* --- ADD (residual shortcuts): y = a + b over n values as int32 with one scale, each input weighted by
 * its scale in 2^-14 units of the larger one (relative error <= 2^-15). The activation and rounding to
 * int8 are the engine's, as for the other layers. The input gradient of each input is dy itself. --- */

int octo_train_add_s8_fwd(int32_t n, const octo_train_q8_t *a, const octo_train_q8_t *b,
                          octo_train_q32_t *y) OCTO_CHECK_RESULT;

/* --- ReLU / ReLU6 backward from the saved int8 output y: dz = dy where
 * y > 0 (ReLU) or 0 < y and y * sy < 6 - sy/2 (ReLU6: an output within half a
 * step of 6 counts as clipped), else 0. dz->scale = dy->scale; dz->data may be
 * dy->data (in place). ------------------------------------------------------------------------- */

int octo_train_act_s8_bwd(int32_t act, int32_t n, const octo_train_q8_t *y, const octo_train_q8_t *dy,
                          octo_train_q8_t *dz) OCTO_CHECK_RESULT;

/* The exact alternative (what the straight-through estimator asks for): a
 * 1-bit mask per element taken from the forward int32 accumulators before they
 * are requantized (acc > 0, and for ReLU6 acc < the clamp), so outputs that
 * round to 0 (or to the top step) keep their gradient. Costs n/8 bytes saved
 * per activation; measured effect in tests/python/test_train_kernels.py.
 *   mask: ceil(n/8) bytes, bit i%8 of byte i/8 = element i passes. */
int octo_train_act_mask_s32(int32_t act, int32_t n, const octo_train_q32_t *acc, uint8_t *mask) OCTO_CHECK_RESULT;
/* dz = dy where the mask bit is set, else 0; dz->scale = dy->scale; dz->data may be dy->data. */
int octo_train_act_s8_bwd_mask(int32_t n, const uint8_t *mask, const octo_train_q8_t *dy,
                               octo_train_q8_t *dz) OCTO_CHECK_RESULT;

/* --- Softmax cross-entropy on int8 logits (dequantized, then the FP32 formula
 * with octo_train_expf): *loss as octo_train_softmax_xent_f32; dlogits
 * quantized round-to-nearest with the dynamic scale max|d| / 127 (d = the FP32
 * dlogits, 1/batch included), or NULL. No scratch: the softmax is computed twice. -------------- */

int octo_train_softmax_xent_s8(int32_t batch, int32_t classes, const octo_train_q8_t *logits,
                               const int32_t *labels, float *loss, octo_train_q8_t *dlogits) OCTO_CHECK_RESULT;

/* --- Mean squared error on int8 outputs y against int8 targets (dequantized with their own scales, then
 * the FP32 formula): *loss and sample_loss (optional, [batch]) as octo_train_mse_f32; dy quantized
 * round-to-nearest with the dynamic scale max|dy| / 127 (dy = 2 (y - t) / (batch * elems)), or NULL.
 * dy must not overlap y or target (they are read twice: range, then quantization). ----------------- */

int octo_train_mse_s8(int32_t batch, int32_t elems, const octo_train_q8_t *y, const octo_train_q8_t *target,
                      float *loss, float *sample_loss, octo_train_q8_t *dy) OCTO_CHECK_RESULT;

#ifdef __cplusplus
}
#endif

#endif /* OCTO_TRAIN_S8_H */
