"""Training the models the field deploys: residual graphs and MLPerf Tiny architectures, INT8 (Octo) vs FP32.

    .venv/bin/python bench/graph_train_bench.py [--seeds 5] [--jobs 2] [--sections all]
                                                [--out bench/results/graph_train.json]

Sections (each writes its part of the JSON; run them separately with --sections a,b and the file is merged):
  personalisation  the converted model (pretrained in Keras on one domain) adapts on the native trainer
                   (`octo train --target host`, the same bits as the boards) to its recipe's personal data: first
                   half to train, second half held out; accuracy before and after, INT8 vs FP32 over seeds, at
                   each learning rate of LRS (the default for converted models is chosen here).
  ablation         LAC and PRC, each on and off, in the personalisation runs (the INT8 defaults follow it).
  ad               the AD autoencoder (MSE) adapts to machine B's normal sound: ROC AUC before and after, INT8 vs
                   FP32, with the update set `--update auto` picks for virtual-m4 and with last:2.
  random_init      every layer from random weights (`--init random`: He-uniform scaled to the data) on a subset of
                   the recipe's training data, held-out eval set; --models picks some of them.
  cost             instructions per training sample on virtual-m4 (QEMU -icount; linked against the speed-only
                   budget when the plan exceeds the board) and the static peak training SRAM, full update, INT8
                   vs FP32 at the same batch.
  fits             what trains on virtual-m4's 256 KiB as `octo train` would run it (batch and update set that fit):
                   arena, updated layers, instructions per sample.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchlib import write_results  # noqa: E402
from train_bench import DEFAULT_VARIANT, VARIANTS, converted, speed_run  # noqa: E402

OCTO = [sys.executable, "-m", "host_tools.cli"]
# model -> (epochs, batch, learning rates) of the personalisation runs
PERSONAL = {"mlperf_ic": (3, 16, (0.01, 0.003, 0.001, 0.0003)), "mbv2_ic": (3, 16, (0.01, 0.003, 0.001, 0.0003)),
            "mlperf_kws": (3, 16, (0.01, 0.003, 0.001, 0.0003, 0.0001)),
            "mlperf_vww": (3, 16, (0.001, 0.0003, 0.0001))}
# model -> (training samples, epochs) from `--init random`, every layer. The digits CNN with all of train.json's
# data and epochs (the default's other witness); the BN-folded models on a subset, sized so the whole section runs
# in about half an hour on a free core (it took 61 minutes here, sharing 2 cores under a load of 10-17):
# ResNet-8 costs ~25 ms per INT8 training sample natively (FP32 ~14), so it gets 2000 sample-steps (1000 samples,
# 2 epochs); VWW 12000 (all 1500 x 8) at lr 0.01, where it learns (at the default 0.05 it stays at 50% in both
# precisions, as TensorFlow's SGD does without BatchNorm: bench/rinit_diag.py); KWS 24000 (all 1200 x 20: with
# 1000 x 10 every run was still climbing at the end); MobileNetV2 the 10000 of the earlier runs.
# model -> (samples, epochs, lr)
RANDOM_LR = 0.05  # `octo train --init random`'s default (host_tools/train/defaults.py)
RANDOM = {"digits_cnn": (1347, 20, RANDOM_LR), "mbv2_ic": (1000, 10, RANDOM_LR), "mlperf_kws": (1200, 20, RANDOM_LR),
          "mlperf_vww": (1500, 8, 0.01), "mlperf_ic": (1000, 2, RANDOM_LR)}
# The random-init variants, each with its INT8 gradient rounding explicit (the default follows this section):
# FP32, INT8 rounding gradients to nearest and stochastically; on the models that learn from scratch also LAC and
# PRC with stochastic gradients (Octo's own methods on these tasks).
GR = "--grad-rounding"
RANDOM_VARIANTS = {"fp32": VARIANTS["fp32"], "int8-nearest": [*VARIANTS["int8"], GR, "nearest"],
                   "int8-sr": [*VARIANTS["int8"], GR, "stochastic"],
                   "int8+lac-sr": [*VARIANTS["int8+lac"], GR, "stochastic"],
                   "int8+prc-sr": [*VARIANTS["int8+prc"], GR, "stochastic"]}
# personalisation: the converted default (nearest gradients) against stochastic gradients, both explicit
PERSONAL_VARIANTS = {"int8-sr": RANDOM_VARIANTS["int8-sr"]}
RANDOM_ABLATION = ("digits_cnn", "mlperf_kws")  # the others get fp32, int8-nearest and int8-sr
RANDOM_INIT = "He-uniform, layers reading the samples / RMS(samples)"  # host_tools/train/init_scale.py
COST = {"mlperf_ic": 4, "mbv2_ic": 4, "mlperf_kws": 4}  # model -> batch (FP32 at 16 exceeds the 4 MiB speed budget)


# model -> personalisation samples generated for the bench instead of the recipe's personal.npz (same domain and
# generator, a larger draw): VWW's 300 (a scoring half of 150) resolve 0.67 pp per sample, about the 1 pp goal.
PERSONAL_SIZE = {"mlperf_vww": 1000}


def _personal(model_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    n = PERSONAL_SIZE.get(model_dir.name)
    if n is None:
        with np.load(model_dir / "personal.npz") as d:
            return d["x"], d["y"]
    from models.datasets import images_float, vww_data

    d = vww_data(0, (1500, 250, n))  # the recipe's seed and training/test sizes
    return images_float(d["x_personal"]), d["y_personal"]


def _split(model_dir: Path, work: Path) -> tuple[Path, Path]:
    """The personalisation samples -> (first half, second half) files, once."""
    n = PERSONAL_SIZE.get(model_dir.name)
    tag = f"personal{n}" if n else "personal"
    a, b = work / f"{model_dir.name}-{tag}-a.npz", work / f"{model_dir.name}-{tag}-b.npz"
    if not a.exists():
        x, y = _personal(model_dir)
        h = len(y) // 2
        np.savez(a, x=x[:h], y=y[:h])
        np.savez(b, x=x[h:], y=y[h:])
    return a, b


def _subset(model_dir: Path, n: int, work: Path) -> Path:
    out = work / f"{model_dir.name}-train{n}.npz"
    if not out.exists():
        with np.load(model_dir / "train.npz") as d:
            np.savez(out, x=d["x"][:n], y=d["y"][:n])
    return out


def _train(model_dir: Path, tag: str, flags: list[str], work: Path, key: str = "eval_accuracy") -> dict[str, Any]:
    """One `octo train` run (reused when the same run, flags included, finished before; a run without its
    flags.json, from before they were recorded, is run again)."""
    run = work / "runs" / tag
    out = run / "metrics.json"
    done = run / "flags.json"
    cmd = [*OCTO, "train", str(model_dir), "--target", "host", "--run-dir", str(run), "--json", str(out), *flags]
    if not (out.exists() and done.exists() and json.loads(done.read_text()) == cmd[2:]):
        out.unlink(missing_ok=True)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
        if proc.returncode != 0:
            return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
        done.write_text(json.dumps(cmd[2:]))
    m = json.loads(out.read_text())
    return {"before": (m.get("initial") or {}).get(key), "after": m["final"][key],
            "seconds": sum(e.get("seconds", 0.0) for e in m.get("epochs", []))}


def _stats(v: list[float]) -> dict[str, Any]:
    return {"mean": round(float(np.mean(v)), 4), "std": round(float(np.std(v)), 4), "runs": len(v)} if v else {}


def personalisation(work: Path, seeds: list[int], jobs: int, models: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (epochs, batch, lrs) in PERSONAL.items():
        if models and name not in models:
            continue
        md = converted(name, work)
        a, b = _split(md, work)
        variants = ("fp32", DEFAULT_VARIANT, "int8-sr")
        tasks = [(v, lr, s) for v in variants for lr in lrs for s in seeds]

        def one(t: tuple[str, float, int], md: Path = md, a: Path = a, b: Path = b, epochs: int = epochs,
                batch: int = batch) -> dict[str, Any]:
            v, lr, s = t
            flags = ["--init", "converted", "--data", str(a), "--eval", str(b), "--epochs", str(epochs), "--batch",
                     str(batch), "--lr", str(lr), "--seed", str(s), *PERSONAL_VARIANTS.get(v, VARIANTS.get(v, []))]
            return {"variant": v, "lr": lr, "seed": s, **_train(md, f"{md.name}-p-{v}-{lr}-s{s}", flags, work)}

        t0 = time.time()
        with ThreadPoolExecutor(jobs) as ex:
            runs = list(ex.map(one, tasks))
        table: dict[str, Any] = {}
        for v in variants:
            for lr in lrs:
                rs = [r for r in runs if r["variant"] == v and r["lr"] == lr and "after" in r]
                table[f"{v}@{lr}"] = {"after": _stats([r["after"] for r in rs]),
                                      "before": _stats([r["before"] for r in rs if r["before"] is not None])}
        best = {v: max(lrs, key=lambda lr, v=v: table[f"{v}@{lr}"]["after"].get("mean", 0.0)) for v in variants}

        def gap_of(v: str, table: dict[str, Any] = table, lrs: tuple[float, ...] = lrs) -> dict[str, float]:
            return {str(lr): round((table[f"fp32@{lr}"]["after"].get("mean", 0) - table[f"{v}@{lr}"]["after"]
                                    .get("mean", 0)) * 100, 2) for lr in lrs}

        gap = gap_of(DEFAULT_VARIANT)
        with np.load(a) as da, np.load(b) as db:
            n_personal = len(da["y"]) + len(db["y"])
        out[name] = {"epochs": epochs, "batch": batch, "seeds": seeds, "personal_samples": n_personal,
                     "table": table, "best_lr": best,
                     "fp32_minus_int8_pp": gap, "fp32_minus_int8_sr_pp": gap_of("int8-sr"),
                     "failed": [r for r in runs if "error" in r], "runs": runs, "seconds": round(time.time() - t0, 1)}
        print(f"personalisation {name}: " + ", ".join(
            f"{k} {t['before'].get('mean', 0):.4f}->{t['after'].get('mean', 0):.4f}" for k, t in table.items()),
            flush=True)
    return out


ABLATION = ("mlperf_ic", "mbv2_ic")  # personalisation with each INT8 variant at ABLATION_LR
ABLATION_LR = 0.001


def ablation(work: Path, seeds: list[int], jobs: int) -> dict[str, Any]:
    """LAC and PRC (and their absence) on the personalisation tasks: the defaults follow this table."""
    out: dict[str, Any] = {}
    variants = [v for v in VARIANTS if v != "fp32"]
    for name in ABLATION:
        epochs, batch, _ = PERSONAL[name]
        md = converted(name, work)
        a, b = _split(md, work)
        tasks = [(v, s) for v in variants for s in seeds]

        def one(t: tuple[str, int], md: Path = md, a: Path = a, b: Path = b, epochs: int = epochs,
                batch: int = batch) -> dict[str, Any]:
            v, s = t
            flags = ["--init", "converted", "--data", str(a), "--eval", str(b), "--epochs", str(epochs), "--batch",
                     str(batch), "--lr", str(ABLATION_LR), "--seed", str(s), *VARIANTS[v]]
            return {"variant": v, "seed": s, **_train(md, f"{md.name}-p-{v}-{ABLATION_LR}-s{s}", flags, work)}

        with ThreadPoolExecutor(jobs) as ex:
            runs = list(ex.map(one, tasks))
        table = {v: _stats([r["after"] for r in runs if r["variant"] == v and "after" in r]) for v in variants}
        best = max(variants, key=lambda v: table[v].get("mean", 0.0))
        out[name] = {"lr": ABLATION_LR, "epochs": epochs, "seeds": seeds, "table": table, "best": best,
                     "failed": [r for r in runs if "error" in r]}
        print(f"ablation {name}: " + ", ".join(f"{v} {t.get('mean', 0):.4f}±{t.get('std', 0):.4f}"
                                              for v, t in table.items()), flush=True)
    return out


AD_LRS = (0.003, 0.001)
AD_EPOCHS = 30
AD_UPDATES = ("last:2", "board")  # board: what `--update auto` picks for virtual-m4 (256 KiB) at batch 16


def _ad_split(model_dir: Path, work: Path) -> tuple[Path, Path]:
    """machine B (personal.npz, 57 vectors per clip, normal clips first): normal clips 0-5 to adapt on; normal
    clips 6-11 and every anomalous clip held out (y = 1 anomalous)."""
    a, b = work / "mlperf_ad-b-train.npz", work / "mlperf_ad-b-eval.npz"
    if not a.exists():
        with np.load(model_dir / "personal.npz") as d:
            x, y = d["x"], d["y"]
        normal, anomalous = np.where(y == 0)[0], np.where(y == 1)[0]
        h = len(normal) // 2
        np.savez(a, x=x[normal[:h]], y=y[normal[:h]])
        keep = np.concatenate([normal[h:], anomalous])
        np.savez(b, x=x[keep], y=y[keep])
    return a, b


def ad(work: Path, seeds: list[int], jobs: int) -> dict[str, Any]:
    """The AD autoencoder adapts to machine B's normal sound (MSE, normal data only): ROC AUC of the
    reconstruction error on held-out normal and anomalous B clips, before and after, INT8 vs FP32."""
    from converter.train_plan import TrainConfig
    from converter.update_budget import choose_update

    md = converted("mlperf_ad", work)
    a, b = _ad_split(md, work)
    board_set = choose_update((md / "model.tflite").read_bytes(), TrainConfig("int8", 16), 256 * 1024,
                              "mlperf_ad").spec
    updates = {u: (board_set if u == "board" else u) for u in AD_UPDATES}
    tasks = [(v, u, lr, s) for v in ("fp32", DEFAULT_VARIANT) for u in AD_UPDATES for lr in AD_LRS for s in seeds]

    def one(t: tuple[str, str, float, int]) -> dict[str, Any]:
        v, u, lr, s = t
        flags = ["--loss", "mse", "--init", "converted", "--data", str(a), "--eval", str(b), "--epochs",
                 str(AD_EPOCHS), "--update", updates[u], "--lr", str(lr), "--seed", str(s), *VARIANTS[v]]
        r = _train(md, f"mlperf_ad-{v}-{u.replace(':', '')}-{lr}-s{s}", flags, work, key="eval_auc")
        return {"variant": v, "update": u, "lr": lr, "seed": s, **r}

    t0 = time.time()
    with ThreadPoolExecutor(jobs) as ex:
        runs = list(ex.map(one, tasks))
    table: dict[str, Any] = {}
    for v in ("fp32", DEFAULT_VARIANT):
        for u in AD_UPDATES:
            for lr in AD_LRS:
                rs = [r for r in runs if (r["variant"], r["update"], r["lr"]) == (v, u, lr) and "after" in r]
                table[f"{v}/{u}@{lr}"] = {"auc_after": _stats([r["after"] for r in rs]),
                                          "auc_before": _stats([r["before"] for r in rs if r["before"] is not None])}
    print("ad: " + ", ".join(f"{k} {t['auc_before'].get('mean', 0):.4f}->{t['auc_after'].get('mean', 0):.4f}"
                             for k, t in table.items()), flush=True)
    return {"epochs": AD_EPOCHS, "seeds": seeds, "board_update_set": board_set, "table": table,
            "failed": [r for r in runs if "error" in r], "runs": runs, "seconds": round(time.time() - t0, 1)}


def random_init(work: Path, seeds: list[int], jobs: int, models: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (n, epochs, lr) in RANDOM.items():
        if models and name not in models:
            continue
        md = converted(name, work)
        data = _subset(md, n, work)
        variants = list(RANDOM_VARIANTS) if name in RANDOM_ABLATION else ["fp32", "int8-nearest", "int8-sr"]
        tasks = [(v, s) for v in variants for s in seeds]

        def one(t: tuple[str, int], md: Path = md, data: Path = data, epochs: int = epochs,
                lr: float = lr) -> dict[str, Any]:
            v, s = t
            flags = ["--init", "random", "--data", str(data), "--epochs", str(epochs), "--lr", str(lr),
                     "--seed", str(s), *RANDOM_VARIANTS[v]]
            return {"variant": v, "seed": s, **_train(md, f"{md.name}-r-{v}-s{s}", flags, work)}

        t0 = time.time()
        with ThreadPoolExecutor(jobs) as ex:
            runs = list(ex.map(one, tasks))
        table = {v: _stats([r["after"] for r in runs if r["variant"] == v and "after" in r]) for v in variants}
        gap = {v: round((table["fp32"].get("mean", 0) - table[v].get("mean", 0)) * 100, 2) for v in variants[1:]}
        out[name] = {"samples": n, "epochs": epochs, "lr": lr, "init": RANDOM_INIT, "seeds": seeds,
                     "variants": {v: RANDOM_VARIANTS[v] for v in variants},
                     "table": table, "curves": _curves(work, [f"{md.name}-r-{v}-s{s}" for v, s in tasks]),
                     "fp32_minus_int8_pp": gap, "failed": [r for r in runs if "error" in r], "runs": runs,
                     "seconds": round(time.time() - t0, 1)}
        print(f"random init {name}: " + ", ".join(f"{v} {t.get('mean', 0):.4f}±{t.get('std', 0):.4f}"
                                                 for v, t in table.items()) + f" (FP32 - INT8 {gap} pp)", flush=True)
    return out


def _curves(work: Path, tags: list[str]) -> dict[str, list[float]]:
    """Held-out accuracy after every epoch of each run (tag -> curve)."""
    out = {}
    for t in tags:
        f = work / "runs" / t / "metrics.json"
        if f.exists():
            out[t] = [e.get("eval_accuracy") for e in json.loads(f.read_text()).get("epochs", [])]
    return out


def cost(work: Path) -> dict[str, Any]:
    from converter.train_plan import TrainConfig, make_plan

    out: dict[str, Any] = {}
    d = DEFAULT_VARIANT
    for name, batch in COST.items():
        md = converted(name, work)
        rows = {"fp32": speed_run(md, "fp32", batch, "virtual-m4", 3, False, False, False),
                d: speed_run(md, "int8", batch, "virtual-m4", 3, "lac" in d, "prc" in d, False),
                # stochastic gradient rounding: the random-init default
                "int8-sr": speed_run(md, "int8", batch, "virtual-m4", 3, "lac" in d, "prc" in d, False, True)}
        model = (md / "model.tflite").read_bytes()
        sram16 = {p: make_plan(model, TrainConfig(p, 16, "all"))[0]["arena_bytes"] for p in ("int8", "fp32")}
        for r in rows.values():
            r.pop("layers", None)
        ratio = rows[d]["instructions_per_sample"] / rows["fp32"]["instructions_per_sample"]
        out[name] = {"batch": batch, "rows": rows, "int8_vs_fp32_instructions": round(ratio, 3),
                     "int8_sr_vs_fp32_instructions": round(rows["int8-sr"]["instructions_per_sample"]
                                                           / rows["fp32"]["instructions_per_sample"], 3),
                     "int8_vs_fp32_peak_sram": round(rows[d]["peak_training_sram_bytes"]
                                                     / rows["fp32"]["peak_training_sram_bytes"], 3),
                     "peak_sram_batch16": sram16,
                     "int8_vs_fp32_peak_sram_batch16": round(sram16["int8"] / sram16["fp32"], 3)}
        print(f"cost {name} (batch {batch}): instructions/sample FP32 {rows['fp32']['instructions_per_sample']:,} "
              f"INT8 {rows[d]['instructions_per_sample']:,} (x{ratio:.3f}); peak SRAM x"
              f"{out[name]['int8_vs_fp32_peak_sram']} (batch 16: x{out[name]['int8_vs_fp32_peak_sram_batch16']})",
              flush=True)
    return out


def fits(work: Path) -> dict[str, Any]:
    """`octo train MODEL --board virtual-m4` as a user runs it (the batch and, with auto, the update set that fit
    256 KiB), one epoch on 32 personal samples: the arena, what trains, instructions per training sample."""
    out: dict[str, Any] = {}
    for name, flags in FIT_FLAGS.items():
        md = converted(name, work)
        a = _ad_split(md, work)[0] if name == "mlperf_ad" else _split(md, work)[0]
        small = work / f"{name}-fits.npz"
        with np.load(a) as d:
            np.savez(small, x=d["x"][:32], y=d["y"][:32])
        run = work / "runs" / f"{name}-fits"
        js = run / "metrics.json"
        cmd = [*OCTO, "train", str(md), "--board", "virtual-m4", *flags, "--data", str(small), "--eval", str(small),
               "--epochs", "1", "--run-dir", str(run), "--json", str(js)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
        if proc.returncode != 0:
            out[name] = {"flags": flags, "error": proc.stderr.strip().splitlines()[-1]}
            print(f"fits {name}: {out[name]['error']}", flush=True)
            continue
        m = json.loads(js.read_text())
        cid = m["config"]["config_id"]
        plan = json.loads((md / "train" / cid / "train_plan.json").read_text())
        out[name] = {"flags": flags, "config_id": cid, "batch": plan["batch"], "update": plan["update"],
                     "arena_bytes": plan["arena_bytes"], "memory": plan["memory"],
                     "adds": sum(la["kind"] == "ADD" for la in plan["layers"]),
                     "updated_layers": [la["name"] + ("" if la.get("train_oc", la["oc"]) == la["oc"] else
                                                      f" ({la['train_oc']}/{la['oc']} channels)")
                                        for la in plan["layers"] if la["train_w"]],
                     "bias_only_layers": [la["name"] for la in plan["layers"] if la["train_b"] and not la["train_w"]],
                     "instructions_per_sample": m.get("instructions_per_sample")}
        print(f"fits {name}: {cid} arena {plan['arena_bytes']:,} B, weights of {out[name]['updated_layers']}, "
              f"biases of {out[name]['bias_only_layers']}, {out[name]['instructions_per_sample']} instructions/sample",
              flush=True)
    return out


FIT_FLAGS = {"mlperf_ic": ["--update", "auto", "--lr", "0.001"], "mbv2_ic": ["--update", "all", "--lr", "0.001"],
             "mlperf_ad": ["--loss", "mse", "--update", "auto", "--lr", "0.001"]}
SECTIONS = {"personalisation": personalisation, "ablation": ablation, "ad": ad, "random_init": random_init,
            "cost": cost, "fits": fits}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--sections", default="all", help="comma-separated: " + ",".join(SECTIONS))
    ap.add_argument("--models", default="", help="personalisation and random_init: comma-separated subset of "
                    "their models (the section's other models keep their results in the JSON)")
    ap.add_argument("--work", default=str(ROOT / "build" / "bench-graph"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "graph_train.json"))
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    seeds = list(range(args.seeds))
    names = list(SECTIONS) if args.sections == "all" else args.sections.split(",")
    out_path = Path(args.out)
    res: dict[str, Any] = json.loads(out_path.read_text()) if out_path.exists() else {}
    for k in ("schema", "date", "host"):
        res.pop(k, None)
    for n in names:
        t0 = time.time()
        if n in ("cost", "fits"):
            res[n] = SECTIONS[n](work)  # type: ignore[operator]
        elif n in ("random_init", "personalisation"):
            models = [m for m in args.models.split(",") if m]
            fn = random_init if n == "random_init" else personalisation
            res[n] = {**(res.get(n, {}) if models else {}), **fn(work, seeds, args.jobs, models)}
        else:
            res[n] = SECTIONS[n](work, seeds, args.jobs)  # type: ignore[operator]
        res.setdefault("seconds", {})[n] = (round(sum(r.get("seconds", 0.0) for r in res[n].values()), 1)
                                            if n in ("random_init", "personalisation") else round(time.time() - t0, 1))
        res["default_variant"] = DEFAULT_VARIANT
        write_results(out_path, "octo.bench.graph_train/1", **res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
