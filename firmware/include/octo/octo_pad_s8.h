/* octo_pad_s8.h - PAD / PADV2, INT8. */
#ifndef OCTO_PAD_S8_H
#define OCTO_PAD_S8_H

#include "octo/octo_kernel_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* declarations go here */

#ifdef __cplusplus
}
#endif

#endif /* OCTO_PAD_S8_H */
