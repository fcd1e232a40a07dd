/* octo_infer_main.c - run a generated model natively on a batch of inputs.
 *   octo_infer <inputs.bin> <outputs.bin>
 * inputs.bin holds N x input_bytes int8 samples; outputs.bin receives
 * N x output_bytes. Used by `octo infer --target host` and the tests. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "octo/octo_model.h"
#include "octo/octo_status.h"

static uint8_t s_arena[OCTO_ARENA_BYTES] __attribute__((aligned(16)));

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s <inputs.bin> <outputs.bin>\n", argv[0]);
        return 2;
    }
    const octo_model_t *m = &g_octo_model;
    FILE *fi = fopen(argv[1], "rb");
    FILE *fo = fopen(argv[2], "wb");
    if (fi == NULL || fo == NULL) {
        fprintf(stderr, "octo_infer: cannot open %s\n", fi == NULL ? argv[1] : argv[2]);
        return 2;
    }
    long n = 0;
    for (;;) {
        size_t got = fread(&s_arena[m->input_offset], 1, m->input_bytes, fi);
        if (got == 0) {
            break;
        }
        if (got != m->input_bytes) {
            fprintf(stderr, "octo_infer: input file ends inside sample %ld\n", n);
            return 2;
        }
        int st = m->invoke(s_arena, NULL, NULL);
        if (st != OCTO_OK) {
            fprintf(stderr, "octo_infer: sample %ld failed: %s\n", n, octo_status_name(st));
            return 1;
        }
        if (fwrite(&s_arena[m->output_offset], 1, m->output_bytes, fo) != m->output_bytes) {
            fprintf(stderr, "octo_infer: write failed\n");
            return 2;
        }
        n++;
    }
    fclose(fi);
    return fclose(fo) == 0 ? 0 : 2;
}
