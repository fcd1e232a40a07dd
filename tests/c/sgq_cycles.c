/* sgq_cycles.c - bare-metal SGQ cost on a virtual MPS2 board (QEMU, -icount shift=0).
 *
 * Linked with firmware/boards/cortexm/startup_cortexm.c and firmware/ld/virtual-m*.ld;
 * tests/python/test_sgq.py builds it with arm-none-eabi-gcc -O2 and runs it under
 * qemu-system-arm -semihosting. For one payload of 16 digits-sized samples
 * [16,8,8,16] (ReLU features, and sparse signed gradients), at 2, 4 and 8 bits
 * with the default settings (G=4, 2-row bands), at 2 and 4 bits also with
 * clipped ranges (OCTO_SGQ_CLIP_ALPHA8), and at 2, 4 and 8 bits with the range
 * coder (params.entropy), it times octo_sgq_encode and
 * octo_sgq_decode with SysTick (25 MHz from a 1 GHz virtual clock: 1 tick = 40
 * instructions) and prints one line per setting over semihosting:
 *   "sgq <features|gradients> bits=<b> clip=<alpha8> rc=<0|1> len=<bytes> encode_ticks=<t> decode_ticks=<t> ok=<0|1>"
 * (ok = both calls returned OCTO_OK, no decoded value changed sign, 8 bits
 * decoded losslessly, a clipped payload is as long as the unclipped one, a
 * range-coded payload shorter than and decoded exactly as the fixed-width one;
 * rc = the encoder range-coded the payload), then
 * "sgq done", and exits 0 if every line was ok (semihosting SYS_EXIT_EXTENDED).
 */
#include <stdint.h>
#include <string.h>

#include "octo/octo_sgq.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

#define N 16
#define H 8
#define W 8
#define C 16
#define ELEMS (N * H * W * C)

#include "bare_semihost.h"

BARE_SEMIHOST_HOOKS("sgq")

static char *put_uint(char *p, uint32_t v) {
    char tmp[12];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0u);
    while (n > 0) {
        *p++ = tmp[--n];
    }
    return p;
}

static char *put_str(char *p, const char *s) {
    while (*s) {
        *p++ = *s++;
    }
    return p;
}

static int8_t g_q[ELEMS];
static int8_t g_out[ELEMS];
static int8_t g_ref[3][ELEMS]; /* the fixed-width payloads' decoded values, per bit width */
static uint8_t g_pay[OCTO_SGQ_MAX_LEN(N, H, W, C, 8, 4, 2, W)];
static uint32_t g_scratch[OCTO_SGQ_SCRATCH_LEN(C, 4) / 4u];

static uint32_t g_rng = 12345u;
static uint32_t next(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 17;
    g_rng ^= g_rng << 5;
    return g_rng;
}

static void fill(int gradients) {
    for (uint32_t i = 0; i < ELEMS; i++) {
        const uint32_t ch = i % C;
        const int32_t r = (int32_t)(next() & 0xFFu) - 128; /* -128..127 */
        const int32_t scale = 1 + (int32_t)(ch % 4u);      /* channels of different magnitude */
        int32_t v = r * scale / 4;
        if (gradients) {
            v = (next() & 3u) == 0u ? v : 0; /* one of four positions survives a 2x2 max-pool */
        } else {
            v = v < 0 ? 0 : v; /* ReLU */
        }
        g_q[i] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
    }
}

static uint32_t ticks_now(void) { return SYST_CVR; }

int main(void) {
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 0x5u; /* enable, processor clock, no interrupt */
    static const int32_t bits[] = {2, 4, 8};
    const octo_sgq_ctx_t ctx = {g_scratch, sizeof g_scratch};
    int all_ok = 1;
    size_t plain_len[3] = {0, 0, 0};
    for (int gradients = 0; gradients < 2; gradients++) {
        fill(gradients);
        for (int run = 0; run < 8; run++) { /* 2, 4, 8 bits; 2 and 4 bits clipped; 2, 4, 8 bits range-coded */
            const int b = run < 5 ? run % 3 : run - 5;
            const int32_t clip = run >= 3 && run < 5 ? OCTO_SGQ_CLIP_ALPHA8(bits[b]) : 0;
            const int32_t entropy = run >= 5;
            const octo_sgq_tensor_t t = {g_q, {N, H, W, C}, 0.01f};
            const octo_sgq_params_t p = {.bits = bits[b], .groups = 4, .stripe_h = 2, .stripe_w = W,
                                         .range_mode = gradients ? OCTO_SGQ_RANGE_SYMMETRIC : OCTO_SGQ_RANGE_AUTO,
                                         .clip = clip, .entropy = entropy};
            size_t len = 0;
            SYST_CVR = 0;
            const uint32_t t0 = ticks_now();
            int st = octo_sgq_encode(&t, &p, &ctx, g_pay, sizeof g_pay, &len);
            const uint32_t t1 = ticks_now();
            octo_sgq_info_t info;
            SYST_CVR = 0;
            const uint32_t t2 = ticks_now();
            const int st2 = octo_sgq_decode(g_pay, len, &ctx, g_out, sizeof g_out, &info);
            const uint32_t t3 = ticks_now();
            int ok = st == OCTO_OK && st2 == OCTO_OK && (clip == 0 || len == plain_len[b]) &&
                     (!info.entropy || (len < plain_len[b] && memcmp(g_out, g_ref[b], ELEMS) == 0));
            if (run < 3) {
                plain_len[b] = len;
                memcpy(g_ref[b], g_out, ELEMS);
            }
            for (uint32_t i = 0; ok && i < ELEMS; i++) {
                /* signs never flip and zeros stay zero at 8 bits (lossless) */
                ok = (g_out[i] == 0 || (g_out[i] > 0) == (g_q[i] > 0)) && (bits[b] != 8 || g_out[i] == g_q[i]);
            }
            all_ok &= ok;
            char line[160];
            char *q = put_str(line, gradients ? "sgq gradients bits=" : "sgq features bits=");
            q = put_uint(q, (uint32_t)bits[b]);
            q = put_str(q, " clip=");
            q = put_uint(q, (uint32_t)clip);
            q = put_str(q, info.entropy ? " rc=1" : " rc=0");
            q = put_str(q, " len=");
            q = put_uint(q, (uint32_t)len);
            q = put_str(q, " encode_ticks=");
            q = put_uint(q, (t0 - t1) & 0xFFFFFFu);
            q = put_str(q, " decode_ticks=");
            q = put_uint(q, (t2 - t3) & 0xFFFFFFu);
            q = put_str(q, ok ? " ok=1\n" : " ok=0\n");
            *q = '\0';
            say(line);
        }
    }
    say("sgq done\n");
    board_exit(all_ok ? 0 : 1);
    return 0;
}
