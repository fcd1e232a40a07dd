/* octo_train_add_s8.c - ADD, INT8 training forward: the sum of two int8 tensors of different scales
 * as one int32 accumulator (see octo_train_s8.h). */
#include "octo_train_internal.h"

/* Each input's weight in the sum: its scale in units of 2^-ADD_FRAC of the larger scale, so a term is
 * at most 127 * 2^ADD_FRAC and the sum of two fits int32 with room to spare. */
#define ADD_FRAC 14

int octo_train_add_s8_fwd(int32_t n, const octo_train_q8_t *a, const octo_train_q8_t *b, octo_train_q32_t *y) {
    if (n < 0 || !octo_tr_q8_ok(a) || !octo_tr_q8_ok(b) || !octo_tr_q32_out_ok(y)) {
        return OCTO_E_ARG;
    }
    const float big = a->scale > b->scale ? a->scale : b->scale;
    const float unit = big * (1.0f / (float)(1 << ADD_FRAC));
    const int32_t ma = octo_tr_round_sat(a->scale / unit, 1 << ADD_FRAC);
    const int32_t mb = octo_tr_round_sat(b->scale / unit, 1 << ADD_FRAC);
    for (int32_t i = 0; i < n; i++) {
        y->data[i] = (int32_t)a->data[i] * ma + (int32_t)b->data[i] * mb;
    }
    y->scale = unit;
    return OCTO_OK;
}
