/*
 * octo_train.h - on-device training kernels: FP32 reference (octo_train_f32.h)
 * and INT8 "Octo" (octo_train_s8.h, Zhou et al., USENIX ATC'21), forward and
 * backward. This header documents the conventions both follow.
 *
 * Layouts
 *   Activations NHWC (octo_dims_t {n,h,w,c}), batch N >= 1 everywhere.
 *   CONV_2D weights [OC,KH,KW,C] (w_dims {OC,KH,KW,C}, TFLite's OHWI);
 *   DEPTHWISE_CONV_2D (multiplier 1) [1,KH,KW,C]; FULLY_CONNECTED [O,D] with
 *   w_dims {O,1,1,D}, its input read flat as [N, D = H*W*C], output {N,1,1,O}.
 *   Weight gradients have the weights' layout, bias gradients [OC].
 *   Padding: explicit top/left (pad_h, pad_w); octo_train_padding gives
 *   TensorFlow's SAME/VALID sizes. Stride >= 1, dilation 1.
 *
 * A layer's passes
 *   fwd         y = act(op(x, w) + b); the activation (NONE/RELU/RELU6) is fused.
 *   act_bwd     dz = dy masked by the saved output y (0 < y, or 0 < y < 6):
 *               element-wise, may run in place; the layer backward takes dz,
 *               the gradient of the pre-activation output. INT8 offers a
 *               second form: a 1-bit mask taken from the int32 accumulators
 *               before requantization (octo_train_act_mask_s32), exact where
 *               the saved int8 output has rounded a small positive to 0.
 *   bwd_input   dx from dz and w (skip it for the first layer).
 *   bwd_weight  dw, db from dz and the saved input x (skip it for frozen layers).
 *   Saved from the forward pass: each layer's input x (also the previous
 *   layer's output y, which the activation backward reads), plus the 1-bit
 *   activation mask if that form is used - nothing else; MAX_POOL recomputes
 *   its argmax from x (first maximum in row-major window order wins).
 *   Gradient buffers are overwritten, never accumulated into.
 *
 * Loss and gradient averaging
 *   softmax_xent returns the mean loss over the batch, and dlogits =
 *   (softmax - onehot) / batch, the gradient of that mean; mse returns the mean
 *   over batch and elements, and dy = 2 (y - t) / (batch * elems). Every gradient
 *   downstream is therefore already averaged: weight gradients are plain sums
 *   over batch and positions, and an optimizer applies them with the learning
 *   rate as is.
 *
 * INT8 tensors and scales (octo_train_q8_t, octo_train_q32_t)
 *   real = data * scale, one float scale per tensor, symmetric, no zero point,
 *   int8 data in [-127, 127]. Dynamic scales are computed at run time from the
 *   tensor itself: octo_train_quantize_s8 (float -> int8, scale = max|x| / 127)
 *   and octo_train_requant_s8 (int32 -> int8, scale = acc_scale * max|acc| / 127,
 *   or an exact copy when max|acc| <= 127). The *_range variants take the range
 *   instead of the maximum (the hook for Parameterized Range Clipping).
 *   MAC kernels accumulate int8 x int8 products in int32 (SXTB16 + SMLAD, or
 *   SMLABB/SMLATT for depthwise, via octo_dsp.h: the DSP and portable paths are
 *   the same integer arithmetic, bit-identical) and return the accumulators
 *   with scale = product of the operand scales. Results:
 *     forward y       int32 -> requant_s8 with STOCHASTIC rounding -> saved int8
 *     input grad dx   int32 -> requant_s8 with round to NEAREST
 *     weight grad dw  int32 accumulators + scale (sx * sdy), for the optimizer
 *     bias grad db    int32 sums of dz + scale (sdy)
 *     MAX_POOL fwd    int8 with the input's scale (exact)
 *     AVG_POOL        int32 window sums weighted by 1/count (see octo_train_s8.h)
 *     softmax_xent    dlogits int8, round to nearest
 *     mse             dy int8, round to nearest
 *   Biases enter the INT8 forward as floats, rounded to the accumulator scale.
 *   The int32 sums cannot overflow (OCTO_TRAIN_S8_MAX_TERMS bounds them).
 *   The int32 buffer of a forward/backward result may double as its int8
 *   output (requant_s8 compacts in place), so a layer needs 4 bytes per output
 *   element of scratch while it runs, 1 byte per element once saved.
 *
 * Rounding and the PRNG
 *   Round to nearest = floor(v + 1/2). Stochastic = floor(v + u), u uniform in
 *   [0, 1), unbiased: E[q] = v. u comes from a xorshift32 generator whose state
 *   (octo_train_prng_t) the caller owns and seeds (octo_train_prng_seed), one
 *   draw per rounded element in index order, none when the copy is exact, so a
 *   run is reproducible from its seed and the same on every target.
 *
 * Determinism
 *   INT8 kernels are integer arithmetic apart from per-tensor scale
 *   bookkeeping; FP32 kernels use a fixed summation order and no libm
 *   (octo_train_expf / octo_train_logf), so with the ISO C default of no FMA
 *   contraction (-std=c99) the host build and the boards give the same bits:
 *   tests/c/train_dsp_check.c hashes every kernel's output on the host, on
 *   virtual-m4/m7 (DSP instructions, FPU) and virtual-m3 (portable C, soft
 *   float), and the hashes agree.
 *
 * Memory: no kernel allocates; scratch comes from the caller, sized by the
 * octo_train_*_scratch_size functions.
 */
#ifndef OCTO_TRAIN_H
#define OCTO_TRAIN_H

#include "octo/octo_train_types.h"
#include "octo/octo_train_f32.h"
#include "octo/octo_train_s8.h"

#endif /* OCTO_TRAIN_H */
