/* octo_train_gemm_s8.c - the blocked INT8 kernels the training layers share
 * (declared in octo_train_internal.h): octo_tr_blk4_s8 and octo_tr_blk4e_s8
 * (blocks of four outputs against segments of int8 activations or of int16
 * pairs: the CONV_2D forward and input gradient) and octo_tr_rank8_s8 (the
 * rank-8 weight-gradient update: CONV_2D and FULLY_CONNECTED). Thumb-2
 * assembly on DSP cores, the same sums in portable C with the octo_dsp.h
 * primitives elsewhere: exact int32 sums of the same int8 products, so both
 * give the same bits. */
#include <string.h>

#include "octo_train_internal.h"

/* ---------------------------------------------------------------------------------------------- */
/* The blocked kernels                                                                            */
/* ---------------------------------------------------------------------------------------------- */

#if OCTO_HAVE_DSP && defined(__thumb2__)
/* Thumb-2: LDM brings four expanded weight words per instruction, so a group
 * of four activations x four outputs costs LDR + 2 SXTB16 + 2 LDM + 8 SMLAD. */
#define OCTO_TR_B4_GROUP                                                                                               \
    "ldr r7, [r4], #4\n\t"                                                                                             \
    "sxtb16 r8, r7, ror #8\n\t"                                                                                        \
    "sxtb16 r7, r7\n\t"                                                                                                \
    "ldm r5!, {r9, r10, r11, r12}\n\t"                                                                                 \
    "smlad r0, r7, r9, r0\n\t"                                                                                         \
    "smlad r0, r8, r10, r0\n\t"                                                                                        \
    "smlad r1, r7, r11, r1\n\t"                                                                                        \
    "smlad r1, r8, r12, r1\n\t"                                                                                        \
    "ldm r5!, {r9, r10, r11, r12}\n\t"                                                                                 \
    "smlad r2, r7, r9, r2\n\t"                                                                                         \
    "smlad r2, r8, r10, r2\n\t"                                                                                        \
    "smlad r3, r7, r11, r3\n\t"                                                                                        \
    "smlad r3, r8, r12, r3\n\t"

/* job (r0): seg 0, nseg 4, w 8, wstride 12, nblk 16, init 20, out 24, act 28, hi 32,
 * copied to the frame: [sp] end of the segment list, [sp+4] the block's weights,
 * [sp+8] wstride, [sp+12] blocks left, [sp+16] init, [sp+20] out, [sp+24] the
 * segment list, [sp+28] act, [sp+32] hi. Registers in the loop: r0-r3 the sums,
 * r4 activations, r5 weights, r6 end of the run, r7/r8 unpacked activations,
 * r9-r12 weights, lr the segment list. */
#define OCTO_TR_B4_RELU(r) "asr r5, " r ", #31\n\tbic " r ", " r ", r5\n\t"
#define OCTO_TR_B4_MIN(r) "cmp " r ", r5\n\tit gt\n\tmovgt " r ", r5\n\t"

/* The same with int16 activation pairs (a run of n groups is 8n bytes: LDRD instead of LDR + 2 SXTB16). */
#define OCTO_TR_B4E_GROUP                                                                                              \
    "ldrd r7, r8, [r4], #8\n\t"                                                                                        \
    "ldm r5!, {r9, r10, r11, r12}\n\t"                                                                                 \
    "smlad r0, r7, r9, r0\n\t"                                                                                         \
    "smlad r0, r8, r10, r0\n\t"                                                                                        \
    "smlad r1, r7, r11, r1\n\t"                                                                                        \
    "smlad r1, r8, r12, r1\n\t"                                                                                        \
    "ldm r5!, {r9, r10, r11, r12}\n\t"                                                                                 \
    "smlad r2, r7, r9, r2\n\t"                                                                                         \
    "smlad r2, r8, r10, r2\n\t"                                                                                        \
    "smlad r3, r7, r11, r3\n\t"                                                                                        \
    "smlad r3, r8, r12, r3\n\t"

#define OCTO_TR_BLK4_FN(NAME, L, GROUP, SH)                                                                           \
    ".section .text." NAME ",\"ax\",%progbits\n\t"                                                                     \
    ".syntax unified\n\t"                                                                                              \
    ".thumb\n\t"                                                                                                       \
    ".p2align 2\n\t"                                                                                                   \
    ".global " NAME "\n\t"                                                                                             \
    ".type " NAME ", %function\n\t"                                                                                    \
    ".thumb_func\n"                                                                                                    \
    "" NAME ":\n\t"                                                                                                    \
    "push {r4-r11, lr}\n\t"                                                                                            \
    "sub sp, sp, #36\n\t"                                                                                              \
    "ldm r0, {r1-r7}\n\t"                                                                                              \
    "add r2, r2, r2, lsl #1\n\t"                                                                                       \
    "add r2, r1, r2, lsl #2\n\t"                                                                                       \
    "stm sp, {r2-r7}\n\t"                                                                                              \
    "str r1, [sp, #24]\n\t"                                                                                            \
    "ldr r1, [r0, #28]\n\t"                                                                                            \
    "ldr r2, [r0, #32]\n\t"                                                                                            \
    "strd r1, r2, [sp, #28]\n"                                                                                         \
    "." L "_blk:\n\t"                                                                                                  \
    "ldr r4, [sp, #16]\n\t"                                                                                            \
    "cbz r4, ." L "_zero\n\t"                                                                                          \
    "ldm r4!, {r0-r3}\n\t"                                                                                             \
    "str r4, [sp, #16]\n\t"                                                                                            \
    "b ." L "_segs\n"                                                                                                  \
    "." L "_zero:\n\t"                                                                                                 \
    "movs r0, #0\n\t"                                                                                                  \
    "movs r1, #0\n\t"                                                                                                  \
    "movs r2, #0\n\t"                                                                                                  \
    "movs r3, #0\n"                                                                                                    \
    "." L "_segs:\n\t"                                                                                                 \
    "ldr lr, [sp, #24]\n\t"                                                                                            \
    "ldr r7, [sp, #0]\n\t"                                                                                             \
    "cmp lr, r7\n\t"                                                                                                   \
    "beq ." L "_store\n"                                                                                               \
    "." L "_seg:\n\t"                                                                                                  \
    "ldm lr!, {r4, r5, r6}\n\t"                                                                                        \
    "ldr r7, [sp, #4]\n\t"                                                                                             \
    "add r5, r5, r7\n\t"                                                                                               \
    "lsls r7, r6, #31\n\t"                                                                                             \
    "add r6, r4, r6, lsl #" SH "\n\t"                                                                                  \
    "bne ." L "_odd\n"                                                                                                 \
    "." L "_loop:\n\t"                                                                                                 \
    GROUP                                                                                                              \
    "." L "_odd:\n\t"                                                                                                  \
    GROUP                                                                                                              \
    "cmp r4, r6\n\t"                                                                                                   \
    "bne ." L "_loop\n\t"                                                                                              \
    "ldr r7, [sp, #0]\n\t"                                                                                             \
    "cmp lr, r7\n\t"                                                                                                   \
    "bne ." L "_seg\n"                                                                                                 \
    "." L "_store:\n\t"                                                                                                \
    "ldr r4, [sp, #28]\n\t"                                                                                            \
    "cbz r4, ." L "_put\n\t"                                                                                           \
    OCTO_TR_B4_RELU("r0") OCTO_TR_B4_RELU("r1") OCTO_TR_B4_RELU("r2") OCTO_TR_B4_RELU("r3")                            \
    "cmp r4, #2\n\t"                                                                                                   \
    "bne ." L "_put\n\t"                                                                                               \
    "ldr r5, [sp, #32]\n\t"                                                                                            \
    OCTO_TR_B4_MIN("r0") OCTO_TR_B4_MIN("r1") OCTO_TR_B4_MIN("r2") OCTO_TR_B4_MIN("r3")                                \
    "." L "_put:\n\t"                                                                                                  \
    "ldr r4, [sp, #20]\n\t"                                                                                            \
    "stm r4!, {r0-r3}\n\t"                                                                                             \
    "str r4, [sp, #20]\n\t"                                                                                            \
    "ldrd r5, r6, [sp, #4]\n\t"                                                                                        \
    "add r5, r5, r6\n\t"                                                                                               \
    "str r5, [sp, #4]\n\t"                                                                                             \
    "ldr r5, [sp, #12]\n\t"                                                                                            \
    "subs r5, r5, #1\n\t"                                                                                              \
    "str r5, [sp, #12]\n\t"                                                                                            \
    "bne ." L "_blk\n\t"                                                                                               \
    "add sp, sp, #36\n\t"                                                                                              \
    "pop {r4-r11, pc}\n\t"                                                                                             \
    ".size " NAME ", .-" NAME "\n\t"                                                                                   \
    ".text"

__asm__(OCTO_TR_BLK4_FN("octo_tr_blk4_s8", "Lb4", OCTO_TR_B4_GROUP, "2"));
__asm__(OCTO_TR_BLK4_FN("octo_tr_blk4e_s8", "Lb4e", OCTO_TR_B4E_GROUP, "3"));

/* job (r0) offsets: pe 0, de 4, dw 8, nk 12, no 16. Registers: r0-r3 the
 * four dy pairs of output o, r4-r7 four patch pairs, r8/r9 dw[o][k], dw[o][k+1].
 * Frame: [sp] outputs left, [sp+4] pe, [sp+8] pe end, [sp+12] nk. Per row: one
 * k if nk is odd, two if bit 1 of nk is set, then four per iteration. */
#define OCTO_TR_R8_K(acc)                                                                                              \
    "ldm r10!, {r4-r7}\n\t"                                                                                            \
    "smlad " acc ", r0, r4, " acc "\n\t"                                                                               \
    "smlad " acc ", r1, r5, " acc "\n\t"                                                                               \
    "smlad " acc ", r2, r6, " acc "\n\t"                                                                               \
    "smlad " acc ", r3, r7, " acc "\n\t"
#define OCTO_TR_R8_PAIR "ldrd r8, r9, [r11]\n\t" OCTO_TR_R8_K("r8") OCTO_TR_R8_K("r9") "strd r8, r9, [r11], #8\n\t"

__asm__(".section .text.octo_tr_rank8_s8,\"ax\",%progbits\n\t"
        ".syntax unified\n\t"
        ".thumb\n\t"
        ".p2align 2\n\t"
        ".global octo_tr_rank8_s8\n\t"
        ".type octo_tr_rank8_s8, %function\n\t"
        ".thumb_func\n"
        "octo_tr_rank8_s8:\n\t"
        "push {r4-r11, lr}\n\t"
        "sub sp, sp, #20\n\t"
        "ldr r10, [r0, #0]\n\t"
        "ldr lr, [r0, #4]\n\t"
        "ldr r11, [r0, #8]\n\t"
        "ldr r12, [r0, #12]\n\t"
        "ldr r1, [r0, #16]\n\t"
        "str r1, [sp, #0]\n\t"
        "str r10, [sp, #4]\n\t"
        "str r12, [sp, #12]\n\t"
        "add r12, r10, r12, lsl #4\n\t"
        "str r12, [sp, #8]\n"
        ".Lr8_row:\n\t"
        "ldm lr!, {r0-r3}\n\t"
        "ldr r10, [sp, #4]\n\t"
        "ldr r12, [sp, #8]\n\t"
        "ldr r8, [sp, #12]\n\t"
        "lsls r8, r8, #31\n\t" /* N = bit 0 of nk, C = bit 1 */
        "bpl .Lr8_two\n\t"
        "ldr r8, [r11]\n\t"
        OCTO_TR_R8_K("r8")
        "str r8, [r11], #4\n"
        ".Lr8_two:\n\t"
        "bcc .Lr8_four\n\t"
        OCTO_TR_R8_PAIR
        ".Lr8_four:\n\t"
        "cmp r10, r12\n\t"
        "beq .Lr8_next\n"
        ".Lr8_loop:\n\t"
        OCTO_TR_R8_PAIR
        OCTO_TR_R8_PAIR
        "cmp r10, r12\n\t"
        "bne .Lr8_loop\n"
        ".Lr8_next:\n\t"
        "ldr r8, [sp, #0]\n\t"
        "subs r8, r8, #1\n\t"
        "str r8, [sp, #0]\n\t"
        "bne .Lr8_row\n\t"
        "add sp, sp, #20\n\t"
        "pop {r4-r11, pc}\n\t"
        ".size octo_tr_rank8_s8, .-octo_tr_rank8_s8\n\t"
        ".text");

#else /* portable: the same sums with the octo_dsp.h primitives */

void octo_tr_blk4_s8(const octo_tr_blk4_t *job) {
    const uint8_t *wb = (const uint8_t *)job->w;
    for (int32_t blk = 0; blk < job->nblk; blk++, wb += job->wstride) {
        int32_t acc[4] = {0, 0, 0, 0};
        if (job->init != NULL) {
            memcpy(acc, &job->init[4 * blk], sizeof acc);
        }
        for (int32_t s = 0; s < job->nseg; s++) {
            const octo_tr_seg_t *sg = &job->seg[s];
            const uint32_t *w = (const uint32_t *)(const void *)(wb + sg->woff);
            for (int32_t g = 0; g < sg->n; g++, w += 8) {
                const uint32_t v = octo_read_u32(&sg->a[4 * g]);
                const uint32_t lo = octo_sxtb16(v), hi = octo_sxtb16_ror8(v);
                for (int32_t j = 0; j < 4; j++) {
                    acc[j] = octo_smlad(lo, w[2 * j], acc[j]);
                    acc[j] = octo_smlad(hi, w[2 * j + 1], acc[j]);
                }
            }
        }
        for (int32_t j = 0; j < 4; j++) {
            acc[j] = octo_tr_act_s32(acc[j], job->act, job->hi);
        }
        memcpy(&job->out[4 * blk], acc, sizeof acc);
    }
}

/* The same with int16 activation pairs: segment a holds 2n words (a0, a2), (a1, a3) per group. */
void octo_tr_blk4e_s8(const octo_tr_blk4_t *job) {
    const uint8_t *wb = (const uint8_t *)job->w;
    for (int32_t blk = 0; blk < job->nblk; blk++, wb += job->wstride) {
        int32_t acc[4] = {0, 0, 0, 0};
        if (job->init != NULL) {
            memcpy(acc, &job->init[4 * blk], sizeof acc);
        }
        for (int32_t s = 0; s < job->nseg; s++) {
            const octo_tr_seg_t *sg = &job->seg[s];
            const uint32_t *w = (const uint32_t *)(const void *)(wb + sg->woff);
            for (int32_t g = 0; g < sg->n; g++, w += 8) {
                const uint32_t lo = octo_read_u32(&sg->a[8 * g]), hi = octo_read_u32(&sg->a[8 * g + 4]);
                for (int32_t j = 0; j < 4; j++) {
                    acc[j] = octo_smlad(lo, w[2 * j], acc[j]);
                    acc[j] = octo_smlad(hi, w[2 * j + 1], acc[j]);
                }
            }
        }
        for (int32_t j = 0; j < 4; j++) {
            acc[j] = octo_tr_act_s32(acc[j], job->act, job->hi);
        }
        memcpy(&job->out[4 * blk], acc, sizeof acc);
    }
}

void octo_tr_rank8_s8(const octo_tr_rank8_t *job) {
    for (int32_t o = 0; o < job->no; o++) {
        const uint32_t *d = &job->de[4 * o];
        int32_t *row = &job->dw[o * job->nk];
        for (int32_t k = 0; k < job->nk; k++) {
            const uint32_t *pk = &job->pe[4 * k];
            int32_t acc = row[k];
            for (int32_t i = 0; i < 4; i++) {
                acc = octo_smlad(d[i], pk[i], acc);
            }
            row[k] = acc;
        }
    }
}
#endif
