"""In-place planning for raster-order kernels: how far an output may trail its input.

Octo's fast CONV_2D/FULLY_CONNECTED (gather a pixel's receptive field, then write
that pixel's outputs), DEPTHWISE_CONV_2D and pooling kernels visit output pixels
in raster order and only read inputs of the current and later pixels. So the
output buffer may start *below* the input buffer and overlap it, as long as the
outputs written through pixel p never reach input still needed afterwards:

    in_offset - out_offset >= D = max_p ((p+1) * out_c - first_needed(p') * in_c)

where first_needed(q) is the lowest input pixel (raster index) that output pixel
q or any later one reads (non-decreasing in q), p' = p+1 when the kernel has
already copied pixel p's inputs before writing it (gathering kernels), else p.
Input and output then share one buffer of max(out_bytes, D + in_bytes).
"""

from __future__ import annotations

from converter.planner import ALIGN


def first_needed_pixel(oy: int, ox: int, in_w: int, stride: tuple[int, int], pad: tuple[int, int]) -> int:
    """Lowest input raster index read by output pixel (oy, ox) (and by every later pixel)."""
    iy = max(oy * stride[0] - pad[0], 0)
    ix = max(ox * stride[1] - pad[1], 0)
    return iy * in_w + ix


def raster_lag(in_hw: tuple[int, int], in_c: int, out_hw: tuple[int, int], out_c: int, stride: tuple[int, int],
               pad: tuple[int, int], gathers_own_pixel: bool) -> int:
    """D in bytes, rounded up to the arena alignment (0 = output may start where the input starts)."""
    oh, ow = out_hw
    pixels = oh * ow
    need = 0
    for p in range(pixels):
        q = p + 1 if gathers_own_pixel else p
        if q >= pixels:
            break  # nothing of the input is read after the last pixel's gather
        first = first_needed_pixel(q // ow, q % ow, in_hw[1], stride, pad)
        need = max(need, (p + 1) * out_c - first * in_c)
    return (need + ALIGN - 1) // ALIGN * ALIGN
