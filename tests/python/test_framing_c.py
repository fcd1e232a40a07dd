"""C framing code: its unit tests (tests/c/test_frame.c) and byte identity with host_tools/board/protocol.py.

tests/c/frame_tool.c drives the C CRC-32, COBS, frame encoder and streaming decoder line by line; each test
here sends it thousands of seeded cases in one process and compares every answer with the Python twin.
"""

from __future__ import annotations

import random
import re
import struct
import subprocess
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from converter import firmware_sources as fws
from host_tools.board import protocol as P

ROOT = Path(__file__).resolve().parents[2]
FRAMING = fws.sources("framing")
LINK = fws.sources("link")
TESTS_C = ROOT / "tests" / "c"

SEED = 20240611
# Lengths around the COBS block size and the frame overhead, then random ones.
BOUNDARY_LENGTHS = (0, 1, 2, 243, 244, 245, 253, 254, 255, 256, 497, 498, 499, 507, 508, 509, 762, 1016, 4096, 5000)
N_RANDOM_CASES = 2000


@pytest.fixture(scope="module")
def frame_tool(host_cc: Callable[..., Path]) -> Path:
    return host_cc("frame_tool", [*FRAMING, TESTS_C / "frame_tool.c"])


def run_tool(exe: Path, lines: list[str]) -> list[str]:
    """Run frame_tool over lines; one answer per line, nothing on stderr (sanitizers)."""
    proc = subprocess.run([str(exe)], input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr == ""
    out = proc.stdout.splitlines()
    assert len(out) == len(lines)
    bad = [(q[:60], a) for q, a in zip(lines, out, strict=True) if a.startswith("!")]
    assert not bad, bad[:5]
    return out


def hx(data: bytes) -> str:
    return data.hex() if data else "-"


def unhx(token: str) -> bytes:
    return b"" if token == "-" else bytes.fromhex(token)


def biased_payload(rng: random.Random, n: int) -> bytes:
    """Random bytes of one of several shapes that stress COBS (zeros, 254-byte runs)."""
    shape = rng.randrange(6)
    if shape == 0:
        return rng.randbytes(n)
    if shape == 1:  # zero-heavy
        return bytes(0 if rng.random() < 0.3 else rng.randrange(1, 256) for _ in range(n))
    if shape == 2:  # no zeros at all
        return bytes(rng.randrange(1, 256) for _ in range(n))
    if shape == 3:  # 254-byte non-zero runs separated by single zeros (or not)
        out = bytearray()
        while len(out) < n:
            out += b"\xa5" * 254
            if rng.random() < 0.5:
                out.append(0)
        return bytes(out[:n])
    if shape == 4:
        return bytes(n)
    return bytes(rng.choice((0, 1, 0xFF)) for _ in range(n))


def payload_cases(seed: int) -> Iterator[tuple[int, int, bytes]]:
    """(type, req_id, payload): every boundary length in each shape, then random lengths 0..5000."""
    rng = random.Random(seed)
    for n in BOUNDARY_LENGTHS:
        for _ in range(6):
            yield rng.randrange(256), rng.randrange(0x10000), biased_payload(rng, n)
    for _ in range(N_RANDOM_CASES):
        n = rng.randrange(300) if rng.random() < 0.5 else rng.randrange(5001)
        yield rng.randrange(256), rng.randrange(0x10000), biased_payload(rng, n)


# -- C unit tests ------------------------------------------------------------------------------------------------


def test_c_unit_tests_pass(host_cc: Callable[..., Path]) -> None:
    exe = host_cc("test_frame", [*LINK, TESTS_C / "test_frame.c"])
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120, check=False)
    lines = proc.stdout.splitlines()
    failures = [ln for ln in lines if ln.startswith("FAIL")]
    assert not failures, "\n".join(failures[:40])
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert proc.stderr == ""
    m = re.fullmatch(r"(\d+) passed, (\d+) failed", lines[-1])
    assert m is not None, lines[-1:]
    assert int(m.group(2)) == 0
    assert int(m.group(1)) > 10000  # the sweeps ran


# -- byte identity ---------------------------------------------------------------------------------------------


def test_crc_matches_zlib(frame_tool: Path) -> None:
    cases = [b"", b"123456789", *(p for _, _, p in payload_cases(SEED + 1))]
    out = run_tool(frame_tool, [f"crc {hx(p)}" for p in cases])
    assert out[1] == "cbf43926"
    mismatches = [(len(p), got) for p, got in zip(cases, out, strict=True) if int(got, 16) != zlib.crc32(p)]
    assert not mismatches, mismatches[:5]


def test_cobs_byte_identical(frame_tool: Path) -> None:
    cases = [p for _, _, p in payload_cases(SEED + 2)]
    out = run_tool(frame_tool, [f"cobs {hx(p)}" for p in cases])
    mismatches = [len(p) for p, got in zip(cases, out, strict=True) if unhx(got) != P.cobs_encode(p)]
    assert not mismatches, f"COBS differs for payload lengths {mismatches[:10]}"
    for p in cases[:200]:
        assert P.cobs_decode(P.cobs_encode(p)) == p
        assert len(P.cobs_encode(p)) <= P.cobs_max_len(len(p))


def test_frames_byte_identical_and_cross_decoded(frame_tool: Path) -> None:
    cases = list(payload_cases(SEED + 3))
    c_wire = [unhx(w) for w in run_tool(frame_tool, [f"enc {t} {r} {hx(p)}" for t, r, p in cases])]
    py_wire = [P.encode_frame(t, r, p) for t, r, p in cases]
    differ = [i for i, (c, py) in enumerate(zip(c_wire, py_wire, strict=True)) if c != py]
    assert not differ, f"{len(differ)} frames differ, first payload length {len(cases[differ[0]][2])}"

    # Python decodes the C frames (each one on its own and all as one stream).
    expected = [P.Frame(t, r, p) for t, r, p in cases]
    assert [P.parse_frame(w[:-1]) for w in c_wire] == expected
    assert list(P.FrameDecoder().feed(b"".join(c_wire))) == expected

    # C decodes the Python frames, a few per line with extra delimiters between them.
    lines, groups = [], []
    for i in range(0, len(py_wire), 4):
        chunk = py_wire[i : i + 4]
        lines.append(f"dec {hx(b''.join(P.DELIM + w for w in chunk))}")
        groups.append(expected[i : i + 4])
    for got, want in zip(run_tool(frame_tool, lines), groups, strict=True):
        items = got.split(" ")
        assert len(items) == len(want)
        for item, frame in zip(items, want, strict=True):
            assert item.startswith("f:"), item
            _, version, msg_type, req_id, payload = item.split(":")
            assert P.Frame(int(msg_type), int(req_id), unhx(payload), int(version)) == frame


# -- the same verdict on damaged input ---------------------------------------------------------------------------


def damage(rng: random.Random, data: bytes) -> bytes:
    """One random corruption of a byte string."""
    b = bytearray(data)
    kind = rng.randrange(5)
    if kind == 0 and b:
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
    elif kind == 1 and b:
        del b[rng.randrange(len(b)) :]
    elif kind == 2:
        b.insert(rng.randrange(len(b) + 1), rng.randrange(256))
    elif kind == 3 and b:
        del b[rng.randrange(len(b))]
    else:
        b[rng.randrange(len(b) + 1) : rng.randrange(len(b) + 1)] = rng.randbytes(rng.randrange(1, 20))
    return bytes(b)


def py_uncobs(data: bytes) -> str:
    try:
        return f"ok {hx(P.cobs_decode(data))}"
    except P.FrameError as exc:
        return f"err {exc.status}"


def test_cobs_decoders_agree_on_damaged_input(frame_tool: Path) -> None:
    rng = random.Random(SEED + 4)
    cases = []
    for _, _, p in payload_cases(SEED + 5):
        enc = P.cobs_encode(p[:600])
        cases.append(enc)
        cases.append(damage(rng, enc))
    out = run_tool(frame_tool, [f"uncobs {hx(c)}" for c in cases])
    differ = [(c[:16].hex(), got, py_uncobs(c)[:40]) for c, got in zip(cases, out, strict=True) if got != py_uncobs(c)]
    assert not differ, differ[:5]
    assert sum(o.startswith("err") for o in out) > 100  # damage really produced malformed input


def py_dec(stream: bytes) -> str:
    items = []
    for item in P.FrameDecoder().feed(stream):
        if isinstance(item, P.FrameError):
            items.append(f"e:{item.status}")
        else:
            items.append(f"f:{item.version}:{item.type}:{item.req_id}:{hx(item.payload)}")
    return " ".join(items) or "-"


def raw_frame(version: int, msg_type: int, req_id: int, length: int, payload: bytes, fix_crc: bool) -> bytes:
    raw = struct.pack("<BBHH", version, msg_type, req_id, length) + payload
    crc = zlib.crc32(raw) ^ (0 if fix_crc else 0x00010000)
    return P.cobs_encode(raw + struct.pack("<I", crc)) + P.DELIM


MAX_ENCODED = P.cobs_max_len(P.MAX_PAYLOAD_LIMIT + P.OVERHEAD)  # both decoders' receive limit


# Hand-made frames for each decoder verdict (named, so a failure says which one).
CRAFTED = {
    "valid": P.encode_frame(2, 1, b"abc"),
    "other version": raw_frame(9, 2, 1, 3, b"abc", fix_crc=True),
    "crc": raw_frame(1, 2, 1, 3, b"abc", fix_crc=False),
    "length +1": raw_frame(1, 2, 1, 4, b"abc", fix_crc=True),
    "length -1": raw_frame(1, 2, 1, 2, b"abc", fix_crc=True),
    "short": P.cobs_encode(b"\x01\x02\x03") + P.DELIM,
    "cobs": b"\x09\x01\x02" + P.DELIM,
    "empty frames": b"\x00\x00\x00",
    "garbage then frame": b"\x11\x22" + P.DELIM + P.encode_frame(1, 7),
    "over-long": b"\xff" * (MAX_ENCODED + 1) + P.DELIM + P.encode_frame(1, 8),
    "longest accepted": b"\xff" * MAX_ENCODED + P.DELIM,
}
EXPECTED_FIRST = {
    "valid": "f:1:2:1:616263",
    "other version": "f:9:2:1:616263",
    "crc": f"e:{P.E_CRC}",
    "length +1": f"e:{P.E_FRAME_LENGTH}",
    "length -1": f"e:{P.E_FRAME_LENGTH}",
    "short": f"e:{P.E_FRAME_SHORT}",
    "cobs": f"e:{P.E_COBS}",
    "empty frames": "-",
    "garbage then frame": f"e:{P.E_COBS}",
    "over-long": f"e:{P.E_FRAME_TOO_LONG}",
    "longest accepted": f"e:{P.E_COBS}",
}


@pytest.mark.parametrize("name", list(CRAFTED))
def test_crafted_frames_same_verdict(frame_tool: Path, name: str) -> None:
    (got,) = run_tool(frame_tool, [f"dec {hx(CRAFTED[name])}"])
    assert got == py_dec(CRAFTED[name])
    assert got.split(" ")[0] == EXPECTED_FIRST[name]


def test_stream_decoders_agree_on_damaged_streams(frame_tool: Path) -> None:
    rng = random.Random(SEED + 6)
    streams = []
    for t, r, p in payload_cases(SEED + 7):
        frames = [P.encode_frame(t, r, p[:800]), P.encode_frame(r & 0xFF, t, p[800:900])]
        stream = b"".join(frames)
        for _ in range(rng.randrange(1, 4)):
            stream = damage(rng, stream)
        streams.append(stream + P.DELIM)
    out = run_tool(frame_tool, [f"dec {hx(s)}" for s in streams])
    differ = [(i, got[:80]) for i, (s, got) in enumerate(zip(streams, out, strict=True)) if got != py_dec(s)]
    assert not differ, differ[:5]
    verdicts = {item.split(":")[0] + item.split(":")[1] for line in out for item in line.split(" ") if item != "-"}
    # Every error kind and intact frames occurred, so the comparison covered them all.
    assert {f"e{s}" for s in (P.E_CRC, P.E_COBS, P.E_FRAME_SHORT, P.E_FRAME_LENGTH)} <= verdicts
    assert "f1" in verdicts
