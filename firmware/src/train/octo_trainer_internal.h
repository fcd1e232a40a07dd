/*
 * octo_trainer_internal.h - what the training engine's files share (private to
 * src/train/octo_trainer*): the state blob's header fields, the INT8 master
 * weight constants and their hi/lo planes, the per-call context (ctx_t), the
 * optimizer's fixed-point coefficients (upd_t) and the small arena accessors.
 *   octo_trainer_state.c       bind, init, commit, stage, step count, learning rate
 *   octo_trainer.c             one translation unit of the three parts that run a step:
 *     octo_trainer_forward.inc   forward pass, loss; octo_trainer_forward / _eval
 *     octo_trainer_update.inc    the optimizers (SGD-momentum FP32, INT8 fixed point)
 *     octo_trainer_backward.inc  output gradients, LAC backward, weight and input
 *                                gradients; octo_trainer_backward / _step
 */
#ifndef OCTO_TRAINER_INTERNAL_H
#define OCTO_TRAINER_INTERNAL_H

#include <string.h>

#include "octo/octo_trainer.h"
#include "octo_train_internal.h"

/* State blob header fields (byte offsets, docs/TRAINING.md). */
enum {
    H_MAGIC = 0,
    H_FINGERPRINT = 4,
    H_CONFIG = 8,
    H_STEP = 12,
    H_PRNG = 16,
    H_FLAGS = 20,
    H_INIT = 24,
    H_SEED = 28,
    H_LR = 32,
    H_MOMENTUM = 36,
    H_WD = 40,
    H_INPUT_SCALE = 44,
    H_PRC_K = 48,
    H_LAC_L2 = 52,
    H_TARGET_SCALE = 56 /* MSE with targets; 0 otherwise (was reserved) */
};

/* Runtime floats per layer (not state). */
enum {
    RT_Y = 0,  /* INT8: output scale */
    RT_DZ = 1, /* INT8: output-gradient scale */
    RT_GS = 2, /* INT8: weight-gradient scale */
    RT_GP = 3, /* INT8: scale of the partial output-gradient sum (layers read by several) */
    RT_COUNT = 4
};

/* INT8 master weights: M = hi*256 + lo (two int8 planes, lo in [-128, 127]), so hi = round(M/256) is the
 * int8 working copy the kernels read, at scale 256x the master's. |M| stays <= W_LIMIT (hi within +-127);
 * when max |M| leaves [W_LOW, W_HIGH] the masters are rescaled to W_TARGET (hi keeps 7 significant bits). */
#define W_LIMIT 32639
#define W_HIGH 31500
#define W_LOW 24000
#define W_TARGET 28000.0f
#define LAC_GAMMA_MAX 0.5f
/* A quantization range follows the largest recent value: max(this step's statistic, RANGE_DECAY * the
 * previous range), so one small batch (an epoch's last) cannot shrink it and saturate the next. */
#define RANGE_DECAY 0.95f /* the learned gain 1 + gamma stays within [0.5, 1.5] */

typedef struct {
    const octo_train_model_t *m;
    const octo_trainer_t *t;
    uint8_t *a;
    octo_train_hparams_t hp;
    octo_train_prng_t prng;
    uint32_t n;  /* samples in this batch */
    int train;   /* 1 = training step (stochastic rounding, ranges updated), 0 = eval */
    void *dx_to; /* non-NULL: input gradients go here (batch-major) instead of over the saved outputs */
} ctx_t;

/* The helpers below are static (not inline) as they were in the single-file engine, so each file's
 * compiler decides their inlining exactly as before the split; a file may not use them all. */
#define HELPER __attribute__((unused)) static

/* --- profiling --------------------------------------------------------------------------------- */

HELPER uint64_t prof_now(const ctx_t *c) {
    return c->t->clock != NULL ? c->t->clock() : 0u;
}
HELPER void prof_add(const ctx_t *c, uint32_t l, uint32_t slot, uint64_t since) {
    if (c->t->profile != NULL && c->t->clock != NULL) {
        c->t->profile[l * OCTO_TRAIN_PHASE_COUNT + slot] += (uint32_t)(c->t->clock() - since);
    }
}

/* --- small helpers ----------------------------------------------------------------------------- */

HELPER uint32_t rd32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
HELPER void wr32(uint8_t *p, uint32_t v) {
    memcpy(p, &v, 4);
}
HELPER float rdf(const uint8_t *p) {
    float v;
    memcpy(&v, p, 4);
    return v;
}
HELPER void wrf(uint8_t *p, float v) {
    memcpy(p, &v, 4);
}

#define AT(c, off, type) ((type *)(void *)((c)->a + (off)))

HELPER float absf(float v) {
    return v < 0.0f ? -v : v;
}

HELPER float uniform(octo_train_prng_t *r) {
    return (float)(octo_train_prng_next(r) >> 8) * (1.0f / 16777216.0f);
}

HELPER int32_t elems(const octo_dims_t *d) {
    return d->h * d->w * d->c;
}
HELPER int32_t w_count(const octo_train_layer_t *L) {
    return L->w.n * L->w.h * L->w.w * L->w.c;
}
HELPER int has_weights(const octo_train_layer_t *L) {
    return L->kind == OCTO_TRAIN_LAYER_CONV || L->kind == OCTO_TRAIN_LAYER_DEPTHWISE_CONV ||
           L->kind == OCTO_TRAIN_LAYER_FULLY_CONNECTED;
}
HELPER int32_t out_channels(const octo_train_layer_t *L) {
    return L->kind == OCTO_TRAIN_LAYER_DEPTHWISE_CONV ? L->w.c : L->w.n;
}
/* Output channel of weight element i. */
HELPER int32_t w_channel(const octo_train_layer_t *L, int32_t i) {
    return L->kind == OCTO_TRAIN_LAYER_DEPTHWISE_CONV ? i % L->w.c : i / (L->w.h * L->w.w * L->w.c);
}
HELPER octo_dims_t batch_dims(const octo_dims_t *d, int32_t n) {
    octo_dims_t r = *d;
    r.n = n;
    return r;
}
HELPER float *rt(const ctx_t *c, uint32_t l) {
    return AT(c, c->m->rt_off, float) + l * RT_COUNT;
}
HELPER float *scal(const ctx_t *c, const octo_train_layer_t *L) {
    return AT(c, L->scal_off, float);
}
HELPER int lac_on(const ctx_t *c, const octo_train_layer_t *L) {
    return c->m->precision == OCTO_TRAIN_PREC_INT8 && (c->hp.flags & OCTO_TRAIN_FLAG_LAC) != 0u &&
           L->lac_off != OCTO_TRAIN_NONE;
}
HELPER int8_t *slot8(const ctx_t *c, uint32_t off, const octo_dims_t *d, uint32_t s) {
    return AT(c, off, int8_t) + (size_t)s * (size_t)elems(d);
}
HELPER float *slotf(const ctx_t *c, uint32_t off, const octo_dims_t *d, uint32_t s) {
    return AT(c, off, float) + (size_t)s * (size_t)elems(d);
}
/* Scale of the output of layer src (OCTO_TRAIN_INPUT: the staged samples). */
HELPER float src_scale(const ctx_t *c, uint32_t src) {
    return src == OCTO_TRAIN_INPUT ? c->hp.input_scale : rt(c, src)[RT_Y];
}
/* Scale of layer l's (first) input. */
HELPER float x_scale(const ctx_t *c, uint32_t l) {
    return src_scale(c, c->m->layers[l].src[0]);
}
/* Weights per output channel, and of the trained channels [0, train_oc) (the momentum's length). */
HELPER int32_t w_trained(const octo_train_layer_t *L) {
    return L->train_oc * (w_count(L) / out_channels(L));
}
/* FP32 weights the kernels use: in the state, or frozen in flash. */
HELPER const float *wf_of(const ctx_t *c, const octo_train_layer_t *L) {
    return L->w_off == OCTO_TRAIN_NONE ? (const float *)L->flash_w : AT(c, L->w_off, float);
}
/* int8 weights the kernels use: the working copy (trainable), the frozen state, or frozen in flash (the
 * kernels only read weights). */
HELPER octo_train_q8_t w8_of(const ctx_t *c, uint32_t l) {
    const octo_train_layer_t *L = &c->m->layers[l];
    octo_train_q8_t q;
    if (L->w_off == OCTO_TRAIN_NONE) {
        q.data = (int8_t *)(uintptr_t)L->flash_w;
        q.scale = L->flash_ws;
        return q;
    }
    q.data = AT(c, L->w_off, int8_t); /* trainable: the hi plane of the masters */
    q.scale = scal(c, L)[OCTO_TS_W_SCALE];
    if (L->train_w) {
        q.scale *= 256.0f;
    }
    return q;
}

HELPER void load_hparams(ctx_t *c) {
    const uint8_t *h = c->a;
    c->hp.seed = rd32(h + H_SEED);
    c->hp.init = rd32(h + H_INIT);
    c->hp.flags = rd32(h + H_FLAGS);
    c->hp.lr = rdf(h + H_LR);
    c->hp.momentum = rdf(h + H_MOMENTUM);
    c->hp.weight_decay = rdf(h + H_WD);
    c->hp.input_scale = rdf(h + H_INPUT_SCALE);
    c->hp.prc_k = rdf(h + H_PRC_K);
    c->hp.lac_l2 = rdf(h + H_LAC_L2);
    c->hp.target_scale = rdf(h + H_TARGET_SCALE);
    c->prng.state = rd32(h + H_PRNG);
}

HELPER void ctx_open(ctx_t *c, const octo_trainer_t *t, uint32_t n, int train) {
    c->m = t->m;
    c->t = t;
    c->a = t->arena;
    c->n = n;
    c->train = train;
    c->dx_to = NULL;
    load_hparams(c);
}

/* --- INT8 weights: masters as hi/lo int8 planes ------------------------------------------------- */

/* A trainable INT8 layer keeps master M of weight i as hi[i] = round(M / 256) (the working copy) and
 * lo[i] = M - 256 * hi[i] in [-128, 127]; the lo plane follows the hi plane. */
static inline int32_t master_get(const int8_t *hi, const int8_t *lo, int32_t i) {
    return (int32_t)hi[i] * 256 + (int32_t)lo[i];
}
static inline void master_put(int8_t *hi, int8_t *lo, int32_t i, int32_t m) {
    const int32_t h = (m + 128) >> 8;
    hi[i] = (int8_t)h;
    lo[i] = (int8_t)(m - h * 256);
}

/* Rescales layer L's masters (largest |M| = wmax > 0) to W_TARGET, rounding to nearest. */
HELPER void master_rescale(const ctx_t *c, const octo_train_layer_t *L, int32_t wmax) {
    const int32_t n = w_count(L);
    int8_t *hi = AT(c, L->w_off, int8_t);
    int8_t *lo = hi + n;
    const float f = W_TARGET / (float)wmax;
    for (int32_t i = 0; i < n; i++) {
        master_put(hi, lo, i, octo_tr_round_sat((float)master_get(hi, lo, i) * f, W_LIMIT));
    }
    scal(c, L)[OCTO_TS_W_SCALE] *= (float)wmax / W_TARGET;
}

#define Q_FRAC 14
#define Q_OUT (1 << (22 - Q_FRAC))
#define RND_MAGIC 12582912.0f /* 1.5 * 2^23: x + RND_MAGIC keeps round(x) in its low mantissa bits */

/* round(x) (ties to even) for |x| < 2^22; a value of magnitude >= 2^22 for larger |x| and NaN. */
static inline int32_t round_bits(float x) {
    const float y = x + RND_MAGIC;
    uint32_t u;
    memcpy(&u, &y, sizeof u);
    return (int32_t)(u - 0x4B400000u);
}

/* The INT8 optimizer step of a layer, in 32-bit fixed point. Per weight, with g the int32 gradient
 * sum, v the int16 momentum and M the master:
 *   gq = g >> gsh                                  saturated to 16 bits (gsh from the last step's largest |g|)
 *   v' = (am*v + bm*gq + cm*M + 2^(sh-1)) >> sh    saturated to +-32767, in units of the new momentum scale
 *   M' = M + (((r16 << rl) - km*v') >> kt)         r16: 16 random bits (stochastic rounding)
 * so v' = mu*v + g + wd*w and w' = w - lr*v' in real units. The coefficients come from the float scales
 * once per layer and step: 14 significant bits each (the decay term, much smaller, has its own shift). */
typedef struct {
    int32_t am, bm, sh, half;  /* momentum and gradient coefficients, scaled by 2^sh */
    int32_t cm, csh;           /* decay coefficient, scaled by 2^(sh + csh) (0: no decay) */
    int32_t gsh;               /* gradient pre-shift */
    int32_t km, kt, rl;        /* lr in master units per momentum unit, scaled by 2^kt; rl = kt - 16 */
    float sv_store;            /* the new momentum scale */
    uint32_t vor, gor;         /* OR of |v'| and |g| (the next scales), largest |M'| */
    int32_t wmax;
    uint32_t bits;             /* unused random bits of the last draw (weights in pairs, across blocks) */
} upd_t;

/* Arguments of a step or an evaluation: OCTO_E_ARG, OCTO_E_STATE (no valid state) or OCTO_OK. */
HELPER int run_check(const octo_trainer_t *t, uint32_t n, const octo_train_result_t *res) {
    if (t == NULL || t->m == NULL || res == NULL || n == 0u || n > t->m->batch || t->m->split) {
        return OCTO_E_ARG;
    }
    return t->valid ? OCTO_OK : OCTO_E_STATE;
}

#undef HELPER

#endif /* OCTO_TRAINER_INTERNAL_H */
