/*
 * octo_train_app.h - training service: TRAIN_INFO, TRAIN_INIT, TRAIN_LOAD,
 * TRAIN_STEP, EVAL, GET_WEIGHTS, SET_WEIGHTS, COMMIT_WEIGHTS over the serial
 * protocol (payloads in docs/TRAINING.md), driving octo_trainer.h with the
 * generated layer table (train_model.c, built when OCTO_WITH_TRAIN); and for
 * split builds the COLLAB_* messages of split learning (docs/SGQ.md section 8):
 * forward + SGQ/fp32 encoding of the split features, chunked payload reads and
 * writes, gradient decoding + backward.
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
    OCTO_MSG_TRAIN_LOAD_PART = 0x29,
    OCTO_MSG_TRAIN_LOAD_TARGETS = 0x2A, /* MSE with targets: u32 offset, int8 bytes of [batch][classes] */
    /* split learning, split builds only (the 0x30-0x3F SGQ block of octo_proto.h) */
    OCTO_MSG_COLLAB_FORWARD = 0x30,  /* forward of staged samples, encode the features into the payload area */
    OCTO_MSG_COLLAB_READ = 0x31,     /* bytes of the payload area (or the raw int8 features) */
    OCTO_MSG_COLLAB_WRITE = 0x32,    /* bytes into the payload area (the gradient payload) */
    OCTO_MSG_COLLAB_BACKWARD = 0x33  /* decode the gradient payload, backward + update */
};

/* COLLAB_FORWARD codec byte; COLLAB_READ source byte. */
enum { OCTO_COLLAB_CODEC_SGQ = 0, OCTO_COLLAB_CODEC_FP32 = 1 };
enum { OCTO_COLLAB_SRC_PAYLOAD = 0, OCTO_COLLAB_SRC_FEATURES = 1 };
/* COLLAB_FORWARD flags: one set of ranges for the payload; clipped ranges with the bit width's alpha. */
#define OCTO_COLLAB_FLAG_SHARED 1u
#define OCTO_COLLAB_FLAG_CLIP 2u
#define OCTO_COLLAB_FLAG_RC 4u /* range-code the codes when shorter (octo_sgq_params_t.entropy) */
#define OCTO_COLLAB_FLAGS_ALL (OCTO_COLLAB_FLAG_SHARED | OCTO_COLLAB_FLAG_CLIP | OCTO_COLLAB_FLAG_RC)

/* The fp32 payload (host_tools/sgq/codec.py fp32_encode): 'F', version 1, two zero
 * bytes, u16 N, H, W, C, then N*H*W*C float32, all little-endian. */
#define OCTO_COLLAB_FP32_MAGIC 0x46u
#define OCTO_COLLAB_FP32_VERSION 1u
#define OCTO_COLLAB_FP32_HEADER_LEN 12u

/* Split-learning buffers, in the training arena (generated train_model.c;
 * all zero when the build is not a split build). Offsets 8-byte aligned. */
typedef struct {
    uint32_t payload_off;   /* encoded features out / gradient payload in */
    uint32_t payload_bytes; /* >= the fp32 payload (12 + 4 * batch * split elems) and any SGQ one */
    uint32_t dy_off;        /* int8 output gradient [batch][split elems] */
    uint32_t dy_bytes;
    uint32_t sgq_off;       /* SGQ scratch, >= octo_sgq_scratch_size(C, min(C, 255)) */
    uint32_t sgq_bytes;
} octo_collab_mem_t;

/* The generated table and arena (train_model.c). */
extern const octo_train_model_t g_octo_train_model;
extern uint8_t g_octo_train_arena[];
extern const octo_collab_mem_t g_octo_train_collab;

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
int octo_train_load_targets(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap,
                             size_t *resp_len);
int octo_train_profile(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len);
int octo_collab_forward(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len);
int octo_collab_read(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len);
int octo_collab_write(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len);
int octo_collab_backward(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len);

#ifdef __cplusplus
}
#endif

#endif /* OCTO_TRAIN_APP_H */
