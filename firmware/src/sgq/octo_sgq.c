/* octo_sgq.c - SGQ encoder and decoder. Format and semantics: octo/octo_sgq.h
 * and docs/SGQ.md; host_tools/sgq/codec.py is the bit-exact Python twin.
 *
 * Quantizer (integer only; x is the value's offset in its range, d the width):
 *   UNSIGNED/ASYMMETRIC, L = 2^bits - 1 levels above lo:
 *     code = min((x * R + r) >> 16, L),  R = (L << 16) / d
 *     value = lo + ((code * Q + 2^15) >> 16),  Q = ((d << 17) + L) / (2L)
 *   SYMMETRIC, K = 2^(bits-1) - 1 levels a side, x = |v|, d = m:
 *     mag = (x * R + r) >> 16 (<= K), code = K +- mag;  value = +-((|code-K| * Q + 2^15) >> 16)
 *   r = 2^15 (nearest) or the top 16 bits of an xorshift32 draw (stochastic).
 * x * R <= d * R <= L << 16 < 2^24 and code * Q <= d << 16, so every product
 * fits in 32 bits and a decoded value never leaves [lo, hi]. With clipped
 * ranges a value may lie outside its range: above it, x * R <= 255 * (255 << 16)
 * still fits and the code saturates at the top level; below lo (ASYMMETRIC) the
 * code is 0.
 */
#include "octo/octo_sgq.h"

#include <string.h>

/* --- scratch layout ------------------------------------------------------------------------------ */

/* One range's quantizer, cached for the G groups of the current stripe. */
typedef struct {
    int32_t lo;   /* range low end (0 for UNSIGNED and SYMMETRIC) */
    uint32_t mul; /* encoder R or decoder Q; 0 = zero-width range (no code) */
} sgq_entry_t;

typedef struct {
    uint8_t *gmap;       /* [C] group id per channel (holds the channel statistic first) */
    uint16_t *gsize;     /* [G] channels per group */
    uint16_t *probs;     /* [256] range coder: P(bit = 0) per bit-tree node, in 1/2048 */
    uint16_t *hist;      /* [129] counting-sort histogram (aliases entries) */
    sgq_entry_t *entries; /* [G] */
    uint32_t *acc;        /* [2G] clipped ranges: sum of |v| and non-zero count per group (aliases entries) */
} sgq_scratch_t;

#define HIST_LEN 129u
#define RC_PROBS 256u /* bit-tree nodes 1..2^bits - 1, bits <= 8 */

#if defined(__GNUC__) || defined(__clang__)
#define OCTO_SGQ_INLINE inline __attribute__((always_inline))
#define OCTO_SGQ_NOINLINE __attribute__((noinline))
#else
#define OCTO_SGQ_INLINE inline
#define OCTO_SGQ_NOINLINE
#endif

static size_t align4(size_t n) { return (n + 3u) & ~(size_t)3u; }

size_t octo_sgq_scratch_size(int32_t c, int32_t groups) {
    if (c < 1 || c > OCTO_SGQ_MAX_DIM || groups < 1 || groups > OCTO_SGQ_MAX_GROUPS) {
        return 0;
    }
    return OCTO_SGQ_SCRATCH_LEN(c, groups);
}

static int scratch_split(const octo_sgq_ctx_t *ctx, int32_t c, int32_t g, sgq_scratch_t *s) {
    if (ctx == NULL || ctx->buf == NULL || ((uintptr_t)ctx->buf & 3u) != 0) {
        return OCTO_E_ARG;
    }
    if (ctx->size < octo_sgq_scratch_size(c, g)) {
        return OCTO_E_BUF;
    }
    uint8_t *p = (uint8_t *)ctx->buf;
    s->gmap = p;
    p += align4((size_t)c);
    s->gsize = (uint16_t *)(void *)p;
    p += align4((size_t)g * 2u);
    s->probs = (uint16_t *)(void *)p;
    p += RC_PROBS * sizeof(uint16_t);
    s->hist = (uint16_t *)(void *)p;
    s->entries = (sgq_entry_t *)(void *)p;
    s->acc = (uint32_t *)(void *)p;
    return OCTO_OK;
}

/* --- small helpers ------------------------------------------------------------------------------- */

static uint32_t map_bits(int32_t g) { return OCTO_SGQ_MAP_BITS(g); }

static int bits_code(int32_t bits) { return bits == 2 ? 0 : bits == 4 ? 1 : bits == 8 ? 2 : -1; }

static uint32_t ceil_div(uint32_t a, uint32_t b) { return (a + b - 1u) / b; }

static void put_u16(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static uint32_t get_u16(const uint8_t *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8); }

static uint32_t float_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_float(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Finite, positive, not zero (subnormals allowed), by its bits: the same test on every target. */
static int scale_bits_ok(uint32_t u) { return (u & 0x80000000u) == 0 && (u & 0x7F800000u) != 0x7F800000u && u != 0; }

/* xorshift32 (13/17/5) seeded with MurmurHash3's fmix32, as octo_train_prng_seed. */
static uint32_t prng_seed(uint32_t seed) {
    uint32_t z = seed + 0x9E3779B9u;
    z ^= z >> 16;
    z *= 0x85EBCA6Bu;
    z ^= z >> 13;
    z *= 0xC2B2AE35u;
    z ^= z >> 16;
    return z != 0u ? z : 0x6D2B79F5u;
}

static uint32_t prng_next(uint32_t *state) {
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

/* Range geometry shared by encoder and decoder. */
typedef struct {
    uint32_t n, h, w, c, g;
    uint32_t sh, sw, th, tw;
    uint32_t shared;
} sgq_geom_t;

static void geom_init(sgq_geom_t *geo, const octo_dims_t *d, uint32_t g, uint32_t sh, uint32_t sw, uint32_t shared) {
    geo->n = (uint32_t)d->n;
    geo->h = (uint32_t)d->h;
    geo->w = (uint32_t)d->w;
    geo->c = (uint32_t)d->c;
    geo->g = g;
    geo->sh = sh;
    geo->sw = sw;
    geo->th = ceil_div(geo->h, sh);
    geo->tw = ceil_div(geo->w, sw);
    geo->shared = shared;
}

static uint32_t geom_ranges(const sgq_geom_t *geo) { return (geo->shared ? 1u : geo->n) * geo->th * geo->tw * geo->g; }

/* Values coded: the sum over ranges of non-zero width of stripe pixels * group channels. */
static uint32_t coded_count(const sgq_geom_t *geo, const uint8_t *ranges, int32_t mode, const uint16_t *gsize) {
    uint32_t count = 0;
    uint32_t r = 0;
    const uint32_t nr = geo->shared ? 1u : geo->n;
    for (uint32_t n = 0; n < nr; n++) {
        for (uint32_t ty = 0; ty < geo->th; ty++) {
            const uint32_t rows = (ty + 1u) * geo->sh <= geo->h ? geo->sh : geo->h - ty * geo->sh;
            for (uint32_t tx = 0; tx < geo->tw; tx++) {
                const uint32_t cols = (tx + 1u) * geo->sw <= geo->w ? geo->sw : geo->w - tx * geo->sw;
                for (uint32_t gi = 0; gi < geo->g; gi++, r++) {
                    const int zero = mode == OCTO_SGQ_RANGE_ASYMMETRIC ? ranges[2u * r] == ranges[2u * r + 1u]
                                                                       : ranges[r] == 0u;
                    if (!zero) {
                        count += rows * cols * gsize[gi];
                    }
                }
            }
        }
    }
    /* with shared ranges every sample is coded against the same ranges */
    return geo->shared ? count * geo->n : count;
}

/* Width and low end of range r. */
static void range_at(const uint8_t *ranges, int32_t mode, uint32_t r, int32_t *lo, uint32_t *d) {
    if (mode == OCTO_SGQ_RANGE_ASYMMETRIC) {
        *lo = (int8_t)ranges[2u * r];
        *d = (uint32_t)((int32_t)(int8_t)ranges[2u * r + 1u] - *lo);
    } else {
        *lo = 0;
        *d = ranges[r];
    }
}

/* Load the G quantizers of the stripe whose first range is rbase. */
static void load_entries(sgq_entry_t *e, const uint8_t *ranges, int32_t mode, uint32_t rbase, uint32_t g, uint32_t levels,
                         int decode) {
    for (uint32_t i = 0; i < g; i++) {
        int32_t lo;
        uint32_t d;
        range_at(ranges, mode, rbase + i, &lo, &d);
        e[i].lo = lo;
        if (d == 0u) {
            e[i].mul = 0u;
        } else if (decode) {
            e[i].mul = ((d << 17) + levels) / (2u * levels);
        } else {
            e[i].mul = (levels << 16) / d;
        }
    }
}

/* Walks the NHWC tensor pixel by pixel and yields each pixel's first range. */
typedef struct {
    const sgq_geom_t *geo;
    uint32_t n, y, x;   /* current pixel */
    uint32_t ty, tx;    /* its stripe row and column */
    uint32_t ry, rx;    /* rows/columns left in the current stripe */
} sgq_walk_t;

static void walk_start(sgq_walk_t *wk, const sgq_geom_t *geo) {
    wk->geo = geo;
    wk->n = wk->y = wk->x = 0;
    wk->ty = wk->tx = 0;
    wk->ry = geo->sh;
    wk->rx = geo->sw;
}

static uint32_t walk_rbase(const sgq_walk_t *wk) {
    const sgq_geom_t *geo = wk->geo;
    const uint32_t nn = geo->shared ? 0u : wk->n;
    return ((nn * geo->th + wk->ty) * geo->tw + wk->tx) * geo->g;
}

static void walk_next(sgq_walk_t *wk) {
    const sgq_geom_t *geo = wk->geo;
    if (++wk->x < geo->w) {
        if (--wk->rx == 0u) {
            wk->tx++;
            wk->rx = geo->sw;
        }
        return;
    }
    wk->x = 0;
    wk->tx = 0;
    wk->rx = geo->sw;
    if (++wk->y < geo->h) {
        if (--wk->ry == 0u) {
            wk->ty++;
            wk->ry = geo->sh;
        }
        return;
    }
    wk->y = 0;
    wk->ty = 0;
    wk->ry = geo->sh;
    wk->n++;
}

/* --- bit writer / reader: 32-bit words, LSB first, stored little-endian ------------------------ */

typedef struct {
    uint8_t *p;
    uint32_t acc;
    uint32_t nbits;
} sgq_bitw_t;

static inline void bitw_put(sgq_bitw_t *bw, uint32_t code, uint32_t bits) {
    bw->acc |= code << bw->nbits;
    bw->nbits += bits;
    if (bw->nbits == 32u) { /* 32 % bits == 0: a code never straddles words */
        bw->p[0] = (uint8_t)bw->acc;
        bw->p[1] = (uint8_t)(bw->acc >> 8);
        bw->p[2] = (uint8_t)(bw->acc >> 16);
        bw->p[3] = (uint8_t)(bw->acc >> 24);
        bw->p += 4;
        bw->acc = 0;
        bw->nbits = 0;
    }
}

static void bitw_flush(sgq_bitw_t *bw) {
    for (uint32_t k = 0; k < bw->nbits; k += 8u) {
        *bw->p++ = (uint8_t)(bw->acc >> k);
    }
}

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
    uint32_t acc;
    uint32_t nbits;
} sgq_bitr_t;

/* Next `bits`-bit code; the caller guarantees the bytes exist (the length check). */
static inline uint32_t bitr_get(sgq_bitr_t *br, uint32_t bits) {
    if (br->nbits == 0u) {
        if (br->end - br->p >= 4) {
            br->acc = (uint32_t)br->p[0] | ((uint32_t)br->p[1] << 8) | ((uint32_t)br->p[2] << 16) |
                      ((uint32_t)br->p[3] << 24);
            br->p += 4;
            br->nbits = 32u;
        } else {
            br->acc = *br->p++;
            br->nbits = 8u;
        }
    }
    const uint32_t code = br->acc & ((1u << bits) - 1u);
    br->acc >>= bits;
    br->nbits -= bits;
    return code;
}

/* --- range coder: the optional entropy stage over the codes (docs/SGQ.md, "Range-coded codes") -------
 * Each code is sent MSB first as a path through a binary tree of 2^bits - 1 adaptive probabilities
 * (node m = 1, then 2m + bit). A probability is P(bit = 0) in 1/2048, starts at 1/2 and moves 1/32 of the
 * way towards every bit it codes. The encoder keeps the low end of the interval in 32 bits and, when an
 * addition overflows, carries into the bytes it has already written; it shifts a byte out whenever the
 * range drops below 2^24 and ends with the 4 bytes of `low`, most significant first. The decoder reads
 * the same number of bytes and finishes with its code register at exactly 0. */

#define RC_PROB_BITS 11u
#define RC_PROB_INIT (1u << 10)
#define RC_ADAPT_SHIFT 5u
#define RC_TOP (1u << 24)

typedef struct {
    uint8_t *start; /* first byte of the stream */
    uint8_t *p;     /* next byte to write */
    uint8_t *end;   /* the stream may not reach here before its 4-byte tail */
    uint32_t low, range;
    uint16_t *probs;
    int full;       /* set once a byte did not fit: the stream is abandoned */
} sgq_rce_t;

static void rc_probs_init(uint16_t *probs, uint32_t bits) {
    for (uint32_t m = 0; m < (1u << bits); m++) {
        probs[m] = (uint16_t)RC_PROB_INIT;
    }
}

static OCTO_SGQ_INLINE void rce_put(sgq_rce_t *e, uint32_t node, uint32_t bit) {
    const uint32_t p = e->probs[node];
    const uint32_t bound = (e->range >> RC_PROB_BITS) * p;
    if (bit) {
        const uint32_t low = e->low + bound;
        if (low < e->low) { /* carry: never past the first byte (the stream's value stays below 1) */
            uint8_t *q = e->p;
            while (q != e->start && ++*--q == 0u) {
            }
        }
        e->low = low;
        e->range -= bound;
        e->probs[node] = (uint16_t)(p - (p >> RC_ADAPT_SHIFT));
    } else {
        e->range = bound;
        e->probs[node] = (uint16_t)(p + (((1u << RC_PROB_BITS) - p) >> RC_ADAPT_SHIFT));
    }
    while (e->range < RC_TOP) {
        if (e->p == e->end) {
            e->full = 1;
        } else {
            *e->p++ = (uint8_t)(e->low >> 24);
        }
        e->low <<= 8;
        e->range <<= 8;
    }
}

static OCTO_SGQ_INLINE void rce_code(sgq_rce_t *e, uint32_t code, uint32_t bits) {
    uint32_t m = 1u;
    for (uint32_t i = bits; i-- > 0u;) {
        const uint32_t bit = (code >> i) & 1u;
        rce_put(e, m, bit);
        m = 2u * m + bit;
    }
}

typedef struct {
    const uint8_t *p, *end;
    uint32_t code, range;
    uint16_t *probs;
    int short_read; /* a byte was needed past the end */
} sgq_rcd_t;

static OCTO_SGQ_INLINE uint32_t rcd_code(sgq_rcd_t *d, uint32_t bits) {
    const uint32_t leaves = 1u << bits;
    uint32_t m = 1u;
    while (m < leaves) {
        const uint32_t p = d->probs[m];
        const uint32_t bound = (d->range >> RC_PROB_BITS) * p;
        if (d->code < bound) {
            d->range = bound;
            d->probs[m] = (uint16_t)(p + (((1u << RC_PROB_BITS) - p) >> RC_ADAPT_SHIFT));
            m = 2u * m;
        } else {
            d->code -= bound;
            d->range -= bound;
            d->probs[m] = (uint16_t)(p - (p >> RC_ADAPT_SHIFT));
            m = 2u * m + 1u;
        }
        if (d->range < RC_TOP) {
            if (d->p == d->end) {
                d->short_read = 1;
                return 0u;
            }
            d->code = (d->code << 8) | *d->p++;
            d->range <<= 8;
        }
    }
    return m - leaves;
}

/* --- encoder --------------------------------------------------------------------------------------- */

static int dims_ok(const octo_dims_t *d, uint64_t *elems) {
    if (d->n < 1 || d->h < 1 || d->w < 1 || d->c < 1 || d->n > OCTO_SGQ_MAX_DIM || d->h > OCTO_SGQ_MAX_DIM ||
        d->w > OCTO_SGQ_MAX_DIM || d->c > OCTO_SGQ_MAX_DIM) {
        return 0;
    }
    *elems = (uint64_t)d->n * (uint64_t)d->h * (uint64_t)d->w * (uint64_t)d->c;
    return *elems <= OCTO_SGQ_MAX_ELEMS;
}

static int params_ok(const octo_dims_t *d, const octo_sgq_params_t *p) {
    const int32_t gmax = d->c < OCTO_SGQ_MAX_GROUPS ? d->c : OCTO_SGQ_MAX_GROUPS;
    const int32_t shmax = d->h < OCTO_SGQ_MAX_STRIPE ? d->h : OCTO_SGQ_MAX_STRIPE;
    const int32_t swmax = d->w < OCTO_SGQ_MAX_STRIPE ? d->w : OCTO_SGQ_MAX_STRIPE;
    return bits_code(p->bits) >= 0 && p->groups >= 1 && p->groups <= gmax && p->stripe_h >= 1 &&
           p->stripe_h <= shmax && p->stripe_w >= 1 && p->stripe_w <= swmax && p->range_mode >= 0 &&
           p->range_mode <= OCTO_SGQ_RANGE_AUTO && (p->shared == 0 || p->shared == 1) && p->grouping >= 0 &&
           p->grouping <= OCTO_SGQ_GROUP_INTERLEAVED &&
           (p->rounding == OCTO_SGQ_ROUND_NEAREST || p->rounding == OCTO_SGQ_ROUND_STOCHASTIC) &&
           (p->entropy == 0 || p->entropy == 1) &&
           (p->clip == 0 || (p->clip >= OCTO_SGQ_CLIP_MIN && p->clip <= OCTO_SGQ_CLIP_MAX &&
                             (uint64_t)(p->shared ? d->n : 1) * (uint64_t)p->stripe_h * (uint64_t)p->stripe_w *
                                     (uint64_t)d->c <=
                                 OCTO_SGQ_CLIP_MAX_VALUES));
}

int octo_sgq_encoded_max_len(const octo_dims_t *dims, const octo_sgq_params_t *params, size_t *out_len) {
    uint64_t elems;
    if (dims == NULL || params == NULL || out_len == NULL || !dims_ok(dims, &elems) || !params_ok(dims, params)) {
        return OCTO_E_ARG;
    }
    sgq_geom_t geo;
    geom_init(&geo, dims, (uint32_t)params->groups, (uint32_t)params->stripe_h, (uint32_t)params->stripe_w, 0u);
    const uint64_t total = OCTO_SGQ_HEADER_LEN + ceil_div(geo.c * map_bits(params->groups), 8u) +
                           2u * (uint64_t)geom_ranges(&geo) + (elems * (uint64_t)params->bits + 7u) / 8u;
    if (total > (uint64_t)SIZE_MAX) {
        return OCTO_E_ARG;
    }
    *out_len = (size_t)total;
    return OCTO_OK;
}

/* Pass 0: the minimum value and, when stat != NULL, per-channel max |v| (v after the SYMMETRIC clamp). */
static int32_t channel_stats(const int8_t *q, uint32_t pixels, uint32_t c, int sym, uint8_t *stat) {
    int32_t vmin = 127;
    if (stat == NULL) {
        for (uint32_t i = 0; i < pixels * c; i++) {
            vmin = q[i] < vmin ? q[i] : vmin;
        }
        return vmin;
    }
    memset(stat, 0, c);
    for (uint32_t px = 0; px < pixels; px++, q += c) {
        for (uint32_t ch = 0; ch < c; ch++) {
            const int32_t v = q[ch];
            vmin = v < vmin ? v : vmin;
            const uint32_t a = (uint32_t)(v < 0 ? (sym && v == -128 ? 127 : -v) : v);
            stat[ch] = a > stat[ch] ? (uint8_t)a : stat[ch];
        }
    }
    return vmin;
}

/* Rank channels by (statistic, index) with a counting sort and turn the
 * statistic in gmap[] into a group id, in place. */
static void group_by_rank(uint8_t *gmap, uint32_t c, uint32_t g, int interleaved, uint16_t *hist) {
    memset(hist, 0, HIST_LEN * sizeof hist[0]);
    for (uint32_t ch = 0; ch < c; ch++) {
        hist[gmap[ch]]++;
    }
    uint32_t start = 0;
    for (uint32_t s = 0; s < HIST_LEN; s++) {
        const uint32_t k = hist[s];
        hist[s] = (uint16_t)start;
        start += k;
    }
    for (uint32_t ch = 0; ch < c; ch++) {
        const uint32_t rank = hist[gmap[ch]]++;
        gmap[ch] = (uint8_t)(interleaved ? rank % g : rank * g / c);
    }
}

/* ceil(clip * sum / (8 * nz)) in 32-bit arithmetic (sum <= 128 * nz, nz <= 2^23): with m = sum / nz
 * and t = clip * m, clip * sum = 8 * (t >> 3) * nz + ((t & 7) * nz + clip * (sum % nz)), and the last
 * term is < 263 * 2^23. 0 for a range without non-zero values. */
static uint32_t clip_bound(uint32_t sum, uint32_t nz, uint32_t clip) {
    if (nz == 0u) {
        return 0u;
    }
    const uint32_t m = sum / nz;
    const uint32_t t = clip * m;
    const uint32_t num = (t & 7u) * nz + clip * (sum - m * nz);
    return (t >> 3) + (num + 8u * nz - 1u) / (8u * nz);
}

/* Pass 1 with clipped ranges, stripe by stripe (the G sums and non-zero counts of one stripe live in
 * the scratch's entry area, 8 bytes per group): each range = its min/max (UNSIGNED: max; SYMMETRIC:
 * max |v|), then cut to the bound: hi = min(hi, b), ASYMMETRIC also lo = max(lo, -b). */
OCTO_SGQ_NOINLINE static void clip_ranges(const sgq_geom_t *geo, const int8_t *q, const uint8_t *gmap, int32_t mode, uint32_t clip,
                        uint8_t *ranges, uint32_t *acc) {
    const int asym = mode == OCTO_SGQ_RANGE_ASYMMETRIC;
    const int sym = mode == OCTO_SGQ_RANGE_SYMMETRIC;
    const uint32_t g = geo->g, c = geo->c;
    const uint32_t nr = geo->shared ? 1u : geo->n;
    for (uint32_t nn = 0; nn < nr; nn++) {
        for (uint32_t ty = 0; ty < geo->th; ty++) {
            const uint32_t y0 = ty * geo->sh;
            const uint32_t y1 = y0 + geo->sh < geo->h ? y0 + geo->sh : geo->h;
            for (uint32_t tx = 0; tx < geo->tw; tx++) {
                const uint32_t x0 = tx * geo->sw;
                const uint32_t x1 = x0 + geo->sw < geo->w ? x0 + geo->sw : geo->w;
                const uint32_t rbase = ((nn * geo->th + ty) * geo->tw + tx) * g;
                uint8_t *rg = asym ? &ranges[2u * rbase] : &ranges[rbase];
                memset(acc, 0, 2u * g * sizeof acc[0]);
                for (uint32_t gi = 0; gi < g; gi++) {
                    if (asym) {
                        rg[2u * gi] = (uint8_t)(int8_t)127;
                        rg[2u * gi + 1u] = (uint8_t)(int8_t)-128;
                    } else {
                        rg[gi] = 0u;
                    }
                }
                const uint32_t n0 = geo->shared ? 0u : nn;
                const uint32_t n1 = geo->shared ? geo->n : nn + 1u;
                for (uint32_t n = n0; n < n1; n++) {
                    for (uint32_t y = y0; y < y1; y++) {
                        const int8_t *v = &q[(((size_t)n * geo->h + y) * geo->w + x0) * c];
                        for (uint32_t x = x0; x < x1; x++, v += c) {
                            for (uint32_t ch = 0; ch < c; ch++) {
                                const int32_t val = v[ch];
                                const uint32_t a = (uint32_t)(val < 0 ? (sym && val == -128 ? 127 : -val) : val);
                                const uint32_t gi = gmap[ch];
                                acc[2u * gi] += a;
                                acc[2u * gi + 1u] += a != 0u;
                                if (asym) {
                                    if (val < (int8_t)rg[2u * gi]) {
                                        rg[2u * gi] = (uint8_t)val;
                                    }
                                    if (val > (int8_t)rg[2u * gi + 1u]) {
                                        rg[2u * gi + 1u] = (uint8_t)val;
                                    }
                                } else if (a > rg[gi]) {
                                    rg[gi] = (uint8_t)a;
                                }
                            }
                        }
                    }
                }
                for (uint32_t gi = 0; gi < g; gi++) {
                    const int32_t b = (int32_t)clip_bound(acc[2u * gi], acc[2u * gi + 1u], clip);
                    if (asym) {
                        if ((int8_t)rg[2u * gi] < -b) {
                            rg[2u * gi] = (uint8_t)(int8_t)-b;
                        }
                        if ((int8_t)rg[2u * gi + 1u] > b) {
                            rg[2u * gi + 1u] = (uint8_t)(int8_t)b;
                        }
                    } else if ((int32_t)rg[gi] > b) {
                        rg[gi] = (uint8_t)b;
                    }
                }
            }
        }
    }
}

/* Pass 1: each range = the min/max of its stripe x group (UNSIGNED: max; SYMMETRIC: max |v|), NHWC order. */
OCTO_SGQ_NOINLINE static void max_ranges(const sgq_geom_t *geo, const int8_t *q, const uint8_t *gmap, int32_t mode, uint8_t *ranges) {
    const uint32_t n_ranges = geom_ranges(geo);
    const uint32_t c = geo->c; /* locals: the byte stores below may alias anything */
    const uint32_t pixels = geo->n * geo->h * geo->w;
    if (mode == OCTO_SGQ_RANGE_ASYMMETRIC) {
        for (uint32_t r = 0; r < n_ranges; r++) {
            ranges[2u * r] = (uint8_t)(int8_t)127;      /* lo starts high */
            ranges[2u * r + 1u] = (uint8_t)(int8_t)-128; /* hi starts low */
        }
    } else {
        memset(ranges, 0, n_ranges);
    }
    sgq_walk_t wk;
    walk_start(&wk, geo);
    for (uint32_t px = 0; px < pixels; px++, walk_next(&wk)) {
        const int8_t *v = &q[(size_t)px * c];
        const uint32_t rbase = walk_rbase(&wk);
        if (mode == OCTO_SGQ_RANGE_ASYMMETRIC) {
            for (uint32_t ch = 0; ch < c; ch++) {
                uint8_t *rp = &ranges[2u * (rbase + gmap[ch])];
                if (v[ch] < (int8_t)rp[0]) {
                    rp[0] = (uint8_t)v[ch];
                }
                if (v[ch] > (int8_t)rp[1]) {
                    rp[1] = (uint8_t)v[ch];
                }
            }
        } else {
            for (uint32_t ch = 0; ch < c; ch++) {
                const int32_t x = v[ch];
                const uint8_t a = (uint8_t)(x < 0 ? (x == -128 ? 127 : -x) : x); /* SYMMETRIC: |clamped v| */
                uint8_t *rp = &ranges[rbase + gmap[ch]];
                if (a > *rp) {
                    *rp = a;
                }
            }
        }
    }
}

/* Everything pass 2 (codes) needs. */
typedef struct {
    const sgq_geom_t *geo;
    const int8_t *q;
    const uint8_t *ranges;
    int32_t mode;
    uint32_t levels;
    const uint8_t *gmap;
    sgq_entry_t *entries;
    uint8_t *dst;
    int stochastic;
    uint32_t rng;
    sgq_rce_t *rce; /* the range coder (encode_codes_rc) */
} sgq_code_job_t;

/* Pass 2, with `bits`, `clipped` and `rc` constants at each call site (so shifts and the word test fold,
 * and unclipped ranges, which hold every value, skip the clamps). rc: the codes go to the range coder,
 * which gives up (job->rce->full) as soon as its stream is not shorter than the fixed-width codes. */
static OCTO_SGQ_INLINE void encode_codes(sgq_code_job_t *job, const uint32_t bits, const int clipped, const int rc) {
    const sgq_geom_t *geo = job->geo;
    const int sym = job->mode == OCTO_SGQ_RANGE_SYMMETRIC;
    const uint32_t levels = job->levels;
    const uint32_t c = geo->c;
    const uint32_t pixels = geo->n * geo->h * geo->w;
    /* locals, not job fields: the byte stores below may alias anything */
    const uint8_t *const gmap = job->gmap;
    const sgq_entry_t *const entries = job->entries;
    const int stochastic = job->stochastic;
    uint8_t *wp = job->dst;
    uint32_t acc = 0, nbits = 0, rng = job->rng;
    uint32_t cached = UINT32_MAX;
    sgq_walk_t wk;
    walk_start(&wk, geo);
    /* the range coder's state as a local (it lives in registers), written back at the end */
    sgq_rce_t rcs = rc ? *job->rce : (sgq_rce_t){0};
    sgq_rce_t *const rce = &rcs;
    for (uint32_t px = 0; px < pixels; px++, walk_next(&wk)) {
        const int8_t *v = &job->q[(size_t)px * c];
        const uint32_t rbase = walk_rbase(&wk);
        if (rc && rce->full) {
            break;
        }
        if (rbase != cached) {
            load_entries(job->entries, job->ranges, job->mode, rbase, geo->g, levels, 0);
            cached = rbase;
        }
        for (uint32_t ch = 0; ch < c; ch++) {
            const sgq_entry_t e = entries[gmap[ch]];
            if (e.mul == 0u) {
                continue;
            }
            const uint32_t r = stochastic ? prng_next(&rng) >> 16 : 0x8000u;
            const int32_t x = v[ch];
            uint32_t code;
            if (sym) {
                const uint32_t a = (uint32_t)(x < 0 ? (x == -128 ? 127 : -x) : x);
                uint32_t mag = (a * e.mul + r) >> 16;
                if (clipped) {
                    mag = mag > levels ? levels : mag; /* above a clipped range: the top level */
                }
                code = x < 0 ? levels - mag : levels + mag;
            } else {
                const int32_t off = x - e.lo; /* < 0 only below a clipped ASYMMETRIC range: level 0 */
                code = !clipped || off > 0 ? ((uint32_t)off * e.mul + r) >> 16 : 0u;
                code = code > levels ? levels : code;
            }
            if (rc) {
                rce_code(rce, code, bits);
                continue;
            }
            acc |= code << nbits;
            nbits += bits;
            if (nbits == 32u) { /* 32 % bits == 0: a code never straddles words */
                wp[0] = (uint8_t)acc;
                wp[1] = (uint8_t)(acc >> 8);
                wp[2] = (uint8_t)(acc >> 16);
                wp[3] = (uint8_t)(acc >> 24);
                wp += 4;
                acc = 0;
                nbits = 0;
            }
        }
    }
    if (rc) {
        *job->rce = rcs;
        return;
    }
    for (uint32_t k = 0; k < nbits; k += 8u) {
        *wp++ = (uint8_t)(acc >> k);
    }
}

/* One out-of-line instance per (bits, clipped): each loop is compiled on its own, as tight as it gets. */
OCTO_SGQ_NOINLINE static void encode_codes_2(sgq_code_job_t *job) { encode_codes(job, 2u, 0, 0); }
OCTO_SGQ_NOINLINE static void encode_codes_4(sgq_code_job_t *job) { encode_codes(job, 4u, 0, 0); }
OCTO_SGQ_NOINLINE static void encode_codes_8(sgq_code_job_t *job) { encode_codes(job, 8u, 0, 0); }
OCTO_SGQ_NOINLINE static void encode_codes_c(sgq_code_job_t *job, uint32_t bits) { encode_codes(job, bits, 1, 0); }
OCTO_SGQ_NOINLINE static void encode_codes_rc4(sgq_code_job_t *job) { encode_codes(job, 4u, 0, 1); }
OCTO_SGQ_NOINLINE static void encode_codes_rc(sgq_code_job_t *job, uint32_t bits, int clipped) {
    if (clipped) {
        encode_codes(job, bits, 1, 1);
    } else {
        encode_codes(job, bits, 0, 1);
    }
}

/* Range-code the codes into dst[0 .. limit) (limit = the fixed-width length - 1): the stream's length,
 * or 0 if it would not fit (then nothing usable is in dst). */
static size_t encode_codes_range_coded(sgq_code_job_t *job, uint32_t bits, int clipped, uint16_t *probs, size_t limit) {
    if (limit < 4u) {
        return 0u;
    }
    sgq_rce_t e = {job->dst, job->dst, job->dst + (limit - 4u), 0u, 0xFFFFFFFFu, probs, 0};
    rc_probs_init(probs, bits);
    job->rce = &e;
    if (bits == 4u && !clipped) {
        encode_codes_rc4(job);
    } else {
        encode_codes_rc(job, bits, clipped);
    }
    if (e.full) {
        return 0u;
    }
    for (uint32_t k = 0; k < 4u; k++) {
        *e.p++ = (uint8_t)(e.low >> (24u - 8u * k));
    }
    return (size_t)(e.p - e.start);
}

int octo_sgq_encode(const octo_sgq_tensor_t *in, const octo_sgq_params_t *params, const octo_sgq_ctx_t *ctx,
                    uint8_t *dst, size_t cap, size_t *out_len) {
    uint64_t elems64;
    if (in == NULL || in->data == NULL || params == NULL || dst == NULL || out_len == NULL ||
        !dims_ok(&in->dims, &elems64) || !params_ok(&in->dims, params) || !scale_bits_ok(float_bits(in->scale))) {
        return OCTO_E_ARG;
    }
    sgq_scratch_t s;
    int st = scratch_split(ctx, in->dims.c, params->groups, &s);
    if (st != OCTO_OK) {
        return st;
    }
    const uint32_t elems = (uint32_t)elems64;
    const uint32_t g = (uint32_t)params->groups;
    const uint32_t bits = (uint32_t)params->bits;
    sgq_geom_t geo;
    geom_init(&geo, &in->dims, g, (uint32_t)params->stripe_h, (uint32_t)params->stripe_w, (uint32_t)params->shared);
    const int8_t *q = in->data;

    /* pass 0: range mode, channel statistics, group map */
    int32_t mode = params->range_mode;
    const int sym = mode == OCTO_SGQ_RANGE_SYMMETRIC;
    const uint32_t pixels = elems / geo.c;
    const int ranked = params->group_map == NULL && g > 1u;
    int32_t vmin = 0;
    if (ranked || mode == OCTO_SGQ_RANGE_AUTO || mode == OCTO_SGQ_RANGE_UNSIGNED) {
        vmin = channel_stats(q, pixels, geo.c, sym, ranked ? s.gmap : NULL);
    }
    if (mode == OCTO_SGQ_RANGE_AUTO) {
        mode = vmin >= 0 ? OCTO_SGQ_RANGE_UNSIGNED : OCTO_SGQ_RANGE_ASYMMETRIC;
    } else if (mode == OCTO_SGQ_RANGE_UNSIGNED && vmin < 0) {
        return OCTO_E_ARG;
    }
    if (params->group_map != NULL) {
        memcpy(s.gmap, params->group_map, geo.c);
    } else if (g == 1u) {
        memset(s.gmap, 0, geo.c);
    } else {
        const int interleaved = params->grouping == OCTO_SGQ_GROUP_INTERLEAVED ||
                                (params->grouping == OCTO_SGQ_GROUP_AUTO && sym && bits == 2u);
        group_by_rank(s.gmap, geo.c, g, interleaved, s.hist);
    }
    memset(s.gsize, 0, g * sizeof s.gsize[0]);
    for (uint32_t ch = 0; ch < geo.c; ch++) {
        if (s.gmap[ch] >= g) {
            return OCTO_E_ARG; /* only a caller's group_map can do this */
        }
        s.gsize[s.gmap[ch]]++;
    }
    for (uint32_t gi = 0; gi < g; gi++) {
        if (s.gsize[gi] == 0u) {
            return OCTO_E_ARG;
        }
    }

    /* header and group map */
    const uint32_t mb = map_bits((int32_t)g);
    const uint32_t map_len = ceil_div(geo.c * mb, 8u);
    const uint32_t n_ranges = geom_ranges(&geo);
    const uint32_t ranges_len = n_ranges * (mode == OCTO_SGQ_RANGE_ASYMMETRIC ? 2u : 1u);
    const size_t head_len = (size_t)OCTO_SGQ_HEADER_LEN + map_len + ranges_len;
    if (cap < head_len) {
        return OCTO_E_BUF;
    }
    dst[0] = (uint8_t)OCTO_SGQ_MAGIC;
    dst[1] = (uint8_t)OCTO_SGQ_FORMAT_VERSION;
    dst[2] = (uint8_t)((uint32_t)bits_code(params->bits) | ((uint32_t)mode << 2) | ((uint32_t)params->shared << 4));
    dst[3] = (uint8_t)g;
    put_u16(&dst[4], geo.n);
    put_u16(&dst[6], geo.h);
    put_u16(&dst[8], geo.w);
    put_u16(&dst[10], geo.c);
    dst[12] = (uint8_t)geo.sh;
    dst[13] = (uint8_t)geo.sw;
    const uint32_t sb = float_bits(in->scale);
    dst[14] = (uint8_t)sb;
    dst[15] = (uint8_t)(sb >> 8);
    dst[16] = (uint8_t)(sb >> 16);
    dst[17] = (uint8_t)(sb >> 24);
    if (mb != 0u) {
        sgq_bitw_t bw = {&dst[OCTO_SGQ_HEADER_LEN], 0u, 0u};
        for (uint32_t ch = 0; ch < geo.c; ch++) {
            bitw_put(&bw, s.gmap[ch], mb);
        }
        bitw_flush(&bw);
    }

    /* pass 1: ranges, accumulated in place */
    uint8_t *ranges = &dst[OCTO_SGQ_HEADER_LEN + map_len];
    if (params->clip != 0) {
        clip_ranges(&geo, q, s.gmap, mode, (uint32_t)params->clip, ranges, s.acc);
    } else {
        max_ranges(&geo, q, s.gmap, mode, ranges);
    }

    /* exact length */
    const uint32_t count = coded_count(&geo, ranges, mode, s.gsize);
    const size_t total = head_len + ceil_div(count, 8u / bits);
    if (cap < total) {
        return OCTO_E_BUF;
    }

    /* pass 2: codes, range-coded if asked and shorter, else (or then) fixed width */
    const uint32_t levels = sym ? (1u << (bits - 1u)) - 1u : (1u << bits) - 1u;
    sgq_code_job_t job = {&geo, q, ranges, mode, levels, s.gmap, s.entries, &dst[head_len],
                          params->rounding == OCTO_SGQ_ROUND_STOCHASTIC, prng_seed(params->seed), NULL};
    const int clipped = params->clip != 0;
    if (params->entropy && count > 0u) {
        const size_t rc_len = encode_codes_range_coded(&job, bits, clipped, s.probs, total - head_len - 1u);
        if (rc_len != 0u) {
            dst[1] = (uint8_t)OCTO_SGQ_FORMAT_VERSION_RC;
            dst[2] |= (uint8_t)OCTO_SGQ_MODE_RC;
            *out_len = head_len + rc_len;
            return OCTO_OK;
        }
        /* the fixed-width pass below starts from job.rng again: the same stochastic rounding */
    }
    if (clipped) {
        encode_codes_c(&job, bits);
    } else if (bits == 2u) {
        encode_codes_2(&job);
    } else if (bits == 4u) {
        encode_codes_4(&job);
    } else {
        encode_codes_8(&job);
    }
    *out_len = total;
    return OCTO_OK;
}

/* --- decoder --------------------------------------------------------------------------------------- */

int octo_sgq_parse_header(const uint8_t *src, size_t len, octo_sgq_info_t *info) {
    if (src == NULL || info == NULL) {
        return OCTO_E_ARG;
    }
    if (len < OCTO_SGQ_HEADER_LEN) {
        return OCTO_SGQ_E_SHORT;
    }
    if (src[0] != OCTO_SGQ_MAGIC) {
        return OCTO_SGQ_E_MAGIC;
    }
    if (src[1] != OCTO_SGQ_FORMAT_VERSION && src[1] != OCTO_SGQ_FORMAT_VERSION_RC) {
        return OCTO_SGQ_E_VERSION;
    }
    const uint32_t reserved = src[1] == OCTO_SGQ_FORMAT_VERSION_RC ? 0xC0u : 0xE0u;
    const uint32_t mode_byte = src[2];
    const uint32_t bc = mode_byte & 3u;
    const uint32_t mode = (mode_byte >> 2) & 3u;
    const uint32_t g = src[3];
    const uint32_t n = get_u16(&src[4]), h = get_u16(&src[6]), w = get_u16(&src[8]), c = get_u16(&src[10]);
    const uint32_t sh = src[12], sw = src[13];
    const uint32_t sb = (uint32_t)src[14] | ((uint32_t)src[15] << 8) | ((uint32_t)src[16] << 16) |
                        ((uint32_t)src[17] << 24);
    if ((mode_byte & reserved) != 0u || bc == 3u || mode == 3u || n == 0u || h == 0u || w == 0u || c == 0u ||
        g < 1u || g > c || sh < 1u || sh > h || sw < 1u || sw > w || !scale_bits_ok(sb)) {
        return OCTO_SGQ_E_HEADER;
    }
    const uint64_t elems = (uint64_t)n * h * w * c;
    if (elems > OCTO_SGQ_MAX_ELEMS) {
        return OCTO_SGQ_E_SHAPE;
    }
    info->version = (int32_t)src[1];
    info->bits = 2 << bc;
    info->range_mode = (int32_t)mode;
    info->shared = (int32_t)((mode_byte >> 4) & 1u);
    info->entropy = (int32_t)((mode_byte >> 5) & 1u);
    info->groups = (int32_t)g;
    info->stripe_h = (int32_t)sh;
    info->stripe_w = (int32_t)sw;
    info->dims.n = (int32_t)n;
    info->dims.h = (int32_t)h;
    info->dims.w = (int32_t)w;
    info->dims.c = (int32_t)c;
    info->scale = bits_float(sb);
    info->elems = (uint32_t)elems;
    info->map_len = ceil_div(c * map_bits((int32_t)g), 8u);
    sgq_geom_t geo;
    geom_init(&geo, &info->dims, g, sh, sw, (uint32_t)info->shared);
    info->n_ranges = geom_ranges(&geo);
    info->ranges_len = info->n_ranges * (mode == OCTO_SGQ_RANGE_ASYMMETRIC ? 2u : 1u);
    info->head_len = OCTO_SGQ_HEADER_LEN + info->map_len + info->ranges_len;
    return OCTO_OK;
}

/* Everything the code pass of the decoder needs. */
typedef struct {
    const sgq_geom_t *geo;
    const uint8_t *ranges;
    int32_t mode;
    const uint8_t *gmap;
    sgq_entry_t *entries;
    const uint8_t *codes, *end; /* the code section */
    int8_t *out;
    uint16_t *probs;
} sgq_decode_job_t;

/* The decoder's code pass; `rc` is a constant at each call site, so the fixed-width loop carries no
 * range-coder branch. Returns OCTO_OK, _LENGTH (range coder: bytes missing or left over) or _CODE. */
static OCTO_SGQ_INLINE int decode_codes(const sgq_decode_job_t *job, const uint32_t bits, const int rc) {
    const sgq_geom_t *geo = job->geo;
    const int32_t mode = job->mode;
    const int sym = mode == OCTO_SGQ_RANGE_SYMMETRIC;
    const uint32_t levels = sym ? (1u << (bits - 1u)) - 1u : (1u << bits) - 1u;
    const uint32_t c = geo->c;
    const uint8_t *const gmap = job->gmap;
    sgq_entry_t *const entries = job->entries;
    sgq_bitr_t br = {job->codes, job->end, 0u, 0u};
    sgq_rcd_t rd = {job->codes, job->end, 0u, 0xFFFFFFFFu, job->probs, 0};
    if (rc) { /* the caller checked that the stream has its 4 first bytes */
        const uint8_t *c0 = job->codes;
        rd.code = ((uint32_t)c0[0] << 24) | ((uint32_t)c0[1] << 16) | ((uint32_t)c0[2] << 8) | c0[3];
        rd.p = c0 + 4;
        rc_probs_init(job->probs, bits);
    }
    uint32_t cached = UINT32_MAX;
    sgq_walk_t wk;
    walk_start(&wk, geo);
    const uint32_t pixels = geo->n * geo->h * geo->w;
    for (uint32_t px = 0; px < pixels; px++, walk_next(&wk)) {
        int8_t *o = &job->out[(size_t)px * c];
        const uint32_t rbase = walk_rbase(&wk);
        if (rbase != cached) {
            load_entries(entries, job->ranges, mode, rbase, geo->g, levels, 1);
            cached = rbase;
        }
        for (uint32_t ch = 0; ch < c; ch++) {
            const sgq_entry_t *e = &entries[gmap[ch]];
            if (e->mul == 0u) {
                o[ch] = (int8_t)e->lo;
                continue;
            }
            uint32_t code;
            if (rc) {
                code = rcd_code(&rd, bits);
                if (rd.short_read) {
                    return OCTO_SGQ_E_LENGTH;
                }
            } else {
                code = bitr_get(&br, bits);
            }
            if (sym) {
                if (code > 2u * levels) {
                    return OCTO_SGQ_E_CODE;
                }
                const int32_t mag = (int32_t)((((code >= levels ? code - levels : levels - code) * e->mul) + 0x8000u) >> 16);
                o[ch] = (int8_t)(code >= levels ? mag : -mag);
            } else {
                o[ch] = (int8_t)(e->lo + (int32_t)((code * e->mul + 0x8000u) >> 16));
            }
        }
    }
    if (rc) {
        if (rd.p != rd.end) {
            return OCTO_SGQ_E_LENGTH; /* bytes after the stream */
        }
        if (rd.code != 0u) {
            return OCTO_SGQ_E_CODE; /* the stream does not end on the encoder's final interval */
        }
    } else if (br.acc != 0u) { /* padding bits after the last code (the length check left no whole bytes) */
        return OCTO_SGQ_E_CODE;
    }
    return OCTO_OK;
}

OCTO_SGQ_NOINLINE static int decode_codes_fixed(const sgq_decode_job_t *job, uint32_t bits) {
    return decode_codes(job, bits, 0);
}
OCTO_SGQ_NOINLINE static int decode_codes_rc(const sgq_decode_job_t *job, uint32_t bits) {
    return decode_codes(job, bits, 1);
}

int octo_sgq_decode(const uint8_t *src, size_t len, const octo_sgq_ctx_t *ctx, int8_t *out, size_t out_cap,
                    octo_sgq_info_t *info) {
    if (src == NULL || out == NULL || info == NULL || ctx == NULL || ctx->buf == NULL ||
        ((uintptr_t)ctx->buf & 3u) != 0) {
        return OCTO_E_ARG;
    }
    int st = octo_sgq_parse_header(src, len, info);
    if (st != OCTO_OK) {
        return st;
    }
    if (out_cap < info->elems) {
        return OCTO_E_BUF;
    }
    sgq_scratch_t s;
    st = scratch_split(ctx, info->dims.c, info->groups, &s);
    if (st != OCTO_OK) {
        return st;
    }
    if (len < info->head_len) {
        return OCTO_SGQ_E_LENGTH;
    }
    const uint32_t g = (uint32_t)info->groups;
    const uint32_t c = (uint32_t)info->dims.c;
    const uint32_t bits = (uint32_t)info->bits;
    const int32_t mode = info->range_mode;

    /* group map */
    memset(s.gsize, 0, g * sizeof s.gsize[0]);
    const uint32_t mb = map_bits((int32_t)g);
    if (mb == 0u) {
        memset(s.gmap, 0, c);
        s.gsize[0] = (uint16_t)c;
    } else {
        sgq_bitr_t br = {&src[OCTO_SGQ_HEADER_LEN], &src[OCTO_SGQ_HEADER_LEN + info->map_len], 0u, 0u};
        for (uint32_t ch = 0; ch < c; ch++) {
            const uint32_t id = bitr_get(&br, mb);
            if (id >= g) {
                return OCTO_SGQ_E_GROUPS;
            }
            s.gmap[ch] = (uint8_t)id;
            s.gsize[id]++;
        }
        if (br.acc != 0u) { /* padding bits of the last byte (map_len is exactly the bytes read) */
            return OCTO_SGQ_E_GROUPS;
        }
        for (uint32_t gi = 0; gi < g; gi++) {
            if (s.gsize[gi] == 0u) {
                return OCTO_SGQ_E_GROUPS;
            }
        }
    }

    /* ranges */
    const uint8_t *ranges = &src[OCTO_SGQ_HEADER_LEN + info->map_len];
    for (uint32_t r = 0; r < info->n_ranges; r++) {
        if (mode == OCTO_SGQ_RANGE_ASYMMETRIC ? (int8_t)ranges[2u * r] > (int8_t)ranges[2u * r + 1u]
                                              : ranges[r] > 127u) {
            return OCTO_SGQ_E_RANGE;
        }
    }

    /* exact length */
    sgq_geom_t geo;
    geom_init(&geo, &info->dims, g, (uint32_t)info->stripe_h, (uint32_t)info->stripe_w, (uint32_t)info->shared);
    const uint32_t count = coded_count(&geo, ranges, mode, s.gsize);
    const int rc = info->entropy != 0;
    if (rc ? len - info->head_len < 4u : len - info->head_len != ceil_div(count, 8u / bits)) {
        return OCTO_SGQ_E_LENGTH;
    }

    /* codes */
    sgq_decode_job_t job = {&geo, ranges, mode, s.gmap, s.entries, src + info->head_len, src + len, out, s.probs};
    return rc ? decode_codes_rc(&job, bits) : decode_codes_fixed(&job, bits);
}

const char *octo_sgq_status_name(int status) {
    switch (status) {
    case OCTO_SGQ_E_SHORT: return "OCTO_SGQ_E_SHORT";
    case OCTO_SGQ_E_MAGIC: return "OCTO_SGQ_E_MAGIC";
    case OCTO_SGQ_E_VERSION: return "OCTO_SGQ_E_VERSION";
    case OCTO_SGQ_E_HEADER: return "OCTO_SGQ_E_HEADER";
    case OCTO_SGQ_E_SHAPE: return "OCTO_SGQ_E_SHAPE";
    case OCTO_SGQ_E_LENGTH: return "OCTO_SGQ_E_LENGTH";
    case OCTO_SGQ_E_GROUPS: return "OCTO_SGQ_E_GROUPS";
    case OCTO_SGQ_E_RANGE: return "OCTO_SGQ_E_RANGE";
    case OCTO_SGQ_E_CODE: return "OCTO_SGQ_E_CODE";
    default: return octo_status_name(status);
    }
}
