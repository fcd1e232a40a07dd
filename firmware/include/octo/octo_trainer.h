/*
 * octo_trainer.h - the on-device training engine: one step (forward, loss,
 * backward, SGD-momentum update) or one evaluation over a graph of layers (chains,
 * residual ADDs, tensors read by several layers) described by a generated table (converter/train_plan.py writes
 * train_model.c). INT8 ("Octo": LAC, PRC, stochastic rounding) or FP32 (the
 * baseline) is fixed per build by the table; both share this loop.
 *
 * Memory: everything lives in one caller-provided arena laid out by the
 * generated plan (no malloc). The first state_bytes of the arena are the
 * *state blob* (weights, momentum, LAC, ranges, PRNG, step, hyper-parameters;
 * layout in docs/TRAINING.md): reading it is a checkpoint, writing it back
 * (then octo_trainer_commit) resumes bit-identically.
 *
 * Per step, with batch n (<= the plan's batch):
 *   forward    layer by layer, each output saved in its slot (INT8: int8 with a
 *              per-tensor scale from the *previous* step's range, so a layer
 *              needs int32 scratch for one sample only; the first step probes
 *              the range with an extra pass)
 *   loss       the table's: softmax cross-entropy (mean over the batch; classifiers) or mean
 *              squared error against the sample's own input (mean over the batch and the output
 *              elements; autoencoders)
 *   backward   the gradient of a layer's output overwrites its saved output
 *              (after the activation mask and LAC sums have read it); the weight
 *              gradient is taken over the whole batch and applied at once, the
 *              input gradient is computed one sample at a time
 *   update     SGD with momentum; INT8 keeps int16 master weights and int16
 *              momentum (per-tensor scales), updates them with stochastic
 *              rounding and re-derives the int8 working copy.
 */
#ifndef OCTO_TRAINER_H
#define OCTO_TRAINER_H

#include <stddef.h>
#include <stdint.h>

#include "octo/octo_train.h"

#ifdef __cplusplus
extern "C" {
#endif

#define OCTO_TRAIN_STATE_MAGIC 0x5354434Fu /* "OCTS" */
#define OCTO_TRAIN_HEADER_BYTES 64u
#define OCTO_TRAIN_NONE 0xFFFFFFFFu /* "no such region" offset */

enum { OCTO_TRAIN_PREC_INT8 = 0, OCTO_TRAIN_PREC_FP32 = 1 };
/* Layer kinds (octo_train_layer_t.kind), named as the inference kernels. */
enum {
    OCTO_TRAIN_LAYER_CONV = 0,
    OCTO_TRAIN_LAYER_DEPTHWISE_CONV = 1,
    OCTO_TRAIN_LAYER_FULLY_CONNECTED = 2,
    OCTO_TRAIN_LAYER_MAXPOOL = 3,
    OCTO_TRAIN_LAYER_AVGPOOL = 4,
    OCTO_TRAIN_LAYER_ADD = 5 /* two inputs of the same shape (a residual shortcut), then the activation */
};
#define OCTO_TRAIN_INPUT 0xFFFFu /* octo_train_layer_t.src: the staged samples */
/* How the gradient of a layer's input reaches the layer that produced it (octo_train_layer_t.dx_mode).
 * A producer read by several layers gets one contribution from each, in reverse layer order: the first
 * starts a partial sum in the producer's gp buffer, later ones add to it, and the last (its earliest
 * reader) adds the partial and passes the sum through the producer's activation mask into its slot. */
enum {
    OCTO_TRAIN_DX_NONE = 0,  /* no gradient flows to this input */
    OCTO_TRAIN_DX_SINK = 1,  /* the only reader: masked straight into the producer's slot */
    OCTO_TRAIN_DX_STORE = 2, /* the first of several: starts the partial sum */
    OCTO_TRAIN_DX_ACCUM = 3, /* neither first nor last: adds to the partial sum */
    OCTO_TRAIN_DX_FINAL = 4  /* the last: partial + this contribution, masked into the producer's slot */
};
/* TRAIN_INIT flags. GRAD_SR: INT8 input gradients are rounded stochastically (unbiased: Q_FRAC random bits
 * per value from the state's PRNG, as the forward activations) instead of to nearest. */
enum { OCTO_TRAIN_FLAG_LAC = 1u, OCTO_TRAIN_FLAG_PRC = 2u, OCTO_TRAIN_FLAG_GRAD_SR = 4u };
/* Losses (octo_train_model_t.loss). XENT: softmax cross-entropy of the last layer's output (the logits)
 * and the staged labels. MSE: mean squared error of the last layer's output against the staged sample
 * itself (an autoencoder: output elements == input elements; labels unused), or with model.targets against
 * the staged targets (regression; any output size). */
enum { OCTO_TRAIN_LOSS_XENT = 0, OCTO_TRAIN_LOSS_MSE = 1 };

/* Per-layer scalars kept in the state blob (at layer.scal_off), all float. */
enum {
    OCTO_TS_W_SCALE = 0, /* INT8: master scale (trainable) or int8 scale (frozen) */
    OCTO_TS_V_SCALE = 1, /* INT8: momentum int16 scale */
    OCTO_TS_R_FWD = 2,   /* INT8: output range (real units) for the next step, 0 = unknown */
    OCTO_TS_R_BWD = 3,   /* INT8: input-gradient range, 0 = unknown */
    OCTO_TS_V_NEXT = 4,  /* INT8: scale for storing the next momentum (2-4x headroom), 0 = unknown */
    OCTO_TS_G_SHIFT = 5, /* INT8: right shift bringing the weight-gradient sums to 15 bits (from the last step) */
    OCTO_TS_COUNT = 6
};

/* One layer of the graph, in an order where every layer comes after its inputs' producers (the last
 * layer is the output). Dims are per sample (n = 1). Offsets are bytes into the arena; OCTO_TRAIN_NONE
 * when a region does not exist. */
typedef struct {
    uint8_t kind;         /* OCTO_TRAIN_LAYER_* */
    uint8_t act;          /* octo_train_act_t applied after the op (and after LAC) */
    uint8_t train_w;      /* weights are updated (output channels [0, train_oc)) */
    uint8_t train_b;      /* bias is updated */
    uint8_t need_dx;      /* the input gradient is computed (a trainable layer comes earlier) */
    uint8_t pool_exact;   /* MAX_POOL windows do not overlap: dx is a copy of dy */
    uint16_t op_index;    /* the IR op (for the host) */
    uint16_t src[2];      /* layers producing the inputs (OCTO_TRAIN_INPUT: the samples); src[1]: ADD only */
    uint8_t dx_mode[2];   /* OCTO_TRAIN_DX_* per input (need_dx == (dx_mode[0] != OCTO_TRAIN_DX_NONE)) */
    octo_train_conv_params_t conv; /* CONV/DW (act field unused: see act) */
    octo_train_pool_params_t pool; /* pools */
    octo_dims_t in, w, out;
    uint32_t x_off;   /* input slot: batch x in elements (int8 or float) */
    uint32_t x2_off;  /* ADD: the second input's slot */
    uint32_t y_off;   /* output slot: batch x out elements */
    uint32_t w_off;   /* state: FP32 weights; INT8 trainable: masters as int8 planes hi[n] (the working
                       * copy the kernels read, scale 256 x OCTO_TS_W_SCALE) then lo[n]; INT8 frozen: int8;
                       * OCTO_TRAIN_NONE: frozen weights read from flash_w (const, not in the arena) */
    uint32_t v_off;   /* state: weight momentum (f32 / i16) of the trained channels [0, train_oc) */
    uint32_t b_off;   /* state: bias f32 [OC] */
    uint32_t vb_off;  /* state: bias momentum f32 [OC] */
    uint32_t lac_off; /* state: LAC f32 gamma[OC], beta[OC], v_gamma[OC], v_beta[OC] */
    uint32_t scal_off; /* state: OCTO_TS_COUNT floats */
    uint32_t gp_off;  /* arena: layers read by several: the partial sum of their output gradient (batch x out) */
    uint32_t ls_off;  /* arena: INT8 LAC sums of this layer, int32 S1[C] + int64 S2[C] (OCTO_TRAIN_NONE: no LAC) */
    uint32_t dyb_off; /* arena: output-gradient columns of one block (chunk_oc < OC), else unused */
    uint32_t dxt_off; /* arena: the batch's input gradient while blocks update (chunk_oc < OC) */
    uint16_t chunk_oc; /* output channels per weight-gradient block (= train_oc: the trained channels at once) */
    uint16_t train_oc; /* train_w: only output channels [0, train_oc) get weight updates (= OC: all; conv and
                        * fully connected only); the bias follows train_b for every channel */
    const int8_t *init_w;   /* converted weights (int8, per-channel scales) or NULL */
    const float *init_ws;   /* their scales [OC] (conv/fully connected: per output row; depthwise: per channel) */
    const float *init_b;    /* converted bias [OC] or NULL */
    float init_bound;       /* He-uniform bound sqrt(6 / fan_in) for random init */
    const void *flash_w;    /* w_off == OCTO_TRAIN_NONE: the frozen weights as the engine uses them, computed at
                             * plan time from the converted ones (INT8: int8 at one per-tensor scale flash_ws;
                             * FP32: float); random init is refused for such a build */
    float flash_ws;
} octo_train_layer_t;

typedef struct {
    const char *name;
    uint32_t fingerprint;  /* CRC-32 of the model's .tflite */
    uint32_t config_crc;   /* CRC-32 of the plan's configuration */
    uint8_t precision;     /* OCTO_TRAIN_PREC_* */
    uint8_t n_layers;
    uint16_t batch;
    uint32_t input_elems;  /* per sample */
    uint32_t classes;      /* XENT: classes; MSE and split models: values per sample of the last output */
    uint8_t loss;          /* OCTO_TRAIN_LOSS_* (0 for split models: the host supplies the gradient) */
    uint8_t split;         /* 1: the chain ends at a split point, the host supplies the output gradients */
    uint8_t targets;       /* MSE: 1 = against staged targets (target_off), 0 = against the sample itself */
    uint32_t state_bytes;
    uint32_t arena_bytes;
    uint32_t stage_off;    /* int8 [batch][input_elems] staged samples */
    uint32_t label_off;    /* int32 [batch] labels */
    uint32_t target_off;   /* targets: int8 [batch][classes] staged targets (real = q * target_scale) */
    uint32_t input_off;    /* FP32: float input slot (layer 0's x); INT8: == stage_off */
    uint32_t tile_off;     /* 4-byte elements: one sample's largest layer output/input; >= batch*classes
                            * output gradients (int8 or float) */
    uint32_t tile_bytes;
    uint32_t grad_off;     /* 4-byte weight+bias gradients of the largest layer or block */
    uint32_t lacsum_off;   /* INT8: int32 S1[C] + int64 S2[C] of the largest layer (layers use their ls_off) */
    uint32_t scratch_off;  /* kernel scratch */
    uint32_t scratch_bytes;
    uint32_t rt_off;       /* runtime floats per layer: y scale, dz scale, weight-gradient scale */
    const octo_train_layer_t *layers;
} octo_train_model_t;

/* Hyper-parameters, as TRAIN_INIT carries them. */
typedef struct {
    uint32_t seed;
    uint32_t init;   /* 0 converted weights, 1 random (He-uniform) */
    uint32_t flags;  /* OCTO_TRAIN_FLAG_* */
    float lr;
    float momentum;
    float weight_decay;
    float input_scale;
    float prc_k;
    float lac_l2;
    float target_scale; /* MSE with targets: real target = q * target_scale (> 0); else ignored (0) */
} octo_train_hparams_t;

typedef struct {
    float loss;       /* mean over the samples (MSE: and over the output elements) */
    uint32_t correct; /* XENT: samples whose argmax is the label; MSE: 0 (no meaning) */
    uint32_t n;
} octo_train_result_t;

/* Profile slots per layer: ticks of the last step or evaluation. */
enum {
    OCTO_TRAIN_PHASE_FORWARD = 0,     /* the layer's forward pass */
    OCTO_TRAIN_PHASE_WEIGHT_GRAD = 1, /* LAC backward, weight and bias gradients */
    OCTO_TRAIN_PHASE_INPUT_GRAD = 2,  /* input gradient */
    OCTO_TRAIN_PHASE_UPDATE = 3,      /* optimizer step */
    OCTO_TRAIN_PHASE_COUNT = 4
};

typedef struct {
    const octo_train_model_t *m;
    uint8_t *arena; /* m->arena_bytes, 8-byte aligned */
    int valid;      /* state initialised or committed */
    uint32_t pending; /* split models: samples of a training forward awaiting its backward (0: none) */
    /* Optional profiling (set after bind): a clock and n_layers * OCTO_TRAIN_PHASE_COUNT counters. */
    uint64_t (*clock)(void);
    uint32_t *profile;
} octo_trainer_t;

/* Binds the engine to its arena; the state is invalid until init/commit. */
int octo_trainer_bind(octo_trainer_t *t, const octo_train_model_t *m, uint8_t *arena) OCTO_CHECK_RESULT;
/* Fresh state from the hyper-parameters (weights converted or random from the seed). */
int octo_trainer_init(octo_trainer_t *t, const octo_train_hparams_t *hp) OCTO_CHECK_RESULT;
/* Validates a state blob written into the arena (magic, fingerprint, config)
 * and re-derives the working copies. OCTO_E_STATE when it does not match. */
int octo_trainer_commit(octo_trainer_t *t) OCTO_CHECK_RESULT;
/* Samples [first, first+count): labels and int8 data into the staging buffer. */
int octo_trainer_stage(octo_trainer_t *t, uint32_t first, uint32_t count, const uint8_t *labels,
                       const int8_t *samples) OCTO_CHECK_RESULT;
/* MSE with targets: bytes [offset, offset+len) of the int8 targets of the batch ([batch][classes], sample s
 * at s * classes). OCTO_E_UNSUPPORTED for models without targets. */
int octo_trainer_stage_targets(octo_trainer_t *t, uint32_t offset, const int8_t *data, uint32_t len) OCTO_CHECK_RESULT;
/* Part of one sample: label and bytes [offset, offset+len) of its int8 data (samples larger than a frame). */
int octo_trainer_stage_part(octo_trainer_t *t, uint32_t sample, uint8_t label, uint32_t offset, const int8_t *data,
                            uint32_t len) OCTO_CHECK_RESULT;
/* One training step on staged samples 0..n-1; the step counter advances. OCTO_E_DIVERGED when the loss
 * or an activation range is not finite (the learning rate is too high): the state is invalid until a
 * checkpoint is restored (written back, then octo_trainer_commit). */
int octo_trainer_step(octo_trainer_t *t, uint32_t n, octo_train_result_t *res) OCTO_CHECK_RESULT;
/* Forward only (round to nearest, no state change); pred[n] = argmax (XENT; MSE: 0), losses[n] = each
 * sample's loss (XENT: -log softmax[label]; MSE: the mean over its output elements of (y - x)^2, the
 * reconstruction error), their mean is res->loss; pred and losses may be NULL. OCTO_E_DIVERGED when an
 * activation range is not finite. */
int octo_trainer_eval(octo_trainer_t *t, uint32_t n, octo_train_result_t *res, uint8_t *pred,
                      float *losses) OCTO_CHECK_RESULT;
uint32_t octo_trainer_step_count(const octo_trainer_t *t);
/* Split models (split learning, the device half). Forward of staged samples 0..n-1, in training mode
 * (train = 1: stochastic rounding, ranges and the PRNG advance, the backward must follow) or evaluation
 * mode (train = 0: no state change). out gets the last layer's int8 outputs [n][out elems] (in the
 * arena, valid until the next call) and their scale. OCTO_E_ARG for models with a loss; OCTO_E_DIVERGED
 * when an activation range is not finite (training mode: the state is invalid until restored). */
int octo_trainer_forward(octo_trainer_t *t, uint32_t n, int train, octo_train_q8_t *out) OCTO_CHECK_RESULT;
/* The output gradient of the last training forward (int8 [n][out elems], scale > 0): backward and
 * update of every layer; the step counter advances. OCTO_E_STATE without a pending forward of n samples. */
int octo_trainer_backward(octo_trainer_t *t, uint32_t n, const int8_t *dy, float dy_scale) OCTO_CHECK_RESULT;
/* Sets the learning rate kept in the state (a host-side schedule); lr >= 0. */
int octo_trainer_set_lr(octo_trainer_t *t, float lr) OCTO_CHECK_RESULT;

#ifdef __cplusplus
}
#endif

#endif /* OCTO_TRAINER_H */
