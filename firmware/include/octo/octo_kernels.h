/*
 * octo_kernels.h - INT8 inference kernels (forward), TFLite semantics.
 *
 * Layout NHWC; filters [out_c, kh, kw, in_c] (CONV_2D), [1, kh, kw, out_c]
 * (DEPTHWISE_CONV_2D), [out, in] (FULLY_CONNECTED). Per-channel requantization
 * (multiplier, shift) as TFLite computes it. Every kernel is bit-exact with
 * TFLM's reference kernel for the same parameters; the portable C path and the
 * DSP path (__ARM_FEATURE_DSP) are bit-identical. Kernels never allocate;
 * those that need scratch take it from the caller (octo_<op>_get_buffer_size).
 * Returns OCTO_OK or OCTO_E_ARG (NULL pointers, inconsistent shapes).
 */
#ifndef OCTO_KERNELS_H
#define OCTO_KERNELS_H

#include "octo/octo_kernel_types.h"
#include "octo/octo_conv_s8.h"
#include "octo/octo_depthwise_conv_s8.h"
#include "octo/octo_fully_connected_s8.h"
#include "octo/octo_avgpool_s8.h"
#include "octo/octo_maxpool_s8.h"
#include "octo/octo_mean_s8.h"
#include "octo/octo_add_s8.h"
#include "octo/octo_pad_s8.h"
#include "octo/octo_softmax_s8.h"

#endif /* OCTO_KERNELS_H */
