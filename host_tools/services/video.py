"""The PASS video service's messages (PASS_INFO, FRAME_DATA, FRAME, FRAME_RESET, docs/PASS.md): every layout
encoded and decoded here. Streaming and summaries: host_tools/video/run.py."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from host_tools.board import protocol as P
from host_tools.errors import OctoError

if TYPE_CHECKING:
    from host_tools.video.run import PassModelDir

MODES = {"auto": 0, "dense": 1, "exact": 2}
KINDS = {1: "CONV_2D", 2: "MAX_POOL_2D", 3: "AVERAGE_POOL_2D"}


@dataclass
class LayerInfo:
    kind: str
    name: str
    gated: bool
    patch: int
    sample: int
    in_hwc: tuple[int, int, int]
    out_hwc: tuple[int, int, int]
    macs: int

    @property
    def grid(self) -> tuple[int, int]:
        p = max(self.patch, 1)
        return -(-self.in_hwc[0] // p), -(-self.in_hwc[1] // p)


@dataclass
class PassInfo:
    state_bytes: int
    input_bytes: int
    output_bytes: int
    output_scale: float
    output_zero_point: int
    cut_permille: int
    fingerprint: int
    frames: int
    name: str
    layers: list[LayerInfo] = field(default_factory=list)


def parse_pass_info(b: bytes) -> PassInfo:
    if len(b) < 41:
        raise OctoError(f"PASS_INFO reply of {len(b)} bytes is too short")
    state, inb, outb = struct.unpack_from("<III", b, 0)
    (scale,) = struct.unpack_from("<f", b, 12)
    zp, cut, fp, n, frames, _max = struct.unpack_from("<iIIIII", b, 16)
    pos = 40
    name, pos = _str(b, pos)
    info = PassInfo(state, inb, outb, scale, zp, cut, fp, frames, name)
    for _ in range(n):
        if pos + 24 > len(b):
            raise OctoError("PASS_INFO reply is truncated")
        kind, gated, patch, sample, ih, iw, ic, oh, ow, oc, _r, macs = struct.unpack_from("<BBHHHHHHHHHI", b, pos)
        pos += 24
        lname, pos = _str(b, pos)
        info.layers.append(LayerInfo(KINDS.get(kind, f"kind{kind}"), lname, bool(gated), patch, sample,
                                     (ih, iw, ic), (oh, ow, oc), macs))
    return info


def _str(b: bytes, pos: int) -> tuple[str, int]:
    n = b[pos]
    return b[pos + 1 : pos + 1 + n].decode("ascii", "replace"), pos + 1 + n


@dataclass
class FrameResult:
    output: np.ndarray            # int8 [output_bytes]
    ticks: int
    dense: bool = False
    layer_ticks: list[int] = field(default_factory=list)
    gate_ticks: list[int] = field(default_factory=list)
    out_pixels: list[int] = field(default_factory=list)
    patches_changed: list[int] = field(default_factory=list)
    patches_checked: list[int] = field(default_factory=list)
    gate_elements: list[int] = field(default_factory=list)
    macs: list[int] = field(default_factory=list)
    gate_maps: dict[int, np.ndarray] = field(default_factory=dict)  # layer index -> uint8 [gh, gw]


class PassSession:
    """FRAME requests to a board whose firmware links a PASS model."""

    def __init__(self, client: Any, model: PassModelDir) -> None:
        self.client = client
        hello = client.hello()
        if P.MSG_FRAME not in hello.messages:
            raise OctoError(f"the firmware on {client.port} has no PASS model linked",
                            hint=f"build it with this model: `octo build --board {hello.board} --model {model.path}`")
        self.info = parse_pass_info(client.request(P.MSG_PASS_INFO))
        if self.info.fingerprint != model.fingerprint:
            raise OctoError(f"the board runs PASS model {self.info.name!r} (fingerprint 0x{self.info.fingerprint:08x}),"
                            f" not {model.path} (0x{model.fingerprint:08x})", hint="rebuild the firmware")
        self.max_payload = hello.max_payload
        self.timer_hz = hello.timer_hz
        self.icount = "timer-icount" in hello.features

    def reset(self) -> None:
        self.client.request(P.MSG_FRAME_RESET)

    def frame(self, xq: np.ndarray, mode: str = "auto") -> FrameResult:
        data = np.ascontiguousarray(xq, np.int8).tobytes()
        if len(data) != self.info.input_bytes:
            raise OctoError(f"frame has {len(data)} bytes; the board's model takes {self.info.input_bytes}")
        step = self.max_payload - 4
        for off in range(0, len(data), step):
            self.client.request(P.MSG_FRAME_DATA, struct.pack("<I", off) + data[off : off + step])
        b = self.client.request(P.MSG_FRAME, bytes([MODES[mode]]), timeout_s=120.0)
        return self._parse(b)

    def _parse(self, b: bytes) -> FrameResult:
        dense, _mode, n = struct.unpack_from("<BBH", b, 0)
        _frames, lo, hi = struct.unpack_from("<III", b, 4)
        if n != len(self.info.layers):
            raise OctoError(f"FRAME reply lists {n} layers; PASS_INFO said {len(self.info.layers)}")
        r = FrameResult(np.zeros(0, np.int8), lo | (hi << 32), bool(dense))
        pos = 16
        for _ in range(n):
            t, gt, px, ch, ck, ge, mlo, mhi = struct.unpack_from("<8I", b, pos)
            pos += 32
            r.layer_ticks.append(t)
            r.gate_ticks.append(gt)
            r.out_pixels.append(px)
            r.patches_changed.append(ch)
            r.patches_checked.append(ck)
            r.gate_elements.append(ge)
            r.macs.append(mlo | (mhi << 32))
        r.output = np.frombuffer(b, np.int8, self.info.output_bytes, pos).copy()
        pos += self.info.output_bytes
        for i, ly in enumerate(self.info.layers):
            if not ly.gated:
                continue
            gh, gw = ly.grid
            nb = (gh * gw + 7) // 8
            bits = np.unpackbits(np.frombuffer(b, np.uint8, nb, pos), bitorder="little")[: gh * gw]
            r.gate_maps[i] = bits.reshape(gh, gw)
            pos += nb
        if pos != len(b):
            raise OctoError(f"FRAME reply has {len(b) - pos} unexpected trailing bytes")
        return r
