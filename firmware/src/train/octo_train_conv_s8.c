/* octo_train_conv_s8.c - CONV_2D, INT8 training: forward, input gradient,
 * weight gradient, int32 accumulation with SXTB16 + SMLAD (octo_dsp.h). The
 * blocked kernels it shares with FULLY_CONNECTED are in octo_train_gemm_s8.c;
 * the first weight-gradient update (octo_tr_rank8w_s8) stays here, inlined.
 *
 * forward      two paths (fwd_by_pixels). By pixels (1x1 kernels, kernel rows
 *              that are not whole words, maps of at most 16 output pixels):
 *              four output pixels at a time, their receptive fields expanded
 *              to int16 pairs side by side; each output channel's int8 weight
 *              row is unpacked once for the four (octo_tr_gemm4_s8: LDR + 2
 *              SXTB16 + 2 LDM + 8 SMLAD per four taps), a single pixel streams
 *              the rows 16 weights per LDM (octo_tr_gemm1_s8). No copy of the
 *              weights unless their rows are not whole aligned words. By
 *              segments (larger kernels on larger maps): the weights are
 *              expanded to int16 pairs, a chunk of blocks of four output
 *              channels at a time (octo_tr_blk4_s8). Per output pixel every
 *              kernel row ky inside the image is one contiguous run of x (taps
 *              kx0..kx1 of KW*C bytes); one 32-bit load of x, unpacked by
 *              SXTB16, feeds eight SMLAD (four channels x two pairs). Runs whose
 *              start or length is not a multiple of four bytes (possible when
 *              in_c is not) are copied to a zero-padded row first.
 * input grad   the same segment kernel on the transposed conv: for an input
 *              pixel and a kernel row, the taps kx reaching it (every
 *              stride_w-th one) read consecutive dy pixels, so each is one
 *              contiguous run of dy against weights expanded (PKHBT/PKHTB, then
 *              SXTB16: octo_tr_expand_t_s8) a chunk of blocks of four input
 *              channels at a time, in the order [ky][kx class][kx descending]
 *              [out_c], out_c padded to a multiple of 4 with zero weights.
 *              Small maps first expand dy to int16 pairs once
 *              (octo_tr_blk4e_s8: LDRD instead of LDR + 2 SXTB16 per block).
 *              out_c % 4 != 0 with kernels larger than 1x1 takes the
 *              transposed-weight dot of the portable loop, in chunks of input
 *              channels.
 * weight grad  positions eight at a time: their receptive fields and dy rows
 *              are staged as int16 [k][8] and [o][8] so one SMLAD adds two
 *              positions' products and one read-modify-write of dw[o][k] adds
 *              eight (octo_tr_rank8_s8; the first eight write dw,
 *              octo_tr_rank8w_s8, so it needs no zeroing).
 *
 * Scratch stays bounded (a few KiB for MobileNet's layers): no kernel keeps an
 * expanded or transposed copy of all the weights.
 *
 * Every sum is an exact int32 sum of the same int8 products (bounded by
 * OCTO_TRAIN_S8_MAX_TERMS), so the order of the additions does not matter: the
 * assembly on DSP cores and the C below give the same bits.
 *
 * The parts below are compiled here as one translation unit, as the single file was (static
 * helpers keep their inlining and specializations, so the instruction counts stay the same):
 *   octo_train_conv_s8_blocks.inc    first weight-gradient update, pixel kernels, segment lists
 *   octo_train_conv_s8_forward.inc   the forward pass
 *   octo_train_conv_s8_backward.inc  the input and weight gradients */
#include <string.h>

#include "octo_train_internal.h"

#include "octo_train_conv_s8_blocks.inc"
#include "octo_train_conv_s8_forward.inc"
#include "octo_train_conv_s8_backward.inc"
