/* octo_train_softmax_xent_s8.c - softmax cross-entropy on int8 logits; dlogits
 * int8, round to nearest, dynamic scale. The softmax is evaluated twice (once
 * for the range, once to quantize) instead of keeping a float buffer. */
#include "octo_train_internal.h"

/* Row b: the maximum logit and the sum of exp(z - max), logits dequantized. */
static float row_stats(const octo_train_q8_t *logits, int32_t classes, int32_t b, int32_t *zmax) {
    const int8_t *z = &logits->data[b * classes];
    int32_t m = z[0];
    for (int32_t k = 1; k < classes; k++) {
        m = z[k] > m ? z[k] : m;
    }
    float sum = 0.0f;
    for (int32_t k = 0; k < classes; k++) {
        sum += octo_train_expf((float)(z[k] - m) * logits->scale);
    }
    *zmax = m;
    return sum;
}

/* (softmax - onehot) / batch for one element */
static float grad(const octo_train_q8_t *logits, int32_t classes, int32_t b, int32_t k, int32_t label, int32_t zmax,
                  float inv_sum, float inv_batch) {
    const float pk = octo_train_expf((float)(logits->data[b * classes + k] - zmax) * logits->scale) * inv_sum;
    return (pk - (k == label ? 1.0f : 0.0f)) * inv_batch;
}

int octo_train_softmax_xent_s8(int32_t batch, int32_t classes, const octo_train_q8_t *logits,
                               const int32_t *labels, float *loss, octo_train_q8_t *dlogits) {
    if (batch < 1 || classes < 1 || !octo_tr_q8_ok(logits) || labels == NULL || loss == NULL ||
        (dlogits != NULL && dlogits->data == NULL)) {
        return OCTO_E_ARG;
    }
    for (int32_t b = 0; b < batch; b++) {
        if (labels[b] < 0 || labels[b] >= classes) {
            return OCTO_E_ARG;
        }
    }
    const float inv_batch = 1.0f / (float)batch;
    float total = 0.0f, range = 0.0f;
    for (int32_t b = 0; b < batch; b++) {
        int32_t m;
        const float sum = row_stats(logits, classes, b, &m);
        total += octo_train_logf(sum) + (float)(m - logits->data[b * classes + labels[b]]) * logits->scale;
        if (dlogits != NULL) {
            const float inv_sum = 1.0f / sum;
            for (int32_t k = 0; k < classes; k++) {
                float d = grad(logits, classes, b, k, labels[b], m, inv_sum, inv_batch);
                d = d < 0.0f ? -d : d;
                range = d > range ? d : range;
            }
        }
    }
    *loss = total * inv_batch;
    if (dlogits == NULL) {
        return OCTO_OK;
    }
    if (!(range > 0.0f)) {
        range = 127.0f; /* all zero: any scale; 1 as octo_train_quantize_s8 */
    }
    const float inv = 127.0f / range;
    for (int32_t b = 0; b < batch; b++) {
        int32_t m;
        const float inv_sum = 1.0f / row_stats(logits, classes, b, &m);
        for (int32_t k = 0; k < classes; k++) {
            const float d = grad(logits, classes, b, k, labels[b], m, inv_sum, inv_batch);
            dlogits->data[b * classes + k] = octo_tr_q8_round(d * inv, 0.5f);
        }
    }
    dlogits->scale = range / 127.0f;
    return OCTO_OK;
}
