"""Virtual boards: QEMU processes running Octo firmware, one per board name.

`octo flash --board virtual-m4` = start QEMU with the ELF, UART0 on a TCP
socket, `-icount shift=0` (1 instruction = 1 ns of virtual time, so SysTick
ticks count instructions) and semihosting (exit codes, fault messages).
State (pid, port, ELF, log) lives in ``state_dir()/<name>.json``. Two kinds of instance:

- the *named* instance (name = the board's name): started by `octo flash`, stopped by `octo stop`, used by
  `octo info/ping/monitor`; no other command starts, restarts or stops it;
- *private* instances (``private_name()``: board, pid, index): a command that boots a board for its own work
  (infer, bench, train, collab, video, the demo) starts its own and stops it when done, so any number of
  commands run side by side without touching each other or the user's board.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from host_tools.board.boards import Board
from host_tools.errors import OctoError
from host_tools.paths import state_dir

QEMU = "qemu-system-arm"
ICOUNT_SHIFT = 0          # 2**0 ns per instruction
START_TIMEOUT_S = 10.0    # QEMU must open its serial socket within this
STOP_TIMEOUT_S = 5.0


def instructions_from_ticks(ticks: int, timer_hz: int, shift: int = ICOUNT_SHIFT) -> int:
    """SysTick ticks under -icount shift=N -> instructions executed."""
    return round(ticks * 1e9 / timer_hz / (1 << shift))


@dataclass(frozen=True)
class RunningBoard:
    board: str
    pid: int
    port: int
    elf: str
    log: str
    started: float

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"


def private_name(board: Board, index: int = 0) -> str:
    """The name of this process's index-th private instance of board."""
    return f"{board.name}.private.{os.getpid()}.{index}"


def _state_file(board: Board, name: str | None = None) -> Path:
    return state_dir() / f"{name or board.name}.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # An exited QEMU whose parent (an earlier `octo flash`) is gone lingers as a
    # zombie until init reaps it; it no longer runs.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
    except (OSError, IndexError):
        pass
    # A zombie child still "exists"; reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def running(board: Board, name: str | None = None) -> RunningBoard | None:
    """The instance `name` (default: the named instance) if its QEMU runs."""
    path = _state_file(board, name)
    if not path.exists():
        return None
    try:
        rb = RunningBoard(**json.loads(path.read_text()))
    except (ValueError, TypeError):
        path.unlink(missing_ok=True)
        return None
    if not _alive(rb.pid):
        path.unlink(missing_ok=True)
        return None
    return rb


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def qemu_command(board: Board, elf: Path, port: int) -> list[str]:
    assert board.qemu_machine
    return [
        QEMU, "-machine", board.qemu_machine, "-nodefaults", "-display", "none", "-monitor", "none", "-nic", "none",
        "-kernel", str(elf),
        "-icount", f"shift={ICOUNT_SHIFT}",
        "-semihosting-config", "enable=on,target=native",
        "-chardev", f"socket,id=ser0,host=127.0.0.1,port={port},server=on,wait=off,nodelay=on",
        "-serial", "chardev:ser0",
    ]


def start(board: Board, elf: Path, name: str | None = None) -> RunningBoard:
    """Start (or restart) an instance of the virtual board with elf; returns once its port is open. name: a
    private instance (``private_name()``), running alongside any other (its own QEMU, port, state file and
    log); None: the named instance (callers hold its lock, see host_tools/board/lock.py)."""
    if not board.virtual:
        raise OctoError(f"{board.name} is a real board; flash it with PlatformIO "
                        f"(`pio run -d firmware -e {board.name} -t upload`)")
    if shutil.which(QEMU) is None:
        raise OctoError(f"{QEMU} not found", hint="run `make setup` (installs the Debian package qemu-system-arm)")
    if not elf.exists():
        raise OctoError(f"firmware {elf} does not exist", hint=f"build it first: `octo build --board {board.name}`")
    stop(board, name)
    log = state_dir() / f"{name or board.name}.log"
    last_err = ""
    for _ in range(3):  # the chosen port can be taken between probe and bind
        port = free_port()
        with log.open("wb") as fh:
            proc = subprocess.Popen(qemu_command(board, elf, port), stdout=fh, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        if _wait_listening(proc, port):
            rb = RunningBoard(board.name, proc.pid, port, str(elf), str(log), time.time())
            _state_file(board, name).write_text(json.dumps(rb.__dict__))
            return rb
        last_err = log.read_text(errors="replace").strip()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    raise OctoError(f"QEMU did not start {board.name}: {last_err.splitlines()[-1] if last_err else 'no output'}")


def _wait_listening(proc: subprocess.Popen[bytes], port: int) -> bool:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def stop(board: Board, name: str | None = None) -> bool:
    """Stop that instance's QEMU (default: the named instance) if it runs; True if one was stopped."""
    rb = running(board, name)
    path = _state_file(board, name)
    if rb is None:
        path.unlink(missing_ok=True)
        return False
    try:
        os.killpg(rb.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline and _alive(rb.pid):
        time.sleep(0.02)
    if _alive(rb.pid):
        try:
            os.killpg(rb.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    path.unlink(missing_ok=True)
    return True


@contextmanager
def private(board: Board, elf: Path, index: int = 0) -> Iterator[RunningBoard]:
    """A private instance for the block: started here, stopped on the way out, whatever happens."""
    name = private_name(board, index)
    try:
        yield start(board, elf, name)
    finally:
        stop(board, name)
