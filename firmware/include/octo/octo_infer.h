/*
 * octo_infer.h - inference service: runs the linked generated model
 * (octo_model.h) on request. Handlers for MODEL_INFO, SET_INPUT, INVOKE,
 * GET_OUTPUT and INFER; payloads are documented in docs/PROTOCOL.md.
 */
#ifndef OCTO_INFER_H
#define OCTO_INFER_H

#include "octo/octo_proto.h"

#ifdef __cplusplus
extern "C" {
#endif

#define OCTO_INFER_MAX_LAYERS 128u

int octo_infer_model_info(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap,
                          size_t *resp_len);
int octo_infer_set_input(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap,
                         size_t *resp_len);
int octo_infer_invoke(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len);
int octo_infer_get_output(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap,
                          size_t *resp_len);
int octo_infer_run(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len);

#ifdef __cplusplus
}
#endif

#endif /* OCTO_INFER_H */
