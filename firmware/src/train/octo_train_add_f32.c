/* octo_train_add_f32.c - ADD, FP32 training forward: y = act(a + b) (see octo_train_f32.h). */
#include "octo_train_internal.h"

int octo_train_add_f32_fwd(int32_t act, int32_t n, const float *a, const float *b, float *y) {
    if (n < 0 || a == NULL || b == NULL || y == NULL || act < OCTO_TRAIN_ACT_NONE || act > OCTO_TRAIN_ACT_RELU6) {
        return OCTO_E_ARG;
    }
    for (int32_t i = 0; i < n; i++) {
        float v = a[i] + b[i];
        if (act != OCTO_TRAIN_ACT_NONE) {
            v = v > 0.0f ? v : 0.0f;
            if (act == OCTO_TRAIN_ACT_RELU6) {
                v = v < 6.0f ? v : 6.0f;
            }
        }
        y[i] = v;
    }
    return OCTO_OK;
}
