/* octo_train_act_f32.c - ReLU / ReLU6 backward, FP32, from the saved forward output. */
#include "octo_train_internal.h"

int octo_train_act_f32_bwd(int32_t act, int32_t n, const float *y, const float *dy, float *dz) {
    if (!octo_tr_act_ok(act) || n < 0 || y == NULL || dy == NULL || dz == NULL) {
        return OCTO_E_ARG;
    }
    for (int32_t i = 0; i < n; i++) {
        const float v = y[i];
        const int pass = act == OCTO_TRAIN_ACT_NONE || (v > 0.0f && (act == OCTO_TRAIN_ACT_RELU || v < 6.0f));
        dz[i] = pass ? dy[i] : 0.0f;
    }
    return OCTO_OK;
}
