"""The training service's messages (TRAIN_INFO ... TRAIN_PROFILE, docs/TRAINING.md): every layout encoded and
decoded here, over a connected BoardClient. No policy: orchestration is host_tools/train/run.py."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from host_tools.board import protocol as P
from host_tools.errors import BoardError, OctoError

INFO_FIXED = struct.Struct("<IIBBHIIIIIB")   # TRAIN_INFO reply
INIT_REQ = struct.Struct("<IBBH6f")          # TRAIN_INIT request
INIT_TARGET = struct.Struct("<f")            # optional TRAIN_INIT tail: target_scale (MSE with targets)
LOAD_HEAD = struct.Struct("<HH")             # TRAIN_LOAD: first, count (then labels, samples)
STEP_REQ = struct.Struct("<IH")
STEP_LR = struct.Struct("<f")                # optional TRAIN_STEP tail: this and later steps' learning rate
STEP_RESP = struct.Struct("<IfHHI")
EVAL_REQ = struct.Struct("<H")
EVAL_RESP = struct.Struct("<fHHI")           # then n x u8 predicted class, n x f32 per-sample loss
GET_REQ = struct.Struct("<IH")
OFFSET = struct.Struct("<I")                 # SET_WEIGHTS head and reply; u32 replies
COMMIT_REQ = struct.Struct("<II")
PRECISIONS = {0: "int8", 1: "fp32"}
FLAG_LAC = 1 << 0
FLAG_PRC = 1 << 1
FLAG_GRAD_SR = 1 << 2                        # INT8 input gradients rounded stochastically (else to nearest)
FIRST_STEP_TIMEOUT_S = 120.0   # reply deadline for the first TRAIN_STEP / EVAL (nothing measured yet)


@dataclass(frozen=True)
class TrainInfo:
    """TRAIN_INFO reply: which training build the board runs and where its state is."""

    fingerprint: int      # CRC-32 of the model's .tflite
    config_crc: int       # CRC-32 of train_plan.json's "config" (canonical JSON)
    precision: str        # "int8" | "fp32"
    n_layers: int
    batch: int            # max samples per step
    input_elems: int      # per sample
    classes: int
    state_bytes: int
    arena_bytes: int
    step: int             # steps since TRAIN_INIT or of the restored state
    state_valid: bool     # False until TRAIN_INIT or a successful COMMIT_WEIGHTS


@dataclass(frozen=True)
class StepResult:
    step_after: int
    loss: float           # mean over the step's samples
    correct: int
    n: int
    ticks: int            # board timer ticks (HELLO timer_hz)


@dataclass(frozen=True)
class EvalResult:
    loss: float           # mean over the n samples (MSE: and over the output values)
    correct: int          # cross-entropy: argmax == label; MSE: 0
    n: int
    ticks: int
    preds: np.ndarray     # [n] uint8 predicted classes (MSE: 0)
    losses: np.ndarray    # [n] float32 per-sample losses (MSE: the reconstruction error); mean = loss


def _short_reply(name: str, got: int, want: int) -> OctoError:
    return OctoError(f"the board sent a malformed {name} reply ({got} bytes, expected {want})",
                     hint="the firmware and the host tools differ: rebuild the firmware from this checkout")


class TrainSession:
    """The TRAIN_* messages of docs/TRAINING.md over a connected BoardClient.

    Every frame stays within ``client.max_payload`` (set by HELLO). Board
    ERRORs arrive as BoardError (status OCTO_E_STATE = reset / step
    mismatch), link failures as LinkError; both come from the client.
    """

    def __init__(self, client: Any) -> None:
        self.client = client

    @property
    def max_payload(self) -> int:
        return int(self.client.max_payload)

    def _req(self, msg_type: int, payload: bytes = b"", *, want: int | None = None,
             timeout_s: float | None = None, expect_len: int | None = None) -> bytes:
        reply = self.client.request(msg_type, payload, timeout_s=timeout_s, expect_len=expect_len)
        if want is not None and len(reply) < want:
            raise _short_reply(P.MESSAGE_NAMES[msg_type], len(reply), want)
        return bytes(reply)

    def info(self, *, timeout_s: float | None = None) -> TrainInfo:
        r = self._req(P.MSG_TRAIN_INFO, want=INFO_FIXED.size, timeout_s=timeout_s)
        (fp, crc, prec, n_layers, batch, elems, classes, state_bytes, arena, step,
         valid) = INFO_FIXED.unpack_from(r)
        return TrainInfo(fp, crc, PRECISIONS.get(prec, f"precision{prec}"), n_layers, batch, elems, classes,
                         state_bytes, arena, step, bool(valid))

    def init(self, seed: int, init_random: bool, lac: bool, prc: bool, lr: float, momentum: float,
             weight_decay: float, input_scale: float, prc_k: float, lac_l2: float,
             target_scale: float | None = None, grad_sr: bool = False) -> int:
        """TRAIN_INIT: reset the whole training state; returns the state blob's size. ``target_scale``: MSE
        builds with targets only (real target = q * target_scale). ``grad_sr``: INT8 input gradients rounded
        stochastically instead of to nearest."""
        flags = (FLAG_LAC if lac else 0) | (FLAG_PRC if prc else 0) | (FLAG_GRAD_SR if grad_sr else 0)
        payload = INIT_REQ.pack(seed & 0xFFFFFFFF, int(init_random), flags, 0, lr, momentum, weight_decay,
                                input_scale, prc_k, lac_l2) + (b"" if target_scale is None
                                                               else INIT_TARGET.pack(target_scale))
        r = self._req(P.MSG_TRAIN_INIT, payload, want=OFFSET.size, timeout_s=FIRST_STEP_TIMEOUT_S)
        return int(OFFSET.unpack_from(r)[0])

    def load(self, first: int, labels: np.ndarray, samples: np.ndarray) -> None:
        """TRAIN_LOAD samples into batch slots first.. (int8 [count, ...], labels [count]), in frames
        of at most max_payload bytes."""
        labels = np.asarray(labels)
        count = len(labels)
        if count == 0:
            return
        if labels.min() < 0 or labels.max() > 0xFF:
            raise OctoError(f"labels must be in 0..255 for TRAIN_LOAD, got {labels.min()}..{labels.max()}")
        lab = labels.astype(np.uint8)
        x = np.ascontiguousarray(samples, np.int8).reshape(count, -1)
        elems = x.shape[1]
        per = (self.max_payload - LOAD_HEAD.size) // (1 + elems)
        if per < 1:  # a sample larger than a frame goes in parts
            chunk = self.max_payload - 8
            for i in range(count):
                for o in range(0, elems, chunk):
                    part = x[i, o : o + chunk].tobytes()
                    r = self._req(P.MSG_TRAIN_LOAD_PART, struct.pack("<HBBI", first + i, int(lab[i]), 0, o) + part,
                                  want=4)
                    if struct.unpack_from("<I", r)[0] != o + len(part):
                        raise OctoError(f"TRAIN_LOAD_PART: the board staged sample {first + i} only up to "
                                        f"{struct.unpack_from('<I', r)[0]} bytes")
            return
        for off in range(0, count, per):
            c = min(per, count - off)
            payload = LOAD_HEAD.pack(first + off, c) + lab[off : off + c].tobytes() + x[off : off + c].tobytes()
            r = self._req(P.MSG_TRAIN_LOAD, payload, want=2)
            (got,) = struct.unpack_from("<H", r)
            if got != c:
                raise OctoError(f"TRAIN_LOAD: the board staged {got} samples of {c}")

    def load_targets(self, first: int, targets: np.ndarray) -> None:
        """TRAIN_LOAD_TARGETS: the int8 targets [count, output values] of batch slots first.. (MSE with
        targets), in frames of at most max_payload bytes."""
        t = np.ascontiguousarray(targets, np.int8)
        if not len(t):
            return
        data = t.reshape(len(t), -1)
        base = first * data.shape[1]
        raw = data.tobytes()
        chunk = self.max_payload - OFFSET.size
        for o in range(0, len(raw), chunk):
            part = raw[o : o + chunk]
            r = self._req(P.MSG_TRAIN_LOAD_TARGETS, OFFSET.pack(base + o) + part, want=OFFSET.size)
            if OFFSET.unpack_from(r)[0] != base + o + len(part):
                raise OctoError(f"TRAIN_LOAD_TARGETS: the board staged targets only up to byte "
                                f"{OFFSET.unpack_from(r)[0]}")

    def step(self, step: int, n: int, lr: float | None = None, *, timeout_s: float | None = None) -> StepResult:
        """TRAIN_STEP on staged samples 0..n-1; ``step`` must equal the board's step count. ``lr`` (optional)
        sets the learning rate for this and later steps (it becomes part of the state)."""
        payload = STEP_REQ.pack(step, n) + (STEP_LR.pack(lr) if lr is not None else b"")
        r = self._req(P.MSG_TRAIN_STEP, payload, want=STEP_RESP.size, timeout_s=timeout_s)
        step_after, loss, correct, n_done, ticks = STEP_RESP.unpack_from(r)
        return StepResult(step_after, float(loss), correct, n_done, ticks)

    def eval(self, n: int, *, timeout_s: float | None = None) -> EvalResult:
        """EVAL (forward only) on staged samples 0..n-1."""
        r = self._req(P.MSG_EVAL, EVAL_REQ.pack(n), want=EVAL_RESP.size, timeout_s=timeout_s)
        loss, correct, n_done, ticks = EVAL_RESP.unpack_from(r)
        if len(r) < EVAL_RESP.size + 5 * n_done:
            raise _short_reply("EVAL", len(r), EVAL_RESP.size + 5 * n_done)
        preds = np.frombuffer(r, np.uint8, n_done, EVAL_RESP.size).copy()
        losses = np.frombuffer(r, "<f4", n_done, EVAL_RESP.size + n_done).astype(np.float32)
        return EvalResult(float(loss), correct, n_done, ticks, preds, losses)

    def profile(self) -> list[tuple[int, int, int, int]]:
        """TRAIN_PROFILE: per layer (forward, weight grads, input grad, update) ticks of the last step or EVAL."""
        r = self._req(P.MSG_TRAIN_PROFILE, want=1)
        n = r[0]
        if len(r) < 1 + 16 * n:
            raise _short_reply("TRAIN_PROFILE", len(r), 1 + 16 * n)
        v = struct.unpack_from(f"<{4 * n}I", r, 1)
        return [(v[4 * i], v[4 * i + 1], v[4 * i + 2], v[4 * i + 3]) for i in range(n)]

    def get_state(self, total: int | None = None) -> bytes:
        """The whole state blob (GET_WEIGHTS in max_payload chunks)."""
        if total is None:
            total = self.info().state_bytes
        out = bytearray()
        while len(out) < total:
            n = min(self.max_payload, total - len(out), 0xFFFF)
            chunk = self._req(P.MSG_GET_WEIGHTS, GET_REQ.pack(len(out), n), expect_len=n)
            if len(chunk) != n:
                raise _short_reply("GET_WEIGHTS", len(chunk), n)
            out += chunk
        return bytes(out)

    def set_state(self, blob: bytes) -> int:
        """SET_WEIGHTS the blob in chunks, then COMMIT_WEIGHTS (length + CRC-32); returns the board's step.

        A CRC mismatch at COMMIT (OCTO_E_CRC) sends the blob once more.
        """
        try:
            return self._set_state_once(blob)
        except BoardError as exc:
            if exc.status != P.E_CRC:
                raise
            return self._set_state_once(blob)

    def _set_state_once(self, blob: bytes) -> int:
        step = self.max_payload - OFFSET.size
        for off in range(0, len(blob), step):
            chunk = blob[off : off + step]
            r = self._req(P.MSG_SET_WEIGHTS, OFFSET.pack(off) + chunk, want=OFFSET.size)
            (after,) = OFFSET.unpack_from(r)
            if after != off + len(chunk):
                raise OctoError(f"SET_WEIGHTS: the board is at offset {after}, expected {off + len(chunk)}")
        r = self._req(P.MSG_COMMIT_WEIGHTS, COMMIT_REQ.pack(len(blob), zlib.crc32(blob)), want=OFFSET.size,
                      timeout_s=FIRST_STEP_TIMEOUT_S)
        return int(OFFSET.unpack_from(r)[0])
