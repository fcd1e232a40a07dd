"""Codec benchmark: bytes, ratio against fp32 and reconstruction error of each codec and bit width on a saved
tensor (what `octo codec bench` prints)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from host_tools.sgq.codec import TensorCodec


def error_metrics(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Relative L2 (||y-x|| / ||x||), max |y-x| and cosine of reconstruction y against x, in float64.
    An all-zero x gives rel_l2 0 (exact) or 1, and cosine 1 when both are zero."""
    import numpy as np  # noqa: PLC0415

    xd, yd = x.astype(np.float64).ravel(), y.astype(np.float64).ravel()
    diff = float(np.linalg.norm(yd - xd))
    nx, ny = float(np.linalg.norm(xd)), float(np.linalg.norm(yd))
    rel = diff / nx if nx > 0 else (0.0 if diff == 0 else 1.0)
    if nx > 0 and ny > 0:
        cos = float(xd @ yd) / (nx * ny)
    else:
        cos = 1.0 if nx == ny == 0 else 0.0
    return {"rel_l2": rel, "max_abs": float(np.max(np.abs(yd - xd))) if xd.size else 0.0, "cosine": cos}


def bench_codec(x: np.ndarray, codec: TensorCodec, batch: int, kind: str) -> dict[str, Any]:
    """Encode x in payloads of `batch` samples with a TensorCodec, decode, and measure."""
    import numpy as np  # noqa: PLC0415

    encode = codec.encode_gradients if kind == "gradients" else codec.encode_features
    decode = codec.decode_gradients if kind == "gradients" else codec.decode_features
    total = payloads = 0
    parts = []
    t0 = time.perf_counter()
    for start in range(0, len(x), batch):
        payload = encode(x[start:start + batch])
        total += len(payload)
        payloads += 1
        parts.append(decode(payload))
    seconds = time.perf_counter() - t0
    y = np.concatenate(parts)
    return {"payloads": payloads, "bytes": total, "bytes_per_sample": total / len(x), "seconds": seconds,
            **error_metrics(x, y)}


def run_bench(x: np.ndarray, codecs: list[str], bits: list[int], kind: str, batch: int, groups: int = 4,
              stripe: tuple[int, int] = (2, 0), rounding: str = "nearest", seed: int = 0,
              clip: bool = False, entropy: bool = False) -> dict[str, Any]:
    """The octo.codec_bench/1 document (without "schema" and "input") for these settings."""
    from host_tools.sgq.codec import CLIP_ALPHA8, make_codec  # noqa: PLC0415

    fp32 = bench_codec(x, make_codec("fp32"), batch, kind)
    results = []
    for name in codecs:
        for b in [32] if name == "fp32" else bits:
            codec = make_codec(name, b if name != "fp32" else 4, groups=groups, stripe=stripe,
                               gradient_rounding=rounding, seed=seed, clip=clip, entropy=entropy)
            r = fp32 if name == "fp32" else bench_codec(x, codec, batch, kind)
            entry: dict[str, Any] = {"codec": name, "bits": b}
            if name == "sgq":
                entry.update(groups=groups, stripe_h=stripe[0], stripe_w=stripe[1])
            if clip and name != "fp32":
                entry["clip_alpha8"] = CLIP_ALPHA8[b]  # alpha in eighths, 0 = none at this width
            if entropy and name != "fp32":
                entry["entropy"] = True
            entry.update(r)
            entry["ratio_vs_fp32"] = fp32["bytes"] / r["bytes"]
            results.append(entry)
    n, h, w, c = x.shape
    return {"kind": kind, "shape": [n, h, w, c], "batch": batch, "samples": n,
            "fp32_bytes_per_sample": fp32["bytes_per_sample"], "gradient_rounding": rounding, "results": results}
