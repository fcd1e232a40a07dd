"""On-device training benchmark: accuracy, ablations, speed and memory, INT8 (Octo) vs FP32.

    .venv/bin/python bench/train_bench.py [--seeds 5] [--jobs 2] [--out bench/results/train.json]
                                          [--skip-accuracy] [--skip-speed]

Accuracy (the training engine compiled natively, `octo train --target host`, which gives the same
bits as the virtual boards; mean and spread over seeds, held-out scikit-learn digits):
  (a) digits CNN from random initialisation, every layer trained;
  (b) personalisation: the digits CNN pretrained in Keras on digits 0-4 only, then trained on all ten
      digits with a partial update (last two weight layers);
  each in FP32 and in INT8 without LAC/PRC, with LAC, with PRC, with both (the ablation table).
Speed (virtual-m4, SysTick under QEMU -icount): instructions per training sample at batch 16 (DS-CNN 8),
INT8 vs FP32, per layer and pass; the DS-CNN and MobileNet-shaped zoo models on random data (linked against a speed-only
4 MiB budget when their plan exceeds the board: marked in the JSON).
Memory: the static training plan (peak training SRAM) of each model, INT8 vs FP32, by category, at the
default batch 16 ("memory") and at batches 8 and 16 ("memory_by_batch": the ratio shrinks with the
batch, as activations grow and weights do not).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchlib import write_results  # noqa: E402  (bench/ is on sys.path when run as a script)

OCTO = [sys.executable, "-m", "host_tools.cli"]
VARIANTS = {  # name -> extra `octo train` flags
    "fp32": ["--precision", "fp32"],
    "int8": ["--precision", "int8", "--no-lac", "--no-prc"],
    "int8+lac": ["--precision", "int8", "--lac", "--no-prc"],
    "int8+prc": ["--precision", "int8", "--no-lac", "--prc"],
    "int8+lac+prc": ["--precision", "int8", "--lac", "--prc"],
}
SCENARIOS = {
    "random_init": {"model": "digits_cnn", "flags": ["--init", "random", "--update", "all"], "epochs": 20},
    "personalisation": {"model": "digits_cnn_0to4", "flags": ["--init", "converted", "--update", "last:2"],
                        "epochs": 10},
}
def _default_variant() -> str:
    from host_tools.train.defaults import DEFAULT_LAC, DEFAULT_PRC

    return "int8" + ("+lac" if DEFAULT_LAC else "") + ("+prc" if DEFAULT_PRC else "")


DEFAULT_VARIANT = _default_variant()
# model -> batch of the speed runs: `octo train`'s default 16, but DS-CNN's FP32 plan at 16 (5.4 MB) exceeds
# even the 4 MiB speed-only budget of the emulated board, so DS-CNN runs at 8.
SPEED_MODELS = {"digits_cnn": 16, "ds_cnn": 8, "mobilenet_v1_025": 16}
MEMORY_BATCHES = (8, 16)


def converted(name: str, work: Path) -> Path:
    out = work / name
    if not (out / "model.tflite").exists():
        from converter.pipeline import convert

        print(f"converting {name} ...", flush=True)
        convert(ROOT / "models" / f"{name}.py", out, replace=True, say=lambda s: None)
    return out


def train_run(model_dir: Path, scenario: dict[str, Any], variant: str, seed: int, work: Path) -> dict[str, Any]:
    run = work / "runs" / f"{model_dir.name}-{variant}-s{seed}"
    out = run / "metrics.json"
    cmd = [*OCTO, "train", str(model_dir), "--target", "host", "--seed", str(seed), "--epochs",
           str(scenario["epochs"]), "--run-dir", str(run), "--json", str(out), *scenario["flags"], *VARIANTS[variant]]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    if proc.returncode != 0:
        return {"variant": variant, "seed": seed, "error": proc.stderr.strip().splitlines()[-1]}
    m = json.loads(out.read_text())
    return {"variant": variant, "seed": seed, "eval_accuracy": m["final"]["eval_accuracy"],
            "eval_loss": m["final"]["eval_loss"], "curve": [e["eval_accuracy"] for e in m["epochs"]]}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r["eval_accuracy"] for r in runs if "eval_accuracy" in r]
    return {"mean": round(float(np.mean(ok)), 4) if ok else None, "std": round(float(np.std(ok)), 4) if ok else None,
            "min": min(ok, default=None), "max": max(ok, default=None), "runs": len(ok),
            "failed": [r for r in runs if "error" in r]}


def accuracy_section(work: Path, seeds: list[int], jobs: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for sname, sc in SCENARIOS.items():
        model_dir = converted(str(sc["model"]), work)
        t0 = time.time()
        tasks = [(v, s) for v in VARIANTS for s in seeds]
        with ThreadPoolExecutor(jobs) as ex:
            runs = list(ex.map(lambda vs, md=model_dir, sc=sc: train_run(md, sc, vs[0], vs[1], work), tasks))
        table = {v: summarise([r for r in runs if r["variant"] == v]) for v in VARIANTS}
        best_int8 = max((v for v in VARIANTS if v != "fp32"), key=lambda v: table[v]["mean"] or 0.0)
        gap = round((table["fp32"]["mean"] - table[DEFAULT_VARIANT]["mean"]) * 100, 2)
        out[sname] = {"model": sc["model"], "epochs": sc["epochs"], "flags": sc["flags"], "seeds": seeds,
                      "table": table, "runs": runs, "best_int8_variant": best_int8,
                      "default_variant": DEFAULT_VARIANT, "int8_default_gap_pp": gap,
                      "seconds": round(time.time() - t0, 1)}
        print(f"{sname}: " + ", ".join(f"{v} {table[v]['mean']:.4f}±{table[v]['std']:.4f}" for v in VARIANTS)
              + f"  (FP32 - INT8 default = {gap} pp)", flush=True)
    means = {v: float(np.mean([out[sn]["table"][v]["mean"] or 0.0 for sn in out])) for v in VARIANTS if v != "fp32"}
    out["best_int8_overall"] = max(means, key=lambda v: means[v])
    out["int8_means_over_scenarios"] = {v: round(m, 4) for v, m in means.items()}
    out["defaults_are_best"] = out["best_int8_overall"] == DEFAULT_VARIANT
    return out


# Fine-tuning a converted model (`octo train MODEL`, --init converted): the learning rate and update set that
# keep and improve its accuracy. The README's own command runs the chosen default.
FINE_TUNE = {"model": "digits_cnn", "epochs": 10, "lrs": (0.05, 0.02, 0.01, 0.005, 0.002, 0.001),
             "updates": ("all", "last:2")}


def fine_tune_run(model_dir: Path, update: str, lr: float | None, seed: int, work: Path,
                  precision: str = "int8") -> dict[str, Any]:
    tag = "default" if lr is None else f"{lr:g}"
    run = work / "runs" / f"ft-{precision}-{update.replace(':', '')}-{tag}-s{seed}"
    out = run / "metrics.json"
    cmd = [*OCTO, "train", str(model_dir), "--target", "host", "--seed", str(seed), "--epochs",
           str(FINE_TUNE["epochs"]), "--run-dir", str(run), "--json", str(out), "--precision", precision,
           *(["--update", update] if update != "default" else []), *(["--lr", str(lr)] if lr is not None else [])]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    if proc.returncode != 0:
        return {"update": update, "lr": lr, "seed": seed, "error": proc.stderr.strip().splitlines()[-1]}
    m = json.loads(out.read_text())
    return {"update": update, "lr": lr, "seed": seed, "precision": precision,
            "initial_accuracy": m["initial"]["eval_accuracy"], "eval_accuracy": m["final"]["eval_accuracy"],
            "config": m["config"]}


def fine_tune_section(work: Path, seeds: list[int], jobs: int) -> dict[str, Any]:
    """Grid over learning rate x update set from the converted weights, then the CLI's default path itself."""
    model_dir = converted(str(FINE_TUNE["model"]), work)
    t0 = time.time()
    tasks = [(u, lr, s) for u in FINE_TUNE["updates"] for lr in FINE_TUNE["lrs"] for s in seeds]
    tasks += [("default", None, s) for s in seeds]     # `octo train MODEL` with no flags at all
    with ThreadPoolExecutor(jobs) as ex:
        runs = list(ex.map(lambda a: fine_tune_run(model_dir, a[0], a[1], a[2], work), tasks))
    fp32 = [fine_tune_run(model_dir, "default", None, s, work, "fp32") for s in seeds]
    grid: dict[str, Any] = {}
    for u in (*FINE_TUNE["updates"], "default"):
        for lr in (*FINE_TUNE["lrs"], None):
            rs = [r for r in runs if r["update"] == u and r["lr"] == lr]
            if rs:
                grid[f"{u}@{'default' if lr is None else f'{lr:g}'}"] = {
                    **summarise(rs), "below_start": sum(1 for r in rs if "eval_accuracy" in r
                                                        and r["eval_accuracy"] < r["initial_accuracy"])}
    start = float(np.mean([r["initial_accuracy"] for r in runs if "initial_accuracy" in r]))
    safe = {k: v for k, v in grid.items() if not k.startswith("default") and v["below_start"] == 0}
    best = max(safe or grid, key=lambda k: grid[k]["mean"] or 0.0)
    default = grid["default@default"]
    doc = {"model": FINE_TUNE["model"], "epochs": FINE_TUNE["epochs"], "seeds": seeds, "grid": grid,
           "start_accuracy_mean": round(start, 4), "best_setting": best, "default": default,
           "default_config": next(r["config"] for r in runs if r["update"] == "default" and "config" in r),
           "default_fp32": summarise(fp32), "default_keeps_accuracy": default["below_start"] == 0
           and (default["mean"] or 0.0) >= start, "runs": runs + fp32, "seconds": round(time.time() - t0, 1)}
    print(f"fine-tune from the converted weights (start {start:.4f}): "
          + ", ".join(f"{k} {v['mean']:.4f} ({v['below_start']} below start)" for k, v in grid.items())
          + f"; best {best}; default {default['mean']:.4f}", flush=True)
    return doc


def speed_run(model_dir: Path, precision: str, batch: int, board: str, steps: int, lac: bool, prc: bool,
              random_data: bool, grad_sr: bool = False) -> dict[str, Any]:
    from converter.train_plan import TrainConfig, prepare_training
    from host_tools.board.target import open_train_target
    from host_tools.services.training import TrainSession
    from host_tools.train.run import compute_input_scale, quantize_samples

    cfg = TrainConfig(precision, batch, "all")
    tb = prepare_training(model_dir, cfg, board)
    fits = tb.plan["arena_bytes"] + 32 * 1024 <= {"virtual-m4": 256 * 1024, "virtual-m7": 320 * 1024}[board]
    shape = tuple(tb.plan["input_shape"])
    rng = np.random.default_rng(0)
    if random_data:
        x = rng.standard_normal((batch * steps, *shape)).astype(np.float32)
        y = rng.integers(0, tb.plan["classes"], batch * steps)
    else:
        with np.load(model_dir / "train.npz") as d:
            x, y = d["x"][: batch * steps], d["y"][: batch * steps]
    scale = compute_input_scale(x)
    with open_train_target(tb, board, say=lambda s: None, speed_only=not fits) as t:
        sess = TrainSession(t.client)
        sess.init(seed=1, init_random=random_data, lac=lac, prc=prc, lr=0.01, momentum=0.9, weight_decay=0.0,
                  input_scale=scale, prc_k=16.0, lac_l2=1e-4, grad_sr=grad_sr)
        instr = []
        for s in range(steps):
            sl = slice(s * batch, (s + 1) * batch)
            sess.load(0, y[sl], quantize_samples(x[sl], scale))
            r = sess.step(s, batch)
            instr.append(t.ticks_to_instructions(r.ticks))
        prof = sess.profile()
    per_sample = float(np.mean(instr[1:])) / batch  # step 0 also probes the quantization ranges
    layers = []
    for la, p in zip(tb.plan["layers"], prof, strict=True):
        layers.append({"name": la["name"], "kind": la["kind"],
                       **{k: int(t.ticks_to_instructions(v) or 0) // batch
                          for k, v in zip(("forward", "weight_grad", "input_grad", "update"), p, strict=True)}})
    return {"precision": precision, "batch": batch, "lac": lac, "prc": prc, "grad_sr": grad_sr,
            "instructions_per_sample": round(per_sample), "step0_instructions_per_sample": instr[0] // batch,
            "layers": layers, "peak_training_sram_bytes": tb.plan["arena_bytes"], "memory": tb.plan["memory"],
            "fits_board": fits, "linked_budget": "board" if fits else "speed-only 4 MiB (does not fit the board)"}


def speed_section(work: Path, board: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, batch in SPEED_MODELS.items():
        model_dir = converted(name, work)
        real = name == "digits_cnn"
        d = DEFAULT_VARIANT
        rows = {"fp32": speed_run(model_dir, "fp32", batch, board, 4, False, False, not real),
                d: speed_run(model_dir, "int8", batch, board, 4, "lac" in d, "prc" in d, not real),
                "int8+lac+prc": speed_run(model_dir, "int8", batch, board, 4, True, True, not real),
                "int8": speed_run(model_dir, "int8", batch, board, 4, False, False, not real)}
        ratio = rows[d]["instructions_per_sample"] / rows["fp32"]["instructions_per_sample"]
        mem = rows[d]["peak_training_sram_bytes"] / rows["fp32"]["peak_training_sram_bytes"]
        out[name] = {"board": board, "rows": rows, "int8_vs_fp32_instructions": round(ratio, 3),
                     "int8_vs_fp32_peak_sram": round(mem, 3)}
        print(f"{name} ({board}, batch {batch}): instructions/sample FP32 "
              f"{rows['fp32']['instructions_per_sample']:,} INT8 {rows[d]['instructions_per_sample']:,} "
              f"(x{ratio:.2f}); peak training SRAM FP32 {rows['fp32']['peak_training_sram_bytes']:,} B "
              f"INT8 {rows[d]['peak_training_sram_bytes']:,} B (x{mem:.2f})", flush=True)
    return out


def conv_step_section(work: Path, board: str) -> dict[str, Any]:
    """One full training step of a 3x3 conv 16x16x16->16 inside the engine (forward with rounding, weight
    and input gradients, the update), from TRAIN_PROFILE, per training MAC (3 x forward MACs)."""
    out_dir = work / "conv16"
    if not (out_dir / "model.tflite").exists():
        import keras

        from converter.pipeline import convert

        keras.utils.set_random_seed(0)
        inp = keras.Input((16, 16, 16), name="input")
        x = keras.layers.Conv2D(16, 1, activation="relu", name="pre")(inp)
        x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv")(x)
        x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
        outp = keras.layers.Softmax(name="softmax")(keras.layers.Dense(10, name="fc")(x))
        work.mkdir(parents=True, exist_ok=True)
        keras.Model(inp, outp).save(work / "conv16.keras")
        np.savez(work / "conv16-calib.npz", x=np.random.default_rng(0).random((64, 16, 16, 16), np.float32))
        convert(work / "conv16.keras", out_dir, calib=work / "conv16-calib.npz", replace=True, say=lambda s: None)
    rows = {}
    for prec, lac in (("int8", True), ("int8", False), ("fp32", False)):
        r = speed_run(out_dir, prec, 16, board, 3, lac, False, True)
        conv = next(la for la in r["layers"] if la["name"] == "conv")
        macs = 16 * 16 * 16 * 9 * 16
        total = conv["forward"] + conv["weight_grad"] + conv["input_grad"] + conv["update"]
        rows[f"{prec}{'+lac' if lac else ''}"] = {**conv, "forward_macs": macs,
                                                 "instructions_per_training_mac": round(total / (3 * macs), 3)}
    print("conv 3x3 16x16x16->16 full training step: " + ", ".join(
        f"{k} {v['instructions_per_training_mac']} instr/training MAC" for k, v in rows.items()), flush=True)
    return {"board": board, "layer": "conv 3x3 16x16x16->16 SAME ReLU, batch 16, inside the engine", "rows": rows,
            "goal_int8_instructions_per_training_mac": 4.0}


def memory_section(work: Path, batch: int) -> dict[str, Any]:
    from converter.train_plan import TrainConfig, make_plan

    out: dict[str, Any] = {}
    for name in SPEED_MODELS:
        model = (converted(name, work) / "model.tflite").read_bytes()
        rows = {}
        for prec in ("fp32", "int8"):
            for upd in ("all", "last:2"):
                plan, _ = make_plan(model, TrainConfig(prec, batch, upd), name)
                rows[f"{prec}-{upd}"] = {"arena_bytes": plan["arena_bytes"], "memory": plan["memory"],
                                         "trainable_params": plan["trainable_params"],
                                         "bytes_per_trainable_param": round(
                                             plan["memory"]["weights_and_optimizer"] / max(plan["trainable_params"], 1),
                                             2)}
        out[name] = {"batch": batch, "plans": rows,
                     "int8_vs_fp32_all": round(rows["int8-all"]["arena_bytes"] / rows["fp32-all"]["arena_bytes"], 3),
                     "int8_vs_fp32_last2": round(rows["int8-last:2"]["arena_bytes"]
                                                 / rows["fp32-last:2"]["arena_bytes"], 3)}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--board", default="virtual-m4")
    ap.add_argument("--work", default="build/bench-train")
    ap.add_argument("--out", default="bench/results/train.json")
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--only-fine-tune", action="store_true", help="run only the fine-tune section (keep the rest)")
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    work = Path(args.work)
    prev = json.loads(Path(args.out).read_text()) if Path(args.out).exists() else {}
    if args.only_fine_tune:
        doc = {k: v for k, v in prev.items() if k not in ("schema", "date", "host")}
        doc["fine_tune"] = fine_tune_section(work, list(range(1, args.seeds + 1)), args.jobs)
        write_results(args.out, "octo.bench.train/1", **doc)
        return 0
    by_batch = {str(b): memory_section(work, b) for b in MEMORY_BATCHES}
    doc: dict[str, Any] = {"memory": by_batch["16"], "memory_by_batch": by_batch}
    doc["accuracy"] = prev.get("accuracy") if args.skip_accuracy else accuracy_section(
        work, list(range(1, args.seeds + 1)), args.jobs)
    doc["speed"] = prev.get("speed") if args.skip_speed else speed_section(work, args.board)
    doc["conv_step"] = prev.get("conv_step") if args.skip_speed else conv_step_section(work, args.board)
    doc["fine_tune"] = prev.get("fine_tune") if args.skip_accuracy else fine_tune_section(
        work, list(range(1, args.seeds + 1)), args.jobs)
    kernels = ROOT / "bench" / "results" / "train-kernels-virtual-m4.json"
    if kernels.exists():
        doc["kernels"] = {k: json.loads(kernels.read_text()).get(k) for k in ("instructions_per_mac", "step")}
    write_results(args.out, "octo.bench.train/1", **doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
