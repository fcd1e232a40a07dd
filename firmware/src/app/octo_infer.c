/* octo_infer.c - inference service over the serial protocol (needs a linked model). */
#ifdef OCTO_WITH_MODEL

#include "octo/octo_infer.h"

#include <string.h>

#include "octo/octo_board.h"
#include "octo/octo_model.h"
#include "octo_model_config.h"

static uint8_t s_arena[OCTO_ARENA_BYTES] __attribute__((aligned(16)));

static struct {
    uint64_t start;
    uint64_t last;
    uint32_t n;
    uint32_t ticks[OCTO_INFER_MAX_LAYERS];
} s_timing;

static void layer_done(void *ctx, uint32_t layer) {
    (void)ctx;
    uint64_t now = octo_board_ticks();
    if (layer < OCTO_INFER_MAX_LAYERS) {
        s_timing.ticks[layer] = (uint32_t)(now - s_timing.last);
        s_timing.n = layer + 1u;
    }
    s_timing.last = octo_board_ticks(); /* exclude the hook's own cost */
}

int octo_infer_model_info(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap,
                          size_t *resp_len) {
    (void)p;
    (void)req;
    const octo_model_t *m = &g_octo_model;
    if (cap < 44) {
        return OCTO_E_BUF;
    }
    float fs[2] = {m->input_scale, m->output_scale};
    octo_put_u32(&resp[0], m->arena_bytes);
    octo_put_u32(&resp[4], m->input_bytes);
    octo_put_u32(&resp[8], m->output_bytes);
    memcpy(&resp[12], &fs[0], 4);
    octo_put_u32(&resp[16], (uint32_t)m->input_zero_point);
    memcpy(&resp[20], &fs[1], 4);
    octo_put_u32(&resp[24], (uint32_t)m->output_zero_point);
    octo_put_u32(&resp[28], m->n_layers);
    octo_put_u32(&resp[32], (uint32_t)sizeof s_arena);
    octo_put_u32(&resp[36], 0);
    octo_put_u32(&resp[40], m->fingerprint);
    size_t n = 44;
    n += octo_put_str(&resp[n], cap - n, m->name);
    /* Layers that fit: (u32 macs, op string, name string) each. */
    uint32_t listed = 0;
    for (uint32_t i = 0; i < m->n_layers; i++) {
        size_t need = 4 + 2 + strlen(m->layers[i].op) + strlen(m->layers[i].name);
        if (n + need + 1 > cap) {
            break;
        }
        octo_put_u32(&resp[n], m->layers[i].macs);
        n += 4;
        n += octo_put_str(&resp[n], cap - n, m->layers[i].op);
        n += octo_put_str(&resp[n], cap - n, m->layers[i].name);
        listed++;
    }
    octo_put_u32(&resp[36], listed);
    *resp_len = n;
    return OCTO_OK;
}

int octo_infer_set_input(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap,
                         size_t *resp_len) {
    (void)p;
    (void)cap;
    (void)resp;
    const octo_model_t *m = &g_octo_model;
    if (req->len < 4) {
        return OCTO_E_PAYLOAD;
    }
    uint32_t off = octo_get_u32(req->payload);
    uint32_t n = (uint32_t)req->len - 4u;
    if (off > m->input_bytes || n > m->input_bytes - off) {
        return OCTO_E_PAYLOAD;
    }
    memcpy(&s_arena[m->input_offset + off], &req->payload[4], n);
    *resp_len = 0;
    return OCTO_OK;
}

static int invoke_timed(void) {
    s_timing.n = 0;
    s_timing.start = octo_board_ticks();
    s_timing.last = s_timing.start;
    return g_octo_model.invoke(s_arena, layer_done, NULL);
}

int octo_infer_invoke(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len) {
    (void)p;
    (void)req;
    int st = invoke_timed();
    if (st != OCTO_OK) {
        return st;
    }
    uint64_t total = 0;
    for (uint32_t i = 0; i < s_timing.n; i++) {
        total += s_timing.ticks[i];
    }
    size_t need = 12u + 4u * s_timing.n;
    if (need > cap) {
        return OCTO_E_BUF;
    }
    octo_put_u32(&resp[0], (uint32_t)total);
    octo_put_u32(&resp[4], (uint32_t)(total >> 32));
    octo_put_u32(&resp[8], s_timing.n);
    for (uint32_t i = 0; i < s_timing.n; i++) {
        octo_put_u32(&resp[12 + 4 * i], s_timing.ticks[i]);
    }
    *resp_len = need;
    return OCTO_OK;
}

int octo_infer_get_output(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap,
                          size_t *resp_len) {
    (void)p;
    const octo_model_t *m = &g_octo_model;
    if (req->len != 6) {
        return OCTO_E_PAYLOAD;
    }
    uint32_t off = octo_get_u32(req->payload);
    uint32_t n = octo_get_u16(&req->payload[4]);
    if (off > m->output_bytes || n > m->output_bytes - off || n > cap) {
        return OCTO_E_PAYLOAD;
    }
    memcpy(resp, &s_arena[m->output_offset + off], n);
    *resp_len = n;
    return OCTO_OK;
}

int octo_infer_run(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len) {
    (void)p;
    const octo_model_t *m = &g_octo_model;
    if (req->len != m->input_bytes) {
        return OCTO_E_PAYLOAD;
    }
    if (m->output_bytes > cap) {
        return OCTO_E_BUF;
    }
    memcpy(&s_arena[m->input_offset], req->payload, m->input_bytes);
    int st = g_octo_model.invoke(s_arena, NULL, NULL);
    if (st != OCTO_OK) {
        return st;
    }
    memcpy(resp, &s_arena[m->output_offset], m->output_bytes);
    *resp_len = m->output_bytes;
    return OCTO_OK;
}

#else
typedef int octo_infer_unused_t; /* ISO C forbids an empty translation unit */
#endif /* OCTO_WITH_MODEL */
