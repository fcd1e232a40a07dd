"""The Flower side: a ClientApp per board (Octo's engine over the training service) and a ServerApp running one of
Flower's own strategies, wrapped so that updates travel as INT8 deltas (decoded before Flower aggregates them) and
bytes are counted both ways. Imports flwr: load this module only when a federation runs."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from logging import WARN
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.common.logger import log
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAdam, FedAvg

from host_tools.fleet.codec import decode_delta, encode_delta, payload_bytes
from host_tools.fleet.local import FleetSpec, open_client_target, train_round

# FedProx is left out: its proximal term belongs to the local optimizer, and the board's SGD has none.
STRATEGIES = {"fedavg": FedAvg, "fedadam": FedAdam}


def to_record(arrays: dict[str, np.ndarray]) -> ArrayRecord:
    return ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in arrays.items()})


def from_record(rec: ArrayRecord) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in rec.items()}


@functools.lru_cache(maxsize=4)
def _dataset(data: str, input_scale: float) -> tuple[np.ndarray, np.ndarray]:
    from host_tools.train.run import quantize_samples  # noqa: PLC0415

    d = np.load(data)
    return quantize_samples(d["x"], input_scale), d["y"].astype(np.int64)


@functools.lru_cache(maxsize=4)
def _partitions(data: str, clients: int, alpha: float, seed: int, kind: str = "dirichlet") -> tuple[np.ndarray, ...]:
    from host_tools.fleet.data import partition  # noqa: PLC0415

    return tuple(partition(data, clients, kind, alpha, seed))


def client_partition(spec: FleetSpec, pid: int) -> tuple[np.ndarray, np.ndarray]:
    xq, y = _dataset(spec.data, spec.input_scale)
    idx = _partitions(spec.data, spec.clients, spec.alpha, spec.seed, spec.partition)[pid]
    return xq[idx], y[idx]


def client_train(spec: FleetSpec, pid: int, msg: Message, target: Any = None) -> Message:
    """One round of client pid: the global model in msg -> a reply with the (compressed) update and metrics."""
    from host_tools.services.training import TrainSession  # noqa: PLC0415

    cfg = msg.content["config"]
    glob = from_record(msg.content["arrays"])
    rnd = int(cfg.get("server-round", 0))
    xq, y = client_partition(spec, pid)
    seed = (spec.seed * 1_000_003 + rnd * 1009 + pid) & 0x7FFFFFFF
    t0 = time.monotonic()
    if target is None:
        with open_client_target(spec, pid + 1) as t:
            r = train_round(TrainSession(t.client), spec.plan(), spec, glob, xq, y, int(cfg["local-epochs"]),
                            float(cfg["lr"]), seed)
    else:
        r = train_round(TrainSession(target.client), spec.plan(), spec, glob, xq, y, int(cfg["local-epochs"]),
                        float(cfg["lr"]), seed)
    rng = np.random.default_rng(seed)
    arrays = encode_delta(r.weights, glob, rng, spec.uplink_bits) if spec.compress else r.weights
    metrics = MetricRecord({"num-examples": r.samples, "train_loss": float(r.loss), "train_acc": float(r.accuracy),
                            "steps": r.steps, "ticks": r.ticks, "link_bytes": r.link_bytes,
                            "bytes_up": payload_bytes(arrays), "seconds": time.monotonic() - t0})
    return Message(RecordDict({"arrays": to_record(arrays), "metrics": metrics}), reply_to=msg)


def make_client_app(spec: FleetSpec) -> ClientApp:
    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        return client_train(spec, int(context.node_config["partition-id"]), msg)

    return app


@dataclass
class Tally:
    """Per round: bytes down (global model to each sampled client) and up (the replies' arrays), answers."""

    rounds: dict[int, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    on_round: Callable[[int], None] | None = None  # called when a round's training messages go out

    def at(self, rnd: int) -> dict[str, Any]:
        with self.lock:
            return self.rounds.setdefault(rnd, {"round": rnd, "sampled": 0, "answered": 0, "failed": 0,
                                                "bytes_down": 0, "bytes_up": 0, "t0": time.monotonic()})


def compressed(cls: type, spec: FleetSpec, tally: Tally, **kw: Any) -> Any:
    """An instance of Flower strategy cls whose replies carry INT8 deltas: each reply is decoded against the
    global model the round sent before Flower's own aggregate_train averages it. Counts bytes both ways."""

    class Compressed(cls):  # type: ignore[misc, valid-type]
        def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                            grid: Grid) -> Any:
            self._octo_base = from_record(arrays)
            msgs = list(super().configure_train(server_round, arrays, config, grid))
            t = tally.at(server_round)
            t["sampled"] = len(msgs)
            t["bytes_down"] = len(msgs) * payload_bytes(self._octo_base)
            if tally.on_round is not None:
                tally.on_round(server_round)
            return msgs

        def aggregate_train(self, server_round: int, replies: Any) -> Any:
            t = tally.at(server_round)
            kept = []
            for m in replies:
                if m.has_error():  # counted, and left to Flower's own handling of failures
                    t["failed"] += 1
                    kept.append(m)
                    continue
                payload = from_record(m.content["arrays"])
                t["bytes_up"] += payload_bytes(payload)
                if spec.compress:
                    try:
                        full = decode_delta(payload, self._octo_base, spec.uplink_bits)
                    except ValueError as e:  # a malformed update is one failed client, not a failed federation
                        log(WARN, "round %d: update dropped: %s", server_round, e)
                        t["failed"] += 1
                        continue
                    m.content = RecordDict({"arrays": to_record(full), "metrics": m.content["metrics"]})
                t["answered"] += 1
                kept.append(m)
            replies = kept
            t["t_train"] = time.monotonic() - t["t0"]
            return super().aggregate_train(server_round, replies)

    Compressed.__name__ = Compressed.__qualname__ = f"Octo{cls.__name__}"
    return Compressed(**kw)


def run_strategy(grid: Grid, spec: FleetSpec, *, strategy: str, rounds: int, initial: dict[str, np.ndarray],
                 evaluate: Callable[[dict[str, np.ndarray]], tuple[float, float]], fraction: float = 1.0,
                 min_nodes: int = 2, round_timeout_s: float = 3600.0, out: dict[str, Any],
                 tally: Tally | None = None) -> None:
    """The ServerApp's body: Flower's strategy (wrapped by `compressed`) for `rounds` rounds, centralised evaluation
    of the global model after every round with `evaluate` (weights -> (loss, accuracy)); results into `out`."""
    tally = tally or Tally()
    out["tally"] = tally
    kw: dict[str, Any] = {"fraction_train": fraction, "fraction_evaluate": 0.0, "min_train_nodes": min_nodes,
                          "min_available_nodes": min_nodes}
    if strategy == "fedadam":
        kw.update(eta=1e-2, eta_l=spec.lr, tau=1e-3)
    strat = compressed(STRATEGIES[strategy], spec, tally, **kw)
    evals: dict[int, tuple[float, float]] = {}

    def evaluate_fn(rnd: int, arrays: ArrayRecord) -> MetricRecord:
        loss, acc = evaluate(from_record(arrays))
        evals[rnd] = (loss, acc)
        return MetricRecord({"loss": loss, "accuracy": acc})

    result = strat.start(grid=grid, initial_arrays=to_record(initial), num_rounds=rounds, timeout=round_timeout_s,
                         train_config=ConfigRecord({"lr": spec.lr, "local-epochs": spec.epochs}),
                         evaluate_fn=evaluate_fn)
    out["evals"] = evals
    out["train_metrics"] = {int(r): dict(m) for r, m in result.train_metrics_clientapp.items()}
    out["final"] = from_record(result.arrays) if result.arrays is not None else initial


def make_server_app(spec: FleetSpec, *, strategy: str, rounds: int, initial: dict[str, np.ndarray],
                    evaluate: Callable[[dict[str, np.ndarray]], tuple[float, float]], fraction: float = 1.0,
                    min_nodes: int = 2, round_timeout_s: float = 3600.0, out: dict[str, Any]) -> ServerApp:
    """The ServerApp of a simulation (`run_strategy`); results into `out`."""
    app = ServerApp()
    out["tally"] = Tally()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        run_strategy(grid, spec, strategy=strategy, rounds=rounds, initial=initial, evaluate=evaluate,
                     fraction=fraction, min_nodes=min_nodes, round_timeout_s=round_timeout_s, out=out,
                     tally=out["tally"])

    return app
