/*
 * octo_pass.h - PASS: patch-skipping execution of a model over video frames.
 *
 * A PASS model is a chain of patch-local layers (CONV_2D on the packed path,
 * MAX_POOL_2D, AVERAGE_POOL_2D) whose tensors all persist between frames: each
 * layer's output buffer is its output cache. Per frame, every layer recomputes
 * only the output pixels whose receptive field touches an input pixel that
 * changed; the rest keep last frame's values.
 *
 * Gated layers (gate != NULL) also keep an input cache E, the "effective
 * input". Their input is cut into P x P pixel patches (edge patches clipped).
 * A patch is re-evaluated only if one of its pixels was recomputed upstream
 * (for layer 0, the frame: every patch). The gate compares the current patch
 * with E's; if it says "changed", the patch is copied into E and its pixels
 * count as changed, otherwise E keeps the old patch and the patch counts as
 * unchanged. The layer always convolves E, so its output equals the dense
 * layer applied to the effective input, bit for bit; with every gate saying
 * "changed" the whole chain equals the dense model bit for bit.
 *
 * Gate (integers only, mirrored in host_tools/video/ref.py): over the patch's
 * sampled elements, all channels, n of them. The sampling grid moves every
 * frame so that each pixel is read once every S*S frames: with
 * phase = frames % (S*S) (octo_pass_state_t.frames before the frame runs),
 * oy = phase / S, ox = phase % S, a patch of h x w pixels at (y0, x0) reads
 * rows y0 + min(oy, h - 1) + k*S and columns x0 + min(ox, w - 1) + k*S,
 *   sum = sum |cur - E|, mx = max |cur - E|,
 *   mean_q8 = (sum * 256) / n   (integer division),  max_q8 = mx * 256,
 *   changed  <=>  mx > 0  and  a_mean * mean_q8 + a_max * max_q8 > threshold
 * with the products in int64. In OCTO_PASS_EXACT mode a patch is changed iff
 * any of its bytes (every pixel, every channel) differs from E.
 *
 * Dense frames: the first frame after octo_pass_reset, every frame in
 * OCTO_PASS_DENSE mode, and scene cuts - when layer 0's gates mark at least
 * cut_permille / 1000 of its patches changed. A dense frame recomputes every
 * output pixel of every layer and refreshes every E from the current input.
 *
 * No malloc: every buffer is static in the generated pass_model.c.
 */
#ifndef OCTO_PASS_H
#define OCTO_PASS_H

#include <stdint.h>

#include "octo/octo_kernel_types.h"
#include "octo/octo_model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define OCTO_PASS_CONV 1u    /* octo_conv_s8_packed arguments */
#define OCTO_PASS_MAXPOOL 2u /* octo_maxpool_s8 arguments */
#define OCTO_PASS_AVGPOOL 3u /* octo_avgpool_s8 arguments */

/* Frame modes. */
#define OCTO_PASS_AUTO 0u  /* the learned gates decide */
#define OCTO_PASS_DENSE 1u /* recompute everything, refresh every cache */
#define OCTO_PASS_EXACT 2u /* lossless: a patch is recomputed iff any byte of it differs from E */

/* The hook (octo_model.h) is called with (i | OCTO_PASS_HOOK_GATE) after layer
 * i's gates ran (gated layers only) and with i after layer i is done, so the
 * caller can time the gates apart from the layer. */
#define OCTO_PASS_HOOK_GATE 0x8000u

typedef struct {
    uint16_t patch;    /* P: patch side in input pixels, >= 1 */
    uint16_t sample;   /* S: 1 = every pixel, 2 = every other row and column, ... */
    int32_t a_mean;    /* weight on mean_q8 */
    int32_t a_max;     /* weight on max_q8 */
    int64_t threshold; /* changed iff a_mean*mean_q8 + a_max*max_q8 > threshold (and mx > 0) */
} octo_pass_gate_t;

typedef struct {
    uint32_t kind;                  /* OCTO_PASS_CONV / MAXPOOL / AVGPOOL */
    const octo_pass_gate_t *gate;   /* NULL: not gated (recomputes what upstream changed) */
    const void *params;             /* octo_conv_params_t (CONV) or octo_pool_params_t (pools) */
    const octo_requant_t *rq;       /* CONV only */
    const octo_dims_t *in_dims;     /* batch 1 */
    const octo_dims_t *filter_dims; /* CONV only */
    const int16_t *wpack;           /* CONV only: packed weights (converter/lower/conv.py) */
    const int32_t *bias_full;       /* CONV only */
    const octo_dims_t *out_dims;
    const int8_t *in;               /* input tensor: the frame (layer 0) or layer i-1's out */
    int8_t *out;                    /* output tensor = output cache, persistent */
    int8_t *cache;                  /* gated: E, in_dims bytes; NULL otherwise */
    uint8_t *out_mask;              /* out h*w bytes: 1 = pixel recomputed this frame */
    uint8_t *gate_map;              /* gated: ceil(H/P)*ceil(W/P) bytes, row-major: 1 = patch changed */
    int8_t *scratch;                /* CONV: octo_conv_s8_packed_patch_len(filter_dims) bytes */
} octo_pass_layer_t;

typedef struct {
    uint32_t n_layers;
    const octo_pass_layer_t *layers;
    int8_t *input;          /* = layers[0].in: where frames are written */
    uint32_t input_bytes;
    const int8_t *output;   /* = layers[n-1].out */
    uint32_t output_bytes;
    uint32_t cut_permille;  /* scene-cut threshold on layer 0's changed patches; 1001 = never */
    uint32_t state_bytes;   /* persistent bytes (tensors, caches, masks, maps) - for reports */
    /* Reports only (the runtime ignores them): */
    const char *name;
    uint32_t fingerprint;            /* CRC-32 of the .tflite it was generated from */
    const octo_layer_info_t *info;   /* n_layers entries: layer name, op, dense MACs */
    float output_scale;              /* output quantization */
    int32_t output_zero_point;
} octo_pass_model_t;

typedef struct {
    uint32_t valid;  /* 0: the next frame runs dense */
    uint32_t frames; /* frames since reset */
} octo_pass_state_t;

typedef struct {
    uint32_t out_pixels;      /* output pixels recomputed (of out h*w) */
    uint32_t patches_changed; /* gated: patches the gate (or a dense frame) marked changed */
    uint32_t patches_checked; /* gated: patches whose gate ran */
    uint32_t gate_elements;   /* gated: elements the gates read (sampled |cur - E| terms) */
    uint64_t macs;            /* MACs done (CONV: pixels x OC x kh x kw x C; pools: pixels x C x fh x fw) */
} octo_pass_layer_stats_t;

/* Forgets the caches: the next frame runs dense. */
void octo_pass_reset(octo_pass_state_t *st);

/* Runs one frame already written to m->input. stats: n_layers entries or NULL;
 * *was_dense (may be NULL) = 1 if the frame ran dense. Returns OCTO_OK, or
 * OCTO_E_ARG for a malformed model/mode (state then reset: the next frame runs dense). */
int octo_pass_frame(const octo_pass_model_t *m, octo_pass_state_t *st, uint32_t mode,
                    octo_pass_layer_stats_t *stats, uint32_t *was_dense, octo_layer_hook_fn hook,
                    void *ctx) OCTO_CHECK_RESULT;

/* The linked PASS model (generated pass_model.c). */
extern const octo_pass_model_t g_octo_pass_model;

#ifdef __cplusplus
}
#endif

#endif /* OCTO_PASS_H */
