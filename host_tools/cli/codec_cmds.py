"""`octo codec bench`: bytes, compression ratio and reconstruction error of the split-learning codecs
(SGQ, uniform, fp32; docs/SGQ.md) on a saved tensor of features or gradients, offline.

The tensor [N,H,W,C] is cut into payloads of --batch samples (the last one may be shorter), each
encoded and decoded exactly as a training loop would; bytes are whole payloads, headers included.
numpy is imported inside the functions so `octo --help` stays instant.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from host_tools.errors import OctoError
from host_tools.output import Output
from host_tools.sgq.bench import run_bench

if TYPE_CHECKING:
    import numpy as np


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
    import zipfile  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    from host_tools.sgq.codec import MAX_DIM  # noqa: PLC0415

    if not path.exists():
        raise OctoError(f"{path} does not exist")
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise OctoError(f"{path} is not a readable .npy file ({type(exc).__name__}: {str(exc)[:100]})") from None
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
    if groups > x.shape[-1]:
        raise OctoError(f"--groups {groups}: {path} has {x.shape[-1]} channels; use 1..{x.shape[-1]}")
    out.say(f"{path}: {kind} {'x'.join(map(str, x.shape))}, payloads of {batch} sample(s)")
    doc = run_bench(x, codecs, bits, kind, batch, groups=groups, stripe=stripe, rounding=rounding,
                    seed=int(getattr(args, "seed", 0)), clip=bool(getattr(args, "clip", False)),
                    entropy=bool(getattr(args, "entropy", False)))
    print_table(out, doc)
    out.emit(SCHEMA, {"input": str(path), **doc})
    return 0
