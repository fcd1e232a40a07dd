"""Self-supervised training of PASS gates (firmware/include/octo/octo_pass.h) on unlabelled video.

A PASS gate decides, per P x P patch of a conv layer's int8 input, whether the patch changed since the
cached ("effective") patch E, from two integer statistics of |cur - E| over the patch's sampled elements
(host_tools/video/ref.py, bit-exact with the device): mean_q8 = (sum * 256) // n and mx = max. The rule is
linear: changed <=> mx > 0 and a_mean * mean_q8 + a_max * (mx * 256) > threshold. Training finds
(a_mean, a_max, threshold) per gated layer, with no annotations, in five steps:

1. Layer inputs. The INT8 .tflite runs over the frames (frame / 255 quantized with the model's input
   parameters, as ``octo video`` feeds the board) in LiteRT with every intermediate tensor preserved and
   no delegate (XNNPACK would fuse layers and leave the intermediates stale; the builtin kernels equal
   TFLM's bit for bit); this yields each gated layer's int8 input X_t per frame.
2. Pairs. For every frame t >= 1 one earlier frame t - k, k uniform in 1..min(max_gap, t), so the pairs
   cover the drift that accumulates while a patch stays cached (E is usually a few frames old, not t-1).
3. Pseudo-labels from the network itself. For a pair and patch p, the input difference
   D_p = (X_t - X_{t-k}) * s_in restricted to p (zero points cancel) is pushed through the layer's
   dequantized filters: R_p = conv(D_p, W) at stride 1 over the full support of the patch (the superset
   of the output positions any stride samples; by linearity this is exactly the pre-activation change the
   patch alone causes there, bias and requantization aside). Its size relative to the layer's normal
   output variation, rel_p = max over positions and channels c of |R_p[., c]| / sigma_c (sigma_c: the
   standard deviation of output channel c's pre-activation over the frames, at least a tenth of the
   median channel's), labels the patch "changed" when rel_p > tolerance and "same" otherwise.
   ``tolerance`` is the knob: higher = more change counted as "same" = more skipping, less accuracy.
   On the video CNN sensor noise gives rel_p < 0.5 at every layer (99th percentile) and a digit moving
   in gives rel_p > 0.7-2.7 (10th percentile, deepest to first layer). The default 0.75 keeps a held-out
   static clip within 1 pp of dense (1.0 skips a little more and loses about 1 pp; bench/results/pass.json,
   tolerance knob). Near 0.5 the noise of layer 0 itself counts as change: every patch is recomputed and
   every frame becomes a scene cut; on a weakly trained model (a 2-epoch test model) 0.75 already does.
4. Contrastive fit. Per patch, the device statistics f = (mean, max) = (mean_q8 / 256, mx) in input LSBs
   (from pass_ref.gate_stats, sampled exactly as on the device) feed a learned distance
   d = softplus(w . f / 16 + b), w = softplus(u) >= 0 (a monotone gate: a bigger difference never looks
   more "same"). The Hadsell et al. margin loss pulls "same" pairs to d = 0 and pushes "changed" pairs
   beyond the margin: L = mean_same(d^2) / 2 + mean_changed(max(0, margin - d)^2) / 2 (the two classes
   weighted equally; identical patches, mx = 0, are left out: the device skips them anyway). Adam,
   full batch, a fixed number of steps (TensorFlow, imported lazily).
5. Threshold and integers. d is monotone in the score s = w . f, so the gate is s > theta; theta is placed on
   the training pairs to minimise (false "changed") + miss_weight * (missed "changed"): a miss costs
   accuracy, a false alarm only MACs. Scaling by K = 2^15 / max(w) gives a_mean = round(w_mean * K),
   a_max = round(w_max * K), threshold = floor(256 * K * theta); the largest possible score,
   (a_mean + a_max) * 255 * 256, is checked to fit int64 with room, and the agreement of the integer rule
   (pass_ref.gate_map) with the float rule on every training patch is reported.

The result (``train_gates``) is the gates file converter/pass_codegen.py reads: {"version": 1,
"cut_permille", "tolerance", "fingerprint" (CRC-32 of the .tflite), "frames", "max_gap", "miss_weight",
"seed", "layers": [{"op", "name", "patch", "sample", "a_mean", "a_max", "threshold",
"float": {w_mean, w_max, bias, theta, tau = softplus(theta + b), margin, loss, sigma},
"train": {pairs, patches, changed_fraction, predicted_skip_rate, recall_changed, precision, agreement},
"cost": {elements_per_patch, dense_macs_per_patch, ratio, elements_per_frame, ratio_per_frame}}]}.
``evaluate_gates`` scores gates on other frames against the same pseudo-labels; ``gate_cost`` compares the
elements a gate reads per patch with the layer's dense MACs for that patch's area (the issue's limit: 5%).

Defaults and what they give (models/video_cnn.py, 64x64 input): conv1 P=4 S=2 (4 elements per patch,
1.4% of its MACs; P=8 halves the gate's instructions but, on a weakly trained model, labels sensor noise
"changed" and every frame ends up dense), conv2/conv3/conv4 P=2 S=1 (0.7%, 0.35%, 0.35%). With S > 1
the sampling grid moves every frame (phase = frame mod S*S, pass_ref.phase_offsets), so every pixel is
read once every S*S frames: a change on unsampled pixels is seen a few frames late, never missed for
good. The trainer shows the gate every pair at every phase, so the fit does not favour one grid.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from host_tools.video import ref as pass_ref

GATES_VERSION = 1
DEFAULT_TOLERANCE = 0.75      # rel_p above this = "changed" (in units of the output channel's std)
DEFAULT_MAX_GAP = 8           # pairs (t, t - k), k in 1..DEFAULT_MAX_GAP
DEFAULT_MISS_WEIGHT = 3.0     # a missed "changed" patch costs this many false alarms
DEFAULT_CUT_PERMILLE = 500    # dense frame when layer 0's gates mark >= 50% of its patches changed
BASE_PATCH = 4                # P at the model input; scaled down with the layer's resolution, at least 2
GATE_COST_LIMIT = 0.05        # gate elements per patch <= 5% of the layer's dense MACs for the patch area
MARGIN = 1.0                  # contrastive margin on d
FEATURE_SCALE = 16.0          # input LSBs per unit of the fitted features (conditioning only)
FIT_STEPS = 300
FIT_LR = 0.05
FIT_MAX_SAMPLES = 60_000      # per class, a seeded subsample (the fit has three parameters)
COEF_SCALE = 1 << 15          # the larger of a_mean, a_max
STAT_MAX = 255 * 256          # largest mean_q8 and max_q8 (|cur - E| <= 255)

Say = Callable[[str], None]


def _quiet(_msg: str) -> None:
    pass


@dataclass
class _Layer:
    op: int
    name: str
    in_tensor: int
    in_shape: tuple[int, int, int]      # h, w, c
    out_shape: tuple[int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: str
    s_in: float
    zp_in: int
    w_real: np.ndarray                  # [kh, kw, C, OC] float32 (tf.nn.conv2d layout)
    bias_real: np.ndarray               # [OC] float32
    patch: int
    sample: int

    @property
    def dense_macs(self) -> int:
        oh, ow, oc = self.out_shape
        return oh * ow * oc * self.kernel[0] * self.kernel[1] * self.in_shape[2]


# -- model ------------------------------------------------------------------------------------------


def _load_graph(tflite_path: str | Path) -> tuple[bytes, Any]:
    from converter.pass_codegen import check_chain  # noqa: PLC0415
    from converter.rewrite import rewrite_graph  # noqa: PLC0415
    from converter.tflite_reader import parse_tflite  # noqa: PLC0415

    data = Path(tflite_path).read_bytes()
    g = rewrite_graph(parse_tflite(data, str(tflite_path)))
    check_chain(g)
    return data, g


def default_sample(channels: int) -> int:
    """2 (every other row and column) on single-channel inputs, else 1."""
    return 2 if channels == 1 else 1


def _layers(g: Any, ops: list[int] | None, patch: dict[int, int] | None,
            sample: dict[int, int] | None) -> list[_Layer]:
    from converter.codegen import layer_name  # noqa: PLC0415
    from converter.pass_codegen import default_patch  # noqa: PLC0415

    convs = [op.index for op in g.ops if op.kind == "CONV_2D"]
    if ops is None:
        ops = [i for i in convs if tuple(g.tensors[g.ops[i].inputs[1]].shape[1:3]) != (1, 1)]
    bad = [i for i in ops if i not in convs]
    if bad:
        raise ValueError(f"layers {bad} are not CONV_2D op indices of this model (CONV_2D ops: {convs})")
    out = []
    for i in ops:
        op = g.ops[i]
        x, f, b, y = (g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.inputs[2]],
                      g.tensors[op.outputs[0]])
        s_in, zp_in = x.qparams()
        w_scale = np.broadcast_to(np.asarray(f.scale, np.float64), (f.shape[0],))
        w_real = (f.data.astype(np.float64) * w_scale[:, None, None, None]).astype(np.float32)
        bias = (b.data.astype(np.float64) * s_in * w_scale).astype(np.float32)
        _, h, w, c = x.shape
        p = int((patch or {}).get(i, default_patch(g, i, BASE_PATCH)))
        s = int((sample or {}).get(i, default_sample(c)))
        if p < 1 or s < 1:
            raise ValueError(f"op {i}: patch and sample must be >= 1, got {p}, {s}")
        out.append(_Layer(i, layer_name(y.name, f"{op.kind.lower()}_{op.index}"), op.inputs[0], (h, w, c),
                          tuple(y.shape[1:4]), (f.shape[1], f.shape[2]),
                          (int(op.options["stride_h"]), int(op.options["stride_w"])), str(op.options["padding"]),
                          s_in, zp_in, np.ascontiguousarray(w_real.transpose(1, 2, 3, 0)), bias, p, s))
    return out


def quantize_frames(frames: np.ndarray, g: Any) -> np.ndarray:
    """uint8 [T, H, W] (or [T, H, W, C]) -> the model's int8 input [T, H, W, C]: frame / 255 quantized with
    the model's input parameters (what host_tools/video/run.py sends to the board)."""
    from converter.pipeline import quantize_inputs  # noqa: PLC0415

    x = np.asarray(frames)
    if x.ndim == 3:
        x = x[..., None]
    shape = tuple(g.input.shape[1:])
    if x.ndim != 4 or tuple(x.shape[1:]) != shape:
        raise ValueError(f"frames have shape {tuple(np.asarray(frames).shape)}; the model takes [T, "
                         f"{', '.join(str(d) for d in shape)}] (a trailing 1 may be left out)")
    scale, zp = g.input.qparams()
    return quantize_inputs(x.astype(np.float32) / np.float32(255.0), scale, zp)


def layer_inputs(model: bytes, xq: np.ndarray, tensors: list[int]) -> dict[int, np.ndarray]:
    """Runs the INT8 model on every frame; returns {tensor index: int8 [T, H, W, C]}."""
    import warnings  # noqa: PLC0415

    from ai_edge_litert.interpreter import Interpreter, OpResolverType  # noqa: PLC0415

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # "preserve_all_tensors is for debugging": it is what we want here
        it = Interpreter(model_content=model, experimental_preserve_all_tensors=True,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    idx = it.get_input_details()[0]["index"]
    out = {t: np.empty((len(xq), *it.get_tensor(t).shape[1:]), np.int8) for t in tensors}
    for k, x in enumerate(xq):
        it.set_tensor(idx, x[None])
        it.invoke()
        for t in tensors:
            out[t][k] = it.get_tensor(t)[0]
    return out


# -- pairs, statistics, pseudo-labels ---------------------------------------------------------------


def make_pairs(frames: int, max_gap: int, seed: int) -> np.ndarray:
    """int64 [frames - 1, 2]: (t, t - k) for t >= 1, k uniform in 1..min(max_gap, t)."""
    if max_gap < 1:
        raise ValueError(f"max_gap must be >= 1, got {max_gap}")
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x9A55])
    t = np.arange(1, frames)
    k = np.minimum(rng.integers(1, max_gap + 1, size=len(t)), t)
    return np.stack([t, t - k], axis=1).astype(np.int64)


def _stats(x: np.ndarray, pairs: np.ndarray, patch: int, sample: int,
           frames: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per pair and patch: (mean_q8, mx) int64 [N, gh, gw], exactly as the device computes them on the sampling
    grid of frames[i] (default: every pair at phase 0)."""
    fr = np.zeros(len(pairs), np.int64) if frames is None else np.asarray(frames, np.int64)
    both = [pass_ref.gate_stats(x[a], x[b], patch, sample, int(f)) for (a, b), f in zip(pairs, fr, strict=True)]
    return np.stack([m for m, _ in both]), np.stack([mx for _, mx in both])


def _all_phases(pairs: np.ndarray, sample: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pair once per sampling phase (the device moves the grid every frame): (pairs [N * S*S, 2], the
    frame number of each, 0..S*S - 1)."""
    k = sample * sample
    return np.repeat(pairs, k, axis=0), np.tile(np.arange(k, dtype=np.int64), len(pairs))


def _channel_sigma(layer: _Layer, x: np.ndarray, limit: int = 64) -> np.ndarray:
    """Per output channel: std of the pre-activation output over (up to `limit`) frames, floored at a tenth
    of the median channel's (a dead channel must not make every tiny change look huge)."""
    import tensorflow as tf  # noqa: PLC0415

    pick = np.unique(np.linspace(0, len(x) - 1, min(limit, len(x))).astype(int))
    xr = (x[pick].astype(np.float32) - np.float32(layer.zp_in)) * np.float32(layer.s_in)
    y = tf.nn.conv2d(tf.constant(xr), tf.constant(layer.w_real), strides=list(layer.stride),
                     padding=layer.padding) + layer.bias_real
    sigma = np.std(y.numpy().reshape(-1, y.shape[-1]), axis=0).astype(np.float64)
    floor = max(0.1 * float(np.median(sigma)), 1e-12)
    return np.maximum(sigma, floor)


def _response(layer: _Layer, diff: np.ndarray, sigma: np.ndarray, chunk: int = 32) -> np.ndarray:
    """rel_p per pair and patch: float32 [N, gh, gw] (see the module docstring, step 3)."""
    import tensorflow as tf  # noqa: PLC0415

    h, w, c = layer.in_shape
    p = layer.patch
    gh, gw = pass_ref.grid(h, w, p)
    kh, kw = layer.kernel
    filt = tf.constant(layer.w_real / sigma[None, None, None, :].astype(np.float32))
    out = np.empty((len(diff), gh, gw), np.float32)
    for s in range(0, len(diff), chunk):
        d = diff[s:s + chunk].astype(np.float32) * np.float32(layer.s_in)
        n = len(d)
        padded = np.zeros((n, gh * p, gw * p, c), np.float32)
        padded[:, :h, :w] = d
        tiles = padded.reshape(n, gh, p, gw, p, c).transpose(0, 1, 3, 2, 4, 5).reshape(n * gh * gw, p, p, c)
        tiles = np.pad(tiles, ((0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1), (0, 0)))
        r = tf.nn.conv2d(tf.constant(tiles), filt, strides=1, padding="VALID")
        out[s:s + n] = tf.reduce_max(tf.abs(r), axis=(1, 2, 3)).numpy().reshape(n, gh, gw)
    return out


def _pseudo_labels(layer: _Layer, x: np.ndarray, pairs: np.ndarray, sigma: np.ndarray,
                   tolerance: float) -> np.ndarray:
    """bool [N, gh, gw]: the patch "changed" (rel_p > tolerance) for each pair."""
    diff = x[pairs[:, 0]].astype(np.int16) - x[pairs[:, 1]].astype(np.int16)
    return _response(layer, diff, sigma) > tolerance


# -- fit, threshold, integers -----------------------------------------------------------------------


def _fit(f: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, float, float]:
    """Contrastive margin fit of d = softplus(w . f / FEATURE_SCALE + b), w = softplus(u).
    Returns (w in per-input-LSB units [2], b, final loss)."""
    import tensorflow as tf  # noqa: PLC0415

    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0xF17])
    same, chg = np.flatnonzero(~y), np.flatnonzero(y)
    same = rng.choice(same, FIT_MAX_SAMPLES, replace=False) if len(same) > FIT_MAX_SAMPLES else same
    chg = rng.choice(chg, FIT_MAX_SAMPLES, replace=False) if len(chg) > FIT_MAX_SAMPLES else chg
    fs = tf.constant((f[same] / FEATURE_SCALE).astype(np.float32))
    fc = tf.constant((f[chg] / FEATURE_SCALE).astype(np.float32))
    u = tf.Variable(np.zeros(2, np.float32))
    b = tf.Variable(np.float32(-1.0))
    m = [tf.Variable(tf.zeros_like(v)) for v in (u, b)]   # Adam moments
    s = [tf.Variable(tf.zeros_like(v)) for v in (u, b)]

    @tf.function
    def step(t: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            w = tf.nn.softplus(u)
            ds = tf.nn.softplus(tf.linalg.matvec(fs, w) + b)
            dc = tf.nn.softplus(tf.linalg.matvec(fc, w) + b)
            loss = 0.5 * tf.reduce_mean(ds * ds) + 0.5 * tf.reduce_mean(tf.square(tf.nn.relu(MARGIN - dc)))
        grads = tape.gradient(loss, [u, b])
        for k, (v, gr) in enumerate(zip((u, b), grads, strict=True)):   # Adam, written out (no Keras needed)
            m[k].assign(0.9 * m[k] + 0.1 * gr)
            s[k].assign(0.999 * s[k] + 0.001 * gr * gr)
            mhat = m[k] / (1 - tf.pow(0.9, t))
            shat = s[k] / (1 - tf.pow(0.999, t))
            v.assign_sub(FIT_LR * mhat / (tf.sqrt(shat) + 1e-8))
        return loss

    loss = tf.constant(0.0)
    for t in range(1, FIT_STEPS + 1):
        loss = step(tf.constant(float(t)))
    w = tf.nn.softplus(u).numpy().astype(np.float64) / FEATURE_SCALE
    return w, float(b.numpy()), float(loss.numpy())


def _place_threshold(score: np.ndarray, y: np.ndarray, miss_weight: float) -> float:
    """theta minimising false alarms + miss_weight * misses of the rule score > theta (midway between the
    two scores around the best split)."""
    if len(score) == 0:
        return 0.0
    order = np.argsort(score, kind="stable")
    s, lab = score[order], y[order]
    fn = np.concatenate([[0], np.cumsum(lab)])                       # changed at or below the split
    fp = int((~lab).sum()) - np.concatenate([[0], np.cumsum(~lab)])  # same above the split
    cost = fp + miss_weight * fn
    valid = np.ones(len(s) + 1, bool)
    valid[1:-1] = s[1:] > s[:-1]                                       # no split inside a run of ties
    i = int(np.argmin(np.where(valid, cost, np.inf)))
    if i == 0:
        return float(s[0]) - 1.0
    if i == len(s):
        return float(s[-1])
    return 0.5 * float(s[i - 1] + s[i])


def _integer_gate(w: np.ndarray, theta: float) -> tuple[int, int, int]:
    """(a_mean, a_max, threshold) for mean_q8 = 256 * mean, max_q8 = 256 * max."""
    top = float(max(w.max(), 1e-12))
    k = COEF_SCALE / top
    a_mean, a_max = round(float(w[0]) * k), round(float(w[1]) * k)
    threshold = math.floor(theta * 256.0 * k)
    worst = (abs(a_mean) + abs(a_max)) * STAT_MAX
    if worst >= 1 << 62 or abs(threshold) >= 1 << 62:
        raise ValueError(f"gate coefficients overflow int64: {a_mean}, {a_max}, {threshold}")
    return a_mean, a_max, threshold


def _int_rule(mean_q8: np.ndarray, mx: np.ndarray, a_mean: int, a_max: int, threshold: int) -> np.ndarray:
    """The device rule on precomputed statistics (what pass_ref.gate_map computes)."""
    score = np.int64(a_mean) * mean_q8 + np.int64(a_max) * (mx * 256)
    return (mx > 0) & (score > np.int64(threshold))


def _metrics(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    n_chg, n_pred = int(y.sum()), int(pred.sum())
    hit = int((pred & y).sum())
    return {"changed_fraction": round(float(y.mean()), 5) if y.size else 0.0,
            "predicted_skip_rate": round(float(1.0 - pred.mean()), 5) if pred.size else 0.0,
            "recall_changed": round(hit / n_chg, 5) if n_chg else 1.0,
            "precision": round(hit / n_pred, 5) if n_pred else 1.0}


# -- cost -------------------------------------------------------------------------------------------


def _cost(layer: _Layer) -> dict[str, Any]:
    h, w, c = layer.in_shape
    p, s = layer.patch, layer.sample
    per_patch = -(-min(p, h) // s) * -(-min(p, w) // s) * c
    macs_per_patch = layer.dense_macs * min(p, h) * min(p, w) / (h * w)
    whole = int(pass_ref.gate_elements(h, w, c, p, s).sum())
    return {"elements_per_patch": int(per_patch), "dense_macs_per_patch": round(macs_per_patch, 1),
            "ratio": round(per_patch / macs_per_patch, 5), "elements_per_frame": whole,
            "ratio_per_frame": round(whole / layer.dense_macs, 5)}


def gate_cost(tflite_path: str | Path, gates: dict[str, Any] | None = None, *,
              limit: float | None = GATE_COST_LIMIT) -> list[dict[str, Any]]:
    """Per gated layer: the elements its gate reads per (interior) patch against the layer's dense MACs for
    that patch's area, and the same per frame. `gates` None = the default layers, patches and samples.
    Raises ValueError if a ratio exceeds `limit` (None: no check)."""
    _, g = _load_graph(tflite_path)
    if gates is None:
        layers = _layers(g, None, None, None)
    else:
        spec = gates.get("layers", [])
        layers = _layers(g, [int(x["op"]) for x in spec], {int(x["op"]): int(x["patch"]) for x in spec},
                         {int(x["op"]): int(x["sample"]) for x in spec})
    rows = [{"op": ly.op, "name": ly.name, "patch": ly.patch, "sample": ly.sample, **_cost(ly)} for ly in layers]
    if limit is not None:
        over = [r for r in rows if max(r["ratio"], r["ratio_per_frame"]) > limit]
        if over:
            raise ValueError("gate cost above {:.0%} of the dense MACs: {}".format(limit, ", ".join(
                f"{r['name']} (P={r['patch']}, S={r['sample']}): {r['ratio']:.2%}" for r in over)))
    return rows


# -- training and evaluation ------------------------------------------------------------------------


def _check_frames(frames: np.ndarray) -> np.ndarray:
    f = np.asarray(frames)
    if f.dtype != np.uint8 or f.ndim not in (3, 4) or len(f) < 2:
        raise ValueError(f"frames must be uint8 [T, H, W] with T >= 2, got {f.dtype} {f.shape}")
    return f


def _prepare(tflite_path: str | Path, frames: np.ndarray, layers: list[int] | None, patch: dict[int, int] | None,
             sample: dict[int, int] | None, say: Say
             ) -> tuple[bytes, list[_Layer], dict[int, np.ndarray]]:
    model, g = _load_graph(tflite_path)
    specs = _layers(g, layers, patch, sample)
    xq = quantize_frames(_check_frames(frames), g)
    say(f"running the INT8 model over {len(xq)} frames to get the inputs of {len(specs)} gated layer(s) ...")
    acts = layer_inputs(model, xq, sorted({ly.in_tensor for ly in specs}))
    return model, specs, acts


def train_gates(tflite_path: str | Path, frames: np.ndarray, *, layers: list[int] | None = None,
                patch: dict[int, int] | None = None, sample: dict[int, int] | None = None,
                tolerance: float = DEFAULT_TOLERANCE, seed: int = 0, max_gap: int = DEFAULT_MAX_GAP,
                miss_weight: float = DEFAULT_MISS_WEIGHT, cut_permille: int = DEFAULT_CUT_PERMILLE,
                say: Say = _quiet) -> dict[str, Any]:
    """Trains one gate per gated CONV_2D layer on unlabelled uint8 frames [T, H, W] (method: module docstring).

    layers: op indices to gate (default: every CONV_2D with a kernel larger than 1x1); patch / sample: per op
    index (default P = 4 at the model input scaled with the layer's resolution, at least 2; S = 2 on
    single-channel inputs, else 1). Returns the gates dict (version GATES_VERSION)."""
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    if not 0 <= cut_permille <= 1001:
        raise ValueError(f"cut_permille must be in 0..1001, got {cut_permille}")
    model, specs, acts = _prepare(tflite_path, frames, layers, patch, sample, say)
    pairs = make_pairs(len(frames), max_gap, seed)
    say(f"training {len(specs)} gate(s) at tolerance {tolerance:g} on {len(pairs)} frame pairs (gap <= {max_gap}) ...")
    out_layers = []
    for ly in specs:
        x = acts[ly.in_tensor]
        sigma = _channel_sigma(ly, x)
        y = _pseudo_labels(ly, x, pairs, sigma, tolerance)
        ph_pairs, ph_frames = _all_phases(pairs, ly.sample)
        mean_q8, mx = _stats(x, ph_pairs, ly.patch, ly.sample, ph_frames)
        y = np.repeat(y, ly.sample * ly.sample, axis=0)     # the label is the pair's, whatever the phase
        mean_q8, mx, y = mean_q8.reshape(-1), mx.reshape(-1), y.reshape(-1)
        feats = np.stack([mean_q8 / 256.0, mx.astype(np.float64)], axis=1)
        live = mx > 0                                 # identical patches: the device skips them regardless
        if y[live].any() and (~y[live]).any():
            w, b, loss = _fit(feats[live], y[live], seed)
        else:                                         # one class only: nothing to contrast
            w, b, loss = np.array([1.0, 0.0]), 0.0, 0.0
        score = feats @ w
        theta = _place_threshold(score[live], y[live], miss_weight)
        a_mean, a_max, threshold = _integer_gate(w, theta)
        pred_int = _int_rule(mean_q8, mx, a_mean, a_max, threshold)
        pred_float = live & (score > theta)
        train = {"pairs": len(pairs), "patches": int(y.size), **_metrics(pred_int, y),
                 "agreement": round(float(np.mean(pred_int == pred_float)), 6)}
        fl = {"w_mean": float(w[0]), "w_max": float(w[1]), "bias": b, "theta": theta,
              "tau": float(np.logaddexp(0.0, theta + b)),
              "margin": MARGIN, "loss": loss, "sigma": [round(float(v), 6) for v in sigma]}
        cost = _cost(ly)
        out_layers.append({"op": ly.op, "name": ly.name, "patch": ly.patch, "sample": ly.sample,
                           "a_mean": a_mean, "a_max": a_max, "threshold": threshold,
                           "float": fl, "train": train, "cost": cost})
        say(f"  {ly.name}: P={ly.patch} S={ly.sample}, {y.size} patches, {train['changed_fraction']:.1%} changed; "
            f"gate skips {train['predicted_skip_rate']:.1%}, recall {train['recall_changed']:.1%}, precision "
            f"{train['precision']:.1%}, int/float agreement {train['agreement']:.4%}; reads "
            f"{cost['ratio']:.2%} of the dense MACs")
        if cost["ratio"] > GATE_COST_LIMIT:
            say(f"  warning: {ly.name}'s gate costs {cost['ratio']:.1%} of its dense MACs (limit "
                f"{GATE_COST_LIMIT:.0%}): use a larger patch or sample")
    return {"version": GATES_VERSION, "cut_permille": int(cut_permille), "tolerance": float(tolerance),
            "fingerprint": f"0x{zlib.crc32(model):08x}", "frames": len(frames), "max_gap": max_gap,
            "miss_weight": miss_weight, "seed": seed, "layers": out_layers}


def evaluate_gates(tflite_path: str | Path, frames: np.ndarray, gates: dict[str, Any], *,
                   tolerance: float | None = None, seed: int = 1, max_gap: int = DEFAULT_MAX_GAP,
                   say: Say = _quiet) -> list[dict[str, Any]]:
    """Scores trained gates on other frames: per gated layer, the integer gate (pass_ref.gate_map) against
    the pseudo-labels at `tolerance` (default: the one the gates were trained with; channel sigmas from
    training) on pairs (t, t - k). Rows: op, name, pairs, patches, changed_fraction, predicted_skip_rate,
    recall_changed, precision."""
    spec = gates["layers"]
    ops = [int(x["op"]) for x in spec]
    _, specs, acts = _prepare(tflite_path, frames, ops, {int(x["op"]): int(x["patch"]) for x in spec},
                              {int(x["op"]): int(x["sample"]) for x in spec}, say)
    tol = float(gates["tolerance"] if tolerance is None else tolerance)
    pairs = make_pairs(len(frames), max_gap, seed)
    rows = []
    for ly, gate in zip(specs, spec, strict=True):
        x = acts[ly.in_tensor]
        pred = np.stack([pass_ref.gate_map(x[a], x[b], gate, int(a)) for a, b in pairs]).astype(bool)
        stored = gate.get("float", {}).get("sigma")   # the training frames' sigma: the same criterion
        sigma = np.asarray(stored, np.float64) if stored is not None else _channel_sigma(ly, x)
        y = _pseudo_labels(ly, x, pairs, sigma, tol)
        rows.append({"op": ly.op, "name": ly.name, "pairs": len(pairs), "patches": int(y.size),
                     **_metrics(pred.reshape(-1), y.reshape(-1))})
    return rows
