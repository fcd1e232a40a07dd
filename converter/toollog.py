"""Quiet by default: what TensorFlow, TFLite and other native code print goes to a log file, Octo's own lines
to the terminal.

``capture(path)`` points file descriptors 1 and 2 (and so ``sys.stdout``/``sys.stderr``, absl's C++ logging,
TensorFlow's Python prints and warnings) at ``path`` for its duration; Octo's own lines go through ``out()``
and ``err()``, which are the terminal while a capture is active and ``sys.stdout``/``sys.stderr`` otherwise.
The CLI opens one capture per command that runs TensorFlow (``octo --verbose`` skips it); on an unexpected
failure it prints the log's last lines. Part of the converter (the lowest layer), so the converter's own
progress lines use it too.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

LOG_NAME = "octo-tools.log"     # the log file's name inside a command's output folder

_terminal: tuple[TextIO, TextIO] | None = None   # (stdout, stderr) of the terminal during a capture
_log: Path | None = None


def out() -> TextIO:
    """Where Octo's own normal lines go."""
    return _terminal[0] if _terminal is not None else sys.stdout


def err() -> TextIO:
    """Where Octo's own progress and error lines go."""
    return _terminal[1] if _terminal is not None else sys.stderr


def say(msg: str) -> None:
    """One progress line on the terminal's stderr."""
    print(msg, file=err(), flush=True)


def echo(msg: str = "") -> None:
    """One line on the terminal's stdout."""
    print(msg, file=out(), flush=True)


def active_log() -> Path | None:
    return _log


def _real_fd_streams() -> bool:
    try:
        return sys.stdout.fileno() == 1 and sys.stderr.fileno() == 2
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return False   # replaced streams (pytest's capsys, an IDE): leave them alone


@contextmanager
def capture(path: Path | None) -> Iterator[Path | None]:
    """Send everything written to fds 1 and 2 to `path` (appended) while the block runs."""
    global _terminal, _log
    if path is None or _terminal is not None or not _real_fd_streams():
        yield None
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    terminal = (os.fdopen(os.dup(saved[0]), "w", buffering=1, encoding=sys.stdout.encoding, errors="replace"),
                os.fdopen(os.dup(saved[1]), "w", buffering=1, encoding=sys.stderr.encoding, errors="replace"))
    with path.open("ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    _terminal, _log = terminal, path
    try:
        yield path
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        for stream in terminal:
            stream.close()
        _terminal, _log = None, None


def tail(path: Path, lines: int = 15) -> list[str]:
    """The last lines of a log (for a failure report)."""
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []
