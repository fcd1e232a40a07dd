/* frame_tool.c - line-oriented driver of the C framing code, so Python tests
 * can compare it byte for byte with host_tools/board/protocol.py in one process.
 *
 * One command per input line, one output line per command. Byte strings are
 * lowercase hex; "-" stands for an empty string.
 *   crc <hex>                 -> 8 hex digits: octo_crc32(0, bytes)
 *   cobs <hex>                -> hex of octo_cobs_encode(bytes)
 *   uncobs <hex>              -> "ok <hex>" or "err <status>" from octo_cobs_decode
 *   enc <type> <req_id> <hex> -> hex of octo_frame_encode (wire bytes, delimiter
 *                                included) or "err <status>"
 *   dec <hex>                 -> feeds the bytes to a fresh decoder with room for
 *                                the largest frame (65535-byte payload); prints
 *                                one item per non-zero push result, space
 *                                separated: "f:<version>:<type>:<req_id>:<hex>"
 *                                or "e:<status>", or "-" when there were none
 * Unknown commands and malformed arguments print "!bad <reason>".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "octo/octo_frame.h"

#define LINE_MAX_CHARS (4u << 20)
#define DATA_MAX (LINE_MAX_CHARS / 2u)
#define RX_CAP OCTO_COBS_MAX_LEN(0xFFFFu + OCTO_FRAME_OVERHEAD)

static char g_line[LINE_MAX_CHARS + 2];
static uint8_t g_data[DATA_MAX];
static uint8_t g_out[OCTO_COBS_MAX_LEN(DATA_MAX) + 1];
static uint8_t g_rx[RX_CAP];

static int hex_val(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Parse a hex token ("-" = empty) into g_data; returns 0 on success. */
static int parse_hex(const char *tok, size_t *out_len) {
    if (tok == NULL) {
        return -1;
    }
    if (strcmp(tok, "-") == 0) {
        *out_len = 0;
        return 0;
    }
    size_t n = strlen(tok);
    if (n % 2 != 0 || n / 2 > DATA_MAX) {
        return -1;
    }
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hex_val(tok[2 * i]);
        int lo = hex_val(tok[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return -1;
        }
        g_data[i] = (uint8_t)(hi * 16 + lo);
    }
    *out_len = n / 2;
    return 0;
}

static void put_hex(const uint8_t *p, size_t n) {
    static const char digits[] = "0123456789abcdef";
    if (n == 0) {
        putchar('-');
        return;
    }
    for (size_t i = 0; i < n; i++) {
        putchar(digits[p[i] >> 4]);
        putchar(digits[p[i] & 0x0Fu]);
    }
}

static int parse_uint(const char *tok, unsigned long max, unsigned long *out) {
    if (tok == NULL || *tok == '\0') {
        return -1;
    }
    char *end = NULL;
    unsigned long v = strtoul(tok, &end, 0);
    if (*end != '\0' || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

static void cmd_dec(size_t n) {
    octo_frame_decoder_t dec;
    if (octo_frame_decoder_init(&dec, g_rx, sizeof g_rx) != OCTO_OK) {
        printf("!bad decoder init");
        return;
    }
    int items = 0;
    for (size_t i = 0; i < n; i++) {
        octo_frame_t f;
        int r = octo_frame_decoder_push(&dec, g_data[i], &f);
        if (r == 0) {
            continue;
        }
        if (items++ > 0) {
            putchar(' ');
        }
        if (r == 1) {
            printf("f:%u:%u:%u:", (unsigned)f.version, (unsigned)f.type, (unsigned)f.req_id);
            put_hex(f.payload, f.len);
        } else {
            printf("e:%d", r);
        }
    }
    if (items == 0) {
        putchar('-');
    }
}

static void run_line(char *line) {
    char *cmd = strtok(line, " \t\r\n");
    char *a1 = strtok(NULL, " \t\r\n");
    char *a2 = strtok(NULL, " \t\r\n");
    char *a3 = strtok(NULL, " \t\r\n");
    size_t n = 0;
    size_t out_len = 0;
    if (cmd == NULL) {
        printf("!bad empty line");
    } else if (strcmp(cmd, "crc") == 0) {
        if (parse_hex(a1, &n) != 0) {
            printf("!bad hex");
        } else {
            printf("%08lx", (unsigned long)octo_crc32(0, g_data, n));
        }
    } else if (strcmp(cmd, "cobs") == 0) {
        if (parse_hex(a1, &n) != 0) {
            printf("!bad hex");
        } else {
            int st = octo_cobs_encode(g_data, n, g_out, sizeof g_out, &out_len);
            if (st == OCTO_OK) {
                put_hex(g_out, out_len);
            } else {
                printf("err %d", st);
            }
        }
    } else if (strcmp(cmd, "uncobs") == 0) {
        if (parse_hex(a1, &n) != 0) {
            printf("!bad hex");
        } else {
            int st = octo_cobs_decode(g_data, n, g_out, sizeof g_out, &out_len);
            if (st == OCTO_OK) {
                printf("ok ");
                put_hex(g_out, out_len);
            } else {
                printf("err %d", st);
            }
        }
    } else if (strcmp(cmd, "enc") == 0) {
        unsigned long type = 0;
        unsigned long req_id = 0;
        if (parse_uint(a1, 0xFFu, &type) != 0 || parse_uint(a2, 0xFFFFu, &req_id) != 0 || parse_hex(a3, &n) != 0) {
            printf("!bad enc arguments");
        } else {
            octo_frame_hdr_t hdr = {(uint8_t)type, (uint16_t)req_id};
            int st = octo_frame_encode(&hdr, g_data, n, g_out, sizeof g_out, &out_len);
            if (st == OCTO_OK) {
                put_hex(g_out, out_len);
            } else {
                printf("err %d", st);
            }
        }
    } else if (strcmp(cmd, "dec") == 0) {
        if (parse_hex(a1, &n) != 0) {
            printf("!bad hex");
        } else {
            cmd_dec(n);
        }
    } else {
        printf("!bad command %s", cmd);
    }
    putchar('\n');
}

int main(void) {
    while (fgets(g_line, (int)sizeof g_line, stdin) != NULL) {
        size_t len = strlen(g_line);
        if (len > 0 && g_line[len - 1] != '\n' && !feof(stdin)) {
            fprintf(stderr, "frame_tool: line longer than %u characters\n", LINE_MAX_CHARS);
            return 2;
        }
        run_line(g_line);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
