"""Who uses a board: one command at a time per board (a named virtual board, a serial port) and per training
run folder.

A lock is an advisory ``flock`` on a file in ``state_dir()/locks`` that also records who holds it, so a second
command answers at once with "board busy: used by octo monitor (pid 1234)" instead of a link timeout. The
kernel drops a lock when its process ends, however it ends, so a crashed command never leaves a board locked.
Within one process a lock is re-entrant (the demo opens what it already holds).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from host_tools.errors import OctoError
from host_tools.paths import state_dir

_who = {"command": "octo"}              # who we are, as other commands will be told
_held: dict[str, tuple[int, int]] = {}  # key -> (fd, depth) held by this process


class BoardBusy(OctoError):
    """Another command holds the board (or run folder)."""


def set_command(name: str) -> str:
    """The name other commands see for this process (the CLI sets "octo <command>"); returns the previous one."""
    previous, _who["command"] = _who["command"], name
    return previous


def _lock_file(key: str) -> Path:
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", key)[:60]
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    path = state_dir() / "locks" / f"{stem}-{digest}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def holder(key: str) -> dict[str, object] | None:
    """Who holds key now ({command, pid, since}), or None if nobody does."""
    path = _lock_file(key)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(path)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read(path: Path) -> dict[str, object]:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    return {"command": info.get("command", "another command"), "pid": info.get("pid", "?"),
            "since": info.get("since")}


@contextmanager
def hold(key: str, what: str) -> Iterator[None]:
    """Hold key for the block, or raise BoardBusy naming the holder. what: "board virtual-m4", "port ..."."""
    if key in _held:
        fd, depth = _held[key]
        _held[key] = (fd, depth + 1)
        try:
            yield
        finally:
            fd, depth = _held[key]
            _held[key] = (fd, depth - 1)
        return
    path = _lock_file(key)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        who = _read(path)
        raise BoardBusy(f"{what} busy: used by {who['command']} (pid {who['pid']})",
                        hint="wait for it to finish or stop it; commands that boot a virtual board for their own "
                             "work use a private copy and never need this one") from None
    os.ftruncate(fd, 0)
    me = {"command": _who["command"], "pid": os.getpid(), "since": round(time.time(), 3)}
    os.pwrite(fd, json.dumps(me).encode(), 0)
    _held[key] = (fd, 1)
    try:
        yield
    finally:
        del _held[key]
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Wait for the lock file path, then hold it for the block: short critical sections shared by every process
    whatever its state dir (a build folder's lock lives beside the folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def board_key(board_name: str) -> str:
    """The lock of a named (user-started) virtual board."""
    return f"board:{board_name}"


def port_key(port: str) -> str:
    """The lock of a serial port or socket URL."""
    return f"port:{port}"


def run_dir_key(run_dir: Path) -> str:
    """The lock of a training run folder (its checkpoint and telemetry)."""
    return f"run:{Path(run_dir).resolve()}"
