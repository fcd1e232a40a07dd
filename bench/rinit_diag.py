"""Why BN-folded models barely train from `--init random`: the same architectures without BatchNorm, in
TensorFlow FP32, initialised as the engine does, trained with the engine's optimizer (SGD, momentum 0.9,
cosine schedule, batch 16).

    .venv/bin/python bench/rinit_diag.py MODEL [--init he|he-data|lsuv|dd] [--lr 0.05] [--samples 1000]
                                         [--epochs 10] [--seed 0]

--init he       the engine's draw: U(-b, b), b = sqrt(6 / fan_in) (depthwise fan_in = kh * kw), bias 0
--init he-data  he, then the first layer divided by the RMS of the training inputs (what `octo train --init
                random` does: host_tools/train/init_scale.py)
--init lsuv     he, then every layer in op order rescaled so its output has unit RMS on one batch
--init dd       he, then every layer in op order, per output channel, centred and scaled to unit variance on
                --dd-samples samples (BatchNorm's statistics at init, folded); the classifier to --fc-std
--keep-bn       the reference: the recipe's model with its BatchNorm (Keras' own init)
--fc-gain G, --zero-branch   the classifier times G; the last layer of every residual branch zeroed (SkipInit)

Prints the RMS of every weight layer's output at init, the logits' RMS, the RMS gradient relative to the
weights' RMS per layer, and the held-out accuracy after each epoch. Diagnostic only (not in the bench JSON).
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def build(name: str, seed: int, keep_bn: bool = False) -> Any:
    """The recipe's model with every BatchNormalization and Dropout an identity, ending in logits."""
    import keras

    if keep_bn:
        m = importlib.import_module(f"models.{name}").build_model(seed)
        return keras.Model(m.input, m.layers[-1].input)
    real_bn, real_do = keras.layers.BatchNormalization, keras.layers.Dropout
    real_conv, real_dw = keras.layers.Conv2D, keras.layers.DepthwiseConv2D
    keras.layers.Conv2D = lambda *a, **k: real_conv(*a, **{**k, "use_bias": True})  # type: ignore  # BN folds to a bias
    keras.layers.DepthwiseConv2D = lambda *a, **k: real_dw(*a, **{**k, "use_bias": True})  # type: ignore
    keras.layers.BatchNormalization = lambda *a, **k: keras.layers.Identity(name=k.get("name"))  # type: ignore
    keras.layers.Dropout = lambda *a, **k: keras.layers.Identity(name=k.get("name"))  # type: ignore
    try:
        m = importlib.import_module(f"models.{name}").build_model(seed)
    finally:
        keras.layers.BatchNormalization, keras.layers.Dropout = real_bn, real_do
        keras.layers.Conv2D, keras.layers.DepthwiseConv2D = real_conv, real_dw
    logits = m.layers[-1].input if m.layers[-1].__class__.__name__ == "Softmax" else m.output
    return keras.Model(m.input, logits)


def weight_layers(model: Any) -> list[Any]:
    return [la for la in model.layers if la.__class__.__name__ in ("Conv2D", "DepthwiseConv2D", "Dense")]


def engine_init(model: Any, rng: np.random.Generator) -> None:
    for la in weight_layers(model):
        k = la.get_weights()[0]
        fan_in = k.shape[0] * k.shape[1] if la.__class__.__name__ == "DepthwiseConv2D" else int(np.prod(k.shape[:-1]))
        b = math.sqrt(6.0 / fan_in)
        ws = [rng.uniform(-b, b, k.shape).astype(np.float32)] + [np.zeros_like(v) for v in la.get_weights()[1:]]
        la.set_weights(ws)


def layer_rms(model: Any, x: np.ndarray) -> list[tuple[str, float]]:
    import keras

    ls = weight_layers(model)
    probe = keras.Model(model.input, [la.output for la in ls])
    outs = probe(x, training=False)
    return [(la.name, float(np.sqrt(np.mean(np.square(o))))) for la, o in zip(ls, outs, strict=True)]


def lsuv(model: Any, x: np.ndarray) -> None:
    import keras

    for la in weight_layers(model):
        o = keras.Model(model.input, la.output)(x, training=False).numpy()
        r = float(np.sqrt(np.mean(np.square(o))))
        ws = la.get_weights()
        la.set_weights([ws[0] / max(r, 1e-08), *ws[1:]])


def data_dependent(model: Any, x: np.ndarray, fc_std: float) -> None:
    """Every weight layer in op order: per output channel, weights / std and bias = -mean / std of its output
    on x (BatchNorm's statistics at init, folded); the classifier to logits of std fc_std, bias 0."""
    import keras

    ls = weight_layers(model)
    for la in ls:
        o = keras.Model(model.input, la.output)(x, training=False).numpy()
        o = o.reshape(-1, o.shape[-1])
        mu, sd = o.mean(0), o.std(0) + 1e-6
        ws = la.get_weights()
        b = ws[1] if len(ws) > 1 else np.zeros(o.shape[-1], np.float32)
        if la is ls[-1]:
            sd = np.full_like(sd, float(np.sqrt(np.mean(np.square(o)))) / fc_std)
            mu = np.zeros_like(mu)
        w = ws[0] / (sd.reshape(1, 1, -1, 1) if la.__class__.__name__ == "DepthwiseConv2D" else sd)
        if len(ws) > 1:
            la.set_weights([w.astype(np.float32), ((b - mu) / sd).astype(np.float32)])
        else:
            la.set_weights([w.astype(np.float32)])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--init", default="he", choices=("he", "he-data", "lsuv", "dd"))
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--warmup", type=float, default=0.0, help="epochs of linear warm-up from 0 to --lr")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep-bn", action="store_true", help="the reference: the recipe's model with its BN")
    ap.add_argument("--zero-branch", action="store_true", help="SkipInit: last layer of residual branches 0")
    ap.add_argument("--fc-gain", type=float, default=1.0, help="multiply the classifier's initial weights")
    ap.add_argument("--dd-samples", type=int, default=128)
    ap.add_argument("--fc-std", type=float, default=1.0)
    ap.add_argument("--data", default=None, help="model folder with train.npz / eval.npz")
    a = ap.parse_args()
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(a.seed)
    folder = Path(a.data or ROOT / "build" / "bench-graph" / a.model)
    with np.load(folder / "train.npz") as d:
        x, y = d["x"][: a.samples].astype(np.float32), d["y"][: a.samples].astype(np.int64)
    with np.load(folder / "eval.npz") as d:
        xe, ye = d["x"].astype(np.float32), d["y"].astype(np.int64)
    s = float(np.abs(x).max()) / 127.0  # the engine's int8 input quantization
    x, xe = np.clip(np.round(x / s), -127, 127) * s, np.clip(np.round(xe / s), -127, 127) * s
    model = build(a.model, a.seed, a.keep_bn)
    engine_init(model, np.random.default_rng(a.seed))
    if a.fc_gain != 1.0:
        la = weight_layers(model)[-1]
        ws = la.get_weights()
        la.set_weights([ws[0] * a.fc_gain, *ws[1:]])
    if a.zero_branch:
        for la in model.layers:
            if la.__class__.__name__ == "Add":
                for t in la.input:
                    src = t._keras_history[0]
                    if src.name.endswith(("_project", "_conv2")) or "_bn2" in src.name or "project_bn" in src.name:
                        w = weight_layers(model)
                        tgt = [q for q in w if q.name == src.name.replace("_bn2", "_conv2").replace("_bn", "")]
                        for q in tgt:
                            q.set_weights([np.zeros_like(v) for v in q.get_weights()])
    if a.init == "he-data":
        la = weight_layers(model)[0]
        ws = la.get_weights()
        la.set_weights([ws[0] / float(np.sqrt(np.mean(np.square(x)))), *ws[1:]])
    elif a.init == "lsuv":
        lsuv(model, x[:64])
    elif a.init == "dd":
        data_dependent(model, x[:a.dd_samples], a.fc_std)
    print(f"{a.model} init {a.init}: input RMS {np.sqrt(np.mean(np.square(x))):.3f}")
    for n, r in layer_rms(model, x[:64]):
        print(f"  {n:14s} output RMS {r:12.4g}")
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        loss = loss_fn(y[:16], model(x[:16], training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    print(f"  initial loss {float(loss):.4g} (chance {math.log(int(y.max()) + 1):.3f})")
    for v, g in zip(model.trainable_variables, grads, strict=True):
        if len(v.shape) > 1:
            rel = float(np.sqrt(np.mean(np.square(g)))) / max(float(np.sqrt(np.mean(np.square(v)))), 1e-12)
            print(f"  {v.path:28s} |grad|/|w| {rel:.4g}")
    steps = a.epochs * math.ceil(len(y) / a.batch)
    warm = round(a.warmup * math.ceil(len(y) / a.batch))
    sched = (keras.optimizers.schedules.CosineDecay(0.0, steps - warm, warmup_target=a.lr, warmup_steps=warm)
             if warm > 0 else keras.optimizers.schedules.CosineDecay(a.lr, steps))
    model.compile(keras.optimizers.SGD(sched, momentum=0.9), loss_fn, metrics=["accuracy"])
    for e in range(a.epochs):
        h = model.fit(x, y, batch_size=a.batch, epochs=1, verbose=0, shuffle=True)
        acc = model.evaluate(xe, ye, verbose=0)[1]
        print(f"  epoch {e + 1}: loss {h.history['loss'][-1]:.4g} held-out {acc:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
