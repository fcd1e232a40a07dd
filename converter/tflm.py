"""TFLM's Python runtime as the oracle: outputs and arena use for a .tflite."""

from __future__ import annotations

import os
import re
import tempfile

import numpy as np


def tflm_interpreter(model: bytes, arena_size: int | None = None):
    from tflite_micro.python.tflite_micro import runtime  # noqa: PLC0415

    return runtime.Interpreter.from_bytes(model, arena_size=arena_size)


def tflm_run(model: bytes, inputs_q: np.ndarray) -> np.ndarray:
    """int8 inputs [N, ...model input shape without batch] -> int8 outputs [N, out_size]."""
    interp = tflm_interpreter(model)
    in_shape = tuple(interp.get_input_details(0)["shape"])
    outs = []
    for x in np.asarray(inputs_q, np.int8):
        interp.set_input(x.reshape(in_shape), 0)
        interp.invoke()
        outs.append(np.array(interp.get_output(0)).reshape(-1).copy())
    return np.stack(outs)


def tflm_arena_bytes(model: bytes) -> dict[str, int]:
    """TFLM's own arena accounting (RecordingMicroAllocator), parsed from print_allocations().

    Returns {"total": bytes, "tensor_arena": ..., ...}: the whole arena TFLM needs and
    its parts (activations planned by TFLM's greedy planner, plus interpreter overhead).
    """
    interp = tflm_interpreter(model)
    text = _capture_fd1(interp.print_allocations)
    out: dict[str, int] = {}
    for line in text.splitlines():
        m = re.search(r"\[RecordingMicroAllocator\] Arena allocation total (\d+) bytes", line)
        if m:
            out["total"] = int(m.group(1))
        m = re.search(r"\[RecordingMicroAllocator\] Arena allocation (head|tail) (\d+) bytes", line)
        if m:
            out[m.group(1)] = int(m.group(2))
        m = re.search(r"\[RecordingMicroAllocator\] '([^']+)' used (\d+) bytes", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def _capture_fd1(fn) -> str:
    """Run fn() capturing what C++ code writes to file descriptor 1 (and 2)."""
    import sys  # noqa: PLC0415

    sys.stdout.flush()
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        saved1, saved2 = os.dup(1), os.dup(2)
        try:
            os.dup2(tmp.fileno(), 1)
            os.dup2(tmp.fileno(), 2)
            fn()
        finally:
            os.dup2(saved1, 1)
            os.dup2(saved2, 2)
            os.close(saved1)
            os.close(saved2)
        tmp.seek(0)
        return tmp.read().decode("utf-8", "replace")
