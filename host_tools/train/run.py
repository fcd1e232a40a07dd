"""On-device training, host side (docs/TRAINING.md).

Three layers, each usable on its own:

- ``TrainSession``: typed wrappers of the TRAIN_* messages (codecs + chunking,
  no policy) over a BoardClient-like object.
- Data and batching: ``load_dataset`` validates an .npz against the training
  plan, ``quantize_samples`` maps floats to the INT8 samples the board takes,
  ``batch_indices`` gives the deterministic batch of any global step.
- ``run_training``: streams batches, evaluates per epoch, writes checkpoints
  and telemetry, resumes, and recovers from board resets by restoring the
  last checkpoint and replaying from its step (the state blob carries weights,
  optimizer, PRNG and step, so a replay is bit-identical).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import signal
import threading
import time
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from converter import toollog
from host_tools.board import protocol as P
from host_tools.errors import BoardError, LinkError, OctoError
from host_tools.services.state_blob import STATE_MAGIC, unpack_header
from host_tools.services.training import FIRST_STEP_TIMEOUT_S, TrainInfo, TrainSession
from host_tools.train.defaults import CHECKPOINT_EVERY, DEFAULT_LAC, DEFAULT_PRC, LAC_L2_DEFAULT, PRC_K_DEFAULT
from host_tools.train.init_scale import scale_random_init

if TYPE_CHECKING:
    from host_tools.board.target import Target
if TYPE_CHECKING:  # a block of its own: isort groups a module that exists differently from one that does not yet
    from converter.train_plan import TrainBuild

Say = Callable[[str], None]

# -- policy --------------------------------------------------------------------------------------
STEP_TIMEOUT_MIN_S = 10.0      # later deadlines: max(this, factor x slowest step seen)
STEP_TIMEOUT_FACTOR = 20.0
MAX_RECOVERIES_IN_ROW = 3      # board resets without progress before giving up
CHECKPOINT_META = "checkpoint.json"
CHECKPOINT_SCHEMA = "octo.train.checkpoint/1"
# Options that define the training trajectory: fixed at TRAIN_INIT, taken from the checkpoint on resume.
TRAJECTORY_OPTIONS = ("seed", "init", "lac", "prc", "lr", "momentum", "weight_decay", "prc_k", "lac_l2",
                      "schedule", "grad_rounding")
RESYNC_HINT = "run `octo train` again with the same configuration (add --resume to continue a checkpoint)"
# A step whose loss exceeds this many times the run's first loss (and ln(classes)) gets a one-time warning:
# the board's divergence check only sees values that are no longer finite, and an FP32 loss of 1e22 is finite.
LOSS_WARN_FACTOR = 10.0
ACCURACY_DROP_WARN = 0.02      # a run ending this far (2 pp) below its held-out accuracy before training is flagged
MSE_RISE_WARN = 0.05           # and an MSE run whose held-out loss ends 5% above where it started


class TrainDiverged(OctoError):
    """The board reported OCTO_E_DIVERGED: replaying from a checkpoint would diverge again, so it is not tried."""


class TrainInterrupted(OctoError):
    """Ctrl-C during training: a checkpoint was kept; exit code 130 like SIGINT."""

    exit_code = 130


# -- messages ------------------------------------------------------------------------------------


# -- data ----------------------------------------------------------------------------------------
def sample_shape(plan: dict[str, Any]) -> tuple[int, ...]:
    """Per-sample input shape (the plan's "input_shape": the model input without its batch dimension)."""
    return tuple(int(s) for s in plan["input_shape"])


def plan_loss(plan: dict[str, Any]) -> str:
    """The plan's loss: "xent" (softmax cross-entropy; plans from before the loss was chosen) or "mse"."""
    return str(plan.get("loss") or "xent")


def load_dataset(path: Path, plan: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """An .npz with 'x' (float32 NHWC, model units) and 'y' (class labels), checked against the plan.
    MSE plans (autoencoders: the target is the sample itself) take 'y' optionally, as 0 = normal,
    1 = anomalous (for the ROC AUC of the reconstruction error); without it y is all 0.

    Returns (x float32 [N, *sample_shape], y int64 [N]).
    """
    from converter.datafile import load_samples  # noqa: PLC0415
    from converter.ir import ConvertError  # noqa: PLC0415

    data_hint = "an .npz with 'x' (float32 NHWC samples) and 'y' (integer class labels)"
    if not path.exists():
        raise OctoError(f"dataset {path} does not exist", hint=f"pass {data_hint}")
    try:
        x, y = load_samples(path, role="dataset")
    except ConvertError as exc:
        raise OctoError(str(exc), hint=f"pass {data_hint}") from None
    want = sample_shape(plan)
    classes = int(plan["classes"])
    if x.ndim == 0 or len(x) == 0:
        raise OctoError(f"{path}: 'x' holds no samples (shape {tuple(x.shape)})", hint=f"pass {data_hint}")
    if tuple(x.shape[1:]) != want:
        full = ", ".join(map(str, want))
        raise OctoError(f"{path}: samples 'x' have shape {tuple(x.shape[1:])} (array {tuple(x.shape)}); the model "
                        f"takes {want} per sample, so 'x' must be [N, {full}]",
                        hint="reshape or transpose the data to the model's NHWC input layout")
    if not np.all(np.isfinite(x)):
        raise OctoError(f"{path}: 'x' contains NaN or infinite values", hint="clean or drop those samples")
    if plan_loss(plan) == "mse" and plan.get("targets"):
        return x.astype(np.float32, copy=False), _targets(path, x, y, plan)
    if plan_loss(plan) == "mse":
        return x.astype(np.float32, copy=False), _anomaly_labels(path, x, y)
    if y is None:
        raise OctoError(f"{path} has no labels 'y'", hint=f"training needs integer class labels 0..{classes - 1}")
    if y.ndim == 2 and y.shape == (len(x), classes):
        raise OctoError(f"{path}: labels 'y' have shape {tuple(y.shape)} (one-hot?); training takes class indices "
                        f"[N] in 0..{classes - 1}", hint="store y = y.argmax(axis=1)")
    if y.ndim != 1 or len(y) != len(x):
        raise OctoError(f"{path}: labels 'y' have shape {tuple(y.shape)}; expected [{len(x)}] (one label per sample)")
    if not np.issubdtype(y.dtype, np.integer):
        if not (np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y))):
            raise OctoError(f"{path}: labels 'y' must be integer class indices, got dtype {y.dtype}")
    yi = y.astype(np.int64)
    bad = (yi < 0) | (yi >= classes)
    if bad.any():
        raise OctoError(f"{path}: {int(bad.sum())} of {len(yi)} labels are outside 0..{classes - 1} (the model has "
                        f"{classes} classes; labels seen {int(yi.min())}..{int(yi.max())})",
                        hint="labels must be class indices of this model's output")
    return x.astype(np.float32, copy=False), yi


def has_targets(path: Path | None) -> bool:
    """Whether an .npz's 'y' holds per-sample targets (MSE regression): an array with more than one
    dimension, [N, *output shape] or [N, output values]. A 1-D 'y' (one value per sample) is labels: class
    indices, or an autoencoder's 0 normal / 1 anomalous."""
    if path is None or not Path(path).exists() or Path(path).suffix != ".npz":
        return False
    try:  # anything unreadable: load_dataset says what is wrong with the file
        d = np.load(path, allow_pickle=False)
        if not isinstance(d, np.lib.npyio.NpzFile):  # an .npy array under an .npz name
            return False
        with d:
            return "y" in d.files and d["y"].ndim > 1
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return False


def _targets(path: Path, x: np.ndarray, y: np.ndarray | None, plan: dict[str, Any]) -> np.ndarray:
    """MSE with targets: 'y' float [N, output values] or [N, *output shape] (any per-sample shape with as many
    values, read in flat NHWC order) -> float32 [N, output values]."""
    elems = int(plan["classes"])
    if y is None or np.asarray(y).ndim < 2:
        got = "no 'y'" if y is None else f"'y' of shape {tuple(np.asarray(y).shape)} (labels)"
        raise OctoError(f"{path} has {got}: this training build regresses per-sample targets",
                        hint=f"store 'y' float32 [N, {elems}] (or [N, *output shape]), as in the training data")
    y = np.asarray(y)
    if len(y) != len(x) or int(np.prod(y.shape[1:])) != elems:
        raise OctoError(f"{path}: targets 'y' have shape {tuple(y.shape)}; the model outputs {elems} values per "
                        f"sample, so 'y' must be [{len(x)}, {elems}] or [{len(x)}, *output shape] (NHWC order)")
    if not np.issubdtype(y.dtype, np.number) or not np.all(np.isfinite(y)):
        raise OctoError(f"{path}: targets 'y' must be finite numbers (dtype {y.dtype})")
    return y.reshape(len(y), elems).astype(np.float32)


def _anomaly_labels(path: Path, x: np.ndarray, y: np.ndarray | None) -> np.ndarray:
    """MSE datasets: 'y' absent (all normal) or one 0/1 label per sample (1 = anomalous)."""
    if y is None:
        return np.zeros(len(x), np.int64)
    y = np.asarray(y)
    if y.ndim > 1 and y.shape[0] == len(x):
        raise OctoError(f"{path}: 'y' has shape {tuple(y.shape)}: per-sample targets, but this training build is "
                        "an autoencoder (its target is the sample 'x' itself): it was set up from data without "
                        "targets",
                        hint="train and evaluate with targets in both .npz files (--data and --eval), or store "
                             "one 0 (normal) / 1 (anomalous) label per sample")
    if y.ndim != 1 or len(y) != len(x) or not np.all(np.isin(y, (0, 1))):
        raise OctoError(f"{path}: for an MSE model 'y' is optional and marks each sample normal (0) or anomalous "
                        f"(1); got shape {tuple(y.shape)}" + (f", values {np.unique(y)[:6]}" if y.size else ""),
                        hint="drop 'y', or store one 0/1 label per sample")
    return y.astype(np.int64)


def normal_only(xy: tuple[np.ndarray, np.ndarray]) -> tuple[tuple[np.ndarray, np.ndarray], int]:
    """An autoencoder learns normal data: the samples labelled 0, and how many anomalous ones were left out."""
    x, y = xy
    keep = y == 0
    return (x[keep], y[keep]), int((~keep).sum())


def roc_auc(scores: np.ndarray, y: np.ndarray) -> float | None:
    """ROC AUC of scores (higher = more anomalous) for 0/1 labels, None unless both classes occur."""
    y = np.asarray(y)
    if not (np.any(y == 0) and np.any(y == 1)):
        return None
    from converter.pipeline import roc_auc as auc  # noqa: PLC0415

    return float(auc(np.asarray(scores, np.float64), y))


def compute_input_scale(x: np.ndarray) -> float:
    """input_scale = max|x| / 127 (float32, as sent in TRAIN_INIT); 1.0 for all-zero data."""
    m = np.float32(np.max(np.abs(x))) if x.size else np.float32(0)
    return float(m / np.float32(127)) if m > 0 else 1.0


def quantize_samples(x: np.ndarray, input_scale: float) -> np.ndarray:
    """Float samples -> INT8 symmetric (real = q * input_scale), round to nearest (ties to even), clipped to +-127."""
    q = np.rint(np.asarray(x, np.float32) / np.float32(input_scale))
    return np.clip(q, -127, 127).astype(np.int8)


# -- batching ------------------------------------------------------------------------------------
def lr_at(opts: TrainOptions, step: int, total_steps: int) -> float:
    """The learning rate of a step: a function of the step only, so replays after a reset are identical."""
    if opts.schedule == "constant" or total_steps <= 0:
        return opts.lr
    return float(np.float32(opts.lr * 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))))


def steps_per_epoch(n_samples: int, batch: int) -> int:
    return -(-n_samples // batch)


def epoch_order(seed: int, epoch: int, n_samples: int) -> np.ndarray:
    """Sample order of epoch ``epoch`` (0-based): a permutation fixed by (seed, epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(n_samples)


def step_position(step: int, spe: int) -> tuple[int, int]:
    """Global step -> (epoch, batch index within the epoch), both 0-based."""
    return divmod(step, spe)


def batch_indices(seed: int, step: int, n_samples: int, batch: int) -> np.ndarray:
    """Sample indices of global step ``step`` (the last batch of an epoch may be smaller)."""
    epoch, b = step_position(step, steps_per_epoch(n_samples, batch))
    return epoch_order(seed, epoch, n_samples)[b * batch : (b + 1) * batch]


# -- checkpoints ---------------------------------------------------------------------------------
@dataclass
class Checkpoint:
    meta: dict[str, Any]
    blob: bytes
    path: Path            # the meta file


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_checkpoint(run_dir: Path, meta: dict[str, Any], blob: bytes) -> Checkpoint:
    """Write the blob (state-<step>.bin) then checkpoint.json pointing at it, each atomically.

    A crash at any point leaves either the old or the new checkpoint, never a mix:
    the meta file is replaced last and names its blob with its CRC-32.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    state_name = f"state-{int(meta['step']):08d}.bin"
    meta = {"schema": CHECKPOINT_SCHEMA, **meta, "state_file": state_name, "state_bytes": len(blob),
            "state_crc32": zlib.crc32(blob)}
    _atomic_write(run_dir / state_name, blob)
    meta_path = run_dir / CHECKPOINT_META
    text = json.dumps(meta, indent=1) + "\n"
    _atomic_write(meta_path, text.encode())
    for old in run_dir.glob("state-*.bin"):
        if old.name != state_name:
            old.unlink(missing_ok=True)
    return Checkpoint(json.loads(text), bytes(blob), meta_path)


PREVIOUS_RUN = "previous"      # a fresh run moves the run folder's last checkpoint here (one generation)


def keep_previous_run(run_dir: Path) -> tuple[int, Path] | None:
    """Before a fresh run: move the run folder's checkpoint, its state file and telemetry into
    <run_dir>/previous/ (replacing an older one there). Returns (its step, where) or None if there was none."""
    meta_path = run_dir / CHECKPOINT_META
    if not meta_path.exists():
        return None
    try:
        step = int(json.loads(meta_path.read_text()).get("step", -1))
    except (OSError, ValueError, TypeError):
        step = -1
    dest = run_dir / PREVIOUS_RUN
    if dest.exists():
        for old in dest.iterdir():
            old.unlink()
    dest.mkdir(exist_ok=True)
    for f in [*run_dir.glob("state-*.bin"), run_dir / "telemetry.jsonl", meta_path]:
        if f.exists():
            os.replace(f, dest / f.name)
    return step, dest


def read_checkpoint(run_dir: Path) -> Checkpoint:
    meta_path = run_dir / CHECKPOINT_META
    if not meta_path.exists():
        raise OctoError(f"no checkpoint in {run_dir} ({CHECKPOINT_META} missing)",
                        hint="train without --resume first, or pass the --run-dir of an earlier run")
    try:
        meta = json.loads(meta_path.read_text())
        blob = (run_dir / meta["state_file"]).read_bytes()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise OctoError(f"checkpoint {meta_path} is unreadable: {exc}",
                        hint="start a fresh run (without --resume) or point --run-dir elsewhere") from None
    if len(blob) != meta.get("state_bytes") or zlib.crc32(blob) != meta.get("state_crc32"):
        raise OctoError(f"checkpoint {meta_path}: its state file {meta['state_file']} does not match "
                        f"(length or CRC-32 differ)", hint="the run directory was modified; start a fresh run")
    return Checkpoint(meta, blob, meta_path)


def check_checkpoint(ck: Checkpoint, config_id: str, fingerprint: int, n_train: int | None = None) -> None:
    """The checkpoint must come from the same model, training configuration (and dataset size)."""
    m = ck.meta
    if m.get("config_id") != config_id:
        raise OctoError(f"checkpoint {ck.path} is for training configuration {m.get('config_id')!r}, "
                        f"this run is {config_id!r}",
                        hint="use the same --precision/--batch/--update as that run, or another --run-dir")
    if _u32(m.get("fingerprint")) != fingerprint:
        raise OctoError(f"checkpoint {ck.path} is for another model (fingerprint 0x{_u32(m.get('fingerprint')):08x},"
                        f" this model is 0x{fingerprint:08x})",
                        hint="the model was re-converted since; start a fresh run (without --resume)")
    if n_train is not None and m.get("train_samples") != n_train:
        raise OctoError(f"checkpoint {ck.path} was trained on {m.get('train_samples')} samples, --data has {n_train}",
                        hint="resume with the same training set (the batch order depends on it)")


def _u32(v: Any) -> int:
    if isinstance(v, str):
        return int(v, 0) & 0xFFFFFFFF
    return int(v or 0) & 0xFFFFFFFF


# -- the training loop ---------------------------------------------------------------------------
@dataclass
class TrainOptions:
    epochs: int = 10
    seed: int = 0
    init: str = "converted"          # "converted" | "random"
    lac: bool = DEFAULT_LAC
    prc: bool = DEFAULT_PRC
    grad_rounding: str = "nearest"   # INT8 input gradients: "nearest" | "stochastic" (TRAIN_INIT flag GRAD_SR)
    lr: float = 0.05
    schedule: str = "cosine"         # "cosine": lr * (1 + cos(pi * step / total)) / 2; "constant"
    momentum: float = 0.9
    weight_decay: float = 0.0
    prc_k: float = PRC_K_DEFAULT
    lac_l2: float = LAC_L2_DEFAULT
    checkpoint_every: int = CHECKPOINT_EVERY
    resume: bool = False
    telemetry: Path | None = None    # default <run dir>/telemetry.jsonl
    progress: bool = False           # live bar on stderr (callers pass: a TTY and not --json -)
    max_recoveries: int = MAX_RECOVERIES_IN_ROW
    model: str | None = None         # for the metrics; default tb.dir's model folder


def _new_epoch_acc() -> dict[str, float]:
    return {"loss_sum": 0.0, "correct": 0, "n": 0, "steps": 0, "seconds": 0.0}


@dataclass
class _Position:
    """Everything that rolls back with a checkpoint besides the board's blob."""

    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    epoch_acc: dict[str, float] = field(default_factory=_new_epoch_acc)
    ticks: int = 0          # over all training steps so far
    samples: int = 0


def _recoverable(exc: BaseException) -> bool:
    """A board reset or a broken link: restore the checkpoint and replay. Divergence is never recoverable."""
    return isinstance(exc, LinkError) or (isinstance(exc, BoardError) and exc.status == P.E_STATE)


def _target_kind(board_name: str) -> str:
    if board_name == "host":
        return "host"
    from host_tools.board.boards import BOARDS  # noqa: PLC0415

    b = BOARDS.get(board_name)
    if b is not None:
        return b.kind
    return "virtual" if board_name.startswith("virtual") else "real"


class _Trainer:
    def __init__(self, target: Target, tb: TrainBuild, train_xy: tuple[np.ndarray, np.ndarray],
                 eval_xy: tuple[np.ndarray, np.ndarray] | None, opts: TrainOptions, say: Say, run_dir: Path) -> None:
        self.target, self.tb, self.say, self.run_dir = target, tb, say, Path(run_dir)
        self.opts = dataclasses.replace(opts)   # resume overwrites the trajectory options with the checkpoint's
        self.plan = tb.plan
        self.batch = int(self.plan["batch"])
        self.fingerprint = _u32(self.plan["fingerprint"])
        self.config_crc = _u32(self.plan["config_crc"])
        self.x_train, self.y_train = train_xy
        self.eval_xy = eval_xy
        self.n_train = len(self.y_train)
        self.spe = steps_per_epoch(self.n_train, self.batch)
        self.pos = _Position()
        self.ckpt: Checkpoint | None = None
        self.ckpt_pos = _Position()
        self.recoveries = 0
        self.in_row = 0
        self.high_water = 0
        self.step_timeout = FIRST_STEP_TIMEOUT_S
        self.slowest = 0.0
        self.input_scale = 1.0
        self.xq_train = np.zeros(0, np.int8)
        self.xq_eval: np.ndarray | None = None
        self.hello: P.Hello | None = None
        self.client: Any = None
        self.sess = TrainSession(None)
        self.link_base = {"bytes_sent": 0, "bytes_received": 0}
        self.tele: IO[str] | None = None
        self.tele_path = Path(opts.telemetry) if opts.telemetry else self.run_dir / "telemetry.jsonl"
        self._orders: dict[int, np.ndarray] = {}
        self._rate: deque[tuple[float, int]] = deque(maxlen=32)
        self._bar: Any = None
        self._task: Any = None
        self.ready = False      # start() done: the board holds this run's state
        self.stop_requested = False
        self.mse = plan_loss(self.plan) == "mse"
        self.targets = bool(self.plan.get("targets"))   # MSE against y (regression): y_train float [N, E]
        self.target_scale = 1.0
        self.tq_train = np.zeros(0, np.int8)
        self.tq_eval: np.ndarray | None = None
        self.initial: dict[str, float | None] = {"eval_accuracy": None, "eval_loss": None,   # before the first step
                                                 "eval_auc": None}
        self.first_loss: float | None = None
        self.loss_warned = False

    # -- connection -------------------------------------------------------------------------------
    def connect(self) -> TrainInfo:
        client = self.target.client
        if self.client is not None and client is not self.client:
            for k in self.link_base:
                self.link_base[k] += int(getattr(self.client.counters, k, 0))
        self.client = client
        hello = client.hello()
        if P.MSG_TRAIN_INFO not in hello.messages:
            raise OctoError(f"the firmware on {self.target.board_name} ({hello.board}) has no training service",
                            hint="it must be built from the training build of this configuration; "
                                 "`octo train` builds and starts it for virtual boards and --target host")
        self.hello = hello
        self.sess = TrainSession(client)
        info = self.sess.info()
        self._check_info(info)
        return info

    def _check_info(self, info: TrainInfo) -> None:
        plan = self.plan
        want = {"fingerprint": self.fingerprint, "config_crc": self.config_crc, "batch": self.batch,
                "input_elems": int(plan["input_elems"]), "classes": int(plan["classes"])}
        got = {k: getattr(info, k) for k in want}
        diff = [f"{k} {got[k]:#x} vs {want[k]:#x}" if k in ("fingerprint", "config_crc") else
                f"{k} {got[k]} vs {want[k]}" for k in want if got[k] != want[k]]
        if diff:
            raise OctoError(f"the board runs another training build than {self.tb.dir} (board vs plan: "
                            f"{', '.join(diff)})",
                            hint="rebuild and restart the board for this configuration; is --port the right board?")

    # -- start / resume ---------------------------------------------------------------------------
    def start(self) -> None:
        o = self.opts
        if o.resume:
            self._resume()
        else:
            kept = keep_previous_run(self.run_dir)
            if kept is not None:
                self.say(f"starting a fresh run; the previous run's checkpoint (step {kept[0]}) is kept in {kept[1]} "
                         "(pass --resume to continue a run instead)")
            self.input_scale = compute_input_scale(self.x_train)
            if self.targets:
                self.target_scale = compute_input_scale(self.y_train)   # the same rule: max|y| / 127
            self._quantize()
            self.sess.init(o.seed, o.init == "random", o.lac, o.prc, o.lr, o.momentum, o.weight_decay,
                           self.input_scale, o.prc_k, o.lac_l2, self.target_scale if self.targets else None,
                           grad_sr=o.grad_rounding == "stochastic")
            if o.init == "random":  # He-uniform scaled to the data's RMS (host_tools/train/init_scale.py)
                scale_random_init(self.sess, self.plan, self.xq_train, self.input_scale)
            self.pos = _Position()
            loss, acc, auc = self._evaluate()  # EVAL leaves the state as it is: the run stays bit-identical
            self.initial = {"eval_accuracy": _r(acc), "eval_loss": _r(loss), "eval_auc": _r(auc)}
            if acc is not None:
                self.say(f"held-out accuracy before training {acc:.4f} (loss {loss:.4f})")
            elif loss is not None:
                self.say(("held-out MSE against the targets" if self.targets else
                          "held-out reconstruction error (MSE)") + f" before training {loss:.4f}"
                         + (f", ROC AUC {auc:.4f}" if auc is not None else ""))
            self.checkpoint()
        self.ready = True

    def _resume(self) -> None:
        ck = read_checkpoint(self.run_dir)
        check_checkpoint(ck, self.tb.config.config_id, self.fingerprint, self.n_train)
        m = ck.meta
        saved = dict(m.get("options", {}))
        if "options" in m:
            saved.setdefault("grad_rounding", "nearest")  # checkpoints from before the option rounded to nearest
        changed = [f"{k}={getattr(self.opts, k)} (checkpoint: {saved[k]})"
                   for k in TRAJECTORY_OPTIONS if k in saved and saved[k] != getattr(self.opts, k)]
        if changed:
            self.say("resuming with the checkpoint's training options; ignored: " + ", ".join(changed))
        for k in TRAJECTORY_OPTIONS:
            if k in saved:
                setattr(self.opts, k, saved[k])
        self.input_scale = float(m["input_scale"])
        self.target_scale = float(m.get("target_scale") or 1.0)
        self._quantize()
        board_step = self.sess.set_state(ck.blob)
        if board_step != m["step"]:
            raise OctoError(f"the board restored step {board_step} from {ck.path}, which records step {m['step']}")
        self.pos = _Position(int(m["step"]), list(m.get("history", [])), dict(m.get("epoch_acc", _new_epoch_acc())),
                             int(m.get("ticks", 0)), int(m.get("samples", 0)))
        self.initial = {"eval_accuracy": None, "eval_loss": None, "eval_auc": None, **(m.get("initial") or {})}
        self.ckpt, self.ckpt_pos = ck, copy.deepcopy(self.pos)
        self.high_water = self.pos.step
        self.say(f"resuming at step {self.pos.step} ({len(self.pos.history)} epoch(s) done) from {ck.path}")

    def _quantize(self) -> None:
        self.xq_train = quantize_samples(self.x_train, self.input_scale)
        self.xq_eval = quantize_samples(self.eval_xy[0], self.input_scale) if self.eval_xy is not None else None
        if self.targets:
            self.tq_train = quantize_samples(self.y_train, self.target_scale)
            self.tq_eval = (quantize_samples(self.eval_xy[1], self.target_scale) if self.eval_xy is not None
                            else None)

    # -- loop -------------------------------------------------------------------------------------
    @property
    def total_steps(self) -> int:
        return self.opts.epochs * self.spe

    def loop(self) -> None:
        while True:
            try:
                self._advance()
                return
            except (LinkError, BoardError) as exc:
                if isinstance(exc, BoardError) and exc.status == P.E_DIVERGED:
                    raise self._diverged() from None
                if not _recoverable(exc):
                    raise
                self._recover(exc)

    @contextmanager
    def deferred_interrupt(self) -> Iterator[None]:
        """The first Ctrl-C lets the step in flight finish (its reply is what makes the checkpoint exact); a
        second one stops at once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_sigint(_signum: int, _frame: Any) -> None:
            if self.stop_requested:
                raise KeyboardInterrupt
            self.stop_requested = True
            self.say("stopping after the current step (press Ctrl-C again to stop at once) ...")

        previous = signal.signal(signal.SIGINT, on_sigint)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _diverged(self) -> TrainDiverged:
        s = self.pos.step
        where = f"; the checkpoint of step {self.ckpt.meta['step']} is in {self.ckpt.path}" if self.ckpt else ""
        return TrainDiverged(f"training diverged at step {s} (loss, activations or gradients are no longer "
                             f"finite) with --lr {self.opts.lr:g}{where}",
                             hint=f"train again with a smaller learning rate, e.g. --lr {self.opts.lr / 10:g}")

    def check_outcome(self) -> None:
        """Say so when the held-out accuracy (MSE: loss) ends well below (above) where the run started."""
        if self.mse:
            start, end = self.initial.get("eval_loss"), (self.pos.history[-1].get("eval_loss")
                                                         if self.pos.history else None)
            if start is not None and end is not None and end > start * (1 + MSE_RISE_WARN):
                what = "MSE against the targets" if self.targets else "reconstruction error"
                self.say(f"warning: the held-out {what} rose from {start:.4f} before training to "
                         f"{end:.4f}; try a smaller learning rate (--lr {self.opts.lr / 10:g}) or fewer layers "
                         "(--update last:2)")
            return
        start = self.initial.get("eval_accuracy")
        end = self.pos.history[-1].get("eval_accuracy") if self.pos.history else None
        if start is None or end is None or end >= start - ACCURACY_DROP_WARN:
            return
        self.say(f"warning: held-out accuracy fell from {start:.4f} before training to {end:.4f}: the updates were "
                 f"too large for these weights; try a smaller learning rate (--lr {self.opts.lr / 10:g}) or fewer "
                 "layers (--update last:2)")

    def _check_loss(self, s: int, loss: float) -> None:
        """Warn once when the loss grows far past where it started (divergence the board cannot see yet)."""
        if self.first_loss is None:
            self.first_loss = loss
            return
        floor = 0.0 if self.mse else math.log(max(2, int(self.plan.get("classes", 2))))
        bound = LOSS_WARN_FACTOR * max(self.first_loss, floor)
        if not self.loss_warned and not loss <= bound:
            self.loss_warned = True
            self.say(f"warning: the training loss is {loss:.4g} at step {s + 1}, more than {LOSS_WARN_FACTOR:g}x "
                     f"where it started ({self.first_loss:.4g}): the run is diverging; try a smaller learning rate "
                     f"(--lr {self.opts.lr / 10:g})")

    def _advance(self) -> None:
        ce = max(1, int(self.opts.checkpoint_every))
        while True:
            s = self.pos.step
            if s // self.spe > len(self.pos.history):
                self._end_epoch()
            ck_step = self.ckpt.meta["step"] if self.ckpt else -1
            if s != ck_step and (s % ce == 0 or s % self.spe == 0 or s >= self.total_steps):
                self.checkpoint()
            if s >= self.total_steps:
                return
            if self.stop_requested:   # Ctrl-C: stop here, between two steps, where the host and board agree
                raise KeyboardInterrupt
            self._train_step(s)

    def _order(self, epoch: int) -> np.ndarray:
        if epoch not in self._orders:
            self._orders = {epoch: epoch_order(self.opts.seed, epoch, self.n_train)}
        return self._orders[epoch]

    def _train_step(self, s: int) -> None:
        epoch, b = step_position(s, self.spe)
        idx = self._order(epoch)[b * self.batch : (b + 1) * self.batch]
        t0 = time.perf_counter()
        if self.targets:   # labels unused: zeros; the targets go separately
            self.sess.load(0, np.zeros(len(idx), np.int64), self.xq_train[idx])
            self.sess.load_targets(0, self.tq_train[idx])
        else:
            self.sess.load(0, self.y_train[idx], self.xq_train[idx])
        r = self.sess.step(s, len(idx), lr_at(self.opts, s, self.total_steps), timeout_s=self.step_timeout)
        dt = time.perf_counter() - t0
        if r.step_after != s + 1 or r.n != len(idx):
            raise BoardError(f"TRAIN_STEP {s} on {len(idx)} samples: the board reports step {r.step_after} "
                             f"after {r.n} samples", P.E_STATE)
        self._timed(dt)
        acc = self.pos.epoch_acc
        acc["loss_sum"] += r.loss * r.n
        acc["correct"] += r.correct
        acc["n"] += r.n
        acc["steps"] += 1
        acc["seconds"] += dt
        self.pos.ticks += r.ticks
        self.pos.samples += r.n
        self.pos.step = s + 1
        if self.pos.step > self.high_water:
            self.high_water = self.pos.step
            self.in_row = 0
        self._telemetry({"step": s + 1, "epoch": epoch + 1, "loss": r.loss, "correct": r.correct, "n": r.n,
                         "ticks": r.ticks, "instructions": self.target.ticks_to_instructions(r.ticks)})
        self._show(r.loss, None if self.mse else r.correct / max(1, r.n))
        self._check_loss(s, r.loss)

    def _timed(self, dt: float) -> None:
        self.slowest = max(self.slowest, dt)
        self.step_timeout = max(STEP_TIMEOUT_MIN_S, STEP_TIMEOUT_FACTOR * self.slowest)

    def _evaluate(self) -> tuple[float | None, float | None, float | None]:
        """(mean loss, accuracy, ROC AUC) on the eval set: accuracy for cross-entropy, the AUC of the per-sample
        reconstruction error for MSE when the eval set labels samples normal (0) and anomalous (1)."""
        if self.eval_xy is None or self.xq_eval is None:
            return None, None, None
        y = self.eval_xy[1]
        loss_sum, correct = 0.0, 0
        losses = np.zeros(len(y), np.float32)
        for off in range(0, len(y), self.batch):
            yb = y[off : off + self.batch]
            if self.targets and self.tq_eval is not None:
                self.sess.load(0, np.zeros(len(yb), np.int64), self.xq_eval[off : off + self.batch])
                self.sess.load_targets(0, self.tq_eval[off : off + self.batch])
            else:
                self.sess.load(0, yb, self.xq_eval[off : off + self.batch])
            t0 = time.perf_counter()
            r = self.sess.eval(len(yb), timeout_s=self.step_timeout)
            self._timed(time.perf_counter() - t0)
            if r.n != len(yb):
                raise OctoError(f"EVAL of {len(yb)} samples: the board evaluated {r.n}")
            loss_sum += r.loss * r.n
            correct += r.correct
            losses[off : off + r.n] = r.losses
        if self.mse:
            return loss_sum / len(y), None, None if self.targets else roc_auc(losses, y)
        return loss_sum / len(y), correct / len(y), None

    def _end_epoch(self) -> None:
        e = len(self.pos.history)
        t0 = time.perf_counter()
        eval_loss, eval_acc, eval_auc = self._evaluate()
        acc = self.pos.epoch_acc
        n = max(1, int(acc["n"]))
        entry = {"epoch": e + 1, "train_loss": _r(acc["loss_sum"] / n),
                 "train_accuracy": None if self.mse else _r(acc["correct"] / n),
                 "eval_loss": _r(eval_loss), "eval_accuracy": _r(eval_acc), "eval_auc": _r(eval_auc),
                 "steps": int(acc["steps"]), "seconds": round(acc["seconds"] + time.perf_counter() - t0, 3)}
        self.pos.history.append(entry)
        self.pos.epoch_acc = _new_epoch_acc()
        self._telemetry(dict(entry))
        ev = f", eval loss {entry['eval_loss']:.4f} acc {entry['eval_accuracy']:.4f}" if eval_acc is not None else ""
        if self.mse and eval_loss is not None:
            ev = f", eval loss {entry['eval_loss']:.4f}" + (f" AUC {entry['eval_auc']:.4f}" if eval_auc is not None
                                                             else "")
        tr = "" if self.mse else f" acc {entry['train_accuracy']:.4f}"
        self.say(f"epoch {e + 1}/{self.opts.epochs}: train loss {entry['train_loss']:.4f}{tr}{ev} "
                 f"({entry['steps']} steps, {entry['seconds']:.1f} s)")

    # -- checkpoints and recovery -----------------------------------------------------------------
    def _expect_state(self, what: str) -> None:
        info = self.sess.info()
        if not info.state_valid or info.step != self.pos.step:
            state = f"at step {info.step}" if info.state_valid else "invalid"
            raise BoardError(f"{what}: the board's training state is {state}, the host is at step {self.pos.step}",
                             P.E_STATE)

    def checkpoint(self) -> None:
        """Save the board's state at the host's step; the board must hold it before and after the transfer."""
        self._expect_state("checkpoint")
        blob = self.sess.get_state(int(self.plan["state_bytes"]))
        self._expect_state("checkpoint")
        head = unpack_header(blob)
        if head[0] != STATE_MAGIC or head[1] != self.fingerprint or head[3] != self.pos.step:
            raise BoardError(f"GET_WEIGHTS: the state blob is not this run's at step {self.pos.step} (magic "
                             f"{head[0]:#x}, fingerprint {head[1]:#x}, step {head[3]})", P.E_STATE)
        o = self.opts
        meta = {"step": self.pos.step, "epoch": len(self.pos.history), "seed": o.seed,
                "input_scale": self.input_scale, "config_id": self.tb.config.config_id,
                **({"target_scale": self.target_scale} if self.targets else {}),
                "fingerprint": self.fingerprint, "config_crc": self.config_crc, "board": self.target.board_name,
                "train_samples": self.n_train, "steps_per_epoch": self.spe, "history": self.pos.history,
                "epoch_acc": self.pos.epoch_acc, "ticks": self.pos.ticks, "samples": self.pos.samples,
                "initial": self.initial,
                "options": {**{k: getattr(o, k) for k in TRAJECTORY_OPTIONS}, "epochs": o.epochs,
                            "checkpoint_every": o.checkpoint_every},
                "time": round(time.time(), 3)}
        self.ckpt = write_checkpoint(self.run_dir, meta, blob)
        self.ckpt_pos = copy.deepcopy(self.pos)
        if self.tele is not None:
            self.tele.flush()

    def _recover(self, exc: LinkError | BoardError) -> None:
        while True:
            self.in_row += 1
            self.recoveries += 1
            s = self.pos.step
            if self.in_row > self.opts.max_recoveries:
                where = f"; the checkpoint of step {self.ckpt.meta['step']} is in {self.ckpt.path}" if self.ckpt else ""
                raise OctoError(f"gave up at step {s} after {self.opts.max_recoveries} recoveries in a row: "
                                f"{exc}{where}", hint="check the board and the link, then resume with --resume")
            self.say(f"step {s}: {exc}; recovering ({self.in_row}/{self.opts.max_recoveries})")
            try:
                if isinstance(exc, LinkError):
                    self.say(f"restarting {self.target.board_name} and reconnecting")
                    self.target.restart()
                info = self.connect()
                if info.state_valid and info.step == s:
                    self.say(f"the board's state is intact at step {s}; continuing")
                    return
                if self.ckpt is None:
                    raise OctoError("the board lost its training state before the first checkpoint",
                                    hint=RESYNC_HINT) from exc
                c = int(self.ckpt.meta["step"])
                why = "invalid" if not info.state_valid else f"at step {info.step}"
                self.say(f"the board's state is {why}; restoring the checkpoint of step {c} and replaying "
                         f"{s - c} step(s)")
                board_step = self.sess.set_state(self.ckpt.blob)
                if board_step != c:
                    raise BoardError(f"COMMIT_WEIGHTS: the board restored step {board_step}, expected {c}",
                                     P.E_STATE)
                self.pos = copy.deepcopy(self.ckpt_pos)
                self._telemetry({"recovery": self.recoveries, "from_step": s, "to_step": c, "reason": str(exc)})
                return
            except (LinkError, BoardError) as again:
                if not _recoverable(again):
                    raise
                exc = again

    def interrupted(self) -> TrainInterrupted:
        """After Ctrl-C: checkpoint the last completed step if the board is still there and at it."""
        s = self.pos.step
        ck_step = self.ckpt.meta["step"] if self.ckpt else None
        if self.ready and ck_step != s:
            try:
                info = self.sess.info(timeout_s=self.step_timeout)
                if info.state_valid and info.step == s:
                    self.checkpoint()
            except OctoError as exc:
                self.say(f"could not checkpoint step {s}: {exc}")
        if self.ckpt is None:
            return TrainInterrupted(f"training interrupted at step {s}, before any checkpoint")
        c = self.ckpt.meta["step"]
        return TrainInterrupted(f"training interrupted at step {s}; checkpoint of step {c} saved in {self.ckpt.path}",
                                hint="run the same `octo train` command with --resume to continue from it")

    # -- output -----------------------------------------------------------------------------------
    def _telemetry(self, obj: dict[str, Any]) -> None:
        if self.tele is not None:
            self.tele.write(json.dumps(obj) + "\n")

    def open_telemetry(self) -> None:
        self.tele_path.parent.mkdir(parents=True, exist_ok=True)
        self.tele = open(self.tele_path, "a" if self.opts.resume else "w")

    def open_progress(self) -> None:
        if not self.opts.progress:
            return
        from rich.console import Console  # noqa: PLC0415
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn  # noqa: PLC0415

        self._bar = Progress(TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(),
                             TextColumn("step {task.completed:.0f}/{task.total:.0f}"),
                             TextColumn("loss {task.fields[loss]}"), TextColumn("acc {task.fields[acc]}"),
                             TextColumn("{task.fields[rate]} steps/s"), TimeRemainingColumn(),
                             console=Console(file=toollog.err()))
        self._task = self._bar.add_task("train", total=self.total_steps, completed=self.pos.step,
                                        epoch=min(self.opts.epochs, self.pos.step // self.spe + 1),
                                        epochs=self.opts.epochs, loss="-", acc="-", rate="-")
        self._bar.start()

    def _show(self, loss: float, acc: float | None) -> None:
        if self._bar is None:
            return
        now = time.perf_counter()
        self._rate.append((now, self.pos.step))
        t_first, s_first = self._rate[0]
        rate = f"{(self.pos.step - s_first) / (now - t_first):.1f}" if now > t_first else "-"
        self._bar.update(self._task, completed=self.pos.step, loss=f"{loss:.4f}",
                         acc="-" if acc is None else f"{acc:.3f}", rate=rate,
                         epoch=min(self.opts.epochs, (self.pos.step - 1) // self.spe + 1))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if self.tele is not None:
            self.tele.close()
            self.tele = None

    def metrics(self) -> dict[str, Any]:
        o, plan = self.opts, self.plan
        cfg = self.tb.config
        kind = _target_kind(self.target.board_name)
        instr = self.target.ticks_to_instructions(self.pos.ticks)
        samples = self.pos.samples
        ips = cps = None
        if samples:
            if instr is not None:
                ips = round(instr / samples, 1)
            elif kind == "real" and self.hello is not None and self.hello.timer_hz:
                cps = round(self.pos.ticks * self.hello.cpu_hz / self.hello.timer_hz / samples, 1)
        last = self.pos.history[-1] if self.pos.history else {}
        counters = getattr(self.client, "counters", None)
        link = {k: self.link_base[k] + int(getattr(counters, k, 0)) for k in self.link_base}
        model = o.model or str(self.tb.dir.parents[1] if len(self.tb.dir.parents) > 1 else self.tb.dir)
        return {
            "model": model,
            "board": self.target.board_name,
            "target": kind,
            "config": {"config_id": cfg.config_id, "precision": cfg.precision, "batch": cfg.batch,
                       "loss": plan_loss(plan), "targets": bool(plan.get("targets")),
                       "update": cfg.update, "lac": o.lac, "prc": o.prc, "grad_rounding": o.grad_rounding,
                       "init": o.init, "seed": o.seed, "lr": o.lr,
                       "momentum": o.momentum, "weight_decay": o.weight_decay, "prc_k": o.prc_k,
                       "lac_l2": o.lac_l2, "schedule": o.schedule, "epochs": o.epochs},
            "epochs": self.pos.history,
            "initial": self.initial,
            "final": {"eval_accuracy": last.get("eval_accuracy"), "eval_loss": last.get("eval_loss"),
                      "eval_auc": last.get("eval_auc")},
            "instructions_per_sample": ips,
            "cycles_per_sample": cps,
            "peak_training_sram_bytes": int(plan["arena_bytes"]),
            "memory": plan.get("memory", {}),
            "link": link,
            "steps": self.pos.step,
            "steps_per_epoch": self.spe,
            "train_samples": self.n_train,
            "eval_samples": len(self.eval_xy[1]) if self.eval_xy is not None else 0,
            "input_scale": self.input_scale,
            **({"target_scale": self.target_scale} if self.targets else {}),
            "recoveries": self.recoveries,
            "checkpoint": str(self.ckpt.path) if self.ckpt else None,
            "run_dir": str(self.run_dir),
            "telemetry": str(self.tele_path),
        }


def _r(v: float | None) -> float | None:
    return None if v is None else round(float(v), 6)


def run_training(target: Target, tb: TrainBuild, train_xy: tuple[np.ndarray, np.ndarray],
                 eval_xy: tuple[np.ndarray, np.ndarray] | None, opts: TrainOptions, say: Say,
                 out_dir: Path) -> dict[str, Any]:
    """Train ``tb`` on ``target`` for opts.epochs epochs (checkpoints, telemetry and resume state in
    ``out_dir``); returns the metrics document of `octo train --json` (docs/JSON.md, octo.train/1).

    Raises TrainInterrupted (exit code 130) on Ctrl-C after keeping a checkpoint.
    """
    tr = _Trainer(target, tb, train_xy, eval_xy, opts, say, out_dir)
    try:
        tr.connect()
        tr.start()
        tr.open_telemetry()
        tr.open_progress()
        with tr.deferred_interrupt():
            tr.loop()
        tr.check_outcome()
    except KeyboardInterrupt:
        tr.close()
        raise tr.interrupted() from None
    finally:
        tr.close()
    return tr.metrics()
