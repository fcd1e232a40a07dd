/* octo_train_mse_s8.c - mean squared error on int8 outputs and int8 targets (each with its own scale);
 * dy int8, round to nearest, dynamic scale. Two passes over the values (range, then quantize) instead of
 * a float buffer. */
#include <string.h>

#include "octo_train_internal.h"

int octo_train_mse_s8(int32_t batch, int32_t elems, const octo_train_q8_t *y, const octo_train_q8_t *target,
                      float *loss, float *sample_loss, octo_train_q8_t *dy) {
    if (batch < 1 || elems < 1 || !octo_tr_q8_ok(y) || !octo_tr_q8_ok(target) || loss == NULL ||
        (dy != NULL && dy->data == NULL) || (int64_t)batch * elems > INT32_MAX) {
        return OCTO_E_ARG;
    }
    const float sy = y->scale, st = target->scale;
    const float inv_elems = 1.0f / (float)elems;
    float total = 0.0f, dmax = 0.0f;
    for (int32_t b = 0; b < batch; b++) {
        const int8_t *yb = &y->data[b * elems];
        const int8_t *tb = &target->data[b * elems];
        float sum = 0.0f;
        for (int32_t i = 0; i < elems; i++) {
            const float d = (float)yb[i] * sy - (float)tb[i] * st;
            const float a = d < 0.0f ? -d : d;
            dmax = a > dmax ? a : dmax;
            sum += d * d;
        }
        if (sample_loss != NULL) {
            sample_loss[b] = sum * inv_elems;
        }
        total += sum;
    }
    *loss = total * inv_elems / (float)batch;
    if (dy == NULL) {
        return OCTO_OK;
    }
    /* dy = 2 (y - t) / (batch * elems), quantized with scale max|dy| / 127: q = round(d * 127 / max|d|) */
    const float coef = 2.0f / ((float)batch * (float)elems);
    if (!(dmax > 0.0f)) {
        memset(dy->data, 0, (size_t)batch * (size_t)elems);
        dy->scale = 1.0f; /* all zero: any scale; 1 as octo_train_quantize_s8 */
        return OCTO_OK;
    }
    const float inv = 127.0f / dmax;
    for (int32_t b = 0; b < batch; b++) {
        const int8_t *yb = &y->data[b * elems];
        const int8_t *tb = &target->data[b * elems];
        for (int32_t i = 0; i < elems; i++) {
            const float d = (float)yb[i] * sy - (float)tb[i] * st;
            dy->data[b * elems + i] = octo_tr_q8_round(d * inv, 0.5f);
        }
    }
    dy->scale = dmax * coef / 127.0f;
    return OCTO_OK;
}
