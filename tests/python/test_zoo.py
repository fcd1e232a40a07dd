"""Zoo models through the real pipeline: bit-exact with TFLM, arena no larger than TFLM's planner.

Covers in-place planning on real layer chains (conv -> depthwise -> pointwise ...):
a wrong lag or an unsafe buffer sharing would change outputs here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from converter.pipeline import convert
from converter.tflm import tflm_run
from host_tools.model.folder import load_local_model, run_on_host

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.parametrize("recipe", ["ds_cnn", "mobilenet_v1_025"])
def test_zoo_model_bit_exact_and_smaller_arena(recipe: str, tmp_path: Path) -> None:
    report = convert(ROOT / "models" / f"{recipe}.py", tmp_path / recipe, say=lambda s: None)
    assert report["totals"]["arena_bytes"] <= report["tflm"]["arena_planned_bytes"], report["totals"]
    model = load_local_model(tmp_path / recipe)
    x = np.random.default_rng(0).integers(-128, 128, size=(8, model.input_size), dtype=np.int64).astype(np.int8)
    ours = run_on_host(model, x)
    ref = tflm_run((tmp_path / recipe / "model.tflite").read_bytes(), x.reshape(8, *model.input_shape[1:]))
    assert np.array_equal(ours, ref.reshape(ours.shape))


def test_digits_accuracy_and_bit_exact(tmp_path: Path) -> None:
    """The trained digits CNN: INT8 generated C equals TFLM on all held-out digits, and is accurate."""
    report = convert(ROOT / "models" / "digits_cnn.py", tmp_path / "digits", say=lambda s: None)
    acc = report["accuracy"]
    assert acc["host_matches_tflm"] is True
    assert acc["int8_host"] >= 0.90 and abs(acc["int8_host"] - acc["float"]) <= 0.02, acc
    assert report["totals"]["arena_bytes"] <= report["tflm"]["arena_planned_bytes"]
    for name in ("model.tflite", "octo/model.c", "tflm/model_data.cc", "tflm/op_resolver.h", "eval.npz"):
        assert (tmp_path / "digits" / name).exists(), name
    resolver = (tmp_path / "digits" / "tflm" / "op_resolver.h").read_text()
    assert "AddConv2D()" in resolver and "AddSoftmax()" in resolver and "AddAdd()" not in resolver
