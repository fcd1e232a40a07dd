"""The split-learning service's messages (COLLAB_FORWARD/READ/WRITE/BACKWARD, docs/SGQ.md section 8): every
layout encoded and decoded here, with the codec settings they carry. Orchestration: host_tools/collab/run.py."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from host_tools.board import protocol as P
from host_tools.errors import OctoError
from host_tools.services.training import FIRST_STEP_TIMEOUT_S, TrainSession

if TYPE_CHECKING:
    from host_tools.sgq.codec import Fp32Codec, SgqCodec


FWD_REQ = struct.Struct("<IHBBBBBBBB")   # step, n, mode, codec, bits, groups, stripe_h, stripe_w, flags, 0
FWD_RESP = struct.Struct("<IfII")        # payload_len, feature scale, forward ticks, encode ticks
READ_REQ = struct.Struct("<IHB")         # offset, length, source
WRITE_HEAD = struct.Struct("<I")         # offset (then bytes); reply u32 offset_after
BWD_REQ = struct.Struct("<IIf")          # step, payload length, lr
BWD_RESP = struct.Struct("<IfII")        # step_after, dy scale, decode ticks, backward ticks
CODEC_SGQ, CODEC_FP32 = 0, 1             # COLLAB_FORWARD codec byte ("uniform" is SGQ with one range)
SRC_PAYLOAD, SRC_FEATURES = 0, 1         # COLLAB_READ source byte
FLAG_SHARED = 1                          # COLLAB_FORWARD flags bit 0: one set of ranges for the whole payload
FLAG_CLIP = 2                            # bit 1: clipped ranges, the bit width's alpha (OCTO_SGQ_CLIP_ALPHA8)
FLAG_RC = 4                              # bit 2: range-coded codes where shorter (octo_sgq_params_t.entropy)
CODEC_NAMES = ("sgq", "uniform", "fp32")
DIRECTIONS = ("up", "down")              # up = board -> cloud (features), down = cloud -> board (gradients)


@dataclass(frozen=True)
class CodecSpec:
    """A codec setting: "sgq" (groups x stripes), "uniform" (SGQ's format with one range per payload) or
    "fp32" (raw float32). Features: range AUTO, round to nearest; gradients: SYMMETRIC, gradient_rounding.
    `clip`: clipped ranges in both directions, each with its bit width's alpha (sgq.CLIP_ALPHA8).
    `entropy`: both directions range-code their codes where that is shorter (lossless, docs/SGQ.md)."""

    name: str = "sgq"
    bits: int = 4
    groups: int = 4
    stripe: tuple[int, int] = (2, 0)     # rows x columns, 0 = the full height/width
    gradient_rounding: str = "nearest"   # "nearest" | "stochastic"
    gradient_bits: int | None = None     # the gradients' code width when it differs from the features' (sgq/uniform)
    clip: bool = False                   # clipped ranges (sgq/uniform)
    entropy: bool = False                # range-coded codes (sgq/uniform)

    def __post_init__(self) -> None:
        if self.name not in CODEC_NAMES:
            raise OctoError(f"--codec {self.name!r}: use {', '.join(CODEC_NAMES)}")
        if self.name != "fp32" and self.bits not in (2, 4, 8):
            raise OctoError(f"--bits {self.bits}: {self.name} quantizes to 2, 4 or 8 bits")
        if not 1 <= self.groups <= 255:
            raise OctoError(f"--groups {self.groups}: use 1..255 (capped at the channel count)")
        if not all(0 <= s <= 255 for s in self.stripe):
            raise OctoError(f"--stripe {self.stripe[0]}x{self.stripe[1]}: rows and columns must be 0..255")
        if self.gradient_rounding not in ("nearest", "stochastic"):
            raise OctoError(f"gradient rounding {self.gradient_rounding!r}: use nearest or stochastic")
        if self.gradient_bits is not None and (self.name == "fp32" or self.gradient_bits not in (2, 4, 8)):
            raise OctoError(f"--gradient-bits {self.gradient_bits}: sgq and uniform gradients take 2, 4 or 8 bits")
        if self.clip and self.name == "fp32":
            raise OctoError("--clip: fp32 has no ranges to clip", hint="use it with --codec sgq or uniform")
        if self.entropy and self.name == "fp32":
            raise OctoError("--entropy: fp32 has no codes to range-code", hint="use it with --codec sgq or uniform")

    @property
    def label(self) -> str:
        if self.name == "fp32":
            return "fp32"
        gb = self.gradient_bits
        return (f"{self.name}{self.bits}" + (f"-g{gb}" if gb is not None and gb != self.bits else "")
                + ("-clip" if self.clip else "") + ("-rc" if self.entropy else ""))

    def host_codec(self, seed: int = 0, *, gradients: bool = False) -> Fp32Codec | SgqCodec:
        """The host twin (host_tools/sgq/codec.py) of the features' codec, or with gradients=True of the gradients'
        (gradient_bits); `seed` drives stochastic rounding of gradients."""
        from host_tools.sgq.codec import make_codec  # noqa: PLC0415

        bits = self.bits if self.name != "fp32" else 4
        if gradients and self.gradient_bits is not None:
            bits = self.gradient_bits
        return make_codec(self.name, bits, groups=self.groups, stripe=self.stripe,
                          gradient_rounding=self.gradient_rounding, seed=seed, clip=self.clip,
                          entropy=self.entropy)

    def device_fields(self, shape: tuple[int, int, int, int]) -> tuple[int, int, int, int, int, int]:
        """(codec, bits, groups, stripe_h, stripe_w, flags) of COLLAB_FORWARD for a payload of `shape`: the
        settings resolved exactly as the host codec resolves them, so both ends write the same bytes."""
        if self.name == "fp32":
            return CODEC_FP32, 0, 0, 0, 0, 0
        from host_tools.sgq.codec import RANGE_AUTO, ROUND_NEAREST  # noqa: PLC0415

        codec = self.host_codec()
        p = codec.params(shape, RANGE_AUTO, ROUND_NEAREST, 0)  # type: ignore[union-attr]
        flags = (FLAG_SHARED if p.shared else 0) | (FLAG_CLIP if self.clip else 0) | (FLAG_RC if self.entropy else 0)
        return CODEC_SGQ, p.bits, p.groups, p.stripe_h, p.stripe_w, flags

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "bits": 32 if self.name == "fp32" else self.bits}
        if self.gradient_bits is not None and self.name != "fp32":
            d["gradient_bits"] = self.gradient_bits
        if self.name == "sgq":
            d.update(groups=self.groups, stripe_h=self.stripe[0], stripe_w=self.stripe[1])
        d["gradient_rounding"] = self.gradient_rounding
        if self.clip:
            d["clip"] = True
        if self.entropy:
            d["entropy"] = True
        return d


def fp32_payload_bytes(n: int, elems: int) -> int:
    """Bytes of the fp32 payload of n samples of `elems` values (the baseline every ratio refers to)."""
    from host_tools.sgq.codec import FP32_HEADER_LEN  # noqa: PLC0415

    return FP32_HEADER_LEN + 4 * n * elems


@dataclass(frozen=True)
class ForwardResult:
    payload_len: int
    scale: float          # the device's int8 feature scale (real = q * scale)
    forward_ticks: int
    encode_ticks: int


@dataclass(frozen=True)
class BackwardResult:
    step_after: int
    dy_scale: float       # the int8 gradient scale the board decoded
    decode_ticks: int
    backward_ticks: int


@dataclass
class WireCount:
    """Link bytes of the counted COLLAB_* exchanges (frames, COBS and delimiters included)."""

    up: int = 0           # board -> host
    down: int = 0         # host -> board

    def add(self, other: WireCount) -> None:
        self.up += other.up
        self.down += other.down


class CollabSession(TrainSession):
    """TrainSession + the COLLAB_* messages of a split build. Every counted exchange (forward, payload
    reads, writes, backward) adds its link bytes per direction to ``self.wire``; reads of the raw
    features (a measurement, not part of the protocol's traffic) are not counted."""

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self.wire = WireCount()

    def _counted(self, msg_type: int, payload: bytes, *, timeout_s: float | None = None,
                 expect_len: int | None = None, want: int | None = None) -> bytes:
        c = getattr(self.client, "counters", None)
        sent0, recv0 = (c.bytes_sent, c.bytes_received) if c is not None else (0, 0)
        try:
            return self._req(msg_type, payload, timeout_s=timeout_s, expect_len=expect_len, want=want)
        finally:
            if c is not None:
                self.wire.down += c.bytes_sent - sent0
                self.wire.up += c.bytes_received - recv0

    def forward(self, step: int, n: int, train: bool, spec: CodecSpec,
                split_shape: Sequence[int]) -> ForwardResult:
        """COLLAB_FORWARD: forward of staged samples 0..n-1 (train: stochastic rounding, a backward must
        follow; else evaluation) and encoding of the split features into the board's payload area."""
        h, w, c = (int(v) for v in split_shape)
        codec, bits, groups, sh, sw, flags = spec.device_fields((n, h, w, c))
        req = FWD_REQ.pack(step & 0xFFFFFFFF, n, int(train), codec, bits, groups, sh, sw, flags, 0)
        r = self._counted(P.MSG_COLLAB_FORWARD, req, want=FWD_RESP.size, timeout_s=FIRST_STEP_TIMEOUT_S)
        length, scale, fwd, enc = FWD_RESP.unpack_from(r)
        return ForwardResult(length, float(scale), fwd, enc)

    def _read(self, length: int, source: int, counted: bool) -> bytes:
        out = bytearray()
        while len(out) < length:
            n = min(self.max_payload, length - len(out), 0xFFFF)
            req = READ_REQ.pack(len(out), n, source)
            chunk = (self._counted(P.MSG_COLLAB_READ, req, expect_len=n) if counted
                     else self._req(P.MSG_COLLAB_READ, req, expect_len=n))
            if len(chunk) != n:
                raise OctoError(f"COLLAB_READ: the board sent {len(chunk)} bytes, expected {n}")
            out += chunk
        return bytes(out)

    def read_payload(self, length: int) -> bytes:
        """The encoded features of the last forward (COLLAB_READ, counted)."""
        return self._read(length, SRC_PAYLOAD, True)

    def read_features(self, n: int, split_shape: Sequence[int]) -> np.ndarray:
        """The exact int8 features of the last forward [n,H,W,C] (a measurement read, not counted)."""
        h, w, c = (int(v) for v in split_shape)
        raw = self._read(n * h * w * c, SRC_FEATURES, False)
        return np.frombuffer(raw, np.int8).reshape(n, h, w, c).copy()

    def write_payload(self, payload: bytes) -> None:
        """The gradient payload into the board's payload area (COLLAB_WRITE chunks, counted)."""
        step = self.max_payload - WRITE_HEAD.size
        for off in range(0, len(payload), step):
            chunk = payload[off : off + step]
            r = self._counted(P.MSG_COLLAB_WRITE, WRITE_HEAD.pack(off) + chunk, want=WRITE_HEAD.size)
            (after,) = WRITE_HEAD.unpack_from(r)
            if after != off + len(chunk):
                raise OctoError(f"COLLAB_WRITE: the board is at offset {after}, expected {off + len(chunk)}")

    def backward(self, step: int, length: int, lr: float) -> BackwardResult:
        """COLLAB_BACKWARD: decode the payload written (length bytes) and train on it with rate lr."""
        r = self._counted(P.MSG_COLLAB_BACKWARD, BWD_REQ.pack(step & 0xFFFFFFFF, length, lr),
                          want=BWD_RESP.size, timeout_s=FIRST_STEP_TIMEOUT_S)
        after, dy_scale, dec, bwd = BWD_RESP.unpack_from(r)
        return BackwardResult(after, float(dy_scale), dec, bwd)
