/*
 * train_s8_exact.c - the INT8 CONV_2D and DEPTHWISE_CONV_2D training kernels
 * against a naive int64 reference, result by result, on every layer shape of
 * the MobileNetV1-0.25 zoo model (as the training engine calls them: forward
 * and input gradient per sample, weight gradient over a batch of 8) and on
 * edge shapes: channels not a multiple of 4, 1x1 and 2x2 maps, pixel counts
 * not a multiple of 4, stride 2 SAME/VALID (padding bottom/right only),
 * kernels taller than wide, misaligned weights and activations, the full int8
 * range -128..127 and every fused activation.
 *
 * Scratch is exactly the size the kernels ask for, followed by guard bytes
 * that must survive. Built natively (portable C, under ASan/UBSan by the
 * tests) it prints with printf; built for a Cortex-M board with a 4 MiB
 * benchmark memory budget it prints over semihosting, so the DSP assembly is
 * checked on the same cases. Prints "train-s8-exact <cases> cases ok" or the
 * first mismatches.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "octo/octo_train.h"

/* --- output ------------------------------------------------------------------------------------ */

#if defined(__arm__)
#include "bare_semihost.h"

BARE_SEMIHOST_HOOKS("train-s8-exact")
#else
#include <stdio.h>
#include <stdlib.h>

static void say(const char *s) {
    fputs(s, stdout);
}
#endif

static char *put_int(char *p, int64_t v) {
    char d[24];
    int n = 0;
    uint64_t u = v < 0 ? (uint64_t)(-(v + 1)) + 1u : (uint64_t)v;
    if (v < 0) {
        *p++ = '-';
    }
    do {
        d[n++] = (char)('0' + u % 10u);
        u /= 10u;
    } while (u != 0u);
    while (n > 0) {
        *p++ = d[--n];
    }
    return p;
}

static char *put_str(char *p, const char *s) {
    while (*s) {
        *p++ = *s++;
    }
    return p;
}

/* --- memory: a bump arena (no malloc on the boards), reset per case ---------------------------- */

#define ARENA_BYTES (2816u * 1024u)
static uint8_t g_arena[ARENA_BYTES] __attribute__((aligned(8)));
static size_t g_used;
static int g_failed, g_cases, g_oom;

static void *take(size_t n) {
    n = (n + 7u) & ~(size_t)7u;
    if (g_used + n > ARENA_BYTES) {
        say("train-s8-exact: arena too small\n");
        g_failed = g_oom = 1;
        return NULL;
    }
    void *p = &g_arena[g_used];
    g_used += n;
    return p;
}

#define GUARD 32
static void *take_scratch(size_t n) { /* n bytes, then GUARD bytes of 0xA5 */
    uint8_t *p = (uint8_t *)take(n + GUARD);
    if (p != NULL) {
        memset(&p[n], 0xA5, GUARD);
    }
    return p;
}

static int guard_ok(const void *scratch, size_t n) {
    const uint8_t *p = (const uint8_t *)scratch;
    for (size_t i = 0; i < GUARD; i++) {
        if (p[n + i] != 0xA5) {
            return 0;
        }
    }
    return 1;
}

static uint32_t g_rng = 12345u;
static uint32_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 17;
    g_rng ^= g_rng << 5;
    return g_rng;
}

static void fill_s8(int8_t *d, int32_t n) {
    for (int32_t i = 0; i < n; i++) {
        d[i] = (int8_t)(rnd() >> 24); /* -128..127 */
    }
}

/* --- reference --------------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    int32_t n, h, w, c, oc, kh, kw, sh, sw, same, act, depthwise, misalign;
    int32_t edge_bias; /* 1: biases at the clamps of the accumulator scale, infinities, NaN, halves; 2: none */
} case_t;

static int32_t round_sat(float f, int32_t lim) { /* octo_tr_round_sat */
    const float fl = (float)lim;
    if (f >= fl) {
        return lim;
    }
    if (f <= -fl) {
        return -lim;
    }
    if (!(f == f)) {
        return 0;
    }
    return (int32_t)(f >= 0.0f ? f + 0.5f : f - 0.5f);
}

static int64_t act_ref(int64_t v, int32_t act, int32_t six) {
    if (act != OCTO_TRAIN_ACT_NONE && v < 0) {
        return 0;
    }
    if (act == OCTO_TRAIN_ACT_RELU6 && v > six) {
        return six;
    }
    return v;
}

static void report(const case_t *k, const char *what, int64_t idx, int64_t got, int64_t want) {
    char line[200];
    char *p = put_str(line, "train-s8-exact MISMATCH ");
    p = put_str(p, k->name);
    p = put_str(p, " ");
    p = put_str(p, what);
    p = put_str(p, "[");
    p = put_int(p, idx);
    p = put_str(p, "] got ");
    p = put_int(p, got);
    p = put_str(p, " want ");
    p = put_int(p, want);
    *p++ = '\n';
    *p = '\0';
    say(line);
}

static int compare(const case_t *k, const char *what, const int32_t *got, const int64_t *want, int32_t n) {
    int bad = 0;
    for (int32_t i = 0; i < n; i++) {
        if ((int64_t)got[i] != want[i]) {
            if (bad < 3) {
                report(k, what, i, got[i], want[i]);
            }
            bad++;
        }
    }
    return bad;
}

static void run_case(const case_t *k) {
    g_used = 0;
    const octo_dims_t in = {k->n, k->h, k->w, k->c};
    octo_train_conv_params_t p = {k->sh, k->sw, 0, 0, k->act};
    int32_t OH = 0, OW = 0;
    if (octo_train_padding(k->h, k->kh, k->sh, k->same, &OH, &p.pad_h) != OCTO_OK ||
        octo_train_padding(k->w, k->kw, k->sw, k->same, &OW, &p.pad_w) != OCTO_OK) {
        say("train-s8-exact: padding\n");
        g_failed = 1;
        return;
    }
    const int32_t OC = k->depthwise ? k->c : k->oc;
    const octo_dims_t wd = {k->depthwise ? 1 : OC, k->kh, k->kw, k->c};
    const octo_dims_t out = {k->n, OH, OW, OC};
    const int32_t nx = k->n * k->h * k->w * k->c, nw = wd.n * wd.h * wd.w * wd.c, ny = k->n * OH * OW * OC;
    const int32_t mis = k->misalign;
    int8_t *xb = (int8_t *)take((size_t)nx + 4), *wb = (int8_t *)take((size_t)nw + 4);
    int8_t *gb = (int8_t *)take((size_t)ny + 4);
    float *bias = (float *)take((size_t)OC * 4);
    int32_t *y = (int32_t *)take((size_t)ny * 4), *dx = (int32_t *)take((size_t)nx * 4);
    int32_t *dw = (int32_t *)take((size_t)nw * 4), *db = (int32_t *)take((size_t)OC * 4);
    int64_t *ry = (int64_t *)take((size_t)ny * 8), *rdx = (int64_t *)take((size_t)nx * 8);
    int64_t *rdw = (int64_t *)take((size_t)nw * 8), *rdb = (int64_t *)take((size_t)OC * 8);
    if (g_oom) {
        return;
    }
    int8_t *xd = &xb[mis], *wdat = &wb[mis], *gd = &gb[mis];
    fill_s8(xd, nx);
    fill_s8(wdat, nw);
    fill_s8(gd, ny);
    const float sx = 0.02f, sw = 0.003f, sdy = 0.5f;
    const float acc_scale = sx * sw;
    for (int32_t i = 0; i < OC; i++) {
        bias[i] = (float)((int32_t)(rnd() >> 16) - 32768) * (1.0f / 4096.0f);
        if (k->edge_bias == 2) {
            bias[i] = 0.0f; /* the reference's; the kernels get NULL */
        } else if (k->edge_bias) {
            const float zero = 0.0f, lim = 1073741824.0f;
            const float edges[] = {lim * acc_scale, -lim * acc_scale, 1.0000001f * lim * acc_scale,
                                   0.9999999f * lim * acc_scale, -0.9999999f * lim * acc_scale, 1.0f / zero,
                                   -1.0f / zero, zero / zero, 1e30f, -1e30f, 0.5f * acc_scale, -0.5f * acc_scale,
                                   1.5f * acc_scale, -2.5f * acc_scale, 8388609.0f * acc_scale, -0.0f};
            bias[i] = edges[i % (int32_t)(sizeof edges / sizeof edges[0])];
        }
    }
    const float inv = 1.0f / acc_scale;
    const int32_t six = round_sat(6.0f / acc_scale, 1 << 30);
    const octo_train_q8_t qx = {xd, sx}, qw = {wdat, sw}, qg = {gd, sdy};
    /* the reference */
    memset(rdx, 0, (size_t)nx * 8);
    memset(rdw, 0, (size_t)nw * 8);
    memset(rdb, 0, (size_t)OC * 8);
    for (int32_t b = 0; b < k->n; b++) {
        for (int32_t oy = 0; oy < OH; oy++) {
            for (int32_t ox = 0; ox < OW; ox++) {
                for (int32_t o = 0; o < OC; o++) {
                    const int32_t yi = ((b * OH + oy) * OW + ox) * OC + o;
                    int64_t acc = round_sat(bias[o] * inv, 1 << 30);
                    const int64_t g = gd[yi];
                    rdb[o] += g;
                    for (int32_t ky = 0; ky < k->kh; ky++) {
                        const int32_t iy = oy * k->sh - p.pad_h + ky;
                        if (iy < 0 || iy >= k->h) {
                            continue;
                        }
                        for (int32_t kx = 0; kx < k->kw; kx++) {
                            const int32_t ix = ox * k->sw - p.pad_w + kx;
                            if (ix < 0 || ix >= k->w) {
                                continue;
                            }
                            const int32_t c0 = k->depthwise ? o : 0, c1 = k->depthwise ? o + 1 : k->c;
                            for (int32_t c = c0; c < c1; c++) {
                                const int32_t xi = ((b * k->h + iy) * k->w + ix) * k->c + c;
                                const int32_t wi = k->depthwise ? (ky * k->kw + kx) * k->c + c
                                                                : ((o * k->kh + ky) * k->kw + kx) * k->c + c;
                                acc += (int64_t)xd[xi] * wdat[wi];
                                rdx[xi] += g * wdat[wi];
                                rdw[wi] += g * xd[xi];
                            }
                        }
                    }
                    ry[yi] = act_ref(acc, k->act, six);
                }
            }
        }
    }
    /* the kernels: forward and input gradient per sample (as the engine), weight gradient over the batch */
    int st = OCTO_OK, bad = 0;
    const float *kb = k->edge_bias == 2 ? NULL : bias;
    const octo_dims_t in1 = {1, k->h, k->w, k->c}, out1 = {1, OH, OW, OC};
    size_t n1 = 0, n2 = 0, n3 = 0;
    void *s1 = NULL, *s2 = NULL, *s3 = NULL;
    if (!k->depthwise) {
        n1 = octo_train_conv_s8_fwd_scratch_size(&wd);
        n2 = octo_train_conv_s8_bwd_input_scratch_size(&wd);
        n3 = octo_train_conv_s8_bwd_weight_scratch_size(&wd);
        s1 = take_scratch(n1);
        s2 = take_scratch(n2);
        s3 = take_scratch(n3);
        if (g_oom) {
            return;
        }
    }
    for (int32_t b = 0; b < k->n && st == OCTO_OK; b++) {
        const octo_train_q8_t xs = {&xd[b * (nx / k->n)], sx}, gs = {&gd[b * (ny / k->n)], sdy};
        octo_train_q32_t qy = {&y[b * (ny / k->n)], 0.0f}, qdx = {&dx[b * (nx / k->n)], 0.0f};
        if (k->depthwise) {
            st = octo_train_depthwise_conv_s8_fwd(&p, &in1, &xs, &wd, &qw, kb, &out1, &qy);
            st = st ? st : octo_train_depthwise_conv_s8_bwd_input(&p, &in1, &wd, &qw, &out1, &gs, &qdx);
        } else {
            st = octo_train_conv_s8_fwd(&p, &in1, &xs, &wd, &qw, kb, s1, &out1, &qy);
            st = st ? st : octo_train_conv_s8_bwd_input(&p, &in1, &wd, &qw, &out1, &gs, s2, &qdx);
        }
    }
    octo_train_q32_t qdw = {dw, 0.0f}, qdb = {db, 0.0f};
    if (st == OCTO_OK) {
        st = k->depthwise ? octo_train_depthwise_conv_s8_bwd_weight(&p, &in, &qx, &out, &qg, &wd, &qdw, &qdb)
                          : octo_train_conv_s8_bwd_weight(&p, &in, &qx, &out, &qg, &wd, s3, &qdw, &qdb);
    }
    if (st != OCTO_OK) {
        char line[120];
        char *q = put_str(line, "train-s8-exact FAILED ");
        q = put_str(q, k->name);
        q = put_str(q, " status ");
        q = put_int(q, st);
        *q++ = '\n';
        *q = '\0';
        say(line);
        g_failed = 1;
        return;
    }
    bad += compare(k, "y", y, ry, ny);
    bad += compare(k, "dx", dx, rdx, nx);
    bad += compare(k, "dw", dw, rdw, nw);
    bad += compare(k, "db", db, rdb, OC);
    if (!k->depthwise && (!guard_ok(s1, n1) || !guard_ok(s2, n2) || !guard_ok(s3, n3))) {
        report(k, "scratch guard", 0, 0, 0);
        bad++;
    }
    g_failed |= bad != 0;
    g_cases++;
}

/* --- the cases --------------------------------------------------------------------------------- */

#define R OCTO_TRAIN_ACT_RELU
#define R6 OCTO_TRAIN_ACT_RELU6
#define NA OCTO_TRAIN_ACT_NONE
static const case_t CASES[] = {
    /* MobileNetV1-0.25, 32x32x3 input: batch 8 (the weight gradient runs over it) */
    {"mn conv1 3x3s2 32x32x3->8", 8, 32, 32, 3, 8, 3, 3, 2, 2, 1, NA, 0, 0, 0},
    {"mn dw 16x16x8 s1", 8, 16, 16, 8, 0, 3, 3, 1, 1, 1, NA, 1, 0, 0},
    {"mn pw 16x16x8->16", 8, 16, 16, 8, 16, 1, 1, 1, 1, 1, NA, 0, 0, 0},
    {"mn dw 16x16x16 s2", 8, 16, 16, 16, 0, 3, 3, 2, 2, 1, NA, 1, 0, 0},
    {"mn pw 8x8x16->32", 8, 8, 8, 16, 32, 1, 1, 1, 1, 1, NA, 0, 0, 0},
    {"mn dw 8x8x32 s1", 8, 8, 8, 32, 0, 3, 3, 1, 1, 1, NA, 1, 0, 0},
    {"mn pw 8x8x32->32", 8, 8, 8, 32, 32, 1, 1, 1, 1, 1, NA, 0, 0, 0},
    {"mn dw 8x8x32 s2", 8, 8, 8, 32, 0, 3, 3, 2, 2, 1, NA, 1, 0, 0},
    {"mn pw 4x4x32->64", 8, 4, 4, 32, 64, 1, 1, 1, 1, 1, NA, 0, 0, 0},
    {"mn dw 4x4x64 s1", 8, 4, 4, 64, 0, 3, 3, 1, 1, 1, NA, 1, 0, 0},
    {"mn pw 4x4x64->64", 8, 4, 4, 64, 64, 1, 1, 1, 1, 1, NA, 0, 0, 0},
    {"mn dw 4x4x64 s2", 8, 4, 4, 64, 0, 3, 3, 2, 2, 1, NA, 1, 0, 0},
    {"mn pw 2x2x64->128", 8, 2, 2, 64, 128, 1, 1, 1, 1, 1, NA, 0, 0, 0},
    {"mn dw 2x2x128 s1", 8, 2, 2, 128, 0, 3, 3, 1, 1, 1, NA, 1, 0, 0},
    {"mn pw 2x2x128->128", 8, 2, 2, 128, 128, 1, 1, 1, 1, 1, NA, 0, 0, 0},
    {"mn dw 2x2x128 s2", 8, 2, 2, 128, 0, 3, 3, 2, 2, 1, NA, 1, 0, 0},
    {"mn pw 1x1x128->256", 8, 1, 1, 128, 256, 1, 1, 1, 1, 1, NA, 0, 0, 0},
    {"mn dw 1x1x256 s1", 8, 1, 1, 256, 0, 3, 3, 1, 1, 1, NA, 1, 0, 0},
    {"mn pw 1x1x256->256", 8, 1, 1, 256, 256, 1, 1, 1, 1, 1, NA, 0, 0, 0},
    {"mn pw 1x1x256->10", 8, 1, 1, 256, 10, 1, 1, 1, 1, 1, NA, 0, 0, 0},
    /* conv edges */
    {"pw 1x1x6->5 relu", 2, 1, 1, 6, 5, 1, 1, 1, 1, 1, R, 0, 0, 0},
    {"pw 3x3x7->9 relu6", 1, 3, 3, 7, 9, 1, 1, 1, 1, 1, R6, 0, 0, 0},
    {"pw 1x5x12->8 misaligned", 3, 1, 5, 12, 8, 1, 1, 1, 1, 1, R, 0, 1, 0},
    {"pw 2x3x16->12 misaligned3", 2, 2, 3, 16, 12, 1, 1, 1, 1, 1, NA, 0, 3, 0},
    {"pw 5x5x8->4 s2 valid", 2, 5, 5, 8, 4, 1, 1, 2, 2, 0, NA, 0, 0, 0},
    {"pw 2x2x4->256", 1, 2, 2, 4, 256, 1, 1, 1, 1, 1, R6, 0, 0, 0},
    {"pw 1x1x1->3", 2, 1, 1, 1, 3, 1, 1, 1, 1, 1, NA, 0, 0, 0},
    {"pw 1x1x520->16", 1, 1, 1, 520, 16, 1, 1, 1, 1, 1, R, 0, 0, 0},
    {"pw 1x1x64->600", 1, 1, 1, 64, 600, 1, 1, 1, 1, 1, NA, 0, 0, 0},
    {"pw 2x2x36->20", 1, 2, 2, 36, 20, 1, 1, 1, 1, 1, NA, 0, 2, 0},
    {"conv 3x3 2x2x128->64", 2, 2, 2, 128, 64, 3, 3, 1, 1, 1, NA, 0, 0, 0},
    {"conv 3x3 1x1x64->32", 2, 1, 1, 64, 32, 3, 3, 1, 1, 1, R, 0, 0, 0},
    {"conv 3x3s2 valid 7x7x3->4", 1, 7, 7, 3, 4, 3, 3, 2, 2, 0, NA, 0, 0, 0},
    {"conv 3x3s2 same 9x7x4->5", 1, 9, 7, 4, 5, 3, 3, 2, 2, 1, R, 0, 1, 0},
    {"conv 5x3 s(2,1) 10x6x2->3", 3, 10, 6, 2, 3, 5, 3, 2, 1, 1, R6, 0, 0, 0},
    {"conv 4x4s2 10x11x5->7", 1, 10, 11, 5, 7, 4, 4, 2, 2, 1, R6, 0, 0, 0},
    {"conv 3x3 16x16x16->16", 1, 16, 16, 16, 16, 3, 3, 1, 1, 1, R, 0, 0, 0},
    {"conv 3x3 8x8x8->16", 2, 8, 8, 8, 16, 3, 3, 1, 1, 1, R, 0, 0, 0},
    {"conv 1x3 3x9x8->8", 1, 3, 9, 8, 8, 1, 3, 1, 1, 1, NA, 0, 0, 0},
    {"conv 3x3s2 32x32x3->8 big oc", 1, 32, 32, 3, 300, 3, 3, 2, 2, 1, NA, 0, 0, 0},
    /* depthwise edges */
    {"dw 1x1x5", 3, 1, 1, 5, 0, 3, 3, 1, 1, 1, R, 1, 0, 0},
    {"dw 1x1x4", 1, 1, 1, 4, 0, 3, 3, 1, 1, 1, R6, 1, 0, 0},
    {"dw 2x2x7 s1", 2, 2, 2, 7, 0, 3, 3, 1, 1, 1, NA, 1, 1, 0},
    {"dw 2x2x13 s2", 2, 2, 2, 13, 0, 3, 3, 2, 2, 1, R, 1, 0, 0},
    {"dw 3x3x6 s2", 1, 3, 3, 6, 0, 3, 3, 2, 2, 1, NA, 1, 2, 0},
    {"dw 3x5x9 s2 valid", 2, 3, 5, 9, 0, 3, 3, 2, 2, 0, NA, 1, 0, 0},
    {"dw 2x2x3", 2, 2, 2, 3, 0, 3, 3, 1, 1, 1, R, 1, 0, 0},
    {"dw 4x4x12 5x3", 2, 4, 4, 12, 0, 5, 3, 1, 1, 1, R6, 1, 0, 0},
    {"dw 1x4x20 s2", 1, 1, 4, 20, 0, 3, 3, 2, 2, 1, NA, 1, 0, 0},
    {"dw 6x6x10 s1", 3, 6, 6, 10, 0, 3, 3, 1, 1, 1, R, 1, 3, 0},
    {"dw 8x8x4 s2", 1, 8, 8, 4, 0, 3, 3, 2, 2, 1, NA, 1, 0, 0},
    {"dw 2x2x256 s1 n16", 16, 2, 2, 256, 0, 3, 3, 1, 1, 1, NA, 1, 0, 0},
    {"dw 3x3x8 7x7", 2, 3, 3, 8, 0, 7, 7, 1, 1, 1, NA, 1, 0, 0},
    /* biases at the edges of their conversion (clamps, infinities, NaN, halves) */
    {"pw 2x2x8->20 edge biases", 1, 2, 2, 8, 20, 1, 1, 1, 1, 1, NA, 0, 0, 1},
    {"conv 3x3 6x6x4->16 edge biases", 1, 6, 6, 4, 16, 3, 3, 1, 1, 1, R6, 0, 0, 1},
    {"dw 2x2x36 edge biases", 1, 2, 2, 36, 0, 3, 3, 1, 1, 1, R, 1, 0, 1},
    {"dw 5x5x20 edge biases", 1, 5, 5, 20, 0, 3, 3, 1, 1, 1, NA, 1, 0, 1},
    /* no bias; a weight-gradient tap of 64 + 8 positions (chained pair lists) */
    {"dw 3x3x12 n8 no bias", 8, 3, 3, 12, 0, 3, 3, 1, 1, 1, R, 1, 0, 2},
    {"dw 1x1x40 no bias", 2, 1, 1, 40, 0, 3, 3, 1, 1, 1, NA, 1, 0, 2},
    {"pw 2x2x16->8 no bias", 2, 2, 2, 16, 8, 1, 1, 1, 1, 1, R, 0, 0, 2},
    {"conv 3x3 5x5x8->8 no bias", 1, 5, 5, 8, 8, 3, 3, 1, 1, 1, NA, 0, 0, 2},
};

static int run_all(void) {
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        run_case(&CASES[i]);
    }
    char line[80];
    char *p = put_str(line, "train-s8-exact ");
    p = put_int(p, g_cases);
    p = put_str(p, g_failed ? " cases, FAILED\n" : " cases ok\n");
    *p = '\0';
    say(line);
    return g_failed ? 1 : 0;
}

#if defined(__arm__)
int main(void) {
    board_exit(run_all());
    return 0;
}
#else
int main(void) {
    return run_all();
}
#endif
