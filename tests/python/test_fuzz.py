"""Fuzzing the frame decoders: the C one (tests/c/fuzz_frame.c under ASan/UBSan) and protocol.FrameDecoder.

Both runs are seeded, so a failure reproduces exactly; both inject a valid frame after every damaged one and
require it to come through.
"""

from __future__ import annotations

import random
import re
import struct
import subprocess
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from converter import firmware_sources as fws
from host_tools.board import protocol as P

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [*fws.sources("link"), ROOT / "tests" / "c" / "fuzz_frame.c"]


# -- C harness -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("iterations", "seed"), [(200_000, 1), (50_000, 20240611)])
def test_c_decoder_and_engine_fuzz(host_cc: Callable[..., Path], iterations: int, seed: int) -> None:
    exe = host_cc("fuzz_frame", SOURCES)
    proc = subprocess.run([str(exe), str(iterations), str(seed)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stderr == ""
    line = proc.stdout.splitlines()[-1]
    assert line.startswith("fuzz: "), line
    stats = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}
    assert stats["iterations"] == iterations
    assert stats["failures"] == 0
    assert stats["delivered"] == stats["answered"] == iterations  # every injected frame survived
    for verdict in ("frames", "cobs", "crc", "short", "length", "too_long"):
        assert stats[verdict] > 0, f"the fuzzer never produced a {verdict} verdict: {line}"
    assert stats["bytes"] > 100 * iterations


# -- Python decoder --------------------------------------------------------------------------------------------

MAX_ENCODED = 600  # small, so over-long frames are easy to produce


def _frame(rng: random.Random, length_delta: int = 0, version: int = P.PROTO_VERSION, msg_type: int | None = None,
           good_crc: bool = True) -> bytes:
    n = rng.choice((0, rng.randrange(16), rng.randrange(240, 270), rng.randrange(560), rng.randrange(580, 595)))
    payload = bytes(0 if rng.random() < 0.2 else rng.randrange(256) for _ in range(n))
    msg_type = P.MSG_PING if msg_type is None else msg_type
    raw = struct.pack("<BBHH", version, msg_type, rng.randrange(0x10000), (n + length_delta) & 0xFFFF) + payload
    crc = zlib.crc32(raw) ^ (0 if good_crc else 1 << rng.randrange(32))
    return P.cobs_encode(raw + struct.pack("<I", crc)) + P.DELIM


def _mutate(rng: random.Random) -> tuple[str, bytes]:
    kind = rng.choice(("none", "bitflip", "truncate", "insert", "delete", "length", "version", "crc", "garbage",
                       "overlong", "zero split", "splice"))
    if kind == "length":
        return kind, _frame(rng, length_delta=rng.choice((-1, 1, -256, 256, 7)))
    if kind == "version":
        return kind, _frame(rng, version=rng.randrange(256), msg_type=rng.randrange(256))
    if kind == "crc":
        return kind, _frame(rng, good_crc=False)
    if kind == "garbage":
        return kind, bytes(0 if rng.random() < 0.1 else rng.randrange(256) for _ in range(rng.randrange(1, 300)))
    if kind == "overlong":
        return kind, bytes(rng.randrange(1, 256) for _ in range(MAX_ENCODED + rng.randrange(-2, 400))) + P.DELIM
    b = bytearray(_frame(rng))
    if kind == "bitflip":
        for _ in range(rng.randrange(1, 5)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        del b[rng.randrange(len(b)) :]
    elif kind == "insert":
        for _ in range(rng.randrange(1, 8)):
            b.insert(rng.randrange(len(b) + 1), rng.randrange(256))
    elif kind == "delete":
        for _ in range(rng.randrange(1, 4)):
            del b[rng.randrange(len(b))]
    elif kind == "zero split":
        b[rng.randrange(len(b))] = 0
    elif kind == "splice":
        other = _frame(rng)
        b = b[: rng.randrange(len(b))] + other[rng.randrange(len(other)) :]
    return kind, bytes(b)


def _expected(stream: bytes) -> list[object]:
    """What a decoder must yield for a stream ending in a delimiter: one verdict per non-empty piece."""
    out: list[object] = []
    for piece in stream.split(P.DELIM)[:-1]:
        if not piece:
            continue
        if len(piece) > MAX_ENCODED:
            out.append(P.E_FRAME_TOO_LONG)
            continue
        try:
            out.append(P.parse_frame(piece))
        except P.FrameError as exc:
            out.append(exc.status)
    return out


def _chunks(rng: random.Random, data: bytes) -> list[bytes]:
    cuts = sorted(rng.sample(range(len(data) + 1), min(len(data) + 1, rng.randrange(4))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def test_python_decoder_fuzz() -> None:
    rng = random.Random(7)
    dec = P.FrameDecoder(max_encoded=MAX_ENCODED)
    seen_status: set[int] = set()
    kinds: set[str] = set()
    for i in range(6000):
        kind, data = _mutate(rng)
        kinds.add(kind)
        good = P.encode_frame(P.MSG_PING, i % 0xFFFF + 1, rng.randbytes(rng.randrange(40)))
        stream = data + P.DELIM + good
        items: list[object] = []
        for chunk in _chunks(rng, stream):
            for item in dec.feed(chunk):  # must never raise
                assert isinstance(item, P.Frame | P.FrameError), item
                if isinstance(item, P.FrameError):
                    assert item.status in P.LINK_ERRORS, item.status
                    seen_status.add(item.status)
                    items.append(item.status)
                else:
                    items.append(item)
        # Each stream ends with a delimiter, so the decoder starts every iteration clean.
        assert items == _expected(stream), f"iteration {i} ({kind})"
        assert items[-1] == P.parse_frame(good[:-1]), f"iteration {i} ({kind}): the valid frame was lost"
    assert seen_status == set(P.LINK_ERRORS)
    assert len(kinds) == 12


def test_python_decoder_random_bytes_never_raise() -> None:
    rng = random.Random(8)
    dec = P.FrameDecoder(max_encoded=MAX_ENCODED)
    count = 0
    for _ in range(3000):
        data = rng.randbytes(rng.randrange(2000))
        for item in dec.feed(data):
            assert isinstance(item, P.Frame | P.FrameError)
            count += 1
    assert count > 1000
    assert list(dec.feed(P.DELIM + P.encode_frame(1, 1)))[-1:] == [P.Frame(1, 1, b"")]
