"""Data files at the door: every .npz a command reads (calibration, inference inputs, training and evaluation
sets) is checked here, once, and refused with one line that says what is wrong and what to do.

The format: an .npz (``np.savez(path, x=..., y=...)``) with ``x`` float32 samples in the model's own units,
NHWC, and optionally ``y`` labels. Refused: files that are not an .npz (a damaged zip, a single .npy array, a
pickle), a missing or empty ``x``, ``x`` that is not real floating point (integer pixel values such as uint8
0..255 images would be silently saturated by the INT8 input quantization: scale them to the model's units and
store float32; complex numbers), and NaN or infinite values.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from converter.ir import ConvertError

# what numpy raises for a file that is not a readable .npz (damaged zip, truncated member, pickled object)
_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, RuntimeError)
FORMAT_HINT = "save it with np.savez(path, x=float32 samples in the model's units, NHWC[, y=labels])"


def _refuse(path: Path, what: str) -> ConvertError:
    return ConvertError(f"{path}: {what}; {FORMAT_HINT}")


def load_samples(path: Path, *, need_y: bool = False, role: str = "data") -> tuple[np.ndarray, np.ndarray | None]:
    """(x float32 [N, ...], y or None) from an .npz, every property above checked. role names the file's use in
    messages ("calibration", "input", "training", "evaluation")."""
    path = Path(path)
    if not path.exists():
        raise ConvertError(f"{role} file {path} does not exist")
    if path.is_dir():
        raise ConvertError(f"{role} file {path} is a folder, not an .npz file")
    try:
        data = np.load(path, allow_pickle=False)
    except _READ_ERRORS as exc:
        raise _refuse(path, f"cannot be read as an .npz ({type(exc).__name__}: {str(exc)[:120] or 'damaged'})"
                      ) from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise _refuse(path, f"is a single .npy array (shape {tuple(np.shape(data))}), not an .npz with 'x'")
    try:
        with data:
            keys = sorted(data.files)
            if "x" not in keys:
                raise _refuse(path, f"has no array 'x' (keys: {', '.join(keys) or 'none'})")
            x = data["x"]
            y = data["y"] if "y" in keys else None
    except _READ_ERRORS as exc:
        raise _refuse(path, f"is damaged ({type(exc).__name__}: {str(exc)[:120]})") from None
    x = check_samples(x, f"{path}: 'x'")
    if need_y and y is None:
        raise _refuse(path, "has no labels 'y'")
    return x, y


def check_samples(x: np.ndarray, where: str) -> np.ndarray:
    """x as float32 if it is a non-empty array of finite real numbers, else a ConvertError naming where."""
    x = np.asarray(x)
    if x.dtype.kind == "c":
        raise ConvertError(f"{where} holds complex numbers ({x.dtype}); the models take real float32 values")
    if x.dtype.kind in "iub":
        lo, hi = (int(x.min()), int(x.max())) if x.size else (0, 0)
        raise ConvertError(f"{where} is {x.dtype} (values {lo}..{hi}), not float32 in the model's units: integer "
                           "pixels would saturate silently at INT8 quantization; convert them the way the model was "
                           "trained (e.g. x.astype(np.float32) / 255 for 0..1 inputs) and save float32")
    if x.dtype.kind != "f":
        raise ConvertError(f"{where} has dtype {x.dtype}; the models take float32 samples")
    if x.ndim == 0 or len(x) == 0 or x.size == 0:
        raise ConvertError(f"{where} holds no samples (shape {tuple(x.shape)})")
    finite = np.isfinite(x)
    if not finite.all():
        bad = int((~finite).sum())
        first = int(np.argmax((~finite).reshape(len(x), -1).any(axis=1)))
        raise ConvertError(f"{where} has {bad} NaN or infinite value(s), first in sample {first}; clean or drop "
                           "those samples")
    return x.astype(np.float32, copy=False)


def saturation(x: np.ndarray, scale: float, zero_point: int) -> float:
    """Fraction of values that fall outside the int8 range of the model's input quantization."""
    q = np.round(x.astype(np.float32) / np.float32(scale)) + zero_point
    return float(np.mean((q < -128) | (q > 127))) if q.size else 0.0
