/* octo_proto.c - request dispatch, ERROR replies, duplicate suppression. */
#include "octo/octo_proto.h"

#include <string.h>

int octo_proto_init(octo_proto_t *p, const octo_proto_buffers_t *mem, size_t max_payload,
                    const octo_handler_t *handlers, size_t n_handlers, octo_write_fn write, void *write_ctx,
                    void *user) {
    if (p == NULL || mem == NULL || write == NULL || (handlers == NULL && n_handlers > 0) ||
        mem->rx == NULL || mem->tx == NULL || mem->payload == NULL || mem->event == NULL ||
        max_payload > 0xFFFFu) {
        return OCTO_E_ARG;
    }
    if (mem->rx_len < OCTO_PROTO_RX_LEN(max_payload) || mem->tx_len < OCTO_PROTO_TX_LEN(max_payload) ||
        mem->payload_len < max_payload || mem->event_len < OCTO_PROTO_TX_LEN(OCTO_MAX_EVENT_PAYLOAD)) {
        return OCTO_E_BUF;
    }
    memset(p, 0, sizeof *p);
    p->mem = *mem;
    p->max_payload = max_payload;
    p->handlers = handlers;
    p->n_handlers = n_handlers;
    p->write = write;
    p->write_ctx = write_ctx;
    p->user = user;
    return octo_frame_decoder_init(&p->dec, mem->rx, mem->rx_len);
}

static int send_raw(octo_proto_t *p, const uint8_t *bytes, size_t n) {
    p->stats.tx_frames++;
    return p->write(p->write_ctx, bytes, n);
}

/* Encode a response or ERROR into the cached-response buffer and send it. */
static int send_response(octo_proto_t *p, uint8_t type, uint16_t req_id, const uint8_t *payload, size_t len) {
    octo_frame_hdr_t hdr = {type, req_id};
    size_t n = 0;
    int st = octo_frame_encode(&hdr, payload, len, p->mem.tx, p->mem.tx_len, &n);
    if (st != OCTO_OK) {
        return st;
    }
    p->last_tx_len = n;
    return send_raw(p, p->mem.tx, n);
}

static int send_error(octo_proto_t *p, uint16_t req_id, uint8_t req_type, int status, const char *text) {
    uint8_t body[4 + 160]; /* status, type, length, up to 160 bytes of text */
    size_t tlen = text != NULL ? strlen(text) : 0;
    if (tlen > sizeof body - 4) {
        tlen = sizeof body - 4;
    }
    octo_put_u16(&body[0], (uint16_t)(int16_t)status);
    body[2] = req_type;
    body[3] = (uint8_t)tlen;
    if (tlen > 0) {
        memcpy(&body[4], text, tlen);
    }
    if (req_id == 0) {
        /* Link-level errors are not responses: keep the cached response. */
        return octo_proto_send_event(p, OCTO_MSG_ERROR, body, 4 + tlen);
    }
    return send_response(p, OCTO_MSG_ERROR, req_id, body, 4 + tlen);
}

static const octo_handler_t *find_handler(const octo_proto_t *p, uint8_t type) {
    for (size_t i = 0; i < p->n_handlers; i++) {
        if (p->handlers[i].type == type) {
            return &p->handlers[i];
        }
    }
    return NULL;
}

static int dispatch(octo_proto_t *p, const octo_frame_t *f) {
    if (f->version != OCTO_PROTO_VERSION) {
        return send_error(p, f->req_id, f->type, OCTO_E_VERSION, "protocol version not supported");
    }
    const octo_handler_t *h = find_handler(p, f->type);
    if (h == NULL) {
        return send_error(p, f->req_id, f->type, OCTO_E_UNSUPPORTED, "unknown message type");
    }
    /* The receive buffer has COBS worst-case room, so a payload with zeros can
     * exceed max_payload by a few bytes and still arrive: enforce the limit. */
    if (f->len > p->max_payload) {
        return send_error(p, f->req_id, f->type, OCTO_E_BUF, "request payload exceeds max_payload");
    }
    size_t resp_len = 0;
    p->stats.executed++;
    p->error_text = NULL;
    int hs = h->fn(p, f, p->mem.payload, p->max_payload, &resp_len);
    if (hs < 0) {
        const char *text = p->error_text != NULL ? p->error_text : octo_status_name(hs);
        p->error_text = NULL;
        return send_error(p, f->req_id, f->type, hs, text);
    }
    if (resp_len > p->max_payload) {
        return send_error(p, f->req_id, f->type, OCTO_E_BUF, "response too large");
    }
    return send_response(p, (uint8_t)(f->type | OCTO_MSG_RESPONSE_BIT), f->req_id, p->mem.payload, resp_len);
}

static int handle_frame(octo_proto_t *p, const octo_frame_t *f) {
    if (f->req_id == 0 || (f->type & OCTO_MSG_RESPONSE_BIT) != 0) {
        return send_error(p, 0, f->type, OCTO_E_PAYLOAD, "requests need a non-zero id and a request type");
    }
    if (p->last_tx_len > 0 && f->req_id == p->last_req_id && f->type == p->last_type && f->crc == p->last_crc) {
        p->stats.duplicates++;
        return send_raw(p, p->mem.tx, p->last_tx_len);
    }
    /* Whatever dispatch() sends (response or ERROR) becomes the cached answer
     * for exactly this request. */
    p->last_tx_len = 0;
    p->last_type = f->type;
    p->last_req_id = f->req_id;
    p->last_crc = f->crc;
    return dispatch(p, f);
}

int octo_proto_feed(octo_proto_t *p, const uint8_t *data, size_t n) {
    if (p == NULL || (data == NULL && n > 0)) {
        return OCTO_E_ARG;
    }
    int handled = 0;
    for (size_t i = 0; i < n; i++) {
        octo_frame_t f;
        int r = octo_frame_decoder_push(&p->dec, data[i], &f);
        p->stats.rx_bytes++;
        if (r == 0) {
            continue;
        }
        int st;
        if (r < 0) {
            p->stats.rx_errors++;
            if (r == OCTO_E_CRC) {
                p->stats.rx_crc_errors++;
            }
            st = send_error(p, 0, 0, r, octo_status_name(r));
        } else {
            p->stats.rx_frames++;
            st = handle_frame(p, &f);
            handled++;
        }
        if (st < 0) {
            return st;
        }
    }
    return handled;
}

int octo_proto_send_event(octo_proto_t *p, uint8_t type, const uint8_t *payload, size_t len) {
    if (p == NULL || (payload == NULL && len > 0)) {
        return OCTO_E_ARG;
    }
    if (len > OCTO_MAX_EVENT_PAYLOAD) {
        return OCTO_E_BUF;
    }
    octo_frame_hdr_t hdr = {type, 0};
    size_t n = 0;
    int st = octo_frame_encode(&hdr, payload, len, p->mem.event, p->mem.event_len, &n);
    if (st != OCTO_OK) {
        return st;
    }
    return send_raw(p, p->mem.event, n);
}

size_t octo_put_str(uint8_t *dst, size_t cap, const char *s) {
    size_t n = strlen(s);
    if (n > 255) {
        n = 255;
    }
    if (dst == NULL || n + 1 > cap) {
        return 0;
    }
    dst[0] = (uint8_t)n;
    memcpy(&dst[1], s, n);
    return n + 1;
}

void octo_tlm_begin(octo_tlm_writer_t *w, uint8_t *buf, size_t cap, uint32_t seq) {
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    w->overflow = cap < 4;
    if (!w->overflow) {
        octo_put_u32(buf, seq);
        w->len = 4;
    }
}

static void tlm_entry(octo_tlm_writer_t *w, const char *name, uint8_t kind, uint32_t bits) {
    size_t nlen = strlen(name);
    if (w->overflow || nlen > 32 || w->len + 1 + nlen + 1 + 4 > w->cap) {
        w->overflow = 1;
        return;
    }
    w->buf[w->len++] = (uint8_t)nlen;
    memcpy(&w->buf[w->len], name, nlen);
    w->len += nlen;
    w->buf[w->len++] = kind;
    octo_put_u32(&w->buf[w->len], bits);
    w->len += 4;
}

void octo_tlm_u32(octo_tlm_writer_t *w, const char *name, uint32_t v) { tlm_entry(w, name, OCTO_TLM_U32, v); }

void octo_tlm_i32(octo_tlm_writer_t *w, const char *name, int32_t v) {
    tlm_entry(w, name, OCTO_TLM_I32, (uint32_t)v);
}

void octo_tlm_f32(octo_tlm_writer_t *w, const char *name, float v) {
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    tlm_entry(w, name, OCTO_TLM_F32, bits);
}
