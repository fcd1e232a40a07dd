"""Every virtual board builds, boots under QEMU and speaks the Octo protocol:
HELLO matches host_tools/board/boards.py, PING echoes, telemetry streams and stops,
unknown requests are refused, and the -icount timer runs at the board's clock (25,000 ticks/ms on the MPS2
boards, 32,000 on mps3-an547)."""

from __future__ import annotations

import itertools
import random
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from host_tools.board import protocol as P
from host_tools.board.boards import BOARDS, get_board
from host_tools.board.client import BoardClient
from host_tools.board.pio import elf_memory_use
from host_tools.board.qemu import RunningBoard
from host_tools.errors import BoardError, LinkError

pytestmark = pytest.mark.qemu

VIRTUAL_BOARDS = ["virtual-m4", "virtual-m7", "virtual-m3", "virtual-m55"]
# SCB->CPUID PARTNO (bits 15:4) of the core each QEMU machine emulates.
CPUID_PARTNO = {"cortex-m3": 0xC23, "cortex-m4": 0xC24, "cortex-m7": 0xC27, "cortex-m55": 0xD22}
TELEMETRY_FIELDS = {"seq", "uptime_ms", "ticks", "rx_bytes", "rx_frames", "rx_errors", "rx_crc_errors",
                    "tx_frames", "duplicates", "executed"}
UNKNOWN_MSG_TYPE = 0x5E  # inside no reserved range; the firmware has no handler for it
E_UNSUPPORTED = -9
U32 = 1 << 32

OpenBoard = Callable[..., BoardClient]


@pytest.fixture
def open_board(virtual_board: Callable[..., RunningBoard]) -> Iterator[OpenBoard]:
    """open_board("virtual-m4"[, elf]) -> a client connected to a freshly booted board (HELLO done)."""
    clients: list[BoardClient] = []

    def open_(name: str, elf: Path | None = None) -> BoardClient:
        rb = virtual_board(name, elf)
        client = BoardClient(rb.url).open()
        clients.append(client)
        client.hello()  # also sets client.max_payload
        return client

    yield open_
    for c in clients:
        c.close()


def telemetry(frames: list[P.Frame]) -> list[dict[str, int | float]]:
    return [P.parse_telemetry(f.payload) for f in frames if f.type == P.MSG_TELEMETRY]


def test_virtual_boards_are_all_covered() -> None:
    assert sorted(VIRTUAL_BOARDS) == sorted(name for name, b in BOARDS.items() if b.virtual)


@pytest.mark.parametrize("name", VIRTUAL_BOARDS)
def test_firmware_builds_within_budget(name: str, firmware_elf: Callable[[str], Path]) -> None:
    board = get_board(name)
    flash_used, ram_used = elf_memory_use(firmware_elf(name))
    assert 0 < flash_used < board.flash_bytes
    assert 0 < ram_used < board.sram_bytes


@pytest.mark.parametrize("name", VIRTUAL_BOARDS)
def test_hello_describes_the_board(name: str, open_board: OpenBoard, firmware_elf: Callable[[str], Path],
                                   tmp_path: Path) -> None:
    board = get_board(name)
    elf = tmp_path / "firmware.elf"  # a private copy: the board runs exactly the image we measure
    shutil.copyfile(firmware_elf(name), elf)
    hello = open_board(name, elf).hello()
    assert (hello.board, hello.cpu) == (board.name, board.cpu)
    assert hello.proto_version == P.PROTO_VERSION
    assert hello.cpu_hz == board.cpu_hz
    assert (hello.cpuid >> 4) & 0xFFF == CPUID_PARTNO[board.cpu]
    assert (hello.sram_bytes, hello.flash_bytes) == (board.sram_bytes, board.flash_bytes)
    assert 0 < hello.ram_used < hello.sram_bytes
    assert 0 < hello.flash_used < hello.flash_bytes
    # The board reports the linker's numbers for the image it runs.
    assert (hello.flash_used, hello.ram_used) == elf_memory_use(elf)
    assert ("dsp" in hello.features) == board.dsp
    assert ("fpu" in hello.features) == (board.fpu is not None)
    assert {"timer-icount", "semihosting"} <= set(hello.features)
    assert ("mve" in hello.features) == board.mve
    assert set(hello.messages) == {P.MSG_HELLO, P.MSG_PING, P.MSG_TELEMETRY_CTRL}
    assert hello.max_payload == 4096


def test_feature_table_matches_the_cores() -> None:
    """The expectations above, spelled out: DSP on M4/M7/M55, no FPU on the M3, MVE (Helium) on the M55 only."""
    assert {n: (BOARDS[n].dsp, BOARDS[n].fpu is not None, BOARDS[n].mve) for n in VIRTUAL_BOARDS} == {
        "virtual-m4": (True, True, False), "virtual-m7": (True, True, False), "virtual-m3": (False, False, False),
        "virtual-m55": (True, True, True)}


def _payload(size: int, pattern: str) -> bytes:
    rng = random.Random(size)
    if pattern == "nonzero":  # COBS: full 254-byte blocks, no zero to split on
        return bytes(rng.randrange(1, 256) for _ in range(size))
    if pattern == "zeros":  # COBS: every byte is a zero
        return bytes(size)
    return rng.randbytes(size)


PING_CASES = [
    pytest.param(0, "random", id="empty"),
    pytest.param(1, "zeros", id="1-zero-byte"),
    pytest.param(253, "nonzero", id="253-nonzero"),
    pytest.param(254, "nonzero", id="254-nonzero"),
    pytest.param(255, "nonzero", id="255-nonzero"),
    pytest.param(1000, "random", id="1000-random"),
    pytest.param(None, "random", id="max-payload"),
]


@pytest.mark.parametrize("name", VIRTUAL_BOARDS)
@pytest.mark.parametrize(("size", "pattern"), PING_CASES)
def test_ping_echoes(name: str, size: int | None, pattern: str, open_board: OpenBoard) -> None:
    client = open_board(name)
    data = _payload(client.max_payload if size is None else size, pattern)
    assert client.request(P.MSG_PING, data) == data
    assert client.ping(data) > 0.0
    assert client.counters.retries == 0 and client.counters.corrupt_frames == 0


@pytest.mark.parametrize("name", VIRTUAL_BOARDS)
def test_oversized_request_is_refused_before_sending(name: str, open_board: OpenBoard) -> None:
    client = open_board(name)
    limit = client.max_payload
    sent, requests = client.counters.bytes_sent, client.counters.requests
    with pytest.raises(LinkError, match=f"{limit + 1} bytes exceeds the board's {limit}-byte limit"):
        client.ping(bytes(limit + 1))
    assert (client.counters.bytes_sent, client.counters.requests) == (sent, requests)
    client.ping(b"still here")


@pytest.mark.parametrize("name", VIRTUAL_BOARDS)
def test_telemetry_streams_and_stops(name: str, open_board: OpenBoard) -> None:
    client = open_board(name)
    assert client.set_telemetry(50) == 50
    frames = telemetry(client.poll_events(0.5))
    # 50 ms of board time per frame; board time tracks wall time while idle.
    assert 5 <= len(frames) <= 12, [f["uptime_ms"] for f in frames]
    assert all(set(f) == TELEMETRY_FIELDS for f in frames)
    seqs = [f["seq"] for f in frames]
    assert seqs == list(range(len(frames))), "a fresh board numbers its frames from 0"
    uptimes = [int(f["uptime_ms"]) for f in frames]
    assert all(50 <= b - a <= 60 for a, b in itertools.pairwise(uptimes)), uptimes
    assert all(f["executed"] == 2 for f in frames)  # HELLO, TELEMETRY_CTRL

    assert client.set_telemetry(0) == 0
    client.poll_events(0)  # drop frames that arrived while the request was in flight
    assert telemetry(client.poll_events(0.3)) == []


@pytest.mark.parametrize(("asked", "granted"), [(10, 10), (9, 10), (1, 10), (1000, 1000)])
def test_telemetry_period_has_a_floor(asked: int, granted: int, open_board: OpenBoard) -> None:
    client = open_board("virtual-m4")
    assert client.set_telemetry(asked) == granted
    assert client.set_telemetry(0) == 0


@pytest.mark.parametrize("name", VIRTUAL_BOARDS)
def test_unknown_message_type_is_unsupported(name: str, open_board: OpenBoard) -> None:
    client = open_board(name)
    with pytest.raises(BoardError) as ei:
        client.request(UNKNOWN_MSG_TYPE, b"\x01\x02")
    assert ei.value.status == E_UNSUPPORTED
    assert "OCTO_E_UNSUPPORTED" in str(ei.value)
    assert ei.value.exit_code == 4
    # The link still works, and the refused request was not executed.
    client.ping(b"after the error")
    assert client.hello().board == name
    client.set_telemetry(50)
    frames = telemetry(client.poll_events(0.2))
    client.set_telemetry(0)
    assert frames and frames[-1]["executed"] == 4  # HELLO, PING, HELLO, TELEMETRY_CTRL


@pytest.mark.parametrize("name", VIRTUAL_BOARDS)
def test_timer_counts_the_board_clock(name: str, open_board: OpenBoard) -> None:
    client = open_board(name)
    hello = client.hello()
    assert "timer-icount" in hello.features
    ticks_per_ms = get_board(name).cpu_hz // 1000
    assert ticks_per_ms == (32_000 if name == "virtual-m55" else 25_000)
    assert hello.timer_hz == ticks_per_ms * 1000
    client.set_telemetry(50)
    frames = telemetry(client.poll_events(0.5))
    client.set_telemetry(0)
    assert len(frames) >= 2
    for f in frames:
        # uptime_ms is read just before ticks, so ticks may be up to 1 ms ahead.
        ahead = (int(f["ticks"]) - int(f["uptime_ms"]) * ticks_per_ms) % U32
        assert 0 <= ahead < 2 * ticks_per_ms, f
    first, last = frames[0], frames[-1]
    d_ticks = (int(last["ticks"]) - int(first["ticks"])) % U32
    d_ms = int(last["uptime_ms"]) - int(first["uptime_ms"])
    assert d_ms >= 100
    assert abs(d_ticks - d_ms * ticks_per_ms) < ticks_per_ms, (d_ticks, d_ms)
