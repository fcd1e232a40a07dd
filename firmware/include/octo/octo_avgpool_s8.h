/* octo_avgpool_s8.h - AVERAGE_POOL_2D, INT8. */
#ifndef OCTO_AVGPOOL_S8_H
#define OCTO_AVGPOOL_S8_H

#include "octo/octo_kernel_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* declarations go here */

#ifdef __cplusplus
}
#endif

#endif /* OCTO_AVGPOOL_S8_H */
