"""`octo codec bench`: bytes, compression ratio and reconstruction error of the split-learning codecs
(SGQ, uniform, fp32; docs/SGQ.md) on a saved tensor of features or gradients, offline.

The tensor [N,H,W,C] is cut into payloads of --batch samples (the last one may be shorter), each
encoded and decoded exactly as a training loop would; bytes are whole payloads, headers included.
numpy is imported inside the functions so `octo --help` stays instant.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from host_tools.errors import OctoError
from host_tools.output import Output

if TYPE_CHECKING:
    import numpy as np

    from host_tools.sgq.codec import TensorCodec

SCHEMA = "octo.codec_bench/1"
KINDS = ("features", "gradients")


def _parse_list(text: str, flag: str) -> list[str]:
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise OctoError(f"{flag} needs at least one value")
    return items


def _parse_bits(text: str) -> list[int]:
    out = []
    for item in _parse_list(text, "--bits"):
        if item not in ("2", "4", "8"):
            raise OctoError(f"--bits {item!r}: SGQ and uniform quantize to 2, 4 or 8 bits")
        out.append(int(item))
    return sorted(set(out), key=out.index)


def _parse_codecs(text: str) -> list[str]:
    from host_tools.sgq.codec import CODECS  # noqa: PLC0415

    names = _parse_list(text, "--codec")
    for name in names:
        if name not in CODECS:
            raise OctoError(f"--codec {name!r} is not a codec (known: {', '.join(CODECS)})")
    return sorted(set(names), key=names.index)


def _parse_stripe(text: str) -> tuple[int, int]:
    """"2x0" -> (2, 0): stripe rows x columns, 0 = the full height/width."""
    parts = str(text).lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise OctoError(f"--stripe {text!r}: use ROWSxCOLS, e.g. 2x0 (2-row bands) or 1x1 (1x1xC columns)")
    return int(parts[0]), int(parts[1])


def load_tensor(path: Path) -> np.ndarray:
    """A finite float tensor [N,H,W,C] from an .npy file, as float32; OctoError otherwise."""
    import numpy as np  # noqa: PLC0415

    from host_tools.sgq.codec import MAX_DIM  # noqa: PLC0415

    if not path.exists():
        raise OctoError(f"{path} does not exist")
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise OctoError(f"{path} is not a readable .npy file ({exc})") from None
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "fiu":
        raise OctoError(f"{path} holds {getattr(x, 'dtype', type(x))}, not a numeric array")
    if x.ndim != 4:
        raise OctoError(f"{path} has shape {x.shape}; the codecs take [N,H,W,C] (NHWC features or gradients)",
                        hint="save one sample as x[None] to get N = 1")
    if x.size == 0 or max(x.shape) > MAX_DIM:
        raise OctoError(f"{path} has shape {x.shape}; each dimension must be 1..{MAX_DIM}")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise OctoError(f"{path} has inf or NaN values")
    return x


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


def print_table(out: Output, doc: dict[str, Any]) -> None:
    out.say(f"{'codec':<8} {'bits':>4} {'setting':<13} {'bytes/sample':>12} {'ratio':>6} {'rel L2':>8} "
            f"{'max abs':>10} {'cosine':>8}")
    for r in doc["results"]:
        setting = f"G{r['groups']} {r['stripe_h']}x{r['stripe_w']}" if r["codec"] == "sgq" else "-"
        if r.get("clip_alpha8"):
            setting += f" clip {r['clip_alpha8'] / 8:g}"
        if r.get("entropy"):
            setting += " rc"
        out.say(f"{r['codec']:<8} {r['bits']:>4} {setting:<13} {r['bytes_per_sample']:>12.1f} "
                f"{r['ratio_vs_fp32']:>6.2f} {r['rel_l2']:>8.4f} {r['max_abs']:>10.4g} {r['cosine']:>8.5f}")


def cmd_codec_bench(args: argparse.Namespace) -> int:
    out = Output(getattr(args, "json", None))
    kind = getattr(args, "kind", "features")
    if kind not in KINDS:
        raise OctoError(f"--kind {kind!r}: use features or gradients")
    batch = int(getattr(args, "batch", 16))
    if batch < 1:
        raise OctoError(f"--batch {batch}: need at least 1 sample per payload")
    groups = int(getattr(args, "groups", 4))
    if not 1 <= groups <= 255:
        raise OctoError(f"--groups {groups}: use 1..255 (it is capped at the channel count)")
    rounding = getattr(args, "rounding", "nearest")
    if rounding not in ("nearest", "stochastic"):
        raise OctoError(f"--rounding {rounding!r}: use nearest or stochastic")
    codecs = _parse_codecs(getattr(args, "codec", "sgq"))
    bits = _parse_bits(getattr(args, "bits", "2,4,8"))
    stripe = _parse_stripe(getattr(args, "stripe", "2x0"))
    path = Path(args.features)
    x = load_tensor(path)
    out.say(f"{path}: {kind} {'x'.join(map(str, x.shape))}, payloads of {batch} sample(s)")
    doc = run_bench(x, codecs, bits, kind, batch, groups=groups, stripe=stripe, rounding=rounding,
                    seed=int(getattr(args, "seed", 0)), clip=bool(getattr(args, "clip", False)),
                    entropy=bool(getattr(args, "entropy", False)))
    print_table(out, doc)
    out.emit(SCHEMA, {"input": str(path), **doc})
    return 0
