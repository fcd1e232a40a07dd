/* octo_trainer_state.c - the training engine's state blob (layout in docs/TRAINING.md) and its
 * public entry points that touch no layer computation: bind, init (converted or random weights),
 * commit (a written-back checkpoint), stage, step count, learning rate. */
#include "octo_trainer_internal.h"

/* Real value of converted/random initial weight i (the PRNG advances for random init). */
static float init_weight(const octo_train_layer_t *L, int32_t i, int random, octo_train_prng_t *r) {
    if (random || L->init_w == NULL) {
        return (uniform(r) * 2.0f - 1.0f) * L->init_bound;
    }
    return (float)L->init_w[i] * L->init_ws[w_channel(L, i)];
}

static void init_layer(ctx_t *c, const octo_train_layer_t *L, int random) {
    const int32_t n = w_count(L);
    const int32_t oc = out_channels(L);
    float *sc = scal(c, L);
    octo_train_prng_t first = c->prng;
    if (L->w_off == OCTO_TRAIN_NONE) {
        sc[OCTO_TS_W_SCALE] = L->flash_ws; /* frozen in flash: computed at plan time (converted init only) */
    } else if (c->m->precision == OCTO_TRAIN_PREC_FP32) {
        float *w = AT(c, L->w_off, float);
        for (int32_t i = 0; i < n; i++) {
            w[i] = init_weight(L, i, random, &c->prng);
        }
        if (L->v_off != OCTO_TRAIN_NONE) {
            memset(AT(c, L->v_off, float), 0, (size_t)w_trained(L) * sizeof(float));
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
            memset(AT(c, L->v_off, int16_t), 0, (size_t)w_trained(L) * sizeof(int16_t));
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

/* The INT8 kernel scratch of a layer's step: its forward's, its input gradient's when it computes one, its
 * weight gradients' when its weights train (converter/train_plan.py _s8_scratch plans the same). */
static size_t layer_scratch(const octo_train_layer_t *L) {
    size_t s = 0;
    if (L->kind == OCTO_TRAIN_LAYER_CONV) {
        const size_t a = octo_train_conv_s8_fwd_scratch_size(&L->w);
        const size_t b = L->need_dx ? octo_train_conv_s8_bwd_input_scratch_size(&L->w) : 0u;
        const size_t d = L->train_w ? octo_train_conv_s8_bwd_weight_scratch_size(&L->w) : 0u;
        s = a > b ? a : b;
        s = d > s ? d : s;
    } else if (L->kind == OCTO_TRAIN_LAYER_FULLY_CONNECTED) {
        const size_t b = L->need_dx ? octo_train_fully_connected_s8_bwd_input_scratch_size(&L->w) : 0u;
        const size_t d = L->train_w ? octo_train_fully_connected_s8_bwd_weight_scratch_size(&L->w) : 0u;
        s = b > d ? b : d;
    }
    return s;
}

/* The layer table describes a graph the engine can run: inputs produced by earlier layers, gradient
 * modes that have somewhere to go (a partial sum needs its producer's gp buffer). */
static int graph_ok(const octo_train_model_t *m) {
    for (uint32_t l = 0; l < m->n_layers; l++) {
        const octo_train_layer_t *L = &m->layers[l];
        const int n_in = L->kind == OCTO_TRAIN_LAYER_ADD ? 2 : 1;
        if (L->kind > OCTO_TRAIN_LAYER_ADD) {
            return 0;
        }
        for (int i = 0; i < n_in; i++) {
            const uint32_t src = L->src[i];
            const uint8_t mode = L->dx_mode[i];
            if ((src != OCTO_TRAIN_INPUT && src >= l) || mode > OCTO_TRAIN_DX_FINAL) {
                return 0;
            }
            if (mode != OCTO_TRAIN_DX_NONE && (src == OCTO_TRAIN_INPUT || (mode != OCTO_TRAIN_DX_SINK &&
                                                                          m->layers[src].gp_off == OCTO_TRAIN_NONE))) {
                return 0;
            }
            if (L->kind == OCTO_TRAIN_LAYER_ADD && mode != OCTO_TRAIN_DX_NONE && mode != OCTO_TRAIN_DX_SINK &&
                mode != OCTO_TRAIN_DX_STORE) {
                return 0;
            }
        }
    }
    return 1;
}

int octo_trainer_bind(octo_trainer_t *t, const octo_train_model_t *m, uint8_t *arena) {
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
    if (m->tile_bytes < (uint32_t)m->batch * m->classes * (m->precision == OCTO_TRAIN_PREC_INT8 ? 1u : 4u)) {
        return OCTO_E_NOMEM;
    }
    if (!graph_ok(m)) {
        return OCTO_E_ARG;
    }
    if (m->loss > OCTO_TRAIN_LOSS_MSE ||
        (m->loss == OCTO_TRAIN_LOSS_MSE && !m->targets && m->classes != m->input_elems)) {
        return OCTO_E_ARG; /* an autoencoder's target is the sample itself */
    }
    if (m->targets && (m->loss != OCTO_TRAIN_LOSS_MSE || m->split || m->target_off > m->arena_bytes ||
                       (uint64_t)m->batch * m->classes > m->arena_bytes - m->target_off)) {
        return OCTO_E_ARG;
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
        !(hp->lac_l2 >= 0.0f) || hp->init > 1u || (t->m->targets && !(hp->target_scale > 0.0f))) {
        return OCTO_E_ARG;
    }
    const octo_train_model_t *m = t->m;
    for (uint32_t l = 0; l < m->n_layers && hp->init == 1u; l++) {
        if (has_weights(&m->layers[l]) && m->layers[l].w_off == OCTO_TRAIN_NONE) {
            return OCTO_E_UNSUPPORTED; /* frozen weights in flash: no RAM to put random weights in */
        }
    }
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
    if (m->targets) { /* else the header's bytes 56..63 stay 0, as before targets existed */
        wrf(h + H_TARGET_SCALE, hp->target_scale);
    }
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
    if (!(c.hp.input_scale > 0.0f) || (t->m->targets && !(c.hp.target_scale > 0.0f))) {
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
    const octo_train_model_t *m = t->m;
    int32_t *lab = (int32_t *)(void *)(t->arena + m->label_off);
    for (uint32_t i = 0; i < count; i++) {
        lab[first + i] = labels[i];
    }
    memcpy(t->arena + m->stage_off + (size_t)first * m->input_elems, samples, (size_t)count * m->input_elems);
    return OCTO_OK;
}

int octo_trainer_stage_targets(octo_trainer_t *t, uint32_t offset, const int8_t *data, uint32_t len) {
    if (t == NULL || t->m == NULL || data == NULL) {
        return OCTO_E_ARG;
    }
    const octo_train_model_t *m = t->m;
    if (!m->targets) {
        return OCTO_E_UNSUPPORTED;
    }
    const uint32_t total = (uint32_t)m->batch * m->classes; /* bind checked it fits the arena */
    if (offset > total || len > total - offset) {
        return OCTO_E_ARG;
    }
    memcpy(t->arena + m->target_off + offset, data, len);
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
