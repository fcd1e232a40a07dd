/* octo_train_fully_connected_f32.c - FULLY_CONNECTED, FP32: forward, input gradient, weight gradient. */
#include <string.h>

#include "octo_train_internal.h"

int octo_train_fully_connected_f32_fwd(const octo_train_fully_connected_params_t *p, const octo_dims_t *in_dims,
                                       const float *x, const octo_dims_t *w_dims, const float *w, const float *bias,
                                       const octo_dims_t *out_dims, float *y) {
    if (p == NULL || !octo_tr_act_ok(p->act) || x == NULL || w == NULL || y == NULL ||
        !octo_tr_fully_connected_ok(in_dims, w_dims, out_dims)) {
        return OCTO_E_ARG;
    }
    const int32_t N = in_dims->n, D = w_dims->c, O = w_dims->n;
    for (int32_t b = 0; b < N; b++) {
        const float *xr = &x[b * D];
        float *yr = &y[b * O];
        int32_t o = 0;
        for (; o + 4 <= O; o += 4) { /* four outputs per input load */
            const float *w0 = &w[o * D], *w1 = w0 + D, *w2 = w1 + D, *w3 = w2 + D;
            float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
            if (bias != NULL) {
                a0 = bias[o];
                a1 = bias[o + 1];
                a2 = bias[o + 2];
                a3 = bias[o + 3];
            }
            for (int32_t d = 0; d < D; d++) {
                const float xv = xr[d];
                a0 += xv * w0[d];
                a1 += xv * w1[d];
                a2 += xv * w2[d];
                a3 += xv * w3[d];
            }
            yr[o] = octo_tr_act_f32(a0, p->act);
            yr[o + 1] = octo_tr_act_f32(a1, p->act);
            yr[o + 2] = octo_tr_act_f32(a2, p->act);
            yr[o + 3] = octo_tr_act_f32(a3, p->act);
        }
        for (; o < O; o++) {
            const float *wr = &w[o * D];
            float a = bias != NULL ? bias[o] : 0.0f;
            for (int32_t d = 0; d < D; d++) {
                a += xr[d] * wr[d];
            }
            yr[o] = octo_tr_act_f32(a, p->act);
        }
    }
    return OCTO_OK;
}

/* dx[b,:] = sum_o dy[b,o] * w[o,:] */
int octo_train_fully_connected_f32_bwd_input(const octo_dims_t *in_dims, const octo_dims_t *w_dims, const float *w,
                                             const octo_dims_t *out_dims, const float *dy, float *dx) {
    if (w == NULL || dy == NULL || dx == NULL || !octo_tr_fully_connected_ok(in_dims, w_dims, out_dims)) {
        return OCTO_E_ARG;
    }
    const int32_t N = in_dims->n, D = w_dims->c, O = w_dims->n;
    memset(dx, 0, (size_t)N * (size_t)D * sizeof(float));
    for (int32_t b = 0; b < N; b++) {
        float *xr = &dx[b * D];
        for (int32_t o = 0; o < O; o++) {
            const float g = dy[b * O + o];
            const float *wr = &w[o * D];
            for (int32_t d = 0; d < D; d++) {
                xr[d] += g * wr[d];
            }
        }
    }
    return OCTO_OK;
}

/* dw[o,:] = sum_b dy[b,o] * x[b,:]; db[o] = sum_b dy[b,o] */
int octo_train_fully_connected_f32_bwd_weight(const octo_dims_t *in_dims, const float *x, const octo_dims_t *out_dims,
                                              const float *dy, const octo_dims_t *w_dims, float *dw, float *db) {
    if (x == NULL || dy == NULL || dw == NULL || !octo_tr_fully_connected_ok(in_dims, w_dims, out_dims)) {
        return OCTO_E_ARG;
    }
    const int32_t N = in_dims->n, D = w_dims->c, O = w_dims->n;
    memset(dw, 0, (size_t)O * (size_t)D * sizeof(float));
    if (db != NULL) {
        memset(db, 0, (size_t)O * sizeof(float));
    }
    for (int32_t b = 0; b < N; b++) {
        const float *xr = &x[b * D];
        for (int32_t o = 0; o < O; o++) {
            const float g = dy[b * O + o];
            float *wr = &dw[o * D];
            for (int32_t d = 0; d < D; d++) {
                wr[d] += g * xr[d];
            }
            if (db != NULL) {
                db[o] += g;
            }
        }
    }
    return OCTO_OK;
}
