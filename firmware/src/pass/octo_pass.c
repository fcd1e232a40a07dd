/* octo_pass.c - PASS: patch-skipping execution of a chain over video frames
 * (semantics in octo_pass.h).
 *
 * Per frame and layer:
 *  1. gated layers: mark the candidate patches in gate_map (a pixel of the patch
 *     was recomputed upstream; layer 0: every patch), run the gate (or, in EXACT
 *     mode, a byte compare) on each candidate, copy the changed ones into E and
 *     leave gate_map = the changed patches;
 *  2. the output mask: output pixel (oy, ox) is dirty iff its receptive field
 *     (clipped to the image) meets a changed input pixel - a changed patch of
 *     gate_map, or a pixel of the previous layer's out_mask. Per output row the
 *     window's map rows form a band; its changed columns, found four at a time
 *     (one word load per band row), each dirty an interval of output columns
 *     given by the stride, padding and filter width; the intervals merge into
 *     runs. Cost: (map columns x band rows) / 4 word loads per output row plus
 *     O(1) per changed column;
 *  3. the dirty pixels of each output row, as horizontal runs, are recomputed
 *     with the box kernels (the input being E for gated layers).
 * Dense frames skip 1-2: E = input, gate_map all 1, every mask 1, full kernels.
 *
 * The model is checked at every frame (O(layers)): every pointer the frame
 * touches, batch 1, the dims chain, strides, filters and padding such that each
 * output window meets the image, and sizes that keep every index in int32.
 */
#include <string.h>

#include "octo/octo_avgpool_s8.h"
#include "octo/octo_conv_s8.h"
#include "octo/octo_dsp.h"
#include "octo/octo_maxpool_s8.h"
#include "octo/octo_pass.h"
#include "octo/octo_qmath.h"

#define PASS_DIM_MAX 65535          /* any height, width, channel count, filter side or stride */
#define PASS_ROW_MAX (1L << 24)     /* w*c: a gate row's sum of |d| (<= 255 each) fits uint32 */
#define PASS_TENSOR_MAX 0x7fffffffL /* h*w*c: byte offsets fit int32 */

/* A layer's receptive-field geometry (both pools and CONV). */
typedef struct {
    int32_t sh, sw; /* strides */
    int32_t ph, pw; /* top / left padding */
    int32_t kh, kw; /* window */
} pass_rf_t;

void octo_pass_reset(octo_pass_state_t *st) {
    if (st != NULL) {
        st->valid = 0;
        st->frames = 0;
    }
}

/* -- model checks ---------------------------------------------------------------------------------------- */

static int dims_ok(const octo_dims_t *d) {
    return d != NULL && d->n == 1 && d->h >= 1 && d->w >= 1 && d->c >= 1 && d->h <= PASS_DIM_MAX &&
           d->w <= PASS_DIM_MAX && d->c <= PASS_DIM_MAX && (int64_t)d->w * d->c <= PASS_ROW_MAX &&
           (int64_t)d->h * d->w * d->c <= PASS_TENSOR_MAX;
}

static int dims_equal(const octo_dims_t *a, const octo_dims_t *b) {
    return a->n == b->n && a->h == b->h && a->w == b->w && a->c == b->c;
}

/* One axis: window k, stride s, leading padding pad; every output position's window
 * [o*s - pad, o*s - pad + k) meets [0, in): the first because pad < k, the last
 * because it starts at most at in - 1 (so the box kernels never see an all-padding
 * window, and o*s stays small). */
static int axis_ok(int32_t in, int32_t out, int32_t k, int32_t s, int32_t pad) {
    return k >= 1 && k <= PASS_DIM_MAX && s >= 1 && s <= PASS_DIM_MAX && pad >= 0 && pad < k &&
           (int64_t)(out - 1) * s - pad <= (int64_t)in - 1;
}

static int64_t tensor_bytes(const octo_dims_t *d) { return (int64_t)d->h * d->w * d->c; }

/* Checks one layer (not its link to the previous one) and fills its geometry. */
static int layer_ok(const octo_pass_layer_t *L, pass_rf_t *rf) {
    if (!dims_ok(L->in_dims) || !dims_ok(L->out_dims) || L->in == NULL || L->out == NULL || L->out_mask == NULL ||
        L->params == NULL) {
        return 0;
    }
    if (L->gate != NULL && (L->cache == NULL || L->gate_map == NULL || L->gate->patch < 1 || L->gate->sample < 1)) {
        return 0;
    }
    const octo_dims_t *in = L->in_dims, *out = L->out_dims;
    if (L->kind == OCTO_PASS_CONV) {
        const octo_conv_params_t *p = (const octo_conv_params_t *)L->params;
        const octo_dims_t *f = L->filter_dims;
        if (L->rq == NULL || L->rq->multiplier == NULL || L->rq->shift == NULL || f == NULL || L->wpack == NULL ||
            L->bias_full == NULL || L->scratch == NULL) {
            return 0;
        }
        if (f->n != out->c || f->c != in->c || f->h < 1 || f->w < 1 || f->h > PASS_DIM_MAX || f->w > PASS_DIM_MAX ||
            (int64_t)f->h * f->w * f->c > PASS_ROW_MAX || p->dilation_h != 1 || p->dilation_w != 1) {
            return 0;
        }
        rf->sh = p->stride_h;
        rf->sw = p->stride_w;
        rf->ph = p->pad_h;
        rf->pw = p->pad_w;
        rf->kh = f->h;
        rf->kw = f->w;
    } else if (L->kind == OCTO_PASS_MAXPOOL || L->kind == OCTO_PASS_AVGPOOL) {
        const octo_pool_params_t *p = (const octo_pool_params_t *)L->params;
        if (out->c != in->c) {
            return 0;
        }
        rf->sh = p->stride_h;
        rf->sw = p->stride_w;
        rf->ph = p->pad_h;
        rf->pw = p->pad_w;
        rf->kh = p->filter_h;
        rf->kw = p->filter_w;
    } else {
        return 0;
    }
    return axis_ok(in->h, out->h, rf->kh, rf->sh, rf->ph) && axis_ok(in->w, out->w, rf->kw, rf->sw, rf->pw);
}

static int model_ok(const octo_pass_model_t *m, uint32_t mode) {
    if (m == NULL || m->layers == NULL || m->n_layers < 1 || m->input == NULL || m->output == NULL ||
        mode > OCTO_PASS_EXACT) {
        return 0;
    }
    for (uint32_t i = 0; i < m->n_layers; i++) {
        const octo_pass_layer_t *L = &m->layers[i];
        pass_rf_t rf;
        if (!layer_ok(L, &rf)) {
            return 0;
        }
        if (i == 0) {
            if (L->in != m->input || tensor_bytes(L->in_dims) != (int64_t)m->input_bytes) {
                return 0;
            }
        } else {
            const octo_pass_layer_t *prev = &m->layers[i - 1];
            if (L->in != prev->out || !dims_equal(L->in_dims, prev->out_dims)) {
                return 0;
            }
        }
    }
    const octo_pass_layer_t *last = &m->layers[m->n_layers - 1];
    return m->output == last->out && tensor_bytes(last->out_dims) == (int64_t)m->output_bytes;
}

/* -- gates ----------------------------------------------------------------------------------------------- */

/* Index of the first nonzero byte of r[x..end), or end. */
static int32_t next_nonzero(const uint8_t *r, int32_t x, int32_t end) {
    while (x < end) {
        if (x + 4 <= end && octo_read_u32(&r[x]) == 0u) {
            x += 4;
        } else if (r[x] != 0u) {
            return x;
        } else {
            x++;
        }
    }
    return end;
}

/* gate_map[k] = 1 iff patch k holds a pixel set in the H x W mask. */
static void mark_candidates(const uint8_t *mask, int32_t H, int32_t W, int32_t P, int32_t npw, uint8_t *gate_map) {
    for (int32_t py = 0, y0 = 0; y0 < H; py++, y0 += P) {
        uint8_t *g = &gate_map[py * npw];
        memset(g, 0, (size_t)npw);
        const int32_t y1 = H - y0 < P ? H : y0 + P;
        for (int32_t y = y0; y < y1; y++) {
            const uint8_t *r = &mask[y * W];
            for (int32_t x = next_nonzero(r, 0, W); x < W; x = next_nonzero(r, x, W)) {
                const int32_t px = x / P;
                g[px] = 1u;
                x = (px + 1) * P; /* the rest of this patch's row is decided */
            }
        }
    }
}

/* s += |a - b|, m = max(m, |a - b|). */
static OCTO_ALWAYS_INLINE void sad_byte(int8_t a, int8_t b, uint32_t *s, uint32_t *m) {
    const int32_t d = (int32_t)a - (int32_t)b;
    const uint32_t ad = (uint32_t)(d < 0 ? -d : d);
    *s += ad;
    *m = ad > *m ? ad : *m;
}

/* Sum and max of |a - b| over a patch: `rows` rows `row_step` bytes apart, each `cols` runs of `n` bytes
 * `col_step` apart. A row has at most PASS_ROW_MAX bytes, so its sum (255 per byte at most) fits uint32.
 * DSP: per word, the bytes biased to unsigned (x ^ 0x80 keeps every difference), USADA8 adds the four
 * |d|, USUB8 + SEL form them for a bytewise running max reduced once at the end. */
__attribute__((noinline)) static void sad_max(const int8_t *a, const int8_t *b, int32_t rows, int32_t row_step,
                                              int32_t cols, int32_t col_step, int32_t n, uint64_t *sum,
                                              uint32_t *mx) {
    uint64_t total = 0;
    uint32_t m = 0;
#if OCTO_HAVE_DSP
    uint32_t m4 = 0;
#endif
    for (int32_t r = 0; r < rows; r++, a += row_step, b += row_step) {
        uint32_t s = 0;
        const int8_t *pa = a, *pb = b;
        if (n < 4) { /* few channels at sampled pixels: no word loop */
            for (int32_t j = 0; j < cols; j++, pa += col_step, pb += col_step) {
                for (int32_t k = 0; k < n; k++) {
                    sad_byte(pa[k], pb[k], &s, &m);
                }
            }
            total += s;
            continue;
        }
        for (int32_t j = 0; j < cols; j++, pa += col_step, pb += col_step) {
            int32_t k = 0;
#if OCTO_HAVE_DSP
            for (; k + 4 <= n; k += 4) {
                const uint32_t ua = octo_read_u32(&pa[k]) ^ 0x80808080u, ub = octo_read_u32(&pb[k]) ^ 0x80808080u;
                uint32_t d, t;
                __asm("usada8 %[s], %[ua], %[ub], %[s]\n\t"
                      "usub8 %[t], %[ub], %[ua]\n\t"
                      "usub8 %[d], %[ua], %[ub]\n\t" /* GE: ua >= ub */
                      "sel %[d], %[d], %[t]\n\t"     /* |ua - ub| per byte */
                      "usub8 %[t], %[d], %[m]\n\t"   /* GE: d >= m4 */
                      "sel %[m], %[d], %[m]"
                      : [s] "+r"(s), [m] "+r"(m4), [d] "=&r"(d), [t] "=&r"(t)
                      : [ua] "r"(ua), [ub] "r"(ub)
                      : "cc");
            }
#endif
            for (; k < n; k++) {
                sad_byte(pa[k], pb[k], &s, &m);
            }
        }
        total += s;
    }
#if OCTO_HAVE_DSP
    uint32_t t;
    __asm("usub8 %[t], %[m], %[h]\n\t" /* max of bytes 0,1 vs 2,3 */
          "sel %[m], %[m], %[h]"
          : [m] "+r"(m4), [t] "=&r"(t)
          : [h] "r"(m4 >> 16)
          : "cc");
    __asm("usub8 %[t], %[m], %[h]\n\t" /* byte 0 vs byte 1 */
          "sel %[m], %[m], %[h]"
          : [m] "+r"(m4), [t] "=&r"(t)
          : [h] "r"(m4 >> 8)
          : "cc");
    m = (m4 & 0xFFu) > m ? (m4 & 0xFFu) : m;
#endif
    *sum = total;
    *mx = m;
}

/* First sampled row (column) of a patch `size` pixels high (wide) at grid offset `off`: off, clipped to the
 * patch's last pixel (octo_pass.h). */
static OCTO_ALWAYS_INLINE int32_t grid_start(int32_t off, int32_t size) { return off < size - 1 ? off : size - 1; }

/* The gate's verdict from the statistics of n sampled elements (octo_pass.h formula). */
static OCTO_ALWAYS_INLINE int gate_says(const octo_pass_gate_t *gt, uint64_t sum, uint32_t mx, uint32_t n) {
    if (mx == 0u) {
        return 0;
    }
    const uint64_t s8 = sum * 256u;
    const int64_t mean_q8 = (int64_t)(s8 <= 0xFFFFFFFFu ? (uint32_t)s8 / n : s8 / n); /* 32-bit divide if it can */
    const int64_t max_q8 = (int64_t)mx * 256;
    return (int64_t)gt->a_mean * mean_q8 + (int64_t)gt->a_max * max_q8 > gt->threshold;
}

/* The learned gate on patch rows [y0, y1) x columns [x0, x1) (octo_pass.h formula).
 * Returns changed; *elements = n. */
static int gate_patch(const octo_pass_gate_t *gt, const int8_t *cur, const int8_t *E, int32_t W, int32_t C,
                      int32_t y0, int32_t y1, int32_t x0, int32_t x1, int32_t oy, int32_t ox, uint32_t *elements) {
    const int32_t S = gt->sample;
    y0 += grid_start(oy, y1 - y0);
    x0 += grid_start(ox, x1 - x0);
    const int32_t rows = (y1 - y0 + S - 1) / S, cols = (x1 - x0 + S - 1) / S;
    const int32_t off = (y0 * W + x0) * C;
    uint64_t sum;
    uint32_t mx;
    if (S == 1) {
        sad_max(&cur[off], &E[off], rows, W * C, 1, 0, (x1 - x0) * C, &sum, &mx);
    } else {
        sad_max(&cur[off], &E[off], rows, S * W * C, cols, S * C, C, &sum, &mx);
    }
    const uint32_t n = (uint32_t)rows * (uint32_t)cols * (uint32_t)C;
    *elements = n;
    return gate_says(gt, sum, mx, n);
}

#define PASS_BAND_MAX 64 /* patches per band for gate_band */

/* One sampled row of a band: sum[px] and mx[px] gain |cur - E| over the sampled pixels x0 + first + k*S
 * (k < cnt) of each of the n patches P pixels apart, C channels each (a constant where inlined with one).
 * Every patch of the band is read, candidate or not: cheaper than testing, and only candidates get a verdict. */
static OCTO_ALWAYS_INLINE void band_row(const int8_t *a, const int8_t *b, int32_t C, int32_t n, int32_t P,
                                        int32_t S, int32_t cnt, uint32_t *sum, uint8_t *mx) {
    for (int32_t px = 0; px < n; px++, a += P * C, b += P * C) {
        uint32_t sr = sum[px], m = mx[px];
        for (int32_t k = 0, x = 0; k < cnt; k++, x += S * C) {
            for (int32_t c = 0; c < C; c++) {
                sad_byte(a[x + c], b[x + c], &sr, &m);
            }
        }
        sum[px] = sr;
        mx[px] = (uint8_t)m;
    }
}

__attribute__((noinline)) static void band_row_c1(const int8_t *a, const int8_t *b, int32_t n, int32_t P, int32_t S,
                                                  int32_t cnt, uint32_t *sum, uint8_t *mx) {
    band_row(a, b, 1, n, P, S, cnt, sum, mx);
}

__attribute__((noinline)) static void band_row_cn(const int8_t *a, const int8_t *b, int32_t C, int32_t n, int32_t P,
                                                  int32_t S, int32_t cnt, uint32_t *sum, uint8_t *mx) {
    band_row(a, b, C, n, P, S, cnt, sum, mx);
}

/* The gates of the candidate patches (g[px] != 0) of band [y0, y1) in one pass over its sampled rows, for
 * inputs with few channels (an image at layer 0): there a patch samples only a handful of bytes and a call
 * per patch would cost more than its reads. Same integers as gate_patch; g[px] = the verdict. Needs
 * npw <= PASS_BAND_MAX and P * P * C * 255 < 2^32 (the sums are 32-bit). Returns the elements read. */
__attribute__((noinline)) static uint32_t gate_band(const octo_pass_gate_t *gt, const int8_t *cur, const int8_t *E,
                                                    int32_t W, int32_t C, int32_t P, int32_t y0, int32_t y1,
                                                    int32_t oy, int32_t ox, uint8_t *g, int32_t npw) {
    const int32_t S = gt->sample, h = y1 - y0;
    const int32_t ry = y0 + grid_start(oy, h), rows = (y1 - ry + S - 1) / S;
    /* columns: a full patch samples x0 + f + k*S, k < cnt; the last one, wl wide, x0 + fl + k*S, k < cntl */
    const int32_t wl = W - (npw - 1) * P, f = grid_start(ox, P), fl = grid_start(ox, wl);
    const int32_t cnt = (P - f + S - 1) / S, cntl = (wl - fl + S - 1) / S;
    uint32_t sum[PASS_BAND_MAX];
    uint8_t mx[PASS_BAND_MAX];
    memset(sum, 0, sizeof sum[0] * (size_t)npw);
    memset(mx, 0, (size_t)npw);
    for (int32_t r = 0; r < rows; r++) {
        const int32_t row = (ry + r * S) * W * C;
        const int8_t *a = &cur[row], *b = &E[row];
        if (C == 1) {
            band_row_c1(&a[f], &b[f], npw - 1, P, S, cnt, sum, mx);
        } else {
            band_row_cn(&a[f * C], &b[f * C], C, npw - 1, P, S, cnt, sum, mx);
        }
        const int32_t xl = ((npw - 1) * P + fl) * C;
        band_row_cn(&a[xl], &b[xl], C, 1, P, S, cntl, &sum[npw - 1], &mx[npw - 1]);
    }
    const uint32_t n_full = (uint32_t)(rows * cnt * C), n_last = (uint32_t)(rows * cntl * C);
    uint32_t elements = 0;
    for (int32_t px = 0; px < npw; px++) {
        if (g[px] == 0u) {
            continue;
        }
        const uint32_t n = px == npw - 1 ? n_last : n_full;
        elements += n;
        g[px] = (uint8_t)gate_says(gt, sum[px], mx[px], n);
    }
    return elements;
}

/* Whether n bytes differ (a word at a time). */
static int bytes_differ(const int8_t *a, const int8_t *b, int32_t n) {
    int32_t k = 0;
    for (; k + 4 <= n; k += 4) {
        if (octo_read_u32(&a[k]) != octo_read_u32(&b[k])) {
            return 1;
        }
    }
    for (; k < n; k++) {
        if (a[k] != b[k]) {
            return 1;
        }
    }
    return 0;
}

/* EXACT mode: any byte of the patch differs. *elements = bytes of the rows compared. */
static int patch_differs(const int8_t *cur, const int8_t *E, int32_t W, int32_t C, int32_t y0, int32_t y1,
                         int32_t x0, int32_t x1, uint32_t *elements) {
    const int32_t len = (x1 - x0) * C;
    uint32_t n = 0;
    int differs = 0;
    for (int32_t y = y0; y < y1 && !differs; y++) {
        const int32_t off = (y * W + x0) * C;
        differs = bytes_differ(&cur[off], &E[off], len);
        n += (uint32_t)len;
    }
    *elements = n;
    return differs;
}

/* Step 1 of a non-dense frame on a gated layer: gate_map = changed patches, E updated.
 * in_mask: the previous layer's out_mask, NULL for layer 0 (every patch a candidate). */
__attribute__((noinline)) static void run_gates(const octo_pass_layer_t *L, const uint8_t *in_mask, uint32_t mode,
                                                uint32_t frame, octo_pass_layer_stats_t *s) {
    const int32_t H = L->in_dims->h, W = L->in_dims->w, C = L->in_dims->c, P = L->gate->patch;
    const uint32_t S = L->gate->sample, phase = frame % (S * S);
    const int32_t oy = (int32_t)(phase / S), ox = (int32_t)(phase % S);
    const int32_t nph = (H + P - 1) / P, npw = (W + P - 1) / P;
    if (in_mask == NULL) {
        memset(L->gate_map, 1, (size_t)(nph * npw));
    } else {
        mark_candidates(in_mask, H, W, P, npw, L->gate_map);
    }
    const int banded = mode != OCTO_PASS_EXACT && C < 4 && npw <= PASS_BAND_MAX && (int64_t)P * P * C <= (1L << 24);
    for (int32_t py = 0; py < nph; py++) {
        const int32_t y0 = py * P, y1 = H - y0 < P ? H : y0 + P;
        uint8_t *g = &L->gate_map[py * npw];
        if (banded) { /* the whole band's verdicts at once, then only the copies below */
            for (int32_t px = 0; px < npw; px++) {
                s->patches_checked += g[px] != 0u;
            }
            s->gate_elements += gate_band(L->gate, L->in, L->cache, W, C, P, y0, y1, oy, ox, g, npw);
        }
        for (int32_t px = 0; px < npw; px++) {
            if (g[px] == 0u) {
                continue;
            }
            const int32_t x0 = px * P, x1 = W - x0 < P ? W : x0 + P;
            int changed = 1;
            if (!banded) {
                uint32_t n;
                changed = mode == OCTO_PASS_EXACT
                              ? patch_differs(L->in, L->cache, W, C, y0, y1, x0, x1, &n)
                              : gate_patch(L->gate, L->in, L->cache, W, C, y0, y1, x0, x1, oy, ox, &n);
                s->patches_checked++;
                s->gate_elements += n;
            }
            if (changed) {
                const size_t len = (size_t)((x1 - x0) * C);
                for (int32_t y = y0; y < y1; y++) {
                    memcpy(&L->cache[(y * W + x0) * C], &L->in[(y * W + x0) * C], len);
                }
                s->patches_changed++;
            }
            g[px] = (uint8_t)(changed != 0);
        }
    }
}

/* -- output mask and recomputation ----------------------------------------------------------------------- */

/* First column >= c of map rows [r0, r1) (row length mw) with a nonzero byte, or mw. */
static int32_t next_hit(const uint8_t *map, int32_t mw, int32_t r0, int32_t r1, int32_t c) {
    while (c < mw) {
        if (c + 4 <= mw) {
            uint32_t word = 0;
            for (int32_t r = r0; r < r1; r++) {
                word |= octo_read_u32(&map[r * mw + c]);
            }
            if (word == 0u) {
                c += 4;
                continue;
            }
        }
        for (int32_t r = r0; r < r1; r++) {
            if (map[r * mw + c] != 0u) {
                return c;
            }
        }
        c++;
    }
    return mw;
}

/* Recomputes output pixels [ox0, ox1) of row oy from src. */
static int run_kernel(const octo_pass_layer_t *L, const int8_t *src, int32_t oy, int32_t ox0, int32_t ox1) {
    if (L->kind == OCTO_PASS_CONV) {
        return octo_conv_s8_packed_box((const octo_conv_params_t *)L->params, L->rq, L->in_dims, src, L->filter_dims,
                                       L->wpack, L->bias_full, L->scratch, L->out_dims, L->out, oy, oy + 1, ox0, ox1);
    }
    if (L->kind == OCTO_PASS_MAXPOOL) {
        return octo_maxpool_s8_box((const octo_pool_params_t *)L->params, L->in_dims, src, L->out_dims, L->out, oy,
                                   oy + 1, ox0, ox1);
    }
    return octo_avgpool_s8_box((const octo_pool_params_t *)L->params, L->in_dims, src, L->out_dims, L->out, oy,
                               oy + 1, ox0, ox1);
}

static int run_full(const octo_pass_layer_t *L, const int8_t *src) {
    if (L->kind == OCTO_PASS_CONV) {
        return octo_conv_s8_packed((const octo_conv_params_t *)L->params, L->rq, L->in_dims, src, L->filter_dims,
                                   L->wpack, L->bias_full, L->scratch, L->out_dims, L->out);
    }
    if (L->kind == OCTO_PASS_MAXPOOL) {
        return octo_maxpool_s8((const octo_pool_params_t *)L->params, L->in_dims, src, L->out_dims, L->out);
    }
    return octo_avgpool_s8((const octo_pool_params_t *)L->params, L->in_dims, src, L->out_dims, L->out);
}

/* Marks and recomputes output pixels [ox0, ox1) of row oy. */
static int flush_run(const octo_pass_layer_t *L, const int8_t *src, int32_t oy, int32_t ox0, int32_t ox1,
                     uint32_t *count) {
    memset(&L->out_mask[oy * L->out_dims->w + ox0], 1, (size_t)(ox1 - ox0));
    *count += (uint32_t)(ox1 - ox0);
    return run_kernel(L, src, oy, ox0, ox1);
}

/* Steps 2-3: out_mask from the changed map (cells of P x P input pixels, mw per row: gate_map, or with
 * P = 1 the previous out_mask), then the dirty runs recomputed. Per output row, each changed map column h
 * of the row's band dirties the output columns whose window [ox*sw - pw, +kw) (clipped) meets cell
 * columns [h*P, h*P + P): ox in [floor((h*P + pw - kw) / sw) + 1, floor((h*P + P - 1 + pw) / sw)],
 * intervals that grow with h and merge into runs. */
static int sparse_layer(const octo_pass_layer_t *L, const pass_rf_t *rf, const int8_t *src, const uint8_t *map,
                        int32_t mw, int32_t P, uint32_t *pixels) {
    const int32_t H = L->in_dims->h, OH = L->out_dims->h, OW = L->out_dims->w;
    uint32_t count = 0;
    memset(L->out_mask, 0, (size_t)(OH * OW));
    for (int32_t oy = 0; oy < OH; oy++) {
        int32_t y0 = oy * rf->sh - rf->ph, y1 = y0 + rf->kh;
        y0 = y0 < 0 ? 0 : y0;
        y1 = y1 > H ? H : y1;
        const int32_t r0 = y0 / P, r1 = (y1 - 1) / P + 1; /* the band of map rows (y0 < y1: axis_ok) */
        int32_t run0 = 0, run1 = -1;                      /* the pending run, [run0, run1] */
        for (int32_t h = next_hit(map, mw, r0, r1, 0); h < mw; h = next_hit(map, mw, r0, r1, h + 1)) {
            const int32_t t = h * P + rf->pw - rf->kw;
            const int32_t a = t < 0 ? 0 : t / rf->sw + 1;
            int32_t b = (h * P + P - 1 + rf->pw) / rf->sw;
            b = b > OW - 1 ? OW - 1 : b;
            if (a > b) {
                continue; /* between two windows (stride > window) */
            }
            if (run1 >= 0 && a <= run1 + 1) {
                run1 = b > run1 ? b : run1;
            } else {
                if (run1 >= 0) {
                    const int st = flush_run(L, src, oy, run0, run1 + 1, &count);
                    if (st != OCTO_OK) {
                        return st;
                    }
                }
                run0 = a;
                run1 = b;
            }
            if (run1 == OW - 1) {
                break; /* the rest of the row is dirty */
            }
        }
        if (run1 >= 0) {
            const int st = flush_run(L, src, oy, run0, run1 + 1, &count);
            if (st != OCTO_OK) {
                return st;
            }
        }
    }
    *pixels = count;
    return OCTO_OK;
}

/* -- the frame -------------------------------------------------------------------------------------------- */

static int fail(octo_pass_state_t *st, int status) {
    octo_pass_reset(st);
    return status;
}

int octo_pass_frame(const octo_pass_model_t *m, octo_pass_state_t *st, uint32_t mode,
                    octo_pass_layer_stats_t *stats, uint32_t *was_dense, octo_layer_hook_fn hook, void *ctx) {
    if (st == NULL) {
        return OCTO_E_ARG;
    }
    if (!model_ok(m, mode)) {
        return fail(st, OCTO_E_ARG);
    }
    int dense = !st->valid || mode == OCTO_PASS_DENSE;
    for (uint32_t i = 0; i < m->n_layers; i++) {
        const octo_pass_layer_t *L = &m->layers[i];
        pass_rf_t rf;
        (void)layer_ok(L, &rf); /* checked above: only the geometry */
        octo_pass_layer_stats_t s = {0, 0, 0, 0, 0};
        const uint8_t *in_mask = i == 0 ? NULL : m->layers[i - 1].out_mask;
        const int8_t *src = L->in;
        const int32_t OH = L->out_dims->h, OW = L->out_dims->w;
        int layer_dense = dense;
        if (L->gate != NULL) {
            const int32_t P = L->gate->patch;
            const int32_t nph = (L->in_dims->h + P - 1) / P, npw = (L->in_dims->w + P - 1) / P;
            if (!dense) {
                run_gates(L, in_mask, mode, st->frames, &s);
                const uint64_t patches = (uint64_t)(nph * npw);
                if (i == 0 && (uint64_t)s.patches_changed * 1000u >= (uint64_t)m->cut_permille * patches) {
                    dense = layer_dense = 1; /* scene cut */
                }
            }
            if (dense) {
                memcpy(L->cache, L->in, (size_t)tensor_bytes(L->in_dims));
                memset(L->gate_map, 1, (size_t)(nph * npw));
                s.patches_changed = (uint32_t)(nph * npw);
            }
            src = L->cache;
            if (hook != NULL) {
                hook(ctx, i | OCTO_PASS_HOOK_GATE);
            }
        } else if (in_mask == NULL) {
            layer_dense = 1; /* an ungated first layer sees a whole new frame */
        }
        int status;
        if (layer_dense) {
            memset(L->out_mask, 1, (size_t)(OH * OW));
            s.out_pixels = (uint32_t)(OH * OW);
            status = run_full(L, src);
        } else if (L->gate != NULL) {
            const int32_t P = L->gate->patch;
            status = sparse_layer(L, &rf, src, L->gate_map, (L->in_dims->w + P - 1) / P, P, &s.out_pixels);
        } else {
            status = sparse_layer(L, &rf, src, in_mask, L->in_dims->w, 1, &s.out_pixels);
        }
        if (status != OCTO_OK) {
            return fail(st, status);
        }
        s.macs = (uint64_t)s.out_pixels * (uint64_t)L->out_dims->c * (uint64_t)rf.kh * (uint64_t)rf.kw;
        if (L->kind == OCTO_PASS_CONV) {
            s.macs *= (uint64_t)L->in_dims->c;
        }
        if (stats != NULL) {
            stats[i] = s;
        }
        if (hook != NULL) {
            hook(ctx, i);
        }
    }
    st->valid = 1;
    st->frames++;
    if (was_dense != NULL) {
        *was_dense = (uint32_t)dense;
    }
    return OCTO_OK;
}
