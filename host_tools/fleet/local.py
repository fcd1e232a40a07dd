"""One federation round on one board, over the training service (host_tools/services/training.py): TRAIN_INIT
(fresh optimizer state, step 0), the global weights written into the state blob with SET/COMMIT weights, the
round's local epochs of TRAIN_STEPs over the client's partition, the weights read back with GET_WEIGHTS.
The same calls drive the native trainer, a private QEMU board and a real board on a port."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from host_tools.fleet.codec import blob_weights, write_weights
from host_tools.services.training import FIRST_STEP_TIMEOUT_S, TrainSession
from host_tools.train.defaults import LAC_L2_DEFAULT, PRC_K_DEFAULT


@dataclass(frozen=True)
class FleetSpec:
    """Everything a client needs, picklable (Ray ships it to the actors)."""

    model_dir: str
    train_dir: str            # <model>/train/<config-id>: train_plan.json and the builds
    config_id: str
    board: str                # "host" or a board name (virtual boards: a private QEMU each)
    data: str                 # training .npz (partitioned)
    clients: int
    alpha: float              # Dirichlet concentration (0: IID)
    seed: int
    epochs: int               # local epochs per round
    batch: int
    lr: float
    momentum: float
    input_scale: float        # the federation's (server-chosen) INT8 input scale
    compress: bool = True     # uplink as deltas with a per-tensor scale (else FP32 weights)
    uplink_bits: int = 8      # the deltas' width (host_tools/fleet/codec.py UPLINK_BITS)
    init_random: bool = False  # the initial global model: fresh He-uniform weights (seed) instead of the converted
    elf: str = ""             # virtual boards: the firmware built for this training build
    port: str = ""            # a real board's serial port (deployment mode)
    partition: str = "dirichlet"  # dirichlet (alpha; 0 = IID), iid, or group (the .npz's 'g': one group per client)

    def plan(self) -> dict[str, Any]:
        return json.loads((Path(self.train_dir) / "train_plan.json").read_text())


@dataclass
class RoundResult:
    weights: dict[str, np.ndarray]
    samples: int
    loss: float
    accuracy: float
    steps: int
    ticks: int
    link_bytes: int           # bytes on the serial link (both ways) for this round


@contextmanager
def open_client_target(spec: FleetSpec, instance: int) -> Iterator[Any]:
    """A connected Target for client `instance`: the native trainer (its own process), a private QEMU board, or
    the board on spec.port."""
    from types import SimpleNamespace  # noqa: PLC0415

    from converter.train_plan import TrainConfig  # noqa: PLC0415, F401  (the TrainBuild's home)
    from host_tools.board.target import open_train_target  # noqa: PLC0415

    tb = SimpleNamespace(dir=Path(spec.train_dir), config=SimpleNamespace(config_id=spec.config_id))
    with open_train_target(tb, spec.board, spec.port or None, lambda _m: None, instance=instance,
                           elf=Path(spec.elf) if spec.elf else None) as target:
        yield target


def _load_global(sess: TrainSession, plan: dict[str, Any], spec: FleetSpec, weights: dict[str, np.ndarray] | None,
                 seed: int, init_random: bool = False) -> int:
    """TRAIN_INIT (fresh optimizer state), then the global weights into the state; returns the step."""
    info = sess.info(timeout_s=FIRST_STEP_TIMEOUT_S)
    sess.init(seed, init_random, False, False, spec.lr, spec.momentum, 0.0, spec.input_scale, PRC_K_DEFAULT,
              LAC_L2_DEFAULT)
    if weights is None:
        return 0
    blob = sess.get_state(info.state_bytes)
    return sess.set_state(write_weights(plan, blob, weights))


def initial_weights(sess: TrainSession, plan: dict[str, Any], spec: FleetSpec) -> dict[str, np.ndarray]:
    """The initial global model: the converted weights (or fresh ones from spec.seed) as TRAIN_INIT sets them."""
    _load_global(sess, plan, spec, None, spec.seed, spec.init_random)
    return blob_weights(plan, sess.get_state(sess.info().state_bytes))


def train_round(sess: TrainSession, plan: dict[str, Any], spec: FleetSpec, weights: dict[str, np.ndarray],
                xq: np.ndarray, y: np.ndarray, epochs: int, lr: float, seed: int) -> RoundResult:
    counters = sess.client.counters
    bytes0 = counters.bytes_sent + counters.bytes_received
    step = _load_global(sess, plan, spec, weights, seed)
    rng = np.random.default_rng(seed)
    n = len(y)
    loss_sum = correct = steps = ticks = 0.0
    for _ in range(epochs):
        order = rng.permutation(n)
        for off in range(0, n, spec.batch):
            idx = order[off : off + spec.batch]
            sess.load(0, y[idx], xq[idx])
            r = sess.step(step, len(idx), lr, timeout_s=FIRST_STEP_TIMEOUT_S)
            step = r.step_after
            loss_sum += r.loss * r.n
            correct += r.correct
            steps += 1
            ticks += r.ticks
    new = blob_weights(plan, sess.get_state(sess.info().state_bytes))
    link = counters.bytes_sent + counters.bytes_received - bytes0
    seen = max(1, n * epochs)
    return RoundResult(new, n, loss_sum / seen, correct / seen, int(steps), int(ticks), int(link))


def evaluate(sess: TrainSession, plan: dict[str, Any], spec: FleetSpec, weights: dict[str, np.ndarray],
             xq: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(loss, accuracy) of weights on (xq, y), EVAL in batches on the board."""
    _load_global(sess, plan, spec, weights, spec.seed)
    loss_sum, correct = 0.0, 0
    for off in range(0, len(y), spec.batch):
        sess.load(0, y[off : off + spec.batch], xq[off : off + spec.batch])
        r = sess.eval(len(y[off : off + spec.batch]), timeout_s=FIRST_STEP_TIMEOUT_S)
        loss_sum += r.loss * r.n
        correct += r.correct
    return loss_sum / max(1, len(y)), correct / max(1, len(y))
