/*
 * train_args.c - every training kernel rejects bad arguments with OCTO_E_ARG
 * (NULL pointers, bad shapes and parameters, scales <= 0 or NaN, misaligned
 * scratch, over-long reductions) and accepts the good call next to them.
 * Prints "<n> passed, <m> failed"; exit status 1 on any failure.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "octo/octo_train.h"

static int g_pass, g_fail;

#define EXPECT(call, want)                                                                                             \
    do {                                                                                                               \
        const int got_ = (call);                                                                                       \
        if (got_ == (want)) {                                                                                          \
            g_pass++;                                                                                                  \
        } else {                                                                                                       \
            g_fail++;                                                                                                  \
            printf("FAIL %s:%d: %s = %s, want %s\n", __FILE__, __LINE__, #call, octo_status_name(got_),               \
                   octo_status_name(want));                                                                            \
        }                                                                                                              \
    } while (0)
#define OK(call) EXPECT(call, OCTO_OK)
#define BAD(call) EXPECT(call, OCTO_E_ARG)

/* buffers big enough for every call below */
static float fx[4096], fw[4096], fy[4096], fd[4096], fb[64];
static int8_t sx[4096], sw[4096], sy[4096];
static int32_t acc[4096], acc2[4096], acc3[64];
static int32_t scratch_words[4096];

static void test_conv(void) {
    const octo_train_conv_params_t p = {1, 1, 1, 1, OCTO_TRAIN_ACT_RELU};
    const octo_dims_t in = {2, 5, 5, 3}, wd = {4, 3, 3, 3}, out = {2, 5, 5, 4};
    octo_train_conv_params_t bad = p;
    octo_dims_t bad_out = out, bad_w = wd, bad_in = in;

    OK(octo_train_conv_f32_fwd(&p, &in, fx, &wd, fw, fb, &out, fy));
    OK(octo_train_conv_f32_fwd(&p, &in, fx, &wd, fw, NULL, &out, fy));
    BAD(octo_train_conv_f32_fwd(NULL, &in, fx, &wd, fw, fb, &out, fy));
    BAD(octo_train_conv_f32_fwd(&p, NULL, fx, &wd, fw, fb, &out, fy));
    BAD(octo_train_conv_f32_fwd(&p, &in, NULL, &wd, fw, fb, &out, fy));
    BAD(octo_train_conv_f32_fwd(&p, &in, fx, NULL, fw, fb, &out, fy));
    BAD(octo_train_conv_f32_fwd(&p, &in, fx, &wd, NULL, fb, &out, fy));
    BAD(octo_train_conv_f32_fwd(&p, &in, fx, &wd, fw, fb, NULL, fy));
    BAD(octo_train_conv_f32_fwd(&p, &in, fx, &wd, fw, fb, &out, NULL));
    bad.stride_h = 0;
    BAD(octo_train_conv_f32_fwd(&bad, &in, fx, &wd, fw, fb, &out, fy));
    bad = p;
    bad.pad_w = -1;
    BAD(octo_train_conv_f32_fwd(&bad, &in, fx, &wd, fw, fb, &out, fy));
    bad = p;
    bad.stride_w = 0x40000000; /* window arithmetic would overflow int32 */
    BAD(octo_train_conv_f32_fwd(&bad, &in, fx, &wd, fw, fb, &out, fy));
    BAD(octo_train_conv_s8_bwd_input(&bad, &in, &wd, &(octo_train_q8_t){sw, 1.0f}, &out,
                                     &(octo_train_q8_t){sy, 1.0f}, scratch_words, &(octo_train_q32_t){acc, 0.0f}));
    bad = p;
    bad.pad_h = 0x7FFFFFFA; /* (5-1)*1 + 3 + pad + 5 > INT32_MAX */
    BAD(octo_train_depthwise_conv_f32_bwd_input(&bad, &in, &(octo_dims_t){1, 3, 3, 3}, fw, &(octo_dims_t){2, 5, 5, 3},
                                                fy, fd));
    bad = p;
    bad.act = 3;
    BAD(octo_train_conv_f32_fwd(&bad, &in, fx, &wd, fw, fb, &out, fy));
    bad_out.c = 5; /* != filters */
    BAD(octo_train_conv_f32_fwd(&p, &in, fx, &wd, fw, fb, &bad_out, fy));
    bad_out = out;
    bad_out.n = 1; /* batch mismatch */
    BAD(octo_train_conv_f32_fwd(&p, &in, fx, &wd, fw, fb, &bad_out, fy));
    bad_w.c = 2; /* != input channels */
    BAD(octo_train_conv_f32_fwd(&p, &in, fx, &bad_w, fw, fb, &out, fy));
    bad_in.h = 0;
    BAD(octo_train_conv_f32_fwd(&p, &bad_in, fx, &wd, fw, fb, &out, fy));
    bad_in = in;
    bad_in.n = 0x10000;
    bad_in.h = 0x10000; /* element count beyond int32 */
    BAD(octo_train_conv_f32_fwd(&p, &bad_in, fx, &wd, fw, fb, &out, fy));

    OK(octo_train_conv_f32_bwd_input(&p, &in, &wd, fw, &out, fy, fd));
    BAD(octo_train_conv_f32_bwd_input(&p, &in, &wd, NULL, &out, fy, fd));
    BAD(octo_train_conv_f32_bwd_input(&p, &in, &wd, fw, &out, NULL, fd));
    BAD(octo_train_conv_f32_bwd_input(&p, &in, &wd, fw, &out, fy, NULL));
    BAD(octo_train_conv_f32_bwd_input(&p, &in, &bad_w, fw, &out, fy, fd));
    OK(octo_train_conv_f32_bwd_weight(&p, &in, fx, &out, fy, &wd, fd, fb));
    OK(octo_train_conv_f32_bwd_weight(&p, &in, fx, &out, fy, &wd, fd, NULL));
    BAD(octo_train_conv_f32_bwd_weight(&p, &in, NULL, &out, fy, &wd, fd, fb));
    BAD(octo_train_conv_f32_bwd_weight(&p, &in, fx, &out, NULL, &wd, fd, fb));
    BAD(octo_train_conv_f32_bwd_weight(&p, &in, fx, &out, fy, &wd, NULL, fb));
    BAD(octo_train_conv_f32_bwd_weight(&p, &in, fx, &bad_out, fy, &wd, fd, fb));

    octo_train_q8_t qx = {sx, 0.01f}, qw = {sw, 0.02f}, qy = {sy, 0.03f};
    octo_train_q8_t q0 = {sx, 0.0f}, qnan = {sx, NAN}, qnull = {NULL, 1.0f};
    octo_train_q32_t y = {acc, 0.0f}, dw = {acc2, 0.0f}, db = {acc3, 0.0f}, ynull = {NULL, 0.0f};
    void *s = scratch_words;
    void *mis = (int8_t *)scratch_words + 1;
    OK(octo_train_conv_s8_fwd(&p, &in, &qx, &wd, &qw, fb, s, &out, &y));
    OK(octo_train_conv_s8_fwd(&p, &in, &qx, &wd, &qw, NULL, s, &out, &y));
    BAD(octo_train_conv_s8_fwd(&p, &in, &q0, &wd, &qw, fb, s, &out, &y));
    BAD(octo_train_conv_s8_fwd(&p, &in, &qx, &wd, &qnan, fb, s, &out, &y));
    BAD(octo_train_conv_s8_fwd(&p, &in, &qnull, &wd, &qw, fb, s, &out, &y));
    BAD(octo_train_conv_s8_fwd(&p, &in, &qx, &wd, &qw, fb, NULL, &out, &y));
    BAD(octo_train_conv_s8_fwd(&p, &in, &qx, &wd, &qw, fb, mis, &out, &y));
    BAD(octo_train_conv_s8_fwd(&p, &in, &qx, &wd, &qw, fb, s, &out, &ynull));
    BAD(octo_train_conv_s8_fwd(&p, &in, &qx, &wd, &qw, fb, s, &out, NULL));
    BAD(octo_train_conv_s8_fwd(&p, &in, &qx, &bad_w, &qw, fb, s, &out, &y));
    {
        /* reduction longer than OCTO_TRAIN_S8_MAX_TERMS (kh*kw*c = 65536): refused before any access */
        const octo_dims_t big_in = {1, 1, 1, 65536}, big_w = {1, 1, 1, 65536}, o1 = {1, 1, 1, 1};
        const octo_train_conv_params_t p1 = {1, 1, 0, 0, 0};
        BAD(octo_train_conv_s8_fwd(&p1, &big_in, &qx, &big_w, &qw, NULL, s, &o1, &y));
    }
    {
        /* scale product underflows to 0 */
        octo_train_q8_t tiny = {sx, 1e-30f};
        BAD(octo_train_conv_s8_fwd(&p, &in, &tiny, &wd, &tiny, fb, s, &out, &y));
    }
    /* the larger of the pixel path (bias sums, four expanded fields and a field of K4 = 28, four padded
     * weight rows) and the segment path (one block of expanded weights, sums, KH padded rows of R4 = 12) */
    if (octo_train_conv_s8_fwd_scratch_size(&wd) != 4 * 4 + 9 * 28 + 4 * 28 ||
        octo_train_conv_s8_fwd_scratch_size(&wd) < 2 * 4 * 3 * 12 + 8 * 4 + 3 * 12 ||
        octo_train_conv_s8_fwd_scratch_size(NULL) != 0) {
        g_fail++;
        printf("FAIL conv fwd scratch size %zu\n", octo_train_conv_s8_fwd_scratch_size(&wd));
    } else {
        g_pass++;
    }
    OK(octo_train_conv_s8_bwd_input(&p, &in, &wd, &qw, &out, &qy, s, &y));
    BAD(octo_train_conv_s8_bwd_input(&p, &in, &wd, &qw, &out, &qy, mis, &y));
    BAD(octo_train_conv_s8_bwd_input(&p, &in, &wd, &qw, &out, &q0, s, &y));
    BAD(octo_train_conv_s8_bwd_input(&p, &in, &wd, NULL, &out, &qy, s, &y));
    OK(octo_train_conv_s8_bwd_weight(&p, &in, &qx, &out, &qy, &wd, s, &dw, &db));
    OK(octo_train_conv_s8_bwd_weight(&p, &in, &qx, &out, &qy, &wd, s, &dw, NULL));
    BAD(octo_train_conv_s8_bwd_weight(&p, &in, &qx, &out, &qy, &wd, s, &dw, &ynull));
    BAD(octo_train_conv_s8_bwd_weight(&p, &in, &qx, &out, &qy, &wd, NULL, &dw, &db));
    BAD(octo_train_conv_s8_bwd_weight(&p, &in, &qnan, &out, &qy, &wd, s, &dw, &db));
    {
        /* batch * out_h * out_w = 65536 positions > OCTO_TRAIN_S8_MAX_TERMS */
        const octo_dims_t big_in = {1, 256, 256, 1}, w1 = {1, 1, 1, 1}, big_out = {1, 256, 256, 1};
        const octo_train_conv_params_t p1 = {1, 1, 0, 0, 0};
        BAD(octo_train_conv_s8_bwd_weight(&p1, &big_in, &qx, &big_out, &qy, &w1, s, &dw, &db));
        BAD(octo_train_depthwise_conv_s8_bwd_weight(&p1, &big_in, &qx, &big_out, &qy, &w1, &dw, &db));
    }

    /* depthwise: w_dims {1,KH,KW,OC}, out channels OC = multiplier x C */
    const octo_dims_t dwd = {1, 3, 3, 3}, dout = {2, 5, 5, 3};
    const octo_dims_t dwd2 = {1, 3, 3, 6}, dout2 = {2, 5, 5, 6}, dwd4 = {1, 3, 3, 4}, dout4 = {2, 5, 5, 4};
    octo_dims_t bad_dw = dwd;
    OK(octo_train_depthwise_conv_f32_fwd(&p, &in, fx, &dwd, fw, fb, &dout, fy));
    OK(octo_train_depthwise_conv_f32_fwd(&p, &in, fx, &dwd2, fw, fb, &dout2, fy));     /* multiplier 2 */
    BAD(octo_train_depthwise_conv_f32_fwd(&p, &in, fx, &dwd4, fw, fb, &dout4, fy));    /* 4 = 1.33 x 3 */
    BAD(octo_train_depthwise_conv_f32_fwd(&p, &in, fx, &dwd, fw, fb, &dout2, fy));     /* w for 3, out 6 */
    BAD(octo_train_depthwise_conv_s8_bwd_input(&p, &in, &dwd4, &qw, &dout4, &qy, &y)); /* 4 = 1.33 x 3 */
    OK(octo_train_depthwise_conv_s8_bwd_weight(&p, &in, &qx, &dout2, &qy, &dwd2, &dw, &db));
    BAD(octo_train_depthwise_conv_f32_fwd(&p, &in, fx, &wd, fw, fb, &out, fy)); /* a conv shape */
    bad_dw.n = 2;
    BAD(octo_train_depthwise_conv_f32_fwd(&p, &in, fx, &bad_dw, fw, fb, &dout, fy));
    OK(octo_train_depthwise_conv_f32_bwd_input(&p, &in, &dwd, fw, &dout, fy, fd));
    BAD(octo_train_depthwise_conv_f32_bwd_input(&p, &in, &dwd, fw, &dout, NULL, fd));
    OK(octo_train_depthwise_conv_f32_bwd_weight(&p, &in, fx, &dout, fy, &dwd, fd, fb));
    BAD(octo_train_depthwise_conv_f32_bwd_weight(&p, &in, fx, &dout, fy, &dwd, NULL, fb));
    OK(octo_train_depthwise_conv_s8_fwd(&p, &in, &qx, &dwd, &qw, fb, &dout, &y));
    BAD(octo_train_depthwise_conv_s8_fwd(&p, &in, &qx, &dwd, &q0, fb, &dout, &y));
    BAD(octo_train_depthwise_conv_s8_fwd(&p, &in, &qx, &dwd, &qw, fb, &dout, &ynull));
    OK(octo_train_depthwise_conv_s8_bwd_input(&p, &in, &dwd, &qw, &dout, &qy, &y));
    BAD(octo_train_depthwise_conv_s8_bwd_input(&p, &in, &dwd, &qw, &dout, &qnull, &y));
    OK(octo_train_depthwise_conv_s8_bwd_weight(&p, &in, &qx, &dout, &qy, &dwd, &dw, &db));
    BAD(octo_train_depthwise_conv_s8_bwd_weight(&p, &in, &qx, &dout, &qy, &dwd, NULL, &db));
}

static void test_fc(void) {
    const octo_train_fully_connected_params_t p = {OCTO_TRAIN_ACT_RELU6};
    const octo_dims_t in = {3, 2, 2, 5}, wd = {7, 1, 1, 20}, out = {3, 1, 1, 7};
    octo_dims_t bad_w = wd, bad_out = out;
    octo_train_fully_connected_params_t bad = {9};
    OK(octo_train_fully_connected_f32_fwd(&p, &in, fx, &wd, fw, fb, &out, fy));
    BAD(octo_train_fully_connected_f32_fwd(&bad, &in, fx, &wd, fw, fb, &out, fy));
    BAD(octo_train_fully_connected_f32_fwd(NULL, &in, fx, &wd, fw, fb, &out, fy));
    bad_w.c = 19; /* != 2*2*5 */
    BAD(octo_train_fully_connected_f32_fwd(&p, &in, fx, &bad_w, fw, fb, &out, fy));
    bad_w = wd;
    bad_w.h = 2;
    BAD(octo_train_fully_connected_f32_fwd(&p, &in, fx, &bad_w, fw, fb, &out, fy));
    bad_out.c = 6;
    BAD(octo_train_fully_connected_f32_fwd(&p, &in, fx, &wd, fw, fb, &bad_out, fy));
    bad_out = out;
    bad_out.w = 2;
    BAD(octo_train_fully_connected_f32_fwd(&p, &in, fx, &wd, fw, fb, &bad_out, fy));
    OK(octo_train_fully_connected_f32_bwd_input(&in, &wd, fw, &out, fy, fd));
    BAD(octo_train_fully_connected_f32_bwd_input(&in, &wd, fw, &out, fy, NULL));
    OK(octo_train_fully_connected_f32_bwd_weight(&in, fx, &out, fy, &wd, fd, NULL));
    BAD(octo_train_fully_connected_f32_bwd_weight(&in, fx, &out, fy, &bad_w, fd, fb));

    octo_train_q8_t qx = {sx, 0.01f}, qw = {sw, 0.02f}, qy = {sy, 0.03f}, q0 = {sx, -1.0f};
    octo_train_q32_t y = {acc, 0.0f}, dw = {acc2, 0.0f}, db = {acc3, 0.0f};
    void *s = scratch_words;
    void *mis = (int8_t *)scratch_words + 2;
    OK(octo_train_fully_connected_s8_fwd(&p, &in, &qx, &wd, &qw, fb, &out, &y));
    BAD(octo_train_fully_connected_s8_fwd(&p, &in, &q0, &wd, &qw, fb, &out, &y));
    BAD(octo_train_fully_connected_s8_fwd(&bad, &in, &qx, &wd, &qw, fb, &out, &y));
    OK(octo_train_fully_connected_s8_bwd_input(&in, &wd, &qw, &out, &qy, s, &y));
    BAD(octo_train_fully_connected_s8_bwd_input(&in, &wd, &qw, &out, &qy, mis, &y));
    BAD(octo_train_fully_connected_s8_bwd_input(&in, &wd, &qw, &out, &qy, NULL, &y));
    OK(octo_train_fully_connected_s8_bwd_weight(&in, &qx, &out, &qy, &wd, s, &dw, &db));
    BAD(octo_train_fully_connected_s8_bwd_weight(&in, &qx, &out, &qy, &wd, mis, &dw, &db));
    BAD(octo_train_fully_connected_s8_bwd_weight(&in, &qx, &out, &q0, &wd, s, &dw, &db));
    if (octo_train_fully_connected_s8_bwd_weight_scratch_size(&wd) != 16 * (20 + 7) ||
        octo_train_fully_connected_s8_bwd_input_scratch_size(&wd) != 140) {
        g_fail++;
        printf("FAIL fc scratch sizes\n");
    } else {
        g_pass++;
    }
    {
        const octo_dims_t big_in = {1, 1, 1, 65536}, big_w = {1, 1, 1, 65536}, o1 = {1, 1, 1, 1};
        BAD(octo_train_fully_connected_s8_fwd(&p, &big_in, &qx, &big_w, &qw, NULL, &o1, &y));
    }
}

static void test_pool_act_loss(void) {
    const octo_train_pool_params_t p = {2, 2, 0, 0, 2, 2};
    const octo_dims_t in = {2, 4, 4, 3}, out = {2, 2, 2, 3};
    octo_train_pool_params_t bad = p;
    octo_dims_t bad_out = out;
    OK(octo_train_maxpool_f32_fwd(&p, &in, fx, &out, fy));
    OK(octo_train_avgpool_f32_fwd(&p, &in, fx, &out, fy));
    bad.filter_w = 0;
    BAD(octo_train_maxpool_f32_fwd(&bad, &in, fx, &out, fy));
    BAD(octo_train_avgpool_f32_bwd(&bad, &in, &out, fy, fd));
    bad = p;
    bad.stride_h = 0x7FFFFFFF;
    BAD(octo_train_maxpool_s8_fwd(&bad, &in, &(octo_train_q8_t){sx, 1.0f}, &out, &(octo_train_q8_t){sy, 1.0f}));
    bad = p;
    bad.pad_h = 2; /* the first window row lies in the padding */
    BAD(octo_train_maxpool_f32_fwd(&bad, &in, fx, &out, fy));
    BAD(octo_train_avgpool_f32_fwd(&bad, &in, fx, &out, fy));
    BAD(octo_train_maxpool_f32_bwd(&bad, &in, fx, &out, fy, fd));
    BAD(octo_train_avgpool_f32_bwd(&bad, &in, &out, fy, fd));
    bad_out.c = 2;
    BAD(octo_train_maxpool_f32_bwd(&p, &in, fx, &bad_out, fy, fd));
    OK(octo_train_maxpool_f32_bwd(&p, &in, fx, &out, fy, fd));
    OK(octo_train_avgpool_f32_bwd(&p, &in, &out, fy, fd));

    octo_train_q8_t qx = {sx, 0.01f}, qy = {sy, 0.03f}, q0 = {sx, 0.0f};
    octo_train_q32_t y = {acc, 0.0f};
    OK(octo_train_maxpool_s8_fwd(&p, &in, &qx, &out, &qy));
    BAD(octo_train_maxpool_s8_fwd(&p, &in, &q0, &out, &qy));
    OK(octo_train_maxpool_s8_bwd(&p, &in, &qx, &out, &qy, &y));
    BAD(octo_train_maxpool_s8_bwd(&bad, &in, &qx, &out, &qy, &y));
    OK(octo_train_avgpool_s8_fwd(&p, &in, &qx, &out, &y));
    BAD(octo_train_avgpool_s8_fwd(&bad, &in, &qx, &out, &y));
    OK(octo_train_avgpool_s8_bwd(&p, &in, &out, &qy, &y));
    BAD(octo_train_avgpool_s8_bwd(&p, &in, &out, &q0, &y));
    {
        /* a 16x16 window at stride 1 overlaps 256 windows per input: refused */
        const octo_train_pool_params_t wide = {1, 1, 0, 0, 16, 16};
        const octo_dims_t i16 = {1, 16, 16, 1}, o1 = {1, 1, 1, 1};
        BAD(octo_train_avgpool_s8_bwd(&wide, &i16, &o1, &qy, &y));
        OK(octo_train_avgpool_s8_fwd(&wide, &i16, &qx, &o1, &y));
    }

    OK(octo_train_act_f32_bwd(OCTO_TRAIN_ACT_RELU6, 10, fx, fy, fy)); /* in place */
    BAD(octo_train_act_f32_bwd(7, 10, fx, fy, fd));
    BAD(octo_train_act_f32_bwd(OCTO_TRAIN_ACT_RELU, -1, fx, fy, fd));
    BAD(octo_train_act_f32_bwd(OCTO_TRAIN_ACT_RELU, 10, NULL, fy, fd));
    OK(octo_train_act_s8_bwd(OCTO_TRAIN_ACT_RELU, 10, &qx, &qy, &qy));
    BAD(octo_train_act_s8_bwd(OCTO_TRAIN_ACT_RELU, 10, &q0, &qy, &qy));
    BAD(octo_train_act_s8_bwd(-1, 10, &qx, &qy, &qy));

    int32_t labels[3] = {0, 2, 1};
    float loss;
    OK(octo_train_softmax_xent_f32(3, 3, fx, labels, &loss, fd));
    OK(octo_train_softmax_xent_f32(3, 3, fx, labels, &loss, NULL));
    BAD(octo_train_softmax_xent_f32(3, 2, fx, labels, &loss, fd)); /* label 2 out of range */
    BAD(octo_train_softmax_xent_f32(0, 3, fx, labels, &loss, fd));
    BAD(octo_train_softmax_xent_f32(3, 3, fx, NULL, &loss, fd));
    BAD(octo_train_softmax_xent_f32(3, 3, fx, labels, NULL, fd));
    labels[1] = -1;
    BAD(octo_train_softmax_xent_s8(3, 3, &qx, labels, &loss, &qy));
    labels[1] = 2;
    OK(octo_train_softmax_xent_s8(3, 3, &qx, labels, &loss, &qy));
    OK(octo_train_softmax_xent_s8(3, 3, &qx, labels, &loss, NULL));
    BAD(octo_train_softmax_xent_s8(3, 3, &q0, labels, &loss, &qy));

    float per[3];
    octo_train_q8_t qd = {sw, 1.0f}, qnan = {sx, NAN}, qnull = {NULL, 1.0f};
    OK(octo_train_mse_f32(3, 3, fx, fy, &loss, per, fd));
    OK(octo_train_mse_f32(3, 3, fx, fy, &loss, NULL, NULL));
    BAD(octo_train_mse_f32(0, 3, fx, fy, &loss, per, fd));
    BAD(octo_train_mse_f32(3, 0, fx, fy, &loss, per, fd));
    BAD(octo_train_mse_f32(3, 3, NULL, fy, &loss, per, fd));
    BAD(octo_train_mse_f32(3, 3, fx, NULL, &loss, per, fd));
    BAD(octo_train_mse_f32(3, 3, fx, fy, NULL, per, fd));
    OK(octo_train_mse_s8(3, 3, &qx, &qy, &loss, per, &qd));
    OK(octo_train_mse_s8(3, 3, &qx, &qy, &loss, NULL, NULL));
    BAD(octo_train_mse_s8(3, 3, &q0, &qy, &loss, per, &qd));
    BAD(octo_train_mse_s8(3, 3, &qx, &qnan, &loss, per, &qd));
    BAD(octo_train_mse_s8(3, 3, &qx, &qnull, &loss, per, &qd));
    BAD(octo_train_mse_s8(-1, 3, &qx, &qy, &loss, per, &qd));
    BAD(octo_train_mse_s8(3, 3, &qx, &qy, NULL, per, &qd));
}

static void test_quant(void) {
    octo_train_q8_t q = {sx, 0.0f};
    octo_train_q32_t a = {acc, 1.0f}, a0 = {acc, 0.0f};
    octo_train_prng_t r;
    octo_train_prng_seed(&r, 1);
    OK(octo_train_quantize_s8(fx, 100, OCTO_TRAIN_ROUND_STOCHASTIC, &r, &q));
    OK(octo_train_quantize_s8(fx, 0, OCTO_TRAIN_ROUND_NEAREST, NULL, &q));
    BAD(octo_train_quantize_s8(fx, 100, OCTO_TRAIN_ROUND_STOCHASTIC, NULL, &q)); /* stochastic needs the PRNG */
    BAD(octo_train_quantize_s8(fx, 100, 2, &r, &q));
    BAD(octo_train_quantize_s8(NULL, 100, OCTO_TRAIN_ROUND_NEAREST, NULL, &q));
    BAD(octo_train_quantize_s8(fx, -1, OCTO_TRAIN_ROUND_NEAREST, NULL, &q));
    BAD(octo_train_quantize_s8(fx, 100, OCTO_TRAIN_ROUND_NEAREST, NULL, NULL));
    fx[5] = INFINITY;
    BAD(octo_train_quantize_s8(fx, 100, OCTO_TRAIN_ROUND_NEAREST, NULL, &q));
    fx[5] = 0.0f;
    BAD(octo_train_quantize_s8_range(fx, 100, 0.0f, OCTO_TRAIN_ROUND_NEAREST, NULL, &q));
    BAD(octo_train_quantize_s8_range(fx, 100, NAN, OCTO_TRAIN_ROUND_NEAREST, NULL, &q));
    OK(octo_train_quantize_s8_range(fx, 100, 1.0f, OCTO_TRAIN_ROUND_NEAREST, NULL, &q));
    OK(octo_train_requant_s8(&a, 100, OCTO_TRAIN_ROUND_NEAREST, NULL, &q));
    BAD(octo_train_requant_s8(&a0, 100, OCTO_TRAIN_ROUND_NEAREST, NULL, &q));
    BAD(octo_train_requant_s8(&a, 100, OCTO_TRAIN_ROUND_STOCHASTIC, NULL, &q));
    BAD(octo_train_requant_s8(NULL, 100, OCTO_TRAIN_ROUND_NEAREST, NULL, &q));
    BAD(octo_train_requant_s8_range(&a, 100, 0u, OCTO_TRAIN_ROUND_NEAREST, NULL, &q));
    BAD(octo_train_requant_s8_range(&a, 100, 0x80000001u, OCTO_TRAIN_ROUND_NEAREST, NULL, &q));
    OK(octo_train_requant_s8_range(&a, 100, 0x80000000u, OCTO_TRAIN_ROUND_NEAREST, NULL, &q));
    OK(octo_train_dequantize_s8(&q, 100, fy));
    BAD(octo_train_dequantize_s8(&q, 100, NULL));
    int32_t o, pad;
    BAD(octo_train_padding(5, 3, 1, 1, NULL, &pad));
    BAD(octo_train_padding(5, 3, 1, 1, &o, NULL));
    OK(octo_train_padding(5, 3, 1, 1, &o, &pad));
}

int main(void) {
    for (int i = 0; i < 4096; i++) { /* deterministic non-trivial data */
        fx[i] = (float)((i * 37) % 101 - 50) * 0.05f;
        fw[i] = (float)((i * 53) % 97 - 48) * 0.01f;
        fy[i] = (float)((i * 29) % 89 - 44) * 0.03f;
        sx[i] = (int8_t)((i * 37) % 255 - 127);
        sw[i] = (int8_t)((i * 53) % 255 - 127);
        sy[i] = (int8_t)((i * 29) % 255 - 127);
        acc[i] = (i * 7919) % 200001 - 100000;
    }
    for (int i = 0; i < 64; i++) {
        fb[i] = 0.1f * (float)(i % 7);
    }
    test_conv();
    test_fc();
    test_pool_act_loss();
    test_quant();
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail == 0 ? 0 : 1;
}
