"""Running a converted model: natively (--target host) or on a board over serial."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from host_tools.board import protocol as P
from host_tools.board.boards import Board
from host_tools.errors import OctoError


@dataclass(frozen=True)
class LocalModel:
    """A folder written by `octo convert`."""

    path: Path
    report: dict
    fingerprint: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.report["input"]["shape"])

    @property
    def input_size(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def output_size(self) -> int:
        return int(np.prod(self.report["output"]["shape"]))

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Float inputs (NHWC, model units) -> int8 with the model's input parameters."""
        from converter.pipeline import quantize_inputs  # noqa: PLC0415

        want = tuple(self.input_shape[1:])
        if x.dtype == np.int8:
            raise OctoError("inputs must be float32 in model units ('x' in the .npz), not int8")
        if tuple(x.shape[1:]) != want:
            if x.ndim == len(want) and tuple(x.shape) == want:
                x = x[None, ...]
            else:
                raise OctoError(f"input has shape {tuple(x.shape)}; the model expects [N, {', '.join(map(str, want))}]")
        return quantize_inputs(x, self.report["input"]["scale"], self.report["input"]["zero_point"])

    def dequantize(self, y: np.ndarray) -> np.ndarray:
        o = self.report["output"]
        return (y.astype(np.float32) - o["zero_point"]) * np.float32(o["scale"])


def load_local_model(path: Path) -> LocalModel:
    import json  # noqa: PLC0415

    rep = path / "report.json"
    tfl = path / "model.tflite"
    if not rep.exists() or not tfl.exists() or not (path / "octo" / "model.c").exists():
        raise OctoError(f"{path} is not a converted model folder (needs report.json, model.tflite, octo/model.c)",
                        hint=f"run `octo convert <model> -o {path}`")
    return LocalModel(path, json.loads(rep.read_text()), zlib.crc32(tfl.read_bytes()))


def run_on_host(model: LocalModel, xq: np.ndarray) -> np.ndarray:
    from converter.hostbuild import build_host_runner, run_host  # noqa: PLC0415

    return run_host(build_host_runner(model.path / "octo"), xq, model.output_size)


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
        self.info = P.parse_model_info(client.request(P.MSG_MODEL_INFO))
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
