"""Split (collaborative) learning, host side (docs/SGQ.md, section 8).

Each board runs the layers up to the split point in INT8 (the Octo engine) on its own shard of the
data, encodes the split features (SGQ, uniform or fp32) and sends them; the "cloud" (this process,
TensorFlow/Keras, imported lazily) decodes them, runs the remaining layers, takes the softmax
cross-entropy, updates its layers (SGD with momentum) and sends the feature gradients back encoded
with the same codec; the board decodes them, backpropagates and updates its layers.

Layers, each usable on its own:

- ``CollabSession``: the COLLAB_* messages (payload chunking, per-direction wire-byte accounting) on
  top of ``TrainSession``.
- ``CodecSpec``: one codec setting as both ends run it (the device's request fields, the host twin).
- ``CloudTail``: the layers after the split as a float Keras model (converted or fresh weights).
- ``run_collab``: N boards concurrently with one cloud, in rounds: every board's forward + encoding
  runs in parallel, the cloud steps for the boards in board order (so a run is reproducible), every
  board's decoding + backward runs in parallel; evaluation per epoch; telemetry; metrics
  (``octo.collab/1``, docs/JSON.md).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from converter import toollog
from host_tools.board import protocol as P
from host_tools.collab.cloud import CloudTail
from host_tools.errors import OctoError
from host_tools.services.collab import CodecSpec, CollabSession, WireCount, fp32_payload_bytes
from host_tools.train.defaults import DEFAULT_LAC, DEFAULT_PRC, LAC_L2_DEFAULT, PRC_K_DEFAULT
from host_tools.train.run import compute_input_scale, quantize_samples

if TYPE_CHECKING:
    from host_tools.board.target import Target
if TYPE_CHECKING:  # a block of its own: isort groups a module that exists differently from one that does not yet
    from converter.train_plan import TrainBuild

Say = Callable[[str], None]
SCHEMA = "octo.collab/1"

# -- wire format (docs/SGQ.md section 8, little-endian) ------------------------------------------


# -- codecs ----------------------------------------------------------------------------------------


# -- messages ------------------------------------------------------------------------------------


# -- the cloud -----------------------------------------------------------------------------------


# -- options and bookkeeping ---------------------------------------------------------------------
@dataclass
class CollabOptions:
    epochs: int = 5
    seed: int = 0
    init: str = "converted"          # device and cloud: "converted" weights | "random" (He-uniform, seeded)
    lac: bool = DEFAULT_LAC
    prc: bool = DEFAULT_PRC
    lr: float = 0.005                # boards' SGD rate (default_lr(init) is what the CLI passes)
    cloud_lr: float | None = None    # the cloud's SGD rate (None: lr); same schedule
    schedule: str = "cosine"         # as `octo train`: cosine decay over each board's steps, or "constant"
    momentum: float = 0.9
    weight_decay: float = 0.0
    prc_k: float = PRC_K_DEFAULT
    lac_l2: float = LAC_L2_DEFAULT
    measure: bool = True             # read the exact device features every step (reconstruction error)
    telemetry: Path | None = None    # JSON lines, one per board step and one per epoch
    progress: bool = False           # live bar on stderr
    model: str | None = None         # for the metrics


def default_lr(init: str) -> float:
    """The default rate: fine-tuning the converted (Adam-trained) weights with float SGD + momentum in the cloud
    diverges above ~0.01 (measured: 0.05 drops the digits CNN to chance within 10 steps), while training from
    random weights wants 0.05 (as `octo train --init random`)."""
    return 0.05 if init == "random" else 0.005


def lr_at(opts: CollabOptions, step: int, total_steps: int) -> float:
    """The learning rate of a board's step (the cloud uses the same for that board's features)."""
    if opts.schedule == "constant" or total_steps <= 0:
        return opts.lr
    return float(np.float32(opts.lr * 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))))


def shard_indices(n_samples: int, boards: int, seed: int) -> list[np.ndarray]:
    """Board b's samples: every boards-th index of a permutation fixed by the seed (sizes differ by <= 1)."""
    perm = np.random.default_rng([seed, 0x5A4D]).permutation(n_samples)
    return [np.sort(perm[b::boards]) for b in range(boards)]


def board_order(seed: int, board: int, epoch: int, n: int) -> np.ndarray:
    """The sample order of a board's epoch (positions within its shard)."""
    return np.random.default_rng([seed, board, epoch]).permutation(n)


class _Recon:
    """Reconstruction error accumulated over many payloads: rel L2 and cosine of the concatenation."""

    def __init__(self) -> None:
        self.dd = self.xx = self.yy = self.xy = 0.0
        self.n = 0

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        xd, yd = x.astype(np.float64).ravel(), y.astype(np.float64).ravel()
        d = yd - xd
        self.dd += float(d @ d)
        self.xx += float(xd @ xd)
        self.yy += float(yd @ yd)
        self.xy += float(xd @ yd)
        self.n += 1

    def merge(self, other: _Recon) -> None:
        self.dd += other.dd
        self.xx += other.xx
        self.yy += other.yy
        self.xy += other.xy
        self.n += other.n

    def result(self) -> dict[str, float | None]:
        if self.n == 0:
            return {"rel_l2": None, "cosine": None}
        rel = math.sqrt(self.dd / self.xx) if self.xx > 0 else (0.0 if self.dd == 0 else 1.0)
        cos = self.xy / math.sqrt(self.xx * self.yy) if self.xx > 0 and self.yy > 0 else (
            1.0 if self.xx == self.yy == 0 else 0.0)
        return {"rel_l2": round(rel, 6), "cosine": round(cos, 6)}


TICK_KINDS = ("forward", "encode", "decode", "backward")


@dataclass
class _Tally:
    """Counts of one epoch (or the whole run) over training steps."""

    steps: int = 0
    samples: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    payload_up: int = 0
    payload_down: int = 0
    wire: WireCount = field(default_factory=WireCount)
    ticks: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TICK_KINDS, 0))
    feat: _Recon = field(default_factory=_Recon)
    grad: _Recon = field(default_factory=_Recon)

    def merge(self, o: _Tally) -> None:
        self.steps += o.steps
        self.samples += o.samples
        self.loss_sum += o.loss_sum
        self.correct += o.correct
        self.payload_up += o.payload_up
        self.payload_down += o.payload_down
        self.wire.add(o.wire)
        for k in TICK_KINDS:
            self.ticks[k] += o.ticks[k]
        self.feat.merge(o.feat)
        self.grad.merge(o.grad)


def _per_sample(v: int, n: int) -> float | None:
    return round(v / n, 2) if n else None


@dataclass
class _Board:
    index: int
    target: Target
    sess: CollabSession
    idx: np.ndarray               # its shard (indices into the training set)
    codec: Any                    # host twin for its gradients (own stochastic-rounding stream)
    spe: int                      # steps per epoch
    step: int = 0


class _Collab:
    def __init__(self, targets: Sequence[Target], tb: TrainBuild, train_xy: tuple[np.ndarray, np.ndarray],
                 eval_xy: tuple[np.ndarray, np.ndarray] | None, spec: CodecSpec, opts: CollabOptions, say: Say,
                 run_dir: Path, sessions: Sequence[Any] | None = None) -> None:
        self.tb, self.plan, self.spec, self.opts, self.say = tb, tb.plan, spec, opts, say
        self.run_dir = Path(run_dir)
        if not self.plan.get("split"):
            raise OctoError(f"{tb.dir} is not a split training build (plan without a split layer)")
        self.split_shape = tuple(int(v) for v in self.plan["split_shape"])
        self.elems = int(np.prod(self.split_shape))
        self.batch = int(self.plan["batch"])
        self.x_train, self.y_train = train_xy
        self.eval_xy = eval_xy
        self.input_scale = compute_input_scale(self.x_train)
        self.xq_train = quantize_samples(self.x_train, self.input_scale)
        self.xq_eval = quantize_samples(eval_xy[0], self.input_scale) if eval_xy is not None else None
        shards = shard_indices(len(self.y_train), len(targets), opts.seed)
        if min(len(s) for s in shards) == 0:
            raise OctoError(f"{len(self.y_train)} training samples cannot feed {len(targets)} boards",
                            hint="use fewer --boards or more data")
        self.boards = [_Board(i, t, sessions[i] if sessions is not None else CollabSession(t.client), shards[i],
                              spec.host_codec(seed=(opts.seed * 1000003 + i) & 0xFFFFFFFF, gradients=True),
                              -(-len(shards[i]) // self.batch))
                       for i, t in enumerate(targets)]
        self.cloud: CloudTail | None = None
        self.history: list[dict[str, Any]] = []
        self.total = _Tally()
        self.eval_wire = WireCount()
        self.tele: IO[str] | None = None
        self.tele_path = Path(opts.telemetry) if opts.telemetry else self.run_dir / "telemetry.jsonl"
        self._bar: Any = None
        self._task: Any = None
        self._rate: deque[tuple[float, int]] = deque(maxlen=32)
        self.done_steps = 0
        self.pool = ThreadPoolExecutor(max_workers=len(targets), thread_name_prefix="octo-board")
        self.codec_host = spec.host_codec()
        self.grad_codec_host = spec.host_codec(gradients=True)
        self.cloud_opts = dataclasses.replace(opts, lr=opts.lr if opts.cloud_lr is None else opts.cloud_lr)

    # -- setup ------------------------------------------------------------------------------------
    def start(self) -> None:
        o = self.opts
        for b in self.boards:
            hello = b.sess.client.hello()
            if P.MSG_COLLAB_FORWARD not in hello.messages:
                raise OctoError(f"the firmware on board {b.index} ({hello.board}) has no COLLAB_* messages",
                                hint="it must be built from this checkout's training build of the split plan")
            info = b.sess.info()
            want = {"fingerprint": int(self.plan["fingerprint"]) & 0xFFFFFFFF,
                    "config_crc": int(self.plan["config_crc"]) & 0xFFFFFFFF, "batch": self.batch}
            diff = [k for k in want if getattr(info, k) != want[k]]
            if diff:
                raise OctoError(f"board {b.index} runs another training build than {self.tb.dir} ({', '.join(diff)} "
                                "differ)", hint="rebuild and restart the board for this split configuration")
        for b in self.boards:  # each board its own PRNG stream; converted or seeded random weights
            b.sess.init((o.seed + b.index) & 0xFFFFFFFF, o.init == "random", o.lac, o.prc, o.lr, o.momentum,
                        o.weight_decay, self.input_scale, o.prc_k, o.lac_l2)
        split_op = int(self.plan["layers"][-1]["op_index"])
        self.cloud = CloudTail(self.tb.dir.parents[1] / "model.tflite", split_op, init=o.init, seed=o.seed,
                               momentum=o.momentum, weight_decay=o.weight_decay)

    # -- one training round -----------------------------------------------------------------------
    def _total_steps(self, b: _Board) -> int:
        return self.opts.epochs * b.spe

    def _device_forward(self, b: _Board, idx: np.ndarray) -> dict[str, Any]:
        b.sess.wire = WireCount()
        b.sess.load(0, self.y_train[idx], self.xq_train[idx])
        fr = b.sess.forward(b.step, len(idx), True, self.spec, self.split_shape)
        payload = b.sess.read_payload(fr.payload_len)
        q = b.sess.read_features(len(idx), self.split_shape) if self.opts.measure else None
        return {"idx": idx, "fwd": fr, "payload": payload, "q": q}

    def _cloud_step(self, b: _Board, r: dict[str, Any], tally: _Tally) -> None:
        assert self.cloud is not None
        idx, fr, payload = r["idx"], r["fwd"], r["payload"]
        x_hat = self.codec_host.decode_features(payload)
        if x_hat.shape != (len(idx), *self.split_shape):
            raise OctoError(f"board {b.index} sent features of shape {x_hat.shape}, expected "
                            f"{(len(idx), *self.split_shape)}")
        if r["q"] is not None:
            tally.feat.add(r["q"].astype(np.float32) * np.float32(fr.scale), x_hat)
        lr = lr_at(self.opts, b.step, self._total_steps(b))
        y = self.y_train[idx]
        cloud_lr = lr_at(self.cloud_opts, b.step, self._total_steps(b))
        loss, logits, gx = self.cloud.train_step(x_hat, y, cloud_lr)
        if not math.isfinite(loss):
            raise OctoError(f"the cloud's loss is not finite at board {b.index} step {b.step}",
                            hint="lower --lr")
        grad_payload = b.codec.encode_gradients(gx)
        tally.grad.add(gx, self._device_view(grad_payload))
        r.update(lr=lr, loss=loss, correct=int(np.sum(np.argmax(logits, 1) == y)), grad_payload=grad_payload)

    def _device_view(self, payload: bytes) -> np.ndarray:
        """The gradient the board trains on: SGQ decoded, or fp32 quantized to int8 as the board does."""
        from host_tools.sgq.codec import fp32_decode, quantize_int8  # noqa: PLC0415

        if self.spec.name == "fp32":
            q, scale = quantize_int8(fp32_decode(payload))
            return q.astype(np.float32) * np.float32(scale)
        return self.grad_codec_host.decode_gradients(payload)

    def _device_backward(self, b: _Board, r: dict[str, Any]) -> dict[str, Any]:
        b.sess.write_payload(r["grad_payload"])
        br = b.sess.backward(b.step, len(r["grad_payload"]), r["lr"])
        if br.step_after != b.step + 1:
            raise OctoError(f"board {b.index}: COLLAB_BACKWARD left step {br.step_after}, expected {b.step + 1}")
        r["bwd"] = br
        r["wire"] = b.sess.wire
        return r

    def _round(self, epoch: int, rnd: int, tally: _Tally) -> None:
        active = [b for b in self.boards if rnd < b.spe]
        batches = {}
        for b in active:
            order = board_order(self.opts.seed, b.index, epoch, len(b.idx))
            batches[b.index] = b.idx[order[rnd * self.batch : (rnd + 1) * self.batch]]
        fwd = list(self.pool.map(lambda b: self._device_forward(b, batches[b.index]), active))
        for b, r in zip(active, fwd, strict=True):  # the cloud in board order: reproducible
            self._cloud_step(b, r, tally)
        done = list(self.pool.map(lambda br: self._device_backward(*br), zip(active, fwd, strict=True)))
        for b, r in zip(active, done, strict=True):
            n = len(r["idx"])
            fr, br = r["fwd"], r["bwd"]
            tally.steps += 1
            tally.samples += n
            tally.loss_sum += r["loss"] * n
            tally.correct += r["correct"]
            tally.payload_up += len(r["payload"])
            tally.payload_down += len(r["grad_payload"])
            tally.wire.add(r["wire"])
            for k, v in zip(TICK_KINDS, (fr.forward_ticks, fr.encode_ticks, br.decode_ticks, br.backward_ticks),
                            strict=True):
                tally.ticks[k] += v
            self._telemetry({"board": b.index, "step": b.step + 1, "epoch": epoch + 1, "n": n,
                             "loss": round(r["loss"], 6), "correct": r["correct"], "lr": r["lr"],
                             "up_payload": len(r["payload"]), "down_payload": len(r["grad_payload"]),
                             "up_wire": r["wire"].up, "down_wire": r["wire"].down,
                             "ticks": {"forward": fr.forward_ticks, "encode": fr.encode_ticks,
                                       "decode": br.decode_ticks, "backward": br.backward_ticks}})
            b.step += 1
            self.done_steps += 1
            self._show(r["loss"], r["correct"] / n, epoch)

    # -- evaluation -------------------------------------------------------------------------------
    def _device_eval(self, b: _Board) -> list[tuple[np.ndarray, bytes]]:
        assert self.eval_xy is not None and self.xq_eval is not None
        b.sess.wire = WireCount()
        out = []
        y = self.eval_xy[1]
        for off in range(0, len(y), self.batch):
            yb = y[off : off + self.batch]
            b.sess.load(0, yb, self.xq_eval[off : off + self.batch])
            fr = b.sess.forward(b.step, len(yb), False, self.spec, self.split_shape)
            out.append((yb, b.sess.read_payload(fr.payload_len)))
        return out

    def evaluate(self) -> tuple[float | None, float | None, list[float]]:
        if self.eval_xy is None:
            return None, None, []
        assert self.cloud is not None
        feats = list(self.pool.map(self._device_eval, self.boards))
        accs, losses = [], []
        for b, batches in zip(self.boards, feats, strict=True):
            self.eval_wire.add(b.sess.wire)
            loss_sum, correct, n = 0.0, 0, 0
            for yb, payload in batches:
                loss, logits = self.cloud.evaluate(self.codec_host.decode_features(payload), yb)
                loss_sum += loss * len(yb)
                correct += int(np.sum(np.argmax(logits, 1) == yb))
                n += len(yb)
            accs.append(round(correct / n, 6))
            losses.append(loss_sum / n)
        return float(np.mean(losses)), round(float(np.mean(accs)), 6), accs

    # -- loop -------------------------------------------------------------------------------------
    def loop(self) -> None:
        rounds = max(b.spe for b in self.boards)
        for e in range(self.opts.epochs):
            t0 = time.perf_counter()
            tally = _Tally()
            for rnd in range(rounds):
                self._round(e, rnd, tally)
            eval_loss, eval_acc, per_board = self.evaluate()
            self.total.merge(tally)
            entry = self._epoch_entry(e, tally, eval_loss, eval_acc, per_board, time.perf_counter() - t0)
            self.history.append(entry)
            self._telemetry(dict(entry))
            ev = f", eval acc {eval_acc:.4f} (boards {', '.join(f'{a:.4f}' for a in per_board)})" \
                if eval_acc is not None else ""
            self.say(f"epoch {e + 1}/{self.opts.epochs}: train loss {entry['train_loss']:.4f} acc "
                     f"{entry['train_accuracy']:.4f}{ev}; {entry['bytes_per_sample']['up_wire']:.0f} B/sample up, "
                     f"{entry['bytes_per_sample']['down_wire']:.0f} B/sample down ({entry['seconds']:.1f} s)")

    def _bytes(self, t: _Tally) -> dict[str, float | None]:
        return {"up_payload": _per_sample(t.payload_up, t.samples), "up_wire": _per_sample(t.wire.up, t.samples),
                "down_payload": _per_sample(t.payload_down, t.samples),
                "down_wire": _per_sample(t.wire.down, t.samples)}

    def _epoch_entry(self, e: int, t: _Tally, eval_loss: float | None, eval_acc: float | None,
                     per_board: list[float], seconds: float) -> dict[str, Any]:
        n = max(1, t.samples)
        return {"epoch": e + 1, "train_loss": round(t.loss_sum / n, 6), "train_accuracy": round(t.correct / n, 6),
                "eval_loss": None if eval_loss is None else round(eval_loss, 6), "eval_accuracy": eval_acc,
                "eval_accuracy_per_board": per_board, "steps": t.steps, "samples": t.samples,
                "bytes_per_sample": self._bytes(t), "features": t.feat.result(), "gradients": t.grad.result(),
                "seconds": round(seconds, 3)}

    # -- output -----------------------------------------------------------------------------------
    def _telemetry(self, obj: dict[str, Any]) -> None:
        if self.tele is not None:
            self.tele.write(json.dumps(obj) + "\n")

    def open_telemetry(self) -> None:
        self.tele_path.parent.mkdir(parents=True, exist_ok=True)
        self.tele = open(self.tele_path, "w")

    def open_progress(self) -> None:
        if not self.opts.progress:
            return
        from rich.console import Console  # noqa: PLC0415
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn  # noqa: PLC0415

        total = sum(self._total_steps(b) for b in self.boards)
        self._bar = Progress(TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(),
                             TextColumn("board steps {task.completed:.0f}/{task.total:.0f}"),
                             TextColumn("loss {task.fields[loss]}"), TextColumn("acc {task.fields[acc]}"),
                             TextColumn("{task.fields[rate]} steps/s"), TimeRemainingColumn(),
                             console=Console(file=toollog.err()))
        self._task = self._bar.add_task("collab", total=total, completed=0, epoch=1, epochs=self.opts.epochs,
                                        loss="-", acc="-", rate="-")
        self._bar.start()

    def _show(self, loss: float, acc: float, epoch: int) -> None:
        if self._bar is None:
            return
        now = time.perf_counter()
        self._rate.append((now, self.done_steps))
        t_first, s_first = self._rate[0]
        rate = f"{(self.done_steps - s_first) / (now - t_first):.1f}" if now > t_first else "-"
        self._bar.update(self._task, completed=self.done_steps, loss=f"{loss:.4f}", acc=f"{acc:.3f}", rate=rate,
                         epoch=epoch + 1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if self.tele is not None:
            self.tele.close()
            self.tele = None
        self.pool.shutdown(wait=True)

    def metrics(self) -> dict[str, Any]:
        from host_tools.train.run import _target_kind  # noqa: PLC0415

        o, plan, t = self.opts, self.plan, self.total
        first = self.boards[0].target
        kind = _target_kind(first.board_name)
        n = t.samples
        instr: dict[str, float | None] | None = None
        cycles: dict[str, float | None] | None = None
        if n and first.virtual:
            instr = {k: round((first.ticks_to_instructions(v) or 0) / n, 1) for k, v in t.ticks.items()}
        elif n and kind == "real" and first.timer_hz > 0:
            cycles = {k: round((first.ticks_to_cycles(v) or 0) / n, 1) for k, v in t.ticks.items()}
        fp32 = fp32_payload_bytes(self.batch, self.elems) / self.batch
        per = self._bytes(t)
        last = self.history[-1] if self.history else {}
        counters = [getattr(b.sess.client, "counters", None) for b in self.boards]
        cfg = self.tb.config
        model = o.model or str(self.tb.dir.parents[1])
        return {
            "model": model,
            "board": first.board_name,
            "target": kind,
            "boards": len(self.boards),
            "split": plan["split"],
            "split_shape": list(self.split_shape),
            "codec": self.spec.as_dict(),
            "config": {"config_id": cfg.config_id, "batch": cfg.batch, "update": cfg.update, "init": o.init,
                       "seed": o.seed, "lr": o.lr, "schedule": o.schedule, "momentum": o.momentum,
                       "weight_decay": o.weight_decay, "lac": o.lac, "prc": o.prc, "prc_k": o.prc_k,
                       "lac_l2": o.lac_l2, "epochs": o.epochs},
            "epochs": self.history,
            "final": {"eval_accuracy": last.get("eval_accuracy"), "eval_loss": last.get("eval_loss"),
                      "eval_accuracy_per_board": last.get("eval_accuracy_per_board", [])},
            "bytes_per_sample": {
                **per, "fp32_payload": round(fp32, 2),
                "ratio_vs_fp32_payload": {
                    "up": round(fp32 / per["up_payload"], 3) if per["up_payload"] else None,
                    "down": round(fp32 / per["down_payload"], 3) if per["down_payload"] else None},
            },
            "reconstruction": {"features": t.feat.result(), "gradients": t.grad.result()},
            "device": {"instructions_per_sample": instr, "cycles_per_sample": cycles,
                       "ticks": dict(t.ticks), "timer_hz": first.timer_hz,
                       "peak_training_sram_bytes": int(plan["arena_bytes"]), "memory": plan.get("memory", {})},
            "samples": {"train": len(self.y_train), "per_board": [len(b.idx) for b in self.boards],
                        "eval": len(self.eval_xy[1]) if self.eval_xy is not None else 0},
            "steps": t.steps,
            "eval_wire_bytes": {"up": self.eval_wire.up, "down": self.eval_wire.down},
            "link": {"bytes_sent": sum(int(getattr(c, "bytes_sent", 0)) for c in counters),
                     "bytes_received": sum(int(getattr(c, "bytes_received", 0)) for c in counters)},
            "input_scale": self.input_scale,
            "telemetry": str(self.tele_path) if self.tele_path else None,
        }


@dataclass
class SplitJob:
    """One split-learning run as `octo collab` prepares it: what run_collab needs besides the boards (and where the
    data came from, for the user). `octo fleet run --mode split` hands the same to its ServerApp."""

    tb: TrainBuild
    spec: CodecSpec
    train_xy: tuple[np.ndarray, np.ndarray]
    eval_xy: tuple[np.ndarray, np.ndarray] | None
    opts: CollabOptions
    run_dir: Path
    data: Path
    eval_path: Path | None


def run_collab(targets: Sequence[Target], tb: TrainBuild, train_xy: tuple[np.ndarray, np.ndarray],
               eval_xy: tuple[np.ndarray, np.ndarray] | None, spec: CodecSpec, opts: CollabOptions, say: Say,
               run_dir: Path, sessions: Sequence[Any] | None = None) -> dict[str, Any]:
    """Split learning of tb (a split plan) on the connected targets (one per board) with one cloud tail;
    returns the ``octo.collab/1`` metrics document (docs/JSON.md). sessions: the boards' sessions when they are
    not the targets' own links (host_tools/fleet/split.py: Flower messages)."""
    c = _Collab(targets, tb, train_xy, eval_xy, spec, opts, say, run_dir, sessions)
    try:
        c.start()
        c.open_telemetry()
        c.open_progress()
        c.loop()
    finally:
        c.close()
    return c.metrics()


@contextmanager
def open_boards(tb: TrainBuild, board_name: str, count: int, ports: Sequence[str] | None = None,
                say: Say = print, *, sanitize: bool = False) -> Iterator[list[Target]]:
    """Start `count` copies of the split build: native processes (board "host"), virtual boards (one QEMU
    each, firmware built once) or real boards on `ports` (one per board)."""
    from host_tools.board.target import build_board_trainer, open_train_target  # noqa: PLC0415

    if count < 1:
        raise OctoError("--boards must be at least 1")
    ports = list(ports or [])
    elf: Path | None = None
    if board_name != "host":
        from host_tools.board.boards import get_board  # noqa: PLC0415

        board = get_board(board_name)
        if board.virtual and not ports:
            say(f"building firmware for {board.name} with the training build {tb.config.config_id} ...")
            elf = build_board_trainer(tb.dir, board.name)
        elif len(ports) != count:
            raise OctoError(f"{count} real boards need {count} serial ports (--port A,B,...), got {len(ports)}")
    with ExitStack() as stack:
        targets = [stack.enter_context(open_train_target(tb, board_name, ports[i] if ports else None, say,
                                                   sanitize=sanitize, instance=i, elf=elf))
                   for i in range(count)]
        yield targets
