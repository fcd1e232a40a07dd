/* octo_mean_s8.h - MEAN (average over H and W), INT8. */
#ifndef OCTO_MEAN_S8_H
#define OCTO_MEAN_S8_H

#include "octo/octo_kernel_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* declarations go here */

#ifdef __cplusplus
}
#endif

#endif /* OCTO_MEAN_S8_H */
