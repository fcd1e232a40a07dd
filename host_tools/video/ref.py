"""NumPy mirror of the PASS runtime's integer decisions (firmware/include/octo/octo_pass.h).

The gate of a layer looks at its input cut into P x P patches (edge patches clipped), each compared
with the layer's cache E over the sampled elements. The sampling grid moves with the frame so that every
pixel is read once every S*S frames: with phase = frame mod S*S (frame: frames since the last reset, the
runtime's octo_pass_state_t.frames before the frame runs), row offset oy = phase // S and column offset
ox = phase % S, a patch of h x w pixels reads rows y0 + min(oy, h - 1) + k*S and columns
x0 + min(ox, w - 1) + k*S inside it, every channel (n elements):

    sum = sum |cur - E|,  mx = max |cur - E|,  mean_q8 = (sum * 256) // n,  max_q8 = mx * 256
    changed  <=>  mx > 0  and  a_mean * mean_q8 + a_max * max_q8 > threshold     (int64)

``gate_stats`` and ``gate_map`` compute exactly what firmware/src/pass/octo_pass.c computes for every
patch (the runtime evaluates only the patches with a pixel recomputed upstream; ``gate_map`` here
evaluates all of them). ``receptive_dilation`` is the runtime's output mask: the output pixels whose
window meets a changed input pixel. host_tools/video/gates.py (the gate trainer) imports this module;
tests/python/test_pass_runtime.py checks it against the C runtime bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

GATE_KEYS = ("patch", "sample", "a_mean", "a_max", "threshold")


def _hwc(x: np.ndarray) -> np.ndarray:
    """[H, W, C] or [1, H, W, C] int8 -> [H, W, C]."""
    a = np.asarray(x)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 3:
        raise ValueError(f"expected a [H, W, C] or [1, H, W, C] tensor, got shape {a.shape}")
    return a


def grid(h: int, w: int, patch: int) -> tuple[int, int]:
    """(patch rows, patch columns) of an h x w input: ceil(h / P), ceil(w / P)."""
    if patch < 1:
        raise ValueError(f"patch must be >= 1, got {patch}")
    return -(-h // patch), -(-w // patch)


def phase_offsets(sample: int, frame: int) -> tuple[int, int]:
    """(row offset, column offset) of the sampling grid at `frame` (frames since reset): phase = frame mod S*S,
    (phase // S, phase % S)."""
    if sample < 1 or frame < 0:
        raise ValueError(f"sample must be >= 1 and frame >= 0, got {sample}, {frame}")
    phase = frame % (sample * sample)
    return phase // sample, phase % sample


def _sampled(n: int, patch: int, sample: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Along one side of n pixels: the sampled indices (patch-relative i >= min(offset, size - 1) with
    (i - min(offset, size - 1)) % S == 0) and, per patch, where its run of them starts."""
    idx = np.arange(n)
    start = idx - idx % patch
    first = np.minimum(offset, np.minimum(patch, n - start) - 1)   # clipped for short edge patches
    rel = idx % patch - first
    keep = idx[(rel >= 0) & (rel % sample == 0)]
    starts = np.searchsorted(keep, np.arange(0, n, patch))  # every patch keeps at least one row/column
    return keep, starts


def _counts(n: int, patch: int, sample: int, offset: int) -> np.ndarray:
    """Along one side of n pixels: sampled rows (or columns) per patch, ceil((size - min(offset, size - 1)) / S)
    with size = min(P, n - patch start)."""
    sizes = np.minimum(patch, n - np.arange(0, n, patch))
    return -(-(sizes - np.minimum(offset, sizes - 1)) // sample)


def gate_elements(h: int, w: int, c: int, patch: int, sample: int, frame: int = 0) -> np.ndarray:
    """Per patch: n, the elements its gate reads at `frame` (int64 [ceil(H/P), ceil(W/P)])."""
    oy, ox = phase_offsets(sample, frame)
    return (_counts(h, patch, sample, oy)[:, None].astype(np.int64) * _counts(w, patch, sample, ox)[None, :]
            * c)


def gate_stats(cur: np.ndarray, cache: np.ndarray, patch: int, sample: int,
               frame: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per patch: (mean_q8, mx) as int64 arrays [ceil(H/P), ceil(W/P)], mx = max |cur - E| (not x256), on the
    sampling grid of `frame` (frames since reset; the phase is frame mod S*S)."""
    a, b = _hwc(cur), _hwc(cache)
    if a.shape != b.shape:
        raise ValueError(f"cur {a.shape} and cache {b.shape} differ")
    if patch < 1 or sample < 1:
        raise ValueError(f"patch and sample must be >= 1, got {patch}, {sample}")
    h, w, c = a.shape
    oy, ox = phase_offsets(sample, frame)
    rows, rstarts = _sampled(h, patch, sample, oy)
    cols, cstarts = _sampled(w, patch, sample, ox)
    d = np.abs(a[np.ix_(rows, cols)].astype(np.int32) - b[np.ix_(rows, cols)].astype(np.int32))
    total = np.add.reduceat(np.add.reduceat(d.sum(axis=2, dtype=np.int64), rstarts, axis=0), cstarts, axis=1)
    mx = np.maximum.reduceat(np.maximum.reduceat(d.max(axis=2), rstarts, axis=0), cstarts, axis=1)
    return (total * 256) // gate_elements(h, w, c, patch, sample, frame), mx.astype(np.int64)


def gate_map(cur: np.ndarray, cache: np.ndarray, gate: dict[str, Any], frame: int = 0) -> np.ndarray:
    """uint8 [ceil(H/P), ceil(W/P)]: 1 where the gate says "changed" at `frame` (frames since reset; gate keys:
    GATE_KEYS)."""
    mean_q8, mx = gate_stats(cur, cache, int(gate["patch"]), int(gate["sample"]), frame)
    score = np.int64(int(gate["a_mean"])) * mean_q8 + np.int64(int(gate["a_max"])) * (mx * 256)
    return ((mx > 0) & (score > np.int64(int(gate["threshold"])))).astype(np.uint8)


def exact_map(cur: np.ndarray, cache: np.ndarray, patch: int) -> np.ndarray:
    """uint8 per patch: 1 where any byte differs (OCTO_PASS_EXACT)."""
    a, b = _hwc(cur), _hwc(cache)
    diff = np.any(a != b, axis=2)
    h, w = diff.shape
    gh, gw = grid(h, w, patch)
    padded = np.zeros((gh * patch, gw * patch), bool)
    padded[:h, :w] = diff
    return padded.reshape(gh, patch, gw, patch).any(axis=(1, 3)).astype(np.uint8)


def patch_any(mask: np.ndarray, patch: int) -> np.ndarray:
    """uint8 per patch of an [H, W] mask: 1 where the patch holds a nonzero pixel."""
    m = np.asarray(mask) != 0
    h, w = m.shape
    gh, gw = grid(h, w, patch)
    padded = np.zeros((gh * patch, gw * patch), bool)
    padded[:h, :w] = m
    return padded.reshape(gh, patch, gw, patch).any(axis=(1, 3)).astype(np.uint8)


def expand_patches(pmap: np.ndarray, h: int, w: int, patch: int) -> np.ndarray:
    """Per-patch map -> per-pixel [h, w] uint8 (each patch's value on its pixels)."""
    return np.repeat(np.repeat(np.asarray(pmap, np.uint8), patch, axis=0), patch, axis=1)[:h, :w]


def receptive_dilation(changed: np.ndarray, out_hw: tuple[int, int], kernel: tuple[int, int],
                       stride: tuple[int, int], pad: tuple[int, int]) -> np.ndarray:
    """uint8 [OH, OW]: 1 where the output pixel's window (clipped to the image) meets a changed pixel."""
    m = (np.asarray(changed) != 0).astype(np.int64)
    h, w = m.shape
    ps = np.zeros((h + 1, w + 1), np.int64)
    ps[1:, 1:] = m.cumsum(axis=0).cumsum(axis=1)
    oy, ox = np.arange(out_hw[0]), np.arange(out_hw[1])
    y0 = np.clip(oy * stride[0] - pad[0], 0, h)
    y1 = np.clip(oy * stride[0] - pad[0] + kernel[0], 0, h)
    x0 = np.clip(ox * stride[1] - pad[1], 0, w)
    x1 = np.clip(ox * stride[1] - pad[1] + kernel[1], 0, w)
    count = ps[np.ix_(y1, x1)] - ps[np.ix_(y0, x1)] - ps[np.ix_(y1, x0)] + ps[np.ix_(y0, x0)]
    return (count > 0).astype(np.uint8)
