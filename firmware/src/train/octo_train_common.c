/* octo_train_common.c - padding arithmetic, PRNG seeding and the deterministic
 * exp/log of the training kernels (plain IEEE float +, -, *, / and integer bit
 * manipulation, no libm: the same bits on every target). */
#include <string.h>

#include "octo_train_internal.h"

int octo_train_padding(int32_t in, int32_t k, int32_t stride, int same, int32_t *out, int32_t *pad_before) {
    if (out == NULL || pad_before == NULL || in < 1 || k < 1 || stride < 1) {
        return OCTO_E_ARG;
    }
    if (same) {
        const int32_t o = (in + stride - 1) / stride;
        const int32_t total = octo_tr_max((o - 1) * stride + k - in, 0);
        *out = o;
        *pad_before = total / 2;
    } else {
        if (in < k) {
            return OCTO_E_ARG;
        }
        *out = (in - k) / stride + 1;
        *pad_before = 0;
    }
    return OCTO_OK;
}

void octo_train_prng_seed(octo_train_prng_t *r, uint32_t seed) {
    uint32_t z = seed + 0x9E3779B9u;
    z ^= z >> 16;
    z *= 0x85EBCA6Bu;
    z ^= z >> 13;
    z *= 0xC2B2AE35u;
    z ^= z >> 16;
    r->state = z != 0u ? z : 0x6D2B79F5u;
}

static float bits_to_float(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t float_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

float octo_train_expf(float x) {
    if (!(x == x)) {
        return x;
    }
    if (x > 88.72f) {
        return bits_to_float(0x7F800000u); /* +inf */
    }
    if (x < -87.33f) {
        return 0.0f; /* below the smallest normal float */
    }
    /* x = k ln2 + r, |r| <= ln2 / 2; ln2 split so k * LN2_HI is exact (k < 2^8). */
    const float LOG2E = 1.44269504f;
    const float LN2_HI = 0.693145752f; /* 0x3F317200: 16 significant bits */
    const float LN2_LO = 1.42860677e-6f;
    const int32_t k = octo_tr_floor(x * LOG2E + 0.5f);
    const float kf = (float)k;
    const float r = (x - kf * LN2_HI) - kf * LN2_LO;
    /* e^r = sum r^i / i!, i <= 7 (truncation error < 6e-9 for |r| <= 0.347). */
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    /* times 2^k in two steps so k = -126..128 never forms a denormal or inf factor */
    const int32_t k1 = k / 2, k2 = k - k1;
    p *= bits_to_float((uint32_t)(k1 + 127) << 23);
    return p * bits_to_float((uint32_t)(k2 + 127) << 23);
}

float octo_train_logf(float x) {
    if (!(x > 0.0f)) {
        return x == 0.0f ? bits_to_float(0xFF800000u) : bits_to_float(0x7FC00000u); /* -inf, NaN */
    }
    if (x > FLT_MAX) {
        return x; /* +inf */
    }
    int32_t e = 0;
    if (x < FLT_MIN) {
        x *= 16777216.0f; /* denormal: scale by 2^24 */
        e = -24;
    }
    const uint32_t u = float_to_bits(x);
    e += (int32_t)(u >> 23) - 127;
    float m = bits_to_float((u & 0x007FFFFFu) | 0x3F800000u); /* [1, 2) */
    if (m > 1.41421356f) {
        m *= 0.5f;
        e += 1;
    }
    /* ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.1716 */
    const float s = (m - 1.0f) / (m + 1.0f);
    const float s2 = s * s;
    float t = 1.0f / 11.0f;
    t = t * s2 + 1.0f / 9.0f;
    t = t * s2 + 1.0f / 7.0f;
    t = t * s2 + 1.0f / 5.0f;
    t = t * s2 + 1.0f / 3.0f;
    t = t * s2 + 1.0f;
    const float lnm = 2.0f * s * t;
    const float ef = (float)e;
    return ef * 0.693145752f + (ef * 1.42860677e-6f + lnm);
}
