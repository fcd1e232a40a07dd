/* octo_collab_app.c - the split-learning service (docs/SGQ.md, section 8), split builds only:
 * COLLAB_FORWARD (forward + SGQ or fp32 encoding of the split features), COLLAB_READ and
 * COLLAB_WRITE (chunked payload transfers), COLLAB_BACKWARD (gradient decoding + backward). */
#ifdef OCTO_WITH_TRAIN

#include "octo/octo_train_app.h"

#include <string.h>

#include "octo/octo_sgq.h"
#include "octo_train_app_internal.h"

/* The engine of a split build; with need_state, also a valid training state. (inline: this smaller
 * file would otherwise keep it out of line, which the single service file did not.) */
static inline int collab_trainer(octo_proto_t *p, octo_trainer_t **out, int need_state) {
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

#include "octo_collab_payload.inc" /* fp32 encoder, gradient decoder (fp32 or SGQ) */

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
    g_octo_app_collab.n = 0;
    g_octo_app_collab.payload_len = 0;
    g_octo_app_collab.features = NULL;
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
    g_octo_app_collab.n = n;
    g_octo_app_collab.payload_len = (uint32_t)len;
    g_octo_app_collab.features = out.data;
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
    const uint32_t total = features ? (g_octo_app_collab.features != NULL ? g_octo_app_collab.n * (uint32_t)(d->h * d->w * d->c) : 0u)
                                    : g_octo_app_collab.payload_len;
    if (total == 0u) {
        p->error_text = features ? "COLLAB_READ: no features (run COLLAB_FORWARD; a backward overwrites them)"
                                 : "COLLAB_READ: no encoded features (run COLLAB_FORWARD; COLLAB_WRITE overwrites them)";
        return OCTO_E_STATE;
    }
    if (off > total || len > total - off || len > cap) {
        p->error_text = "COLLAB_READ range outside the data";
        return OCTO_E_ARG;
    }
    const uint8_t *src = features ? (const uint8_t *)g_octo_app_collab.features : collab_at(t, g_octo_train_collab.payload_off);
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
    g_octo_app_collab.payload_len = 0; /* the encoded features are being overwritten */
    memcpy(collab_at(t, g_octo_train_collab.payload_off) + off, &req->payload[4], len);
    octo_put_u32(resp, off + len);
    *resp_len = 4;
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
    if (t->pending == 0u || t->pending != g_octo_app_collab.n) {
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
    g_octo_app_collab.features = NULL; /* the output slot now holds gradients */
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
