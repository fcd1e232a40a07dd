/* octo_train_app.c - training service over the serial protocol (needs a generated train_model.c). */
#ifdef OCTO_WITH_TRAIN

#include "octo/octo_train_app.h"

#include <string.h>

#include "octo/octo_board.h"
#include "octo/octo_sgq.h"

#ifndef OCTO_TRAIN_MAX_PROFILE_LAYERS
#define OCTO_TRAIN_MAX_PROFILE_LAYERS 64u
#endif

static octo_trainer_t s_trainer;
static int s_bound;
static uint32_t s_profile[OCTO_TRAIN_MAX_PROFILE_LAYERS * OCTO_TP_COUNT];
/* Split learning (COLLAB_*): what the last COLLAB_FORWARD left in the arena. */
static struct {
    uint32_t n;             /* samples of the last COLLAB_FORWARD (0: none) */
    uint32_t payload_len;   /* encoded feature bytes in the payload area (0: none, or overwritten) */
    const int8_t *features; /* the last forward's int8 output in the arena (NULL: none or overwritten) */
} s_collab;

/* Binds the engine on first use; OCTO_OK or the bind status. */
static int trainer(octo_proto_t *p, octo_trainer_t **out) {
    if (!s_bound) {
        const int st = octo_trainer_bind(&s_trainer, &g_octo_train_model, g_octo_train_arena);
        if (st != OCTO_OK) {
            p->error_text = "training plan does not match the engine (rebuild with `octo train`)";
            return st;
        }
        if (g_octo_train_model.n_layers <= OCTO_TRAIN_MAX_PROFILE_LAYERS) {
            s_trainer.clock = octo_board_ticks;
            s_trainer.profile = s_profile;
        }
        s_bound = 1;
    }
    *out = &s_trainer;
    return OCTO_OK;
}

int octo_train_info(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len) {
    (void)req;
    octo_trainer_t *t = NULL;
    const int st = trainer(p, &t);
    if (st != OCTO_OK) {
        return st;
    }
    const octo_tmodel_t *m = t->m;
    if (cap < 37) {
        return OCTO_E_BUF;
    }
    octo_put_u32(&resp[0], m->fingerprint);
    octo_put_u32(&resp[4], m->config_crc);
    resp[8] = m->precision;
    resp[9] = m->n_layers;
    octo_put_u16(&resp[10], m->batch);
    octo_put_u32(&resp[12], m->input_elems);
    octo_put_u32(&resp[16], m->classes);
    octo_put_u32(&resp[20], m->state_bytes);
    octo_put_u32(&resp[24], m->arena_bytes);
    octo_put_u32(&resp[28], octo_trainer_step_count(t));
    resp[32] = (uint8_t)(t->valid ? 1 : 0);
    memset(&resp[33], 0, 4);
    *resp_len = 37;
    return OCTO_OK;
}

static float get_f32(const uint8_t *b) {
    float f;
    memcpy(&f, b, 4);
    return f;
}

int octo_train_init_msg(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len) {
    octo_trainer_t *t = NULL;
    int st = trainer(p, &t);
    if (st != OCTO_OK) {
        return st;
    }
    if (req->len != 32 || cap < 4) {
        p->error_text = "TRAIN_INIT payload must be 32 bytes";
        return OCTO_E_PAYLOAD;
    }
    const uint8_t *b = req->payload;
    octo_train_hparams_t hp;
    hp.seed = octo_get_u32(&b[0]);
    hp.init = b[4];
    hp.flags = b[5];
    hp.lr = get_f32(&b[8]);
    hp.momentum = get_f32(&b[12]);
    hp.weight_decay = get_f32(&b[16]);
    hp.input_scale = get_f32(&b[20]);
    hp.prc_k = get_f32(&b[24]);
    hp.lac_l2 = get_f32(&b[28]);
    memset(&s_collab, 0, sizeof s_collab);
    st = octo_trainer_init(t, &hp);
    if (st != OCTO_OK) {
        p->error_text = "bad hyper-parameter: need lr >= 0, 0 <= momentum < 1, decay/prc_k/lac_l2 >= 0, "
                        "input_scale > 0, init 0 or 1";
        return st;
    }
    octo_put_u32(resp, t->m->state_bytes);
    *resp_len = 4;
    return OCTO_OK;
}

int octo_train_load(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len) {
    octo_trainer_t *t = NULL;
    int st = trainer(p, &t);
    if (st != OCTO_OK) {
        return st;
    }
    if (req->len < 4 || cap < 2) {
        return OCTO_E_PAYLOAD;
    }
    const uint32_t first = octo_get_u16(&req->payload[0]);
    const uint32_t count = octo_get_u16(&req->payload[2]);
    if ((size_t)req->len != 4u + (size_t)count * (1u + t->m->input_elems)) {
        p->error_text = "TRAIN_LOAD length must be 4 + count * (1 + input_elems)";
        return OCTO_E_PAYLOAD;
    }
    t->pending = 0; /* staging overwrites the first layer's saved input: a pending split forward is void */
    st = octo_trainer_stage(t, first, count, &req->payload[4], (const int8_t *)&req->payload[4 + count]);
    if (st != OCTO_OK) {
        p->error_text = "TRAIN_LOAD: samples beyond the batch, or a label >= classes";
        return st;
    }
    octo_put_u16(resp, (uint16_t)count);
    *resp_len = 2;
    return OCTO_OK;
}

int octo_train_load_part(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len) {
    octo_trainer_t *t = NULL;
    int st = trainer(p, &t);
    if (st != OCTO_OK) {
        return st;
    }
    if (req->len < 8 || cap < 4) {
        return OCTO_E_PAYLOAD;
    }
    const uint32_t off = octo_get_u32(&req->payload[4]);
    const uint32_t len = req->len - 8u;
    t->pending = 0; /* as TRAIN_LOAD */
    st = octo_trainer_stage_part(t, octo_get_u16(&req->payload[0]), req->payload[2], off,
                                 (const int8_t *)&req->payload[8], len);
    if (st != OCTO_OK) {
        p->error_text = "TRAIN_LOAD_PART: sample beyond the batch, label >= classes, or bytes beyond the sample";
        return st;
    }
    octo_put_u32(resp, off + len);
    *resp_len = 4;
    return OCTO_OK;
}

static void put_result(uint8_t *resp, const octo_train_result_t *r, uint32_t ticks) {
    memcpy(&resp[0], &r->loss, 4);
    octo_put_u16(&resp[4], (uint16_t)r->correct);
    octo_put_u16(&resp[6], (uint16_t)r->n);
    octo_put_u32(&resp[8], ticks);
}

int octo_train_step_msg(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len) {
    octo_trainer_t *t = NULL;
    int st = trainer(p, &t);
    if (st != OCTO_OK) {
        return st;
    }
    if ((req->len != 6 && req->len != 10) || cap < 16) {
        p->error_text = "TRAIN_STEP payload: u32 step, u16 n[, f32 lr]";
        return OCTO_E_PAYLOAD;
    }
    if (t->m->split) {
        p->error_text = "a split build trains with COLLAB_FORWARD and COLLAB_BACKWARD (`octo collab`)";
        return OCTO_E_UNSUPPORTED;
    }
    if (!t->valid) {
        p->error_text = "no training state: send TRAIN_INIT or restore a checkpoint";
        return OCTO_E_STATE;
    }
    if (octo_get_u32(&req->payload[0]) != octo_trainer_step_count(t)) {
        p->error_text = "step mismatch: the board is at another step (reset?); restore a checkpoint";
        return OCTO_E_STATE;
    }
    const uint32_t n = octo_get_u16(&req->payload[4]);
    if (req->len == 10) { /* the host's learning-rate schedule: this step's rate */
        st = octo_trainer_set_lr(t, get_f32(&req->payload[6]));
        if (st != OCTO_OK) {
            p->error_text = "TRAIN_STEP: lr must be >= 0";
            return st;
        }
    }
    octo_train_result_t r;
    const uint64_t t0 = octo_board_ticks();
    st = octo_trainer_step(t, n, &r);
    const uint64_t t1 = octo_board_ticks();
    if (st != OCTO_OK) {
        p->error_text = st == OCTO_E_ARG     ? "TRAIN_STEP: n must be 1..batch"
                        : st == OCTO_E_DIVERGED ? "training diverged (loss or activations not finite): lower the "
                                                  "learning rate and restore a checkpoint"
                                                : "training step failed";
        return st;
    }
    octo_put_u32(&resp[0], octo_trainer_step_count(t));
    put_result(&resp[4], &r, (uint32_t)(t1 - t0));
    *resp_len = 16;
    return OCTO_OK;
}

int octo_train_eval_msg(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len) {
    octo_trainer_t *t = NULL;
    int st = trainer(p, &t);
    if (st != OCTO_OK) {
        return st;
    }
    if (req->len != 2) {
        return OCTO_E_PAYLOAD;
    }
    const uint32_t n = octo_get_u16(&req->payload[0]);
    if (cap < 12u + n) {
        return OCTO_E_BUF;
    }
    if (t->m->split) {
        p->error_text = "a split build evaluates with COLLAB_FORWARD mode 0 (`octo collab`)";
        return OCTO_E_UNSUPPORTED;
    }
    if (!t->valid) {
        p->error_text = "no training state: send TRAIN_INIT or restore a checkpoint";
        return OCTO_E_STATE;
    }
    octo_train_result_t r;
    const uint64_t t0 = octo_board_ticks();
    st = octo_trainer_eval(t, n, &r, &resp[12]);
    const uint64_t t1 = octo_board_ticks();
    if (st != OCTO_OK) {
        p->error_text = st == OCTO_E_ARG ? "EVAL: n must be 1..batch" : "evaluation failed";
        return st;
    }
    put_result(resp, &r, (uint32_t)(t1 - t0));
    *resp_len = 12u + n;
    return OCTO_OK;
}

int octo_train_get_weights(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap,
                           size_t *resp_len) {
    octo_trainer_t *t = NULL;
    const int st = trainer(p, &t);
    if (st != OCTO_OK) {
        return st;
    }
    if (req->len != 6) {
        return OCTO_E_PAYLOAD;
    }
    const uint32_t off = octo_get_u32(&req->payload[0]);
    const uint32_t len = octo_get_u16(&req->payload[4]);
    if (off > t->m->state_bytes || len > t->m->state_bytes - off || len > cap) {
        p->error_text = "GET_WEIGHTS range outside the state blob";
        return OCTO_E_ARG;
    }
    memcpy(resp, t->arena + off, len);
    *resp_len = len;
    return OCTO_OK;
}

int octo_train_set_weights(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap,
                           size_t *resp_len) {
    octo_trainer_t *t = NULL;
    const int st = trainer(p, &t);
    if (st != OCTO_OK) {
        return st;
    }
    if (req->len < 4 || cap < 4) {
        return OCTO_E_PAYLOAD;
    }
    const uint32_t off = octo_get_u32(&req->payload[0]);
    const uint32_t len = req->len - 4u;
    if (off > t->m->state_bytes || len > t->m->state_bytes - off) {
        p->error_text = "SET_WEIGHTS range outside the state blob";
        return OCTO_E_ARG;
    }
    t->valid = 0; /* until COMMIT_WEIGHTS checks the whole blob */
    memset(&s_collab, 0, sizeof s_collab);
    memcpy(t->arena + off, &req->payload[4], len);
    octo_put_u32(resp, off + len);
    *resp_len = 4;
    return OCTO_OK;
}

int octo_train_commit(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len) {
    octo_trainer_t *t = NULL;
    int st = trainer(p, &t);
    if (st != OCTO_OK) {
        return st;
    }
    if (req->len != 8 || cap < 4) {
        return OCTO_E_PAYLOAD;
    }
    t->valid = 0;
    if (octo_get_u32(&req->payload[0]) != t->m->state_bytes) {
        p->error_text = "COMMIT_WEIGHTS: the blob has the wrong length for this training build";
        return OCTO_E_STATE;
    }
    if (octo_crc32(0, t->arena, t->m->state_bytes) != octo_get_u32(&req->payload[4])) {
        p->error_text = "COMMIT_WEIGHTS: CRC-32 mismatch (a chunk was lost); send the blob again";
        return OCTO_E_CRC;
    }
    st = octo_trainer_commit(t);
    if (st != OCTO_OK) {
        p->error_text = "COMMIT_WEIGHTS: the blob is for another model or training configuration";
        return st;
    }
    octo_put_u32(resp, octo_trainer_step_count(t));
    *resp_len = 4;
    return OCTO_OK;
}

int octo_train_profile(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len) {
    (void)req;
    octo_trainer_t *t = NULL;
    const int st = trainer(p, &t);
    if (st != OCTO_OK) {
        return st;
    }
    if (t->profile == NULL) {
        p->error_text = "profiling is off for models with more than OCTO_TRAIN_MAX_PROFILE_LAYERS layers";
        return OCTO_E_UNSUPPORTED;
    }
    const size_t n = (size_t)t->m->n_layers * OCTO_TP_COUNT;
    if (cap < 1u + 4u * n) {
        return OCTO_E_BUF;
    }
    resp[0] = t->m->n_layers;
    for (size_t i = 0; i < n; i++) {
        octo_put_u32(&resp[1 + 4 * i], t->profile[i]);
    }
    *resp_len = 1u + 4u * n;
    return OCTO_OK;
}

/* --- split learning: COLLAB_* (docs/SGQ.md, section 8) ---------------------------------------- */

/* The engine of a split build; with need_state, also a valid training state. */
static int collab_trainer(octo_proto_t *p, octo_trainer_t **out, int need_state) {
    const int st = trainer(p, out);
    if (st != OCTO_OK) {
        return st;
    }
    if (!(*out)->m->split || g_octo_train_collab.payload_bytes == 0u) {
        p->error_text = "not a split-learning build: COLLAB_* needs a plan with a split layer (`octo collab`)";
        return OCTO_E_UNSUPPORTED;
    }
    if (need_state && !(*out)->valid) {
        p->error_text = "no training state: send TRAIN_INIT or restore a checkpoint";
        return OCTO_E_STATE;
    }
    return OCTO_OK;
}

static const octo_dims_t *split_dims(const octo_trainer_t *t) {
    return &t->m->layers[t->m->n_layers - 1u].out;
}

static uint8_t *collab_at(const octo_trainer_t *t, uint32_t off) {
    return t->arena + off;
}

/* The fp32 payload of q * scale: 12-byte header, then float32 little-endian (the targets are little-endian). */
static size_t fp32_encode(const int8_t *q, uint32_t n, const octo_dims_t *d, float scale, uint8_t *dst) {
    const size_t count = (size_t)n * (size_t)d->h * (size_t)d->w * (size_t)d->c;
    dst[0] = OCTO_COLLAB_FP32_MAGIC;
    dst[1] = OCTO_COLLAB_FP32_VERSION;
    dst[2] = 0;
    dst[3] = 0;
    octo_put_u16(&dst[4], (uint16_t)n);
    octo_put_u16(&dst[6], (uint16_t)d->h);
    octo_put_u16(&dst[8], (uint16_t)d->w);
    octo_put_u16(&dst[10], (uint16_t)d->c);
    uint8_t *o = dst + OCTO_COLLAB_FP32_HEADER_LEN;
    for (size_t i = 0; i < count; i++) {
        const float v = (float)q[i] * scale;
        memcpy(o + 4u * i, &v, 4);
    }
    return OCTO_COLLAB_FP32_HEADER_LEN + 4u * count;
}

/* COLLAB_FORWARD: u32 step, u16 n, u8 mode (0 eval, 1 train), u8 codec (0 SGQ, 1 fp32), u8 bits,
 * u8 groups, u8 stripe_h, u8 stripe_w, u8 flags (bit 0: shared ranges, bit 1: clipped ranges, bit 2:
 * range-coded codes), u8 0
 * -> u32 payload_len, f32 feature scale, u32 forward ticks, u32 encode ticks. */
int octo_collab_forward(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len) {
    octo_trainer_t *t = NULL;
    int st = collab_trainer(p, &t, 1);
    if (st != OCTO_OK) {
        return st;
    }
    if (req->len != 14 || cap < 16) {
        p->error_text = "COLLAB_FORWARD payload: u32 step, u16 n, u8 mode, u8 codec, u8 bits, u8 groups, "
                        "u8 stripe_h, u8 stripe_w, u8 flags, u8 0";
        return OCTO_E_PAYLOAD;
    }
    const uint8_t *b = req->payload;
    const uint32_t n = octo_get_u16(&b[4]);
    const int train = b[6];
    const int codec = b[7];
    const octo_collab_mem_t *cm = &g_octo_train_collab;
    const octo_dims_t *d = split_dims(t);
    if (train > 1 || codec > OCTO_COLLAB_CODEC_FP32 || (b[12] & ~OCTO_COLLAB_FLAGS_ALL) != 0u || b[13] != 0u) {
        p->error_text = "COLLAB_FORWARD: mode must be 0/1, codec 0 (SGQ) or 1 (fp32), flags bits 0-2 only, reserved 0";
        return OCTO_E_PAYLOAD;
    }
    if (n == 0u || n > t->m->batch) {
        p->error_text = "COLLAB_FORWARD: n must be 1..batch";
        return OCTO_E_ARG;
    }
    if (train && octo_get_u32(&b[0]) != octo_trainer_step_count(t)) {
        p->error_text = "step mismatch: the board is at another step (reset?); restore a checkpoint";
        return OCTO_E_STATE;
    }
    const octo_dims_t nd = {(int32_t)n, d->h, d->w, d->c};
    octo_sgq_params_t sp;
    memset(&sp, 0, sizeof sp);
    sp.bits = b[8];
    sp.groups = b[9];
    sp.stripe_h = b[10];
    sp.stripe_w = b[11];
    sp.range_mode = OCTO_SGQ_RANGE_AUTO;
    sp.shared = (b[12] & OCTO_COLLAB_FLAG_SHARED) != 0u;
    sp.grouping = OCTO_SGQ_GROUP_AUTO;
    sp.rounding = OCTO_SGQ_ROUND_NEAREST;
    sp.clip = (b[12] & OCTO_COLLAB_FLAG_CLIP) != 0u ? OCTO_SGQ_CLIP_ALPHA8(sp.bits) : 0;
    sp.entropy = (b[12] & OCTO_COLLAB_FLAG_RC) != 0u;
    if (codec == OCTO_COLLAB_CODEC_SGQ) { /* settings checked before the forward changes anything */
        size_t max_len = 0;
        if (octo_sgq_encoded_max_len(&nd, &sp, &max_len) != OCTO_OK) {
            p->error_text = "COLLAB_FORWARD: SGQ settings do not fit the split tensor (bits 2/4/8, "
                            "1 <= groups <= C, 1 <= stripe_h <= H, 1 <= stripe_w <= W)";
            return OCTO_E_ARG;
        }
        if (max_len > cm->payload_bytes || octo_sgq_scratch_size(d->c, sp.groups) > cm->sgq_bytes) {
            p->error_text = "COLLAB_FORWARD: the SGQ payload or scratch for these settings exceeds the plan's buffers";
            return OCTO_E_NOMEM;
        }
    }
    s_collab.n = 0;
    s_collab.payload_len = 0;
    s_collab.features = NULL;
    octo_train_q8_t out;
    const uint64_t t0 = octo_board_ticks();
    st = octo_trainer_forward(t, n, train, &out);
    const uint64_t t1 = octo_board_ticks();
    if (st != OCTO_OK) {
        p->error_text = st == OCTO_E_DIVERGED ? "training diverged (activations not finite): lower the learning "
                                                "rate and restore a checkpoint"
                                              : "COLLAB_FORWARD: forward failed";
        return st;
    }
    uint8_t *dst = collab_at(t, cm->payload_off);
    size_t len = 0;
    if (codec == OCTO_COLLAB_CODEC_FP32) {
        len = fp32_encode(out.data, n, d, out.scale, dst);
    } else {
        const octo_sgq_ctx_t ctx = {collab_at(t, cm->sgq_off), cm->sgq_bytes};
        const octo_sgq_tensor_t x = {out.data, nd, out.scale};
        st = octo_sgq_encode(&x, &sp, &ctx, dst, cm->payload_bytes, &len);
        if (st != OCTO_OK) {
            p->error_text = "COLLAB_FORWARD: SGQ encoding failed"; /* not reached: settings checked above */
            return st;
        }
    }
    const uint64_t t2 = octo_board_ticks();
    s_collab.n = n;
    s_collab.payload_len = (uint32_t)len;
    s_collab.features = out.data;
    octo_put_u32(&resp[0], (uint32_t)len);
    memcpy(&resp[4], &out.scale, 4);
    octo_put_u32(&resp[8], (uint32_t)(t1 - t0));
    octo_put_u32(&resp[12], (uint32_t)(t2 - t1));
    *resp_len = 16;
    return OCTO_OK;
}

/* COLLAB_READ: u32 offset, u16 length, u8 source (0 payload, 1 raw int8 features) -> bytes. */
int octo_collab_read(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len) {
    octo_trainer_t *t = NULL;
    const int st = collab_trainer(p, &t, 0);
    if (st != OCTO_OK) {
        return st;
    }
    if (req->len != 7 || req->payload[6] > OCTO_COLLAB_SRC_FEATURES) {
        p->error_text = "COLLAB_READ payload: u32 offset, u16 length, u8 source (0 payload, 1 features)";
        return OCTO_E_PAYLOAD;
    }
    const uint32_t off = octo_get_u32(&req->payload[0]);
    const uint32_t len = octo_get_u16(&req->payload[4]);
    const int features = req->payload[6] == OCTO_COLLAB_SRC_FEATURES;
    const octo_dims_t *d = split_dims(t);
    const uint32_t total = features ? (s_collab.features != NULL ? s_collab.n * (uint32_t)(d->h * d->w * d->c) : 0u)
                                    : s_collab.payload_len;
    if (total == 0u) {
        p->error_text = features ? "COLLAB_READ: no features (run COLLAB_FORWARD; a backward overwrites them)"
                                 : "COLLAB_READ: no encoded features (run COLLAB_FORWARD; COLLAB_WRITE overwrites them)";
        return OCTO_E_STATE;
    }
    if (off > total || len > total - off || len > cap) {
        p->error_text = "COLLAB_READ range outside the data";
        return OCTO_E_ARG;
    }
    const uint8_t *src = features ? (const uint8_t *)s_collab.features : collab_at(t, g_octo_train_collab.payload_off);
    memcpy(resp, src + off, len);
    *resp_len = len;
    return OCTO_OK;
}

/* COLLAB_WRITE: u32 offset, bytes -> u32 offset_after. */
int octo_collab_write(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len) {
    octo_trainer_t *t = NULL;
    const int st = collab_trainer(p, &t, 0);
    if (st != OCTO_OK) {
        return st;
    }
    if (req->len < 4 || cap < 4) {
        return OCTO_E_PAYLOAD;
    }
    const uint32_t off = octo_get_u32(&req->payload[0]);
    const uint32_t len = req->len - 4u;
    const uint32_t size = g_octo_train_collab.payload_bytes;
    if (off > size || len > size - off) {
        p->error_text = "COLLAB_WRITE range outside the payload area (larger than the fp32 payload of a batch)";
        return OCTO_E_ARG;
    }
    s_collab.payload_len = 0; /* the encoded features are being overwritten */
    memcpy(collab_at(t, g_octo_train_collab.payload_off) + off, &req->payload[4], len);
    octo_put_u32(resp, off + len);
    *resp_len = 4;
    return OCTO_OK;
}

static int dims_equal(const octo_dims_t *a, const octo_dims_t *b) {
    return a->n == b->n && a->h == b->h && a->w == b->w && a->c == b->c;
}

/* Static texts for the decoder's verdicts (the ERROR frame carries the status code too). */
static const char *sgq_reject_text(int st) {
    switch (st) {
    case OCTO_SGQ_E_SHORT: return "gradient payload rejected: OCTO_SGQ_E_SHORT (shorter than the header)";
    case OCTO_SGQ_E_MAGIC: return "gradient payload rejected: OCTO_SGQ_E_MAGIC";
    case OCTO_SGQ_E_VERSION: return "gradient payload rejected: OCTO_SGQ_E_VERSION (format version not supported)";
    case OCTO_SGQ_E_HEADER: return "gradient payload rejected: OCTO_SGQ_E_HEADER (invalid header field)";
    case OCTO_SGQ_E_SHAPE: return "gradient payload rejected: OCTO_SGQ_E_SHAPE (shape too large)";
    case OCTO_SGQ_E_LENGTH:
        return "gradient payload rejected: OCTO_SGQ_E_LENGTH (length does not add up, or a range-coded "
               "stream is cut short or followed by bytes)";
    case OCTO_SGQ_E_GROUPS: return "gradient payload rejected: OCTO_SGQ_E_GROUPS (invalid group map)";
    case OCTO_SGQ_E_RANGE: return "gradient payload rejected: OCTO_SGQ_E_RANGE (range out of bounds)";
    case OCTO_SGQ_E_CODE:
        return "gradient payload rejected: OCTO_SGQ_E_CODE (invalid code or padding, or a range-coded stream "
               "that does not end where its encoder ended)";
    case OCTO_E_BUF: return "gradient payload rejected: OCTO_E_BUF (shape larger than the split tensor)";
    default: return "gradient payload rejected by the SGQ decoder";
    }
}

/* Decodes the gradient payload (untrusted) into the dy area; the trainer is not touched. */
static int decode_gradient(octo_proto_t *p, const octo_trainer_t *t, uint32_t len, uint32_t n, float *dy_scale) {
    const octo_collab_mem_t *cm = &g_octo_train_collab;
    const uint8_t *src = collab_at(t, cm->payload_off);
    int8_t *dy = (int8_t *)collab_at(t, cm->dy_off);
    const octo_dims_t *d = split_dims(t);
    const octo_dims_t want = {(int32_t)n, d->h, d->w, d->c};
    const uint32_t count = n * (uint32_t)(d->h * d->w * d->c);
    if (len >= 1u && src[0] == OCTO_COLLAB_FP32_MAGIC) {
        if (len < OCTO_COLLAB_FP32_HEADER_LEN || src[1] != OCTO_COLLAB_FP32_VERSION || src[2] != 0u ||
            src[3] != 0u) {
            p->error_text = "gradient payload rejected: fp32 header (short, version or reserved bytes)";
            return OCTO_E_PAYLOAD;
        }
        const octo_dims_t got = {octo_get_u16(&src[4]), octo_get_u16(&src[6]), octo_get_u16(&src[8]),
                                 octo_get_u16(&src[10])};
        if (!dims_equal(&got, &want)) {
            p->error_text = "gradient payload rejected: shape is not [n, H, W, C] of the pending forward";
            return OCTO_E_PAYLOAD;
        }
        if (len != OCTO_COLLAB_FP32_HEADER_LEN + 4u * count) {
            p->error_text = "gradient payload rejected: fp32 length does not match its shape";
            return OCTO_E_PAYLOAD;
        }
        const float *g = (const float *)(const void *)(src + OCTO_COLLAB_FP32_HEADER_LEN); /* 4-aligned */
        for (uint32_t i = 0; i < count; i++) {
            uint32_t bits;
            memcpy(&bits, &g[i], 4);
            if ((bits & 0x7F800000u) == 0x7F800000u) {
                p->error_text = "gradient payload rejected: fp32 values include inf or NaN";
                return OCTO_E_PAYLOAD;
            }
        }
        octo_train_q8_t q = {dy, 0.0f};
        const int st = octo_train_quantize_s8(g, (int32_t)count, OCTO_TRAIN_ROUND_NEAREST, NULL, &q);
        if (st != OCTO_OK) {
            p->error_text = "gradient payload rejected: fp32 values cannot be quantized";
            return st;
        }
        *dy_scale = q.scale;
        return OCTO_OK;
    }
    const octo_sgq_ctx_t ctx = {collab_at(t, cm->sgq_off), cm->sgq_bytes};
    octo_sgq_info_t info;
    const int st = octo_sgq_decode(src, len, &ctx, dy, count, &info);
    if (st != OCTO_OK) {
        p->error_text = sgq_reject_text(st);
        return st;
    }
    if (!dims_equal(&info.dims, &want)) {
        p->error_text = "gradient payload rejected: shape is not [n, H, W, C] of the pending forward";
        return OCTO_E_PAYLOAD;
    }
    *dy_scale = info.scale;
    return OCTO_OK;
}

/* COLLAB_BACKWARD: u32 step, u32 length, f32 lr -> u32 step_after, f32 dy scale, u32 decode ticks,
 * u32 backward ticks. A rejected payload changes nothing: the forward stays pending. */
int octo_collab_backward(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len) {
    octo_trainer_t *t = NULL;
    int st = collab_trainer(p, &t, 1);
    if (st != OCTO_OK) {
        return st;
    }
    if (req->len != 12 || cap < 16) {
        p->error_text = "COLLAB_BACKWARD payload: u32 step, u32 length, f32 lr";
        return OCTO_E_PAYLOAD;
    }
    const uint32_t len = octo_get_u32(&req->payload[4]);
    const float lr = get_f32(&req->payload[8]);
    if (octo_get_u32(&req->payload[0]) != octo_trainer_step_count(t)) {
        p->error_text = "step mismatch: the board is at another step (reset?); restore a checkpoint";
        return OCTO_E_STATE;
    }
    if (t->pending == 0u || t->pending != s_collab.n) {
        p->error_text = "COLLAB_BACKWARD without a pending training forward (COLLAB_FORWARD mode 1)";
        return OCTO_E_STATE;
    }
    if (len > g_octo_train_collab.payload_bytes) {
        p->error_text = "COLLAB_BACKWARD: length beyond the payload area";
        return OCTO_E_ARG;
    }
    if (!(lr >= 0.0f) || lr > 1e6f) {
        p->error_text = "COLLAB_BACKWARD: lr must be >= 0";
        return OCTO_E_ARG;
    }
    float dy_scale = 0.0f;
    const uint64_t t0 = octo_board_ticks();
    st = decode_gradient(p, t, len, t->pending, &dy_scale);
    const uint64_t t1 = octo_board_ticks();
    if (st != OCTO_OK) {
        return st;
    }
    st = octo_trainer_set_lr(t, lr);
    if (st == OCTO_OK) {
        st = octo_trainer_backward(t, t->pending, (const int8_t *)collab_at(t, g_octo_train_collab.dy_off),
                                   dy_scale);
    }
    const uint64_t t2 = octo_board_ticks();
    s_collab.features = NULL; /* the output slot now holds gradients */
    if (st != OCTO_OK) {
        p->error_text = st == OCTO_E_DIVERGED ? "training diverged (gradients not finite): lower the learning rate "
                                                "and restore a checkpoint"
                                              : "COLLAB_BACKWARD: backward failed";
        return st;
    }
    octo_put_u32(&resp[0], octo_trainer_step_count(t));
    memcpy(&resp[4], &dy_scale, 4);
    octo_put_u32(&resp[8], (uint32_t)(t1 - t0));
    octo_put_u32(&resp[12], (uint32_t)(t2 - t1));
    *resp_len = 16;
    return OCTO_OK;
}

#endif /* OCTO_WITH_TRAIN */
