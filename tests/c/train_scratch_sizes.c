/* Prints the INT8 training kernels' scratch sizes for shapes given on the
 * command line ("conv OC KH KW C" or "fc O D"), for the Python mirror test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "octo/octo_train_s8.h"

int main(int argc, char **argv) {
    for (int i = 1; i + 2 < argc;) {
        if (strcmp(argv[i], "conv") == 0 && i + 4 < argc) {
            const octo_dims_t w = {atoi(argv[i + 1]), atoi(argv[i + 2]), atoi(argv[i + 3]), atoi(argv[i + 4])};
            size_t a = octo_train_conv_s8_fwd_scratch_size(&w);
            const size_t b = octo_train_conv_s8_bwd_input_scratch_size(&w);
            const size_t c = octo_train_conv_s8_bwd_weight_scratch_size(&w);
            a = a > b ? a : b;
            printf("%zu\n", a > c ? a : c);
            i += 5;
        } else {
            const octo_dims_t w = {atoi(argv[i + 1]), 1, 1, atoi(argv[i + 2])};
            const size_t b = octo_train_fully_connected_s8_bwd_input_scratch_size(&w);
            const size_t c = octo_train_fully_connected_s8_bwd_weight_scratch_size(&w);
            printf("%zu\n", b > c ? b : c);
            i += 3;
        }
    }
    return 0;
}
