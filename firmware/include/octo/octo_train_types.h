/*
 * octo_train_types.h - types and helpers shared by the training kernels
 * (FP32 reference and INT8 "Octo" kernels). Read octo_train.h first.
 */
#ifndef OCTO_TRAIN_TYPES_H
#define OCTO_TRAIN_TYPES_H

#include <stddef.h>
#include <stdint.h>

#include "octo/octo_kernel_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Activation fused into a layer's forward pass (its backward is the separate
 * octo_train_act_*_bwd, which reads the saved forward output). */
typedef enum {
    OCTO_TRAIN_ACT_NONE = 0,
    OCTO_TRAIN_ACT_RELU = 1,  /* max(z, 0) */
    OCTO_TRAIN_ACT_RELU6 = 2  /* min(max(z, 0), 6) */
} octo_train_act_t;

/* Rounding of a requantization to int8. */
typedef enum {
    OCTO_TRAIN_ROUND_NEAREST = 0,   /* floor(v + 1/2): backward tensors */
    OCTO_TRAIN_ROUND_STOCHASTIC = 1 /* floor(v + u), u uniform in [0, 1) from the PRNG: forward activations */
} octo_train_round_t;

/* CONV_2D and DEPTHWISE_CONV_2D (depth multiplier 1). The padding on the
 * bottom/right follows from the output dims; octo_train_padding computes
 * TensorFlow's SAME/VALID output size and top/left padding. */
typedef struct {
    int32_t stride_h; /* vertical stride, >= 1 */
    int32_t stride_w; /* horizontal stride, >= 1 */
    int32_t pad_h;    /* rows of zero padding on top, >= 0 */
    int32_t pad_w;    /* columns of zero padding on the left, >= 0 */
    int32_t act;      /* octo_train_act_t fused into the forward pass */
} octo_train_conv_params_t;

/* FULLY_CONNECTED. */
typedef struct {
    int32_t act; /* octo_train_act_t fused into the forward pass */
} octo_train_fully_connected_params_t;

/* MAX_POOL_2D and AVERAGE_POOL_2D. Padding taps are skipped (not counted in
 * the average), as TensorFlow does. */
typedef struct {
    int32_t stride_h; /* vertical stride, >= 1 */
    int32_t stride_w; /* horizontal stride, >= 1 */
    int32_t pad_h;    /* rows of padding on top, >= 0 */
    int32_t pad_w;    /* columns of padding on the left, >= 0 */
    int32_t filter_h; /* window height, >= 1 */
    int32_t filter_w; /* window width, >= 1 */
} octo_train_pool_params_t;

/* INT8 tensor with a per-tensor scale: real value = data[i] * scale.
 * The quantizers produce data in [-127, 127] (symmetric, no zero point). */
typedef struct {
    int8_t *data;
    float scale; /* > 0 */
} octo_train_q8_t;

/* INT32 accumulators with a scale: real value = data[i] * scale. */
typedef struct {
    int32_t *data;
    float scale; /* > 0 */
} octo_train_q32_t;

/* xorshift32 PRNG (Marsaglia, shifts 13/17/5) for stochastic rounding. The
 * caller owns the state; seed it with octo_train_prng_seed. */
typedef struct {
    uint32_t state; /* never 0 */
} octo_train_prng_t;

/* Every int32 sum in the INT8 kernels adds at most this many int8 x int8
 * products (each |p| <= 2^14) plus a bias clamped to +-2^30, so it cannot
 * overflow; a kernel whose reduction would be longer returns OCTO_E_ARG. The
 * reduction length is kh*kw*in_c (conv forward), kh*kw*out_c (conv input
 * gradient), the input depth (FC forward), out_c (FC input gradient), and
 * batch*out_h*out_w (conv/depthwise weight gradient) or batch (FC weight gradient). */
#define OCTO_TRAIN_S8_MAX_TERMS 65535

/* TensorFlow's padding: out = ceil(in / stride) (SAME) or
 * ceil((in - k + 1) / stride) (VALID); SAME pads max((out-1)*stride + k - in, 0)
 * in total, the smaller half before. OCTO_E_ARG if in, k or stride < 1 or the
 * VALID output would be empty. */
int octo_train_padding(int32_t in, int32_t k, int32_t stride, int same, int32_t *out,
                       int32_t *pad_before) OCTO_CHECK_RESULT;

/* --- PRNG -------------------------------------------------------------------------------------- */

/* state = fmix32(seed + 0x9E3779B9) (MurmurHash3's finalizer), 0x6D2B79F5 if that is 0. */
void octo_train_prng_seed(octo_train_prng_t *r, uint32_t seed);

/* Next 32-bit draw: x ^= x << 13; x ^= x >> 17; x ^= x << 5. */
static inline uint32_t octo_train_prng_next(octo_train_prng_t *r) {
    uint32_t x = r->state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    r->state = x;
    return x;
}

/* --- Quantization ------------------------------------------------------------------------------ */

/* max |x[i]| (0 for n == 0). */
float octo_train_absmax_f32(const float *x, int32_t n);
/* max |x[i]| as uint32 (|INT32_MIN| = 2^31 is representable). */
uint32_t octo_train_absmax_s32(const int32_t *x, int32_t n);

/* Float -> int8 with the dynamic scale max|x| / 127 (scale 1 for an all-zero
 * tensor). v = x * (127 / max|x|), rounded per `rounding`; stochastic
 * rounding takes one PRNG draw per element in index order (u = (draw >> 8) * 2^-24). */
int octo_train_quantize_s8(const float *x, int32_t n, int32_t rounding, octo_train_prng_t *prng,
                           octo_train_q8_t *out) OCTO_CHECK_RESULT;

/* The same with an explicit range (> 0): scale = range / 127, values beyond
 * +-range saturate to +-127. The hook for range clipping (PRC). */
int octo_train_quantize_s8_range(const float *x, int32_t n, float range, int32_t rounding, octo_train_prng_t *prng,
                                 octo_train_q8_t *out) OCTO_CHECK_RESULT;

/* INT32 accumulators -> int8 with the dynamic scale: m = max|acc|.
 *   m <= 127: the values are copied exactly, out->scale = acc->scale (no draws);
 *   otherwise  q = round(acc * 127 / m) in integer arithmetic (a 31-bit
 *              multiplier M = floor(127 * 2^s / m) and a shift s in [31, 55]),
 *              out->scale = acc->scale * m / 127; stochastic rounding adds one
 *              draw per element in index order (scaled to [0, 2^s)) before the shift.
 * out->data may be (int8_t *)acc->data: the int8 result is compacted in place
 * over the accumulators (any other overlap is undefined). */
int octo_train_requant_s8(const octo_train_q32_t *acc, int32_t n, int32_t rounding, octo_train_prng_t *prng,
                          octo_train_q8_t *out) OCTO_CHECK_RESULT;

/* The same with an explicit range (>= 1) instead of max|acc|: accumulators are
 * first clamped to +-range (range clipping, PRC). */
int octo_train_requant_s8_range(const octo_train_q32_t *acc, int32_t n, uint32_t range, int32_t rounding,
                                octo_train_prng_t *prng, octo_train_q8_t *out) OCTO_CHECK_RESULT;

/* out[i] = q->data[i] * q->scale. */
int octo_train_dequantize_s8(const octo_train_q8_t *q, int32_t n, float *out) OCTO_CHECK_RESULT;

/* --- Deterministic math (no libm: the same bits on the host and every board) ------------------- */

/* e^x: Cody-Waite reduction by ln 2 and a degree-7 polynomial; relative error
 * below 2e-7; 0 below -87.3, +inf above 88.7. */
float octo_train_expf(float x);
/* ln x for x > 0 (denormals too): atanh series on the mantissa; error below
 * 2e-7 * max(1, |ln x|). -inf for 0, NaN below 0, +inf for +inf. */
float octo_train_logf(float x);

#ifdef __cplusplus
}
#endif

#endif /* OCTO_TRAIN_TYPES_H */
