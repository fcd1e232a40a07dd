/* fuzz_frame.c - seeded fuzzing of the frame decoder and the protocol engine.
 *
 *   fuzz_frame [iterations [seed]]     (defaults: 200000, 1)
 *
 * Each iteration builds a frame, damages it one of several ways (bit flips,
 * truncation, insertions, deletions, length/version/type edits, garbage runs,
 * over-long runs, splices) and feeds the bytes both to a bare
 * octo_frame_decoder and to an octo_proto engine (max payload 512). Then a
 * delimiter and a fresh valid request follow, which must come out intact:
 * the decoder returns it, the engine answers it. Checked on every byte:
 *   - octo_frame_decoder_push returns exactly what an independent reference
 *     (bitwise CRC, run-by-run COBS, written here) expects: 0, 1 with the
 *     same fields and payload, or the same documented link error;
 *   - a returned frame lies inside the receive buffer;
 *   - octo_proto_feed never fails, its counters match the bare decoder's
 *     verdicts, it sends exactly one frame per frame or link error, and
 *     every byte it sends decodes as a valid frame.
 * Built with ASan/UBSan, so memory errors abort. Prints failures, then one
 * summary line "fuzz: ..." with counts per verdict; exit 0 only if clean.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "octo/octo_frame.h"
#include "octo/octo_proto.h"

#define MAXP 512u
#define RX_CAP OCTO_PROTO_RX_LEN(MAXP)
#define WORK_CAP 4096u

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

/* ------------------------------------------------------------ reference */

static uint32_t ref_crc32(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) {
            c = (c & 1u) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
        }
    }
    return ~c;
}

/* Bytes seen since the last delimiter, as the decoder should see them. */
typedef struct {
    uint8_t enc[RX_CAP];
    size_t n;       /* bytes since the delimiter (may exceed RX_CAP) */
    uint8_t raw[RX_CAP];
    size_t raw_len; /* decoded bytes after a verdict of 1 */
} shadow_t;

/* What octo_frame_decoder_push must return for this byte. */
static int ref_push(shadow_t *s, uint8_t byte) {
    if (byte != 0) {
        if (s->n < RX_CAP) {
            s->enc[s->n] = byte;
        }
        s->n++;
        return 0;
    }
    size_t n = s->n;
    s->n = 0;
    if (n == 0) {
        return 0;
    }
    if (n > RX_CAP) {
        return OCTO_E_FRAME_TOO_LONG;
    }
    size_t r = 0;
    size_t w = 0;
    while (r < n) {
        size_t run = (size_t)s->enc[r++] - 1u; /* never a zero: zeros end frames */
        if (run > n - r) {
            return OCTO_E_COBS;
        }
        memcpy(&s->raw[w], &s->enc[r], run);
        w += run;
        r += run;
        if (run < 254 && r < n) {
            s->raw[w++] = 0;
        }
    }
    s->raw_len = w;
    if (w < OCTO_FRAME_OVERHEAD) {
        return OCTO_E_FRAME_SHORT;
    }
    size_t plen = (size_t)s->raw[4] | ((size_t)s->raw[5] << 8);
    if (plen + OCTO_FRAME_OVERHEAD != w) {
        return OCTO_E_FRAME_LENGTH;
    }
    const uint8_t *c = &s->raw[OCTO_FRAME_HEADER_LEN + plen];
    uint32_t want = (uint32_t)c[0] | ((uint32_t)c[1] << 8) | ((uint32_t)c[2] << 16) | ((uint32_t)c[3] << 24);
    return ref_crc32(s->raw, OCTO_FRAME_HEADER_LEN + plen) == want ? 1 : OCTO_E_CRC;
}

/* Push one byte to the decoder under test and compare with the reference. */
static int push_checked(octo_frame_decoder_t *dec, shadow_t *s, uint8_t byte, octo_frame_t *f, unsigned long it) {
    int r = octo_frame_decoder_push(dec, byte, f);
    int want = ref_push(s, byte);
    if (r != want) {
        fail(it, "decoder verdict differs from the reference", r, want);
        return r;
    }
    if (r == 1) {
        const uint8_t *buf = dec->buf;
        const uint8_t *end = buf + dec->cap;
        if (f->payload < buf + OCTO_FRAME_HEADER_LEN || f->payload > end || f->len > (size_t)(end - f->payload)) {
            fail(it, "frame payload outside the receive buffer", (long)(f->payload - buf), (long)f->len);
        } else if (f->version != s->raw[0] || f->type != s->raw[1] || f->req_id != octo_get_u16(&s->raw[2]) ||
                   (size_t)f->len + OCTO_FRAME_OVERHEAD != s->raw_len ||
                   memcmp(f->payload, &s->raw[OCTO_FRAME_HEADER_LEN], f->len) != 0 ||
                   f->crc != ref_crc32(s->raw, OCTO_FRAME_HEADER_LEN + f->len)) {
            fail(it, "decoded frame differs from the reference", (long)f->len, (long)s->raw_len);
        }
    }
    return r;
}

/* ------------------------------------------------------------- building */

static size_t build_raw(uint8_t *raw, uint8_t version, uint8_t type, uint16_t id, uint16_t len_field,
                        const uint8_t *payload, size_t len, int good_crc) {
    raw[0] = version;
    raw[1] = type;
    octo_put_u16(&raw[2], id);
    octo_put_u16(&raw[4], len_field);
    memcpy(&raw[6], payload, len);
    uint32_t crc = octo_crc32(0, raw, 6 + len);
    octo_put_u32(&raw[6 + len], good_crc ? crc : crc ^ (1u << below(32)));
    return 6 + len + 4;
}

/* COBS + delimiter. */
static size_t wire_from_raw(const uint8_t *raw, size_t n, uint8_t *wire, size_t cap) {
    size_t out = 0;
    if (octo_cobs_encode(raw, n, wire, cap - 1, &out) != OCTO_OK) {
        printf("FAIL: internal COBS encode\n");
        exit(2);
    }
    wire[out++] = 0;
    return out;
}

static void random_payload(uint8_t *p, size_t n) {
    uint32_t shape = below(4);
    for (size_t i = 0; i < n; i++) {
        switch (shape) {
        case 0: p[i] = (uint8_t)rnd(); break;
        case 1: p[i] = below(4) == 0 ? 0 : (uint8_t)rnd(); break;
        case 2: p[i] = (uint8_t)(1 + below(255)); break;
        default: p[i] = 0; break;
        }
    }
}

static size_t random_len(void) {
    switch (below(4)) {
    case 0: return below(16);
    case 1: return 240 + below(30);
    case 2: return MAXP - 8 + below(24); /* around the engine's limit */
    default: return below(MAXP + 100);
    }
}

typedef enum {
    M_NONE, M_BITFLIP, M_TRUNCATE, M_INSERT, M_DELETE, M_LENGTH, M_VERSION_TYPE, M_GARBAGE, M_OVERLONG,
    M_ZERO_SPLIT, M_SPLICE, M_COUNT
} mutation_t;

/* A damaged byte stream in work[]; returns its length. */
static size_t make_input(uint8_t *work, unsigned *mutation) {
    static uint8_t payload[MAXP + 128];
    static uint8_t raw[MAXP + 160];
    size_t len = random_len();
    random_payload(payload, len);
    uint8_t type = below(4) == 0 ? (uint8_t)rnd() : (uint8_t)OCTO_MSG_PING;
    uint16_t id = (uint16_t)rnd();
    *mutation = below(M_COUNT);
    size_t rl;
    switch (*mutation) {
    case M_LENGTH: {
        static const int deltas[] = {-1, 1, -256, 256, 2, -2};
        uint16_t field = (uint16_t)((int)len + deltas[below(6)]);
        if (below(3) == 0) {
            field = (uint16_t)rnd();
        }
        rl = build_raw(raw, OCTO_PROTO_VERSION, type, id, field, payload, len, (int)below(2));
        return wire_from_raw(raw, rl, work, WORK_CAP);
    }
    case M_VERSION_TYPE:
        rl = build_raw(raw, (uint8_t)rnd(), (uint8_t)rnd(), below(8) == 0 ? 0 : id, (uint16_t)len, payload, len, 1);
        return wire_from_raw(raw, rl, work, WORK_CAP);
    case M_GARBAGE: {
        size_t n = 1 + below(300);
        for (size_t i = 0; i < n; i++) {
            work[i] = below(8) == 0 ? 0 : (uint8_t)rnd();
        }
        return n;
    }
    case M_OVERLONG: {
        size_t n = RX_CAP + 1 + below(600);
        for (size_t i = 0; i < n; i++) {
            work[i] = (uint8_t)(1 + below(255));
        }
        work[n] = 0;
        return n + 1;
    }
    default:
        break;
    }
    rl = build_raw(raw, OCTO_PROTO_VERSION, type, id, (uint16_t)len, payload, len, 1);
    size_t n = wire_from_raw(raw, rl, work, WORK_CAP);
    switch (*mutation) {
    case M_BITFLIP:
        for (uint32_t k = 1 + below(4); k > 0; k--) {
            work[below((uint32_t)n)] ^= (uint8_t)(1u << below(8));
        }
        break;
    case M_TRUNCATE:
        n = below((uint32_t)n); /* the delimiter goes too: the next frame is glued on */
        break;
    case M_INSERT:
        for (uint32_t k = 1 + below(8); k > 0 && n < WORK_CAP; k--) {
            size_t at = below((uint32_t)n + 1);
            memmove(&work[at + 1], &work[at], n - at);
            work[at] = (uint8_t)rnd();
            n++;
        }
        break;
    case M_DELETE:
        for (uint32_t k = 1 + below(4); k > 0 && n > 0; k--) {
            size_t at = below((uint32_t)n);
            memmove(&work[at], &work[at + 1], n - at - 1);
            n--;
        }
        break;
    case M_ZERO_SPLIT:
        work[below((uint32_t)n)] = 0;
        break;
    case M_SPLICE: {
        /* the first part of this frame, then the tail of another one */
        size_t keep = below((uint32_t)n);
        size_t olen = random_len();
        random_payload(payload, olen);
        rl = build_raw(raw, OCTO_PROTO_VERSION, OCTO_MSG_PING, (uint16_t)rnd(), (uint16_t)olen, payload, olen, 1);
        static uint8_t other[2 * MAXP + 200];
        size_t on = wire_from_raw(raw, rl, other, sizeof other);
        size_t from = below((uint32_t)on);
        memcpy(&work[keep], &other[from], on - from);
        n = keep + on - from;
        break;
    }
    default:
        break;
    }
    return n;
}

/* --------------------------------------------------------------- engine */

typedef struct {
    octo_frame_decoder_t dec; /* decodes everything the engine sends */
    uint8_t buf[OCTO_PROTO_RX_LEN(MAXP) + 16];
    octo_frame_t last;
    uint8_t last_payload[MAXP];
    unsigned long frames;
    unsigned long bad;
} out_check_t;

static int check_write(void *ctx, const uint8_t *data, size_t n) {
    out_check_t *oc = ctx;
    for (size_t i = 0; i < n; i++) {
        octo_frame_t f;
        int r = octo_frame_decoder_push(&oc->dec, data[i], &f);
        if (r < 0) {
            oc->bad++;
        } else if (r == 1) {
            oc->frames++;
            oc->last = f;
            memcpy(oc->last_payload, f.payload, f.len <= MAXP ? f.len : MAXP);
            int is_error = f.type == OCTO_MSG_ERROR;
            if (is_error && (f.len < 4 || (int16_t)octo_get_u16(f.payload) >= 0 ||
                             (int16_t)octo_get_u16(f.payload) < OCTO_E_DIVERGED)) {
                oc->bad++;
            }
            if (!is_error && f.type != OCTO_MSG_TELEMETRY && (f.type & OCTO_MSG_RESPONSE_BIT) == 0) {
                oc->bad++;
            }
        }
    }
    return OCTO_OK;
}

static int h_echo(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len) {
    (void)p;
    if (req->len > cap) {
        return OCTO_E_BUF;
    }
    memcpy(resp, req->payload, req->len);
    *resp_len = req->len;
    return OCTO_OK;
}

static int h_fail(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len) {
    (void)p;
    (void)resp;
    (void)cap;
    (void)resp_len;
    return req->len % 2 ? OCTO_E_PAYLOAD : OCTO_E_STATE;
}

static const octo_handler_t k_handlers[] = {{OCTO_MSG_HELLO, h_echo}, {OCTO_MSG_PING, h_echo}, {0x05, h_fail}};

/* ----------------------------------------------------------------- main */

static int is_link_error(int r) {
    return r == OCTO_E_COBS || r == OCTO_E_FRAME_TOO_LONG || r == OCTO_E_FRAME_SHORT || r == OCTO_E_FRAME_LENGTH ||
           r == OCTO_E_CRC;
}

int main(int argc, char **argv) {
    unsigned long iterations = argc > 1 ? strtoul(argv[1], NULL, 10) : 200000ul;
    unsigned long long seed = argc > 2 ? strtoull(argv[2], NULL, 10) : 1ull;
    g_rng = 0x2545F4914F6CDD1Du ^ (uint64_t)seed;
    if (g_rng == 0) {
        g_rng = 1;
    }

    static uint8_t rx[RX_CAP];
    octo_frame_decoder_t dec;
    static uint8_t e_rx[OCTO_PROTO_RX_LEN(MAXP)];
    static uint8_t e_tx[OCTO_PROTO_TX_LEN(MAXP)];
    static uint8_t e_payload[MAXP];
    static uint8_t e_event[OCTO_PROTO_TX_LEN(OCTO_MAX_EVENT_PAYLOAD)];
    static out_check_t oc;
    octo_proto_t p;
    const octo_proto_buffers_t mem = {e_rx, sizeof e_rx, e_tx, sizeof e_tx, e_payload, sizeof e_payload,
                                      e_event, sizeof e_event};
    if (octo_frame_decoder_init(&dec, rx, sizeof rx) != OCTO_OK ||
        octo_frame_decoder_init(&oc.dec, oc.buf, sizeof oc.buf) != OCTO_OK ||
        octo_proto_init(&p, &mem, MAXP, k_handlers, sizeof k_handlers / sizeof k_handlers[0], check_write, &oc,
                        NULL) != OCTO_OK) {
        printf("FAIL: init\n");
        return 1;
    }

    static shadow_t shadow;
    static uint8_t work[WORK_CAP + 8];
    static uint8_t good_payload[MAXP];
    static uint8_t good_raw[MAXP + 16];
    static uint8_t good[2 * MAXP + 32];
    unsigned long verdicts[16] = {0}; /* index -status for errors, 0 for frames */
    unsigned long by_mutation[M_COUNT] = {0};
    unsigned long long bytes_fed = 0;
    unsigned long delivered = 0;
    unsigned long answered = 0;
    uint16_t next_id = 1;

    for (unsigned long it = 0; it < iterations; it++) {
        unsigned mutation = 0;
        size_t n = make_input(work, &mutation);
        by_mutation[mutation]++;

        /* 1. bare decoder */
        unsigned long frames_before = verdicts[0];
        unsigned long crc_before = verdicts[-OCTO_E_CRC];
        unsigned long errors_before = 0;
        for (int k = 1; k < 16; k++) {
            errors_before += verdicts[k];
        }
        for (size_t i = 0; i < n; i++) {
            octo_frame_t f;
            int r = push_checked(&dec, &shadow, work[i], &f, it);
            if (r == 1) {
                verdicts[0]++;
            } else if (is_link_error(r)) {
                verdicts[-r]++;
            } else if (r != 0) {
                fail(it, "decoder returned an undocumented value", r, (long)mutation);
            }
        }

        /* 2. engine, same bytes: counters agree with the bare decoder */
        octo_link_stats_t before = p.stats;
        unsigned long sent_before = oc.frames;
        int handled = octo_proto_feed(&p, work, n);
        bytes_fed += n;
        if (handled < 0) {
            fail(it, "octo_proto_feed failed", handled, (long)mutation);
        }
        unsigned long errors_after = 0;
        for (int k = 1; k < 16; k++) {
            errors_after += verdicts[k];
        }
        if (p.stats.rx_frames - before.rx_frames != verdicts[0] - frames_before ||
            p.stats.rx_errors - before.rx_errors != errors_after - errors_before ||
            (unsigned long)handled != verdicts[0] - frames_before) {
            fail(it, "engine and bare decoder disagree", (long)(p.stats.rx_frames - before.rx_frames),
                 (long)(verdicts[0] - frames_before));
        }
        if (oc.frames - sent_before != (verdicts[0] - frames_before) + (errors_after - errors_before)) {
            fail(it, "engine did not answer every frame and every link error once",
                 (long)(oc.frames - sent_before), (long)(verdicts[0] - frames_before));
        }
        if (p.stats.rx_crc_errors - before.rx_crc_errors != verdicts[-OCTO_E_CRC] - crc_before) {
            fail(it, "rx_crc_errors disagrees with the CRC verdicts", (long)p.stats.rx_crc_errors, 0);
        }
        if (p.stats.rx_bytes != (uint32_t)bytes_fed) {
            fail(it, "rx_bytes does not count every byte", (long)p.stats.rx_bytes, (long)bytes_fed);
        }

        /* 3. a delimiter and a valid request: both must get it through */
        size_t glen = below(64);
        random_payload(good_payload, glen);
        uint16_t id = next_id;
        next_id = (uint16_t)(next_id == 0xFFFFu ? 1 : next_id + 1);
        good[0] = 0;
        size_t rl = build_raw(good_raw, OCTO_PROTO_VERSION, OCTO_MSG_PING, id, (uint16_t)glen, good_payload, glen, 1);
        size_t gn = 1 + wire_from_raw(good_raw, rl, good + 1, sizeof good - 1);
        int got = 0;
        for (size_t i = 0; i < gn; i++) {
            octo_frame_t f;
            int r = push_checked(&dec, &shadow, good[i], &f, it);
            if (i == 0) {
                if (r == 1) {
                    verdicts[0]++;
                } else if (is_link_error(r)) {
                    verdicts[-r]++;
                }
                continue; /* ends whatever the damaged input left behind */
            }
            if (r == 1 && i + 1 == gn && f.req_id == id && f.len == glen && memcmp(f.payload, good_payload, glen) == 0) {
                got = 1;
            } else if (r != 0) {
                fail(it, "injected frame not decoded cleanly", r, (long)i);
            }
        }
        delivered += (unsigned long)got;
        if (!got) {
            fail(it, "injected frame lost by the decoder", (long)mutation, 0);
        }
        unsigned long out_before = oc.frames;
        int h = octo_proto_feed(&p, good, gn);
        bytes_fed += gn;
        if (h < 1 || oc.frames == out_before || oc.last.type != (OCTO_MSG_PING | OCTO_MSG_RESPONSE_BIT) ||
            oc.last.req_id != id || oc.last.len != glen || memcmp(oc.last_payload, good_payload, glen) != 0) {
            fail(it, "injected request not answered by the engine", h, (long)mutation);
        } else {
            answered++;
        }
    }
    if (oc.bad != 0) {
        fail(iterations, "engine sent malformed frames", (long)oc.bad, 0);
    }

    printf("fuzz: iterations=%lu bytes=%llu frames=%lu cobs=%lu crc=%lu short=%lu length=%lu too_long=%lu "
           "delivered=%lu answered=%lu executed=%lu duplicates=%lu sent=%lu failures=%lu\n",
           iterations, bytes_fed, verdicts[0], verdicts[-OCTO_E_COBS], verdicts[-OCTO_E_CRC],
           verdicts[-OCTO_E_FRAME_SHORT], verdicts[-OCTO_E_FRAME_LENGTH], verdicts[-OCTO_E_FRAME_TOO_LONG], delivered,
           answered, (unsigned long)p.stats.executed, (unsigned long)p.stats.duplicates, oc.frames, g_failures);
    for (unsigned m = 0; m < M_COUNT; m++) {
        if (by_mutation[m] == 0 && iterations >= 1000) {
            fail(iterations, "a mutation kind never ran", (long)m, 0);
        }
    }
    return g_failures == 0 ? 0 : 1;
}
