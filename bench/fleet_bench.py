"""Federated INT8 (Octo) vs federated FP32 vs centralised training on the same data (digits CNN, native trainer),
uplink bytes per round and wall time per round -> bench/results/fleet.json.

    python bench/fleet_bench.py [--model build/digits] [--seeds 0,1,2] [--clients 8] [--rounds 10]
    python bench/fleet_bench.py --deployment [--boards 4] [--board virtual-m4] [--rounds 5]

--deployment adds (or replaces) only the file's `deployment` section: `octo fleet run` (a local SuperLink with TLS
and SuperNode authentication, one SuperNode per QEMU board) once as is, and once with one board killed mid-round.

Every federation is `octo fleet sim` (Flower simulation, Ray backend) run as a user would; centralised training
is the same engine on all the training data for as many epochs as a client trains in total (rounds x local
epochs), with the same learning rate and batch, scored on the same eval set."""

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
    "fed_int8_fp32_uplink": ("int8", "fp32"),
    "fed_fp32": ("fp32", "fp32"),
}


def run_fleet(model: Path, precision: str, uplink: str, seed: int, a: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as td:
        out = Path(td) / "f.json"
        cmd = [sys.executable, "-m", "host_tools.cli", "fleet", "sim", str(model), "--clients", str(a.clients),
               "--rounds", str(a.rounds), "--local-epochs", str(a.local_epochs), "--alpha", str(a.alpha),
               "--precision", precision, "--uplink", uplink, "--seed", str(seed), "--json", str(out)]
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


def stats(v: list[float]) -> dict:
    return {"mean": float(np.mean(v)), "std": float(np.std(v)), "values": [float(x) for x in v]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="build/digits")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--local-epochs", type=int, default=2)
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "fleet.json"))
    ap.add_argument("--deployment", action="store_true", help="only the deployment section (octo fleet run)")
    ap.add_argument("--boards", type=int, default=4, help="--deployment: boards (default 4)")
    ap.add_argument("--board", default="virtual-m4", help="--deployment: board (default virtual-m4)")
    a = ap.parse_args()
    if a.deployment:
        return run_deployment(a)
    model = Path(a.model)
    seeds = [int(s) for s in a.seeds.split(",")]
    runs: dict[str, list[dict]] = {k: [] for k in [*VARIANTS, "central_int8", "central_fp32"]}
    for seed in seeds:
        for name, (prec, up) in VARIANTS.items():
            doc = run_fleet(model, prec, up, seed, a)
            runs[name].append({"seed": seed, "eval_accuracy": doc["final"]["eval_accuracy"],
                               "accuracy_per_round": [r["accuracy"] for r in doc["per_round"]],
                               "bytes_per_round": doc["bytes_per_round"],
                               "seconds_per_round": doc["seconds_per_round"], "wall_s": doc["wall_s"]})
            print(name, seed, runs[name][-1]["eval_accuracy"], doc["bytes_per_round"], flush=True)
        for prec in ("int8", "fp32"):
            runs[f"central_{prec}"].append({"seed": seed, **run_central(model, prec, seed, a)})
            print(f"central_{prec}", seed, runs[f"central_{prec}"][-1]["eval_accuracy"], flush=True)
    summary = {}
    for name, rs in runs.items():
        s = {"eval_accuracy": stats([r["eval_accuracy"] for r in rs])}
        if name in VARIANTS:
            s["bytes_up_per_round"] = float(np.mean([r["bytes_per_round"]["up"] for r in rs]))
            s["bytes_down_per_round"] = float(np.mean([r["bytes_per_round"]["down"] for r in rs]))
            s["seconds_per_round"] = float(np.mean([r["seconds_per_round"] for r in rs]))
        summary[name] = s
    up_ratio = summary["fed_fp32"]["bytes_up_per_round"] / summary["fed_int8"]["bytes_up_per_round"]
    doc = {"schema": "octo.bench.fleet/1", "model": str(model), "clients": a.clients, "rounds": a.rounds,
           "local_epochs": a.local_epochs, "alpha": a.alpha, "strategy": "fedavg", "init": "random", "lr": 0.05,
           "batch": 16, "seeds": seeds, "target": "host", "summary": summary,
           "uplink_ratio_fp32_over_int8": up_ratio,
           "int8_minus_fp32_federation_pp": 100 * (summary["fed_int8"]["eval_accuracy"]["mean"]
                                                   - summary["fed_fp32"]["eval_accuracy"]["mean"]),
           "runs": runs}
    if Path(a.out).exists() and "deployment" in (old := json.loads(Path(a.out).read_text())):
        doc["deployment"] = old["deployment"]
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
