"""Unit tests of host_tools/board/protocol.py: COBS, frames, the streaming decoder and payload parsers."""

from __future__ import annotations

import math
import random
import struct
import zlib

import pytest

from host_tools.board import protocol as P

SEED = 1234

# -- COBS ------------------------------------------------------------------------------------------------------

COBS_VECTORS = {
    "empty": (b"", b"\x01"),
    "single zero": (b"\x00", b"\x01\x01"),
    "two zeros": (b"\x00\x00", b"\x01\x01\x01"),
    "no zeros": (b"\x11\x22\x33", b"\x04\x11\x22\x33"),
    "zero in the middle": (b"\x11\x00\x22", b"\x02\x11\x02\x22"),
    "zeros at both ends": (b"\x00\x11\x00", b"\x01\x02\x11\x01"),
    "253 non-zero": (b"\x07" * 253, b"\xfe" + b"\x07" * 253),
    "254 non-zero": (b"\x07" * 254, b"\xff" + b"\x07" * 254),
    "255 non-zero": (b"\x07" * 255, b"\xff" + b"\x07" * 254 + b"\x02\x07"),
    "254 non-zero then zero": (b"\x07" * 254 + b"\x00", b"\xff" + b"\x07" * 254 + b"\x01\x01"),
    "508 non-zero": (b"\x07" * 508, (b"\xff" + b"\x07" * 254) * 2),
}


@pytest.mark.parametrize("name", list(COBS_VECTORS))
def test_cobs_vectors(name: str) -> None:
    raw, enc = COBS_VECTORS[name]
    assert P.cobs_encode(raw) == enc
    assert P.cobs_decode(enc) == raw


def test_cobs_round_trip_sweep() -> None:
    rng = random.Random(SEED)
    for n in range(0, 1100):
        for data in (rng.randbytes(n), bytes(rng.randrange(1, 256) for _ in range(n)), bytes(n)):
            enc = P.cobs_encode(data)
            assert 0 not in enc
            assert len(enc) <= P.cobs_max_len(n)
            assert P.cobs_decode(enc) == data


MALFORMED_COBS = {
    "zero code byte": b"\x00",
    "zero inside a block": b"\x04\x11\x00\x22",
    "code past the end": b"\x05\x11\x22",
    "second code past the end": b"\x02\x11\x04\x22",
    "0xFF code with nothing after": b"\xff",
}


@pytest.mark.parametrize("name", list(MALFORMED_COBS))
def test_cobs_malformed(name: str) -> None:
    with pytest.raises(P.FrameError) as exc:
        P.cobs_decode(MALFORMED_COBS[name])
    assert exc.value.status == P.E_COBS


# -- frames ----------------------------------------------------------------------------------------------------

ROUND_TRIPS = {
    "empty request": (P.MSG_HELLO, 1, b""),
    "lowest type, highest id": (0x00, 0xFFFF, b"\x00"),
    "highest type, id 0": (0xFF, 0, b"\xff" * 3),
    "254-byte run": (P.MSG_PING, 300, b"\x01" * 254),
    "all zeros": (P.MSG_PING, 301, bytes(1000)),
    "largest payload": (P.MSG_PING, 302, bytes(range(256)) * 255 + bytes(range(255))),
}


@pytest.mark.parametrize("name", list(ROUND_TRIPS))
def test_frame_round_trip(name: str) -> None:
    msg_type, req_id, payload = ROUND_TRIPS[name]
    wire = P.encode_frame(msg_type, req_id, payload)
    assert wire.endswith(P.DELIM)
    assert 0 not in wire[:-1]
    assert len(wire) <= P.cobs_max_len(len(payload) + P.OVERHEAD) + 1
    raw = P.cobs_decode(wire[:-1])
    assert raw[:6] == struct.pack("<BBHH", P.PROTO_VERSION, msg_type, req_id, len(payload))
    assert raw[-4:] == struct.pack("<I", zlib.crc32(raw[:-4]))
    frame = P.parse_frame(wire[:-1])
    assert frame == P.Frame(msg_type, req_id, payload)
    assert frame.is_response == bool(msg_type & 0x80)


def test_frame_version_is_carried() -> None:
    assert P.parse_frame(P.encode_frame(1, 2, b"x", version=5)[:-1]).version == 5


@pytest.mark.parametrize(("msg_type", "req_id", "size"), [(-1, 1, 0), (256, 1, 0), (1, -1, 0), (1, 0x10000, 0),
                                                          (1, 1, 0x10000)])
def test_encode_frame_rejects_out_of_range(msg_type: int, req_id: int, size: int) -> None:
    with pytest.raises(ValueError, match=r"out of range|exceeds"):
        P.encode_frame(msg_type, req_id, bytes(size))


def _raw(version: int, msg_type: int, req_id: int, length: int, payload: bytes, crc_xor: int = 0) -> bytes:
    raw = struct.pack("<BBHH", version, msg_type, req_id, length) + payload
    return raw + struct.pack("<I", zlib.crc32(raw) ^ crc_xor)


BAD_FRAMES = {
    "cobs": (b"\x07\x01\x02", P.E_COBS),
    "empty raw frame": (P.cobs_encode(b""), P.E_FRAME_SHORT),
    "nine raw bytes": (P.cobs_encode(bytes(9)), P.E_FRAME_SHORT),
    "length one too big": (P.cobs_encode(_raw(1, 2, 3, 4, b"abc")), P.E_FRAME_LENGTH),
    "length one too small": (P.cobs_encode(_raw(1, 2, 3, 2, b"abc")), P.E_FRAME_LENGTH),
    "crc flipped": (P.cobs_encode(_raw(1, 2, 3, 3, b"abc", crc_xor=1)), P.E_CRC),
    "payload flipped": (P.cobs_encode(_raw(1, 2, 3, 3, b"abc")[:7] + b"\x63" + _raw(1, 2, 3, 3, b"abc")[8:]),
                        P.E_CRC),
}


@pytest.mark.parametrize("name", list(BAD_FRAMES))
def test_parse_frame_errors(name: str) -> None:
    encoded, status = BAD_FRAMES[name]
    with pytest.raises(P.FrameError) as exc:
        P.parse_frame(encoded)
    assert exc.value.status == status
    assert status in P.LINK_ERRORS
    assert isinstance(exc.value, ValueError)
    # The streaming decoder reports the same status and keeps going.
    items = list(P.FrameDecoder().feed(encoded + P.DELIM + P.encode_frame(1, 9)))
    assert isinstance(items[0], P.FrameError)
    assert items[0].status == status
    assert items[1:] == [P.Frame(1, 9, b"")]


# -- streaming decoder -----------------------------------------------------------------------------------------


def _norm(items: list[P.Frame | P.FrameError]) -> list[object]:
    return [("error", i.status) if isinstance(i, P.FrameError) else i for i in items]


def _sample_stream() -> tuple[bytes, list[object]]:
    """A stream mixing good frames, every error kind and runs of delimiters, with its expected items."""
    parts: list[tuple[bytes, object | None]] = [
        (b"\x00\x00", None),
        (P.encode_frame(P.MSG_HELLO, 1), P.Frame(P.MSG_HELLO, 1, b"")),
        (P.encode_frame(P.MSG_PING, 2, b"\x00" * 300), P.Frame(P.MSG_PING, 2, b"\x00" * 300)),
        (b"\x07\x01\x02\x00", ("error", P.E_COBS)),
        (P.cobs_encode(bytes(5)) + P.DELIM, ("error", P.E_FRAME_SHORT)),
        (P.cobs_encode(_raw(1, 2, 3, 9, b"abc")) + P.DELIM, ("error", P.E_FRAME_LENGTH)),
        (P.cobs_encode(_raw(1, 2, 3, 3, b"abc", crc_xor=8)) + P.DELIM, ("error", P.E_CRC)),
        (b"\x41" * 600 + P.DELIM, ("error", P.E_FRAME_TOO_LONG)),
        (b"\x00\x00\x00", None),
        (P.encode_frame(0x82, 0xFFFF, b"\xff" * 254), P.Frame(0x82, 0xFFFF, b"\xff" * 254)),
    ]
    return b"".join(p for p, _ in parts), [e for _, e in parts if e is not None]


def test_decoder_whole_stream() -> None:
    stream, expected = _sample_stream()
    assert _norm(list(P.FrameDecoder(max_encoded=512).feed(stream))) == expected


def test_decoder_split_at_every_byte_boundary() -> None:
    stream, expected = _sample_stream()
    for cut in range(len(stream) + 1):
        dec = P.FrameDecoder(max_encoded=512)
        items = list(dec.feed(stream[:cut])) + list(dec.feed(stream[cut:]))
        assert _norm(items) == expected, f"split at {cut}"


def test_decoder_byte_at_a_time_and_random_chunks() -> None:
    stream, expected = _sample_stream()
    dec = P.FrameDecoder(max_encoded=512)
    assert _norm([i for k in range(len(stream)) for i in dec.feed(stream[k : k + 1])]) == expected
    rng = random.Random(SEED)
    for _ in range(50):
        cuts = sorted(rng.sample(range(1, len(stream)), 5))
        dec = P.FrameDecoder(max_encoded=512)
        chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
        assert _norm([i for c in chunks for i in dec.feed(c)]) == expected


def test_decoder_length_limit_boundary() -> None:
    frame = P.encode_frame(P.MSG_PING, 5, b"\x33" * 100)
    body = len(frame) - 1
    for limit, ok in [(body, True), (body - 1, False)]:
        items = list(P.FrameDecoder(max_encoded=limit).feed(frame + frame[:-1]))
        if ok:
            assert items == [P.Frame(P.MSG_PING, 5, b"\x33" * 100)]
        else:
            assert _norm(items) == [("error", P.E_FRAME_TOO_LONG)]
    # Over-long input split across many feeds is still one error, and the next frame decodes.
    dec = P.FrameDecoder(max_encoded=body - 1)
    items = [i for k in range(0, len(frame), 7) for i in dec.feed(frame[k : k + 7])]
    items += list(dec.feed(P.encode_frame(1, 1)))
    assert _norm(items) == [("error", P.E_FRAME_TOO_LONG), P.Frame(1, 1, b"")]


def test_decoder_empty_feed_yields_nothing() -> None:
    dec = P.FrameDecoder()
    assert list(dec.feed(b"")) == []
    assert list(dec.feed(b"\x00" * 10)) == []


# -- payload parsers -------------------------------------------------------------------------------------------


def _hello_payload(messages: bytes = bytes([1, 2, 3]), board: bytes = b"virtual-m4") -> bytes:
    fixed = P.HELLO_FIXED.pack(1, 0, 1, 2, 4096, 0, 0b100011, 25_000_000, 25_000_000, 4 << 20, 4 << 20, 40_000,
                               30_000, 0x410FC241)
    strings = b"".join(bytes([len(s)]) + s for s in (board, b"cortex-m4", b"abc123"))
    return fixed + strings + bytes([len(messages)]) + messages


def test_parse_hello_well_formed() -> None:
    h = P.parse_hello(_hello_payload())
    assert h == P.Hello(1, "0.1.2", 4096, ("dsp", "fpu", "storage"), 25_000_000, 25_000_000, 4 << 20, 4 << 20,
                        40_000, 30_000, 0x410FC241, "virtual-m4", "cortex-m4", "abc123", (1, 2, 3))
    d = h.as_dict()
    assert d["messages"] == ["HELLO", "PING", "TELEMETRY_CTRL"]
    assert d["cpuid"] == "0x410fc241"
    assert P.parse_hello(_hello_payload(messages=b"", board=b"")).board == ""


@pytest.mark.parametrize("variant", ["normal", "no messages", "empty strings"])
def test_parse_hello_every_truncation_raises(variant: str) -> None:
    payload = {"normal": _hello_payload(), "no messages": _hello_payload(messages=b""),
               "empty strings": _hello_payload(board=b"")}[variant]
    P.parse_hello(payload)
    for n in range(len(payload)):
        with pytest.raises(ValueError, match=r"truncated|shorter"):
            P.parse_hello(payload[:n])


def test_parse_error() -> None:
    payload = struct.pack("<hBB", P.E_CRC, 0x02, 4) + b"oops"
    err = P.parse_error(payload)
    assert (err.status, err.req_type, err.text, err.status_name) == (P.E_CRC, 2, "oops", "OCTO_E_CRC")
    assert P.parse_error(struct.pack("<hBB", -99, 1, 0)).status_name == "status -99"
    for n in range(4):
        with pytest.raises(ValueError, match="ERROR"):
            P.parse_error(payload[:n])


def _tlm_entry(name: bytes, kind: bytes, raw: bytes) -> bytes:
    return bytes([len(name)]) + name + kind + raw


TLM_ENTRIES = [
    (b"uptime_ms", b"u", struct.pack("<I", 123456), 123456),
    (b"delta", b"i", struct.pack("<i", -42), -42),
    (b"loss", b"f", struct.pack("<f", 0.5), 0.5),
    (b"", b"u", struct.pack("<I", 0xFFFFFFFF), 0xFFFFFFFF),
]


def test_parse_telemetry_well_formed_and_truncated() -> None:
    payload = struct.pack("<I", 77)
    boundaries = {len(payload): {"seq": 77}}
    expected: dict[str, int | float] = {"seq": 77}
    for name, kind, raw, value in TLM_ENTRIES:
        payload += _tlm_entry(name, kind, raw)
        expected[name.decode()] = value
        boundaries[len(payload)] = dict(expected)
    assert P.parse_telemetry(payload) == expected
    for n in range(len(payload)):
        if n in boundaries:
            assert P.parse_telemetry(payload[:n]) == boundaries[n]
        else:
            with pytest.raises(ValueError, match="TELEMETRY"):
                P.parse_telemetry(payload[:n])


def test_parse_telemetry_unknown_kind_and_float_nan() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        P.parse_telemetry(struct.pack("<I", 1) + _tlm_entry(b"x", b"q", bytes(4)))
    out = P.parse_telemetry(struct.pack("<I", 1) + _tlm_entry(b"x", b"f", struct.pack("<f", math.nan)))
    assert math.isnan(float(out["x"]))
