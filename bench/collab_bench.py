"""Split-learning benchmark (`octo collab`, docs/SGQ.md section 8): SGQ vs uniform vs FP32 traffic, accuracy,
reconstruction error and device cost.

    .venv/bin/python bench/collab_bench.py [--scenarios from_scratch,fine_tune] [--seeds 1,2,3,4,5]
                                           [--out bench/results/collab.json] [--skip-device] [--skip-codec]
                                           [--update] [--quick]

Accuracy (the device half compiled natively, `octo collab --target host`, which gives the same bits as the
virtual boards; 2 boards, each on its half of the digits training set, one TensorFlow cloud): the digits CNN
split after conv2 (8x8x16 features per sample), for FP32, uniform 2/4/8 and SGQ 2/4/8 (G = 4, 2-row stripes),
mean over seeds of the held-out accuracy (mean of the two boards), in two scenarios: from_scratch (both halves
from random weights, SGD + momentum, lr 0.05 cosine, 20 epochs) and fine_tune (the converted CNN, lr 0.002,
2 epochs). Bytes per sample in each direction: the codec payloads and the link bytes
of the COLLAB_* exchanges (frames, COBS, CRC, delimiters, the host's read requests and the board's acks).
Reconstruction error: the decoded features against the board's exact int8 features (read back, not counted
as traffic), the decoded gradients against the cloud's exact float gradients (so it includes the int8 step).
Device cost (virtual-m4, the board's tick timer under QEMU -icount): instructions per sample of the forward, the
encoding, the decoding and the backward, from a short run of two virtual boards per setting.
Codec alone: activations and their gradients from the DS-CNN and MobileNetV1-0.25 zoo models (random
weights, random inputs) through `octo codec bench`'s functions.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchlib import write_results  # noqa: E402  (bench/ is on sys.path when run as a script)

# setting name -> CodecSpec fields. The main grid, then variants tried at 2 bits (--extra: from_scratch only).
SETTINGS: dict[str, dict[str, Any]] = {
    "fp32": {"name": "fp32"},
    **{f"{c}{b}": {"name": c, "bits": b} for c in ("uniform", "sgq") for b in (2, 4, 8)},
}
EXTRA: dict[str, dict[str, Any]] = {
    "sgq2-G8": {"name": "sgq", "bits": 2, "groups": 8},
    "sgq2-stochastic": {"name": "sgq", "bits": 2, "gradient_rounding": "stochastic"},
    "sgq2-grad4": {"name": "sgq", "bits": 2, "gradient_bits": 4},
    "sgq4-grad2": {"name": "sgq", "bits": 4, "gradient_bits": 2},
    # clipped ranges (docs/SGQ.md, "Clipped ranges"): alpha 2.25 at 2 bits, 5 at 4 bits
    "sgq2-clip": {"name": "sgq", "bits": 2, "clip": True},
    "sgq2-clip-grad4": {"name": "sgq", "bits": 2, "gradient_bits": 4, "clip": True},
    "sgq4-clip": {"name": "sgq", "bits": 4, "clip": True},
    # range-coded codes (docs/SGQ.md, "Range-coded codes"): lossless, so the accuracy is the fixed-width one's
    "sgq2-rc": {"name": "sgq", "bits": 2, "entropy": True},
    "sgq4-rc": {"name": "sgq", "bits": 4, "entropy": True},
    "sgq8-rc": {"name": "sgq", "bits": 8, "entropy": True},
    "uniform4-rc": {"name": "uniform", "bits": 4, "entropy": True},
}
SPLIT = "conv2"
BOARDS = 2
# from_scratch: both halves from random weights (what split learning trains); fine_tune: the converted (Adam-
# trained) CNN adapted for a short while, a rate low enough for float SGD in the cloud to stay stable.
SCENARIOS = {"from_scratch": {"init": "random", "lr": 0.05, "epochs": 20},
             "fine_tune": {"init": "converted", "lr": 0.002, "epochs": 2}}


def converted(name: str, work: Path) -> Path:
    out = work / name
    if not (out / "model.tflite").exists():
        from converter.pipeline import convert

        print(f"converting {name} ...", flush=True)
        convert(ROOT / "models" / f"{name}.py", out, replace=True, say=lambda s: None)
    return out


def _data(model_dir: Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    with np.load(model_dir / "train.npz") as tr, np.load(model_dir / "eval.npz") as ev:
        return (tr["x"], tr["y"]), (ev["x"], ev["y"])


def collab_run(model_dir: Path, board: str, setting: str, seed: int, epochs: int, work: Path, *,
               init: str, lr: float, train_n: int | None = None, eval_n: int | None = None) -> dict[str, Any]:
    from converter.train_plan import TrainConfig, prepare_training
    from host_tools.board.boards import sram_budget
    from host_tools.collab.run import CollabOptions, open_boards, run_collab
    from host_tools.services.collab import CodecSpec

    tb = prepare_training(model_dir, TrainConfig("int8", 16, "all", split=SPLIT), board,
                          sram_bytes=sram_budget(board))
    (x, y), (xe, ye) = _data(model_dir)
    if train_n:
        x, y = x[:train_n], y[:train_n]
    if eval_n:
        xe, ye = xe[:eval_n], ye[:eval_n]
    run_dir = work / "runs" / f"{board}-{init}-{setting}-s{seed}"
    opts = CollabOptions(epochs=epochs, seed=seed, init=init, lr=lr, telemetry=run_dir / "telemetry.jsonl")
    spec = CodecSpec(**{**SETTINGS, **EXTRA}[setting])
    t0 = time.perf_counter()
    with open_boards(tb, board, BOARDS, say=lambda s: None) as targets:
        m = run_collab(targets, tb, (x, y), (xe, ye), spec, opts, lambda s: None, run_dir)
    m["seconds"] = round(time.perf_counter() - t0, 1)
    return m


def _mean_of(rs: list[dict[str, Any]], f: Any) -> float:
    return round(float(np.mean([f(r) for r in rs])), 4)


def _stats(v: list[float]) -> dict[str, Any]:
    a = np.asarray(v, np.float64)
    return {"mean": round(float(a.mean()), 4), "std": round(float(a.std()), 4), "min": round(float(a.min()), 4),
            "max": round(float(a.max()), 4), "runs": len(v)}


def accuracy(model_dir: Path, seeds: list[int], work: Path, settings: list[str], init: str, lr: float,
             epochs: int, old_runs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Runs every setting x seed; old_runs (same scenario) of other settings are kept in the table."""
    from host_tools.services.collab import CodecSpec

    runs = [r for r in old_runs or [] if r["setting"] not in settings]
    for setting in settings:
        for seed in seeds:
            m = collab_run(model_dir, "host", setting, seed, epochs, work, init=init, lr=lr)
            r = {"setting": setting, "seed": seed,
                 "eval_accuracy": m["final"]["eval_accuracy"],
                 "eval_accuracy_per_board": m["final"]["eval_accuracy_per_board"],
                 "curve": [e["eval_accuracy"] for e in m["epochs"]], "bytes_per_sample": m["bytes_per_sample"],
                 "reconstruction": m["reconstruction"], "seconds": m["seconds"]}
            runs.append(r)
            print(f"  {r['setting']:<9} seed {seed}: held-out {r['eval_accuracy']:.4f} "
                  f"({r['bytes_per_sample']['up_wire']:.0f} B up, {r['bytes_per_sample']['down_wire']:.0f} B down "
                  f"per sample; features rel L2 {m['reconstruction']['features']['rel_l2']}, gradients "
                  f"{m['reconstruction']['gradients']['rel_l2']}; {m['seconds']:.0f} s)", flush=True)
    table: dict[str, Any] = {}
    order = [k for k in [*SETTINGS, *EXTRA] if any(r["setting"] == k for r in runs)]
    for setting in order:
        rs = [r for r in runs if r["setting"] == setting]
        table[setting] = {
            "codec": CodecSpec(**{**SETTINGS, **EXTRA}[setting]).as_dict(),
            "accuracy": _stats([r["eval_accuracy"] for r in rs]),
            "bytes_per_sample": {k: _mean_of(rs, lambda r, k=k: r["bytes_per_sample"][k])
                                 for k in ("up_payload", "up_wire", "down_payload", "down_wire")},
            "feature_rel_l2": _mean_of(rs, lambda r: r["reconstruction"]["features"]["rel_l2"]),
            "feature_cosine": _mean_of(rs, lambda r: r["reconstruction"]["features"]["cosine"]),
            "gradient_rel_l2": _mean_of(rs, lambda r: r["reconstruction"]["gradients"]["rel_l2"]),
            "gradient_cosine": _mean_of(rs, lambda r: r["reconstruction"]["gradients"]["cosine"]),
        }
    fp = table.get("fp32")
    for row in table.values():
        b = row["bytes_per_sample"]
        b["total_wire"] = round(b["up_wire"] + b["down_wire"], 2)
        if fp:
            fb = fp["bytes_per_sample"]
            row["ratio_vs_fp32"] = {
                "up_wire": round(fb["up_wire"] / b["up_wire"], 3),
                "down_wire": round(fb["down_wire"] / b["down_wire"], 3),
                "total_wire": round((fb["up_wire"] + fb["down_wire"]) / b["total_wire"], 3),
                "up_payload": round(fb["up_payload"] / b["up_payload"], 3),
                "down_payload": round(fb["down_payload"] / b["down_payload"], 3)}
            row["accuracy_delta_vs_fp32_pp"] = round(100 * (row["accuracy"]["mean"] - fp["accuracy"]["mean"]), 2)
    from host_tools.train.defaults import DEFAULT_LAC, DEFAULT_PRC

    return {"model": "digits_cnn", "split": SPLIT, "boards": BOARDS, "init": init, "lr": lr, "epochs": epochs,
            "seeds": seeds, "target": "host", "lac": DEFAULT_LAC, "prc": DEFAULT_PRC, "table": table, "runs": runs}


def device_costs(model_dir: Path, work: Path, settings: list[str], board: str = "virtual-m4") -> dict[str, Any]:
    rows = {}
    for setting in settings:
        m = collab_run(model_dir, board, setting, 1, 1, work, init="converted", lr=0.002, train_n=320, eval_n=32)
        rows[setting] = {"instructions_per_sample": m["device"]["instructions_per_sample"],
                         "bytes_per_sample": m["bytes_per_sample"], "steps": m["steps"]}
        ips = m["device"]["instructions_per_sample"]
        print(f"  {setting:<9} {board}: " + ", ".join(f"{k} {v:,.0f}" for k, v in ips.items()), flush=True)
    return {"board": board, "boards": BOARDS, "train_samples": 320, "batch": 16,
            "note": "instructions per training sample (batch 16), the board's tick timer under QEMU -icount "
                    "shift=0",
            "rows": rows}


def _activations(module: str, layer: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Activations of `layer` of a zoo model on random inputs, and the gradient of the mean cross-entropy
    (against random labels) w.r.t. them: what a split after `layer` would send each way."""
    import importlib

    import keras
    import tensorflow as tf

    mod = importlib.import_module(f"models.{module}")
    model = mod.build_model(seed)
    both = keras.Model(model.input, [model.get_layer(layer).output, model.output])
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, (n, *mod.INPUT_SHAPE)).astype(np.float32)
    y = rng.integers(0, int(model.output.shape[-1]), n)
    feats, grads = [], []
    for i in range(0, n, 32):
        with tf.GradientTape() as tape:
            a, probs = both(tf.constant(x[i:i + 32]), training=False)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y[i:i + 32], probs))
        feats.append(a.numpy())
        grads.append(tape.gradient(loss, a).numpy())
    return np.concatenate(feats), np.concatenate(grads)


CODEC_ALONE = [("ds_cnn", "relu1"), ("ds_cnn", "pw2_relu"), ("mobilenet_v1_025", "pw2_relu"),
               ("mobilenet_v1_025", "pw6_relu")]


def codec_alone(n: int) -> dict[str, Any]:
    from host_tools.sgq.bench import run_bench

    out: dict[str, Any] = {}
    for module, layer in CODEC_ALONE:
        feats, grads = _activations(module, layer, n, 0)
        entry = {}
        for kind, t in (("features", feats), ("gradients", grads)):
            doc = run_bench(t, ["sgq", "uniform", "fp32"], [2, 4, 8], kind, 16)
            entry[kind] = doc
            best = {(r["codec"], r["bits"]): r for r in doc["results"]}
            print(f"  {module}/{layer} {kind} {list(t.shape[1:])}: " + "; ".join(
                f"{c}{b} {best[(c, b)]['ratio_vs_fp32']:.2f}x relL2 {best[(c, b)]['rel_l2']:.4f}"
                for c in ("sgq", "uniform") for b in (2, 4)), flush=True)
        out[f"{module}/{layer}"] = entry
    return out


def goals(acc: dict[str, Any] | None) -> dict[str, Any]:
    if acc is None:
        return {}
    t = acc["table"]
    if "fp32" not in t:
        return {}
    out: dict[str, Any] = {}
    s4 = t.get("sgq4")
    if s4:
        out["sgq4_total_wire_ratio"] = s4["ratio_vs_fp32"]["total_wire"]
        out["sgq4_up_wire_ratio"] = s4["ratio_vs_fp32"]["up_wire"]
        out["sgq4_accuracy_delta_pp"] = s4["accuracy_delta_vs_fp32_pp"]
        out["goal_4bit"] = bool(min(s4["ratio_vs_fp32"]["up_wire"], s4["ratio_vs_fp32"]["down_wire"]) >= 7.5
                                and s4["accuracy_delta_vs_fp32_pp"] >= -0.5)
    ok = [(k, r) for k, r in t.items() if k != "fp32" and r["accuracy_delta_vs_fp32_pp"] >= -1.0]
    if ok:
        k, r = max(ok, key=lambda kr: kr[1]["ratio_vs_fp32"]["total_wire"])
        out["best_within_1pp"] = {"setting": k, "ratio_total_wire": r["ratio_vs_fp32"]["total_wire"],
                                  "ratio_up_wire": r["ratio_vs_fp32"]["up_wire"],
                                  "accuracy_delta_pp": r["accuracy_delta_vs_fp32_pp"]}
        out["goal_best_14x"] = bool(r["ratio_vs_fp32"]["total_wire"] >= 14)  # both directions, on the wire
    cmp = {}
    for bits in (2, 4, 8):
        s, u = t.get(f"sgq{bits}"), t.get(f"uniform{bits}")
        if s and u:
            cmp[str(bits)] = {"accuracy_pp": round(100 * (s["accuracy"]["mean"] - u["accuracy"]["mean"]), 2),
                              "feature_rel_l2": [s["feature_rel_l2"], u["feature_rel_l2"]],
                              "gradient_rel_l2": [s["gradient_rel_l2"], u["gradient_rel_l2"]],
                              "sgq_at_least_as_good": bool(s["accuracy"]["mean"] >= u["accuracy"]["mean"]
                                                 and s["feature_rel_l2"] <= u["feature_rel_l2"]
                                                 and s["gradient_rel_l2"] <= u["gradient_rel_l2"])}
    out["sgq_vs_uniform"] = cmp
    return out


def main() -> int:
    import json

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="from_scratch,fine_tune (default both)")
    ap.add_argument("--settings", default=",".join(SETTINGS), help=f"default {','.join(SETTINGS)}")
    ap.add_argument("--extra", action="store_true", help=f"from_scratch: also {', '.join(EXTRA)}")
    ap.add_argument("--epochs", type=int, help="override the scenarios' epochs")
    ap.add_argument("--seeds", default="1,2,3,4,5")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "collab.json"))
    ap.add_argument("--work", default=str(ROOT / "build" / "bench-collab"))
    ap.add_argument("--skip-device", action="store_true")
    ap.add_argument("--skip-codec", action="store_true")
    ap.add_argument("--update", action="store_true", help="keep what --out holds for what this run skips")
    ap.add_argument("--quick", action="store_true", help="2 epochs, 1 seed, 3 settings: a smoke test")
    args = ap.parse_args()
    work = Path(args.work)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    settings = [s for s in args.settings.split(",") if s]
    unknown = [s for s in settings if s not in SETTINGS and s not in EXTRA]
    if unknown:
        ap.error(f"unknown settings {unknown}; known: {', '.join([*SETTINGS, *EXTRA])}")
    scenarios = [s for s in args.scenarios.split(",") if s]
    if args.quick:
        seeds, settings = seeds[:1], ["fp32", "uniform4", "sgq4"]
    old: dict[str, Any] = {}
    if args.update and Path(args.out).exists():
        old = json.loads(Path(args.out).read_text())
    model_dir = converted("digits_cnn", work)
    t0 = time.perf_counter()
    acc: dict[str, Any] = dict(old.get("accuracy") or {})
    if "table" in acc:  # a file written before the scenarios existed: its one table is from_scratch
        acc = {"from_scratch": acc}
    for name in scenarios:
        sc = SCENARIOS[name]
        epochs = 2 if args.quick else (args.epochs or sc["epochs"])
        run = settings + (list(EXTRA) if args.extra and name == "from_scratch" else [])
        print(f"accuracy, {name}: {len(run)} settings x {len(seeds)} seeds x {epochs} epochs, 2 boards, "
              f"--target host, init {sc['init']}, lr {sc['lr']}")
        prev = acc.get(name) or {}
        same = prev.get("epochs") == epochs and prev.get("seeds") == seeds
        acc[name] = accuracy(model_dir, seeds, work, run, sc["init"], sc["lr"], epochs,
                             prev.get("runs") if same else None)
    dev = old.get("device")
    if not args.skip_device:
        print("device cost on virtual-m4 (2 boards, 320 samples, 1 epoch)")
        fresh = device_costs(model_dir, work, settings)
        if args.update and dev:  # keep the rows of the settings this run did not measure
            fresh["rows"] = {**{k: v for k, v in dev["rows"].items() if k not in settings}, **fresh["rows"]}
        dev = fresh
    alone = old.get("codec_alone")
    if not args.skip_codec:
        print("codec alone on zoo activations and gradients (random weights and inputs)")
        alone = codec_alone(64 if args.quick else 256)
    write_results(args.out, "octo.bench.collab/1", accuracy=acc, device=dev, codec_alone=alone,
                  goals={k: goals(v) for k, v in acc.items()}, seconds=round(time.perf_counter() - t0, 1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
