"""Federated INT8 (Octo) vs federated FP32 vs centralised training on the same data (digits CNN, native trainer),
uplink bytes per round at 8, 4, 3 and 2 bits per weight, wall time per round, and a scale run (KWS, 100 clients)
-> bench/results/fleet.json and bench/results/fleet.png (accuracy per round, bytes per round).

    python bench/fleet_bench.py [--model build/digits] [--seeds 0,1,2] [--clients 8] [--rounds 30]
                                [--variants fed_int8,...] [--scale-model build/kws] [--scale-clients 100]
    python bench/fleet_bench.py --deployment [--boards 4] [--board virtual-m4] [--rounds 5]
    python bench/fleet_bench.py --split [--boards 4] [--split-epochs 3]
    python bench/fleet_bench.py --split --deployment [--boards 4] [--board virtual-m4] [--split-epochs 3]

--deployment adds (or replaces) only the file's `deployment` section: `octo fleet run` (a local SuperLink with TLS
and SuperNode authentication, one SuperNode per QEMU board) once as is, and once with one board killed mid-round.
--split adds the `split` section: split learning on Flower's simulation engine (`octo collab --engine flower`)
against `octo collab` itself; with --deployment, the `split_deployment` section: `octo fleet run --mode split` on
--board boards against `octo collab` on the same boards.

Every federation is `octo fleet sim` (Flower simulation, Ray backend) run as a user would; centralised training
is the same engine on all the training data for as many epochs as a client trains in total (rounds x local
epochs), with the same learning rate and batch, scored on the same eval set. A run already in the output file
(same variant, seed and settings) is reused unless --fresh."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VARIANTS = {  # name: (precision, uplink)
    "fed_int8": ("int8", "int8"),
    "fed_int8_int4_uplink": ("int8", "int4"),
    "fed_int8_int3_uplink": ("int8", "int3"),
    "fed_int8_int2_uplink": ("int8", "int2"),
    "fed_int8_fp32_uplink": ("int8", "fp32"),
    "fed_fp32": ("fp32", "fp32"),
}


def run_fleet(model: Path, precision: str, uplink: str, seed: int, clients: int, rounds: int, a: argparse.Namespace,
              extra: tuple[str, ...] = ()) -> dict:
    with tempfile.TemporaryDirectory() as td:
        out = Path(td) / "f.json"
        cmd = [sys.executable, "-m", "host_tools.cli", "fleet", "sim", str(model), "--clients", str(clients),
               "--rounds", str(rounds), "--local-epochs", str(a.local_epochs), "--alpha", str(a.alpha),
               "--precision", precision, "--uplink", uplink, "--seed", str(seed), "--json", str(out), *extra]
        subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True, text=True)
        return json.loads(out.read_text())


def run_central(model: Path, precision: str, seed: int, a: argparse.Namespace) -> dict:
    from host_tools.fleet.local import open_client_target, train_round
    from host_tools.fleet.sim import Evaluator, SimOptions, prepare
    from host_tools.services.training import TrainSession
    from host_tools.train.run import quantize_samples

    opts = SimOptions(model, precision=precision, seed=seed, lr=0.05)
    tb, spec = prepare(opts)
    d = np.load(spec.data)
    ev = Evaluator(tb, spec, model / "eval.npz")
    t0 = time.monotonic()
    try:
        w0 = ev.initial()
        with open_client_target(spec, 1) as t:
            r = train_round(TrainSession(t.client), tb.plan, spec, w0, quantize_samples(d["x"], spec.input_scale),
                            d["y"].astype(np.int64), a.rounds * a.local_epochs, spec.lr, seed)
        loss, acc = ev(r.weights)
    finally:
        ev.close()
    return {"eval_accuracy": acc, "eval_loss": loss, "epochs": a.rounds * a.local_epochs,
            "seconds": time.monotonic() - t0}


def run_deployment(a: argparse.Namespace) -> int:
    """`octo fleet run` on virtual boards: final accuracy and wall time per round, without and with a fault."""
    model = Path(a.model)
    out_path = Path(a.out)
    doc = json.loads(out_path.read_text()) if out_path.exists() else {"schema": "octo.bench.fleet/1"}
    section: dict = {"model": str(model), "boards": a.boards, "board": a.board, "rounds": a.rounds,
                     "local_epochs": a.local_epochs, "alpha": a.alpha, "strategy": "fedavg", "init": "random",
                     "lr": 0.05, "seed": 0, "tls": True, "supernode_auth": True, "runs": {}}
    settings = {"clean": [], "one_board_killed": ["--fault", f"kill:{a.boards - 1}@2"]}
    for name, extra in settings.items():
        with tempfile.TemporaryDirectory() as td:
            f = Path(td) / "f.json"
            cmd = [sys.executable, "-m", "host_tools.cli", "fleet", "run", str(model), "--boards", str(a.boards),
                   "--board", a.board, "--rounds", str(a.rounds), "--local-epochs", str(a.local_epochs), "--alpha",
                   str(a.alpha), *extra, "--json", str(f)]
            subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True, text=True)
            r = json.loads(f.read_text())
        section["runs"][name] = {
            "eval_accuracy": r["final"]["eval_accuracy"], "initial_accuracy": r["initial"]["accuracy"],
            "accuracy_per_round": [x["accuracy"] for x in r["per_round"]],
            "clients_answered": [x["clients_answered"] for x in r["per_round"]],
            "seconds_per_round": r["seconds_per_round"], "round_seconds": [x["seconds"] for x in r["per_round"]],
            "client_seconds": [x.get("client_seconds") for x in r["per_round"]],
            "wall_s": r["wall_s"], "bytes_per_round": r["bytes_per_round"], "faults": r["faults"]}
        print(name, json.dumps(section["runs"][name]), flush=True)
    doc["deployment"] = section
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


SPLIT_COMPARED = ("final", "bytes_per_sample", "reconstruction", "steps", "eval_accuracy_per_epoch",
                  "train_loss_per_epoch")


def _split_run(args: list[str]) -> dict:
    """One split-learning command (`octo collab ...` or `octo fleet run --mode split ...`) and its figures."""
    with tempfile.TemporaryDirectory() as td:
        f = Path(td) / "c.json"
        cmd = [sys.executable, "-m", "host_tools.cli", *args, "--split", "conv2", "--codec", "sgq", "--bits", "4",
               "--run-dir", str(Path(td) / "run"), "--json", str(f)]
        t0 = time.monotonic()
        subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True, text=True)
        m = json.loads(f.read_text())
    return {"final": m["final"], "bytes_per_sample": m["bytes_per_sample"], "reconstruction": m["reconstruction"],
            "steps": m["steps"], "eval_accuracy_per_epoch": [e["eval_accuracy"] for e in m["epochs"]],
            "train_loss_per_epoch": [e["train_loss"] for e in m["epochs"]],
            "seconds_per_epoch": [e["seconds"] for e in m["epochs"]],
            "instructions_per_sample": m["device"]["instructions_per_sample"], "wall_s": time.monotonic() - t0}


def run_split(a: argparse.Namespace) -> int:
    """Split learning on Flower against `octo collab` itself, same seed and settings: adds (or replaces) the file's
    `split` section (simulation engine, native trainers) or, with --deployment, its `split_deployment` section
    (`octo fleet run --mode split` on --board boards, TLS and SuperNode authentication)."""
    model = Path(a.model)
    out_path = Path(a.out)
    doc = json.loads(out_path.read_text()) if out_path.exists() else {"schema": "octo.bench.fleet/2"}
    common = ["--boards", str(a.boards), "--epochs", str(a.split_epochs)]
    if a.deployment:
        section, other = "split_deployment", "deployment"
        settings = {"model": str(model), "split": "conv2", "codec": "sgq", "bits": 4, "boards": a.boards,
                    "board": a.board, "epochs": a.split_epochs, "seed": 0, "tls": True, "supernode_auth": True}
        commands = {"direct": ["collab", str(model), "--board", a.board, *common],
                    "deployment": ["fleet", "run", str(model), "--mode", "split", "--board", a.board, *common]}
    else:
        section, other = "split", "flower"
        settings = {"model": str(model), "split": "conv2", "codec": "sgq", "bits": 4, "boards": a.boards,
                    "target": "host", "epochs": a.split_epochs, "seed": 0}
        commands = {engine: ["collab", str(model), "--target", "host", "--engine", engine, *common]
                    for engine in ("direct", "flower")}
    runs = {}
    for name, args in commands.items():
        runs[name] = _split_run(args)
        print(name, json.dumps(runs[name]["final"]), flush=True)
    same = {k: runs["direct"][k] == runs[other][k] for k in SPLIT_COMPARED}
    doc[section] = {**settings, "runs": runs, f"{other}_equals_direct": same}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"{other} equals direct:", same)
    return 0


def stats(v: list[float]) -> dict:
    return {"mean": float(np.mean(v)), "std": float(np.std(v)), "values": [float(x) for x in v]}


def plot(doc: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    names = [n for n in VARIANTS if doc["runs"].get(n)]
    for n in names:
        acc = np.mean([r["accuracy_per_round"] for r in doc["runs"][n]], axis=0)
        ax1.plot(np.arange(1, len(acc) + 1), acc, label=n.replace("fed_", ""))
    for n in ("central_int8", "central_fp32"):
        if doc["runs"].get(n):
            ax1.axhline(doc["summary"][n]["eval_accuracy"]["mean"], ls=":", lw=1, color="grey")
    ax1.set_xlabel("round")
    ax1.set_ylabel(f"eval accuracy (mean of {len(doc['seeds'])} seeds)")
    ax1.set_title(f"{doc['clients']} clients, Dirichlet alpha {doc['alpha']} (dotted: centralised)")
    ax1.legend(fontsize=8)
    up = [doc["summary"][n]["bytes_up_per_round"] / 1024 for n in names]
    down = [doc["summary"][n]["bytes_down_per_round"] / 1024 for n in names]
    xs = np.arange(len(names))
    ax2.bar(xs - 0.2, up, 0.4, label="up (clients -> server)")
    ax2.bar(xs + 0.2, down, 0.4, label="down (global model)")
    ax2.set_xticks(xs, [n.replace("fed_", "").replace("_uplink", "") for n in names], rotation=20, fontsize=8)
    ax2.set_ylabel("KiB per round")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="build/digits")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--local-epochs", type=int, default=2)
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--variants", default=",".join(VARIANTS), help="federations to run (default all)")
    ap.add_argument("--no-central", action="store_true", help="skip the centralised runs")
    ap.add_argument("--scale-model", default="", help="a model for the scale run (e.g. build/kws); empty = skip")
    ap.add_argument("--scale-clients", type=int, default=100)
    ap.add_argument("--scale-rounds", type=int, default=20)
    ap.add_argument("--scale-fraction", type=float, default=1.0)
    ap.add_argument("--scale-partition", default="group", help="octo fleet sim --partition for the scale run "
                    "(default group: KWS, one espeak-ng voice per client)")
    ap.add_argument("--scale-init", default="converted", help="the scale run's initial model (default: the "
                    "converted one, fine-tuned by the fleet)")
    ap.add_argument("--scale-lr", default="0.0001", help="the scale run's learning rate (default 1e-4, the best "
                    "fine-tuning rate for KWS in bench/results/graph_train.json)")
    ap.add_argument("--fresh", action="store_true", help="re-run what the output file already holds")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "fleet.json"))
    ap.add_argument("--deployment", action="store_true", help="only the deployment section (octo fleet run)")
    ap.add_argument("--boards", type=int, default=4, help="--deployment: boards (default 4)")
    ap.add_argument("--board", default="virtual-m4", help="--deployment: board (default virtual-m4)")
    ap.add_argument("--split", action="store_true", help="only the split section: octo collab --engine flower "
                    "against the direct engine (--boards, --split-epochs); with --deployment the split_deployment "
                    "section: octo fleet run --mode split against octo collab on --board")
    ap.add_argument("--split-epochs", type=int, default=3)
    a = ap.parse_args()
    if a.split:
        return run_split(a)
    if a.deployment:
        return run_deployment(a)
    model = Path(a.model)
    seeds = [int(s) for s in a.seeds.split(",")]
    out = Path(a.out)
    settings = {"model": str(model), "clients": a.clients, "rounds": a.rounds, "local_epochs": a.local_epochs,
                "alpha": a.alpha}
    old = json.loads(out.read_text()) if out.exists() and not a.fresh else {}
    same = all(old.get(k) == v for k, v in settings.items())
    runs: dict[str, list[dict]] = {k: [] for k in [*VARIANTS, "central_int8", "central_fp32"]}
    if same:
        for k, rs in old.get("runs", {}).items():
            runs[k] = [r for r in rs if r["seed"] in seeds]

    def have(name: str, seed: int) -> bool:
        return any(r["seed"] == seed for r in runs[name])

    for seed in seeds:
        for name in a.variants.split(","):
            prec, up = VARIANTS[name]
            if have(name, seed):
                continue
            doc = run_fleet(model, prec, up, seed, a.clients, a.rounds, a)
            runs[name].append({"seed": seed, "eval_accuracy": doc["final"]["eval_accuracy"],
                               "accuracy_per_round": [r["accuracy"] for r in doc["per_round"]],
                               "bytes_per_round": doc["bytes_per_round"],
                               "seconds_per_round": doc["seconds_per_round"], "wall_s": doc["wall_s"]})
            print(name, seed, runs[name][-1]["eval_accuracy"], doc["bytes_per_round"], flush=True)
        for prec in ("int8", "fp32"):
            if a.no_central or have(f"central_{prec}", seed):
                continue
            runs[f"central_{prec}"].append({"seed": seed, **run_central(model, prec, seed, a)})
            print(f"central_{prec}", seed, runs[f"central_{prec}"][-1]["eval_accuracy"], flush=True)
    summary = {}
    for name, rs in runs.items():
        if not rs:
            continue
        s = {"eval_accuracy": stats([r["eval_accuracy"] for r in rs])}
        if name in VARIANTS:
            s["bytes_up_per_round"] = float(np.mean([r["bytes_per_round"]["up"] for r in rs]))
            s["bytes_down_per_round"] = float(np.mean([r["bytes_per_round"]["down"] for r in rs]))
            s["seconds_per_round"] = float(np.mean([r["seconds_per_round"] for r in rs]))
        summary[name] = s
    fp = summary.get("fed_fp32")
    for s in summary.values():  # ratios against the FP32 federation (run first or last)
        if fp and "bytes_up_per_round" in s:
            s["uplink_ratio_vs_fp32"] = fp["bytes_up_per_round"] / s["bytes_up_per_round"]
            s["accuracy_vs_fp32_pp"] = 100 * (s["eval_accuracy"]["mean"] - fp["eval_accuracy"]["mean"])
    doc = {"schema": "octo.bench.fleet/2", **settings, "strategy": "fedavg", "init": "random", "lr": 0.05,
           "batch": 16, "seeds": seeds, "target": "host", "summary": summary,
           "int8_minus_fp32_federation_pp": summary["fed_int8"]["accuracy_vs_fp32_pp"]
           if "fed_int8" in summary and fp else None,
           "runs": runs}
    scale = old.get("scale") if same else None
    if a.scale_model and not (scale and scale.get("model") == a.scale_model
                              and scale.get("clients") == a.scale_clients
                              and scale.get("fraction") == a.scale_fraction
                              and scale.get("lr") == float(a.scale_lr)):
        t0 = time.monotonic()
        sd = run_fleet(Path(a.scale_model), "int8", "int3", 0, a.scale_clients, a.scale_rounds, a,
                       ("--fraction", str(a.scale_fraction), "--partition", a.scale_partition,
                        "--init", a.scale_init, "--lr", a.scale_lr))
        scale = {"model": a.scale_model, "clients": a.scale_clients, "rounds": a.scale_rounds,
                 "fraction": a.scale_fraction, "partition": sd.get("partition"), "init": a.scale_init,
                 "lr": float(a.scale_lr), "clients_sampled_per_round": [r["clients_sampled"] for r in sd["per_round"]],
                 "initial_accuracy": sd["initial"]["accuracy"], "final_accuracy": sd["final"]["eval_accuracy"],
                 "accuracy_per_round": [r["accuracy"] for r in sd["per_round"]],
                 "clients_answered_per_round": [r["clients_answered"] for r in sd["per_round"]],
                 "seconds_per_round": sd["seconds_per_round"],
                 "seconds_per_round_after_first": float(np.mean([r["seconds"] for r in sd["per_round"][1:]])),
                 "bytes_per_round": sd["bytes_per_round"], "wall_s": sd["wall_s"],
                 "bench_wall_s": time.monotonic() - t0}
        print("scale", json.dumps({k: v for k, v in scale.items() if "per_round" not in k}), flush=True)
    if scale:
        doc["scale"] = scale
    prev = json.loads(out.read_text()) if out.exists() else {}
    for section in ("deployment", "split", "split_deployment"):  # --deployment's and --split's own sections
        if section in prev:
            doc[section] = prev[section]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    plot(doc, out.with_suffix(".png"))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
