"""Shared check: a model through Octo's generated C equals TFLM's Python runtime, bit for bit.

    from tests.modelcheck import assert_bit_exact
    assert_bit_exact(keras_model, calib, tmp_path)

Quantizes with TFLite's converter, parses, generates C, builds it natively under
ASan+UBSan, runs random int8 inputs plus quantized calibration samples, and
compares every output byte with tflite_micro.runtime.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from converter.codegen import CompiledModel, compile_graph
from converter.hostbuild import build_host_runner, run_host
from converter.quantize import quantize_keras
from converter.tflite_reader import parse_tflite
from converter.tflm import tflm_run


def compile_to_dir(tflite_bytes: bytes, out_dir: Path, name: str = "test", weight_bytes: int = 1) -> CompiledModel:
    """weight_bytes 2: every packed layer in the 2-byte layout (what `octo convert --flash N` may choose)."""
    g = parse_tflite(tflite_bytes, name)
    cm = compile_graph(g, name, wide=set(range(len(g.ops))) if weight_bytes == 2 else None)
    out_dir.mkdir(parents=True, exist_ok=True)
    for fname, text in cm.files.items():
        (out_dir / fname).write_text(text)
    return cm


def quantize_input(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return np.clip(np.round(x / scale) + zero_point, -128, 127).astype(np.int8)


def assert_tflite_bit_exact(tflite_bytes: bytes, tmp_path: Path, *, calib: np.ndarray | None = None,
                            n_random: int = 24, seed: int = 0, weight_bytes: int = 1) -> CompiledModel:
    cm = compile_to_dir(tflite_bytes, tmp_path / "model", weight_bytes=weight_bytes)
    g = cm.graph
    in_shape = g.input.shape[1:]
    rng = np.random.default_rng(seed)
    xs = [rng.integers(-128, 128, size=(n_random, *in_shape), dtype=np.int64).astype(np.int8)]
    if calib is not None:
        scale, zp = g.input.qparams()
        xs.append(quantize_input(calib[:16].reshape(-1, *in_shape), scale, zp))
    x = np.concatenate(xs)
    exe = build_host_runner(tmp_path / "model", sanitize=True)
    ours = run_host(exe, x, g.output.size)
    ref = tflm_run(tflite_bytes, x).reshape(len(x), -1)
    if not np.array_equal(ours, ref):
        bad = np.argwhere(ours != ref)
        i, j = bad[0]
        raise AssertionError(f"{len(bad)} of {ours.size} output bytes differ from TFLM; first at sample {i} "
                             f"index {j}: octo {ours[i, j]} vs tflm {ref[i, j]}; ops {[op.kind for op in g.ops]}")
    return cm


def assert_bit_exact(model: Any, calib: np.ndarray, tmp_path: Path, **kw: Any) -> CompiledModel:
    return assert_tflite_bit_exact(quantize_keras(model, calib), tmp_path, calib=calib, **kw)
