"""Fixed-point quantization math, exactly as TFLite / TFLM compute it.

Everything the firmware needs at run time (multipliers, shifts, activation
ranges, folded biases) is computed here, once, at conversion time. The float
arithmetic mirrors TFLM's C++ (which parts are float32 and which double)
because a one-ulp difference changes a multiplier and breaks bit-exactness.
"""

from __future__ import annotations

import math

import numpy as np

INT8_MIN, INT8_MAX = -128, 127


def round_half_away(x: float) -> int:
    """std::round: halves away from zero (Python's round() is banker's rounding)."""
    return math.floor(abs(x) + 0.5) * (1 if x >= 0 else -1)


def quantize_multiplier(m: float) -> tuple[int, int]:
    """Real multiplier -> (Q0.31 significand, shift); shift > 0 is a left shift."""
    if m == 0.0:
        return 0, 0
    q, shift = math.frexp(m)
    q_fixed = round_half_away(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return int(q_fixed), int(shift)


def quantize_multiplier_smaller_than_one_exp(m: float) -> tuple[int, int]:
    """As TFLite's QuantizeMultiplierSmallerThanOneExp: (significand, left_shift <= 0)."""
    if not 0.0 < m < 1.0:
        raise ValueError(f"multiplier {m} must be in (0, 1)")
    q, shift = quantize_multiplier(m)
    return q, shift


def activation_range(activation: str, scale: float, zero_point: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for an int8 output (float32 division, std::round)."""
    def quantize(x: float) -> int:
        return zero_point + round_half_away(float(np.float32(x) / np.float32(scale)))

    if activation == "NONE":
        return INT8_MIN, INT8_MAX
    if activation == "RELU":
        return max(INT8_MIN, quantize(0.0)), INT8_MAX
    if activation == "RELU6":
        return max(INT8_MIN, quantize(0.0)), min(INT8_MAX, quantize(6.0))
    if activation == "RELU_N1_TO_1":
        return max(INT8_MIN, quantize(-1.0)), min(INT8_MAX, quantize(1.0))
    raise ValueError(f"fused activation {activation} is not supported")


def conv_multipliers(input_scale: float, filter_scales: np.ndarray, output_scale: float,
                     channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (multiplier, shift) as PopulateConvolutionQuantizationParams computes them."""
    mults = np.zeros(channels, np.int32)
    shifts = np.zeros(channels, np.int32)
    fs = np.asarray(filter_scales, np.float32)
    for c in range(channels):
        s = float(fs[c] if fs.size > 1 else fs[0])
        eff = float(np.float32(input_scale)) * s / float(np.float32(output_scale))
        mults[c], shifts[c] = quantize_multiplier(eff)
    return mults, shifts


# -- integer reference primitives (numpy, vectorised): used by tests and the
#    Python reference path; the C kernels implement the same functions. --------
def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a64 = np.asarray(a, np.int64)
    b64 = np.asarray(b, np.int64)
    ab = a64 * b64
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    res = _trunc_div(ab + nudge, 1 << 31)  # C++ integer division truncates toward zero
    overflow = (a64 == b64) & (a64 == -(1 << 31))
    return np.where(overflow, (1 << 31) - 1, res).astype(np.int64)


def _trunc_div(x: np.ndarray, d: int) -> np.ndarray:
    q = np.abs(x) // d
    return np.where(x < 0, -q, q)


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray | int) -> np.ndarray:
    x = np.asarray(x, np.int64)
    e = np.asarray(exponent, np.int64)
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def multiply_by_quantized_multiplier(x: np.ndarray, mult: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """TFLite's double-rounding MultiplyByQuantizedMultiplier (int32 semantics)."""
    shift = np.asarray(shift, np.int64)
    left = np.where(shift > 0, shift, 0)
    right = np.where(shift > 0, 0, -shift)
    x = np.asarray(x, np.int64) * (np.int64(1) << left)
    x = ((x + (1 << 31)) % (1 << 32)) - (1 << 31)  # int32 wrap of x * (1 << left), as in C++
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, mult), right)


def fc_per_tensor_multiplier(input_scale: float, filter_scale: float, output_scale: float) -> tuple[int, int]:
    """(multiplier, shift) of a per-tensor FULLY_CONNECTED, as TFLM's CalculateOpDataFullyConnected.

    Mirrors GetQuantizedConvolutionMultipler (tensorflow/lite/kernels/kernel_util.cc): the product
    input_scale * filter_scale is taken in float32 and only then widened to double, unlike the
    per-channel path (and CONV_2D), which multiplies in double. The two can differ by one ulp.
    """
    product = float(np.float32(input_scale) * np.float32(filter_scale))
    return quantize_multiplier(product / float(np.float32(output_scale)))


def mean_multiplier(input_scale: float, output_scale: float, num_elements: int) -> tuple[int, int]:
    """(multiplier, shift) of an int8 MEAN over num_elements, the 1/num_elements folded in.

    Mirrors TFLM's PrepareMeanOrSum (QuantizeMultiplier of double(in_scale) / double(out_scale))
    followed by reference_integer_ops::Mean's folding: shift = min(floor(log2(n)), 32, 31 + shift),
    multiplier = (multiplier << shift) / n (int64, truncating), exponent -= shift. The kernel then
    applies MultiplyByQuantizedMultiplier to the zero-point-corrected sum. TFLM uses this path for
    int8 whether or not input and output quantization are equal and whether or not keep_dims is set.
    """
    mult, shift = quantize_multiplier(float(np.float32(input_scale)) / float(np.float32(output_scale)))
    k = min(int(num_elements).bit_length() - 1, 32, 31 + shift)
    if num_elements <= 0 or k < 0:
        raise ValueError(f"cannot fold 1/{num_elements} into the MEAN multiplier")
    return (mult << k) // num_elements, shift - k
