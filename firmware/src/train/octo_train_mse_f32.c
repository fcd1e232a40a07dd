/* octo_train_mse_f32.c - mean squared error loss and its gradient, FP32. */
#include "octo_train_internal.h"

int octo_train_mse_f32(int32_t batch, int32_t elems, const float *y, const float *target, float *loss,
                       float *sample_loss, float *dy) {
    if (batch < 1 || elems < 1 || y == NULL || target == NULL || loss == NULL ||
        (int64_t)batch * elems > INT32_MAX) {
        return OCTO_E_ARG;
    }
    const float inv_elems = 1.0f / (float)elems;
    const float coef = 2.0f / ((float)batch * (float)elems); /* d/dy of the mean over batch and elements */
    float total = 0.0f;
    for (int32_t b = 0; b < batch; b++) {
        const float *yb = &y[b * elems];
        const float *tb = &target[b * elems];
        float sum = 0.0f;
        for (int32_t i = 0; i < elems; i++) {
            const float d = yb[i] - tb[i];
            sum += d * d;
            if (dy != NULL) {
                dy[b * elems + i] = d * coef;
            }
        }
        if (sample_loss != NULL) {
            sample_loss[b] = sum * inv_elems;
        }
        total += sum;
    }
    *loss = total * inv_elems / (float)batch;
    return OCTO_OK;
}
