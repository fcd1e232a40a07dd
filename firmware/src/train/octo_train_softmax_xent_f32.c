/* octo_train_softmax_xent_f32.c - softmax cross-entropy loss and its gradient, FP32. */
#include "octo_train_internal.h"

int octo_train_softmax_xent_f32(int32_t batch, int32_t classes, const float *logits, const int32_t *labels,
                                float *loss, float *dlogits) {
    if (batch < 1 || classes < 1 || logits == NULL || labels == NULL || loss == NULL) {
        return OCTO_E_ARG;
    }
    for (int32_t b = 0; b < batch; b++) {
        if (labels[b] < 0 || labels[b] >= classes) {
            return OCTO_E_ARG;
        }
    }
    const float inv_batch = 1.0f / (float)batch;
    float total = 0.0f;
    for (int32_t b = 0; b < batch; b++) {
        const float *z = &logits[b * classes];
        float m = z[0];
        for (int32_t k = 1; k < classes; k++) {
            m = z[k] > m ? z[k] : m;
        }
        float sum = 0.0f;
        for (int32_t k = 0; k < classes; k++) {
            sum += octo_train_expf(z[k] - m);
        }
        /* -log softmax[label] = log(sum) + m - z[label]; sum >= 1 */
        total += octo_train_logf(sum) + (m - z[labels[b]]);
        if (dlogits != NULL) {
            const float inv_sum = 1.0f / sum;
            float *d = &dlogits[b * classes];
            for (int32_t k = 0; k < classes; k++) {
                const float pk = octo_train_expf(z[k] - m) * inv_sum;
                d[k] = (pk - (k == labels[b] ? 1.0f : 0.0f)) * inv_batch;
            }
        }
    }
    *loss = total * inv_batch;
    return OCTO_OK;
}
