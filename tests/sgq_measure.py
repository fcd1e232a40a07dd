"""The measurements behind docs/SGQ.md (codec only; the collaborative training loop is measured elsewhere).

    .venv/bin/python -m tests.sgq_measure            # prints the markdown tables (about a minute)
    .venv/bin/python -m tests.sgq_measure --no-keras # numpy-only data sets (seconds)

Data sets:
  * digits conv2 (Keras): the zoo digits CNN (models/digits_cnn.py) trained with Keras; features = conv2
    output (after ReLU) and gradients = d loss / d conv2 output of 256 held-out samples, after 1 epoch
    ("early") and after 31 epochs ("trained"). Shape [8,8,16] per sample: the split point of the issue.
  * numpy proxies, also used by tests/python/test_sgq.py: digits images through two random 3x3 convs
    with ReLU ([8,8,16]); a larger map (digits upsampled to 32x32, 32 channels); heavy-tailed gradients
    (Student t, 3 degrees of freedom) with the max-pool backward sparsity pattern.
"""

from __future__ import annotations

import argparse
import math
import os
from typing import Any

import numpy as np

from host_tools.sgq import codec as S
from host_tools.sgq.bench import error_metrics, run_bench

# -- numpy data sets (deterministic) ------------------------------------------------------------------


def _conv3x3_relu(x: np.ndarray, cout: int, rng: np.random.Generator) -> np.ndarray:
    n, h, w, cin = x.shape
    k = rng.normal(0.0, math.sqrt(2.0 / (9 * cin)), size=(3, 3, cin, cout)).astype(np.float32)
    b = rng.normal(0.0, 0.05, size=cout).astype(np.float32)
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    y = np.zeros((n, h, w, cout), dtype=np.float32)
    for dy in range(3):
        for dx in range(3):
            y += xp[:, dy:dy + h, dx:dx + w, :] @ k[dy, dx]
    return np.maximum(y + b, 0.0)


def digits_conv_features(n: int = 256, size: int = 8, channels: tuple[int, int] = (8, 16),
                         seed: int = 0) -> np.ndarray:
    """sklearn digits through conv3x3(ReLU) -> conv3x3(ReLU) with random He filters: [n, size, size, C]."""
    from sklearn.datasets import load_digits

    img = (load_digits().images[:n].astype(np.float32) / 16.0)[..., None]
    if size != 8:
        img = img.repeat(size // 8, axis=1).repeat(size // 8, axis=2)
    rng = np.random.default_rng(seed)
    x = img
    for c in channels:
        x = _conv3x3_relu(x, c, rng)
    return x


def heavy_tailed_gradients(shape: tuple[int, int, int, int] = (256, 8, 8, 16), seed: int = 0,
                           pooled: bool = True) -> np.ndarray:
    """Student-t (3 dof) values with per-sample and per-channel scales; with `pooled`, only one position
    per 2x2 window and channel is non-zero (what a max-pool's backward pass leaves)."""
    rng = np.random.default_rng(seed)
    n, h, w, c = shape
    g = rng.standard_t(3, size=shape) * rng.lognormal(0, 0.5, size=(n, 1, 1, 1)) * \
        rng.lognormal(0, 0.7, size=(1, 1, 1, c)) * 1e-3
    if pooled:
        pick = rng.integers(0, 4, size=(n, h // 2, w // 2, c))
        mask = np.zeros(shape, dtype=bool)
        for k in range(4):
            dy, dx = divmod(k, 2)
            mask[:, dy::2, dx::2, :] = pick == k
        g = g * mask
    return g.astype(np.float32)


def keras_digits_split(epochs: tuple[int, int] = (1, 30), n: int = 256) -> dict[str, np.ndarray]:
    """conv2 features and loss gradients of the zoo digits CNN on held-out samples (Keras)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    from models.digits_cnn import build_model, load_digits_split

    x_tr, y_tr, x_te, y_te = load_digits_split(0)
    model = build_model(0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    front = keras.Model(model.input, model.get_layer("conv2").output)
    tail = model.layers[model.layers.index(model.get_layer("conv2")) + 1:]

    def split(tag: str) -> dict[str, np.ndarray]:
        f = front(x_te[:n])
        with tf.GradientTape() as tape:
            tape.watch(f)
            h = f
            for layer in tail:
                h = layer(h)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y_te[:n], h))
        return {f"features_{tag}": f.numpy(), f"gradients_{tag}": tape.gradient(loss, f).numpy()}

    out: dict[str, np.ndarray] = {}
    model.fit(x_tr, y_tr, epochs=epochs[0], batch_size=32, verbose=0)
    out.update(split("early"))
    model.fit(x_tr, y_tr, epochs=epochs[1], batch_size=32, verbose=0)
    out.update(split("trained"))
    return out


# -- tables ------------------------------------------------------------------------------------------


def _sgq_error(x: np.ndarray, kind: str, batch: int = 16, **params: Any) -> tuple[float, float, float]:
    """(bytes/sample, rel L2, cosine) of SGQ with explicit SgqParams fields over payloads of `batch`."""
    params.setdefault("range_mode", S.RANGE_AUTO if kind == "features" else S.RANGE_SYMMETRIC)
    p = S.SgqParams(**params)
    total = 0
    ys = []
    for i in range(0, len(x), batch):
        q, scale = S.quantize_int8(x[i:i + batch])
        payload = S.encode(q, scale, p)
        total += len(payload)
        ys.append(S.decode(payload).values())
    m = error_metrics(x, np.concatenate(ys))
    return total / len(x), m["rel_l2"], m["cosine"]


def table_codecs(name: str, x: np.ndarray, kind: str) -> list[str]:
    rows = [f"\n#### {name}: {kind} {'x'.join(map(str, x.shape[1:]))}, {len(x)} samples\n",
            "| codec | bits | B/sample @1 | ratio @1 | B/sample @16 | ratio @16 | rel L2 @16 | cosine @16 |",
            "|---|---|---|---|---|---|---|---|"]
    one = run_bench(x[:64], ["sgq", "uniform", "fp32"], [2, 4, 8], kind, 1)
    six = run_bench(x, ["sgq", "uniform", "fp32"], [2, 4, 8], kind, 16)
    for a, b in zip(one["results"], six["results"], strict=True):
        rows.append(f"| {b['codec']} | {b['bits']} | {a['bytes_per_sample']:.1f} | {a['ratio_vs_fp32']:.2f} | "
                    f"{b['bytes_per_sample']:.1f} | {b['ratio_vs_fp32']:.2f} | {b['rel_l2']:.4f} | {b['cosine']:.5f} |")
    return rows


def table_grid(name: str, x: np.ndarray, kind: str) -> list[str]:
    rows = [f"\n#### Groups x stripes, {name} ({kind}), payloads of 16: B/sample, rel L2\n",
            "| bits | stripe | G=1 | G=2 | G=4 | G=8 |", "|---|---|---|---|---|---|"]
    h, w = x.shape[1:3]
    for bits in (2, 4):
        for sh, sw, label in ((1, w, "1-row band"), (2, w, "2-row band"), (4, w, "4-row band"),
                              (h, w, "whole map"), (2, 2, "2x2 tile"), (1, 1, "1x1xC column")):
            cells = []
            for g in (1, 2, 4, 8):
                b, e, _ = _sgq_error(x, kind, bits=bits, groups=g, stripe_h=sh, stripe_w=sw)
                cells.append(f"{b:.0f} B, {e:.4f}")
            rows.append(f"| {bits} | {label} | " + " | ".join(cells) + " |")
    return rows


def table_grouping(data: dict[str, tuple[np.ndarray, str]]) -> list[str]:
    rows = ["\n#### Channel grouping (G=4, 2-row bands, payloads of 16): rel L2\n",
            "| data | bits | contiguous (similar together) | interleaved | random, fixed "
            "| contiguous, fixed from batch 1 |",
            "|---|---|---|---|---|---|"]
    for name, (x, kind) in data.items():
        c = x.shape[-1]
        rand_map = tuple(int(v) for v in np.random.default_rng(1).permutation(np.arange(c) * 4 // c))
        for bits in (2, 4):
            q0, _ = S.quantize_int8(x[:16])
            v0 = q0.astype(np.int64) if kind == "features" else np.maximum(q0.astype(np.int64), -127)
            first = tuple(int(v) for v in S.group_channels(v0, 4))
            cells = [_sgq_error(x, kind, bits=bits, groups=4, stripe_h=2, grouping=S.GROUP_CONTIGUOUS)[1],
                     _sgq_error(x, kind, bits=bits, groups=4, stripe_h=2, grouping=S.GROUP_INTERLEAVED)[1],
                     _sgq_error(x, kind, bits=bits, groups=4, stripe_h=2, group_map=rand_map)[1],
                     _sgq_error(x, kind, bits=bits, groups=4, stripe_h=2, group_map=first)[1]]
            rows.append(f"| {name} | {bits} | " + " | ".join(f"{e:.4f}" for e in cells) + " |")
    return rows


def table_rounding(data: dict[str, np.ndarray]) -> list[str]:
    rows = ["\n#### Gradient rounding (G=4, 2-row bands, one payload of 16 samples, against its int8 tensor)\n",
            "| data | bits | rounding | rel L2, one encoding | cosine | rel L2 of the mean of 64 encodings (bias) |",
            "|---|---|---|---|---|---|"]
    for name, g in data.items():
        q, _ = S.quantize_int8(g[:16])
        qf = q.astype(np.float64)
        for bits in (2, 4):
            for rounding, label in ((S.ROUND_NEAREST, "nearest"), (S.ROUND_STOCHASTIC, "stochastic")):
                decs = []
                for seed in range(64 if rounding == S.ROUND_STOCHASTIC else 1):
                    p = S.SgqParams(bits=bits, groups=4, stripe_h=2, range_mode=S.RANGE_SYMMETRIC,
                                    rounding=rounding, seed=seed)
                    decs.append(S.decode(S.encode(q, 1.0, p)).q.astype(np.float64))
                one = error_metrics(qf, decs[0])
                bias = error_metrics(qf, np.mean(decs, axis=0))["rel_l2"]
                rows.append(f"| {name} | {bits} | {label} | {one['rel_l2']:.4f} | {one['cosine']:.4f} | {bias:.4f} |")
    return rows


def table_ranges(x: np.ndarray) -> list[str]:
    rows = ["\n#### ReLU features: [0, hi] ranges (1 byte) vs [lo, hi] (2 bytes), G=4, 2-row bands\n",
            "| bits | unsigned B/sample | unsigned rel L2 | asymmetric B/sample | asymmetric rel L2 |",
            "|---|---|---|---|---|"]
    for bits in (2, 4):
        bu, eu, _ = _sgq_error(x, "features", bits=bits, groups=4, stripe_h=2, range_mode=S.RANGE_UNSIGNED)
        ba, ea, _ = _sgq_error(x, "features", bits=bits, groups=4, stripe_h=2, range_mode=S.RANGE_ASYMMETRIC)
        rows.append(f"| {bits} | {bu:.1f} | {eu:.4f} | {ba:.1f} | {ea:.4f} |")
    return rows


def table_entropy(data: dict[str, tuple[np.ndarray, str]]) -> list[str]:
    """Order-0 entropy of the fixed-width codes (what a static entropy coder could save at best) and what the
    adaptive range coder (format version 2, SgqParams.entropy) actually writes, per coded value."""
    rows = ["\n#### Code entropy (order 0) and the range coder, default settings, payloads of 16\n",
            "| data | bits | entropy bits/code | range-coded bits/code (stream incl. its 4-byte tail) | saving on "
            "the codes |", "|---|---|---|---|---|"]
    for name, (x, kind) in data.items():
        for bits in (2, 4):
            codec = S.make_codec("sgq", bits)
            rc_codec = S.make_codec("sgq", bits, entropy=True)
            counts = np.zeros(1 << bits)
            fixed_bytes = rc_bytes = coded = 0
            for i in range(0, len(x), 16):
                batch = x[i:i + 16]
                payload, rc_payload = ((c.encode_gradients(batch) if kind == "gradients" else c.encode_features(batch))
                                       for c in (codec, rc_codec))
                info = S.parse_header(payload)
                body = payload[info.head_len:]
                n_codes = len(body) * 8 // bits
                codes, _ = S.unpack_bits(body, n_codes, bits)
                counts += np.bincount(codes, minlength=1 << bits)
                fixed_bytes += len(body)
                rc_bytes += len(rc_payload) - info.head_len
                coded += n_codes  # the fixed-width section's code slots (its last byte may hold padding)
            p = counts[counts > 0] / counts.sum()
            h = float(-(p * np.log2(p)).sum())
            rows.append(f"| {name} | {bits} | {h:.2f} | {8 * rc_bytes / coded:.2f} | "
                        f"{100 * (1 - rc_bytes / fixed_bytes):.0f}% |")
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-keras", action="store_true", help="numpy data sets only")
    args = ap.parse_args(argv)
    sets: dict[str, tuple[np.ndarray, str]] = {}
    if not args.no_keras:
        k = keras_digits_split()
        sets["digits conv2 trained"] = (k["features_trained"], "features")
        sets["digits conv2 early"] = (k["features_early"], "features")
        sets["digits conv2 grad trained"] = (k["gradients_trained"], "gradients")
        sets["digits conv2 grad early"] = (k["gradients_early"], "gradients")
    sets["numpy digits-conv proxy"] = (digits_conv_features(), "features")
    sets["numpy 32x32x32 conv proxy"] = (digits_conv_features(n=64, size=32, channels=(16, 32)), "features")
    sets["heavy-tailed pooled grads"] = (heavy_tailed_gradients(), "gradients")
    lines: list[str] = []
    for name, (x, kind) in sets.items():
        lines += table_codecs(name, x, kind)
    main_f = next(n for n, (_, k) in sets.items() if k == "features")
    main_g = next(n for n, (_, k) in sets.items() if k == "gradients")
    lines += table_grid(main_f, sets[main_f][0], "features")
    lines += table_grid(main_g, sets[main_g][0], "gradients")
    lines += table_grouping({n: sets[n] for n in sets if sets[n][0].shape[1] == 8})
    lines += table_rounding({n: x for n, (x, k) in sets.items() if k == "gradients"})
    lines += table_ranges(sets[main_f][0])
    lines += table_entropy({n: sets[n] for n in (main_f, main_g)})
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
