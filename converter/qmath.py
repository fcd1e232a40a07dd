"""Fixed-point quantization math, exactly as TFLite / TFLM compute it.

Everything the firmware needs at run time (multipliers, shifts, activation
ranges, folded biases) is computed here, once, at conversion time. The float
arithmetic mirrors TFLM's C++ (which parts are float32 and which double)
because a one-ulp difference changes a multiplier and breaks bit-exactness.
"""

from __future__ import annotations

import math

import numpy as np

from converter.ir import ConvertError

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
        raise ConvertError(f"rescale factor {m} must be in (0, 1); the model's quantization parameters are invalid")
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
    raise ConvertError(f"fused activation {activation} is not supported (NONE, RELU, RELU6, RELU_N1_TO_1 are)")


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


# -- ADD / SOFTMAX parameters (appended for converter/lower/add.py, softmax.py) --
ADD_LEFT_SHIFT_INT8 = 20
SOFTMAX_SCALED_DIFF_INTEGER_BITS = 5


def add_params(input1_scale: float, input2_scale: float, output_scale: float) -> dict[str, int]:
    """Mirrors TFLM's CalculateOpDataAdd (add_common.cc) for int8.

    The max of the two float32 input scales is taken in float, everything else
    in double; each multiplier goes through QuantizeMultiplierSmallerThanOneExp,
    so a ConvertError means TFLM's Prepare would fail its CHECK too.
    """
    s1, s2, so = (float(np.float32(s)) for s in (input1_scale, input2_scale, output_scale))
    twice_max_input_scale = 2.0 * max(s1, s2)
    real_input1_multiplier = s1 / twice_max_input_scale
    real_input2_multiplier = s2 / twice_max_input_scale
    real_output_multiplier = twice_max_input_scale / ((1 << ADD_LEFT_SHIFT_INT8) * so)
    m1, sh1 = quantize_multiplier_smaller_than_one_exp(real_input1_multiplier)
    m2, sh2 = quantize_multiplier_smaller_than_one_exp(real_input2_multiplier)
    mo, sho = quantize_multiplier_smaller_than_one_exp(real_output_multiplier)
    for shift in (sh1, sh2, sho):
        if shift > 0:
            raise ConvertError("ADD multiplier exponent must be <= 0")
    return {"input1_multiplier": m1, "input1_shift": sh1, "input2_multiplier": m2, "input2_shift": sh2,
            "left_shift": ADD_LEFT_SHIFT_INT8, "output_multiplier": mo, "output_shift": sho}


def softmax_params(beta: float, input_scale: float) -> dict[str, int]:
    """Mirrors TFLM's int8 CalculateSoftmaxParams (softmax_common.cc).

    PreprocessSoftmaxScaling: min(beta * scale * 2^(31 - 5), 2^31 - 1) in double
    (beta and scale are float32 widened), then QuantizeMultiplierGreaterThanOne;
    diff_min = -CalculateInputRadius(5, left_shift) = -floor(31 * 2^26 / 2^left_shift).
    Raises ConvertError where TFLM's CHECKs would fail (multiplier <= 1).
    """
    bits = SOFTMAX_SCALED_DIFF_INTEGER_BITS
    real = min(float(np.float32(beta)) * float(np.float32(input_scale)) * float(1 << (31 - bits)),
               float((1 << 31) - 1))
    if not real > 1.0:
        raise ConvertError(f"softmax input multiplier {real} must be > 1 (beta * input scale too small)")
    mult, left_shift = quantize_multiplier(real)
    if left_shift < 0:
        raise ConvertError("softmax input shift must be >= 0")
    radius = math.floor(1.0 * ((1 << bits) - 1) * (1 << (31 - bits)) / (1 << left_shift))
    return {"input_multiplier": mult, "input_left_shift": left_shift, "diff_min": -int(radius)}


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
        raise ConvertError(f"cannot fold 1/{num_elements} into the MEAN multiplier")
    return (mult << k) // num_elements, shift - k


def merged_requant_table(shift: np.ndarray) -> np.ndarray | None:
    """Per-channel {k_lo, k_hi, e-1} for octo_requantize_merged (octo_qmath.h), or None when
    some shift is >= 0 (the merged form needs a right shift of at least 1)."""
    sh = np.asarray(shift, np.int64)
    if sh.size == 0 or np.any(sh > -1):
        return None
    k = (np.int64(1) << 30) + (np.int64(1) << (30 - sh))
    lo = (k & 0xFFFFFFFF).astype(np.uint32).view(np.int32)
    hi = (k >> 32).astype(np.int32)
    return np.stack([lo, hi, (-sh - 1).astype(np.int32)], axis=1)
