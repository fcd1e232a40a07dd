/*
 * octo_dsp.h - the few SIMD primitives the fast kernels use.
 *
 * On cores with the DSP extension (__ARM_FEATURE_DSP: Cortex-M4/M7/M33/M55)
 * they are single instructions (SXTB16, SMLAD); elsewhere (Cortex-M3, the
 * host) plain C computes exactly the same values, so both paths are
 * bit-identical by construction and tests compare them directly.
 */
#ifndef OCTO_DSP_H
#define OCTO_DSP_H

#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Unaligned 32-bit load (a single LDR on Armv7-M, which allows unaligned LDR). */
static inline uint32_t octo_read_u32(const void *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Helium (M-profile vector extension, Cortex-M55/M85): the kernels' MVE paths (arm_mve.h intrinsics). Packed
 * conv/FC weights then come in the MVE layout the converter emits under the same condition (octo_conv_s8.h). */
#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#define OCTO_HAVE_MVE 1
#include <arm_mve.h>
#else
#define OCTO_HAVE_MVE 0
#endif

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define OCTO_HAVE_DSP 1

/* bytes 0 and 2, sign-extended to the two halfwords */
static inline uint32_t octo_sxtb16(uint32_t x) {
    uint32_t r;
    __asm("sxtb16 %0, %1" : "=r"(r) : "r"(x));
    return r;
}

/* bytes 1 and 3, sign-extended to the two halfwords */
static inline uint32_t octo_sxtb16_ror8(uint32_t x) {
    uint32_t r;
    __asm("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

/* acc + lo(x)*lo(y) + hi(x)*hi(y), halfwords signed */
static inline int32_t octo_smlad(uint32_t x, uint32_t y, int32_t acc) {
    int32_t r;
    __asm("smlad %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(y), "r"(acc));
    return r;
}

/* acc + lo(x)*lo(y), halfwords signed */
static inline int32_t octo_smlabb(uint32_t x, uint32_t y, int32_t acc) {
    int32_t r;
    __asm("smlabb %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(y), "r"(acc));
    return r;
}

/* lanewise x + y, halfwords, wrapping */
static inline uint32_t octo_sadd16(uint32_t x, uint32_t y) {
    uint32_t r;
    __asm("sadd16 %0, %1, %2" : "=r"(r) : "r"(x), "r"(y) : "cc");
    return r;
}

/* Four int32 values saturated to int8 and packed into one word (v0 in the low
 * byte), each byte then clamped to [lo4, hi4] bytewise (lo4/hi4: the int8
 * bounds repeated four times, lo <= hi). SSAT, BFI, SSUB8 + SEL. */
static inline uint32_t octo_pack4_clamp(int32_t v0, int32_t v1, int32_t v2, int32_t v3, uint32_t lo4, uint32_t hi4) {
    uint32_t r, t;
    __asm("ssat %[r], #8, %[v0]\n\t"
          "ssat %[v1], #8, %[v1]\n\t"
          "ssat %[v2], #8, %[v2]\n\t"
          "ssat %[v3], #8, %[v3]\n\t"
          "bfi %[r], %[v1], #8, #8\n\t"
          "bfi %[r], %[v2], #16, #8\n\t"
          "bfi %[r], %[v3], #24, #8\n\t"
          "ssub8 %[t], %[r], %[lo]\n\t"
          "sel %[r], %[r], %[lo]\n\t"
          "ssub8 %[t], %[r], %[hi]\n\t"
          "sel %[r], %[hi], %[r]"
          : [r] "=&r"(r), [t] "=&r"(t), [v1] "+r"(v1), [v2] "+r"(v2), [v3] "+r"(v3)
          : [v0] "r"(v0), [lo] "r"(lo4), [hi] "r"(hi4)
          : "cc");
    (void)t;
    return r;
}

/* acc + hi(x)*hi(y), halfwords signed */
static inline int32_t octo_smlatt(uint32_t x, uint32_t y, int32_t acc) {
    int32_t r;
    __asm("smlatt %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(y), "r"(acc));
    return r;
}

#else
#define OCTO_HAVE_DSP 0

static inline uint32_t octo_pack16(int32_t lo, int32_t hi) {
    return ((uint32_t)(uint16_t)(int16_t)lo) | ((uint32_t)(uint16_t)(int16_t)hi << 16);
}

static inline uint32_t octo_sxtb16(uint32_t x) {
    return octo_pack16((int8_t)(uint8_t)x, (int8_t)(uint8_t)(x >> 16));
}

static inline uint32_t octo_sxtb16_ror8(uint32_t x) {
    return octo_pack16((int8_t)(uint8_t)(x >> 8), (int8_t)(uint8_t)(x >> 24));
}

static inline int32_t octo_smlad(uint32_t x, uint32_t y, int32_t acc) {
    int32_t p = (int32_t)(int16_t)(uint16_t)x * (int32_t)(int16_t)(uint16_t)y +
                (int32_t)(int16_t)(uint16_t)(x >> 16) * (int32_t)(int16_t)(uint16_t)(y >> 16);
    return (int32_t)((uint32_t)acc + (uint32_t)p);
}

static inline int32_t octo_smlabb(uint32_t x, uint32_t y, int32_t acc) {
    return acc + (int32_t)(int16_t)(uint16_t)x * (int32_t)(int16_t)(uint16_t)y;
}

static inline uint32_t octo_sadd16(uint32_t x, uint32_t y) {
    return ((x + y) & 0xffffu) | (((x >> 16) + (y >> 16)) << 16);
}

static inline uint32_t octo_clamp_byte(int32_t v, uint32_t lo4, uint32_t hi4) {
    const int32_t lo = (int8_t)(uint8_t)lo4, hi = (int8_t)(uint8_t)hi4;
    return (uint8_t)(int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

static inline uint32_t octo_pack4_clamp(int32_t v0, int32_t v1, int32_t v2, int32_t v3, uint32_t lo4, uint32_t hi4) {
    return octo_clamp_byte(v0, lo4, hi4) | (octo_clamp_byte(v1, lo4, hi4) << 8) |
           (octo_clamp_byte(v2, lo4, hi4) << 16) | (octo_clamp_byte(v3, lo4, hi4) << 24);
}

static inline int32_t octo_smlatt(uint32_t x, uint32_t y, int32_t acc) {
    return acc + (int32_t)(int16_t)(uint16_t)(x >> 16) * (int32_t)(int16_t)(uint16_t)(y >> 16);
}
#endif

#ifdef __cplusplus
}
#endif

#endif /* OCTO_DSP_H */
