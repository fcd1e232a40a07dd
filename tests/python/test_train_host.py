"""Host side of on-device training (host_tools/train/run.py, train_cmds.py) against a fake board.

The fake implements the TRAIN_* messages of docs/TRAINING.md in Python with a
float32 linear softmax classifier whose whole state (weights, momentum, step,
hyper-parameters) lives in the state blob, like the firmware's engine: so a
restored checkpoint replays bit-identically, and the final blob of a run with
resets, Ctrl-C and resumes must equal an uninterrupted run's byte for byte.
Real boards are covered by the lead's integration tests.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import types
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from host_tools.board import protocol as P
from host_tools.board.client import LinkCounters
from host_tools.cli import build_parser
from host_tools.cli import main as octo_main
from host_tools.errors import BoardError, LinkError, OctoError
from host_tools.services import training as TS
from host_tools.train import run as T

ELEMS, CLASSES, BATCH = 16, 3, 8
N_TRAIN, N_EVAL = 45, 20          # 45 = 5 full batches + one of 5: steps_per_epoch 6
HEADER = struct.Struct("<IIIIIIII6f8x")
MAGIC = 0x5354434F
N_PARAMS = CLASSES * ELEMS + CLASSES
STATE_BYTES = HEADER.size + 4 * 2 * N_PARAMS     # header, then W, b, then their momentum
PLAN: dict[str, Any] = {
    "input_shape": [4, 4, 1], "input_elems": ELEMS, "classes": CLASSES, "batch": BATCH, "state_bytes": STATE_BYTES,
    "arena_bytes": 4321, "precision": "int8", "config_crc": 0x1234ABCD, "fingerprint": 0xCAFEF00D,
    "memory": {"weights": 200, "activations": 1000, "total": 4321},
}
TRAIN_MESSAGES = tuple(range(P.MSG_TRAIN_INFO, P.MSG_TRAIN_PROFILE + 1))


# -- fakes ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FakeConfig:
    precision: str = "int8"
    batch: int = BATCH
    update: str = "all"
    loss: str = "auto"

    @property
    def config_id(self) -> str:
        return f"{self.precision}-b{self.batch}-{self.update.replace(':', '')}"


@dataclass
class FakeBuild:
    dir: Path
    plan: dict[str, Any]
    config: FakeConfig = field(default_factory=FakeConfig)


def _err(name: str, status: int, text: str) -> BoardError:
    return BoardError(f"board rejected {name}: {P.STATUS_NAMES[status]} ({text})", status)


class FakeBoard:
    """The firmware's training service in Python: the state blob is the whole truth."""

    def __init__(self, plan: dict[str, Any] = PLAN) -> None:
        self.plan = plan
        self.blob = bytearray(STATE_BYTES)
        self.valid = False
        self.x = np.zeros((BATCH, ELEMS), np.int8)
        self.y = np.zeros(BATCH, np.int64)
        self.steps_executed = 0
        self.evals = 0
        # fault injection: forget everything when TRAIN_STEP <k> arrives (once per entry, or every time)
        self.reset_at_step: set[int] = set()
        self.reset_every_time = False
        self.reset_at_eval: set[int] = set()     # the n-th EVAL request (0-based)
        self.link_dies = False                   # a reset also kills the link (LinkError) vs. silent reset

    def reset(self) -> None:
        self.blob = bytearray(STATE_BYTES)
        self.valid = False
        self.x[:] = 0
        self.y[:] = 0

    # state blob views
    def _hdr(self) -> list[Any]:
        return list(HEADER.unpack_from(self.blob))

    def _params(self) -> np.ndarray:
        return np.frombuffer(self.blob, np.float32, 2 * N_PARAMS, HEADER.size).copy()

    def _store(self, params: np.ndarray, step: int) -> None:
        h = self._hdr()
        h[3] = step
        HEADER.pack_into(self.blob, 0, *h)
        self.blob[HEADER.size :] = params.astype(np.float32).tobytes()

    def _forward(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        h = self._hdr()
        scale = np.float32(h[11])
        p = self._params()
        w = p[: CLASSES * ELEMS].reshape(CLASSES, ELEMS)
        b = p[CLASSES * ELEMS : N_PARAMS]
        x = self.x[:n].astype(np.float32) * scale
        z = x @ w.T + b
        z = z - z.max(1, keepdims=True)
        e = np.exp(z)
        prob = e / e.sum(1, keepdims=True)
        return x, prob, w, b

    def handle(self, t: int, pl: bytes) -> bytes:
        name = P.MESSAGE_NAMES[t]
        if t == P.MSG_TRAIN_INFO:
            h = self._hdr()
            return TS.INFO_FIXED.pack(self.plan["fingerprint"], self.plan["config_crc"], 0, 2, BATCH, ELEMS, CLASSES,
                                     STATE_BYTES, self.plan["arena_bytes"], h[3] if self.valid else 0,
                                     int(self.valid)) + bytes(4)
        if t == P.MSG_TRAIN_INIT:
            seed, init, flags, _, lr, mom, wd, iscale, prc_k, lac_l2 = TS.INIT_REQ.unpack(pl)
            rng = np.random.default_rng(seed if init else 1234)
            params = np.zeros(2 * N_PARAMS, np.float32)
            params[: CLASSES * ELEMS] = rng.uniform(-0.1, 0.1, CLASSES * ELEMS)
            HEADER.pack_into(self.blob, 0, MAGIC, self.plan["fingerprint"], self.plan["config_crc"], 0, seed or 1,
                             flags, init, seed, lr, mom, wd, iscale, prc_k, lac_l2)
            self._store(params, 0)
            self.valid = True
            return struct.pack("<I", STATE_BYTES)
        if t == P.MSG_TRAIN_LOAD:
            first, count = TS.LOAD_HEAD.unpack_from(pl)
            if len(pl) != 4 + count * (1 + ELEMS):
                raise _err(name, -10, "bad length")
            labels = np.frombuffer(pl, np.uint8, count, 4)
            if first + count > BATCH or (count and labels.max() >= CLASSES):
                raise _err(name, -1, "samples beyond the batch, or a label >= classes")
            self.y[first : first + count] = labels
            self.x[first : first + count] = np.frombuffer(pl, np.int8, count * ELEMS, 4 + count).reshape(count, ELEMS)
            return struct.pack("<H", count)
        if t == P.MSG_TRAIN_STEP:
            step, n = TS.STEP_REQ.unpack_from(pl)
            if len(pl) == TS.STEP_REQ.size + 4:        # the optional learning rate, kept in the state
                h = self._hdr()
                h[8] = struct.unpack_from("<f", pl, TS.STEP_REQ.size)[0]
                HEADER.pack_into(self.blob, 0, *h)
            if step in self.reset_at_step:
                if not self.reset_every_time:
                    self.reset_at_step.discard(step)
                self.reset()
                if self.link_dies:
                    raise LinkError("fake link died")
            if not self.valid:
                raise _err(name, P.E_STATE, "no training state")
            h = self._hdr()
            if step != h[3]:
                raise _err(name, P.E_STATE, "step mismatch")
            lr, mom, wd = np.float32(h[8]), np.float32(h[9]), np.float32(h[10])
            x, prob, w, _ = self._forward(n)
            y = self.y[:n]
            loss = float(-np.mean(np.log(prob[np.arange(n), y])))
            correct = int((prob.argmax(1) == y).sum())
            g = prob.copy()
            g[np.arange(n), y] -= 1
            g /= np.float32(n)
            gw = g.T @ x + wd * w
            gb = g.sum(0)
            p = self._params()
            v = p[N_PARAMS:] * mom + np.concatenate([gw.ravel(), gb]).astype(np.float32)
            p[:N_PARAMS] -= lr * v
            p[N_PARAMS:] = v
            self._store(p, step + 1)
            self.steps_executed += 1
            return TS.STEP_RESP.pack(step + 1, loss, correct, n, 100 * n)
        if t == P.MSG_TRAIN_PROFILE:
            return bytes([2]) + struct.pack("<8I", *range(1, 9))
        if t == P.MSG_EVAL:
            (n,) = TS.EVAL_REQ.unpack(pl)
            if self.evals in self.reset_at_eval:
                self.reset()
            self.evals += 1
            if not self.valid:
                raise _err(name, P.E_STATE, "no training state")
            _, prob, _, _ = self._forward(n)
            y = self.y[:n]
            losses = -np.log(prob[np.arange(n), y]).astype("<f4")
            loss = float(np.mean(losses))
            pred = prob.argmax(1).astype(np.uint8)
            return TS.EVAL_RESP.pack(loss, int((pred == y).sum()), n, 50 * n) + pred.tobytes() + losses.tobytes()
        if t == P.MSG_GET_WEIGHTS:
            off, n = TS.GET_REQ.unpack(pl)
            if off + n > STATE_BYTES:
                raise _err(name, -1, "range outside the state blob")
            return bytes(self.blob[off : off + n])
        if t == P.MSG_SET_WEIGHTS:
            (off,) = struct.unpack_from("<I", pl)
            data = pl[4:]
            if off + len(data) > STATE_BYTES:
                raise _err(name, -1, "range outside the state blob")
            self.valid = False
            self.blob[off : off + len(data)] = data
            return struct.pack("<I", off + len(data))
        if t == P.MSG_COMMIT_WEIGHTS:
            total, crc = TS.COMMIT_REQ.unpack(pl)
            self.valid = False
            if total != STATE_BYTES:
                raise _err(name, P.E_STATE, "wrong length")
            if crc != zlib.crc32(self.blob):
                raise _err(name, P.E_CRC, "CRC-32 mismatch")
            h = self._hdr()
            if h[0] != MAGIC or h[1] != self.plan["fingerprint"] or h[2] != self.plan["config_crc"]:
                raise _err(name, P.E_STATE, "another model or configuration")
            self.valid = True
            return struct.pack("<I", h[3])
        raise _err(name, -9, "unsupported")


class FakeClient:
    """BoardClient's interface over a FakeBoard; records every request frame."""

    def __init__(self, board: FakeBoard, max_payload: int = 200) -> None:
        self.board = board
        self.port = "fake://board"
        self.max_payload = 4096            # until HELLO, as BoardClient
        self.hello_max_payload = max_payload
        self.counters = LinkCounters()
        self.frames: list[tuple[int, int]] = []
        self.dead = False
        self.interrupt_at_step: int | None = None

    def hello(self) -> P.Hello:
        if self.dead:
            raise LinkError("fake link is dead")
        self.max_payload = self.hello_max_payload
        return P.Hello(1, "0.1.0", self.max_payload, ("timer-icount",), 25_000_000, 25_000_000, 262144, 1048576,
                       1000, 2000, 0x410FC241, "virtual-m4", "cortex-m4", "test",
                       (P.MSG_HELLO, P.MSG_PING, *TRAIN_MESSAGES))

    def request(self, msg_type: int, payload: bytes = b"", *, timeout_s: float | None = None,
                expect_len: int | None = None) -> bytes:
        if len(payload) > self.max_payload:
            raise LinkError(f"payload of {len(payload)} bytes exceeds {self.max_payload}")
        if self.dead:
            raise LinkError("fake link is dead")
        if msg_type == P.MSG_TRAIN_STEP and self.interrupt_at_step == TS.STEP_REQ.unpack_from(payload)[0]:
            self.interrupt_at_step = None
            raise KeyboardInterrupt
        self.frames.append((msg_type, len(payload)))
        self.counters.bytes_sent += len(payload) + 11
        try:
            reply = self.board.handle(msg_type, payload)
        except LinkError:
            self.dead = True
            raise
        self.counters.bytes_received += len(reply) + 11
        return reply


class FakeTarget:
    """open_train_target's Target over a FakeBoard; restart() = power-cycle + reconnect."""

    def __init__(self, board: FakeBoard | None = None, max_payload: int = 200, board_name: str = "virtual-m4",
                 real: bool = False) -> None:
        self.board = board or FakeBoard()
        self.max_payload = max_payload
        self.client = FakeClient(self.board, max_payload)
        self.board_name = board_name
        self.real = real
        self.restarts = 0

    def restart(self) -> None:
        self.board.reset()
        self.client = FakeClient(self.board, self.max_payload)
        self.restarts += 1

    def ticks_to_instructions(self, ticks: int) -> int | None:
        return None if self.real else ticks * 40


def make_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, n)
    centers = np.random.default_rng(99).normal(0, 1, (CLASSES, ELEMS))
    x = centers[y] + 0.5 * rng.normal(0, 1, (n, ELEMS))
    return x.reshape(n, 4, 4, 1).astype(np.float32), y.astype(np.int64)


TRAIN_XY = make_data(N_TRAIN, 1)
EVAL_XY = make_data(N_EVAL, 2)


def build(tmp: Path) -> FakeBuild:
    d = tmp / "model" / "train" / "int8-b8-all"
    d.mkdir(parents=True, exist_ok=True)
    return FakeBuild(d, dict(PLAN))


def opts(**kw: Any) -> T.TrainOptions:
    base: dict[str, Any] = {"epochs": 3, "checkpoint_every": 4, "lr": 0.1}
    return T.TrainOptions(**{**base, **kw})


def train(tmp: Path, target: FakeTarget, run: str = "run", **kw: Any) -> dict[str, Any]:
    said: list[str] = []
    m = T.run_training(target, build(tmp), TRAIN_XY, EVAL_XY, opts(**kw), said.append, tmp / run)
    m["_said"] = said
    return m


def _no_seconds(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k != "seconds"} for e in history]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, dict[str, Any]]:
    """An uninterrupted run: the final state blob and metrics every other run must reproduce."""
    tmp = tmp_path_factory.mktemp("ref")
    target = FakeTarget()
    m = train(tmp, target)
    return bytes(target.board.blob), m


# -- batching ------------------------------------------------------------------------------------
def test_batch_order_is_deterministic_and_each_epoch_covers_every_sample_once() -> None:
    spe = T.steps_per_epoch(N_TRAIN, BATCH)
    assert spe == 6
    for epoch in range(3):
        order = T.epoch_order(7, epoch, N_TRAIN)
        batches = [T.batch_indices(7, epoch * spe + b, N_TRAIN, BATCH) for b in range(spe)]
        assert [len(b) for b in batches] == [8, 8, 8, 8, 8, 5]
        assert np.array_equal(np.concatenate(batches), order)
        assert sorted(order.tolist()) == list(range(N_TRAIN))
        assert np.array_equal(order, np.random.default_rng([7, epoch]).permutation(N_TRAIN))
    assert not np.array_equal(T.epoch_order(7, 0, N_TRAIN), T.epoch_order(7, 1, N_TRAIN))
    assert not np.array_equal(T.epoch_order(7, 0, N_TRAIN), T.epoch_order(8, 0, N_TRAIN))
    assert np.array_equal(T.batch_indices(7, 13, N_TRAIN, BATCH), T.batch_indices(7, 13, N_TRAIN, BATCH))


@pytest.mark.parametrize(("step", "pos"), [(0, (0, 0)), (5, (0, 5)), (6, (1, 0)), (13, (2, 1)), (17, (2, 5))])
def test_step_maps_to_epoch_and_batch(step: int, pos: tuple[int, int]) -> None:
    assert T.step_position(step, 6) == pos


def test_samples_quantize_symmetric_round_to_nearest() -> None:
    x = np.array([[-2.54, 0.0, 0.01, 1.0, 2.54]], np.float32)
    scale = T.compute_input_scale(x)
    assert scale == pytest.approx(2.54 / 127)
    q = T.quantize_samples(x, scale)
    assert q.dtype == np.int8
    assert q.tolist() == [[-127, 0, 0, 50, 127]]
    assert T.quantize_samples(np.array([9.0], np.float32), scale).tolist() == [127]   # eval data beyond the range
    assert T.compute_input_scale(np.zeros((2, 3), np.float32)) == 1.0


# -- messages ------------------------------------------------------------------------------------
def test_session_chunks_every_frame_within_max_payload() -> None:
    board = FakeBoard()
    client = FakeClient(board, max_payload=64)
    client.hello()
    s = TS.TrainSession(client)
    assert s.init(3, False, True, True, 0.1, 0.9, 0.0, 0.02, 3.0, 1e-4) == STATE_BYTES
    xq = np.arange(BATCH * ELEMS, dtype=np.int64).reshape(BATCH, 4, 4, 1).astype(np.int8)
    s.load(0, np.array([0, 1, 2, 0, 1, 2, 0, 1]), xq)
    loads = [n for t, n in client.frames if t == P.MSG_TRAIN_LOAD]
    assert loads == [4 + 3 * 17, 4 + 3 * 17, 4 + 2 * 17]       # (64 - 4) // (1 + 16) = 3 samples a frame
    assert np.array_equal(board.x, xq.reshape(BATCH, ELEMS))
    r = s.step(0, BATCH)
    assert (r.step_after, r.n, r.ticks) == (1, BATCH, 800)
    assert s.profile() == [(1, 2, 3, 4), (5, 6, 7, 8)]
    s.step(1, BATCH, lr=0.25)
    assert client.frames[-1] == (P.MSG_TRAIN_STEP, 10)
    assert HEADER.unpack_from(board.blob)[8] == 0.25
    ev = s.eval(5)
    assert ev.n == 5 and ev.preds.shape == (5,) and 0 <= ev.correct <= 5
    info = s.info()
    assert (info.step, info.state_valid, info.batch, info.precision) == (2, True, BATCH, "int8")
    blob = s.get_state()
    assert blob == bytes(board.blob) and len(blob) == STATE_BYTES
    board.reset()
    client.frames.clear()
    assert s.set_state(blob) == 2
    assert bytes(board.blob) == blob and board.valid
    assert all(n <= 64 for _, n in client.frames)
    assert client.frames[-1] == (P.MSG_COMMIT_WEIGHTS, 8)
    assert [t for t, _ in client.frames[:-1]] == [P.MSG_SET_WEIGHTS] * -(-STATE_BYTES // 60)


def test_short_reply_is_a_clear_error() -> None:
    class Short(FakeClient):
        def request(self, msg_type: int, payload: bytes = b"", **kw: Any) -> bytes:
            return b"\x00" * 5

    with pytest.raises(OctoError, match=r"malformed TRAIN_INFO reply \(5 bytes, expected 33\)"):
        TS.TrainSession(Short(FakeBoard())).info()


# -- checkpoints ---------------------------------------------------------------------------------
def _meta(step: int) -> dict[str, Any]:
    return {"step": step, "config_id": "int8-b8-all", "fingerprint": PLAN["fingerprint"], "train_samples": N_TRAIN,
            "input_scale": 0.5, "history": []}


def test_checkpoint_write_read_and_a_crash_mid_write_keeps_the_old_one(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    old_blob, new_blob = b"A" * 100, b"B" * 120
    T.write_checkpoint(tmp_path, _meta(4), old_blob)
    ck = T.read_checkpoint(tmp_path)
    assert ck.blob == old_blob and ck.meta["step"] == 4 and ck.meta["schema"] == T.CHECKPOINT_SCHEMA
    assert ck.meta["state_crc32"] == zlib.crc32(old_blob)

    real_replace = os.replace

    def crash_on_meta(src: Any, dst: Any) -> None:
        if str(dst).endswith(T.CHECKPOINT_META):
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_meta)
    with pytest.raises(OSError, match="disk full"):
        T.write_checkpoint(tmp_path, _meta(8), new_blob)
    monkeypatch.undo()
    ck = T.read_checkpoint(tmp_path)                      # still the complete old checkpoint
    assert ck.blob == old_blob and ck.meta["step"] == 4
    T.write_checkpoint(tmp_path, _meta(8), new_blob)
    ck = T.read_checkpoint(tmp_path)
    assert ck.blob == new_blob and ck.meta["step"] == 8
    assert sorted(p.name for p in tmp_path.glob("state-*.bin")) == ["state-00000008.bin"]


def test_checkpoint_with_a_damaged_state_file_is_refused(tmp_path: Path) -> None:
    T.write_checkpoint(tmp_path, _meta(4), b"A" * 100)
    (tmp_path / "state-00000004.bin").write_bytes(b"A" * 99 + b"Z")
    with pytest.raises(OctoError, match="does not match"):
        T.read_checkpoint(tmp_path)


def test_missing_checkpoint_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(OctoError, match=r"no checkpoint in .*without --resume"):
        T.read_checkpoint(tmp_path / "nothing")


@pytest.mark.parametrize(("config_id", "fingerprint", "n", "match"), [
    ("fp32-b8-all", PLAN["fingerprint"], N_TRAIN, "configuration 'int8-b8-all', this run is 'fp32-b8-all'"),
    ("int8-b8-all", 0x1, N_TRAIN, "another model"),
    ("int8-b8-all", PLAN["fingerprint"], 44, "trained on 45 samples, --data has 44"),
])
def test_checkpoint_mismatch_is_refused(tmp_path: Path, config_id: str, fingerprint: int, n: int, match: str) -> None:
    T.write_checkpoint(tmp_path, _meta(4), b"A" * 100)
    with pytest.raises(OctoError, match=match):
        T.check_checkpoint(T.read_checkpoint(tmp_path), config_id, fingerprint, n)


def test_resume_with_another_configuration_fails_before_touching_the_board(tmp_path: Path) -> None:
    train(tmp_path, FakeTarget(), epochs=1)
    target = FakeTarget()
    tb = build(tmp_path)
    tb.config = FakeConfig(batch=BATCH, update="bias")
    with pytest.raises(OctoError, match=r"int8-b8-all.*int8-b8-bias"):
        T.run_training(target, tb, TRAIN_XY, EVAL_XY, opts(resume=True), print, tmp_path / "run")
    assert target.board.steps_executed == 0


# -- training, resets, Ctrl-C, resume ------------------------------------------------------------
def test_uninterrupted_run(reference: tuple[bytes, dict[str, Any]]) -> None:
    blob, m = reference
    assert m["steps"] == 18 and m["recoveries"] == 0
    assert [e["epoch"] for e in m["epochs"]] == [1, 2, 3]
    assert [e["steps"] for e in m["epochs"]] == [6, 6, 6]
    assert m["epochs"][-1]["eval_accuracy"] > 0.8                    # the fake learns its separable data
    assert m["epochs"][-1]["train_loss"] < m["epochs"][0]["train_loss"]
    assert struct.unpack_from("<I", blob, 12)[0] == 18
    assert m["instructions_per_sample"] == 100 * 40 and m["cycles_per_sample"] is None


@pytest.mark.parametrize("link_dies", [False, True], ids=["silent-reset", "link-dies"])
@pytest.mark.parametrize("at_step", [1, 9, 12, 15])
def test_board_reset_mid_training_replays_from_the_checkpoint(tmp_path: Path, reference: tuple[bytes, dict],
                                                              link_dies: bool, at_step: int) -> None:
    board = FakeBoard()
    board.reset_at_step = {at_step}
    board.link_dies = link_dies
    target = FakeTarget(board)
    m = train(tmp_path, target)
    ref_blob, ref = reference
    assert bytes(board.blob) == ref_blob                  # nothing lost, nothing applied twice
    assert m["recoveries"] == 1
    assert target.restarts == (1 if link_dies else 0)
    assert _no_seconds(m["epochs"]) == _no_seconds(ref["epochs"])
    last_ckpt = max(s for s in range(0, at_step + 1) if s % 4 == 0 or s % 6 == 0)
    assert board.steps_executed == 18 + (at_step - last_ckpt)     # exactly the steps since that checkpoint again
    assert any(f"restoring the checkpoint of step {last_ckpt}" in line for line in m["_said"])
    tele = [json.loads(line) for line in (tmp_path / "run" / "telemetry.jsonl").read_text().splitlines()]
    recoveries = [t for t in tele if "recovery" in t]
    assert len(recoveries) == 1
    assert recoveries[0]["from_step"] == at_step and recoveries[0]["to_step"] == last_ckpt


def test_board_reset_during_eval_recovers(tmp_path: Path, reference: tuple[bytes, dict]) -> None:
    board = FakeBoard()
    board.reset_at_eval = {4}             # the second epoch's eval (3 EVAL requests per epoch: 8 + 8 + 4 samples)
    m = train(tmp_path, FakeTarget(board))
    assert bytes(board.blob) == reference[0]
    assert m["recoveries"] == 1
    assert _no_seconds(m["epochs"]) == _no_seconds(reference[1]["epochs"])


def test_gives_up_after_three_recoveries_in_a_row(tmp_path: Path) -> None:
    board = FakeBoard()
    board.reset_at_step = {10}
    board.reset_every_time = True
    with pytest.raises(OctoError, match="gave up at step 10 after 3 recoveries in a row") as exc:
        train(tmp_path, FakeTarget(board))
    assert "checkpoint of step 8" in str(exc.value) and "--resume" in str(exc.value)


def test_ctrl_c_writes_a_checkpoint_and_resume_finishes_identically(tmp_path: Path,
                                                                     reference: tuple[bytes, dict]) -> None:
    target = FakeTarget()
    target.client.interrupt_at_step = 10
    with pytest.raises(T.TrainInterrupted) as exc:
        train(tmp_path, target)
    assert exc.value.exit_code == 130
    assert "--resume" in str(exc.value)
    ck = T.read_checkpoint(tmp_path / "run")
    assert ck.meta["step"] == 10                          # the last completed step, not the last periodic one (8)
    assert struct.unpack_from("<I", ck.blob, 12)[0] == 10
    assert len(ck.meta["history"]) == 1 and ck.meta["epoch_acc"]["steps"] == 4

    fresh = FakeTarget()                                  # e.g. after a power cycle: the board knows nothing
    m = train(tmp_path, fresh, resume=True, lr=0.5, seed=3)   # trajectory options come from the checkpoint
    assert bytes(fresh.board.blob) == reference[0]
    assert fresh.board.steps_executed == 8
    assert _no_seconds(m["epochs"]) == _no_seconds(reference[1]["epochs"])
    assert m["config"]["lr"] == 0.1 and m["config"]["seed"] == 0
    assert any("ignored: seed=3 (checkpoint: 0)" in line for line in m["_said"])
    assert m["instructions_per_sample"] == reference[1]["instructions_per_sample"]


def test_resume_can_extend_the_epochs(tmp_path: Path) -> None:
    train(tmp_path, FakeTarget(), epochs=1)
    target = FakeTarget()
    m = train(tmp_path, target, epochs=2, resume=True)
    assert [e["epoch"] for e in m["epochs"]] == [1, 2] and target.board.steps_executed == 6


def test_another_training_build_on_the_board_is_refused(tmp_path: Path) -> None:
    board = FakeBoard({**PLAN, "config_crc": 0x99})
    with pytest.raises(OctoError, match=r"another training build .*config_crc 0x99 vs 0x1234abcd"):
        train(tmp_path, FakeTarget(board))


def test_firmware_without_training_is_refused(tmp_path: Path) -> None:
    target = FakeTarget()
    target.client.hello = lambda: P.Hello(1, "0.1.0", 200, (), 1, 1, 1, 1, 1, 1, 1, "virtual-m4", "m4", "b",  # type: ignore[method-assign]
                                           (P.MSG_HELLO,))
    with pytest.raises(OctoError, match="no training service"):
        train(tmp_path, target)


# -- datasets ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("arrays", "match"), [
    ({"x": np.zeros((5, 4, 4, 3), np.float32), "y": np.zeros(5)},
     r"shape \(4, 4, 3\).*takes \(4, 4, 1\).*\[N, 4, 4, 1\]"),
    ({"x": np.zeros((5, 16), np.float32), "y": np.zeros(5)}, r"shape \(16,\).*\[N, 4, 4, 1\]"),
    ({"x": np.zeros((5, 4, 4, 1), np.float32), "y": np.array([0, 1, 2, 3, 7])}, r"2 of 5 labels are outside 0\.\.2"),
    ({"x": np.zeros((5, 4, 4, 1), np.float32), "y": np.array([0, 1, -1, 1, 0])}, r"1 of 5 labels are outside"),
    ({"x": np.zeros((5, 4, 4, 1), np.float32), "y": np.eye(3)[[0, 1, 2, 0, 1]]}, r"one-hot\?.*argmax"),
    ({"x": np.zeros((5, 4, 4, 1), np.float32), "y": np.zeros(4)}, r"expected \[5\]"),
    ({"x": np.zeros((5, 4, 4, 1), np.float32), "y": np.array([0, 0.5, 1, 1, 2])}, "integer class indices"),
    ({"x": np.zeros((5, 4, 4, 1), np.float32)}, "no labels 'y'"),
    ({"y": np.zeros(5)}, "no array 'x'"),
    ({"x": np.full((5, 4, 4, 1), np.nan, np.float32), "y": np.zeros(5)}, "NaN"),
])
def test_dataset_errors_are_specific(tmp_path: Path, arrays: dict[str, np.ndarray], match: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(OctoError, match=match) as exc:
        T.load_dataset(path, PLAN)
    assert "bad.npz" in str(exc.value)


def test_dataset_loads_and_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "ok.npz"
    np.savez(path, x=TRAIN_XY[0], y=TRAIN_XY[1].astype(np.float64))
    x, y = T.load_dataset(path, PLAN)
    assert x.dtype == np.float32 and y.dtype == np.int64 and np.array_equal(y, TRAIN_XY[1])
    with pytest.raises(OctoError, match=r"missing\.npz does not exist"):
        T.load_dataset(tmp_path / "missing.npz", PLAN)


# -- metrics and the CLI -------------------------------------------------------------------------
METRIC_KEYS = {"model", "board", "target", "config", "epochs", "final", "instructions_per_sample",
               "cycles_per_sample", "peak_training_sram_bytes", "memory", "link", "steps", "recoveries", "checkpoint"}
CONFIG_KEYS = {"precision", "batch", "update", "lac", "prc", "init", "seed", "lr", "momentum", "weight_decay", "epochs"}
EPOCH_KEYS = {"epoch", "train_loss", "train_accuracy", "eval_loss", "eval_accuracy", "eval_auc", "steps", "seconds"}


def test_metrics_schema_and_telemetry(reference: tuple[bytes, dict[str, Any]], tmp_path: Path) -> None:
    m = {k: v for k, v in reference[1].items() if k != "_said"}
    assert METRIC_KEYS <= set(m)
    assert CONFIG_KEYS <= set(m["config"])
    assert all(set(e) == EPOCH_KEYS for e in m["epochs"])
    assert set(m["final"]) == {"eval_accuracy", "eval_loss", "eval_auc"}
    assert m["final"]["eval_accuracy"] == m["epochs"][-1]["eval_accuracy"]
    assert m["peak_training_sram_bytes"] == PLAN["arena_bytes"] and m["memory"] == PLAN["memory"]
    assert m["link"]["bytes_sent"] > 0 and m["link"]["bytes_received"] > 0
    assert (m["board"], m["target"]) == ("virtual-m4", "virtual")
    json.dumps(m)
    tele = [json.loads(line) for line in Path(m["telemetry"]).read_text().splitlines()]
    steps = [t for t in tele if "step" in t]
    assert [t["step"] for t in steps] == list(range(1, 19))
    assert set(steps[0]) == {"step", "epoch", "loss", "correct", "n", "ticks", "instructions"}
    assert steps[0]["instructions"] == steps[0]["ticks"] * 40
    assert [t for t in tele if "train_loss" in t] == m["epochs"]

    real = train(tmp_path, FakeTarget(real=True, board_name="nucleo-f746zg"), epochs=1)
    assert real["instructions_per_sample"] is None and real["cycles_per_sample"] == 100.0
    assert real["target"] == "real"


def test_no_eval_set_gives_null_eval_numbers(tmp_path: Path) -> None:
    m = T.run_training(FakeTarget(), build(tmp_path), TRAIN_XY, None, opts(epochs=1), print, tmp_path / "run")
    assert m["final"] == {"eval_accuracy": None, "eval_loss": None, "eval_auc": None}
    assert m["epochs"][0]["eval_accuracy"] is None and m["epochs"][0]["train_accuracy"] is not None


def test_cli_parses_train_and_export() -> None:
    ap = build_parser()
    a = ap.parse_args(["train", "m", "--update", "last:2", "--no-lac", "--target", "host", "--batch", "4"])
    assert (a.update, a.lac, a.prc, a.target, a.batch, a.epochs, a.lr, a.checkpoint_every) == (
        "last:2", False, None, "host", 4, 10, None, 50)   # --lr None: chosen by --init (train/defaults.py)
    a = ap.parse_args(["export", "m", "-o", "t.tflite", "--precision", "fp32"])
    assert (a.output, a.precision, a.update) == ("t.tflite", "fp32", None)  # None: all, or auto if all never fits
    for bad in (["train", "m", "--update", "last:0"], ["train", "m", "--update", "first"],
                ["train", "m", "--batch", "0"]):
        with pytest.raises(SystemExit):
            ap.parse_args(bad)


@contextmanager
def _fake_modules(monkeypatch: pytest.MonkeyPatch, target: FakeTarget, tmp: Path) -> Iterator[dict[str, Any]]:
    """converter.train_plan / train_export and host_tools.board.target replaced by fakes."""
    calls: dict[str, Any] = {}

    def prepare_training(model_dir: Path, cfg: FakeConfig, board_name: str, *,
                         sram_bytes: int | None = None) -> FakeBuild:
        calls["prepare"] = (model_dir, cfg, board_name)
        calls["sram_bytes"] = sram_bytes
        d = model_dir / "train" / cfg.config_id
        d.mkdir(parents=True, exist_ok=True)
        return FakeBuild(d, dict(PLAN), cfg)

    @contextmanager
    def open_train_target(tb: FakeBuild, board_name: str, port: str | None, say: Any) -> Iterator[FakeTarget]:
        calls["open_train_target"] = (board_name, port)
        target.board_name = board_name
        yield target

    def decode_weights(plan: dict, blob: bytes, model: bytes | None = None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        calls["decode"] = len(blob)
        p = np.frombuffer(blob, np.float32, N_PARAMS, HEADER.size)
        return {0: (p[: CLASSES * ELEMS].reshape(CLASSES, ELEMS), p[CLASSES * ELEMS :])}

    def export_tflite(model_dir: Path, weights: dict, calib_x: np.ndarray, out: Path) -> dict:
        calls["export"] = (sorted(weights), calib_x.shape)
        out.write_bytes(b"\x00\x00\x00\x00TFL3 fake")
        return {"layers": 1}

    plan_mod = types.ModuleType("converter.train_plan")
    plan_mod.TrainConfig = FakeConfig  # type: ignore[attr-defined]
    plan_mod.prepare_training = prepare_training  # type: ignore[attr-defined]
    plan_mod.fitting_batch = lambda model_dir, cfg, sram, most, strict=False: most  # type: ignore[attr-defined]
    blob_mod = types.ModuleType("host_tools.services.state_blob")
    blob_mod.decode_weights = decode_weights  # type: ignore[attr-defined]
    export_mod = types.ModuleType("converter.train_export")
    export_mod.export_tflite = export_tflite  # type: ignore[attr-defined]
    target_mod = types.ModuleType("host_tools.board.target")
    target_mod.open_train_target = open_train_target  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "converter.train_plan", plan_mod)
    monkeypatch.setitem(sys.modules, "converter.train_export", export_mod)
    monkeypatch.setitem(sys.modules, "host_tools.services.state_blob", blob_mod)
    monkeypatch.setitem(sys.modules, "host_tools.board.target", target_mod)
    model = tmp / "m"
    model.mkdir()
    (model / "report.json").write_text("{}")
    (model / "model.tflite").write_bytes(b"fake")
    np.savez(model / "train.npz", x=TRAIN_XY[0], y=TRAIN_XY[1])
    np.savez(model / "eval.npz", x=EVAL_XY[0], y=EVAL_XY[1])
    yield calls


def test_octo_train_and_export_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from host_tools.train import export

    target = FakeTarget()
    with _fake_modules(monkeypatch, target, tmp_path) as calls:
        model = tmp_path / "m"
        rc = octo_main(["train", str(model), "--target", "host", "--batch", "8", "--epochs", "2", "--lr", "0.1",
                        "--json", "-"])
        cap = capsys.readouterr()
        assert rc == 0, cap.err
        doc = json.loads(cap.out)
        assert doc["schema"] == "octo.train/1" and METRIC_KEYS <= set(doc)
        assert (doc["board"], doc["target"], doc["model"]) == ("host", "host", str(model))
        assert calls["open_train_target"] == ("host", None) and calls["prepare"][2] == "host"
        assert "final eval accuracy" in cap.err and "peak training SRAM 4,321 B" in cap.err
        assert Path(doc["checkpoint"]) == model / "train" / "int8-b8-all" / "run" / "checkpoint.json"

        monkeypatch.setattr(export, "tflite_accuracy", lambda model, src, x, y: 0.875)
        out = tmp_path / "tuned.tflite"
        rc = octo_main(["export", str(model), "--target", "host", "--batch", "8", "-o", str(out), "--json", "-"])
        cap = capsys.readouterr()
        assert rc == 0, cap.err
        doc = json.loads(cap.out)
        assert doc["schema"] == "octo.export/1"
        assert (doc["step"], doc["epochs"], doc["tflite_eval_accuracy"], doc["eval_samples"]) == (12, 2, 0.875, 20)
        assert doc["board_eval_accuracy"] == json.loads(Path(doc["checkpoint"]).read_text())["history"][-1][
            "eval_accuracy"]
        assert calls["decode"] == STATE_BYTES and calls["export"] == ([0], (N_TRAIN, 4, 4, 1))

        rc = octo_main(["export", str(model), "--target", "host", "--batch", "4", "-o", str(out)])
        assert rc == 2 and "no checkpoint in" in capsys.readouterr().err


def test_octo_train_without_data_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    with _fake_modules(monkeypatch, FakeTarget(), tmp_path):
        (tmp_path / "m" / "train.npz").unlink()
        rc = octo_main(["train", str(tmp_path / "m"), "--target", "host", "--batch", "8"])
        err = capsys.readouterr().err
        assert rc == 2 and "train.npz does not exist" in err and "--data" in err
        rc = octo_main(["train", str(tmp_path / "m"), "--target", "host", "--board", "virtual-m4"])
        assert rc == 2 and "cannot be combined" in capsys.readouterr().err


def test_a_fresh_run_keeps_the_previous_runs_checkpoint(tmp_path: Path,
                                                         reference: tuple[bytes, dict[str, Any]]) -> None:
    """Re-running without --resume moves the last checkpoint (and its telemetry) to RUN/previous/ and says so
    before training; the kept checkpoint still resumes."""
    first = train(tmp_path, FakeTarget())
    second = train(tmp_path, FakeTarget(), seed=5)
    assert any(f"the previous run's checkpoint (step {first['steps']}) is kept in" in s for s in second["_said"])
    kept = T.read_checkpoint(tmp_path / "run" / T.PREVIOUS_RUN)
    assert kept.meta["step"] == first["steps"] and kept.blob == reference[0]
    assert (tmp_path / "run" / T.PREVIOUS_RUN / "telemetry.jsonl").stat().st_size > 0
    assert T.read_checkpoint(tmp_path / "run").meta["seed"] == 5


def test_host_objects_are_compiled_once_and_shared(tmp_path: Path) -> None:
    """compile_objects: an object per source keyed on flags, source and headers, reused by the next build;
    a changed source gets a new object; gcc's error reaches the caller."""
    from converter.hostbuild import HostBuildError, compile_cached, compile_objects

    src, hdr = tmp_path / "f.c", tmp_path / "f.h"
    hdr.write_text("#define K 3\n")
    src.write_text('#include "f.h"\nint f(void) { return K; }\n')
    main = tmp_path / "main.c"
    main.write_text("int f(void);\nint main(void) { return f(); }\n")
    flags = ["-std=c99", "-Wall", "-Werror", f"-I{tmp_path}"]
    cache = tmp_path / "objs"
    (obj,) = compile_objects([src], flags, cache, hash_also=[hdr])
    mtime = obj.stat().st_mtime_ns
    assert compile_objects([src], flags, cache, hash_also=[hdr]) == [obj] and obj.stat().st_mtime_ns == mtime
    exe = compile_cached([main], flags, tmp_path / "bin", "t", objects=[obj])
    assert os.system(str(exe)) >> 8 == 3
    hdr.write_text("#define K 4\n")  # a header change is a new object and a new binary
    (obj2,) = compile_objects([src], flags, cache, hash_also=[hdr])
    exe2 = compile_cached([main], flags, tmp_path / "bin", "t", objects=[obj2])
    assert obj2 != obj and exe2 != exe and os.system(str(exe2)) >> 8 == 4
    src.write_text("int f(void) { return undefined_name; }\n")
    with pytest.raises(HostBuildError, match="undefined_name"):
        compile_objects([src], flags, cache)
