/* octo_maxpool_s8.h - MAX_POOL_2D, INT8. */
#ifndef OCTO_MAXPOOL_S8_H
#define OCTO_MAXPOOL_S8_H

#include "octo/octo_kernel_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* declarations go here */

#ifdef __cplusplus
}
#endif

#endif /* OCTO_MAXPOOL_S8_H */
