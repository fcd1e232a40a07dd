"""The link under fire: a fault proxy between BoardClient and a virtual board
flips bits, drops, duplicates and splits bytes both ways. Every request must
either come back intact or fail loudly, and the board must run each request
exactly once (checked with its own `executed` counter)."""

from __future__ import annotations

import random
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from host_tools.board import protocol as P
from host_tools.board.client import BoardClient
from host_tools.board.qemu import RunningBoard
from host_tools.errors import LinkError
from tests.faultproxy import FaultProxy, Faults, FaultStats, chunk_plan, damage

SEED = 20240611
MAX_PING = 600


# -- the proxy itself -----------------------------------------------------------
@pytest.mark.parametrize("faults", [
    pytest.param(Faults(), id="clean"),
    pytest.param(Faults(drop=0.05), id="drop"),
    pytest.param(Faults(dup=0.05), id="dup"),
    pytest.param(Faults(flip=0.05), id="flip"),
    pytest.param(Faults(flip=0.02, drop=0.02, dup=0.02), id="mixed"),
])
def test_damage_is_seeded_and_accounted(faults: Faults) -> None:
    data = random.Random(SEED).randbytes(20_000)
    runs = []
    for _ in range(2):
        stats = FaultStats()
        out = damage(data, faults, random.Random(SEED), stats)
        runs.append((out, stats))
    (out, stats), (out2, stats2) = runs
    assert out == out2 and stats == stats2, "same seed, same faults"
    assert len(out) == len(data) - stats.dropped + stats.duplicated
    for name, rate in (("flipped", faults.flip), ("dropped", faults.drop), ("duplicated", faults.dup)):
        count = getattr(stats, name)
        # 20,000 bytes: the count is within a few standard deviations of its mean.
        assert abs(count - rate * len(data)) <= 5 * (rate * len(data)) ** 0.5 + 1, (name, count)
    if stats.byte_faults == 0:
        assert out == data


def test_chunk_plan_splits_without_losing_bytes() -> None:
    rng = random.Random(SEED)
    faults = Faults(split=1.0, max_chunk=7, max_delay_s=0.002)
    data = bytes(range(256)) * 3
    stats = FaultStats()
    plan = chunk_plan(data, faults, rng, stats)
    assert b"".join(piece for _, piece in plan) == data
    assert all(1 <= len(piece) <= 7 for _, piece in plan)
    assert all(0.0 <= pause <= 0.002 for pause, _ in plan)
    assert stats.split_writes == 1 and stats.chunks == len(plan) > len(data) // 7
    assert chunk_plan(data, Faults(), rng, stats) == [(0.0, data)]


@pytest.fixture
def echo_server() -> Iterator[int]:
    """A local TCP server that echoes everything back; yields its port."""
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(5.0)

    def serve() -> None:
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    srv.close()
    t.join(timeout=5.0)


def test_clean_split_proxy_is_transparent(echo_server: int) -> None:
    faults = Faults(split=1.0, max_chunk=5, max_delay_s=0.0005)
    data = random.Random(SEED).randbytes(3000)
    with FaultProxy(echo_server, to_board=faults, to_host=faults, seed=SEED) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5.0) as s:
            s.sendall(data)
            got = bytearray()
            while len(got) < len(data):
                chunk = s.recv(4096)
                assert chunk, "proxy closed the connection early"
                got += chunk
    assert bytes(got) == data
    for direction in ("to_board", "to_host"):
        st = proxy.stats[direction]
        assert st.bytes_in == st.bytes_out == len(data)
        assert st.chunks >= len(data) // 5


# -- the board behind the proxy -------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    faults: Faults
    requests: int
    corrupts: bool  # byte faults enabled: expect retries and board-side evidence


# Byte fault rates are per byte and per fault kind; a PING of n bytes crosses
# the proxy as ~2n + 30 bytes, so at 6e-5 x 3 kinds about one round trip in
# ten is damaged, some at both ends. With 8 retries a request fails only if
# nine attempts in a row are damaged.
NOISY = Faults(flip=6e-5, drop=6e-5, dup=6e-5, split=0.5, max_chunk=64, max_delay_s=0.001)
SPLIT_ONLY = Faults(split=1.0, max_chunk=16, max_delay_s=0.001)

SCENARIOS = [
    pytest.param(Scenario(SPLIT_ONLY, 80, corrupts=False), id="split-and-delay-only"),
    pytest.param(Scenario(NOISY, 320, corrupts=True), id="flip-drop-dup-split-both-ways"),
]


def ping_payloads(n: int, rng: random.Random) -> list[bytes]:
    """n distinct payloads of 0..MAX_PING bytes: the edge sizes first, then random sizes."""
    sizes = [0, 1, 2, 253, 254, 255, 256, MAX_PING]
    sizes += [rng.randint(2, MAX_PING) for _ in range(n - len(sizes))]
    # Bytes 0-1 carry the index, so payloads of 2+ bytes are all different;
    # sizes 0 and 1 occur once each.
    payloads = [(struct.pack("<H", i) + rng.randbytes(size))[:size] for i, size in enumerate(sizes)]
    assert len(set(payloads)) == n
    return payloads


def last_telemetry(frames: list[P.Frame]) -> dict[str, int | float]:
    tlm = [P.parse_telemetry(f.payload) for f in frames if f.type == P.MSG_TELEMETRY]
    assert tlm, "no telemetry frame arrived"
    return tlm[-1]


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_requests_through_faulty_link_run_exactly_once(
    scenario: Scenario, virtual_board: Callable[..., RunningBoard]
) -> None:
    rb = virtual_board("virtual-m4")
    payloads = ping_payloads(scenario.requests, random.Random(SEED))
    failures: list[str] = []
    succeeded = 0
    with FaultProxy(rb.port, to_board=scenario.faults, to_host=scenario.faults, seed=SEED) as proxy, \
            BoardClient(proxy.url, timeout_s=0.3, retries=8) as client:
        for payload in payloads:
            try:
                echo = client.request(P.MSG_PING, payload)
            except LinkError as exc:
                failures.append(str(exc))
                continue
            assert echo == payload, f"wrong echo for a {len(payload)}-byte PING"
            succeeded += 1
    noisy = client.counters

    # The board's own counters, over a clean connection. Every telemetry frame
    # is sent after the TELEMETRY_CTRL that enabled it ran, and before the one
    # that disables it.
    with BoardClient(rb.url) as clean:
        clean.set_telemetry(50)
        tlm = last_telemetry(clean.poll_events(0.3))
        clean_requests = clean.counters.requests
        clean.set_telemetry(0)

    # About one round trip in ten is damaged, so a request fails only if nine attempts in a row are (~1e-9):
    # none may fail, and then the board ran every request exactly once, no more, no less.
    assert noisy.requests == len(payloads)
    assert not failures and succeeded == len(payloads), failures
    assert int(tlm["executed"]) == len(payloads) + clean_requests

    if scenario.corrupts:
        assert noisy.retries > 0
        assert tlm["duplicates"] > 0 or tlm["rx_errors"] > 0
        assert proxy.stats["to_board"].byte_faults > 0 and proxy.stats["to_host"].byte_faults > 0
    else:
        assert tlm["rx_errors"] == 0 and noisy.corrupt_frames == 0
        assert proxy.stats["to_board"].split_writes > 0 and proxy.stats["to_host"].split_writes > 0


# -- whole training runs through the damaging link ------------------------------------------------------------
# The native trainer (the same firmware C as the boards, with its TCP "UART") behind the proxy: TRAIN_INIT,
# TRAIN_LOAD (kilobyte frames), TRAIN_STEP, EVAL, GET_WEIGHTS, and COLLAB_FORWARD/READ/WRITE/BACKWARD cross a
# link that flips, drops, duplicates and splits bytes both ways. Rates: a kilobyte frame is damaged about one
# time in six, so a request fails only if nine attempts in a row are damaged (~1e-7): none may fail, nothing
# may be replayed, and the result must be the clean run's, bit for bit.
TRAIN_NOISE = Faults(flip=5e-5, drop=5e-5, dup=5e-5, split=0.3, max_chunk=256, max_delay_s=0.0005)
LINK_TIMEOUT_S = 0.25     # reply deadline on the noisy link (the native trainer answers in milliseconds)


class _ProxiedTrainer:
    """The native trainer with a FaultProxy in front: a Target-compatible connect/shutdown pair, plus the
    board's own request counters read over a clean connection afterwards."""

    def __init__(self, exe: Path, log: Path, faults: Faults, seed: int) -> None:
        from host_tools.board.target import HostProcess

        self.hp = HostProcess(exe, log)
        self.faults, self.seed = faults, seed
        self.proxy: FaultProxy | None = None

    def connect(self) -> str:
        url = self.hp.start()
        self.proxy = FaultProxy(int(url.rsplit(":", 1)[1]), to_board=self.faults, to_host=self.faults,
                                seed=self.seed).start()
        return self.proxy.url

    def board_counters(self) -> dict[str, int | float]:
        assert self.proxy is not None
        with BoardClient(f"socket://127.0.0.1:{self.hp.port}") as clean:
            clean.set_telemetry(20)
            tlm = last_telemetry(clean.poll_events(0.3))
            before = clean.counters.requests        # the telemetry above was sent after these ran
            clean.set_telemetry(0)
        return {**tlm, "clean_requests": before}

    def shutdown(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
        self.hp.stop()


def _noisy_target(tb: object, faults: Faults, seed: int, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    from host_tools.board.target import Target, build_host_trainer
    from host_tools.services import collab, training
    from host_tools.train import run

    for module in (training, collab, run):   # every reply deadline short: a lost frame costs 0.25 s, not 2 min
        monkeypatch.setattr(module, "FIRST_STEP_TIMEOUT_S", LINK_TIMEOUT_S * 4, raising=False)
    monkeypatch.setattr(run, "STEP_TIMEOUT_MIN_S", LINK_TIMEOUT_S * 4)
    pt = _ProxiedTrainer(build_host_trainer(tb.dir), tb.dir / "host" / f"noisy-{seed}.log", faults, seed)
    target = Target("host", pt.connect, pt.shutdown, False, timeout_s=LINK_TIMEOUT_S)
    return target, pt


def _small_data(model_dir: Path, n: int = 96) -> tuple[tuple, tuple]:
    import numpy as np

    with np.load(model_dir / "train.npz") as tr, np.load(model_dir / "eval.npz") as ev:
        return (tr["x"][:n], tr["y"][:n]), (ev["x"][:48], ev["y"][:48])


@pytest.mark.slow
def test_a_whole_training_run_through_a_damaging_link_is_the_clean_run(digits_dir: Path, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from converter.train_plan import TrainConfig, prepare_training
    from host_tools.board.target import open_train_target
    from host_tools.train.run import TrainOptions, read_checkpoint, run_training

    tb = prepare_training(digits_dir, TrainConfig("int8", 16, "last:2"), "host")
    train_xy, eval_xy = _small_data(digits_dir)
    opts = TrainOptions(epochs=2, lr=0.005, checkpoint_every=3)
    with open_train_target(tb, "host", say=lambda s: None) as t:
        clean = run_training(t, tb, train_xy, eval_xy, opts, lambda s: None, tmp_path / "clean")
    target, pt = _noisy_target(tb, TRAIN_NOISE, SEED, monkeypatch)
    try:
        target.open()
        target.client.retries = 8
        noisy = run_training(target, tb, train_xy, eval_xy, opts, lambda s: None, tmp_path / "noisy")
        host = target.client.counters
        target.close_client()
        board = pt.board_counters()
        faults = pt.proxy.stats if pt.proxy else {}
    finally:
        target.close()
    assert read_checkpoint(tmp_path / "noisy").blob == read_checkpoint(tmp_path / "clean").blob
    assert noisy["epochs"][-1]["eval_accuracy"] == clean["epochs"][-1]["eval_accuracy"]
    assert noisy["recoveries"] == 0 and noisy["steps"] == clean["steps"] == 12
    assert host.retries > 0 and faults["to_board"].byte_faults > 0 and faults["to_host"].byte_faults > 0
    # exactly once: every request the host made ran once on the board (a retry of one that had run was answered
    # from the board's response cache: those are the duplicates), plus the clean connection's own
    assert board["executed"] == host.requests + board["clean_requests"]
    assert board["duplicates"] > 0 or board["rx_errors"] > 0


@pytest.mark.slow
def test_a_collab_round_through_a_damaging_link_is_the_clean_round(digits_dir: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from converter.train_plan import TrainConfig, prepare_training
    from host_tools.collab.run import CollabOptions, open_boards, run_collab
    from host_tools.services.collab import CodecSpec, CollabSession

    tb = prepare_training(digits_dir, TrainConfig("int8", 16, "all", split="conv2"), "host")
    train_xy, eval_xy = _small_data(digits_dir, 64)
    spec = CodecSpec("sgq", 4)
    opts = CollabOptions(epochs=1, seed=1, lr=0.002)
    with open_boards(tb, "host", 1, say=lambda s: None) as (t,):
        clean = run_collab([t], tb, train_xy, eval_xy, spec, opts, lambda s: None, tmp_path / "clean")
        clean_state = CollabSession(t.client).get_state()
    target, pt = _noisy_target(tb, TRAIN_NOISE, SEED + 1, monkeypatch)
    try:
        target.open()
        target.client.retries = 8
        noisy = run_collab([target], tb, train_xy, eval_xy, spec, opts, lambda s: None, tmp_path / "noisy")
        noisy_state = CollabSession(target.client).get_state()
        host = target.client.counters
        target.close_client()
        board = pt.board_counters()
    finally:
        target.close()
    assert noisy_state == clean_state
    assert noisy["final"] == clean["final"]
    assert host.retries > 0
    assert board["executed"] == host.requests + board["clean_requests"]
