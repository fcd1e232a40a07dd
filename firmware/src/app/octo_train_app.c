/* octo_train_app.c - training service over the serial protocol (needs a generated train_model.c):
 * TRAIN_INFO, TRAIN_INIT, TRAIN_LOAD(_PART), TRAIN_STEP, EVAL, GET/SET/COMMIT_WEIGHTS, TRAIN_PROFILE.
 * The split-learning messages (COLLAB_*) are in octo_collab_app.c. */
#ifdef OCTO_WITH_TRAIN

#include "octo/octo_train_app.h"

#include <string.h>

#include "octo_train_app_internal.h"

octo_trainer_t g_octo_app_trainer;
int g_octo_app_bound;
uint32_t g_octo_app_profile[OCTO_TRAIN_MAX_PROFILE_LAYERS * OCTO_TRAIN_PHASE_COUNT];
octo_collab_state_t g_octo_app_collab;

int octo_train_info(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len) {
    (void)req;
    octo_trainer_t *t = NULL;
    const int st = trainer(p, &t);
    if (st != OCTO_OK) {
        return st;
    }
    const octo_train_model_t *m = t->m;
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

int octo_train_init_msg(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len) {
    octo_trainer_t *t = NULL;
    int st = trainer(p, &t);
    if (st != OCTO_OK) {
        return st;
    }
    if ((req->len != 32 && req->len != 36) || cap < 4) {
        p->error_text = "TRAIN_INIT payload must be 32 bytes (36 with the target scale)";
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
    hp.target_scale = req->len == 36 ? get_f32(&b[32]) : 0.0f; /* MSE with targets: required, > 0 */
    memset(&g_octo_app_collab, 0, sizeof g_octo_app_collab);
    st = octo_trainer_init(t, &hp);
    if (st == OCTO_E_UNSUPPORTED) {
        p->error_text = "random init needs the frozen weights in RAM: this build reads them from flash";
        return st;
    }
    if (st != OCTO_OK) {
        p->error_text = "bad hyper-parameter: need lr >= 0, 0 <= momentum < 1, decay/prc_k/lac_l2 >= 0, "
                        "input_scale > 0, init 0 or 1 (MSE with targets: target_scale > 0)";
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

int octo_train_load_targets(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap,
                             size_t *resp_len) {
    octo_trainer_t *t = NULL;
    int st = trainer(p, &t);
    if (st != OCTO_OK) {
        return st;
    }
    if (req->len < 4 || cap < 4) {
        return OCTO_E_PAYLOAD;
    }
    const uint32_t off = octo_get_u32(&req->payload[0]);
    const uint32_t len = req->len - 4u;
    st = octo_trainer_stage_targets(t, off, (const int8_t *)&req->payload[4], len);
    if (st == OCTO_E_UNSUPPORTED) {
        p->error_text = "TRAIN_LOAD_TARGETS: this build trains without targets (no MSE targets in its plan)";
        return st;
    }
    if (st != OCTO_OK) {
        p->error_text = "TRAIN_LOAD_TARGETS: bytes beyond batch * classes";
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
    if (cap < 12u + 5u * n + 3u) {
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
    /* the per-sample losses go to the first 4-byte aligned place after the predictions, then move down */
    uint8_t *at = &resp[12u + n];
    float *losses = (float *)(void *)(at + ((4u - ((uintptr_t)at & 3u)) & 3u));
    st = octo_trainer_eval(t, n, &r, &resp[12], losses);
    const uint64_t t1 = octo_board_ticks();
    if (st != OCTO_OK) {
        p->error_text = st == OCTO_E_ARG ? "EVAL: n must be 1..batch" : "evaluation failed";
        return st;
    }
    put_result(resp, &r, (uint32_t)(t1 - t0));
    memmove(at, losses, 4u * n); /* little-endian float32 on every target */
    *resp_len = 12u + 5u * n;
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
    memset(&g_octo_app_collab, 0, sizeof g_octo_app_collab);
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
    const size_t n = (size_t)t->m->n_layers * OCTO_TRAIN_PHASE_COUNT;
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

#endif /* OCTO_WITH_TRAIN */
