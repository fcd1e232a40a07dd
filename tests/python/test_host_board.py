"""The real firmware app running as a native process (firmware/boards/host) under ASan/UBSan.

Each test starts its own board with OCTO_HOST_PORT=0, talks to it over TCP (BoardClient with socket:// or a
plain socket) and stops it with SIGTERM; the board must then exit 0 with nothing on stderr, so any sanitizer
report or leak fails the test.
"""

from __future__ import annotations

import itertools
import os
import random
import re
import selectors
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from converter import firmware_sources as fws
from host_tools.board import protocol as P
from host_tools.board.client import BoardClient
from host_tools.errors import BoardError, LinkError

ROOT = Path(__file__).resolve().parents[2]
FW = ROOT / "firmware"
SOURCES = fws.sources("link", "app", "bsp_host")
MAX_PAYLOAD = 4096
SAN_ENV = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0", "UBSAN_OPTIONS": "print_stacktrace=1"}


@dataclass
class HostBoard:
    proc: subprocess.Popen[bytes]
    port: int
    stderr_path: Path

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def client(self) -> BoardClient:
        return BoardClient(self.url, timeout_s=2.0)

    def stop(self) -> tuple[int, str]:
        """SIGTERM, wait; returns (exit code, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                pytest.fail("host board ignored SIGTERM")
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode, self.stderr_path.read_text(errors="replace")


def launch(exe: Path, stderr_path: Path, port_env: str = "0") -> subprocess.Popen[bytes]:
    with stderr_path.open("wb") as err:
        return subprocess.Popen([str(exe)], stdout=subprocess.PIPE, stderr=err,
                                env={**os.environ, **SAN_ENV, "OCTO_HOST_PORT": port_env})


def read_port_line(proc: subprocess.Popen[bytes], timeout_s: float = 20.0) -> int:
    """Wait for the "OCTO_HOST_PORT=<n>" line."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    line = b""
    deadline = time.monotonic() + timeout_s
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        assert left > 0 and sel.select(left), f"no port line within {timeout_s} s (got {line!r})"
        chunk = os.read(proc.stdout.fileno(), 1)
        assert chunk, f"board exited before announcing its port (got {line!r}, exit {proc.wait()})"
        line += chunk
    sel.close()
    m = re.fullmatch(rb"OCTO_HOST_PORT=(\d+)\n", line)
    assert m is not None, line
    return int(m.group(1))


@pytest.fixture(scope="module")
def host_exe(host_cc: Callable[..., Path]) -> Path:
    return host_cc("octo_host_board", SOURCES)


@pytest.fixture
def start_board(host_exe: Path, tmp_path: Path) -> Iterator[Callable[[], HostBoard]]:
    """start() -> a running HostBoard; each is stopped afterwards and must exit cleanly."""
    boards: list[HostBoard] = []

    def start() -> HostBoard:
        err = tmp_path / f"board{len(boards)}.stderr"
        proc = launch(host_exe, err)
        board = HostBoard(proc, 0, err)
        boards.append(board)
        board.port = read_port_line(proc)
        return board

    yield start
    for board in boards:
        code, stderr = board.stop()
        assert stderr == "", stderr[-4000:]
        assert code == 0, f"host board exited with {code}"


# -- raw socket helpers ----------------------------------------------------------------------------------------


def connect(board: HostBoard) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", board.port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_until(sock: socket.socket, done: Callable[[P.Frame], bool], timeout_s: float = 5.0,
               raw: bytearray | None = None) -> list[P.Frame | P.FrameError]:
    """Read frames until one satisfies done (returned last); fails on timeout."""
    dec = P.FrameDecoder()
    items: list[P.Frame | P.FrameError] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(65536)
        except TimeoutError:
            break
        assert data, "board closed the connection"
        if raw is not None:
            raw += data
        for item in dec.feed(data):
            items.append(item)
            if isinstance(item, P.Frame) and done(item):
                return items
    pytest.fail(f"no matching frame within {timeout_s} s; got {items[-5:]}")


def is_response(req_id: int, msg_type: int) -> Callable[[P.Frame], bool]:
    return lambda f: f.req_id == req_id and f.type in (msg_type | P.RESPONSE_BIT, P.MSG_ERROR)


# -- tests -----------------------------------------------------------------------------------------------------


def test_hello_describes_the_host_board(start_board: Callable[[], HostBoard]) -> None:
    board = start_board()
    with board.client() as c:
        h = c.hello()
    assert (h.board, h.cpu, h.proto_version, h.fw_version) == ("host", "host", P.PROTO_VERSION, "0.1.0")
    assert (h.max_payload, h.timer_hz, h.cpu_hz, h.features, h.cpuid) == (MAX_PAYLOAD, 1_000_000_000, 0, (), 0)
    assert (h.sram_bytes, h.flash_bytes, h.ram_used, h.flash_used) == (0, 0, 0, 0)
    assert h.messages == (P.MSG_HELLO, P.MSG_PING, P.MSG_TELEMETRY_CTRL)


PING_SIZES = (0, 1, 254, 255, MAX_PAYLOAD)


def test_ping_echoes_every_size(start_board: Callable[[], HostBoard]) -> None:
    board = start_board()
    rng = random.Random(11)
    with board.client() as c:
        c.hello()
        for size in PING_SIZES:
            for data in (rng.randbytes(size), bytes(size), b"\xff" * size):
                assert c.request(P.MSG_PING, data) == data, f"PING of {size} bytes"
        assert c.counters.retries == 0
        assert c.counters.corrupt_frames == 0


def test_telemetry_on_and_off(start_board: Callable[[], HostBoard]) -> None:
    board = start_board()
    with board.client() as c:
        assert c.set_telemetry(20) == 20
        frames = [f for f in c.poll_events(0.6) if f.type == P.MSG_TELEMETRY]
        assert len(frames) >= 5
        tlm = [P.parse_telemetry(f.payload) for f in frames]
        assert all(f.req_id == 0 for f in frames)
        seqs = [int(t["seq"]) for t in tlm]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        gaps = [int(b["uptime_ms"]) - int(a["uptime_ms"]) for a, b in itertools.pairwise(tlm)]
        assert all(15 <= g <= 500 for g in gaps), gaps
        assert tlm[-1]["executed"] == 1  # TELEMETRY_CTRL itself
        assert c.set_telemetry(3) == 10  # clamped to at most 100 frames/s
        assert c.set_telemetry(0) == 0
        c.poll_events(0.05)  # anything sent before the stop took effect
        assert c.poll_events(0.3) == []
        with pytest.raises(BoardError) as exc:
            c.request(P.MSG_TELEMETRY_CTRL, b"\x01\x02\x03")
        assert exc.value.status == -10  # OCTO_E_PAYLOAD


def test_errors_for_bad_requests(start_board: Callable[[], HostBoard]) -> None:
    board = start_board()
    with board.client() as c:
        with pytest.raises(BoardError) as exc:
            c.request(0x55)
        assert exc.value.status == -9  # OCTO_E_UNSUPPORTED
        sent = c.counters.bytes_sent
        with pytest.raises(LinkError, match="exceeds"):
            c.ping(bytes(MAX_PAYLOAD + 1))
        assert c.counters.bytes_sent == sent  # rejected before anything was written
        assert c.request(P.MSG_PING, b"still fine") == b"still fine"   # the client is still in step
    # The same over-long request sent anyway: the board drops it and reports a link error.
    with connect(board) as s:
        s.sendall(P.DELIM + P.encode_frame(P.MSG_PING, 77, bytes(MAX_PAYLOAD + 900)))
        items = read_until(s, lambda f: f.type == P.MSG_ERROR)
        assert P.parse_error(items[-1].payload).status == P.E_FRAME_TOO_LONG
        # One byte over the limit but all zeros: fits the receive buffer, still refused (HELLO ignores payloads,
        # so only the engine's limit check can reject it).
        s.sendall(P.DELIM + P.encode_frame(P.MSG_HELLO, 79, bytes(MAX_PAYLOAD + 1)))
        err = read_until(s, is_response(79, P.MSG_HELLO))[-1]
        assert err.type == P.MSG_ERROR
        assert P.parse_error(err.payload).status == -2  # OCTO_E_BUF
        s.sendall(P.DELIM + P.encode_frame(P.MSG_PING, 78, b"x"))
        assert read_until(s, is_response(78, P.MSG_PING))[-1] == P.Frame(P.MSG_PING | P.RESPONSE_BIT, 78, b"x")


def test_garbage_then_hello(start_board: Callable[[], HostBoard]) -> None:
    board = start_board()
    rng = random.Random(12)
    with connect(board) as s:
        for _ in range(40):
            s.sendall(rng.randbytes(rng.randrange(1, 2000)))
        s.sendall(P.DELIM + P.encode_frame(P.MSG_HELLO, 4321))
        items = read_until(s, is_response(4321, P.MSG_HELLO), timeout_s=10)
    hello = items[-1]
    assert isinstance(hello, P.Frame)
    assert hello.type == P.MSG_HELLO | P.RESPONSE_BIT
    assert P.parse_hello(hello.payload).board == "host"
    reports = [P.parse_error(f.payload) for f in items[:-1] if isinstance(f, P.Frame)]
    assert len(reports) > 10  # garbage is answered with link-error reports, request id 0
    assert all(f.req_id == 0 and f.type == P.MSG_ERROR for f in items[:-1] if isinstance(f, P.Frame))
    assert {r.status for r in reports} <= P.LINK_ERRORS
    assert not any(isinstance(f, P.FrameError) for f in items)  # the board's own frames are always valid
    with board.client() as c:  # and a new client is served
        assert c.hello().board == "host"


def test_repeated_request_runs_once(start_board: Callable[[], HostBoard]) -> None:
    board = start_board()
    frame = P.DELIM + P.encode_frame(P.MSG_PING, 5, b"once")
    with connect(board) as s:
        answers = []
        for _ in range(3):
            raw = bytearray()
            s.sendall(frame)
            read_until(s, is_response(5, P.MSG_PING), raw=raw)
            answers.append(bytes(raw))
        assert answers[0] == answers[1] == answers[2]
        s.sendall(P.DELIM + P.encode_frame(P.MSG_TELEMETRY_CTRL, 6, struct.pack("<I", 10)))
        t = read_until(s, lambda f: f.type == P.MSG_TELEMETRY)[-1]
    stats = P.parse_telemetry(t.payload)
    assert (stats["executed"], stats["duplicates"]) == (2, 2)  # PING once, TELEMETRY_CTRL once


def test_one_client_at_a_time_and_reconnects(start_board: Callable[[], HostBoard]) -> None:
    board = start_board()
    first = board.client().open()
    first.hello()
    with connect(board) as waiting:
        waiting.sendall(P.DELIM + P.encode_frame(P.MSG_PING, 9, b"queued"))
        waiting.settimeout(0.3)
        with pytest.raises(TimeoutError):
            waiting.recv(100)  # not served while the first client is connected
        first.close()
        got = read_until(waiting, is_response(9, P.MSG_PING))[-1]
        assert got == P.Frame(P.MSG_PING | P.RESPONSE_BIT, 9, b"queued")
        # Leave half a frame behind: the next client's leading delimiter discards it.
        waiting.sendall(P.encode_frame(P.MSG_PING, 10, bytes(100))[:50])
    for _ in range(3):
        with board.client() as c:
            assert c.request(P.MSG_PING, b"again") == b"again"


def test_sigterm_ends_the_board_cleanly(start_board: Callable[[], HostBoard]) -> None:
    board = start_board()
    with board.client() as c:
        c.hello()
    code, stderr = board.stop()
    assert (code, stderr) == (0, "")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", board.port), timeout=2).close()


def test_port_from_environment(host_exe: Path, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    board = HostBoard(launch(host_exe, tmp_path / "fixed.stderr", str(port)), 0, tmp_path / "fixed.stderr")
    try:
        assert read_port_line(board.proc) == port
        # The port is taken now: a second board cannot start on it.
        busy = launch(host_exe, tmp_path / "busy.stderr", str(port))
        assert busy.wait(timeout=20) == 1
        assert busy.stdout is not None
        assert busy.stdout.read() == b""
        busy.stdout.close()
        assert "bind" in (tmp_path / "busy.stderr").read_text()
    finally:
        assert board.stop() == (0, "")


@pytest.mark.parametrize("value", ["notaport", "65536", "-1", "12ab"])
def test_bad_port_value_is_refused(host_exe: Path, tmp_path: Path, value: str) -> None:
    proc = launch(host_exe, tmp_path / "bad.stderr", value)
    assert proc.wait(timeout=20) == 1
    assert proc.stdout is not None
    proc.stdout.close()
    assert f"OCTO_HOST_PORT={value} is not a port number" in (tmp_path / "bad.stderr").read_text()
