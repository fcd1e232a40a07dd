"""Random initialisation scaled to the data (`octo train --init random`).

The board draws He-uniform weights, U(-b, b) with b = sqrt(6 / fan_in) (depthwise: fan_in = kh * kw), which keeps
the second moment of activations through ReLU layers only when the model's input has a second moment of 1. The
models the engine trains are BatchNorm-folded: nothing renormalises their activations, so an input far from that
(KWS MFCCs: RMS 13.7) scales every layer's output and the logits by the same factor, and the first SGD steps
blow the network apart (bench/rinit_diag.py measures it). The host knows the training data, so after TRAIN_INIT
it divides the weights of the layers that read the samples by the RMS of the staged (dequantized) training
inputs and writes the state back with SET_WEIGHTS / COMMIT_WEIGHTS: the same blob on every target, and the
same real initial weights in FP32 and INT8 (INT8 scales its tensor scale, host_tools/services/state_blob.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

# A layer reads the samples when one of its inputs is the samples themselves or a layer without weights that
# reads them (a pooling layer first, say): the ones whose output scale the input's RMS sets.
WEIGHTLESS_PASS = ("MAX_POOL_2D", "AVERAGE_POOL_2D")


def input_layers(plan: dict[str, Any]) -> list[int]:
    """Indices (in the plan's layer table) of the weight layers whose input is the samples (directly or through
    pooling layers)."""
    fed: list[bool] = []
    out = []
    for i, la in enumerate(plan["layers"]):
        reads = any(s is None or (fed[s] and plan["layers"][s]["w_shape"] is None) for s in la["src"])
        fed.append(reads and (la["w_shape"] is not None or la["kind"] in WEIGHTLESS_PASS))
        if reads and la["w_shape"] is not None:
            out.append(i)
    return out


def input_gain(xq: np.ndarray, input_scale: float) -> float:
    """1 / RMS of the training samples as the engine sees them (q * input_scale); 1.0 for all-zero data."""
    if xq.size == 0:
        return 1.0
    rms = float(np.sqrt(np.mean(np.square(xq.astype(np.float64))))) * float(np.float32(input_scale))
    return 1.0 / rms if rms > 0.0 else 1.0


def init_gains(plan: dict[str, Any], xq: np.ndarray, input_scale: float) -> dict[int, float]:
    """The gain per plan layer that the data-scaled random init applies (only the layers reading the samples)."""
    g = input_gain(xq, input_scale)
    return {i: g for i in input_layers(plan)}


def scale_random_init(sess: Any, plan: dict[str, Any], xq: np.ndarray, input_scale: float) -> dict[int, float]:
    """After TRAIN_INIT with random weights: read the state, scale the layers reading the samples by
    1 / RMS(samples), write it back. Returns the gains applied (plan layer index -> gain)."""
    from host_tools.services.state_blob import scale_weights  # noqa: PLC0415

    gains = init_gains(plan, xq, input_scale)
    if gains:
        sess.set_state(scale_weights(plan, sess.get_state(), gains))
    return gains
