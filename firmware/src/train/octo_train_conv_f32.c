/* octo_train_conv_f32.c - CONV_2D, FP32: forward, input gradient, weight gradient. */
#include <string.h>

#include "octo_train_internal.h"

#define OCB 4 /* output channels per block in the forward pass: one input load feeds four MACs */

#if defined(__ARM_FP) && (__ARM_FP & 4)
/* acc[j] += sum_i x[i] * wj[i] for i < 4*groups, j = 0..3, on the single-precision FPU:
 * VLDM brings four floats per instruction with write-back, so 4 inputs x 4 channels
 * cost 5 VLDM + 16 VMLA. VMLA is multiply then add, each rounded (not fused), in the
 * same per-channel order as the C loop below: the results are bit-identical. */
static void dot4_f32(const float *x, const float *w0, const float *w1, const float *w2, const float *w3,
                     int32_t groups, float acc[OCB]) {
    __asm volatile(
        "vldmia %[acc], {s16-s19}\n\t"
        "1:\n\t"
        "vldmia %[x]!, {s0-s3}\n\t"
        "vldmia %[w0]!, {s4-s7}\n\t"
        "vmla.f32 s16, s0, s4\n\t"
        "vmla.f32 s16, s1, s5\n\t"
        "vmla.f32 s16, s2, s6\n\t"
        "vmla.f32 s16, s3, s7\n\t"
        "vldmia %[w1]!, {s4-s7}\n\t"
        "vmla.f32 s17, s0, s4\n\t"
        "vmla.f32 s17, s1, s5\n\t"
        "vmla.f32 s17, s2, s6\n\t"
        "vmla.f32 s17, s3, s7\n\t"
        "vldmia %[w2]!, {s4-s7}\n\t"
        "vmla.f32 s18, s0, s4\n\t"
        "vmla.f32 s18, s1, s5\n\t"
        "vmla.f32 s18, s2, s6\n\t"
        "vmla.f32 s18, s3, s7\n\t"
        "vldmia %[w3]!, {s4-s7}\n\t"
        "vmla.f32 s19, s0, s4\n\t"
        "vmla.f32 s19, s1, s5\n\t"
        "vmla.f32 s19, s2, s6\n\t"
        "vmla.f32 s19, s3, s7\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        "vstmia %[acc], {s16-s19}\n\t"
        : [x] "+r"(x), [w0] "+r"(w0), [w1] "+r"(w1), [w2] "+r"(w2), [w3] "+r"(w3), [n] "+r"(groups)
        : [acc] "r"(acc)
        : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s16", "s17", "s18", "s19", "cc", "memory");
}
#define OCTO_TR_F32_ASM 1
#else
#define OCTO_TR_F32_ASM 0
#endif

int octo_train_conv_f32_fwd(const octo_train_conv_params_t *p, const octo_dims_t *in_dims, const float *x,
                            const octo_dims_t *w_dims, const float *w, const float *bias, const octo_dims_t *out_dims,
                            float *y) {
    if (x == NULL || w == NULL || y == NULL || !octo_tr_conv_ok(p, in_dims, w_dims, out_dims, 0)) {
        return OCTO_E_ARG;
    }
    const int32_t H = in_dims->h, W = in_dims->w, C = in_dims->c;
    const int32_t OH = out_dims->h, OW = out_dims->w, OC = out_dims->c;
    const int32_t KH = w_dims->h, KW = w_dims->w;
    const int32_t wstride = KH * KW * C; /* floats per output channel */
    for (int32_t b = 0; b < in_dims->n; b++) {
        for (int32_t oy = 0; oy < OH; oy++) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            int32_t ky0, ky1;
            octo_tr_taps(iy0, KH, H, &ky0, &ky1);
            for (int32_t ox = 0; ox < OW; ox++) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                int32_t kx0, kx1;
                octo_tr_taps(ix0, KW, W, &kx0, &kx1);
                float *yo = &y[((b * OH + oy) * OW + ox) * OC];
                for (int32_t oc = 0; oc < OC; oc += OCB) {
                    const int32_t nb = octo_tr_min(OCB, OC - oc);
                    float acc[OCB];
                    const float *wr[OCB];
                    for (int32_t j = 0; j < OCB; j++) {
                        acc[j] = (bias != NULL && j < nb) ? bias[oc + j] : 0.0f;
                        wr[j] = &w[(oc + (j < nb ? j : 0)) * wstride];
                    }
                    for (int32_t ky = ky0; ky < ky1; ky++) {
                        for (int32_t kx = kx0; kx < kx1; kx++) {
                            const float *xp = &x[((b * H + iy0 + ky) * W + ix0 + kx) * C];
                            const int32_t t = (ky * KW + kx) * C;
                            if (nb == OCB) {
                                const float *w0 = wr[0] + t, *w1 = wr[1] + t, *w2 = wr[2] + t, *w3 = wr[3] + t;
#if OCTO_TR_F32_ASM
                                if ((C & 3) == 0) {
                                    dot4_f32(xp, w0, w1, w2, w3, C >> 2, acc);
                                    continue;
                                }
#endif
                                for (int32_t ic = 0; ic < C; ic++) {
                                    const float xv = xp[ic];
                                    acc[0] += xv * w0[ic];
                                    acc[1] += xv * w1[ic];
                                    acc[2] += xv * w2[ic];
                                    acc[3] += xv * w3[ic];
                                }
                            } else {
                                for (int32_t j = 0; j < nb; j++) {
                                    const float *wj = wr[j] + t;
                                    for (int32_t ic = 0; ic < C; ic++) {
                                        acc[j] += xp[ic] * wj[ic];
                                    }
                                }
                            }
                        }
                    }
                    for (int32_t j = 0; j < nb; j++) {
                        yo[oc + j] = octo_tr_act_f32(acc[j], p->act);
                    }
                }
            }
        }
    }
    return OCTO_OK;
}

/* dx[b,iy,ix,:] += dy[b,oy,ox,oc] * w[oc,ky,kx,:] over every output position and tap (scatter). */
int octo_train_conv_f32_bwd_input(const octo_train_conv_params_t *p, const octo_dims_t *in_dims,
                                  const octo_dims_t *w_dims, const float *w, const octo_dims_t *out_dims,
                                  const float *dy, float *dx) {
    if (w == NULL || dy == NULL || dx == NULL || !octo_tr_conv_ok(p, in_dims, w_dims, out_dims, 0)) {
        return OCTO_E_ARG;
    }
    const int32_t H = in_dims->h, W = in_dims->w, C = in_dims->c;
    const int32_t OH = out_dims->h, OW = out_dims->w, OC = out_dims->c;
    const int32_t KH = w_dims->h, KW = w_dims->w;
    memset(dx, 0, (size_t)octo_tr_count(in_dims) * sizeof(float));
    for (int32_t b = 0; b < in_dims->n; b++) {
        for (int32_t oy = 0; oy < OH; oy++) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            int32_t ky0, ky1;
            octo_tr_taps(iy0, KH, H, &ky0, &ky1);
            for (int32_t ox = 0; ox < OW; ox++) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                int32_t kx0, kx1;
                octo_tr_taps(ix0, KW, W, &kx0, &kx1);
                const float *g = &dy[((b * OH + oy) * OW + ox) * OC];
                for (int32_t ky = ky0; ky < ky1; ky++) {
                    for (int32_t kx = kx0; kx < kx1; kx++) {
                        float *xp = &dx[((b * H + iy0 + ky) * W + ix0 + kx) * C];
                        for (int32_t oc = 0; oc < OC; oc++) {
                            const float gv = g[oc];
                            const float *wp = &w[((oc * KH + ky) * KW + kx) * C];
                            for (int32_t ic = 0; ic < C; ic++) {
                                xp[ic] += gv * wp[ic];
                            }
                        }
                    }
                }
            }
        }
    }
    return OCTO_OK;
}

/* dw[oc,ky,kx,:] += dy[b,oy,ox,oc] * x[b,iy,ix,:]; db[oc] += dy[b,oy,ox,oc]. */
int octo_train_conv_f32_bwd_weight(const octo_train_conv_params_t *p, const octo_dims_t *in_dims, const float *x,
                                   const octo_dims_t *out_dims, const float *dy, const octo_dims_t *w_dims, float *dw,
                                   float *db) {
    if (x == NULL || dy == NULL || dw == NULL || !octo_tr_conv_ok(p, in_dims, w_dims, out_dims, 0)) {
        return OCTO_E_ARG;
    }
    const int32_t H = in_dims->h, W = in_dims->w, C = in_dims->c;
    const int32_t OH = out_dims->h, OW = out_dims->w, OC = out_dims->c;
    const int32_t KH = w_dims->h, KW = w_dims->w;
    memset(dw, 0, (size_t)octo_tr_count(w_dims) * sizeof(float));
    if (db != NULL) {
        memset(db, 0, (size_t)OC * sizeof(float));
    }
    for (int32_t b = 0; b < in_dims->n; b++) {
        for (int32_t oy = 0; oy < OH; oy++) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            int32_t ky0, ky1;
            octo_tr_taps(iy0, KH, H, &ky0, &ky1);
            for (int32_t ox = 0; ox < OW; ox++) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                int32_t kx0, kx1;
                octo_tr_taps(ix0, KW, W, &kx0, &kx1);
                const float *g = &dy[((b * OH + oy) * OW + ox) * OC];
                for (int32_t oc = 0; oc < OC; oc++) {
                    const float gv = g[oc];
                    if (db != NULL) {
                        db[oc] += gv;
                    }
                    for (int32_t ky = ky0; ky < ky1; ky++) {
                        for (int32_t kx = kx0; kx < kx1; kx++) {
                            const float *xp = &x[((b * H + iy0 + ky) * W + ix0 + kx) * C];
                            float *wp = &dw[((oc * KH + ky) * KW + kx) * C];
                            for (int32_t ic = 0; ic < C; ic++) {
                                wp[ic] += gv * xp[ic];
                            }
                        }
                    }
                }
            }
        }
    }
    return OCTO_OK;
}
