"""`octo fleet sim`: a Flower simulation (simulation engine, Ray backend) of N clients, each training with Octo's
engine on the native trainer (the same C as the boards), against a ServerApp with a Flower strategy.
The JSON it writes is schema `octo.fleet/1` (docs/JSON.md)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from host_tools.errors import OctoError
from host_tools.fleet.local import FleetSpec

SCHEMA = "octo.fleet/1"


@dataclass
class SimOptions:
    model_dir: Path
    clients: int = 4
    rounds: int = 3
    precision: str = "int8"
    strategy: str = "fedavg"
    epochs: int = 1
    batch: int = 16
    lr: float = 0.05
    momentum: float = 0.9
    alpha: float = 0.5
    seed: int = 0
    fraction: float = 1.0
    init: str = "random"
    compress: bool = True
    uplink_bits: int = 8
    partition: str = "dirichlet"
    data: Path | None = None
    eval: Path | None = None
    ray_cpus: int = 2


def prepare(opts: SimOptions, board: str = "host") -> tuple[Any, FleetSpec]:
    """The training build (update all), its native trainer compiled once, and the clients' spec."""
    from converter.tflite_reader import parse_tflite  # noqa: PLC0415
    from converter.train_plan import TrainConfig, prepare_training  # noqa: PLC0415
    from host_tools.board.target import build_host_trainer  # noqa: PLC0415
    from host_tools.fleet.codec import check_plan  # noqa: PLC0415
    from host_tools.train.run import compute_input_scale, load_dataset  # noqa: PLC0415

    md = opts.model_dir
    if not (md / "model.tflite").exists():
        raise OctoError(f"{md} holds no converted model", hint=f"run `octo convert <model> -o {md}` first")
    cfg = TrainConfig(opts.precision, opts.batch, "all").resolve_loss(
        parse_tflite((md / "model.tflite").read_bytes(), md.name))
    tb = prepare_training(md, cfg, board)
    check_plan(tb.plan)
    if tb.plan.get("loss") == "mse":
        raise OctoError("octo fleet trains classifiers (cross-entropy); this model trains with mse")
    data = opts.data or md / "train.npz"
    if not data.exists():
        raise OctoError(f"no training data: {data} does not exist", hint="pass --data with an .npz of x, y")
    x, _ = load_dataset(data, tb.plan)
    from host_tools.fleet.data import partition  # noqa: PLC0415

    try:  # checked here, so a bad split is one clear error rather than a failure in every client
        partition(str(data.resolve()), opts.clients, opts.partition, opts.alpha, opts.seed)
    except ValueError as e:
        raise OctoError(f"cannot split {data} over {opts.clients} clients: {e}",
                        hint="fewer --clients, another --partition, or more data") from None
    build_host_trainer(tb.dir)  # once, before the clients start (cached on the sources)
    spec = FleetSpec(model_dir=str(md), train_dir=str(tb.dir), config_id=cfg.config_id, board=board,
                     data=str(data.resolve()), clients=opts.clients, alpha=opts.alpha, seed=opts.seed,
                     epochs=opts.epochs, batch=tb.plan["batch"], lr=opts.lr, momentum=opts.momentum,
                     input_scale=compute_input_scale(x), compress=opts.compress,
                     uplink_bits=opts.uplink_bits, partition=opts.partition, init_random=opts.init == "random")
    return tb, spec


class Evaluator:
    """Centralised evaluation of the global model on the eval set, on one native trainer of the server's."""

    def __init__(self, tb: Any, spec: FleetSpec, eval_path: Path) -> None:
        from host_tools.fleet.local import open_client_target  # noqa: PLC0415
        from host_tools.services.training import TrainSession  # noqa: PLC0415
        from host_tools.train.run import load_dataset, quantize_samples  # noqa: PLC0415

        ex, ey = load_dataset(eval_path, tb.plan)
        self.xq, self.y = quantize_samples(ex, spec.input_scale), ey
        self.spec, self.plan = spec, tb.plan
        host = FleetSpec(**{**spec.__dict__, "board": "host", "port": "", "elf": ""})
        self._cm = open_client_target(host, 0)
        self.sess = TrainSession(self._cm.__enter__().client)

    def initial(self) -> dict[str, np.ndarray]:
        from host_tools.fleet.local import initial_weights  # noqa: PLC0415

        return initial_weights(self.sess, self.plan, self.spec)

    def __call__(self, weights: dict[str, np.ndarray]) -> tuple[float, float]:
        from host_tools.fleet.local import evaluate  # noqa: PLC0415

        return evaluate(self.sess, self.plan, self.spec, weights, self.xq, self.y)

    def close(self) -> None:
        self._cm.__exit__(None, None, None)


def part_kind(kind: str, alpha: float) -> str:
    return "iid" if kind == "dirichlet" and alpha <= 0 else kind


def summarise(opts: SimOptions, spec: FleetSpec, out: dict[str, Any], mode: str, wall_s: float,
              extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The octo.fleet/1 document from the ServerApp's results."""
    tally = out["tally"]
    evals = out.get("evals", {})
    tm = out.get("train_metrics", {})
    rounds = []
    for r in range(1, opts.rounds + 1):
        t = tally.rounds.get(r, {})
        m = tm.get(r, {})
        loss, acc = evals.get(r, (None, None))
        rounds.append({"round": r, "accuracy": acc, "loss": loss, "train_loss": m.get("train_loss"),
                       "clients_sampled": t.get("sampled", 0), "clients_answered": t.get("answered", 0),
                       "clients_failed": t.get("failed", 0), "bytes_up": t.get("bytes_up", 0),
                       "bytes_down": t.get("bytes_down", 0), "seconds": t.get("t_train"),
                       "client_seconds": m.get("seconds")})
    done = [r for r in rounds if r["clients_answered"] > 0]
    n_params = int(sum(np.asarray(v).size for v in out.get("final", {}).values()))
    return {
        "schema": SCHEMA, "mode": mode, "model": str(opts.model_dir), "config_id": spec.config_id,
        "precision": opts.precision, "strategy": opts.strategy, "clients": opts.clients, "rounds": opts.rounds,
        "fraction": opts.fraction, "local_epochs": opts.epochs, "batch": spec.batch, "lr": opts.lr,
        "momentum": opts.momentum, "init": opts.init, "seed": opts.seed,
        "partition": {"kind": part_kind(opts.partition, opts.alpha), "alpha": opts.alpha},
        "uplink": f"int{opts.uplink_bits}-delta" if opts.compress else "fp32", "downlink": "fp32",
        "parameters": n_params,
        "board": spec.board, "initial": {"accuracy": evals.get(0, (None, None))[1],
                                         "loss": evals.get(0, (None, None))[0]},
        "per_round": rounds,
        "final": {"eval_accuracy": rounds[-1]["accuracy"] if rounds else None,
                  "eval_loss": rounds[-1]["loss"] if rounds else None},
        "bytes_per_round": {"up": float(np.mean([r["bytes_up"] for r in done])) if done else 0.0,
                            "down": float(np.mean([r["bytes_down"] for r in done])) if done else 0.0},
        "wall_s": round(wall_s, 2),
        "seconds_per_round": float(np.mean([r["seconds"] for r in done if r["seconds"] is not None])) if done else None,
        **(extra or {}),
    }


def run_sim(opts: SimOptions, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the simulation; returns the octo.fleet/1 document."""
    if opts.clients < 2:
        raise OctoError("a federation needs at least 2 clients")
    t0 = time.monotonic()
    tb, spec = prepare(opts)
    say(f"fleet sim: {opts.clients} clients ({spec.config_id}, native trainer), {opts.rounds} rounds of "
        f"{opts.epochs} local epoch(s), {opts.strategy}, uplink "
        f"{f'{opts.uplink_bits}-bit deltas' if opts.compress else 'FP32'}")
    ev = Evaluator(tb, spec, opts.eval or opts.model_dir / "eval.npz")
    try:
        initial = ev.initial()
        from flwr.simulation import run_simulation  # noqa: PLC0415

        from host_tools.fleet.apps import make_client_app, make_server_app  # noqa: PLC0415

        out: dict[str, Any] = {}
        min_nodes = max(2, round(opts.fraction * opts.clients))
        server = make_server_app(spec, strategy=opts.strategy, rounds=opts.rounds, initial=initial, evaluate=ev,
                                 fraction=opts.fraction, min_nodes=min_nodes, out=out)
        client = make_client_app(spec)
        backend = {"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                   "init_args": {"num_cpus": opts.ray_cpus, "num_gpus": 0, "include_dashboard": False,
                                 "logging_level": logging.ERROR, "log_to_driver": False}}
        env_before = os.environ.get("RAY_DEDUP_LOGS")
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
        try:
            run_simulation(server_app=server, client_app=client, num_supernodes=opts.clients,
                           backend_name="ray", backend_config=backend)
        finally:
            if env_before is None:
                os.environ.pop("RAY_DEDUP_LOGS", None)
    finally:
        ev.close()
    if "evals" not in out:
        raise OctoError("the Flower simulation ended without results (see the log above)")
    return summarise(opts, spec, out, "simulation", time.monotonic() - t0, {"ray_cpus": opts.ray_cpus})
