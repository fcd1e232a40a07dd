/* test_frame.c - unit tests of CRC-32, COBS, the frame encoder/decoder and the
 * protocol engine (firmware/src/link).
 *
 * Built natively with ASan/UBSan by tests/python/test_framing_c.py. Prints
 * one line per failed check and finishes with "N passed, N failed"; the exit
 * status is non-zero when any check failed. Buffers whose bounds matter are
 * heap blocks of exactly the advertised size, so ASan sees any overrun.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "octo/octo_frame.h"
#include "octo/octo_proto.h"

/* ---------------------------------------------------------------- checks */

static unsigned g_passed;
static unsigned g_failed;

static void check_at(int ok, int line, const char *fmt, ...) {
    if (ok) {
        g_passed++;
        return;
    }
    g_failed++;
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL test_frame.c:%d: ", line);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

#define CHECK(cond, ...) check_at((cond) != 0, __LINE__, __VA_ARGS__)

/* xorshift64: deterministic test data. */
static uint64_t g_rng = 0x9E3779B97F4A7C15u;

static uint32_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 32);
}

static void fill_random(uint8_t *p, size_t n, int allow_zero) {
    for (size_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)rnd();
        if (!allow_zero) {
            while (b == 0) {
                b = (uint8_t)rnd();
            }
        } else if ((rnd() & 7u) == 0) {
            b = 0; /* make zeros common */
        }
        p[i] = b;
    }
}

static void *xmalloc(size_t n) {
    void *p = malloc(n > 0 ? n : 1);
    if (p == NULL) {
        printf("FAIL: out of memory\n");
        exit(2);
    }
    return p;
}

/* ------------------------------------------------- reference algorithms */

/* Bit-at-a-time CRC-32 (reflected 0xEDB88320), independent of the table code. */
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

/* COBS by runs: emit each run of up to 254 non-zero bytes behind its code
 * byte; a run ended by a zero consumes it; a 254-byte run does not. */
static size_t ref_cobs_encode(const uint8_t *src, size_t len, uint8_t *dst) {
    size_t i = 0;
    size_t w = 0;
    for (;;) {
        size_t run = 0;
        while (i + run < len && run < 254 && src[i + run] != 0) {
            run++;
        }
        dst[w++] = (uint8_t)(run + 1);
        memcpy(&dst[w], &src[i], run);
        w += run;
        i += run;
        if (i == len) {
            return w;
        }
        if (run < 254) {
            i++; /* the zero that ended this run */
        }
    }
}

/* Raw (pre-COBS) frame built field by field, with an optional bad version. */
static size_t build_raw(uint8_t *raw, uint8_t version, uint8_t type, uint16_t req_id, const uint8_t *payload,
                        size_t len) {
    raw[0] = version;
    raw[1] = type;
    raw[2] = (uint8_t)(req_id & 0xFFu);
    raw[3] = (uint8_t)(req_id >> 8);
    raw[4] = (uint8_t)(len & 0xFFu);
    raw[5] = (uint8_t)(len >> 8);
    if (len > 0) {
        memcpy(&raw[6], payload, len);
    }
    uint32_t crc = ref_crc32(raw, 6 + len);
    for (int k = 0; k < 4; k++) {
        raw[6 + len + (size_t)k] = (uint8_t)(crc >> (8 * k));
    }
    return 6 + len + 4;
}

/* COBS + delimiter around raw bytes: wire bytes. */
static size_t wire_from_raw(const uint8_t *raw, size_t raw_len, uint8_t *wire) {
    size_t n = ref_cobs_encode(raw, raw_len, wire);
    wire[n++] = 0;
    return n;
}

#define BIG 5200u
static uint8_t g_src[BIG];
static uint8_t g_enc[BIG + BIG / 254 + 16];
static uint8_t g_ref[BIG + BIG / 254 + 16];
static uint8_t g_dec[BIG + 16];

/* ------------------------------------------------------------------ CRC */

static void test_crc32(void) {
    static const uint8_t check[] = "123456789";
    CHECK(octo_crc32(0, check, 9) == 0xCBF43926u, "crc32(\"123456789\") = 0x%08x", octo_crc32(0, check, 9));
    CHECK(octo_crc32(0, check, 0) == 0, "crc32 of empty input is 0");
    CHECK(octo_crc32(0x12345678u, NULL, 0) == 0x12345678u, "crc32 over NULL keeps the running value");
    static const uint8_t zero = 0;
    CHECK(octo_crc32(0, &zero, 1) == 0xD202EF8Du, "crc32 of one 0x00 byte");
    for (size_t split = 0; split <= 9; split++) {
        uint32_t c = octo_crc32(octo_crc32(0, check, split), check + split, 9 - split);
        CHECK(c == 0xCBF43926u, "running crc32 split at %zu = 0x%08x", split, c);
    }
    fill_random(g_src, 3000, 1);
    for (size_t n = 0; n <= 3000; n += (n < 64 ? 1 : 37)) {
        uint32_t want = ref_crc32(g_src, n);
        CHECK(octo_crc32(0, g_src, n) == want, "crc32 of %zu random bytes matches the bitwise reference", n);
        size_t a = n / 3;
        size_t b = n - n / 5;
        uint32_t c = octo_crc32(octo_crc32(octo_crc32(0, g_src, a), g_src + a, b - a), g_src + b, n - b);
        CHECK(c == want, "three-part running crc32 of %zu bytes", n);
    }
}

/* ----------------------------------------------------------------- COBS */

typedef struct {
    const char *name;
    uint8_t raw[8];
    size_t raw_len;
    uint8_t enc[10];
    size_t enc_len;
} cobs_case_t;

static const cobs_case_t k_cobs_cases[] = {
    {"empty", {0}, 0, {0x01}, 1},
    {"single zero", {0x00}, 1, {0x01, 0x01}, 2},
    {"two zeros", {0x00, 0x00}, 2, {0x01, 0x01, 0x01}, 3},
    {"no zeros", {0x11, 0x22, 0x33}, 3, {0x04, 0x11, 0x22, 0x33}, 4},
    {"zero in the middle", {0x11, 0x00, 0x22}, 3, {0x02, 0x11, 0x02, 0x22}, 4},
    {"zero at start", {0x00, 0x11, 0x22}, 3, {0x01, 0x03, 0x11, 0x22}, 4},
    {"zero at end", {0x11, 0x22, 0x00}, 3, {0x03, 0x11, 0x22, 0x01}, 4},
    {"zeros at both ends", {0x00, 0x11, 0x00}, 3, {0x01, 0x02, 0x11, 0x01}, 4},
    {"single 0xFF", {0xFF}, 1, {0x02, 0xFF}, 2},
};

static void test_cobs_named(void) {
    for (size_t i = 0; i < sizeof k_cobs_cases / sizeof k_cobs_cases[0]; i++) {
        const cobs_case_t *c = &k_cobs_cases[i];
        size_t n = 0;
        int st = octo_cobs_encode(c->raw, c->raw_len, g_enc, sizeof g_enc, &n);
        CHECK(st == OCTO_OK && n == c->enc_len && memcmp(g_enc, c->enc, n) == 0, "cobs encode '%s' (st %d, len %zu)",
              c->name, st, n);
        st = octo_cobs_decode(c->enc, c->enc_len, g_dec, sizeof g_dec, &n);
        CHECK(st == OCTO_OK && n == c->raw_len && memcmp(g_dec, c->raw, n) == 0, "cobs decode '%s' (st %d, len %zu)",
              c->name, st, n);
    }
}

/* Non-zero runs around the 254-byte block limit: exact layout of the output. */
static void test_cobs_block_limit(void) {
    static const struct {
        size_t len;
        size_t enc_len;
        size_t second_code_at; /* index of a second code byte, 0 = none */
        uint8_t second_code;
    } cases[] = {
        {253, 254, 0, 0},    /* one block, code 0xFE */
        {254, 255, 0, 0},    /* one full block, no trailing code byte */
        {255, 257, 255, 2},  /* full block, then a block of one byte */
        {508, 510, 255, 0xFF}, /* two full blocks */
        {509, 512, 510, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = cases[i].len;
        memset(g_src, 0xA5, len);
        size_t n = 0;
        int st = octo_cobs_encode(g_src, len, g_enc, sizeof g_enc, &n);
        CHECK(st == OCTO_OK && n == cases[i].enc_len, "cobs %zu non-zero bytes -> %zu bytes (got st %d, %zu)", len,
              cases[i].enc_len, st, n);
        CHECK(g_enc[0] == (len >= 254 ? 0xFF : (uint8_t)(len + 1)), "cobs %zu non-zero: first code 0x%02x", len,
              g_enc[0]);
        if (cases[i].second_code_at != 0) {
            CHECK(g_enc[cases[i].second_code_at] == cases[i].second_code, "cobs %zu non-zero: code at %zu = 0x%02x",
                  len, cases[i].second_code_at, g_enc[cases[i].second_code_at]);
        }
        CHECK(n <= OCTO_COBS_MAX_LEN(len), "cobs %zu non-zero within OCTO_COBS_MAX_LEN", len);
        /* A zero right after the full block opens two one-byte blocks. */
        g_src[len] = 0;
        st = octo_cobs_encode(g_src, len + 1, g_enc, sizeof g_enc, &n);
        size_t rn = ref_cobs_encode(g_src, len + 1, g_ref);
        CHECK(st == OCTO_OK && n == rn && memcmp(g_enc, g_ref, n) == 0, "cobs %zu non-zero + trailing zero", len);
    }
}

static int has_zero(const uint8_t *p, size_t n) { return memchr(p, 0, n) != NULL; }

/* Lengths 0..1100: byte-identical to the reference, no zeros, bounded size,
 * decodes back, in place too, and one byte less of room is OCTO_E_BUF. */
static void sweep_cobs(int allow_zero) {
    const char *kind = allow_zero ? "random" : "non-zero";
    for (size_t len = 0; len <= 1100; len++) {
        fill_random(g_src, len, allow_zero);
        size_t n = 0;
        int st = octo_cobs_encode(g_src, len, g_enc, sizeof g_enc, &n);
        size_t rn = ref_cobs_encode(g_src, len, g_ref);
        CHECK(st == OCTO_OK && n == rn && memcmp(g_enc, g_ref, n) == 0, "cobs encode %s len %zu matches reference",
              kind, len);
        CHECK(n <= OCTO_COBS_MAX_LEN(len) && !has_zero(g_enc, n), "cobs %s len %zu: size %zu bound and no zero", kind,
              len, n);

        size_t m = 0;
        st = octo_cobs_decode(g_enc, n, g_dec, sizeof g_dec, &m);
        CHECK(st == OCTO_OK && m == len && memcmp(g_dec, g_src, len) == 0, "cobs round trip %s len %zu", kind, len);

        /* Exact-size heap buffers: an overrun is an ASan report. */
        uint8_t *exact = xmalloc(n);
        st = octo_cobs_encode(g_src, len, exact, n, &m);
        CHECK(st == OCTO_OK && m == n, "cobs %s len %zu encodes into exactly %zu bytes", kind, len, n);
        uint8_t *short_dst = xmalloc(n - 1);
        st = octo_cobs_encode(g_src, len, short_dst, n - 1, &m);
        CHECK(st == OCTO_E_BUF, "cobs encode %s len %zu with cap %zu-1: st %d", kind, len, n, st);
        free(short_dst);

        memcpy(exact, g_enc, n);
        st = octo_cobs_decode(exact, n, exact, n, &m);
        CHECK(st == OCTO_OK && m == len && memcmp(exact, g_src, len) == 0, "cobs in-place decode %s len %zu", kind,
              len);
        free(exact);

        if (len > 0) {
            uint8_t *dshort = xmalloc(len - 1);
            st = octo_cobs_decode(g_enc, n, dshort, len - 1, &m);
            CHECK(st == OCTO_E_BUF, "cobs decode %s len %zu with cap len-1: st %d", kind, len, st);
            free(dshort);
        }
    }
}

typedef struct {
    const char *name;
    uint8_t enc[6];
    size_t len;
} bad_cobs_t;

static const bad_cobs_t k_bad_cobs[] = {
    {"zero code byte", {0x00}, 1},
    {"zero code byte after a block", {0x02, 0x11, 0x00}, 3},
    {"zero inside a block", {0x04, 0x11, 0x00, 0x22}, 4},
    {"code past the end", {0x05, 0x11, 0x22}, 3},
    {"code one past the end", {0x04, 0x11, 0x22}, 3},
    {"second code past the end", {0x02, 0x11, 0x04, 0x22}, 4},
    {"0xFF code with nothing after", {0xFF}, 1},
};

static void test_cobs_malformed(void) {
    for (size_t i = 0; i < sizeof k_bad_cobs / sizeof k_bad_cobs[0]; i++) {
        /* An exact-size copy: reading one byte past the input is an ASan error. */
        uint8_t *in = xmalloc(k_bad_cobs[i].len);
        memcpy(in, k_bad_cobs[i].enc, k_bad_cobs[i].len);
        size_t n = 99;
        int st = octo_cobs_decode(in, k_bad_cobs[i].len, g_dec, sizeof g_dec, &n);
        CHECK(st == OCTO_E_COBS, "cobs decode '%s' -> OCTO_E_COBS (got %d)", k_bad_cobs[i].name, st);
        free(in);
    }
    size_t n = 0;
    CHECK(octo_cobs_encode(NULL, 1, g_enc, sizeof g_enc, &n) == OCTO_E_ARG, "cobs encode NULL src");
    CHECK(octo_cobs_encode(g_src, 1, NULL, 4, &n) == OCTO_E_ARG, "cobs encode NULL dst");
    CHECK(octo_cobs_encode(g_src, 1, g_enc, sizeof g_enc, NULL) == OCTO_E_ARG, "cobs encode NULL out_len");
    CHECK(octo_cobs_decode(NULL, 1, g_dec, sizeof g_dec, &n) == OCTO_E_ARG, "cobs decode NULL src");
    CHECK(octo_cobs_decode(g_enc, 1, g_dec, sizeof g_dec, NULL) == OCTO_E_ARG, "cobs decode NULL out_len");
    CHECK(octo_cobs_encode(NULL, 0, g_enc, 1, &n) == OCTO_OK && n == 1 && g_enc[0] == 1, "cobs encode NULL, 0 bytes");
}

/* --------------------------------------------------------- frame encode */

static void test_frame_encode(void) {
    static const size_t lens[] = {0, 1, 2, 243, 244, 245, 253, 254, 255, 256, 498, 507, 508, 509, 1000, 4096, 5000};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        for (int zeros = 0; zeros < 2; zeros++) {
            size_t len = lens[li];
            fill_random(g_src, len, zeros);
            octo_frame_hdr_t hdr = {(uint8_t)(0x40u + li), (uint16_t)(1000u + li)};
            size_t measured = 0;
            int st = octo_frame_encode(&hdr, g_src, len, NULL, 0, &measured);
            CHECK(st == OCTO_OK, "frame measure len %zu: st %d", len, st);
            CHECK(measured <= OCTO_FRAME_WIRE_MAX_LEN(len), "frame len %zu: %zu <= OCTO_FRAME_WIRE_MAX_LEN", len,
                  measured);

            uint8_t *exact = xmalloc(measured);
            size_t n = 0;
            st = octo_frame_encode(&hdr, g_src, len, exact, measured, &n);
            CHECK(st == OCTO_OK && n == measured, "frame len %zu: real encode %zu == measured %zu", len, n, measured);
            static uint8_t raw[BIG + 16];
            size_t raw_len = build_raw(raw, OCTO_PROTO_VERSION, hdr.type, hdr.req_id, g_src, len);
            size_t wn = wire_from_raw(raw, raw_len, g_ref);
            CHECK(wn == n && memcmp(exact, g_ref, n) == 0, "frame len %zu matches the field-by-field reference", len);
            CHECK(exact[n - 1] == 0 && !has_zero(exact, n - 1), "frame len %zu: one delimiter, at the end", len);
            free(exact);

            /* Every cap below the size fails (full sweep for small frames,
             * the caps around each block boundary and the ends otherwise). */
            for (size_t cap = 0; cap < measured; cap++) {
                if (measured > 600 && cap > 8 && cap + 8 < measured && cap % 254 > 3 && cap % 254 < 251) {
                    continue;
                }
                uint8_t *dst = xmalloc(cap);
                st = octo_frame_encode(&hdr, g_src, len, dst, cap, &n);
                CHECK(st == OCTO_E_BUF, "frame len %zu cap %zu: st %d", len, cap, st);
                free(dst);
            }
        }
    }
    octo_frame_hdr_t hdr = {1, 1};
    size_t n = 0;
    uint8_t buf[32];
    CHECK(octo_frame_encode(NULL, g_src, 0, buf, sizeof buf, &n) == OCTO_E_ARG, "frame encode NULL hdr");
    CHECK(octo_frame_encode(&hdr, NULL, 3, buf, sizeof buf, &n) == OCTO_E_ARG, "frame encode NULL payload");
    CHECK(octo_frame_encode(&hdr, g_src, 0, buf, sizeof buf, NULL) == OCTO_E_ARG, "frame encode NULL out_len");
    CHECK(octo_frame_encode(&hdr, g_src, 0, NULL, 5, &n) == OCTO_E_ARG, "frame encode NULL dst with cap");
    CHECK(octo_frame_encode(&hdr, g_src, 0x10000u, NULL, 0, &n) == OCTO_E_ARG, "frame encode 65536-byte payload");
}

/* -------------------------------------------------------- frame decoder */

/* Push bytes; returns the last non-zero result (0 if none) and how many
 * non-zero results there were. */
static int push_all(octo_frame_decoder_t *dec, const uint8_t *p, size_t n, octo_frame_t *f, int *events) {
    int last = 0;
    *events = 0;
    for (size_t i = 0; i < n; i++) {
        int r = octo_frame_decoder_push(dec, p[i], f);
        if (r != 0) {
            last = r;
            (*events)++;
        }
    }
    return last;
}

static void test_decoder_valid(void) {
    static uint8_t rx[OCTO_PROTO_RX_LEN(5000)];
    octo_frame_decoder_t dec;
    CHECK(octo_frame_decoder_init(&dec, rx, sizeof rx) == OCTO_OK, "decoder init");
    static const size_t lens[] = {0, 1, 244, 254, 255, 1000, 5000};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        fill_random(g_src, lens[i], 1);
        octo_frame_hdr_t hdr = {0x02, (uint16_t)(0xFFFFu - i)};
        size_t n = 0;
        int st = octo_frame_encode(&hdr, g_src, lens[i], g_enc, sizeof g_enc, &n);
        CHECK(st == OCTO_OK, "encode for decoder len %zu", lens[i]);
        octo_frame_t f;
        memset(&f, 0, sizeof f);
        int early = 0;
        for (size_t k = 0; k + 1 < n; k++) {
            early |= octo_frame_decoder_push(&dec, g_enc[k], &f) != 0;
        }
        CHECK(!early, "decoder len %zu: nothing before the delimiter", lens[i]);
        int r = octo_frame_decoder_push(&dec, g_enc[n - 1], &f);
        CHECK(r == 1, "decoder len %zu: delimiter completes the frame (got %d)", lens[i], r);
        if (r == 1) {
            CHECK(f.version == OCTO_PROTO_VERSION && f.type == 0x02 && f.req_id == hdr.req_id && f.len == lens[i] &&
                      memcmp(f.payload, g_src, lens[i]) == 0,
                  "decoder len %zu: fields and payload", lens[i]);
            CHECK(f.crc == octo_crc32(0, rx, OCTO_FRAME_HEADER_LEN + lens[i]), "decoder len %zu: crc fingerprint",
                  lens[i]);
        }
    }
    /* Frames of another protocol version are returned; the caller checks. */
    static uint8_t raw[64];
    size_t rl = build_raw(raw, 7, 0x01, 3, (const uint8_t *)"ab", 2);
    size_t wn = wire_from_raw(raw, rl, g_ref);
    octo_frame_t f;
    int events = 0;
    int r = push_all(&dec, g_ref, wn, &f, &events);
    CHECK(r == 1 && events == 1 && f.version == 7, "decoder returns a version-7 frame as is");
    uint8_t tiny[OCTO_COBS_MAX_LEN(OCTO_FRAME_OVERHEAD) - 1];
    CHECK(octo_frame_decoder_init(&dec, tiny, sizeof tiny) == OCTO_E_ARG, "decoder init with a too small buffer");
    CHECK(octo_frame_decoder_init(&dec, NULL, 100) == OCTO_E_ARG, "decoder init with NULL buffer");
    CHECK(octo_frame_decoder_init(NULL, rx, sizeof rx) == OCTO_E_ARG, "decoder init with NULL decoder");
}

typedef enum { CRAFT_COBS, CRAFT_SHORT, CRAFT_LEN_PLUS, CRAFT_LEN_MINUS, CRAFT_CRC, CRAFT_CRC_FIELD } craft_t;

typedef struct {
    const char *name;
    craft_t how;
    size_t len; /* payload bytes; for CRAFT_SHORT the whole raw frame */
    int want;
} bad_frame_t;

static const bad_frame_t k_bad_frames[] = {
    {"code byte past the end", CRAFT_COBS, 4, OCTO_E_COBS},
    {"raw frame of 9 bytes", CRAFT_SHORT, 9, OCTO_E_FRAME_SHORT},
    {"raw frame of 1 byte", CRAFT_SHORT, 1, OCTO_E_FRAME_SHORT},
    {"length field one too big", CRAFT_LEN_PLUS, 5, OCTO_E_FRAME_LENGTH},
    {"length field one too small", CRAFT_LEN_MINUS, 5, OCTO_E_FRAME_LENGTH},
    {"length field 1, no payload", CRAFT_LEN_PLUS, 0, OCTO_E_FRAME_LENGTH},
    {"payload bit flipped", CRAFT_CRC, 16, OCTO_E_CRC},
    {"crc field bit flipped", CRAFT_CRC_FIELD, 0, OCTO_E_CRC},
};

static size_t craft(const bad_frame_t *c, uint8_t *wire) {
    static uint8_t raw[300];
    uint8_t payload[64];
    memset(payload, 0x5A, sizeof payload);
    size_t rl = build_raw(raw, OCTO_PROTO_VERSION, 0x02, 9, payload, c->len);
    switch (c->how) {
    case CRAFT_COBS: {
        size_t n = wire_from_raw(raw, rl, wire);
        wire[0] = (uint8_t)(n + 3); /* first block claims more bytes than the frame has */
        return n;
    }
    case CRAFT_SHORT:
        return wire_from_raw(raw, c->len, wire);
    case CRAFT_LEN_PLUS:
        raw[4]++;
        break;
    case CRAFT_LEN_MINUS:
        raw[4]--;
        break;
    case CRAFT_CRC:
        raw[8] ^= 0x10;
        break;
    case CRAFT_CRC_FIELD:
        raw[rl - 1] ^= 0x80;
        break;
    }
    return wire_from_raw(raw, rl, wire);
}

static void test_decoder_errors(void) {
    static uint8_t rx[OCTO_PROTO_RX_LEN(256)];
    octo_frame_decoder_t dec;
    CHECK(octo_frame_decoder_init(&dec, rx, sizeof rx) == OCTO_OK, "decoder init");
    static uint8_t good[300];
    octo_frame_hdr_t hdr = {0x02, 77};
    size_t good_n = 0;
    CHECK(octo_frame_encode(&hdr, (const uint8_t *)"ok", 2, good, sizeof good, &good_n) == OCTO_OK, "encode good");
    for (size_t i = 0; i < sizeof k_bad_frames / sizeof k_bad_frames[0]; i++) {
        const bad_frame_t *c = &k_bad_frames[i];
        static uint8_t wire[300];
        size_t n = craft(c, wire);
        octo_frame_t f;
        int events = 0;
        int r = push_all(&dec, wire, n, &f, &events);
        CHECK(r == c->want && events == 1, "decoder '%s': %s (got %s, %d events)", c->name,
              octo_status_name(c->want), octo_status_name(r), events);
        r = push_all(&dec, good, good_n, &f, &events);
        CHECK(r == 1 && events == 1 && f.req_id == 77, "decoder recovers after '%s'", c->name);
    }

    /* Receive buffer boundary: exactly cap bytes fit, cap + 1 is too long. */
    size_t cap = sizeof rx;
    static uint8_t payload[300];
    memset(payload, 0x33, sizeof payload);
    size_t plen = 0;
    size_t n = 0;
    while (octo_frame_encode(&hdr, payload, plen + 1, NULL, 0, &n) == OCTO_OK && n - 1 <= cap) {
        plen++;
    }
    static uint8_t wire[400];
    CHECK(octo_frame_encode(&hdr, payload, plen, wire, sizeof wire, &n) == OCTO_OK && n - 1 == cap,
          "frame of exactly cap=%zu encoded bytes (payload %zu, got %zu)", cap, plen, n - 1);
    octo_frame_t f;
    int events = 0;
    int r = push_all(&dec, wire, n, &f, &events);
    CHECK(r == 1 && f.len == plen, "frame of exactly cap encoded bytes decodes (got %d)", r);
    CHECK(octo_frame_encode(&hdr, payload, plen + 1, wire, sizeof wire, &n) == OCTO_OK, "encode cap+1 frame");
    r = push_all(&dec, wire, n, &f, &events);
    CHECK(r == OCTO_E_FRAME_TOO_LONG && events == 1, "frame of cap+1 encoded bytes: %s", octo_status_name(r));
    memset(wire, 0x41, sizeof wire);
    wire[sizeof wire - 1] = 0;
    r = push_all(&dec, wire, sizeof wire, &f, &events);
    CHECK(r == OCTO_E_FRAME_TOO_LONG && events == 1, "long garbage run: %s", octo_status_name(r));
    r = push_all(&dec, good, good_n, &f, &events);
    CHECK(r == 1 && events == 1 && f.req_id == 77, "decoder recovers after an over-long frame");
}

static void test_decoder_resync(void) {
    static uint8_t rx[OCTO_PROTO_RX_LEN(256)];
    octo_frame_decoder_t dec;
    CHECK(octo_frame_decoder_init(&dec, rx, sizeof rx) == OCTO_OK, "decoder init");
    static uint8_t good[300];
    octo_frame_hdr_t hdr = {0x03, 4242};
    size_t good_n = 0;
    CHECK(octo_frame_encode(&hdr, (const uint8_t *)"\x00\x01\x00", 3, good, sizeof good, &good_n) == OCTO_OK,
          "encode good");
    octo_frame_t f;
    int events = 0;

    /* Runs of 0x00 are empty frames: silently ignored, before and between frames. */
    static uint8_t zeros[100];
    memset(zeros, 0, sizeof zeros);
    int r = push_all(&dec, zeros, sizeof zeros, &f, &events);
    CHECK(r == 0 && events == 0, "a run of 100 zero bytes yields nothing");
    for (int k = 0; k < 3; k++) {
        r = push_all(&dec, good, good_n, &f, &events);
        CHECK(r == 1 && events == 1 && f.req_id == 4242 && f.len == 3, "frame %d between zero runs", k);
        r = push_all(&dec, zeros, (size_t)(k + 1), &f, &events);
        CHECK(r == 0 && events == 0, "%d zero bytes after a frame yield nothing", k + 1);
    }

    /* Garbage then a delimiter, then the frame: the frame survives. */
    for (size_t glen = 1; glen <= 300; glen += 13) {
        static uint8_t garbage[300];
        fill_random(garbage, glen, 1);
        (void)push_all(&dec, garbage, glen, &f, &events);
        r = octo_frame_decoder_push(&dec, 0, &f);
        CHECK(r <= 0, "garbage of %zu bytes + delimiter never yields a frame here (got %d)", glen, r);
        r = push_all(&dec, good, good_n, &f, &events);
        CHECK(r == 1 && events == 1 && f.req_id == 4242, "frame after %zu garbage bytes + delimiter", glen);
    }

    /* Garbage without a delimiter swallows the next frame, which is then
     * reported as an error, and the one after that is fine. */
    static const uint8_t junk[] = {0x42, 0x13, 0x37};
    (void)push_all(&dec, junk, sizeof junk, &f, &events);
    r = push_all(&dec, good, good_n, &f, &events);
    CHECK(r < 0 && events == 1, "frame glued to garbage is dropped with an error (got %d)", r);
    r = push_all(&dec, good, good_n, &f, &events);
    CHECK(r == 1 && events == 1, "the next frame decodes");

    /* Two frames back to back in one buffer. */
    static uint8_t two[600];
    memcpy(two, good, good_n);
    memcpy(two + good_n, good, good_n);
    int ones = 0;
    for (size_t i = 0; i < 2 * good_n; i++) {
        ones += octo_frame_decoder_push(&dec, two[i], &f) == 1;
    }
    CHECK(ones == 2, "two back-to-back frames both decode (%d)", ones);
}

/* -------------------------------------------------------- protocol engine */

#define P_MAX 300u

typedef struct {
    uint8_t bytes[8192];
    size_t len;
    int writes;
    int fail; /* make the next write fail */
} sink_t;

static int sink_write(void *ctx, const uint8_t *data, size_t n) {
    sink_t *s = ctx;
    if (s->fail) {
        return OCTO_E_STATE;
    }
    if (n > sizeof s->bytes - s->len) {
        printf("FAIL: sink overflow\n");
        exit(2);
    }
    memcpy(&s->bytes[s->len], data, n);
    s->len += n;
    s->writes++;
    return OCTO_OK;
}

typedef struct {
    int hello_calls;
    int echo_calls;
    int fail_calls;
} counters_t;

static const uint8_t k_hello_reply[] = {'o', 'c', 't', 'o', 0, 1, 2};

static int h_hello(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len) {
    (void)req;
    ((counters_t *)p->user)->hello_calls++;
    if (cap < sizeof k_hello_reply) {
        return OCTO_E_BUF;
    }
    memcpy(resp, k_hello_reply, sizeof k_hello_reply);
    *resp_len = sizeof k_hello_reply;
    return OCTO_OK;
}

static int h_echo(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len) {
    ((counters_t *)p->user)->echo_calls++;
    if (req->len > cap) {
        return OCTO_E_BUF;
    }
    memcpy(resp, req->payload, req->len);
    *resp_len = req->len;
    return OCTO_OK;
}

static int h_fail(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len) {
    (void)req;
    (void)resp;
    (void)cap;
    (void)resp_len;
    ((counters_t *)p->user)->fail_calls++;
    return OCTO_E_STATE;
}

static int h_oversize(octo_proto_t *p, const octo_frame_t *req, uint8_t *resp, size_t cap, size_t *resp_len) {
    (void)p;
    (void)req;
    (void)resp;
    *resp_len = cap + 1; /* a buggy handler claiming more than it may write */
    return OCTO_OK;
}

static const octo_handler_t k_handlers[] = {
    {0x01, h_hello},
    {0x02, h_echo},
    {0x05, h_fail},
    {0x06, h_oversize},
};

typedef struct {
    uint8_t rx[OCTO_PROTO_RX_LEN(P_MAX)];
    uint8_t tx[OCTO_PROTO_TX_LEN(P_MAX)];
    uint8_t payload[P_MAX];
    uint8_t event[OCTO_PROTO_TX_LEN(OCTO_MAX_EVENT_PAYLOAD)];
} engine_mem_t;

typedef struct {
    octo_proto_t p;
    sink_t sink;
    counters_t calls;
} rig_t;

static int rig_init(rig_t *rig, engine_mem_t *m) {
    memset(rig, 0, sizeof *rig);
    const octo_proto_buffers_t mem = {m->rx, sizeof m->rx, m->tx, sizeof m->tx,
                                      m->payload, sizeof m->payload, m->event, sizeof m->event};
    return octo_proto_init(&rig->p, &mem, P_MAX, k_handlers, sizeof k_handlers / sizeof k_handlers[0], sink_write,
                           &rig->sink, &rig->calls);
}

/* Encode and feed one request; the sink is cleared first. */
static int send_req(rig_t *rig, uint8_t version, uint8_t type, uint16_t req_id, const uint8_t *payload, size_t len) {
    static uint8_t raw[P_MAX + 64];
    static uint8_t wire[2 * P_MAX + 64];
    size_t rl = build_raw(raw, version, type, req_id, payload, len);
    size_t wn = wire_from_raw(raw, rl, wire);
    rig->sink.len = 0;
    rig->sink.writes = 0;
    return octo_proto_feed(&rig->p, wire, wn);
}

/* Decode the single frame the engine sent; returns 1 if there was exactly one. */
static int sent_frame(const rig_t *rig, octo_frame_t *f, uint8_t *rxbuf, size_t rxcap) {
    octo_frame_decoder_t dec;
    if (octo_frame_decoder_init(&dec, rxbuf, rxcap) != OCTO_OK) {
        return 0;
    }
    int frames = 0;
    int bad = 0;
    for (size_t i = 0; i < rig->sink.len; i++) {
        int r = octo_frame_decoder_push(&dec, rig->sink.bytes[i], f);
        frames += r == 1;
        bad += r < 0;
    }
    return frames == 1 && bad == 0 && rig->sink.writes == 1;
}

static int16_t error_status(const octo_frame_t *f) { return (int16_t)octo_get_u16(f->payload); }

static void test_proto(void) {
    engine_mem_t m;
    rig_t rig;
    static uint8_t dbuf[OCTO_PROTO_RX_LEN(P_MAX)];
    octo_frame_t f;
    CHECK(rig_init(&rig, &m) == OCTO_OK, "proto init");

    /* HELLO-like dispatch. */
    int r = send_req(&rig, OCTO_PROTO_VERSION, 0x01, 7, NULL, 0);
    CHECK(r == 1, "HELLO feed handles one request (got %d)", r);
    CHECK(sent_frame(&rig, &f, dbuf, sizeof dbuf) && f.type == 0x81 && f.req_id == 7 &&
              f.len == sizeof k_hello_reply && memcmp(f.payload, k_hello_reply, f.len) == 0,
          "HELLO answered with type 0x81, id 7 and the handler's payload");
    CHECK(rig.calls.hello_calls == 1 && rig.p.stats.executed == 1, "HELLO handler ran once");

    /* Identical repeat: identical bytes from the cache, handler not re-run. */
    static const uint8_t ping[] = {0x00, 0x10, 0x00, 0xFF};
    r = send_req(&rig, OCTO_PROTO_VERSION, 0x02, 100, ping, sizeof ping);
    static uint8_t first[256];
    size_t first_len = rig.sink.len;
    memcpy(first, rig.sink.bytes, first_len);
    CHECK(r == 1 && rig.calls.echo_calls == 1, "PING executed");
    for (int k = 0; k < 3; k++) {
        r = send_req(&rig, OCTO_PROTO_VERSION, 0x02, 100, ping, sizeof ping);
        CHECK(r == 1 && rig.sink.len == first_len && memcmp(rig.sink.bytes, first, first_len) == 0,
              "repeat %d of PING answered with identical bytes", k + 1);
    }
    CHECK(rig.calls.echo_calls == 1 && rig.p.stats.executed == 2 && rig.p.stats.duplicates == 3,
          "repeats not executed (echo %d, executed %u, duplicates %u)", rig.calls.echo_calls,
          (unsigned)rig.p.stats.executed, (unsigned)rig.p.stats.duplicates);

    /* Same id, different payload: a new request. Same payload, other id too. */
    static const uint8_t ping2[] = {0x00, 0x10, 0x00, 0xFE};
    r = send_req(&rig, OCTO_PROTO_VERSION, 0x02, 100, ping2, sizeof ping2);
    CHECK(r == 1 && rig.calls.echo_calls == 2 && sent_frame(&rig, &f, dbuf, sizeof dbuf) && f.len == 4 &&
              f.payload[3] == 0xFE,
          "same id with a different payload executes again");
    r = send_req(&rig, OCTO_PROTO_VERSION, 0x02, 101, ping2, sizeof ping2);
    CHECK(r == 1 && rig.calls.echo_calls == 3, "same payload with a new id executes again");
    /* Only the last request is cached: going back to the old one re-executes. */
    r = send_req(&rig, OCTO_PROTO_VERSION, 0x02, 100, ping, sizeof ping);
    CHECK(r == 1 && rig.calls.echo_calls == 4, "an older request is no longer cached");

    /* ERROR cases with the request id echoed. */
    static const struct {
        const char *name;
        uint8_t version;
        uint8_t type;
        int status;
    } err_cases[] = {
        {"unknown type", OCTO_PROTO_VERSION, 0x55, OCTO_E_UNSUPPORTED},
        {"wrong version", OCTO_PROTO_VERSION + 1, 0x01, OCTO_E_VERSION},
        {"version 0", 0, 0x02, OCTO_E_VERSION},
        {"handler error", OCTO_PROTO_VERSION, 0x05, OCTO_E_STATE},
        {"oversized response", OCTO_PROTO_VERSION, 0x06, OCTO_E_BUF},
    };
    for (size_t i = 0; i < sizeof err_cases / sizeof err_cases[0]; i++) {
        uint16_t id = (uint16_t)(500 + i);
        int hello_before = rig.calls.hello_calls;
        r = send_req(&rig, err_cases[i].version, err_cases[i].type, id, ping, 2);
        int one = sent_frame(&rig, &f, dbuf, sizeof dbuf);
        CHECK(r == 1 && one && f.type == OCTO_MSG_ERROR && f.req_id == id && f.len >= 4 &&
                  error_status(&f) == err_cases[i].status && f.payload[2] == err_cases[i].type &&
                  f.len == 4u + f.payload[3],
              "%s -> ERROR %s for id %u (got type 0x%02x status %d)", err_cases[i].name,
              octo_status_name(err_cases[i].status), id, f.type, one ? error_status(&f) : 0);
        CHECK(rig.calls.hello_calls == hello_before, "%s: no HELLO handler call", err_cases[i].name);
    }
    /* The handler-error reply is cached too: a retry does not re-run it. */
    int fails = rig.calls.fail_calls;
    r = send_req(&rig, OCTO_PROTO_VERSION, 0x05, 600, NULL, 0);
    r = send_req(&rig, OCTO_PROTO_VERSION, 0x05, 600, NULL, 0);
    CHECK(r == 1 && rig.calls.fail_calls == fails + 1 && sent_frame(&rig, &f, dbuf, sizeof dbuf) &&
              f.type == OCTO_MSG_ERROR && error_status(&f) == OCTO_E_STATE,
          "a retried failing request gets the cached ERROR without re-running");

    /* The payload limit holds whatever the bytes are: an all-zero payload one
     * byte over max_payload still fits the receive buffer (COBS worst case),
     * yet must be refused without running the handler. */
    static uint8_t zeros[P_MAX + 1];
    int hello_runs = rig.calls.hello_calls;
    r = send_req(&rig, OCTO_PROTO_VERSION, 0x01, 650, zeros, P_MAX);
    CHECK(r == 1 && sent_frame(&rig, &f, dbuf, sizeof dbuf) && f.type == 0x81 && rig.calls.hello_calls == hello_runs + 1,
          "a request of exactly max_payload bytes runs");
    r = send_req(&rig, OCTO_PROTO_VERSION, 0x01, 651, zeros, P_MAX + 1);
    CHECK(r == 1 && sent_frame(&rig, &f, dbuf, sizeof dbuf) && f.type == OCTO_MSG_ERROR && f.req_id == 651 &&
              error_status(&f) == OCTO_E_BUF && rig.calls.hello_calls == hello_runs + 1,
          "a request of max_payload + 1 zero bytes -> ERROR OCTO_E_BUF, handler not run (got type 0x%02x)", f.type);

    /* req_id 0 and response-typed requests: ERROR with request id 0. */
    static const struct {
        const char *name;
        uint8_t type;
        uint16_t id;
    } id0_cases[] = {{"request id 0", 0x01, 0}, {"response bit set", 0x81, 9}};
    for (size_t i = 0; i < sizeof id0_cases / sizeof id0_cases[0]; i++) {
        int hello_before = rig.calls.hello_calls;
        r = send_req(&rig, OCTO_PROTO_VERSION, id0_cases[i].type, id0_cases[i].id, NULL, 0);
        CHECK(r == 1 && sent_frame(&rig, &f, dbuf, sizeof dbuf) && f.type == OCTO_MSG_ERROR && f.req_id == 0 &&
                  error_status(&f) == OCTO_E_PAYLOAD,
              "%s -> ERROR with request id 0", id0_cases[i].name);
        CHECK(rig.calls.hello_calls == hello_before, "%s: not executed", id0_cases[i].name);
    }

    /* A corrupt frame: ERROR (id 0, OCTO_E_CRC), the cache is untouched. */
    r = send_req(&rig, OCTO_PROTO_VERSION, 0x02, 700, ping, sizeof ping);
    size_t cached_len = rig.sink.len;
    memcpy(first, rig.sink.bytes, cached_len);
    int echo_before = rig.calls.echo_calls;
    uint32_t crc_errors = rig.p.stats.rx_crc_errors;
    static uint8_t raw[64];
    static uint8_t wire[128];
    size_t rl = build_raw(raw, OCTO_PROTO_VERSION, 0x02, 700, ping, sizeof ping);
    raw[7] ^= 0x01;
    size_t wn = wire_from_raw(raw, rl, wire);
    rig.sink.len = 0;
    rig.sink.writes = 0;
    r = octo_proto_feed(&rig.p, wire, wn);
    CHECK(r == 0, "a corrupt frame handles no request (got %d)", r);
    CHECK(sent_frame(&rig, &f, dbuf, sizeof dbuf) && f.type == OCTO_MSG_ERROR && f.req_id == 0 &&
              error_status(&f) == OCTO_E_CRC,
          "corrupt frame -> ERROR id 0 carrying OCTO_E_CRC");
    CHECK(rig.p.stats.rx_crc_errors == crc_errors + 1, "rx_crc_errors counted");
    r = send_req(&rig, OCTO_PROTO_VERSION, 0x02, 700, ping, sizeof ping);
    CHECK(r == 1 && rig.sink.len == cached_len && memcmp(rig.sink.bytes, first, cached_len) == 0 &&
              rig.calls.echo_calls == echo_before,
          "after the corrupt frame the retry gets the cached response");

    /* An unsolicited event does not disturb the cache either. */
    rig.sink.len = 0;
    rig.sink.writes = 0;
    CHECK(octo_proto_send_event(&rig.p, OCTO_MSG_TELEMETRY, ping, sizeof ping) == OCTO_OK &&
              sent_frame(&rig, &f, dbuf, sizeof dbuf) && f.type == OCTO_MSG_TELEMETRY && f.req_id == 0,
          "event sent with request id 0");
    r = send_req(&rig, OCTO_PROTO_VERSION, 0x02, 700, ping, sizeof ping);
    CHECK(r == 1 && memcmp(rig.sink.bytes, first, cached_len) == 0 && rig.calls.echo_calls == echo_before,
          "after an event the retry still gets the cached response");
    static uint8_t big_event[OCTO_MAX_EVENT_PAYLOAD + 1];
    CHECK(octo_proto_send_event(&rig.p, OCTO_MSG_TELEMETRY, big_event, sizeof big_event) == OCTO_E_BUF,
          "an event over OCTO_MAX_EVENT_PAYLOAD is refused");

    /* Several requests in one feed call. */
    static uint8_t batch[1024];
    size_t bl = 0;
    for (uint16_t id = 800; id < 805; id++) {
        rl = build_raw(raw, OCTO_PROTO_VERSION, 0x02, id, ping, sizeof ping);
        bl += wire_from_raw(raw, rl, batch + bl);
    }
    rig.sink.len = 0;
    rig.sink.writes = 0;
    r = octo_proto_feed(&rig.p, batch, bl);
    CHECK(r == 5 && rig.sink.writes == 5, "five requests in one feed: %d handled, %d writes", r, rig.sink.writes);

    /* Write failure surfaces as a negative return. */
    rig.sink.fail = 1;
    r = send_req(&rig, OCTO_PROTO_VERSION, 0x02, 900, ping, sizeof ping);
    CHECK(r == OCTO_E_STATE, "a failing link write is returned (got %d)", r);
    rig.sink.fail = 0;

    /* Stats add up: every byte counted, frames + errors. */
    CHECK(rig.p.stats.rx_errors >= 1 && rig.p.stats.tx_frames >= rig.p.stats.executed,
          "stats: rx_errors %u, tx_frames %u", (unsigned)rig.p.stats.rx_errors, (unsigned)rig.p.stats.tx_frames);
    CHECK(octo_proto_feed(&rig.p, NULL, 1) == OCTO_E_ARG, "feed NULL data");
    CHECK(octo_proto_feed(&rig.p, NULL, 0) == 0, "feed nothing");
}

static void test_proto_init(void) {
    engine_mem_t m;
    octo_proto_t p;
    sink_t sink;
    const octo_proto_buffers_t ok = {m.rx, sizeof m.rx, m.tx, sizeof m.tx,
                                     m.payload, sizeof m.payload, m.event, sizeof m.event};
    static const struct {
        const char *name;
        int field; /* which size is one byte short: 0 rx, 1 tx, 2 payload, 3 event */
    } short_cases[] = {{"rx", 0}, {"tx", 1}, {"payload", 2}, {"event", 3}};
    for (size_t i = 0; i < sizeof short_cases / sizeof short_cases[0]; i++) {
        octo_proto_buffers_t mem = ok;
        size_t *len = short_cases[i].field == 0   ? &mem.rx_len
                      : short_cases[i].field == 1 ? &mem.tx_len
                      : short_cases[i].field == 2 ? &mem.payload_len
                                                  : &mem.event_len;
        (*len)--;
        int st = octo_proto_init(&p, &mem, P_MAX, k_handlers, 4, sink_write, &sink, NULL);
        CHECK(st == OCTO_E_BUF, "proto init with %s buffer one byte short: %s", short_cases[i].name,
              octo_status_name(st));
    }
    CHECK(octo_proto_init(&p, &ok, P_MAX, k_handlers, 4, NULL, &sink, NULL) == OCTO_E_ARG, "proto init NULL write");
    CHECK(octo_proto_init(&p, &ok, P_MAX, NULL, 4, sink_write, &sink, NULL) == OCTO_E_ARG, "proto init NULL table");
    CHECK(octo_proto_init(&p, NULL, P_MAX, k_handlers, 4, sink_write, &sink, NULL) == OCTO_E_ARG,
          "proto init NULL buffers");
    CHECK(octo_proto_init(&p, &ok, P_MAX, k_handlers, 4, sink_write, &sink, NULL) == OCTO_OK, "proto init exact sizes");
}

static void test_telemetry_writer(void) {
    uint8_t buf[32];
    octo_tlm_writer_t w;
    octo_tlm_begin(&w, buf, sizeof buf, 0x01020304u);
    octo_tlm_u32(&w, "ab", 0xDEADBEEFu);
    octo_tlm_i32(&w, "c", -2);
    CHECK(!w.overflow && w.len == 4 + 8 + 7, "two telemetry entries: len %zu", w.len);
    CHECK(octo_get_u32(buf) == 0x01020304u && buf[4] == 2 && buf[7] == 'u' && octo_get_u32(&buf[8]) == 0xDEADBEEFu &&
              buf[12] == 1 && buf[14] == 'i' && octo_get_u32(&buf[15]) == 0xFFFFFFFEu,
          "telemetry layout");
    octo_tlm_f32(&w, "overflowing", 1.0f);
    CHECK(w.overflow && w.len == 19, "an entry that does not fit sets overflow and writes nothing");
    octo_tlm_begin(&w, buf, 3, 0);
    CHECK(w.overflow && w.len == 0, "a buffer under 4 bytes overflows at once");
}

int main(void) {
    test_crc32();
    test_cobs_named();
    test_cobs_block_limit();
    sweep_cobs(1);
    sweep_cobs(0);
    test_cobs_malformed();
    test_frame_encode();
    test_decoder_valid();
    test_decoder_errors();
    test_decoder_resync();
    test_proto();
    test_proto_init();
    test_telemetry_writer();
    printf("%u passed, %u failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
