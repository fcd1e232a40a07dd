/* octo_train_fc_s8.c - FULLY_CONNECTED, INT8 training: forward, input
 * gradient, weight gradient; int32 accumulation with SXTB16 + SMLAD.
 *
 * forward      y[b,o] = dot(x[b,:], w[o,:]) (both rows contiguous).
 * input grad   the weights are transposed once to [D][O]; dx[b,d] is then a
 *              dot of the dy row and a contiguous row of the transpose.
 * weight grad  batch items two at a time, pair-interleaved, one SMLAD per
 *              (o, d) for both items (as the conv weight gradient).
 */
#include <string.h>

#include "octo_train_internal.h"

static int32_t round_up(int32_t v, int32_t m) {
    return (v + m - 1) / m * m;
}

int octo_train_fc_s8_fwd(const octo_train_fc_params_t *p, const octo_dims_t *in_dims, const octo_train_q8_t *x,
                         const octo_dims_t *w_dims, const octo_train_q8_t *w, const float *bias,
                         const octo_dims_t *out_dims, octo_train_q32_t *y) {
    if (p == NULL || !octo_tr_act_ok(p->act) || !octo_tr_q8_ok(x) || !octo_tr_q8_ok(w) || !octo_tr_q32_out_ok(y) ||
        !octo_tr_fc_ok(in_dims, w_dims, out_dims)) {
        return OCTO_E_ARG;
    }
    const int32_t N = in_dims->n, D = w_dims->c, O = w_dims->n;
    const float acc_scale = x->scale * w->scale;
    if (D > OCTO_TRAIN_S8_MAX_TERMS || !octo_tr_scale_ok(acc_scale)) {
        return OCTO_E_ARG;
    }
    const float inv = 1.0f / acc_scale;
    const int32_t six = octo_tr_six(acc_scale);
    for (int32_t o = 0; o < O; o++) { /* output outermost: its bias is converted once */
        const int32_t b_acc = octo_tr_bias_acc(bias, o, inv);
        const int8_t *wr = &w->data[o * D];
        for (int32_t b = 0; b < N; b++) {
            const int32_t acc = octo_tr_dot_s8(&x->data[b * D], wr, D, b_acc);
            y->data[b * O + o] = octo_tr_act_s32(acc, p->act, six);
        }
    }
    y->scale = acc_scale;
    return OCTO_OK;
}

size_t octo_train_fc_s8_bwd_input_scratch_size(const octo_dims_t *w_dims) {
    return octo_tr_dims_ok(w_dims) ? (size_t)octo_tr_count(w_dims) : 0;
}

int octo_train_fc_s8_bwd_input(const octo_dims_t *in_dims, const octo_dims_t *w_dims, const octo_train_q8_t *w,
                               const octo_dims_t *out_dims, const octo_train_q8_t *dy, void *scratch,
                               octo_train_q32_t *dx) {
    if (!octo_tr_q8_ok(w) || !octo_tr_q8_ok(dy) || !octo_tr_q32_out_ok(dx) || scratch == NULL ||
        !octo_tr_aligned4(scratch) || !octo_tr_fc_ok(in_dims, w_dims, out_dims)) {
        return OCTO_E_ARG;
    }
    const int32_t N = in_dims->n, D = w_dims->c, O = w_dims->n;
    const float acc_scale = dy->scale * w->scale;
    if (O > OCTO_TRAIN_S8_MAX_TERMS || !octo_tr_scale_ok(acc_scale)) {
        return OCTO_E_ARG;
    }
    int8_t *wt = (int8_t *)scratch; /* [D][O] */
    for (int32_t o = 0; o < O; o++) {
        const int8_t *src = &w->data[o * D];
        for (int32_t d = 0; d < D; d++) {
            wt[d * O + o] = src[d];
        }
    }
    for (int32_t b = 0; b < N; b++) {
        const int8_t *g = &dy->data[b * O];
        int32_t *xr = &dx->data[b * D];
        for (int32_t d = 0; d < D; d++) {
            xr[d] = octo_tr_dot_s8(g, &wt[d * O], O, 0);
        }
    }
    dx->scale = acc_scale;
    return OCTO_OK;
}

size_t octo_train_fc_s8_bwd_weight_scratch_size(const octo_dims_t *w_dims) {
    if (!octo_tr_dims_ok(w_dims)) {
        return 0;
    }
    return (size_t)round_up(2 * round_up(w_dims->c, 2) + 2 * round_up(w_dims->n, 2), 4);
}

int octo_train_fc_s8_bwd_weight(const octo_dims_t *in_dims, const octo_train_q8_t *x, const octo_dims_t *out_dims,
                                const octo_train_q8_t *dy, const octo_dims_t *w_dims, void *scratch,
                                octo_train_q32_t *dw, octo_train_q32_t *db) {
    if (!octo_tr_q8_ok(x) || !octo_tr_q8_ok(dy) || !octo_tr_q32_out_ok(dw) || (db != NULL && db->data == NULL) ||
        scratch == NULL || !octo_tr_aligned4(scratch) || !octo_tr_fc_ok(in_dims, w_dims, out_dims)) {
        return OCTO_E_ARG;
    }
    const int32_t N = in_dims->n, D = w_dims->c, O = w_dims->n;
    const float acc_scale = x->scale * dy->scale;
    if (N > OCTO_TRAIN_S8_MAX_TERMS || !octo_tr_scale_ok(acc_scale)) {
        return OCTO_E_ARG;
    }
    int8_t *x_il = (int8_t *)scratch;          /* 2 input rows, pair-interleaved */
    int8_t *dy_il = &x_il[2 * round_up(D, 2)]; /* 2 dy rows, pair-interleaved */
    memset(scratch, 0, octo_train_fc_s8_bwd_weight_scratch_size(w_dims));
    memset(dw->data, 0, (size_t)O * (size_t)D * sizeof(int32_t));
    if (db != NULL) {
        memset(db->data, 0, (size_t)O * sizeof(int32_t));
    }
    for (int32_t b0 = 0; b0 < N; b0 += 2) {
        for (int32_t j = 0; j < 2; j++) {
            const int32_t b = b0 + j;
            if (b >= N) { /* odd batch: a zero dy row makes the second item a no-op */
                for (int32_t o = 0; o < O; o++) {
                    dy_il[octo_tr_il_index(o, j)] = 0;
                }
                continue;
            }
            const int8_t *xr = &x->data[b * D];
            for (int32_t d = 0; d < D; d++) {
                x_il[octo_tr_il_index(d, j)] = xr[d];
            }
            const int8_t *g = &dy->data[b * O];
            for (int32_t o = 0; o < O; o++) {
                dy_il[octo_tr_il_index(o, j)] = g[o];
            }
            if (db != NULL) {
                for (int32_t o = 0; o < O; o++) {
                    db->data[o] += g[o];
                }
            }
        }
        octo_tr_rank2_s8(dy_il, O, x_il, D, dw->data);
    }
    dw->scale = acc_scale;
    if (db != NULL) {
        db->scale = dy->scale;
    }
    return OCTO_OK;
}
