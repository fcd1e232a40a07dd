/*
 * octo_proto.h - request/response engine of the Octo serial protocol.
 *
 * The engine turns received bytes into frames, dispatches each request to a
 * handler from a caller-provided table, and sends the response (type | 0x80,
 * same request id) or an ERROR frame. It gives at-most-once execution: a
 * request repeated with the same (type, request id, CRC) - a host retry after
 * a lost response - gets the cached response again and is not re-executed.
 *
 * Memory is caller-owned (no malloc): see octo_proto_buffers_t. Message types
 * and payload layouts are documented in docs/PROTOCOL.md.
 */
#ifndef OCTO_PROTO_H
#define OCTO_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "octo/octo_frame.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Message types (requests host -> board; responses are type | 0x80). */
enum {
    OCTO_MSG_HELLO = 0x01,          /* identify the board and its limits */
    OCTO_MSG_PING = 0x02,           /* echo the payload */
    OCTO_MSG_TELEMETRY_CTRL = 0x03, /* u32 period_ms; 0 stops telemetry */
    OCTO_MSG_MODEL_INFO = 0x10,     /* describe the linked model */
    OCTO_MSG_SET_INPUT = 0x11,      /* u32 offset + bytes into the input tensor */
    OCTO_MSG_INVOKE = 0x12,         /* run once; reply: status, total and per-layer ticks */
    OCTO_MSG_GET_OUTPUT = 0x13,     /* u32 offset, u16 length -> output tensor bytes */
    OCTO_MSG_INFER = 0x14,          /* whole input -> whole output (when both fit a frame) */
    /* 0x15-0x1F more inference, 0x20-0x2F training (TRAIN, EVAL,
     * GET_WEIGHTS, SET_WEIGHTS), 0x30-0x3F SGQ, 0x40-0x4F PASS (octo_pass_app.h). */
    OCTO_MSG_TELEMETRY = 0x70,      /* board -> host, unsolicited, req_id 0 */
    OCTO_MSG_ERROR = 0x7F,          /* board -> host: i16 status, u8 req type, text */
    OCTO_MSG_RESPONSE_BIT = 0x80
};

/* Largest payload the engine accepts or sends, declared in HELLO. */
#ifndef OCTO_MAX_PAYLOAD
#define OCTO_MAX_PAYLOAD 4096u
#endif
#if OCTO_MAX_PAYLOAD > 65535
#error "OCTO_MAX_PAYLOAD must fit the frame header's 16-bit length field (<= 65535)"
#endif
/* Largest unsolicited (telemetry) payload. */
#define OCTO_MAX_EVENT_PAYLOAD 240u

/* Buffer sizes a caller must provide for a given max payload. */
#define OCTO_PROTO_RX_LEN(maxp) OCTO_COBS_MAX_LEN((maxp) + OCTO_FRAME_OVERHEAD)
#define OCTO_PROTO_TX_LEN(maxp) OCTO_FRAME_WIRE_MAX_LEN(maxp)

/* Writes n bytes to the link; returns OCTO_OK or a negative status. */
typedef int (*octo_write_fn)(void *ctx, const uint8_t *data, size_t n);

struct octo_proto;

/* A request handler: reads req->payload, writes up to cap bytes of response
 * payload to resp and sets *resp_len. Returns OCTO_OK, or a negative status
 * which the engine reports to the host in an ERROR frame. */
typedef int (*octo_handler_fn)(struct octo_proto *p, const octo_frame_t *req, uint8_t *resp, size_t cap,
                               size_t *resp_len);

typedef struct {
    uint8_t type;      /* request message type */
    octo_handler_fn fn; /* its handler */
} octo_handler_t;

/* Link counters, reported in telemetry. */
typedef struct {
    uint32_t rx_bytes;      /* bytes received */
    uint32_t rx_frames;     /* valid frames received */
    uint32_t rx_errors;     /* frames dropped: COBS, CRC, length, too long */
    uint32_t rx_crc_errors; /* of which CRC mismatches */
    uint32_t tx_frames;     /* frames sent, retransmissions included */
    uint32_t duplicates;    /* repeated requests answered from the cache */
    uint32_t executed;      /* requests dispatched to a handler (each at most once) */
} octo_link_stats_t;

/* Caller-owned memory for one engine. */
typedef struct {
    uint8_t *rx;        /* OCTO_PROTO_RX_LEN(max_payload) bytes */
    size_t rx_len;
    uint8_t *tx;        /* OCTO_PROTO_TX_LEN(max_payload) bytes: holds the last response */
    size_t tx_len;
    uint8_t *payload;   /* max_payload bytes: response payload scratch */
    size_t payload_len;
    uint8_t *event;     /* OCTO_PROTO_TX_LEN(OCTO_MAX_EVENT_PAYLOAD) bytes: unsolicited frames */
    size_t event_len;
} octo_proto_buffers_t;

typedef struct octo_proto {
    octo_frame_decoder_t dec;
    octo_proto_buffers_t mem;
    size_t max_payload;
    const octo_handler_t *handlers;
    size_t n_handlers;
    octo_write_fn write;
    void *write_ctx;
    void *user;          /* application context for handlers */
    size_t last_tx_len;  /* bytes of the cached response in mem.tx (0 = none) */
    uint8_t last_type;   /* request the cache answers: type, id, CRC */
    uint16_t last_req_id;
    uint32_t last_crc;
    octo_link_stats_t stats;
    const char *error_text; /* a handler may set this before returning an error: the ERROR frame's text */
} octo_proto_t;

/* Set up an engine. max_payload must fit the buffers (OCTO_E_BUF otherwise). */
int octo_proto_init(octo_proto_t *p, const octo_proto_buffers_t *mem, size_t max_payload,
                    const octo_handler_t *handlers, size_t n_handlers, octo_write_fn write,
                    void *write_ctx, void *user) OCTO_CHECK_RESULT;

/* Feed received bytes; handles every complete frame among them.
 * Returns the number of requests handled (>= 0) or a negative status if the
 * link write failed. Malformed frames are counted and answered with an ERROR
 * (request id 0) so the host can retransmit at once. */
int octo_proto_feed(octo_proto_t *p, const uint8_t *data, size_t n) OCTO_CHECK_RESULT;

/* Send an unsolicited message (e.g. TELEMETRY) with request id 0; does not
 * disturb the cached response. len <= OCTO_MAX_EVENT_PAYLOAD. */
int octo_proto_send_event(octo_proto_t *p, uint8_t type, const uint8_t *payload, size_t len) OCTO_CHECK_RESULT;

/* Write string s as (u8 length, bytes) into dst[cap], truncated to 255 bytes.
 * Returns the bytes written, or 0 (nothing written) if they do not fit. */
size_t octo_put_str(uint8_t *dst, size_t cap, const char *s);

/* Telemetry payload builder: u32 sequence number, then entries of
 * (u8 name length, name, u8 kind, 4-byte little-endian value). */
typedef struct {
    uint8_t *buf;
    size_t cap;
    size_t len;
    int overflow;
} octo_tlm_writer_t;

enum { OCTO_TLM_U32 = 'u', OCTO_TLM_I32 = 'i', OCTO_TLM_F32 = 'f' };

void octo_tlm_begin(octo_tlm_writer_t *w, uint8_t *buf, size_t cap, uint32_t seq);
void octo_tlm_u32(octo_tlm_writer_t *w, const char *name, uint32_t v);
void octo_tlm_i32(octo_tlm_writer_t *w, const char *name, int32_t v);
void octo_tlm_f32(octo_tlm_writer_t *w, const char *name, float v);

#ifdef __cplusplus
}
#endif

#endif /* OCTO_PROTO_H */
