/*
 * octo_train_app.h - training service: TRAIN_INFO, TRAIN_INIT, TRAIN_LOAD,
 * TRAIN_STEP, EVAL, GET_WEIGHTS, SET_WEIGHTS, COMMIT_WEIGHTS over the serial
 * protocol (payloads in docs/TRAINING.md), driving octo_trainer.h with the
 * generated layer table (train_model.c, built when OCTO_WITH_TRAIN).
 */
#ifndef OCTO_TRAIN_APP_H
#define OCTO_TRAIN_APP_H

#include "octo/octo_proto.h"
#include "octo/octo_trainer.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    OCTO_MSG_TRAIN_INFO = 0x20,
    OCTO_MSG_TRAIN_INIT = 0x21,
    OCTO_MSG_TRAIN_LOAD = 0x22,
    OCTO_MSG_TRAIN_STEP = 0x23,
    OCTO_MSG_EVAL = 0x24,
    OCTO_MSG_GET_WEIGHTS = 0x25,
    OCTO_MSG_SET_WEIGHTS = 0x26,
    OCTO_MSG_COMMIT_WEIGHTS = 0x27,
    OCTO_MSG_TRAIN_PROFILE = 0x28,
    OCTO_MSG_TRAIN_LOAD_PART = 0x29
};

/* The generated table and arena (train_model.c). */
extern const octo_tmodel_t g_octo_train_model;
extern uint8_t g_octo_train_arena[];

int octo_train_info(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len);
int octo_train_init_msg(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len);
int octo_train_load(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len);
int octo_train_step_msg(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len);
int octo_train_eval_msg(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len);
int octo_train_get_weights(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap,
                           size_t *resp_len);
int octo_train_set_weights(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap,
                           size_t *resp_len);
int octo_train_commit(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len);
int octo_train_load_part(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len);
int octo_train_profile(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len);

#ifdef __cplusplus
}
#endif

#endif /* OCTO_TRAIN_APP_H */
