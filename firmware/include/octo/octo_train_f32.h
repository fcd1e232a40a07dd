/*
 * octo_train_f32.h - FP32 training kernels: forward and backward of CONV_2D,
 * DEPTHWISE_CONV_2D (multiplier 1), FULLY_CONNECTED, MAX/AVERAGE_POOL_2D,
 * ReLU/ReLU6, softmax cross-entropy and mean squared error. The ground truth for the INT8 kernels
 * and the FP32-training baseline. Conventions in octo_train.h.
 *
 * Every function returns OCTO_OK, or OCTO_E_ARG for a NULL pointer, a
 * non-positive dimension, inconsistent shapes or a bad parameter.
 */
#ifndef OCTO_TRAIN_F32_H
#define OCTO_TRAIN_F32_H

#include "octo/octo_train_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --- CONV_2D: x [N,H,W,C], w [OC,KH,KW,C] (w_dims {OC,KH,KW,C}), y [N,OH,OW,OC] ------------------- */

/* y = act(conv(x, w) + bias); bias [OC] or NULL. */
int octo_train_conv_f32_fwd(const octo_train_conv_params_t *p, const octo_dims_t *in_dims, const float *x,
                            const octo_dims_t *w_dims, const float *w, const float *bias, const octo_dims_t *out_dims,
                            float *y) OCTO_CHECK_RESULT;
/* dx = dL/dx from dy = dL/d(pre-activation output) (p->act is ignored). */
int octo_train_conv_f32_bwd_input(const octo_train_conv_params_t *p, const octo_dims_t *in_dims,
                                  const octo_dims_t *w_dims, const float *w, const octo_dims_t *out_dims,
                                  const float *dy, float *dx) OCTO_CHECK_RESULT;
/* dw = dL/dw [OC,KH,KW,C], db = dL/dbias [OC] (db may be NULL), summed over the batch. */
int octo_train_conv_f32_bwd_weight(const octo_train_conv_params_t *p, const octo_dims_t *in_dims, const float *x,
                                   const octo_dims_t *out_dims, const float *dy, const octo_dims_t *w_dims, float *dw,
                                   float *db) OCTO_CHECK_RESULT;

/* --- DEPTHWISE_CONV_2D, multiplier 1: w [1,KH,KW,C], y [N,OH,OW,C] ----------------------------- */

int octo_train_depthwise_conv_f32_fwd(const octo_train_conv_params_t *p, const octo_dims_t *in_dims, const float *x,
                                      const octo_dims_t *w_dims, const float *w, const float *bias,
                                      const octo_dims_t *out_dims, float *y) OCTO_CHECK_RESULT;
int octo_train_depthwise_conv_f32_bwd_input(const octo_train_conv_params_t *p, const octo_dims_t *in_dims,
                                            const octo_dims_t *w_dims, const float *w, const octo_dims_t *out_dims,
                                            const float *dy, float *dx) OCTO_CHECK_RESULT;
int octo_train_depthwise_conv_f32_bwd_weight(const octo_train_conv_params_t *p, const octo_dims_t *in_dims,
                                             const float *x, const octo_dims_t *out_dims, const float *dy,
                                             const octo_dims_t *w_dims, float *dw, float *db) OCTO_CHECK_RESULT;

/* --- FULLY_CONNECTED: x [N, D] with D = H*W*C of in_dims (read flat), w [O, D]
 * (w_dims {O,1,1,D}), y [N, O] (out_dims {N,1,1,O}) ----------------------------------------------- */

int octo_train_fully_connected_f32_fwd(const octo_train_fully_connected_params_t *p, const octo_dims_t *in_dims,
                                       const float *x, const octo_dims_t *w_dims, const float *w, const float *bias,
                                       const octo_dims_t *out_dims, float *y) OCTO_CHECK_RESULT;
int octo_train_fully_connected_f32_bwd_input(const octo_dims_t *in_dims, const octo_dims_t *w_dims, const float *w,
                                             const octo_dims_t *out_dims, const float *dy, float *dx) OCTO_CHECK_RESULT;
int octo_train_fully_connected_f32_bwd_weight(const octo_dims_t *in_dims, const float *x, const octo_dims_t *out_dims,
                                              const float *dy, const octo_dims_t *w_dims, float *dw,
                                              float *db) OCTO_CHECK_RESULT;

/* --- MAX_POOL_2D: the backward routes each dy to the first maximum of its
 * window (row-major scan), recomputed from the saved input x ------------------------------------ */

int octo_train_maxpool_f32_fwd(const octo_train_pool_params_t *p, const octo_dims_t *in_dims, const float *x,
                               const octo_dims_t *out_dims, float *y) OCTO_CHECK_RESULT;
int octo_train_maxpool_f32_bwd(const octo_train_pool_params_t *p, const octo_dims_t *in_dims, const float *x,
                               const octo_dims_t *out_dims, const float *dy, float *dx) OCTO_CHECK_RESULT;

/* --- AVERAGE_POOL_2D: the average of the in-image taps --------------------------------------- */

int octo_train_avgpool_f32_fwd(const octo_train_pool_params_t *p, const octo_dims_t *in_dims, const float *x,
                               const octo_dims_t *out_dims, float *y) OCTO_CHECK_RESULT;
int octo_train_avgpool_f32_bwd(const octo_train_pool_params_t *p, const octo_dims_t *in_dims,
                               const octo_dims_t *out_dims, const float *dy, float *dx) OCTO_CHECK_RESULT;

/* --- ADD (residual shortcuts): y = act(a + b) over n values (OCTO_TRAIN_ACT_*); y may be a or b. The
 * input gradient of each input is dy masked by the activation. ---------------------------------- */

int octo_train_add_f32_fwd(int32_t act, int32_t n, const float *a, const float *b, float *y) OCTO_CHECK_RESULT;

/* --- ReLU / ReLU6 backward from the saved forward output y:
 *   dz = dy where 0 < y (ReLU) or 0 < y < 6 (ReLU6), else 0; dy for NONE.
 * dz may be dy (in place). --------------------------------------------------------------------- */

int octo_train_act_f32_bwd(int32_t act, int32_t n, const float *y, const float *dy, float *dz) OCTO_CHECK_RESULT;

/* --- Softmax cross-entropy with integer labels in [0, classes):
 *   *loss   = mean over the batch of -log softmax(logits)[label]
 *   dlogits = (softmax(logits) - onehot(label)) / batch   (the gradient of the
 *             mean loss; may be NULL when only the loss is wanted) ------------------------------- */

int octo_train_softmax_xent_f32(int32_t batch, int32_t classes, const float *logits, const int32_t *labels,
                                float *loss, float *dlogits) OCTO_CHECK_RESULT;

/* --- Mean squared error against float targets, batch x elems values each:
 *   *loss          = mean over the batch AND the elements of (y - target)^2
 *   sample_loss[b] = mean over sample b's elements of (y - target)^2 (its mean over b is *loss); may be NULL
 *   dy             = 2 (y - target) / (batch * elems)   (the gradient of *loss; may be NULL) ----------- */

int octo_train_mse_f32(int32_t batch, int32_t elems, const float *y, const float *target, float *loss,
                       float *sample_loss, float *dy) OCTO_CHECK_RESULT;

#ifdef __cplusplus
}
#endif

#endif /* OCTO_TRAIN_F32_H */
