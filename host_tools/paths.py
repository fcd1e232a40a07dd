"""Where things live: repository folders, the PlatformIO core dir, run state."""

from __future__ import annotations

import os
from pathlib import Path

from converter.firmware_sources import firmware_dir, repo_root, state_dir

__all__ = ["firmware_dir", "pio_core_dir", "repo_root", "state_dir"]


def pio_core_dir() -> Path:
    """Project-local PlatformIO core dir (seeded offline by `make`)."""
    env = os.environ.get("PLATFORMIO_CORE_DIR")
    return Path(env) if env else repo_root() / ".pio-core"
