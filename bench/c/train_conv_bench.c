/* train_conv_bench.c - time one training step of a KxK conv HxWxC -> OC
 * (stride BENCH_S, default 1, SAME, batch 1; 3x3 16x16x16 -> 16 unless
 * -DBENCH_H=... etc.) on a virtual board, FP32 and INT8, pass by pass. With
 * -DBENCH_DW=1 the layer is a KxK depthwise conv (multiplier 1, OC = C) of
 * stride BENCH_S, SAME, batch 1. SAME pads as TensorFlow (and the training
 * engine): the odd pixel of padding goes bottom/right. BENCH_ACT is the fused
 * activation (default ReLU; the engine passes none). BENCH_NB is the batch of
 * the weight-gradient passes (default 1; the engine runs them over the whole
 * batch, the forward and input-gradient passes per sample). The INT8 kernels'
 * scratch sizes are printed as "scratch pass bytes" lines.
 * Built and run by bench/train_kernel_bench.py once per shape; prints "pass
 * ticks" lines over semihosting. Ticks are SysTick at 25 MHz: instructions =
 * ticks x 40 under QEMU -icount shift=0. */
#include <stdint.h>
#include <string.h>

#include "octo/octo_board.h"
#include "octo/octo_train_f32.h"
#include "octo/octo_train_s8.h"

#ifndef BENCH_H
#define BENCH_H 16
#endif
#ifndef BENCH_W
#define BENCH_W 16
#endif
#ifndef BENCH_C
#define BENCH_C 16
#endif
#ifndef BENCH_OC
#define BENCH_OC 16
#endif
#ifndef BENCH_K
#define BENCH_K 3
#endif
#ifndef BENCH_DW
#define BENCH_DW 0
#endif
#ifndef BENCH_S
#define BENCH_S 1
#endif
#ifndef BENCH_NB
#define BENCH_NB 1
#endif
#ifndef BENCH_ACT
#define BENCH_ACT OCTO_TRAIN_ACT_RELU
#endif
#define H BENCH_H
#define W BENCH_W
#define C BENCH_C
#define K BENCH_K
#define S BENCH_S
#define OH ((H + S - 1) / S) /* SAME */
#define OW ((W + S - 1) / S)
#if BENCH_DW
#define OC C
#define NW (K * K * C)
#else
#define OC BENCH_OC
#define NW (OC * K * K * C)
#endif
#define NB BENCH_NB
#define NX (H * W * C)
#define NY (OH * OW * OC)
#define NXB (NB * NX) /* the weight-gradient pass reads NB samples */
#define NYB (NB * NY)

#define NBIG (NX > NY ? NX : NY)
static float s_wf[NW], s_bf[OC], s_dwf[NW], s_dbf[OC];
static int8_t s_w8[NW];
static int32_t s_dw32[NW], s_db32[OC];
#if BENCH_DW
/* The FP32 passes run first: the INT8 operands take their memory afterwards (fill). */
static union {
    struct {
        float x[NXB], dy[NYB], big[NBIG];
    } f;
    struct {
        int32_t acc[NBIG];
        int8_t x[NXB], dy[NYB], y[NY], dx[NX];
    } q;
} s_pool;
#define s_xf s_pool.f.x
#define s_dyf s_pool.f.dy
#define s_yf s_pool.f.big
#define s_dxf s_pool.f.big
#define s_acc s_pool.q.acc
#define s_x8 s_pool.q.x
#define s_dy8 s_pool.q.dy
#define s_y8 s_pool.q.y
#define s_dx8 s_pool.q.dx
#else
static float s_xf[NXB], s_yf[NY], s_dyf[NYB], s_dxf[NX];
static int8_t s_x8[NXB], s_dy8[NYB], s_y8[NY], s_dx8[NX];
static int32_t s_acc[NBIG];
static uint8_t s_scratch[NW * 4 + 4096] __attribute__((aligned(8)));
#endif

static void say(const char *s) {
    register int r0 __asm("r0") = 0x04; /* SYS_WRITE0 */
    register const char *r1 __asm("r1") = s;
    __asm volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
}

static void report(const char *name, uint64_t ticks) {
    char line[64];
    size_t n = strlen(name);
    memcpy(line, name, n);
    line[n++] = ' ';
    char digits[24];
    int d = 0;
    do {
        digits[d++] = (char)('0' + ticks % 10u);
        ticks /= 10u;
    } while (ticks != 0u);
    while (d > 0) {
        line[n++] = digits[--d];
    }
    line[n++] = '\n';
    line[n] = '\0';
    say(line);
}

/* The operands from one seeded sequence: FP32 (f32 != 0) and/or INT8 (s8 != 0). */
static void fill(int f32, int s8) {
    uint32_t s = 12345u;
    for (int i = 0; i < NXB; i++) {
        s = s * 1664525u + 1013904223u;
        if (f32) {
            s_xf[i] = (float)((int32_t)(s >> 24) - 128) / 128.0f;
        }
        if (s8) {
            s_x8[i] = (int8_t)((int32_t)(s >> 24) - 128);
        }
    }
    for (int i = 0; i < NW; i++) {
        s = s * 1664525u + 1013904223u;
        s_wf[i] = (float)((int32_t)(s >> 24) - 128) / 512.0f;
        s_w8[i] = (int8_t)((int32_t)(s >> 24) - 128);
    }
    for (int i = 0; i < NYB; i++) {
        s = s * 1664525u + 1013904223u;
        if (f32) {
            s_dyf[i] = (float)((int32_t)(s >> 24) - 128) / 1024.0f;
        }
        if (s8) {
            s_dy8[i] = (int8_t)((int32_t)(s >> 24) - 128);
        }
    }
    for (int i = 0; i < OC; i++) {
        s_bf[i] = 0.01f * (float)i;
    }
}

#if !BENCH_DW
static void report_scratch(const char *pass, size_t bytes) {
    char name[48] = "scratch ";
    memcpy(&name[8], pass, strlen(pass) + 1);
    report(name, (uint64_t)bytes);
}
#endif

#define TIME(name, call)                                   \
    do {                                                   \
        uint64_t t0_ = octo_board_ticks();                 \
        if ((call) != OCTO_OK) {                           \
            say("train-bench: " name " failed\n");         \
            octo_board_exit(1);                            \
        }                                                  \
        report(name, octo_board_ticks() - t0_);            \
    } while (0)

#if BENCH_DW
int main(void) {
    octo_board_init();
    fill(1, 0);
    octo_train_conv_params_t p = {S, S, 0, 0, BENCH_ACT};
    int32_t oh = 0, ow = 0;
    if (octo_train_padding(H, K, S, 1, &oh, &p.pad_h) != OCTO_OK ||
        octo_train_padding(W, K, S, 1, &ow, &p.pad_w) != OCTO_OK || oh != OH || ow != OW) {
        say("train-bench: padding\n");
        octo_board_exit(1);
    }
    const octo_dims_t in = {1, H, W, C}, out = {1, OH, OW, C}, wd = {1, K, K, C};
    const octo_dims_t inb = {NB, H, W, C}, outb = {NB, OH, OW, C};
    TIME("f32_fwd", octo_train_depthwise_conv_f32_fwd(&p, &in, s_xf, &wd, s_wf, s_bf, &out, s_yf));
    TIME("f32_bwd_input", octo_train_depthwise_conv_f32_bwd_input(&p, &in, &wd, s_wf, &out, s_dyf, s_dxf));
    TIME("f32_bwd_weight", octo_train_depthwise_conv_f32_bwd_weight(&p, &inb, s_xf, &outb, s_dyf, &wd, s_dwf, s_dbf));

    fill(0, 1);
    octo_train_prng_t rng;
    octo_train_prng_seed(&rng, 7u);
    const octo_train_q8_t x = {s_x8, 1.0f / 128.0f}, w = {s_w8, 1.0f / 512.0f}, dy = {s_dy8, 1.0f / 1024.0f};
    octo_train_q32_t acc = {s_acc, 1.0f};
    octo_train_q8_t y = {s_y8, 1.0f}, dx = {s_dx8, 1.0f};
    octo_train_q32_t dw = {s_dw32, 1.0f}, db = {s_db32, 1.0f};
    TIME("s8_fwd", octo_train_depthwise_conv_s8_fwd(&p, &in, &x, &wd, &w, s_bf, &out, &acc));
    TIME("s8_fwd_requant", octo_train_requant_s8(&acc, NY, OCTO_TRAIN_ROUND_STOCHASTIC, &rng, &y));
    TIME("s8_bwd_input", octo_train_depthwise_conv_s8_bwd_input(&p, &in, &wd, &w, &out, &dy, &acc));
    TIME("s8_bwd_input_requant", octo_train_requant_s8(&acc, NX, OCTO_TRAIN_ROUND_NEAREST, &rng, &dx));
    TIME("s8_bwd_weight", octo_train_depthwise_conv_s8_bwd_weight(&p, &inb, &x, &outb, &dy, &wd, &dw, &db));
    say("train-bench done\n");
    octo_board_exit(0);
    return 0;
}
#else
int main(void) {
    octo_board_init();
    fill(1, 1);
    octo_train_conv_params_t p = {S, S, 0, 0, BENCH_ACT};
    int32_t oh = 0, ow = 0;
    if (octo_train_padding(H, K, S, 1, &oh, &p.pad_h) != OCTO_OK ||
        octo_train_padding(W, K, S, 1, &ow, &p.pad_w) != OCTO_OK || oh != OH || ow != OW) {
        say("train-bench: padding\n");
        octo_board_exit(1);
    }
    const octo_dims_t in = {1, H, W, C}, out = {1, OH, OW, OC}, wd = {OC, K, K, C};
    const octo_dims_t inb = {NB, H, W, C}, outb = {NB, OH, OW, OC};
    report_scratch("fwd", octo_train_conv_s8_fwd_scratch_size(&wd));
    report_scratch("bwd_input", octo_train_conv_s8_bwd_input_scratch_size(&wd));
    report_scratch("bwd_weight", octo_train_conv_s8_bwd_weight_scratch_size(&wd));
    if (octo_train_conv_s8_fwd_scratch_size(&wd) > sizeof s_scratch ||
        octo_train_conv_s8_bwd_input_scratch_size(&wd) > sizeof s_scratch ||
        octo_train_conv_s8_bwd_weight_scratch_size(&wd) > sizeof s_scratch) {
        say("train-bench: scratch too small\n");
        octo_board_exit(1);
    }
    TIME("f32_fwd", octo_train_conv_f32_fwd(&p, &in, s_xf, &wd, s_wf, s_bf, &out, s_yf));
    TIME("f32_bwd_input", octo_train_conv_f32_bwd_input(&p, &in, &wd, s_wf, &out, s_dyf, s_dxf));
    TIME("f32_bwd_weight", octo_train_conv_f32_bwd_weight(&p, &inb, s_xf, &outb, s_dyf, &wd, s_dwf, s_dbf));

    octo_train_prng_t rng;
    octo_train_prng_seed(&rng, 7u);
    const octo_train_q8_t x = {s_x8, 1.0f / 128.0f}, w = {s_w8, 1.0f / 512.0f}, dy = {s_dy8, 1.0f / 1024.0f};
    octo_train_q32_t acc = {s_acc, 1.0f};
    octo_train_q8_t y = {s_y8, 1.0f}, dx = {s_dx8, 1.0f};
    octo_train_q32_t dw = {s_dw32, 1.0f}, db = {s_db32, 1.0f};
    TIME("s8_fwd", octo_train_conv_s8_fwd(&p, &in, &x, &wd, &w, s_bf, s_scratch, &out, &acc));
    TIME("s8_fwd_requant", octo_train_requant_s8(&acc, NY, OCTO_TRAIN_ROUND_STOCHASTIC, &rng, &y));
    TIME("s8_bwd_input", octo_train_conv_s8_bwd_input(&p, &in, &wd, &w, &out, &dy, s_scratch, &acc));
    TIME("s8_bwd_input_requant", octo_train_requant_s8(&acc, NX, OCTO_TRAIN_ROUND_NEAREST, &rng, &dx));
    TIME("s8_bwd_weight", octo_train_conv_s8_bwd_weight(&p, &inb, &x, &outb, &dy, &wd, s_scratch, &dw, &db));
    say("train-bench done\n");
    octo_board_exit(0);
    return 0;
}
#endif
