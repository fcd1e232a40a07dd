/*
 * octo_sgq.h - SGQ (stripe-wise group quantization) codec for split learning:
 * the device sends compressed features, the cloud sends compressed feature
 * gradients. The wire format is specified in docs/SGQ.md; host_tools/sgq/codec.py
 * is the Python twin and produces the same bytes for the same input.
 *
 * A payload carries an int8 tensor q [N,H,W,C] (NHWC, C fastest) and one
 * float32 per-tensor scale (real value = q * scale). Channels are split into
 * G groups (an explicit group id per channel travels in the payload); the
 * spatial plane is cut into stripes of stripe_h x stripe_w pixels; every
 * (sample, stripe, group) - or (stripe, group) with shared ranges - has its
 * own range in int8 units, and each value is coded with `bits` bits (2, 4, 8)
 * relative to its range. All arithmetic after the int8 step is integer, so
 * encoders and decoders on every target agree bit for bit.
 *
 * Layout, all integers little-endian:
 *   [0]      u8   magic 0x53 ('S')
 *   [1]      u8   format version 1 or 2 (OCTO_SGQ_FORMAT_VERSION_RC; encoders write 2 only with bit 5)
 *   [2]      u8   bits 0-1 bits code (0: 2, 1: 4, 2: 8), bits 2-3 range mode
 *                 (octo_sgq_range_t, not AUTO), bit 4 shared ranges, bit 5 range-coded
 *                 codes (version 2 only), bits 6-7 zero
 *   [3]      u8   groups G, 1..C
 *   [4..11]  u16  N, H, W, C (each >= 1)
 *   [12]     u8   stripe_h, 1..H      [13] u8 stripe_w, 1..W
 *   [14..17] f32  scale (IEEE-754 binary32, finite, > 0)
 *   group map  ceil(C * mb / 8) bytes, mb = 0/1/2/4/8 bits for G = 1/2/<=4/<=16/<=255,
 *              group id of channel 0, 1, ... packed LSB first
 *   ranges     one per (n or 0 if shared, stripe row, stripe col, group), that
 *              order: 1 byte (UNSIGNED: hi; SYMMETRIC: m) or 2 bytes (ASYMMETRIC: lo, hi)
 *   codes      one per value in NHWC order, except values whose range has zero
 *              width (they decode to the range's lo), `bits` bits each, LSB first,
 *              zero padding to a byte; or, with mode bit 5, the same codes through an
 *              adaptive binary range coder (lossless; docs/SGQ.md "Range-coded codes")
 *
 * Memory: no allocation. Encoder and decoder take a caller-owned scratch
 * buffer of octo_sgq_scratch_size(C, G) bytes, 4-byte aligned.
 */
#ifndef OCTO_SGQ_H
#define OCTO_SGQ_H

#include <stddef.h>
#include <stdint.h>

#include "octo/octo_kernel_types.h"
#include "octo/octo_status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define OCTO_SGQ_MAGIC 0x53u
#define OCTO_SGQ_FORMAT_VERSION 1u    /* the wire format's own version, not the firmware's */
#define OCTO_SGQ_FORMAT_VERSION_RC 2u /* version 2: mode bit 5 may flag range-coded codes */
#define OCTO_SGQ_MODE_RC 0x20u        /* mode byte bit 5 */
#define OCTO_SGQ_HEADER_LEN 18u
#define OCTO_SGQ_MAX_DIM 65535
#define OCTO_SGQ_MAX_GROUPS 255
#define OCTO_SGQ_MAX_STRIPE 255
#define OCTO_SGQ_MAX_ELEMS ((1ul << 28) - 1ul) /* format limit on N*H*W*C */

/* Decoder verdicts on untrusted bytes, in the order they are checked
 * (host_tools/sgq/codec.py raises SgqFormatError with the same code for the same
 * bytes). OCTO_E_ARG (NULL pointer, misaligned scratch) and OCTO_E_BUF (out
 * or scratch too small, checked right after the header) come from octo_status.h. */
typedef enum {
    OCTO_SGQ_E_SHORT = -32,   /* shorter than the 18-byte header */
    OCTO_SGQ_E_MAGIC = -33,   /* byte 0 is not 0x53 */
    OCTO_SGQ_E_VERSION = -34, /* format version not supported */
    OCTO_SGQ_E_HEADER = -35,  /* reserved bits, bits/range code, zero dim, groups, stripes or scale invalid */
    OCTO_SGQ_E_SHAPE = -36,   /* N*H*W*C > OCTO_SGQ_MAX_ELEMS */
    OCTO_SGQ_E_LENGTH = -37,  /* length does not add up (truncated or trailing bytes) */
    OCTO_SGQ_E_GROUPS = -38,  /* group id >= G, an empty group, or non-zero map padding */
    OCTO_SGQ_E_RANGE = -39,   /* UNSIGNED/SYMMETRIC range > 127, or ASYMMETRIC lo > hi */
    OCTO_SGQ_E_CODE = -40     /* SYMMETRIC code 2^bits - 1, or non-zero code padding */
} octo_sgq_status_t;

/* How a stripe's range is stored and what its codes mean (docs/SGQ.md). */
typedef enum {
    OCTO_SGQ_RANGE_UNSIGNED = 0,   /* 1 byte hi in [0,127], range [0,hi]: features after ReLU */
    OCTO_SGQ_RANGE_ASYMMETRIC = 1, /* 2 bytes lo, hi (int8), lo <= hi: signed features */
    OCTO_SGQ_RANGE_SYMMETRIC = 2,  /* 1 byte m in [0,127], range [-m,m], 2^(b-1)-1 levels a side,
                                    * zero exact: gradients (-128 is coded as -127) */
    OCTO_SGQ_RANGE_AUTO = 3        /* encoder only: UNSIGNED if no value < 0, else ASYMMETRIC */
} octo_sgq_range_t;

/* Rounding of values to codes. */
typedef enum {
    OCTO_SGQ_ROUND_NEAREST = 0,   /* (x * R + 2^15) >> 16 */
    OCTO_SGQ_ROUND_STOCHASTIC = 1 /* (x * R + (draw >> 16)) >> 16, one xorshift32 draw per coded
                                   * value in NHWC order; unbiased, for gradients */
} octo_sgq_round_t;

/* How the encoder groups channels (the decoder just reads the map). Channels
 * are ranked by max |q| over N,H,W (ties by index). */
typedef enum {
    OCTO_SGQ_GROUP_AUTO = 0,       /* INTERLEAVED for 2-bit SYMMETRIC, else CONTIGUOUS (measured) */
    OCTO_SGQ_GROUP_CONTIGUOUS = 1, /* group = rank * G / C: similar channels together */
    OCTO_SGQ_GROUP_INTERLEAVED = 2 /* group = rank % G: each group spans all magnitudes */
} octo_sgq_grouping_t;

/* Encoder settings. */
typedef struct {
    int32_t bits;             /* 2, 4 or 8 */
    int32_t groups;           /* G, 1..min(C, 255) */
    int32_t stripe_h;         /* stripe rows, 1..min(H, 255) */
    int32_t stripe_w;         /* stripe columns, 1..min(W, 255) (W = row bands) */
    int32_t range_mode;       /* octo_sgq_range_t */
    int32_t shared;           /* 0: ranges per sample; 1: one set for the whole batch */
    int32_t grouping;         /* octo_sgq_grouping_t; ignored when group_map is set */
    int32_t rounding;         /* octo_sgq_round_t */
    uint32_t seed;            /* stochastic rounding seed (state = fmix32(seed + 0x9E3779B9)) */
    const uint8_t *group_map; /* optional [C] fixed group ids (each group used); NULL = computed */
    int32_t clip;             /* 0: a range is its stripe x group's max; OCTO_SGQ_CLIP_MIN..MAX: clipped
                               * ranges, bound = min(max, ceil(clip / 8 * mean |v| of the non-zero
                               * values)), values beyond it coded as the extreme level (docs/SGQ.md) */
    int32_t entropy;          /* 1: range-code the codes when that is strictly shorter than the
                               * fixed-width codes (format version 2, lossless); 0: fixed width */
} octo_sgq_params_t;

/* Clipped ranges (octo_sgq_params_t.clip): alpha in eighths, and the defaults chosen by measurement
 * (docs/SGQ.md, "Clipped ranges"): 2.25 at 2 bits, 5 at 4 bits, off at 8 bits (lossless on q). */
#define OCTO_SGQ_CLIP_MIN 8
#define OCTO_SGQ_CLIP_MAX 255
#define OCTO_SGQ_CLIP_ALPHA8(bits) ((bits) == 2 ? 18 : (bits) == 4 ? 40 : 0)
/* With clipping, (shared ? N : 1) * stripe_h * stripe_w * C must not exceed this (sums fit 32 bits). */
#define OCTO_SGQ_CLIP_MAX_VALUES (1ul << 23)

/* An int8 tensor with its per-tensor scale (real value = data[i] * scale). */
typedef struct {
    const int8_t *data; /* [n][h][w][c] */
    octo_dims_t dims;   /* each 1..65535, product <= OCTO_SGQ_MAX_ELEMS */
    float scale;        /* finite, > 0 */
} octo_sgq_tensor_t;

/* Caller-owned scratch memory: buf 4-byte aligned, size >= octo_sgq_scratch_size(C, G). */
typedef struct {
    void *buf;
    size_t size;
} octo_sgq_ctx_t;

/* A parsed, validated header and the section sizes it implies. */
typedef struct {
    int32_t version;     /* format version */
    int32_t bits;        /* 2, 4 or 8 */
    int32_t range_mode;  /* octo_sgq_range_t (never AUTO) */
    int32_t shared;      /* 1 if the ranges are shared by the batch */
    int32_t entropy;     /* 1 if the codes are range-coded */
    int32_t groups;      /* G */
    int32_t stripe_h;    /* stripe rows */
    int32_t stripe_w;    /* stripe columns */
    octo_dims_t dims;    /* N, H, W, C */
    float scale;         /* per-tensor scale */
    uint32_t elems;      /* N*H*W*C */
    uint32_t map_len;    /* bytes of the group map */
    uint32_t n_ranges;   /* ranges in the payload */
    uint32_t ranges_len; /* bytes of the ranges */
    uint32_t head_len;   /* header + map + ranges */
} octo_sgq_info_t;

/* Bits per channel id in the group map. */
#define OCTO_SGQ_MAP_BITS(g) ((g) <= 1 ? 0u : (g) <= 2 ? 1u : (g) <= 4 ? 2u : (g) <= 16 ? 4u : 8u)
#define OCTO_SGQ_CEIL_DIV(a, b) (((a) + (b) - 1u) / (b))

/* Largest payload for these settings (every range 2 bytes, every value coded),
 * for static buffers; octo_sgq_encoded_max_len computes the same with overflow checks. */
#define OCTO_SGQ_MAX_LEN(n, h, w, c, bits, groups, sh, sw)                                           \
    (OCTO_SGQ_HEADER_LEN + OCTO_SGQ_CEIL_DIV((size_t)(c) * OCTO_SGQ_MAP_BITS(groups), 8u) +           \
     2u * (size_t)(n) * OCTO_SGQ_CEIL_DIV((size_t)(h), (size_t)(sh)) *                              \
         OCTO_SGQ_CEIL_DIV((size_t)(w), (size_t)(sw)) * (size_t)(groups) +                          \
     OCTO_SGQ_CEIL_DIV((size_t)(n) * (h) * (w) * (c) * (size_t)(bits), 8u))

/* Scratch bytes for C channels and G groups: group ids (C), group sizes (2G),
 * the range coder's 256 u16 probabilities and max(a 129-entry u16 histogram,
 * G 8-byte range entries), each 4-aligned. */
#define OCTO_SGQ_SCRATCH_LEN(c, g)                                                                   \
    ((((size_t)(c) + 3u) & ~(size_t)3u) + (((size_t)(g) * 2u + 3u) & ~(size_t)3u) + 512u +          \
     ((size_t)(g) * 8u > 260u ? (size_t)(g) * 8u : 260u))

/* The scratch size for C channels and G groups (OCTO_SGQ_SCRATCH_LEN); 0 if
 * c or g is out of range. */
size_t octo_sgq_scratch_size(int32_t c, int32_t groups);

/* *out_len = OCTO_SGQ_MAX_LEN for these dims and params. OCTO_E_ARG if the
 * params do not fit the dims or the size would not fit in size_t. */
int octo_sgq_encoded_max_len(const octo_dims_t *dims, const octo_sgq_params_t *params,
                             size_t *out_len) OCTO_CHECK_RESULT;

/* Encode `in` into dst[cap]; *out_len = bytes written. Three passes over the
 * tensor (channel statistics, ranges, codes); no allocation. Clipping never
 * changes the length (a range has zero width with clipping iff it has without).
 * dst must hold the fixed-width payload even with params->entropy (the range
 * coder writes in place and falls back to fixed width, a fourth pass, when its
 * stream would not be shorter).
 * Returns OCTO_OK, OCTO_E_ARG (NULL, dims, scale, params, UNSIGNED mode with a
 * negative value, an invalid group_map, misaligned scratch) or OCTO_E_BUF
 * (scratch or dst too small; dst then holds nothing usable). */
int octo_sgq_encode(const octo_sgq_tensor_t *in, const octo_sgq_params_t *params, const octo_sgq_ctx_t *ctx,
                    uint8_t *dst, size_t cap, size_t *out_len) OCTO_CHECK_RESULT;

/* Check the fixed header of src[len] (magic, version, fields, shape limit) and
 * fill *info. Does not read past the header. Returns OCTO_OK, OCTO_E_ARG or
 * OCTO_SGQ_E_SHORT / _MAGIC / _VERSION / _HEADER / _SHAPE. */
int octo_sgq_parse_header(const uint8_t *src, size_t len, octo_sgq_info_t *info) OCTO_CHECK_RESULT;

/* Validate and decode src[len] (untrusted bytes) into out[out_cap] (int8,
 * NHWC); *info gets the header (scale included). Checks, in order: header
 * (as octo_sgq_parse_header), out_cap >= N*H*W*C and scratch size (OCTO_E_BUF),
 * len >= header + map + ranges (_LENGTH), group map (_GROUPS), ranges (_RANGE),
 * len == exactly what the ranges imply (_LENGTH), codes (_CODE). Never reads
 * outside src[len] or writes outside out[out_cap] and the scratch; on an
 * error out holds nothing usable. */
int octo_sgq_decode(const uint8_t *src, size_t len, const octo_sgq_ctx_t *ctx, int8_t *out, size_t out_cap,
                    octo_sgq_info_t *info) OCTO_CHECK_RESULT;

/* Constant name of an SGQ or generic status ("OCTO_SGQ_E_RANGE"), never NULL. */
const char *octo_sgq_status_name(int status);

#ifdef __cplusplus
}
#endif

#endif /* OCTO_SGQ_H */
