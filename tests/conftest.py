"""Shared fixtures: built firmware per board, virtual boards under QEMU, host C builds."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"

# Every test run gets its own virtual-board state dir (pid files, logs, locks), never the user's: a test that
# stops "virtual-m4" must not stop a board the user started, even when OCTO_STATE_DIR is set in the shell.
os.environ["OCTO_STATE_DIR"] = tempfile.mkdtemp(prefix="octo-test-state-")


@pytest.fixture(scope="session")
def firmware_elf() -> Callable[[str], Path]:
    """firmware_elf("virtual-m4") -> path of a freshly built ELF (built once per session)."""
    from host_tools.board.boards import get_board
    from host_tools.board.pio import build_firmware

    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            cache[name] = build_firmware(get_board(name)).elf
        return cache[name]

    return get


@pytest.fixture
def virtual_board(firmware_elf: Callable[[str], Path]) -> Iterator[Callable[..., object]]:
    """start("virtual-m4") -> RunningBoard; every board started is stopped afterwards."""
    from host_tools.board import qemu
    from host_tools.board.boards import get_board

    started = []

    def start(name: str = "virtual-m4", elf: Path | None = None):
        board = get_board(name)
        rb = qemu.start(board, elf or firmware_elf(name))
        started.append(board)
        return rb

    yield start
    for board in started:
        qemu.stop(board)


SAN_FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g", "-O1"]
C_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wconversion", "-Wno-sign-conversion"]


@pytest.fixture(scope="session")
def host_cc(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """host_cc("name", [sources...], defines=[...]) -> executable built natively with ASan+UBSan."""
    out_dir = tmp_path_factory.mktemp("host-c")
    built: dict[tuple[str, ...], Path] = {}

    def build(name: str, sources: list[str | Path], defines: list[str] | None = None,
              sanitize: bool = True) -> Path:
        key = (name, *map(str, sources), *(defines or []), str(sanitize))
        if key in built:
            return built[key]
        exe = out_dir / name
        cmd = ["gcc", *C_FLAGS, *(SAN_FLAGS if sanitize else ["-O2"]), f"-I{FIRMWARE / 'include'}",
               *[f"-D{d}" for d in defines or []], *map(str, sources), "-o", str(exe), "-lm"]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"host build of {name} failed:\n{' '.join(cmd)}\n{proc.stderr}"
        built[key] = exe
        return exe

    return build


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The zoo digits CNN converted once per session (model.tflite, train.npz, eval.npz, octo/)."""
    from converter.pipeline import convert

    out = tmp_path_factory.mktemp("digits") / "digits"
    convert(ROOT / "models" / "digits_cnn.py", out, say=lambda s: None)
    return out
