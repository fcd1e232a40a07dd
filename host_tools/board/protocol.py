"""Octo serial protocol: framing and message payloads, no I/O.

Wire format (docs/PROTOCOL.md): a raw frame is
``version u8 | type u8 | req_id u16 | length u16 | payload | crc32 u32``
(little-endian, CRC-32 as ``zlib.crc32`` over everything before it),
COBS-encoded and terminated by one 0x00 byte. This module is the single
Python implementation of the framing, the message and status tables and the
core messages (HELLO, PING, TELEMETRY, ERROR); each service's payloads are
encoded and decoded in host_tools/services/. The C side lives in the
firmware's link folder.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

PROTO_VERSION = 1
HEADER = struct.Struct("<BBHH")
HEADER_LEN = HEADER.size
CRC_LEN = 4
OVERHEAD = HEADER_LEN + CRC_LEN
DELIM = b"\x00"
MAX_PAYLOAD_LIMIT = 0xFFFF

# Message types (requests); a response is ``type | RESPONSE_BIT``.
MSG_HELLO = 0x01
MSG_PING = 0x02
MSG_TELEMETRY_CTRL = 0x03
MSG_MODEL_INFO = 0x10
MSG_SET_INPUT = 0x11
MSG_INVOKE = 0x12
MSG_GET_OUTPUT = 0x13
MSG_INFER = 0x14
MSG_TRAIN_INFO = 0x20       # training service (docs/TRAINING.md), firmware built with OCTO_WITH_TRAIN
MSG_TRAIN_INIT = 0x21
MSG_TRAIN_LOAD = 0x22
MSG_TRAIN_STEP = 0x23
MSG_EVAL = 0x24
MSG_GET_WEIGHTS = 0x25
MSG_SET_WEIGHTS = 0x26
MSG_COMMIT_WEIGHTS = 0x27
MSG_TRAIN_PROFILE = 0x28
MSG_TRAIN_LOAD_PART = 0x29
MSG_TRAIN_LOAD_TARGETS = 0x2A  # MSE with targets: int8 targets of the batch
MSG_COLLAB_FORWARD = 0x30   # split learning (docs/SGQ.md section 8), split training builds only
MSG_COLLAB_READ = 0x31
MSG_COLLAB_WRITE = 0x32
MSG_COLLAB_BACKWARD = 0x33
MSG_PASS_INFO = 0x40        # PASS video (docs/PASS.md), firmware built with a pass_model.c
MSG_FRAME_DATA = 0x41
MSG_FRAME = 0x42
MSG_FRAME_RESET = 0x43
MSG_TELEMETRY = 0x70
MSG_ERROR = 0x7F
RESPONSE_BIT = 0x80

MESSAGE_NAMES = {
    MSG_HELLO: "HELLO",
    MSG_PING: "PING",
    MSG_TELEMETRY_CTRL: "TELEMETRY_CTRL",
    MSG_MODEL_INFO: "MODEL_INFO",
    MSG_SET_INPUT: "SET_INPUT",
    MSG_INVOKE: "INVOKE",
    MSG_GET_OUTPUT: "GET_OUTPUT",
    MSG_INFER: "INFER",
    MSG_TRAIN_INFO: "TRAIN_INFO",
    MSG_TRAIN_INIT: "TRAIN_INIT",
    MSG_TRAIN_LOAD: "TRAIN_LOAD",
    MSG_TRAIN_STEP: "TRAIN_STEP",
    MSG_EVAL: "EVAL",
    MSG_GET_WEIGHTS: "GET_WEIGHTS",
    MSG_SET_WEIGHTS: "SET_WEIGHTS",
    MSG_COMMIT_WEIGHTS: "COMMIT_WEIGHTS",
    MSG_TRAIN_PROFILE: "TRAIN_PROFILE",
    MSG_TRAIN_LOAD_PART: "TRAIN_LOAD_PART",
    MSG_TRAIN_LOAD_TARGETS: "TRAIN_LOAD_TARGETS",
    MSG_COLLAB_FORWARD: "COLLAB_FORWARD",
    MSG_COLLAB_READ: "COLLAB_READ",
    MSG_COLLAB_WRITE: "COLLAB_WRITE",
    MSG_COLLAB_BACKWARD: "COLLAB_BACKWARD",
    MSG_PASS_INFO: "PASS_INFO",
    MSG_FRAME_DATA: "FRAME_DATA",
    MSG_FRAME: "FRAME",
    MSG_FRAME_RESET: "FRAME_RESET",
    MSG_TELEMETRY: "TELEMETRY",
    MSG_ERROR: "ERROR",
}

# Status codes of firmware/include/octo/octo_status.h (values are wire format).
STATUS_NAMES = {
    0: "OCTO_OK",
    -1: "OCTO_E_ARG",
    -2: "OCTO_E_BUF",
    -3: "OCTO_E_CRC",
    -4: "OCTO_E_COBS",
    -5: "OCTO_E_FRAME_TOO_LONG",
    -6: "OCTO_E_FRAME_SHORT",
    -7: "OCTO_E_FRAME_LENGTH",
    -8: "OCTO_E_VERSION",
    -9: "OCTO_E_UNSUPPORTED",
    -10: "OCTO_E_PAYLOAD",
    -11: "OCTO_E_STATE",
    -12: "OCTO_E_NOMEM",
    -13: "OCTO_E_DIVERGED",
    # octo_sgq.h: the SGQ decoder's verdicts (COLLAB_BACKWARD on a rejected gradient payload)
    -32: "OCTO_SGQ_E_SHORT",
    -33: "OCTO_SGQ_E_MAGIC",
    -34: "OCTO_SGQ_E_VERSION",
    -35: "OCTO_SGQ_E_HEADER",
    -36: "OCTO_SGQ_E_SHAPE",
    -37: "OCTO_SGQ_E_LENGTH",
    -38: "OCTO_SGQ_E_GROUPS",
    -39: "OCTO_SGQ_E_RANGE",
    -40: "OCTO_SGQ_E_CODE",
}
E_CRC = -3
E_COBS = -4
E_FRAME_TOO_LONG = -5
E_FRAME_SHORT = -6
E_FRAME_LENGTH = -7
E_STATE = -11  # e.g. TRAIN_STEP "step mismatch", training state invalid
E_DIVERGED = -13  # training diverged: loss, activations or gradients not finite (never recovered by a replay)
LINK_ERRORS = frozenset({E_CRC, E_COBS, E_FRAME_TOO_LONG, E_FRAME_SHORT, E_FRAME_LENGTH})

FEATURE_NAMES = {
    1 << 0: "dsp",
    1 << 1: "fpu",
    1 << 2: "mve",
    1 << 3: "timer-icount",
    1 << 4: "semihosting",
    1 << 5: "storage",
}


class FrameError(ValueError):
    """A received frame was malformed; ``status`` is the matching C code."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def cobs_max_len(n: int) -> int:
    """Worst-case COBS length of ``n`` bytes (mirrors OCTO_COBS_MAX_LEN)."""
    return n + n // 254 + 1


def cobs_encode(data: bytes) -> bytes:
    """COBS-encode ``data`` (no delimiter), byte-identical to octo_cobs_encode."""
    out = bytearray()
    block = bytearray()
    n = len(data)
    for i, b in enumerate(data):
        if b == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
            continue
        block.append(b)
        if len(block) == 254:
            out.append(255)
            out += block
            block.clear()
            if i + 1 == n:  # a full final block needs no trailing code byte
                return bytes(out)
    out.append(len(block) + 1)
    out += block
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Decode COBS ``data`` (no delimiter); raises FrameError(E_COBS)."""
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        i += 1
        if code == 0:
            raise FrameError(E_COBS, "COBS: zero byte inside a frame")
        run = code - 1
        if run > n - i:
            raise FrameError(E_COBS, "COBS: block runs past the end of the frame")
        chunk = data[i : i + run]
        if 0 in chunk:
            raise FrameError(E_COBS, "COBS: zero byte inside a frame")
        out += chunk
        i += run
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


@dataclass(frozen=True)
class Frame:
    """One decoded frame."""

    type: int
    req_id: int
    payload: bytes
    version: int = PROTO_VERSION

    @property
    def is_response(self) -> bool:
        return bool(self.type & RESPONSE_BIT)


def encode_frame(msg_type: int, req_id: int, payload: bytes = b"", version: int = PROTO_VERSION) -> bytes:
    """Wire bytes (COBS + delimiter) for one frame."""
    if not 0 <= msg_type <= 0xFF or not 0 <= req_id <= 0xFFFF:
        raise ValueError(f"message type {msg_type} or request id {req_id} out of range")
    if len(payload) > MAX_PAYLOAD_LIMIT:
        raise ValueError(f"payload of {len(payload)} bytes exceeds the 65535-byte frame limit")
    raw = HEADER.pack(version, msg_type, req_id, len(payload)) + bytes(payload)
    raw += struct.pack("<I", zlib.crc32(raw))
    return cobs_encode(raw) + DELIM


def parse_frame(encoded: bytes) -> Frame:
    """Parse one COBS-encoded frame without its delimiter (checks CRC/length)."""
    raw = cobs_decode(encoded)
    if len(raw) < OVERHEAD:
        raise FrameError(E_FRAME_SHORT, f"frame of {len(raw)} bytes is shorter than header + CRC")
    version, msg_type, req_id, length = HEADER.unpack_from(raw)
    if length != len(raw) - OVERHEAD:
        raise FrameError(E_FRAME_LENGTH, f"header says {length} payload bytes, frame has {len(raw) - OVERHEAD}")
    (crc,) = struct.unpack_from("<I", raw, HEADER_LEN + length)
    if crc != zlib.crc32(raw[: HEADER_LEN + length]):
        raise FrameError(E_CRC, "frame CRC mismatch")
    return Frame(msg_type, req_id, raw[HEADER_LEN : HEADER_LEN + length], version)


@dataclass
class FrameDecoder:
    """Streaming decoder: feed bytes, get frames or FrameErrors, never raises."""

    max_encoded: int = cobs_max_len(MAX_PAYLOAD_LIMIT + OVERHEAD)
    _buf: bytearray = field(default_factory=bytearray)
    _overflow: bool = False

    def feed(self, data: bytes) -> Iterator[Frame | FrameError]:
        start = 0
        while True:
            end = data.find(0, start)
            if end < 0:
                self._append(data[start:])
                return
            self._append(data[start:end])
            buf, overflow = self._buf, self._overflow
            self._buf, self._overflow = bytearray(), False
            if overflow:
                yield FrameError(E_FRAME_TOO_LONG, f"frame longer than {self.max_encoded} bytes")
            elif buf:
                try:
                    yield parse_frame(bytes(buf))
                except FrameError as exc:
                    yield exc
            start = end + 1

    def _append(self, chunk: bytes) -> None:
        if self._overflow or not chunk:
            return
        if len(self._buf) + len(chunk) > self.max_encoded:
            self._overflow = True
            self._buf.clear()
        else:
            self._buf += chunk


@dataclass(frozen=True)
class Hello:
    """HELLO response: who the board is and what it can do."""

    proto_version: int
    fw_version: str
    max_payload: int
    features: tuple[str, ...]
    cpu_hz: int
    timer_hz: int
    sram_bytes: int
    flash_bytes: int
    ram_used: int
    flash_used: int
    cpuid: int
    board: str
    cpu: str
    build: str
    messages: tuple[int, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "board": self.board,
            "cpu": self.cpu,
            "cpuid": f"0x{self.cpuid:08x}",
            "cpu_hz": self.cpu_hz,
            "timer_hz": self.timer_hz,
            "fw_version": self.fw_version,
            "proto_version": self.proto_version,
            "build": self.build,
            "max_payload": self.max_payload,
            "features": list(self.features),
            "sram_bytes": self.sram_bytes,
            "flash_bytes": self.flash_bytes,
            "ram_used": self.ram_used,
            "flash_used": self.flash_used,
            "messages": [MESSAGE_NAMES.get(m, f"0x{m:02x}") for m in self.messages],
        }


HELLO_FIXED = struct.Struct("<BBBBHHIIIIIIII")


def take_str(buf: bytes, pos: int) -> tuple[str, int]:
    if pos >= len(buf):
        raise ValueError("payload truncated inside a string")
    n = buf[pos]
    if pos + 1 + n > len(buf):
        raise ValueError("payload truncated inside a string")
    return buf[pos + 1 : pos + 1 + n].decode("utf-8", "replace"), pos + 1 + n


def parse_hello(payload: bytes) -> Hello:
    if len(payload) < HELLO_FIXED.size:
        raise ValueError(f"HELLO payload of {len(payload)} bytes is shorter than {HELLO_FIXED.size}")
    (proto, major, minor, patch, max_payload, _res, features, cpu_hz, timer_hz, sram, flash, ram_used,
     flash_used, cpuid) = HELLO_FIXED.unpack_from(payload)
    pos = HELLO_FIXED.size
    board, pos = take_str(payload, pos)
    cpu, pos = take_str(payload, pos)
    build, pos = take_str(payload, pos)
    if pos >= len(payload) or pos + 1 + payload[pos] > len(payload):
        raise ValueError("HELLO payload truncated")
    messages = tuple(payload[pos + 1 : pos + 1 + payload[pos]])
    feats = tuple(name for bit, name in sorted(FEATURE_NAMES.items()) if features & bit)
    return Hello(proto, f"{major}.{minor}.{patch}", max_payload, feats, cpu_hz, timer_hz, sram, flash,
                 ram_used, flash_used, cpuid, board, cpu, build, messages)


@dataclass(frozen=True)
class BoardError:
    """ERROR frame payload."""

    status: int
    req_type: int
    text: str

    @property
    def status_name(self) -> str:
        return STATUS_NAMES.get(self.status, f"status {self.status}")


def parse_error(payload: bytes) -> BoardError:
    if len(payload) < 4:
        raise ValueError("ERROR payload truncated")
    status, req_type, n = struct.unpack_from("<hBB", payload)
    return BoardError(status, req_type, payload[4 : 4 + n].decode("utf-8", "replace"))


def parse_telemetry(payload: bytes) -> dict[str, int | float]:
    """TELEMETRY payload -> {"seq": n, name: value, ...}."""
    if len(payload) < 4:
        raise ValueError("TELEMETRY payload truncated")
    out: dict[str, int | float] = {"seq": struct.unpack_from("<I", payload)[0]}
    pos = 4
    while pos < len(payload):
        n = payload[pos]
        if pos + 1 + n + 5 > len(payload):
            raise ValueError("TELEMETRY entry truncated")
        name = payload[pos + 1 : pos + 1 + n].decode("ascii", "replace")
        kind = chr(payload[pos + 1 + n])
        raw = payload[pos + 2 + n : pos + 6 + n]
        if kind == "u":
            out[name] = struct.unpack("<I", raw)[0]
        elif kind == "i":
            out[name] = struct.unpack("<i", raw)[0]
        elif kind == "f":
            out[name] = struct.unpack("<f", raw)[0]
        else:
            raise ValueError(f"TELEMETRY entry {name!r} has unknown kind {kind!r}")
        pos += 6 + n
    return out


