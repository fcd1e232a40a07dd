/* octo_train_act_s8.c - ReLU / ReLU6 backward, INT8, from the saved int8 forward output. */
#include "octo_train_internal.h"

int octo_train_act_s8_bwd(int32_t act, int32_t n, const octo_train_q8_t *y, const octo_train_q8_t *dy,
                          octo_train_q8_t *dz) {
    if (!octo_tr_act_ok(act) || n < 0 || !octo_tr_q8_ok(y) || !octo_tr_q8_ok(dy) || dz == NULL || dz->data == NULL) {
        return OCTO_E_ARG;
    }
    /* ReLU6: y counts as clipped when y*sy >= 6 - sy/2, i.e. y >= lim = ceil(6/sy - 1/2) */
    int32_t lim = 128;
    if (act == OCTO_TRAIN_ACT_RELU6) {
        const float t = 6.0f / y->scale - 0.5f;
        if (t < 128.0f) {
            const int32_t f = octo_tr_floor(t);
            lim = (float)f == t ? f : f + 1;
        }
    }
    for (int32_t i = 0; i < n; i++) {
        const int32_t v = y->data[i];
        const int pass = act == OCTO_TRAIN_ACT_NONE || (v > 0 && v < lim);
        dz->data[i] = pass ? dy->data[i] : 0;
    }
    dz->scale = dy->scale;
    return OCTO_OK;
}

int octo_train_act_mask_s32(int32_t act, int32_t n, const octo_train_q32_t *acc, uint8_t *mask) {
    if (!octo_tr_act_ok(act) || n < 0 || acc == NULL || acc->data == NULL || !octo_tr_scale_ok(acc->scale) ||
        mask == NULL) {
        return OCTO_E_ARG;
    }
    /* the MAC kernels clamped ReLU6 outputs at exactly `six`, so six itself means clipped */
    const int32_t six = act == OCTO_TRAIN_ACT_RELU6 ? octo_tr_six(acc->scale) : INT32_MAX;
    for (int32_t i = 0; i < n; i += 8) {
        uint32_t bits = 0;
        const int32_t m = octo_tr_min(8, n - i);
        for (int32_t j = 0; j < m; j++) {
            const int32_t v = acc->data[i + j];
            const int pass = act == OCTO_TRAIN_ACT_NONE || (v > 0 && v < six);
            bits |= (uint32_t)pass << j;
        }
        mask[i >> 3] = (uint8_t)bits;
    }
    return OCTO_OK;
}

int octo_train_act_s8_bwd_mask(int32_t n, const uint8_t *mask, const octo_train_q8_t *dy, octo_train_q8_t *dz) {
    if (n < 0 || mask == NULL || !octo_tr_q8_ok(dy) || dz == NULL || dz->data == NULL) {
        return OCTO_E_ARG;
    }
    for (int32_t i = 0; i < n; i++) {
        dz->data[i] = ((mask[i >> 3] >> (i & 7)) & 1u) ? dy->data[i] : 0;
    }
    dz->scale = dy->scale;
    return OCTO_OK;
}
