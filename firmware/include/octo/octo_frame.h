/*
 * octo_frame.h - serial link framing: header + payload + CRC-32, COBS-encoded,
 * terminated by a single 0x00 byte. See docs/PROTOCOL.md for the wire format.
 *
 * Raw frame (before COBS), all integers little-endian:
 *   [0]      u8   protocol version (OCTO_PROTO_VERSION)
 *   [1]      u8   message type
 *   [2..3]   u16  request id (0 = unsolicited board message)
 *   [4..5]   u16  payload length N
 *   [6..]    N    payload bytes
 *   [6+N..]  u32  CRC-32 (IEEE 802.3, as zlib.crc32) of bytes [0, 6+N)
 *
 * Everything here is portable C99, allocation-free and host-testable.
 */
#ifndef OCTO_FRAME_H
#define OCTO_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "octo/octo_status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define OCTO_PROTO_VERSION 1u
#define OCTO_FRAME_HEADER_LEN 6u
#define OCTO_FRAME_CRC_LEN 4u
#define OCTO_FRAME_OVERHEAD (OCTO_FRAME_HEADER_LEN + OCTO_FRAME_CRC_LEN)
#define OCTO_FRAME_DELIM 0x00u

/* Worst-case COBS length of n raw bytes (one code byte per 254 data bytes,
 * plus the leading code byte). */
#define OCTO_COBS_MAX_LEN(n) ((n) + ((n) / 254u) + 1u)

/* Worst-case bytes on the wire for a payload of n bytes, delimiter included. */
#define OCTO_FRAME_WIRE_MAX_LEN(n) (OCTO_COBS_MAX_LEN((n) + OCTO_FRAME_OVERHEAD) + 1u)

/* CRC-32 (reflected polynomial 0xEDB88320, init and final xor 0xFFFFFFFF).
 * Pass crc = 0 to start; pass the previous result to continue a running CRC,
 * so crc32(a || b) == octo_crc32(octo_crc32(0, a), b). */
uint32_t octo_crc32(uint32_t crc, const uint8_t *data, size_t len);

/* COBS-encode len bytes of src into dst (no delimiter appended).
 * Returns OCTO_OK and sets *out_len, or OCTO_E_BUF when cap is too small
 * (OCTO_COBS_MAX_LEN(len) is always enough), OCTO_E_ARG on NULL pointers. */
int octo_cobs_encode(const uint8_t *src, size_t len, uint8_t *dst, size_t cap,
                     size_t *out_len) OCTO_CHECK_RESULT;

/* COBS-decode len bytes of src (no delimiter) into dst; dst may equal src
 * (in-place decoding is safe because output never outgrows input).
 * Returns OCTO_OK and sets *out_len, OCTO_E_COBS on a zero byte or a code
 * byte pointing past the end, OCTO_E_BUF when cap is too small. */
int octo_cobs_decode(const uint8_t *src, size_t len, uint8_t *dst, size_t cap,
                     size_t *out_len) OCTO_CHECK_RESULT;

/* A decoded frame; payload points into the decoder's buffer and stays valid
 * until the next octo_frame_decoder_push() call. */
typedef struct {
    uint8_t version;        /* protocol version byte from the header */
    uint8_t type;           /* message type */
    uint16_t req_id;        /* request id, echoed in the response */
    uint16_t len;           /* payload length in bytes */
    const uint8_t *payload; /* payload bytes (len of them) */
    uint32_t crc;           /* the frame's CRC-32, usable as a fingerprint */
} octo_frame_t;

/* Header fields of a frame to send. */
typedef struct {
    uint8_t type;    /* message type */
    uint16_t req_id; /* request id (0 for unsolicited messages) */
} octo_frame_hdr_t;

/* Encode one complete wire frame (COBS + trailing 0x00) for payload[len].
 * dst needs OCTO_FRAME_WIRE_MAX_LEN(len) bytes in the worst case; pass
 * dst = NULL and cap = 0 to only measure (*out_len gets the exact size).
 * Returns OCTO_OK, OCTO_E_BUF (nothing usable written), OCTO_E_ARG. */
int octo_frame_encode(const octo_frame_hdr_t *hdr, const uint8_t *payload, size_t len,
                      uint8_t *dst, size_t cap, size_t *out_len) OCTO_CHECK_RESULT;

/* Streaming decoder state. The caller owns buf (the largest encoded frame it
 * accepts, without the delimiter: OCTO_COBS_MAX_LEN(max_payload + OVERHEAD)). */
typedef struct {
    uint8_t *buf;  /* caller-provided receive buffer */
    size_t cap;    /* its size in bytes */
    size_t len;    /* bytes collected for the current frame */
    int overflow;  /* 1 while discarding an over-long frame */
} octo_frame_decoder_t;

/* Prepare a decoder over buf[cap]. Returns OCTO_E_ARG if buf is NULL or cap
 * cannot hold even an empty frame. */
int octo_frame_decoder_init(octo_frame_decoder_t *dec, uint8_t *buf, size_t cap) OCTO_CHECK_RESULT;

/* Feed one received byte.
 * Returns 0 when more bytes are needed (also for empty frames, i.e. runs of
 * 0x00 used to resynchronise), 1 when *out holds a complete valid frame, or a
 * negative status when a frame ended and was dropped: OCTO_E_COBS,
 * OCTO_E_FRAME_TOO_LONG, OCTO_E_FRAME_SHORT, OCTO_E_FRAME_LENGTH, OCTO_E_CRC.
 * Frames of any protocol version are returned; the caller checks version.
 * Never reads or writes outside buf; never blocks. */
int octo_frame_decoder_push(octo_frame_decoder_t *dec, uint8_t byte, octo_frame_t *out) OCTO_CHECK_RESULT;

/* Little-endian helpers for payload building/parsing. */
static inline void octo_put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void octo_put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline uint16_t octo_get_u16(const uint8_t *p) {
    return (uint16_t)(p[0] | ((uint16_t)p[1] << 8));
}
static inline uint32_t octo_get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

#ifdef __cplusplus
}
#endif

#endif /* OCTO_FRAME_H */
