/* octo_fully_connected_s8.h - FULLY_CONNECTED, INT8. */
#ifndef OCTO_FULLY_CONNECTED_S8_H
#define OCTO_FULLY_CONNECTED_S8_H

#include "octo/octo_kernel_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* declarations go here */

#ifdef __cplusplus
}
#endif

#endif /* OCTO_FULLY_CONNECTED_S8_H */
