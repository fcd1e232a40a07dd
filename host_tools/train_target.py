"""Where a training build runs: a virtual board (QEMU), a real board (serial
port), or `--target host` (the same firmware C compiled natively, talking the
same protocol over a local TCP socket). open_target() builds what is needed,
starts it and yields a connected TrainTarget.
"""

from __future__ import annotations

import hashlib
import os
import re
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from host_tools.errors import OctoError
from host_tools.paths import firmware_dir


def host_sources(train_dir: Path) -> list[Path]:
    fw = firmware_dir()
    srcs: list[Path] = []
    for sub in ("common", "proto", "app", "train"):
        srcs += sorted((fw / "src" / sub).glob("*.c"))
    return [*srcs, fw / "boards" / "host" / "bsp_host.c", fw / "boards" / "common" / "octo_ram_storage.c",
            train_dir / "train_model.c"]


def build_host_trainer(train_dir: Path, *, sanitize: bool = False) -> Path:
    """Compile the firmware with the training build natively (cached on the sources' content)."""
    if shutil.which("gcc") is None:
        raise OctoError("gcc not found", hint="run `make setup` (needed for --target host)")
    fw = firmware_dir()
    flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-DOCTO_WITH_TRAIN"]
    flags += ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g", "-O1"] if sanitize else ["-O2"]
    srcs = host_sources(train_dir)
    h = hashlib.sha256(" ".join(flags).encode())
    for p in [*srcs, *sorted((fw / "include" / "octo").glob("*.h")), *sorted((fw / "src" / "train").glob("*.h"))]:
        h.update(p.read_bytes())
    out = train_dir / "host"
    out.mkdir(parents=True, exist_ok=True)
    exe = out / f"octo-train-{h.hexdigest()[:12]}"
    if exe.exists():
        return exe
    tmp = exe.with_name(f"{exe.name}.{os.getpid()}.tmp")  # concurrent builds must not see a half-written file
    cmd = ["gcc", *flags, f"-I{fw / 'include'}", f"-I{train_dir}", *map(str, srcs), "-o", str(tmp), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise OctoError(f"host build of the trainer failed:\n{proc.stderr.strip()[-3000:]}")
    os.replace(tmp, exe)
    for old in out.glob("octo-train-*"):
        if old != exe and not old.name.endswith(".tmp"):
            old.unlink(missing_ok=True)
    return exe


def build_board_trainer(train_dir: Path, board_name: str, verbose: bool = False) -> Path:
    """PlatformIO build of the firmware with the training build linked in -> ELF."""
    from host_tools.boards import get_board  # noqa: PLC0415
    from host_tools.pio import build_firmware  # noqa: PLC0415

    board = get_board(board_name)
    res = build_firmware(board, verbose=verbose, train_dir=train_dir)
    return res.elf


class HostProcess:
    """The native trainer as a child process with a TCP 'UART'."""

    def __init__(self, exe: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.exe, self.log, self.env = exe, log, env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> str:
        self.stop()
        with self.log.open("ab") as err:
            self.proc = subprocess.Popen([str(self.exe)], stdout=subprocess.PIPE, stderr=err,
                                         stdin=subprocess.DEVNULL, env={**os.environ, **self.env,
                                                                        "OCTO_HOST_PORT": "0"})
        self.port = self._read_port()
        return f"socket://127.0.0.1:{self.port}"

    def _read_port(self, timeout_s: float = 20.0) -> int:
        assert self.proc is not None and self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        line = b""
        deadline = time.monotonic() + timeout_s
        try:
            while not line.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise OctoError(f"the host trainer did not start within {timeout_s:.0f} s (log: {self.log})")
                chunk = os.read(self.proc.stdout.fileno(), 1)
                if not chunk:
                    raise OctoError(f"the host trainer exited at start (code {self.proc.wait()}; log: {self.log})")
                line += chunk
        finally:
            sel.close()
        m = re.fullmatch(rb"OCTO_HOST_PORT=(\d+)\n", line)
        if m is None:
            raise OctoError(f"the host trainer printed {line!r} instead of its port")
        return int(m.group(1))

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        code = self.proc.poll()
        if code is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                code = self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None
        return code


class TrainTarget:
    """A connected board running a training build. restart() = a board reset."""

    def __init__(self, board_name: str, connect: Callable[[], str], shutdown: Callable[[], None],
                 virtual: bool, timeout_s: float = 30.0) -> None:
        self.board_name = board_name
        self._connect, self._shutdown = connect, shutdown
        self.timer_hz, self.cpu_hz, self.virtual = 0, 0, virtual
        self.timeout_s = timeout_s
        self.client: Any = None
        self.url = ""

    def open(self) -> TrainTarget:
        from host_tools.client import BoardClient  # noqa: PLC0415

        self.url = self._connect()
        self.client = BoardClient(self.url, timeout_s=self.timeout_s).open()
        hello = self.client.hello()
        self.client.max_payload = hello.max_payload
        self.timer_hz, self.cpu_hz = hello.timer_hz, hello.cpu_hz
        return self

    def restart(self) -> None:
        """Reset the board (restart QEMU / the host process) and reconnect."""
        self.close_client()
        self.open()

    def close_client(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def close(self) -> None:
        self.close_client()
        self._shutdown()

    def ticks_to_instructions(self, ticks: int) -> int | None:
        if not self.virtual:
            return None
        from host_tools.qemu import instructions_from_ticks  # noqa: PLC0415

        return instructions_from_ticks(ticks, self.timer_hz)

    def ticks_to_cycles(self, ticks: int) -> int | None:
        if self.virtual or self.board_name == "host" or self.timer_hz <= 0:
            return None
        return int(ticks * self.cpu_hz / self.timer_hz)


@contextmanager
def open_target(tb: Any, board_name: str, port: str | None = None,
                say: Callable[[str], None] = print, *, sanitize: bool = False) -> Iterator[TrainTarget]:
    """Build and start the training build tb (a converter.train_plan.TrainBuild) on board_name."""
    if board_name == "host":
        say(f"compiling the trainer natively ({tb.config.config_id}) ...")
        exe = build_host_trainer(tb.dir, sanitize=sanitize)
        hp = HostProcess(exe, tb.dir / "host" / "board.log",
                         {"ASAN_OPTIONS": "detect_leaks=1"} if sanitize else None)
        target = TrainTarget("host", hp.start, lambda: hp.stop() and None, False, timeout_s=60.0)
    else:
        from host_tools import qemu  # noqa: PLC0415
        from host_tools.boards import get_board  # noqa: PLC0415

        board = get_board(board_name)
        if board.virtual and port is None:
            say(f"building firmware for {board.name} with the training build {tb.config.config_id} ...")
            elf = build_board_trainer(tb.dir, board.name)

            def connect() -> str:
                return qemu.start(board, elf).url

            target = TrainTarget(board.name, connect, lambda: qemu.stop(board) and None, True, timeout_s=120.0)
        else:
            dev = port or board.default_port
            if dev is None:
                raise OctoError(f"pass --port for {board.name}")
            target = TrainTarget(board.name, lambda: dev, lambda: None, False, timeout_s=60.0)
    try:
        target.open()
        yield target
    finally:
        target.close()
