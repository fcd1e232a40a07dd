/*
 * train_driver.c - drives the training kernels (firmware/src/train) for
 * tests/python/test_train_kernels.py: one process serves many requests.
 *
 * Binary protocol on stdin/stdout, little-endian, all fields 32-bit:
 *   request   op, np, params[np], nt, then nt tensors
 *   response  status, nt, then nt tensors
 *   tensor    dtype (0 f32, 1 s8, 2 s32), count, scale (f32), count elements
 * op 0 ends the process. Layer ops run a whole training step of one layer
 * (forward, activation backward, input and weight gradient) on float inputs;
 * the INT8 ops quantize them first (x: stochastic, w and the upstream
 * gradient: nearest) and return dequantized results. Buffers are malloc'ed
 * at their exact sizes (scratch too) so ASan sees any overrun.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "octo/octo_train.h"

enum { T_F32 = 0, T_S8 = 1, T_S32 = 2 };

typedef struct {
    int32_t dtype, count;
    float scale;
    void *data;
} tensor_t;

#define MAX_T 16
#define MAX_P 32

static int32_t g_params[MAX_P];
static int32_t g_np;
static tensor_t g_in[MAX_T];
static int32_t g_nin;
static tensor_t g_out[MAX_T];
static int32_t g_nout;

static void die(const char *msg) {
    fprintf(stderr, "train_driver: %s\n", msg);
    exit(2);
}

static void read_exact(void *p, size_t n) {
    if (n > 0 && fread(p, 1, n, stdin) != n) {
        die("short read");
    }
}

static int32_t read_i32(void) {
    int32_t v;
    read_exact(&v, sizeof v);
    return v;
}

static size_t elem_size(int32_t dtype) {
    return dtype == T_S8 ? 1u : 4u;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n > 0 ? n : 1);
    if (p == NULL) {
        die("out of memory");
    }
    return p;
}

/* output tensor slot with a fresh buffer of count elements */
static tensor_t *out_tensor(int32_t dtype, int32_t count, float scale) {
    if (g_nout >= MAX_T) {
        die("too many outputs");
    }
    tensor_t *t = &g_out[g_nout++];
    t->dtype = dtype;
    t->count = count;
    t->scale = scale;
    t->data = xmalloc((size_t)count * elem_size(dtype));
    return t;
}

static float *out_f32(int32_t count) {
    return (float *)out_tensor(T_F32, count, 1.0f)->data;
}

static const float *in_f32(int32_t i, int32_t count) {
    if (i >= g_nin || g_in[i].dtype != T_F32 || g_in[i].count != count) {
        fprintf(stderr, "input %d: want f32[%d]\n", i, count);
        die("bad input tensor");
    }
    return (const float *)g_in[i].data;
}

/* optional f32 input (count 0 = NULL) */
static const float *in_f32_opt(int32_t i, int32_t count) {
    return (i < g_nin && g_in[i].count == 0) ? NULL : in_f32(i, count);
}

static void write_response(int32_t status) {
    fwrite(&status, 4, 1, stdout);
    fwrite(&g_nout, 4, 1, stdout);
    for (int32_t i = 0; i < g_nout; i++) {
        fwrite(&g_out[i].dtype, 4, 1, stdout);
        fwrite(&g_out[i].count, 4, 1, stdout);
        fwrite(&g_out[i].scale, 4, 1, stdout);
        fwrite(g_out[i].data, elem_size(g_out[i].dtype), (size_t)g_out[i].count, stdout);
        free(g_out[i].data);
    }
    g_nout = 0;
    fflush(stdout);
}

#define CHECK(call)                                                                                                    \
    do {                                                                                                               \
        const int st_ = (call);                                                                                        \
        if (st_ != OCTO_OK) {                                                                                          \
            fprintf(stderr, "%s:%d: %s -> %s\n", __FILE__, __LINE__, #call, octo_status_name(st_));                   \
            return st_;                                                                                                \
        }                                                                                                              \
    } while (0)

/* --- helpers for the INT8 layer steps ---------------------------------------------------------- */

static octo_train_q8_t quantize(const float *x, int32_t n, int32_t rounding, octo_train_prng_t *prng, int *st) {
    octo_train_q8_t q = {(int8_t *)xmalloc((size_t)n), 0.0f};
    const int s = octo_train_quantize_s8(x, n, rounding, prng, &q);
    if (s != OCTO_OK) {
        *st = s;
    }
    return q;
}

/* float copy of a q8 tensor as an output */
static void emit_q8(const octo_train_q8_t *q, int32_t n) {
    float *o = out_f32(n);
    if (octo_train_dequantize_s8(q, n, o) != OCTO_OK) {
        die("dequantize");
    }
}

static void emit_q32(const octo_train_q32_t *q, int32_t n) {
    float *o = out_f32(n);
    for (int32_t i = 0; i < n; i++) {
        o[i] = (float)q->data[i] * q->scale;
    }
}

static void *scratch(size_t n) {
    return n > 0 ? xmalloc(n) : NULL;
}

/* --- layer steps ------------------------------------------------------------------------------- */

/* params: N H W C OC KH KW SH SW same act [seed mask]; inputs x w b g; outputs meta y dz dx dw db.
 * mask = 1: activation backward from the accumulator bitmask, else from the saved int8 output */
static int op_conv(int depthwise, int int8) {
    const int32_t *p = g_params;
    const octo_dims_t in = {p[0], p[1], p[2], p[3]};
    const int32_t OC = p[4], KH = p[5], KW = p[6]; /* depthwise: OC = multiplier x C */
    octo_train_conv_params_t cp = {p[7], p[8], 0, 0, p[10]};
    int32_t OH, OW;
    CHECK(octo_train_padding(in.h, KH, cp.stride_h, p[9], &OH, &cp.pad_h));
    CHECK(octo_train_padding(in.w, KW, cp.stride_w, p[9], &OW, &cp.pad_w));
    const octo_dims_t wd = {depthwise ? 1 : OC, KH, KW, depthwise ? OC : in.c};
    const octo_dims_t out = {in.n, OH, OW, OC};
    const int32_t nx = in.n * in.h * in.w * in.c, nw = wd.n * KH * KW * wd.c, ny = in.n * OH * OW * OC;
    const float *x = in_f32(0, nx), *w = in_f32(1, nw), *b = in_f32_opt(2, OC), *g = in_f32(3, ny);
    int32_t *meta = (int32_t *)out_tensor(T_S32, 4, 1.0f)->data;
    meta[0] = OH;
    meta[1] = OW;
    meta[2] = cp.pad_h;
    meta[3] = cp.pad_w;
    if (!int8) {
        float *y = out_f32(ny), *dz = out_f32(ny), *dx = out_f32(nx), *dw = out_f32(nw), *db = out_f32(OC);
        if (depthwise) {
            CHECK(octo_train_depthwise_conv_f32_fwd(&cp, &in, x, &wd, w, b, &out, y));
        } else {
            CHECK(octo_train_conv_f32_fwd(&cp, &in, x, &wd, w, b, &out, y));
        }
        CHECK(octo_train_act_f32_bwd(cp.act, ny, y, g, dz));
        if (depthwise) {
            CHECK(octo_train_depthwise_conv_f32_bwd_input(&cp, &in, &wd, w, &out, dz, dx));
            CHECK(octo_train_depthwise_conv_f32_bwd_weight(&cp, &in, x, &out, dz, &wd, dw, db));
        } else {
            CHECK(octo_train_conv_f32_bwd_input(&cp, &in, &wd, w, &out, dz, dx));
            CHECK(octo_train_conv_f32_bwd_weight(&cp, &in, x, &out, dz, &wd, dw, db));
        }
        return OCTO_OK;
    }
    octo_train_prng_t rng;
    octo_train_prng_seed(&rng, (uint32_t)p[11]);
    int st = OCTO_OK;
    octo_train_q8_t qx = quantize(x, nx, OCTO_TRAIN_ROUND_STOCHASTIC, &rng, &st);
    octo_train_q8_t qw = quantize(w, nw, OCTO_TRAIN_ROUND_NEAREST, NULL, &st);
    octo_train_q8_t qg = quantize(g, ny, OCTO_TRAIN_ROUND_NEAREST, NULL, &st);
    CHECK(st);
    /* forward: int32 accumulators, then int8 in place (stochastic rounding) */
    octo_train_q32_t yacc = {(int32_t *)xmalloc((size_t)ny * 4), 0.0f};
    void *s1 = depthwise ? NULL : scratch(octo_train_conv_s8_fwd_scratch_size(&wd));
    if (depthwise) {
        CHECK(octo_train_depthwise_conv_s8_fwd(&cp, &in, &qx, &wd, &qw, b, &out, &yacc));
    } else {
        CHECK(octo_train_conv_s8_fwd(&cp, &in, &qx, &wd, &qw, b, s1, &out, &yacc));
    }
    /* activation mask from the accumulators (mask mode) or later from the saved int8 output */
    const int use_mask = g_np > 12 && p[12];
    uint8_t *mask = (uint8_t *)xmalloc((size_t)(ny + 7) / 8);
    if (use_mask) {
        CHECK(octo_train_act_mask_s32(cp.act, ny, &yacc, mask));
    }
    octo_train_q8_t qy = {(int8_t *)yacc.data, 0.0f};
    CHECK(octo_train_requant_s8(&yacc, ny, OCTO_TRAIN_ROUND_STOCHASTIC, &rng, &qy));
    emit_q8(&qy, ny);
    /* activation backward in place over the quantized gradient */
    if (use_mask) {
        CHECK(octo_train_act_s8_bwd_mask(ny, mask, &qg, &qg));
    } else {
        CHECK(octo_train_act_s8_bwd(cp.act, ny, &qy, &qg, &qg));
    }
    free(mask);
    emit_q8(&qg, ny);
    /* input gradient: int32 -> int8 (nearest) */
    octo_train_q32_t dxacc = {(int32_t *)xmalloc((size_t)nx * 4), 0.0f};
    void *s2 = depthwise ? NULL : scratch(octo_train_conv_s8_bwd_input_scratch_size(&wd));
    if (depthwise) {
        CHECK(octo_train_depthwise_conv_s8_bwd_input(&cp, &in, &wd, &qw, &out, &qg, &dxacc));
    } else {
        CHECK(octo_train_conv_s8_bwd_input(&cp, &in, &wd, &qw, &out, &qg, s2, &dxacc));
    }
    octo_train_q8_t qdx = {(int8_t *)dxacc.data, 0.0f};
    CHECK(octo_train_requant_s8(&dxacc, nx, OCTO_TRAIN_ROUND_NEAREST, NULL, &qdx));
    emit_q8(&qdx, nx);
    /* weight gradient: int32 + scale */
    octo_train_q32_t dw = {(int32_t *)xmalloc((size_t)nw * 4), 0.0f};
    octo_train_q32_t db = {(int32_t *)xmalloc((size_t)OC * 4), 0.0f};
    void *s3 = depthwise ? NULL : scratch(octo_train_conv_s8_bwd_weight_scratch_size(&wd));
    if (depthwise) {
        CHECK(octo_train_depthwise_conv_s8_bwd_weight(&cp, &in, &qx, &out, &qg, &wd, &dw, &db));
    } else {
        CHECK(octo_train_conv_s8_bwd_weight(&cp, &in, &qx, &out, &qg, &wd, s3, &dw, &db));
    }
    emit_q32(&dw, nw);
    emit_q32(&db, OC);
    free(qx.data);
    free(qw.data);
    free(qg.data);
    free(yacc.data);
    free(dxacc.data);
    free(dw.data);
    free(db.data);
    free(s1);
    free(s2);
    free(s3);
    return OCTO_OK;
}

/* params: N D O act [seed mask]; inputs x w b g; outputs y dz dx dw db */
static int op_fc(int int8) {
    const int32_t N = g_params[0], D = g_params[1], O = g_params[2];
    const octo_train_fully_connected_params_t fp = {g_params[3]};
    const octo_dims_t in = {N, 1, 1, D}, wd = {O, 1, 1, D}, out = {N, 1, 1, O};
    const float *x = in_f32(0, N * D), *w = in_f32(1, O * D), *b = in_f32_opt(2, O), *g = in_f32(3, N * O);
    if (!int8) {
        float *y = out_f32(N * O), *dz = out_f32(N * O), *dx = out_f32(N * D), *dw = out_f32(O * D), *db = out_f32(O);
        CHECK(octo_train_fully_connected_f32_fwd(&fp, &in, x, &wd, w, b, &out, y));
        CHECK(octo_train_act_f32_bwd(fp.act, N * O, y, g, dz));
        CHECK(octo_train_fully_connected_f32_bwd_input(&in, &wd, w, &out, dz, dx));
        CHECK(octo_train_fully_connected_f32_bwd_weight(&in, x, &out, dz, &wd, dw, db));
        return OCTO_OK;
    }
    octo_train_prng_t rng;
    octo_train_prng_seed(&rng, (uint32_t)g_params[4]);
    int st = OCTO_OK;
    octo_train_q8_t qx = quantize(x, N * D, OCTO_TRAIN_ROUND_STOCHASTIC, &rng, &st);
    octo_train_q8_t qw = quantize(w, O * D, OCTO_TRAIN_ROUND_NEAREST, NULL, &st);
    octo_train_q8_t qg = quantize(g, N * O, OCTO_TRAIN_ROUND_NEAREST, NULL, &st);
    CHECK(st);
    octo_train_q32_t yacc = {(int32_t *)xmalloc((size_t)(N * O) * 4), 0.0f};
    CHECK(octo_train_fully_connected_s8_fwd(&fp, &in, &qx, &wd, &qw, b, &out, &yacc));
    const int use_mask = g_np > 5 && g_params[5];
    uint8_t *mask = (uint8_t *)xmalloc((size_t)(N * O + 7) / 8);
    if (use_mask) {
        CHECK(octo_train_act_mask_s32(fp.act, N * O, &yacc, mask));
    }
    octo_train_q8_t qy = {(int8_t *)yacc.data, 0.0f};
    CHECK(octo_train_requant_s8(&yacc, N * O, OCTO_TRAIN_ROUND_STOCHASTIC, &rng, &qy));
    emit_q8(&qy, N * O);
    if (use_mask) {
        CHECK(octo_train_act_s8_bwd_mask(N * O, mask, &qg, &qg));
    } else {
        CHECK(octo_train_act_s8_bwd(fp.act, N * O, &qy, &qg, &qg));
    }
    free(mask);
    emit_q8(&qg, N * O);
    octo_train_q32_t dxacc = {(int32_t *)xmalloc((size_t)(N * D) * 4), 0.0f};
    void *s2 = scratch(octo_train_fully_connected_s8_bwd_input_scratch_size(&wd));
    CHECK(octo_train_fully_connected_s8_bwd_input(&in, &wd, &qw, &out, &qg, s2, &dxacc));
    octo_train_q8_t qdx = {(int8_t *)dxacc.data, 0.0f};
    CHECK(octo_train_requant_s8(&dxacc, N * D, OCTO_TRAIN_ROUND_NEAREST, NULL, &qdx));
    emit_q8(&qdx, N * D);
    octo_train_q32_t dw = {(int32_t *)xmalloc((size_t)(O * D) * 4), 0.0f};
    octo_train_q32_t db = {(int32_t *)xmalloc((size_t)O * 4), 0.0f};
    void *s3 = scratch(octo_train_fully_connected_s8_bwd_weight_scratch_size(&wd));
    CHECK(octo_train_fully_connected_s8_bwd_weight(&in, &qx, &out, &qg, &wd, s3, &dw, &db));
    emit_q32(&dw, O * D);
    emit_q32(&db, O);
    free(qx.data);
    free(qw.data);
    free(qg.data);
    free(yacc.data);
    free(dxacc.data);
    free(dw.data);
    free(db.data);
    free(s2);
    free(s3);
    return OCTO_OK;
}

/* params: N H W C FH FW SH SW same [seed]; inputs x g; outputs y dx meta */
static int op_pool(int is_max, int int8) {
    const int32_t *p = g_params;
    const octo_dims_t in = {p[0], p[1], p[2], p[3]};
    octo_train_pool_params_t pp = {p[6], p[7], 0, 0, p[4], p[5]};
    int32_t OH, OW;
    CHECK(octo_train_padding(in.h, pp.filter_h, pp.stride_h, p[8], &OH, &pp.pad_h));
    CHECK(octo_train_padding(in.w, pp.filter_w, pp.stride_w, p[8], &OW, &pp.pad_w));
    const octo_dims_t out = {in.n, OH, OW, in.c};
    const int32_t nx = in.n * in.h * in.w * in.c, ny = in.n * OH * OW * in.c;
    const float *x = in_f32(0, nx), *g = in_f32(1, ny);
    int32_t *meta = (int32_t *)out_tensor(T_S32, 4, 1.0f)->data;
    meta[0] = OH;
    meta[1] = OW;
    meta[2] = pp.pad_h;
    meta[3] = pp.pad_w;
    if (!int8) {
        float *y = out_f32(ny), *dx = out_f32(nx);
        if (is_max) {
            CHECK(octo_train_maxpool_f32_fwd(&pp, &in, x, &out, y));
            CHECK(octo_train_maxpool_f32_bwd(&pp, &in, x, &out, g, dx));
        } else {
            CHECK(octo_train_avgpool_f32_fwd(&pp, &in, x, &out, y));
            CHECK(octo_train_avgpool_f32_bwd(&pp, &in, &out, g, dx));
        }
        return OCTO_OK;
    }
    octo_train_prng_t rng;
    octo_train_prng_seed(&rng, (uint32_t)p[9]);
    int st = OCTO_OK;
    octo_train_q8_t qx = quantize(x, nx, OCTO_TRAIN_ROUND_STOCHASTIC, &rng, &st);
    octo_train_q8_t qg = quantize(g, ny, OCTO_TRAIN_ROUND_NEAREST, NULL, &st);
    CHECK(st);
    octo_train_q32_t acc = {(int32_t *)xmalloc((size_t)(nx > ny ? nx : ny) * 4), 0.0f};
    if (is_max) {
        octo_train_q8_t qy = {(int8_t *)xmalloc((size_t)ny), 0.0f};
        CHECK(octo_train_maxpool_s8_fwd(&pp, &in, &qx, &out, &qy));
        emit_q8(&qy, ny);
        free(qy.data);
        CHECK(octo_train_maxpool_s8_bwd(&pp, &in, &qx, &out, &qg, &acc));
    } else {
        CHECK(octo_train_avgpool_s8_fwd(&pp, &in, &qx, &out, &acc));
        octo_train_q8_t qy = {(int8_t *)acc.data, 0.0f};
        CHECK(octo_train_requant_s8(&acc, ny, OCTO_TRAIN_ROUND_STOCHASTIC, &rng, &qy));
        emit_q8(&qy, ny);
        CHECK(octo_train_avgpool_s8_bwd(&pp, &in, &out, &qg, &acc));
    }
    octo_train_q8_t qdx = {(int8_t *)acc.data, 0.0f};
    CHECK(octo_train_requant_s8(&acc, nx, OCTO_TRAIN_ROUND_NEAREST, NULL, &qdx));
    emit_q8(&qdx, nx);
    free(qx.data);
    free(qg.data);
    free(acc.data);
    return OCTO_OK;
}

/* params: batch classes; inputs logits (f32), labels (s32); outputs loss[1] dlogits */
static int op_xent(int int8) {
    const int32_t B = g_params[0], K = g_params[1];
    const float *z = in_f32(0, B * K);
    if (g_nin < 2 || g_in[1].dtype != T_S32 || g_in[1].count != B) {
        die("labels");
    }
    const int32_t *labels = (const int32_t *)g_in[1].data;
    float *loss = out_f32(1);
    if (!int8) {
        float *d = out_f32(B * K);
        CHECK(octo_train_softmax_xent_f32(B, K, z, labels, loss, d));
        return OCTO_OK;
    }
    int st = OCTO_OK;
    octo_train_q8_t qz = quantize(z, B * K, OCTO_TRAIN_ROUND_NEAREST, NULL, &st);
    CHECK(st);
    octo_train_q8_t qd = {(int8_t *)xmalloc((size_t)(B * K)), 0.0f};
    CHECK(octo_train_softmax_xent_s8(B, K, &qz, labels, loss, &qd));
    emit_q8(&qd, B * K);
    free(qz.data);
    free(qd.data);
    return OCTO_OK;
}

static octo_train_q8_t in_q8(int32_t i, int32_t count) {
    if (i >= g_nin || g_in[i].dtype != T_S8 || g_in[i].count != count) {
        fprintf(stderr, "input %d: want s8[%d]\n", i, count);
        die("bad input tensor");
    }
    octo_train_q8_t q = {(int8_t *)g_in[i].data, g_in[i].scale};
    return q;
}

static octo_train_q32_t out_q32(int32_t count) {
    octo_train_q32_t q = {(int32_t *)out_tensor(T_S32, count, 1.0f)->data, 0.0f};
    return q;
}

/* The raw INT8 kernels on given int8 operands: every int32 result and its scale.
 * params as op_conv without seed (conv/dw) or N D O act (fc); inputs x w (s8 with scale), b (f32 or empty),
 * dy (s8 with scale); outputs [meta (conv/dw)] y dx dw db (s32), scales f32[4] */
static int op_raw(int kind) {
    const int32_t *p = g_params;
    octo_dims_t in, wd, out;
    octo_train_conv_params_t cp = {1, 1, 0, 0, 0};
    octo_train_fully_connected_params_t fp = {0};
    int32_t OC;
    if (kind == 2) {
        in = (octo_dims_t){p[0], 1, 1, p[1]};
        wd = (octo_dims_t){p[2], 1, 1, p[1]};
        out = (octo_dims_t){p[0], 1, 1, p[2]};
        fp.act = p[3];
        OC = p[2];
    } else {
        in = (octo_dims_t){p[0], p[1], p[2], p[3]};
        OC = p[4]; /* depthwise: multiplier x C */
        cp = (octo_train_conv_params_t){p[7], p[8], 0, 0, p[10]};
        int32_t OH, OW;
        CHECK(octo_train_padding(in.h, p[5], cp.stride_h, p[9], &OH, &cp.pad_h));
        CHECK(octo_train_padding(in.w, p[6], cp.stride_w, p[9], &OW, &cp.pad_w));
        wd = (octo_dims_t){kind == 1 ? 1 : OC, p[5], p[6], kind == 1 ? OC : in.c};
        out = (octo_dims_t){in.n, OH, OW, OC};
        int32_t *meta = (int32_t *)out_tensor(T_S32, 4, 1.0f)->data;
        meta[0] = OH;
        meta[1] = OW;
        meta[2] = cp.pad_h;
        meta[3] = cp.pad_w;
    }
    const int32_t nx = in.n * in.h * in.w * in.c, nw = wd.n * wd.h * wd.w * wd.c, ny = out.n * out.h * out.w * OC;
    octo_train_q8_t x = in_q8(0, nx), w = in_q8(1, nw), dy = in_q8(3, ny);
    const float *b = in_f32_opt(2, OC);
    octo_train_q32_t y = out_q32(ny), dx = out_q32(nx), dw = out_q32(nw), db = out_q32(OC);
    float *scales = out_f32(4);
    void *s1 = NULL, *s2 = NULL, *s3 = NULL;
    int st;
    if (kind == 0) {
        s1 = scratch(octo_train_conv_s8_fwd_scratch_size(&wd));
        s2 = scratch(octo_train_conv_s8_bwd_input_scratch_size(&wd));
        s3 = scratch(octo_train_conv_s8_bwd_weight_scratch_size(&wd));
        st = octo_train_conv_s8_fwd(&cp, &in, &x, &wd, &w, b, s1, &out, &y);
        st = st ? st : octo_train_conv_s8_bwd_input(&cp, &in, &wd, &w, &out, &dy, s2, &dx);
        st = st ? st : octo_train_conv_s8_bwd_weight(&cp, &in, &x, &out, &dy, &wd, s3, &dw, &db);
    } else if (kind == 1) {
        st = octo_train_depthwise_conv_s8_fwd(&cp, &in, &x, &wd, &w, b, &out, &y);
        st = st ? st : octo_train_depthwise_conv_s8_bwd_input(&cp, &in, &wd, &w, &out, &dy, &dx);
        st = st ? st : octo_train_depthwise_conv_s8_bwd_weight(&cp, &in, &x, &out, &dy, &wd, &dw, &db);
    } else {
        s2 = scratch(octo_train_fully_connected_s8_bwd_input_scratch_size(&wd));
        s3 = scratch(octo_train_fully_connected_s8_bwd_weight_scratch_size(&wd));
        st = octo_train_fully_connected_s8_fwd(&fp, &in, &x, &wd, &w, b, &out, &y);
        st = st ? st : octo_train_fully_connected_s8_bwd_input(&in, &wd, &w, &out, &dy, s2, &dx);
        st = st ? st : octo_train_fully_connected_s8_bwd_weight(&in, &x, &out, &dy, &wd, s3, &dw, &db);
    }
    free(s1);
    free(s2);
    free(s3);
    scales[0] = y.scale;
    scales[1] = dx.scale;
    scales[2] = dw.scale;
    scales[3] = db.scale;
    return st;
}

/* The raw INT8 pooling kernels: params N H W C FH FW SH SW same; inputs x, dy (s8 with scale);
 * outputs meta, y (s8 for max, s32 for avg), dx (s32), scales f32[2] */
static int op_pool_raw(int is_max) {
    const int32_t *p = g_params;
    const octo_dims_t in = {p[0], p[1], p[2], p[3]};
    octo_train_pool_params_t pp = {p[6], p[7], 0, 0, p[4], p[5]};
    int32_t OH, OW;
    CHECK(octo_train_padding(in.h, pp.filter_h, pp.stride_h, p[8], &OH, &pp.pad_h));
    CHECK(octo_train_padding(in.w, pp.filter_w, pp.stride_w, p[8], &OW, &pp.pad_w));
    const octo_dims_t out = {in.n, OH, OW, in.c};
    const int32_t nx = in.n * in.h * in.w * in.c, ny = in.n * OH * OW * in.c;
    octo_train_q8_t x = in_q8(0, nx), dy = in_q8(1, ny);
    int32_t *meta = (int32_t *)out_tensor(T_S32, 4, 1.0f)->data;
    meta[0] = OH;
    meta[1] = OW;
    meta[2] = pp.pad_h;
    meta[3] = pp.pad_w;
    float ys;
    if (is_max) {
        octo_train_q8_t y = {(int8_t *)out_tensor(T_S8, ny, 1.0f)->data, 0.0f};
        CHECK(octo_train_maxpool_s8_fwd(&pp, &in, &x, &out, &y));
        ys = y.scale;
    } else {
        octo_train_q32_t y = out_q32(ny);
        CHECK(octo_train_avgpool_s8_fwd(&pp, &in, &x, &out, &y));
        ys = y.scale;
    }
    octo_train_q32_t dx = out_q32(nx);
    float *scales = out_f32(2);
    if (is_max) {
        CHECK(octo_train_maxpool_s8_bwd(&pp, &in, &x, &out, &dy, &dx));
    } else {
        CHECK(octo_train_avgpool_s8_bwd(&pp, &in, &out, &dy, &dx));
    }
    scales[0] = ys;
    scales[1] = dx.scale;
    return OCTO_OK;
}

/* params: rounding seed reps; inputs x (f32), [range f32[1]]; outputs s8[reps*n], scales f32[reps] */
static int op_quantize(void) {
    const int32_t n = g_in[0].count, reps = g_params[2];
    const float *x = in_f32(0, n);
    const float *range = g_nin > 1 ? in_f32(1, 1) : NULL;
    octo_train_prng_t rng;
    octo_train_prng_seed(&rng, (uint32_t)g_params[1]);
    int8_t *q = (int8_t *)out_tensor(T_S8, reps * n, 1.0f)->data;
    float *scales = out_f32(reps);
    for (int32_t r = 0; r < reps; r++) {
        octo_train_q8_t o = {&q[r * n], 0.0f};
        if (range != NULL) {
            CHECK(octo_train_quantize_s8_range(x, n, *range, g_params[0], &rng, &o));
        } else {
            CHECK(octo_train_quantize_s8(x, n, g_params[0], &rng, &o));
        }
        scales[r] = o.scale;
    }
    return OCTO_OK;
}

/* params: rounding seed reps range(0 = dynamic) inplace; inputs acc (s32, with scale);
 * outputs s8[reps*n], scales f32[reps] */
static int op_requant(void) {
    if (g_nin < 1 || g_in[0].dtype != T_S32) {
        die("requant input");
    }
    const int32_t n = g_in[0].count, reps = g_params[2];
    octo_train_prng_t rng;
    octo_train_prng_seed(&rng, (uint32_t)g_params[1]);
    int8_t *q = (int8_t *)out_tensor(T_S8, reps * n, 1.0f)->data;
    float *scales = out_f32(reps);
    int32_t *buf = (int32_t *)xmalloc((size_t)n * 4);
    for (int32_t r = 0; r < reps; r++) {
        memcpy(buf, g_in[0].data, (size_t)n * 4);
        octo_train_q32_t acc = {buf, g_in[0].scale};
        octo_train_q8_t o = {g_params[4] ? (int8_t *)buf : &q[r * n], 0.0f};
        if (g_params[3] > 0) {
            CHECK(octo_train_requant_s8_range(&acc, n, (uint32_t)g_params[3], g_params[0], &rng, &o));
        } else {
            CHECK(octo_train_requant_s8(&acc, n, g_params[0], &rng, &o));
        }
        if (g_params[4]) {
            memcpy(&q[r * n], buf, (size_t)n);
        }
        scales[r] = o.scale;
    }
    free(buf);
    return OCTO_OK;
}

/* params: seed count; outputs the draws as s32 */
static int op_prng(void) {
    octo_train_prng_t rng;
    octo_train_prng_seed(&rng, (uint32_t)g_params[0]);
    int32_t *o = (int32_t *)out_tensor(T_S32, g_params[1], 1.0f)->data;
    for (int32_t i = 0; i < g_params[1]; i++) {
        o[i] = (int32_t)octo_train_prng_next(&rng);
    }
    return OCTO_OK;
}

/* inputs x; outputs expf(x), logf(x) */
static int op_math(void) {
    const int32_t n = g_in[0].count;
    const float *x = in_f32(0, n);
    float *e = out_f32(n), *l = out_f32(n);
    for (int32_t i = 0; i < n; i++) {
        e[i] = octo_train_expf(x[i]);
        l[i] = octo_train_logf(x[i]);
    }
    return OCTO_OK;
}

/* params: in k stride same; outputs s32 [out, pad] */
static int op_padding(void) {
    int32_t *o = (int32_t *)out_tensor(T_S32, 2, 1.0f)->data;
    return octo_train_padding(g_params[0], g_params[1], g_params[2], g_params[3], &o[0], &o[1]);
}

int main(void) {
    for (;;) {
        int32_t op;
        if (fread(&op, 4, 1, stdin) != 1 || op == 0) {
            return 0;
        }
        g_np = read_i32();
        if (g_np < 0 || g_np > MAX_P) {
            die("bad param count");
        }
        read_exact(g_params, (size_t)g_np * 4);
        g_nin = read_i32();
        if (g_nin < 0 || g_nin > MAX_T) {
            die("bad tensor count");
        }
        for (int32_t i = 0; i < g_nin; i++) {
            tensor_t *t = &g_in[i];
            t->dtype = read_i32();
            t->count = read_i32();
            read_exact(&t->scale, 4);
            if (t->dtype < 0 || t->dtype > 2 || t->count < 0) {
                die("bad tensor header");
            }
            t->data = xmalloc((size_t)t->count * elem_size(t->dtype));
            read_exact(t->data, (size_t)t->count * elem_size(t->dtype));
        }
        int status;
        switch (op) {
        case 1: status = op_conv(0, 0); break;
        case 2: status = op_conv(0, 1); break;
        case 3: status = op_conv(1, 0); break;
        case 4: status = op_conv(1, 1); break;
        case 5: status = op_fc(0); break;
        case 6: status = op_fc(1); break;
        case 7: status = op_pool(1, 0); break;
        case 8: status = op_pool(1, 1); break;
        case 9: status = op_pool(0, 0); break;
        case 10: status = op_pool(0, 1); break;
        case 11: status = op_xent(0); break;
        case 12: status = op_xent(1); break;
        case 13: status = op_raw(0); break;
        case 14: status = op_raw(1); break;
        case 15: status = op_raw(2); break;
        case 16: status = op_pool_raw(1); break;
        case 17: status = op_pool_raw(0); break;
        case 20: status = op_quantize(); break;
        case 21: status = op_requant(); break;
        case 22: status = op_prng(); break;
        case 23: status = op_math(); break;
        case 24: status = op_padding(); break;
        default: die("unknown op");
        }
        if (status != OCTO_OK) { /* drop partial outputs */
            for (int32_t i = 0; i < g_nout; i++) {
                free(g_out[i].data);
            }
            g_nout = 0;
        }
        write_response(status);
        for (int32_t i = 0; i < g_nin; i++) {
            free(g_in[i].data);
        }
    }
}
