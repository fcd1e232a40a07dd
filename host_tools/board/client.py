"""Board client: requests and responses over a serial port (pyserial).

Transport is pyserial's ``serial_for_url``: ``socket://127.0.0.1:PORT`` for a
virtual board, ``/dev/ttyACM0`` (or ``COM3``) for a real one. Protocol details
are in host_tools/board/protocol.py; this module adds timing, retries and errors.

Delivery guarantee: each request carries an id; on a timeout or a link error
report the same frame is re-sent (at most ``retries`` times). The board answers
a repeated (type, id, CRC) from its response cache without executing it again,
so a request runs exactly once or the call raises LinkError.
"""

from __future__ import annotations

import random
import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from host_tools.board import protocol as P
from host_tools.errors import BoardError, LinkError

DEFAULT_BAUD = 115200
BASE_TIMEOUT_S = 1.0          # reply deadline for a small request
READ_POLL_S = 0.02            # pyserial read timeout while waiting
DEFAULT_RETRIES = 3
LINK_HINT = "is the board running the Octo firmware? start a virtual one with `octo flash --board virtual-m4`"


@dataclass
class LinkCounters:
    requests: int = 0
    retries: int = 0
    corrupt_frames: int = 0
    stale_frames: int = 0
    link_error_reports: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class BoardClient:
    """A connection to one board. Use as a context manager."""

    port: str
    baudrate: int = DEFAULT_BAUD
    timeout_s: float = BASE_TIMEOUT_S
    retries: int = DEFAULT_RETRIES
    max_payload: int = 4096
    on_event: Callable[[P.Frame], None] | None = None
    counters: LinkCounters = field(default_factory=LinkCounters)
    _ser: Any = None
    _decoder: P.FrameDecoder = field(default_factory=P.FrameDecoder)
    _events: deque[P.Frame] = field(default_factory=lambda: deque(maxlen=10000))
    _next_id: int = field(default_factory=lambda: random.SystemRandom().randrange(1, 0xFFFF))

    # -- connection -------------------------------------------------------
    def open(self) -> BoardClient:
        import serial  # noqa: PLC0415  (pyserial; imported lazily)

        try:
            self._ser = serial.serial_for_url(self.port, baudrate=self.baudrate, timeout=READ_POLL_S,
                                              write_timeout=5.0)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise LinkError(f"cannot open serial port {self.port}: {_short(exc)}", hint=_port_hint(self.port)) from None
        sock = getattr(self._ser, "_socket", None)
        if sock is not None:  # socket:// (virtual board): no Nagle delay on small frames
            import socket  # noqa: PLC0415

            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self

    def close(self) -> None:
        if self._ser is not None:
            try:
                self._ser.close()
            finally:
                self._ser = None

    def __enter__(self) -> BoardClient:
        return self.open() if self._ser is None else self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- raw I/O ----------------------------------------------------------
    def _write(self, data: bytes) -> None:
        import serial  # noqa: PLC0415

        try:
            self._ser.write(data)
            self._ser.flush()
        except (serial.SerialException, OSError) as exc:
            raise LinkError(f"writing to {self.port} failed: {_short(exc)}", hint=LINK_HINT) from None
        self.counters.bytes_sent += len(data)

    def _read_some(self) -> bytes:
        import serial  # noqa: PLC0415

        try:
            waiting = self._ser.in_waiting
            data = self._ser.read(waiting if waiting else 1)
            sock = getattr(self._ser, "_socket", None)
            if data and sock is not None:
                # socket:// ports report in_waiting 1 for "readable", which would read a frame byte by byte
                # (4 KiB took ~50 ms): take everything that has already arrived in one call.
                import socket  # noqa: PLC0415

                try:
                    data += sock.recv(1 << 16, socket.MSG_DONTWAIT)
                except (BlockingIOError, InterruptedError):
                    pass
        except (serial.SerialException, OSError) as exc:
            raise LinkError(f"reading from {self.port} failed: {_short(exc)}", hint=LINK_HINT) from None
        self.counters.bytes_received += len(data)
        return bytes(data)

    def _new_id(self) -> int:
        rid = self._next_id
        self._next_id = rid % 0xFFFF + 1  # 1..65535, never 0
        return rid

    def _timeout_for(self, nbytes: int) -> float:
        # 10 bits per byte on a UART, both directions, plus headroom.
        return self.timeout_s + 2.0 * nbytes * 10 / self.baudrate

    # -- requests ---------------------------------------------------------
    def request(self, msg_type: int, payload: bytes = b"", *, timeout_s: float | None = None,
                expect_len: int | None = None) -> bytes:
        """Send one request, return the response payload (exactly-once, see module doc)."""
        if self._ser is None:
            self.open()
        if len(payload) > self.max_payload:
            raise LinkError(f"request payload of {len(payload)} bytes exceeds the board's "
                            f"{self.max_payload}-byte limit")
        req_id = self._new_id()
        wire = P.DELIM + P.encode_frame(msg_type, req_id, payload)
        wait = timeout_s if timeout_s is not None else self._timeout_for(len(wire) + (expect_len or len(payload)))
        self.counters.requests += 1
        name = P.MESSAGE_NAMES.get(msg_type, f"0x{msg_type:02x}")
        saw_corrupt = False
        for attempt in range(self.retries + 1):
            if attempt:
                self.counters.retries += 1
            self._write(wire)
            outcome = self._await(req_id, msg_type, time.monotonic() + wait)
            if isinstance(outcome, bytes):
                return outcome
            saw_corrupt = saw_corrupt or outcome == "corrupt"
        what = "only corrupt replies" if saw_corrupt else "no reply"
        raise LinkError(f"{name} request to {self.port} failed after {self.retries + 1} attempts: {what} "
                        f"within {wait:.1f} s each", hint=LINK_HINT)

    def _await(self, req_id: int, msg_type: int, deadline: float) -> bytes | str:
        """Wait for the reply to req_id: payload, or "timeout"/"corrupt"/"resend"."""
        corrupt = False
        while time.monotonic() < deadline:
            data = self._read_some()
            if not data:
                continue
            items = list(self._decoder.feed(data))
            for i, item in enumerate(items):
                if isinstance(item, P.FrameError):
                    self.counters.corrupt_frames += 1
                    corrupt = True
                    continue
                result = self._dispatch(item, req_id, msg_type)
                if result is not None:
                    self._keep_events(items[i + 1:])  # frames that arrived right after the reply
                    return result
        return "corrupt" if corrupt else "timeout"

    def _keep_events(self, items: list[P.Frame | P.FrameError]) -> None:
        for item in items:
            if isinstance(item, P.FrameError):
                self.counters.corrupt_frames += 1
            elif item.req_id == 0:
                self._events.append(item)
                if self.on_event is not None:
                    self.on_event(item)
            else:
                self.counters.stale_frames += 1

    def _dispatch(self, f: P.Frame, req_id: int, msg_type: int) -> bytes | str | None:
        if f.req_id == 0:
            if f.type == P.MSG_ERROR:
                err = P.parse_error(f.payload)
                if err.status in P.LINK_ERRORS:
                    # The board saw a damaged frame, possibly ours: resend now.
                    self.counters.link_error_reports += 1
                    return "resend"
            self._events.append(f)
            if self.on_event is not None:
                self.on_event(f)
            return None
        if f.req_id != req_id:
            self.counters.stale_frames += 1  # a late duplicate of an earlier reply
            return None
        if f.type == P.MSG_ERROR:
            err = P.parse_error(f.payload)
            name = P.MESSAGE_NAMES.get(msg_type, f"0x{msg_type:02x}")
            raise BoardError(f"board rejected {name}: {err.status_name} ({err.text})", err.status)
        if f.type != (msg_type | P.RESPONSE_BIT):
            self.counters.stale_frames += 1
            return None
        return f.payload

    # -- events -----------------------------------------------------------
    def poll_events(self, duration_s: float) -> list[P.Frame]:
        """Collect unsolicited frames (telemetry) for up to duration_s."""
        if self._ser is None:
            self.open()
        end = time.monotonic() + duration_s
        while time.monotonic() < end:
            self._keep_events(list(self._decoder.feed(self._read_some())))
        out = list(self._events)
        self._events.clear()
        return out

    # -- messages ---------------------------------------------------------
    def hello(self) -> P.Hello:
        payload = self.request(P.MSG_HELLO)
        try:
            hello = P.parse_hello(payload)
        except ValueError as exc:
            raise LinkError(f"board at {self.port} sent a malformed HELLO: {exc}", hint=LINK_HINT) from None
        if hello.proto_version != P.PROTO_VERSION:
            raise LinkError(
                f"board at {self.port} speaks protocol v{hello.proto_version}, this host speaks v{P.PROTO_VERSION}",
                hint="rebuild and flash the firmware from this checkout (`octo build`, `octo flash`)")
        self.max_payload = hello.max_payload
        return hello

    def ping(self, data: bytes = b"") -> float:
        """Round trip of one PING with ``data``; returns seconds. Checks the echo."""
        t0 = time.perf_counter()
        echo = self.request(P.MSG_PING, data)
        dt = time.perf_counter() - t0
        if echo != data:
            raise LinkError(f"PING echo from {self.port} differs from what was sent ({len(echo)} vs {len(data)} bytes)")
        return dt

    def set_telemetry(self, period_ms: int) -> int:
        import struct  # noqa: PLC0415

        payload = self.request(P.MSG_TELEMETRY_CTRL, struct.pack("<I", period_ms))
        return int(struct.unpack("<I", payload)[0])


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _port_hint(port: str) -> str:
    if port.startswith("socket://"):
        return "nothing is listening there; is the virtual board running? (`octo flash --board virtual-m4`)"
    if port.startswith("/dev/"):
        return ("check the device exists (`ls /dev/ttyACM* /dev/ttyUSB*`) and that your user may open it "
                "(add it to the dialout group)")
    return "pass a device path like /dev/ttyACM0 or socket://127.0.0.1:PORT"


def ping_stats(client, sizes: list[int], count: int) -> list[dict[str, float | int]]:
    """RTT stats per payload size; throughput counts payload bytes both ways."""
    import os  # noqa: PLC0415

    rows: list[dict[str, float | int]] = []
    for size in sizes:
        data = os.urandom(size)
        rtts = [client.ping(data) for _ in range(count)]
        med = statistics.median(rtts)
        rows.append({
            "payload_bytes": size,
            "count": count,
            "rtt_median_s": round(med, 6),
            "rtt_min_s": round(min(rtts), 6),
            "rtt_max_s": round(max(rtts), 6),
            "payload_bytes_per_s_each_way": round(size / med, 1) if size else 0.0,
        })
    return rows
