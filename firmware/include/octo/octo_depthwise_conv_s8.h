/* octo_depthwise_conv_s8.h - DEPTHWISE_CONV_2D, INT8. */
#ifndef OCTO_DEPTHWISE_CONV_S8_H
#define OCTO_DEPTHWISE_CONV_S8_H

#include "octo/octo_kernel_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* declarations go here */

#ifdef __cplusplus
}
#endif

#endif /* OCTO_DEPTHWISE_CONV_S8_H */
