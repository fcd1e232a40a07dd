/* octo_fully_connected_s8.c - FULLY_CONNECTED, INT8, per-channel or per-tensor requantization (reference path). */
#include "octo/octo_fully_connected_s8.h"
#include "octo/octo_qmath.h"

int octo_fully_connected_s8(const octo_fc_params_t *p, const octo_requant_t *q, const octo_dims_t *in_dims,
                            const int8_t *in, const octo_dims_t *filter_dims, const int8_t *filter,
                            const int32_t *bias, const octo_dims_t *out_dims, int8_t *out) {
    if (p == NULL || q == NULL || in_dims == NULL || in == NULL || filter_dims == NULL || filter == NULL ||
        out_dims == NULL || out == NULL || q->multiplier == NULL || q->shift == NULL) {
        return OCTO_E_ARG;
    }
    const int32_t batches = in_dims->n;
    const int32_t depth = in_dims->c;
    const int32_t out_depth = out_dims->c;
    if (filter_dims->c != depth || filter_dims->n != out_depth || out_dims->n != batches) {
        return OCTO_E_ARG;
    }
    for (int32_t b = 0; b < batches; b++) {
        const int8_t *ip = &in[b * depth];
        for (int32_t oc = 0; oc < out_depth; oc++) {
            const int8_t *fp = &filter[oc * depth];
            int32_t acc = 0;
            for (int32_t d = 0; d < depth; d++) {
                acc += ((int32_t)fp[d] + p->filter_offset) * ((int32_t)ip[d] + p->input_offset);
            }
            if (bias != NULL) {
                acc += bias[oc];
            }
            const int32_t qi = p->per_channel ? oc : 0;
            acc = octo_requantize(acc, q->multiplier[qi], q->shift[qi]) + p->output_offset;
            out[b * out_depth + oc] = (int8_t)octo_clamp(acc, p->act_min, p->act_max);
        }
    }
    return OCTO_OK;
}
