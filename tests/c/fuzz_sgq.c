/* fuzz_sgq.c - seeded mutational fuzzing of the SGQ decoder (and the encoder's buffer contract).
 *
 *   fuzz_sgq [iterations [seed]]     (defaults: 20000, 1)
 *
 * Each iteration encodes a random int8 tensor with random settings (shapes up
 * to 3x9x9x20, every bit width, range mode, grouping and rounding), checks the
 * clean payload decodes (8-bit ASYMMETRIC/UNSIGNED losslessly, and every value
 * inside its stripe range), then decodes MUTANTS damaged copies of it: bit
 * flips, byte sets, truncation, appended bytes, header field edits (magic,
 * version, mode byte, groups, dims, stripes, scale), map/range/code edits,
 * splices with another payload and pure garbage. Every mutant is copied into
 * an exactly sized heap block and decoded into an exactly sized output and
 * scratch block, so ASan reports any out-of-bounds access. Checked:
 *   - the verdict is OCTO_OK or a documented code, and the one the damage
 *     forces where it is forced (magic -> E_MAGIC, version -> E_VERSION,
 *     truncation -> E_SHORT/E_LENGTH, appended bytes -> E_LENGTH);
 *   - an accepted mutant decodes twice to the same values, within its ranges;
 *   - a range-coded clean payload is shorter than, and decodes exactly as, the
 *     fixed-width payload of the same tensor and settings.
 * Before the loop, API contract checks: NULL arguments, misaligned or short
 * scratch, short out/dst buffers, invalid parameters.
 * Prints failures, then one line "fuzz: ..." with counts per verdict; exit 0
 * only if clean.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "octo/octo_sgq.h"

#define MAXN 3
#define MAXH 9
#define MAXW 9
#define MAXC 20
#define MAX_ELEMS (MAXN * MAXH * MAXW * MAXC)
#define MUTANTS 4
#define OUT_CAP 8192u /* the decoder's output capacity for mutants */

static uint64_t g_rng;
static unsigned long g_failures;

static uint32_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 32);
}

static uint32_t below(uint32_t n) { return n == 0 ? 0 : rnd() % n; }

static void fail(unsigned long iter, const char *what, long a, long b) {
    g_failures++;
    if (g_failures <= 20) {
        printf("FAIL iteration %lu: %s (%ld, %ld)\n", iter, what, a, b);
    }
}

/* --- verdict bookkeeping ------------------------------------------------------------------------ */

static const int k_codes[] = {OCTO_OK,          OCTO_E_BUF,        OCTO_SGQ_E_SHORT, OCTO_SGQ_E_MAGIC,
                              OCTO_SGQ_E_VERSION, OCTO_SGQ_E_HEADER, OCTO_SGQ_E_SHAPE, OCTO_SGQ_E_LENGTH,
                              OCTO_SGQ_E_GROUPS, OCTO_SGQ_E_RANGE,  OCTO_SGQ_E_CODE};
static const char *const k_names[] = {"ok",     "buf",    "short", "magic", "version", "header",
                                      "shape",  "length", "groups", "range", "code"};
#define N_CODES (sizeof k_codes / sizeof k_codes[0])
static unsigned long g_count[N_CODES];

static int code_index(int st) {
    for (size_t i = 0; i < N_CODES; i++) {
        if (k_codes[i] == st) {
            return (int)i;
        }
    }
    return -1;
}

/* --- decoding with exactly sized heap blocks ---------------------------------------------------- */

static uint32_t g_scratch_big[OCTO_SGQ_SCRATCH_LEN(OCTO_SGQ_MAX_DIM, OCTO_SGQ_MAX_GROUPS) / 4u + 1u];

/* Decode p[len] from an exact copy. Output is an exact block of min(header elems, OUT_CAP) bytes (or
 * OUT_CAP when the header does not parse); scratch is exact for the header's C and G. */
static int decode_exact(const uint8_t *p, size_t len, int8_t *result, octo_sgq_info_t *info) {
    uint8_t *copy = malloc(len ? len : 1u);
    memcpy(copy, p, len);
    octo_sgq_info_t hdr;
    size_t out_cap = OUT_CAP;
    octo_sgq_ctx_t ctx = {g_scratch_big, sizeof g_scratch_big};
    void *scratch = NULL;
    if (octo_sgq_parse_header(copy, len, &hdr) == OCTO_OK) {
        out_cap = hdr.elems < OUT_CAP ? hdr.elems : OUT_CAP;
        ctx.size = octo_sgq_scratch_size(hdr.dims.c, hdr.groups);
        scratch = malloc(ctx.size);
        ctx.buf = scratch;
    }
    int8_t *out = malloc(out_cap ? out_cap : 1u);
    const int st = octo_sgq_decode(copy, len, &ctx, out, out_cap, info);
    if (st == OCTO_OK && result != NULL) {
        memcpy(result, out, info->elems);
    }
    free(out);
    free(scratch);
    free(copy);
    return st;
}

/* Every value of an accepted payload lies in its stripe's range. */
static int values_in_ranges(const uint8_t *p, const octo_sgq_info_t *info, const int8_t *v) {
    const uint8_t *map = p + OCTO_SGQ_HEADER_LEN;
    const uint8_t *ranges = map + info->map_len;
    const uint32_t mb = OCTO_SGQ_MAP_BITS(info->groups);
    const uint32_t th = (uint32_t)(info->dims.h + info->stripe_h - 1) / (uint32_t)info->stripe_h;
    const uint32_t tw = (uint32_t)(info->dims.w + info->stripe_w - 1) / (uint32_t)info->stripe_w;
    size_t i = 0;
    for (int32_t n = 0; n < info->dims.n; n++) {
        for (int32_t y = 0; y < info->dims.h; y++) {
            for (int32_t x = 0; x < info->dims.w; x++) {
                for (int32_t c = 0; c < info->dims.c; c++, i++) {
                    uint32_t g = 0;
                    if (mb) {
                        const uint32_t bit = (uint32_t)c * mb;
                        g = (map[bit / 8u] >> (bit % 8u)) & ((1u << mb) - 1u);
                    }
                    const uint32_t nn = info->shared ? 0u : (uint32_t)n;
                    const uint32_t r = ((nn * th + (uint32_t)y / (uint32_t)info->stripe_h) * tw +
                                        (uint32_t)x / (uint32_t)info->stripe_w) * (uint32_t)info->groups + g;
                    int32_t lo, hi;
                    if (info->range_mode == OCTO_SGQ_RANGE_ASYMMETRIC) {
                        lo = (int8_t)ranges[2u * r];
                        hi = (int8_t)ranges[2u * r + 1u];
                    } else {
                        hi = ranges[r];
                        lo = info->range_mode == OCTO_SGQ_RANGE_SYMMETRIC ? -hi : 0;
                    }
                    if (v[i] < lo || v[i] > hi) {
                        return 0;
                    }
                }
            }
        }
    }
    return 1;
}

/* --- a random valid payload --------------------------------------------------------------------- */

static int8_t g_q[MAX_ELEMS];
static uint8_t g_pay[2][OCTO_SGQ_MAX_LEN(MAXN, MAXH, MAXW, MAXC, 8, MAXC, 1, 1)];
static uint32_t g_scratch[OCTO_SGQ_SCRATCH_LEN(MAXC, MAXC) / 4u + 1u];
static uint8_t g_fixed[sizeof g_pay[0]];
static unsigned long g_rc_payloads; /* clean payloads the encoder range-coded */

static size_t make_payload(unsigned long iter, uint8_t *dst, octo_sgq_params_t *p, octo_sgq_tensor_t *t) {
    t->dims.n = 1 + (int32_t)below(MAXN);
    t->dims.h = 1 + (int32_t)below(MAXH);
    t->dims.w = 1 + (int32_t)below(MAXW);
    t->dims.c = 1 + (int32_t)below(MAXC);
    const uint32_t elems = (uint32_t)(t->dims.n * t->dims.h * t->dims.w * t->dims.c);
    const uint32_t kind = below(5);
    const int8_t constant = (int8_t)(rnd() & 0xFF);
    for (uint32_t i = 0; i < elems; i++) {
        int32_t v = (int32_t)(int8_t)(rnd() & 0xFF);
        if (kind == 1) {
            v = v < 0 ? 0 : v; /* ReLU */
        } else if (kind == 2) {
            v = 0;
        } else if (kind == 3) {
            v = constant;
        } else if (kind == 4) {
            v = below(4) ? v / 16 : v; /* mostly small, a heavy tail */
        }
        g_q[i] = (int8_t)v;
    }
    t->data = g_q;
    const uint32_t sb = 0x3C000000u + below(0x04000000u); /* a finite positive scale */
    memcpy(&t->scale, &sb, sizeof t->scale);
    static const int32_t bits[] = {2, 4, 8};
    p->bits = bits[below(3)];
    p->groups = 1 + (int32_t)below((uint32_t)t->dims.c);
    p->stripe_h = 1 + (int32_t)below((uint32_t)t->dims.h);
    p->stripe_w = 1 + (int32_t)below((uint32_t)t->dims.w);
    p->range_mode = (int32_t)below(4);
    if (p->range_mode == OCTO_SGQ_RANGE_UNSIGNED) {
        p->range_mode = OCTO_SGQ_RANGE_AUTO; /* UNSIGNED refuses negative values */
    }
    p->shared = (int32_t)below(2);
    p->grouping = (int32_t)below(3);
    p->rounding = (int32_t)below(2);
    p->seed = rnd();
    p->group_map = NULL;
    p->clip = below(2) ? 0 : OCTO_SGQ_CLIP_MIN + (int32_t)below(OCTO_SGQ_CLIP_MAX - OCTO_SGQ_CLIP_MIN + 1);
    p->entropy = (int32_t)below(2);
    const octo_sgq_ctx_t ctx = {g_scratch, sizeof g_scratch};
    size_t len = 0;
    const int st = octo_sgq_encode(t, p, &ctx, dst, sizeof g_pay[0], &len);
    if (st != OCTO_OK) {
        fail(iter, "encode failed", st, 0);
        return 0;
    }
    return len;
}

/* --- mutations ------------------------------------------------------------------------------------ */

enum { M_FLIP, M_SET, M_TRUNC, M_APPEND, M_MAGIC, M_VERSION, M_MODE, M_GROUPS, M_DIMS, M_STRIPE, M_SCALE,
       M_MAP, M_RANGE, M_CODES, M_SPLICE, M_GARBAGE, M_COUNT };
static const char *const k_mut_names[M_COUNT] = {"flip", "set", "trunc", "append", "magic", "version",
                                                 "mode", "groups", "dims", "stripe", "scale", "map",
                                                 "range", "codes", "splice", "garbage"};
static unsigned long g_mut_count[M_COUNT];

static size_t mutate(int kind, const uint8_t *src, size_t len, const uint8_t *other, size_t other_len,
                     const octo_sgq_info_t *info, uint8_t *dst, size_t cap) {
    size_t n = len < cap ? len : cap;
    memcpy(dst, src, n);
    switch (kind) {
    case M_FLIP:
        for (uint32_t k = 1 + below(4); k > 0; k--) {
            dst[below((uint32_t)n)] ^= (uint8_t)(1u << below(8));
        }
        break;
    case M_SET:
        dst[below((uint32_t)n)] = (uint8_t)rnd();
        break;
    case M_TRUNC:
        n = below((uint32_t)n);
        break;
    case M_APPEND:
        for (uint32_t k = 1 + below(8); k > 0 && n < cap; k--) {
            dst[n++] = (uint8_t)rnd();
        }
        break;
    case M_MAGIC:
        dst[0] = (uint8_t)(OCTO_SGQ_MAGIC + 1u + below(255));
        break;
    case M_VERSION:
        dst[1] = (uint8_t)(OCTO_SGQ_FORMAT_VERSION_RC + 1u + below(254)); /* 3..255, 0 */
        break;
    case M_MODE:
        dst[2] = (uint8_t)rnd();
        break;
    case M_GROUPS:
        dst[3] = (uint8_t)(below(2) ? rnd() : dst[3] + 1u);
        break;
    case M_DIMS: {
        const uint32_t at = 4u + 2u * below(4);
        const uint32_t v = below(3) == 0 ? 0xFFFFu : below(2) ? below(64) : (uint32_t)dst[at] + 1u;
        dst[at] = (uint8_t)v;
        dst[at + 1u] = (uint8_t)(v >> 8);
        break;
    }
    case M_STRIPE:
        dst[12u + below(2)] = (uint8_t)below(12);
        break;
    case M_SCALE: {
        static const uint32_t bad[] = {0x00000000u, 0x80000000u, 0x7F800000u, 0xFF800000u, 0x7FC00000u,
                                       0xBF800000u, 0x00000001u};
        const uint32_t v = bad[below(7)];
        for (int k = 0; k < 4; k++) {
            dst[14 + k] = (uint8_t)(v >> (8 * k));
        }
        break;
    }
    case M_MAP:
        if (info->map_len) {
            dst[OCTO_SGQ_HEADER_LEN + below(info->map_len)] ^= (uint8_t)(1u << below(8));
        }
        break;
    case M_RANGE: {
        const size_t at = OCTO_SGQ_HEADER_LEN + info->map_len + below(info->ranges_len);
        dst[at] = below(2) ? (uint8_t)(dst[at] | 0x80u) : (uint8_t)rnd();
        break;
    }
    case M_CODES:
        if (n > info->head_len) {
            const size_t at = info->head_len + below((uint32_t)(n - info->head_len));
            dst[at] = below(2) ? 0xFFu : (uint8_t)rnd();
        }
        break;
    case M_SPLICE: {
        const size_t cut = below((uint32_t)n + 1u);
        const size_t from = below((uint32_t)other_len + 1u);
        n = cut;
        for (size_t i = from; i < other_len && n < cap; i++) {
            dst[n++] = other[i];
        }
        break;
    }
    default: /* M_GARBAGE */
        n = below((uint32_t)cap);
        for (size_t i = 0; i < n; i++) {
            dst[i] = (uint8_t)rnd();
        }
        if (n > 1 && below(2)) { /* often a plausible start */
            dst[0] = (uint8_t)OCTO_SGQ_MAGIC;
            dst[1] = (uint8_t)OCTO_SGQ_FORMAT_VERSION;
        }
        break;
    }
    return n;
}

/* --- API contract ---------------------------------------------------------------------------------- */

static void api_checks(void) {
    int8_t q[2 * 3 * 4 * 5];
    for (size_t i = 0; i < sizeof q; i++) {
        q[i] = (int8_t)(i * 37u);
    }
    const octo_sgq_tensor_t t = {q, {2, 3, 4, 5}, 0.5f};
    octo_sgq_params_t p = {.bits = 4, .groups = 2, .stripe_h = 2, .stripe_w = 4, .range_mode = OCTO_SGQ_RANGE_AUTO};
    const octo_sgq_ctx_t ctx = {g_scratch, octo_sgq_scratch_size(5, 2)};
    uint8_t buf[512];
    size_t len = 0, max_len = 0;
    if (octo_sgq_encoded_max_len(&t.dims, &p, &max_len) != OCTO_OK || max_len > sizeof buf) {
        fail(0, "max_len", 0, 0);
        return;
    }
    if (octo_sgq_encode(&t, &p, &ctx, buf, sizeof buf, &len) != OCTO_OK || len > max_len) {
        fail(0, "api encode", (long)len, (long)max_len);
        return;
    }
    if (octo_sgq_encode(&t, &p, &ctx, buf, len - 1u, &len) != OCTO_E_BUF) {
        fail(0, "encode into len-1 bytes", 0, 0);
    }
    if (octo_sgq_encode(&t, &p, &ctx, buf, sizeof buf, &len) != OCTO_OK) {
        fail(0, "api re-encode", 0, 0);
    }
    const octo_sgq_ctx_t short_ctx = {g_scratch, ctx.size - 1u};
    const octo_sgq_ctx_t odd_ctx = {(uint8_t *)g_scratch + 1, ctx.size};
    size_t dummy;
    if (octo_sgq_encode(&t, &p, &short_ctx, buf, sizeof buf, &dummy) != OCTO_E_BUF ||
        octo_sgq_encode(&t, &p, &odd_ctx, buf, sizeof buf, &dummy) != OCTO_E_ARG ||
        octo_sgq_encode(NULL, &p, &ctx, buf, sizeof buf, &dummy) != OCTO_E_ARG ||
        octo_sgq_encode(&t, NULL, &ctx, buf, sizeof buf, &dummy) != OCTO_E_ARG ||
        octo_sgq_encode(&t, &p, NULL, buf, sizeof buf, &dummy) != OCTO_E_ARG) {
        fail(0, "encode argument checks", 0, 0);
    }
    static const struct {
        int32_t bits, groups, sh, sw, range, shared, grouping, rounding;
    } bad[] = {{3, 2, 2, 4, 3, 0, 0, 0}, {4, 0, 2, 4, 3, 0, 0, 0}, {4, 6, 2, 4, 3, 0, 0, 0},
               {4, 2, 0, 4, 3, 0, 0, 0}, {4, 2, 4, 4, 3, 0, 0, 0}, {4, 2, 2, 5, 3, 0, 0, 0},
               {4, 2, 2, 4, 4, 0, 0, 0}, {4, 2, 2, 4, 3, 2, 0, 0}, {4, 2, 2, 4, 3, 0, 3, 0},
               {4, 2, 2, 4, 3, 0, 0, 2}, {4, 2, 2, 4, 0, 0, 0, 0} /* UNSIGNED with negatives */};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        octo_sgq_params_t b = {bad[i].bits, bad[i].groups, bad[i].sh, bad[i].sw, bad[i].range,
                               bad[i].shared, bad[i].grouping, bad[i].rounding, 0u, NULL, 0, 0};
        if (octo_sgq_encode(&t, &b, &ctx, buf, sizeof buf, &dummy) != OCTO_E_ARG) {
            fail(0, "bad params accepted", (long)i, 0);
        }
    }
    static const int32_t bad_clip[] = {-1, 1, OCTO_SGQ_CLIP_MIN - 1, OCTO_SGQ_CLIP_MAX + 1};
    for (size_t i = 0; i < sizeof bad_clip / sizeof bad_clip[0]; i++) {
        octo_sgq_params_t b = p;
        b.clip = bad_clip[i];
        if (octo_sgq_encode(&t, &b, &ctx, buf, sizeof buf, &dummy) != OCTO_E_ARG) {
            fail(0, "bad clip accepted", (long)bad_clip[i], 0);
        }
    }
    const uint8_t bad_map[5] = {0, 0, 0, 0, 0}; /* group 1 empty */
    const uint8_t big_map[5] = {0, 1, 2, 0, 1}; /* id 2 >= G */
    octo_sgq_params_t pm = p;
    pm.group_map = bad_map;
    if (octo_sgq_encode(&t, &pm, &ctx, buf, sizeof buf, &dummy) != OCTO_E_ARG) {
        fail(0, "empty group accepted", 0, 0);
    }
    pm.group_map = big_map;
    if (octo_sgq_encode(&t, &pm, &ctx, buf, sizeof buf, &dummy) != OCTO_E_ARG) {
        fail(0, "group id >= G accepted", 0, 0);
    }
    octo_sgq_tensor_t bad_scale = t;
    bad_scale.scale = 0.0f;
    if (octo_sgq_encode(&bad_scale, &p, &ctx, buf, sizeof buf, &dummy) != OCTO_E_ARG) {
        fail(0, "zero scale accepted", 0, 0);
    }
    int8_t out[sizeof q];
    octo_sgq_info_t info;
    if (octo_sgq_decode(buf, len, &ctx, out, sizeof out, &info) != OCTO_OK ||
        octo_sgq_decode(buf, len, &ctx, out, sizeof out - 1u, &info) != OCTO_E_BUF ||
        octo_sgq_decode(buf, len, &short_ctx, out, sizeof out, &info) != OCTO_E_BUF ||
        octo_sgq_decode(buf, len, &odd_ctx, out, sizeof out, &info) != OCTO_E_ARG ||
        octo_sgq_decode(NULL, len, &ctx, out, sizeof out, &info) != OCTO_E_ARG ||
        octo_sgq_decode(buf, len, &ctx, NULL, sizeof out, &info) != OCTO_E_ARG ||
        octo_sgq_decode(buf, len, &ctx, out, sizeof out, NULL) != OCTO_E_ARG ||
        octo_sgq_parse_header(buf, len, NULL) != OCTO_E_ARG) {
        fail(0, "decode argument checks", 0, 0);
    }
    if (octo_sgq_scratch_size(0, 1) != 0u || octo_sgq_scratch_size(5, 0) != 0u ||
        octo_sgq_scratch_size(5, 256) != 0u || octo_sgq_scratch_size(65536, 1) != 0u) {
        fail(0, "scratch size of bad arguments", 0, 0);
    }
    if (strcmp(octo_sgq_status_name(OCTO_SGQ_E_RANGE), "OCTO_SGQ_E_RANGE") != 0 ||
        strcmp(octo_sgq_status_name(OCTO_E_BUF), "OCTO_E_BUF") != 0) {
        fail(0, "status names", 0, 0);
    }
}

/* --- main ------------------------------------------------------------------------------------------ */

int main(int argc, char **argv) {
    const unsigned long iterations = argc > 1 ? strtoul(argv[1], NULL, 10) : 20000ul;
    const unsigned long seed = argc > 2 ? strtoul(argv[2], NULL, 10) : 1ul;
    g_rng = 0x9E3779B97F4A7C15ull ^ ((uint64_t)seed * 0xD1B54A32D192ED03ull);
    if (g_rng == 0) {
        g_rng = 1;
    }
    api_checks();
    static uint8_t mutant[sizeof g_pay[0] + 64u];
    static int8_t first[OUT_CAP], second[OUT_CAP];
    unsigned long payloads = 0, bytes = 0;
    size_t other_len = 0;
    int cur = 0;
    for (unsigned long it = 0; it < iterations; it++) {
        octo_sgq_params_t p;
        octo_sgq_tensor_t t;
        const size_t len = make_payload(it, g_pay[cur], &p, &t);
        if (len == 0) {
            continue;
        }
        octo_sgq_info_t info;
        int st = decode_exact(g_pay[cur], len, first, &info);
        payloads++;
        if (st != OCTO_OK) {
            fail(it, "clean payload rejected", st, (long)len);
            continue;
        }
        if (!values_in_ranges(g_pay[cur], &info, first)) {
            fail(it, "clean value outside its range", 0, 0);
        }
        if (p.bits == 8 && p.rounding == OCTO_SGQ_ROUND_NEAREST && p.clip == 0 &&
            info.range_mode != OCTO_SGQ_RANGE_SYMMETRIC && memcmp(first, g_q, info.elems) != 0) {
            fail(it, "8-bit payload not lossless", info.range_mode, 0);
        }
        if (info.entropy) { /* the range coder is lossless: the fixed-width payload decodes the same */
            g_rc_payloads++;
            octo_sgq_params_t pf = p;
            pf.entropy = 0;
            const octo_sgq_ctx_t ctx = {g_scratch, sizeof g_scratch};
            size_t flen = 0;
            octo_sgq_info_t finfo;
            if (octo_sgq_encode(&t, &pf, &ctx, g_fixed, sizeof g_fixed, &flen) != OCTO_OK || flen <= len ||
                decode_exact(g_fixed, flen, second, &finfo) != OCTO_OK || memcmp(first, second, info.elems) != 0) {
                fail(it, "range-coded payload not the fixed-width one, shorter", (long)len, (long)flen);
            }
        }
        for (int m = 0; m < MUTANTS; m++) {
            const int kind = (int)below(M_COUNT);
            const size_t n = mutate(kind, g_pay[cur], len, g_pay[cur ^ 1], other_len, &info, mutant, sizeof mutant);
            g_mut_count[kind]++;
            bytes += n;
            octo_sgq_info_t minfo;
            st = decode_exact(mutant, n, first, &minfo);
            payloads++;
            const int idx = code_index(st);
            if (idx < 0) {
                fail(it, "undocumented status", st, kind);
                continue;
            }
            g_count[idx]++;
            const int changed = n != len || memcmp(mutant, g_pay[cur], n) != 0;
            if ((kind == M_MAGIC && st != OCTO_SGQ_E_MAGIC) || (kind == M_VERSION && st != OCTO_SGQ_E_VERSION) ||
                (kind == M_TRUNC && st != (n < OCTO_SGQ_HEADER_LEN ? OCTO_SGQ_E_SHORT : OCTO_SGQ_E_LENGTH)) ||
                (kind == M_APPEND && changed && st != OCTO_SGQ_E_LENGTH)) {
                fail(it, "wrong verdict for a forced error", st, kind);
            }
            if (st == OCTO_OK) {
                if (decode_exact(mutant, n, second, &minfo) != OCTO_OK || memcmp(first, second, minfo.elems) != 0) {
                    fail(it, "accepted mutant decodes differently twice", kind, 0);
                }
                if (!values_in_ranges(mutant, &minfo, first)) {
                    fail(it, "accepted mutant has a value outside its range", kind, 0);
                }
            }
        }
        other_len = len;
        cur ^= 1;
    }
    printf("fuzz: iterations=%lu seed=%lu payloads=%lu bytes=%lu", iterations, seed, payloads, bytes);
    for (size_t i = 0; i < N_CODES; i++) {
        printf(" %s=%lu", k_names[i], g_count[i]);
    }
    for (int k = 0; k < M_COUNT; k++) {
        printf(" m_%s=%lu", k_mut_names[k], g_mut_count[k]);
    }
    printf(" range_coded=%lu failures=%lu\n", g_rc_payloads, g_failures);
    return g_failures == 0 ? 0 : 1;
}
