/* octo_trainer.c - the training engine over a generated layer table (see octo_trainer.h). */
#include "octo/octo_trainer.h"

#include <string.h>

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
    H_LAC_L2 = 52
};

/* Runtime floats per layer (not state). */
enum { RT_Y = 0, RT_DZ = 1, RT_GS = 2, RT_COUNT = 3 };

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
    const octo_tmodel_t *m;
    const octo_trainer_t *t;
    uint8_t *a;
    octo_train_hparams_t hp;
    octo_train_prng_t prng;
    uint32_t n;  /* samples in this batch */
    int train;   /* 1 = training step (stochastic rounding, ranges updated), 0 = eval */
    void *dx_to; /* non-NULL: input gradients go here (batch-major) instead of over the saved outputs */
} ctx_t;

/* --- profiling --------------------------------------------------------------------------------- */

static uint64_t prof_now(const ctx_t *c) {
    return c->t->clock != NULL ? c->t->clock() : 0u;
}
static void prof_add(const ctx_t *c, uint32_t l, uint32_t slot, uint64_t since) {
    if (c->t->profile != NULL && c->t->clock != NULL) {
        c->t->profile[l * OCTO_TP_COUNT + slot] += (uint32_t)(c->t->clock() - since);
    }
}

/* --- small helpers ----------------------------------------------------------------------------- */

static uint32_t rd32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static void wr32(uint8_t *p, uint32_t v) {
    memcpy(p, &v, 4);
}
static float rdf(const uint8_t *p) {
    float v;
    memcpy(&v, p, 4);
    return v;
}
static void wrf(uint8_t *p, float v) {
    memcpy(p, &v, 4);
}

#define AT(c, off, type) ((type *)(void *)((c)->a + (off)))

static float absf(float v) {
    return v < 0.0f ? -v : v;
}

static float uniform(octo_train_prng_t *r) {
    return (float)(octo_train_prng_next(r) >> 8) * (1.0f / 16777216.0f);
}

static int32_t elems(const octo_dims_t *d) {
    return d->h * d->w * d->c;
}
static int32_t w_count(const octo_tlayer_t *L) {
    return L->w.n * L->w.h * L->w.w * L->w.c;
}
static int has_weights(const octo_tlayer_t *L) {
    return L->kind == OCTO_TL_CONV || L->kind == OCTO_TL_DW || L->kind == OCTO_TL_FC;
}
static int32_t out_channels(const octo_tlayer_t *L) {
    return L->kind == OCTO_TL_DW ? L->w.c : L->w.n;
}
/* Output channel of weight element i. */
static int32_t w_channel(const octo_tlayer_t *L, int32_t i) {
    return L->kind == OCTO_TL_DW ? i % L->w.c : i / (L->w.h * L->w.w * L->w.c);
}
static octo_dims_t batch_dims(const octo_dims_t *d, int32_t n) {
    octo_dims_t r = *d;
    r.n = n;
    return r;
}
static float *rt(const ctx_t *c, uint32_t l) {
    return AT(c, c->m->rt_off, float) + l * RT_COUNT;
}
static float *scal(const ctx_t *c, const octo_tlayer_t *L) {
    return AT(c, L->scal_off, float);
}
static int lac_on(const ctx_t *c, const octo_tlayer_t *L) {
    return c->m->precision == OCTO_TRAIN_PREC_INT8 && (c->hp.flags & OCTO_TRAIN_FLAG_LAC) != 0u &&
           L->lac_off != OCTO_TRAIN_NONE;
}
static int8_t *slot8(const ctx_t *c, uint32_t off, const octo_dims_t *d, uint32_t s) {
    return AT(c, off, int8_t) + (size_t)s * (size_t)elems(d);
}
static float *slotf(const ctx_t *c, uint32_t off, const octo_dims_t *d, uint32_t s) {
    return AT(c, off, float) + (size_t)s * (size_t)elems(d);
}
/* Scale of layer l's input (the previous output, or the staged samples). */
static float x_scale(const ctx_t *c, uint32_t l) {
    return l == 0 ? c->hp.input_scale : rt(c, l - 1)[RT_Y];
}
/* int8 weights the kernels use: the working copy (trainable) or the frozen state. */
static octo_train_q8_t w8_of(const ctx_t *c, uint32_t l) {
    const octo_tlayer_t *L = &c->m->layers[l];
    octo_train_q8_t q;
    q.data = AT(c, L->w_off, int8_t); /* trainable: the hi plane of the masters */
    q.scale = scal(c, L)[OCTO_TS_W_SCALE];
    if (L->train_w) {
        q.scale *= 256.0f;
    }
    return q;
}

static void load_hparams(ctx_t *c) {
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
    c->prng.state = rd32(h + H_PRNG);
}

static void ctx_open(ctx_t *c, const octo_trainer_t *t, uint32_t n, int train) {
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
static void master_rescale(const ctx_t *c, const octo_tlayer_t *L, int32_t wmax) {
    const int32_t n = w_count(L);
    int8_t *hi = AT(c, L->w_off, int8_t);
    int8_t *lo = hi + n;
    const float f = W_TARGET / (float)wmax;
    for (int32_t i = 0; i < n; i++) {
        master_put(hi, lo, i, octo_tr_round_sat((float)master_get(hi, lo, i) * f, W_LIMIT));
    }
    scal(c, L)[OCTO_TS_W_SCALE] *= (float)wmax / W_TARGET;
}

/* Real value of converted/random initial weight i (the PRNG advances for random init). */
static float init_weight(const octo_tlayer_t *L, int32_t i, int random, octo_train_prng_t *r) {
    if (random || L->init_w == NULL) {
        return (uniform(r) * 2.0f - 1.0f) * L->init_bound;
    }
    return (float)L->init_w[i] * L->init_ws[w_channel(L, i)];
}

static void init_layer(ctx_t *c, const octo_tlayer_t *L, int random) {
    const int32_t n = w_count(L);
    const int32_t oc = out_channels(L);
    float *sc = scal(c, L);
    octo_train_prng_t first = c->prng;
    if (c->m->precision == OCTO_TRAIN_PREC_FP32) {
        float *w = AT(c, L->w_off, float);
        for (int32_t i = 0; i < n; i++) {
            w[i] = init_weight(L, i, random, &c->prng);
        }
        if (L->v_off != OCTO_TRAIN_NONE) {
            memset(AT(c, L->v_off, float), 0, (size_t)n * sizeof(float));
        }
    } else {
        float wmax = 0.0f; /* pass 1: the range; pass 2 (same draws again): the values */
        for (int32_t i = 0; i < n; i++) {
            const float v = absf(init_weight(L, i, random, &c->prng));
            wmax = v > wmax ? v : wmax;
        }
        c->prng = first;
        if (wmax <= 0.0f) {
            wmax = 1e-6f;
        }
        if (L->train_w) {
            const float s16 = wmax / W_TARGET;
            int8_t *hi = AT(c, L->w_off, int8_t);
            for (int32_t i = 0; i < n; i++) {
                master_put(hi, hi + n, i, octo_tr_round_sat(init_weight(L, i, random, &c->prng) / s16, W_LIMIT));
            }
            memset(AT(c, L->v_off, int16_t), 0, (size_t)n * sizeof(int16_t));
            sc[OCTO_TS_W_SCALE] = s16;
            sc[OCTO_TS_V_SCALE] = 1.0f;
        } else {
            const float s8 = wmax / 127.0f;
            int8_t *w8 = AT(c, L->w_off, int8_t);
            for (int32_t i = 0; i < n; i++) {
                w8[i] = (int8_t)octo_tr_round_sat(init_weight(L, i, random, &c->prng) / s8, 127);
            }
            sc[OCTO_TS_W_SCALE] = s8;
        }
    }
    float *b = AT(c, L->b_off, float);
    for (int32_t i = 0; i < oc; i++) {
        b[i] = (!random && L->init_b != NULL) ? L->init_b[i] : 0.0f;
    }
    if (L->vb_off != OCTO_TRAIN_NONE) {
        memset(AT(c, L->vb_off, float), 0, (size_t)oc * sizeof(float));
    }
    if (L->lac_off != OCTO_TRAIN_NONE) {
        memset(AT(c, L->lac_off, float), 0, (size_t)oc * 4u * sizeof(float));
    }
}

/* --- public: bind, init, commit, stage --------------------------------------------------------- */

static size_t layer_scratch(const octo_tlayer_t *L) {
    size_t s = 0;
    if (L->kind == OCTO_TL_CONV) {
        const size_t a = octo_train_conv2d_s8_fwd_scratch_size(&L->w);
        const size_t b = octo_train_conv2d_s8_bwd_input_scratch_size(&L->w);
        const size_t d = octo_train_conv2d_s8_bwd_weight_scratch_size(&L->w);
        s = a > b ? a : b;
        s = d > s ? d : s;
    } else if (L->kind == OCTO_TL_FC) {
        const size_t b = octo_train_fc_s8_bwd_input_scratch_size(&L->w);
        const size_t d = octo_train_fc_s8_bwd_weight_scratch_size(&L->w);
        s = b > d ? b : d;
    }
    return s;
}

int octo_trainer_bind(octo_trainer_t *t, const octo_tmodel_t *m, uint8_t *arena) {
    if (t == NULL || m == NULL || arena == NULL || m->layers == NULL || m->n_layers == 0 || m->batch == 0 ||
        ((uintptr_t)arena & 7u) != 0) {
        return OCTO_E_ARG;
    }
    if (m->precision == OCTO_TRAIN_PREC_INT8) {
        for (uint32_t l = 0; l < m->n_layers; l++) {
            if (layer_scratch(&m->layers[l]) > m->scratch_bytes) {
                return OCTO_E_NOMEM;
            }
        }
    }
    if (m->tile_bytes < (uint32_t)m->batch * m->classes * 4u) {
        return OCTO_E_NOMEM;
    }
    t->m = m;
    t->arena = arena;
    t->valid = 0;
    t->pending = 0;
    t->clock = NULL;
    t->profile = NULL;
    return OCTO_OK;
}

int octo_trainer_init(octo_trainer_t *t, const octo_train_hparams_t *hp) {
    if (t == NULL || t->m == NULL || hp == NULL || !(hp->input_scale > 0.0f) || !(hp->lr >= 0.0f) ||
        !(hp->momentum >= 0.0f && hp->momentum < 1.0f) || !(hp->weight_decay >= 0.0f) || !(hp->prc_k >= 0.0f) ||
        !(hp->lac_l2 >= 0.0f) || hp->init > 1u) {
        return OCTO_E_ARG;
    }
    const octo_tmodel_t *m = t->m;
    memset(t->arena, 0, m->state_bytes);
    uint8_t *h = t->arena;
    wr32(h + H_MAGIC, OCTO_TRAIN_STATE_MAGIC);
    wr32(h + H_FINGERPRINT, m->fingerprint);
    wr32(h + H_CONFIG, m->config_crc);
    wr32(h + H_STEP, 0);
    wr32(h + H_FLAGS, hp->flags);
    wr32(h + H_INIT, hp->init);
    wr32(h + H_SEED, hp->seed);
    wrf(h + H_LR, hp->lr);
    wrf(h + H_MOMENTUM, hp->momentum);
    wrf(h + H_WD, hp->weight_decay);
    wrf(h + H_INPUT_SCALE, hp->input_scale);
    wrf(h + H_PRC_K, hp->prc_k);
    wrf(h + H_LAC_L2, hp->lac_l2);
    octo_train_prng_t r;
    octo_train_prng_seed(&r, hp->seed);
    wr32(h + H_PRNG, r.state);
    ctx_t c;
    ctx_open(&c, t, 0, 0);
    for (uint32_t l = 0; l < m->n_layers; l++) {
        if (has_weights(&m->layers[l])) {
            init_layer(&c, &m->layers[l], hp->init == 1u);
        }
    }
    wr32(h + H_PRNG, c.prng.state);
    t->valid = 1;
    t->pending = 0;
    return OCTO_OK;
}

int octo_trainer_commit(octo_trainer_t *t) {
    if (t == NULL || t->m == NULL) {
        return OCTO_E_ARG;
    }
    const uint8_t *h = t->arena;
    t->valid = 0;
    if (rd32(h + H_MAGIC) != OCTO_TRAIN_STATE_MAGIC || rd32(h + H_FINGERPRINT) != t->m->fingerprint ||
        rd32(h + H_CONFIG) != t->m->config_crc || rd32(h + H_PRNG) == 0u) {
        return OCTO_E_STATE;
    }
    ctx_t c;
    ctx_open(&c, t, 0, 0);
    if (!(c.hp.input_scale > 0.0f)) {
        return OCTO_E_STATE;
    }
    t->valid = 1;
    t->pending = 0;
    return OCTO_OK;
}

int octo_trainer_stage(octo_trainer_t *t, uint32_t first, uint32_t count, const uint8_t *labels,
                       const int8_t *samples) {
    if (t == NULL || t->m == NULL || labels == NULL || samples == NULL || first > t->m->batch ||
        count > t->m->batch - first) {
        return OCTO_E_ARG;
    }
    for (uint32_t i = 0; i < count; i++) {
        if (!t->m->split && labels[i] >= t->m->classes) {
            return OCTO_E_ARG;
        }
    }
    const octo_tmodel_t *m = t->m;
    int32_t *lab = (int32_t *)(void *)(t->arena + m->label_off);
    for (uint32_t i = 0; i < count; i++) {
        lab[first + i] = labels[i];
    }
    memcpy(t->arena + m->stage_off + (size_t)first * m->input_elems, samples, (size_t)count * m->input_elems);
    return OCTO_OK;
}

int octo_trainer_stage_part(octo_trainer_t *t, uint32_t sample, uint8_t label, uint32_t offset, const int8_t *data,
                            uint32_t len) {
    if (t == NULL || t->m == NULL || data == NULL || sample >= t->m->batch ||
        (!t->m->split && label >= t->m->classes) || offset > t->m->input_elems ||
        len > t->m->input_elems - offset) {
        return OCTO_E_ARG;
    }
    ((int32_t *)(void *)(t->arena + t->m->label_off))[sample] = label;
    memcpy(t->arena + t->m->stage_off + (size_t)sample * t->m->input_elems + offset, data, len);
    return OCTO_OK;
}

uint32_t octo_trainer_step_count(const octo_trainer_t *t) {
    return (t != NULL && t->m != NULL && t->valid) ? rd32(t->arena + H_STEP) : 0xFFFFFFFFu;
}

int octo_trainer_set_lr(octo_trainer_t *t, float lr) {
    if (t == NULL || t->m == NULL || !(lr >= 0.0f) || lr > 1e6f) {
        return OCTO_E_ARG;
    }
    if (!t->valid) {
        return OCTO_E_STATE;
    }
    wrf(t->arena + H_LR, lr);
    return OCTO_OK;
}

/* --- INT8 forward ------------------------------------------------------------------------------ */

/* One sample's accumulators, per pixel and channel k: z = acc*m[k] + b[k] (LAC and the scale folded
 * together), then the activation (clamp at 0 and at six). Returns max |z| (the first step's probe). */
static float post_tile_probe(const int32_t *acc, int32_t pixels, int32_t ch, const float *m, const float *b,
                             int32_t act, float six) {
    float amax = 0.0f;
    for (int32_t p = 0; p < pixels; p++, acc += ch) {
        for (int32_t k = 0; k < ch; k++) {
            float z = (float)acc[k] * m[k] + b[k];
            if (act != OCTO_TRAIN_ACT_NONE) {
                z = z > 0.0f ? z : 0.0f;
                z = z < six ? z : six;
            }
            const float az = absf(z);
            amax = az > amax ? az : amax;
        }
    }
    return amax;
}

/* While rounding to int8, z is held with Q_FRAC fraction bits: exact for |z| < 2^(22 - Q_FRAC) int8 units. */
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

/* One sample's accumulators -> int8 output, per pixel and channel k: z = acc*m[k] + b[k] with m and b
 * scaled by 2^Q_FRAC (so z is in int8 units x 2^Q_FRAC), the activation (clamp to [lo, hi]), then
 * rounding: stochastic in training (Q_FRAC random bits per value, two values per PRNG draw), else to
 * nearest, saturated to +-127. *amax gets max |z| (>= 2^22: beyond Q_OUT int8 units); NaN -> -1. */
static int post_tile(ctx_t *c, const int32_t *acc, int32_t pixels, int32_t ch, const float *m, const float *b,
                     int32_t lo, int32_t hi, int8_t *out, uint32_t *amax) {
    uint32_t top = *amax;
    const int sr = c->train;
    octo_train_prng_t rng = c->prng;
    uint32_t bits = 0;
    int32_t left = 0;
    for (int32_t p = 0; p < pixels; p++, acc += ch, out += ch) {
        for (int32_t k = 0; k < ch; k++) {
            const float zf = (float)acc[k] * m[k] + b[k];
            int32_t z = round_bits(zf);
            if ((uint32_t)(z + (1 << 22)) >= (1u << 23)) { /* out of the exact range: saturate */
                if (!(zf == zf)) {
                    return -1;
                }
                z = zf > 0.0f ? (1 << 22) : -(1 << 22);
            }
            z = z > lo ? z : lo;
            z = z < hi ? z : hi;
            const uint32_t a = (uint32_t)(z ^ (z >> 31));
            top = a > top ? a : top;
            int32_t r = 1 << (Q_FRAC - 1);
            if (sr) {
                if (left == 0) {
                    bits = octo_train_prng_next(&rng);
                    left = 2;
                }
                r = (int32_t)(bits & ((1u << Q_FRAC) - 1u));
                bits >>= 16;
                left--;
            }
            int32_t q = (z + r) >> Q_FRAC;
            q = q > 127 ? 127 : (q < -127 ? -127 : q);
            out[k] = (int8_t)q;
        }
    }
    c->prng = rng;
    *amax = top;
    return 0;
}

/* Runs the op of layer l on sample s into the int32 tile; returns the kernel status. */
static int fwd_kernel_s8(ctx_t *c, uint32_t l, uint32_t s, octo_train_q32_t *acc) {
    const octo_tlayer_t *L = &c->m->layers[l];
    const octo_tmodel_t *m = c->m;
    octo_train_q8_t x = {slot8(c, L->x_off, &L->in, s), x_scale(c, l)};
    const octo_dims_t in = batch_dims(&L->in, 1);
    const octo_dims_t out = batch_dims(&L->out, 1);
    acc->data = AT(c, m->tile_off, int32_t);
    if (L->kind == OCTO_TL_AVGPOOL) {
        return octo_train_avgpool_s8_fwd(&L->pool, &in, &x, &out, acc);
    }
    const octo_train_q8_t w = w8_of(c, l);
    const float *bias = AT(c, L->b_off, float);
    octo_train_conv_params_t p = L->conv;
    p.act = OCTO_TRAIN_ACT_NONE;
    if (L->kind == OCTO_TL_CONV) {
        return octo_train_conv2d_s8_fwd(&p, &in, &x, &L->w, &w, bias, AT(c, m->scratch_off, void), &out, acc);
    }
    if (L->kind == OCTO_TL_DW) {
        return octo_train_dwconv_s8_fwd(&p, &in, &x, &L->w, &w, bias, &out, acc);
    }
    octo_train_fc_params_t fp = {OCTO_TRAIN_ACT_NONE};
    return octo_train_fc_s8_fwd(&fp, &in, &x, &L->w, &w, bias, &out, acc);
}

static int fwd_layer_s8(ctx_t *c, uint32_t l) {
    const octo_tlayer_t *L = &c->m->layers[l];
    if (L->kind == OCTO_TL_MAXPOOL) {
        const octo_dims_t in = batch_dims(&L->in, (int32_t)c->n);
        const octo_dims_t out = batch_dims(&L->out, (int32_t)c->n);
        octo_train_q8_t x = {AT(c, L->x_off, int8_t), x_scale(c, l)};
        octo_train_q8_t y = {AT(c, L->y_off, int8_t), 1.0f};
        const int st = octo_train_maxpool_s8_fwd(&L->pool, &in, &x, &out, &y);
        rt(c, l)[RT_Y] = y.scale;
        return st;
    }
    const int32_t pixels = L->out.h * L->out.w;
    const int32_t ch = L->out.c;
    float *mb = AT(c, c->m->grad_off, float); /* per channel: multiplier [ch], offset [ch] */
    const float *g = lac_on(c, L) ? AT(c, L->lac_off, float) : NULL;
    float *sc = scal(c, L);
    float range = sc[OCTO_TS_R_FWD];
    octo_train_q32_t acc;
    for (int pass = range > 0.0f ? 1 : 0; pass < 2; pass++) {
        float amax = 0.0f;  /* pass 0, real units x unit */
        uint32_t qmax = 0;  /* pass 1, int8 units x 2^Q_FRAC */
        float unit = 1.0f;  /* pass 0: accumulator units; pass 1: int8 units x 2^Q_FRAC */
        float acc_scale = 1.0f;
        float six = FLT_MAX;
        int32_t lo = INT32_MIN, hi = INT32_MAX;
        for (uint32_t s = 0; s < c->n; s++) {
            const int st = fwd_kernel_s8(c, l, s, &acc);
            if (st != OCTO_OK) {
                return st;
            }
            if (s == 0) { /* LAC gain/offset and the output scale, per channel */
                acc_scale = acc.scale;
                unit = pass == 1 ? 127.0f * (float)(1 << Q_FRAC) * acc_scale / range : 1.0f;
                for (int32_t k = 0; k < ch; k++) {
                    mb[k] = (g != NULL ? 1.0f + g[k] : 1.0f) * unit;
                    mb[ch + k] = g != NULL ? g[ch + k] / acc_scale * unit : 0.0f;
                }
                if (L->act == OCTO_TRAIN_ACT_RELU6) {
                    six = 6.0f / acc_scale * unit;
                }
                if (L->act != OCTO_TRAIN_ACT_NONE) {
                    lo = 0;
                    hi = six < (float)(1 << 22) ? (int32_t)six : (1 << 22); /* six >= 0 */
                }
            }
            if (pass == 0) {
                const float a = post_tile_probe(acc.data, pixels, ch, mb, mb + ch, L->act, six);
                amax = a > amax ? a : amax;
            } else if (post_tile(c, acc.data, pixels, ch, mb, mb + ch, lo, hi, slot8(c, L->y_off, &L->out, s),
                                 &qmax) != 0) {
                return OCTO_E_DIVERGED;
            }
        }
        if (pass == 1) {
            amax = (float)qmax;
        }
        const float measured = amax > 0.0f ? amax / unit * acc_scale : acc_scale;
        if (!(measured <= FLT_MAX)) {
            return OCTO_E_DIVERGED;
        }
        if (pass == 0) {
            range = measured;
        } else if (c->train) {
            const float decayed = RANGE_DECAY * range;
            sc[OCTO_TS_R_FWD] = measured > decayed ? measured : decayed; /* the next step's range */
        }
    }
    rt(c, l)[RT_Y] = range / 127.0f;
    return OCTO_OK;
}

/* --- FP32 forward ------------------------------------------------------------------------------ */

static int fwd_layer_f32(ctx_t *c, uint32_t l) {
    const octo_tlayer_t *L = &c->m->layers[l];
    const octo_dims_t in = batch_dims(&L->in, (int32_t)c->n);
    const octo_dims_t out = batch_dims(&L->out, (int32_t)c->n);
    const float *x = AT(c, L->x_off, float);
    float *y = AT(c, L->y_off, float);
    const float *w = AT(c, L->w_off, float);
    const float *b = AT(c, L->b_off, float);
    octo_train_conv_params_t p = L->conv;
    p.act = L->act;
    switch (L->kind) {
    case OCTO_TL_CONV:
        return octo_train_conv2d_f32_fwd(&p, &in, x, &L->w, w, b, &out, y);
    case OCTO_TL_DW:
        return octo_train_dwconv_f32_fwd(&p, &in, x, &L->w, w, b, &out, y);
    case OCTO_TL_FC: {
        octo_train_fc_params_t fp = {L->act};
        return octo_train_fc_f32_fwd(&fp, &in, x, &L->w, w, b, &out, y);
    }
    case OCTO_TL_MAXPOOL:
        return octo_train_maxpool_f32_fwd(&L->pool, &in, x, &out, y);
    default:
        return octo_train_avgpool_f32_fwd(&L->pool, &in, x, &out, y);
    }
}

static int forward(ctx_t *c) {
    const octo_tmodel_t *m = c->m;
    if (m->precision == OCTO_TRAIN_PREC_FP32) {
        const int8_t *q = AT(c, m->stage_off, int8_t);
        float *x = AT(c, m->input_off, float);
        const size_t n = (size_t)c->n * m->input_elems;
        for (size_t i = 0; i < n; i++) {
            x[i] = (float)q[i] * c->hp.input_scale;
        }
    }
    if (c->t->profile != NULL) {
        memset(c->t->profile, 0, (size_t)m->n_layers * OCTO_TP_COUNT * sizeof(uint32_t));
    }
    for (uint32_t l = 0; l < m->n_layers; l++) {
        const uint64_t t0 = prof_now(c);
        const int st = m->precision == OCTO_TRAIN_PREC_INT8 ? fwd_layer_s8(c, l) : fwd_layer_f32(c, l);
        prof_add(c, l, OCTO_TP_FWD, t0);
        if (st != OCTO_OK) {
            return st;
        }
    }
    return OCTO_OK;
}

/* Loss, correct count and predictions from the last layer's output. */
static int loss_and_grad(ctx_t *c, octo_train_result_t *res, uint8_t *pred, int want_grad) {
    const octo_tmodel_t *m = c->m;
    const uint32_t l = m->n_layers - 1u;
    const octo_tlayer_t *L = &m->layers[l];
    const int32_t *lab = AT(c, m->label_off, int32_t);
    const uint32_t k = m->classes;
    uint32_t correct = 0;
    for (uint32_t s = 0; s < c->n; s++) {
        uint32_t best = 0;
        if (m->precision == OCTO_TRAIN_PREC_INT8) {
            const int8_t *y = AT(c, L->y_off, int8_t) + (size_t)s * k;
            for (uint32_t j = 1; j < k; j++) {
                best = y[j] > y[best] ? j : best;
            }
        } else {
            const float *y = AT(c, L->y_off, float) + (size_t)s * k;
            for (uint32_t j = 1; j < k; j++) {
                best = y[j] > y[best] ? j : best;
            }
        }
        correct += best == (uint32_t)lab[s] ? 1u : 0u;
        if (pred != NULL) {
            pred[s] = (uint8_t)best;
        }
    }
    res->correct = correct;
    res->n = c->n;
    if (m->precision == OCTO_TRAIN_PREC_INT8) {
        octo_train_q8_t logits = {AT(c, L->y_off, int8_t), rt(c, l)[RT_Y]};
        octo_train_q8_t d = {AT(c, m->tile_off, int8_t), 1.0f};
        const int st = octo_train_softmax_xent_s8((int32_t)c->n, (int32_t)k, &logits, lab, &res->loss,
                                                  want_grad ? &d : NULL);
        rt(c, l)[RT_DZ] = d.scale;
        return st;
    }
    return octo_train_softmax_xent_f32((int32_t)c->n, (int32_t)k, AT(c, L->y_off, float), lab, &res->loss,
                                       want_grad ? AT(c, m->tile_off, float) : NULL);
}

/* --- backward helpers -------------------------------------------------------------------------- */

/* Where a layer's output gradient goes: over its saved output, after the
 * activation mask has read it (INT8: plus the LAC sums of that layer). */
typedef struct {
    int8_t *y8;   /* the saved output (read: mask, LAC) */
    float *yf;
    int8_t *o8;   /* where the gradient goes: y8, or the redirect buffer */
    float *of;
    int32_t act;
    int32_t lim;  /* INT8 ReLU6: outputs >= lim count as clipped */
    int32_t ch;
    int lac;
    int32_t *s1;  /* sum of dz per channel */
    int64_t *s2;  /* sum of dz * y per channel */
} sink_t;

static sink_t sink_open(ctx_t *c, uint32_t p, uint32_t s) {
    sink_t sk;
    sink_t *k = &sk;
    const octo_tlayer_t *P = &c->m->layers[p];
    k->act = P->act;
    k->ch = P->out.c;
    k->lac = lac_on(c, P);
    k->s1 = AT(c, c->m->lacsum_off, int32_t);
    k->s2 = (int64_t *)(void *)(k->s1 + ((k->ch + 1) & ~1));
    k->lim = 128;
    if (c->m->precision == OCTO_TRAIN_PREC_INT8) {
        k->y8 = slot8(c, P->y_off, &P->out, s);
        k->yf = NULL;
        if (P->act == OCTO_TRAIN_ACT_RELU6) {
            const float tt = 6.0f / rt(c, p)[RT_Y] - 0.5f;
            if (tt < 128.0f) {
                const int32_t f = octo_tr_floor(tt);
                k->lim = (float)f == tt ? f : f + 1;
            }
        }
    } else {
        k->y8 = NULL;
        k->yf = slotf(c, P->y_off, &P->out, s);
    }
    k->o8 = k->y8;
    k->of = k->yf;
    if (c->dx_to != NULL) {
        const size_t at = (size_t)s * (size_t)elems(&P->out);
        k->o8 = k->y8 != NULL ? (int8_t *)c->dx_to + at : NULL;
        k->of = k->yf != NULL ? (float *)c->dx_to + at : NULL;
    }
    return sk;
}

/* Element i (channel ch) of the output gradient: masked by the activation read from the saved output,
 * added to the LAC sums, then written over the saved output. */
static inline void sink_put8(sink_t k, int32_t i, int32_t ch, int32_t g) { /* by value: no aliasing with y8 */
    const int32_t v = k.y8[i];
    if (k.act != OCTO_TRAIN_ACT_NONE && !(v > 0 && v < k.lim)) {
        g = 0;
    }
    if (k.lac && g != 0) {
        k.s1[ch] += g;
        k.s2[ch] += (int64_t)g * v;
    }
    k.o8[i] = (int8_t)g;
}

static inline void sink_putf(sink_t k, int32_t i, float g) {
    const float v = k.yf[i];
    const int pass = k.act == OCTO_TRAIN_ACT_NONE || (v > 0.0f && (k.act == OCTO_TRAIN_ACT_RELU || v < 6.0f));
    k.of[i] = pass ? g : 0.0f;
}

/* dlogits (in the tile) -> the last layer's slot. */
static void store_dlogits(ctx_t *c) {
    const uint32_t last = c->m->n_layers - 1u;
    const int32_t k = (int32_t)c->m->classes;
    for (uint32_t s = 0; s < c->n; s++) {
        const sink_t sk = sink_open(c, last, s);
        if (c->m->precision == OCTO_TRAIN_PREC_INT8) {
            const int8_t *d = AT(c, c->m->tile_off, int8_t) + (size_t)s * (size_t)k;
            for (int32_t i = 0; i < k; i++) {
                sink_put8(sk, i, i, d[i]); /* the last layer's output: one pixel, channel = class */
            }
        } else {
            const float *d = AT(c, c->m->tile_off, float) + (size_t)s * (size_t)k;
            for (int32_t i = 0; i < k; i++) {
                sink_putf(sk, i, d[i]);
            }
        }
    }
}

static void lac_sums_clear(ctx_t *c, uint32_t p) {
    const octo_tlayer_t *P = &c->m->layers[p];
    if (lac_on(c, P)) {
        const int32_t ch = P->out.c;
        memset(AT(c, c->m->lacsum_off, uint8_t), 0, (size_t)((ch + 1) & ~1) * 4u + (size_t)ch * 8u);
    }
}

/* SGD with momentum on n floats. */
static void sgd_f32(float *w, float *v, const float *g, float gscale, int32_t n, float lr, float mu, float wd) {
    for (int32_t i = 0; i < n; i++) {
        const float gi = g[i] * gscale + wd * w[i];
        v[i] = mu * v[i] + gi;
        w[i] -= lr * v[i];
    }
}

/* INT8 layer l: LAC gradients from the sums, LAC update, and dz scaled by the
 * (old) per-channel gain, in place. */
static void lac_backward(ctx_t *c, uint32_t l) {
    const octo_tlayer_t *L = &c->m->layers[l];
    const int32_t ch = L->out.c;
    float *g = AT(c, L->lac_off, float); /* gamma, beta, v_gamma, v_beta */
    const int32_t *s1 = AT(c, c->m->lacsum_off, int32_t);
    const int64_t *s2 = (const int64_t *)(const void *)(s1 + ((ch + 1) & ~1));
    const float sdz = rt(c, l)[RT_DZ];
    const float sy = rt(c, l)[RT_Y];
    float *gain = AT(c, c->m->grad_off, float);
    const float inv_pos = 1.0f / (float)(L->out.h * L->out.w);
    for (int32_t k = 0; k < ch; k++) {
        gain[k] = 1.0f + g[k];
        /* z' = z*(1+gamma) + beta and y = z' where dz != 0:  dL/dgamma = sum dz*z,  dL/dbeta = sum dz */
        const float sum_dz = (float)s1[k] * sdz;
        const float sum_dzy = (float)s2[k] * sdz * sy;
        /* averaged over the positions a channel covers, so one learning rate suits every layer */
        const float d_gamma = (sum_dzy - g[ch + k] * sum_dz) / gain[k] * inv_pos + c->hp.lac_l2 * g[k];
        const float d_beta = sum_dz * inv_pos + c->hp.lac_l2 * g[ch + k];
        g[2 * ch + k] = c->hp.momentum * g[2 * ch + k] + d_gamma;
        g[3 * ch + k] = c->hp.momentum * g[3 * ch + k] + d_beta;
        g[k] -= c->hp.lr * g[2 * ch + k];
        g[k] = g[k] > LAC_GAMMA_MAX ? LAC_GAMMA_MAX : (g[k] < -LAC_GAMMA_MAX ? -LAC_GAMMA_MAX : g[k]);
        g[ch + k] -= c->hp.lr * g[3 * ch + k];
    }
    const int32_t count = elems(&L->out);
    for (uint32_t s = 0; s < c->n; s++) {
        int8_t *dz = slot8(c, L->y_off, &L->out, s);
        for (int32_t i = 0; i < count; i++) {
            if (dz[i] != 0) {
                dz[i] = (int8_t)octo_tr_round_sat((float)dz[i] * gain[i % ch], 127);
            }
        }
    }
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

/* Largest s <= smax with a * 2^s < 2^bits (0 when a is already that large or not finite). */
static int32_t fx_shift(float a, int32_t bits, int32_t smax) {
    const float lim = (float)(1u << bits);
    int32_t s = 0;
    if (!(a < lim)) {
        return 0;
    }
    while (s < smax && a * 2.0f < lim) {
        a *= 2.0f;
        s++;
    }
    return s;
}

/* round(x * 2^s), saturated to +-lim. */
static int32_t fx_mant(float x, int32_t s, int32_t lim) {
    for (int32_t i = 0; i < s; i++) {
        x *= 2.0f;
    }
    return octo_tr_round_sat(x, lim);
}

/* Bits of u (0 for 0): u < 2^bits. */
static int32_t bit_len(uint32_t u) {
    int32_t b = 0;
    while (u != 0u) {
        u >>= 1;
        b++;
    }
    return b;
}

/* The gradient pre-shift for sums whose magnitudes OR to gor: 14 bits, so a doubling still fits 16. */
static int32_t g_shift_for(uint32_t gor) {
    const int32_t b = bit_len(gor);
    return b > 14 ? b - 14 : 0;
}

/* On a layer's first update: the largest |new momentum| in real units and the OR of |g| for the
 * gradients dw[0..cnt) of weights [w0, w0+cnt) (the momentum scale and the gradient shift). */
static float upd_measure(const ctx_t *c, const octo_tlayer_t *L, int32_t w0, int32_t cnt, const int32_t *dw,
                         float gs, uint32_t *gor) {
    const int32_t n = w_count(L);
    const int8_t *hi = AT(c, L->w_off, int8_t);
    const int16_t *v = AT(c, L->v_off, int16_t);
    const float *sc = scal(c, L);
    const float sv = sc[OCTO_TS_V_SCALE];
    const float wd = c->hp.weight_decay * sc[OCTO_TS_W_SCALE];
    float m = 0.0f;
    for (int32_t i = 0; i < cnt; i++) {
        const int32_t j = w0 + i;
        const float a = absf(c->hp.momentum * ((float)v[j] * sv) + (float)dw[i] * gs +
                             wd * (float)master_get(hi, hi + n, j));
        m = a > m ? a : m;
        *gor |= (uint32_t)(dw[i] ^ (dw[i] >> 31));
    }
    return m;
}

static void upd_open(const ctx_t *c, const octo_tlayer_t *L, float gs, float sv_store, upd_t *u) {
    const float *sc = scal(c, L);
    const float s16 = sc[OCTO_TS_W_SCALE];
    u->gsh = (int32_t)sc[OCTO_TS_G_SHIFT];
    const float a = absf(c->hp.momentum * sc[OCTO_TS_V_SCALE] / sv_store);
    const float b = absf(gs * (float)(1u << u->gsh) / sv_store);
    const float d = absf(c->hp.weight_decay * s16 / sv_store);
    /* |v|, |gq| <= 2^15 and coefficients < 2^14: each product < 2^29, the sum fits int32 */
    u->sh = fx_shift(a > b ? a : b, 14, 30);
    u->half = u->sh > 0 ? 1 << (u->sh - 1) : 0;
    u->am = fx_mant(a, u->sh, 1 << 14);
    u->bm = fx_mant(b, u->sh, 1 << 14);
    u->cm = 0;
    u->csh = 0;
    if (d > 0.0f) {
        const int32_t ds = fx_shift(d, 14, 60);
        u->csh = ds > u->sh ? ds - u->sh : 0;
        u->cm = fx_mant(d, u->sh + u->csh, 1 << 14);
    }
    const float k = c->hp.lr * sv_store / s16;
    u->kt = fx_shift(k, 15, 30); /* |km*v'| < 2^30 */
    u->kt = u->kt < 16 ? 16 : u->kt; /* a step of more than half the masters' range per unit is capped */
    u->km = fx_mant(k, u->kt, 1 << 15);
    u->rl = u->kt - 16;
    u->sv_store = sv_store;
    u->vor = 0;
    u->gor = 0;
    u->wmax = 0;
    u->bits = 0;
}

/* Saturation to int16 (one SSAT on ARMv7-M). */
static inline int32_t sat16(int32_t x) {
#if defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__)
    int32_t r;
    __asm__("ssat %0, #16, %1" : "=r"(r) : "r"(x));
    return r;
#else
    return x > 32767 ? 32767 : (x < -32768 ? -32768 : x);
#endif
}

/* Updates momentum and masters of weights [w0, w0+cnt) from their gradients dw[0..cnt): the momentum
 * pass, then the weight pass (two short loops keep every constant in a register). */
static void upd_run(ctx_t *c, const octo_tlayer_t *L, upd_t *u, int32_t w0, int32_t cnt, const int32_t *dw) {
    const int32_t n = w_count(L);
    int8_t *hi = AT(c, L->w_off, int8_t) + w0;
    int8_t *lo = hi + n;
    int16_t *v = AT(c, L->v_off, int16_t) + w0;
    {
        const int32_t am = u->am, bm = u->bm, sh = u->sh, half = u->half, gsh = u->gsh;
        uint32_t vor = u->vor, gor = u->gor;
        if (u->cm == 0) {
            for (int32_t i = 0; i < cnt; i++) {
                const int32_t g = dw[i];
                gor |= (uint32_t)(g ^ (g >> 31));
                const int32_t vq = sat16((am * v[i] + bm * sat16(g >> gsh) + half) >> sh);
                v[i] = (int16_t)vq;
                vor |= (uint32_t)(vq ^ (vq >> 31));
            }
        } else {
            const int32_t cm = u->cm, csh = u->csh;
            for (int32_t i = 0; i < cnt; i++) {
                const int32_t g = dw[i];
                gor |= (uint32_t)(g ^ (g >> 31));
                const int32_t m = (int32_t)hi[i] * 256 + (int32_t)lo[i];
                const int32_t vq = sat16((am * v[i] + bm * sat16(g >> gsh) + half + ((cm * m) >> csh)) >> sh);
                v[i] = (int16_t)vq;
                vor |= (uint32_t)(vq ^ (vq >> 31));
            }
        }
        u->vor = vor;
        u->gor = gor;
    }
    const int32_t km = u->km, kt = u->kt, rl = u->rl;
    int32_t wmax = u->wmax;
    uint32_t bits = u->bits;
    octo_train_prng_t rng = c->prng;
    for (int32_t i = 0; i < cnt; i++) {
        if (((w0 + i) & 1) == 0) {
            bits = octo_train_prng_next(&rng);
        }
        const int32_t r = (int32_t)((bits & 0xFFFFu) << rl);
        bits >>= 16;
        int32_t m = (int32_t)hi[i] * 256 + (int32_t)lo[i];
        m += (r - v[i] * km) >> kt;
        if ((uint32_t)(m + W_LIMIT) > 2u * W_LIMIT) {
            m = m > 0 ? W_LIMIT : -W_LIMIT;
        }
        const int32_t h = (m + 128) >> 8;
        hi[i] = (int8_t)h;
        lo[i] = (int8_t)(m - h * 256);
        const int32_t aw = m ^ (m >> 31); /* |m| or |m| - 1: enough for the band */
        wmax = aw > wmax ? aw : wmax;
    }
    c->prng = rng;
    u->wmax = wmax;
    u->bits = bits;
}

/* After the last block: the next momentum scale (from the OR of |v'|: 2-4x headroom), the next gradient
 * shift and, when the masters left their band, a rescale. */
static void upd_close(const ctx_t *c, const octo_tlayer_t *L, const upd_t *u) {
    float *sc = scal(c, L);
    sc[OCTO_TS_V_SCALE] = u->sv_store;
    const int32_t vb = bit_len(u->vor); /* |v'| < 2^vb */
    sc[OCTO_TS_V_NEXT] = vb > 0 ? u->sv_store * (float)(1u << vb) / 16384.0f : u->sv_store;
    sc[OCTO_TS_G_SHIFT] = (float)g_shift_for(u->gor);
    if (u->wmax > W_HIGH || (u->wmax > 0 && u->wmax < W_LOW)) {
        master_rescale(c, L, u->wmax);
    }
}

/* Bias gradient sum of dz per channel over the batch (bias-only updates skip the weight kernels). */
static void bias_grad(ctx_t *c, const octo_tlayer_t *L, void *db) {
    const int32_t ch = L->out.c;
    const int32_t count = elems(&L->out) * (int32_t)c->n;
    if (c->m->precision == OCTO_TRAIN_PREC_INT8) {
        int32_t *g = (int32_t *)db;
        const int8_t *dz = AT(c, L->y_off, int8_t);
        memset(g, 0, (size_t)ch * 4u);
        for (int32_t i = 0; i < count; i++) {
            g[i % ch] += dz[i];
        }
    } else {
        float *g = (float *)db;
        const float *dz = AT(c, L->y_off, float);
        memset(g, 0, (size_t)ch * 4u);
        for (int32_t i = 0; i < count; i++) {
            g[i % ch] += dz[i];
        }
    }
}

/* Weight and bias gradients of layer l's output channels [o0, o0+ob) over the batch into grad
 * ([ob][weights per channel], 4-byte elements) and db [ob]. A block narrower than the layer copies its
 * output-gradient columns to dyb first (conv and FC weights are output-channel major). */
static int grads_block(ctx_t *c, uint32_t l, int32_t o0, int32_t ob, void *grad, void *db) {
    const octo_tlayer_t *L = &c->m->layers[l];
    const octo_tmodel_t *m = c->m;
    const int int8 = m->precision == OCTO_TRAIN_PREC_INT8;
    const octo_dims_t in = batch_dims(&L->in, (int32_t)c->n);
    octo_dims_t out = batch_dims(&L->out, (int32_t)c->n);
    octo_dims_t wd = L->w;
    void *dy = AT(c, L->y_off, void);
    if (!L->train_w) {
        bias_grad(c, L, db);
        return OCTO_OK;
    }
    if (ob != L->out.c) {
        const size_t es = int8 ? 1u : 4u;
        const int32_t rows = (int32_t)c->n * (elems(&L->out) / L->out.c);
        uint8_t *dst = AT(c, L->dyb_off, uint8_t);
        const uint8_t *src = (const uint8_t *)dy + (size_t)o0 * es;
        for (int32_t r = 0; r < rows; r++) {
            memcpy(dst + (size_t)r * (size_t)ob * es, src + (size_t)r * (size_t)L->out.c * es, (size_t)ob * es);
        }
        dy = dst;
        out.c = ob;
        wd.n = ob;
    }
    int st;
    if (int8) {
        octo_train_q8_t x = {AT(c, L->x_off, int8_t), x_scale(c, l)};
        octo_train_q8_t dyq = {(int8_t *)dy, rt(c, l)[RT_DZ]};
        octo_train_q32_t dw = {(int32_t *)grad, 1.0f};
        octo_train_q32_t dbq = {(int32_t *)db, 1.0f};
        void *scr = AT(c, m->scratch_off, void);
        if (L->kind == OCTO_TL_CONV) {
            st = octo_train_conv2d_s8_bwd_weight(&L->conv, &in, &x, &out, &dyq, &wd, scr, &dw, &dbq);
        } else if (L->kind == OCTO_TL_DW) {
            st = octo_train_dwconv_s8_bwd_weight(&L->conv, &in, &x, &out, &dyq, &wd, &dw, &dbq);
        } else {
            st = octo_train_fc_s8_bwd_weight(&in, &x, &out, &dyq, &wd, scr, &dw, &dbq);
        }
        rt(c, l)[RT_GS] = dw.scale;
        return st;
    }
    const float *x = AT(c, L->x_off, float);
    if (L->kind == OCTO_TL_CONV) {
        return octo_train_conv2d_f32_bwd_weight(&L->conv, &in, x, &out, (const float *)dy, &wd, (float *)grad,
                                                (float *)db);
    }
    if (L->kind == OCTO_TL_DW) {
        return octo_train_dwconv_f32_bwd_weight(&L->conv, &in, x, &out, (const float *)dy, &wd, (float *)grad,
                                                (float *)db);
    }
    return octo_train_fc_f32_bwd_weight(&in, x, &out, (const float *)dy, &wd, (float *)grad, (float *)db);
}

/* The optimizer step of output channels [o0, o0+ob) from their gradients (grads_block). */
static void update_block(ctx_t *c, uint32_t l, upd_t *u, int32_t o0, int32_t ob, void *grad, void *db) {
    const octo_tlayer_t *L = &c->m->layers[l];
    const int32_t per = w_count(L) / out_channels(L);
    float db_scale = 1.0f;
    if (c->m->precision == OCTO_TRAIN_PREC_INT8) {
        db_scale = rt(c, l)[RT_DZ];
        if (L->train_w) {
            upd_run(c, L, u, o0 * per, ob * per, (const int32_t *)grad);
        }
        float *f = (float *)db; /* int32 sums -> float in place */
        const int32_t *q = (const int32_t *)db;
        for (int32_t k = 0; k < ob; k++) {
            f[k] = (float)q[k];
        }
    } else if (L->train_w) {
        sgd_f32(AT(c, L->w_off, float) + (size_t)o0 * (size_t)per, AT(c, L->v_off, float) + (size_t)o0 * (size_t)per,
                (const float *)grad, 1.0f, ob * per, c->hp.lr, c->hp.momentum, c->hp.weight_decay);
    }
    if (L->train_b) {
        sgd_f32(AT(c, L->b_off, float) + o0, AT(c, L->vb_off, float) + o0, (const float *)db, db_scale, ob,
                c->hp.lr, c->hp.momentum, 0.0f);
    }
}

/* Opens the INT8 optimizer of layer l once the first gradient block is known; on the layer's first
 * update the momentum scale is measured from grad (the whole layer's gradients, or NULL when the
 * caller measured it into m_pre and gor_pre). */
static void upd_begin(ctx_t *c, uint32_t l, upd_t *u, const int32_t *grad, float m_pre, uint32_t gor_pre) {
    const octo_tlayer_t *L = &c->m->layers[l];
    if (c->m->precision != OCTO_TRAIN_PREC_INT8 || !L->train_w) {
        return;
    }
    const float gs = rt(c, l)[RT_GS];
    float sv_store = scal(c, L)[OCTO_TS_V_NEXT];
    if (!(sv_store > 0.0f)) {
        uint32_t gor = 0;
        const float mx = grad != NULL ? upd_measure(c, L, 0, w_count(L), grad, gs, &gor) : m_pre;
        sv_store = mx > 0.0f ? mx / 16383.0f : 1e-30f;
        scal(c, L)[OCTO_TS_G_SHIFT] = (float)g_shift_for(grad != NULL ? gor : gor_pre);
    }
    upd_open(c, L, gs, sv_store, u);
}

static void upd_end(ctx_t *c, uint32_t l, const upd_t *u) {
    const octo_tlayer_t *L = &c->m->layers[l];
    if (c->m->precision == OCTO_TRAIN_PREC_INT8 && L->train_w) {
        upd_close(c, L, u);
    }
}

/* Input gradient of layer l for sample s into the tile (int32 or float). */
static int dx_kernel(ctx_t *c, uint32_t l, uint32_t s, octo_train_q32_t *acc) {
    const octo_tlayer_t *L = &c->m->layers[l];
    const octo_tmodel_t *m = c->m;
    const octo_dims_t in = batch_dims(&L->in, 1);
    const octo_dims_t out = batch_dims(&L->out, 1);
    void *scr = AT(c, m->scratch_off, void);
    if (m->precision == OCTO_TRAIN_PREC_FP32) {
        const float *dy = slotf(c, L->y_off, &L->out, s);
        float *dx = AT(c, m->tile_off, float);
        const float *w = AT(c, L->w_off, float);
        switch (L->kind) {
        case OCTO_TL_CONV:
            return octo_train_conv2d_f32_bwd_input(&L->conv, &in, &L->w, w, &out, dy, dx);
        case OCTO_TL_DW:
            return octo_train_dwconv_f32_bwd_input(&L->conv, &in, &L->w, w, &out, dy, dx);
        case OCTO_TL_FC:
            return octo_train_fc_f32_bwd_input(&in, &L->w, w, &out, dy, dx);
        case OCTO_TL_MAXPOOL:
            return octo_train_maxpool_f32_bwd(&L->pool, &in, slotf(c, L->x_off, &L->in, s), &out, dy, dx);
        default:
            return octo_train_avgpool_f32_bwd(&L->pool, &in, &out, dy, dx);
        }
    }
    octo_train_q8_t dy = {slot8(c, L->y_off, &L->out, s), rt(c, l)[RT_DZ]};
    acc->data = AT(c, m->tile_off, int32_t);
    switch (L->kind) {
    case OCTO_TL_CONV: {
        const octo_train_q8_t w = w8_of(c, l);
        return octo_train_conv2d_s8_bwd_input(&L->conv, &in, &L->w, &w, &out, &dy, scr, acc);
    }
    case OCTO_TL_DW: {
        const octo_train_q8_t w = w8_of(c, l);
        return octo_train_dwconv_s8_bwd_input(&L->conv, &in, &L->w, &w, &out, &dy, acc);
    }
    case OCTO_TL_FC: {
        const octo_train_q8_t w = w8_of(c, l);
        return octo_train_fc_s8_bwd_input(&in, &L->w, &w, &out, &dy, scr, acc);
    }
    case OCTO_TL_MAXPOOL: {
        octo_train_q8_t x = {slot8(c, L->x_off, &L->in, s), x_scale(c, l)};
        return octo_train_maxpool_s8_bwd(&L->pool, &in, &x, &out, &dy, acc);
    }
    default:
        return octo_train_avgpool_s8_bwd(&L->pool, &in, &out, &dy, acc);
    }
}

/* Input gradient of layer l for the whole batch, one sample at a time, into
 * layer l-1's slot (INT8: rounded to nearest with the layer's delayed range,
 * clipped by PRC). */
/* MAX_POOL with non-overlapping windows: each dy goes to its window's first
 * maximum (row-major), read from the saved input; the rest of the input gets
 * 0. Exact in INT8 (the input gradient keeps dy's scale). */
#define MAXPOOL_FUSED_TAPS 64

static int maxpool_fusable(const octo_tlayer_t *L) {
    return L->kind == OCTO_TL_MAXPOOL && L->pool_exact && L->pool.filter_h * L->pool.filter_w <= MAXPOOL_FUSED_TAPS;
}

/* Input offsets (h*W + w)*C of the in-image taps of output (oh, ow), row-major. */
static int32_t window_taps(const octo_tlayer_t *L, int32_t oh, int32_t ow, int32_t *taps) {
    const octo_train_pool_params_t *pp = &L->pool;
    const int32_t h0 = oh * pp->stride_h - pp->pad_h, w0 = ow * pp->stride_w - pp->pad_w;
    int32_t n = 0;
    for (int32_t h = octo_tr_max(h0, 0); h < octo_tr_min(h0 + pp->filter_h, L->in.h); h++) {
        for (int32_t w = octo_tr_max(w0, 0); w < octo_tr_min(w0 + pp->filter_w, L->in.w); w++) {
            taps[n++] = (h * L->in.w + w) * L->in.c;
        }
    }
    return n;
}

/* Zero the inputs that no window reads (right/bottom remainders). */
static void zero_unread(const octo_tlayer_t *L, int8_t *y8, float *yf) {
    const octo_train_pool_params_t *pp = &L->pool;
    const int32_t C = L->in.c;
    for (int32_t h = 0; h < L->in.h; h++) {
        const int32_t rh = h + pp->pad_h;
        const int row_in = rh % pp->stride_h < pp->filter_h && rh / pp->stride_h < L->out.h;
        for (int32_t w = 0; w < L->in.w; w++) {
            const int32_t rw = w + pp->pad_w;
            if (row_in && rw % pp->stride_w < pp->filter_w && rw / pp->stride_w < L->out.w) {
                continue;
            }
            if (y8 != NULL) {
                memset(&y8[(h * L->in.w + w) * C], 0, (size_t)C);
            } else {
                memset(&yf[(h * L->in.w + w) * C], 0, (size_t)C * sizeof(float));
            }
        }
    }
}

static void maxpool_dx_fused(ctx_t *c, uint32_t l, uint32_t s) {
    const octo_tlayer_t *L = &c->m->layers[l];
    const int32_t C = L->in.c;
    int32_t taps[MAXPOOL_FUSED_TAPS];
    const sink_t k = sink_open(c, l - 1u, s);
    const int int8 = c->m->precision == OCTO_TRAIN_PREC_INT8;
    int32_t o = 0;
    for (int32_t oh = 0; oh < L->out.h; oh++) {
        for (int32_t ow = 0; ow < L->out.w; ow++, o += C) {
            const int32_t nt = window_taps(L, oh, ow, taps);
            if (int8) {
                const int8_t *d = slot8(c, L->y_off, &L->out, s) + o;
                int8_t *y = k.y8;
                for (int32_t ch = 0; ch < C; ch++) {
                    int32_t best = taps[0] + ch;
                    int32_t bv = y[best];
                    for (int32_t t = 1; t < nt; t++) {
                        const int32_t v = y[taps[t] + ch];
                        if (v > bv) {
                            bv = v;
                            best = taps[t] + ch;
                        }
                    }
                    const int32_t g = d[ch];
                    for (int32_t t = 0; t < nt; t++) {
                        y[taps[t] + ch] = 0;
                    }
                    y[best] = (int8_t)bv; /* the mask and LAC read the maximum */
                    sink_put8(k, best, ch, g);
                }
            } else {
                const float *d = slotf(c, L->y_off, &L->out, s) + o;
                float *y = k.yf;
                for (int32_t ch = 0; ch < C; ch++) {
                    int32_t best = taps[0] + ch;
                    float bv = y[best];
                    for (int32_t t = 1; t < nt; t++) {
                        const float v = y[taps[t] + ch];
                        if (v > bv) {
                            bv = v;
                            best = taps[t] + ch;
                        }
                    }
                    for (int32_t t = 0; t < nt; t++) {
                        y[taps[t] + ch] = 0.0f;
                    }
                    y[best] = bv;
                    sink_putf(k, best, d[ch]);
                }
            }
        }
    }
    zero_unread(L, k.y8, k.yf);
}

static int global_pool(const octo_tlayer_t *L) {
    return L->kind == OCTO_TL_AVGPOOL && L->out.h == 1 && L->out.w == 1 && L->pool.filter_h >= L->in.h &&
           L->pool.filter_w >= L->in.w && L->pool.pad_h == 0 && L->pool.pad_w == 0;
}

/* Global average pool: every input position gets dy / (H*W). INT8 keeps dy's
 * integers and divides the scale (exact). */
static void gap_dx_fused(ctx_t *c, uint32_t l, uint32_t s) {
    const octo_tlayer_t *L = &c->m->layers[l];
    const int32_t C = L->in.c;
    const int32_t n = elems(&L->in);
    const sink_t k = sink_open(c, l - 1u, s);
    if (c->m->precision == OCTO_TRAIN_PREC_INT8) {
        const int8_t *d = slot8(c, L->y_off, &L->out, s);
        for (int32_t i = 0; i < n; i += C) {
            for (int32_t ch = 0; ch < C; ch++) {
                sink_put8(k, i + ch, ch, d[ch]);
            }
        }
    } else {
        const float *d = slotf(c, L->y_off, &L->out, s);
        const float inv = 1.0f / (float)(L->in.h * L->in.w);
        for (int32_t i = 0; i < n; i += C) {
            for (int32_t ch = 0; ch < C; ch++) {
                sink_putf(k, i + ch, d[ch] * inv);
            }
        }
    }
}

/* Input gradient of layer l for the whole batch, one sample at a time, into
 * layer l-1's slot (INT8: rounded to nearest with the layer's delayed range,
 * clipped by PRC). */
static int backward_dx(ctx_t *c, uint32_t l) {
    const octo_tlayer_t *L = &c->m->layers[l];
    const uint32_t p = l - 1u;
    const int32_t count = elems(&L->in);
    const int int8 = c->m->precision == OCTO_TRAIN_PREC_INT8;
    lac_sums_clear(c, p);
    if (maxpool_fusable(L) || global_pool(L)) {
        for (uint32_t s = 0; s < c->n; s++) {
            if (L->kind == OCTO_TL_MAXPOOL) {
                maxpool_dx_fused(c, l, s);
            } else {
                gap_dx_fused(c, l, s);
            }
        }
        if (int8) {
            rt(c, p)[RT_DZ] = L->kind == OCTO_TL_MAXPOOL ? rt(c, l)[RT_DZ]
                                                          : rt(c, l)[RT_DZ] / (float)(L->in.h * L->in.w);
        }
        return OCTO_OK;
    }
    octo_train_q32_t acc = {NULL, 1.0f};
    if (!int8) {
        for (uint32_t s = 0; s < c->n; s++) {
            const int st = dx_kernel(c, l, s, &acc);
            if (st != OCTO_OK) {
                return st;
            }
            const sink_t k = sink_open(c, p, s);
            const float *d = AT(c, c->m->tile_off, float);
            for (int32_t i = 0; i < count; i++) {
                sink_putf(k, i, d[i]);
            }
        }
        return OCTO_OK;
    }
    float *sc = scal(c, L);
    float range = sc[OCTO_TS_R_BWD];
    float acc_scale = 1.0f;
    for (int pass = range > 0.0f ? 1 : 0; pass < 2; pass++) {
        uint32_t amax = 0;
        uint64_t sum = 0;
        for (uint32_t s = 0; s < c->n; s++) {
            const int st = dx_kernel(c, l, s, &acc);
            if (st != OCTO_OK) {
                return st;
            }
            acc_scale = acc.scale;
            if (pass == 0) {
                const uint32_t a = octo_train_absmax_s32(acc.data, count);
                amax = a > amax ? a : amax;
                continue;
            }
            const float inv = 127.0f * acc_scale / range;
            const sink_t k = sink_open(c, p, s);
            for (int32_t px = 0; px < count; px += k.ch) {
                for (int32_t j = 0; j < k.ch; j++) { /* round to nearest (ties to even), then the sink */
                    const int32_t vj = acc.data[px + j];
                    const uint32_t a = (uint32_t)(vj < 0 ? -vj : vj);
                    amax = a > amax ? a : amax;
                    sum += a;
                    int32_t q = round_bits((float)vj * inv);
                    if ((uint32_t)(q + (1 << 22)) >= (1u << 23)) { /* beyond the exact range */
                        q = vj > 0 ? 127 : -127;
                    }
                    q = q > 127 ? 127 : (q < -127 ? -127 : q);
                    sink_put8(k, px + j, j, q);
                }
            }
        }
        const float measured = amax > 0u ? (float)amax * acc_scale : acc_scale;
        if (pass == 0) {
            range = measured;
            continue;
        }
        rt(c, p)[RT_DZ] = range / 127.0f;
        if (c->train) {
            float next = measured;
            if ((c->hp.flags & OCTO_TRAIN_FLAG_PRC) != 0u && c->hp.prc_k > 0.0f && sum > 0u) {
                const float mean = (float)sum / ((float)count * (float)c->n) * acc_scale;
                const float clip = c->hp.prc_k * mean;
                next = clip < next ? clip : next;
            }
            const float decayed = RANGE_DECAY * range;
            sc[OCTO_TS_R_BWD] = next > decayed ? next : decayed;
        }
    }
    return OCTO_OK;
}

/* A layer whose weight gradients do not fit the gradient buffer at once (L->chunk_oc output channels
 * at a time): the input gradient goes to a side buffer first (it needs the old weights, and the weight
 * gradients need the saved input it would overwrite), then gradient and update block by block, then
 * the input gradient moves over the saved input. On a layer's first update the momentum scale needs
 * every gradient first: one extra gradient sweep. */
static int train_chunked(ctx_t *c, uint32_t l) {
    const octo_tlayer_t *L = &c->m->layers[l];
    const int32_t oc = out_channels(L);
    const int32_t per = w_count(L) / oc;
    const int32_t cb = L->chunk_oc;
    void *grad = AT(c, c->m->grad_off, void);
    void *db = (uint8_t *)grad + (size_t)cb * (size_t)per * 4u;
    uint64_t t0 = prof_now(c);
    if (L->need_dx) {
        c->dx_to = AT(c, L->dxt_off, void);
        const int st = backward_dx(c, l);
        c->dx_to = NULL;
        if (st != OCTO_OK) {
            return st;
        }
    }
    prof_add(c, l, OCTO_TP_DX, t0);
    float m_pre = 0.0f;
    uint32_t gor_pre = 0;
    const int measure = c->m->precision == OCTO_TRAIN_PREC_INT8 && !(scal(c, L)[OCTO_TS_V_NEXT] > 0.0f);
    upd_t u;
    for (int pass = measure ? 0 : 1; pass < 2; pass++) { /* pass 0: the first update's measurement */
        for (int32_t o0 = 0; o0 < oc; o0 += cb) {
            const int32_t ob = oc - o0 < cb ? oc - o0 : cb;
            t0 = prof_now(c);
            const int st = grads_block(c, l, o0, ob, grad, db);
            prof_add(c, l, OCTO_TP_GRAD, t0);
            if (st != OCTO_OK) {
                return st;
            }
            t0 = prof_now(c);
            if (pass == 0) {
                const float mx = upd_measure(c, L, o0 * per, ob * per, (const int32_t *)grad, rt(c, l)[RT_GS],
                                             &gor_pre);
                m_pre = mx > m_pre ? mx : m_pre;
                continue;
            }
            if (o0 == 0) {
                upd_begin(c, l, &u, NULL, m_pre, gor_pre);
            }
            update_block(c, l, &u, o0, ob, grad, db);
            prof_add(c, l, OCTO_TP_UPDATE, t0);
        }
    }
    upd_end(c, l, &u);
    if (L->need_dx) {
        const size_t es = c->m->precision == OCTO_TRAIN_PREC_INT8 ? 1u : 4u;
        memcpy(AT(c, L->x_off, uint8_t), AT(c, L->dxt_off, uint8_t), (size_t)c->n * (size_t)elems(&L->in) * es);
    }
    return OCTO_OK;
}

/* Backward and update of every layer, from the output gradient in the last layer's slot. */
static int backward(ctx_t *c) {
    const octo_tmodel_t *m = c->m;
    const uint32_t last = m->n_layers - 1u;
    for (uint32_t l = last + 1u; l-- > 0u;) {
        const octo_tlayer_t *L = &m->layers[l];
        const int trains = has_weights(L) && (L->train_w || L->train_b);
        uint64_t t0 = prof_now(c);
        if (lac_on(c, L)) {
            lac_backward(c, l);
        }
        if (trains && L->train_w && L->chunk_oc < out_channels(L)) {
            prof_add(c, l, OCTO_TP_GRAD, t0);
            const int st = train_chunked(c, l);
            if (st != OCTO_OK) {
                return st;
            }
            continue;
        }
        void *grad = AT(c, m->grad_off, void);
        void *db = (uint8_t *)grad + (size_t)w_count(L) * 4u;
        if (trains) {
            const int st = grads_block(c, l, 0, L->out.c, grad, db); /* before dx overwrites the input */
            if (st != OCTO_OK) {
                return st;
            }
        }
        prof_add(c, l, OCTO_TP_GRAD, t0);
        t0 = prof_now(c);
        if (L->need_dx) {
            const int st = backward_dx(c, l); /* with the weights of the forward pass */
            if (st != OCTO_OK) {
                return st;
            }
        }
        prof_add(c, l, OCTO_TP_DX, t0);
        t0 = prof_now(c);
        if (trains) {
            upd_t u;
            upd_begin(c, l, &u, (const int32_t *)grad, 0.0f, 0u);
            update_block(c, l, &u, 0, L->out.c, grad, db);
            upd_end(c, l, &u);
        }
        prof_add(c, l, OCTO_TP_UPDATE, t0);
    }
    return OCTO_OK;
}

/* Arguments of a step or an evaluation: OCTO_E_ARG, OCTO_E_STATE (no valid state) or OCTO_OK. */
static int run_check(const octo_trainer_t *t, uint32_t n, const octo_train_result_t *res) {
    if (t == NULL || t->m == NULL || res == NULL || n == 0u || n > t->m->batch || t->m->split) {
        return OCTO_E_ARG;
    }
    return t->valid ? OCTO_OK : OCTO_E_STATE;
}

int octo_trainer_forward(octo_trainer_t *t, uint32_t n, int train, octo_train_q8_t *out) {
    if (t == NULL || t->m == NULL || out == NULL || n == 0u || n > t->m->batch || !t->m->split ||
        t->m->precision != OCTO_TRAIN_PREC_INT8) {
        return OCTO_E_ARG;
    }
    if (!t->valid) {
        return OCTO_E_STATE;
    }
    ctx_t c;
    ctx_open(&c, t, n, train != 0);
    t->pending = 0;
    const int st = forward(&c);
    if (st != OCTO_OK) {
        if (train) {
            t->valid = 0;
        }
        return st;
    }
    const octo_tlayer_t *L = &t->m->layers[t->m->n_layers - 1u];
    out->data = AT(&c, L->y_off, int8_t);
    out->scale = rt(&c, t->m->n_layers - 1u)[RT_Y];
    if (train) {
        wr32(t->arena + H_PRNG, c.prng.state);
        t->pending = n;
    }
    return OCTO_OK;
}

int octo_trainer_backward(octo_trainer_t *t, uint32_t n, const int8_t *dy, float dy_scale) {
    if (t == NULL || t->m == NULL || dy == NULL || n == 0u || !t->m->split || !(dy_scale > 0.0f) ||
        !(dy_scale <= FLT_MAX)) {
        return OCTO_E_ARG;
    }
    if (!t->valid || t->pending != n) {
        return OCTO_E_STATE;
    }
    ctx_t c;
    ctx_open(&c, t, n, 1);
    t->pending = 0;
    const uint32_t last = t->m->n_layers - 1u;
    const octo_tlayer_t *L = &t->m->layers[last];
    const int32_t e = elems(&L->out);
    lac_sums_clear(&c, last);
    for (uint32_t s = 0; s < n; s++) {
        const sink_t k = sink_open(&c, last, s);
        const int8_t *d = dy + (size_t)s * (size_t)e;
        for (int32_t i = 0; i < e; i++) {
            sink_put8(k, i, i % L->out.c, d[i] < -127 ? -127 : d[i]);
        }
    }
    rt(&c, last)[RT_DZ] = dy_scale;
    const int st = backward(&c);
    if (st != OCTO_OK) {
        t->valid = 0;
        return st;
    }
    wr32(t->arena + H_STEP, rd32(t->arena + H_STEP) + 1u);
    wr32(t->arena + H_PRNG, c.prng.state);
    return OCTO_OK;
}

int octo_trainer_step(octo_trainer_t *t, uint32_t n, octo_train_result_t *res) {
    int st = run_check(t, n, res);
    if (st != OCTO_OK) {
        return st;
    }
    ctx_t c;
    ctx_open(&c, t, n, 1);
    st = forward(&c);
    if (st == OCTO_OK) {
        st = loss_and_grad(&c, res, NULL, 1);
    }
    if (st == OCTO_OK && !(res->loss <= FLT_MAX)) {
        st = OCTO_E_DIVERGED;
    }
    if (st == OCTO_OK) {
        lac_sums_clear(&c, t->m->n_layers - 1u);
        store_dlogits(&c);
        st = backward(&c);
    }
    if (st != OCTO_OK) {
        t->valid = 0; /* ranges or weights half updated: the host restores its checkpoint */
        return st;
    }
    wr32(t->arena + H_STEP, rd32(t->arena + H_STEP) + 1u);
    wr32(t->arena + H_PRNG, c.prng.state);
    return OCTO_OK;
}

int octo_trainer_eval(octo_trainer_t *t, uint32_t n, octo_train_result_t *res, uint8_t *pred) {
    int st = run_check(t, n, res);
    if (st != OCTO_OK) {
        return st;
    }
    ctx_t c;
    ctx_open(&c, t, n, 0);
    st = forward(&c);
    if (st == OCTO_OK) {
        st = loss_and_grad(&c, res, pred, 0);
    }
    return st;
}
