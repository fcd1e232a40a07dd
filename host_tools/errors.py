"""User-facing errors: one clear line and an exit code, no traceback.

Anything that is the user's or the environment's fault (bad board name, port
missing, board silent, QEMU not installed, model too big) raises OctoError;
the CLI prints ``octo: error: <message>`` and exits with ``exit_code``. Real
bugs stay ordinary exceptions and keep their traceback.
"""

from __future__ import annotations


class OctoError(Exception):
    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} ({self.hint})" if self.hint else base


class LinkError(OctoError):
    """The serial link failed: port missing, board silent, corrupt replies."""

    exit_code = 3


class BoardError(OctoError):
    """The board answered a request with an ERROR frame."""

    exit_code = 4

    def __init__(self, message: str, status: int, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.status = status
