"""The inference service's messages (MODEL_INFO, SET_INPUT, INVOKE, GET_OUTPUT, INFER; docs/PROTOCOL.md): every
layout encoded and decoded here, as a session on a board that runs a converted model."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from host_tools.board import protocol as P
from host_tools.board.boards import Board
from host_tools.errors import OctoError
from host_tools.model.folder import LocalModel


class BoardSession:
    """Inference requests to a board that runs this model's firmware."""

    def __init__(self, client, model: LocalModel) -> None:
        self.client = client
        self.model = model
        hello = client.hello()
        if P.MSG_MODEL_INFO not in hello.messages:
            raise OctoError(f"the firmware on {client.port} has no model linked",
                            hint=f"build and flash it with this model: `octo flash --board {hello.board} "
                                 f"--model {model.path}`")
        self.info = parse_model_info(client.request(P.MSG_MODEL_INFO))
        if self.info.fingerprint != model.fingerprint:
            raise OctoError(f"the board runs model {self.info.name!r} (fingerprint 0x{self.info.fingerprint:08x}), "
                            f"not {model.path} (0x{model.fingerprint:08x})",
                            hint="rebuild and flash the firmware with this model")
        self.max_payload = hello.max_payload
        self.timer_hz = hello.timer_hz
        self.icount = "timer-icount" in hello.features

    def infer(self, xq_one: np.ndarray) -> np.ndarray:
        data = np.ascontiguousarray(xq_one, np.int8).tobytes()
        if len(data) != self.info.input_bytes:
            raise OctoError(f"input has {len(data)} bytes, the board's model takes {self.info.input_bytes}")
        if len(data) <= self.max_payload and self.info.output_bytes <= self.max_payload:
            out = self.client.request(P.MSG_INFER, data)
        else:
            self._set_input(data)
            self.client.request(P.MSG_INVOKE, timeout_s=60.0)
            out = self._get_output()
        return np.frombuffer(out, np.int8).copy()

    def invoke_timed(self, xq_one: np.ndarray) -> tuple[int, list[int]]:
        """Run once; returns (total ticks, per-layer ticks)."""
        self._set_input(np.ascontiguousarray(xq_one, np.int8).tobytes())
        payload = self.client.request(P.MSG_INVOKE, timeout_s=120.0)
        lo, hi, n = struct.unpack_from("<III", payload)
        ticks = list(struct.unpack_from(f"<{n}I", payload, 12))
        return lo | (hi << 32), ticks

    def read_output(self) -> np.ndarray:
        """The output tensor of the last run."""
        return np.frombuffer(self._get_output(), np.int8).copy()

    def _set_input(self, data: bytes) -> None:
        step = self.max_payload - 4
        for off in range(0, len(data), step):
            self.client.request(P.MSG_SET_INPUT, struct.pack("<I", off) + data[off : off + step])

    def _get_output(self) -> bytes:
        out = b""
        while len(out) < self.info.output_bytes:
            n = min(self.max_payload, self.info.output_bytes - len(out))
            out += self.client.request(P.MSG_GET_OUTPUT, struct.pack("<IH", len(out), n))
        return out


@contextmanager
def board_session(board: Board, model: LocalModel, port: str | None = None, *,
                  say: Callable[[str], None] = print) -> Iterator[BoardSession]:
    """Virtual board: build firmware with the model, boot QEMU, connect. Real board: connect to port."""
    from host_tools.board.target import open_model_client  # noqa: PLC0415

    with open_model_client(board, model.path, port, say=say) as client:
        yield BoardSession(client, model)


@dataclass(frozen=True)
class ModelInfo:
    """MODEL_INFO response: the model linked into the firmware."""

    name: str
    fingerprint: int
    arena_bytes: int
    input_bytes: int
    output_bytes: int
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int
    n_layers: int
    layers: tuple[tuple[str, str, int], ...]  # (op, name, macs) for the layers that fit the reply


MODEL_INFO_FIXED = struct.Struct("<IIIfiifIIII")


def parse_model_info(payload: bytes) -> ModelInfo:
    if len(payload) < MODEL_INFO_FIXED.size:
        raise ValueError(f"MODEL_INFO payload of {len(payload)} bytes is shorter than {MODEL_INFO_FIXED.size}")
    (arena, in_b, out_b, in_s, in_zp, out_s, out_zp, n_layers, _reserved, listed,
     fingerprint) = MODEL_INFO_FIXED.unpack_from(payload)
    pos = MODEL_INFO_FIXED.size
    name, pos = P.take_str(payload, pos)
    layers = []
    for _ in range(listed):
        if pos + 4 > len(payload):
            raise ValueError("MODEL_INFO layer list truncated")
        (macs,) = struct.unpack_from("<I", payload, pos)
        op, pos = P.take_str(payload, pos + 4)
        lname, pos = P.take_str(payload, pos)
        layers.append((op, lname, macs))
    return ModelInfo(name, fingerprint, arena, in_b, out_b, in_s, in_zp, out_s, out_zp, n_layers, tuple(layers))
