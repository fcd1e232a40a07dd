/* octo_pass_app.c - PASS video service over the serial protocol (needs a linked pass_model.c). */
#ifdef OCTO_WITH_PASS

#include "octo/octo_pass_app.h"

#include <string.h>

#include "octo/octo_board.h"
#include "octo/octo_pass.h"

static octo_pass_state_t s_state;

static struct {
    uint64_t last;
    uint64_t total;
    uint32_t layer[OCTO_PASS_MAX_LAYERS];
    uint32_t gate[OCTO_PASS_MAX_LAYERS];
} s_t;

static octo_pass_layer_stats_t s_stats[OCTO_PASS_MAX_LAYERS];

static void frame_hook(void *ctx, uint32_t event) {
    (void)ctx;
    const uint64_t now = octo_board_ticks();
    const uint32_t dt = (uint32_t)(now - s_t.last);
    const uint32_t i = event & ~OCTO_PASS_HOOK_GATE;
    if (i < OCTO_PASS_MAX_LAYERS) {
        if (event & OCTO_PASS_HOOK_GATE) {
            s_t.gate[i] += dt;
        } else {
            s_t.layer[i] += dt;
        }
    }
    s_t.total += dt;
    s_t.last = octo_board_ticks(); /* exclude the hook's own cost */
}

static uint32_t map_bytes(const octo_pass_layer_t *l) {
    const uint32_t p = l->gate->patch;
    const uint32_t gh = ((uint32_t)l->in_dims->h + p - 1u) / p, gw = ((uint32_t)l->in_dims->w + p - 1u) / p;
    return (gh * gw + 7u) / 8u;
}

int octo_pass_info(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len) {
    (void)p;
    (void)req;
    const octo_pass_model_t *m = &g_octo_pass_model;
    if (cap < 40 || m->n_layers > OCTO_PASS_MAX_LAYERS) {
        return OCTO_E_BUF;
    }
    float scale = m->output_scale;
    octo_put_u32(&resp[0], m->state_bytes);
    octo_put_u32(&resp[4], m->input_bytes);
    octo_put_u32(&resp[8], m->output_bytes);
    memcpy(&resp[12], &scale, 4);
    octo_put_u32(&resp[16], (uint32_t)m->output_zero_point);
    octo_put_u32(&resp[20], m->cut_permille);
    octo_put_u32(&resp[24], m->fingerprint);
    octo_put_u32(&resp[28], m->n_layers);
    octo_put_u32(&resp[32], s_state.frames);
    octo_put_u32(&resp[36], (uint32_t)OCTO_PASS_MAX_LAYERS);
    size_t n = 40;
    n += octo_put_str(&resp[n], cap - n, m->name);
    for (uint32_t i = 0; i < m->n_layers; i++) {
        const octo_pass_layer_t *l = &m->layers[i];
        const char *name = m->info != NULL ? m->info[i].name : "";
        const uint32_t macs = m->info != NULL ? m->info[i].macs : 0u;
        if (n + 24u + 1u + strlen(name) > cap) {
            return OCTO_E_BUF;
        }
        resp[n] = (uint8_t)l->kind;
        resp[n + 1] = l->gate != NULL;
        octo_put_u16(&resp[n + 2], l->gate != NULL ? l->gate->patch : 0u);
        octo_put_u16(&resp[n + 4], l->gate != NULL ? l->gate->sample : 0u);
        octo_put_u16(&resp[n + 6], (uint16_t)l->in_dims->h);
        octo_put_u16(&resp[n + 8], (uint16_t)l->in_dims->w);
        octo_put_u16(&resp[n + 10], (uint16_t)l->in_dims->c);
        octo_put_u16(&resp[n + 12], (uint16_t)l->out_dims->h);
        octo_put_u16(&resp[n + 14], (uint16_t)l->out_dims->w);
        octo_put_u16(&resp[n + 16], (uint16_t)l->out_dims->c);
        octo_put_u16(&resp[n + 18], 0u);
        octo_put_u32(&resp[n + 20], macs);
        n += 24u;
        n += octo_put_str(&resp[n], cap - n, name);
    }
    *resp_len = n;
    return OCTO_OK;
}

int octo_pass_frame_data(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len) {
    (void)p;
    (void)resp;
    (void)cap;
    const octo_pass_model_t *m = &g_octo_pass_model;
    if (req->len < 4) {
        return OCTO_E_PAYLOAD;
    }
    const uint32_t off = octo_get_u32(req->payload);
    const uint32_t n = (uint32_t)req->len - 4u;
    if (off > m->input_bytes || n > m->input_bytes - off) {
        return OCTO_E_PAYLOAD;
    }
    memcpy(&m->input[off], &req->payload[4], n);
    *resp_len = 0;
    return OCTO_OK;
}

int octo_pass_frame_msg(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len) {
    (void)p;
    const octo_pass_model_t *m = &g_octo_pass_model;
    if (req->len != 1 || req->payload[0] > OCTO_PASS_EXACT) {
        return OCTO_E_PAYLOAD;
    }
    if (m->n_layers == 0 || m->n_layers > OCTO_PASS_MAX_LAYERS) {
        return OCTO_E_STATE;
    }
    size_t need = 16u + 32u * m->n_layers + m->output_bytes;
    for (uint32_t i = 0; i < m->n_layers; i++) {
        need += m->layers[i].gate != NULL ? map_bytes(&m->layers[i]) : 0u;
    }
    if (need > cap) {
        return OCTO_E_BUF;
    }
    memset(&s_t, 0, sizeof s_t);
    uint32_t dense = 0;
    s_t.last = octo_board_ticks();
    int st = octo_pass_frame(m, &s_state, req->payload[0], s_stats, &dense, frame_hook, NULL);
    s_t.total += octo_board_ticks() - s_t.last;
    if (st != OCTO_OK) {
        return st;
    }
    resp[0] = (uint8_t)dense;
    resp[1] = req->payload[0];
    octo_put_u16(&resp[2], (uint16_t)m->n_layers);
    octo_put_u32(&resp[4], s_state.frames);
    octo_put_u32(&resp[8], (uint32_t)s_t.total);
    octo_put_u32(&resp[12], (uint32_t)(s_t.total >> 32));
    size_t n = 16;
    for (uint32_t i = 0; i < m->n_layers; i++) {
        const octo_pass_layer_stats_t *s = &s_stats[i];
        octo_put_u32(&resp[n], s_t.layer[i]);
        octo_put_u32(&resp[n + 4], s_t.gate[i]);
        octo_put_u32(&resp[n + 8], s->out_pixels);
        octo_put_u32(&resp[n + 12], s->patches_changed);
        octo_put_u32(&resp[n + 16], s->patches_checked);
        octo_put_u32(&resp[n + 20], s->gate_elements);
        octo_put_u32(&resp[n + 24], (uint32_t)s->macs);
        octo_put_u32(&resp[n + 28], (uint32_t)(s->macs >> 32));
        n += 32;
    }
    memcpy(&resp[n], m->output, m->output_bytes);
    n += m->output_bytes;
    for (uint32_t i = 0; i < m->n_layers; i++) {
        const octo_pass_layer_t *l = &m->layers[i];
        if (l->gate == NULL) {
            continue;
        }
        const uint32_t bytes = map_bytes(l);
        const uint32_t patches = ((uint32_t)l->in_dims->h + l->gate->patch - 1u) / l->gate->patch *
                                 (((uint32_t)l->in_dims->w + l->gate->patch - 1u) / l->gate->patch);
        memset(&resp[n], 0, bytes);
        for (uint32_t k = 0; k < patches; k++) {
            if (l->gate_map[k]) {
                resp[n + k / 8u] |= (uint8_t)(1u << (k % 8u));
            }
        }
        n += bytes;
    }
    *resp_len = n;
    return OCTO_OK;
}

int octo_pass_frame_reset(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len) {
    (void)p;
    (void)resp;
    (void)cap;
    if (req->len != 0) {
        return OCTO_E_PAYLOAD;
    }
    octo_pass_reset(&s_state);
    *resp_len = 0;
    return OCTO_OK;
}

#else
typedef int octo_pass_app_unused_t; /* ISO C forbids an empty translation unit */
#endif /* OCTO_WITH_PASS */
