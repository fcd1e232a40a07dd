/* pass_driver.c - drives the PASS runtime (firmware/src/pass/octo_pass.c) and the
 * box kernels for tests/python/test_pass_runtime.py.
 *
 * Linked with a generated file that defines g_octo_pass_model and
 *   const octo_pass_model_t *const g_pass_models[]; const uint32_t g_pass_n_models;
 * (model 0 is g_octo_pass_model).
 *
 * Host build (ASan/UBSan): one command per stdin line, one output line per command.
 *   frame <model> <mode> <hex frame>
 *       runs octo_pass_frame, then checks in C that every layer's out equals the dense
 *       kernel applied to its input (E if gated) over the whole tensor ->
 *       "frame <status> <was_dense> <bad layer|-1> <valid> <frames>" and per layer
 *       ";<out_pixels>,<changed>,<checked>,<gate_elements>,<macs>,<out>,<out_mask>,<E|->,<gate_map|->"
 *   dense <model> <hex frame>    the dense kernels chained on the frame -> "dense <status> <hex output>"
 *   reset <model>                octo_pass_reset -> "reset ok"
 *   bad <model> <case>           a corrupted copy of the model (or call) -> "bad <status> <valid after>"
 *                                or "bad na" when the model has no layer to corrupt that way
 *   box <seed> <count>           random box-kernel cases -> "box <failures> <hash>"
 *   selftest <seed>              seeded frames through every model -> "pass-selftest ..."
 * Bare-metal build (-DPASS_BARE, QEMU + semihosting): prints the box and selftest lines
 * of seed 1, then cost lines measured with SysTick, and exits 0 if nothing failed.
 */
#include <stdint.h>
#include <string.h>

#include "octo/octo_avgpool_s8.h"
#include "octo/octo_conv_s8.h"
#include "octo/octo_maxpool_s8.h"
#include "octo/octo_pass.h"
#include "octo/octo_qmath.h"

extern const octo_pass_model_t *const g_pass_models[];
extern const uint32_t g_pass_n_models;

#define MAX_MODELS 64u
#define MAX_LAYERS 32u
#ifdef PASS_BARE
#define REF_MAX (64u << 10)
#else
#define REF_MAX (1u << 20)
#endif

static octo_pass_state_t g_state[MAX_MODELS];
static octo_pass_layer_stats_t g_stats[MAX_LAYERS];
static int8_t g_ref[REF_MAX];

/* -- output ---------------------------------------------------------------------------------------------- */

static char *put_str(char *p, const char *s) {
    while (*s) {
        *p++ = *s++;
    }
    return p;
}

static char *put_uint(char *p, uint64_t v) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v != 0u);
    while (n > 0) {
        *p++ = tmp[--n];
    }
    return p;
}

static char *put_hex32(char *p, uint32_t v) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 7; i >= 0; i--) {
        *p++ = digits[(v >> (4 * i)) & 15u];
    }
    return p;
}

/* -- PRNG and hash --------------------------------------------------------------------------------------- */

static uint32_t g_rng = 1u;

static uint32_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 17;
    g_rng ^= g_rng << 5;
    return g_rng;
}

/* uniform-ish in [lo, hi] */
static int32_t rnd_in(int32_t lo, int32_t hi) { return lo + (int32_t)(rnd() % (uint32_t)(hi - lo + 1)); }

static uint32_t g_hash = 2166136261u;

static void hash_bytes(const void *p, size_t n) {
    const uint8_t *b = (const uint8_t *)p;
    for (size_t i = 0; i < n; i++) {
        g_hash = (g_hash ^ b[i]) * 16777619u;
    }
}

static void hash_u64(uint64_t v) { hash_bytes(&v, sizeof v); }

/* -- dense references ------------------------------------------------------------------------------------ */

static uint32_t bytes_of(const octo_dims_t *d) { return (uint32_t)(d->h * d->w * d->c); }

static int dense_layer(const octo_pass_layer_t *L, const int8_t *src, int8_t *dst) {
    if (L->kind == OCTO_PASS_CONV) {
        return octo_conv_s8_packed((const octo_conv_params_t *)L->params, L->rq, L->in_dims, src, L->filter_dims,
                                   L->wpack, L->bias_full, L->scratch, L->out_dims, dst);
    }
    if (L->kind == OCTO_PASS_MAXPOOL) {
        return octo_maxpool_s8((const octo_pool_params_t *)L->params, L->in_dims, src, L->out_dims, dst);
    }
    return octo_avgpool_s8((const octo_pool_params_t *)L->params, L->in_dims, src, L->out_dims, dst);
}

/* -1 if every layer's out equals the dense kernel on its input (E if gated), else the first bad layer. */
static int check_layers(const octo_pass_model_t *m) {
    for (uint32_t i = 0; i < m->n_layers; i++) {
        const octo_pass_layer_t *L = &m->layers[i];
        const uint32_t n = bytes_of(L->out_dims);
        if (n > REF_MAX || dense_layer(L, L->gate != NULL ? L->cache : L->in, g_ref) != OCTO_OK ||
            memcmp(g_ref, L->out, n) != 0) {
            return (int)i;
        }
    }
    return -1;
}

/* -- box kernels ----------------------------------------------------------------------------------------- */

#define BOX_HW 10
#define BOX_C 12
#define BOX_OC 11
#define BOX_K 4
#define BOX_OHW (BOX_HW + BOX_K - 1) /* output side: (H - 1 + pad) / stride + 1, pad < K */
#define BOX_LEN ((BOX_K * BOX_K * BOX_C + 3) & ~3)
static int8_t g_box_in[BOX_HW * BOX_HW * BOX_C];
static int8_t g_box_out[BOX_OHW * BOX_OHW * BOX_OC + 16];
static int8_t g_box_ref[BOX_OHW * BOX_OHW * BOX_OC];
static int16_t g_box_w[((BOX_OC + 3) / 4) * BOX_LEN * 4];
static int32_t g_box_bias[BOX_OC], g_box_mult[BOX_OC], g_box_shift[BOX_OC], g_box_merged[3 * BOX_OC];
static int8_t g_box_patch[BOX_LEN];

/* One random kernel configuration, its full output and random boxes; returns failures. */
static uint32_t box_case(void) {
    const uint32_t kind = rnd() % 3u;
    const int32_t H = rnd_in(1, BOX_HW), W = rnd_in(1, BOX_HW);
    const int32_t C = rnd_in(1, kind == 0u ? 9 : BOX_C);
    const int32_t kh = rnd_in(1, BOX_K), kw = rnd_in(1, BOX_K), sh = rnd_in(1, 3), sw = rnd_in(1, 3);
    const int32_t ph = rnd_in(0, kh - 1), pw = rnd_in(0, kw - 1);
    /* every output window meets the image (the last starts at most at H - 1) */
    const int32_t OH = (H - 1 + ph) / sh + 1, OW = (W - 1 + pw) / sw + 1;
    const int32_t OC = kind == 0u ? rnd_in(1, BOX_OC) : C;
    const octo_dims_t in_dims = {1, H, W, C}, out_dims = {1, OH, OW, OC}, filter_dims = {OC, kh, kw, C};
    int32_t lo = rnd_in(-128, 127), hi = rnd_in(-128, 127);
    if (rnd() % 2u) {
        lo = -128;
        hi = 127;
    } else if (lo > hi) {
        const int32_t t = lo;
        lo = hi;
        hi = t;
    }
    for (int32_t i = 0; i < H * W * C; i++) {
        g_box_in[i] = (int8_t)rnd_in(-128, 127);
    }
    octo_conv_params_t cp = {rnd_in(-127, 128), rnd_in(-128, 127), sh, sw, ph, pw, 1, 1, lo, hi};
    octo_pool_params_t pp = {sh, sw, ph, pw, kh, kw, lo, hi};
    octo_requant_t rq = {g_box_mult, g_box_shift, NULL};
    if (kind == 0u) {
        const int32_t len = octo_conv_s8_packed_patch_len(&filter_dims);
        for (int32_t i = 0; i < (OC + 3) / 4 * len * 4; i++) {
            g_box_w[i] = (int16_t)rnd_in(-128, 127);
        }
        const int32_t rq_kind = rnd_in(0, 2); /* 0: merged table, 1: right shifts, 2: some left shift */
        for (int32_t c = 0; c < OC; c++) {
            g_box_bias[c] = rnd_in(-40000, 40000);
            g_box_mult[c] = (int32_t)(0x40000000u + (rnd() & 0x3fffffffu));
            g_box_shift[c] = rq_kind == 2 && c == 0 ? 1 : rnd_in(-14, -6);
            octo_merged_constants(g_box_shift[c], &g_box_merged[3 * c]);
        }
        rq.merged = rq_kind == 0 ? g_box_merged : NULL;
    }
    int st;
    if (kind == 0u) {
        st = octo_conv_s8_packed(&cp, &rq, &in_dims, g_box_in, &filter_dims, g_box_w, g_box_bias, g_box_patch,
                                 &out_dims, g_box_ref);
    } else if (kind == 1u) {
        st = octo_maxpool_s8(&pp, &in_dims, g_box_in, &out_dims, g_box_ref);
    } else {
        st = octo_avgpool_s8(&pp, &in_dims, g_box_in, &out_dims, g_box_ref);
    }
    uint32_t bad = st != OCTO_OK;
    const int32_t n = OH * OW * OC;
    hash_bytes(g_box_ref, (size_t)n);
    for (int b = 0; b < 12; b++) {
        int32_t oy0 = rnd_in(0, OH), oy1 = rnd_in(oy0, OH), ox0 = rnd_in(0, OW), ox1 = rnd_in(ox0, OW);
        int expect = OCTO_OK;
        if (b == 0) { /* the whole tensor */
            oy0 = 0, oy1 = OH, ox0 = 0, ox1 = OW;
        } else if (b >= 9) { /* invalid boxes: reversed, past the end, negative */
            expect = OCTO_E_ARG;
            if (b == 9) {
                oy0 = oy1 + 1;
            } else if (b == 10) {
                ox1 = OW + 1;
            } else {
                oy0 = -1;
            }
        }
        memset(g_box_out, 0x5a, sizeof g_box_out);
        if (kind == 0u) {
            st = octo_conv_s8_packed_box(&cp, &rq, &in_dims, g_box_in, &filter_dims, g_box_w, g_box_bias, g_box_patch,
                                         &out_dims, g_box_out, oy0, oy1, ox0, ox1);
        } else if (kind == 1u) {
            st = octo_maxpool_s8_box(&pp, &in_dims, g_box_in, &out_dims, g_box_out, oy0, oy1, ox0, ox1);
        } else {
            st = octo_avgpool_s8_box(&pp, &in_dims, g_box_in, &out_dims, g_box_out, oy0, oy1, ox0, ox1);
        }
        bad += st != expect;
        for (int32_t i = 0; i < (int32_t)sizeof g_box_out; i++) {
            const int32_t pix = i / OC, oy = pix / OW, ox = pix % OW;
            const int inside = expect == OCTO_OK && i < n && oy >= oy0 && oy < oy1 && ox >= ox0 && ox < ox1;
            if (g_box_out[i] != (inside ? g_box_ref[i] : 0x5a)) {
                bad++;
                break;
            }
        }
    }
    return bad;
}

static uint32_t box_test(uint32_t seed, uint32_t count, uint32_t *hash) {
    g_rng = seed ? seed : 1u;
    g_hash = 2166136261u;
    uint32_t bad = 0;
    for (uint32_t i = 0; i < count; i++) {
        bad += box_case();
    }
    *hash = g_hash;
    return bad;
}

/* -- seeded frame sequences (bare metal and host alike) ---------------------------------------------------- */

static void hash_model(const octo_pass_model_t *m) {
    for (uint32_t i = 0; i < m->n_layers; i++) {
        const octo_pass_layer_t *L = &m->layers[i];
        hash_bytes(L->out, bytes_of(L->out_dims));
        hash_bytes(L->out_mask, (size_t)(L->out_dims->h * L->out_dims->w));
        if (L->gate != NULL) {
            const int32_t P = L->gate->patch;
            hash_bytes(L->cache, bytes_of(L->in_dims));
            hash_bytes(L->gate_map, (size_t)(((L->in_dims->h + P - 1) / P) * ((L->in_dims->w + P - 1) / P)));
        }
        const octo_pass_layer_stats_t *s = &g_stats[i];
        hash_u64(s->out_pixels);
        hash_u64(s->patches_changed);
        hash_u64(s->patches_checked);
        hash_u64(s->gate_elements);
        hash_u64(s->macs);
    }
}

/* Changes the frame: 0 a random rectangle, 1 sparse noise, 2 nothing, 3 everything. */
static void perturb(const octo_pass_model_t *m, uint32_t how) {
    const octo_dims_t *d = m->layers[0].in_dims;
    int8_t *x = m->input;
    if (how == 0u) {
        const int32_t y0 = rnd_in(0, d->h - 1), x0 = rnd_in(0, d->w - 1);
        const int32_t y1 = rnd_in(y0 + 1, d->h < y0 + 6 ? d->h : y0 + 6);
        const int32_t x1 = rnd_in(x0 + 1, d->w < x0 + 6 ? d->w : x0 + 6);
        for (int32_t y = y0; y < y1; y++) {
            for (int32_t k = (y * d->w + x0) * d->c; k < (y * d->w + x1) * d->c; k++) {
                x[k] = (int8_t)rnd_in(-128, 127);
            }
        }
    } else if (how == 1u) {
        for (uint32_t k = 0; k < m->input_bytes; k++) {
            if (rnd() % 16u == 0u) {
                const int32_t v = x[k] + rnd_in(-3, 3);
                x[k] = (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
            }
        }
    } else if (how == 3u) {
        for (uint32_t k = 0; k < m->input_bytes; k++) {
            x[k] = (int8_t)rnd_in(-128, 127);
        }
    }
}

/* Every model through `frames` seeded frames in mixed modes; returns failures. */
static uint32_t selftest(uint32_t seed, uint32_t frames, uint32_t *hash, uint32_t *dense_frames) {
    g_rng = seed ? seed : 1u;
    g_hash = 2166136261u;
    uint32_t bad = 0, nd = 0;
    for (uint32_t mi = 0; mi < g_pass_n_models && mi < MAX_MODELS; mi++) {
        const octo_pass_model_t *m = g_pass_models[mi];
        octo_pass_state_t *st = &g_state[mi];
        if (m->n_layers > MAX_LAYERS) {
            return bad + 1u;
        }
        octo_pass_reset(st);
        perturb(m, 3u);
        for (uint32_t f = 0; f < frames; f++) {
            if (f > 0u) {
                const uint32_t r = rnd() % 16u;
                perturb(m, r < 7u ? 0u : r < 12u ? 1u : r < 15u ? 2u : 3u);
            }
            if (f == frames / 2u) {
                octo_pass_reset(st);
            }
            const uint32_t r = rnd() % 8u;
            const uint32_t mode = r < 4u ? OCTO_PASS_AUTO : r < 7u ? OCTO_PASS_EXACT : OCTO_PASS_DENSE;
            uint32_t dense = 0;
            const int status = octo_pass_frame(m, st, mode, g_stats, &dense, NULL, NULL);
            bad += status != OCTO_OK;
            bad += check_layers(m) != -1;
            nd += dense;
            hash_u64(dense);
            hash_model(m);
        }
    }
    *hash = g_hash;
    *dense_frames = nd;
    return bad;
}

static char *selftest_line(char *p, uint32_t seed, uint32_t frames, uint32_t *bad) {
    uint32_t hash = 0, nd = 0;
    *bad = selftest(seed, frames, &hash, &nd);
    p = put_str(p, "pass-selftest models=");
    p = put_uint(p, g_pass_n_models);
    p = put_str(p, " frames=");
    p = put_uint(p, frames);
    p = put_str(p, " dense=");
    p = put_uint(p, nd);
    p = put_str(p, " bad=");
    p = put_uint(p, *bad);
    p = put_str(p, " hash=");
    return put_hex32(p, hash);
}

static char *box_line(char *p, uint32_t seed, uint32_t count, uint32_t *bad) {
    uint32_t hash = 0;
    *bad = box_test(seed, count, &hash);
    p = put_str(p, "box ");
    p = put_uint(p, *bad);
    p = put_str(p, " ");
    return put_hex32(p, hash);
}

#define SELFTEST_FRAMES 24u
#define BOX_CASES 400u

#ifdef PASS_BARE
/* -- bare metal: semihosting, SysTick cost lines ----------------------------------------------------------- */

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

#include "bare_semihost.h"

BARE_SEMIHOST_HOOKS("pass-driver")

typedef struct {
    uint32_t last, gate, layer;
} ticks_t;

static void tick_hook(void *ctx, uint32_t id) {
    ticks_t *t = (ticks_t *)ctx;
    const uint32_t now = SYST_CVR;
    const uint32_t d = (t->last - now) & 0xFFFFFFu; /* SysTick counts down */
    if (id & OCTO_PASS_HOOK_GATE) {
        t->gate += d;
    } else {
        t->layer += d;
    }
    t->last = now;
}

/* One timed frame of model 0 -> " name=<gate ticks>+<layer ticks>/<out pixels>". */
static char *timed(char *p, const char *name, uint32_t mode, uint32_t *bad) {
    const octo_pass_model_t *m = g_pass_models[0];
    ticks_t t = {0, 0, 0};
    SYST_CVR = 0;
    t.last = SYST_CVR;
    const int status = octo_pass_frame(m, &g_state[0], mode, g_stats, NULL, tick_hook, &t);
    *bad += status != OCTO_OK;
    *bad += check_layers(m) != -1;
    uint64_t pixels = 0;
    for (uint32_t i = 0; i < m->n_layers; i++) {
        pixels += g_stats[i].out_pixels;
    }
    p = put_str(p, " ");
    p = put_str(p, name);
    p = put_str(p, "=");
    p = put_uint(p, t.gate);
    p = put_str(p, "+");
    p = put_uint(p, t.layer);
    p = put_str(p, "/");
    return put_uint(p, pixels);
}

int main(void) {
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 0x5u; /* enable, processor clock, no interrupt */
    static char line[512];
    uint32_t bad = 0, b;
    char *p = box_line(line, 1u, BOX_CASES, &b);
    bad += b;
    *p++ = '\n';
    *p = '\0';
    say(line);
    p = selftest_line(line, 1u, SELFTEST_FRAMES, &b);
    bad += b;
    *p++ = '\n';
    *p = '\0';
    say(line);
    /* cost of model 0, ticks of 40 instructions: gates + layers / output pixels recomputed */
    const octo_pass_model_t *m = g_pass_models[0];
    const octo_dims_t *d = m->layers[0].in_dims;
    g_rng = 99u;
    perturb(m, 3u);
    octo_pass_reset(&g_state[0]);
    p = put_str(line, "pass-cost");
    p = timed(p, "dense", OCTO_PASS_AUTO, &bad);
    p = timed(p, "same_auto", OCTO_PASS_AUTO, &bad);
    p = timed(p, "same_exact", OCTO_PASS_EXACT, &bad);
    for (int32_t y = 0; y < 8 && y < d->h; y++) { /* an 8x8 square changes */
        for (int32_t k = y * d->w * d->c; k < (y * d->w + (d->w < 8 ? d->w : 8)) * d->c; k++) {
            m->input[k] = (int8_t)(m->input[k] ^ 0x55);
        }
    }
    p = timed(p, "square_exact", OCTO_PASS_EXACT, &bad);
    perturb(m, 1u);
    p = timed(p, "noise_auto", OCTO_PASS_AUTO, &bad);
    p = timed(p, "dense_mode", OCTO_PASS_DENSE, &bad);
    p = put_str(p, bad ? " bad\n" : " ok\n");
    *p = '\0';
    say(line);
    board_exit(bad ? 1 : 0);
    return 0;
}

#else
/* -- host: the line protocol ------------------------------------------------------------------------------ */
#include <stdio.h>
#include <stdlib.h>

#include "hex_digit.h"

static int8_t g_ref2[REF_MAX];

static char *put_int(char *p, int64_t v) {
    if (v < 0) {
        *p++ = '-';
        return put_uint(p, (uint64_t)(-(v + 1)) + 1u);
    }
    return put_uint(p, (uint64_t)v);
}

/* The dense chain on frame; *out = the final tensor (in g_ref or g_ref2). */
static int dense_chain(const octo_pass_model_t *m, const int8_t *frame, const int8_t **out) {
    const int8_t *src = frame;
    for (uint32_t i = 0; i < m->n_layers; i++) {
        const octo_pass_layer_t *L = &m->layers[i];
        int8_t *dst = (i & 1u) ? g_ref2 : g_ref;
        if (bytes_of(L->out_dims) > REF_MAX) {
            return OCTO_E_BUF;
        }
        const int st = dense_layer(L, src, dst);
        if (st != OCTO_OK) {
            return st;
        }
        src = dst;
    }
    *out = src;
    return OCTO_OK;
}

/* -- malformed models ------------------------------------------------------------------------------------ */

static octo_pass_layer_t g_bad_layers[MAX_LAYERS];
static octo_pass_model_t g_bad_model;
static octo_dims_t g_bad_dims;
static octo_pass_gate_t g_bad_gate;
static octo_conv_params_t g_bad_conv;
static octo_pool_params_t g_bad_pool;
static octo_requant_t g_bad_rq;

static int first_of(const octo_pass_model_t *m, int gated, uint32_t kind) {
    for (uint32_t i = 0; i < m->n_layers; i++) {
        if ((!gated || m->layers[i].gate != NULL) && (kind == 0u || m->layers[i].kind == kind)) {
            return (int)i;
        }
    }
    return -1;
}

static void set_params_stride0(octo_pass_layer_t *L) {
    if (L->kind == OCTO_PASS_CONV) {
        g_bad_conv = *(const octo_conv_params_t *)L->params;
        g_bad_conv.stride_w = 0;
        L->params = &g_bad_conv;
    } else {
        g_bad_pool = *(const octo_pool_params_t *)L->params;
        g_bad_pool.stride_h = 0;
        L->params = &g_bad_pool;
    }
}

static void set_params_pad(octo_pass_layer_t *L) {
    if (L->kind == OCTO_PASS_CONV) {
        g_bad_conv = *(const octo_conv_params_t *)L->params;
        g_bad_conv.pad_h = L->filter_dims->h;
        L->params = &g_bad_conv;
    } else {
        g_bad_pool = *(const octo_pool_params_t *)L->params;
        g_bad_pool.pad_w = g_bad_pool.filter_w;
        L->params = &g_bad_pool;
    }
}

/* Applies the corruption `what` to the copy; returns 0 if it does not apply to this model. */
static int corrupt(const octo_pass_model_t *m, const char *what, const octo_pass_model_t **mp, octo_pass_state_t **stp,
                   uint32_t *mode) {
    const uint32_t n = m->n_layers;
    octo_pass_layer_t *first = &g_bad_layers[0], *last = &g_bad_layers[n - 1];
    const int gi = first_of(m, 1, 0u), ci = first_of(m, 0, OCTO_PASS_CONV);
    octo_pass_layer_t *gated = gi >= 0 ? &g_bad_layers[gi] : NULL, *conv = ci >= 0 ? &g_bad_layers[ci] : NULL;
    if (!strcmp(what, "none")) {
    } else if (!strcmp(what, "null_model")) {
        *mp = NULL;
    } else if (!strcmp(what, "null_state")) {
        *stp = NULL;
    } else if (!strcmp(what, "mode3")) {
        *mode = 3u;
    } else if (!strcmp(what, "n_layers0")) {
        g_bad_model.n_layers = 0;
    } else if (!strcmp(what, "layers_null")) {
        g_bad_model.layers = NULL;
    } else if (!strcmp(what, "input_mismatch")) {
        g_bad_model.input = first->out;
    } else if (!strcmp(what, "input_bytes")) {
        g_bad_model.input_bytes += 1u;
    } else if (!strcmp(what, "output_mismatch")) {
        g_bad_model.output = first->in;
    } else if (!strcmp(what, "output_bytes")) {
        g_bad_model.output_bytes -= 1u;
    } else if (!strcmp(what, "chain_dims")) {
        g_bad_dims = *last->in_dims;
        g_bad_dims.h += 1;
        last->in_dims = &g_bad_dims;
    } else if (!strcmp(what, "chain_ptr")) {
        if (n < 2u) {
            return 0;
        }
        last->in = last->out;
    } else if (!strcmp(what, "batch2")) {
        g_bad_dims = *first->out_dims;
        g_bad_dims.n = 2;
        first->out_dims = &g_bad_dims;
    } else if (!strcmp(what, "width0")) {
        g_bad_dims = *first->in_dims;
        g_bad_dims.w = 0;
        first->in_dims = &g_bad_dims;
    } else if (!strcmp(what, "huge_dims")) {
        g_bad_dims = *last->out_dims;
        g_bad_dims.h = 70000;
        last->out_dims = &g_bad_dims;
    } else if (!strcmp(what, "window_out")) { /* out rows whose windows start below the image */
        g_bad_dims = *last->out_dims;
        g_bad_dims.h += 4 * last->in_dims->h + 8;
        last->out_dims = &g_bad_dims;
        g_bad_model.output_bytes = (uint32_t)(g_bad_dims.h * g_bad_dims.w * g_bad_dims.c);
    } else if (!strcmp(what, "null_in")) {
        first->in = NULL;
    } else if (!strcmp(what, "null_out")) {
        last->out = NULL;
        g_bad_model.output = NULL;
    } else if (!strcmp(what, "null_mask")) {
        last->out_mask = NULL;
    } else if (!strcmp(what, "null_params")) {
        last->params = NULL;
    } else if (!strcmp(what, "kind")) {
        last->kind = 9u;
    } else if (!strcmp(what, "stride0")) {
        set_params_stride0(last);
    } else if (!strcmp(what, "pad_ge_k")) {
        set_params_pad(last);
    } else if (!strncmp(what, "gate_", 5)) {
        if (gated == NULL) {
            return 0;
        }
        g_bad_gate = *gated->gate;
        gated->gate = &g_bad_gate;
        if (!strcmp(what, "gate_patch0")) {
            g_bad_gate.patch = 0;
        } else if (!strcmp(what, "gate_sample0")) {
            g_bad_gate.sample = 0;
        } else if (!strcmp(what, "gate_null_cache")) {
            gated->cache = NULL;
        } else if (!strcmp(what, "gate_null_map")) {
            gated->gate_map = NULL;
        } else {
            return -1;
        }
    } else if (!strncmp(what, "conv_", 5)) {
        if (conv == NULL) {
            return 0;
        }
        if (!strcmp(what, "conv_null_wpack")) {
            conv->wpack = NULL;
        } else if (!strcmp(what, "conv_null_bias")) {
            conv->bias_full = NULL;
        } else if (!strcmp(what, "conv_null_rq")) {
            conv->rq = NULL;
        } else if (!strcmp(what, "conv_null_mult")) {
            g_bad_rq = *conv->rq;
            g_bad_rq.multiplier = NULL;
            conv->rq = &g_bad_rq;
        } else if (!strcmp(what, "conv_null_scratch")) {
            conv->scratch = NULL;
        } else if (!strcmp(what, "conv_null_filter")) {
            conv->filter_dims = NULL;
        } else if (!strcmp(what, "conv_filter_c")) {
            g_bad_dims = *conv->filter_dims;
            g_bad_dims.c += 1;
            conv->filter_dims = &g_bad_dims;
        } else if (!strcmp(what, "conv_filter_n")) {
            g_bad_dims = *conv->filter_dims;
            g_bad_dims.n += 1;
            conv->filter_dims = &g_bad_dims;
        } else if (!strcmp(what, "conv_dilation")) {
            g_bad_conv = *(const octo_conv_params_t *)conv->params;
            g_bad_conv.dilation_h = 2;
            conv->params = &g_bad_conv;
        } else {
            return -1;
        }
    } else {
        return -1;
    }
    return 1;
}

/* Runs one good frame (state valid), then the corrupted call. *valid_after: the state's
 * valid flag after it. Returns the corrupted call's status, or 1 (not applicable), 2 (unknown). */
static int bad_case(const octo_pass_model_t *m, const char *what, uint32_t *valid_after) {
    static octo_pass_state_t st;
    if (m->n_layers > MAX_LAYERS) {
        return 2;
    }
    octo_pass_reset(&st);
    memset(m->input, 3, m->input_bytes);
    if (octo_pass_frame(m, &st, OCTO_PASS_AUTO, g_stats, NULL, NULL, NULL) != OCTO_OK || st.valid != 1u) {
        return 3;
    }
    memcpy(g_bad_layers, m->layers, m->n_layers * sizeof m->layers[0]);
    g_bad_model = *m;
    g_bad_model.layers = g_bad_layers;
    const octo_pass_model_t *mp = &g_bad_model;
    octo_pass_state_t *stp = &st;
    uint32_t mode = OCTO_PASS_AUTO;
    const int applies = corrupt(m, what, &mp, &stp, &mode);
    if (applies <= 0) {
        return applies == 0 ? 1 : 2;
    }
    uint32_t dense = 7u;
    const int status = octo_pass_frame(mp, stp, mode, g_stats, &dense, NULL, NULL);
    *valid_after = st.valid;
    return status;
}

#define LINE_MAX_CHARS (8u << 20)
static char g_line[LINE_MAX_CHARS + 2];
static char g_outbuf[16u << 20];

static int parse_hex(const char *s, int8_t *dst, size_t n) {
    if (s == NULL || strlen(s) != 2u * n) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        const int hi = hex_val(s[2 * i]), lo = hex_val(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return 0;
        }
        dst[i] = (int8_t)(uint8_t)(hi * 16 + lo);
    }
    return 1;
}

static char *put_hex(char *p, const void *src, size_t n) {
    static const char digits[] = "0123456789abcdef";
    const uint8_t *b = (const uint8_t *)src;
    for (size_t i = 0; i < n; i++) {
        *p++ = digits[b[i] >> 4];
        *p++ = digits[b[i] & 15u];
    }
    return p;
}

static const octo_pass_model_t *model_arg(const char *tok) {
    if (tok == NULL) {
        return NULL;
    }
    const long i = strtol(tok, NULL, 10);
    return i >= 0 && (uint32_t)i < g_pass_n_models && (uint32_t)i < MAX_MODELS ? g_pass_models[i] : NULL;
}

static char *cmd_frame(char *p, const octo_pass_model_t *m, octo_pass_state_t *st) {
    const char *mode_tok = strtok(NULL, " ");
    const char *hex = strtok(NULL, " ");
    if (mode_tok == NULL || m->n_layers > MAX_LAYERS || !parse_hex(hex, m->input, m->input_bytes)) {
        return put_str(p, "!bad frame arguments");
    }
    uint32_t dense = 0;
    const int status = octo_pass_frame(m, st, (uint32_t)strtoul(mode_tok, NULL, 10), g_stats, &dense, NULL, NULL);
    p = put_str(p, "frame ");
    p = put_int(p, status);
    p = put_str(p, " ");
    p = put_uint(p, dense);
    p = put_str(p, " ");
    p = put_int(p, check_layers(m));
    p = put_str(p, " ");
    p = put_uint(p, st->valid);
    p = put_str(p, " ");
    p = put_uint(p, st->frames);
    for (uint32_t i = 0; i < m->n_layers; i++) {
        const octo_pass_layer_t *L = &m->layers[i];
        const octo_pass_layer_stats_t *s = &g_stats[i];
        p = put_str(p, ";");
        p = put_uint(p, s->out_pixels);
        p = put_str(p, ",");
        p = put_uint(p, s->patches_changed);
        p = put_str(p, ",");
        p = put_uint(p, s->patches_checked);
        p = put_str(p, ",");
        p = put_uint(p, s->gate_elements);
        p = put_str(p, ",");
        p = put_uint(p, s->macs);
        p = put_str(p, ",");
        p = put_hex(p, L->out, bytes_of(L->out_dims));
        p = put_str(p, ",");
        p = put_hex(p, L->out_mask, (size_t)(L->out_dims->h * L->out_dims->w));
        p = put_str(p, ",");
        if (L->gate != NULL) {
            const int32_t P = L->gate->patch;
            p = put_hex(p, L->cache, bytes_of(L->in_dims));
            p = put_str(p, ",");
            p = put_hex(p, L->gate_map, (size_t)(((L->in_dims->h + P - 1) / P) * ((L->in_dims->w + P - 1) / P)));
        } else {
            p = put_str(p, "-,-");
        }
    }
    return p;
}

int main(void) {
    while (fgets(g_line, sizeof g_line, stdin) != NULL) {
        g_line[strcspn(g_line, "\r\n")] = '\0';
        char *p = g_outbuf;
        const char *cmd = strtok(g_line, " ");
        if (cmd == NULL) {
            p = put_str(p, "!bad empty line");
        } else if (!strcmp(cmd, "frame") || !strcmp(cmd, "dense") || !strcmp(cmd, "reset") || !strcmp(cmd, "bad")) {
            const char *tok = strtok(NULL, " ");
            const octo_pass_model_t *m = model_arg(tok);
            if (m == NULL) {
                p = put_str(p, "!bad model");
            } else if (!strcmp(cmd, "frame")) {
                p = cmd_frame(p, m, &g_state[strtol(tok, NULL, 10)]);
            } else if (!strcmp(cmd, "reset")) {
                octo_pass_reset(&g_state[strtol(tok, NULL, 10)]);
                p = put_str(p, "reset ok");
            } else if (!strcmp(cmd, "dense")) {
                static int8_t frame[REF_MAX];
                const int8_t *out = NULL;
                if (m->input_bytes > REF_MAX || !parse_hex(strtok(NULL, " "), frame, m->input_bytes)) {
                    p = put_str(p, "!bad dense arguments");
                } else {
                    const int status = dense_chain(m, frame, &out);
                    p = put_str(p, "dense ");
                    p = put_int(p, status);
                    p = put_str(p, " ");
                    p = status == OCTO_OK ? put_hex(p, out, m->output_bytes) : put_str(p, "-");
                }
            } else {
                const char *what = strtok(NULL, " ");
                uint32_t valid = 9u;
                const int status = what != NULL ? bad_case(m, what, &valid) : 2;
                if (status == 1) {
                    p = put_str(p, "bad na");
                } else if (status >= 2) {
                    p = put_str(p, "!bad case");
                } else {
                    p = put_str(p, "bad ");
                    p = put_int(p, status);
                    p = put_str(p, " ");
                    p = put_uint(p, valid);
                }
            }
        } else if (!strcmp(cmd, "box") || !strcmp(cmd, "selftest")) {
            const char *a = strtok(NULL, " "), *b = strtok(NULL, " ");
            const uint32_t seed = a != NULL ? (uint32_t)strtoul(a, NULL, 10) : 1u;
            uint32_t bad = 0;
            if (!strcmp(cmd, "box")) {
                p = box_line(p, seed, b != NULL ? (uint32_t)strtoul(b, NULL, 10) : BOX_CASES, &bad);
            } else {
                p = selftest_line(p, seed, b != NULL ? (uint32_t)strtoul(b, NULL, 10) : SELFTEST_FRAMES, &bad);
            }
        } else {
            p = put_str(p, "!bad command");
        }
        *p++ = '\n';
        *p = '\0';
        fputs(g_outbuf, stdout);
        fflush(stdout);
    }
    return 0;
}
#endif
