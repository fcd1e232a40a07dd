"""Implementations of the `octo` commands (each callable as a library function)."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from host_tools.board import protocol as P
from host_tools.board.boards import BOARDS, Board, get_board
from host_tools.board.client import ping_stats
from host_tools.errors import OctoError
from host_tools.output import Output

if TYPE_CHECKING:
    from host_tools.board.client import BoardClient


def _pct(used: int, budget: int) -> str:
    return f"{100.0 * used / budget:.1f}%" if budget else "n/a"


# -- boards -------------------------------------------------------------------
def cmd_boards(args: argparse.Namespace) -> int:
    out = Output(args.json)
    out.say(f"{'board':<15} {'kind':<8} {'cpu':<10} {'clock':>8} {'SRAM':>8} {'flash':>8}  notes")
    for b in BOARDS.values():
        note = b.description if b.buildable_offline else b.description + " [needs network to build]"
        out.say(f"{b.name:<15} {b.kind:<8} {b.cpu:<10} {b.cpu_hz / 1e6:>5.0f}MHz {b.sram_bytes // 1024:>5}KiB "
                f"{b.flash_bytes // 1024:>5}KiB  {note}")
    out.emit("octo.boards/1", {"boards": [b.as_dict() for b in BOARDS.values()]})
    return 0


# -- build / flash / stop -------------------------------------------------------
def cmd_build(args: argparse.Namespace) -> int:
    from host_tools.board.pio import build_firmware  # noqa: PLC0415

    out = Output(args.json)
    board = get_board(args.board)
    model = Path(args.model) if getattr(args, "model", None) else None
    out.say(f"Building firmware for {board.name}" + (f" with model {model}" if model else "") + " with PlatformIO ...")
    t0 = time.perf_counter()
    res = build_firmware(board, verbose=getattr(args, "verbose", False), model_dir=model)
    dt = time.perf_counter() - t0
    out.say(f"  {res.elf}")
    out.say(f"  flash {res.flash_used:>8} B of {res.flash_budget:>8} B ({_pct(res.flash_used, res.flash_budget)})")
    out.say(f"  RAM   {res.ram_used:>8} B of {res.ram_budget:>8} B ({_pct(res.ram_used, res.ram_budget)}, "
            "static: data + bss + stack)")
    out.say(f"  built in {dt:.1f} s")
    out.emit("octo.build/1", {**res.as_dict(), "seconds": round(dt, 3)})
    return 0


def _elf_for(board: Board, elf: str | None, verbose: bool, model: Path | None = None) -> Path:
    if elf:
        return Path(elf)
    from host_tools.board.pio import build_dir, build_firmware  # noqa: PLC0415

    if model is not None:  # always rebuild: the model folder may have been re-converted
        return build_firmware(board, verbose=verbose, model_dir=model).elf
    path = build_dir(board) / "firmware.elf"
    if not path.exists():
        build_firmware(board, verbose=verbose)
    return path


def cmd_flash(args: argparse.Namespace) -> int:
    from host_tools.board import lock, qemu  # noqa: PLC0415

    out = Output(args.json)
    board = get_board(args.board)
    if not board.virtual:
        raise OctoError(f"{board.name} is a real board: flash it with `pio run -d firmware -e {board.name} -t upload` "
                        "(PlatformIO downloads the ST tools on first use)")
    model = Path(args.model) if getattr(args, "model", None) else None
    elf = _elf_for(board, args.elf, getattr(args, "verbose", False), model)
    with lock.hold(lock.board_key(board.name), f"board {board.name}"):  # never restart a board in use
        rb = qemu.start(board, elf)
    out.say(f"{board.name} running ({board.qemu_machine}, pid {rb.pid}), firmware {elf}")
    out.say(f"serial: {rb.url}")
    out.emit("octo.flash/1", {"board": board.name, "pid": rb.pid, "port": rb.url, "elf": str(elf), "log": rb.log})
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from host_tools.board import lock, qemu  # noqa: PLC0415

    board = get_board(args.board)
    if not board.virtual:
        raise OctoError(f"{board.name} is a real board; there is nothing to stop")
    with lock.hold(lock.board_key(board.name), f"board {board.name}"):
        stopped = qemu.stop(board)
    print(f"{board.name} stopped" if stopped else f"{board.name} was not running")
    return 0


# -- talking to a board ---------------------------------------------------------
def resolve_port(board_name: str | None, port: str | None) -> str:
    """--port wins; else the running (named) virtual board's socket; else the board's usual device."""
    if port:
        return port
    from host_tools.board import qemu  # noqa: PLC0415

    board = get_board(board_name or "virtual-m4")
    if board.virtual:
        rb = qemu.running(board)
        if rb is None:
            raise OctoError(f"{board.name} is not running", hint=f"start it with `octo flash --board {board.name}`")
        return rb.url
    if board.default_port:
        return board.default_port
    raise OctoError(f"no port given for {board.name}", hint="pass --port")


@contextmanager
def open_client(args: argparse.Namespace) -> Iterator[BoardClient]:
    """A client on the board the user named (a running virtual board, or --port), held for this command:
    another command on the same board is told "board busy" instead of fighting over the link."""
    from host_tools.board import lock  # noqa: PLC0415
    from host_tools.board.client import BoardClient  # noqa: PLC0415
    from host_tools.board.target import port_lock_key  # noqa: PLC0415

    board = get_board(args.board or "virtual-m4") if (args.board or not args.port) else None
    url = resolve_port(args.board, args.port)
    key = port_lock_key(board, url)
    what = f"board {board.name}" if board is not None and key == lock.board_key(board.name) else f"port {url}"
    with lock.hold(key, what), BoardClient(url, baudrate=args.baud) as client:
        yield client


def cmd_info(args: argparse.Namespace) -> int:
    out = Output(args.json)
    with open_client(args) as client:
        t0 = time.perf_counter()
        hello = client.hello()
        rtt = time.perf_counter() - t0
    d = hello.as_dict()
    out.say(f"board      {hello.board} ({hello.cpu}, CPUID {d['cpuid']})")
    out.say(f"clock      {hello.cpu_hz / 1e6:.0f} MHz, timer {hello.timer_hz / 1e6:.0f} MHz"
            + (" (QEMU -icount: ticks count instructions)" if "timer-icount" in hello.features else ""))
    out.say(f"firmware   v{hello.fw_version}, protocol v{hello.proto_version}, build {hello.build}")
    out.say(f"features   {', '.join(hello.features) or 'none'}")
    ram_pct, flash_pct = _pct(hello.ram_used, hello.sram_bytes), _pct(hello.flash_used, hello.flash_bytes)
    out.say(f"SRAM       {hello.ram_used} B used (static) of {hello.sram_bytes} B ({ram_pct})")
    out.say(f"flash      {hello.flash_used} B used of {hello.flash_bytes} B ({flash_pct})")
    out.say(f"link       max payload {hello.max_payload} B; messages {', '.join(hello.as_dict()['messages'])}")
    out.emit("octo.info/1", {**d, "port": client.port, "hello_seconds": round(rtt, 6)})
    return 0


def cmd_ping(args: argparse.Namespace) -> int:
    out = Output(args.json)
    with open_client(args) as client:
        hello = client.hello()
        sizes = args.size or [0, hello.max_payload]
        for s in sizes:
            if not 0 <= s <= hello.max_payload:
                raise OctoError(f"--size {s} is outside 0..{hello.max_payload} (the board's max payload)")
        rows = ping_stats(client, sizes, args.count)
        counters = client.counters.as_dict()
    for r in rows:
        out.say(f"{r['payload_bytes']:>6} B  rtt median {r['rtt_median_s'] * 1e3:8.2f} ms  "
                f"(min {r['rtt_min_s'] * 1e3:.2f}, max {r['rtt_max_s'] * 1e3:.2f})  "
                f"{r['payload_bytes_per_s_each_way']:>10.0f} B/s each way")
    out.emit("octo.ping/1", {"board": hello.board, "port": client.port, "results": rows, "link": counters})
    return 0


def cmd_monitor(args: argparse.Namespace) -> int:
    log = Path(args.log)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open_client(args) as client, log.open("a") as fh:
        client.hello()
        period = client.set_telemetry(args.period_ms)
        print(f"telemetry every {period} ms from {client.port}; writing {log} (Ctrl-C to stop)", flush=True)
        end = time.monotonic() + args.duration if args.duration > 0 else float("inf")
        try:
            while time.monotonic() < end:
                for f in client.poll_events(min(0.25, max(0.0, end - time.monotonic()))):
                    if f.type != P.MSG_TELEMETRY:
                        continue
                    try:
                        rec = P.parse_telemetry(f.payload)
                    except ValueError as exc:
                        print(f"octo: skipped a malformed telemetry frame: {exc}", flush=True)
                        continue
                    rec = {"time": round(time.time(), 3), **rec}
                    fh.write(json.dumps(rec) + "\n")
                    fh.flush()
                    print(" ".join(f"{k}={v}" for k, v in rec.items() if k != "time"), flush=True)
        except KeyboardInterrupt:
            pass
        finally:
            client.set_telemetry(0)
    return 0


# -- demo -----------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from host_tools.demo import run_demo  # noqa: PLC0415

    return run_demo(get_board(args.board), Path(args.out), verbose=getattr(args, "verbose", False))
