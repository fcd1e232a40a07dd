/*
 * train_dsp_check.c - one fixed, seeded training workload through every
 * training kernel (FP32 and INT8, forward and backward, quantizers, PRNG,
 * exp/log), hashed (FNV-1a over every output byte, scale and status).
 *
 * Built natively it prints the hash with printf; built for a Cortex-M board
 * (with firmware/boards/cortexm/startup_cortexm.c and a firmware/ld script) it
 * prints it over Arm semihosting and exits. tests/python/test_train_kernels.py
 * runs it on the host, on virtual-m4/m7 (the SXTB16/SMLAD path, hardware FPU)
 * and on virtual-m3 (the portable path, soft float): the hashes must be equal,
 * i.e. the DSP and portable paths and the float bookkeeping give the same bits.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "octo/octo_train.h"

static uint32_t g_hash = 2166136261u;
static int g_bad; /* a call that should have succeeded did not */

static void hash_bytes(const void *p, size_t n) {
    const uint8_t *b = (const uint8_t *)p;
    for (size_t i = 0; i < n; i++) {
        g_hash = (g_hash ^ b[i]) * 16777619u;
    }
}

static void hash_status(int st) {
    g_bad |= st != OCTO_OK;
    hash_bytes(&st, sizeof st);
}

static void hash_f(float v) {
    hash_bytes(&v, sizeof v);
}

#define MAXE 2048 /* elements per buffer */
static float fx[MAXE], fw[MAXE], fg[MAXE], fy[MAXE], fdz[MAXE], fdx[MAXE], fdw[MAXE], fdb[64];
static int8_t qxd[MAXE], qwd[MAXE], qgd[MAXE];
static int32_t acc[MAXE], acc2[MAXE], acc3[64];
static uint8_t mask[MAXE / 8];
static int32_t scratch[MAXE];
static octo_train_prng_t g_rng;

static void fill(float *d, int32_t n, float gain) {
    for (int32_t i = 0; i < n; i++) {
        d[i] = ((float)(int32_t)(octo_train_prng_next(&g_rng) >> 8) - 8388608.0f) * (gain / 8388608.0f);
    }
}

typedef struct {
    octo_dims_t in;
    int32_t oc, kh, kw, sh, sw, same, act, depthwise;
} conv_case_t;

static const conv_case_t CONV[] = {
    {{2, 7, 6, 5}, 6, 3, 3, 2, 2, 1, OCTO_TRAIN_ACT_RELU6, 0},
    {{1, 8, 8, 8}, 4, 3, 3, 1, 1, 1, OCTO_TRAIN_ACT_RELU, 0},
    {{3, 5, 5, 3}, 5, 1, 1, 1, 1, 0, OCTO_TRAIN_ACT_NONE, 0},
    {{2, 7, 7, 9}, 9, 3, 3, 2, 2, 0, OCTO_TRAIN_ACT_RELU, 1},
    {{1, 6, 5, 8}, 8, 5, 3, 1, 1, 1, OCTO_TRAIN_ACT_RELU6, 1},
};

static void run_conv(const conv_case_t *c) {
    octo_train_conv_params_t p = {c->sh, c->sw, 0, 0, c->act};
    int32_t oh = 0, ow = 0;
    hash_status(octo_train_padding(c->in.h, c->kh, c->sh, c->same, &oh, &p.pad_h));
    hash_status(octo_train_padding(c->in.w, c->kw, c->sw, c->same, &ow, &p.pad_w));
    const octo_dims_t wd = {c->depthwise ? 1 : c->oc, c->kh, c->kw, c->in.c};
    const octo_dims_t out = {c->in.n, oh, ow, c->oc};
    const int32_t nx = c->in.n * c->in.h * c->in.w * c->in.c, nw = wd.n * wd.h * wd.w * wd.c;
    const int32_t ny = out.n * oh * ow * c->oc;
    fill(fx, nx, 1.0f);
    fill(fw, nw, 0.5f);
    fill(fg, ny, 1.0f);
    fill(fdb, c->oc, 0.2f);
    float bias[64];
    memcpy(bias, fdb, sizeof bias);
    /* FP32 */
    if (c->depthwise) {
        hash_status(octo_train_depthwise_conv_f32_fwd(&p, &c->in, fx, &wd, fw, bias, &out, fy));
        hash_status(octo_train_act_f32_bwd(c->act, ny, fy, fg, fdz));
        hash_status(octo_train_depthwise_conv_f32_bwd_input(&p, &c->in, &wd, fw, &out, fdz, fdx));
        hash_status(octo_train_depthwise_conv_f32_bwd_weight(&p, &c->in, fx, &out, fdz, &wd, fdw, fdb));
    } else {
        hash_status(octo_train_conv_f32_fwd(&p, &c->in, fx, &wd, fw, bias, &out, fy));
        hash_status(octo_train_act_f32_bwd(c->act, ny, fy, fg, fdz));
        hash_status(octo_train_conv_f32_bwd_input(&p, &c->in, &wd, fw, &out, fdz, fdx));
        hash_status(octo_train_conv_f32_bwd_weight(&p, &c->in, fx, &out, fdz, &wd, fdw, fdb));
    }
    hash_bytes(fy, (size_t)ny * 4);
    hash_bytes(fdz, (size_t)ny * 4);
    hash_bytes(fdx, (size_t)nx * 4);
    hash_bytes(fdw, (size_t)nw * 4);
    hash_bytes(fdb, (size_t)c->oc * 4);
    /* INT8 */
    octo_train_q8_t qx = {qxd, 0.0f}, qw = {qwd, 0.0f}, qg = {qgd, 0.0f};
    hash_status(octo_train_quantize_s8(fx, nx, OCTO_TRAIN_ROUND_STOCHASTIC, &g_rng, &qx));
    hash_status(octo_train_quantize_s8(fw, nw, OCTO_TRAIN_ROUND_NEAREST, NULL, &qw));
    hash_status(octo_train_quantize_s8(fg, ny, OCTO_TRAIN_ROUND_NEAREST, NULL, &qg));
    octo_train_q32_t y = {acc, 0.0f}, dw = {acc2, 0.0f}, db = {acc3, 0.0f};
    if (c->depthwise) {
        hash_status(octo_train_depthwise_conv_s8_fwd(&p, &c->in, &qx, &wd, &qw, bias, &out, &y));
    } else {
        hash_status(octo_train_conv_s8_fwd(&p, &c->in, &qx, &wd, &qw, bias, scratch, &out, &y));
    }
    hash_bytes(acc, (size_t)ny * 4);
    hash_status(octo_train_act_mask_s32(c->act, ny, &y, mask));
    octo_train_q8_t qy = {(int8_t *)acc, 0.0f};
    hash_status(octo_train_requant_s8(&y, ny, OCTO_TRAIN_ROUND_STOCHASTIC, &g_rng, &qy));
    hash_bytes(qy.data, (size_t)ny);
    hash_f(qy.scale);
    octo_train_q8_t dz = {(int8_t *)acc2, 0.0f};
    hash_status(octo_train_act_s8_bwd(c->act, ny, &qy, &qg, &dz)); /* the saved-output variant, hashed only */
    hash_bytes(dz.data, (size_t)ny);
    hash_status(octo_train_act_s8_bwd_mask(ny, mask, &qg, &qg));
    hash_bytes(qg.data, (size_t)ny);
    octo_train_q32_t dx = {acc, 0.0f};
    if (c->depthwise) {
        hash_status(octo_train_depthwise_conv_s8_bwd_input(&p, &c->in, &wd, &qw, &out, &qg, &dx));
    } else {
        hash_status(octo_train_conv_s8_bwd_input(&p, &c->in, &wd, &qw, &out, &qg, scratch, &dx));
    }
    hash_bytes(acc, (size_t)nx * 4);
    octo_train_q8_t qdx = {(int8_t *)acc, 0.0f};
    hash_status(octo_train_requant_s8(&dx, nx, OCTO_TRAIN_ROUND_NEAREST, NULL, &qdx));
    hash_bytes(qdx.data, (size_t)nx);
    hash_f(qdx.scale);
    if (c->depthwise) {
        hash_status(octo_train_depthwise_conv_s8_bwd_weight(&p, &c->in, &qx, &out, &qg, &wd, &dw, &db));
    } else {
        hash_status(octo_train_conv_s8_bwd_weight(&p, &c->in, &qx, &out, &qg, &wd, scratch, &dw, &db));
    }
    hash_bytes(acc2, (size_t)nw * 4);
    hash_bytes(acc3, (size_t)c->oc * 4);
    hash_f(dw.scale);
    hash_f(db.scale);
}

static void run_fc(int32_t n, int32_t d, int32_t o, int32_t act) {
    const octo_train_fully_connected_params_t p = {act};
    const octo_dims_t in = {n, 1, 1, d}, wd = {o, 1, 1, d}, out = {n, 1, 1, o};
    fill(fx, n * d, 1.0f);
    fill(fw, o * d, 0.3f);
    fill(fg, n * o, 1.0f);
    hash_status(octo_train_fully_connected_f32_fwd(&p, &in, fx, &wd, fw, NULL, &out, fy));
    hash_status(octo_train_act_f32_bwd(act, n * o, fy, fg, fdz));
    hash_status(octo_train_fully_connected_f32_bwd_input(&in, &wd, fw, &out, fdz, fdx));
    hash_status(octo_train_fully_connected_f32_bwd_weight(&in, fx, &out, fdz, &wd, fdw, fdb));
    hash_bytes(fy, (size_t)(n * o) * 4);
    hash_bytes(fdx, (size_t)(n * d) * 4);
    hash_bytes(fdw, (size_t)(o * d) * 4);
    octo_train_q8_t qx = {qxd, 0.0f}, qw = {qwd, 0.0f}, qg = {qgd, 0.0f};
    hash_status(octo_train_quantize_s8(fx, n * d, OCTO_TRAIN_ROUND_STOCHASTIC, &g_rng, &qx));
    hash_status(octo_train_quantize_s8(fw, o * d, OCTO_TRAIN_ROUND_NEAREST, NULL, &qw));
    hash_status(octo_train_quantize_s8(fg, n * o, OCTO_TRAIN_ROUND_NEAREST, NULL, &qg));
    octo_train_q32_t y = {acc, 0.0f}, dx = {acc, 0.0f}, dw = {acc2, 0.0f}, db = {acc3, 0.0f};
    hash_status(octo_train_fully_connected_s8_fwd(&p, &in, &qx, &wd, &qw, fdb, &out, &y));
    hash_bytes(acc, (size_t)(n * o) * 4);
    hash_status(octo_train_fully_connected_s8_bwd_input(&in, &wd, &qw, &out, &qg, scratch, &dx));
    hash_bytes(acc, (size_t)(n * d) * 4);
    hash_status(octo_train_fully_connected_s8_bwd_weight(&in, &qx, &out, &qg, &wd, scratch, &dw, &db));
    hash_bytes(acc2, (size_t)(o * d) * 4);
    hash_bytes(acc3, (size_t)o * 4);
}

static void run_pool(int32_t fh, int32_t fwid, int32_t s, int32_t same) {
    const octo_dims_t in = {2, 7, 6, 5};
    octo_train_pool_params_t p = {s, s, 0, 0, fh, fwid};
    int32_t oh = 0, ow = 0;
    hash_status(octo_train_padding(in.h, fh, s, same, &oh, &p.pad_h));
    hash_status(octo_train_padding(in.w, fwid, s, same, &ow, &p.pad_w));
    const octo_dims_t out = {2, oh, ow, 5};
    const int32_t nx = 2 * 7 * 6 * 5, ny = 2 * oh * ow * 5;
    fill(fx, nx, 1.0f);
    fill(fg, ny, 1.0f);
    hash_status(octo_train_maxpool_f32_fwd(&p, &in, fx, &out, fy));
    hash_status(octo_train_maxpool_f32_bwd(&p, &in, fx, &out, fg, fdx));
    hash_bytes(fy, (size_t)ny * 4);
    hash_bytes(fdx, (size_t)nx * 4);
    hash_status(octo_train_avgpool_f32_fwd(&p, &in, fx, &out, fy));
    hash_status(octo_train_avgpool_f32_bwd(&p, &in, &out, fg, fdx));
    hash_bytes(fy, (size_t)ny * 4);
    hash_bytes(fdx, (size_t)nx * 4);
    octo_train_q8_t qx = {qxd, 0.0f}, qg = {qgd, 0.0f}, qy = {qwd, 0.0f};
    hash_status(octo_train_quantize_s8(fx, nx, OCTO_TRAIN_ROUND_STOCHASTIC, &g_rng, &qx));
    hash_status(octo_train_quantize_s8(fg, ny, OCTO_TRAIN_ROUND_NEAREST, NULL, &qg));
    octo_train_q32_t a = {acc, 0.0f};
    hash_status(octo_train_maxpool_s8_fwd(&p, &in, &qx, &out, &qy));
    hash_bytes(qy.data, (size_t)ny);
    hash_status(octo_train_maxpool_s8_bwd(&p, &in, &qx, &out, &qg, &a));
    hash_bytes(acc, (size_t)nx * 4);
    hash_status(octo_train_avgpool_s8_fwd(&p, &in, &qx, &out, &a));
    hash_bytes(acc, (size_t)ny * 4);
    hash_f(a.scale);
    hash_status(octo_train_avgpool_s8_bwd(&p, &in, &out, &qg, &a));
    hash_bytes(acc, (size_t)nx * 4);
    hash_f(a.scale);
}

static void run_misc(void) {
    int32_t labels[6];
    for (int32_t i = 0; i < 6; i++) {
        labels[i] = (int32_t)(octo_train_prng_next(&g_rng) % 10u);
    }
    fill(fx, 60, 6.0f);
    float loss = 0.0f;
    hash_status(octo_train_softmax_xent_f32(6, 10, fx, labels, &loss, fdx));
    hash_f(loss);
    hash_bytes(fdx, 60 * 4);
    octo_train_q8_t qz = {qxd, 0.0f}, qd = {qgd, 0.0f};
    hash_status(octo_train_quantize_s8(fx, 60, OCTO_TRAIN_ROUND_NEAREST, NULL, &qz));
    hash_status(octo_train_softmax_xent_s8(6, 10, &qz, labels, &loss, &qd));
    hash_f(loss);
    hash_bytes(qd.data, 60);
    hash_f(qd.scale);
    for (int32_t i = 0; i < MAXE; i++) { /* wide int32 range, then clipped requantization */
        acc[i] = (int32_t)octo_train_prng_next(&g_rng);
    }
    octo_train_q32_t a = {acc, 0.75f};
    octo_train_q8_t q = {qwd, 0.0f};
    hash_status(octo_train_requant_s8_range(&a, MAXE, 1u << 29, OCTO_TRAIN_ROUND_STOCHASTIC, &g_rng, &q));
    hash_bytes(qwd, MAXE);
    hash_f(q.scale);
    fill(fx, MAXE, 3.0f);
    hash_status(octo_train_quantize_s8_range(fx, MAXE, 2.0f, OCTO_TRAIN_ROUND_STOCHASTIC, &g_rng, &q));
    hash_bytes(qwd, MAXE);
    for (int32_t i = 0; i < MAXE; i++) {
        const float v = (float)(i - MAXE / 2) * 0.0423f;
        hash_f(octo_train_expf(v));
        hash_f(octo_train_logf((float)(i + 1) * 0.0137f));
    }
}

static uint32_t run_all(void) {
    octo_train_prng_seed(&g_rng, 2021u);
    for (size_t i = 0; i < sizeof CONV / sizeof CONV[0]; i++) {
        run_conv(&CONV[i]);
    }
    run_fc(3, 37, 13, OCTO_TRAIN_ACT_RELU);
    run_fc(4, 64, 10, OCTO_TRAIN_ACT_NONE);
    run_pool(2, 2, 2, 0);
    run_pool(3, 3, 2, 1);
    run_misc();
    hash_bytes(&g_rng.state, sizeof g_rng.state);
    return g_hash;
}

static void format_result(char *msg, uint32_t h) {
    static const char hex[] = "0123456789abcdef";
    memcpy(msg, "train-dsp-check ", 16);
    for (int i = 0; i < 8; i++) {
        msg[16 + i] = hex[(h >> (28 - 4 * i)) & 0xFu];
    }
    memcpy(&msg[24], g_bad ? " BAD\n" : " ok\n", g_bad ? 6 : 5);
}

#if defined(__arm__)
/* bare metal: the hooks startup_cortexm.c expects, semihosting output and exit */
#include "bare_semihost.h"

BARE_SEMIHOST_HOOKS("train-dsp-check")

int main(void) {
    char msg[32];
    format_result(msg, run_all());
    say(msg);
    board_exit(g_bad ? 1 : 0);
    return 0;
}
#else
#include <stdio.h>

int main(void) {
    char msg[32];
    format_result(msg, run_all());
    fputs(msg, stdout);
    return g_bad ? 1 : 0;
}
#endif
