/*
 * octo_pass_app.h - PASS video service: frames in, per-frame results out
 * (firmware linked with a generated pass_model.c). Payloads: docs/PASS.md.
 */
#ifndef OCTO_PASS_APP_H
#define OCTO_PASS_APP_H

#include "octo/octo_proto.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    OCTO_MSG_PASS_INFO = 0x40,   /* describe the linked PASS model */
    OCTO_MSG_FRAME_DATA = 0x41,  /* u32 offset + bytes of the next int8 frame */
    OCTO_MSG_FRAME = 0x42,       /* u8 mode: run the frame; reply: stats, output, gate maps */
    OCTO_MSG_FRAME_RESET = 0x43, /* forget the caches: the next frame runs dense */
};

#define OCTO_PASS_MAX_LAYERS 64u

int octo_pass_info(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len);
int octo_pass_frame_data(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len);
int octo_pass_frame_msg(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len);
int octo_pass_frame_reset(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len);

#ifdef __cplusplus
}
#endif

#endif /* OCTO_PASS_APP_H */
