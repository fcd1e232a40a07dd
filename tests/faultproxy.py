"""A TCP proxy that damages a byte stream on purpose, for link-robustness tests.

``FaultProxy(upstream_port, to_board=Faults(...), to_host=Faults(...), seed=1)``
listens on 127.0.0.1, and for each client it accepts opens a connection to the
upstream port (a virtual board's UART socket) and pumps bytes both ways. Each
direction has its own ``Faults``: per byte, the chance to flip one bit, to drop
the byte or to send it twice; per read, the chance to write the data out in
random small chunks with short pauses in between (so frames arrive split at
arbitrary points).

Randomness comes from ``random.Random`` seeded per direction from ``seed``: the
same byte stream gets the same faults. ``FaultProxy.stats`` counts what was
done, per direction.
"""

from __future__ import annotations

import random
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

POLL_S = 0.05  # how often pump threads look at the stop flag


@dataclass(frozen=True)
class Faults:
    """Fault rates for one direction. Byte rates are per byte; ``split`` is per read."""

    flip: float = 0.0         # flip one random bit of the byte
    drop: float = 0.0         # leave the byte out
    dup: float = 0.0          # send the byte twice
    split: float = 0.0        # write this read's data in random chunks of 1..max_chunk bytes
    max_chunk: int = 16
    max_delay_s: float = 0.001  # pause before each chunk of a split write: uniform in [0, max_delay_s]

    def __post_init__(self) -> None:
        rates = (self.flip, self.drop, self.dup, self.split)
        if any(not 0.0 <= r <= 1.0 for r in rates) or self.flip + self.drop + self.dup > 1.0:
            raise ValueError(f"fault rates must be in [0, 1] and byte rates sum to <= 1: {self}")
        if self.max_chunk < 1 or self.max_delay_s < 0:
            raise ValueError(f"max_chunk must be >= 1 and max_delay_s >= 0: {self}")


CLEAN = Faults()


@dataclass
class FaultStats:
    """What one direction of the proxy did."""

    bytes_in: int = 0
    bytes_out: int = 0
    flipped: int = 0
    dropped: int = 0
    duplicated: int = 0
    split_writes: int = 0
    chunks: int = 0

    @property
    def byte_faults(self) -> int:
        return self.flipped + self.dropped + self.duplicated


def damage(data: bytes, faults: Faults, rng: random.Random, stats: FaultStats) -> bytes:
    """Apply the per-byte faults to data; one rng draw per byte (two for a flip)."""
    if faults.flip == faults.drop == faults.dup == 0.0:
        return data
    out = bytearray()
    drop_below = faults.drop
    dup_below = drop_below + faults.dup
    flip_below = dup_below + faults.flip
    for b in data:
        r = rng.random()
        if r < drop_below:
            stats.dropped += 1
        elif r < dup_below:
            out += bytes((b, b))
            stats.duplicated += 1
        elif r < flip_below:
            out.append(b ^ (1 << rng.randrange(8)))
            stats.flipped += 1
        else:
            out.append(b)
    return bytes(out)


def chunk_plan(data: bytes, faults: Faults, rng: random.Random, stats: FaultStats) -> list[tuple[float, bytes]]:
    """(pause before, bytes) pieces to write data as: one piece, or random small ones."""
    if not data:
        return []
    if faults.split == 0.0 or rng.random() >= faults.split:
        return [(0.0, data)]
    stats.split_writes += 1
    pieces: list[tuple[float, bytes]] = []
    pos = 0
    while pos < len(data):
        n = rng.randint(1, faults.max_chunk)
        pieces.append((rng.uniform(0.0, faults.max_delay_s), data[pos : pos + n]))
        pos += n
    stats.chunks += len(pieces)
    return pieces


@dataclass
class FaultProxy:
    """Threaded TCP proxy 127.0.0.1:port -> upstream, damaging bytes per direction."""

    upstream_port: int
    to_board: Faults = CLEAN
    to_host: Faults = CLEAN
    seed: int = 0
    upstream_host: str = "127.0.0.1"
    stats: dict[str, FaultStats] = field(default_factory=lambda: {"to_board": FaultStats(), "to_host": FaultStats()})
    _listener: socket.socket | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _socks: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        # String seeds are hashed with SHA-512: reproducible whatever PYTHONHASHSEED is.
        self._rng = {d: random.Random(f"{self.seed}:{d}") for d in ("to_board", "to_host")}

    @property
    def port(self) -> int:
        assert self._listener is not None, "proxy not started"
        return int(self._listener.getsockname()[1])

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lst.bind(("127.0.0.1", 0))
        lst.listen(4)
        self._listener = lst
        self._spawn(self._accept_loop, "faultproxy-accept")
        return self

    def stop(self) -> None:
        """Stop accepting, close every connection, wait for the threads."""
        self._stop.set()
        if self._threads:  # the accept thread first: after it, no new pump threads appear
            self._threads[0].join(timeout=5.0)
        for t in self._threads:
            t.join(timeout=5.0)
        alive = [t.name for t in self._threads if t.is_alive()]
        with self._lock:
            for s in self._socks:
                _close(s)
            self._socks.clear()
        if self._listener is not None:
            _close(self._listener)
        if alive:
            raise RuntimeError(f"fault proxy threads did not stop: {alive}")

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # -- threads ----------------------------------------------------------
    def _spawn(self, target: Callable[..., None], name: str, *args: object) -> None:
        t = threading.Thread(target=target, name=name, args=args, daemon=True)
        self._threads.append(t)
        t.start()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            ready, _, _ = select.select([self._listener], [], [], POLL_S)
            if not ready:
                continue
            try:
                client, _ = self._listener.accept()
                upstream = socket.create_connection((self.upstream_host, self.upstream_port), timeout=5.0)
            except OSError:
                continue
            for s in (client, upstream):
                s.settimeout(None)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._socks += [client, upstream]
            self._spawn(self._pump, "faultproxy-to-board", client, upstream, "to_board")
            self._spawn(self._pump, "faultproxy-to-host", upstream, client, "to_host")

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str) -> None:
        faults = self.to_board if direction == "to_board" else self.to_host
        rng, stats = self._rng[direction], self.stats[direction]
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([src], [], [], POLL_S)
                if not ready:
                    continue
                data = src.recv(4096)
                if not data:
                    break
                stats.bytes_in += len(data)
                for pause, piece in chunk_plan(damage(data, faults, rng, stats), faults, rng, stats):
                    if pause:
                        time.sleep(pause)
                    dst.sendall(piece)
                    stats.bytes_out += len(piece)
        except OSError:
            pass
        finally:
            # One side is gone: end the other direction too.
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def _close(s: socket.socket) -> None:
    try:
        s.close()
    except OSError:
        pass
