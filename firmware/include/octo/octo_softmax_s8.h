/* octo_softmax_s8.h - SOFTMAX, INT8. */
#ifndef OCTO_SOFTMAX_S8_H
#define OCTO_SOFTMAX_S8_H

#include "octo/octo_kernel_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* declarations go here */

#ifdef __cplusplus
}
#endif

#endif /* OCTO_SOFTMAX_S8_H */
