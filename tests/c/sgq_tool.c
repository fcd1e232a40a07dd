/* sgq_tool.c - line-oriented driver of the C SGQ codec, so Python tests can
 * compare it byte for byte with host_tools/sgq/codec.py in one process.
 *
 * One command per input line, one output line per command. Byte strings are
 * lowercase hex; "-" stands for an empty string (or "no group map").
 *   enc <range> <bits> <groups> <sh> <sw> <shared> <grouping> <rounding> <seed> <clip>
 *       <entropy> <n> <h> <w> <c> <scale_bits> <group_map|-> <int8 data>
 *         -> "ok <payload>" or "err <status>"      (scale_bits: 8 hex digits, the
 *            float's IEEE-754 bits; seed decimal; the rest decimal)
 *   dec <max_elems> <payload>
 *         -> "ok <n> <h> <w> <c> <scale_bits> <int8 data>" or "err <status>"
 *            (max_elems is the output capacity, at most DEC_MAX_ELEMS)
 *   max <n> <h> <w> <c> <bits> <groups> <sh> <sw> [<shared> <clip>]
 *         -> "ok <octo_sgq_encoded_max_len> <OCTO_SGQ_MAX_LEN>" or "err <status>"
 *   scratch <c> <groups> -> "<octo_sgq_scratch_size> <OCTO_SGQ_SCRATCH_LEN>"
 * Unknown commands and malformed arguments print "!bad <reason>".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "octo/octo_sgq.h"

#include "hex_digit.h"

#define LINE_MAX_CHARS (8u << 20)
#define DATA_MAX (LINE_MAX_CHARS / 2u)
#define DEC_MAX_ELEMS (1u << 21)

static char g_line[LINE_MAX_CHARS + 2];
static uint8_t g_data[DATA_MAX];
static uint8_t g_map[OCTO_SGQ_MAX_DIM];
static uint8_t g_out[DATA_MAX + 64u];
static int8_t g_dec[DEC_MAX_ELEMS];
static uint32_t g_scratch[OCTO_SGQ_SCRATCH_LEN(OCTO_SGQ_MAX_DIM, OCTO_SGQ_MAX_GROUPS) / 4u + 1u];

static int parse_hex(const char *tok, uint8_t *dst, size_t cap, size_t *out_len) {
    if (tok == NULL) {
        return -1;
    }
    if (strcmp(tok, "-") == 0) {
        *out_len = 0;
        return 0;
    }
    const size_t n = strlen(tok);
    if (n % 2u != 0u || n / 2u > cap) {
        return -1;
    }
    for (size_t i = 0; i < n / 2u; i++) {
        const int hi = hex_val(tok[2u * i]);
        const int lo = hex_val(tok[2u * i + 1u]);
        if (hi < 0 || lo < 0) {
            return -1;
        }
        dst[i] = (uint8_t)(hi << 4 | lo);
    }
    *out_len = n / 2u;
    return 0;
}

static void print_hex(const uint8_t *p, size_t n) {
    static const char digits[] = "0123456789abcdef";
    if (n == 0u) {
        fputc('-', stdout);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        fputc(digits[p[i] >> 4], stdout);
        fputc(digits[p[i] & 15u], stdout);
    }
}

static int parse_long(const char *tok, long *v) {
    if (tok == NULL) {
        return -1;
    }
    char *end;
    *v = strtol(tok, &end, 10);
    return *end == '\0' ? 0 : -1;
}

static int parse_ints(long *v, int count) {
    for (int i = 0; i < count; i++) {
        if (parse_long(strtok(NULL, " "), &v[i]) != 0) {
            return -1;
        }
    }
    return 0;
}

static void cmd_enc(void) {
    long v[15];
    if (parse_ints(v, 15) != 0) {
        puts("!bad numbers");
        return;
    }
    const char *scale_tok = strtok(NULL, " ");
    if (scale_tok == NULL) {
        puts("!bad scale");
        return;
    }
    const uint32_t scale_bits = (uint32_t)strtoul(scale_tok, NULL, 16);
    size_t map_len, data_len;
    if (parse_hex(strtok(NULL, " "), g_map, sizeof g_map, &map_len) != 0 ||
        parse_hex(strtok(NULL, " "), g_data, sizeof g_data, &data_len) != 0) {
        puts("!bad hex");
        return;
    }
    octo_sgq_params_t p = {
        .range_mode = (int32_t)v[0], .bits = (int32_t)v[1], .groups = (int32_t)v[2], .stripe_h = (int32_t)v[3],
        .stripe_w = (int32_t)v[4], .shared = (int32_t)v[5], .grouping = (int32_t)v[6], .rounding = (int32_t)v[7],
        .seed = (uint32_t)v[8], .group_map = map_len ? g_map : NULL, .clip = (int32_t)v[9],
        .entropy = (int32_t)v[10],
    };
    octo_sgq_tensor_t t = {.data = (const int8_t *)g_data,
                           .dims = {(int32_t)v[11], (int32_t)v[12], (int32_t)v[13], (int32_t)v[14]}};
    memcpy(&t.scale, &scale_bits, sizeof t.scale);
    if ((uint64_t)t.dims.n * (uint64_t)t.dims.h * (uint64_t)t.dims.w * (uint64_t)t.dims.c != data_len ||
        (map_len != 0u && map_len != (size_t)t.dims.c)) {
        puts("!bad sizes");
        return;
    }
    size_t max_len;
    int st = octo_sgq_encoded_max_len(&t.dims, &p, &max_len);
    if (st == OCTO_OK && max_len > sizeof g_out) {
        puts("!bad too large");
        return;
    }
    const octo_sgq_ctx_t ctx = {g_scratch, octo_sgq_scratch_size(t.dims.c, p.groups)};
    size_t out_len = 0;
    if (st == OCTO_OK) {
        /* exactly sized input and output (the promised bound), so ASan sees any stray access */
        int8_t *in = malloc(data_len ? data_len : 1u);
        uint8_t *dst = malloc(max_len);
        if (in == NULL || dst == NULL) {
            puts("!bad malloc");
            free(in);
            free(dst);
            return;
        }
        memcpy(in, g_data, data_len);
        t.data = in;
        st = octo_sgq_encode(&t, &p, &ctx, dst, max_len, &out_len);
        if (st == OCTO_OK) {
            memcpy(g_out, dst, out_len);
        }
        free(in);
        free(dst);
    }
    if (st != OCTO_OK) {
        printf("err %d\n", st);
        return;
    }
    fputs("ok ", stdout);
    print_hex(g_out, out_len);
    fputc('\n', stdout);
}

static void cmd_dec(void) {
    long max_elems;
    size_t len;
    if (parse_long(strtok(NULL, " "), &max_elems) != 0 || max_elems < 0 || max_elems > (long)DEC_MAX_ELEMS ||
        parse_hex(strtok(NULL, " "), g_data, sizeof g_data, &len) != 0) {
        puts("!bad args");
        return;
    }
    /* an exactly sized copy, so ASan catches any read past the payload */
    uint8_t *copy = malloc(len ? len : 1u);
    if (copy == NULL) {
        puts("!bad malloc");
        return;
    }
    memcpy(copy, g_data, len);
    const octo_sgq_ctx_t ctx = {g_scratch, sizeof g_scratch};
    octo_sgq_info_t info;
    const int st = octo_sgq_decode(copy, len, &ctx, g_dec, (size_t)max_elems, &info);
    free(copy);
    if (st != OCTO_OK) {
        printf("err %d\n", st);
        return;
    }
    uint32_t sb;
    memcpy(&sb, &info.scale, sizeof sb);
    printf("ok %d %d %d %d %08x ", (int)info.dims.n, (int)info.dims.h, (int)info.dims.w, (int)info.dims.c,
           (unsigned)sb);
    print_hex((const uint8_t *)g_dec, info.elems);
    fputc('\n', stdout);
}

static void cmd_max(void) {
    long v[8];
    if (parse_ints(v, 8) != 0) {
        puts("!bad numbers");
        return;
    }
    const octo_dims_t d = {(int32_t)v[0], (int32_t)v[1], (int32_t)v[2], (int32_t)v[3]};
    long opt[2] = {0, 0}; /* optional: shared, clip */
    for (int i = 0; i < 2; i++) {
        const char *tok = strtok(NULL, " ");
        if (tok != NULL && parse_long(tok, &opt[i]) != 0) {
            puts("!bad numbers");
            return;
        }
    }
    const octo_sgq_params_t p = {.bits = (int32_t)v[4], .groups = (int32_t)v[5], .stripe_h = (int32_t)v[6],
                                 .stripe_w = (int32_t)v[7], .shared = (int32_t)opt[0], .clip = (int32_t)opt[1]};
    size_t n;
    const int st = octo_sgq_encoded_max_len(&d, &p, &n);
    if (st != OCTO_OK) {
        printf("err %d\n", st);
        return;
    }
    printf("ok %zu %zu\n", n, (size_t)OCTO_SGQ_MAX_LEN(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]));
}

static void cmd_scratch(void) {
    long v[2];
    if (parse_ints(v, 2) != 0) {
        puts("!bad numbers");
        return;
    }
    printf("%zu %zu\n", octo_sgq_scratch_size((int32_t)v[0], (int32_t)v[1]), (size_t)OCTO_SGQ_SCRATCH_LEN(v[0], v[1]));
}

int main(void) {
    while (fgets(g_line, sizeof g_line, stdin) != NULL) {
        g_line[strcspn(g_line, "\r\n")] = '\0';
        const char *cmd = strtok(g_line, " ");
        if (cmd == NULL) {
            puts("!bad empty");
        } else if (strcmp(cmd, "enc") == 0) {
            cmd_enc();
        } else if (strcmp(cmd, "dec") == 0) {
            cmd_dec();
        } else if (strcmp(cmd, "max") == 0) {
            cmd_max();
        } else if (strcmp(cmd, "scratch") == 0) {
            cmd_scratch();
        } else {
            puts("!bad command");
        }
        fflush(stdout);
    }
    return 0;
}
