/* octo_add_s8.c - ADD, INT8, with broadcasting (reference path, TFLM's AddFunc arithmetic). */
#include "octo/octo_add_s8.h"
#include "octo/octo_qmath.h"

static inline int8_t add_one(const octo_add_params_t *p, int8_t x, int8_t y) {
    const int32_t a = (p->input1_offset + x) * (1 << p->left_shift);
    const int32_t b = (p->input2_offset + y) * (1 << p->left_shift);
    const int32_t sa = octo_requantize_fast(a, p->input1_multiplier, p->input1_shift);
    const int32_t sb = octo_requantize_fast(b, p->input2_multiplier, p->input2_shift);
    const int32_t raw = octo_requantize_fast(sa + sb, p->output_multiplier, p->output_shift) + p->output_offset;
    return (int8_t)octo_clamp(raw, p->act_min, p->act_max);
}

/* Stride of dimension `size` in a broadcast input: 0 if it is broadcast (size 1), else `stride`. */
static int32_t bstride(int32_t in_size, int32_t out_size, int32_t stride) {
    return (in_size == 1 && out_size != 1) ? 0 : stride;
}

static int dims_ok(const octo_dims_t *in, const octo_dims_t *out) {
    return (in->n == out->n || in->n == 1) && (in->h == out->h || in->h == 1) && (in->w == out->w || in->w == 1) &&
           (in->c == out->c || in->c == 1) && in->n > 0 && in->h > 0 && in->w > 0 && in->c > 0;
}

int octo_add_s8(const octo_add_params_t *p, const octo_dims_t *in1_dims, const int8_t *in1,
                const octo_dims_t *in2_dims, const int8_t *in2, const octo_dims_t *out_dims, int8_t *out) {
    if (p == NULL || in1_dims == NULL || in1 == NULL || in2_dims == NULL || in2 == NULL || out_dims == NULL ||
        out == NULL) {
        return OCTO_E_ARG;
    }
    if (!dims_ok(in1_dims, out_dims) || !dims_ok(in2_dims, out_dims) || p->left_shift < 0 || p->left_shift > 30 ||
        p->input1_shift > 0 || p->input2_shift > 0 || p->output_shift > 0 || p->act_min > p->act_max) {
        return OCTO_E_ARG;
    }
    const int32_t on = out_dims->n, oh = out_dims->h, ow = out_dims->w, oc = out_dims->c;
    const int same1 = in1_dims->n == on && in1_dims->h == oh && in1_dims->w == ow && in1_dims->c == oc;
    const int same2 = in2_dims->n == on && in2_dims->h == oh && in2_dims->w == ow && in2_dims->c == oc;
    if (same1 && same2) {
        const int32_t size = on * oh * ow * oc;
        for (int32_t i = 0; i < size; i++) {
            out[i] = add_one(p, in1[i], in2[i]);
        }
        return OCTO_OK;
    }
    /* Element strides of each input (0 along broadcast dimensions). */
    const int32_t c1 = bstride(in1_dims->c, oc, 1);
    const int32_t w1 = bstride(in1_dims->w, ow, in1_dims->c);
    const int32_t h1 = bstride(in1_dims->h, oh, in1_dims->w * in1_dims->c);
    const int32_t n1 = bstride(in1_dims->n, on, in1_dims->h * in1_dims->w * in1_dims->c);
    const int32_t c2 = bstride(in2_dims->c, oc, 1);
    const int32_t w2 = bstride(in2_dims->w, ow, in2_dims->c);
    const int32_t h2 = bstride(in2_dims->h, oh, in2_dims->w * in2_dims->c);
    const int32_t n2 = bstride(in2_dims->n, on, in2_dims->h * in2_dims->w * in2_dims->c);
    int8_t *o = out;
    for (int32_t b = 0; b < on; b++) {
        for (int32_t y = 0; y < oh; y++) {
            for (int32_t x = 0; x < ow; x++) {
                const int8_t *a = in1 + b * n1 + y * h1 + x * w1;
                const int8_t *d = in2 + b * n2 + y * h2 + x * w2;
                for (int32_t c = 0; c < oc; c++) {
                    *o++ = add_one(p, a[c * c1], d[c * c2]);
                }
            }
        }
    }
    return OCTO_OK;
}
