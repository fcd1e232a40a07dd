/* octo_frame.c - frame encoder (streaming COBS, no intermediate buffer) and
 * the byte-at-a-time frame decoder. Wire format: octo/octo_frame.h. */
#include "octo/octo_frame.h"

/* Streaming COBS writer. In measure-only mode (dst == NULL) it only counts. */
typedef struct {
    uint8_t *dst;
    size_t cap;
    size_t w;        /* next write position */
    size_t code_pos; /* position of the pending block's code byte */
    uint8_t code;    /* 1 + data bytes in the pending block */
    int full;        /* set once a write did not fit */
} cobs_writer_t;

static void cw_store(cobs_writer_t *cw, size_t pos, uint8_t v) {
    if (cw->dst != NULL) {
        if (pos < cw->cap) {
            cw->dst[pos] = v;
        } else {
            cw->full = 1;
        }
    }
}

static void cw_start(cobs_writer_t *cw, uint8_t *dst, size_t cap) {
    cw->dst = dst;
    cw->cap = cap;
    cw->code_pos = 0;
    cw->w = 1;
    cw->code = 1;
    cw->full = 0;
}

/* Same block rule as octo_cobs_encode, but the "end of input" case for a full
 * block is resolved in cw_finish: a full block is closed lazily. */
static void cw_byte(cobs_writer_t *cw, uint8_t b) {
    if (cw->code == 0xFF) { /* previous block is full: open a new one */
        cw_store(cw, cw->code_pos, cw->code);
        cw->code_pos = cw->w++;
        cw->code = 1;
    }
    if (b == 0) {
        cw_store(cw, cw->code_pos, cw->code);
        cw->code_pos = cw->w++;
        cw->code = 1;
    } else {
        cw_store(cw, cw->w++, b);
        cw->code++;
    }
}

static void cw_bytes(cobs_writer_t *cw, const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        cw_byte(cw, p[i]);
    }
}

static void cw_finish(cobs_writer_t *cw) {
    cw_store(cw, cw->code_pos, cw->code);
    cw_store(cw, cw->w++, OCTO_FRAME_DELIM);
}

int octo_frame_encode(const octo_frame_hdr_t *hdr, const uint8_t *payload, size_t len, uint8_t *dst,
                      size_t cap, size_t *out_len) {
    if (hdr == NULL || out_len == NULL || (payload == NULL && len > 0) || len > 0xFFFFu ||
        (dst == NULL && cap != 0)) {
        return OCTO_E_ARG;
    }
    uint8_t head[OCTO_FRAME_HEADER_LEN];
    head[0] = (uint8_t)OCTO_PROTO_VERSION;
    head[1] = hdr->type;
    octo_put_u16(&head[2], hdr->req_id);
    octo_put_u16(&head[4], (uint16_t)len);
    uint32_t crc = octo_crc32(0, head, sizeof head);
    crc = octo_crc32(crc, payload, len);
    uint8_t tail[OCTO_FRAME_CRC_LEN];
    octo_put_u32(tail, crc);

    cobs_writer_t cw;
    cw_start(&cw, dst, cap);
    cw_bytes(&cw, head, sizeof head);
    cw_bytes(&cw, payload, len);
    cw_bytes(&cw, tail, sizeof tail);
    cw_finish(&cw);
    if (cw.full) {
        return OCTO_E_BUF;
    }
    *out_len = cw.w;
    return OCTO_OK;
}

int octo_frame_decoder_init(octo_frame_decoder_t *dec, uint8_t *buf, size_t cap) {
    if (dec == NULL || buf == NULL || cap < OCTO_COBS_MAX_LEN(OCTO_FRAME_OVERHEAD)) {
        return OCTO_E_ARG;
    }
    dec->buf = buf;
    dec->cap = cap;
    dec->len = 0;
    dec->overflow = 0;
    return OCTO_OK;
}

static int finish_frame(octo_frame_decoder_t *dec, octo_frame_t *out) {
    size_t raw_len = 0;
    int st = octo_cobs_decode(dec->buf, dec->len, dec->buf, dec->cap, &raw_len);
    if (st != OCTO_OK) {
        return OCTO_E_COBS;
    }
    if (raw_len < OCTO_FRAME_OVERHEAD) {
        return OCTO_E_FRAME_SHORT;
    }
    const uint8_t *raw = dec->buf;
    uint16_t plen = octo_get_u16(&raw[4]);
    if ((size_t)plen != raw_len - OCTO_FRAME_OVERHEAD) {
        return OCTO_E_FRAME_LENGTH;
    }
    uint32_t want = octo_get_u32(&raw[OCTO_FRAME_HEADER_LEN + plen]);
    uint32_t got = octo_crc32(0, raw, OCTO_FRAME_HEADER_LEN + (size_t)plen);
    if (want != got) {
        return OCTO_E_CRC;
    }
    out->version = raw[0];
    out->type = raw[1];
    out->req_id = octo_get_u16(&raw[2]);
    out->len = plen;
    out->payload = &raw[OCTO_FRAME_HEADER_LEN];
    out->crc = got;
    return 1;
}

int octo_frame_decoder_push(octo_frame_decoder_t *dec, uint8_t byte, octo_frame_t *out) {
    if (dec == NULL || out == NULL || dec->buf == NULL) {
        return OCTO_E_ARG;
    }
    if (byte != OCTO_FRAME_DELIM) {
        if (dec->overflow) {
            return 0;
        }
        if (dec->len >= dec->cap) {
            dec->overflow = 1;
            return 0;
        }
        dec->buf[dec->len++] = byte;
        return 0;
    }
    /* Delimiter: end of a frame (or an empty one). */
    int was_overflow = dec->overflow;
    size_t len = dec->len;
    dec->overflow = 0;
    if (was_overflow) {
        dec->len = 0;
        return OCTO_E_FRAME_TOO_LONG;
    }
    if (len == 0) {
        return 0;
    }
    int st = finish_frame(dec, out);
    dec->len = 0;
    return st;
}
