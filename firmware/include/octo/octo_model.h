/*
 * octo_model.h - what a generated model (converter/codegen.py) provides.
 *
 * A model is a static graph in C: const weights in flash, one activation
 * arena whose layout the converter's planner fixed at conversion time. The
 * caller owns the arena (arena_bytes, 16-byte aligned).
 */
#ifndef OCTO_MODEL_H
#define OCTO_MODEL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *name; /* layer name (the op's output tensor) */
    const char *op;   /* TFLite builtin name, e.g. "CONV_2D" */
    uint32_t macs;    /* nominal multiply-accumulates (padding taps included) */
} octo_layer_info_t;

/* Called after each layer with its index (for per-layer timing); may be NULL. */
typedef void (*octo_layer_hook_fn)(void *ctx, uint32_t layer);

typedef struct {
    const char *name;
    uint32_t fingerprint;     /* CRC-32 of the .tflite it was generated from */
    uint32_t arena_bytes;     /* activation arena the caller provides */
    uint32_t input_offset;    /* int8 input tensor, offset in the arena */
    uint32_t input_bytes;
    uint32_t output_offset;   /* int8 output tensor */
    uint32_t output_bytes;
    float input_scale;        /* input quantization: real = scale * (q - zero_point) */
    int32_t input_zero_point;
    float output_scale;
    int32_t output_zero_point;
    uint32_t n_layers;
    const octo_layer_info_t *layers;
    /* Run one inference on arena[input_offset..] -> arena[output_offset..]. */
    int (*invoke)(uint8_t *arena, octo_layer_hook_fn hook, void *ctx);
} octo_model_t;

extern const octo_model_t g_octo_model;

#ifdef __cplusplus
}
#endif

#endif /* OCTO_MODEL_H */
