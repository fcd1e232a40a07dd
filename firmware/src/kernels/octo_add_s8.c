/* octo_add_s8.c - ADD, INT8, with broadcasting (TFLM's AddFunc arithmetic).
 *
 * Fast path (same shapes, at least ADD_TABLE_MIN elements): each input's
 * rescale depends on its int8 value only, so it is tabulated once per call
 * (2 x 256 int32 on the stack); per element there remain two table loads and
 * one merged requantization of the sum (octo_merged_raw), and the clamp of four
 * elements at a time (octo_pack4_clamp).
 * Bit-exact with add_one, which the reference (broadcasting) path keeps.
 */
#include <string.h>

#include "octo/octo_add_s8.h"
#include "octo/octo_dsp.h"
#include "octo/octo_qmath.h"

/* Below this many elements the tables cost more than they save. */
#define ADD_TABLE_MIN 512

static inline int8_t add_one(const octo_add_params_t *p, int8_t x, int8_t y) {
    const int32_t a = (p->input1_offset + x) * (1 << p->left_shift);
    const int32_t b = (p->input2_offset + y) * (1 << p->left_shift);
    const int32_t sa = octo_requantize_fast(a, p->input1_multiplier, p->input1_shift);
    const int32_t sb = octo_requantize_fast(b, p->input2_multiplier, p->input2_shift);
    const int32_t raw = octo_requantize_fast(sa + sb, p->output_multiplier, p->output_shift) + p->output_offset;
    return (int8_t)octo_clamp(raw, p->act_min, p->act_max);
}

/* One input's rescale, (offset + x) << left_shift requantized, for every int8 x (indexed by x's byte). */
static void add_table(int32_t offset, int32_t left_shift, int32_t multiplier, int32_t shift, int32_t t[256]) {
    for (int32_t x = -128; x < 128; x++) {
        t[(uint8_t)(int8_t)x] = octo_requantize_fast((offset + x) * (1 << left_shift), multiplier, shift);
    }
}

/* out[i] for a same-shape ADD; output_multiplier >= 2^30 and output_shift <= -1 (the merged form). */
static OCTO_ALWAYS_INLINE void add_tabulated_mode(const octo_add_params_t *p, const int32_t *t1, const int32_t *t2,
                                                  const int8_t *in1, const int8_t *in2, int8_t *out, int32_t size,
                                                  const int floor_clamps) {
    int32_t k[3];
    octo_merged_constants(p->output_shift, k);
    const int32_t m = p->output_multiplier, off = p->output_offset;
    const uint32_t lo4 = 0x01010101u * (uint8_t)(int8_t)p->act_min, hi4 = 0x01010101u * (uint8_t)(int8_t)p->act_max;
#define ADD_RAW(xa, xb) octo_merged_raw(t1[(xa)] + t2[(xb)], m, k, off, floor_clamps)
    int32_t i = 0;
    for (; i + 4 <= size; i += 4) {
        const uint32_t a = octo_read_u32(&in1[i]), b = octo_read_u32(&in2[i]);
        const uint32_t r = octo_pack4_clamp(ADD_RAW(a & 0xffu, b & 0xffu), ADD_RAW((a >> 8) & 0xffu, (b >> 8) & 0xffu),
                                            ADD_RAW((a >> 16) & 0xffu, (b >> 16) & 0xffu), ADD_RAW(a >> 24, b >> 24),
                                            lo4, hi4);
        memcpy(&out[i], &r, sizeof r);
    }
    for (; i < size; i++) {
        const int32_t v = octo_requantize_merged(t1[(uint8_t)in1[i]] + t2[(uint8_t)in2[i]], m, (uint32_t)k[0], k[1],
                                                 k[2]) + off;
        out[i] = (int8_t)octo_clamp(v, p->act_min, p->act_max);
    }
#undef ADD_RAW
}

/* The two copies, out of line so that the tables are reached through pointers in registers. */
__attribute__((noinline)) static void add_tabulated_floor(const octo_add_params_t *p, const int32_t *t1,
                                                          const int32_t *t2, const int8_t *in1, const int8_t *in2,
                                                          int8_t *out, int32_t size) {
    add_tabulated_mode(p, t1, t2, in1, in2, out, size, 1);
}

__attribute__((noinline)) static void add_tabulated_signed(const octo_add_params_t *p, const int32_t *t1,
                                                           const int32_t *t2, const int8_t *in1, const int8_t *in2,
                                                           int8_t *out, int32_t size) {
    add_tabulated_mode(p, t1, t2, in1, in2, out, size, 0);
}

static void add_tabulated(const octo_add_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out,
                          int32_t size) {
    int32_t t1[256], t2[256];
    add_table(p->input1_offset, p->left_shift, p->input1_multiplier, p->input1_shift, t1);
    add_table(p->input2_offset, p->left_shift, p->input2_multiplier, p->input2_shift, t2);
    if (p->act_min >= p->output_offset) {
        add_tabulated_floor(p, t1, t2, in1, in2, out, size);
    } else {
        add_tabulated_signed(p, t1, t2, in1, in2, out, size);
    }
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
        if (size >= ADD_TABLE_MIN && p->output_shift <= -1 && p->output_multiplier >= (1 << 30)) {
            add_tabulated(p, in1, in2, out, size);
            return OCTO_OK;
        }
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
