"""CONV_2D: generated C equals TFLM bit for bit across strides, padding, kernels, activations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.modelcheck import assert_bit_exact

CASES = {
    "3x3_s1_same_relu": dict(filters=8, kernel=3, strides=1, padding="same", activation="relu", shape=(12, 12, 3)),
    "3x3_s2_valid_none": dict(filters=6, kernel=3, strides=2, padding="valid", activation=None, shape=(11, 9, 4)),
    "5x5_s2_same_relu6": dict(filters=5, kernel=5, strides=2, padding="same", activation="relu6", shape=(10, 10, 2)),
    "1x1_pointwise": dict(filters=16, kernel=1, strides=1, padding="valid", activation="relu", shape=(6, 6, 24)),
    "rect_3x1_s(2,1)": dict(filters=4, kernel=(3, 1), strides=(2, 1), padding="same", activation=None, shape=(9, 7, 5)),
    "first_layer_32x32x3": dict(filters=8, kernel=3, strides=2, padding="same", activation="relu", shape=(32, 32, 3)),
    # 1x1 read in place: stride 2 with a partial last block, and more than CONV_ACC_BLOCKS blocks (two passes)
    "1x1_s2_partial_block": dict(filters=6, kernel=1, strides=2, padding="valid", activation=None, shape=(7, 6, 8)),
    "1x1_300_channels": dict(filters=300, kernel=1, strides=1, padding="valid", activation="relu", shape=(3, 4, 12)),
}


@pytest.mark.parametrize("weight_bytes", [1, 2])
@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
def test_conv2d_bit_exact(case: dict, weight_bytes: int, tmp_path: Path) -> None:
    """Both weight layouts: 1 byte (the default; pixels in pairs, an odd last one, channels past a multiple of
    four, more than 128 channels) and 2 bytes (octo convert --flash)."""
    import keras

    keras.utils.set_random_seed(1)
    act = keras.activations.relu6 if case["activation"] == "relu6" else case["activation"]
    inp = keras.Input(case["shape"])
    x = keras.layers.Conv2D(case["filters"], case["kernel"], strides=case["strides"], padding=case["padding"],
                            activation=act)(inp)
    model = keras.Model(inp, x)
    calib = np.random.default_rng(0).normal(size=(64, *case["shape"])).astype(np.float32)
    cm = assert_bit_exact(model, calib, tmp_path, weight_bytes=weight_bytes)
    assert [op.kind for op in cm.graph.ops] == ["CONV_2D"]
    assert ("octo_conv_s8_packed8(" in cm.files["model.c"]) == (weight_bytes == 1)
