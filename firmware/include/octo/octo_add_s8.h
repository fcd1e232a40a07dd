/* octo_add_s8.h - ADD, INT8. */
#ifndef OCTO_ADD_S8_H
#define OCTO_ADD_S8_H

#include "octo/octo_kernel_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* declarations go here */

#ifdef __cplusplus
}
#endif

#endif /* OCTO_ADD_S8_H */
